//! Invoices, and the subscription each one bills.

use serde::Deserialize;

use super::expandable::{Expandable, RawIdOnly, RawList, id_of};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceObject {
    pub id: String,
    pub customer_id: Option<String>,
    pub subscription_id: Option<String>,
    pub status: Option<String>,
    pub number: Option<String>,
    pub currency: Option<String>,
    pub amount_due: Option<i64>,
    pub amount_paid: Option<i64>,
    pub amount_remaining: Option<i64>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub created: Option<i64>,
    pub attempt_count: Option<i64>,
    pub next_payment_attempt: Option<i64>,
    pub billing_reason: Option<String>,
}

// ---- as Stripe sends it -------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct RawInvoice {
    id: String,
    customer: Option<Expandable<RawIdOnly>>,
    /// Old API.
    subscription: Option<Expandable<RawIdOnly>>,
    parent: Option<RawInvoiceParent>,
    lines: Option<RawList<RawInvoiceLine>>,
    status: Option<String>,
    number: Option<String>,
    currency: Option<String>,
    amount_due: Option<i64>,
    amount_paid: Option<i64>,
    amount_remaining: Option<i64>,
    hosted_invoice_url: Option<String>,
    invoice_pdf: Option<String>,
    period_start: Option<i64>,
    period_end: Option<i64>,
    created: Option<i64>,
    /// Old API name of `created`.
    date: Option<i64>,
    attempt_count: Option<i64>,
    next_payment_attempt: Option<i64>,
    billing_reason: Option<String>,
}

#[derive(Deserialize)]
struct RawInvoiceParent {
    subscription_details: Option<RawSubscriptionDetails>,
}

#[derive(Deserialize)]
struct RawSubscriptionDetails {
    subscription: Option<Expandable<RawIdOnly>>,
}

#[derive(Deserialize)]
struct RawInvoiceLine {
    /// Old API.
    subscription: Option<Expandable<RawIdOnly>>,
    parent: Option<RawInvoiceLineParent>,
}

#[derive(Deserialize)]
struct RawInvoiceLineParent {
    subscription_item_details: Option<RawSubscriptionDetails>,
}

impl From<RawInvoice> for InvoiceObject {
    fn from(raw: RawInvoice) -> Self {
        let from_parent = raw
            .parent
            .and_then(|parent| parent.subscription_details)
            .and_then(|details| details.subscription);
        let from_lines = || {
            raw.lines.as_ref().and_then(|lines| {
                lines.data.iter().find_map(|line| {
                    let from_line_parent = line
                        .parent
                        .as_ref()
                        .and_then(|parent| parent.subscription_item_details.as_ref())
                        .and_then(|details| id_of(details.subscription.as_ref()));
                    from_line_parent.or_else(|| id_of(line.subscription.as_ref()))
                })
            })
        };
        Self {
            subscription_id: id_of(raw.subscription.as_ref())
                .or_else(|| id_of(from_parent.as_ref()))
                .or_else(from_lines),
            id: raw.id,
            customer_id: id_of(raw.customer.as_ref()),
            status: raw.status,
            number: raw.number,
            currency: raw.currency,
            amount_due: raw.amount_due,
            amount_paid: raw.amount_paid,
            amount_remaining: raw.amount_remaining,
            hosted_invoice_url: raw.hosted_invoice_url,
            invoice_pdf: raw.invoice_pdf,
            period_start: raw.period_start,
            period_end: raw.period_end,
            created: raw.created.or(raw.date),
            attempt_count: raw.attempt_count,
            next_payment_attempt: raw.next_payment_attempt,
            billing_reason: raw.billing_reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::webhook::event::test_support::*;

    #[test]
    fn when_invoice_is_current_should_take_the_subscription_from_its_parent() {
        let invoice = invoice(parse("invoice.paid", stripe_fixture("invoice")));
        assert_eq!(
            invoice,
            InvoiceObject {
                id: "in_1Pgc6tB7WZ01zgkWu9fdqL6I".into(),
                customer_id: Some("cus_QXg1o8vcGmoR32".into()),
                subscription_id: Some("subscription".into()),
                status: Some("draft".into()),
                number: None,
                currency: Some("usd".into()),
                amount_due: Some(1000),
                amount_paid: Some(0),
                amount_remaining: Some(1000),
                hosted_invoice_url: None,
                invoice_pdf: None,
                period_start: Some(1_234_567_890),
                period_end: Some(1_234_567_890),
                created: Some(1_234_567_890),
                attempt_count: Some(0),
                next_payment_attempt: Some(1_234_567_890),
                billing_reason: Some("manual".into()),
            }
        );
    }

    #[test]
    fn when_invoice_has_no_parent_should_take_the_subscription_from_its_lines() {
        let mut object = stripe_fixture("invoice");
        object["parent"] = Value::Null;
        object["lines"]["data"][0]["parent"]["subscription_item_details"]["subscription"] =
            json!("sub_from_line");
        let invoice = invoice(parse("invoice.payment_failed", object));
        assert_eq!(invoice.subscription_id.as_deref(), Some("sub_from_line"));
    }

    #[test]
    fn when_invoice_is_old_shaped_should_take_the_subscription_at_the_top() {
        let invoice = invoice(localstripe_event("invoice.payment_succeeded.json").object);
        assert_eq!(
            invoice,
            InvoiceObject {
                id: "in_LocalInvoice001".into(),
                customer_id: Some("cus_LocalAlice0001".into()),
                subscription_id: Some("sub_LocalPro000001".into()),
                status: Some("paid".into()),
                number: None,
                currency: Some("eur".into()),
                amount_due: Some(1500),
                amount_paid: Some(1500),
                amount_remaining: None,
                hosted_invoice_url: None,
                invoice_pdf: None,
                period_start: Some(1_700_000_090),
                period_end: Some(1_702_592_090),
                created: Some(1_700_000_090),
                attempt_count: Some(1),
                next_payment_attempt: None,
                billing_reason: None,
            }
        );

        let without_parent = json!({
            "object": "invoice", "id": "in_1", "customer": "cus_1", "subscription": "sub_top",
            "date": 1_500_000_000, "closed": false, "paid": true,
        });
        let invoice = self::invoice(parse("invoice.payment_succeeded", without_parent));
        assert_eq!(invoice.subscription_id.as_deref(), Some("sub_top"));
        assert_eq!(invoice.created, Some(1_500_000_000));
    }
}
