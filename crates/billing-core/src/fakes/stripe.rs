//! Stripe: customers, prices, Checkout sessions and subscriptions in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{lock, outage};
use crate::domain::{CustomerId, StripeCustomer};
use crate::error::{Result, Upstream};
use crate::plans::{PlanName, SubscriptionState};
use crate::ports::{CheckoutSessionInfo, NewCheckoutSession, NewPortalSession, PriceInfo};

#[derive(Debug, Clone)]
pub struct FakeCustomer {
    pub id: CustomerId,
    pub name: String,
    pub email: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub created: i64,
}

#[derive(Debug, Default)]
pub(super) struct StripeState {
    pub(super) customers: Vec<FakeCustomer>,
    pub(super) by_idempotency_key: HashMap<String, CustomerId>,
    pub(super) prices: Vec<PriceInfo>,
    pub(super) sessions: Vec<(NewCheckoutSession, CheckoutSessionInfo)>,
    pub(super) sessions_by_key: HashMap<String, String>,
    pub(super) subscriptions: Vec<SubscriptionState>,
    pub(super) portal_sessions: Vec<NewPortalSession>,
    pub(super) product_plans: HashMap<String, PlanName>,
    pub(super) stack_templates: HashMap<String, String>,
    pub(super) payment_intent_customers: HashMap<String, String>,
    pub(super) promotion_codes: Vec<String>,
    /// Stripe's event list, oldest first.
    pub(super) events: Vec<crate::ports::ListedEvent>,
    pub(super) event_pages_listed: usize,
    /// The catalogue as Stripe lists it, oldest first.
    pub(super) listed: Vec<(crate::ports::StripeList, serde_json::Value)>,
}

/// Stripe as far as customers go, with idempotency-key replay like the real API.
#[derive(Debug, Default)]
pub struct FakeStripe {
    pub(super) state: Mutex<StripeState>,
    /// Billing meters and the meter events accepted.
    pub meters: super::FakeMeters,
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

    /// A promotion code Stripe knows (`promo_...`); others are refused at checkout.
    pub fn add_promotion_code(&self, promotion_code: &str) {
        lock(&self.state)
            .promotion_codes
            .push(promotion_code.to_owned());
    }

    /// A payment intent of this customer.
    pub fn add_payment_intent(&self, payment_intent_id: &str, customer_id: &str) {
        lock(&self.state)
            .payment_intent_customers
            .insert(payment_intent_id.to_owned(), customer_id.to_owned());
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
            items: vec![crate::plans::SubscriptionItemState {
                price_id: Some(request.price_id.clone()),
                product_id: None,
                plan: plan.and_then(PlanName::parse),
                meter: None,
            }],
            current_period_end: Some(4_000_000_000),
            current_period_start: Some(4_000_000_000 - 30 * 86_400),
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

    pub(super) fn enter(&self, operation: &'static str) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::Stripe, operation));
        }
        Ok(())
    }

    pub(super) fn matching(&self, keep: impl Fn(&FakeCustomer) -> bool) -> Vec<StripeCustomer> {
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
