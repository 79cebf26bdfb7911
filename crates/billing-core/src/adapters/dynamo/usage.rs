//! The usage reporter's cursors: one item per slot (key, usage plan, day), replaced by compare
//! and set so two overlapping runs cannot both record a delta.

use async_trait::async_trait;

use super::items::{conditional_failed, n, number_attr, s, string_attr};
use super::{DynamoStore, Item, SortKeys};
use crate::adapters::aws::classify;
use crate::error::{Error, Result, Upstream};
use crate::ports::UsageStore;
use crate::table::{self, attr};
use crate::usage::{PendingDelta, UsageCursor, UsageSlot, UtcDay};

/// A slot's cursor is kept well past Stripe's 35 days, after which nothing of it can be billed.
const USAGE_TTL_SECS: i64 = 60 * 24 * 3600;
/// The `pending` attribute of a cursor with no delta under way.
const NO_PENDING: &str = "-";

#[async_trait]
impl UsageStore for DynamoStore {
    async fn usage_cursor(&self, slot: &UsageSlot) -> Result<UsageCursor> {
        let (pk, sk) = slot_key(slot);
        match self.get(pk, &sk).await? {
            Some(item) => cursor_of(&item),
            None => Ok(UsageCursor::default()),
        }
    }

    async fn replace_usage_cursor(
        &self,
        slot: &UsageSlot,
        expected: &UsageCursor,
        next: &UsageCursor,
        now: i64,
    ) -> Result<bool> {
        let (pk, sk) = slot_key(slot);
        let matches_expected = "#reported = :reported AND #pending = :pending";
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(table::PK, s(pk))
            .item(table::SK, s(sk))
            .item(attr::REPORTED, n(to_i64(next.reported)?))
            .item(attr::PENDING, s(pending_text(next.pending.as_ref())?))
            .item(attr::USAGE_PLAN_ID, s(&slot.usage_plan_id))
            .item(attr::DAY, s(slot.day.to_string()))
            .item(attr::UPDATED_AT, n(now))
            .item(table::EXPIRES_AT, n(slot.day.end() + USAGE_TTL_SECS))
            .expression_attribute_names("#reported", attr::REPORTED)
            .expression_attribute_names("#pending", attr::PENDING)
            .expression_attribute_values(":reported", n(to_i64(expected.reported)?))
            .expression_attribute_values(":pending", s(pending_text(expected.pending.as_ref())?));
        // An empty cursor is also what a slot never written reads as.
        let request = if expected == &UsageCursor::default() {
            request
                .condition_expression(format!("attribute_not_exists(#pk) OR ({matches_expected})"))
                .expression_attribute_names("#pk", table::PK)
        } else {
            request.condition_expression(matches_expected)
        };
        let outcome = request.send().await;
        match outcome {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(classify(Upstream::DynamoDb, "PutItem", e)),
        }
    }

    async fn usage_cursors_of(
        &self,
        key_id: &str,
        from: UtcDay,
        to: UtcDay,
    ) -> Result<Vec<(UsageSlot, UsageCursor)>> {
        let from = table::usage_sk(&from.to_string(), "");
        let to = table::usage_sk(&to.to_string(), "~");
        let items = self
            .query_keys(table::usage_pk(key_id), SortKeys::Between(&from, &to))
            .await?;
        items
            .iter()
            .map(|item| {
                let day = string_attr(item, attr::DAY)?;
                let slot = UsageSlot {
                    key_id: key_id.to_owned(),
                    usage_plan_id: string_attr(item, attr::USAGE_PLAN_ID)?,
                    day: UtcDay::parse(&day).ok_or_else(|| invalid_stored("day", &day))?,
                };
                Ok((slot, cursor_of(item)?))
            })
            .collect()
    }
}

fn slot_key(slot: &UsageSlot) -> (String, String) {
    (
        table::usage_pk(&slot.key_id),
        table::usage_sk(&slot.day.to_string(), &slot.usage_plan_id),
    )
}

fn cursor_of(item: &Item) -> Result<UsageCursor> {
    let reported = number_attr(item, attr::REPORTED)?;
    let pending = string_attr(item, attr::PENDING)?;
    Ok(UsageCursor {
        reported: u64::try_from(reported).map_err(|_| invalid_stored("reported", &reported))?,
        pending: match pending.as_str() {
            NO_PENDING => None,
            json => Some(
                serde_json::from_str::<PendingDelta>(json)
                    .map_err(|e| invalid_stored("pending", &e))?,
            ),
        },
    })
}

fn pending_text(pending: Option<&PendingDelta>) -> Result<String> {
    match pending {
        None => Ok(NO_PENDING.to_owned()),
        Some(delta) => serde_json::to_string(delta).map_err(|e| invalid_stored("pending", &e)),
    }
}

fn to_i64(calls: u64) -> Result<i64> {
    i64::try_from(calls).map_err(|_| invalid_stored("reported", &calls))
}

fn invalid_stored(field: &str, value: &dyn std::fmt::Display) -> Error {
    Error::InvalidData {
        service: Upstream::DynamoDb,
        detail: format!("usage cursor {field}: {value}"),
    }
}
