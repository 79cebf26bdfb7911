//! billing-core's integration tests, in one binary: each file here was a test binary of its
//! own, and every one of them linked the AWS SDK and compiled the shared helpers again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod account_deletion;
mod operator;
mod reconciler;
mod sync_calls;
mod sync_linking;
mod sync_ordering;
mod sync_records;
mod sync_stacks;
mod sync_subscriptions;
mod usage;
