"""VerticalPodAutoscaler end to end, as a user sees it: a real process pod
that burns CPU and holds 400 MiB against small requests, the recommender
sampling every second (`v6 server --vpa-recommender-interval 1s`) from the
node agent's usage figures. The recommendation appears and follows the
usage; in Initial mode a new pod gets it and the running one keeps its
requests; in Off mode nothing changes; the history survives kill -9; bad
specs are refused with their field paths."""
import json
import os
import re
import shutil
import subprocess

from test_pods import apply, wait_for

MIB = 1024 * 1024
HOG_BYTES = 400 * MIB

QTY = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
       "Ki": 1024, "Mi": MIB, "Gi": 1024 * MIB}


def qty(s):
    m = re.match(r"^([0-9.]+)([a-zA-Z]*)$", s)
    assert m, s
    return float(m.group(1)) * QTY[m.group(2)]


def deployment(name, command):
    """One container "work" requesting 50m / 64Mi, limited to 1 / 1Gi."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "work", "image": "python3",
                                     "command": command,
                                     "resources": {
                                         "requests": {"cpu": "50m", "memory": "64Mi"},
                                         "limits": {"cpu": "1", "memory": "1Gi"}}}]}}}}


def hog(name, stop_file, hold_bytes):
    """One python process that holds hold_bytes and burns CPU until
    stop_file exists (usage read from /proc or its cgroup)."""
    script = ("import os\n"
              "data = b'x' * %d\n"
              "while not os.path.exists(%r):\n"
              "    sum(range(20000))\n"
              "import time\n"
              "time.sleep(100000)\n" % (hold_bytes, stop_file))
    return deployment(name, ["python3", "-c", script])


def vpa(name, mode, **spec):
    body = {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "updatePolicy": {"updateMode": mode}}
    body.update(spec)
    return {"apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
            "metadata": {"name": name, "namespace": "default"}, "spec": body}


VPAS = "/apis/autoscaling.k8s.io/v1/namespaces/default/verticalpodautoscalers"
CHECKPOINTS = "/apis/autoscaling.k8s.io/v1/namespaces/default/verticalpodautoscalercheckpoints"


def get_vpa(s, name):
    return s.json("GET", "%s/%s" % (VPAS, name), expect=200)[1]


def target(s, name):
    recs = get_vpa(s, name).get("status", {}).get("recommendation", {}).get(
        "containerRecommendations", [])
    return recs[0]["target"] if recs else None


def pods(s, app):
    _, l = s.json("GET", "/api/v1/namespaces/default/pods?labelSelector=app%%3D%s" % app,
                  expect=200)
    return [p for p in l["items"] if not p["metadata"].get("deletionTimestamp")]


def resources(pod):
    return pod["spec"]["containers"][0]["resources"]


def checkpoint(s, name):
    status, cp = s.json("GET", "%s/%s" % (CHECKPOINTS, name))
    return cp if status == 200 else None


def test_recommendation_initial_off_and_restart(make_server, workdir):
    s = make_server("--vpa-recommender-interval", "1s", "--vpa-checkpoints-interval", "1s")
    stop = os.path.join(workdir, "stop")
    apply(s, hog("hog", stop, HOG_BYTES))
    apply(s, deployment("calm", ["sleep", "100000"]))   # idle from its start
    apply(s, vpa("hog", "Initial"))
    apply(s, vpa("calm", "Off"))
    wait_for("the hog pod runs", lambda: len(pods(s, "hog")) == 1 and
             pods(s, "hog")[0]["status"].get("phase") == "Running", timeout=60)
    first = pods(s, "hog")[0]

    # the recommendation appears and follows the usage: more than the 50m /
    # 64Mi requested, at least the 400 MiB held
    def follows():
        t = target(s, "hog")
        return t and qty(t["cpu"]) > 0.2 and qty(t["memory"]) >= HOG_BYTES
    wait_for("a recommendation above the usage", follows, timeout=90, interval=0.5)
    v = get_vpa(s, "hog")
    cond = {c["type"]: c for c in v["status"]["conditions"]}
    assert cond["RecommendationProvided"]["status"] == "True", cond
    rec = v["status"]["recommendation"]["containerRecommendations"][0]
    assert rec["containerName"] == "work"
    assert qty(rec["lowerBound"]["memory"]) <= qty(rec["target"]["memory"]) <= \
        qty(rec["upperBound"]["memory"]), rec
    # the idle one gets the minimums: 25m and 250Mi for its only container
    wait_for("calm's recommendation", lambda: target(s, "calm") is not None, timeout=60)
    assert target(s, "calm") == {"cpu": "25m", "memory": "262144k"}, target(s, "calm")

    # kubectl's columns for the CRD (NAME MODE CPU MEM PROVIDED AGE)
    out = s.v6("get", "vpa", check=True).stdout
    assert re.search(r"^NAME\s+MODE\s+CPU\s+MEM\s+PROVIDED\s+AGE$", out, re.M), out
    assert re.search(r"^hog\s+Initial\s+\d+m?\s+\d+[kMG]?\s+True\s+\S+$", out, re.M), out
    assert re.search(r"^calm\s+Off\s+25m\s+262144k\s+True\s+\S+$", out, re.M), out
    _, _, body = s.request("GET", VPAS, headers={
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    table = json.loads(body)
    assert [c["name"] for c in table["columnDefinitions"]] == \
        ["Name", "Mode", "CPU", "Mem", "Provided", "Age"], table["columnDefinitions"]

    # Initial: a new pod gets the recommendation, the running one keeps its requests
    s.v6("scale", "deployment/hog", "--replicas", "2", check=True)
    wait_for("the second hog pod", lambda: len(pods(s, "hog")) == 2, timeout=30)
    now = {p["metadata"]["name"]: p for p in pods(s, "hog")}
    old = now.pop(first["metadata"]["name"])
    new = list(now.values())[0]
    assert resources(old) == resources(first), resources(old)
    assert "vpaUpdates" not in old["metadata"].get("annotations", {})
    r = resources(new)
    assert qty(r["requests"]["cpu"]) > 0.2 and qty(r["requests"]["memory"]) >= HOG_BYTES, r
    # limits keep their ratio to the requests: 1 / 50m and 1Gi / 64Mi
    assert abs(qty(r["limits"]["cpu"]) / qty(r["requests"]["cpu"]) - 20) < 0.05, r
    assert abs(qty(r["limits"]["memory"]) / qty(r["requests"]["memory"]) - 16) < 0.01, r
    ann = new["metadata"]["annotations"]
    assert ann["vpaUpdates"] == "Pod resources updated by hog: container 0: cpu request, " \
        "cpu limit, memory request, memory limit", ann
    assert ann["vpaObservedContainers"] == "work", ann

    # Off: recommendations only; a new pod is created as written
    s.v6("scale", "deployment/calm", "--replicas", "2", check=True)
    wait_for("the second calm pod", lambda: len(pods(s, "calm")) == 2, timeout=30)
    for p in pods(s, "calm"):
        assert resources(p)["requests"] == {"cpu": "50m", "memory": "64Mi"}, resources(p)
        assert "vpaUpdates" not in p["metadata"].get("annotations", {}), p["metadata"]

    # describe: requests, usage percentiles, the recommendation, the history
    # (usage comes from the last checkpoint: wait for one with the peak)
    peak_re = r"^    memory\s+64Mi\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+\s+(\S+)"

    def described():
        d = s.v6("describe", "vpa", "hog", check=True).stdout
        m = re.search(peak_re, d, re.M)
        return d if m and qty(m.group(3)) >= HOG_BYTES else None
    desc = wait_for("describe to show the peak", described, timeout=30, interval=0.5)
    assert re.search(r"^Reference:\s+Deployment/hog$", desc, re.M), desc
    assert re.search(r"^Update Mode:\s+Initial$", desc, re.M), desc
    assert re.search(r"^    RESOURCE\s+REQUEST\s+USAGE-P50\s+USAGE-P90\s+PEAK\s+LOWER\s+"
                     r"TARGET\s+UPPER\s+UNCAPPED$", desc, re.M), desc
    m = re.search(peak_re, desc, re.M)
    assert qty(m.group(1)) <= qty(m.group(2)) <= qty(m.group(3)), desc
    assert re.search(r"^    cpu\s+50m\s+\d", desc, re.M), desc
    assert re.search(r"History: since \S+Z, \d+ samples", desc), desc
    assert "RecommendationProvided" in desc, desc

    # kill -9: the history continues from the checkpoint, it does not restart
    cp = checkpoint(s, "hog-work")
    before = cp["status"]["totalSamplesCount"]
    since = cp["status"]["firstSampleStart"]
    s.restart()

    def continued():
        c = checkpoint(s, "hog-work")
        return c and c["status"]["totalSamplesCount"] > before and c
    c = wait_for("the history to continue", continued, timeout=60, interval=0.5)
    assert c["status"]["firstSampleStart"] == since, (since, c["status"])
    t = target(s, "hog")
    assert t and qty(t["memory"]) >= HOG_BYTES, t
    open(stop, "w").close()


def test_an_oom_kill_bumps_the_memory_recommendation(make_server):
    """A container killed at its 320Mi limit with 300Mi requested: upstream's
    bump makes the peak max(300Mi + 100Mi, 300Mi x 1.2) = 400Mi, so the
    target is at least 400Mi + 15 %; from usage alone it could not pass
    320Mi x 1.05 (a bucket) x 1.15."""
    s = make_server("--vpa-recommender-interval", "1s")
    script = ("import time\nkeep = []\nwhile True:\n"
              "    keep.append(b'x' * (8 << 20))\n    time.sleep(0.02)\n")
    apply(s, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "oomer", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "oomer"}},
                 "template": {"metadata": {"labels": {"app": "oomer"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "eat", "image": "python3",
                                     "command": ["python3", "-c", script],
                                     "resources": {
                                         "requests": {"cpu": "10m", "memory": "300Mi"},
                                         "limits": {"memory": "320Mi"}}}]}}}})
    apply(s, vpa("oomer", "Off"))

    def bumped():
        t = target(s, "oomer")
        return t and qty(t["memory"]) >= 400 * MIB * 1.15 and t
    t = wait_for("the OOM bump", bumped, timeout=90, interval=0.5)
    st = pods(s, "oomer")[0]["status"]["containerStatuses"][0]
    assert st["lastState"]["terminated"]["reason"] == "OOMKilled", st
    print("after an OOM kill at 320Mi: target memory", t["memory"])


def refused(s, manifest):
    p = s.v6("apply", "-f", "-", input=json.dumps(manifest))
    assert p.returncode != 0, p.stdout
    return p.stderr


def test_bad_vpa_specs_are_refused_with_their_field_paths(server, tmp_path):
    err = refused(server, vpa("web", "Auto"))
    assert 'spec.updatePolicy.updateMode: unsupported value "Auto": not supported by v6' \
        in err, err
    err = refused(server, vpa("web", "Recreate"))
    assert '"Recreate"' in err and "not supported by v6" in err, err
    m = vpa("web", "Off")
    del m["spec"]["updatePolicy"]
    err = refused(server, m)
    assert "spec.updatePolicy.updateMode: required: v6 delivers updateMode \"Off\" and " \
        "\"Initial\"; upstream's default \"Auto\" (pod eviction) is not supported by v6" \
        in err, err
    err = refused(server, vpa("web", "Off", colour="blue"))
    assert "spec.colour" in err, err
    m = vpa("web", "Off")
    del m["spec"]["targetRef"]
    assert "spec.targetRef: required" in refused(server, m)
    err = refused(server, vpa("web", "Off", resourcePolicy={"containerPolicies": [
        {"containerName": "*", "mode": "Sometimes"}]}))
    assert 'spec.resourcePolicy.containerPolicies[0].mode: unsupported value ' \
        '"Sometimes": supported values: "Auto", "Off"' in err, err
    err = refused(server, vpa("web", "Off", resourcePolicy={"containerPolicies": [
        {"containerName": "app", "controlledResources": ["gpu"]}]}))
    assert "spec.resourcePolicy.containerPolicies[0].controlledResources[0]" in err, err
    err = refused(server, vpa("web", "Off", resourcePolicy={"containerPolicies": [
        {"containerName": "app", "minAllowed": {"cpu": "2"}, "maxAllowed": {"cpu": "1"}}]}))
    assert "spec.resourcePolicy.containerPolicies[0].minAllowed.cpu" in err, err
    err = refused(server, vpa("web", "Off", resourcePolicy={"containerPolicies": [
        {"containerName": "app", "maxAllowed": {"cpu": "lots"}}]}))
    assert "spec.resourcePolicy.containerPolicies[0].maxAllowed" in err, err
    # nothing half-applied; a good one is taken
    _, l = server.json("GET", VPAS, expect=200)
    assert l["items"] == [], l
    apply(server, vpa("web", "Off", recommenders=[{"name": "default"}],
                      resourcePolicy={"containerPolicies": [
                          {"containerName": "*", "controlledValues": "RequestsOnly",
                           "minAllowed": {"cpu": "10m"}, "maxAllowed": {"memory": "1Gi"}}]}))
    assert get_vpa(server, "web")["spec"]["updatePolicy"]["updateMode"] == "Off"
    # stock kubectl finds the kind by its short name and prints the CRD's columns
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl 1.32 is part of the test environment"
    p = subprocess.run([kubectl, "--cache-dir", str(tmp_path / "cache"), "--server",
                        server.url, "get", "vpa"], capture_output=True, text=True,
                       env=dict(os.environ, HOME=str(tmp_path),
                                KUBECONFIG=str(tmp_path / "none")), timeout=60)
    assert p.returncode == 0, p.stderr
    assert re.match(r"NAME\s+MODE\s+CPU\s+MEM\s+PROVIDED\s+AGE\nweb\s+Off\s", p.stdout), \
        p.stdout
