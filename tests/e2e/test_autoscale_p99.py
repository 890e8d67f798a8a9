"""A load step through the proxy, as a user sees it: a workload that serves
one request at a time (20 ms each) behind a Service, an HPA on the proxy's
per-pod p99 latency (request_duration_p99_seconds, custom.metrics.k8s.io);
at a low rate nothing moves, a step to 8 clients queues the requests (p99
well above target), the HPA scales out and the p99 the clients see comes
back under their 150 ms SLO (the HPA's target is 100 ms: a margin)."""
import http.client
import threading
import time

from test_autoscale_rps import get_hpa, hpa, pods_metric, replicas
from test_pods import apply, wait_for
from test_rollout import service, service_ip

TARGET_S = 0.15	# the clients' SLO; the HPA aims below it (100 ms)

# one request at a time, 20 ms each: latency grows with the queue
APP = r"""
import http.server, os, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.02)
        b = b'{"version": "v1"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
class S(http.server.HTTPServer):
    request_queue_size = 128
S((os.environ["POD_IP"], 8080), H).serve_forever()
"""


def serial_app():
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "terminationGracePeriodSeconds": 2,
                         "containers": [{
                             "name": "web", "image": "python",
                             "command": ["python3", "-c", APP],
                             "env": [{"name": "POD_IP", "valueFrom": {
                                 "fieldRef": {"fieldPath": "status.podIP"}}}],
                             "ports": [{"name": "http", "containerPort": 8080}],
                             "readinessProbe": {"tcpSocket": {"port": "http"},
                                                "periodSeconds": 1}}]}}}}


class Clients:
    """n closed-loop clients (a new connection per request); records (end
    time, latency, ok) per request."""

    def __init__(self, ip, n, pause=0.0):
        self.ip, self.pause, self.rec, self.lock = ip, pause, [], threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def run(self):
        deadline = time.monotonic() + 180
        while not self.stop.is_set() and time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                c = http.client.HTTPConnection(self.ip, 80, timeout=10)
                c.request("GET", "/")
                r = c.getresponse()
                r.read()
                ok = r.status == 200
                c.close()
            except (OSError, http.client.HTTPException):
                ok = False
            t1 = time.monotonic()
            with self.lock:
                self.rec.append((t1, t1 - t0, ok))
            if self.pause:
                time.sleep(self.pause)

    def p99(self, seconds):
        now = time.monotonic()
        with self.lock:
            lat = sorted(x[1] for x in self.rec if x[0] > now - seconds)
        return lat[int(len(lat) * 0.99) - 1] if len(lat) >= 20 else None

    def failures(self):
        with self.lock:
            return sum(1 for x in self.rec if not x[2])

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(15)


def test_load_step_scales_out_and_p99_recovers(make_server):
    s = make_server("--hpa-sync-period", "1s", "--traffic-period", "500ms")
    apply(s, service("web"))
    apply(s, serial_app())
    ip = service_ip(s)
    wait_for("serving", lambda: replicas(s) == 1 and s.json(
        "GET", "/apis/apps/v1/namespaces/default/deployments/web")[1].get(
        "status", {}).get("readyReplicas") == 1, timeout=60, interval=0.2)
    h = hpa([pods_metric("request_duration_p99_seconds", "100m")], max_replicas=4)
    h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] = 120
    apply(s, h)
    # one client: no queue; enough requests that one slow answer on a busy
    # machine is not the p99 of the window
    low = Clients(ip, 1, pause=0.02)
    try:
        wait_for("a p99 measured", lambda: low.p99(10) is not None, timeout=30)
        time.sleep(3)
        assert replicas(s) == 1, "scaled at a low rate"
        p99_low = low.p99(5)
    finally:
        low.close()
    high = Clients(ip, 8)
    try:
        t_step = time.monotonic()
        wait_for("queueing", lambda: (high.p99(2) or 0) > TARGET_S, timeout=30, interval=0.2)
        p99_queued = high.p99(2)
        wait_for("scale-out", lambda: replicas(s) > 1, timeout=60, interval=0.2)
        t_decided = time.monotonic()

        def recovered():
            ready = s.json("GET", "/apis/apps/v1/namespaces/default/deployments/web")[1].get(
                "status", {}).get("readyReplicas", 0)
            p = high.p99(2)
            return ready > 1 and p is not None and p < TARGET_S
        wait_for("p99 back under target", recovered, timeout=90, interval=0.2)
        t_back = time.monotonic()
        print("load step: p99 %.0f ms at a low rate, %.0f ms queued on 1 pod; scale-out "
              "decided %.1f s after the step, p99 %.0f ms on %d pods %.1f s after the step" %
              (p99_low * 1000, p99_queued * 1000, t_decided - t_step, high.p99(2) * 1000,
               replicas(s), t_back - t_step))
        st = get_hpa(s)["status"]
        assert st["currentMetrics"][0]["type"] == "Pods", st
        assert replicas(s) <= 4
    finally:
        high.close()
    assert high.failures() == 0, "%d requests failed" % high.failures()
