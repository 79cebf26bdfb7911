//! Applying a verified Stripe event: one `apply` for the HTTPS webhook and EventBridge alike.
//!
//! Each event is claimed in the event log first (duplicates do nothing, concurrent deliveries do
//! the work once, a failed delivery is released for Stripe's retry). Object states are stored
//! only when their event is newer than the stored one; a tie is settled by reading the object
//! from Stripe. After any change to a customer's subscriptions the customer is reconciled from
//! all of their stored subscriptions, and the resources of ended subscriptions are torn down
//! through recorded states.

use tracing::{info, warn};

use crate::domain::{CustomerId, CustomerLink, Email, UserPoolId};
use crate::error::{Error, Result, Upstream};
use crate::plans::{AccessPolicy, PlanCatalog, SubscriptionState, SubscriptionStatus};
use crate::ports::{
    Billing, BillingRecord, CustomerLinks, DelinquencyRecord, Directory, EventClaim, EventLog,
    Freshness, PaymentRecord, StackRecord, StackState, StackStatus, Stacks, SyncPorts, SyncStore,
    UserLookup, Versioned,
};
use crate::ports::{
    CheckoutPaymentRecord, CheckoutSessionRecord, CustomerProfile, InvoiceRecord, LineItemRecord,
    PaymentIntentRecord, PriceRecord, ProductRecord, RecurringRecord, TaxRateRecord, TierRecord,
};
use crate::provisioning::{Provisioner, under_lease};
use crate::webhook::event::{
    CheckoutLineItem, CheckoutSessionObject, CustomerObject, EventObject, InvoiceObject,
    PaymentIntentObject, PriceObject, ProductObject, StripeEvent, TaxRateObject,
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

pub struct SyncService<'a, P: SyncPorts> {
    pub store: &'a P::Store,
    pub billing: &'a P::Billing,
    /// The user pool: attributes, and users found or created for payments made first.
    pub users: &'a P::Users,
    pub keys: &'a P::Keys,
    pub stacks: &'a P::Stacks,
    pub settings: &'a SyncSettings,
}

impl<P: SyncPorts> std::fmt::Debug for SyncService<'_, P> {
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

impl<P: SyncPorts> SyncService<'_, P> {
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

    fn provisioner(&self) -> Provisioner<'_, P::Billing, P::Users, P::Keys> {
        Provisioner {
            billing: self.billing,
            directory: self.users,
            keys: self.keys,
            plans: &self.settings.plans,
            policy: &self.settings.policy,
        }
    }

    async fn put_record(&self, event: &StripeEvent, record: BillingRecord) -> Result<Outcome> {
        let versioned = Versioned {
            event_created: event.created,
            event_id: event.id.clone(),
            state: record,
        };
        Ok(match self.store.put_record(&versioned).await? {
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
        self.put_record(
            event,
            BillingRecord::CheckoutSession {
                customer_id: customer.clone(),
                session_id: session.id.clone(),
                session: checkout_session_record(session, items),
            },
        )
        .await?;
        if session.mode.as_deref() == Some("payment")
            && let Some(payment_intent_id) = &session.payment_intent_id
        {
            self.put_record(
                event,
                BillingRecord::Payment {
                    customer_id: customer.clone(),
                    payment_intent_id: payment_intent_id.clone(),
                    payment: PaymentRecord::Checkout(checkout_payment_record(session)),
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
        self.put_record(
            event,
            BillingRecord::CustomerProfile {
                customer_id: customer.id.clone(),
                profile: customer_profile(customer),
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
            self.put_record(
                event,
                BillingRecord::Delinquency {
                    customer_id: customer.clone(),
                    delinquency: DelinquencyRecord {
                        delinquent: failed,
                        invoice: invoice.id.clone(),
                    },
                },
            )
            .await?;
        }
        self.put_record(
            event,
            BillingRecord::Invoice {
                customer_id: customer.clone(),
                invoice_id: invoice.id.clone(),
                invoice: invoice_record(invoice, &event.event_type),
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
        self.put_record(
            event,
            BillingRecord::Payment {
                customer_id: customer.clone(),
                payment_intent_id: payment.id.clone(),
                payment: PaymentRecord::Intent(payment_intent_record(payment)),
            },
        )
        .await
    }

    async fn on_product(&self, event: &StripeEvent, product: &ProductObject) -> Result<Outcome> {
        self.put_record(
            event,
            BillingRecord::Product {
                product_id: product.id.clone(),
                product: product_record(product),
            },
        )
        .await
    }

    async fn on_price(&self, event: &StripeEvent, price: &PriceObject) -> Result<Outcome> {
        self.put_record(
            event,
            BillingRecord::Price {
                price_id: price.id.clone(),
                price: price_record(price),
            },
        )
        .await
    }

    async fn on_tax_rate(&self, event: &StripeEvent, rate: &TaxRateObject) -> Result<Outcome> {
        self.put_record(
            event,
            BillingRecord::TaxRate {
                tax_rate_id: rate.id.clone(),
                tax_rate: tax_rate_record(rate),
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
        self.users
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

fn checkout_session_record(
    session: &CheckoutSessionObject,
    items: &[CheckoutLineItem],
) -> CheckoutSessionRecord {
    CheckoutSessionRecord {
        amount_total: session.amount_total,
        currency: session.currency.clone(),
        line_items: items
            .iter()
            .map(|item| LineItemRecord {
                amount_total: item.amount_total,
                currency: item.currency.clone(),
                price: item.price_id.clone(),
                product: item.product_id.clone(),
                quantity: item.quantity,
            })
            .collect(),
        mode: session.mode.clone(),
        payment_intent: session.payment_intent_id.clone(),
        payment_status: session.payment_status.clone(),
        status: session.status.clone(),
        subscription: session.subscription_id.clone(),
    }
}

fn checkout_payment_record(session: &CheckoutSessionObject) -> CheckoutPaymentRecord {
    CheckoutPaymentRecord {
        amount: session.amount_total,
        checkout_session: session.id.clone(),
        currency: session.currency.clone(),
        status: session.payment_status.clone(),
    }
}

fn customer_profile(customer: &CustomerObject) -> CustomerProfile {
    CustomerProfile {
        deleted: customer.deleted,
        delinquent: false,
        metadata: customer.metadata.clone(),
        name: customer.name.clone(),
    }
}

fn invoice_record(invoice: &InvoiceObject, event_type: &str) -> InvoiceRecord {
    InvoiceRecord {
        amount_due: invoice.amount_due,
        amount_paid: invoice.amount_paid,
        amount_remaining: invoice.amount_remaining,
        attempt_count: invoice.attempt_count,
        billing_reason: invoice.billing_reason.clone(),
        created: invoice.created,
        currency: invoice.currency.clone(),
        hosted_invoice_url: invoice.hosted_invoice_url.clone(),
        invoice_pdf: invoice.invoice_pdf.clone(),
        last_event: event_type.to_owned(),
        next_payment_attempt: invoice.next_payment_attempt,
        number: invoice.number.clone(),
        period_end: invoice.period_end,
        period_start: invoice.period_start,
        status: invoice.status.clone(),
        subscription: invoice.subscription_id.clone(),
    }
}

fn payment_intent_record(payment: &PaymentIntentObject) -> PaymentIntentRecord {
    PaymentIntentRecord {
        amount: payment.amount,
        amount_received: payment.amount_received,
        currency: payment.currency.clone(),
        invoice: payment.invoice_id.clone(),
        metadata: payment.metadata.clone(),
        status: payment.status.clone(),
    }
}

fn product_record(product: &ProductObject) -> ProductRecord {
    ProductRecord {
        active: product.active && !product.deleted,
        metadata: product.metadata.clone(),
        name: product.name.clone(),
        plan: product.plan(),
    }
}

fn price_record(price: &PriceObject) -> PriceRecord {
    PriceRecord {
        active: price.active && !price.deleted,
        billing_scheme: price.billing_scheme.clone(),
        currency: price.currency.clone(),
        lookup_key: price.lookup_key.clone(),
        metadata: price.metadata.clone(),
        nickname: price.nickname.clone(),
        product: price.product_id.clone(),
        recurring: price.recurring.as_ref().map(|recurring| RecurringRecord {
            interval: recurring.interval.clone(),
            interval_count: recurring.interval_count,
            trial_period_days: recurring.trial_period_days,
        }),
        tiers: price
            .tiers
            .iter()
            .map(|tier| TierRecord {
                flat_amount: tier.flat_amount,
                unit_amount: tier.unit_amount,
                up_to: tier.up_to,
            })
            .collect(),
        tiers_mode: price.tiers_mode.clone(),
        price_type: price.price_type.clone(),
        unit_amount: price.unit_amount,
    }
}

fn tax_rate_record(rate: &TaxRateObject) -> TaxRateRecord {
    TaxRateRecord {
        active: rate.active,
        country: rate.country.clone(),
        display_name: rate.display_name.clone(),
        inclusive: rate.inclusive,
        jurisdiction: rate.jurisdiction.clone(),
        metadata: rate.metadata.clone(),
        percentage: rate.percentage,
    }
}

#[cfg(test)]
mod record_tests {
    //! The stored documents must not change: each record serializes byte for byte to the JSON
    //! the webhook wrote before records had types (the `json!` bodies below).
    #![allow(clippy::unwrap_used)]

    use serde_json::{Value, json};

    use super::*;
    use crate::webhook::event::{PriceRecurring, PriceTier};

    fn same(record: &impl serde::Serialize, legacy: Value) {
        assert_eq!(serde_json::to_string(record).unwrap(), legacy.to_string());
    }

    fn metadata() -> crate::webhook::Metadata {
        [
            ("plan".to_owned(), "pro".to_owned()),
            ("k".to_owned(), "v".to_owned()),
        ]
        .into()
    }

    #[test]
    fn catalogue_records_should_serialize_as_before() {
        let product = ProductObject {
            id: "prod_1".into(),
            name: Some("Pro".into()),
            active: true,
            metadata: metadata(),
            deleted: false,
        };
        same(
            &product_record(&product),
            json!({"name": product.name, "active": product.active && !product.deleted, "metadata": product.metadata, "plan": product.plan().map(|p| p.to_string())}),
        );
        let price = PriceObject {
            id: "price_1".into(),
            product_id: Some("prod_1".into()),
            product_metadata: None,
            active: true,
            currency: Some("usd".into()),
            unit_amount: Some(1000),
            price_type: Some("recurring".into()),
            recurring: Some(PriceRecurring {
                interval: Some("month".into()),
                interval_count: Some(1),
                trial_period_days: Some(14),
            }),
            lookup_key: Some("pro_monthly".into()),
            nickname: Some("Pro monthly".into()),
            billing_scheme: Some("tiered".into()),
            tiers_mode: Some("graduated".into()),
            tiers: vec![
                PriceTier {
                    up_to: Some(10),
                    unit_amount: Some(100),
                    flat_amount: None,
                },
                PriceTier {
                    up_to: None,
                    unit_amount: Some(50),
                    flat_amount: Some(7),
                },
            ],
            metadata: metadata(),
            deleted: false,
        };
        let legacy_price = |price: &PriceObject| {
            let tiers: Vec<_> = price
                .tiers
                .iter()
                .map(|tier| json!({"up_to": tier.up_to, "unit_amount": tier.unit_amount, "flat_amount": tier.flat_amount}))
                .collect();
            json!({
                "product": price.product_id, "active": price.active && !price.deleted, "currency": price.currency,
                "unit_amount": price.unit_amount, "type": price.price_type, "lookup_key": price.lookup_key,
                "nickname": price.nickname, "billing_scheme": price.billing_scheme, "tiers_mode": price.tiers_mode,
                "tiers": tiers, "metadata": price.metadata,
                "recurring": price.recurring.as_ref().map(|r| json!({"interval": r.interval, "interval_count": r.interval_count, "trial_period_days": r.trial_period_days})),
            })
        };
        same(&price_record(&price), legacy_price(&price));
        let deleted = PriceObject {
            recurring: None,
            tiers: Vec::new(),
            deleted: true,
            ..price
        };
        same(&price_record(&deleted), legacy_price(&deleted));
        let rate = TaxRateObject {
            id: "txr_1".into(),
            display_name: Some("VAT".into()),
            percentage: Some(20.5),
            inclusive: false,
            active: true,
            jurisdiction: Some("DE".into()),
            country: None,
            metadata: metadata(),
        };
        same(
            &tax_rate_record(&rate),
            json!({"display_name": rate.display_name, "percentage": rate.percentage, "inclusive": rate.inclusive, "active": rate.active, "jurisdiction": rate.jurisdiction, "country": rate.country, "metadata": rate.metadata}),
        );
    }

    #[test]
    fn customer_records_should_serialize_as_before() {
        let customer = CustomerObject {
            id: "cus_1".into(),
            email: None,
            name: Some("Alice".into()),
            metadata: metadata(),
            deleted: true,
            created: Some(1),
        };
        same(
            &customer_profile(&customer),
            json!({"name": customer.name, "metadata": customer.metadata, "deleted": customer.deleted, "delinquent": false}),
        );
        same(
            &DelinquencyRecord {
                delinquent: true,
                invoice: "in_1".into(),
            },
            json!({"delinquent": true, "invoice": "in_1"}),
        );
        let invoice = InvoiceObject {
            id: "in_1".into(),
            customer_id: Some("cus_1".into()),
            subscription_id: Some("sub_1".into()),
            status: Some("open".into()),
            number: Some("A-1".into()),
            currency: Some("usd".into()),
            amount_due: Some(1000),
            amount_paid: Some(0),
            amount_remaining: Some(1000),
            hosted_invoice_url: Some("https://invoice.stripe.com/i/x".into()),
            invoice_pdf: None,
            period_start: Some(10),
            period_end: Some(20),
            created: Some(9),
            attempt_count: Some(2),
            next_payment_attempt: Some(30),
            billing_reason: Some("subscription_cycle".into()),
        };
        let event_type = "invoice.payment_failed";
        same(
            &invoice_record(&invoice, event_type),
            json!({
                "number": invoice.number, "status": invoice.status, "subscription": invoice.subscription_id,
                "currency": invoice.currency, "amount_due": invoice.amount_due, "amount_paid": invoice.amount_paid,
                "amount_remaining": invoice.amount_remaining, "hosted_invoice_url": invoice.hosted_invoice_url,
                "invoice_pdf": invoice.invoice_pdf, "period_start": invoice.period_start, "period_end": invoice.period_end,
                "created": invoice.created, "attempt_count": invoice.attempt_count,
                "next_payment_attempt": invoice.next_payment_attempt, "billing_reason": invoice.billing_reason,
                "last_event": event_type,
            }),
        );
        let payment = PaymentIntentObject {
            id: "pi_1".into(),
            customer_id: Some("cus_1".into()),
            amount: Some(1000),
            amount_received: Some(1000),
            currency: Some("usd".into()),
            status: Some("succeeded".into()),
            metadata: metadata(),
            created: Some(1),
            invoice_id: None,
        };
        same(
            &PaymentRecord::Intent(payment_intent_record(&payment)),
            json!({"amount": payment.amount, "amount_received": payment.amount_received, "currency": payment.currency, "status": payment.status, "invoice": payment.invoice_id, "metadata": payment.metadata}),
        );
    }

    #[test]
    fn checkout_records_should_serialize_as_before() {
        let session = CheckoutSessionObject {
            id: "cs_1".into(),
            mode: Some("payment".into()),
            status: Some("complete".into()),
            payment_status: Some("paid".into()),
            customer_id: Some("cus_1".into()),
            customer_email: None,
            client_reference_id: None,
            metadata: metadata(),
            subscription_id: None,
            payment_intent_id: Some("pi_1".into()),
            amount_total: Some(1000),
            amount_subtotal: Some(900),
            currency: Some("usd".into()),
            created: Some(1),
            line_items: None,
        };
        let items = vec![CheckoutLineItem {
            price_id: Some("price_1".into()),
            product_id: None,
            quantity: Some(3),
            amount_total: Some(1000),
            currency: Some("usd".into()),
        }];
        let line_items: Vec<_> = items
            .iter()
            .map(|item| json!({"price": item.price_id, "product": item.product_id, "quantity": item.quantity, "amount_total": item.amount_total, "currency": item.currency}))
            .collect();
        same(
            &checkout_session_record(&session, &items),
            json!({
                "mode": session.mode, "status": session.status,
                "payment_status": session.payment_status, "subscription": session.subscription_id,
                "payment_intent": session.payment_intent_id, "amount_total": session.amount_total,
                "currency": session.currency, "line_items": line_items,
            }),
        );
        same(
            &PaymentRecord::Checkout(checkout_payment_record(&session)),
            json!({"amount": session.amount_total, "currency": session.currency, "status": session.payment_status, "checkout_session": session.id}),
        );
    }

    #[test]
    fn a_stored_payment_should_read_back_as_the_kind_it_was_written_as() {
        let checkout = PaymentRecord::Checkout(CheckoutPaymentRecord {
            amount: Some(1000),
            checkout_session: "cs_1".into(),
            currency: None,
            status: Some("paid".into()),
        });
        let intent = PaymentRecord::Intent(PaymentIntentRecord {
            amount: Some(1000),
            amount_received: None,
            currency: Some("usd".into()),
            invoice: None,
            metadata: Default::default(),
            status: Some("succeeded".into()),
        });
        for payment in [checkout, intent] {
            let stored = serde_json::to_string(&payment).unwrap();
            assert_eq!(
                serde_json::from_str::<PaymentRecord>(&stored).unwrap(),
                payment
            );
        }
    }
}
