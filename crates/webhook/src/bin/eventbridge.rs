//! Stripe events from Amazon EventBridge (Stripe's event destination): the Stripe event is the
//! EventBridge event's `detail`; there is no signature, EventBridge authenticates the source.
//! A failure is returned as an error so EventBridge retries (and then dead-letters) it.
//! A scheduled event (`detail-type: Scheduled Event`) runs the reconciler instead.

use billing_core::adapters::aws::{AwsLimits, load_sdk_config};
use billing_core::config::EnvReader;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use webhook::config::Config;
use webhook::{Aws, Deps, eventbridge};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    billing_core::telemetry::init("webhook-eventbridge");
    let config = Config::from_env(&EnvReader::process(), false)?;
    let budget = config.reconciler_budget;
    let sdk = load_sdk_config(AwsLimits::HTTP).await;
    let deps = Deps::<Aws>::from_config(config, &sdk).await?;
    run(service_fn(|event: LambdaEvent<Value>| {
        eventbridge::handle(&deps, event.payload, budget)
    }))
    .await
}
