//! Checkout, the success return, /me, the portal and account deletion end to end: the functions
//! run under `cargo lambda watch` and are invoked with the API Gateway events the HTTP API would
//! send, carrying the claims of a real ID token from cognito-local.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
