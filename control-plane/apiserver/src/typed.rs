//! The k8s-openapi type of every built-in kind, declared once: `kinds`
//! decodes objects through it (type errors, unknown fields) and `schemas`
//! publishes its OpenAPI schema from it. A kind served without a line here
//! is stored as given and has no published schema.

use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::Value;

macro_rules! typed_kinds {
    ($( ($group:literal, $kind:literal) => $ty:ty, )*) => {
        /// `object` decoded into its kind's type and encoded again (None:
        /// no type here; Err: it does not decode, why).
        pub fn roundtrip(group: &str, kind: &str, object: &Value) -> Option<Result<Value, String>> {
            match (group, kind) {
                $( ($group, $kind) => Some(through::<$ty>(object)), )*
                _ => None,
            }
        }

        /// Adds the kind's schema (and what it refers to) to `generator`;
        /// its name, or None for a kind without a type here.
        pub fn add_schema(generator: &mut SchemaGenerator, group: &str, kind: &str) -> Option<String> {
            match (group, kind) {
                $( ($group, $kind) => Some(add::<$ty>(generator)), )*
                _ => None,
            }
        }
    };
}

fn through<T: serde::de::DeserializeOwned + serde::Serialize>(
    object: &Value,
) -> Result<Value, String> {
    let typed: T = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

use k8s_openapi::api::{
    admissionregistration, apps, autoscaling, batch, certificates, coordination, core, discovery,
    events, flowcontrol, networking, node, policy, scheduling, storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration;

typed_kinds! {
    ("", "Namespace") => core::v1::Namespace,
    ("", "Pod") => core::v1::Pod,
    ("", "Node") => core::v1::Node,
    ("", "Service") => core::v1::Service,
    ("", "Endpoints") => core::v1::Endpoints,
    ("", "ConfigMap") => core::v1::ConfigMap,
    ("", "Secret") => core::v1::Secret,
    ("", "ServiceAccount") => core::v1::ServiceAccount,
    ("", "Event") => core::v1::Event,
    ("", "Binding") => core::v1::Binding,
    ("", "PersistentVolumeClaim") => core::v1::PersistentVolumeClaim,
    ("", "PodTemplate") => core::v1::PodTemplate,
    ("", "ComponentStatus") => core::v1::ComponentStatus,
    ("", "LimitRange") => core::v1::LimitRange,
    ("", "PersistentVolume") => core::v1::PersistentVolume,
    ("", "ReplicationController") => core::v1::ReplicationController,
    ("", "ResourceQuota") => core::v1::ResourceQuota,
    ("events.k8s.io", "Event") => events::v1::Event,
    ("policy", "Eviction") => policy::v1::Eviction,
    ("apps", "Deployment") => apps::v1::Deployment,
    ("apps", "ReplicaSet") => apps::v1::ReplicaSet,
    ("apps", "DaemonSet") => apps::v1::DaemonSet,
    ("apps", "StatefulSet") => apps::v1::StatefulSet,
    ("apps", "ControllerRevision") => apps::v1::ControllerRevision,
    ("autoscaling", "Scale") => autoscaling::v1::Scale,
    ("autoscaling", "HorizontalPodAutoscaler") => autoscaling::v2::HorizontalPodAutoscaler,
    ("policy", "PodDisruptionBudget") => policy::v1::PodDisruptionBudget,
    ("networking.k8s.io", "NetworkPolicy") => networking::v1::NetworkPolicy,
    ("certificates.k8s.io", "CertificateSigningRequest") => certificates::v1::CertificateSigningRequest,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => admissionregistration::v1::MutatingWebhookConfiguration,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => admissionregistration::v1::ValidatingWebhookConfiguration,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => admissionregistration::v1::ValidatingAdmissionPolicy,
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => admissionregistration::v1::ValidatingAdmissionPolicyBinding,
    ("apiregistration.k8s.io", "APIService") => apiregistration::v1::APIService,
    ("batch", "Job") => batch::v1::Job,
    ("batch", "CronJob") => batch::v1::CronJob,
    ("coordination.k8s.io", "Lease") => coordination::v1::Lease,
    ("discovery.k8s.io", "EndpointSlice") => discovery::v1::EndpointSlice,
    ("apiextensions.k8s.io", "CustomResourceDefinition") => apiextensions::v1::CustomResourceDefinition,
    ("node.k8s.io", "RuntimeClass") => node::v1::RuntimeClass,
    ("scheduling.k8s.io", "PriorityClass") => scheduling::v1::PriorityClass,
    ("networking.k8s.io", "Ingress") => networking::v1::Ingress,
    ("networking.k8s.io", "IngressClass") => networking::v1::IngressClass,
    ("storage.k8s.io", "StorageClass") => storage::v1::StorageClass,
    ("storage.k8s.io", "CSIDriver") => storage::v1::CSIDriver,
    ("storage.k8s.io", "CSINode") => storage::v1::CSINode,
    ("storage.k8s.io", "CSIStorageCapacity") => storage::v1::CSIStorageCapacity,
    ("storage.k8s.io", "VolumeAttachment") => storage::v1::VolumeAttachment,
    ("flowcontrol.apiserver.k8s.io", "FlowSchema") => flowcontrol::v1::FlowSchema,
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration") => flowcontrol::v1::PriorityLevelConfiguration,
}
