//! Tombstones of deleted accounts' customers, and removing a customer's items.

use async_trait::async_trait;

use super::DynamoStore;
use super::items::{n, s, string_attr};
use crate::adapters::aws::classify;
use crate::domain::CustomerId;
use crate::error::{Result, Upstream};
use crate::ports::DeletedCustomers;
use crate::table::{self, attr};

#[async_trait]
impl DeletedCustomers for DynamoStore {
    async fn tombstone_customer(&self, customer_id: &CustomerId, now: i64) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(
                table::PK,
                s(table::deleted_customer_pk(customer_id.as_str())),
            )
            .item(table::SK, s(table::SK_CUSTOMER))
            .item(attr::CREATED_AT, n(now))
            .item(table::EXPIRES_AT, n(now + table::EVENT_TTL_SECS))
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "PutItem", e))?;
        Ok(())
    }

    async fn is_deleted_customer(&self, customer_id: &CustomerId) -> Result<bool> {
        Ok(self
            .get(
                table::deleted_customer_pk(customer_id.as_str()),
                table::SK_CUSTOMER,
            )
            .await?
            .is_some())
    }

    async fn purge_customer(&self, customer_id: &CustomerId) -> Result<()> {
        let pk = table::customer_pk(customer_id.as_str());
        for item in self.query_prefix(pk.clone(), "").await? {
            let sk = string_attr(&item, table::SK)?;
            if sk == table::SK_PROVISIONING {
                continue;
            }
            self.delete_key(pk.clone(), sk).await?;
        }
        Ok(())
    }
}
