//! HTTPS to the servers the API server calls out to (admission webhooks,
//! aggregated APIs): a Service resolved to one of its ready endpoints on
//! the port it maps a service port to, a TLS connection verified against a
//! caBundle (or, where an APIService says `insecureSkipTLSVerify`, not
//! verified), and one HTTP/1.1 request on it.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

use crate::registry;
use crate::storage::Storage;

/// How a server's certificate is checked.
pub enum Trust<'a> {
    /// Against the base64 PEM bundle of a configuration's `caBundle`.
    Bundle(&'a Value),
    /// Not at all (`insecureSkipTLSVerify: true`).
    Insecure,
}

/// Why a Service cannot be reached.
#[derive(Debug, Clone, PartialEq)]
pub enum Unreachable {
    /// No such Service, or it lacks the port.
    ServiceNotFound(String),
    /// It has no ready endpoint for the port.
    MissingEndpoints(String),
    /// The store could not be read.
    Store(String),
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ServiceNotFound(m) | Self::MissingEndpoints(m) | Self::Store(m) => f.write_str(m),
        }
    }
}

impl From<Unreachable> for String {
    fn from(u: Unreachable) -> String {
        u.to_string()
    }
}

/// A ready endpoint of Service `ns/name` for its port `port`: the
/// `ip:port` to dial and the name its certificate must carry.
pub async fn service_endpoint(
    storage: &Storage,
    ns: &str,
    name: &str,
    port: i64,
) -> Result<(String, String), Unreachable> {
    let read = |plural: &'static str| async move {
        let resource = registry::lookup("", "v1", plural).expect("a built-in resource");
        storage
            .get_local(&Storage::key(resource, ns, name))
            .await
            .map_err(|e| Unreachable::Store(e.message))
            .map(|s| s.map(|s| s.object))
    };
    let service = read("services").await?.ok_or_else(|| {
        Unreachable::ServiceNotFound(format!("service/{name} in \"{ns}\" is not present"))
    })?;
    let port_name = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_i64() == Some(port))
        .map(|p| p["name"].as_str().unwrap_or("").to_string())
        .ok_or_else(|| {
            Unreachable::ServiceNotFound(format!(
                "service/{name} in \"{ns}\" is not listening on port {port}"
            ))
        })?;
    let missing = || {
        Unreachable::MissingEndpoints(format!(
            "endpoints for service/{name} in \"{ns}\" have no addresses with port name \"{port_name}\""
        ))
    };
    let endpoints = read("endpoints").await?.ok_or_else(missing)?;
    for subset in endpoints["subsets"].as_array().into_iter().flatten() {
        let target = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str().unwrap_or("") == port_name)
            .and_then(|p| p["port"].as_i64());
        if let (Some(ip), Some(target)) = (subset["addresses"][0]["ip"].as_str(), target) {
            let address = if ip.contains(':') {
                format!("[{ip}]:{target}")
            } else {
                format!("{ip}:{target}")
            };
            return Ok((address, format!("{name}.{ns}.svc")));
        }
    }
    Err(missing())
}

/// The roots of a caBundle (base64 of PEM certificates in the JSON).
fn roots(ca_bundle: &Value) -> Result<rustls::RootCertStore, String> {
    let pem = match ca_bundle.as_str() {
        None | Some("") => {
            return Err("no caBundle is given (kc verifies the server against it)".into());
        }
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("caBundle is not base64: {e}"))?,
    };
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("caBundle: {e}"))?;
        store.add(cert).map_err(|e| format!("caBundle: {e}"))?;
    }
    if store.is_empty() {
        return Err("caBundle holds no PEM certificate".into());
    }
    Ok(store)
}

fn client_config(trust: Trust<'_>) -> Result<rustls::ClientConfig, String> {
    Ok(match trust {
        Trust::Bundle(bundle) => rustls::ClientConfig::builder()
            .with_root_certificates(roots(bundle)?)
            .with_no_client_auth(),
        Trust::Insecure => kc_pki::tls::unverified_client_config(),
    })
}

/// Sends `request` to `address` over TLS, the server checked as
/// `server_name` by `trust`; the answer, its body still to read.
pub async fn send(
    address: &str,
    server_name: &str,
    trust: Trust<'_>,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<Incoming>, String> {
    let config = client_config(trust)?;
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| format!("server name {server_name:?}: {e}"))?;
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("dial tcp {address}: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_bundle_must_hold_certificates() {
        assert!(roots(&Value::Null).unwrap_err().contains("no caBundle"));
        assert!(roots(&Value::String("!!".into())).is_err());
        let not_pem = base64::engine::general_purpose::STANDARD.encode("hello");
        assert!(roots(&Value::String(not_pem)).is_err());
    }
}
