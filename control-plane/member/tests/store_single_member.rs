//! A single store member in-process, through `StoreHandle`: the API server's
//! view of the store. Proves writes, reads, watches, transactions, leases and
//! recovery from disk (log replay and snapshot) with a real Raft loop and a
//! real durable log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kc_member::store::raft_node::{self, NoPeers, StoreConfig};
use kc_member::store::*;

fn config(dir: &std::path::Path) -> StoreConfig {
    let mut peers = BTreeMap::new();
    peers.insert(1, "127.0.0.1:1".to_string());
    StoreConfig::new(1, dir.to_path_buf(), peers)
}

fn start(cfg: StoreConfig) -> (StoreHandle, std::thread::JoinHandle<()>) {
    raft_node::start(cfg, Arc::new(NoPeers)).expect("store starts")
}

async fn stop(h: StoreHandle, t: std::thread::JoinHandle<()>) {
    drop(h);
    tokio::task::spawn_blocking(move || t.join().unwrap())
        .await
        .unwrap();
}

async fn get(h: &StoreHandle, key: &str) -> Option<KeyValue> {
    h.range(RangeRequest::new(KeyRange::key(key)))
        .await
        .unwrap()
        .kvs
        .into_iter()
        .next()
}

async fn put_when_ready(h: &StoreHandle, key: &str, value: &str) -> PutResponse {
    // A fresh member elects itself within a few ticks.
    for _ in 0..100 {
        match h.put(PutRequest::new(key, value)).await {
            Ok(r) => return r,
            Err(StoreError::NoLeader) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("put failed: {e}"),
        }
    }
    panic!("no leader after 2 s");
}

#[tokio::test]
async fn writes_reads_watch_and_txn_through_the_handle() {
    let dir = tempfile::tempdir().unwrap();
    let (h, t) = start(config(dir.path()));
    let r1 = put_when_ready(&h, "/registry/pods/default/a", "A").await;
    let mut watch = h
        .watch(WatchRequest {
            range: KeyRange::prefix("/registry/pods/"),
            start_revision: r1.revision,
            prev_kv: false,
        })
        .await
        .unwrap();
    let r2 = h
        .put(PutRequest::new("/registry/pods/default/b", "B"))
        .await
        .unwrap();
    assert_eq!(r2.revision, r1.revision + 1);
    let listed = h
        .range(RangeRequest::new(KeyRange::prefix("/registry/pods/")))
        .await
        .unwrap();
    assert_eq!(listed.count, 2);
    assert_eq!(listed.revision, r2.revision);

    // Optimistic concurrency: a stale update loses.
    let cas = |rev, v: &str| TxnRequest {
        compare: vec![Compare {
            key: b"/registry/pods/default/a".to_vec(),
            op: CompareOp::Equal,
            target: CompareTarget::ModRevision(rev),
        }],
        success: vec![Op::Put(PutRequest::new("/registry/pods/default/a", v))],
        failure: vec![],
    };
    assert!(h.txn(cas(r1.revision, "A2")).await.unwrap().succeeded);
    assert!(!h.txn(cas(r1.revision, "A3")).await.unwrap().succeeded);
    assert_eq!(
        get(&h, "/registry/pods/default/a").await.unwrap().value,
        b"A2"
    );
    let del = h
        .delete(DeleteRequest::new(KeyRange::key(
            "/registry/pods/default/b",
        )))
        .await
        .unwrap();
    assert_eq!(del.deleted, 1);

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let resp = tokio::time::timeout(Duration::from_secs(2), watch.recv())
            .await
            .unwrap()
            .unwrap();
        let WatchResponse::Events(evs) = resp else {
            panic!("unexpected {resp:?}")
        };
        seen.extend(evs.into_iter().map(|e| (e.kind, e.kv.mod_revision)));
    }
    let revs: Vec<_> = seen.iter().map(|s| s.1).collect();
    assert_eq!(
        revs,
        vec![
            r1.revision,
            r1.revision + 1,
            r1.revision + 2,
            r1.revision + 3
        ]
    );
    assert_eq!(seen[3].0, EventKind::Delete);
    stop(h, t).await;
}

#[tokio::test]
async fn an_expired_lease_deletes_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (h, t) = start(config(dir.path()));
    put_when_ready(&h, "/other", "x").await;
    let lease = h.lease_grant(1).await.unwrap();
    let kept = h.lease_grant(1).await.unwrap();
    let mut p = PutRequest::new("/registry/leases/node-a", "alive");
    p.lease = lease.id;
    h.put(p).await.unwrap();
    let mut p = PutRequest::new("/registry/leases/node-b", "alive");
    p.lease = kept.id;
    h.put(p).await.unwrap();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(h.lease_keep_alive(kept.id).await.unwrap(), 1);
    }
    assert!(
        get(&h, "/registry/leases/node-a").await.is_none(),
        "expired lease's key is gone"
    );
    assert!(
        get(&h, "/registry/leases/node-b").await.is_some(),
        "kept-alive lease's key stays"
    );
    assert_eq!(
        h.lease_keep_alive(lease.id).await,
        Err(StoreError::LeaseNotFound(lease.id))
    );
    h.lease_revoke(kept.id).await.unwrap();
    assert!(get(&h, "/registry/leases/node-b").await.is_none());
    stop(h, t).await;
}

#[tokio::test]
async fn a_restarted_member_recovers_from_log_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.snapshot_every = 50;
    let (h, t) = start(cfg.clone());
    put_when_ready(&h, "k0", "v").await;
    for i in 1..120 {
        h.put(PutRequest::new(format!("k{i}"), format!("v{i}")))
            .await
            .unwrap();
    }
    let before = h
        .range(RangeRequest::new(KeyRange::prefix("k")))
        .await
        .unwrap();
    stop(h, t).await;
    assert!(dir.path().join("snapshot").exists(), "a snapshot was taken");

    let (h, t) = start(cfg);
    let mut after = None;
    for _ in 0..100 {
        match h.range(RangeRequest::new(KeyRange::prefix("k"))).await {
            Ok(r) if r.revision == before.revision => {
                after = Some(r);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let after = after.expect("the restarted member reaches the old revision");
    assert_eq!(after.kvs, before.kvs);
    let next = h.put(PutRequest::new("k-new", "v")).await.unwrap();
    assert_eq!(next.revision, before.revision + 1);
    stop(h, t).await;
}
