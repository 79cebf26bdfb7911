//! A Stripe event, reduced to the fields we use, whatever the API version that shaped it.
//!
//! The object is chosen by `data.object.object`, not by the event type, so a new event type about
//! a known object still parses. A missing optional field never fails; a field we use with the
//! wrong type fails with its path, e.g. `data.object.items.data[0].current_period_end`. Unknown
//! enum values (statuses, modes, ...) are kept as strings.
//!
//! Old (2017-era, as the local emulator sends them) and current shapes differ where we read:
//! - subscription: `plan` and `current_period_end` on the subscription (old) or the items'
//!   `price` and `current_period_end` (current);
//! - invoice: `subscription` at the top (old) or under `parent.subscription_details` or the
//!   lines' `parent.subscription_item_details` (current), `date` (old) or `created`.

mod catalogue;
mod checkout;
mod customer;
mod expandable;
mod invoice;
mod payment;
mod subscription;
#[cfg(test)]
mod test_support;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::Email;
use crate::plans::{PlanName, SubscriptionState};
use crate::ports::UnreadableEvent;

pub use catalogue::{PriceObject, PriceRecurring, PriceTier, ProductObject, TaxRateObject};
pub use checkout::{CheckoutLineItem, CheckoutSessionObject};
pub use customer::CustomerObject;
pub use invoice::InvoiceObject;
pub use payment::{InvoicePaymentObject, PaymentIntentObject};

use catalogue::{RawPrice, RawProduct, RawTaxRate};
use checkout::RawCheckoutSession;
use customer::RawCustomer;
use expandable::null_as_default;
use invoice::RawInvoice;
use payment::{RawInvoicePayment, RawPaymentIntent};
use subscription::RawSubscription;

/// The metadata key, on a product or a price, that names the plan it belongs to.
pub const PLAN_METADATA_KEY: &str = "plan";

pub type Metadata = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum EventParseError {
    #[error("webhook body is not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("invalid event field `{field}`: {reason}")]
    InvalidField { field: String, reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct StripeEvent {
    pub id: String,
    pub event_type: String,
    /// Unix seconds.
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub object: EventObject,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventObject {
    Product(ProductObject),
    Price(PriceObject),
    TaxRate(TaxRateObject),
    Customer(CustomerObject),
    CheckoutSession(CheckoutSessionObject),
    /// Its `plan` is `None` when neither the price (or plan) nor an expanded product names one
    /// (the caller then fetches the product); `past_due_since` is always `None` (the caller
    /// knows it).
    Subscription(SubscriptionState),
    Invoice(InvoiceObject),
    PaymentIntent(PaymentIntentObject),
    InvoicePayment(InvoicePaymentObject),
    /// An object we do not handle, with its `object` value.
    Other {
        object_type: Option<String>,
    },
}

impl EventObject {
    /// The customer the object belongs to, for the objects kept per customer.
    pub fn customer_id(&self) -> Option<&str> {
        match self {
            Self::Customer(customer) => Some(&customer.id),
            Self::CheckoutSession(session) => session.customer_id.as_deref(),
            Self::Subscription(subscription) => Some(&subscription.customer_id),
            Self::Invoice(invoice) => invoice.customer_id.as_deref(),
            Self::PaymentIntent(payment) => payment.customer_id.as_deref(),
            Self::Product(_)
            | Self::Price(_)
            | Self::TaxRate(_)
            | Self::InvoicePayment(_)
            | Self::Other { .. } => None,
        }
    }

    /// The Stripe id of the object, if it is one we handle.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Product(product) => Some(&product.id),
            Self::Price(price) => Some(&price.id),
            Self::TaxRate(tax_rate) => Some(&tax_rate.id),
            Self::Customer(customer) => Some(&customer.id),
            Self::CheckoutSession(session) => Some(&session.id),
            Self::Subscription(subscription) => Some(&subscription.id),
            Self::Invoice(invoice) => Some(&invoice.id),
            Self::PaymentIntent(payment_intent) => Some(&payment_intent.id),
            Self::InvoicePayment(invoice_payment) => Some(&invoice_payment.id),
            Self::Other { .. } => None,
        }
    }
}

/// The event types we act on. Any other type is acknowledged without reading its object.
///
/// `invoice.upcoming` is left out on purpose: it previews the next invoice (it has no `id`),
/// there is nothing in it to keep, and Stripe sends its own reminder e-mails.
pub const USED_EVENT_TYPES: &[&str] = &[
    "product.created",
    "product.updated",
    "product.deleted",
    "price.created",
    "price.updated",
    "price.deleted",
    "tax_rate.created",
    "tax_rate.updated",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
    "customer.subscription.trial_will_end",
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "invoice.created",
    "invoice.deleted",
    "invoice.finalized",
    "invoice.finalization_failed",
    "invoice.marked_uncollectible",
    "invoice.overdue",
    "invoice.paid",
    "invoice.payment_action_required",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice.updated",
    "invoice.voided",
    "invoice_payment.paid",
    "payment_intent.amount_capturable_updated",
    "payment_intent.canceled",
    "payment_intent.created",
    "payment_intent.partially_funded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.succeeded",
];

pub fn is_used(event_type: &str) -> bool {
    USED_EVENT_TYPES.contains(&event_type)
}

/// A verified body, read as far as we need: the envelope first, the object only for the types
/// we use.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadEvent {
    Used(Box<StripeEvent>),
    /// A type we do not use; its object was not read.
    NotUsed(EventEnvelope),
    /// An event we should use but cannot read: kept for inspection and acknowledged, since
    /// Stripe would send the same body again for three days.
    Unreadable(UnreadableEvent),
}

/// The envelope of an event whose object we do not read.
#[derive(Debug, Clone, PartialEq)]
pub struct EventEnvelope {
    pub id: String,
    pub event_type: String,
    /// Absent from events we could not fully identify.
    pub livemode: Option<bool>,
}

impl ReadEvent {
    pub fn livemode(&self) -> Option<bool> {
        match self {
            Self::Used(event) => Some(event.livemode),
            Self::NotUsed(envelope) => envelope.livemode,
            Self::Unreadable(unreadable) => unreadable.livemode,
        }
    }
}

/// Reads a verified body. Only a body that is not JSON fails: whatever else we cannot read is
/// an [`ReadEvent::Unreadable`], so the caller records it instead of refusing it.
pub fn read_event(raw: &[u8]) -> Result<ReadEvent, EventParseError> {
    let root: Value = serde_json::from_slice(raw).map_err(EventParseError::NotJson)?;
    let text = |key: &str| root.get(key).and_then(Value::as_str).map(str::to_owned);
    let id = text("id");
    let event_type = text("type");
    let livemode = root.get("livemode").and_then(Value::as_bool);
    if let (Some(id), Some(event_type)) = (&id, &event_type)
        && !is_used(event_type)
    {
        return Ok(ReadEvent::NotUsed(EventEnvelope {
            id: id.clone(),
            event_type: event_type.clone(),
            livemode,
        }));
    }
    match parse_value(&root) {
        Ok(event) => Ok(ReadEvent::Used(Box::new(event))),
        Err(EventParseError::InvalidField { field, reason }) => {
            Ok(ReadEvent::Unreadable(UnreadableEvent {
                event_id: id.unwrap_or_else(|| format!("body-sha256:{}", sha256_hex(raw))),
                event_type,
                api_version: text("api_version"),
                livemode,
                field,
                reason,
            }))
        }
        Err(not_json) => Err(not_json),
    }
}

fn sha256_hex(raw: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(raw))
}

/// Parses a webhook body (already verified) into the fields we use, whatever its type.
pub fn parse_event(raw: &[u8]) -> Result<StripeEvent, EventParseError> {
    let root: Value = serde_json::from_slice(raw).map_err(EventParseError::NotJson)?;
    parse_value(&root)
}

/// Reads an object as Stripe lists it (`GET /v1/customers`, `/v1/prices`, ...) with the readers
/// of an event's object; a failure names the field under `data.object`.
pub fn read_object(raw: &[u8]) -> Result<EventObject, EventParseError> {
    let object: Value = serde_json::from_slice(raw).map_err(EventParseError::NotJson)?;
    let object_type: Option<String> = deserialize_at(
        object.get("object").unwrap_or(&Value::Null),
        "data.object.object",
    )?;
    parse_object(&object, object_type, "")
}

fn parse_value(root: &Value) -> Result<StripeEvent, EventParseError> {
    let envelope: RawEnvelope = deserialize_at(root, "")?;
    let object = root
        .get("data")
        .and_then(|data| data.get("object"))
        .filter(|object| object.is_object())
        .ok_or_else(|| EventParseError::InvalidField {
            field: "data.object".to_owned(),
            reason: "missing or not an object".to_owned(),
        })?;
    let object_type: Option<String> = deserialize_at(
        object.get("object").unwrap_or(&Value::Null),
        "data.object.object",
    )?;
    let object = parse_object(object, object_type, &envelope.event_type)?;
    Ok(StripeEvent {
        id: envelope.id,
        event_type: envelope.event_type,
        created: envelope.created,
        livemode: envelope.livemode,
        api_version: envelope.api_version,
        object,
    })
}

fn parse_object(
    object: &Value,
    object_type: Option<String>,
    event_type: &str,
) -> Result<EventObject, EventParseError> {
    const AT: &str = "data.object";
    // The `<object>.deleted` events of Stripe and of the emulator carry the object as it was,
    // which need not say `deleted: true`.
    let deleted_by_event = object_type
        .as_deref()
        .is_some_and(|kind| event_type.strip_suffix(".deleted") == Some(kind));
    Ok(match object_type.as_deref() {
        Some("product") => EventObject::Product(
            deserialize_at::<RawProduct>(object, AT)?.into_object(deleted_by_event),
        ),
        Some("price") => EventObject::Price(
            deserialize_at::<RawPrice>(object, AT)?.into_object(deleted_by_event),
        ),
        Some("tax_rate") => EventObject::TaxRate(deserialize_at::<RawTaxRate>(object, AT)?.into()),
        Some("customer") => EventObject::Customer(
            deserialize_at::<RawCustomer>(object, AT)?.into_object(deleted_by_event),
        ),
        Some("checkout.session") => {
            EventObject::CheckoutSession(deserialize_at::<RawCheckoutSession>(object, AT)?.into())
        }
        Some("subscription") => {
            EventObject::Subscription(deserialize_at::<RawSubscription>(object, AT)?.into())
        }
        Some("invoice") => EventObject::Invoice(deserialize_at::<RawInvoice>(object, AT)?.into()),
        Some("payment_intent") => {
            EventObject::PaymentIntent(deserialize_at::<RawPaymentIntent>(object, AT)?.into())
        }
        Some("invoice_payment") => {
            EventObject::InvoicePayment(deserialize_at::<RawInvoicePayment>(object, AT)?.into())
        }
        _ => EventObject::Other { object_type },
    })
}

/// Deserializes `value`, found at the dotted path `at` of the event (empty for the event
/// itself); an error names the offending field by its full path, `event` for the event itself.
fn deserialize_at<T: DeserializeOwned>(value: &Value, at: &str) -> Result<T, EventParseError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        // The path displays as `items.data[0].current_period_end`, or `.` when empty.
        let below = error.path();
        let field = match (at, below.iter().next()) {
            ("", None) => "event".to_owned(),
            (at, None) => at.to_owned(),
            ("", Some(_)) => below.to_string(),
            (at, Some(_)) => format!("{at}.{below}"),
        };
        EventParseError::InvalidField {
            field,
            reason: error.into_inner().to_string(),
        }
    })
}

fn plan_in(metadata: &Metadata) -> Option<PlanName> {
    metadata
        .get(PLAN_METADATA_KEY)
        .and_then(|plan| PlanName::parse(plan.as_str()))
}

fn email(raw: Option<String>) -> Option<Email> {
    raw.and_then(|raw| Email::parse(raw).ok())
}

#[derive(Deserialize)]
struct RawEnvelope {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    livemode: bool,
    api_version: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::test_support::*;
    use super::*;
    use crate::plans::SubscriptionStatus;

    #[test]
    fn when_event_is_current_should_keep_the_envelope() {
        let event = parse_event(&envelope("product.created", stripe_fixture("product"))).unwrap();
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.event_type, "product.created");
        assert_eq!(event.created, 1_700_000_000);
        assert!(!event.livemode);
        assert_eq!(event.api_version.as_deref(), Some("2026-09-30.endive"));
        assert_eq!(event.object.id(), Some("prod_QXg1hqf4jFNsqG"));
    }

    #[test]
    fn when_event_is_a_deletion_of_a_full_object_should_say_deleted() {
        let product = product(parse("product.deleted", stripe_fixture("product")));
        assert!(product.deleted);
        let customer = customer(parse("customer.deleted", stripe_fixture("customer")));
        assert!(customer.deleted);
        let subscription = subscription(parse(
            "customer.subscription.deleted",
            stripe_fixture("subscription"),
        ));
        assert_eq!(subscription.id, "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw");
    }

    #[test]
    fn when_event_type_is_unknown_but_object_is_known_should_parse_the_object() {
        let object = parse(
            "customer.subscription.reticulated",
            stripe_fixture("subscription"),
        );
        assert_eq!(subscription(object).id, "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw");
    }

    #[test]
    fn when_object_type_is_unknown_should_keep_only_its_name() {
        let object = parse(
            "billing.meter.created",
            json!({ "object": "billing.meter", "id": "m" }),
        );
        assert_eq!(
            object,
            EventObject::Other {
                object_type: Some("billing.meter".into())
            }
        );
        assert_eq!(object.id(), None);
        let untyped = parse(
            "mystery.happened",
            json!({ "id": "x", "amount_due": "not read" }),
        );
        assert_eq!(untyped, EventObject::Other { object_type: None });
    }

    #[test]
    fn when_optional_fields_are_missing_should_parse() {
        let minimal = |object: &str, id: &str| json!({ "object": object, "id": id });
        assert!(matches!(
            parse("product.updated", minimal("product", "prod_1")),
            EventObject::Product(_)
        ));
        assert!(matches!(
            parse("price.updated", minimal("price", "price_1")),
            EventObject::Price(_)
        ));
        assert!(matches!(
            parse("tax_rate.updated", minimal("tax_rate", "txr_1")),
            EventObject::TaxRate(_)
        ));
        assert!(matches!(
            parse("customer.updated", minimal("customer", "cus_1")),
            EventObject::Customer(_)
        ));
        assert!(matches!(
            parse(
                "checkout.session.expired",
                minimal("checkout.session", "cs_1")
            ),
            EventObject::CheckoutSession(_)
        ));
        assert!(matches!(
            parse("invoice.paid", minimal("invoice", "in_1")),
            EventObject::Invoice(_)
        ));
        assert!(matches!(
            parse("payment_intent.created", minimal("payment_intent", "pi_1")),
            EventObject::PaymentIntent(_)
        ));
        let subscription = subscription(parse(
            "customer.subscription.created",
            json!({
                "object": "subscription", "id": "sub_1", "customer": "cus_1",
                "status": "incomplete", "created": 1, "items": null, "metadata": null,
                "cancel_at_period_end": null,
            }),
        ));
        assert!(subscription.items.is_empty());
        assert_eq!(subscription.current_period_end, None);
        assert!(!subscription.cancel_at_period_end);
        assert!(subscription.metadata.is_empty());

        let event = parse_event(
            br#"{"id":"evt_1","type":"invoice.paid","created":1,"data":{"object":{"object":"invoice","id":"in_1"}}}"#,
        )
        .unwrap();
        assert!(!event.livemode);
        assert_eq!(event.api_version, None);
    }

    #[test]
    fn when_enum_values_are_new_should_keep_them_as_strings() {
        let mut object = stripe_fixture("subscription");
        object["status"] = json!("hibernating");
        let subscription = subscription(parse("customer.subscription.updated", object));
        assert_eq!(
            subscription.status,
            SubscriptionStatus::Other("hibernating".into())
        );
        let mut object = stripe_fixture("checkout.session");
        object["mode"] = json!("teleport");
        assert_eq!(
            session(parse("checkout.session.completed", object))
                .mode
                .as_deref(),
            Some("teleport")
        );
    }

    #[test]
    fn when_livemode_is_set_should_report_it() {
        let mut raw: Value =
            serde_json::from_slice(&envelope("invoice.paid", stripe_fixture("invoice"))).unwrap();
        raw["livemode"] = json!(true);
        let event = parse_event(&serde_json::to_vec(&raw).unwrap()).unwrap();
        assert!(event.livemode);
    }

    #[test]
    fn when_a_used_field_has_the_wrong_type_should_name_it() {
        let mut object = stripe_fixture("invoice");
        object["amount_due"] = json!("1000");
        let (field, reason) = parse_error("invoice.paid", object);
        assert_eq!(field, "data.object.amount_due");
        assert!(reason.contains("invalid type"), "{reason}");

        let mut object = stripe_fixture("subscription");
        object["items"]["data"][0]["current_period_end"] = json!("soon");
        let (field, _) = parse_error("customer.subscription.updated", object);
        assert_eq!(field, "data.object.items.data[0].current_period_end");

        let mut object = stripe_fixture("checkout.session");
        object["customer"] = json!(42);
        let (field, reason) = parse_error("checkout.session.completed", object);
        assert_eq!(field, "data.object.customer");
        assert!(reason.contains("an id or an expanded object"), "{reason}");

        let mut object = stripe_fixture("product");
        object["metadata"] = json!({ "plan": 7 });
        let (field, _) = parse_error("product.updated", object);
        assert_eq!(field, "data.object.metadata.plan");

        let mut object = stripe_fixture("subscription");
        object["items"]["data"][0]["price"]["product"] = json!({ "id": "prod_1", "metadata": [] });
        let (field, _) = parse_error("customer.subscription.updated", object);
        assert_eq!(field, "data.object.items.data[0].price.product.metadata");
    }

    #[test]
    fn when_an_unused_field_has_an_unexpected_type_should_parse() {
        let mut object = stripe_fixture("customer");
        object["description"] = json!({ "nested": [1, 2, 3] });
        object["balance"] = json!("a string now");
        assert_eq!(
            customer(parse("customer.updated", object)).id,
            "cus_QXg1o8vcGmoR32"
        );
    }

    #[test]
    fn when_a_required_field_is_missing_should_name_it() {
        let missing_status =
            json!({ "object": "subscription", "id": "sub_1", "customer": "cus_1", "created": 1 });
        let (field, reason) = parse_error("customer.subscription.updated", missing_status);
        assert_eq!(field, "data.object");
        assert_eq!(reason, "missing field `status`");

        let no_id = br#"{"type":"invoice.paid","created":1,"data":{"object":{"object":"invoice","id":"in_1"}}}"#;
        let error = parse_event(no_id).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid event field `event`: missing field `id`"
        );

        let bad_created =
            br#"{"id":"evt_1","type":"x","created":"yesterday","data":{"object":{}}}"#;
        let EventParseError::InvalidField { field, .. } = parse_event(bad_created).unwrap_err()
        else {
            panic!("expected an invalid field");
        };
        assert_eq!(field, "created");

        let no_object = br#"{"id":"evt_1","type":"x","created":1,"data":{}}"#;
        let EventParseError::InvalidField { field, .. } = parse_event(no_object).unwrap_err()
        else {
            panic!("expected an invalid field");
        };
        assert_eq!(field, "data.object");

        let bad_object_type =
            br#"{"id":"evt_1","type":"x","created":1,"data":{"object":{"object":3}}}"#;
        let EventParseError::InvalidField { field, .. } = parse_event(bad_object_type).unwrap_err()
        else {
            panic!("expected an invalid field");
        };
        assert_eq!(field, "data.object.object");
    }

    #[test]
    fn when_body_is_not_json_should_say_so() {
        assert!(matches!(
            parse_event(b"<html>"),
            Err(EventParseError::NotJson(_))
        ));
    }
}
