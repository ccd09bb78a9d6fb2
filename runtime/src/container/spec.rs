//! What a container is asked to be: the command, environment, limits, ports
//! and volumes, as plain data, plus the parsers for the user's spelling of
//! them (`-p 5000:5000`, `-v /src:/dst:ro`, `--memory 100m`, `--cpus 0.5`).
//!
//! Pure logic only: everything here is checked by unit tests in
//! milliseconds, and a bad input becomes a `SpecError` that names the input
//! and says what a good one looks like, before any process is started.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A mistake in what the user asked for.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("invalid port mapping {0:?}: expected HOST:CONTAINER, e.g. 5000:5000, ports 1-65535")]
    Port(String),
    #[error("invalid volume {0:?}: expected /host/path:/container/path[:ro|:rw], both absolute")]
    Volume(String),
    #[error(
        "invalid memory size {0:?}: expected a number with an optional unit b, k, m or g (e.g. 100m), at least 4m"
    )]
    Memory(String),
    #[error("invalid --cpus {0:?}: expected a positive number of CPUs such as 0.5 or 2")]
    Cpus(String),
    #[error("invalid --pids-limit {0:?}: expected a positive whole number")]
    Pids(String),
    #[error("invalid environment variable {0:?}: expected KEY=VALUE with a non-empty KEY")]
    Env(String),
    #[error(
        "invalid container name {0:?}: use 1-64 characters from a-z A-Z 0-9 _ . - starting with a letter or digit"
    )]
    Name(String),
    #[error("no command to run: the image has no Entrypoint/Cmd and none was given")]
    NoCommand,
    #[error("invalid working directory {0:?}: it must be an absolute path")]
    WorkDir(String),
    #[error("unknown signal {0:?}: use a name like TERM or KILL, or a number 1-64")]
    Signal(String),
}

/// A published port: connections to `host` on the caller's network are
/// forwarded to `container` on the container's loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host: u16,
    pub container: u16,
}

/// A host directory or file bind-mounted into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub host: PathBuf,
    pub container: PathBuf,
    pub read_only: bool,
}

/// Resource limits, enforced through cgroups (v1 or v2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Memory limit in bytes (swap included where the kernel can count it).
    pub memory: Option<u64>,
    /// CPU quota in millicpus (500 = half a CPU).
    pub cpu_millis: Option<u64>,
    /// Maximum number of tasks (processes and threads).
    pub pids: Option<u64>,
}

/// Which namespace to use: a new one, or join an existing one (a pod
/// sandbox's) through its `/proc/<pid>/ns/<kind>` file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceMode {
    #[default]
    New,
    Join(PathBuf),
    /// Share the caller's (only for the network: `--network host`).
    Host,
}

/// The network, IPC and UTS namespaces; PID and mount are always new.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedNamespaces {
    pub network: NamespaceMode,
    pub ipc: NamespaceMode,
    pub uts: NamespaceMode,
}

/// Everything needed to start one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// Overlayfs lower dirs, bottom first (the image's layers).
    pub layers: Vec<PathBuf>,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    /// Keep stdin open (attached runs with `-i`).
    pub stdin: bool,
    pub ports: Vec<PortMapping>,
    pub volumes: Vec<Volume>,
    pub resources: Resources,
    pub namespaces: SharedNamespaces,
    /// Remove the container (state, cgroup, rootfs) once it exits.
    pub auto_remove: bool,
    /// The signal `stop` sends first (the image's STOPSIGNAL); SIGTERM if None.
    #[serde(default)]
    pub stop_signal: Option<i32>,
}

/// Parses `HOST:CONTAINER` (Docker also allows `IP:HOST:CONTAINER`; we take
/// the last two fields and listen on all addresses of the caller's network).
pub fn parse_port(s: &str) -> Result<PortMapping, SpecError> {
    let err = || SpecError::Port(s.to_string());
    let s2 = s.strip_suffix("/tcp").unwrap_or(s);
    let fields: Vec<&str> = s2.rsplitn(2, ':').collect();
    if fields.len() != 2 {
        return Err(err());
    }
    let container: u16 = fields[0].parse().map_err(|_| err())?;
    let host_field = fields[1].rsplit(':').next().unwrap_or(fields[1]);
    let host: u16 = host_field.parse().map_err(|_| err())?;
    if host == 0 || container == 0 {
        return Err(err());
    }
    Ok(PortMapping { host, container })
}

/// Parses `/host:/container[:ro|:rw]`.
pub fn parse_volume(s: &str) -> Result<Volume, SpecError> {
    let err = || SpecError::Volume(s.to_string());
    let parts: Vec<&str> = s.split(':').collect();
    let (host, container, read_only) = match parts.as_slice() {
        [h, c] => (*h, *c, false),
        [h, c, "ro"] => (*h, *c, true),
        [h, c, "rw"] => (*h, *c, false),
        _ => return Err(err()),
    };
    if !host.starts_with('/')
        || !container.starts_with('/')
        || container.split('/').any(|c| c == "..")
    {
        return Err(err());
    }
    Ok(Volume {
        host: host.into(),
        container: container.into(),
        read_only,
    })
}

/// Parses a size like `100m`, `1g`, `512k`, `1048576` (bytes).
pub fn parse_memory(s: &str) -> Result<u64, SpecError> {
    let err = || SpecError::Memory(s.to_string());
    let mut lower = s.trim().to_ascii_lowercase();
    if lower.len() > 1 && lower.ends_with('b') {
        lower.pop();
    }
    let (digits, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1u64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some(c) if c.is_ascii_digit() => (&lower[..], 1),
        _ => return Err(err()),
    };
    let n: u64 = digits.parse().map_err(|_| err())?;
    let bytes = n.checked_mul(mult).ok_or_else(err)?;
    if bytes < 4 << 20 {
        return Err(err());
    }
    Ok(bytes)
}

/// Parses `--cpus 0.5` into millicpus.
pub fn parse_cpus(s: &str) -> Result<u64, SpecError> {
    let err = || SpecError::Cpus(s.to_string());
    let v: f64 = s.trim().parse().map_err(|_| err())?;
    if !v.is_finite() || v <= 0.0 || v > 4096.0 {
        return Err(err());
    }
    let millis = (v * 1000.0).round() as u64;
    if millis == 0 {
        return Err(err());
    }
    Ok(millis)
}

/// Parses `--pids-limit N`.
pub fn parse_pids(s: &str) -> Result<u64, SpecError> {
    match s.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(SpecError::Pids(s.to_string())),
    }
}

/// Parses a signal name (`TERM`, `SIGKILL`, any case) or number.
pub fn parse_signal(s: &str) -> Result<i32, SpecError> {
    if let Ok(n) = s.trim().parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(SpecError::Signal(s.to_string()))
        };
    }
    let upper = s.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    Ok(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "WINCH" => libc::SIGWINCH,
        "PWR" => libc::SIGPWR,
        _ => return Err(SpecError::Signal(s.to_string())),
    })
}

/// Checks `KEY=VALUE`.
pub fn parse_env(s: &str) -> Result<String, SpecError> {
    match s.split_once('=') {
        Some((k, _)) if !k.is_empty() && !k.contains('\0') => Ok(s.to_string()),
        _ => Err(SpecError::Env(s.to_string())),
    }
}

/// Checks a container name (Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
pub fn check_name(s: &str) -> Result<(), SpecError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(SpecError::Name(s.to_string()))
    }
}

/// The command line: the image's entrypoint followed by the user's command
/// if given, else the image's cmd (Docker's rule).
pub fn command_line(
    entrypoint: &[String],
    image_cmd: &[String],
    user_cmd: &[String],
) -> Result<Vec<String>, SpecError> {
    let mut argv = entrypoint.to_vec();
    if user_cmd.is_empty() {
        argv.extend_from_slice(image_cmd);
    } else {
        argv.extend_from_slice(user_cmd);
    }
    if argv.is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(argv)
}

/// Merges environments: later entries override earlier ones with the same
/// key; `PATH` gets a default if none is set.
pub fn merge_env(base: &[String], overrides: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for kv in base.iter().chain(overrides) {
        let key = kv.split('=').next().unwrap_or("");
        out.retain(|e| e.split('=').next() != Some(key));
        out.push(kv.clone());
    }
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_host_and_container() {
        assert_eq!(
            parse_port("5000:80").unwrap(),
            PortMapping {
                host: 5000,
                container: 80
            }
        );
        assert_eq!(
            parse_port("127.0.0.1:8080:80").unwrap(),
            PortMapping {
                host: 8080,
                container: 80
            }
        );
        assert_eq!(
            parse_port("1:2/tcp").unwrap(),
            PortMapping {
                host: 1,
                container: 2
            }
        );
        for bad in ["", "80", "0:80", "80:0", "a:b", "70000:1", "1:2:"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn volumes_need_absolute_paths_and_known_modes() {
        let v = parse_volume("/a:/b:ro").unwrap();
        assert!(v.read_only);
        assert_eq!(v.container, PathBuf::from("/b"));
        assert!(!parse_volume("/a:/b").unwrap().read_only);
        for bad in ["a:/b", "/a:b", "/a", "/a:/b:xx", "/a:/../etc"] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_sizes_use_binary_units() {
        assert_eq!(parse_memory("100m").unwrap(), 100 << 20);
        assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
        assert_eq!(parse_memory("8192k").unwrap(), 8 << 20);
        assert_eq!(parse_memory("100mb").unwrap(), 100 << 20);
        assert_eq!(parse_memory("4194304").unwrap(), 4 << 20);
        for bad in ["", "m", "-1m", "1x", "1m", "99999999999999999g"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpus_become_millicpus() {
        assert_eq!(parse_cpus("0.5").unwrap(), 500);
        assert_eq!(parse_cpus("2").unwrap(), 2000);
        for bad in ["0", "-1", "abc", "NaN", "0.0001"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_envs_pids_are_checked() {
        assert!(check_name("web-1.a_b").is_ok());
        assert!(check_name("-x").is_err());
        assert!(check_name("a b").is_err());
        assert!(parse_env("A=1").is_ok());
        assert!(parse_env("A=").is_ok());
        assert!(parse_env("=1").is_err());
        assert!(parse_env("A").is_err());
        assert_eq!(parse_pids("20").unwrap(), 20);
        assert!(parse_pids("0").is_err());
    }

    #[test]
    fn signals_parse_by_name_or_number() {
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("sigquit").unwrap(), libc::SIGQUIT);
        assert_eq!(parse_signal("9").unwrap(), 9);
        for bad in ["", "0", "65", "BOGUS"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn command_line_follows_docker_rules() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command_line(&s(&["/ep"]), &s(&["a"]), &[]).unwrap(),
            s(&["/ep", "a"])
        );
        assert_eq!(
            command_line(&s(&["/ep"]), &s(&["a"]), &s(&["b"])).unwrap(),
            s(&["/ep", "b"])
        );
        assert_eq!(command_line(&[], &s(&["sh"]), &[]).unwrap(), s(&["sh"]));
        assert_eq!(command_line(&[], &[], &[]), Err(SpecError::NoCommand));
    }

    #[test]
    fn env_overrides_and_default_path() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let env = merge_env(&s(&["A=1", "B=2"]), &s(&["A=3"]));
        assert_eq!(
            env,
            s(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "B=2",
                "A=3"
            ])
        );
        let env = merge_env(&s(&["PATH=/x"]), &[]);
        assert_eq!(env, s(&["PATH=/x"]));
    }
}
