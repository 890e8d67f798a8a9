"""Distributed tracing: requests through V6's proxy to a real pod (v6 testapp)
arrive at an OTLP/HTTP receiver written here from the specification
(POST /v1/traces, protobuf by default, decoded by otlp_pb.py, or the JSON
encoding when OTEL_EXPORTER_OTLP_TRACES_PROTOCOL says) as a SERVER span per
request with a CLIENT span per upstream attempt under it; the W3C traceparent
is continued and forwarded with the CLIENT span as parent; sampling follows
the ratio and the caller's flag; a collector that hangs or answers 503 never
slows the proxy; pods get the OTEL_* variables; rollouts arrive as spans."""
import http.client
import json
import os
import re
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import TIMEOUT_SCALE, free_port, wait_for
from load import answers
from otlp_pb import decode_traces
import test_rollout
from test_loki import rss_kb

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


# ---- an OTLP/HTTP receiver (JSON encoding) ---------------------------------------

def attrs(lst):
    """OTLP KeyValue list -> {key: python value}; checks the AnyValue shape."""
    out = {}
    for kv in lst or []:
        (kind, v), = kv["value"].items()
        assert kind in ("stringValue", "intValue", "doubleValue", "boolValue"), kv
        if kind == "intValue":
            assert isinstance(v, str) and re.match(r"^-?\d+$", v), kv  # int64 as a string
            v = int(v)
        out[kv["key"]] = v
    return out


class Receiver:
    """Collects spans posted to /v1/traces. mode: "ok", "hang" (the answer
    waits until release() or 30 s) or "503" (answers 503 with Retry-After: 1
    to the first fail_first requests, then 200)."""

    def __init__(self, mode="ok", fail_first=0):
        self.mode = mode
        self.fail_first = fail_first
        self.spans = []           # (resource attrs, span dict)
        self.posts = []           # (monotonic time, status answered)
        self.types = set()        # Content-Types posted
        self.lock = threading.Lock()
        self.released = threading.Event()
        rcv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = rcv.handle(self.path, self.headers, body)
                if status == 200:
                    out = b"{}"
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                else:
                    out = b""
                    self.send_response(status)
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def handle(self, path, headers, body):
        assert path == "/v1/traces", path
        ctype = headers["Content-Type"]
        assert ctype in ("application/x-protobuf", "application/json"), headers
        with self.lock:
            self.types.add(ctype)
        if self.mode == "hang":
            with self.lock:
                self.posts.append((time.monotonic(), 0))
            self.released.wait(30)
            return 200
        with self.lock:
            n = len(self.posts)
            status = 503 if self.mode == "503" and n < self.fail_first else 200
            self.posts.append((time.monotonic(), status))
        if status != 200:
            return status
        doc = decode_traces(body) if ctype == "application/x-protobuf" else json.loads(body)
        got = []
        for rs in doc["resourceSpans"]:
            res = attrs(rs["resource"]["attributes"])
            for ss in rs["scopeSpans"]:
                assert ss["scope"]["name"], ss["scope"]
                for sp in ss["spans"]:
                    sp = dict(sp, attributes=attrs(sp.get("attributes")))
                    got.append((res, sp))
        with self.lock:
            self.spans.extend(got)
        return 200

    def release(self):
        self.released.set()

    def close(self):
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def snapshot(self):
        with self.lock:
            return list(self.spans)

    def trace(self, trace_id):
        return [(r, s) for r, s in self.snapshot() if s["traceId"] == trace_id]


@pytest.fixture
def receiver():
    rcvs = []

    def make(*a, **kw):
        r = Receiver(*a, **kw)
        rcvs.append(r)
        return r
    yield make
    for r in rcvs:
        r.close()


@pytest.fixture(autouse=True)
def fast_batches(monkeypatch):
    # the proxy and the server read the OTEL_BSP_* variables (the SDK's names)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    for v in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
              "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        monkeypatch.delenv(v, raising=False)


# ---- the workload ---------------------------------------------------------------------

def deployment(name="web", replicas=1):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{
                     "name": "web", "image": "v6/testapp",
                     "command": ["v6", "testapp", "--quiet"],
                     "env": [{"name": "POD_IP", "valueFrom": {
                         "fieldRef": {"fieldPath": "status.podIP"}}}],
                     "ports": [{"name": "http", "containerPort": 8080}],
                     "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                                        "periodSeconds": 1}}]}}}}


def service(name="web", selector=True):
    spec = {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    if selector:
        spec["selector"] = {"app": name}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def apply(server, *objs):
    server.v6("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objs),
              check=True)


def deploy(server, d=None):
    apply(server, d or deployment())
    p = server.v6("rollout", "status", "deployment/web", "--timeout", "90s", timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    apply(server, service())
    _, svc = server.json("GET", "/api/v1/namespaces/default/services/web", expect=200)
    ip = svc["spec"]["clusterIP"]
    wait_for(lambda: answers(ip, 80), 15, "Service %s to answer" % ip)
    return ip


def pods(server, app="web"):
    _, body = server.json("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3D" + app,
                          expect=200)
    return body["items"]


def get(ip, path, headers=None, port=80):
    c = http.client.HTTPConnection(ip, port, timeout=10)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def echo(ip, headers=None, path="/echo"):
    status, body = get(ip, path, headers)
    assert status == 200, body
    return json.loads(body)["headers"]


def traceparent(value):
    m = re.match(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$", value)
    assert m, value
    return m.groups()


def wait_spans(rcv, trace_id, n, timeout=15):
    return wait_for(lambda: len(rcv.trace(trace_id)) >= n and rcv.trace(trace_id), timeout,
                    "%d spans of trace %s" % (n, trace_id), interval=0.1)


def by_kind(spans, kind):
    return [(r, s) for r, s in spans if s["kind"] == kind]


SERVER, CLIENT, INTERNAL = 2, 3, 1


# ---- spans of requests -----------------------------------------------------------------

def test_request_spans_follow_the_http_conventions_and_the_caller_trace(make_server, receiver):
    rcv = receiver()
    server = make_server("--otlp-endpoint", rcv.url)
    ip = deploy(server)
    pod = pods(server)[0]
    rev = pod["metadata"]["labels"]["pod-template-hash"]

    # a client-supplied traceparent (and tracestate) is continued
    tid, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    hdrs = echo(ip, {"traceparent": "00-%s-%s-01" % (tid, parent), "tracestate": "v=1",
                     "User-Agent": "trace-test/1"}, path="/echo/x?a=1")
    fwd_tid, fwd_parent, flags = traceparent(hdrs["traceparent"])
    assert fwd_tid == tid and fwd_parent != parent and flags == "01", hdrs
    assert hdrs["tracestate"] == "v=1", hdrs
    spans = wait_spans(rcv, tid, 2)
    time.sleep(0.5)
    spans = rcv.trace(tid)
    assert len(spans) == 2, spans
    (sres, srv), = by_kind(spans, SERVER)
    (cres, cli), = by_kind(spans, CLIENT)
    # links: client's span -> SERVER -> CLIENT -> the pod
    assert srv["parentSpanId"] == parent
    assert cli["parentSpanId"] == srv["spanId"]
    assert cli["spanId"] == fwd_parent, "the pod's parent is the CLIENT span"
    assert HEX16.match(srv["spanId"]) and HEX32.match(srv["traceId"])
    assert srv["traceState"] == "v=1"
    # names and attributes (stable HTTP semantic conventions)
    assert srv["name"] == "GET" and cli["name"] == "GET", (srv["name"], cli["name"])
    a = srv["attributes"]
    assert a["http.request.method"] == "GET" and a["http.response.status_code"] == 200, a
    assert a["url.path"] == "/echo/x" and a["url.query"] == "a=1" and a["url.scheme"] == "http"
    assert a["server.address"] == ip and a["server.port"] == 80, a
    assert a["network.peer.address"] == "127.0.0.1" and a["user_agent.original"] == "trace-test/1"
    assert "error.type" not in a and srv["status"].get("code", 0) == 0
    c = cli["attributes"]
    assert c["http.request.method"] == "GET" and c["http.response.status_code"] == 200, c
    assert c["server.address"] == pod["status"]["podIP"] and c["server.port"] == 8080, c
    assert c["network.peer.address"] == pod["status"]["podIP"]
    assert c["k8s.pod.name"] == pod["metadata"]["name"]
    assert "http.request.resend_count" not in c
    assert int(srv["startTimeUnixNano"]) <= int(cli["startTimeUnixNano"]) <= \
        int(cli["endTimeUnixNano"]) <= int(srv["endTimeUnixNano"])
    assert abs(int(srv["startTimeUnixNano"]) / 1e9 - time.time()) < 60
    # resource: the Service at the revision that answered
    for res in (sres, cres):
        assert res["service.name"] == "web" and res["k8s.namespace.name"] == "default", res
        assert res["service.version"] == rev, res

    # no traceparent: a new trace, one SERVER span per request
    seen = set()
    for _ in range(5):
        t, _, _ = traceparent(echo(ip)["traceparent"])
        assert t != tid and t not in seen
        seen.add(t)
    for t in seen:
        spans = wait_spans(rcv, t, 2)
        assert len(by_kind(spans, SERVER)) == 1 and len(by_kind(spans, CLIENT)) == 1
        (_, s), = by_kind(spans, SERVER)
        assert "parentSpanId" not in s or s["parentSpanId"] in ("", None)

    # a 5xx answer: ERROR on the SERVER span, error.type the status
    t0 = len(rcv.snapshot())
    tid2 = "0af7651916cd43dd8448eb211c80319c"
    status, _ = get(ip, "/status/503", {"traceparent": "00-%s-b7ad6b7169203331-01" % tid2})
    assert status == 503
    (_, s), = by_kind(wait_spans(rcv, tid2, 2), SERVER)
    assert s["status"]["code"] == 2 and s["attributes"]["error.type"] == "503", s
    assert s["attributes"]["http.response.status_code"] == 503
    assert len(rcv.snapshot()) > t0
    # all of it in OTLP's default encoding, binary protobuf
    assert rcv.types == {"application/x-protobuf"}, rcv.types


def test_spans_in_the_json_encoding_when_the_sdk_variable_asks(make_server, receiver,
                                                                monkeypatch):
    """OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json (the SDKs' variable, read by
    the server and the proxy it starts): the same spans, as JSON."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
    rcv = receiver()
    server = make_server("--otlp-endpoint", rcv.url)
    ip = deploy(server)
    tid, parent = "7bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    hdrs = echo(ip, {"traceparent": "00-%s-%s-01" % (tid, parent)})
    spans = wait_spans(rcv, tid, 2)
    (res, srv), = by_kind(spans, SERVER)
    (_, cli), = by_kind(spans, CLIENT)
    assert srv["parentSpanId"] == parent and cli["parentSpanId"] == srv["spanId"]
    assert traceparent(hdrs["traceparent"])[1] == cli["spanId"]
    assert srv["attributes"]["http.response.status_code"] == 200
    assert res["service.name"] == "web"
    assert rcv.types == {"application/json"}, rcv.types


@pytest.mark.parametrize("bad", [
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   # version ff
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   # zero trace-id
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   # zero parent-id
    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   # upper case
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  # 00 with more
    "garbage",
])
def test_an_invalid_traceparent_starts_a_new_trace(make_server, receiver, bad):
    rcv = receiver()
    server = make_server("--otlp-endpoint", rcv.url, "--trace-sample-ratio", "1")
    ip = deploy(server)
    hdrs = echo(ip, {"traceparent": bad, "tracestate": "old=1"})
    tid, parent, flags = traceparent(hdrs["traceparent"])
    assert tid not in bad and flags == "01"
    assert "tracestate" not in hdrs, "the tracestate of another trace is dropped"
    spans = wait_spans(rcv, tid, 2)
    (_, s), = by_kind(spans, SERVER)
    assert not s.get("parentSpanId"), s


def test_sampling_ratio_zero_and_parent_based(make_server, receiver):
    rcv = receiver()
    server = make_server("--otlp-endpoint", rcv.url, "--trace-sample-ratio", "0")
    ip = deploy(server)
    # ratio 0: new traces are not sampled, but still propagated with flag 00
    tids = []
    for _ in range(20):
        tid, _, flags = traceparent(echo(ip)["traceparent"])
        assert flags == "00"
        tids.append(tid)
    # the caller's sampled flag wins (parent-based): 01 -> spans, 00 -> none
    on = "5bf92f3577b34da6a3ce929d0e0e4736"
    off = "6bf92f3577b34da6a3ce929d0e0e4736"
    h = echo(ip, {"traceparent": "00-%s-00f067aa0ba902b7-01" % on})
    assert traceparent(h["traceparent"])[2] == "01"
    h = echo(ip, {"traceparent": "00-%s-00f067aa0ba902b7-00" % off})
    assert traceparent(h["traceparent"])[2] == "00"
    wait_spans(rcv, on, 2)
    time.sleep(1.0)  # a few export periods (200 ms)
    assert rcv.trace(off) == []
    assert all(rcv.trace(t) == [] for t in tids)


def test_sampling_ratio_samples_a_share_of_new_traces(make_server, receiver):
    rcv = receiver()
    server = make_server("--otlp-endpoint", rcv.url, "--trace-sample-ratio", "0.25")
    ip = deploy(server)
    sampled, unsampled = set(), set()
    for _ in range(200):
        tid, _, flags = traceparent(echo(ip)["traceparent"])
        (sampled if flags == "01" else unsampled).add(tid)
    assert 20 <= len(sampled) <= 80, len(sampled)  # 50 expected; binomial sd ~6

    def server_traces():
        return {s["traceId"] for _, s in by_kind(rcv.snapshot(), SERVER)}
    wait_for(lambda: sampled <= server_traces(), 15, "a SERVER span for each sampled request")
    time.sleep(0.5)
    assert not (unsampled & server_traces())


def test_a_service_annotation_sets_its_own_ratio(make_server, receiver):
    rcv = receiver()
    server = make_server("--otlp-endpoint", rcv.url, "--trace-sample-ratio", "0")
    svc = service()
    svc["metadata"]["annotations"] = {"v6.dev/trace-sample-ratio": "1"}
    apply(server, deployment(), svc)
    p = server.v6("rollout", "status", "deployment/web", "--timeout", "90s", timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    _, body = server.json("GET", "/api/v1/namespaces/default/services/web", expect=200)
    ip = body["spec"]["clusterIP"]
    wait_for(lambda: answers(ip, 80), 15, "Service %s to answer" % ip)
    tid, _, flags = traceparent(echo(ip)["traceparent"])
    assert flags == "01"
    wait_spans(rcv, tid, 2)
    # the annotation gone, the proxy's ratio (0) again
    apply(server, service())
    wait_for(lambda: traceparent(echo(ip)["traceparent"])[2] == "00", 15,
             "new traces unsampled without the annotation")


def test_retries_are_sibling_client_spans(make_server, receiver):
    """A Service whose first endpoint refuses connections: the proxy retries
    on the real pod; both attempts are CLIENT spans under the SERVER span,
    the second with http.request.resend_count 1."""
    rcv = receiver()
    server = make_server("--otlp-endpoint", rcv.url)
    apply(server, deployment())
    p = server.v6("rollout", "status", "deployment/web", "--timeout", "90s", timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    pod = pods(server)[0]
    dead = pod["status"]["podIP"].rsplit(".", 1)[0] + ".250"  # no pod there
    # on a port nothing listens on, not 8080: another test's process pod
    # may listen on 0.0.0.0:8080, which answers on every loopback address
    dead_port = free_port()
    apply(server, service(selector=False), {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": dead}],
                     "ports": [{"name": "http", "port": dead_port}]},
                    {"addresses": [{"ip": pod["status"]["podIP"]}],
                     "ports": [{"name": "http", "port": 8080}]}]})
    _, svc = server.json("GET", "/api/v1/namespaces/default/services/web", expect=200)
    ip = svc["spec"]["clusterIP"]
    wait_for(lambda: answers(ip, 80), 15, "Service %s to answer" % ip)
    retried = None
    for i in range(6):
        tid = "7%031x" % (i + 1)
        status, _ = get(ip, "/", {"traceparent": "00-%s-00f067aa0ba902b7-01" % tid})
        assert status == 200
        time.sleep(0.05)
    deadline = time.monotonic() + 15 * TIMEOUT_SCALE
    while retried is None and time.monotonic() < deadline:
        for i in range(6):
            spans = rcv.trace("7%031x" % (i + 1))
            if len(by_kind(spans, CLIENT)) == 2 and by_kind(spans, SERVER):
                retried = spans
        time.sleep(0.1)
    assert retried, "no request was retried: %s" % rcv.snapshot()
    (_, srv), = by_kind(retried, SERVER)
    first, second = sorted((s for _, s in by_kind(retried, CLIENT)),
                           key=lambda s: int(s["startTimeUnixNano"]))
    assert first["parentSpanId"] == srv["spanId"] == second["parentSpanId"]
    assert first["attributes"]["server.address"] == dead
    assert first["attributes"]["error.type"] == "connect_error"
    assert first["status"]["code"] == 2
    assert "http.request.resend_count" not in first["attributes"]
    assert second["attributes"]["http.request.resend_count"] == 1
    assert second["attributes"]["http.response.status_code"] == 200
    assert srv["attributes"]["http.response.status_code"] == 200


# ---- a collector in trouble --------------------------------------------------------------

def proxy_pid(server):
    with open(os.path.join(server.data_dir, "proxy", "proxy.pid")) as f:
        return int(f.read().split()[0])


def proxy_metric(server, name):
    with open(os.path.join(server.data_dir, "proxy", "admin.addr")) as f:
        host, port = f.read().strip().rsplit(":", 1)
    status, body = get(host, "/metrics", port=int(port))
    assert status == 200
    m = re.search(r"^%s (\d+)" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if m else None


def latencies(ip, n):
    out = []
    c = http.client.HTTPConnection(ip, 80, timeout=10)
    try:
        for _ in range(n):
            t = time.monotonic()
            c.request("GET", "/")
            r = c.getresponse()
            r.read()
            assert r.status == 200
            out.append(time.monotonic() - t)
    finally:
        c.close()
    return sorted(out)


def test_a_collector_that_hangs_never_slows_the_proxy(make_server, receiver, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1500")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "200")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "50")
    rcv = receiver("hang")
    server = make_server("--otlp-endpoint", rcv.url)
    ip = deploy(server)
    pid = proxy_pid(server)
    base = latencies(ip, 200)
    wait_for(lambda: rcv.posts, 10, "the proxy to post to the collector")
    rss0 = rss_kb(pid)
    during = latencies(ip, 3000)  # far more spans than the queue holds
    rss1 = rss_kb(pid)
    p99 = during[int(len(during) * 0.99)]
    print("latency p50 %.2f ms before, p50 %.2f ms / p99 %.2f ms with the collector hung; "
          "RSS %d -> %d kB" % (base[len(base) // 2] * 1e3, during[len(during) // 2] * 1e3,
                              p99 * 1e3, rss0, rss1))
    assert p99 < 0.25 * TIMEOUT_SCALE, p99
    assert during[-1] < 1.0 * TIMEOUT_SCALE, during[-1]
    assert rss1 - rss0 < 16 * 1024, (rss0, rss1)
    dropped = proxy_metric(server, 'v6_proxy_trace_spans_total{outcome="dropped_queue_full"}')
    assert dropped and dropped > 1000, dropped
    queued = proxy_metric(server, "v6_proxy_trace_queue_spans")
    assert queued <= 200 + 50, queued  # the queue and the batch in flight


def test_a_collector_answering_503_gets_the_spans_after_retry_after(make_server, receiver):
    rcv = receiver("503", fail_first=2)
    server = make_server("--otlp-endpoint", rcv.url)
    ip = deploy(server)
    tid = "8bf92f3577b34da6a3ce929d0e0e4736"
    t0 = time.monotonic()
    echo(ip, {"traceparent": "00-%s-00f067aa0ba902b7-01" % tid})
    assert time.monotonic() - t0 < 1.0 * TIMEOUT_SCALE
    wait_spans(rcv, tid, 2, timeout=20)
    times = [t for t, _ in rcv.posts]
    statuses = [s for _, s in rcv.posts]
    assert statuses[:3] == [503, 503, 200], statuses
    # Retry-After: 1 is honoured between the tries
    assert times[1] - times[0] >= 0.9 and times[2] - times[1] >= 0.9, times


def test_spans_queued_when_the_proxy_stops_are_flushed(make_server, receiver, monkeypatch):
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")  # only the exit sends them
    rcv = receiver()
    server = make_server("--otlp-endpoint", rcv.url)
    ip = deploy(server)
    tid = "9bf92f3577b34da6a3ce929d0e0e4736"
    echo(ip, {"traceparent": "00-%s-00f067aa0ba902b7-01" % tid})
    time.sleep(0.5)
    assert rcv.trace(tid) == []
    pid = proxy_pid(server)
    os.kill(pid, signal.SIGTERM)
    spans = wait_spans(rcv, tid, 2, timeout=10)
    assert len(by_kind(spans, SERVER)) == 1 and len(by_kind(spans, CLIENT)) == 1
    wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
             open("/proc/%d/stat" % pid).read().split(")")[1].split()[0] == "Z", 10,
             "the proxy to exit")


# ---- pods and rollouts ----------------------------------------------------------------------

def test_pods_get_the_otel_sdk_variables(make_server, receiver):
    rcv = receiver()
    server = make_server("--otlp-endpoint", rcv.url)
    ip = deploy(server)
    pod = pods(server)[0]
    status, body = get(ip, "/env")
    assert status == 200
    env = json.loads(body)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == rcv.url
    assert env["OTEL_SERVICE_NAME"] == "web"
    res = dict(kv.split("=", 1) for kv in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    assert res == {"k8s.namespace.name": "default", "k8s.pod.name": pod["metadata"]["name"],
                   "k8s.pod.uid": pod["metadata"]["uid"],
                   "service.version": pod["metadata"]["labels"]["pod-template-hash"]}, res


def test_a_pod_that_sets_its_own_otel_variables_keeps_them(make_server, receiver):
    rcv = receiver()
    server = make_server("--otlp-endpoint", rcv.url)
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["env"] += [
        {"name": "OTEL_SERVICE_NAME", "value": "mine"},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://127.0.0.1:1"}]
    ip = deploy(server, d)
    env = json.loads(get(ip, "/env")[1])
    assert env["OTEL_SERVICE_NAME"] == "mine"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:1"
    assert "k8s.pod.uid=" in env["OTEL_RESOURCE_ATTRIBUTES"]


def test_rollout_steps_and_promotion_arrive_as_spans(make_server, receiver):
    rcv = receiver()
    server = make_server("--otlp-endpoint", rcv.url)

    def ro(version):
        return test_rollout.rollout(version, test_rollout.canary(
            [{"setWeight": 50}, {"pause": {"duration": "1s"}}]))

    def healthy_at(version):
        def ok():
            _, r = server.json("GET", "/apis/argoproj.io/v1alpha1/namespaces/default/"
                               "rollouts/web")
            st = r.get("status", {})
            return st.get("phase") == "Healthy" and st.get("stableRS") == \
                st.get("currentPodHash") and st.get("currentPodHash")
        try:
            return wait_for(ok, 120, "the rollout Healthy at " + version, interval=0.2)
        except AssertionError:
            print(server.log()[-6000:])
            print(server.v6("get", "rollout", "web", "-o", "yaml").stdout)
            raise

    apply(server, test_rollout.service("web"), test_rollout.service("web-canary"), ro("v1"))
    healthy_at("v1")
    apply(server, ro("v2"))
    h2 = healthy_at("v2")

    def revision_span():
        for res, s in rcv.snapshot():
            if (res.get("service.name") == "v6" and s["name"] == "rollout web"
                    and s["attributes"].get("argoproj.rollout.revision") == h2):
                return s
        return None
    span = wait_for(revision_span, 20, "the span of revision %s" % h2, interval=0.2)
    assert span["attributes"]["k8s.namespace.name"] == "default"
    assert span["attributes"]["argoproj.rollout.name"] == "web"
    assert span["attributes"]["argoproj.rollout.outcome"] == "completed"
    names = [e["name"] for e in span["events"]]
    assert "TrafficWeightUpdated" in names and "RolloutCompleted" in names, names
    weights = [attrs(e["attributes"]).get("argoproj.rollout.canary.weight")
               for e in span["events"]]
    assert 50 in weights, weights
    # each move also came as its own span under the revision's, when it happened
    moves = [s for r, s in rcv.trace(span["traceId"]) if s["spanId"] != span["spanId"]]
    assert moves and all(s["parentSpanId"] == span["spanId"] for s in moves), moves
    times = [int(e["timeUnixNano"]) for e in span["events"]]
    assert times == sorted(times) and times[-1] - times[0] >= 1e9, times  # the 1 s pause
