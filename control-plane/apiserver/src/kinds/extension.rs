//! The rules of the kinds that extend or feed the API server: admission
//! webhook configurations, ValidatingAdmissionPolicies and their bindings,
//! APIServices, and CertificateSigningRequests (defaults and validation as
//! kube-apiserver's).

use serde_json::{Value, json};

use super::{Rules, default, immutable, unsupported};
use crate::status::Cause;

pub const RULES: &[Rules] = &[
    Rules {
        group: "admissionregistration.k8s.io",
        kind: "MutatingWebhookConfiguration",
        defaults: mutating_defaults,
        validate: webhooks_validate,
        validate_update: super::no_update_rules,
        generation: false,
    },
    Rules {
        group: "admissionregistration.k8s.io",
        kind: "ValidatingWebhookConfiguration",
        defaults: validating_defaults,
        validate: webhooks_validate,
        validate_update: super::no_update_rules,
        generation: false,
    },
    Rules {
        group: "admissionregistration.k8s.io",
        kind: "ValidatingAdmissionPolicy",
        defaults: policy_defaults,
        validate: policy_validate,
        validate_update: super::no_update_rules,
        generation: true,
    },
    Rules {
        group: "admissionregistration.k8s.io",
        kind: "ValidatingAdmissionPolicyBinding",
        defaults: super::no_defaults,
        validate: binding_validate,
        validate_update: super::no_update_rules,
        generation: true,
    },
    Rules {
        group: "apiregistration.k8s.io",
        kind: "APIService",
        defaults: api_service_defaults,
        validate: api_service_validate,
        validate_update: super::no_update_rules,
        generation: false,
    },
    Rules {
        group: "certificates.k8s.io",
        kind: "CertificateSigningRequest",
        defaults: super::no_defaults,
        validate: csr_validate,
        validate_update: csr_update,
        generation: false,
    },
];

/// What every admission rule list defaults: the scope of each rule.
fn default_rules(rules: Option<&mut Value>) {
    for rule in rules.and_then(Value::as_array_mut).into_iter().flatten() {
        default(rule, "scope", json!("*"));
    }
}

fn webhook_defaults(object: &mut Value, mutating: bool) {
    for hook in object
        .get_mut("webhooks")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        default(hook, "failurePolicy", json!("Fail"));
        default(hook, "matchPolicy", json!("Equivalent"));
        default(hook, "namespaceSelector", json!({}));
        default(hook, "objectSelector", json!({}));
        default(hook, "timeoutSeconds", json!(10));
        if mutating {
            default(hook, "reinvocationPolicy", json!("Never"));
        }
        if hook["clientConfig"]["service"].is_object() {
            default(&mut hook["clientConfig"]["service"], "port", json!(443));
        }
        default_rules(hook.get_mut("rules"));
    }
}

fn mutating_defaults(object: &mut Value) {
    webhook_defaults(object, true);
}

fn validating_defaults(object: &mut Value) {
    webhook_defaults(object, false);
}

fn one_of(value: Option<&str>, field: &str, allowed: &[&str], causes: &mut Vec<Cause>) {
    if let Some(v) = value
        && !allowed.contains(&v)
    {
        causes.push(unsupported(field, v, allowed));
    }
}

fn webhooks_validate(object: &Value, causes: &mut Vec<Cause>) {
    let mut names: Vec<&str> = Vec::new();
    for (i, hook) in object["webhooks"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let f = format!("webhooks[{i}]");
        match hook["name"].as_str() {
            None | Some("") => causes.push(Cause::required(&format!("{f}.name"))),
            Some(name) => {
                if name.split('.').filter(|s| !s.is_empty()).count() < 3 {
                    causes.push(Cause::invalid(
                        &format!("{f}.name"),
                        name,
                        "should be a domain with at least three segments separated by dots",
                    ));
                }
                if names.contains(&name) {
                    causes.push(Cause::new(
                        "FieldValueDuplicate",
                        &format!("{f}.name"),
                        format!("Duplicate value: {}", json!(name)),
                    ));
                }
                names.push(name);
            }
        }
        let versions = hook["admissionReviewVersions"].as_array();
        if versions.is_none_or(Vec::is_empty) {
            causes.push(Cause::required(&format!("{f}.admissionReviewVersions")));
        } else if !versions
            .into_iter()
            .flatten()
            .any(|v| v == "v1" || v == "v1beta1")
        {
            causes.push(Cause::invalid_value(
                &format!("{f}.admissionReviewVersions"),
                &hook["admissionReviewVersions"],
                "must include at least one of v1, v1beta1",
            ));
        }
        match hook["sideEffects"].as_str() {
            None => causes.push(Cause::required(&format!("{f}.sideEffects"))),
            s => one_of(
                s,
                &format!("{f}.sideEffects"),
                &["None", "NoneOnDryRun"],
                causes,
            ),
        }
        one_of(
            hook["failurePolicy"].as_str(),
            &format!("{f}.failurePolicy"),
            &["Fail", "Ignore"],
            causes,
        );
        one_of(
            hook["matchPolicy"].as_str(),
            &format!("{f}.matchPolicy"),
            &["Equivalent", "Exact"],
            causes,
        );
        one_of(
            hook["reinvocationPolicy"].as_str(),
            &format!("{f}.reinvocationPolicy"),
            &["IfNeeded", "Never"],
            causes,
        );
        if let Some(t) = hook["timeoutSeconds"].as_i64()
            && !(1..=30).contains(&t)
        {
            causes.push(Cause::invalid(
                &format!("{f}.timeoutSeconds"),
                &t.to_string(),
                "the timeout value must be between 1 and 30 seconds",
            ));
        }
        client_config(&hook["clientConfig"], &format!("{f}.clientConfig"), causes);
    }
}

fn client_config(config: &Value, f: &str, causes: &mut Vec<Cause>) {
    match (config["url"].as_str(), config["service"].is_object()) {
        (Some(_), true) | (None, false) => causes.push(Cause::new(
            "FieldValueRequired",
            f,
            "Required value: exactly one of url or service is required".into(),
        )),
        (Some(url), false) => {
            if !url.starts_with("https://") {
                causes.push(Cause::invalid(
                    &format!("{f}.url"),
                    url,
                    "'https' is the only allowed URL scheme",
                ));
            }
        }
        (None, true) => {
            for field in ["namespace", "name"] {
                if config["service"][field].as_str().is_none_or(str::is_empty) {
                    causes.push(Cause::required(&format!("{f}.service.{field}")));
                }
            }
        }
    }
}

fn policy_defaults(object: &mut Value) {
    let spec = &mut object["spec"];
    default(spec, "failurePolicy", json!("Fail"));
    if spec["matchConstraints"].is_object() {
        let m = &mut spec["matchConstraints"];
        default(m, "matchPolicy", json!("Equivalent"));
        default(m, "namespaceSelector", json!({}));
        default(m, "objectSelector", json!({}));
        default_rules(m.get_mut("resourceRules"));
    }
}

fn policy_validate(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    if spec["matchConstraints"].is_null() {
        causes.push(Cause::required("spec.matchConstraints"));
    }
    let validations = spec["validations"].as_array();
    if validations.is_none_or(Vec::is_empty)
        && spec["auditAnnotations"]
            .as_array()
            .is_none_or(Vec::is_empty)
    {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.validations",
            "Required value: validations or auditAnnotations must contain at least one item".into(),
        ));
    }
    for (i, v) in validations.into_iter().flatten().enumerate() {
        if v["expression"].as_str().is_none_or(|e| e.trim().is_empty()) {
            causes.push(Cause::required(&format!(
                "spec.validations[{i}].expression"
            )));
        }
    }
    one_of(
        spec["failurePolicy"].as_str(),
        "spec.failurePolicy",
        &["Fail", "Ignore"],
        causes,
    );
}

fn binding_validate(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    if spec["policyName"].as_str().is_none_or(str::is_empty) {
        causes.push(Cause::required("spec.policyName"));
    }
    let actions: Vec<&str> = spec["validationActions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if actions.is_empty() {
        causes.push(Cause::required("spec.validationActions"));
    }
    for a in &actions {
        one_of(
            Some(a),
            "spec.validationActions",
            &["Audit", "Deny", "Warn"],
            causes,
        );
    }
    if actions.contains(&"Deny") && actions.contains(&"Warn") {
        causes.push(Cause::invalid_value(
            "spec.validationActions",
            &spec["validationActions"],
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
}

fn api_service_defaults(object: &mut Value) {
    if object["spec"]["service"].is_object() {
        default(&mut object["spec"]["service"], "port", json!(443));
    }
}

fn api_service_validate(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    let version = spec["version"].as_str().unwrap_or("");
    let group = spec["group"].as_str().unwrap_or("");
    if version.is_empty() {
        causes.push(Cause::required("spec.version"));
    }
    // `v1.` for the core group, as Kubernetes names it.
    let expected = format!("{version}.{group}");
    if let Some(name) = object["metadata"]["name"].as_str()
        && name != expected
    {
        causes.push(Cause::invalid(
            "metadata.name",
            name,
            &format!("must be `spec.version+\".\"+spec.group`: {expected:?}"),
        ));
    }
    for (field, max) in [("groupPriorityMinimum", 20000), ("versionPriority", 1000)] {
        match spec[field].as_i64() {
            Some(n) if n > 0 && n <= max => {}
            Some(n) => causes.push(Cause::invalid(
                &format!("spec.{field}"),
                &n.to_string(),
                &format!("must be positive and less than {max}"),
            )),
            None => causes.push(Cause::required(&format!("spec.{field}"))),
        }
    }
    let service = &spec["service"];
    if service.is_object() {
        if spec["insecureSkipTLSVerify"] == true && !spec["caBundle"].is_null() {
            causes.push(Cause::invalid(
                "spec.insecureSkipTLSVerify",
                "true",
                "may not be true if caBundle is present",
            ));
        }
        for field in ["namespace", "name"] {
            if service[field].as_str().is_none_or(str::is_empty) {
                causes.push(Cause::required(&format!("spec.service.{field}")));
            }
        }
    }
}

const KEY_USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

fn csr_validate(object: &Value, causes: &mut Vec<Cause>) {
    let spec = &object["spec"];
    match spec["request"].as_str() {
        None | Some("") => causes.push(Cause::required("spec.request")),
        Some(b64) => {
            use base64::Engine;
            let checked = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("not base64: {e}"))
                .and_then(|pem| kc_pki::check_certificate_request(&pem));
            if let Err(why) = checked {
                causes.push(Cause::invalid("spec.request", "<request>", &why));
            }
        }
    }
    match spec["signerName"].as_str() {
        None | Some("") => causes.push(Cause::required("spec.signerName")),
        Some(signer) => {
            let valid = signer
                .split_once('/')
                .is_some_and(|(domain, path)| domain.contains('.') && !path.is_empty());
            if !valid {
                causes.push(Cause::invalid(
                    "spec.signerName",
                    signer,
                    "must be a fully qualified domain and path of the form 'example.com/signer-name'",
                ));
            }
        }
    }
    let usages = spec["usages"].as_array();
    if usages.is_none_or(Vec::is_empty) {
        causes.push(Cause::required("spec.usages"));
    }
    for u in usages.into_iter().flatten() {
        one_of(u.as_str(), "spec.usages", KEY_USAGES, causes);
    }
    if let Some(s) = spec["expirationSeconds"].as_i64()
        && s < 600
    {
        causes.push(Cause::invalid(
            "spec.expirationSeconds",
            &s.to_string(),
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
}

/// A request's spec is fixed once made; only its status moves on.
fn csr_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    immutable(old, new, &["spec"], causes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> Value {
        json!({"name": "deny.example.com", "admissionReviewVersions": ["v1"],
            "sideEffects": "None", "clientConfig": {"url": "https://127.0.0.1:9443/"},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]})
    }

    #[test]
    fn webhooks_get_kubernetes_defaults() {
        let mut config = json!({"webhooks": [hook()]});
        mutating_defaults(&mut config);
        let h = &config["webhooks"][0];
        assert_eq!(h["failurePolicy"], "Fail");
        assert_eq!(h["timeoutSeconds"], 10);
        assert_eq!(h["reinvocationPolicy"], "Never");
        assert_eq!(h["rules"][0]["scope"], "*");
        let mut causes = Vec::new();
        webhooks_validate(&config, &mut causes);
        assert!(causes.is_empty(), "{causes:?}");
    }

    #[test]
    fn webhooks_need_a_domain_name_one_endpoint_and_side_effects() {
        let mut bad = hook();
        bad["name"] = json!("deny");
        bad["clientConfig"] = json!({"url": "http://x/"});
        bad.as_object_mut().unwrap().remove("sideEffects");
        let mut causes = Vec::new();
        webhooks_validate(&json!({"webhooks": [bad]}), &mut causes);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "webhooks[0].name",
                "webhooks[0].sideEffects",
                "webhooks[0].clientConfig.url"
            ]
        );
    }

    #[test]
    fn api_services_are_named_version_dot_group() {
        let mut causes = Vec::new();
        api_service_validate(
            &json!({"metadata": {"name": "v1.example.com"}, "spec": {"group": "example.com",
                "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15}}),
            &mut causes,
        );
        assert!(causes.is_empty(), "{causes:?}");
        api_service_validate(
            &json!({"metadata": {"name": "wrong"}, "spec": {"group": "example.com",
                "version": "v1", "groupPriorityMinimum": 0, "versionPriority": 15}}),
            &mut causes,
        );
        assert_eq!(causes.len(), 2, "{causes:?}");
    }
}
