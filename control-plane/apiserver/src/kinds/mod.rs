//! Per-kind behaviour: the defaults Kubernetes fills in on create, the
//! validation it applies (required fields, names, immutable fields), and a
//! typed check that decodes the object into its `k8s-openapi` struct to catch
//! wrong types and unknown fields.
//!
//! Objects travel as `serde_json::Value` everywhere else; this module is the
//! one place that knows what a Pod or a Deployment looks like inside.

use serde_json::{Map, Value, json};

use super::crd;
use super::names::NameRule;
use super::registry::{self, Resource};
use super::status::{ApiError, Cause};

mod extension;
mod policy;
mod volumes;
mod workloads;

/// The rules of one kind, declared as a row (the kinds of the match arms
/// below predate the table).
pub struct Rules {
    pub group: &'static str,
    pub kind: &'static str,
    /// Kubernetes' defaults on create.
    pub defaults: fn(&mut Value),
    /// Validation of the whole object (create and update).
    pub validate: fn(&Value, &mut Vec<Cause>),
    /// What an update may not change (old, new).
    pub validate_update: fn(&Value, &Value, &mut Vec<Cause>),
    /// Whether spec changes bump `metadata.generation`.
    pub generation: bool,
}

fn no_defaults(_: &mut Value) {}

fn no_update_rules(_: &Value, _: &Value, _: &mut Vec<Cause>) {}

/// The rows of every kind declared as [`Rules`].
const RULES: &[&[Rules]] = &[
    workloads::RULES,
    volumes::RULES,
    policy::RULES,
    extension::RULES,
];

fn rules(resource: &Resource) -> Option<&'static Rules> {
    RULES
        .iter()
        .flat_map(|rows| rows.iter())
        .find(|r| r.group == resource.group && r.kind == resource.kind)
}

/// "must be greater than or equal to 0" for each of `fields` of `object`
/// (found at `path`) that is a negative number.
fn not_negative(object: &Value, path: &str, fields: &[&str], causes: &mut Vec<Cause>) {
    for field in fields {
        if let Some(n) = object[*field].as_i64()
            && n < 0
        {
            causes.push(Cause::invalid(
                &format!("{path}.{field}"),
                &n.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// "Unsupported value" of an enumerated field, with the values it takes.
fn unsupported(field: &str, value: &str, allowed: &[&str]) -> Cause {
    let allowed: Vec<String> = allowed.iter().map(|a| json!(a).to_string()).collect();
    Cause::new(
        "FieldValueNotSupported",
        field,
        format!(
            "Unsupported value: {}: supported values: {}",
            json!(value),
            allowed.join(", ")
        ),
    )
}

/// The name rule of a resource's objects.
pub fn name_rule(resource: &Resource) -> NameRule {
    match (resource.group, resource.plural) {
        ("", "namespaces") => NameRule::Label,
        ("", "services") => NameRule::Dns1035,
        ("apiregistration.k8s.io", "apiservices") => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

/// Decodes `object` into the resource's typed struct. Returns the paths of
/// fields the type does not know (to warn about, or to refuse with
/// `fieldValidation=Strict`); a type mismatch is a 400.
pub fn typed_check(resource: &Resource, object: &Value) -> Result<Vec<String>, ApiError> {
    if registry::is_custom(resource) {
        return Ok(Vec::new()); // custom resources are pruned by their schema (`crd::prune`)
    }
    let back = match super::typed::roundtrip(resource.group, resource.kind, object) {
        None => return Ok(Vec::new()),
        Some(Ok(back)) => back,
        Some(Err(e)) => {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: {e}",
                resource.kind, resource.version, resource.kind
            )));
        }
    };
    let mut unknown = Vec::new();
    dropped_fields(object, &back, "", &mut unknown);
    Ok(unknown)
}

/// Keys present (and non-null) in `input` but absent from `typed`.
fn dropped_fields(input: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(bv) => dropped_fields(v, bv, &p, out),
                    None if !v.is_null() => out.push(p),
                    None => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                dropped_fields(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn obj(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("just made an object")
}

/// Sets `key` to `value` if absent or null.
fn default(v: &mut Value, key: &str, value: Value) {
    let m = obj(v);
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

/// Defaults of a container (Kubernetes' `SetDefaults_Container`).
fn default_container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or("").to_string();
    let latest = {
        let last = image.rsplit('/').next().unwrap_or("");
        !last.contains(':') && !image.contains('@') || image.ends_with(":latest")
    };
    default(
        c,
        "imagePullPolicy",
        json!(if latest { "Always" } else { "IfNotPresent" }),
    );
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    default(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            default(p, "protocol", json!("TCP"));
        }
    }
}

/// Defaults of a pod spec (`SetDefaults_PodSpec` and friends).
fn default_pod_spec(spec: &mut Value) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "enableServiceLinks", json!(true));
    default(spec, "serviceAccountName", json!("default"));
    if spec.get("serviceAccount").is_none_or(Value::is_null) {
        let sa = spec["serviceAccountName"].clone();
        obj(spec).insert("serviceAccount".into(), sa);
    }
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(default_container);
        }
    }
}

fn default_template(spec: &mut Value) {
    if let Some(tspec) = spec.pointer_mut("/template/spec") {
        default_pod_spec(tspec);
    }
}

/// Fills in the defaults Kubernetes applies on create.
pub fn apply_defaults(resource: &Resource, object: &mut Value) {
    if registry::is_custom(resource) {
        return crd::apply_defaults(resource, object);
    }
    if let Some(rules) = rules(resource) {
        return (rules.defaults)(object);
    }
    match (resource.group, resource.kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            crd::definition::apply_defaults(object);
        }
        ("storage.k8s.io", "StorageClass") => {
            default(object, "reclaimPolicy", json!("Delete"));
            default(object, "volumeBindingMode", json!("Immediate"));
        }
        ("storage.k8s.io", "CSIDriver") => {
            let spec = &mut object["spec"];
            default(spec, "attachRequired", json!(true));
            default(spec, "podInfoOnMount", json!(false));
            default(spec, "requiresRepublish", json!(false));
            default(spec, "storageCapacity", json!(false));
            default(spec, "seLinuxMount", json!(false));
            default(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
            default(spec, "volumeLifecycleModes", json!(["Persistent"]));
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            default(object, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        ("flowcontrol.apiserver.k8s.io", "FlowSchema") => {
            default(&mut object["spec"], "matchingPrecedence", json!(1000));
        }
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration")
            if object["spec"]["type"] == "Limited" =>
        {
            let limited = &mut object["spec"]["limited"];
            default(limited, "nominalConcurrencyShares", json!(30));
            default(limited, "lendablePercent", json!(0));
            default(&mut limited["limitResponse"], "type", json!("Reject"));
        }
        ("", "Pod") => {
            default_pod_spec(&mut object["spec"]);
            let status = &mut object["status"];
            default(status, "phase", json!("Pending"));
            default(status, "qosClass", json!("BestEffort"));
            default(object, "spec", json!({}));
            obj(&mut object["spec"])
                .entry("priority")
                .or_insert(json!(0));
            obj(&mut object["spec"])
                .entry("preemptionPolicy")
                .or_insert(json!("PreemptLowerPriority"));
        }
        ("", "Namespace") => {
            default(&mut object["spec"], "finalizers", json!(["kubernetes"]));
            default(&mut object["status"], "phase", json!("Active"));
            let name = object["metadata"]["name"].clone();
            let labels = &mut object["metadata"]["labels"];
            default(labels, "kubernetes.io/metadata.name", name);
        }
        ("", "Service") => {
            let spec = &mut object["spec"];
            default(spec, "type", json!("ClusterIP"));
            default(spec, "sessionAffinity", json!("None"));
            default(spec, "ipFamilies", json!(["IPv4"]));
            default(spec, "ipFamilyPolicy", json!("SingleStack"));
            default(spec, "internalTrafficPolicy", json!("Cluster"));
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    default(p, "protocol", json!("TCP"));
                    let port = p["port"].clone();
                    default(p, "targetPort", port);
                }
            }
            // clusterIP(s) and nodePorts: allocator::assign, at create.
            default(&mut object["status"], "loadBalancer", json!({}));
        }
        ("apps", "Deployment") => {
            let spec = &mut object["spec"];
            default(spec, "replicas", json!(1));
            let strategy = &mut spec["strategy"];
            default(strategy, "type", json!("RollingUpdate"));
            if strategy["type"] == "RollingUpdate" {
                default(
                    strategy,
                    "rollingUpdate",
                    json!({"maxUnavailable": "25%", "maxSurge": "25%"}),
                );
            }
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            default_template(spec);
        }
        ("apps", "ReplicaSet") => {
            default(&mut object["spec"], "replicas", json!(1));
            default_template(&mut object["spec"]);
        }
        ("apps", "DaemonSet") => {
            let spec = &mut object["spec"];
            default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
            default(spec, "revisionHistoryLimit", json!(10));
            default_template(spec);
        }
        ("", "Secret") => default(object, "type", json!("Opaque")),
        ("batch", "Job") => default_job(object),
        _ => {}
    }
}

/// `SetDefaults_Job`: parallelism, completions (only when both are unset),
/// backoffLimit 6, NonIndexed, not suspended.
fn default_job(object: &mut Value) {
    let spec = &mut object["spec"];
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        default(spec, "completions", json!(1));
    }
    default(spec, "parallelism", json!(1));
    default(spec, "backoffLimit", json!(6));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    default_template(spec);
}

/// The labels the API server gives a Job's pod template (and its selector)
/// on create, once the Job has its uid (Kubernetes' `generateSelector`).
pub fn job_labels(uid: &str, name: &str) -> [(&'static str, String); 4] {
    [
        ("batch.kubernetes.io/controller-uid", uid.to_string()),
        ("batch.kubernetes.io/job-name", name.to_string()),
        ("controller-uid", uid.to_string()),
        ("job-name", name.to_string()),
    ]
}

/// What the server sets on create once the object has its uid: a Job's
/// generated selector and template labels (unless `manualSelector`), and
/// the Job's own labels from its template when it has none.
pub fn after_uid(resource: &Resource, object: &mut Value) {
    if (resource.group, resource.kind) != ("batch", "Job") {
        return;
    }
    let uid = object["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if object["spec"]["manualSelector"] != true {
        let labels = obj(&mut object["spec"]["template"]["metadata"]["labels"]);
        for (k, v) in job_labels(&uid, &name) {
            labels.insert(k.into(), json!(v));
        }
        object["spec"]["selector"] =
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    }
    if object["metadata"]["labels"]
        .as_object()
        .is_none_or(Map::is_empty)
    {
        object["metadata"]["labels"] = object["spec"]["template"]["metadata"]["labels"].clone();
    }
}

fn required_str(v: &Value, path: &str, field: &str, causes: &mut Vec<Cause>) {
    if v.pointer(path)
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        causes.push(Cause::required(field));
    }
}

fn validate_pod_spec(spec: &Value, field: &str, causes: &mut Vec<Cause>) {
    let containers = spec["containers"].as_array();
    if containers.is_none_or(Vec::is_empty) {
        causes.push(Cause::required(&format!("{field}.containers")));
    }
    let mut seen = Vec::new();
    for (i, c) in containers.into_iter().flatten().enumerate() {
        let f = format!("{field}.containers[{i}]");
        match c["name"].as_str() {
            None | Some("") => causes.push(Cause::required(&format!("{f}.name"))),
            Some(name) => {
                if let Some(msg) = NameRule::Label.check(name) {
                    causes.push(Cause::invalid(&format!("{f}.name"), name, msg));
                }
                if seen.contains(&name) {
                    causes.push(Cause {
                        reason: "FieldValueDuplicate",
                        field: format!("{f}.name"),
                        message: format!("Duplicate value: {}", json!(name)),
                    });
                }
                seen.push(name);
            }
        }
        required_str(c, "/image", &format!("{f}.image"), causes);
    }
}

fn validate_job(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    validate_pod_spec(&spec["template"]["spec"], "spec.template.spec", causes);
    let policy = spec["template"]["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or("Always");
    if !matches!(policy, "Never" | "OnFailure") {
        causes.push(Cause {
            reason: "FieldValueNotSupported",
            field: "spec.template.spec.restartPolicy".into(),
            message: format!(
                "Unsupported value: {}: supported values: \"OnFailure\", \"Never\"",
                json!(policy)
            ),
        });
    }
    not_negative(
        spec,
        "spec",
        &["parallelism", "completions", "backoffLimit"],
        causes,
    );
    match spec["completionMode"].as_str() {
        None | Some("NonIndexed") => {}
        Some("Indexed") if spec["completions"].is_null() => causes.push(Cause {
            reason: "FieldValueRequired",
            field: "spec.completions".into(),
            message: "Required value: when completion mode is Indexed".into(),
        }),
        Some("Indexed") => {}
        Some(other) => causes.push(Cause {
            reason: "FieldValueNotSupported",
            field: "spec.completionMode".into(),
            message: format!(
                "Unsupported value: {}: supported values: \"NonIndexed\", \"Indexed\"",
                json!(other)
            ),
        }),
    }
    if spec["manualSelector"] == true {
        validate_selector_matches_template(object, causes);
    }
}

fn validate_selector_matches_template(object: &Value, causes: &mut Vec<Cause>) {
    let selector = &object["spec"]["selector"];
    if selector.is_null() || selector.as_object().is_some_and(Map::is_empty) {
        causes.push(Cause::required("spec.selector"));
        return;
    }
    let labels = &object["spec"]["template"]["metadata"]["labels"];
    if let Some(match_labels) = selector["matchLabels"].as_object() {
        for (k, v) in match_labels {
            if labels.get(k) != Some(v) {
                causes.push(Cause::invalid(
                    "spec.template.metadata.labels",
                    &labels.to_string(),
                    "`selector` does not match template `labels`",
                ));
                return;
            }
        }
    }
}

/// Kind-specific validation of a whole object (on create and update).
pub fn validate(resource: &Resource, object: &Value) -> Vec<Cause> {
    if registry::is_custom(resource) {
        return crd::validate(resource, object);
    }
    let mut causes = Vec::new();
    if let Some(rules) = rules(resource) {
        (rules.validate)(object, &mut causes);
        return causes;
    }
    match (resource.group, resource.kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            causes.extend(crd::definition::validate(object));
        }
        ("scheduling.k8s.io", "PriorityClass") => validate_priority_class(object, &mut causes),
        ("node.k8s.io", "RuntimeClass") => {
            let handler = object["handler"].as_str().unwrap_or("");
            if handler.is_empty() {
                causes.push(Cause::required("handler"));
            } else if let Some(msg) = NameRule::Label.check(handler) {
                causes.push(Cause::invalid("handler", handler, msg));
            }
        }
        ("storage.k8s.io", "StorageClass")
            if object["provisioner"].as_str().is_none_or(str::is_empty) =>
        {
            causes.push(Cause::required("provisioner"));
        }
        ("storage.k8s.io", "VolumeAttachment") => {
            for field in ["attacher", "nodeName"] {
                if object["spec"][field].as_str().is_none_or(str::is_empty) {
                    causes.push(Cause::required(&format!("spec.{field}")));
                }
            }
            let source = &object["spec"]["source"];
            if source["persistentVolumeName"].is_null() && source["inlineVolumeSpec"].is_null() {
                causes.push(Cause::required("spec.source"));
            }
        }
        ("", "Pod") => validate_pod_spec(&object["spec"], "spec", &mut causes),
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => {
            validate_selector_matches_template(object, &mut causes);
            validate_pod_spec(
                &object["spec"]["template"]["spec"],
                "spec.template.spec",
                &mut causes,
            );
            if let Some(r) = object["spec"]["replicas"].as_i64()
                && r < 0
            {
                causes.push(Cause::invalid(
                    "spec.replicas",
                    &r.to_string(),
                    "must be greater than or equal to 0",
                ));
            }
        }
        ("batch", "Job") => validate_job(object, &mut causes),
        ("", "Service") => {
            let spec = &object["spec"];
            let headless = spec["clusterIP"] == "None";
            let external = spec["type"] == "ExternalName";
            if !headless && !external && spec["ports"].as_array().is_none_or(Vec::is_empty) {
                causes.push(Cause::required("spec.ports"));
            }
        }
        ("", "ConfigMap" | "Secret") => {
            for field in ["data", "binaryData", "stringData"] {
                for key in object[field].as_object().into_iter().flat_map(Map::keys) {
                    let ok = !key.is_empty()
                        && key.len() <= 253
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                    if !ok {
                        causes.push(Cause::invalid(
                            &format!("{field}[{key}]"),
                            key,
                            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    causes
}

/// Fields an update may not change.
pub fn validate_update(resource: &Resource, old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(rules) = rules(resource) {
        (rules.validate_update)(old, new, &mut causes);
        return causes;
    }
    match (resource.group, resource.kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            causes.extend(crd::definition::validate_update(old, new));
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            if old["value"] != new["value"] {
                causes.push(Cause::forbidden(
                    "Value",
                    "may not be changed in an update.",
                ));
            }
            immutable(old, new, &["preemptionPolicy"], &mut causes)
        }
        ("node.k8s.io", "RuntimeClass") => immutable(old, new, &["handler"], &mut causes),
        ("storage.k8s.io", "StorageClass") => immutable(
            old,
            new,
            &[
                "parameters",
                "provisioner",
                "reclaimPolicy",
                "volumeBindingMode",
            ],
            &mut causes,
        ),
        ("storage.k8s.io", "VolumeAttachment") => immutable(old, new, &["spec"], &mut causes),
        ("", "Pod") => {
            // Only images, activeDeadlineSeconds and tolerations may change.
            let strip = |v: &Value| {
                let mut spec = v["spec"].clone();
                if let Some(m) = spec.as_object_mut() {
                    m.remove("activeDeadlineSeconds");
                    m.remove("tolerations");
                }
                for list in ["containers", "initContainers"] {
                    if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
                        for c in cs {
                            if let Some(m) = c.as_object_mut() {
                                m.remove("image");
                            }
                        }
                    }
                }
                spec
            };
            let nodeless_bind = old["spec"]["nodeName"].is_null();
            let mut a = strip(old);
            let mut b = strip(new);
            if nodeless_bind {
                // Binding sets nodeName once.
                obj(&mut a).remove("nodeName");
                obj(&mut b).remove("nodeName");
            }
            if a != b {
                causes.push(Cause::forbidden(
                    "spec",
                    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                ));
            }
        }
        ("batch", "Job") => {
            for field in ["selector", "template", "completions", "completionMode"] {
                if old["spec"][field] != new["spec"][field] {
                    causes.push(Cause::invalid(
                        &format!("spec.{field}"),
                        &new["spec"][field].to_string(),
                        "field is immutable",
                    ));
                }
            }
        }
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet")
            if old["spec"]["selector"] != new["spec"]["selector"] =>
        {
            causes.push(Cause::invalid(
                "spec.selector",
                &new["spec"]["selector"].to_string(),
                "field is immutable",
            ));
        }
        ("", "Service") => {
            let (a, b) = (&old["spec"]["clusterIP"], &new["spec"]["clusterIP"]);
            if !b.is_null() && b != "" && a != b {
                causes.push(Cause::invalid(
                    "spec.clusterIP",
                    &b.to_string(),
                    "field is immutable",
                ));
            }
        }
        _ => {}
    }
    causes
}

/// The values of a built-in PriorityClass; user classes may not take
/// `system-` names or values above a billion.
pub const SYSTEM_PRIORITY_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

fn validate_priority_class(object: &Value, causes: &mut Vec<Cause>) {
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    let value = object["value"].as_i64().unwrap_or(0);
    if name.starts_with("system-") {
        if !SYSTEM_PRIORITY_CLASSES
            .iter()
            .any(|(n, v, _)| *n == name && *v == value)
        {
            causes.push(Cause::forbidden(
                "metadata.name",
                "priority class names with 'system-' prefix are reserved",
            ));
        }
    } else if value > 1_000_000_000 {
        causes.push(Cause::forbidden(
            "value",
            "maximum allowed value of a user defined priority is 1000000000",
        ));
    }
    match object["preemptionPolicy"].as_str() {
        None | Some("PreemptLowerPriority" | "Never") => {}
        Some(other) => causes.push(Cause::new(
            "FieldValueNotSupported",
            "preemptionPolicy",
            format!(
                "Unsupported value: {}: supported values: \"Never\", \"PreemptLowerPriority\"",
                json!(other)
            ),
        )),
    }
}

/// Refuses changes to `fields` ("field is immutable").
fn immutable(old: &Value, new: &Value, fields: &[&str], causes: &mut Vec<Cause>) {
    for field in fields {
        if old.get(*field) != new.get(*field) {
            causes.push(Cause::invalid_value(
                field,
                new.get(*field).unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
    }
}

/// Carries over, on update, what the client may omit and the server owns
/// (a Service's allocated cluster IP).
pub fn carry_over(resource: &Resource, old: &Value, new: &mut Value) {
    if (resource.group, resource.kind) == ("", "Service") {
        for key in ["clusterIP", "clusterIPs"] {
            if new["spec"].get(key).is_none_or(|v| v.is_null() || v == "")
                && let Some(v) = old["spec"].get(key)
            {
                obj(&mut new["spec"]).insert(key.into(), v.clone());
            }
        }
        // Allocated NodePorts stay with their port (matched by port and
        // protocol) when the client omits them, as Kubernetes does.
        let old_ports = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
        if let Some(ports) = new["spec"]["ports"].as_array_mut() {
            for port in ports {
                if port["nodePort"].as_u64().is_some_and(|p| p != 0) {
                    continue;
                }
                let proto = |p: &Value| p["protocol"].as_str().unwrap_or("TCP").to_string();
                if let Some(np) = old_ports
                    .iter()
                    .find(|o| o["port"] == port["port"] && proto(o) == proto(port))
                    .and_then(|o| o.get("nodePort"))
                    .filter(|v| v.as_u64().is_some_and(|p| p != 0))
                {
                    obj(port).insert("nodePort".into(), np.clone());
                }
            }
        }
    }
}

/// What the server records of who creates an object, where the kind keeps
/// it: a CertificateSigningRequest's requester (`spec.username`, `groups`),
/// which the client cannot choose.
pub fn record_requester(resource: &Resource, object: &mut Value, user: &str, groups: &[String]) {
    if (resource.group, resource.kind) != ("certificates.k8s.io", "CertificateSigningRequest") {
        return;
    }
    let mut groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    if !groups.contains(&"system:authenticated") {
        groups.push("system:authenticated");
    }
    let spec = obj(&mut object["spec"]);
    spec.insert("username".into(), json!(user));
    spec.insert("groups".into(), json!(groups));
    spec.remove("uid");
    spec.remove("extra");
}

/// Whether a kind has a `spec` whose changes bump `metadata.generation`.
pub fn has_generation(resource: &Resource) -> bool {
    registry::is_custom(resource)
        || rules(resource).is_some_and(|r| r.generation)
        || matches!(
            resource.kind,
            "Deployment"
                | "ReplicaSet"
                | "DaemonSet"
                | "Pod"
                | "Service"
                | "Job"
                | "CustomResourceDefinition"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::lookup;

    #[test]
    fn pod_defaults_match_kubernetes() {
        let pods = lookup("", "v1", "pods").unwrap();
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}, {"name": "d", "image": "busybox:1.36"}]}});
        apply_defaults(pods, &mut pod);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            pod["spec"]["containers"][1]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(pod["status"]["phase"], "Pending");
        assert!(validate(pods, &pod).is_empty());
        assert!(typed_check(pods, &pod).unwrap().is_empty());
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_found() {
        let pods = lookup("", "v1", "pods").unwrap();
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x", "bogus": 1}], "alsoBogus": true}});
        let unknown = typed_check(pods, &pod).unwrap();
        assert_eq!(
            unknown,
            vec![
                "spec.alsoBogus".to_string(),
                "spec.containers[0].bogus".to_string()
            ]
        );
        let bad = json!({"metadata": {"name": "p"}, "spec": {"containers": "nope"}});
        assert_eq!(typed_check(pods, &bad).unwrap_err().code, 400);
    }

    #[test]
    fn deployment_needs_a_matching_selector_and_keeps_it() {
        let deploys = lookup("apps", "v1", "deployments").unwrap();
        let d = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
        assert_eq!(validate(deploys, &d).len(), 1);
        let mut changed = d.clone();
        changed["spec"]["selector"]["matchLabels"]["app"] = json!("z");
        assert_eq!(
            validate_update(deploys, &d, &changed)[0].field,
            "spec.selector"
        );
    }

    #[test]
    fn pod_spec_is_immutable_but_images_are_not() {
        let pods = lookup("", "v1", "pods").unwrap();
        let old = json!({"spec": {"containers": [{"name": "c", "image": "a"}]}});
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("b");
        assert!(validate_update(pods, &old, &new).is_empty());
        new["spec"]["containers"][0]["name"] = json!("d");
        assert_eq!(validate_update(pods, &old, &new).len(), 1);
    }

    #[test]
    fn service_gets_target_ports_and_its_ip_from_the_allocator_not_defaults() {
        let svcs = lookup("", "v1", "services").unwrap();
        let mut s = json!({"spec": {"ports": [{"port": 80}]}});
        apply_defaults(svcs, &mut s);
        assert!(s["spec"]["clusterIP"].is_null());
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
    }
}
