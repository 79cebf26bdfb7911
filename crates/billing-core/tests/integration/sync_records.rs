//! What a billing page shows is recorded small: invoices and delinquency, prices (found by
//! lookup key), checkout sessions with their line items; and the sample events all parse.

use crate::common::*;
use billing_core::domain::CustomerId;
use billing_core::ports::{BillingRecord, Checkout, CheckoutMode, NewCheckoutSession, RecordKind};
use billing_core::webhook::sync::Outcome;
use billing_core::webhook::{EventObject, parse_event};
use serde_json::{Value, json};

#[tokio::test]
async fn invoices_payments_and_prices_should_be_recorded_small() {
    let fakes = linked_fakes().await;
    let failed = event(
        "evt_i",
        "invoice.payment_failed",
        10,
        json!({
            "id": "in_1", "object": "invoice", "customer": CUSTOMER, "status": "open", "amount_due": 1000,
            "amount_paid": 0, "currency": "usd", "hosted_invoice_url": "https://invoice.stripe.com/i/x",
            "parent": {"subscription_details": {"subscription": "sub_1"}}, "lines": {"data": [{"description": "x".repeat(5000)}]}
        }),
    );
    apply(&fakes, &failed).await.unwrap();
    let Some(BillingRecord::Invoice {
        customer_id,
        invoice,
        ..
    }) = fakes.store.record(RecordKind::Invoice, "in_1")
    else {
        panic!("the invoice is recorded");
    };
    assert_eq!(customer_id, CUSTOMER);
    assert_eq!(invoice.subscription.as_deref(), Some("sub_1"));
    assert!(
        serde_json::to_string(&invoice).unwrap().len() < 2_000,
        "not the whole invoice"
    );
    let Some(BillingRecord::Delinquency { delinquency, .. }) =
        fakes.store.record(RecordKind::Delinquency, CUSTOMER)
    else {
        panic!("the delinquency is recorded");
    };
    assert!(delinquency.delinquent);

    let price = event(
        "evt_p",
        "price.created",
        10,
        json!({
            "id": "price_t", "object": "price", "product": "prod_pro", "active": true, "currency": "usd",
            "lookup_key": "pro_tiered", "billing_scheme": "tiered", "tiers_mode": "graduated",
            "tiers": [{"up_to": 10, "unit_amount": 100}, {"up_to": "inf", "unit_amount": 50}],
            "recurring": {"interval": "month", "interval_count": 1}, "metadata": {"k": "v"}
        }),
    );
    apply(&fakes, &price).await.unwrap();
    let Some(BillingRecord::Price { price: stored, .. }) =
        fakes.store.record(RecordKind::Price, "price_t")
    else {
        panic!("the price is recorded");
    };
    // Found by its lookup key (the index entry itself: adapters::dynamo::records).
    assert_eq!(stored.active_lookup_key(), Some("pro_tiered"));
    assert_eq!(stored.tiers[1].up_to, None);
    assert_eq!(stored.metadata["k"], "v");
}

#[tokio::test]
async fn a_completed_checkout_should_record_its_line_items_read_from_stripe() {
    let fakes = linked_fakes().await;
    let created = fakes
        .stripe
        .create_session(&NewCheckoutSession {
            customer_id: CustomerId::parse(CUSTOMER).unwrap(),
            price_id: "price_pro".into(),
            quantity: Some(3),
            metered_add_ons: Vec::new(),
            mode: CheckoutMode::Subscription,
            client_reference_id: SUB.into(),
            metadata: Default::default(),
            trial_period_days: None,
            success_url: "https://x/s".into(),
            cancel_url: "https://x/c".into(),
            allow_promotion_codes: false,
            promotion_code: None,
            locale: None,
            billing_address_required: false,
            automatic_tax: false,
            idempotency_key: "k".into(),
        })
        .await
        .unwrap();
    let mut completed = checkout_completed("evt_1", 11, "unpaid", Some(SUB), "alice@example.com");
    completed["data"]["object"]["id"] = Value::String(created.id.clone());
    apply(&fakes, &completed).await.unwrap();
    let Some(BillingRecord::CheckoutSession {
        customer_id,
        session,
        ..
    }) = fakes.store.record(RecordKind::CheckoutSession, &created.id)
    else {
        panic!("the session is recorded");
    };
    assert_eq!(customer_id, CUSTOMER);
    assert_eq!(session.line_items[0].price.as_deref(), Some("price_pro"));
    assert_eq!(session.line_items[0].quantity, Some(3));
}

#[test]
fn every_sample_stripe_event_should_parse() {
    for entry in std::fs::read_dir("../../events/webhook/stripe").unwrap() {
        let path = entry.unwrap().path();
        let raw = std::fs::read(&path).unwrap();
        let event = parse_event(&raw).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert!(
            !matches!(event.object, EventObject::Other { .. }),
            "{path:?}"
        );
    }
}

/// Since API 2025-03-31 payment intents carry no `invoice`: `invoice_payment.paid` says which
/// invoice a payment paid, and that link is kept beside the payment, whatever came first.
#[tokio::test]
async fn an_invoice_payment_should_keep_which_invoice_the_payment_paid() {
    let fakes = linked_fakes().await;
    fakes.stripe.add_payment_intent("pi_1", CUSTOMER);
    let succeeded = event(
        "evt_pi",
        "payment_intent.succeeded",
        20,
        json!({"id": "pi_1", "object": "payment_intent", "customer": CUSTOMER, "amount": 1500,
               "amount_received": 1500, "currency": "usd", "status": "succeeded"}),
    );
    let paid = event(
        "evt_inpay",
        "invoice_payment.paid",
        20,
        json!({"id": "inpay_1", "object": "invoice_payment", "invoice": "in_1", "amount_paid": 1500,
               "currency": "usd", "status": "paid", "is_default": true,
               "payment": {"type": "payment_intent", "payment_intent": "pi_1"}}),
    );
    // The link first, then the payment in the same second: neither overwrites the other.
    assert_eq!(apply(&fakes, &paid).await.unwrap(), Outcome::Applied);
    assert_eq!(apply(&fakes, &succeeded).await.unwrap(), Outcome::Applied);
    let Some(BillingRecord::InvoicePayment {
        customer_id,
        invoice_payment,
        ..
    }) = fakes.store.record(RecordKind::InvoicePayment, "pi_1")
    else {
        panic!("the invoice payment is recorded");
    };
    assert_eq!(customer_id, CUSTOMER);
    assert_eq!(invoice_payment.invoice, "in_1");
    assert_eq!(invoice_payment.amount_paid, Some(1500));
    assert!(fakes.store.record(RecordKind::Payment, "pi_1").is_some());

    // A payment of a guest (no customer) has nothing to be kept under.
    let guest = event(
        "evt_inpay_guest",
        "invoice_payment.paid",
        21,
        json!({"id": "inpay_2", "object": "invoice_payment", "invoice": "in_2", "status": "paid",
               "payment": {"type": "payment_intent", "payment_intent": "pi_guest"}}),
    );
    assert_eq!(apply(&fakes, &guest).await.unwrap(), Outcome::Ignored);
}

/// A guest's paid Checkout (payment mode, no customer) is parked with its session, not dropped.
#[tokio::test]
async fn a_paid_guest_checkout_should_be_parked_not_dropped() {
    let fakes = linked_fakes().await;
    let mut guest = checkout_completed("evt_guest", 30, "paid", None, "payer@example.com");
    guest["data"]["object"]["customer"] = Value::Null;
    guest["data"]["object"]["mode"] = json!("payment");
    guest["data"]["object"]["subscription"] = Value::Null;
    guest["data"]["object"]["payment_intent"] = json!("pi_guest");
    assert_eq!(apply(&fakes, &guest).await.unwrap(), Outcome::Unmapped);
    assert_eq!(
        fakes.store.unmapped(),
        [(
            "guest-checkout:cs_test_1".to_owned(),
            "evt_guest".to_owned()
        )]
    );
    // Unpaid, or without any e-mail: nothing to match later.
    let mut unpaid = guest.clone();
    unpaid["id"] = json!("evt_guest_unpaid");
    unpaid["data"]["object"]["payment_status"] = json!("unpaid");
    assert_eq!(apply(&fakes, &unpaid).await.unwrap(), Outcome::Ignored);
}
