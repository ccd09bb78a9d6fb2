//! The kinds that extend or describe the API server itself, served since
//! the table was completed: CertificateSigningRequests, admission webhook
//! configurations, ValidatingAdmissionPolicies and bindings, APIServices,
//! ComponentStatuses and Bindings, driven with kubectl 1.32 against
//! `kcnode serve-api`; and `kubectl apply` of one object of every kind
//! the table gained, each printed with kubectl's columns.

mod api_common;
mod kinds_common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use api_common::{ApiServer, stderr};
use kinds_common::{Kind, api_operations, get, must, raw, write_json};
use serde_json::{Value, json};

/// A PEM certificate request, base64-encoded as `spec.request` takes it
/// (made once with openssl).
fn request_b64() -> &'static str {
    static REQUEST: OnceLock<String> = OnceLock::new();
    REQUEST.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = std::process::Command::new(kc_tests::require_program("openssl", "openssl"))
            .current_dir(dir.path())
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "key.pem",
                "-out",
                "csr.pem",
                "-subj",
                "/CN=e2e-user/O=e2e",
            ])
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl req: {}", stderr(&out));
        let b64 = std::process::Command::new(kc_tests::require_program("openssl", "openssl"))
            .current_dir(dir.path())
            .args(["base64", "-A", "-in", "csr.pem"])
            .output()
            .expect("run openssl base64");
        assert!(b64.status.success(), "openssl base64: {}", stderr(&b64));
        String::from_utf8_lossy(&b64.stdout).trim().to_string()
    })
}

fn csr(name: &str) -> Value {
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": request_b64(), "signerName": "example.com/e2e-signer",
            "usages": ["client auth", "digital signature"], "expirationSeconds": 86400}})
}

fn webhook(url: &str) -> Value {
    json!({"name": "deny.e2e.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
        "clientConfig": {"url": url},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]})
}

fn validating_webhooks(name: &str) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name}, "webhooks": [webhook("https://127.0.0.1:1/validate")]})
}

fn mutating_webhooks(name: &str) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name}, "webhooks": [webhook("https://127.0.0.1:1/mutate")]})
}

fn admission_policy(name: &str) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
            "validations": [{"expression": "object.spec.replicas <= 5"}]}})
}

fn policy_binding(name: &str) -> Value {
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": "replica-limit", "validationActions": ["Deny"]}})
}

fn api_service(name: &str) -> Value {
    // APIService names are `<version>.<group>`: the test's names become groups.
    let group = format!("{name}.e2e.example.com");
    json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": format!("v1.{group}")},
        "spec": {"group": group, "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15,
            "service": {"namespace": "default", "name": "e2e-api"}, "insecureSkipTLSVerify": true}})
}

const fn kind(
    group: &'static str,
    plural: &'static str,
    status: bool,
    object: fn(&str) -> Value,
) -> Kind {
    Kind {
        group,
        version: "v1",
        plural,
        namespaced: false,
        status,
        object,
    }
}

const CSRS: Kind = kind(
    "certificates.k8s.io",
    "certificatesigningrequests",
    true,
    csr,
);

#[test]
fn sig_auth_certificates_api_privileged_cluster_admin_should_support_csr_api_operations() {
    api_operations(&CSRS);
    let api = ApiServer::start();
    let resources = raw(&api, "/apis/certificates.k8s.io/v1");
    let verbs_of = |name: &str| -> Value {
        resources["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["verbs"].clone())
            .unwrap_or_else(|| panic!("discovery lacks {name}: {resources}"))
    };
    assert_eq!(
        verbs_of("certificatesigningrequests/approval"),
        json!(["get", "patch", "update"])
    );
    assert_eq!(
        verbs_of("certificatesigningrequests/status"),
        json!(["get", "patch", "update"])
    );
    must(write_json(&api, &["create"], &csr("e2e")), "create");
    let made = get(&api, &CSRS, "e2e");
    assert_eq!(
        made["spec"]["username"], "kubernetes-admin",
        "the requester is recorded"
    );
    assert!(
        made["spec"]["groups"]
            .to_string()
            .contains("system:authenticated")
    );
    let printed = api.ok(&["get", "csr", "e2e"]);
    let row: Vec<&str> = printed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        (row[0], row[2], row[3], row[4], row[5]),
        (
            "e2e",
            "example.com/e2e-signer",
            "kubernetes-admin",
            "24h",
            "Pending"
        )
    );

    // Approval: the condition goes in through /approval only.
    let path = "/apis/certificates.k8s.io/v1/certificatesigningrequests/e2e/approval";
    let mut approval = raw(&api, path);
    approval["status"]["conditions"] = json!([{"type": "Approved", "status": "True",
        "reason": "E2E", "message": "approved by the test"}]);
    must(
        write_json(&api, &["replace", "--raw", path], &approval),
        "update approval",
    );
    assert_eq!(
        get(&api, &CSRS, "e2e")["status"]["conditions"][0]["type"],
        "Approved"
    );
    must(
        api.kubectl(&[
            "patch",
            "csr",
            "e2e",
            "--subresource=approval",
            "--type=merge",
            "-p",
            r#"{"status":{"conditions":[{"type":"Approved","status":"True","reason":"E2EPatched","message":"patched"}]}}"#,
        ]),
        "patch approval",
    );
    assert_eq!(
        get(&api, &CSRS, "e2e")["status"]["conditions"][0]["reason"],
        "E2EPatched"
    );
    must(
        api.kubectl(&[
            "patch",
            "csr",
            "e2e",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"certificate":"Zm9v"}}"#,
        ]),
        "patch status",
    );
    let printed = api.ok(&["get", "csr", "e2e"]);
    assert!(printed.contains("Approved,Issued"), "{printed}");
    let err = api.fails(&[
        "patch",
        "csr",
        "e2e",
        "--type=merge",
        "-p",
        r#"{"spec":{"signerName":"example.com/other"}}"#,
    ]);
    assert!(err.contains("field is immutable"), "{err}");
}

#[test]
fn certificate_signing_requests_must_carry_a_real_request() {
    let api = ApiServer::start();
    let mut garbage = csr("garbage");
    garbage["spec"]["request"] = json!("bm90IGEgY2VydGlmaWNhdGUgcmVxdWVzdA==");
    let out = write_json(&api, &["create"], &garbage);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("spec.request: Invalid value"), "{err}");
    let mut signer = csr("no-signer");
    signer["spec"]["signerName"] = json!("nodomain");
    let err = stderr(&write_json(&api, &["create"], &signer));
    assert!(err.contains("spec.signerName: Invalid value"), "{err}");
    let mut short = csr("short");
    short["spec"]["expirationSeconds"] = json!(60);
    let err = stderr(&write_json(&api, &["create"], &short));
    assert!(
        err.contains("may not specify a duration less than 600 seconds"),
        "{err}"
    );
}

#[test]
fn webhook_configurations_support_api_operations_with_kubernetes_defaults() {
    for k in [
        kind(
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            false,
            validating_webhooks,
        ),
        kind(
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            false,
            mutating_webhooks,
        ),
    ] {
        api_operations(&k);
    }
    let api = ApiServer::start();
    must(
        write_json(&api, &["create"], &mutating_webhooks("defaults")),
        "create",
    );
    let got: Value = serde_json::from_str(&api.ok(&[
        "get",
        "mutatingwebhookconfiguration",
        "defaults",
        "-o",
        "json",
    ]))
    .unwrap();
    let hook = &got["webhooks"][0];
    assert_eq!(
        (
            &hook["failurePolicy"],
            &hook["matchPolicy"],
            &hook["timeoutSeconds"],
            &hook["reinvocationPolicy"],
            &hook["rules"][0]["scope"]
        ),
        (
            &json!("Fail"),
            &json!("Equivalent"),
            &json!(10),
            &json!("Never"),
            &json!("*")
        )
    );
    let printed = api.ok(&["get", "mutatingwebhookconfigurations"]);
    let row: Vec<&str> = printed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..2], ["defaults", "1"]);

    let mut bad = validating_webhooks("bad");
    bad["webhooks"][0]["name"] = json!("deny");
    bad["webhooks"][0]["clientConfig"] = json!({"url": "http://127.0.0.1/"});
    bad["webhooks"][0]
        .as_object_mut()
        .unwrap()
        .remove("sideEffects");
    let err = stderr(&write_json(&api, &["create"], &bad));
    for want in [
        "webhooks[0].name: Invalid value: \"deny\": should be a domain with at least three segments separated by dots",
        "webhooks[0].sideEffects: Required value",
        "webhooks[0].clientConfig.url: Invalid value",
    ] {
        assert!(err.contains(want), "{want} not in: {err}");
    }
}

#[test]
fn validating_admission_policies_and_bindings_support_api_operations() {
    api_operations(&kind(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
        true,
        admission_policy,
    ));
    api_operations(&kind(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
        false,
        policy_binding,
    ));
    let api = ApiServer::start();
    let mut both = policy_binding("both");
    both["spec"]["validationActions"] = json!(["Deny", "Warn"]);
    let err = stderr(&write_json(&api, &["create"], &both));
    assert!(err.contains("must not contain both Deny and Warn"), "{err}");
    let mut empty = admission_policy("empty");
    empty["spec"].as_object_mut().unwrap().remove("validations");
    let err = stderr(&write_json(&api, &["create"], &empty));
    assert!(
        err.contains("validations or auditAnnotations must contain at least one item"),
        "{err}"
    );
}

#[test]
fn api_services_support_api_operations_and_are_named_after_their_group_version() {
    let k = kind("apiregistration.k8s.io", "apiservices", true, api_service);
    // api_operations names objects ops-1..3; an APIService's name is its
    // version and group, so the object function maps one to the other.
    let api = ApiServer::start();
    must(write_json(&api, &["create"], &api_service("one")), "create");
    let got = get(&api, &k, "v1.one.e2e.example.com");
    assert_eq!(got["spec"]["service"]["port"], 443);
    let printed = api.ok(&["get", "apiservices", "v1.one.e2e.example.com"]);
    let row: Vec<&str> = printed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..3],
        ["v1.one.e2e.example.com", "default/e2e-api", "Unknown"]
    );
    must(
        api.kubectl(&[
            "patch",
            "apiservice",
            "v1.one.e2e.example.com",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"conditions":[{"type":"Available","status":"False","reason":"ServiceNotFound","message":"no service"}]}}"#,
        ]),
        "patch status",
    );
    let printed = api.ok(&["get", "apiservices", "v1.one.e2e.example.com"]);
    assert!(printed.contains("False (ServiceNotFound)"), "{printed}");
    let mut misnamed = api_service("two");
    misnamed["metadata"]["name"] = json!("two");
    let err = stderr(&write_json(&api, &["create"], &misnamed));
    assert!(
        err.contains("metadata.name: Invalid value: \"two\""),
        "{err}"
    );
    must(
        api.kubectl(&["delete", "apiservice", "v1.one.e2e.example.com"]),
        "delete",
    );
}

#[test]
fn component_statuses_report_the_control_planes_health() {
    let api = ApiServer::start();
    let deadline = Instant::now() + Duration::from_secs(30);
    let printed = loop {
        let printed = api.ok(&["get", "componentstatuses"]);
        if printed.matches("Healthy").count() == 3 && !printed.contains("Unhealthy") {
            break printed;
        }
        assert!(
            Instant::now() < deadline,
            "not all healthy after 30 s: {printed}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let rows: Vec<Vec<&str>> = printed
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "STATUS", "MESSAGE", "ERROR"]);
    let names: Vec<&str> = rows[1..].iter().map(|r| r[0]).collect();
    assert_eq!(names, ["scheduler", "controller-manager", "store"]);
    let one: Value =
        serde_json::from_str(&api.ok(&["get", "cs", "scheduler", "-o", "json"])).unwrap();
    assert_eq!(one["kind"], "ComponentStatus");
    assert_eq!(one["conditions"][0]["status"], "True");
    assert!(
        api.fails(&["get", "cs", "nonesuch"]).contains("NotFound"),
        "an unknown component is NotFound"
    );
    let err = api.fails(&["delete", "cs", "scheduler"]);
    assert!(
        err.contains("MethodNotAllowed") || err.contains("not allow"),
        "{err}"
    );
    let verbs = raw(&api, "/api/v1")["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "componentstatuses")
        .map(|r| r["verbs"].clone())
        .unwrap();
    assert_eq!(verbs, json!(["get", "list"]));
}

#[test]
fn bindings_assign_the_pod_they_name() {
    let api = ApiServer::start();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bound"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    must(write_json(&api, &["create"], &pod), "create pod");
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bound"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-e2e"}});
    must(write_json(&api, &["create"], &binding), "create binding");
    let got: Value = serde_json::from_str(&api.ok(&["get", "pod", "bound", "-o", "json"])).unwrap();
    assert_eq!(got["spec"]["nodeName"], "node-e2e");
    let again = stderr(&write_json(&api, &["create"], &binding));
    assert!(again.contains("is already assigned to node"), "{again}");
    let err = api.fails(&["get", "--raw", "/api/v1/namespaces/default/bindings"]);
    assert!(
        err.contains("MethodNotAllowed") || err.contains("405") || err.contains("not allow"),
        "{err}"
    );
}

/// One object of every kind the table gained, as a user would apply them.
const EVERY_NEW_KIND: &str = r#"
apiVersion: v1
kind: PersistentVolume
metadata: {name: all-pv}
spec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/kc-all}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: all-pvc}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: all-rc}
spec:
  replicas: 0
  template:
    metadata: {labels: {app: all-rc}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: all-quota}
spec: {hard: {pods: "10"}}
---
apiVersion: v1
kind: LimitRange
metadata: {name: all-limits}
spec: {limits: [{type: Container, max: {cpu: "1"}}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: all-sts}
spec:
  replicas: 0
  serviceName: all-sts
  selector: {matchLabels: {app: all-sts}}
  template:
    metadata: {labels: {app: all-sts}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: all-cron}
spec:
  schedule: "@hourly"
  suspend: true
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: all-hpa}
spec: {scaleTargetRef: {apiVersion: apps/v1, kind: StatefulSet, name: all-sts}, maxReplicas: 2}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: all-pdb}
spec: {maxUnavailable: 1, selector: {matchLabels: {app: all-sts}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: all-netpol}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: all-vwc}
webhooks: []
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: all-mwc}
webhooks: []
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: all-vap}
spec:
  matchConstraints: {resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]}
  validations: [{expression: "true"}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: all-vapb}
spec: {policyName: all-vap, validationActions: [Audit]}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1.all.example.com}
spec: {group: all.example.com, version: v1, groupPriorityMinimum: 100, versionPriority: 10, service: {namespace: default, name: all}, insecureSkipTLSVerify: true}
"#;

#[test]
fn kubectl_apply_creates_one_object_of_every_new_kind_and_prints_each() {
    let api = ApiServer::start();
    let mut manifest = EVERY_NEW_KIND.to_string();
    manifest.push_str(&format!(
        "---\napiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: all-csr}}\nspec: {{request: {}, signerName: example.com/all, usages: [client auth]}}\n",
        request_b64()
    ));
    let out = api.apply_text(&manifest, &[]);
    assert!(out.status.success(), "apply: {}", stderr(&out));
    // Each kind's header as kubectl 1.32 prints it against Kubernetes.
    for (resource, header) in [
        (
            "pv",
            "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE",
        ),
        (
            "pvc",
            "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE",
        ),
        ("rc", "NAME DESIRED CURRENT READY AGE"),
        ("quota", "NAME AGE REQUEST LIMIT"),
        ("limits", "NAME CREATED AT"),
        ("sts", "NAME READY AGE"),
        (
            "cj",
            "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE",
        ),
        ("hpa", "NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE"),
        (
            "pdb",
            "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE",
        ),
        ("netpol", "NAME POD-SELECTOR AGE"),
        ("validatingwebhookconfigurations", "NAME WEBHOOKS AGE"),
        ("mutatingwebhookconfigurations", "NAME WEBHOOKS AGE"),
        (
            "validatingadmissionpolicies",
            "NAME VALIDATIONS PARAMKIND AGE",
        ),
        (
            "validatingadmissionpolicybindings",
            "NAME POLICYNAME PARAMREF AGE",
        ),
        ("apiservices", "NAME SERVICE AVAILABLE AGE"),
        (
            "csr",
            "NAME AGE SIGNERNAME REQUESTOR REQUESTEDDURATION CONDITION",
        ),
    ] {
        let printed = api.ok(&["get", resource]);
        let first: Vec<&str> = printed
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(first.join(" "), header, "kubectl get {resource}");
        if resource == "apiservices" {
            // Beside the built-in groups' Local ones.
            assert!(printed.contains("v1.all.example.com"), "{printed}");
        } else {
            assert_eq!(printed.lines().count(), 2, "one {resource}: {printed}");
        }
    }
    // Applying again changes nothing and fails nothing.
    let out = api.apply_text(&manifest, &[]);
    assert!(out.status.success(), "second apply: {}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unchanged"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
