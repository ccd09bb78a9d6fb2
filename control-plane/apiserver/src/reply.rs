//! Answers as kube-apiserver writes them: JSON bodies ending in a newline,
//! a Content-Type, and a REST verb's outcome with its warnings as
//! `Warning: 299` headers.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::rest;
use super::status::ApiError;

pub fn json_response(code: u16, value: &Value) -> Response {
    json_with_type(code, value, "application/json")
}

pub fn json_with_type(code: u16, value: &Value, content_type: &str) -> Response {
    let mut body = serde_json::to_vec(value).expect("a serde_json::Value always serializes");
    // kube-apiserver's JSON encoder ends every body with a newline.
    body.push(b'\n');
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

pub fn text_response(text: String, content_type: &'static str) -> Response {
    let mut resp = Response::new(Body::from(text));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A REST verb's outcome: its object, code and warnings.
pub fn outcome_response(out: rest::Outcome) -> Response {
    let mut resp = json_response(out.code, &out.object);
    for w in out.warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - {}", json!(w))) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// A failure as kube-apiserver answers it: its `Status` body and code
/// (and `WWW-Authenticate: Bearer` on a 401).
pub fn error_response(err: ApiError) -> Response {
    let code = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = Response::new(Body::from(err.status_bytes()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if err.code == 401 {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}
