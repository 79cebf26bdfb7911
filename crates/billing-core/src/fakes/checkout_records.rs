//! Checkout session records in the in-memory store.

use async_trait::async_trait;

use super::InMemoryStore;
use super::lock;
use crate::domain::UserSub;
use crate::error::{Error, Result};
use crate::ports::{CheckoutRecord, CheckoutRecords};

#[async_trait]
impl CheckoutRecords for InMemoryStore {
    async fn put(&self, record: &CheckoutRecord) -> Result<()> {
        self.enter("PutItem")?;
        let mut tables = lock(&self.tables);
        if tables.checkouts.contains_key(&record.session_id) {
            return Err(Error::ConditionalCheckFailed);
        }
        tables
            .checkouts
            .insert(record.session_id.clone(), record.clone());
        Ok(())
    }

    async fn get(&self, session_id: &str) -> Result<Option<CheckoutRecord>> {
        self.enter("GetItem")?;
        Ok(lock(&self.tables).checkouts.get(session_id).cloned())
    }

    async fn mark_completed(&self, session_id: &str) -> Result<bool> {
        self.enter("UpdateItem")?;
        match lock(&self.tables).checkouts.get_mut(session_id) {
            Some(record) if !record.completed => {
                record.completed = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_for_user(&self, sub: &UserSub) -> Result<()> {
        self.enter("Query")?;
        lock(&self.tables)
            .checkouts
            .retain(|_, record| &record.sub != sub);
        Ok(())
    }
}
