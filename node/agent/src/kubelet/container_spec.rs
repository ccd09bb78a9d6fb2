//! A Kubernetes container (of a pod spec) as a runtime `ContainerSpec`:
//! command/args against the image's entrypoint/cmd (Kubernetes' rules,
//! with `$(VAR)` expansion), working dir, user (runAsUser), memory and CPU
//! limits, and the runtime name of each run. Pure, unit-tested.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use kc_runtime::container::spec::{
    ContainerSpec, NamespaceMode, Resources, SharedNamespaces, Volume,
};
use kc_runtime::image::ResolvedImage;

use super::env::expand;
use super::quantity;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("container {0:?}: no command: the image has no Entrypoint/Cmd and the pod gives none")]
    NoCommand(String),
    #[error("container {container:?}: resources.limits.{resource}: {message}")]
    Limit {
        container: String,
        resource: String,
        message: String,
    },
    #[error("container {0:?}: workingDir must be an absolute path")]
    WorkDir(String),
}

/// Kubernetes' rules: `command` replaces the entrypoint (and drops the
/// image's cmd); `args` replaces the cmd.
pub fn argv(
    entrypoint: &[String],
    image_cmd: &[String],
    command: &[String],
    args: &[String],
) -> Vec<String> {
    match (command.is_empty(), args.is_empty()) {
        (false, _) => command.iter().chain(args).cloned().collect(),
        (true, false) => entrypoint.iter().chain(args).cloned().collect(),
        (true, true) => entrypoint.iter().chain(image_cmd).cloned().collect(),
    }
}

/// The runtime name of run `restart` of container `c` of pod (ns, name,
/// uid): readable, unique, at most 64 characters from the runtime's set.
pub fn runtime_name(namespace: &str, pod: &str, uid: &str, c: &str, restart: i32) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() || "_.-".contains(ch) {
                    ch
                } else {
                    '-'
                }
            })
            .collect()
    };
    let u = clean(uid);
    let short_uid: String = u[u.len().saturating_sub(8)..].to_string();
    let tail = format!("_{short_uid}_{restart}");
    let head = format!("k8s_{}_{}_{}", clean(c), clean(pod), clean(namespace));
    let room = 64 - tail.len().min(40);
    let head: String = head.chars().take(room).collect();
    format!("{head}{tail}")
}

/// The pod uses the node's network (`spec.hostNetwork`).
pub fn host_network(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.host_network) == Some(true)
}

fn limit(c: &Container, key: &str) -> Option<String> {
    c.resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get(key))
        .map(|q| q.0.clone())
}

/// The runtime spec of one run of `c` (namespaces are the sandbox's, set by
/// the runtime when the container is created in it).
pub fn build(
    pod: &Pod,
    c: &Container,
    image: &ResolvedImage,
    env: Vec<String>,
    volumes: Vec<Volume>,
    name: String,
) -> Result<ContainerSpec, SpecError> {
    let vars: BTreeMap<String, String> = env
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let x = |v: &Option<Vec<String>>| -> Vec<String> {
        v.iter().flatten().map(|s| expand(s, &vars)).collect()
    };
    let cfg = &image.config;
    let argv = argv(&cfg.entrypoint, &cfg.cmd, &x(&c.command), &x(&c.args));
    if argv.is_empty() {
        return Err(SpecError::NoCommand(c.name.clone()));
    }
    let lim_err = |resource: &str, e: quantity::QuantityError| SpecError::Limit {
        container: c.name.clone(),
        resource: resource.to_string(),
        message: e.to_string(),
    };
    let memory = limit(c, "memory")
        .map(|q| quantity::bytes(&q).map_err(|e| lim_err("memory", e)))
        .transpose()?;
    if memory.is_some_and(|m| m < 4 << 20) {
        return Err(SpecError::Limit {
            container: c.name.clone(),
            resource: "memory".into(),
            message: "at least 4Mi is needed to start a container".into(),
        });
    }
    let cpu_millis = limit(c, "cpu")
        .map(|q| quantity::millicpus(&q).map_err(|e| lim_err("cpu", e)))
        .transpose()?
        .map(|m| m.max(1));
    let working_dir = c
        .working_dir
        .clone()
        .unwrap_or_else(|| cfg.working_dir.clone());
    if !working_dir.is_empty() && !working_dir.starts_with('/') {
        return Err(SpecError::WorkDir(c.name.clone()));
    }
    let run_as = c
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_user)
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.security_context.as_ref())
                .and_then(|s| s.run_as_user)
        });
    Ok(ContainerSpec {
        name,
        image: image.reference.clone(),
        layers: image.layers.clone(),
        argv,
        env: kc_runtime::container::spec::merge_env(&[], &env),
        working_dir,
        user: run_as
            .map(|u| u.to_string())
            .unwrap_or_else(|| cfg.user.clone()),
        hostname: String::new(),
        tty: c.tty == Some(true),
        stdin: c.stdin == Some(true),
        ports: vec![],
        volumes,
        resources: Resources {
            memory,
            cpu_millis,
            pids: None,
        },
        namespaces: SharedNamespaces {
            network: if host_network(pod) {
                NamespaceMode::Host
            } else {
                NamespaceMode::New
            },
            ..Default::default()
        },
        auto_remove: false,
        // An unknown STOPSIGNAL falls back to SIGTERM rather than blocking the pod.
        stop_signal: (!cfg.stop_signal.is_empty())
            .then(|| kc_runtime::container::spec::parse_signal(&cfg.stop_signal).ok())
            .flatten(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn command_and_args_follow_kubernetes() {
        let (ep, cmd) = (s(&["/ep"]), s(&["def"]));
        assert_eq!(argv(&ep, &cmd, &[], &[]), s(&["/ep", "def"]));
        assert_eq!(argv(&ep, &cmd, &[], &s(&["a"])), s(&["/ep", "a"]));
        assert_eq!(argv(&ep, &cmd, &s(&["sh"]), &[]), s(&["sh"]));
        assert_eq!(argv(&ep, &cmd, &s(&["sh"]), &s(&["-c"])), s(&["sh", "-c"]));
    }

    #[test]
    fn runtime_names_are_valid_and_bounded() {
        let n = runtime_name("default", "web", "0123456789ab", "nginx", 2);
        assert_eq!(n, "k8s_nginx_web_default_456789ab_2");
        let long = runtime_name(&"n".repeat(60), &"p".repeat(60), "u", "c", 1);
        assert!(long.len() <= 64, "{long}");
        assert!(long.ends_with("_u_1"));
        kc_runtime::container::spec::check_name(&long).unwrap();
    }

    #[test]
    fn limits_become_runtime_resources() {
        let image = ResolvedImage {
            id: String::new(),
            reference: "busybox".into(),
            config: Default::default(),
            layers: vec![],
        };
        let mut c = Container {
            name: "c".into(),
            command: Some(s(&["echo", "$(GREETING)"])),
            ..Default::default()
        };
        c.resources = Some(ResourceRequirements {
            limits: Some(
                [("memory", "64Mi"), ("cpu", "250m")]
                    .iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect(),
            ),
            ..Default::default()
        });
        let spec = build(
            &Pod::default(),
            &c,
            &image,
            s(&["GREETING=hi"]),
            vec![],
            "n".into(),
        )
        .unwrap();
        assert_eq!(spec.argv, s(&["echo", "hi"]));
        assert_eq!(spec.resources.memory, Some(64 << 20));
        assert_eq!(spec.resources.cpu_millis, Some(250));
        c.command = None;
        assert_eq!(
            build(&Pod::default(), &c, &image, vec![], vec![], "n".into()),
            Err(SpecError::NoCommand("c".into()))
        );
    }
}
