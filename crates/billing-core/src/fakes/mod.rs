//! In-memory fakes of the ports, for handler tests (feature `test-util`).
//!
//! Each fake counts its calls and can be switched to fail with a retryable upstream error, so a
//! test can break Stripe, DynamoDB or Cognito on purpose.

use std::sync::Mutex;

use crate::error::{Error, Upstream};

mod api_keys;
mod billing;
mod catalog;
mod checkout;
mod checkout_records;
mod deleted_customers;
mod delivery;
mod directory;
mod events;
mod leases;
mod links;
#[cfg(feature = "test-util")]
pub mod logs;
mod operator;
mod reconciler;
mod rotations;
mod stacks;
mod store;
mod stripe;
mod sync_store;
mod usage;
mod users;

pub use api_keys::{FakeApiKeys, FakeKey};
pub use directory::FakeDirectory;
pub use stacks::FakeStacks;
pub use store::InMemoryStore;
pub use stripe::{FakeCustomer, FakeStripe};
pub use usage::{FakeMeters, FakeUsage};

/// The webhook's ports, every one in memory: `SyncService<'_, FakePorts>`.
#[derive(Debug)]
pub enum FakePorts {}

impl crate::ports::SyncPorts for FakePorts {
    type Store = InMemoryStore;
    type Billing = FakeStripe;
    type Users = FakeDirectory;
    type Keys = FakeApiKeys;
    type Stacks = FakeStacks;
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn outage(service: Upstream, operation: &'static str) -> Error {
    Error::upstream(service, operation, true, "injected outage")
}
