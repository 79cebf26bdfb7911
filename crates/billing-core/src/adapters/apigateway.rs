//! The `ApiKeys` port over API Gateway (REST API keys and usage plans).
//!
//! Keys are named `billing-user-<sub>`, so a retry finds the key instead of making another.
//! Two concurrent creations can still both succeed (names are not unique in API Gateway): each
//! creator then lists the name, keeps the oldest and deletes its own if it lost.

use async_trait::async_trait;
use aws_sdk_apigateway::Client;
use aws_sdk_apigateway::types::{ApiKey as SdkApiKey, Op, PatchOperation};
use secrecy::SecretString;

use crate::adapters::aws::classify;
use crate::domain::UserSub;
use crate::error::{Error, Result, Upstream};
use crate::ports::{ApiKey, ApiKeys};

#[derive(Debug, Clone)]
pub struct ApiGatewayKeys {
    client: Client,
}

pub fn key_name(owner: &UserSub) -> String {
    format!("billing-user-{owner}")
}

impl ApiGatewayKeys {
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(sdk))
    }

    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Every key with exactly this name, oldest first.
    async fn keys_named(&self, name: &str) -> Result<Vec<SdkApiKey>> {
        let output = self
            .client
            .get_api_keys()
            .name_query(name)
            .include_values(true)
            .limit(500)
            .send()
            .await
            .map_err(|e| classify(Upstream::ApiGateway, "GetApiKeys", e))?;
        let mut keys: Vec<SdkApiKey> = output
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|key| key.name() == Some(name))
            .collect();
        keys.sort_by(|a, b| {
            (a.created_date().map(|d| d.as_nanos()), a.id())
                .cmp(&(b.created_date().map(|d| d.as_nanos()), b.id()))
        });
        Ok(keys)
    }

    async fn usage_plans_of(&self, key_id: &str) -> Result<Vec<String>> {
        let output = self
            .client
            .get_usage_plans()
            .key_id(key_id)
            .limit(500)
            .send()
            .await
            .map_err(|e| classify(Upstream::ApiGateway, "GetUsagePlans", e))?;
        Ok(output
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|plan| plan.id)
            .collect())
    }

    async fn to_port(&self, key: SdkApiKey) -> Result<ApiKey> {
        let id = key.id.ok_or_else(|| Error::InvalidData {
            service: Upstream::ApiGateway,
            detail: "api key without id".into(),
        })?;
        let usage_plan_ids = self.usage_plans_of(&id).await?;
        Ok(ApiKey {
            id,
            value: key.value.map(SecretString::from),
            enabled: key.enabled,
            usage_plan_ids,
        })
    }
}

#[async_trait]
impl ApiKeys for ApiGatewayKeys {
    async fn find(&self, owner: &UserSub) -> Result<Option<ApiKey>> {
        match self.keys_named(&key_name(owner)).await?.into_iter().next() {
            Some(key) => Ok(Some(self.to_port(key).await?)),
            None => Ok(None),
        }
    }

    async fn create(&self, owner: &UserSub) -> Result<ApiKey> {
        let name = key_name(owner);
        let created = self
            .client
            .create_api_key()
            .name(&name)
            .description("API key of a cognito-stripe-billing customer")
            .enabled(true)
            .tags("cognito_sub", owner.as_str())
            .send()
            .await
            .map_err(|e| classify(Upstream::ApiGateway, "CreateApiKey", e))?;
        let survivor = self
            .keys_named(&name)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::InvalidData {
                service: Upstream::ApiGateway,
                detail: "created api key not listed".into(),
            })?;
        if survivor.id() != created.id()
            && let Some(mine) = created.id()
        {
            self.delete(mine).await?;
        }
        self.to_port(survivor).await
    }

    async fn attach_only(&self, key_id: &str, usage_plan_id: Option<&str>) -> Result<()> {
        let current = self.usage_plans_of(key_id).await?;
        for other in current
            .iter()
            .filter(|plan| Some(plan.as_str()) != usage_plan_id)
        {
            let outcome = self
                .client
                .delete_usage_plan_key()
                .usage_plan_id(other)
                .key_id(key_id)
                .send()
                .await;
            match outcome {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_not_found_exception()) => {}
                Err(e) => return Err(classify(Upstream::ApiGateway, "DeleteUsagePlanKey", e)),
            }
        }
        if let Some(target) = usage_plan_id
            && !current.iter().any(|plan| plan == target)
        {
            let outcome = self
                .client
                .create_usage_plan_key()
                .usage_plan_id(target)
                .key_id(key_id)
                .key_type("API_KEY")
                .send()
                .await;
            match outcome {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conflict_exception()) => {}
                Err(e) => return Err(classify(Upstream::ApiGateway, "CreateUsagePlanKey", e)),
            }
        }
        Ok(())
    }

    async fn set_enabled(&self, key_id: &str, enabled: bool) -> Result<()> {
        self.client
            .update_api_key()
            .api_key(key_id)
            .patch_operations(
                PatchOperation::builder()
                    .op(Op::Replace)
                    .path("/enabled")
                    .value(enabled.to_string())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify(Upstream::ApiGateway, "UpdateApiKey", e))?;
        Ok(())
    }

    async fn delete(&self, key_id: &str) -> Result<()> {
        match self.client.delete_api_key().api_key(key_id).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(classify(Upstream::ApiGateway, "DeleteApiKey", e)),
        }
    }
}
