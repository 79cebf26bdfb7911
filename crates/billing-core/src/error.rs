//! One error type for the ports and their adapters.
//!
//! It keeps the source, says which upstream failed, whether a retry may succeed, and treats a
//! failed DynamoDB condition as its own variant because callers branch on it.

use std::fmt;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The upstream service a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    Stripe,
    DynamoDb,
    Cognito,
    ApiGateway,
    CloudFormation,
    Ssm,
    SecretsManager,
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Stripe => "stripe",
            Self::DynamoDb => "dynamodb",
            Self::Cognito => "cognito",
            Self::ApiGateway => "apigateway",
            Self::CloudFormation => "cloudformation",
            Self::Ssm => "ssm",
            Self::SecretsManager => "secretsmanager",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A DynamoDB write's condition did not hold: the item already exists or changed.
    #[error("conditional check failed")]
    ConditionalCheckFailed,

    /// An upstream call failed. `retryable` is true for throttling, timeouts, 5xx and
    /// connection failures: the same call may succeed later.
    #[error("{service} {operation} failed")]
    Upstream {
        service: Upstream,
        operation: &'static str,
        retryable: bool,
        #[source]
        source: BoxError,
    },

    /// The upstream refused the request as invalid (Stripe's `invalid_request_error`): where the
    /// request carries the caller's input, the caller's mistake. Its message is never kept: it
    /// may quote the input.
    #[error("{service} {operation} refused the request: {} on {}", code.as_deref().unwrap_or("-"), param.as_deref().unwrap_or("-"))]
    Rejected {
        service: Upstream,
        operation: &'static str,
        /// The request parameter at fault, e.g. `discounts[0][promotion_code]`.
        param: Option<String>,
        /// The upstream's error code, e.g. `resource_missing`.
        code: Option<String>,
    },

    /// Data read from a store or an upstream does not have the shape we rely on.
    #[error("invalid data from {service}: {detail}")]
    InvalidData { service: Upstream, detail: String },

    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl Error {
    pub fn upstream(
        service: Upstream,
        operation: &'static str,
        retryable: bool,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Upstream {
            service,
            operation,
            retryable,
            source: source.into(),
        }
    }

    /// A later retry of the same work may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Upstream {
                retryable: true,
                ..
            }
        )
    }

    pub fn is_conditional_check_failed(&self) -> bool {
        matches!(self, Self::ConditionalCheckFailed)
    }

    /// A short stable label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ConditionalCheckFailed => "conditional_check_failed",
            Self::Upstream {
                retryable: true, ..
            } => "upstream_retryable",
            Self::Upstream { .. } => "upstream",
            Self::Rejected { .. } => "rejected",
            Self::InvalidData { .. } => "invalid_data",
            Self::Config(_) => "config",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Display an error with its whole `source()` chain, for logs.
#[derive(Debug)]
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_upstream_is_throttled_should_be_retryable() {
        let error = Error::upstream(Upstream::DynamoDb, "PutItem", true, "throttled");
        assert!(error.is_retryable());
        assert!(!error.is_conditional_check_failed());
        assert_eq!(error.kind(), "upstream_retryable");
    }

    #[test]
    fn when_condition_fails_should_say_so_and_not_be_retryable() {
        let error = Error::ConditionalCheckFailed;
        assert!(error.is_conditional_check_failed());
        assert!(!error.is_retryable());
    }

    #[test]
    fn chain_should_show_every_source() {
        let error = Error::upstream(Upstream::Stripe, "CreateCustomer", false, "boom");
        assert_eq!(
            Chain(&error).to_string(),
            "stripe CreateCustomer failed: boom"
        );
    }
}
