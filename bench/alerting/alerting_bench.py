#!/usr/bin/env python3
"""bench/alerting/alerting_bench.py — how fast and how quietly alerts arrive.

Started by bench/alerting/run.sh, with the e2e helpers (tests/e2e: conftest's
Server, prom.py, am.py, test_alertmanager.py's incidents). Two figures:

1. Detection latency: a Deployment `web` (2 replicas of v6 testapp) behind a
   Service under steady traffic; the default rule pack
   (contrib/prometheus/v6-rules.yaml) applied through V6; then a new
   revision answering every request 500. From the first 500 a client sees to
   V6ServiceErrorBudgetBurn arriving at a webhook receiver (Prometheus ->
   Alertmanager -> V6's receiver -> the webhook), for each Prometheus
   scrape/evaluation interval in BENCH_INTERVALS (default "1s 15s");
   Alertmanager's group_wait is 1s.
2. Notifications per incident: the e2e scenario (a bad canary aborted by its
   analysis under traffic, a slow memory leak until its OOM kill, a flapping
   readiness probe, a crash-looping pod)
   counted at the robot behind V6 (noise control on) and at a webhook
   Alertmanager also sends to directly (Alertmanager alone).

The peer is Alertmanager alone for 2; for 1 the figure is end to end and its
parts are the configured intervals. Exit 0 unless it could not run.
"""
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from conftest import Server, wait_for  # noqa: E402
import test_alertmanager as scenario  # noqa: E402

def deployment(extra=()):
    d = scenario.deployment("web", "/readyz")
    d["spec"]["replicas"] = 2
    d["spec"]["template"]["spec"]["containers"][0]["command"] += list(extra)
    return d


class FirstError:
    """GETs to ip:80 from two threads; remembers the first 5xx answer."""

    def __init__(self, ip):
        self.ip, self.stop_, self.first_bad, self.n = ip, False, None, 0
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(2)]
        for t in self.threads:
            t.start()

    def run(self):
        deadline = time.time() + 600
        while not self.stop_ and time.time() < deadline:
            try:
                with urllib.request.urlopen("http://%s/" % self.ip, timeout=2) as r:
                    r.read()
            except urllib.error.HTTPError as e:
                if e.code >= 500 and self.first_bad is None:
                    self.first_bad = time.time()
            except OSError:
                pass
            self.n += 1
            time.sleep(0.02)

    def stop(self):
        self.stop_ = True
        for t in self.threads:
            t.join(10)


class Servers:
    """conftest's make_server outside pytest: servers in dirs of their own,
    each stopped (with what it started) by close()."""

    def __init__(self):
        self.servers, self.dirs = [], []

    def __call__(self, *extra):
        d = tempfile.TemporaryDirectory(prefix="v6-bench-alert-")
        self.dirs.append(d)
        s = Server(d.name, extra)
        self.servers.append(s)
        return s.start()

    def close(self):
        for s in self.servers:
            s.close()
        for d in self.dirs:
            d.cleanup()


def stack(d, servers, **kw):
    return scenario.Stack(servers, d, **kw)


def latency(interval):
    servers = Servers()
    with tempfile.TemporaryDirectory(prefix="v6-bench-alert-") as d:
        st = stack(d, servers, interval=interval)
        try:
            s, cap = st.s, st.cap
            pack = open(os.path.join(ROOT, "contrib", "prometheus", "v6-rules.yaml")).read()
            assert s.v6("apply", "-f", "-", input=pack).returncode == 0
            scenario.apply(s, scenario.web_service("web"), deployment())
            wait_for(lambda: s.v6("get", "deploy", "web").stdout.count(" 2/2 "), 60,
                     "web ready")
            _, svc = s.json("GET", "/api/v1/namespaces/default/services/web", expect=200)
            load = FirstError(svc["spec"]["clusterIP"])
            try:
                # the proxy's figures scraped, a few good samples in
                wait_for(lambda: st.p.query('v6_proxy_requests_total{service="default/web"}'),
                         120, "the proxy's figures in Prometheus", interval=0.5)
                time.sleep(3 * float(interval.rstrip("s")))
                scenario.apply(s, deployment(["--error-rate", "1"]))
                got = wait_for(lambda: [g for g in cap.got if "] V6ServiceErrorBudgetBurn\n"
                                        in g[2]["markdown"]["text"]], 300,
                               "V6ServiceErrorBudgetBurn at the receiver", interval=0.2)
            finally:
                load.stop()
            t_note, _, body = got[0]
            text = body["markdown"]["text"]
            cause = text.split("Probable cause: ", 1)[1].split("\n")[0] if \
                "Probable cause: " in text else ""
            return t_note - load.first_bad, cause
        finally:
            st.close()
            servers.close()


def incidents():
    servers = Servers()
    with tempfile.TemporaryDirectory(prefix="v6-bench-alert-") as d:
        st = stack(d, servers, flags=["--traffic-period", "500ms",
                                      "--alert-flap-threshold", "2"], also=["webhook"])
        try:
            oom_at = scenario.run_incidents(st.s, st.p, st.am, st.cap)
            counts, got = scenario.incident_counts(st.cap)
            leak = [n for n in got["V6ContainerMemoryLimitPredicted"][0] if n[1] == "firing"]
            lead = oom_at - leak[0][0] if leak else None
            return counts, lead
        finally:
            st.close()
            servers.close()


def main():
    out = {"latency": {}, "incidents": None}
    for iv in os.environ.get("BENCH_INTERVALS", "1s 15s").split():
        dt, cause = latency(iv)
        out["latency"][iv] = round(dt, 2)
        print("first bad request -> V6ServiceErrorBudgetBurn at the receiver: %.1f s "
              "(scrape and evaluation every %s, Alertmanager group_wait 1s)" % (dt, iv))
        print("  its probable cause: %s" % cause)
    counts, lead = incidents()
    out["incidents"] = counts
    out["leak_forecast_lead_s"] = lead
    print("slow memory leak: the forecast at the receiver %s before the OOM kill" % (
        "%.1f s" % lead if lead is not None else "NEVER"))
    w, a = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
    print("notifications per incident, with V6's noise control / Alertmanager alone:")
    for name, (x, y) in sorted(counts.items()):
        print("  %-32s %3d / %3d" % (name, x, y))
    print("  %-32s %3d / %3d  (%.0f %% fewer)" % ("total", w, a, 100.0 * (a - w) / max(a, 1)))
    if os.environ.get("BENCH_JSON"):
        with open(os.environ["BENCH_JSON"], "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
