//! User <-> customer links in the in-memory store.

use std::sync::atomic::Ordering;

use async_trait::async_trait;

use super::{InMemoryStore, lock, outage};
use crate::domain::{CustomerId, CustomerLink, UserSub};
use crate::error::{Error, Result, Upstream};
use crate::ports::CustomerLinks;

#[async_trait]
impl CustomerLinks for InMemoryStore {
    async fn customer_of_user(&self, sub: &UserSub) -> Result<Option<CustomerLink>> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::DynamoDb, "GetItem"));
        }
        Ok(lock(&self.tables).by_user.get(sub).cloned())
    }

    async fn link(&self, link: &CustomerLink) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::DynamoDb, "TransactWriteItems"));
        }
        let mut tables = lock(&self.tables);
        if tables.by_user.contains_key(&link.sub)
            || tables.by_customer.contains_key(&link.customer_id)
        {
            return Err(Error::ConditionalCheckFailed);
        }
        tables.by_user.insert(link.sub.clone(), link.clone());
        tables
            .by_customer
            .insert(link.customer_id.clone(), link.sub.clone());
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn user_of_customer(&self, customer_id: &CustomerId) -> Result<Option<CustomerLink>> {
        self.enter("GetItem")?;
        let tables = lock(&self.tables);
        Ok(tables
            .by_customer
            .get(customer_id)
            .and_then(|sub| tables.by_user.get(sub))
            .cloned())
    }

    async fn unlink(&self, link: &CustomerLink) -> Result<()> {
        self.enter("TransactWriteItems")?;
        let mut tables = lock(&self.tables);
        tables.by_user.remove(&link.sub);
        tables.by_customer.remove(&link.customer_id);
        Ok(())
    }
}
