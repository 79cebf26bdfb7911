//! The `ApiKeys` port over API Gateway (REST API keys and usage plans).
//!
//! Keys are named `billing-user-<sub>` and tagged `cognito-stripe-billing:stack=<deployment>`;
//! only keys with both are ours, and the IAM policies grant a key's own rights (read its value,
//! enable, rename, delete) on tagged keys only. A retry finds the key instead of making
//! another. Two concurrent creations can still both succeed (names are not unique in API
//! Gateway): each creator then lists the name, keeps the oldest and deletes its own if it lost.
//! A rotation renames the old key `billing-retired-<sub>-<retire_at>` before making the new
//! one, so the owner's current key is always the one `billing-user-<sub>`.
//!
//! Listing never asks for values: that would read every key of the account. The one caller
//! that shows a value reads it from the owner's key alone (`find_with_value`).

use async_trait::async_trait;
use aws_sdk_apigateway::Client;
use aws_sdk_apigateway::config::interceptors::InterceptorContext;
use aws_sdk_apigateway::config::retry::{ClassifyRetry, RetryAction};
use aws_sdk_apigateway::operation::create_api_key::CreateApiKeyError;
use aws_sdk_apigateway::types::{ApiKey as SdkApiKey, Op, PatchOperation};
use secrecy::SecretString;
use tracing::{error, warn};

use crate::adapters::aws::classify;
use crate::config::{ConfigError, EnvReader};
use crate::domain::UserSub;
use crate::error::{Error, Result, Upstream};
use crate::ports::{ApiKey, ApiKeys, RetiredKey};
use crate::usage::UtcDay;

/// The tag every key we create carries; its value names the deployment.
pub const DEPLOYMENT_TAG_KEY: &str = "cognito-stripe-billing:stack";
/// The deployment's name (the stack name when deployed), the value of `DEPLOYMENT_TAG_KEY`.
pub const DEPLOYMENT_NAME: &str = "DEPLOYMENT_NAME";

/// The deployment whose keys these are: the value of their `cognito-stripe-billing:stack` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment(String);

impl Deployment {
    /// A tag value API Gateway takes: 1 to 256 of letters, digits and `+-=._:/@`.
    pub fn parse(name: &str) -> std::result::Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "+-=._:/@".contains(c);
        if name.is_empty() || name.len() > 256 || !name.chars().all(allowed) {
            return Err(format!(
                "{name:?}: 1 to 256 letters, digits or +-=._:/@ (a stack name)"
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// `DEPLOYMENT_NAME`, required: a key created without the tag would not be ours to manage.
    pub fn from_env(env: &EnvReader<'_>) -> std::result::Result<Self, ConfigError> {
        Self::parse(env.required(DEPLOYMENT_NAME)?.trim()).map_err(|reason| ConfigError::Invalid {
            name: DEPLOYMENT_NAME,
            reason,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct ApiGatewayKeys {
    client: Client,
    deployment: Deployment,
}

pub fn key_name(owner: &UserSub) -> String {
    format!("{CURRENT_KEY_PREFIX}{owner}")
}

const CURRENT_KEY_PREFIX: &str = "billing-user-";
const RETIRED_KEY_PREFIX: &str = "billing-retired-";

/// A rotated-out key's name: `billing-retired-<sub>-<retire_at>`.
fn retired_key_name(owner: &UserSub, retire_at: i64) -> String {
    format!("{RETIRED_KEY_PREFIX}{owner}-{retire_at}")
}

/// The owner and retirement time of a key named `billing-retired-<sub>-<retire_at>`.
fn parse_retired_name(name: &str) -> Option<(UserSub, i64)> {
    let (sub, retire_at) = name.strip_prefix(RETIRED_KEY_PREFIX)?.rsplit_once('-')?;
    Some((UserSub::parse(sub).ok()?, retire_at.parse().ok()?))
}

fn tagged_for(
    tags: Option<&std::collections::HashMap<String, String>>,
    deployment: &Deployment,
) -> bool {
    tags.and_then(|tags| tags.get(DEPLOYMENT_TAG_KEY))
        .is_some_and(|value| value == deployment.as_str())
}

/// The owner of a key named `billing-user-<sub>` (or retired by a rotation,
/// `billing-retired-<sub>-<retire_at>`: its calls are still the owner's) and tagged for this
/// deployment; `None` for any other key.
pub(super) fn owner_of_key(
    name: Option<&str>,
    tags: Option<&std::collections::HashMap<String, String>>,
    deployment: &Deployment,
) -> Option<UserSub> {
    if !tagged_for(tags, deployment) {
        return None;
    }
    let name = name?;
    match name.strip_prefix(CURRENT_KEY_PREFIX) {
        Some(sub) => UserSub::parse(sub).ok(),
        None => parse_retired_name(name).map(|(owner, _)| owner),
    }
}

/// Named for the owner and tagged for this deployment.
fn is_ours(key: &SdkApiKey, name: &str, deployment: &Deployment) -> bool {
    key.name() == Some(name) && tagged_for(key.tags(), deployment)
}

fn oldest_first(keys: &mut [SdkApiKey]) {
    keys.sort_by(|a, b| {
        (a.created_date().map(|d| d.as_nanos()), a.id())
            .cmp(&(b.created_date().map(|d| d.as_nanos()), b.id()))
    });
}

impl ApiGatewayKeys {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, deployment: Deployment) -> Self {
        Self::new(
            Client::from_conf(
                aws_sdk_apigateway::config::Builder::from(sdk)
                    .interceptor(crate::xray::XrayInterceptor::global())
                    .build(),
            ),
            deployment,
        )
    }

    pub fn new(client: Client, deployment: Deployment) -> Self {
        Self { client, deployment }
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    pub(super) fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// Our keys with exactly this name, oldest first, without their values.
    async fn keys_named(&self, name: &str) -> Result<Vec<SdkApiKey>> {
        let listed = self.keys_starting(name).await?;
        let mut keys: Vec<SdkApiKey> = listed
            .into_iter()
            .filter(|key| is_ours(key, name, &self.deployment))
            .collect();
        oldest_first(&mut keys);
        Ok(keys)
    }

    /// Every key whose name starts with `prefix` (API Gateway's `nameQuery`), without values.
    async fn keys_starting(&self, prefix: &str) -> Result<Vec<SdkApiKey>> {
        self.client
            .get_api_keys()
            .name_query(prefix)
            .include_values(false)
            .limit(500)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| classify(Upstream::ApiGateway, "GetApiKeys", e))
    }

    async fn oldest_named(&self, owner: &UserSub) -> Result<Option<SdkApiKey>> {
        Ok(self.keys_named(&key_name(owner)).await?.into_iter().next())
    }

    /// The key's value, read from that key alone; `None` when it is gone.
    async fn value_of(&self, key_id: &str) -> Result<Option<SecretString>> {
        match self
            .client
            .get_api_key()
            .api_key(key_id)
            .include_value(true)
            .send()
            .await
        {
            Ok(output) => Ok(output.value.map(SecretString::from)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(Upstream::ApiGateway, "GetApiKey", e)),
        }
    }

    /// UpdateApiKey with one `replace` of `path`.
    async fn replace_on_key(&self, key_id: &str, path: &str, value: String) -> Result<()> {
        self.client
            .update_api_key()
            .api_key(key_id)
            .patch_operations(
                PatchOperation::builder()
                    .op(Op::Replace)
                    .path(path)
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify(Upstream::ApiGateway, "UpdateApiKey", e))?;
        Ok(())
    }

    async fn usage_plans_of(&self, key_id: &str) -> Result<Vec<String>> {
        let plans: Vec<_> = self
            .client
            .get_usage_plans()
            .key_id(key_id)
            .limit(500)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| classify(Upstream::ApiGateway, "GetUsagePlans", e))?;
        Ok(plans.into_iter().filter_map(|plan| plan.id).collect())
    }

    async fn to_port(&self, listed: Listed, value: Option<SecretString>) -> Result<ApiKey> {
        let usage_plan_ids = self.usage_plans_of(&listed.id).await?;
        Ok(ApiKey {
            id: listed.id,
            value,
            enabled: listed.enabled,
            usage_plan_ids,
            created: listed.created,
        })
    }
}

/// What a listed key tells of itself.
struct Listed {
    id: String,
    enabled: bool,
    created: Option<i64>,
}

fn id_of(key: SdkApiKey) -> Result<Listed> {
    let enabled = key.enabled;
    let created = key.created_date.map(|date| date.secs());
    key.id
        .map(|id| Listed {
            id,
            enabled,
            created,
        })
        .ok_or_else(|| Error::InvalidData {
            service: Upstream::ApiGateway,
            detail: "api key without id".into(),
        })
}

/// API Gateway creates at most 5 keys a second per account, a fixed quota: one process (an
/// import creating keys 8 customers at a time) never asks faster; several processes at once
/// are left to the SDK's retry of `TooManyRequestsException`.
const KEY_CREATION_SPACING: std::time::Duration = std::time::Duration::from_millis(200);

/// A full key quota is not a throttle, although API Gateway answers it with a 429 the SDK
/// retries as one: every attempt fails the same way until an operator acts, so no attempt is
/// spent on it (nor the account's shared rate of API Gateway management calls).
#[derive(Debug)]
struct KeyQuotaIsFinal;

impl ClassifyRetry for KeyQuotaIsFinal {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let quota_reached = ctx
            .output_or_error()
            .and_then(Result::err)
            .and_then(|error| error.as_operation_error())
            .and_then(|error| error.downcast_ref::<CreateApiKeyError>())
            .is_some_and(CreateApiKeyError::is_limit_exceeded_exception);
        if quota_reached {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "KeyQuotaIsFinal"
    }
}

async fn pace_key_creation() {
    static NEXT: std::sync::OnceLock<tokio::sync::Mutex<Option<tokio::time::Instant>>> =
        std::sync::OnceLock::new();
    let mut next = NEXT
        .get_or_init(|| tokio::sync::Mutex::new(None))
        .lock()
        .await;
    if let Some(at) = *next {
        tokio::time::sleep_until(at).await;
    }
    *next = Some(tokio::time::Instant::now() + KEY_CREATION_SPACING);
}

#[async_trait]
impl ApiKeys for ApiGatewayKeys {
    async fn find(&self, owner: &UserSub) -> Result<Option<ApiKey>> {
        let Some(key) = self.oldest_named(owner).await? else {
            return Ok(None);
        };
        Ok(Some(self.to_port(id_of(key)?, None).await?))
    }

    async fn find_with_value(&self, owner: &UserSub) -> Result<Option<ApiKey>> {
        let Some(key) = self.oldest_named(owner).await? else {
            return Ok(None);
        };
        let listed = id_of(key)?;
        let Some(value) = self.value_of(&listed.id).await? else {
            return Ok(None);
        };
        Ok(Some(self.to_port(listed, Some(value)).await?))
    }

    async fn create(&self, owner: &UserSub) -> Result<ApiKey> {
        let name = key_name(owner);
        pace_key_creation().await;
        let created = self
            .client
            .create_api_key()
            .name(&name)
            .description("API key of a cognito-stripe-billing customer")
            .enabled(true)
            .tags(DEPLOYMENT_TAG_KEY, self.deployment.as_str())
            .tags("cognito_sub", owner.as_str())
            .customize()
            .config_override(aws_sdk_apigateway::Config::builder().retry_classifier(KeyQuotaIsFinal))
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|se| se.is_limit_exceeded_exception())
                {
                    // Every later creation fails the same way until an operator acts.
                    error!(sub = %owner, "API Gateway refused a new API key: the account's API key quota is reached; ask for a quota increase (Service Quotas, API Gateway, API keys)");
                    crate::telemetry::count("ApiKeyQuotaReached", None);
                }
                classify(Upstream::ApiGateway, "CreateApiKey", e)
            })?;
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
            // Lost a concurrent creation (a provisioning lease that expired under load): ours
            // goes, so the user keeps one key and it does not count against the key quota.
            warn!(sub = %owner, duplicate_key_id = mine, "concurrent api key creation; duplicate deleted");
            self.delete(mine).await?;
        }
        self.to_port(id_of(survivor)?, None).await
    }

    async fn attach_only(&self, key: &ApiKey, usage_plan_id: Option<&str>) -> Result<()> {
        let (key_id, current) = (&key.id, &key.usage_plan_ids);
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
        self.replace_on_key(key_id, "/enabled", enabled.to_string())
            .await
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

    async fn carry_quota(
        &self,
        usage_plan_id: &str,
        from_key: &str,
        to_key: &str,
        today: UtcDay,
    ) -> Result<()> {
        let plan = self
            .client
            .get_usage_plan()
            .usage_plan_id(usage_plan_id)
            .send()
            .await
            .map_err(|e| classify(Upstream::ApiGateway, "GetUsagePlan", e))?;
        if plan.quota().is_none_or(|quota| quota.limit == 0) {
            return Ok(());
        }
        let usage = self
            .client
            .get_usage()
            .usage_plan_id(usage_plan_id)
            .key_id(from_key)
            .start_date(today.to_string())
            .end_date(today.to_string())
            .send()
            .await
            .map_err(|e| classify(Upstream::ApiGateway, "GetUsage", e))?;
        // [used, remaining] for today: what the old key has left of this period's quota.
        let Some(remaining) = usage
            .items()
            .and_then(|keys| keys.get(from_key))
            .and_then(|days| days.last())
            .and_then(|pair| pair.get(1).copied())
        else {
            return Ok(());
        };
        self.client
            .update_usage()
            .usage_plan_id(usage_plan_id)
            .key_id(to_key)
            .patch_operations(
                PatchOperation::builder()
                    .op(Op::Replace)
                    .path("/remaining")
                    .value(remaining.max(0).to_string())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| classify(Upstream::ApiGateway, "UpdateUsage", e))?;
        Ok(())
    }

    async fn retire(&self, key_id: &str, owner: &UserSub, retire_at: i64) -> Result<()> {
        self.replace_on_key(key_id, "/name", retired_key_name(owner, retire_at))
            .await
    }

    async fn retired(&self, owner: Option<&UserSub>) -> Result<Vec<RetiredKey>> {
        let prefix = match owner {
            Some(owner) => format!("{RETIRED_KEY_PREFIX}{owner}-"),
            None => RETIRED_KEY_PREFIX.to_owned(),
        };
        let mut retired = Vec::new();
        for key in self.keys_starting(&prefix).await? {
            if !tagged_for(key.tags(), &self.deployment) {
                continue;
            }
            let Some((key_owner, retire_at)) = key.name().and_then(parse_retired_name) else {
                continue;
            };
            // nameQuery matches a prefix: a longer sub that starts with this one is not ours.
            if owner.is_some_and(|owner| owner != &key_owner) {
                continue;
            }
            let enabled = key.enabled;
            retired.push(RetiredKey {
                id: id_of(key)?.id,
                owner: key_owner,
                retire_at,
                enabled,
            });
        }
        Ok(retired)
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_types::DateTime;

    use super::*;

    fn deployment() -> Deployment {
        Deployment::parse("cognito-stripe-billing-dev").unwrap()
    }

    fn key(id: &str, name: &str, tag: Option<&str>, created: i64) -> SdkApiKey {
        let builder = SdkApiKey::builder()
            .id(id)
            .name(name)
            .created_date(DateTime::from_secs(created))
            .tags("cognito_sub", "abc");
        match tag {
            Some(value) => builder.tags(DEPLOYMENT_TAG_KEY, value).build(),
            None => builder.build(),
        }
    }

    #[test]
    fn only_keys_named_for_the_owner_and_tagged_for_this_deployment_should_be_ours() {
        let name = "billing-user-abc";
        assert!(is_ours(
            &key("k1", name, Some("cognito-stripe-billing-dev"), 1),
            name,
            &deployment()
        ));
        assert!(!is_ours(&key("k2", name, None, 1), name, &deployment()));
        assert!(!is_ours(
            &key("k3", name, Some("cognito-stripe-billing-prod"), 1),
            name,
            &deployment()
        ));
        assert!(!is_ours(
            &key(
                "k4",
                "billing-user-abcd",
                Some("cognito-stripe-billing-dev"),
                1
            ),
            name,
            &deployment()
        ));
    }

    #[test]
    fn a_retired_keys_calls_should_still_be_its_owners() {
        let sub = UserSub::parse("8f1c6a2e-71b1-4a0e-9d43-5c1f4d3b2a10").unwrap();
        let tags = std::collections::HashMap::from([(
            DEPLOYMENT_TAG_KEY.to_owned(),
            "cognito-stripe-billing-dev".to_owned(),
        )]);
        let retired = retired_key_name(&sub, 1_800_000_000);
        assert_eq!(
            retired,
            "billing-retired-8f1c6a2e-71b1-4a0e-9d43-5c1f4d3b2a10-1800000000"
        );
        assert_eq!(
            parse_retired_name(&retired),
            Some((sub.clone(), 1_800_000_000))
        );
        for name in [retired.as_str(), &key_name(&sub)] {
            assert_eq!(
                owner_of_key(Some(name), Some(&tags), &deployment()),
                Some(sub.clone())
            );
            assert_eq!(owner_of_key(Some(name), None, &deployment()), None);
        }
        for not_ours in [
            "billing-retired-8f1c6a2e-71b1-4a0e-9d43-5c1f4d3b2a10",
            "billing-retired-8f1c6a2e-71b1-4a0e-9d43-5c1f4d3b2a10-soon",
            "billing-retired--1800000000",
            "someone-else",
        ] {
            assert_eq!(
                owner_of_key(Some(not_ours), Some(&tags), &deployment()),
                None,
                "{not_ours}"
            );
        }
    }

    #[test]
    fn the_oldest_key_should_come_first_then_the_lowest_id() {
        let tag = Some("cognito-stripe-billing-dev");
        let mut keys = vec![
            key("b", "n", tag, 2),
            key("c", "n", tag, 1),
            key("a", "n", tag, 2),
        ];
        oldest_first(&mut keys);
        let ids: Vec<_> = keys.iter().filter_map(|k| k.id()).collect();
        assert_eq!(ids, ["c", "a", "b"]);
    }

    #[test]
    fn a_deployment_name_should_be_a_tag_value() {
        assert!(Deployment::parse("cognito-stripe-billing-dev").is_ok());
        assert!(Deployment::parse("billing-local").is_ok());
        for bad in ["", "a b", "a\"b", "a,b", &"x".repeat(257)] {
            assert!(Deployment::parse(bad).is_err(), "{bad:?}");
        }
        let env = EnvReader::from_fn(|_| None);
        assert_eq!(
            Deployment::from_env(&env),
            Err(ConfigError::Missing(DEPLOYMENT_NAME))
        );
    }

    /// A local API Gateway that answers `throttled` requests with 429 TooManyRequestsException
    /// before answering 200; it counts the requests it got.
    async fn throttling_api_gateway(
        throttled: usize,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        crate::adapters::test_server::serve(move |seen, _, _| {
            if seen < throttled {
                crate::adapters::test_server::Answer {
                    status: "429 Too Many Requests",
                    headers: "x-amzn-ErrorType: TooManyRequestsException\r\n".into(),
                    body: r#"{"message":"Too Many Requests"}"#.into(),
                }
            } else {
                crate::adapters::test_server::Answer::json(
                    "200 OK",
                    r#"{"id":"k1","enabled":true}"#,
                )
            }
        })
        .await
    }

    fn keys_at(url: &str) -> ApiGatewayKeys {
        let limits = crate::adapters::aws::AwsLimits::HTTP;
        let config = aws_sdk_apigateway::Config::builder()
            .behavior_version(aws_sdk_apigateway::config::BehaviorVersion::latest())
            .region(aws_sdk_apigateway::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_apigateway::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url(url)
            .http_client(crate::adapters::aws::https_client())
            .retry_config(limits.retry_config())
            .timeout_config(limits.timeout_config())
            .build();
        ApiGatewayKeys::new(Client::from_conf(config), deployment())
    }

    /// API Gateway throttles key operations at a few per second: the SDK's retry (our
    /// configuration of it) absorbs a burst, and a throttle that outlasts its attempts is a
    /// retryable failure for Stripe's or the caller's retry.
    #[tokio::test]
    async fn when_api_gateway_throttles_the_sdk_should_retry_within_the_configured_attempts() {
        let (url, requests) = throttling_api_gateway(2).await;
        keys_at(&url).set_enabled("k1", true).await.unwrap();
        assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 3);

        let (url, requests) = throttling_api_gateway(usize::MAX).await;
        let error = keys_at(&url).set_enabled("k1", true).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert_eq!(
            requests.load(std::sync::atomic::Ordering::SeqCst),
            crate::adapters::aws::AwsLimits::HTTP.max_attempts as usize
        );
    }

    /// At the account's key quota API Gateway refuses every new key (with a 429): said at
    /// error, counted (`ApiKeyQuotaReached`, alarmed on), asked once (the SDK would retry a
    /// 429 as a throttle), and a failure the event's retries come back to.
    #[tokio::test]
    async fn when_the_key_quota_is_reached_should_count_it_and_fail_without_sdk_retries() {
        let (url, requests) =
            crate::adapters::test_server::serve(|_, _, _| crate::adapters::test_server::Answer {
                status: "429 Too Many Requests",
                headers: "x-amzn-ErrorType: LimitExceededException\r\n".into(),
                body: r#"{"message":"API Key limit exceeded"}"#.into(),
            })
            .await;
        crate::telemetry::capture::start();
        let owner = UserSub::parse("8f1c6a2e-71b1-4a0e-9d43-5c1f4d3b2a10").unwrap();
        let refused = keys_at(&url).create(&owner).await.unwrap_err();
        assert!(refused.is_retryable(), "{refused}");
        assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
        let counted = crate::telemetry::capture::take()
            .iter()
            .filter(|line| line["ApiKeyQuotaReached"] == 1.0)
            .count();
        assert_eq!(counted, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn key_creations_in_one_process_should_stay_under_five_a_second() {
        let started = tokio::time::Instant::now();
        for _ in 0..11 {
            pace_key_creation().await;
        }
        // The first goes at once, each next one 200 ms later.
        assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    }

    /// Two creations raced past the lease: the one that is not the oldest deletes its key.
    #[tokio::test]
    async fn a_key_that_lost_a_concurrent_creation_should_be_deleted() {
        let deleted = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen_deletes = deleted.clone();
        let (url, _) = crate::adapters::test_server::serve(move |_, method, path| {
            use crate::adapters::test_server::Answer;
            let path = path.split('?').next().unwrap_or_default();
            match (method, path) {
                ("POST", "/apikeys") => Answer::json("201 Created", r#"{"id":"mine","enabled":true}"#),
                ("GET", "/apikeys") => Answer::json(
                    "200 OK",
                    r#"{"item":[
                        {"id":"theirs","name":"billing-user-8f1c6a2e-71b1-4a0e-9d43-5c1f4d3b2a10","enabled":true,"createdDate":1700000000,"tags":{"cognito-stripe-billing:stack":"cognito-stripe-billing-dev"}},
                        {"id":"mine","name":"billing-user-8f1c6a2e-71b1-4a0e-9d43-5c1f4d3b2a10","enabled":true,"createdDate":1700000001,"tags":{"cognito-stripe-billing:stack":"cognito-stripe-billing-dev"}}]}"#,
                ),
                ("DELETE", p) => {
                    seen_deletes.lock().unwrap().push(p.to_owned());
                    Answer::json("202 Accepted", "")
                }
                ("GET", "/usageplans") => Answer::json("200 OK", r#"{"item":[]}"#),
                _ => Answer::json("404 Not Found", r#"{"message":"no"}"#),
            }
        })
        .await;
        let owner = UserSub::parse("8f1c6a2e-71b1-4a0e-9d43-5c1f4d3b2a10").unwrap();
        let survivor = keys_at(&url).create(&owner).await.unwrap();
        assert_eq!(survivor.id, "theirs");
        assert_eq!(*deleted.lock().unwrap(), ["/apikeys/mine"]);
    }
}
