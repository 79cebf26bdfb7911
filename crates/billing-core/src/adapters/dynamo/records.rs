//! Where each billing record lives in the table: its key, its secondary index entry (a price by
//! its lookup key) and its document.

use super::Item;
use super::items::{s, to_doc};
use crate::error::Result;
use crate::ports::BillingRecord;
use crate::table::{self, attr};

/// A record's item without its version attributes.
pub(super) fn record_item(record: &BillingRecord) -> Result<Item> {
    let (pk, sk) = record_key(record);
    let mut item = Item::from([
        (table::PK.to_owned(), s(pk)),
        (table::SK.to_owned(), s(sk)),
        (attr::DOC.to_owned(), document(record)?),
    ]);
    if let Some((gsi_pk, gsi_sk)) = record_gsi1(record) {
        item.insert(table::GSI1_PK.into(), s(gsi_pk));
        item.insert(table::GSI1_SK.into(), s(gsi_sk));
    }
    Ok(item)
}

pub(super) fn record_key(record: &BillingRecord) -> (String, String) {
    match record {
        BillingRecord::Product { product_id, .. } => {
            (table::product_pk(product_id), table::SK_PRODUCT.into())
        }
        BillingRecord::Price { price_id, .. } => {
            (table::price_pk(price_id), table::SK_PRICE.into())
        }
        BillingRecord::TaxRate { tax_rate_id, .. } => {
            (table::tax_rate_pk(tax_rate_id), table::SK_TAX_RATE.into())
        }
        BillingRecord::CustomerProfile { customer_id, .. } => {
            (table::customer_pk(customer_id), table::SK_PROFILE.into())
        }
        BillingRecord::Delinquency { customer_id, .. } => (
            table::customer_pk(customer_id),
            table::SK_DELINQUENCY.into(),
        ),
        BillingRecord::Invoice {
            customer_id,
            invoice_id,
            ..
        } => (
            table::customer_pk(customer_id),
            table::invoice_sk(invoice_id),
        ),
        BillingRecord::Payment {
            customer_id,
            payment_intent_id,
            ..
        } => (
            table::customer_pk(customer_id),
            table::payment_sk(payment_intent_id),
        ),
        BillingRecord::CheckoutSession {
            customer_id,
            session_id,
            ..
        } => (
            table::customer_pk(customer_id),
            table::checkout_pk(session_id),
        ),
        BillingRecord::InvoicePayment {
            customer_id,
            payment_intent_id,
            ..
        } => (
            table::customer_pk(customer_id),
            table::invoice_payment_sk(payment_intent_id),
        ),
    }
}

/// The catalogue a pricing page reads in one Query: every product, and the active prices
/// that have a lookup key.
pub(super) fn record_gsi1(record: &BillingRecord) -> Option<(String, String)> {
    match record {
        BillingRecord::Product { product_id, .. } => Some((
            table::GSI1_CATALOG.to_owned(),
            table::product_pk(product_id),
        )),
        BillingRecord::Price { price, .. } => price.active_lookup_key().map(|key| {
            (
                table::GSI1_CATALOG.to_owned(),
                table::lookup_key_gsi1sk(key),
            )
        }),
        _ => None,
    }
}

fn document(record: &BillingRecord) -> Result<aws_sdk_dynamodb::types::AttributeValue> {
    match record {
        BillingRecord::Product { product, .. } => to_doc(product),
        BillingRecord::Price { price, .. } => to_doc(price),
        BillingRecord::TaxRate { tax_rate, .. } => to_doc(tax_rate),
        BillingRecord::CustomerProfile { profile, .. } => to_doc(profile),
        BillingRecord::Delinquency { delinquency, .. } => to_doc(delinquency),
        BillingRecord::Invoice { invoice, .. } => to_doc(invoice),
        BillingRecord::Payment { payment, .. } => to_doc(payment),
        BillingRecord::CheckoutSession { session, .. } => to_doc(session),
        BillingRecord::InvoicePayment {
            invoice_payment, ..
        } => to_doc(invoice_payment),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{CheckoutPaymentRecord, DelinquencyRecord, PaymentRecord, PriceRecord};

    fn price(active: bool, lookup_key: Option<&str>) -> BillingRecord {
        BillingRecord::Price {
            price_id: "price_1".into(),
            price: PriceRecord {
                active,
                billing_scheme: None,
                currency: Some("usd".into()),
                lookup_key: lookup_key.map(str::to_owned),
                metadata: Default::default(),
                nickname: None,
                product: Some("prod_1".into()),
                recurring: None,
                tiers: Vec::new(),
                tiers_mode: None,
                price_type: Some("recurring".into()),
                unit_amount: Some(1000),
            },
        }
    }

    fn attribute(item: &Item, name: &str) -> Option<String> {
        item.get(name).and_then(|v| v.as_s().ok()).cloned()
    }

    #[test]
    fn an_active_price_with_a_lookup_key_should_be_indexed_by_it() {
        let item = record_item(&price(true, Some("pro_monthly"))).unwrap();
        assert_eq!(
            attribute(&item, table::PK).as_deref(),
            Some("PRICE#price_1")
        );
        assert_eq!(attribute(&item, table::SK).as_deref(), Some("PRICE"));
        assert_eq!(attribute(&item, table::GSI1_PK).as_deref(), Some("CATALOG"));
        assert_eq!(
            attribute(&item, table::GSI1_SK).as_deref(),
            Some("LOOKUP#pro_monthly")
        );
    }

    #[test]
    fn every_product_should_be_in_the_catalogue_index() {
        let product = BillingRecord::Product {
            product_id: "prod_1".into(),
            product: crate::ports::ProductRecord {
                active: false,
                metadata: Default::default(),
                name: None,
                plan: None,
            },
        };
        let item = record_item(&product).unwrap();
        assert_eq!(attribute(&item, table::GSI1_PK).as_deref(), Some("CATALOG"));
        assert_eq!(
            attribute(&item, table::GSI1_SK).as_deref(),
            Some("PRODUCT#prod_1")
        );
    }

    #[test]
    fn an_archived_price_or_one_without_lookup_key_should_not_be_indexed() {
        for record in [price(false, Some("pro_monthly")), price(true, None)] {
            let item = record_item(&record).unwrap();
            assert_eq!(attribute(&item, table::GSI1_PK), None, "{record:?}");
            assert_eq!(attribute(&item, table::GSI1_SK), None, "{record:?}");
        }
    }

    #[test]
    fn customer_records_should_live_under_the_customer() {
        let delinquency = BillingRecord::Delinquency {
            customer_id: "cus_1".into(),
            delinquency: DelinquencyRecord {
                delinquent: true,
                invoice: "in_1".into(),
            },
        };
        let payment = BillingRecord::Payment {
            customer_id: "cus_1".into(),
            payment_intent_id: "pi_1".into(),
            payment: PaymentRecord::Checkout(CheckoutPaymentRecord {
                amount: Some(1000),
                checkout_session: "cs_1".into(),
                currency: Some("usd".into()),
                status: Some("paid".into()),
            }),
        };
        let delinquency = record_item(&delinquency).unwrap();
        assert_eq!(
            attribute(&delinquency, table::PK).as_deref(),
            Some("CUSTOMER#cus_1")
        );
        assert_eq!(
            attribute(&delinquency, table::SK).as_deref(),
            Some("DELINQUENCY")
        );
        assert_eq!(
            attribute(&delinquency, attr::DOC).as_deref(),
            Some(r#"{"delinquent":true,"invoice":"in_1"}"#)
        );
        let payment = record_item(&payment).unwrap();
        assert_eq!(
            attribute(&payment, table::SK).as_deref(),
            Some("PAYMENT#pi_1")
        );
        assert_eq!(
            attribute(&payment, attr::DOC).as_deref(),
            Some(r#"{"amount":1000,"checkout_session":"cs_1","currency":"usd","status":"paid"}"#),
            "the payment itself, not an enum around it"
        );
    }
}
