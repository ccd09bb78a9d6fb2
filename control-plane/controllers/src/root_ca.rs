//! Root CA publisher: every namespace has a ConfigMap `kube-root-ca.crt`
//! whose `ca.crt` is the cluster CA, so pods can verify the API server
//! (kube-controller-manager's root-ca-cert-publisher). A deleted one is
//! recreated and an edited one is put back.

use serde_json::{Value, json};

use super::work_queue::{WorkQueue, spawn_worker};
use kc_client::client::{Client, Event, resource};
use kc_client::status::ApiError;

/// The ConfigMap's name in every namespace.
pub const NAME: &str = "kube-root-ca.crt";

/// Kubernetes' description annotation of the ConfigMap.
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

pub async fn run(client: Client, ca_pem: String) {
    let queue = WorkQueue::default();
    let mut namespaces = client.informer(resource("", "v1", "namespaces"));
    let mut config_maps = client.informer(resource("", "v1", "configmaps"));
    let _worker = spawn_worker(client.clone(), queue.clone(), "root-ca", move |c, ns| {
        let ca = ca_pem.clone();
        async move { reconcile(&c, &ns, &ca).await }
    });
    loop {
        tokio::select! {
            Some(ev) = namespaces.recv() => if let Event::Applied(o) = ev
                && let Some(ns) = o["metadata"]["name"].as_str()
            {
                queue.add(ns);
            },
            Some(ev) = config_maps.recv() => {
                let o = match &ev {
                    Event::Applied(o) | Event::Deleted(o) => o,
                    _ => continue,
                };
                if o["metadata"]["name"] == NAME
                    && let Some(ns) = o["metadata"]["namespace"].as_str()
                {
                    queue.add(ns);
                }
            },
            else => return,
        }
    }
}

/// The ConfigMap as the publisher writes it.
fn desired(ns: &str, ca_pem: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {
            "name": NAME, "namespace": ns,
            "annotations": { "kubernetes.io/description": DESCRIPTION },
        },
        "data": { "ca.crt": ca_pem },
    })
}

/// Creates or repairs `kube-root-ca.crt` in `ns` unless `ns` is going.
pub async fn reconcile(client: &Client, ns: &str, ca_pem: &str) -> Result<(), ApiError> {
    if !super::namespace_is_live(client, ns).await? {
        return Ok(());
    }
    let config_maps = resource("", "v1", "configmaps");
    let want = desired(ns, ca_pem);
    match client.get(config_maps, ns, NAME).await {
        Ok(mut cm) => {
            if cm["data"] == want["data"] && cm["binaryData"].is_null() {
                return Ok(());
            }
            cm["data"] = want["data"].clone();
            if let Some(meta) = cm["metadata"].as_object_mut() {
                meta.entry("annotations")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .map(|a| a.insert("kubernetes.io/description".into(), json!(DESCRIPTION)));
            }
            if let Some(obj) = cm.as_object_mut() {
                obj.remove("binaryData");
            }
            match client.update(config_maps, cm).await {
                Err(e) if e.code != 409 && e.code != 404 => Err(e),
                _ => Ok(()),
            }
        }
        Err(e) if e.code == 404 => match client.create(config_maps, ns, want).await {
            // 403: the namespace began terminating meanwhile.
            Err(e) if e.code != 409 && e.code != 403 && e.code != 404 => Err(e),
            _ => Ok(()),
        },
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_map_carries_the_ca_and_kubernetes_description() {
        let cm = desired("team-a", "PEM");
        assert_eq!(cm["metadata"]["name"], "kube-root-ca.crt");
        assert_eq!(cm["metadata"]["namespace"], "team-a");
        assert_eq!(cm["data"]["ca.crt"], "PEM");
        assert!(
            cm["metadata"]["annotations"]["kubernetes.io/description"]
                .as_str()
                .unwrap()
                .starts_with("Contains a CA bundle")
        );
    }
}
