//! Ports that are used together, each group named once.

use super::{
    ApiKeys, Billing, CustomerLinks, Directory, EventLog, ProvisioningLeases, Stacks, SyncStore,
    UserLookup,
};

/// Everything the webhook keeps in the table: the event log, the links, the synced state and
/// the provisioning leases.
pub trait WebhookStore: SyncStore + EventLog + CustomerLinks + ProvisioningLeases {}

impl<T> WebhookStore for T where T: SyncStore + EventLog + CustomerLinks + ProvisioningLeases {}

/// The user pool as the webhook uses it: the users' attributes, and finding (or creating) the
/// user a payment is for.
pub trait UserDirectory: Directory + UserLookup {}

impl<T> UserDirectory for T where T: Directory + UserLookup {}

/// The ports the webhook's sync works with, named by one type: `SyncService<'_, P>` and the
/// webhook's `Deps<P>` are generic over this instead of over five ports one by one.
pub trait SyncPorts {
    type Store: WebhookStore;
    type Billing: Billing;
    type Users: UserDirectory;
    type Keys: ApiKeys;
    type Stacks: Stacks;
}
