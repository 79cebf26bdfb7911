//! The checkout function with in-memory fakes: `POST /checkout` from the API Gateway events in
//! events/checkout, and the success return `GET /checkout/complete`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;

use billing_core::checkout::{CheckoutSettings, PriceInfo};
use billing_core::domain::{UserPoolId, UserSub, Username};
use billing_core::fakes::{FakeApiKeys, FakeDirectory, FakeStripe, InMemoryStore};
use billing_core::inputs::ReturnPath;
use billing_core::plans::{AccessPolicy, PlanCatalog, PlanName};
use billing_core::ports::{
    BillingRecord, CheckoutRecords, CustomerLinks, DeliveryStore, PriceRecord, ProductRecord,
    ProvisionedState, RecurringRecord, SyncStore, Versioned,
};
use checkout::{Deps, handle};
use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request};
use serde_json::Value;

const CREATE: &str = include_str!("../../../events/checkout/create.json");
const CREATE_REST: &str = include_str!("../../../events/checkout/create-rest-api.json");
const COMPLETE: &str = include_str!("../../../events/checkout/complete.json");
const PLANS: &str = include_str!("../../../events/checkout/plans.json");
const SUB: &str = "8f1c6a2e-71b1-4a0e-9d43-5c1f4d3b2a10";

type FakeDeps = Deps<InMemoryStore, FakeStripe, FakeDirectory, FakeApiKeys>;

fn deps() -> FakeDeps {
    let stripe = FakeStripe::default();
    for (id, key, plan) in [
        ("price_free", "free_monthly", "free"),
        ("price_pro", "pro_monthly", "pro"),
    ] {
        stripe.add_price(PriceInfo {
            id: id.into(),
            lookup_key: Some(key.into()),
            active: true,
            recurring: true,
            trial_period_days: None,
            plan: PlanName::parse(plan),
            metered: false,
            usage_add_on: None,
        });
    }
    // Flat fee plus usage, and one whose usage price is not a metered one.
    for (id, key, add_on) in [
        ("price_pro_plus", "pro_plus_usage", "api_metered"),
        ("price_broken", "broken_bundle", "tshirt"),
    ] {
        stripe.add_price(PriceInfo {
            id: id.into(),
            lookup_key: Some(key.into()),
            active: true,
            recurring: true,
            trial_period_days: None,
            plan: PlanName::parse("pro"),
            metered: false,
            usage_add_on: Some(add_on.into()),
        });
    }
    stripe.add_price(PriceInfo {
        id: "price_api".into(),
        lookup_key: Some("api_metered".into()),
        active: true,
        recurring: true,
        trial_period_days: None,
        plan: PlanName::parse("pro"),
        metered: true,
        usage_add_on: None,
    });
    stripe.add_price(PriceInfo {
        id: "price_tshirt".into(),
        lookup_key: Some("tshirt".into()),
        active: true,
        recurring: false,
        trial_period_days: None,
        plan: None,
        metered: false,
        usage_add_on: None,
    });
    Deps {
        store: InMemoryStore::default(),
        stripe,
        directory: FakeDirectory::default(),
        keys: FakeApiKeys::default(),
        plans: PlanCatalog::parse("free=up_free,pro=up_pro").unwrap(),
        policy: AccessPolicy::default(),
        settings: CheckoutSettings {
            site_origin: "https://app.example.com".into(),
            success_path: ReturnPath::parse("/billing/success").unwrap(),
            cancel_path: ReturnPath::parse("/billing/cancel").unwrap(),
            allow_multiple_subscriptions: false,
            automatic_tax: false,
            billing_address_required: false,
            extra_sellable_lookup_keys: Vec::new(),
        },
        user_pool_id: UserPoolId::parse("us-east-1_EXAMPLE1").unwrap(),
    }
}

fn request(event: &str, edit: impl FnOnce(&mut Value)) -> Request {
    let mut event: Value = serde_json::from_str(event).unwrap();
    edit(&mut event);
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

fn with_body(body: Value) -> impl FnOnce(&mut Value) {
    move |event| event["body"] = Value::String(body.to_string())
}

async fn call(deps: &FakeDeps, request: Request) -> (StatusCode, Value, Option<String>) {
    let response = handle(deps, request).await.unwrap();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|value| value.to_str().unwrap().to_owned());
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        _ => Value::Null,
    };
    (response.status(), body, location)
}

fn complete_request(session_id: &str, key: &str) -> Request {
    let (session_id, key) = (session_id.to_owned(), key.to_owned());
    request(COMPLETE, move |event| {
        event["rawQueryString"] = Value::String(format!("session_id={session_id}&key={key}"));
        event["queryStringParameters"] = serde_json::json!({"session_id": session_id, "key": key});
    })
}

/// Starts a pro checkout and returns (session id, one-time key).
async fn start_pro(deps: &FakeDeps) -> (String, String) {
    let (status, body, _) = call(deps, request(CREATE, |_| {})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = deps.stripe.created_sessions().pop().unwrap();
    let key = session.success_url.split("key=").nth(1).unwrap().to_owned();
    (body["id"].as_str().unwrap().to_owned(), key)
}

fn alice() -> (UserPoolId, Username) {
    (
        UserPoolId::parse("us-east-1_EXAMPLE1").unwrap(),
        Username::parse("alice").unwrap(),
    )
}

#[tokio::test]
async fn when_claims_are_missing_should_answer_401() {
    let deps = deps();
    let anonymous = request(CREATE, |event| {
        event["requestContext"]
            .as_object_mut()
            .unwrap()
            .remove("authorizer");
    });
    let (status, body, _) = call(&deps, anonymous).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(deps.stripe.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn when_body_is_not_json_should_answer_400() {
    let deps = deps();
    let bad = request(CREATE, |event| {
        event["body"] = Value::String("{lookup_key:".into())
    });
    let (status, body, _) = call(&deps, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_body");
}

#[tokio::test]
async fn when_a_field_is_missing_or_wrong_should_name_it() {
    let deps = deps();
    let (status, body, _) = call(&deps, request(CREATE, with_body(serde_json::json!({})))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lookup_key"),
        "{body}"
    );

    let zero = serde_json::json!({"lookup_key": "pro_monthly", "quantity": 0});
    let (status, body, _) = call(&deps, request(CREATE, with_body(zero))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("quantity"),
        "{body}"
    );

    let both = serde_json::json!({"lookup_key": "pro_monthly", "promotion_code": "promo_1", "allow_promotion_codes": true});
    let (status, _, _) = call(&deps, request(CREATE, with_body(both))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn when_body_is_too_large_should_answer_413() {
    let deps = deps();
    let huge = serde_json::json!({"lookup_key": "x".repeat(10_000)});
    let (status, _, _) = call(&deps, request(CREATE, with_body(huge))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn when_lookup_key_is_unknown_or_not_a_plan_should_answer_404() {
    let deps = deps();
    for key in ["gold_monthly", "tshirt"] {
        let body = serde_json::json!({"lookup_key": key});
        let (status, body, _) = call(&deps, request(CREATE, with_body(body))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{key}");
        assert_eq!(body["error"]["code"], "unknown_price");
    }
    assert!(deps.stripe.created_sessions().is_empty());
}

#[tokio::test]
async fn when_caller_checks_out_should_create_session_for_their_own_customer() {
    let deps = deps();
    let (session_id, key) = start_pro(&deps).await;

    let session = deps.stripe.created_sessions().pop().unwrap();
    assert_eq!(session.client_reference_id, SUB);
    assert_eq!(session.metadata["cognito_sub"], SUB);
    assert_eq!(session.metadata["plan"], "pro");
    assert_eq!(session.price_id, "price_pro");
    assert!(session.success_url.starts_with(
        "https://abc123.execute-api.us-east-1.amazonaws.com/checkout/complete?session_id={CHECKOUT_SESSION_ID}&key="
    ));
    assert_eq!(session.cancel_url, "https://app.example.com/billing/cancel");
    // The customer was created lazily, once, and linked.
    assert_eq!(deps.stripe.customers().len(), 1);
    assert_eq!(
        deps.store
            .sub_of_customer(&session.customer_id)
            .unwrap()
            .as_str(),
        SUB
    );
    // Only the hash of the one-time key is recorded.
    let record = deps.store.checkout_record(&session_id).unwrap();
    assert_eq!(record.key_hash, billing_core::ids::hash_key(&key));
    assert_ne!(record.key_hash, key);
}

#[tokio::test]
async fn when_the_price_is_metered_should_sell_it_without_quantity_and_refuse_one() {
    let deps = deps();
    let metered = serde_json::json!({"lookup_key": "api_metered"});
    let (status, body, _) = call(&deps, request(CREATE, with_body(metered))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = deps.stripe.created_sessions().pop().unwrap();
    assert_eq!(session.price_id, "price_api");
    assert_eq!(
        session.quantity, None,
        "Stripe refuses a quantity on a metered price"
    );

    let two = serde_json::json!({"lookup_key": "api_metered", "quantity": 2});
    let (status, body, _) = call(&deps, request(CREATE, with_body(two))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_quantity");
    assert_eq!(deps.stripe.created_sessions().len(), 1);

    // The same request id with other parameters would be an idempotency conflict: a new one.
    let licensed = self::deps();
    start_pro(&licensed).await;
    assert_eq!(
        licensed.stripe.created_sessions().pop().unwrap().quantity,
        Some(1)
    );
}

#[tokio::test]
async fn when_event_comes_from_a_rest_api_should_read_its_cognito_claims() {
    let deps = deps();
    let (status, body, _) = call(&deps, request(CREATE_REST, |_| {})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = deps.stripe.created_sessions().pop().unwrap();
    assert_eq!(session.client_reference_id, SUB);
    assert!(
        session.success_url.starts_with(
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod/checkout/complete?"
        )
    );
}

#[tokio::test]
async fn when_already_subscribed_to_the_plan_should_answer_409() {
    let deps = deps();
    let (session_id, _) = start_pro(&deps).await;
    deps.stripe.pay_session(&session_id, Some("pro"));
    let (status, body, _) = call(&deps, request(CREATE, |_| {})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "already_subscribed");
}

#[tokio::test]
async fn when_paid_session_returns_should_provision_plan_and_one_key() {
    let deps = deps();
    let (session_id, key) = start_pro(&deps).await;
    deps.stripe.pay_session(&session_id, Some("pro"));

    let (status, _, location) = call(&deps, complete_request(&session_id, &key)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location.as_deref(),
        Some("https://app.example.com/billing/success")
    );
    let (pool, alice) = alice();
    assert_eq!(
        deps.directory.plan_of(&pool, &alice).unwrap().as_str(),
        "pro"
    );
    let keys = deps.keys.keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].usage_plan_ids, ["up_pro"]);
    assert_eq!(keys[0].owner, UserSub::parse(SUB).unwrap());
}

#[tokio::test]
async fn a_success_return_should_forget_what_deliveries_recorded_as_applied() {
    // Deliveries skip Cognito and API Gateway while the plan they compute equals the recorded
    // one: after the success return changed the plan, that record must not vouch for it.
    let deps = deps();
    let (session_id, key) = start_pro(&deps).await;
    deps.stripe.pay_session(&session_id, Some("pro"));
    let sub = UserSub::parse(SUB).unwrap();
    let link = deps.store.customer_of_user(&sub).await.unwrap().unwrap();
    let recorded = ProvisionedState {
        sub,
        plan: PlanName::parse("free").unwrap(),
        usage_plan_id: Some("up_free".to_owned()),
        api_key_id: Some("key_before".to_owned()),
        stacks: Vec::new(),
    };
    deps.store
        .put_provisioned(&link.customer_id, &recorded)
        .await
        .unwrap();

    call(&deps, complete_request(&session_id, &key)).await;
    let view = deps.store.customer_view(&link.customer_id).await.unwrap();
    assert_eq!(view.provisioned, None);
}

#[tokio::test]
async fn when_success_link_is_replayed_should_provision_nothing_twice() {
    let deps = deps();
    let (session_id, key) = start_pro(&deps).await;
    deps.stripe.pay_session(&session_id, Some("pro"));
    call(&deps, complete_request(&session_id, &key)).await;
    let directory_calls = deps.directory.calls.load(Ordering::SeqCst);

    let (status, _, location) = call(&deps, complete_request(&session_id, &key)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location.as_deref(),
        Some("https://app.example.com/billing/success")
    );
    assert_eq!(deps.directory.calls.load(Ordering::SeqCst), directory_calls);
    assert_eq!(deps.keys.creates.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn when_one_time_key_is_wrong_should_redirect_to_cancel_and_provision_nothing() {
    let deps = deps();
    let (session_id, _) = start_pro(&deps).await;
    deps.stripe.pay_session(&session_id, Some("pro"));
    let (status, _, location) = call(&deps, complete_request(&session_id, &"a".repeat(64))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location.as_deref(),
        Some("https://app.example.com/billing/cancel")
    );
    assert!(deps.keys.keys().is_empty());
}

#[tokio::test]
async fn when_session_is_unpaid_or_malformed_should_redirect_to_cancel() {
    let deps = deps();
    let (session_id, key) = start_pro(&deps).await;
    let (_, _, location) = call(&deps, complete_request(&session_id, &key)).await;
    assert_eq!(
        location.as_deref(),
        Some("https://app.example.com/billing/cancel")
    );
    let (_, _, location) = call(&deps, complete_request("cs_x.y", &key)).await;
    assert_eq!(
        location.as_deref(),
        Some("https://app.example.com/billing/cancel")
    );
    assert!(deps.keys.keys().is_empty());
}

#[tokio::test]
async fn when_session_belongs_to_another_customer_than_recorded_should_redirect_to_cancel() {
    let deps = deps();
    let (session_id, key) = start_pro(&deps).await;
    deps.stripe.pay_session(&session_id, Some("pro"));
    // The record says another user started it: the link cannot be used by this one.
    let mut record = deps.store.checkout_record(&session_id).unwrap();
    record.sub = UserSub::parse("someone-else").unwrap();
    record.session_id = "cs_test_other".into();
    deps.store.put(&record).await.unwrap();
    let (_, _, location) = call(&deps, complete_request("cs_test_other", &key)).await;
    assert_eq!(
        location.as_deref(),
        Some("https://app.example.com/billing/cancel")
    );
    assert!(deps.keys.keys().is_empty());
}

#[tokio::test]
async fn when_stripe_fails_should_answer_502_without_details() {
    let deps = deps();
    deps.stripe.failing.store(true, Ordering::SeqCst);
    let (status, body, _) = call(&deps, request(CREATE, |_| {})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(body["error"]["code"], "upstream_unavailable");
    assert!(!body.to_string().contains("stripe"), "{body}");
}

/// The SDK retries throttling itself (tested in the API Gateway adapter); throttling that
/// outlasts its attempts is a 502 the caller may retry.
#[tokio::test]
async fn when_api_gateway_keeps_throttling_should_answer_502_and_allow_a_retry() {
    let deps = deps();
    let (session_id, key) = start_pro(&deps).await;
    deps.stripe.pay_session(&session_id, Some("pro"));
    deps.keys.throttle_next.store(50, Ordering::SeqCst);
    let (status, _, _) = call(&deps, complete_request(&session_id, &key)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);

    deps.keys.throttle_next.store(0, Ordering::SeqCst);
    let (_, _, location) = call(&deps, complete_request(&session_id, &key)).await;
    assert_eq!(
        location.as_deref(),
        Some("https://app.example.com/billing/success")
    );
    assert_eq!(deps.keys.keys().len(), 1);
}

#[tokio::test]
async fn when_route_is_unknown_should_answer_404() {
    let deps = deps();
    let other = request(CREATE, |event| {
        event["rawPath"] = Value::String("/elsewhere".into());
        event["requestContext"]["http"]["path"] = Value::String("/elsewhere".into());
    });
    let (status, _, _) = call(&deps, other).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn when_locale_is_a_checkout_locale_in_any_case_should_pass_stripes_spelling() {
    let deps = deps();
    let body = serde_json::json!({"lookup_key": "pro_monthly", "locale": "ES-419"});
    let (status, body, _) = call(&deps, request(CREATE, with_body(body))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = deps.stripe.created_sessions().pop().unwrap();
    assert_eq!(session.locale.as_deref(), Some("es-419"));

    for bad in ["en-US", "klingon", "e"] {
        let body = serde_json::json!({"lookup_key": "pro_monthly", "locale": bad});
        let (status, body, _) = call(&deps, request(CREATE, with_body(body))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("locale:"),
            "{body}"
        );
    }
    assert_eq!(deps.stripe.created_sessions().len(), 1);
}

/// A promotion code Stripe does not know is the caller's mistake: 400 with Stripe's param and
/// code, never Stripe's message; Stripe down stays a 502.
#[tokio::test]
async fn when_stripe_refuses_the_promotion_code_should_answer_400_naming_the_param() {
    let deps = deps();
    let unknown = serde_json::json!({"lookup_key": "pro_monthly", "promotion_code": "promo_nope"});
    let (status, body, _) = call(&deps, request(CREATE, with_body(unknown))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_request");
    assert_eq!(body["error"]["param"], "discounts[0][promotion_code]");
    assert_eq!(body["error"]["stripe_code"], "resource_missing");
    assert!(!body.to_string().contains("No such"), "{body}");

    deps.stripe.add_promotion_code("promo_launch");
    let known = serde_json::json!({"lookup_key": "pro_monthly", "promotion_code": "promo_launch"});
    let (status, body, _) = call(&deps, request(CREATE, with_body(known))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn when_the_one_time_key_has_expired_should_redirect_to_cancel_before_ttl_deletes_it() {
    let deps = deps();
    let (session_id, key) = start_pro(&deps).await;
    deps.stripe.pay_session(&session_id, Some("pro"));
    let eight_days_ago = billing_core::http::now() - 8 * 24 * 3600;
    deps.store
        .set_checkout_created_at(&session_id, eight_days_ago);
    let (status, _, location) = call(&deps, complete_request(&session_id, &key)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location.as_deref(),
        Some("https://app.example.com/billing/cancel")
    );
    assert!(deps.keys.keys().is_empty());
}

fn stored_price(price_id: &str, lookup_key: &str, amount: i64, active: bool) -> BillingRecord {
    BillingRecord::Price {
        price_id: price_id.into(),
        price: PriceRecord {
            active,
            currency: Some("usd".into()),
            lookup_key: Some(lookup_key.into()),
            product: Some("prod_pro".into()),
            recurring: Some(RecurringRecord {
                interval: Some("month".into()),
                interval_count: Some(1),
                meter: None,
                trial_period_days: Some(14),
                usage_type: Some("licensed".into()),
            }),
            unit_amount: Some(amount),
            ..PriceRecord::default()
        },
    }
}

async fn store_catalog(deps: &FakeDeps) {
    let product = BillingRecord::Product {
        product_id: "prod_pro".into(),
        product: ProductRecord {
            active: true,
            metadata: Default::default(),
            name: Some("Pro".into()),
            plan: PlanName::parse("pro"),
        },
    };
    for (created, record) in [
        product,
        stored_price("price_pro", "pro_monthly", 1_000, true),
        stored_price("price_pro_yearly", "pro_yearly", 10_000, true),
        stored_price("price_pro_2020", "pro_2020", 800, false),
    ]
    .into_iter()
    .enumerate()
    {
        deps.store
            .put_record(&Versioned {
                state: record,
                event_created: created as i64,
                event_id: format!("evt_{created}"),
            })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn plans_should_list_the_stored_prices_on_sale_to_anyone_cacheable() {
    let deps = deps();
    store_catalog(&deps).await;
    let response = handle(&deps, request(PLANS, |_| {})).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get(header::CACHE_CONTROL).unwrap(),
        "public, max-age=300"
    );
    let Body::Text(text) = response.body() else {
        panic!("a JSON body");
    };
    let body: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"plans": [
            {"price_id": "price_pro", "lookup_key": "pro_monthly", "plan": "pro",
             "product": "prod_pro", "product_name": "Pro", "unit_amount": 1000, "currency": "usd",
             "interval": "month", "interval_count": 1, "trial_period_days": 14, "metered": false,
             "usage_lookup_key": null},
            {"price_id": "price_pro_yearly", "lookup_key": "pro_yearly", "plan": "pro",
             "product": "prod_pro", "product_name": "Pro", "unit_amount": 10000, "currency": "usd",
             "interval": "month", "interval_count": 1, "trial_period_days": 14, "metered": false,
             "usage_lookup_key": null},
        ]})
    );
    // Read from the table only: Stripe is not asked.
    assert_eq!(deps.stripe.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn plans_should_answer_503_when_the_table_fails() {
    let deps = deps();
    deps.store.failing.store(true, Ordering::SeqCst);
    let (status, body, _) = call(&deps, request(PLANS, |_| {})).await;
    assert!(status.is_server_error(), "{status} {body}");
}

#[tokio::test]
async fn a_flat_fee_with_usage_should_sell_both_prices_on_one_subscription() {
    let deps = deps();
    let (status, body, _) = call(
        &deps,
        request(
            CREATE,
            with_body(serde_json::json!({"lookup_key": "pro_plus_usage"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session = deps.stripe.created_sessions().pop().unwrap();
    assert_eq!(session.price_id, "price_pro_plus");
    assert_eq!(session.quantity, Some(1));
    assert_eq!(session.metered_add_ons, ["price_api"]);
}

#[tokio::test]
async fn a_usage_price_that_is_not_metered_should_sell_nothing_and_say_it_is_ours() {
    let deps = deps();
    let (status, body, _) = call(
        &deps,
        request(
            CREATE,
            with_body(serde_json::json!({"lookup_key": "broken_bundle"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"]["code"], "price_not_on_sale", "{body}");
    assert!(deps.stripe.created_sessions().is_empty());
}

#[tokio::test]
async fn sessions_and_success_returns_should_be_counted_as_emf() {
    use billing_core::telemetry::capture;
    let deps = deps();
    capture::start();
    let (session_id, key) = start_pro(&deps).await;
    deps.stripe.pay_session(&session_id, Some("pro"));
    call(&deps, complete_request(&session_id, &key)).await;
    let metrics: Vec<String> = capture::take()
        .iter()
        .flat_map(|line| {
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|metric| metric["Name"].as_str().map(str::to_owned))
        .collect();
    assert!(
        metrics.contains(&"CheckoutSessionsCreated".to_owned()),
        "{metrics:?}"
    );
    assert!(
        metrics.contains(&"CheckoutSuccessReturns".to_owned()),
        "{metrics:?}"
    );
    assert!(
        metrics.contains(&"ProvisioningActions".to_owned()),
        "{metrics:?}"
    );
}
