//! The replicated store as real processes: `kcnode store member` x3 on
//! loopback, QUIC with mutual TLS, driven by the network client.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kc_member::store::client::{ClientError, StoreClient};
use kc_member::store::wire::ClientRequest;
use kc_member::store::*;
use kc_tests::linearizability::{Operation, RegisterOp, check_register};
use kc_tests::store_cluster::StoreCluster;

async fn all_kvs(c: &StoreClient, prefix: &str) -> Vec<KeyValue> {
    let mut req = RangeRequest::new(KeyRange::prefix(prefix));
    req.serializable = true;
    c.range(req).await.expect("range").kvs
}

/// Wait until member `id` has applied up to `revision`.
async fn await_revision(cluster: &StoreCluster, id: u64, revision: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let s = cluster.status(id).await;
        if s.revision >= revision {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "member {id} stuck at revision {} (want {revision})",
            s.revision
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_any_member_reach_all_members() {
    let cluster = StoreCluster::start(3, &[]);
    cluster.leader(&[1, 2, 3], Duration::from_secs(10)).await;
    let mut last = 0;
    for id in 1..=3u64 {
        for i in 0..5 {
            last = cluster
                .put(id, &format!("/registry/pods/default/p{id}-{i}"), "x")
                .await;
        }
    }
    for id in 1..=3u64 {
        await_revision(&cluster, id, last, Duration::from_secs(5)).await;
        let kvs = all_kvs(&cluster.client(id).await, "/registry/pods/").await;
        assert_eq!(kvs.len(), 15, "member {id} has every write");
    }
    // A watch on one member sees a write made on another.
    let mut watch = cluster
        .client(3)
        .await
        .watch(WatchRequest {
            range: KeyRange::prefix("/registry/"),
            start_revision: 0,
            prev_kv: false,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rev = cluster.put(1, "/registry/pods/default/late", "y").await;
    let got = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap();
    let Some(WatchResponse::Events(evs)) = got else {
        panic!("unexpected {got:?}")
    };
    assert_eq!(evs[0].kv.mod_revision, rev);
}

/// One client's view of a register operation, for the checker.
fn record(history: &Mutex<BTreeMap<String, Vec<Operation>>>, key: &str, op: Operation) {
    history
        .lock()
        .unwrap()
        .entry(key.to_string())
        .or_default()
        .push(op);
}

/// Was the outcome of a failed write unknown (it may have committed)?
fn outcome_unknown(e: &ClientError) -> bool {
    !matches!(
        e.store_error(),
        Some(StoreError::NoLeader | StoreError::LeaseNotFound(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_loses_no_acknowledged_write_and_history_is_linearizable() {
    let mut cluster = StoreCluster::start(3, &[]);
    let leader = cluster.leader(&[1, 2, 3], Duration::from_secs(10)).await;
    let t0 = Instant::now();
    let now = move || t0.elapsed().as_nanos() as u64;
    let history: Arc<Mutex<BTreeMap<String, Vec<Operation>>>> = Arc::default();
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addrs: Vec<String> = (1..=3).map(|id| cluster.address(id)).collect();
    let mut tasks = Vec::new();
    for client in 0..5usize {
        let (history, acked, stop, addrs) =
            (history.clone(), acked.clone(), stop.clone(), addrs.clone());
        let tls = cluster.tls().clone();
        tasks.push(tokio::spawn(async move {
            let mut member = client % 3;
            let mut conn: Option<StoreClient> = None;
            let mut seq = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let c = match &conn {
                    Some(c) => c.clone(),
                    None => match StoreClient::connect(&addrs[member], &tls).await {
                        Ok(c) => {
                            conn = Some(c.clone());
                            c
                        }
                        Err(_) => {
                            member = (member + 1) % 3;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    },
                };
                seq += 1;
                let value = client as u64 * 1_000_000 + seq;
                let key = format!("r{}", seq % 2);
                let call = now();
                let timeout = Duration::from_secs(3);
                let (op, failed) = match seq % 4 {
                    0 => {
                        let r = tokio::time::timeout(
                            timeout,
                            c.range(RangeRequest::new(KeyRange::key(key.clone()))),
                        )
                        .await;
                        match r {
                            Ok(Ok(r)) => {
                                let v = r
                                    .kvs
                                    .first()
                                    .map(|kv| String::from_utf8_lossy(&kv.value).parse().unwrap());
                                (Some((RegisterOp::Read { value: v }, Some(now()))), false)
                            }
                            _ => (None, true),
                        }
                    }
                    1 => {
                        // Compare-and-set from what a serializable read saw.
                        let mut rr = RangeRequest::new(KeyRange::key(key.clone()));
                        rr.serializable = true;
                        let expected: Option<u64> = match c.range(rr).await {
                            Ok(r) => r
                                .kvs
                                .first()
                                .map(|kv| String::from_utf8_lossy(&kv.value).parse().unwrap()),
                            Err(_) => None,
                        };
                        let target = match expected {
                            Some(v) => CompareTarget::Value(v.to_string().into_bytes()),
                            None => CompareTarget::Version(0),
                        };
                        let txn = TxnRequest {
                            compare: vec![Compare {
                                key: key.clone().into_bytes(),
                                op: CompareOp::Equal,
                                target,
                            }],
                            success: vec![Op::Put(PutRequest::new(key.clone(), value.to_string()))],
                            failure: vec![],
                        };
                        let call = now();
                        match tokio::time::timeout(timeout, c.txn(txn)).await {
                            Ok(Ok(t)) => (
                                Some((
                                    RegisterOp::Cas {
                                        expected,
                                        new: value,
                                        ok: Some(t.succeeded),
                                    },
                                    Some(now()),
                                )),
                                false,
                            ),
                            Ok(Err(e)) if !outcome_unknown(&e) => (None, true),
                            _ => {
                                record(
                                    &history,
                                    &key,
                                    Operation {
                                        client,
                                        op: RegisterOp::Cas {
                                            expected,
                                            new: value,
                                            ok: None,
                                        },
                                        call,
                                        ret: None,
                                    },
                                );
                                (None, true)
                            }
                        }
                    }
                    _ => {
                        let r = tokio::time::timeout(
                            timeout,
                            c.put(PutRequest::new(key.clone(), value.to_string())),
                        )
                        .await;
                        match r {
                            Ok(Ok(_)) => {
                                let ret = now();
                                // Also an acknowledged write under a unique key.
                                let unique = format!("ack/{client}/{seq}");
                                if let Ok(Ok(_)) = tokio::time::timeout(
                                    timeout,
                                    c.put(PutRequest::new(unique.clone(), "1")),
                                )
                                .await
                                {
                                    acked.lock().unwrap().insert(unique);
                                }
                                (Some((RegisterOp::Write { value }, Some(ret))), false)
                            }
                            Ok(Err(e)) if !outcome_unknown(&e) => (None, true),
                            _ => (Some((RegisterOp::Write { value }, None)), true),
                        }
                    }
                };
                if let Some((op, ret)) = op {
                    record(
                        &history,
                        &key,
                        Operation {
                            client,
                            op,
                            call,
                            ret,
                        },
                    );
                }
                if failed {
                    conn = None;
                    member = (member + 1) % 3;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = acked.lock().unwrap().len();
    let killed_at = Instant::now();
    cluster.kill(leader);
    // A new leader serves writes within the election timeout (~0.5-1 s) plus slack.
    let survivors: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let mut first_write = None;
    while killed_at.elapsed() < Duration::from_secs(5) {
        let n = acked.lock().unwrap().len();
        if n > before_kill + 5 {
            first_write = Some(killed_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let first_write = first_write.expect("writes resume after the leader is killed");
    eprintln!("writes resumed {first_write:?} after kill -9 of leader {leader}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    // Every acknowledged write is on every surviving member.
    let new_leader = cluster.leader(&survivors, Duration::from_secs(5)).await;
    let top = cluster
        .client(new_leader)
        .await
        .range(RangeRequest::new(KeyRange::prefix("")))
        .await
        .unwrap()
        .revision;
    for &id in &survivors {
        await_revision(&cluster, id, top, Duration::from_secs(5)).await;
        let have: BTreeSet<String> = all_kvs(&cluster.client(id).await, "ack/")
            .await
            .into_iter()
            .map(|kv| String::from_utf8(kv.key).unwrap())
            .collect();
        let acked = acked.lock().unwrap();
        let missing: Vec<_> = acked.difference(&have).collect();
        assert!(
            missing.is_empty(),
            "member {id} lost acknowledged writes: {missing:?}"
        );
    }
    let history = history.lock().unwrap();
    for (key, ops) in history.iter() {
        assert!(
            ops.len() > 20,
            "too few operations on {key} to mean anything: {}",
            ops.len()
        );
        assert!(
            check_register(ops, None),
            "history of {key} is not linearizable: {ops:#?}"
        );
    }
    eprintln!(
        "checked {} operations, {} acknowledged unique writes",
        history.values().map(Vec::len).sum::<usize>(),
        acked.lock().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_killed_and_restarted_keeps_every_write() {
    let mut cluster = StoreCluster::start(3, &["--snapshot-every", "70"]);
    cluster.leader(&[1, 2, 3], Duration::from_secs(10)).await;
    let mut last = 0;
    for i in 0..150 {
        last = cluster
            .put(1 + i % 3, &format!("k{i:03}"), &format!("v{i}"))
            .await;
    }
    for id in 1..=3 {
        cluster.kill(id);
    }
    for id in 1..=3 {
        cluster.spawn(id, false);
    }
    cluster.leader(&[1, 2, 3], Duration::from_secs(10)).await;
    for id in 1..=3 {
        await_revision(&cluster, id, last, Duration::from_secs(5)).await;
        let kvs = all_kvs(&cluster.client(id).await, "k").await;
        assert_eq!(kvs.len(), 150, "member {id} kept every write");
        assert_eq!(kvs[149].value, b"v149");
    }
    let next = cluster.put(2, "after", "restart").await;
    assert_eq!(next, last + 1, "the revision continues where it was");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_minority_commits_nothing_and_heals_without_divergence() {
    let cluster = StoreCluster::start(3, &[]);
    let leader = cluster.leader(&[1, 2, 3], Duration::from_secs(10)).await;
    let minority = (1..=3).find(|id| *id != leader).unwrap();
    let majority: Vec<u64> = (1..=3).filter(|id| *id != minority).collect();
    let before = cluster.put(leader, "before", "1").await;
    await_revision(&cluster, minority, before, Duration::from_secs(5)).await;
    let cut = cluster.client(minority).await;
    cut.call(ClientRequest::SetIsolated(true)).await.unwrap();
    // Messages already inside the member before the cut may still apply.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frozen = cut.status().await.unwrap().revision;
    let attempt = cut.put(PutRequest::new("from-minority", "x")).await;
    assert!(
        attempt.is_err(),
        "an isolated member must not commit: {attempt:?}"
    );
    let mut last = 0;
    for i in 0..20 {
        last = cluster
            .put(majority[i % 2], &format!("during/{i}"), "y")
            .await;
    }
    assert_eq!(
        cut.status().await.unwrap().revision,
        frozen,
        "the minority applied nothing"
    );
    cut.call(ClientRequest::SetIsolated(false)).await.unwrap();
    for id in 1..=3 {
        await_revision(&cluster, id, last, Duration::from_secs(10)).await;
    }
    let reference = all_kvs(&cluster.client(1).await, "").await;
    assert!(!reference.iter().any(|kv| kv.key == b"from-minority"));
    for id in 2..=3 {
        assert_eq!(
            all_kvs(&cluster.client(id).await, "").await,
            reference,
            "member {id} diverged"
        );
    }
}

/// Kill a follower, write `n` keys of `value_size` bytes (the log is
/// compacted meanwhile), restart it: it must catch up by snapshot.
async fn catch_up_by_snapshot(n: usize, value_size: usize) {
    let mut cluster = StoreCluster::start(3, &["--snapshot-every", "50"]);
    let leader = cluster.leader(&[1, 2, 3], Duration::from_secs(10)).await;
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    cluster.kill(lagging);
    let value = "v".repeat(value_size);
    let mut last = 0;
    for i in 0..n {
        last = cluster.put(leader, &format!("s/{i:03}"), &value).await;
    }
    cluster.spawn(lagging, false);
    await_revision(&cluster, lagging, last, Duration::from_secs(20)).await;
    assert!(
        cluster
            .log_of(lagging)
            .contains("installed a snapshot from the leader"),
        "the lagging member should have caught up by snapshot"
    );
    let kvs = all_kvs(&cluster.client(lagging).await, "s/").await;
    assert_eq!(kvs.len(), n);
    assert!(kvs.iter().all(|kv| kv.value.len() == value_size));
    // And it keeps following by log afterwards.
    let next = cluster.put(leader, "s/after", "v").await;
    await_revision(&cluster, lagging, next, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_down_across_a_compaction_catches_up_from_a_snapshot() {
    catch_up_by_snapshot(200, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_larger_than_a_frame_travels_in_chunks() {
    // 60 x 100 KiB: the snapshot is ~6 MiB, two 4 MiB chunks.
    catch_up_by_snapshot(60, 100 * 1024).await;
}

/// Wait until member `id` has applied a configuration with these voters.
async fn await_voters(cluster: &StoreCluster, id: u64, voters: &[u64]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = cluster.status(id).await;
        if s.voters == voters {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "member {id} has voters {:?}, want {voters:?}",
            s.voters
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kcnode_store(cluster: &StoreCluster, args: &[&str]) -> String {
    let out = std::process::Command::new(kc_tests::bin("kcnode"))
        .arg("store")
        .args(args)
        .arg("--pki-dir")
        .arg(&cluster.pki)
        .output()
        .expect("run kcnode store");
    assert!(
        out.status.success(),
        "kcnode store {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_grows_from_one_to_three_to_five_and_shrinks_back() {
    let mut cluster = StoreCluster::start(1, &[]);
    cluster.leader(&[1], Duration::from_secs(10)).await;
    cluster.put(1, "solo", "1").await;
    for id in [2, 3] {
        cluster.add_member_process(id);
        cluster.spawn(id, true);
        let (e1, addr) = (cluster.address(1), cluster.address(id));
        kcnode_store(
            &cluster,
            &[
                "member-add",
                "--endpoints",
                &e1,
                "--id",
                &id.to_string(),
                "--address",
                &addr,
            ],
        );
    }
    // Every member, founders and newcomers alike, sees the same voters.
    for id in 1..=3 {
        await_voters(&cluster, id, &[1, 2, 3]).await;
    }
    assert!(cluster.status(1).await.learners.is_empty());
    let rev = cluster.put(3, "grown", "3").await;
    await_revision(&cluster, 2, rev, Duration::from_secs(5)).await;
    assert_eq!(all_kvs(&cluster.client(2).await, "").await.len(), 2);

    // On to five, added through any member (the command finds the leader).
    let endpoints = (1..=3)
        .map(|id| cluster.address(id))
        .collect::<Vec<_>>()
        .join(",");
    for id in [4, 5] {
        cluster.add_member_process(id);
        cluster.spawn(id, true);
        let addr = cluster.address(id);
        kcnode_store(
            &cluster,
            &[
                "member-add",
                "--endpoints",
                &endpoints,
                "--id",
                &id.to_string(),
                "--address",
                &addr,
            ],
        );
    }
    for id in 1..=5 {
        await_voters(&cluster, id, &[1, 2, 3, 4, 5]).await;
    }
    let rev = cluster.put(5, "five", "5").await;
    await_revision(&cluster, 4, rev, Duration::from_secs(5)).await;

    // Shrink back to member 1 alone; it keeps serving.
    let e1 = cluster.address(1);
    for id in [5, 4, 3, 2] {
        kcnode_store(
            &cluster,
            &["member-remove", "--endpoints", &e1, "--id", &id.to_string()],
        );
        cluster.stop(id);
    }
    let s = cluster.status(1).await;
    assert_eq!(s.voters, vec![1]);
    let after = cluster.put(1, "shrunk", "1").await;
    assert_eq!(after, rev + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_to_the_member_asked_for() {
    let cluster = StoreCluster::start(3, &[]);
    let leader = cluster.leader(&[1, 2, 3], Duration::from_secs(10)).await;
    let target = (1..=3).find(|id| *id != leader).unwrap();
    let endpoints = (1..=3)
        .map(|id| cluster.address(id))
        .collect::<Vec<_>>()
        .join(",");
    kcnode_store(
        &cluster,
        &[
            "transfer-leader",
            "--endpoints",
            &endpoints,
            "--to",
            &target.to_string(),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if cluster.leader(&[1, 2, 3], Duration::from_secs(5)).await == target {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leadership did not move to {target}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.put(leader, "after-transfer", "ok").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_expires_leases_and_old_watches_are_told_compacted() {
    let cluster = StoreCluster::start(3, &[]);
    let leader = cluster.leader(&[1, 2, 3], Duration::from_secs(10)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let c = cluster.client(follower).await;
    let lease = match c
        .call(ClientRequest::LeaseGrant { ttl_seconds: 1 })
        .await
        .unwrap()
    {
        kc_member::store::wire::ClientResponse::LeaseGranted(l) => l.id,
        other => panic!("unexpected {other:?}"),
    };
    let mut p = PutRequest::new("/registry/leases/kube-node-lease/n1", "alive");
    p.lease = lease;
    let first = c.put(p).await.unwrap().revision;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let kvs = all_kvs(&c, "/registry/leases/").await;
        if kvs.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the lease never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Compact past the lease's key, then watch from before it.
    let top = cluster.put(leader, "x", "y").await;
    c.call(ClientRequest::Compact(top)).await.unwrap();
    let mut w = c
        .watch(WatchRequest {
            range: KeyRange::prefix("/registry/"),
            start_revision: first,
            prev_kv: false,
        })
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        Some(WatchResponse::Cancelled(WatchCancelReason::Compacted {
            compact_revision: top
        }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_a_corrupt_log_refuses_to_start() {
    let mut cluster = StoreCluster::start(1, &[]);
    cluster.leader(&[1], Duration::from_secs(10)).await;
    for i in 0..20 {
        cluster
            .put(1, &format!("k{i}"), "some value worth keeping")
            .await;
    }
    cluster.stop(1);
    // Flip a byte in the middle of the write-ahead log.
    let wal = cluster.members[&1].data_dir.join("wal");
    let mut bytes = std::fs::read(&wal).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&wal, bytes).unwrap();
    let out = std::process::Command::new(kc_tests::bin("kcnode"))
        .args([
            "store",
            "member",
            "--id",
            "1",
            "--listen",
            &cluster.address(1),
        ])
        .arg("--peers")
        .arg(format!("1={}", cluster.address(1)))
        .arg("--pki-dir")
        .arg(&cluster.pki)
        .arg("--data-dir")
        .arg(&cluster.members[&1].data_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a member must not start on a corrupt log"
    );
    assert!(
        stderr.contains("corrupt record") && stderr.contains("wal"),
        "unclear error: {stderr}"
    );
}
