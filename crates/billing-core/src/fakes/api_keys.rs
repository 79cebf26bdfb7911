//! API Gateway keys in memory.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;

use super::{lock, outage};
use crate::domain::UserSub;
use crate::error::{Error, Result, Upstream};
use crate::ports::{ApiKey, ApiKeys};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeKey {
    pub id: String,
    pub owner: UserSub,
    pub value: String,
    pub enabled: bool,
    pub usage_plan_ids: Vec<String>,
    pub created: i64,
}

/// API Gateway keys; `throttle_next` makes that many calls fail as throttled first.
#[derive(Debug, Default)]
pub struct FakeApiKeys {
    keys: Mutex<Vec<FakeKey>>,
    pub throttle_next: AtomicUsize,
    pub failing: AtomicBool,
    pub creates: AtomicUsize,
    /// Every call made to API Gateway.
    pub calls: AtomicUsize,
    /// Calls of `find_with_value`: only showing a key to its owner reads its value.
    pub value_reads: AtomicUsize,
    /// Calls per key and day, as `GetUsage` reports them.
    pub usage: super::FakeUsage,
}

impl FakeApiKeys {
    pub fn keys(&self) -> Vec<FakeKey> {
        lock(&self.keys).clone()
    }

    pub(crate) fn enter(&self, operation: &'static str) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::ApiGateway, operation));
        }
        let throttled = self
            .throttle_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if throttled {
            return Err(Error::upstream(
                Upstream::ApiGateway,
                operation,
                true,
                "TooManyRequestsException",
            ));
        }
        Ok(())
    }

    /// Like the adapter: a key's value only from `find_with_value`.
    fn to_port(key: &FakeKey, with_value: bool) -> ApiKey {
        ApiKey {
            id: key.id.clone(),
            value: with_value.then(|| secrecy::SecretString::from(key.value.clone())),
            enabled: key.enabled,
            usage_plan_ids: key.usage_plan_ids.clone(),
            created: Some(key.created),
        }
    }
}

#[async_trait]
impl ApiKeys for FakeApiKeys {
    async fn find(&self, owner: &UserSub) -> Result<Option<ApiKey>> {
        self.enter("GetApiKeys")?;
        Ok(lock(&self.keys)
            .iter()
            .find(|key| &key.owner == owner)
            .map(|key| Self::to_port(key, false)))
    }

    async fn find_with_value(&self, owner: &UserSub) -> Result<Option<ApiKey>> {
        self.enter("GetApiKey")?;
        self.value_reads.fetch_add(1, Ordering::SeqCst);
        Ok(lock(&self.keys)
            .iter()
            .find(|key| &key.owner == owner)
            .map(|key| Self::to_port(key, true)))
    }

    async fn create(&self, owner: &UserSub) -> Result<ApiKey> {
        self.enter("CreateApiKey")?;
        // A network call: a concurrent request goes on meanwhile.
        tokio::task::yield_now().await;
        let mut keys = lock(&self.keys);
        let key = FakeKey {
            id: format!("key{}", keys.len() + 1),
            owner: owner.clone(),
            value: format!("value-of-key{}", keys.len() + 1),
            enabled: true,
            usage_plan_ids: Vec::new(),
            created: 1_800_000_000 + i64::try_from(keys.len()).unwrap_or(0),
        };
        keys.push(key.clone());
        self.creates.fetch_add(1, Ordering::SeqCst);
        Ok(Self::to_port(&key, false))
    }

    async fn attach_only(&self, key_id: &str, usage_plan_id: Option<&str>) -> Result<()> {
        self.enter("CreateUsagePlanKey")?;
        if let Some(key) = lock(&self.keys).iter_mut().find(|key| key.id == key_id) {
            key.usage_plan_ids = usage_plan_id.map(str::to_owned).into_iter().collect();
        }
        Ok(())
    }

    async fn set_enabled(&self, key_id: &str, enabled: bool) -> Result<()> {
        self.enter("UpdateApiKey")?;
        if let Some(key) = lock(&self.keys).iter_mut().find(|key| key.id == key_id) {
            key.enabled = enabled;
        }
        Ok(())
    }

    async fn delete(&self, key_id: &str) -> Result<()> {
        self.enter("DeleteApiKey")?;
        lock(&self.keys).retain(|key| key.id != key_id);
        Ok(())
    }
}
