//! What the scheduled reconciler needs beyond the webhook's ports: Stripe's list of events, and
//! its cursor and review deadlines in the table.

use async_trait::async_trait;

use crate::domain::CustomerId;
use crate::error::Result;

/// A page of `GET /v1/events`: events created in `[created_gte, created_lte]`, of these types,
/// newest first as Stripe lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsQuery<'a> {
    pub created_gte: i64,
    pub created_lte: i64,
    /// At most 20 (Stripe's limit for `types[]`).
    pub types: &'a [&'a str],
    pub starting_after: Option<&'a str>,
}

/// One event as Stripe lists it: its id and time to order by, and its JSON, read like a
/// delivery's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedEvent {
    pub id: String,
    pub created: i64,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventsPage {
    pub events: Vec<ListedEvent>,
    pub has_more: bool,
}

/// Stripe's events, as listed by `GET /v1/events` (kept 30 days).
#[async_trait]
pub trait EventFeed: Send + Sync {
    async fn events_page(&self, query: &EventsQuery<'_>) -> Result<EventsPage>;
}

/// The reconciler's cursor in Stripe's events.
pub const EVENTS_CURSOR: &str = "events";

/// A stored subscription whose review time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueReview {
    pub customer_id: CustomerId,
    pub subscription_id: String,
    pub review_at: i64,
}

/// The reconciler's own state: how far it has applied Stripe's events, and when stored
/// subscriptions are to be looked at again (written with the subscription, see
/// `SyncStore::put_subscription`).
#[async_trait]
pub trait ReconcilerStore: Send + Sync {
    /// The named cursor: for `EVENTS_CURSOR`, the `created` up to which every listed event
    /// has been applied.
    async fn cursor(&self, name: &str) -> Result<Option<i64>>;

    /// Moves the named cursor to `at`, only forward.
    async fn advance_cursor(&self, name: &str, at: i64, now: i64) -> Result<()>;

    /// The subscriptions whose review time is at or before `now`, earliest first, at most
    /// `limit`.
    async fn due_reviews(&self, now: i64, limit: usize) -> Result<Vec<DueReview>>;

    /// Sets (or clears) a stored subscription's review time; an absent subscription is left
    /// absent.
    async fn set_review(
        &self,
        customer_id: &CustomerId,
        subscription_id: &str,
        review_at: Option<i64>,
    ) -> Result<()>;
}
