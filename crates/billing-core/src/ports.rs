//! Ports: what the use cases need from the outside world, one narrow trait per collaborator.
//! Adapters in `adapters/` implement them over the AWS SDK and async-stripe; `fakes` (feature
//! `test-util`) implements them in memory for handler tests.

use async_trait::async_trait;

use crate::domain::{
    CustomerId, CustomerLink, Email, NewCustomer, StripeCustomer, UserPoolId, UserSub, Username,
};
use crate::error::Result;

/// The user <-> customer links (DynamoDB in production).
#[async_trait]
pub trait CustomerLinks: Send + Sync {
    async fn customer_of_user(&self, sub: &UserSub) -> Result<Option<CustomerLink>>;

    /// Writes both directions at once. Fails with `Error::ConditionalCheckFailed` when either
    /// direction already exists, so one user can never be linked to two customers.
    async fn link(&self, link: &CustomerLink) -> Result<()>;
}

/// The Stripe side of customer management.
#[async_trait]
pub trait Billing: Send + Sync {
    /// Customers whose metadata names this Cognito sub (not deleted).
    async fn customers_by_sub(&self, sub: &UserSub) -> Result<Vec<StripeCustomer>>;

    /// Customers with this email (not deleted).
    async fn customers_by_email(&self, email: &Email) -> Result<Vec<StripeCustomer>>;

    /// Creates the customer with `customer.idempotency_key`, so a repeat returns the first one.
    async fn create_customer(&self, customer: &NewCustomer) -> Result<CustomerId>;
}

/// The Cognito user pool, through its admin API.
#[async_trait]
pub trait Directory: Send + Sync {
    /// Sets `custom:stripe_customer_id` on the user.
    async fn set_customer_id(
        &self,
        pool_id: &UserPoolId,
        username: &Username,
        customer_id: &CustomerId,
    ) -> Result<()>;
}
