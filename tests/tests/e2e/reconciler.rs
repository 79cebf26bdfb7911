//! The reconciler end to end: webhook deliveries switched off in the Stripe emulator while
//! users subscribe, renew, fall past due and cancel; the scheduled function and
//! `billing-admin reconcile` then leave each user as a control group with deliveries on; a
//! past-due grace that passes with no event revokes access.

use std::time::Duration;

use integration_tests::*;
use reqwest::Method;
use serde_json::Value;

/// Waits until Stripe lists an event of this type about the object (localstripe's own events
/// reach the emulator's list a moment after the call that caused them).
async fn listed(env: &LocalEnv, event_type: &str, object_id: &str, status: Option<&str>) {
    eventually(
        Duration::from_secs(30),
        &format!("{event_type} about {object_id} listed"),
        || async {
            let page = stripe_front(
                env,
                Method::GET,
                &format!("/v1/events?type={event_type}&limit=100"),
            )
            .await;
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|event| {
                    let object = &event["data"]["object"];
                    object["id"] == object_id
                        && status.is_none_or(|status| object["status"] == status)
                })
                .then_some(())
        },
    )
    .await;
}

/// A run that found an event still held by a live delivery stops before the reviews
/// (`complete: false`) and the next run resumes: run again until one completes.
async fn reconcile_until_complete(extra: &[&str]) -> Value {
    for _ in 0..20 {
        let report = reconcile_json(extra);
        if report["complete"] == true {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("no reconciler run completed in 20 tries");
}

fn reconcile_json(extra: &[&str]) -> Value {
    let mut args = vec!["--json", "reconcile"];
    args.extend_from_slice(extra);
    serde_json::from_str(billing_admin(&args).trim()).unwrap()
}

/// What a user's access is: plan attribute, key's usage plans and whether it is enabled, and
/// the stored subscription's status.
#[derive(Debug, PartialEq)]
struct Access {
    plan: Option<String>,
    key: Option<(Vec<String>, bool)>,
    status: Option<String>,
}

struct Clients {
    cognito: CognitoClient,
    dynamo: DynamoClient,
    apigw: aws_sdk_apigateway::Client,
}

async fn clients(env: &LocalEnv) -> Clients {
    let sdk = env.sdk().await;
    Clients {
        cognito: CognitoClient::new(&sdk),
        dynamo: DynamoClient::new(&sdk),
        apigw: aws_sdk_apigateway::Client::new(&sdk),
    }
}

async fn access(env: &LocalEnv, c: &Clients, user: &TestUser, subscription: &str) -> Access {
    let customer = user_attribute(&c.cognito, env, &user.username, "custom:stripe_customer_id")
        .await
        .unwrap();
    let stored = get_item(
        &c.dynamo,
        env,
        &format!("CUSTOMER#{customer}"),
        &format!("SUB#{subscription}"),
    )
    .await;
    let status = stored.map(|item| {
        let doc: Value = serde_json::from_str(&string(&item, "doc")).unwrap();
        doc["status"].as_str().unwrap().to_owned()
    });
    Access {
        plan: user_attribute(&c.cognito, env, &user.username, "custom:plan_type").await,
        key: key_usage_plans(&c.apigw, &user.sub).await,
        status,
    }
}

/// What the three users do: one subscribes; one subscribes, renews and fails a renewal; one
/// subscribes and cancels. Returns each one's subscription id once Stripe lists the last event.
async fn subscribe_renew_fail_cancel(env: &LocalEnv, users: &[TestUser; 3]) -> [String; 3] {
    let [subscriber, dunned, canceller] = users;
    let subscribed = buy_pro(env, subscriber).await;
    let past_due = buy_pro(env, dunned).await;
    stripe_front(
        env,
        Method::POST,
        &format!("/_test/subscriptions/{past_due}/renew"),
    )
    .await;
    stripe_front(
        env,
        Method::POST,
        &format!("/_test/subscriptions/{past_due}/renewal_failed"),
    )
    .await;
    let canceled = buy_pro(env, canceller).await;
    stripe_front(
        env,
        Method::DELETE,
        &format!("/v1/subscriptions/{canceled}"),
    )
    .await;
    listed(env, "customer.subscription.created", &subscribed, None).await;
    listed(
        env,
        "customer.subscription.updated",
        &past_due,
        Some("past_due"),
    )
    .await;
    listed(env, "customer.subscription.deleted", &canceled, None).await;
    [subscribed, past_due, canceled]
}

async fn three_users(env: &LocalEnv, c: &Clients) -> [TestUser; 3] {
    [
        signed_up_user(env, &c.cognito).await,
        signed_up_user(env, &c.cognito).await,
        signed_up_user(env, &c.cognito).await,
    ]
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn lost_deliveries_are_repaired_by_the_reconciler_like_deliveries_would_have() {
    let env = LocalEnv::from_env();
    let c = clients(&env).await;

    // The control group: the same lifecycle with deliveries on.
    let control = three_users(&env, &c).await;
    let control_subscriptions = subscribe_renew_fail_cancel(&env, &control).await;
    wait_for_plan(&c.cognito, &env, &control[2].username, "free").await;
    // Settled means every event about them delivered, not a status seen once: a paid checkout
    // that comes first stores Stripe's current state (already past_due) as of its own event,
    // and the renewal's older events that follow go over it until the failure's arrives.
    delivered(&env, &control_subscriptions).await;
    eventually(
        Duration::from_secs(60),
        "the control group settled",
        || async {
            let dunned = access(&env, &c, &control[1], &control_subscriptions[1]).await;
            let cancelled = access(&env, &c, &control[2], &control_subscriptions[2]).await;
            (dunned.status.as_deref() == Some("past_due")
                && cancelled.status.as_deref() == Some("canceled"))
            .then_some(())
        },
    )
    .await;
    let mut expected = Vec::new();
    for (user, subscription) in control.iter().zip(&control_subscriptions) {
        expected.push(access(&env, &c, user, subscription).await);
    }
    assert_eq!(expected[0].plan.as_deref(), Some("pro"));
    assert_eq!(expected[1].plan.as_deref(), Some("pro"), "in its grace");
    assert_eq!(expected[2].plan.as_deref(), Some("free"));

    // The same with every delivery lost.
    let users = three_users(&env, &c).await;
    let started = now();
    let back_on = lost_deliveries(&env).await;
    let subscriptions = subscribe_renew_fail_cancel(&env, &users).await;
    set_delivery(&env, true).await;
    drop(back_on);
    for (user, subscription) in users.iter().zip(&subscriptions) {
        let lost = access(&env, &c, user, subscription).await;
        assert_eq!(lost.status, None, "the webhook got nothing: {lost:?}");
        assert_ne!(lost.plan.as_deref(), Some("pro"));
    }

    // The scheduled function's handler repairs it.
    let schedule: Value = serde_json::from_str(include_str!(
        "../../../events/webhook/eventbridge/scheduled-reconcile.json"
    ))
    .unwrap();
    let answer = env.invoke("webhook-eventbridge", &schedule).await;
    assert_eq!(answer["outcome"], "reconciled", "{answer}");
    let report = &answer["report"];
    assert_eq!(report["complete"], true, "{answer}");
    assert!(
        report["outcomes"]["applied"].as_u64().unwrap() >= 9,
        "{answer}"
    );
    for (i, (user, subscription)) in users.iter().zip(&subscriptions).enumerate() {
        let repaired = access(&env, &c, user, subscription).await;
        assert_eq!(repaired, expected[i], "user {i}");
    }

    // Lost again: the dunned user's retry is paid; billing-admin repairs it.
    let back_on = lost_deliveries(&env).await;
    stripe_front(
        &env,
        Method::POST,
        &format!("/_test/subscriptions/{}/renew", subscriptions[1]),
    )
    .await;
    listed(
        &env,
        "customer.subscription.updated",
        &subscriptions[1],
        Some("active"),
    )
    .await;
    set_delivery(&env, true).await;
    drop(back_on);
    assert_eq!(
        access(&env, &c, &users[1], &subscriptions[1])
            .await
            .status
            .as_deref(),
        Some("past_due")
    );
    let since = started.to_string();
    let report = reconcile_json(&["--since", &since]);
    assert_eq!(report["complete"], true, "{report}");
    assert!(
        report["outcomes"]["applied"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert!(
        report["outcomes"]["duplicate"].as_u64().unwrap() >= 9,
        "{report}"
    );
    let paid = access(&env, &c, &users[1], &subscriptions[1]).await;
    assert_eq!(paid.status.as_deref(), Some("active"));
    assert_eq!(paid.plan.as_deref(), Some("pro"));

    // Nothing left: a second run repairs nothing.
    let again = reconcile_json(&["--since", &since]);
    assert_eq!(again["outcomes"].get("applied"), None, "{again}");
    let human = billing_admin(&["reconcile"]);
    assert!(human.contains("events repaired"), "{human}");
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn a_grace_that_passes_with_no_event_revokes_access_on_time() {
    let env = LocalEnv::from_env();
    let c = clients(&env).await;
    let user = signed_up_user(&env, &c.cognito).await;
    let subscription = buy_pro(&env, &user).await;
    wait_for_plan(&c.cognito, &env, &user.username, "pro").await;
    stripe_front(
        &env,
        Method::POST,
        &format!("/_test/subscriptions/{subscription}/renewal_failed"),
    )
    .await;
    eventually(Duration::from_secs(30), "past due stored", || async {
        (access(&env, &c, &user, &subscription)
            .await
            .status
            .as_deref()
            == Some("past_due"))
        .then_some(())
    })
    .await;
    let in_grace = access(&env, &c, &user, &subscription).await;
    assert_eq!(in_grace.plan.as_deref(), Some("pro"));

    // A day later nothing changes; eight days later (grace:7) access is revoked, no event.
    let day = 24 * 3600;
    let tomorrow = (now() + day).to_string();
    let report = reconcile_until_complete(&["--reviews-as-of", &tomorrow]).await;
    assert_eq!(report["reviews"], 0, "{report}");
    assert_eq!(
        access(&env, &c, &user, &subscription).await.plan.as_deref(),
        Some("pro")
    );
    let after_grace = (now() + 8 * day).to_string();
    let report = reconcile_until_complete(&["--reviews-as-of", &after_grace]).await;
    assert!(report["reviews"].as_u64().unwrap() >= 1, "{report}");
    let revoked = access(&env, &c, &user, &subscription).await;
    assert_eq!(revoked.plan.as_deref(), Some("free"));
    assert_eq!(revoked.status.as_deref(), Some("past_due"));
    assert_eq!(revoked.key, Some((vec![usage_plan("free")], true)));

    // The payment that finally comes restores access as usual.
    stripe_front(
        &env,
        Method::POST,
        &format!("/_test/subscriptions/{subscription}/renew"),
    )
    .await;
    wait_for_plan(&c.cognito, &env, &user.username, "pro").await;
}
