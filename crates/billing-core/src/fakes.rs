//! In-memory fakes of the ports, for handler tests (feature `test-util`).
//!
//! Each fake counts its calls and can be switched to fail with a retryable upstream error, so a
//! test can break Stripe, DynamoDB or Cognito on purpose.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;

use crate::checkout::{
    CheckoutRecord, CheckoutSessionInfo, CreatedSession, NewCheckoutSession, NewPortalSession,
    PriceInfo,
};
use crate::domain::{
    CustomerId, CustomerLink, Email, NewCustomer, StripeCustomer, UserPoolId, UserSub, Username,
    customer_metadata,
};
use crate::error::{Error, Result, Upstream};
use crate::plans::{PlanName, SubscriptionState};
use crate::ports::{ApiKey, ApiKeys, Billing, Checkout, CheckoutRecords, CustomerLinks, Directory};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn outage(service: Upstream, operation: &'static str) -> Error {
    Error::upstream(service, operation, true, "injected outage")
}

#[derive(Debug, Default)]
struct LinkTables {
    by_user: HashMap<UserSub, CustomerLink>,
    by_customer: HashMap<CustomerId, UserSub>,
    checkouts: HashMap<String, CheckoutRecord>,
}

#[derive(Debug, Default)]
pub struct InMemoryStore {
    tables: Mutex<LinkTables>,
    pub failing: AtomicBool,
    pub writes: AtomicUsize,
}

impl InMemoryStore {
    pub fn user_of_customer(&self, customer_id: &CustomerId) -> Option<UserSub> {
        lock(&self.tables).by_customer.get(customer_id).cloned()
    }

    pub fn link_count(&self) -> usize {
        lock(&self.tables).by_user.len()
    }

    pub fn checkout_record(&self, session_id: &str) -> Option<CheckoutRecord> {
        lock(&self.tables).checkouts.get(session_id).cloned()
    }

    pub fn checkout_count(&self) -> usize {
        lock(&self.tables).checkouts.len()
    }

    fn enter(&self, operation: &'static str) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::DynamoDb, operation));
        }
        Ok(())
    }
}

#[async_trait]
impl CheckoutRecords for InMemoryStore {
    async fn put(&self, record: &CheckoutRecord) -> Result<()> {
        self.enter("PutItem")?;
        let mut tables = lock(&self.tables);
        if tables.checkouts.contains_key(&record.session_id) {
            return Err(Error::ConditionalCheckFailed);
        }
        tables
            .checkouts
            .insert(record.session_id.clone(), record.clone());
        Ok(())
    }

    async fn get(&self, session_id: &str) -> Result<Option<CheckoutRecord>> {
        self.enter("GetItem")?;
        Ok(lock(&self.tables).checkouts.get(session_id).cloned())
    }

    async fn mark_completed(&self, session_id: &str) -> Result<bool> {
        self.enter("UpdateItem")?;
        match lock(&self.tables).checkouts.get_mut(session_id) {
            Some(record) if !record.completed => {
                record.completed = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_for_user(&self, sub: &UserSub) -> Result<()> {
        self.enter("Query")?;
        lock(&self.tables)
            .checkouts
            .retain(|_, record| &record.sub != sub);
        Ok(())
    }
}

#[async_trait]
impl CustomerLinks for InMemoryStore {
    async fn customer_of_user(&self, sub: &UserSub) -> Result<Option<CustomerLink>> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::DynamoDb, "GetItem"));
        }
        Ok(lock(&self.tables).by_user.get(sub).cloned())
    }

    async fn link(&self, link: &CustomerLink) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::DynamoDb, "TransactWriteItems"));
        }
        let mut tables = lock(&self.tables);
        if tables.by_user.contains_key(&link.sub)
            || tables.by_customer.contains_key(&link.customer_id)
        {
            return Err(Error::ConditionalCheckFailed);
        }
        tables.by_user.insert(link.sub.clone(), link.clone());
        tables
            .by_customer
            .insert(link.customer_id.clone(), link.sub.clone());
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn unlink(&self, link: &CustomerLink) -> Result<()> {
        self.enter("TransactWriteItems")?;
        let mut tables = lock(&self.tables);
        tables.by_user.remove(&link.sub);
        tables.by_customer.remove(&link.customer_id);
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct FakeCustomer {
    pub id: CustomerId,
    pub name: String,
    pub email: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub created: i64,
}

#[derive(Debug, Default)]
struct StripeState {
    customers: Vec<FakeCustomer>,
    by_idempotency_key: HashMap<String, CustomerId>,
    prices: Vec<PriceInfo>,
    sessions: Vec<(NewCheckoutSession, CheckoutSessionInfo)>,
    sessions_by_key: HashMap<String, String>,
    subscriptions: Vec<SubscriptionState>,
    portal_sessions: Vec<NewPortalSession>,
}

/// Stripe as far as customers go, with idempotency-key replay like the real API.
#[derive(Debug, Default)]
pub struct FakeStripe {
    state: Mutex<StripeState>,
    pub failing: AtomicBool,
    pub calls: AtomicUsize,
    pub creates: AtomicUsize,
}

impl FakeStripe {
    /// A customer that already exists in Stripe (made by an earlier, interrupted run or by hand).
    pub fn insert_customer(&self, email: Option<&str>, metadata: &[(&str, &str)]) -> CustomerId {
        let mut state = lock(&self.state);
        let id = CustomerId::parse(format!("cus_fake{}", state.customers.len() + 1))
            .unwrap_or_else(|_| unreachable!("fake ids are well formed"));
        let created = state.customers.len() as i64;
        state.customers.push(FakeCustomer {
            id: id.clone(),
            name: String::new(),
            email: email.map(str::to_owned),
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            created,
        });
        id
    }

    pub fn customers(&self) -> Vec<FakeCustomer> {
        lock(&self.state).customers.clone()
    }

    pub fn add_price(&self, price: PriceInfo) {
        lock(&self.state).prices.push(price);
    }

    pub fn add_subscription(&self, subscription: SubscriptionState) {
        lock(&self.state).subscriptions.push(subscription);
    }

    /// What Checkout would do once the customer pays: the session is complete and paid, and
    /// for a recurring price an active subscription to its plan exists.
    pub fn pay_session(&self, session_id: &str, plan: Option<&str>) {
        let mut state = lock(&self.state);
        let Some((request, info)) = state
            .sessions
            .iter_mut()
            .find(|(_, info)| info.id == session_id)
        else {
            return;
        };
        info.payment_status = "paid".into();
        info.status = Some("complete".into());
        let subscription = SubscriptionState {
            id: format!("sub_{session_id}"),
            customer_id: request.customer_id.to_string(),
            status: crate::plans::SubscriptionStatus::Active,
            plan: plan.and_then(PlanName::parse),
            price_id: Some(request.price_id.clone()),
            product_id: None,
            current_period_end: Some(4_000_000_000),
            cancel_at_period_end: false,
            past_due_since: None,
            created: 1,
            metadata: request.metadata.clone(),
        };
        state.subscriptions.push(subscription);
    }

    pub fn created_sessions(&self) -> Vec<NewCheckoutSession> {
        lock(&self.state)
            .sessions
            .iter()
            .map(|(request, _)| request.clone())
            .collect()
    }

    pub fn portal_sessions(&self) -> Vec<NewPortalSession> {
        lock(&self.state).portal_sessions.clone()
    }

    fn enter(&self, operation: &'static str) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::Stripe, operation));
        }
        Ok(())
    }

    fn matching(&self, keep: impl Fn(&FakeCustomer) -> bool) -> Vec<StripeCustomer> {
        lock(&self.state)
            .customers
            .iter()
            .filter(|customer| keep(customer))
            .map(|customer| StripeCustomer {
                id: customer.id.clone(),
                created: customer.created,
                metadata: customer.metadata.clone(),
                deleted: false,
            })
            .collect()
    }
}

#[async_trait]
impl Billing for FakeStripe {
    async fn customers_by_sub(&self, sub: &UserSub) -> Result<Vec<StripeCustomer>> {
        self.enter("SearchCustomers")?;
        Ok(self.matching(|customer| {
            customer
                .metadata
                .get(customer_metadata::COGNITO_SUB)
                .map(String::as_str)
                == Some(sub.as_str())
        }))
    }

    async fn customers_by_email(&self, email: &Email) -> Result<Vec<StripeCustomer>> {
        self.enter("SearchCustomers")?;
        Ok(self.matching(|customer| customer.email.as_deref() == Some(email.as_str())))
    }

    async fn create_customer(&self, new: &NewCustomer) -> Result<CustomerId> {
        self.enter("CreateCustomer")?;
        let mut state = lock(&self.state);
        if let Some(id) = state.by_idempotency_key.get(&new.idempotency_key) {
            return Ok(id.clone());
        }
        let id = CustomerId::parse(format!("cus_fake{}", state.customers.len() + 1))
            .unwrap_or_else(|_| unreachable!("fake ids are well formed"));
        let created = state.customers.len() as i64;
        state.customers.push(FakeCustomer {
            id: id.clone(),
            name: new.name.clone(),
            email: new.email.as_ref().map(|email| email.as_str().to_owned()),
            metadata: new.metadata.clone(),
            created,
        });
        state
            .by_idempotency_key
            .insert(new.idempotency_key.clone(), id.clone());
        self.creates.fetch_add(1, Ordering::SeqCst);
        Ok(id)
    }

    async fn delete_customer(&self, customer_id: &CustomerId) -> Result<()> {
        self.enter("DeleteCustomer")?;
        let mut state = lock(&self.state);
        state
            .customers
            .retain(|customer| &customer.id != customer_id);
        state
            .subscriptions
            .retain(|subscription| subscription.customer_id != customer_id.as_str());
        Ok(())
    }

    async fn subscriptions_of(&self, customer_id: &CustomerId) -> Result<Vec<SubscriptionState>> {
        self.enter("ListSubscriptions")?;
        Ok(lock(&self.state)
            .subscriptions
            .iter()
            .filter(|subscription| subscription.customer_id == customer_id.as_str())
            .cloned()
            .collect())
    }
}

#[async_trait]
impl Checkout for FakeStripe {
    async fn price_by_lookup_key(&self, lookup_key: &str) -> Result<Option<PriceInfo>> {
        self.enter("ListPrices")?;
        Ok(lock(&self.state)
            .prices
            .iter()
            .find(|price| price.lookup_key.as_deref() == Some(lookup_key))
            .cloned())
    }

    async fn create_session(&self, session: &NewCheckoutSession) -> Result<CreatedSession> {
        self.enter("CreateCheckoutSession")?;
        let mut state = lock(&self.state);
        if let Some(id) = state.sessions_by_key.get(&session.idempotency_key) {
            let id = id.clone();
            return Ok(CreatedSession {
                url: format!("https://checkout.stripe.test/{id}"),
                id,
            });
        }
        let id = format!("cs_test_fake{}", state.sessions.len() + 1);
        state
            .sessions_by_key
            .insert(session.idempotency_key.clone(), id.clone());
        state.sessions.push((
            session.clone(),
            CheckoutSessionInfo {
                id: id.clone(),
                customer_id: Some(session.customer_id.to_string()),
                client_reference_id: Some(session.client_reference_id.clone()),
                payment_status: "unpaid".into(),
                status: Some("open".into()),
            },
        ));
        Ok(CreatedSession {
            url: format!("https://checkout.stripe.test/{id}"),
            id,
        })
    }

    async fn session(&self, session_id: &str) -> Result<Option<CheckoutSessionInfo>> {
        self.enter("RetrieveCheckoutSession")?;
        Ok(lock(&self.state)
            .sessions
            .iter()
            .find(|(_, info)| info.id == session_id)
            .map(|(_, info)| info.clone()))
    }

    async fn create_portal_session(&self, session: &NewPortalSession) -> Result<String> {
        self.enter("CreateBillingPortalSession")?;
        let mut state = lock(&self.state);
        state.portal_sessions.push(session.clone());
        Ok(format!(
            "https://billing.stripe.test/session/{}",
            state.portal_sessions.len()
        ))
    }
}

#[derive(Debug, Default)]
pub struct FakeDirectory {
    customer_ids: Mutex<HashMap<(UserPoolId, Username), CustomerId>>,
    plans: Mutex<HashMap<(UserPoolId, Username), PlanName>>,
    pub deleted: Mutex<Vec<Username>>,
    pub failing: AtomicBool,
    pub calls: AtomicUsize,
}

impl FakeDirectory {
    pub fn customer_id_of(&self, pool_id: &UserPoolId, username: &Username) -> Option<CustomerId> {
        lock(&self.customer_ids)
            .get(&(pool_id.clone(), username.clone()))
            .cloned()
    }

    pub fn plan_of(&self, pool_id: &UserPoolId, username: &Username) -> Option<PlanName> {
        lock(&self.plans)
            .get(&(pool_id.clone(), username.clone()))
            .cloned()
    }

    fn enter(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::Cognito, "AdminUpdateUserAttributes"));
        }
        Ok(())
    }
}

#[async_trait]
impl Directory for FakeDirectory {
    async fn set_customer_id(
        &self,
        pool_id: &UserPoolId,
        username: &Username,
        customer_id: &CustomerId,
    ) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::Cognito, "AdminUpdateUserAttributes"));
        }
        lock(&self.customer_ids).insert((pool_id.clone(), username.clone()), customer_id.clone());
        Ok(())
    }

    async fn set_plan(
        &self,
        pool_id: &UserPoolId,
        username: &Username,
        plan: &PlanName,
    ) -> Result<()> {
        self.enter()?;
        lock(&self.plans).insert((pool_id.clone(), username.clone()), plan.clone());
        Ok(())
    }

    async fn delete_user(&self, pool_id: &UserPoolId, username: &Username) -> Result<()> {
        self.enter()?;
        let key = (pool_id.clone(), username.clone());
        lock(&self.customer_ids).remove(&key);
        lock(&self.plans).remove(&key);
        lock(&self.deleted).push(username.clone());
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeKey {
    pub id: String,
    pub owner: UserSub,
    pub value: String,
    pub enabled: bool,
    pub usage_plan_ids: Vec<String>,
}

/// API Gateway keys; `throttle_next` makes that many calls fail as throttled first.
#[derive(Debug, Default)]
pub struct FakeApiKeys {
    keys: Mutex<Vec<FakeKey>>,
    pub throttle_next: AtomicUsize,
    pub failing: AtomicBool,
    pub creates: AtomicUsize,
}

impl FakeApiKeys {
    pub fn keys(&self) -> Vec<FakeKey> {
        lock(&self.keys).clone()
    }

    fn enter(&self, operation: &'static str) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::ApiGateway, operation));
        }
        let throttled = self
            .throttle_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if throttled {
            return Err(Error::upstream(
                Upstream::ApiGateway,
                operation,
                true,
                "TooManyRequestsException",
            ));
        }
        Ok(())
    }

    fn to_port(key: &FakeKey) -> ApiKey {
        ApiKey {
            id: key.id.clone(),
            value: Some(secrecy::SecretString::from(key.value.clone())),
            enabled: key.enabled,
            usage_plan_ids: key.usage_plan_ids.clone(),
        }
    }
}

#[async_trait]
impl ApiKeys for FakeApiKeys {
    async fn find(&self, owner: &UserSub) -> Result<Option<ApiKey>> {
        self.enter("GetApiKeys")?;
        Ok(lock(&self.keys)
            .iter()
            .find(|key| &key.owner == owner)
            .map(Self::to_port))
    }

    async fn create(&self, owner: &UserSub) -> Result<ApiKey> {
        self.enter("CreateApiKey")?;
        let mut keys = lock(&self.keys);
        let key = FakeKey {
            id: format!("key{}", keys.len() + 1),
            owner: owner.clone(),
            value: format!("value-of-key{}", keys.len() + 1),
            enabled: true,
            usage_plan_ids: Vec::new(),
        };
        keys.push(key.clone());
        self.creates.fetch_add(1, Ordering::SeqCst);
        Ok(Self::to_port(&key))
    }

    async fn attach_only(&self, key_id: &str, usage_plan_id: Option<&str>) -> Result<()> {
        self.enter("CreateUsagePlanKey")?;
        if let Some(key) = lock(&self.keys).iter_mut().find(|key| key.id == key_id) {
            key.usage_plan_ids = usage_plan_id.map(str::to_owned).into_iter().collect();
        }
        Ok(())
    }

    async fn set_enabled(&self, key_id: &str, enabled: bool) -> Result<()> {
        self.enter("UpdateApiKey")?;
        if let Some(key) = lock(&self.keys).iter_mut().find(|key| key.id == key_id) {
            key.enabled = enabled;
        }
        Ok(())
    }

    async fn delete(&self, key_id: &str) -> Result<()> {
        self.enter("DeleteApiKey")?;
        lock(&self.keys).retain(|key| key.id != key_id);
        Ok(())
    }
}
