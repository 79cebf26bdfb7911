//! Subscriptions, records and stacks in the in-memory store, with DynamoDB's ordering rule.

use async_trait::async_trait;

use super::store::StoreTables;
use super::{InMemoryStore, lock};
use crate::domain::CustomerId;
use crate::error::Result;
use crate::plans::SubscriptionState;
use crate::ports::{
    BillingRecord, Freshness, StackRecord, StackState, SyncStore, UnmappedEvent, Versioned,
};

/// The ordering rule of versioned writes: newer applies, same event or older is stale, another
/// event of the same second is a tie (applied when allowed).
fn freshness(
    stored: Option<(i64, &str)>,
    created: i64,
    event_id: &str,
    allow_tie: bool,
) -> Freshness {
    match stored {
        None => Freshness::Applied,
        Some((_, stored_id)) if stored_id == event_id => Freshness::Same,
        Some((stored_created, _)) if created > stored_created => Freshness::Applied,
        Some((stored_created, stored_id)) if created == stored_created && stored_id != event_id => {
            if allow_tie {
                Freshness::Applied
            } else {
                Freshness::Tie
            }
        }
        Some((stored_created, _)) if created == stored_created && allow_tie => Freshness::Applied,
        _ => Freshness::Stale,
    }
}

/// How a record's versioned write would go over what is stored (no tie allowed).
pub(super) fn record_freshness(
    tables: &StoreTables,
    record: &Versioned<BillingRecord>,
) -> Freshness {
    let stored = tables
        .records
        .get(&(record.state.kind(), record.state.id().to_owned()))
        .map(|v| (v.event_created, v.event_id.as_str()));
    freshness(stored, record.event_created, &record.event_id, false)
}

pub(super) fn insert_record(tables: &mut StoreTables, record: &Versioned<BillingRecord>) {
    let key = (record.state.kind(), record.state.id().to_owned());
    tables.records.insert(key, record.clone());
}

#[async_trait]
impl SyncStore for InMemoryStore {
    async fn put_subscription(
        &self,
        subscription: &Versioned<SubscriptionState>,
        allow_tie: bool,
        review_at: Option<i64>,
    ) -> Result<Freshness> {
        self.enter("PutItem")?;
        let key = (
            subscription.state.customer_id.clone(),
            subscription.state.id.clone(),
        );
        let mut tables = lock(&self.tables);
        let stored = tables
            .subscriptions
            .get(&key)
            .map(|v| (v.event_created, v.event_id.as_str()));
        let outcome = freshness(
            stored,
            subscription.event_created,
            &subscription.event_id,
            allow_tie,
        );
        if outcome == Freshness::Applied {
            match review_at {
                Some(at) => tables.reviews.insert(key.clone(), at),
                None => tables.reviews.remove(&key),
            };
            tables.subscriptions.insert(key, subscription.clone());
        }
        Ok(outcome)
    }

    async fn subscription(
        &self,
        customer_id: &CustomerId,
        id: &str,
    ) -> Result<Option<Versioned<SubscriptionState>>> {
        self.enter("GetItem")?;
        let key = (customer_id.to_string(), id.to_owned());
        let mut tables = lock(&self.tables);
        let read = tables.subscriptions.get(&key).cloned();
        if let Some(concurrent) = tables.written_after_next_read.take() {
            let key = (
                concurrent.state.customer_id.clone(),
                concurrent.state.id.clone(),
            );
            tables.subscriptions.insert(key, concurrent);
        }
        Ok(read)
    }

    async fn subscriptions_of(&self, customer_id: &CustomerId) -> Result<Vec<SubscriptionState>> {
        self.enter("Query")?;
        Ok(lock(&self.tables)
            .subscriptions
            .values()
            .filter(|v| v.state.customer_id == customer_id.as_str())
            .map(|v| v.state.clone())
            .collect())
    }

    async fn put_record(&self, record: &Versioned<BillingRecord>) -> Result<Freshness> {
        self.enter("PutItem")?;
        let mut tables = lock(&self.tables);
        let outcome = record_freshness(&tables, record);
        if outcome == Freshness::Applied {
            insert_record(&mut tables, record);
        }
        Ok(outcome)
    }

    async fn park_unmapped(
        &self,
        customer_id: &str,
        event_id: &str,
        event_type: &str,
        now: i64,
    ) -> Result<()> {
        self.enter("PutItem")?;
        let mut tables = lock(&self.tables);
        tables
            .unmapped
            .retain(|parked| parked.customer_id != customer_id || parked.event_id != event_id);
        tables.unmapped.push(UnmappedEvent {
            customer_id: customer_id.to_owned(),
            event_id: event_id.to_owned(),
            event_type: event_type.to_owned(),
            parked_at: now,
        });
        Ok(())
    }

    async fn unmapped_events(&self) -> Result<Vec<UnmappedEvent>> {
        self.enter("Query")?;
        let mut parked = lock(&self.tables).unmapped.clone();
        parked.sort_by_key(|event| event.parked_at);
        Ok(parked)
    }

    async fn stacks_of(&self, subscription_id: &str) -> Result<Vec<StackRecord>> {
        self.enter("Query")?;
        Ok(lock(&self.tables)
            .stacks
            .values()
            .filter(|stack| stack.subscription_id == subscription_id)
            .cloned()
            .collect())
    }

    async fn stacks_in_state(&self, state: StackState) -> Result<Vec<StackRecord>> {
        self.enter("Query")?;
        Ok(lock(&self.tables)
            .stacks
            .values()
            .filter(|stack| stack.state == state)
            .cloned()
            .collect())
    }

    async fn put_stack(&self, stack: &StackRecord) -> Result<()> {
        self.enter("PutItem")?;
        lock(&self.tables).stacks.insert(
            (stack.subscription_id.clone(), stack.stack_name.clone()),
            stack.clone(),
        );
        Ok(())
    }
}
