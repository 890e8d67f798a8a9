"""Canary analysis: AnalysisRuns measured by the analysis controller against
real peers — a small HTTP server in the test (web provider and scrape
target), a real Prometheus (Debian's `prometheus`), and V6's own proxy
figures — end Successful, Failed, Inconclusive or Error as Argo Rollouts
defines, survive a kill -9 of the server, and reject bad conditions."""
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

from conftest import free_port

RUNS = "/apis/argoproj.io/v1alpha1/namespaces/default/analysisruns"
LEAN = ("--controllers", "*,-node,-proxy")   # no pods needed: lighter on 2 cores


class Target:
    """A JSON endpoint and a /metrics page the test controls, on loopback;
    counts requests per path."""

    def __init__(self):
        self.hits = {}
        self.hit = threading.Event()    # set on every request
        self.ratio = 0.99
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                target.hits[self.path] = target.hits.get(self.path, 0) + 1
                target.hit.set()
                bodies = {
                    "/ok": (200, {"data": {"ok": True, "ratio": target.ratio}}),
                    "/bad": (200, {"data": {"ok": False}}),
                    "/null": (200, {"data": {"ok": None}}),
                    "/boom": (500, {"error": "boom"}),
                }
                if self.path == "/metrics":
                    code, text, ctype = 200, ("app_ratio %g\napp_bad 0.5\n" % target.ratio), \
                        "text/plain; version=0.0.4"
                elif self.path in bodies:
                    code, obj = bodies[self.path]
                    text, ctype = json.dumps(obj), "application/json"
                else:
                    code, text, ctype = 404, "{}", "application/json"
                data = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def target():
    t = Target()
    yield t
    t.close()


def web_metric(name, url, **kw):
    m = {"name": name, "provider": {"web": {"url": url, "jsonPath": "{$.data.ok}"}}}
    m.update(kw)
    return m


def create_run(server, name, metrics, args=None, expect=201):
    body = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"metrics": metrics}}
    if args is not None:
        body["spec"]["args"] = args
    return server.json("POST", RUNS, body, expect=expect)[1]


def wait_phase(server, name, phases, timeout=40):
    deadline = time.time() + timeout
    run = None
    while time.time() < deadline:
        status, run = server.json("GET", RUNS + "/" + name)
        if status == 200 and run.get("status", {}).get("phase") in phases:
            return run
        time.sleep(0.2)
    raise AssertionError("run %s never reached %s: %s\n%s" % (
        name, phases, json.dumps(run, indent=1)[:3000], server.log()))


def events_for(server, name):
    _, evs = server.json("GET", "/api/v1/namespaces/default/events")
    return [e for e in evs["items"] if e["involvedObject"]["name"] == name]


def test_web_metric_succeeds_after_count_and_fails_past_failure_limit(make_server, target):
    server = make_server(*LEAN)
    create_run(server, "good", [web_metric("ok", target.url("/ok"), interval="1s",
                                           count=3, successCondition="result == true")])
    create_run(server, "bad", [web_metric("ok", target.url("/bad"), interval="1s",
                                          count=5, failureLimit=1,
                                          successCondition="result == true")])
    good = wait_phase(server, "good", ("Successful", "Failed", "Error", "Inconclusive"))
    assert good["status"]["phase"] == "Successful", good["status"]
    r = good["status"]["metricResults"][0]
    assert (r["count"], r["successful"], r["failed"], r["error"]) == (3, 3, 0, 0)
    assert [m["value"] for m in r["measurements"]] == ["true"] * 3
    assert all(m["phase"] == "Successful" and m["startedAt"] and m["finishedAt"]
               for m in r["measurements"])
    bad = wait_phase(server, "bad", ("Successful", "Failed", "Error", "Inconclusive"))
    assert bad["status"]["phase"] == "Failed"
    r = bad["status"]["metricResults"][0]
    assert (r["count"], r["failed"]) == (2, 2)   # failureLimit 1: the 2nd failure ends it
    assert bad["status"]["message"] == \
        'Metric "ok" assessed Failed due to failed (2) > failureLimit (1)'
    reasons = {e["reason"] for e in events_for(server, "good")} | \
        {e["reason"] for e in events_for(server, "bad")}
    assert {"AnalysisRunSuccessful", "AnalysisRunFailed"} <= reasons
    # the run is left alone once final: no request comes within 1.5 intervals
    hits = target.hits.get("/ok", 0)
    target.hit.clear()
    assert not target.hit.wait(1.5), target.hits
    assert target.hits.get("/ok", 0) == hits == 3


def test_no_data_is_inconclusive_never_a_pass(make_server, target):
    server = make_server(*LEAN)
    create_run(server, "nodata", [web_metric("ok", target.url("/null"),
                                             successCondition="result == true")])
    run = wait_phase(server, "nodata", ("Successful", "Failed", "Error", "Inconclusive"))
    assert run["status"]["phase"] == "Inconclusive"
    r = run["status"]["metricResults"][0]
    assert r["inconclusive"] == 1 and r["successful"] == 0
    assert "no data" in r["measurements"][0]["message"]


def test_errors_end_in_error_with_a_message(make_server, target):
    server = make_server(*LEAN)
    create_run(server, "boom", [web_metric("ok", target.url("/boom"), interval="1s",
                                           consecutiveErrorLimit=1)])
    dead = free_port()   # nothing listens there
    create_run(server, "refused", [web_metric("ok", "http://127.0.0.1:%d/" % dead,
                                              interval="1s", consecutiveErrorLimit=0)])
    create_run(server, "noarg", [web_metric("ok", "{{args.url}}")], args=[])
    run = wait_phase(server, "boom", ("Successful", "Failed", "Error", "Inconclusive"))
    assert run["status"]["phase"] == "Error"
    r = run["status"]["metricResults"][0]
    assert (r["error"], r["consecutiveError"], r["count"]) == (2, 2, 0)
    assert "received non 2xx response code: 500" in run["status"]["message"]
    run = wait_phase(server, "refused", ("Successful", "Failed", "Error", "Inconclusive"))
    assert run["status"]["phase"] == "Error"
    assert "consecutiveErrors (1) > consecutiveErrorLimit (0)" in run["status"]["message"]
    run = wait_phase(server, "noarg", ("Successful", "Failed", "Error", "Inconclusive"))
    assert run["status"]["phase"] == "Error"
    assert run["status"]["message"] == \
        "unable to resolve metric arguments: failed to resolve {{args.url}}"


def test_invalid_analysis_is_rejected_with_the_field_path(make_server):
    server = make_server(*LEAN)
    out = create_run(server, "x", [web_metric("ok", "http://h/", count=2)], expect=422)
    assert "count > 1, but interval not specified" in json.dumps(out), out
    body = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": "success-rate-t", "namespace": "default"},
            "spec": {"metrics": [web_metric("ok", "http://h/", successCondition="result >= (")]}}
    status, out = server.json("POST", "/apis/argoproj.io/v1alpha1/namespaces/default/"
                              "analysistemplates", body)
    assert status == 422, out
    fields = [c["field"] for c in out["details"]["causes"]]
    assert "spec.metrics[0].successCondition" in fields
    body["spec"]["metrics"][0]["successCondition"] = "result[0] >= {{args.min}}"
    body["spec"]["dryRun"] = [{"metricName": "ok"}]
    status, out = server.json("POST", "/apis/argoproj.io/v1alpha1/namespaces/default/"
                              "analysistemplates", body)
    assert status == 422 and "not supported by v6" in out["message"], out
    del body["spec"]["dryRun"]
    server.json("POST", "/apis/argoproj.io/v1alpha1/namespaces/default/analysistemplates",
                body, expect=201)
    p = server.v6("get", "analysistemplates")
    rows = [l.split() for l in p.stdout.splitlines()]
    assert p.returncode == 0 and rows[0][0] == "NAME", p.stdout + p.stderr
    assert [r[0] for r in rows[1:]] == ["success-rate-t"], p.stdout


def test_run_survives_kill_9_with_consistent_counters(make_server, target):
    server = make_server(*LEAN)
    create_run(server, "long", [web_metric("ok", target.url("/ok"), interval="1s", count=6,
                                           successCondition="result == true")])
    deadline = time.time() + 30
    while time.time() < deadline:
        _, run = server.json("GET", RUNS + "/long")
        res = run.get("status", {}).get("metricResults", [{}])[0]
        if res.get("count", 0) >= 2:
            break
        time.sleep(0.1)
    assert res.get("count", 0) >= 2, run
    server.kill(signal.SIGKILL)
    server.start()
    run = wait_phase(server, "long", ("Successful", "Failed", "Error", "Inconclusive"))
    assert run["status"]["phase"] == "Successful"
    r = run["status"]["metricResults"][0]
    assert (r["count"], r["successful"], r["failed"], r["error"]) == (6, 6, 0, 0)
    assert len(r["measurements"]) == 6
    starts = [m["startedAt"] for m in r["measurements"]]
    assert starts == sorted(starts) and len(set(starts)) == 6
    # a measurement lost in the kill may have hit the target, never counted twice
    assert 6 <= target.hits["/ok"] <= 7


# ---- a real Prometheus ----------------------------------------------------

def prometheus_exe():
    """Debian's prometheus (scripts/packages.txt lists it): missing is a
    failure, never a skip."""
    exe = shutil.which("prometheus")
    assert exe, "prometheus is not installed (scripts/packages.txt lists it)"
    return exe


@pytest.fixture
def prometheus(target):
    exe = prometheus_exe()
    d = tempfile.mkdtemp(prefix="v6-prom-")
    port = free_port()
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n- job_name: t\n  static_configs:\n"
                "  - targets: ['127.0.0.1:%d']\n" % target.port)
    log = open(os.path.join(d, "prom.log"), "wb")
    proc = subprocess.Popen([exe, "--config.file", os.path.join(d, "prometheus.yml"),
                             "--storage.tsdb.path", os.path.join(d, "data"),
                             "--web.listen-address", "127.0.0.1:%d" % port],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    log.close()
    url = "http://127.0.0.1:%d" % port
    try:
        deadline = time.time() + 60
        while time.time() < deadline:   # up, and the target scraped once
            try:
                with urllib.request.urlopen(url + "/api/v1/query?query=app_ratio",
                                            timeout=2) as r:
                    if json.load(r)["data"]["result"]:
                        break
            except OSError:
                pass
            assert proc.poll() is None, open(os.path.join(d, "prom.log")).read()[-2000:]
            time.sleep(0.3)
        else:
            raise AssertionError("prometheus never scraped the target")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(d, ignore_errors=True)


def prom_metric(name, address, query, cond, **kw):
    m = {"name": name, "successCondition": cond,
         "provider": {"prometheus": {"address": address, "query": query}}}
    m.update(kw)
    return m


def test_prometheus_decides_runs(make_server, prometheus):
    server = make_server(*LEAN)
    args = [{"name": "job", "value": "t"}]
    create_run(server, "prom-good", [prom_metric(
        "ratio", prometheus, 'app_ratio{job="{{args.job}}"}', "result[0] >= 0.95",
        interval="1s", count=2)], args=args)
    create_run(server, "prom-bad", [prom_metric(
        "ratio", prometheus, 'app_bad{job="{{args.job}}"}', "result[0] >= 0.95")], args=args)
    create_run(server, "prom-empty", [prom_metric(
        "ratio", prometheus, "no_such_metric", "result[0] >= 0.95")])
    create_run(server, "prom-syntax", [prom_metric(
        "ratio", prometheus, "sum(", "result[0] >= 0.95", consecutiveErrorLimit=0)])
    final = ("Successful", "Failed", "Error", "Inconclusive")
    good = wait_phase(server, "prom-good", final)
    assert good["status"]["phase"] == "Successful", good["status"]
    assert good["status"]["metricResults"][0]["measurements"][0]["value"] == "[0.99]"
    bad = wait_phase(server, "prom-bad", final)
    assert bad["status"]["phase"] == "Failed", bad["status"]
    assert bad["status"]["metricResults"][0]["measurements"][0]["value"] == "[0.5]"
    empty = wait_phase(server, "prom-empty", final)
    assert empty["status"]["phase"] == "Inconclusive", empty["status"]
    assert "empty vector" in empty["status"]["metricResults"][0]["message"]
    syntax = wait_phase(server, "prom-syntax", final)
    assert syntax["status"]["phase"] == "Error"
    assert "prometheus: bad_data" in syntax["status"]["message"]


# ---- V6's own provider: the proxy's live figures -------------------------

def test_v6_provider_reads_the_proxys_figures(make_server):
    from test_traffic import Load, deploy, pod_revision
    server = make_server("--traffic-period", "1s")
    ip = deploy(server)
    rev = pod_revision(server)
    with Load(ip, 80) as load:
        # no wait for samples: a measurement without data waits for the window
        v6 = {"service": "web", "revision": rev, "metric": "successRate", "window": "2s"}
        create_run(server, "v6-good", [{"name": "sr", "interval": "1s", "count": 2,
                                        "successCondition": "result >= 0.95",
                                        "provider": {"plugin": {"v6.dev/traffic": v6}}}])
        idle = dict(v6, revision="0000000000")
        create_run(server, "v6-idle", [{"name": "sr", "successCondition": "result >= 0.95",
                                        "provider": {"plugin": {"v6.dev/traffic": idle}}}])
        p99 = dict(v6, metric="p99")
        create_run(server, "v6-p99", [{"name": "p99", "failureCondition": "result > 1000",
                                       "provider": {"plugin": {"v6.dev/traffic": p99}}}])
        final = ("Successful", "Failed", "Error", "Inconclusive")
        good = wait_phase(server, "v6-good", final)
        idle = wait_phase(server, "v6-idle", final)
        lat = wait_phase(server, "v6-p99", final)
    assert load.codes.get("2xx", 0) > 50, load.codes
    assert good["status"]["phase"] == "Successful", good["status"]
    assert [m["value"] for m in good["status"]["metricResults"][0]["measurements"]] == \
        ["1", "1"]
    assert idle["status"]["phase"] == "Inconclusive", idle["status"]
    assert "no requests" in idle["status"]["metricResults"][0]["message"]
    assert lat["status"]["phase"] == "Successful", lat["status"]
    assert 0 < float(lat["status"]["metricResults"][0]["measurements"][0]["value"]) < 1000
