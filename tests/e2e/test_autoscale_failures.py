"""The autoscaler's known failure modes, fixed, as a user sees them: an
`apply` of a manifest that still carries spec.replicas does not fight the
HPA (a warning, the HPA's count stays), nor does a GitOps sync of one (the
Application stays Synced, selfHeal does not reset the count); a rolling update under a steady
load does not scale up (Kubernetes #72775); a scale-down under load goes
through the proxy's drain and no request fails."""
import json
import os
import time

import load as loadlib
from gitserve import Repo
from test_autoscale_rps import get_hpa, hpa, pods_metric, replicas, rescales, web
from test_pods import apply, wait_for
from test_rollout import container, service, service_ip, wait_serving


def apply_file(s, workdir, obj):
    path = os.path.join(workdir, "web.json")
    with open(path, "w") as f:
        json.dump(obj, f)
    return s.v6("apply", "-f", path, check=True)


def test_apply_with_replicas_keeps_the_hpa_count(make_server, workdir):
    # a long sync period: the HPA could not quietly repair a fight in time
    s = make_server("--hpa-sync-period", "60s")
    apply_file(s, workdir, web(replicas=1))
    apply(s, hpa([pods_metric("requests_per_second", "10")], min_replicas=3, max_replicas=5))
    wait_for("raised to minReplicas", lambda: replicas(s) == 3, timeout=30, interval=0.2)
    # the GitOps user edits the manifest (a new label) that still says 2
    d = web(replicas=2)
    d["metadata"]["labels"] = {"team": "a"}
    p = apply_file(s, workdir, d)
    assert "deployment.apps/web configured" in p.stdout, p.stdout
    assert ("Warning: deployment.apps/web: spec.replicas 2 is not applied: "
            "HorizontalPodAutoscaler web manages the replicas (3 now)") in p.stderr, p.stderr
    _, dep = s.json("GET", "/apis/apps/v1/namespaces/default/deployments/web", expect=200)
    assert dep["metadata"]["labels"] == {"team": "a"}, dep["metadata"]
    assert dep["spec"]["replicas"] == 3, dep["spec"]
    # dropping spec.replicas from the manifest does not reset it to 1 either
    d = web()
    del d["spec"]["replicas"]
    d["metadata"]["labels"] = {"team": "b"}
    p = apply_file(s, workdir, d)
    assert "Warning" not in p.stderr, p.stderr
    time.sleep(1)
    assert replicas(s) == 3
    # without an HPA, apply sets the replicas as always
    s.v6("delete", "hpa", "web", check=True)
    apply_file(s, workdir, web(replicas=2))
    assert replicas(s) == 2


def test_gitops_sync_keeps_the_hpa_count(make_server, workdir):
    s = make_server("--hpa-sync-period", "60s")
    repo = Repo(workdir)
    repo.write("app/web.json", json.dumps(web(replicas=1)))
    repo.write("app/hpa.json", json.dumps(
        hpa([pods_metric("requests_per_second", "10")], min_replicas=3, max_replicas=5)))
    repo.commit("web with an HPA")
    app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
           "metadata": {"name": "web", "namespace": "default"},
           "spec": {"project": "default",
                    "source": {"repoURL": repo.file_url, "targetRevision": "main",
                               "path": "app"},
                    "destination": {"server": "https://kubernetes.default.svc",
                                    "namespace": "default"},
                    "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}}
    apply(s, app)

    def count():
        status, _, body = s.request("GET", "/apis/apps/v1/namespaces/default/deployments/web")
        return json.loads(body)["spec"]["replicas"] if status == 200 else None
    wait_for("raised to minReplicas", lambda: count() == 3, timeout=30, interval=0.2)

    def app_status():
        _, a = s.json("GET", "/apis/argoproj.io/v1alpha1/namespaces/default/applications/web")
        st = (a or {}).get("status") or {}
        return st.get("sync", {}).get("status"), st.get("sync", {}).get("revision")
    # git says 2 replicas now and adds a label: the label lands, the count stays
    d = web(replicas=2)
    d["metadata"]["labels"] = {"team": "a"}
    repo.write("app/web.json", json.dumps(d))
    sha = repo.commit("label, replicas 2")
    s.request("POST", "/api/webhook", {"repoURL": repo.file_url})
    wait_for("synced to the new commit", lambda: app_status() == ("Synced", sha), timeout=60,
             interval=0.2)
    _, dep = s.json("GET", "/apis/apps/v1/namespaces/default/deployments/web", expect=200)
    assert dep["metadata"].get("labels", {}).get("team") == "a", dep["metadata"]
    # no fight: for several refreshes the count and the sync state hold
    for _ in range(10):
        s.request("POST", "/api/webhook", {"repoURL": repo.file_url})
        time.sleep(0.3)
        assert replicas(s) == 3
        assert app_status() == ("Synced", sha)
    with open(s.log_path, errors="replace") as f:
        assert "spec.replicas 2 in git is not applied" in f.read(), "no log of the kept count"


def test_rolling_update_under_steady_load_does_not_scale_up(make_server):
    s = make_server("--hpa-sync-period", "1s", "--traffic-period", "500ms")
    apply(s, service("web"))
    apply(s, web(replicas=2))
    ip = service_ip(s)
    wait_serving(ip, "v1", timeout=60)
    apply(s, hpa([pods_metric("requests_per_second", "10")], min_replicas=2,
                 max_replicas=6))
    with loadlib.Load(ip, 80, clients=2, pause=0.1, max_seconds=240) as load:
        # steady: the HPA measures both pods below target and stays at 2
        def measured():
            cm = get_hpa(s).get("status", {}).get("currentMetrics") or []
            return cm and "current" in cm[0].get("pods", {})
        wait_for("the HPA measures", measured, timeout=60, interval=0.3)
        time.sleep(3)
        assert replicas(s) == 2
        # a rolling update: surge pods come and go under the same load
        d = web(replicas=2)
        d["spec"]["template"]["spec"]["containers"] = [container("v2")]
        apply(s, d)
        most, deadline = 2, time.time() + 90
        while True:
            most = max(most, replicas(s))
            _, dep = s.json("GET", "/apis/apps/v1/namespaces/default/deployments/web",
                            expect=200)
            st = dep.get("status", {})
            if (st.get("updatedReplicas") == st.get("replicas") == st.get("readyReplicas")
                    == 2 and st.get("observedGeneration") == dep["metadata"]["generation"]):
                break
            assert time.time() < deadline, st
            time.sleep(0.2)
        wait_serving(ip, "v2")
        for _ in range(10):	# a few more syncs after the rollout
            most = max(most, replicas(s))
            time.sleep(0.3)
        load.assert_clean()
    assert most == 2, "the rolling update scaled the Deployment up to %d" % most
    assert not [m for m in rescales(s) if "above target" in m], rescales(s)


def test_scale_down_under_load_drops_no_request(make_server):
    s = make_server("--hpa-sync-period", "1s", "--traffic-period", "500ms")
    apply(s, service("web"))
    apply(s, web(replicas=4))
    ip = service_ip(s)
    wait_serving(ip, "v1", timeout=60)
    wait_for("4 ready", lambda: s.json(
        "GET", "/apis/apps/v1/namespaces/default/deployments/web")[1].get(
        "status", {}).get("readyReplicas") == 4, timeout=60, interval=0.3)
    h = hpa([pods_metric("requests_per_second", "1000")], min_replicas=1, max_replicas=4)
    h["spec"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 0}}
    with loadlib.Load(ip, 80, clients=3, pause=0.01, max_seconds=240) as load:
        load.wait_requests(50, 30)
        apply(s, h)
        # far below 1000/s per pod: 4 -> 1 while every client keeps sending
        wait_for("scale-in to 1", lambda: replicas(s) == 1, timeout=60, interval=0.2)
        wait_for("the others gone", lambda: len([
            p for p in s.json("GET", "/api/v1/namespaces/default/pods")[1]["items"]
            if p["metadata"]["labels"].get("app") == "web"]) == 1, timeout=60, interval=0.3)
        load.wait_requests(50, 30)
        load.assert_clean(min_ok=100)
    print("scale-down 4 -> 1 under load: %d requests, none failed" % load.ok)
