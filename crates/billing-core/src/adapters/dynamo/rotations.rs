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
    /// The user's rotation items, consistently read: the rate limit counts what the rotation
    /// just before wrote.
    async fn rotation_items(&self, sub: &UserSub) -> Result<Vec<super::Item>> {
        self.query_prefix(table::user_pk(sub.as_str()), table::ROTATION_SK_PREFIX)
            .await
    }
}

#[async_trait]
impl KeyRotations for DynamoStore {
    async fn rotations_since(&self, sub: &UserSub, since: i64) -> Result<Vec<i64>> {
        let mut times = Vec::new();
        for item in self.rotation_items(sub).await? {
            let at = number_attr(&item, attr::CREATED_AT)?;
            if at >= since {
                times.push(at);
            }
        }
        Ok(times)
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
        let pk = table::user_pk(sub.as_str());
        for item in self.rotation_items(sub).await? {
            self.delete_key(pk.clone(), string_attr(&item, table::SK)?)
                .await?;
        }
        Ok(())
    }
}
