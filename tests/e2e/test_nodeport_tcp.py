"""Service traffic beyond plain ClusterIP HTTP, through the real proxy: a
NodePort Service answers on the node port the API allocated (read back from
the Service, never chosen by the test; reached on loopback), and a Service
port marked TCP by appProtocol or by its name (`tcp-...`) is proxied as raw
bytes, so a non-HTTP echo server works through it (an HTTP proxy would
answer 400 to these bytes)."""
import json
import socket
import sys
import time

from conftest import wait_for
from test_pods import apply, get_pod, pod_manifest

POD_IP_ENV = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
POD_NAME_ENV = {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}


def service(name, ports, type_="ClusterIP"):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": type_, "selector": {"app": name}, "ports": ports}}


def get_service(server, name):
    _, svc = server.json("GET", "/api/v1/namespaces/default/services/" + name, expect=200)
    return svc


def wait_ready(server, name):
    wait_for(lambda: any(c["type"] == "Ready" and c["status"] == "True" for c in
                         (get_pod(server, name) or {}).get("status", {}).get("conditions", [])),
             60, name + " ready")


def http_get(port, host="127.0.0.1"):
    """One GET / ; (status, body) or None on a connection error."""
    s = socket.create_connection((host, port), timeout=5)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def try_(fn, *args):
    try:
        return fn(*args)
    except OSError:
        return None


def test_node_port_service_answers_on_its_allocated_port(server):
    pod = pod_manifest("np-web", [{
        "name": "web", "image": "v6/testapp", "command": ["v6", "testapp"],
        "ports": [{"name": "http", "containerPort": 8080}], "env": [POD_IP_ENV, POD_NAME_ENV],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                           "periodSeconds": 1}}])
    pod["metadata"]["labels"] = {"app": "np-web"}
    apply(server, pod)
    apply(server, service("np-web", [{"name": "http", "port": 80, "targetPort": "http"}],
                          "NodePort"))
    np = get_service(server, "np-web")["spec"]["ports"][0]["nodePort"]
    assert 30000 <= np <= 32767
    wait_ready(server, "np-web")
    r = wait_for(lambda: (lambda a: a if a and a[0] == 200 else None)(try_(http_get, np)),
                 30, "an answer on node port %d" % np)
    body = json.loads(r[1])
    assert body["pod"] == "np-web" and body["ip"] == get_pod(server, "np-web")["status"]["podIP"]
    # and the cluster IP answers the same app
    status, body = http_get(80, get_service(server, "np-web")["spec"]["clusterIP"])
    assert status == 200 and json.loads(body)["pod"] == "np-web"


ECHO = """
import os, socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((os.environ["POD_IP"], 7000))
s.listen(64)
print("listening", flush=True)
def serve(c):
    with c:
        while True:
            d = c.recv(4096)
            if not d:
                return
            c.sendall(b"echo:" + d)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def echo(host, port, payloads):
    """Sends each payload on one connection; returns the replies."""
    out = []
    with socket.create_connection((host, port), timeout=5) as s:
        for p in payloads:
            s.sendall(p)
            want = len(p) + 5
            got = b""
            deadline = time.monotonic() + 5
            while len(got) < want and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            out.append(got)
    return out


def test_tcp_ports_by_app_protocol_and_name_are_proxied_raw(server):
    pod = pod_manifest("echo", [{
        "name": "echo", "image": "python", "command": [sys.executable, "-c", ECHO],
        "ports": [{"containerPort": 7000}], "env": [POD_IP_ENV],
        "readinessProbe": {"tcpSocket": {"port": 7000}, "periodSeconds": 1}}])
    pod["metadata"]["labels"] = {"app": "echo"}
    apply(server, pod)
    # no name, no appProtocol and port 80 would be HTTP: each port says TCP its own way
    apply(server, service("echo", [
        {"name": "tcp-echo", "port": 80, "targetPort": 7000},
        {"name": "raw", "port": 81, "targetPort": 7000, "appProtocol": "tcp"}], "NodePort"))
    wait_ready(server, "echo")
    svc = get_service(server, "echo")
    ip = svc["spec"]["clusterIP"]
    node_ports = [p["nodePort"] for p in svc["spec"]["ports"]]
    payloads = [b"\x00\x01 not http at all\r\n\r\n", b"PING\n", bytes(range(256)) * 4]
    targets = [(ip, 80), (ip, 81)] + [("127.0.0.1", np) for np in node_ports]
    for host, port in targets:
        got = wait_for(lambda: try_(echo, host, port, payloads[:1]), 30,
                       "the echo through %s:%d" % (host, port))
        assert got == [b"echo:" + payloads[0]], (host, port, got)
        assert echo(host, port, payloads) == [b"echo:" + p for p in payloads], (host, port)
