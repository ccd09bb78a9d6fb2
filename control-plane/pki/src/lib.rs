//! The cluster's public-key infrastructure: one certificate authority per
//! cluster, and the certificates it issues.
//!
//! `kcnode init` creates the CA; every member and node gets a certificate
//! signed by it, and every connection (QUIC between members and nodes, HTTPS
//! to the API server) is mutual TLS against it. Like Kubernetes, a client
//! certificate names its user in the subject's common name and its groups in
//! the organizations: the admin is `kubernetes-admin` in `system:masters`, a
//! node is `system:node:<name>` in `system:nodes`. A joining host checks the
//! CA it is shown against a hash given out of band (`discovery_hash`, the
//! kubeadm form `sha256:<hex of the CA's SubjectPublicKeyInfo>`).
//!
//! `tls` turns these certificates into rustls configurations. A crate of
//! its own because the store, the node API and the API server all speak
//! mutual TLS, and none of them should depend on another for it.

pub mod tls;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};

/// The group whose members may do anything (Kubernetes' name for it).
pub const ADMIN_GROUP: &str = "system:masters";
/// The admin user of a cluster's kubeconfig.
pub const ADMIN_USER: &str = "kubernetes-admin";
/// The group of every node identity.
pub const NODES_GROUP: &str = "system:nodes";
/// Node users are `system:node:<node name>`.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The group of control-plane members' node identities: only they (and
/// admins) may speak to the store and relay to nodes; a worker's node
/// certificate lacks it.
pub const MEMBERS_GROUP: &str = "kc:control-plane";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot create certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{what} is not valid PEM: {reason}")]
    BadPem { what: String, reason: String },
    #[error("certificate is not valid X.509: {0}")]
    BadCertificate(String),
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// The cluster CA: its certificate and signing key.
pub struct ClusterCa {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl ClusterCa {
    /// Creates a new CA named after the cluster, valid for ten years.
    pub fn generate(cluster_name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&format!("{cluster_name}-ca"), &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(&mut params, Duration::from_secs(10 * 365 * 24 * 3600));
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// Rebuilds the CA from its PEM certificate and key (as `save` wrote them).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::BadPem {
            what: "CA key".into(),
            reason: e.to_string(),
        })?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| PkiError::BadPem {
            what: "CA certificate".into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            issuer,
        })
    }

    /// Loads `ca.crt` and `ca.key` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let cert = read_file(&dir.join("ca.crt"))?;
        let key = read_file(&dir.join("ca.key"))?;
        Self::from_pem(&cert, &key)
    }

    /// Writes `ca.crt` and `ca.key` (mode 0600) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), PkiError> {
        write_file(&dir.join("ca.crt"), &self.cert_pem, 0o644)?;
        write_file(&dir.join("ca.key"), &self.key_pem, 0o600)
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key (handed to a joining control-plane member only).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The kubeadm-style discovery hash of this CA: `sha256:<hex>` of its
    /// SubjectPublicKeyInfo.
    pub fn discovery_hash(&self) -> Result<String, PkiError> {
        discovery_hash_of_pem(&self.cert_pem)
    }

    /// Issues a certificate for `request`, signed by this CA, with a new key.
    pub fn issue(&self, request: &CertRequest) -> Result<IssuedCert, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name =
            distinguished_name(&request.common_name, &request.organizations);
        params.subject_alt_names = request
            .dns_names
            .iter()
            .map(|name| Ok(SanType::DnsName(name.clone().try_into()?)))
            .chain(
                request
                    .ip_addresses
                    .iter()
                    .map(|ip| Ok(SanType::IpAddress(*ip))),
            )
            .collect::<Result<Vec<_>, rcgen::Error>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match request.usage {
            CertUsage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            CertUsage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            CertUsage::ServerAndClient => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, request.validity);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertUsage {
    Server,
    Client,
    ServerAndClient,
}

/// A certificate to issue: subject (CN = user, O = groups), names it serves
/// as (DNS and IP subject alternative names), usage and lifetime.
#[derive(Debug, Clone)]
pub struct CertRequest {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub usage: CertUsage,
    pub validity: Duration,
}

impl CertRequest {
    /// A client certificate for `user` in `groups`, valid for a year.
    pub fn client(user: &str, groups: &[&str]) -> Self {
        Self {
            common_name: user.to_string(),
            organizations: groups.iter().map(|g| g.to_string()).collect(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            usage: CertUsage::Client,
            validity: Duration::from_secs(365 * 24 * 3600),
        }
    }

    /// The identity certificate of a node: client (to the API and peers) and
    /// server (for peers and streams), naming the node's addresses.
    pub fn node(node_name: &str, dns_names: &[String], ips: &[IpAddr]) -> Self {
        Self {
            common_name: format!("{NODE_USER_PREFIX}{node_name}"),
            organizations: vec![NODES_GROUP.to_string()],
            dns_names: dns_names.to_vec(),
            ip_addresses: ips.to_vec(),
            usage: CertUsage::ServerAndClient,
            validity: Duration::from_secs(365 * 24 * 3600),
        }
    }

    /// The identity certificate of a control-plane member: a node's, also
    /// in [`MEMBERS_GROUP`] (what the store's transport requires).
    pub fn member(node_name: &str, dns_names: &[String], ips: &[IpAddr]) -> Self {
        let mut req = Self::node(node_name, dns_names, ips);
        req.organizations.push(MEMBERS_GROUP.to_string());
        req
    }
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl IssuedCert {
    /// Writes `<stem>.crt` and `<stem>.key` (mode 0600) into `dir`.
    pub fn save(&self, dir: &Path, stem: &str) -> Result<(), PkiError> {
        write_file(&dir.join(format!("{stem}.crt")), &self.cert_pem, 0o644)?;
        write_file(&dir.join(format!("{stem}.key")), &self.key_pem, 0o600)
    }

    /// Reads what `save` wrote.
    pub fn load(dir: &Path, stem: &str) -> Result<Self, PkiError> {
        Ok(Self {
            cert_pem: read_file(&dir.join(format!("{stem}.crt")))?,
            key_pem: read_file(&dir.join(format!("{stem}.key")))?,
        })
    }
}

/// Who a verified client certificate says its holder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    /// Reads the user (CN) and groups (O) of a DER certificate. Call it only
    /// on a certificate the TLS layer has verified against the cluster CA.
    pub fn from_cert_der(der: &[u8]) -> Result<Self, PkiError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| PkiError::BadCertificate(e.to_string()))?;
        let subject = cert.subject();
        let user = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .ok_or_else(|| PkiError::BadCertificate("certificate has no common name".into()))?
            .to_string();
        let groups = subject
            .iter_organization()
            .chain(subject.iter_organizational_unit())
            .filter_map(|o| o.as_str().ok().map(str::to_string))
            .collect();
        Ok(Self { user, groups })
    }

    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == ADMIN_GROUP)
    }

    /// A control-plane member (its certificate is in [`MEMBERS_GROUP`]).
    pub fn is_member(&self) -> bool {
        self.groups.iter().any(|g| g == MEMBERS_GROUP)
    }

    /// The node this identity belongs to, if it is a node's.
    pub fn node_name(&self) -> Option<&str> {
        if !self.groups.iter().any(|g| g == NODES_GROUP) {
            return None;
        }
        self.user.strip_prefix(NODE_USER_PREFIX)
    }
}

/// The discovery hash (`sha256:<hex>` of the SubjectPublicKeyInfo) of a PEM
/// CA certificate, to compare with the one in a join command.
pub fn discovery_hash_of_pem(cert_pem: &str) -> Result<String, PkiError> {
    let der = pem_to_der(cert_pem, "CA certificate")?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(spki))))
}

/// Checks that `pem` holds one PEM `CERTIFICATE REQUEST` (PKCS#10) that
/// parses and whose signature verifies, as a CertificateSigningRequest's
/// `spec.request` must; why not, otherwise.
pub fn check_certificate_request(pem: &[u8]) -> Result<(), String> {
    use x509_parser::prelude::FromDer;
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|e| format!("no PEM block found: {e}"))?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err(format!(
            "PEM block type must be CERTIFICATE REQUEST, not {}",
            block.label
        ));
    }
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .map_err(|e| format!("the certificate request does not parse: {e}"))?;
    csr.verify_signature()
        .map_err(|e| format!("the certificate request's signature does not verify: {e}"))
}

/// The DER bytes of the first certificate in `pem`.
pub fn pem_to_der(pem: &str, what: &str) -> Result<Vec<u8>, PkiError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|c| c.to_vec())
        .map_err(|e| PkiError::BadPem {
            what: what.to_string(),
            reason: e.to_string(),
        })
}

/// CN = user, O = the first group. rcgen keeps one value per attribute
/// type (a second O would replace the first), so a second group is written
/// as the OU; [`Identity`] reads both as groups.
fn distinguished_name(common_name: &str, organizations: &[String]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(first) = organizations.first() {
        dn.push(DnType::OrganizationName, first.as_str());
    }
    if let Some(second) = organizations.get(1) {
        dn.push(DnType::OrganizationalUnitName, second.as_str());
    }
    dn
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = time::OffsetDateTime::now_utc();
    // Back-date a little so hosts with slightly skewed clocks accept it.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + validity;
}

fn read_file(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `contents` with `mode`, atomically (temp file then rename).
fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| PkiError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_client_cert_names_its_user_and_groups() {
        let ca = ClusterCa::generate("test").unwrap();
        let cert = ca
            .issue(&CertRequest::client(ADMIN_USER, &[ADMIN_GROUP]))
            .unwrap();
        let id = Identity::from_cert_der(&pem_to_der(&cert.cert_pem, "cert").unwrap()).unwrap();
        assert_eq!(id.user, ADMIN_USER);
        assert!(id.is_admin());
        assert_eq!(id.node_name(), None);
    }

    #[test]
    fn node_cert_maps_to_its_node_name() {
        let ca = ClusterCa::generate("test").unwrap();
        let cert = ca
            .issue(&CertRequest::node(
                "worker-1",
                &[],
                &["10.0.0.2".parse().unwrap()],
            ))
            .unwrap();
        let id = Identity::from_cert_der(&pem_to_der(&cert.cert_pem, "cert").unwrap()).unwrap();
        assert_eq!(id.node_name(), Some("worker-1"));
        assert!(!id.is_admin());
        assert!(!id.is_member(), "a worker's certificate is no member's");
    }

    #[test]
    fn member_cert_is_a_node_and_a_member() {
        let ca = ClusterCa::generate("test").unwrap();
        let cert = ca.issue(&CertRequest::member("cp-1", &[], &[])).unwrap();
        let id = Identity::from_cert_der(&pem_to_der(&cert.cert_pem, "cert").unwrap()).unwrap();
        assert_eq!(id.node_name(), Some("cp-1"));
        assert!(id.is_member());
        assert_eq!(id.groups, [NODES_GROUP, MEMBERS_GROUP]);
    }

    #[test]
    fn ca_survives_save_and_load_and_keeps_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClusterCa::generate("test").unwrap();
        ca.save(dir.path()).unwrap();
        let loaded = ClusterCa::load(dir.path()).unwrap();
        assert_eq!(
            ca.discovery_hash().unwrap(),
            loaded.discovery_hash().unwrap()
        );
        assert!(ca.discovery_hash().unwrap().starts_with("sha256:"));
        // A certificate issued by the reloaded CA chains to the same CA.
        loaded.issue(&CertRequest::client("someone", &[])).unwrap();
    }

    #[test]
    fn garbage_pem_is_a_clear_error() {
        let err = ClusterCa::from_pem("not pem", "not pem").err().unwrap();
        assert!(err.to_string().contains("not valid PEM"), "{err}");
    }
}
