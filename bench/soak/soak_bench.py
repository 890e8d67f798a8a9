#!/usr/bin/env python3
"""bench/soak/soak_bench.py — does V6 stay flat under steady use? One `v6
server` runs a Deployment of `v6 testapp` behind a Service; keep-alive clients
send GET / to the Service address through `v6 proxy` the whole time, and the
Deployment is rolled to a new version once a minute. Every sample prints the
server's RSS and open fds, the proxy's RSS, the store's size on disk (v6.db +
WAL), the number of Events and the failed requests so far; the summary
compares the end with the sample at ten minutes (the warm-up: caches, the
journal and the Events fill up), against the targets: flat within 5 % and 0
failed requests. Started by bench/soak/run.sh; stops everything it started
with `v6 reset`. Standard library only; exit 0 unless the harness failed.
"""
import argparse
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
from benchlib import (Interrupted, ServiceLoad, env_int, free_port, log, log_tail,  # noqa: E402
                      on_signal, read_pid)

CFG = {
    "minutes": env_int("BENCH_SOAK_MIN", 60),
    "warmup_min": env_int("BENCH_SOAK_WARMUP_MIN", 10),
    "rollout_s": env_int("BENCH_SOAK_ROLLOUT_S", 60),
    "sample_s": env_int("BENCH_SOAK_SAMPLE_S", 60),
    "replicas": env_int("BENCH_REPLICAS", 3),
    "clients": env_int("BENCH_CLIENTS", 2),
    "pause_ms": env_int("BENCH_PAUSE_MS", 20),
    "tmp": os.environ.get("BENCH_TMP", os.environ.get("TMPDIR", "/tmp")),
    # The server's --event-ttl (default 1h, as Kubernetes): Events grow until
    # then; a shorter soak passes a shorter TTL to see the plateau.
    "event_ttl": os.environ.get("BENCH_SOAK_EVENT_TTL", ""),
}
NS = "default"
TARGET_GROWTH = 0.05


def deployment(version):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "soak", "namespace": NS},
            "spec": {"replicas": CFG["replicas"],
                     "selector": {"matchLabels": {"app": "soak"}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "soak"}}, "spec": {
                         "terminationGracePeriodSeconds": 10, "containers": [{
                             "name": "web", "image": "v6/testapp",
                             "command": ["v6", "testapp", "--quiet", "--version-string",
                                         version],
                             "env": [{"name": "POD_IP", "valueFrom": {
                                 "fieldRef": {"fieldPath": "status.podIP"}}}],
                             "ports": [{"name": "http", "containerPort": 8080}],
                             "readinessProbe": {"httpGet": {"path": "/readyz",
                                                            "port": "http"},
                                                "periodSeconds": 1}}]}}}}


SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "soak", "namespace": NS},
           "spec": {"selector": {"app": "soak"},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


class Server:
    def __init__(self, v6bin, root):
        self.v6bin, self.root = v6bin, root
        self.data = os.path.join(root, "data")
        self.port = free_port()
        self.logpath = os.path.join(root, "server.log")
        self.proc = None

    def start(self):
        os.makedirs(self.data, exist_ok=True)
        with open(self.logpath, "ab") as logf:
            self.proc = subprocess.Popen(
                [self.v6bin, "server", "--insecure-http", "--data-dir", self.data,
                 "--listen", f"127.0.0.1:{self.port}"] +
                (["--event-ttl", CFG["event_ttl"]] if CFG["event_ttl"] else []),
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                if self.call("GET", "/readyz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"v6 server did not become ready (see {self.logpath})")

    def call(self, method, path, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path)
            r = c.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw.startswith(b"{") else None)
        finally:
            c.close()

    def apply(self, objs):
        p = subprocess.run([self.v6bin, "apply", "-f", "-"], capture_output=True, text=True,
                           input="\n---\n".join(json.dumps(o) for o in objs), timeout=60,
                           env=dict(os.environ, V6_SERVER=f"http://127.0.0.1:{self.port}"))
        if p.returncode != 0:
            raise RuntimeError(f"v6 apply failed: {p.stdout}{p.stderr}")

    def reset(self):
        """Everything this data dir started, server included (v6 reset)."""
        subprocess.run([self.v6bin, "reset", "--data-dir", self.data, "--timeout", "5s"],
                       capture_output=True, timeout=180)
        if self.proc:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def proc_kb(pid, key="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def sample(srv, load, t0):
    pid = srv.proc.pid
    store = sum(os.path.getsize(os.path.join(srv.data, f)) for f in os.listdir(srv.data)
                if f.startswith("v6.db"))
    _, evs = srv.call("GET", f"/api/v1/namespaces/{NS}/events")
    ppid = read_pid(os.path.join(srv.data, "proxy", "proxy.pid"))
    with load.lock:
        ok, failed = load.ok, load.failed
    return {"t_min": (time.monotonic() - t0) / 60, "rss_kb": proc_kb(pid),
            "anon_kb": proc_kb(pid, "RssAnon"),
            "fds": len(os.listdir(f"/proc/{pid}/fd")), "store_bytes": store,
            "events": len((evs or {}).get("items", [])),
            "proxy_rss_kb": proc_kb(ppid) if ppid else 0, "ok": ok, "failed": failed}


def show(s, label=""):
    print(f"{label:>7} {s['t_min']:6.1f} min  server RSS {s['rss_kb'] / 1024:6.1f} MB "
          f"(anon {s['anon_kb'] / 1024:4.1f})  "
          f"fds {s['fds']:4d}  store {s['store_bytes'] / 1e6:7.2f} MB  events {s['events']:5d}  "
          f"proxy RSS {s['proxy_rss_kb'] / 1024:5.1f} MB  requests {s['ok']:8d}  "
          f"failed {s['failed']}", flush=True)


def wait_serving(ip, version, timeout_s=120):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            c = http.client.HTTPConnection(ip, 80, timeout=2)
            c.request("GET", "/")
            r = c.getresponse()
            body = r.read()
            c.close()
            if r.status == 200 and json.loads(body).get("version") == version:
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{ip}:80 did not serve {version} within {timeout_s}s")


def growth(a, b, key):
    return (b[key] - a[key]) / a[key] if a[key] else 0.0


def summary(start, warm, end):
    print()
    show(start, "start")
    show(warm, "warm")
    show(end, "end")
    print()
    missed = []
    for key, what in (("rss_kb", "server RSS"), ("fds", "server fds"),
                      ("store_bytes", "store size"), ("proxy_rss_kb", "proxy RSS"),
                      ("events", "Events")):
        g = growth(warm, end, key)
        flat = g <= TARGET_GROWTH
        if not flat:
            missed.append(what)
        print(f"  {what:<11} {g * 100:+6.1f} % from {warm['t_min']:.0f} min to "
              f"{end['t_min']:.0f} min  (target <= +5 %: {'met' if flat else 'MISSED'})")
    print(f"  failed requests {end['failed']} of {end['ok'] + end['failed']}  "
          f"(target 0: {'met' if end['failed'] == 0 else 'MISSED'})")
    if end["failed"]:
        missed.append("failed requests")
    print(f"verdict: target {'MISSED (' + ', '.join(missed) + ')' if missed else 'met'}: "
          f"flat within 5 % from {warm['t_min']:.0f} to {end['t_min']:.0f} min, "
          f"0 failed requests", flush=True)
    return not missed


def main():
    ap = argparse.ArgumentParser(description="a soak of V6: load and a rollout a minute")
    ap.add_argument("v6", help="path of the v6 binary")
    ap.add_argument("--minutes", type=int, default=CFG["minutes"],
                    help="how long (default BENCH_SOAK_MIN or 60)")
    args = ap.parse_args()
    minutes = args.minutes
    warm_min = min(CFG["warmup_min"], minutes / 2)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    root = tempfile.mkdtemp(prefix="v6-bench-soak-", dir=CFG["tmp"])
    srv = Server(os.path.abspath(args.v6), root)
    load = None
    rc = 0
    try:
        srv.start()
        srv.apply([SERVICE, deployment("v0")])
        _, svc = srv.call("GET", f"/api/v1/namespaces/{NS}/services/soak")
        ip = svc["spec"]["clusterIP"]
        wait_serving(ip, "v0")
        log(f"soak: {minutes} min, {CFG['replicas']} replicas behind {ip}:80, "
            f"{CFG['clients']} clients, a rollout every {CFG['rollout_s']} s, "
            f"event TTL {CFG['event_ttl'] or '1h'}")
        load = ServiceLoad(ip, CFG["clients"], CFG["pause_ms"]).start()
        t0 = time.monotonic()
        start = warm = last = sample(srv, load, t0)
        show(start, "sample")
        version, next_roll = 0, t0 + CFG["rollout_s"]
        next_sample = t0 + CFG["sample_s"]
        end_t = t0 + minutes * 60
        while time.monotonic() < end_t:
            now = time.monotonic()
            if now >= next_roll:
                version += 1
                srv.apply([deployment(f"v{version}")])
                next_roll += CFG["rollout_s"]
            if now >= next_sample:
                last = sample(srv, load, t0)
                show(last, "sample")
                if warm is start and last["t_min"] >= warm_min - 0.01:
                    warm = last  # the first sample after the warm-up
                next_sample += CFG["sample_s"]
            if srv.proc.poll() is not None:
                raise RuntimeError("v6 server exited")
            time.sleep(0.2)
        load.close()
        end = sample(srv, load, t0)
        summary(start, warm, end)
    except (Interrupted, RuntimeError, OSError, ValueError, KeyError,
            subprocess.TimeoutExpired, http.client.HTTPException) as ex:
        log(f"aborted: {ex}")
        log_tail(srv.logpath)
        rc = 1
    finally:
        if load:
            load.stop.set()
        srv.reset()
        shutil.rmtree(root, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
