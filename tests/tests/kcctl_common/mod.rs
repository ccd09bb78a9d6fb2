//! Shared harness of the kcctl tests: runs the built `kcctl` against the
//! `kcnode serve-api` the API harness starts, and compares its output with
//! the real kubectl's for the same command (AGE cells masked, since the two
//! commands run a moment apart).

#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

use crate::api_common::{ApiServer, rows, stderr, stdout};

pub fn kcctl_cmd(api: &ApiServer, args: &[&str]) -> Command {
    let mut cmd = Command::new(kc_tests::bin("kcctl"));
    cmd.arg("--kubeconfig").arg(&api.kubeconfig).args(args);
    cmd.env_remove("KUBECONFIG");
    cmd
}

pub fn kcctl(api: &ApiServer, args: &[&str]) -> Output {
    kcctl_cmd(api, args).output().expect("run kcctl")
}

/// Runs kcctl with `input` on stdin.
pub fn kcctl_stdin(api: &ApiServer, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = kcctl_cmd(api, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kcctl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait kcctl")
}

/// Runs kcctl, asserts success, returns stdout.
pub fn ok(api: &ApiServer, args: &[&str]) -> String {
    let out = kcctl(api, args);
    assert!(
        out.status.success(),
        "kcctl {} failed: {}{}",
        args.join(" "),
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Runs kcctl, asserts failure with exit code 1, returns stderr.
pub fn fails(api: &ApiServer, args: &[&str]) -> String {
    let out = kcctl(api, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "kcctl {} should have failed with exit code 1; printed: {}{}",
        args.join(" "),
        stdout(&out),
        stderr(&out)
    );
    stderr(&out)
}

/// Table rows as words, with the cells under an AGE header replaced by `*`,
/// and every cell that counts seconds ("0s".."59s": an AGE or LAST SEEN of
/// objects the test just made, which can tick between the kcctl and the
/// kubectl run, also with `--no-headers`).
pub fn masked(text: &str) -> Vec<Vec<String>> {
    let seconds = |c: &str| {
        c.strip_suffix('s')
            .is_some_and(|n| n.parse::<u32>().is_ok())
    };
    let mut age_col = None;
    rows(text)
        .into_iter()
        .map(|mut r| {
            if let Some(i) = r.iter().position(|c| c == "AGE") {
                age_col = Some(i);
                return r;
            }
            if let Some(i) = age_col
                && i < r.len()
            {
                r[i] = "*".to_string();
            }
            for c in r.iter_mut().filter(|c| seconds(c)) {
                *c = "*".to_string();
            }
            r
        })
        .collect()
}

/// Asserts kcctl and kubectl print the same thing for `args` (AGE masked,
/// stdout and stderr both, same exit status).
pub fn same_as_kubectl(api: &ApiServer, args: &[&str]) -> String {
    let ours = kcctl(api, args);
    let theirs = api.kubectl(args);
    assert_eq!(
        masked(&stdout(&ours)),
        masked(&stdout(&theirs)),
        "`{}` stdout differs:\n--- kcctl\n{}--- kubectl\n{}",
        args.join(" "),
        stdout(&ours),
        stdout(&theirs)
    );
    assert_eq!(
        stderr(&ours).trim(),
        stderr(&theirs).trim(),
        "`{}` stderr differs",
        args.join(" ")
    );
    assert_eq!(
        ours.status.success(),
        theirs.status.success(),
        "`{}` exit status differs",
        args.join(" ")
    );
    stdout(&ours)
}
