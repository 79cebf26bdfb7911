//! Subscription events, and reconciling a customer from all of their stored subscriptions.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::linking::LinkHints;
use super::{Delivery, Outcome, SyncService};
use crate::domain::{CustomerId, CustomerLink};
use crate::error::Result;
use crate::plans::{PlanName, SubscriptionState, SubscriptionStatus};
use crate::ports::{
    Billing, Committed, DeliveryCommit, DeliveryStore, Freshness, ProductRecord, ProvisionedState,
    ProvisioningLeases, SubscriptionWrite, SyncPorts, SyncStore, Versioned,
};
use crate::provisioning::{
    is_provisioned, previous_plan, provisioning_action, under_lease, wait_for_lease,
};

/// What the user's provisioning became.
#[derive(Debug)]
pub(super) struct Provision {
    pub(super) plan: PlanName,
    /// What was applied now, to be stored; `None` when it was in place already.
    pub(super) changed: Option<ProvisionedState>,
}

/// What is known of the provisioned state before provisioning.
#[derive(Debug, Clone, Copy)]
pub(super) enum Known<'a> {
    /// Read with the customer's view (absent: nothing applied yet, or forgotten).
    Read(Option<&'a ProvisionedState>),
    /// Not read: applied in full, the stored state forgotten first.
    Unknown,
}

impl<P: SyncPorts> SyncService<'_, P> {
    /// A subscription event, its event claimed: under the customer's lease (taken with the
    /// claim, or waited for now), the customer's view is read at once, the state is compared
    /// with the stored one (newer only; a tie settled from Stripe), the plan applied only where
    /// it changes, the stacks settled, and the state, what was applied, the event's completion
    /// and the lease's release written in one commit. The lease is released on failure.
    pub(super) async fn on_subscription(
        &self,
        delivery: Delivery<'_>,
        customer_id: &CustomerId,
        subscription: SubscriptionState,
        holder: &str,
        leased: bool,
    ) -> Result<Outcome> {
        if !leased {
            wait_for_lease(self.store, customer_id, holder, delivery.now).await?;
        }
        let outcome = self
            .on_subscription_leased(delivery, customer_id, subscription, holder)
            .await;
        if outcome.is_err()
            && let Err(error) = self.store.release_lease(customer_id, holder).await
        {
            warn!(customer_id = %customer_id, error = %crate::error::Chain(&error), "could not release the provisioning lease; it expires");
        }
        outcome
    }

    async fn on_subscription_leased(
        &self,
        delivery: Delivery<'_>,
        customer_id: &CustomerId,
        subscription: SubscriptionState,
        holder: &str,
    ) -> Result<Outcome> {
        let now = delivery.now;
        let (mut subscription, products) = self.with_plans(subscription).await?;
        let view = self.store.customer_view(customer_id).await?;
        let stored = view
            .subscriptions
            .iter()
            .find(|stored| stored.state.id == subscription.id);
        subscription.past_due_since = past_due_since(
            stored.map(|v| &v.state),
            &subscription,
            delivery.event.created,
        );
        let mut versioned = delivery.versioned(subscription);
        let mut allow_tie = false;
        let mut write = true;
        match incoming_freshness(stored, &versioned) {
            Freshness::Applied => {}
            Freshness::Same => write = false,
            Freshness::Tie => {
                // Two events in the same second: Stripe's current state settles it.
                let Some(mut current) = self.billing.subscription(&versioned.state.id).await?
                else {
                    self.commit(delivery, customer_id, holder, None, None)
                        .await?;
                    return Ok(Outcome::Stale);
                };
                current.past_due_since = versioned.state.past_due_since;
                current.metadata = versioned.state.metadata.clone();
                versioned.state = current;
                allow_tie = true;
            }
            Freshness::Stale => {
                // Nothing to apply, but an ended subscription's teardown may still be under way.
                if let Some(latest) = stored
                    && latest.state.status.is_ended()
                {
                    self.deprovision(Some(customer_id), &latest.state.id, now)
                        .await?;
                }
                self.commit(delivery, customer_id, holder, None, None)
                    .await?;
                return Ok(Outcome::Stale);
            }
        }
        let latest = match (write, stored) {
            (false, Some(stored)) => stored.state.clone(),
            _ => versioned.state.clone(),
        };
        let link = match view.link.clone() {
            Some(link) => link,
            None => {
                // Not linked yet: the state is kept before a user is looked for (an event
                // parked as unmapped is replayed over it), as it always was.
                if write {
                    write = false;
                    if self.store_subscription(&versioned, allow_tie, now).await?
                        == Freshness::Stale
                    {
                        self.commit(delivery, customer_id, holder, None, None)
                            .await?;
                        return Ok(Outcome::Stale);
                    }
                }
                let hints = LinkHints {
                    sub: latest
                        .metadata
                        .get(crate::domain::customer_metadata::COGNITO_SUB)
                        .cloned(),
                    email: None,
                };
                match self.link_for(customer_id, &hints, delivery).await? {
                    Some(link) => link,
                    None => {
                        self.commit(delivery, customer_id, holder, None, None)
                            .await?;
                        return Ok(Outcome::Unmapped);
                    }
                }
            }
        };
        let subscriptions: Vec<SubscriptionState> = view
            .subscriptions
            .iter()
            .filter(|stored| stored.state.id != latest.id)
            .map(|stored| stored.state.clone())
            .chain(std::iter::once(latest.clone()))
            .collect();
        let provision = self
            .provision_holding_lease(
                &link,
                subscriptions,
                Known::Read(view.provisioned.as_ref()),
                now,
            )
            .await?;
        let applied_before = view
            .provisioned
            .as_ref()
            .filter(|stored| stored.sub == link.sub);
        let mut applied = provision
            .changed
            .clone()
            .or_else(|| applied_before.cloned());
        let torn_down = self
            .settle_known_stack(customer_id, &latest, applied.as_mut(), &products, now)
            .await?;
        // Written when it says something new, and after a teardown (which may have forgotten it).
        let provisioned =
            applied.filter(|applied| torn_down || Some(applied) != view.provisioned.as_ref());
        let review_at = self.settings.policy.review_at(&versioned.state, now);
        let state_write = write.then_some(SubscriptionWrite {
            subscription: &versioned,
            allow_tie,
            review_at,
        });
        let committed = self
            .commit(
                delivery,
                customer_id,
                holder,
                state_write,
                provisioned.as_ref(),
            )
            .await?;
        if committed == Committed::SubscriptionNotNewer {
            // A newer state was stored meanwhile by a writer that does not hold the lease
            // (a paid checkout's, a review's): it reconciles under the lease after this one.
            // What was applied is recorded all the same.
            self.commit(delivery, customer_id, holder, None, provisioned.as_ref())
                .await?;
            return Ok(Outcome::Stale);
        }
        info!(event_id = %delivery.event.id, customer_id = %customer_id, sub = %link.sub, plan = %provision.plan, changed = provision.changed.is_some(), "customer reconciled");
        Ok(Outcome::Applied)
    }

    /// The delivery's last write: the state (if any), what was applied (if anything), the
    /// event done and the lease released.
    async fn commit(
        &self,
        delivery: Delivery<'_>,
        customer_id: &CustomerId,
        holder: &str,
        subscription: Option<SubscriptionWrite<'_>>,
        provisioned: Option<&ProvisionedState>,
    ) -> Result<Committed> {
        self.store
            .commit_delivery(&DeliveryCommit {
                event_id: &delivery.event.id,
                customer: customer_id,
                lease_holder: Some(holder),
                subscription,
                provisioned,
                now: delivery.now,
            })
            .await
    }

    /// Settles the subscription's stack under the customer's lease, keeping the stacks known
    /// active in `recorded` (what was applied) in step: an ended subscription's is torn down and
    /// no longer known; an entitled one's is made, unless known already (then nothing is read).
    /// `true` after a teardown, which forgets what was applied: the caller writes it again.
    async fn settle_known_stack(
        &self,
        customer_id: &CustomerId,
        subscription: &SubscriptionState,
        recorded: Option<&mut ProvisionedState>,
        products: &BTreeMap<String, ProductRecord>,
        now: i64,
    ) -> Result<bool> {
        if subscription.status.is_ended() {
            self.deprovision(Some(customer_id), &subscription.id, now)
                .await?;
            if let Some(recorded) = recorded {
                recorded.stacks.retain(|id| id != &subscription.id);
            }
            return Ok(true);
        }
        let known = recorded
            .as_ref()
            .is_some_and(|recorded| recorded.stacks.contains(&subscription.id));
        if self.settings.policy.entitles(subscription, now)
            && !known
            && self.provision_stack(subscription, now, products).await?
            && let Some(recorded) = recorded
        {
            recorded.stacks.push(subscription.id.clone());
            recorded.stacks.sort();
        }
        Ok(false)
    }

    /// The subscription with each item's plan, and the stored catalogue's records of its
    /// products (their plans and stack templates): events name a price's product by id, and
    /// the catalogue is kept from the product's events. Stripe is asked only for a product the
    /// catalogue does not hold.
    pub(super) async fn with_plans(
        &self,
        mut subscription: SubscriptionState,
    ) -> Result<(SubscriptionState, BTreeMap<String, ProductRecord>)> {
        let ids = subscription.product_ids();
        let products = if ids.is_empty() {
            BTreeMap::new()
        } else {
            self.store.products(&ids).await?
        };
        for item in &mut subscription.items {
            if item.plan.is_none()
                && let Some(product) = &item.product_id
            {
                item.plan = match products.get(product) {
                    Some(record) => record.plan.clone(),
                    None => self.billing.product_plan(product).await?,
                };
            }
        }
        Ok((subscription, products))
    }

    /// A paid checkout may arrive before its subscription's own events: the subscription is
    /// read from Stripe and stored (as of this event) so reconciling sees it, instead of
    /// downgrading a customer who just paid. It is written only over states of older events:
    /// a delivery of the same second may have stored a later state after Stripe was read
    /// (this path does not hold the customer's lease), and a tie would put it back.
    pub(super) async fn store_current_subscription(
        &self,
        customer_id: &CustomerId,
        subscription_id: &str,
        delivery: Delivery<'_>,
    ) -> Result<Option<SubscriptionState>> {
        if let Some(stored) = self
            .store
            .subscription(customer_id, subscription_id)
            .await?
        {
            return Ok(Some(stored.state));
        }
        let Some(current) = self.billing.subscription(subscription_id).await? else {
            return Ok(None);
        };
        let versioned = delivery.versioned(current);
        self.store_subscription(&versioned, false, delivery.now)
            .await?;
        Ok(Some(versioned.state))
    }

    /// Deleting a customer cancels its subscriptions; the stored ones end here too, and their
    /// stacks are torn down.
    pub(super) async fn end_subscriptions_of(
        &self,
        customer_id: &CustomerId,
        delivery: Delivery<'_>,
    ) -> Result<()> {
        for mut subscription in self.store.subscriptions_of(customer_id).await? {
            if subscription.status.is_ended() {
                continue;
            }
            subscription.status = SubscriptionStatus::Canceled;
            let id = subscription.id.clone();
            self.store_subscription(&delivery.versioned(subscription), true, delivery.now)
                .await?;
            self.deprovision(Some(customer_id), &id, delivery.now)
                .await?;
        }
        Ok(())
    }

    /// Stores the subscription if newer, with when the reconciler is to look at it again.
    pub(super) async fn store_subscription(
        &self,
        subscription: &Versioned<SubscriptionState>,
        allow_tie: bool,
        now: i64,
    ) -> Result<Freshness> {
        let review_at = self.settings.policy.review_at(&subscription.state, now);
        self.store
            .put_subscription(subscription, allow_tie, review_at)
            .await
    }

    /// Applies the plan of all of the customer's stored subscriptions to their user, under the
    /// customer's provisioning lease.
    pub(super) async fn reconcile(
        &self,
        customer_id: &CustomerId,
        hints: LinkHints,
        stack_of: Option<&str>,
        delivery: Delivery<'_>,
    ) -> Result<Outcome> {
        under_lease(self.store, customer_id, delivery.now, || {
            self.reconcile_holding_lease(customer_id, hints, stack_of, delivery)
        })
        .await
    }

    async fn reconcile_holding_lease(
        &self,
        customer_id: &CustomerId,
        hints: LinkHints,
        stack_of: Option<&str>,
        delivery: Delivery<'_>,
    ) -> Result<Outcome> {
        let view = self.store.customer_view(customer_id).await?;
        let link = match view.link {
            Some(link) => link,
            None => match self.link_for(customer_id, &hints, delivery).await? {
                Some(link) => link,
                None => return Ok(Outcome::Unmapped),
            },
        };
        let provision = self
            .provision_and_record(
                &link,
                view.subscriptions,
                view.provisioned.as_ref(),
                stack_of,
                delivery.now,
            )
            .await?;
        info!(event_id = %delivery.event.id, customer_id = %customer_id, sub = %link.sub, plan = %provision.plan, "customer reconciled");
        Ok(Outcome::Applied)
    }

    /// Applies the plan of the customer's stored subscriptions (as `provision_holding_lease`,
    /// from what was read with them), settles the stack of the stored subscription `stack_of`
    /// (torn down when it ended, made when it entitles), and records what was applied when it
    /// changed, that stack known active included: its renewals then read no stack.
    pub(super) async fn provision_and_record(
        &self,
        link: &CustomerLink,
        stored: Vec<Versioned<SubscriptionState>>,
        applied: Option<&ProvisionedState>,
        stack_of: Option<&str>,
        now: i64,
    ) -> Result<Provision> {
        let subscriptions: Vec<SubscriptionState> = stored.into_iter().map(|v| v.state).collect();
        let settled = stack_of.and_then(|id| subscriptions.iter().find(|s| s.id == id).cloned());
        let provision = self
            .provision_holding_lease(link, subscriptions, Known::Read(applied), now)
            .await?;
        let mut recorded = provision
            .changed
            .clone()
            .or_else(|| applied.filter(|applied| applied.sub == link.sub).cloned());
        let mut forgotten = provision.changed.is_some();
        if let Some(subscription) = settled {
            forgotten |= self
                .settle_known_stack(
                    &link.customer_id,
                    &subscription,
                    recorded.as_mut(),
                    &BTreeMap::new(),
                    now,
                )
                .await?;
        }
        if let Some(recorded) = recorded.filter(|recorded| forgotten || Some(recorded) != applied) {
            self.store
                .put_provisioned(&link.customer_id, &recorded)
                .await?;
        }
        Ok(provision)
    }

    /// Applies the plan these subscriptions (all of the customer's) entitle to, unless the
    /// stored provisioned state says it is in place: then neither Cognito nor API Gateway is
    /// called. Before a change the stored state is forgotten, so a failure half-way leaves
    /// nothing that vouches for what is no longer true. Holding the customer's lease; the
    /// caller stores `changed`.
    pub(super) async fn provision_holding_lease(
        &self,
        link: &CustomerLink,
        subscriptions: Vec<SubscriptionState>,
        known: Known<'_>,
        now: i64,
    ) -> Result<Provision> {
        let plans = &self.settings.plans;
        let plan = plans.effective_plan(&subscriptions, &self.settings.policy, now);
        let stored = match known {
            Known::Read(stored) => {
                if is_provisioned(stored, link, plan) {
                    return Ok(Provision {
                        plan: plan.name.clone(),
                        changed: None,
                    });
                }
                if stored.is_some() {
                    self.store.forget_provisioned(&link.customer_id).await?;
                }
                stored
            }
            Known::Unknown => {
                self.store.forget_provisioned(&link.customer_id).await?;
                None
            }
        };
        let api_key_id = self.provisioner().apply_plan(link, plan).await?;
        if matches!(known, Known::Read(_)) && previous_plan(stored, link, plans) != &plan.name {
            provisioning_action("plan_changed");
        }
        Ok(Provision {
            plan: plan.name.clone(),
            changed: Some(ProvisionedState {
                sub: link.sub.clone(),
                plan: plan.name.clone(),
                usage_plan_id: plan.usage_plan_id.clone(),
                api_key_id,
                // The stacks known active stay known for the same user.
                stacks: stored
                    .filter(|stored| stored.sub == link.sub)
                    .map(|stored| stored.stacks.clone())
                    .unwrap_or_default(),
            }),
        })
    }
}

/// How an incoming state compares with the stored one, by DynamoDB's ordering rule: newer
/// applies, the same event is `Same` (a retry of a delivery that stored it), another event of
/// the same second is a tie, older is stale.
fn incoming_freshness(
    stored: Option<&Versioned<SubscriptionState>>,
    incoming: &Versioned<SubscriptionState>,
) -> Freshness {
    match stored {
        None => Freshness::Applied,
        Some(stored) if stored.event_id == incoming.event_id => Freshness::Same,
        Some(stored) if incoming.event_created > stored.event_created => Freshness::Applied,
        Some(stored) if incoming.event_created == stored.event_created => Freshness::Tie,
        Some(_) => Freshness::Stale,
    }
}

/// Since when the subscription has been past due: kept from the stored state while it stays
/// past due in the same billing period (the same unpaid renewal), else the event's time. A
/// past-due state stored for another period is a delinquency that a payment, whose event may
/// still be on its way, has ended: keeping its time would shorten the new grace period.
pub(super) fn past_due_since(
    stored: Option<&SubscriptionState>,
    incoming: &SubscriptionState,
    event_created: i64,
) -> Option<i64> {
    if incoming.status != SubscriptionStatus::PastDue {
        return None;
    }
    stored
        .filter(|stored| {
            stored.status == SubscriptionStatus::PastDue
                && stored.current_period_end == incoming.current_period_end
        })
        .and_then(|stored| stored.past_due_since)
        .or(Some(event_created))
}
