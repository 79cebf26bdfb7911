//! The Cognito user pool's attributes in memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;

use super::{lock, outage};
use crate::domain::{CustomerId, UserPoolId, UserSub, Username};
use crate::error::{Result, Upstream};
use crate::plans::PlanName;
use crate::ports::{CognitoUserRef, Directory};

#[derive(Debug, Default)]
pub struct FakeDirectory {
    /// (user, e-mail, confirmed with a verified e-mail)
    pub(super) users: Mutex<Vec<(CognitoUserRef, Option<String>, bool)>>,
    pub(super) customer_ids: Mutex<HashMap<(UserPoolId, Username), CustomerId>>,
    pub(super) plans: Mutex<HashMap<(UserPoolId, Username), PlanName>>,
    pub deleted: Mutex<Vec<Username>>,
    pub failing: AtomicBool,
    pub calls: AtomicUsize,
}

impl FakeDirectory {
    pub fn customer_id_of(&self, pool_id: &UserPoolId, username: &Username) -> Option<CustomerId> {
        lock(&self.customer_ids)
            .get(&(pool_id.clone(), username.clone()))
            .cloned()
    }

    /// A user of the pool, findable by sub and email.
    /// A confirmed user whose e-mail (if any) is verified.
    pub fn add_user(&self, username: &str, sub: &str, email: Option<&str>) {
        self.insert_user(username, sub, email, true);
    }

    /// A user who signed up with this e-mail and never verified it (or never confirmed).
    pub fn add_unverified_user(&self, username: &str, sub: &str, email: &str) {
        self.insert_user(username, sub, Some(email), false);
    }

    fn insert_user(&self, username: &str, sub: &str, email: Option<&str>, verified: bool) {
        if let (Ok(username), Ok(sub)) = (Username::parse(username), UserSub::parse(sub)) {
            let user = CognitoUserRef { username, sub };
            lock(&self.users).push((user, email.map(str::to_owned), verified));
        }
    }

    pub fn user_count(&self) -> usize {
        lock(&self.users).len()
    }

    pub fn plan_of(&self, pool_id: &UserPoolId, username: &Username) -> Option<PlanName> {
        lock(&self.plans)
            .get(&(pool_id.clone(), username.clone()))
            .cloned()
    }

    pub(super) fn enter(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::Cognito, "AdminUpdateUserAttributes"));
        }
        Ok(())
    }
}

#[async_trait]
impl Directory for FakeDirectory {
    async fn set_customer_id(
        &self,
        pool_id: &UserPoolId,
        username: &Username,
        customer_id: &CustomerId,
    ) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::Cognito, "AdminUpdateUserAttributes"));
        }
        lock(&self.customer_ids).insert((pool_id.clone(), username.clone()), customer_id.clone());
        Ok(())
    }

    async fn set_plan(
        &self,
        pool_id: &UserPoolId,
        username: &Username,
        plan: &PlanName,
    ) -> Result<()> {
        self.enter()?;
        lock(&self.plans).insert((pool_id.clone(), username.clone()), plan.clone());
        Ok(())
    }

    async fn delete_user(&self, pool_id: &UserPoolId, username: &Username) -> Result<()> {
        self.enter()?;
        let key = (pool_id.clone(), username.clone());
        lock(&self.customer_ids).remove(&key);
        lock(&self.plans).remove(&key);
        lock(&self.deleted).push(username.clone());
        Ok(())
    }
}
