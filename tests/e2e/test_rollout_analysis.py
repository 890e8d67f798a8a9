"""Rollouts decided by analysis: a canary whose new version fails 30 % of its
requests is rolled back by the V6 provider's success rate, and clients see
errors only in proportion to the canary's weight; a blue-green promotion
whose post-promotion analysis fails switches the active Service back."""
import http.client
import http.server
import json
import threading
import time

import load as loadlib
from test_rollout import (apply, get_version, healthy_on, phase, rollout, service,
                          service_ip, wait_for, wait_serving, RO_PATH)

TEMPLATE_PATH = "/apis/argoproj.io/v1alpha1/namespaces/default/analysistemplates"


class CountingLoad(loadlib.Load):
    """load.py's keep-alive clients on ip:80: every request is recorded as
    (time, ok), a non-2xx answer or an exception of any kind as not ok; the
    tests judge the failures per time window."""

    def __init__(self, ip, clients=3):
        super().__init__(ip, 80, clients=clients, max_seconds=300)

    def wait_count(self, n, since=0.0, timeout=30):
        """Waits until n requests were answered (or failed) after since."""
        deadline = time.time() + timeout
        while self.window(since, time.time() + 1)[0] < n:
            assert time.time() < deadline, "the load stalled"
            assert any(t.is_alive() for t in self.threads), "every client ended"
            time.sleep(0.02)


SUCCESS_RATE = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
    "metadata": {"name": "success-rate", "namespace": "default"},
    "spec": {"args": [{"name": "canary-hash"}],
             "metrics": [{"name": "success-rate", "interval": "2s", "count": 4,
                          "initialDelay": "2s",
                          "failureLimit": 1, "successCondition": "result >= 0.95",
                          "provider": {"plugin": {"v6.dev/traffic": {
                              "revision": "{{args.canary-hash}}",
                              "metric": "successRate", "window": "2s"}}}}]}}


# 20 % to the canary, then SUCCESS_RATE on the canary's revision decides.
ANALYSIS_STEPS = [{"setWeight": 20},
                  {"analysis": {"templates": [{"templateName": "success-rate"}],
                                "args": [{"name": "canary-hash", "valueFrom": {
                                    "podTemplateHashValue": "Latest"}}]}},
                  {"setWeight": 100}]


def test_canary_with_failing_analysis_rolls_back(make_server):
    server = make_server("--traffic-period", "500ms")
    steps = ANALYSIS_STEPS
    strat = {"canary": {"canaryService": "web-canary", "stableService": "web",
                        "steps": steps, "abortScaleDownDelaySeconds": 0}}
    apply(server, service("web"), service("web-canary"), SUCCESS_RATE,
          rollout("v1", strat, replicas=4))
    healthy_on(server, "v1")
    ip = service_ip(server)
    wait_serving(ip, "v1")
    with CountingLoad(ip) as load:
        load.wait_count(100)
        apply(server, rollout("v2", strat, replicas=4, extra=["--error-rate", "0.3"]))
        ro = wait_for(server, lambda r: r.get("status", {}).get("canary", {}).get(
            "weights", {}).get("canary", {}).get("weight") == 20, "weight 20")
        t_weight = time.time()
        ro = wait_for(server, phase("Degraded"), "abort by analysis", timeout=60)
        t_abort = time.time()
        load.wait_count(100, since=t_abort + 0.5)
        t_end = time.time()
    st = ro["status"]
    assert "RolloutAborted" in st["message"] and "success-rate" in st["message"], st
    assert st["canary"]["weights"]["canary"]["weight"] == 0
    run_name = st["canary"]["currentStepAnalysisRunStatus"]["name"]
    _, run = server.json("GET", "/apis/argoproj.io/v1alpha1/namespaces/default/"
                         "analysisruns/" + run_name, expect=200)
    assert run["status"]["phase"] == "Failed", run["status"]
    m = run["status"]["metricResults"][0]
    assert m["failed"] == 2 and m["measurements"], m
    # aborted within initialDelay + interval x failureLimit (+ scheduling slack)
    elapsed = t_abort - t_weight
    assert elapsed < 2 + 2 * 2 + 3, "abort took %.1f s" % elapsed
    # clients saw errors only in proportion to the weight (20 % x 30 % = 6 %)
    n, bad = load.window(t_weight, t_abort)
    assert n > 200 and bad / n < 0.15, (n, bad)
    # and none once traffic went back to stable (after the abort settled)
    n2, bad2 = load.window(t_abort + 0.5, t_end)
    assert n2 > 50 and bad2 == 0, (n2, bad2)
    assert {get_version(ip) for _ in range(20)} == {"v1"}
    _, evs = server.json("GET", "/api/v1/namespaces/default/events", expect=200)
    assert any(e["reason"] == "RolloutAborted" for e in evs["items"])
    print("canary abort after %.2f s at weight 20: %d/%d requests failed (%.1f %%)" % (
        elapsed, bad, n, 100.0 * bad / n))


class Verdict(http.server.BaseHTTPRequestHandler):
    """The analysis' web endpoint: answers ok after `delay` seconds and
    records when it answered."""
    ok = True
    delay = 0.0
    answered = []

    def do_GET(self):
        time.sleep(Verdict.delay)
        Verdict.answered.append(time.time())
        body = json.dumps({"data": {"ok": Verdict.ok}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def bluegreen(url):
    check = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
             "metadata": {"name": "verdict", "namespace": "default"},
             "spec": {"metrics": [{"name": "verdict", "count": 1,
                                   "successCondition": "result == true",
                                   "provider": {"web": {"url": url,
                                                        "jsonPath": "{$.data.ok}"}}}]}}
    strat = {"blueGreen": {"activeService": "web", "previewService": "web-preview",
                           "autoPromotionEnabled": True, "scaleDownDelaySeconds": 30,
                           "abortScaleDownDelaySeconds": 30,
                           "postPromotionAnalysis": {"templates": [{"templateName": "verdict"}]}}}
    return check, strat


def test_blue_green_failing_post_promotion_analysis_switches_back(server):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Verdict)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        check, strat = bluegreen("http://127.0.0.1:%d/" % httpd.server_address[1])
        Verdict.ok = True
        apply(server, service("web"), service("web-preview"), check, rollout("v1", strat))
        healthy_on(server, "v1")
        ip = service_ip(server)
        # healthy path: the promotion switches 100 % at once, nothing fails
        with CountingLoad(ip) as load:
            apply(server, rollout("v2", strat))
            healthy_on(server, "v2")
            load.wait_count(50, since=time.time())
        n, bad = load.window(0, time.time() + 1)
        assert n > 100 and bad == 0, (n, bad)
        assert {get_version(ip) for _ in range(20)} == {"v2"}
        # failing path: v3 goes live, the analysis fails, v2 is back in < 1 s
        Verdict.ok, Verdict.delay = False, 2.0
        del Verdict.answered[:]
        apply(server, rollout("v3", strat))
        wait_serving(ip, "v3", timeout=60)
        deadline = time.time() + 30
        while time.time() < deadline and get_version(ip) != "v2":
            time.sleep(0.01)
        t_back = time.time()
        assert get_version(ip) == "v2"
        ro = wait_for(server, phase("Degraded"), "Degraded after post-promotion failure")
        assert "verdict" in ro["status"]["message"], ro["status"]
        assert Verdict.answered, "the analysis never asked"
        back_s = t_back - Verdict.answered[-1]
        assert back_s < 1.0, "switch back took %.3f s" % back_s
        assert {get_version(ip) for _ in range(20)} == {"v2"}
        print("blue-green switch back %.3f s after the analysis failed" % back_s)
    finally:
        httpd.shutdown()


def start_prometheus(target, workdir):
    """A real Prometheus scraping target every second; returns (url, proc)."""
    import os
    import subprocess
    from conftest import free_port
    from test_analysis import prometheus_exe
    exe = prometheus_exe()
    port = free_port()
    cfg = os.path.join(workdir, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n- job_name: v6proxy\n"
                "  static_configs:\n  - targets: ['%s']\n" % target)
    log = open(os.path.join(workdir, "prom.log"), "wb")
    proc = subprocess.Popen([exe, "--config.file", cfg, "--storage.tsdb.path",
                             os.path.join(workdir, "prom-data"),
                             "--web.listen-address", "127.0.0.1:%d" % port],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    log.close()
    return "http://127.0.0.1:%d" % port, proc


def test_prometheus_analysis_decides_a_canary(make_server, workdir):
    import re
    import signal
    import urllib.request
    server = make_server()
    m = re.search(r"admin on (127\.0\.0\.1:\d+)", server.log())
    assert m, server.log()
    url, proc = start_prometheus(m.group(1), workdir)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(url + "/api/v1/query?query=up", timeout=2) as r:
                    if json.load(r)["data"]["result"]:
                        break
            except OSError:
                pass
            assert proc.poll() is None
            time.sleep(0.3)
        ok = ('sum(rate(v6_proxy_requests_total{revision="{{args.hash}}",code!="5xx"}[5s]))'
              ' / sum(rate(v6_proxy_requests_total{revision="{{args.hash}}"}[5s]))')
        tmpl = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
                "metadata": {"name": "prom-success", "namespace": "default"},
                "spec": {"args": [{"name": "hash"}],
                         "metrics": [{"name": "prom-success", "interval": "2s",
                                      "initialDelay": "6s", "count": 2, "failureLimit": 0,
                                      "successCondition": "result[0] >= 0.95",
                                      "provider": {"prometheus": {
                                          "address": url, "query": ok}}}]}}
        steps = [{"setWeight": 50},
                 {"analysis": {"templates": [{"templateName": "prom-success"}],
                               "args": [{"name": "hash", "valueFrom": {
                                   "podTemplateHashValue": "Latest"}}]}}]
        strat = {"canary": {"canaryService": "web-canary", "stableService": "web",
                            "steps": steps, "abortScaleDownDelaySeconds": 0,
                            "scaleDownDelaySeconds": 0, "trafficRouting": {"plugins": {
                                "argoproj-labs/gatewayAPI": {"httpRoute": "web"}}}}}
        apply(server, service("web"), service("web-canary"), tmpl, rollout("v1", strat))
        healthy_on(server, "v1")
        ip = service_ip(server)
        with CountingLoad(ip, clients=2):
            apply(server, rollout("v2", strat))
            ro = healthy_on(server, "v2")
            apply(server, rollout("v3", strat, extra=["--error-rate", "0.5"]))
            ro = wait_for(server, phase("Degraded"), "abort by Prometheus", timeout=90)
        assert "prom-success" in ro["status"]["message"], ro["status"]
        _, runs = server.json("GET", "/apis/argoproj.io/v1alpha1/namespaces/default/"
                              "analysisruns", expect=200)
        phases = sorted(r["status"]["phase"] for r in runs["items"])
        assert phases == ["Failed", "Successful"], phases
        wait_serving(ip, "v2")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
