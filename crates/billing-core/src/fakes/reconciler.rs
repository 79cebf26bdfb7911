//! The reconciler's ports in memory: Stripe's event list (recorded by tests) and the cursor
//! and reviews of the store.

use async_trait::async_trait;

use super::{FakeStripe, InMemoryStore, lock};
use crate::domain::CustomerId;
use crate::error::Result;
use crate::ports::{DueReview, EventFeed, EventsPage, EventsQuery, ListedEvent, ReconcilerStore};

/// What one page holds, small so tests page.
const FAKE_PAGE_SIZE: usize = 3;

impl FakeStripe {
    /// An event as Stripe would list it (and as the webhook may or may not have received it).
    pub fn record_event(&self, body: &serde_json::Value) {
        let id = body["id"].as_str().unwrap_or_default().to_owned();
        let created = body["created"].as_i64().unwrap_or_default();
        let body = serde_json::to_vec(body).unwrap_or_default();
        lock(&self.state)
            .events
            .push(ListedEvent { id, created, body });
    }

    /// How many pages of events have been asked for.
    pub fn event_pages_listed(&self) -> usize {
        lock(&self.state).event_pages_listed
    }
}

#[async_trait]
impl EventFeed for FakeStripe {
    async fn events_page(&self, query: &EventsQuery<'_>) -> Result<EventsPage> {
        self.enter("ListEvents")?;
        let mut state = lock(&self.state);
        state.event_pages_listed += 1;
        // Newest first, as Stripe lists them; the latest recorded first among equal times.
        let mut matching: Vec<&ListedEvent> = state
            .events
            .iter()
            .rev()
            .filter(|event| (query.created_gte..=query.created_lte).contains(&event.created))
            .filter(|event| {
                let value: serde_json::Value =
                    serde_json::from_slice(&event.body).unwrap_or_default();
                query
                    .types
                    .contains(&value["type"].as_str().unwrap_or_default())
            })
            .collect();
        matching.sort_by_key(|event| std::cmp::Reverse(event.created));
        let start = match query.starting_after {
            Some(after) => matching
                .iter()
                .position(|event| event.id == after)
                .map_or(matching.len(), |at| at + 1),
            None => 0,
        };
        let rest = &matching[start.min(matching.len())..];
        Ok(EventsPage {
            events: rest
                .iter()
                .take(FAKE_PAGE_SIZE)
                .map(|e| (*e).clone())
                .collect(),
            has_more: rest.len() > FAKE_PAGE_SIZE,
        })
    }
}

#[async_trait]
impl ReconcilerStore for InMemoryStore {
    async fn cursor(&self, name: &str) -> Result<Option<i64>> {
        self.enter("GetItem")?;
        Ok(lock(&self.tables).cursors.get(name).copied())
    }

    async fn advance_cursor(&self, name: &str, at: i64, _now: i64) -> Result<()> {
        self.enter("UpdateItem")?;
        let mut tables = lock(&self.tables);
        let cursor = tables.cursors.entry(name.to_owned()).or_insert(at);
        *cursor = (*cursor).max(at);
        Ok(())
    }

    async fn due_reviews(&self, now: i64, limit: usize) -> Result<Vec<DueReview>> {
        self.enter("Query")?;
        let tables = lock(&self.tables);
        let mut due: Vec<DueReview> = tables
            .reviews
            .iter()
            .filter(|(_, at)| **at <= now)
            .filter_map(|((customer, subscription), at)| {
                Some(DueReview {
                    customer_id: CustomerId::parse(customer.as_str()).ok()?,
                    subscription_id: subscription.clone(),
                    review_at: *at,
                })
            })
            .collect();
        due.sort_by_key(|review| review.review_at);
        due.truncate(limit);
        Ok(due)
    }

    async fn set_review(
        &self,
        customer_id: &CustomerId,
        subscription_id: &str,
        review_at: Option<i64>,
    ) -> Result<()> {
        self.enter("UpdateItem")?;
        let mut tables = lock(&self.tables);
        let key = (customer_id.to_string(), subscription_id.to_owned());
        if !tables.subscriptions.contains_key(&key) {
            return Ok(());
        }
        match review_at {
            Some(at) => tables.reviews.insert(key, at),
            None => tables.reviews.remove(&key),
        };
        Ok(())
    }
}
