//! The webhook's own work per event, without AWS: N signed `product.updated` deliveries, each
//! parsed from the API Gateway event, verified, parsed as a Stripe event, claimed, stored with
//! its freshness check and completed, against the in-memory store. `make bench` runs it under
//! `valgrind --tool=callgrind` for two values of N: the difference over the extra events is the
//! instruction count per event.
//!
//!     cargo run --release -p webhook --example core_instructions -- 1000
#![allow(clippy::unwrap_used, clippy::expect_used)]

use billing_core::domain::UserPoolId;
use billing_core::fakes::{
    FakeApiKeys, FakeDirectory, FakePorts, FakeStacks, FakeStripe, InMemoryStore,
};
use billing_core::plans::{AccessPolicy, PlanCatalog};
use billing_core::webhook::sign;
use billing_core::webhook::sync::SyncSettings;
use secrecy::SecretString;
use serde_json::json;
use webhook::Deps;
use webhook::handler::handle;

const SECRET: &str = "whsec_bench";

fn delivery(n: usize, now: i64) -> String {
    let body = json!({
        "id": format!("evt_bench_{n}"), "object": "event", "type": "product.updated",
        "created": now - 600 + n as i64, "livemode": false, "api_version": "2025-10-29.clover",
        "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "data": {"object": {"id": format!("prod_bench_{}", n % 50), "object": "product",
            "name": "Pro", "active": true, "metadata": {"plan": "pro"},
            "created": 1763700000, "updated": now}}
    })
    .to_string();
    let signature = sign(body.as_bytes(), &SecretString::from(SECRET), now);
    json!({
        "version": "2.0", "routeKey": "POST /stripe/webhook", "rawPath": "/stripe/webhook",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "stripe-signature": signature},
        "requestContext": {"http": {"method": "POST", "path": "/stripe/webhook",
            "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "Stripe/1.0"},
            "domainName": "api.example.com", "stage": "$default", "requestId": "r",
            "apiId": "a", "accountId": "1", "routeKey": "POST /stripe/webhook", "timeEpoch": 0},
        "body": body, "isBase64Encoded": false
    })
    .to_string()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("N: a number of events"))
        .unwrap_or(1000);
    let deps = Deps::<FakePorts> {
        store: InMemoryStore::default(),
        stripe: FakeStripe::default(),
        directory: FakeDirectory::default(),
        keys: FakeApiKeys::default(),
        stacks: FakeStacks::default(),
        settings: SyncSettings {
            plans: PlanCatalog::parse("free=up_free,pro=up_pro").unwrap(),
            policy: AccessPolicy::parse("grace:7").unwrap(),
            user_pool_id: UserPoolId::parse("us-east-1_Bench").unwrap(),
            create_users: false,
            stack_templates: billing_core::stack_templates::StackTemplatePolicy::new(
                "billing-templates",
                "",
            )
            .unwrap(),
        },
        webhook_secrets: vec![SecretString::from(SECRET)],
        livemode: false,
        usage: billing_core::usage::UsageSettings {
            metered_usage_plans: vec!["up_pro".into()],
            lookback_days: 3,
            invoice_grace_secs: 3600,
        },
    };
    let now = billing_core::http::now();
    // Signed up front (Stripe's work, not ours), then handled one by one.
    let deliveries: Vec<String> = (0..count).map(|n| delivery(n, now)).collect();
    let mut applied = 0;
    for raw in &deliveries {
        let request = lambda_http::request::from_str(raw).expect("an API Gateway event");
        let response = handle(&deps, request).await.expect("a response");
        assert_eq!(response.status(), 200, "every delivery is accepted");
        applied += 1;
    }
    println!("{applied} events handled");
}
