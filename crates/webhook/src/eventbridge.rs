//! Stripe events from Amazon EventBridge, and the scheduled stack sweep.

use billing_core::ports::SyncPorts;
use billing_core::webhook::parse_event;
use billing_core::webhook::sync::Outcome;
use lambda_runtime::Error;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::Deps;

/// The Stripe event is the EventBridge event's `detail`. An `Err` makes EventBridge retry
/// (then dead-letter) the event; what retrying cannot fix is logged and answered `Ok`.
pub async fn handle<P: SyncPorts>(deps: &Deps<P>, payload: Value) -> Result<Value, Error> {
    let now = billing_core::http::now();
    if payload["detail-type"] == "Scheduled Event" {
        let still_deleting = deps.sync().sweep(now).await?;
        info!(still_deleting, "stack sweep done");
        return Ok(json!({"outcome": "swept", "still_deleting": still_deleting}));
    }
    let detail = serde_json::to_vec(&payload["detail"])?;
    let event = match parse_event(&detail) {
        Ok(event) => event,
        Err(reason) => {
            warn!(%reason, "eventbridge event is not a Stripe event we can read");
            return Ok(json!({"outcome": "invalid_event"}));
        }
    };
    if event.livemode != deps.livemode {
        warn!(event_id = %event.id, "eventbridge event refused: livemode differs");
        return Ok(json!({"outcome": "livemode_mismatch"}));
    }
    let outcome = deps.apply(&event, now).await?;
    if outcome == Outcome::InProgress {
        return Err("event in progress in another delivery; retry".into());
    }
    info!(event_id = %event.id, event_type = %event.event_type, outcome = outcome.as_str(), "event handled");
    Ok(json!({"outcome": outcome.as_str()}))
}
