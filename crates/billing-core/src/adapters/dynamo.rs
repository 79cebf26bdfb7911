//! The store ports over the one DynamoDB table (layout and access patterns in `crate::table`).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};

use crate::adapters::aws::classify;
use crate::checkout::CheckoutRecord;
use crate::domain::{CustomerId, CustomerLink, UserPoolId, UserSub, Username};
use crate::error::{Error, Result, Upstream};
use crate::ports::{CheckoutRecords, CustomerLinks};
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
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(table::PK, s(table::user_pk(sub.as_str())))
            .key(table::SK, s(table::SK_CUSTOMER))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "GetItem", e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        Ok(Some(CustomerLink {
            sub: sub.clone(),
            customer_id: CustomerId::parse(string_attr(&item, attr::CUSTOMER_ID)?)
                .map_err(invalid)?,
            pool_id: UserPoolId::parse(string_attr(&item, attr::USER_POOL_ID)?).map_err(invalid)?,
            username: Username::parse(string_attr(&item, attr::USERNAME)?).map_err(invalid)?,
        }))
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
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(table::PK, s(table::checkout_pk(session_id)))
            .key(table::SK, s(table::SK_SESSION))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "GetItem", e))?;
        let Some(item) = output.item else {
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
