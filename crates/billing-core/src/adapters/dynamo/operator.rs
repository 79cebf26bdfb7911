//! What the operator's tools read from the table: every link (a scan), a stored record, and
//! the events parked for a customer.

use async_trait::async_trait;

use super::items::{s, string_attr};
use super::links::link_of;
use super::records::{record_gsi1, record_key};
use super::{DynamoStore, Item};
use crate::adapters::aws::classify;
use crate::domain::CustomerLink;
use crate::error::{Error, Result, Upstream};
use crate::ports::{BillingRecord, OperatorStore};
use crate::table::{self, attr};

#[async_trait]
impl OperatorStore for DynamoStore {
    async fn all_links(&self) -> Result<Vec<CustomerLink>> {
        // The customer -> user direction: one item per link.
        let items: Vec<Item> = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("#sk = :user AND begins_with(#pk, :customer)")
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_names("#sk", table::SK)
            .expression_attribute_values(":user", s(table::SK_USER))
            .expression_attribute_values(":customer", s(table::customer_pk("")))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "Scan", e))?;
        let mut links = items.iter().map(link_of).collect::<Result<Vec<_>>>()?;
        links.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        Ok(links)
    }

    async fn stored_record(&self, record: &BillingRecord) -> Result<Option<BillingRecord>> {
        let (pk, sk) = record_key(record);
        let Some(item) = self.get(pk, &sk).await? else {
            return Ok(None);
        };
        let document = string_attr(&item, attr::DOC)?;
        let stored = record
            .with_document(&document)
            .map_err(|e| Error::InvalidData {
                service: Upstream::DynamoDb,
                detail: format!("stored document: {e}"),
            })?;
        // A catalogue item written before the index `GET /plans` reads reads as absent, so
        // that an import writes it again, index included.
        let index = (
            string_attr(&item, table::GSI1_PK).ok(),
            string_attr(&item, table::GSI1_SK).ok(),
        );
        let expected = record_gsi1(&stored).map_or((None, None), |(pk, sk)| (Some(pk), Some(sk)));
        Ok((index == expected).then_some(stored))
    }

    async fn clear_unmapped(&self, customer_id: &str) -> Result<usize> {
        let parked = self
            .query_prefix(table::unmapped_pk(customer_id), "")
            .await?;
        for item in &parked {
            let mut key = Item::new();
            for name in [table::PK, table::SK] {
                if let Some(value) = item.get(name) {
                    key.insert(name.to_owned(), value.clone());
                }
            }
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .send()
                .await
                .map_err(|e| classify(Upstream::DynamoDb, "DeleteItem", e))?;
        }
        Ok(parked.len())
    }
}
