//! The user of a customer: parked when nobody can be linked, linked from what a checkout
//! session says (provisioned once paid), created from the payer's email when allowed, and a
//! deleted customer's subscriptions ended.

use crate::common::*;
use billing_core::domain::CustomerId;
use billing_core::ports::CustomerLinks;
use billing_core::webhook::sync::Outcome;
use serde_json::json;

#[tokio::test]
async fn when_nobody_is_linked_to_the_customer_should_park_the_event() {
    let fakes = fakes();
    let outcome = apply(
        &fakes,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await;
    assert_eq!(outcome.unwrap(), Outcome::Unmapped);
    assert_eq!(
        fakes.store.unmapped(),
        [(CUSTOMER.to_owned(), "evt_1".to_owned())]
    );
}

#[tokio::test]
async fn when_checkout_names_the_user_should_link_and_provision_once_paid() {
    let fakes = fakes();
    fakes
        .directory
        .add_user("alice", SUB, Some("alice@example.com"));
    // The subscription event came first: parked, and stored.
    apply(
        &fakes,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await
    .unwrap();
    let outcome = apply(
        &fakes,
        &checkout_completed("evt_2", 11, "paid", Some(SUB), "alice@example.com"),
    )
    .await;
    assert_eq!(outcome.unwrap(), Outcome::Applied);
    let linked = fakes
        .store
        .user_of_customer(&CustomerId::parse(CUSTOMER).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.sub.as_str(), SUB);
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    assert_eq!(
        fakes
            .directory
            .customer_id_of(&link().pool_id, &link().username)
            .unwrap()
            .as_str(),
        CUSTOMER
    );
}

#[tokio::test]
async fn when_checkout_is_unpaid_should_link_but_not_provision() {
    let fakes = fakes();
    fakes
        .directory
        .add_user("alice", SUB, Some("alice@example.com"));
    apply(
        &fakes,
        &checkout_completed("evt_2", 11, "unpaid", Some(SUB), "alice@example.com"),
    )
    .await
    .unwrap();
    assert!(
        fakes
            .store
            .user_of_customer(&CustomerId::parse(CUSTOMER).unwrap())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(plan(&fakes), None);
    assert!(fakes.keys.keys().is_empty());
}

/// An e-mail links a payer's customer only to a confirmed user who verified that address:
/// someone who signs up with a payer's address and never verifies it captures nothing.
#[tokio::test]
async fn when_the_only_user_with_the_payers_email_never_verified_it_should_not_link() {
    let fakes = fakes();
    fakes
        .directory
        .add_unverified_user("mallory", "sub-mallory", "payer@example.com");
    apply(
        &fakes,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await
    .unwrap();
    let outcome = apply(
        &fakes,
        &checkout_completed("evt_2", 11, "paid", None, "payer@example.com"),
    )
    .await;
    assert_eq!(outcome.unwrap(), Outcome::Unmapped);
    let customer = CustomerId::parse(CUSTOMER).unwrap();
    assert!(
        fakes
            .store
            .user_of_customer(&customer)
            .await
            .unwrap()
            .is_none()
    );
    assert!(fakes.keys.keys().is_empty());

    // Once a confirmed user has verified the address, the next event links that user.
    fakes
        .directory
        .add_user("payer", "sub-payer", Some("payer@example.com"));
    let outcome = apply(
        &fakes,
        &checkout_completed("evt_3", 12, "paid", None, "payer@example.com"),
    )
    .await;
    assert_eq!(outcome.unwrap(), Outcome::Applied);
    let linked = fakes
        .store
        .user_of_customer(&customer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.sub.as_str(), "sub-payer");
}

#[tokio::test]
async fn when_a_payment_comes_first_and_creation_is_allowed_should_create_the_user() {
    let fakes = fakes_with("grace:7", "free=up_free,pro=up_pro", true);
    apply(
        &fakes,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await
    .unwrap();
    let outcome = apply(
        &fakes,
        &checkout_completed("evt_2", 11, "paid", None, "payer@example.com"),
    )
    .await;
    assert_eq!(outcome.unwrap(), Outcome::Applied);
    assert_eq!(fakes.directory.user_count(), 1);
    let linked = fakes
        .store
        .user_of_customer(&CustomerId::parse(CUSTOMER).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.username.as_str(), "payer@example.com");
    assert_eq!(fakes.keys.keys().len(), 1);
}

#[tokio::test]
async fn when_the_customer_is_deleted_should_end_its_subscriptions() {
    let fakes = linked_fakes().await;
    apply(
        &fakes,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await
    .unwrap();
    let deleted = event(
        "evt_2",
        "customer.deleted",
        20,
        json!({"id": CUSTOMER, "object": "customer", "deleted": true}),
    );
    apply(&fakes, &deleted).await.unwrap();
    assert_eq!(plan(&fakes).as_deref(), Some("free"));
    assert_eq!(
        fakes.store.stored_subscriptions()[0].status.as_str(),
        "canceled"
    );
}
