//! The scheduled reconciler over the fakes: missed events applied once and in order, a cursor
//! that only passes what was handled, a budget that stops and resumes, and reviews that act
//! on time with no event.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::*;
use billing_core::fakes::FakePorts;
use billing_core::plans::SubscriptionStatus;
use billing_core::ports::{
    EVENTS_CURSOR, EventLog, ReconcilerStore, StackRecord, StackState, SyncStore,
};
use billing_core::reconciler::{
    EVENT_OVERLAP_SECS, Reconciler, RunLimits, RunOptions, RunReport, STRIPE_EVENT_RETENTION_SECS,
};
use billing_core::webhook::parse_event;
use serde_json::{Value, json};

const DAY: i64 = 24 * 3600;

fn reconciler(fakes: &Fakes) -> Reconciler<'_, FakePorts> {
    Reconciler {
        sync: fakes.sync(),
        livemode: false,
    }
}

fn unlimited() -> RunLimits {
    RunLimits::for_duration(Duration::from_secs(60))
}

async fn run(fakes: &Fakes, now: i64) -> RunReport {
    reconciler(fakes)
        .run(now, RunOptions::default(), unlimited())
        .await
        .unwrap()
}

/// The webhook received it.
async fn deliver(fakes: &Fakes, event: &Value, now: i64) {
    let event = parse_event(event.to_string().as_bytes()).unwrap();
    fakes.sync().apply(&event, now).await.unwrap();
}

fn outcome(report: &RunReport, name: &str) -> usize {
    report.outcomes.get(name).copied().unwrap_or(0)
}

fn product_event(id: &str, created: i64) -> Value {
    event(
        id,
        "product.updated",
        created,
        json!({"id": "prod_pro", "object": "product", "name": "Pro", "active": true, "metadata": {"plan": "pro"}}),
    )
}

/// `sub_1` with this status and period end.
fn sub_event_until(id: &str, created: i64, status: &str, period_end: i64) -> Value {
    let mut event = sub_event(id, "customer.subscription.updated", created, status);
    event["data"]["object"]["items"]["data"][0]["current_period_end"] = json!(period_end);
    event
}

#[tokio::test]
async fn missed_events_should_be_applied_oldest_first_and_delivered_ones_skipped() {
    let fakes = linked_fakes().await;
    let t = now();
    let events = [
        sub_event("evt_1", "customer.subscription.created", t - 100, "active"),
        sub_event("evt_2", "customer.subscription.updated", t - 80, "past_due"),
        product_event("evt_3", t - 60),
        sub_event("evt_4", "customer.subscription.updated", t - 40, "active"),
        sub_event("evt_5", "customer.subscription.updated", t - 20, "canceled"),
    ];
    for event in &events {
        fakes.stripe.record_event(event);
    }
    // The webhook got the first one only.
    deliver(&fakes, &events[0], t - 100).await;

    let report = run(&fakes, t).await;
    assert_eq!(report.events_listed, 5);
    assert_eq!(outcome(&report, "duplicate"), 1);
    assert_eq!(report.events_repaired(), 4);
    assert!(report.complete);
    assert_eq!(report.cursor_after, Some(t));
    // In order: the cancellation is the state kept, and the plan follows it.
    assert_eq!(
        fakes.store.stored_subscriptions()[0].status,
        SubscriptionStatus::Canceled
    );
    assert_eq!(plan(&fakes).as_deref(), Some("free"));
    // Pages of three, newest first, per group of twenty types.
    assert!(fakes.stripe.event_pages_listed() >= 4);

    // Within the overlap the next run sees them again, and does nothing twice.
    let again = run(&fakes, t + 60).await;
    assert_eq!(again.events_listed, 5);
    assert_eq!(outcome(&again, "duplicate"), 5);
    assert_eq!(again.events_repaired(), 0);
    assert_eq!(again.cursor_before, Some(t));
    assert_eq!(again.cursor_after, Some(t + 60));

    // Once the cursor is an overlap past them, they are not listed any more.
    run(&fakes, t + EVENT_OVERLAP_SECS).await;
    let later = run(&fakes, t + EVENT_OVERLAP_SECS + 1).await;
    assert_eq!(later.events_listed, 0);
}

/// A second look at a window (the overlap, or events the webhook got) reads the event log a
/// hundred events at a time; only the events not done go through a claim.
#[tokio::test]
async fn events_the_log_has_done_should_cost_one_read_per_hundred_and_no_claim() {
    let fakes = linked_fakes().await;
    let t = now();
    let events: Vec<Value> = (0..150)
        .map(|i| product_event(&format!("evt_{i:03}"), t - 200 + i))
        .collect();
    for event in &events {
        fakes.stripe.record_event(event);
    }
    for event in &events[..149] {
        deliver(&fakes, event, t - 60).await;
    }
    fakes.store.reset_calls();

    let report = run(&fakes, t).await;

    assert!(report.complete, "{report:?}");
    assert_eq!(report.events_listed, 150);
    assert_eq!(report.events_handled, 150);
    assert_eq!(outcome(&report, "duplicate"), 149);
    assert_eq!(report.events_repaired(), 1, "the one the webhook missed");
    assert_eq!(report.cursor_after, Some(t));
    let calls = fakes.store.calls();
    let count = |name: &str| calls.iter().filter(|call| **call == name).count();
    assert_eq!(count("BatchGetItem"), 2, "{calls:?}");
    assert_eq!(
        (count("TransactWriteItems"), count("PutItem")),
        (1, 0),
        "the missed event's one write and no claim: {calls:?}"
    );
}

#[tokio::test]
async fn an_event_stamped_ahead_of_our_clock_should_be_applied() {
    let fakes = linked_fakes().await;
    let t = now();
    fakes.stripe.record_event(&sub_event(
        "evt_ahead",
        "customer.subscription.created",
        t + 5,
        "active",
    ));
    let report = run(&fakes, t).await;
    assert_eq!(report.events_repaired(), 1);
    assert_eq!(report.cursor_after, Some(t + 5));
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
}

#[tokio::test]
async fn the_cursor_should_not_pass_an_event_that_failed() {
    let fakes = linked_fakes().await;
    let t = now();
    fakes.stripe.record_event(&product_event("evt_1", t - 50));
    fakes.stripe.record_event(&sub_event(
        "evt_2",
        "customer.subscription.created",
        t - 30,
        "active",
    ));
    // A stack whose deletion CloudFormation has finished meanwhile.
    fakes
        .store
        .put_stack(&StackRecord {
            subscription_id: "sub_old".into(),
            stack_name: "billing-sub-old".into(),
            state: StackState::Deleting,
            updated_at: 0,
        })
        .await
        .unwrap();
    fakes.directory.failing.store(true, Ordering::SeqCst);

    let failed = reconciler(&fakes)
        .run(t, RunOptions::default(), unlimited())
        .await;
    assert!(failed.is_err(), "a Cognito outage fails the run");
    assert_eq!(
        fakes.store.stacks()[0].state,
        StackState::Deleted,
        "stacks are swept whatever failed before"
    );
    assert_eq!(
        fakes.store.cursor(EVENTS_CURSOR).await.unwrap(),
        Some(t - 50),
        "the cursor stops after the last event handled"
    );

    fakes.directory.failing.store(false, Ordering::SeqCst);
    let report = run(&fakes, t + 10).await;
    assert_eq!(report.events_repaired(), 1);
    assert_eq!(outcome(&report, "duplicate"), 1);
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    assert_eq!(report.cursor_after, Some(t + 10));
}

/// An event that cannot be applied yet (API Gateway's key quota is reached) holds the cursor but
/// not the events after it; the next run, once keys can be made again, applies it.
#[tokio::test]
async fn an_event_refused_for_the_key_quota_should_not_hold_back_the_next_ones() {
    let fakes = linked_fakes().await;
    let t = now();
    fakes.stripe.record_event(&product_event("evt_0", t - 70));
    fakes.stripe.record_event(&sub_event(
        "evt_1",
        "customer.subscription.created",
        t - 50,
        "active",
    ));
    let mut later = product_event("evt_2", t - 30);
    later["data"]["object"]["name"] = json!("Pro, renamed");
    fakes.stripe.record_event(&later);
    fakes.keys.quota_reached.store(true, Ordering::SeqCst);

    let failed = reconciler(&fakes)
        .run(t, RunOptions::default(), unlimited())
        .await;
    assert!(
        failed.is_err(),
        "the run says it could not apply everything"
    );
    assert_eq!(
        fakes.store.done_among(&["evt_1", "evt_2"]).await.unwrap(),
        HashSet::from(["evt_2".to_owned()]),
        "the event after the refused one is applied, the refused one is not"
    );
    assert_eq!(
        fakes.store.cursor(EVENTS_CURSOR).await.unwrap(),
        Some(t - 70),
        "the cursor stays before the refused event"
    );

    fakes.keys.quota_reached.store(false, Ordering::SeqCst);
    let report = run(&fakes, t + 10).await;
    assert_eq!(report.events_repaired(), 1);
    assert_eq!(outcome(&report, "duplicate"), 2, "the events around it");
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    assert_eq!(fakes.keys.keys().len(), 1);
    assert_eq!(report.cursor_after, Some(t + 10));
}

/// Many failures in one run look like an outage: the run stops instead of trying every event.
#[tokio::test]
async fn a_run_should_stop_after_too_many_failed_events() {
    use billing_core::reconciler::MAX_FAILED_EVENTS_PER_RUN;
    let fakes = linked_fakes().await;
    let t = now();
    for n in 0..MAX_FAILED_EVENTS_PER_RUN + 5 {
        let created = t - 200 + i64::try_from(n).unwrap();
        fakes.stripe.record_event(&sub_event(
            &format!("evt_{n}"),
            "customer.subscription.updated",
            created,
            "active",
        ));
    }
    fakes.directory.failing.store(true, Ordering::SeqCst);
    fakes.directory.calls.store(0, Ordering::SeqCst);
    assert!(
        reconciler(&fakes)
            .run(t, RunOptions::default(), unlimited())
            .await
            .is_err()
    );
    assert_eq!(
        fakes.directory.calls.load(Ordering::SeqCst),
        MAX_FAILED_EVENTS_PER_RUN
    );
}

#[tokio::test]
async fn a_run_out_of_budget_should_stop_and_the_next_should_resume() {
    let fakes = linked_fakes().await;
    let t = now();
    let statuses = ["active", "past_due", "active", "past_due", "active"];
    for (i, status) in statuses.iter().enumerate() {
        let created = t - 100 + 10 * i as i64;
        fakes.stripe.record_event(&sub_event(
            &format!("evt_{i}"),
            "customer.subscription.updated",
            created,
            status,
        ));
    }
    let two = RunLimits {
        max_items: 2,
        ..unlimited()
    };
    let first = reconciler(&fakes)
        .run(t, RunOptions::default(), two)
        .await
        .unwrap();
    assert!(!first.complete);
    assert_eq!(first.events_handled, 2);
    assert_eq!(first.cursor_after, Some(t - 90));

    let second = run(&fakes, t + 1).await;
    assert!(second.complete);
    assert_eq!(outcome(&second, "duplicate"), 2);
    assert_eq!(second.events_repaired(), 3);
    assert_eq!(
        fakes.store.stored_subscriptions()[0].status,
        SubscriptionStatus::Active
    );
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));

    let out_of_time = RunLimits {
        deadline: tokio::time::Instant::now(),
        max_items: usize::MAX,
    };
    let none = reconciler(&fakes)
        .run(t + 2, RunOptions::default(), out_of_time)
        .await
        .unwrap();
    assert!(!none.complete);
    assert_eq!(none.events_handled, 0);
}

#[tokio::test]
async fn two_overlapping_runs_should_apply_each_event_once() {
    let fakes = linked_fakes().await;
    let t = now();
    for i in 0..6 {
        fakes.stripe.record_event(&sub_event(
            &format!("evt_{i}"),
            "customer.subscription.updated",
            t - 60 + i,
            if i % 2 == 0 { "past_due" } else { "active" },
        ));
    }
    let (a, b) = tokio::join!(run(&fakes, t), run(&fakes, t));
    assert_eq!(a.events_repaired() + b.events_repaired(), 6);
    // A run that met an event the other was applying (a key's creation lets it in) stops
    // there, incomplete, and the next run resumes: every event is found applied once.
    for report in [&a, &b] {
        let seen = report.events_repaired() + outcome(report, "duplicate");
        assert!(seen == 6 || !report.complete, "{report:?}");
    }
    let next = run(&fakes, t + 1).await;
    assert!(next.complete, "{next:?}");
    assert_eq!(next.events_repaired(), 0);
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
}

#[tokio::test]
async fn a_cursor_older_than_stripes_events_should_be_reported() {
    let fakes = linked_fakes().await;
    let t = now();
    fakes
        .store
        .advance_cursor(EVENTS_CURSOR, t - 31 * DAY, 0)
        .await
        .unwrap();
    fakes.stripe.record_event(&sub_event(
        "evt_1",
        "customer.subscription.updated",
        t - STRIPE_EVENT_RETENTION_SECS + 100,
        "active",
    ));
    let report = run(&fakes, t).await;
    assert!(report.cursor_too_old);
    assert_eq!(report.events_repaired(), 1);
    assert!(report.complete, "caught up an hour at a time");
    assert_eq!(report.cursor_after, Some(t));
    assert!(!run(&fakes, t + 1).await.cursor_too_old);

    // Asked from a given time, the stored cursor is not moved back.
    let since = reconciler(&fakes)
        .run(
            t + 2,
            RunOptions {
                since: Some(t - 1_000),
                ..Default::default()
            },
            unlimited(),
        )
        .await
        .unwrap();
    assert_eq!(since.cursor_before, Some(t + 1));
    assert_eq!(since.cursor_after, Some(t + 2));
}

#[tokio::test]
async fn a_grace_that_ends_without_an_event_should_revoke_access_on_time() {
    let fakes = linked_fakes().await;
    let t0 = now();
    deliver(
        &fakes,
        &sub_event_until("evt_1", t0 - 10, "active", t0 + 30 * DAY),
        t0 - 10,
    )
    .await;
    deliver(
        &fakes,
        &sub_event_until("evt_2", t0, "past_due", t0 + 30 * DAY),
        t0,
    )
    .await;
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    let grace_end = t0 + 7 * DAY;
    assert_eq!(fakes.store.review_of(CUSTOMER, "sub_1"), Some(grace_end));

    // A rehearsal: the reviews as of the grace's end, the events as of now.
    let rehearsal = reconciler(&fakes)
        .run(
            t0 + 1,
            RunOptions {
                reviews_as_of: Some(grace_end),
                ..Default::default()
            },
            unlimited(),
        )
        .await
        .unwrap();
    assert_eq!(rehearsal.reviews, 1);
    assert_eq!(
        rehearsal.cursor_after,
        Some(t0 + 1),
        "the cursor stays at now"
    );
    assert_eq!(plan(&fakes).as_deref(), Some("free"));
    // Paid again before the real end: access back, and the grace's review gone.
    deliver(
        &fakes,
        &sub_event_until("evt_paid", t0 + 2, "active", t0 + 30 * DAY),
        t0 + 2,
    )
    .await;
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    assert_eq!(fakes.store.review_of(CUSTOMER, "sub_1"), None);
    deliver(
        &fakes,
        &sub_event_until("evt_again", t0 + 3, "past_due", t0 + 30 * DAY),
        t0 + 3,
    )
    .await;
    let grace_end = t0 + 3 + 7 * DAY;
    assert_eq!(fakes.store.review_of(CUSTOMER, "sub_1"), Some(grace_end));

    let before = run(&fakes, grace_end - 1).await;
    assert_eq!(before.reviews, 0);
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));

    let at_end = run(&fakes, grace_end).await;
    assert_eq!(at_end.reviews, 1);
    assert_eq!(at_end.reviews_revised, 0, "a grace needs no Stripe call");
    assert_eq!(plan(&fakes).as_deref(), Some("free"));
    assert_eq!(key_plans(&fakes), (vec!["up_free".to_owned()], true));
    assert_eq!(fakes.store.review_of(CUSTOMER, "sub_1"), None);
    assert_eq!(
        run(&fakes, grace_end + 60).await.reviews,
        0,
        "reviewed once"
    );

    // A payment restores access as usual.
    deliver(
        &fakes,
        &sub_event_until("evt_3", grace_end + 100, "active", t0 + 30 * DAY),
        grace_end + 100,
    )
    .await;
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
}

#[tokio::test]
async fn a_trial_past_its_end_without_an_event_should_be_read_from_stripe() {
    let fakes = linked_fakes().await;
    let t0 = now();
    let trial_end = t0 + 14 * DAY;
    deliver(
        &fakes,
        &sub_event_until("evt_1", t0, "trialing", trial_end),
        t0,
    )
    .await;
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    let check = trial_end + billing_core::plans::PERIOD_END_SLACK_SECS;
    assert_eq!(fakes.store.review_of(CUSTOMER, "sub_1"), Some(check));

    // Stripe has not moved it yet: nothing changes, asked again an hour later.
    let mut trialing = current_subscription("trialing");
    trialing.current_period_end = Some(trial_end);
    fakes.stripe.set_subscription(trialing);
    let early = run(&fakes, check).await;
    assert_eq!((early.reviews, early.reviews_revised), (1, 0));
    assert_eq!(
        fakes.store.review_of(CUSTOMER, "sub_1"),
        Some(check + billing_core::plans::PERIOD_END_RECHECK_SECS)
    );

    // The trial ended unpaid and its events never came.
    let mut ended = current_subscription("incomplete_expired");
    ended.current_period_end = Some(trial_end);
    fakes.stripe.set_subscription(ended);
    let report = run(&fakes, check + billing_core::plans::PERIOD_END_RECHECK_SECS).await;
    assert_eq!((report.reviews, report.reviews_revised), (1, 1));
    assert_eq!(
        fakes.store.stored_subscriptions()[0].status,
        SubscriptionStatus::IncompleteExpired
    );
    assert_eq!(plan(&fakes).as_deref(), Some("free"));
    assert_eq!(fakes.store.review_of(CUSTOMER, "sub_1"), None);

    // Its late event is older than nothing we hold: still applied after the revision.
    deliver(
        &fakes,
        &sub_event_until("evt_2", trial_end + 5, "active", trial_end + 30 * DAY),
        trial_end + 5,
    )
    .await;
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
}

/// A review that finds the subscription ended tears its stack down and stops counting it known:
/// a later event that entitles again makes the stack anew.
#[tokio::test]
async fn a_review_that_ends_a_subscription_should_tear_its_stack_down_and_forget_it_known() {
    let fakes = linked_fakes().await;
    fakes.stripe.set_stack_template(
        "prod_pro",
        "https://s3.amazonaws.com/billing-templates/pro.yaml",
    );
    let t0 = now();
    let trial_end = t0 + 14 * DAY;
    deliver(
        &fakes,
        &sub_event_until("evt_1", t0, "trialing", trial_end),
        t0,
    )
    .await;
    assert_eq!(fakes.stacks.creates.load(Ordering::SeqCst), 1);

    let mut ended = current_subscription("incomplete_expired");
    ended.current_period_end = Some(trial_end);
    fakes.stripe.set_subscription(ended);
    let check = trial_end + billing_core::plans::PERIOD_END_SLACK_SECS;
    let report = run(&fakes, check).await;
    assert_eq!((report.reviews, report.reviews_revised), (1, 1));
    assert_eq!(
        fakes.stacks.status_of("billing-sub-1").as_deref(),
        Some("DELETE_COMPLETE")
    );
    fakes.sync().sweep(check).await.unwrap();

    deliver(
        &fakes,
        &sub_event_until("evt_2", trial_end + 5, "active", trial_end + 30 * DAY),
        trial_end + 5,
    )
    .await;
    assert_eq!(plan(&fakes).as_deref(), Some("pro"));
    assert_eq!(
        fakes.stacks.creates.load(Ordering::SeqCst),
        2,
        "made anew, not taken for known"
    );
}

#[tokio::test]
async fn a_rehearsal_should_count_the_missed_events_and_apply_none() {
    let fakes = linked_fakes().await;
    let t = now();
    let created = sub_event("evt_1", "customer.subscription.created", t - 100, "active");
    let canceled = sub_event("evt_2", "customer.subscription.updated", t - 50, "canceled");
    fakes.stripe.record_event(&created);
    fakes.stripe.record_event(&canceled);
    deliver(&fakes, &created, t - 100).await;

    let rehearsal = reconciler(&fakes)
        .rehearse(t, RunOptions::default())
        .await
        .unwrap();

    assert_eq!(rehearsal.events_listed, 2);
    assert_eq!(
        rehearsal.events_missed.get("customer.subscription.updated"),
        Some(&1)
    );
    assert_eq!(rehearsal.events_missed.values().sum::<usize>(), 1);
    assert_eq!(
        fakes.store.stored_subscriptions()[0].status,
        SubscriptionStatus::Active,
        "nothing applied"
    );
    assert_eq!(fakes.store.cursor(EVENTS_CURSOR).await.unwrap(), None);
}

/// Keys a rotation retired: left alone during their grace, disabled when it ends, deleted once
/// the hold for the usage reporter's last reading is over; the owner's current key untouched.
#[tokio::test]
async fn retired_keys_should_be_disabled_after_their_grace_and_deleted_after_the_hold() {
    use billing_core::ports::ApiKeys;
    use billing_core::reconciler::RETIRED_KEY_HOLD_SECS;

    let fakes = linked_fakes().await;
    let owner = billing_core::domain::UserSub::parse(SUB).unwrap();
    let t = now();
    let old = fakes.keys.create(&owner).await.unwrap();
    fakes.keys.retire(&old.id, &owner, t + 3600).await.unwrap();
    let current = fakes.keys.create(&owner).await.unwrap();
    let enabled = |id: &str| {
        fakes
            .keys
            .keys()
            .iter()
            .find(|key| key.id == id)
            .map(|key| key.enabled)
    };

    let during_grace = run(&fakes, t + 3599).await;
    assert_eq!(during_grace.retired_keys_disabled, 0);
    assert_eq!(enabled(&old.id), Some(true));

    let after_grace = run(&fakes, t + 3600).await;
    assert_eq!(after_grace.retired_keys_disabled, 1);
    assert_eq!(enabled(&old.id), Some(false));
    assert_eq!(run(&fakes, t + 3700).await.retired_keys_disabled, 0);

    let before_hold_ends = run(&fakes, t + 3600 + RETIRED_KEY_HOLD_SECS - 1).await;
    assert_eq!(before_hold_ends.retired_keys_deleted, 0);
    // Rehearsed as of a later time, as the CLI's --reviews-as-of does.
    let after_hold = reconciler(&fakes)
        .run(
            t,
            RunOptions {
                reviews_as_of: Some(t + 3600 + RETIRED_KEY_HOLD_SECS),
                ..RunOptions::default()
            },
            unlimited(),
        )
        .await
        .unwrap();
    assert_eq!(after_hold.retired_keys_deleted, 1);
    assert_eq!(enabled(&old.id), None);
    assert_eq!(enabled(&current.id), Some(true));
}
