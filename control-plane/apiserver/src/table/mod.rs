//! Server-side printing: objects as a `meta.k8s.io` Table with the columns
//! kubectl shows (`kubectl get pod` prints `NAME READY STATUS RESTARTS AGE`;
//! `-o wide` adds the priority-1 columns). Column sets and cell rules follow
//! Kubernetes' own printers (pkg/printers/internalversion).

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::registry::Resource;

mod printers;

/// (name, type, priority, description)
type Column = (&'static str, &'static str, u8, &'static str);

const NAME: Column = (
    "Name",
    "string",
    0,
    "Name must be unique within a namespace.",
);
const AGE: Column = (
    "Age",
    "string",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);
/// The `-o wide` columns of every workload with a pod template.
const CONTAINERS: Column = (
    "Containers",
    "string",
    1,
    "Names of each container in the template.",
);
const IMAGES: Column = (
    "Images",
    "string",
    1,
    "Images referenced by each container in the template.",
);

fn columns(resource: &Resource) -> Vec<Column> {
    if let Some(p) = printers::find(resource.group, resource.kind) {
        return p.columns();
    }
    match (resource.group, resource.kind) {
        ("", "Pod") => vec![
            NAME,
            (
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            (
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            (
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            AGE,
            ("IP", "string", 1, "IP address allocated to the pod."),
            (
                "Node",
                "string",
                1,
                "Name of the Node this pod is scheduled on.",
            ),
            (
                "Nominated Node",
                "string",
                1,
                "Name of the Node this pod is nominated to.",
            ),
            (
                "Readiness Gates",
                "string",
                1,
                "Readiness gates of the pod.",
            ),
        ],
        ("apps", "Deployment") => vec![
            NAME,
            ("Ready", "string", 0, "Number of the pod with ready state"),
            (
                "Up-to-date",
                "string",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            (
                "Available",
                "string",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            ("Selector", "string", 1, "Label selector for pods."),
        ],
        ("apps", "ReplicaSet") => vec![
            NAME,
            ("Desired", "integer", 0, "Number of desired pods."),
            ("Current", "integer", 0, "Number of actual replicas."),
            (
                "Ready",
                "integer",
                0,
                "The number of ready replicas for this replica set.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            (
                "Selector",
                "string",
                1,
                "Selector is a label query over pods.",
            ),
        ],
        ("apps", "DaemonSet") => vec![
            NAME,
            (
                "Desired",
                "integer",
                0,
                "The total number of nodes that should be running the daemon pod.",
            ),
            (
                "Current",
                "integer",
                0,
                "The number of nodes that are running at least 1 daemon pod.",
            ),
            (
                "Ready",
                "integer",
                0,
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
            ),
            (
                "Up-to-date",
                "integer",
                0,
                "The total number of nodes that are running updated daemon pod.",
            ),
            (
                "Available",
                "integer",
                0,
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.",
            ),
            (
                "Node Selector",
                "string",
                0,
                "NodeSelector is a selector which must be true for the pod to fit on a node.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            (
                "Selector",
                "string",
                1,
                "A label query over pods that are managed by the daemon set.",
            ),
        ],
        ("", "Service") => vec![
            NAME,
            (
                "Type",
                "string",
                0,
                "Type determines how the Service is exposed.",
            ),
            (
                "Cluster-IP",
                "string",
                0,
                "ClusterIP is the IP address of the service.",
            ),
            (
                "External-IP",
                "string",
                0,
                "List of IP addresses for which nodes in the cluster will also accept traffic for this service.",
            ),
            (
                "Port(s)",
                "string",
                0,
                "The list of ports that are exposed by this service.",
            ),
            AGE,
            (
                "Selector",
                "string",
                1,
                "Route service traffic to pods with label keys and values matching this selector.",
            ),
        ],
        ("", "ConfigMap") => vec![
            NAME,
            ("Data", "string", 0, "Data contains the configuration data."),
            AGE,
        ],
        ("", "Secret") => vec![
            NAME,
            ("Type", "string", 0, "The type of the secret"),
            ("Data", "string", 0, "The number of entries in the secret"),
            AGE,
        ],
        ("", "Namespace") => vec![
            NAME,
            ("Status", "string", 0, "The status of the namespace"),
            AGE,
        ],
        ("", "Node") => vec![
            NAME,
            ("Status", "string", 0, "The status of the node"),
            ("Roles", "string", 0, "The roles of the node"),
            AGE,
            (
                "Version",
                "string",
                0,
                "Kubelet Version reported by the node.",
            ),
            (
                "Internal-IP",
                "string",
                1,
                "List of internal IPs for the node.",
            ),
            (
                "External-IP",
                "string",
                1,
                "List of external IPs for the node.",
            ),
            (
                "OS-Image",
                "string",
                1,
                "OS image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
            ),
            (
                "Kernel-Version",
                "string",
                1,
                "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
            ),
            (
                "Container-Runtime",
                "string",
                1,
                "Container runtime version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
            ),
        ],
        ("", "Event") => vec![
            (
                "Last Seen",
                "string",
                0,
                "Time when last this event was observed.",
            ),
            (
                "Type",
                "string",
                0,
                "Type of this event (Normal, Warning), new types could be added in the future.",
            ),
            (
                "Reason",
                "string",
                0,
                "This should be a short, machine understandable string that gives the reason for this event being generated.",
            ),
            (
                "Object",
                "string",
                0,
                "The object that this event is about.",
            ),
            (
                "Message",
                "string",
                0,
                "A human-readable description of the status of this operation.",
            ),
            (
                "Name",
                "string",
                1,
                "Name must be unique within a namespace.",
            ),
        ],
        ("", "ServiceAccount") => vec![
            NAME,
            (
                "Secrets",
                "string",
                0,
                "Secrets is the list of secrets allowed to be used by pods running using this ServiceAccount.",
            ),
            AGE,
        ],
        ("", "Endpoints") => vec![
            NAME,
            (
                "Endpoints",
                "string",
                0,
                "Endpoints is the list of endpoints of the service.",
            ),
            AGE,
        ],
        ("batch", "Job") => vec![
            NAME,
            ("Status", "string", 0, "Status of the job."),
            (
                "Completions",
                "string",
                0,
                "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.",
            ),
            (
                "Duration",
                "string",
                0,
                "Time required to complete the job.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            (
                "Selector",
                "string",
                1,
                "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
            ),
        ],
        ("coordination.k8s.io", "Lease") => vec![
            NAME,
            ("Holder", "string", 0, "The holder of the lease."),
            AGE,
        ],
        ("scheduling.k8s.io", "PriorityClass") => vec![
            NAME,
            ("Value", "integer", 0, "The value of this priority class."),
            (
                "Global-Default",
                "boolean",
                0,
                "Whether this is the default class of pods without one.",
            ),
            AGE,
            (
                "PreemptionPolicy",
                "string",
                0,
                "Whether pods of this class may preempt others.",
            ),
        ],
        ("node.k8s.io", "RuntimeClass") => vec![
            NAME,
            (
                "Handler",
                "string",
                0,
                "The CRI handler of this RuntimeClass.",
            ),
            AGE,
        ],
        ("storage.k8s.io", "StorageClass") => vec![
            NAME,
            (
                "Provisioner",
                "string",
                0,
                "Indicates the type of the provisioner.",
            ),
            (
                "ReclaimPolicy",
                "string",
                0,
                "Indicates the type of the reclaim policy.",
            ),
            (
                "VolumeBindingMode",
                "string",
                0,
                "Indicates when volume binding and dynamic provisioning should occur.",
            ),
            (
                "AllowVolumeExpansion",
                "string",
                0,
                "Indicates whether the storage class allows volume expand.",
            ),
            AGE,
        ],
        ("networking.k8s.io", "IngressClass") => vec![
            NAME,
            (
                "Controller",
                "string",
                0,
                "Controller that is responsible for handling this class.",
            ),
            (
                "Parameters",
                "string",
                0,
                "A reference to a resource with additional parameters.",
            ),
            AGE,
        ],
        ("networking.k8s.io", "Ingress") => vec![
            NAME,
            (
                "Class",
                "string",
                0,
                "The name of the IngressClass resource that should be used.",
            ),
            (
                "Hosts",
                "string",
                0,
                "Hosts that incoming requests are matched against.",
            ),
            (
                "Address",
                "string",
                0,
                "Address is a list containing ingress points for the load-balancer.",
            ),
            (
                "Ports",
                "string",
                0,
                "Ports of TLS configurations that open.",
            ),
            AGE,
        ],
        ("", "PodTemplate") => vec![
            NAME,
            (
                "Containers",
                "string",
                0,
                "Names of each container in the template.",
            ),
            (
                "Images",
                "string",
                0,
                "Images referenced by each container in the template.",
            ),
            (
                "Pod Labels",
                "string",
                0,
                "The labels for the pod template.",
            ),
        ],
        ("apps", "ControllerRevision") => vec![
            NAME,
            ("Controller", "string", 0, "Controller of the object."),
            (
                "Revision",
                "string",
                0,
                "The revision number of the ControllerRevision.",
            ),
            AGE,
        ],
        ("storage.k8s.io", "VolumeAttachment") => vec![
            NAME,
            (
                "Attacher",
                "string",
                0,
                "The attacher of the VolumeAttachment.",
            ),
            (
                "PV",
                "string",
                0,
                "The name of the persistent volume to attach.",
            ),
            (
                "Node",
                "string",
                0,
                "The node the volume is to be attached to.",
            ),
            ("Attached", "boolean", 0, "Whether the volume is attached."),
            AGE,
        ],
        ("apiextensions.k8s.io", "CustomResourceDefinition") => vec![
            NAME,
            (
                "Created At",
                "date",
                0,
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
            ),
        ],
        ("discovery.k8s.io", "EndpointSlice") => vec![
            NAME,
            (
                "AddressType",
                "string",
                0,
                "The IP protocol family of addresses in this slice.",
            ),
            (
                "Ports",
                "string",
                0,
                "The ports of the endpoints in this slice.",
            ),
            ("Endpoints", "string", 0, "The endpoints in this slice."),
            AGE,
        ],
        _ => vec![NAME, AGE],
    }
}

pub use kc_protocol::duration::human_duration;

/// The age of a timestamp field, or `<unknown>`.
fn age(ts: &Value, now: Timestamp) -> String {
    ts.as_str()
        .and_then(|s| s.parse::<Timestamp>().ok())
        .map(|t| human_duration(now.as_second() - t.as_second()))
        .unwrap_or_else(|| "<unknown>".into())
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn or_none(v: String) -> String {
    if v.is_empty() { "<none>".into() } else { v }
}

fn count(v: &Value) -> usize {
    v.as_object()
        .map(|m| m.len())
        .or(v.as_array().map(Vec::len))
        .unwrap_or(0)
}

fn template_containers(spec: &Value) -> (String, String) {
    let cs = spec["template"]["spec"]["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let names = cs
        .iter()
        .map(|c| s(&c["name"]).to_string())
        .collect::<Vec<_>>()
        .join(",");
    let images = cs
        .iter()
        .map(|c| s(&c["image"]).to_string())
        .collect::<Vec<_>>()
        .join(",");
    (names, images)
}

/// A selector's `matchLabels` as `a=b,c=d`.
fn selector_string(sel: &Value) -> String {
    let mut parts: Vec<String> = sel
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", s(v))).collect())
        .unwrap_or_default();
    parts.sort();
    parts.join(",")
}

/// The STATUS column of a pod (Kubernetes' `printPod`).
fn pod_status(pod: &Value) -> String {
    let mut reason = s(&pod["status"]["phase"]).to_string();
    if let Some(r) = pod["status"]["reason"].as_str().filter(|r| !r.is_empty()) {
        reason = r.to_string();
    }
    let mut initializing = false;
    let inits = pod["status"]["initContainerStatuses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let init_total = pod["spec"]["initContainers"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    for (i, c) in inits.iter().enumerate() {
        let term = &c["state"]["terminated"];
        if term.is_object() && term["exitCode"] == 0 {
            continue;
        }
        reason = if term.is_object() {
            match term["reason"].as_str().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None => format!("Init:ExitCode:{}", term["exitCode"]),
            }
        } else if let Some(r) = c["state"]["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            format!("Init:{r}")
        } else {
            format!("Init:{i}/{init_total}")
        };
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        for c in pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .rev()
        {
            let st = &c["state"];
            if let Some(r) = st["waiting"]["reason"].as_str().filter(|r| !r.is_empty()) {
                reason = r.to_string();
            } else if st["terminated"].is_object() {
                let t = &st["terminated"];
                reason = match t["reason"].as_str().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None if t["signal"].as_i64().unwrap_or(0) != 0 => {
                        format!("Signal:{}", t["signal"])
                    }
                    None => format!("ExitCode:{}", t["exitCode"]),
                };
            } else if st["running"].is_object() && c["ready"] == true {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".into();
        }
    }
    if pod["metadata"]["deletionTimestamp"].is_string() {
        reason = if pod["status"]["reason"] == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    reason
}

fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let total = pod["spec"]["containers"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let gates = pod["spec"]["readinessGates"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    vec![
        json!(s(&pod["metadata"]["name"])),
        json!(format!("{ready}/{total}")),
        json!(pod_status(pod)),
        json!(restarts.to_string()),
        json!(age(&pod["metadata"]["creationTimestamp"], now)),
        json!(or_none(s(&pod["status"]["podIP"]).to_string())),
        json!(or_none(s(&pod["spec"]["nodeName"]).to_string())),
        json!(or_none(s(&pod["status"]["nominatedNodeName"]).to_string())),
        json!(if gates == 0 {
            "<none>".to_string()
        } else {
            format!("0/{gates}")
        }),
    ]
}

fn node_cells(node: &Value, now: Timestamp) -> Vec<Value> {
    let conditions = node["status"]["conditions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let ready = conditions.iter().find(|c| c["type"] == "Ready");
    let mut status = match ready.map(|c| s(&c["status"])) {
        Some("True") => "Ready".to_string(),
        _ => "NotReady".to_string(),
    };
    if ready.is_none() {
        status = "Unknown".into();
    }
    if node["spec"]["unschedulable"] == true {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = node["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .filter_map(|k| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_string)
        })
        .collect();
    roles.sort();
    let addr = |t: &str| {
        node["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == t)
            .map(|a| s(&a["address"]).to_string())
            .unwrap_or_else(|| "<none>".into())
    };
    let info = &node["status"]["nodeInfo"];
    vec![
        json!(s(&node["metadata"]["name"])),
        json!(status),
        json!(or_none(roles.join(","))),
        json!(age(&node["metadata"]["creationTimestamp"], now)),
        json!(s(&info["kubeletVersion"])),
        json!(addr("InternalIP")),
        json!(addr("ExternalIP")),
        json!(or_none(s(&info["osImage"]).to_string())),
        json!(or_none(s(&info["kernelVersion"]).to_string())),
        json!(or_none(s(&info["containerRuntimeVersion"]).to_string())),
    ]
}

fn service_cells(svc: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &svc["spec"];
    let kind = s(&spec["type"]);
    let mut external: Vec<String> = spec["externalIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| s(v).to_string())
        .collect();
    for ing in svc["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
    {
        external.push(s(&ing["ip"]).to_string());
    }
    let external = match kind {
        "ExternalName" => s(&spec["externalName"]).to_string(),
        "LoadBalancer" if external.is_empty() => "<pending>".into(),
        _ => or_none(external.join(",")),
    };
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| match p["nodePort"].as_i64() {
            Some(np) => format!("{}:{np}/{}", p["port"], s(&p["protocol"])),
            None => format!("{}/{}", p["port"], s(&p["protocol"])),
        })
        .collect();
    vec![
        json!(s(&svc["metadata"]["name"])),
        json!(kind),
        json!(or_none(s(&spec["clusterIP"]).to_string())),
        json!(external),
        json!(or_none(ports.join(","))),
        json!(age(&svc["metadata"]["creationTimestamp"], now)),
        json!(or_none(selector_string(&spec["selector"]))),
    ]
}

fn event_cells(ev: &Value, now: Timestamp) -> Vec<Value> {
    let last = [
        &ev["lastTimestamp"],
        &ev["eventTime"],
        &ev["metadata"]["creationTimestamp"],
    ]
    .into_iter()
    .find(|v| v.is_string())
    .cloned()
    .unwrap_or(Value::Null);
    let obj = &ev["involvedObject"];
    vec![
        json!(age(&last, now)),
        json!(s(&ev["type"])),
        json!(s(&ev["reason"])),
        json!(format!(
            "{}/{}",
            s(&obj["kind"]).to_lowercase(),
            s(&obj["name"])
        )),
        json!(s(&ev["message"]).trim()),
        json!(s(&ev["metadata"]["name"])),
    ]
}

fn cells(resource: &Resource, o: &Value, now: Timestamp) -> Vec<Value> {
    if let Some(served) = super::crd::served(resource) {
        return super::crd::columns::cells(&served.columns, o, |ts| age(ts, now));
    }
    if let Some(p) = printers::find(resource.group, resource.kind) {
        return p.cells(o, now);
    }
    let name = json!(s(&o["metadata"]["name"]));
    let created = json!(age(&o["metadata"]["creationTimestamp"], now));
    let int = |v: &Value| json!(v.as_i64().unwrap_or(0));
    match (resource.group, resource.kind) {
        ("", "Pod") => pod_cells(o, now),
        ("", "Node") => node_cells(o, now),
        ("", "Service") => service_cells(o, now),
        ("", "Event") => event_cells(o, now),
        ("apps", "Deployment") => {
            let (names, images) = template_containers(&o["spec"]);
            let st = &o["status"];
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    st["readyReplicas"].as_i64().unwrap_or(0),
                    o["spec"]["replicas"].as_i64().unwrap_or(0)
                )),
                int(&st["updatedReplicas"]),
                int(&st["availableReplicas"]),
                created,
                json!(names),
                json!(images),
                json!(or_none(selector_string(
                    &o["spec"]["selector"]["matchLabels"]
                ))),
            ]
        }
        ("apps", "ReplicaSet") => {
            let (names, images) = template_containers(&o["spec"]);
            vec![
                name,
                int(&o["spec"]["replicas"]),
                int(&o["status"]["replicas"]),
                int(&o["status"]["readyReplicas"]),
                created,
                json!(names),
                json!(images),
                json!(or_none(selector_string(
                    &o["spec"]["selector"]["matchLabels"]
                ))),
            ]
        }
        ("apps", "DaemonSet") => {
            let (names, images) = template_containers(&o["spec"]);
            let st = &o["status"];
            vec![
                name,
                int(&st["desiredNumberScheduled"]),
                int(&st["currentNumberScheduled"]),
                int(&st["numberReady"]),
                int(&st["updatedNumberScheduled"]),
                int(&st["numberAvailable"]),
                json!(or_none(selector_string(
                    &o["spec"]["template"]["spec"]["nodeSelector"]
                ))),
                created,
                json!(names),
                json!(images),
                json!(or_none(selector_string(
                    &o["spec"]["selector"]["matchLabels"]
                ))),
            ]
        }
        ("batch", "Job") => {
            let (names, images) = template_containers(&o["spec"]);
            vec![
                name,
                json!(job_status(o)),
                json!(job_completions(o)),
                json!(job_duration(o, now)),
                created,
                json!(names),
                json!(images),
                json!(or_none(selector_string(
                    &o["spec"]["selector"]["matchLabels"]
                ))),
            ]
        }
        ("", "ConfigMap") => vec![
            name,
            json!(count(&o["data"]) + count(&o["binaryData"])),
            created,
        ],
        ("", "Secret") => vec![
            name,
            json!(s(&o["type"])),
            json!(count(&o["data"])),
            created,
        ],
        ("", "Namespace") => vec![name, json!(s(&o["status"]["phase"])), created],
        ("", "ServiceAccount") => vec![name, json!(count(&o["secrets"])), created],
        ("", "Endpoints") => {
            let mut eps = Vec::new();
            for subset in o["subsets"].as_array().into_iter().flatten() {
                for a in subset["addresses"].as_array().into_iter().flatten() {
                    for p in subset["ports"].as_array().into_iter().flatten() {
                        eps.push(format!("{}:{}", s(&a["ip"]), p["port"]));
                    }
                }
            }
            vec![name, json!(or_none(eps.join(","))), created]
        }
        ("coordination.k8s.io", "Lease") => {
            vec![name, json!(s(&o["spec"]["holderIdentity"])), created]
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            vec![name, o["metadata"]["creationTimestamp"].clone()]
        }
        ("scheduling.k8s.io", "PriorityClass") => vec![
            name,
            json!(o["value"].as_i64().unwrap_or(0)),
            json!(o["globalDefault"] == true),
            created,
            json!(s(&o["preemptionPolicy"])),
        ],
        ("node.k8s.io", "RuntimeClass") => vec![name, json!(s(&o["handler"])), created],
        ("storage.k8s.io", "StorageClass") => vec![
            name,
            json!(s(&o["provisioner"])),
            json!(s(&o["reclaimPolicy"])),
            json!(s(&o["volumeBindingMode"])),
            json!(o["allowVolumeExpansion"] == true),
            created,
        ],
        ("networking.k8s.io", "IngressClass") => {
            let p = &o["spec"]["parameters"];
            let params = if p.is_object() {
                format!("{}/{}", s(&p["kind"]), s(&p["name"]))
            } else {
                "<none>".into()
            };
            vec![
                name,
                json!(s(&o["spec"]["controller"])),
                json!(params),
                created,
            ]
        }
        ("networking.k8s.io", "Ingress") => {
            let hosts: Vec<String> = o["spec"]["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["host"].as_str().map(str::to_string))
                .collect();
            let addresses: Vec<String> = o["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i["ip"]
                        .as_str()
                        .or(i["hostname"].as_str())
                        .map(str::to_string)
                })
                .collect();
            let ports = if o["spec"]["tls"].as_array().is_some_and(|t| !t.is_empty()) {
                "80, 443"
            } else {
                "80"
            };
            let class = o["spec"]["ingressClassName"].as_str().unwrap_or("<none>");
            let hosts = if hosts.is_empty() {
                "*".to_string()
            } else {
                hosts.join(",")
            };
            vec![
                name,
                json!(class),
                json!(hosts),
                json!(addresses.join(",")),
                json!(ports),
                created,
            ]
        }
        ("", "PodTemplate") => {
            let (names, images) = template_containers(o);
            let labels = o["template"]["metadata"]["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| "<none>".into());
            vec![name, json!(names), json!(images), json!(labels)]
        }
        ("apps", "ControllerRevision") => {
            let owner = o["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["controller"] == true)
                .map(|r| {
                    let group = s(&r["apiVersion"])
                        .split('/')
                        .next()
                        .unwrap_or("")
                        .to_string();
                    format!("{}.{group}/{}", s(&r["kind"]).to_lowercase(), s(&r["name"]))
                })
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                json!(owner),
                json!(o["revision"].as_i64().unwrap_or(0).to_string()),
                created,
            ]
        }
        ("storage.k8s.io", "VolumeAttachment") => vec![
            name,
            json!(s(&o["spec"]["attacher"])),
            json!(s(&o["spec"]["source"]["persistentVolumeName"])),
            json!(s(&o["spec"]["nodeName"])),
            json!(o["status"]["attached"] == true),
            created,
        ],
        ("discovery.k8s.io", "EndpointSlice") => {
            let ports: Vec<String> = o["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["port"].to_string())
                .collect();
            let eps: Vec<String> = o["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                .map(|a| s(&a).to_string())
                .collect();
            vec![
                name,
                json!(s(&o["addressType"])),
                json!(or_none(ports.join(","))),
                json!(or_none(eps.join(","))),
                created,
            ]
        }
        _ => vec![name, created],
    }
}

fn has_condition(o: &Value, kind: &str) -> bool {
    o["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == kind && c["status"] == "True")
    })
}

/// A Job's STATUS cell (kubectl's `printJob`).
fn job_status(o: &Value) -> &'static str {
    if has_condition(o, "Complete") {
        "Complete"
    } else if has_condition(o, "Failed") {
        "Failed"
    } else if o["metadata"]["deletionTimestamp"].is_string() {
        "Terminating"
    } else if has_condition(o, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(o, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else if has_condition(o, "Suspended") {
        "Suspended"
    } else {
        "Running"
    }
}

/// A Job's COMPLETIONS cell: `1/3`, or `0/1 of 4` for a work queue.
fn job_completions(o: &Value) -> String {
    let succeeded = o["status"]["succeeded"].as_i64().unwrap_or(0);
    match o["spec"]["completions"].as_i64() {
        Some(c) => format!("{succeeded}/{c}"),
        None => match o["spec"]["parallelism"].as_i64().unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    }
}

/// A Job's DURATION cell: start to completion, or start to now.
fn job_duration(o: &Value, now: Timestamp) -> String {
    let time = |v: &Value| v.as_str().and_then(|t| t.parse::<Timestamp>().ok());
    match (
        time(&o["status"]["startTime"]),
        time(&o["status"]["completionTime"]),
    ) {
        (Some(start), Some(end)) => human_duration(end.as_second() - start.as_second()),
        (Some(start), None) => human_duration(now.as_second() - start.as_second()),
        _ => String::new(),
    }
}

/// The PartialObjectMetadata kubectl reads the NAMESPACE column from.
fn partial_metadata(o: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": o["metadata"],
    })
}

/// One row of a Table.
pub fn row(resource: &Resource, object: &Value, now: Timestamp) -> Value {
    json!({ "cells": cells(resource, object, now), "object": partial_metadata(object) })
}

/// A row that borrows the object's metadata (no copy), for `table_bytes`.
#[derive(serde::Serialize)]
struct RowRef<'a> {
    cells: Vec<Value>,
    object: PartialRef<'a>,
}

#[derive(serde::Serialize)]
struct PartialRef<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: &'a Value,
}

fn row_ref<'a>(resource: &Resource, object: &'a Value, now: Timestamp) -> RowRef<'a> {
    RowRef {
        cells: cells(resource, object, now),
        object: PartialRef {
            kind: "PartialObjectMetadata",
            api_version: "meta.k8s.io/v1",
            metadata: &object["metadata"],
        },
    }
}

/// A Table (`meta.k8s.io/<version>`) of `objects`; `list_meta` is the list's
/// metadata (resourceVersion, continue).
pub fn table(resource: &Resource, version: &str, objects: &[Value], list_meta: Value) -> Value {
    let now = super::clock::now();
    let defs = column_definitions(resource);
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": list_meta,
        "columnDefinitions": defs,
        "rows": objects.iter().map(|o| row(resource, o, now)).collect::<Vec<_>>(),
    })
}

fn column_definitions(resource: &Resource) -> Vec<Value> {
    if let Some(served) = super::crd::served(resource) {
        return super::crd::columns::definitions(&served.columns);
    }
    columns(resource)
        .into_iter()
        .map(|(name, ty, priority, description)| {
            let format = if name == "Name" { "name" } else { "" };
            json!({ "name": name, "type": ty, "format": format, "description": description, "priority": priority })
        })
        .collect()
}

/// A Table of stored objects as JSON bytes, for large lists: objects are
/// parsed (only the parts `decode` keeps, when given), filtered by `keep`
/// and rendered to rows on every core, and the rows are written straight to
/// bytes.
pub fn table_bytes(
    resource: &Resource,
    version: &str,
    kvs: &[kc_store_api::api::KeyValue],
    keep: &(dyn Fn(&Value) -> bool + Sync),
    list_meta: Value,
    decode: Option<&super::table_decode::Keep>,
) -> Result<Vec<u8>, super::status::ApiError> {
    let now = super::clock::now();
    let render =
        |chunk: &[kc_store_api::api::KeyValue]| -> Result<Vec<u8>, super::status::ApiError> {
            let mut out = Vec::with_capacity(chunk.len() * 512);
            for kv in chunk {
                let object = match decode {
                    Some(k) => super::table_decode::decode(kv, k)?,
                    None => super::storage::Storage::decode(kv)?,
                };
                if !keep(&object) {
                    continue;
                }
                out.push(b',');
                serde_json::to_writer(&mut out, &row_ref(resource, &object, now))
                    .map_err(|e| super::status::ApiError::internal(e.to_string()))?;
            }
            Ok(out)
        };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    let chunk = kvs.len().div_ceil(workers).max(256);
    let parts: Vec<Result<Vec<u8>, super::status::ApiError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = kvs
            .chunks(chunk)
            .map(|c| scope.spawn(move || render(c)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(super::status::ApiError::internal("table rendering failed"))
                })
            })
            .collect()
    });
    let head = json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{version}"),
        "metadata": list_meta,
        "columnDefinitions": column_definitions(resource),
    });
    let mut out =
        serde_json::to_vec(&head).map_err(|e| super::status::ApiError::internal(e.to_string()))?;
    out.pop(); // the closing brace
    out.extend_from_slice(b",\"rows\":[");
    let mut first = true;
    for part in parts {
        let part = part?;
        if part.is_empty() {
            continue;
        }
        out.extend_from_slice(if first { &part[1..] } else { &part[..] });
        first = false;
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::lookup;

    #[test]
    fn table_bytes_match_the_value_table() {
        let pods = lookup("", "v1", "pods").unwrap();
        let kvs: Vec<kc_store_api::api::KeyValue> = (0..600)
            .map(|i| kc_store_api::api::KeyValue {
                key: format!("k{i}").into_bytes(),
                value: serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p{i}"), "labels": {"odd": (i % 2).to_string()}}, "spec": {"containers": [{"name": "c"}]}})).unwrap(),
                create_revision: 1,
                mod_revision: 2,
                version: 1,
                lease: 0,
            })
            .collect();
        let keep = |o: &Value| o["metadata"]["labels"]["odd"] == "1";
        let bytes = table_bytes(
            pods,
            "v1",
            &kvs,
            &keep,
            json!({"resourceVersion": "5"}),
            crate::table_decode::table_keep(pods),
        )
        .unwrap();
        let t: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(t["rows"].as_array().unwrap().len(), 300);
        assert_eq!(t["rows"][0]["cells"][0], "p1");
        assert_eq!(t["metadata"]["resourceVersion"], "5");
        let none = table_bytes(pods, "v1", &[], &keep, json!({}), None).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&none).unwrap()["rows"],
            json!([])
        );
    }

    #[test]
    fn human_durations_match_kubernetes() {
        for (secs, want) in [
            (5, "5s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600 + 120, "3h2m"),
            (30 * 3600, "30h"),
            (3 * 86400, "3d"),
            (3 * 86400 + 3600, "3d1h"),
            (400 * 86400, "400d"),
            (-5, "<invalid>"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn pod_table_has_kubectl_columns_and_cells() {
        let pods = lookup("", "v1", "pods").unwrap();
        let pod = json!({
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.244.0.5", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        });
        let t = table(pods, "v1", &[pod], json!({"resourceVersion": "7"}));
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(&names[..5], ["Name", "Ready", "Status", "Restarts", "Age"]);
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[1], "1/2");
        assert_eq!(cells[2], "CrashLoopBackOff");
        assert_eq!(cells[3], "3");
        assert_eq!(cells[6], "n1");
        assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "default");
    }

    #[test]
    fn terminating_pods_say_so() {
        let pod = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}});
        assert_eq!(pod_status(&pod), "Terminating");
    }

    #[test]
    fn service_ports_and_deployment_ready() {
        let now = crate::clock::now();
        let svcs = lookup("", "v1", "services").unwrap();
        let svc = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.9", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
        assert_eq!(cells(svcs, &svc, now)[4], "80:30080/TCP");
        let deps = lookup("apps", "v1", "deployments").unwrap();
        let d = json!({"metadata": {"name": "d"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 1}});
        assert_eq!(cells(deps, &d, now)[1], "1/3");
    }
}
