//! What the commands print: aligned columns for people, one JSON object per line for scripts.

use billing_core::ports::{RecordedUnreadable, UnmappedEvent};
use billing_core::reconciler::RunReport;
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
}
