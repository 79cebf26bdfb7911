//! The `Stacks` port over CloudFormation.

use async_trait::async_trait;
use aws_sdk_cloudformation::Client;

use crate::adapters::aws::classify;
use crate::error::{Result, Upstream};
use crate::ports::{StackStatus, Stacks};

#[derive(Debug, Clone)]
pub struct CloudFormationStacks {
    client: Client,
}

impl CloudFormationStacks {
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(sdk),
        }
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
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(is_missing_stack) => Ok(()),
            Err(e) => Err(classify(Upstream::CloudFormation, "DeleteStack", e)),
        }
    }
}
