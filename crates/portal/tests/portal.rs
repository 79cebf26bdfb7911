//! The portal function with in-memory fakes: `POST /portal`, `GET /me` and `DELETE /me` from the
//! API Gateway events in events/portal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;

use billing_core::checkout::PortalFlow;
use billing_core::config::{AccountSettings, KeyDisclosure};
use billing_core::domain::{CustomerId, CustomerLink, UserPoolId, UserSub, Username};
use billing_core::fakes::{FakeApiKeys, FakeDirectory, FakeStripe, InMemoryStore};
use billing_core::plans::{
    AccessPolicy, PlanCatalog, PlanName, SubscriptionState, SubscriptionStatus,
};
use billing_core::ports::{Billing, CustomerLinks};
use billing_core::provisioning::Provisioner;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request};
use portal::{Deps, handle};
use serde_json::{Value, json};

const PORTAL: &str = include_str!("../../../events/portal/portal.json");
const ME: &str = include_str!("../../../events/portal/me.json");
const DELETE_ME: &str = include_str!("../../../events/portal/delete-me.json");
const SUB: &str = "8f1c6a2e-71b1-4a0e-9d43-5c1f4d3b2a10";

type FakeDeps = Deps<InMemoryStore, FakeStripe, FakeDirectory, FakeApiKeys>;

fn deps() -> FakeDeps {
    Deps {
        store: InMemoryStore::default(),
        stripe: FakeStripe::default(),
        directory: FakeDirectory::default(),
        keys: FakeApiKeys::default(),
        account: AccountSettings {
            plans: PlanCatalog::parse("free=up_free,pro=up_pro").unwrap(),
            policy: AccessPolicy::default(),
            site_origin: "https://app.example.com".into(),
            user_pool_id: UserPoolId::parse("us-east-1_EXAMPLE1").unwrap(),
            key_disclosure: KeyDisclosure::Always,
        },
    }
}

fn link() -> CustomerLink {
    CustomerLink {
        sub: UserSub::parse(SUB).unwrap(),
        customer_id: CustomerId::parse("cus_alice").unwrap(),
        pool_id: UserPoolId::parse("us-east-1_EXAMPLE1").unwrap(),
        username: Username::parse("alice").unwrap(),
    }
}

/// Alice has a customer, an active pro subscription and her key on the pro usage plan.
async fn subscribed_deps() -> FakeDeps {
    let deps = deps();
    deps.store.link(&link()).await.unwrap();
    deps.stripe.add_subscription(SubscriptionState {
        id: "sub_pro".into(),
        customer_id: "cus_alice".into(),
        status: SubscriptionStatus::Active,
        items: vec![billing_core::plans::SubscriptionItemState {
            price_id: Some("price_pro".into()),
            product_id: Some("prod_pro".into()),
            plan: PlanName::parse("pro"),
            meter: None,
        }],
        current_period_end: Some(4_000_000_000),
        current_period_start: Some(4_000_000_000 - 30 * 86_400),
        cancel_at_period_end: false,
        past_due_since: None,
        created: 10,
        metadata: Default::default(),
    });
    Provisioner {
        billing: &deps.stripe,
        directory: &deps.directory,
        keys: &deps.keys,
        plans: &deps.account.plans,
        policy: &deps.account.policy,
    }
    .reconcile(&link(), 1_000)
    .await
    .unwrap();
    deps
}

fn request(event: &str, edit: impl FnOnce(&mut Value)) -> Request {
    let mut event: Value = serde_json::from_str(event).unwrap();
    edit(&mut event);
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn anonymous(event: &mut Value) {
    event["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
}

async fn call(deps: &FakeDeps, request: Request) -> (StatusCode, Value) {
    let response = handle(deps, request).await.unwrap();
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        _ => Value::Null,
    };
    (response.status(), body)
}

#[tokio::test]
async fn when_claims_are_missing_should_answer_401_on_every_route() {
    let deps = subscribed_deps().await;
    for event in [PORTAL, ME, DELETE_ME] {
        let (status, _) = call(&deps, request(event, anonymous)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(deps.store.link_count(), 1);
}

#[tokio::test]
async fn when_caller_opens_the_portal_should_get_their_own_customer_and_subscription() {
    let deps = subscribed_deps().await;
    let (status, body) = call(&deps, request(PORTAL, |_| {})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["url"]
            .as_str()
            .unwrap()
            .starts_with("https://billing.stripe.test/")
    );
    let session = deps.stripe.portal_sessions().pop().unwrap();
    assert_eq!(session.customer_id.as_str(), "cus_alice");
    assert_eq!(session.return_url, "https://app.example.com/account");
    assert_eq!(session.flow, Some(PortalFlow::Cancel));
    assert_eq!(session.subscription_id.as_deref(), Some("sub_pro"));
}

#[tokio::test]
async fn when_request_names_a_customer_should_refuse_it() {
    let deps = subscribed_deps().await;
    let (status, body) = call(
        &deps,
        request(PORTAL, |event| {
            event["body"] = Value::String(r#"{"customer": "cus_someone_else"}"#.into())
        }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("customer")
    );
    assert!(deps.stripe.portal_sessions().is_empty());
}

#[tokio::test]
async fn when_return_path_leaves_the_origin_should_answer_400() {
    let deps = subscribed_deps().await;
    for path in ["//evil.example", "https://evil.example/x", "/..//evil"] {
        let body = json!({ "return_path": path }).to_string();
        let (status, _) = call(
            &deps,
            request(PORTAL, |event| event["body"] = Value::String(body)),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
    }
    assert!(deps.stripe.portal_sessions().is_empty());
}

#[tokio::test]
async fn when_caller_has_no_customer_should_answer_404() {
    let deps = deps();
    let (status, body) = call(&deps, request(PORTAL, |_| {})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "no_customer");
}

#[tokio::test]
async fn when_flow_is_unknown_should_answer_400() {
    let deps = subscribed_deps().await;
    let (status, _) = call(
        &deps,
        request(PORTAL, |event| {
            event["body"] = Value::String(r#"{"flow": "refund"}"#.into())
        }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn me_should_show_plan_subscriptions_and_the_key_value() {
    let deps = subscribed_deps().await;
    let (status, body) = call(&deps, request(ME, |_| {})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plan"], "pro");
    assert_eq!(body["subscriptions"][0]["id"], "sub_pro");
    assert_eq!(body["subscriptions"][0]["status"], "active");
    assert_eq!(body["subscriptions"][0]["plan"], "pro");
    assert_eq!(body["api_key"]["value"], "value-of-key1");
    assert_eq!(body["api_key"]["usage_plan"], "up_pro");
}

#[tokio::test]
async fn me_without_customer_should_show_the_lowest_plan_and_no_key() {
    let deps = deps();
    let (status, body) = call(&deps, request(ME, |_| {})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["plan"], "free");
    assert_eq!(body["api_key"], Value::Null);
    assert_eq!(body["subscriptions"], json!([]));
}

#[tokio::test]
async fn delete_me_should_remove_everything_and_be_idempotent() {
    let deps = subscribed_deps().await;
    for _ in 0..2 {
        let response = handle(&deps, request(DELETE_ME, |_| {})).await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    assert!(deps.stripe.customers().is_empty());
    let customer = CustomerId::parse("cus_alice").unwrap();
    assert!(
        deps.stripe
            .subscriptions_of(&customer)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(deps.keys.keys().is_empty());
    assert_eq!(deps.store.link_count(), 0);
    assert_eq!(deps.directory.deleted.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn when_stripe_fails_should_answer_502_and_keep_the_records() {
    let deps = subscribed_deps().await;
    deps.stripe.failing.store(true, Ordering::SeqCst);
    for event in [PORTAL, ME, DELETE_ME] {
        let (status, body) = call(&deps, request(event, |_| {})).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{event}");
        assert_eq!(body["error"]["code"], "upstream_unavailable");
    }
    assert_eq!(deps.store.link_count(), 1);
    assert_eq!(deps.keys.keys().len(), 1);
}

#[tokio::test]
async fn me_should_show_a_metered_items_usage_this_period_reported_and_not_yet() {
    use billing_core::ports::{ApiKeys, MeterEvent, MeterInfo, Meters, UsageStore};
    use billing_core::usage::{UsageCursor, UsageSlot, UtcDay};

    let deps = deps();
    deps.store.link(&link()).await.unwrap();
    let now = unix_now();
    let period_start = now - 3 * 86_400 - 17;
    let meter = MeterInfo {
        id: "mtr_api".into(),
        event_name: "api_calls".into(),
        customer_key: "stripe_customer_id".into(),
        value_key: "value".into(),
        active: true,
    };
    deps.stripe.add_meter(meter.clone());
    deps.stripe.add_subscription(SubscriptionState {
        id: "sub_api".into(),
        customer_id: "cus_alice".into(),
        status: SubscriptionStatus::Active,
        items: vec![billing_core::plans::SubscriptionItemState {
            price_id: Some("price_api".into()),
            product_id: Some("prod_pro".into()),
            plan: PlanName::parse("pro"),
            meter: Some("mtr_api".into()),
        }],
        current_period_end: Some(period_start + 30 * 86_400),
        current_period_start: Some(period_start),
        cancel_at_period_end: false,
        past_due_since: None,
        created: 10,
        metadata: Default::default(),
    });
    let key = deps
        .keys
        .create(&UserSub::parse(SUB).unwrap())
        .await
        .unwrap();
    deps.keys.attach_only(&key, Some("up_pro")).await.unwrap();
    // Stripe has 7 calls of the last period and 20 of this one.
    for (identifier, value, timestamp) in [("old", 7, period_start - 600), ("new", 20, now - 60)] {
        deps.stripe
            .send_meter_event(&MeterEvent {
                meter: meter.clone(),
                customer_id: "cus_alice".into(),
                value,
                identifier: identifier.into(),
                timestamp,
            })
            .await
            .unwrap();
    }
    // API Gateway counted 26 today, of which the reporter sent 20.
    let today = UtcDay::of(now);
    deps.keys.record_calls("up_pro", &key.id, today, 26);
    let slot = UsageSlot {
        key_id: key.id.clone(),
        usage_plan_id: "up_pro".into(),
        day: today,
    };
    let reported = UsageCursor {
        reported: 20,
        pending: None,
    };
    assert!(
        deps.store
            .replace_usage_cursor(&slot, &UsageCursor::default(), &reported, now)
            .await
            .unwrap()
    );

    let (status, body) = call(&deps, request(ME, |_| {})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["usage"],
        json!([{
            "subscription": "sub_api", "price_id": "price_api", "meter": "mtr_api",
            "period_start": period_start, "period_end": period_start + 30 * 86_400,
            "reported": 20, "not_yet_reported": 6,
        }])
    );
    assert_eq!(
        body["subscriptions"][0]["current_period_start"],
        period_start
    );
}

#[tokio::test]
async fn me_should_read_no_usage_for_a_flat_plan() {
    let deps = subscribed_deps().await;
    let (status, body) = call(&deps, request(ME, |_| {})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["usage"], json!([]));
    assert_eq!(deps.keys.usage_reads(), 0);
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// --- API keys from the first minute --------------------------------------------------------

const CREATE_KEY: &str = include_str!("../../../events/portal/create-api-key.json");

/// Alice with a customer and no subscription: the free plan, whose usage plan is up_free.
async fn free_deps(disclosure: KeyDisclosure) -> FakeDeps {
    let mut deps = deps();
    deps.account.key_disclosure = disclosure;
    deps.store.link(&link()).await.unwrap();
    deps
}

#[tokio::test]
async fn me_should_make_a_free_key_on_first_need_and_then_show_the_same_one() {
    let deps = free_deps(KeyDisclosure::Always).await;
    let (status, body) = call(&deps, request(ME, |_| {})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plan"], "free");
    assert_eq!(body["api_key"]["usage_plan"], "up_free", "{body}");
    assert_eq!(body["api_key"]["value"], "value-of-key1");
    let (_, again) = call(&deps, request(ME, |_| {})).await;
    assert_eq!(again["api_key"]["id"], body["api_key"]["id"]);
    assert_eq!(deps.keys.creates.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn concurrent_first_requests_should_make_one_key() {
    let deps = free_deps(KeyDisclosure::Always).await;
    let (first, second, third) = tokio::join!(
        call(&deps, request(ME, |_| {})),
        call(&deps, request(ME, |_| {})),
        call(&deps, request(CREATE_KEY, |_| {})),
    );
    for (status, body) in [&first, &second, &third] {
        assert!(status.is_success(), "{status} {body}");
    }
    assert_eq!(deps.keys.keys().len(), 1);
    assert_eq!(first.1["api_key"]["id"], second.1["api_key"]["id"]);
    assert_eq!(first.1["api_key"]["id"], third.1["api_key"]["id"]);
}

#[tokio::test]
async fn create_key_should_answer_201_once_then_200_and_409_on_a_plan_without_api_access() {
    let deps = free_deps(KeyDisclosure::Always).await;
    let (status, body) = call(&deps, request(CREATE_KEY, |_| {})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["api_key"]["usage_plan"], "up_free");
    let (status, _) = call(&deps, request(CREATE_KEY, |_| {})).await;
    assert_eq!(status, StatusCode::OK);

    let no_free_usage_plan = deps_without_free_api_access();
    no_free_usage_plan.store.link(&link()).await.unwrap();
    let (status, body) = call(&no_free_usage_plan, request(CREATE_KEY, |_| {})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "no_api_access");
    let (_, me) = call(&no_free_usage_plan, request(ME, |_| {})).await;
    assert_eq!(me["api_key"], Value::Null);
    assert!(no_free_usage_plan.keys.keys().is_empty());

    let without_customer = self::deps();
    let (status, body) = call(&without_customer, request(CREATE_KEY, |_| {})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

fn deps_without_free_api_access() -> FakeDeps {
    let mut deps = deps();
    deps.account.plans = PlanCatalog::parse("free,pro=up_pro").unwrap();
    deps
}

#[tokio::test]
async fn with_once_disclosure_the_value_should_show_only_in_the_answer_that_made_the_key() {
    let deps = free_deps(KeyDisclosure::Once).await;
    let (_, made) = call(&deps, request(ME, |_| {})).await;
    assert_eq!(made["api_key"]["value"], "value-of-key1", "{made}");
    let (_, later) = call(&deps, request(ME, |_| {})).await;
    assert_eq!(later["api_key"]["value"], Value::Null, "{later}");
    assert_eq!(later["api_key"]["prefix"], "valu");
    assert_eq!(later["api_key"]["disclosure"], "once");
    assert!(later["api_key"]["created"].as_i64().is_some(), "{later}");
    let (status, again) = call(&deps, request(CREATE_KEY, |_| {})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["api_key"]["value"], Value::Null);
}

// --- Rotation ------------------------------------------------------------------------------

const ROTATE_KEY: &str = include_str!("../../../events/portal/rotate-api-key.json");

fn rotate_body(body: Value) -> impl FnOnce(&mut Value) {
    move |event: &mut Value| event["body"] = Value::String(body.to_string())
}

fn current_keys(deps: &FakeDeps) -> Vec<billing_core::fakes::FakeKey> {
    deps.keys
        .keys()
        .into_iter()
        .filter(|key| key.retire_at.is_none())
        .collect()
}

#[tokio::test]
async fn rotation_without_grace_should_disable_the_old_key_at_once_and_put_a_new_one_on_its_plan() {
    let deps = subscribed_deps().await;
    let old = deps.keys.keys().pop().unwrap();
    let (status, body) = call(&deps, request(ROTATE_KEY, rotate_body(json!({})))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(body["api_key"]["id"], old.id.as_str());
    assert_ne!(body["api_key"]["value"], old.value.as_str());
    assert_eq!(body["api_key"]["usage_plan"], "up_pro");
    assert_eq!(body["retired_key"]["id"], old.id.as_str());

    let keys = deps.keys.keys();
    let retired = keys.iter().find(|key| key.id == old.id).unwrap();
    assert!(!retired.enabled);
    assert_eq!(
        retired.retire_at,
        body["retired_key"]["works_until"].as_i64()
    );
    let current = current_keys(&deps);
    assert_eq!(current.len(), 1);
    assert!(current[0].enabled);
    assert_eq!(current[0].usage_plan_ids, ["up_pro"]);
    assert_eq!(
        deps.keys.quotas_carried(),
        [("up_pro".to_owned(), old.id.clone(), current[0].id.clone())]
    );

    let (_, me) = call(&deps, request(ME, |_| {})).await;
    assert_eq!(me["api_key"]["id"], body["api_key"]["id"]);
}

#[tokio::test]
async fn rotation_with_grace_should_keep_the_old_key_working_until_the_grace_ends() {
    let deps = subscribed_deps().await;
    let old = deps.keys.keys().pop().unwrap();
    let before = billing_core::http::now();
    let (status, body) = call(
        &deps,
        request(ROTATE_KEY, rotate_body(json!({"grace_seconds": 3600}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let retired = deps
        .keys
        .keys()
        .into_iter()
        .find(|key| key.id == old.id)
        .unwrap();
    assert!(retired.enabled, "the old key works during the grace");
    let works_until = body["retired_key"]["works_until"].as_i64().unwrap();
    assert!((before + 3600..=billing_core::http::now() + 3600).contains(&works_until));
    assert_eq!(retired.retire_at, Some(works_until));
    assert_eq!(current_keys(&deps).len(), 1);
}

#[tokio::test]
async fn rotation_should_refuse_a_grace_over_a_day_and_unknown_fields() {
    let deps = subscribed_deps().await;
    for body in [
        json!({"grace_seconds": 86_401}),
        json!({"grace_seconds": -1}),
        json!({"grace": 60}),
    ] {
        let (status, answer) = call(&deps, request(ROTATE_KEY, rotate_body(body))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    }
    assert_eq!(deps.keys.keys().len(), 1, "nothing rotated");
}

#[tokio::test]
async fn rotations_beyond_three_an_hour_should_be_answered_429_with_retry_after() {
    let deps = subscribed_deps().await;
    for _ in 0..3 {
        let (status, body) = call(&deps, request(ROTATE_KEY, rotate_body(json!({})))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let response = handle(&deps, request(ROTATE_KEY, rotate_body(json!({}))))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let Body::Text(text) = response.body() else {
        panic!("no body")
    };
    let body: Value = serde_json::from_str(text).unwrap();
    assert_eq!(body["error"]["code"], "too_many_rotations");
    assert_eq!(body["error"]["retry_after"], retry_after);
    assert_eq!(current_keys(&deps).len(), 1);
    assert_eq!(
        deps.keys.keys().len(),
        4,
        "three rotations, one current key"
    );
}

#[tokio::test]
async fn rotation_without_a_key_or_a_customer_should_be_refused() {
    let deps = free_deps(KeyDisclosure::Always).await;
    let (status, body) = call(&deps, request(ROTATE_KEY, rotate_body(json!({})))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "no_api_key");
    let without_customer = self::deps();
    let (status, _) = call(
        &without_customer,
        request(ROTATE_KEY, rotate_body(json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(deps.keys.keys().is_empty());
}

#[tokio::test]
async fn with_once_disclosure_a_rotation_should_show_the_new_value_once() {
    let mut deps = subscribed_deps().await;
    deps.account.key_disclosure = KeyDisclosure::Once;
    let (_, rotated) = call(&deps, request(ROTATE_KEY, rotate_body(json!({})))).await;
    let value = rotated["api_key"]["value"].as_str().unwrap().to_owned();
    let (_, me) = call(&deps, request(ME, |_| {})).await;
    assert_eq!(me["api_key"]["id"], rotated["api_key"]["id"]);
    assert_eq!(me["api_key"]["value"], Value::Null);
    assert_eq!(me["api_key"]["prefix"], value[..4]);
}

#[tokio::test]
async fn a_rotation_beside_first_need_requests_should_leave_one_current_key() {
    let deps = free_deps(KeyDisclosure::Always).await;
    call(&deps, request(CREATE_KEY, |_| {})).await;
    let (rotated, me, made) = tokio::join!(
        call(&deps, request(ROTATE_KEY, rotate_body(json!({})))),
        call(&deps, request(ME, |_| {})),
        call(&deps, request(CREATE_KEY, |_| {})),
    );
    for (status, body) in [&rotated, &me, &made] {
        assert!(status.is_success(), "{status} {body}");
    }
    let current = current_keys(&deps);
    assert_eq!(current.len(), 1, "{:?}", deps.keys.keys());
    assert_eq!(rotated.1["api_key"]["id"], current[0].id.as_str());
}

#[tokio::test]
async fn deleting_the_account_should_delete_retired_keys_too() {
    let deps = subscribed_deps().await;
    call(
        &deps,
        request(ROTATE_KEY, rotate_body(json!({"grace_seconds": 600}))),
    )
    .await;
    assert_eq!(deps.keys.keys().len(), 2);
    let (status, _) = call(&deps, request(DELETE_ME, |_| {})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(deps.keys.keys().is_empty(), "{:?}", deps.keys.keys());
}
