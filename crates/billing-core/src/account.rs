//! The caller's own account: what `GET /me` shows and what `DELETE /me` removes.

use tracing::info;

use crate::domain::{CognitoUser, UserSub};
use crate::error::Result;
use crate::plans::{AccessPolicy, PlanCatalog, PlanName, SubscriptionState};
use crate::ports::{ApiKey, ApiKeys, Billing, CheckoutRecords, CustomerLinks, Directory};

#[derive(Debug, Clone)]
pub struct AccountOverview {
    pub plan: PlanName,
    pub subscriptions: Vec<SubscriptionState>,
    pub api_key: Option<ApiKey>,
    /// The usage plan the key is on, per the deployment's plans.
    pub usage_plan_id: Option<String>,
}

pub async fn overview<L, B, K>(
    links: &L,
    billing: &B,
    keys: &K,
    plans: &PlanCatalog,
    policy: &AccessPolicy,
    sub: &UserSub,
    now: i64,
) -> Result<AccountOverview>
where
    L: CustomerLinks,
    B: Billing,
    K: ApiKeys,
{
    let subscriptions = match links.customer_of_user(sub).await? {
        Some(link) => billing.subscriptions_of(&link.customer_id).await?,
        None => Vec::new(),
    };
    let plan = plans.effective_plan(&subscriptions, policy, now).clone();
    let api_key = keys.find_with_value(sub).await?;
    let usage_plan_id = api_key
        .as_ref()
        .and_then(|key| key.usage_plan_ids.first().cloned());
    Ok(AccountOverview {
        plan: plan.name,
        subscriptions,
        api_key,
        usage_plan_id,
    })
}

/// Removes everything the user has with us. Each step tolerates what an earlier, interrupted
/// deletion already removed, so the whole is idempotent. The Stripe customer's deletion cancels
/// its subscriptions; the webhook then tears down their recorded resources.
pub async fn delete_account<L, R, B, D, K>(
    links: &L,
    records: &R,
    billing: &B,
    directory: &D,
    keys: &K,
    user: &CognitoUser,
) -> Result<()>
where
    L: CustomerLinks,
    R: CheckoutRecords,
    B: Billing,
    D: Directory,
    K: ApiKeys,
{
    let link = links.customer_of_user(&user.sub).await?;
    if let Some(link) = &link {
        billing.delete_customer(&link.customer_id).await?;
    }
    if let Some(key) = keys.find(&user.sub).await? {
        keys.delete(&key.id).await?;
    }
    records.delete_for_user(&user.sub).await?;
    if let Some(link) = &link {
        links.unlink(link).await?;
    }
    directory.delete_user(&user.pool_id, &user.username).await?;
    info!(sub = %user.sub, had_customer = link.is_some(), "account deleted");
    Ok(())
}
