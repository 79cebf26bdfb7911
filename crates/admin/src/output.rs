//! What the commands print: aligned columns for people, one JSON object per line for scripts.

use billing_core::domain::CustomerLink;
use billing_core::import::ImportReport;
use billing_core::ports::{RecordedUnreadable, UnmappedEvent};
use billing_core::reconciler::{Rehearsal, RunReport};
use billing_core::usage::{DayUsage, UsageReport};
use billing_core::webhook::sync::{CustomerSync, Drift, HandLink, UserOverview};
use serde_json::json;

pub fn unreadable(events: &[RecordedUnreadable], json: bool) -> String {
    if json {
        return lines(events.iter().map(|recorded| {
            let event = &recorded.event;
            json!({
                "event_id": event.event_id, "event_type": event.event_type,
                "api_version": event.api_version, "livemode": event.livemode,
                "field": event.field, "reason": event.reason,
                "received_at": recorded.received_at,
            })
        }));
    }
    table(
        &[
            "RECEIVED",
            "EVENT",
            "TYPE",
            "API VERSION",
            "FIELD",
            "REASON",
        ],
        events.iter().map(|recorded| {
            let event = &recorded.event;
            vec![
                recorded.received_at.to_string(),
                event.event_id.clone(),
                event.event_type.clone().unwrap_or_else(|| "-".into()),
                event.api_version.clone().unwrap_or_else(|| "-".into()),
                event.field.clone(),
                event.reason.clone(),
            ]
        }),
        "no unreadable events",
    )
}

pub fn unmapped(events: &[UnmappedEvent], json: bool) -> String {
    if json {
        return lines(events.iter().map(|event| {
            json!({
                "customer_id": event.customer_id, "event_id": event.event_id,
                "event_type": event.event_type, "parked_at": event.parked_at,
            })
        }));
    }
    table(
        &["PARKED", "CUSTOMER", "EVENT", "TYPE"],
        events.iter().map(|event| {
            vec![
                event.parked_at.to_string(),
                event.customer_id.clone(),
                event.event_id.clone(),
                event.event_type.clone(),
            ]
        }),
        "no unmapped events",
    )
}

pub fn reconcile(report: &RunReport, json: bool) -> String {
    if json {
        return lines(std::iter::once(json!(report)));
    }
    let time = |at: Option<i64>| at.map_or_else(|| "-".to_owned(), |at| at.to_string());
    let outcomes: Vec<String> = report
        .outcomes
        .iter()
        .map(|(outcome, count)| format!("{outcome} {count}"))
        .collect();
    let mut rows = vec![
        (
            "cursor",
            format!(
                "{} -> {}",
                time(report.cursor_before),
                time(report.cursor_after)
            ),
        ),
        (
            "events listed",
            format!("{} in {} pages", report.events_listed, report.event_pages),
        ),
        ("events repaired", report.events_repaired().to_string()),
        (
            "outcomes",
            if outcomes.is_empty() {
                "-".into()
            } else {
                outcomes.join(", ")
            },
        ),
        (
            "reviews",
            format!(
                "{} ({} read again from Stripe)",
                report.reviews, report.reviews_revised
            ),
        ),
        (
            "stacks still deleting",
            report.stacks_still_deleting.to_string(),
        ),
        (
            "retired keys",
            format!(
                "{} disabled, {} deleted",
                report.retired_keys_disabled, report.retired_keys_deleted
            ),
        ),
        (
            "complete",
            if report.complete {
                "yes".into()
            } else {
                "no: budget spent, run again".into()
            },
        ),
    ];
    if report.cursor_too_old {
        rows.push((
            "WARNING",
            "the cursor was older than Stripe's 30 days of events: run billing-admin import".into(),
        ));
    }
    fields(&rows)
}

pub fn rehearsal(plan: &Rehearsal, json: bool) -> String {
    if json {
        return lines(std::iter::once(json!(plan)));
    }
    let missed: Vec<String> = plan
        .events_missed
        .iter()
        .map(|(event_type, count)| format!("{event_type} {count}"))
        .collect();
    let total: usize = plan.events_missed.values().sum();
    fields(&[
        (
            "cursor",
            plan.cursor
                .map_or_else(|| "-".to_owned(), |at| at.to_string()),
        ),
        ("listed from", plan.listed_from.to_string()),
        ("events listed", plan.events_listed.to_string()),
        (
            "would apply",
            if missed.is_empty() {
                "0".to_owned()
            } else {
                format!("{total}: {}", missed.join(", "))
            },
        ),
        ("reviews due", plan.reviews_due.to_string()),
        ("stacks deleting", plan.stacks_deleting.to_string()),
        ("dry run", "nothing applied".to_owned()),
    ])
}

pub fn import(report: &ImportReport, json: bool) -> String {
    if json {
        return lines(std::iter::once(json!(report)));
    }
    let would = if report.dry_run { "would be " } else { "" };
    let mut rows: Vec<(&str, String)> = report
        .catalogue
        .iter()
        .map(|(object, count)| {
            let name = match *object {
                "product" => "products",
                "price" => "prices",
                "tax_rate" => "tax rates",
                other => other,
            };
            let unreadable = if count.unreadable > 0 {
                format!(", {} unreadable", count.unreadable)
            } else {
                String::new()
            };
            (
                name,
                format!(
                    "{} listed, {} {would}stored{unreadable}",
                    count.listed, count.stored
                ),
            )
        })
        .collect();
    rows.extend([
        (
            "customers",
            format!(
                "{} listed: {} linked before, {} {would}linked now, {} unmatched",
                report.customers_listed,
                report.linked_before,
                report.linked_now,
                report.unmatched.len()
            ),
        ),
        (
            "profiles",
            format!("{} {would}stored", report.profiles_stored),
        ),
        (
            "subscriptions",
            format!(
                "{} listed, {} {would}stored",
                report.subscriptions_listed, report.subscriptions_stored
            ),
        ),
        (
            "provisioning",
            format!(
                "{} customers with drift, {} repaired",
                report.customers_with_drift, report.customers_repaired
            ),
        ),
        (
            "cursor",
            report
                .cursor_moved_to
                .map_or_else(|| "not moved".to_owned(), |at| format!("moved to {at}")),
        ),
        (
            "result",
            match (report.changed(), report.dry_run, report.failed.is_empty()) {
                (_, _, false) => format!(
                    "{} customers failed (below); run again",
                    report.failed.len()
                ),
                (false, _, true) => "nothing to change: Stripe and the deployment agree".to_owned(),
                (true, true, true) => "dry run: nothing written".to_owned(),
                (true, false, true) => "changes written".to_owned(),
            },
        ),
    ]);
    let mut text = fields(&rows);
    if !report.unmatched.is_empty() {
        text.push_str(
            "\nunmatched customers (link by hand: billing-admin unmapped link CUSTOMER USER)\n",
        );
        text.push_str(&table(
            &["CUSTOMER", "REASON"],
            report
                .unmatched
                .iter()
                .map(|u| vec![u.customer_id.clone(), u.reason.to_owned()]),
            "",
        ));
    }
    if !report.failed.is_empty() {
        text.push_str("\nfailed customers\n");
        text.push_str(&table(
            &["CUSTOMER", "ERROR"],
            report
                .failed
                .iter()
                .map(|f| vec![f.customer_id.clone(), f.error.clone()]),
            "",
        ));
    }
    text
}

type Audited = (CustomerLink, (Vec<Drift>, bool));

pub fn audit(rows: &[Audited], users: usize, json: bool) -> String {
    if json {
        return lines(rows.iter().filter(|(_, (drift, _))| !drift.is_empty()).map(
            |(link, (drift, repaired))| {
                json!({
                    "sub": link.sub.as_str(), "customer_id": link.customer_id.as_str(),
                    "drift": drift, "repaired": repaired,
                })
            },
        ));
    }
    let drifted: Vec<&Audited> = rows.iter().filter(|(_, (d, _))| !d.is_empty()).collect();
    if drifted.is_empty() {
        return format!("{users} linked users audited, 0 with drift\n");
    }
    let mut text = table(
        &["SUB", "CUSTOMER", "DRIFT", "REPAIRED"],
        drifted.iter().flat_map(|(link, (drift, repaired))| {
            drift.iter().map(move |d| {
                vec![
                    link.sub.to_string(),
                    link.customer_id.to_string(),
                    d.describe(),
                    if *repaired { "yes" } else { "no" }.to_owned(),
                ]
            })
        }),
        "",
    );
    text.push_str(&format!(
        "{users} linked users audited, {} with drift\n",
        drifted.len()
    ));
    text
}

pub fn hand_link(linked: &HandLink, json: bool) -> String {
    if json {
        return lines(std::iter::once(json!(linked)));
    }
    match linked {
        HandLink::Linked {
            sync,
            parked_cleared,
        } => {
            let mut text = customer_sync(sync);
            text.push_str(&format!("parked events forgotten: {parked_cleared}\n"));
            text
        }
        HandLink::CustomerAlreadyLinked { sub } => {
            format!("nothing done: the customer is linked to {sub} already\n")
        }
        HandLink::UserAlreadyLinked { customer_id } => {
            format!("nothing done: the user has customer {customer_id} already\n")
        }
    }
}

fn customer_sync(sync: &CustomerSync) -> String {
    let link = match &sync.link {
        billing_core::webhook::sync::LinkResult::Existing { sub } => format!("{sub} (before)"),
        billing_core::webhook::sync::LinkResult::LinkedNow { sub } => format!("{sub} (linked now)"),
        billing_core::webhook::sync::LinkResult::WouldLink { sub } => {
            format!("{sub} (dry run: would link)")
        }
        billing_core::webhook::sync::LinkResult::Unmatched { reason } => format!("none: {reason}"),
    };
    let drift: Vec<String> = sync.drift.iter().map(Drift::describe).collect();
    fields(&[
        ("customer", sync.customer_id.clone()),
        ("user", link),
        (
            "subscriptions",
            format!(
                "{} in Stripe, {} stored",
                sync.subscriptions_listed, sync.subscriptions_stored
            ),
        ),
        (
            "drift",
            if drift.is_empty() {
                "none".to_owned()
            } else {
                format!(
                    "{}{}",
                    drift.join("; "),
                    if sync.repaired { " (repaired)" } else { "" }
                )
            },
        ),
    ])
}

pub fn users(overviews: &[UserOverview], json: bool) -> String {
    if json {
        return lines(overviews.iter().map(|overview| json!(overview)));
    }
    overviews.iter().map(user).collect::<Vec<_>>().join("\n")
}

fn user(overview: &UserOverview) -> String {
    let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    let mut rows = vec![
        ("username", overview.username.clone()),
        ("sub", overview.sub.clone()),
        (
            "email",
            format!(
                "{} ({})",
                or_dash(&overview.email),
                if overview.email_verified {
                    "verified"
                } else {
                    "not verified"
                }
            ),
        ),
        (
            "status",
            format!(
                "{}{}",
                overview.status,
                if overview.enabled { "" } else { ", disabled" }
            ),
        ),
        ("customer", or_dash(&overview.customer_id)),
        (
            "plan",
            format!(
                "{} (attribute {})",
                or_dash(&overview.plan),
                or_dash(&overview.plan_attribute)
            ),
        ),
    ];
    if let Some(key) = &overview.key {
        rows.push((
            "api key",
            format!(
                "{} {} on [{}]",
                key.id,
                if key.enabled { "enabled" } else { "disabled" },
                key.usage_plans.join(",")
            ),
        ));
        if let Some(value) = &key.value {
            rows.push(("api key value", value.clone()));
        }
    } else {
        rows.push(("api key", "none".to_owned()));
    }
    let drift: Vec<String> = overview.drift.iter().map(Drift::describe).collect();
    rows.push((
        "drift",
        if drift.is_empty() {
            "none".to_owned()
        } else {
            drift.join("; ")
        },
    ));
    let mut text = fields(&rows);
    if !overview.subscriptions.is_empty() {
        text.push('\n');
        text.push_str(&table(
            &[
                "SUBSCRIPTION",
                "STATUS",
                "PLANS",
                "PERIOD END",
                "LAST EVENT",
                "AT",
            ],
            overview.subscriptions.iter().map(|s| {
                vec![
                    s.id.clone(),
                    format!(
                        "{}{}",
                        s.status,
                        if s.cancel_at_period_end {
                            " (cancels)"
                        } else {
                            ""
                        }
                    ),
                    s.plans.join(","),
                    s.current_period_end
                        .map_or_else(|| "-".to_owned(), |at| at.to_string()),
                    s.last_event_id.clone(),
                    s.last_event_created.to_string(),
                ]
            }),
            "",
        ));
    }
    if !overview.stacks.is_empty() {
        text.push('\n');
        text.push_str(&table(
            &["STACK", "SUBSCRIPTION", "RECORDED", "CLOUDFORMATION"],
            overview.stacks.iter().map(|s| {
                vec![
                    s.stack_name.clone(),
                    s.subscription_id.clone(),
                    s.recorded.clone(),
                    s.cloudformation.clone(),
                ]
            }),
            "",
        ));
    }
    if !overview.parked_events.is_empty() {
        text.push_str("\nparked events\n");
        for parked in &overview.parked_events {
            text.push_str(&format!("  {parked}\n"));
        }
    }
    text
}

pub fn key_usage(key_id: &str, rows: &[DayUsage], json: bool) -> String {
    if json {
        return lines(rows.iter().map(|row| json!(row)));
    }
    let mut text = table(
        &["DAY", "USAGE PLAN", "COUNTED", "REPORTED", "PENDING"],
        rows.iter().map(|row| {
            vec![
                row.day.clone(),
                row.usage_plan_id.clone(),
                row.counted.to_string(),
                row.reported.to_string(),
                row.pending
                    .map_or_else(|| "-".to_owned(), |calls| calls.to_string()),
            ]
        }),
        "no metered calls",
    );
    let counted: u64 = rows.iter().map(|row| row.counted).sum();
    let reported: u64 = rows.iter().map(|row| row.reported).sum();
    text.push_str(&format!(
        "key {key_id}: {counted} calls counted, {reported} reported to Stripe\n"
    ));
    text
}

pub fn usage_report(report: &UsageReport, json: bool) -> String {
    if json {
        return lines(std::iter::once(json!(report)));
    }
    let would = if report.dry_run { "would be " } else { "" };
    fields(&[
        ("usage plans read", report.usage_plans_read.to_string()),
        ("slots with calls", report.slots.to_string()),
        (
            "sent",
            format!(
                "{} calls in {} deltas {would}sent ({} sent again)",
                report.calls_reported, report.deltas_sent, report.deltas_resent
            ),
        ),
        (
            "too late to bill",
            format!("{} calls", report.calls_unbillable),
        ),
        (
            "nowhere to bill yet",
            format!(
                "{} slots (logged; sent once fixed)",
                report.slots_unbillable
            ),
        ),
        ("stuck", format!("{} slots", report.slots_stuck)),
        (
            "complete",
            if report.complete {
                "yes".into()
            } else {
                "no: budget spent, run again".into()
            },
        ),
    ])
}

/// Name/value lines, names aligned.
fn fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(name, value)| format!("{name:<width$}  {value}\n"))
        .collect()
}

fn lines(values: impl Iterator<Item = serde_json::Value>) -> String {
    values.map(|value| format!("{value}\n")).collect()
}

fn table(headers: &[&str], rows: impl Iterator<Item = Vec<String>>, empty: &str) -> String {
    let rows: Vec<Vec<String>> = rows.collect();
    if rows.is_empty() {
        return format!("{empty}\n");
    }
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(column, header)| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let render = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut text = render(headers.to_vec());
    for row in &rows {
        text.push_str(&render(row.iter().map(String::as_str).collect()));
    }
    text
}

#[cfg(test)]
mod tests {
    use billing_core::ports::UnreadableEvent;

    use super::*;

    fn recorded() -> RecordedUnreadable {
        RecordedUnreadable {
            event: UnreadableEvent {
                event_id: "evt_1".into(),
                event_type: Some("invoice.paid".into()),
                api_version: None,
                livemode: Some(false),
                field: "data.object".into(),
                reason: "missing field `id`".into(),
            },
            received_at: 1_700_000_000,
        }
    }

    #[test]
    fn unreadable_events_should_print_as_aligned_columns_or_json_lines() {
        let text = unreadable(&[recorded()], false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("RECEIVED    EVENT  TYPE"), "{text}");
        assert!(lines[1].contains("evt_1  invoice.paid  -"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(unreadable(&[recorded()], true).trim()).unwrap();
        assert_eq!(json["event_id"], "evt_1");
        assert_eq!(json["field"], "data.object");
        assert_eq!(unreadable(&[], false), "no unreadable events\n");
        assert_eq!(unreadable(&[], true), "");
    }

    #[test]
    fn a_reconciler_run_should_print_what_it_repaired() {
        let mut report = RunReport {
            cursor_before: Some(100),
            cursor_after: Some(200),
            events_listed: 3,
            event_pages: 3,
            ..Default::default()
        };
        report.outcomes.insert("applied".into(), 2);
        report.outcomes.insert("duplicate".into(), 1);
        let text = reconcile(&report, false);
        assert!(text.contains("cursor                 100 -> 200"), "{text}");
        assert!(text.contains("events repaired        2"), "{text}");
        assert!(text.contains("applied 2, duplicate 1"), "{text}");
        assert!(text.contains("complete               no"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(reconcile(&report, true).trim()).unwrap();
        assert_eq!(json["outcomes"]["applied"], 2);
    }

    #[test]
    fn unmapped_events_should_print_as_aligned_columns() {
        let parked = UnmappedEvent {
            customer_id: "guest-checkout:cs_1".into(),
            event_id: "evt_2".into(),
            event_type: "checkout.session.completed".into(),
            parked_at: 5,
        };
        let text = unmapped(&[parked], false);
        assert!(
            text.contains("guest-checkout:cs_1  evt_2  checkout.session.completed"),
            "{text}"
        );
    }

    #[test]
    fn an_import_should_say_when_it_changed_nothing_and_list_the_unmatched() {
        let mut report = ImportReport {
            customers_listed: 3,
            linked_before: 2,
            ..Default::default()
        };
        report.unmatched.push(billing_core::import::Unmatched {
            customer_id: "cus_x".into(),
            reason: "no user with its cognito_sub or verified e-mail",
        });
        let text = import(&report, false);
        assert!(
            text.contains("3 listed: 2 linked before, 0 linked now, 1 unmatched"),
            "{text}"
        );
        assert!(text.contains("nothing to change"), "{text}");
        assert!(text.contains("cus_x     no user with"), "{text}");
        report.subscriptions_stored = 1;
        report.dry_run = true;
        let text = import(&report, false);
        assert!(text.contains("1 would be stored"), "{text}");
        assert!(text.contains("dry run: nothing written"), "{text}");
    }

    #[test]
    fn an_audit_should_list_each_drift_and_count_the_users() {
        let link = CustomerLink {
            sub: billing_core::domain::UserSub::parse("sub-1").unwrap(),
            customer_id: billing_core::domain::CustomerId::parse("cus_1").unwrap(),
            pool_id: billing_core::domain::UserPoolId::parse("us-east-1_Pool").unwrap(),
            username: billing_core::domain::Username::parse("ada").unwrap(),
        };
        let drift = Drift::KeyEnabled {
            key_id: "k1".into(),
            expected: true,
        };
        let rows = vec![
            (link.clone(), (vec![drift], false)),
            (link, (vec![], false)),
        ];
        let text = audit(&rows, 2, false);
        assert!(
            text.contains("sub-1  cus_1     key k1 disabled (expected enabled)  no"),
            "{text}"
        );
        assert!(
            text.ends_with("2 linked users audited, 1 with drift\n"),
            "{text}"
        );
        assert_eq!(
            audit(&rows[1..], 1, false),
            "1 linked users audited, 0 with drift\n"
        );
        let json: serde_json::Value = serde_json::from_str(audit(&rows, 2, true).trim()).unwrap();
        assert_eq!(json["drift"][0]["drift"], "key_enabled");
    }
}
