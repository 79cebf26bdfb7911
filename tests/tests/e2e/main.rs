//! The end-to-end tests against the local emulators and the functions under `cargo lambda
//! watch` (all `#[ignore]`d: `cargo test --workspace -- --ignored --test-threads=1` with
//! `local/up.sh` running), in one binary: each file here was a test binary of its own, and
//! every one of them linked the AWS SDK.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod checkout_lifecycle;
mod dynamo_store;
mod hardening;
mod post_confirmation;
mod reconciler;
mod usage;
mod webhook_calls;
mod webhook_lifecycle;
