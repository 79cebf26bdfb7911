//! Stripe Checkout behind Cognito: `POST /checkout` and the success return
//! `GET /checkout/complete`.

use billing_core::adapters::apigateway::{ApiGatewayKeys, Deployment};
use billing_core::adapters::aws::{AwsLimits, load_sdk_config, resolve_secret};
use billing_core::adapters::cognito::CognitoDirectory;
use billing_core::adapters::dynamo::DynamoStore;
use billing_core::adapters::stripe::StripeBilling;
use billing_core::config::EnvReader;
use checkout::Deps;
use checkout::config::Config;
use lambda_http::{Error, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    billing_core::telemetry::init("checkout");
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
        plans: config.account.plans,
        policy: config.account.policy,
        settings: config.checkout,
        user_pool_id: config.account.user_pool_id,
    };
    run(service_fn(|request| checkout::handle(&deps, request))).await
}
