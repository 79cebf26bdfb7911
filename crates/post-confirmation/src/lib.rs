//! Cognito post-confirmation trigger: creates the user's Stripe customer once and links it.
//! `main.rs` wires the AWS and Stripe clients into `Deps`.

pub mod config;
pub mod handler;

use std::time::Duration;

use billing_core::onboarding::OnboardingService;
use billing_core::ports::{Billing, CustomerLinks, Directory};

pub use handler::handle;

/// Everything the handler needs, built once per cold start.
#[derive(Debug)]
pub struct Deps<L, B, D> {
    /// DynamoDB: the user <-> customer links.
    pub links: L,
    /// Stripe: customers.
    pub billing: B,
    /// Cognito: `custom:stripe_customer_id`.
    pub directory: D,
    /// The time onboarding may take before the trigger gives up (Cognito waits 5 s).
    pub budget: Duration,
}

impl<L: CustomerLinks, B: Billing, D: Directory> Deps<L, B, D> {
    pub fn onboarding(&self) -> OnboardingService<'_, L, B, D> {
        OnboardingService {
            links: &self.links,
            billing: &self.billing,
            directory: &self.directory,
        }
    }
}
