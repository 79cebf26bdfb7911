//! The one error of the HTTP handlers and the one place it becomes a response.
//!
//! Handlers return `Result<Response<Body>, ApiError>` and use `?` on what they call: each use
//! case's error converts into an `ApiError` here. `respond` turns the error into the JSON answer
//! `{"error": {"code", "message"}}` and logs it once, with the cause chain for server-side
//! failures. The body never carries internal error text.

use std::borrow::Cow;
use std::fmt;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use tracing::{error, info};

use super::response::error_response_with;
use crate::checkout::CheckoutError;
use crate::error::{BoxError, Chain, Error};
use crate::inputs::InvalidField;
use crate::portal::PortalError;

/// What the caller is told, and the cause the logs keep.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: Cow<'static, str>,
    /// More fields of the answer's `error` object.
    fields: Vec<(&'static str, serde_json::Value)>,
    /// Seconds after which a refused request may be made again (`Retry-After`).
    retry_after: Option<i64>,
    source: Option<BoxError>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after: None,
            source: None,
        }
    }

    /// Adds a field to the answer's `error` object.
    pub fn with_field(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.fields
            .push((name, serde_json::Value::String(value.into())));
        self
    }

    /// When the caller may try again: the `Retry-After` header and `retry_after` (seconds) in
    /// the answer's `error` object.
    pub fn with_retry_after(mut self, seconds: i64) -> Self {
        self.fields
            .push(("retry_after", serde_json::json!(seconds)));
        self.retry_after = Some(seconds);
        self
    }

    /// Keeps the cause for the log; it never reaches the body.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid Cognito claims",
        )
    }

    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    pub fn invalid_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The response, logged: server-side failures with their cause chain, the caller's mistakes
    /// with their code only (their messages may quote the request).
    pub fn into_response(self, operation: &'static str) -> Response<Body> {
        if self.status.is_server_error() {
            let upstream = self
                .source
                .as_deref()
                .and_then(|source| source.downcast_ref::<Error>());
            error!(
                operation,
                status = self.status.as_u16(),
                code = self.code,
                error_kind = upstream.map_or("internal", Error::kind),
                retryable = upstream.is_some_and(Error::is_retryable),
                error = self
                    .source
                    .as_deref()
                    .map(|source| Chain(source).to_string()),
                "request failed"
            );
        } else {
            info!(
                operation,
                status = self.status.as_u16(),
                code = self.code,
                "request refused"
            );
        }
        let mut response = error_response_with(self.status, self.code, &self.message, &self.fields);
        if let Some(seconds) = self.retry_after
            && let Ok(value) = lambda_http::http::HeaderValue::from_str(&seconds.to_string())
        {
            response
                .headers_mut()
                .insert(lambda_http::http::header::RETRY_AFTER, value);
        }
        response
    }
}

/// The handler's answer, or its error as the JSON error answer.
pub fn respond(
    operation: &'static str,
    outcome: Result<Response<Body>, ApiError>,
) -> Response<Body> {
    outcome.unwrap_or_else(|failure| failure.into_response(operation))
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.status)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("fields", &self.fields)
            .field(
                "source",
                &self
                    .source
                    .as_deref()
                    .map(|source| Chain(source).to_string()),
            )
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|source| source as _)
    }
}

/// A failure of a service we depend on (or of our own store): an opaque 502. A request Stripe
/// refused as invalid is the caller's input: a 400 with Stripe's `param` and `code` (as
/// `stripe_code`), never Stripe's message.
impl From<Error> for ApiError {
    fn from(failure: Error) -> Self {
        if let Error::Rejected { param, code, .. } = &failure {
            let mut rejected = Self::invalid_request("Stripe refused the request: see param");
            if let Some(param) = param {
                rejected = rejected.with_field("param", param.clone());
            }
            if let Some(code) = code {
                rejected = rejected.with_field("stripe_code", code.clone());
            }
            return rejected.with_source(failure);
        }
        Self::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            "a service we depend on failed; try again later",
        )
        .with_source(failure)
    }
}

impl From<InvalidField> for ApiError {
    fn from(invalid: InvalidField) -> Self {
        Self::invalid_request(invalid.to_string())
    }
}

impl From<CheckoutError> for ApiError {
    fn from(failure: CheckoutError) -> Self {
        match failure {
            CheckoutError::UnknownPrice => Self::new(
                StatusCode::NOT_FOUND,
                "unknown_price",
                "no plan is sold under this lookup_key",
            ),
            CheckoutError::AlreadySubscribed => Self::new(
                StatusCode::CONFLICT,
                "already_subscribed",
                "you already have an active subscription to this plan",
            ),
            CheckoutError::QuantityOnMeteredPrice => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_quantity",
                "this plan is billed by usage: leave quantity out",
            ),
            // Our catalogue's mistake, logged where it is found: not the caller's.
            CheckoutError::MisconfiguredPrice => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "price_not_on_sale",
                "this plan cannot be sold right now",
            ),
            CheckoutError::Upstream(failure) => failure.into(),
        }
    }
}

impl From<PortalError> for ApiError {
    fn from(failure: PortalError) -> Self {
        match failure {
            PortalError::NoCustomer => Self::new(
                StatusCode::NOT_FOUND,
                "no_customer",
                "no billing account yet: start a checkout first",
            ),
            PortalError::NoKeyOnPlan => Self::new(
                StatusCode::CONFLICT,
                "no_api_access",
                "your plan includes no API key: choose a plan that does",
            ),
            PortalError::NoKeyToRotate => Self::new(
                StatusCode::CONFLICT,
                "no_api_key",
                "you have no API key to rotate: POST /me/api-key makes one",
            ),
            PortalError::TooManyRotations { retry_after } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_rotations",
                "too many key rotations in the last hour: try again later",
            )
            .with_retry_after(retry_after),
            PortalError::Upstream(failure) => failure.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::error::Upstream;

    fn answer(error: impl Into<ApiError>) -> (StatusCode, Value) {
        let response = error.into().into_response("test");
        let Body::Text(text) = response.body() else {
            panic!("expected a JSON body");
        };
        (response.status(), serde_json::from_str(text).unwrap())
    }

    #[test]
    fn when_an_upstream_fails_should_answer_an_opaque_502() {
        let failure = Error::upstream(Upstream::Stripe, "CreateSession", true, "sk_live_leak");
        let (status, body) = answer(failure);
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(body["error"]["code"], "upstream_unavailable");
        assert!(!body.to_string().contains("stripe"), "{body}");
        assert!(!body.to_string().contains("sk_live_leak"), "{body}");
    }

    #[test]
    fn should_keep_the_cause_for_the_log_only() {
        let failure = Error::upstream(Upstream::DynamoDb, "PutItem", false, "boom");
        let error = ApiError::from(CheckoutError::Upstream(failure));
        assert_eq!(
            Chain(&error).to_string(),
            "502 upstream_unavailable: a service we depend on failed; try again later: \
             dynamodb PutItem failed: boom"
        );
    }

    #[test]
    fn when_a_field_is_invalid_should_answer_400_naming_it() {
        let (status, body) = answer(InvalidField {
            field: "locale",
            expected: "expected auto or a locale such as fr or pt-BR",
        });
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_request");
        assert_eq!(
            body["error"]["message"],
            "locale: expected auto or a locale such as fr or pt-BR"
        );
    }

    #[test]
    fn use_case_refusals_should_keep_their_status_and_code() {
        for (error, status, code) in [
            (
                ApiError::from(CheckoutError::UnknownPrice),
                StatusCode::NOT_FOUND,
                "unknown_price",
            ),
            (
                ApiError::from(CheckoutError::AlreadySubscribed),
                StatusCode::CONFLICT,
                "already_subscribed",
            ),
            (
                ApiError::from(PortalError::NoCustomer),
                StatusCode::NOT_FOUND,
                "no_customer",
            ),
            (
                ApiError::unauthorized(),
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            ),
        ] {
            assert_eq!((error.status(), error.code()), (status, code));
        }
    }
}
