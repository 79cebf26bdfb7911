//! Checkout, the success return, /me, the portal and account deletion end to end: the functions
//! run under `cargo lambda watch` and are invoked with the API Gateway events the HTTP API would
//! send, carrying the claims of a real ID token from cognito-local.

use billing_core::table;
use integration_tests::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
#[ignore = "needs the local emulators: run `make test`"]
async fn when_user_pays_should_get_pro_and_one_key_and_deleting_the_account_should_leave_nothing() {
    let env = LocalEnv::from_env();
    let sdk = env.sdk().await;
    let cognito = CognitoClient::new(&sdk);
    let dynamo = DynamoClient::new(&sdk);
    let apigw = aws_sdk_apigateway::Client::new(&sdk);
    let site = std::env::var("SITE_ORIGIN").unwrap();
    let user = signed_up_user(&env, &cognito).await;
    let claims = Some(&user.claims);

    // POST /checkout
    let start = http_api_event(
        "POST",
        "/checkout",
        &[],
        Some(&json!({"lookup_key": "pro_monthly"})),
        claims,
    );
    let (status, body, _) = call_api(&env, "checkout", &start).await;
    assert_eq!(status, 200, "{body}");
    let session_id = body["id"].as_str().unwrap().to_owned();
    assert!(
        body["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );

    // Paying in the Stripe emulator; the success URL carries the session id and one-time key.
    let session = stripe_front(
        &env,
        Method::GET,
        &format!("/v1/checkout/sessions/{session_id}"),
    )
    .await;
    assert_eq!(session["client_reference_id"], user.sub);
    let success_url = session["success_url"].as_str().unwrap().to_owned();
    let key = success_url.split("key=").nth(1).unwrap().to_owned();
    assert!(success_url.contains(&format!("session_id={session_id}")));
    stripe_front(
        &env,
        Method::POST,
        &format!("/_test/checkout/sessions/{session_id}/complete"),
    )
    .await;

    // A wrong one-time key provisions nothing.
    let forged = http_api_event(
        "GET",
        "/checkout/complete",
        &[("session_id", &session_id), ("key", &"0".repeat(64))],
        None,
        None,
    );
    let (status, _, location) = call_api(&env, "checkout", &forged).await;
    assert_eq!(status, 303);
    assert_eq!(location.unwrap(), format!("{site}/billing/cancel"));
    assert!(keys_of(&apigw, &user.sub).await.is_empty());

    // GET /checkout/complete, twice: provisioned once.
    let complete = http_api_event(
        "GET",
        "/checkout/complete",
        &[("session_id", &session_id), ("key", &key)],
        None,
        None,
    );
    for _ in 0..2 {
        let (status, _, location) = call_api(&env, "checkout", &complete).await;
        assert_eq!(status, 303);
        assert_eq!(location.unwrap(), format!("{site}/billing/success"));
    }
    assert_eq!(
        user_attribute(&cognito, &env, &user.username, "custom:plan_type")
            .await
            .as_deref(),
        Some("pro")
    );
    let keys = keys_of(&apigw, &user.sub).await;
    assert_eq!(keys.len(), 1, "one API key");
    let key_id = keys[0].id().unwrap().to_owned();
    assert_eq!(
        key_usage_plans(&apigw, &user.sub).await,
        Some((vec![usage_plan("pro")], true))
    );

    // GET /me
    let (status, me, _) = call_api(
        &env,
        "portal",
        &http_api_event("GET", "/me", &[], None, claims),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["plan"], "pro");
    assert_eq!(me["subscriptions"][0]["status"], "active");
    assert_eq!(me["subscriptions"][0]["plan"], "pro");
    assert_eq!(me["api_key"]["id"], key_id.as_str());
    assert_eq!(me["api_key"]["value"], keys[0].value().unwrap());
    assert_eq!(me["api_key"]["usage_plan"], usage_plan("pro"));

    // Checking out the same plan again is refused.
    let (status, _, _) = call_api(
        &env,
        "checkout",
        &http_api_event(
            "POST",
            "/checkout",
            &[],
            Some(&json!({"lookup_key": "pro_monthly"})),
            claims,
        ),
    )
    .await;
    assert_eq!(status, 409);

    // POST /portal
    let portal = http_api_event(
        "POST",
        "/portal",
        &[],
        Some(&json!({"return_path": "/account", "flow": "cancel"})),
        claims,
    );
    let (status, body, _) = call_api(&env, "portal", &portal).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["url"].as_str().unwrap().contains("/portal/"));

    // DELETE /me, twice: nothing left behind.
    let customer_id = user_attribute(&cognito, &env, &user.username, "custom:stripe_customer_id")
        .await
        .unwrap();
    for _ in 0..2 {
        let (status, _, _) = call_api(
            &env,
            "portal",
            &http_api_event("DELETE", "/me", &[], None, claims),
        )
        .await;
        assert_eq!(status, 204);
    }
    assert!(
        customers_with_sub(&env.stripe(), &user.sub)
            .await
            .is_empty(),
        "customer deleted"
    );
    assert!(keys_of(&apigw, &user.sub).await.is_empty(), "key deleted");
    assert!(
        get_item(
            &dynamo,
            &env,
            &table::user_pk(&user.sub),
            table::SK_CUSTOMER
        )
        .await
        .is_none()
    );
    assert!(
        get_item(
            &dynamo,
            &env,
            &table::customer_pk(&customer_id),
            table::SK_USER
        )
        .await
        .is_none()
    );
    assert!(
        get_item(
            &dynamo,
            &env,
            &table::checkout_pk(&session_id),
            table::SK_SESSION
        )
        .await
        .is_none()
    );
    let gone = cognito
        .admin_get_user()
        .user_pool_id(&env.user_pool_id)
        .username(&user.username)
        .send()
        .await;
    assert!(
        gone.unwrap_err()
            .as_service_error()
            .unwrap()
            .is_user_not_found_exception()
    );
}

#[tokio::test]
#[ignore = "needs the local emulators: run `make test`"]
async fn when_claims_are_missing_should_answer_401() {
    let env = LocalEnv::from_env();
    let event = http_api_event(
        "POST",
        "/checkout",
        &[],
        Some(&json!({"lookup_key": "pro_monthly"})),
        None,
    );
    let (status, body, _) = call_api(&env, "checkout", &event).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
}

#[tokio::test]
#[ignore = "needs the local emulators: run `make test`"]
async fn plans_should_show_anyone_the_bootstrap_catalogue_from_the_table() {
    let env = LocalEnv::from_env();
    let response = env
        .invoke(
            "checkout",
            &http_api_event("GET", "/plans", &[], None, None),
        )
        .await;
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(
        response["headers"]["cache-control"], "public, max-age=300",
        "{response}"
    );
    let body: serde_json::Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    let pro = body["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|offer| offer["lookup_key"] == "pro_monthly")
        .unwrap_or_else(|| panic!("pro_monthly on sale: {body}"));
    assert_eq!(pro["plan"], "pro");
    assert_eq!(pro["unit_amount"], 1000);
    assert_eq!(pro["currency"], "usd");
    assert_eq!(pro["interval"], "month");
    assert_eq!(pro["metered"], false);
    assert_eq!(pro["product_name"], "Pro");
    // The free plan's price is on sale too, and before pro (plans lowest first).
    let keys: Vec<&str> = body["plans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|offer| offer["lookup_key"].as_str())
        .collect();
    let position = |key: &str| keys.iter().position(|k| *k == key);
    assert!(position("free_monthly").is_some(), "{keys:?}");
    assert!(
        position("free_monthly") < position("pro_monthly"),
        "{keys:?}"
    );
}

#[tokio::test]
#[ignore = "needs the local emulators: run `make test`"]
async fn a_new_user_should_get_a_free_key_on_first_need_and_keep_it_when_paying() {
    let env = LocalEnv::from_env();
    let sdk = env.sdk().await;
    let cognito = CognitoClient::new(&sdk);
    let apigw = aws_sdk_apigateway::Client::new(&sdk);
    let user = signed_up_user(&env, &cognito).await;
    let claims = Some(&user.claims);
    assert!(
        keys_of(&apigw, &user.sub).await.is_empty(),
        "no key at sign-up"
    );

    // Two first requests at once: one key, on the free usage plan.
    let me = http_api_event("GET", "/me", &[], None, claims);
    let create = http_api_event("POST", "/me/api-key", &[], None, claims);
    let ((me_status, me_body, _), (create_status, create_body, _)) = tokio::join!(
        call_api(&env, "portal", &me),
        call_api(&env, "portal", &create)
    );
    assert_eq!(me_status, 200, "{me_body}");
    assert!(
        [200, 201].contains(&create_status),
        "{create_status} {create_body}"
    );
    assert_eq!(me_body["plan"], "free");
    let keys = keys_of(&apigw, &user.sub).await;
    assert_eq!(keys.len(), 1, "one key for two first requests");
    let key_id = keys[0].id().unwrap().to_owned();
    assert_eq!(me_body["api_key"]["id"], key_id.as_str());
    assert_eq!(create_body["api_key"]["id"], key_id.as_str());
    assert_eq!(
        key_usage_plans(&apigw, &user.sub).await,
        Some((vec![usage_plan("free")], true))
    );
    assert_eq!(
        me_body["api_key"]["value"],
        keys[0].value().map_or(serde_json::Value::Null, Into::into)
    );

    // Paying moves that same key to pro.
    buy_pro(&env, &user).await;
    wait_for_plan(&cognito, &env, &user.username, "pro").await;
    let keys = keys_of(&apigw, &user.sub).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id(), Some(key_id.as_str()));
    assert_eq!(
        key_usage_plans(&apigw, &user.sub).await,
        Some((vec![usage_plan("pro")], true))
    );
}

/// The key's whole name-independent state in API Gateway: name, enabled, usage plans; `None`
/// once deleted.
async fn key_state(
    apigw: &aws_sdk_apigateway::Client,
    key_id: &str,
) -> Option<(String, bool, Vec<String>)> {
    let key = apigw.get_api_key().api_key(key_id).send().await.ok()?;
    let plans = apigw
        .get_usage_plans()
        .key_id(key_id)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
        .into_iter()
        .filter_map(|plan| plan.id)
        .collect();
    Some((key.name.unwrap_or_default(), key.enabled, plans))
}

#[tokio::test]
#[ignore = "needs the local emulators: run `make test`"]
async fn a_rotated_key_should_be_disabled_then_deleted_and_its_successor_on_the_same_plan() {
    let env = LocalEnv::from_env();
    let sdk = env.sdk().await;
    let cognito = CognitoClient::new(&sdk);
    let apigw = aws_sdk_apigateway::Client::new(&sdk);
    let user = signed_up_user(&env, &cognito).await;
    let claims = Some(&user.claims);
    let rotate = |grace: Option<i64>| {
        let body = grace.map_or_else(|| json!({}), |secs| json!({"grace_seconds": secs}));
        http_api_event("POST", "/me/api-key/rotate", &[], Some(&body), claims)
    };

    let (status, made, _) = call_api(
        &env,
        "portal",
        &http_api_event("POST", "/me/api-key", &[], None, claims),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let first = made["api_key"]["id"].as_str().unwrap().to_owned();
    let today = billing_core::usage::UtcDay::of(billing_core::http::now());
    record_calls(&first, today, 30).await;
    let left_before = remaining_quota(&apigw, &first, today).await;

    // No grace: the old key is disabled at once, renamed out of the user's name; the new key
    // has what the old one had left of the period's quota.
    let (status, rotated, _) = call_api(&env, "portal", &rotate(None)).await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["api_key"]["id"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_ne!(rotated["api_key"]["value"], made["api_key"]["value"]);
    let current = keys_of(&apigw, &user.sub).await;
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].id(), Some(second.as_str()));
    assert_eq!(
        key_usage_plans(&apigw, &user.sub).await,
        Some((vec![usage_plan("free")], true))
    );
    let (name, enabled, _) = key_state(&apigw, &first).await.unwrap();
    assert!(
        name.starts_with(&format!("billing-retired-{}-", user.sub)),
        "{name}"
    );
    assert!(!enabled, "no grace: disabled at once");
    assert_eq!(remaining_quota(&apigw, &second, today).await, left_before);

    // With a grace: the old key keeps working until it ends, then the reconciler disables it.
    let (status, rotated, _) = call_api(&env, "portal", &rotate(Some(600))).await;
    assert_eq!(status, 200, "{rotated}");
    let works_until = rotated["retired_key"]["works_until"].as_i64().unwrap();
    let (_, enabled, plans) = key_state(&apigw, &second).await.unwrap();
    assert!(enabled, "working during its grace");
    assert_eq!(plans, [usage_plan("free")]);
    let (_, me, _) = call_api(
        &env,
        "portal",
        &http_api_event("GET", "/me", &[], None, claims),
    )
    .await;
    assert_eq!(me["api_key"]["id"], rotated["api_key"]["id"]);

    let after_grace = reconcile_as_of(works_until);
    assert!(
        after_grace["retired_keys_disabled"].as_u64().unwrap() >= 1,
        "{after_grace}"
    );
    assert!(!key_state(&apigw, &second).await.unwrap().1);

    // After the hold for the usage reporter, both retired keys are gone; the current one stays.
    let hold = billing_core::reconciler::RETIRED_KEY_HOLD_SECS;
    let after_hold = reconcile_as_of(works_until + hold);
    assert!(
        after_hold["retired_keys_deleted"].as_u64().unwrap() >= 2,
        "{after_hold}"
    );
    assert_eq!(key_state(&apigw, &first).await, None);
    assert_eq!(key_state(&apigw, &second).await, None);
    assert_eq!(keys_of(&apigw, &user.sub).await.len(), 1);

    // Three rotations an hour: the fourth is refused with when to come back.
    let (status, _, _) = call_api(&env, "portal", &rotate(None)).await;
    assert_eq!(status, 200);
    let refused = env.invoke("portal", &rotate(None)).await;
    assert_eq!(refused["statusCode"], 429, "{refused}");
    let body: serde_json::Value = serde_json::from_str(refused["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "too_many_rotations");
    let retry_after = body["error"]["retry_after"].as_i64().unwrap();
    assert!((1..=3600).contains(&retry_after), "{body}");
    assert_eq!(refused["headers"]["retry-after"], retry_after.to_string());
}

/// What the key has left of the free usage plan's quota today (`GetUsage`).
async fn remaining_quota(
    apigw: &aws_sdk_apigateway::Client,
    key_id: &str,
    today: billing_core::usage::UtcDay,
) -> i64 {
    let usage = apigw
        .get_usage()
        .usage_plan_id(usage_plan("free"))
        .key_id(key_id)
        .start_date(today.to_string())
        .end_date(today.to_string())
        .send()
        .await
        .unwrap();
    usage.items().unwrap()[key_id][0][1]
}

fn reconcile_as_of(at: i64) -> serde_json::Value {
    let report = billing_admin(&["--json", "reconcile", "--reviews-as-of", &at.to_string()]);
    serde_json::from_str(report.trim()).unwrap()
}
