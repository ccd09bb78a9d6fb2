//! The HTTP client to the API server: TLS from the kubeconfig (cluster CA,
//! client certificate, bearer token), one blocking request at a time (a CLI
//! needs no more), JSON in and out, and failures as [`ApiError`] parsed
//! from the server's `Status` body so they print the way kubectl prints them.

use std::io::Read;

use anyhow::{Context, Result};
use serde_json::Value;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
use ureq::{Agent, Body, http};

use crate::kubeconfig::Target;

/// The `Accept` header asking the server for a `meta.k8s.io` Table.
pub const ACCEPT_TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/// A failed request, worded like kubectl's errors.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server refused the credentials (kubectl's own wording).
    #[error("error: You must be logged in to the server ({reason})")]
    Unauthorized { reason: String },
    /// The server answered with an error `Status`.
    #[error("Error from server ({reason}): {message}")]
    Status {
        code: u16,
        reason: String,
        message: String,
    },
    /// The server could not be reached.
    #[error("{0}")]
    Transport(String),
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Status { code: 404, .. })
    }

    pub fn code(&self) -> Option<u16> {
        match self {
            ApiError::Status { code, .. } => Some(*code),
            ApiError::Unauthorized { .. } => Some(401),
            ApiError::Transport(_) => None,
        }
    }

    /// Builds the error from a non-2xx response's status code and body.
    pub fn from_response(code: u16, body: &str) -> Self {
        let status: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let reason = status["reason"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| reason_for(code).to_string());
        let message = status["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| {
                let text = body.trim();
                if text.is_empty() {
                    format!("the server responded with status {code}")
                } else {
                    text.to_string()
                }
            });
        if code == 401 {
            return ApiError::Unauthorized { reason };
        }
        ApiError::Status {
            code,
            reason,
            message,
        }
    }
}

/// The reason kubectl shows when the body carries none.
fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

/// A connection to one API server.
pub struct Client {
    agent: Agent,
    server: String,
    token: Option<String>,
}

/// A request body with its content type.
pub struct Payload<'a> {
    pub content_type: &'a str,
    pub body: Vec<u8>,
}

impl Client {
    /// Builds a client for the resolved kubeconfig target.
    pub fn new(target: &Target) -> Result<Self> {
        crate::kubeconfig::check_server(&target.server)?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut tls = TlsConfig::builder().disable_verification(target.insecure);
        if let Some(ca) = &target.ca_pem {
            let certs = pem_certs(ca).context("certificate-authority in kubeconfig")?;
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
        if let (Some(cert), Some(key)) = (&target.client_cert_pem, &target.client_key_pem) {
            let chain = pem_certs(cert).context("client-certificate in kubeconfig")?;
            let key = PrivateKey::from_pem(key)
                .map_err(|e| anyhow::anyhow!("client-key in kubeconfig: {e}"))?;
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        let agent: Agent = Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            agent,
            server: target.server.clone(),
            token: target.token.clone(),
        })
    }

    /// Sends a request; returns the response (status not yet checked).
    fn send(
        &self,
        method: &str,
        path: &str,
        accept: &str,
        payload: Option<Payload>,
    ) -> Result<http::Response<Body>, ApiError> {
        let url = format!("{}{}", self.server, path);
        let mut req = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Accept", accept)
            .header("User-Agent", concat!("kcctl/", env!("CARGO_PKG_VERSION")));
        if let Some(token) = &self.token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        let result = match payload {
            Some(p) => {
                let req = req
                    .header("Content-Type", p.content_type)
                    .body(p.body)
                    .map_err(|e| ApiError::Transport(format!("bad request {url}: {e}")))?;
                self.agent.run(req)
            }
            None => {
                let req = req
                    .body(())
                    .map_err(|e| ApiError::Transport(format!("bad request {url}: {e}")))?;
                self.agent.run(req)
            }
        };
        result.map_err(|e| self.transport_error(e))
    }

    fn transport_error(&self, e: ureq::Error) -> ApiError {
        let host = self
            .server
            .split("://")
            .nth(1)
            .unwrap_or(&self.server)
            .to_string();
        match &e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                ApiError::Transport(format!(
                    "The connection to the server {host} was refused - did you specify the right host or port?"
                ))
            }
            _ => ApiError::Transport(format!("Unable to connect to the server: {host}: {e}")),
        }
    }

    /// Sends a request and returns the body of a 2xx response as a stream.
    pub fn stream(
        &self,
        method: &str,
        path: &str,
        accept: &str,
        payload: Option<Payload>,
    ) -> Result<impl Read + use<>, ApiError> {
        let res = self.send(method, path, accept, payload)?;
        let code = res.status().as_u16();
        let mut body = res.into_body();
        if !(200..300).contains(&code) {
            let text = body
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .unwrap_or_default();
            return Err(ApiError::from_response(code, &text));
        }
        Ok(body.into_reader())
    }

    /// Sends a request and parses the JSON body of its 2xx response.
    pub fn json(
        &self,
        method: &str,
        path: &str,
        accept: &str,
        payload: Option<Payload>,
    ) -> Result<Value, ApiError> {
        let mut reader = self.stream(method, path, accept, payload)?;
        let mut text = String::new();
        reader
            .read_to_string(&mut text)
            .map_err(|e| ApiError::Transport(format!("reading the answer to {path}: {e}")))?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| ApiError::Transport(format!("the answer to {path} is not JSON: {e}")))
    }

    pub fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.json("GET", path, "application/json", None)
    }

    pub fn get_table(&self, path: &str) -> Result<Value, ApiError> {
        self.json("GET", path, ACCEPT_TABLE, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.json("POST", path, "application/json", Some(json_payload(body)))
    }

    pub fn delete(&self, path: &str) -> Result<Value, ApiError> {
        self.json("DELETE", path, "application/json", None)
    }

    /// A `PATCH` with the given patch content type.
    pub fn patch(&self, path: &str, content_type: &str, body: &Value) -> Result<Value, ApiError> {
        let payload = Payload {
            content_type,
            body: body.to_string().into_bytes(),
        };
        self.json("PATCH", path, "application/json", Some(payload))
    }
}

fn json_payload(body: &Value) -> Payload<'static> {
    Payload {
        content_type: "application/json",
        body: body.to_string().into_bytes(),
    }
}

fn pem_certs(pem: &[u8]) -> Result<Vec<Certificate<'static>>> {
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("not valid PEM: {e}"))?;
    anyhow::ensure!(!certs.is_empty(), "no PEM certificate found");
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_body_becomes_kubectl_error_line() {
        let body = r#"{"kind":"Status","status":"Failure","reason":"NotFound","message":"pods \"x\" not found","code":404}"#;
        let e = ApiError::from_response(404, body);
        assert_eq!(
            e.to_string(),
            "Error from server (NotFound): pods \"x\" not found"
        );
        assert!(e.is_not_found());
    }

    #[test]
    fn body_without_status_uses_the_code_reason() {
        let e = ApiError::from_response(409, "");
        assert!(e.to_string().starts_with("Error from server (Conflict):"));
    }
}
