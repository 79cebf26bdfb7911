//! The webhook's ingress with in-memory fakes: signatures and their rotation, body limits,
//! what is not an event, livemode, unknown types, duplicates, the store down, and the
//! EventBridge envelope. What an event does once applied is tested in billing-core
//! (`crates/billing-core/tests/sync_*.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;

use billing_core::domain::{CustomerId, CustomerLink, UserPoolId, UserSub, Username};
use billing_core::fakes::logs::capture_json;
use billing_core::fakes::{
    FakeApiKeys, FakeDirectory, FakePorts, FakeStacks, FakeStripe, InMemoryStore,
};
use billing_core::plans::{AccessPolicy, PlanCatalog};
use billing_core::ports::{CustomerLinks, EventLog};
use billing_core::webhook::sign;
use billing_core::webhook::sync::SyncSettings;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request};
use secrecy::SecretString;
use serde_json::{Value, json};
use webhook::Deps;
use webhook::handler::handle;

const SECRET: &str = "whsec_test_current";
const OLD_SECRET: &str = "whsec_test_previous";
const BUDGET: std::time::Duration = std::time::Duration::from_secs(30);
const SUB: &str = "sub-alice";
const CUSTOMER: &str = "cus_alice";

type FakeDeps = Deps<FakePorts>;

fn deps() -> FakeDeps {
    let stripe = FakeStripe::default();
    stripe.add_product("prod_pro", "pro");
    stripe.add_product("prod_free", "free");
    Deps {
        store: InMemoryStore::default(),
        stripe,
        directory: FakeDirectory::default(),
        keys: FakeApiKeys::default(),
        stacks: FakeStacks::default(),
        settings: SyncSettings {
            plans: PlanCatalog::parse("free=up_free,pro=up_pro").unwrap(),
            policy: AccessPolicy::parse("grace:7").unwrap(),
            user_pool_id: UserPoolId::parse("us-east-1_Pool").unwrap(),
            create_users: false,
            stack_templates: billing_core::stack_templates::StackTemplatePolicy::new(
                "billing-templates",
                "",
            )
            .unwrap(),
        },
        webhook_secrets: vec![SecretString::from(SECRET), SecretString::from(OLD_SECRET)],
        livemode: false,
        usage: billing_core::usage::UsageSettings {
            metered_usage_plans: vec!["up_pro".into()],
            lookback_days: 3,
            invoice_grace_secs: 3600,
        },
    }
}

fn link() -> CustomerLink {
    CustomerLink {
        sub: UserSub::parse(SUB).unwrap(),
        customer_id: CustomerId::parse(CUSTOMER).unwrap(),
        pool_id: UserPoolId::parse("us-east-1_Pool").unwrap(),
        username: Username::parse("alice").unwrap(),
    }
}

async fn linked_deps() -> FakeDeps {
    let deps = deps();
    deps.store.link(&link()).await.unwrap();
    deps
}

fn now() -> i64 {
    billing_core::http::now()
}

fn event(id: &str, event_type: &str, created: i64, object: Value) -> Value {
    json!({
        "id": id, "object": "event", "type": event_type, "created": created, "livemode": false,
        "api_version": "2025-10-29.clover", "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": object}
    })
}

fn subscription(id: &str, status: &str, product: &str) -> Value {
    json!({
        "id": id, "object": "subscription", "customer": CUSTOMER, "status": status, "created": 100,
        "cancel_at_period_end": false, "metadata": {},
        "items": {"object": "list", "data": [{
            "id": format!("si_{id}"), "object": "subscription_item", "current_period_end": 4_000_000_000u64,
            "price": {"id": format!("price_{product}"), "object": "price", "product": product, "metadata": {}}
        }]}
    })
}

fn sub_event(id: &str, event_type: &str, created: i64, status: &str) -> Value {
    event(
        id,
        event_type,
        created,
        subscription("sub_1", status, "prod_pro"),
    )
}

fn request(body: &str, signature: Option<String>) -> Request {
    let mut headers = json!({"content-type": "application/json"});
    if let Some(signature) = signature {
        headers["stripe-signature"] = Value::String(signature);
    }
    let api_event = json!({
        "version": "2.0", "routeKey": "POST /stripe/webhook", "rawPath": "/stripe/webhook",
        "rawQueryString": "", "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/stripe/webhook", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "Stripe/1.0"},
            "domainName": "api.example.com", "stage": "$default", "requestId": "r", "apiId": "a", "accountId": "1", "routeKey": "POST /stripe/webhook", "timeEpoch": 0},
        "body": body, "isBase64Encoded": false
    });
    lambda_http::request::from_str(&api_event.to_string()).unwrap()
}

fn signed(event: &Value) -> Request {
    let body = event.to_string();
    let signature = sign(body.as_bytes(), &SecretString::from(SECRET), now());
    request(&body, Some(signature))
}

async fn deliver(deps: &FakeDeps, event: &Value) -> (StatusCode, Value) {
    let response = handle(deps, signed(event)).await.unwrap();
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        _ => Value::Null,
    };
    (response.status(), body)
}

fn plan(deps: &FakeDeps) -> Option<String> {
    deps.directory
        .plan_of(&link().pool_id, &link().username)
        .map(|plan| plan.to_string())
}

// --- ingress ------------------------------------------------------------------------------

#[tokio::test]
async fn when_signature_is_missing_wrong_or_old_should_answer_400_and_do_nothing() {
    let deps = linked_deps().await;
    let body = sub_event("evt_1", "customer.subscription.created", 10, "active").to_string();
    let wrong = sign(body.as_bytes(), &SecretString::from("whsec_other"), now());
    let old = sign(body.as_bytes(), &SecretString::from(SECRET), now() - 301);
    for signature in [None, Some(wrong), Some(old), Some("t=1,v0=abc".to_owned())] {
        let response = handle(&deps, request(&body, signature)).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    let tampered = body.replace("active", "trialing");
    let signature = sign(body.as_bytes(), &SecretString::from(SECRET), now());
    let response = handle(&deps, request(&tampered, Some(signature)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(deps.store.stored_subscriptions().is_empty());
    assert_eq!(plan(&deps), None);
}

#[tokio::test]
async fn when_signed_with_the_previous_secret_should_be_accepted_during_rotation() {
    let deps = linked_deps().await;
    let body = sub_event("evt_1", "customer.subscription.created", 10, "active").to_string();
    let signature = sign(body.as_bytes(), &SecretString::from(OLD_SECRET), now());
    let response = handle(&deps, request(&body, Some(signature)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(plan(&deps).as_deref(), Some("pro"));
}

#[tokio::test]
async fn when_livemode_differs_should_answer_400() {
    let deps = linked_deps().await;
    let mut live = sub_event("evt_live", "customer.subscription.created", 10, "active");
    live["livemode"] = Value::Bool(true);
    let (status, body) = deliver(&deps, &live).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "livemode_mismatch");
    assert!(deps.store.stored_subscriptions().is_empty());

    let mut live_unreadable = live.clone();
    live_unreadable["data"]["object"]["status"] = json!(7);
    let (status, _) = deliver(&deps, &live_unreadable).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the other mode, readable or not"
    );
    assert!(deps.store.unreadable_events().await.unwrap().is_empty());
}

/// Stripe retries any non-2xx answer for three days: a verified event we cannot read is
/// recorded and acknowledged, whatever stops us reading it.
#[tokio::test]
async fn when_a_verified_event_cannot_be_read_should_record_it_and_answer_200() {
    let deps = linked_deps().await;
    let mut missing_status = sub_event("evt_no_status", "customer.subscription.updated", 10, "x");
    missing_status["data"]["object"]
        .as_object_mut()
        .unwrap()
        .remove("status");
    let mut invoice_without_id = event(
        "evt_invoice_no_id",
        "invoice.paid",
        10,
        json!({"object": "invoice", "customer": CUSTOMER, "amount_due": 100}),
    );
    invoice_without_id["api_version"] = json!("2030-01-01.future");
    let thin = json!({
        "id": "evt_thin", "object": "v2.core.event", "type": "customer.subscription.updated",
        "created": "2026-12-01T10:00:00.000Z", "livemode": false,
        "related_object": {"id": "sub_1", "type": "subscription", "url": "/v1/subscriptions/sub_1"}
    });
    let not_an_event = json!({"hello": "world"});
    for (unreadable, event_id, field) in [
        (&missing_status, "evt_no_status", "data.object"),
        (&invoice_without_id, "evt_invoice_no_id", "data.object"),
        (&thin, "evt_thin", "created"),
    ] {
        let (status, body) = deliver(&deps, unreadable).await;
        assert_eq!(status, StatusCode::OK, "{event_id}");
        assert_eq!(body["outcome"], "unreadable", "{event_id}");
        let recorded = deps.store.unreadable_events().await.unwrap();
        let found = recorded
            .iter()
            .find(|recorded| recorded.event.event_id == event_id)
            .unwrap_or_else(|| panic!("{event_id} not recorded"));
        assert_eq!(found.event.field, field, "{event_id}");
    }
    let recorded = deps.store.unreadable_events().await.unwrap();
    let invoice = recorded
        .iter()
        .find(|r| r.event.event_id == "evt_invoice_no_id")
        .unwrap();
    assert_eq!(invoice.event.event_type.as_deref(), Some("invoice.paid"));
    assert_eq!(
        invoice.event.api_version.as_deref(),
        Some("2030-01-01.future")
    );
    assert_eq!(invoice.event.reason, "missing field `id`");

    // Not even an event id: recorded under the body's hash.
    let (status, body) = deliver(&deps, &not_an_event).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("unreadable"))
    );
    let recorded = deps.store.unreadable_events().await.unwrap();
    assert_eq!(recorded.len(), 4);
    assert!(
        recorded
            .iter()
            .any(|r| r.event.event_id.starts_with("body-sha256:") && r.event.event_type.is_none())
    );
    assert!(deps.store.stored_subscriptions().is_empty());
    assert_eq!(deps.directory.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn when_recording_an_unreadable_event_fails_should_answer_5xx() {
    let deps = linked_deps().await;
    deps.store.failing.store(true, Ordering::SeqCst);
    let mut unreadable = sub_event("evt_1", "customer.subscription.updated", 10, "active");
    unreadable["data"]["object"]["created"] = json!("yesterday");
    let (status, _) = deliver(&deps, &unreadable).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn when_event_type_is_not_used_should_answer_200_without_reading_its_object() {
    let deps = linked_deps().await;
    let unknown = event(
        "evt_x",
        "radar.early_fraud_warning.created",
        10,
        json!({"id": "issfr_1", "object": "radar.early_fraud_warning"}),
    );
    // invoice.upcoming previews an invoice: it has no id, and nothing in it is kept.
    let upcoming = event(
        "evt_upcoming",
        "invoice.upcoming",
        10,
        json!({"object": "invoice", "customer": CUSTOMER, "amount_due": "not read"}),
    );
    // Known object, unknown type: not used either.
    let reticulated = sub_event("evt_r", "customer.subscription.reticulated", 10, "active");
    for ignored in [unknown, upcoming, reticulated] {
        let (status, body) = deliver(&deps, &ignored).await;
        assert_eq!(status, StatusCode::OK, "{ignored}");
        assert_eq!(body["outcome"], "ignored", "{ignored}");
    }
    assert_eq!(deps.directory.calls.load(Ordering::SeqCst), 0);
    assert!(deps.store.unreadable_events().await.unwrap().is_empty());
    assert!(deps.store.stored_subscriptions().is_empty());
}

#[tokio::test]
async fn when_body_is_too_large_should_answer_413_before_verifying() {
    let deps = linked_deps().await;
    let mut large = sub_event("evt_1", "customer.subscription.created", 10, "active");
    large["data"]["object"]["metadata"]["padding"] = Value::String("x".repeat(600 * 1024));
    // Unsigned: a 400 would mean the signature was checked first.
    let response = handle(&deps, request(&large.to_string(), None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = deliver(&deps, &large).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "signed or not");
    assert!(deps.store.stored_subscriptions().is_empty());
}

#[tokio::test]
async fn when_body_is_not_json_should_answer_400() {
    let deps = linked_deps().await;
    let body = "not json";
    let signature = sign(body.as_bytes(), &SecretString::from(SECRET), now());
    let response = handle(&deps, request(body, Some(signature))).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(deps.directory.calls.load(Ordering::SeqCst), 0);
    assert!(deps.store.unreadable_events().await.unwrap().is_empty());
}

// --- idempotency and failures ---------------------------------------------------------------

#[tokio::test]
async fn when_an_event_is_delivered_twice_should_do_the_work_once() {
    let deps = linked_deps().await;
    let created = sub_event("evt_1", "customer.subscription.created", 10, "active");
    let (status, body) = deliver(&deps, &created).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("applied"))
    );
    let calls = deps.directory.calls.load(Ordering::SeqCst);

    let (status, body) = deliver(&deps, &created).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    assert_eq!(deps.directory.calls.load(Ordering::SeqCst), calls);
    assert_eq!(deps.keys.creates.load(Ordering::SeqCst), 1);
}

/// The delivery's answer, with what it logged as JSON lines.
async fn deliver_capturing_logs(deps: &FakeDeps, event: &Value) -> (StatusCode, Vec<Value>) {
    let ((status, _), logs) = capture_json(deliver(deps, event)).await;
    let lines = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (status, lines)
}

#[tokio::test]
async fn when_the_store_is_down_should_answer_5xx() {
    let deps = linked_deps().await;
    deps.store.failing.store(true, Ordering::SeqCst);
    let (status, body) = deliver(
        &deps,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["error"]["code"], "retry_later");
}

/// An operator finds a failed event in Stripe by its id: the one error line names it.
#[tokio::test]
async fn a_failed_event_should_be_logged_once_with_its_id_and_type() {
    let deps = linked_deps().await;
    deps.store.failing.store(true, Ordering::SeqCst);
    let event = sub_event("evt_failing", "customer.subscription.updated", 10, "active");

    let (status, lines) = deliver_capturing_logs(&deps, &event).await;

    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let errors: Vec<&Value> = lines
        .iter()
        .filter(|line| line["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 1, "{lines:?}");
    let fields = &errors[0]["fields"];
    assert_eq!(fields["event_id"], "evt_failing");
    assert_eq!(fields["event_type"], "customer.subscription.updated");
    assert_eq!(fields["retryable"], true, "{fields}");
}

// --- EventBridge ---------------------------------------------------------------------------

#[tokio::test]
async fn scheduled_tasks_should_run_by_name_and_an_unknown_one_fail() {
    let deps = linked_deps().await;
    deps.stripe.add_meter(billing_core::ports::MeterInfo {
        id: "mtr_1".into(),
        event_name: "api_calls".into(),
        customer_key: "stripe_customer_id".into(),
        value_key: "value".into(),
        active: true,
    });
    let usage: Value = serde_json::from_str(include_str!(
        "../../../events/webhook/eventbridge/scheduled-usage-report.json"
    ))
    .unwrap();
    let answer = webhook::eventbridge::handle(&deps, usage, BUDGET)
        .await
        .unwrap();
    assert_eq!(answer["outcome"], "usage_reported", "{answer}");
    assert_eq!(answer["report"]["usage_plans_read"], 1, "{answer}");
    assert_eq!(deps.keys.usage_reads(), 1);

    let answer = webhook::eventbridge::handle(&deps, json!({"task": "reconcile"}), BUDGET)
        .await
        .unwrap();
    assert_eq!(answer["outcome"], "reconciled", "{answer}");
    assert!(
        webhook::eventbridge::handle(&deps, json!({"task": "mystery"}), BUDGET)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn eventbridge_events_should_apply_like_signed_ones_and_schedules_should_reconcile() {
    let deps = deps();
    deps.store
        .link(&CustomerLink {
            customer_id: CustomerId::parse("cus_EXAMPLE1").unwrap(),
            ..link()
        })
        .await
        .unwrap();
    deps.stripe.add_product("prod_1Pro", "pro");
    let created: Value = serde_json::from_str(include_str!(
        "../../../events/webhook/eventbridge/subscription-created.json"
    ))
    .unwrap();
    let answer = webhook::eventbridge::handle(&deps, created.clone(), BUDGET)
        .await
        .unwrap();
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(plan(&deps).as_deref(), Some("pro"));
    let again = webhook::eventbridge::handle(&deps, created, BUDGET)
        .await
        .unwrap();
    assert_eq!(again["outcome"], "duplicate");

    // The schedule runs the reconciler: an event the webhook never got is applied.
    let mut missed: Value = serde_json::from_str(include_str!(
        "../../../events/webhook/eventbridge/subscription-deleted.json"
    ))
    .unwrap();
    missed["detail"]["id"] = json!("evt_missed");
    missed["detail"]["created"] = json!(billing_core::http::now() - 60);
    deps.stripe.record_event(&missed["detail"]);
    let schedule: Value = serde_json::from_str(include_str!(
        "../../../events/webhook/eventbridge/scheduled-reconcile.json"
    ))
    .unwrap();
    let answer = webhook::eventbridge::handle(&deps, schedule, BUDGET)
        .await
        .unwrap();
    assert_eq!(answer["outcome"], "reconciled");
    assert_eq!(answer["report"]["outcomes"]["applied"], 1, "{answer}");
    assert_eq!(answer["report"]["complete"], true);
    assert_eq!(plan(&deps).as_deref(), Some("free"));

    deps.store.failing.store(true, Ordering::SeqCst);
    let deleted: Value = serde_json::from_str(include_str!(
        "../../../events/webhook/eventbridge/subscription-deleted.json"
    ))
    .unwrap();
    assert!(
        webhook::eventbridge::handle(&deps, deleted, BUDGET)
            .await
            .is_err(),
        "a failure is returned for EventBridge to retry"
    );
}

#[tokio::test]
async fn eventbridge_events_that_cannot_be_read_should_be_recorded_not_dropped() {
    let deps = linked_deps().await;
    let mut envelope: Value = serde_json::from_str(include_str!(
        "../../../events/webhook/eventbridge/subscription-created.json"
    ))
    .unwrap();
    envelope["detail"]["id"] = json!("evt_eb_unreadable");
    envelope["detail"]["data"]["object"]["status"] = json!(["not", "a", "status"]);
    let answer = webhook::eventbridge::handle(&deps, envelope, BUDGET)
        .await
        .unwrap();
    assert_eq!(answer["outcome"], "unreadable");
    let recorded = deps.store.unreadable_events().await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].event.event_id, "evt_eb_unreadable");
    assert_eq!(recorded[0].event.field, "data.object.status");

    let mut upcoming: Value = serde_json::from_str(include_str!(
        "../../../events/webhook/eventbridge/subscription-created.json"
    ))
    .unwrap();
    upcoming["detail"]["type"] = json!("invoice.upcoming");
    upcoming["detail"]["data"]["object"] = json!({"object": "invoice", "customer": CUSTOMER});
    let answer = webhook::eventbridge::handle(&deps, upcoming, BUDGET)
        .await
        .unwrap();
    assert_eq!(answer["outcome"], "ignored");
    assert_eq!(deps.store.unreadable_events().await.unwrap().len(), 1);
}

// --- Metrics -------------------------------------------------------------------------------

/// The EMF lines emitted since `capture::start` that carry `metric`.
fn lines_with(lines: &[Value], metric: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|line| line.get(metric).is_some())
        .cloned()
        .collect()
}

#[tokio::test]
async fn each_delivery_should_count_its_outcome_and_provisioning_its_actions_as_emf() {
    use billing_core::telemetry::capture;
    let deps = linked_deps().await;
    capture::start();
    let created = sub_event("evt_1", "customer.subscription.created", 10, "active");
    deliver(&deps, &created).await;
    deliver(&deps, &created).await;
    deps.store.failing.store(true, Ordering::SeqCst);
    deliver(
        &deps,
        &sub_event("evt_2", "customer.subscription.updated", 11, "active"),
    )
    .await;
    let lines = capture::take();

    let outcomes: Vec<String> = lines_with(&lines, "WebhookEvents")
        .iter()
        .map(|line| line["Outcome"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(outcomes, ["applied", "duplicate", "failed"]);
    let applied = &lines_with(&lines, "WebhookEvents")[0];
    let directive = &applied["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "CognitoStripeBilling");
    assert_eq!(
        directive["Dimensions"],
        serde_json::json!([["Function"], ["Function", "Outcome"]])
    );
    assert_eq!(
        directive["Metrics"],
        serde_json::json!([{"Name": "WebhookEvents", "Unit": "Count"}, {"Name": "WebhookLatency", "Unit": "Milliseconds"}])
    );
    assert!(applied["WebhookLatency"].as_f64().unwrap() >= 0.0);

    // The first delivery made the user's key and moved them from free to pro: each action once,
    // under its Action dimension.
    let actions: Vec<String> = lines_with(&lines, "ProvisioningActions")
        .iter()
        .map(|line| line["Action"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(actions, ["key_created", "plan_changed"]);
}
