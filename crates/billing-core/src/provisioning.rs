//! Applying a customer's plan: `custom:plan_type` on the Cognito user and the user's API key on
//! the plan's usage plan. Shared by the success return and the webhook; every step is
//! idempotent, and callers read the state and apply it under the customer's provisioning lease
//! (`under_lease`), so concurrent deliveries cannot apply an older view after a newer one nor
//! create two keys.

use std::future::Future;
use std::time::Duration;

use tracing::warn;

use crate::domain::{CustomerId, CustomerLink, UserSub};
use crate::error::{Error, Result, Upstream};
use crate::plans::{AccessPolicy, PlanCatalog, PlanConfig, PlanName, SubscriptionState};
use crate::ports::{ApiKeys, Billing, Directory, ProvisionedState, ProvisioningLeases};

/// How long a caller waits for another provisioning of the same customer before giving up with a
/// retryable error (Stripe retries the delivery; the success return answers "try again").
const LEASE_WAIT: Duration = Duration::from_secs(10);

/// Runs `work` (read the customer's state, apply it) while holding the customer's provisioning
/// lease: a state read before another delivery's write is never applied after that delivery's.
pub async fn under_lease<L, T, F, Fut>(
    leases: &L,
    customer: &CustomerId,
    now: i64,
    work: F,
) -> Result<T>
where
    L: ProvisioningLeases,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let holder = lease_holder()?;
    wait_for_lease(leases, customer, &holder, now).await?;
    let outcome = work().await;
    if let Err(error) = leases.release_lease(customer, &holder).await {
        warn!(customer_id = %customer, error = %crate::error::Chain(&error), "could not release the provisioning lease; it expires");
    }
    outcome
}

/// Takes the customer's lease for `holder`, waiting while another holder has it; gives up with
/// a retryable error after `LEASE_WAIT`.
pub async fn wait_for_lease<L: ProvisioningLeases>(
    leases: &L,
    customer: &CustomerId,
    holder: &str,
    now: i64,
) -> Result<()> {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(20);
    while !leases.take_lease(customer, holder, now).await? {
        if started.elapsed() >= LEASE_WAIT {
            return Err(Error::upstream(
                Upstream::DynamoDb,
                "PutItem",
                true,
                "another provisioning of this customer is under way",
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
    Ok(())
}

/// A random holder name for a lease.
pub fn lease_holder() -> Result<String> {
    crate::ids::random_hex::<16>().map_err(|e| Error::InvalidData {
        service: Upstream::DynamoDb,
        detail: format!("no randomness for a lease holder: {e}"),
    })
}

/// One `ProvisioningActions` count, under its `Action` dimension.
pub(crate) fn provisioning_action(action: &str) {
    crate::telemetry::count("ProvisioningActions", Some(("Action", action)));
}

/// Whether the user already has what `plan` gives, as last applied (`stored`): then Cognito and
/// API Gateway are not called. Unknown (`None`), another user, another plan or usage plan, or
/// a usage plan without a key: not provisioned.
pub fn is_provisioned(
    stored: Option<&ProvisionedState>,
    link: &CustomerLink,
    plan: &PlanConfig,
) -> bool {
    stored.is_some_and(|stored| {
        stored.sub == link.sub
            && stored.plan == plan.name
            && stored.usage_plan_id == plan.usage_plan_id
            && (plan.usage_plan_id.is_none() || stored.api_key_id.is_some())
    })
}

/// The plan the user had before, as far as we know: the stored state's for the same user,
/// else the lowest plan (a user nothing was applied to yet).
pub fn previous_plan<'a>(
    stored: Option<&'a ProvisionedState>,
    link: &CustomerLink,
    plans: &'a PlanCatalog,
) -> &'a PlanName {
    stored
        .filter(|stored| stored.sub == link.sub)
        .map_or(&plans.lowest().name, |stored| &stored.plan)
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
        let api_key_id = self.apply_plan(link, plan).await?;
        Ok(Provisioned {
            plan: plan.name.clone(),
            api_key_id,
            subscriptions,
        })
    }

    /// Applies this plan: `custom:plan_type`, then the key on its usage plan. Returns the key's
    /// id.
    pub async fn apply_plan(
        &self,
        link: &CustomerLink,
        plan: &PlanConfig,
    ) -> Result<Option<String>> {
        let applied = async {
            self.directory
                .set_plan(&link.pool_id, &link.username, &plan.name)
                .await?;
            self.apply_key(&link.sub, plan).await
        };
        applied
            .await
            .inspect_err(|_| crate::telemetry::count("ProvisioningFailures", None))
    }

    /// One key per user, on the plan's usage plan; with no usage plan, detached and disabled.
    async fn apply_key(&self, owner: &UserSub, plan: &PlanConfig) -> Result<Option<String>> {
        let existing = self.keys.find(owner).await?;
        let (key, created) = match (existing, &plan.usage_plan_id) {
            (None, None) => return Ok(None),
            (None, Some(_)) => {
                let key = self.keys.create(owner).await?;
                provisioning_action("key_created");
                (key, true)
            }
            (Some(key), _) => (key, false),
        };
        let target = plan.usage_plan_id.as_deref();
        let attached_as_wanted = match target {
            Some(usage_plan) => key.usage_plan_ids == [usage_plan],
            None => key.usage_plan_ids.is_empty(),
        };
        if !attached_as_wanted {
            self.keys.attach_only(&key, target).await?;
            if !created {
                provisioning_action("key_moved");
            }
        }
        let should_be_enabled = target.is_some();
        if key.enabled != should_be_enabled {
            self.keys.set_enabled(&key.id, should_be_enabled).await?;
            provisioning_action(if should_be_enabled {
                "key_enabled"
            } else {
                "key_disabled"
            });
        }
        Ok(Some(key.id))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::fakes::InMemoryStore;

    fn alice() -> CustomerId {
        CustomerId::parse("cus_alice").unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn when_provisionings_overlap_should_run_one_at_a_time() {
        let store = Arc::new(InMemoryStore::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most_inside = Arc::new(AtomicUsize::new(0));
        let runs = (0..4).map(|_| {
            let (store, inside, most_inside) = (store.clone(), inside.clone(), most_inside.clone());
            tokio::spawn(async move {
                under_lease(store.as_ref(), &alice(), 1_000, || async {
                    let now_inside = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most_inside.fetch_max(now_inside, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
                .await
            })
        });
        for run in runs.collect::<Vec<_>>() {
            run.await.unwrap().unwrap();
        }
        assert_eq!(most_inside.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn when_the_lease_stays_taken_should_give_up_with_a_retryable_error() {
        let store = InMemoryStore::default();
        assert!(store.take_lease(&alice(), "another", 1_000).await.unwrap());
        let ran = AtomicUsize::new(0);
        let error = under_lease(&store, &alice(), 1_000, || async {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(error.is_retryable());
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn when_the_holder_died_should_take_the_expired_lease_over() {
        let store = InMemoryStore::default();
        assert!(store.take_lease(&alice(), "dead", 1_000).await.unwrap());
        let later = 1_000 + crate::table::PROVISIONING_LEASE_SECS + 1;
        let outcome = under_lease(&store, &alice(), later, || async { Ok(7) }).await;
        assert_eq!(outcome.unwrap(), 7);
        // Released after the work: the next one takes it at once.
        assert!(store.take_lease(&alice(), "next", later).await.unwrap());
    }

    #[tokio::test]
    async fn when_work_fails_should_release_the_lease_and_pass_the_error_on() {
        let store = InMemoryStore::default();
        let outcome: Result<()> = under_lease(&store, &alice(), 1_000, || async {
            Err(Error::upstream(
                Upstream::ApiGateway,
                "CreateApiKey",
                true,
                "throttled",
            ))
        })
        .await;
        assert!(outcome.is_err());
        assert!(store.take_lease(&alice(), "next", 1_000).await.unwrap());
    }
}
