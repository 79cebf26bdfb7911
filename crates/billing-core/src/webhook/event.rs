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

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::Value;

use crate::domain::{Email, customer_metadata};
use crate::plans::{PlanName, SubscriptionState};

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
    /// An object we do not handle, with its `object` value.
    Other {
        object_type: Option<String>,
    },
}

impl EventObject {
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
            Self::Other { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductObject {
    pub id: String,
    pub name: Option<String>,
    /// False when absent from a deleted product.
    pub active: bool,
    pub metadata: Metadata,
    /// The object says `deleted: true`, or the event is `product.deleted`.
    pub deleted: bool,
}

impl ProductObject {
    /// The plan named by the metadata `plan`, if valid.
    pub fn plan(&self) -> Option<PlanName> {
        plan_in(&self.metadata)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceObject {
    pub id: String,
    pub product_id: Option<String>,
    /// The product's metadata, when the event carries the product expanded.
    pub product_metadata: Option<Metadata>,
    /// False when absent from a deleted price.
    pub active: bool,
    pub currency: Option<String>,
    pub unit_amount: Option<i64>,
    /// `one_time` or `recurring`; derived from `recurring` when `type` is absent (old API);
    /// `None` for a deleted price that says neither.
    pub price_type: Option<String>,
    pub recurring: Option<PriceRecurring>,
    pub lookup_key: Option<String>,
    pub nickname: Option<String>,
    pub billing_scheme: Option<String>,
    pub tiers_mode: Option<String>,
    /// Present only when Stripe was asked to expand them.
    pub tiers: Vec<PriceTier>,
    pub metadata: Metadata,
    /// The object says `deleted: true`, or the event is `price.deleted`.
    pub deleted: bool,
}

impl PriceObject {
    pub fn is_recurring(&self) -> bool {
        self.price_type.as_deref() == Some("recurring")
    }

    /// The plan named by the price's metadata `plan`, else by the expanded product's.
    pub fn plan(&self) -> Option<PlanName> {
        plan_in(&self.metadata).or_else(|| self.product_metadata.as_ref().and_then(plan_in))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRecurring {
    pub interval: Option<String>,
    pub interval_count: Option<i64>,
    pub trial_period_days: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTier {
    /// `None` for the last tier (`"inf"` or null).
    pub up_to: Option<i64>,
    pub unit_amount: Option<i64>,
    pub flat_amount: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaxRateObject {
    pub id: String,
    pub display_name: Option<String>,
    pub percentage: Option<f64>,
    pub inclusive: bool,
    pub active: bool,
    pub jurisdiction: Option<String>,
    pub country: Option<String>,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerObject {
    pub id: String,
    /// `None` when absent or not an address.
    pub email: Option<Email>,
    pub name: Option<String>,
    pub metadata: Metadata,
    /// The object says `deleted: true`, or the event is `customer.deleted` (whose object is the
    /// customer as it was, without the flag).
    pub deleted: bool,
    pub created: Option<i64>,
}

impl CustomerObject {
    /// The Cognito user the customer was created for, from its metadata.
    pub fn cognito_sub(&self) -> Option<&str> {
        self.metadata
            .get(customer_metadata::COGNITO_SUB)
            .map(String::as_str)
            .filter(|sub| !sub.is_empty())
    }
}

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutLineItem {
    pub price_id: Option<String>,
    pub product_id: Option<String>,
    pub quantity: Option<i64>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
}

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

/// Parses a webhook body (already verified) into the fields we use.
pub fn parse_event(raw: &[u8]) -> Result<StripeEvent, EventParseError> {
    let root: Value = serde_json::from_slice(raw).map_err(EventParseError::NotJson)?;
    let envelope: RawEnvelope = deserialize_at(&root, &[])?;
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
        &["data", "object", "object"],
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
    const AT: &[&str] = &["data", "object"];
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
        _ => EventObject::Other { object_type },
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

// ---- what we read, as Stripe sends it --------------------------------------------------------

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

#[derive(Deserialize)]
struct RawProduct {
    id: String,
    name: Option<String>,
    active: Option<bool>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
    #[serde(default, deserialize_with = "null_as_default")]
    deleted: bool,
}

impl RawProduct {
    fn into_object(self, deleted_by_event: bool) -> ProductObject {
        ProductObject {
            id: self.id,
            name: self.name,
            active: self.active.unwrap_or(!self.deleted),
            metadata: self.metadata,
            deleted: self.deleted || deleted_by_event,
        }
    }
}

#[derive(Deserialize)]
struct RawPrice {
    id: String,
    product: Option<Expandable<RawProductRef>>,
    active: Option<bool>,
    currency: Option<String>,
    unit_amount: Option<i64>,
    #[serde(rename = "type")]
    price_type: Option<String>,
    recurring: Option<RawRecurring>,
    lookup_key: Option<String>,
    nickname: Option<String>,
    billing_scheme: Option<String>,
    tiers_mode: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    tiers: Vec<RawTier>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
    #[serde(default, deserialize_with = "null_as_default")]
    deleted: bool,
}

impl RawPrice {
    fn into_object(self, deleted_by_event: bool) -> PriceObject {
        let price_type = self
            .price_type
            .or_else(|| match (&self.recurring, self.deleted) {
                (Some(_), _) => Some("recurring".to_owned()),
                (None, false) => Some("one_time".to_owned()),
                (None, true) => None,
            });
        PriceObject {
            product_id: self.product.as_ref().map(|product| product.id().to_owned()),
            product_metadata: self
                .product
                .and_then(Expandable::into_object)
                .map(|product| product.metadata),
            id: self.id,
            active: self.active.unwrap_or(!self.deleted),
            currency: self.currency,
            unit_amount: self.unit_amount,
            price_type,
            recurring: self.recurring.map(|recurring| PriceRecurring {
                interval: recurring.interval,
                interval_count: recurring.interval_count,
                trial_period_days: recurring.trial_period_days,
            }),
            lookup_key: self.lookup_key,
            nickname: self.nickname,
            billing_scheme: self.billing_scheme,
            tiers_mode: self.tiers_mode,
            tiers: self
                .tiers
                .into_iter()
                .map(|tier| PriceTier {
                    up_to: tier.up_to.and_then(|up_to| up_to.0),
                    unit_amount: tier.unit_amount,
                    flat_amount: tier.flat_amount,
                })
                .collect(),
            metadata: self.metadata,
            deleted: self.deleted || deleted_by_event,
        }
    }
}

#[derive(Deserialize)]
struct RawRecurring {
    interval: Option<String>,
    interval_count: Option<i64>,
    trial_period_days: Option<i64>,
}

#[derive(Deserialize)]
struct RawTier {
    up_to: Option<TierUpTo>,
    unit_amount: Option<i64>,
    flat_amount: Option<i64>,
}

#[derive(Deserialize)]
struct RawTaxRate {
    id: String,
    display_name: Option<String>,
    percentage: Option<f64>,
    inclusive: Option<bool>,
    active: Option<bool>,
    jurisdiction: Option<String>,
    country: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
}

impl From<RawTaxRate> for TaxRateObject {
    fn from(raw: RawTaxRate) -> Self {
        Self {
            id: raw.id,
            display_name: raw.display_name,
            percentage: raw.percentage,
            inclusive: raw.inclusive.unwrap_or(false),
            active: raw.active.unwrap_or(true),
            jurisdiction: raw.jurisdiction,
            country: raw.country,
            metadata: raw.metadata,
        }
    }
}

#[derive(Deserialize)]
struct RawCustomer {
    id: String,
    email: Option<String>,
    name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
    #[serde(default, deserialize_with = "null_as_default")]
    deleted: bool,
    created: Option<i64>,
}

impl RawCustomer {
    fn into_object(self, deleted_by_event: bool) -> CustomerObject {
        CustomerObject {
            id: self.id,
            email: email(self.email),
            name: self.name,
            metadata: self.metadata,
            deleted: self.deleted || deleted_by_event,
            created: self.created,
        }
    }
}

#[derive(Deserialize)]
struct RawCheckoutSession {
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

#[derive(Deserialize)]
struct RawSubscription {
    id: String,
    customer: Expandable<RawIdOnly>,
    status: String,
    created: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    cancel_at_period_end: bool,
    /// Old API only.
    current_period_end: Option<i64>,
    items: Option<RawList<RawSubscriptionItem>>,
    /// Old API only: the first item's plan.
    plan: Option<Expandable<RawPriceRef>>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
}

#[derive(Deserialize)]
struct RawSubscriptionItem {
    price: Option<Expandable<RawPriceRef>>,
    plan: Option<Expandable<RawPriceRef>>,
    /// Current API only.
    current_period_end: Option<i64>,
}

impl From<RawSubscription> for SubscriptionState {
    fn from(raw: RawSubscription) -> Self {
        let items = raw.items.map(|list| list.data).unwrap_or_default();
        let items_period_end = items
            .iter()
            .filter_map(|item| item.current_period_end)
            .max();
        // A current item may also carry a legacy `plan`; its `price` is the reference.
        let first = items.first();
        let price = first.and_then(|item| item.price.as_ref());
        let legacy_plan = first
            .and_then(|item| item.plan.as_ref())
            .or(raw.plan.as_ref());
        let priced = price.or(legacy_plan);
        let Ok(status) = raw.status.parse();
        SubscriptionState {
            id: raw.id,
            customer_id: raw.customer.id().to_owned(),
            status,
            plan: price
                .and_then(plan_of)
                .or_else(|| legacy_plan.and_then(plan_of)),
            price_id: id_of(priced),
            product_id: price
                .and_then(product_id_of)
                .or_else(|| legacy_plan.and_then(product_id_of)),
            current_period_end: items_period_end.or(raw.current_period_end),
            cancel_at_period_end: raw.cancel_at_period_end,
            past_due_since: None,
            created: raw.created,
            metadata: raw.metadata,
        }
    }
}

#[derive(Deserialize)]
struct RawInvoice {
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

#[derive(Deserialize)]
struct RawPaymentIntent {
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

#[derive(Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
struct RawList<T> {
    #[serde(default, deserialize_with = "null_as_default")]
    data: Vec<T>,
}

#[derive(Deserialize)]
struct RawIdOnly {
    id: String,
}

/// An expanded product, or a deleted one.
#[derive(Deserialize)]
struct RawProductRef {
    id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
}

/// A price, or an old API plan: the fields they share and we use.
#[derive(Deserialize)]
struct RawPriceRef {
    id: String,
    product: Option<Expandable<RawProductRef>>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
}

trait HasId {
    fn id(&self) -> &str;
}

impl HasId for RawIdOnly {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for RawProductRef {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for RawPriceRef {
    fn id(&self) -> &str {
        &self.id
    }
}

/// A reference Stripe sends as an id, or as the object when expanded.
enum Expandable<T> {
    Id(String),
    Object(T),
}

impl<T: HasId> Expandable<T> {
    fn id(&self) -> &str {
        match self {
            Self::Id(id) => id,
            Self::Object(object) => object.id(),
        }
    }

    fn into_object(self) -> Option<T> {
        match self {
            Self::Id(_) => None,
            Self::Object(object) => Some(object),
        }
    }
}

fn id_of<T: HasId>(reference: Option<&Expandable<T>>) -> Option<String> {
    reference.map(|reference| reference.id().to_owned())
}

fn product_id_of(price: &Expandable<RawPriceRef>) -> Option<String> {
    match price {
        Expandable::Id(_) => None,
        Expandable::Object(price) => id_of(price.product.as_ref()),
    }
}

/// The plan named by a price's (or plan's) metadata, else by its expanded product's.
fn plan_of(price: &Expandable<RawPriceRef>) -> Option<PlanName> {
    let Expandable::Object(price) = price else {
        return None;
    };
    plan_in(&price.metadata).or_else(|| match &price.product {
        Some(Expandable::Object(product)) => plan_in(&product.metadata),
        _ => None,
    })
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Expandable<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExpandableVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ExpandableVisitor<T> {
            type Value = Expandable<T>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an id or an expanded object")
            }

            fn visit_str<E: de::Error>(self, id: &str) -> Result<Self::Value, E> {
                Ok(Expandable::Id(id.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Expandable::Object)
            }
        }

        deserializer.deserialize_any(ExpandableVisitor(PhantomData))
    }
}

/// A tier's `up_to`: a quantity, or `"inf"` (null in some shapes) for the last tier.
struct TierUpTo(Option<i64>);

impl<'de> Deserialize<'de> for TierUpTo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UpToVisitor;

        impl Visitor<'_> for UpToVisitor {
            type Value = TierUpTo;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an integer or \"inf\"")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Ok(TierUpTo(Some(value)))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                i64::try_from(value)
                    .map(|value| TierUpTo(Some(value)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                if value == "inf" {
                    Ok(TierUpTo(None))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(value), &self))
                }
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(TierUpTo(None))
            }
        }

        deserializer.deserialize_any(UpToVisitor)
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

// ---- deserializing a JSON value while keeping the path, for errors that name the field -------

fn deserialize_at<T: DeserializeOwned>(value: &Value, at: &[&str]) -> Result<T, EventParseError> {
    T::deserialize(PathValue(value)).map_err(|error| {
        let mut field = at.join(".");
        for segment in &error.path {
            match segment {
                PathSegment::Key(key) => {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(key);
                }
                PathSegment::Index(index) => field.push_str(&format!("[{index}]")),
            }
        }
        if field.is_empty() {
            field.push_str("event");
        }
        EventParseError::InvalidField {
            field,
            reason: error.message,
        }
    })
}

#[derive(Debug)]
enum PathSegment {
    Key(String),
    Index(usize),
}

#[derive(Debug)]
struct FieldError {
    /// From the value deserialized down to the offending field.
    path: Vec<PathSegment>,
    message: String,
}

impl FieldError {
    fn within(mut self, segment: PathSegment) -> Self {
        self.path.insert(0, segment);
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FieldError {}

impl de::Error for FieldError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self {
            path: Vec::new(),
            message: message.to_string(),
        }
    }
}

/// A `serde_json::Value` as a deserializer whose errors say where they happened.
#[derive(Clone, Copy)]
struct PathValue<'a>(&'a Value);

impl<'de> Deserializer<'de> for PathValue<'_> {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(value) => visitor.visit_bool(*value),
            Value::Number(number) => {
                if let Some(value) = number.as_u64() {
                    visitor.visit_u64(value)
                } else if let Some(value) = number.as_i64() {
                    visitor.visit_i64(value)
                } else if let Some(value) = number.as_f64() {
                    visitor.visit_f64(value)
                } else {
                    Err(de::Error::custom(format!("unsupported number {number}")))
                }
            }
            Value::String(value) => visitor.visit_str(value),
            Value::Array(items) => visitor.visit_seq(PathSeq {
                items: items.iter().enumerate(),
            }),
            Value::Object(entries) => visitor.visit_map(PathMap {
                entries: entries.iter(),
                pending_value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        if self.0.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    // Skips the fields we do not read without walking them.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
    }
}

struct PathSeq<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Value>>,
}

impl<'de> SeqAccess<'de> for PathSeq<'_> {
    type Error = FieldError;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, FieldError> {
        let Some((index, item)) = self.items.next() else {
            return Ok(None);
        };
        seed.deserialize(PathValue(item))
            .map(Some)
            .map_err(|error| error.within(PathSegment::Index(index)))
    }
}

struct PathMap<'a> {
    entries: serde_json::map::Iter<'a>,
    pending_value: Option<(&'a String, &'a Value)>,
}

impl<'de> MapAccess<'de> for PathMap<'_> {
    type Error = FieldError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, FieldError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending_value = Some((key, value));
        let key: de::value::StrDeserializer<'_, FieldError> = key.as_str().into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, FieldError> {
        let Some((key, value)) = self.pending_value.take() else {
            return Err(de::Error::custom("a map value was read before its key"));
        };
        seed.deserialize(PathValue(value))
            .map_err(|error| error.within(PathSegment::Key(key.clone())))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plans::SubscriptionStatus;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhook");

    /// An object from Stripe's current-API fixtures (a copy of part of fixtures3.json).
    fn stripe_fixture(resource: &str) -> Value {
        let path = format!("{FIXTURES}/stripe-openapi/fixtures3-subset.json");
        let all: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let object = all["resources"][resource].clone();
        assert!(object.is_object(), "no fixture {resource}");
        object
    }

    /// An event as the local emulator (localstripe, 2017-era shapes) sends it.
    fn localstripe_event(file: &str) -> StripeEvent {
        let path = format!("{FIXTURES}/localstripe/{file}");
        parse_event(&std::fs::read(path).unwrap()).unwrap()
    }

    fn envelope(event_type: &str, object: Value) -> Vec<u8> {
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

    fn parse(event_type: &str, object: Value) -> EventObject {
        parse_event(&envelope(event_type, object)).unwrap().object
    }

    fn parse_error(event_type: &str, object: Value) -> (String, String) {
        match parse_event(&envelope(event_type, object)) {
            Err(EventParseError::InvalidField { field, reason }) => (field, reason),
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    fn plan(name: &str) -> Option<PlanName> {
        PlanName::parse(name)
    }

    fn metadata(pairs: &[(&str, &str)]) -> Metadata {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn product(object: EventObject) -> ProductObject {
        match object {
            EventObject::Product(product) => product,
            other => panic!("expected a product, got {other:?}"),
        }
    }

    fn price(object: EventObject) -> PriceObject {
        match object {
            EventObject::Price(price) => price,
            other => panic!("expected a price, got {other:?}"),
        }
    }

    fn customer(object: EventObject) -> CustomerObject {
        match object {
            EventObject::Customer(customer) => customer,
            other => panic!("expected a customer, got {other:?}"),
        }
    }

    fn session(object: EventObject) -> CheckoutSessionObject {
        match object {
            EventObject::CheckoutSession(session) => session,
            other => panic!("expected a checkout session, got {other:?}"),
        }
    }

    fn subscription(object: EventObject) -> SubscriptionState {
        match object {
            EventObject::Subscription(subscription) => subscription,
            other => panic!("expected a subscription, got {other:?}"),
        }
    }

    fn invoice(object: EventObject) -> InvoiceObject {
        match object {
            EventObject::Invoice(invoice) => invoice,
            other => panic!("expected an invoice, got {other:?}"),
        }
    }

    fn payment_intent(object: EventObject) -> PaymentIntentObject {
        match object {
            EventObject::PaymentIntent(payment_intent) => payment_intent,
            other => panic!("expected a payment intent, got {other:?}"),
        }
    }

    // ---- current API (Stripe's fixtures) -----------------------------------------------------

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
    fn when_product_is_current_should_keep_its_fields() {
        let product = product(parse("product.updated", stripe_fixture("product")));
        assert_eq!(
            product,
            ProductObject {
                id: "prod_QXg1hqf4jFNsqG".into(),
                name: Some("T-shirt".into()),
                active: true,
                metadata: Metadata::new(),
                deleted: false,
            }
        );
        assert_eq!(product.plan(), None);
    }

    #[test]
    fn when_product_metadata_names_a_plan_should_expose_it() {
        let mut object = stripe_fixture("product");
        object["metadata"] = json!({ "plan": "pro" });
        assert_eq!(
            product(parse("product.updated", object)).plan(),
            plan("pro")
        );
    }

    #[test]
    fn when_price_is_current_should_keep_its_fields() {
        let price = price(parse("price.created", stripe_fixture("price")));
        assert_eq!(
            price,
            PriceObject {
                id: "price_1PgafmB7WZ01zgkW6dKueIc5".into(),
                product_id: Some("prod_QXg1hqf4jFNsqG".into()),
                product_metadata: None,
                active: true,
                currency: Some("usd".into()),
                unit_amount: Some(2000),
                price_type: Some("recurring".into()),
                recurring: Some(PriceRecurring {
                    interval: Some("month".into()),
                    interval_count: Some(1),
                    trial_period_days: None,
                }),
                lookup_key: None,
                nickname: None,
                billing_scheme: Some("per_unit".into()),
                tiers_mode: None,
                tiers: Vec::new(),
                metadata: Metadata::new(),
                deleted: false,
            }
        );
        assert!(price.is_recurring());
        assert_eq!(price.plan(), None);
    }

    #[test]
    fn when_price_has_its_product_expanded_should_take_the_id_and_plan() {
        let mut product = stripe_fixture("product");
        product["metadata"] = json!({ "plan": "pro" });
        let mut object = stripe_fixture("price");
        object["product"] = product;
        object["lookup_key"] = json!("pro_monthly");
        let price = price(parse("price.updated", object));
        assert_eq!(price.product_id.as_deref(), Some("prod_QXg1hqf4jFNsqG"));
        assert_eq!(price.product_metadata, Some(metadata(&[("plan", "pro")])));
        assert_eq!(price.lookup_key.as_deref(), Some("pro_monthly"));
        assert_eq!(price.plan(), plan("pro"));
    }

    #[test]
    fn when_price_metadata_names_a_plan_should_prefer_it_to_the_product() {
        let mut object = stripe_fixture("price");
        object["metadata"] = json!({ "plan": "enterprise" });
        object["product"] = json!({ "id": "prod_1", "metadata": { "plan": "pro" } });
        assert_eq!(
            price(parse("price.updated", object)).plan(),
            plan("enterprise")
        );
    }

    #[test]
    fn when_price_is_old_shaped_without_type_should_derive_it_from_recurring() {
        let one_time = json!({ "object": "price", "id": "price_1", "unit_amount": 500 });
        assert_eq!(
            price(parse("price.created", one_time))
                .price_type
                .as_deref(),
            Some("one_time")
        );
        let recurring = json!({
            "object": "price", "id": "price_2", "recurring": { "interval": "year" },
        });
        let recurring = price(parse("price.created", recurring));
        assert!(recurring.is_recurring());
        assert_eq!(
            recurring.recurring.unwrap().interval.as_deref(),
            Some("year")
        );
    }

    #[test]
    fn when_tiers_end_with_inf_or_null_should_leave_the_last_unbounded() {
        let mut object = stripe_fixture("price");
        object["billing_scheme"] = json!("tiered");
        object["tiers_mode"] = json!("graduated");
        object["unit_amount"] = Value::Null;
        object["tiers"] = json!([
            { "up_to": 10, "unit_amount": 500, "flat_amount": null },
            { "up_to": 100, "unit_amount": 400, "flat_amount": 100, "unit_amount_decimal": "400" },
            { "up_to": "inf", "unit_amount": 300 },
        ]);
        let price = price(parse("price.created", object.clone()));
        assert_eq!(price.unit_amount, None);
        assert_eq!(price.tiers_mode.as_deref(), Some("graduated"));
        assert_eq!(
            price.tiers,
            vec![
                PriceTier {
                    up_to: Some(10),
                    unit_amount: Some(500),
                    flat_amount: None
                },
                PriceTier {
                    up_to: Some(100),
                    unit_amount: Some(400),
                    flat_amount: Some(100)
                },
                PriceTier {
                    up_to: None,
                    unit_amount: Some(300),
                    flat_amount: None
                },
            ]
        );

        object["tiers"][2]["up_to"] = Value::Null;
        let price_with_null = self::price(parse("price.created", object.clone()));
        assert_eq!(price_with_null.tiers[2].up_to, None);

        object["tiers"][2]["up_to"] = json!("lots");
        let (field, reason) = parse_error("price.created", object);
        assert_eq!(field, "data.object.tiers[2].up_to");
        assert!(reason.contains("lots"), "{reason}");
    }

    #[test]
    fn when_tax_rate_is_current_should_keep_its_fields() {
        let EventObject::TaxRate(tax_rate) = parse("tax_rate.created", stripe_fixture("tax_rate"))
        else {
            panic!("expected a tax rate");
        };
        assert_eq!(
            tax_rate,
            TaxRateObject {
                id: "txr_1Pgc7BB7WZ01zgkW4Iwwvf6z".into(),
                display_name: Some("VAT".into()),
                percentage: Some(19.0),
                inclusive: false,
                active: true,
                jurisdiction: Some("DE".into()),
                country: Some("DE".into()),
                metadata: Metadata::new(),
            }
        );
    }

    #[test]
    fn when_customer_is_current_should_keep_its_fields() {
        let mut object = stripe_fixture("customer");
        let plain = customer(parse("customer.created", object.clone()));
        assert_eq!(
            plain,
            CustomerObject {
                id: "cus_QXg1o8vcGmoR32".into(),
                email: None,
                name: None,
                metadata: Metadata::new(),
                deleted: false,
                created: Some(1_234_567_890),
            }
        );
        object["email"] = json!("alice@example.com");
        object["name"] = json!("Alice");
        object["metadata"] = json!({ "cognito_sub": "4f1c-sub" });
        let linked = customer(parse("customer.updated", object));
        assert_eq!(linked.email.as_ref().unwrap().as_str(), "alice@example.com");
        assert_eq!(linked.name.as_deref(), Some("Alice"));
        assert_eq!(linked.cognito_sub(), Some("4f1c-sub"));
    }

    #[test]
    fn when_customer_email_is_not_an_address_should_drop_it() {
        let mut object = stripe_fixture("customer");
        object["email"] = json!("not an email");
        assert_eq!(customer(parse("customer.updated", object)).email, None);
    }

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

    #[test]
    fn when_subscription_is_current_should_take_price_and_period_from_the_items() {
        let subscription = subscription(parse(
            "customer.subscription.updated",
            stripe_fixture("subscription"),
        ));
        assert_eq!(
            subscription,
            SubscriptionState {
                id: "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw".into(),
                customer_id: "cus_QXg1o8vcGmoR32".into(),
                status: SubscriptionStatus::Active,
                plan: None,
                // The item's price, not its legacy `plan` (obj_123, product null).
                price_id: Some("price_1PgafmB7WZ01zgkW6dKueIc5".into()),
                product_id: Some("prod_QXg1hqf4jFNsqG".into()),
                current_period_end: Some(976_287_773),
                cancel_at_period_end: true,
                past_due_since: None,
                created: 1_234_567_890,
                metadata: Metadata::new(),
            }
        );
    }

    #[test]
    fn when_subscription_has_several_items_should_end_the_period_at_the_latest() {
        let mut object = stripe_fixture("subscription");
        let mut second = object["items"]["data"][0].clone();
        second["id"] = json!("si_second");
        second["current_period_end"] = json!(2_000_000_000);
        object["items"]["data"].as_array_mut().unwrap().push(second);
        let subscription = subscription(parse("customer.subscription.updated", object));
        assert_eq!(subscription.current_period_end, Some(2_000_000_000));
    }

    #[test]
    fn when_subscription_price_or_its_product_names_a_plan_should_take_it() {
        let mut object = stripe_fixture("subscription");
        object["metadata"] = json!({ "cognito_sub": "4f1c-sub" });
        object["items"]["data"][0]["price"]["metadata"] = json!({ "plan": "pro" });
        let by_price = subscription(parse("customer.subscription.created", object.clone()));
        assert_eq!(by_price.plan, plan("pro"));
        assert_eq!(by_price.metadata, metadata(&[("cognito_sub", "4f1c-sub")]));

        object["items"]["data"][0]["price"]["metadata"] = json!({});
        object["items"]["data"][0]["price"]["product"] =
            json!({ "id": "prod_expanded", "object": "product", "metadata": { "plan": "team" } });
        let by_product = subscription(parse("customer.subscription.created", object));
        assert_eq!(by_product.plan, plan("team"));
        assert_eq!(by_product.product_id.as_deref(), Some("prod_expanded"));
    }

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
    fn when_object_is_a_deleted_stub_should_say_deleted() {
        let customer = customer(parse(
            "customer.deleted",
            stripe_fixture("deleted_customer"),
        ));
        assert!(customer.deleted);
        assert_eq!(customer.id, "cus_QXg1o8vcGmoR32");

        let product = product(parse("product.deleted", stripe_fixture("deleted_product")));
        assert!(product.deleted);
        assert!(!product.active);
        assert_eq!(product.name, None);

        let price = price(parse("price.deleted", stripe_fixture("deleted_price")));
        assert!(price.deleted);
        assert!(!price.active);
        assert_eq!(price.price_type, None);
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

    // ---- old API (the local emulator's 2017 shapes) -----------------------------------------

    #[test]
    fn when_subscription_is_old_shaped_should_take_plan_and_period_from_the_subscription() {
        let event = localstripe_event("customer.subscription.created.json");
        assert_eq!(event.api_version.as_deref(), Some("2017-08-15"));
        assert_eq!(event.event_type, "customer.subscription.created");
        assert_eq!(
            subscription(event.object),
            SubscriptionState {
                id: "sub_LocalPro000001".into(),
                customer_id: "cus_LocalAlice0001".into(),
                status: SubscriptionStatus::Active,
                plan: plan("pro"),
                price_id: Some("price_LocalPro00001".into()),
                product_id: Some("prod_LocalPro00001".into()),
                current_period_end: Some(1_702_592_090),
                cancel_at_period_end: false,
                past_due_since: None,
                created: 1_700_000_090,
                metadata: metadata(&[("cognito_sub", "4f1c-sub")]),
            }
        );
    }

    #[test]
    fn when_subscription_is_old_shaped_without_items_should_take_its_plan() {
        let object = json!({
            "object": "subscription", "id": "sub_1", "customer": "cus_1", "status": "past_due",
            "created": 1_500_000_000, "current_period_end": 1_500_100_000,
            "plan": { "object": "plan", "id": "gold", "product": "prod_gold", "metadata": {} },
        });
        let subscription = subscription(parse("customer.subscription.updated", object));
        assert_eq!(subscription.status, SubscriptionStatus::PastDue);
        assert_eq!(subscription.price_id.as_deref(), Some("gold"));
        assert_eq!(subscription.product_id.as_deref(), Some("prod_gold"));
        assert_eq!(subscription.plan, None);
        assert_eq!(subscription.current_period_end, Some(1_500_100_000));
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

    #[test]
    fn when_customer_is_deleted_in_the_old_shape_should_say_deleted() {
        let event = localstripe_event("customer.deleted.json");
        let customer = customer(event.object);
        assert!(customer.deleted);
        assert_eq!(customer.id, "cus_LocalAlice0001");
        assert_eq!(
            customer.email.as_ref().unwrap().as_str(),
            "alice@example.com"
        );
        assert_eq!(customer.cognito_sub(), Some("4f1c-sub"));
        assert_eq!(customer.created, Some(1_700_000_010));
    }

    #[test]
    fn when_product_is_old_shaped_should_keep_its_fields() {
        let product = product(localstripe_event("product.created.json").object);
        assert_eq!(product.id, "prod_LocalPro00001");
        assert_eq!(product.name.as_deref(), Some("Pro"));
        assert!(product.active);
        assert!(!product.deleted);
        assert_eq!(product.plan(), plan("pro"));
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

    // ---- tolerance and errors -----------------------------------------------------------------

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
        assert_eq!(subscription.price_id, None);
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
