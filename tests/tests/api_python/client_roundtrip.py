"""The official Python `kubernetes` client against kc's API server:
create, list, watch, patch, delete. Exits non-zero with a message on the
first thing that does not behave like Kubernetes."""

import sys
import threading

from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
apps = client.AppsV1Api()

pod = client.V1Pod(
    metadata=client.V1ObjectMeta(name="py-pod", labels={"app": "py"}),
    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
)
created = v1.create_namespaced_pod("default", pod)
assert created.metadata.uid, "created pod has no uid"
assert created.spec.restart_policy == "Always", created.spec.restart_policy
print("created", created.metadata.name)

pods = v1.list_namespaced_pod("default", label_selector="app=py")
assert [p.metadata.name for p in pods.items] == ["py-pod"], pods.items
rv = pods.metadata.resource_version

events = []


def watch_pods():
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=5):
        events.append((ev["type"], ev["object"].metadata.name, ev["object"].metadata.labels))
        if ev["type"] == "DELETED" and ev["object"].metadata.name == "py-pod":
            w.stop()


watcher = threading.Thread(target=watch_pods)
watcher.start()

patched = v1.patch_namespaced_pod("py-pod", "default", {"metadata": {"labels": {"patched": "yes"}}})
assert patched.metadata.labels["patched"] == "yes", patched.metadata.labels

dep = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="py-dep"),
    spec=client.V1DeploymentSpec(
        replicas=2,
        selector=client.V1LabelSelector(match_labels={"app": "py-dep"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "py-dep"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]),
        ),
    ),
)
apps.create_namespaced_deployment("default", dep)
scale = apps.read_namespaced_deployment_scale("py-dep", "default")
assert scale.spec.replicas == 2, scale
apps.patch_namespaced_deployment_scale("py-dep", "default", {"spec": {"replicas": 4}})
assert apps.read_namespaced_deployment("py-dep", "default").spec.replicas == 4

v1.delete_namespaced_pod("py-pod", "default")
watcher.join(10)
# The watch covers the namespace: the Deployment's pods (made by the
# controllers) show up too; py-pod's own events are what this checks.
# The scheduler may also write the pod's status (no node fits) after the
# list: such MODIFIED events carry the old labels and may come first.
own = [(e[0], e[2]) for e in events if e[1] == "py-pod"]
kinds = [k for k, _ in own]
assert kinds[-1] == "DELETED" and set(kinds[:-1]) <= {"MODIFIED"}, events
assert ("MODIFIED", {"app": "py", "patched": "yes"}) in own, events
print("watched", kinds)

try:
    v1.read_namespaced_pod("py-pod", "default")
    raise SystemExit("pod still exists after delete")
except client.exceptions.ApiException as e:
    assert e.status == 404, e.status
print("ok")
