//! The webhook with in-memory fakes: ingress rules, every kind of event we act on, failures
//! and retries, ordering, and the property that any permutation with duplicates of a
//! customer's events ends in the state of the ordered sequence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;

use billing_core::domain::{CustomerId, CustomerLink, UserPoolId, UserSub, Username};
use billing_core::fakes::{
    FakeApiKeys, FakeDirectory, FakePorts, FakeStacks, FakeStripe, InMemoryStore,
};
use billing_core::plans::{AccessPolicy, PlanCatalog};
use billing_core::ports::{
    BillingRecord, CustomerLinks, RecordKind, StackRecord, StackState, SyncStore,
};
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
const SUB: &str = "sub-alice";
const CUSTOMER: &str = "cus_alice";

type FakeDeps = Deps<FakePorts>;

fn deps_with(policy: &str, plans: &str, create_users: bool) -> FakeDeps {
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
            plans: PlanCatalog::parse(plans).unwrap(),
            policy: AccessPolicy::parse(policy).unwrap(),
            user_pool_id: UserPoolId::parse("us-east-1_Pool").unwrap(),
            create_users,
        },
        webhook_secrets: vec![SecretString::from(SECRET), SecretString::from(OLD_SECRET)],
        livemode: false,
    }
}

fn deps() -> FakeDeps {
    deps_with("grace:7", "free=up_free,pro=up_pro", false)
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

fn key_plans(deps: &FakeDeps) -> (Vec<String>, bool) {
    let keys = deps.keys.keys();
    assert!(keys.len() <= 1, "at most one key per user: {keys:?}");
    keys.first()
        .map(|key| (key.usage_plan_ids.clone(), key.enabled))
        .unwrap_or_default()
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
async fn when_body_is_not_an_event_or_livemode_differs_should_answer_400() {
    let deps = linked_deps().await;
    let (status, body) = deliver(&deps, &json!({"hello": "world"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_event");

    let mut live = sub_event("evt_live", "customer.subscription.created", 10, "active");
    live["livemode"] = Value::Bool(true);
    let (status, body) = deliver(&deps, &live).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "livemode_mismatch");
    assert!(deps.store.stored_subscriptions().is_empty());
}

#[tokio::test]
async fn when_event_type_is_unknown_should_answer_200_and_do_nothing() {
    let deps = linked_deps().await;
    let unknown = event(
        "evt_x",
        "radar.early_fraud_warning.created",
        10,
        json!({"id": "issfr_1", "object": "radar.early_fraud_warning"}),
    );
    let (status, body) = deliver(&deps, &unknown).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["outcome"], "ignored");
    assert_eq!(deps.directory.calls.load(Ordering::SeqCst), 0);
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

#[tokio::test(start_paused = true)]
async fn when_a_delivery_fails_half_way_should_answer_5xx_and_the_retry_should_converge() {
    let deps = linked_deps().await;
    deps.keys.failing.store(true, Ordering::SeqCst);
    let created = sub_event("evt_1", "customer.subscription.created", 10, "active");
    let (status, _) = deliver(&deps, &created).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    deps.keys.failing.store(false, Ordering::SeqCst);
    let (status, body) = deliver(&deps, &created).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("applied"))
    );
    assert_eq!(plan(&deps).as_deref(), Some("pro"));
    assert_eq!(key_plans(&deps), (vec!["up_pro".to_owned()], true));
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

// --- subscriptions, dunning, deprovisioning -------------------------------------------------

#[tokio::test]
async fn when_subscription_ends_should_downgrade_and_delete_its_stacks() {
    let deps = linked_deps().await;
    deps.stacks.add("billing-sub-1");
    deps.store
        .put_stack(&StackRecord {
            subscription_id: "sub_1".into(),
            stack_name: "billing-sub-1".into(),
            state: StackState::Active,
            updated_at: 0,
        })
        .await
        .unwrap();
    deliver(
        &deps,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await;
    assert_eq!(plan(&deps).as_deref(), Some("pro"));
    assert_eq!(
        deps.stacks.status_of("billing-sub-1").as_deref(),
        Some("CREATE_COMPLETE")
    );

    let (status, _) = deliver(
        &deps,
        &sub_event("evt_2", "customer.subscription.deleted", 20, "canceled"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(plan(&deps).as_deref(), Some("free"));
    assert_eq!(key_plans(&deps), (vec!["up_free".to_owned()], true));
    assert_eq!(
        deps.stacks.status_of("billing-sub-1").as_deref(),
        Some("DELETE_COMPLETE")
    );
    assert_eq!(deps.store.stacks()[0].state, StackState::Deleting);

    // A later event of the subscription sees CloudFormation done and records it.
    deliver(
        &deps,
        &sub_event("evt_3", "customer.subscription.updated", 30, "canceled"),
    )
    .await;
    assert_eq!(deps.store.stacks()[0].state, StackState::Deleted);
    assert_eq!(deps.stacks.deletes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn when_unpaid_should_delete_stacks_and_when_the_lowest_plan_has_no_usage_plan_disable_the_key()
 {
    let deps = deps_with("grace:7", "free,pro=up_pro", false);
    deps.store.link(&link()).await.unwrap();
    deps.stacks.add("billing-sub-1");
    deps.store
        .put_stack(&StackRecord {
            subscription_id: "sub_1".into(),
            stack_name: "billing-sub-1".into(),
            state: StackState::Active,
            updated_at: 0,
        })
        .await
        .unwrap();
    deliver(
        &deps,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await;
    assert_eq!(key_plans(&deps), (vec!["up_pro".to_owned()], true));

    deliver(
        &deps,
        &sub_event("evt_2", "customer.subscription.updated", 20, "unpaid"),
    )
    .await;
    assert_eq!(plan(&deps).as_deref(), Some("free"));
    assert_eq!(key_plans(&deps), (Vec::new(), false));
    assert_eq!(
        deps.stacks.status_of("billing-sub-1").as_deref(),
        Some("DELETE_COMPLETE")
    );
}

#[tokio::test]
async fn when_past_due_should_follow_the_configured_dunning_policy() {
    for (policy, expected) in [("grace:7", "pro"), ("suspend", "free")] {
        let deps = deps_with(policy, "free=up_free,pro=up_pro", false);
        deps.store.link(&link()).await.unwrap();
        deliver(
            &deps,
            &sub_event(
                "evt_1",
                "customer.subscription.created",
                now() - 60,
                "active",
            ),
        )
        .await;
        deliver(
            &deps,
            &sub_event(
                "evt_2",
                "customer.subscription.updated",
                now() - 30,
                "past_due",
            ),
        )
        .await;
        assert_eq!(plan(&deps).as_deref(), Some(expected), "{policy}");
    }
}

fn in_period(id: &str, created: i64, status: &str, period_end: i64) -> Value {
    let mut event = sub_event(id, "customer.subscription.updated", created, status);
    event["data"]["object"]["items"]["data"][0]["current_period_end"] = json!(period_end);
    event
}

#[tokio::test]
async fn when_a_later_renewal_fails_should_count_the_grace_period_from_that_failure() {
    let t = now();
    let day = 24 * 3600;
    let (first_period_end, second_period_end) = (t - 10 * day, t + 20 * day);
    let first_failure = in_period("evt_1", t - 40 * day, "past_due", first_period_end);
    let paid = in_period("evt_2", t - 39 * day, "active", first_period_end);
    let second_failure = in_period("evt_3", t - 3600, "past_due", second_period_end);
    // With the payment between the failures delivered, and with it still on its way: the new
    // delinquency starts at its own failure, and 7 days of grace keep the plan either way.
    for events in [
        vec![&first_failure, &paid, &second_failure],
        vec![&first_failure, &second_failure],
    ] {
        let deps = linked_deps().await;
        for event in &events {
            deliver(&deps, event).await;
        }
        let stored = deps.store.stored_subscriptions()[0].clone();
        assert_eq!(
            stored.past_due_since,
            Some(t - 3600),
            "{} events",
            events.len()
        );
        assert_eq!(
            plan(&deps).as_deref(),
            Some("pro"),
            "{} events",
            events.len()
        );
    }
}

#[tokio::test]
async fn when_the_same_renewal_stays_unpaid_should_keep_the_first_failure_time() {
    let t = now();
    let period_end = t + 20 * 24 * 3600;
    let deps = linked_deps().await;
    deliver(
        &deps,
        &in_period("evt_1", t - 3 * 24 * 3600, "past_due", period_end),
    )
    .await;
    deliver(&deps, &in_period("evt_2", t - 3600, "past_due", period_end)).await;
    assert_eq!(
        deps.store.stored_subscriptions()[0].past_due_since,
        Some(t - 3 * 24 * 3600)
    );
}

#[tokio::test]
async fn when_events_arrive_out_of_order_should_keep_the_newest_state() {
    let deps = linked_deps().await;
    deliver(
        &deps,
        &sub_event("evt_3", "customer.subscription.deleted", 30, "canceled"),
    )
    .await;
    let (status, body) = deliver(
        &deps,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("stale"))
    );
    assert_eq!(plan(&deps).as_deref(), Some("free"));
    assert_eq!(
        deps.store.stored_subscriptions()[0].status.as_str(),
        "canceled"
    );
}

#[tokio::test]
async fn when_two_events_share_a_second_should_settle_on_stripes_current_state() {
    let deps = linked_deps().await;
    let mut current: billing_core::plans::SubscriptionState =
        match billing_core::webhook::parse_event(
            sub_event("x", "customer.subscription.updated", 1, "past_due")
                .to_string()
                .as_bytes(),
        )
        .unwrap()
        .object
        {
            billing_core::webhook::EventObject::Subscription(s) => s,
            _ => unreachable!(),
        };
    current.plan = billing_core::plans::PlanName::parse("pro");
    deps.stripe.set_subscription(current);
    deliver(
        &deps,
        &sub_event("evt_a", "customer.subscription.updated", 50, "active"),
    )
    .await;
    deliver(
        &deps,
        &sub_event("evt_b", "customer.subscription.updated", 50, "incomplete"),
    )
    .await;
    assert_eq!(
        deps.store.stored_subscriptions()[0].status.as_str(),
        "past_due"
    );
}

// --- linking ------------------------------------------------------------------------------

fn checkout_completed(
    id: &str,
    created: i64,
    payment_status: &str,
    reference: Option<&str>,
    email: &str,
) -> Value {
    event(
        id,
        "checkout.session.completed",
        created,
        json!({
            "id": "cs_test_1", "object": "checkout.session", "mode": "subscription", "status": "complete",
            "payment_status": payment_status, "customer": CUSTOMER, "client_reference_id": reference,
            "customer_details": {"email": email}, "metadata": {}, "subscription": "sub_1",
            "amount_total": 1000, "currency": "usd", "created": created
        }),
    )
}

#[tokio::test]
async fn when_nobody_is_linked_to_the_customer_should_park_the_event_and_answer_200() {
    let deps = deps();
    let (status, body) = deliver(
        &deps,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("unmapped"))
    );
    assert_eq!(
        deps.store.unmapped(),
        [(CUSTOMER.to_owned(), "evt_1".to_owned())]
    );
}

#[tokio::test]
async fn when_checkout_names_the_user_should_link_and_provision_once_paid() {
    let deps = deps();
    deps.directory
        .add_user("alice", SUB, Some("alice@example.com"));
    // The subscription event came first: parked, and stored.
    deliver(
        &deps,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await;
    let (status, body) = deliver(
        &deps,
        &checkout_completed("evt_2", 11, "paid", Some(SUB), "alice@example.com"),
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("applied"))
    );
    let linked = deps
        .store
        .user_of_customer(&CustomerId::parse(CUSTOMER).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.sub.as_str(), SUB);
    assert_eq!(plan(&deps).as_deref(), Some("pro"));
    assert_eq!(
        deps.directory
            .customer_id_of(&link().pool_id, &link().username)
            .unwrap()
            .as_str(),
        CUSTOMER
    );
}

#[tokio::test]
async fn when_checkout_is_unpaid_should_link_but_not_provision() {
    let deps = deps();
    deps.directory
        .add_user("alice", SUB, Some("alice@example.com"));
    deliver(
        &deps,
        &checkout_completed("evt_2", 11, "unpaid", Some(SUB), "alice@example.com"),
    )
    .await;
    assert!(
        deps.store
            .user_of_customer(&CustomerId::parse(CUSTOMER).unwrap())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(plan(&deps), None);
    assert!(deps.keys.keys().is_empty());
}

#[tokio::test]
async fn when_a_payment_comes_first_and_creation_is_allowed_should_create_the_user() {
    let deps = deps_with("grace:7", "free=up_free,pro=up_pro", true);
    deliver(
        &deps,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await;
    let (_, body) = deliver(
        &deps,
        &checkout_completed("evt_2", 11, "paid", None, "payer@example.com"),
    )
    .await;
    assert_eq!(body["outcome"], "applied");
    assert_eq!(deps.directory.user_count(), 1);
    let linked = deps
        .store
        .user_of_customer(&CustomerId::parse(CUSTOMER).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.username.as_str(), "payer@example.com");
    assert_eq!(deps.keys.keys().len(), 1);
}

#[tokio::test]
async fn when_the_customer_is_deleted_should_end_its_subscriptions() {
    let deps = linked_deps().await;
    deliver(
        &deps,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await;
    let deleted = event(
        "evt_2",
        "customer.deleted",
        20,
        json!({"id": CUSTOMER, "object": "customer", "deleted": true}),
    );
    deliver(&deps, &deleted).await;
    assert_eq!(plan(&deps).as_deref(), Some("free"));
    assert_eq!(
        deps.store.stored_subscriptions()[0].status.as_str(),
        "canceled"
    );
}

// --- records ------------------------------------------------------------------------------

#[tokio::test]
async fn invoices_payments_and_prices_should_be_recorded_small() {
    let deps = linked_deps().await;
    let failed = event(
        "evt_i",
        "invoice.payment_failed",
        10,
        json!({
            "id": "in_1", "object": "invoice", "customer": CUSTOMER, "status": "open", "amount_due": 1000,
            "amount_paid": 0, "currency": "usd", "hosted_invoice_url": "https://invoice.stripe.com/i/x",
            "parent": {"subscription_details": {"subscription": "sub_1"}}, "lines": {"data": [{"description": "x".repeat(5000)}]}
        }),
    );
    deliver(&deps, &failed).await;
    let Some(BillingRecord::Invoice {
        customer_id,
        invoice,
        ..
    }) = deps.store.record(RecordKind::Invoice, "in_1")
    else {
        panic!("the invoice is recorded");
    };
    assert_eq!(customer_id, CUSTOMER);
    assert_eq!(invoice.subscription.as_deref(), Some("sub_1"));
    assert!(
        serde_json::to_string(&invoice).unwrap().len() < 2_000,
        "not the whole invoice"
    );
    let Some(BillingRecord::Delinquency { delinquency, .. }) =
        deps.store.record(RecordKind::Delinquency, CUSTOMER)
    else {
        panic!("the delinquency is recorded");
    };
    assert!(delinquency.delinquent);

    let price = event(
        "evt_p",
        "price.created",
        10,
        json!({
            "id": "price_t", "object": "price", "product": "prod_pro", "active": true, "currency": "usd",
            "lookup_key": "pro_tiered", "billing_scheme": "tiered", "tiers_mode": "graduated",
            "tiers": [{"up_to": 10, "unit_amount": 100}, {"up_to": "inf", "unit_amount": 50}],
            "recurring": {"interval": "month", "interval_count": 1}, "metadata": {"k": "v"}
        }),
    );
    deliver(&deps, &price).await;
    let Some(BillingRecord::Price { price: stored, .. }) =
        deps.store.record(RecordKind::Price, "price_t")
    else {
        panic!("the price is recorded");
    };
    // Found by its lookup key (the index entry itself: adapters::dynamo::records).
    assert_eq!(stored.active_lookup_key(), Some("pro_tiered"));
    assert_eq!(stored.tiers[1].up_to, None);
    assert_eq!(stored.metadata["k"], "v");
}

// --- property: order and duplicates do not matter -------------------------------------------

/// The final observable state of a customer: plan, key, stored subscriptions and stacks.
async fn observable(
    deps: &FakeDeps,
) -> (
    Option<String>,
    (Vec<String>, bool),
    Vec<(String, String)>,
    Vec<StackState>,
) {
    let customer = CustomerId::parse(CUSTOMER).unwrap();
    let mut subscriptions: Vec<(String, String)> = deps
        .store
        .subscriptions_of(&customer)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.id, s.status.as_str().to_owned()))
        .collect();
    subscriptions.sort();
    let stacks = deps.store.stacks().into_iter().map(|s| s.state).collect();
    (plan(deps), key_plans(deps), subscriptions, stacks)
}

fn lifecycle() -> Vec<Value> {
    vec![
        sub_event("evt_1", "customer.subscription.created", 10, "incomplete"),
        sub_event("evt_2", "customer.subscription.updated", 20, "active"),
        event(
            "evt_3",
            "customer.subscription.created",
            25,
            subscription("sub_2", "active", "prod_free"),
        ),
        sub_event("evt_4", "customer.subscription.updated", 30, "past_due"),
        sub_event("evt_5", "customer.subscription.updated", 40, "unpaid"),
        event(
            "evt_6",
            "customer.subscription.deleted",
            50,
            subscription("sub_2", "canceled", "prod_free"),
        ),
        sub_event("evt_7", "customer.subscription.deleted", 60, "canceled"),
    ]
}

async fn replay(events: &[Value]) -> FakeDeps {
    let deps = linked_deps().await;
    deps.stacks.add("billing-sub-1");
    deps.store
        .put_stack(&StackRecord {
            subscription_id: "sub_1".into(),
            stack_name: "billing-sub-1".into(),
            state: StackState::Active,
            updated_at: 0,
        })
        .await
        .unwrap();
    for event in events {
        let (status, _) = deliver(&deps, event).await;
        assert_eq!(status, StatusCode::OK);
    }
    // The scheduled sweep finishes teardowns no later event looked at.
    deps.sync().sweep(now()).await.unwrap();
    deps
}

/// xorshift: reproducible permutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

#[tokio::test]
async fn any_permutation_with_duplicates_should_end_in_the_ordered_state() {
    let ordered = lifecycle();
    let expected = observable(&replay(&ordered).await).await;
    assert_eq!(expected.0.as_deref(), Some("free"));

    for seed in 1..=150u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut events = ordered.clone();
        for _ in 0..rng.next(4) + 1 {
            let duplicate = events[rng.next(events.len())].clone();
            events.push(duplicate);
        }
        for i in (1..events.len()).rev() {
            events.swap(i, rng.next(i + 1));
        }
        let state = observable(&replay(&events).await).await;
        let order: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(state, expected, "seed {seed}: {order:?}");
    }
}

// --- events/ ------------------------------------------------------------------------------

#[test]
fn every_sample_stripe_event_should_parse() {
    for entry in std::fs::read_dir("../../events/webhook/stripe").unwrap() {
        let path = entry.unwrap().path();
        let raw = std::fs::read(&path).unwrap();
        let event =
            billing_core::webhook::parse_event(&raw).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert!(
            !matches!(
                event.object,
                billing_core::webhook::EventObject::Other { .. }
            ),
            "{path:?}"
        );
    }
}

#[tokio::test]
async fn eventbridge_events_should_apply_like_signed_ones_and_schedules_should_sweep() {
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
    let answer = webhook::eventbridge::handle(&deps, created.clone())
        .await
        .unwrap();
    assert_eq!(answer["outcome"], "applied");
    assert_eq!(plan(&deps).as_deref(), Some("pro"));
    let again = webhook::eventbridge::handle(&deps, created).await.unwrap();
    assert_eq!(again["outcome"], "duplicate");

    let sweep: Value = serde_json::from_str(include_str!(
        "../../../events/webhook/eventbridge/scheduled-sweep.json"
    ))
    .unwrap();
    assert_eq!(
        webhook::eventbridge::handle(&deps, sweep).await.unwrap()["outcome"],
        "swept"
    );

    deps.store.failing.store(true, Ordering::SeqCst);
    let deleted: Value = serde_json::from_str(include_str!(
        "../../../events/webhook/eventbridge/subscription-deleted.json"
    ))
    .unwrap();
    assert!(
        webhook::eventbridge::handle(&deps, deleted).await.is_err(),
        "a failure is returned for EventBridge to retry"
    );
}

#[tokio::test]
async fn when_the_product_names_a_template_should_create_a_stack_once_and_delete_it_at_the_end() {
    let deps = linked_deps().await;
    deps.stripe
        .set_stack_template("prod_pro", "https://templates.example.com/pro.yaml");
    deliver(
        &deps,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await;
    deliver(
        &deps,
        &sub_event("evt_2", "customer.subscription.updated", 20, "active"),
    )
    .await;
    assert_eq!(deps.stacks.creates.load(Ordering::SeqCst), 1);
    assert_eq!(
        deps.stacks.status_of("billing-sub-1").as_deref(),
        Some("CREATE_COMPLETE")
    );
    assert_eq!(deps.store.stacks()[0].state, StackState::Active);

    deliver(
        &deps,
        &sub_event("evt_3", "customer.subscription.deleted", 30, "canceled"),
    )
    .await;
    assert_eq!(
        deps.stacks.status_of("billing-sub-1").as_deref(),
        Some("DELETE_COMPLETE")
    );
    assert_eq!(deps.stacks.creates.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn when_a_paid_checkout_comes_before_its_subscription_events_should_not_downgrade() {
    let deps = linked_deps().await;
    let current = match billing_core::webhook::parse_event(
        sub_event("x", "customer.subscription.updated", 1, "active")
            .to_string()
            .as_bytes(),
    )
    .unwrap()
    .object
    {
        billing_core::webhook::EventObject::Subscription(mut s) => {
            s.plan = billing_core::plans::PlanName::parse("pro");
            s
        }
        _ => unreachable!(),
    };
    deps.stripe.set_subscription(current);
    deliver(
        &deps,
        &checkout_completed("evt_1", 11, "paid", Some(SUB), "alice@example.com"),
    )
    .await;
    assert_eq!(plan(&deps).as_deref(), Some("pro"));
    assert_eq!(key_plans(&deps), (vec!["up_pro".to_owned()], true));
    // The subscription's own, older event changes nothing.
    let (_, body) = deliver(
        &deps,
        &sub_event("evt_0", "customer.subscription.created", 5, "incomplete"),
    )
    .await;
    assert_eq!(body["outcome"], "stale");
    assert_eq!(plan(&deps).as_deref(), Some("pro"));
}

#[tokio::test]
async fn a_completed_checkout_should_record_its_line_items_read_from_stripe() {
    use billing_core::checkout::{CheckoutMode, NewCheckoutSession};
    use billing_core::ports::Checkout;
    let deps = linked_deps().await;
    let created = deps
        .stripe
        .create_session(&NewCheckoutSession {
            customer_id: CustomerId::parse(CUSTOMER).unwrap(),
            price_id: "price_pro".into(),
            quantity: 3,
            mode: CheckoutMode::Subscription,
            client_reference_id: SUB.into(),
            metadata: Default::default(),
            trial_period_days: None,
            success_url: "https://x/s".into(),
            cancel_url: "https://x/c".into(),
            allow_promotion_codes: false,
            promotion_code: None,
            locale: None,
            billing_address_required: false,
            automatic_tax: false,
            idempotency_key: "k".into(),
        })
        .await
        .unwrap();
    let mut completed = checkout_completed("evt_1", 11, "unpaid", Some(SUB), "alice@example.com");
    completed["data"]["object"]["id"] = Value::String(created.id.clone());
    deliver(&deps, &completed).await;
    let Some(BillingRecord::CheckoutSession {
        customer_id,
        session,
        ..
    }) = deps.store.record(RecordKind::CheckoutSession, &created.id)
    else {
        panic!("the session is recorded");
    };
    assert_eq!(customer_id, CUSTOMER);
    assert_eq!(session.line_items[0].price.as_deref(), Some("price_pro"));
    assert_eq!(session.line_items[0].quantity, Some(3));
}
