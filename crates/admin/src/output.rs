//! What the commands print: aligned columns for people, one JSON object per line for scripts.

use billing_core::ports::{RecordedUnreadable, UnmappedEvent};
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
