//! API Gateway API keys, one per user.

use async_trait::async_trait;

use crate::domain::UserSub;
use crate::error::Result;
use crate::usage::UtcDay;

/// An API Gateway API key as provisioning sees it.
#[derive(Clone)]
pub struct ApiKey {
    pub id: String,
    /// The key itself, only from `find_with_value`: shown to its owner, never logged nor
    /// stored by us.
    pub value: Option<secrecy::SecretString>,
    pub enabled: bool,
    pub usage_plan_ids: Vec<String>,
    /// When it was made (unix seconds), when API Gateway says.
    pub created: Option<i64>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("enabled", &self.enabled)
            .field("usage_plan_ids", &self.usage_plan_ids)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// A key a rotation took out of use: it keeps working until `retire_at` (the grace the owner
/// asked for), then the reconciler disables it, and deletes it once its last calls are billed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredKey {
    pub id: String,
    pub owner: UserSub,
    pub retire_at: i64,
    pub enabled: bool,
}

/// One API key per user on API Gateway, named after the user so a retry finds it.
#[async_trait]
pub trait ApiKeys: Send + Sync {
    /// The owner's key, without its value (provisioning never needs it).
    async fn find(&self, owner: &UserSub) -> Result<Option<ApiKey>>;

    /// The owner's key with its value, to show it to the owner: one more call than `find`, on
    /// that key alone.
    async fn find_with_value(&self, owner: &UserSub) -> Result<Option<ApiKey>>;

    /// Creates the owner's key (without its value); if a concurrent call created one too, one
    /// survives and is returned.
    async fn create(&self, owner: &UserSub) -> Result<ApiKey>;

    /// Attaches the key to this usage plan only, detached from every other it is on as
    /// `key.usage_plan_ids` says (read with the key: not read again); `None` detaches it from
    /// all.
    async fn attach_only(&self, key: &ApiKey, usage_plan_id: Option<&str>) -> Result<()>;

    async fn set_enabled(&self, key_id: &str, enabled: bool) -> Result<()>;

    /// Deletes the key; an absent one is not an error.
    async fn delete(&self, key_id: &str) -> Result<()>;

    /// Takes the owner's key out of use as of `retire_at` (renamed, so `find` and `create`
    /// never see two current keys); its enabled state and usage plans stay as they are.
    async fn retire(&self, key_id: &str, owner: &UserSub, retire_at: i64) -> Result<()>;

    /// The retired keys of one owner, or of every owner.
    async fn retired(&self, owner: Option<&UserSub>) -> Result<Vec<RetiredKey>>;

    /// Gives `to_key` what `from_key` has left of the usage plan's quota in the current quota
    /// period (`today` is in it), so a rotation does not start the period afresh; nothing for
    /// a plan without a quota.
    async fn carry_quota(
        &self,
        usage_plan_id: &str,
        from_key: &str,
        to_key: &str,
        today: UtcDay,
    ) -> Result<()>;
}
