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
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use webhook::config::Config;
use webhook::{Aws, Deps, eventbridge};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    billing_core::telemetry::init();
    let config = Config::from_env(&EnvReader::process(), false)?;
    let sdk = load_sdk_config(AwsLimits::HTTP).await;
    let secret_key = resolve_secret(&config.stripe.secret_key, &sdk).await?;
    let deps = Deps::<Aws> {
        store: DynamoStore::from_sdk(&sdk, &config.table_name),
        stripe: StripeBilling::new(&config.stripe, &secret_key)?,
        directory: CognitoDirectory::from_sdk(&sdk),
        keys: ApiGatewayKeys::from_sdk(&sdk, config.deployment),
        stacks: CloudFormationStacks::from_sdk(&sdk, config.stack_role),
        settings: config.sync,
        webhook_secrets: Vec::new(),
        livemode: config.livemode,
    };
    run(service_fn(|event: LambdaEvent<Value>| {
        eventbridge::handle(&deps, event.payload)
    }))
    .await
}
