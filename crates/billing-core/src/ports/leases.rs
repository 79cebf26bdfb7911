//! Provisioning leases: one provisioning at a time per customer.

use async_trait::async_trait;

use crate::domain::CustomerId;
use crate::error::Result;

/// One provisioning at a time per customer, so per user (see `provisioning::under_lease`).
#[async_trait]
pub trait ProvisioningLeases: Send + Sync {
    /// Takes the customer's lease for `holder` until `now + PROVISIONING_LEASE_SECS`; false
    /// while another holder's lease runs.
    async fn take_lease(&self, customer: &CustomerId, holder: &str, now: i64) -> Result<bool>;

    /// Ends `holder`'s lease; nothing when the lease is not (or no longer) theirs.
    async fn release_lease(&self, customer: &CustomerId, holder: &str) -> Result<()>;

    /// Removes the record of what deliveries applied to the customer's user (`PROVISIONED`)
    /// before a change is applied, by a delivery or by anyone else holding the lease: until it
    /// is written again, every delivery applies the plan in full.
    async fn forget_provisioned(&self, customer: &CustomerId) -> Result<()>;
}
