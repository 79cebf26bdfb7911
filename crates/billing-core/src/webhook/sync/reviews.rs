//! Reviews: a stored subscription looked at again when its time comes, with no event. A
//! past-due grace that ends revokes access then; a trial or a cancellation whose period is
//! over is read from Stripe, in case its event never arrived.

use tracing::info;

use super::SyncService;
use super::subscriptions::past_due_since;
use crate::error::Result;
use crate::plans::SubscriptionState;
use crate::ports::{
    Billing, DeliveryStore, DueReview, ReconcilerStore, SyncPorts, SyncStore, Versioned,
};
use crate::provisioning::under_lease;

/// What a review did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// Access applied as of now (e.g. a grace that ended revoked it); Stripe's state stored
    /// first when it had moved (`revised`).
    Applied { plan: String, revised: bool },
    /// Nobody is linked to the customer: nothing to apply.
    Unlinked,
    /// The subscription is no longer stored.
    Gone,
}

impl<P: SyncPorts> SyncService<'_, P> {
    /// Looks at a due subscription again under its customer's lease, applies its customer's
    /// access as of `now`, and stores when to look next.
    pub async fn review(&self, due: &DueReview, now: i64) -> Result<ReviewOutcome> {
        let customer_id = &due.customer_id;
        under_lease(self.store, customer_id, now, || async {
            let Some(stored) = self
                .store
                .subscription(customer_id, &due.subscription_id)
                .await?
            else {
                return Ok(ReviewOutcome::Gone);
            };
            let mut state = stored.state.clone();
            let mut revised = false;
            if self.settings.policy.awaits_stripe(&state, now)
                && let Some(mut current) = self.billing.subscription(&state.id).await?
                && moved(&state, &current)
            {
                // Its event is missing: Stripe's state replaces ours, as of the stored event,
                // so any later event still applies after it.
                current.past_due_since = past_due_since(Some(&state), &current, now);
                let revision = Versioned {
                    event_created: stored.event_created,
                    event_id: format!("review:{now}"),
                    state: current.clone(),
                };
                self.store_subscription(&revision, true, now).await?;
                state = current;
                revised = true;
            }
            if !revised {
                let review_at = self.settings.policy.review_at(&state, now);
                self.store
                    .set_review(customer_id, &state.id, review_at)
                    .await?;
            }
            let view = self.store.customer_view(customer_id).await?;
            let Some(link) = view.link else {
                return Ok(ReviewOutcome::Unlinked);
            };
            let provisioned = self
                .provision_and_record(
                    &link,
                    view.subscriptions,
                    view.provisioned.as_ref(),
                    Some(&state.id),
                    now,
                )
                .await?;
            info!(customer_id = %customer_id, subscription_id = %state.id, plan = %provisioned.plan, revised, "subscription reviewed");
            Ok(ReviewOutcome::Applied {
                plan: provisioned.plan.to_string(),
                revised,
            })
        })
        .await
    }
}

/// Whether Stripe's state differs from ours in what access depends on.
pub(super) fn moved(stored: &SubscriptionState, current: &SubscriptionState) -> bool {
    stored.status != current.status
        || stored.current_period_end != current.current_period_end
        || stored.cancel_at_period_end != current.cancel_at_period_end
        || stored.items != current.items
}
