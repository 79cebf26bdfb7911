//! Claims with an expiry: processed Stripe events and provisioning leases.

use std::collections::{BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::builders::PutBuilder;
use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure};

use super::DynamoStore;
use super::items::{
    conditional_failed, doc_of, item_of_failed_put, n, number_attr, s, string_attr, to_doc,
};
use crate::adapters::aws::classify;
use crate::domain::CustomerId;
use crate::error::{Result, Upstream};
use crate::ports::{EventClaim, EventLog, ProvisioningLeases, RecordedUnreadable, UnreadableEvent};
use crate::table::{self, attr};

pub(super) const PROCESSING: &str = "processing";
pub(super) const DONE: &str = "done";

#[async_trait]
impl EventLog for DynamoStore {
    async fn claim(&self, event_id: &str, now: i64) -> Result<EventClaim> {
        let outcome = self
            .put_item_of(self.event_claim(event_id, now)?)
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(EventClaim::Claimed),
            Err(e) if conditional_failed(&e) => {
                // The stored item comes back with the failure; read it only if it did not.
                let stored = match item_of_failed_put(&e) {
                    Some(item) => Some(item),
                    None => self.get(table::event_pk(event_id), table::SK_EVENT).await?,
                };
                Ok(if is_done(stored.as_ref()) {
                    EventClaim::AlreadyDone
                } else {
                    EventClaim::InProgress
                })
            }
            Err(e) => Err(classify(Upstream::DynamoDb, "PutItem", e)),
        }
    }

    async fn complete(&self, event_id: &str, now: i64) -> Result<()> {
        self.put_item_of(self.event_done(event_id, now)?)
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "PutItem", e))?;
        Ok(())
    }

    async fn done_among(&self, event_ids: &[&str]) -> Result<HashSet<String>> {
        // BatchGetItem refuses a request that names a key twice.
        let unique: BTreeSet<&str> = event_ids.iter().copied().collect();
        let unique: Vec<&str> = unique.into_iter().collect();
        let mut done = HashSet::new();
        for chunk in unique.chunks(table::BATCH_GET_MAX_KEYS) {
            // Eventually consistent is enough: a done event never becomes undone, so a stale
            // read can only miss one, and a missed one goes through its claim.
            let mut keys = KeysAndAttributes::builder()
                .projection_expression("#pk, #status")
                .expression_attribute_names("#pk", table::PK)
                .expression_attribute_names("#status", attr::STATUS);
            for id in chunk {
                keys = keys.keys(HashMap::from([
                    (table::PK.to_owned(), s(table::event_pk(id))),
                    (table::SK.to_owned(), s(table::SK_EVENT)),
                ]));
            }
            // Keys DynamoDB left unprocessed are left out: not known to be done.
            let found = self.batch_get(keys.build().map_err(build_error)?).await?;
            for item in found.iter().filter(|item| is_done(Some(item))) {
                let pk = string_attr(item, table::PK)?;
                if let Some(id) = pk.strip_prefix(&table::event_pk("")) {
                    done.insert(id.to_owned());
                }
            }
        }
        Ok(done)
    }

    async fn release(&self, event_id: &str) -> Result<()> {
        let key = (table::event_pk(event_id), table::SK_EVENT);
        self.delete_if_still(key, attr::STATUS, PROCESSING).await
    }

    async fn record_unreadable(&self, event: &UnreadableEvent, now: i64) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(table::PK, s(table::unreadable_pk(&event.event_id)))
            .item(table::SK, s(table::SK_EVENT))
            .item(table::GSI1_PK, s(table::GSI1_UNREADABLE))
            .item(
                table::GSI1_SK,
                s(table::unreadable_gsi1sk(now, &event.event_id)),
            )
            .item(attr::DOC, to_doc(event)?)
            .item(attr::CREATED_AT, n(now))
            .item(table::EXPIRES_AT, n(now + table::EVENT_TTL_SECS))
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "PutItem", e))?;
        Ok(())
    }

    async fn unreadable_events(&self) -> Result<Vec<RecordedUnreadable>> {
        let items: Vec<_> = self.query_gsi1(table::GSI1_UNREADABLE.into()).await?;
        items
            .iter()
            .map(|item| {
                Ok(RecordedUnreadable {
                    event: doc_of(item)?,
                    received_at: number_attr(item, attr::CREATED_AT)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl ProvisioningLeases for DynamoStore {
    async fn take_lease(&self, customer: &CustomerId, holder: &str, now: i64) -> Result<bool> {
        let outcome = self
            .put_item_of(self.lease_put(customer, holder, now)?)
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(classify(Upstream::DynamoDb, "PutItem", e)),
        }
    }

    async fn release_lease(&self, customer: &CustomerId, holder: &str) -> Result<()> {
        let key = (
            table::customer_pk(customer.as_str()),
            table::SK_PROVISIONING,
        );
        self.delete_if_still(key, attr::HOLDER, holder).await
    }

    async fn forget_provisioned(&self, customer: &CustomerId) -> Result<()> {
        self.delete_key(
            table::customer_pk(customer.as_str()),
            table::SK_PROVISIONED.to_owned(),
        )
        .await
    }
}

impl DynamoStore {
    /// Deletes the item while `attribute` still equals `value`; an item changed (or gone) since
    /// is left alone, which is not an error.
    async fn delete_if_still(
        &self,
        (pk, sk): (String, &str),
        attribute: &str,
        value: &str,
    ) -> Result<()> {
        let outcome = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(table::PK, s(pk))
            .key(table::SK, s(sk))
            .condition_expression("#attribute = :value")
            .expression_attribute_names("#attribute", attribute)
            .expression_attribute_values(":value", s(value))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => Ok(()),
            Err(e) => Err(classify(Upstream::DynamoDb, "DeleteItem", e)),
        }
    }
}

/// The event log's and the lease's items, written alone (`EventLog`, `ProvisioningLeases`) or
/// in a delivery's transactions (`DeliveryStore`).
impl DynamoStore {
    /// The event claimed as processing, unless it is done or another delivery's claim still runs.
    pub(super) fn event_claim(&self, event_id: &str, now: i64) -> Result<Put> {
        claimable(self.event_put(event_id, PROCESSING, now), now)
            .item(attr::LEASE_UNTIL, n(now + table::EVENT_LEASE_SECS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_error)
    }

    pub(super) fn event_done(&self, event_id: &str, now: i64) -> Result<Put> {
        self.event_put(event_id, DONE, now)
            .build()
            .map_err(build_error)
    }

    /// The event done at once, where `event_claim` would claim it.
    pub(super) fn event_done_unless_claimed(&self, event_id: &str, now: i64) -> Result<Put> {
        claimable(self.event_put(event_id, DONE, now), now)
            .build()
            .map_err(build_error)
    }

    fn event_put(&self, event_id: &str, status: &str, now: i64) -> PutBuilder {
        Put::builder()
            .table_name(&self.table)
            .item(table::PK, s(table::event_pk(event_id)))
            .item(table::SK, s(table::SK_EVENT))
            .item(attr::STATUS, s(status))
            .item(table::EXPIRES_AT, n(now + table::EVENT_TTL_SECS))
    }

    /// The customer's lease for `holder`, unless another holder's still runs.
    pub(super) fn lease_put(&self, customer: &CustomerId, holder: &str, now: i64) -> Result<Put> {
        let until = now + table::PROVISIONING_LEASE_SECS;
        Put::builder()
            .table_name(&self.table)
            .item(table::PK, s(table::customer_pk(customer.as_str())))
            .item(table::SK, s(table::SK_PROVISIONING))
            .item(attr::HOLDER, s(holder))
            .item(attr::LEASE_UNTIL, n(until))
            .item(table::EXPIRES_AT, n(until))
            .condition_expression("attribute_not_exists(#pk) OR #lease < :now")
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_names("#lease", attr::LEASE_UNTIL)
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(build_error)
    }
}

/// Written only where the event has no item, or another delivery's claim ran out.
fn claimable(put: PutBuilder, now: i64) -> PutBuilder {
    put.condition_expression(
        "attribute_not_exists(#pk) OR (#status = :processing AND #lease < :now)",
    )
    .expression_attribute_names("#pk", table::PK)
    .expression_attribute_names("#status", attr::STATUS)
    .expression_attribute_names("#lease", attr::LEASE_UNTIL)
    .expression_attribute_values(":processing", s(PROCESSING))
    .expression_attribute_values(":now", n(now))
}

/// Whether an event's stored item says it is done.
pub(super) fn is_done(stored: Option<&super::Item>) -> bool {
    stored
        .and_then(|item| item.get(attr::STATUS))
        .and_then(|v| v.as_s().ok())
        .is_some_and(|status| status == DONE)
}

pub(super) fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> crate::error::Error {
    crate::error::Error::upstream(Upstream::DynamoDb, "TransactWriteItems", false, error)
}
