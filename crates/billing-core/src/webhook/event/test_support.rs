//! Helpers for the tests of every object's module: fixtures, an envelope around an object, and
//! the object out of a parsed event.

use serde_json::{Value, json};

use super::{
    CheckoutSessionObject, CustomerObject, EventObject, EventParseError, InvoiceObject, Metadata,
    PaymentIntentObject, PriceObject, ProductObject, StripeEvent, parse_event,
};
use crate::plans::{PlanName, SubscriptionState};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhook");

/// An object from Stripe's current-API fixtures (a copy of part of fixtures3.json).
pub(super) fn stripe_fixture(resource: &str) -> Value {
    let path = format!("{FIXTURES}/stripe-openapi/fixtures3-subset.json");
    let all: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let object = all["resources"][resource].clone();
    assert!(object.is_object(), "no fixture {resource}");
    object
}

/// An event as the local emulator (localstripe, 2017-era shapes) sends it.
pub(super) fn localstripe_event(file: &str) -> StripeEvent {
    let path = format!("{FIXTURES}/localstripe/{file}");
    parse_event(&std::fs::read(path).unwrap()).unwrap()
}

pub(super) fn envelope(event_type: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "evt_1",
        "object": "event",
        "type": event_type,
        "created": 1_700_000_000,
        "livemode": false,
        "api_version": "2026-09-30.endive",
        "pending_webhooks": 1,
        "data": { "object": object },
    }))
    .unwrap()
}

pub(super) fn parse(event_type: &str, object: Value) -> EventObject {
    parse_event(&envelope(event_type, object)).unwrap().object
}

pub(super) fn parse_error(event_type: &str, object: Value) -> (String, String) {
    match parse_event(&envelope(event_type, object)) {
        Err(EventParseError::InvalidField { field, reason }) => (field, reason),
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

pub(super) fn plan(name: &str) -> Option<PlanName> {
    PlanName::parse(name)
}

pub(super) fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

pub(super) fn product(object: EventObject) -> ProductObject {
    match object {
        EventObject::Product(product) => product,
        other => panic!("expected a product, got {other:?}"),
    }
}

pub(super) fn price(object: EventObject) -> PriceObject {
    match object {
        EventObject::Price(price) => price,
        other => panic!("expected a price, got {other:?}"),
    }
}

pub(super) fn customer(object: EventObject) -> CustomerObject {
    match object {
        EventObject::Customer(customer) => customer,
        other => panic!("expected a customer, got {other:?}"),
    }
}

pub(super) fn session(object: EventObject) -> CheckoutSessionObject {
    match object {
        EventObject::CheckoutSession(session) => session,
        other => panic!("expected a checkout session, got {other:?}"),
    }
}

pub(super) fn subscription(object: EventObject) -> SubscriptionState {
    match object {
        EventObject::Subscription(subscription) => subscription,
        other => panic!("expected a subscription, got {other:?}"),
    }
}

pub(super) fn invoice(object: EventObject) -> InvoiceObject {
    match object {
        EventObject::Invoice(invoice) => invoice,
        other => panic!("expected an invoice, got {other:?}"),
    }
}

pub(super) fn payment_intent(object: EventObject) -> PaymentIntentObject {
    match object {
        EventObject::PaymentIntent(payment_intent) => payment_intent,
        other => panic!("expected a payment intent, got {other:?}"),
    }
}
