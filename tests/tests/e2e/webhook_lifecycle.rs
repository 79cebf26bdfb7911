//! The webhook end to end, with the Stripe emulator's own signed webhooks delivered to the
//! function under `cargo lambda watch`: a paid checkout provisions without the success
//! return, duplicates and replayed old signatures are refused, an AWS outage answers 5xx and
//! the retry converges, and cancelling through the portal downgrades and deletes the stack.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use integration_tests::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Events the Stripe front sent of this type about this object id, newest first.
async fn events_about(env: &LocalEnv, event_type: &str, object_id: &str) -> Vec<Value> {
    let listed = stripe_front(
        env,
        Method::GET,
        &format!("/_test/events?type={event_type}"),
    )
    .await;
    listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["data"]["object"]["id"] == object_id)
        .cloned()
        .collect()
}

async fn resend(env: &LocalEnv, event_id: &str, timestamp: Option<i64>) -> u64 {
    let query = timestamp
        .map(|t| format!("?timestamp={t}"))
        .unwrap_or_default();
    let delivery = stripe_front(
        env,
        Method::POST,
        &format!("/_test/events/{event_id}/resend{query}"),
    )
    .await;
    delivery["deliveries"][0]["status"].as_u64().unwrap_or(0)
}

fn moto_pid() -> i32 {
    let pid = std::fs::read_to_string("../local/.run/pids/moto.pid")
        .or_else(|_| std::fs::read_to_string("local/.run/pids/moto.pid"))
        .expect("moto pid file");
    // "<pid> <start time> <tag>", written by local/up.sh
    pid.split_whitespace().next().unwrap().parse().unwrap()
}

fn signal(pid: i32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The stack's CloudFormation status, `None` when there is no such stack.
async fn stack_status(
    cloudformation: &aws_sdk_cloudformation::Client,
    name: &str,
) -> Option<String> {
    let described = cloudformation
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .ok()?;
    Some(
        described
            .stacks()
            .first()?
            .stack_status()?
            .as_str()
            .to_owned(),
    )
}

#[tokio::test]
#[ignore = "needs the local emulators: run `make test`"]
async fn stripe_webhooks_should_provision_refuse_replays_survive_an_outage_and_tear_down() {
    let env = LocalEnv::from_env();
    let sdk = env.sdk().await;
    let cognito = CognitoClient::new(&sdk);
    let dynamo = DynamoClient::new(&sdk);
    let apigw = aws_sdk_apigateway::Client::new(&sdk);
    let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
    let user = signed_up_user(&env, &cognito).await;

    // Checkout and payment; no success return: the webhook alone provisions.
    let subscription_id = buy_pro(&env, &user).await;

    wait_for_plan(&cognito, &env, &user.username, "pro").await;
    let pro = usage_plan("pro");
    eventually(
        Duration::from_secs(30),
        "the key on the pro usage plan",
        || async {
            (key_usage_plans(&apigw, &user.sub).await == Some((vec![pro.clone()], true)))
                .then_some(())
        },
    )
    .await;

    // The pro product names a stack template: the webhook created the subscription's stack.
    let stack_name = format!("billing-{subscription_id}").replace('_', "-");
    eventually(
        Duration::from_secs(30),
        "the subscription's stack",
        || async {
            (stack_status(&cloudformation, &stack_name).await.as_deref() == Some("CREATE_COMPLETE"))
                .then_some(())
        },
    )
    .await;
    let record = get_item(
        &dynamo,
        &env,
        &format!("SUBSCRIPTION#{subscription_id}"),
        &format!("STACK#{stack_name}"),
    )
    .await
    .unwrap();
    assert_eq!(string(&record, "status"), "active");

    // A duplicate delivery is accepted and does nothing; an old signature is refused.
    // (localstripe sends its own events a second late.)
    let created = eventually(
        Duration::from_secs(30),
        "customer.subscription.created",
        || async {
            events_about(&env, "customer.subscription.created", &subscription_id)
                .await
                .first()
                .cloned()
        },
    )
    .await;
    let created_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(resend(&env, &created_id, None).await, 200);
    let an_hour_ago = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 3600;
    assert_eq!(resend(&env, &created_id, Some(an_hour_ago)).await, 400);

    // Cancel through the portal while the AWS emulator is stopped: the subscription's deletion
    // cannot be applied (no 2xx), and once AWS is back the retry converges.
    let portal = http_api_event(
        "POST",
        "/portal",
        &[],
        Some(&json!({"flow": "cancel"})),
        Some(&user.claims),
    );
    let (status, body, _) = call_api(&env, "portal", &portal).await;
    assert_eq!(status, 200, "{body}");
    let portal_session = body["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let moto = moto_pid();
    signal(moto, "STOP");
    let cancel = format!(
        "/_test/portal/sessions/{portal_session}/cancel_subscription?subscription={subscription_id}"
    );
    stripe_front(&env, Method::POST, &cancel).await;
    let deleted = eventually(
        Duration::from_secs(30),
        "the customer.subscription.deleted event",
        || async {
            events_about(&env, "customer.subscription.deleted", &subscription_id)
                .await
                .first()
                .cloned()
        },
    )
    .await;
    let deleted_id = deleted["id"].as_str().unwrap().to_owned();
    let during_outage = resend(&env, &deleted_id, None).await;
    signal(moto, "CONT");
    assert!(
        during_outage == 0 || during_outage >= 500,
        "during the outage the webhook answered {during_outage}"
    );
    // Deliveries held up by the outage may still be applying it (409: in progress); like
    // Stripe, retry until a 2xx.
    eventually(
        Duration::from_secs(60),
        "a 2xx for the retried event",
        || async { (resend(&env, &deleted_id, None).await == 200).then_some(()) },
    )
    .await;

    wait_for_plan(&cognito, &env, &user.username, "free").await;
    let free = usage_plan("free");
    // The plan attribute is written before the key moves: wait for the key as well.
    let on_free = Some((vec![free], true));
    eventually(
        Duration::from_secs(30),
        "the key on the free usage plan",
        || async { (key_usage_plans(&apigw, &user.sub).await == on_free).then_some(()) },
    )
    .await;
    eventually(Duration::from_secs(30), "the stack deleted", || async {
        stack_status(&cloudformation, &stack_name)
            .await
            .is_none_or(|status| status == "DELETE_COMPLETE")
            .then_some(())
    })
    .await;
    let record = get_item(
        &dynamo,
        &env,
        &format!("SUBSCRIPTION#{subscription_id}"),
        &format!("STACK#{stack_name}"),
    )
    .await
    .unwrap();
    assert_ne!(string(&record, "status"), "active");
}

async fn customer_items(
    dynamo: &DynamoClient,
    env: &LocalEnv,
    customer_id: &str,
    prefix: &str,
) -> Vec<Value> {
    use aws_sdk_dynamodb::types::AttributeValue;
    dynamo
        .query()
        .table_name(&env.table_name)
        .consistent_read(true)
        .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("CUSTOMER#{customer_id}")))
        .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .map(|item| serde_json::from_str(&string(item, "doc")).unwrap())
        .collect()
}

#[tokio::test]
#[ignore = "needs the local emulators: run `make test`"]
async fn renewal_then_failed_payments_should_keep_access_in_grace_then_downgrade_and_tear_down() {
    let env = LocalEnv::from_env();
    let sdk = env.sdk().await;
    let cognito = CognitoClient::new(&sdk);
    let dynamo = DynamoClient::new(&sdk);
    let apigw = aws_sdk_apigateway::Client::new(&sdk);
    let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
    let user = signed_up_user(&env, &cognito).await;
    let customer_id = user_attribute(&cognito, &env, &user.username, "custom:stripe_customer_id")
        .await
        .unwrap();

    let subscription_id = buy_pro(&env, &user).await;
    let stack_name = format!("billing-{subscription_id}").replace('_', "-");
    wait_for_plan(&cognito, &env, &user.username, "pro").await;
    eventually(
        Duration::from_secs(30),
        "the subscription's stack",
        || async {
            (stack_status(&cloudformation, &stack_name).await.as_deref() == Some("CREATE_COMPLETE"))
                .then_some(())
        },
    )
    .await;

    // Renewal: the invoice is recorded paid, the plan stays.
    stripe_front(
        &env,
        Method::POST,
        &format!("/_test/subscriptions/{subscription_id}/renew"),
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "a paid renewal invoice",
        || async {
            customer_items(&dynamo, &env, &customer_id, "INVOICE#")
                .await
                .into_iter()
                .find(|invoice| {
                    invoice["status"] == "paid" && invoice["billing_reason"] == "subscription_cycle"
                })
        },
    )
    .await;

    // A failed renewal: past_due, delinquent, access kept for the grace period (grace:7).
    stripe_front(
        &env,
        Method::POST,
        &format!("/_test/subscriptions/{subscription_id}/renewal_failed"),
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the customer marked delinquent",
        || async {
            customer_items(&dynamo, &env, &customer_id, "DELINQUENCY")
                .await
                .into_iter()
                .find(|doc| doc["delinquent"] == true)
        },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the subscription stored past_due",
        || async {
            customer_items(&dynamo, &env, &customer_id, "SUB#")
                .await
                .into_iter()
                .find(|subscription| subscription["status"] == "past_due")
        },
    )
    .await;
    assert_eq!(
        user_attribute(&cognito, &env, &user.username, "custom:plan_type")
            .await
            .as_deref(),
        Some("pro")
    );

    // The last retry fails: unpaid -> free, key moved to the free plan, stack deleted.
    stripe_front(
        &env,
        Method::POST,
        &format!("/_test/subscriptions/{subscription_id}/renewal_failed?final=true"),
    )
    .await;
    wait_for_plan(&cognito, &env, &user.username, "free").await;
    let free = usage_plan("free");
    // The plan attribute is written before the key moves: wait for the key as well.
    let on_free = Some((vec![free], true));
    eventually(
        Duration::from_secs(30),
        "the key on the free usage plan",
        || async { (key_usage_plans(&apigw, &user.sub).await == on_free).then_some(()) },
    )
    .await;
    eventually(Duration::from_secs(30), "the stack deleted", || async {
        stack_status(&cloudformation, &stack_name)
            .await
            .is_none_or(|status| status == "DELETE_COMPLETE")
            .then_some(())
    })
    .await;
}
