//! What the usage reporter needs: API Gateway's call counts per key and day, the owner of a
//! key, Stripe's Billing Meters, and its own cursors in the table.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::domain::UserSub;
use crate::error::Result;
use crate::usage::{UsageCursor, UsageSlot, UtcDay};

/// API Gateway's usage: calls per key and UTC day on a usage plan (`GetUsage`).
#[async_trait]
pub trait UsageCounts: Send + Sync {
    /// Each key's calls on the usage plan for each day of `from..=to`, all pages; only
    /// `key_id`'s when given.
    async fn usage(
        &self,
        usage_plan_id: &str,
        key_id: Option<&str>,
        from: UtcDay,
        to: UtcDay,
    ) -> Result<BTreeMap<String, BTreeMap<UtcDay, u64>>>;

    /// The user a key belongs to (from the key's name), `None` for a key we did not make.
    async fn key_owner(&self, key_id: &str) -> Result<Option<UserSub>>;
}

/// A Stripe Billing Meter, as the reporter needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterInfo {
    pub id: String,
    pub event_name: String,
    /// The payload key naming the customer (`customer_mapping.event_payload_key`).
    pub customer_key: String,
    /// The payload key of the value (`value_settings.event_payload_key`).
    pub value_key: String,
    pub active: bool,
}

/// One meter event to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterEvent {
    pub meter: MeterInfo,
    pub customer_id: String,
    pub value: u64,
    /// Deterministic: a resend of the same delta carries the same identifier, which Stripe
    /// deduplicates for at least 24 hours.
    pub identifier: String,
    pub timestamp: i64,
}

/// What Stripe said of a meter event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeterEventAnswer {
    Accepted,
    /// Stripe has an event with this identifier already: sent before, counted once.
    Duplicate,
    /// Too old (more than 35 days) or otherwise refused for good: never billed.
    Refused,
}

/// Stripe Billing Meters.
#[async_trait]
pub trait Meters: Send + Sync {
    async fn meter(&self, meter_id: &str) -> Result<Option<MeterInfo>>;

    async fn send_meter_event(&self, event: &MeterEvent) -> Result<MeterEventAnswer>;

    /// What the meter holds of a customer's usage in `[start, end)` (unix seconds on minute
    /// boundaries): Stripe's event summary.
    async fn reported_usage(
        &self,
        meter_id: &str,
        customer_id: &str,
        start: i64,
        end: i64,
    ) -> Result<u64>;
}

/// The reporter's cursors: how many calls of a slot (key, usage plan, day) Stripe has, and the
/// delta being sent.
#[async_trait]
pub trait UsageStore: Send + Sync {
    async fn usage_cursor(&self, slot: &UsageSlot) -> Result<UsageCursor>;

    /// Writes `next` if the stored cursor is still `expected`; `false` when another run moved
    /// it first.
    async fn replace_usage_cursor(
        &self,
        slot: &UsageSlot,
        expected: &UsageCursor,
        next: &UsageCursor,
        now: i64,
    ) -> Result<bool>;

    /// Every cursor of a key's usage in `from..=to`, for `GET /me` and the CLI.
    async fn usage_cursors_of(
        &self,
        key_id: &str,
        from: UtcDay,
        to: UtcDay,
    ) -> Result<Vec<(UsageSlot, UsageCursor)>>;
}
