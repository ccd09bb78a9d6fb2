//! The client side of the OCI Distribution API: where a registry is, how to
//! reach it (HTTPS trusting a given CA, or plain HTTP for local test
//! registries) and how to authenticate (bearer token, Basic, or a client
//! certificate), and references split into registry, repository and tag.
//!
//! One HTTP/1.1 connection per request (hyper): registries are asked few,
//! large questions, so pooling would buy little and cost a dependency.
//! `pull` and `push` are built on `RegistryClient::send`.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::error::{ImageError, Result};

/// How long connecting to a registry may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A request or response body.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// How to reach and log in to a registry.
#[derive(Clone, Default)]
pub struct RegistryConfig {
    /// `host:port` of the registry.
    pub host: String,
    /// Plain HTTP instead of HTTPS (local test registries only).
    pub insecure_http: bool,
    /// PEM of the CA the registry's certificate must chain to.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM of a client certificate and its key (the cluster's mutual TLS).
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
    /// A bearer token (`Authorization: Bearer`).
    pub token: Option<String>,
    /// A user name and password (`Authorization: Basic`).
    pub basic: Option<(String, String)>,
}

impl std::fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("host", &self.host)
            .field("insecure_http", &self.insecure_http)
            .field("ca", &self.ca_pem.is_some())
            .field("client_cert", &self.client_cert.is_some())
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

fn registry_error(msg: impl Into<String>) -> ImageError {
    ImageError::Registry(msg.into())
}

impl RegistryConfig {
    /// The cluster registry of a kubeconfig: its current context's server
    /// (the API server serves `/v2/`), CA and credentials.
    pub fn from_kubeconfig(path: &Path) -> Result<RegistryConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            registry_error(format!(
                "cannot read the kubeconfig {}: {e} (pass --kubeconfig or set KUBECONFIG)",
                path.display()
            ))
        })?;
        let doc: serde_json::Value = serde_norway::from_str(&text)
            .map_err(|e| registry_error(format!("{} is not a kubeconfig: {e}", path.display())))?;
        let bad = |what: &str| registry_error(format!("kubeconfig {}: {what}", path.display()));
        let current = doc["current-context"].as_str().unwrap_or_default();
        let named = |list: &str, name: &str| -> Option<serde_json::Value> {
            let items = doc[list].as_array()?;
            items
                .iter()
                .find(|i| name.is_empty() || i["name"] == name)
                .cloned()
        };
        let context = named("contexts", current).ok_or_else(|| bad("no current context"))?;
        let cluster_name = context["context"]["cluster"].as_str().unwrap_or_default();
        let user_name = context["context"]["user"].as_str().unwrap_or_default();
        let cluster = named("clusters", cluster_name).ok_or_else(|| bad("no cluster"))?;
        let user = named("users", user_name)
            .map(|u| u["user"].clone())
            .unwrap_or_default();
        let base = path.parent().unwrap_or(Path::new("."));
        let data = |v: &serde_json::Value, inline: &str, file: &str| -> Result<Option<Vec<u8>>> {
            if let Some(b64) = v[inline].as_str() {
                return base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map(Some)
                    .map_err(|e| bad(&format!("{inline} is not base64: {e}")));
            }
            match v[file].as_str() {
                Some(f) => std::fs::read(base.join(f))
                    .map(Some)
                    .map_err(|e| bad(&format!("cannot read {file} {f}: {e}"))),
                None => Ok(None),
            }
        };
        let server = cluster["cluster"]["server"]
            .as_str()
            .ok_or_else(|| bad("the cluster has no server"))?;
        let (insecure_http, host) = split_url(server)?;
        let cert = data(&user, "client-certificate-data", "client-certificate")?;
        let key = data(&user, "client-key-data", "client-key")?;
        Ok(RegistryConfig {
            host,
            insecure_http,
            ca_pem: data(
                &cluster["cluster"],
                "certificate-authority-data",
                "certificate-authority",
            )?,
            client_cert: cert.zip(key),
            token: user["token"].as_str().map(str::to_string),
            basic: None,
        })
    }

    /// The registry at `url` (`https://host:port`, `http://host:port` or
    /// `host:port`, meaning HTTPS), with no credentials.
    pub fn from_url(url: &str) -> Result<RegistryConfig> {
        let (insecure_http, host) = split_url(url)?;
        Ok(RegistryConfig {
            host,
            insecure_http,
            ..Default::default()
        })
    }

    /// The same trust, for another registry named in a reference: its
    /// host, no credentials (they belong to this one).
    pub fn for_host(&self, host: &str) -> RegistryConfig {
        if host == self.host {
            return self.clone();
        }
        RegistryConfig {
            host: host.to_string(),
            insecure_http: self.insecure_http,
            ca_pem: self.ca_pem.clone(),
            ..Default::default()
        }
    }
}

/// The registry config for `remote`: the registry it names, or `default`
/// (the cluster registry) for short names.
pub fn config_for(remote: &RemoteRef, default: &RegistryConfig) -> Result<RegistryConfig> {
    match &remote.host {
        Some(h) => Ok(default.for_host(h)),
        None if default.host.is_empty() => Err(registry_error(format!(
            "{} names no registry and no cluster registry is configured: pass --kubeconfig (the cluster's admin kubeconfig), set KUBECONFIG, or write HOST:PORT/{}",
            remote.local_name(),
            remote.local_name()
        ))),
        None => Ok(default.clone()),
    }
}

/// `(plain http?, host:port)` of a URL.
fn split_url(url: &str) -> Result<(bool, String)> {
    let (http, rest) = if let Some(r) = url.strip_prefix("http://") {
        (true, r)
    } else {
        (false, url.strip_prefix("https://").unwrap_or(url))
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(registry_error(format!("registry URL {url:?} has no host")));
    }
    Ok((http, host.to_string()))
}

/// A reference split for the registry: `host:port/repo/name:tag`, or a
/// short name (`basicserver:0.42`) meaning the cluster registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    /// The registry named in the reference, None for the default one.
    pub host: Option<String>,
    pub repository: String,
    /// A tag or a `sha256:` digest.
    pub reference: String,
}

impl RemoteRef {
    pub fn parse(s: &str) -> Result<RemoteRef> {
        let bad = |why: &str| ImageError::BadReference {
            reference: s.to_string(),
            reason: why.to_string(),
        };
        let (name, reference) = if let Some((n, d)) = s.split_once('@') {
            (n, d.to_string())
        } else {
            match s.rfind(':') {
                Some(i) if !s[i + 1..].contains('/') => (&s[..i], s[i + 1..].to_string()),
                _ => (s, "latest".to_string()),
            }
        };
        let (host, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first.to_string()), rest.to_string())
            }
            _ => (None, name.to_string()),
        };
        if repository.is_empty() || reference.is_empty() {
            return Err(bad("expected [host:port/]name[:tag]"));
        }
        Ok(RemoteRef {
            host,
            repository,
            reference,
        })
    }

    /// The name the image gets in the local store: the reference as
    /// written, so `kcnode run` finds it by the same words.
    pub fn local_name(&self) -> String {
        match &self.host {
            Some(h) => format!("{h}/{}:{}", self.repository, self.reference),
            None => format!("{}:{}", self.repository, self.reference),
        }
    }
}

/// A client for one registry.
#[derive(Clone)]
pub struct RegistryClient {
    config: RegistryConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl RegistryClient {
    pub fn new(config: RegistryConfig) -> Result<RegistryClient> {
        let tls = if config.insecure_http {
            None
        } else {
            Some(Arc::new(tls_config(&config)?))
        };
        Ok(RegistryClient { config, tls })
    }

    pub fn host(&self) -> &str {
        &self.config.host
    }

    /// A request to `path_and_query` (`/v2/...`) or to an absolute URL on
    /// this registry (upload locations), with credentials.
    pub fn request(&self, method: Method, target: &str) -> hyper::http::request::Builder {
        let path = match target.find("://") {
            Some(i) => {
                let rest = &target[i + 3..];
                rest.find('/').map_or("/", |j| &rest[j..])
            }
            None => target,
        };
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.config.host)
            .header(hyper::header::USER_AGENT, "kc/0.1");
        if let Some(token) = &self.config.token {
            b = b.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        } else if let Some((u, p)) = &self.config.basic {
            let enc = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            b = b.header(hyper::header::AUTHORIZATION, format!("Basic {enc}"));
        }
        b
    }

    /// Sends a request on a fresh connection.
    pub async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>> {
        let host = &self.config.host;
        let failed = |e: &dyn std::fmt::Display| {
            registry_error(format!("cannot reach the registry {host}: {e}"))
        };
        // A host that is down (or cut off) must not hold a pull for the
        // kernel's minutes of SYN retries: the next registry may answer.
        let tcp = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect(host.as_str()),
        )
        .await
        .map_err(|_| failed(&format!("no connection within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| failed(&e))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => exchange(TokioIo::new(tcp), req)
                .await
                .map_err(|e| failed(&e)),
            Some(tls) => {
                let name = host_name(host);
                let server = ServerName::try_from(name.to_string())
                    .map_err(|e| failed(&format!("bad host name {name:?}: {e}")))?;
                let stream = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(server, tcp)
                    .await
                    .map_err(|e| failed(&format!("TLS: {e} (is the CA right?)")))?;
                exchange(TokioIo::new(stream), req)
                    .await
                    .map_err(|e| failed(&e))
            }
        }
    }

    /// Sends a request and fails on an unexpected status with the
    /// registry's error message; `what` says what was being done.
    pub async fn expect(
        &self,
        req: Request<Body>,
        ok: &[StatusCode],
        what: &str,
    ) -> Result<Response<Incoming>> {
        let resp = self.send(req).await?;
        if ok.contains(&resp.status()) {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let detail = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let e = v["errors"].get(0)?.clone();
                Some(format!(
                    "{}: {}",
                    e["code"].as_str().unwrap_or_default(),
                    e["message"].as_str().unwrap_or_default()
                ))
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
        let hint = match status {
            StatusCode::UNAUTHORIZED => " (log in: a kubeconfig with credentials, or a token)",
            StatusCode::FORBIDDEN => " (these credentials may not do that)",
            _ => "",
        };
        Err(registry_error(format!(
            "{what}: registry {} answered {status}: {detail}{hint}",
            self.config.host
        )))
    }
}

/// The host part of `host:port` (`[v6]:port` too), for TLS.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

async fn exchange<I>(
    io: I,
    req: Request<Body>,
) -> std::result::Result<Response<Incoming>, hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("registry connection ended: {e}");
        }
    });
    sender.send_request(req).await
}

fn tls_config(config: &RegistryConfig) -> Result<rustls::ClientConfig> {
    let bad = |what: &str, e: &dyn std::fmt::Display| registry_error(format!("{what}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    let Some(ca) = &config.ca_pem else {
        return Err(registry_error(format!(
            "no CA to verify the registry {} with: use the cluster's kubeconfig, or plain http:// for a local test registry",
            config.host
        )));
    };
    for cert in CertificateDer::pem_slice_iter(ca) {
        roots
            .add(cert.map_err(|e| bad("the CA is not PEM", &e))?)
            .map_err(|e| bad("the CA is not a certificate", &e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS setup", &e))?
        .with_root_certificates(roots);
    let mut tls = match &config.client_cert {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_slice_iter(cert)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| bad("the client certificate is not PEM", &e))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| bad("the client key is not PEM", &e))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| bad("the client certificate", &e))?
        }
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// A body of bytes in memory.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A body streamed from a file, counted on `bar`.
pub async fn file_body(path: &Path, bar: indicatif::ProgressBar) -> Result<(Body, u64)> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| ImageError::Io {
            context: format!("cannot open {}", path.display()),
            cause: e,
        })?;
    let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10);
    let body = http_body_util::StreamBody::new(futures::StreamExt::map(stream, move |r| {
        r.map(|chunk| {
            bar.inc(chunk.len() as u64);
            hyper::body::Frame::data(chunk)
        })
    }));
    Ok((BodyExt::boxed(body), size))
}

/// A response header as text.
pub fn header<'a>(resp: &'a Response<Incoming>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_registry_repository_and_tag() {
        let r = RemoteRef::parse("basicserver:0.42").unwrap();
        assert_eq!(
            (r.host, r.repository.as_str(), r.reference.as_str()),
            (None, "basicserver", "0.42")
        );
        let r = RemoteRef::parse("127.0.0.1:5000/test/img:1").unwrap();
        assert_eq!(r.host.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(r.repository, "test/img");
        assert_eq!(r.local_name(), "127.0.0.1:5000/test/img:1");
        let r = RemoteRef::parse("library/busybox").unwrap();
        assert_eq!((r.host, r.reference.as_str()), (None, "latest"));
        let r = RemoteRef::parse("localhost:5000/a@sha256:00").unwrap();
        assert_eq!(r.reference, "sha256:00");
        assert!(RemoteRef::parse(":x").is_err());
    }

    #[test]
    fn urls_and_hosts() {
        assert_eq!(split_url("https://h:1/x").unwrap(), (false, "h:1".into()));
        assert_eq!(split_url("http://h:1").unwrap(), (true, "h:1".into()));
        assert_eq!(host_name("127.0.0.1:6443"), "127.0.0.1");
        assert_eq!(host_name("[::1]:6443"), "::1");
        assert!(split_url("https://").is_err());
    }
}
