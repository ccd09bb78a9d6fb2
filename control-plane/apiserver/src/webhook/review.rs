//! `admission.k8s.io/v1` AdmissionReview: the request a webhook is sent and
//! what its answer means (allowed, or refused with a status; a JSONPatch
//! for mutating webhooks; warnings). Pure: no I/O.

use base64::Engine;
use serde_json::{Value, json};

use super::rules::Attributes;

/// Who makes the request (the AdmissionReview's `userInfo`).
#[derive(Debug, Clone, Default)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
}

/// The request of one review.
#[allow(clippy::too_many_arguments)]
pub fn request(
    uid: &str,
    a: &Attributes,
    kind: (&str, &str, &str),
    name: &str,
    object: Option<&Value>,
    old: Option<&Value>,
    dry_run: bool,
    user: &UserInfo,
) -> Value {
    let (group, version, kind) = kind;
    let options_kind = match a.operation {
        "CREATE" => "CreateOptions",
        "UPDATE" => "UpdateOptions",
        _ => "DeleteOptions",
    };
    let resource = json!({"group": a.group, "version": a.version, "resource": a.resource});
    let kind = json!({"group": group, "version": version, "kind": kind});
    let mut req = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": name,
        "operation": a.operation,
        "userInfo": {"username": user.username, "groups": user.groups},
        "object": object.cloned().unwrap_or(Value::Null),
        "oldObject": old.cloned().unwrap_or(Value::Null),
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind},
    });
    if !a.subresource.is_empty() {
        req["subResource"] = json!(a.subresource);
        req["requestSubResource"] = json!(a.subresource);
    }
    if a.namespaced {
        req["namespace"] = json!(a.namespace);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
}

/// A webhook's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Allowed {
        /// A JSONPatch to apply (mutating webhooks), as JSON.
        patch: Option<Value>,
        warnings: Vec<String>,
    },
    Denied {
        code: u16,
        reason: String,
        message: String,
        warnings: Vec<String>,
    },
}

/// Reads a webhook's AdmissionReview answer to the request `uid`; why it
/// is not one, otherwise.
pub fn verdict(body: &[u8], uid: &str) -> Result<Verdict, String> {
    let review: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the response is not an AdmissionReview: {e}"))?;
    if review["apiVersion"] != "admission.k8s.io/v1" || review["kind"] != "AdmissionReview" {
        return Err(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {}, Kind={}",
            review["apiVersion"].as_str().unwrap_or(""),
            review["kind"].as_str().unwrap_or("")
        ));
    }
    let response = &review["response"];
    if !response.is_object() {
        return Err("webhook response was absent".into());
    }
    let got = response["uid"].as_str().unwrap_or("");
    if got != uid {
        return Err(format!("expected response.uid=\"{uid}\", got \"{got}\""));
    }
    let warnings: Vec<String> = response["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect();
    let allowed = response["allowed"]
        .as_bool()
        .ok_or("webhook response lacks a boolean `allowed`")?;
    if !allowed {
        let status = &response["status"];
        return Ok(Verdict::Denied {
            code: status["code"]
                .as_u64()
                .filter(|c| (400..600).contains(c))
                .unwrap_or(403) as u16,
            reason: status["reason"].as_str().unwrap_or("").to_string(),
            message: status["message"].as_str().unwrap_or("").to_string(),
            warnings,
        });
    }
    let patch = match response["patch"].as_str() {
        None | Some("") => None,
        Some(b64) => {
            match response["patchType"].as_str() {
                Some("JSONPatch") => {}
                other => {
                    return Err(format!(
                        "unsupported patch type {:?}: only \"JSONPatch\" is",
                        other.unwrap_or("")
                    ));
                }
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("the patch is not base64: {e}"))?;
            let ops: Value = serde_json::from_slice(&bytes)
                .map_err(|e| format!("the patch is not JSON: {e}"))?;
            if !ops.is_array() {
                return Err("the patch is not a JSONPatch (an array of operations)".into());
            }
            Some(ops)
        }
    };
    Ok(Verdict::Allowed { patch, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(response: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview", "response": response}))
        .unwrap()
    }

    #[test]
    fn requests_carry_the_kind_the_user_and_both_objects() {
        let a = Attributes {
            operation: "UPDATE",
            group: "apps",
            version: "v1",
            resource: "deployments",
            subresource: "status",
            namespaced: true,
            namespace: "default",
        };
        let user = UserInfo {
            username: "alice".into(),
            groups: vec!["dev".into()],
        };
        let r = request(
            "u1",
            &a,
            ("apps", "v1", "Deployment"),
            "web",
            Some(&json!({"a": 1})),
            Some(&json!({"a": 0})),
            true,
            &user,
        );
        let req = &r["request"];
        assert_eq!(req["kind"]["kind"], "Deployment");
        assert_eq!(req["subResource"], "status");
        assert_eq!(req["userInfo"]["username"], "alice");
        assert_eq!(req["oldObject"]["a"], 0);
        assert_eq!(req["options"]["kind"], "UpdateOptions");
        assert_eq!(req["dryRun"], true);
    }

    #[test]
    fn answers_are_allowed_with_a_patch_or_denied_with_a_status() {
        let patch = base64::engine::general_purpose::STANDARD
            .encode(r#"[{"op":"add","path":"/metadata/labels","value":{"m":"1"}}]"#);
        match verdict(
            &answer(json!({"uid": "u", "allowed": true, "patchType": "JSONPatch", "patch": patch})),
            "u",
        )
        .unwrap()
        {
            Verdict::Allowed { patch: Some(p), .. } => assert_eq!(p[0]["op"], "add"),
            other => panic!("{other:?}"),
        }
        let denied = verdict(
            &answer(
                json!({"uid": "u", "allowed": false, "status": {"message": "no", "code": 422}}),
            ),
            "u",
        )
        .unwrap();
        assert_eq!(
            denied,
            Verdict::Denied {
                code: 422,
                reason: String::new(),
                message: "no".into(),
                warnings: vec![]
            }
        );
        assert!(
            verdict(&answer(json!({"uid": "other", "allowed": true})), "u")
                .unwrap_err()
                .contains("response.uid")
        );
        assert!(verdict(b"<html>", "u").is_err());
    }
}
