//! Kinds served as a view of another kind's storage. `events.k8s.io/v1`
//! Events are core/v1 Events, as in Kubernetes (one storage, two API
//! versions): `regarding` is `involvedObject`, `note` is `message`,
//! `reportingController` is `reportingComponent`, `deprecatedSource`,
//! `deprecatedFirstTimestamp`, `deprecatedLastTimestamp` and
//! `deprecatedCount` are `source`, `firstTimestamp`, `lastTimestamp` and
//! `count`; the rest have the same names. So `kubectl get events` shows
//! what kube-runtime's and client-go's event recorders write through the
//! new API, and the other way round.
//!
//! The handler (`view`) converts each body to the stored kind before the
//! REST verbs and each answer back; field selectors are renamed the same
//! way. Pure.

use serde_json::{Map, Value, json};

use super::registry::{self, Resource};

/// (view field, stored field) of an events.k8s.io Event.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// The kind `resource` is stored as, if it is a view of another.
pub fn stored_as(resource: &Resource) -> Option<&'static Resource> {
    match (resource.group, resource.plural) {
        ("events.k8s.io", "events") => registry::lookup("", "v1", "events"),
        _ => None,
    }
}

fn renamed(
    object: &Value,
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
) -> Map<String, Value> {
    let mut out = object.as_object().cloned().unwrap_or_default();
    for (from, to) in pairs {
        if let Some(v) = out.remove(from) {
            out.insert(to.to_string(), v);
        }
    }
    out
}

/// A view object (`view`'s kind) as the stored kind writes it.
pub fn to_stored(view: &Resource, object: &Value) -> Value {
    let Some(stored) = stored_as(view) else {
        return object.clone();
    };
    let mut out = renamed(object, EVENT_FIELDS.iter().copied());
    out.insert("apiVersion".into(), json!(stored.api_version()));
    out.insert("kind".into(), json!(stored.kind));
    Value::Object(out)
}

/// A stored object as `view`'s kind shows it.
pub fn to_view(view: &Resource, object: &Value) -> Value {
    if stored_as(view).is_none() {
        return object.clone();
    }
    let mut out = renamed(object, EVENT_FIELDS.iter().map(|(v, s)| (*s, *v)));
    out.insert("apiVersion".into(), json!(view.api_version()));
    out.insert("kind".into(), json!(view.kind));
    Value::Object(out)
}

/// A field selector on `view`'s fields, on the stored kind's.
pub fn selector_to_stored(view: &Resource, selector: &str) -> String {
    if stored_as(view).is_none() {
        return selector.to_string();
    }
    selector
        .split(',')
        .map(|term| {
            let term = term.trim();
            for (v, s) in EVENT_FIELDS {
                if let Some(rest) = term.strip_prefix(v)
                    && (rest.starts_with('.') || rest.starts_with('=') || rest.starts_with('!'))
                {
                    return format!("{s}{rest}");
                }
            }
            term.to_string()
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_v1() -> &'static Resource {
        registry::lookup("events.k8s.io", "v1", "events").unwrap()
    }

    #[test]
    fn an_events_v1_event_is_stored_as_a_core_event_and_read_back() {
        let new = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e1", "namespace": "default"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "pulled",
            "reportingController": "kube-runtime", "reportingInstance": "x",
            "action": "Pull", "reason": "Pulled", "type": "Normal",
            "eventTime": "2026-12-07T23:00:00.000000Z",
            "deprecatedCount": 2,
        });
        let core = to_stored(events_v1(), &new);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "pulled");
        assert_eq!(core["reportingComponent"], "kube-runtime");
        assert_eq!(core["count"], 2);
        assert!(core.get("regarding").is_none() && core.get("note").is_none());
        assert_eq!(to_view(events_v1(), &core), new);
    }

    #[test]
    fn field_selectors_are_renamed() {
        assert_eq!(
            selector_to_stored(
                events_v1(),
                "regarding.name=p,reason=Pulled,reportingController!=x"
            ),
            "involvedObject.name=p,reason=Pulled,reportingComponent!=x"
        );
        let core = registry::lookup("", "v1", "events").unwrap();
        assert_eq!(
            selector_to_stored(core, "regarding.name=p"),
            "regarding.name=p"
        );
    }
}
