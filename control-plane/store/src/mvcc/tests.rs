use super::*;

fn put(m: &mut Mvcc, k: &str, v: &str) -> PutResponse {
    match m.apply(&Command::Put(PutRequest::new(k, v))).result {
        Ok(CommandResponse::Put(r)) => r,
        other => panic!("put failed: {other:?}"),
    }
}

fn get(m: &Mvcc, k: &str) -> Option<KeyValue> {
    m.range(&RangeRequest::new(KeyRange::key(k)))
        .unwrap()
        .kvs
        .into_iter()
        .next()
}

fn cas(key: &str, mod_revision: Revision, value: &str) -> Command {
    Command::Txn(TxnRequest {
        compare: vec![Compare {
            key: key.into(),
            op: CompareOp::Equal,
            target: CompareTarget::ModRevision(mod_revision),
        }],
        success: vec![Op::Put(PutRequest::new(key, value))],
        failure: vec![Op::Range(RangeRequest::new(KeyRange::key(key)))],
    })
}

#[test]
fn every_write_bumps_the_global_revision_and_key_bookkeeping() {
    let mut m = Mvcc::new();
    assert_eq!(put(&mut m, "/registry/pods/a", "1").revision, 1);
    assert_eq!(put(&mut m, "/registry/pods/b", "1").revision, 2);
    assert_eq!(put(&mut m, "/registry/pods/a", "2").revision, 3);
    let a = get(&m, "/registry/pods/a").unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version), (1, 3, 2));
    assert_eq!(a.value, b"2");
    assert_eq!(m.revision(), 3);
}

#[test]
fn reads_at_an_old_revision_see_the_old_state() {
    let mut m = Mvcc::new();
    put(&mut m, "k", "old");
    put(&mut m, "k", "new");
    let mut req = RangeRequest::new(KeyRange::key("k"));
    req.revision = 1;
    assert_eq!(m.range(&req).unwrap().kvs[0].value, b"old");
    req.revision = 9;
    assert!(matches!(
        m.range(&req),
        Err(StoreError::FutureRevision { .. })
    ));
}

#[test]
fn prefix_range_with_limit_pages_through_keys() {
    let mut m = Mvcc::new();
    for name in ["a", "b", "c", "d"] {
        put(&mut m, &format!("/registry/pods/default/{name}"), "x");
    }
    put(&mut m, "/registry/pods/kube-system/e", "x");
    put(&mut m, "/registry/pods0", "not a pod");
    let mut req = RangeRequest::new(KeyRange::prefix("/registry/pods/default/"));
    req.limit = 3;
    let page = m.range(&req).unwrap();
    assert_eq!(page.kvs.len(), 3);
    assert!(page.more);
    assert_eq!(page.count, 4);
    // Continue after the last key returned.
    let mut next = page.kvs.last().unwrap().key.clone();
    next.push(0);
    req.range.key = next;
    let page2 = m.range(&req).unwrap();
    assert_eq!(page2.kvs.len(), 1);
    assert!(!page2.more);
    assert_eq!(
        m.range(&RangeRequest::new(KeyRange::prefix("/registry/pods/")))
            .unwrap()
            .count,
        5
    );
    assert_eq!(
        m.range(&RangeRequest::new(KeyRange::prefix("")))
            .unwrap()
            .count,
        6
    );
}

#[test]
fn an_inverted_range_is_empty_not_a_panic() {
    let mut m = Mvcc::new();
    put(&mut m, "b", "x");
    let req = RangeRequest::new(KeyRange {
        key: b"z".to_vec(),
        range_end: b"a".to_vec(),
    });
    assert_eq!(m.range(&req).unwrap().count, 0);
}

#[test]
fn delete_records_a_tombstone_and_recreate_restarts_version() {
    let mut m = Mvcc::new();
    put(&mut m, "k", "1");
    let applied = m.apply(&Command::Delete(DeleteRequest {
        range: KeyRange::key("k"),
        prev_kv: true,
    }));
    let Ok(CommandResponse::Delete(d)) = applied.result else {
        panic!()
    };
    assert_eq!((d.deleted, d.revision, d.prev_kvs.len()), (1, 2, 1));
    assert_eq!(applied.events[0].kind, EventKind::Delete);
    assert_eq!(applied.events[0].kv.mod_revision, 2);
    assert!(get(&m, "k").is_none());
    // Deleting nothing writes nothing.
    let none = m.apply(&Command::Delete(DeleteRequest::new(KeyRange::key("k"))));
    assert!(none.events.is_empty());
    assert_eq!(m.revision(), 2);
    put(&mut m, "k", "again");
    let k = get(&m, "k").unwrap();
    assert_eq!((k.create_revision, k.version), (3, 1));
}

#[test]
fn txn_compare_mod_revision_is_optimistic_concurrency() {
    let mut m = Mvcc::new();
    let r = put(&mut m, "k", "v1").revision;
    let Ok(CommandResponse::Txn(ok)) = m.apply(&cas("k", r, "v2")).result else {
        panic!()
    };
    assert!(ok.succeeded);
    assert_eq!(ok.revision, 2);
    // The stale writer loses and sees the current value.
    let Ok(CommandResponse::Txn(lost)) = m.apply(&cas("k", r, "v3")).result else {
        panic!()
    };
    assert!(!lost.succeeded);
    let OpResponse::Range(cur) = &lost.responses[0] else {
        panic!()
    };
    assert_eq!(cur.kvs[0].value, b"v2");
    assert_eq!(m.revision(), 2, "a failed compare writes nothing");
    // Create-if-absent: mod revision 0 means "no such key".
    let Ok(CommandResponse::Txn(created)) = m.apply(&cas("new", 0, "x")).result else {
        panic!()
    };
    assert!(created.succeeded);
}

#[test]
fn a_txn_writing_several_keys_is_one_revision() {
    let mut m = Mvcc::new();
    let txn = TxnRequest {
        compare: vec![],
        success: vec![
            Op::Put(PutRequest::new("a", "1")),
            Op::Put(PutRequest::new("b", "1")),
            Op::Range(RangeRequest::new(KeyRange::prefix(""))),
        ],
        failure: vec![],
    };
    let applied = m.apply(&Command::Txn(txn));
    let Ok(CommandResponse::Txn(t)) = applied.result else {
        panic!()
    };
    assert_eq!(t.revision, 1);
    assert_eq!(applied.events.len(), 2);
    let OpResponse::Range(seen) = &t.responses[2] else {
        panic!()
    };
    assert_eq!(seen.count, 2, "reads in a txn see its earlier writes");
}

#[test]
fn compaction_keeps_the_window_and_rejects_older_reads_and_watches() {
    let mut m = Mvcc::new();
    put(&mut m, "k", "1"); // 1
    put(&mut m, "k", "2"); // 2
    put(&mut m, "gone", "x"); // 3
    m.apply(&Command::Delete(DeleteRequest::new(KeyRange::key("gone")))); // 4
    put(&mut m, "k", "5"); // 5
    m.apply(&Command::Compact(4)).result.unwrap();
    let mut req = RangeRequest::new(KeyRange::key("k"));
    req.revision = 4;
    assert_eq!(m.range(&req).unwrap().kvs[0].value, b"2");
    req.revision = 3;
    assert_eq!(
        m.range(&req),
        Err(StoreError::Compacted {
            requested: 3,
            compact_revision: 4
        })
    );
    assert!(m.events_since(3, &KeyRange::prefix("")).is_err());
    assert_eq!(m.events_since(4, &KeyRange::prefix("")).unwrap().len(), 2);
    assert!(
        !m.keys.contains_key(b"gone".as_slice()),
        "deleted keys vanish after compaction"
    );
    assert!(m.apply(&Command::Compact(4)).result.is_err());
    assert!(m.apply(&Command::Compact(99)).result.is_err());
}

#[test]
fn revoking_a_lease_deletes_its_keys_in_one_revision() {
    let mut m = Mvcc::new();
    m.apply(&Command::LeaseGrant {
        id: 42,
        ttl_seconds: 10,
    })
    .result
    .unwrap();
    for k in ["/leases/a", "/leases/b"] {
        let mut p = PutRequest::new(k, "alive");
        p.lease = 42;
        m.apply(&Command::Put(p)).result.unwrap();
    }
    put(&mut m, "/other", "stays");
    let mut bad = PutRequest::new("/x", "y");
    bad.lease = 7;
    assert_eq!(
        m.apply(&Command::Put(bad)).result,
        Err(StoreError::LeaseNotFound(7))
    );
    let applied = m.apply(&Command::LeaseRevoke(42));
    assert_eq!(applied.events.len(), 2);
    assert_eq!(m.revision(), 4);
    assert!(get(&m, "/leases/a").is_none());
    assert!(get(&m, "/other").is_some());
    assert_eq!(
        m.apply(&Command::LeaseKeepAlive(42)).result,
        Err(StoreError::LeaseNotFound(42))
    );
}

#[test]
fn the_state_round_trips_through_a_snapshot_encoding() {
    let mut m = Mvcc::new();
    put(&mut m, "k", "v");
    let bytes = bincode::serde::encode_to_vec(&m, bincode::config::standard()).unwrap();
    let (back, _): (Mvcc, _) =
        bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
    assert_eq!(back, m);
}
