//! API Gateway keys in memory.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;

use super::{lock, outage};
use crate::domain::UserSub;
use crate::error::{Error, Result, Upstream};
use crate::ports::{ApiKey, ApiKeys, RetiredKey};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeKey {
    pub id: String,
    pub owner: UserSub,
    pub value: String,
    pub enabled: bool,
    pub usage_plan_ids: Vec<String>,
    pub created: i64,
    /// Set by a rotation: the key is no longer the owner's current one.
    pub retire_at: Option<i64>,
}

/// API Gateway keys; `throttle_next` makes that many calls fail as throttled first.
#[derive(Debug, Default)]
pub struct FakeApiKeys {
    keys: Mutex<Vec<FakeKey>>,
    pub throttle_next: AtomicUsize,
    pub failing: AtomicBool,
    pub creates: AtomicUsize,
    /// Refuse every creation as API Gateway does at the account's key quota.
    pub quota_reached: AtomicBool,
    /// Every call made to API Gateway.
    pub calls: AtomicUsize,
    /// Calls of `find_with_value`: only showing a key to its owner reads its value.
    pub value_reads: AtomicUsize,
    /// Calls per key and day, as `GetUsage` reports them.
    pub usage: super::FakeUsage,
    /// `carry_quota` calls: (usage plan, from key, to key).
    carried: Mutex<Vec<(String, String, String)>>,
}

impl FakeApiKeys {
    pub fn keys(&self) -> Vec<FakeKey> {
        lock(&self.keys).clone()
    }

    /// The quotas carried from one key to another: (usage plan, from key, to key).
    pub fn quotas_carried(&self) -> Vec<(String, String, String)> {
        lock(&self.carried).clone()
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
            .find(|key| &key.owner == owner && key.retire_at.is_none())
            .map(|key| Self::to_port(key, false)))
    }

    async fn find_with_value(&self, owner: &UserSub) -> Result<Option<ApiKey>> {
        self.enter("GetApiKey")?;
        self.value_reads.fetch_add(1, Ordering::SeqCst);
        Ok(lock(&self.keys)
            .iter()
            .find(|key| &key.owner == owner && key.retire_at.is_none())
            .map(|key| Self::to_port(key, true)))
    }

    async fn create(&self, owner: &UserSub) -> Result<ApiKey> {
        self.enter("CreateApiKey")?;
        if self.quota_reached.load(Ordering::SeqCst) {
            return Err(Error::upstream(
                Upstream::ApiGateway,
                "CreateApiKey",
                true,
                "LimitExceededException",
            ));
        }
        // A network call: a concurrent request goes on meanwhile.
        tokio::task::yield_now().await;
        let mut keys = lock(&self.keys);
        // Numbered by creation, so a key made after a deletion has an id of its own.
        let number = self.creates.fetch_add(1, Ordering::SeqCst) + 1;
        let key = FakeKey {
            id: format!("key{number}"),
            owner: owner.clone(),
            value: format!("value-of-key{number}"),
            enabled: true,
            usage_plan_ids: Vec::new(),
            created: 1_800_000_000 + i64::try_from(number).unwrap_or(0),
            retire_at: None,
        };
        keys.push(key.clone());
        Ok(Self::to_port(&key, false))
    }

    async fn attach_only(&self, key: &ApiKey, usage_plan_id: Option<&str>) -> Result<()> {
        self.enter("CreateUsagePlanKey")?;
        let key_id = &key.id;
        if let Some(key) = lock(&self.keys)
            .iter_mut()
            .find(|stored| &stored.id == key_id)
        {
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

    async fn carry_quota(
        &self,
        usage_plan_id: &str,
        from_key: &str,
        to_key: &str,
        _today: crate::usage::UtcDay,
    ) -> Result<()> {
        self.enter("UpdateUsage")?;
        lock(&self.carried).push((usage_plan_id.into(), from_key.into(), to_key.into()));
        Ok(())
    }

    async fn retire(&self, key_id: &str, owner: &UserSub, retire_at: i64) -> Result<()> {
        self.enter("UpdateApiKey")?;
        if let Some(key) = lock(&self.keys)
            .iter_mut()
            .find(|key| key.id == key_id && &key.owner == owner)
        {
            key.retire_at = Some(retire_at);
        }
        Ok(())
    }

    async fn retired(&self, owner: Option<&UserSub>) -> Result<Vec<RetiredKey>> {
        self.enter("GetApiKeys")?;
        Ok(lock(&self.keys)
            .iter()
            .filter(|key| owner.is_none_or(|owner| &key.owner == owner))
            .filter_map(|key| {
                Some(RetiredKey {
                    id: key.id.clone(),
                    owner: key.owner.clone(),
                    retire_at: key.retire_at?,
                    enabled: key.enabled,
                })
            })
            .collect())
    }
}
