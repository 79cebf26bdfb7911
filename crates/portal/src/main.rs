//! The Billing Portal and the caller's own account behind Cognito: `POST /portal`, `GET /me`,
//! `DELETE /me`.

use billing_core::adapters::apigateway::{ApiGatewayKeys, Deployment};
use billing_core::adapters::aws::{AwsLimits, load_sdk_config, resolve_secret};
use billing_core::adapters::cognito::CognitoDirectory;
use billing_core::adapters::dynamo::DynamoStore;
use billing_core::adapters::stripe::StripeBilling;
use billing_core::config::EnvReader;
use lambda_http::{Error, run, service_fn};
use portal::Deps;
use portal::config::Config;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    billing_core::telemetry::init("portal");
    let env = EnvReader::process();
    let config = Config::from_env(&env)?;
    let deployment = Deployment::from_env(&env)?;
    let sdk = load_sdk_config(AwsLimits::HTTP).await;
    let secret_key = resolve_secret(&config.stripe.secret_key, &sdk).await?;

    let deps = Deps {
        store: DynamoStore::from_sdk(&sdk, &config.table_name),
        stripe: StripeBilling::new(&config.stripe, &secret_key)?,
        directory: CognitoDirectory::from_sdk(&sdk),
        keys: ApiGatewayKeys::from_sdk(&sdk, deployment),
        account: config.account,
    };
    run(service_fn(|request| portal::handle(&deps, request))).await
}
