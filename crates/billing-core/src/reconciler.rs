//! The scheduled reconciler: converges without events.
//!
//! One run, bounded by `RunLimits`, does three things in order:
//! 1. Missed events: lists Stripe's events of the types we use (`GET /v1/events`), created since
//!    the stored cursor less `EVENT_OVERLAP_SECS`, an hour's window at a time, and applies them
//!    oldest first through the webhook's own `SyncService::receive`; the event log, read a
//!    hundred events at a time first, makes an event already delivered a no-op. The cursor
//!    moves only past events that were handled. Stripe keeps events 30 days: an older cursor
//!    is reported (`cursor_too_old`) and listing starts at the oldest events Stripe still has;
//!    the customers whose events are gone need a full resync (`billing-admin import`).
//! 2. Reviews: stored subscriptions whose review time has come (`AccessPolicy::review_at`: a
//!    grace that ends, a trial or cancellation past its period end), only once the events are
//!    caught up, so a payment that was missed is applied before a grace is judged.
//! 3. Stacks: the ones still being deleted are checked again (the former sweep).
//! 4. Retired API keys (rotations): disabled once their grace is over, deleted
//!    `RETIRED_KEY_HOLD_SECS` later, once the usage reporter has read their last calls.
//!
//! A run that runs out of budget says so (`complete: false`); the next run resumes from the
//! cursor and the review index.

use std::collections::{BTreeMap, HashSet};

use tracing::{error, info, warn};

use crate::error::{Chain, Result};
use crate::ports::{
    ApiKeys, EVENTS_CURSOR, EventFeed, EventLog, EventsQuery, ListedEvent, ReconcilerStore,
    SyncPorts, SyncStore,
};
use crate::webhook::event::USED_EVENT_TYPES;
use crate::webhook::sync::{Outcome, Receipt, ReviewOutcome, SyncService};

/// Events are listed again this far back from the cursor: Stripe's list may show an event a
/// little after its `created`.
pub const EVENT_OVERLAP_SECS: i64 = 300;
/// Events are listed and applied an hour at a time, so a long outage is caught up in steps.
pub const EVENT_WINDOW_SECS: i64 = 3600;
/// How long Stripe keeps events.
pub const STRIPE_EVENT_RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Stripe's limit on `types[]` in one list request.
const TYPES_PER_LIST: usize = 20;
/// Due reviews read per query.
const REVIEW_BATCH: usize = 100;
/// A retired key stays (disabled) this long after its grace: the usage reporter reads the last
/// days' counts again each run (late counts included), so its last calls are billed before it
/// goes.
pub const RETIRED_KEY_HOLD_SECS: i64 = 2 * 24 * 3600;

/// How much one run may do.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// Stop starting new work after this.
    pub deadline: tokio::time::Instant,
    /// Stop after handling this many listed events and reviews together.
    pub max_items: usize,
}

impl RunLimits {
    pub fn for_duration(budget: std::time::Duration) -> Self {
        Self {
            deadline: tokio::time::Instant::now() + budget,
            max_items: usize::MAX,
        }
    }

    fn exhausted(&self, report: &RunReport) -> bool {
        tokio::time::Instant::now() >= self.deadline
            || report.events_handled + report.reviews >= self.max_items
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunReport {
    pub cursor_before: Option<i64>,
    pub cursor_after: Option<i64>,
    /// The cursor was older than the events Stripe keeps: some events are lost for good.
    pub cursor_too_old: bool,
    /// `GET /v1/events` requests made.
    pub event_pages: usize,
    pub events_listed: usize,
    pub events_handled: usize,
    /// Listed events that failed (the cursor stays before the first; the next run retries).
    pub events_failed: usize,
    /// Listed events by outcome (`applied` are the ones the webhook had missed).
    pub outcomes: BTreeMap<String, usize>,
    pub reviews: usize,
    /// Reviews where Stripe's state had moved without an event.
    pub reviews_revised: usize,
    pub stacks_still_deleting: usize,
    /// Rotated-out keys whose grace ended, disabled by this run.
    pub retired_keys_disabled: usize,
    /// Rotated-out keys deleted by this run (their hold after the grace was over).
    pub retired_keys_deleted: usize,
    /// Everything caught up; `false` when the budget ran out (the next run resumes).
    pub complete: bool,
}

impl RunReport {
    /// Events the webhook had not applied and this run did.
    pub fn events_repaired(&self) -> usize {
        self.outcomes
            .get(Outcome::Applied.as_str())
            .copied()
            .unwrap_or(0)
    }
}

/// What an operator may ask of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// List events from this time instead of the cursor (the cursor still only moves forward).
    pub since: Option<i64>,
    /// Judge the reviews (and retired keys' graces) as of this time instead of now: a
    /// rehearsal of what the schedule will do by then (e.g. which graces will have ended), and
    /// how tests pass days.
    pub reviews_as_of: Option<i64>,
}

/// What a run would look at, without applying anything (`billing-admin reconcile --dry-run`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rehearsal {
    pub cursor: Option<i64>,
    pub listed_from: i64,
    pub events_listed: usize,
    /// Listed events not in the event log: the ones a run would apply, by type.
    pub events_missed: BTreeMap<String, usize>,
    /// Subscriptions whose review is due (at most one batch).
    pub reviews_due: usize,
    pub stacks_deleting: usize,
}

#[derive(Debug)]
pub struct Reconciler<'a, P: SyncPorts> {
    pub sync: SyncService<'a, P>,
    /// The deployment's mode: the events listed are of the key's mode.
    pub livemode: bool,
}

#[derive(Debug, Clone, Copy)]
enum Progress {
    Done,
    OutOfBudget,
}

/// How applying one window's events ended.
enum WindowEnd {
    Finished,
    /// Out of budget, an event another delivery holds, or too many failures.
    Stopped,
}

/// Events that failed in one run: the run goes on past each (the cursor stays before the
/// first), so one event that cannot be applied yet (an account's key quota reached) does not
/// hold back the others; this many in one run looks like an outage, and the run stops.
pub const MAX_FAILED_EVENTS_PER_RUN: usize = 10;

impl<P: SyncPorts> Reconciler<'_, P> {
    /// One run at `now`.
    pub async fn run(&self, now: i64, options: RunOptions, limits: RunLimits) -> Result<RunReport> {
        let mut report = RunReport::default();
        let events = self
            .catch_up_events(now, options.since, &limits, &mut report)
            .await;
        let reviews = match events {
            Ok(Progress::Done) => {
                let as_of = options.reviews_as_of.unwrap_or(now);
                self.review_due(as_of, &limits, &mut report).await
            }
            Ok(Progress::OutOfBudget) | Err(_) => Ok(Progress::OutOfBudget),
        };
        // Stacks and retired keys are swept whatever happened above: they need neither Stripe
        // nor the events.
        let swept = self.sync.sweep(now).await;
        let retired = self
            .retire_keys(options.reviews_as_of.unwrap_or(now), &mut report)
            .await;
        let (events, reviews) = (events?, reviews?);
        report.stacks_still_deleting = swept?;
        retired?;
        report.complete = matches!((events, reviews), (Progress::Done, Progress::Done));
        info!(
            cursor_after = report.cursor_after,
            events_listed = report.events_listed,
            events_repaired = report.events_repaired(),
            reviews = report.reviews,
            complete = report.complete,
            "reconciler run done"
        );
        Ok(report)
    }

    /// What a run at `now` would look at: the events it would list and which of them the log
    /// has not seen, the reviews due and the stacks being deleted. Reads only.
    pub async fn rehearse(&self, now: i64, options: RunOptions) -> Result<Rehearsal> {
        let cursor = self.sync.store.cursor(EVENTS_CURSOR).await?;
        let listed_from = options
            .since
            .or(cursor.map(|cursor| cursor - EVENT_OVERLAP_SECS))
            .unwrap_or(now - EVENT_OVERLAP_SECS)
            .max(now - STRIPE_EVENT_RETENTION_SECS);
        let mut report = RunReport::default();
        let events = self
            .list_window(listed_from, now + EVENT_OVERLAP_SECS, &mut report)
            .await?;
        let mut rehearsal = Rehearsal {
            cursor,
            listed_from,
            events_listed: events.len(),
            ..Rehearsal::default()
        };
        let done = self.done_among(&events).await?;
        for event in &events {
            if !done.contains(&event.id) {
                let event_type = serde_json::from_slice::<serde_json::Value>(&event.body)
                    .ok()
                    .and_then(|body| body["type"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "-".to_owned());
                *rehearsal.events_missed.entry(event_type).or_default() += 1;
            }
        }
        let as_of = options.reviews_as_of.unwrap_or(now);
        rehearsal.reviews_due = self
            .sync
            .store
            .due_reviews(as_of, REVIEW_BATCH)
            .await?
            .len();
        rehearsal.stacks_deleting = self
            .sync
            .store
            .stacks_in_state(crate::ports::StackState::Deleting)
            .await?
            .len();
        Ok(rehearsal)
    }

    async fn catch_up_events(
        &self,
        now: i64,
        since: Option<i64>,
        limits: &RunLimits,
        report: &mut RunReport,
    ) -> Result<Progress> {
        let stored = self.sync.store.cursor(EVENTS_CURSOR).await?;
        report.cursor_before = stored;
        report.cursor_after = stored;
        let mut from = since
            .or(stored.map(|cursor| cursor - EVENT_OVERLAP_SECS))
            .unwrap_or(now - EVENT_OVERLAP_SECS);
        let oldest_kept = now - STRIPE_EVENT_RETENTION_SECS;
        if from < oldest_kept {
            if since.is_none() {
                report.cursor_too_old = true;
                error!(cursor = ?stored, oldest_kept, "reconciler cursor is older than the events Stripe keeps: events may be lost; resync the customers with billing-admin import");
            }
            from = oldest_kept;
        }
        // The first failure holds the cursor; the events after it are still applied (the
        // event log makes the next run's second look at them a no-op).
        let mut first_failure: Option<crate::error::Error> = None;
        let progress = loop {
            if limits.exhausted(report) {
                break Progress::OutOfBudget;
            }
            let to = (from + EVENT_WINDOW_SECS).min(now);
            // The last window reaches a little past our clock: Stripe's may be ahead of it.
            let list_to = if to >= now {
                now + EVENT_OVERLAP_SECS
            } else {
                to
            };
            let events = self.list_window(from, list_to, report).await?;
            let done = self.done_among(&events).await?;
            let (handled_through, end) = self
                .apply_listed(events, &done, now, limits, report, &mut first_failure)
                .await;
            // One cursor write per window or stop, never past an event that was not handled.
            let reached = match (&end, &first_failure) {
                (_, Some(_)) | (WindowEnd::Stopped, None) => handled_through,
                (WindowEnd::Finished, None) => Some(handled_through.map_or(to, |at| at.max(to))),
            };
            if let Some(at) = reached {
                self.advance(at, now, report).await?;
            }
            match end {
                WindowEnd::Finished if to >= now => break Progress::Done,
                WindowEnd::Finished => from = to,
                WindowEnd::Stopped => break Progress::OutOfBudget,
            }
        };
        match first_failure {
            Some(failure) => Err(failure),
            None => Ok(progress),
        }
    }

    /// Applies listed events in order; returns the `created` of the last one handled before
    /// any failure (the cursor may move up to it). A failed event is logged, counted and kept
    /// in `first_failure` (if it is the first), and the next events are applied.
    async fn apply_listed(
        &self,
        events: Vec<ListedEvent>,
        done: &HashSet<String>,
        now: i64,
        limits: &RunLimits,
        report: &mut RunReport,
        first_failure: &mut Option<crate::error::Error>,
    ) -> (Option<i64>, WindowEnd) {
        let mut handled_through = None;
        for event in events {
            if limits.exhausted(report) || report.events_failed >= MAX_FAILED_EVENTS_PER_RUN {
                return (handled_through, WindowEnd::Stopped);
            }
            match self
                .handle(&event, done.contains(&event.id), now, report)
                .await
            {
                Ok(true) if first_failure.is_none() => handled_through = Some(event.created),
                Ok(true) => {}
                Ok(false) => return (handled_through, WindowEnd::Stopped),
                Err(failure) => {
                    // receive() logged the failure itself (at error, with the event's type).
                    warn!(event_id = %event.id, error = %Chain(&failure), "reconciler could not apply a listed event; the cursor stays before it, the next events are applied");
                    report.events_failed += 1;
                    first_failure.get_or_insert(failure);
                }
            }
        }
        (handled_through, WindowEnd::Finished)
    }

    /// Every event of the types we use created in `[from, to]`, oldest first.
    async fn list_window(
        &self,
        from: i64,
        to: i64,
        report: &mut RunReport,
    ) -> Result<Vec<ListedEvent>> {
        let mut listed: Vec<ListedEvent> = Vec::new();
        for types in USED_EVENT_TYPES.chunks(TYPES_PER_LIST) {
            let mut newest_first: Vec<ListedEvent> = Vec::new();
            loop {
                let query = EventsQuery {
                    created_gte: from,
                    created_lte: to,
                    types,
                    starting_after: newest_first.last().map(|event| event.id.as_str()),
                };
                let page = self.sync.billing.events_page(&query).await?;
                report.event_pages += 1;
                let has_more = page.has_more && !page.events.is_empty();
                newest_first.extend(page.events);
                if !has_more {
                    break;
                }
            }
            listed.extend(newest_first.into_iter().rev());
        }
        // Oldest first; within one second, in Stripe's order.
        listed.sort_by_key(|event| event.created);
        let mut seen = std::collections::HashSet::new();
        listed.retain(|event| seen.insert(event.id.clone()));
        report.events_listed += listed.len();
        Ok(listed)
    }

    /// The listed events the event log has done: a window's second look (the overlap, a run
    /// after a delivery) costs a read per hundred events instead of a claim per event.
    async fn done_among(&self, events: &[ListedEvent]) -> Result<HashSet<String>> {
        let ids: Vec<&str> = events.iter().map(|event| event.id.as_str()).collect();
        self.sync.store.done_among(&ids).await
    }

    /// Applies one listed event (one the event log has done is a duplicate without asking it
    /// again); `false` when another delivery holds it (so the cursor must not pass it).
    async fn handle(
        &self,
        event: &ListedEvent,
        already_done: bool,
        now: i64,
        report: &mut RunReport,
    ) -> Result<bool> {
        if already_done {
            report.events_handled += 1;
            *report
                .outcomes
                .entry(Outcome::Duplicate.as_str().to_owned())
                .or_default() += 1;
            return Ok(true);
        }
        let receipt = self.sync.receive(&event.body, self.livemode, now).await?;
        report.events_handled += 1;
        let outcome = match receipt {
            Receipt::Handled {
                outcome: Outcome::InProgress,
                ..
            } => {
                warn!(event_id = %event.id, "listed event in progress in a delivery; the next run looks again");
                return Ok(false);
            }
            Receipt::Handled { outcome, .. } => {
                if outcome == Outcome::Applied {
                    info!(event_id = %event.id, "missed event applied by the reconciler");
                }
                outcome.as_str()
            }
            Receipt::NotJson => "not_json",
            Receipt::LivemodeMismatch { .. } => "livemode_mismatch",
        };
        *report.outcomes.entry(outcome.to_owned()).or_default() += 1;
        Ok(true)
    }

    async fn advance(&self, created: i64, now: i64, report: &mut RunReport) -> Result<()> {
        if report.cursor_after.is_some_and(|cursor| cursor >= created) {
            return Ok(());
        }
        self.sync
            .store
            .advance_cursor(EVENTS_CURSOR, created, now)
            .await?;
        report.cursor_after = Some(created);
        Ok(())
    }

    /// Rotated-out keys: disabled once `retire_at` is past, deleted after the hold.
    async fn retire_keys(&self, as_of: i64, report: &mut RunReport) -> Result<()> {
        let keys = self.sync.keys;
        for retired in keys.retired(None).await? {
            if retired.retire_at > as_of {
                continue;
            }
            if retired.retire_at + RETIRED_KEY_HOLD_SECS <= as_of {
                keys.delete(&retired.id).await?;
                crate::provisioning::provisioning_action("key_deleted");
                info!(sub = %retired.owner, key_id = %retired.id, "retired API key deleted");
                report.retired_keys_deleted += 1;
            } else if retired.enabled {
                keys.set_enabled(&retired.id, false).await?;
                crate::provisioning::provisioning_action("key_disabled");
                info!(sub = %retired.owner, key_id = %retired.id, "retired API key disabled: its grace is over");
                report.retired_keys_disabled += 1;
            }
        }
        Ok(())
    }

    async fn review_due(
        &self,
        now: i64,
        limits: &RunLimits,
        report: &mut RunReport,
    ) -> Result<Progress> {
        // A review moves its subscription's review time past `now`; one seen twice (a newer
        // event stored it meanwhile) waits for the next run.
        let mut reviewed = HashSet::new();
        loop {
            let due = self.sync.store.due_reviews(now, REVIEW_BATCH).await?;
            let last_batch = due.len() < REVIEW_BATCH;
            for review in due {
                if limits.exhausted(report) {
                    return Ok(Progress::OutOfBudget);
                }
                if !reviewed.insert(review.subscription_id.clone()) {
                    return Ok(Progress::Done);
                }
                let outcome = self.sync.review(&review, now).await?;
                report.reviews += 1;
                if matches!(outcome, ReviewOutcome::Applied { revised: true, .. }) {
                    report.reviews_revised += 1;
                }
            }
            if last_batch {
                return Ok(Progress::Done);
            }
        }
    }
}
