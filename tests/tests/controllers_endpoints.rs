//! Endpoints/EndpointSlices and ServiceAccount controllers against an
//! in-process control plane with hollow nodes.

use std::time::Duration;

use kc_member::client::resource;
use kc_member::controllers;
use kc_member::hollow::{Fleet, HollowConfig};
use kc_member::scheduler;
use kc_tests::hollow::{ControlPlane, eventually, names};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn pod(name: &str, app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"name": "web", "containerPort": 8080}]}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_follow_ready_pods_of_a_service() {
    let cp = ControlPlane::start().await;
    let _fleet = Fleet::start(cp.client.clone(), names("node", 2), HollowConfig::default())
        .await
        .expect("hollow nodes");
    let _sched = scheduler::start(cp.client.clone(), "member-1");
    let _cm = controllers::start(cp.client.clone(), "member-1", None);
    let pods = resource("", "v1", "pods");
    for (name, app) in [("a", "web"), ("b", "web"), ("other", "db")] {
        cp.client
            .create(pods, "default", pod(name, app))
            .await
            .expect("pod");
    }
    cp.client
        .create(resource("", "v1", "services"), "default", json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}}))
        .await
        .expect("service");
    let eps = resource("", "v1", "endpoints");
    let ep = eventually(WAIT, "two ready addresses in Endpoints web", || async {
        let ep = cp.client.get(eps, "default", "web").await.ok()?;
        (ep["subsets"][0]["addresses"].as_array().map(Vec::len) == Some(2)).then_some(ep)
    })
    .await;
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080);
    let slices = resource("discovery.k8s.io", "v1", "endpointslices");
    // The slice is written after the Endpoints: wait for it as well.
    let slice = eventually(WAIT, "two endpoints in EndpointSlice web-kc", || async {
        let slice = cp.client.get(slices, "default", "web-kc").await.ok()?;
        (slice["endpoints"].as_array().map(Vec::len) == Some(2)).then_some(slice)
    })
    .await;
    assert_eq!(
        slice["metadata"]["labels"]["kubernetes.io/service-name"],
        "web"
    );
    assert_eq!(slice["endpoints"].as_array().map(Vec::len), Some(2));
    assert_eq!(slice["ports"][0]["name"], "http");
    // A pod going away leaves the endpoints.
    cp.client
        .delete(pods, "default", "a", json!({"gracePeriodSeconds": 0}))
        .await
        .expect("delete");
    eventually(WAIT, "one address left", || async {
        let ep = cp.client.get(eps, "default", "web").await.ok()?;
        let addrs = ep["subsets"][0]["addresses"].as_array()?.clone();
        (addrs.len() == 1 && addrs[0]["targetRef"]["name"] == "b").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_gets_a_default_service_account() {
    let cp = ControlPlane::start().await;
    let _cm = controllers::start(cp.client.clone(), "member-1", None);
    cp.client
        .create(
            resource("", "v1", "namespaces"),
            "",
            json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "team-a"}}),
        )
        .await
        .expect("namespace");
    let sas = resource("", "v1", "serviceaccounts");
    for ns in ["default", "kube-system", "team-a"] {
        eventually(WAIT, &format!("default ServiceAccount in {ns}"), || async {
            cp.client.get(sas, ns, "default").await.ok().map(|_| ())
        })
        .await;
    }
    cp.client
        .delete(sas, "team-a", "default", json!({}))
        .await
        .expect("delete sa");
    eventually(WAIT, "the default ServiceAccount recreated", || async {
        cp.client
            .get(sas, "team-a", "default")
            .await
            .ok()
            .map(|_| ())
    })
    .await;
}
