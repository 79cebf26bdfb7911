//! A delivery's claim, read and commit in the in-memory store: each one call, all or nothing,
//! with the same conditions as the DynamoDB transactions.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::store::EventEntry;
use super::sync_store::{insert_record, record_freshness};
use super::{InMemoryStore, lock};
use crate::domain::CustomerId;
use crate::error::Result;
use crate::ports::{
    BillingRecord, Committed, CustomerView, DeliveryClaim, DeliveryCommit, DeliveryStore,
    Freshness, ProductRecord, ProvisionedState, RecordKind, RecordedAtOnce, Versioned,
};
use crate::table::{EVENT_LEASE_SECS, PROVISIONING_LEASE_SECS};

#[async_trait]
impl DeliveryStore for InMemoryStore {
    async fn record_at_once(
        &self,
        event_id: &str,
        customer: Option<&CustomerId>,
        records: &[Versioned<BillingRecord>],
        now: i64,
    ) -> Result<RecordedAtOnce> {
        self.enter("TransactWriteItems")?;
        let mut tables = lock(&self.tables);
        let claimed_or_done = match tables.events.get(event_id) {
            Some(EventEntry::Done) => true,
            Some(EventEntry::Processing { lease_until }) => *lease_until >= now,
            None => false,
        };
        let deleted = customer.is_some_and(|customer| tables.deleted_customers.contains(customer));
        if claimed_or_done || deleted {
            return Ok(RecordedAtOnce::Declined);
        }
        // DynamoDB's condition on each record: absent, or stored by an older event.
        let each: Vec<Freshness> = records
            .iter()
            .map(|record| record_freshness(&tables, record))
            .collect();
        if each.iter().any(|fresh| *fresh != Freshness::Applied) {
            return Ok(RecordedAtOnce::NotNewer(each));
        }
        for record in records {
            insert_record(&mut tables, record);
        }
        tables.events.insert(event_id.to_owned(), EventEntry::Done);
        Ok(RecordedAtOnce::Written)
    }

    async fn claim_delivery(
        &self,
        event_id: &str,
        customer: &CustomerId,
        lease_holder: Option<&str>,
        now: i64,
    ) -> Result<DeliveryClaim> {
        self.enter("TransactWriteItems")?;
        let mut tables = lock(&self.tables);
        match tables.events.get(event_id) {
            Some(EventEntry::Done) => return Ok(DeliveryClaim::AlreadyDone),
            Some(EventEntry::Processing { lease_until }) if *lease_until >= now => {
                return Ok(DeliveryClaim::InProgress);
            }
            _ => {}
        }
        if tables.deleted_customers.contains(customer) {
            return Ok(DeliveryClaim::CustomerDeleted);
        }
        tables.events.insert(
            event_id.to_owned(),
            EventEntry::Processing {
                lease_until: now + EVENT_LEASE_SECS,
            },
        );
        let Some(holder) = lease_holder else {
            return Ok(DeliveryClaim::Claimed { leased: false });
        };
        let leased = match tables.leases.get(customer) {
            Some((_, until)) if *until >= now => false,
            _ => {
                tables.leases.insert(
                    customer.clone(),
                    (holder.to_owned(), now + PROVISIONING_LEASE_SECS),
                );
                true
            }
        };
        Ok(DeliveryClaim::Claimed { leased })
    }

    async fn customer_view(&self, customer: &CustomerId) -> Result<CustomerView> {
        self.enter("Query")?;
        let tables = lock(&self.tables);
        Ok(CustomerView {
            link: tables
                .by_customer
                .get(customer)
                .and_then(|sub| tables.by_user.get(sub))
                .cloned(),
            subscriptions: tables
                .subscriptions
                .values()
                .filter(|v| v.state.customer_id == customer.as_str())
                .cloned()
                .collect(),
            provisioned: tables.provisioned.get(customer).cloned(),
        })
    }

    async fn products(&self, ids: &[&str]) -> Result<BTreeMap<String, ProductRecord>> {
        self.enter("BatchGetItem")?;
        let tables = lock(&self.tables);
        Ok(ids
            .iter()
            .filter_map(|id| {
                match tables
                    .records
                    .get(&(RecordKind::Product, (*id).to_owned()))
                    .map(|v| &v.state)
                {
                    Some(BillingRecord::Product { product, .. }) => {
                        Some(((*id).to_owned(), product.clone()))
                    }
                    _ => None,
                }
            })
            .collect())
    }

    async fn commit_delivery(&self, commit: &DeliveryCommit<'_>) -> Result<Committed> {
        self.enter("TransactWriteItems")?;
        let mut tables = lock(&self.tables);
        if let Some(write) = &commit.subscription {
            let versioned = write.subscription;
            let key = (
                versioned.state.customer_id.clone(),
                versioned.state.id.clone(),
            );
            // DynamoDB's condition: absent, or stored by an older event (or one as old, with
            // allow_tie).
            let newer = match tables.subscriptions.get(&key) {
                None => true,
                Some(stored) if write.allow_tie => versioned.event_created >= stored.event_created,
                Some(stored) => versioned.event_created > stored.event_created,
            };
            if !newer {
                return Ok(Committed::SubscriptionNotNewer);
            }
            match write.review_at {
                Some(at) => tables.reviews.insert(key.clone(), at),
                None => tables.reviews.remove(&key),
            };
            tables.subscriptions.insert(key, versioned.clone());
        }
        if let Some(provisioned) = commit.provisioned {
            tables
                .provisioned
                .insert(commit.customer.clone(), provisioned.clone());
        }
        tables
            .events
            .insert(commit.event_id.to_owned(), EventEntry::Done);
        if let Some(holder) = commit.lease_holder
            && tables
                .leases
                .get(commit.customer)
                .is_some_and(|(held_by, _)| held_by == holder)
        {
            tables.leases.remove(commit.customer);
        }
        Ok(Committed::Done)
    }

    async fn put_provisioned(
        &self,
        customer: &CustomerId,
        provisioned: &ProvisionedState,
    ) -> Result<()> {
        self.enter("PutItem")?;
        lock(&self.tables)
            .provisioned
            .insert(customer.clone(), provisioned.clone());
        Ok(())
    }
}
