//! The stored catalogue as the pricing page reads it: every product, and every active price
//! with a lookup key, in one read.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::error::Result;

use super::records::{PriceRecord, ProductRecord};

/// What the table holds of the catalogue that can be sold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredCatalog {
    /// By product id, archived ones too.
    pub products: BTreeMap<String, ProductRecord>,
    /// By price id: the active prices that have a lookup key.
    pub prices: BTreeMap<String, PriceRecord>,
}

#[async_trait]
pub trait CatalogStore: Send + Sync {
    async fn catalog(&self) -> Result<StoredCatalog>;
}
