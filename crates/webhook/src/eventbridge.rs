//! Stripe events from Amazon EventBridge, and the scheduled stack sweep.

use billing_core::ports::SyncPorts;
use billing_core::webhook::sync::{Outcome, Receipt};
use lambda_runtime::Error;
use serde_json::{Value, json};
use tracing::info;

use crate::Deps;

/// The Stripe event is the EventBridge event's `detail`. An `Err` makes EventBridge retry
/// (then dead-letter) the event; what retrying cannot fix is recorded or logged and answered
/// `Ok`.
pub async fn handle<P: SyncPorts>(deps: &Deps<P>, payload: Value) -> Result<Value, Error> {
    let now = billing_core::http::now();
    if payload["detail-type"] == "Scheduled Event" {
        let still_deleting = deps.sync().sweep(now).await?;
        info!(still_deleting, "stack sweep done");
        return Ok(json!({"outcome": "swept", "still_deleting": still_deleting}));
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
