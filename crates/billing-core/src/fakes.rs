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
use crate::ports::{Billing, CustomerLinks, Directory};

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
}

#[derive(Debug, Default)]
pub struct InMemoryLinks {
    tables: Mutex<LinkTables>,
    pub failing: AtomicBool,
    pub writes: AtomicUsize,
}

impl InMemoryLinks {
    pub fn user_of_customer(&self, customer_id: &CustomerId) -> Option<UserSub> {
        lock(&self.tables).by_customer.get(customer_id).cloned()
    }

    pub fn link_count(&self) -> usize {
        lock(&self.tables).by_user.len()
    }
}

#[async_trait]
impl CustomerLinks for InMemoryLinks {
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
}

#[derive(Debug, Default)]
pub struct FakeDirectory {
    customer_ids: Mutex<HashMap<(UserPoolId, Username), CustomerId>>,
    pub failing: AtomicBool,
    pub calls: AtomicUsize,
}

impl FakeDirectory {
    pub fn customer_id_of(&self, pool_id: &UserPoolId, username: &Username) -> Option<CustomerId> {
        lock(&self.customer_ids)
            .get(&(pool_id.clone(), username.clone()))
            .cloned()
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
}
