//! Logging set-up shared by every function, and metrics as CloudWatch embedded metric format
//! (EMF) lines: a JSON line on stdout that CloudWatch turns into metrics, with no API call.

use serde_json::{Map, Value, json};

/// The one namespace of every metric.
pub const NAMESPACE: &str = "CognitoStripeBilling";

/// Honours Lambda's advanced logging controls: `AWS_LAMBDA_LOG_FORMAT=JSON` gives JSON lines,
/// `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG` locally) sets the level.
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Seconds => "Seconds",
        }
    }
}

/// One EMF line: these metrics, under one `Function` dimension, at `timestamp_ms`.
pub fn metrics_line(function: &str, timestamp_ms: i64, metrics: &[(&str, Unit, f64)]) -> String {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
        .collect();
    let mut line = Map::new();
    line.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": definitions,
            }],
        }),
    );
    line.insert("Function".to_owned(), json!(function));
    for (name, _, value) in metrics {
        line.insert((*name).to_owned(), json!(value));
    }
    Value::Object(line).to_string()
}

/// Writes the line to stdout, where Lambda sends it to CloudWatch Logs.
pub fn emit(line: &str) {
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metrics_line_should_be_cloudwatch_embedded_metric_format() {
        let line = metrics_line(
            "reconciler",
            1_700_000_000_000,
            &[
                ("EventsRepaired", Unit::Count, 3.0),
                ("CursorAge", Unit::Seconds, 42.0),
            ],
        );
        let value: Value = serde_json::from_str(&line).unwrap();
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(value["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "EventsRepaired", "Unit": "Count"}, {"Name": "CursorAge", "Unit": "Seconds"}])
        );
        assert_eq!(value["Function"], "reconciler");
        assert_eq!(value["EventsRepaired"], 3.0);
        assert_eq!(value["CursorAge"], 42.0);
        assert!(!line.contains('\n'));
    }
}
