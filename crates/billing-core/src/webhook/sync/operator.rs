//! What an operator's tools do to one customer, with no event: sync it from Stripe's current
//! state (an import, a link made by hand), find where what we provisioned drifted from what
//! its stored subscriptions entitle to (an audit), and repair that drift through the same
//! provisioning path as the webhook.

use serde::Serialize;
use tracing::info;

use super::SyncService;
use super::linking::LinkHints;
use super::records::customer_profile;
use super::reviews::moved;
use super::subscriptions::{Known, past_due_since};
use crate::domain::{CustomerId, CustomerLink};
use crate::error::Result;
use crate::plans::SubscriptionState;
use crate::ports::{
    ApiKeys, Billing, BillingRecord, CognitoUserRef, CustomerLinks, DeliveryStore, Directory,
    Freshness, OperatorStore, StackRecord, StackState, StackStatus, Stacks, SyncPorts, SyncStore,
    UserRecords, Versioned,
};
use crate::provisioning::under_lease;
use crate::webhook::event::CustomerObject;

/// What a link made by hand did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum HandLink {
    Linked {
        sync: CustomerSync,
        /// Parked events forgotten (their objects were synced from Stripe).
        parked_cleared: usize,
    },
    /// Nothing done: the customer is linked already.
    CustomerAlreadyLinked { sub: String },
    /// Nothing done: the user has another customer.
    UserAlreadyLinked { customer_id: String },
}

/// How a customer came to be linked (or not) by a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "link", rename_all = "snake_case")]
pub enum LinkResult {
    /// Linked before this run.
    Existing { sub: String },
    /// Linked by this run.
    LinkedNow { sub: String },
    /// A dry run found this user and would link it.
    WouldLink { sub: String },
    /// No user found by the customer's `cognito_sub` metadata or verified e-mail, or the user
    /// found already has another customer.
    Unmatched { reason: &'static str },
}

impl LinkResult {
    pub fn sub(&self) -> Option<&str> {
        match self {
            Self::Existing { sub } | Self::LinkedNow { sub } | Self::WouldLink { sub } => Some(sub),
            Self::Unmatched { .. } => None,
        }
    }
}

/// What syncing one customer from Stripe did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerSync {
    pub customer_id: String,
    #[serde(flatten)]
    pub link: LinkResult,
    pub profile_stored: bool,
    pub subscriptions_listed: usize,
    /// Stored because ours was missing or differed from Stripe's.
    pub subscriptions_stored: usize,
    /// Where provisioning differed from what the stored subscriptions entitle to.
    pub drift: Vec<Drift>,
    /// The drift was repaired (not in a dry run).
    pub repaired: bool,
}

impl CustomerSync {
    /// Whether this sync wrote (or in a dry run would write) anything.
    pub fn changed(&self) -> bool {
        matches!(
            self.link,
            LinkResult::LinkedNow { .. } | LinkResult::WouldLink { .. }
        ) || self.profile_stored
            || self.subscriptions_stored > 0
            || !self.drift.is_empty()
    }
}

/// One difference between what a linked user has and what their stored subscriptions entitle
/// them to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "drift", rename_all = "snake_case")]
pub enum Drift {
    /// The Cognito user of the link is gone.
    UserMissing,
    /// `custom:plan_type` differs.
    PlanAttribute {
        expected: String,
        found: Option<String>,
    },
    /// `custom:stripe_customer_id` differs.
    CustomerAttribute { found: Option<String> },
    /// The plan has a usage plan and the user has no API key.
    KeyMissing { usage_plan: String },
    /// The key is attached to other usage plans than the plan's (none when the plan has none).
    KeyUsagePlans {
        key_id: String,
        expected: Option<String>,
        found: Vec<String>,
    },
    /// The key is enabled without a usage plan, or disabled with one.
    KeyEnabled { key_id: String, expected: bool },
    /// An entitled subscription whose product names a template has no live stack.
    StackMissing {
        subscription_id: String,
        stack_name: String,
    },
    /// An ended subscription's stack is still recorded active.
    StackNotTornDown {
        subscription_id: String,
        stack_name: String,
    },
}

impl Drift {
    /// A short human description.
    pub fn describe(&self) -> String {
        match self {
            Self::UserMissing => "the Cognito user is gone".to_owned(),
            Self::PlanAttribute { expected, found } => format!(
                "plan attribute {} (expected {expected})",
                found.as_deref().unwrap_or("unset")
            ),
            Self::CustomerAttribute { found } => {
                format!("customer attribute {}", found.as_deref().unwrap_or("unset"))
            }
            Self::KeyMissing { usage_plan } => format!("no API key (expected on {usage_plan})"),
            Self::KeyUsagePlans {
                key_id,
                expected,
                found,
            } => format!(
                "key {key_id} on [{}] (expected {})",
                found.join(","),
                expected.as_deref().unwrap_or("none")
            ),
            Self::KeyEnabled { key_id, expected } => format!(
                "key {key_id} {} (expected {})",
                if *expected { "disabled" } else { "enabled" },
                if *expected { "enabled" } else { "disabled" }
            ),
            Self::StackMissing {
                subscription_id,
                stack_name,
            } => format!("stack {stack_name} of {subscription_id} missing"),
            Self::StackNotTornDown {
                subscription_id,
                stack_name,
            } => format!("stack {stack_name} of ended {subscription_id} still active"),
        }
    }
}

/// What a sync does besides reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    Apply,
    /// Read and compare only: report what would change.
    DryRun,
}

impl<P: SyncPorts> SyncService<'_, P> {
    /// Syncs a customer from Stripe's current state: its profile (when given), its link (by
    /// `cognito_sub` metadata, then one verified e-mail; never a new user), every subscription
    /// whatever its status, then repairs whatever provisioning drifted. Writes only what
    /// differs, so a second run changes nothing. States are stored as of `now` (the time they
    /// were read), so an older event still on its way does not undo them.
    pub async fn sync_customer(
        &self,
        customer_id: &CustomerId,
        profile: Option<&CustomerObject>,
        now: i64,
        writes: Writes,
    ) -> Result<CustomerSync> {
        let version = format!("import:{now}");
        let mut profile_stored = false;
        if let Some(customer) = profile {
            let record = BillingRecord::CustomerProfile {
                customer_id: customer.id.clone(),
                profile: customer_profile(customer),
            };
            profile_stored = self.store_if_changed(record, now, &version, writes).await?;
        }
        let (link, linked) = self.sync_link(customer_id, profile, writes).await?;
        // Read and stored under the customer's lease: a delivery of the same second cannot
        // store a later state between Stripe's answer and our write (which a tie would undo).
        let sync_subscriptions = || async {
            let current = self.billing.subscriptions_of(customer_id).await?;
            let mut stored = 0;
            for subscription in &current {
                if self
                    .store_subscription_if_changed(customer_id, subscription, now, &version, writes)
                    .await?
                {
                    stored += 1;
                }
            }
            Ok((current.len(), stored))
        };
        let (subscriptions_listed, subscriptions_stored) = match writes {
            Writes::Apply => under_lease(self.store, customer_id, now, sync_subscriptions).await?,
            Writes::DryRun => sync_subscriptions().await?,
        };
        let mut sync = CustomerSync {
            customer_id: customer_id.to_string(),
            link,
            profile_stored,
            subscriptions_listed,
            subscriptions_stored,
            drift: Vec::new(),
            repaired: false,
        };
        if let Some(link) = linked {
            let (drift, repaired) = self.audit(&link, now, writes).await?;
            sync.drift = drift;
            sync.repaired = repaired;
        }
        Ok(sync)
    }

    /// Links a customer to a user by hand (an operator's decision for a parked customer), then
    /// syncs the customer from Stripe, which applies what its parked events were about, and
    /// forgets those events.
    pub async fn link_by_hand(
        &self,
        customer_id: &CustomerId,
        user: CognitoUserRef,
        now: i64,
        writes: Writes,
    ) -> Result<HandLink> {
        if let Some(existing) = self.store.user_of_customer(customer_id).await? {
            return Ok(HandLink::CustomerAlreadyLinked {
                sub: existing.sub.to_string(),
            });
        }
        if let Some(existing) = self.store.customer_of_user(&user.sub).await? {
            return Ok(HandLink::UserAlreadyLinked {
                customer_id: existing.customer_id.to_string(),
            });
        }
        let sub = user.sub.to_string();
        if writes == Writes::Apply && self.store_link(customer_id, user).await?.is_none() {
            return Ok(HandLink::UserAlreadyLinked {
                customer_id: "(linked concurrently)".to_owned(),
            });
        }
        let mut sync = self.sync_customer(customer_id, None, now, writes).await?;
        sync.link = match writes {
            Writes::Apply => LinkResult::LinkedNow { sub },
            Writes::DryRun => LinkResult::WouldLink { sub },
        };
        let parked_cleared = match writes {
            Writes::Apply => self.store.clear_unmapped(customer_id.as_str()).await?,
            Writes::DryRun => 0,
        };
        Ok(HandLink::Linked {
            sync,
            parked_cleared,
        })
    }

    /// How the customer is linked, and the link once it exists (not in a dry run's "would").
    async fn sync_link(
        &self,
        customer_id: &CustomerId,
        profile: Option<&CustomerObject>,
        writes: Writes,
    ) -> Result<(LinkResult, Option<CustomerLink>)> {
        if let Some(link) = self.store.user_of_customer(customer_id).await? {
            let existing = LinkResult::Existing {
                sub: link.sub.to_string(),
            };
            return Ok((existing, Some(link)));
        }
        let hints = LinkHints {
            sub: profile.and_then(|p| p.cognito_sub().map(str::to_owned)),
            email: profile.and_then(|p| p.email.clone()),
        };
        let taken = LinkResult::Unmatched {
            reason: "its user already has another customer",
        };
        let Some(user) = self.find_user(&hints).await? else {
            let unmatched = LinkResult::Unmatched {
                reason: "no user with its cognito_sub or verified e-mail",
            };
            return Ok((unmatched, None));
        };
        if self.store.customer_of_user(&user.sub).await?.is_some() {
            return Ok((taken, None));
        }
        if writes == Writes::DryRun {
            let would = LinkResult::WouldLink {
                sub: user.sub.to_string(),
            };
            return Ok((would, None));
        }
        Ok(match self.store_link(customer_id, user).await? {
            Some(link) => (
                LinkResult::LinkedNow {
                    sub: link.sub.to_string(),
                },
                Some(link),
            ),
            None => (taken, None),
        })
    }

    /// Stores a record read from Stripe if ours is missing or differs; whether it did (or, in
    /// a dry run, would).
    pub async fn store_if_changed(
        &self,
        record: BillingRecord,
        now: i64,
        version: &str,
        writes: Writes,
    ) -> Result<bool> {
        if self.store.stored_record(&record).await?.as_ref() == Some(&record) {
            return Ok(false);
        }
        if writes == Writes::DryRun {
            return Ok(true);
        }
        let versioned = Versioned {
            event_created: now,
            event_id: version.to_owned(),
            state: record,
        };
        Ok(self.store.put_record(&versioned).await? == Freshness::Applied)
    }

    async fn store_subscription_if_changed(
        &self,
        customer_id: &CustomerId,
        current: &SubscriptionState,
        now: i64,
        version: &str,
        writes: Writes,
    ) -> Result<bool> {
        let stored = self.store.subscription(customer_id, &current.id).await?;
        if let Some(stored) = &stored
            && !moved(&stored.state, current)
        {
            return Ok(false);
        }
        if writes == Writes::DryRun {
            return Ok(true);
        }
        let mut state = current.clone();
        state.past_due_since = past_due_since(stored.as_ref().map(|s| &s.state), current, now);
        let versioned = Versioned {
            // Never older than what is stored (an event stamped ahead of our clock).
            event_created: stored.as_ref().map_or(now, |s| s.event_created.max(now)),
            event_id: version.to_owned(),
            state,
        };
        let freshness = self.store_subscription(&versioned, true, now).await?;
        Ok(freshness == Freshness::Applied)
    }

    /// Where the user's provisioning differs from what the customer's stored subscriptions
    /// entitle to; repaired unless a dry run. Returns the drift found and whether it was
    /// repaired.
    pub async fn audit(
        &self,
        link: &CustomerLink,
        now: i64,
        writes: Writes,
    ) -> Result<(Vec<Drift>, bool)> {
        let drift = self.drift(link, now).await?;
        if drift.is_empty() || writes == Writes::DryRun || drift.contains(&Drift::UserMissing) {
            return Ok((drift, false));
        }
        self.repair(link, &drift, now).await?;
        Ok((drift, true))
    }

    async fn drift(&self, link: &CustomerLink, now: i64) -> Result<Vec<Drift>> {
        let subscriptions = self.store.subscriptions_of(&link.customer_id).await?;
        let plan = self
            .settings
            .plans
            .effective_plan(&subscriptions, &self.settings.policy, now);
        let mut drift = Vec::new();
        let Some(user) = self
            .users
            .user_record(&link.pool_id, &link.username)
            .await?
        else {
            return Ok(vec![Drift::UserMissing]);
        };
        if user.plan.as_deref() != Some(plan.name.as_str()) {
            drift.push(Drift::PlanAttribute {
                expected: plan.name.to_string(),
                found: user.plan,
            });
        }
        if user.customer_id.as_deref() != Some(link.customer_id.as_str()) {
            drift.push(Drift::CustomerAttribute {
                found: user.customer_id,
            });
        }
        let key = self.keys.find(&link.sub).await?;
        match (&key, &plan.usage_plan_id) {
            (None, Some(usage_plan)) => drift.push(Drift::KeyMissing {
                usage_plan: usage_plan.clone(),
            }),
            (None, None) => {}
            (Some(key), target) => {
                let attached_as_expected = match target {
                    Some(usage_plan) => key.usage_plan_ids == [usage_plan.as_str()],
                    None => key.usage_plan_ids.is_empty(),
                };
                if !attached_as_expected {
                    drift.push(Drift::KeyUsagePlans {
                        key_id: key.id.clone(),
                        expected: target.clone(),
                        found: key.usage_plan_ids.clone(),
                    });
                }
                if key.enabled != target.is_some() {
                    drift.push(Drift::KeyEnabled {
                        key_id: key.id.clone(),
                        expected: target.is_some(),
                    });
                }
            }
        }
        for subscription in &subscriptions {
            drift.extend(self.stack_drift(subscription, now).await?);
        }
        Ok(drift)
    }

    async fn stack_drift(&self, subscription: &SubscriptionState, now: i64) -> Result<Vec<Drift>> {
        let recorded = self.store.stacks_of(&subscription.id).await?;
        let mut drift = Vec::new();
        if subscription.status.is_ended() {
            for stack in recorded.iter().filter(|s| s.state == StackState::Active) {
                drift.push(Drift::StackNotTornDown {
                    subscription_id: subscription.id.clone(),
                    stack_name: stack.stack_name.clone(),
                });
            }
            return Ok(drift);
        }
        if !self.settings.policy.entitles(subscription, now)
            || self.admitted_template(subscription).await?.is_none()
        {
            return Ok(drift);
        }
        let stack_name = super::stack_name_for(&subscription.id);
        let live = match recorded
            .iter()
            .find(|s| s.stack_name == stack_name && s.state == StackState::Active)
        {
            Some(_) => matches!(
                self.stacks.status(&stack_name).await?,
                StackStatus::Exists(status) if !status.starts_with("DELETE_")
            ),
            None => false,
        };
        if !live {
            drift.push(Drift::StackMissing {
                subscription_id: subscription.id.clone(),
                stack_name,
            });
        }
        Ok(drift)
    }

    async fn admitted_template(&self, subscription: &SubscriptionState) -> Result<Option<String>> {
        for product in subscription.product_ids() {
            if let Some(named) = self.billing.product_stack_template(product).await? {
                return Ok(self
                    .settings
                    .stack_templates
                    .admit(&named)
                    .map(|url| url.to_string()));
            }
        }
        Ok(None)
    }

    /// Applies the customer's access again through the webhook's provisioning path, under the
    /// customer's lease.
    async fn repair(&self, link: &CustomerLink, drift: &[Drift], now: i64) -> Result<()> {
        let customer_id = &link.customer_id;
        under_lease(self.store, customer_id, now, || async {
            if drift
                .iter()
                .any(|d| matches!(d, Drift::CustomerAttribute { .. }))
            {
                self.users
                    .set_customer_id(&link.pool_id, &link.username, customer_id)
                    .await?;
            }
            let subscriptions = self.store.subscriptions_of(customer_id).await?;
            // Drift means the stored provisioned state cannot be trusted: applied in full.
            let provisioned = self
                .provision_holding_lease(link, subscriptions.clone(), Known::Unknown, now)
                .await?;
            if let Some(changed) = &provisioned.changed {
                self.store.put_provisioned(customer_id, changed).await?;
            }
            for item in drift {
                if let Drift::StackMissing {
                    subscription_id,
                    stack_name,
                } = item
                {
                    // Recorded active but gone from CloudFormation: recorded deleted, so it is
                    // created anew below.
                    self.store
                        .put_stack(&StackRecord {
                            subscription_id: subscription_id.clone(),
                            stack_name: stack_name.clone(),
                            state: StackState::Deleted,
                            updated_at: now,
                        })
                        .await?;
                }
            }
            for subscription in &subscriptions {
                self.settle_stacks_holding_lease(customer_id, &subscription.id, now, true)
                    .await?;
            }
            info!(customer_id = %customer_id, sub = %link.sub, plan = %provisioned.plan, drift = drift.len(), "drift repaired");
            Ok(())
        })
        .await
    }
}
