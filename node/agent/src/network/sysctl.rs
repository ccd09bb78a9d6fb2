//! The kernel settings that make the node's network namespace a router for
//! its pods: IPv4 forwarding on, ICMP redirects off (on `all`, on
//! `default` for the pods' veths to come, and on the given interfaces,
//! since the kernel ORs them). Written under
//! /proc/sys/net, which shows the network namespace of the process: kcnode
//! changes only the namespace it runs in.

use super::NetworkError;

fn write(key: &str, value: &str) -> Result<(), NetworkError> {
    let path = format!("/proc/sys/net/{key}");
    std::fs::write(&path, value)
        .map_err(|e| NetworkError::Command(format!("cannot set {path} to {value}: {e}")))
}

/// Forwarding on, redirects off for `all` and each of `interfaces`.
pub fn router(interfaces: &[&str]) -> Result<(), NetworkError> {
    write("ipv4/ip_forward", "1")?;
    write("ipv4/conf/all/send_redirects", "0")?;
    write("ipv4/conf/default/send_redirects", "0")?;
    for i in interfaces {
        write(&format!("ipv4/conf/{i}/send_redirects"), "0")?;
    }
    Ok(())
}
