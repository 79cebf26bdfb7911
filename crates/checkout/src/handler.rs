//! `POST /checkout` (Cognito-authorized), `GET /checkout/complete` (the success return, whose
//! one-time key is the proof) and `GET /plans` (public: what is on sale). Extract, parse, one core call, respond; every failure is an
//! `ApiError`, answered in one place.

use billing_core::catalog::offers;
use billing_core::checkout::{CheckoutOrder, Completion};
use billing_core::http::{
    ApiError, api_base_url, caller, json_body, json_response, now, redirect, request_id, respond,
};
use billing_core::inputs::{
    CheckoutSessionId, InvalidField, Locale, LookupKey, OneTimeKey, Promotion, Quantity,
};
use billing_core::ports::{ApiKeys, Directory};
use billing_core::ports::{CheckoutStore, Payments};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use crate::Deps;

/// How long a pricing page may show a price list: a price archived in Stripe may stay on sale
/// that long, and `POST /checkout` still refuses it.
const PLANS_CACHE_CONTROL: &str = "public, max-age=300";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    lookup_key: String,
    quantity: Option<u64>,
    promotion_code: Option<String>,
    allow_promotion_codes: Option<bool>,
    locale: Option<String>,
}

impl CheckoutBody {
    fn into_order(self) -> Result<CheckoutOrder, InvalidField> {
        Ok(CheckoutOrder {
            lookup_key: LookupKey::parse(self.lookup_key)?,
            quantity: Quantity::parse(self.quantity)?,
            promotion: Promotion::parse(self.promotion_code, self.allow_promotion_codes)?,
            locale: self.locale.map(Locale::parse).transpose()?,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Start,
    Complete,
    Plans,
}

impl Route {
    fn of(request: &Request) -> Option<Self> {
        let path = request.uri().path().trim_end_matches('/');
        match (request.method(), path) {
            (&Method::GET, p) if p.ends_with("/checkout/complete") => Some(Self::Complete),
            (&Method::POST, p) if p.ends_with("/checkout") => Some(Self::Start),
            (&Method::GET, p) if p.ends_with("/plans") => Some(Self::Plans),
            _ => None,
        }
    }

    fn operation(self) -> &'static str {
        match self {
            Self::Start => "start checkout",
            Self::Complete => "complete checkout",
            Self::Plans => "list plans",
        }
    }
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
    let Some(route) = Route::of(&request) else {
        return Ok(respond("route", Err(ApiError::no_route())));
    };
    let outcome = match route {
        Route::Start => deps.start(&request).await,
        Route::Complete => deps.complete(&request).await,
        Route::Plans => deps.plans().await,
    };
    Ok(respond(route.operation(), outcome))
}

impl<S, P, D, K> Deps<S, P, D, K>
where
    S: CheckoutStore,
    P: Payments,
    D: Directory,
    K: ApiKeys,
{
    async fn start(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let caller = caller(request, &self.user_pool_id).ok_or_else(ApiError::unauthorized)?;
        let order = json_body::<CheckoutBody>(request)?.into_order()?;
        let base =
            api_base_url(request).ok_or_else(|| ApiError::invalid_request("unknown API domain"))?;
        let session = self
            .service()
            .start(
                &caller.user,
                caller.customer_id.as_deref(),
                &order,
                &format!("{base}/checkout/complete"),
                &request_id(request),
                now(),
            )
            .await?;
        info!(sub = %caller.user.sub, session_id = %session.id, lookup_key = %order.lookup_key, "checkout started");
        Ok(json_response(
            StatusCode::OK,
            &json!({"id": session.id, "url": session.url}),
        ))
    }

    /// The prices on sale, from the stored catalogue: public, and the same for every caller,
    /// so a CDN or the browser may keep it a few minutes.
    async fn plans(&self) -> Result<Response<Body>, ApiError> {
        let catalog = self.store.catalog().await?;
        let offers = offers(
            &catalog,
            &self.plans,
            &self.settings.extra_sellable_lookup_keys,
        );
        let mut response = json_response(StatusCode::OK, &json!({ "plans": offers }));
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(PLANS_CACHE_CONTROL),
        );
        Ok(response)
    }

    /// Every way this can go wrong for the caller ends on the cancel page and reveals nothing;
    /// only a failure of ours or upstream answers an error.
    async fn complete(&self, request: &Request) -> Result<Response<Body>, ApiError> {
        let query = request.query_string_parameters_ref();
        let parameter = |name| query.and_then(|q| q.first(name)).unwrap_or_default();
        let (Ok(session_id), Ok(key)) = (
            CheckoutSessionId::parse(parameter("session_id")),
            OneTimeKey::parse(parameter("key")),
        ) else {
            return Ok(redirect(&self.settings.cancel_url()));
        };
        let location = match self.service().complete(&session_id, &key, now()).await? {
            Completion::Provisioned(provisioned) => {
                info!(session_id = %session_id, plan = %provisioned.plan, "checkout completed and provisioned");
                self.settings.success_url()
            }
            Completion::AlreadyProvisioned => self.settings.success_url(),
            Completion::Rejected(reason) => {
                warn!(session_id = %session_id, reason, "success return rejected");
                self.settings.cancel_url()
            }
        };
        Ok(redirect(&location))
    }
}
