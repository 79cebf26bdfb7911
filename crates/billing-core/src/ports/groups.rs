//! Ports that are used together, each group named once.

use super::{
    ApiKeys, Billing, Checkout, CheckoutRecords, CustomerLinks, DeletedCustomers, Directory,
    EventFeed, EventLog, ProvisioningLeases, ReconcilerStore, Stacks, SyncStore, UserLookup,
};

/// Everything the webhook and the reconciler keep in the table: the event log, the links, the
/// synced state, the provisioning leases, the tombstones of deleted customers and the
/// reconciler's cursor and reviews.
pub trait WebhookStore:
    SyncStore + EventLog + CustomerLinks + ProvisioningLeases + DeletedCustomers + ReconcilerStore
{
}

impl<T> WebhookStore for T where
    T: SyncStore
        + EventLog
        + CustomerLinks
        + ProvisioningLeases
        + DeletedCustomers
        + ReconcilerStore
{
}

/// The user pool as the webhook uses it: the users' attributes, and finding (or creating) the
/// user a payment is for.
pub trait UserDirectory: Directory + UserLookup {}

impl<T> UserDirectory for T where T: Directory + UserLookup {}

/// The ports the webhook's sync works with, named by one type: `SyncService<'_, P>` and the
/// webhook's `Deps<P>` are generic over this instead of over five ports one by one.
pub trait SyncPorts {
    type Store: WebhookStore;
    /// Stripe: customers and subscriptions, and its list of events for the reconciler.
    type Billing: Billing + EventFeed;
    type Users: UserDirectory;
    type Keys: ApiKeys;
    type Stacks: Stacks;
}

/// Stripe as the customer-facing use cases see it: customers, subscriptions, prices, Checkout
/// and the Billing Portal (`StripeBilling` in production).
pub trait Payments: Billing + Checkout {}

impl<T: Billing + Checkout> Payments for T {}

/// What checkout keeps (the DynamoDB table in production): the user <-> customer links, the
/// sessions it started, and the provisioning leases of the success return.
pub trait CheckoutStore: CustomerLinks + CheckoutRecords + ProvisioningLeases {}

impl<T: CustomerLinks + CheckoutRecords + ProvisioningLeases> CheckoutStore for T {}

/// What the account use cases keep (the DynamoDB table in production): the links, the checkout
/// records and everything else account deletion removes, under the provisioning lease.
pub trait AccountStore:
    CustomerLinks + CheckoutRecords + ProvisioningLeases + DeletedCustomers
{
}

impl<T> AccountStore for T where
    T: CustomerLinks + CheckoutRecords + ProvisioningLeases + DeletedCustomers
{
}
