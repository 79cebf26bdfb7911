//! Stripe webhook over HTTPS: `POST /stripe/webhook`.

use billing_core::adapters::aws::{AwsLimits, load_sdk_config};
use billing_core::config::EnvReader;
use lambda_http::{Error, run, service_fn};
use webhook::config::Config;
use webhook::{Aws, Deps, handler};

// A Lambda sandbox handles one invocation at a time: one thread, no cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    billing_core::telemetry::init("webhook");
    let config = Config::from_env(&EnvReader::process(), true)?;
    let sdk = load_sdk_config(AwsLimits::HTTP).await;
    let deps = Deps::<Aws>::from_config(config, &sdk).await?;
    run(service_fn(|request| handler::handle(&deps, request))).await
}
