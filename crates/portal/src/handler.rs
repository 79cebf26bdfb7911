//! `POST /portal`, `GET /me` and `DELETE /me`, for the caller identified by the authorizer's
//! claims only.

use billing_core::checkout::{PortalFlow, safe_return_url};
use billing_core::http::{
    caller, error_response, json_body, json_response, no_content, now, unauthorized,
    upstream_failure,
};
use billing_core::port_groups::{AccountStore, Payments};
use billing_core::portal::PortalError;
use billing_core::ports::{ApiKeys, Directory};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Deps;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortalBody {
    return_path: Option<String>,
    flow: Option<FlowName>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FlowName {
    Cancel,
    Update,
}

pub async fn handle<S, P, D, K>(
    deps: &Deps<S, P, D, K>,
    request: Request,
) -> Result<Response<Body>, Error>
where
    S: AccountStore,
    P: Payments,
    D: Directory,
    K: ApiKeys,
{
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let route = match (request.method(), path.as_str()) {
        (&Method::POST, p) if p.ends_with("/portal") => Route::Portal,
        (&Method::GET, p) if p.ends_with("/me") => Route::Me,
        (&Method::DELETE, p) if p.ends_with("/me") => Route::DeleteMe,
        _ => {
            return Ok(error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route",
            ));
        }
    };
    let Some(caller) = caller(&request, &deps.account.user_pool_id) else {
        return Ok(unauthorized());
    };
    let response = match route {
        Route::Portal => portal(deps, &request, &caller.user.sub).await,
        Route::Me => me(deps, &caller.user.sub).await,
        Route::DeleteMe => match deps.service().delete_account(&caller.user).await {
            Ok(()) => no_content(),
            Err(failure) => upstream_failure("delete account", &failure),
        },
    };
    Ok(response)
}

enum Route {
    Portal,
    Me,
    DeleteMe,
}

async fn portal<S, P, D, K>(
    deps: &Deps<S, P, D, K>,
    request: &Request,
    sub: &billing_core::domain::UserSub,
) -> Response<Body>
where
    S: AccountStore,
    P: Payments,
    D: Directory,
    K: ApiKeys,
{
    let body = match json_body::<PortalBody>(request) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(return_url) = safe_return_url(&deps.account.site_origin, body.return_path.as_deref())
    else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "return_path: expected a path on this site, such as /account",
        );
    };
    let flow = body.flow.map(|flow| match flow {
        FlowName::Cancel => PortalFlow::Cancel,
        FlowName::Update => PortalFlow::Update,
    });
    match deps
        .service()
        .portal_session(sub, return_url, flow, now())
        .await
    {
        Ok(url) => json_response(StatusCode::OK, &json!({ "url": url })),
        Err(PortalError::NoCustomer) => error_response(
            StatusCode::NOT_FOUND,
            "no_customer",
            "no billing account yet: start a checkout first",
        ),
        Err(PortalError::Upstream(failure)) => upstream_failure("portal session", &failure),
    }
}

async fn me<S, P, D, K>(
    deps: &Deps<S, P, D, K>,
    sub: &billing_core::domain::UserSub,
) -> Response<Body>
where
    S: AccountStore,
    P: Payments,
    D: Directory,
    K: ApiKeys,
{
    let account = deps.service().overview(sub, now()).await;
    let account = match account {
        Ok(account) => account,
        Err(failure) => return upstream_failure("account overview", &failure),
    };
    let subscriptions: Vec<Value> = account
        .subscriptions
        .iter()
        .map(|subscription| {
            json!({
                "id": subscription.id,
                "status": subscription.status.as_str(),
                "plan": subscription.plan.as_ref().map(|plan| plan.as_str()),
                "current_period_end": subscription.current_period_end,
                "cancel_at_period_end": subscription.cancel_at_period_end,
            })
        })
        .collect();
    let api_key = account.api_key.as_ref().map(|key| {
        json!({
            "id": key.id,
            "value": key.value.as_ref().map(|value| value.expose_secret().to_owned()),
            "enabled": key.enabled,
            "usage_plan": account.usage_plan_id,
        })
    });
    json_response(
        StatusCode::OK,
        &json!({
            "plan": account.plan.as_str(),
            "subscriptions": subscriptions,
            "api_key": api_key,
        }),
    )
}
