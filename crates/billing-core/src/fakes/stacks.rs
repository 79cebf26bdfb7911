//! CloudFormation stacks in memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;

use super::{lock, outage};
use crate::error::{Result, Upstream};
use crate::ports::{StackStatus, Stacks};

/// CloudFormation: stacks by name with their status; `delete` starts a deletion that the next
/// `status` reports complete.
#[derive(Debug, Default)]
pub struct FakeStacks {
    stacks: Mutex<HashMap<String, String>>,
    pub failing: AtomicBool,
    pub deletes: AtomicUsize,
    pub creates: AtomicUsize,
}

impl FakeStacks {
    pub fn add(&self, name: &str) {
        lock(&self.stacks).insert(name.to_owned(), "CREATE_COMPLETE".to_owned());
    }

    /// The stack deleted outside of us (by hand in the console).
    pub fn remove(&self, name: &str) {
        lock(&self.stacks).remove(name);
    }

    pub fn status_of(&self, name: &str) -> Option<String> {
        lock(&self.stacks).get(name).cloned()
    }
}

#[async_trait]
impl Stacks for FakeStacks {
    async fn status(&self, stack_name: &str) -> Result<StackStatus> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::CloudFormation, "DescribeStacks"));
        }
        Ok(match lock(&self.stacks).get(stack_name) {
            Some(status) => StackStatus::Exists(status.clone()),
            None => StackStatus::Gone,
        })
    }

    async fn create(
        &self,
        stack_name: &str,
        _template_url: &str,
        _parameters: &[(&str, &str)],
    ) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::CloudFormation, "CreateStack"));
        }
        self.creates.fetch_add(1, Ordering::SeqCst);
        lock(&self.stacks)
            .entry(stack_name.to_owned())
            .or_insert_with(|| "CREATE_COMPLETE".to_owned());
        Ok(())
    }

    async fn delete(&self, stack_name: &str) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(outage(Upstream::CloudFormation, "DeleteStack"));
        }
        self.deletes.fetch_add(1, Ordering::SeqCst);
        if let Some(status) = lock(&self.stacks).get_mut(stack_name) {
            *status = "DELETE_COMPLETE".to_owned();
        }
        Ok(())
    }
}
