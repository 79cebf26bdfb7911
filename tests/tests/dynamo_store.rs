//! The DynamoDB adapter against the emulator, where the in-memory fake cannot speak for it:
//! the freshness answers of versioned writes and the provisioning lease.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use billing_core::adapters::dynamo::DynamoStore;
use billing_core::domain::CustomerId;
use billing_core::plans::{PlanName, SubscriptionState, SubscriptionStatus};
use billing_core::ports::{Freshness, ProvisioningLeases, SyncStore, Versioned};
use integration_tests::*;

fn subscription(id: &str, status: SubscriptionStatus) -> SubscriptionState {
    SubscriptionState {
        id: id.into(),
        customer_id: unique("cus_store"),
        status,
        plan: PlanName::parse("pro"),
        price_id: None,
        product_id: None,
        current_period_end: None,
        cancel_at_period_end: false,
        past_due_since: None,
        created: 10,
        metadata: Default::default(),
    }
}

fn versioned(
    state: &SubscriptionState,
    event_id: &str,
    created: i64,
) -> Versioned<SubscriptionState> {
    Versioned {
        event_created: created,
        event_id: event_id.into(),
        state: state.clone(),
    }
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn versioned_writes_should_tell_a_retry_of_the_same_event_from_an_older_one() {
    let env = LocalEnv::from_env();
    let store = DynamoStore::from_sdk(&env.sdk().await, &env.table_name);
    let state = subscription(&unique("sub_store"), SubscriptionStatus::Active);

    let first = store
        .put_subscription(&versioned(&state, "evt_2", 200), false)
        .await;
    assert_eq!(first.unwrap(), Freshness::Applied);
    // The same delivery again (it failed after the write): the caller must carry on.
    let retry = store
        .put_subscription(&versioned(&state, "evt_2", 200), false)
        .await;
    assert_eq!(retry.unwrap(), Freshness::Same);
    let older = store
        .put_subscription(&versioned(&state, "evt_1", 100), false)
        .await;
    assert_eq!(older.unwrap(), Freshness::Stale);
    let same_second = store
        .put_subscription(&versioned(&state, "evt_3", 200), false)
        .await;
    assert_eq!(same_second.unwrap(), Freshness::Tie);
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn the_provisioning_lease_should_have_one_holder_until_released_or_expired() {
    let env = LocalEnv::from_env();
    let store = DynamoStore::from_sdk(&env.sdk().await, &env.table_name);
    let user = CustomerId::parse(unique("cus_lease")).unwrap();

    assert!(store.take_lease(&user, "a", 1_000).await.unwrap());
    assert!(!store.take_lease(&user, "b", 1_001).await.unwrap());
    store.release_lease(&user, "b").await.unwrap(); // not b's: no effect
    assert!(!store.take_lease(&user, "b", 1_002).await.unwrap());
    store.release_lease(&user, "a").await.unwrap();
    assert!(store.take_lease(&user, "b", 1_003).await.unwrap());
    // b dies holding it: taken over once it has run out.
    assert!(store.take_lease(&user, "c", 1_003 + 31).await.unwrap());
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn the_dynamodb_store_should_keep_the_store_contract() {
    let env = LocalEnv::from_env();
    let store = DynamoStore::from_sdk(&env.sdk().await, &env.table_name);
    billing_core::store_contract::run_all(&store, &unique("contract")).await;
}
