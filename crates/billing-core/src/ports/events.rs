//! The log of processed Stripe events.

use std::collections::HashSet;

use async_trait::async_trait;

use crate::error::Result;

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

/// What we know of a verified event we could not read: enough to find it in Stripe and to see
/// why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnreadableEvent {
    /// The event's id, or `body-sha256:<hex>` of the body when it has none.
    pub event_id: String,
    pub event_type: Option<String>,
    pub api_version: Option<String>,
    pub livemode: Option<bool>,
    /// Where reading stopped (e.g. `data.object.id`), and why.
    pub field: String,
    pub reason: String,
}

/// An unreadable event as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedUnreadable {
    pub event: UnreadableEvent,
    /// When it was last received (unix seconds).
    pub received_at: i64,
}

/// Processed Stripe events, kept beyond Stripe's 30-day resend window, and the events we could
/// not read, kept as long for an operator to inspect.
#[async_trait]
pub trait EventLog: Send + Sync {
    async fn claim(&self, event_id: &str, now: i64) -> Result<EventClaim>;

    async fn complete(&self, event_id: &str, now: i64) -> Result<()>;

    /// Which of these events were applied (or acknowledged) before: reads only, a hundred
    /// events a request. An event it cannot tell about is left out (its claim decides).
    async fn done_among(&self, event_ids: &[&str]) -> Result<HashSet<String>>;

    /// Gives the event up after a failure, so Stripe's retry redoes it.
    async fn release(&self, event_id: &str) -> Result<()>;

    /// Records (or records again) an event we could not read; kept 35 days.
    async fn record_unreadable(&self, event: &UnreadableEvent, now: i64) -> Result<()>;

    /// The recorded unreadable events, oldest first.
    async fn unreadable_events(&self) -> Result<Vec<RecordedUnreadable>>;
}
