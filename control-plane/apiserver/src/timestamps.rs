//! Timestamps as kube-apiserver decodes them: `metav1.Time` fields are
//! RFC 3339 (any offset, any fraction) and are stored in UTC to the second;
//! `metav1.MicroTime` fields (a Lease's `acquireTime`/`renewTime`, an
//! Event's `eventTime`) need exactly six fractional digits and are stored
//! in UTC with six. Anything else is a 400, as Kubernetes' JSON decoding
//! refuses it, so a client that works here works there.
//!
//! The fields are named per kind (`fields`), by path; other strings are
//! never touched (a ConfigMap key called `startTime` is data).

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::registry::Resource;
use super::status::ApiError;

const RFC3339: &str = "2006-01-02T15:04:05Z07:00";
const RFC3339_MICRO: &str = "2006-01-02T15:04:05.000000Z07:00";

/// Condition fields of type Time, in any kind's `status.conditions`.
const CONDITION_TIMES: &[&str] = &[
    "lastTransitionTime",
    "lastHeartbeatTime",
    "lastProbeTime",
    "lastUpdateTime",
];

/// (Time paths, MicroTime paths) of a kind beyond metadata and conditions;
/// `[]` is every element of an array.
fn fields(resource: &Resource) -> (&'static [&'static str], &'static [&'static str]) {
    match (resource.group, resource.kind) {
        ("coordination.k8s.io", "Lease") => (&[], &["spec.acquireTime", "spec.renewTime"]),
        ("", "Event") => (
            &["firstTimestamp", "lastTimestamp"],
            &["eventTime", "series.lastObservedTime"],
        ),
        ("", "Pod") => (
            &[
                "status.startTime",
                "status.containerStatuses.[].state.running.startedAt",
                "status.containerStatuses.[].state.terminated.startedAt",
                "status.containerStatuses.[].state.terminated.finishedAt",
                "status.containerStatuses.[].lastState.terminated.startedAt",
                "status.containerStatuses.[].lastState.terminated.finishedAt",
                "status.initContainerStatuses.[].state.running.startedAt",
                "status.initContainerStatuses.[].state.terminated.startedAt",
                "status.initContainerStatuses.[].state.terminated.finishedAt",
            ],
            &[],
        ),
        ("batch", "Job") => (&["status.startTime", "status.completionTime"], &[]),
        _ => (&[], &[]),
    }
}

/// Normalises the kind's timestamps of `object` in place, or refuses it.
pub fn normalize(resource: &Resource, object: &mut Value) -> Result<(), ApiError> {
    let fail = |layout: &str, text: &str, why: String| {
        ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: parsing time {text:?} as {layout:?}: {why}",
            kind = resource.kind,
            v = resource.version,
        ))
    };
    let mut time = |v: &mut Value| -> Result<(), ApiError> {
        if let Some(text) = v.as_str().filter(|t| !t.is_empty()) {
            *v = Value::String(seconds(text).map_err(|why| fail(RFC3339, text, why))?);
        }
        Ok(())
    };
    for path in [
        "metadata.creationTimestamp",
        "metadata.deletionTimestamp",
        "metadata.managedFields.[].time",
    ] {
        visit(object, path, &mut time)?;
    }
    for field in CONDITION_TIMES {
        visit(object, &format!("status.conditions.[].{field}"), &mut time)?;
    }
    let (times, micros) = fields(resource);
    for path in times {
        visit(object, path, &mut time)?;
    }
    let mut micro = |v: &mut Value| -> Result<(), ApiError> {
        if let Some(text) = v.as_str().filter(|t| !t.is_empty()) {
            *v = Value::String(micros_of(text).map_err(|why| fail(RFC3339_MICRO, text, why))?);
        }
        Ok(())
    };
    for path in micros {
        visit(object, path, &mut micro)?;
    }
    Ok(())
}

/// Calls `f` on every value at `path` (dot-separated; `[]` = each element).
fn visit(
    v: &mut Value,
    path: &str,
    f: &mut dyn FnMut(&mut Value) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let Some((head, rest)) = path.split_once('.').map_or(Some((path, "")), Some) else {
        return Ok(());
    };
    let children: Vec<&mut Value> = if head == "[]" {
        match v.as_array_mut() {
            Some(items) => items.iter_mut().collect(),
            None => return Ok(()),
        }
    } else {
        match v.get_mut(head) {
            Some(child) => vec![child],
            None => return Ok(()),
        }
    };
    for child in children {
        if rest.is_empty() {
            f(child)?;
        } else {
            visit(child, rest, f)?;
        }
    }
    Ok(())
}

/// A `metav1.Time`: RFC 3339, stored as UTC seconds.
fn seconds(text: &str) -> Result<String, String> {
    let ts: Timestamp = text.parse().map_err(|e| format!("{e}"))?;
    Ok(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// A `metav1.MicroTime`: RFC 3339 with exactly six fractional digits,
/// stored as UTC with six.
fn micros_of(text: &str) -> Result<String, String> {
    let fraction = text
        .get(19..)
        .and_then(|t| t.strip_prefix('.'))
        .map(|t| t.bytes().take_while(u8::is_ascii_digit).count());
    if fraction != Some(6) {
        return Err("a MicroTime needs exactly six fractional digits".into());
    }
    let ts: Timestamp = text.parse().map_err(|e| format!("{e}"))?;
    Ok(ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;
    use serde_json::json;

    #[test]
    fn times_are_stored_in_utc_to_the_second() {
        assert_eq!(
            seconds("2026-12-07T23:00:01.987Z").unwrap(),
            "2026-12-07T23:00:01Z"
        );
        assert_eq!(
            seconds("2026-12-08T01:00:01+02:00").unwrap(),
            "2026-12-07T23:00:01Z"
        );
        assert!(seconds("yesterday").is_err());
    }

    #[test]
    fn micro_times_need_six_digits() {
        assert_eq!(
            micros_of("2026-12-07T23:00:01.123456+01:00").unwrap(),
            "2026-12-07T22:00:01.123456Z"
        );
        assert!(micros_of("2026-12-07T23:00:01Z").is_err());
        assert!(micros_of("2026-12-07T23:00:01.123Z").is_err());
        assert!(micros_of("2026-12-07T23:00:01.123456789Z").is_err());
    }

    #[test]
    fn a_lease_and_an_event_are_checked_and_a_config_map_is_left_alone() {
        let leases = registry::lookup("coordination.k8s.io", "v1", "leases").unwrap();
        let mut lease = json!({"metadata": {"creationTimestamp": "2026-12-07T23:00:00.5Z"},
            "spec": {"renewTime": "2026-12-07T23:00:00.000001Z"}});
        normalize(leases, &mut lease).unwrap();
        assert_eq!(
            lease["metadata"]["creationTimestamp"],
            "2026-12-07T23:00:00Z"
        );
        let mut bad = json!({"spec": {"renewTime": "2026-12-07T23:00:00Z"}});
        let err = normalize(leases, &mut bad).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message
                .starts_with("Lease in version \"v1\" cannot be handled as a Lease: parsing time"),
            "{}",
            err.message
        );
        let cms = registry::lookup("", "v1", "configmaps").unwrap();
        let mut cm = json!({"data": {"startTime": "not a time"},
            "status": {"conditions": [{"lastTransitionTime": "2026-12-07T23:00:00.5Z"}]}});
        normalize(cms, &mut cm).unwrap();
        assert_eq!(cm["data"]["startTime"], "not a time");
        assert_eq!(
            cm["status"]["conditions"][0]["lastTransitionTime"],
            "2026-12-07T23:00:00Z"
        );
    }
}
