//! `POST /checkout` (Cognito-authorized) and `GET /checkout/complete` (the success return, whose
//! one-time key is the proof). Extract, validate, one core call, respond.

use billing_core::checkout::{CheckoutError, CheckoutOrder, Completion};
use billing_core::http::{
    api_base_url, caller, error_response, json_body, json_response, now, redirect, unauthorized,
    upstream_failure,
};
use billing_core::port_groups::{CheckoutStore, Payments};
use billing_core::ports::{ApiKeys, Directory};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use crate::Deps;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    lookup_key: String,
    quantity: Option<u64>,
    promotion_code: Option<String>,
    allow_promotion_codes: Option<bool>,
    locale: Option<String>,
}

fn invalid(field: &str, message: &str) -> Response<Body> {
    error_response(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &format!("{field}: {message}"),
    )
}

fn is_token(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[allow(clippy::result_large_err)]
fn validate(body: CheckoutBody) -> Result<CheckoutOrder, Response<Body>> {
    if !is_token(&body.lookup_key, 200) {
        return Err(invalid(
            "lookup_key",
            "expected 1 to 200 letters, digits, _ - .",
        ));
    }
    let quantity = body.quantity.unwrap_or(1);
    if !(1..=100).contains(&quantity) {
        return Err(invalid("quantity", "expected 1 to 100"));
    }
    if let Some(code) = &body.promotion_code
        && !(code.starts_with("promo_") && is_token(code, 100))
    {
        return Err(invalid(
            "promotion_code",
            "expected a promotion code id, promo_...",
        ));
    }
    let allow_promotion_codes = body.allow_promotion_codes.unwrap_or(false);
    if allow_promotion_codes && body.promotion_code.is_some() {
        return Err(invalid(
            "allow_promotion_codes",
            "cannot be combined with promotion_code",
        ));
    }
    if let Some(locale) = &body.locale {
        let valid = locale == "auto"
            || (locale.len() == 2 || (locale.len() == 5 && locale.as_bytes()[2] == b'-'))
                && locale.chars().all(|c| c.is_ascii_alphabetic() || c == '-');
        if !valid {
            return Err(invalid(
                "locale",
                "expected auto or a locale such as fr or pt-BR",
            ));
        }
    }
    Ok(CheckoutOrder {
        lookup_key: body.lookup_key,
        quantity,
        promotion_code: body.promotion_code,
        allow_promotion_codes,
        locale: body.locale,
    })
}

pub async fn handle<S, P, D, K>(
    deps: &Deps<S, P, D, K>,
    request: Request,
) -> Result<Response<Body>, Error>
where
    S: CheckoutStore,
    P: Payments,
    D: Directory,
    K: ApiKeys,
{
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let response = match (request.method(), path.as_str()) {
        (&Method::GET, p) if p.ends_with("/checkout/complete") => complete(deps, &request).await,
        (&Method::POST, p) if p.ends_with("/checkout") => start(deps, &request).await,
        _ => error_response(StatusCode::NOT_FOUND, "not_found", "no such route"),
    };
    Ok(response)
}

async fn start<S, P, D, K>(deps: &Deps<S, P, D, K>, request: &Request) -> Response<Body>
where
    S: CheckoutStore,
    P: Payments,
    D: Directory,
    K: ApiKeys,
{
    let Some(caller) = caller(request, &deps.user_pool_id) else {
        return unauthorized();
    };
    let order = match json_body::<CheckoutBody>(request).and_then(validate) {
        Ok(order) => order,
        Err(response) => return response,
    };
    let Some(base) = api_base_url(request) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unknown API domain",
        );
    };
    let request_id = request
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let request_id = match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(c)) => {
            c.request_id.clone().unwrap_or(request_id)
        }
        Some(lambda_http::request::RequestContext::ApiGatewayV1(c)) => {
            c.request_id.clone().unwrap_or(request_id)
        }
        _ => request_id,
    };
    let started = deps
        .service()
        .start(
            &caller.user,
            caller.customer_id.as_deref(),
            &order,
            &format!("{base}/checkout/complete"),
            &request_id,
            now(),
        )
        .await;
    match started {
        Ok(session) => {
            info!(sub = %caller.user.sub, session_id = %session.id, lookup_key = %order.lookup_key, "checkout started");
            json_response(
                StatusCode::OK,
                &json!({"id": session.id, "url": session.url}),
            )
        }
        Err(CheckoutError::UnknownPrice) => error_response(
            StatusCode::NOT_FOUND,
            "unknown_price",
            "no plan is sold under this lookup_key",
        ),
        Err(CheckoutError::AlreadySubscribed) => error_response(
            StatusCode::CONFLICT,
            "already_subscribed",
            "you already have an active subscription to this plan",
        ),
        Err(CheckoutError::Upstream(failure)) => upstream_failure("start checkout", &failure),
    }
}

async fn complete<S, P, D, K>(deps: &Deps<S, P, D, K>, request: &Request) -> Response<Body>
where
    S: CheckoutStore,
    P: Payments,
    D: Directory,
    K: ApiKeys,
{
    let query = request.query_string_parameters_ref();
    let session_id = query
        .and_then(|q| q.first("session_id"))
        .unwrap_or_default();
    let key = query.and_then(|q| q.first("key")).unwrap_or_default();
    let well_formed = session_id.starts_with("cs_")
        && session_id.len() <= 255
        && session_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.len() == 64
        && key.chars().all(|c| c.is_ascii_hexdigit());
    if !well_formed {
        return redirect(&deps.settings.cancel_url());
    }
    match deps.service().complete(session_id, key, now()).await {
        Ok(Completion::Provisioned(provisioned)) => {
            info!(session_id, plan = %provisioned.plan, "checkout completed and provisioned");
            redirect(&deps.settings.success_url())
        }
        Ok(Completion::AlreadyProvisioned) => redirect(&deps.settings.success_url()),
        Ok(Completion::Rejected(reason)) => {
            warn!(session_id, reason, "success return rejected");
            redirect(&deps.settings.cancel_url())
        }
        Err(failure) => upstream_failure("complete checkout", &failure),
    }
}
