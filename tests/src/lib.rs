//! Helpers for the end-to-end tests. They run against the local emulators started by
//! `local/up.sh` (`make test` does it) and read their addresses from the environment
//! (`local/.run/env`). Every test is `#[ignore]`d so a plain `cargo test` never needs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_cognitoidentityprovider::types::AttributeType;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

pub use aws_sdk_cognitoidentityprovider::Client as CognitoClient;
pub use aws_sdk_dynamodb::Client as DynamoClient;

/// The local environment, as written by `local/up.sh`.
#[derive(Debug, Clone)]
pub struct LocalEnv {
    pub user_pool_id: String,
    pub client_id: String,
    pub table_name: String,
    pub cognito_data_dir: String,
    pub stripe_api_base: String,
    pub stripe_secret_key: String,
    pub lambda_endpoint: String,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the emulators with local/up.sh and source local/.run/env (make test does both)")
    })
}

impl LocalEnv {
    pub fn from_env() -> Self {
        Self {
            user_pool_id: var("USER_POOL_ID"),
            client_id: var("USER_POOL_CLIENT_ID"),
            table_name: var("TABLE_NAME"),
            cognito_data_dir: var("COGNITO_LOCAL_DATA_DIR"),
            stripe_api_base: var("STRIPE_API_BASE"),
            stripe_secret_key: var("STRIPE_SECRET_KEY"),
            lambda_endpoint: var("LAMBDA_ENDPOINT"),
        }
    }

    pub async fn sdk(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest()).load().await
    }

    pub fn stripe(&self) -> stripe::Client {
        stripe::ClientBuilder::new(&self.stripe_secret_key)
            .url(&self.stripe_api_base)
            .build()
            .unwrap()
    }

    /// The code cognito-local stored for the user's last sign-up or forgot-password request
    /// (it would e-mail it). Its database is a JSON file per pool, written asynchronously.
    pub async fn confirmation_code(&self, username: &str) -> String {
        let path = format!("{}/{}.json", self.cognito_data_dir, self.user_pool_id);
        eventually(Duration::from_secs(10), "a confirmation code", || async {
            let db: Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
            db["Users"][username]["ConfirmationCode"]
                .as_str()
                .map(str::to_owned)
        })
        .await
    }

    /// Invokes a function under `cargo lambda watch` through the Lambda Invoke API.
    pub async fn invoke(&self, function: &str, event: &Value) -> Value {
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.lambda_endpoint
        );
        let response = reqwest::Client::new()
            .post(url)
            .json(event)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "invoke: {}",
            response.status()
        );
        response.json().await.unwrap()
    }
}

/// A name no earlier run used.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{nanos}")
}

/// Polls `probe` until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn attribute(name: &str, value: &str) -> AttributeType {
    AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .unwrap()
}

pub async fn user_attribute(
    cognito: &CognitoClient,
    env: &LocalEnv,
    username: &str,
    name: &str,
) -> Option<String> {
    let user = cognito
        .admin_get_user()
        .user_pool_id(&env.user_pool_id)
        .username(username)
        .send()
        .await
        .unwrap();
    user.user_attributes()
        .iter()
        .find(|attribute| attribute.name() == name)
        .and_then(|attribute| attribute.value().map(str::to_owned))
}

pub async fn get_item(
    dynamo: &DynamoClient,
    env: &LocalEnv,
    pk: &str,
    sk: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    dynamo
        .get_item()
        .table_name(&env.table_name)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

pub fn string(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .cloned()
        .unwrap_or_else(|| panic!("item has no string {name}"))
}

/// Customers the Stripe emulator holds for a Cognito sub.
pub async fn customers_with_sub(stripe: &stripe::Client, sub: &str) -> Vec<stripe_core::Customer> {
    stripe_core::customer::SearchCustomer::new(format!("metadata['cognito_sub']:'{sub}'"))
        .send(stripe)
        .await
        .unwrap()
        .data
}
