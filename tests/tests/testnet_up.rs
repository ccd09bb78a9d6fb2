//! `testnet/up.sh` and `testnet/down.sh` as a user runs them: a 1+1
//! testnet comes up with every Node Ready and goes away without a trace;
//! a run that fails (here: no time at all to wait for the Nodes) says
//! which hosts were not Ready, prints the end of their logs, and keeps
//! every log in a folder it names, which the teardown leaves alone.
//!
//! Each run has a testnet name of its own (`KCNET`), so its namespaces,
//! nodes, cgroups and port are its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kc_tests::container::{stderr, stdout};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testnet")
        .join(name)
}

fn run(name: &str, kcnet: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new("bash")
        .arg(script(name))
        .args(args)
        .env("KCNET", kcnet)
        .env("KCNODE", kc_tests::bin("kcnode"))
        .envs(env.iter().copied())
        .output()
        .expect("run a testnet script")
}

/// Tears the testnet down when the test ends, also when it fails.
struct Down(&'static str);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = run("down.sh", self.0, &[], &[]);
    }
}

#[test]
fn up_brings_every_node_ready_and_down_removes_it() {
    kc_tests::require_root();
    let kcnet = "kctest-up";
    let _down = Down(kcnet);
    let out = run("up.sh", kcnet, &["--workers", "1"], &[]);
    assert!(
        out.status.success(),
        "up.sh failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("testnet: 2 nodes Ready in"),
        "{}",
        stdout(&out)
    );
    let down = run("down.sh", kcnet, &[], &[]);
    assert!(down.status.success(), "{}", stderr(&down));
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !stdout(&namespaces).contains(kcnet),
        "{}",
        stdout(&namespaces)
    );
    assert!(!Path::new(&format!("/run/kc-testnet-{kcnet}")).exists());
}

#[test]
fn a_failed_up_names_the_hosts_shows_their_logs_and_keeps_them() {
    kc_tests::require_root();
    let kcnet = "kctest-fail";
    let _down = Down(kcnet);
    let out = run(
        "up.sh",
        kcnet,
        &["--workers", "1"],
        &[("KCNET_READY_TIMEOUT", "0")],
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "up.sh passed with no time to wait");
    assert!(
        err.contains("only 0 of 2 nodes Ready after 0 s (not Ready: cp1 w1)"),
        "{err}"
    );
    assert!(err.contains("--- last lines of w1's log"), "{err}");
    let kept = err
        .split("every host's log is kept in ")
        .nth(1)
        .map(|s| PathBuf::from(s.trim()))
        .unwrap_or_else(|| panic!("no kept-logs folder named: {err}"));
    let down = run("down.sh", kcnet, &[], &[]);
    assert!(down.status.success(), "{}", stderr(&down));
    // cp1 had printed its join commands, so its log has lines; w1 had
    // just started (its log may still be empty), but the file is kept.
    let cp1 = std::fs::read_to_string(kept.join("cp1.log")).expect("cp1.log kept after down.sh");
    assert!(!cp1.is_empty(), "cp1.log is empty");
    assert!(kept.join("w1.log").exists(), "w1.log not kept");
    std::fs::remove_dir_all(&kept).unwrap();
}
