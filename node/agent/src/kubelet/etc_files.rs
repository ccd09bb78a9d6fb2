//! The files the kubelet manages in every container's /etc besides
//! resolv.conf: `/etc/hostname` (the pod's hostname) and `/etc/hosts`
//! (the kubelet's "Kubernetes-managed hosts file": loopback names, the
//! pod's IP with its hostname, then the pod's `hostAliases`). Written into
//! the pod's directory and bind-mounted, so an image without them still
//! has them. Pods on the host network keep the image's files, as the
//! kubelet leaves their hosts file to the node.

use std::fmt::Write;
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kc_runtime::container::spec::Volume as Bind;

/// The pod's hostname: `spec.hostname`, else its name (at most 63 chars).
pub fn hostname(pod: &Pod) -> String {
    let name = pod
        .spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default();
    name.chars().take(63).collect()
}

/// The text of the pod's /etc/hosts, as the kubelet writes it.
pub fn hosts_file(pod: &Pod, pod_ip: &str, hostname: &str) -> String {
    let mut text = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    if !pod_ip.is_empty() {
        let _ = writeln!(text, "{pod_ip}\t{hostname}");
    }
    let aliases = pod.spec.as_ref().and_then(|s| s.host_aliases.as_ref());
    if let Some(aliases) = aliases.filter(|a| !a.is_empty()) {
        text.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            let names = a.hostnames.clone().unwrap_or_default().join("\t");
            let _ = writeln!(text, "{}\t{names}", a.ip);
        }
    }
    text
}

/// Writes `hosts` and `hostname` into `dir`; answers their bind mounts
/// (none for a pod on the host network).
pub fn write(pod: &Pod, dir: &Path, pod_ip: &str) -> std::io::Result<Vec<Bind>> {
    if super::container_spec::host_network(pod) {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir)?;
    let name = hostname(pod);
    let files = [
        ("hosts", hosts_file(pod, pod_ip, &name), "/etc/hosts"),
        ("hostname", format!("{name}\n"), "/etc/hostname"),
    ];
    let mut binds = Vec::new();
    for (file, text, target) in files {
        let host = dir.join(file);
        std::fs::write(&host, text)?;
        binds.push(Bind {
            host,
            container: target.into(),
            read_only: false,
        });
    }
    Ok(binds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn hosts_name_the_pod_ip_and_the_aliases() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"containers": [], "hostAliases": [
                {"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}
            ]}
        }));
        let text = hosts_file(&p, "10.244.1.5", &hostname(&p));
        assert!(text.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(text.contains("\n10.244.1.5\tweb\n"), "{text}");
        assert!(
            text.ends_with("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n")
        );
        assert!(!hosts_file(&p, "", "web").contains("\tweb\n"));
    }

    #[test]
    fn hostname_prefers_spec_hostname_and_host_network_gets_no_files() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"containers": [], "hostname": "h1"}
        }));
        assert_eq!(hostname(&p), "h1");
        let dir = tempfile::tempdir().unwrap();
        let binds = write(&p, dir.path(), "10.0.0.9").unwrap();
        assert_eq!(binds.len(), 2);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("hostname")).unwrap(),
            "h1\n"
        );
        let host = pod(serde_json::json!({
            "metadata": {"name": "h"},
            "spec": {"containers": [], "hostNetwork": true}
        }));
        assert!(write(&host, dir.path(), "").unwrap().is_empty());
    }
}
