//! Bad input at kcctl's doors, end to end against a real API server:
//!
//! - broken kubeconfigs (missing, empty, random bytes, wrong shapes,
//!   dangling context/cluster/user names, bad URLs, bad base64, seeded
//!   random damage of a good one): kcctl exits non-zero with an `error:`
//!   line naming the problem, never a panic.
//! - bad manifests through `kcctl apply -f` (a YAML syntax error, a bad
//!   document among good ones, an unknown kind, a missing kind): kcctl
//!   fails like kubectl and leaves no object kubectl does not leave (each
//!   tool applies into its own namespace; the sets are compared; kcctl
//!   parses every document before applying any, so after a syntax error
//!   it applies nothing where kubectl has applied the documents before);
//!   seeded random damage of a good manifest never panics.

mod api_common;
mod kcctl_common;

use std::path::Path;
use std::process::Output;

use api_common::{ApiServer, stderr, stdout};
use kc_tests::fuzz;

const RANDOM_CASES: usize = 15;

fn no_panic(out: &Output, what: &str) {
    let err = stderr(out);
    assert!(
        !err.contains("panicked") && out.status.code() != Some(101),
        "{what}: kcctl panicked: {err}"
    );
}

/// A kubeconfig with context `c` using cluster `context_cluster` and a user
/// `u` with `user` (a YAML flow map); `clusters` is the clusters section.
fn kubeconfig(clusters: &str, context_cluster: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n{clusters}contexts:\n- name: c\n  context: {{cluster: {context_cluster}, user: u}}\nusers:\n- name: u\n  user: {user}\n"
    )
}

/// A clusters section with one cluster `k` of `fields` (YAML flow map body).
fn cluster(fields: &str) -> String {
    format!("clusters:\n- name: k\n  cluster: {{{fields}}}\n")
}

/// `kcctl --kubeconfig <path> get pods`.
fn get_pods_with(path: &Path) -> Output {
    std::process::Command::new(kc_tests::bin("kcctl"))
        .arg("--kubeconfig")
        .arg(path)
        .args(["get", "pods"])
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kcctl")
}

/// kcctl with kubeconfig `text` fails clearly.
fn refused(api: &ApiServer, name: &str, text: &[u8]) -> String {
    let path = api.dir.path().join(format!("{name}.kubeconfig"));
    std::fs::write(&path, text).unwrap();
    let out = get_pods_with(&path);
    no_panic(&out, name);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "{name}: kcctl succeeded with a broken kubeconfig: {}",
        stdout(&out)
    );
    assert!(err.starts_with("error: "), "{name}: unclear error: {err:?}");
    err
}

#[test]
fn broken_kubeconfigs_are_refused_clearly() {
    let api = ApiServer::start();
    let good = std::fs::read_to_string(&api.kubeconfig).expect("admin kubeconfig");
    let missing = api.dir.path().join("no-such.kubeconfig");
    let out = get_pods_with(&missing);
    no_panic(&out, "missing file");
    assert!(
        stderr(&out).contains("no-such.kubeconfig"),
        "{}",
        stderr(&out)
    );

    let server = api.url.clone();
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), ""),
        ("a list", "- a\n- b\n".into(), ""),
        ("not yaml", "{{{{ :::: ]]]]".into(), ""),
        (
            "no current context",
            good.lines()
                .filter(|l| !l.starts_with("current-context"))
                .collect::<Vec<_>>()
                .join("\n"),
            "",
        ),
        (
            "dangling context",
            good.lines()
                .map(|l| {
                    if l.starts_with("current-context") {
                        "current-context: nowhere".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
            "nowhere",
        ),
        (
            "dangling cluster",
            kubeconfig("", "gone", "{token: t}"),
            "gone",
        ),
        (
            "bad server URL",
            kubeconfig(&cluster("server: \"ht!tp://[::bad\""), "k", "{token: t}"),
            "",
        ),
        (
            "bad CA base64",
            kubeconfig(
                &cluster(&format!(
                    "server: \"{server}\", certificate-authority-data: \"%%%not base64%%%\""
                )),
                "k",
                "{token: t}",
            ),
            "",
        ),
        (
            "garbage client key",
            kubeconfig(
                &cluster(&format!(
                    "server: \"{server}\", insecure-skip-tls-verify: true"
                )),
                "k",
                "{client-certificate-data: aGVsbG8=, client-key-data: aGVsbG8=}",
            ),
            "",
        ),
    ];
    for (name, text, want) in &cases {
        let err = refused(&api, name, text.as_bytes());
        eprintln!("{name}: {err}");
        assert!(err.contains(want), "{name}: want {want:?} in {err}");
    }
    let mut rng = fuzz::rng(14);
    for case in 0..RANDOM_CASES {
        let bytes = fuzz::garbage(&mut rng, 2000);
        refused(&api, &format!("random-{case}"), &bytes);
        // Damage of the good one: may still work (a harmless byte), must not panic.
        let damaged = fuzz::damage(&mut rng, good.as_bytes());
        let path = api.dir.path().join("damaged.kubeconfig");
        std::fs::write(&path, &damaged).unwrap();
        let out = get_pods_with(&path);
        no_panic(&out, &format!("damaged kubeconfig {case}"));
        if !out.status.success() {
            assert!(
                stderr(&out).starts_with("error: "),
                "case {case}: {}",
                stderr(&out)
            );
        }
    }
}

fn cm(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: v\n")
}

/// The ConfigMaps (but the root CA one) in `ns`.
fn configmaps(api: &ApiServer, ns: &str) -> Vec<String> {
    let out = api.ok(&["get", "configmaps", "-n", ns, "-o", "name"]);
    out.lines()
        .filter(|l| !l.contains("kube-root-ca.crt"))
        .map(String::from)
        .collect()
}

#[test]
fn bad_manifests_fail_like_kubectl_and_apply_no_more_than_it() {
    let api = ApiServer::start();
    let cases: Vec<(&str, String)> = vec![
        ("syntax error", format!("{}  bad: [unclosed\n", cm("s1"))),
        (
            "syntax error in the second document",
            format!(
                "{}---\nkind: ConfigMap\nmetadata: {{name: [\n---\n{}",
                cm("m1"),
                cm("m3")
            ),
        ),
        (
            "invalid object in the middle",
            format!("{}---\n{}---\n{}", cm("v1"), cm("Bad_Name"), cm("v3")),
        ),
        (
            "unknown kind",
            format!(
                "{}---\napiVersion: v1\nkind: Widget\nmetadata:\n  name: w\n",
                cm("u1")
            ),
        ),
        (
            "no kind",
            format!("{}---\napiVersion: v1\nmetadata:\n  name: nk\n", cm("k1")),
        ),
    ];
    for (i, (what, manifest)) in cases.iter().enumerate() {
        let (ns_kubectl, ns_kcctl) = (format!("kubectl-{i}"), format!("kcctl-{i}"));
        api.ok(&["create", "namespace", &ns_kubectl]);
        api.ok(&["create", "namespace", &ns_kcctl]);
        let path = api.dir.path().join(format!("bad-{i}.yaml"));
        std::fs::write(&path, manifest).unwrap();
        let file = path.to_str().expect("utf-8 path");
        let theirs = api.kubectl(&["apply", "-n", &ns_kubectl, "-f", file]);
        let ours = kcctl_common::kcctl(&api, &["apply", "-n", &ns_kcctl, "-f", file]);
        no_panic(&ours, what);
        eprintln!(
            "{what}: kubectl: {}kcctl: {}",
            stderr(&theirs),
            stderr(&ours)
        );
        assert_eq!(
            ours.status.success(),
            theirs.status.success(),
            "{what}: kubectl {} but kcctl {}",
            stderr(&theirs),
            stderr(&ours)
        );
        assert!(
            ours.status.success() || stderr(&ours).to_lowercase().contains("error"),
            "{what}: unclear error: {}",
            stderr(&ours)
        );
        let (ours, theirs) = (configmaps(&api, &ns_kcctl), configmaps(&api, &ns_kubectl));
        assert!(
            ours.iter().all(|o| theirs.contains(o)),
            "{what}: kcctl applied {ours:?}, kubectl only {theirs:?}"
        );
    }

    let good = format!("{}---\n{}---\n{}", cm("r1"), cm("r2"), cm("r3"));
    let mut rng = fuzz::rng(15);
    for case in 0..RANDOM_CASES {
        let damaged = fuzz::damage(&mut rng, good.as_bytes());
        let out = kcctl_common::kcctl_stdin(
            &api,
            &["apply", "-n", "default", "-f", "-"],
            &String::from_utf8_lossy(&damaged),
        );
        no_panic(&out, &format!("damaged manifest {case}"));
        if !out.status.success() {
            assert!(
                stderr(&out).to_lowercase().contains("error"),
                "case {case}: {}",
                stderr(&out)
            );
        }
    }
    api.ok(&["get", "--raw", "/readyz"]);
}
