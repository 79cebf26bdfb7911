//! The CloudFormation stacks subscriptions pay for: created while a subscription is entitled,
//! torn down through recorded states once it ends, and swept until CloudFormation is done.

use tracing::{error, info};

use super::SyncService;
use crate::domain::CustomerId;
use crate::error::Result;
use crate::plans::SubscriptionState;
use crate::ports::{Billing, StackRecord, StackState, StackStatus, Stacks, SyncPorts, SyncStore};
use crate::provisioning::under_lease;

impl<P: SyncPorts> SyncService<'_, P> {
    /// Tears down the stacks of an ended subscription and, when `provision`, creates the stack
    /// of an entitled one: decided on the latest stored state, under the customer's lease, so a
    /// delivery that stored an older state cannot create a stack after the ending one tore it
    /// down.
    pub(super) async fn settle_stacks(
        &self,
        customer_id: &CustomerId,
        subscription_id: &str,
        now: i64,
        provision: bool,
    ) -> Result<()> {
        under_lease(self.store, customer_id, now, || {
            self.settle_stacks_holding_lease(customer_id, subscription_id, now, provision)
        })
        .await
    }

    pub(super) async fn settle_stacks_holding_lease(
        &self,
        customer_id: &CustomerId,
        subscription_id: &str,
        now: i64,
        provision: bool,
    ) -> Result<()> {
        let Some(latest) = self
            .store
            .subscription(customer_id, subscription_id)
            .await?
        else {
            return Ok(());
        };
        if latest.state.status.is_ended() {
            self.deprovision(subscription_id, now).await
        } else if provision && self.settings.policy.entitles(&latest.state, now) {
            self.provision_stack(&latest.state, now).await
        } else {
            Ok(())
        }
    }

    /// An active subscription whose product names a template gets one stack of it, named after
    /// the subscription, recorded so its end tears it down. CloudFormation refuses a second
    /// stack of the same name, so concurrent events create it once.
    pub(super) async fn provision_stack(
        &self,
        subscription: &SubscriptionState,
        now: i64,
    ) -> Result<()> {
        // One stack per subscription: the first of its products that names a template.
        let mut named_by = None;
        for product in subscription.product_ids() {
            if let Some(named) = self.billing.product_stack_template(product).await? {
                named_by = Some((product, named));
                break;
            }
        }
        let Some((product, named)) = named_by else {
            return Ok(());
        };
        let Some(template_url) = self.settings.stack_templates.admit(&named) else {
            error!(subscription_id = %subscription.id, product_id = %product, "the product's stack template is outside the allowed bucket and prefix; no stack created");
            return Ok(());
        };
        let stack_name = stack_name_for(&subscription.id);
        // A stack that is active or still being deleted is left alone; one deleted (an unpaid
        // subscription paid again) is created anew.
        let recorded = self.store.stacks_of(&subscription.id).await?;
        if recorded
            .iter()
            .any(|stack| stack.stack_name == stack_name && stack.state != StackState::Deleted)
        {
            return Ok(());
        }
        let parameters = [
            ("SubscriptionId", subscription.id.as_str()),
            ("CustomerId", subscription.customer_id.as_str()),
        ];
        self.stacks
            .create(&stack_name, template_url.as_str(), &parameters)
            .await?;
        crate::provisioning::provisioning_action("stack_created");
        self.store
            .put_stack(&StackRecord {
                subscription_id: subscription.id.clone(),
                stack_name: stack_name.clone(),
                state: StackState::Active,
                updated_at: now,
            })
            .await?;
        info!(subscription_id = %subscription.id, stack = %stack_name, "stack created for the subscription");
        Ok(())
    }

    /// Moves every stack of an ended subscription towards deleted: active -> delete called ->
    /// deleting -> (CloudFormation says gone) deleted. A failure leaves the recorded state as it
    /// was, so the next event or the sweep retries.
    pub async fn deprovision(&self, subscription_id: &str, now: i64) -> Result<()> {
        for stack in self.store.stacks_of(subscription_id).await? {
            self.advance_stack(stack, now).await?;
        }
        Ok(())
    }

    /// The scheduled sweep: every stack still deleting is checked again (and deleted again if
    /// CloudFormation's deletion failed). Returns how many are still deleting.
    pub async fn sweep(&self, now: i64) -> Result<usize> {
        let mut still_deleting = 0;
        for stack in self.store.stacks_in_state(StackState::Deleting).await? {
            if self.advance_stack(stack, now).await? == StackState::Deleting {
                still_deleting += 1;
            }
        }
        Ok(still_deleting)
    }

    async fn advance_stack(&self, stack: StackRecord, now: i64) -> Result<StackState> {
        if stack.state == StackState::Deleted {
            return Ok(StackState::Deleted);
        }
        let next = match self.stacks.status(&stack.stack_name).await? {
            StackStatus::Gone => StackState::Deleted,
            StackStatus::Exists(status) if status == "DELETE_COMPLETE" => StackState::Deleted,
            StackStatus::Exists(status) if status == "DELETE_IN_PROGRESS" => StackState::Deleting,
            StackStatus::Exists(_) => {
                self.stacks.delete(&stack.stack_name).await?;
                crate::provisioning::provisioning_action("stack_deleted");
                StackState::Deleting
            }
        };
        if next != stack.state {
            info!(subscription_id = %stack.subscription_id, stack = %stack.stack_name, state = ?next, "stack deprovisioning");
            self.store
                .put_stack(&StackRecord {
                    state: next,
                    updated_at: now,
                    ..stack
                })
                .await?;
        }
        Ok(next)
    }
}

/// `billing-<subscription id>`, in the characters stack names allow.
pub fn stack_name_for(subscription_id: &str) -> String {
    let id: String = subscription_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("billing-{id}")
}
