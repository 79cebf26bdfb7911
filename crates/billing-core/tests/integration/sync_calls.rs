//! What the events production sends most cost: a renewal of a linked user whose plan does not
//! change makes at most 4 DynamoDB calls and no Stripe, Cognito or API Gateway call (an invoice's
//! event one); a plan change makes only the writes that change something. Counted on the fakes'
//! ports.

use std::sync::atomic::Ordering;

use crate::common::*;
use billing_core::domain::CustomerId;
use billing_core::ports::{BillingRecord, DeletedCustomers, EventLog, RecordKind};
use billing_core::telemetry::capture;
use billing_core::webhook::sync::Outcome;
use serde_json::{Value, json};

/// The calls one event made to each service.
#[derive(Debug, Default, PartialEq, Eq)]
struct Calls {
    dynamo: Vec<&'static str>,
    stripe: usize,
    cognito: usize,
    api_gateway: usize,
}

fn reset(fakes: &Fakes) {
    fakes.store.reset_calls();
    fakes.stripe.calls.store(0, Ordering::SeqCst);
    fakes.directory.calls.store(0, Ordering::SeqCst);
    fakes.keys.calls.store(0, Ordering::SeqCst);
}

/// Applies the event and returns the calls it made.
async fn calls_of(fakes: &Fakes, event: &Value) -> Calls {
    reset(fakes);
    apply(fakes, event).await.unwrap();
    let calls = Calls {
        dynamo: fakes.store.calls(),
        stripe: fakes.stripe.calls.load(Ordering::SeqCst),
        cognito: fakes.directory.calls.load(Ordering::SeqCst),
        api_gateway: fakes.keys.calls.load(Ordering::SeqCst),
    };
    eprintln!(
        "{:<40} dynamodb {} {:?}, stripe {}, cognito {}, api gateway {}",
        event["type"].as_str().unwrap_or_default(),
        calls.dynamo.len(),
        calls.dynamo,
        calls.stripe,
        calls.cognito,
        calls.api_gateway
    );
    calls
}

fn product_event(id: &str, product: &str, plan: &str) -> Value {
    event(
        id,
        "product.created",
        1,
        json!({"id": product, "object": "product", "name": plan, "active": true, "metadata": {"plan": plan}}),
    )
}

/// A subscription as current API versions send it: the period on its item, the price's
/// product as an id (its plan is the product's).
fn current_shape(product: &str, period_end: i64) -> Value {
    json!({
        "id": "sub_1", "object": "subscription", "customer": CUSTOMER, "status": "active", "created": 100,
        "cancel_at_period_end": false, "metadata": {},
        "items": {"object": "list", "data": [{
            "id": "si_1", "object": "subscription_item",
            "current_period_start": period_end - 2_592_000, "current_period_end": period_end,
            "price": {"id": format!("price_{product}"), "object": "price", "product": product, "metadata": {}}
        }]}
    })
}

/// The same subscription as the emulator's 2017-08-15 API sends it: the period on the
/// subscription, the price as an item's `plan`.
fn shape_2017(product: &str, period_end: i64) -> Value {
    json!({
        "id": "sub_1", "object": "subscription", "customer": CUSTOMER, "status": "active", "created": 100,
        "cancel_at_period_end": false, "metadata": {},
        "current_period_start": period_end - 2_592_000, "current_period_end": period_end,
        "items": {"object": "list", "data": [{
            "id": "si_1", "object": "subscription_item",
            "plan": {"id": format!("price_{product}"), "object": "plan", "product": product, "metadata": {}}
        }]}
    })
}

fn invoice(event_id: &str, event_type: &str, created: i64) -> Value {
    event(
        event_id,
        event_type,
        created,
        json!({
            "id": "in_2", "object": "invoice", "customer": CUSTOMER, "status": "paid", "amount_due": 1000,
            "amount_paid": 1000, "currency": "usd", "billing_reason": "subscription_cycle",
            "parent": {"subscription_details": {"subscription": "sub_1"}}
        }),
    )
}

/// Alice linked, the catalogue stored from its events, and her subscription to `product`
/// applied: her plan and key are in place.
async fn subscribed_to(product: &str, shape: fn(&str, i64) -> Value) -> Fakes {
    let fakes = linked_fakes().await;
    apply(&fakes, &product_event("evt_prod_pro", "prod_pro", "pro"))
        .await
        .unwrap();
    apply(&fakes, &product_event("evt_prod_free", "prod_free", "free"))
        .await
        .unwrap();
    let created = event(
        "evt_created",
        "customer.subscription.created",
        100,
        shape(product, 1_000_000),
    );
    apply(&fakes, &created).await.unwrap();
    fakes
}

fn assert_within_budget(calls: &Calls) {
    assert!(
        calls.dynamo.len() <= 4,
        "at most 4 DynamoDB calls: {:?}",
        calls.dynamo
    );
    assert_eq!(
        (calls.stripe, calls.cognito, calls.api_gateway),
        (0, 0, 0),
        "no Stripe, Cognito or API Gateway call"
    );
}

async fn renewal_should_stay_within_budget(shape: fn(&str, i64) -> Value) {
    let fakes = subscribed_to("prod_pro", shape).await;
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    let renewals = [
        event(
            "evt_renewed",
            "customer.subscription.updated",
            200,
            shape("prod_pro", 3_600_000),
        ),
        invoice("evt_paid", "invoice.paid", 201),
        invoice("evt_succeeded", "invoice.payment_succeeded", 201),
        invoice("evt_finalized", "invoice.finalized", 199),
    ];
    let mut counted = Vec::new();
    for renewal in &renewals {
        counted.push(calls_of(&fakes, renewal).await);
    }
    counted.iter().for_each(assert_within_budget);
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    assert_eq!(key_plans(&fakes), (vec!["up_pro".to_owned()], true));
    let stored = fakes.store.stored_subscriptions();
    assert_eq!(stored[0].current_period_end, Some(3_600_000));
}

#[tokio::test]
async fn when_a_linked_pro_user_renews_should_make_at_most_4_dynamodb_calls_and_no_other() {
    renewal_should_stay_within_budget(current_shape).await;
}

#[tokio::test]
async fn when_a_2017_shaped_renewal_arrives_should_make_at_most_4_dynamodb_calls_and_no_other() {
    renewal_should_stay_within_budget(shape_2017).await;
}

#[tokio::test]
async fn when_a_free_user_moves_to_pro_should_write_only_what_changes_and_count_it() {
    let fakes = subscribed_to("prod_free", current_shape).await;
    assert_eq!(plan(&fakes).as_deref(), Some("free"));
    assert_eq!(key_plans(&fakes), (vec!["up_free".to_owned()], true));
    capture::start();
    let upgraded = event(
        "evt_upgraded",
        "customer.subscription.updated",
        200,
        current_shape("prod_pro", 1_000_000),
    );
    let calls = calls_of(&fakes, &upgraded).await;
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    assert_eq!(key_plans(&fakes), (vec!["up_pro".to_owned()], true));
    // The plan attribute, then the key found and moved: nothing else outside DynamoDB.
    assert_eq!((calls.stripe, calls.cognito, calls.api_gateway), (0, 1, 2));
    assert!(
        calls.dynamo.len() <= 5,
        "claim, read, forget, commit: {:?}",
        calls.dynamo
    );
    let actions: Vec<String> = capture::take()
        .iter()
        .filter(|line| line.get("ProvisioningActions").is_some())
        .map(|line| line["Action"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(actions, ["key_moved", "plan_changed"]);

    // The same plan again (a renewal of the new plan): nothing outside DynamoDB, no count.
    capture::start();
    let renewed = event(
        "evt_renewed",
        "customer.subscription.updated",
        300,
        current_shape("prod_pro", 3_600_000),
    );
    assert_within_budget(&calls_of(&fakes, &renewed).await);
    assert!(
        capture::take()
            .iter()
            .all(|line| line.get("ProvisioningActions").is_none())
    );
}

fn product_with_stack(id: &str) -> Value {
    event(
        id,
        "product.created",
        1,
        json!({"id": "prod_pro", "object": "product", "name": "Pro", "active": true,
               "metadata": {"plan": "pro", "stack_template_url": "https://s3.amazonaws.com/billing-templates/pro.yaml"}}),
    )
}

fn with_status(status: &str, period_end: i64) -> Value {
    let mut subscription = current_shape("prod_pro", period_end);
    subscription["status"] = json!(status);
    subscription
}

/// A stack known active from what was applied needs no read at a renewal; an unpaid
/// subscription's stack goes, and comes back when it is paid again.
#[tokio::test]
async fn when_a_pro_user_with_a_stack_renews_should_read_no_stack_and_a_paid_again_one_gets_it_anew()
 {
    let fakes = linked_fakes().await;
    apply(&fakes, &product_with_stack("evt_prod"))
        .await
        .unwrap();
    let steps = [
        (
            "evt_1",
            "customer.subscription.created",
            100,
            "active",
            1_000_000,
        ),
        (
            "evt_2",
            "customer.subscription.updated",
            200,
            "active",
            3_600_000,
        ),
    ];
    let mut counted = Vec::new();
    for (id, event_type, created, status, period_end) in steps {
        counted.push(
            calls_of(
                &fakes,
                &event(id, event_type, created, with_status(status, period_end)),
            )
            .await,
        );
    }
    assert_eq!(fakes.stacks.creates.load(Ordering::SeqCst), 1);
    assert_within_budget(&counted[1]);

    apply(
        &fakes,
        &event(
            "evt_3",
            "customer.subscription.updated",
            300,
            with_status("unpaid", 3_600_000),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        fakes.stacks.status_of("billing-sub-1").as_deref(),
        Some("DELETE_COMPLETE")
    );
    assert_eq!(plan(&fakes).as_deref(), Some("free"));
    // CloudFormation is done: the next look records it deleted.
    fakes.sync().sweep(now()).await.unwrap();

    apply(
        &fakes,
        &event(
            "evt_4",
            "customer.subscription.updated",
            400,
            with_status("active", 3_600_000),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        fakes.stacks.creates.load(Ordering::SeqCst),
        2,
        "created anew"
    );
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    let renewed = calls_of(
        &fakes,
        &event(
            "evt_5",
            "customer.subscription.updated",
            500,
            with_status("active", 6_200_000),
        ),
    )
    .await;
    assert_within_budget(&renewed);
    assert_eq!(fakes.stacks.creates.load(Ordering::SeqCst), 2);
}

/// A paid checkout applied before its subscription's events (Stripe does not order them)
/// makes the stack and records it known: the subscription's own event is stale by then, and the
/// first renewal still reads no stack.
#[tokio::test]
async fn when_the_checkout_made_the_stack_before_the_subscription_events_a_renewal_should_read_no_stack()
 {
    let fakes = fakes();
    fakes
        .directory
        .add_user("alice", SUB, Some("alice@example.com"));
    fakes.stripe.set_stack_template(
        "prod_pro",
        "https://s3.amazonaws.com/billing-templates/pro.yaml",
    );
    fakes
        .stripe
        .set_subscription(current_subscription("active"));
    apply(&fakes, &product_with_stack("evt_prod"))
        .await
        .unwrap();
    let paid = checkout_completed("evt_checkout", 110, "paid", Some(SUB), "alice@example.com");
    assert_eq!(apply(&fakes, &paid).await.unwrap(), Outcome::Applied);
    let created = event(
        "evt_created",
        "customer.subscription.created",
        100,
        with_status("active", 1_000_000),
    );
    assert_eq!(apply(&fakes, &created).await.unwrap(), Outcome::Stale);
    assert_eq!(fakes.stacks.creates.load(Ordering::SeqCst), 1);
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));

    let renewal = event(
        "evt_renewed",
        "customer.subscription.updated",
        200,
        with_status("active", 3_600_000),
    );
    let calls = calls_of(&fakes, &renewal).await;
    assert_within_budget(&calls);
    assert_eq!(fakes.stacks.creates.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_event_whose_whole_effect_is_its_records_should_be_one_write_with_its_completion() {
    let fakes = subscribed_to("prod_pro", current_shape).await;
    let payment = event(
        "evt_payment",
        "payment_intent.succeeded",
        205,
        json!({"id": "pi_1", "object": "payment_intent", "customer": CUSTOMER, "amount": 1000,
               "amount_received": 1000, "currency": "usd", "status": "succeeded"}),
    );
    let events = [
        invoice("evt_finalized", "invoice.finalized", 200),
        invoice("evt_paid", "invoice.paid", 201),
        payment,
        product_event("evt_prod_new", "prod_new", "pro"),
    ];
    for event in &events {
        let calls = calls_of(&fakes, event).await;
        assert_eq!(calls.dynamo, ["TransactWriteItems"], "{}", event["type"]);
        assert_eq!((calls.stripe, calls.cognito, calls.api_gateway), (0, 0, 0));
    }
    let invoice = fakes.store.record(RecordKind::Invoice, "in_2");
    assert!(
        matches!(&invoice, Some(BillingRecord::Invoice { invoice, .. }) if invoice.last_event == "invoice.paid"),
        "{invoice:?}"
    );
    assert!(matches!(
        fakes.store.record(RecordKind::Delinquency, CUSTOMER),
        Some(BillingRecord::Delinquency { delinquency, .. }) if !delinquency.delinquent
    ));
    assert!(fakes.store.record(RecordKind::Payment, "pi_1").is_some());
    assert!(
        fakes
            .store
            .record(RecordKind::Product, "prod_new")
            .is_some()
    );
}

#[tokio::test]
async fn when_the_write_at_once_is_declined_the_step_by_step_path_should_say_why() {
    let fakes = subscribed_to("prod_pro", current_shape).await;
    let paid = invoice("evt_paid", "invoice.paid", 201);
    assert_eq!(apply(&fakes, &paid).await.unwrap(), Outcome::Applied);

    // The same event again: a duplicate, nothing written twice.
    let calls = calls_of(&fakes, &paid).await;
    assert_eq!(calls.dynamo, ["TransactWriteItems", "TransactWriteItems"]);
    assert_eq!(apply(&fakes, &paid).await.unwrap(), Outcome::Duplicate);

    // Its twin of the same second: the invoice as the first left it, the event done, in a
    // second write without the records that are not newer.
    let twin = invoice("evt_twin", "invoice.payment_succeeded", 201);
    let calls = calls_of(&fakes, &twin).await;
    assert_eq!(calls.dynamo, ["TransactWriteItems", "TransactWriteItems"]);
    assert!(matches!(
        fakes.store.record(RecordKind::Invoice, "in_2"),
        Some(BillingRecord::Invoice { invoice, .. }) if invoice.last_event == "invoice.paid"
    ));
    assert_eq!(apply(&fakes, &twin).await.unwrap(), Outcome::Duplicate);

    // An older event about the same invoice: stale, the newer state kept, in two writes.
    let older = invoice("evt_finalized", "invoice.finalized", 150);
    let calls = calls_of(&fakes, &older).await;
    assert_eq!(calls.dynamo, ["TransactWriteItems", "TransactWriteItems"]);
    assert_eq!(apply(&fakes, &older).await.unwrap(), Outcome::Duplicate);
    let older = invoice("evt_finalized_again", "invoice.finalized", 150);
    assert_eq!(apply(&fakes, &older).await.unwrap(), Outcome::Stale);
    assert!(matches!(
        fakes.store.record(RecordKind::Invoice, "in_2"),
        Some(BillingRecord::Invoice { invoice, .. }) if invoice.last_event == "invoice.paid"
    ));

    // Another delivery holds the event: in progress, for Stripe to retry.
    let claimed = invoice("evt_claimed", "invoice.paid", 300);
    fakes.store.claim("evt_claimed", now()).await.unwrap();
    assert_eq!(apply(&fakes, &claimed).await.unwrap(), Outcome::InProgress);

    // The customer's account deleted: acknowledged, nothing kept.
    fakes
        .store
        .tombstone_customer(&CustomerId::parse(CUSTOMER).unwrap(), now())
        .await
        .unwrap();
    let after_deletion = invoice("evt_after", "invoice.paid", 400);
    assert_eq!(
        apply(&fakes, &after_deletion).await.unwrap(),
        Outcome::Ignored
    );
    assert!(matches!(
        fakes.store.record(RecordKind::Invoice, "in_2"),
        Some(BillingRecord::Invoice { invoice, .. }) if invoice.last_event == "invoice.paid"
    ));
}
