//! Applying a verified Stripe event: one `apply` for the HTTPS webhook and EventBridge alike.
//!
//! Each event is claimed in the event log first (duplicates do nothing, concurrent deliveries do
//! the work once, a failed delivery is released for Stripe's retry). Object states are stored
//! only when their event is newer than the stored one; a tie is settled by reading the object
//! from Stripe. After any change to a customer's subscriptions the customer is reconciled from
//! all of their stored subscriptions, and the resources of ended subscriptions are torn down
//! through recorded states.
//!
//! By concern: `subscriptions` (subscription events, reconciling a customer), `linking` (the
//! user of a customer, checkout sessions and customers), `stacks` (provisioning and tearing down
//! stacks), `records` (what a billing page shows: invoices, payments, catalogue, profiles).

mod linking;
mod operator;
mod overview;
mod records;
mod reviews;
mod stacks;
mod subscriptions;

use crate::stack_templates::StackTemplatePolicy;
use tracing::{error, info, warn};

use crate::domain::{CustomerId, UserPoolId};
use crate::error::{Error, Result, Upstream};
use crate::plans::{AccessPolicy, PlanCatalog};
use crate::ports::{
    DeletedCustomers, DeliveryClaim, DeliveryStore, EventClaim, EventLog, Freshness,
    RecordedAtOnce, SyncPorts, Versioned,
};
use crate::provisioning::{Provisioner, lease_holder};
use crate::webhook::event::{EventObject, ReadEvent, StripeEvent, is_used, read_event};

pub use operator::{CustomerSync, Drift, HandLink, LinkResult, Writes};
pub use overview::{KeyLine, StackLine, SubscriptionLine, UserOverview};
pub use records::catalogue_record;
pub use reviews::ReviewOutcome;
pub use stacks::stack_name_for;

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub plans: PlanCatalog,
    pub policy: AccessPolicy,
    pub user_pool_id: UserPoolId,
    /// Create the Cognito user from the payer's email when a payment comes first.
    pub create_users: bool,
    /// Where products' stack templates may come from; anything else creates no stack.
    pub stack_templates: StackTemplatePolicy,
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
    /// A type we use that we could not read: recorded for inspection and acknowledged.
    Unreadable,
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
            Self::Unreadable => "unreadable",
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

/// The event being applied and the time it is applied at: what every step of it works from.
#[derive(Debug, Clone, Copy)]
struct Delivery<'e> {
    event: &'e StripeEvent,
    now: i64,
}

impl Delivery<'_> {
    /// A state as of this delivery's event.
    fn versioned<T>(&self, state: T) -> Versioned<T> {
        Versioned {
            event_created: self.event.created,
            event_id: self.event.id.clone(),
            state,
        }
    }
}

/// What became of a verified body (an HTTPS delivery whose signature verified, or an event
/// EventBridge delivered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// Not JSON: the caller's mistake (400), nothing to record.
    NotJson,
    /// An event of the other mode (test or live): refused (400).
    LivemodeMismatch { event_id: String },
    /// Handled: applied, or acknowledged without applying (`Ignored`, `Unreadable`, ...).
    Handled {
        event_id: String,
        event_type: String,
        outcome: Outcome,
    },
}

/// The one log line of an event that failed, wherever it came from (a delivery, EventBridge,
/// the reconciler): its id and type are what an operator looks it up by in Stripe.
fn log_failed(event_id: &str, event_type: &str, failure: &crate::error::Error) {
    error!(
        event_id,
        event_type,
        error_kind = failure.kind(),
        retryable = failure.is_retryable(),
        error = %crate::error::Chain(failure),
        "event failed; it is retried later"
    );
}

impl<P: SyncPorts> SyncService<'_, P> {
    /// Reads a verified body and applies it. A type we do not use is acknowledged before its
    /// object is read; one we use but cannot read is recorded and acknowledged: Stripe retries
    /// any non-2xx answer for three days, and the same body would fail every time. An `Err`
    /// means "retry later", and is logged here with the event's id and type.
    pub async fn receive(&self, raw: &[u8], livemode: bool, now: i64) -> Result<Receipt> {
        let read = match read_event(raw) {
            Ok(read) => read,
            Err(reason) => {
                warn!(%reason, "body refused: not JSON");
                return Ok(Receipt::NotJson);
            }
        };
        if read.livemode().is_some_and(|mode| mode != livemode) {
            let event_id = match &read {
                ReadEvent::Used(event) => event.id.clone(),
                ReadEvent::NotUsed(envelope) => envelope.id.clone(),
                ReadEvent::Unreadable(unreadable) => unreadable.event_id.clone(),
            };
            warn!(%event_id, "event refused: livemode differs from the deployment's");
            return Ok(Receipt::LivemodeMismatch { event_id });
        }
        let (event_id, event_type, outcome) = match read {
            ReadEvent::Used(event) => {
                let outcome = self
                    .apply(&event, now)
                    .await
                    .inspect_err(|failure| log_failed(&event.id, &event.event_type, failure))?;
                let StripeEvent { id, event_type, .. } = *event;
                (id, event_type, outcome)
            }
            ReadEvent::NotUsed(envelope) => (envelope.id, envelope.event_type, Outcome::Ignored),
            ReadEvent::Unreadable(unreadable) => {
                let shown_type = unreadable.event_type.as_deref().unwrap_or("-");
                self.store
                    .record_unreadable(&unreadable, now)
                    .await
                    .inspect_err(|failure| log_failed(&unreadable.event_id, shown_type, failure))?;
                error!(
                    event_id = %unreadable.event_id,
                    event_type = shown_type,
                    api_version = unreadable.api_version.as_deref().unwrap_or("-"),
                    field = %unreadable.field,
                    reason = %unreadable.reason,
                    "event unreadable: recorded for inspection and acknowledged"
                );
                let event_type = unreadable.event_type.unwrap_or_default();
                (unreadable.event_id, event_type, Outcome::Unreadable)
            }
        };
        Ok(Receipt::Handled {
            event_id,
            event_type,
            outcome,
        })
    }

    /// Applies the event once. An `Err` means "retry later": the event is released.
    ///
    /// An event whose whole effect is its records (invoices, payment intents, the catalogue)
    /// is written with its completion in one write when nothing stands in the way. Otherwise an
    /// event about a customer is claimed together with the check that the customer's
    /// account was not deleted, and a subscription event with the customer's provisioning
    /// lease too, in one write; a subscription event then commits its state, what it applied,
    /// the event's completion and the lease's release in one more.
    pub async fn apply(&self, event: &StripeEvent, now: i64) -> Result<Outcome> {
        if !is_used(&event.event_type) {
            return Ok(Outcome::Ignored);
        }
        let delivery = Delivery { event, now };
        if let Some((customer, records)) = records::records_of(event)
            && let Some(outcome) = self.record_at_once(delivery, customer, records).await?
        {
            return Ok(outcome);
        }
        let Some(customer) = event
            .object
            .customer_id()
            .and_then(|raw| CustomerId::parse(raw).ok())
        else {
            return self.apply_claimed_alone(event, now).await;
        };
        let subscription = match &event.object {
            EventObject::Subscription(subscription) => Some(subscription),
            _ => None,
        };
        let holder = subscription.map(|_| lease_holder()).transpose()?;
        let leased = match self
            .store
            .claim_delivery(&event.id, &customer, holder.as_deref(), now)
            .await?
        {
            DeliveryClaim::AlreadyDone => return Ok(Outcome::Duplicate),
            DeliveryClaim::InProgress => return Ok(Outcome::InProgress),
            // Rare: the deleted account's path, one call at a time.
            DeliveryClaim::CustomerDeleted => return self.apply_claimed_alone(event, now).await,
            DeliveryClaim::Claimed { leased } => leased,
        };
        let outcome = match (subscription, &holder) {
            (Some(subscription), Some(holder)) => {
                self.on_subscription(delivery, &customer, subscription.clone(), holder, leased)
                    .await
            }
            _ => match self.dispatch_alive(delivery).await {
                Ok(outcome) => self.store.complete(&event.id, now).await.map(|()| outcome),
                Err(failure) => Err(failure),
            },
        };
        if outcome.is_err() {
            self.release_event(&event.id).await;
        }
        outcome
    }

    /// Writes an event whose whole effect is its records, with its completion, in one write; a
    /// second one without the records that are not newer than the stored ones (a stale event,
    /// or one of the same second: its twin `invoice.paid` and `invoice.payment_succeeded`).
    /// `None` when the store declines (or the customer id does not read): the step-by-step
    /// path tells a duplicate, an event in progress and a deleted account apart.
    async fn record_at_once(
        &self,
        delivery: Delivery<'_>,
        customer: Option<&str>,
        records: Vec<crate::ports::BillingRecord>,
    ) -> Result<Option<Outcome>> {
        let customer = match customer.map(CustomerId::parse) {
            Some(Ok(customer)) => Some(customer),
            Some(Err(_)) => return Ok(None),
            None => None,
        };
        let mut records: Vec<_> = records
            .into_iter()
            .map(|record| delivery.versioned(record))
            .collect();
        // As `put_record` says of the last record (the invoice after its delinquency).
        let mut outcome = Outcome::Applied;
        for _ in 0..2 {
            let event = delivery.event;
            match self
                .store
                .record_at_once(&event.id, customer.as_ref(), &records, delivery.now)
                .await?
            {
                RecordedAtOnce::Written => return Ok(Some(outcome)),
                RecordedAtOnce::Declined => return Ok(None),
                RecordedAtOnce::NotNewer(freshness) => {
                    if freshness.last() == Some(&Freshness::Stale) {
                        outcome = Outcome::Stale;
                    }
                    let mut each = freshness.into_iter();
                    records.retain(|_| each.next() == Some(Freshness::Applied));
                }
            }
        }
        Ok(None)
    }

    /// The event claimed on its own, then dispatched (its customer's tombstone read apart).
    async fn apply_claimed_alone(&self, event: &StripeEvent, now: i64) -> Result<Outcome> {
        match self.store.claim(&event.id, now).await? {
            EventClaim::AlreadyDone => return Ok(Outcome::Duplicate),
            EventClaim::InProgress => return Ok(Outcome::InProgress),
            EventClaim::Claimed => {}
        }
        match self.dispatch(Delivery { event, now }).await {
            Ok(outcome) => {
                self.store.complete(&event.id, now).await?;
                Ok(outcome)
            }
            Err(failure) => {
                self.release_event(&event.id).await;
                Err(failure)
            }
        }
    }

    async fn release_event(&self, event_id: &str) {
        if let Err(release) = self.store.release(event_id).await {
            warn!(event_id = %event_id, error = %crate::error::Chain(&release), "could not release the event; its claim expires");
        }
    }

    async fn dispatch(&self, delivery: Delivery<'_>) -> Result<Outcome> {
        if let Some(customer) = delivery.event.object.customer_id()
            && self.is_deleted_customer(customer).await?
        {
            return self.on_deleted_customer(delivery).await;
        }
        self.dispatch_alive(delivery).await
    }

    /// Dispatches an event whose customer (if any) is known not to be deleted.
    async fn dispatch_alive(&self, delivery: Delivery<'_>) -> Result<Outcome> {
        match &delivery.event.object {
            EventObject::Subscription(subscription) => {
                // Only reached when the customer id does not read: refused here.
                let customer = parse_customer(&subscription.customer_id)?;
                self.on_subscription(
                    delivery,
                    &customer,
                    subscription.clone(),
                    &lease_holder()?,
                    false,
                )
                .await
            }
            EventObject::CheckoutSession(session) => {
                self.on_checkout_session(delivery, session).await
            }
            EventObject::Customer(customer) => self.on_customer(delivery, customer).await,
            EventObject::InvoicePayment(paid) => self.on_invoice_payment(delivery, paid).await,
            EventObject::Invoice(_)
            | EventObject::PaymentIntent(_)
            | EventObject::Product(_)
            | EventObject::Price(_)
            | EventObject::TaxRate(_) => self.put_records(delivery).await,
            EventObject::Other { .. } => Ok(Outcome::Ignored),
        }
    }

    async fn is_deleted_customer(&self, customer: &str) -> Result<bool> {
        match CustomerId::parse(customer) {
            Ok(customer) => self.store.is_deleted_customer(&customer).await,
            Err(_) => Ok(false),
        }
    }

    /// An event about the customer of a deleted account (most are caused by the deletion):
    /// nothing is kept; an ended subscription's stacks are still torn down.
    async fn on_deleted_customer(&self, delivery: Delivery<'_>) -> Result<Outcome> {
        if let EventObject::Subscription(subscription) = &delivery.event.object
            && subscription.status.is_ended()
        {
            let customer = CustomerId::parse(&subscription.customer_id).ok();
            self.deprovision(customer.as_ref(), &subscription.id, delivery.now)
                .await?;
        }
        info!(event_id = %delivery.event.id, event_type = %delivery.event.event_type, "event about a deleted account's customer; acknowledged");
        Ok(Outcome::Ignored)
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
}

fn parse_customer(raw: &str) -> Result<CustomerId> {
    CustomerId::parse(raw).map_err(|e| Error::InvalidData {
        service: Upstream::Stripe,
        detail: e.to_string(),
    })
}
