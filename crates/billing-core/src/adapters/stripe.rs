//! The `Billing` port over async-stripe.

use std::collections::HashMap;
use std::fmt;

use crate::xray::{TracedStripe, Tracer};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_billing::billing_portal_session::{
    CreateBillingPortalSession, CreateBillingPortalSessionFlowData,
    CreateBillingPortalSessionFlowDataSubscriptionCancel,
    CreateBillingPortalSessionFlowDataSubscriptionUpdate, CreateBillingPortalSessionFlowDataType,
};
use stripe_billing::subscription::{
    ListSubscription, ListSubscriptionStatus, RetrieveSubscription,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAutomaticTax, CreateCheckoutSessionDiscounts,
    CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
    ListLineItemsCheckoutSession, RetrieveCheckoutSession,
};
use stripe_client_core::{RequestBuilder, StripeMethod};
use stripe_core::Customer;
use stripe_core::customer::{CreateCustomer, DeleteCustomer, SearchCustomer};
use stripe_product::price::ListPrice;
use stripe_product::product::RetrieveProduct;
use stripe_shared::{
    CheckoutSessionBillingAddressCollection, CheckoutSessionMode, PaymentIntent, Price,
    Subscription,
};
use stripe_types::Expandable;
use tokio::sync::Mutex;

use crate::config::StripeConfig;
use crate::domain::{CustomerId, Email, NewCustomer, StripeCustomer, UserSub, customer_metadata};
use crate::error::{Error, Result, Upstream};
use crate::plans::{PlanName, SubscriptionItemState, SubscriptionState};
use crate::ports::{
    AccountListing, Billing, Checkout, EventFeed, EventsPage, EventsQuery, ListedEvent,
    ListedObject, ObjectsPage, StripeList,
};
use crate::ports::{
    CheckoutMode, CheckoutSessionInfo, CreatedSession, NewCheckoutSession, NewPortalSession,
    PortalFlow, PriceInfo,
};

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

/// Like [`classify_stripe`], for a request made of the caller's input (a Checkout or Portal
/// session): Stripe's `invalid_request_error` on a 400 or 404 (an unknown promotion code, a
/// price that cannot be used) is [`Error::Rejected`] with Stripe's `param` and `code`.
pub fn classify_stripe_input(operation: &'static str, error: StripeError) -> Error {
    match error {
        StripeError::Stripe(api, 400 | 404)
            if api.type_ == stripe::ApiErrorsType::InvalidRequestError =>
        {
            Error::Rejected {
                service: Upstream::Stripe,
                operation,
                param: api.param,
                code: api.code.map(|code| code.as_str().to_owned()),
            }
        }
        other => classify_stripe(operation, other),
    }
}

/// async-stripe's client, each request a subsegment of the invocation's X-Ray trace.
pub(super) type StripeClient = TracedStripe<Client>;

/// Product metadata does not change often: read once per product per process.
type PlanCache = std::sync::Arc<Mutex<HashMap<String, HashMap<String, String>>>>;

#[derive(Clone)]
pub struct StripeBilling {
    client: StripeClient,
    product_plans: PlanCache,
}

impl fmt::Debug for StripeBilling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StripeBilling")
    }
}

impl StripeBilling {
    pub(super) fn client(&self) -> &StripeClient {
        &self.client
    }

    pub fn new(config: &StripeConfig, secret_key: &SecretString) -> Result<Self> {
        let mut builder = ClientBuilder::new(secret_key.expose_secret()).timeout(config.timeout);
        if let Some(base) = &config.api_base {
            builder = builder.url(base.trim_end_matches('/'));
        }
        let client = builder
            .build()
            .map_err(|e| classify_stripe("build client", e))?;
        Ok(Self {
            client: TracedStripe::new(client, Tracer::global()),
            product_plans: PlanCache::default(),
        })
    }

    /// A product's metadata, read once per product.
    async fn product_metadata(&self, product_id: &str) -> Result<HashMap<String, String>> {
        if let Some(metadata) = self.product_plans.lock().await.get(product_id) {
            return Ok(metadata.clone());
        }
        // A product Stripe no longer has names no plan and no template: retrying cannot help.
        let metadata = match RetrieveProduct::new(product_id).send(&self.client).await {
            Ok(product) => product.metadata,
            Err(StripeError::Stripe(_, 404)) => HashMap::new(),
            Err(e) => return Err(classify_stripe("RetrieveProduct", e)),
        };
        self.product_plans
            .lock()
            .await
            .insert(product_id.to_owned(), metadata.clone());
        Ok(metadata)
    }

    async fn cached_product_plan(&self, product_id: &str) -> Result<Option<PlanName>> {
        Ok(plan_of(&self.product_metadata(product_id).await?))
    }

    /// The plan of a price: its own metadata, else its product's.
    async fn price_plan(&self, price: &Price) -> Result<Option<PlanName>> {
        if let Some(plan) = plan_of(&price.metadata) {
            return Ok(Some(plan));
        }
        match &price.product {
            Expandable::Object(product) => Ok(plan_of(&product.metadata)),
            Expandable::Id(id) => self.cached_product_plan(id.as_str()).await,
        }
    }

    async fn to_subscription_state(&self, subscription: Subscription) -> Result<SubscriptionState> {
        let mut items = Vec::with_capacity(subscription.items.data.len());
        for item in &subscription.items.data {
            items.push(SubscriptionItemState {
                price_id: Some(item.price.id.to_string()),
                product_id: Some(item.price.product.id().to_string()),
                plan: self.price_plan(&item.price).await?,
                meter: item
                    .price
                    .recurring
                    .as_ref()
                    .and_then(|recurring| recurring.meter.clone()),
            });
        }
        Ok(SubscriptionState {
            id: subscription.id.to_string(),
            customer_id: subscription.customer.id().to_string(),
            status: subscription
                .status
                .as_str()
                .parse()
                .unwrap_or_else(|never| match never {}),
            items,
            current_period_end: subscription
                .items
                .data
                .iter()
                .map(|item| item.current_period_end)
                .max(),
            current_period_start: subscription
                .items
                .data
                .iter()
                .map(|item| item.current_period_start)
                .max(),
            cancel_at_period_end: subscription.cancel_at_period_end,
            past_due_since: None,
            created: subscription.created,
            metadata: subscription.metadata.into_iter().collect(),
        })
    }

    async fn search(&self, query: String) -> Result<Vec<StripeCustomer>> {
        let found: Vec<Customer> = SearchCustomer::new(query)
            .limit(100)
            .paginate()
            .stream(&self.client)
            .try_collect()
            .await
            .map_err(|e| classify_stripe("SearchCustomers", e))?;
        found.into_iter().map(to_domain).collect()
    }
}

/// Price metadata naming the lookup key of the metered price sold with it.
pub const USAGE_LOOKUP_KEY_METADATA: &str = "usage_lookup_key";

pub use crate::stack_templates::STACK_TEMPLATE_METADATA;

fn plan_of(metadata: &HashMap<String, String>) -> Option<PlanName> {
    metadata
        .get("plan")
        .and_then(|plan| PlanName::parse(plan.as_str()))
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

    async fn delete_customer(&self, customer_id: &CustomerId) -> Result<()> {
        match DeleteCustomer::new(customer_id.as_str())
            .send(&self.client)
            .await
        {
            Ok(_) => Ok(()),
            Err(StripeError::Stripe(_, 404)) => Ok(()),
            Err(e) => Err(classify_stripe("DeleteCustomer", e)),
        }
    }

    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionState>> {
        match RetrieveSubscription::new(id).send(&self.client).await {
            Ok(subscription) => Ok(Some(self.to_subscription_state(subscription).await?)),
            Err(StripeError::Stripe(_, 404)) => Ok(None),
            Err(e) => Err(classify_stripe("RetrieveSubscription", e)),
        }
    }

    async fn product_plan(&self, product_id: &str) -> Result<Option<PlanName>> {
        self.cached_product_plan(product_id).await
    }

    async fn payment_intent_customer(&self, payment_intent_id: &str) -> Result<Option<String>> {
        // A plain GET: the payment_intent request types of async-stripe-core are a large build
        // for one read.
        let path = format!("/payment_intents/{payment_intent_id}");
        match RequestBuilder::new(StripeMethod::Get, path)
            .customize::<PaymentIntent>()
            .send(&self.client)
            .await
        {
            Ok(intent) => Ok(intent.customer.map(|customer| customer.id().to_string())),
            Err(StripeError::Stripe(_, 404)) => Ok(None),
            Err(e) => Err(classify_stripe("RetrievePaymentIntent", e)),
        }
    }

    async fn checkout_line_items(
        &self,
        session_id: &str,
    ) -> Result<Vec<crate::ports::CheckoutLineItem>> {
        let items: Vec<_> = ListLineItemsCheckoutSession::new(session_id)
            .limit(100)
            .paginate()
            .stream(&self.client)
            .try_collect()
            .await
            .map_err(|e| classify_stripe("ListCheckoutLineItems", e))?;
        Ok(items
            .into_iter()
            .map(|item| crate::ports::CheckoutLineItem {
                price_id: item.price.as_ref().map(|price| price.id.to_string()),
                product_id: item
                    .price
                    .as_ref()
                    .map(|price| price.product.id().to_string()),
                quantity: item.quantity.map(|quantity| quantity as i64),
                amount_total: Some(item.amount_total),
                currency: Some(item.currency.to_string()),
            })
            .collect())
    }

    async fn product_stack_template(&self, product_id: &str) -> Result<Option<String>> {
        Ok(crate::stack_templates::named_template(
            self.product_metadata(product_id)
                .await?
                .get(STACK_TEMPLATE_METADATA),
        ))
    }

    async fn subscriptions_of(&self, customer_id: &CustomerId) -> Result<Vec<SubscriptionState>> {
        let listed: Vec<Subscription> = ListSubscription::new()
            .customer(customer_id.as_str())
            .status(ListSubscriptionStatus::All)
            .limit(100)
            .paginate()
            .stream(&self.client)
            .try_collect()
            .await
            .map_err(|e| classify_stripe("ListSubscriptions", e))?;
        let mut subscriptions = Vec::with_capacity(listed.len());
        for subscription in listed {
            subscriptions.push(self.to_subscription_state(subscription).await?);
        }
        Ok(subscriptions)
    }
}

#[async_trait]
impl Checkout for StripeBilling {
    async fn price_by_lookup_key(&self, lookup_key: &str) -> Result<Option<PriceInfo>> {
        let page = ListPrice::new()
            .lookup_keys(vec![lookup_key.to_owned()])
            .active(true)
            .expand(vec!["data.product".to_owned()])
            .limit(1)
            .send(&self.client)
            .await
            .map_err(|e| classify_stripe("ListPrices", e))?;
        let Some(price) = page.data.into_iter().next() else {
            return Ok(None);
        };
        let plan = self.price_plan(&price).await?;
        Ok(Some(PriceInfo {
            id: price.id.to_string(),
            lookup_key: price.lookup_key.clone(),
            active: price.active,
            recurring: price.recurring.is_some(),
            trial_period_days: price.recurring.as_ref().and_then(|r| r.trial_period_days),
            plan,
            metered: price
                .recurring
                .as_ref()
                .is_some_and(|r| r.usage_type == stripe_shared::RecurringUsageType::Metered),
            usage_add_on: price.metadata.get(USAGE_LOOKUP_KEY_METADATA).cloned(),
        }))
    }

    async fn create_session(&self, session: &NewCheckoutSession) -> Result<CreatedSession> {
        let key = IdempotencyKey::new(&session.idempotency_key)
            .map_err(|e| Error::upstream(Upstream::Stripe, "CreateCheckoutSession", false, e))?;
        let metadata: HashMap<String, String> = session.metadata.clone().into_iter().collect();
        let mut line_item = CreateCheckoutSessionLineItems::new();
        line_item.price = Some(session.price_id.clone());
        line_item.quantity = session.quantity;
        let mut line_items = vec![line_item];
        for price_id in &session.metered_add_ons {
            let mut add_on = CreateCheckoutSessionLineItems::new();
            add_on.price = Some(price_id.clone());
            line_items.push(add_on);
        }
        let mut request = CreateCheckoutSession::new()
            .customer(session.customer_id.as_str())
            .client_reference_id(session.client_reference_id.clone())
            .line_items(line_items)
            .metadata(metadata.clone())
            .success_url(session.success_url.clone())
            .cancel_url(session.cancel_url.clone());
        request = match session.mode {
            CheckoutMode::Subscription => {
                let mut data = CreateCheckoutSessionSubscriptionData::new();
                data.metadata = Some(metadata);
                data.trial_period_days = session.trial_period_days;
                request
                    .mode(CheckoutSessionMode::Subscription)
                    .subscription_data(data)
            }
            CheckoutMode::Payment => request.mode(CheckoutSessionMode::Payment),
        };
        if let Some(code) = &session.promotion_code {
            let mut discount = CreateCheckoutSessionDiscounts::new();
            discount.promotion_code = Some(code.clone());
            request = request.discounts(vec![discount]);
        } else if session.allow_promotion_codes {
            request = request.allow_promotion_codes(true);
        }
        if let Some(locale) = &session.locale {
            request = request.locale(
                locale
                    .parse::<stripe_shared::CheckoutSessionLocale>()
                    .unwrap_or_else(|never| match never {}),
            );
        }
        if session.billing_address_required {
            request = request
                .billing_address_collection(CheckoutSessionBillingAddressCollection::Required);
        }
        if session.automatic_tax {
            request = request.automatic_tax(CreateCheckoutSessionAutomaticTax::new(true));
        }
        let created = request
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&self.client)
            .await
            .map_err(|e| classify_stripe_input("CreateCheckoutSession", e))?;
        let url = created.url.ok_or_else(|| Error::InvalidData {
            service: Upstream::Stripe,
            detail: "checkout session without url".into(),
        })?;
        Ok(CreatedSession {
            id: created.id.to_string(),
            url,
        })
    }

    async fn session(&self, session_id: &str) -> Result<Option<CheckoutSessionInfo>> {
        match RetrieveCheckoutSession::new(session_id)
            .send(&self.client)
            .await
        {
            Ok(session) => Ok(Some(CheckoutSessionInfo {
                id: session.id.to_string(),
                customer_id: session.customer.as_ref().map(|c| c.id().to_string()),
                client_reference_id: session.client_reference_id,
                payment_status: session.payment_status.as_str().to_owned(),
                status: session.status.map(|status| status.as_str().to_owned()),
            })),
            Err(StripeError::Stripe(_, 404)) => Ok(None),
            Err(e) => Err(classify_stripe("RetrieveCheckoutSession", e)),
        }
    }

    async fn create_portal_session(&self, session: &NewPortalSession) -> Result<String> {
        let mut request = CreateBillingPortalSession::new()
            .customer(session.customer_id.as_str())
            .return_url(session.return_url.clone());
        if let (Some(flow), Some(subscription)) = (session.flow, &session.subscription_id) {
            let data = match flow {
                PortalFlow::Cancel => {
                    let mut data = CreateBillingPortalSessionFlowData::new(
                        CreateBillingPortalSessionFlowDataType::SubscriptionCancel,
                    );
                    data.subscription_cancel = Some(
                        CreateBillingPortalSessionFlowDataSubscriptionCancel::new(subscription),
                    );
                    data
                }
                PortalFlow::Update => {
                    let mut data = CreateBillingPortalSessionFlowData::new(
                        CreateBillingPortalSessionFlowDataType::SubscriptionUpdate,
                    );
                    data.subscription_update = Some(
                        CreateBillingPortalSessionFlowDataSubscriptionUpdate::new(subscription),
                    );
                    data
                }
            };
            request = request.flow_data(data);
        }
        let created = request
            .send(&self.client)
            .await
            .map_err(|e| classify_stripe_input("CreateBillingPortalSession", e))?;
        Ok(created.url)
    }
}

/// `GET /v1/events` parameters, as Stripe spells them (`created[gte]`, `types[0]`, ...).
#[derive(serde::Serialize)]
struct ListEventsParams<'a> {
    created: CreatedRange,
    types: &'a [&'a str],
    limit: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    starting_after: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct CreatedRange {
    gte: i64,
    lte: i64,
}

#[async_trait]
impl EventFeed for StripeBilling {
    async fn events_page(&self, query: &EventsQuery<'_>) -> Result<EventsPage> {
        // Untyped: each event is handed on as JSON, to be read like a delivery's body (the
        // typed event of async-stripe would parse every object type there is).
        let params = ListEventsParams {
            created: CreatedRange {
                gte: query.created_gte,
                lte: query.created_lte,
            },
            types: query.types,
            limit: 100,
            starting_after: query.starting_after,
        };
        let list = RequestBuilder::new(StripeMethod::Get, "/events")
            .query(&params)
            .customize::<miniserde::json::Value>()
            .send(&self.client)
            .await
            .map_err(|e| classify_stripe("ListEvents", e))?;
        events_page_of(&list)
    }
}

/// The events of a `list` object, each with its id, `created` and JSON.
fn events_page_of(list: &miniserde::json::Value) -> Result<EventsPage> {
    use miniserde::json::{Number, Value};
    let (data, has_more) = list_data("ListEvents", list)?;
    let events = data
        .into_iter()
        .map(|(id, fields, event)| {
            let created = match fields.get("created") {
                Some(Value::Number(Number::U64(created))) => i64::try_from(*created).ok(),
                Some(Value::Number(Number::I64(created))) => Some(*created),
                _ => None,
            }
            .ok_or_else(|| invalid_list("ListEvents", "an event without a whole `created`"))?;
            Ok(ListedEvent {
                id,
                created,
                body: miniserde::json::to_string(event).into_bytes(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(EventsPage { events, has_more })
}

fn invalid_list(operation: &str, detail: &str) -> Error {
    Error::InvalidData {
        service: Upstream::Stripe,
        detail: format!("{operation}: {detail}"),
    }
}

type ListEntry<'a> = (
    String,
    &'a miniserde::json::Object,
    &'a miniserde::json::Value,
);

/// The objects of a `list` answer, each with its id, and whether more pages follow.
fn list_data<'a>(
    operation: &str,
    list: &'a miniserde::json::Value,
) -> Result<(Vec<ListEntry<'a>>, bool)> {
    use miniserde::json::Value;
    let Value::Object(list) = list else {
        return Err(invalid_list(operation, "the answer is not an object"));
    };
    let Some(Value::Array(data)) = list.get("data") else {
        return Err(invalid_list(operation, "no `data` array"));
    };
    let entries = data
        .iter()
        .map(|object| {
            let Value::Object(fields) = object else {
                return Err(invalid_list(operation, "an entry is not an object"));
            };
            let Some(Value::String(id)) = fields.get("id") else {
                return Err(invalid_list(operation, "an entry without `id`"));
            };
            Ok((id.clone(), fields, object))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((
        entries,
        matches!(list.get("has_more"), Some(Value::Bool(true))),
    ))
}

#[derive(serde::Serialize)]
struct ListObjectsParams<'a> {
    limit: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    starting_after: Option<&'a str>,
}

#[async_trait]
impl AccountListing for StripeBilling {
    async fn objects_page(
        &self,
        list: StripeList,
        starting_after: Option<&str>,
    ) -> Result<ObjectsPage> {
        let operation = match list {
            StripeList::Products => "ListProducts",
            StripeList::Prices => "ListPrices",
            StripeList::TaxRates => "ListTaxRates",
            StripeList::Customers => "ListCustomers",
        };
        // Untyped, like the events: each object is read by the same code as an event's.
        let answer = RequestBuilder::new(StripeMethod::Get, list.path())
            .query(&ListObjectsParams {
                limit: 100,
                starting_after,
            })
            .customize::<miniserde::json::Value>()
            .send(&self.client)
            .await
            .map_err(|e| classify_stripe(operation, e))?;
        let (data, has_more) = list_data(operation, &answer)?;
        Ok(ObjectsPage {
            objects: data
                .into_iter()
                .map(|(id, _, object)| ListedObject {
                    id,
                    body: miniserde::json::to_string(object).into_bytes(),
                })
                .collect(),
            has_more,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(resource: &str) -> serde_json::Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/webhook/stripe-openapi/fixtures3-subset.json"
        );
        let all: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        all["resources"][resource].clone()
    }

    /// A customer's subscriptions are read to the last page: no cap at one page of 100.
    /// Our Stripe adapter pointed at a local test server.
    fn stripe_at(url: String) -> StripeBilling {
        let config = StripeConfig {
            secret_key: crate::config::SecretSource::Plain(SecretString::from("sk_test_x")),
            api_base: Some(url),
            timeout: std::time::Duration::from_secs(5),
        };
        StripeBilling::new(&config, &SecretString::from("sk_test_x")).unwrap()
    }

    /// Our adapter over a local server answering every request with `list`; the request
    /// target it saw last.
    async fn serving_list(
        list: String,
    ) -> (StripeBilling, std::sync::Arc<std::sync::Mutex<String>>) {
        use crate::adapters::test_server::{Answer, serve};
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let target_seen = seen.clone();
        let (url, _) = serve(move |_, _, target| {
            *target_seen.lock().unwrap() = target.to_owned();
            Answer::json("200 OK", list.clone())
        })
        .await;
        (stripe_at(url), seen)
    }

    #[tokio::test]
    async fn a_page_of_events_should_be_asked_in_stripes_spelling_and_kept_as_json() {
        let event = serde_json::json!({
            "id": "evt_1", "object": "event", "type": "customer.subscription.updated",
            "created": 1_700_000_000u64, "livemode": false, "api_version": "2025-10-29.clover",
            "data": {"object": {"id": "sub_1", "object": "subscription", "quantity": 1.5}}
        });
        let list = serde_json::json!({"object": "list", "url": "/v1/events", "has_more": true, "data": [event.clone()]})
            .to_string();
        let (stripe, seen) = serving_list(list).await;
        let page = stripe
            .events_page(&EventsQuery {
                created_gte: 10,
                created_lte: 20,
                types: &["invoice.paid", "customer.subscription.updated"],
                starting_after: Some("evt_0"),
            })
            .await
            .unwrap();
        let target = seen.lock().unwrap().clone();
        let (path, query) = target.split_once('?').unwrap();
        assert_eq!(path, "/v1/events");
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        for (name, value) in [
            ("created[gte]", "10"),
            ("created[lte]", "20"),
            ("types[0]", "invoice.paid"),
            ("types[1]", "customer.subscription.updated"),
            ("limit", "100"),
            ("starting_after", "evt_0"),
        ] {
            assert!(
                pairs.contains(&(name.to_owned(), value.to_owned())),
                "{name}={value} in {pairs:?}"
            );
        }
        assert!(page.has_more);
        assert_eq!(page.events.len(), 1);
        assert_eq!(
            (page.events[0].id.as_str(), page.events[0].created),
            ("evt_1", 1_700_000_000)
        );
        let body: serde_json::Value = serde_json::from_slice(&page.events[0].body).unwrap();
        assert_eq!(body, event, "the event's JSON is handed on unchanged");
    }

    #[tokio::test]
    async fn a_page_of_prices_should_be_asked_from_its_list_and_read_with_the_event_readers() {
        let price = fixture("price");
        let list = serde_json::json!({"object": "list", "url": "/v1/prices", "has_more": false, "data": [price.clone()]})
            .to_string();
        let (stripe, seen) = serving_list(list).await;
        let page = stripe
            .objects_page(StripeList::Prices, Some("price_0"))
            .await
            .unwrap();
        let target = seen.lock().unwrap().clone();
        assert_eq!(target, "/v1/prices?limit=100&starting_after=price_0");
        assert!(!page.has_more);
        assert_eq!(page.objects[0].id, price["id"].as_str().unwrap());
        let read = crate::webhook::event::read_object(&page.objects[0].body).unwrap();
        assert_eq!(read.id(), price["id"].as_str());
        assert!(matches!(read, crate::webhook::event::EventObject::Price(_)));
    }

    #[tokio::test]
    async fn subscriptions_of_a_customer_should_be_read_to_the_last_page() {
        use crate::adapters::test_server::{Answer, serve};
        let subscription = |id: &str| {
            let mut subscription = fixture("subscription");
            subscription["id"] = serde_json::json!(id);
            subscription
        };
        let page = |data: serde_json::Value, has_more: bool| {
            serde_json::json!({"object": "list", "url": "/v1/subscriptions", "has_more": has_more, "data": data})
                .to_string()
        };
        let first = page(serde_json::json!([subscription("sub_page1")]), true);
        let last = page(serde_json::json!([subscription("sub_page2")]), false);
        let product = fixture("product").to_string();
        let (url, requests) = serve(move |_, _, target| {
            if target.starts_with("/v1/products/") {
                Answer::json("200 OK", product.clone())
            } else if target.contains("starting_after=sub_page1") {
                Answer::json("200 OK", last.clone())
            } else {
                Answer::json("200 OK", first.clone())
            }
        })
        .await;
        let stripe = stripe_at(url);
        let customer = CustomerId::parse("cus_paged").unwrap();
        let ids: Vec<String> = stripe
            .subscriptions_of(&customer)
            .await
            .unwrap()
            .into_iter()
            .map(|subscription| subscription.id)
            .collect();
        assert_eq!(ids, ["sub_page1", "sub_page2"]);
        assert!(requests.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    }

    #[test]
    fn our_checkout_locales_should_be_exactly_stripes() {
        use stripe_shared::CheckoutSessionLocale;
        for locale in crate::inputs::CHECKOUT_LOCALES {
            let Ok(parsed) = locale.parse::<CheckoutSessionLocale>();
            assert!(
                !matches!(parsed, CheckoutSessionLocale::Unknown(_)),
                "{locale} is not one of async-stripe's"
            );
            assert_eq!(parsed.as_str(), *locale);
        }
        let Ok(unknown) = "en-US".parse::<CheckoutSessionLocale>();
        assert!(matches!(unknown, CheckoutSessionLocale::Unknown(_)));
    }

    #[test]
    fn an_invalid_request_on_a_session_should_be_the_callers_mistake_with_param_and_code() {
        let api = stripe::ApiErrors {
            advice_code: None,
            charge: None,
            code: Some("resource_missing".parse().unwrap()),
            decline_code: None,
            doc_url: None,
            message: Some("No such promotion code: 'promo_secret'".into()),
            network_advice_code: None,
            network_decline_code: None,
            param: Some("discounts[0][promotion_code]".into()),
            payment_intent: None,
            payment_method: None,
            payment_method_type: None,
            request_log_url: None,
            setup_intent: None,
            source: None,
            type_: stripe::ApiErrorsType::InvalidRequestError,
        };
        let rejected = classify_stripe_input(
            "CreateCheckoutSession",
            StripeError::Stripe(Box::new(api.clone()), 400),
        );
        let Error::Rejected { param, code, .. } = &rejected else {
            panic!("expected a rejection, got {rejected:?}");
        };
        assert_eq!(param.as_deref(), Some("discounts[0][promotion_code]"));
        assert_eq!(code.as_deref(), Some("resource_missing"));
        assert!(!rejected.to_string().contains("promo_secret"));
        // Our key or Stripe down: not the caller's mistake.
        for status in [401, 429, 500] {
            let failure = classify_stripe_input(
                "CreateCheckoutSession",
                StripeError::Stripe(Box::new(api.clone()), status),
            );
            assert!(matches!(failure, Error::Upstream { .. }), "{status}");
        }
        let timeout = classify_stripe_input("CreateCheckoutSession", StripeError::Timeout);
        assert!(timeout.is_retryable());
    }

    #[test]
    fn search_literal_should_escape_quotes() {
        assert_eq!(search_literal("o'hara@x.io"), r"'o\'hara@x.io'");
        assert_eq!(search_literal(r"a\b"), r"'a\\b'");
    }
}
