"""Nodes and DaemonSets end to end with real pods: the server's node agent
registers its Node (named by --node-name), the DaemonSet controller puts one
`v6 testapp` pod on it, follows the Node's labels, replaces the pod when the
template changes, and a killed and restarted server still runs exactly one."""
import json

import conftest

NS = "default"
NODE = "e2e-ds-node"
NODES = "/api/v1/nodes"
DSS = "/apis/apps/v1/namespaces/%s/daemonsets" % NS
PODS = "/api/v1/namespaces/%s/pods" % NS
MERGE = {"Content-Type": "application/merge-patch+json"}
HASH = "controller-revision-hash"


def wait_for(what, fn, timeout=30.0, interval=0.1):
    """conftest.wait_for with this file's argument order."""
    return conftest.wait_for(fn, timeout, what, interval)


def daemonset(name, version, node_selector=None, **spec):
    c = {"name": "app", "image": "v6/testapp",
         "command": ["v6", "testapp", "--version-string", version, "--port", "8080"],
         "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
         "ports": [{"name": "http", "containerPort": 8080}],
         "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                            "periodSeconds": 1}}
    pod_spec = {"terminationGracePeriodSeconds": 2, "containers": [c]}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    d = {"apiVersion": "apps/v1", "kind": "DaemonSet",
         "metadata": {"name": name, "namespace": NS},
         "spec": {"selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name, "ver": version}},
                               "spec": pod_spec}}}
    d["spec"].update(spec)
    return d


def apply(s, obj):
    return s.v6("apply", "-f", "-", input=json.dumps(obj), check=True)


def get_ds(s, name):
    return s.json("GET", DSS + "/" + name, expect=200)[1]


def live_pods(s, app):
    items = s.json("GET", PODS + "?labelSelector=app%3D" + app, expect=200)[1]["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def all_pods(s, app):
    return s.json("GET", PODS + "?labelSelector=app%3D" + app, expect=200)[1]["items"]


def is_ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod.get("status", {}).get("conditions", []))


def label_node(s, labels):
    s.json("PATCH", NODES + "/" + NODE, {"metadata": {"labels": labels}},
           headers=MERGE, expect=200)


def one_ready_pod(s, app, version=None):
    pods = all_pods(s, app)
    if len(pods) != 1 or not is_ready(pods[0]):
        return None
    if version and pods[0]["metadata"]["labels"].get("ver") != version:
        return None
    return pods[0]


def converged(s, name, want_ready=1):
    ds = get_ds(s, name)
    st = ds.get("status", {})
    ok = (st.get("observedGeneration") == ds["metadata"]["generation"] and
          st.get("desiredNumberScheduled") == want_ready and
          st.get("currentNumberScheduled") == want_ready and
          st.get("numberReady") == want_ready and
          st.get("numberAvailable", 0) == want_ready and
          st.get("updatedNumberScheduled", 0) == want_ready and
          st.get("numberMisscheduled") == 0 and
          st.get("numberUnavailable", 0) == 0)
    return st if ok else None


def test_node_registers_itself_and_stays_quiet(make_server):
    s = make_server("--node-name", NODE)
    node = wait_for("the Node", lambda: s.json("GET", NODES + "/" + NODE)[1]
                    if s.json("GET", NODES + "/" + NODE)[0] == 200 else None)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == NODE
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"]
    st = node["status"]
    ready = [c for c in st["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "True" and ready["lastHeartbeatTime"]
    assert {a["type"] for a in st["addresses"]} == {"InternalIP", "Hostname"}
    assert int(st["capacity"]["cpu"]) >= 1 and st["allocatable"]["pods"] == "110"
    assert st["nodeInfo"]["operatingSystem"] == "linux"
    out = s.v6("get", "nodes", check=True).stdout
    assert NODE in out
    # a user's label survives a restart; the agent's own labels come back
    s.json("PATCH", NODES + "/" + NODE, {"metadata": {"labels": {
        "role": "edge", "kubernetes.io/os": None}}}, headers=MERGE, expect=200)
    with conftest.Watch(s, NODES + "?fieldSelector=metadata.name%3D" + NODE) as w:
        w.assert_quiet(2, "the agent does not rewrite an unchanged Node")
    s.restart()
    labels = s.json("GET", NODES + "/" + NODE, expect=200)[1]["metadata"]["labels"]
    assert labels["role"] == "edge" and labels["kubernetes.io/os"] == "linux"


def test_daemonset_rejects_bad_specs_and_defaults(make_server):
    s = make_server("--node-name", NODE, "--controllers", "*,-node,-proxy")
    bad = daemonset("bad", "v1")
    bad["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    status, body = s.json("POST", DSS, bad)
    assert status == 422 and "spec.template.metadata.labels" in json.dumps(body)
    zero = daemonset("zero", "v1", updateStrategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})
    status, body = s.json("POST", DSS, zero)
    assert status == 422 and "maxUnavailable" in json.dumps(body)
    _, made = s.json("POST", DSS, daemonset("ok", "v1"), expect=201)
    assert made["spec"]["updateStrategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert made["spec"]["revisionHistoryLimit"] == 10


def test_daemonset_follows_node_labels(make_server):
    s = make_server("--node-name", NODE)
    wait_for("the Node", lambda: s.json("GET", NODES + "/" + NODE)[0] == 200)
    label_node(s, {"role": "edge"})
    apply(s, daemonset("agent", "v1", node_selector={"role": "edge"}))
    pod = wait_for("one ready daemon pod", lambda: one_ready_pod(s, "agent"))
    assert pod["spec"]["nodeName"] == NODE
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert pod["metadata"]["labels"][HASH]
    wait_for("status", lambda: converged(s, "agent"))
    # the node stops matching: the pod goes
    label_node(s, {"role": "core"})
    wait_for("the pod deleted", lambda: not all_pods(s, "agent"))
    st = wait_for("status", lambda: converged(s, "agent", want_ready=0))
    assert st["desiredNumberScheduled"] == 0
    # it matches again: the pod comes back
    label_node(s, {"role": "edge"})
    again = wait_for("the pod back", lambda: one_ready_pod(s, "agent"))
    assert again["metadata"]["uid"] != pod["metadata"]["uid"]
    wait_for("status", lambda: converged(s, "agent"))


def test_daemonset_update_replaces_pod_and_survives_kill(make_server):
    s = make_server("--node-name", NODE)
    apply(s, daemonset("logd", "v1"))
    old = wait_for("the v1 pod", lambda: one_ready_pod(s, "logd", "v1"))
    wait_for("status", lambda: converged(s, "logd"))
    apply(s, daemonset("logd", "v2"))
    new = wait_for("the v2 pod", lambda: one_ready_pod(s, "logd", "v2"), timeout=40)
    assert new["metadata"]["labels"][HASH] != old["metadata"]["labels"][HASH]
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    wait_for("status", lambda: converged(s, "logd"))
    revs = s.json("GET", "/apis/apps/v1/namespaces/%s/controllerrevisions" % NS,
                  expect=200)[1]["items"]
    by_hash = {r["metadata"]["labels"][HASH]: r["revision"] for r in revs
               if r["metadata"]["ownerReferences"][0]["name"] == "logd"}
    assert by_hash == {old["metadata"]["labels"][HASH]: 1, new["metadata"]["labels"][HASH]: 2}
    out = s.v6("rollout", "status", "daemonset/logd", "--timeout", "30s")
    assert out.returncode == 0, out.stderr
    assert 'daemon set "logd" successfully rolled out' in out.stdout
    # kill -9 and restart: still exactly the one pod, no duplicate
    rv = s.json("GET", PODS, expect=200)[1]["metadata"]["resourceVersion"]
    s.kill()
    s.start()
    with conftest.Watch(s, PODS, rv) as w:  # from before the kill: sees every change
        w.assert_quiet(3, "the restarted server keeps the one pod", lambda ev: ev["type"] in (
            "ADDED", "DELETED") and ev["object"]["metadata"]["name"].startswith("logd"))
    pods = all_pods(s, "logd")
    assert [p["metadata"]["uid"] for p in pods] == [new["metadata"]["uid"]]
    wait_for("ready again", lambda: one_ready_pod(s, "logd", "v2"))
    wait_for("status", lambda: converged(s, "logd"))
