"""Scale to zero and back, as a user sees it: an HPA with minReplicas 0
(Kubernetes' HPAScaleToZero: an Object metric on the Service) takes an idle
Deployment to zero after the scale-down window; the next request is held by
the proxy (the Service's v6.dev/hold-requests-timeout) while one pod starts,
then served; a request nobody starts a pod for gets a 503 at the timeout."""
import http.client
import json
import re
import threading
import time
import urllib.request

from test_autoscale_rps import get_hpa, replicas, rescales, web
from test_pods import apply, wait_for
from test_rollout import service, service_ip

WINDOW_S = 4


def held_service(name, selector, timeout):
    svc = service(name)
    svc["spec"]["selector"] = selector
    svc["metadata"]["annotations"] = {"v6.dev/hold-requests-timeout": timeout}
    return svc


def zero_hpa():
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "web"},
                     "minReplicas": 0, "maxReplicas": 2,
                     "metrics": [{"type": "Object", "object": {
                         "metric": {"name": "requests_per_second"},
                         "describedObject": {"apiVersion": "v1", "kind": "Service",
                                             "name": "web"},
                         "target": {"type": "Value", "value": "5"}}}],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": WINDOW_S}}}}


def web_pods(s):
    _, l = s.json("GET", "/api/v1/namespaces/default/pods", expect=200)
    return [p for p in l["items"] if p["metadata"]["labels"].get("app") == "web"]


def test_idle_deployment_scales_to_zero_and_the_next_request_is_served(make_server):
    s = make_server("--hpa-sync-period", "1s", "--traffic-period", "500ms")
    apply(s, held_service("web", {"app": "web"}, "60s"))
    apply(s, web())
    # without an Object or External metric, 0 is refused as upstream does
    bad = zero_hpa()
    bad["spec"]["metrics"] = [{"type": "Pods", "pods": {
        "metric": {"name": "requests_per_second"},
        "target": {"type": "AverageValue", "averageValue": "5"}}}]
    p = s.v6("apply", "-f", "-", input=json.dumps(bad))
    assert p.returncode != 0 and "must specify at least one Object or External metric" in \
        p.stderr, p.stderr
    apply(s, zero_hpa())
    idle = time.monotonic()
    wait_for("scaled to zero", lambda: replicas(s) == 0, timeout=60, interval=0.2)
    assert time.monotonic() - idle >= WINDOW_S - 1.5
    wait_for("no pod left", lambda: not web_pods(s), timeout=60, interval=0.2)
    assert "New size: 0; reason: All metrics below target" in rescales(s), rescales(s)
    # the next request waits while one pod starts, then is answered; the
    # API is polled meanwhile for the moment the pod is Ready (the store's
    # timestamps have whole seconds)
    ip = service_ip(s)
    got = {}

    def one_request():
        try:
            c = http.client.HTTPConnection(ip, 80, timeout=60)
            c.request("GET", "/")
            r = c.getresponse()
            got["body"], got["status"] = r.read(), r.status
            c.close()
        except Exception as e:	# recorded, asserted below
            got["error"] = repr(e)
        got["t1"] = time.monotonic()
    admin = re.search(r"admin on (127\.0\.0\.1:\d+)", s.log()).group(1)
    held = []

    def watch_gauge():	# the proxy's gauge shows the request waiting
        while not held and "t1" not in got:
            with urllib.request.urlopen("http://%s/metrics" % admin, timeout=5) as m:
                if "\nv6_proxy_held_requests 1\n" in m.read().decode():
                    held.append(True)
            time.sleep(0.02)
    t0 = time.monotonic()
    th = threading.Thread(target=one_request, daemon=True)
    th.start()
    gauge = threading.Thread(target=watch_gauge, daemon=True)
    gauge.start()
    t_ready = None
    while th.is_alive() and time.monotonic() - t0 < 60:
        if t_ready is None and any(
                c["type"] == "Ready" and c["status"] == "True"
                for p in web_pods(s) for c in p.get("status", {}).get("conditions", [])):
            t_ready = time.monotonic()
        time.sleep(0.01)
    th.join(5)
    gauge.join(10)
    assert got.get("status") == 200, got
    assert json.loads(got["body"])["version"] == "v1"
    assert held, "v6_proxy_held_requests never showed the waiting request"
    # informational (bench/autoscale measures it): the API is polled, so the
    # response may come before a poll shows the pod Ready
    print("scale from zero: first response %.3f s after the request; the API showed the "
          "pod Ready %s" % (got["t1"] - t0, "%.0f ms before the response" %
                            ((got["t1"] - t_ready) * 1000) if t_ready else
                            "only after the response"))
    assert len(web_pods(s)) == 1
    assert replicas(s) == 1
    assert any(m.startswith("New size: 1; reason: Service metric requests_per_second above "
                            "target") for m in rescales(s)), rescales(s)
    st = get_hpa(s)["status"]
    assert st["currentMetrics"][0]["type"] == "Object", st


def test_a_held_request_gets_a_503_at_the_timeout(server):
    apply(server, held_service("idle", {"app": "none"}, "1s"))
    ip = service_ip(server, "idle")
    deadline = time.monotonic() + 30
    while True:	# the proxy opens the Service's listener soon after the apply
        try:
            c = http.client.HTTPConnection(ip, 80, timeout=30)
            c.connect()
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the Service's listener never opened"
            time.sleep(0.05)
    t0 = time.monotonic()
    c.request("GET", "/")
    r = c.getresponse()
    body = r.read()
    waited = time.monotonic() - t0
    c.close()
    assert r.status == 503, (r.status, body)
    assert b"no endpoint became ready in time" in body, body
    assert 0.9 <= waited < 10, waited
