"""An HPA on an Argo Rollout in the middle of a canary, as a user sees it:
the HPA changes the Rollout's replicas through its scale, the canary keeps
its 25 % weight in the proxy (the traffic split clients see), re-applying
the Rollout's manifest does not undo the HPA's count, and the promotion
ends on the new version with the HPA's replicas."""
import json
import time

from test_autoscale_rps import pods_metric
from test_rollout import (RO_PATH, apply, canary, get_rollout, get_version, healthy_on,
                          phase, promote, rollout, service, service_ip, wait_for,
                          wait_serving)


def rollout_hpa(min_replicas, max_replicas):
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "argoproj.io/v1alpha1",
                                        "kind": "Rollout", "name": "web"},
                     "minReplicas": min_replicas, "maxReplicas": max_replicas,
                     "metrics": [pods_metric("requests_per_second", "1000")]}}


def split(ip, n=400):
    counts = {}
    for _ in range(n):
        v = get_version(ip)
        counts[v] = counts.get(v, 0) + 1
    return counts


def ready_pods(server, version):
    _, l = server.json("GET", "/api/v1/namespaces/default/pods", expect=200)
    n = 0
    for p in l["items"]:
        env = p["spec"]["containers"][0]["command"]
        ready = any(c["type"] == "Ready" and c["status"] == "True"
                    for c in p.get("status", {}).get("conditions", []))
        n += ready and version in env and not p["metadata"].get("deletionTimestamp")
    return n


def test_hpa_on_a_rollout_during_a_canary_keeps_the_weights(make_server):
    server = make_server("--hpa-sync-period", "1s")
    steps = [{"setWeight": 25}, {"pause": {}}]
    apply(server, service("web"), service("web-canary"), rollout("v1", canary(steps)))
    healthy_on(server, "v1")
    apply(server, rollout("v2", canary(steps)))
    wait_for(server, phase("Paused"), "pause after setWeight 25")
    ip = service_ip(server)
    before = split(ip)
    # the HPA raises the Rollout from 2 to its minReplicas 4 mid-canary
    apply(server, rollout_hpa(4, 6))
    wait_for(server, lambda ro: ro["spec"]["replicas"] == 4, "the HPA's 4 replicas")
    deadline = time.time() + 90
    while ready_pods(server, "v1") < 4:
        assert time.time() < deadline, ("stable not scaled to 4", [
            (r["metadata"]["name"], r["spec"].get("replicas"), r.get("status"))
            for r in server.json("GET", "/apis/apps/v1/namespaces/default/replicasets")[1][
                "items"]], get_rollout(server)["status"])
        time.sleep(0.2)
    ro = wait_for(server, phase("Paused"), "still paused at 25")
    assert ro["status"]["canary"]["weights"]["canary"]["weight"] == 25, ro["status"]
    after = split(ip)
    for counts in (before, after):
        assert set(counts) == {"v1", "v2"}, counts
        assert 0.18 <= counts["v2"] / 400 <= 0.32, (before, after)
    # the manifest still says replicas 2: an edit of it keeps the HPA's 4
    p = server.v6("apply", "-f", "-", input=json.dumps(
        rollout("v2", canary(steps), annotations={"team": "a"})), check=True)
    assert "HorizontalPodAutoscaler web manages the replicas (4 now)" in p.stderr, p.stderr
    assert get_rollout(server)["spec"]["replicas"] == 4
    promote(server)
    healthy_on(server, "v2")
    wait_serving(ip, "v2")
    deadline = time.time() + 90
    while ready_pods(server, "v2") < 4:
        assert time.time() < deadline, "the promoted version does not run 4 pods"
        time.sleep(0.2)
    assert get_rollout(server)["spec"]["replicas"] == 4
    _, ro = server.json("GET", RO_PATH + "/web", expect=200)
    assert ro["status"].get("stableRS") == ro["status"].get("currentPodHash"), ro["status"]
