//! Applying a customer's plan: `custom:plan_type` on the Cognito user and the user's API key on
//! the plan's usage plan. Shared by the success return and the webhook; every step is
//! idempotent, so running it twice or concurrently converges on the same state.

use std::future::Future;
use std::time::Duration;

use tracing::warn;

use crate::domain::{CustomerLink, UserSub};
use crate::error::Result;
use crate::plans::{AccessPolicy, PlanCatalog, PlanConfig, PlanName, SubscriptionState};
use crate::ports::{ApiKeys, Billing, Directory};

/// API Gateway allows a few key operations per second: throttled calls are retried with
/// exponential backoff, as are other transient failures.
pub async fn with_backoff<T, F, Fut>(operation: &'static str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    const ATTEMPTS: u32 = 5;
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if error.is_retryable() && attempt < ATTEMPTS => {
                warn!(
                    operation,
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    "retrying"
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub plan: PlanName,
    pub api_key_id: Option<String>,
    pub subscriptions: Vec<SubscriptionState>,
}

#[derive(Debug)]
pub struct Provisioner<'a, B, D, K> {
    pub billing: &'a B,
    pub directory: &'a D,
    pub keys: &'a K,
    pub plans: &'a PlanCatalog,
    pub policy: &'a AccessPolicy,
}

impl<B: Billing, D: Directory, K: ApiKeys> Provisioner<'_, B, D, K> {
    /// Recomputes the customer's plan from all of their subscriptions in Stripe and applies it.
    pub async fn reconcile(&self, link: &CustomerLink, now: i64) -> Result<Provisioned> {
        let subscriptions = self.billing.subscriptions_of(&link.customer_id).await?;
        self.apply(link, subscriptions, now).await
    }

    /// Applies the plan these subscriptions (all of the customer's) entitle to.
    pub async fn apply(
        &self,
        link: &CustomerLink,
        subscriptions: Vec<SubscriptionState>,
        now: i64,
    ) -> Result<Provisioned> {
        let plan = self.plans.effective_plan(&subscriptions, self.policy, now);
        self.directory
            .set_plan(&link.pool_id, &link.username, &plan.name)
            .await?;
        let api_key_id = self.apply_key(&link.sub, plan).await?;
        Ok(Provisioned {
            plan: plan.name.clone(),
            api_key_id,
            subscriptions,
        })
    }

    /// One key per user, on the plan's usage plan; with no usage plan, detached and disabled.
    async fn apply_key(&self, owner: &UserSub, plan: &PlanConfig) -> Result<Option<String>> {
        let existing = with_backoff("GetApiKeys", || self.keys.find(owner)).await?;
        let key = match (existing, &plan.usage_plan_id) {
            (None, None) => return Ok(None),
            (None, Some(_)) => with_backoff("CreateApiKey", || self.keys.create(owner)).await?,
            (Some(key), _) => key,
        };
        let target = plan.usage_plan_id.as_deref();
        let attached_as_wanted = match target {
            Some(usage_plan) => key.usage_plan_ids == [usage_plan],
            None => key.usage_plan_ids.is_empty(),
        };
        if !attached_as_wanted {
            with_backoff("AttachUsagePlan", || self.keys.attach_only(&key.id, target)).await?;
        }
        let should_be_enabled = target.is_some();
        if key.enabled != should_be_enabled {
            with_backoff("UpdateApiKey", || {
                self.keys.set_enabled(&key.id, should_be_enabled)
            })
            .await?;
        }
        Ok(Some(key.id))
    }
}
