//! Responses: JSON with one error shape, no content, redirects. Never cached.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::json;

pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned());
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::Text(body))
        .unwrap_or_default()
}

pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// An error answer with more fields in its `error` object (e.g. the `param` at fault).
pub fn error_response_with(
    status: StatusCode,
    code: &str,
    message: &str,
    fields: &[(&str, serde_json::Value)],
) -> Response<Body> {
    let mut error = json!({"code": code, "message": message});
    for (name, value) in fields {
        error[*name] = value.clone();
    }
    json_response(status, &json!({ "error": error }))
}

pub fn no_content() -> Response<Body> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .unwrap_or_default()
}

/// 303 See Other to `location`, which the caller has checked is ours.
pub fn redirect(location: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::Empty)
        .unwrap_or_default()
}
