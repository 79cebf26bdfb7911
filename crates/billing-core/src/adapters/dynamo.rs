//! The store ports over the one DynamoDB table (layout and access patterns in `crate::table`).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};

use crate::adapters::aws::classify;

use crate::domain::{CustomerId, CustomerLink, UserPoolId, UserSub, Username};
use crate::error::{Error, Result, Upstream};
use crate::plans::SubscriptionState;
use crate::ports::{
    CheckoutRecord, CheckoutRecords, CustomerLinks, Document, EventClaim, EventLog, Freshness,
    ProvisioningLeases, StackRecord, StackState, SyncStore, Versioned,
};
use crate::table::{self, attr};

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), table)
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn put_if_absent(&self, item: HashMap<String, AttributeValue>) -> Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", table::PK)
            .build()
            .map_err(|e| Error::upstream(Upstream::DynamoDb, "TransactWriteItems", false, e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete(&self, pk: String, sk: &str) -> Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key(table::PK, s(pk))
            .key(table::SK, s(sk))
            .build()
            .map_err(|e| Error::upstream(Upstream::DynamoDb, "TransactWriteItems", false, e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}

fn string_attr(item: &HashMap<String, AttributeValue>, name: &str) -> Result<String> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .cloned()
        .ok_or_else(|| Error::InvalidData {
            service: Upstream::DynamoDb,
            detail: format!("item lacks string attribute {name}"),
        })
}

fn number_attr(item: &HashMap<String, AttributeValue>, name: &str) -> Result<i64> {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| Error::InvalidData {
            service: Upstream::DynamoDb,
            detail: format!("item lacks number attribute {name}"),
        })
}

/// Both directions of a link carry the same four attributes.
fn link_of(item: &HashMap<String, AttributeValue>) -> Result<CustomerLink> {
    Ok(CustomerLink {
        sub: UserSub::parse(string_attr(item, attr::SUB)?).map_err(invalid)?,
        customer_id: CustomerId::parse(string_attr(item, attr::CUSTOMER_ID)?).map_err(invalid)?,
        pool_id: UserPoolId::parse(string_attr(item, attr::USER_POOL_ID)?).map_err(invalid)?,
        username: Username::parse(string_attr(item, attr::USERNAME)?).map_err(invalid)?,
    })
}

fn invalid(error: crate::domain::ParseError) -> Error {
    Error::InvalidData {
        service: Upstream::DynamoDb,
        detail: error.to_string(),
    }
}

fn transaction_error(
    error: SdkError<
        TransactWriteItemsError,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> Error {
    if let SdkError::ServiceError(service_error) = &error
        && let TransactWriteItemsError::TransactionCanceledException(canceled) = service_error.err()
        && canceled
            .cancellation_reasons()
            .iter()
            .any(|reason| reason.code() == Some("ConditionalCheckFailed"))
    {
        return Error::ConditionalCheckFailed;
    }
    classify(Upstream::DynamoDb, "TransactWriteItems", error)
}

#[async_trait]
impl CustomerLinks for DynamoStore {
    async fn customer_of_user(&self, sub: &UserSub) -> Result<Option<CustomerLink>> {
        self.get(table::user_pk(sub.as_str()), table::SK_CUSTOMER)
            .await?
            .map(|item| link_of(&item))
            .transpose()
    }

    async fn link(&self, link: &CustomerLink) -> Result<()> {
        let created_at = AttributeValue::N(now_unix().to_string());
        let shared = [
            (attr::SUB, s(link.sub.as_str())),
            (attr::CUSTOMER_ID, s(link.customer_id.as_str())),
            (attr::USER_POOL_ID, s(link.pool_id.as_str())),
            (attr::USERNAME, s(link.username.as_str())),
            (attr::CREATED_AT, created_at),
        ];
        let item = |pk: String, sk: &str| {
            let mut item: HashMap<String, AttributeValue> = shared
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone()))
                .collect();
            item.insert(table::PK.into(), s(pk));
            item.insert(table::SK.into(), s(sk));
            item
        };
        self.client
            .transact_write_items()
            .transact_items(
                self.put_if_absent(item(table::user_pk(link.sub.as_str()), table::SK_CUSTOMER))?,
            )
            .transact_items(self.put_if_absent(item(
                table::customer_pk(link.customer_id.as_str()),
                table::SK_USER,
            ))?)
            .send()
            .await
            .map_err(transaction_error)?;
        Ok(())
    }

    async fn user_of_customer(&self, customer_id: &CustomerId) -> Result<Option<CustomerLink>> {
        self.get(table::customer_pk(customer_id.as_str()), table::SK_USER)
            .await?
            .map(|item| link_of(&item))
            .transpose()
    }

    async fn unlink(&self, link: &CustomerLink) -> Result<()> {
        self.client
            .transact_write_items()
            .transact_items(self.delete(table::user_pk(link.sub.as_str()), table::SK_CUSTOMER)?)
            .transact_items(self.delete(
                table::customer_pk(link.customer_id.as_str()),
                table::SK_USER,
            )?)
            .send()
            .await
            .map_err(transaction_error)?;
        Ok(())
    }
}

#[async_trait]
impl CheckoutRecords for DynamoStore {
    async fn put(&self, record: &CheckoutRecord) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(table::PK, s(table::checkout_pk(&record.session_id)))
            .item(table::SK, s(table::SK_SESSION))
            .item(table::GSI1_PK, s(table::user_pk(record.sub.as_str())))
            .item(table::GSI1_SK, s(table::checkout_pk(&record.session_id)))
            .item(attr::SUB, s(record.sub.as_str()))
            .item(attr::CUSTOMER_ID, s(record.customer_id.as_str()))
            .item(attr::KEY_HASH, s(&record.key_hash))
            .item(attr::LOOKUP_KEY, s(&record.lookup_key))
            .item(
                attr::CREATED_AT,
                AttributeValue::N(record.created_at.to_string()),
            )
            .item(attr::COMPLETED, AttributeValue::Bool(record.completed))
            .item(
                table::EXPIRES_AT,
                AttributeValue::N(
                    (record.created_at + table::CHECKOUT_RECORD_TTL_SECS).to_string(),
                ),
            )
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", table::PK)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception())
                {
                    Error::ConditionalCheckFailed
                } else {
                    classify(Upstream::DynamoDb, "PutItem", e)
                }
            })?;
        Ok(())
    }

    async fn get(&self, session_id: &str) -> Result<Option<CheckoutRecord>> {
        let Some(item) =
            DynamoStore::get(self, table::checkout_pk(session_id), table::SK_SESSION).await?
        else {
            return Ok(None);
        };
        Ok(Some(CheckoutRecord {
            session_id: session_id.to_owned(),
            sub: UserSub::parse(string_attr(&item, attr::SUB)?).map_err(invalid)?,
            customer_id: CustomerId::parse(string_attr(&item, attr::CUSTOMER_ID)?)
                .map_err(invalid)?,
            key_hash: string_attr(&item, attr::KEY_HASH)?,
            lookup_key: string_attr(&item, attr::LOOKUP_KEY)?,
            created_at: number_attr(&item, attr::CREATED_AT)?,
            completed: item
                .get(attr::COMPLETED)
                .and_then(|value| value.as_bool().ok())
                .copied()
                .unwrap_or(false),
        }))
    }

    async fn mark_completed(&self, session_id: &str) -> Result<bool> {
        let outcome = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(table::PK, s(table::checkout_pk(session_id)))
            .key(table::SK, s(table::SK_SESSION))
            .update_expression("SET #completed = :yes")
            .condition_expression("attribute_exists(#pk) AND #completed = :no")
            .expression_attribute_names("#completed", attr::COMPLETED)
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify(Upstream::DynamoDb, "UpdateItem", e)),
        }
    }

    async fn delete_for_user(&self, sub: &UserSub) -> Result<()> {
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(table::GSI1)
                .key_condition_expression("#gpk = :user AND begins_with(#gsk, :checkout)")
                .expression_attribute_names("#gpk", table::GSI1_PK)
                .expression_attribute_names("#gsk", table::GSI1_SK)
                .expression_attribute_values(":user", s(table::user_pk(sub.as_str())))
                .expression_attribute_values(":checkout", s("CHECKOUT#"))
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| classify(Upstream::DynamoDb, "Query", e))?;
            for item in page.items() {
                let pk = string_attr(item, table::PK)?;
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key(table::PK, s(pk))
                    .key(table::SK, s(table::SK_SESSION))
                    .send()
                    .await
                    .map_err(|e| classify(Upstream::DynamoDb, "DeleteItem", e))?;
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => return Ok(()),
            }
        }
    }
}

fn stack_state_name(state: StackState) -> &'static str {
    match state {
        StackState::Active => "active",
        StackState::Deleting => "deleting",
        StackState::Deleted => "deleted",
    }
}

const EVENT_CREATED: &str = "event_created";
const EVENT_ID: &str = "event_id";
const DOC: &str = "doc";
const STATUS: &str = "status";
const LEASE_UNTIL: &str = "lease_until";
const HOLDER: &str = "holder";

fn conditional_failed<E, R>(error: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    matches!(error, SdkError::ServiceError(service) if service.err().code() == Some("ConditionalCheckFailedException"))
}

impl DynamoStore {
    async fn get(&self, pk: String, sk: &str) -> Result<Option<HashMap<String, AttributeValue>>> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key(table::PK, s(pk))
            .key(table::SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "GetItem", e))?
            .item)
    }

    /// Writes `item` if its event is newer than the stored one's (or as new, with `allow_tie`).
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

    async fn put_versioned(
        &self,
        mut item: HashMap<String, AttributeValue>,
        event_created: i64,
        event_id: &str,
        allow_tie: bool,
    ) -> Result<Freshness> {
        let pk = string_attr(&item, table::PK)?;
        let sk = string_attr(&item, table::SK)?;
        item.insert(
            EVENT_CREATED.into(),
            AttributeValue::N(event_created.to_string()),
        );
        item.insert(EVENT_ID.into(), s(event_id));
        let condition = if allow_tie {
            "attribute_not_exists(#pk) OR #created <= :created"
        } else {
            "attribute_not_exists(#pk) OR #created < :created"
        };
        let outcome = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_names("#created", EVENT_CREATED)
            .expression_attribute_values(":created", AttributeValue::N(event_created.to_string()))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(Freshness::Applied),
            Err(e) if conditional_failed(&e) => {
                let Some(stored) = self.get(pk, &sk).await? else {
                    return Err(Error::upstream(
                        Upstream::DynamoDb,
                        "PutItem",
                        true,
                        "item vanished after a failed condition",
                    ));
                };
                let same_event = stored
                    .get(EVENT_ID)
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some(event_id);
                let tie = number_attr(&stored, EVENT_CREATED)? == event_created;
                Ok(if same_event {
                    // A retry of a delivery that failed after storing this state: what follows
                    // the write (provisioning) must still run.
                    Freshness::Same
                } else if tie {
                    Freshness::Tie
                } else {
                    Freshness::Stale
                })
            }
            Err(e) => Err(classify(Upstream::DynamoDb, "PutItem", e)),
        }
    }
}

fn doc_of<T: serde::de::DeserializeOwned>(item: &HashMap<String, AttributeValue>) -> Result<T> {
    serde_json::from_str(&string_attr(item, DOC)?).map_err(|e| Error::InvalidData {
        service: Upstream::DynamoDb,
        detail: format!("stored document: {e}"),
    })
}

fn to_doc(value: &impl serde::Serialize) -> Result<AttributeValue> {
    serde_json::to_string(value)
        .map(AttributeValue::S)
        .map_err(|e| Error::InvalidData {
            service: Upstream::DynamoDb,
            detail: e.to_string(),
        })
}

#[async_trait]
impl ProvisioningLeases for DynamoStore {
    async fn take_lease(&self, customer: &CustomerId, holder: &str, now: i64) -> Result<bool> {
        let until = now + table::PROVISIONING_LEASE_SECS;
        let outcome = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(table::PK, s(table::customer_pk(customer.as_str())))
            .item(table::SK, s(table::SK_PROVISIONING))
            .item(HOLDER, s(holder))
            .item(LEASE_UNTIL, AttributeValue::N(until.to_string()))
            .item(table::EXPIRES_AT, AttributeValue::N(until.to_string()))
            .condition_expression("attribute_not_exists(#pk) OR #lease < :now")
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_names("#lease", LEASE_UNTIL)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
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
        self.delete_if_still(key, HOLDER, holder).await
    }
}

#[async_trait]
impl EventLog for DynamoStore {
    async fn claim(&self, event_id: &str, now: i64) -> Result<EventClaim> {
        let outcome = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(table::PK, s(table::event_pk(event_id)))
            .item(table::SK, s("EVENT"))
            .item(STATUS, s("processing"))
            .item(
                LEASE_UNTIL,
                AttributeValue::N((now + table::EVENT_LEASE_SECS).to_string()),
            )
            .item(
                table::EXPIRES_AT,
                AttributeValue::N((now + table::EVENT_TTL_SECS).to_string()),
            )
            .condition_expression(
                "attribute_not_exists(#pk) OR (#status = :processing AND #lease < :now)",
            )
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_names("#lease", LEASE_UNTIL)
            .expression_attribute_values(":processing", s("processing"))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(EventClaim::Claimed),
            Err(e) if conditional_failed(&e) => {
                let stored = self.get(table::event_pk(event_id), "EVENT").await?;
                let done = stored
                    .as_ref()
                    .and_then(|item| item.get(STATUS))
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|status| status == "done");
                Ok(if done {
                    EventClaim::AlreadyDone
                } else {
                    EventClaim::InProgress
                })
            }
            Err(e) => Err(classify(Upstream::DynamoDb, "PutItem", e)),
        }
    }

    async fn complete(&self, event_id: &str, now: i64) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(table::PK, s(table::event_pk(event_id)))
            .item(table::SK, s("EVENT"))
            .item(STATUS, s("done"))
            .item(
                table::EXPIRES_AT,
                AttributeValue::N((now + table::EVENT_TTL_SECS).to_string()),
            )
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "PutItem", e))?;
        Ok(())
    }

    async fn release(&self, event_id: &str) -> Result<()> {
        let key = (table::event_pk(event_id), "EVENT");
        self.delete_if_still(key, STATUS, "processing").await
    }
}

#[async_trait]
impl SyncStore for DynamoStore {
    async fn put_subscription(
        &self,
        subscription: &Versioned<SubscriptionState>,
        allow_tie: bool,
    ) -> Result<Freshness> {
        let state = &subscription.state;
        let item = HashMap::from([
            (
                table::PK.to_owned(),
                s(table::customer_pk(&state.customer_id)),
            ),
            (table::SK.to_owned(), s(format!("SUB#{}", state.id))),
            (STATUS.to_owned(), s(state.status.as_str())),
            (DOC.to_owned(), to_doc(state)?),
        ]);
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
                &format!("SUB#{id}"),
            )
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Versioned {
            event_created: number_attr(&item, EVENT_CREATED)?,
            event_id: string_attr(&item, EVENT_ID)?,
            state: doc_of(&item)?,
        }))
    }

    async fn subscriptions_of(&self, customer_id: &CustomerId) -> Result<Vec<SubscriptionState>> {
        let mut subscriptions = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :sub)")
                .expression_attribute_names("#pk", table::PK)
                .expression_attribute_names("#sk", table::SK)
                .expression_attribute_values(":pk", s(table::customer_pk(customer_id.as_str())))
                .expression_attribute_values(":sub", s("SUB#"))
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| classify(Upstream::DynamoDb, "Query", e))?;
            for item in page.items() {
                subscriptions.push(doc_of(item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => return Ok(subscriptions),
            }
        }
    }

    async fn put_document(&self, document: &Versioned<Document>) -> Result<Freshness> {
        let doc = &document.state;
        let mut item = HashMap::from([
            (table::PK.to_owned(), s(&doc.pk)),
            (table::SK.to_owned(), s(&doc.sk)),
            (DOC.to_owned(), to_doc(&doc.body)?),
        ]);
        if let Some((gsi_pk, gsi_sk)) = &doc.gsi1 {
            item.insert(table::GSI1_PK.into(), s(gsi_pk));
            item.insert(table::GSI1_SK.into(), s(gsi_sk));
        }
        self.put_versioned(item, document.event_created, &document.event_id, false)
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
            .item(table::PK, s(format!("UNMAPPED#{customer_id}")))
            .item(table::SK, s(table::event_pk(event_id)))
            .item(table::GSI1_PK, s("UNMAPPED"))
            .item(table::GSI1_SK, s(format!("{now}#{customer_id}")))
            .item("event_type", s(event_type))
            .item(attr::CUSTOMER_ID, s(customer_id))
            .item(attr::CREATED_AT, AttributeValue::N(now.to_string()))
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "PutItem", e))?;
        Ok(())
    }

    async fn stacks_of(&self, subscription_id: &str) -> Result<Vec<StackRecord>> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :stack)")
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_names("#sk", table::SK)
            .expression_attribute_values(":pk", s(format!("SUBSCRIPTION#{subscription_id}")))
            .expression_attribute_values(":stack", s("STACK#"))
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "Query", e))?;
        page.items()
            .iter()
            .map(|item| {
                let state = match string_attr(item, STATUS)?.as_str() {
                    "deleting" => StackState::Deleting,
                    "deleted" => StackState::Deleted,
                    _ => StackState::Active,
                };
                Ok(StackRecord {
                    subscription_id: subscription_id.to_owned(),
                    stack_name: string_attr(item, "stack_name")?,
                    state,
                    updated_at: number_attr(item, "updated_at").unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn stacks_in_state(&self, state: StackState) -> Result<Vec<StackRecord>> {
        let mut stacks = Vec::new();
        let mut start_key = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(table::GSI1)
                .key_condition_expression("#gpk = :state")
                .expression_attribute_names("#gpk", table::GSI1_PK)
                .expression_attribute_values(
                    ":state",
                    s(format!("STACKSTATE#{}", stack_state_name(state))),
                )
                .set_exclusive_start_key(start_key)
                .send()
                .await
                .map_err(|e| classify(Upstream::DynamoDb, "Query", e))?;
            for item in page.items() {
                let pk = string_attr(item, table::PK)?;
                stacks.push(StackRecord {
                    subscription_id: pk.trim_start_matches("SUBSCRIPTION#").to_owned(),
                    stack_name: string_attr(item, "stack_name")?,
                    state,
                    updated_at: number_attr(item, "updated_at").unwrap_or_default(),
                });
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => return Ok(stacks),
            }
        }
    }

    async fn put_stack(&self, stack: &StackRecord) -> Result<()> {
        let state = stack_state_name(stack.state);
        self.client
            .put_item()
            .table_name(&self.table)
            .item(
                table::PK,
                s(format!("SUBSCRIPTION#{}", stack.subscription_id)),
            )
            .item(table::SK, s(format!("STACK#{}", stack.stack_name)))
            .item(table::GSI1_PK, s(format!("STACKSTATE#{state}")))
            .item(
                table::GSI1_SK,
                s(format!("{}#{}", stack.subscription_id, stack.stack_name)),
            )
            .item("stack_name", s(&stack.stack_name))
            .item(STATUS, s(state))
            .item(
                "updated_at",
                AttributeValue::N(stack.updated_at.to_string()),
            )
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "PutItem", e))?;
        Ok(())
    }
}
