//! The store ports over the one DynamoDB table (layout and access patterns in `crate::table`).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use crate::adapters::aws::classify;
use crate::domain::{CustomerId, CustomerLink, UserPoolId, UserSub, Username};
use crate::error::{Error, Result, Upstream};
use crate::ports::CustomerLinks;
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
}
