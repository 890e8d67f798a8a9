#!/usr/bin/env python3
"""bench/observability/scrape_bench.py — the cost of being scraped: duration
and size of the server's /metrics with 1,000 pods, next to kube-state-metrics'
published sizing.

A fresh `v6 server` without its node agent (`--controllers *,-node`, as the
convergence benchmark does; no garbage collector either, since the
ReplicaSets the pods name as owners are not there) gets BENCH_SCRAPE_PODS pods (default 1000) bound
to a fake node, each with a Running status, a ready condition and two
container statuses, owned by 10 ReplicaSets: what
kube-state-metrics would export for them, V6 exports from its own store.
Then /metrics is fetched BENCH_SCRAPE_ROUNDS times (as Prometheus does,
Accept: text/plain) and promtool checks one copy. Printed: page bytes,
series, scrape time (median / max), bytes per pod, the server's RSS before
and after, against KSM's "250MiB memory, 0.1 cores" recommendation. Standard
library only; exit 0 unless it could not run.
"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import env_int, free_port, loadavg, log, log_tail, median, on_signal  # noqa: E402

CFG = {
    "pods": env_int("BENCH_SCRAPE_PODS", 1000),
    "rounds": env_int("BENCH_SCRAPE_ROUNDS", 10),
    "keep": env_int("BENCH_KEEP", 0),
}
KSM_MEMORY_MIB = 250     # kube-state-metrics README, "Resource recommendation"
KSM_CORES = 0.1
NS = "/api/v1/namespaces/bench"


def call(conn, method, path, body=None, want=None, headers=None):
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers=hdrs)
    r = conn.getresponse()
    raw = r.read()
    if want is not None and r.status != want:
        raise RuntimeError("%s %s: %d %s" % (method, path, r.status, raw[:300]))
    return r, raw


def rss_kb(pid, field="VmRSS:"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def make_pods(conn, n):
    call(conn, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": "bench"}}, 201)
    for i in range(n):
        owner = "web%d-5d8f6c" % (i % 10)
        name = "%s-%05d" % (owner, i)
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "namespace": "bench",
                            "labels": {"app": "web%d" % (i % 10), "pod-template-hash": "5d8f6c"},
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                 "name": owner, "uid": "rs-%d" % (i % 10),
                                                 "controller": True}]},
               "spec": {"nodeName": "bench-fake-node", "containers": [
                   {"name": c, "image": "registry.example/%s:1.0" % c,
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                  "limits": {"memory": "128Mi"}}}
                   for c in ("app", "sidecar")]}}
        _, raw = call(conn, "POST", NS + "/pods", pod, 201)
        pod = json.loads(raw)
        pod["metadata"].pop("resourceVersion", None)
        ip = "127.1.%d.%d" % (i // 250 + 100, i % 250 + 1)
        pod["status"] = {
            "phase": "Running", "podIP": ip, "hostIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": c, "ready": True, "restartCount": i % 3,
                                   "image": "registry.example/%s:1.0" % c, "imageID": "",
                                   "state": {"running": {"startedAt": "2026-12-01T00:00:00Z"}}}
                                  for c in ("app", "sidecar")]}
        call(conn, "PUT", NS + "/pods/%s/status" % name, pod, 200)


def scrape(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.monotonic()
    r, raw = call(conn, "GET", "/metrics", headers={"Accept": "text/plain;version=0.0.4"},
                  want=200)
    dt = time.monotonic() - t0
    conn.close()
    return dt, raw


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: scrape_bench.py V6_BINARY")
    v6 = os.path.abspath(sys.argv[1])
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    root = tempfile.mkdtemp(prefix="v6-bench-scrape-")
    port = free_port()
    logpath = os.path.join(root, "server.log")
    srv = None
    try:
        with open(logpath, "ab") as logf:
            srv = subprocess.Popen([v6, "server", "--insecure-http", "--data-dir", os.path.join(root, "data"),
                                    "--listen", "127.0.0.1:%d" % port,
                                    "--controllers", "*,-node,-proxy,-garbagecollector"],
                                   stdout=logf, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        deadline = time.monotonic() + 20
        while True:
            try:
                if call(conn, "GET", "/readyz")[0].status == 200:
                    break
            except OSError:
                conn.close()
            if srv.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("v6 server did not become ready: " + log_tail(logpath))
            time.sleep(0.05)
        empty_dt, empty = scrape(port)
        t0 = time.monotonic()
        make_pods(conn, CFG["pods"])
        log("%d pods written in %.1f s" % (CFG["pods"], time.monotonic() - t0))
        rss0 = rss_kb(srv.pid)
        times, page = [], b""
        for _ in range(CFG["rounds"]):
            dt, page = scrape(port)
            times.append(dt)
        time.sleep(0.5)     # the last scrape's clean-up runs after its final chunk
        rss1 = rss_kb(srv.pid)
        hwm = rss_kb(srv.pid, "VmHWM:")
        series = sum(1 for line in page.split(b"\n") if line and not line.startswith(b"#"))
        pod_series = sum(1 for line in page.split(b"\n")
                         if line.startswith(b"kube_pod_") and b'namespace="bench"' in line)
        promtool = shutil.which("promtool")
        verdict = "not run (no promtool)"
        if promtool:
            p = subprocess.run([promtool, "check", "metrics"], input=page,
                               capture_output=True, timeout=120)
            verdict = "exit %d" % p.returncode
        mib = 1024 * 1024
        print("\nscrape of /metrics, %d pods (2 containers each), %d rounds, load %s" % (
            CFG["pods"], CFG["rounds"], loadavg()))
        print("  %-34s %12s" % ("", "V6"))
        print("  %-34s %12d" % ("page bytes, empty server", len(empty)))
        print("  %-34s %12d" % ("page bytes", len(page)))
        print("  %-34s %12d" % ("series", series))
        print("  %-34s %12d" % ("kube_pod_* series of the pods", pod_series))
        print("  %-34s %12.0f" % ("bytes per pod", (len(page) - len(empty)) / CFG["pods"]))
        print("  %-34s %12.1f" % ("scrape ms, median", median(times) * 1000))
        print("  %-34s %12.1f" % ("scrape ms, max", max(times) * 1000))
        print("  %-34s %12.1f" % ("scrape ms, empty server", empty_dt * 1000))
        print("  %-34s %12.1f" % ("server RSS MiB before scrapes", rss0 / 1024))
        print("  %-34s %12.1f" % ("server RSS MiB after scrapes", rss1 / 1024))
        print("  %-34s %12.1f" % ("server peak RSS MiB (VmHWM)", hwm / 1024))
        print("  %-34s %12s" % ("promtool check metrics", verdict))
        print("\nagainst kube-state-metrics' published sizing (README, 'Resource "
              "recommendation': %d MiB memory, %.1f cores, for KSM alone):" % (
                  KSM_MEMORY_MIB, KSM_CORES))
        print("  V6 server peak RSS (whole control plane) / KSM memory: %.2f" % (
            hwm * 1024 / (KSM_MEMORY_MIB * mib)))
        print("  page size / KSM memory: %.4f" % (len(page) / (KSM_MEMORY_MIB * mib)))
        return 0
    except Exception as e:  # noqa: BLE001 — report and exit non-zero: the harness failed
        log(str(e))
        return 1
    finally:
        if srv is not None:
            srv.send_signal(signal.SIGTERM)
            try:
                srv.wait(timeout=20)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait()
        if not CFG["keep"]:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
