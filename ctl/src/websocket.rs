//! WebSocket connections to the API server for the streaming verbs
//! (`exec`): TLS with the kubeconfig's CA and client certificate, the
//! upgrade with the wanted subprotocols, and an HTTP refusal turned into
//! the same [`ApiError`] the plain client reports. `poll` and
//! `would_block` serve the verbs that drive a non-blocking socket from
//! poll(2) (exec, port-forward).

use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

use crate::client::ApiError;
use crate::kubeconfig::Target;

pub type Socket = tungstenite::WebSocket<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>;

fn tls_config(target: &Target) -> Result<rustls::ClientConfig> {
    if target.insecure {
        bail!(
            "insecure-skip-tls-verify is not supported for streaming verbs: set certificate-authority in the kubeconfig"
        );
    }
    let mut roots = rustls::RootCertStore::empty();
    let ca = target
        .ca_pem
        .as_deref()
        .ok_or_else(|| anyhow!("the kubeconfig has no certificate-authority for this cluster"))?;
    for cert in CertificateDer::pem_slice_iter(ca) {
        roots
            .add(cert.context("certificate-authority in kubeconfig")?)
            .context("certificate-authority in kubeconfig")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(match (&target.client_cert_pem, &target.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .context("client-certificate in kubeconfig")?;
            let key = PrivateKeyDer::from_pem_slice(key).context("client-key in kubeconfig")?;
            builder.with_client_auth_cert(chain, key)?
        }
        _ => builder.with_no_client_auth(),
    })
}

/// Opens a WebSocket to `path` (with query) offering `protocols`.
pub fn connect(target: &Target, path: &str, protocols: &[&str]) -> Result<Socket> {
    let rest = target.server.strip_prefix("https://").ok_or_else(|| {
        anyhow!(
            "streaming verbs need an https:// server, not {}",
            target.server
        )
    })?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(authority)
        .trim_matches(['[', ']']);
    let addr = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:443")
    };
    let tcp = TcpStream::connect(&addr).map_err(|e| {
        ApiError::Transport(format!("The connection to the server {authority} was refused - did you specify the right host or port? ({e})"))
    })?;
    tcp.set_nodelay(true)?;
    let name =
        ServerName::try_from(host.to_string()).map_err(|e| anyhow!("server name {host}: {e}"))?;
    let conn = rustls::ClientConnection::new(Arc::new(tls_config(target)?), name)?;
    let stream = rustls::StreamOwned::new(conn, tcp);
    let mut request = format!("wss://{authority}{path}").into_client_request()?;
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(&protocols.join(", "))?,
    );
    if let Some(token) = &target.token {
        headers.insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    match tungstenite::client(request, stream) {
        Ok((socket, _)) => {
            socket
                .get_ref()
                .sock
                .set_read_timeout(Some(Duration::from_millis(50)))?;
            Ok(socket)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(res))) => {
            let code = res.status().as_u16();
            let body = res
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err(ApiError::from_response(code, &body).into())
        }
        Err(e) => Err(anyhow!("WebSocket upgrade to {path} failed: {e}")),
    }
}

/// Whether an I/O error only means "not now" on a non-blocking socket.
pub fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if matches!(
        io.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ))
}

/// Sleeps in poll(2) until one of `fds` is ready (their `revents` say
/// which), at most a second; an interrupted wait is not an error.
pub fn poll(fds: &mut [libc::pollfd]) -> Result<()> {
    // SAFETY: poll(2) on descriptors the caller owns, with the slice's
    // true length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("poll on the connection to the server failed");
        }
    }
    Ok(())
}
