//! The proxy's view of the cluster: Services and their ready endpoints,
//! read from Kubernetes JSON (Service and EndpointSlice objects).
//!
//! Kept as small own types (not k8s-openapi) so rule rendering is a pure
//! function of plain data and bad objects are reported, never panicked on.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde_json::Value;

/// A transport protocol a Service port can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.unwrap_or("TCP") {
            "TCP" => Ok(Protocol::Tcp),
            "UDP" => Ok(Protocol::Udp),
            "SCTP" => Ok(Protocol::Sctp),
            other => Err(format!("unknown protocol {other:?} (TCP, UDP or SCTP)")),
        }
    }

    /// The name nftables uses (`tcp`, `udp`, `sctp`).
    pub fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One port of a Service with the endpoints serving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// The port's name ("" when the Service has a single unnamed port).
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    pub node_port: Option<u16>,
    /// Ready endpoints (pod IP, target port), sorted.
    pub endpoints: Vec<(Ipv4Addr, u16)>,
}

/// A Service with a ClusterIP (headless Services carry none and get no rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub cluster_ip: Option<Ipv4Addr>,
    /// sessionAffinity ClientIP: the timeout in seconds.
    pub affinity_timeout: Option<u32>,
    pub ports: Vec<ServicePort>,
}

/// Everything the proxy renders rules from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub services: Vec<Service>,
}

/// A Kubernetes object the proxy could not understand.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {namespace}/{name}: {reason}")]
pub struct SnapshotError {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub reason: String,
}

fn meta(obj: &Value) -> (String, String) {
    let m = &obj["metadata"];
    let ns = m["namespace"].as_str().unwrap_or("default").to_string();
    let name = m["name"].as_str().unwrap_or("").to_string();
    (ns, name)
}

/// Ready endpoint addresses per (namespace, service, port name, protocol).
type EndpointIndex = BTreeMap<(String, String, String, Protocol), Vec<(Ipv4Addr, u16)>>;

fn index_slices(slices: &[Value]) -> Result<EndpointIndex, SnapshotError> {
    let mut index = EndpointIndex::new();
    for slice in slices {
        let (ns, name) = meta(slice);
        let err = |reason: String| SnapshotError {
            kind: "EndpointSlice",
            namespace: ns.clone(),
            name: name.clone(),
            reason,
        };
        if slice["addressType"].as_str().is_some_and(|t| t != "IPv4") {
            continue; // only IPv4 today
        }
        let Some(service) = slice["metadata"]["labels"]["kubernetes.io/service-name"].as_str()
        else {
            continue; // not managed for a Service
        };
        let ports = slice["ports"].as_array().cloned().unwrap_or_default();
        let mut ready = Vec::new();
        for ep in slice["endpoints"].as_array().into_iter().flatten() {
            // Kubernetes: a nil `ready` condition means ready.
            if ep["conditions"]["ready"].as_bool() == Some(false) {
                continue;
            }
            for addr in ep["addresses"].as_array().into_iter().flatten() {
                let text = addr.as_str().unwrap_or("");
                let ip: Ipv4Addr = text.parse().map_err(|_| {
                    err(format!("endpoint address {text:?} is not an IPv4 address"))
                })?;
                ready.push(ip);
            }
        }
        for port in &ports {
            let pname = port["name"].as_str().unwrap_or("").to_string();
            let proto = Protocol::parse(port["protocol"].as_str()).map_err(err)?;
            let Some(number) = port["port"].as_u64().and_then(|p| u16::try_from(p).ok()) else {
                return Err(err(format!("port {pname:?} has no valid port number")));
            };
            let list = index
                .entry((ns.clone(), service.to_string(), pname, proto))
                .or_default();
            list.extend(ready.iter().map(|ip| (*ip, number)));
        }
    }
    for list in index.values_mut() {
        list.sort();
        list.dedup();
    }
    Ok(index)
}

impl Snapshot {
    /// Builds a snapshot from Service and EndpointSlice objects (JSON as the
    /// API server serves them).
    pub fn from_objects(services: &[Value], slices: &[Value]) -> Result<Self, SnapshotError> {
        let index = index_slices(slices)?;
        let mut out = Vec::new();
        for svc in services {
            let (ns, name) = meta(svc);
            let err = |reason: String| SnapshotError {
                kind: "Service",
                namespace: ns.clone(),
                name: name.clone(),
                reason,
            };
            let spec = &svc["spec"];
            if spec["type"].as_str() == Some("ExternalName") {
                continue;
            }
            let cluster_ip = match spec["clusterIP"].as_str() {
                None | Some("") | Some("None") => None,
                Some(text) => Some(
                    text.parse()
                        .map_err(|_| err(format!("clusterIP {text:?} is not an IPv4 address")))?,
                ),
            };
            let affinity_timeout =
                (spec["sessionAffinity"].as_str() == Some("ClientIP")).then(|| {
                    spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"]
                        .as_u64()
                        .map_or(10800, |t| t.clamp(1, 86400) as u32)
                });
            let mut ports = Vec::new();
            for port in spec["ports"].as_array().into_iter().flatten() {
                let pname = port["name"].as_str().unwrap_or("").to_string();
                let protocol = Protocol::parse(port["protocol"].as_str()).map_err(err)?;
                let number = port["port"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p != 0)
                    .ok_or_else(|| err(format!("port {pname:?} has no valid port number")))?;
                let node_port = port["nodePort"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p != 0);
                let endpoints = index
                    .get(&(ns.clone(), name.clone(), pname.clone(), protocol))
                    .cloned()
                    .unwrap_or_default();
                ports.push(ServicePort {
                    name: pname,
                    protocol,
                    port: number,
                    node_port,
                    endpoints,
                });
            }
            out.push(Service {
                namespace: ns.clone(),
                name: name.clone(),
                cluster_ip,
                affinity_timeout,
                ports,
            });
        }
        out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(Snapshot { services: out })
    }

    /// The Service and EndpointSlice lists of a dev/test snapshot document
    /// `{"services": [...], "endpointSlices": [...]}` (`items` lists as
    /// `kubectl get -o json` prints them also work).
    pub fn lists(doc: &Value) -> (Vec<Value>, Vec<Value>) {
        let list = |key: &str| -> Vec<Value> {
            match &doc[key] {
                Value::Array(a) => a.clone(),
                Value::Object(o) => o
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                _ => Vec::new(),
            }
        };
        (list("services"), list("endpointSlices"))
    }

    /// A snapshot from such a document.
    pub fn from_json(doc: &Value) -> Result<Self, SnapshotError> {
        let (services, slices) = Self::lists(doc);
        Self::from_objects(&services, &slices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unready_endpoints_are_left_out_and_ports_matched_by_name() {
        let svc = json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
        let slice = json!({"metadata": {"name": "web-abc", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.0.3"], "conditions": {"ready": true}},
                {"addresses": ["10.244.0.2"]},
                {"addresses": ["10.244.0.4"], "conditions": {"ready": false}}]});
        let snap = Snapshot::from_objects(&[svc], &[slice]).unwrap();
        let port = &snap.services[0].ports[0];
        assert_eq!(
            port.endpoints,
            vec![
                ("10.244.0.2".parse().unwrap(), 8080),
                ("10.244.0.3".parse().unwrap(), 8080)
            ]
        );
    }

    #[test]
    fn bad_cluster_ip_is_an_error_naming_the_service() {
        let svc = json!({"metadata": {"name": "web", "namespace": "a"},
            "spec": {"clusterIP": "banana", "ports": [{"port": 80}]}});
        let err = Snapshot::from_objects(&[svc], &[]).unwrap_err().to_string();
        assert!(
            err.contains("Service a/web") && err.contains("banana"),
            "{err}"
        );
    }

    #[test]
    fn headless_service_has_no_cluster_ip() {
        let svc = json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "ports": [{"port": 5432}]}});
        let snap = Snapshot::from_objects(&[svc], &[]).unwrap();
        assert_eq!(snap.services[0].cluster_ip, None);
    }
}
