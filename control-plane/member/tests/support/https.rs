//! An in-process API server on a real single-member store, and a minimal
//! HTTPS client (HTTP/1.1 over rustls) with an optional client certificate.
//! Shared by the HTTPS tests and the benchmark.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use kc_member::apiserver::{ApiServer, Authenticator};
use kc_member::pki::{ADMIN_GROUP, ADMIN_USER, CertRequest, ClusterCa, IssuedCert};
use kc_member::store::raft_node::{self, NoPeers, StoreConfig};
use kc_member::tls::{self, ClientAuth};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub struct TestServer {
    pub api: ApiServer,
    pub ca: ClusterCa,
    pub admin: IssuedCert,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a store and an API server on a free loopback port; `auth`
    /// holds the bearer tokens it accepts.
    pub async fn start(auth: Authenticator) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = ClusterCa::generate("test").expect("CA");
        let server = ca
            .issue(&CertRequest::member(
                "cp",
                &["localhost".into()],
                &["127.0.0.1".parse().expect("ip")],
            ))
            .expect("server cert");
        let admin = ca
            .issue(&CertRequest::client(ADMIN_USER, &[ADMIN_GROUP]))
            .expect("admin cert");
        let peers = BTreeMap::from([(1u64, "127.0.0.1:0".to_string())]);
        let (store, _thread) = raft_node::start(
            StoreConfig::new(1, dir.path().join("store"), peers),
            Arc::new(NoPeers),
        )
        .expect("store");
        let tls_server = tls::server_config(ca.cert_pem(), &server, ClientAuth::Optional, &[])
            .expect("server TLS");
        let api = ApiServer::start(
            "127.0.0.1:0".parse().expect("addr"),
            tls_server,
            Arc::new(store),
            auth,
        )
        .await
        .expect("API server");
        Self {
            api,
            ca,
            admin,
            _dir: dir,
        }
    }

    /// A client presenting `cert` (None: no certificate).
    pub fn client(&self, cert: Option<&IssuedCert>) -> Client {
        let config =
            tls::client_config(self.ca.cert_pem(), cert, &[b"http/1.1"]).expect("client TLS");
        Client {
            addr: self.api.local_addr,
            tls: TlsConnector::from(Arc::new(config)),
        }
    }
}

#[derive(Clone)]
pub struct Client {
    pub addr: std::net::SocketAddr,
    pub tls: TlsConnector,
}

impl Client {
    pub async fn connect(&self) -> SendRequest<Full<Bytes>> {
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        tcp.set_nodelay(true).ok();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("server name");
        let stream = self.tls.connect(name, tcp).await.expect("TLS handshake");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        sender
    }
}

/// Sends one request; returns the status code and body.
pub async fn request(
    s: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Bytes) {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    s.ready().await.expect("connection ready");
    let resp = s.send_request(req).await.expect("send");
    let code = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (code, body)
}
