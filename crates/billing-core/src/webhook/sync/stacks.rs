//! The CloudFormation stacks subscriptions pay for: created while a subscription is entitled,
//! torn down through recorded states once it ends, and swept until CloudFormation is done.

use std::collections::BTreeMap;

use tracing::{error, info};

use super::SyncService;
use crate::domain::CustomerId;
use crate::error::Result;
use crate::plans::SubscriptionState;
use crate::ports::{
    Billing, ProductRecord, ProvisioningLeases, StackRecord, StackState, StackStatus, Stacks,
    SyncPorts, SyncStore,
};
use crate::stack_templates::{STACK_TEMPLATE_METADATA, named_template};

impl<P: SyncPorts> SyncService<'_, P> {
    /// Tears down the stacks of an ended subscription and, when `provision`, creates the stack
    /// of an entitled one: decided on the latest stored state, under the customer's lease
    /// (held by the caller), so a delivery that stored an older state cannot create a stack
    /// after the ending one tore it down.
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
            self.deprovision(Some(customer_id), subscription_id, now)
                .await
        } else if provision && self.settings.policy.entitles(&latest.state, now) {
            self.provision_stack(&latest.state, now, &BTreeMap::new())
                .await
                .map(|_| ())
        } else {
            Ok(())
        }
    }

    /// An active subscription whose product names a template gets one stack of it, named after
    /// the subscription, recorded so its end tears it down. CloudFormation refuses a second
    /// stack of the same name, so concurrent events create it once. A product's template is
    /// read from its record in `products` (the stored catalogue), from Stripe when absent.
    /// `true` when the subscription's stack is recorded active (found so, or created now).
    pub(super) async fn provision_stack(
        &self,
        subscription: &SubscriptionState,
        now: i64,
        products: &BTreeMap<String, ProductRecord>,
    ) -> Result<bool> {
        // One stack per subscription: the first of its products that names a template.
        let mut named_by = None;
        for product in subscription.product_ids() {
            let named = match products.get(product) {
                Some(record) => named_template(record.metadata.get(STACK_TEMPLATE_METADATA)),
                None => self.billing.product_stack_template(product).await?,
            };
            if let Some(named) = named {
                named_by = Some((product, named));
                break;
            }
        }
        let Some((product, named)) = named_by else {
            return Ok(false);
        };
        let Some(template_url) = self.settings.stack_templates.admit(&named) else {
            error!(subscription_id = %subscription.id, product_id = %product, "the product's stack template is outside the allowed bucket and prefix; no stack created");
            return Ok(false);
        };
        let stack_name = stack_name_for(&subscription.id);
        // A stack that is active or still being deleted is left alone; one deleted (an unpaid
        // subscription paid again) is created anew.
        let recorded = self.store.stacks_of(&subscription.id).await?;
        if let Some(stack) = recorded
            .iter()
            .find(|stack| stack.stack_name == stack_name && stack.state != StackState::Deleted)
        {
            return Ok(stack.state == StackState::Active);
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
        Ok(true)
    }

    /// Moves every stack of an ended subscription towards deleted: active -> delete called ->
    /// deleting -> (CloudFormation says gone) deleted. A failure leaves the recorded state as it
    /// was, so the next event or the sweep retries. Before a stack of the `customer` is moved,
    /// what was applied to them (which names the stacks known active) is forgotten.
    pub async fn deprovision(
        &self,
        customer: Option<&CustomerId>,
        subscription_id: &str,
        now: i64,
    ) -> Result<()> {
        let stacks = self.store.stacks_of(subscription_id).await?;
        if let Some(customer) = customer
            && stacks
                .iter()
                .any(|stack| stack.state != StackState::Deleted)
        {
            self.store.forget_provisioned(customer).await?;
        }
        for stack in stacks {
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
