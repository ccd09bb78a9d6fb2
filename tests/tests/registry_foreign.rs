//! Pods whose image names another registry (`HOST:PORT/name:tag`): the
//! reference implementation of the OCI distribution API (Debian's
//! `docker-registry`, plain HTTP, started in a host of the test LAN) holds
//! an image that the cluster registry never saw; a worker joined with
//! `--insecure-registry HOST:PORT` pulls it (verified, the pushed manifest
//! digest) and the pod runs. A pod whose registry does not answer waits
//! with `ErrImagePull`, then `ImagePullBackOff`, and `kubectl describe
//! pod` says why.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kc_tests::cluster::{Host, Lan, eventually};
use kc_tests::container::{stderr, stdout};
use kc_tests::ha::{self, kubectl};
use serde_json::Value;

/// `docker-registry serve` in a host's namespace; killed by PID on drop.
struct Registry {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start(host: &Host) -> Registry {
        let bin = kc_tests::require_program("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let address = format!("{}:5000", host.ip);
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", host.ns.name))
            .arg(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            child,
            address,
            _dir: dir,
        };
        eventually(
            Duration::from_secs(20),
            "docker-registry serving /v2/",
            || {
                let out = host.exec(&[
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    &format!("http://{}/v2/", registry.address),
                ]);
                (stdout(&out) == "200").then_some(())
            },
        );
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pod(name: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {image}\n    command: [\"sh\", \"-c\", \"cat /hello; sleep 3600\"]\n"
    )
}

/// The first container's waiting reason and message of pod `name`.
fn waiting(cp: &Host, name: &str) -> (String, String) {
    let out = kubectl(cp, &["get", "pod", name, "-o", "json"]);
    let pod: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let w = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
    (
        w["reason"].as_str().unwrap_or_default().to_string(),
        w["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn a_pod_runs_an_image_from_another_registry_and_an_unreachable_one_backs_off() {
    kc_tests::require_program("curl", "curl");
    let mut lan = Lan::new();
    let cp = lan.host("cp");
    let w = lan.host("w");
    let other = lan.host("reg");
    let registry = Registry::start(&other);

    // An image only the other registry has, pushed there over plain HTTP.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("hello"),
        format!("hello from {}\n", registry.address),
    )
    .unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY hello /hello\n",
    )
    .unwrap();
    let reference = format!("{}/foreign/app:1", registry.address);
    for args in [
        vec!["image", "base", "busybox"],
        vec!["build", "-t", "foreign/app:1", ctx.path().to_str().unwrap()],
        vec!["image", "push", "foreign/app:1", &reference, "--insecure"],
    ] {
        let out = other.run(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    let out = other.run(&["image", "inspect", "foreign/app:1"]);
    let pushed: Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");

    let img = w.run(&["image", "base", "busybox"]);
    assert!(img.status.success(), "busybox: {}", stderr(&img));
    let (init, joins) = ha::init(&cp, &["--no-workloads"]);
    let worker = ha::join(
        &w,
        "join",
        &joins.worker,
        &["--insecure-registry", &registry.address],
    );
    let _procs = (init, worker);
    ha::wait_ready(&cp, &w.name);

    cp.apply(&pod("foreign", &reference));
    eventually(
        Duration::from_secs(90),
        "the pod of the foreign image Running",
        || {
            let out = kubectl(
                &cp,
                &["get", "pod", "foreign", "-o", "jsonpath={.status.phase}"],
            );
            (stdout(&out) == "Running").then_some(())
        },
    );
    let out = w.run(&["image", "inspect", &reference]);
    let pulled: Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    assert_eq!(
        pulled[0]["Manifest"], pushed[0]["Manifest"],
        "same manifest digest"
    );
    assert_eq!(pulled[0]["Id"], pushed[0]["Id"], "same image id");
    let logs = eventually(Duration::from_secs(20), "the pod's output", || {
        let out = kubectl(&cp, &["logs", "foreign"]);
        let text = stdout(&out);
        (!text.is_empty()).then_some(text)
    });
    assert_eq!(logs, format!("hello from {}\n", registry.address));

    // A registry that does not answer (a closed port of that host).
    let nowhere = format!("{}:5999/foreign/app:1", other.ip);
    cp.apply(&pod("nowhere", &nowhere));
    // ErrImagePull lasts until the next sync (about a second), then the
    // back-off shows: both are seen in the status or, at the least, the
    // failed pull's Event.
    let mut seen = Vec::new();
    eventually(Duration::from_secs(60), "ImagePullBackOff", || {
        let (reason, message) = waiting(&cp, "nowhere");
        if !reason.is_empty() && seen.last().map(|(r, _)| r) != Some(&reason) {
            seen.push((reason.clone(), message));
        }
        (reason == "ImagePullBackOff").then_some(())
    });
    if let Some((_, message)) = seen.iter().find(|(r, _)| r == "ErrImagePull") {
        assert!(
            message.contains(&format!("cannot reach the registry {}:5999", other.ip)),
            "{message}"
        );
    }
    let out = kubectl(&cp, &["describe", "pod", "nowhere"]);
    let described = stdout(&out);
    for want in [
        "ImagePullBackOff",
        "ErrImagePull",
        &format!("cannot reach the registry {}:5999", other.ip),
    ] {
        assert!(
            described.contains(want),
            "describe lacks {want:?}:\n{described}"
        );
    }
}
