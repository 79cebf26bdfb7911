//! CloudFormation stacks that subscriptions pay for, and our records of them.

use async_trait::async_trait;

use crate::error::Result;

/// Lifecycle of a CloudFormation stack recorded against a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackState {
    Active,
    Deleting,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRecord {
    pub subscription_id: String,
    pub stack_name: String,
    pub state: StackState,
    pub updated_at: i64,
}

/// A CloudFormation stack's state as deprovisioning needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackStatus {
    /// The stack exists with this CloudFormation status, e.g. `CREATE_COMPLETE`.
    Exists(String),
    /// No such stack (deleted long ago, or never created).
    Gone,
}

/// CloudFormation, for the resources a subscription pays for.
#[async_trait]
pub trait Stacks: Send + Sync {
    async fn status(&self, stack_name: &str) -> Result<StackStatus>;

    /// Starts creating the stack; one that already exists is not an error.
    async fn create(
        &self,
        stack_name: &str,
        template_url: &str,
        parameters: &[(&str, &str)],
    ) -> Result<()>;

    /// Starts deleting the stack; an absent stack is not an error.
    async fn delete(&self, stack_name: &str) -> Result<()>;
}
