//! Tombstones and purges in the in-memory store.

use async_trait::async_trait;

use super::{InMemoryStore, lock};
use crate::domain::CustomerId;
use crate::error::Result;
use crate::ports::DeletedCustomers;

#[async_trait]
impl DeletedCustomers for InMemoryStore {
    async fn tombstone_customer(&self, customer_id: &CustomerId, _now: i64) -> Result<()> {
        self.enter("PutItem")?;
        lock(&self.tables)
            .deleted_customers
            .insert(customer_id.clone());
        Ok(())
    }

    async fn is_deleted_customer(&self, customer_id: &CustomerId) -> Result<bool> {
        self.enter("GetItem")?;
        Ok(lock(&self.tables).deleted_customers.contains(customer_id))
    }

    async fn purge_customer(&self, customer_id: &CustomerId) -> Result<()> {
        self.enter("Query")?;
        let mut tables = lock(&self.tables);
        let customer = customer_id.as_str();
        tables
            .subscriptions
            .retain(|(owner, _), _| owner != customer);
        tables
            .records
            .retain(|_, record| record.state.customer_id() != Some(customer));
        tables.provisioned.remove(customer_id);
        if let Some(sub) = tables.by_customer.remove(customer_id) {
            tables.by_user.remove(&sub);
        }
        Ok(())
    }
}
