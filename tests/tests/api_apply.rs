//! Server-side apply's field ownership with the real kubectl (v1.32): a
//! second manager applying a field another owns with a different value gets
//! kubectl's conflict error, `--force-conflicts` takes the field, updates
//! (`kubectl scale`) take what they change, equal values are shared, and a
//! field a manager stops applying is removed.

mod api_common;

use api_common::{ApiServer, stderr, stdout};
use serde_json::Value;

/// Deployment `web`: 2 replicas of nginx:1.25 (shared with the kcctl tests).
const DEPLOYMENT: &str = include_str!("api_common/web-deployment.yaml");

fn with_replicas(n: u32) -> String {
    DEPLOYMENT.replace("replicas: 2", &format!("replicas: {n}"))
}

/// Managers (name/operation[/subresource]) owning `.spec.replicas`.
fn replicas_owners(api: &ApiServer) -> Vec<String> {
    let json = api.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    let obj: Value = serde_json::from_str(&json).expect("kubectl -o json prints JSON");
    obj["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter(|e| e["fieldsV1"]["f:spec"]["f:replicas"].is_object())
        .map(|e| {
            let mut who = format!(
                "{}/{}",
                e["manager"].as_str().unwrap_or(""),
                e["operation"].as_str().unwrap_or("")
            );
            if let Some(s) = e["subresource"].as_str() {
                who.push_str(&format!("/{s}"));
            }
            who
        })
        .collect()
}

fn replicas(api: &ApiServer) -> String {
    api.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])
}

#[test]
fn apply_conflicts_name_the_owner_and_force_takes_the_field() {
    let api = ApiServer::start();
    let out = api.apply_text(DEPLOYMENT, &["--server-side"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(replicas_owners(&api), ["kubectl/Apply"]);

    // Another manager, another value: refused, naming the owner and field.
    let out = api.apply_text(&with_replicas(4), &["--server-side", "--field-manager=ci"]);
    assert!(!out.status.success(), "the conflicting apply succeeded");
    let err = stderr(&out);
    assert!(
        err.contains("error: Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas")
            && err.contains("--force-conflicts"),
        "{err}"
    );
    assert_eq!(replicas(&api), "2", "a refused apply changed the object");

    // The same value is shared, not a conflict.
    let out = api.apply_text(DEPLOYMENT, &["--server-side", "--field-manager=ci"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut owners = replicas_owners(&api);
    owners.sort();
    assert_eq!(owners, ["ci/Apply", "kubectl/Apply"]);

    // Forcing takes the field from every other owner.
    let out = api.apply_text(
        &with_replicas(4),
        &["--server-side", "--field-manager=ci", "--force-conflicts"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(replicas(&api), "4");
    assert_eq!(replicas_owners(&api), ["ci/Apply"]);

    // Now the first manager is the one in conflict.
    let err = stderr(&api.apply_text(&with_replicas(2), &["--server-side"]));
    assert!(
        err.contains("conflict with \"ci\" using apps/v1: .spec.replicas"),
        "{err}"
    );
}

#[test]
fn an_update_takes_the_fields_it_changes() {
    let api = ApiServer::start();
    let out = api.apply_text(DEPLOYMENT, &["--server-side"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        api.ok(&["scale", "deployment", "web", "--replicas=5"])
            .trim(),
        "deployment.apps/web scaled"
    );
    let owners = replicas_owners(&api);
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert!(owners[0].contains("/Update"), "{owners:?}");
    // Re-applying the manifest's 2 replicas now conflicts with the scaler.
    let out = api.apply_text(DEPLOYMENT, &["--server-side"]);
    let err = stderr(&out);
    assert!(
        !out.status.success()
            && err.contains("Apply failed with 1 conflict")
            && err.contains(".spec.replicas"),
        "{err}"
    );
    assert_eq!(replicas(&api), "5");
    let out = api.apply_text(DEPLOYMENT, &["--server-side", "--force-conflicts"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(replicas(&api), "2");
    assert_eq!(replicas_owners(&api), ["kubectl/Apply"]);
}

#[test]
fn a_field_no_longer_applied_is_removed_unless_another_manager_owns_it() {
    let api = ApiServer::start();
    let labelled = DEPLOYMENT.replace(
        "labels: {app: web}\nspec:",
        "labels: {app: web, tier: fe}\nspec:",
    );
    assert_ne!(labelled, DEPLOYMENT, "the fixture's label line moved");
    let out = api.apply_text(&labelled, &["--server-side"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let labels = || api.ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.labels}"]);
    assert!(labels().contains("tier"), "{}", labels());
    let out = api.apply_text(DEPLOYMENT, &["--server-side"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!labels().contains("tier"), "{}", labels());
    // A label another manager also set stays when one of them drops it.
    api.ok(&["label", "deploy", "web", "team=a"]);
    let with_team = DEPLOYMENT.replace(
        "labels: {app: web}\nspec:",
        "labels: {app: web, team: a}\nspec:",
    );
    let out = api.apply_text(&with_team, &["--server-side"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = api.apply_text(DEPLOYMENT, &["--server-side"]);
    assert!(out.status.success(), "{} {}", stdout(&out), stderr(&out));
    assert!(labels().contains("team"), "{}", labels());
}
