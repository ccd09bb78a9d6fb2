//! The store load generator (`kcnode store bench`), driving kc's store or
//! etcd with the same loop, for `bench/store.sh`.
//!
//! kc is driven through `StoreClient` (QUIC); etcd through its native gRPC
//! API (`etcdserverpb.KV/Put` over HTTP/2, the h2 crate, with the two-field
//! protobuf `PutRequest` encoded by hand: no protoc needed), or with
//! `--etcd-json` through its JSON gateway over HTTP/1.1 keep-alive. Leader
//! discovery for `--failover` uses the JSON gateway. Each put is timed from
//! send to answer; the report is puts/s and latency percentiles.
//! `--failover` kills the current leader (by the PID given for its
//! endpoint) while one client writes, and reports the time from the kill
//! to the first successful write.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kc_member::store::PutRequest;
use kc_member::store::client::StoreClient;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// What to drive
    #[arg(long, value_parser = ["kc", "etcd"], default_value = "kc")]
    target: String,
    /// kc: member QUIC addresses; etcd: client URLs' host:port
    #[arg(long, value_delimiter = ',')]
    endpoints: Vec<String>,
    /// kc: directory holding the cluster CA
    #[arg(long)]
    pki_dir: Option<std::path::PathBuf>,
    /// Concurrent clients
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Connections the clients share (at most one per client)
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Puts in all
    #[arg(long, default_value_t = 10_000)]
    requests: u64,
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Keys are drawn from this many distinct 8-byte keys
    #[arg(long, default_value_t = 100_000)]
    key_space: u64,
    /// etcd: use the JSON gateway (HTTP/1.1) instead of gRPC
    #[arg(long)]
    etcd_json: bool,
    /// Measure leader failover instead: PIDs of the members, in --endpoints order
    #[arg(long, value_delimiter = ',')]
    failover_pids: Vec<i32>,
}

/// One connection to the system under test.
#[derive(Clone)]
enum Conn {
    Kc(StoreClient),
    Etcd(Arc<tokio::sync::Mutex<EtcdHttp>>),
    EtcdGrpc(EtcdGrpc),
}

impl Conn {
    async fn open(args: &BenchArgs, endpoint: &str) -> anyhow::Result<Conn> {
        match args.target.as_str() {
            "kc" => {
                let pki = args
                    .pki_dir
                    .as_ref()
                    .context("--pki-dir is needed for kc")?;
                let tls = super::client_tls(pki)?;
                Ok(Conn::Kc(StoreClient::connect(endpoint, &tls).await?))
            }
            _ if !args.etcd_json => Ok(Conn::EtcdGrpc(EtcdGrpc::connect(endpoint).await?)),
            _ => Ok(Conn::Etcd(Arc::new(tokio::sync::Mutex::new(
                EtcdHttp::connect(endpoint).await?,
            )))),
        }
    }

    async fn put(&self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        match self {
            Conn::Kc(c) => {
                c.put(PutRequest::new(key.to_vec(), value.to_vec())).await?;
                Ok(())
            }
            Conn::Etcd(c) => {
                let body = format!(r#"{{"key":"{}","value":"{}"}}"#, base64(key), base64(value));
                let (status, text) = c.lock().await.post("/v3/kv/put", &body).await?;
                if status != 200 {
                    bail!("etcd answered {status}: {text}");
                }
                Ok(())
            }
            Conn::EtcdGrpc(c) => c.put(key, value).await,
        }
    }

    /// Is this endpoint the leader?
    async fn is_leader(&self) -> anyhow::Result<bool> {
        match self {
            Conn::Kc(c) => {
                let s = c.status().await?;
                Ok(s.leader == s.id)
            }
            Conn::EtcdGrpc(c) => {
                let mut http = EtcdHttp::connect(&c.host).await?;
                let (_, text) = http.post("/v3/maintenance/status", "{}").await?;
                let v: serde_json::Value = serde_json::from_str(&text)?;
                Ok(v["header"]["member_id"].as_str().unwrap_or("")
                    == v["leader"].as_str().unwrap_or("-"))
            }
            Conn::Etcd(c) => {
                let (_, text) = c.lock().await.post("/v3/maintenance/status", "{}").await?;
                let v: serde_json::Value = serde_json::from_str(&text)?;
                let me = v["header"]["member_id"].as_str().unwrap_or("");
                let leader = v["leader"].as_str().unwrap_or("-");
                Ok(me == leader)
            }
        }
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.endpoints.is_empty() {
        bail!("give --endpoints");
    }
    if !args.failover_pids.is_empty() {
        return failover(&args).await;
    }
    let nconn = args.connections.clamp(1, args.clients.max(1));
    let mut conns = Vec::new();
    for i in 0..nconn {
        conns.push(Conn::open(&args, &args.endpoints[i % args.endpoints.len()]).await?);
    }
    // Warm up (and make sure there is a leader).
    let value = vec![b'v'; args.value_size];
    for i in 0..50u64 {
        retry_put(&conns[0], &key(i), &value).await?;
    }
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients.max(1) {
        let conn = conns[c % nconn].clone();
        let (next, value, total, space) =
            (next.clone(), value.clone(), args.requests, args.key_space);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let k = key(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) % space.max(1));
                let t = Instant::now();
                conn.put(&k, &value).await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = start.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{:<5} clients={:<4} puts={:<7} puts/s={:<9.0} p50_ms={:<7.3} p99_ms={:.3}",
        args.target,
        args.clients,
        lat.len(),
        lat.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
    Ok(ExitCode::SUCCESS)
}

async fn retry_put(conn: &Conn, k: &[u8], v: &[u8]) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..100 {
        match conn.put(k, v).await {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("put failed")))
}

/// Kill the leader while writing; time from the kill to the first write
/// that succeeds (on any surviving member).
async fn failover(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    if args.failover_pids.len() != args.endpoints.len() {
        bail!("--failover-pids must list one PID per endpoint");
    }
    let mut conns = Vec::new();
    for e in &args.endpoints {
        conns.push(Conn::open(args, e).await?);
    }
    let value = vec![b'v'; args.value_size];
    retry_put(&conns[0], b"failover", &value).await?;
    let mut leader = None;
    for (i, c) in conns.iter().enumerate() {
        if c.is_leader().await.unwrap_or(false) {
            leader = Some(i);
        }
    }
    let leader = leader.context("no leader found")?;
    let survivors: Vec<&String> = args
        .endpoints
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, e)| e)
        .collect();
    let mut open: Vec<Option<Conn>> = conns
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, c)| Some(c))
        .collect();
    let pid = args.failover_pids[leader];
    let killed = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .with_context(|| format!("cannot kill leader PID {pid}"))?;
    let mut attempt = 0usize;
    loop {
        let i = attempt % survivors.len();
        attempt += 1;
        if open[i].is_none() {
            open[i] = Conn::open(args, survivors[i]).await.ok();
        }
        if let Some(c) = &open[i] {
            let put =
                tokio::time::timeout(Duration::from_millis(100), c.put(b"failover", &value)).await;
            match put {
                Ok(Ok(())) => break,
                // A connection whose answer never came is out of step: drop it.
                _ => open[i] = None,
            }
        }
        if killed.elapsed() > Duration::from_secs(30) {
            bail!("no successful write within 30 s of killing the leader");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "{:<5} failover_ms={:.0} (kill -9 of leader endpoint {} -> first successful put)",
        args.target,
        killed.elapsed().as_secs_f64() * 1e3,
        args.endpoints[leader]
    );
    Ok(ExitCode::SUCCESS)
}

fn key(n: u64) -> Vec<u8> {
    format!("{n:08x}").into_bytes()
}

/// A minimal gRPC client for etcd's `KV/Put`: HTTP/2 via h2, one
/// connection shared by many concurrent calls (like etcd's own benchmark).
#[derive(Clone)]
struct EtcdGrpc {
    host: String,
    h2: h2::client::SendRequest<bytes::Bytes>,
}

impl EtcdGrpc {
    async fn connect(host: &str) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(host)
            .await
            .with_context(|| format!("cannot connect to etcd at {host}"))?;
        tcp.set_nodelay(true)?;
        let (h2, conn) = h2::client::handshake(tcp)
            .await
            .context("HTTP/2 handshake with etcd")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(EtcdGrpc {
            host: host.to_string(),
            h2,
        })
    }

    async fn put(&self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        // etcdserverpb.PutRequest { key = 1; value = 2 }, gRPC-framed.
        let mut msg = Vec::with_capacity(key.len() + value.len() + 8);
        for (tag, field) in [(0x0a, key), (0x12, value)] {
            msg.push(tag);
            let mut n = field.len();
            while n >= 0x80 {
                msg.push((n as u8) | 0x80);
                n >>= 7;
            }
            msg.push(n as u8);
            msg.extend_from_slice(field);
        }
        let mut body = Vec::with_capacity(msg.len() + 5);
        body.push(0);
        body.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        body.extend_from_slice(&msg);
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{}/etcdserverpb.KV/Put", self.host))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())?;
        let mut sender = self.h2.clone().ready().await?;
        let (response, mut stream) = sender.send_request(request, false)?;
        stream.send_data(bytes::Bytes::from(body), true)?;
        let response = response.await?;
        let (parts, mut body) = response.into_parts();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        let trailers = body.trailers().await?;
        let status = trailers
            .as_ref()
            .and_then(|t| t.get("grpc-status"))
            .or_else(|| parts.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("missing");
        if status != "0" {
            bail!("etcd put failed: grpc-status {status}");
        }
        Ok(())
    }
}

/// A minimal HTTP/1.1 keep-alive client for etcd's JSON gateway.
struct EtcdHttp {
    host: String,
    stream: BufReader<TcpStream>,
}

impl EtcdHttp {
    async fn connect(host: &str) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(host)
            .await
            .with_context(|| format!("cannot connect to etcd at {host}"))?;
        tcp.set_nodelay(true)?;
        Ok(EtcdHttp {
            host: host.to_string(),
            stream: BufReader::new(tcp),
        })
    }

    async fn post(&mut self, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("bad HTTP status line")?;
        let mut len = None;
        let mut chunked = false;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse::<usize>().ok();
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line).await?;
                let n = usize::from_str_radix(line.trim(), 16).context("bad chunk size")?;
                let mut chunk = vec![0u8; n + 2];
                self.stream.read_exact(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..n]);
            }
        } else {
            let mut buf = vec![0u8; len.unwrap_or(0)];
            self.stream.read_exact(&mut buf).await?;
            out = buf;
        }
        Ok((status, String::from_utf8_lossy(&out).into_owned()))
    }
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }
}
