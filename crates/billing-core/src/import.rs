//! Import: backfill from a Stripe account that existed before this deployment (or a full
//! resync after events were lost for good).
//!
//! 1. The catalogue: every product, price (archived too, with tiers) and tax rate, all pages,
//!    stored as the webhook stores them.
//! 2. Every customer, all pages: its profile, its link (metadata `cognito_sub`, then one
//!    confirmed user with that verified e-mail; never a new user), every subscription whatever
//!    its status, then its plan, key and stacks through the webhook's provisioning path
//!    (`SyncService::sync_customer`). A customer that fails is reported and the rest go on.
//! 3. The reconciler's cursor moves to the import's start (forward only): events from then on
//!    are the reconciler's.
//!
//! Only what differs is written, so a second run changes nothing and says so; `Writes::DryRun`
//! reads and compares only.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use serde::Serialize;
use tracing::{error, info};

use crate::domain::CustomerId;
use crate::error::{Chain, Error, Result, Upstream};
use crate::ports::{
    AccountListing, EVENTS_CURSOR, ListedObject, ReconcilerStore, StripeList, SyncPorts,
};
use crate::webhook::event::{EventObject, read_object};
use crate::webhook::sync::{CustomerSync, LinkResult, SyncService, Writes, catalogue_record};

/// Customers synced at the same time.
const CUSTOMERS_AT_ONCE: usize = 8;

/// Where an import is, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStep {
    /// A phase starts with this many items (`None` while still listing).
    Phase {
        name: &'static str,
        total: Option<usize>,
    },
    /// One item of the phase is done.
    Item,
}

/// The catalogue objects of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CatalogueCount {
    pub listed: usize,
    pub stored: usize,
    /// Objects we could not read (their field and reason are logged).
    pub unreadable: usize,
}

/// A customer nobody could be linked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmatched {
    pub customer_id: String,
    pub reason: &'static str,
}

/// A customer whose sync failed (the run goes on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedCustomer {
    pub customer_id: String,
    pub error: String,
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub dry_run: bool,
    pub catalogue: BTreeMap<&'static str, CatalogueCount>,
    pub customers_listed: usize,
    pub customers_unreadable: usize,
    pub linked_before: usize,
    /// Linked by this run (in a dry run: would be).
    pub linked_now: usize,
    pub unmatched: Vec<Unmatched>,
    pub profiles_stored: usize,
    pub subscriptions_listed: usize,
    pub subscriptions_stored: usize,
    /// Linked customers whose plan, key or stacks differed from their subscriptions.
    pub customers_with_drift: usize,
    pub customers_repaired: usize,
    pub failed: Vec<FailedCustomer>,
    /// Where the reconciler's cursor was moved (not in a dry run, nor after a failure).
    pub cursor_moved_to: Option<i64>,
}

impl ImportReport {
    /// Whether anything was (or would be) written.
    pub fn changed(&self) -> bool {
        self.catalogue.values().any(|count| count.stored > 0)
            || self.linked_now > 0
            || self.profiles_stored > 0
            || self.subscriptions_stored > 0
            || self.customers_with_drift > 0
    }

    fn add(&mut self, sync: &CustomerSync) {
        match &sync.link {
            LinkResult::Existing { .. } => self.linked_before += 1,
            LinkResult::LinkedNow { .. } | LinkResult::WouldLink { .. } => self.linked_now += 1,
            LinkResult::Unmatched { reason } => self.unmatched.push(Unmatched {
                customer_id: sync.customer_id.clone(),
                reason,
            }),
        }
        self.profiles_stored += usize::from(sync.profile_stored);
        self.subscriptions_listed += sync.subscriptions_listed;
        self.subscriptions_stored += sync.subscriptions_stored;
        self.customers_with_drift += usize::from(!sync.drift.is_empty());
        self.customers_repaired += usize::from(sync.repaired);
    }
}

#[derive(Debug)]
pub struct Importer<'a, P: SyncPorts> {
    pub sync: SyncService<'a, P>,
}

impl<P: SyncPorts> Importer<'_, P> {
    /// One import at `now`; `progress` hears of each phase and item.
    pub async fn run(
        &self,
        now: i64,
        writes: Writes,
        progress: &(dyn Fn(ImportStep) + Sync),
    ) -> Result<ImportReport> {
        let mut report = ImportReport {
            dry_run: writes == Writes::DryRun,
            ..ImportReport::default()
        };
        let version = format!("import:{now}");
        for list in [
            StripeList::Products,
            StripeList::Prices,
            StripeList::TaxRates,
        ] {
            progress(ImportStep::Phase {
                name: list.object(),
                total: None,
            });
            let objects = self.list_all(list).await?;
            progress(ImportStep::Phase {
                name: list.object(),
                total: Some(objects.len()),
            });
            let mut count = CatalogueCount {
                listed: objects.len(),
                ..CatalogueCount::default()
            };
            for object in objects {
                match read_listed(&object).as_ref().map(catalogue_record) {
                    Some(Some(record)) => {
                        if self
                            .sync
                            .store_if_changed(record, now, &version, writes)
                            .await?
                        {
                            count.stored += 1;
                        }
                    }
                    Some(None) => {}
                    None => count.unreadable += 1,
                }
                progress(ImportStep::Item);
            }
            report.catalogue.insert(list.object(), count);
        }
        progress(ImportStep::Phase {
            name: "customer",
            total: None,
        });
        let customers = self.list_all(StripeList::Customers).await?;
        report.customers_listed = customers.len();
        progress(ImportStep::Phase {
            name: "customer",
            total: Some(customers.len()),
        });
        // Customers are independent (each under its own lease): a few at a time.
        let mut synced = futures_util::stream::iter(customers)
            .map(|object| async move {
                let outcome = self.import_customer(&object, now, writes).await;
                progress(ImportStep::Item);
                (object, outcome)
            })
            .buffer_unordered(CUSTOMERS_AT_ONCE);
        while let Some((object, outcome)) = synced.next().await {
            match outcome {
                Ok(Some(sync)) => report.add(&sync),
                Ok(None) => report.customers_unreadable += 1,
                Err(failure) => {
                    error!(customer_id = %object.id, error = %Chain(&failure), "import could not sync a customer; the others go on");
                    report.failed.push(FailedCustomer {
                        customer_id: object.id.clone(),
                        error: Chain(&failure).to_string(),
                    });
                }
            }
        }
        report
            .failed
            .sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        report
            .unmatched
            .sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        if writes == Writes::Apply && report.failed.is_empty() {
            self.sync
                .store
                .advance_cursor(EVENTS_CURSOR, now, now)
                .await?;
            report.cursor_moved_to = Some(now);
        }
        info!(
            customers = report.customers_listed,
            linked_now = report.linked_now,
            unmatched = report.unmatched.len(),
            subscriptions_stored = report.subscriptions_stored,
            failed = report.failed.len(),
            changed = report.changed(),
            "import done"
        );
        Ok(report)
    }

    /// One listed customer; `None` when it cannot be read.
    async fn import_customer(
        &self,
        object: &ListedObject,
        now: i64,
        writes: Writes,
    ) -> Result<Option<CustomerSync>> {
        let Some(EventObject::Customer(customer)) = read_listed(object) else {
            return Ok(None);
        };
        let customer_id =
            CustomerId::parse(customer.id.as_str()).map_err(|e| Error::InvalidData {
                service: Upstream::Stripe,
                detail: e.to_string(),
            })?;
        self.sync
            .sync_customer(&customer_id, Some(&customer), now, writes)
            .await
            .map(Some)
    }

    /// Every object of a list, all pages.
    async fn list_all(&self, list: StripeList) -> Result<Vec<ListedObject>> {
        let mut objects: Vec<ListedObject> = Vec::new();
        loop {
            let after = objects.last().map(|object| object.id.clone());
            let page = self
                .sync
                .billing
                .objects_page(list, after.as_deref())
                .await?;
            let has_more = page.has_more && !page.objects.is_empty();
            objects.extend(page.objects);
            if !has_more {
                return Ok(objects);
            }
        }
    }
}

/// A listed object read like an event's; `None` (logged) when it cannot be read.
fn read_listed(object: &ListedObject) -> Option<EventObject> {
    match read_object(&object.body) {
        Ok(read) => Some(read),
        Err(reason) => {
            error!(object_id = %object.id, %reason, "listed object unreadable; skipped");
            None
        }
    }
}
