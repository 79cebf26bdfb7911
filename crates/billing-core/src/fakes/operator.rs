//! The operator's ports in memory: the links, stored records and parked events of the store,
//! and Stripe's account lists (customers from the fake's customers, the catalogue as tests add
//! it).

use async_trait::async_trait;

use super::{FakeStripe, InMemoryStore, lock};
use crate::domain::CustomerLink;
use crate::error::Result;
use crate::ports::{
    AccountListing, BillingRecord, ListedObject, ObjectsPage, OperatorStore, StripeList,
};

/// What one page holds, small so tests page.
const FAKE_PAGE_SIZE: usize = 3;

#[async_trait]
impl OperatorStore for InMemoryStore {
    async fn all_links(&self) -> Result<Vec<CustomerLink>> {
        self.enter("Scan")?;
        let mut links: Vec<_> = lock(&self.tables).by_user.values().cloned().collect();
        links.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        Ok(links)
    }

    async fn stored_record(&self, record: &BillingRecord) -> Result<Option<BillingRecord>> {
        self.enter("GetItem")?;
        let key = (record.kind(), record.id().to_owned());
        Ok(lock(&self.tables)
            .records
            .get(&key)
            .map(|stored| stored.state.clone()))
    }

    async fn clear_unmapped(&self, customer_id: &str) -> Result<usize> {
        self.enter("DeleteItem")?;
        let mut tables = lock(&self.tables);
        let before = tables.unmapped.len();
        tables
            .unmapped
            .retain(|parked| parked.customer_id != customer_id);
        Ok(before - tables.unmapped.len())
    }
}

impl FakeStripe {
    /// A catalogue object (product, price or tax rate) as Stripe would list it.
    pub fn list_object(&self, list: StripeList, object: serde_json::Value) {
        lock(&self.state).listed.push((list, object));
    }
}

#[async_trait]
impl AccountListing for FakeStripe {
    async fn objects_page(
        &self,
        list: StripeList,
        starting_after: Option<&str>,
    ) -> Result<ObjectsPage> {
        self.enter("List")?;
        let state = lock(&self.state);
        let objects: Vec<serde_json::Value> = match list {
            StripeList::Customers => state
                .customers
                .iter()
                .rev()
                .map(|customer| {
                    serde_json::json!({
                        "object": "customer",
                        "id": customer.id.as_str(),
                        "email": customer.email,
                        "name": customer.name,
                        "created": customer.created,
                        "metadata": customer.metadata,
                    })
                })
                .collect(),
            _ => state
                .listed
                .iter()
                .rev()
                .filter(|(of, _)| *of == list)
                .map(|(_, object)| object.clone())
                .collect(),
        };
        let id_of =
            |object: &serde_json::Value| object["id"].as_str().unwrap_or_default().to_owned();
        let start = match starting_after {
            Some(after) => objects
                .iter()
                .position(|object| id_of(object) == after)
                .map_or(objects.len(), |at| at + 1),
            None => 0,
        };
        let rest = &objects[start.min(objects.len())..];
        Ok(ObjectsPage {
            objects: rest
                .iter()
                .take(FAKE_PAGE_SIZE)
                .map(|object| ListedObject {
                    id: id_of(object),
                    body: serde_json::to_vec(object).unwrap_or_default(),
                })
                .collect(),
            has_more: rest.len() > FAKE_PAGE_SIZE,
        })
    }
}
