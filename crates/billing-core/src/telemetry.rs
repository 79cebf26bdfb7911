//! Logging set-up shared by every function.

/// Honours Lambda's advanced logging controls: `AWS_LAMBDA_LOG_FORMAT=JSON` gives JSON lines,
/// `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG` locally) sets the level.
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}
