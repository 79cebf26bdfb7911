//! Usage-based billing: API Gateway counts every call per key and UTC day; the reporter sends
//! what Stripe does not have yet as Billing Meter events for the key's customer.
//!
//! Exactly once in effect, per slot (key, usage plan, UTC day): the cursor holds how many calls
//! Stripe has (`reported`). A run that sees more first records the delta it is about to send
//! (`pending`, a conditional write, so of two overlapping runs one sends it), then sends it with
//! a deterministic identifier, then moves `reported` past it. A crash or a timeout between the
//! send and the write leaves the delta pending: the next run sends the same delta with the same
//! identifier, which Stripe deduplicates (for at least 24 hours), and moves on. Calls that arrive
//! late (API Gateway's counts for a day can grow after it) are a new delta of the same slot; a
//! key moved to another usage plan mid-day has a slot per plan, each counted once.
//!
//! Why deltas and not one total per day: a meter sums what it is sent; Stripe has no "this
//! event replaces that one" for a v1 meter event, so a day's total sent twice would be counted
//! twice.

mod day;
mod reporter;

pub use day::UtcDay;
pub use reporter::{DayUsage, ReportLimits, UsageReport, UsageReporter, UsageSettings, key_usage};

use serde::{Deserialize, Serialize};

/// Stripe takes meter events up to this many days old.
pub const METER_EVENT_MAX_AGE_DAYS: i64 = 35;

/// A pending delta older than this is not sent again: Stripe's deduplication window is "at
/// least 24 hours", so a resend after it could be counted twice. An operator decides.
pub const PENDING_RESEND_LIMIT_SECS: i64 = 20 * 3600;

/// A pending delta younger than this may be a run's send still under way: left to that run
/// (longer than a meter event request can take with its retries).
pub const PENDING_IN_FLIGHT_SECS: i64 = 120;

/// One key's calls on one usage plan on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsageSlot {
    pub key_id: String,
    pub usage_plan_id: String,
    pub day: UtcDay,
}

impl UsageSlot {
    /// The meter event identifier of the delta `from..to` of this slot: the same delta always
    /// has the same identifier (at most 100 characters, Stripe's limit).
    pub fn identifier(&self, from: u64, to: u64) -> String {
        let identifier = format!(
            "usage:{}:{}:{}:{from}-{to}",
            self.key_id, self.usage_plan_id, self.day
        );
        if identifier.len() <= 100 {
            return identifier;
        }
        use sha2::Digest;
        let digest = sha2::Sha256::digest(identifier.as_bytes());
        format!("usage:{}", hex::encode(&digest[..24]))
    }
}

/// How far a slot has been reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCursor {
    /// Calls Stripe has for this slot.
    pub reported: u64,
    /// The delta being sent, recorded before sending.
    pub pending: Option<PendingDelta>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDelta {
    pub from: u64,
    pub to: u64,
    pub identifier: String,
    /// When it was recorded (unix seconds).
    pub since: i64,
}

/// What to do with a slot now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Stripe has every call counted.
    UpToDate,
    /// A delta recorded and not confirmed: send it again, as it was.
    Resend(PendingDelta),
    /// A delta recorded moments ago: another run is sending it.
    InFlight,
    /// Record this delta, then send it.
    Send(PendingDelta),
    /// A delta recorded too long ago to resend safely (see `PENDING_RESEND_LIMIT_SECS`).
    Stuck(PendingDelta),
    /// API Gateway counts fewer calls than Stripe has: nothing to send (a count revised down).
    CountedBelowReported { counted: u64 },
}

/// The step for a slot whose cursor is `cursor` and whose calls API Gateway counts as
/// `counted`, at `now`.
pub fn next_step(slot: &UsageSlot, cursor: &UsageCursor, counted: u64, now: i64) -> Step {
    if let Some(pending) = &cursor.pending {
        let age = now - pending.since;
        if age > PENDING_RESEND_LIMIT_SECS {
            return Step::Stuck(pending.clone());
        }
        if age < PENDING_IN_FLIGHT_SECS {
            return Step::InFlight;
        }
        return Step::Resend(pending.clone());
    }
    if counted < cursor.reported {
        return Step::CountedBelowReported { counted };
    }
    if counted == cursor.reported {
        return Step::UpToDate;
    }
    Step::Send(PendingDelta {
        from: cursor.reported,
        to: counted,
        identifier: slot.identifier(cursor.reported, counted),
        since: now,
    })
}

/// The time a delta of `day` is stamped with: within the day (so it falls in the billing
/// period that holds the day), not after `now`, and a minute short of Stripe's 5-minute limit
/// on times ahead of its clock.
pub fn event_timestamp(day: UtcDay, now: i64) -> i64 {
    (day.end() - 1).min(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> UsageSlot {
        UsageSlot {
            key_id: "k1".into(),
            usage_plan_id: "up_api".into(),
            day: UtcDay::parse("2026-12-01").unwrap(),
        }
    }

    #[test]
    fn more_calls_than_reported_should_be_sent_as_the_delta_with_a_stable_identifier() {
        let cursor = UsageCursor {
            reported: 40,
            pending: None,
        };
        let Step::Send(delta) = next_step(&slot(), &cursor, 100, 1_000) else {
            panic!("a delta to send");
        };
        assert_eq!((delta.from, delta.to, delta.since), (40, 100, 1_000));
        assert_eq!(delta.identifier, "usage:k1:up_api:2026-12-01:40-100");
        assert_eq!(delta.identifier, slot().identifier(40, 100));
    }

    #[test]
    fn a_pending_delta_should_be_sent_again_as_it_was_whatever_the_count_now() {
        let pending = PendingDelta {
            from: 40,
            to: 100,
            identifier: slot().identifier(40, 100),
            since: 1_000,
        };
        let cursor = UsageCursor {
            reported: 40,
            pending: Some(pending.clone()),
        };
        assert_eq!(next_step(&slot(), &cursor, 130, 1_030), Step::InFlight);
        assert_eq!(
            next_step(&slot(), &cursor, 130, 1_000 + PENDING_IN_FLIGHT_SECS),
            Step::Resend(pending.clone())
        );
        let too_late = 1_000 + PENDING_RESEND_LIMIT_SECS + 1;
        assert_eq!(
            next_step(&slot(), &cursor, 130, too_late),
            Step::Stuck(pending)
        );
    }

    #[test]
    fn counts_equal_or_below_what_stripe_has_should_send_nothing() {
        let cursor = UsageCursor {
            reported: 40,
            pending: None,
        };
        assert_eq!(next_step(&slot(), &cursor, 40, 1), Step::UpToDate);
        assert_eq!(
            next_step(&slot(), &cursor, 39, 1),
            Step::CountedBelowReported { counted: 39 }
        );
        assert_eq!(
            next_step(&slot(), &UsageCursor::default(), 0, 1),
            Step::UpToDate
        );
    }

    #[test]
    fn an_identifier_should_stay_within_stripes_100_characters() {
        let long = UsageSlot {
            key_id: "k".repeat(60),
            ..slot()
        };
        let identifier = long.identifier(1, 2);
        assert!(identifier.len() <= 100, "{identifier}");
        assert_eq!(identifier, long.identifier(1, 2));
        assert_ne!(identifier, long.identifier(1, 3));
    }

    #[test]
    fn a_delta_should_be_stamped_within_its_day_and_never_ahead_of_now() {
        let day = UtcDay::parse("2026-12-01").unwrap();
        assert_eq!(event_timestamp(day, day.start() + 60), day.start() + 60);
        assert_eq!(event_timestamp(day, day.end() + 3600), day.end() - 1);
    }
}
