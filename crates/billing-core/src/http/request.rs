//! What a request carries: the caller from the authorizer's claims, a JSON body with a size
//! limit, the API it came through, its id.

use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;
use crate::domain::{CognitoUser, Email, UserPoolId, UserSub, Username};

/// Bodies of our endpoints are small; anything larger is refused before parsing.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// The authenticated caller, from the Cognito claims the API Gateway authorizer verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: CognitoUser,
    /// `custom:stripe_customer_id` when the token carries it (ID tokens do).
    pub customer_id: Option<String>,
}

fn claim(claims: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(value) if !value.is_empty() => Some(value.clone()),
        _ => None,
    }
}

/// Claims of an HTTP API JWT authorizer or of a REST API Cognito user pool authorizer.
fn claims_of(request: &Request) -> Option<serde_json::Map<String, Value>> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => {
            let claims = &context.authorizer.as_ref()?.jwt.as_ref()?.claims;
            Some(
                claims
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        }
        RequestContext::ApiGatewayV1(context) => match context.authorizer.fields.get("claims")? {
            Value::Object(claims) => Some(claims.clone()),
            _ => None,
        },
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The pool id is the last path segment of the token issuer,
/// `https://cognito-idp.<region>.amazonaws.com/<pool id>`.
fn pool_of_issuer(issuer: &str) -> Option<UserPoolId> {
    UserPoolId::parse(issuer.trim_end_matches('/').rsplit('/').next()?).ok()
}

/// The caller, or `None` when the request carries no usable claims (answer 401).
pub fn caller(request: &Request, default_pool: &UserPoolId) -> Option<Caller> {
    let claims = claims_of(request)?;
    let sub = UserSub::parse(claim(&claims, "sub")?).ok()?;
    let username = claim(&claims, "cognito:username")
        .or_else(|| claim(&claims, "username"))
        .and_then(|name| Username::parse(name).ok())?;
    let pool_id = claim(&claims, "iss")
        .and_then(|issuer| pool_of_issuer(&issuer))
        .unwrap_or_else(|| default_pool.clone());
    Some(Caller {
        user: CognitoUser {
            pool_id,
            username,
            sub,
            email: claim(&claims, "email").and_then(|email| Email::parse(email).ok()),
            email_verified: matches!(claims.get("email_verified"), Some(Value::Bool(true)))
                || claim(&claims, "email_verified").as_deref() == Some("true"),
        },
        customer_id: claim(&claims, "custom:stripe_customer_id"),
    })
}

/// Parses a JSON body of at most `MAX_BODY_BYTES`; an empty body parses as `{}`. The error
/// answer names the offending field as serde reports it.
pub fn json_body<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is limited to {MAX_BODY_BYTES} bytes"),
        ));
    }
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("invalid JSON body: {e}"),
        )
    })
}

/// `https://<domain>[/<stage>]` of the API the request came through, for links back to it.
pub fn api_base_url(request: &Request) -> Option<String> {
    let (domain, stage) = match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => {
            (context.domain_name.clone()?, context.stage.clone())
        }
        RequestContext::ApiGatewayV1(context) => {
            (context.domain_name.clone()?, context.stage.clone())
        }
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    let custom_domain = !domain.contains(".execute-api.");
    // Only a local stand-in for API Gateway (make dev) serves the API on the loopback, without TLS.
    let scheme = if is_loopback(&domain) {
        "http"
    } else {
        "https"
    };
    match stage.filter(|stage| stage != "$default" && !custom_domain) {
        Some(stage) => Some(format!("{scheme}://{domain}/{stage}")),
        None => Some(format!("{scheme}://{domain}")),
    }
}

/// `127.0.0.1` or `localhost`, with or without a port.
fn is_loopback(domain: &str) -> bool {
    let host = domain
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(domain, |(host, _)| host);
    host == "127.0.0.1" || host.eq_ignore_ascii_case("localhost")
}

/// The API Gateway request id, else the Lambda invocation's.
pub fn request_id(request: &Request) -> String {
    let invocation = request
        .lambda_context_ref()
        .map(|context| context.request_id.clone())
        .unwrap_or_default();
    let api = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        Some(RequestContext::ApiGatewayV1(context)) => context.request_id.clone(),
        _ => None,
    };
    api.unwrap_or(invocation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_through(domain: &str, stage: &str) -> Request {
        let mut event: serde_json::Value =
            serde_json::from_str(include_str!("../../../../events/checkout/create.json")).unwrap();
        event["requestContext"]["domainName"] = domain.into();
        event["requestContext"]["stage"] = stage.into();
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }

    #[test]
    fn links_back_should_use_https_except_on_a_local_stand_in() {
        let cases = [
            (
                "abc.execute-api.us-east-1.amazonaws.com",
                "$default",
                "https://abc.execute-api.us-east-1.amazonaws.com",
            ),
            (
                "abc.execute-api.us-east-1.amazonaws.com",
                "prod",
                "https://abc.execute-api.us-east-1.amazonaws.com/prod",
            ),
            ("api.example.com", "prod", "https://api.example.com"),
            ("127.0.0.1:3000", "$default", "http://127.0.0.1:3000"),
            ("localhost", "$default", "http://localhost"),
            (
                "localhost.example.com",
                "$default",
                "https://localhost.example.com",
            ),
            (
                "127.0.0.1.example.com:443",
                "$default",
                "https://127.0.0.1.example.com:443",
            ),
        ];
        for (domain, stage, expected) in cases {
            let request = request_through(domain, stage);
            assert_eq!(
                api_base_url(&request).as_deref(),
                Some(expected),
                "{domain}"
            );
        }
    }
}
