//! Stripe Checkout, the Billing Portal, and our records of the sessions we start.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::domain::{CustomerId, UserSub};
use crate::error::Result;
use crate::plans::PlanName;

/// A price as checkout needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceInfo {
    pub id: String,
    pub lookup_key: Option<String>,
    pub active: bool,
    pub recurring: bool,
    pub trial_period_days: Option<u32>,
    /// The product's metadata `plan`.
    pub plan: Option<PlanName>,
    /// Billed by usage (`recurring.usage_type=metered`): sold without a quantity.
    pub metered: bool,
    /// The metered price sold with this one (a flat fee plus usage): the lookup key in the
    /// price's metadata `usage_lookup_key`.
    pub usage_add_on: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutMode {
    Subscription,
    Payment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCheckoutSession {
    pub customer_id: CustomerId,
    pub price_id: String,
    /// `None` for a metered price: Stripe refuses a quantity on it.
    pub quantity: Option<u64>,
    /// Metered prices sold with it on the same subscription, without a quantity.
    pub metered_add_ons: Vec<String>,
    pub mode: CheckoutMode,
    /// The Cognito sub: also in the session's and the subscription's metadata.
    pub client_reference_id: String,
    pub metadata: BTreeMap<String, String>,
    pub trial_period_days: Option<u32>,
    pub success_url: String,
    pub cancel_url: String,
    pub allow_promotion_codes: bool,
    pub promotion_code: Option<String>,
    pub locale: Option<String>,
    pub billing_address_required: bool,
    pub automatic_tax: bool,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSession {
    pub id: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSessionInfo {
    pub id: String,
    pub customer_id: Option<String>,
    pub client_reference_id: Option<String>,
    pub payment_status: String,
    pub status: Option<String>,
}

impl CheckoutSessionInfo {
    pub fn is_paid(&self) -> bool {
        matches!(self.payment_status.as_str(), "paid" | "no_payment_required")
    }
}

/// The record of a session we started: who started it and the hash of its one-time key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRecord {
    pub session_id: String,
    pub sub: UserSub,
    pub customer_id: CustomerId,
    pub key_hash: String,
    pub lookup_key: String,
    pub created_at: i64,
    pub completed: bool,
}

/// Checkout records outlive the session (24 h) long enough for a late success return; their
/// one-time key is refused after that, even before DynamoDB's TTL deletes them (which can take
/// days).
pub const CHECKOUT_RECORD_TTL_SECS: i64 = 7 * 24 * 3600;

impl CheckoutRecord {
    /// When the record, and its one-time key, expire (unix seconds).
    pub fn expires_at(&self) -> i64 {
        self.created_at + CHECKOUT_RECORD_TTL_SECS
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalFlow {
    Cancel,
    Update,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPortalSession {
    pub customer_id: CustomerId,
    pub return_url: String,
    pub flow: Option<PortalFlow>,
    /// The subscription a cancel or update flow is about.
    pub subscription_id: Option<String>,
}

/// Stripe Checkout and the Billing Portal.
#[async_trait]
pub trait Checkout: Send + Sync {
    /// The active price with this lookup key, with its product's plan.
    async fn price_by_lookup_key(&self, lookup_key: &str) -> Result<Option<PriceInfo>>;

    async fn create_session(&self, session: &NewCheckoutSession) -> Result<CreatedSession>;

    async fn session(&self, session_id: &str) -> Result<Option<CheckoutSessionInfo>>;

    /// Returns the portal URL.
    async fn create_portal_session(&self, session: &NewPortalSession) -> Result<String>;
}

/// Checkout sessions started by our users (DynamoDB).
#[async_trait]
pub trait CheckoutRecords: Send + Sync {
    async fn put(&self, record: &CheckoutRecord) -> Result<()>;

    async fn get(&self, session_id: &str) -> Result<Option<CheckoutRecord>>;

    /// Marks the session provisioned; `false` when it already was (a replayed success link).
    async fn mark_completed(&self, session_id: &str) -> Result<bool>;

    /// Removes every session record of the user (account deletion).
    async fn delete_for_user(&self, sub: &UserSub) -> Result<()>;
}
