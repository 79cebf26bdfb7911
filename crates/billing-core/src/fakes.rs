//! In-memory fakes of the ports, for handler tests (feature `test-util`).
//!
//! Each fake counts its calls and can be switched to fail with a retryable upstream error, so a
//! test can break Stripe, DynamoDB or Cognito on purpose.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;

use crate::domain::{
    CustomerId, CustomerLink, Email, NewCustomer, StripeCustomer, UserPoolId, UserSub, Username,
    customer_metadata,
};
use crate::error::{Error, Result, Upstream};
use crate::plans::{PlanName, SubscriptionState};
use crate::ports::{
    ApiKey, ApiKeys, Billing, Checkout, CheckoutRecord, CheckoutRecords, CheckoutSessionInfo,
    CognitoUserRef, CreatedSession, CustomerLinks, Directory, Document, EventClaim, EventLog,
    Freshness, NewCheckoutSession, NewPortalSession, PriceInfo, ProvisioningLeases, StackRecord,
    StackStatus, Stacks, SyncStore, UserLookup, Versioned,
};

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
    events: HashMap<String, bool>,
    subscriptions: BTreeMap<(String, String), Versioned<SubscriptionState>>,
    documents: BTreeMap<(String, String), Versioned<Document>>,
    unmapped: Vec<(String, String)>,
    stacks: BTreeMap<(String, String), StackRecord>,
    /// customer -> (holder, until)
    leases: HashMap<CustomerId, (String, i64)>,
}

/// The ordering rule of versioned writes: newer applies, same event or older is stale, another
/// event of the same second is a tie (applied when allowed).
fn freshness(
    stored: Option<(i64, &str)>,
    created: i64,
    event_id: &str,
    allow_tie: bool,
) -> Freshness {
    match stored {
        None => Freshness::Applied,
        Some((_, stored_id)) if stored_id == event_id => Freshness::Same,
        Some((stored_created, _)) if created > stored_created => Freshness::Applied,
        Some((stored_created, stored_id)) if created == stored_created && stored_id != event_id => {
            if allow_tie {
                Freshness::Applied
            } else {
                Freshness::Tie
            }
        }
        Some((stored_created, _)) if created == stored_created && allow_tie => Freshness::Applied,
        _ => Freshness::Stale,
    }
}

#[derive(Debug, Default)]
pub struct InMemoryStore {
    tables: Mutex<LinkTables>,
    pub failing: AtomicBool,
    pub writes: AtomicUsize,
}

impl InMemoryStore {
    pub fn sub_of_customer(&self, customer_id: &CustomerId) -> Option<UserSub> {
        lock(&self.tables).by_customer.get(customer_id).cloned()
    }

    pub fn link_count(&self) -> usize {
        lock(&self.tables).by_user.len()
    }

    pub fn stored_subscriptions(&self) -> Vec<SubscriptionState> {
        lock(&self.tables)
            .subscriptions
            .values()
            .map(|versioned| versioned.state.clone())
            .collect()
    }

    pub fn document(&self, pk: &str, sk: &str) -> Option<Document> {
        lock(&self.tables)
            .documents
            .get(&(pk.to_owned(), sk.to_owned()))
            .map(|versioned| versioned.state.clone())
    }

    pub fn documents(&self) -> Vec<Document> {
        lock(&self.tables)
            .documents
            .values()
            .map(|versioned| versioned.state.clone())
            .collect()
    }

    pub fn unmapped(&self) -> Vec<(String, String)> {
        lock(&self.tables).unmapped.clone()
    }

    pub fn stacks(&self) -> Vec<StackRecord> {
        lock(&self.tables).stacks.values().cloned().collect()
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

    async fn user_of_customer(&self, customer_id: &CustomerId) -> Result<Option<CustomerLink>> {
        self.enter("GetItem")?;
        let tables = lock(&self.tables);
        Ok(tables
            .by_customer
            .get(customer_id)
            .and_then(|sub| tables.by_user.get(sub))
            .cloned())
    }

    async fn unlink(&self, link: &CustomerLink) -> Result<()> {
        self.enter("TransactWriteItems")?;
        let mut tables = lock(&self.tables);
        tables.by_user.remove(&link.sub);
        tables.by_customer.remove(&link.customer_id);
        Ok(())
    }
}

#[async_trait]
impl ProvisioningLeases for InMemoryStore {
    async fn take_lease(&self, customer: &CustomerId, holder: &str, now: i64) -> Result<bool> {
        self.enter("PutItem")?;
        let mut tables = lock(&self.tables);
        match tables.leases.get(customer) {
            Some((_, until)) if *until >= now => Ok(false),
            _ => {
                let until = now + crate::table::PROVISIONING_LEASE_SECS;
                tables
                    .leases
                    .insert(customer.clone(), (holder.to_owned(), until));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, customer: &CustomerId, holder: &str) -> Result<()> {
        self.enter("DeleteItem")?;
        let mut tables = lock(&self.tables);
        if tables
            .leases
            .get(customer)
            .is_some_and(|(held_by, _)| held_by == holder)
        {
            tables.leases.remove(customer);
        }
        Ok(())
    }
}

#[async_trait]
impl EventLog for InMemoryStore {
    async fn claim(&self, event_id: &str, _now: i64) -> Result<EventClaim> {
        self.enter("PutItem")?;
        let mut tables = lock(&self.tables);
        Ok(match tables.events.get(event_id) {
            Some(true) => EventClaim::AlreadyDone,
            Some(false) => EventClaim::InProgress,
            None => {
                tables.events.insert(event_id.to_owned(), false);
                EventClaim::Claimed
            }
        })
    }

    async fn complete(&self, event_id: &str, _now: i64) -> Result<()> {
        self.enter("PutItem")?;
        lock(&self.tables).events.insert(event_id.to_owned(), true);
        Ok(())
    }

    async fn release(&self, event_id: &str) -> Result<()> {
        // Releasing must work while the store is "down" for the test's purpose: it is what
        // lets the retry redo the event, as the lease expiry would in DynamoDB.
        let mut tables = lock(&self.tables);
        if tables.events.get(event_id) == Some(&false) {
            tables.events.remove(event_id);
        }
        Ok(())
    }
}

#[async_trait]
impl SyncStore for InMemoryStore {
    async fn put_subscription(
        &self,
        subscription: &Versioned<SubscriptionState>,
        allow_tie: bool,
    ) -> Result<Freshness> {
        self.enter("PutItem")?;
        let key = (
            subscription.state.customer_id.clone(),
            subscription.state.id.clone(),
        );
        let mut tables = lock(&self.tables);
        let stored = tables
            .subscriptions
            .get(&key)
            .map(|v| (v.event_created, v.event_id.as_str()));
        let outcome = freshness(
            stored,
            subscription.event_created,
            &subscription.event_id,
            allow_tie,
        );
        if outcome == Freshness::Applied {
            tables.subscriptions.insert(key, subscription.clone());
        }
        Ok(outcome)
    }

    async fn subscription(
        &self,
        customer_id: &CustomerId,
        id: &str,
    ) -> Result<Option<Versioned<SubscriptionState>>> {
        self.enter("GetItem")?;
        Ok(lock(&self.tables)
            .subscriptions
            .get(&(customer_id.to_string(), id.to_owned()))
            .cloned())
    }

    async fn subscriptions_of(&self, customer_id: &CustomerId) -> Result<Vec<SubscriptionState>> {
        self.enter("Query")?;
        Ok(lock(&self.tables)
            .subscriptions
            .values()
            .filter(|v| v.state.customer_id == customer_id.as_str())
            .map(|v| v.state.clone())
            .collect())
    }

    async fn put_document(&self, document: &Versioned<Document>) -> Result<Freshness> {
        self.enter("PutItem")?;
        let key = (document.state.pk.clone(), document.state.sk.clone());
        let mut tables = lock(&self.tables);
        let stored = tables
            .documents
            .get(&key)
            .map(|v| (v.event_created, v.event_id.as_str()));
        let outcome = freshness(stored, document.event_created, &document.event_id, false);
        if outcome == Freshness::Applied {
            tables.documents.insert(key, document.clone());
        }
        Ok(outcome)
    }

    async fn park_unmapped(
        &self,
        customer_id: &str,
        event_id: &str,
        _event_type: &str,
        _now: i64,
    ) -> Result<()> {
        self.enter("PutItem")?;
        lock(&self.tables)
            .unmapped
            .push((customer_id.to_owned(), event_id.to_owned()));
        Ok(())
    }

    async fn stacks_of(&self, subscription_id: &str) -> Result<Vec<StackRecord>> {
        self.enter("Query")?;
        Ok(lock(&self.tables)
            .stacks
            .values()
            .filter(|stack| stack.subscription_id == subscription_id)
            .cloned()
            .collect())
    }

    async fn stacks_in_state(&self, state: crate::ports::StackState) -> Result<Vec<StackRecord>> {
        self.enter("Query")?;
        Ok(lock(&self.tables)
            .stacks
            .values()
            .filter(|stack| stack.state == state)
            .cloned()
            .collect())
    }

    async fn put_stack(&self, stack: &StackRecord) -> Result<()> {
        self.enter("PutItem")?;
        lock(&self.tables).stacks.insert(
            (stack.subscription_id.clone(), stack.stack_name.clone()),
            stack.clone(),
        );
        Ok(())
    }
}

/// CloudFormation: stacks by name with their status; `delete` starts a deletion that the next
/// `status` reports complete.
#[derive(Debug, Default)]
pub struct FakeStacks {
    stacks: Mutex<HashMap<String, String>>,
    pub failing: AtomicBool,
    pub deletes: AtomicUsize,
    pub creates: AtomicUsize,
}

impl FakeStacks {
    pub fn add(&self, name: &str) {
        lock(&self.stacks).insert(name.to_owned(), "CREATE_COMPLETE".to_owned());
    }

    pub fn status_of(&self, name: &str) -> Option<String> {
        lock(&self.stacks).get(name).cloned()
    }
}

#[async_trait]
impl Stacks for FakeStacks {
    async fn status(&self, stack_name: &str) -> Result<StackStatus> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::CloudFormation, "DescribeStacks"));
        }
        Ok(match lock(&self.stacks).get(stack_name) {
            Some(status) => StackStatus::Exists(status.clone()),
            None => StackStatus::Gone,
        })
    }

    async fn create(
        &self,
        stack_name: &str,
        _template_url: &str,
        _parameters: &[(&str, &str)],
    ) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::CloudFormation, "CreateStack"));
        }
        self.creates.fetch_add(1, Ordering::SeqCst);
        lock(&self.stacks)
            .entry(stack_name.to_owned())
            .or_insert_with(|| "CREATE_COMPLETE".to_owned());
        Ok(())
    }

    async fn delete(&self, stack_name: &str) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::CloudFormation, "DeleteStack"));
        }
        self.deletes.fetch_add(1, Ordering::SeqCst);
        if let Some(status) = lock(&self.stacks).get_mut(stack_name) {
            *status = "DELETE_COMPLETE".to_owned();
        }
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
    product_plans: HashMap<String, PlanName>,
    stack_templates: HashMap<String, String>,
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

    pub fn add_product(&self, product_id: &str, plan: &str) {
        if let Some(plan) = PlanName::parse(plan) {
            lock(&self.state)
                .product_plans
                .insert(product_id.to_owned(), plan);
        }
    }

    /// The product's metadata names a stack template.
    pub fn set_stack_template(&self, product_id: &str, template_url: &str) {
        lock(&self.state)
            .stack_templates
            .insert(product_id.to_owned(), template_url.to_owned());
    }

    /// Replaces (or adds) the subscription as Stripe holds it now.
    pub fn set_subscription(&self, subscription: SubscriptionState) {
        let mut state = lock(&self.state);
        state.subscriptions.retain(|s| s.id != subscription.id);
        state.subscriptions.push(subscription);
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

    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionState>> {
        self.enter("RetrieveSubscription")?;
        Ok(lock(&self.state)
            .subscriptions
            .iter()
            .find(|s| s.id == id)
            .cloned())
    }

    async fn product_plan(&self, product_id: &str) -> Result<Option<PlanName>> {
        self.enter("RetrieveProduct")?;
        Ok(lock(&self.state).product_plans.get(product_id).cloned())
    }

    async fn checkout_line_items(
        &self,
        session_id: &str,
    ) -> Result<Vec<crate::webhook::CheckoutLineItem>> {
        self.enter("ListCheckoutLineItems")?;
        Ok(lock(&self.state)
            .sessions
            .iter()
            .filter(|(_, info)| info.id == session_id)
            .map(|(request, _)| crate::webhook::CheckoutLineItem {
                price_id: Some(request.price_id.clone()),
                product_id: None,
                quantity: Some(request.quantity as i64),
                amount_total: None,
                currency: None,
            })
            .collect())
    }

    async fn product_stack_template(&self, product_id: &str) -> Result<Option<String>> {
        self.enter("RetrieveProduct")?;
        Ok(lock(&self.state).stack_templates.get(product_id).cloned())
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
    users: Mutex<Vec<(CognitoUserRef, Option<String>)>>,
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

    /// A user of the pool, findable by sub and email.
    pub fn add_user(&self, username: &str, sub: &str, email: Option<&str>) {
        if let (Ok(username), Ok(sub)) = (Username::parse(username), UserSub::parse(sub)) {
            lock(&self.users).push((CognitoUserRef { username, sub }, email.map(str::to_owned)));
        }
    }

    pub fn user_count(&self) -> usize {
        lock(&self.users).len()
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
    /// Calls of `find_with_value`: only showing a key to its owner reads its value.
    pub value_reads: AtomicUsize,
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

    /// Like the adapter: a key's value only from `find_with_value`.
    fn to_port(key: &FakeKey, with_value: bool) -> ApiKey {
        ApiKey {
            id: key.id.clone(),
            value: with_value.then(|| secrecy::SecretString::from(key.value.clone())),
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
            .map(|key| Self::to_port(key, false)))
    }

    async fn find_with_value(&self, owner: &UserSub) -> Result<Option<ApiKey>> {
        self.enter("GetApiKey")?;
        self.value_reads.fetch_add(1, Ordering::SeqCst);
        Ok(lock(&self.keys)
            .iter()
            .find(|key| &key.owner == owner)
            .map(|key| Self::to_port(key, true)))
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
        Ok(Self::to_port(&key, false))
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

#[async_trait]
impl UserLookup for FakeDirectory {
    async fn user_by_sub(
        &self,
        _pool_id: &UserPoolId,
        sub: &str,
    ) -> Result<Option<CognitoUserRef>> {
        self.enter()?;
        Ok(lock(&self.users)
            .iter()
            .find(|(user, _)| user.sub.as_str() == sub)
            .map(|(user, _)| user.clone()))
    }

    async fn users_by_email(
        &self,
        _pool_id: &UserPoolId,
        email: &Email,
    ) -> Result<Vec<CognitoUserRef>> {
        self.enter()?;
        Ok(lock(&self.users)
            .iter()
            .filter(|(_, e)| e.as_deref() == Some(email.as_str()))
            .map(|(user, _)| user.clone())
            .collect())
    }

    async fn create_user(&self, _pool_id: &UserPoolId, email: &Email) -> Result<CognitoUserRef> {
        self.enter()?;
        let mut users = lock(&self.users);
        let user = CognitoUserRef {
            username: Username::parse(email.as_str()).map_err(|e| Error::InvalidData {
                service: Upstream::Cognito,
                detail: e.to_string(),
            })?,
            sub: UserSub::parse(format!("created-{}", users.len() + 1)).map_err(|e| {
                Error::InvalidData {
                    service: Upstream::Cognito,
                    detail: e.to_string(),
                }
            })?,
        };
        users.push((user.clone(), Some(email.as_str().to_owned())));
        Ok(user)
    }
}
