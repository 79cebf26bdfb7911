//! `POST /stripe/webhook`: verify the signature on the raw body, then read and apply it.
//!
//! Stripe retries any non-2xx answer for three days, so only what no retry can change is a
//! 400: a failed signature, an oversize or non-JSON body, an event of the other mode. A verified
//! event we cannot read is recorded and acknowledged; a failure we may recover from is a 5xx.

use billing_core::http::{error_response, json_response, now};
use billing_core::ports::SyncPorts;
use billing_core::telemetry::Unit;
use billing_core::webhook::sync::{Outcome, Receipt};
use billing_core::webhook::{DEFAULT_TOLERANCE_SECS, verify};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;
use tracing::{info, warn};

use crate::Deps;

/// Stripe events are far smaller; anything larger is refused before verifying.
const MAX_EVENT_BYTES: usize = 512 * 1024;

pub async fn handle<P: SyncPorts>(
    deps: &Deps<P>,
    request: Request,
) -> Result<Response<Body>, Error> {
    if request.method() != Method::POST {
        return Ok(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "POST only",
        ));
    }
    let body: &[u8] = request.body().as_ref();
    if body.len() > MAX_EVENT_BYTES {
        return Ok(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "event too large",
        ));
    }
    let header = request
        .headers()
        .get("stripe-signature")
        .and_then(|value| value.to_str().ok());
    let now = now();
    if let Err(reason) = verify(
        body,
        header,
        &deps.webhook_secrets,
        now,
        DEFAULT_TOLERANCE_SECS,
    ) {
        warn!(%reason, "webhook refused: signature");
        return Ok(error_response(
            StatusCode::BAD_REQUEST,
            "invalid_signature",
            "the Stripe-Signature header does not verify",
        ));
    }
    let started = std::time::Instant::now();
    let receipt = deps.sync().receive(body, deps.livemode, now).await;
    record_outcome(&receipt, started);
    Ok(match receipt {
        Ok(Receipt::NotJson) => error_response(
            StatusCode::BAD_REQUEST,
            "invalid_event",
            "the body is not JSON",
        ),
        Ok(Receipt::LivemodeMismatch { .. }) => error_response(
            StatusCode::BAD_REQUEST,
            "livemode_mismatch",
            "event livemode does not match this deployment",
        ),
        Ok(Receipt::Handled {
            event_id,
            event_type,
            outcome,
        }) => respond(&event_id, &event_type, outcome),
        // Logged by `receive`, with the event's id and type.
        Err(_) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "retry_later",
            "the event could not be applied now",
        ),
    })
}

/// `WebhookEvents` under the outcome (`failed`: we answer non-2xx and Stripe retries) and
/// `WebhookLatency`, for a verified delivery of either ingress.
pub fn record_outcome(receipt: &billing_core::Result<Receipt>, started: std::time::Instant) {
    let outcome = match receipt {
        Ok(Receipt::Handled { outcome, .. }) => outcome.as_str(),
        Ok(Receipt::NotJson) => "invalid_event",
        Ok(Receipt::LivemodeMismatch { .. }) => "livemode_mismatch",
        Err(_) => "failed",
    };
    billing_core::telemetry::record(
        Some(("Outcome", outcome)),
        &[
            ("WebhookEvents", Unit::Count, 1.0),
            (
                "WebhookLatency",
                Unit::Milliseconds,
                started.elapsed().as_secs_f64() * 1000.0,
            ),
        ],
    );
}

/// The answer for a handled event.
fn respond(event_id: &str, event_type: &str, outcome: Outcome) -> Response<Body> {
    if outcome == Outcome::InProgress {
        info!(
            event_id,
            event_type, "event in progress in another delivery"
        );
        return error_response(
            StatusCode::CONFLICT,
            "in_progress",
            "this event is being applied; retry later",
        );
    }
    info!(
        event_id,
        event_type,
        outcome = outcome.as_str(),
        "event handled"
    );
    json_response(
        StatusCode::OK,
        &json!({"received": true, "outcome": outcome.as_str()}),
    )
}
