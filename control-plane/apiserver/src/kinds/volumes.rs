//! The rules of PersistentVolume and PersistentVolumeClaim: Kubernetes'
//! defaults (Retain, Filesystem, a Pending phase), required capacity,
//! access modes and one volume source, and a claim's spec frozen once
//! created but for its requests (expansion) and its volume name (binding).

use serde_json::{Value, json};

use super::{Rules, default, unsupported};
use crate::status::Cause;

pub const RULES: &[Rules] = &[
    Rules {
        group: "",
        kind: "PersistentVolume",
        defaults: volume_defaults,
        validate: volume_validate,
        validate_update: volume_update,
        generation: false,
    },
    Rules {
        group: "",
        kind: "PersistentVolumeClaim",
        defaults: claim_defaults,
        validate: claim_validate,
        validate_update: claim_update,
        generation: false,
    },
];

const ACCESS_MODES: &[&str] = &[
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];

/// The volume sources a PersistentVolume may name (exactly one).
const SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "glusterfs",
    "hostPath",
    "iscsi",
    "local",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

fn volume_defaults(object: &mut Value) {
    default(
        &mut object["spec"],
        "persistentVolumeReclaimPolicy",
        json!("Retain"),
    );
    default(&mut object["spec"], "volumeMode", json!("Filesystem"));
    default(&mut object["status"], "phase", json!("Pending"));
}

fn claim_defaults(object: &mut Value) {
    default(&mut object["spec"], "volumeMode", json!("Filesystem"));
    default(&mut object["status"], "phase", json!("Pending"));
}

fn access_modes(spec: &Value, field: &str, causes: &mut Vec<Cause>) {
    let modes = spec["accessModes"].as_array();
    if modes.is_none_or(Vec::is_empty) {
        causes.push(Cause::required(&format!("{field}.accessModes")));
    }
    for m in modes.into_iter().flatten() {
        let m = m.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            causes.push(unsupported(
                &format!("{field}.accessModes"),
                m,
                ACCESS_MODES,
            ));
        }
    }
    if let Some(mode) = spec["volumeMode"].as_str()
        && !matches!(mode, "Filesystem" | "Block")
    {
        causes.push(unsupported(
            &format!("{field}.volumeMode"),
            mode,
            &["Block", "Filesystem"],
        ));
    }
}

/// A claim's spec (also a StatefulSet's volume claim templates').
pub(super) fn claim_spec(spec: &Value, field: &str, causes: &mut Vec<Cause>) {
    access_modes(spec, field, causes);
    if spec["resources"]["requests"]["storage"].is_null() && spec["dataSourceRef"].is_null() {
        causes.push(Cause::required(&format!("{field}.resources[storage]")));
    }
}

fn volume_validate(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    access_modes(spec, "spec", causes);
    if spec["capacity"]["storage"].is_null() {
        causes.push(Cause::required("spec.capacity"));
    }
    let given: Vec<&str> = SOURCES
        .iter()
        .copied()
        .filter(|s| !spec[*s].is_null())
        .collect();
    match given.len() {
        0 => causes.push(Cause::new(
            "FieldValueRequired",
            "spec",
            "Required value: must specify a volume type".into(),
        )),
        1 => {}
        _ => causes.push(Cause::forbidden(
            &format!("spec.{}", given[1]),
            "may not specify more than 1 volume type",
        )),
    }
    if let Some(p) = spec["persistentVolumeReclaimPolicy"].as_str()
        && !matches!(p, "Retain" | "Recycle" | "Delete")
    {
        causes.push(unsupported(
            "spec.persistentVolumeReclaimPolicy",
            p,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    if !spec["local"].is_null() && spec["nodeAffinity"].is_null() {
        causes.push(Cause::required("spec.nodeAffinity"));
    }
}

/// A bound volume's source is fixed, as Kubernetes keeps it.
fn volume_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    for source in SOURCES {
        if old["spec"][*source] != new["spec"][*source] {
            causes.push(Cause::forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after creation",
            ));
            return;
        }
    }
}

fn claim_validate(object: &Value, causes: &mut Vec<Cause>) {
    claim_spec(&object["spec"], "spec", causes);
}

fn claim_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    let frozen = |spec: &Value| {
        let mut s = spec.clone();
        if let Some(m) = s.as_object_mut() {
            m.remove("resources");
            m.remove("volumeAttributesClassName");
            // Binding fills in the volume's name once.
            if old["spec"]["volumeName"].as_str().is_none_or(str::is_empty) {
                m.remove("volumeName");
            }
        }
        s
    };
    if frozen(&old["spec"]) != frozen(&new["spec"]) {
        causes.push(Cause::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_need_capacity_modes_and_one_source() {
        let mut pv = json!({"spec": {"capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/x"}}});
        volume_defaults(&mut pv);
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["status"]["phase"], "Pending");
        let mut causes = Vec::new();
        volume_validate(&pv, &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
        volume_validate(
            &json!({"spec": {"accessModes": ["Sometimes"]}}),
            &mut causes,
        );
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.accessModes", "spec.capacity", "spec"]);
    }

    #[test]
    fn claims_may_grow_and_be_bound_but_not_otherwise_change() {
        let old = json!({"spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
        let mut new = old.clone();
        new["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        new["spec"]["volumeName"] = json!("pv-1");
        let mut causes = Vec::new();
        claim_update(&old, &new, &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
        let mut rebound = new.clone();
        rebound["spec"]["volumeName"] = json!("pv-2");
        claim_update(&new, &rebound, &mut causes);
        assert_eq!(causes.len(), 1);
    }
}
