//! Usage billing's ports in memory: API Gateway's counts (recorded by tests on the fake keys),
//! Stripe's meters and the meter events it accepted (with its identifier deduplication and
//! 35-day limit), and the reporter's cursors in the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::{FakeApiKeys, FakeStripe, InMemoryStore, lock, outage};
use crate::domain::UserSub;
use crate::error::{Result, Upstream};
use crate::ports::{MeterEvent, MeterEventAnswer, MeterInfo, Meters, UsageCounts, UsageStore};
use crate::usage::{UsageCursor, UsageSlot, UtcDay};

/// How far back Stripe takes a meter event.
const METER_EVENT_MAX_AGE_SECS: i64 = crate::usage::METER_EVENT_MAX_AGE_DAYS * 24 * 3600;

/// Calls per (usage plan, key, day), and how often usage was read.
#[derive(Debug, Default)]
pub struct FakeUsage {
    pub(super) calls: Mutex<BTreeMap<(String, String, UtcDay), u64>>,
    pub reads: AtomicUsize,
}

impl FakeApiKeys {
    /// Calls made with a key on a usage plan on a day (added to what the day has).
    pub fn record_calls(&self, usage_plan_id: &str, key_id: &str, day: UtcDay, calls: u64) {
        *lock(&self.usage.calls)
            .entry((usage_plan_id.to_owned(), key_id.to_owned(), day))
            .or_default() += calls;
    }

    /// How many `GetUsage` reads were made.
    pub fn usage_reads(&self) -> usize {
        self.usage.reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl UsageCounts for FakeApiKeys {
    async fn usage(
        &self,
        usage_plan_id: &str,
        key_id: Option<&str>,
        from: UtcDay,
        to: UtcDay,
    ) -> Result<BTreeMap<String, BTreeMap<UtcDay, u64>>> {
        self.enter("GetUsage")?;
        self.usage.reads.fetch_add(1, Ordering::SeqCst);
        let mut usage: BTreeMap<String, BTreeMap<UtcDay, u64>> = BTreeMap::new();
        for ((plan, key, day), calls) in lock(&self.usage.calls).iter() {
            if plan == usage_plan_id
                && key_id.is_none_or(|wanted| wanted == key)
                && (from..=to).contains(day)
            {
                usage.entry(key.clone()).or_default().insert(*day, *calls);
            }
        }
        Ok(usage)
    }

    async fn key_owner(&self, key_id: &str) -> Result<Option<UserSub>> {
        self.enter("GetApiKey")?;
        Ok(self
            .keys()
            .into_iter()
            .find(|key| key.id == key_id)
            .map(|key| key.owner))
    }
}

/// Stripe's meters and the meter events it accepted.
#[derive(Debug, Default)]
pub struct FakeMeters {
    pub(super) meters: Mutex<HashMap<String, MeterInfo>>,
    pub(super) accepted: Mutex<Vec<MeterEvent>>,
    /// Every meter event request made, duplicates included.
    pub sends: AtomicUsize,
    /// Every meter read.
    pub reads: AtomicUsize,
    /// Accept the next N events, then answer as if the connection broke (a timeout after
    /// Stripe took it).
    pub lose_answers: AtomicUsize,
    /// Stripe's clock for the 35-day limit; 0: the event's own time is taken as fine.
    pub now: std::sync::atomic::AtomicI64,
}

impl FakeStripe {
    pub fn add_meter(&self, meter: MeterInfo) {
        lock(&self.meters.meters).insert(meter.id.clone(), meter);
    }

    /// The meter events Stripe accepted, in order.
    pub fn meter_events(&self) -> Vec<MeterEvent> {
        lock(&self.meters.accepted).clone()
    }

    /// What the meter aggregates (sum) for a customer.
    pub fn metered_total(&self, customer_id: &str) -> u64 {
        self.meter_events()
            .iter()
            .filter(|event| event.customer_id == customer_id)
            .map(|event| event.value)
            .sum()
    }
}

#[async_trait]
impl Meters for FakeStripe {
    async fn meter(&self, meter_id: &str) -> Result<Option<MeterInfo>> {
        self.enter("RetrieveBillingMeter")?;
        self.meters.reads.fetch_add(1, Ordering::SeqCst);
        Ok(lock(&self.meters.meters).get(meter_id).cloned())
    }

    async fn send_meter_event(&self, event: &MeterEvent) -> Result<MeterEventAnswer> {
        self.enter("CreateBillingMeterEvent")?;
        self.meters.sends.fetch_add(1, Ordering::SeqCst);
        // A network call: lets an overlapping run go on meanwhile.
        tokio::task::yield_now().await;
        let now = self.meters.now.load(Ordering::SeqCst);
        if now != 0 && event.timestamp < now - METER_EVENT_MAX_AGE_SECS {
            return Ok(MeterEventAnswer::Refused);
        }
        let mut accepted = lock(&self.meters.accepted);
        if accepted.iter().any(|e| e.identifier == event.identifier) {
            return Ok(MeterEventAnswer::Duplicate);
        }
        accepted.push(event.clone());
        drop(accepted);
        let lost = self
            .meters
            .lose_answers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lost {
            return Err(outage(Upstream::Stripe, "CreateBillingMeterEvent"));
        }
        Ok(MeterEventAnswer::Accepted)
    }

    async fn reported_usage(
        &self,
        meter_id: &str,
        customer_id: &str,
        start: i64,
        end: i64,
    ) -> Result<u64> {
        self.enter("ListBillingMeterEventSummaries")?;
        assert!(
            start % 60 == 0 && end % 60 == 0 && start < end,
            "Stripe wants minute boundaries: {start}..{end}"
        );
        Ok(self
            .meter_events()
            .iter()
            .filter(|event| {
                event.meter.id == meter_id
                    && event.customer_id == customer_id
                    && (start..end).contains(&event.timestamp)
            })
            .map(|event| event.value)
            .sum())
    }
}

#[async_trait]
impl UsageStore for InMemoryStore {
    async fn usage_cursor(&self, slot: &UsageSlot) -> Result<UsageCursor> {
        self.enter("GetItem")?;
        tokio::task::yield_now().await;
        Ok(lock(&self.tables)
            .usage_cursors
            .get(slot)
            .cloned()
            .unwrap_or_default())
    }

    async fn replace_usage_cursor(
        &self,
        slot: &UsageSlot,
        expected: &UsageCursor,
        next: &UsageCursor,
        _now: i64,
    ) -> Result<bool> {
        self.enter("PutItem")?;
        let mut tables = lock(&self.tables);
        let stored = tables.usage_cursors.get(slot).cloned().unwrap_or_default();
        if &stored != expected {
            return Ok(false);
        }
        tables.usage_cursors.insert(slot.clone(), next.clone());
        Ok(true)
    }

    async fn usage_cursors_of(
        &self,
        key_id: &str,
        from: UtcDay,
        to: UtcDay,
    ) -> Result<Vec<(UsageSlot, UsageCursor)>> {
        self.enter("Query")?;
        Ok(lock(&self.tables)
            .usage_cursors
            .iter()
            .filter(|(slot, _)| slot.key_id == key_id && (from..=to).contains(&slot.day))
            .map(|(slot, cursor)| (slot.clone(), cursor.clone()))
            .collect())
    }
}
