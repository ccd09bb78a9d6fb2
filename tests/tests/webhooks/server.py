"""An admission webhook server for kc's tests: HTTPS on 127.0.0.1 (the
certificate and key given), one behaviour per path. Prints
"listening on <port>" once it serves. Standard library only."""

import base64
import json
import os
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CERT, KEY = sys.argv[1], sys.argv[2]
# Reviews /record saw, one JSON line each, beside the certificate.
LOG = os.path.join(os.path.dirname(CERT), "requests.jsonl")


def patch(ops):
    return {"patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(ops).encode()).decode()}


def label_ops(obj, key, value):
    if not (obj.get("metadata") or {}).get("labels"):
        return [{"op": "add", "path": "/metadata/labels", "value": {key: value}}]
    return [{"op": "add", "path": "/metadata/labels/" + key, "value": value}]


def data_ops(obj, key, value):
    if not obj.get("data"):
        return [{"op": "add", "path": "/data", "value": {key: value}}]
    return [{"op": "add", "path": "/data/" + key, "value": value}]


def non_compliant(obj):
    obj = obj or {}
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return "deny" in (obj.get("data") or {}) or labels.get("webhook-e2e") == "deny"


def review(path, req):
    obj = req.get("object") or {}
    old = req.get("oldObject") or {}
    if path == "/validate":
        if non_compliant(obj or old):
            return {"allowed": False, "status": {
                "code": 403, "message": "the object carries what the e2e webhook refuses"}}
        return {"allowed": True, "warnings": ["validated by the e2e webhook"]}
    if path == "/deny-all":
        return {"allowed": False, "status": {"message": "denied by the e2e webhook"}}
    if path == "/label":
        return dict(allowed=True, **patch(label_ops(obj, "mutated", "yes")))
    if path == "/stage1":
        if "mutation-start" in (obj.get("data") or {}):
            return dict(allowed=True, **patch(data_ops(obj, "mutation-stage-1", "yes")))
        return {"allowed": True}
    if path == "/stage2":
        if "mutation-stage-1" in (obj.get("data") or {}):
            return dict(allowed=True, **patch(data_ops(obj, "mutation-stage-2", "yes")))
        return {"allowed": True}
    if path == "/init":
        init = {"name": "webhook-added-init-container", "image": "busybox"}
        return dict(allowed=True, **patch([{"op": "add", "path": "/spec/initContainers",
                                            "value": [init]}]))
    if path == "/slow":
        time.sleep(5)
        return {"allowed": True}
    if path == "/record":
        with open(LOG, "a") as f:
            f.write(json.dumps(req) + "\n")
        return {"allowed": True}
    return None


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        path = self.path.split("?")[0]
        if path == "/garbage":
            out = b"this is not an AdmissionReview"
        else:
            req = json.loads(body)["request"]
            response = review(path, req)
            if response is None:
                self.send_response(404)
                self.end_headers()
                return
            response["uid"] = req["uid"]
            out = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                              "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A client that gave up (a webhook timeout under test) is expected.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ssl.SSLError)):
            super().handle_error(request, client_address)


server = Server(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("listening on", server.server_address[1], flush=True)
server.serve_forever()
