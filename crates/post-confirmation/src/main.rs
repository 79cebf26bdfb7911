//! Cognito post-confirmation trigger: creates the user's Stripe customer once and links it.

use billing_core::adapters::aws::{AwsLimits, load_sdk_config, resolve_secret};
use billing_core::adapters::cognito::CognitoDirectory;
use billing_core::adapters::dynamo::DynamoStore;
use billing_core::adapters::stripe::StripeBilling;
use billing_core::config::EnvReader;
use lambda_runtime::{Error, run, service_fn};
use post_confirmation::Deps;
use post_confirmation::config::Config;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    billing_core::telemetry::init("post-confirmation");
    let config = Config::from_env(&EnvReader::process())?;
    let sdk = load_sdk_config(AwsLimits::TRIGGER).await;
    let secret_key = resolve_secret(&config.stripe.secret_key, &sdk).await?;

    let deps = Deps {
        links: DynamoStore::from_sdk(&sdk, &config.table_name),
        billing: StripeBilling::new(&config.stripe, &secret_key)?,
        directory: CognitoDirectory::from_sdk(&sdk),
        budget: config.budget,
    };
    run(service_fn(|event| post_confirmation::handle(&deps, event))).await
}
