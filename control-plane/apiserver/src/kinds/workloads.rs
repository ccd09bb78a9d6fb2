//! The rules of the workload kinds that came with the full API table:
//! StatefulSet, ReplicationController, CronJob, HorizontalPodAutoscaler
//! and PodDisruptionBudget (defaults and validation as kube-apiserver's;
//! the controllers that act on them are their own concern).

use serde_json::{Map, Value, json};

use super::{
    Rules, default, default_pod_spec, default_template, not_negative, obj, unsupported,
    validate_pod_spec, validate_selector_matches_template,
};
use crate::status::Cause;

pub const RULES: &[Rules] = &[
    Rules {
        group: "apps",
        kind: "StatefulSet",
        defaults: stateful_set_defaults,
        validate: stateful_set_validate,
        validate_update: stateful_set_update,
        generation: true,
    },
    Rules {
        group: "",
        kind: "ReplicationController",
        defaults: replication_controller_defaults,
        validate: replication_controller_validate,
        validate_update: super::no_update_rules,
        generation: true,
    },
    Rules {
        group: "batch",
        kind: "CronJob",
        defaults: cron_job_defaults,
        validate: cron_job_validate,
        validate_update: super::no_update_rules,
        generation: true,
    },
    Rules {
        group: "autoscaling",
        kind: "HorizontalPodAutoscaler",
        defaults: hpa_defaults,
        validate: hpa_validate,
        validate_update: super::no_update_rules,
        generation: true,
    },
    Rules {
        group: "policy",
        kind: "PodDisruptionBudget",
        defaults: super::no_defaults,
        validate: pdb_validate,
        validate_update: super::no_update_rules,
        generation: true,
    },
];

/// `SetDefaults_StatefulSet`.
fn stateful_set_defaults(object: &mut Value) {
    let spec = &mut object["spec"];
    default(spec, "replicas", json!(1));
    default(spec, "podManagementPolicy", json!("OrderedReady"));
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "updateStrategy", json!({"type": "RollingUpdate"}));
    if spec["updateStrategy"]["type"] == "RollingUpdate" {
        default(
            &mut spec["updateStrategy"],
            "rollingUpdate",
            json!({"partition": 0}),
        );
    }
    default(
        spec,
        "persistentVolumeClaimRetentionPolicy",
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
    );
    if let Some(claims) = spec
        .get_mut("volumeClaimTemplates")
        .and_then(Value::as_array_mut)
    {
        for claim in claims {
            default(claim, "apiVersion", json!("v1"));
            default(claim, "kind", json!("PersistentVolumeClaim"));
            default(&mut claim["spec"], "volumeMode", json!("Filesystem"));
            default(claim, "status", json!({"phase": "Pending"}));
        }
    }
    default_template(spec);
}

fn stateful_set_validate(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    validate_selector_matches_template(object, causes);
    validate_pod_spec(&spec["template"]["spec"], "spec.template.spec", causes);
    not_negative(spec, "spec", &["replicas"], causes);
    let restart = spec["template"]["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or("Always");
    if restart != "Always" {
        causes.push(unsupported(
            "spec.template.spec.restartPolicy",
            restart,
            &["Always"],
        ));
    }
    if let Some(p) = spec["podManagementPolicy"].as_str()
        && !matches!(p, "OrderedReady" | "Parallel")
    {
        causes.push(unsupported(
            "spec.podManagementPolicy",
            p,
            &["OrderedReady", "Parallel"],
        ));
    }
    if let Some(t) = spec["updateStrategy"]["type"].as_str()
        && !matches!(t, "RollingUpdate" | "OnDelete")
    {
        causes.push(unsupported(
            "spec.updateStrategy.type",
            t,
            &["RollingUpdate", "OnDelete"],
        ));
    }
    for (i, claim) in spec["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if claim["metadata"]["name"].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(&format!(
                "spec.volumeClaimTemplates[{i}].metadata.name"
            )));
        }
        super::volumes::claim_spec(
            &claim["spec"],
            &format!("spec.volumeClaimTemplates[{i}].spec"),
            causes,
        );
    }
}

/// Only these parts of a StatefulSet's spec may change.
const STATEFUL_SET_MUTABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

fn stateful_set_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    let frozen = |spec: &Value| -> Map<String, Value> {
        spec.as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !STATEFUL_SET_MUTABLE.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    if frozen(&old["spec"]) != frozen(&new["spec"]) {
        causes.push(Cause::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
}

/// `SetDefaults_ReplicationController`: the selector and the labels come
/// from the template when absent; one replica.
fn replication_controller_defaults(object: &mut Value) {
    let template_labels = object["spec"]["template"]["metadata"]["labels"].clone();
    if template_labels.as_object().is_some_and(|m| !m.is_empty()) {
        if object["spec"]["selector"]
            .as_object()
            .is_none_or(Map::is_empty)
        {
            obj(&mut object["spec"]).insert("selector".into(), template_labels.clone());
        }
        if object["metadata"]["labels"]
            .as_object()
            .is_none_or(Map::is_empty)
        {
            obj(&mut object["metadata"]).insert("labels".into(), template_labels);
        }
    }
    default(&mut object["spec"], "replicas", json!(1));
    default_template(&mut object["spec"]);
}

fn replication_controller_validate(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    not_negative(spec, "spec", &["replicas"], causes);
    let selector = spec["selector"].as_object();
    if selector.is_none_or(Map::is_empty) {
        causes.push(Cause::required("spec.selector"));
    }
    if spec["template"].is_null() {
        causes.push(Cause::required("spec.template"));
        return;
    }
    let labels = &spec["template"]["metadata"]["labels"];
    if selector
        .into_iter()
        .flatten()
        .any(|(k, v)| labels.get(k) != Some(v))
    {
        causes.push(Cause::invalid(
            "spec.template.metadata.labels",
            &labels.to_string(),
            "`selector` does not match template `labels`",
        ));
    }
    validate_pod_spec(&spec["template"]["spec"], "spec.template.spec", causes);
}

/// `SetDefaults_CronJob`, and the pod defaults of its job template.
fn cron_job_defaults(object: &mut Value) {
    let spec = &mut object["spec"];
    default(spec, "concurrencyPolicy", json!("Allow"));
    default(spec, "suspend", json!(false));
    default(spec, "successfulJobsHistoryLimit", json!(3));
    default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(pod) = spec.pointer_mut("/jobTemplate/spec/template/spec") {
        default_pod_spec(pod);
    }
}

/// Kubernetes' limit: a Job's name is the CronJob's plus an 11-character suffix.
const CRON_JOB_NAME_MAX: usize = 52;

fn cron_job_validate(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    if let Some(name) = object["metadata"]["name"].as_str()
        && name.len() > CRON_JOB_NAME_MAX
    {
        causes.push(Cause::invalid(
            "metadata.name",
            name,
            &format!("must be no more than {CRON_JOB_NAME_MAX} characters"),
        ));
    }
    match spec["schedule"].as_str() {
        None | Some("") => causes.push(Cause::required("spec.schedule")),
        Some(schedule) => {
            if let Err(why) = kc_client::cron::parse(schedule, spec["timeZone"].as_str()) {
                causes.push(Cause::invalid("spec.schedule", schedule, &why));
            }
        }
    }
    if let Some(tz) = spec["timeZone"].as_str()
        && let Err(why) = kc_client::cron::time_zone(Some(tz))
    {
        causes.push(Cause::invalid("spec.timeZone", tz, &why));
    }
    if let Some(p) = spec["concurrencyPolicy"].as_str()
        && !matches!(p, "Allow" | "Forbid" | "Replace")
    {
        causes.push(unsupported(
            "spec.concurrencyPolicy",
            p,
            &["Allow", "Forbid", "Replace"],
        ));
    }
    let pod = &spec["jobTemplate"]["spec"]["template"]["spec"];
    validate_pod_spec(pod, "spec.jobTemplate.spec.template.spec", causes);
    let restart = pod["restartPolicy"].as_str().unwrap_or("Always");
    if !matches!(restart, "OnFailure" | "Never") {
        causes.push(unsupported(
            "spec.jobTemplate.spec.template.spec.restartPolicy",
            restart,
            &["OnFailure", "Never"],
        ));
    }
    not_negative(
        spec,
        "spec",
        &["successfulJobsHistoryLimit", "failedJobsHistoryLimit"],
        causes,
    );
}

/// autoscaling/v2 defaults: one replica at least, and 80% CPU when no
/// metric is given.
fn hpa_defaults(object: &mut Value) {
    let spec = &mut object["spec"];
    default(spec, "minReplicas", json!(1));
    if spec["metrics"].as_array().is_none_or(Vec::is_empty) {
        obj(spec).insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
}

fn hpa_validate(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    let target = &spec["scaleTargetRef"];
    for field in ["kind", "name"] {
        if target[field].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(&format!("spec.scaleTargetRef.{field}")));
        }
    }
    let min = spec["minReplicas"].as_i64().unwrap_or(1);
    match spec["maxReplicas"].as_i64() {
        None => causes.push(Cause::required("spec.maxReplicas")),
        Some(max) if max < 1 => causes.push(Cause::invalid(
            "spec.maxReplicas",
            &max.to_string(),
            "must be greater than 0",
        )),
        Some(max) if max < min => causes.push(Cause::invalid(
            "spec.maxReplicas",
            &max.to_string(),
            "must be greater than or equal to `minReplicas`",
        )),
        Some(_) => {}
    }
    if min < 1 {
        causes.push(Cause::invalid(
            "spec.minReplicas",
            &min.to_string(),
            "must be greater than or equal to 1",
        ));
    }
}

fn pdb_validate(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    if !spec["minAvailable"].is_null() && !spec["maxUnavailable"].is_null() {
        causes.push(Cause::invalid(
            "spec",
            &spec.to_string(),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for field in ["minAvailable", "maxUnavailable"] {
        match &spec[field] {
            Value::Number(n) if n.as_i64().is_none_or(|n| n < 0) => {
                causes.push(Cause::invalid(
                    &format!("spec.{field}"),
                    &n.to_string(),
                    "must be greater than or equal to 0",
                ))
            }
            Value::String(s) if !valid_percent(s) => causes.push(Cause::invalid(
                &format!("spec.{field}"),
                s,
                "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            )),
            _ => {}
        }
    }
    if let Some(p) = spec["unhealthyPodEvictionPolicy"].as_str()
        && !matches!(p, "IfHealthyBudget" | "AlwaysAllow")
    {
        causes.push(unsupported(
            "spec.unhealthyPodEvictionPolicy",
            p,
            &["IfHealthyBudget", "AlwaysAllow"],
        ));
    }
}

fn valid_percent(s: &str) -> bool {
    s.strip_suffix('%')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && s.trim_end_matches('%')
            .parse::<u32>()
            .is_ok_and(|n| n <= 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stateful_sets_get_kubernetes_defaults_and_only_some_fields_change() {
        let mut sts = json!({"metadata": {"name": "db"}, "spec": {
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}});
        stateful_set_defaults(&mut sts);
        assert_eq!(sts["spec"]["replicas"], 1);
        assert_eq!(
            sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"],
            0
        );
        assert_eq!(
            sts["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        let mut causes = Vec::new();
        stateful_set_validate(&sts, &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
        let mut changed = sts.clone();
        changed["spec"]["replicas"] = json!(3);
        stateful_set_update(&sts, &changed, &mut causes);
        assert!(causes.is_empty());
        changed["spec"]["serviceName"] = json!("other");
        stateful_set_update(&sts, &changed, &mut causes);
        assert_eq!(causes.len(), 1);
    }

    #[test]
    fn replication_controllers_take_selector_and_labels_from_their_template() {
        let mut rc = json!({"metadata": {"name": "rc"}, "spec": {"template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
        replication_controller_defaults(&mut rc);
        assert_eq!(rc["spec"]["selector"], json!({"app": "x"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "x"}));
        let mut causes = Vec::new();
        replication_controller_validate(&rc, &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
    }

    #[test]
    fn budgets_take_counts_or_percents_but_not_both() {
        let mut causes = Vec::new();
        pdb_validate(&json!({"spec": {"minAvailable": "50%"}}), &mut causes);
        pdb_validate(&json!({"spec": {"maxUnavailable": 1}}), &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
        pdb_validate(
            &json!({"spec": {"minAvailable": 1, "maxUnavailable": 1}}),
            &mut causes,
        );
        pdb_validate(&json!({"spec": {"minAvailable": "half"}}), &mut causes);
        assert_eq!(causes.len(), 2, "{causes:?}");
    }
}
