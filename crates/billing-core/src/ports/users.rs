//! Finding and creating Cognito users.

use async_trait::async_trait;

use crate::domain::{Email, UserPoolId, UserSub, Username};
use crate::error::Result;

/// Finding and creating Cognito users for payments made before sign-up.
#[async_trait]
pub trait UserLookup: Send + Sync {
    async fn user_by_sub(&self, pool_id: &UserPoolId, sub: &str) -> Result<Option<CognitoUserRef>>;

    /// Users who may be linked by this e-mail: CONFIRMED, with `email_verified` true. Someone
    /// who signed up with a payer's address and never verified it must not capture the payer.
    async fn verified_users_by_email(
        &self,
        pool_id: &UserPoolId,
        email: &Email,
    ) -> Result<Vec<CognitoUserRef>>;

    /// Creates a user from the payer's email, not marked verified: Cognito sends the invitation
    /// and the user verifies the address.
    async fn create_user(&self, pool_id: &UserPoolId, email: &Email) -> Result<CognitoUserRef>;
}

/// A Cognito user found by the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CognitoUserRef {
    pub username: Username,
    pub sub: UserSub,
}
