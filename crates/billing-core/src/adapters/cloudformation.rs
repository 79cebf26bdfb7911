//! The `Stacks` port over CloudFormation.
//!
//! Stacks are created and deleted with the deployment's CloudFormation service role
//! (`STACK_ROLE_ARN`) when there is one: their resources are made with that role's rights, not
//! with the calling function's.

use async_trait::async_trait;
use aws_sdk_cloudformation::Client;

use crate::adapters::aws::classify;
use crate::config::{ConfigError, EnvReader};
use crate::error::{Result, Upstream};
use crate::ports::{StackStatus, Stacks};

pub const STACK_ROLE_ARN: &str = "STACK_ROLE_ARN";

/// The IAM role CloudFormation creates and deletes the stacks with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackServiceRole(String);

impl StackServiceRole {
    /// An IAM role ARN, `arn:<partition>:iam::<account>:role/<path and name>`.
    pub fn parse(arn: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let is_role_arn = matches!(
            parts.as_slice(),
            ["arn", partition, "iam", "", account, resource]
                if !partition.is_empty()
                    && account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty())
        );
        if is_role_arn {
            Ok(Self(arn.to_owned()))
        } else {
            Err(format!("{arn:?} is not an IAM role ARN"))
        }
    }

    /// `STACK_ROLE_ARN`; unset or empty: none (stacks use the caller's rights).
    pub fn from_env(env: &EnvReader<'_>) -> std::result::Result<Option<Self>, ConfigError> {
        env.optional(STACK_ROLE_ARN)
            .map(|arn| {
                Self::parse(arn.trim()).map_err(|reason| ConfigError::Invalid {
                    name: STACK_ROLE_ARN,
                    reason,
                })
            })
            .transpose()
    }

    pub fn arn(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct CloudFormationStacks {
    client: Client,
    service_role: Option<StackServiceRole>,
}

impl CloudFormationStacks {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, service_role: Option<StackServiceRole>) -> Self {
        Self {
            client: Client::from_conf(
                aws_sdk_cloudformation::config::Builder::from(sdk)
                    .interceptor(crate::xray::XrayInterceptor::global())
                    .build(),
            ),
            service_role,
        }
    }

    fn role_arn(&self) -> Option<String> {
        self.service_role.as_ref().map(|role| role.arn().to_owned())
    }
}

fn is_missing_stack<E: aws_sdk_cloudformation::error::ProvideErrorMetadata>(error: &E) -> bool {
    error.code() == Some("ValidationError")
        && error
            .message()
            .is_some_and(|message| message.contains("does not exist"))
}

#[async_trait]
impl Stacks for CloudFormationStacks {
    async fn status(&self, stack_name: &str) -> Result<StackStatus> {
        match self
            .client
            .describe_stacks()
            .stack_name(stack_name)
            .send()
            .await
        {
            Ok(output) => Ok(output
                .stacks()
                .first()
                .and_then(|stack| stack.stack_status())
                .map(|status| StackStatus::Exists(status.as_str().to_owned()))
                .unwrap_or(StackStatus::Gone)),
            Err(e) if e.as_service_error().is_some_and(is_missing_stack) => Ok(StackStatus::Gone),
            Err(e) => Err(classify(Upstream::CloudFormation, "DescribeStacks", e)),
        }
    }

    async fn create(
        &self,
        stack_name: &str,
        template_url: &str,
        parameters: &[(&str, &str)],
    ) -> Result<()> {
        let mut request = self
            .client
            .create_stack()
            .stack_name(stack_name)
            .template_url(template_url)
            .set_role_arn(self.role_arn())
            .tags(
                aws_sdk_cloudformation::types::Tag::builder()
                    .key("managed-by")
                    .value("cognito-stripe-billing")
                    .build(),
            );
        for (key, value) in parameters {
            request = request.parameters(
                aws_sdk_cloudformation::types::Parameter::builder()
                    .parameter_key(*key)
                    .parameter_value(*value)
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(classify(Upstream::CloudFormation, "CreateStack", e)),
        }
    }

    async fn delete(&self, stack_name: &str) -> Result<()> {
        match self
            .client
            .delete_stack()
            .stack_name(stack_name)
            .set_role_arn(self.role_arn())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(is_missing_stack) => Ok(()),
            Err(e) => Err(classify(Upstream::CloudFormation, "DeleteStack", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_role_should_be_an_iam_role_arn() {
        for arn in [
            "arn:aws:iam::123456789012:role/billing-StackServiceRole-ABC",
            "arn:aws-us-gov:iam::123456789012:role/path/to/role",
        ] {
            assert_eq!(
                StackServiceRole::parse(arn).map(|r| r.arn().to_owned()),
                Ok(arn.to_owned())
            );
        }
        for bad in [
            "",
            "billing-role",
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::12345:role/x",
            "arn:aws:s3:::bucket/role/x",
            "arn:aws:iam:us-east-1:123456789012:role/x",
        ] {
            assert!(StackServiceRole::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn no_role_in_the_environment_should_mean_none_and_a_bad_one_an_error() {
        let unset = EnvReader::from_fn(|_| None);
        assert_eq!(StackServiceRole::from_env(&unset), Ok(None));
        let empty = EnvReader::from_fn(|_| Some(String::new()));
        assert_eq!(StackServiceRole::from_env(&empty), Ok(None));
        let bad = EnvReader::from_fn(|_| Some("not-an-arn".into()));
        assert!(matches!(
            StackServiceRole::from_env(&bad),
            Err(ConfigError::Invalid {
                name: STACK_ROLE_ARN,
                ..
            })
        ));
    }
}
