//! Checkout sessions and their line items.

use serde::Deserialize;

use super::expandable::{
    Expandable, RawIdOnly, RawList, RawPriceRef, id_of, null_as_default, product_id_of,
};
use super::{Metadata, email};
use crate::domain::Email;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSessionObject {
    pub id: String,
    pub mode: Option<String>,
    pub status: Option<String>,
    pub payment_status: Option<String>,
    pub customer_id: Option<String>,
    /// `customer_email`, else `customer_details.email`; `None` when not an address.
    pub customer_email: Option<Email>,
    pub client_reference_id: Option<String>,
    pub metadata: Metadata,
    pub subscription_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub amount_total: Option<i64>,
    pub amount_subtotal: Option<i64>,
    pub currency: Option<String>,
    pub created: Option<i64>,
    /// `None` unless the event carries the line items (they are expandable only).
    pub line_items: Option<Vec<CheckoutLineItem>>,
}

pub use crate::ports::CheckoutLineItem;

// ---- as Stripe sends it -------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct RawCheckoutSession {
    id: String,
    mode: Option<String>,
    status: Option<String>,
    payment_status: Option<String>,
    customer: Option<Expandable<RawIdOnly>>,
    customer_email: Option<String>,
    customer_details: Option<RawCustomerDetails>,
    client_reference_id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
    subscription: Option<Expandable<RawIdOnly>>,
    payment_intent: Option<Expandable<RawIdOnly>>,
    amount_total: Option<i64>,
    amount_subtotal: Option<i64>,
    currency: Option<String>,
    created: Option<i64>,
    line_items: Option<RawList<RawCheckoutItem>>,
}

#[derive(Deserialize)]
struct RawCustomerDetails {
    email: Option<String>,
}

#[derive(Deserialize)]
struct RawCheckoutItem {
    price: Option<Expandable<RawPriceRef>>,
    quantity: Option<i64>,
    amount_total: Option<i64>,
    currency: Option<String>,
}

impl From<RawCheckoutSession> for CheckoutSessionObject {
    fn from(raw: RawCheckoutSession) -> Self {
        let details_email = raw.customer_details.and_then(|details| details.email);
        Self {
            id: raw.id,
            mode: raw.mode,
            status: raw.status,
            payment_status: raw.payment_status,
            customer_id: id_of(raw.customer.as_ref()),
            customer_email: email(raw.customer_email).or_else(|| email(details_email)),
            client_reference_id: raw.client_reference_id,
            metadata: raw.metadata,
            subscription_id: id_of(raw.subscription.as_ref()),
            payment_intent_id: id_of(raw.payment_intent.as_ref()),
            amount_total: raw.amount_total,
            amount_subtotal: raw.amount_subtotal,
            currency: raw.currency,
            created: raw.created,
            line_items: raw.line_items.map(|list| {
                list.data
                    .into_iter()
                    .map(|item| CheckoutLineItem {
                        price_id: id_of(item.price.as_ref()),
                        product_id: item.price.as_ref().and_then(product_id_of),
                        quantity: item.quantity,
                        amount_total: item.amount_total,
                        currency: item.currency,
                    })
                    .collect()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::webhook::event::test_support::*;

    #[test]
    fn when_checkout_session_is_current_should_keep_its_fields() {
        let session = session(parse(
            "checkout.session.completed",
            stripe_fixture("checkout.session"),
        ));
        assert_eq!(
            session,
            CheckoutSessionObject {
                id: "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY".into(),
                mode: Some("payment".into()),
                status: Some("open".into()),
                payment_status: Some("unpaid".into()),
                customer_id: None,
                customer_email: Email::parse("example@example.com").ok(),
                client_reference_id: None,
                metadata: Metadata::new(),
                subscription_id: None,
                payment_intent_id: Some("pi_1PgafyB7WZ01zgkWSjxsAJo3".into()),
                amount_total: None,
                amount_subtotal: None,
                currency: None,
                created: Some(1_234_567_890),
                line_items: None,
            }
        );
    }

    #[test]
    fn when_checkout_session_is_a_completed_subscription_should_take_expanded_ids_and_lines() {
        let mut object = stripe_fixture("checkout.session");
        object["mode"] = json!("subscription");
        object["status"] = json!("complete");
        object["payment_status"] = json!("paid");
        object["customer"] = stripe_fixture("customer");
        object["customer_email"] = json!("alice@example.com");
        object["client_reference_id"] = json!("4f1c-sub");
        object["metadata"] = json!({ "cognito_sub": "4f1c-sub", "plan": "pro" });
        object["subscription"] = stripe_fixture("subscription");
        object["payment_intent"] = Value::Null;
        object["amount_total"] = json!(2000);
        object["amount_subtotal"] = json!(2000);
        object["currency"] = json!("usd");
        object["line_items"] = json!({
            "object": "list", "has_more": false, "url": "/v1/checkout/sessions/cs_1/line_items",
            "data": [stripe_fixture("item")],
        });
        let session = session(parse("checkout.session.completed", object));
        assert_eq!(session.mode.as_deref(), Some("subscription"));
        assert_eq!(session.customer_id.as_deref(), Some("cus_QXg1o8vcGmoR32"));
        assert_eq!(
            session.customer_email.unwrap().as_str(),
            "alice@example.com"
        );
        assert_eq!(session.client_reference_id.as_deref(), Some("4f1c-sub"));
        assert_eq!(session.metadata["plan"], "pro");
        assert_eq!(
            session.subscription_id.as_deref(),
            Some("sub_1Pgc6rB7WZ01zgkWNy0Cn5nw")
        );
        assert_eq!(session.payment_intent_id, None);
        assert_eq!(session.amount_total, Some(2000));
        assert_eq!(session.amount_subtotal, Some(2000));
        assert_eq!(session.currency.as_deref(), Some("usd"));
        assert_eq!(
            session.line_items,
            Some(vec![CheckoutLineItem {
                price_id: Some("price_1PgafmB7WZ01zgkW02Hf9z6c".into()),
                product_id: Some("prod_QXg1hqf4jFNsqG".into()),
                quantity: Some(1),
                amount_total: Some(0),
                currency: Some("usd".into()),
            }])
        );
    }
}
