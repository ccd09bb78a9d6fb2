"""What the official Python `kubernetes` client and a raw HTTP/1.1 client
hit on kc, each checked as Kubernetes behaves: `/version/`, DELETE answers,
early error replies on a kept-alive connection, oversized bodies,
unsupported field selectors, JSON-patch `test` of null, and streaming lists
(`sendInitialEvents`). Exits non-zero with a message on the first
difference; prints one line per check and `ok` at the end."""

import http.client
import json
import ssl
import sys
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()
apps = client.AppsV1Api()
cfg = client.Configuration.get_default_copy()


def expect_error(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ApiException as e:
        assert e.status == code, f"expected {code}, got {e.status}: {e.body}"
        return json.loads(e.body)
    raise AssertionError(f"expected a {code} error, the call succeeded")


# /version and /version/ (VersionApi().get_code() asks for the latter).
info = client.VersionApi().get_code()
assert info.major == "1" and info.git_version, info
print("version/ ok", info.git_version)

# An immediate DELETE answers a Status naming what went; a pod (which
# lingers for its grace period on a node) answers the object.
cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="compat-cm"), data={"a": "1"})
made = v1.create_namespaced_config_map("default", cm)

def as_dict(answer):
    """The client returns a DELETE's answer as a plain dict (an object or a Status)."""
    return answer if isinstance(answer, dict) else client.ApiClient().sanitize_for_serialization(answer)


status = as_dict(v1.delete_namespaced_config_map("compat-cm", "default"))
assert status["kind"] == "Status" and status["status"] == "Success", status
assert status["details"]["name"] == "compat-cm" and status["details"]["kind"] == "configmaps", status
assert status["details"]["uid"] == made.metadata.uid, status
dep = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="compat-dep"),
    spec=client.V1DeploymentSpec(
        replicas=0,
        selector=client.V1LabelSelector(match_labels={"app": "compat"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "compat"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
        ),
    ),
)
apps.create_namespaced_deployment("default", dep)
status = as_dict(apps.delete_namespaced_deployment("compat-dep", "default"))
assert status["status"] == "Success" and status["details"]["group"] == "apps", status
assert status["details"]["kind"] == "deployments", status
pod = client.V1Pod(
    metadata=client.V1ObjectMeta(name="compat-pod"),
    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
)
v1.create_namespaced_pod("default", pod)
gone = as_dict(v1.delete_namespaced_pod("compat-pod", "default"))
assert gone["kind"] == "Pod" and gone["metadata"]["name"] == "compat-pod", gone
print("delete status ok")


# A raw HTTP/1.1 connection, kept alive: an early error reply (a resource
# kc does not serve) to a POST whose body comes late, or is large, must
# leave the connection usable for the next request.
def connection():
    ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    if cfg.cert_file:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    host = cfg.host.split("://", 1)[1]
    name, port = host.rsplit(":", 1)
    return http.client.HTTPSConnection(name, int(port), context=ctx, timeout=10)


def auth_headers():
    token = cfg.api_key.get("authorization") if cfg.api_key else None
    return {"Authorization": token} if token else {}


conn = connection()
for delay, size in [(0.2, 100), (0, 100_000), (0.2, 100_000)]:
    body = b'{"kind":"Thing","metadata":{"name":"x"},"pad":"' + b"p" * size + b'"}'
    conn.putrequest("POST", "/api/v1/namespaces/default/nosuchthings")
    for k, v in {**auth_headers(), "Content-Type": "application/json", "Content-Length": str(len(body))}.items():
        conn.putheader(k, v)
    conn.endheaders()
    time.sleep(delay)
    conn.send(body)
    resp = conn.getresponse()
    answer = resp.read()
    assert resp.status == 404, (resp.status, answer[:200])
    conn.request("GET", "/version", headers=auth_headers())
    again = conn.getresponse()
    assert again.status == 200, (again.status, again.read()[:200])
    again.read()
print("keep-alive after early error ok")

# 20 MB: 413 with kube-apiserver's message, not a dropped connection.
big = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="huge"), data={"a": "x" * (20 << 20)})
err = expect_error(413, v1.create_namespaced_config_map, "default", big)
assert err["message"] == "Request entity too large: limit is 3145728", err["message"]
assert err["reason"] == "RequestEntityTooLarge", err
# Under the body limit but over the store's: a clear 422.
two = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="two-mib"), data={"a": "x" * (2 << 20)})
err = expect_error(422, v1.create_namespaced_config_map, "default", two)
assert "too large" in err["message"], err
expect_error(404, v1.read_namespaced_config_map, "two-mib", "default")
print("too large ok")

# A field label the kind does not support is a 400.
err = expect_error(400, v1.list_namespaced_pod, "default", field_selector="spec.noSuchField=x")
assert err["message"] == "field label not supported: spec.noSuchField", err["message"]
v1.list_namespaced_pod("default", field_selector="spec.nodeName=n1,status.phase!=Failed")
print("field selector ok")

# JSON patch: `test` of null on a missing member passes (kube-runtime's
# finalizer helper starts so); on a present member it fails (422).
v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="fin")))
patched = v1.patch_namespaced_config_map(
    "fin",
    "default",
    [
        {"op": "test", "path": "/metadata/finalizers", "value": None},
        {"op": "add", "path": "/metadata/finalizers", "value": ["a/b"]},
    ],
)
assert patched.metadata.finalizers == ["a/b"], patched.metadata
expect_error(
    422,
    v1.patch_namespaced_config_map,
    "fin",
    "default",
    [{"op": "test", "path": "/metadata/finalizers", "value": None}],
)
v1.patch_namespaced_config_map("fin", "default", [{"op": "remove", "path": "/metadata/finalizers"}])
print("json patch test null ok")


# A streaming list: the current objects as ADDED, then a BOOKMARK
# annotated k8s.io/initial-events-end, then changes.
def watch_lines(query):
    c = connection()
    c.request("GET", "/api/v1/namespaces/default/configmaps?" + query, headers=auth_headers())
    return c, c.getresponse()


v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="listed")))
c, resp = watch_lines(
    "watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=5"
)
assert resp.status == 200, (resp.status, resp.read()[:300])
seen = []
while True:
    line = resp.readline()
    assert line, f"the stream ended before the initial-events bookmark: {seen}"
    ev = json.loads(line)
    meta = ev["object"]["metadata"]
    seen.append((ev["type"], meta.get("name")))
    if ev["type"] == "BOOKMARK":
        assert meta["annotations"]["k8s.io/initial-events-end"] == "true", ev
        assert int(meta["resourceVersion"]) > 0, ev
        break
assert ("ADDED", "listed") in seen and ("ADDED", "fin") in seen, seen
v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="later")))
ev = json.loads(resp.readline())
assert (ev["type"], ev["object"]["metadata"]["name"]) == ("ADDED", "later"), ev
c.close()
c, resp = watch_lines("watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan")
body = json.loads(resp.read())
assert resp.status == 422 and "allowWatchBookmarks" in body["message"], (resp.status, body)
print("send initial events ok")



# Metadata only, as metadata informers ask: PartialObjectMetadata(List).
meta_accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
c = connection()
c.request("GET", "/api/v1/namespaces/default/configmaps", headers={**auth_headers(), "Accept": meta_accept})
resp = c.getresponse()
raw = resp.read()
assert resp.status == 200 and raw.endswith(b"\n"), (resp.status, raw[-50:])
plist = json.loads(raw)
assert plist["kind"] == "PartialObjectMetadataList" and plist["apiVersion"] == "meta.k8s.io/v1", plist
listed = [i for i in plist["items"] if i["metadata"]["name"] == "listed"]
assert listed and "data" not in listed[0] and listed[0]["kind"] == "PartialObjectMetadata", listed
c.request(
    "GET",
    "/api/v1/namespaces/default/configmaps/listed",
    headers={**auth_headers(), "Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"},
)
resp = c.getresponse()
one = json.loads(resp.read())
assert one["kind"] == "PartialObjectMetadata" and one["metadata"]["name"] == "listed", one
# A Status body in Kubernetes' field order, ending in a newline.
c.request("GET", "/api/v1/namespaces/default/configmaps/nosuch", headers=auth_headers())
resp = c.getresponse()
raw = resp.read()
assert resp.status == 404 and raw.endswith(b"}\n"), raw
assert list(json.loads(raw).keys()) == ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"], raw
c.close()
print("partial object metadata and Status order ok")

# Timestamps as Kubernetes decodes them: Time stored in UTC to the second,
# MicroTime only with exactly six fractional digits.
def post(path, obj):
    c = connection()
    c.request("POST", path, body=json.dumps(obj), headers={**auth_headers(), "Content-Type": "application/json"})
    resp = c.getresponse()
    answer = json.loads(resp.read())
    c.close()
    return resp.status, answer


leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
code, body = post(leases, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": {"name": "coarse"}, "spec": {"renewTime": "2026-12-07T23:00:00Z"}})
assert code == 400 and "cannot be handled as a Lease: parsing time" in body["message"], (code, body)
code, body = post(leases, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": {"name": "micro"}, "spec": {"renewTime": "2026-12-08T00:00:00.123456+01:00"}})
assert code == 201 and body["spec"]["renewTime"] == "2026-12-07T23:00:00.123456Z", (code, body)
code, body = post("/api/v1/namespaces/default/events", {
    "apiVersion": "v1", "kind": "Event", "metadata": {"name": "ev1"},
    "involvedObject": {"kind": "Pod", "name": "x", "namespace": "default"},
    "reason": "Test", "message": "m", "firstTimestamp": "2026-12-08T00:00:00.987+01:00",
})
assert code == 201 and body["firstTimestamp"] == "2026-12-07T23:00:00Z", (code, body)
print("timestamps ok")

# events.k8s.io/v1 (kube-runtime's and client-go's event recorders) is a
# view of core/v1 Events: what one writes the other reads.
import datetime

ev1 = client.EventsV1Api()
when = datetime.datetime(2026, 12, 7, 23, 0, 0, 123456, tzinfo=datetime.timezone.utc)
made = ev1.create_namespaced_event("default", client.EventsV1Event(
    metadata=client.V1ObjectMeta(name="rec1"),
    event_time=when, action="Reconcile", reason="Synced", type="Normal",
    note="reconciled web", reporting_controller="kc-test-controller", reporting_instance="kc-test-1",
    regarding=client.V1ObjectReference(kind="ConfigMap", name="web", namespace="default"),
))
assert made.note == "reconciled web" and made.regarding.name == "web", made
core_ev = v1.read_namespaced_event("rec1", "default")
assert core_ev.message == "reconciled web" and core_ev.involved_object.name == "web", core_ev
assert core_ev.reporting_component == "kc-test-controller", core_ev
listed = ev1.list_namespaced_event("default", field_selector="regarding.name=web")
assert [e.metadata.name for e in listed.items] == ["rec1"], listed.items
patched = ev1.patch_namespaced_event("rec1", "default", {"series": {"count": 2, "lastObservedTime": "2026-12-07T23:01:00.000000Z"}})
assert patched.series.count == 2, patched
assert v1.read_namespaced_event("rec1", "default").series.count == 2
back = ev1.read_namespaced_event(core_ev.metadata.name, "default")
assert back.reporting_controller == "kc-test-controller", back
status = as_dict(ev1.delete_namespaced_event("rec1", "default"))
assert status["status"] == "Success", status
expect_error(404, v1.read_namespaced_event, "rec1", "default")
print("events.k8s.io ok")

# kube-root-ca.crt in every namespace, new ones too, recreated when deleted.
def root_ca(ns, want_present=True, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            return v1.read_namespaced_config_map("kube-root-ca.crt", ns)
        except ApiException as e:
            assert e.status == 404, e
        time.sleep(0.1)
    raise AssertionError(f"no kube-root-ca.crt in {ns} after {timeout} s")


with open(cfg.ssl_ca_cert) as f:
    ca_pem = f.read()
for ns in ["default", "kube-system"]:
    assert root_ca(ns).data["ca.crt"].strip() == ca_pem.strip(), ns
v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="compat-ns")))
assert root_ca("compat-ns").data["ca.crt"].strip() == ca_pem.strip()
old_uid = root_ca("compat-ns").metadata.uid
v1.delete_namespaced_config_map("kube-root-ca.crt", "compat-ns")
deadline = time.time() + 20
while root_ca("compat-ns").metadata.uid == old_uid:
    assert time.time() < deadline, "kube-root-ca.crt was not recreated"
    time.sleep(0.1)
v1.patch_namespaced_config_map("kube-root-ca.crt", "compat-ns", {"data": {"ca.crt": "tampered"}})
deadline = time.time() + 20
while root_ca("compat-ns").data["ca.crt"].strip() != ca_pem.strip():
    assert time.time() < deadline, "an edited kube-root-ca.crt was not put back"
    time.sleep(0.1)
print("kube-root-ca.crt ok")

print("ok")
