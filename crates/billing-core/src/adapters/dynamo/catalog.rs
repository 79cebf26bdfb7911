//! The stored catalogue in one Query of the gsi1 partition `CATALOG`.

use async_trait::async_trait;

use super::DynamoStore;
use super::items::{doc_of, string_attr};
use crate::error::Result;
use crate::ports::{CatalogStore, StoredCatalog};
use crate::table;

#[async_trait]
impl CatalogStore for DynamoStore {
    async fn catalog(&self) -> Result<StoredCatalog> {
        let mut catalog = StoredCatalog::default();
        for item in self.query_gsi1(table::GSI1_CATALOG.into()).await? {
            let pk = string_attr(&item, table::PK)?;
            if let Some(product_id) = pk.strip_prefix(&table::product_pk("")) {
                catalog
                    .products
                    .insert(product_id.to_owned(), doc_of(&item)?);
            } else if let Some(price_id) = pk.strip_prefix(&table::price_pk("")) {
                catalog.prices.insert(price_id.to_owned(), doc_of(&item)?);
            }
        }
        Ok(catalog)
    }
}
