//! The Stripe webhook: an HTTPS function (`POST /stripe/webhook`, signed deliveries) and an
//! EventBridge function (Stripe's event destination, unsigned). Both hand the event to one
//! `apply`.

pub mod config;
pub mod eventbridge;
pub mod handler;

use billing_core::plans::PlanCatalog;
use billing_core::ports::{
    ApiKeys, Billing, CustomerLinks, Directory, EventLog, ProvisioningLeases, Stacks, SyncStore,
    UserLookup,
};
use billing_core::webhook::StripeEvent;
use billing_core::webhook::sync::{Outcome, SyncService, SyncSettings};
use secrecy::SecretString;

#[derive(Debug)]
pub struct Deps<S, B, D, K, C> {
    /// DynamoDB: event log, links, subscriptions, documents, stacks.
    pub store: S,
    pub stripe: B,
    /// Cognito: attributes, and users found or created for payments made first.
    pub directory: D,
    pub keys: K,
    pub stacks: C,
    pub settings: SyncSettings,
    /// Every secret currently accepted (rotation); empty for EventBridge.
    pub webhook_secrets: Vec<SecretString>,
    pub livemode: bool,
}

impl<S, B, D, K, C> Deps<S, B, D, K, C>
where
    S: SyncStore + EventLog + CustomerLinks + ProvisioningLeases,
    B: Billing,
    D: Directory + UserLookup,
    K: ApiKeys,
    C: Stacks,
{
    pub fn plans(&self) -> &PlanCatalog {
        &self.settings.plans
    }

    pub fn sync(&self) -> SyncService<'_, S, B, D, K, C, D> {
        SyncService {
            store: &self.store,
            billing: &self.stripe,
            directory: &self.directory,
            keys: &self.keys,
            stacks: &self.stacks,
            users: &self.directory,
            settings: &self.settings,
        }
    }

    pub async fn apply(&self, event: &StripeEvent, now: i64) -> billing_core::Result<Outcome> {
        self.sync().apply(event, now).await
    }
}
