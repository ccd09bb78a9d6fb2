//! What the API-kind tests share: a kind under test, kubectl helpers, and
//! the two generic behaviours (the "... API operations" and the storage
//! lifecycles) every kind's conformance tests are made of.

#![allow(dead_code)]

use std::process::{Child, Stdio};
use std::time::Duration;

use super::api_common::{ApiServer, stderr, stdout};
use serde_json::{Value, json};

/// A kind under test: where it is served and a valid object of it.
pub struct Kind {
    pub group: &'static str,
    /// The served version (`v1` but for autoscaling's `v2`).
    pub version: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    pub status: bool,
    pub object: fn(&str) -> Value,
}

impl Kind {
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.into()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The name kubectl knows it by (`ingresses.networking.k8s.io`).
    pub fn kubectl_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.into()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn collection_path(&self) -> String {
        let root = if self.group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}", self.group_version())
        };
        if self.namespaced {
            format!("{root}/namespaces/default/{}", self.plural)
        } else {
            format!("{root}/{}", self.plural)
        }
    }
}

pub fn raw(api: &ApiServer, path: &str) -> Value {
    serde_json::from_str(&api.ok(&["get", "--raw", path])).expect("a JSON document")
}

pub fn write_json(api: &ApiServer, verb: &[&str], object: &Value) -> std::process::Output {
    let path = std::env::temp_dir().join(format!(
        "kc-kinds-{}-{}-{}.json",
        std::process::id(),
        object["metadata"]["name"].as_str().unwrap_or("x"),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::write(&path, object.to_string()).expect("write the object");
    let mut args = verb.to_vec();
    args.extend(["-f", path.to_str().expect("utf-8")]);
    let out = api.kubectl(&args);
    let _ = std::fs::remove_file(&path);
    out
}

pub fn must(out: std::process::Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", stderr(&out));
    stdout(&out)
}

pub fn get(api: &ApiServer, kind: &Kind, name: &str) -> Value {
    serde_json::from_str(&api.ok(&["get", &kind.kubectl_name(), name, "-o", "json"]))
        .expect("kubectl -o json prints JSON")
}

pub fn names(api: &ApiServer, kind: &Kind, selector: &str) -> Vec<String> {
    let list: Value =
        serde_json::from_str(&api.ok(&["get", &kind.kubectl_name(), "-l", selector, "-o", "json"]))
            .expect("a list");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

/// A watch of the kind's collection until `seconds` pass (its event types).
pub fn watch(api: &ApiServer, kind: &Kind, seconds: u32) -> Child {
    let path = format!(
        "{}?watch=true&labelSelector=e2e%3Dops&timeoutSeconds={seconds}",
        kind.collection_path()
    );
    let child = api
        .kubectl_cmd(&["get", "--raw", &path])
        .stdout(Stdio::piped())
        .spawn()
        .expect("kubectl watch");
    std::thread::sleep(Duration::from_millis(800));
    child
}

pub fn watched(child: Child) -> Vec<(String, String)> {
    let out = child.wait_with_output().expect("the watch ends");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

/// Discovery lists the group, its v1 and the resource (and its status);
/// create, get, list, watch, update, patch (and the status's), delete and
/// deletecollection work, as the "... API operations" behaviours ask.
pub fn api_operations(kind: &Kind) {
    let api = ApiServer::start();
    if !kind.group.is_empty() {
        let groups = raw(&api, "/apis");
        let group = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == kind.group)
            .cloned()
            .unwrap_or_else(|| panic!("/apis lacks {}", kind.group));
        assert_eq!(
            group["preferredVersion"]["groupVersion"],
            kind.group_version()
        );
        let doc = raw(&api, &format!("/apis/{}", kind.group));
        assert!(
            doc["versions"].to_string().contains(&kind.group_version()),
            "{doc}"
        );
    }
    let root = if kind.group.is_empty() {
        "/api/v1".to_string()
    } else {
        format!("/apis/{}", kind.group_version())
    };
    let resources = raw(&api, &root);
    let listed: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        listed.contains(&kind.plural),
        "{root} lacks {}: {listed:?}",
        kind.plural
    );
    if kind.status {
        let status = format!("{}/status", kind.plural);
        assert!(listed.contains(&status.as_str()), "{root} lacks {status}");
    }

    let watcher = watch(&api, kind, 8);
    for n in ["ops-1", "ops-2", "ops-3"] {
        let mut o = (kind.object)(n);
        o["metadata"]["labels"] = json!({"e2e": "ops"});
        must(write_json(&api, &["create"], &o), "create");
    }
    assert_eq!(get(&api, kind, "ops-1")["metadata"]["name"], "ops-1");
    assert_eq!(names(&api, kind, "e2e=ops").len(), 3);

    // Update (PUT) and patch.
    let mut current = get(&api, kind, "ops-1");
    current["metadata"]["annotations"] = json!({"updated": "yes"});
    must(write_json(&api, &["replace"], &current), "replace");
    assert_eq!(
        get(&api, kind, "ops-1")["metadata"]["annotations"]["updated"],
        "yes"
    );
    must(
        api.kubectl(&[
            "patch",
            &kind.kubectl_name(),
            "ops-1",
            "--type=merge",
            "-p",
            r#"{"metadata":{"annotations":{"patched":"yes"}}}"#,
        ]),
        "patch",
    );
    assert_eq!(
        get(&api, kind, "ops-1")["metadata"]["annotations"]["patched"],
        "yes"
    );
    if kind.status {
        must(
            api.kubectl(&[
                "patch",
                &kind.kubectl_name(),
                "ops-1",
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"metadata":{"annotations":{"status-patched":"yes"}}}"#,
            ]),
            "patch status",
        );
        let mut st = raw(&api, &format!("{}/ops-1/status", kind.collection_path()));
        st["metadata"]["annotations"]["status-updated"] = json!("yes");
        must(
            write_json(&api, &["replace", "--subresource=status"], &st),
            "update status",
        );
    }

    // Delete one, then the collection.
    must(
        api.kubectl(&["delete", &kind.kubectl_name(), "ops-1"]),
        "delete",
    );
    assert_eq!(names(&api, kind, "e2e=ops"), ["ops-2", "ops-3"]);
    must(
        api.kubectl(&["delete", &kind.kubectl_name(), "-l", "e2e=ops"]),
        "deletecollection",
    );
    assert!(names(&api, kind, "e2e=ops").is_empty());
    let events = watched(watcher);
    let of = |t: &str| events.iter().filter(|(k, _)| k == t).count();
    assert_eq!((of("ADDED"), of("DELETED")), (3, 3), "{events:?}");
    assert!(of("MODIFIED") >= 2, "{events:?}");
}

/// Create, read, patch a label, delete, create again, update a label, then
/// deletecollection: the lifecycle the storage behaviours describe.
pub fn lifecycle(api: &ApiServer, kind: &Kind, selector_label: &str) {
    let name = |i: u32| format!("e2e-{}-{i}", kind.plural);
    let mut first = (kind.object)(&name(1));
    first["metadata"]["labels"] = json!({selector_label: "true"});
    must(write_json(api, &["create"], &first), "create");
    assert_eq!(get(api, kind, &name(1))["metadata"]["name"], name(1));
    must(
        api.kubectl(&[
            "patch",
            &kind.kubectl_name(),
            &name(1),
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"patched":"true"}}}"#,
        ]),
        "patch",
    );
    assert_eq!(
        get(api, kind, &name(1))["metadata"]["labels"]["patched"],
        "true"
    );
    assert_eq!(
        names(api, kind, &format!("{selector_label}=true")),
        [name(1)]
    );
    must(
        api.kubectl(&["delete", &kind.kubectl_name(), &name(1)]),
        "delete",
    );
    assert!(
        !api.kubectl(&["get", &kind.kubectl_name(), &name(1)])
            .status
            .success()
    );
    let mut second = (kind.object)(&name(2));
    second["metadata"]["labels"] = json!({selector_label: "true"});
    must(write_json(api, &["create"], &second), "create again");
    let mut got = get(api, kind, &name(2));
    got["metadata"]["labels"]["updated"] = json!("true");
    must(write_json(api, &["replace"], &got), "update");
    assert_eq!(
        get(api, kind, &name(2))["metadata"]["labels"]["updated"],
        "true"
    );
    must(
        api.kubectl(&[
            "delete",
            &kind.kubectl_name(),
            "-l",
            &format!("{selector_label}=true"),
        ]),
        "deletecollection",
    );
    assert!(names(api, kind, &format!("{selector_label}=true")).is_empty());
}
