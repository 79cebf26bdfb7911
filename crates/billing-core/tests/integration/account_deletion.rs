//! DELETE /me against the webhook: the account's deletion leaves nothing about the customer,
//! the events it causes are acknowledged without being kept or parked, and a webhook delivery
//! holding the customer's provisioning lease is waited for.

use std::time::Duration;

use crate::common::*;
use billing_core::domain::{CognitoUser, CustomerId};
use billing_core::fakes::{FakeApiKeys, FakeDirectory, FakeStripe, InMemoryStore};
use billing_core::portal::PortalService;
use billing_core::ports::{DeletedCustomers, ProvisioningLeases};
use billing_core::webhook::sync::Outcome;
use serde_json::json;

fn alice() -> CognitoUser {
    let link = link();
    CognitoUser {
        pool_id: link.pool_id,
        username: link.username,
        sub: link.sub,
        email: None,
        email_verified: false,
    }
}

fn portal(
    fakes: &Fakes,
) -> PortalService<'_, InMemoryStore, FakeStripe, FakeDirectory, FakeApiKeys> {
    PortalService {
        store: &fakes.store,
        payments: &fakes.stripe,
        directory: &fakes.directory,
        keys: &fakes.keys,
        plans: &fakes.settings.plans,
        policy: &fakes.settings.policy,
        site_origin: "https://app.example.com",
    }
}

/// Alice on pro, with an invoice, a payment, a profile and a stack kept by the webhook.
async fn subscribed() -> Fakes {
    let fakes = linked_fakes().await;
    with_active_stack(&fakes).await;
    let t = now() - 100;
    apply(
        &fakes,
        &sub_event("evt_s", "customer.subscription.created", t, "active"),
    )
    .await
    .unwrap();
    for (id, event_type, object) in [
        (
            "evt_c",
            "customer.updated",
            json!({"id": CUSTOMER, "object": "customer", "email": "alice@example.com", "metadata": {}}),
        ),
        (
            "evt_i",
            "invoice.paid",
            json!({"id": "in_1", "object": "invoice", "customer": CUSTOMER, "status": "paid", "amount_paid": 1000}),
        ),
        (
            "evt_p",
            "payment_intent.succeeded",
            json!({"id": "pi_1", "object": "payment_intent", "customer": CUSTOMER, "amount": 1000, "status": "succeeded"}),
        ),
    ] {
        apply(&fakes, &event(id, event_type, t, object))
            .await
            .unwrap();
    }
    fakes
}

#[tokio::test]
async fn deleting_the_account_should_leave_nothing_and_acknowledge_the_events_it_causes() {
    let fakes = subscribed().await;
    let customer = CustomerId::parse(CUSTOMER).unwrap();
    assert!(fakes.store.items_of_customer(&customer) >= 5);
    assert_eq!(fakes.keys.keys().len(), 1);

    portal(&fakes)
        .delete_account(&alice(), now())
        .await
        .unwrap();
    assert_eq!(fakes.store.items_of_customer(&customer), 0);
    assert!(fakes.store.is_deleted_customer(&customer).await.unwrap());
    assert!(fakes.keys.keys().is_empty());

    // What Stripe sends after the customer's deletion: nothing is kept or parked, no key comes
    // back, and the subscription's stack is torn down.
    let t = now();
    for ended in [
        sub_event("evt_d1", "customer.subscription.deleted", t, "canceled"),
        event(
            "evt_d2",
            "customer.deleted",
            t,
            json!({"id": CUSTOMER, "object": "customer", "deleted": true}),
        ),
        event(
            "evt_d3",
            "invoice.voided",
            t,
            json!({"id": "in_2", "object": "invoice", "customer": CUSTOMER, "status": "void"}),
        ),
    ] {
        assert_eq!(
            apply(&fakes, &ended).await.unwrap(),
            Outcome::Ignored,
            "{ended}"
        );
    }
    assert_eq!(fakes.store.items_of_customer(&customer), 0);
    assert!(fakes.store.unmapped().is_empty());
    assert!(fakes.keys.keys().is_empty());
    assert_eq!(
        fakes.stacks.status_of("billing-sub-1").as_deref(),
        Some("DELETE_COMPLETE")
    );

    // Idempotent: a retried deletion finds nothing left to remove.
    portal(&fakes)
        .delete_account(&alice(), now())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn deleting_the_account_should_wait_for_a_webhook_holding_the_customers_lease() {
    let fakes = subscribed().await;
    let customer = CustomerId::parse(CUSTOMER).unwrap();
    assert!(
        fakes
            .store
            .take_lease(&customer, "webhook", now())
            .await
            .unwrap()
    );

    let waited = tokio::time::timeout(
        Duration::from_secs(5),
        portal(&fakes).delete_account(&alice(), now()),
    )
    .await;
    assert!(waited.is_err(), "the deletion waits for the lease");
    assert!(!fakes.store.is_deleted_customer(&customer).await.unwrap());
    assert_eq!(fakes.keys.keys().len(), 1, "nothing removed meanwhile");

    fakes
        .store
        .release_lease(&customer, "webhook")
        .await
        .unwrap();
    portal(&fakes)
        .delete_account(&alice(), now())
        .await
        .unwrap();
    assert_eq!(fakes.store.items_of_customer(&customer), 0);
    assert!(fakes.keys.keys().is_empty());
}
