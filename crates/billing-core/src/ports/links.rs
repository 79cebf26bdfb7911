//! The user <-> customer links.

use async_trait::async_trait;

use crate::domain::{CustomerId, CustomerLink, UserSub};
use crate::error::Result;

/// The user <-> customer links (DynamoDB in production).
#[async_trait]
pub trait CustomerLinks: Send + Sync {
    async fn customer_of_user(&self, sub: &UserSub) -> Result<Option<CustomerLink>>;

    /// Writes both directions at once. Fails with `Error::ConditionalCheckFailed` when either
    /// direction already exists, so one user can never be linked to two customers.
    async fn link(&self, link: &CustomerLink) -> Result<()>;

    /// Removes both directions; removing what is already gone is not an error.
    async fn unlink(&self, link: &CustomerLink) -> Result<()>;

    /// customer -> user: who a Stripe event is about.
    async fn user_of_customer(&self, customer_id: &CustomerId) -> Result<Option<CustomerLink>>;
}
