//! What the webhook keeps of the billing objects a billing page shows (catalogue, customers'
//! profiles, invoices, payments, checkout sessions): a few fields, never the whole Stripe object.
//!
//! Each record serializes to the stored document: fields are declared in the order of their
//! names, the order in which the documents have always been written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::plans::PlanName;

/// A record with the Stripe ids that identify it. Customer ids are kept as Stripe sent them.
#[derive(Debug, Clone, PartialEq)]
pub enum BillingRecord {
    Product {
        product_id: String,
        product: ProductRecord,
    },
    Price {
        price_id: String,
        price: PriceRecord,
    },
    TaxRate {
        tax_rate_id: String,
        tax_rate: TaxRateRecord,
    },
    CustomerProfile {
        customer_id: String,
        profile: CustomerProfile,
    },
    Delinquency {
        customer_id: String,
        delinquency: DelinquencyRecord,
    },
    Invoice {
        customer_id: String,
        invoice_id: String,
        invoice: InvoiceRecord,
    },
    Payment {
        customer_id: String,
        payment_intent_id: String,
        payment: PaymentRecord,
    },
    CheckoutSession {
        customer_id: String,
        session_id: String,
        session: CheckoutSessionRecord,
    },
    /// Which invoice a payment paid: since API 2025-03-31 only `invoice_payment` events say so.
    /// Kept beside the payment's own record, so neither overwrites the other.
    InvoicePayment {
        customer_id: String,
        payment_intent_id: String,
        invoice_payment: InvoicePaymentRecord,
    },
}

/// The kinds of records: with the id of [`BillingRecord::id`], what identifies a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    Product,
    Price,
    TaxRate,
    CustomerProfile,
    Delinquency,
    Invoice,
    Payment,
    CheckoutSession,
    InvoicePayment,
}

impl BillingRecord {
    pub fn kind(&self) -> RecordKind {
        match self {
            Self::Product { .. } => RecordKind::Product,
            Self::Price { .. } => RecordKind::Price,
            Self::TaxRate { .. } => RecordKind::TaxRate,
            Self::CustomerProfile { .. } => RecordKind::CustomerProfile,
            Self::Delinquency { .. } => RecordKind::Delinquency,
            Self::Invoice { .. } => RecordKind::Invoice,
            Self::Payment { .. } => RecordKind::Payment,
            Self::CheckoutSession { .. } => RecordKind::CheckoutSession,
            Self::InvoicePayment { .. } => RecordKind::InvoicePayment,
        }
    }

    /// The same record (same kind and ids) with the content of a stored document.
    pub fn with_document(&self, document: &str) -> serde_json::Result<Self> {
        let mut record = self.clone();
        match &mut record {
            Self::Product { product, .. } => *product = serde_json::from_str(document)?,
            Self::Price { price, .. } => *price = serde_json::from_str(document)?,
            Self::TaxRate { tax_rate, .. } => *tax_rate = serde_json::from_str(document)?,
            Self::CustomerProfile { profile, .. } => *profile = serde_json::from_str(document)?,
            Self::Delinquency { delinquency, .. } => *delinquency = serde_json::from_str(document)?,
            Self::Invoice { invoice, .. } => *invoice = serde_json::from_str(document)?,
            Self::Payment { payment, .. } => *payment = serde_json::from_str(document)?,
            Self::CheckoutSession { session, .. } => *session = serde_json::from_str(document)?,
            Self::InvoicePayment {
                invoice_payment, ..
            } => *invoice_payment = serde_json::from_str(document)?,
        }
        Ok(record)
    }

    /// The customer the record belongs to; `None` for the catalogue.
    pub fn customer_id(&self) -> Option<&str> {
        match self {
            Self::Product { .. } | Self::Price { .. } | Self::TaxRate { .. } => None,
            Self::CustomerProfile { customer_id, .. }
            | Self::Delinquency { customer_id, .. }
            | Self::Invoice { customer_id, .. }
            | Self::Payment { customer_id, .. }
            | Self::CheckoutSession { customer_id, .. }
            | Self::InvoicePayment { customer_id, .. } => Some(customer_id),
        }
    }

    /// The Stripe id of the object recorded; the customer's for its profile and delinquency.
    pub fn id(&self) -> &str {
        match self {
            Self::Product { product_id: id, .. }
            | Self::Price { price_id: id, .. }
            | Self::TaxRate {
                tax_rate_id: id, ..
            }
            | Self::CustomerProfile {
                customer_id: id, ..
            }
            | Self::Delinquency {
                customer_id: id, ..
            }
            | Self::Invoice { invoice_id: id, .. }
            | Self::Payment {
                payment_intent_id: id,
                ..
            }
            | Self::CheckoutSession { session_id: id, .. }
            | Self::InvoicePayment {
                payment_intent_id: id,
                ..
            } => id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRecord {
    /// False once the product is archived or deleted.
    pub active: bool,
    pub metadata: BTreeMap<String, String>,
    pub name: Option<String>,
    pub plan: Option<PlanName>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceRecord {
    /// False once the price is archived or deleted; only an active price is found by its
    /// lookup key.
    pub active: bool,
    pub billing_scheme: Option<String>,
    pub currency: Option<String>,
    pub lookup_key: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub nickname: Option<String>,
    pub product: Option<String>,
    pub recurring: Option<RecurringRecord>,
    pub tiers: Vec<TierRecord>,
    pub tiers_mode: Option<String>,
    /// `one_time` or `recurring`.
    #[serde(rename = "type")]
    pub price_type: Option<String>,
    pub unit_amount: Option<i64>,
}

impl PriceRecord {
    /// The lookup key checkout finds this price by: only an active price has one.
    pub fn active_lookup_key(&self) -> Option<&str> {
        self.lookup_key.as_deref().filter(|_| self.active)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurringRecord {
    pub interval: Option<String>,
    pub interval_count: Option<i64>,
    /// The Billing Meter of a metered price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<String>,
    pub trial_period_days: Option<i64>,
    /// `metered` or `licensed`; absent from documents stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierRecord {
    pub flat_amount: Option<i64>,
    pub unit_amount: Option<i64>,
    /// `None` for the last tier.
    pub up_to: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaxRateRecord {
    pub active: bool,
    pub country: Option<String>,
    pub display_name: Option<String>,
    pub inclusive: bool,
    pub jurisdiction: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub percentage: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerProfile {
    pub deleted: bool,
    /// Always false here: the delinquency record follows the invoices.
    pub delinquent: bool,
    pub metadata: BTreeMap<String, String>,
    pub name: Option<String>,
}

/// Whether the customer's last invoice event was a failed or a successful payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelinquencyRecord {
    pub delinquent: bool,
    /// The invoice that decided it.
    pub invoice: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRecord {
    pub amount_due: Option<i64>,
    pub amount_paid: Option<i64>,
    pub amount_remaining: Option<i64>,
    pub attempt_count: Option<i64>,
    pub billing_reason: Option<String>,
    pub created: Option<i64>,
    pub currency: Option<String>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    /// The type of the event that carried this state, e.g. `invoice.payment_failed`.
    pub last_event: String,
    pub next_payment_attempt: Option<i64>,
    pub number: Option<String>,
    pub period_end: Option<i64>,
    pub period_start: Option<i64>,
    pub status: Option<String>,
    pub subscription: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePaymentRecord {
    pub amount_paid: Option<i64>,
    pub currency: Option<String>,
    pub invoice: String,
    pub invoice_payment: String,
    pub status: Option<String>,
}

/// A payment, as its payment intent's events tell it or as the Checkout session that took it
/// does: both are stored under the payment intent, the newer event's version winning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PaymentRecord {
    Intent(PaymentIntentRecord),
    Checkout(CheckoutPaymentRecord),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentIntentRecord {
    pub amount: Option<i64>,
    pub amount_received: Option<i64>,
    pub currency: Option<String>,
    pub invoice: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutPaymentRecord {
    /// The session's `amount_total`.
    pub amount: Option<i64>,
    pub checkout_session: String,
    pub currency: Option<String>,
    /// The session's `payment_status`.
    pub status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutSessionRecord {
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub line_items: Vec<LineItemRecord>,
    pub mode: Option<String>,
    pub payment_intent: Option<String>,
    pub payment_status: Option<String>,
    pub status: Option<String>,
    pub subscription: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItemRecord {
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub price: Option<String>,
    pub product: Option<String>,
    pub quantity: Option<i64>,
}
