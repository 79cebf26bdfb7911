//! Stripe events from Amazon EventBridge, and the scheduled reconciler.

use std::time::Duration;

use billing_core::ports::SyncPorts;
use billing_core::reconciler::{Reconciler, RunLimits, RunOptions};
use billing_core::webhook::sync::{Outcome, Receipt};
use lambda_runtime::Error;
use serde_json::{Value, json};
use tracing::{error, info};

use crate::Deps;

/// The Stripe event is the EventBridge event's `detail`. An `Err` makes EventBridge retry
/// (then dead-letter) the event; what retrying cannot fix is recorded or logged and answered
/// `Ok`. A scheduled event runs the reconciler for at most `budget`.
pub async fn handle<P: SyncPorts>(
    deps: &Deps<P>,
    payload: Value,
    budget: Duration,
) -> Result<Value, Error> {
    let now = billing_core::http::now();
    if payload["detail-type"] == "Scheduled Event" {
        return reconcile(deps, now, budget).await;
    }
    let detail = serde_json::to_vec(&payload["detail"])?;
    match deps.sync().receive(&detail, deps.livemode, now).await? {
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
    Ok(json!({"outcome": "reconciled", "report": report}))
}
