//! Stripe events from Amazon EventBridge (Stripe's event destination): the Stripe event is the
//! EventBridge event's `detail`; there is no signature, EventBridge authenticates the source.
//! A failure is returned as an error so EventBridge retries (and then dead-letters) it.
//! A scheduled event (`detail-type: Scheduled Event`) runs the stack sweep instead.

use billing_core::adapters::apigateway::ApiGatewayKeys;
use billing_core::adapters::aws::{AwsLimits, load_sdk_config, resolve_secret};
use billing_core::adapters::cloudformation::CloudFormationStacks;
use billing_core::adapters::cognito::CognitoDirectory;
use billing_core::adapters::dynamo::DynamoStore;
use billing_core::adapters::stripe::StripeBilling;
use billing_core::config::EnvReader;
use billing_core::webhook::parse_event;
use billing_core::webhook::sync::Outcome;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};
use tracing::{info, warn};
use webhook::Deps;
use webhook::config::Config;

#[tokio::main]
async fn main() -> Result<(), Error> {
    billing_core::telemetry::init();
    let config = Config::from_env(&EnvReader::process(), false)?;
    let sdk = load_sdk_config(AwsLimits::HTTP).await;
    let secret_key = resolve_secret(&config.stripe.secret_key, &sdk).await?;
    let deps = Deps {
        store: DynamoStore::from_sdk(&sdk, &config.table_name),
        stripe: StripeBilling::new(&config.stripe, &secret_key)?,
        directory: CognitoDirectory::from_sdk(&sdk),
        keys: ApiGatewayKeys::from_sdk(&sdk),
        stacks: CloudFormationStacks::from_sdk(&sdk),
        settings: config.sync,
        webhook_secrets: Vec::new(),
        livemode: config.livemode,
    };
    run(service_fn(|event: LambdaEvent<Value>| async {
        let (payload, _) = event.into_parts();
        if payload["detail-type"] == "Scheduled Event" {
            // The scheduled sweep: stacks still being deleted are checked again.
            let still_deleting = deps.sync().sweep(billing_core::http::now()).await?;
            info!(still_deleting, "stack sweep done");
            return Ok(json!({"outcome": "swept", "still_deleting": still_deleting}));
        }
        let detail = serde_json::to_vec(&payload["detail"])?;
        let event = match parse_event(&detail) {
            Ok(event) => event,
            Err(reason) => {
                // Retrying cannot fix an unreadable event: log it and let it go.
                warn!(%reason, "eventbridge event is not a Stripe event we can read");
                return Ok::<Value, Error>(json!({"outcome": "invalid_event"}));
            }
        };
        if event.livemode != deps.livemode {
            warn!(event_id = %event.id, "eventbridge event refused: livemode differs");
            return Ok(json!({"outcome": "livemode_mismatch"}));
        }
        let outcome = deps.apply(&event, billing_core::http::now()).await?;
        if outcome == Outcome::InProgress {
            return Err("event in progress in another delivery; retry".into());
        }
        info!(event_id = %event.id, event_type = %event.event_type, outcome = outcome.as_str(), "event handled");
        Ok(json!({"outcome": outcome.as_str()}))
    }))
    .await
}
