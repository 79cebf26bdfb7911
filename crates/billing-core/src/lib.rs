//! Shared core of the cognito-stripe-billing functions: domain types and decisions, ports
//! (traits) and their adapters, configuration, errors and telemetry.

pub mod adapters;
pub mod catalog;
pub mod checkout;
pub mod config;
pub mod domain;
pub mod error;
#[cfg(any(test, feature = "test-util"))]
pub mod fakes;
pub mod http;
pub mod ids;
pub mod import;
pub mod inputs;
pub mod onboarding;
pub mod plans;
pub mod portal;
pub mod ports;
pub mod provisioning;
pub mod reconciler;
pub mod stack_templates;
#[cfg(any(test, feature = "test-util"))]
pub mod store_contract;
pub mod table;
pub mod telemetry;
pub mod usage;
pub mod webhook;
pub mod xray;

pub use error::{Error, Result};
