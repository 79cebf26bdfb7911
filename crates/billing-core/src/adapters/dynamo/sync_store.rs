//! What the webhook keeps in step with Stripe: versioned subscriptions and records, unmapped
//! events, and the stacks of subscriptions.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::items::{
    conditional_failed, doc_of, item_of_failed_put, n, number_attr, s, string_attr, to_doc,
};
use super::records::record_item;
use super::{DynamoStore, Item};
use crate::adapters::aws::classify;
use crate::domain::CustomerId;
use crate::error::{Error, Result, Upstream};
use crate::plans::SubscriptionState;
use crate::ports::{
    BillingRecord, Freshness, StackRecord, StackState, SyncStore, UnmappedEvent, Versioned,
};
use crate::table::{self, attr};

#[async_trait]
impl SyncStore for DynamoStore {
    async fn put_subscription(
        &self,
        subscription: &Versioned<SubscriptionState>,
        allow_tie: bool,
        review_at: Option<i64>,
    ) -> Result<Freshness> {
        let item = subscription_item(&subscription.state, review_at)?;
        self.put_versioned(
            item,
            subscription.event_created,
            &subscription.event_id,
            allow_tie,
        )
        .await
    }

    async fn subscription(
        &self,
        customer_id: &CustomerId,
        id: &str,
    ) -> Result<Option<Versioned<SubscriptionState>>> {
        let Some(item) = self
            .get(
                table::customer_pk(customer_id.as_str()),
                &table::subscription_sk(id),
            )
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Versioned {
            event_created: number_attr(&item, attr::EVENT_CREATED)?,
            event_id: string_attr(&item, attr::EVENT_ID)?,
            state: doc_of(&item)?,
        }))
    }

    async fn subscriptions_of(&self, customer_id: &CustomerId) -> Result<Vec<SubscriptionState>> {
        let items = self
            .query_prefix(
                table::customer_pk(customer_id.as_str()),
                table::SUBSCRIPTION_SK_PREFIX,
            )
            .await?;
        items.iter().map(doc_of).collect()
    }

    async fn put_record(&self, record: &Versioned<BillingRecord>) -> Result<Freshness> {
        let item = record_item(&record.state)?;
        self.put_versioned(item, record.event_created, &record.event_id, false)
            .await
    }

    async fn park_unmapped(
        &self,
        customer_id: &str,
        event_id: &str,
        event_type: &str,
        now: i64,
    ) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(table::PK, s(table::unmapped_pk(customer_id)))
            .item(table::SK, s(table::event_pk(event_id)))
            .item(table::GSI1_PK, s(table::GSI1_UNMAPPED))
            .item(table::GSI1_SK, s(table::unmapped_gsi1sk(now, customer_id)))
            .item(attr::EVENT_TYPE, s(event_type))
            .item(attr::CUSTOMER_ID, s(customer_id))
            .item(attr::CREATED_AT, n(now))
            .item(table::EXPIRES_AT, n(now + table::EVENT_TTL_SECS))
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "PutItem", e))?;
        Ok(())
    }

    async fn unmapped_events(&self) -> Result<Vec<UnmappedEvent>> {
        let items: Vec<_> = self.query_gsi1(table::GSI1_UNMAPPED.into()).await?;
        let mut parked = items
            .iter()
            .map(|item| {
                let sk = string_attr(item, table::SK)?;
                Ok(UnmappedEvent {
                    customer_id: string_attr(item, attr::CUSTOMER_ID)?,
                    event_id: table::event_id_of_sk(&sk).to_owned(),
                    event_type: string_attr(item, attr::EVENT_TYPE)?,
                    parked_at: number_attr(item, attr::CREATED_AT)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // gsi1sk starts with the unpadded time, which does not sort by number.
        parked.sort_by_key(|event| event.parked_at);
        Ok(parked)
    }

    async fn stacks_of(&self, subscription_id: &str) -> Result<Vec<StackRecord>> {
        let items = self
            .query_prefix(
                table::stack_owner_pk(subscription_id),
                table::STACK_SK_PREFIX,
            )
            .await?;
        items
            .iter()
            .map(|item| {
                let state = match string_attr(item, attr::STATUS)?.as_str() {
                    "deleting" => StackState::Deleting,
                    "deleted" => StackState::Deleted,
                    _ => StackState::Active,
                };
                stack_of(item, subscription_id.to_owned(), state)
            })
            .collect()
    }

    async fn stacks_in_state(&self, state: StackState) -> Result<Vec<StackRecord>> {
        let items = self
            .query_gsi1(table::stack_state_gsi1pk(stack_state_name(state)))
            .await?;
        items
            .iter()
            .map(|item| {
                let pk = string_attr(item, table::PK)?;
                let subscription_id = table::subscription_of_stack_pk(&pk).to_owned();
                stack_of(item, subscription_id, state)
            })
            .collect()
    }

    async fn put_stack(&self, stack: &StackRecord) -> Result<()> {
        let state = stack_state_name(stack.state);
        // A deleted stack's record is kept a while for the sweep and for reading, then expires:
        // a stack of the same name is created anew whether or not it is there.
        let expires_at = (stack.state == StackState::Deleted)
            .then(|| n(stack.updated_at + table::EVENT_TTL_SECS));
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(table::PK, s(table::stack_owner_pk(&stack.subscription_id)))
            .item(table::SK, s(table::stack_sk(&stack.stack_name)))
            .item(table::GSI1_PK, s(table::stack_state_gsi1pk(state)))
            .item(
                table::GSI1_SK,
                s(table::stack_gsi1sk(
                    &stack.subscription_id,
                    &stack.stack_name,
                )),
            )
            .item(attr::STACK_NAME, s(&stack.stack_name))
            .item(attr::STATUS, s(state))
            .item(attr::UPDATED_AT, n(stack.updated_at));
        let request = match expires_at {
            Some(expires_at) => request.item(table::EXPIRES_AT, expires_at),
            None => request,
        };
        request
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "PutItem", e))?;
        Ok(())
    }
}

impl DynamoStore {
    /// Writes `item` if its event is newer than the stored one's (or as new, with `allow_tie`).
    async fn put_versioned(
        &self,
        mut item: Item,
        event_created: i64,
        event_id: &str,
        allow_tie: bool,
    ) -> Result<Freshness> {
        let pk = string_attr(&item, table::PK)?;
        let sk = string_attr(&item, table::SK)?;
        item.insert(attr::EVENT_CREATED.into(), n(event_created));
        item.insert(attr::EVENT_ID.into(), s(event_id));
        let outcome = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(newer_only(allow_tie))
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_names("#created", attr::EVENT_CREATED)
            .expression_attribute_values(":created", n(event_created))
            // The stored item comes back with the failure: no second read to compare.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(Freshness::Applied),
            Err(e) if conditional_failed(&e) => {
                let stored = match item_of_failed_put(&e) {
                    Some(stored) => stored,
                    None => match self.get(pk, &sk).await? {
                        Some(stored) => stored,
                        None => {
                            return Err(Error::upstream(
                                Upstream::DynamoDb,
                                "PutItem",
                                true,
                                "item vanished after a failed condition",
                            ));
                        }
                    },
                };
                not_newer(&stored, event_created, event_id)
            }
            Err(e) => Err(classify(Upstream::DynamoDb, "PutItem", e)),
        }
    }
}

/// Why a versioned write's condition failed over `stored`.
pub(super) fn not_newer(stored: &Item, event_created: i64, event_id: &str) -> Result<Freshness> {
    let same_event = stored
        .get(attr::EVENT_ID)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        == Some(event_id);
    let tie = number_attr(stored, attr::EVENT_CREATED)? == event_created;
    Ok(if same_event {
        // A retry of a delivery that failed after storing this state: what follows the write
        // (provisioning) must still run.
        Freshness::Same
    } else if tie {
        Freshness::Tie
    } else {
        Freshness::Stale
    })
}

/// The attributes that put a subscription in the reconciler's review index.
pub(super) fn review_attributes(
    customer_id: &str,
    subscription_id: &str,
    review_at: i64,
) -> [(String, aws_sdk_dynamodb::types::AttributeValue); 3] {
    [
        (table::GSI1_PK.to_owned(), s(table::GSI1_REVIEW)),
        (
            table::GSI1_SK.to_owned(),
            s(table::review_gsi1sk(
                review_at,
                customer_id,
                subscription_id,
            )),
        ),
        (attr::REVIEW_AT.to_owned(), n(review_at)),
    ]
}

fn stack_of(item: &Item, subscription_id: String, state: StackState) -> Result<StackRecord> {
    Ok(StackRecord {
        subscription_id,
        stack_name: string_attr(item, attr::STACK_NAME)?,
        state,
        updated_at: number_attr(item, attr::UPDATED_AT).unwrap_or_default(),
    })
}

fn stack_state_name(state: StackState) -> &'static str {
    match state {
        StackState::Active => "active",
        StackState::Deleting => "deleting",
        StackState::Deleted => "deleted",
    }
}

/// A subscription's item, without the version (`event_created`, `event_id`) its write adds.
pub(super) fn subscription_item(state: &SubscriptionState, review_at: Option<i64>) -> Result<Item> {
    let mut item = Item::from([
        (
            table::PK.to_owned(),
            s(table::customer_pk(&state.customer_id)),
        ),
        (table::SK.to_owned(), s(table::subscription_sk(&state.id))),
        (attr::STATUS.to_owned(), s(state.status.as_str())),
        (attr::DOC.to_owned(), to_doc(state)?),
    ]);
    if let Some(review_at) = review_at {
        item.extend(review_attributes(&state.customer_id, &state.id, review_at));
    }
    Ok(item)
}

/// The condition of a versioned write: the stored item's event is older (or, with `allow_tie`,
/// of the same second), or there is none.
pub(super) fn newer_only(allow_tie: bool) -> &'static str {
    if allow_tie {
        "attribute_not_exists(#pk) OR #created <= :created"
    } else {
        "attribute_not_exists(#pk) OR #created < :created"
    }
}
