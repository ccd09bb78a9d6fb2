//! The API a client talks to: the API server's REST verbs on JSON objects.
//!
//! The API server implements it for its own `Rest` (a member's scheduler
//! and controllers call it in-process, with the same defaulting, validation
//! and resourceVersion conflicts as any HTTPS client); anything else that
//! speaks the Kubernetes API could. The futures are boxed so a `Client`
//! can hold any implementation as `Arc<dyn Api>`.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::binding::Binding;
use crate::registry::Resource;
use crate::request::{Outcome, PatchType, Query, Target};
use crate::status::ApiError;

/// A boxed future of an API call.
pub type Call<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One change of a watched collection.
#[derive(Debug, Clone)]
pub enum Change {
    /// Created or changed: the new state.
    Applied(Value),
    /// Deleted: the last state.
    Deleted(Value),
    /// The watch ended (compacted away, or the server cancelled it): list again.
    Ended(ApiError),
}

pub trait Api: Send + Sync + 'static {
    fn get<'a>(&'a self, target: &'a Target) -> Call<'a, Result<Value, ApiError>>;

    /// Every object of a collection (all namespaces when `namespace` is
    /// None) and the revision of the read.
    fn list<'a>(
        &'a self,
        resource: &'static Resource,
        namespace: Option<&'a str>,
    ) -> Call<'a, Result<(Vec<Value>, i64), ApiError>>;

    fn create<'a>(
        &'a self,
        resource: &'static Resource,
        namespace: &'a str,
        object: Value,
        query: &'a Query,
    ) -> Call<'a, Result<Outcome, ApiError>>;

    /// `PUT` of the target (or of its subresource).
    fn update<'a>(
        &'a self,
        target: &'a Target,
        object: Value,
        query: &'a Query,
    ) -> Call<'a, Result<Outcome, ApiError>>;

    fn patch<'a>(
        &'a self,
        target: &'a Target,
        patch_type: PatchType,
        body: &'a [u8],
        query: &'a Query,
    ) -> Call<'a, Result<Outcome, ApiError>>;

    /// `DELETE` with its `DeleteOptions`.
    fn delete<'a>(
        &'a self,
        target: &'a Target,
        options: &'a Value,
        query: &'a Query,
    ) -> Call<'a, Result<Outcome, ApiError>>;

    /// `POST` of a `Binding` to `pods/<name>/binding`.
    fn bind<'a>(&'a self, target: &'a Target, binding: &'a Value)
    -> Call<'a, Result<(), ApiError>>;

    /// Many bindings at once, each judged alone.
    fn bind_all<'a>(&'a self, bindings: &'a [Binding]) -> Call<'a, Vec<Result<(), ApiError>>>;

    /// The changes of a collection (all namespaces) after `revision`.
    fn watch(
        &self,
        resource: &'static Resource,
        revision: i64,
    ) -> Call<'_, Result<mpsc::Receiver<Change>, ApiError>>;

    /// The API server's defaulting of `object` (what a create would store;
    /// Kubernetes' controllers link the same defaulters).
    fn apply_defaults(&self, resource: &'static Resource, object: &mut Value);
}
