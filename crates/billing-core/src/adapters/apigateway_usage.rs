//! The `UsageCounts` port over API Gateway: `GetUsage` per usage plan (daily buckets, every
//! page) and the owner of a key from its name and deployment tag.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::apigateway::{ApiGatewayKeys, owner_of_key};
use crate::adapters::aws::classify;
use crate::domain::UserSub;
use crate::error::{Error, Result, Upstream};
use crate::ports::UsageCounts;
use crate::usage::UtcDay;

#[async_trait]
impl UsageCounts for ApiGatewayKeys {
    async fn usage(
        &self,
        usage_plan_id: &str,
        key_id: Option<&str>,
        from: UtcDay,
        to: UtcDay,
    ) -> Result<BTreeMap<String, BTreeMap<UtcDay, u64>>> {
        let mut pages = self
            .client()
            .get_usage()
            .usage_plan_id(usage_plan_id)
            .set_key_id(key_id.map(str::to_owned))
            .start_date(from.to_string())
            .end_date(to.to_string())
            .into_paginator()
            .send();
        let mut usage: BTreeMap<String, BTreeMap<UtcDay, u64>> = BTreeMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(Upstream::ApiGateway, "GetUsage", e))?;
            let start = page.start_date().and_then(UtcDay::parse).unwrap_or(from);
            for (key_id, days) in page.items().into_iter().flatten() {
                let per_day = usage.entry(key_id.clone()).or_default();
                for (offset, pair) in days.iter().enumerate() {
                    // [used, remaining]; a day with no use may come as [0, remaining].
                    let used = pair.first().copied().unwrap_or(0);
                    let used = u64::try_from(used).map_err(|_| Error::InvalidData {
                        service: Upstream::ApiGateway,
                        detail: format!("GetUsage: negative use {used} for a key"),
                    })?;
                    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
                    *per_day.entry(start.plus(offset)).or_default() += used;
                }
            }
        }
        Ok(usage)
    }

    async fn key_owner(&self, key_id: &str) -> Result<Option<UserSub>> {
        match self.client().get_api_key().api_key(key_id).send().await {
            Ok(key) => Ok(owner_of_key(key.name(), key.tags(), self.deployment())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(Upstream::ApiGateway, "GetApiKey", e)),
        }
    }
}
