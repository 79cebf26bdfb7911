//! Stripe events from Amazon EventBridge, and the scheduled tasks: the reconciler and the
//! usage reporter.

use std::time::Duration;

use billing_core::ports::SyncPorts;
use billing_core::reconciler::{Reconciler, RunLimits, RunOptions};
use billing_core::usage::{ReportLimits, UsageReport};
use billing_core::webhook::sync::{Outcome, Receipt};
use lambda_runtime::Error;
use serde_json::{Value, json};
use tracing::{error, info};

use crate::Deps;

/// The scheduled task that runs the reconciler.
pub const RECONCILE: &str = "reconcile";
/// The scheduled task that reports metered usage to Stripe.
pub const REPORT_USAGE: &str = "report-usage";

/// The Stripe event is the EventBridge event's `detail`. An `Err` makes EventBridge retry
/// (then dead-letter) the event; what retrying cannot fix is recorded or logged and answered
/// `Ok`. A scheduled event runs the reconciler for at most `budget`.
pub async fn handle<P: SyncPorts>(
    deps: &Deps<P>,
    payload: Value,
    budget: Duration,
) -> Result<Value, Error> {
    let now = billing_core::http::now();
    // The schedules say which task they start (their Input); a scheduled event without one is
    // the reconciler's, as before tasks were named.
    match payload["task"].as_str() {
        Some(REPORT_USAGE) => return report_usage(deps, now, budget).await,
        Some(RECONCILE) => return reconcile(deps, now, budget).await,
        Some(other) => return Err(format!("unknown scheduled task {other:?}").into()),
        None if payload["detail-type"] == "Scheduled Event" => {
            return reconcile(deps, now, budget).await;
        }
        None => {}
    }
    let detail = serde_json::to_vec(&payload["detail"])?;
    let started = std::time::Instant::now();
    let receipt = deps.sync().receive(&detail, deps.livemode, now).await;
    crate::handler::record_outcome(&receipt, started);
    match receipt? {
        Receipt::NotJson => Ok(json!({"outcome": "invalid_event"})),
        Receipt::LivemodeMismatch { .. } => Ok(json!({"outcome": "livemode_mismatch"})),
        Receipt::Handled {
            outcome: Outcome::InProgress,
            ..
        } => Err("event in progress in another delivery; retry".into()),
        Receipt::Handled {
            event_id,
            event_type,
            outcome,
        } => {
            info!(%event_id, %event_type, outcome = outcome.as_str(), "event handled");
            Ok(json!({"outcome": outcome.as_str()}))
        }
    }
}

async fn reconcile<P: SyncPorts>(
    deps: &Deps<P>,
    now: i64,
    budget: Duration,
) -> Result<Value, Error> {
    let reconciler = Reconciler {
        sync: deps.sync(),
        livemode: deps.livemode,
    };
    let report = reconciler
        .run(now, RunOptions::default(), RunLimits::for_duration(budget))
        .await
        .inspect_err(|failure| {
            error!(error = %billing_core::error::Chain(failure), "reconciler run failed; the next run resumes")
        })?;
    billing_core::telemetry::emit(&reconciler_metrics(&report, now));
    Ok(json!({"outcome": "reconciled", "report": report}))
}

async fn report_usage<P: SyncPorts>(
    deps: &Deps<P>,
    now: i64,
    budget: Duration,
) -> Result<Value, Error> {
    let reporter = deps.usage_reporter();
    let report = reporter
        .run(now, ReportLimits::for_duration(budget))
        .await
        .inspect_err(|failure| {
            error!(error = %billing_core::error::Chain(failure), "usage report failed; the next run resumes")
        })?;
    billing_core::telemetry::emit(&usage_metrics(&report, now));
    Ok(json!({"outcome": "usage_reported", "report": report}))
}

/// The usage reporter's metrics: calls sent to Stripe, calls too late to bill (alarm on any),
/// slots with nowhere to bill yet and deltas stuck for an operator.
fn usage_metrics(report: &UsageReport, now: i64) -> String {
    use billing_core::telemetry::{Unit, metrics_line};
    metrics_line(
        "usage-reporter",
        now * 1000,
        &[
            (
                "UsageCallsReported",
                Unit::Count,
                report.calls_reported as f64,
            ),
            (
                "UsageCallsTooLate",
                Unit::Count,
                report.calls_unbillable as f64,
            ),
            (
                "UsageSlotsUnbillable",
                Unit::Count,
                report.slots_unbillable as f64,
            ),
            ("UsageSlotsStuck", Unit::Count, report.slots_stuck as f64),
        ],
    )
}

/// The reconciler's metrics: what it repaired, and how far behind Stripe's events it is (an
/// alarm on `ReconcilerCursorAge` or `ReconcilerCursorTooOld` says events may be lost).
fn reconciler_metrics(report: &billing_core::reconciler::RunReport, now: i64) -> String {
    use billing_core::telemetry::{Unit, metrics_line};
    let cursor_age = report
        .cursor_after
        .map_or(0, |cursor| (now - cursor).max(0));
    metrics_line(
        "reconciler",
        now * 1000,
        &[
            (
                "ReconcilerEventsRepaired",
                Unit::Count,
                report.events_repaired() as f64,
            ),
            ("ReconcilerReviews", Unit::Count, report.reviews as f64),
            ("ReconcilerCursorAge", Unit::Seconds, cursor_age as f64),
            (
                "ReconcilerCursorTooOld",
                Unit::Count,
                f64::from(u8::from(report.cursor_too_old)),
            ),
            (
                "ReconcilerIncomplete",
                Unit::Count,
                f64::from(u8::from(!report.complete)),
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_should_report_its_repairs_and_how_far_behind_its_cursor_is() {
        let mut report = billing_core::reconciler::RunReport {
            cursor_after: Some(1_000),
            cursor_too_old: true,
            reviews: 2,
            ..Default::default()
        };
        report.outcomes.insert("applied".into(), 5);
        let line: Value = serde_json::from_str(&reconciler_metrics(&report, 1_600)).unwrap();
        assert_eq!(line["ReconcilerEventsRepaired"], 5.0);
        assert_eq!(line["ReconcilerReviews"], 2.0);
        assert_eq!(line["ReconcilerCursorAge"], 600.0);
        assert_eq!(line["ReconcilerCursorTooOld"], 1.0);
        assert_eq!(line["ReconcilerIncomplete"], 1.0);
        assert_eq!(line["_aws"]["Timestamp"], 1_600_000);
    }
}
