//! The post-confirmation trigger with in-memory fakes, from the Cognito events in
//! events/post-confirmation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use billing_core::adapters::cognito::CUSTOMER_ID_ATTRIBUTE;
use billing_core::domain::{CustomerId, CustomerLink, UserPoolId, UserSub, Username};
use billing_core::fakes::logs::capture_json;
use billing_core::fakes::{FakeDirectory, FakeStripe, InMemoryStore};
use billing_core::ports::CustomerLinks;
use lambda_runtime::{Context, LambdaEvent};
use post_confirmation::{Deps, handle};
use serde_json::Value;

const SIGN_UP: &str = include_str!("../../../events/post-confirmation/sign-up.json");
const FORGOT_PASSWORD: &str =
    include_str!("../../../events/post-confirmation/forgot-password.json");
const NO_EMAIL: &str =
    include_str!("../../../events/post-confirmation/admin-confirm-no-email.json");
const SUB: &str = "8f1c6a2e-71b1-4a0e-9d43-5c1f4d3b2a10";

type FakeDeps = Deps<InMemoryStore, FakeStripe, FakeDirectory>;

fn deps() -> FakeDeps {
    Deps {
        links: InMemoryStore::default(),
        billing: FakeStripe::default(),
        directory: FakeDirectory::default(),
        budget: Duration::from_secs(4),
    }
}

fn event(json: &str) -> LambdaEvent<Value> {
    LambdaEvent::new(serde_json::from_str(json).unwrap(), Context::default())
}

fn pool() -> UserPoolId {
    UserPoolId::parse("us-east-1_EXAMPLE1").unwrap()
}

fn alice() -> Username {
    Username::parse("alice").unwrap()
}

/// Runs the handler with logs captured as JSON lines.
async fn handle_capturing_logs(deps: &FakeDeps, json: &str) -> (Value, String) {
    let (returned, logs) = capture_json(handle(deps, event(json))).await;
    (returned.unwrap(), logs)
}

#[tokio::test]
async fn when_confirmed_twice_should_create_one_customer() {
    let deps = deps();
    handle(&deps, event(SIGN_UP)).await.unwrap();
    handle(&deps, event(SIGN_UP)).await.unwrap();

    let customers = deps.billing.customers();
    assert_eq!(customers.len(), 1);
    assert_eq!(deps.billing.creates.load(Ordering::SeqCst), 1);
    let customer = &customers[0];
    assert_eq!(customer.name, "alice");
    assert_eq!(customer.email.as_deref(), Some("alice@example.com"));
    assert_eq!(customer.metadata["cognito_sub"], SUB);
    assert_eq!(customer.metadata["cognito_username"], "alice");
    assert_eq!(customer.metadata["user_pool_id"], "us-east-1_EXAMPLE1");
    assert_eq!(
        deps.directory.customer_id_of(&pool(), &alice()),
        Some(customer.id.clone())
    );
    assert_eq!(
        deps.links
            .sub_of_customer(&customer.id)
            .map(|s| s.to_string()),
        Some(SUB.to_owned())
    );
    assert_eq!(deps.links.link_count(), 1);
}

#[tokio::test]
async fn when_links_exist_should_create_nothing_and_not_call_stripe() {
    let deps = deps();
    let linked = CustomerId::parse("cus_linked").unwrap();
    deps.links
        .link(&CustomerLink {
            sub: UserSub::parse(SUB).unwrap(),
            customer_id: linked.clone(),
            pool_id: pool(),
            username: alice(),
        })
        .await
        .unwrap();

    handle(&deps, event(SIGN_UP)).await.unwrap();

    assert_eq!(deps.billing.calls.load(Ordering::SeqCst), 0);
    assert!(deps.billing.customers().is_empty());
    assert_eq!(deps.links.writes.load(Ordering::SeqCst), 1);
    assert_eq!(
        deps.directory.customer_id_of(&pool(), &alice()),
        Some(linked)
    );
}

#[tokio::test]
async fn when_customer_exists_in_stripe_by_metadata_should_link_it_not_create() {
    let deps = deps();
    let existing = deps
        .billing
        .insert_customer(Some("alice@example.com"), &[("cognito_sub", SUB)]);

    handle(&deps, event(SIGN_UP)).await.unwrap();

    assert_eq!(deps.billing.creates.load(Ordering::SeqCst), 0);
    assert_eq!(deps.billing.customers().len(), 1);
    assert_eq!(
        deps.links.sub_of_customer(&existing).map(|s| s.to_string()),
        Some(SUB.to_owned())
    );
    assert_eq!(
        deps.directory.customer_id_of(&pool(), &alice()),
        Some(existing)
    );
}

#[tokio::test]
async fn when_only_another_users_customer_has_the_email_should_create_a_new_one() {
    let deps = deps();
    let other = deps.billing.insert_customer(
        Some("alice@example.com"),
        &[("cognito_sub", "someone-else")],
    );

    handle(&deps, event(SIGN_UP)).await.unwrap();

    assert_eq!(deps.billing.creates.load(Ordering::SeqCst), 1);
    let linked = deps.directory.customer_id_of(&pool(), &alice()).unwrap();
    assert_ne!(linked, other);
}

/// A payer's unlinked customer is adopted by e-mail only by a user who verified the address.
#[tokio::test]
async fn when_email_is_not_verified_should_not_adopt_the_customer_with_that_email() {
    let unverified = SIGN_UP.replace(
        r#""email_verified": "true""#,
        r#""email_verified": "false""#,
    );
    assert_ne!(unverified, SIGN_UP);
    let unverified_deps = deps();
    let payers = unverified_deps
        .billing
        .insert_customer(Some("alice@example.com"), &[]);
    handle(&unverified_deps, event(&unverified)).await.unwrap();
    assert_eq!(unverified_deps.billing.creates.load(Ordering::SeqCst), 1);
    let linked = unverified_deps
        .directory
        .customer_id_of(&pool(), &alice())
        .unwrap();
    assert_ne!(linked, payers);

    let deps = deps();
    let payers = deps.billing.insert_customer(Some("alice@example.com"), &[]);
    handle(&deps, event(SIGN_UP)).await.unwrap();
    assert_eq!(
        deps.billing.creates.load(Ordering::SeqCst),
        0,
        "verified: adopted"
    );
    assert_eq!(
        deps.directory.customer_id_of(&pool(), &alice()),
        Some(payers)
    );
}

#[tokio::test]
async fn when_forgot_password_is_confirmed_should_call_nothing() {
    let deps = deps();
    let input: Value = serde_json::from_str(FORGOT_PASSWORD).unwrap();

    let returned = handle(&deps, event(FORGOT_PASSWORD)).await.unwrap();

    assert_eq!(returned, input);
    assert_eq!(deps.billing.calls.load(Ordering::SeqCst), 0);
    assert_eq!(deps.directory.calls.load(Ordering::SeqCst), 0);
    assert_eq!(deps.links.link_count(), 0);
}

#[tokio::test]
async fn when_stripe_fails_should_return_event_unchanged_and_log_the_error() {
    let deps = deps();
    deps.billing.failing.store(true, Ordering::SeqCst);
    let input: Value = serde_json::from_str(SIGN_UP).unwrap();

    let (returned, logs) = handle_capturing_logs(&deps, SIGN_UP).await;

    assert_eq!(returned, input);
    assert!(
        logs.contains("could not ensure the stripe customer"),
        "{logs}"
    );
    assert!(
        logs.contains(r#""error_kind":"upstream_retryable""#),
        "{logs}"
    );
    assert!(logs.contains("stripe SearchCustomers failed"), "{logs}");
    assert!(!logs.contains("alice@example.com"), "email leaked: {logs}");
    assert_eq!(deps.links.link_count(), 0);
    assert_eq!(deps.directory.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn when_cognito_fails_should_return_event_unchanged_and_log_the_error() {
    let deps = deps();
    deps.directory.failing.store(true, Ordering::SeqCst);
    let input: Value = serde_json::from_str(SIGN_UP).unwrap();

    let (returned, logs) = handle_capturing_logs(&deps, SIGN_UP).await;

    assert_eq!(returned, input);
    assert!(
        logs.contains("cognito AdminUpdateUserAttributes failed"),
        "{logs}"
    );
    assert!(!logs.contains("alice@example.com"), "email leaked: {logs}");
    // The customer and links are in place: a retry only has to set the attribute.
    assert_eq!(deps.links.link_count(), 1);

    deps.directory.failing.store(false, Ordering::SeqCst);
    handle(&deps, event(SIGN_UP)).await.unwrap();
    assert_eq!(deps.billing.creates.load(Ordering::SeqCst), 1);
    assert!(deps.directory.customer_id_of(&pool(), &alice()).is_some());
}

#[tokio::test]
async fn when_dynamodb_fails_should_return_event_unchanged_and_log_the_error() {
    let deps = deps();
    deps.links.failing.store(true, Ordering::SeqCst);
    let (returned, logs) = handle_capturing_logs(&deps, SIGN_UP).await;
    assert_eq!(returned, serde_json::from_str::<Value>(SIGN_UP).unwrap());
    assert!(logs.contains("dynamodb GetItem failed"), "{logs}");
}

#[tokio::test]
async fn when_user_has_no_email_should_still_create_the_customer() {
    let deps = deps();
    handle(&deps, event(NO_EMAIL)).await.unwrap();
    let customers = deps.billing.customers();
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0].email, None);
}

#[tokio::test]
async fn when_attribute_already_names_the_linked_customer_should_not_call_cognito() {
    let deps = deps();
    handle(&deps, event(SIGN_UP)).await.unwrap();
    let customer_id = deps.directory.customer_id_of(&pool(), &alice()).unwrap();
    let mut again: Value = serde_json::from_str(SIGN_UP).unwrap();
    again["request"]["userAttributes"][CUSTOMER_ID_ATTRIBUTE] =
        Value::String(customer_id.to_string());

    let calls_before = deps.directory.calls.load(Ordering::SeqCst);
    handle(&deps, LambdaEvent::new(again, Context::default()))
        .await
        .unwrap();
    assert_eq!(deps.directory.calls.load(Ordering::SeqCst), calls_before);
}

#[tokio::test]
async fn when_event_is_not_a_post_confirmation_should_return_it_untouched() {
    let deps = deps();
    let odd = serde_json::json!({"triggerSource": "PreSignUp_SignUp", "hello": 1});
    let returned = handle(&deps, LambdaEvent::new(odd.clone(), Context::default()))
        .await
        .unwrap();
    assert_eq!(returned, odd);
    assert_eq!(deps.billing.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn each_trigger_should_count_its_outcome_and_latency_as_emf() {
    use billing_core::telemetry::capture;
    let deps = deps();
    capture::start();
    handle(&deps, event(SIGN_UP)).await.unwrap();
    handle(&deps, event(SIGN_UP)).await.unwrap();
    let lines = capture::take();
    let outcomes: Vec<&str> = lines
        .iter()
        .filter(|line| line.get("TriggerOutcome").is_some())
        .filter_map(|line| line["Outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["linked", "already_linked"]);
    let directive = &lines[0]["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(
        directive["Metrics"],
        serde_json::json!([{"Name": "TriggerOutcome", "Unit": "Count"}, {"Name": "TriggerLatency", "Unit": "Milliseconds"}])
    );
}
