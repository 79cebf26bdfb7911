//! The caller's own account: the Billing Portal (`POST /portal`), what `GET /me` shows and what
//! `DELETE /me` removes. The customer always comes from our link, never from the request.

use tracing::info;

use crate::domain::{CognitoUser, CustomerLink, UserSub};
use crate::error::Error;
use crate::inputs::ReturnPath;
use crate::plans::{AccessPolicy, PlanCatalog, PlanName, SubscriptionState};
use crate::ports::{AccountStore, Payments};
use crate::ports::{ApiKey, ApiKeys, Directory, NewPortalSession, PortalFlow};
use crate::provisioning::under_lease;

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("the caller has no customer yet")]
    NoCustomer,
    #[error(transparent)]
    Upstream(#[from] Error),
}

#[derive(Debug, Clone)]
pub struct AccountOverview {
    pub plan: PlanName,
    pub subscriptions: Vec<SubscriptionState>,
    pub api_key: Option<ApiKey>,
    /// The usage plan the key is on, per the deployment's plans.
    pub usage_plan_id: Option<String>,
}

#[derive(Debug)]
pub struct PortalService<'a, S, P, D, K> {
    pub store: &'a S,
    pub payments: &'a P,
    pub directory: &'a D,
    pub keys: &'a K,
    pub plans: &'a PlanCatalog,
    pub policy: &'a AccessPolicy,
    /// e.g. `https://app.example.com`: the portal's return URL is under it.
    pub site_origin: &'a str,
}

impl<S, P, D, K> PortalService<'_, S, P, D, K>
where
    S: AccountStore,
    P: Payments,
    D: Directory,
    K: ApiKeys,
{
    /// The Billing Portal URL for the caller's own customer. A `flow` opens on the caller's
    /// newest entitling subscription.
    pub async fn portal_session(
        &self,
        sub: &UserSub,
        return_path: &ReturnPath,
        flow: Option<PortalFlow>,
        now: i64,
    ) -> Result<String, PortalError> {
        let Some(CustomerLink { customer_id, .. }) = self.store.customer_of_user(sub).await? else {
            return Err(PortalError::NoCustomer);
        };
        let subscription_id = match flow {
            Some(_) => self
                .payments
                .subscriptions_of(&customer_id)
                .await?
                .into_iter()
                .filter(|subscription| self.policy.entitles(subscription, now))
                .max_by_key(|subscription| subscription.created)
                .map(|subscription| subscription.id),
            None => None,
        };
        // A flow needs a subscription; without one the plain portal is the useful answer.
        let flow = flow.filter(|_| subscription_id.is_some());
        let url = self
            .payments
            .create_portal_session(&NewPortalSession {
                customer_id,
                return_url: return_path.url_on(self.site_origin),
                flow,
                subscription_id,
            })
            .await?;
        Ok(url)
    }

    /// The caller's plan, subscriptions and API key.
    pub async fn overview(&self, sub: &UserSub, now: i64) -> Result<AccountOverview, Error> {
        let subscriptions = match self.store.customer_of_user(sub).await? {
            Some(link) => self.payments.subscriptions_of(&link.customer_id).await?,
            None => Vec::new(),
        };
        let plan = self
            .plans
            .effective_plan(&subscriptions, self.policy, now)
            .clone();
        let api_key = self.keys.find_with_value(sub).await?;
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

    /// Removes everything the user has with us, under the customer's provisioning lease so no
    /// webhook delivery re-creates a key or re-links in the middle. The customer is tombstoned
    /// first: the events its deletion causes in Stripe (cancellations, `customer.deleted`) are
    /// then acknowledged without being kept, and the webhook tears down the subscriptions'
    /// stacks. Each step tolerates what an earlier, interrupted deletion already removed, so the
    /// whole is idempotent.
    pub async fn delete_account(&self, user: &CognitoUser, now: i64) -> Result<(), Error> {
        let link = self.store.customer_of_user(&user.sub).await?;
        match &link {
            Some(link) => {
                under_lease(self.store, &link.customer_id, now, || async {
                    self.store
                        .tombstone_customer(&link.customer_id, now)
                        .await?;
                    self.payments.delete_customer(&link.customer_id).await?;
                    self.remove_user_items(user).await?;
                    self.store.purge_customer(&link.customer_id).await?;
                    self.store.unlink(link).await
                })
                .await?;
            }
            None => self.remove_user_items(user).await?,
        }
        info!(sub = %user.sub, had_customer = link.is_some(), "account deleted");
        Ok(())
    }

    /// The user's key, checkout records and Cognito user.
    async fn remove_user_items(&self, user: &CognitoUser) -> Result<(), Error> {
        if let Some(key) = self.keys.find(&user.sub).await? {
            self.keys.delete(&key.id).await?;
        }
        self.store.delete_for_user(&user.sub).await?;
        self.directory
            .delete_user(&user.pool_id, &user.username)
            .await
    }
}
