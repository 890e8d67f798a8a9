"""Autoscaling on the proxy's live traffic, as a user sees it: an HPA with
Pods metrics requests_per_second and request_duration_p99_seconds (the
manifest a cluster with prometheus-adapter takes unchanged), the values
served on custom.metrics.k8s.io/v1beta2; a load through the Service scales
the Deployment out, and when it stops the Deployment scales in only after
the stabilization window. An External metric is a PromQL query to a real
Prometheus (--prometheus-url), served on external.metrics.k8s.io."""
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import load as loadlib
from conftest import free_port
from test_pods import apply, wait_for
from test_rollout import container, service, service_ip, wait_serving

WINDOW_S = 10
CM = "/apis/custom.metrics.k8s.io/v1beta2"


def web(replicas=1):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"terminationGracePeriodSeconds": 5,
                                           "containers": [container("v1")]}}}}


def hpa(metrics, min_replicas=1, max_replicas=4):
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "web"},
                     "minReplicas": min_replicas, "maxReplicas": max_replicas,
                     "metrics": metrics,
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": WINDOW_S}}}}


def pods_metric(name, average):
    return {"type": "Pods", "pods": {"metric": {"name": name},
                                     "target": {"type": "AverageValue",
                                                "averageValue": average}}}


def replicas(s):
    _, d = s.json("GET", "/apis/apps/v1/namespaces/default/deployments/web", expect=200)
    return d["spec"]["replicas"]


def get_hpa(s):
    return s.json("GET", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web",
                  expect=200)[1]


def quantity(q):
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def rescales(s):
    _, l = s.json("GET", "/api/v1/namespaces/default/events", expect=200)
    return [e["message"] for e in l["items"] if e["reason"] == "SuccessfulRescale"]


def test_requests_per_second_scale_out_then_in_after_the_window(make_server):
    s = make_server("--hpa-sync-period", "1s", "--traffic-period", "500ms")
    apply(s, service("web"))
    apply(s, web())
    ip = service_ip(s)
    wait_serving(ip, "v1", timeout=60)
    # discoverable as on a cluster with an adapter
    _, disc = s.json("GET", CM, expect=200)
    names = {r["name"] for r in disc["resources"]}
    assert {"pods/requests_per_second", "pods/request_duration_p99_seconds",
            "services/requests_per_second"} <= names, names
    apply(s, hpa([pods_metric("requests_per_second", "10"),
                  pods_metric("request_duration_p99_seconds", "2")]))
    # about 30-40 requests/s against 10 per pod: out to the max of 4
    most = 1
    with loadlib.Load(ip, 80, clients=2, pause=0.05, max_seconds=240) as load:
        def grown():
            nonlocal most
            most = max(most, replicas(s))
            return most >= 3
        wait_for("scale-out on requests/s", grown, timeout=90, interval=0.3)
        # the values the HPA read, from the API a kubectl user (or the
        # controller manager on a cluster) reads
        q = urllib.parse.urlencode({"labelSelector": "app=web"})
        _, lst = s.json("GET", CM + "/namespaces/default/pods/*/requests_per_second?" + q,
                        expect=200)
        assert lst["kind"] == "MetricValueList", lst
        assert lst["items"] and all(i["describedObject"]["kind"] == "Pod" and
                                    i["metric"]["name"] == "requests_per_second"
                                    for i in lst["items"]), lst
        total = sum(quantity(i["value"]) for i in lst["items"])
        assert total > 5, lst
        _, one = s.json("GET", CM + "/namespaces/default/services/web/requests_per_second",
                        expect=200)
        assert len(one["items"]) == 1 and quantity(one["items"][0]["value"]) > 5, one
        s.json("GET", CM + "/namespaces/default/pods/*/no_such_metric", expect=404)
        wait_for("4 replicas", lambda: replicas(s) == 4, timeout=60, interval=0.3)
        time.sleep(2)
        assert replicas(s) == 4, "beyond maxReplicas"
        st = get_hpa(s)["status"]
        types = [m["type"] for m in st["currentMetrics"]]
        assert types == ["Pods", "Pods"], st
        p99 = quantity(st["currentMetrics"][1]["pods"]["current"]["averageValue"])
        # milli-units, as the controller manager writes them: a p99 under half a
        # millisecond (the test workload on a quiet machine) reads 0
        assert 0 <= p99 < 2, st
        get = s.v6("get", "hpa", check=True).stdout
        assert re.search(r"^web\s+Deployment/web\s+requests_per_second: \d+m?/10, "
                         r"request_duration_p99_seconds: \d+m?/2\s+1\s+4\s+4\s", get, re.M), get
        load.assert_clean()
    msgs = rescales(s)
    assert any(m.startswith("New size: ") and m.endswith("pods metric requests_per_second "
                                                         "above target") for m in msgs), msgs
    # the load stops: no scale-in before the window, then down to min
    stopped = time.monotonic()
    wait_for("scale-in", lambda: replicas(s) < 4, timeout=90, interval=0.2)
    waited = time.monotonic() - stopped
    print("load stopped -> first scale-in after %.1fs (window %ds)" % (waited, WINDOW_S))
    assert waited >= WINDOW_S, waited
    wait_for("down to 1", lambda: replicas(s) == 1, timeout=60, interval=0.3)
    assert "New size: 1; reason: All metrics below target" in rescales(s)


def start_prometheus(port, target, workdir):
    """A real Prometheus on port scraping target (the proxy's admin) every second."""
    from test_analysis import prometheus_exe
    cfg = os.path.join(workdir, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n- job_name: v6proxy\n"
                "  static_configs:\n  - targets: ['%s']\n" % target)
    log = open(os.path.join(workdir, "prom.log"), "wb")
    proc = subprocess.Popen([prometheus_exe(), "--config.file", cfg, "--storage.tsdb.path",
                             os.path.join(workdir, "prom-data"),
                             "--web.listen-address", "127.0.0.1:%d" % port],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    log.close()
    return proc


def test_external_metric_from_prometheus_scales(make_server, workdir):
    port = free_port()
    s = make_server("--hpa-sync-period", "1s", "--prometheus-url",
                    "http://127.0.0.1:%d" % port)
    m = re.search(r"admin on (127\.0\.0\.1:\d+)", s.log())
    assert m, s.log()
    proc = start_prometheus(port, m.group(1), workdir)
    try:
        apply(s, web())
        ext = "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/up?" + \
            urllib.parse.urlencode({"labelSelector": "job=v6proxy"})

        def scraped():
            code, body = s.json("GET", ext)
            return code == 200 and body["items"]
        wait_for("Prometheus scraped the proxy", scraped, timeout=60, interval=0.5)
        _, body = s.json("GET", ext, expect=200)
        assert body["kind"] == "ExternalMetricValueList", body
        item = body["items"][0]
        assert item["metricName"] == "up" and item["value"] == "1000m", item
        assert item["metricLabels"]["job"] == "v6proxy", item
        # up{job="v6proxy"} is 1 against a Value target of 0.4: ceil(2.5 x 1 ready pod)
        apply(s, hpa([{"type": "External", "external": {
            "metric": {"name": "up", "selector": {"matchLabels": {"job": "v6proxy"}}},
            "target": {"type": "Value", "value": "400m"}}}]))
        wait_for("scale-out on the external metric", lambda: replicas(s) == 3, timeout=60,
                 interval=0.3)
        st = get_hpa(s)["status"]
        assert st["currentMetrics"][0]["external"]["current"]["value"] == "1", st
        # a metric Prometheus has no series for: FailedGetExternalMetric, no move
        apply(s, hpa([{"type": "External", "external": {
            "metric": {"name": "no_such_series"},
            "target": {"type": "Value", "value": "1"}}}]))

        def failing():
            c = {x["type"]: x for x in get_hpa(s)["status"].get("conditions", [])}
            return c.get("ScalingActive", {}).get("reason") == "FailedGetExternalMetric"
        wait_for("FailedGetExternalMetric", failing, timeout=30, interval=0.3)
        assert replicas(s) == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
