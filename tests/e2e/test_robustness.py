"""Adversarial end-to-end tests: hostile or careless input (manifests, raw
HTTP bytes, abusive connections, watches, races, deletes, CLI misuse) must
get a precise Kubernetes-like error, change nothing, and leave the server
healthy. Every test is bounded in time; every socket and process it opens is
closed or killed by the fixtures."""
import http.client
import json
import os
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

import conftest
from conftest import write

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


# ---- helpers ---------------------------------------------------------------

def cm(name, ns=None, data=None, **meta):
    md = {"name": name}
    if ns:
        md["namespace"] = ns
    md.update(meta)
    o = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md}
    if data is not None:
        o["data"] = data
    return o


def deployment(name, replicas="1", port="80"):
    return """apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
spec:
  replicas: %s
  selector:
    matchLabels: {app: w}
  template:
    metadata:
      labels: {app: w}
    spec:
      containers:
      - name: c
        image: nginx:1.25
        ports:
        - containerPort: %s
""" % (name, replicas, port)


def assert_healthy(server):
    assert server.proc is not None and server.proc.poll() is None, \
        "server died: " + server.log()
    status, _, body = server.request("GET", "/healthz", timeout=5)
    assert status == 200 and body == b"ok", (status, body)


def names(server, path=CMS):
    status, body = server.json("GET", path, expect=200)
    return sorted(i["metadata"]["name"] for i in body["items"])


def raw(server, data, timeout=3.0, shut=False):
    """Sends bytes on a fresh connection; returns everything read until the
    server closes or `timeout` passes without data."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


def status_of(resp):
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", resp)
    return int(m.group(1)) if m else None


def body_of(resp):
    return resp.partition(b"\r\n\r\n")[2]


def assert_status_body(resp, code):
    assert status_of(resp) == code, resp[:500]
    st = json.loads(body_of(resp))
    assert st["kind"] == "Status" and st["code"] == code, st
    return st


def rst_close(s):
    """Closes a socket with a TCP RST instead of a FIN (an abrupt client)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def open_watch(server, path, timeout=10):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    f = s.makefile("rb")
    status = f.readline()
    assert b" 200 " in status, status + f.read1(2000)
    while f.readline() not in (b"\r\n", b""):
        pass
    return s, f


class Watch:
    """Reads newline-delimited watch events from a chunked stream."""

    def __init__(self, server, path, timeout=10):
        self.sock, self.f = open_watch(server, path, timeout)
        self.buf = b""
        self.ended = False

    def events(self, n, timeout=10):
        evs = []
        deadline = time.time() + timeout
        while len(evs) < n and time.time() < deadline and not self.ended:
            while b"\n" in self.buf and len(evs) < n:
                line, self.buf = self.buf.split(b"\n", 1)
                if line.strip():
                    evs.append(json.loads(line))
            if len(evs) >= n:
                break
            self.sock.settimeout(max(0.05, deadline - time.time()))
            try:
                size_line = self.f.readline()
            except socket.timeout:
                break
            if not size_line:
                self.ended = True
                break
            size = int(size_line.strip(), 16)
            if size == 0:
                self.ended = True
                self.f.readline()
                break
            self.buf += self.f.read(size)
            self.f.readline()
        while b"\n" in self.buf and len(evs) < n:
            line, self.buf = self.buf.split(b"\n", 1)
            if line.strip():
                evs.append(json.loads(line))
        return evs

    def close(self):
        try:
            self.f.close()
        finally:
            self.sock.close()


def rv(obj):
    return int(obj["metadata"]["resourceVersion"])


# ---- bad manifests through the CLI -----------------------------------------

BAD_YAML = {
    "tabs": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: a\n",
    "indent": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n   namespace: x\n",
    "unclosed-quote": 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "a\ndata:\n  k: v\n',
    "duplicate-key": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n",
    "scalar": "just a scalar\n",
    "unknown-apiversion": "apiVersion: v9\nkind: ConfigMap\nmetadata:\n  name: a\n",
    "unknown-kind": "apiVersion: v1\nkind: Foo\nmetadata:\n  name: a\n",
    "uppercase-name": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Abc\n",
    "name-254": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n" % ("a" * 254),
    "namespace-dot": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a.b\n",
    "label-key": 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    "bad key!": v\n',
    "label-value": 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    k: "bad value!"\n',
    "label-value-64": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    k: %s\n" % ("v" * 64),
    "negative-replicas": deployment("d", replicas="-1"),
    "string-replicas": deployment("d", replicas='"3"'),
    "float-replicas": deployment("d", replicas="1.5"),
    "port-0": deployment("d", port="0"),
    "port-65536": deployment("d", port="65536"),
    "port-string": deployment("d", port="http"),
}

# The field path each error must name (None: a YAML syntax error, no field).
BAD_YAML_FIELD = {
    "duplicate-key": "metadata.name", "uppercase-name": "metadata.name",
    "name-254": "metadata.name", "namespace-dot": "metadata.name",
    "label-key": "metadata.labels", "label-value": "metadata.labels.k",
    "label-value-64": "metadata.labels.k", "unknown-kind": "kind",
    "unknown-apiversion": "kind",
    "negative-replicas": "spec.replicas", "string-replicas": "spec.replicas",
    "float-replicas": "spec.replicas",
    "port-0": "spec.template.spec.containers[0].ports[0].containerPort",
    "port-65536": "spec.template.spec.containers[0].ports[0].containerPort",
    "port-string": "spec.template.spec.containers[0].ports[0].containerPort",
}


@pytest.mark.parametrize("case", sorted(BAD_YAML))
def test_cli_bad_manifest_is_precise_and_applies_nothing(server, workdir, case):
    before_cm, before_dep = names(server), names(server, DEPLOYS)
    before_ns = names(server, "/api/v1/namespaces")
    path = write(workdir, case + ".yaml", BAD_YAML[case])
    p = server.v6("apply", "-f", path, timeout=20)
    assert p.returncode == 1, (p.stdout, p.stderr)
    first = p.stderr.splitlines()[0]
    assert re.match(re.escape(path) + r":\d+:\d+: \S", first), p.stderr
    field = BAD_YAML_FIELD.get(case)
    if field:
        assert first.split(": ", 2)[1].startswith(field), first
    assert "created" not in p.stdout and "configured" not in p.stdout
    assert names(server) == before_cm and names(server, DEPLOYS) == before_dep
    assert names(server, "/api/v1/namespaces") == before_ns
    assert_healthy(server)


def test_cli_binary_garbage_manifest(server, workdir):
    path = os.path.join(workdir, "garbage.yaml")
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * 8 + b"\xff\xfe\x00\x01")
    p = server.v6("apply", "-f", path, timeout=20)
    assert p.returncode == 1
    assert re.match(re.escape(path) + r":\d+:\d+: ", p.stderr), p.stderr
    assert names(server) == []


def test_cli_replicas_beyond_int32_says_out_of_range(server, workdir):
    # Kubernetes: replicas is int32; 2147483648 is a decoding error ("cannot
    # unmarshal number 2147483648 ... of type int32"), not a negative number.
    path = write(workdir, "d.yaml", deployment("big", replicas="2147483648"))
    p = server.v6("apply", "-f", path)
    assert p.returncode == 1
    assert re.match(re.escape(path) + r":\d+:\d+: spec.replicas: ", p.stderr), p.stderr
    assert "greater than or equal to 0" not in p.stderr, p.stderr
    assert names(server, DEPLOYS) == []


def test_cli_deeply_nested_yaml_is_refused_quickly(server, workdir):
    n = 10000
    flow = write(workdir, "flow.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\n"
                 "  annotations:\n    x: " + "[" * n + "]" * n + "\n")
    block = write(workdir, "block.yaml",
                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n" +
                  "".join("  " * (i + 1) + "a:\n" for i in range(2000)))
    for path in (flow, block):
        t0 = time.time()
        p = server.v6("apply", "-f", path, timeout=20)
        assert time.time() - t0 < 10
        assert p.returncode == 1
        assert re.match(re.escape(path) + r":\d+:\d+: ", p.stderr), p.stderr[:300]
        assert "nesting" in p.stderr
    assert names(server) == []


BOMB = """apiVersion: v1
kind: ConfigMap
metadata:
  name: bomb
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_cli_yaml_alias_bomb_is_refused_quickly(server, workdir):
    path = write(workdir, "bomb.yaml", BOMB)
    t0 = time.time()
    p = server.v6("apply", "-f", path, timeout=20)
    assert time.time() - t0 < 10
    assert p.returncode == 1
    assert re.match(re.escape(path) + r":\d+:\d+: data\.", p.stderr), p.stderr
    assert "alias" in p.stderr
    assert names(server) == []


def test_cli_5mb_manifest_is_refused(server, workdir):
    path = write(workdir, "big.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                 "  name: big\ndata:\n  k: " + "x" * (5 << 20) + "\n")
    p = server.v6("apply", "-f", path, timeout=30)
    assert p.returncode == 1
    assert re.match(re.escape(path) + r":\d+:\d+: ", p.stderr), p.stderr[:300]
    assert "1048576" in p.stderr
    assert names(server) == []
    assert_healthy(server)


def test_cli_json_manifest_and_list_kind_are_applied(server, workdir):
    j = write(workdir, "cm.json", json.dumps(cm("from-json", data={"a": "b"})))
    lst = write(workdir, "list.yaml", "apiVersion: v1\nkind: List\nitems:\n"
                "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: l1\n"
                "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: l2\n")
    p = server.v6("apply", "-f", j, check=True)
    assert "configmap/from-json created" in p.stdout
    p = server.v6("apply", "-f", lst, check=True)
    assert "configmap/l1 created" in p.stdout and "configmap/l2 created" in p.stdout
    assert names(server) == ["from-json", "l1", "l2"]
    p = server.v6("apply", "-f", lst, check=True)
    assert "configmap/l1 unchanged" in p.stdout


def test_cli_list_with_one_bad_item_applies_nothing(server, workdir):
    lst = write(workdir, "list.yaml", "apiVersion: v1\nkind: List\nitems:\n"
                "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: good\n"
                "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: BAD\n")
    p = server.v6("apply", "-f", lst)
    assert p.returncode == 1
    assert re.match(re.escape(lst) + r":11:5: metadata\.name: ", p.stderr), p.stderr
    assert names(server) == []


def test_cli_name_of_253_chars_is_fine(server, workdir):
    path = write(workdir, "ok.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                 "  name: %s\n" % ("a" * 253))
    server.v6("apply", "-f", path, check=True)
    assert names(server) == ["a" * 253]


@pytest.mark.parametrize("content", ["", "# only a comment\n", "---\n---\n"])
def test_cli_apply_empty_file(server, workdir, content):
    path = write(workdir, "empty.yaml", content)
    p = server.v6("apply", "-f", path)
    assert p.returncode == 1
    assert p.stderr.strip() == "error: no objects passed to apply"


def test_cli_apply_directory_without_manifests(server, workdir):
    write(workdir, "README.txt", "not a manifest\n")
    p = server.v6("apply", "-f", workdir)
    assert p.returncode == 1
    assert p.stderr.strip() == "error: no objects passed to apply"
    p = server.v6("apply", "-f", os.path.join(workdir, "missing"))
    assert p.returncode == 1 and "does not exist" in p.stderr


# ---- bad bodies over raw HTTP ----------------------------------------------

BAD_BODIES = [
    ("truncated-json", "application/json", b'{"apiVersion": "v1", "kind":'),
    ("binary", "application/json", bytes(range(256))),
    ("nul-after-json", "application/json",
     b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n"}}\x00x'),
    ("escaped-nul", "application/json",
     b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n"},"data":{"k":"a\\u0000"}}'),
    ("invalid-utf8", "application/json",
     b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n"},"data":{"k":"\xff"}}'),
    ("json-null", "application/json", b"null"),
    ("json-array", "application/json", b"[]"),
    ("empty", "application/json", b""),
    ("deep-json", "application/json",
     b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n"},"data":' +
     b"[" * 10000 + b"]" * 10000 + b"}"),
    ("list-kind", "application/json", b'{"apiVersion":"v1","kind":"List","items":[]}'),
    ("wrong-kind", "application/json",
     b'{"apiVersion":"v1","kind":"Secret","metadata":{"name":"n"}}'),
    ("yaml-tabs", "application/yaml", BAD_YAML["tabs"].encode()),
    ("yaml-dup", "application/yaml", BAD_YAML["duplicate-key"].encode()),
    ("yaml-scalar", "application/yaml", b"hello"),
    ("yaml-bomb", "application/yaml", BOMB.encode()),
    ("yaml-two-docs", "application/yaml",
     b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n"
     b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"),
    ("yaml-deep", "application/yaml",
     b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: n}\ndata:\n  k: " +
     b"[" * 10000 + b"]" * 10000 + b"\n"),
]


@pytest.mark.parametrize("case,ctype,body", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_http_bad_body_is_a_4xx_status_and_changes_nothing(server, case, ctype, body):
    status, hdrs, data = server.request("POST", CMS, body=body,
                                        headers={"Content-Type": ctype})
    assert 400 <= status < 500, (status, data[:300])
    st = json.loads(data)
    assert st["kind"] == "Status" and st["code"] == status and st["message"]
    assert names(server) == []
    assert_healthy(server)


@pytest.mark.parametrize("obj,field", [
    ({"spec": {"replicas": -1}}, "spec.replicas"),
    ({"spec": {"replicas": "3"}}, "spec.replicas"),
    ({"spec": {"replicas": 2147483648}}, "spec.replicas"),
    ({"metadata": {"name": "UPPER"}}, "metadata.name"),
    ({"metadata": {"labels": {"-bad": "x"}}}, "metadata.labels"),
], ids=["negative", "string", "int32-overflow", "uppercase", "label-key"])
def test_http_invalid_deployment_fields(server, obj, field):
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                  "template": {"metadata": {"labels": {"a": "b"}},
                               "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}
    for k, v in obj.items():
        d[k].update(v)
    status, st = server.json("POST", DEPLOYS, d)
    assert status in (400, 422), st
    assert st["kind"] == "Status"
    causes = st.get("details", {}).get("causes", [])
    assert any(c.get("field", "").startswith(field) for c in causes) or field in st["message"], st
    if obj == {"spec": {"replicas": 2147483648}}:
        assert "greater than or equal to 0" not in st["message"], st
    assert names(server, DEPLOYS) == []


def test_http_annotations_limit_is_exact(server):
    lim = 256 * 1024
    ok = cm("ann-ok")
    ok["metadata"]["annotations"] = {"k": "x" * (lim - 1)}   # 1 + (lim-1) bytes
    server.json("POST", CMS, ok, expect=201)
    over = cm("ann-over")
    over["metadata"]["annotations"] = {"k": "x" * lim}
    status, st = server.json("POST", CMS, over)
    assert status == 422, st
    assert st["details"]["causes"][0]["field"] == "metadata.annotations"
    assert names(server) == ["ann-ok"]


# ---- HTTP abuse over raw sockets -------------------------------------------

def test_smuggling_content_length_with_transfer_encoding(server):
    smuggled = (b"POST " + CMS.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 62\r\n\r\n" +
                json.dumps(cm("smuggled")).encode().ljust(62))
    req = (b"POST " + CMS.encode() + b" HTTP/1.1\r\nHost: x\r\n"
           b"Content-Type: application/json\r\nContent-Length: 5\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled)
    resp = raw(server, req)
    assert_status_body(resp, 400)
    assert resp.count(b"HTTP/1.1 ") == 1, resp
    assert names(server) == []
    assert_healthy(server)


@pytest.mark.parametrize("headers", [
    b"Content-Length: 2\r\nContent-Length: 3\r\n",
    b"Content-Length: 2, 3\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 99999999999999999999999\r\n",
    b"Transfer-Encoding: gzip\r\n",
], ids=["dup-differing", "list", "negative", "overflow", "te-gzip"])
def test_bad_framing_headers_get_400(server, headers):
    resp = raw(server, b"POST " + CMS.encode() + b" HTTP/1.1\r\nHost: x\r\n" + headers +
               b"\r\n{}x")
    assert_status_body(resp, 400)
    assert b"Connection: close" in resp
    assert_healthy(server)


@pytest.mark.parametrize("chunk", [b"zz\r\nab\r\n0\r\n\r\n",
                                   b"ffffffffffffffffffff\r\nab\r\n0\r\n\r\n",
                                   b"-2\r\nab\r\n0\r\n\r\n",
                                   b"2\r\nabcdef\r\n0\r\n\r\n"],
                         ids=["non-hex", "overflow", "negative", "size-mismatch"])
def test_invalid_chunk_sizes_get_400(server, chunk):
    resp = raw(server, b"POST " + CMS.encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + chunk)
    assert_status_body(resp, 400)
    assert names(server) == []
    assert_healthy(server)


@pytest.mark.parametrize("req", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    b"GET /heal\x00thz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/v1/namespaces/a%00b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/v1/namespaces/%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/v1/namespaces/% HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/v1/namespaces/%4 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n",
], ids=["no-colon", "nul-in-path", "pct00", "pct-zz", "pct-bare", "pct-short", "nul-in-header"])
def test_malformed_request_heads_get_400(server, req):
    resp = raw(server, req)
    assert_status_body(resp, 400)
    assert_healthy(server)


def test_absurd_methods_are_refused(server):
    for method in (b"FROBNICATE", b"GETX", b"PRI", b"G" * 300):
        resp = raw(server, method + b" /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(resp) in (400, 405, 501), resp[:200]
    assert_healthy(server)


def test_http09_request_is_not_answered_as_http11(server):
    # Go's net/http (Kubernetes) rejects a request line without a version
    # with 400; it must never be served as if it were HTTP/1.x.
    resp = raw(server, b"GET /healthz\r\n\r\n", timeout=3)
    assert status_of(resp) in (400, None), resp[:200]
    assert b"\r\n\r\nok" not in resp
    resp = raw(server, b"GET /healthz\r\n", shut=True, timeout=3)
    assert status_of(resp) in (400, None) and b"ok" not in resp, resp[:200]
    assert_healthy(server)


def test_unsupported_http_major_version_gets_505(server):
    # Go's net/http answers 505 HTTP Version Not Supported for HTTP/2.0 (or
    # 3.0) on an HTTP/1 connection that is not an h2c preface.
    for v in (b"HTTP/2.0", b"HTTP/3.0"):
        resp = raw(server, b"GET /healthz " + v + b"\r\nHost: x\r\n\r\n")
        assert status_of(resp) == 505, resp[:200]
    assert_healthy(server)


def test_1000_pipelined_requests_in_one_write_answered_in_order(server):
    n = 1000
    data = b"".join(b"GET /api/v1/namespaces/ns-%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                    for i in range(n))
    data += b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    resp = raw(server, data, timeout=20)
    found = [int(m) for m in re.findall(rb'namespaces \\"ns-(\d+)\\" not found', resp)]
    assert found == list(range(n))
    assert resp.count(b"HTTP/1.1 404 ") == n
    assert resp.endswith(b"ok")
    assert_healthy(server)


def test_half_request_then_vanish(server):
    for part in (b"GET /hea", b"POST " + CMS.encode() + b" HTTP/1.1\r\nContent-Length: 500\r\n\r\n{",
                 b"POST " + CMS.encode() + b" HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100\r\nab"):
        for close in (socket.socket.close, rst_close):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(part)
            close(s)
    assert_healthy(server)
    assert names(server) == []


def test_500_held_connections_do_not_starve_others(server):
    socks = []
    try:
        for i in range(500):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            if i % 2:
                s.sendall(b"GET /healthz HTTP/1.1\r\n")   # half a request
            socks.append(s)
        t0 = time.time()
        assert_healthy(server)
        server.json("POST", CMS, cm("while-held"), expect=201)
        assert time.time() - t0 < 2
        for s in socks[::2]:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in socks[::2]:
            assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        for s in socks:
            s.close()
    assert_healthy(server)


def test_slowloris_gets_408_after_header_timeout(server):
    # http.h: header_timeout_ms defaults to 10 s and is not reset by
    # trickling bytes.
    s = socket.create_connection(("127.0.0.1", server.port), timeout=1)
    try:
        t0 = time.time()
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        got = b""
        while time.time() - t0 < 16:
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            try:
                b = s.recv(4096)
            except socket.timeout:
                continue
            if not b:
                break
            got += b
        elapsed = time.time() - t0
    finally:
        s.close()
    assert status_of(got) == 408, got[:200]
    assert 9 <= elapsed < 13, elapsed
    assert_healthy(server)


def test_second_request_on_keepalive_is_also_bounded(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=15)
    try:
        t0 = time.time()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n")
        got = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    finally:
        s.close()
    assert got.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 408 " in got
    assert time.time() - t0 < 13


def test_body_exactly_at_limit_and_one_byte_over(make_server):
    srv = make_server("--max-body-bytes", "2000")

    def body(name, n):
        o = cm(name, data={"k": ""})
        o["data"]["k"] = "a" * (n - len(json.dumps(o)))
        b = json.dumps(o).encode()
        assert len(b) == n
        return b

    head = b"POST " + CMS.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    resp = raw(srv, head + b"Content-Length: 2000\r\nConnection: close\r\n\r\n" + body("exact", 2000))
    assert status_of(resp) == 201, resp[:300]
    resp = raw(srv, head + b"Content-Length: 2001\r\n\r\n" + body("over", 2001))
    assert_status_body(resp, 413)
    b = body("chunked-exact", 2000)
    resp = raw(srv, head + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
               b"3e8\r\n" + b[:1000] + b"\r\n3e8\r\n" + b[1000:] + b"\r\n0\r\n\r\n")
    assert status_of(resp) == 201, resp[:300]
    b = body("chunked-over", 2001)
    resp = raw(srv, head + b"Transfer-Encoding: chunked\r\n\r\n" +
               b"3e8\r\n" + b[:1000] + b"\r\n3e9\r\n" + b[1000:] + b"\r\n0\r\n\r\n")
    assert_status_body(resp, 413)
    resp = raw(srv, head + b"Content-Length: 99999999\r\nExpect: 100-continue\r\n\r\n")
    assert_status_body(resp, 413)
    assert names(srv) == ["chunked-exact", "exact"]
    assert_healthy(srv)


def test_many_small_headers_within_limit(server):
    hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(3000))
    resp = raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + hdrs +
               b"Connection: close\r\n\r\n")
    assert status_of(resp) == 200, resp[:200]
    hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(10000))
    resp = raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n")
    assert status_of(resp) == 431, resp[:200]
    assert_healthy(server)


# ---- watch edge cases ------------------------------------------------------

def test_watch_sees_500_creates_exactly_once_in_order(server):
    w = Watch(server, CMS + "?watch=true")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for i in range(500):
            conn.request("POST", CMS, body=json.dumps(cm("c%03d" % i)),
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            assert r.status == 201
        conn.close()
        evs = w.events(500, timeout=30)
        assert len(evs) == 500
        assert all(e["type"] == "ADDED" for e in evs)
        assert [e["object"]["metadata"]["name"] for e in evs] == ["c%03d" % i for i in range(500)]
        rvs = [rv(e["object"]) for e in evs]
        assert rvs == sorted(set(rvs))
        assert w.events(1, timeout=0.5) == []
    finally:
        w.close()


def test_watch_with_field_selector(server):
    w = Watch(server, CMS + "?watch=true&fieldSelector=metadata.name%3Dpick")
    try:
        for n in ("skip1", "pick", "skip2"):
            server.json("POST", CMS, cm(n), expect=201)
        server.json("DELETE", CMS + "/skip1", expect=200)
        server.json("PATCH", CMS + "/pick", {"data": {"a": "b"}},
                    headers={"Content-Type": "application/merge-patch+json"}, expect=200)
        server.json("DELETE", CMS + "/pick", expect=200)
        evs = w.events(3, timeout=5)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == \
            [("ADDED", "pick"), ("MODIFIED", "pick"), ("DELETED", "pick")]
        assert w.events(1, timeout=0.3) == []
    finally:
        w.close()


def test_two_watches_in_different_namespaces(server):
    for ns in ("wa", "wb"):
        server.json("POST", "/api/v1/namespaces",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, expect=201)
    wa = Watch(server, "/api/v1/namespaces/wa/configmaps?watch=1")
    wb = Watch(server, "/api/v1/namespaces/wb/configmaps?watch=1")
    try:
        for i in range(5):
            for ns in ("wa", "wb"):
                server.json("POST", "/api/v1/namespaces/%s/configmaps" % ns,
                            cm("%s-%d" % (ns, i)), expect=201)
        for ns, w in (("wa", wa), ("wb", wb)):
            evs = w.events(5, timeout=5)
            assert [e["object"]["metadata"]["name"] for e in evs] == \
                ["%s-%d" % (ns, i) for i in range(5)]
            assert {e["object"]["metadata"]["namespace"] for e in evs} == {ns}
            assert w.events(1, timeout=0.3) == []
    finally:
        wa.close()
        wb.close()


def test_watch_client_vanishing_abruptly(server):
    for i in range(50):
        server.json("POST", CMS, cm("pre%d" % i, data={"k": "x" * 20000}), expect=201)
    # 20 watches that never read their ~1 MB initial state, then RST.
    socks = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET " + CMS.encode() + b"?watch=true HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    t0 = time.time()
    for i in range(50):
        server.json("PUT", CMS + "/pre%d" % i, cm("pre%d" % i, data={"k": "y" * 20000}), expect=200)
    assert time.time() - t0 < 10, "a stalled watcher slowed writes down"
    for s in socks:
        rst_close(s)
    w = Watch(server, CMS + "?watch=true&fieldSelector=metadata.name%3Dpre0")
    try:
        assert w.events(1, timeout=5)[0]["object"]["data"]["k"][0] == "y"
    finally:
        w.close()
    assert_healthy(server)


def test_watch_resource_version_0_and_empty_replay_state(server):
    server.json("POST", CMS, cm("a"), expect=201)
    server.json("POST", CMS, cm("b"), expect=201)
    for q in ("resourceVersion=0", "resourceVersion=", ""):
        w = Watch(server, CMS + "?watch=true&" + q)
        try:
            evs = w.events(2, timeout=5)
            assert sorted(e["object"]["metadata"]["name"] for e in evs) == ["a", "b"], q
            assert all(e["type"] == "ADDED" for e in evs)
            assert w.events(1, timeout=0.3) == []
        finally:
            w.close()


def test_watch_resume_at_last_seen_rv_has_no_dups_and_no_gaps(server):
    _, start = server.json("GET", CMS, expect=200)
    start_rv = start["metadata"]["resourceVersion"]
    for i in range(30):
        server.json("POST", CMS, cm("r%02d" % i), expect=201)
    w = Watch(server, CMS + "?watch=true&resourceVersion=" + start_rv)
    try:
        first = w.events(10, timeout=5)
    finally:
        rst_close(w.sock)
    assert [e["object"]["metadata"]["name"] for e in first] == ["r%02d" % i for i in range(10)]
    last = first[-1]["object"]["metadata"]["resourceVersion"]
    for i in range(30, 40):
        server.json("POST", CMS, cm("r%02d" % i), expect=201)
    w = Watch(server, CMS + "?watch=true&resourceVersion=" + last)
    try:
        rest = w.events(30, timeout=5)
        assert [e["object"]["metadata"]["name"] for e in rest] == \
            ["r%02d" % i for i in range(10, 40)]
        assert w.events(1, timeout=0.3) == []
    finally:
        w.close()


@pytest.mark.parametrize("rv_", ["abc", "-5", "1.5", "99999999999999999999999"])
def test_watch_with_invalid_resource_version_is_rejected(server, rv_):
    # Kubernetes parses resourceVersion as a uint64 and refuses the watch
    # with a 4xx Status ("invalid resource version"); it does not silently
    # treat garbage as "" and replay the whole state.
    server.json("POST", CMS, cm("x"), expect=201)
    resp = raw(server, b"GET " + CMS.encode() + b"?watch=true&resourceVersion=" +
               rv_.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=2)
    code = status_of(resp)
    assert code in (400, 422), resp[:400]
    assert_healthy(server)


def test_watch_with_invalid_timeout_seconds_is_rejected(server):
    resp = raw(server, b"GET " + CMS.encode() + b"?watch=true&timeoutSeconds=abc"
               b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=2)
    assert status_of(resp) == 400, resp[:400]


def test_watch_timeout_seconds_ends_stream_cleanly(server):
    t0 = time.time()
    resp = raw(server, b"GET " + CMS.encode() + b"?watch=true&timeoutSeconds=1"
               b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=5)
    assert 0.8 < time.time() - t0 < 3
    assert status_of(resp) == 200 and resp.endswith(b"0\r\n\r\n"), resp


# ---- concurrency -----------------------------------------------------------

def race(n, fn):
    """Runs fn(0..n-1) in n threads released at once; returns their results.
    An exception in any thread, or a thread still running, fails the test."""
    barrier = threading.Barrier(n)
    results = [None] * n
    errors = []

    def run(i):
        try:
            barrier.wait(timeout=10)
            results[i] = fn(i)
        except Exception as e:  # recorded: a dead thread must not pass silently
            errors.append("racer %d: %s: %s" % (i, type(e).__name__, e))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a racer did not finish in 30 s"
    assert not errors, errors[:5]
    return results


def test_racing_puts_with_same_resource_version(server):
    _, obj = server.json("POST", CMS, cm("racy", data={"v": "0"}), expect=201)
    for round_ in range(20):
        _, obj = server.json("GET", CMS + "/racy", expect=200)

        def put(i):
            o = json.loads(json.dumps(obj))
            o["data"] = {"v": "%d-%d" % (round_, i)}
            return server.request("PUT", CMS + "/racy", body=o)
        res = race(2, put)
        codes = sorted(r[0] for r in res)
        assert codes == [200, 409], (round_, [(r[0], r[2][:200]) for r in res])
        winner = [json.loads(r[2]) for r in res if r[0] == 200][0]
        _, now = server.json("GET", CMS + "/racy", expect=200)
        assert now["data"] == winner["data"]
        assert now["metadata"]["resourceVersion"] == winner["metadata"]["resourceVersion"]
        loser = [json.loads(r[2]) for r in res if r[0] == 409][0]
        assert loser["reason"] == "Conflict"


def test_50_concurrent_creates_of_one_name(server):
    res = race(50, lambda i: server.request("POST", CMS, body=cm("same", data={"i": str(i)})))
    codes = [r[0] for r in res]
    assert codes.count(201) == 1, codes
    assert codes.count(409) == 49, codes
    assert all(json.loads(r[2])["reason"] == "AlreadyExists" for r in res if r[0] == 409)
    created = [json.loads(r[2]) for r in res if r[0] == 201][0]
    _, now = server.json("GET", CMS + "/same", expect=200)
    assert now["data"] == created["data"] and now["metadata"]["uid"] == created["metadata"]["uid"]


def test_concurrent_creates_of_distinct_names_all_land(server):
    res = race(50, lambda i: server.request("POST", CMS, body=cm("d%02d" % i))[0])
    assert res == [201] * 50
    assert names(server) == ["d%02d" % i for i in range(50)]
    _, lst = server.json("GET", CMS, expect=200)
    rvs = [rv(i) for i in lst["items"]]
    assert len(set(rvs)) == 50


# ---- delete semantics ------------------------------------------------------

def test_delete_of_object_already_being_deleted(server):
    server.json("POST", CMS, cm("fin", finalizers=["example.com/hold"]), expect=201)
    s1, d1 = server.json("DELETE", CMS + "/fin")
    assert s1 == 202 and d1["metadata"]["deletionTimestamp"]
    s2, d2 = server.json("DELETE", CMS + "/fin")
    assert s2 == 202, d2
    assert d2["metadata"]["deletionTimestamp"] == d1["metadata"]["deletionTimestamp"]
    server.json("PATCH", CMS + "/fin", {"metadata": {"finalizers": None}},
                headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    deadline = time.time() + 5
    while time.time() < deadline and server.request("GET", CMS + "/fin")[0] != 404:
        time.sleep(0.05)
    assert server.request("GET", CMS + "/fin")[0] == 404
    status, st = server.json("DELETE", CMS + "/fin")
    assert status == 404 and st["reason"] == "NotFound"


def test_foreground_delete_without_dependents_completes(server):
    server.json("POST", CMS, cm("lonely"), expect=201)
    status, _ = server.json("DELETE", CMS + "/lonely?propagationPolicy=Foreground")
    assert status in (200, 202)
    deadline = time.time() + 5
    while time.time() < deadline and server.request("GET", CMS + "/lonely")[0] != 404:
        time.sleep(0.05)
    assert server.request("GET", CMS + "/lonely")[0] == 404


def test_delete_with_bad_propagation_policy_or_preconditions(server):
    _, o = server.json("POST", CMS, cm("pre"), expect=201)
    status, st = server.json("DELETE", CMS + "/pre?propagationPolicy=Sideways")
    assert status == 400 or status == 422, st
    status, st = server.json("DELETE", CMS + "/pre", body={
        "kind": "DeleteOptions", "apiVersion": "v1",
        "preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}})
    assert status == 409 and st["reason"] == "Conflict", st
    status, st = server.json("DELETE", CMS + "/pre", body={
        "kind": "DeleteOptions", "apiVersion": "v1",
        "preconditions": {"resourceVersion": "1"}})
    assert status == 409, st
    assert names(server) == ["pre"]
    server.json("DELETE", CMS + "/pre", body={
        "kind": "DeleteOptions", "apiVersion": "v1",
        "preconditions": {"uid": o["metadata"]["uid"]}}, expect=200)


def ns_obj(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def wait_404(server, path, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.request("GET", path)[0] == 404:
            return True
        time.sleep(0.05)
    return False


def test_orphan_delete_of_namespace_completes(server):
    server.json("POST", "/api/v1/namespaces", ns_obj("orph"), expect=201)
    server.json("POST", "/api/v1/namespaces/orph/configmaps", cm("c"), expect=201)
    status, _ = server.json("DELETE", "/api/v1/namespaces/orph?propagationPolicy=Orphan")
    assert status in (200, 202)
    assert wait_404(server, "/api/v1/namespaces/orph")
    assert server.request("GET", "/api/v1/namespaces/orph/configmaps/c")[0] == 404


def test_namespace_recreated_right_after_deletion(server):
    server.json("POST", "/api/v1/namespaces", ns_obj("again"), expect=201)
    for i in range(100):
        server.json("POST", "/api/v1/namespaces/again/configmaps", cm("old%d" % i), expect=201)
    server.json("POST", "/api/v1/namespaces/again/configmaps",
                cm("held", finalizers=["example.com/x"]), expect=201)
    status, ns = server.json("DELETE", "/api/v1/namespaces/again")
    assert status in (200, 202) and ns["status"]["phase"] == "Terminating"
    # While terminating: no re-create, no new content.
    status, st = server.json("POST", "/api/v1/namespaces", ns_obj("again"))
    assert status == 409 and st["reason"] == "AlreadyExists"
    status, st = server.json("POST", "/api/v1/namespaces/again/configmaps", cm("new"))
    assert status == 403 and st["reason"] == "Forbidden"
    server.json("PATCH", "/api/v1/namespaces/again/configmaps/held",
                {"metadata": {"finalizers": None}},
                headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    assert wait_404(server, "/api/v1/namespaces/again")
    _, fresh = server.json("POST", "/api/v1/namespaces", ns_obj("again"), expect=201)
    assert fresh["status"]["phase"] == "Active"
    with conftest.Watch(server, "/api/v1/namespaces/again/configmaps") as w:
        server.json("POST", "/api/v1/namespaces/again/configmaps", cm("new"), expect=201)
        w.wait(lambda ev: ev["type"] == "ADDED", 10, "the new ConfigMap")
        # any leftover cleanup of the old namespace would delete it now
        w.assert_quiet(1, "the new namespace's ConfigMap stays")
    assert names(server, "/api/v1/namespaces/again/configmaps") == ["new"]
    _, now = server.json("GET", "/api/v1/namespaces/again", expect=200)
    assert now["metadata"]["uid"] == fresh["metadata"]["uid"]
    assert "deletionTimestamp" not in now["metadata"]


# ---- CLI misuse ------------------------------------------------------------

def test_cli_get_unknown_kind(server):
    p = server.v6("get", "foo")
    assert p.returncode == 1
    assert p.stderr.strip() == 'error: the server doesn\'t have a resource type "foo"'
    p = server.v6("get", "cm,foo")
    assert p.returncode == 1 and '"foo"' in p.stderr


def test_cli_get_bad_output_format(server):
    p = server.v6("get", "deploy", "-o", "badformat")
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.startswith('error: unable to match a printer suitable for the output '
                               'format "badformat"'), p.stderr


def test_cli_namespace_flag_on_cluster_scoped_kind_is_ignored(server):
    p = server.v6("get", "ns", "default", "-n", "kube-system", check=True)
    assert "default" in p.stdout
    p = server.v6("get", "ns", "-n", "nope", check=True)
    assert "kube-system" in p.stdout


def test_cli_delete_usage_errors(server):
    p = server.v6("delete")
    assert p.returncode == 1
    assert "you must provide one or more resources" in p.stderr
    p = server.v6("delete", "cm")
    assert p.returncode == 1 and "no name, label selector, or --all" in p.stderr
    p = server.v6("delete", "cm", "nosuch")
    assert p.returncode == 1
    assert p.stderr.strip() == 'Error from server (NotFound): configmaps "nosuch" not found'
    p = server.v6("delete", "cm", "x", "--cascade=bogus")
    assert p.returncode == 1 and "invalid cascade value" in p.stderr


def test_cli_server_error_is_reported_once(server):
    # kubectl prints one line per error: 'The Namespace "Bad_Name" is
    # invalid: metadata.name: Invalid value: ...'.
    p = server.v6("create", "namespace", "Bad_Name")
    assert p.returncode == 1
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert 'metadata.name: Invalid value: "Bad_Name"' in p.stderr


def test_cli_apply_without_f_and_bad_selector(server):
    p = server.v6("apply")
    assert p.returncode == 1 and "must specify one of -f and -k" in p.stderr
    p = server.v6("get", "cm", "-l", "===")
    assert p.returncode == 1 and p.stderr.startswith("Error from server (BadRequest): ")
    assert_healthy(server)


# ---- destructive requests Kubernetes refuses -------------------------------

@pytest.mark.parametrize("ns", ["default", "kube-system", "kube-public"])
def test_immortal_namespaces_cannot_be_deleted(server, ns):
    # Kubernetes (NamespaceLifecycle admission): 403 Forbidden, 'namespaces
    # "default" is forbidden: this namespace may not be deleted'.
    server.json("POST", "/api/v1/namespaces/%s/configmaps" % ns, cm("keep"), expect=201)
    with conftest.Watch(server, "/api/v1/namespaces") as w:
        status, st = server.json("DELETE", "/api/v1/namespaces/" + ns)
        assert status == 403 and st["reason"] == "Forbidden", (status, st)
        assert "may not be deleted" in st["message"]
        w.assert_quiet(1, "a refused namespace delete changes no namespace")
    _, obj = server.json("GET", "/api/v1/namespaces/" + ns, expect=200)
    assert "deletionTimestamp" not in obj["metadata"]
    assert obj["status"]["phase"] == "Active"
    assert names(server, "/api/v1/namespaces/%s/configmaps" % ns) == ["keep"]


def test_cli_delete_default_namespace_is_refused(server):
    p = server.v6("delete", "namespace", "default")
    assert p.returncode == 1
    assert p.stderr.startswith("Error from server (Forbidden): "), p.stderr
    server.json("GET", "/api/v1/namespaces/default", expect=200)


def test_namespaces_have_no_deletecollection(server):
    # The namespaces resource serves no deletecollection verb in Kubernetes:
    # DELETE on the collection is 405, and nothing is deleted.
    before = names(server, "/api/v1/namespaces")
    with conftest.Watch(server, "/api/v1/namespaces") as w:
        for q in ("?dryRun=All", ""):
            status, st = server.json("DELETE", "/api/v1/namespaces" + q)
            assert status == 405 and st["reason"] == "MethodNotAllowed", (
                status, str(st)[:300])
        w.assert_quiet(1, "a refused namespace deletecollection changes no namespace")
    assert names(server, "/api/v1/namespaces") == before
    for ns in before:
        _, obj = server.json("GET", "/api/v1/namespaces/" + ns, expect=200)
        assert "deletionTimestamp" not in obj["metadata"]


@pytest.mark.parametrize("value", ["all", "Bogus"])
def test_unknown_dry_run_value_is_rejected_and_changes_nothing(server, value):
    # Kubernetes: 'dryRun: Unsupported value: "all": supported values: "All"'
    # (400/422); a typo must never turn a dry run into a real write.
    server.json("POST", CMS, cm("victim"), expect=201)
    q = "?dryRun=" + value
    status, st = server.json("POST", CMS + q, cm("created"))
    assert status in (400, 422), (status, st)
    status, st = server.json("DELETE", CMS + "/victim" + q)
    assert status in (400, 422), (status, st)
    status, st = server.json("PUT", CMS + "/victim" + q, cm("victim", data={"a": "b"}))
    assert status in (400, 422), (status, st)
    assert names(server) == ["victim"]
    _, now = server.json("GET", CMS + "/victim", expect=200)
    assert "data" not in now


def test_put_with_foreign_uid_is_refused(server):
    # Kubernetes takes the body's uid as a precondition: 409 Conflict
    # ("Precondition failed: UID in precondition ...") — or 422 for an
    # immutable field — never a silent 200.
    _, o = server.json("POST", CMS, cm("u", data={"a": "1"}), expect=201)
    o["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    o["data"] = {"a": "2"}
    status, st = server.json("PUT", CMS + "/u", o)
    assert status in (409, 422), (status, st)
    _, now = server.json("GET", CMS + "/u", expect=200)
    assert now["data"] == {"a": "1"}


def test_delete_options_with_wrong_types_are_400(server):
    server.json("POST", CMS, cm("t"), expect=201)
    for opts in ({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": 5},
                 {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": "x"},
                 {"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": "All"}):
        status, st = server.json("DELETE", CMS + "/t", body=opts)
        assert status == 400, (opts, status, st)
    assert names(server) == ["t"]


def test_empty_path_segments_are_not_resources(server):
    # '/api/v1/namespaces//configmaps' names no namespace; it must not be
    # read as a GET of the namespace "configmaps".
    status, st = server.json("GET", "/api/v1/namespaces//configmaps")
    assert status == 404
    assert '"configmaps"' not in st["message"], st


def test_chunked_framing_is_checked_after_a_lenient_end_of_head(server):
    # Debian's http-parser takes any byte after the head's last CR as its LF;
    # the strict re-check of the chunked body must still run (smuggling).
    resp = raw(server, b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\n"
               b"Host: x\r\nTransfer-Encoding: chunked\r\n\r;2\r\nabcdef\r\n0\r\n\r\n",
               timeout=3)
    assert status_of(resp) == 400, resp[:300]
    assert_healthy(server)


# ---- invalid UTF-8 from the URL (issue 9: one request killed the server) ----

BAD_UTF8_TARGETS = [
    ("name", CMS + "/%FF%FE"),
    ("namespace", "/api/v1/namespaces/%C3%28/configmaps"),
    ("resource", "/apis/apps/v1/namespaces/default/%ED%A0%80"),
    ("group", "/apis/%FF/v1"),
    ("label_selector", CMS + "?labelSelector=a%3D%FF"),
    ("label_selector_key", CMS + "?labelSelector=%E9%3Dx"),
    ("field_selector", CMS + "?fieldSelector=metadata.name%3D%C0%AF"),
    ("watch_selector", CMS + "?watch=true&labelSelector=a%3Dcaf%E9"),
    ("option", CMS + "?fieldManager=%FF&dryRun=All"),
]


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
@pytest.mark.parametrize("case,target", BAD_UTF8_TARGETS,
                         ids=[t[0] for t in BAD_UTF8_TARGETS])
def test_invalid_utf8_in_the_url_is_a_400_status(server, case, target, method):
    body = json.dumps(cm("x")).encode() if method == "PUT" else b""
    resp = raw(server, ("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                        "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                        % (method, target, len(body))).encode() + body)
    st = assert_status_body(resp, 400)
    assert st["reason"] == "BadRequest" and "UTF-8" in st["message"], st
    assert_healthy(server)


def test_invalid_utf8_raw_bytes_in_the_path_is_a_400_status(server):
    resp = raw(server, b"GET " + CMS.encode() + b"/caf\xe9 HTTP/1.1\r\nHost: x\r\n"
               b"Connection: close\r\n\r\n")
    assert status_of(resp) == 400, resp[:300]
    assert_healthy(server)


def test_valid_utf8_in_a_selector_is_still_parsed(server):
    # Well-formed UTF-8 passes the check and meets the selector grammar,
    # which refuses it with its own message.
    status, st = server.json("GET", CMS + "?labelSelector=app%3Dcaf%C3%A9")
    assert status == 400 and "UTF-8" not in st["message"], st
    assert "caf\u00e9" in st["message"], st
    assert_healthy(server)


def test_cli_label_selector_with_invalid_utf8_is_refused(server):
    env = dict(os.environ, V6_SERVER=server.url)
    from conftest import V6
    p = subprocess.run([V6.encode(), b"get", b"pods", b"-l", b"app=caf\xe9"], env=env,
                       capture_output=True, timeout=30)
    assert p.returncode == 1, p
    assert b"UTF-8" in p.stderr, p.stderr
    assert_healthy(server)
