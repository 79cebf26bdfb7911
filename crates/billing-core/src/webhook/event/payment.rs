//! Payment intents, and invoice payments (which link a payment intent to its invoice since API
//! 2025-03-31, when payment intents stopped carrying `invoice`).

use serde::Deserialize;

use super::Metadata;
use super::expandable::{Expandable, RawIdOnly, id_of, null_as_default};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntentObject {
    pub id: String,
    pub customer_id: Option<String>,
    pub amount: Option<i64>,
    pub amount_received: Option<i64>,
    pub currency: Option<String>,
    pub status: Option<String>,
    pub metadata: Metadata,
    pub created: Option<i64>,
    pub invoice_id: Option<String>,
}

// ---- as Stripe sends it -------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct RawPaymentIntent {
    id: String,
    customer: Option<Expandable<RawIdOnly>>,
    amount: Option<i64>,
    amount_received: Option<i64>,
    currency: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
    created: Option<i64>,
    invoice: Option<Expandable<RawIdOnly>>,
}

impl From<RawPaymentIntent> for PaymentIntentObject {
    fn from(raw: RawPaymentIntent) -> Self {
        Self {
            id: raw.id,
            customer_id: id_of(raw.customer.as_ref()),
            amount: raw.amount,
            amount_received: raw.amount_received,
            currency: raw.currency,
            status: raw.status,
            metadata: raw.metadata,
            created: raw.created,
            invoice_id: id_of(raw.invoice.as_ref()),
        }
    }
}

/// An `invoice_payment`: the payment of an invoice, by a payment intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePaymentObject {
    pub id: String,
    pub invoice_id: Option<String>,
    /// `payment.payment_intent` when `payment.type` is `payment_intent`.
    pub payment_intent_id: Option<String>,
    pub amount_paid: Option<i64>,
    pub currency: Option<String>,
    pub status: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawInvoicePayment {
    id: String,
    invoice: Option<Expandable<RawIdOnly>>,
    payment: Option<RawInvoicePaymentTarget>,
    amount_paid: Option<i64>,
    currency: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
struct RawInvoicePaymentTarget {
    payment_intent: Option<Expandable<RawIdOnly>>,
}

impl From<RawInvoicePayment> for InvoicePaymentObject {
    fn from(raw: RawInvoicePayment) -> Self {
        Self {
            id: raw.id,
            invoice_id: id_of(raw.invoice.as_ref()),
            payment_intent_id: raw
                .payment
                .and_then(|payment| id_of(payment.payment_intent.as_ref())),
            amount_paid: raw.amount_paid,
            currency: raw.currency,
            status: raw.status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::event::EventObject;
    use crate::webhook::event::test_support::*;

    #[test]
    fn when_payment_intent_is_current_should_keep_its_fields() {
        let payment_intent = payment_intent(parse(
            "payment_intent.created",
            stripe_fixture("payment_intent"),
        ));
        assert_eq!(
            payment_intent,
            PaymentIntentObject {
                id: "pi_1PgafyB7WZ01zgkWSjxsAJo3".into(),
                customer_id: None,
                amount: Some(1099),
                amount_received: Some(0),
                currency: Some("usd".into()),
                status: Some("requires_payment_method".into()),
                metadata: Metadata::new(),
                created: Some(1_234_567_890),
                invoice_id: None,
            }
        );
    }

    #[test]
    fn when_payment_intent_is_old_shaped_should_keep_its_fields() {
        let payment_intent =
            payment_intent(localstripe_event("payment_intent.succeeded.json").object);
        assert_eq!(
            payment_intent,
            PaymentIntentObject {
                id: "pi_LocalIntent0001".into(),
                customer_id: Some("cus_LocalAlice0001".into()),
                amount: Some(1500),
                amount_received: None,
                currency: Some("eur".into()),
                status: Some("succeeded".into()),
                metadata: Metadata::new(),
                created: Some(1_700_000_092),
                invoice_id: Some("in_LocalInvoice001".into()),
            }
        );
    }

    #[test]
    fn when_invoice_payment_is_paid_should_link_its_payment_intent_and_invoice() {
        let mut object = stripe_fixture("invoice_payment");
        object["invoice"] = serde_json::json!("in_1");
        object["payment"] =
            serde_json::json!({ "type": "payment_intent", "payment_intent": "pi_1" });
        object["amount_paid"] = serde_json::json!(1500);
        object["status"] = serde_json::json!("paid");
        let EventObject::InvoicePayment(paid) = parse("invoice_payment.paid", object) else {
            panic!("expected an invoice payment");
        };
        assert_eq!(
            paid,
            InvoicePaymentObject {
                id: "obj_123".into(),
                invoice_id: Some("in_1".into()),
                payment_intent_id: Some("pi_1".into()),
                amount_paid: Some(1500),
                currency: Some("currency".into()),
                status: Some("paid".into()),
            }
        );
        // The fixture as Stripe gives it: a payment of another type names no payment intent.
        let EventObject::InvoicePayment(other) =
            parse("invoice_payment.paid", stripe_fixture("invoice_payment"))
        else {
            panic!("expected an invoice payment");
        };
        assert_eq!(other.payment_intent_id, None);
    }
}
