//! Key rotations in memory.

use async_trait::async_trait;

use super::{InMemoryStore, lock};
use crate::domain::UserSub;
use crate::error::Result;
use crate::ports::KeyRotations;

#[async_trait]
impl KeyRotations for InMemoryStore {
    async fn rotations_since(&self, sub: &UserSub, since: i64) -> Result<Vec<i64>> {
        self.enter("Query")?;
        Ok(lock(&self.tables)
            .rotations
            .get(sub)
            .map(|times| times.iter().copied().filter(|at| *at >= since).collect())
            .unwrap_or_default())
    }

    async fn record_rotation(&self, sub: &UserSub, at: i64) -> Result<()> {
        self.enter("PutItem")?;
        lock(&self.tables)
            .rotations
            .entry(sub.clone())
            .or_default()
            .push(at);
        Ok(())
    }

    async fn forget_rotations(&self, sub: &UserSub) -> Result<()> {
        self.enter("DeleteItem")?;
        lock(&self.tables).rotations.remove(sub);
        Ok(())
    }
}
