//! API errors as Kubernetes `Status` objects.
//!
//! Every failure the API server reports is one `ApiError`, which renders as
//! the `Status` JSON kubectl and the client libraries parse: `code`, a
//! machine-readable `reason`, a `message` written the way Kubernetes writes
//! it (kubectl prints it verbatim), and `details` with causes a user can act
//! on. Handlers build errors with the constructors below so the wording stays
//! in one place.

use serde_json::{Value, json};

/// One field-level reason an object was refused (a `StatusCause`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueForbidden`, ...
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

impl Cause {
    pub fn invalid(field: &str, value: &str, detail: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            field: field.to_string(),
            message: format!("Invalid value: {}: {detail}", json!(value)),
        }
    }

    /// A cause with its own reason and message.
    pub fn new(reason: &'static str, field: &str, message: String) -> Self {
        Self {
            reason,
            field: field.to_string(),
            message,
        }
    }

    /// `Invalid value` of any JSON value (numbers unquoted, as Kubernetes
    /// prints them).
    pub fn invalid_value(field: &str, value: &Value, detail: &str) -> Self {
        Self::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {value}: {detail}"),
        )
    }

    pub fn required(field: &str) -> Self {
        Self {
            reason: "FieldValueRequired",
            field: field.to_string(),
            message: "Required value".to_string(),
        }
    }

    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self {
            reason: "FieldValueForbidden",
            field: field.to_string(),
            message: format!("Forbidden: {detail}"),
        }
    }

    /// How Kubernetes prints a cause inside an Invalid message.
    fn render(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// A failed API request.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        let mut details = json!({ "name": name, "kind": kind });
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// `user` may not `verb` `resource` (`name` if one) in `namespace`.
    pub fn forbidden(
        user: &str,
        verb: &str,
        group: &str,
        resource: &str,
        name: &str,
        namespace: &str,
        why: &str,
    ) -> Self {
        let subject = if name.is_empty() {
            resource.to_string()
        } else {
            format!("{resource} \"{name}\"")
        };
        let scope = if namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{namespace}\"")
        };
        Self::new(
            403,
            "Forbidden",
            format!(
                "{subject} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}: {why}"
            ),
        )
        .with_details(group, resource, name)
    }

    /// A refusal by an admission rule (not by authorization): `pods "p" is
    /// forbidden: unable to create new content in namespace t because it is
    /// being terminated`.
    pub fn forbidden_by_admission(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let what = qualified(group, resource);
        let subject = if name.is_empty() {
            what
        } else {
            format!("{what} \"{name}\"")
        };
        Self::new(403, "Forbidden", format!("{subject} is forbidden: {why}"))
            .with_details(group, resource, name)
    }

    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let what = qualified(group, resource);
        Self::new(404, "NotFound", format!("{what} \"{name}\" not found"))
            .with_details(group, resource, name)
    }

    /// A path that names no resource we serve.
    pub fn no_such_path(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let what = qualified(group, resource);
        Self::new(
            409,
            "AlreadyExists",
            format!("{what} \"{name}\" already exists"),
        )
        .with_details(group, resource, name)
    }

    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let what = qualified(group, resource);
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {what} \"{name}\": {why}"),
        )
        .with_details(group, resource, name)
    }

    /// The resourceVersion of an update is not the stored one.
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// A watch or continue token older than the store keeps.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn method_not_supported(resource: &str, verb: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("{verb} is not supported on resources of kind \"{resource}\""),
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// An object too large for the store (etcd's 1.5 MiB request limit).
    pub fn too_large_to_store(size: usize, limit: usize) -> Self {
        Self::new(
            422,
            "RequestEntityTooLarge",
            format!(
                "the object is too large to store: {size} bytes encoded, the limit is {limit} (keep objects under 1.5 MiB)"
            ),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format: {content_type}"),
        )
    }

    /// The object failed validation: 422 with one cause per field.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list = causes.iter().map(Cause::render).collect::<Vec<_>>();
        let summary = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let mut err = Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {summary}"),
        )
        .with_details(group, kind, name);
        if let Some(details) = err.details.as_mut() {
            details["causes"] = causes
                .iter()
                .map(|c| json!({ "reason": c.reason, "message": c.message, "field": c.field }))
                .collect();
        }
        // Kubernetes quotes the kind as `The Pod "x" is invalid`.
        err.message = format!("The {}", err.message);
        err
    }

    /// A server-side apply would change fields other managers own: 409
    /// with one `FieldManagerConflict` cause per field.
    pub fn field_conflicts(
        group: &str,
        kind: &str,
        name: &str,
        message: String,
        causes: Vec<(String, String)>,
    ) -> Self {
        let mut err = Self::new(409, "Conflict", message).with_details(group, kind, name);
        if let Some(details) = err.details.as_mut() {
            details["causes"] = causes
                .iter()
                .map(|(field, message)| {
                    json!({ "reason": "FieldManagerConflict", "message": message, "field": field })
                })
                .collect();
        }
        err
    }

    /// Whether this is a server-side apply conflict (not worth a retry).
    pub fn is_field_conflict(&self) -> bool {
        self.details
            .as_ref()
            .is_some_and(|d| d["causes"][0]["reason"].as_str() == Some("FieldManagerConflict"))
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(429, "TooManyRequests", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// An error reported by another component with an HTTP status code
    /// (the node agent's answer to a stream request, an admission
    /// webhook's refusal).
    pub fn from_code(code: u16, message: impl Into<String>) -> Self {
        let reason = match code {
            400 => "BadRequest",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            422 => "Invalid",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            _ => "InternalError",
        };
        let code = if (400..600).contains(&code) {
            code
        } else {
            500
        };
        Self::new(code, reason, message)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// `pods` or `deployments.apps`, as Kubernetes names a resource in messages.
fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

/// A `Status` in Kubernetes' field order (kind, apiVersion, metadata,
/// status, message, reason, details, code), as kube-apiserver writes it:
/// clients that compare error text see the same bytes.
#[derive(serde::Serialize)]
struct StatusBody<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: serde_json::Map<String, Value>,
    status: &'static str,
    message: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<DetailsBody<'a>>,
    code: u16,
}

/// StatusDetails in Kubernetes' order (name, group, kind, uid, causes,
/// retryAfterSeconds); absent fields are left out.
#[derive(serde::Serialize)]
struct DetailsBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    causes: Vec<CauseBody<'a>>,
    #[serde(rename = "retryAfterSeconds", skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<&'a Value>,
}

#[derive(serde::Serialize)]
struct CauseBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a Value>,
}

impl<'a> DetailsBody<'a> {
    fn of(details: &'a Value) -> Self {
        let get = |k: &str| details.get(k).filter(|v| !v.is_null() && *v != "");
        DetailsBody {
            name: get("name"),
            group: get("group"),
            kind: get("kind"),
            uid: get("uid"),
            causes: details["causes"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .map(|c| CauseBody {
                            reason: c.get("reason"),
                            message: c.get("message"),
                            field: c.get("field"),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            retry_after_seconds: get("retryAfterSeconds"),
        }
    }
}

impl ApiError {
    /// The `Status` body as sent: Kubernetes' field order and a newline.
    pub fn status_bytes(&self) -> Vec<u8> {
        let body = StatusBody {
            kind: "Status",
            api_version: "v1",
            metadata: serde_json::Map::new(),
            status: "Failure",
            message: &self.message,
            reason: self.reason,
            details: self.details.as_ref().map(DetailsBody::of),
            code: self.code,
        };
        let mut bytes = serde_json::to_vec(&body).expect("a Status always serializes");
        bytes.push(b'\n');
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bodies_keep_kubernetes_field_order_and_end_in_a_newline() {
        let text =
            String::from_utf8(ApiError::not_found("", "pods", "web").status_bytes()).unwrap();
        assert_eq!(
            text,
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"web\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"web\",\"kind\":\"pods\"},\"code\":404}\n"
        );
    }

    #[test]
    fn not_found_names_the_resource_like_kubernetes() {
        let err = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(err.code, 404);
        assert_eq!(err.message, "deployments.apps \"web\" not found");
        let status = err.to_status();
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["details"]["group"], "apps");
    }

    #[test]
    fn invalid_lists_every_cause() {
        let err = ApiError::invalid(
            "",
            "Pod",
            "Bad_Name",
            vec![
                Cause::invalid("metadata.name", "Bad_Name", "bad"),
                Cause::required("spec.containers"),
            ],
        );
        assert_eq!(err.code, 422);
        assert!(
            err.message
                .starts_with("The Pod \"Bad_Name\" is invalid: [")
        );
        assert_eq!(
            err.to_status()["details"]["causes"][1]["field"],
            "spec.containers"
        );
    }
}
