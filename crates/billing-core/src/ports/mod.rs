//! Ports: what the use cases need from the outside world, narrow traits shaped by use.
//! Adapters in `adapters/` implement them over the AWS SDK and async-stripe; `fakes` (feature
//! `test-util`) implements them in memory for handler tests.

mod api_keys;
mod billing;
mod checkout;
mod directory;
mod events;
mod leases;
mod links;
mod stacks;
mod sync_store;
mod users;

pub use api_keys::{ApiKey, ApiKeys};
pub use billing::Billing;
pub use checkout::{
    Checkout, CheckoutMode, CheckoutRecord, CheckoutRecords, CheckoutSessionInfo, CreatedSession,
    NewCheckoutSession, NewPortalSession, PortalFlow, PriceInfo,
};
pub use directory::Directory;
pub use events::{EventClaim, EventLog};
pub use leases::ProvisioningLeases;
pub use links::CustomerLinks;
pub use stacks::{StackRecord, StackState, StackStatus, Stacks};
pub use sync_store::{Document, Freshness, SyncStore, Versioned};
pub use users::{CognitoUserRef, UserLookup};
