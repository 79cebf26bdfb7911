//! The `Billing` port over async-stripe.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_core::Customer;
use stripe_core::customer::{CreateCustomer, SearchCustomer};

use crate::config::StripeConfig;
use crate::domain::{CustomerId, Email, NewCustomer, StripeCustomer, UserSub, customer_metadata};
use crate::error::{Error, Result, Upstream};
use crate::ports::Billing;

/// What we keep of a Stripe API error: status, type and code, never the message (it can echo
/// request values such as an email).
#[derive(Debug)]
pub struct StripeFailure {
    status: Option<u16>,
    detail: String,
}

impl fmt::Display for StripeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "status {status}: {}", self.detail),
            None => f.write_str(&self.detail),
        }
    }
}

impl std::error::Error for StripeFailure {}

/// Maps an async-stripe error to ours: 409 (idempotent request in flight), 429, 5xx, timeouts
/// and connection failures may succeed on retry.
pub fn classify_stripe(operation: &'static str, error: StripeError) -> Error {
    let (status, retryable, detail) = match error {
        StripeError::Stripe(api, status) => (
            Some(status),
            status == 409 || status == 429 || status >= 500,
            format!(
                "{} {}",
                api.type_,
                api.code.as_ref().map(|code| code.as_str()).unwrap_or("-")
            ),
        ),
        StripeError::Timeout => (None, true, "timeout".to_owned()),
        StripeError::ClientError(message) => (None, true, message),
        StripeError::JSONDeserialize(message) => {
            return Error::InvalidData {
                service: Upstream::Stripe,
                detail: format!("{operation}: {message}"),
            };
        }
        StripeError::ConfigError(message) => (None, false, message),
    };
    Error::upstream(
        Upstream::Stripe,
        operation,
        retryable,
        StripeFailure { status, detail },
    )
}

#[derive(Clone)]
pub struct StripeBilling {
    client: Client,
}

impl fmt::Debug for StripeBilling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StripeBilling")
    }
}

impl StripeBilling {
    pub fn new(config: &StripeConfig, secret_key: &SecretString) -> Result<Self> {
        let mut builder = ClientBuilder::new(secret_key.expose_secret()).timeout(config.timeout);
        if let Some(base) = &config.api_base {
            builder = builder.url(base.trim_end_matches('/'));
        }
        let client = builder
            .build()
            .map_err(|e| classify_stripe("build client", e))?;
        Ok(Self { client })
    }

    async fn search(&self, query: String) -> Result<Vec<StripeCustomer>> {
        let found = SearchCustomer::new(query)
            .limit(10)
            .send(&self.client)
            .await
            .map_err(|e| classify_stripe("SearchCustomers", e))?;
        found.data.into_iter().map(to_domain).collect()
    }
}

fn to_domain(customer: Customer) -> Result<StripeCustomer> {
    Ok(StripeCustomer {
        id: CustomerId::parse(customer.id.as_str()).map_err(|e| Error::InvalidData {
            service: Upstream::Stripe,
            detail: e.to_string(),
        })?,
        created: customer.created,
        metadata: customer.metadata.unwrap_or_default().into_iter().collect(),
        deleted: false,
    })
}

/// Stripe search query values are single-quoted; quotes and backslashes are escaped.
pub fn search_literal(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
    format!("'{escaped}'")
}

#[async_trait]
impl Billing for StripeBilling {
    async fn customers_by_sub(&self, sub: &UserSub) -> Result<Vec<StripeCustomer>> {
        self.search(format!(
            "metadata['{}']:{}",
            customer_metadata::COGNITO_SUB,
            search_literal(sub.as_str())
        ))
        .await
    }

    async fn customers_by_email(&self, email: &Email) -> Result<Vec<StripeCustomer>> {
        self.search(format!("email:{}", search_literal(email.as_str())))
            .await
    }

    async fn create_customer(&self, customer: &NewCustomer) -> Result<CustomerId> {
        let key = IdempotencyKey::new(&customer.idempotency_key)
            .map_err(|e| Error::upstream(Upstream::Stripe, "CreateCustomer", false, e))?;
        let mut request = CreateCustomer::new().name(customer.name.clone()).metadata(
            customer
                .metadata
                .clone()
                .into_iter()
                .collect::<HashMap<_, _>>(),
        );
        if let Some(email) = &customer.email {
            request = request.email(email.as_str());
        }
        let created = request
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&self.client)
            .await
            .map_err(|e| classify_stripe("CreateCustomer", e))?;
        Ok(to_domain(created)?.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_literal_should_escape_quotes() {
        assert_eq!(search_literal("o'hara@x.io"), r"'o\'hara@x.io'");
        assert_eq!(search_literal(r"a\b"), r"'a\\b'");
    }
}
