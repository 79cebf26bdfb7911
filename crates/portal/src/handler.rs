//! `POST /portal`, `GET /me`, `DELETE /me`, `POST /me/api-key` and `POST /me/api-key/rotate`, for the caller identified by the authorizer's
//! claims only. Extract, parse, one core call, respond; every failure is an `ApiError`,
//! answered in one place.

use billing_core::config::KeyDisclosure;
use billing_core::domain::{CognitoUser, UserSub};
use billing_core::http::{ApiError, caller, json_body, json_response, no_content, now, respond};
use billing_core::inputs::{ReturnPath, RotationGrace};
use billing_core::plans::{PlanCatalog, PlanName};
use billing_core::portal::AccountOverview;
use billing_core::ports::{AccountStore, Meters, Payments, UsageCounts, UsageStore};
use billing_core::ports::{ApiKey, ApiKeys, Directory, PortalFlow};
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    grace_seconds: Option<i64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FlowName {
    Cancel,
    Update,
}

impl From<FlowName> for PortalFlow {
    fn from(flow: FlowName) -> Self {
        match flow {
            FlowName::Cancel => Self::Cancel,
            FlowName::Update => Self::Update,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Portal,
    Me,
    DeleteMe,
    CreateKey,
    RotateKey,
}

impl Route {
    fn of(request: &Request) -> Option<Self> {
        let path = request.uri().path().trim_end_matches('/');
        match (request.method(), path) {
            (&Method::POST, p) if p.ends_with("/portal") => Some(Self::Portal),
            (&Method::POST, p) if p.ends_with("/me/api-key") => Some(Self::CreateKey),
            (&Method::POST, p) if p.ends_with("/me/api-key/rotate") => Some(Self::RotateKey),
            (&Method::GET, p) if p.ends_with("/me") => Some(Self::Me),
            (&Method::DELETE, p) if p.ends_with("/me") => Some(Self::DeleteMe),
            _ => None,
        }
    }

    fn operation(self) -> &'static str {
        match self {
            Self::Portal => "portal session",
            Self::Me => "account overview",
            Self::DeleteMe => "delete account",
            Self::CreateKey => "api key",
            Self::RotateKey => "api key rotation",
        }
    }
}

pub async fn handle<S, P, D, K>(
    deps: &Deps<S, P, D, K>,
    request: Request,
) -> Result<Response<Body>, Error>
where
    S: AccountStore + UsageStore,
    P: Payments + Meters,
    D: Directory,
    K: ApiKeys + UsageCounts,
{
    let Some(route) = Route::of(&request) else {
        return Ok(respond("route", Err(ApiError::no_route())));
    };
    Ok(respond(
        route.operation(),
        deps.answer(route, &request).await,
    ))
}

impl<S, P, D, K> Deps<S, P, D, K>
where
    S: AccountStore + UsageStore,
    P: Payments + Meters,
    D: Directory,
    K: ApiKeys + UsageCounts,
{
    async fn answer(&self, route: Route, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller =
            caller(request, &self.account.user_pool_id).ok_or_else(ApiError::unauthorized)?;
        match route {
            Route::Portal => self.portal(request, &caller.user.sub).await,
            Route::Me => self.me(&caller.user.sub).await,
            Route::DeleteMe => self.delete_me(&caller.user).await,
            Route::CreateKey => self.create_key(&caller.user.sub).await,
            Route::RotateKey => self.rotate_key(request, &caller.user.sub).await,
        }
    }

    async fn portal(&self, request: &Request, sub: &UserSub) -> Result<Response<Body>, ApiError> {
        let body = json_body::<PortalBody>(request)?;
        let return_path = ReturnPath::parse_or_root(body.return_path.as_deref())?;
        let url = self
            .service()
            .portal_session(sub, &return_path, body.flow.map(PortalFlow::from), now())
            .await?;
        Ok(json_response(StatusCode::OK, &json!({ "url": url })))
    }

    async fn me(&self, sub: &UserSub) -> Result<Response<Body>, ApiError> {
        let account = self.service().overview(sub, now()).await?;
        Ok(json_response(
            StatusCode::OK,
            &overview_json(&account, &self.account.plans, self.account.key_disclosure),
        ))
    }

    /// `POST /me/api-key`: 201 with the key made now (its value whatever the disclosure), or
    /// 200 with the one the caller has.
    async fn create_key(&self, sub: &UserSub) -> Result<Response<Body>, ApiError> {
        let (key, made) = self.service().ensure_key(sub, now()).await?;
        let status = if made {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let disclosure = self.account.key_disclosure;
        Ok(json_response(
            status,
            &json!({ "api_key": key_json(&key, key.usage_plan_ids.first(), disclosure, made) }),
        ))
    }

    /// `POST /me/api-key/rotate`: 200 with the new key (its value whatever the disclosure) and
    /// when the old one stops working.
    async fn rotate_key(
        &self,
        request: &Request,
        sub: &UserSub,
    ) -> Result<Response<Body>, ApiError> {
        let body = json_body::<RotateBody>(request)?;
        let grace = RotationGrace::parse(body.grace_seconds)?;
        let rotated = self.service().rotate_key(sub, grace, now()).await?;
        let key = &rotated.key;
        let disclosure = self.account.key_disclosure;
        Ok(json_response(
            StatusCode::OK,
            &json!({
                "api_key": key_json(key, key.usage_plan_ids.first(), disclosure, true),
                "retired_key": {
                    "id": rotated.retired_key_id,
                    "works_until": rotated.retired_at,
                },
            }),
        ))
    }

    async fn delete_me(&self, user: &CognitoUser) -> Result<Response<Body>, ApiError> {
        self.service().delete_account(user, now()).await?;
        Ok(no_content())
    }
}

/// What `GET /me` answers. The key's value is shown to its owner only, here.
fn overview_json(
    account: &AccountOverview,
    plans: &PlanCatalog,
    disclosure: KeyDisclosure,
) -> Value {
    let subscriptions: Vec<Value> = account
        .subscriptions
        .iter()
        .map(|subscription| {
            json!({
                "id": subscription.id,
                "status": subscription.status.as_str(),
                // The highest of the deployment's plans among its items, else the first named.
                "plan": plans
                    .highest(subscription.plans())
                    .map(|plan| &plan.name)
                    .or_else(|| subscription.plans().next())
                    .map(PlanName::as_str),
                "current_period_start": subscription.current_period_start,
                "current_period_end": subscription.current_period_end,
                "cancel_at_period_end": subscription.cancel_at_period_end,
            })
        })
        .collect();
    let api_key = account.api_key.as_ref().map(|key| {
        key_json(
            key,
            account.usage_plan_id.as_ref(),
            disclosure,
            account.api_key_made_now,
        )
    });
    json!({
        "plan": account.plan.as_str(),
        "subscriptions": subscriptions,
        "api_key": api_key,
        "usage": account.usage,
    })
}

/// A key as its owner sees it. With `once` disclosure its value only in the answer that made
/// it, else its first characters to tell it apart.
fn key_json(
    key: &ApiKey,
    usage_plan: Option<&String>,
    disclosure: KeyDisclosure,
    made_now: bool,
) -> Value {
    let value = key.value.as_ref().map(|value| value.expose_secret());
    let shown = disclosure == KeyDisclosure::Always || made_now;
    json!({
        "id": key.id,
        "value": value.filter(|_| shown),
        "prefix": value.map(|value| value.chars().take(KEY_PREFIX_CHARS).collect::<String>()),
        "enabled": key.enabled,
        "usage_plan": usage_plan,
        "created": key.created,
        "disclosure": match disclosure {
            KeyDisclosure::Always => "always",
            KeyDisclosure::Once => "once",
        },
    })
}

/// Enough to tell keys apart, far too little to use one.
const KEY_PREFIX_CHARS: usize = 4;
