//! A user's API key rotations: `USER#<sub>` / `ROTATION#<at>` items with a TTL.

use async_trait::async_trait;

use super::DynamoStore;
use super::items::{n, number_attr, s, string_attr};
use crate::adapters::aws::classify;
use crate::domain::UserSub;
use crate::error::{Error, Result, Upstream};
use crate::ports::KeyRotations;
use crate::table::{self, attr};

impl DynamoStore {
    /// The user's rotation items from `since` on (`None`: all of them).
    async fn rotation_items(&self, sub: &UserSub, since: Option<i64>) -> Result<Vec<super::Item>> {
        let from = since.map_or_else(
            || table::ROTATION_SK_PREFIX.to_owned(),
            |since| table::rotation_sk(since.max(0)),
        );
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :user AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_names("#sk", table::SK)
            .expression_attribute_values(":user", s(table::user_pk(sub.as_str())))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(format!("{}~", table::ROTATION_SK_PREFIX)))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "Query", e))
    }
}

#[async_trait]
impl KeyRotations for DynamoStore {
    async fn rotations_since(&self, sub: &UserSub, since: i64) -> Result<Vec<i64>> {
        self.rotation_items(sub, Some(since))
            .await?
            .iter()
            .map(|item| number_attr(item, attr::CREATED_AT))
            .collect()
    }

    async fn record_rotation(&self, sub: &UserSub, at: i64) -> Result<()> {
        // Two rotations in one second are two items.
        let unique = crate::ids::random_hex::<8>().map_err(|e| Error::InvalidData {
            service: Upstream::DynamoDb,
            detail: format!("no randomness for a rotation item: {e}"),
        })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(table::PK, s(table::user_pk(sub.as_str())))
            .item(table::SK, s(format!("{}#{unique}", table::rotation_sk(at))))
            .item(attr::CREATED_AT, n(at))
            .item(table::EXPIRES_AT, n(at + table::ROTATION_MEMORY_SECS))
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "PutItem", e))?;
        Ok(())
    }

    async fn forget_rotations(&self, sub: &UserSub) -> Result<()> {
        for item in self.rotation_items(sub, None).await? {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key(table::PK, s(table::user_pk(sub.as_str())))
                .key(table::SK, s(string_attr(&item, table::SK)?))
                .send()
                .await
                .map_err(|e| classify(Upstream::DynamoDb, "DeleteItem", e))?;
        }
        Ok(())
    }
}
