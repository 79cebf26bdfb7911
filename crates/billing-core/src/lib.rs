//! Shared core of the cognito-stripe-billing functions: domain types and decisions, ports
//! (traits) and their adapters, configuration, errors and telemetry.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod error;
#[cfg(feature = "test-util")]
pub mod fakes;
pub mod onboarding;
pub mod ports;
pub mod table;
pub mod telemetry;

pub use error::{Error, Result};
