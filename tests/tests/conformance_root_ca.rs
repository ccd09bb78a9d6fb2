//! Conformance "RootCA ConfigMap test" (`[sig-auth] ServiceAccounts should
//! guarantee kube-root-ca.crt exist in any namespace [Conformance]`),
//! written from its description: every namespace has a ConfigMap
//! `kube-root-ca.crt` with the cluster's CA, 1. created automatically,
//! 2. recreated if deleted, 3. reconciled if modified. Driven with kubectl
//! against `kcnode serve-api`.

mod api_common;

use std::time::{Duration, Instant};

use api_common::ApiServer;

/// `data["ca.crt"]` of kube-root-ca.crt in `ns` once `want(ca)` holds.
fn wait_ca(api: &ApiServer, ns: &str, what: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = api.kubectl(&[
            "-n",
            ns,
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ]);
        let ca = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && want(&ca) {
            return ca;
        }
        assert!(
            Instant::now() < deadline,
            "kube-root-ca.crt in {ns}: {what} not seen in 30 s (last: {ca:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sig_auth_service_accounts_should_guarantee_kube_root_ca_crt_exist_in_any_namespace() {
    let api = ApiServer::start();
    let ca = std::fs::read_to_string(api.ca_pem()).expect("the cluster CA");
    let same = |got: &str| got.trim() == ca.trim();
    // 1. Created automatically, in a namespace made now too.
    wait_ca(&api, "default", "the CA", same);
    api.ok(&["create", "namespace", "rootca-conf"]);
    wait_ca(&api, "rootca-conf", "the CA", same);
    // 2. Recreated if deleted.
    let uid = |api: &ApiServer| {
        let out = api.kubectl(&[
            "-n",
            "rootca-conf",
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-o",
            "jsonpath={.metadata.uid}",
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).to_string())
            .filter(|u| !u.is_empty())
    };
    let before = uid(&api).expect("kube-root-ca.crt has a uid");
    api.ok(&[
        "-n",
        "rootca-conf",
        "delete",
        "configmap",
        "kube-root-ca.crt",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while uid(&api).is_none_or(|now| now == before) {
        assert!(
            Instant::now() < deadline,
            "kube-root-ca.crt was not recreated"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_ca(&api, "rootca-conf", "the CA after recreation", same);
    // 3. Reconciled if modified.
    api.ok(&[
        "-n",
        "rootca-conf",
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "--type=merge",
        "-p",
        r#"{"data":{"ca.crt":"tampered"}}"#,
    ]);
    wait_ca(&api, "rootca-conf", "the CA put back", same);
}
