//! The API in-process: `Rest` as a `kc_client::Api`, so a member's
//! scheduler, controllers and hollow nodes call the REST verbs directly,
//! with the same defaulting, validation and conflicts as an HTTPS client.

use std::sync::Arc;

use kc_client::api::{Api, Call, Change};
use kc_client::{Binding, Client};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::kinds;
use crate::patch::PatchType;
use crate::registry::Resource;
use crate::rest::{Outcome, Query, Rest, Target};
use crate::status::ApiError;
use crate::storage::{Kv, Storage};
use kc_store_api::api::{EventKind, WatchResponse};

/// A client of the API over the store `kv`, writing as `manager`.
pub fn client(kv: Arc<dyn Kv>, manager: &str) -> Client {
    Client::new(Arc::new(Rest::new(Storage::new(kv))), manager)
}

impl Api for Rest {
    fn get<'a>(&'a self, target: &'a Target) -> Call<'a, Result<Value, ApiError>> {
        Box::pin(Rest::get(self, target))
    }

    fn list<'a>(
        &'a self,
        resource: &'static Resource,
        namespace: Option<&'a str>,
    ) -> Call<'a, Result<(Vec<Value>, i64), ApiError>> {
        Box::pin(async move {
            let (page, _) = self.list_page(resource, namespace, &Query::new()).await?;
            Ok((page.items, page.revision))
        })
    }

    fn create<'a>(
        &'a self,
        resource: &'static Resource,
        namespace: &'a str,
        object: Value,
        query: &'a Query,
    ) -> Call<'a, Result<Outcome, ApiError>> {
        Box::pin(Rest::create(self, resource, namespace, object, query))
    }

    fn update<'a>(
        &'a self,
        target: &'a Target,
        object: Value,
        query: &'a Query,
    ) -> Call<'a, Result<Outcome, ApiError>> {
        Box::pin(Rest::update(self, target, object, query))
    }

    fn patch<'a>(
        &'a self,
        target: &'a Target,
        patch_type: PatchType,
        body: &'a [u8],
        query: &'a Query,
    ) -> Call<'a, Result<Outcome, ApiError>> {
        Box::pin(Rest::patch(self, target, patch_type, body, query))
    }

    fn delete<'a>(
        &'a self,
        target: &'a Target,
        options: &'a Value,
        query: &'a Query,
    ) -> Call<'a, Result<Outcome, ApiError>> {
        Box::pin(Rest::delete(self, target, options, query))
    }

    fn bind<'a>(
        &'a self,
        target: &'a Target,
        binding: &'a Value,
    ) -> Call<'a, Result<(), ApiError>> {
        Box::pin(async move { Rest::bind(self, target, binding).await.map(|_| ()) })
    }

    fn bind_all<'a>(&'a self, bindings: &'a [Binding]) -> Call<'a, Vec<Result<(), ApiError>>> {
        Box::pin(Rest::bind_all(self, bindings))
    }

    fn watch(
        &self,
        resource: &'static Resource,
        revision: i64,
    ) -> Call<'_, Result<mpsc::Receiver<Change>, ApiError>> {
        Box::pin(async move {
            let mut changes = self
                .storage
                .watch(&Storage::prefix(resource, None), revision + 1)
                .await?;
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(async move {
                while let Some(msg) = changes.recv().await {
                    let batch = match msg {
                        WatchResponse::Events(events) => events,
                        WatchResponse::Progress { .. } => continue,
                        WatchResponse::Cancelled(reason) => {
                            let why = ApiError::gone(format!("watch cancelled: {reason:?}"));
                            let _ = tx.send(Change::Ended(why)).await;
                            return;
                        }
                    };
                    for ev in batch {
                        let change = match (ev.kind, ev.prev_kv.as_ref()) {
                            (EventKind::Put, _) => Storage::decode(&ev.kv).map(Change::Applied),
                            (EventKind::Delete, Some(prev)) => {
                                Storage::decode(prev).map(Change::Deleted)
                            }
                            (EventKind::Delete, None) => continue,
                        };
                        let change = change.unwrap_or_else(Change::Ended);
                        let ended = matches!(change, Change::Ended(_));
                        if tx.send(change).await.is_err() || ended {
                            return;
                        }
                    }
                }
            });
            Ok(rx)
        })
    }

    fn apply_defaults(&self, resource: &'static Resource, object: &mut Value) {
        kinds::apply_defaults(resource, object)
    }
}
