"""The official Python `kubernetes` client's streams against a pod on a
kc worker: interactive exec with stdin written as `str` (WebSocket TEXT
frames) and as bytes, and port-forward over the WebSocket channel protocol
(what `kubernetes.stream.portforward` speaks). Arguments: kubeconfig, pod.
Prints one line per check and `ok` at the end."""

import json
import sys
import time

from kubernetes import client, config
from kubernetes.stream import portforward, stream

config.load_kube_config(config_file=sys.argv[1])
pod = sys.argv[2]
v1 = client.CoreV1Api()



def interactive(command, tty):
    """An exec of `command` in the pod with stdin open, not preloaded."""
    return stream(
        v1.connect_get_namespaced_pod_exec,
        pod,
        "default",
        command=command,
        stdin=True,
        stdout=True,
        stderr=True,
        tty=tty,
        _preload_content=False,
    )


resp = interactive(["cat"], tty=False)
resp.write_stdin("as text\n")
line = resp.readline_stdout(timeout=10)
assert line == "as text", repr(line)
resp.write_stdin(b"as bytes\n")
line = resp.readline_stdout(timeout=10)
assert line == "as bytes", repr(line)
resp.close()
print("exec stdin text and binary ok")



def read_until(resp, needle, timeout=10):
    seen = ""
    deadline = time.time() + timeout
    while needle not in seen:
        assert time.time() < deadline, f"no {needle!r} in {seen!r}"
        resp.update(timeout=1)
        if resp.peek_stdout():
            seen += resp.read_stdout()
    return seen


# A terminal: the first resize sets the pty's size before the shell reads
# it, a later one changes it (the pty used to stay 0x0).
tty = interactive(["sh"], tty=True)
tty.write_channel(4, json.dumps({"Width": 100, "Height": 40}))
tty.write_stdin("stty size\n")
read_until(tty, "40 100")
tty.write_channel(4, json.dumps({"Width": 120, "Height": 50}))
time.sleep(0.3)
tty.write_stdin("stty size\n")
read_until(tty, "50 120")
tty.write_stdin("exit\n")
tty.close()
print("tty resize ok")

pf = portforward(v1.connect_get_namespaced_pod_portforward, pod, "default", ports="8080")
sock = pf.socket(8080)
sock.setblocking(True)
sock.sendall(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")
reply = b""
while True:
    chunk = sock.recv(4096)
    if not chunk:
        break
    reply += chunk
sock.close()
assert b"200 OK" in reply and b"hello from the pod" in reply, reply
assert pf.error(8080) is None, pf.error(8080)
print("port-forward over channels ok")

print("ok")
