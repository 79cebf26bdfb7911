//! Ports: what the use cases need from the outside world, narrow traits shaped by use.
//! Adapters in `adapters/` implement them over the AWS SDK and async-stripe; `fakes` (feature
//! `test-util`) implements them in memory for handler tests.

use async_trait::async_trait;

use crate::checkout::{
    CheckoutRecord, CheckoutSessionInfo, CreatedSession, NewCheckoutSession, NewPortalSession,
    PriceInfo,
};
use crate::domain::{
    CustomerId, CustomerLink, Email, NewCustomer, StripeCustomer, UserPoolId, UserSub, Username,
};
use crate::error::Result;
use crate::plans::{PlanName, SubscriptionState};

/// The user <-> customer links (DynamoDB in production).
#[async_trait]
pub trait CustomerLinks: Send + Sync {
    async fn customer_of_user(&self, sub: &UserSub) -> Result<Option<CustomerLink>>;

    /// Writes both directions at once. Fails with `Error::ConditionalCheckFailed` when either
    /// direction already exists, so one user can never be linked to two customers.
    async fn link(&self, link: &CustomerLink) -> Result<()>;

    /// Removes both directions; removing what is already gone is not an error.
    async fn unlink(&self, link: &CustomerLink) -> Result<()>;
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

/// The Stripe side of customers and subscriptions.
#[async_trait]
pub trait Billing: Send + Sync {
    /// Customers whose metadata names this Cognito sub (not deleted).
    async fn customers_by_sub(&self, sub: &UserSub) -> Result<Vec<StripeCustomer>>;

    /// Customers with this email (not deleted).
    async fn customers_by_email(&self, email: &Email) -> Result<Vec<StripeCustomer>>;

    /// Creates the customer with `customer.idempotency_key`, so a repeat returns the first one.
    async fn create_customer(&self, customer: &NewCustomer) -> Result<CustomerId>;

    /// Deletes the customer, which cancels its subscriptions; an absent one is not an error.
    async fn delete_customer(&self, customer_id: &CustomerId) -> Result<()>;

    /// Every subscription of the customer, whatever its status, with its plan resolved.
    async fn subscriptions_of(&self, customer_id: &CustomerId) -> Result<Vec<SubscriptionState>>;
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

/// The Cognito user pool, through its admin API.
#[async_trait]
pub trait Directory: Send + Sync {
    /// Sets `custom:stripe_customer_id` on the user.
    async fn set_customer_id(
        &self,
        pool_id: &UserPoolId,
        username: &Username,
        customer_id: &CustomerId,
    ) -> Result<()>;

    /// Sets `custom:plan_type` on the user.
    async fn set_plan(
        &self,
        pool_id: &UserPoolId,
        username: &Username,
        plan: &PlanName,
    ) -> Result<()>;

    /// Deletes the user; an absent one is not an error.
    async fn delete_user(&self, pool_id: &UserPoolId, username: &Username) -> Result<()>;
}

/// An API Gateway API key as provisioning sees it.
#[derive(Clone)]
pub struct ApiKey {
    pub id: String,
    /// The key itself: shown to its owner, never logged nor stored by us.
    pub value: Option<secrecy::SecretString>,
    pub enabled: bool,
    pub usage_plan_ids: Vec<String>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("enabled", &self.enabled)
            .field("usage_plan_ids", &self.usage_plan_ids)
            .finish_non_exhaustive()
    }
}

/// One API key per user on API Gateway, named after the user so a retry finds it.
#[async_trait]
pub trait ApiKeys: Send + Sync {
    async fn find(&self, owner: &UserSub) -> Result<Option<ApiKey>>;

    /// Creates the owner's key; if a concurrent call created one too, one survives and is
    /// returned.
    async fn create(&self, owner: &UserSub) -> Result<ApiKey>;

    /// Attaches the key to this usage plan only (detached from every other); `None` detaches it
    /// from all.
    async fn attach_only(&self, key_id: &str, usage_plan_id: Option<&str>) -> Result<()>;

    async fn set_enabled(&self, key_id: &str, enabled: bool) -> Result<()>;

    /// Deletes the key; an absent one is not an error.
    async fn delete(&self, key_id: &str) -> Result<()>;
}
