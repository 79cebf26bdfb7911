//! The DynamoDB adapter against the emulator, where the in-memory fake cannot speak for it:
//! the store contract (claims, leases, newer-only writes and their ties, links, checkout
//! completion) that billing-core's tests also run against the fake.

use billing_core::adapters::dynamo::DynamoStore;
use integration_tests::*;

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn the_dynamodb_store_should_keep_the_store_contract() {
    let env = LocalEnv::from_env();
    let store = DynamoStore::from_sdk(&env.sdk().await, &env.table_name);
    billing_core::store_contract::run_all(&store, &unique("contract")).await;
}
