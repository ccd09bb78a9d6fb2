//! The resource registry: one table describing every resource the API
//! server serves (group, version, kind, plural, short names, scope,
//! subresources).
//!
//! Discovery, OpenAPI, routing and storage are all driven from this table,
//! so adding a resource is adding a row here (plus, if it needs them, its
//! defaults, validation and Table columns in `kinds`).

/// The verbs of a full resource, in the order Kubernetes lists them.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// A subresource: `pods/status`, `deployments/scale`, `pods/log`...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    /// The kind the subresource reads and writes (`Scale` for scale).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

pub const STATUS: Subresource = Subresource {
    name: "status",
    group: "",
    version: "",
    kind: "",
    verbs: &["get", "patch", "update"],
};

pub const SCALE: Subresource = Subresource {
    name: "scale",
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
    verbs: &["get", "patch", "update"],
};

/// One served resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// `""` for the core (legacy) group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
    pub categories: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// The verbs the resource answers (`ALL_VERBS` but for the few that
    /// are write-only or read-only, as discovery lists them).
    pub verbs: &'static [&'static str],
}

impl Resource {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The segment naming the group in store keys (`core` for the legacy group).
    pub fn storage_group(&self) -> &'static str {
        if self.group.is_empty() {
            "core"
        } else {
            self.group
        }
    }

    /// Whether the resource answers `verb`.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The kind a subresource answers with (its own, or the resource's).
    pub fn subresource_kind(
        &self,
        sub: &Subresource,
    ) -> (&'static str, &'static str, &'static str) {
        if sub.kind.is_empty() {
            (self.group, self.version, self.kind)
        } else {
            (sub.group, sub.version, sub.kind)
        }
    }

    /// The URL path of the resource's collection (`/api/v1/namespaces/{namespace}/pods`).
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let root = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{root}/namespaces/{ns}/{}", self.plural),
            _ => format!("{root}/{}", self.plural),
        }
    }
}

/// `namespaces/{name}/finalize`: the Namespace controller removes the
/// `kubernetes` finalizer from `spec.finalizers` through it.
const NAMESPACE_FINALIZE: Subresource = Subresource {
    name: "finalize",
    group: "",
    version: "",
    kind: "",
    verbs: &["update"],
};

/// Streaming subresources of pods; served by the node agent through `apiserver::streams`.
const POD_LOG: Subresource = Subresource {
    name: "log",
    group: "",
    version: "v1",
    kind: "Pod",
    verbs: &["get"],
};
const POD_EXEC: Subresource = Subresource {
    name: "exec",
    group: "",
    version: "v1",
    kind: "PodExecOptions",
    verbs: &["create", "get"],
};
const POD_PORTFORWARD: Subresource = Subresource {
    name: "portforward",
    group: "",
    version: "v1",
    kind: "PodPortForwardOptions",
    verbs: &["create", "get"],
};
const POD_BINDING: Subresource = Subresource {
    name: "binding",
    group: "",
    version: "v1",
    kind: "Binding",
    verbs: &["create"],
};
const POD_EVICTION: Subresource = Subresource {
    name: "eviction",
    group: "policy",
    version: "v1",
    kind: "Eviction",
    verbs: &["create"],
};

/// A row of the table: a full resource (every verb, no categories).
#[allow(clippy::too_many_arguments)]
const fn row(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
    subresources: &'static [Subresource],
) -> Resource {
    Resource {
        group,
        version,
        kind,
        plural,
        singular,
        short_names,
        namespaced,
        categories: &[],
        subresources,
        verbs: ALL_VERBS,
    }
}

/// A core (`v1`) resource.
const fn core(
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
    subresources: &'static [Subresource],
) -> Resource {
    row(
        "",
        "v1",
        kind,
        plural,
        singular,
        short_names,
        namespaced,
        subresources,
    )
}

/// A resource of a named group at `v1`.
const fn v1(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short_names: &'static [&'static str],
    namespaced: bool,
    subresources: &'static [Subresource],
) -> Resource {
    row(
        group,
        "v1",
        kind,
        plural,
        singular,
        short_names,
        namespaced,
        subresources,
    )
}

/// A resource `kubectl get all` lists.
const fn in_all(r: Resource) -> Resource {
    Resource {
        categories: &["all"],
        ..r
    }
}

/// `certificatesigningrequests/approval`: approvers write
/// `status.conditions` (Approved, Denied) through it.
const CSR_APPROVAL: Subresource = Subresource {
    name: "approval",
    group: "",
    version: "",
    kind: "",
    verbs: &["get", "patch", "update"],
};

/// Every resource the API server serves.
pub static RESOURCES: &[Resource] = &[
    core(
        "Namespace",
        "namespaces",
        "namespace",
        &["ns"],
        false,
        &[NAMESPACE_FINALIZE, STATUS],
    ),
    in_all(core(
        "Pod",
        "pods",
        "pod",
        &["po"],
        true,
        &[
            STATUS,
            POD_BINDING,
            POD_LOG,
            POD_EXEC,
            POD_PORTFORWARD,
            POD_EVICTION,
        ],
    )),
    core("Node", "nodes", "node", &["no"], false, &[STATUS]),
    in_all(core(
        "Service",
        "services",
        "service",
        &["svc"],
        true,
        &[STATUS],
    )),
    core("Endpoints", "endpoints", "endpoints", &["ep"], true, &[]),
    core("ConfigMap", "configmaps", "configmap", &["cm"], true, &[]),
    core("Secret", "secrets", "secret", &[], true, &[]),
    core(
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        &["sa"],
        true,
        &[],
    ),
    core("Event", "events", "event", &["ev"], true, &[]),
    core("PodTemplate", "podtemplates", "podtemplate", &[], true, &[]),
    // `POST bindings` names the pod in the Binding's metadata: the same
    // write as `pods/<name>/binding`.
    Resource {
        verbs: &["create"],
        ..core("Binding", "bindings", "binding", &[], true, &[])
    },
    // Computed on each read from the control plane's own health.
    Resource {
        verbs: &["get", "list"],
        ..core(
            "ComponentStatus",
            "componentstatuses",
            "componentstatus",
            &["cs"],
            false,
            &[],
        )
    },
    core(
        "LimitRange",
        "limitranges",
        "limitrange",
        &["limits"],
        true,
        &[],
    ),
    core(
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        &["pv"],
        false,
        &[STATUS],
    ),
    core(
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        &["pvc"],
        true,
        &[STATUS],
    ),
    in_all(core(
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
        &["rc"],
        true,
        &[SCALE, STATUS],
    )),
    core(
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        &["quota"],
        true,
        &[STATUS],
    ),
    // A view of core/v1 Events (`conversion`), as Kubernetes serves it.
    v1(
        "events.k8s.io",
        "Event",
        "events",
        "event",
        &["ev"],
        true,
        &[],
    ),
    in_all(v1(
        "apps",
        "Deployment",
        "deployments",
        "deployment",
        &["deploy"],
        true,
        &[SCALE, STATUS],
    )),
    in_all(v1(
        "apps",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        &["rs"],
        true,
        &[SCALE, STATUS],
    )),
    in_all(v1(
        "apps",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        &["ds"],
        true,
        &[STATUS],
    )),
    in_all(v1(
        "apps",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        &["sts"],
        true,
        &[SCALE, STATUS],
    )),
    in_all(v1("batch", "Job", "jobs", "job", &[], true, &[STATUS])),
    in_all(v1(
        "batch",
        "CronJob",
        "cronjobs",
        "cronjob",
        &["cj"],
        true,
        &[STATUS],
    )),
    in_all(row(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        &["hpa"],
        true,
        &[STATUS],
    )),
    v1(
        "policy",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        &["pdb"],
        true,
        &[STATUS],
    ),
    v1(
        "coordination.k8s.io",
        "Lease",
        "leases",
        "lease",
        &[],
        true,
        &[],
    ),
    v1(
        "apps",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        &[],
        true,
        &[],
    ),
    v1(
        "node.k8s.io",
        "RuntimeClass",
        "runtimeclasses",
        "runtimeclass",
        &[],
        false,
        &[],
    ),
    v1(
        "scheduling.k8s.io",
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
        &["pc"],
        false,
        &[],
    ),
    v1(
        "networking.k8s.io",
        "Ingress",
        "ingresses",
        "ingress",
        &["ing"],
        true,
        &[STATUS],
    ),
    v1(
        "networking.k8s.io",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
        &[],
        false,
        &[],
    ),
    v1(
        "networking.k8s.io",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        &["netpol"],
        true,
        &[],
    ),
    v1(
        "storage.k8s.io",
        "StorageClass",
        "storageclasses",
        "storageclass",
        &["sc"],
        false,
        &[],
    ),
    v1(
        "storage.k8s.io",
        "CSIDriver",
        "csidrivers",
        "csidriver",
        &[],
        false,
        &[],
    ),
    v1(
        "storage.k8s.io",
        "CSINode",
        "csinodes",
        "csinode",
        &[],
        false,
        &[],
    ),
    v1(
        "storage.k8s.io",
        "CSIStorageCapacity",
        "csistoragecapacities",
        "csistoragecapacity",
        &[],
        true,
        &[],
    ),
    v1(
        "storage.k8s.io",
        "VolumeAttachment",
        "volumeattachments",
        "volumeattachment",
        &[],
        false,
        &[STATUS],
    ),
    v1(
        "flowcontrol.apiserver.k8s.io",
        "FlowSchema",
        "flowschemas",
        "flowschema",
        &[],
        false,
        &[STATUS],
    ),
    v1(
        "flowcontrol.apiserver.k8s.io",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        "prioritylevelconfiguration",
        &[],
        false,
        &[STATUS],
    ),
    v1(
        "certificates.k8s.io",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        "certificatesigningrequest",
        &["csr"],
        false,
        &[CSR_APPROVAL, STATUS],
    ),
    v1(
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        &[],
        false,
        &[],
    ),
    v1(
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        &[],
        false,
        &[],
    ),
    v1(
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        "validatingadmissionpolicy",
        &[],
        false,
        &[STATUS],
    ),
    v1(
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        "validatingadmissionpolicybinding",
        &[],
        false,
        &[],
    ),
    v1(
        "apiregistration.k8s.io",
        "APIService",
        "apiservices",
        "apiservice",
        &[],
        false,
        &[STATUS],
    ),
    Resource {
        categories: &["api-extensions"],
        ..v1(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            "customresourcedefinition",
            &["crd", "crds"],
            false,
            &[STATUS],
        )
    },
    v1(
        "discovery.k8s.io",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        &[],
        true,
        &[],
    ),
];

/// The custom resources this process's API server serves (from
/// CustomResourceDefinitions), one entry per served version, in discovery
/// order. Kept by the API server (`crd::sync`); empty elsewhere.
static CUSTOM: std::sync::RwLock<Vec<&'static Resource>> = std::sync::RwLock::new(Vec::new());

fn custom() -> std::sync::RwLockReadGuard<'static, Vec<&'static Resource>> {
    CUSTOM.read().unwrap_or_else(|p| p.into_inner())
}

/// Serves `versions` as the custom resource `group`/`plural` (replacing
/// what was served under that name); an empty list stops serving it.
pub fn set_custom(group: &str, plural: &str, versions: Vec<&'static Resource>) {
    let mut all = CUSTOM.write().unwrap_or_else(|p| p.into_inner());
    all.retain(|r| !(r.group == group && r.plural == plural));
    all.extend(versions);
}

/// Every served resource: the built-in table, then the custom resources.
pub fn all() -> Vec<&'static Resource> {
    RESOURCES.iter().chain(custom().iter().copied()).collect()
}

/// Whether `resource` comes from a CustomResourceDefinition.
pub fn is_custom(resource: &Resource) -> bool {
    !RESOURCES
        .iter()
        .any(|r| r.group == resource.group && r.plural == resource.plural)
}

/// The API groups (other than core) in the order discovery lists them.
pub fn groups() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for r in all() {
        if !r.group.is_empty() && !groups.contains(&r.group) {
            groups.push(r.group);
        }
    }
    groups
}

/// The resources of one group/version.
pub fn in_group_version(group: &str, version: &str) -> impl Iterator<Item = &'static Resource> {
    all()
        .into_iter()
        .filter(move |r| r.group == group && r.version == version)
        .collect::<Vec<_>>()
        .into_iter()
}

/// The resource served at `group`/`version` under `plural`.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    let hit = |r: &&Resource| r.group == group && r.version == version && r.plural == plural;
    RESOURCES
        .iter()
        .find(hit)
        .or_else(|| custom().iter().copied().find(|r| hit(r)))
}

/// The resource for an `apiVersion` + `kind` (as written in a manifest).
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    all()
        .into_iter()
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_core_and_grouped_resources() {
        assert_eq!(lookup("", "v1", "pods").unwrap().kind, "Pod");
        assert_eq!(
            lookup("apps", "v1", "deployments").unwrap().short_names,
            &["deploy"]
        );
        assert!(lookup("apps", "v1", "pods").is_none());
        assert_eq!(
            by_kind("apps/v1", "ReplicaSet").unwrap().plural,
            "replicasets"
        );
    }

    #[test]
    fn collection_paths_follow_scope() {
        let pods = lookup("", "v1", "pods").unwrap();
        assert_eq!(
            pods.collection_path(Some("default")),
            "/api/v1/namespaces/default/pods"
        );
        let nodes = lookup("", "v1", "nodes").unwrap();
        assert_eq!(nodes.collection_path(Some("x")), "/api/v1/nodes");
    }

    #[test]
    fn every_plural_is_unique_within_its_group() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.plural == b.plural),
                    "{}",
                    a.plural
                );
            }
        }
    }
}
