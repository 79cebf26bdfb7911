//! Stripe webhook over HTTPS: `POST /stripe/webhook`.

use billing_core::adapters::apigateway::ApiGatewayKeys;
use billing_core::adapters::aws::{AwsLimits, load_sdk_config, resolve_secret};
use billing_core::adapters::cloudformation::CloudFormationStacks;
use billing_core::adapters::cognito::CognitoDirectory;
use billing_core::adapters::dynamo::DynamoStore;
use billing_core::adapters::stripe::StripeBilling;
use billing_core::config::EnvReader;
use lambda_http::{Error, run, service_fn};
use webhook::config::{Config, split_secrets};
use webhook::{Aws, Deps, handler};

// A Lambda sandbox handles one invocation at a time: one thread, no cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    billing_core::telemetry::init();
    let config = Config::from_env(&EnvReader::process(), true)?;
    let sdk = load_sdk_config(AwsLimits::HTTP).await;
    let secret_key = resolve_secret(&config.stripe.secret_key, &sdk).await?;
    let webhook_secrets = match &config.webhook_secrets {
        Some(source) => split_secrets(&resolve_secret(source, &sdk).await?),
        None => Vec::new(),
    };
    let deps = Deps::<Aws> {
        store: DynamoStore::from_sdk(&sdk, &config.table_name),
        stripe: StripeBilling::new(&config.stripe, &secret_key)?,
        directory: CognitoDirectory::from_sdk(&sdk),
        keys: ApiGatewayKeys::from_sdk(&sdk, config.deployment),
        stacks: CloudFormationStacks::from_sdk(&sdk, config.stack_role),
        settings: config.sync,
        webhook_secrets,
        livemode: config.livemode,
    };
    run(service_fn(|request| handler::handle(&deps, request))).await
}
