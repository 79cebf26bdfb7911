//! The usage reporter's run: every metered usage plan's counts for the last few days, each slot
//! moved forward by the scheme of `super`.

use std::collections::HashMap;

use serde::Serialize;
use tracing::{error, info, warn};

use super::{PendingDelta, Step, UsageCursor, UsageSlot, UtcDay, event_timestamp, next_step};
use crate::domain::{CustomerId, UserSub};
use crate::error::{Chain, Result};
use crate::ports::{
    BillingRecord, CustomerLinks, MeterEvent, MeterEventAnswer, MeterInfo, Meters, OperatorStore,
    PriceRecord, SyncStore, UsageCounts, UsageStore,
};
use crate::webhook::sync::Writes;

/// What the reporter reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageSettings {
    /// The usage plans whose keys are billed by usage (the usage plans of metered plans). Keys
    /// on any other usage plan cost nothing: their usage is never read.
    pub metered_usage_plans: Vec<String>,
    /// Days before today read again each run: API Gateway's counts can arrive late.
    pub lookback_days: i64,
    /// How long after a billing period ends Stripe still takes its usage: the invoice
    /// finalization grace period (Stripe's default: one hour).
    pub invoice_grace_secs: i64,
}

/// How much one run may do.
#[derive(Debug, Clone, Copy)]
pub struct ReportLimits {
    pub deadline: tokio::time::Instant,
}

impl ReportLimits {
    pub fn for_duration(budget: std::time::Duration) -> Self {
        Self {
            deadline: tokio::time::Instant::now() + budget,
        }
    }

    fn exhausted(&self) -> bool {
        tokio::time::Instant::now() >= self.deadline
    }
}

/// What one run did (in a dry run: would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    pub dry_run: bool,
    pub usage_plans_read: usize,
    /// Slots (key, usage plan, day) with calls.
    pub slots: usize,
    pub deltas_sent: usize,
    /// Pending deltas sent again (a crash or timeout before their confirmation).
    pub deltas_resent: usize,
    /// Calls Stripe accepted in this run.
    pub calls_reported: u64,
    /// Calls Stripe refused for good (too late to bill): logged at error with the amount.
    pub calls_unbillable: u64,
    /// Slots with nowhere to bill them yet (nobody linked to the key's owner, no metered price
    /// stored, an inactive meter): logged at error, nothing recorded, sent once fixed.
    pub slots_unbillable: usize,
    /// Slots whose pending delta is too old to resend safely: an operator decides.
    pub slots_stuck: usize,
    /// Everything read was handled; `false` when the budget ran out (the next run resumes).
    pub complete: bool,
}

/// One key's calls on one metered usage plan on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayUsage {
    pub day: String,
    pub usage_plan_id: String,
    /// What API Gateway counts.
    pub counted: u64,
    /// What Stripe has.
    pub reported: u64,
    /// Calls of a delta being sent.
    pub pending: Option<u64>,
}

impl DayUsage {
    fn new(day: UtcDay, usage_plan_id: &str) -> Self {
        Self {
            day: day.to_string(),
            usage_plan_id: usage_plan_id.to_owned(),
            counted: 0,
            reported: 0,
            pending: None,
        }
    }
}

/// A key's calls per day on each of `usage_plans` in `from..=to`: what API Gateway counts, what
/// Stripe has and what is being sent (`billing-admin usage show`, `GET /me`).
pub async fn key_usage<S: UsageStore, C: UsageCounts>(
    store: &S,
    counts: &C,
    usage_plans: &[String],
    key_id: &str,
    (from, to): (UtcDay, UtcDay),
) -> Result<Vec<DayUsage>> {
    let mut days: std::collections::BTreeMap<(UtcDay, String), DayUsage> =
        std::collections::BTreeMap::new();
    for usage_plan_id in usage_plans {
        let usage = counts.usage(usage_plan_id, Some(key_id), from, to).await?;
        for (day, counted) in usage.get(key_id).into_iter().flatten() {
            if *counted > 0 {
                days.entry((*day, usage_plan_id.clone()))
                    .or_insert_with(|| DayUsage::new(*day, usage_plan_id))
                    .counted = *counted;
            }
        }
    }
    for (slot, cursor) in store.usage_cursors_of(key_id, from, to).await? {
        if !usage_plans.contains(&slot.usage_plan_id) {
            continue;
        }
        let entry = days
            .entry((slot.day, slot.usage_plan_id.clone()))
            .or_insert_with(|| DayUsage::new(slot.day, &slot.usage_plan_id));
        entry.reported = cursor.reported;
        entry.pending = cursor.pending.map(|delta| delta.to - delta.from);
    }
    Ok(days.into_values().collect())
}

/// What a slot's step would send, counted as if sent.
fn rehearse(
    slot: &UsageSlot,
    cursor: &UsageCursor,
    counted: u64,
    now: i64,
    report: &mut UsageReport,
) {
    match next_step(slot, cursor, counted, now) {
        Step::Send(delta) => {
            report.deltas_sent += 1;
            report.calls_reported += delta.to - delta.from;
        }
        // Stripe may have it already: sent again, counted once.
        Step::Resend(_) => report.deltas_resent += 1,
        Step::Stuck(_) => report.slots_stuck += 1,
        Step::UpToDate | Step::InFlight | Step::CountedBelowReported { .. } => {}
    }
}

/// Where a key's usage goes.
#[derive(Debug, Clone)]
enum Billed {
    To {
        customer_id: CustomerId,
        meter: MeterInfo,
        /// The start of the billing subscription's current period, when known.
        period_start: Option<i64>,
    },
    Nowhere {
        reason: &'static str,
    },
}

/// Where one slot's calls go.
struct Target<'a> {
    customer_id: &'a CustomerId,
    meter: &'a MeterInfo,
    period_start: Option<i64>,
}

pub struct UsageReporter<'a, S, C, M> {
    pub store: &'a S,
    pub counts: &'a C,
    pub meters: &'a M,
    pub settings: &'a UsageSettings,
}

impl<S, C, M> std::fmt::Debug for UsageReporter<'_, S, C, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsageReporter")
    }
}

impl<S, C, M> UsageReporter<'_, S, C, M>
where
    S: UsageStore + CustomerLinks + SyncStore + OperatorStore,
    C: UsageCounts,
    M: Meters,
{
    /// One run at `now`: today and the `lookback_days` before it.
    pub async fn run(&self, now: i64, limits: ReportLimits) -> Result<UsageReport> {
        let today = UtcDay::of(now);
        let days = (today.plus(-self.settings.lookback_days), today);
        self.run_days(now, days, limits, Writes::Apply).await
    }

    /// One run over the days `from..=to`; a dry run says what it would send and writes
    /// nothing.
    pub async fn run_days(
        &self,
        now: i64,
        (from, to): (UtcDay, UtcDay),
        limits: ReportLimits,
        writes: Writes,
    ) -> Result<UsageReport> {
        let mut report = UsageReport {
            dry_run: writes == Writes::DryRun,
            ..UsageReport::default()
        };
        let mut billed: HashMap<String, Billed> = HashMap::new();
        // Keys of many customers share a meter: each is read from Stripe once per run.
        let mut meters: HashMap<String, Option<MeterInfo>> = HashMap::new();
        for usage_plan_id in &self.settings.metered_usage_plans {
            let usage = self.counts.usage(usage_plan_id, None, from, to).await?;
            report.usage_plans_read += 1;
            for (key_id, days) in usage {
                for (day, counted) in days {
                    if counted == 0 {
                        continue;
                    }
                    if limits.exhausted() {
                        return Ok(report);
                    }
                    report.slots += 1;
                    let slot = UsageSlot {
                        key_id: key_id.clone(),
                        usage_plan_id: usage_plan_id.clone(),
                        day,
                    };
                    if !billed.contains_key(&key_id) {
                        let target = self.billed_to(&key_id, &mut meters).await?;
                        billed.insert(key_id.clone(), target);
                    }
                    match billed.get(&key_id) {
                        Some(Billed::To { period_start, .. }) if writes == Writes::DryRun => {
                            let cursor = self.store.usage_cursor(&slot).await?;
                            match next_step(&slot, &cursor, counted, now) {
                                Step::Send(delta)
                                    if self.too_late_to_bill(&slot, *period_start, now) =>
                                {
                                    report.calls_unbillable += delta.to - delta.from;
                                }
                                _ => rehearse(&slot, &cursor, counted, now, &mut report),
                            }
                        }
                        Some(Billed::To {
                            customer_id,
                            meter,
                            period_start,
                        }) => {
                            let target = Target {
                                customer_id,
                                meter,
                                period_start: *period_start,
                            };
                            self.report_slot(&slot, counted, &target, now, &mut report)
                                .await?;
                        }
                        Some(Billed::Nowhere { reason }) => {
                            // Nothing recorded: once the cause is fixed (a price stored, a
                            // link made) the next run sends it.
                            error!(key_id = %slot.key_id, usage_plan_id = %slot.usage_plan_id, day = %slot.day, counted, reason, "usage with nowhere to bill it; sent once that is fixed");
                            report.slots_unbillable += 1;
                        }
                        None => {}
                    }
                }
            }
        }
        report.complete = true;
        info!(
            slots = report.slots,
            deltas_sent = report.deltas_sent,
            calls_reported = report.calls_reported,
            calls_unbillable = report.calls_unbillable,
            "usage reported"
        );
        Ok(report)
    }

    /// A key's calls per day and metered usage plan in `from..=to`: what API Gateway counts and
    /// what Stripe has (for `billing-admin usage show`).
    pub async fn key_usage(&self, key_id: &str, from: UtcDay, to: UtcDay) -> Result<Vec<DayUsage>> {
        key_usage(
            self.store,
            self.counts,
            &self.settings.metered_usage_plans,
            key_id,
            (from, to),
        )
        .await
    }

    async fn report_slot(
        &self,
        slot: &UsageSlot,
        counted: u64,
        target: &Target<'_>,
        now: i64,
        report: &mut UsageReport,
    ) -> Result<()> {
        let cursor = self.store.usage_cursor(slot).await?;
        let (delta, recorded) = match next_step(slot, &cursor, counted, now) {
            Step::Send(delta) if self.too_late_to_bill(slot, target.period_start, now) => {
                return self
                    .give_up_too_late(slot, &cursor, &delta, now, report)
                    .await;
            }
            Step::UpToDate | Step::InFlight => return Ok(()),
            Step::CountedBelowReported { counted } => {
                warn!(key_id = %slot.key_id, day = %slot.day, counted, reported = cursor.reported, "API Gateway counts fewer calls than were reported; nothing sent");
                return Ok(());
            }
            Step::Stuck(pending) => {
                error!(key_id = %slot.key_id, usage_plan_id = %slot.usage_plan_id, day = %slot.day, calls = pending.to - pending.from, identifier = %pending.identifier, "usage delta unconfirmed for longer than Stripe deduplicates; not sent again: check the meter's summaries, then billing-admin usage");
                report.slots_stuck += 1;
                return Ok(());
            }
            Step::Resend(pending) => {
                report.deltas_resent += 1;
                (pending, cursor.clone())
            }
            Step::Send(delta) => {
                let recorded = UsageCursor {
                    reported: cursor.reported,
                    pending: Some(delta.clone()),
                };
                if !self
                    .store
                    .replace_usage_cursor(slot, &cursor, &recorded, now)
                    .await?
                {
                    // Another run recorded it first: that run sends it.
                    return Ok(());
                }
                (delta, recorded)
            }
        };
        let calls = delta.to - delta.from;
        let event = MeterEvent {
            meter: target.meter.clone(),
            customer_id: target.customer_id.to_string(),
            value: calls,
            identifier: delta.identifier.clone(),
            timestamp: event_timestamp(slot.day, now),
        };
        let answer = self.meters.send_meter_event(&event).await?;
        match answer {
            MeterEventAnswer::Accepted | MeterEventAnswer::Duplicate => {
                report.deltas_sent += 1;
                report.calls_reported += calls;
            }
            MeterEventAnswer::Refused => {
                error!(key_id = %slot.key_id, day = %slot.day, calls, "usage refused by Stripe (too late to bill); counted as unbillable");
                report.calls_unbillable += calls;
            }
        }
        self.confirm(slot, &recorded, &delta, now).await
    }

    /// Calls of a day before the billing period that started more than the invoice grace ago:
    /// that period's invoice is final, so Stripe would take the event and bill it nowhere.
    fn too_late_to_bill(&self, slot: &UsageSlot, period_start: Option<i64>, now: i64) -> bool {
        period_start.is_some_and(|start| {
            event_timestamp(slot.day, now) < start
                && now >= start + self.settings.invoice_grace_secs
        })
    }

    /// Logs the calls at error with their amount, counts them, and moves the cursor past them
    /// so that they are reported once.
    async fn give_up_too_late(
        &self,
        slot: &UsageSlot,
        cursor: &UsageCursor,
        delta: &PendingDelta,
        now: i64,
        report: &mut UsageReport,
    ) -> Result<()> {
        let calls = delta.to - delta.from;
        let handled = UsageCursor {
            reported: delta.to,
            pending: None,
        };
        if self
            .store
            .replace_usage_cursor(slot, cursor, &handled, now)
            .await?
        {
            error!(key_id = %slot.key_id, usage_plan_id = %slot.usage_plan_id, day = %slot.day, calls, "usage too late to bill: its billing period's invoice is final; not sent");
            report.calls_unbillable += calls;
        }
        Ok(())
    }

    async fn confirm(
        &self,
        slot: &UsageSlot,
        recorded: &UsageCursor,
        delta: &PendingDelta,
        now: i64,
    ) -> Result<()> {
        let confirmed = UsageCursor {
            reported: delta.to,
            pending: None,
        };
        if !self
            .store
            .replace_usage_cursor(slot, recorded, &confirmed, now)
            .await?
        {
            // An overlapping run confirmed the same delta: nothing lost, nothing twice.
            info!(key_id = %slot.key_id, day = %slot.day, "usage delta confirmed by another run");
        }
        Ok(())
    }

    /// The customer and meter a key's usage is billed to: the key's owner's customer, and the
    /// meter of the metered price among that customer's subscriptions.
    async fn billed_to(
        &self,
        key_id: &str,
        meters: &mut HashMap<String, Option<MeterInfo>>,
    ) -> Result<Billed> {
        let Some(owner) = self.counts.key_owner(key_id).await? else {
            return Ok(Billed::Nowhere {
                reason: "a key we did not make",
            });
        };
        self.billed_to_owner(&owner, meters).await.inspect_err(|failure| {
            warn!(key_id, error = %Chain(failure), "could not resolve where a key's usage goes");
        })
    }

    async fn billed_to_owner(
        &self,
        owner: &UserSub,
        meters: &mut HashMap<String, Option<MeterInfo>>,
    ) -> Result<Billed> {
        let Some(link) = self.store.customer_of_user(owner).await? else {
            return Ok(Billed::Nowhere {
                reason: "nobody linked to the key's owner",
            });
        };
        let subscriptions = self.store.subscriptions_of(&link.customer_id).await?;
        // The latest subscription with a metered price (a plan change leaves the older one
        // ended; its usage since the change is on the new one's usage plan anyway).
        let mut candidates: Vec<_> = subscriptions.iter().collect();
        candidates.sort_by_key(|s| std::cmp::Reverse(s.created));
        for subscription in candidates {
            for item in &subscription.items {
                let Some(price_id) = &item.price_id else {
                    continue;
                };
                let Some(meter_id) = self.meter_of_price(price_id).await? else {
                    continue;
                };
                if !meters.contains_key(&meter_id) {
                    let meter = self.meters.meter(&meter_id).await?;
                    meters.insert(meter_id.clone(), meter);
                }
                return Ok(match meters.get(&meter_id).cloned().flatten() {
                    Some(meter) if meter.active => Billed::To {
                        customer_id: link.customer_id.clone(),
                        meter,
                        period_start: subscription.current_period_start,
                    },
                    _ => Billed::Nowhere {
                        reason: "the metered price's meter is missing or inactive",
                    },
                });
            }
        }
        Ok(Billed::Nowhere {
            reason: "the customer has no metered price",
        })
    }

    async fn meter_of_price(&self, price_id: &str) -> Result<Option<String>> {
        let probe = BillingRecord::Price {
            price_id: price_id.to_owned(),
            price: PriceRecord::default(),
        };
        Ok(match self.store.stored_record(&probe).await? {
            Some(BillingRecord::Price { price, .. }) => {
                price.recurring.and_then(|recurring| recurring.meter)
            }
            _ => None,
        })
    }
}
