//! core/v1 Events for the notable steps of a pod (Pulled, Created, Started,
//! Killing, BackOff, Unhealthy, Failed, ...), built ready to be stored by
//! the API: named `<pod>.<unique suffix>`, in the pod's namespace, with the
//! pod as involvedObject and `kubelet` on this node as source.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Warning,
}

/// Which pod (and, if any, which container: `spec.containers{name}`).
pub struct Subject<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub container: Option<&'a str>,
}

/// The current time.
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i32).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn build(node: &str, s: &Subject, kind: Kind, reason: &str, message: String) -> Event {
    let now = now();
    let suffix = format!("{:x}", now.as_nanosecond());
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{}.{suffix}", s.name)),
            namespace: Some(s.namespace.to_string()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(s.name.to_string()),
            namespace: Some(s.namespace.to_string()),
            uid: Some(s.uid.to_string()),
            field_path: s.container.map(|c| format!("spec.containers{{{c}}}")),
            ..Default::default()
        },
        reason: Some(reason.to_string()),
        message: Some(message),
        type_: Some(
            match kind {
                Kind::Normal => "Normal",
                Kind::Warning => "Warning",
            }
            .into(),
        ),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some(node.to_string()),
        }),
        reporting_component: Some("kubelet".into()),
        reporting_instance: Some(node.to_string()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        count: Some(1),
        ..Default::default()
    }
}
