"""An aggregated API server for kc's tests: HTTPS on 127.0.0.1 serving
the group e2e.example.com/v1 with one read-only kind, Flunder. Each
Flunder says, in an annotation, which user the aggregator named in
X-Remote-User. Prints "listening on <port>" once it serves."""

import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CERT, KEY = sys.argv[1], sys.argv[2]
GV = "e2e.example.com/v1"
RESOURCES = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GV,
             "resources": [{"name": "flunders", "singularName": "flunder", "namespaced": True,
                            "kind": "Flunder", "verbs": ["get", "list"], "shortNames": ["fl"]}]}


def flunder(ns, name, user):
    return {"apiVersion": GV, "kind": "Flunder",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-01-01T00:00:00Z",
                         "annotations": {"seen-user": user}}}


class Handler(BaseHTTPRequestHandler):
    def answer(self, code, doc):
        out = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        user = self.headers.get("X-Remote-User", "")
        if parts == ["apis", "e2e.example.com", "v1"]:
            return self.answer(200, RESOURCES)
        if parts[:4] == ["apis", "e2e.example.com", "v1", "namespaces"] and len(parts) >= 6 \
                and parts[5] == "flunders":
            ns = parts[4]
            if len(parts) == 6:
                return self.answer(200, {"apiVersion": GV, "kind": "FlunderList", "metadata": {},
                                         "items": [flunder(ns, "flunder-1", user)]})
            if len(parts) == 7 and parts[6] == "flunder-1":
                return self.answer(200, flunder(ns, "flunder-1", user))
        self.answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                          "reason": "NotFound", "code": 404, "message": "not found: " + self.path})

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("listening on", server.server_address[1], flush=True)
server.serve_forever()
