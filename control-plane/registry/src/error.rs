//! Registry errors in the OCI Distribution wire form:
//! `{"errors":[{"code":"DIGEST_INVALID","message":"..."}]}` with the status
//! the spec gives each code. Kept apart from the Kubernetes `Status` errors
//! because registry clients (skopeo, containerd) parse only this shape.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// One failed registry request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RegistryError {
    pub status: u16,
    /// The spec's error code (`BLOB_UNKNOWN`, `DIGEST_INVALID`, ...).
    pub code: &'static str,
    pub message: String,
}

impl RegistryError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            401,
            "UNAUTHORIZED",
            "authentication required: use a client certificate of the cluster, a bearer token, or basic auth with the token as password",
        )
    }

    pub fn denied(user: &str, why: &str) -> Self {
        Self::new(
            403,
            "DENIED",
            format!("user {user:?} may not do this: {why}"),
        )
    }

    pub fn name_invalid(name: &str) -> Self {
        Self::new(
            400,
            "NAME_INVALID",
            format!(
                "invalid repository name {name:?}: use lowercase letters, digits and . _ - separated by /"
            ),
        )
    }

    pub fn digest_invalid(message: impl Into<String>) -> Self {
        Self::new(400, "DIGEST_INVALID", message)
    }

    pub fn blob_unknown(digest: &str) -> Self {
        Self::new(
            404,
            "BLOB_UNKNOWN",
            format!("blob {digest} is not in the registry"),
        )
    }

    pub fn upload_unknown(id: &str) -> Self {
        Self::new(
            404,
            "BLOB_UPLOAD_UNKNOWN",
            format!(
                "upload {id:?} does not exist (finished, cancelled or never started): start a new one with POST"
            ),
        )
    }

    pub fn manifest_unknown(name: &str, reference: &str) -> Self {
        Self::new(
            404,
            "MANIFEST_UNKNOWN",
            format!("manifest {name}:{reference} is not in the registry"),
        )
    }

    pub fn manifest_invalid(message: impl Into<String>) -> Self {
        Self::new(400, "MANIFEST_INVALID", message)
    }

    pub fn name_unknown(name: &str) -> Self {
        Self::new(
            404,
            "NAME_UNKNOWN",
            format!("repository {name:?} is not in the registry"),
        )
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(405, "UNSUPPORTED", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "UNKNOWN", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "UNAVAILABLE", message)
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let body = json!({ "errors": [{ "code": self.code, "message": self.message }] });
        let mut resp = Response::new(Body::from(body.to_string()));
        *resp.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == 401 {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"kc\""),
            );
        }
        resp
    }
}

/// An I/O failure on the registry's disk, named.
pub fn io_error(what: &str, e: std::io::Error) -> RegistryError {
    RegistryError::internal(format!("{what}: {e}"))
}
