//! Watch: a store watch turned into Kubernetes watch events, streamed as
//! one JSON object per line (`{"type":"ADDED","object":{...}}`).
//!
//! `resourceVersion` unset or "0" starts with a synthetic ADDED for every
//! current object and continues from the list's revision; an exact version
//! continues from just after it. Selectors are applied to both the old and
//! the new object, so an object leaving the selection is a DELETED and one
//! entering it an ADDED, as in Kubernetes. A compacted start ends the stream
//! with an ERROR event carrying a 410 Status. Bookmarks are sent
//! periodically when the client allows them.
//!
//! Streaming lists (`sendInitialEvents=true`, what client-go's and
//! kube-rs's watch-list mode send, with `allowWatchBookmarks=true` and
//! `resourceVersionMatch=NotOlderThan`) get the current objects as ADDED
//! events, then a BOOKMARK annotated `k8s.io/initial-events-end: "true"` at
//! the list's revision, then the changes; `sendInitialEvents=false` starts
//! with the changes alone. Options outside those rules are a 422 naming
//! the rule, as in Kubernetes.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use kc_store_api::api::{EventKind, WatchCancelReason, WatchResponse};

use super::negotiate::Rendering;
use super::registry::Resource;
use super::rest::{Query, Rest, selectors};
use super::selectors::Selectors;
use super::status::{ApiError, Cause};
use super::storage::Storage;
use super::table;

/// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_secs(15);
/// The annotation of the bookmark after a streaming list's initial events.
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";
/// How long a watch lasts when the client names no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// One watch event, rendered.
struct Encoder {
    resource: &'static Resource,
    rendering: Rendering,
    first: bool,
    /// The view the client watches, if not the stored kind (`conversion`).
    convert: Option<Convert>,
}

/// Turns a stored object into the kind the client asked for.
pub type Convert = Box<dyn Fn(&Value) -> Value + Send + Sync>;

impl Encoder {
    fn event(&mut self, kind: &str, object: &Value) -> Bytes {
        let converted;
        let object = match &self.convert {
            Some(c)
                if kind != "BOOKMARK"
                    && kind != "ERROR"
                    && !matches!(self.rendering, Rendering::Table(_)) =>
            {
                converted = c(object);
                &converted
            }
            _ => object,
        };
        let object = match self.rendering {
            Rendering::Table(version) if kind != "BOOKMARK" && kind != "ERROR" => {
                let mut t = table::table(
                    self.resource,
                    version,
                    std::slice::from_ref(object),
                    json!({}),
                );
                if !self.first {
                    t["columnDefinitions"] = json!([]);
                }
                self.first = false;
                t
            }
            Rendering::Metadata(version) if kind != "BOOKMARK" && kind != "ERROR" => {
                super::partial::object(object, version)
            }
            _ => object.clone(),
        };
        let mut line = serde_json::to_vec(&json!({ "type": kind, "object": object }))
            .expect("a serde_json::Value always serializes");
        line.push(b'\n');
        Bytes::from(line)
    }

    fn bookmark(&mut self, revision: i64) -> Bytes {
        self.event("BOOKMARK", &self.bookmark_object(revision))
    }

    fn bookmark_object(&self, revision: i64) -> Value {
        json!({
            "kind": self.resource.kind,
            "apiVersion": self.resource.api_version(),
            "metadata": { "resourceVersion": revision.to_string() },
        })
    }

    /// The bookmark that ends a streaming list's initial events.
    fn initial_events_end(&mut self, revision: i64) -> Bytes {
        let mut object = self.bookmark_object(revision);
        object["metadata"]["annotations"] = json!({ INITIAL_EVENTS_END: "true" });
        self.event("BOOKMARK", &object)
    }
}

/// What a store change means to a watcher with selectors.
pub fn classify(sel: &Selectors, old: Option<&Value>, new: Option<&Value>) -> Option<&'static str> {
    let old_m = old.is_some_and(|o| sel.matches(o));
    let new_m = new.is_some_and(|n| sel.matches(n));
    match (old_m, new_m, new.is_some()) {
        (false, true, _) => Some("ADDED"),
        (true, true, _) => Some("MODIFIED"),
        (true, false, _) => Some("DELETED"),
        (false, false, _) => None,
    }
}

/// Whether the watch begins with the current objects (`Some(true)` asks
/// for the closing bookmark too), checked as kube-apiserver validates
/// ListOptions.
fn initial_events(query: &Query, rv: i64, bookmarks: bool) -> Result<Option<bool>, ApiError> {
    let send = match query.get("sendInitialEvents").map(String::as_str) {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "sendInitialEvents {other:?} is not a boolean"
            )));
        }
    };
    let rv_match = query
        .get("resourceVersionMatch")
        .map(String::as_str)
        .unwrap_or("");
    let mut causes = Vec::new();
    match send {
        Some(_) => {
            if rv_match != "NotOlderThan" {
                causes.push(Cause::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if !bookmarks {
                causes.push(Cause::forbidden(
                    "allowWatchBookmarks",
                    "sendInitialEvents requires setting allowWatchBookmarks to true",
                ));
            }
        }
        None if !rv_match.is_empty() => causes.push(Cause::forbidden(
            "resourceVersionMatch",
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        )),
        None => {}
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid("meta.k8s.io", "ListOptions", "", causes));
    }
    Ok(match send {
        Some(true) => Some(true),
        Some(false) => None,
        // Without the option: a synthetic ADDED per object when no version is named.
        None => (rv == 0).then_some(false),
    })
}

/// Starts a watch; returns the channel of rendered event lines.
pub async fn start(
    rest: &Rest,
    resource: &'static Resource,
    namespace: Option<&str>,
    query: &Query,
    rendering: Rendering,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    start_converted(rest, resource, namespace, query, rendering, None).await
}

/// The streaming response of a watch's event lines.
pub fn response(rx: mpsc::Receiver<Bytes>) -> axum::response::Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    let mut resp = axum::response::Response::new(axum::body::Body::from_stream(stream));
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A watch of `resource` whose objects the client sees through `convert`.
pub async fn start_converted(
    rest: &Rest,
    resource: &'static Resource,
    namespace: Option<&str>,
    query: &Query,
    rendering: Rendering,
    convert: Option<Convert>,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let sel = selectors(resource, query)?;
    let rv: i64 = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => 0,
        Some(v) => v.parse().map_err(|_| {
            ApiError::bad_request(format!("resourceVersion {v:?} is not a valid version"))
        })?,
    };
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut encoder = Encoder {
        resource,
        rendering,
        first: true,
        convert,
    };
    let mut initial = Vec::new();
    let initial_events = initial_events(query, rv, bookmarks)?;
    let start_revision = if let Some(end_bookmark) = initial_events {
        let mut q = query.clone();
        for k in [
            "limit",
            "continue",
            "resourceVersion",
            "resourceVersionMatch",
            "watch",
        ] {
            q.remove(k);
        }
        let (page, _) = rest.list_page(resource, namespace, &q).await?;
        for item in &page.items {
            initial.push(encoder.event("ADDED", item));
        }
        if end_bookmark {
            initial.push(encoder.initial_events_end(page.revision));
        }
        page.revision + 1
    } else if rv == 0 {
        // From now on (the store's own "now").
        0
    } else {
        rv + 1
    };
    let prefix = Storage::prefix(resource, namespace);
    let mut changes = rest.storage.watch(&prefix, start_revision).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_revision = (start_revision - 1).max(0);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            let msg = tokio::select! {
                m = changes.recv() => m,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(encoder.bookmark(last_revision)).await.is_err() { return; }
                    continue;
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
            };
            let Some(msg) = msg else { return };
            match msg {
                WatchResponse::Events(events) => {
                    for ev in events {
                        last_revision = ev.kv.mod_revision;
                        let old = ev.prev_kv.as_ref().and_then(|kv| Storage::decode(kv).ok());
                        let new = match ev.kind {
                            EventKind::Put => Storage::decode(&ev.kv).ok(),
                            EventKind::Delete => None,
                        };
                        let Some(kind) = classify(&sel, old.as_ref(), new.as_ref()) else {
                            continue;
                        };
                        let mut object = match (kind, new, old) {
                            (_, Some(n), _) => n,
                            (_, None, Some(o)) => o,
                            _ => continue,
                        };
                        crate::crd::present(resource, &mut object);
                        if kind == "DELETED"
                            && let Some(meta) =
                                object.get_mut("metadata").and_then(Value::as_object_mut)
                        {
                            meta.insert(
                                "resourceVersion".into(),
                                json!(ev.kv.mod_revision.to_string()),
                            );
                        }
                        if tx.send(encoder.event(kind, &object)).await.is_err() {
                            return;
                        }
                    }
                }
                WatchResponse::Progress { revision } => {
                    last_revision = last_revision.max(revision);
                    if bookmarks && tx.send(encoder.bookmark(last_revision)).await.is_err() {
                        return;
                    }
                }
                WatchResponse::Cancelled(reason) => {
                    let err = match reason {
                        WatchCancelReason::Compacted { compact_revision } => {
                            ApiError::gone(format!(
                                "too old resource version: {start_revision} ({compact_revision})"
                            ))
                        }
                        WatchCancelReason::TooSlow => ApiError::gone(
                            "the watch fell behind and was closed: list and watch again",
                        ),
                        WatchCancelReason::Shutdown => {
                            ApiError::unavailable("the API server's store is shutting down")
                        }
                    };
                    let _ = tx.send(encoder.event("ERROR", &err.to_status())).await;
                    return;
                }
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selectors::LabelSelector;

    fn query(pairs: &[(&str, &str)]) -> Query {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn streaming_list_options_follow_kubernetes_rules() {
        let ok = query(&[
            ("sendInitialEvents", "true"),
            ("resourceVersionMatch", "NotOlderThan"),
        ]);
        assert_eq!(initial_events(&ok, 0, true).unwrap(), Some(true));
        assert_eq!(initial_events(&ok, 7, true).unwrap(), Some(true));
        let err = initial_events(&ok, 0, false).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message
                .contains("requires setting allowWatchBookmarks to true"),
            "{}",
            err.message
        );
        let no_match = query(&[("sendInitialEvents", "true")]);
        assert!(
            initial_events(&no_match, 0, true)
                .unwrap_err()
                .message
                .contains("NotOlderThan")
        );
        let stray = query(&[("resourceVersionMatch", "NotOlderThan")]);
        assert!(
            initial_events(&stray, 0, true)
                .unwrap_err()
                .message
                .contains("forbidden for watch")
        );
        let off = query(&[
            ("sendInitialEvents", "false"),
            ("resourceVersionMatch", "NotOlderThan"),
        ]);
        assert_eq!(initial_events(&off, 0, true).unwrap(), None);
        assert_eq!(
            initial_events(&Query::new(), 0, false).unwrap(),
            Some(false)
        );
        assert_eq!(initial_events(&Query::new(), 5, false).unwrap(), None);
    }

    #[test]
    fn objects_entering_and_leaving_the_selection() {
        let sel = Selectors {
            labels: LabelSelector::parse("app=web").unwrap(),
            ..Default::default()
        };
        let web = json!({"metadata": {"labels": {"app": "web"}}});
        let db = json!({"metadata": {"labels": {"app": "db"}}});
        assert_eq!(classify(&sel, None, Some(&web)), Some("ADDED"));
        assert_eq!(classify(&sel, Some(&web), Some(&web)), Some("MODIFIED"));
        assert_eq!(classify(&sel, Some(&web), Some(&db)), Some("DELETED"));
        assert_eq!(classify(&sel, Some(&db), Some(&web)), Some("ADDED"));
        assert_eq!(classify(&sel, Some(&web), None), Some("DELETED"));
        assert_eq!(classify(&sel, Some(&db), None), None);
    }
}
