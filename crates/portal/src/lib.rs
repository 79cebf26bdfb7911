//! The Billing Portal and the caller's own account behind Cognito: `POST /portal`, `GET /me`,
//! `DELETE /me`. `main.rs` wires the AWS and Stripe clients into `Deps`.

pub mod config;
pub mod handler;

use billing_core::config::AccountSettings;
use billing_core::portal::PortalService;
use billing_core::ports::{AccountStore, Meters, Payments, UsageCounts, UsageStore};
use billing_core::ports::{ApiKeys, Directory};

pub use handler::handle;

/// Everything the handler needs, built once per cold start.
#[derive(Debug)]
pub struct Deps<S, P, D, K> {
    /// DynamoDB: links and checkout records.
    pub store: S,
    /// Stripe: customers, subscriptions, the Billing Portal.
    pub stripe: P,
    pub directory: D,
    pub keys: K,
    pub account: AccountSettings,
}

impl<S, P, D, K> Deps<S, P, D, K>
where
    S: AccountStore + UsageStore,
    P: Payments + Meters,
    D: Directory,
    K: ApiKeys + UsageCounts,
{
    pub fn service(&self) -> PortalService<'_, S, P, D, K> {
        PortalService {
            store: &self.store,
            payments: &self.stripe,
            directory: &self.directory,
            keys: &self.keys,
            plans: &self.account.plans,
            policy: &self.account.policy,
            site_origin: &self.account.site_origin,
        }
    }
}
