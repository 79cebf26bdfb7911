//! AWS SDK configuration, error classification and secret resolution.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use secrecy::SecretString;

use crate::config::SecretSource;
use crate::error::{Error, Upstream};

/// Time limits and retries for every AWS call of a function. The SDK retries throttling
/// (API Gateway's `TooManyRequestsException` on key creation, DynamoDB's throughput errors),
/// 5xx, timeouts and connection failures itself, with jittered exponential backoff; nothing of
/// ours retries around it.
#[derive(Debug, Clone, Copy)]
pub struct AwsLimits {
    pub connect_timeout: Duration,
    /// One attempt.
    pub attempt_timeout: Duration,
    /// All attempts of one operation together, backoff included: the worst case of one call.
    pub operation_timeout: Duration,
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl AwsLimits {
    /// For the Cognito triggers: Cognito gives the whole function 5 seconds. One call takes at
    /// most 1.8 s (2 attempts of 1 s at most).
    pub const TRIGGER: Self = Self {
        connect_timeout: Duration::from_millis(500),
        attempt_timeout: Duration::from_millis(1_000),
        operation_timeout: Duration::from_millis(1_800),
        max_attempts: 2,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(300),
    };

    /// For the HTTP handlers and the webhook. One call, e.g. one provisioning step, takes at
    /// most 10 s: up to 4 attempts of at most 3 s, with backoffs of at most 0.2, 0.4 and 0.8 s
    /// between them, cut at 10 s. That fits the webhook's 20 s function timeout, the 30 s
    /// provisioning lease and event claim (`table::PROVISIONING_LEASE_SECS`,
    /// `EVENT_LEASE_SECS`), and API Gateway's 29 s for one HTTP step.
    pub const HTTP: Self = Self {
        connect_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(3),
        operation_timeout: Duration::from_secs(10),
        max_attempts: 4,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
    };

    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect_timeout)
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(self.operation_timeout)
            .build()
    }

    pub fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts)
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.max_backoff)
    }
}

/// The SDK's own HTTPS client (hyper, rustls, the system's roots) with rustls on ring, the
/// crypto library async-stripe's client uses too: one TLS stack in every function.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Loads region, credentials and endpoints the standard way; `AWS_ENDPOINT_URL` and
/// `AWS_ENDPOINT_URL_<SERVICE>` point the clients at local emulators.
pub async fn load_sdk_config(limits: AwsLimits) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(limits.timeout_config())
        .retry_config(limits.retry_config())
        .load()
        .await
}

const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
    "LimitExceededException",
];

/// Maps an SDK error to ours, deciding whether a retry may succeed.
pub fn classify<E>(
    service: Upstream,
    operation: &'static str,
    error: SdkError<E, HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let retryable = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service_error) => {
            service_error.raw().status().is_server_error()
                || service_error
                    .err()
                    .code()
                    .is_some_and(|code| THROTTLING_CODES.contains(&code))
        }
        _ => false,
    };
    Error::upstream(service, operation, retryable, error)
}

/// Reads the secret value named by `source` (SSM SecureString or Secrets Manager string).
pub async fn resolve_secret(source: &SecretSource, sdk: &SdkConfig) -> Result<SecretString, Error> {
    match source {
        SecretSource::Plain(secret) => Ok(secret.clone()),
        SecretSource::SsmParameter(name) => {
            let output = aws_sdk_ssm::Client::new(sdk)
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| classify(Upstream::Ssm, "GetParameter", e))?;
            output
                .parameter
                .and_then(|parameter| parameter.value)
                .map(SecretString::from)
                .ok_or_else(|| Error::InvalidData {
                    service: Upstream::Ssm,
                    detail: format!("parameter {name} has no value"),
                })
        }
        SecretSource::SecretsManager(id) => {
            let output = aws_sdk_secretsmanager::Client::new(sdk)
                .get_secret_value()
                .secret_id(id)
                .send()
                .await
                .map_err(|e| classify(Upstream::SecretsManager, "GetSecretValue", e))?;
            output
                .secret_string
                .map(SecretString::from)
                .ok_or_else(|| Error::InvalidData {
                    service: Upstream::SecretsManager,
                    detail: format!("secret {id} has no string value"),
                })
        }
    }
}
