//! Ports: what the use cases need from the outside world, narrow traits shaped by use.
//! Adapters in `adapters/` implement them over the AWS SDK and async-stripe; `fakes` (feature
//! `test-util`) implements them in memory for handler tests.

mod api_keys;
mod billing;
mod catalog;
mod checkout;
mod deleted_customers;
mod delivery;
mod directory;
mod events;
mod groups;
mod leases;
mod links;
mod operator;
mod reconciler;
mod records;
mod rotations;
mod stacks;
mod sync_store;
mod usage;
mod users;

pub use api_keys::{ApiKey, ApiKeys, RetiredKey};
pub use billing::{Billing, CheckoutLineItem};
pub use catalog::{CatalogStore, StoredCatalog};
pub use checkout::{
    Checkout, CheckoutMode, CheckoutRecord, CheckoutRecords, CheckoutSessionInfo, CreatedSession,
    NewCheckoutSession, NewPortalSession, PortalFlow, PriceInfo,
};
pub use deleted_customers::DeletedCustomers;
pub use delivery::{
    Committed, CustomerView, DeliveryClaim, DeliveryCommit, DeliveryStore, ProvisionedState,
    RecordedAtOnce, SubscriptionWrite,
};
pub use directory::Directory;
pub use events::{EventClaim, EventLog, RecordedUnreadable, UnreadableEvent};
pub use groups::{AccountStore, CheckoutStore, Payments, SyncPorts, UserDirectory, WebhookStore};
pub use leases::ProvisioningLeases;
pub use links::CustomerLinks;
pub use operator::{
    AccountListing, ListedObject, ObjectsPage, OperatorStore, StripeList, UserQuery, UserRecord,
    UserRecords,
};
pub use reconciler::{
    DueReview, EVENTS_CURSOR, EventFeed, EventsPage, EventsQuery, ListedEvent, ReconcilerStore,
};
pub use records::{
    BillingRecord, CheckoutPaymentRecord, CheckoutSessionRecord, CustomerProfile,
    DelinquencyRecord, InvoicePaymentRecord, InvoiceRecord, LineItemRecord, PaymentIntentRecord,
    PaymentRecord, PriceRecord, ProductRecord, RecordKind, RecurringRecord, TaxRateRecord,
    TierRecord,
};
pub use rotations::KeyRotations;
pub use stacks::{StackRecord, StackState, StackStatus, Stacks};
pub use sync_store::{Freshness, SyncStore, UnmappedEvent, Versioned};
pub use usage::{MeterEvent, MeterEventAnswer, MeterInfo, Meters, UsageCounts, UsageStore};
pub use users::{CognitoUserRef, UserLookup};
