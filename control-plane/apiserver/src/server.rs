//! The HTTPS listener: TLS (rustls, client certificates optional) in front
//! of the axum router, serving HTTP/2 and HTTP/1.1 (with upgrades) on the
//! same port, one task per connection.
//!
//! The connection's verified client certificate is read once after the
//! handshake and attached to every request on it as a `PeerIdentity`, so
//! the handlers never see TLS. Request bodies are read whole before
//! routing (`body`).

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use kc_pki::Identity;

use super::body;
use super::handler::{self, ApiState, PeerIdentity};

/// The ALPN protocols the API server speaks (kubectl offers h2 first).
pub const ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// The router of every endpoint.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/version", get(handler::version))
        .route("/version/", get(handler::version))
        .route("/healthz", get(handler::health))
        .route("/livez", get(handler::health))
        .route("/readyz", get(handler::health))
        .route("/v2", any(handler::registry))
        .route("/v2/", any(handler::registry))
        .route("/v2/{*rest}", any(handler::registry))
        .fallback(handler::handle)
        .method_not_allowed_fallback(handler::method_not_allowed)
        .with_state(state)
}

/// Accepts connections on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                    return;
                }
            };
            let identity: Option<Identity> = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|der| Identity::from_cert_der(der).ok());
            let peer_identity = PeerIdentity(identity);
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(peer_identity.clone());
                    let app = app.clone();
                    async move {
                        if !body::buffers(req.uri().path()) {
                            return app.oneshot(req.map(axum::body::Body::new)).await;
                        }
                        match body::buffer(req, super::BODY_LIMIT).await {
                            body::Buffered::Ready(req) => app.oneshot(req).await,
                            body::Buffered::Answer(resp) => Ok(resp),
                        }
                    }
                },
            );
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}
