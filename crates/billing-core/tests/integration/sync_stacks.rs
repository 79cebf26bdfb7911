//! The stacks subscriptions pay for: created once while entitled, torn down when the
//! subscription ends or stays unpaid.

use std::sync::atomic::Ordering;

use crate::common::*;
use billing_core::ports::CustomerLinks;
use billing_core::ports::StackState;
use billing_core::webhook::sync::Outcome;

#[tokio::test]
async fn when_subscription_ends_should_downgrade_and_delete_its_stacks() {
    let fakes = linked_fakes().await;
    with_active_stack(&fakes).await;
    apply(
        &fakes,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await
    .unwrap();
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    assert_eq!(
        fakes.stacks.status_of("billing-sub-1").as_deref(),
        Some("CREATE_COMPLETE")
    );

    let outcome = apply(
        &fakes,
        &sub_event("evt_2", "customer.subscription.deleted", 20, "canceled"),
    )
    .await;
    assert_eq!(outcome.unwrap(), Outcome::Applied);
    assert_eq!(plan(&fakes).as_deref(), Some("free"));
    assert_eq!(key_plans(&fakes), (vec!["up_free".to_owned()], true));
    assert_eq!(
        fakes.stacks.status_of("billing-sub-1").as_deref(),
        Some("DELETE_COMPLETE")
    );
    assert_eq!(fakes.store.stacks()[0].state, StackState::Deleting);

    // A later event of the subscription sees CloudFormation done and records it.
    apply(
        &fakes,
        &sub_event("evt_3", "customer.subscription.updated", 30, "canceled"),
    )
    .await
    .unwrap();
    assert_eq!(fakes.store.stacks()[0].state, StackState::Deleted);
    assert_eq!(fakes.stacks.deletes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn when_unpaid_should_delete_stacks_and_when_the_lowest_plan_has_no_usage_plan_disable_the_key()
 {
    let fakes = fakes_with("grace:7", "free,pro=up_pro", false);
    fakes.store.link(&link()).await.unwrap();
    with_active_stack(&fakes).await;
    apply(
        &fakes,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await
    .unwrap();
    assert_eq!(key_plans(&fakes), (vec!["up_pro".to_owned()], true));

    apply(
        &fakes,
        &sub_event("evt_2", "customer.subscription.updated", 20, "unpaid"),
    )
    .await
    .unwrap();
    assert_eq!(plan(&fakes).as_deref(), Some("free"));
    assert_eq!(key_plans(&fakes), (Vec::new(), false));
    assert_eq!(
        fakes.stacks.status_of("billing-sub-1").as_deref(),
        Some("DELETE_COMPLETE")
    );
}

#[tokio::test]
async fn when_the_product_names_a_template_should_create_a_stack_once_and_delete_it_at_the_end() {
    let fakes = linked_fakes().await;
    fakes.stripe.set_stack_template(
        "prod_pro",
        "https://s3.amazonaws.com/billing-templates/pro.yaml",
    );
    apply(
        &fakes,
        &sub_event("evt_1", "customer.subscription.created", 10, "active"),
    )
    .await
    .unwrap();
    apply(
        &fakes,
        &sub_event("evt_2", "customer.subscription.updated", 20, "active"),
    )
    .await
    .unwrap();
    assert_eq!(fakes.stacks.creates.load(Ordering::SeqCst), 1);
    assert_eq!(
        fakes.stacks.status_of("billing-sub-1").as_deref(),
        Some("CREATE_COMPLETE")
    );
    assert_eq!(fakes.store.stacks()[0].state, StackState::Active);

    apply(
        &fakes,
        &sub_event("evt_3", "customer.subscription.deleted", 30, "canceled"),
    )
    .await
    .unwrap();
    assert_eq!(
        fakes.stacks.status_of("billing-sub-1").as_deref(),
        Some("DELETE_COMPLETE")
    );
    assert_eq!(fakes.stacks.creates.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn when_the_template_is_outside_the_allowed_bucket_should_create_no_stack_and_still_apply() {
    for refused in [
        "https://templates.example.com/pro.yaml",
        "https://s3.amazonaws.com/another-bucket/pro.yaml",
        "https://billing-templates.s3.amazonaws.com.evil.example/pro.yaml",
    ] {
        let fakes = linked_fakes().await;
        fakes.stripe.set_stack_template("prod_pro", refused);
        let outcome = apply(
            &fakes,
            &sub_event("evt_1", "customer.subscription.created", 10, "active"),
        )
        .await;
        assert_eq!(outcome.unwrap(), Outcome::Applied, "{refused}");
        assert_eq!(fakes.stacks.creates.load(Ordering::SeqCst), 0, "{refused}");
        assert!(fakes.store.stacks().is_empty(), "{refused}");
        assert_eq!(plan(&fakes).as_deref(), Some("pro"), "{refused}");
    }
}
