//! What a billing page shows, kept as typed records: invoices and delinquency, payments,
//! checkout sessions, customers' profiles, and the catalogue (products, prices, tax rates).

use tracing::info;

use super::{Delivery, Outcome, SyncService};
use crate::error::Result;
use crate::ports::{
    Billing, BillingRecord, CheckoutPaymentRecord, CheckoutSessionRecord, CustomerProfile,
    DelinquencyRecord, Freshness, InvoicePaymentRecord, InvoiceRecord, LineItemRecord,
    PaymentIntentRecord, PaymentRecord, PriceRecord, ProductRecord, RecurringRecord, SyncPorts,
    SyncStore, TaxRateRecord, TierRecord,
};
use crate::webhook::event::{
    CheckoutLineItem, CheckoutSessionObject, CustomerObject, EventObject, InvoiceObject,
    InvoicePaymentObject, PaymentIntentObject, PriceObject, ProductObject, StripeEvent,
    TaxRateObject,
};

impl<P: SyncPorts> SyncService<'_, P> {
    async fn put_record(&self, delivery: Delivery<'_>, record: BillingRecord) -> Result<Outcome> {
        Ok(
            match self.store.put_record(&delivery.versioned(record)).await? {
                Freshness::Applied | Freshness::Tie | Freshness::Same => Outcome::Applied,
                Freshness::Stale => Outcome::Stale,
            },
        )
    }

    /// The session with its line items (read from Stripe when the event leaves them out), and
    /// the payment a one-time checkout took.
    pub(super) async fn record_checkout_session(
        &self,
        delivery: Delivery<'_>,
        customer_id: &str,
        session: &CheckoutSessionObject,
    ) -> Result<()> {
        let fetched;
        let items = match &session.line_items {
            Some(items) => items,
            None => {
                fetched = self.billing.checkout_line_items(&session.id).await?;
                &fetched
            }
        };
        self.put_record(
            delivery,
            BillingRecord::CheckoutSession {
                customer_id: customer_id.to_owned(),
                session_id: session.id.clone(),
                session: checkout_session_record(session, items),
            },
        )
        .await?;
        if session.mode.as_deref() == Some("payment")
            && let Some(payment_intent_id) = &session.payment_intent_id
        {
            self.put_record(
                delivery,
                BillingRecord::Payment {
                    customer_id: customer_id.to_owned(),
                    payment_intent_id: payment_intent_id.clone(),
                    payment: PaymentRecord::Checkout(checkout_payment_record(session)),
                },
            )
            .await?;
        }
        Ok(())
    }

    pub(super) async fn record_profile(
        &self,
        delivery: Delivery<'_>,
        customer: &CustomerObject,
    ) -> Result<()> {
        self.put_record(
            delivery,
            BillingRecord::CustomerProfile {
                customer_id: customer.id.clone(),
                profile: customer_profile(customer),
            },
        )
        .await?;
        Ok(())
    }

    /// An event whose whole effect is its records (`records_of`), one record after the other:
    /// what `put_record` says of the last one (the invoice after its delinquency).
    pub(super) async fn put_records(&self, delivery: Delivery<'_>) -> Result<Outcome> {
        let Some((_, records)) = records_of(delivery.event) else {
            return Ok(Outcome::Ignored);
        };
        let mut outcome = Outcome::Ignored;
        for record in records {
            outcome = self.put_record(delivery, record).await?;
        }
        Ok(outcome)
    }

    /// Which invoice a payment paid. The event names no customer: the payment intent's is read
    /// from Stripe, and the link is kept beside the payment's record under that customer.
    pub(super) async fn on_invoice_payment(
        &self,
        delivery: Delivery<'_>,
        paid: &InvoicePaymentObject,
    ) -> Result<Outcome> {
        let (Some(invoice), Some(payment_intent)) = (&paid.invoice_id, &paid.payment_intent_id)
        else {
            return Ok(Outcome::Ignored);
        };
        let Some(customer) = self.billing.payment_intent_customer(payment_intent).await? else {
            info!(event_id = %delivery.event.id, payment_intent_id = %payment_intent, "invoice payment without a customer; nothing to keep");
            return Ok(Outcome::Ignored);
        };
        if self.is_deleted_customer(&customer).await? {
            return self.on_deleted_customer(delivery).await;
        }
        self.put_record(
            delivery,
            BillingRecord::InvoicePayment {
                customer_id: customer,
                payment_intent_id: payment_intent.clone(),
                invoice_payment: InvoicePaymentRecord {
                    amount_paid: paid.amount_paid,
                    currency: paid.currency.clone(),
                    invoice: invoice.clone(),
                    invoice_payment: paid.id.clone(),
                    status: paid.status.clone(),
                },
            },
        )
        .await
    }
}

/// The record of a catalogue object (product, price, tax rate); `None` for any other object.
pub fn catalogue_record(object: &EventObject) -> Option<BillingRecord> {
    Some(match object {
        EventObject::Product(product) => BillingRecord::Product {
            product_id: product.id.clone(),
            product: product_record(product),
        },
        EventObject::Price(price) => BillingRecord::Price {
            price_id: price.id.clone(),
            price: price_record(price),
        },
        EventObject::TaxRate(rate) => BillingRecord::TaxRate {
            tax_rate_id: rate.id.clone(),
            tax_rate: tax_rate_record(rate),
        },
        _ => return None,
    })
}

/// The records that are the whole of an event's effect, with the customer they are about:
/// invoices and payment intents with a customer, and catalogue objects. `None` for any other
/// event.
pub(super) fn records_of(event: &StripeEvent) -> Option<(Option<&str>, Vec<BillingRecord>)> {
    match &event.object {
        EventObject::Invoice(invoice) => {
            let customer = invoice.customer_id.as_deref()?;
            let records = invoice_records(customer, invoice, &event.event_type);
            Some((Some(customer), records))
        }
        EventObject::PaymentIntent(payment) => {
            let customer = payment.customer_id.as_deref()?;
            Some((
                Some(customer),
                vec![payment_intent_record(customer, payment)],
            ))
        }
        object => catalogue_record(object).map(|record| (None, vec![record])),
    }
}

/// What an invoice's event leaves: the invoice, and after a payment or a failed one, whether
/// the customer is delinquent (written first).
fn invoice_records(
    customer: &str,
    invoice: &InvoiceObject,
    event_type: &str,
) -> Vec<BillingRecord> {
    let failed = matches!(
        event_type,
        "invoice.payment_failed"
            | "invoice.payment_action_required"
            | "invoice.marked_uncollectible"
    );
    let paid = matches!(event_type, "invoice.paid" | "invoice.payment_succeeded");
    let mut records = Vec::with_capacity(2);
    if failed || paid {
        records.push(BillingRecord::Delinquency {
            customer_id: customer.to_owned(),
            delinquency: DelinquencyRecord {
                delinquent: failed,
                invoice: invoice.id.clone(),
            },
        });
    }
    records.push(BillingRecord::Invoice {
        customer_id: customer.to_owned(),
        invoice_id: invoice.id.clone(),
        invoice: invoice_record(invoice, event_type),
    });
    records
}

fn checkout_session_record(
    session: &CheckoutSessionObject,
    items: &[CheckoutLineItem],
) -> CheckoutSessionRecord {
    CheckoutSessionRecord {
        amount_total: session.amount_total,
        currency: session.currency.clone(),
        line_items: items
            .iter()
            .map(|item| LineItemRecord {
                amount_total: item.amount_total,
                currency: item.currency.clone(),
                price: item.price_id.clone(),
                product: item.product_id.clone(),
                quantity: item.quantity,
            })
            .collect(),
        mode: session.mode.clone(),
        payment_intent: session.payment_intent_id.clone(),
        payment_status: session.payment_status.clone(),
        status: session.status.clone(),
        subscription: session.subscription_id.clone(),
    }
}

fn checkout_payment_record(session: &CheckoutSessionObject) -> CheckoutPaymentRecord {
    CheckoutPaymentRecord {
        amount: session.amount_total,
        checkout_session: session.id.clone(),
        currency: session.currency.clone(),
        status: session.payment_status.clone(),
    }
}

pub(super) fn customer_profile(customer: &CustomerObject) -> CustomerProfile {
    CustomerProfile {
        deleted: customer.deleted,
        delinquent: false,
        metadata: customer.metadata.clone(),
        name: customer.name.clone(),
    }
}

fn invoice_record(invoice: &InvoiceObject, event_type: &str) -> InvoiceRecord {
    InvoiceRecord {
        amount_due: invoice.amount_due,
        amount_paid: invoice.amount_paid,
        amount_remaining: invoice.amount_remaining,
        attempt_count: invoice.attempt_count,
        billing_reason: invoice.billing_reason.clone(),
        created: invoice.created,
        currency: invoice.currency.clone(),
        hosted_invoice_url: invoice.hosted_invoice_url.clone(),
        invoice_pdf: invoice.invoice_pdf.clone(),
        last_event: event_type.to_owned(),
        next_payment_attempt: invoice.next_payment_attempt,
        number: invoice.number.clone(),
        period_end: invoice.period_end,
        period_start: invoice.period_start,
        status: invoice.status.clone(),
        subscription: invoice.subscription_id.clone(),
    }
}

fn payment_intent_record(customer: &str, payment: &PaymentIntentObject) -> BillingRecord {
    BillingRecord::Payment {
        customer_id: customer.to_owned(),
        payment_intent_id: payment.id.clone(),
        payment: PaymentRecord::Intent(PaymentIntentRecord {
            amount: payment.amount,
            amount_received: payment.amount_received,
            currency: payment.currency.clone(),
            invoice: payment.invoice_id.clone(),
            metadata: payment.metadata.clone(),
            status: payment.status.clone(),
        }),
    }
}

pub(super) fn product_record(product: &ProductObject) -> ProductRecord {
    ProductRecord {
        active: product.active && !product.deleted,
        metadata: product.metadata.clone(),
        name: product.name.clone(),
        plan: product.plan(),
    }
}

pub(super) fn price_record(price: &PriceObject) -> PriceRecord {
    PriceRecord {
        active: price.active && !price.deleted,
        billing_scheme: price.billing_scheme.clone(),
        currency: price.currency.clone(),
        lookup_key: price.lookup_key.clone(),
        metadata: price.metadata.clone(),
        nickname: price.nickname.clone(),
        product: price.product_id.clone(),
        recurring: price.recurring.as_ref().map(|recurring| RecurringRecord {
            interval: recurring.interval.clone(),
            interval_count: recurring.interval_count,
            meter: recurring.meter.clone(),
            trial_period_days: recurring.trial_period_days,
            usage_type: recurring.usage_type.clone(),
        }),
        tiers: price
            .tiers
            .iter()
            .map(|tier| TierRecord {
                flat_amount: tier.flat_amount,
                unit_amount: tier.unit_amount,
                up_to: tier.up_to,
            })
            .collect(),
        tiers_mode: price.tiers_mode.clone(),
        price_type: price.price_type.clone(),
        unit_amount: price.unit_amount,
    }
}

pub(super) fn tax_rate_record(rate: &TaxRateObject) -> TaxRateRecord {
    TaxRateRecord {
        active: rate.active,
        country: rate.country.clone(),
        display_name: rate.display_name.clone(),
        inclusive: rate.inclusive,
        jurisdiction: rate.jurisdiction.clone(),
        metadata: rate.metadata.clone(),
        percentage: rate.percentage,
    }
}

#[cfg(test)]
mod tests {
    //! The stored documents must not change: each record serializes byte for byte to the JSON
    //! the webhook wrote before records had types (the `json!` bodies below).
    #![allow(clippy::unwrap_used)]

    use serde_json::{Value, json};

    use super::*;
    use crate::webhook::event::{PriceRecurring, PriceTier};

    fn same(record: &impl serde::Serialize, legacy: Value) {
        assert_eq!(serde_json::to_string(record).unwrap(), legacy.to_string());
    }

    fn metadata() -> crate::webhook::Metadata {
        [
            ("plan".to_owned(), "pro".to_owned()),
            ("k".to_owned(), "v".to_owned()),
        ]
        .into()
    }

    #[test]
    fn catalogue_records_should_serialize_as_before() {
        let product = ProductObject {
            id: "prod_1".into(),
            name: Some("Pro".into()),
            active: true,
            metadata: metadata(),
            deleted: false,
        };
        same(
            &product_record(&product),
            json!({"name": product.name, "active": product.active && !product.deleted, "metadata": product.metadata, "plan": product.plan().map(|p| p.to_string())}),
        );
        let price = PriceObject {
            id: "price_1".into(),
            product_id: Some("prod_1".into()),
            product_metadata: None,
            active: true,
            currency: Some("usd".into()),
            unit_amount: Some(1000),
            price_type: Some("recurring".into()),
            recurring: Some(PriceRecurring {
                interval: Some("month".into()),
                interval_count: Some(1),
                meter: None,
                trial_period_days: Some(14),
                usage_type: None,
            }),
            lookup_key: Some("pro_monthly".into()),
            nickname: Some("Pro monthly".into()),
            billing_scheme: Some("tiered".into()),
            tiers_mode: Some("graduated".into()),
            tiers: vec![
                PriceTier {
                    up_to: Some(10),
                    unit_amount: Some(100),
                    flat_amount: None,
                },
                PriceTier {
                    up_to: None,
                    unit_amount: Some(50),
                    flat_amount: Some(7),
                },
            ],
            metadata: metadata(),
            deleted: false,
        };
        let legacy_price = |price: &PriceObject| {
            let tiers: Vec<_> = price
                .tiers
                .iter()
                .map(|tier| json!({"up_to": tier.up_to, "unit_amount": tier.unit_amount, "flat_amount": tier.flat_amount}))
                .collect();
            json!({
                "product": price.product_id, "active": price.active && !price.deleted, "currency": price.currency,
                "unit_amount": price.unit_amount, "type": price.price_type, "lookup_key": price.lookup_key,
                "nickname": price.nickname, "billing_scheme": price.billing_scheme, "tiers_mode": price.tiers_mode,
                "tiers": tiers, "metadata": price.metadata,
                "recurring": price.recurring.as_ref().map(|r| json!({"interval": r.interval, "interval_count": r.interval_count, "trial_period_days": r.trial_period_days})),
            })
        };
        same(&price_record(&price), legacy_price(&price));
        let deleted = PriceObject {
            recurring: None,
            tiers: Vec::new(),
            deleted: true,
            ..price
        };
        same(&price_record(&deleted), legacy_price(&deleted));
        let rate = TaxRateObject {
            id: "txr_1".into(),
            display_name: Some("VAT".into()),
            percentage: Some(20.5),
            inclusive: false,
            active: true,
            jurisdiction: Some("DE".into()),
            country: None,
            metadata: metadata(),
        };
        same(
            &tax_rate_record(&rate),
            json!({"display_name": rate.display_name, "percentage": rate.percentage, "inclusive": rate.inclusive, "active": rate.active, "jurisdiction": rate.jurisdiction, "country": rate.country, "metadata": rate.metadata}),
        );
    }

    #[test]
    fn customer_records_should_serialize_as_before() {
        let customer = CustomerObject {
            id: "cus_1".into(),
            email: None,
            name: Some("Alice".into()),
            metadata: metadata(),
            deleted: true,
            created: Some(1),
        };
        same(
            &customer_profile(&customer),
            json!({"name": customer.name, "metadata": customer.metadata, "deleted": customer.deleted, "delinquent": false}),
        );
        same(
            &DelinquencyRecord {
                delinquent: true,
                invoice: "in_1".into(),
            },
            json!({"delinquent": true, "invoice": "in_1"}),
        );
        let invoice = InvoiceObject {
            id: "in_1".into(),
            customer_id: Some("cus_1".into()),
            subscription_id: Some("sub_1".into()),
            status: Some("open".into()),
            number: Some("A-1".into()),
            currency: Some("usd".into()),
            amount_due: Some(1000),
            amount_paid: Some(0),
            amount_remaining: Some(1000),
            hosted_invoice_url: Some("https://invoice.stripe.com/i/x".into()),
            invoice_pdf: None,
            period_start: Some(10),
            period_end: Some(20),
            created: Some(9),
            attempt_count: Some(2),
            next_payment_attempt: Some(30),
            billing_reason: Some("subscription_cycle".into()),
        };
        let event_type = "invoice.payment_failed";
        same(
            &invoice_record(&invoice, event_type),
            json!({
                "number": invoice.number, "status": invoice.status, "subscription": invoice.subscription_id,
                "currency": invoice.currency, "amount_due": invoice.amount_due, "amount_paid": invoice.amount_paid,
                "amount_remaining": invoice.amount_remaining, "hosted_invoice_url": invoice.hosted_invoice_url,
                "invoice_pdf": invoice.invoice_pdf, "period_start": invoice.period_start, "period_end": invoice.period_end,
                "created": invoice.created, "attempt_count": invoice.attempt_count,
                "next_payment_attempt": invoice.next_payment_attempt, "billing_reason": invoice.billing_reason,
                "last_event": event_type,
            }),
        );
        let payment = PaymentIntentObject {
            id: "pi_1".into(),
            customer_id: Some("cus_1".into()),
            amount: Some(1000),
            amount_received: Some(1000),
            currency: Some("usd".into()),
            status: Some("succeeded".into()),
            metadata: metadata(),
            created: Some(1),
            invoice_id: None,
        };
        let BillingRecord::Payment {
            payment: intent, ..
        } = payment_intent_record("cus_1", &payment)
        else {
            panic!("a payment intent's record is a payment");
        };
        same(
            &intent,
            json!({"amount": payment.amount, "amount_received": payment.amount_received, "currency": payment.currency, "status": payment.status, "invoice": payment.invoice_id, "metadata": payment.metadata}),
        );
    }

    #[test]
    fn checkout_records_should_serialize_as_before() {
        let session = CheckoutSessionObject {
            id: "cs_1".into(),
            mode: Some("payment".into()),
            status: Some("complete".into()),
            payment_status: Some("paid".into()),
            customer_id: Some("cus_1".into()),
            customer_email: None,
            client_reference_id: None,
            metadata: metadata(),
            subscription_id: None,
            payment_intent_id: Some("pi_1".into()),
            amount_total: Some(1000),
            amount_subtotal: Some(900),
            currency: Some("usd".into()),
            created: Some(1),
            line_items: None,
        };
        let items = vec![CheckoutLineItem {
            price_id: Some("price_1".into()),
            product_id: None,
            quantity: Some(3),
            amount_total: Some(1000),
            currency: Some("usd".into()),
        }];
        let line_items: Vec<_> = items
            .iter()
            .map(|item| json!({"price": item.price_id, "product": item.product_id, "quantity": item.quantity, "amount_total": item.amount_total, "currency": item.currency}))
            .collect();
        same(
            &checkout_session_record(&session, &items),
            json!({
                "mode": session.mode, "status": session.status,
                "payment_status": session.payment_status, "subscription": session.subscription_id,
                "payment_intent": session.payment_intent_id, "amount_total": session.amount_total,
                "currency": session.currency, "line_items": line_items,
            }),
        );
        same(
            &PaymentRecord::Checkout(checkout_payment_record(&session)),
            json!({"amount": session.amount_total, "currency": session.currency, "status": session.payment_status, "checkout_session": session.id}),
        );
    }

    #[test]
    fn a_stored_payment_should_read_back_as_the_kind_it_was_written_as() {
        let checkout = PaymentRecord::Checkout(CheckoutPaymentRecord {
            amount: Some(1000),
            checkout_session: "cs_1".into(),
            currency: None,
            status: Some("paid".into()),
        });
        let intent = PaymentRecord::Intent(PaymentIntentRecord {
            amount: Some(1000),
            amount_received: None,
            currency: Some("usd".into()),
            invoice: None,
            metadata: Default::default(),
            status: Some("succeeded".into()),
        });
        for payment in [checkout, intent] {
            let stored = serde_json::to_string(&payment).unwrap();
            assert_eq!(
                serde_json::from_str::<PaymentRecord>(&stored).unwrap(),
                payment
            );
        }
    }
}
