//! The workload, storage and namespace-policy kinds that complete the API
//! table (StatefulSet, ReplicationController, CronJob, HPA, PDB, PV, PVC,
//! ResourceQuota, LimitRange, NetworkPolicy), driven with kubectl 1.32
//! against `kcnode serve-api`: each conformance behaviour of their API
//! operations, named after its codename and written from its description,
//! plus Kubernetes' defaults and refusals.

mod api_common;
mod kinds_common;

use std::time::{Duration, Instant};

use api_common::ApiServer;
use kinds_common::{Kind, api_operations, get, lifecycle, must, names, raw, write_json};
use serde_json::{Value, json};

fn pod_template(app: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

fn cron_job(name: &str) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
        "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}})
}

fn pdb(name: &str) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}})
}

fn quota(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name},
        "spec": {"hard": {"cpu": "1", "memory": "500Mi"}}})
}

fn limit_range(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": name},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "1", "memory": "1Gi"},
            "min": {"cpu": "10m"}}]}})
}

fn volume(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/kc-e2e-pv"}, "storageClassName": "manual"}})
}

fn claim(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "manual"}})
}

fn replication_controller(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"app": name}, "template": pod_template(name)}})
}

fn stateful_set(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {"serviceName": name, "replicas": 0, "selector": {"matchLabels": {"app": name}},
            "template": pod_template(name)}})
}

fn hpa(name: &str) -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 3}})
}

fn network_policy(name: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 80}]}]}})
}

const fn kind(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    namespaced: bool,
    status: bool,
    object: fn(&str) -> Value,
) -> Kind {
    Kind {
        group,
        version,
        plural,
        namespaced,
        status,
        object,
    }
}

const CRON_JOBS: Kind = kind("batch", "v1", "cronjobs", true, true, cron_job);
const PDBS: Kind = kind("policy", "v1", "poddisruptionbudgets", true, true, pdb);
const QUOTAS: Kind = kind("", "v1", "resourcequotas", true, true, quota);
const LIMIT_RANGES: Kind = kind("", "v1", "limitranges", true, false, limit_range);
const VOLUMES: Kind = kind("", "v1", "persistentvolumes", false, true, volume);
const CLAIMS: Kind = kind("", "v1", "persistentvolumeclaims", true, true, claim);
const RCS: Kind = kind(
    "",
    "v1",
    "replicationcontrollers",
    true,
    true,
    replication_controller,
);
const STATEFUL_SETS: Kind = kind("apps", "v1", "statefulsets", true, true, stateful_set);
const HPAS: Kind = kind(
    "autoscaling",
    "v2",
    "horizontalpodautoscalers",
    true,
    true,
    hpa,
);
const NETWORK_POLICIES: Kind = kind(
    "networking.k8s.io",
    "v1",
    "networkpolicies",
    true,
    false,
    network_policy,
);

fn create_in(api: &ApiServer, namespace: &str, object: &Value) {
    must(
        write_json(api, &["create", "-n", namespace], object),
        "create",
    );
}

fn ensure_namespace(api: &ApiServer, ns: &str) {
    must(
        api.kubectl(&["create", "namespace", ns]),
        "create namespace",
    );
}

fn labelled(mut object: Value, labels: Value) -> Value {
    object["metadata"]["labels"] = labels;
    object
}

fn names_everywhere(api: &ApiServer, kind: &Kind, selector: &str) -> Vec<String> {
    let list: Value = serde_json::from_str(&api.ok(&[
        "get",
        &kind.kubectl_name(),
        "-A",
        "-l",
        selector,
        "-o",
        "json",
    ]))
    .expect("a list");
    let mut out: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    out.sort();
    out
}

fn wait_for(what: &str, seconds: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {seconds}s waiting for {what}");
}

#[test]
fn sig_apps_cron_job_should_support_cron_job_api_operations() {
    api_operations(&CRON_JOBS);
}

#[test]
fn cron_jobs_get_kubernetes_defaults_and_bad_schedules_are_refused() {
    let api = ApiServer::start();
    must(
        write_json(&api, &["create"], &cron_job("nightly")),
        "create",
    );
    let cj = get(&api, &CRON_JOBS, "nightly");
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(cj["spec"]["suspend"], false);
    let printed = api.ok(&["get", "cronjobs"]);
    let header: Vec<&str> = printed.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"
        ]
    );
    assert!(printed.contains("*/1 * * * *"), "{printed}");

    let mut bad = cron_job("bad");
    bad["spec"]["schedule"] = json!("every minute");
    let err = stderr_of(write_json(&api, &["create"], &bad));
    assert!(
        err.contains("spec.schedule: Invalid value: \"every minute\""),
        "{err}"
    );
    let mut tz = cron_job("bad-tz");
    tz["spec"]["timeZone"] = json!("Mars/Olympus_Mons");
    let err = stderr_of(write_json(&api, &["create"], &tz));
    assert!(err.contains("spec.timeZone: Invalid value"), "{err}");
    let mut restart = cron_job("bad-restart");
    restart["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    let err = stderr_of(write_json(&api, &["create"], &restart));
    assert!(
        err.contains("spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value"),
        "{err}"
    );
    assert!(
        api.fails(&["get", "cronjob", "bad"]).contains("NotFound"),
        "a refused CronJob is not stored"
    );
}

fn stderr_of(out: std::process::Output) -> String {
    assert!(!out.status.success(), "should have been refused");
    api_common::stderr(&out)
}

#[test]
fn sig_apps_disruption_controller_should_create_a_pod_disruption_budget() {
    api_operations(&PDBS);
}

#[test]
fn sig_apps_disruption_controller_should_update_patch_pod_disruption_budget_status() {
    let api = ApiServer::start();
    must(write_json(&api, &["create"], &pdb("budget")), "create");
    let mut st = raw(
        &api,
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets/budget/status",
    );
    st["status"] = json!({"disruptionsAllowed": 2, "currentHealthy": 3, "desiredHealthy": 1,
        "expectedPods": 3, "observedGeneration": 1});
    must(
        write_json(&api, &["replace", "--subresource=status"], &st),
        "update status",
    );
    assert_eq!(
        get(&api, &PDBS, "budget")["status"]["disruptionsAllowed"],
        2
    );
    must(
        api.kubectl(&[
            "patch",
            "pdb",
            "budget",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"disruptionsAllowed":1}}"#,
        ]),
        "patch status",
    );
    let got = get(&api, &PDBS, "budget");
    assert_eq!(got["status"]["disruptionsAllowed"], 1);
    assert_eq!(got["status"]["currentHealthy"], 3);
    assert_eq!(
        got["spec"]["minAvailable"], 1,
        "the status write left the spec alone"
    );
    let printed = api.ok(&["get", "pdb", "budget"]);
    let header: Vec<&str> = printed.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "MIN",
            "AVAILABLE",
            "MAX",
            "UNAVAILABLE",
            "ALLOWED",
            "DISRUPTIONS",
            "AGE"
        ]
    );
    let row: Vec<&str> = printed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["budget", "1", "N/A", "1"]);
}

#[test]
fn sig_apps_disruption_controller_listing_pod_disruption_budgets_for_all_namespaces_should_list_and_delete_a_collection_of_pod_disruption_budgets()
 {
    let api = ApiServer::start();
    ensure_namespace(&api, "team-a");
    for (ns, name) in [("default", "b1"), ("team-a", "b2"), ("team-a", "b3")] {
        create_in(&api, ns, &labelled(pdb(name), json!({"e2e": "pdbs"})));
    }
    assert_eq!(
        names_everywhere(&api, &PDBS, "e2e=pdbs"),
        ["default/b1", "team-a/b2", "team-a/b3"]
    );
    must(
        api.kubectl(&["delete", "pdb", "-n", "team-a", "-l", "e2e=pdbs"]),
        "deletecollection",
    );
    assert_eq!(names_everywhere(&api, &PDBS, "e2e=pdbs"), ["default/b1"]);
    let mut both = pdb("both");
    both["spec"]["maxUnavailable"] = json!("10%");
    let err = stderr_of(write_json(&api, &["create"], &both));
    assert!(
        err.contains("minAvailable and maxUnavailable cannot be both set"),
        "{err}"
    );
}

#[test]
fn sig_api_machinery_resource_quota_should_be_able_to_update_and_delete_resource_quota() {
    let api = ApiServer::start();
    must(write_json(&api, &["create"], &quota("compute")), "create");
    let mut q = get(&api, &QUOTAS, "compute");
    assert_eq!(q["spec"]["hard"]["cpu"], "1");
    q["spec"]["hard"] = json!({"cpu": "2", "memory": "1Gi"});
    must(write_json(&api, &["replace"], &q), "update");
    let q = get(&api, &QUOTAS, "compute");
    assert_eq!(q["spec"]["hard"], json!({"cpu": "2", "memory": "1Gi"}));
    must(
        api.kubectl(&["delete", "resourcequota", "compute"]),
        "delete",
    );
    assert!(
        api.fails(&["get", "resourcequota", "compute"])
            .contains("NotFound")
    );
}

#[test]
fn sig_api_machinery_resource_quota_should_manage_the_lifecycle_of_a_resource_quota() {
    let api = ApiServer::start();
    create_in(
        &api,
        "default",
        &labelled(quota("lifecycle"), json!({"e2e": "quota"})),
    );
    assert_eq!(
        names_everywhere(&api, &QUOTAS, "e2e=quota"),
        ["default/lifecycle"]
    );
    must(
        api.kubectl(&[
            "patch",
            "quota",
            "lifecycle",
            "--type=merge",
            "-p",
            r#"{"spec":{"hard":{"cpu":"3","memory":"2Gi"}},"metadata":{"labels":{"patched":"yes"}}}"#,
        ]),
        "patch",
    );
    let q = get(&api, &QUOTAS, "lifecycle");
    assert_eq!(q["spec"]["hard"], json!({"cpu": "3", "memory": "2Gi"}));
    assert_eq!(q["metadata"]["labels"]["patched"], "yes");
    must(
        api.kubectl(&["delete", "quota", "-l", "e2e=quota"]),
        "deletecollection",
    );
    assert!(names(&api, &QUOTAS, "e2e=quota").is_empty());
    let mut bad = quota("bad");
    bad["spec"]["scopes"] = json!(["Sometimes"]);
    let err = stderr_of(write_json(&api, &["create"], &bad));
    assert!(err.contains("spec.scopes: Unsupported value"), "{err}");
}

#[test]
fn sig_scheduling_limit_range_should_list_patch_and_delete_a_limit_range_by_collection() {
    let api = ApiServer::start();
    ensure_namespace(&api, "team-b");
    create_in(
        &api,
        "default",
        &labelled(limit_range("limits-a"), json!({"e2e": "limits"})),
    );
    create_in(
        &api,
        "team-b",
        &labelled(limit_range("limits-b"), json!({"e2e": "limits"})),
    );
    assert_eq!(
        names_everywhere(&api, &LIMIT_RANGES, "e2e=limits"),
        ["default/limits-a", "team-b/limits-b"]
    );
    must(
        api.kubectl(&[
            "patch",
            "limits",
            "limits-a",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"patched":"yes"}}}"#,
        ]),
        "patch",
    );
    assert_eq!(
        get(&api, &LIMIT_RANGES, "limits-a")["metadata"]["labels"]["patched"],
        "yes"
    );
    must(
        api.kubectl(&["delete", "limits", "-n", "team-b", "-l", "e2e=limits"]),
        "deletecollection",
    );
    assert_eq!(
        names_everywhere(&api, &LIMIT_RANGES, "e2e=limits"),
        ["default/limits-a"]
    );
}

#[test]
fn limit_ranges_default_a_containers_limits_from_max_and_requests_from_min() {
    let api = ApiServer::start();
    must(
        write_json(&api, &["create"], &limit_range("defaults")),
        "create",
    );
    let item = &get(&api, &LIMIT_RANGES, "defaults")["spec"]["limits"][0];
    assert_eq!(item["default"], json!({"cpu": "1", "memory": "1Gi"}));
    assert_eq!(item["defaultRequest"], json!({"cpu": "1", "memory": "1Gi"}));
}

#[test]
fn sig_storage_persistent_volumes_csi_conformance_should_run_through_the_lifecycle_of_a_pv_and_a_pvc()
 {
    let api = ApiServer::start();
    lifecycle(&api, &VOLUMES, "e2e-pv");
    lifecycle(&api, &CLAIMS, "e2e-pvc");
}

#[test]
fn sig_storage_persistent_volumes_csi_conformance_should_apply_changes_to_a_pv_pvc_status() {
    let api = ApiServer::start();
    must(write_json(&api, &["create"], &volume("pv-status")), "pv");
    must(write_json(&api, &["create"], &claim("pvc-status")), "pvc");
    let pv_path = "/api/v1/persistentvolumes/pv-status/status";
    let pvc_path = "/api/v1/namespaces/default/persistentvolumeclaims/pvc-status/status";
    let phases = [
        "Pending",
        "Available",
        "Bound",
        "Released",
        "Failed",
        "Lost",
    ];
    for path in [pv_path, pvc_path] {
        let phase = raw(&api, path)["status"]["phase"].clone();
        assert!(phases.iter().any(|p| phase == *p), "{path}: phase {phase}");
    }
    must(
        api.kubectl(&[
            "patch",
            "pvc",
            "pvc-status",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"conditions":[{"type":"StatusPatched","status":"True","reason":"E2E"}]}}"#,
        ]),
        "patch pvc status",
    );
    must(
        api.kubectl(&[
            "patch",
            "pv",
            "pv-status",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"reason":"E2EPatched","message":"patched by the test"}}"#,
        ]),
        "patch pv status",
    );
    assert_eq!(
        get(&api, &CLAIMS, "pvc-status")["status"]["conditions"][0]["type"],
        "StatusPatched"
    );
    assert_eq!(
        get(&api, &VOLUMES, "pv-status")["status"]["reason"],
        "E2EPatched"
    );
    let mut pvc = raw(&api, pvc_path);
    pvc["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "StatusUpdated", "status": "True", "reason": "E2E"}));
    must(
        write_json(&api, &["replace", "--subresource=status"], &pvc),
        "update pvc status",
    );
    let mut pv = raw(&api, pv_path);
    pv["status"]["reason"] = json!("E2EUpdated");
    pv["status"]["message"] = json!("updated by the test");
    must(
        write_json(&api, &["replace", "--subresource=status"], &pv),
        "update pv status",
    );
    assert_eq!(
        get(&api, &CLAIMS, "pvc-status")["status"]["conditions"][1]["type"],
        "StatusUpdated"
    );
    let pv = get(&api, &VOLUMES, "pv-status");
    assert_eq!(
        (
            pv["status"]["reason"].as_str(),
            pv["status"]["message"].as_str()
        ),
        (Some("E2EUpdated"), Some("updated by the test"))
    );
    let printed = api.ok(&["get", "pv"]);
    let header: Vec<&str> = printed.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "RECLAIM",
            "POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE"
        ]
    );
    assert!(printed.contains("RWO"), "{printed}");
}

#[test]
fn volumes_and_claims_get_defaults_and_keep_what_kubernetes_freezes() {
    let api = ApiServer::start();
    must(write_json(&api, &["create"], &volume("pv-defaults")), "pv");
    let pv = get(&api, &VOLUMES, "pv-defaults");
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
    must(write_json(&api, &["create"], &claim("data")), "pvc");
    let err = api.fails(&[
        "patch",
        "pvc",
        "data",
        "--type=merge",
        "-p",
        r#"{"spec":{"accessModes":["ReadWriteMany"]}}"#,
    ]);
    assert!(err.contains("spec is immutable after creation"), "{err}");
    must(
        api.kubectl(&[
            "patch",
            "pvc",
            "data",
            "--type=merge",
            "-p",
            r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#,
        ]),
        "a claim may grow",
    );
    let mut no_source = volume("no-source");
    no_source["spec"]
        .as_object_mut()
        .unwrap()
        .remove("hostPath");
    let err = stderr_of(write_json(&api, &["create"], &no_source));
    assert!(err.contains("must specify a volume type"), "{err}");
}

#[test]
fn sig_apps_replication_controller_should_get_and_update_a_replication_controller_scale() {
    let api = ApiServer::start();
    must(
        write_json(&api, &["create"], &replication_controller("scaled")),
        "create",
    );
    let scale = raw(
        &api,
        "/api/v1/namespaces/default/replicationcontrollers/scaled/scale",
    );
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "app=scaled");
    must(
        api.kubectl(&["scale", "rc", "scaled", "--replicas=2"]),
        "scale",
    );
    assert_eq!(get(&api, &RCS, "scaled")["spec"]["replicas"], 2);
}

fn owned_pods(api: &ApiServer, owner: &str) -> usize {
    let pods: Value = serde_json::from_str(&api.ok(&["get", "pods", "-o", "json"])).unwrap();
    pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && p["metadata"]["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| r["kind"] == "ReplicationController" && r["name"] == owner)
        })
        .count()
}

#[test]
fn sig_apps_replication_controller_should_test_the_lifecycle_of_a_replication_controller() {
    let api = ApiServer::start();
    must(
        write_json(&api, &["create"], &replication_controller("rc-life")),
        "create",
    );
    let rc = get(&api, &RCS, "rc-life");
    assert_eq!(
        rc["metadata"]["labels"]["app"], "rc-life",
        "labels from the template"
    );
    wait_for("the RC's pod", 30, || owned_pods(&api, "rc-life") == 1);
    wait_for("the RC's status", 30, || {
        get(&api, &RCS, "rc-life")["status"]["replicas"] == 1
    });
    must(
        api.kubectl(&[
            "patch",
            "rc",
            "rc-life",
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"rc":"patched"}},"spec":{"replicas":2}}"#,
        ]),
        "patch",
    );
    assert_eq!(
        get(&api, &RCS, "rc-life")["metadata"]["labels"]["rc"],
        "patched"
    );
    wait_for("the second pod", 30, || owned_pods(&api, "rc-life") == 2);
    let printed = api.ok(&["get", "rc", "rc-life"]);
    let header: Vec<&str> = printed.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    must(api.kubectl(&["delete", "rc", "rc-life"]), "delete");
    assert!(api.fails(&["get", "rc", "rc-life"]).contains("NotFound"));
    wait_for("the pods to be collected", 60, || {
        owned_pods(&api, "rc-life") == 0
    });
}

#[test]
fn stateful_sets_support_api_operations() {
    api_operations(&STATEFUL_SETS);
}

#[test]
fn stateful_sets_get_defaults_and_refuse_spec_changes_kubernetes_forbids() {
    let api = ApiServer::start();
    let mut sts = stateful_set("db");
    sts["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]);
    must(write_json(&api, &["create"], &sts), "create");
    let got = get(&api, &STATEFUL_SETS, "db");
    assert_eq!(got["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(got["spec"]["updateStrategy"]["type"], "RollingUpdate");
    assert_eq!(got["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        got["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(got["metadata"]["generation"], 1);
    must(
        api.kubectl(&["scale", "statefulset", "db", "--replicas=3"]),
        "scale",
    );
    let got = get(&api, &STATEFUL_SETS, "db");
    assert_eq!(got["spec"]["replicas"], 3);
    assert_eq!(got["metadata"]["generation"], 2);
    let err = api.fails(&[
        "patch",
        "statefulset",
        "db",
        "--type=merge",
        "-p",
        r#"{"spec":{"serviceName":"other"}}"#,
    ]);
    assert!(
        err.contains("updates to statefulset spec for fields other than"),
        "{err}"
    );
    let mut mismatched = stateful_set("mismatched");
    mismatched["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
    let err = stderr_of(write_json(&api, &["create"], &mismatched));
    assert!(
        err.contains("`selector` does not match template `labels`"),
        "{err}"
    );
}

#[test]
fn horizontal_pod_autoscalers_support_api_operations_at_autoscaling_v2() {
    api_operations(&HPAS);
    let api = ApiServer::start();
    must(write_json(&api, &["create"], &hpa("web")), "create");
    let got = get(&api, &HPAS, "web");
    assert_eq!(got["spec"]["minReplicas"], 1);
    assert_eq!(
        got["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        80
    );
    let printed = api.ok(&["get", "hpa", "web"]);
    let row: Vec<&str> = printed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..6],
        ["web", "Deployment/web", "cpu:", "<unknown>/80%", "1", "3"]
    );
}

#[test]
fn network_policies_support_api_operations_and_get_their_policy_types() {
    api_operations(&NETWORK_POLICIES);
    let api = ApiServer::start();
    let mut np = network_policy("egress");
    np["spec"]["egress"] = json!([{"ports": [{"port": 53, "protocol": "UDP"}]}]);
    must(write_json(&api, &["create"], &np), "create");
    let got = get(&api, &NETWORK_POLICIES, "egress");
    assert_eq!(got["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(got["spec"]["ingress"][0]["ports"][0]["protocol"], "TCP");
    let printed = api.ok(&["get", "netpol", "egress"]);
    assert!(printed.contains("app=web"), "{printed}");
}
