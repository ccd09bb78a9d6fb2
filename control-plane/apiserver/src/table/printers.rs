//! The Table columns of the kinds declared as rows: each column with the
//! cell it prints, as kubectl 1.32 shows them (`kubectl get pv` prints
//! `NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM ...`). The
//! kinds of the match arms in `table` predate this table.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::{AGE, CONTAINERS, Column, IMAGES, NAME, age, human_duration, or_none, s};

type Cell = fn(&Value, Timestamp) -> Value;

/// The printed columns of one kind.
pub struct Printer {
    pub group: &'static str,
    pub kind: &'static str,
    pub columns: &'static [(Column, Cell)],
}

impl Printer {
    pub fn columns(&self) -> Vec<Column> {
        self.columns.iter().map(|(c, _)| *c).collect()
    }

    pub fn cells(&self, o: &Value, now: Timestamp) -> Vec<Value> {
        self.columns.iter().map(|(_, cell)| cell(o, now)).collect()
    }
}

pub fn find(group: &str, kind: &str) -> Option<&'static Printer> {
    PRINTERS.iter().find(|p| p.group == group && p.kind == kind)
}

fn name(o: &Value, _: Timestamp) -> Value {
    json!(s(&o["metadata"]["name"]))
}

fn created(o: &Value, now: Timestamp) -> Value {
    json!(age(&o["metadata"]["creationTimestamp"], now))
}

fn created_at(o: &Value, _: Timestamp) -> Value {
    o["metadata"]["creationTimestamp"].clone()
}

fn int(v: &Value) -> Value {
    json!(v.as_i64().unwrap_or(0))
}

fn join(values: impl Iterator<Item = String>) -> String {
    values.collect::<Vec<_>>().join(",")
}

/// The `-o wide` container names and images of a pod template at `template`.
fn template_names(template: &Value) -> Value {
    json!(join(
        template["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| s(&c["name"]).to_string())
    ))
}

fn template_images(template: &Value) -> Value {
    json!(join(
        template["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| s(&c["image"]).to_string())
    ))
}

/// A LabelSelector as `kubectl` prints one (`app=web,tier in (a,b)`).
fn label_selector(sel: &Value) -> String {
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", s(v)))
        .collect();
    parts.sort();
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = s(&e["key"]);
        let values = join(
            e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| s(v).to_string()),
        );
        parts.push(match s(&e["operator"]) {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other} ({values})"),
        });
    }
    parts.join(",")
}

/// `RWO,ROX`: access modes as kubectl abbreviates them.
fn access_modes(modes: &Value) -> Value {
    json!(join(modes.as_array().into_iter().flatten().map(|m| {
        match s(m) {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        }
        .to_string()
    })))
}

fn unset_or(v: &Value) -> Value {
    json!(v.as_str().filter(|x| !x.is_empty()).unwrap_or("<unset>"))
}

const fn col(
    name: &'static str,
    ty: &'static str,
    priority: u8,
    description: &'static str,
) -> Column {
    (name, ty, priority, description)
}

const VOLUME_MODE: Column = col("VolumeMode", "string", 1, "The volume mode.");
const STORAGE_CLASS: Column = col(
    "StorageClass",
    "string",
    0,
    "The name of the StorageClass the volume belongs to.",
);
const VOLUME_ATTRIBUTES_CLASS: Column = col(
    "VolumeAttributesClass",
    "string",
    0,
    "The VolumeAttributesClass the volume uses.",
);
const ACCESS_MODES: Column = col(
    "Access Modes",
    "string",
    0,
    "The ways the volume can be mounted.",
);
const CAPACITY: Column = col("Capacity", "string", 0, "The size of the volume.");
const SELECTOR: Column = col(
    "Selector",
    "string",
    1,
    "The label query over pods the object selects.",
);

/// `cpu: 12%/80%`: an HPA's metrics, current (or `<unknown>`) over target.
fn hpa_targets(o: &Value) -> String {
    let current = o["status"]["currentMetrics"].as_array();
    let spec_metrics = o["spec"]["metrics"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for (i, m) in spec_metrics.iter().enumerate() {
        let kind = s(&m["type"]);
        let (key, label) = match kind {
            "Resource" => ("resource", s(&m["resource"]["name"]).to_string()),
            "ContainerResource" => (
                "containerResource",
                s(&m["containerResource"]["name"]).to_string(),
            ),
            "Pods" => ("pods", s(&m["pods"]["metric"]["name"]).to_string()),
            "Object" => ("object", s(&m["object"]["metric"]["name"]).to_string()),
            "External" => ("external", s(&m["external"]["metric"]["name"]).to_string()),
            _ => continue,
        };
        let target = &m[key]["target"];
        let now = current.and_then(|c| c.get(i)).map(|c| &c[key]["current"]);
        let (want, have) = if let Some(u) = target["averageUtilization"].as_i64() {
            (
                format!("{u}%"),
                now.and_then(|c| c["averageUtilization"].as_i64())
                    .map(|c| format!("{c}%")),
            )
        } else if let Some(v) = target["averageValue"].as_str() {
            (
                v.to_string(),
                now.and_then(|c| c["averageValue"].as_str().map(str::to_string)),
            )
        } else {
            (
                s(&target["value"]).to_string(),
                now.and_then(|c| c["value"].as_str().map(str::to_string)),
            )
        };
        out.push(format!(
            "{label}: {}/{want}",
            have.unwrap_or_else(|| "<unknown>".into())
        ));
    }
    if out.is_empty() {
        "<none>".into()
    } else {
        out.join(", ")
    }
}

/// A quota's `name: used/hard` pairs, requests or limits.
fn quota_usage(o: &Value, limits: bool) -> Value {
    let used = &o["status"]["used"];
    let mut keys: Vec<(&String, &Value)> = o["status"]["hard"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("limits.") == limits)
        .collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    let shown = |v: &Value| match v {
        Value::String(x) => x.clone(),
        Value::Null => "0".into(),
        other => other.to_string(),
    };
    json!(
        keys.iter()
            .map(|(k, hard)| format!("{k}: {}/{}", shown(&used[k.as_str()]), shown(hard)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn csr_condition(o: &Value) -> Value {
    let conditions: Vec<&str> = o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str())
        .collect();
    let mut shown: Vec<&str> = ["Approved", "Denied", "Failed"]
        .into_iter()
        .filter(|t| conditions.contains(t))
        .collect();
    if shown.is_empty() {
        shown.push("Pending");
    }
    if o["status"]["certificate"]
        .as_str()
        .is_some_and(|c| !c.is_empty())
    {
        shown.push("Issued");
    }
    json!(shown.join(","))
}

fn api_service_available(o: &Value) -> Value {
    let available = o["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Available");
    json!(match available {
        None => "Unknown".to_string(),
        Some(c) if c["status"] == "True" => "True".into(),
        Some(c) => format!("{} ({})", s(&c["status"]), s(&c["reason"])),
    })
}

fn pdb_bound(o: &Value, field: &str) -> Value {
    match &o["spec"][field] {
        Value::Null => json!("N/A"),
        Value::String(v) => json!(v),
        other => json!(other.to_string()),
    }
}

fn healthy_condition(o: &Value) -> &Value {
    o["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Healthy"))
        .unwrap_or(&Value::Null)
}

pub static PRINTERS: &[Printer] = &[
    Printer {
        group: "",
        kind: "PersistentVolume",
        columns: &[
            (NAME, name),
            (CAPACITY, |o, _| json!(s(&o["spec"]["capacity"]["storage"]))),
            (ACCESS_MODES, |o, _| access_modes(&o["spec"]["accessModes"])),
            (
                col(
                    "Reclaim Policy",
                    "string",
                    0,
                    "What happens to the volume when its claim is released.",
                ),
                |o, _| json!(s(&o["spec"]["persistentVolumeReclaimPolicy"])),
            ),
            (
                col("Status", "string", 0, "The phase of the volume."),
                |o, _| json!(s(&o["status"]["phase"])),
            ),
            (
                col("Claim", "string", 0, "The claim bound to the volume."),
                |o, _| {
                    let c = &o["spec"]["claimRef"];
                    json!(if c.is_object() {
                        format!("{}/{}", s(&c["namespace"]), s(&c["name"]))
                    } else {
                        String::new()
                    })
                },
            ),
            (STORAGE_CLASS, |o, _| {
                json!(s(&o["spec"]["storageClassName"]))
            }),
            (VOLUME_ATTRIBUTES_CLASS, |o, _| {
                unset_or(&o["spec"]["volumeAttributesClassName"])
            }),
            (
                col("Reason", "string", 0, "Why the volume is in its phase."),
                |o, _| json!(s(&o["status"]["reason"])),
            ),
            (AGE, created),
            (VOLUME_MODE, |o, _| json!(s(&o["spec"]["volumeMode"]))),
        ],
    },
    Printer {
        group: "",
        kind: "PersistentVolumeClaim",
        columns: &[
            (NAME, name),
            (
                col("Status", "string", 0, "The phase of the claim."),
                |o, _| json!(s(&o["status"]["phase"])),
            ),
            (
                col("Volume", "string", 0, "The volume bound to the claim."),
                |o, _| json!(s(&o["spec"]["volumeName"])),
            ),
            (CAPACITY, |o, _| {
                json!(s(&o["status"]["capacity"]["storage"]))
            }),
            (ACCESS_MODES, |o, _| {
                access_modes(&o["status"]["accessModes"])
            }),
            (STORAGE_CLASS, |o, _| {
                json!(s(&o["spec"]["storageClassName"]))
            }),
            (VOLUME_ATTRIBUTES_CLASS, |o, _| {
                unset_or(&o["spec"]["volumeAttributesClassName"])
            }),
            (AGE, created),
            (VOLUME_MODE, |o, _| json!(s(&o["spec"]["volumeMode"]))),
        ],
    },
    Printer {
        group: "",
        kind: "ReplicationController",
        columns: &[
            (NAME, name),
            (
                col("Desired", "integer", 0, "The number of desired replicas."),
                |o, _| int(&o["spec"]["replicas"]),
            ),
            (
                col("Current", "integer", 0, "The number of actual replicas."),
                |o, _| int(&o["status"]["replicas"]),
            ),
            (
                col("Ready", "integer", 0, "The number of ready replicas."),
                |o, _| int(&o["status"]["readyReplicas"]),
            ),
            (AGE, created),
            (CONTAINERS, |o, _| template_names(&o["spec"]["template"])),
            (IMAGES, |o, _| template_images(&o["spec"]["template"])),
            (SELECTOR, |o, _| {
                let mut parts: Vec<String> = o["spec"]["selector"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={}", s(v)))
                    .collect();
                parts.sort();
                json!(parts.join(","))
            }),
        ],
    },
    Printer {
        group: "",
        kind: "ResourceQuota",
        columns: &[
            (NAME, name),
            (AGE, created),
            (
                col(
                    "Request",
                    "string",
                    0,
                    "Request represents a minimum amount of cpu/memory that a container may consume.",
                ),
                |o, _| quota_usage(o, false),
            ),
            (
                col(
                    "Limit",
                    "string",
                    0,
                    "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
                ),
                |o, _| quota_usage(o, true),
            ),
        ],
    },
    Printer {
        group: "",
        kind: "LimitRange",
        columns: &[
            (NAME, name),
            (
                col(
                    "Created At",
                    "date",
                    0,
                    "CreationTimestamp is a timestamp representing the server time when this object was created.",
                ),
                created_at,
            ),
        ],
    },
    Printer {
        group: "",
        kind: "ComponentStatus",
        columns: &[
            (NAME, name),
            (
                col("Status", "string", 0, "Status of the component conditions"),
                |o, _| {
                    json!(if healthy_condition(o)["status"] == "True" {
                        "Healthy"
                    } else {
                        "Unhealthy"
                    })
                },
            ),
            (
                col(
                    "Message",
                    "string",
                    0,
                    "Message of the component conditions",
                ),
                |o, _| json!(s(&healthy_condition(o)["message"])),
            ),
            (
                col("Error", "string", 0, "Error of the component conditions"),
                |o, _| json!(s(&healthy_condition(o)["error"])),
            ),
        ],
    },
    Printer {
        group: "apps",
        kind: "StatefulSet",
        columns: &[
            (NAME, name),
            (
                col("Ready", "string", 0, "Number of the pod with ready state"),
                |o, _| {
                    json!(format!(
                        "{}/{}",
                        o["status"]["readyReplicas"].as_i64().unwrap_or(0),
                        o["spec"]["replicas"].as_i64().unwrap_or(0)
                    ))
                },
            ),
            (AGE, created),
            (CONTAINERS, |o, _| template_names(&o["spec"]["template"])),
            (IMAGES, |o, _| template_images(&o["spec"]["template"])),
        ],
    },
    Printer {
        group: "batch",
        kind: "CronJob",
        columns: &[
            (NAME, name),
            (
                col("Schedule", "string", 0, "The schedule in Cron format."),
                |o, _| json!(s(&o["spec"]["schedule"])),
            ),
            (
                col("Timezone", "string", 0, "The time zone of the schedule."),
                |o, _| json!(or_none(s(&o["spec"]["timeZone"]).to_string())),
            ),
            (
                col("Suspend", "boolean", 0, "Whether later runs are suspended."),
                |o, _| json!(o["spec"]["suspend"] == true),
            ),
            (
                col("Active", "integer", 0, "The number of running jobs."),
                |o, _| json!(o["status"]["active"].as_array().map_or(0, Vec::len)),
            ),
            (
                col(
                    "Last Schedule",
                    "string",
                    0,
                    "When the job was last scheduled.",
                ),
                |o, now| match &o["status"]["lastScheduleTime"] {
                    Value::String(_) => json!(age(&o["status"]["lastScheduleTime"], now)),
                    _ => json!("<none>"),
                },
            ),
            (AGE, created),
            (CONTAINERS, |o, _| {
                template_names(&o["spec"]["jobTemplate"]["spec"]["template"])
            }),
            (IMAGES, |o, _| {
                template_images(&o["spec"]["jobTemplate"]["spec"]["template"])
            }),
            (SELECTOR, |o, _| {
                json!(or_none(label_selector(
                    &o["spec"]["jobTemplate"]["spec"]["selector"]
                )))
            }),
        ],
    },
    Printer {
        group: "autoscaling",
        kind: "HorizontalPodAutoscaler",
        columns: &[
            (NAME, name),
            (
                col(
                    "Reference",
                    "string",
                    0,
                    "The object whose replicas are scaled.",
                ),
                |o, _| {
                    let r = &o["spec"]["scaleTargetRef"];
                    json!(format!("{}/{}", s(&r["kind"]), s(&r["name"])))
                },
            ),
            (
                col(
                    "Targets",
                    "string",
                    0,
                    "The current and target values of the metrics.",
                ),
                |o, _| json!(hpa_targets(o)),
            ),
            (
                col("MinPods", "string", 0, "The lower limit of replicas."),
                |o, _| json!(o["spec"]["minReplicas"].as_i64().unwrap_or(1).to_string()),
            ),
            (
                col("MaxPods", "integer", 0, "The upper limit of replicas."),
                |o, _| int(&o["spec"]["maxReplicas"]),
            ),
            (
                col("Replicas", "integer", 0, "The current number of replicas."),
                |o, _| int(&o["status"]["currentReplicas"]),
            ),
            (AGE, created),
        ],
    },
    Printer {
        group: "policy",
        kind: "PodDisruptionBudget",
        columns: &[
            (NAME, name),
            (
                col(
                    "Min Available",
                    "string",
                    0,
                    "The minimum number or percentage of available pods.",
                ),
                |o, _| pdb_bound(o, "minAvailable"),
            ),
            (
                col(
                    "Max Unavailable",
                    "string",
                    0,
                    "The maximum number or percentage of unavailable pods.",
                ),
                |o, _| pdb_bound(o, "maxUnavailable"),
            ),
            (
                col(
                    "Allowed Disruptions",
                    "integer",
                    0,
                    "Calculated number of pods that may be disrupted at this time.",
                ),
                |o, _| int(&o["status"]["disruptionsAllowed"]),
            ),
            (AGE, created),
        ],
    },
    Printer {
        group: "networking.k8s.io",
        kind: "NetworkPolicy",
        columns: &[
            (NAME, name),
            (
                col(
                    "Pod-Selector",
                    "string",
                    0,
                    "The pods the policy applies to.",
                ),
                |o, _| json!(or_none(label_selector(&o["spec"]["podSelector"]))),
            ),
            (AGE, created),
        ],
    },
    Printer {
        group: "certificates.k8s.io",
        kind: "CertificateSigningRequest",
        columns: &[
            (NAME, name),
            (AGE, created),
            (
                col("SignerName", "string", 0, "The signer the request is for."),
                |o, _| json!(s(&o["spec"]["signerName"])),
            ),
            (
                col("Requestor", "string", 0, "Who created the request."),
                |o, _| json!(s(&o["spec"]["username"])),
            ),
            (
                col(
                    "RequestedDuration",
                    "string",
                    0,
                    "The validity the request asks for.",
                ),
                |o, _| match o["spec"]["expirationSeconds"].as_i64() {
                    Some(secs) => json!(human_duration(secs)),
                    None => json!("<none>"),
                },
            ),
            (
                col("Condition", "string", 0, "The state of the request."),
                |o, _| csr_condition(o),
            ),
        ],
    },
    Printer {
        group: "admissionregistration.k8s.io",
        kind: "MutatingWebhookConfiguration",
        columns: WEBHOOK_COLUMNS,
    },
    Printer {
        group: "admissionregistration.k8s.io",
        kind: "ValidatingWebhookConfiguration",
        columns: WEBHOOK_COLUMNS,
    },
    Printer {
        group: "admissionregistration.k8s.io",
        kind: "ValidatingAdmissionPolicy",
        columns: &[
            (NAME, name),
            (
                col("Validations", "integer", 0, "The number of validations."),
                |o, _| json!(o["spec"]["validations"].as_array().map_or(0, Vec::len)),
            ),
            (
                col("ParamKind", "string", 0, "The kind of the parameters."),
                |o, _| {
                    let p = &o["spec"]["paramKind"];
                    json!(if p.is_object() {
                        format!("{} {}", s(&p["apiVersion"]), s(&p["kind"]))
                    } else {
                        "<unset>".into()
                    })
                },
            ),
            (AGE, created),
        ],
    },
    Printer {
        group: "admissionregistration.k8s.io",
        kind: "ValidatingAdmissionPolicyBinding",
        columns: &[
            (NAME, name),
            (
                col("PolicyName", "string", 0, "The policy bound."),
                |o, _| json!(s(&o["spec"]["policyName"])),
            ),
            (
                col("ParamRef", "string", 0, "The parameters of the binding."),
                |o, _| {
                    let p = &o["spec"]["paramRef"];
                    json!(match (p["namespace"].as_str(), p["name"].as_str()) {
                        (Some(ns), Some(n)) => format!("{ns}/{n}"),
                        (None, Some(n)) => format!("*/{n}"),
                        _ if p.is_object() => "*/*".to_string(),
                        _ => "<unset>".to_string(),
                    })
                },
            ),
            (AGE, created),
        ],
    },
    Printer {
        group: "apiregistration.k8s.io",
        kind: "APIService",
        columns: &[
            (NAME, name),
            (
                col(
                    "Service",
                    "string",
                    0,
                    "The reference to the service that hosts this API endpoint.",
                ),
                |o, _| {
                    let svc = &o["spec"]["service"];
                    json!(if svc.is_object() {
                        format!("{}/{}", s(&svc["namespace"]), s(&svc["name"]))
                    } else {
                        "Local".into()
                    })
                },
            ),
            (
                col(
                    "Available",
                    "string",
                    0,
                    "Whether this service is available.",
                ),
                |o, _| api_service_available(o),
            ),
            (AGE, created),
        ],
    },
];

const WEBHOOK_COLUMNS: &[(Column, Cell)] = &[
    (NAME, name),
    (
        col("Webhooks", "integer", 0, "The number of webhooks."),
        |o, _| json!(o["webhooks"].as_array().map_or(0, Vec::len)),
    ),
    (AGE, created),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(kind: &str, group: &str, o: Value) -> Vec<Value> {
        let now: Timestamp = "2026-12-08T10:00:00Z".parse().unwrap();
        find(group, kind).unwrap().cells(&o, now)
    }

    #[test]
    fn volumes_print_abbreviated_modes_and_their_claim() {
        let row = cells(
            "PersistentVolume",
            "",
            json!({"metadata": {"name": "pv1", "creationTimestamp": "2026-12-08T09:59:00Z"},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                    "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "default", "name": "data"},
                    "storageClassName": "local", "volumeMode": "Filesystem"},
                "status": {"phase": "Bound"}}),
        );
        assert_eq!(
            row,
            [
                "pv1",
                "1Gi",
                "RWO,ROX",
                "Retain",
                "Bound",
                "default/data",
                "local",
                "<unset>",
                "",
                "60s",
                "Filesystem"
            ]
        );
    }

    #[test]
    fn hpas_print_unknown_until_measured() {
        let o = json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]}});
        assert_eq!(hpa_targets(&o), "cpu: <unknown>/80%");
        let row = cells("HorizontalPodAutoscaler", "autoscaling", o);
        assert_eq!(row[1], "Deployment/web");
        assert_eq!(row[3], "1");
    }

    #[test]
    fn quotas_split_requests_from_limits() {
        let o = json!({"status": {"hard": {"cpu": "1", "limits.memory": "1Gi", "pods": "10"},
            "used": {"cpu": "100m", "pods": "2"}}});
        assert_eq!(quota_usage(&o, false), "cpu: 100m/1, pods: 2/10");
        assert_eq!(quota_usage(&o, true), "limits.memory: 0/1Gi");
    }

    #[test]
    fn requests_show_their_conditions() {
        assert_eq!(csr_condition(&json!({})), "Pending");
        assert_eq!(
            csr_condition(
                &json!({"status": {"conditions": [{"type": "Approved"}], "certificate": "Zm9v"}})
            ),
            "Approved,Issued"
        );
    }
}
