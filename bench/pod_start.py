#!/usr/bin/env python3
"""Pod start latency through the API (used by bench/pod_start.sh).

pod_start.py KUBECONFIG PODS NAMESPACE IMAGE [INTERVAL_MS]

Opens a watch on the namespace's pods, then creates PODS single-container
pods one after another through the REST API (one keep-alive connection)
(INTERVAL_MS apart, default 0: a burst) and records for each the time from just before its create request was
sent to the watch event that first shows it Running. Prints p50/p90/p99/max
and the time to the last Running. Standard library only (plus PyYAML).
"""
import base64
import http.client
import json
import os
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse

import yaml


def connect(kubeconfig):
    cfg = yaml.safe_load(open(kubeconfig))
    cluster = cfg["clusters"][0]["cluster"]
    user = cfg["users"][0]["user"]
    tmp = tempfile.mkdtemp(prefix="kc-podstart-")
    paths = {}
    for key in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
        path = os.path.join(tmp, key)
        with open(path, "wb") as f:
            f.write(base64.b64decode(user.get(key) or cluster.get(key)))
        paths[key] = path
    ctx = ssl.create_default_context(cafile=paths["certificate-authority-data"])
    ctx.load_cert_chain(paths["client-certificate-data"], paths["client-key-data"])
    url = urllib.parse.urlparse(cluster["server"])

    def conn(timeout=60):
        return http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=timeout)

    return conn


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1)]


def main():
    kubeconfig, pods, ns, image = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    interval = float(sys.argv[5]) / 1000 if len(sys.argv) > 5 else 0.0
    conn = connect(kubeconfig)
    sent, bound, running = {}, {}, {}
    done = threading.Event()
    ready = threading.Event()

    def watch():
        c = conn(timeout=600)
        c.request("GET", f"/api/v1/namespaces/{ns}/pods?watch=1&allowWatchBookmarks=false")
        r = c.getresponse()
        if r.status != 200:
            sys.exit(f"watch: HTTP {r.status}: {r.read()[:300]}")
        ready.set()
        while not done.is_set():
            line = r.readline()
            if not line:
                break
            ev = json.loads(line)
            obj = ev.get("object", {})
            name = obj.get("metadata", {}).get("name", "")
            if obj.get("spec", {}).get("nodeName") and name not in bound:
                bound[name] = time.monotonic()
            if obj.get("status", {}).get("phase") == "Running" and name not in running:
                running[name] = time.monotonic()
                if len(running) >= pods:
                    done.set()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    if not ready.wait(30):
        sys.exit("watch did not start")
    c = conn()
    start = time.monotonic()
    for i in range(pods):
        name = f"start-{i}"
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "containers": [{
                    "name": "c",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "3600"],
                }],
            },
        }
        sent[name] = time.monotonic()
        c.request("POST", f"/api/v1/namespaces/{ns}/pods", json.dumps(body),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 201:
            sys.exit(f"create {name}: HTTP {r.status}: {data[:300]}")
        if interval:
            time.sleep(interval)
    created = time.monotonic() - start
    if not done.wait(300):
        sys.exit(f"only {len(running)} of {pods} pods Running after 300 s")
    lat = [(running[n] - sent[n]) * 1000 for n in sent]
    to_bind = [(bound[n] - sent[n]) * 1000 for n in sent]
    to_run = [(running[n] - bound[n]) * 1000 for n in sent]
    last = (max(running.values()) - start)
    print(f"pod_start: {pods} pods created in {created * 1000:.0f} ms, all Running after {last:.2f} s")
    print("pod_start: create -> Running (watch), ms: "
          f"p50 {percentile(lat, 50):.0f}  p90 {percentile(lat, 90):.0f}  "
          f"p99 {percentile(lat, 99):.0f}  max {max(lat):.0f}  min {min(lat):.0f}")
    for what, v in (("create -> bound (scheduler)", to_bind), ("bound -> Running (node)", to_run)):
        print(f"pod_start:   {what}, ms: p50 {percentile(v, 50):.0f}  "
              f"p99 {percentile(v, 99):.0f}  max {max(v):.0f}")


if __name__ == "__main__":
    main()
