//! What a node says about its host: CPU and memory capacity, addresses,
//! kernel and OS, and the Node object built from them. Reading the host
//! (`HostFacts::read`) is apart from building the object (`node_object`,
//! pure and unit-tested).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use serde_json::{Value, json};

/// The kubelet version a kc node reports.
pub const KUBELET_VERSION: &str = "v1.32.0-kc";
pub const RUNTIME_VERSION: &str = "kc://0.1";
/// The label and taint of control-plane nodes.
pub const CONTROL_PLANE_ROLE: &str = "node-role.kubernetes.io/control-plane";

#[derive(Debug, Clone, PartialEq)]
pub struct HostFacts {
    pub cpus: usize,
    pub memory_kib: u64,
    pub ephemeral_kib: u64,
    pub addresses: Vec<IpAddr>,
    pub kernel: String,
    pub os_image: String,
    pub architecture: String,
}

/// How the node presents itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRole {
    pub control_plane: bool,
    /// `--no-workloads`: taint the node so only tolerating pods land.
    pub no_workloads: bool,
}

impl HostFacts {
    /// Reads the host; `data_dir` is where ephemeral storage lives.
    pub fn read(data_dir: &Path) -> Self {
        let ephemeral_kib = nix::sys::statvfs::statvfs(data_dir)
            .map(|s| s.blocks().saturating_mul(s.fragment_size()) / 1024)
            .unwrap_or(0);
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_kib: std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|t| mem_total_kib(&t))
                .unwrap_or(0),
            ephemeral_kib,
            addresses: host_addresses(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            os_image: std::fs::read_to_string("/etc/os-release")
                .ok()
                .and_then(|t| pretty_name(&t))
                .unwrap_or_else(|| "Linux".into()),
            architecture: match std::env::consts::ARCH {
                "x86_64" => "amd64".into(),
                "aarch64" => "arm64".into(),
                other => other.into(),
            },
        }
    }

    /// The address other hosts reach this one at: the first non-loopback
    /// IPv4, else loopback.
    pub fn primary_ip(&self) -> IpAddr {
        self.addresses
            .iter()
            .copied()
            .find(|a| a.is_ipv4())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn pretty_name(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

/// Is `name` (an interface name from getifaddrs) loopback or one of kc's
/// own devices (the pod bridge `kc0`, the VXLAN device `kcvx`)? Their
/// addresses (the cluster DNS address on `lo`, pod gateways) are not the
/// host's.
fn is_kc_device(name: *const libc::c_char) -> bool {
    if name.is_null() {
        return false;
    }
    // SAFETY: getifaddrs gives NUL-terminated interface names.
    let name = unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy();
    name == "lo" || name.starts_with("kc")
}

/// The host's non-loopback IP addresses (interfaces that are up), kc's own
/// devices left out.
pub fn host_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        let up = ifa.ifa_flags & libc::IFF_UP as u32 != 0;
        if ifa.ifa_addr.is_null() || !up || is_kc_device(ifa.ifa_name) {
            continue;
        }
        // SAFETY: ifa_addr is non-null; its family says which struct it is.
        let family = unsafe { (*ifa.ifa_addr).sa_family } as i32;
        let ip = match family {
            libc::AF_INET => {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes())
            }
            _ => continue,
        };
        if !ip.is_loopback() && !out.contains(&ip) {
            out.push(ip);
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// The Node object this host registers (status included; the control
/// plane fills in `spec.podCIDR`).
pub fn node_object(name: &str, facts: &HostFacts, role: &NodeRole, now: &str) -> Value {
    let mut labels = json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": facts.architecture,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": facts.architecture,
    });
    if role.control_plane {
        labels[CONTROL_PLANE_ROLE] = json!("");
    }
    let taints = if role.no_workloads {
        json!([{ "key": CONTROL_PLANE_ROLE, "effect": "NoSchedule" }])
    } else {
        json!([])
    };
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": kind, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        })
    };
    let mut addresses: Vec<Value> = facts
        .addresses
        .iter()
        .map(|ip| json!({ "type": "InternalIP", "address": ip.to_string() }))
        .collect();
    addresses.push(json!({ "type": "Hostname", "address": name }));
    let resources = json!({
        "cpu": facts.cpus.to_string(),
        "memory": format!("{}Ki", facts.memory_kib),
        "ephemeral-storage": format!("{}Ki", facts.ephemeral_kib),
        "pods": "110",
    });
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": name, "labels": labels },
        "spec": { "taints": taints },
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": addresses,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kcnode is posting ready status"),
            ],
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": facts.kernel,
                "osImage": facts.os_image,
                "containerRuntimeVersion": RUNTIME_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": facts.architecture,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> HostFacts {
        HostFacts {
            cpus: 2,
            memory_kib: 4_000_000,
            ephemeral_kib: 10_000_000,
            addresses: vec!["10.100.0.2".parse().unwrap()],
            kernel: "6.1.0".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            architecture: "amd64".into(),
        }
    }

    #[test]
    fn meminfo_and_os_release_parse() {
        assert_eq!(
            mem_total_kib("MemTotal:        4030712 kB\nMemFree: 1 kB\n"),
            Some(4030712)
        );
        assert_eq!(
            pretty_name("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn a_worker_node_is_ready_with_capacity_and_addresses() {
        let role = NodeRole {
            control_plane: false,
            no_workloads: false,
        };
        let n = node_object("w1", &facts(), &role, "2026-11-24T00:00:00Z");
        assert_eq!(n["status"]["capacity"]["cpu"], "2");
        assert_eq!(n["status"]["capacity"]["memory"], "4000000Ki");
        assert_eq!(n["status"]["capacity"]["pods"], "110");
        assert_eq!(n["status"]["addresses"][0]["address"], "10.100.0.2");
        assert_eq!(n["status"]["addresses"][1]["type"], "Hostname");
        let ready = n["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True");
        assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], KUBELET_VERSION);
        assert!(n["metadata"]["labels"].get(CONTROL_PLANE_ROLE).is_none());
        assert_eq!(n["spec"]["taints"], json!([]));
    }

    #[test]
    fn a_control_plane_without_workloads_is_labelled_and_tainted() {
        let role = NodeRole {
            control_plane: true,
            no_workloads: true,
        };
        let n = node_object("cp1", &facts(), &role, "t");
        assert_eq!(n["metadata"]["labels"][CONTROL_PLANE_ROLE], "");
        assert_eq!(n["spec"]["taints"][0]["effect"], "NoSchedule");
    }

    #[test]
    fn the_primary_ip_prefers_ipv4_and_falls_back_to_loopback() {
        assert_eq!(facts().primary_ip().to_string(), "10.100.0.2");
        let mut none = facts();
        none.addresses.clear();
        assert!(none.primary_ip().is_loopback());
    }
}
