//! The event log in the in-memory store.

use std::collections::HashSet;

use async_trait::async_trait;

use super::store::EventEntry;
use super::{InMemoryStore, lock};
use crate::error::Result;
use crate::ports::{EventClaim, EventLog, RecordedUnreadable, UnreadableEvent};
use crate::table::{BATCH_GET_MAX_KEYS, EVENT_LEASE_SECS};

#[async_trait]
impl EventLog for InMemoryStore {
    async fn claim(&self, event_id: &str, now: i64) -> Result<EventClaim> {
        self.enter("PutItem")?;
        let mut tables = lock(&self.tables);
        Ok(match tables.events.get(event_id) {
            Some(EventEntry::Done) => EventClaim::AlreadyDone,
            Some(EventEntry::Processing { lease_until }) if *lease_until >= now => {
                EventClaim::InProgress
            }
            _ => {
                let lease_until = now + EVENT_LEASE_SECS;
                tables
                    .events
                    .insert(event_id.to_owned(), EventEntry::Processing { lease_until });
                EventClaim::Claimed
            }
        })
    }

    async fn complete(&self, event_id: &str, _now: i64) -> Result<()> {
        self.enter("PutItem")?;
        lock(&self.tables)
            .events
            .insert(event_id.to_owned(), EventEntry::Done);
        Ok(())
    }

    async fn done_among(&self, event_ids: &[&str]) -> Result<HashSet<String>> {
        for _ in event_ids.chunks(BATCH_GET_MAX_KEYS) {
            self.enter("BatchGetItem")?;
        }
        let tables = lock(&self.tables);
        Ok(event_ids
            .iter()
            .filter(|id| matches!(tables.events.get(**id), Some(EventEntry::Done)))
            .map(|id| (*id).to_owned())
            .collect())
    }

    async fn release(&self, event_id: &str) -> Result<()> {
        // Releasing must work while the store is "down" for the test's purpose: it is what
        // lets the retry redo the event, as the lease expiry would in DynamoDB.
        lock(&self.calls).push("DeleteItem");
        let mut tables = lock(&self.tables);
        if matches!(
            tables.events.get(event_id),
            Some(EventEntry::Processing { .. })
        ) {
            tables.events.remove(event_id);
        }
        Ok(())
    }

    async fn record_unreadable(&self, event: &UnreadableEvent, now: i64) -> Result<()> {
        self.enter("PutItem")?;
        let mut tables = lock(&self.tables);
        tables
            .unreadable
            .retain(|kept| kept.event.event_id != event.event_id);
        tables.unreadable.push(RecordedUnreadable {
            event: event.clone(),
            received_at: now,
        });
        Ok(())
    }

    async fn unreadable_events(&self) -> Result<Vec<RecordedUnreadable>> {
        self.enter("Query")?;
        let mut events = lock(&self.tables).unreadable.clone();
        events.sort_by_key(|recorded| recorded.received_at);
        Ok(events)
    }
}
