//! The log of processed Stripe events.

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

/// Processed Stripe events, kept beyond Stripe's 30-day resend window.
#[async_trait]
pub trait EventLog: Send + Sync {
    async fn claim(&self, event_id: &str, now: i64) -> Result<EventClaim>;

    async fn complete(&self, event_id: &str, now: i64) -> Result<()>;

    /// Gives the event up after a failure, so Stripe's retry redoes it.
    async fn release(&self, event_id: &str) -> Result<()>;
}
