//! What the webhook keeps in step with Stripe.

use async_trait::async_trait;

use crate::domain::CustomerId;
use crate::error::Result;
use crate::plans::SubscriptionState;

use super::records::BillingRecord;
use super::stacks::{StackRecord, StackState};

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

/// An event parked because nobody is linked to its customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmappedEvent {
    /// The customer's id, or `guest-checkout:<session id>` for a guest's payment.
    pub customer_id: String,
    pub event_id: String,
    pub event_type: String,
    /// When it was parked (unix seconds).
    pub parked_at: i64,
}

/// An object's state as of the event that carried it.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub event_created: i64,
    pub event_id: String,
    pub state: T,
}

/// What the webhook keeps in step with Stripe (DynamoDB).
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// Stores the subscription if its event is newer than the stored one's, with when the
    /// reconciler is to look at it again (`AccessPolicy::review_at`).
    async fn put_subscription(
        &self,
        subscription: &Versioned<SubscriptionState>,
        allow_tie: bool,
        review_at: Option<i64>,
    ) -> Result<Freshness>;

    async fn subscription(
        &self,
        customer_id: &CustomerId,
        id: &str,
    ) -> Result<Option<Versioned<SubscriptionState>>>;

    /// The stored subscriptions of a customer.
    async fn subscriptions_of(&self, customer_id: &CustomerId) -> Result<Vec<SubscriptionState>>;

    /// Stores the record if its event is newer than the stored one's.
    async fn put_record(&self, record: &Versioned<BillingRecord>) -> Result<Freshness>;

    /// Keeps an event whose customer nobody is linked to, for later review.
    async fn park_unmapped(
        &self,
        customer_id: &str,
        event_id: &str,
        event_type: &str,
        now: i64,
    ) -> Result<()>;

    /// The parked events, oldest first.
    async fn unmapped_events(&self) -> Result<Vec<UnmappedEvent>>;

    async fn stacks_of(&self, subscription_id: &str) -> Result<Vec<StackRecord>>;

    /// Every stack in this state, across subscriptions (the sweep).
    async fn stacks_in_state(&self, state: StackState) -> Result<Vec<StackRecord>>;

    async fn put_stack(&self, stack: &StackRecord) -> Result<()>;
}
