//! The Cognito user pool, through its admin API.

use async_trait::async_trait;

use crate::domain::{CustomerId, UserPoolId, Username};
use crate::error::Result;
use crate::plans::PlanName;

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

    /// Sets `custom:plan_type` on the user.
    async fn set_plan(
        &self,
        pool_id: &UserPoolId,
        username: &Username,
        plan: &PlanName,
    ) -> Result<()>;

    /// Deletes the user; an absent one is not an error.
    async fn delete_user(&self, pool_id: &UserPoolId, username: &Username) -> Result<()>;
}
