"""Deployments and ReplicaSets end to end: the real server, its controllers,
and the test itself playing the kubelet (pod readiness written through the
status subresource), so that controller behaviour is observed exactly as a
user sees it: ReplicaSets, pods, revisions, conditions and events. The pods
are bound to a node that does not exist ("e2e-fake-node"), so the server's
own node agent leaves them to the test."""
import json
import subprocess
import time

import conftest

NS = "default"
DEPLOYS = "/apis/apps/v1/namespaces/%s/deployments" % NS
RSES = "/apis/apps/v1/namespaces/%s/replicasets" % NS
PODS = "/api/v1/namespaces/%s/pods" % NS
EVENTS = "/api/v1/namespaces/%s/events" % NS
MERGE = {"Content-Type": "application/merge-patch+json"}
REV = "deployment.kubernetes.io/revision"
FAKE_NODE = "e2e-fake-node"


def deployment(name="web", replicas=3, image="img:1", strategy=None, **spec):
    d = {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "namespace": NS},
         "spec": {"replicas": replicas,
                  "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"nodeName": FAKE_NODE,
                                        "containers": [{"name": "c", "image": image}]}}}}
    if strategy:
        d["spec"]["strategy"] = strategy
    d["spec"].update(spec)
    return d


def wait_for(fn, timeout=5.0, what="condition"):
    """conftest.wait_for with this file's argument order."""
    return conftest.wait_for(fn, timeout, what, 0.02)


def get(server, path):
    return server.json("GET", path, expect=200)[1]


def patch(server, path, body):
    return server.json("PATCH", path, body, headers=MERGE, expect=200)[1]


def pods(server, app="web"):
    """Pods of app that are not being deleted. Playing the kubelet of the fake
    node, it also finishes the graceful deletion of terminating pods, as a
    kubelet does once their containers stopped."""
    items = get(server, PODS + "?labelSelector=app%3D" + app)["items"]
    for p in items:
        if p["metadata"].get("deletionTimestamp"):
            server.request("DELETE", PODS + "/" + p["metadata"]["name"] +
                           "?gracePeriodSeconds=0")
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def rses(server, app="web"):
    return get(server, RSES + "?labelSelector=app%3D" + app)["items"]


def deploy(server, name="web"):
    return get(server, DEPLOYS + "/" + name)


def is_ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod.get("status", {}).get("conditions", []))


def mark_ready(server, pod, ready=True):
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    st = "True" if ready else "False"
    status, _ = server.json("PATCH", PODS + "/" + pod["metadata"]["name"] + "/status", {
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": st, "lastTransitionTime": now},
                                  {"type": "ContainersReady", "status": st,
                                   "lastTransitionTime": now}]}}, headers=MERGE)
    assert status in (200, 404)  # 404: scaled away meanwhile


def ready_all(server, app="web"):
    for p in pods(server, app):
        if not is_ready(p):
            mark_ready(server, p)


def cond(d, type_):
    for c in d.get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c
    return None


def complete(server, name="web"):
    d = deploy(server, name)
    st, want = d.get("status", {}), d["spec"]["replicas"]
    c = cond(d, "Progressing")
    return (st.get("observedGeneration") == d["metadata"]["generation"] and
            st.get("updatedReplicas", 0) == want and st.get("replicas", 0) == want and
            st.get("availableReplicas", 0) == want and
            c is not None and c["reason"] == "NewReplicaSetAvailable") and d


def roll_out(server, name="web", timeout=8.0):
    """Plays the kubelet until the rollout completes."""
    def step():
        ready_all(server, name)
        return complete(server, name)
    return wait_for(step, timeout, "rollout of %s" % name)


def set_image(server, image, name="web"):
    patch(server, DEPLOYS + "/" + name, {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": image}]}}}})


def events(server, kind, name):
    return [e for e in get(server, EVENTS)["items"]
            if e["involvedObject"]["kind"] == kind and e["involvedObject"]["name"] == name]


def current_rs(server, d):
    rev = d["metadata"]["annotations"][REV]
    return [r for r in rses(server) if r["metadata"]["annotations"][REV] == rev][0]


def test_deployment_creates_replicaset_and_pods_then_becomes_available(server):
    server.json("POST", DEPLOYS, deployment(), expect=201)
    rs = wait_for(lambda: rses(server), what="replicaset")[0]
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == "web-" + h
    assert rs["metadata"]["annotations"][REV] == "1"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "4"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    ref = rs["metadata"]["ownerReferences"][0]
    d = deploy(server)
    assert (ref["kind"], ref["name"], ref["uid"]) == ("Deployment", "web",
                                                       d["metadata"]["uid"])
    assert ref["controller"] and ref["blockOwnerDeletion"]
    ps = wait_for(lambda: len(pods(server)) == 3 and pods(server), what="3 pods")
    for p in ps:
        assert p["metadata"]["name"].startswith("web-%s-" % h)
        assert len(p["metadata"]["name"]) == len("web-%s-" % h) + 5
        assert p["metadata"]["labels"]["pod-template-hash"] == h
        pref = p["metadata"]["ownerReferences"][0]
        assert (pref["kind"], pref["uid"], pref["controller"]) == (
            "ReplicaSet", rs["metadata"]["uid"], True)
    d = wait_for(lambda: deploy(server)["status"].get("replicas") == 3 and deploy(server))
    assert d["metadata"]["annotations"][REV] == "1"
    assert cond(d, "Available")["status"] == "False"
    d = roll_out(server)
    st = d["status"]
    assert st["readyReplicas"] == 3 and st["availableReplicas"] == 3
    assert "unavailableReplicas" not in st
    assert cond(d, "Available")["reason"] == "MinimumReplicasAvailable"
    assert cond(d, "Available")["status"] == "True"
    rs = get(server, RSES + "/" + rs["metadata"]["name"])
    assert rs["status"]["readyReplicas"] == 3 and rs["status"]["availableReplicas"] == 3
    msgs = [e["message"] for e in events(server, "ReplicaSet", rs["metadata"]["name"])]
    assert sum(m.startswith("Created pod: web-") for m in msgs) == 3
    msgs = [e["message"] for e in events(server, "Deployment", "web")]
    assert "Scaled up replica set web-%s to 3" % h in msgs


def test_rolling_update_respects_max_surge_and_max_unavailable(server):
    server.json("POST", DEPLOYS, deployment(replicas=4, strategy={
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}), expect=201)
    first = roll_out(server)
    set_image(server, "img:2")
    seen_at = {}
    moments = 0
    deadline = time.time() + 15
    while True:
        ps = pods(server)
        rs_list = rses(server)
        moments += 1
        assert len(ps) <= 4 + 1, [p["metadata"]["name"] for p in ps]
        assert sum(is_ready(p) for p in ps) >= 4 - 1
        assert sum(r["spec"]["replicas"] for r in rs_list) <= 4 + 1
        now = time.time()
        for p in ps:
            n = p["metadata"]["name"]
            seen_at.setdefault(n, now)
            if not is_ready(p) and now - seen_at[n] > 0.1:
                mark_ready(server, p)
        d = complete(server)
        if d and d["metadata"]["generation"] == 2:
            break
        assert time.time() < deadline, "rollout did not finish"
        time.sleep(0.02)
    assert moments > 5
    assert d["metadata"]["annotations"][REV] == "2"
    by_rev = {r["metadata"]["annotations"][REV]: r for r in rses(server)}
    assert by_rev["1"]["spec"]["replicas"] == 0 and by_rev["2"]["spec"]["replicas"] == 4
    h2 = by_rev["2"]["metadata"]["labels"]["pod-template-hash"]
    assert by_rev["1"]["metadata"]["labels"]["pod-template-hash"] != h2
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in pods(server)} == {h2}
    assert first["metadata"]["uid"] == d["metadata"]["uid"]
    msgs = [e["message"] for e in events(server, "Deployment", "web")]
    old_name = by_rev["1"]["metadata"]["name"]
    assert "Scaled down replica set %s to 3 from 4" % old_name in msgs
    assert "Scaled down replica set %s to 0 from 1" % old_name in msgs


def test_scale_and_replace_deleted_pod(server):
    server.json("POST", DEPLOYS, deployment(replicas=2), expect=201)
    roll_out(server)
    server.json("PATCH", DEPLOYS + "/web/scale", {"spec": {"replicas": 4}},
                headers=MERGE, expect=200)
    wait_for(lambda: len(pods(server)) == 4, what="4 pods")
    d = roll_out(server)
    assert d["status"]["availableReplicas"] == 4
    assert len(rses(server)) == 1
    victim = pods(server)[0]["metadata"]["name"]
    status, _ = server.json("DELETE", PODS + "/" + victim)
    assert status in (200, 202)  # graceful: the pod is on a node
    ps = wait_for(lambda: len(pods(server)) == 4 and
                  victim not in [p["metadata"]["name"] for p in pods(server)] and
                  pods(server), what="a replacement pod")
    assert victim not in [p["metadata"]["name"] for p in ps]
    patch(server, DEPLOYS + "/web", {"spec": {"replicas": 1}})
    wait_for(lambda: len(pods(server)) == 1, what="scale down to 1")
    rs = rses(server)[0]
    msgs = [e["message"] for e in events(server, "ReplicaSet", rs["metadata"]["name"])]
    assert sum(m.startswith("Deleted pod: ") for m in msgs) == 3
    d = wait_for(lambda: complete(server), what="status after scale down")
    assert d["status"]["replicas"] == 1


def test_min_ready_seconds_delays_availability(server):
    server.json("POST", DEPLOYS, deployment(replicas=2, minReadySeconds=2), expect=201)
    wait_for(lambda: len(pods(server)) == 2)
    t0 = time.time()
    ready_all(server)
    wait_for(lambda: deploy(server)["status"].get("readyReplicas") == 2)
    assert deploy(server)["status"].get("availableReplicas", 0) == 0
    # Nothing writes meanwhile: the controller wakes up on its own timer.
    wait_for(lambda: deploy(server)["status"].get("availableReplicas") == 2, timeout=5)
    # Ready times have second precision: at least 2 s after the truncated one.
    assert time.time() >= int(t0) + 2
    assert cond(deploy(server), "Available")["status"] == "True"


def test_recreate_stops_old_pods_before_starting_new_ones(server):
    server.json("POST", DEPLOYS, deployment(replicas=2, strategy={"type": "Recreate"}),
                expect=201)
    roll_out(server)
    h1 = rses(server)[0]["metadata"]["labels"]["pod-template-hash"]
    set_image(server, "img:2")
    deadline = time.time() + 10
    while True:
        hashes = {p["metadata"]["labels"]["pod-template-hash"] for p in pods(server)}
        assert len(hashes) <= 1, "old and new pods at the same time"
        ready_all(server)
        d = complete(server)
        if d and d["metadata"]["generation"] == 2:
            break
        assert time.time() < deadline
        time.sleep(0.02)
    assert h1 not in {p["metadata"]["labels"]["pod-template-hash"] for p in pods(server)}
    assert d["metadata"]["annotations"][REV] == "2"


def test_paused_deployment_scales_but_does_not_roll_out(server):
    server.json("POST", DEPLOYS, deployment(replicas=2), expect=201)
    roll_out(server)
    patch(server, DEPLOYS + "/web", {"spec": {"paused": True}})
    set_image(server, "img:2")
    d = wait_for(lambda: (cond(deploy(server), "Progressing") or {}).get("reason") ==
                 "DeploymentPaused" and deploy(server))
    assert cond(d, "Progressing")["status"] == "Unknown"
    with conftest.Watch(server, RSES) as w:
        patch(server, DEPLOYS + "/web", {"spec": {"replicas": 3}})
        wait_for(lambda: len(pods(server)) == 3, what="scaled while paused")
        w.assert_quiet(1, "a paused Deployment creates no ReplicaSet",
                       lambda ev: ev["type"] == "ADDED")
    assert len(rses(server)) == 1
    patch(server, DEPLOYS + "/web", {"spec": {"paused": False}})
    wait_for(lambda: len(rses(server)) == 2, what="rollout after resume")
    d = roll_out(server)
    assert d["metadata"]["annotations"][REV] == "2"


def test_progress_deadline_exceeded_when_pods_never_become_ready(server):
    server.json("POST", DEPLOYS, deployment(replicas=2, progressDeadlineSeconds=2),
                expect=201)
    d = wait_for(lambda: (cond(deploy(server), "Progressing") or {}).get("reason") ==
                 "ProgressDeadlineExceeded" and deploy(server), timeout=8)
    c = cond(d, "Progressing")
    assert c["status"] == "False"
    assert c["message"] == 'ReplicaSet "%s" has timed out progressing.' % (
        rses(server)[0]["metadata"]["name"])
    assert cond(d, "Available")["status"] == "False"


def test_revision_history_limit_deletes_oldest_replicasets(server):
    server.json("POST", DEPLOYS, deployment(replicas=1, revisionHistoryLimit=1),
                expect=201)
    roll_out(server)
    for i in (2, 3, 4):
        set_image(server, "img:%d" % i)
        wait_for(lambda: complete(server) and
                 complete(server)["metadata"]["annotations"][REV] == str(i) or
                 ready_all(server), what="revision %d" % i, timeout=8)
    revs = wait_for(lambda: len(rses(server)) == 2 and sorted(
        r["metadata"]["annotations"][REV] for r in rses(server)), what="cleanup")
    assert revs == ["3", "4"]


def test_rollback_by_reapplying_old_template_reuses_its_replicaset(server):
    server.json("POST", DEPLOYS, deployment(replicas=2), expect=201)
    d1 = roll_out(server)
    rs1 = current_rs(server, d1)
    set_image(server, "img:2")
    wait_for(lambda: complete(server) and deploy(server)["metadata"]["generation"] == 2 or
             ready_all(server), timeout=8)
    set_image(server, "img:1")
    d = wait_for(lambda: complete(server) and deploy(server)["metadata"]["generation"] == 3 and
                 deploy(server) or ready_all(server), timeout=8)
    assert len(rses(server)) == 2
    rs = get(server, RSES + "/" + rs1["metadata"]["name"])
    assert rs["metadata"]["uid"] == rs1["metadata"]["uid"]
    assert rs["metadata"]["annotations"][REV] == "3"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert rs["spec"]["replicas"] == 2
    assert d["metadata"]["annotations"][REV] == "3"


def test_restarted_at_annotation_creates_new_pods(server):
    server.json("POST", DEPLOYS, deployment(replicas=1), expect=201)
    roll_out(server)
    before = {p["metadata"]["name"] for p in pods(server)}
    patch(server, DEPLOYS + "/web", {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}})
    wait_for(lambda: complete(server) and deploy(server)["metadata"]["generation"] == 2 or
             ready_all(server), timeout=8)
    after = {p["metadata"]["name"] for p in pods(server)}
    assert after and not (after & before)


def test_idle_deployment_writes_nothing(server):
    server.json("POST", DEPLOYS, deployment(replicas=2, minReadySeconds=1), expect=201)
    wait_for(lambda: complete(server) or ready_all(server), timeout=30, what="ready pods")
    wait_for(lambda: complete(server), timeout=30, what="the rollout to complete")
    with conftest.Watch(server, PODS) as w:
        w.assert_quiet(2.5, "an idle Deployment writes no pod")
    with conftest.Watch(server, DEPLOYS) as w:
        w.assert_quiet(1, "an idle Deployment writes no status")


def test_deleting_deployment_cascades_to_replicasets_and_pods(server):
    server.json("POST", DEPLOYS, deployment(replicas=2), expect=201)
    roll_out(server)
    server.json("DELETE", DEPLOYS + "/web", expect=200)
    wait_for(lambda: not rses(server) and not pods(server) and
             not get(server, PODS)["items"], what="cascading deletion")
    with conftest.Watch(server, PODS) as w:
        w.assert_quiet(0.5, "nothing recreates a pod of the deleted Deployment")
    assert not rses(server) and not get(server, PODS)["items"]


def test_rollout_completes_after_server_kill_9(server):
    server.json("POST", DEPLOYS, deployment(replicas=4, strategy={
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}), expect=201)
    roll_out(server)
    set_image(server, "img:2")
    wait_for(lambda: len(rses(server)) == 2, what="new replicaset")
    server.restart()  # kill -9, then start on the same data
    d = roll_out(server, timeout=10)
    assert d["metadata"]["annotations"][REV] == "2"
    assert len(rses(server)) == 2
    assert len(pods(server)) == 4
    h = current_rs(server, d)["metadata"]["labels"]["pod-template-hash"]
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in pods(server)} == {h}



def test_kubectl_rollout_undo_reuses_the_old_revisions_replicaset(server):
    # stock kubectl sends the old ReplicaSet's template back as Go encodes it
    # (resources: {}, creationTimestamp: null): that is still revision 1
    server.json("POST", DEPLOYS, deployment(replicas=2), expect=201)
    rs1 = current_rs(server, roll_out(server))
    set_image(server, "img:2")
    wait_for(lambda: complete(server) and deploy(server)["metadata"]["generation"] == 2 or
             ready_all(server), timeout=8)
    p = subprocess.run(["kubectl", "--server", server.url, "rollout", "undo", "deployment/web"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == "deployment.apps/web rolled back\n", p
    d = wait_for(lambda: complete(server) and deploy(server)["metadata"]["generation"] == 3 and
                 deploy(server) or ready_all(server), timeout=8)
    names = sorted(r["metadata"]["name"] for r in rses(server))
    assert len(names) == 2, names
    rs = get(server, RSES + "/" + rs1["metadata"]["name"])
    assert rs["metadata"]["uid"] == rs1["metadata"]["uid"]
    assert rs["metadata"]["annotations"][REV] == "3"
    assert rs["spec"]["replicas"] == 2
    assert d["metadata"]["annotations"][REV] == "3"
    assert [p["spec"]["containers"][0]["image"] for p in pods(server)] == ["img:1"] * 2
