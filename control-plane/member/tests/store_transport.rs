//! The store's QUIC front under hostile input: a peer without a client
//! certificate is refused, a garbage or oversized frame drops only that
//! connection, and the member keeps serving.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kc_member::pki::{CertRequest, ClusterCa};
use kc_member::store::client::StoreClient;
use kc_member::store::raft_node::{self, StoreConfig};
use kc_member::store::transport::{MemberTls, Transport, certificate_ips};
use kc_member::store::wire::ALPN;
use kc_member::store::*;
use kc_member::tls;

struct Member {
    addr: String,
    ca: ClusterCa,
    _dir: tempfile::TempDir,
    _transport: Transport,
}

async fn member() -> Member {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate("test").unwrap();
    let listen: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let cert = ca
        .issue(&CertRequest::member(
            "store-1",
            &["localhost".into()],
            &certificate_ips(&listen),
        ))
        .unwrap();
    let tls = MemberTls {
        ca_pem: ca.cert_pem().to_string(),
        cert,
    };
    let transport = Transport::bind(1, listen, &tls).unwrap();
    let addr = transport.local_addr().unwrap().to_string();
    let mut peers = BTreeMap::new();
    peers.insert(1, addr.clone());
    let (handle, _thread) = raft_node::start(
        StoreConfig::new(1, dir.path().to_path_buf(), peers),
        Arc::new(transport.clone()),
    )
    .unwrap();
    transport.serve(handle);
    Member {
        addr,
        ca,
        _dir: dir,
        _transport: transport,
    }
}

fn admin_tls(ca: &ClusterCa) -> MemberTls {
    let cert = ca
        .issue(&CertRequest::client(
            "kubernetes-admin",
            &["system:masters"],
        ))
        .unwrap();
    MemberTls {
        ca_pem: ca.cert_pem().to_string(),
        cert,
    }
}

async fn put_works(m: &Member) {
    let c = StoreClient::connect(&m.addr, &admin_tls(&m.ca))
        .await
        .unwrap();
    for _ in 0..100 {
        if c.put(PutRequest::new("k", "v")).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the member no longer serves");
}

async fn raw_connection(m: &Member, with_cert: bool) -> quinn::Connection {
    let cert = admin_tls(&m.ca).cert;
    let rustls = tls::client_config(m.ca.cert_pem(), with_cert.then_some(&cert), &[ALPN]).unwrap();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(rustls).unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    ep.connect(m.addr.parse().unwrap(), "127.0.0.1")
        .unwrap()
        .await
        .unwrap()
}

async fn is_dropped(conn: &quinn::Connection) -> bool {
    tokio::time::timeout(Duration::from_secs(3), conn.closed())
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_drops_the_connection_not_the_member() {
    let m = member().await;
    put_works(&m).await;
    let conn = raw_connection(&m, true).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    send.write_all(b"whatever follows").await.unwrap();
    assert!(
        is_dropped(&conn).await,
        "an oversized frame must drop the connection"
    );
    put_works(&m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_drops_the_connection_not_the_member() {
    let m = member().await;
    let conn = raw_connection(&m, true).await;
    let mut send = conn.open_uni().await.unwrap();
    let mut garbage = vec![0, 0, 0, 40];
    garbage.extend((0..40u8).map(|i| i.wrapping_mul(97).wrapping_add(13)));
    send.write_all(&garbage).await.unwrap();
    let _ = send.finish();
    assert!(is_dropped(&conn).await, "garbage must drop the connection");
    put_works(&m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_a_certificate_is_refused() {
    let m = member().await;
    let conn = raw_connection(&m, false).await;
    // The handshake may complete; the member closes before serving anything.
    if let Ok((mut send, mut recv)) = conn.open_bi().await {
        let _ = send.write_all(&[0, 0, 0, 1, 0]).await;
        let _ = send.finish();
        let mut buf = [0u8; 1];
        let got = tokio::time::timeout(Duration::from_secs(3), recv.read(&mut buf)).await;
        assert!(
            !matches!(got, Ok(Ok(Some(_)))),
            "an unauthenticated peer got an answer"
        );
    }
    assert!(
        is_dropped(&conn).await,
        "an unauthenticated connection must be closed"
    );
    put_works(&m).await;
}
