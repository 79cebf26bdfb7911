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

#[async_trait]
impl crate::ports::UserRecords for FakeDirectory {
    async fn user_record(
        &self,
        pool_id: &UserPoolId,
        username: &Username,
    ) -> Result<Option<crate::ports::UserRecord>> {
        self.enter()?;
        let user = lock(&self.users)
            .iter()
            .find(|(user, _, _)| &user.username == username)
            .cloned();
        Ok(user.map(|user| self.record_of(pool_id, user)))
    }

    async fn user_records_where(
        &self,
        pool_id: &UserPoolId,
        attribute: &str,
        value: &str,
    ) -> Result<Vec<crate::ports::UserRecord>> {
        self.enter()?;
        let users: Vec<_> = lock(&self.users)
            .iter()
            .filter(|(user, email, _)| match attribute {
                "sub" => user.sub.as_str() == value,
                "email" => email.as_deref() == Some(value),
                _ => false,
            })
            .cloned()
            .collect();
        Ok(users
            .into_iter()
            .map(|user| self.record_of(pool_id, user))
            .collect())
    }
}

impl FakeDirectory {
    fn record_of(
        &self,
        pool_id: &UserPoolId,
        (user, email, verified): (CognitoUserRef, Option<String>, bool),
    ) -> crate::ports::UserRecord {
        let key = (pool_id.clone(), user.username.clone());
        crate::ports::UserRecord {
            plan: lock(&self.plans).get(&key).map(ToString::to_string),
            customer_id: lock(&self.customer_ids).get(&key).map(ToString::to_string),
            username: user.username,
            sub: user.sub,
            email,
            email_verified: verified,
            status: if verified { "CONFIRMED" } else { "UNCONFIRMED" }.to_owned(),
            enabled: true,
        }
    }
}
