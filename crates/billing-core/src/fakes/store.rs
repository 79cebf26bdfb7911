//! The in-memory store: the DynamoDB table's ports in maps, with inspection helpers for tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{lock, outage};
use crate::domain::{CustomerId, CustomerLink, UserSub};
use crate::error::{Result, Upstream};
use crate::plans::SubscriptionState;
use crate::ports::{BillingRecord, CheckoutRecord, RecordKind, StackRecord, Versioned};

/// A claimed event: worked on until its lease runs out, or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EventEntry {
    Processing { lease_until: i64 },
    Done,
}

#[derive(Debug, Default)]
pub(super) struct StoreTables {
    pub(super) by_user: HashMap<UserSub, CustomerLink>,
    pub(super) by_customer: HashMap<CustomerId, UserSub>,
    pub(super) checkouts: HashMap<String, CheckoutRecord>,
    pub(super) events: HashMap<String, EventEntry>,
    pub(super) subscriptions: BTreeMap<(String, String), Versioned<SubscriptionState>>,
    pub(super) records: BTreeMap<(RecordKind, String), Versioned<BillingRecord>>,
    pub(super) unmapped: Vec<crate::ports::UnmappedEvent>,
    pub(super) unreadable: Vec<crate::ports::RecordedUnreadable>,
    pub(super) stacks: BTreeMap<(String, String), StackRecord>,
    /// customer -> (holder, until)
    pub(super) leases: HashMap<CustomerId, (String, i64)>,
    pub(super) deleted_customers: std::collections::HashSet<CustomerId>,
    /// What the webhook last applied to each customer's user.
    pub(super) provisioned: HashMap<CustomerId, crate::ports::ProvisionedState>,
    /// (customer, subscription) -> review time, written with the subscription.
    pub(super) reviews: BTreeMap<(String, String), i64>,
    pub(super) cursors: HashMap<String, i64>,
    /// Each user's key rotations, by time.
    pub(super) rotations: HashMap<UserSub, Vec<i64>>,
    /// The usage reporter's cursors.
    pub(super) usage_cursors: BTreeMap<crate::usage::UsageSlot, crate::usage::UsageCursor>,
    /// A subscription state another delivery stores right after the next read of it.
    pub(super) written_after_next_read: Option<Versioned<SubscriptionState>>,
}

#[derive(Debug, Default)]
pub struct InMemoryStore {
    pub(super) tables: Mutex<StoreTables>,
    pub failing: AtomicBool,
    pub writes: AtomicUsize,
    /// Every DynamoDB call made, by its operation name, in order (what a test counts).
    pub calls: Mutex<Vec<&'static str>>,
}

impl InMemoryStore {
    /// Stores `concurrent` (as a concurrent delivery would) just after the next read of its
    /// subscription: the interleaving a reader that does not hold the lease can meet.
    pub fn store_after_next_read(&self, concurrent: Versioned<SubscriptionState>) {
        lock(&self.tables).written_after_next_read = Some(concurrent);
    }

    pub fn sub_of_customer(&self, customer_id: &CustomerId) -> Option<UserSub> {
        lock(&self.tables).by_customer.get(customer_id).cloned()
    }

    pub fn link_count(&self) -> usize {
        lock(&self.tables).by_user.len()
    }

    pub fn stored_subscriptions(&self) -> Vec<SubscriptionState> {
        lock(&self.tables)
            .subscriptions
            .values()
            .map(|versioned| versioned.state.clone())
            .collect()
    }

    /// The stored record of this kind about the Stripe object (or customer) `id`.
    pub fn record(&self, kind: RecordKind, id: &str) -> Option<BillingRecord> {
        lock(&self.tables)
            .records
            .get(&(kind, id.to_owned()))
            .map(|versioned| versioned.state.clone())
    }

    pub fn records(&self) -> Vec<BillingRecord> {
        lock(&self.tables)
            .records
            .values()
            .map(|versioned| versioned.state.clone())
            .collect()
    }

    /// (customer, event id) of each parked event.
    pub fn unmapped(&self) -> Vec<(String, String)> {
        lock(&self.tables)
            .unmapped
            .iter()
            .map(|parked| (parked.customer_id.clone(), parked.event_id.clone()))
            .collect()
    }

    pub fn stacks(&self) -> Vec<StackRecord> {
        lock(&self.tables).stacks.values().cloned().collect()
    }

    pub fn checkout_record(&self, session_id: &str) -> Option<CheckoutRecord> {
        lock(&self.tables).checkouts.get(session_id).cloned()
    }

    /// Moves a checkout record's creation back in time (its one-time key expires from it).
    pub fn set_checkout_created_at(&self, session_id: &str, created_at: i64) {
        if let Some(record) = lock(&self.tables).checkouts.get_mut(session_id) {
            record.created_at = created_at;
        }
    }

    /// Everything kept about the customer: subscriptions, records, links (not the lease).
    pub fn items_of_customer(&self, customer_id: &CustomerId) -> usize {
        let tables = lock(&self.tables);
        let customer = customer_id.as_str();
        tables
            .subscriptions
            .keys()
            .filter(|(owner, _)| owner == customer)
            .count()
            + tables
                .records
                .values()
                .filter(|record| record.state.customer_id() == Some(customer))
                .count()
            + usize::from(tables.by_customer.contains_key(customer_id))
    }

    /// The review time stored with a subscription.
    pub fn review_of(&self, customer_id: &str, subscription_id: &str) -> Option<i64> {
        lock(&self.tables)
            .reviews
            .get(&(customer_id.to_owned(), subscription_id.to_owned()))
            .copied()
    }

    pub fn checkout_count(&self) -> usize {
        lock(&self.tables).checkouts.len()
    }

    /// The DynamoDB calls made so far, by operation, in order.
    pub fn calls(&self) -> Vec<&'static str> {
        lock(&self.calls).clone()
    }

    /// Forgets the calls counted so far.
    pub fn reset_calls(&self) {
        lock(&self.calls).clear();
    }

    pub(super) fn enter(&self, operation: &'static str) -> Result<()> {
        lock(&self.calls).push(operation);
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::DynamoDb, operation));
        }
        Ok(())
    }
}
