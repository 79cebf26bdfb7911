//! Subscription events: dunning, grace periods counted from the right failure, and a delivery
//! that fails half way.

use std::sync::atomic::Ordering;

use crate::common::*;
use billing_core::ports::CustomerLinks;
use billing_core::webhook::sync::Outcome;
use serde_json::{Value, json};

#[tokio::test]
async fn when_past_due_should_follow_the_configured_dunning_policy() {
    for (policy, expected) in [("grace:7", "pro"), ("suspend", "free")] {
        let fakes = fakes_with(policy, "free=up_free,pro=up_pro", false);
        fakes.store.link(&link()).await.unwrap();
        apply(
            &fakes,
            &sub_event(
                "evt_1",
                "customer.subscription.created",
                now() - 60,
                "active",
            ),
        )
        .await
        .unwrap();
        apply(
            &fakes,
            &sub_event(
                "evt_2",
                "customer.subscription.updated",
                now() - 30,
                "past_due",
            ),
        )
        .await
        .unwrap();
        assert_eq!(plan(&fakes).as_deref(), Some(expected), "{policy}");
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
        let fakes = linked_fakes().await;
        for event in &events {
            apply(&fakes, event).await.unwrap();
        }
        let stored = fakes.store.stored_subscriptions()[0].clone();
        assert_eq!(
            stored.past_due_since,
            Some(t - 3600),
            "{} events",
            events.len()
        );
        assert_eq!(
            plan(&fakes).as_deref(),
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
    let fakes = linked_fakes().await;
    apply(
        &fakes,
        &in_period("evt_1", t - 3 * 24 * 3600, "past_due", period_end),
    )
    .await
    .unwrap();
    apply(
        &fakes,
        &in_period("evt_2", t - 3600, "past_due", period_end),
    )
    .await
    .unwrap();
    assert_eq!(
        fakes.store.stored_subscriptions()[0].past_due_since,
        Some(t - 3 * 24 * 3600)
    );
}

#[tokio::test(start_paused = true)]
async fn when_a_delivery_fails_half_way_should_release_the_event_and_the_retry_should_converge() {
    let fakes = linked_fakes().await;
    fakes.keys.failing.store(true, Ordering::SeqCst);
    let created = sub_event("evt_1", "customer.subscription.created", 10, "active");
    assert!(apply(&fakes, &created).await.is_err());

    fakes.keys.failing.store(false, Ordering::SeqCst);
    assert_eq!(apply(&fakes, &created).await.unwrap(), Outcome::Applied);
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    assert_eq!(key_plans(&fakes), (vec!["up_pro".to_owned()], true));
}

/// An add-on item first and the plan's price second: the plan is the highest among all items,
/// whether it comes from the event or from Stripe (two events in the same second).
#[tokio::test]
async fn when_an_add_on_comes_before_the_plan_should_take_the_highest_plan_of_all_items() {
    let fakes = linked_fakes().await;
    fakes.stripe.add_product("prod_addon", "");
    let mut two_items = sub_event("evt_1", "customer.subscription.created", 100, "active");
    let pro_item = two_items["data"]["object"]["items"]["data"][0].clone();
    let mut add_on = pro_item.clone();
    add_on["id"] = json!("si_addon");
    add_on["price"]["id"] = json!("price_addon");
    add_on["price"]["product"] = json!("prod_addon");
    two_items["data"]["object"]["items"]["data"] = json!([add_on, pro_item]);
    assert_eq!(apply(&fakes, &two_items).await.unwrap(), Outcome::Applied);
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    assert_eq!(key_plans(&fakes).0, ["up_pro"]);

    // The same second: Stripe's copy, read back with both items, settles it.
    let mut current = current_subscription("active");
    current.items.insert(
        0,
        billing_core::plans::SubscriptionItemState {
            price_id: Some("price_addon".into()),
            product_id: Some("prod_addon".into()),
            plan: None,
            meter: None,
        },
    );
    fakes.stripe.set_subscription(current);
    let mut tie = two_items.clone();
    tie["id"] = json!("evt_2");
    tie["type"] = json!("customer.subscription.updated");
    apply(&fakes, &tie).await.unwrap();
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    let stored = fakes.store.stored_subscriptions();
    assert_eq!(stored[0].items.len(), 2);
    assert_eq!(
        stored[0].items[1].plan.as_ref().map(|p| p.as_str()),
        Some("pro")
    );
}
