//! What one webhook delivery costs, counted at the emulators (moto counts requests by caller
//! and service, cognito-local logs each request, the Stripe front counts its callers): a
//! renewal of a linked pro user (the subscription updated with a new period, in the emulator's
//! 2017 shape and in the current one; invoice.paid, invoice.payment_succeeded,
//! invoice.finalized) makes at most 4 DynamoDB requests (an invoice's event one) and none to
//! Stripe, Cognito, API Gateway or CloudFormation; a free user's move to pro makes the writes that change something.

use std::collections::BTreeMap;

use integration_tests::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Requests made by our functions to each service, from the counters' resets to now.
#[derive(Debug, Default)]
struct Calls {
    aws: BTreeMap<String, u64>,
    /// `None` when cognito-local logs no requests (it does at the debug level, as `make bench`
    /// runs it).
    cognito: Option<u64>,
    stripe: u64,
    /// Our calls at moto in order, each with its operation: what a count is made of.
    operations: Vec<String>,
}

impl Calls {
    fn aws(&self, service: &str) -> u64 {
        self.aws.get(service).copied().unwrap_or(0)
    }
}

fn cognito_log() -> std::path::PathBuf {
    let here = std::path::Path::new("../local/.run/logs/cognito.log");
    if here.exists() {
        here.to_owned()
    } else {
        "local/.run/logs/cognito.log".into()
    }
}

async fn json_of(method: Method, url: &str) -> Value {
    reqwest::Client::new()
        .request(method, url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn moto_calls_url() -> String {
    format!(
        "http://127.0.0.1:{}/_local/calls",
        std::env::var("MOTO_PORT").unwrap()
    )
}

/// Delivers the event, created at `created`, signed as Stripe would, and counts what the
/// function called for it.
async fn calls_for(env: &LocalEnv, event: &Value, created: i64) -> Calls {
    json_of(Method::DELETE, &moto_calls_url()).await;
    stripe_front(env, Method::DELETE, "/_test/calls").await;
    let log_start = std::fs::metadata(cognito_log()).unwrap().len();

    let mut event = event.clone();
    event["created"] = json!(created);
    let (status, _) = deliver_signed(env, &event).await;
    assert_eq!(status, 200, "{event}");

    let mut calls = Calls::default();
    let aws = json_of(Method::GET, &moto_calls_url()).await;
    for (key, count) in aws.as_object().unwrap() {
        if let Some(service) = key.strip_prefix("aws-sdk-rust ") {
            calls
                .aws
                .insert(service.to_owned(), count.as_u64().unwrap());
        }
    }
    let operations = json_of(Method::GET, &format!("{}?operations", moto_calls_url())).await;
    calls.operations = operations
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|call| call.starts_with("aws-sdk-rust "))
        .map(str::to_owned)
        .collect();
    let log = std::fs::read(cognito_log()).unwrap();
    let completed: Vec<String> = String::from_utf8_lossy(&log[log_start as usize..])
        .lines()
        .filter(|line| line.contains("request completed"))
        .map(str::to_owned)
        .collect();
    calls.cognito = (!completed.is_empty()).then(|| {
        completed
            .iter()
            .filter(|line| line.contains("aws-sdk-rust"))
            .count() as u64
    });
    let stripe = stripe_front(env, Method::GET, "/_test/calls").await;
    calls.stripe = stripe
        .as_object()
        .unwrap()
        .iter()
        .filter(|(caller, _)| !caller.starts_with("Python-urllib"))
        .map(|(_, count)| count.as_u64().unwrap_or(0))
        .sum();
    eprintln!(
        "{:<32} {:?} cognito {:?} stripe {} {:?}",
        event["type"].as_str().unwrap_or_default(),
        calls.aws,
        calls.cognito,
        calls.stripe,
        calls.operations
    );
    calls
}

fn event(event_type: &str, object: Value) -> Value {
    json!({
        "id": unique("evt_calls"), "object": "event", "type": event_type, "created": now(),
        "livemode": false, "api_version": "2017-08-15", "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null}, "data": {"object": object}
    })
}

/// The subscription as Stripe's current API versions send it: the period on its item, the
/// price's product as an id.
fn current_shape(subscription: &Value, period_end: i64) -> Value {
    let item = &subscription["items"]["data"][0];
    let price = if item["price"].is_object() {
        &item["price"]
    } else {
        &item["plan"]
    };
    let mut current = subscription.clone();
    let object = current.as_object_mut().unwrap();
    object.remove("plan");
    object.remove("current_period_end");
    object.remove("current_period_start");
    current["items"]["data"] = json!([{
        "id": item["id"], "object": "subscription_item",
        "current_period_start": period_end - 30 * 24 * 3600, "current_period_end": period_end,
        "price": {"id": price["id"], "object": "price", "product": price["product"], "metadata": {}}
    }]);
    current
}

fn invoice(customer_id: &str, subscription_id: &str, event_type: &str) -> Value {
    event(
        event_type,
        json!({
            "id": unique("in_calls"), "object": "invoice", "customer": customer_id, "status": "paid",
            "amount_due": 1500, "amount_paid": 1500, "amount_remaining": 0, "currency": "eur",
            "billing_reason": "subscription_cycle", "subscription": subscription_id
        }),
    )
}

fn assert_renewal_within_budget(calls: &Calls) {
    assert!(calls.aws("dynamodb") <= 4, "{calls:?}");
    for service in ["apigateway", "cloudformation", "cognito-idp"] {
        assert_eq!(calls.aws(service), 0, "{service}: {calls:?}");
    }
    assert_eq!(calls.cognito.unwrap_or(0), 0, "{calls:?}");
    assert_eq!(calls.stripe, 0, "{calls:?}");
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn a_renewal_should_cost_at_most_4_dynamodb_requests_and_nothing_else() {
    let env = LocalEnv::from_env();
    let sdk = env.sdk().await;
    let cognito = CognitoClient::new(&sdk);
    let user = signed_up_user(&env, &cognito).await;
    let customer_id = user_attribute(&cognito, &env, &user.username, "custom:stripe_customer_id")
        .await
        .unwrap();
    let subscription_id = buy_pro(&env, &user).await;
    wait_for_plan(&cognito, &env, &user.username, "pro").await;
    // The purchase's own deliveries settle (its stack made), then the emulator sends nothing.
    deliveries_settled(&env).await;
    let back_on = lost_deliveries(&env).await;

    let subscription = stripe_front(
        &env,
        Method::GET,
        &format!("/v1/subscriptions/{subscription_id}"),
    )
    .await;
    let period_end = subscription["current_period_end"].as_i64().unwrap();
    let mut renewed_2017 = subscription.clone();
    renewed_2017["current_period_start"] = json!(period_end);
    renewed_2017["current_period_end"] = json!(period_end + 30 * 24 * 3600);
    let renewals = [
        event("customer.subscription.updated", renewed_2017),
        invoice(&customer_id, &subscription_id, "invoice.finalized"),
        invoice(&customer_id, &subscription_id, "invoice.paid"),
        invoice(&customer_id, &subscription_id, "invoice.payment_succeeded"),
        event(
            "customer.subscription.updated",
            current_shape(&subscription, period_end + 60 * 24 * 3600),
        ),
    ];
    let mut counted = Vec::new();
    // A second apart, after everything the purchase sent: each event newer than the one before.
    let first = now() + 1;
    for (later, renewal) in (0..).zip(&renewals) {
        counted.push(calls_for(&env, renewal, first + later).await);
    }
    counted.iter().for_each(assert_renewal_within_budget);
    // An invoice's event is its records: written with the event's completion in one request.
    for invoice_calls in &counted[1..4] {
        assert_eq!(invoice_calls.aws("dynamodb"), 1, "{invoice_calls:?}");
    }
    assert_eq!(
        user_attribute(&cognito, &env, &user.username, "custom:plan_type")
            .await
            .as_deref(),
        Some("pro")
    );

    // A free user moves to pro: the plan attribute and the key change, nothing else outside
    // DynamoDB but the subscription's stack.
    let free = signed_up_user(&env, &cognito).await;
    let free_customer = user_attribute(&cognito, &env, &free.username, "custom:stripe_customer_id")
        .await
        .unwrap();
    let mut upgraded = current_shape(&subscription, period_end);
    upgraded["id"] = json!(unique("sub_calls"));
    upgraded["customer"] = json!(free_customer);
    let calls = calls_for(
        &env,
        &event("customer.subscription.created", upgraded),
        now(),
    )
    .await;
    assert_eq!(calls.stripe, 0, "{calls:?}");
    assert!(calls.aws("apigateway") > 0, "the key: {calls:?}");
    // The key's usage plans are read with the key, not again to attach it.
    let usage_plan_reads = calls
        .operations
        .iter()
        .filter(|call| call.ends_with("apigateway GET /usageplans"))
        .count();
    assert_eq!(usage_plan_reads, 1, "{calls:?}");
    if let Some(cognito) = calls.cognito {
        assert_eq!(cognito, 1, "the plan attribute: {calls:?}");
    }
    wait_for_plan(&cognito, &env, &free.username, "pro").await;
    drop(back_on);
}
