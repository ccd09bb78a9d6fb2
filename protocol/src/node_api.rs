//! The messages between a node and the control plane (QUIC, framed by
//! `frame.rs`), and the bootstrap-token format of `kcnode join`.
//!
//! Two protocols share the control plane's UDP port, told apart by ALPN:
//! - `kc-join/1`: a host without a certificate asks for the cluster CA
//!   (`JoinMessage::GetCa`, answered before the host trusts anything, like
//!   kubeadm's cluster-info discovery), then, on a connection that verifies
//!   the server against that CA, presents a bootstrap token
//!   (`JoinMessage::Join`) and receives its node certificate.
//! - `kc-node/1`: mutual TLS with the node certificate. Every request opens
//!   its own bidirectional stream: `Hello`, one `NodeRequest`, then one
//!   `NodeResponse` (or a stream of them for `WatchPods`).
//!
//! Kubernetes objects travel as JSON bytes inside bincode: the k8s-openapi
//! types do not decode from bincode.

use serde::{Deserialize, Serialize};

/// ALPN of the join exchange (unauthenticated peers get nothing else).
pub const ALPN_JOIN: &[u8] = b"kc-join/1";
/// ALPN of node sessions (mutual TLS with a node or admin certificate).
pub const ALPN_NODE: &[u8] = b"kc-node/1";
/// Default UDP port of the node API (the store's port; see DESIGN.md).
pub const DEFAULT_PORT: u16 = 7000;

/// What a joining host sends on a `kc-join/1` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinMessage {
    /// "Show me your CA" (the answer is checked against the discovery hash).
    GetCa,
    Join(JoinRequest),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub token: String,
    pub node_name: String,
    /// IP addresses of the host, for its certificate and Node object.
    pub addresses: Vec<String>,
    pub control_plane: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinResponse {
    Ca {
        ca_pem: String,
    },
    Accepted {
        ca_pem: String,
        cert_pem: String,
        key_pem: String,
        /// `host:port` of every control-plane member's node API.
        members: Vec<String>,
    },
    Refused(String),
    /// The answer to a control-plane join (`JoinRequest::control_plane`
    /// with a control-plane token): what a new member needs. The cluster
    /// CA travels with its key (kubeadm's `--certificate-key` upload does
    /// the same), because every member issues certificates to the nodes
    /// joining through it; the stream is TLS from a CA the host checked
    /// against the discovery hash.
    MemberAccepted {
        ca_pem: String,
        ca_key_pem: String,
        /// The Raft id the new member takes.
        member_id: u64,
        /// The current members: Raft id and `host:port` (the UDP port that
        /// carries both the store and the node API).
        members: Vec<(u64, String)>,
    },
}

/// One request of a node session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeRequest {
    /// Create or update this node's Node (JSON); the control plane fills in
    /// `spec.podCIDR`. Answered with the stored Node.
    Register { node: Vec<u8> },
    /// Renew the Lease `kube-node-lease/<node>`.
    Heartbeat { lease_duration_seconds: i32 },
    /// The pods bound to this node: the current list, `Synced`, then changes.
    WatchPods,
    /// Replace the status of a pod bound to this node.
    PodStatus {
        namespace: String,
        name: String,
        status: Vec<u8>,
    },
    /// Remove a pod of this node the kubelet has finished stopping (it had
    /// a deletionTimestamp): a delete with grace 0, if `uid` still matches.
    DeletePod {
        namespace: String,
        name: String,
        uid: String,
    },
    /// Read a core/v1 object (`configmaps`, `secrets`) a pod references.
    Get {
        resource: String,
        namespace: String,
        name: String,
    },
    /// Record an Event (JSON).
    Event { event: Vec<u8> },
    /// Create or update a mirror pod in kube-system (JSON).
    MirrorPod { pod: Vec<u8> },
    /// The node API addresses of the control-plane members.
    Members,
    /// Delete (gracefully) every pod bound to this node but its mirror
    /// pods; answered with how many such pods still exist (`Count`).
    Drain,
    /// Remove this node (its Node and Lease): `kcnode leave`.
    Leave,
    /// Admin only: a new bootstrap token valid for `ttl_seconds`.
    CreateToken { ttl_seconds: u64 },
    /// Admin only: a bootstrap token that may also join control-plane
    /// members (`kcnode join --control-plane`), valid for `ttl_seconds`.
    CreateControlPlaneToken { ttl_seconds: u64 },
    /// Every object of a cluster-wide collection the node agent needs for
    /// the cluster network (`services`, `endpointslices`, `nodes`): the
    /// current list, `Synced`, then changes, as `NodeResponse::Pod` events
    /// (the same `PodEvent` shape carries any object).
    Watch { resource: String },
    /// The node's latest resource usage sample (minor 1): kept by the
    /// control plane for the `metrics.k8s.io` API. A control plane of
    /// minor 0 answers it with an error, which the node ignores.
    Usage(NodeUsage),
}

/// One usage sample of a node and of the pods running on it, like the
/// kubelet's summary that metrics-server scrapes: CPU as a rate over the
/// window between two samples, memory as the working set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeUsage {
    /// When the sample was taken (RFC 3339, UTC).
    pub timestamp: String,
    /// The span the CPU rates were measured over, in milliseconds.
    pub window_ms: u64,
    /// The whole host: CPU in nanocores, memory working set in bytes.
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
    pub pods: Vec<PodUsage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodUsage {
    pub namespace: String,
    pub name: String,
    pub containers: Vec<ContainerUsage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerUsage {
    pub name: String,
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeResponse {
    Done,
    Node(Vec<u8>),
    /// The object asked for with `Get` (JSON), `None` if it does not exist.
    Object(Option<Vec<u8>>),
    Pod(PodEvent),
    Members(Vec<String>),
    Count(u64),
    Token {
        token: String,
        /// The whole `kcnode join ...` command line to print.
        join_command: String,
    },
    Error(String),
}

/// A change to the pods bound to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodEvent {
    /// Added or modified: the whole pod (JSON).
    Upsert(Vec<u8>),
    Deleted {
        namespace: String,
        name: String,
    },
    /// The initial list is complete.
    Synced,
}

/// A bootstrap token `<id>.<secret>`: `[a-z0-9]{6}.[a-z0-9]{16}`, as in
/// Kubernetes. The id names the Secret `kube-system/bootstrap-token-<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    pub id: String,
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "malformed token {0:?}: a token looks like abcdef.0123456789abcdef ([a-z0-9]{{6}}.[a-z0-9]{{16}})"
)]
pub struct BadToken(pub String);

impl BootstrapToken {
    pub fn parse(text: &str) -> Result<Self, BadToken> {
        let bad = || BadToken(text.to_string());
        let (id, secret) = text.split_once('.').ok_or_else(bad)?;
        let ok = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        if !ok(id, 6) || !ok(secret, 16) {
            return Err(bad());
        }
        Ok(Self {
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// A token from 22 random bytes (each mapped onto `[a-z0-9]`).
    pub fn from_random(bytes: &[u8; 22]) -> Self {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let pick = |b: &u8| ALPHABET[*b as usize % ALPHABET.len()] as char;
        Self {
            id: bytes[..6].iter().map(pick).collect(),
            secret: bytes[6..].iter().map(pick).collect(),
        }
    }

    pub fn secret_name(&self) -> String {
        format!("bootstrap-token-{}", self.id)
    }
}

impl std::fmt::Display for BootstrapToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.id, self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;

    #[test]
    fn tokens_parse_and_print_back() {
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        assert_eq!(t.id, "abcdef");
        assert_eq!(t.to_string(), "abcdef.0123456789abcdef");
        assert_eq!(t.secret_name(), "bootstrap-token-abcdef");
    }

    #[test]
    fn malformed_tokens_are_refused_with_the_format() {
        for bad in [
            "",
            "abcdef",
            "abcde.0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcdef.0123456789abcde",
            "abcdef.0123456789abcdef.x",
            "abcdéf.0123456789abcdef",
        ] {
            let err = BootstrapToken::parse(bad).unwrap_err();
            assert!(err.to_string().contains("[a-z0-9]{6}"), "{err}");
        }
    }

    #[test]
    fn random_tokens_are_well_formed() {
        let t = BootstrapToken::from_random(&[255; 22]);
        assert_eq!(BootstrapToken::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn messages_round_trip_through_frames() {
        let req = NodeRequest::PodStatus {
            namespace: "default".into(),
            name: "p".into(),
            status: br#"{"phase":"Running"}"#.to_vec(),
        };
        let bytes = frame::encode(&req).unwrap();
        assert_eq!(
            frame::decode::<NodeRequest>(&bytes[frame::HEADER_LEN..]).unwrap(),
            req
        );
        let usage = NodeRequest::Usage(NodeUsage {
            timestamp: "2026-11-25T05:00:00Z".into(),
            window_ms: 15_000,
            cpu_nanocores: 1,
            memory_bytes: 2,
            pods: vec![PodUsage {
                namespace: "default".into(),
                name: "p".into(),
                containers: vec![ContainerUsage {
                    name: "c".into(),
                    cpu_nanocores: 3,
                    memory_bytes: 4,
                }],
            }],
        });
        let bytes = frame::encode(&usage).unwrap();
        assert_eq!(
            frame::decode::<NodeRequest>(&bytes[frame::HEADER_LEN..]).unwrap(),
            usage
        );
        let join = JoinMessage::Join(JoinRequest {
            token: "abcdef.0123456789abcdef".into(),
            node_name: "w1".into(),
            addresses: vec!["10.0.0.2".into()],
            control_plane: false,
        });
        let bytes = frame::encode(&join).unwrap();
        assert_eq!(
            frame::decode::<JoinMessage>(&bytes[frame::HEADER_LEN..]).unwrap(),
            join
        );
    }
}
