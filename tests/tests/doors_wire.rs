//! Bad input at kc's QUIC doors, end to end, on real sockets:
//!
//! - a store member (`kcnode store member`) gets random bytes, an oversized
//!   length prefix, a valid opening followed by garbage, and the opening of
//!   another major wire version, each on a connection of a client holding a
//!   valid member certificate: the member closes that connection with the
//!   reason as its close reason (the version mismatch named), logs it, and
//!   keeps serving others (a put after every case).
//! - the node API of `kcnode init` (join protocol, no certificate needed)
//!   gets random bytes and oversized prefixes on streams: they are dropped
//!   with a warning and the API keeps answering; a `Hello` of another major
//!   version is answered with a clear refusal; a newer minor version of the
//!   same major is served (the compatibility rule of `kc_protocol::frame`).
//! - the node's stream server (`kcnode stream-stdio` serves a stream as the
//!   node serves one the API server opens) answers a `Hello` of another
//!   major version with a failure naming both versions.

use std::time::Duration;

use kc_agent::node_client as client;
use kc_member::store::transport::{quic_client_config, server_name};
use kc_member::store::wire::{Opening, StreamKind};
use kc_protocol::frame::{Hello, PROTOCOL_VERSION, encode};
use kc_protocol::node_api::{JoinMessage, JoinResponse};
use kc_tests::cluster::Lan;
use kc_tests::fuzz;
use kc_tests::store_cluster::StoreCluster;

const RANDOM_CASES: usize = 20;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Sends `bytes` on a new two-way stream of a fresh store connection and
/// returns how the member closed the connection (None: it did not, within 5 s).
async fn store_case(cluster: &StoreCluster, bytes: &[u8]) -> Option<String> {
    let mut endpoint =
        quinn::Endpoint::client("127.0.0.1:0".parse().expect("address")).expect("client endpoint");
    endpoint.set_default_client_config(quic_client_config(cluster.tls()).expect("client config"));
    let addr = cluster.address(1);
    let conn = endpoint
        .connect(addr.parse().expect("member address"), &server_name(&addr))
        .expect("connect")
        .await
        .expect("handshake with the member");
    let (mut send, _recv) = conn.open_bi().await.expect("open a stream");
    let _ = send.write_all(bytes).await;
    let _ = send.finish();
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .ok()
        .map(|e| e.to_string());
    endpoint.close(0u32.into(), b"done");
    closed
}

fn opening(version: u32) -> Vec<u8> {
    encode(&Opening {
        hello: Hello { version, minor: 0 },
        kind: StreamKind::Client,
    })
    .expect("encode")
}

#[test]
fn a_store_member_drops_bad_connections_with_a_reason_and_keeps_serving() {
    let cluster = StoreCluster::start(1, &[]);
    let rt = runtime();
    rt.block_on(cluster.put(1, "/before", "1"));
    let mut rng = fuzz::rng(11);
    let mut closed = 0;
    for case in 0..RANDOM_CASES {
        let bytes = fuzz::garbage(&mut rng, 3000);
        if rt.block_on(store_case(&cluster, &bytes)).is_some() {
            closed += 1;
        }
        rt.block_on(cluster.put(1, &format!("/after-random-{case}"), "1"));
    }
    assert!(
        closed > RANDOM_CASES / 2,
        "{closed} of {RANDOM_CASES} random cases closed"
    );

    let mut garbage_after_opening = opening(PROTOCOL_VERSION);
    garbage_after_opening.extend([0, 0, 0, 3, 0xff, 0xfe, 0xfd]);
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "oversized length",
            vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
            "exceeds the limit",
        ),
        (
            "garbage after a valid opening",
            garbage_after_opening,
            "undecodable",
        ),
        (
            "another major version",
            opening(PROTOCOL_VERSION + 1),
            "version 2",
        ),
    ];
    for (what, bytes, reason) in cases {
        let how = rt
            .block_on(store_case(&cluster, &bytes))
            .unwrap_or_else(|| panic!("{what}: the member kept the connection open"));
        assert!(
            how.contains(reason),
            "{what}: closed with {how:?}, want {reason:?}"
        );
        rt.block_on(cluster.put(1, &format!("/after-{}", what.replace(' ', "-")), "1"));
    }
    let log = cluster.log_of(1);
    assert!(log.contains("dropping connection"), "no error log:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    let status = rt.block_on(cluster.status(1));
    assert!(status.leader != 0, "{status:?}");
}

/// One join-protocol stream: send `bytes`, read what comes back (up to 1 MiB).
async fn join_stream(conn: &quinn::Connection, bytes: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = conn.open_bi().await.expect("open a stream");
    let _ = send.write_all(bytes).await;
    let _ = send.finish();
    tokio::time::timeout(Duration::from_secs(5), recv.read_to_end(1 << 20))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

fn answer(bytes: &[u8]) -> JoinResponse {
    assert!(bytes.len() > 4, "no answer");
    kc_protocol::frame::decode(&bytes[4..]).expect("a JoinResponse frame")
}

#[test]
fn the_node_api_drops_bad_streams_refuses_other_majors_and_serves_newer_minors() {
    let mut lan = Lan::new();
    let cp = lan.host("cp");
    let mut init = cp.spawn("init", &["init", "--heartbeat", "1s"]);
    init.wait_line("kcnode join", Duration::from_secs(60));
    let master = format!("{}:7000", cp.ip);
    let netns = format!("/run/netns/{}", cp.ns.name);

    let result = std::thread::spawn(move || {
        let file = std::fs::File::open(&netns).expect("open the host's netns");
        // SAFETY: setns on a valid namespace fd; affects only this thread.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        runtime().block_on(async {
            let conn = client::connect_unverified(&master)
                .await
                .expect("join connection");
            let mut rng = fuzz::rng(12);
            for _ in 0..RANDOM_CASES {
                let bytes = fuzz::garbage(&mut rng, 3000);
                let _ = join_stream(&conn, &bytes).await;
            }
            let _ = join_stream(&conn, &[0xff, 0xff, 0xff, 0xff, 0]).await;

            let ask = |version: u32, minor: u32| {
                let mut b = encode(&Hello { version, minor }).expect("encode");
                b.extend(encode(&JoinMessage::GetCa).expect("encode"));
                b
            };
            let refused = answer(&join_stream(&conn, &ask(PROTOCOL_VERSION + 1, 0)).await);
            let JoinResponse::Refused(why) = refused else {
                panic!("another major version served: {refused:?}");
            };
            assert!(
                why.contains("version 2") && why.contains("major"),
                "refusal: {why}"
            );
            let newer = answer(&join_stream(&conn, &ask(PROTOCOL_VERSION, 9)).await);
            assert!(
                matches!(newer, JoinResponse::Ca { .. }),
                "a newer minor is served: {newer:?}"
            );
            // Still serving, on this connection and on a new one.
            client::fetch_ca(&master)
                .await
                .expect("fetch the CA after the garbage")
        })
    })
    .join();
    let ca = match result {
        Ok(ca) => ca,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    assert!(ca.contains("BEGIN CERTIFICATE"), "{ca}");
    let log = init.stderr();
    assert!(log.contains("join exchange failed"), "no error log:\n{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn the_node_stream_server_refuses_another_major_version_with_a_reason() {
    use std::io::{Read, Write};
    let node = kc_tests::container::Node::new();
    let mut child = node
        .cmd()
        .args(["stream-stdio", "--container", "none"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn kcnode stream-stdio");
    let hello = encode(&Hello {
        version: PROTOCOL_VERSION + 1,
        minor: 0,
    })
    .expect("encode");
    let stdin = child.stdin.as_mut().expect("piped stdin");
    stdin.write_all(&hello).expect("write the hello");
    stdin.flush().expect("flush");
    let mut answer = Vec::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_end(&mut answer)
        .expect("read the answer");
    let _ = child.wait();
    assert!(answer.len() > 4, "no answer to another major version");
    let accept: kc_protocol::streams::StreamAccept =
        kc_protocol::frame::decode(&answer[4..]).expect("a StreamAccept frame");
    match accept {
        kc_protocol::streams::StreamAccept::Failed { message, .. } => {
            assert!(message.contains("version 2"), "{message}")
        }
        other => panic!("another major version accepted: {other:?}"),
    }
}
