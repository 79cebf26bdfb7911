//! HTTP helpers shared by the API Gateway handlers. A handler is
//! `async fn(...) -> Result<Response<Body>, ApiError>` using `?`; `respond` turns its error into
//! the one error answer `{"error": {"code", "message"}}`.

mod error;
mod request;
mod response;

pub use error::{ApiError, respond};
pub use request::{Caller, MAX_BODY_BYTES, api_base_url, caller, json_body, request_id};
pub use response::{error_response, json_response, no_content, redirect};

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}
