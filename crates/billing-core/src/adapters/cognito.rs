//! The `Directory` port over the Cognito user pools admin API.

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, UserStatusType, UserType};

use crate::adapters::aws::classify;
use crate::domain::{CustomerId, Email, UserPoolId, UserSub, Username};
use crate::error::{Error, Result, Upstream};
use crate::plans::PlanName;
use crate::ports::{CognitoUserRef, Directory, UserLookup, UserRecord, UserRecords};

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
        Self::new(Client::from_conf(
            aws_sdk_cognitoidentityprovider::config::Builder::from(sdk)
                .interceptor(crate::xray::XrayInterceptor::global())
                .build(),
        ))
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

fn user_ref(username: Option<&str>, attributes: &[AttributeType]) -> Option<CognitoUserRef> {
    let sub = attributes
        .iter()
        .find(|attribute| attribute.name() == "sub")
        .and_then(|attribute| attribute.value())?;
    Some(CognitoUserRef {
        username: Username::parse(username?).ok()?,
        sub: UserSub::parse(sub).ok()?,
    })
}

/// A ListUsers filter value: double quotes and backslashes escaped.
fn filter_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

fn is_confirmed_and_verified(user: &UserType) -> bool {
    let confirmed = user.user_status() == Some(&UserStatusType::Confirmed);
    let verified = user
        .attributes()
        .iter()
        .any(|attribute| attribute.name() == "email_verified" && attribute.value() == Some("true"));
    confirmed && verified
}

impl CognitoDirectory {
    async fn list_users(
        &self,
        pool_id: &UserPoolId,
        filter: String,
    ) -> Result<Vec<CognitoUserRef>> {
        Ok(self
            .list_user_types(pool_id, filter)
            .await?
            .iter()
            .filter_map(|user| user_ref(user.username(), user.attributes()))
            .collect())
    }

    /// Every user the filter matches, all pages.
    async fn list_user_types(&self, pool_id: &UserPoolId, filter: String) -> Result<Vec<UserType>> {
        self.client
            .list_users()
            .user_pool_id(pool_id.as_str())
            .filter(filter)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| classify(Upstream::Cognito, "ListUsers", e))
    }
}

#[async_trait]
impl UserLookup for CognitoDirectory {
    async fn user_by_sub(&self, pool_id: &UserPoolId, sub: &str) -> Result<Option<CognitoUserRef>> {
        let users = self
            .list_users(pool_id, format!("sub = \"{}\"", filter_value(sub)))
            .await?;
        Ok(users.into_iter().find(|user| user.sub.as_str() == sub))
    }

    async fn verified_users_by_email(
        &self,
        pool_id: &UserPoolId,
        email: &Email,
    ) -> Result<Vec<CognitoUserRef>> {
        // ListUsers filters on one attribute: status and verification are checked here.
        let filter = format!("email = \"{}\"", filter_value(email.as_str()));
        Ok(self
            .list_user_types(pool_id, filter)
            .await?
            .iter()
            .filter(|user| is_confirmed_and_verified(user))
            .filter_map(|user| user_ref(user.username(), user.attributes()))
            .collect())
    }

    async fn create_user(&self, pool_id: &UserPoolId, email: &Email) -> Result<CognitoUserRef> {
        let output = self
            .client
            .admin_create_user()
            .user_pool_id(pool_id.as_str())
            .username(email.as_str())
            .user_attributes(attribute("email", email.as_str())?)
            .desired_delivery_mediums(
                aws_sdk_cognitoidentityprovider::types::DeliveryMediumType::Email,
            )
            .send()
            .await
            .map_err(|e| classify(Upstream::Cognito, "AdminCreateUser", e))?;
        output
            .user()
            .and_then(|user| user_ref(user.username(), user.attributes()))
            .ok_or_else(|| Error::InvalidData {
                service: Upstream::Cognito,
                detail: "created user without username or sub".into(),
            })
    }
}

#[async_trait]
impl UserRecords for CognitoDirectory {
    async fn user_record(
        &self,
        pool_id: &UserPoolId,
        username: &Username,
    ) -> Result<Option<UserRecord>> {
        let outcome = self
            .client
            .admin_get_user()
            .user_pool_id(pool_id.as_str())
            .username(username.as_str())
            .send()
            .await;
        match outcome {
            Ok(user) => Ok(user_record(
                Some(user.username()),
                user.user_attributes(),
                user.user_status(),
                user.enabled(),
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_user_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(Upstream::Cognito, "AdminGetUser", e)),
        }
    }

    async fn user_records_where(
        &self,
        pool_id: &UserPoolId,
        attribute: &str,
        value: &str,
    ) -> Result<Vec<UserRecord>> {
        let filter = format!("{attribute} = \"{}\"", filter_value(value));
        Ok(self
            .list_user_types(pool_id, filter)
            .await?
            .iter()
            .filter_map(|user| {
                user_record(
                    user.username(),
                    user.attributes(),
                    user.user_status(),
                    user.enabled(),
                )
            })
            .collect())
    }
}

fn user_record(
    username: Option<&str>,
    attributes: &[AttributeType],
    status: Option<&UserStatusType>,
    enabled: bool,
) -> Option<UserRecord> {
    let reference = user_ref(username, attributes)?;
    let value = |name: &str| {
        attributes
            .iter()
            .find(|attribute| attribute.name() == name)
            .and_then(|attribute| attribute.value())
            .map(str::to_owned)
    };
    Some(UserRecord {
        username: reference.username,
        sub: reference.sub,
        email: value("email"),
        email_verified: value("email_verified").as_deref() == Some("true"),
        status: status.map_or_else(|| "UNKNOWN".to_owned(), |s| s.as_str().to_owned()),
        enabled,
        plan: value(PLAN_ATTRIBUTE),
        customer_id: value(CUSTOMER_ID_ATTRIBUTE),
    })
}
