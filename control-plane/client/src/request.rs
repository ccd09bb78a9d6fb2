//! What a request names and what a write answers: the target of a verb,
//! its query parameters, the patch types, a write's outcome.

use std::collections::HashMap;

use serde_json::Value;

use crate::registry::Resource;
use crate::status::ApiError;

/// Query parameters, decoded.
pub type Query = HashMap<String, String>;

/// Where a request points: a resource, its namespace, object and subresource.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: &'static Resource,
    /// The namespace of a namespaced request ("" for cluster-scoped or all namespaces).
    pub namespace: String,
    pub name: String,
    pub subresource: String,
}

impl Target {
    /// The object `name` of `resource` (in `namespace` when it is namespaced).
    pub fn object(resource: &'static Resource, namespace: &str, name: &str, sub: &str) -> Self {
        Self {
            resource,
            namespace: if resource.namespaced {
                namespace.into()
            } else {
                String::new()
            },
            name: name.into(),
            subresource: sub.into(),
        }
    }

    pub fn not_found(&self) -> ApiError {
        ApiError::not_found(self.resource.group, self.resource.plural, &self.name)
    }
}

/// The result of a write: the object, the HTTP code and any warnings.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub object: Value,
    pub code: u16,
    pub warnings: Vec<String>,
    /// The object is gone (an immediate delete): `object` is what it was.
    pub removed: bool,
}

impl Outcome {
    pub fn ok(object: Value) -> Self {
        Self {
            object,
            code: 200,
            warnings: Vec::new(),
            removed: false,
        }
    }

    pub fn removed(object: Value) -> Self {
        Self {
            removed: true,
            ..Self::ok(object)
        }
    }
}

/// The four patch types of `PATCH`, by their Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    StrategicMerge,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let essence = ct.split(';').next().unwrap_or("").trim();
        match essence {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}
