//! Ports that are used together, each group named once.

use super::{
    AccountListing, ApiKeys, Billing, CatalogStore, Checkout, CheckoutRecords, CustomerLinks,
    DeletedCustomers, DeliveryStore, Directory, EventFeed, EventLog, KeyRotations, Meters,
    OperatorStore, ProvisioningLeases, ReconcilerStore, Stacks, SyncStore, UsageCounts, UsageStore,
    UserLookup, UserRecords,
};

/// Everything the webhook and the reconciler keep in the table: the event log, the links, the
/// synced state, the provisioning leases, the tombstones of deleted customers, the
/// reconciler's cursor and reviews, what the operator's tools read, the usage reporter's
/// cursors, and a delivery's claim, read and commit in one round trip each.
pub trait WebhookStore:
    SyncStore
    + DeliveryStore
    + EventLog
    + CustomerLinks
    + ProvisioningLeases
    + DeletedCustomers
    + ReconcilerStore
    + OperatorStore
    + UsageStore
{
}

impl<T> WebhookStore for T where
    T: SyncStore
        + DeliveryStore
        + EventLog
        + CustomerLinks
        + ProvisioningLeases
        + DeletedCustomers
        + ReconcilerStore
        + OperatorStore
        + UsageStore
{
}

/// The user pool as the webhook uses it: the users' attributes, and finding (or creating) the
/// user a payment is for, and (for the operator's tools) a user's record.
pub trait UserDirectory: Directory + UserLookup + UserRecords {}

impl<T> UserDirectory for T where T: Directory + UserLookup + UserRecords {}

/// The ports the webhook's sync works with, named by one type: `SyncService<'_, P>` and the
/// webhook's `Deps<P>` are generic over this instead of over five ports one by one.
pub trait SyncPorts {
    type Store: WebhookStore;
    /// Stripe: customers and subscriptions, its list of events for the reconciler, the
    /// account's lists for an import, and the Billing Meters usage is reported to.
    type Billing: Billing + EventFeed + AccountListing + Meters;
    type Users: UserDirectory;
    /// API Gateway: the users' keys, and the calls counted on them.
    type Keys: ApiKeys + UsageCounts;
    type Stacks: Stacks;
}

/// Stripe as the customer-facing use cases see it: customers, subscriptions, prices, Checkout
/// and the Billing Portal (`StripeBilling` in production).
pub trait Payments: Billing + Checkout {}

impl<T: Billing + Checkout> Payments for T {}

/// What checkout keeps (the DynamoDB table in production): the user <-> customer links, the
/// sessions it started, the provisioning leases of the success return, and the catalogue it
/// shows on sale.
pub trait CheckoutStore:
    CustomerLinks + CheckoutRecords + ProvisioningLeases + CatalogStore
{
}

impl<T: CustomerLinks + CheckoutRecords + ProvisioningLeases + CatalogStore> CheckoutStore for T {}

/// What the account use cases keep (the DynamoDB table in production): the links, the checkout
/// records and everything else account deletion removes, under the provisioning lease.
pub trait AccountStore:
    CustomerLinks + CheckoutRecords + ProvisioningLeases + DeletedCustomers + KeyRotations
{
}

impl<T> AccountStore for T where
    T: CustomerLinks + CheckoutRecords + ProvisioningLeases + DeletedCustomers + KeyRotations
{
}
