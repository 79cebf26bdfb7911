//! Finding and creating Cognito users in memory.

use async_trait::async_trait;

use super::{FakeDirectory, lock};
use crate::domain::{Email, UserPoolId, UserSub, Username};
use crate::error::{Error, Result, Upstream};
use crate::ports::{CognitoUserRef, UserLookup};

#[async_trait]
impl UserLookup for FakeDirectory {
    async fn user_by_sub(
        &self,
        _pool_id: &UserPoolId,
        sub: &str,
    ) -> Result<Option<CognitoUserRef>> {
        self.enter()?;
        Ok(lock(&self.users)
            .iter()
            .find(|(user, _, _)| user.sub.as_str() == sub)
            .map(|(user, _, _)| user.clone()))
    }

    async fn verified_users_by_email(
        &self,
        _pool_id: &UserPoolId,
        email: &Email,
    ) -> Result<Vec<CognitoUserRef>> {
        self.enter()?;
        Ok(lock(&self.users)
            .iter()
            .filter(|(_, e, verified)| *verified && e.as_deref() == Some(email.as_str()))
            .map(|(user, _, _)| user.clone())
            .collect())
    }

    async fn create_user(&self, _pool_id: &UserPoolId, email: &Email) -> Result<CognitoUserRef> {
        self.enter()?;
        let mut users = lock(&self.users);
        let user = CognitoUserRef {
            username: Username::parse(email.as_str()).map_err(|e| Error::InvalidData {
                service: Upstream::Cognito,
                detail: e.to_string(),
            })?,
            sub: UserSub::parse(format!("created-{}", users.len() + 1)).map_err(|e| {
                Error::InvalidData {
                    service: Upstream::Cognito,
                    detail: e.to_string(),
                }
            })?,
        };
        // Like Cognito's AdminCreateUser without email_verified: unverified until the invitee
        // verifies it.
        users.push((user.clone(), Some(email.as_str().to_owned()), false));
        Ok(user)
    }
}
