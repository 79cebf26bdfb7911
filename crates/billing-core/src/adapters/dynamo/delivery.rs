//! A delivery's round trips: an event whose whole effect is its records in one
//! TransactWriteItems (the event done, the tombstone check, the records); else the claim (event,
//! tombstone check, lease) in one TransactWriteItems, the customer's partition from `PROVISIONED` on in one Query, the
//! products in one BatchGetItem, and the commit (subscription, provisioned state, event done,
//! lease released) in one TransactWriteItems.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::PutBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Delete, KeysAndAttributes, Put,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use super::events::{build_error, is_done};
use super::items::{doc_of, n, number_attr, s, string_attr};
use super::links::link_of;
use super::records::record_item;
use super::sync_store::{newer_only, not_newer, subscription_item};
use super::{DynamoStore, Item, SortKeys};
use crate::adapters::aws::classify;
use crate::domain::{CustomerId, UserSub};
use crate::error::{Error, Result, Upstream};
use crate::plans::PlanName;
use crate::ports::{
    BillingRecord, Committed, CustomerView, DeliveryClaim, DeliveryCommit, DeliveryStore, EventLog,
    Freshness, ProductRecord, ProvisionedState, RecordedAtOnce, Versioned,
};
use crate::table::{self, attr};

const CONDITION_FAILED: &str = "ConditionalCheckFailed";
const CONFLICT: &str = "TransactionConflict";
/// A commit that met another transaction on one of its items is tried again this many times.
const COMMIT_ATTEMPTS: u32 = 3;

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn record_at_once(
        &self,
        event_id: &str,
        customer: Option<&CustomerId>,
        records: &[Versioned<BillingRecord>],
        now: i64,
    ) -> Result<RecordedAtOnce> {
        let mut request = self.client.transact_write_items().transact_items(
            TransactWriteItem::builder()
                .put(self.event_done_unless_claimed(event_id, now)?)
                .build(),
        );
        if let Some(customer) = customer {
            request = request.transact_items(
                TransactWriteItem::builder()
                    .condition_check(self.not_deleted(customer)?)
                    .build(),
            );
        }
        let first_record = usize::from(customer.is_some()) + 1;
        for record in records {
            let put = self
                .versioned_put(
                    record_item(&record.state)?,
                    record.event_created,
                    &record.event_id,
                    false,
                )
                // The stored item comes back with a failed condition: why it is not newer.
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(build_error)?;
            request = request.transact_items(TransactWriteItem::builder().put(put).build());
        }
        let reasons = match request.send().await {
            Ok(_) => return Ok(RecordedAtOnce::Written),
            Err(error) => cancellation_reasons(error, "TransactWriteItems")?,
        };
        let code = |index: usize| reason_code(&reasons, index);
        if (0..reasons.len()).any(|index| !matches!(code(index), "None" | CONDITION_FAILED)) {
            return if (0..reasons.len()).any(|index| code(index) == CONFLICT) {
                Ok(RecordedAtOnce::Declined)
            } else {
                Err(canceled("records", &reasons))
            };
        }
        if (0..first_record).any(|index| code(index) == CONDITION_FAILED) {
            return Ok(RecordedAtOnce::Declined);
        }
        let mut freshness = Vec::with_capacity(records.len());
        for (offset, record) in records.iter().enumerate() {
            let index = first_record + offset;
            if code(index) != CONDITION_FAILED {
                freshness.push(Freshness::Applied);
                continue;
            }
            let Some(stored) = reasons.get(index).and_then(CancellationReason::item) else {
                // An emulator that does not return the stored item: the step-by-step path.
                return Ok(RecordedAtOnce::Declined);
            };
            freshness.push(not_newer(stored, record.event_created, &record.event_id)?);
        }
        Ok(RecordedAtOnce::NotNewer(freshness))
    }

    async fn claim_delivery(
        &self,
        event_id: &str,
        customer: &CustomerId,
        lease_holder: Option<&str>,
        now: i64,
    ) -> Result<DeliveryClaim> {
        let event = self.event_claim(event_id, now)?;
        let not_deleted = self.not_deleted(customer)?;
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(event).build())
            .transact_items(
                TransactWriteItem::builder()
                    .condition_check(not_deleted)
                    .build(),
            );
        if let Some(holder) = lease_holder {
            request = request.transact_items(
                TransactWriteItem::builder()
                    .put(self.lease_put(customer, holder, now)?)
                    .build(),
            );
        }
        let reasons = match request.send().await {
            Ok(_) => {
                return Ok(DeliveryClaim::Claimed {
                    leased: lease_holder.is_some(),
                });
            }
            Err(error) => cancellation_reasons(error, "TransactWriteItems")?,
        };
        let code = |index: usize| reason_code(&reasons, index);
        if code(0) == CONDITION_FAILED {
            let stored = match reasons.first().and_then(CancellationReason::item) {
                Some(item) => Some(item.clone()),
                None => self.get(table::event_pk(event_id), table::SK_EVENT).await?,
            };
            return Ok(if is_done(stored.as_ref()) {
                DeliveryClaim::AlreadyDone
            } else {
                DeliveryClaim::InProgress
            });
        }
        if code(1) == CONDITION_FAILED {
            return Ok(DeliveryClaim::CustomerDeleted);
        }
        let only_the_lease = lease_holder.is_some()
            && code(0) == "None"
            && code(1) == "None"
            && matches!(code(2), CONDITION_FAILED | CONFLICT);
        if !only_the_lease {
            return Err(canceled("claim", &reasons));
        }
        // Another holder has the lease: the event alone, and the caller waits for the lease.
        Ok(match self.claim(event_id, now).await? {
            crate::ports::EventClaim::Claimed => DeliveryClaim::Claimed { leased: false },
            crate::ports::EventClaim::AlreadyDone => DeliveryClaim::AlreadyDone,
            crate::ports::EventClaim::InProgress => DeliveryClaim::InProgress,
        })
    }

    async fn customer_view(&self, customer: &CustomerId) -> Result<CustomerView> {
        // The partition sorts CHECKOUT#, DELINQUENCY, INVOICE#, INVOICE_PAYMENT#, PAYMENT#,
        // PROFILE, PROVISIONED, PROVISIONING, SUB#, USER: from PROVISIONED on is what a
        // decision needs, without the billing page's records.
        let items = self
            .query_keys(
                table::customer_pk(customer.as_str()),
                SortKeys::From(table::SK_PROVISIONED),
            )
            .await?;
        let mut view = CustomerView::default();
        for item in &items {
            let sk = string_attr(item, table::SK)?;
            if sk == table::SK_USER {
                view.link = Some(link_of(item)?);
            } else if sk.starts_with(table::SUBSCRIPTION_SK_PREFIX) {
                view.subscriptions.push(Versioned {
                    event_created: number_attr(item, attr::EVENT_CREATED)?,
                    event_id: string_attr(item, attr::EVENT_ID)?,
                    state: doc_of(item)?,
                });
            } else if sk == table::SK_PROVISIONED {
                view.provisioned = provisioned_of(item);
            }
        }
        Ok(view)
    }

    async fn products(&self, ids: &[&str]) -> Result<BTreeMap<String, ProductRecord>> {
        let mut found = BTreeMap::new();
        let mut keys = KeysAndAttributes::builder();
        for id in ids {
            keys = keys.keys(HashMap::from([
                (table::PK.to_owned(), s(table::product_pk(id))),
                (table::SK.to_owned(), s(table::SK_PRODUCT)),
            ]));
        }
        // Keys DynamoDB left unprocessed are misses: their plan is read from Stripe.
        for item in self.batch_get(keys.build().map_err(build_error)?).await? {
            let pk = string_attr(&item, table::PK)?;
            if let Some(id) = pk.strip_prefix(&table::product_pk("")) {
                found.insert(id.to_owned(), doc_of(&item)?);
            }
        }
        Ok(found)
    }

    async fn commit_delivery(&self, commit: &DeliveryCommit<'_>) -> Result<Committed> {
        let mut commit = *commit;
        let mut attempt = 1;
        loop {
            let mut request = self.client.transact_write_items();
            let mut lease_at = None;
            let mut count = 0;
            if let Some(write) = &commit.subscription {
                request = request.transact_items(self.subscription_put(
                    write.subscription,
                    write.allow_tie,
                    write.review_at,
                )?);
                count += 1;
            }
            if let Some(provisioned) = commit.provisioned {
                request = request.transact_items(
                    TransactWriteItem::builder()
                        .put(self.provisioned_put(commit.customer, provisioned, commit.now)?)
                        .build(),
                );
                count += 1;
            }
            request = request.transact_items(
                TransactWriteItem::builder()
                    .put(self.event_done(commit.event_id, commit.now)?)
                    .build(),
            );
            count += 1;
            if let Some(holder) = commit.lease_holder {
                request = request.transact_items(
                    TransactWriteItem::builder()
                        .delete(self.lease_delete(commit.customer, holder)?)
                        .build(),
                );
                lease_at = Some(count);
            }
            let reasons = match request.send().await {
                Ok(_) => return Ok(Committed::Done),
                Err(error) => cancellation_reasons(error, "TransactWriteItems")?,
            };
            let code = |index: usize| reason_code(&reasons, index);
            if commit.subscription.is_some() && code(0) == CONDITION_FAILED {
                return Ok(Committed::SubscriptionNotNewer);
            }
            if let Some(lease_at) = lease_at
                && code(lease_at) == CONDITION_FAILED
            {
                // The lease ran out and another holder has it now: theirs is left alone.
                tracing::warn!(customer_id = %commit.customer, "the provisioning lease ran out before the commit");
                commit.lease_holder = None;
                continue;
            }
            let conflict = (0..reasons.len()).any(|index| code(index) == CONFLICT);
            if !conflict || attempt >= COMMIT_ATTEMPTS {
                return Err(canceled("commit", &reasons));
            }
            tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
            attempt += 1;
        }
    }

    async fn put_provisioned(
        &self,
        customer: &CustomerId,
        provisioned: &ProvisionedState,
    ) -> Result<()> {
        let put = self.provisioned_put(customer, provisioned, super::items::now_unix())?;
        self.put_item_of(put)
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "PutItem", e))?;
        Ok(())
    }
}

impl DynamoStore {
    fn lease_delete(&self, customer: &CustomerId, holder: &str) -> Result<Delete> {
        Delete::builder()
            .table_name(&self.table)
            .key(table::PK, s(table::customer_pk(customer.as_str())))
            .key(table::SK, s(table::SK_PROVISIONING))
            .condition_expression("attribute_not_exists(#pk) OR #holder = :holder")
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_names("#holder", attr::HOLDER)
            .expression_attribute_values(":holder", s(holder))
            .build()
            .map_err(build_error)
    }

    /// The subscription's versioned write, as `SyncStore::put_subscription` makes it.
    fn subscription_put(
        &self,
        subscription: &Versioned<crate::plans::SubscriptionState>,
        allow_tie: bool,
        review_at: Option<i64>,
    ) -> Result<TransactWriteItem> {
        let put = self
            .versioned_put(
                subscription_item(&subscription.state, review_at)?,
                subscription.event_created,
                &subscription.event_id,
                allow_tie,
            )
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// An object's state as of its event, written only over an older event's state.
    fn versioned_put(
        &self,
        mut item: Item,
        event_created: i64,
        event_id: &str,
        allow_tie: bool,
    ) -> PutBuilder {
        item.insert(attr::EVENT_CREATED.into(), n(event_created));
        item.insert(attr::EVENT_ID.into(), s(event_id));
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(newer_only(allow_tie))
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_names("#created", attr::EVENT_CREATED)
            .expression_attribute_values(":created", n(event_created))
    }

    /// The check that the customer's account was not deleted (no tombstone).
    fn not_deleted(&self, customer: &CustomerId) -> Result<ConditionCheck> {
        ConditionCheck::builder()
            .table_name(&self.table)
            .key(table::PK, s(table::deleted_customer_pk(customer.as_str())))
            .key(table::SK, s(table::SK_CUSTOMER))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", table::PK)
            .build()
            .map_err(build_error)
    }

    fn provisioned_put(
        &self,
        customer: &CustomerId,
        provisioned: &ProvisionedState,
        now: i64,
    ) -> Result<Put> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .item(table::PK, s(table::customer_pk(customer.as_str())))
            .item(table::SK, s(table::SK_PROVISIONED))
            .item(attr::SUB, s(provisioned.sub.as_str()))
            .item(attr::PLAN, s(provisioned.plan.as_str()))
            .item(attr::UPDATED_AT, n(now));
        if let Some(usage_plan) = &provisioned.usage_plan_id {
            put = put.item(attr::USAGE_PLAN_ID, s(usage_plan));
        }
        if let Some(key) = &provisioned.api_key_id {
            put = put.item(attr::API_KEY_ID, s(key));
        }
        if !provisioned.stacks.is_empty() {
            put = put.item(attr::STACKS, AttributeValue::Ss(provisioned.stacks.clone()));
        }
        put.build().map_err(build_error)
    }
}

/// The provisioned state of its item; `None` (applied in full next time) when it does not read.
fn provisioned_of(item: &Item) -> Option<ProvisionedState> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    Some(ProvisionedState {
        sub: UserSub::parse(text(attr::SUB)?).ok()?,
        plan: PlanName::parse(text(attr::PLAN)?)?,
        usage_plan_id: text(attr::USAGE_PLAN_ID),
        api_key_id: text(attr::API_KEY_ID),
        stacks: item
            .get(attr::STACKS)
            .and_then(|v| v.as_ss().ok())
            .map(|stacks| {
                let mut stacks = stacks.clone();
                stacks.sort();
                stacks
            })
            .unwrap_or_default(),
    })
}

fn reason_code(reasons: &[CancellationReason], index: usize) -> &str {
    reasons
        .get(index)
        .and_then(CancellationReason::code)
        .unwrap_or("None")
}

/// The reasons of a canceled transaction; any other failure is the error it is.
fn cancellation_reasons(
    error: SdkError<
        TransactWriteItemsError,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
    operation: &'static str,
) -> Result<Vec<CancellationReason>> {
    if let SdkError::ServiceError(service_error) = &error
        && let TransactWriteItemsError::TransactionCanceledException(canceled) = service_error.err()
    {
        return Ok(canceled.cancellation_reasons().to_vec());
    }
    Err(classify(Upstream::DynamoDb, operation, error))
}

/// A transaction canceled for a reason the caller cannot act on (a conflict with another
/// transaction, throttling): retryable.
fn canceled(what: &str, reasons: &[CancellationReason]) -> Error {
    let codes: Vec<&str> = (0..reasons.len())
        .map(|index| reason_code(reasons, index))
        .collect();
    Error::upstream(
        Upstream::DynamoDb,
        "TransactWriteItems",
        true,
        format!("{what} canceled: {}", codes.join(",")),
    )
}
