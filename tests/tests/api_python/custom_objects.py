"""The official Python `kubernetes` client with a CustomResourceDefinition:
ApiextensionsV1Api creates it, CustomObjectsApi creates, lists, patches
(also the status subresource), watches and deletes custom objects. Exits
non-zero with a message on the first thing that does not behave like
Kubernetes."""

import sys
import threading
import time

from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
ext = client.ApiextensionsV1Api()
objs = client.CustomObjectsApi()
G, V, P = "py.example.com", "v1", "gadgets"

crd = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{P}.{G}"},
    "spec": {
        "group": G,
        "scope": "Namespaced",
        "names": {"plural": P, "singular": "gadget", "kind": "Gadget", "shortNames": ["gd"]},
        "versions": [{
            "name": V, "served": True, "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "required": ["size"], "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "color": {"type": "string", "default": "blue"}}},
                "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}},
        }],
    },
}
ext.create_custom_resource_definition(crd)
deadline = time.time() + 30
while True:
    got = ext.read_custom_resource_definition(f"{P}.{G}")
    conds = {c.type: c.status for c in ((got.status and got.status.conditions) or [])}
    if conds.get("Established") == "True":
        break
    assert time.time() < deadline, f"not Established: {got.status}"
    time.sleep(0.1)
print("established", sorted(conds))

events = []
def follow():
    w = watch.Watch()
    for e in w.stream(objs.list_namespaced_custom_object, G, V, "default", P, timeout_seconds=8):
        events.append((e["type"], e["object"]["metadata"]["name"]))
        if e["type"] == "DELETED":
            w.stop()
watcher = threading.Thread(target=follow)
watcher.start()
time.sleep(0.5)

body = {"apiVersion": f"{G}/{V}", "kind": "Gadget", "metadata": {"name": "g1"}, "spec": {"size": 2}}
made = objs.create_namespaced_custom_object(G, V, "default", P, body)
assert made["spec"]["color"] == "blue", made
assert made["metadata"]["uid"], made
try:
    objs.create_namespaced_custom_object(G, V, "default", P,
        {"apiVersion": f"{G}/{V}", "kind": "Gadget", "metadata": {"name": "bad"}, "spec": {"size": 0}})
    raise SystemExit("size 0 was accepted")
except client.exceptions.ApiException as e:
    assert e.status == 422, e.status
    assert "spec.size in body should be greater than or equal to 1" in e.body, e.body
listed = objs.list_namespaced_custom_object(G, V, "default", P)
assert [i["metadata"]["name"] for i in listed["items"]] == ["g1"], listed
assert listed["kind"] == "GadgetList", listed["kind"]
objs.patch_namespaced_custom_object(G, V, "default", P, "g1", {"spec": {"size": 3}})
objs.patch_namespaced_custom_object_status(G, V, "default", P, "g1", {"status": {"phase": "Ready"}})
now = objs.get_namespaced_custom_object(G, V, "default", P, "g1")
assert now["spec"]["size"] == 3 and now["status"]["phase"] == "Ready", now
assert now["metadata"]["generation"] == 2, now["metadata"]
objs.delete_namespaced_custom_object(G, V, "default", P, "g1")
watcher.join(10)
kinds = [k for k, n in events if n == "g1"]
assert kinds[0] == "ADDED" and kinds[-1] == "DELETED" and "MODIFIED" in kinds, events
print("watched", kinds)

ext.delete_custom_resource_definition(f"{P}.{G}")
deadline = time.time() + 30
while True:
    try:
        ext.read_custom_resource_definition(f"{P}.{G}")
    except client.exceptions.ApiException as e:
        assert e.status == 404, e.status
        break
    assert time.time() < deadline, "the CRD was not deleted"
    time.sleep(0.1)
print("ok")
