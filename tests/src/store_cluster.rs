//! Real store clusters for tests: `kcnode store member` processes on
//! loopback ports, with a throwaway CA, data dirs in a temp dir, and the
//! network client to talk to them. Every process is killed by the PID this
//! harness started (also when the test fails: `Drop`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kc_member::store::client::StoreClient;
use kc_member::store::transport::MemberTls;
use kc_member::store::{MemberStatus, PutRequest, StoreError};

use crate::bin;

pub struct StoreMember {
    pub id: u64,
    pub address: String,
    pub data_dir: PathBuf,
    child: Option<Child>,
}

impl StoreMember {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

pub struct StoreCluster {
    pub dir: tempfile::TempDir,
    pub pki: PathBuf,
    pub members: BTreeMap<u64, StoreMember>,
    /// Extra arguments for every member (e.g. `--snapshot-every 100`).
    pub member_args: Vec<String>,
    tls: MemberTls,
}

/// A free UDP port on loopback (bound then released).
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

impl StoreCluster {
    /// Start `n` members founding a cluster together.
    pub fn start(n: u64, member_args: &[&str]) -> Self {
        let mut c = Self::empty(member_args);
        for id in 1..=n {
            c.add_member_process(id);
        }
        let founders: Vec<u64> = (1..=n).collect();
        for id in founders {
            c.spawn(id, false);
        }
        c
    }

    /// A cluster with no members yet (a CA and a temp dir).
    pub fn empty(member_args: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kc-store-test")
            .tempdir()
            .expect("temp dir");
        let pki = dir.path().join("pki");
        let status = Command::new(bin("kcnode"))
            .args(["store", "ca", "--pki-dir"])
            .arg(&pki)
            .stdout(Stdio::null())
            .status()
            .expect("run kcnode store ca");
        assert!(status.success(), "kcnode store ca failed");
        let ca = kc_member::pki::ClusterCa::load(&pki).expect("load test CA");
        let cert = ca
            .issue(&kc_member::pki::CertRequest::client(
                "kubernetes-admin",
                &["system:masters"],
            ))
            .expect("issue client cert");
        let tls = MemberTls {
            ca_pem: ca.cert_pem().to_string(),
            cert,
        };
        StoreCluster {
            dir,
            pki,
            members: BTreeMap::new(),
            member_args: member_args.iter().map(|s| s.to_string()).collect(),
            tls,
        }
    }

    /// Reserve an address and data dir for member `id` (not started).
    pub fn add_member_process(&mut self, id: u64) {
        let address = format!("127.0.0.1:{}", free_port());
        let data_dir = self.dir.path().join(format!("member-{id}"));
        self.members.insert(
            id,
            StoreMember {
                id,
                address,
                data_dir,
                child: None,
            },
        );
    }

    fn peers_arg(&self) -> String {
        self.members
            .values()
            .map(|m| format!("{}={}", m.id, m.address))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Start (or restart) member `id`; `join` waits to be added.
    pub fn spawn(&mut self, id: u64, join: bool) {
        let peers = self.peers_arg();
        let pki = self.pki.clone();
        let log = self.dir.path().join(format!("member-{id}.log"));
        let args = self.member_args.clone();
        let m = self.members.get_mut(&id).expect("known member");
        assert!(m.child.is_none(), "member {id} is already running");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut cmd = Command::new(bin("kcnode"));
        cmd.args([
            "store",
            "member",
            "--id",
            &id.to_string(),
            "--listen",
            &m.address,
            "--peers",
            &peers,
        ])
        .arg("--pki-dir")
        .arg(&pki)
        .arg("--data-dir")
        .arg(&m.data_dir)
        .args(&args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log);
        if join {
            cmd.arg("--join");
        }
        m.child = Some(cmd.spawn().expect("spawn kcnode store member"));
    }

    /// kill -9 member `id` and reap it.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.members.get_mut(&id).and_then(|m| m.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM member `id` and wait for it to exit.
    pub fn stop(&mut self, id: u64) {
        if let Some(mut child) = self.members.get_mut(&id).and_then(|m| m.child.take()) {
            // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn address(&self, id: u64) -> String {
        self.members[&id].address.clone()
    }

    pub fn log_of(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("member-{id}.log")))
            .unwrap_or_default()
    }

    /// A network client to member `id` (retries while it starts).
    pub fn tls(&self) -> &MemberTls {
        &self.tls
    }

    pub async fn client(&self, id: u64) -> StoreClient {
        let addr = self.address(id);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match StoreClient::connect(&addr, &self.tls).await {
                Ok(c) => return c,
                Err(e) if Instant::now() > deadline => panic!("cannot connect to member {id}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Wait until the running members agree on a leader among `among`.
    pub async fn leader(&self, among: &[u64], within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let mut leaders = Vec::new();
            for &id in among {
                if let Ok(Ok(c)) = tokio::time::timeout(
                    Duration::from_millis(500),
                    StoreClient::connect(&self.address(id), &self.tls),
                )
                .await
                    && let Ok(Ok(s)) =
                        tokio::time::timeout(Duration::from_millis(500), c.status()).await
                {
                    leaders.push(s.leader);
                }
            }
            if leaders.len() == among.len()
                && leaders[0] != 0
                && leaders.iter().all(|l| *l == leaders[0])
            {
                return leaders[0];
            }
            if Instant::now() > deadline {
                panic!("no agreed leader among {among:?} within {within:?} (saw {leaders:?})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn status(&self, id: u64) -> MemberStatus {
        self.client(id).await.status().await.expect("status")
    }

    /// Put through member `id`, retrying while there is no leader.
    pub async fn put(&self, id: u64, key: &str, value: &str) -> i64 {
        let c = self.client(id).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match c.put(PutRequest::new(key, value)).await {
                Ok(r) => return r.revision,
                Err(e) if Instant::now() > deadline => panic!("put {key} via member {id}: {e}"),
                Err(e) => {
                    if !matches!(
                        e.store_error(),
                        Some(StoreError::NoLeader | StoreError::Timeout)
                    ) {
                        eprintln!("retrying a put after: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

impl Drop for StoreCluster {
    fn drop(&mut self) {
        for m in self.members.values_mut() {
            if let Some(mut child) = m.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            for id in self.members.keys() {
                let log = std::fs::read_to_string(self.dir.path().join(format!("member-{id}.log")))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                eprintln!(
                    "--- member {id} log (last lines, newest first) ---\n{}",
                    tail.join("\n")
                );
            }
        }
    }
}
