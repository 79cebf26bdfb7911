//! The usage reporter over the production adapters, against the emulators: a user on a plan
//! sold by a metered price makes calls on two days (recorded in the moto wrapper's GetUsage);
//! the reporter sends them to the Stripe front's meter once; a second run sends nothing; runs
//! killed between their steps are finished by the next, counted once; the meter's summaries
//! equal the calls made; GET /me shows the period's usage; the renewal invoice bills it.

use std::time::Duration;

use billing_core::adapters::apigateway::{ApiGatewayKeys, Deployment};
use billing_core::adapters::dynamo::DynamoStore;
use billing_core::adapters::stripe::StripeBilling;
use billing_core::config::{EnvReader, StripeConfig};
use billing_core::ports::UsageStore;
use billing_core::usage::{
    PendingDelta, ReportLimits, UsageCursor, UsageReport, UsageReporter, UsageSettings, UsageSlot,
    UtcDay,
};
use integration_tests::*;
use reqwest::Method;
use serde_json::Value;

/// A new Billing Meter, and a metered price on it on the Pro product.
struct MeteredPrice {
    event_name: String,
    meter_id: String,
    product: String,
    lookup_key: String,
    price: Value,
}

async fn metered_pro_price(env: &LocalEnv, name: &str, unit_amount: u32) -> MeteredPrice {
    let event_name = unique(name);
    let meter = stripe_front_form(
        env,
        Method::POST,
        "/v1/billing/meters",
        &[
            ("display_name", "API calls"),
            ("event_name", &event_name),
            ("default_aggregation[formula]", "sum"),
        ],
    )
    .await;
    let meter_id = meter["id"].as_str().unwrap().to_owned();
    let pro = stripe_front(env, Method::GET, "/v1/prices?lookup_keys[]=pro_monthly").await;
    let product = pro["data"][0]["product"].as_str().unwrap().to_owned();
    let lookup_key = unique(&format!("{name}price_"));
    let price = stripe_front_form(
        env,
        Method::POST,
        "/v1/prices",
        &[
            ("product", &product),
            ("currency", "usd"),
            ("unit_amount", &unit_amount.to_string()),
            ("lookup_key", &lookup_key),
            ("recurring[interval]", "month"),
            ("recurring[usage_type]", "metered"),
            ("recurring[meter]", &meter_id),
        ],
    )
    .await;
    MeteredPrice {
        event_name,
        meter_id,
        product,
        lookup_key,
        price,
    }
}

async fn report(env: &LocalEnv, settings: &UsageSettings) -> UsageReport {
    let sdk = env.sdk().await;
    let store = DynamoStore::from_sdk(&sdk, &env.table_name);
    let keys = ApiGatewayKeys::from_sdk(&sdk, Deployment::parse("billing-local").unwrap());
    let env_reader = EnvReader::process();
    let stripe_config = StripeConfig::from_env(&env_reader, Duration::from_secs(10)).unwrap();
    let secret = secrecy::SecretString::from(env.stripe_secret_key.clone());
    let stripe = StripeBilling::new(&stripe_config, &secret).unwrap();
    UsageReporter {
        store: &store,
        counts: &keys,
        meters: &stripe,
        settings,
    }
    .run(now(), ReportLimits::for_duration(Duration::from_secs(60)))
    .await
    .unwrap()
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn calls_on_two_days_reach_the_stripe_meter_once() {
    let env = LocalEnv::from_env();
    let sdk = env.sdk().await;
    let apigw = aws_sdk_apigateway::Client::new(&sdk);
    let MeteredPrice {
        event_name,
        meter_id,
        lookup_key,
        price: metered,
        ..
    } = metered_pro_price(&env, "api_calls_", 2).await;
    let metered_price = metered["id"].as_str().unwrap().to_owned();

    // A user buys the metered price through our Checkout (no quantity) and pays.
    let cognito = CognitoClient::new(&sdk);
    let user = signed_up_user(&env, &cognito).await;
    let session_id = start_checkout(&env, &user, &lookup_key).await;
    let session = stripe_front(
        &env,
        Method::GET,
        &format!("/v1/checkout/sessions/{session_id}/line_items"),
    )
    .await;
    assert_eq!(session["data"][0]["quantity"], Value::Null, "{session}");
    let subscription_id = pay_session(&env, &session_id).await;
    wait_for_plan(&cognito, &env, &user.username, "pro").await;
    let customer = user_attribute(&cognito, &env, &user.username, "custom:stripe_customer_id")
        .await
        .unwrap();
    let key = provisioned_key(&apigw, &user.sub).await;
    let key_id = key.id().unwrap().to_owned();
    let settings = UsageSettings {
        metered_usage_plans: vec![usage_plan("pro")],
        lookback_days: 3,
        invoice_grace_secs: 3600,
    };
    // The webhook stores the metered price and the subscription's new item.
    eventually(
        Duration::from_secs(30),
        "the metered item stored",
        || async {
            let stored = get_item(
                &DynamoClient::new(&sdk),
                &env,
                &format!("CUSTOMER#{customer}"),
                &format!("SUB#{subscription_id}"),
            )
            .await?;
            string(&stored, "doc")
                .contains(&metered_price)
                .then_some(())
        },
    )
    .await;

    let today = UtcDay::of(now());
    record_calls(&key_id, today.plus(-1), 120).await;
    record_calls(&key_id, today, 30).await;

    let first = report(&env, &settings).await;
    assert!(first.complete, "{first:?}");
    assert_eq!(first.calls_reported, 150, "{first:?}");
    let second = report(&env, &settings).await;
    assert_eq!(second.deltas_sent, 0, "{second:?}");

    // Late calls for yesterday: only those are sent.
    record_calls(&key_id, today.plus(-1), 5).await;
    let late = report(&env, &settings).await;
    assert_eq!(late.calls_reported, 5, "{late:?}");

    let start = today.plus(-1).start();
    let end = today.end();
    let summaries: Value = stripe_front(
        &env,
        Method::GET,
        &format!(
            "/v1/billing/meters/{meter_id}/event_summaries?customer={customer}&start_time={start}&end_time={end}"
        ),
    )
    .await;
    let total: f64 = summaries["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|summary| summary["aggregated_value"].as_f64().unwrap())
        .sum();
    assert_eq!(total, 155.0, "{summaries}");

    // What an operator sees, and a report that has nothing left to send.
    let metered = [("METERED_PLANS", "pro")];
    let (code, shown, stderr) =
        billing_admin_run_with(&["--json", "usage", "show", &user.sub], &metered);
    assert_eq!(code, 0, "{shown}{stderr}");
    let days: Vec<Value> = shown
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(days.len(), 2, "{shown}");
    assert_eq!(days[0]["day"], today.plus(-1).to_string());
    assert_eq!(
        (days[0]["counted"].as_u64(), days[0]["reported"].as_u64()),
        (Some(125), Some(125))
    );
    record_calls(&key_id, today, 3).await;
    let (code, rehearsal, _) = billing_admin_run_with(&["usage", "report", "--dry-run"], &metered);
    assert_eq!(code, 0, "{rehearsal}");
    assert!(
        rehearsal.contains("3 calls in 1 deltas would be sent"),
        "{rehearsal}"
    );
    let (code, sent, _) = billing_admin_run_with(&["usage", "report"], &metered);
    assert_eq!(code, 0, "{sent}");
    assert!(sent.contains("3 calls in 1 deltas sent"), "{sent}");
    let (code, refused, _) = billing_admin_run(&["usage", "report"]);
    assert_eq!(code, 2, "no METERED_PLANS: {refused}");

    // A run killed after Stripe took its delta, before the cursor moved; and one killed after
    // recording a delta, before sending it: the next run finishes both, each counted once.
    let store = DynamoStore::from_sdk(&sdk, &env.table_name);
    let slot = |day: UtcDay| UsageSlot {
        key_id: key_id.clone(),
        usage_plan_id: usage_plan("pro"),
        day,
    };
    record_calls(&key_id, today, 4).await;
    record_calls(&key_id, today.plus(-1), 2).await;
    let killed_after_send = kill_mid_run(&store, &slot(today), 33, 37).await;
    send_meter_event(&env, &event_name, &customer, 4, &killed_after_send).await;
    kill_mid_run(&store, &slot(today.plus(-1)), 125, 127).await;
    let finished = report(&env, &settings).await;
    assert_eq!(finished.deltas_resent, 2, "{finished:?}");
    // 155 and 3 reported above, then 4 and 2: each once.
    assert_eq!(
        meter_total(
            &env,
            &meter_id,
            &customer,
            today.plus(-1).start(),
            today.end()
        )
        .await,
        164
    );

    // GET /me: what the meter holds since the period started (today's calls: yesterday's came
    // before the subscription), and what API Gateway counted that is not sent yet.
    record_calls(&key_id, today, 5).await;
    let me = http_api_event("GET", "/me", &[], None, Some(&user.claims));
    let (status, body, _) = call_api(&env, "portal", &me).await;
    assert_eq!(status, 200, "{body}");
    let usage = &body["usage"][0];
    assert_eq!(usage["subscription"], subscription_id, "{body}");
    assert_eq!(usage["meter"], meter_id.as_str());
    assert_eq!(
        (
            usage["reported"].as_u64(),
            usage["not_yet_reported"].as_u64()
        ),
        (Some(37), Some(5)),
        "{body}"
    );
    report(&env, &settings).await;

    // At renewal the invoice bills the period's usage on the metered line.
    stripe_front(
        &env,
        Method::POST,
        &format!("/_test/subscriptions/{subscription_id}/renew"),
    )
    .await;
    let subscription = stripe_front(
        &env,
        Method::GET,
        &format!("/v1/subscriptions/{subscription_id}"),
    )
    .await;
    let invoice_id = subscription["latest_invoice"].as_str().unwrap();
    let invoice = stripe_front(&env, Method::GET, &format!("/v1/invoices/{invoice_id}")).await;
    let metered_line = invoice["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["price"]["id"] == metered_price.as_str())
        .unwrap_or_else(|| panic!("a metered line: {invoice}"));
    assert_eq!(metered_line["quantity"], 42, "{invoice}");
    assert_eq!(metered_line["amount"], 84, "{invoice}");
}

/// The state a run leaves when killed after recording the delta `from..to` of `slot`: its
/// identifier, for a test that also lets Stripe have taken it.
async fn kill_mid_run(store: &DynamoStore, slot: &UsageSlot, from: u64, to: u64) -> String {
    let cursor = store.usage_cursor(slot).await.unwrap();
    assert_eq!(
        (cursor.reported, cursor.pending.as_ref()),
        (from, None),
        "{slot:?}"
    );
    let identifier = slot.identifier(from, to);
    let recorded = UsageCursor {
        reported: from,
        pending: Some(PendingDelta {
            from,
            to,
            identifier: identifier.clone(),
            // Long enough ago that no run is still sending it.
            since: now() - 600,
        }),
    };
    assert!(
        store
            .replace_usage_cursor(slot, &cursor, &recorded, now())
            .await
            .unwrap()
    );
    identifier
}

async fn send_meter_event(
    env: &LocalEnv,
    event_name: &str,
    customer: &str,
    value: u64,
    identifier: &str,
) {
    stripe_front_form(
        env,
        Method::POST,
        "/v1/billing/meter_events",
        &[
            ("event_name", event_name),
            ("identifier", identifier),
            ("payload[stripe_customer_id]", customer),
            ("payload[value]", &value.to_string()),
            ("timestamp", &now().to_string()),
        ],
    )
    .await;
}

async fn meter_total(env: &LocalEnv, meter_id: &str, customer: &str, start: i64, end: i64) -> u64 {
    let summaries: Value = stripe_front(
        env,
        Method::GET,
        &format!(
            "/v1/billing/meters/{meter_id}/event_summaries?customer={customer}&start_time={start}&end_time={end}"
        ),
    )
    .await;
    summaries["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|summary| summary["aggregated_value"].as_f64().unwrap())
        .sum::<f64>() as u64
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn a_flat_fee_plus_usage_is_one_checkout_and_its_calls_reach_the_metered_item() {
    let env = LocalEnv::from_env();
    let sdk = env.sdk().await;
    let MeteredPrice {
        meter_id,
        product,
        lookup_key: usage_key,
        price: metered,
        ..
    } = metered_pro_price(&env, "overage_", 1).await;
    let flat_key = unique("pro_plus_usage_");
    stripe_front_form(
        &env,
        Method::POST,
        "/v1/prices",
        &[
            ("product", &product),
            ("currency", "usd"),
            ("unit_amount", "500"),
            ("lookup_key", &flat_key),
            ("recurring[interval]", "month"),
            ("metadata[usage_lookup_key]", &usage_key),
        ],
    )
    .await;

    let cognito = CognitoClient::new(&sdk);
    let user = signed_up_user(&env, &cognito).await;
    let session_id = start_checkout(&env, &user, &flat_key).await;
    let subscription_id = pay_session(&env, &session_id).await;
    let subscription = stripe_front(
        &env,
        Method::GET,
        &format!("/v1/subscriptions/{subscription_id}"),
    )
    .await;
    let items = subscription["items"]["data"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{subscription}");
    assert_eq!(items[1]["price"]["id"], metered["id"], "{subscription}");
    wait_for_plan(&cognito, &env, &user.username, "pro").await;
    let customer = user_attribute(&cognito, &env, &user.username, "custom:stripe_customer_id")
        .await
        .unwrap();
    let apigw = aws_sdk_apigateway::Client::new(&sdk);
    let key_id = provisioned_key(&apigw, &user.sub)
        .await
        .id()
        .unwrap()
        .to_owned();
    eventually(Duration::from_secs(30), "both items stored", || async {
        let stored = get_item(
            &DynamoClient::new(&sdk),
            &env,
            &format!("CUSTOMER#{customer}"),
            &format!("SUB#{subscription_id}"),
        )
        .await?;
        string(&stored, "doc")
            .contains(metered["id"].as_str().unwrap())
            .then_some(())
    })
    .await;

    let today = UtcDay::of(now());
    record_calls(&key_id, today, 11).await;
    let settings = UsageSettings {
        metered_usage_plans: vec![usage_plan("pro")],
        lookback_days: 0,
        invoice_grace_secs: 3600,
    };
    report(&env, &settings).await;
    assert_eq!(
        meter_total(&env, &meter_id, &customer, today.start(), today.end()).await,
        11
    );
}
