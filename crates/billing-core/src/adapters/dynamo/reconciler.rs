//! The reconciler's cursor and the review index of subscriptions.

use async_trait::async_trait;

use super::items::{conditional_failed, invalid, n, number_attr, s, string_attr};
use super::sync_store::review_attributes;
use super::{DynamoStore, Item};
use crate::adapters::aws::classify;
use crate::domain::CustomerId;
use crate::error::{Result, Upstream};
use crate::ports::{DueReview, ReconcilerStore};
use crate::table::{self, attr};

#[async_trait]
impl ReconcilerStore for DynamoStore {
    async fn cursor(&self, name: &str) -> Result<Option<i64>> {
        let item = self
            .get(table::RECONCILER_PK.to_owned(), &table::cursor_sk(name))
            .await?;
        item.map(|item| number_attr(&item, attr::CURSOR))
            .transpose()
    }

    async fn advance_cursor(&self, name: &str, at: i64, now: i64) -> Result<()> {
        let outcome = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(table::PK, s(table::RECONCILER_PK))
            .key(table::SK, s(table::cursor_sk(name)))
            .update_expression("SET #cursor = :cursor, #updated = :now")
            .condition_expression("attribute_not_exists(#cursor) OR #cursor < :cursor")
            .expression_attribute_names("#cursor", attr::CURSOR)
            .expression_attribute_names("#updated", attr::UPDATED_AT)
            .expression_attribute_values(":cursor", n(at))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            // Another run got further: that cursor stands.
            Err(e) if conditional_failed(&e) => Ok(()),
            Err(e) => Err(classify(Upstream::DynamoDb, "UpdateItem", e)),
        }
    }

    async fn due_reviews(&self, now: i64, limit: usize) -> Result<Vec<DueReview>> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(table::GSI1)
            .key_condition_expression("#gpk = :gpk AND #gsk <= :upper")
            .expression_attribute_names("#gpk", table::GSI1_PK)
            .expression_attribute_names("#gsk", table::GSI1_SK)
            .expression_attribute_values(":gpk", s(table::GSI1_REVIEW))
            .expression_attribute_values(":upper", s(table::review_gsi1sk_upper(now)))
            .limit(limit)
            .send()
            .await
            .map_err(|e| classify(Upstream::DynamoDb, "Query", e))?
            .items
            .unwrap_or_default();
        items.iter().map(due_review).collect()
    }

    async fn set_review(
        &self,
        customer_id: &CustomerId,
        subscription_id: &str,
        review_at: Option<i64>,
    ) -> Result<()> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(table::PK, s(table::customer_pk(customer_id.as_str())))
            .key(table::SK, s(table::subscription_sk(subscription_id)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", table::PK)
            .expression_attribute_names("#gpk", table::GSI1_PK)
            .expression_attribute_names("#gsk", table::GSI1_SK)
            .expression_attribute_names("#at", attr::REVIEW_AT);
        let request = match review_at {
            Some(at) => {
                let [(_, gpk), (_, gsk), (_, at)] =
                    review_attributes(customer_id.as_str(), subscription_id, at);
                request
                    .update_expression("SET #gpk = :gpk, #gsk = :gsk, #at = :at")
                    .expression_attribute_values(":gpk", gpk)
                    .expression_attribute_values(":gsk", gsk)
                    .expression_attribute_values(":at", at)
            }
            None => request.update_expression("REMOVE #gpk, #gsk, #at"),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => Ok(()),
            Err(e) => Err(classify(Upstream::DynamoDb, "UpdateItem", e)),
        }
    }
}

fn due_review(item: &Item) -> Result<DueReview> {
    let pk = string_attr(item, table::PK)?;
    let sk = string_attr(item, table::SK)?;
    let customer = pk.trim_start_matches("CUSTOMER#");
    let customer_id = CustomerId::parse(customer).map_err(invalid)?;
    Ok(DueReview {
        customer_id,
        subscription_id: sk
            .trim_start_matches(table::SUBSCRIPTION_SK_PREFIX)
            .to_owned(),
        review_at: number_attr(item, attr::REVIEW_AT)?,
    })
}
