//! Applying a verified Stripe event: one `apply` for the HTTPS webhook and EventBridge alike.
//!
//! Each event is claimed in the event log first (duplicates do nothing, concurrent deliveries do
//! the work once, a failed delivery is released for Stripe's retry). Object states are stored
//! only when their event is newer than the stored one; a tie is settled by reading the object
//! from Stripe. After any change to a customer's subscriptions the customer is reconciled from
//! all of their stored subscriptions, and the resources of ended subscriptions are torn down
//! through recorded states.

use serde_json::json;
use tracing::{info, warn};

use crate::domain::{CustomerId, CustomerLink, Email, UserPoolId};
use crate::error::{Error, Result, Upstream};
use crate::plans::{AccessPolicy, PlanCatalog, SubscriptionState, SubscriptionStatus};
use crate::ports::{
    ApiKeys, Billing, CustomerLinks, Directory, Document, EventClaim, EventLog, Freshness,
    ProvisioningLeases, StackRecord, StackState, StackStatus, Stacks, SyncStore, UserLookup,
    Versioned,
};
use crate::provisioning::{Provisioner, under_lease};
use crate::webhook::event::{
    CheckoutSessionObject, CustomerObject, EventObject, InvoiceObject, PaymentIntentObject,
    PriceObject, ProductObject, StripeEvent, TaxRateObject,
};

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub plans: PlanCatalog,
    pub policy: AccessPolicy,
    pub user_pool_id: UserPoolId,
    /// Create the Cognito user from the payer's email when a payment comes first.
    pub create_users: bool,
}

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Duplicate,
    /// Another delivery is applying it now: answer non-2xx so Stripe comes back.
    InProgress,
    /// Older than what we hold: nothing to do.
    Stale,
    /// About a customer nobody is linked to: parked.
    Unmapped,
    /// A type we do not use.
    Ignored,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::InProgress => "in_progress",
            Self::Stale => "stale",
            Self::Unmapped => "unmapped",
            Self::Ignored => "ignored",
        }
    }
}

pub struct SyncService<'a, S, B, D, K, C, U> {
    pub store: &'a S,
    pub billing: &'a B,
    pub directory: &'a D,
    pub keys: &'a K,
    pub stacks: &'a C,
    pub users: &'a U,
    pub settings: &'a SyncSettings,
}

impl<S, B, D, K, C, U> std::fmt::Debug for SyncService<'_, S, B, D, K, C, U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncService")
    }
}

fn is_handled(event_type: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "product.",
        "price.",
        "tax_rate.",
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "customer.subscription.",
        "checkout.session.",
        "invoice.",
        "payment_intent.",
    ];
    PREFIXES.iter().any(|prefix| event_type.starts_with(prefix))
}

impl<S, B, D, K, C, U> SyncService<'_, S, B, D, K, C, U>
where
    S: SyncStore + EventLog + CustomerLinks + ProvisioningLeases,
    B: Billing,
    D: Directory,
    K: ApiKeys,
    C: Stacks,
    U: UserLookup,
{
    /// Applies the event once. An `Err` means "retry later": the event is released.
    pub async fn apply(&self, event: &StripeEvent, now: i64) -> Result<Outcome> {
        if !is_handled(&event.event_type) {
            return Ok(Outcome::Ignored);
        }
        match self.store.claim(&event.id, now).await? {
            EventClaim::AlreadyDone => return Ok(Outcome::Duplicate),
            EventClaim::InProgress => return Ok(Outcome::InProgress),
            EventClaim::Claimed => {}
        }
        match self.dispatch(event, now).await {
            Ok(outcome) => {
                self.store.complete(&event.id, now).await?;
                Ok(outcome)
            }
            Err(failure) => {
                if let Err(release) = self.store.release(&event.id).await {
                    warn!(event_id = %event.id, error = %crate::error::Chain(&release), "could not release the event; its claim expires");
                }
                Err(failure)
            }
        }
    }

    async fn dispatch(&self, event: &StripeEvent, now: i64) -> Result<Outcome> {
        match &event.object {
            EventObject::Subscription(subscription) => {
                self.on_subscription(event, subscription.clone(), now).await
            }
            EventObject::CheckoutSession(session) => {
                self.on_checkout_session(event, session, now).await
            }
            EventObject::Customer(customer) => self.on_customer(event, customer, now).await,
            EventObject::Invoice(invoice) => self.on_invoice(event, invoice).await,
            EventObject::PaymentIntent(payment) => self.on_payment_intent(event, payment).await,
            EventObject::Product(product) => self.on_product(event, product).await,
            EventObject::Price(price) => self.on_price(event, price).await,
            EventObject::TaxRate(rate) => self.on_tax_rate(event, rate).await,
            EventObject::Other { .. } => Ok(Outcome::Ignored),
        }
    }

    fn provisioner(&self) -> Provisioner<'_, B, D, K> {
        Provisioner {
            billing: self.billing,
            directory: self.directory,
            keys: self.keys,
            plans: &self.settings.plans,
            policy: &self.settings.policy,
        }
    }

    async fn put_document(&self, event: &StripeEvent, document: Document) -> Result<Outcome> {
        let versioned = Versioned {
            event_created: event.created,
            event_id: event.id.clone(),
            state: document,
        };
        Ok(match self.store.put_document(&versioned).await? {
            Freshness::Applied | Freshness::Tie | Freshness::Same => Outcome::Applied,
            Freshness::Stale => Outcome::Stale,
        })
    }

    async fn on_subscription(
        &self,
        event: &StripeEvent,
        mut subscription: SubscriptionState,
        now: i64,
    ) -> Result<Outcome> {
        if subscription.plan.is_none()
            && let Some(product) = &subscription.product_id
        {
            subscription.plan = self.billing.product_plan(product).await?;
        }
        let customer_id = parse_customer(&subscription.customer_id)?;
        let stored = self
            .store
            .subscription(&customer_id, &subscription.id)
            .await?;
        subscription.past_due_since = past_due_since(
            stored.as_ref().map(|v| &v.state),
            &subscription,
            event.created,
        );
        let versioned = Versioned {
            event_created: event.created,
            event_id: event.id.clone(),
            state: subscription,
        };
        let freshness = match self.store.put_subscription(&versioned, false).await? {
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
                self.store.put_subscription(&settled, true).await?
            }
            other => other,
        };
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
                .reconcile_holding_lease(&customer_id, hints, event, now)
                .await?;
            self.settle_stacks_holding_lease(&customer_id, &versioned.state.id, now, true)
                .await?;
            Ok(outcome)
        })
        .await
    }

    /// Tears down the stacks of an ended subscription and, when `provision`, creates the stack
    /// of an entitled one: decided on the latest stored state, under the customer's lease, so a
    /// delivery that stored an older state cannot create a stack after the ending one tore it
    /// down.
    async fn settle_stacks(
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

    async fn settle_stacks_holding_lease(
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

    async fn on_checkout_session(
        &self,
        event: &StripeEvent,
        session: &CheckoutSessionObject,
        now: i64,
    ) -> Result<Outcome> {
        let Some(customer) = &session.customer_id else {
            return Ok(Outcome::Ignored);
        };
        let customer_id = parse_customer(customer)?;
        let fetched;
        let items = match &session.line_items {
            Some(items) => items,
            None => {
                fetched = self.billing.checkout_line_items(&session.id).await?;
                &fetched
            }
        };
        let line_items: Vec<_> = items
            .iter()
            .map(|item| json!({"price": item.price_id, "product": item.product_id, "quantity": item.quantity, "amount_total": item.amount_total, "currency": item.currency}))
            .collect();
        self.put_document(
            event,
            Document {
                pk: format!("CUSTOMER#{customer}"),
                sk: format!("CHECKOUT#{}", session.id),
                gsi1: None,
                body: json!({
                    "mode": session.mode, "status": session.status,
                    "payment_status": session.payment_status, "subscription": session.subscription_id,
                    "payment_intent": session.payment_intent_id, "amount_total": session.amount_total,
                    "currency": session.currency, "line_items": line_items,
                }),
            },
        )
        .await?;
        if session.mode.as_deref() == Some("payment") && session.payment_intent_id.is_some() {
            self.put_document(
                event,
                Document {
                    pk: format!("CUSTOMER#{customer}"),
                    sk: format!("PAYMENT#{}", session.payment_intent_id.as_deref().unwrap_or_default()),
                    gsi1: None,
                    body: json!({"amount": session.amount_total, "currency": session.currency, "status": session.payment_status, "checkout_session": session.id}),
                },
            )
            .await?;
        }
        let hints = LinkHints {
            sub: session.client_reference_id.clone().or_else(|| {
                session
                    .metadata
                    .get(crate::domain::customer_metadata::COGNITO_SUB)
                    .cloned()
            }),
            email: session.customer_email.clone(),
        };
        let paid = matches!(
            session.payment_status.as_deref(),
            Some("paid" | "no_payment_required")
        );
        if !paid {
            // Linked now so later events find the user; provisioning waits for the payment.
            return Ok(
                match self.link_for(&customer_id, &hints, event, now).await? {
                    Some(_) => Outcome::Applied,
                    None => Outcome::Unmapped,
                },
            );
        }
        let subscription = match &session.subscription_id {
            Some(id) => {
                self.store_current_subscription(&customer_id, id, event)
                    .await?
            }
            None => None,
        };
        let outcome = self.reconcile(&customer_id, hints, event, now).await?;
        // The subscription's own events may now be stale: its resources start here.
        if let Some(subscription) = subscription.filter(|s| self.settings.policy.entitles(s, now)) {
            self.provision_stack(&subscription, now).await?;
        }
        Ok(outcome)
    }

    /// A paid checkout may arrive before its subscription's own events: the subscription is
    /// read from Stripe and stored (as of this event) so reconciling sees it, instead of
    /// downgrading a customer who just paid.
    async fn store_current_subscription(
        &self,
        customer_id: &CustomerId,
        subscription_id: &str,
        event: &StripeEvent,
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
        let versioned = Versioned {
            event_created: event.created,
            event_id: event.id.clone(),
            state: current,
        };
        self.store.put_subscription(&versioned, true).await?;
        Ok(Some(versioned.state))
    }

    async fn on_customer(
        &self,
        event: &StripeEvent,
        customer: &CustomerObject,
        now: i64,
    ) -> Result<Outcome> {
        let customer_id = parse_customer(&customer.id)?;
        self.put_document(
            event,
            Document {
                pk: format!("CUSTOMER#{}", customer.id),
                sk: "PROFILE".into(),
                gsi1: None,
                body: json!({"name": customer.name, "metadata": customer.metadata, "deleted": customer.deleted, "delinquent": false}),
            },
        )
        .await?;
        if customer.deleted {
            // Deleting a customer cancels its subscriptions; the stored ones end here too.
            for mut subscription in self.store.subscriptions_of(&customer_id).await? {
                if subscription.status.is_ended() {
                    continue;
                }
                subscription.status = SubscriptionStatus::Canceled;
                let id = subscription.id.clone();
                self.store
                    .put_subscription(
                        &Versioned {
                            event_created: event.created,
                            event_id: event.id.clone(),
                            state: subscription,
                        },
                        true,
                    )
                    .await?;
                self.deprovision(&id, now).await?;
            }
            return self
                .reconcile(&customer_id, LinkHints::default(), event, now)
                .await;
        }
        let hints = LinkHints {
            sub: customer.cognito_sub().map(str::to_owned),
            email: customer.email.clone(),
        };
        Ok(
            match self.link_for(&customer_id, &hints, event, now).await? {
                Some(_) => Outcome::Applied,
                None => Outcome::Unmapped,
            },
        )
    }

    async fn on_invoice(&self, event: &StripeEvent, invoice: &InvoiceObject) -> Result<Outcome> {
        let Some(customer) = &invoice.customer_id else {
            return Ok(Outcome::Ignored);
        };
        let failed = matches!(
            event.event_type.as_str(),
            "invoice.payment_failed"
                | "invoice.payment_action_required"
                | "invoice.marked_uncollectible"
        );
        let paid = matches!(
            event.event_type.as_str(),
            "invoice.paid" | "invoice.payment_succeeded"
        );
        if failed || paid {
            self.put_document(
                event,
                Document {
                    pk: format!("CUSTOMER#{customer}"),
                    sk: "DELINQUENCY".into(),
                    gsi1: None,
                    body: json!({"delinquent": failed, "invoice": invoice.id}),
                },
            )
            .await?;
        }
        self.put_document(
            event,
            Document {
                pk: format!("CUSTOMER#{customer}"),
                sk: format!("INVOICE#{}", invoice.id),
                gsi1: None,
                body: json!({
                    "number": invoice.number, "status": invoice.status, "subscription": invoice.subscription_id,
                    "currency": invoice.currency, "amount_due": invoice.amount_due, "amount_paid": invoice.amount_paid,
                    "amount_remaining": invoice.amount_remaining, "hosted_invoice_url": invoice.hosted_invoice_url,
                    "invoice_pdf": invoice.invoice_pdf, "period_start": invoice.period_start, "period_end": invoice.period_end,
                    "created": invoice.created, "attempt_count": invoice.attempt_count,
                    "next_payment_attempt": invoice.next_payment_attempt, "billing_reason": invoice.billing_reason,
                    "last_event": event.event_type,
                }),
            },
        )
        .await
    }

    async fn on_payment_intent(
        &self,
        event: &StripeEvent,
        payment: &PaymentIntentObject,
    ) -> Result<Outcome> {
        let Some(customer) = &payment.customer_id else {
            return Ok(Outcome::Ignored);
        };
        self.put_document(
            event,
            Document {
                pk: format!("CUSTOMER#{customer}"),
                sk: format!("PAYMENT#{}", payment.id),
                gsi1: None,
                body: json!({"amount": payment.amount, "amount_received": payment.amount_received, "currency": payment.currency, "status": payment.status, "invoice": payment.invoice_id, "metadata": payment.metadata}),
            },
        )
        .await
    }

    async fn on_product(&self, event: &StripeEvent, product: &ProductObject) -> Result<Outcome> {
        self.put_document(
            event,
            Document {
                pk: format!("PRODUCT#{}", product.id),
                sk: "PRODUCT".into(),
                gsi1: None,
                body: json!({"name": product.name, "active": product.active && !product.deleted, "metadata": product.metadata, "plan": product.plan().map(|p| p.to_string())}),
            },
        )
        .await
    }

    async fn on_price(&self, event: &StripeEvent, price: &PriceObject) -> Result<Outcome> {
        let tiers: Vec<_> = price
            .tiers
            .iter()
            .map(|tier| json!({"up_to": tier.up_to, "unit_amount": tier.unit_amount, "flat_amount": tier.flat_amount}))
            .collect();
        let gsi1 = price
            .lookup_key
            .as_ref()
            .filter(|_| price.active && !price.deleted)
            .map(|key| (format!("LOOKUP#{key}"), format!("PRICE#{}", price.id)));
        self.put_document(
            event,
            Document {
                pk: format!("PRICE#{}", price.id),
                sk: "PRICE".into(),
                gsi1,
                body: json!({
                    "product": price.product_id, "active": price.active && !price.deleted, "currency": price.currency,
                    "unit_amount": price.unit_amount, "type": price.price_type, "lookup_key": price.lookup_key,
                    "nickname": price.nickname, "billing_scheme": price.billing_scheme, "tiers_mode": price.tiers_mode,
                    "tiers": tiers, "metadata": price.metadata,
                    "recurring": price.recurring.as_ref().map(|r| json!({"interval": r.interval, "interval_count": r.interval_count, "trial_period_days": r.trial_period_days})),
                }),
            },
        )
        .await
    }

    async fn on_tax_rate(&self, event: &StripeEvent, rate: &TaxRateObject) -> Result<Outcome> {
        self.put_document(
            event,
            Document {
                pk: format!("TAX_RATE#{}", rate.id),
                sk: "TAX_RATE".into(),
                gsi1: None,
                body: json!({"display_name": rate.display_name, "percentage": rate.percentage, "inclusive": rate.inclusive, "active": rate.active, "jurisdiction": rate.jurisdiction, "country": rate.country, "metadata": rate.metadata}),
            },
        )
        .await
    }

    /// Applies the plan of all of the customer's stored subscriptions to their user, under the
    /// customer's provisioning lease.
    async fn reconcile(
        &self,
        customer_id: &CustomerId,
        hints: LinkHints,
        event: &StripeEvent,
        now: i64,
    ) -> Result<Outcome> {
        under_lease(self.store, customer_id, now, || {
            self.reconcile_holding_lease(customer_id, hints, event, now)
        })
        .await
    }

    async fn reconcile_holding_lease(
        &self,
        customer_id: &CustomerId,
        hints: LinkHints,
        event: &StripeEvent,
        now: i64,
    ) -> Result<Outcome> {
        let Some(link) = self.link_for(customer_id, &hints, event, now).await? else {
            return Ok(Outcome::Unmapped);
        };
        let subscriptions = self.store.subscriptions_of(customer_id).await?;
        let provisioned = self.provisioner().apply(&link, subscriptions, now).await?;
        info!(event_id = %event.id, customer_id = %customer_id, sub = %link.sub, plan = %provisioned.plan, "customer reconciled");
        Ok(Outcome::Applied)
    }

    /// The user of a customer: the stored link, else one found by the hints (the checkout's
    /// client_reference_id or metadata sub, then the email), else a user created from the email
    /// if allowed. Parks the event when nobody can be linked.
    async fn link_for(
        &self,
        customer_id: &CustomerId,
        hints: &LinkHints,
        event: &StripeEvent,
        now: i64,
    ) -> Result<Option<CustomerLink>> {
        if let Some(link) = self.store.user_of_customer(customer_id).await? {
            return Ok(Some(link));
        }
        let pool = &self.settings.user_pool_id;
        let mut found = None;
        if let Some(sub) = &hints.sub {
            found = self.users.user_by_sub(pool, sub).await?;
        }
        if found.is_none()
            && let Some(email) = &hints.email
        {
            let mut by_email = self.users.users_by_email(pool, email).await?;
            if by_email.len() == 1 {
                found = by_email.pop();
            }
        }
        if found.is_none()
            && self.settings.create_users
            && let Some(email) = &hints.email
        {
            found = Some(self.users.create_user(pool, email).await?);
        }
        let Some(user) = found else {
            warn!(event_id = %event.id, customer_id = %customer_id, event_type = %event.event_type, "no user for this customer; event parked as unmapped");
            self.store
                .park_unmapped(customer_id.as_str(), &event.id, &event.event_type, now)
                .await?;
            return Ok(None);
        };
        let link = CustomerLink {
            sub: user.sub,
            customer_id: customer_id.clone(),
            pool_id: pool.clone(),
            username: user.username,
        };
        match self.store.link(&link).await {
            Ok(()) => {}
            Err(Error::ConditionalCheckFailed) => {
                // Linked concurrently: keep what exists. A user who already has another
                // customer is not relinked; the event waits as unmapped for a person to decide.
                if let Some(existing) = self.store.user_of_customer(customer_id).await? {
                    return Ok(Some(existing));
                }
                warn!(customer_id = %customer_id, sub = %link.sub, "user already linked to another customer; event parked as unmapped");
                self.store
                    .park_unmapped(customer_id.as_str(), &event.id, &event.event_type, now)
                    .await?;
                return Ok(None);
            }
            Err(other) => return Err(other),
        }
        self.directory
            .set_customer_id(&link.pool_id, &link.username, customer_id)
            .await?;
        info!(customer_id = %customer_id, sub = %link.sub, "customer linked to its user");
        Ok(Some(link))
    }

    /// An active subscription whose product names a template gets one stack of it, named after
    /// the subscription, recorded so its end tears it down. CloudFormation refuses a second
    /// stack of the same name, so concurrent events create it once.
    async fn provision_stack(&self, subscription: &SubscriptionState, now: i64) -> Result<()> {
        let Some(product) = &subscription.product_id else {
            return Ok(());
        };
        let Some(template_url) = self.billing.product_stack_template(product).await? else {
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
            .create(&stack_name, &template_url, &parameters)
            .await?;
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

#[derive(Debug, Clone, Default)]
struct LinkHints {
    sub: Option<String>,
    email: Option<Email>,
}

/// `billing-<subscription id>`, in the characters stack names allow.
pub fn stack_name_for(subscription_id: &str) -> String {
    let id: String = subscription_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("billing-{id}")
}

fn parse_customer(raw: &str) -> Result<CustomerId> {
    CustomerId::parse(raw).map_err(|e| Error::InvalidData {
        service: Upstream::Stripe,
        detail: e.to_string(),
    })
}

/// Since when the subscription has been past due: kept from the stored state while it stays
/// past due in the same billing period (the same unpaid renewal), else the event's time. A
/// past-due state stored for another period is a delinquency that a payment, whose event may
/// still be on its way, has ended: keeping its time would shorten the new grace period.
fn past_due_since(
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
