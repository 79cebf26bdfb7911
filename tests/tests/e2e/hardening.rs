//! The hardening of issue 11, end to end on the emulators: verified events we cannot read are
//! recorded and acknowledged on both ingresses; a subscription whose add-on item comes before
//! the pro price gives pro; checkout answers Stripe's refusals and bad locales with 400s; an
//! unverified sign-up with a payer's e-mail does not capture the payer; DELETE /me racing the
//! webhook leaves nothing.

use std::time::Duration;

use billing_core::adapters::dynamo::DynamoStore;
use billing_core::ports::EventLog;
use billing_core::table;
use integration_tests::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn store(env: &LocalEnv) -> DynamoStore {
    DynamoStore::from_sdk(&env.sdk().await, &env.table_name)
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn verified_events_we_cannot_read_are_recorded_and_acknowledged_on_both_ingresses() {
    let env = LocalEnv::from_env();
    let https_id = unique("evt_unreadable_https_");
    let unreadable = json!({
        "id": https_id, "object": "event", "type": "invoice.paid", "created": now(),
        "livemode": false, "api_version": "2031-01-01.future",
        "data": {"object": {"object": "invoice", "customer": "cus_nobody", "amount_paid": 100}}
    });
    let (status, body) = deliver_signed(&env, &unreadable).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("unreadable")),
        "{body}"
    );

    // invoice.upcoming has no id either, and is not a type we use: acknowledged, not recorded.
    let upcoming = json!({
        "id": unique("evt_upcoming_"), "object": "event", "type": "invoice.upcoming",
        "created": now(), "livemode": false,
        "data": {"object": {"object": "invoice", "customer": "cus_nobody"}}
    });
    let (status, body) = deliver_signed(&env, &upcoming).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("ignored")),
        "{body}"
    );

    let eventbridge_id = unique("evt_unreadable_eb_");
    let mut envelope: Value = serde_json::from_str(include_str!(
        "../../../events/webhook/eventbridge/subscription-created.json"
    ))
    .unwrap();
    envelope["detail"]["id"] = json!(eventbridge_id);
    envelope["detail"]["data"]["object"]["status"] = json!({"not": "a status"});
    let answer = env.invoke("webhook-eventbridge", &envelope).await;
    assert_eq!(answer["outcome"], "unreadable", "{answer}");

    let recorded = store(&env).await.unreadable_events().await.unwrap();
    let find = |id: &str| recorded.iter().find(|r| r.event.event_id == id).cloned();
    let https = find(&https_id).expect("the HTTPS delivery is recorded");
    assert_eq!(https.event.event_type.as_deref(), Some("invoice.paid"));
    assert_eq!(
        https.event.api_version.as_deref(),
        Some("2031-01-01.future")
    );
    assert_eq!(https.event.field, "data.object");
    let eventbridge = find(&eventbridge_id).expect("the EventBridge delivery is recorded");
    assert_eq!(eventbridge.event.field, "data.object.status");

    // What an operator lists: billing-admin, next to this test's binary in the target dir.
    let listed = billing_admin(&["unreadable", "list", "--json"]);
    for id in [&https_id, &eventbridge_id] {
        assert!(
            listed.contains(&format!("\"event_id\":\"{id}\"")),
            "{id} in {listed}"
        );
    }
}

/// Runs the billing-admin binary built with the workspace, with this environment.
fn billing_admin(args: &[&str]) -> String {
    let exe = std::env::current_exe().unwrap();
    let target_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let output = std::process::Command::new(target_dir.join("billing-admin"))
        .args(args)
        .output()
        .expect("billing-admin (built by cargo build --workspace)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The price of `lookup_key` in the Stripe front.
async fn price_id(env: &LocalEnv, lookup_key: &str) -> String {
    let listed = stripe_front(
        env,
        Method::GET,
        &format!("/v1/prices?lookup_keys[]={lookup_key}"),
    )
    .await;
    listed["data"][0]["id"].as_str().unwrap().to_owned()
}

async fn stripe_post(env: &LocalEnv, path: &str, form: &[(&str, &str)]) -> Value {
    stripe_front_form(env, Method::POST, path, form).await
}

/// A card the customer pays with by default.
async fn with_card(env: &LocalEnv, customer_id: &str) {
    let method = stripe_post(
        env,
        "/v1/payment_methods/pm_card_visa/attach",
        &[("customer", customer_id)],
    )
    .await;
    let method_id = method["id"].as_str().unwrap();
    stripe_post(
        env,
        &format!("/v1/customers/{customer_id}"),
        &[("invoice_settings[default_payment_method]", method_id)],
    )
    .await;
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn a_subscription_with_an_add_on_before_the_pro_price_gives_pro() {
    let env = LocalEnv::from_env();
    let cognito = CognitoClient::new(&env.sdk().await);
    let user = signed_up_user(&env, &cognito).await;
    let customer_id = user_attribute(&cognito, &env, &user.username, "custom:stripe_customer_id")
        .await
        .unwrap();
    let pro_price = price_id(&env, "pro_monthly").await;
    let pro = stripe_front(&env, Method::GET, &format!("/v1/prices/{pro_price}")).await;
    let add_on_product = stripe_post(&env, "/v1/products", &[("name", "Extra seats")]).await;
    let add_on = stripe_post(
        &env,
        "/v1/prices",
        &[
            ("product", add_on_product["id"].as_str().unwrap()),
            ("unit_amount", "300"),
            ("currency", pro["currency"].as_str().unwrap()),
            (
                "recurring[interval]",
                pro["recurring"]["interval"].as_str().unwrap(),
            ),
        ],
    )
    .await;
    with_card(&env, &customer_id).await;
    stripe_post(
        &env,
        "/v1/subscriptions",
        &[
            ("customer", &customer_id),
            ("items[0][price]", add_on["id"].as_str().unwrap()),
            ("items[1][price]", &pro_price),
        ],
    )
    .await;
    wait_for_plan(&cognito, &env, &user.username, "pro").await;
    let apigw = aws_sdk_apigateway::Client::new(&env.sdk().await);
    let pro_plan = usage_plan("pro");
    eventually(
        Duration::from_secs(30),
        "the key on the pro usage plan",
        || async {
            let key = keys_of(&apigw, &user.sub).await.into_iter().next()?;
            let plans = apigw
                .get_usage_plans()
                .key_id(key.id()?)
                .send()
                .await
                .ok()?;
            let plan_ids: Vec<_> = plans.items().iter().filter_map(|p| p.id()).collect();
            (plan_ids == [pro_plan.as_str()]).then_some(())
        },
    )
    .await;
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn checkout_answers_a_bad_locale_and_an_unknown_promotion_code_with_400() {
    let env = LocalEnv::from_env();
    let cognito = CognitoClient::new(&env.sdk().await);
    let user = signed_up_user(&env, &cognito).await;
    let checkout =
        |body: Value| http_api_event("POST", "/checkout", &[], Some(&body), Some(&user.claims));

    let (status, body, _) = call_api(
        &env,
        "checkout",
        &checkout(json!({"lookup_key": "pro_monthly", "locale": "en-US"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("locale:")
    );

    let (status, body, _) = call_api(
        &env,
        "checkout",
        &checkout(json!({"lookup_key": "pro_monthly", "locale": "ES-419"})),
    )
    .await;
    assert_eq!(status, 200, "a Checkout locale in any case: {body}");

    let (status, body, _) = call_api(
        &env,
        "checkout",
        &checkout(json!({"lookup_key": "pro_monthly", "promotion_code": "promo_unknown1"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "discounts[0][promotion_code]");
    assert_eq!(body["error"]["stripe_code"], "resource_missing");
    assert!(
        !body.to_string().contains("No such"),
        "never Stripe's message: {body}"
    );
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn signing_up_with_a_payers_email_without_verifying_it_does_not_capture_the_payer() {
    let env = LocalEnv::from_env();
    let cognito = CognitoClient::new(&env.sdk().await);
    let dynamo = DynamoClient::new(&env.sdk().await);
    // A payer the business had before: a Stripe customer with an e-mail and no user.
    let email = format!("{}@example.com", unique("payer-"));
    let payer = stripe_post(&env, "/v1/customers", &[("email", &email)]).await;
    let payer_id = payer["id"].as_str().unwrap().to_owned();

    // Someone signs up with that address; cognito-local confirms without verifying it.
    let username = unique("e2e-user-");
    sign_up_with_email(&env, &cognito, &username, &email).await;
    confirm_sign_up(&env, &cognito, &username).await;
    let own = eventually(Duration::from_secs(90), "custom:stripe_customer_id", || {
        user_attribute(&cognito, &env, &username, "custom:stripe_customer_id")
    })
    .await;
    assert_ne!(
        own, payer_id,
        "the unverified address adopted the payer's customer"
    );
    assert_eq!(
        user_attribute(&cognito, &env, &username, "email_verified").await,
        None,
        "cognito-local confirmed without verifying the e-mail"
    );

    // The payer's own events do not link the payer to that user either.
    stripe_post(
        &env,
        &format!("/v1/customers/{payer_id}"),
        &[("name", "Payer")],
    )
    .await;
    deliveries_settled(&env).await;
    assert!(
        get_item(
            &dynamo,
            &env,
            &table::customer_pk(&payer_id),
            table::SK_USER
        )
        .await
        .is_none(),
        "the payer's customer is linked to nobody"
    );

    // Once verified, an address does find the payer's customer: a second user whose e-mail
    // is verified before confirming adopts it.
    let verified_email = format!("{}@example.com", unique("payer-"));
    let verified_payer = stripe_post(&env, "/v1/customers", &[("email", &verified_email)]).await;
    let verified_username = unique("e2e-user-");
    sign_up_with_email(&env, &cognito, &verified_username, &verified_email).await;
    cognito
        .admin_update_user_attributes()
        .user_pool_id(&env.user_pool_id)
        .username(&verified_username)
        .user_attributes(attribute("email", &verified_email))
        .user_attributes(attribute("email_verified", "true"))
        .send()
        .await
        .unwrap();
    confirm_sign_up(&env, &cognito, &verified_username).await;
    let adopted = eventually(Duration::from_secs(90), "custom:stripe_customer_id", || {
        user_attribute(
            &cognito,
            &env,
            &verified_username,
            "custom:stripe_customer_id",
        )
    })
    .await;
    assert_eq!(adopted, verified_payer["id"].as_str().unwrap());
}

/// Every item under the customer's partition, whatever its sort key.
async fn customer_items(dynamo: &DynamoClient, env: &LocalEnv, customer_id: &str) -> Vec<String> {
    dynamo
        .query()
        .table_name(&env.table_name)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(table::customer_pk(customer_id)),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .filter_map(|item| item.get("sk")?.as_s().ok().cloned())
        .collect()
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn deleting_the_account_while_the_webhook_works_leaves_nothing() {
    let env = LocalEnv::from_env();
    let sdk = env.sdk().await;
    let cognito = CognitoClient::new(&sdk);
    let dynamo = DynamoClient::new(&sdk);
    let apigw = aws_sdk_apigateway::Client::new(&sdk);
    let user = signed_up_user(&env, &cognito).await;
    let customer_id = user_attribute(&cognito, &env, &user.username, "custom:stripe_customer_id")
        .await
        .unwrap();
    let subscription_id = buy_pro(&env, &user).await;
    wait_for_plan(&cognito, &env, &user.username, "pro").await;
    eventually(
        Duration::from_secs(30),
        "records of the purchase",
        || async { (customer_items(&dynamo, &env, &customer_id).await.len() >= 3).then_some(()) },
    )
    .await;

    // A renewal's events and the deletion at once.
    let renewal = env.clone();
    let renew = tokio::spawn(async move {
        stripe_front(
            &renewal,
            Method::POST,
            &format!("/_test/subscriptions/{subscription_id}/renew"),
        )
        .await
    });
    let delete = http_api_event("DELETE", "/me", &[], None, Some(&user.claims));
    let (status, body, _) = call_api(&env, "portal", &delete).await;
    assert_eq!(status, 204, "{body}");
    renew.await.unwrap();

    // Everything the deletion caused (cancellation, customer.deleted) and the renewal's events
    // have been delivered; none of them brought anything back.
    deliveries_settled(&env).await;
    assert_eq!(
        customer_items(&dynamo, &env, &customer_id).await,
        Vec::<String>::new()
    );
    assert!(keys_of(&apigw, &user.sub).await.is_empty(), "no key");
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
            &table::deleted_customer_pk(&customer_id),
            table::SK_CUSTOMER
        )
        .await
        .is_some(),
        "tombstone"
    );
    let unmapped = dynamo
        .query()
        .table_name(&env.table_name)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(table::unmapped_pk(&customer_id)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unmapped.count(), 0, "the deletion's events are not parked");
    let gone = cognito
        .admin_get_user()
        .user_pool_id(&env.user_pool_id)
        .username(&user.username)
        .send()
        .await;
    assert!(gone.is_err(), "the Cognito user is deleted");
}
