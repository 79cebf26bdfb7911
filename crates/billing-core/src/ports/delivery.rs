//! One delivery of a customer's event in as few round trips as the store allows: the event's
//! claim with the customer's tombstone check (and lease), everything a decision reads about the
//! customer at once, and the delivery's writes with its completion (and the lease's release).

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::domain::{CustomerId, CustomerLink, UserSub};
use crate::error::Result;
use crate::plans::{PlanName, SubscriptionState};

use super::records::{BillingRecord, ProductRecord};
use super::sync_store::{Freshness, Versioned};

/// Whether this delivery may process an event about a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryClaim {
    /// The event is claimed; `leased` when the customer's provisioning lease was taken with it
    /// (false when another holder has it: wait for it, the event stays claimed).
    Claimed { leased: bool },
    /// Done before: answer 2xx and do nothing.
    AlreadyDone,
    /// Another delivery is working on it: answer non-2xx so Stripe retries later.
    InProgress,
    /// The customer's account was deleted: nothing was claimed (the caller takes the path
    /// for deleted customers).
    CustomerDeleted,
}

/// What the webhook last applied to a customer's user: the plan on Cognito and the key's usage
/// plan on API Gateway. While what a delivery computes equals it, Cognito and API Gateway are
/// not called. Removed before a change is applied and written once it is, so it never claims
/// more than was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedState {
    /// The user it was applied to (a customer relinked to another user is applied anew).
    pub sub: UserSub,
    pub plan: PlanName,
    /// The usage plan the user's key is on (`None`: no key, or detached and disabled).
    pub usage_plan_id: Option<String>,
    pub api_key_id: Option<String>,
    /// The subscriptions whose stack is known recorded active: their renewals read no stack.
    /// Forgotten (with the rest) before any of the customer's stacks is torn down.
    pub stacks: Vec<String>,
}

/// Everything kept in the customer's partition that a delivery decides on, read at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerView {
    pub link: Option<CustomerLink>,
    pub subscriptions: Vec<Versioned<SubscriptionState>>,
    pub provisioned: Option<ProvisionedState>,
}

/// A stored subscription's write as part of a delivery's commit.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionWrite<'a> {
    pub subscription: &'a Versioned<SubscriptionState>,
    /// Written over a state of the same `created` too (a tie settled from Stripe).
    pub allow_tie: bool,
    pub review_at: Option<i64>,
}

/// What a delivery writes at its end, at once.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryCommit<'a> {
    pub event_id: &'a str,
    pub customer: &'a CustomerId,
    /// Released when still this holder's.
    pub lease_holder: Option<&'a str>,
    /// Written only if newer than the stored state; when it is not, nothing is written.
    pub subscription: Option<SubscriptionWrite<'a>>,
    pub provisioned: Option<&'a ProvisionedState>,
    pub now: i64,
}

/// How a commit went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// Everything written, the event done, the lease released.
    Done,
    /// A newer state of the subscription was stored meanwhile (by a writer that does not
    /// hold the lease): nothing was written.
    SubscriptionNotNewer,
}

/// How writing an event's records at once went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedAtOnce {
    /// Every record written, the event done.
    Written,
    /// Nothing written: some records are not newer than the stored ones. Each record's
    /// freshness, in order (`Applied` for those that are newer).
    NotNewer(Vec<Freshness>),
    /// Nothing written: the event is done or claimed by another delivery, the customer's
    /// account is deleted, or another write met these items; the step-by-step path tells which.
    Declined,
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// For an event whose whole effect is `records`: writes each (newer than the stored state
    /// only) and the event done (unless claimed or done before), checking that `customer`, when
    /// given, has no tombstone, in one write; all or nothing.
    async fn record_at_once(
        &self,
        event_id: &str,
        customer: Option<&CustomerId>,
        records: &[Versioned<BillingRecord>],
        now: i64,
    ) -> Result<RecordedAtOnce>;

    /// Claims the event (as `EventLog::claim`) if the customer has no tombstone, and with
    /// `lease_holder`, takes the customer's provisioning lease too, in one write.
    async fn claim_delivery(
        &self,
        event_id: &str,
        customer: &CustomerId,
        lease_holder: Option<&str>,
        now: i64,
    ) -> Result<DeliveryClaim>;

    /// The customer's link, stored subscriptions and provisioned state, in one read.
    async fn customer_view(&self, customer: &CustomerId) -> Result<CustomerView>;

    /// The stored catalogue's records of these products (absent ones are left out).
    async fn products(&self, ids: &[&str]) -> Result<BTreeMap<String, ProductRecord>>;

    /// Writes the subscription (if newer), the provisioned state, the event done and the
    /// lease's release, all or nothing.
    async fn commit_delivery(&self, commit: &DeliveryCommit<'_>) -> Result<Committed>;

    /// Writes what was applied to the customer's user.
    async fn put_provisioned(
        &self,
        customer: &CustomerId,
        provisioned: &ProvisionedState,
    ) -> Result<()>;
}
