//! Helpers for the end-to-end tests. They run against the local emulators started by
//! `local/up.sh` (`make test` does it) and read their addresses from the environment
//! (`local/.run/env`). Every test is `#[ignore]`d so a plain `cargo test` never needs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_cognitoidentityprovider::types::AttributeType;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

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
        aws_config::defaults(BehaviorVersion::latest())
            .http_client(billing_core::adapters::aws::https_client())
            .load()
            .await
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

pub const PASSWORD: &str = "Passw0rd!Passw0rd";

/// A user who signed up and confirmed (so the trigger ran), with the claims of their ID token.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub username: String,
    pub email: String,
    pub sub: String,
    pub claims: serde_json::Map<String, Value>,
}

/// A new user signed up (not confirmed yet): username, email, sub.
pub async fn sign_up(env: &LocalEnv, cognito: &CognitoClient) -> (String, String, String) {
    let username = unique("e2e-user-");
    let email = format!("{username}@example.com");
    let sub = sign_up_with_email(env, cognito, &username, &email).await;
    (username, email, sub)
}

/// Signs `username` up with this e-mail (not confirmed yet); returns the sub.
pub async fn sign_up_with_email(
    env: &LocalEnv,
    cognito: &CognitoClient,
    username: &str,
    email: &str,
) -> String {
    let signed_up = cognito
        .sign_up()
        .client_id(&env.client_id)
        .username(username)
        .password(PASSWORD)
        .user_attributes(attribute("email", email))
        .send()
        .await
        .unwrap();
    assert!(!signed_up.user_confirmed());
    signed_up.user_sub().to_owned()
}

/// Confirms the sign-up with the code cognito-local stored: this fires the trigger.
pub async fn confirm_sign_up(env: &LocalEnv, cognito: &CognitoClient, username: &str) {
    cognito
        .confirm_sign_up()
        .client_id(&env.client_id)
        .username(username)
        .confirmation_code(env.confirmation_code(username).await)
        .send()
        .await
        .unwrap();
}

pub async fn signed_up_user(env: &LocalEnv, cognito: &CognitoClient) -> TestUser {
    let (username, email, sub) = sign_up(env, cognito).await;
    confirm_sign_up(env, cognito, &username).await;
    eventually(Duration::from_secs(90), "custom:stripe_customer_id", || {
        user_attribute(cognito, env, &username, "custom:stripe_customer_id")
    })
    .await;
    let claims = id_token_claims(env, cognito, &username).await;
    TestUser {
        sub,
        username,
        email,
        claims,
    }
}

/// Signs in and decodes the ID token's claims, as API Gateway's JWT authorizer would pass them
/// (every value a string).
pub async fn id_token_claims(
    env: &LocalEnv,
    cognito: &CognitoClient,
    username: &str,
) -> serde_json::Map<String, Value> {
    use base64::Engine;
    let auth = cognito
        .initiate_auth()
        .client_id(&env.client_id)
        .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await
        .unwrap();
    let token = auth
        .authentication_result()
        .unwrap()
        .id_token()
        .unwrap()
        .to_owned();
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .unwrap();
    let claims: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
    claims
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            (name, Value::String(value))
        })
        .collect()
}

/// An HTTP API (payload 2.0) event, as API Gateway sends it to the function; `claims` as the
/// JWT authorizer passes them, or none for a route without authorizer.
pub fn http_api_event(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Option<&Value>,
    claims: Option<&serde_json::Map<String, Value>>,
) -> Value {
    let raw_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {"content-type": "application/json", "host": "api.local.test"},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "api.local.test",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "e2e"},
            "requestId": unique("req-"),
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "21/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1763719200000u64
        },
        "isBase64Encoded": false
    });
    if !query.is_empty() {
        event["queryStringParameters"] = query
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    if let Some(body) = body {
        event["body"] = Value::String(body.to_string());
    }
    if let Some(claims) = claims {
        event["requestContext"]["authorizer"] =
            serde_json::json!({"jwt": {"claims": claims, "scopes": null}});
    }
    event
}

/// The function's API Gateway response: status, JSON body (or null) and Location.
pub async fn call_api(
    env: &LocalEnv,
    function: &str,
    event: &Value,
) -> (u16, Value, Option<String>) {
    let response = env.invoke(function, event).await;
    let status = response["statusCode"].as_u64().unwrap() as u16;
    let body = response["body"]
        .as_str()
        .filter(|text| !text.is_empty())
        .map(|text| serde_json::from_str(text).unwrap())
        .unwrap_or(Value::Null);
    let location = response["headers"]["location"].as_str().map(str::to_owned);
    (status, body, location)
}

/// A raw call to the Stripe front (its test endpoints included).
pub async fn stripe_front(env: &LocalEnv, method: reqwest::Method, path: &str) -> Value {
    stripe_front_form(env, method, path, &[]).await
}

/// Waits until the Stripe emulator has nothing more on its way: every event delivered or given
/// up, none still to come from localstripe (the front's `GET /_test/webhooks/settled`).
pub async fn deliveries_settled(env: &LocalEnv) {
    eventually(
        Duration::from_secs(60),
        "the Stripe emulator's deliveries settled",
        || async {
            (stripe_front(env, reqwest::Method::GET, "/_test/webhooks/settled").await["settled"]
                == true)
                .then_some(())
        },
    )
    .await;
}

/// `stripe_front` with a form body (Stripe's parameters); asserts a 2xx answer.
pub async fn stripe_front_form(
    env: &LocalEnv,
    method: reqwest::Method,
    path: &str,
    form: &[(&str, &str)],
) -> Value {
    let request = reqwest::Client::new()
        .request(method, format!("{}{path}", env.stripe_api_base))
        .bearer_auth(&env.stripe_secret_key);
    let request = if form.is_empty() {
        request
    } else {
        request.form(form)
    };
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// The usage plan id of a plan, from the functions' `PLANS`.
pub fn usage_plan(plan: &str) -> String {
    std::env::var("PLANS")
        .unwrap()
        .split(',')
        .find_map(|entry| entry.strip_prefix(&format!("{plan}=")).map(str::to_owned))
        .unwrap()
}

/// The user's API keys (by their deterministic name), values included.
pub async fn keys_of(
    apigw: &aws_sdk_apigateway::Client,
    sub: &str,
) -> Vec<aws_sdk_apigateway::types::ApiKey> {
    let name = format!("billing-user-{sub}");
    apigw
        .get_api_keys()
        .name_query(&name)
        .include_values(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
        .into_iter()
        .filter(|key| key.name() == Some(name.as_str()))
        .collect()
}

/// The user's one API key once the webhook has made it: it sets `custom:plan_type` first and
/// the key after, so a plan seen in Cognito does not mean the key exists yet.
pub async fn provisioned_key(
    apigw: &aws_sdk_apigateway::Client,
    sub: &str,
) -> aws_sdk_apigateway::types::ApiKey {
    eventually(Duration::from_secs(30), "the user's API key", || async {
        let mut keys = keys_of(apigw, sub).await;
        assert!(keys.len() <= 1, "one key per user, found {}", keys.len());
        keys.pop()
    })
    .await
}

/// The usage plans of the user's one key and whether it is enabled (`None`: no key).
pub async fn key_usage_plans(
    apigw: &aws_sdk_apigateway::Client,
    sub: &str,
) -> Option<(Vec<String>, bool)> {
    let keys = keys_of(apigw, sub).await;
    assert!(keys.len() <= 1, "one key per user, found {}", keys.len());
    let key = keys.first()?;
    let plans = apigw
        .get_usage_plans()
        .key_id(key.id().unwrap())
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
        .into_iter()
        .filter_map(|plan| plan.id)
        .collect();
    Some((plans, key.enabled()))
}

/// Checks out pro for the user and pays in the Stripe emulator (no success return: whatever
/// follows comes from the webhook). Returns the subscription id.
pub async fn buy_pro(env: &LocalEnv, user: &TestUser) -> String {
    let session_id = start_checkout(env, user, "pro_monthly").await;
    pay_session(env, &session_id).await
}

/// `POST /checkout` for the price with this lookup key; the session's id.
pub async fn start_checkout(env: &LocalEnv, user: &TestUser, lookup_key: &str) -> String {
    let start = http_api_event(
        "POST",
        "/checkout",
        &[],
        Some(&json!({ "lookup_key": lookup_key })),
        Some(&user.claims),
    );
    let (status, body, _) = call_api(env, "checkout", &start).await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Pays the session in the Stripe emulator (no success return); the subscription's id.
pub async fn pay_session(env: &LocalEnv, session_id: &str) -> String {
    let complete = format!("/_test/checkout/sessions/{session_id}/complete");
    stripe_front(env, reqwest::Method::POST, &complete).await;
    let session = stripe_front(
        env,
        reqwest::Method::GET,
        &format!("/v1/checkout/sessions/{session_id}"),
    )
    .await;
    session["subscription"].as_str().unwrap().to_owned()
}

pub async fn wait_for_plan(cognito: &CognitoClient, env: &LocalEnv, username: &str, plan: &str) {
    eventually(Duration::from_secs(60), &format!("plan {plan}"), || async {
        (user_attribute(cognito, env, username, "custom:plan_type")
            .await
            .as_deref()
            == Some(plan))
        .then_some(())
    })
    .await;
}

/// What `billing-admin` (built by `cargo build --workspace`) did with the local environment:
/// its exit code and what it printed on stdout and stderr.
pub fn billing_admin_run(args: &[&str]) -> (i32, String, String) {
    billing_admin_run_with(args, &[])
}

/// `billing_admin_run` with these environment variables added.
pub fn billing_admin_run_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let deps = std::env::current_exe().unwrap();
    let bin = deps
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("billing-admin");
    let output = std::process::Command::new(&bin)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo build --workspace builds it)", bin.display()));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "billing-admin {args:?} panicked: {stderr}"
    );
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    )
}

/// Runs `billing-admin`, asserts it succeeded and returns what it printed.
pub fn billing_admin(args: &[&str]) -> String {
    let (code, stdout, stderr) = billing_admin_run(args);
    assert_eq!(code, 0, "billing-admin {args:?}: {stdout}{stderr}");
    stdout
}

/// Switches the Stripe emulator's webhook deliveries on or off (events are still listed).
pub async fn set_delivery(env: &LocalEnv, enabled: bool) {
    let answer = stripe_front(
        env,
        reqwest::Method::POST,
        &format!("/_test/webhooks/delivery?enabled={enabled}"),
    )
    .await;
    assert_eq!(answer["enabled"], enabled);
}

/// Turns deliveries back on when dropped, also when the test fails half-way, so the tests after
/// it get their webhooks (a plain blocking request: `Drop` runs inside the test's runtime).
#[derive(Debug)]
pub struct DeliveryBackOn(String);

impl Drop for DeliveryBackOn {
    fn drop(&mut self) {
        let address = self.0.trim_start_matches("http://").trim_end_matches('/');
        if let Ok(mut stream) = std::net::TcpStream::connect(address) {
            let request = format!(
                "POST /_test/webhooks/delivery?enabled=true HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = std::io::Write::write_all(&mut stream, request.as_bytes());
            let _ = std::io::Read::read(&mut stream, &mut [0; 256]);
        }
    }
}

/// Switches deliveries off until the guard is dropped (or switched on before).
pub async fn lost_deliveries(env: &LocalEnv) -> DeliveryBackOn {
    set_delivery(env, false).await;
    DeliveryBackOn(env.stripe_api_base.clone())
}

/// Calls made with a key on a day, recorded where API Gateway's `GetUsage` reads them.
pub async fn record_calls(key_id: &str, day: billing_core::usage::UtcDay, calls: u64) {
    let moto = std::env::var("AWS_ENDPOINT_URL_API_GATEWAY").unwrap();
    let answer = reqwest::Client::new()
        .post(format!("{moto}/_test/usage"))
        .json(&serde_json::json!({"keyId": key_id, "day": day.to_string(), "calls": calls}))
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "{}",
        answer.text().await.unwrap()
    );
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Signs the event with the deployment's webhook secret and posts it to the webhook function:
/// the answer's status and JSON body (`null` when it has none).
pub async fn deliver_signed(env: &LocalEnv, event: &Value) -> (u16, Value) {
    let secrets = std::env::var("STRIPE_WEBHOOK_SECRETS").unwrap();
    let secret = secrecy::SecretString::from(secrets.split(',').next().unwrap().trim().to_owned());
    let body = event.to_string();
    let signature = billing_core::webhook::sign(body.as_bytes(), &secret, now());
    let response = reqwest::Client::new()
        .post(format!(
            "{}/lambda-url/webhook/stripe/webhook",
            env.lambda_endpoint
        ))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until the Stripe front has delivered every event about these objects (subscriptions,
/// or what names them: invoices, checkout sessions) to the webhook, as Stripe's
/// `pending_webhooks` counts it.
pub async fn delivered(env: &LocalEnv, object_ids: &[String]) {
    eventually(
        Duration::from_secs(60),
        "every event about them delivered",
        || async {
            let events = stripe_front(env, reqwest::Method::GET, "/_test/events").await;
            let pending = events["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|event| {
                    let object = &event["data"]["object"];
                    let about = [object["id"].as_str(), object["subscription"].as_str()];
                    about
                        .into_iter()
                        .flatten()
                        .any(|id| object_ids.iter().any(|wanted| wanted == id))
                        && event["pending_webhooks"].as_u64().unwrap_or(0) > 0
                })
                .count();
            (pending == 0).then_some(())
        },
    )
    .await;
}
