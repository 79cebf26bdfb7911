//! Subscription events, and reconciling a customer from all of their stored subscriptions.

use tracing::info;

use super::linking::LinkHints;
use super::{Delivery, Outcome, SyncService, parse_customer};
use crate::domain::CustomerId;
use crate::error::Result;
use crate::plans::{SubscriptionState, SubscriptionStatus};
use crate::ports::{Billing, Freshness, SyncPorts, SyncStore, Versioned};
use crate::provisioning::under_lease;

impl<P: SyncPorts> SyncService<'_, P> {
    pub(super) async fn on_subscription(
        &self,
        delivery: Delivery<'_>,
        mut subscription: SubscriptionState,
    ) -> Result<Outcome> {
        // Events name a price's product by id: its plan is read once per product.
        for item in &mut subscription.items {
            if item.plan.is_none()
                && let Some(product) = &item.product_id
            {
                item.plan = self.billing.product_plan(product).await?;
            }
        }
        let customer_id = parse_customer(&subscription.customer_id)?;
        let stored = self
            .store
            .subscription(&customer_id, &subscription.id)
            .await?;
        subscription.past_due_since = past_due_since(
            stored.as_ref().map(|v| &v.state),
            &subscription,
            delivery.event.created,
        );
        let versioned = delivery.versioned(subscription);
        let freshness = match self
            .store_subscription(&versioned, false, delivery.now)
            .await?
        {
            Freshness::Tie => {
                // Two events in the same second: Stripe's current state settles it.
                let Some(mut current) = self.billing.subscription(&versioned.state.id).await?
                else {
                    return Ok(Outcome::Stale);
                };
                current.past_due_since = versioned.state.past_due_since;
                current.metadata = versioned.state.metadata.clone();
                let settled = Versioned {
                    state: current,
                    ..versioned.clone()
                };
                self.store_subscription(&settled, true, delivery.now)
                    .await?
            }
            other => other,
        };
        let now = delivery.now;
        if freshness == Freshness::Stale {
            // Nothing to apply, but an ended subscription's teardown may still be under way.
            self.settle_stacks(&customer_id, &versioned.state.id, now, false)
                .await?;
            return Ok(Outcome::Stale);
        }
        let hints = LinkHints {
            sub: versioned
                .state
                .metadata
                .get(crate::domain::customer_metadata::COGNITO_SUB)
                .cloned(),
            email: None,
        };
        // One lease for the plan and the stacks: both act on the state read under it.
        under_lease(self.store, &customer_id, now, || async {
            let outcome = self
                .reconcile_holding_lease(&customer_id, hints, delivery)
                .await?;
            self.settle_stacks_holding_lease(&customer_id, &versioned.state.id, now, true)
                .await?;
            Ok(outcome)
        })
        .await
    }

    /// A paid checkout may arrive before its subscription's own events: the subscription is
    /// read from Stripe and stored (as of this event) so reconciling sees it, instead of
    /// downgrading a customer who just paid.
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
        self.store_subscription(&versioned, true, delivery.now)
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
            self.deprovision(&id, delivery.now).await?;
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
        delivery: Delivery<'_>,
    ) -> Result<Outcome> {
        under_lease(self.store, customer_id, delivery.now, || {
            self.reconcile_holding_lease(customer_id, hints, delivery)
        })
        .await
    }

    async fn reconcile_holding_lease(
        &self,
        customer_id: &CustomerId,
        hints: LinkHints,
        delivery: Delivery<'_>,
    ) -> Result<Outcome> {
        let Some(link) = self.link_for(customer_id, &hints, delivery).await? else {
            return Ok(Outcome::Unmapped);
        };
        let subscriptions = self.store.subscriptions_of(customer_id).await?;
        let provisioned = self
            .provisioner()
            .apply(&link, subscriptions, delivery.now)
            .await?;
        info!(event_id = %delivery.event.id, customer_id = %customer_id, sub = %link.sub, plan = %provisioned.plan, "customer reconciled");
        Ok(Outcome::Applied)
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
