//! What the sync tests share: the webhook's ports in memory, Stripe events as JSON, and the
//! customer's observable state.
#![allow(dead_code)]

use billing_core::domain::{CustomerId, CustomerLink, UserPoolId, UserSub, Username};
use billing_core::fakes::{
    FakeApiKeys, FakeDirectory, FakePorts, FakeStacks, FakeStripe, InMemoryStore,
};
use billing_core::plans::{AccessPolicy, PlanCatalog, SubscriptionState};
use billing_core::ports::{CustomerLinks, StackRecord, StackState, SyncStore};
use billing_core::webhook::sync::{Outcome, SyncService, SyncSettings};
use billing_core::webhook::{EventObject, parse_event};
use serde_json::{Value, json};

pub const SUB: &str = "sub-alice";
pub const CUSTOMER: &str = "cus_alice";

/// Every port the sync uses, in memory.
#[derive(Debug)]
pub struct Fakes {
    pub store: InMemoryStore,
    pub stripe: FakeStripe,
    pub directory: FakeDirectory,
    pub keys: FakeApiKeys,
    pub stacks: FakeStacks,
    pub settings: SyncSettings,
}

impl Fakes {
    pub fn sync(&self) -> SyncService<'_, FakePorts> {
        SyncService {
            store: &self.store,
            billing: &self.stripe,
            users: &self.directory,
            keys: &self.keys,
            stacks: &self.stacks,
            settings: &self.settings,
        }
    }
}

pub fn fakes_with(policy: &str, plans: &str, create_users: bool) -> Fakes {
    let stripe = FakeStripe::default();
    stripe.add_product("prod_pro", "pro");
    stripe.add_product("prod_free", "free");
    Fakes {
        store: InMemoryStore::default(),
        stripe,
        directory: FakeDirectory::default(),
        keys: FakeApiKeys::default(),
        stacks: FakeStacks::default(),
        settings: SyncSettings {
            plans: PlanCatalog::parse(plans).unwrap(),
            policy: AccessPolicy::parse(policy).unwrap(),
            user_pool_id: UserPoolId::parse("us-east-1_Pool").unwrap(),
            create_users,
            stack_templates: billing_core::stack_templates::StackTemplatePolicy::new(
                "billing-templates",
                "",
            )
            .unwrap(),
        },
    }
}

pub fn fakes() -> Fakes {
    fakes_with("grace:7", "free=up_free,pro=up_pro", false)
}

pub fn link() -> CustomerLink {
    CustomerLink {
        sub: UserSub::parse(SUB).unwrap(),
        customer_id: CustomerId::parse(CUSTOMER).unwrap(),
        pool_id: UserPoolId::parse("us-east-1_Pool").unwrap(),
        username: Username::parse("alice").unwrap(),
    }
}

/// Alice is linked to her customer already.
pub async fn linked_fakes() -> Fakes {
    let fakes = fakes();
    fakes.store.link(&link()).await.unwrap();
    fakes
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn event(id: &str, event_type: &str, created: i64, object: Value) -> Value {
    json!({
        "id": id, "object": "event", "type": event_type, "created": created, "livemode": false,
        "api_version": "2025-10-29.clover", "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": object}
    })
}

pub fn subscription(id: &str, status: &str, product: &str) -> Value {
    json!({
        "id": id, "object": "subscription", "customer": CUSTOMER, "status": status, "created": 100,
        "cancel_at_period_end": false, "metadata": {},
        "items": {"object": "list", "data": [{
            "id": format!("si_{id}"), "object": "subscription_item", "current_period_end": 4_000_000_000u64,
            "price": {"id": format!("price_{product}"), "object": "price", "product": product, "metadata": {}}
        }]}
    })
}

/// An event of Alice's subscription `sub_1` to the pro product.
pub fn sub_event(id: &str, event_type: &str, created: i64, status: &str) -> Value {
    event(
        id,
        event_type,
        created,
        subscription("sub_1", status, "prod_pro"),
    )
}

/// `sub_1` as Stripe holds it: the subscription of `sub_event` with this status, on plan pro.
pub fn current_subscription(status: &str) -> SubscriptionState {
    let raw = sub_event("x", "customer.subscription.updated", 1, status).to_string();
    match parse_event(raw.as_bytes()).unwrap().object {
        EventObject::Subscription(mut subscription) => {
            subscription.items[0].plan = billing_core::plans::PlanName::parse("pro");
            subscription
        }
        _ => unreachable!("a subscription event"),
    }
}

pub fn checkout_completed(
    id: &str,
    created: i64,
    payment_status: &str,
    reference: Option<&str>,
    email: &str,
) -> Value {
    event(
        id,
        "checkout.session.completed",
        created,
        json!({
            "id": "cs_test_1", "object": "checkout.session", "mode": "subscription", "status": "complete",
            "payment_status": payment_status, "customer": CUSTOMER, "client_reference_id": reference,
            "customer_details": {"email": email}, "metadata": {}, "subscription": "sub_1",
            "amount_total": 1000, "currency": "usd", "created": created
        }),
    )
}

/// Applies the event as the webhook does once its delivery is verified and parsed.
pub async fn apply(fakes: &Fakes, event: &Value) -> billing_core::Result<Outcome> {
    let event = parse_event(event.to_string().as_bytes()).unwrap();
    fakes.sync().apply(&event, now()).await
}

/// Records an active stack of `sub_1`, as if an earlier event had created it.
pub async fn with_active_stack(fakes: &Fakes) {
    fakes.stacks.add("billing-sub-1");
    fakes
        .store
        .put_stack(&StackRecord {
            subscription_id: "sub_1".into(),
            stack_name: "billing-sub-1".into(),
            state: StackState::Active,
            updated_at: 0,
        })
        .await
        .unwrap();
}

/// Alice's `custom:plan_type`.
pub fn plan(fakes: &Fakes) -> Option<String> {
    fakes
        .directory
        .plan_of(&link().pool_id, &link().username)
        .map(|plan| plan.to_string())
}

/// The usage plans of Alice's key and whether it is enabled.
pub fn key_plans(fakes: &Fakes) -> (Vec<String>, bool) {
    let keys = fakes.keys.keys();
    assert!(keys.len() <= 1, "at most one key per user: {keys:?}");
    keys.first()
        .map(|key| (key.usage_plan_ids.clone(), key.enabled))
        .unwrap_or_default()
}
