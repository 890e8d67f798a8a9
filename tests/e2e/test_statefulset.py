"""StatefulSets end to end with real pods: `v6 server` runs the statefulset
controller, the node agent and its volume manager; every pod is a small `sh`
that counts its boots in its own PersistentVolumeClaim, mounted at the same
mountPath in each pod (its own mount namespace: the server runs as root).
Each story checks what a user would see: pods, claims, Endpoints, status,
and the claim directories on disk. The fixtures stop every container."""
import json
import os
import time

import pytest

import conftest

NS = "default"
PODS = "/api/v1/namespaces/%s/pods" % NS
CLAIMS = "/api/v1/namespaces/%s/persistentvolumeclaims" % NS
SETS = "/apis/apps/v1/namespaces/%s/statefulsets" % NS
REV = "controller-revision-hash"

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="volume mounts need root (or user namespaces)")


def wait_for(what, fn, timeout=60.0, interval=0.1):
    """conftest.wait_for with this file's argument order."""
    return conftest.wait_for(fn, timeout, what, interval)


def apply(s, *objs):
    text = "\n---\n".join(json.dumps(o) for o in objs)
    return s.v6("apply", "-f", "-", input=text, check=True)


# The boot counter: "$HOSTNAME $VER $n" appended to the claim's history.
SCRIPT = ('d=%s; n=`cat $d/boots 2>/dev/null || echo 0`; n=`expr $n + 1`; '
          'echo $n > $d/boots; echo "$HOSTNAME $VER $n" >> $d/history; exec sleep 100000')


def statefulset(mnt, ver="v1", replicas=3, policy="OrderedReady", partition=0, name="web"):
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "serviceName": name, "replicas": replicas, "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": {"type": "RollingUpdate",
                               "rollingUpdate": {"partition": partition}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                    "name": "main", "image": "sh",
                    "command": ["sh", "-c", SCRIPT % mnt],
                    "env": [{"name": "VER", "value": ver}],
                    "readinessProbe": {"exec": {"command": ["true"]},
                                       "initialDelaySeconds": 1, "periodSeconds": 1},
                    "volumeMounts": [{"name": "data", "mountPath": mnt}]}]}},
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}}]}}


def headless(name="web"):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"clusterIP": "None", "selector": {"app": name},
                     "ports": [{"name": "tcp", "port": 5000}]}}


def pods(s, prefix="web-"):
    _, body = s.json("GET", PODS, expect=200)
    return {p["metadata"]["name"]: p for p in body["items"]
            if p["metadata"]["name"].startswith(prefix)}


def ready(p):
    return p is not None and p.get("status", {}).get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in p["status"].get("conditions", []))


def claim(s, name):
    status, body = s.json("GET", "%s/%s" % (CLAIMS, name))
    return body if status == 200 else None


def claim_dir(s, name):
    return os.path.join(s.data_dir, "node", "volumes", "pvc-" + claim(s, name)["metadata"]["uid"])


def history(s, name):
    with open(os.path.join(claim_dir(s, name), "history")) as f:
        return f.read().split("\n")[:-1]


def sts_status(s, name="web"):
    return s.json("GET", "%s/%s" % (SETS, name), expect=200)[1].get("status", {})


def all_ready(s, n, rev=None):
    ps = pods(s)
    return len(ps) == n and all(ready(p) and not p["metadata"].get("deletionTimestamp") and
                                (rev is None or p["metadata"]["labels"][REV] == rev)
                                for p in ps.values()) and ps


def watch_rollout(s, n, rev, partition=0):
    """Polls until pods partition..n-1 run rev and are Ready; returns the
    order in which ordinals reached rev. Checks on each look that the updated
    ordinals are a suffix and that at most one pod is down."""
    order = []
    deadline = time.time() + 90
    while time.time() < deadline:
        ps = pods(s)
        for i in range(n):
            p = ps.get("web-%d" % i)
            if p and p["metadata"]["labels"][REV] == rev and i not in order:
                order.append(i)
        updated = sorted(order)
        assert updated == list(range(n - len(updated), n)), order
        down = [i for i in range(n) if not ready(ps.get("web-%d" % i))]
        assert len(down) <= 1, down
        if len(order) == n - partition and all(ready(ps.get("web-%d" % i))
                                               for i in range(partition, n)):
            return order
        time.sleep(0.1)
    raise AssertionError("rollout to %s did not finish: %r" % (rev, order))


def test_statefulset_keeps_each_pods_data_through_updates_restarts_and_scaling(
        server, workdir):
    s = server
    mnt = os.path.join(workdir, "mnt", "data")
    apply(s, headless(), statefulset(mnt))

    # OrderedReady: web-k is created only once web-(k-1) is Running and Ready.
    def ordered_and_up():
        ps = pods(s)
        for k in (1, 2):
            if "web-%d" % k in ps:
                assert ready(ps.get("web-%d" % (k - 1))), sorted(ps)
        return all_ready(s, 3)
    ps = wait_for("3 ready pods, in order", ordered_and_up)
    for k in range(3):
        p = ps["web-%d" % k]
        assert p["spec"]["hostname"] == "web-%d" % k and p["spec"]["subdomain"] == "web"
        assert p["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == str(k)
        c = claim(s, "data-web-%d" % k)
        assert c["status"]["phase"] == "Bound", c
        assert c["status"]["capacity"]["storage"] == "1Gi"
        assert history(s, "data-web-%d" % k) == ["web-%d v1 1" % k]
    assert os.listdir(mnt) == []  # the host sees the mount point, not the data

    # Stable addresses: the headless Service's Endpoints name each pod.
    def endpoints():
        _, ep = s.json("GET", "/api/v1/namespaces/%s/endpoints/web" % NS)
        addrs = (ep or {}).get("subsets", [{}])[0].get("addresses", [])
        return {a.get("hostname"): a["ip"] for a in addrs} if len(addrs) == 3 else None
    eps = wait_for("endpoints with hostnames", endpoints)
    assert eps == {n: p["status"]["podIP"] for n, p in ps.items()}

    # Rolling update: highest ordinal first, one at a time, data kept.
    apply(s, statefulset(mnt, ver="v2"))
    v2 = wait_for("new revision", lambda: sts_status(s).get("updateRevision") !=
                  sts_status(s).get("currentRevision") and sts_status(s)["updateRevision"])
    assert watch_rollout(s, 3, v2) == [2, 1, 0]
    for k in range(3):
        assert history(s, "data-web-%d" % k) == ["web-%d v1 1" % k, "web-%d v2 2" % k]
    st = wait_for("rollout complete", lambda: sts_status(s).get("currentRevision") == v2 and
                  sts_status(s))
    assert st["updatedReplicas"] == 3 and st["readyReplicas"] == 3
    p = s.v6("rollout", "status", "statefulset/web", "--timeout", "30s", timeout=40)
    assert p.returncode == 0 and "statefulset rolling update complete 3 pods at revision " \
        + v2 in p.stdout, p.stdout + p.stderr

    # kill -9 of the server: the pods keep running and are adopted.
    uids = {n: p["metadata"]["uid"] for n, p in pods(s).items()}
    rv = s.json("GET", PODS, expect=200)[1]["metadata"]["resourceVersion"]
    s.restart()
    with conftest.Watch(s, PODS, rv) as w:  # from before the kill: sees every change
        w.assert_quiet(3, "the restarted server adopts the pods", lambda ev: ev["type"] in (
            "ADDED", "DELETED"))
    ps = wait_for("3 ready pods after restart", lambda: all_ready(s, 3))
    assert {n: p["metadata"]["uid"] for n, p in ps.items()} == uids
    for k in range(3):
        assert history(s, "data-web-%d" % k)[-1] == "web-%d v2 2" % k
        assert ps["web-%d" % k]["status"]["containerStatuses"][0]["restartCount"] == 0

    # partition=2: only web-2 moves to v3.
    apply(s, statefulset(mnt, ver="v3", partition=2))
    v3 = wait_for("v3 revision", lambda: sts_status(s).get("updateRevision") != v2 and
                  sts_status(s)["updateRevision"])
    assert watch_rollout(s, 3, v3, partition=2) == [2]
    with conftest.Watch(s, PODS) as w:     # the partition holds web-0 and web-1 at v2
        w.assert_quiet(2, "web-0 and web-1 stay at v2", lambda ev: (
            ev["object"]["metadata"]["name"] in ("web-0", "web-1") and
            ev["object"]["metadata"].get("labels", {}).get(REV) != v2))
    ps = pods(s)
    assert [ps["web-%d" % k]["metadata"]["labels"][REV] for k in range(3)] == [v2, v2, v3]
    assert history(s, "data-web-2")[-1] == "web-2 v3 3"
    st = sts_status(s)
    assert st["currentRevision"] == v2 and st["updatedReplicas"] == 1
    p = s.v6("rollout", "status", "statefulset/web", "--timeout", "30s", timeout=40)
    assert p.returncode == 0 and "partitioned roll out complete: 1 new pods" in p.stdout, \
        p.stdout + p.stderr

    # Scale down 3 -> 1: web-2, then web-1 go; the claims stay.
    s.v6("scale", "statefulset", "web", "--replicas", "1", check=True)
    wait_for("one pod left", lambda: list(pods(s)) == ["web-0"])
    dirs = [claim_dir(s, "data-web-%d" % k) for k in range(3)]
    assert all(os.path.isdir(d) for d in dirs)

    # A claim in use is protected; an unused one goes with its directory.
    s.v6("delete", "pvc", "data-web-0", "--wait=false", check=True)
    s.v6("delete", "pvc", "data-web-2", check=True)
    wait_for("claim data-web-2 gone", lambda: claim(s, "data-web-2") is None)
    wait_for("its directory removed", lambda: not os.path.exists(dirs[2]))
    c0 = claim(s, "data-web-0")
    assert c0 and c0["metadata"].get("deletionTimestamp"), c0
    assert os.path.isdir(dirs[0]) and os.path.isdir(dirs[1])


def test_parallel_statefulset_starts_every_pod_at_once(server, workdir):
    s = server
    mnt = os.path.join(workdir, "mnt", "data")
    apply(s, statefulset(mnt, replicas=3, policy="Parallel", name="par"))

    def three_exist():
        ps = pods(s, "par-")
        return len(ps) == 3 and ps
    ps = wait_for("3 pods", three_exist, timeout=30, interval=0.05)
    # The readiness probe waits 1 s: all three exist before any is Ready.
    assert not any(ready(p) for p in ps.values()), ps
    wait_for("3 ready", lambda: all(ready(p) for p in pods(s, "par-").values()) and
             len(pods(s, "par-")) == 3)
