//! The `Directory` port over the Cognito user pools admin API.

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::AttributeType;

use crate::adapters::aws::classify;
use crate::domain::{CustomerId, UserPoolId, Username};
use crate::error::{Error, Result, Upstream};
use crate::plans::PlanName;
use crate::ports::Directory;

pub const CUSTOMER_ID_ATTRIBUTE: &str = "custom:stripe_customer_id";
pub const PLAN_ATTRIBUTE: &str = "custom:plan_type";

#[derive(Debug, Clone)]
pub struct CognitoDirectory {
    client: Client,
}

fn attribute(name: &str, value: &str) -> Result<AttributeType> {
    AttributeType::builder()
        .name(name)
        .value(value)
        .build()
        .map_err(|e| Error::upstream(Upstream::Cognito, "AdminUpdateUserAttributes", false, e))
}

impl CognitoDirectory {
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(sdk))
    }

    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Directory for CognitoDirectory {
    async fn set_customer_id(
        &self,
        pool_id: &UserPoolId,
        username: &Username,
        customer_id: &CustomerId,
    ) -> Result<()> {
        self.client
            .admin_update_user_attributes()
            .user_pool_id(pool_id.as_str())
            .username(username.as_str())
            .user_attributes(attribute(CUSTOMER_ID_ATTRIBUTE, customer_id.as_str())?)
            .send()
            .await
            .map_err(|e| classify(Upstream::Cognito, "AdminUpdateUserAttributes", e))?;
        Ok(())
    }

    async fn set_plan(
        &self,
        pool_id: &UserPoolId,
        username: &Username,
        plan: &PlanName,
    ) -> Result<()> {
        self.client
            .admin_update_user_attributes()
            .user_pool_id(pool_id.as_str())
            .username(username.as_str())
            .user_attributes(attribute(PLAN_ATTRIBUTE, plan.as_str())?)
            .send()
            .await
            .map_err(|e| classify(Upstream::Cognito, "AdminUpdateUserAttributes", e))?;
        Ok(())
    }

    async fn delete_user(&self, pool_id: &UserPoolId, username: &Username) -> Result<()> {
        let outcome = self
            .client
            .admin_delete_user()
            .user_pool_id(pool_id.as_str())
            .username(username.as_str())
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_user_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(classify(Upstream::Cognito, "AdminDeleteUser", e)),
        }
    }
}
