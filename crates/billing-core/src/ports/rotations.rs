//! When a user rotated their API key: the rotation rate limit's memory.

use async_trait::async_trait;

use crate::domain::UserSub;
use crate::error::Result;

/// The user's key rotations, read and written under the customer's provisioning lease (so a
/// count and the write after it are never interleaved with another rotation's).
#[async_trait]
pub trait KeyRotations: Send + Sync {
    /// The times of the user's rotations at or after `since`.
    async fn rotations_since(&self, sub: &UserSub, since: i64) -> Result<Vec<i64>>;

    /// Records a rotation at `at`; it is forgotten by itself after `ROTATION_MEMORY_SECS`.
    async fn record_rotation(&self, sub: &UserSub, at: i64) -> Result<()>;

    /// Forgets every rotation of the user (account deletion).
    async fn forget_rotations(&self, sub: &UserSub) -> Result<()>;
}
