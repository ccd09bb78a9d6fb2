use super::*;

/// The log starts after the bootstrap snapshot: entry indexes from here on.
const FIRST: u64 = BOOTSTRAP_INDEX + 1;

fn entry(index: u64, term: u64, data: &str) -> Entry {
    Entry {
        index,
        term,
        data: data.as_bytes().to_vec().into(),
        ..Default::default()
    }
}

fn hs(term: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote: 1,
        commit,
        ..Default::default()
    }
}

fn fresh(dir: &Path, voters: Vec<u64>) -> DiskLog {
    let mut log = DiskLog::open(dir).unwrap();
    log.bootstrap(voters, b"initial state".to_vec()).unwrap();
    log
}

fn all_entries(log: &DiskLog) -> Vec<(u64, u64, Vec<u8>)> {
    let s = log.storage();
    let (first, last) = (s.first_index().unwrap(), s.last_index().unwrap());
    if last < first {
        return vec![];
    }
    s.entries(first, last + 1, None, GetEntriesContext::empty(false))
        .unwrap()
        .into_iter()
        .map(|e| (e.index, e.term, e.data.to_vec()))
        .collect()
}

#[test]
fn a_new_cluster_starts_from_a_snapshot_with_its_voters() {
    let dir = tempfile::tempdir().unwrap();
    drop(fresh(dir.path(), vec![1, 2, 3]));
    let log = DiskLog::open(dir.path()).unwrap();
    assert!(log.is_initialized());
    let snap = log.storage().snapshot(0, 0).unwrap();
    assert_eq!(snap.get_metadata().index, BOOTSTRAP_INDEX);
    assert_eq!(snap.get_metadata().get_conf_state().voters, vec![1, 2, 3]);
    assert_eq!(snap.get_data(), b"initial state");
    assert_eq!(log.storage().first_index().unwrap(), FIRST);
}

#[test]
fn entries_and_hard_state_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = fresh(dir.path(), vec![1, 2, 3]);
        log.append(
            &[entry(FIRST, 2, "a"), entry(FIRST + 1, 2, "b")],
            Some(&hs(2, FIRST + 1)),
            true,
        )
        .unwrap();
        // A new leader overwrites the second entry.
        log.append(
            &[entry(FIRST + 1, 3, "B"), entry(FIRST + 2, 3, "c")],
            Some(&hs(3, FIRST + 1)),
            true,
        )
        .unwrap();
    }
    let log = DiskLog::open(dir.path()).unwrap();
    assert_eq!(
        all_entries(&log),
        vec![
            (FIRST, 2, b"a".to_vec()),
            (FIRST + 1, 3, b"B".to_vec()),
            (FIRST + 2, 3, b"c".to_vec())
        ]
    );
    let state = log.storage().initial_state().unwrap();
    assert_eq!(
        (state.hard_state.term, state.hard_state.commit),
        (3, FIRST + 1)
    );
    assert_eq!(state.conf_state.voters, vec![1, 2, 3]);
}

#[test]
fn a_torn_last_record_is_truncated_with_the_rest_intact() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = fresh(dir.path(), vec![1]);
        log.append(&[entry(FIRST, 2, "kept")], Some(&hs(2, FIRST)), true)
            .unwrap();
        log.append(&[entry(FIRST + 1, 2, "torn")], None, true)
            .unwrap();
    }
    let wal = dir.path().join("wal");
    let len = fs::metadata(&wal).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let mut log = DiskLog::open(dir.path()).unwrap();
    assert_eq!(all_entries(&log), vec![(FIRST, 2, b"kept".to_vec())]);
    // The log goes on from there.
    log.append(&[entry(FIRST + 1, 2, "next")], None, true)
        .unwrap();
    drop(log);
    assert_eq!(all_entries(&DiskLog::open(dir.path()).unwrap()).len(), 2);
}

#[test]
fn a_checksum_failure_in_the_middle_is_reported_not_served() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = fresh(dir.path(), vec![1]);
        log.append(
            &[entry(FIRST, 2, "aaaaaaaaaaaaaaaa")],
            Some(&hs(2, FIRST)),
            true,
        )
        .unwrap();
        log.append(&[entry(FIRST + 1, 2, "bbbb")], None, true)
            .unwrap();
    }
    let wal = dir.path().join("wal");
    let mut bytes = fs::read(&wal).unwrap();
    let pos = bytes.windows(4).position(|w| w == b"aaaa").unwrap();
    bytes[pos] ^= 0xff;
    fs::write(&wal, bytes).unwrap();
    let err = DiskLog::open(dir.path())
        .err()
        .expect("corruption must be detected");
    let msg = err.to_string();
    assert!(
        msg.contains("checksum mismatch") && msg.contains("wal"),
        "{msg}"
    );
}

#[test]
fn a_snapshot_compacts_the_log_and_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = fresh(dir.path(), vec![1]);
        let entries: Vec<_> = (FIRST..FIRST + 10).map(|i| entry(i, 2, "x")).collect();
        log.append(&entries, Some(&hs(2, FIRST + 9)), true).unwrap();
        log.compact(
            FIRST + 7,
            ConfState::from((vec![1], vec![])),
            b"state".to_vec(),
        )
        .unwrap();
        assert_eq!(log.snapshot_index(), FIRST + 7);
    }
    let log = DiskLog::open(dir.path()).unwrap();
    let snap = log.storage().snapshot(0, 0).unwrap();
    assert_eq!(snap.get_data(), b"state");
    assert_eq!(snap.get_metadata().index, FIRST + 7);
    let idx: Vec<u64> = all_entries(&log).iter().map(|e| e.0).collect();
    assert_eq!(idx, vec![FIRST + 8, FIRST + 9]);
    assert_eq!(
        log.storage().initial_state().unwrap().hard_state.commit,
        FIRST + 9
    );
}

#[test]
fn a_damaged_snapshot_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = fresh(dir.path(), vec![1]);
        log.append(
            &[entry(FIRST, 2, "x"), entry(FIRST + 1, 2, "y")],
            Some(&hs(2, FIRST + 1)),
            true,
        )
        .unwrap();
        log.compact(
            FIRST + 1,
            ConfState::from((vec![1], vec![])),
            b"some state".to_vec(),
        )
        .unwrap();
    }
    let path = dir.path().join("snapshot");
    let mut bytes = fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 0x55;
    fs::write(&path, bytes).unwrap();
    let msg = DiskLog::open(dir.path())
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        msg.contains("snapshot") && msg.contains("checksum"),
        "{msg}"
    );
}

#[test]
fn a_snapshot_written_elsewhere_is_adopted_unless_a_newer_one_arrived() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = fresh(dir.path(), vec![1]);
    let entries: Vec<_> = (FIRST..FIRST + 10).map(|i| entry(i, 2, "x")).collect();
    log.append(&entries, Some(&hs(2, FIRST + 9)), true).unwrap();
    let conf = ConfState::from((vec![1], vec![]));
    // Taken at FIRST + 4 off the store thread...
    let mut old = log.snapshot_meta(FIRST + 4, conf.clone()).unwrap();
    old.set_data(b"old".to_vec().into());
    DiskLog::write_pending(&log.pending_path(), &old).unwrap();
    log.adopt_pending(old.clone()).unwrap();
    assert_eq!(log.snapshot_index(), FIRST + 4);
    assert_eq!(log.storage().first_index().unwrap(), FIRST + 4);
    // ...a newer one came meanwhile: the older one is dropped.
    log.compact(FIRST + 8, conf, b"new".to_vec()).unwrap();
    DiskLog::write_pending(&log.pending_path(), &old).unwrap();
    log.adopt_pending(old).unwrap();
    assert_eq!(log.snapshot_index(), FIRST + 8);
    assert!(!log.pending_path().exists());
    drop(log);
    let log = DiskLog::open(dir.path()).unwrap();
    assert_eq!(log.storage().snapshot(0, 0).unwrap().get_data(), b"new");
}
