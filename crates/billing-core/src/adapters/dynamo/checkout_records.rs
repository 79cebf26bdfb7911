//! The records of the Checkout sessions our users start.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoStore;
use super::items::{conditional_failed, invalid, n, number_attr, s, string_attr};
use crate::adapters::aws::classify;
use crate::domain::{CustomerId, UserSub};
use crate::error::{Error, Result, Upstream};
use crate::ports::{CheckoutRecord, CheckoutRecords};
use crate::table::{self, attr};

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
            .item(attr::CREATED_AT, n(record.created_at))
            .item(attr::COMPLETED, AttributeValue::Bool(record.completed))
            .item(table::EXPIRES_AT, n(record.expires_at()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", table::PK)
            .send()
            .await
            .map_err(|e| {
                if conditional_failed(&e) {
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
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(classify(Upstream::DynamoDb, "UpdateItem", e)),
        }
    }

    async fn delete_for_user(&self, sub: &UserSub) -> Result<()> {
        let mut sessions = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(table::GSI1)
            .key_condition_expression("#gpk = :user AND begins_with(#gsk, :checkout)")
            .expression_attribute_names("#gpk", table::GSI1_PK)
            .expression_attribute_names("#gsk", table::GSI1_SK)
            .expression_attribute_values(":user", s(table::user_pk(sub.as_str())))
            .expression_attribute_values(":checkout", s(table::CHECKOUT_KEY_PREFIX))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = sessions
            .try_next()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "Query", e))?
        {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key(table::PK, s(string_attr(&item, table::PK)?))
                .key(table::SK, s(table::SK_SESSION))
                .send()
                .await
                .map_err(|e| classify(Upstream::DynamoDb, "DeleteItem", e))?;
        }
        Ok(())
    }
}
