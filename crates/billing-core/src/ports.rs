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

    /// customer -> user: who a Stripe event is about.
    async fn user_of_customer(&self, customer_id: &CustomerId) -> Result<Option<CustomerLink>>;
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

    /// The subscription as Stripe has it now, plan resolved; `None` when it does not exist.
    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionState>>;

    /// The plan named by a product's metadata.
    async fn product_plan(&self, product_id: &str) -> Result<Option<PlanName>>;

    /// What a Checkout session sold (Stripe's events leave the line items out).
    async fn checkout_line_items(
        &self,
        session_id: &str,
    ) -> Result<Vec<crate::webhook::CheckoutLineItem>>;

    /// The CloudFormation template a product's metadata names (`stack_template_url`): its
    /// subscriptions get a stack of it while they are active.
    async fn product_stack_template(&self, product_id: &str) -> Result<Option<String>>;
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

/// Whether this delivery may process an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClaim {
    /// First delivery (or a retry of one that failed half-way): do the work.
    Claimed,
    /// Done before: answer 2xx and do nothing.
    AlreadyDone,
    /// Another delivery is working on it right now: answer non-2xx so Stripe retries later.
    InProgress,
}

/// One provisioning at a time per customer, so per user (see `provisioning::under_lease`).
#[async_trait]
pub trait ProvisioningLeases: Send + Sync {
    /// Takes the customer's lease for `holder` until `now + PROVISIONING_LEASE_SECS`; false
    /// while another holder's lease runs.
    async fn take_lease(&self, customer: &CustomerId, holder: &str, now: i64) -> Result<bool>;

    /// Ends `holder`'s lease; nothing when the lease is not (or no longer) theirs.
    async fn release_lease(&self, customer: &CustomerId, holder: &str) -> Result<()>;
}

/// Processed Stripe events, kept beyond Stripe's 30-day resend window.
#[async_trait]
pub trait EventLog: Send + Sync {
    async fn claim(&self, event_id: &str, now: i64) -> Result<EventClaim>;

    async fn complete(&self, event_id: &str, now: i64) -> Result<()>;

    /// Gives the event up after a failure, so Stripe's retry redoes it.
    async fn release(&self, event_id: &str) -> Result<()>;
}

/// How a versioned write compared with what was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Stored: it was newer than (or the first of) the object's state.
    Applied,
    /// Older than the stored state: ignored.
    Stale,
    /// The stored state came from this very event (a retry of a delivery that failed after
    /// storing it): the caller carries on with what follows the write.
    Same,
    /// Another event with the same `created` carried the stored state: the caller re-reads the
    /// object from Stripe and stores that with `allow_tie`.
    Tie,
}

/// An object's state as of the event that carried it.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub event_created: i64,
    pub event_id: String,
    pub state: T,
}

/// A stored document of what a billing page shows (catalogue, invoices, payments, customers,
/// checkout line items): a few fields, never the whole Stripe object (items stop at 400 KB).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub pk: String,
    pub sk: String,
    /// Secondary access pattern, e.g. price by lookup key.
    pub gsi1: Option<(String, String)>,
    pub body: serde_json::Value,
}

/// Lifecycle of a CloudFormation stack recorded against a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackState {
    Active,
    Deleting,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRecord {
    pub subscription_id: String,
    pub stack_name: String,
    pub state: StackState,
    pub updated_at: i64,
}

/// What the webhook keeps in step with Stripe (DynamoDB).
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// Stores the subscription if its event is newer than the stored one's.
    async fn put_subscription(
        &self,
        subscription: &Versioned<SubscriptionState>,
        allow_tie: bool,
    ) -> Result<Freshness>;

    async fn subscription(
        &self,
        customer_id: &CustomerId,
        id: &str,
    ) -> Result<Option<Versioned<SubscriptionState>>>;

    /// The stored subscriptions of a customer.
    async fn subscriptions_of(&self, customer_id: &CustomerId) -> Result<Vec<SubscriptionState>>;

    /// Stores the document if its event is newer than the stored one's.
    async fn put_document(&self, document: &Versioned<Document>) -> Result<Freshness>;

    /// Keeps an event whose customer nobody is linked to, for later review.
    async fn park_unmapped(
        &self,
        customer_id: &str,
        event_id: &str,
        event_type: &str,
        now: i64,
    ) -> Result<()>;

    async fn stacks_of(&self, subscription_id: &str) -> Result<Vec<StackRecord>>;

    /// Every stack in this state, across subscriptions (the sweep).
    async fn stacks_in_state(&self, state: StackState) -> Result<Vec<StackRecord>>;

    async fn put_stack(&self, stack: &StackRecord) -> Result<()>;
}

/// A CloudFormation stack's state as deprovisioning needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackStatus {
    /// The stack exists with this CloudFormation status, e.g. `CREATE_COMPLETE`.
    Exists(String),
    /// No such stack (deleted long ago, or never created).
    Gone,
}

/// CloudFormation, for the resources a subscription pays for.
#[async_trait]
pub trait Stacks: Send + Sync {
    async fn status(&self, stack_name: &str) -> Result<StackStatus>;

    /// Starts creating the stack; one that already exists is not an error.
    async fn create(
        &self,
        stack_name: &str,
        template_url: &str,
        parameters: &[(&str, &str)],
    ) -> Result<()>;

    /// Starts deleting the stack; an absent stack is not an error.
    async fn delete(&self, stack_name: &str) -> Result<()>;
}

/// Finding and creating Cognito users for payments made before sign-up.
#[async_trait]
pub trait UserLookup: Send + Sync {
    async fn user_by_sub(&self, pool_id: &UserPoolId, sub: &str) -> Result<Option<CognitoUserRef>>;

    async fn users_by_email(
        &self,
        pool_id: &UserPoolId,
        email: &Email,
    ) -> Result<Vec<CognitoUserRef>>;

    /// Creates a user from the payer's email (Cognito sends the invitation).
    async fn create_user(&self, pool_id: &UserPoolId, email: &Email) -> Result<CognitoUserRef>;
}

/// A Cognito user found by the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CognitoUserRef {
    pub username: Username,
    pub sub: UserSub,
}
