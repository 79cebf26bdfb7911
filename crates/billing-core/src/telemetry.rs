//! Logging set-up shared by every function, and metrics as CloudWatch embedded metric format
//! (EMF) lines: a JSON line on stdout that CloudWatch turns into metrics, with no API call.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The one namespace of every metric.
pub const NAMESPACE: &str = "CognitoStripeBilling";

static FUNCTION: OnceLock<&'static str> = OnceLock::new();

/// Honours Lambda's advanced logging controls: `AWS_LAMBDA_LOG_FORMAT=JSON` gives JSON lines,
/// `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG` locally) sets the level. `function` is the `Function`
/// dimension of the metrics this process emits (e.g. `webhook`).
pub fn init(function: &'static str) {
    let _ = FUNCTION.set(function);
    lambda_runtime::tracing::init_default_subscriber();
}

/// The `Function` dimension given to `init`; `unknown` in a process that did not call it.
pub fn function() -> &'static str {
    FUNCTION.get().copied().unwrap_or("unknown")
}

/// Emits one count of `metric` for this process's function, also under `dimension` when given
/// (e.g. `("Action", "key_created")`).
pub fn count(metric: &str, dimension: Option<(&str, &str)>) {
    record(dimension, &[(metric, Unit::Count, 1.0)]);
}

/// Emits these metrics for this process's function, now, also under `dimension` when given.
pub fn record(dimension: Option<(&str, &str)>, metrics: &[(&str, Unit, f64)]) {
    emit(&metrics_line_by(function(), dimension, now_ms(), metrics));
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Seconds => "Seconds",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// One EMF line: these metrics, under one `Function` dimension, at `timestamp_ms`.
pub fn metrics_line(function: &str, timestamp_ms: i64, metrics: &[(&str, Unit, f64)]) -> String {
    metrics_line_by(function, None, timestamp_ms, metrics)
}

/// One EMF line: these metrics under the dimension set `[Function]` and, when `dimension` is
/// given, also `[Function, <its name>]`, at `timestamp_ms`.
pub fn metrics_line_by(
    function: &str,
    dimension: Option<(&str, &str)>,
    timestamp_ms: i64,
    metrics: &[(&str, Unit, f64)],
) -> String {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
        .collect();
    let dimensions = match dimension {
        Some((name, _)) => json!([["Function"], ["Function", name]]),
        None => json!([["Function"]]),
    };
    let mut line = Map::new();
    line.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": definitions,
            }],
        }),
    );
    line.insert("Function".to_owned(), json!(function));
    if let Some((name, value)) = dimension {
        line.insert(name.to_owned(), json!(value));
    }
    for (name, _, value) in metrics {
        line.insert((*name).to_owned(), json!(value));
    }
    Value::Object(line).to_string()
}

/// Writes the line to stdout, where Lambda sends it to CloudWatch Logs; only in a function
/// (after `init`): a command line tool's stdout is its own output.
pub fn emit(line: &str) {
    if FUNCTION.get().is_some() {
        println!("{line}");
    }
    #[cfg(any(test, feature = "test-util"))]
    capture::keep(line);
}

/// Tests read the lines their thread emits (a `#[tokio::test]` runs on one thread).
#[cfg(any(test, feature = "test-util"))]
pub mod capture {
    use std::cell::RefCell;

    thread_local! {
        static LINES: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    }

    /// From now on this thread's lines are kept (nothing is kept unless a test asks).
    pub fn start() {
        LINES.with(|lines| *lines.borrow_mut() = Some(Vec::new()));
    }

    /// The lines kept since `start`, parsed; kept lines are cleared.
    pub fn take() -> Vec<serde_json::Value> {
        LINES.with(|lines| {
            lines
                .borrow_mut()
                .as_mut()
                .map(std::mem::take)
                .unwrap_or_default()
                .iter()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect()
        })
    }

    pub(super) fn keep(line: &str) {
        LINES.with(|lines| {
            if let Some(kept) = lines.borrow_mut().as_mut() {
                kept.push(line.to_owned());
            }
        });
    }
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

    #[test]
    fn a_metric_with_a_dimension_should_be_counted_with_and_without_it() {
        let line = metrics_line_by(
            "webhook",
            Some(("Outcome", "applied")),
            1_700_000_000_000,
            &[
                ("WebhookEvents", Unit::Count, 1.0),
                ("WebhookLatency", Unit::Milliseconds, 12.5),
            ],
        );
        let value: Value = serde_json::from_str(&line).unwrap();
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            directive["Dimensions"],
            json!([["Function"], ["Function", "Outcome"]])
        );
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "WebhookEvents", "Unit": "Count"}, {"Name": "WebhookLatency", "Unit": "Milliseconds"}])
        );
        assert_eq!(value["Function"], "webhook");
        assert_eq!(value["Outcome"], "applied");
        assert_eq!(value["WebhookLatency"], 12.5);
    }
}
