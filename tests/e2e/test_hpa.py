"""HorizontalPodAutoscaler end to end, as a user sees it: real process pods
that burn CPU against their requests, an HPA reconciled every second
(`v6 server --hpa-sync-period 1s`), usage from the node agent's cgroup
figures (metrics.k8s.io). The load makes it scale out, up to maxReplicas
and no further; when the load stops it scales in only after the
scale-down stabilization window, down to minReplicas and no further; `v6 get hpa` and
`v6 describe hpa` show what kubectl shows."""
import json
import os
import re
import time

from test_pods import apply, wait_for

WINDOW_S = 12


def burner(stop_file, replicas=1):
    # a busy loop (the shell's own `[`, no fork) until stop_file exists;
    # 100m requested and allowed: about 100 % of its request while busy
    script = "while [ ! -e %s ]; do :; done; exec sleep 100000" % stop_file
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "burn", "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "burn"}},
                 "template": {"metadata": {"labels": {"app": "burn"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "burn", "image": "sh",
                                     "command": ["sh", "-c", script],
                                     "resources": {
                                         "requests": {"cpu": "100m"},
                                         "limits": {"cpu": "100m"}}}]}}}}


def hpa(min_replicas, max_replicas, percent, window_s):
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "burn", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "burn"},
                 "minReplicas": min_replicas, "maxReplicas": max_replicas,
                 "metrics": [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization",
                                               "averageUtilization": percent}}}],
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": window_s}}}}


def get_hpa(s):
    _, h = s.json("GET", "/apis/autoscaling/v2/namespaces/default/"
                  "horizontalpodautoscalers/burn", expect=200)
    return h


def replicas(s):
    _, d = s.json("GET", "/apis/apps/v1/namespaces/default/deployments/burn", expect=200)
    return d["spec"]["replicas"]


def events(s):
    _, l = s.json("GET", "/api/v1/namespaces/default/events", expect=200)
    return [e for e in l["items"] if e["involvedObject"]["kind"] == "HorizontalPodAutoscaler"]


def test_cpu_load_scales_out_to_max_then_in_after_the_window(make_server, workdir):
    s = make_server("--hpa-sync-period", "1s")
    stop = os.path.join(workdir, "stop")
    apply(s, burner(stop))
    apply(s, hpa(2, 3, 30, WINDOW_S))
    # 1 replica, below min: raised to 2; then about 100 % of request against a
    # 30 % target (a margin for a busy machine): 3 (max), never 4
    wait_for("scale-out to 3", lambda: replicas(s) == 3, timeout=90, interval=0.5)
    h = get_hpa(s)
    assert h["status"]["desiredReplicas"] == 3, h["status"]
    cur = h["status"]["currentMetrics"][0]["resource"]["current"]
    assert cur["averageUtilization"] > 30, h["status"]
    msgs = [e["message"] for e in events(s) if e["reason"] == "SuccessfulRescale"]
    assert "New size: 2; reason: Current number of replicas below Spec.MinReplicas" in msgs, \
        msgs
    assert any(re.match(r"New size: 3; reason: cpu resource utilization \(percentage of "
                        r"request\) above target$", m) for m in msgs), msgs
    # still loaded, still at max: ScalingLimited says why
    time.sleep(3)
    h = get_hpa(s)
    assert replicas(s) == 3
    cond = {c["type"]: c for c in h["status"]["conditions"]}
    assert cond["ScalingActive"]["reason"] == "ValidMetricFound", cond
    get = s.v6("get", "hpa", check=True).stdout
    assert re.search(r"^NAME\s+REFERENCE\s+TARGETS\s+MINPODS\s+MAXPODS\s+REPLICAS\s+AGE$",
                     get, re.M), get
    assert re.search(r"^burn\s+Deployment/burn\s+cpu: \d+%/30%\s+2\s+3\s+3\s+\S+$", get,
                     re.M), get
    desc = s.v6("describe", "hpa", "burn", check=True).stdout
    assert re.search(r"resource cpu on pods  \(as a percentage of request\):\s+\d+% "
                     r"\(\d+m\) / 30%", desc), desc
    assert re.search(r"Min replicas:\s+2", desc) and re.search(r"Max replicas:\s+3", desc)
    assert "SuccessfulRescale" in desc, desc
    assert re.search(r"^  ScalingActive\s+True\s+ValidMetricFound\s+the HPA was able to "
                     r"successfully calculate a replica count from cpu resource utilization "
                     r"\(percentage of request\)$", desc, re.M), desc
    # the load stops: no scale-in before the stabilization window has passed
    open(stop, "w").close()
    stopped = time.monotonic()
    wait_for("scale-in", lambda: replicas(s) < 3, timeout=120, interval=0.2)
    waited = time.monotonic() - stopped
    print("load stopped -> first scale-in after %.1fs (window %ds)" % (waited, WINDOW_S))
    assert waited >= WINDOW_S, waited
    assert replicas(s) == 2, "scaled in below minReplicas"
    msgs = [e["message"] for e in events(s) if e["reason"] == "SuccessfulRescale"]
    assert "New size: 2; reason: All metrics below target" in msgs, msgs
    # idle pods would make it 1; minReplicas holds it at 2 (once a partly
    # loaded sample's recommendation of 2, if any, has left the window)
    def limited():
        assert replicas(s) == 2, "scaled in below minReplicas"
        cond = {c["type"]: c for c in get_hpa(s)["status"]["conditions"]}
        return cond["ScalingLimited"]["reason"] == "TooFewReplicas"
    wait_for("ScalingLimited TooFewReplicas", limited, timeout=WINDOW_S + 20, interval=0.3)
    time.sleep(2)
    assert replicas(s) == 2


def test_autoscale_creates_an_hpa_as_kubectl_does(server):
    apply(server, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "containers": [{"name": "web", "image": "sh",
                                     "command": ["sleep", "1000"]}]}}}})
    p = server.v6("autoscale", "deploy/web", "--min", "2", "--max", "5", "--cpu-percent", "60")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "horizontalpodautoscaler.autoscaling/web autoscaled\n", p.stdout
    _, h = server.json("GET", "/apis/autoscaling/v2/namespaces/default/"
                       "horizontalpodautoscalers/web", expect=200)
    assert h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                           "name": "web"}
    assert h["spec"]["minReplicas"] == 2 and h["spec"]["maxReplicas"] == 5
    assert h["spec"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization", "averageUtilization": 60}
    # a target at 0 replicas: autoscaling is off, as in Kubernetes
    wait_for("ScalingDisabled", lambda: any(
        c["reason"] == "ScalingDisabled" for c in (server.json(
            "GET", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web")[1]
            .get("status") or {}).get("conditions", [])), timeout=40, interval=0.5)
    p = server.v6("autoscale", "deploy/web", "--min", "3", "--max", "2")
    assert p.returncode != 0
    assert "--max=MAXPODS must be larger or equal to --min=MINPODS, max: 2, min: 3" in \
        p.stderr, p.stderr
    p = server.v6("autoscale", "deploy/web")
    assert "--max=MAXPODS is required" in p.stderr, p.stderr
    # the schema is upstream's: maxReplicas is required, the defaults applied
    bad = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "bad", "namespace": "default"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}}}
    st, body = server.json("POST", "/apis/autoscaling/v2/namespaces/default/"
                           "horizontalpodautoscalers", bad)
    assert st == 422 and "spec.maxReplicas" in json.dumps(body), body
    ok = dict(bad, spec=dict(bad["spec"], maxReplicas=4, behavior={}))
    st, body = server.json("POST", "/apis/autoscaling/v2/namespaces/default/"
                           "horizontalpodautoscalers", ok)
    assert st == 201, body
    assert body["spec"]["minReplicas"] == 1
    assert body["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80
    assert body["spec"]["behavior"]["scaleUp"] == {
        "stabilizationWindowSeconds": 0, "selectPolicy": "Max",
        "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                     {"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert body["spec"]["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 300, "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
