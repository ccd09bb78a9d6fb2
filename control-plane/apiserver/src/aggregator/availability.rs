//! The APIServices' `Available` condition, as kube-aggregator's
//! availability controller writes it: every few seconds each
//! service-backed APIService's backend is asked for its discovery
//! document (`GET /apis/<group>/<version>`); the answer becomes the
//! group's aggregated discovery, and the condition says Passed,
//! ServiceNotFound, MissingEndpoints or FailedDiscoveryCheck. A status is
//! written only when it changes.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use kc_client::Client;
use serde_json::{Value, json};

use super::{Remote, all, set_resources};
use crate::backend::{self, Trust, Unreachable};
use crate::registry;
use crate::storage::Storage;

const EVERY: Duration = Duration::from_secs(3);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DISCOVERY: usize = 4 << 20;

/// (status, reason, message) of the condition, and the resource list.
type Probe = (bool, &'static str, String, Option<Value>);

async fn probe(storage: &Storage, r: &Remote) -> Probe {
    let (address, server_name) =
        match backend::service_endpoint(storage, &r.namespace, &r.service, r.port).await {
            Ok(found) => found,
            Err(Unreachable::ServiceNotFound(m)) => return (false, "ServiceNotFound", m, None),
            Err(Unreachable::MissingEndpoints(m)) => return (false, "MissingEndpoints", m, None),
            Err(Unreachable::Store(m)) => return (false, "FailedDiscoveryCheck", m, None),
        };
    let url = format!(
        "https://{}.{}.svc:{}/apis/{}/{}",
        r.service, r.namespace, r.port, r.group, r.version
    );
    let failed = |why: String| {
        (
            false,
            "FailedDiscoveryCheck",
            format!("failing or missing response from {url}: {why}"),
            None,
        )
    };
    let request = hyper::Request::builder()
        .method(hyper::Method::GET)
        .uri(format!("/apis/{}/{}", r.group, r.version))
        .header(hyper::header::HOST, &server_name)
        .header(hyper::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::new()));
    let Ok(request) = request else {
        return failed("bad request".into());
    };
    let trust = if r.insecure {
        Trust::Insecure
    } else {
        Trust::Bundle(&r.ca_bundle)
    };
    let attempt = async {
        let answer = backend::send(&address, &server_name, trust, request).await?;
        let status = answer.status().as_u16();
        let body = Limited::new(answer.into_body(), MAX_DISCOVERY)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if status != 200 {
            return Err(format!("bad status from {url}: {status}"));
        }
        let list: Value =
            serde_json::from_slice(&body).map_err(|e| format!("not an APIResourceList: {e}"))?;
        if !list["resources"].is_array() {
            return Err("not an APIResourceList".into());
        }
        Ok(list)
    };
    match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
        Ok(Ok(list)) => (true, "Passed", "all checks passed".into(), Some(list)),
        Ok(Err(why)) => failed(why),
        Err(_) => failed("context deadline exceeded".into()),
    }
}

/// Probes every service-backed APIService, forever.
pub async fn run(client: Client, storage: Storage) {
    let resource = registry::lookup("apiregistration.k8s.io", "v1", "apiservices")
        .expect("a built-in resource");
    // What was last written (or found written) per APIService.
    let mut written: HashMap<String, (bool, &'static str, String)> = HashMap::new();
    loop {
        for r in all() {
            let (ok, reason, message, resources) = probe(&storage, &r).await;
            set_resources(&r.name, resources);
            let now = (ok, reason, message.clone());
            if written.get(&r.name) == Some(&now) {
                continue;
            }
            let current = match client.get(resource, "", &r.name).await {
                Ok(o) => o,
                Err(_) => continue,
            };
            let old = current["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Available"))
                .cloned()
                .unwrap_or(Value::Null);
            let status = if ok { "True" } else { "False" };
            let same =
                old["status"] == status && old["reason"] == reason && old["message"] == message;
            if !same {
                let since = if old["status"] == status {
                    old["lastTransitionTime"].clone()
                } else {
                    json!(kc_client::clock::rfc3339_in(0))
                };
                let condition = json!({"type": "Available", "status": status, "reason": reason,
                    "message": message, "lastTransitionTime": since});
                let patch = json!({"status": {"conditions": [condition]}});
                if client
                    .merge_patch(resource, "", &r.name, "status", &patch)
                    .await
                    .is_err()
                {
                    continue;
                }
            }
            written.insert(r.name.clone(), now);
        }
        tokio::time::sleep(EVERY).await;
    }
}
