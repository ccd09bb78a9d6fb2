//! A single-member control plane on one host: the cluster PKI under
//! `<data-dir>/pki`, a one-member store under `<data-dir>/store`, and the API
//! server, plus the admin kubeconfig and token file for clients.
//!
//! `kcnode serve-api` runs exactly this; `kcnode init` builds on it. Every
//! file is created on first start and reused after, so a restart keeps the
//! cluster's identity and data.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rand::Rng;

use crate::pki::{
    ADMIN_GROUP, ADMIN_USER, CertRequest, CertUsage, ClusterCa, Identity, IssuedCert,
};
use crate::store::raft_node::{self, NoPeers, StoreConfig};
use crate::tls::{self, ClientAuth};

use crate::apiserver::kubeconfig::{self, Credentials};
use crate::apiserver::{ApiServer, Authenticator};

/// Where things go and where to listen.
#[derive(Debug, Clone)]
pub struct SingleConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Where to write the admin kubeconfig.
    pub kubeconfig_out: PathBuf,
    pub cluster_name: String,
    /// More IPs the API server certificate names (the host's addresses,
    /// for clients on other hosts).
    pub advertise: Vec<IpAddr>,
}

/// A running single-member control plane.
pub struct Single {
    pub api: ApiServer,
    /// The admin bearer token (also in `<data-dir>/tokens.csv`).
    pub admin_token: String,
    /// The cluster CA (to issue node and member certificates).
    pub ca: Arc<ClusterCa>,
    /// The store, as the API server uses it (for in-process clients).
    pub kv: Arc<dyn crate::apiserver::Kv>,
    /// The scheduler and controller manager of this member.
    _control_loops: crate::control_loops::ControlLoops,
    _store_thread: std::thread::JoinHandle<()>,
}

fn load_or_create_ca(dir: &Path, cluster: &str) -> anyhow::Result<ClusterCa> {
    if dir.join("ca.crt").exists() {
        return ClusterCa::load(dir).context("cannot load the cluster CA");
    }
    let ca = ClusterCa::generate(cluster).context("cannot create the cluster CA")?;
    ca.save(dir).context("cannot save the cluster CA")?;
    Ok(ca)
}

pub fn load_or_issue(
    dir: &Path,
    stem: &str,
    ca: &ClusterCa,
    req: &CertRequest,
) -> anyhow::Result<IssuedCert> {
    if dir.join(format!("{stem}.crt")).exists() {
        return IssuedCert::load(dir, stem)
            .with_context(|| format!("cannot load {stem} certificate"));
    }
    let cert = ca
        .issue(req)
        .with_context(|| format!("cannot issue the {stem} certificate"))?;
    cert.save(dir, stem)?;
    Ok(cert)
}

fn load_or_create_token(path: &Path) -> anyhow::Result<String> {
    if let Ok(text) = std::fs::read_to_string(path)
        && let Some(token) = text.lines().find_map(|l| {
            l.split(',')
                .next()
                .filter(|t| !t.starts_with('#') && !t.is_empty())
        })
    {
        return Ok(token.to_string());
    }
    let token: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    std::fs::write(path, format!("{token},{ADMIN_USER},{ADMIN_GROUP}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

/// Loads the cluster CA from `<data-dir>/pki`, creating it on first start.
pub fn cluster_ca(data_dir: &Path, cluster: &str) -> anyhow::Result<ClusterCa> {
    let pki_dir = data_dir.join("pki");
    std::fs::create_dir_all(&pki_dir)
        .with_context(|| format!("cannot create {}", pki_dir.display()))?;
    load_or_create_ca(&pki_dir, cluster)
}

/// Starts a one-member store and the API server; writes the kubeconfig.
pub async fn start(config: &SingleConfig) -> anyhow::Result<Single> {
    cluster_ca(&config.data_dir, &config.cluster_name)?;
    let store_dir = config.data_dir.join("store");
    let peers = BTreeMap::from([(1u64, "127.0.0.1:0".to_string())]);
    let (store, store_thread) =
        raft_node::start(StoreConfig::new(1, store_dir, peers), Arc::new(NoPeers))
            .context("cannot start the store")?;
    start_with_store(config, store, store_thread).await
}

/// Starts the API server, the scheduler and the controllers on a running
/// store member (`store`, whose actor runs on `store_thread`); writes the
/// kubeconfig. The CA must be in `<data-dir>/pki` (see `cluster_ca`).
pub async fn start_with_store(
    config: &SingleConfig,
    store: crate::store::StoreHandle,
    store_thread: std::thread::JoinHandle<()>,
) -> anyhow::Result<Single> {
    let pki_dir = config.data_dir.join("pki");
    let ca = cluster_ca(&config.data_dir, &config.cluster_name)?;
    let mut ips: Vec<IpAddr> = vec!["127.0.0.1".parse()?, "::1".parse()?];
    if !config.listen.ip().is_unspecified() && !ips.contains(&config.listen.ip()) {
        ips.push(config.listen.ip());
    }
    for ip in &config.advertise {
        if !ips.contains(ip) {
            ips.push(*ip);
        }
    }
    let server_req = CertRequest {
        common_name: "kube-apiserver".into(),
        organizations: vec![],
        dns_names: vec![
            "localhost".into(),
            "kubernetes".into(),
            "kubernetes.default".into(),
            "kubernetes.default.svc".into(),
        ],
        ip_addresses: ips,
        usage: CertUsage::Server,
        validity: std::time::Duration::from_secs(365 * 24 * 3600),
    };
    let server_cert = load_or_issue(&pki_dir, "apiserver", &ca, &server_req)?;
    let admin_cert = load_or_issue(
        &pki_dir,
        "admin",
        &ca,
        &CertRequest::client(ADMIN_USER, &[ADMIN_GROUP]),
    )?;
    let token_file = config.data_dir.join("tokens.csv");
    let admin_token = load_or_create_token(&token_file)?;
    let mut auth = Authenticator::new();
    auth.load_tokens(&std::fs::read_to_string(&token_file).unwrap_or_default());
    auth.add_token(
        admin_token.clone(),
        Identity {
            user: ADMIN_USER.into(),
            groups: vec![ADMIN_GROUP.into()],
        },
    );

    let tls = tls::server_config(ca.cert_pem(), &server_cert, ClientAuth::Optional, &[])?;
    let registry_dir = config.data_dir.join("registry");
    let kv: Arc<dyn crate::apiserver::Kv> = Arc::new(store);
    let api =
        ApiServer::start_with_registry(config.listen, tls, kv.clone(), auth, Some(&registry_dir))
            .await?;
    let control_loops = crate::control_loops::start(
        kv.clone(),
        &crate::control_loops::member_identity(),
        Some(ca.cert_pem().to_string()),
    );

    // The kubeconfig names the address other hosts reach this member at
    // (its advertised one), as kubeadm's admin.conf does.
    let host = match config.listen.ip() {
        ip if ip.is_unspecified() => match config.advertise.first() {
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(ip) => ip.to_string(),
            None => "127.0.0.1".to_string(),
        },
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let server = format!("https://{host}:{}", api.local_addr.port());
    let text = kubeconfig::render(
        &config.cluster_name,
        &server,
        ca.cert_pem(),
        ADMIN_USER,
        Credentials::ClientCert {
            cert_pem: &admin_cert.cert_pem,
            key_pem: &admin_cert.key_pem,
        },
    );
    if let Some(dir) = config.kubeconfig_out.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    write_private(&config.kubeconfig_out, &text)?;
    Ok(Single {
        api,
        admin_token,
        ca: Arc::new(ca),
        kv,
        _control_loops: control_loops,
        _store_thread: store_thread,
    })
}

impl Single {
    /// Lets the registry fetch blobs it lacks from these other members'
    /// API servers (`host:port`), trusting the cluster CA and presenting
    /// the admin certificate of `<data-dir>/pki`.
    pub fn set_registry_peers(
        &self,
        data_dir: &Path,
        addresses: Vec<String>,
    ) -> anyhow::Result<()> {
        let Some(registry) = &self.api.state.registry else {
            return Ok(());
        };
        let tls = registry_peers_tls(data_dir)?;
        registry.set_peers(crate::registry::peers::Peers {
            addresses,
            tls: Arc::new(tls),
        });
        Ok(())
    }
}

/// The TLS client config the registry fetches from peers with: the cluster
/// CA of `<data-dir>/pki` and its admin certificate.
pub fn registry_peers_tls(data_dir: &Path) -> anyhow::Result<rustls::ClientConfig> {
    let pki_dir = data_dir.join("pki");
    let ca = std::fs::read_to_string(pki_dir.join("ca.crt"))
        .with_context(|| format!("cannot read {}", pki_dir.join("ca.crt").display()))?;
    let cert = IssuedCert::load(&pki_dir, "admin").context("cannot load the admin certificate")?;
    Ok(tls::client_config(&ca, Some(&cert), &[b"http/1.1"])?)
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
