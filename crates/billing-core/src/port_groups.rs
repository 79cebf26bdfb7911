//! Groups of ports that one adapter serves in production, each named once, so a service or a
//! handler says what it needs in one word instead of repeating the same bounds.

use crate::ports::{Billing, Checkout, CheckoutRecords, CustomerLinks, ProvisioningLeases};

/// Stripe as the customer-facing use cases see it: customers, subscriptions, prices, Checkout
/// and the Billing Portal (`StripeBilling` in production).
pub trait Payments: Billing + Checkout {}

impl<T: Billing + Checkout> Payments for T {}

/// What checkout keeps (the DynamoDB table in production): the user <-> customer links, the
/// sessions it started, and the provisioning leases of the success return.
pub trait CheckoutStore: CustomerLinks + CheckoutRecords + ProvisioningLeases {}

impl<T: CustomerLinks + CheckoutRecords + ProvisioningLeases> CheckoutStore for T {}

/// What the account use cases keep (the DynamoDB table in production): the links, and the
/// checkout records that account deletion removes.
pub trait AccountStore: CustomerLinks + CheckoutRecords {}

impl<T: CustomerLinks + CheckoutRecords> AccountStore for T {}
