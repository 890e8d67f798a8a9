"""bench/autoscale — how fast V6's HPA reacts to a load step through the proxy,
and how fast a Deployment at zero answers its first request.

Reaction: a workload that serves one request at a time (20 ms each) behind
a Service, an HPA on the proxy's per-pod p99 (request_duration_p99_seconds,
target 150 ms); 8 closed-loop clients start at once. Timed from the step:
the scale decision (spec.replicas grows), the new pods Ready, and the p99
the clients see back under the target. Run with the default 15 s sync and
with a 1 s sync, against the worst case the Kubernetes defaults imply for
the decision alone: the 15 s HPA sync plus metrics-server's 60 s scrape
(a step just after a scrape is seen 60 s later, then acted on at the next
sync) = 75 s.

Cold start: an HPA with minReplicas 0 (Object metric on the Service) takes
the Deployment to zero; one request is then held by the proxy while a pod
starts. Timed: the first response, and how long after the pod showed Ready
(the API polled every 10 ms) it came: the target is <= 50 ms.

Usage: autoscale_bench.py V6_BINARY. Env: BENCH_ROUNDS (cold starts, 3),
BENCH_KEEP=1 keeps the temp dirs. Exits 0 whatever the figures."""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import (Interrupted, env_int, free_port, kill_workloads, loadavg, log,  # noqa
                      log_tail, median, on_signal, remove_cgroups)

TARGET_S = 0.15
K8S_WORST_S = 15 + 60

APP = r"""
import http.server, os, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.02)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
class S(http.server.HTTPServer):
    request_queue_size = 128
S((os.environ["POD_IP"], 8080), H).serve_forever()
"""


class Server:
    def __init__(self, v6, root, *flags):
        self.data = os.path.join(root, "data")
        self.port = free_port()
        self.logpath = os.path.join(root, "server.log")
        with open(self.logpath, "ab") as f:
            self.proc = subprocess.Popen(
                [v6, "server", "--data-dir", self.data, "--listen", "127.0.0.1:%d" % self.port,
                 "--traffic-period", "500ms", "--default-runtime", "process"] + list(flags),
                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.call("GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("v6 server did not become ready")
            time.sleep(0.05)

    def call(self, method, path, body=None, ctype="application/json"):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request(method, path, body=json.dumps(body) if body is not None else None,
                      headers={"Content-Type": ctype})
            r = c.getresponse()
            data = r.read()
            try:
                return r.status, json.loads(data)
            except ValueError:
                return r.status, data
        finally:
            c.close()

    def create(self, path, obj):
        status, body = self.call("POST", path, obj)
        if status >= 300:
            raise RuntimeError("POST %s: %s %s" % (path, status, body))

    def deployment(self):
        return self.call("GET", "/apis/apps/v1/namespaces/default/deployments/web")[1]

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        kill_workloads(self.data)
        remove_cgroups(self.data)


def workload(server, annotations=None):
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": "default",
                        "annotations": annotations or {}},
           "spec": {"selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "default"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                        "terminationGracePeriodSeconds": 2,
                        "containers": [{
                            "name": "web", "image": "python",
                            "command": ["python3", "-c", APP],
                            "env": [{"name": "POD_IP", "valueFrom": {
                                "fieldRef": {"fieldPath": "status.podIP"}}}],
                            "ports": [{"containerPort": 8080}],
                            "readinessProbe": {"tcpSocket": {"port": 8080},
                                               "periodSeconds": 1}}]}}}}
    server.create("/api/v1/namespaces/default/services", svc)
    server.create("/apis/apps/v1/namespaces/default/deployments", dep)
    _, s = server.call("GET", "/api/v1/namespaces/default/services/web")
    ip = s["spec"]["clusterIP"]
    deadline = time.monotonic() + 60
    while (server.deployment().get("status", {}).get("readyReplicas") or 0) < 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the workload never became Ready")
        time.sleep(0.1)
    return ip


def hpa(metric, min_replicas, behavior):
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "web"},
                     "minReplicas": min_replicas, "maxReplicas": 4, "metrics": [metric],
                     "behavior": behavior}}


class Clients:
    def __init__(self, ip, n):
        self.ip, self.rec, self.lock = ip, [], threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def run(self):
        end = time.monotonic() + 300
        while not self.stop.is_set() and time.monotonic() < end:
            t0 = time.monotonic()
            try:
                c = http.client.HTTPConnection(self.ip, 80, timeout=10)
                c.request("GET", "/")
                c.getresponse().read()
                c.close()
            except (OSError, http.client.HTTPException):
                pass
            t1 = time.monotonic()
            with self.lock:
                self.rec.append((t1, t1 - t0))

    def p99(self, seconds):
        now = time.monotonic()
        with self.lock:
            lat = sorted(x[1] for x in self.rec if x[0] > now - seconds)
        return lat[int(len(lat) * 0.99) - 1] if len(lat) >= 20 else None

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(15)


def reaction(v6, sync):
    root = tempfile.mkdtemp(prefix="v6-bench-as-")
    server = None
    try:
        server = Server(v6, root, "--hpa-sync-period", sync)
        ip = workload(server)
        server.create("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers", hpa(
            {"type": "Pods", "pods": {"metric": {"name": "request_duration_p99_seconds"},
                                      "target": {"type": "AverageValue",
                                                 "averageValue": "150m"}}},
            1, {"scaleDown": {"stabilizationWindowSeconds": 300}}))
        time.sleep(3)
        clients = Clients(ip, 8)
        t0 = time.monotonic()
        decided = ready = back = None
        try:
            while time.monotonic() - t0 < 150 and back is None:
                d = server.deployment()
                want = d["spec"]["replicas"]
                now = time.monotonic()
                if decided is None and want > 1:
                    decided = now - t0
                if decided is not None and ready is None and \
                        (d.get("status", {}).get("readyReplicas") or 0) >= want:
                    ready = now - t0
                p = clients.p99(2)
                if ready is not None and p is not None and p < TARGET_S:
                    back = now - t0
                time.sleep(0.05)
        finally:
            clients.close()
        return {"sync": sync, "decision_s": decided, "ready_s": ready, "p99_back_s": back}
    finally:
        if server:
            server.close()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


def cold_starts(v6, rounds):
    root = tempfile.mkdtemp(prefix="v6-bench-as0-")
    server = None
    out = []
    try:
        server = Server(v6, root, "--hpa-sync-period", "1s")
        ip = workload(server, {"v6.dev/hold-requests-timeout": "60s"})
        server.create("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers", hpa(
            {"type": "Object", "object": {
                "metric": {"name": "requests_per_second"},
                "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "web"},
                "target": {"type": "Value", "value": "5"}}},
            0, {"scaleDown": {"stabilizationWindowSeconds": 3}}))
        for _ in range(rounds):
            deadline = time.monotonic() + 90
            while True:
                _, pods = server.call("GET", "/api/v1/namespaces/default/pods")
                if server.deployment()["spec"]["replicas"] == 0 and not pods["items"]:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("never scaled to zero")
                time.sleep(0.2)
            got = {}

            def one():
                c = http.client.HTTPConnection(ip, 80, timeout=60)
                c.request("GET", "/")
                got["status"] = c.getresponse().status
                got["t1"] = time.monotonic()
                c.close()
            t0 = time.monotonic()
            th = threading.Thread(target=one, daemon=True)
            th.start()
            t_ready = None
            while th.is_alive() and time.monotonic() - t0 < 60:
                if t_ready is None:
                    _, pods = server.call("GET", "/api/v1/namespaces/default/pods")
                    if any(c["type"] == "Ready" and c["status"] == "True"
                           for p in pods["items"]
                           for c in p.get("status", {}).get("conditions", [])):
                        t_ready = time.monotonic()
                time.sleep(0.01)
            th.join(5)
            if got.get("status") != 200:
                raise RuntimeError("the held request got %s" % got)
            first = got["t1"] - t0
            after = (got["t1"] - t_ready) if t_ready else 0.0
            out.append({"first_response_s": first, "pod_ready_s": t_ready and t_ready - t0,
                        "after_ready_ms": after * 1000})
            log("cold start: first response %.3f s, %.0f ms after the pod was Ready" %
                (first, after * 1000))
        return out
    finally:
        if server:
            server.close()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


def fmt(x):
    return "-" if x is None else "%.1f s" % x


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: autoscale_bench.py V6_BINARY")
    v6 = os.path.abspath(sys.argv[1])
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    load0 = loadavg()
    try:
        runs = [reaction(v6, "15s"), reaction(v6, "1s")]
        colds = cold_starts(v6, env_int("BENCH_ROUNDS", 3))
    except (Interrupted, RuntimeError, OSError, ValueError) as ex:
        log("aborted: %s" % ex)
        return 1
    print("bench/autoscale (load average %s at start)" % load0)
    print("reaction to a load step (1 pod -> 8 clients, p99 target 150 ms):")
    print("  %-10s %-10s %-12s %-12s %s" % ("sync", "decision", "pods Ready", "p99 back",
                                            "decision vs Kubernetes' worst case (75 s)"))
    for r in runs:
        ratio = "%.2fx" % (r["decision_s"] / K8S_WORST_S) if r["decision_s"] else "-"
        print("  %-10s %-10s %-12s %-12s %s" % (r["sync"], fmt(r["decision_s"]),
                                                fmt(r["ready_s"]), fmt(r["p99_back_s"]), ratio))
    firsts = [c["first_response_s"] for c in colds]
    afters = [c["after_ready_ms"] for c in colds]
    print("cold start from zero (%d rounds): first response median %.3f s; after the pod "
          "was Ready: median %.0f ms, max %.0f ms (target <= 50 ms)" %
          (len(colds), median(firsts), median(afters), max(afters)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
