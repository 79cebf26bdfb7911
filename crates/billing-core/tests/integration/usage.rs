//! The usage reporter over the fakes: API calls counted per key and day reach Stripe's meter
//! once, whatever happens between the steps (a lost answer, overlapping runs, late counts, a key
//! moved between usage plans, a price not stored yet, usage too old to bill).

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::*;
use billing_core::domain::{CustomerId, CustomerLink, UserSub};
use billing_core::fakes::{FakeApiKeys, FakeStripe, InMemoryStore};
use billing_core::ports::{
    ApiKeys, BillingRecord, CustomerLinks, MeterInfo, PriceRecord, RecurringRecord, SyncStore,
    UsageStore, Versioned,
};
use billing_core::usage::{
    PENDING_RESEND_LIMIT_SECS, ReportLimits, UsageCursor, UsageReport, UsageReporter,
    UsageSettings, UsageSlot, UtcDay,
};
use billing_core::webhook::sync::Writes;

const API_PLAN: &str = "up_api";
const DAY: i64 = 24 * 3600;

fn settings() -> UsageSettings {
    UsageSettings {
        metered_usage_plans: vec![API_PLAN.into()],
        lookback_days: 3,
        invoice_grace_secs: 3600,
    }
}

fn meter() -> MeterInfo {
    MeterInfo {
        id: "mtr_api".into(),
        event_name: "api_calls".into(),
        customer_key: "stripe_customer_id".into(),
        value_key: "value".into(),
        active: true,
    }
}

async fn store_metered_price(fakes: &Fakes) {
    let price = BillingRecord::Price {
        price_id: "price_api".into(),
        price: PriceRecord {
            active: true,
            recurring: Some(RecurringRecord {
                interval: Some("month".into()),
                interval_count: Some(1),
                meter: Some("mtr_api".into()),
                trial_period_days: None,
                usage_type: Some("metered".into()),
            }),
            ..PriceRecord::default()
        },
    };
    fakes
        .store
        .put_record(&Versioned {
            event_created: 1,
            event_id: "evt_price".into(),
            state: price,
        })
        .await
        .unwrap();
}

/// Alice, linked, subscribed to the API price, with a key; her meter in Stripe; the price itself
/// not stored yet.
async fn alice_before_the_price_is_stored() -> (Fakes, String) {
    let fakes = linked_fakes().await;
    let mut subscription = current_subscription("active");
    subscription.items[0].price_id = Some("price_api".into());
    fakes
        .store
        .put_subscription(
            &Versioned {
                event_created: 1,
                event_id: "evt_sub".into(),
                state: subscription,
            },
            false,
            None,
        )
        .await
        .unwrap();
    fakes.stripe.add_meter(meter());
    let key = fakes
        .keys
        .create(&UserSub::parse(SUB).unwrap())
        .await
        .unwrap();
    (fakes, key.id)
}

/// Alice as above, her metered price stored.
async fn metered_alice() -> (Fakes, String) {
    let (fakes, key) = alice_before_the_price_is_stored().await;
    store_metered_price(&fakes).await;
    (fakes, key)
}

fn day(offset: i64) -> UtcDay {
    UtcDay::of(now()).plus(offset)
}

type FakeReporter<'a> = UsageReporter<'a, InMemoryStore, FakeApiKeys, FakeStripe>;

fn reporter<'a>(fakes: &'a Fakes, settings: &'a UsageSettings) -> FakeReporter<'a> {
    UsageReporter {
        store: &fakes.store,
        counts: &fakes.keys,
        meters: &fakes.stripe,
        settings,
    }
}

fn limits() -> ReportLimits {
    ReportLimits::for_duration(Duration::from_secs(60))
}

async fn run(fakes: &Fakes, at: i64) -> UsageReport {
    reporter(fakes, &settings())
        .run(at, limits())
        .await
        .unwrap()
}

fn billed(fakes: &Fakes) -> u64 {
    fakes.stripe.metered_total(CUSTOMER)
}

#[tokio::test]
async fn calls_on_two_days_should_reach_the_meter_once_and_a_second_run_send_nothing() {
    let (fakes, key) = metered_alice().await;
    fakes.keys.record_calls(API_PLAN, &key, day(-1), 120);
    fakes.keys.record_calls(API_PLAN, &key, day(0), 30);

    let first = run(&fakes, now()).await;
    assert_eq!(first.deltas_sent, 2);
    assert_eq!(first.calls_reported, 150);
    assert!(first.complete);
    assert_eq!(billed(&fakes), 150);
    let events = fakes.stripe.meter_events();
    assert_eq!(events[0].meter.event_name, "api_calls");
    assert_eq!(events[0].customer_id, CUSTOMER);
    assert!(
        events
            .iter()
            .all(|e| UtcDay::of(e.timestamp) == day(-1) || UtcDay::of(e.timestamp) == day(0)),
        "each delta is stamped within its day"
    );

    let second = run(&fakes, now()).await;
    assert_eq!(second.deltas_sent, 0);
    assert_eq!(billed(&fakes), 150);

    // More calls today: only the difference is sent.
    fakes.keys.record_calls(API_PLAN, &key, day(0), 12);
    let third = run(&fakes, now()).await;
    assert_eq!(third.calls_reported, 12);
    assert_eq!(billed(&fakes), 162);
}

#[tokio::test]
async fn an_answer_lost_after_stripe_took_the_event_should_be_resent_and_counted_once() {
    let (fakes, key) = metered_alice().await;
    fakes.keys.record_calls(API_PLAN, &key, day(0), 50);
    fakes.stripe.meters.lose_answers.store(1, Ordering::SeqCst);
    let settings = settings();
    let reporter = reporter(&fakes, &settings);
    let crashed = reporter.run(now(), limits()).await;
    assert!(crashed.is_err(), "the run stops on the lost answer");
    let slot = UsageSlot {
        key_id: key.clone(),
        usage_plan_id: API_PLAN.into(),
        day: day(0),
    };
    let cursor = fakes.store.usage_cursor(&slot).await.unwrap();
    assert_eq!(cursor.reported, 0);
    assert!(cursor.pending.is_some(), "the delta stays recorded");
    assert_eq!(billed(&fakes), 50, "Stripe has it");

    // More calls meanwhile. A run right away leaves the delta to the run that may still be
    // sending it; the next scheduled run sends it again (same identifier), then the rest.
    fakes.keys.record_calls(API_PLAN, &key, day(0), 7);
    let t = now();
    let moments_later = run(&fakes, t).await;
    assert_eq!(moments_later.deltas_resent, 0);
    let next = run(&fakes, t + 300).await;
    assert_eq!(next.deltas_resent, 1);
    assert_eq!(billed(&fakes), 50, "after the resend only");
    let after = run(&fakes, t + 300).await;
    assert_eq!(after.calls_reported, 7);
    assert_eq!(billed(&fakes), 57);
    assert_eq!(
        fakes.store.usage_cursor(&slot).await.unwrap(),
        UsageCursor {
            reported: 57,
            pending: None
        }
    );
}

#[tokio::test]
async fn overlapping_runs_should_send_each_delta_once() {
    let (fakes, key) = metered_alice().await;
    for offset in -3..=0 {
        fakes
            .keys
            .record_calls(API_PLAN, &key, day(offset), (13 + offset) as u64);
    }
    let t = now();
    let (a, b) = tokio::join!(run(&fakes, t), run(&fakes, t));
    assert!(a.complete && b.complete);
    assert_eq!(billed(&fakes), 10 + 11 + 12 + 13);
    let identifiers: std::collections::HashSet<_> = fakes
        .stripe
        .meter_events()
        .into_iter()
        .map(|e| e.identifier)
        .collect();
    assert_eq!(identifiers.len(), 4);
    assert_eq!(
        fakes.stripe.meters.sends.load(Ordering::SeqCst),
        4,
        "the run that recorded a delta first sends it; the other leaves it"
    );
    assert_eq!(a.deltas_sent + b.deltas_sent, 4);
    assert!(
        a.deltas_sent > 0 && b.deltas_sent > 0,
        "the runs interleaved: {a:?} {b:?}"
    );
}

#[tokio::test]
async fn late_counts_for_a_past_day_and_a_key_moved_mid_day_should_each_be_counted_once() {
    let (fakes, key) = metered_alice().await;
    fakes.keys.record_calls(API_PLAN, &key, day(-2), 100);
    run(&fakes, now()).await;
    // API Gateway's count for that day grows later; the key also moved to a second metered
    // usage plan today (a plan change), where it made calls too.
    fakes.keys.record_calls(API_PLAN, &key, day(-2), 5);
    fakes.keys.record_calls(API_PLAN, &key, day(0), 20);
    fakes.keys.record_calls("up_api_plus", &key, day(0), 30);
    let settings = UsageSettings {
        metered_usage_plans: vec![API_PLAN.into(), "up_api_plus".into()],
        lookback_days: 3,
        invoice_grace_secs: 3600,
    };
    let report = reporter(&fakes, &settings)
        .run(now(), limits())
        .await
        .unwrap();
    assert_eq!(report.calls_reported, 5 + 20 + 30);
    assert_eq!(billed(&fakes), 155);
}

#[tokio::test]
async fn flat_plans_should_cost_nothing() {
    let (fakes, key) = metered_alice().await;
    fakes.keys.record_calls("up_pro", &key, day(0), 1_000);
    let report = run(&fakes, now()).await;
    assert_eq!(report.slots, 0);
    assert_eq!(
        fakes.keys.usage_reads(),
        1,
        "only the metered usage plan is read"
    );
    assert_eq!(billed(&fakes), 0);
}

#[tokio::test]
async fn usage_with_nowhere_to_bill_yet_should_wait_and_be_sent_once_the_price_is_stored() {
    let (fakes, key) = alice_before_the_price_is_stored().await;
    fakes.keys.record_calls(API_PLAN, &key, day(0), 40);

    let waiting = run(&fakes, now()).await;
    assert_eq!(waiting.slots_unbillable, 1);
    assert_eq!(billed(&fakes), 0);

    store_metered_price(&fakes).await;
    let sent = run(&fakes, now()).await;
    assert_eq!(sent.calls_reported, 40);
    assert_eq!(billed(&fakes), 40);
}

#[tokio::test]
async fn usage_too_old_for_stripe_should_be_counted_unbillable_and_not_retried() {
    let (fakes, key) = metered_alice().await;
    let t = now();
    fakes
        .stripe
        .meters
        .now
        .store(t + 40 * DAY, Ordering::SeqCst);
    fakes.keys.record_calls(API_PLAN, &key, day(0), 9);
    let report = run(&fakes, t).await;
    assert_eq!(report.calls_unbillable, 9);
    assert_eq!(report.calls_reported, 0);
    let again = run(&fakes, t).await;
    assert_eq!((again.deltas_sent, again.calls_unbillable), (0, 0));
}

#[tokio::test]
async fn a_delta_unconfirmed_for_longer_than_stripe_deduplicates_should_not_be_resent() {
    let (fakes, key) = metered_alice().await;
    fakes.keys.record_calls(API_PLAN, &key, day(0), 50);
    fakes.stripe.meters.lose_answers.store(1, Ordering::SeqCst);
    let t = now();
    let settings = settings();
    let _ = reporter(&fakes, &settings).run(t, limits()).await;
    let much_later = t + PENDING_RESEND_LIMIT_SECS + 60;
    let report = run(&fakes, much_later).await;
    assert_eq!(report.slots_stuck, 1);
    assert_eq!(fakes.stripe.meter_events().len(), 1);
}

#[tokio::test]
async fn a_dry_run_should_say_what_a_run_would_send_and_send_nothing() {
    let (fakes, key) = metered_alice().await;
    fakes.keys.record_calls(API_PLAN, &key, day(-1), 70);
    fakes.keys.record_calls(API_PLAN, &key, day(0), 30);
    let settings = settings();
    let reporter = reporter(&fakes, &settings);
    let limits = limits();

    let rehearsal = reporter
        .run_days(now(), (day(-1), day(-1)), limits, Writes::DryRun)
        .await
        .unwrap();
    assert!(rehearsal.dry_run);
    assert_eq!((rehearsal.deltas_sent, rehearsal.calls_reported), (1, 70));
    assert_eq!(billed(&fakes), 0);
    let slot = UsageSlot {
        key_id: key.clone(),
        usage_plan_id: API_PLAN.into(),
        day: day(-1),
    };
    assert_eq!(
        fakes.store.usage_cursor(&slot).await.unwrap(),
        UsageCursor::default()
    );

    // One day only: yesterday's calls, not today's.
    let yesterday = reporter
        .run_days(now(), (day(-1), day(-1)), limits, Writes::Apply)
        .await
        .unwrap();
    assert_eq!(yesterday.calls_reported, 70);
    assert_eq!(billed(&fakes), 70);
}

#[tokio::test]
async fn a_keys_usage_should_show_what_api_gateway_counts_beside_what_stripe_has() {
    let (fakes, key) = metered_alice().await;
    fakes.keys.record_calls(API_PLAN, &key, day(-1), 70);
    run(&fakes, now()).await;
    fakes.keys.record_calls(API_PLAN, &key, day(-1), 4);
    fakes.keys.record_calls(API_PLAN, &key, day(0), 9);
    let settings = settings();
    let shown = reporter(&fakes, &settings)
        .key_usage(&key, day(-3), day(0))
        .await
        .unwrap();
    let rows: Vec<_> = shown
        .iter()
        .map(|d| (d.day.clone(), d.counted, d.reported, d.pending))
        .collect();
    assert_eq!(
        rows,
        [
            (day(-1).to_string(), 74, 70, None),
            (day(0).to_string(), 9, 0, None)
        ]
    );
}

#[tokio::test]
async fn keys_of_several_customers_on_one_meter_should_read_it_once_per_run() {
    let (fakes, alice_key) = metered_alice().await;
    let bob = CustomerLink {
        sub: UserSub::parse("sub-bob").unwrap(),
        customer_id: CustomerId::parse("cus_bob").unwrap(),
        ..link()
    };
    fakes.store.link(&bob).await.unwrap();
    let mut subscription = current_subscription("active");
    subscription.id = "sub_bob".into();
    subscription.customer_id = "cus_bob".into();
    subscription.items[0].price_id = Some("price_api".into());
    fakes
        .store
        .put_subscription(
            &Versioned {
                event_created: 1,
                event_id: "evt_bob".into(),
                state: subscription,
            },
            false,
            None,
        )
        .await
        .unwrap();
    let bob_key = fakes.keys.create(&bob.sub).await.unwrap().id;
    fakes.keys.record_calls(API_PLAN, &alice_key, day(0), 10);
    fakes.keys.record_calls(API_PLAN, &bob_key, day(0), 20);

    let report = run(&fakes, now()).await;

    assert_eq!(report.calls_reported, 30);
    assert_eq!(fakes.stripe.metered_total("cus_bob"), 20);
    assert_eq!(fakes.stripe.meters.reads.load(Ordering::SeqCst), 1);
}

/// Alice as `metered_alice`, her subscription's current period started at `start`.
async fn metered_alice_in_period_from(start: i64) -> (Fakes, String) {
    let (fakes, key) = metered_alice().await;
    let mut subscription = current_subscription("active");
    subscription.items[0].price_id = Some("price_api".into());
    subscription.current_period_start = Some(start);
    subscription.current_period_end = Some(start + 30 * DAY);
    fakes
        .store
        .put_subscription(
            &Versioned {
                event_created: 2,
                event_id: "evt_renewed".into(),
                state: subscription,
            },
            false,
            None,
        )
        .await
        .unwrap();
    (fakes, key)
}

#[tokio::test]
async fn usage_of_a_period_whose_invoice_is_final_should_be_logged_counted_and_not_sent() {
    let period_start = day(0).start();
    let (fakes, key) = metered_alice_in_period_from(period_start).await;
    // Late counts for the day before the period, seen two hours into it: past the grace.
    fakes.keys.record_calls(API_PLAN, &key, day(-1), 50);
    fakes.keys.record_calls(API_PLAN, &key, day(0), 20);
    let at = period_start + 2 * 3600;
    let report = run(&fakes, at).await;
    assert_eq!(report.calls_unbillable, 50);
    assert_eq!(report.calls_reported, 20);
    assert_eq!(billed(&fakes), 20);
    // Reported once: the next run neither sends nor counts them again.
    let again = run(&fakes, at + 3600).await;
    assert_eq!((again.calls_unbillable, again.deltas_sent), (0, 0));
    assert_eq!(billed(&fakes), 20);
}

#[tokio::test]
async fn usage_of_the_period_just_ended_should_still_be_sent_within_the_invoice_grace() {
    let period_start = day(0).start();
    let (fakes, key) = metered_alice_in_period_from(period_start).await;
    fakes.keys.record_calls(API_PLAN, &key, day(-1), 50);
    let report = run(&fakes, period_start + 1800).await;
    assert_eq!((report.calls_reported, report.calls_unbillable), (50, 0));
    // Stamped within the day it was counted: it bills the period that just ended.
    let event = &fakes.stripe.meter_events()[0];
    assert!(event.timestamp < period_start, "{event:?}");
    // A longer grace (set on the Stripe account and in USAGE_INVOICE_GRACE_SECONDS) keeps
    // later counts billable.
    let (fakes, key) = metered_alice_in_period_from(period_start).await;
    fakes.keys.record_calls(API_PLAN, &key, day(-1), 50);
    let settings = UsageSettings {
        invoice_grace_secs: 24 * 3600,
        ..settings()
    };
    let report = reporter(&fakes, &settings)
        .run(period_start + 2 * 3600, limits())
        .await
        .unwrap();
    assert_eq!((report.calls_reported, report.calls_unbillable), (50, 0));
}

#[tokio::test]
async fn a_flat_fee_plus_usage_subscription_should_bill_its_calls_to_the_metered_item() {
    let (fakes, key) = metered_alice().await;
    let mut subscription = current_subscription("active");
    let metered = subscription.items[0].clone();
    subscription.items[0].price_id = Some("price_pro_flat".into());
    subscription
        .items
        .push(billing_core::plans::SubscriptionItemState {
            price_id: Some("price_api".into()),
            plan: None,
            ..metered
        });
    fakes
        .store
        .put_subscription(
            &Versioned {
                event_created: 2,
                event_id: "evt_overage".into(),
                state: subscription,
            },
            false,
            None,
        )
        .await
        .unwrap();
    fakes.keys.record_calls(API_PLAN, &key, day(0), 12);
    let report = run(&fakes, now()).await;
    assert_eq!((report.calls_reported, report.slots_unbillable), (12, 0));
    assert_eq!(fakes.stripe.meter_events()[0].meter.id, "mtr_api");
}
