//! The stored catalogue in memory: the products and the active prices with a lookup key among
//! the store's records.

use async_trait::async_trait;

use super::{InMemoryStore, lock};
use crate::error::Result;
use crate::ports::{BillingRecord, CatalogStore, StoredCatalog};

#[async_trait]
impl CatalogStore for InMemoryStore {
    async fn catalog(&self) -> Result<StoredCatalog> {
        self.enter("Query")?;
        let mut catalog = StoredCatalog::default();
        for record in lock(&self.tables).records.values() {
            match &record.state {
                BillingRecord::Product {
                    product_id,
                    product,
                } => {
                    catalog.products.insert(product_id.clone(), product.clone());
                }
                BillingRecord::Price { price_id, price } if price.active_lookup_key().is_some() => {
                    catalog.prices.insert(price_id.clone(), price.clone());
                }
                _ => {}
            }
        }
        Ok(catalog)
    }
}
