//! The operator's tools over the fakes: an import of an account that existed before the
//! deployment (links by sub then verified e-mail, stores, provisions, changes nothing the second
//! time), its dry run, and an audit that finds drift and repairs it.

use crate::common::*;
use billing_core::domain::{CustomerId, UserSub};
use billing_core::import::{ImportReport, ImportStep, Importer};
use billing_core::plans::SubscriptionState;
use billing_core::ports::{
    ApiKeys, CustomerLinks, EVENTS_CURSOR, OperatorStore, ReconcilerStore, StripeList,
};
use billing_core::ports::{CognitoUserRef, Directory};
use billing_core::webhook::sync::{Drift, HandLink, LinkResult, Outcome, Writes};
use serde_json::json;

fn subscription_of(customer: &CustomerId, id: &str, status: &str) -> SubscriptionState {
    let mut subscription = current_subscription(status);
    subscription.id = id.to_owned();
    subscription.customer_id = customer.to_string();
    subscription
}

/// An account made before the deployment: a customer created for Ann (metadata names her sub,
/// its e-mail is another), Bob's by his verified e-mail, one whose e-mail only an unverified
/// user has, and one nobody has; a catalogue.
fn account_before_deployment(fakes: &Fakes) -> [CustomerId; 4] {
    fakes
        .directory
        .add_user("ann", "sub-ann", Some("ann@example.com"));
    fakes
        .directory
        .add_user("bob", "sub-bob", Some("bob@example.com"));
    fakes
        .directory
        .add_unverified_user("eve", "sub-eve", "eve@example.com");
    let ann = fakes
        .stripe
        .insert_customer(Some("billing@ann.example"), &[("cognito_sub", "sub-ann")]);
    let bob = fakes.stripe.insert_customer(Some("bob@example.com"), &[]);
    let eve = fakes.stripe.insert_customer(Some("eve@example.com"), &[]);
    let nobody = fakes
        .stripe
        .insert_customer(Some("nobody@example.com"), &[]);
    fakes
        .stripe
        .add_subscription(subscription_of(&ann, "sub_ann", "active"));
    fakes
        .stripe
        .add_subscription(subscription_of(&bob, "sub_bob_old", "canceled"));
    fakes
        .stripe
        .add_subscription(subscription_of(&eve, "sub_eve", "active"));
    fakes.stripe.list_object(
        StripeList::Products,
        json!({"id": "prod_pro", "object": "product", "name": "Pro", "active": true, "metadata": {"plan": "pro"}}),
    );
    for (id, active) in [("price_pro", true), ("price_pro_2019", false)] {
        fakes.stripe.list_object(
            StripeList::Prices,
            json!({
                "id": id, "object": "price", "active": active, "currency": "usd", "product": "prod_pro",
                "type": "recurring", "recurring": {"interval": "month", "usage_type": "licensed"},
                "billing_scheme": "tiered", "tiers_mode": "graduated",
                "tiers": [{"up_to": 1000, "unit_amount": 0}, {"up_to": null, "unit_amount": 2}],
                "metadata": {}
            }),
        );
    }
    fakes.stripe.list_object(
        StripeList::TaxRates,
        json!({"id": "txr_1", "object": "tax_rate", "active": true, "percentage": 19.0, "inclusive": false, "display_name": "VAT"}),
    );
    [ann, bob, eve, nobody]
}

async fn import(fakes: &Fakes, now: i64, writes: Writes) -> ImportReport {
    let importer = Importer { sync: fakes.sync() };
    importer.run(now, writes, &|_| {}).await.unwrap()
}

fn plan_of(fakes: &Fakes, username: &str) -> Option<String> {
    fakes
        .directory
        .plan_of(
            &link().pool_id,
            &billing_core::domain::Username::parse(username).unwrap(),
        )
        .map(|plan| plan.to_string())
}

#[tokio::test]
async fn import_should_link_by_sub_then_verified_email_provision_and_report_the_unmatched() {
    let fakes = fakes();
    let [ann, bob, eve, nobody] = account_before_deployment(&fakes);
    let t = now();

    let report = import(&fakes, t, Writes::Apply).await;

    assert_eq!(report.catalogue["product"].stored, 1);
    assert_eq!(report.catalogue["price"].listed, 2, "archived prices too");
    assert_eq!(report.catalogue["price"].stored, 2);
    assert_eq!(report.catalogue["tax_rate"].stored, 1);
    assert_eq!(report.customers_listed, 4);
    assert_eq!(report.linked_now, 2);
    let mut unmatched: Vec<_> = report
        .unmatched
        .iter()
        .map(|u| u.customer_id.as_str())
        .collect();
    unmatched.sort();
    assert_eq!(unmatched, [eve.as_str(), nobody.as_str()]);
    assert_eq!(report.subscriptions_stored, 3);
    assert!(report.failed.is_empty());
    assert!(report.changed());

    let sub_of = |customer: &CustomerId| fakes.store.sub_of_customer(customer);
    assert_eq!(sub_of(&ann), Some(UserSub::parse("sub-ann").unwrap()));
    assert_eq!(sub_of(&bob), Some(UserSub::parse("sub-bob").unwrap()));
    assert_eq!(sub_of(&eve), None, "an unverified e-mail links nobody");
    assert_eq!(plan_of(&fakes, "ann").as_deref(), Some("pro"));
    assert_eq!(plan_of(&fakes, "bob").as_deref(), Some("free"));
    let ann_key = fakes
        .keys
        .find(&UserSub::parse("sub-ann").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ann_key.usage_plan_ids, ["up_pro"]);
    assert!(ann_key.enabled);
    assert_eq!(
        fakes.store.cursor(EVENTS_CURSOR).await.unwrap(),
        Some(t),
        "events from the import on are the reconciler's"
    );
}

#[tokio::test]
async fn a_second_import_should_change_nothing_and_say_so() {
    let fakes = fakes();
    account_before_deployment(&fakes);
    let t = now();
    import(&fakes, t, Writes::Apply).await;
    let writes_before = fakes.store.writes.load(std::sync::atomic::Ordering::SeqCst);

    let again = import(&fakes, t + 60, Writes::Apply).await;

    assert!(!again.changed(), "{again:?}");
    assert_eq!(again.linked_before, 2);
    assert_eq!(again.linked_now, 0);
    assert_eq!(again.subscriptions_stored, 0);
    assert_eq!(again.customers_with_drift, 0);
    assert_eq!(again.unmatched.len(), 2, "still reported");
    let writes_after = fakes.store.writes.load(std::sync::atomic::Ordering::SeqCst);
    // Only the cursor moved.
    assert!(
        writes_after - writes_before <= 1,
        "{writes_before} -> {writes_after}"
    );
}

#[tokio::test]
async fn a_state_changed_in_stripe_since_the_import_should_be_the_only_thing_a_rerun_writes() {
    let fakes = fakes();
    let [ann, ..] = account_before_deployment(&fakes);
    let t = now();
    import(&fakes, t, Writes::Apply).await;
    fakes
        .stripe
        .set_subscription(subscription_of(&ann, "sub_ann", "canceled"));

    let again = import(&fakes, t + 60, Writes::Apply).await;

    assert_eq!(again.subscriptions_stored, 1);
    assert_eq!(again.customers_with_drift, 1, "ann's plan and key follow");
    assert_eq!(plan_of(&fakes, "ann").as_deref(), Some("free"));
}

#[tokio::test]
async fn a_dry_run_should_report_what_an_import_would_do_and_write_nothing() {
    let fakes = fakes();
    account_before_deployment(&fakes);
    let t = now();

    let report = import(&fakes, t, Writes::DryRun).await;

    assert!(report.dry_run);
    assert_eq!(report.linked_now, 2);
    assert_eq!(report.subscriptions_stored, 3);
    assert_eq!(report.catalogue["price"].stored, 2);
    assert!(report.changed());
    assert_eq!(fakes.store.link_count(), 0);
    assert!(fakes.store.stored_subscriptions().is_empty());
    assert!(fakes.store.records().is_empty());
    assert_eq!(plan_of(&fakes, "ann"), None);
    assert_eq!(fakes.store.cursor(EVENTS_CURSOR).await.unwrap(), None);
}

#[tokio::test]
async fn a_user_who_already_has_another_customer_should_not_be_relinked() {
    let fakes = linked_fakes().await;
    fakes
        .directory
        .add_user("alice", SUB, Some("alice@example.com"));
    let second = fakes
        .stripe
        .insert_customer(Some("alice@example.com"), &[("cognito_sub", SUB)]);

    let report = import(&fakes, now(), Writes::Apply).await;

    assert_eq!(report.unmatched.len(), 1);
    assert_eq!(report.unmatched[0].customer_id, second.as_str());
    assert_eq!(
        report.unmatched[0].reason,
        "its user already has another customer"
    );
    assert_eq!(
        fakes
            .store
            .customer_of_user(&UserSub::parse(SUB).unwrap())
            .await
            .unwrap()
            .unwrap()
            .customer_id,
        link().customer_id
    );
}

#[tokio::test]
async fn a_customer_that_fails_should_be_reported_and_leave_the_cursor_alone() {
    let fakes = fakes();
    account_before_deployment(&fakes);
    fakes
        .keys
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);

    let report = import(&fakes, now(), Writes::Apply).await;

    // Ann's key cannot be made; Bob (no subscription, free plan's usage plan) fails too.
    assert!(!report.failed.is_empty());
    assert!(
        report.failed[0].error.contains("injected outage"),
        "{:?}",
        report.failed
    );
    assert_eq!(report.customers_listed, 4);
    assert_eq!(report.cursor_moved_to, None);
    assert_eq!(fakes.store.cursor(EVENTS_CURSOR).await.unwrap(), None);
}

#[tokio::test]
async fn progress_should_hear_every_phase_and_item() {
    let fakes = fakes();
    account_before_deployment(&fakes);
    let steps = std::sync::Mutex::new(Vec::new());
    let importer = Importer { sync: fakes.sync() };
    importer
        .run(now(), Writes::Apply, &|step| {
            steps.lock().unwrap().push(step)
        })
        .await
        .unwrap();
    let steps = steps.into_inner().unwrap();
    let items = steps.iter().filter(|s| **s == ImportStep::Item).count();
    // 1 product, 2 prices, 1 tax rate, 4 customers.
    assert_eq!(items, 8);
    assert!(steps.contains(&ImportStep::Phase {
        name: "customer",
        total: Some(4)
    }));
}

#[tokio::test]
async fn audit_should_find_a_key_moved_by_hand_and_repair_put_it_back() {
    let fakes = fakes();
    account_before_deployment(&fakes);
    import(&fakes, now(), Writes::Apply).await;
    let ann = UserSub::parse("sub-ann").unwrap();
    let key = fakes.keys.find(&ann).await.unwrap().unwrap();
    fakes.keys.attach_only(&key, Some("up_free")).await.unwrap();
    let ann_link = fakes.store.customer_of_user(&ann).await.unwrap().unwrap();
    let sync = fakes.sync();

    let (found, repaired) = sync.audit(&ann_link, now(), Writes::DryRun).await.unwrap();
    assert_eq!(
        found,
        [Drift::KeyUsagePlans {
            key_id: key.id.clone(),
            expected: Some("up_pro".into()),
            found: vec!["up_free".into()],
        }]
    );
    assert!(!repaired);
    assert_eq!(
        fakes.keys.find(&ann).await.unwrap().unwrap().usage_plan_ids,
        ["up_free"],
        "a dry run leaves it"
    );

    let (_, repaired) = sync.audit(&ann_link, now(), Writes::Apply).await.unwrap();
    assert!(repaired);
    assert_eq!(
        fakes.keys.find(&ann).await.unwrap().unwrap().usage_plan_ids,
        ["up_pro"]
    );
    let (after, _) = sync.audit(&ann_link, now(), Writes::DryRun).await.unwrap();
    assert!(after.is_empty(), "{after:?}");
}

#[tokio::test]
async fn audit_should_find_the_plan_attribute_and_a_stack_that_went_missing() {
    let fakes = linked_fakes().await;
    fakes
        .directory
        .add_user("alice", SUB, Some("alice@example.com"));
    fakes.stripe.set_stack_template(
        "prod_pro",
        "https://billing-templates.s3.amazonaws.com/t.yaml",
    );
    apply(
        &fakes,
        &sub_event("evt_1", "customer.subscription.created", now(), "active"),
    )
    .await
    .unwrap();
    let sync = fakes.sync();
    let (linked_by_hand, _) = sync.audit(&link(), now(), Writes::DryRun).await.unwrap();
    assert_eq!(linked_by_hand, [Drift::CustomerAttribute { found: None }]);
    sync.audit(&link(), now(), Writes::Apply).await.unwrap();
    let (clean, _) = sync.audit(&link(), now(), Writes::DryRun).await.unwrap();
    assert!(clean.is_empty(), "{clean:?}");

    // By hand: the plan attribute set back, the stack deleted outside of us.
    fakes
        .directory
        .set_plan(
            &link().pool_id,
            &link().username,
            &billing_core::plans::PlanName::parse("free").unwrap(),
        )
        .await
        .unwrap();
    fakes.stacks.remove("billing-sub-1");
    let (found, repaired) = sync.audit(&link(), now(), Writes::Apply).await.unwrap();
    assert!(repaired);
    assert!(found.contains(&Drift::PlanAttribute {
        expected: "pro".into(),
        found: Some("free".into())
    }));
    assert!(found.contains(&Drift::StackMissing {
        subscription_id: "sub_1".into(),
        stack_name: "billing-sub-1".into()
    }));
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    assert!(fakes.stacks.status_of("billing-sub-1").is_some());
    let (after, _) = sync.audit(&link(), now(), Writes::DryRun).await.unwrap();
    assert!(after.is_empty(), "{after:?}");
}

#[tokio::test]
async fn a_parked_customer_linked_by_hand_should_be_synced_and_its_parked_events_forgotten() {
    let fakes = fakes();
    fakes
        .directory
        .add_user("alice", SUB, Some("alice@example.com"));
    let event = sub_event("evt_1", "customer.subscription.created", now(), "active");
    assert_eq!(apply(&fakes, &event).await.unwrap(), Outcome::Unmapped);
    fakes
        .stripe
        .set_subscription(current_subscription("active"));
    let alice = CognitoUserRef {
        username: link().username,
        sub: link().sub,
    };
    let sync = fakes.sync();

    let rehearsal = sync
        .link_by_hand(&link().customer_id, alice.clone(), now(), Writes::DryRun)
        .await
        .unwrap();
    assert!(matches!(
        rehearsal,
        HandLink::Linked {
            parked_cleared: 0,
            ..
        }
    ));
    assert_eq!(fakes.store.link_count(), 0);
    assert_eq!(fakes.store.unmapped().len(), 1);

    let linked = sync
        .link_by_hand(&link().customer_id, alice.clone(), now(), Writes::Apply)
        .await
        .unwrap();
    let HandLink::Linked {
        sync: synced,
        parked_cleared,
    } = linked
    else {
        panic!("{linked:?}");
    };
    assert_eq!(parked_cleared, 1);
    assert_eq!(synced.link, LinkResult::LinkedNow { sub: SUB.into() });
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    assert!(fakes.store.unmapped().is_empty());
    assert_eq!(fakes.store.all_links().await.unwrap(), [link()]);

    let twice = sync
        .link_by_hand(&link().customer_id, alice, now(), Writes::Apply)
        .await
        .unwrap();
    assert_eq!(twice, HandLink::CustomerAlreadyLinked { sub: SUB.into() });
}
