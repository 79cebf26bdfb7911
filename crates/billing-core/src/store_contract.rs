//! The store's contract: what the DynamoDB adapter and the in-memory fake must both do, so the
//! tests written over the fake speak for production. billing-core's tests run it against
//! `fakes::InMemoryStore`; the integration tests run it against `DynamoStore` on the emulator.
//!
//! Each check takes a `scope` that makes its ids unique, so it can run against a table that
//! other tests (or earlier runs) use too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use crate::domain::{CustomerId, CustomerLink, UserPoolId, UserSub, Username};
use crate::error::Error;
use crate::plans::{PlanName, SubscriptionState, SubscriptionStatus};
use crate::ports::{
    BillingRecord, CatalogStore, CheckoutRecord, CheckoutRecords, Committed, CustomerLinks,
    CustomerView, DeletedCustomers, DeliveryClaim, DeliveryCommit, DeliveryStore, EventClaim,
    EventLog, Freshness, KeyRotations, OperatorStore, PriceRecord, ProductRecord, ProvisionedState,
    ProvisioningLeases, ReconcilerStore, RecordedAtOnce, StoredCatalog, SubscriptionWrite,
    SyncStore, UnreadableEvent, UsageStore, Versioned,
};
use crate::table::{EVENT_LEASE_SECS, PROVISIONING_LEASE_SECS};

/// Every check, in turn.
pub async fn run_all<S>(store: &S, scope: &str)
where
    S: EventLog
        + ProvisioningLeases
        + SyncStore
        + DeliveryStore
        + CustomerLinks
        + CheckoutRecords
        + DeletedCustomers
        + ReconcilerStore
        + OperatorStore
        + UsageStore
        + CatalogStore
        + KeyRotations,
{
    key_rotations_are_counted_by_time(store, scope).await;
    catalog_holds_products_and_prices_on_sale(store, scope).await;
    operator_reads(store, scope).await;
    usage_cursors_compare_and_set(store, scope).await;
    event_claims(store, scope).await;
    cursors_move_forward_only(store, scope).await;
    reviews_are_due_by_time(store, scope).await;
    unreadable_events_are_listed_once(store, scope).await;
    unmapped_events_are_listed(store, scope).await;
    provisioning_leases(store, scope).await;
    subscription_writes_are_newer_only(store, scope).await;
    record_writes_are_newer_only(store, scope).await;
    records_are_written_at_once_or_not_at_all(store, scope).await;
    links_are_one_to_one(store, scope).await;
    checkout_records_complete_once(store, scope).await;
    deleted_customers_are_purged(store, scope).await;
    delivery_claims_take_event_and_lease_at_once(store, scope).await;
    customer_view_reads_link_subscriptions_and_provisioned(store, scope).await;
    delivery_commits_are_all_or_nothing(store, scope).await;
    products_are_read_from_the_catalogue(store, scope).await;
}

/// A delivery's claim: the event and the lease at once; a done or running event as `claim`
/// says; a deleted customer's event not claimed at all; a lease held by another: the event
/// claimed alone.
pub async fn delivery_claims_take_event_and_lease_at_once<S>(store: &S, scope: &str)
where
    S: DeliveryStore + EventLog + ProvisioningLeases + DeletedCustomers,
{
    let now = 1_000_000;
    let customer = CustomerId::parse(format!("cus_{scope}_claims")).unwrap();
    let first = format!("evt_{scope}_delivery_1");
    assert_eq!(
        store
            .claim_delivery(&first, &customer, Some("a"), now)
            .await
            .unwrap(),
        DeliveryClaim::Claimed { leased: true }
    );
    assert!(
        !store.take_lease(&customer, "b", now + 1).await.unwrap(),
        "the lease was taken with the claim"
    );
    assert_eq!(
        store
            .claim_delivery(&first, &customer, Some("b"), now + 1)
            .await
            .unwrap(),
        DeliveryClaim::InProgress
    );
    let second = format!("evt_{scope}_delivery_2");
    assert_eq!(
        store
            .claim_delivery(&second, &customer, Some("b"), now + 1)
            .await
            .unwrap(),
        DeliveryClaim::Claimed { leased: false },
        "another holder's lease: the event alone"
    );
    assert_eq!(
        store.claim(&second, now + 2).await.unwrap(),
        EventClaim::InProgress
    );
    store.complete(&first, now + 2).await.unwrap();
    assert_eq!(
        store
            .claim_delivery(&first, &customer, None, now + 3)
            .await
            .unwrap(),
        DeliveryClaim::AlreadyDone
    );
    let third = format!("evt_{scope}_delivery_3");
    assert_eq!(
        store
            .claim_delivery(&third, &customer, None, now + 3)
            .await
            .unwrap(),
        DeliveryClaim::Claimed { leased: false },
        "without a holder no lease is asked for"
    );
    store.release_lease(&customer, "a").await.unwrap();

    let deleted = CustomerId::parse(format!("cus_{scope}_claims_deleted")).unwrap();
    store.tombstone_customer(&deleted, now).await.unwrap();
    let fourth = format!("evt_{scope}_delivery_4");
    assert_eq!(
        store
            .claim_delivery(&fourth, &deleted, Some("a"), now)
            .await
            .unwrap(),
        DeliveryClaim::CustomerDeleted
    );
    assert_eq!(
        store.claim(&fourth, now).await.unwrap(),
        EventClaim::Claimed,
        "nothing was claimed for a deleted customer"
    );
    assert!(
        store.take_lease(&deleted, "b", now).await.unwrap(),
        "nor its lease taken"
    );
}

fn provisioned_state(scope: &str, plan: &str, key: Option<&str>) -> ProvisionedState {
    ProvisionedState {
        sub: UserSub::parse(format!("{scope}-viewer")).unwrap(),
        plan: PlanName::parse(plan).unwrap(),
        usage_plan_id: key.map(|_| format!("up_{plan}")),
        api_key_id: key.map(str::to_owned),
        stacks: key
            .map(|_| vec![format!("sub_{scope}_a"), format!("sub_{scope}_b")])
            .unwrap_or_default(),
    }
}

/// A linked customer with a subscription (its event `evt_<holder>_subscription`, created 100),
/// a profile record and its lease taken by `holder`: an item of each kind its partition holds.
async fn seed_customer<S>(store: &S, link: &CustomerLink, state: &SubscriptionState, holder: &str)
where
    S: SyncStore + CustomerLinks + ProvisioningLeases,
{
    store.link(link).await.unwrap();
    let event = format!("evt_{holder}_subscription");
    store
        .put_subscription(&versioned(state, &event, 100), false, None)
        .await
        .unwrap();
    let profile = BillingRecord::CustomerProfile {
        customer_id: link.customer_id.to_string(),
        profile: Default::default(),
    };
    store
        .put_record(&versioned(&profile, &format!("evt_{holder}_profile"), 100))
        .await
        .unwrap();
    assert!(
        store
            .take_lease(&link.customer_id, holder, 1_000)
            .await
            .unwrap()
    );
}

/// One read gives the link, every stored subscription with its version and the provisioned
/// state, and none of the billing page's records.
pub async fn customer_view_reads_link_subscriptions_and_provisioned<S>(store: &S, scope: &str)
where
    S: DeliveryStore + SyncStore + CustomerLinks + ProvisioningLeases,
{
    let link = link(scope, "viewer", "viewer");
    let customer = link.customer_id.clone();
    assert_eq!(
        store.customer_view(&customer).await.unwrap(),
        CustomerView::default()
    );
    let mut state = subscription(scope, SubscriptionStatus::Active);
    state.customer_id = customer.to_string();
    seed_customer(store, &link, &state, "viewer").await;
    let provisioned = provisioned_state(scope, "pro", Some("key_view"));
    store
        .put_provisioned(&customer, &provisioned)
        .await
        .unwrap();

    let view = store.customer_view(&customer).await.unwrap();
    assert_eq!(view.link, Some(link));
    assert_eq!(
        view.subscriptions,
        vec![versioned(&state, "evt_viewer_subscription", 100)]
    );
    assert_eq!(view.provisioned, Some(provisioned));

    store.forget_provisioned(&customer).await.unwrap();
    store.forget_provisioned(&customer).await.unwrap();
    assert_eq!(
        store.customer_view(&customer).await.unwrap().provisioned,
        None
    );
    store.release_lease(&customer, "viewer").await.unwrap();
}

/// A commit writes the subscription (newer only), the provisioned state, the event done and
/// the lease released, or, when the subscription is not newer, nothing at all.
pub async fn delivery_commits_are_all_or_nothing<S>(store: &S, scope: &str)
where
    S: DeliveryStore + SyncStore + EventLog + ProvisioningLeases,
{
    let now = 1_000_000;
    let mut state = subscription(scope, SubscriptionStatus::Active);
    state.customer_id = format!("cus_{scope}_commit");
    let customer = CustomerId::parse(state.customer_id.clone()).unwrap();
    let newer = versioned(&state, &format!("evt_{scope}_commit_2"), 200);
    let provisioned = provisioned_state(scope, "pro", Some("key_commit"));
    let event = format!("evt_{scope}_commit_2");
    assert_eq!(
        store
            .claim_delivery(&event, &customer, Some("a"), now)
            .await
            .unwrap(),
        DeliveryClaim::Claimed { leased: true }
    );
    assert_eq!(
        store
            .commit_delivery(&DeliveryCommit {
                event_id: &event,
                customer: &customer,
                lease_holder: Some("a"),
                subscription: Some(SubscriptionWrite {
                    subscription: &newer,
                    allow_tie: false,
                    review_at: None,
                }),
                provisioned: Some(&provisioned),
                now,
            })
            .await
            .unwrap(),
        Committed::Done
    );
    let view = store.customer_view(&customer).await.unwrap();
    assert_eq!(view.subscriptions, vec![newer.clone()]);
    assert_eq!(view.provisioned, Some(provisioned.clone()));
    assert_eq!(
        store.claim(&event, now + 1).await.unwrap(),
        EventClaim::AlreadyDone
    );
    assert!(
        store.take_lease(&customer, "b", now + 1).await.unwrap(),
        "the lease was released"
    );

    // An older state: nothing written, the event not done, the lease still held.
    let older_event = format!("evt_{scope}_commit_1");
    let older = versioned(
        &subscription(scope, SubscriptionStatus::Canceled),
        &older_event,
        100,
    );
    let older = Versioned {
        state: SubscriptionState {
            customer_id: customer.to_string(),
            ..older.state
        },
        ..older
    };
    assert_eq!(
        store.claim(&older_event, now + 1).await.unwrap(),
        EventClaim::Claimed
    );
    let changed = provisioned_state(scope, "free", None);
    for stored_as in [&older, &newer] {
        assert_eq!(
            store
                .commit_delivery(&DeliveryCommit {
                    event_id: &older_event,
                    customer: &customer,
                    lease_holder: Some("b"),
                    subscription: Some(SubscriptionWrite {
                        subscription: stored_as,
                        allow_tie: false,
                        review_at: None,
                    }),
                    provisioned: Some(&changed),
                    now: now + 1,
                })
                .await
                .unwrap(),
            Committed::SubscriptionNotNewer,
            "older, and the same event again, are not newer"
        );
    }
    let view = store.customer_view(&customer).await.unwrap();
    assert_eq!(view.subscriptions, vec![newer.clone()]);
    assert_eq!(view.provisioned, Some(provisioned));
    assert_eq!(
        store.claim(&older_event, now + 2).await.unwrap(),
        EventClaim::InProgress
    );
    assert!(!store.take_lease(&customer, "c", now + 2).await.unwrap());

    // Without a subscription: what was applied, the event done, the lease released; a
    // holder whose lease is gone leaves the new holder's alone.
    assert_eq!(
        store
            .commit_delivery(&DeliveryCommit {
                event_id: &older_event,
                customer: &customer,
                lease_holder: Some("b"),
                subscription: None,
                provisioned: Some(&changed),
                now: now + 2,
            })
            .await
            .unwrap(),
        Committed::Done
    );
    assert_eq!(
        store.customer_view(&customer).await.unwrap().provisioned,
        Some(changed)
    );
    assert!(store.take_lease(&customer, "c", now + 3).await.unwrap());
    assert_eq!(
        store
            .commit_delivery(&DeliveryCommit {
                event_id: &older_event,
                customer: &customer,
                lease_holder: Some("b"),
                subscription: None,
                provisioned: None,
                now: now + 3,
            })
            .await
            .unwrap(),
        Committed::Done
    );
    assert!(
        !store.take_lease(&customer, "d", now + 3).await.unwrap(),
        "c's lease is c's"
    );
}

/// Products by id from the stored catalogue; absent ones left out.
pub async fn products_are_read_from_the_catalogue<S: DeliveryStore + SyncStore>(
    store: &S,
    scope: &str,
) {
    let product_id = format!("prod_{scope}_plans");
    let product = ProductRecord {
        active: true,
        metadata: [("plan".to_owned(), "pro".to_owned())].into(),
        name: Some("Pro".into()),
        plan: PlanName::parse("pro"),
    };
    store
        .put_record(&versioned(
            &BillingRecord::Product {
                product_id: product_id.clone(),
                product: product.clone(),
            },
            "evt_plans",
            100,
        ))
        .await
        .unwrap();
    let missing = format!("prod_{scope}_missing");
    let found = store
        .products(&[product_id.as_str(), missing.as_str()])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found.get(&product_id), Some(&product));
}

/// Rotations are read back by time, two in one second count twice, and a user's are forgotten
/// together.
pub async fn key_rotations_are_counted_by_time<S: KeyRotations>(store: &S, scope: &str) {
    let sub = UserSub::parse(format!("{scope}-rotations")).unwrap();
    let other = UserSub::parse(format!("{scope}-rotations-other")).unwrap();
    assert!(store.rotations_since(&sub, 0).await.unwrap().is_empty());
    for at in [1_000, 2_000, 2_000, 3_000] {
        store.record_rotation(&sub, at).await.unwrap();
    }
    store.record_rotation(&other, 2_500).await.unwrap();
    let mut since = store.rotations_since(&sub, 2_000).await.unwrap();
    since.sort_unstable();
    assert_eq!(since, [2_000, 2_000, 3_000]);
    assert!(store.rotations_since(&sub, 3_001).await.unwrap().is_empty());
    store.forget_rotations(&sub).await.unwrap();
    assert!(store.rotations_since(&sub, 0).await.unwrap().is_empty());
    assert_eq!(store.rotations_since(&other, 0).await.unwrap(), [2_500]);
}

/// A cursor starts absent and never moves back.
pub async fn cursors_move_forward_only<S: ReconcilerStore>(store: &S, scope: &str) {
    let name = format!("contract-{scope}");
    assert_eq!(store.cursor(&name).await.unwrap(), None);
    store.advance_cursor(&name, 100, 1).await.unwrap();
    store.advance_cursor(&name, 90, 2).await.unwrap();
    assert_eq!(store.cursor(&name).await.unwrap(), Some(100));
    store.advance_cursor(&name, 120, 3).await.unwrap();
    assert_eq!(store.cursor(&name).await.unwrap(), Some(120));
}

/// A subscription stored with a review time is due from then on, until a write without one
/// or `set_review(None)`; setting a review of an absent subscription creates nothing.
pub async fn reviews_are_due_by_time<S: SyncStore + ReconcilerStore>(store: &S, scope: &str) {
    let mut state = subscription(scope, SubscriptionStatus::PastDue);
    state.customer_id = format!("cus_{scope}_review");
    let customer = CustomerId::parse(state.customer_id.clone()).unwrap();
    // Times near zero: no other test's review is due by then.
    let due = |now: i64| async move {
        store
            .due_reviews(now, 1_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|review| review.customer_id.as_str().contains(scope))
            .map(|review| (review.subscription_id, review.review_at))
            .collect::<Vec<_>>()
    };
    store
        .put_subscription(&versioned(&state, "evt_1", 100), false, Some(50))
        .await
        .unwrap();
    assert_eq!(due(49).await, []);
    assert_eq!(due(50).await, [(state.id.clone(), 50)]);
    store
        .set_review(&customer, &state.id, Some(70))
        .await
        .unwrap();
    assert_eq!(due(60).await, []);
    assert_eq!(due(70).await, [(state.id.clone(), 70)]);
    store.set_review(&customer, &state.id, None).await.unwrap();
    assert_eq!(due(1_000).await, []);
    store
        .put_subscription(&versioned(&state, "evt_2", 200), false, Some(80))
        .await
        .unwrap();
    store
        .put_subscription(&versioned(&state, "evt_3", 300), false, None)
        .await
        .unwrap();
    assert_eq!(
        due(1_000).await,
        [],
        "a newer write without a review clears it"
    );
    store
        .set_review(&customer, "sub_absent", Some(10))
        .await
        .unwrap();
    assert_eq!(due(1_000).await, []);
    assert!(
        store
            .subscription(&customer, "sub_absent")
            .await
            .unwrap()
            .is_none()
    );
}

/// A deleted account's customer: tombstoned, and nothing kept under it but its lease.
pub async fn deleted_customers_are_purged<S>(store: &S, scope: &str)
where
    S: SyncStore + CustomerLinks + ProvisioningLeases + DeletedCustomers,
{
    let mut state = subscription(scope, SubscriptionStatus::Active);
    state.customer_id = format!("cus_{scope}_deleted");
    let customer = CustomerId::parse(state.customer_id.clone()).unwrap();
    let link = CustomerLink {
        sub: UserSub::parse(format!("sub-{scope}-deleted")).unwrap(),
        customer_id: customer.clone(),
        pool_id: UserPoolId::parse("us-east-1_Contract").unwrap(),
        username: Username::parse(format!("deleted-{scope}")).unwrap(),
    };
    seed_customer(store, &link, &state, "deleter").await;
    assert!(!store.is_deleted_customer(&customer).await.unwrap());

    store.tombstone_customer(&customer, 1_000).await.unwrap();
    store.purge_customer(&customer).await.unwrap();
    store.purge_customer(&customer).await.unwrap();
    assert!(store.is_deleted_customer(&customer).await.unwrap());
    assert!(store.subscriptions_of(&customer).await.unwrap().is_empty());
    assert!(store.user_of_customer(&customer).await.unwrap().is_none());
    assert!(
        !store.take_lease(&customer, "webhook", 1_001).await.unwrap(),
        "the deleter's lease is kept for it to release"
    );
    store.release_lease(&customer, "deleter").await.unwrap();
}

/// An unreadable event is listed once, however often it is received, with its last receipt.
pub async fn unreadable_events_are_listed_once<S: EventLog>(store: &S, scope: &str) {
    let event = UnreadableEvent {
        event_id: format!("evt_{scope}_unreadable"),
        event_type: Some("invoice.paid".into()),
        api_version: Some("2030-01-01.future".into()),
        livemode: Some(false),
        field: "data.object".into(),
        reason: "missing field `id`".into(),
    };
    let other = UnreadableEvent {
        event_id: format!("evt_{scope}_unreadable_2"),
        event_type: None,
        api_version: None,
        livemode: None,
        ..event.clone()
    };
    store.record_unreadable(&event, 2_000_000).await.unwrap();
    store.record_unreadable(&other, 2_000_001).await.unwrap();
    store.record_unreadable(&event, 2_000_002).await.unwrap();
    let ours: Vec<_> = store
        .unreadable_events()
        .await
        .unwrap()
        .into_iter()
        .filter(|recorded| {
            recorded
                .event
                .event_id
                .starts_with(&format!("evt_{scope}_"))
        })
        .collect();
    assert_eq!(ours.len(), 2, "{ours:?}");
    assert_eq!(ours[0].event, other);
    assert_eq!(ours[1].event, event);
    assert_eq!(ours[1].received_at, 2_000_002);
}

/// A parked event is listed with its customer, type and when it was parked.
pub async fn unmapped_events_are_listed<S: SyncStore>(store: &S, scope: &str) {
    let customer = format!("cus_{scope}_unmapped");
    let event_id = format!("evt_{scope}_unmapped");
    store
        .park_unmapped(&customer, &event_id, "invoice.paid", 3_000_000)
        .await
        .unwrap();
    let listed: Vec<_> = store
        .unmapped_events()
        .await
        .unwrap()
        .into_iter()
        .filter(|parked| parked.customer_id == customer)
        .collect();
    assert_eq!(
        listed,
        [crate::ports::UnmappedEvent {
            customer_id: customer.clone(),
            event_id,
            event_type: "invoice.paid".into(),
            parked_at: 3_000_000,
        }]
    );
}

/// An event is claimed by one delivery at a time, done once, given back on failure, and taken
/// over once its claim has run out (the delivery that held it died).
pub async fn event_claims<S: EventLog>(store: &S, scope: &str) {
    let now = 1_000_000;
    let done = format!("evt_{scope}_done");
    assert_eq!(store.claim(&done, now).await.unwrap(), EventClaim::Claimed);
    assert_eq!(
        store.claim(&done, now + 1).await.unwrap(),
        EventClaim::InProgress,
        "a second delivery while the first works"
    );
    store.complete(&done, now + 2).await.unwrap();
    assert_eq!(
        store.claim(&done, now + 3).await.unwrap(),
        EventClaim::AlreadyDone
    );
    store.release(&done).await.unwrap();
    assert_eq!(
        store.claim(&done, now + 4).await.unwrap(),
        EventClaim::AlreadyDone,
        "releasing a done event changes nothing"
    );

    let failed = format!("evt_{scope}_failed");
    assert_eq!(
        store.claim(&failed, now).await.unwrap(),
        EventClaim::Claimed
    );
    store.release(&failed).await.unwrap();
    assert_eq!(
        store.claim(&failed, now + 1).await.unwrap(),
        EventClaim::Claimed,
        "a released event is redone by the retry"
    );

    let abandoned = format!("evt_{scope}_abandoned");
    assert_eq!(
        store.claim(&abandoned, now).await.unwrap(),
        EventClaim::Claimed
    );
    assert_eq!(
        store
            .claim(&abandoned, now + EVENT_LEASE_SECS)
            .await
            .unwrap(),
        EventClaim::InProgress,
        "the claim still runs at its last second"
    );
    assert_eq!(
        store
            .claim(&abandoned, now + EVENT_LEASE_SECS + 1)
            .await
            .unwrap(),
        EventClaim::Claimed,
        "a claim whose holder died is taken over"
    );

    // Past a request's hundred keys, and with a key named twice.
    let unknown: Vec<String> = (0..105)
        .map(|i| format!("evt_{scope}_unknown_{i}"))
        .collect();
    let mut asked: Vec<&str> = unknown.iter().map(String::as_str).collect();
    asked.extend([
        done.as_str(),
        failed.as_str(),
        abandoned.as_str(),
        done.as_str(),
    ]);
    assert_eq!(
        store.done_among(&asked).await.unwrap(),
        HashSet::from([done.clone()]),
        "only the completed event is done"
    );
    assert!(store.done_among(&[]).await.unwrap().is_empty());
}

/// One holder per customer until it releases the lease or the lease runs out; only the holder
/// releases it.
pub async fn provisioning_leases<S: ProvisioningLeases>(store: &S, scope: &str) {
    let customer = CustomerId::parse(format!("cus_{scope}_lease")).unwrap();
    let now = 1_000_000;
    assert!(store.take_lease(&customer, "a", now).await.unwrap());
    assert!(!store.take_lease(&customer, "b", now + 1).await.unwrap());
    store.release_lease(&customer, "b").await.unwrap();
    assert!(
        !store.take_lease(&customer, "b", now + 2).await.unwrap(),
        "only the holder releases"
    );
    store.release_lease(&customer, "a").await.unwrap();
    assert!(store.take_lease(&customer, "b", now + 3).await.unwrap());
    assert!(
        !store
            .take_lease(&customer, "c", now + 3 + PROVISIONING_LEASE_SECS)
            .await
            .unwrap(),
        "the lease still runs at its last second"
    );
    assert!(
        store
            .take_lease(&customer, "c", now + 3 + PROVISIONING_LEASE_SECS + 1)
            .await
            .unwrap(),
        "a lease whose holder died is taken over"
    );
    let other = CustomerId::parse(format!("cus_{scope}_lease_other")).unwrap();
    assert!(
        store.take_lease(&other, "b", now + 4).await.unwrap(),
        "leases are per customer"
    );
}

fn subscription(scope: &str, status: SubscriptionStatus) -> SubscriptionState {
    SubscriptionState {
        id: format!("sub_{scope}"),
        customer_id: format!("cus_{scope}_subs"),
        status,
        items: vec![crate::plans::SubscriptionItemState {
            price_id: None,
            product_id: None,
            plan: PlanName::parse("pro"),
            meter: None,
        }],
        current_period_end: None,
        current_period_start: None,
        cancel_at_period_end: false,
        past_due_since: None,
        created: 10,
        metadata: Default::default(),
    }
}

fn versioned<T: Clone>(state: &T, event_id: &str, event_created: i64) -> Versioned<T> {
    Versioned {
        event_created,
        event_id: event_id.into(),
        state: state.clone(),
    }
}

/// Newer wins; the same event again is `Same` (a retry), an older one `Stale`, another event
/// of the same second a `Tie` that only `allow_tie` settles; what is read back is the winner.
pub async fn subscription_writes_are_newer_only<S: SyncStore>(store: &S, scope: &str) {
    let active = subscription(scope, SubscriptionStatus::Active);
    let past_due = subscription(scope, SubscriptionStatus::PastDue);
    let customer = CustomerId::parse(active.customer_id.clone()).unwrap();
    let put = |state: &SubscriptionState, event: &str, created: i64, allow_tie: bool| {
        let versioned = versioned(state, event, created);
        async move {
            store
                .put_subscription(&versioned, allow_tie, None)
                .await
                .unwrap()
        }
    };

    assert_eq!(put(&active, "evt_2", 200, false).await, Freshness::Applied);
    assert_eq!(put(&active, "evt_2", 200, false).await, Freshness::Same);
    assert_eq!(put(&past_due, "evt_1", 100, false).await, Freshness::Stale);
    assert_eq!(put(&past_due, "evt_3", 200, false).await, Freshness::Tie);
    let stored = store.subscription(&customer, &active.id).await.unwrap();
    assert_eq!(
        stored.map(|v| (v.event_id, v.state.status)),
        Some(("evt_2".to_owned(), SubscriptionStatus::Active)),
        "neither the stale nor the tied write replaced the state"
    );

    assert_eq!(put(&past_due, "evt_3", 200, true).await, Freshness::Applied);
    assert_eq!(put(&active, "evt_4", 300, false).await, Freshness::Applied);
    assert_eq!(put(&past_due, "evt_3", 200, true).await, Freshness::Stale);
    let stored = store.subscription(&customer, &active.id).await.unwrap();
    assert_eq!(
        stored.map(|v| (v.event_id, v.event_created, v.state.status)),
        Some(("evt_4".to_owned(), 300, SubscriptionStatus::Active))
    );
    let all = store.subscriptions_of(&customer).await.unwrap();
    assert_eq!(all, vec![active], "one state per subscription");
}

/// Records follow the same newer-only rule as subscriptions.
pub async fn record_writes_are_newer_only<S: SyncStore>(store: &S, scope: &str) {
    let product = |name: &str| BillingRecord::Product {
        product_id: format!("prod_{scope}"),
        product: ProductRecord {
            active: true,
            metadata: Default::default(),
            name: Some(name.into()),
            plan: PlanName::parse("pro"),
        },
    };
    let put = |record: BillingRecord, event: &str, created: i64| {
        let versioned = versioned(&record, event, created);
        async move { store.put_record(&versioned).await.unwrap() }
    };
    assert_eq!(put(product("v2"), "evt_2", 200).await, Freshness::Applied);
    assert_eq!(put(product("v2"), "evt_2", 200).await, Freshness::Same);
    assert_eq!(put(product("v1"), "evt_1", 100).await, Freshness::Stale);
    assert_eq!(put(product("v2b"), "evt_3", 200).await, Freshness::Tie);
    assert_eq!(put(product("v3"), "evt_4", 300).await, Freshness::Applied);
}

/// An event's records with its completion at once: written when the event is neither done nor
/// claimed, every record newer and the customer not deleted; else nothing at all.
pub async fn records_are_written_at_once_or_not_at_all<S>(store: &S, scope: &str)
where
    S: DeliveryStore + SyncStore + EventLog + DeletedCustomers,
{
    let now = 1_000_000;
    let customer = CustomerId::parse(format!("cus_{scope}_at_once")).unwrap();
    let invoice = |id: &str, status: &str| BillingRecord::Invoice {
        customer_id: customer.as_str().to_owned(),
        invoice_id: format!("in_{scope}_{id}"),
        invoice: crate::ports::InvoiceRecord {
            status: Some(status.into()),
            ..Default::default()
        },
    };
    let at_once = |event: String,
                   records: Vec<Versioned<BillingRecord>>,
                   about: Option<CustomerId>| async move {
        store
            .record_at_once(&event, about.as_ref(), &records, now)
            .await
            .unwrap()
    };
    let first = format!("evt_{scope}_at_once_1");
    let records = vec![
        versioned(&invoice("a", "open"), &first, 200),
        versioned(&invoice("b", "open"), &first, 200),
    ];
    assert_eq!(
        at_once(first.clone(), records.clone(), Some(customer.clone())).await,
        RecordedAtOnce::Written
    );
    assert_eq!(
        store.claim(&first, now + 1).await.unwrap(),
        EventClaim::AlreadyDone,
        "the event is done with its records"
    );
    assert_eq!(
        at_once(first.clone(), records, Some(customer.clone())).await,
        RecordedAtOnce::Declined,
        "a done event is not written again"
    );

    // Records not newer than the stored ones: nothing written, not even the newer one; why,
    // for each.
    let second = format!("evt_{scope}_at_once_2");
    let records = vec![
        versioned(&invoice("c", "paid"), &second, 150),
        versioned(&invoice("a", "void"), &second, 150),
        versioned(&invoice("b", "void"), &second, 200),
    ];
    assert_eq!(
        at_once(second.clone(), records, Some(customer.clone())).await,
        RecordedAtOnce::NotNewer(vec![Freshness::Applied, Freshness::Stale, Freshness::Tie])
    );
    assert_eq!(
        store.claim(&second, now).await.unwrap(),
        EventClaim::Claimed,
        "the declined event is neither done nor claimed"
    );
    let c = versioned(&invoice("c", "paid"), "evt_probe_c", 1);
    assert_eq!(
        store.put_record(&c).await.unwrap(),
        Freshness::Applied,
        "the newer record was not written either"
    );

    // Another delivery's claim still runs: declined.
    let claimed = format!("evt_{scope}_at_once_3");
    assert_eq!(
        store.claim(&claimed, now).await.unwrap(),
        EventClaim::Claimed
    );
    let records = vec![versioned(&invoice("d", "paid"), &claimed, 300)];
    assert_eq!(
        at_once(claimed.clone(), records.clone(), Some(customer.clone())).await,
        RecordedAtOnce::Declined
    );
    // ...and once it has run out, the event is written at once.
    assert_eq!(
        store
            .record_at_once(
                &claimed,
                Some(&customer),
                &records,
                now + EVENT_LEASE_SECS + 1
            )
            .await
            .unwrap(),
        RecordedAtOnce::Written
    );

    // A catalogue record about no customer.
    let product = BillingRecord::Product {
        product_id: format!("prod_{scope}_at_once"),
        product: ProductRecord {
            active: true,
            metadata: Default::default(),
            name: None,
            plan: PlanName::parse("pro"),
        },
    };
    let catalogue = format!("evt_{scope}_at_once_4");
    assert_eq!(
        at_once(
            catalogue.clone(),
            vec![versioned(&product, &catalogue, 100)],
            None
        )
        .await,
        RecordedAtOnce::Written
    );

    // The customer's account deleted: declined.
    store.tombstone_customer(&customer, now).await.unwrap();
    let deleted = format!("evt_{scope}_at_once_5");
    let records = vec![versioned(&invoice("e", "paid"), &deleted, 400)];
    assert_eq!(
        at_once(deleted, records, Some(customer.clone())).await,
        RecordedAtOnce::Declined
    );
}

/// The catalogue read holds every product and the active prices with a lookup key; a price
/// archived later leaves it.
pub async fn catalog_holds_products_and_prices_on_sale<S: SyncStore + CatalogStore>(
    store: &S,
    scope: &str,
) {
    let product_id = format!("prod_{scope}_catalog");
    let price = |id: &str, lookup_key: Option<&str>, active: bool| BillingRecord::Price {
        price_id: format!("price_{scope}_{id}"),
        price: PriceRecord {
            active,
            lookup_key: lookup_key.map(|key| format!("{key}_{scope}")),
            product: Some(product_id.clone()),
            unit_amount: Some(1000),
            ..PriceRecord::default()
        },
    };
    let records = [
        BillingRecord::Product {
            product_id: product_id.clone(),
            product: ProductRecord {
                active: false,
                metadata: Default::default(),
                name: Some("Pro".into()),
                plan: PlanName::parse("pro"),
            },
        },
        price("monthly", Some("pro_monthly"), true),
        price("archived", Some("pro_2020"), false),
        price("unnamed", None, true),
    ];
    for record in &records {
        store
            .put_record(&versioned(record, "evt_1", 100))
            .await
            .unwrap();
    }
    let ours = |catalog: StoredCatalog| {
        let products: Vec<String> = catalog
            .products
            .into_keys()
            .filter(|id| id.contains(scope))
            .collect();
        let prices: Vec<String> = catalog
            .prices
            .into_keys()
            .filter(|id| id.contains(scope))
            .collect();
        (products, prices)
    };
    assert_eq!(
        ours(store.catalog().await.unwrap()),
        (
            vec![product_id.clone()],
            vec![format!("price_{scope}_monthly")]
        )
    );
    store
        .put_record(&versioned(
            &price("monthly", Some("pro_monthly"), false),
            "evt_2",
            200,
        ))
        .await
        .unwrap();
    assert_eq!(
        ours(store.catalog().await.unwrap()),
        (vec![product_id], vec![])
    );
}

/// What the operator's tools read: every link, a stored record as written, and a customer's
/// parked events forgotten.
pub async fn operator_reads<S: SyncStore + CustomerLinks + OperatorStore>(store: &S, scope: &str) {
    let linked = link(scope, "operator", "operator");
    store.link(&linked).await.unwrap();
    assert!(store.all_links().await.unwrap().contains(&linked));

    let record = BillingRecord::Product {
        product_id: format!("prod_{scope}_operator"),
        product: ProductRecord {
            active: true,
            metadata: [("plan".to_owned(), "pro".to_owned())].into(),
            name: Some("Pro".into()),
            plan: PlanName::parse("pro"),
        },
    };
    assert_eq!(store.stored_record(&record).await.unwrap(), None);
    store
        .put_record(&versioned(&record, "evt_1", 100))
        .await
        .unwrap();
    assert_eq!(store.stored_record(&record).await.unwrap(), Some(record));

    let parked = format!("cus_{scope}_parked");
    for event in ["evt_a", "evt_b"] {
        store
            .park_unmapped(
                &parked,
                &format!("{event}_{scope}"),
                "customer.created",
                100,
            )
            .await
            .unwrap();
    }
    assert_eq!(store.clear_unmapped(&parked).await.unwrap(), 2);
    assert_eq!(store.clear_unmapped(&parked).await.unwrap(), 0);
    assert!(
        !store
            .unmapped_events()
            .await
            .unwrap()
            .iter()
            .any(|event| event.customer_id == parked)
    );
    store.unlink(&linked).await.unwrap();
}

/// A usage slot's cursor starts empty and is replaced only from what the writer read: of two
/// writers that read the same cursor, one wins.
pub async fn usage_cursors_compare_and_set<S: UsageStore>(store: &S, scope: &str) {
    use crate::usage::{PendingDelta, UsageCursor, UsageSlot, UtcDay};
    let day = UtcDay::parse("2026-12-01").unwrap();
    let slot = UsageSlot {
        key_id: format!("key-{scope}"),
        usage_plan_id: "up_api".into(),
        day,
    };
    let empty = UsageCursor::default();
    assert_eq!(store.usage_cursor(&slot).await.unwrap(), empty);
    let pending = UsageCursor {
        reported: 0,
        pending: Some(PendingDelta {
            from: 0,
            to: 40,
            identifier: slot.identifier(0, 40),
            since: 100,
        }),
    };
    assert!(
        store
            .replace_usage_cursor(&slot, &empty, &pending, 100)
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_usage_cursor(&slot, &empty, &pending, 100)
            .await
            .unwrap(),
        "a second writer that read it empty loses"
    );
    assert_eq!(store.usage_cursor(&slot).await.unwrap(), pending);
    let confirmed = UsageCursor {
        reported: 40,
        pending: None,
    };
    assert!(
        store
            .replace_usage_cursor(&slot, &pending, &confirmed, 101)
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_usage_cursor(&slot, &pending, &confirmed, 101)
            .await
            .unwrap()
    );
    let other_plan = UsageSlot {
        usage_plan_id: "up_api_plus".into(),
        ..slot.clone()
    };
    assert!(
        store
            .replace_usage_cursor(&other_plan, &empty, &confirmed, 102)
            .await
            .unwrap()
    );
    let next_day = UsageSlot {
        day: day.plus(1),
        ..slot.clone()
    };
    assert!(
        store
            .replace_usage_cursor(&next_day, &empty, &confirmed, 103)
            .await
            .unwrap()
    );
    let mut listed = store
        .usage_cursors_of(&slot.key_id, day, day)
        .await
        .unwrap();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        listed,
        [
            (slot.clone(), confirmed.clone()),
            (other_plan, confirmed.clone())
        ]
    );
    assert_eq!(
        store
            .usage_cursors_of(&slot.key_id, day, day.plus(1))
            .await
            .unwrap()
            .len(),
        3
    );
}

fn link(scope: &str, user: &str, customer: &str) -> CustomerLink {
    CustomerLink {
        sub: UserSub::parse(format!("{scope}-{user}")).unwrap(),
        customer_id: CustomerId::parse(format!("cus_{scope}_{customer}")).unwrap(),
        pool_id: UserPoolId::parse("local_contract").unwrap(),
        username: Username::parse(format!("{scope}-{user}")).unwrap(),
    }
}

/// A user is linked to one customer and a customer to one user, whoever writes first; unlinking
/// is idempotent and frees both sides.
pub async fn links_are_one_to_one<S: CustomerLinks>(store: &S, scope: &str) {
    let first = link(scope, "alice", "one");
    store.link(&first).await.unwrap();
    assert_eq!(
        store.customer_of_user(&first.sub).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.user_of_customer(&first.customer_id).await.unwrap(),
        Some(first.clone())
    );

    let same_user = link(scope, "alice", "two");
    assert!(matches!(
        store.link(&same_user).await,
        Err(Error::ConditionalCheckFailed)
    ));
    let same_customer = link(scope, "bob", "one");
    assert!(matches!(
        store.link(&same_customer).await,
        Err(Error::ConditionalCheckFailed)
    ));
    assert_eq!(
        store
            .user_of_customer(&same_user.customer_id)
            .await
            .unwrap(),
        None,
        "a refused link writes neither direction"
    );
    assert_eq!(
        store.customer_of_user(&same_customer.sub).await.unwrap(),
        None
    );

    store.unlink(&first).await.unwrap();
    store.unlink(&first).await.unwrap();
    assert_eq!(store.customer_of_user(&first.sub).await.unwrap(), None);
    assert_eq!(
        store.user_of_customer(&first.customer_id).await.unwrap(),
        None
    );
    store.link(&same_user).await.unwrap();
}

/// A checkout session's record is read back as written and marked completed exactly once.
pub async fn checkout_records_complete_once<S: CheckoutRecords>(store: &S, scope: &str) {
    let record = CheckoutRecord {
        session_id: format!("cs_{scope}"),
        sub: UserSub::parse(format!("{scope}-buyer")).unwrap(),
        customer_id: CustomerId::parse(format!("cus_{scope}_buyer")).unwrap(),
        key_hash: "0".repeat(64),
        lookup_key: "pro_monthly".into(),
        created_at: 1_000_000,
        completed: false,
    };
    store.put(&record).await.unwrap();
    assert_eq!(
        store.get(&record.session_id).await.unwrap(),
        Some(record.clone())
    );
    assert!(store.mark_completed(&record.session_id).await.unwrap());
    assert!(
        !store.mark_completed(&record.session_id).await.unwrap(),
        "a replayed success return is refused"
    );
    assert!(
        store
            .get(&record.session_id)
            .await
            .unwrap()
            .unwrap()
            .completed,
        "the completion is stored"
    );
    assert!(
        !store
            .mark_completed(&format!("cs_{scope}_unknown"))
            .await
            .unwrap(),
        "an unknown session is never completed"
    );
    store.delete_for_user(&record.sub).await.unwrap();
    assert_eq!(store.get(&record.session_id).await.unwrap(), None);
}

#[cfg(test)]
mod tests {
    use crate::fakes::InMemoryStore;

    #[tokio::test]
    async fn the_in_memory_store_should_keep_the_store_contract() {
        super::run_all(&InMemoryStore::default(), "fake").await;
    }
}
