//! The event log in the in-memory store.

use async_trait::async_trait;

use super::{InMemoryStore, lock};
use crate::error::Result;
use crate::ports::{EventClaim, EventLog};

#[async_trait]
impl EventLog for InMemoryStore {
    async fn claim(&self, event_id: &str, _now: i64) -> Result<EventClaim> {
        self.enter("PutItem")?;
        let mut tables = lock(&self.tables);
        Ok(match tables.events.get(event_id) {
            Some(true) => EventClaim::AlreadyDone,
            Some(false) => EventClaim::InProgress,
            None => {
                tables.events.insert(event_id.to_owned(), false);
                EventClaim::Claimed
            }
        })
    }

    async fn complete(&self, event_id: &str, _now: i64) -> Result<()> {
        self.enter("PutItem")?;
        lock(&self.tables).events.insert(event_id.to_owned(), true);
        Ok(())
    }

    async fn release(&self, event_id: &str) -> Result<()> {
        // Releasing must work while the store is "down" for the test's purpose: it is what
        // lets the retry redo the event, as the lease expiry would in DynamoDB.
        let mut tables = lock(&self.tables);
        if tables.events.get(event_id) == Some(&false) {
            tables.events.remove(event_id);
        }
        Ok(())
    }
}
