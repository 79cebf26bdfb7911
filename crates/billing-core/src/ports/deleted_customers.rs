//! Customers whose account was deleted: a tombstone, and removing everything kept about them.

use async_trait::async_trait;

use crate::domain::CustomerId;
use crate::error::Result;

/// The customers of deleted accounts (DynamoDB in production).
#[async_trait]
pub trait DeletedCustomers: Send + Sync {
    /// Marks the customer deleted for 35 days: the events its deletion causes in Stripe (the
    /// cancellations, `customer.deleted`) are then acknowledged without being kept or parked.
    async fn tombstone_customer(&self, customer_id: &CustomerId, now: i64) -> Result<()>;

    async fn is_deleted_customer(&self, customer_id: &CustomerId) -> Result<bool>;

    /// Removes every item kept about the customer (profile, subscriptions, invoices, payments,
    /// checkout sessions, delinquency, links), except its provisioning lease, which its holder
    /// releases. Removing what is already gone is not an error.
    async fn purge_customer(&self, customer_id: &CustomerId) -> Result<()>;
}
