//! Provisioning leases in the in-memory store.

use async_trait::async_trait;

use super::{InMemoryStore, lock};
use crate::domain::CustomerId;
use crate::error::Result;
use crate::ports::ProvisioningLeases;

#[async_trait]
impl ProvisioningLeases for InMemoryStore {
    async fn take_lease(&self, customer: &CustomerId, holder: &str, now: i64) -> Result<bool> {
        self.enter("PutItem")?;
        let mut tables = lock(&self.tables);
        match tables.leases.get(customer) {
            Some((_, until)) if *until >= now => Ok(false),
            _ => {
                let until = now + crate::table::PROVISIONING_LEASE_SECS;
                tables
                    .leases
                    .insert(customer.clone(), (holder.to_owned(), until));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, customer: &CustomerId, holder: &str) -> Result<()> {
        self.enter("DeleteItem")?;
        let mut tables = lock(&self.tables);
        if tables
            .leases
            .get(customer)
            .is_some_and(|(held_by, _)| held_by == holder)
        {
            tables.leases.remove(customer);
        }
        Ok(())
    }

    async fn forget_provisioned(&self, customer: &CustomerId) -> Result<()> {
        self.enter("DeleteItem")?;
        lock(&self.tables).provisioned.remove(customer);
        Ok(())
    }
}
