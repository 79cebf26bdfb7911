//! Stripe Checkout behind Cognito: `POST /checkout` and the success return
//! `GET /checkout/complete`. `main.rs` wires the AWS and Stripe clients into `Deps`.

pub mod config;
pub mod handler;

use billing_core::checkout::{CheckoutService, CheckoutSettings};
use billing_core::domain::UserPoolId;
use billing_core::plans::{AccessPolicy, PlanCatalog};
use billing_core::ports::{ApiKeys, Directory};
use billing_core::ports::{CheckoutStore, Payments};

pub use handler::handle;

/// Everything the handler needs, built once per cold start.
#[derive(Debug)]
pub struct Deps<S, P, D, K> {
    /// DynamoDB: links, checkout records, provisioning leases.
    pub store: S,
    /// Stripe: customers, subscriptions, prices, sessions.
    pub stripe: P,
    pub directory: D,
    pub keys: K,
    pub plans: PlanCatalog,
    pub policy: AccessPolicy,
    pub settings: CheckoutSettings,
    /// Where no token says which pool (the success return).
    pub user_pool_id: UserPoolId,
}

impl<S, P, D, K> Deps<S, P, D, K>
where
    S: CheckoutStore,
    P: Payments,
    D: Directory,
    K: ApiKeys,
{
    pub fn service(&self) -> CheckoutService<'_, S, P, D, K> {
        CheckoutService {
            store: &self.store,
            payments: &self.stripe,
            directory: &self.directory,
            keys: &self.keys,
            plans: &self.plans,
            policy: &self.policy,
            settings: &self.settings,
        }
    }
}
