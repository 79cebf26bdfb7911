//! The caller's own account: the Billing Portal (`POST /portal`), what `GET /me` shows and what
//! `DELETE /me` removes. The customer always comes from our link, never from the request.

use serde::Serialize;
use tracing::info;

use crate::domain::{CognitoUser, CustomerLink, UserSub};
use crate::error::Error;
use crate::inputs::{ReturnPath, RotationGrace};
use crate::plans::{AccessPolicy, PlanCatalog, PlanName, SubscriptionState};
use crate::ports::{AccountStore, Meters, Payments, UsageCounts, UsageStore};
use crate::ports::{ApiKey, ApiKeys, Directory, NewPortalSession, PortalFlow};
use crate::provisioning::{Provisioner, under_lease};
use crate::usage::{METER_EVENT_MAX_AGE_DAYS, UtcDay, key_usage};

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("the caller has no customer yet")]
    NoCustomer,
    #[error("the caller's plan gives no API key")]
    NoKeyOnPlan,
    #[error("the caller has no API key to rotate")]
    NoKeyToRotate,
    #[error("too many key rotations; the next is allowed in {retry_after} s")]
    TooManyRotations { retry_after: i64 },
    #[error(transparent)]
    Upstream(#[from] Error),
}

#[derive(Debug, Clone)]
pub struct AccountOverview {
    pub plan: PlanName,
    pub subscriptions: Vec<SubscriptionState>,
    pub api_key: Option<ApiKey>,
    /// The key was made by this request (its first need): with `KEY_VALUE_DISCLOSURE=once`
    /// the only answer that shows its value.
    pub api_key_made_now: bool,
    /// The usage plan the key is on, per the deployment's plans.
    pub usage_plan_id: Option<String>,
    /// The current period's usage of each metered price the caller pays for.
    pub usage: Vec<PeriodUsage>,
}

/// A metered price's usage in its subscription's current period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeriodUsage {
    pub subscription: String,
    pub price_id: Option<String>,
    pub meter: String,
    pub period_start: i64,
    pub period_end: Option<i64>,
    /// What the meter holds for the customer since the period started (Stripe's summary).
    pub reported: u64,
    /// Calls API Gateway counted on the caller's key this period that Stripe does not have
    /// yet: the usage reporter sends them on its next run.
    pub not_yet_reported: u64,
}

/// Rotations a user may make in `ROTATION_WINDOW_SECS`: enough to replace a leaked key and a
/// mistaken rotation, too few to spend API Gateway's key-creation rate.
pub const MAX_ROTATIONS_PER_WINDOW: usize = 3;
pub const ROTATION_WINDOW_SECS: i64 = 3600;

/// A rotation done: the new key (with its value) and when the old one stops working.
#[derive(Debug, Clone)]
pub struct RotatedKey {
    pub key: ApiKey,
    pub retired_key_id: String,
    pub retired_at: i64,
}

/// `[start, end)` on minute boundaries (what Stripe's summaries take) holding `from..=now`.
fn minute_bounds(from: i64, now: i64) -> (i64, i64) {
    let start = from - from.rem_euclid(60);
    let end = (now.div_euclid(60) + 1) * 60;
    (start, end.max(start + 60))
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
    S: AccountStore + UsageStore,
    P: Payments + Meters,
    D: Directory,
    K: ApiKeys + UsageCounts,
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

    /// The caller's plan, subscriptions, API key and usage.
    pub async fn overview(&self, sub: &UserSub, now: i64) -> Result<AccountOverview, Error> {
        let link = self.store.customer_of_user(sub).await?;
        let subscriptions = match &link {
            Some(link) => self.payments.subscriptions_of(&link.customer_id).await?,
            None => Vec::new(),
        };
        let plan = self
            .plans
            .effective_plan(&subscriptions, self.policy, now)
            .clone();
        let mut api_key = self.keys.find_with_value(sub).await?;
        let mut api_key_made_now = false;
        if api_key.is_none()
            && plan.usage_plan_id.is_some()
            && let Some(link) = &link
        {
            api_key_made_now = self.make_key(link, subscriptions.clone(), now).await?;
            api_key = self.keys.find_with_value(sub).await?;
        }
        let usage_plan_id = api_key
            .as_ref()
            .and_then(|key| key.usage_plan_ids.first().cloned());
        let usage = match &link {
            Some(link) => {
                self.period_usage(link, &subscriptions, api_key.as_ref(), now)
                    .await?
            }
            None => Vec::new(),
        };
        Ok(AccountOverview {
            plan: plan.name,
            subscriptions,
            api_key,
            api_key_made_now,
            usage_plan_id,
            usage,
        })
    }

    /// `POST /me/api-key`: the caller's key, made now if their plan has a usage plan and they
    /// have none; `true` with it when this request made it.
    pub async fn ensure_key(&self, sub: &UserSub, now: i64) -> Result<(ApiKey, bool), PortalError> {
        let Some(link) = self.store.customer_of_user(sub).await? else {
            return Err(PortalError::NoCustomer);
        };
        if let Some(key) = self.keys.find_with_value(sub).await? {
            return Ok((key, false));
        }
        let subscriptions = self.payments.subscriptions_of(&link.customer_id).await?;
        let plan = self.plans.effective_plan(&subscriptions, self.policy, now);
        if plan.usage_plan_id.is_none() {
            return Err(PortalError::NoKeyOnPlan);
        }
        let made = self.make_key(&link, subscriptions, now).await?;
        let key = self
            .keys
            .find_with_value(sub)
            .await?
            .ok_or(PortalError::NoKeyOnPlan)?;
        Ok((key, made))
    }

    /// `POST /me/api-key/rotate`: a new key on the old key's usage plan; the old one keeps
    /// working for `grace`, then the reconciler disables it (at once with no grace) and later
    /// deletes it. Under the customer's lease: the old key is renamed as retired first, so
    /// `find` and a concurrent first-need creation never see two current keys, and the rate
    /// limit's count and write are not interleaved with another rotation's.
    pub async fn rotate_key(
        &self,
        sub: &UserSub,
        grace: RotationGrace,
        now: i64,
    ) -> Result<RotatedKey, PortalError> {
        let Some(link) = self.store.customer_of_user(sub).await? else {
            return Err(PortalError::NoCustomer);
        };
        let rotation = under_lease(self.store, &link.customer_id, now, || async {
            let recent = self
                .store
                .rotations_since(sub, now - ROTATION_WINDOW_SECS + 1)
                .await?;
            if recent.len() >= MAX_ROTATIONS_PER_WINDOW {
                let oldest = recent.iter().copied().min().unwrap_or(now);
                let retry_after = (oldest + ROTATION_WINDOW_SECS - now).max(1);
                return Ok(Err(PortalError::TooManyRotations { retry_after }));
            }
            let Some(old) = self.keys.find(sub).await? else {
                return Ok(Err(PortalError::NoKeyToRotate));
            };
            let retired_at = now + grace.seconds();
            self.store.record_rotation(sub, now).await?;
            self.keys.retire(&old.id, sub, retired_at).await?;
            let new = self.keys.create(sub).await?;
            let usage_plan = old.usage_plan_ids.first();
            self.keys
                .attach_only(&new, usage_plan.map(String::as_str))
                .await?;
            if let Some(usage_plan) = usage_plan {
                self.keys
                    .carry_quota(usage_plan, &old.id, &new.id, UtcDay::of(now))
                    .await?;
            }
            if new.enabled != old.enabled {
                self.keys.set_enabled(&new.id, old.enabled).await?;
            }
            if grace.seconds() == 0 && old.enabled {
                self.keys.set_enabled(&old.id, false).await?;
            }
            crate::provisioning::provisioning_action("key_rotated");
            info!(sub = %sub, old_key_id = %old.id, new_key_id = %new.id, retired_at, "API key rotated");
            Ok(Ok(old.id))
        })
        .await?;
        let retired_key_id = rotation?;
        let key = self
            .keys
            .find_with_value(sub)
            .await?
            .ok_or(PortalError::NoKeyToRotate)?;
        Ok(RotatedKey {
            key,
            retired_key_id,
            retired_at: now + grace.seconds(),
        })
    }

    /// A key from the first minute, made on first need (not in the sign-up trigger, which has
    /// Cognito's 5 seconds and would spend API Gateway's key-creation rate on users who never
    /// call the API): provisioning under the customer's lease, after looking again under it, so
    /// concurrent first requests (and webhook deliveries) make one key. `true` if this call made
    /// it.
    async fn make_key(
        &self,
        link: &CustomerLink,
        subscriptions: Vec<SubscriptionState>,
        now: i64,
    ) -> Result<bool, Error> {
        under_lease(self.store, &link.customer_id, now, || async {
            if self.keys.find(&link.sub).await?.is_some() {
                return Ok(false);
            }
            Provisioner {
                billing: self.payments,
                directory: self.directory,
                keys: self.keys,
                plans: self.plans,
                policy: self.policy,
            }
            .apply(link, subscriptions, now)
            .await?;
            info!(sub = %link.sub, "API key made on first need");
            Ok(true)
        })
        .await
    }

    /// Each metered item of the entitling subscriptions: what its meter holds since the period
    /// started, and what the key's usage plan counted that the reporter has not sent yet (one
    /// figure for the key, shown on each metered item: a key's calls go to one meter).
    async fn period_usage(
        &self,
        link: &CustomerLink,
        subscriptions: &[SubscriptionState],
        api_key: Option<&ApiKey>,
        now: i64,
    ) -> Result<Vec<PeriodUsage>, Error> {
        let mut usage = Vec::new();
        for subscription in subscriptions
            .iter()
            .filter(|subscription| self.policy.entitles(subscription, now))
        {
            let Some(period_start) = subscription.current_period_start else {
                continue;
            };
            // The key's unsent calls since the period started: read once per subscription.
            let mut unreported: Option<u64> = None;
            for item in &subscription.items {
                let Some(meter) = &item.meter else {
                    continue;
                };
                let (start, end) = minute_bounds(period_start, now);
                let reported = self
                    .payments
                    .reported_usage(meter, link.customer_id.as_str(), start, end)
                    .await?;
                let not_yet_reported = match (unreported, api_key) {
                    (Some(calls), _) => calls,
                    (None, Some(key)) => self.unreported_calls(key, period_start, now).await?,
                    (None, None) => 0,
                };
                unreported = Some(not_yet_reported);
                usage.push(PeriodUsage {
                    subscription: subscription.id.clone(),
                    price_id: item.price_id.clone(),
                    meter: meter.clone(),
                    period_start,
                    period_end: subscription.current_period_end,
                    reported,
                    not_yet_reported,
                });
            }
        }
        Ok(usage)
    }

    /// Calls counted on the key's usage plan since `since` beyond what the reporter's cursors
    /// say Stripe has (days older than Stripe takes meter events for are left out).
    async fn unreported_calls(&self, key: &ApiKey, since: i64, now: i64) -> Result<u64, Error> {
        let today = UtcDay::of(now);
        let from = UtcDay::of(since).max(today.plus(-METER_EVENT_MAX_AGE_DAYS));
        let usage_plans: Vec<String> = key.usage_plan_ids.iter().take(1).cloned().collect();
        let days = key_usage(self.store, self.keys, &usage_plans, &key.id, (from, today)).await?;
        Ok(days
            .iter()
            .map(|day| day.counted.saturating_sub(day.reported))
            .sum())
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

    /// The user's keys (current and retired), rotations, checkout records and Cognito user.
    async fn remove_user_items(&self, user: &CognitoUser) -> Result<(), Error> {
        if let Some(key) = self.keys.find(&user.sub).await? {
            self.keys.delete(&key.id).await?;
        }
        for retired in self.keys.retired(Some(&user.sub)).await? {
            self.keys.delete(&retired.id).await?;
        }
        self.store.forget_rotations(&user.sub).await?;
        self.store.delete_for_user(&user.sub).await?;
        self.directory
            .delete_user(&user.pool_id, &user.username)
            .await
    }
}
