//! The rules of the namespace policy kinds: ResourceQuota, LimitRange and
//! NetworkPolicy (defaults and validation as kube-apiserver's; enforcing
//! them is the quota, limit-range and network-policy machinery's job).

use serde_json::{Map, Value, json};

use super::{Rules, default, obj, unsupported};
use crate::status::Cause;

pub const RULES: &[Rules] = &[
    Rules {
        group: "",
        kind: "ResourceQuota",
        defaults: super::no_defaults,
        validate: quota_validate,
        validate_update: super::no_update_rules,
        generation: false,
    },
    Rules {
        group: "",
        kind: "LimitRange",
        defaults: limit_range_defaults,
        validate: limit_range_validate,
        validate_update: super::no_update_rules,
        generation: false,
    },
    Rules {
        group: "networking.k8s.io",
        kind: "NetworkPolicy",
        defaults: network_policy_defaults,
        validate: network_policy_validate,
        validate_update: super::no_update_rules,
        generation: true,
    },
];

const QUOTA_SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
];

fn quota_validate(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    for (key, value) in spec["hard"].as_object().into_iter().flatten() {
        if !value.is_string() && !value.is_number() {
            causes.push(Cause::invalid_value(
                &format!("spec.hard[{key}]"),
                value,
                "must be a quantity",
            ));
        }
    }
    for scope in spec["scopes"].as_array().into_iter().flatten() {
        let scope = scope.as_str().unwrap_or("");
        if !QUOTA_SCOPES.contains(&scope) {
            causes.push(unsupported("spec.scopes", scope, QUOTA_SCOPES));
        }
    }
    for (i, e) in spec["scopeSelector"]["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let scope = e["scopeName"].as_str().unwrap_or("");
        if !QUOTA_SCOPES.contains(&scope) {
            causes.push(unsupported(
                &format!("spec.scopeSelector.matchExpressions[{i}].scopeName"),
                scope,
                QUOTA_SCOPES,
            ));
        }
    }
}

/// `SetDefaults_LimitRangeItem`: a Container limit's default comes from
/// its max, its default request from its default, then its min.
fn limit_range_defaults(object: &mut Value) {
    let Some(limits) = object["spec"]
        .get_mut("limits")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for item in limits.iter_mut().filter(|l| l["type"] == "Container") {
        let fill = |item: &mut Value, into: &str, from: &str| {
            let source: Map<String, Value> = item[from].as_object().cloned().unwrap_or_default();
            if source.is_empty() {
                return;
            }
            let target = obj(&mut item[into]);
            for (k, v) in source {
                target.entry(k).or_insert(v);
            }
        };
        fill(item, "default", "max");
        fill(item, "defaultRequest", "default");
        fill(item, "defaultRequest", "min");
    }
}

const LIMIT_TYPES: &[&str] = &["Pod", "Container", "PersistentVolumeClaim"];

fn limit_range_validate(object: &Value, causes: &mut Vec<Cause>) {
    for (i, item) in object["spec"]["limits"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        match item["type"].as_str() {
            None | Some("") => causes.push(Cause::required(&format!("spec.limits[{i}].type"))),
            Some(t) if !LIMIT_TYPES.contains(&t) => causes.push(unsupported(
                &format!("spec.limits[{i}].type"),
                t,
                LIMIT_TYPES,
            )),
            Some("Pod") => {
                for field in ["default", "defaultRequest"] {
                    if item[field].as_object().is_some_and(|m| !m.is_empty()) {
                        causes.push(Cause::forbidden(
                            &format!("spec.limits[{i}].{field}"),
                            "may not be specified when `type` is 'Pod'",
                        ));
                    }
                }
            }
            Some(_) => {}
        }
    }
}

fn network_policy_defaults(object: &mut Value) {
    let spec = &mut object["spec"];
    for direction in ["ingress", "egress"] {
        for rule in spec
            .get_mut(direction)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            for port in rule
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                default(port, "protocol", json!("TCP"));
            }
        }
    }
    if spec["policyTypes"].as_array().is_none_or(Vec::is_empty) {
        let mut types = vec![json!("Ingress")];
        if spec["egress"].as_array().is_some_and(|e| !e.is_empty()) {
            types.push(json!("Egress"));
        }
        obj(spec).insert("policyTypes".into(), json!(types));
    }
}

fn network_policy_validate(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    for t in spec["policyTypes"].as_array().into_iter().flatten() {
        let t = t.as_str().unwrap_or("");
        if !matches!(t, "Ingress" | "Egress") {
            causes.push(unsupported("spec.policyTypes", t, &["Ingress", "Egress"]));
        }
    }
    for (direction, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in spec[direction].as_array().into_iter().flatten().enumerate() {
            for (j, peer) in rule[peers].as_array().into_iter().flatten().enumerate() {
                let field = format!("spec.{direction}[{i}].{peers}[{j}]");
                let block = &peer["ipBlock"];
                if block.is_object() {
                    if block["cidr"].as_str().is_none_or(str::is_empty) {
                        causes.push(Cause::required(&format!("{field}.ipBlock.cidr")));
                    } else if let Some(cidr) = block["cidr"].as_str()
                        && !valid_cidr(cidr)
                    {
                        causes.push(Cause::invalid(
                            &format!("{field}.ipBlock.cidr"),
                            cidr,
                            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                        ));
                    }
                } else if peer["podSelector"].is_null() && peer["namespaceSelector"].is_null() {
                    causes.push(Cause::new(
                        "FieldValueRequired",
                        &field,
                        "Required value: must specify a peer".into(),
                    ));
                }
            }
            for (j, port) in rule["ports"].as_array().into_iter().flatten().enumerate() {
                if let Some(p) = port["protocol"].as_str()
                    && !matches!(p, "TCP" | "UDP" | "SCTP")
                {
                    causes.push(unsupported(
                        &format!("spec.{direction}[{i}].ports[{j}].protocol"),
                        p,
                        &["SCTP", "TCP", "UDP"],
                    ));
                }
            }
        }
    }
}

fn valid_cidr(cidr: &str) -> bool {
    let Some((addr, bits)) = cidr.split_once('/') else {
        return false;
    };
    match (addr.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32,
        (Ok(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_limits_default_from_max_then_default_then_min() {
        let mut lr = json!({"spec": {"limits": [{"type": "Container",
            "max": {"cpu": "1", "memory": "1Gi"}, "min": {"cpu": "10m"},
            "default": {"memory": "512Mi"}}]}});
        limit_range_defaults(&mut lr);
        let item = &lr["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "1", "memory": "512Mi"}));
        assert_eq!(
            item["defaultRequest"],
            json!({"cpu": "1", "memory": "512Mi"})
        );
    }

    #[test]
    fn network_policies_default_their_types_and_protocols() {
        let mut np = json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}});
        network_policy_defaults(&mut np);
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        let mut causes = Vec::new();
        network_policy_validate(
            &json!({"spec": {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]}}),
            &mut causes,
        );
        assert_eq!(causes.len(), 1, "{causes:?}");
    }
}
