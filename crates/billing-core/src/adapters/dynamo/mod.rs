//! The store ports over the one DynamoDB table (layout and access patterns in `crate::table`):
//! one file per port, over the item helpers of `items`. Every key is formatted here or in
//! `crate::table`, nowhere else.

mod catalog;
mod checkout_records;
mod deleted_customers;
mod delivery;
mod events;
mod items;
mod links;
mod operator;
mod reconciler;
mod records;
mod rotations;
mod sync_store;
mod usage;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use crate::adapters::aws::classify;
use crate::error::{Result, Upstream};
use crate::table;

use items::s;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

impl DynamoStore {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(
            Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(sdk)
                    .interceptor(crate::xray::XrayInterceptor::global())
                    .build(),
            ),
            table,
        )
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// One BatchGetItem on the table: the items found. Keys DynamoDB leaves unprocessed are
    /// left out, so callers read them as misses.
    async fn batch_get(&self, keys: KeysAndAttributes) -> Result<Vec<Item>> {
        let mut answer = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys)
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "BatchGetItem", e))?;
        Ok(answer
            .responses
            .as_mut()
            .and_then(|tables| tables.remove(&self.table))
            .unwrap_or_default())
    }

    /// A consistent read of one item.
    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>> {
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

    /// A transaction's `Put` sent on its own, as a PutItem: the item and its condition are
    /// written once for both.
    fn put_item_of(
        &self,
        put: aws_sdk_dynamodb::types::Put,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(put.table_name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_names(put.expression_attribute_names)
            .set_expression_attribute_values(put.expression_attribute_values)
            .set_return_values_on_condition_check_failure(
                put.return_values_on_condition_check_failure,
            )
    }

    /// Deletes the item `pk` / `sk`; an absent one is not an error.
    async fn delete_key(&self, pk: String, sk: String) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(table::PK, s(pk))
            .key(table::SK, s(sk))
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "DeleteItem", e))?;
        Ok(())
    }

    /// Every item of the partition `pk` whose sort key starts with `sk_prefix` (every item of
    /// the partition for an empty prefix: DynamoDB refuses an empty `begins_with`), all pages,
    /// consistently read.
    async fn query_prefix(&self, pk: String, sk_prefix: &str) -> Result<Vec<Item>> {
        if sk_prefix.is_empty() {
            self.query_keys(pk, SortKeys::All).await
        } else {
            self.query_keys(pk, SortKeys::Prefix(sk_prefix)).await
        }
    }

    /// The items of the partition `pk` whose sort keys are in `range`, all pages, consistently
    /// read.
    async fn query_keys(&self, pk: String, range: SortKeys<'_>) -> Result<Vec<Item>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_values(":pk", s(pk));
        let query = match range {
            SortKeys::All => query.key_condition_expression("#pk = :pk"),
            SortKeys::Prefix(prefix) => query
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#sk", table::SK)
                .expression_attribute_values(":prefix", s(prefix)),
            SortKeys::From(from) => query
                .key_condition_expression("#pk = :pk AND #sk >= :from")
                .expression_attribute_names("#sk", table::SK)
                .expression_attribute_values(":from", s(from)),
            SortKeys::Between(from, to) => query
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#sk", table::SK)
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":to", s(to)),
        };
        query
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "Query", e))
    }

    /// Every item of the gsi1 partition `gsi1pk`, all pages (the index reads eventually).
    async fn query_gsi1(&self, gsi1pk: String) -> Result<Vec<Item>> {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(table::GSI1)
            .key_condition_expression("#gpk = :gpk")
            .expression_attribute_names("#gpk", table::GSI1_PK)
            .expression_attribute_values(":gpk", s(gsi1pk))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "Query", e))
    }
}

/// Which sort keys of a partition a query reads.
#[derive(Debug, Clone, Copy)]
enum SortKeys<'a> {
    All,
    Prefix(&'a str),
    /// From this key on (in sort order).
    From(&'a str),
    /// Both ends included.
    Between(&'a str, &'a str),
}
