//! The user <-> customer links: two items written and removed in one transaction.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use super::items::{invalid, n, now_unix, s, string_attr};
use super::{DynamoStore, Item};
use crate::adapters::aws::classify;
use crate::domain::{CustomerId, CustomerLink, UserPoolId, UserSub, Username};
use crate::error::{Error, Result, Upstream};
use crate::ports::CustomerLinks;
use crate::table::{self, attr};

#[async_trait]
impl CustomerLinks for DynamoStore {
    async fn customer_of_user(&self, sub: &UserSub) -> Result<Option<CustomerLink>> {
        self.get(table::user_pk(sub.as_str()), table::SK_CUSTOMER)
            .await?
            .map(|item| link_of(&item))
            .transpose()
    }

    async fn link(&self, link: &CustomerLink) -> Result<()> {
        let shared = [
            (attr::SUB, s(link.sub.as_str())),
            (attr::CUSTOMER_ID, s(link.customer_id.as_str())),
            (attr::USER_POOL_ID, s(link.pool_id.as_str())),
            (attr::USERNAME, s(link.username.as_str())),
            (attr::CREATED_AT, n(now_unix())),
        ];
        let item = |pk: String, sk: &str| {
            let mut item: Item = shared
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

impl DynamoStore {
    fn put_if_absent(&self, item: Item) -> Result<TransactWriteItem> {
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

/// Both directions of a link carry the same four attributes.
pub(super) fn link_of(item: &Item) -> Result<CustomerLink> {
    Ok(CustomerLink {
        sub: UserSub::parse(string_attr(item, attr::SUB)?).map_err(invalid)?,
        customer_id: CustomerId::parse(string_attr(item, attr::CUSTOMER_ID)?).map_err(invalid)?,
        pool_id: UserPoolId::parse(string_attr(item, attr::USER_POOL_ID)?).map_err(invalid)?,
        username: Username::parse(string_attr(item, attr::USERNAME)?).map_err(invalid)?,
    })
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
