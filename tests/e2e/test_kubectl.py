"""Stock kubectl 1.32 against V6, as a new user types it (issue 15, part 5):
`get` with kubectl's own columns (server-side Tables, -o wide by priority,
--watch, list paging), `get all` through discovery categories, `top pods`
through a discoverable metrics.k8s.io. kubectl runs with a throwaway
kubeconfig, home and cache so nothing from the machine leaks in."""
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import TIMEOUT_SCALE, wait_for, write

KUBECTL = shutil.which("kubectl")
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: testapp:1
        command: ["sleep", "600"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


@pytest.fixture
def kubectl(server, tmp_path):
    """Runs /usr/bin/kubectl against server; returns CompletedProcess."""
    assert KUBECTL, "kubectl 1.32 is part of the test environment"
    env = dict(os.environ, HOME=str(tmp_path), KUBECONFIG=str(tmp_path / "none"))

    def run(*args, check=True, timeout=60):
        p = subprocess.run(run.base + list(args), capture_output=True, text=True, env=env,
                           timeout=timeout * TIMEOUT_SCALE)
        if check:
            assert p.returncode == 0, (args, p.stdout, p.stderr[-3000:])
        return p
    run.env = env
    run.base = [KUBECTL, "--cache-dir", str(tmp_path / "cache"), "--server", server.url]
    return run


def rows(text):
    return [l.split() for l in text.splitlines()]


def header(text):
    """The header line split on runs of 2+ spaces (names like LAST SEEN)."""
    return [c.strip() for c in text.splitlines()[0].split("  ") if c.strip()]


def start_web(server, workdir, kubectl):
    server.v6("apply", "-f", write(workdir, "web.yaml", WEB), check=True)
    wait_for(lambda: rows(kubectl("get", "deployment", "web").stdout)[1][1] == "2/2", 60,
             "deployment web 2/2 ready in kubectl get")


def test_get_shows_kubectl_columns(server, workdir, kubectl):
    start_web(server, workdir, kubectl)
    out = kubectl("get", "deployments").stdout
    assert header(out) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], out
    assert rows(out)[1][:4] == ["web", "2/2", "2", "2"], out
    out = kubectl("get", "deploy", "-o", "wide").stdout
    assert header(out) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS",
                           "IMAGES", "SELECTOR"], out
    assert rows(out)[1][5:] == ["app", "testapp:1", "app=web"], out

    out = kubectl("get", "pods").stdout
    assert header(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], out
    pods = rows(out)[1:]
    assert len(pods) == 2 and all(r[1:4] == ["1/1", "Running", "0"] for r in pods), out
    out = kubectl("get", "pods", "-o", "wide").stdout
    assert header(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                           "NOMINATED NODE", "READINESS GATES"], out
    pod = server.json("GET", "/api/v1/namespaces/default/pods", expect=200)[1]["items"][0]
    line = next(r for r in rows(out) if r[0] == pod["metadata"]["name"])
    assert line[5:] == [pod["status"]["podIP"], pod["spec"]["nodeName"], "<none>", "<none>"]

    out = kubectl("get", "svc", "-o", "wide").stdout
    assert header(out) == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE",
                           "SELECTOR"], out
    svc = server.json("GET", "/api/v1/namespaces/default/services/web", expect=200)[1]
    assert rows(out)[1][:5] == ["web", "ClusterIP", svc["spec"]["clusterIP"], "<none>",
                                "80/TCP"] and rows(out)[1][6] == "app=web", out

    out = kubectl("get", "rs").stdout
    assert header(out) == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"], out
    assert rows(out)[1][1:4] == ["2", "2", "2"], out
    out = kubectl("get", "nodes", "-o", "wide").stdout
    assert header(out)[:6] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]
    assert rows(out)[1][1] == "Ready", out
    out = kubectl("get", "namespaces").stdout
    assert header(out) == ["NAME", "STATUS", "AGE"] and ["default", "Active"] == \
        next(r for r in rows(out) if r[0] == "default")[:2], out
    out = kubectl("get", "endpoints", "web").stdout
    assert header(out) == ["NAME", "ENDPOINTS", "AGE"] and ":8080" in rows(out)[1][1], out
    out = kubectl("get", "events").stdout
    assert header(out) == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], out
    assert "ScalingReplicaSet" in out and "deployment/web" in out, out
    # -A puts kubectl's NAMESPACE column first, from each row's metadata.
    out = kubectl("get", "deploy", "-A").stdout
    assert header(out)[:3] == ["NAMESPACE", "NAME", "READY"] and \
        rows(out)[1][:2] == ["default", "web"], out
    # One object, and the labels kubectl takes from the row's metadata.
    out = kubectl("get", "deploy", "web", "--show-labels").stdout
    assert header(out)[-1] == "LABELS", out
    out = kubectl("get", "cm", "--no-headers").stdout
    assert "NAME" not in out


def test_server_tables_follow_the_printers(server, workdir, kubectl):
    """What kubectl receives: meta.k8s.io/v1 Tables with typed cells, the
    object per includeObject, v1beta1 when asked, plain JSON otherwise."""
    start_web(server, workdir, kubectl)
    _, t = server.json("GET", "/apis/apps/v1/namespaces/default/deployments",
                       headers={"Accept": TABLE}, expect=200)
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert [(c["name"], c["type"], c["priority"]) for c in t["columnDefinitions"]] == [
        ("Name", "string", 0), ("Ready", "string", 0), ("Up-to-date", "string", 0),
        ("Available", "string", 0), ("Age", "string", 0), ("Containers", "string", 1),
        ("Images", "string", 1), ("Selector", "string", 1)]
    row = t["rows"][0]
    assert row["cells"][:4] == ["web", "2/2", 2, 2]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "web" and "spec" not in row["object"]
    _, t = server.json("GET", "/apis/apps/v1/namespaces/default/deployments?"
                       "includeObject=Object", headers={"Accept": TABLE}, expect=200)
    assert t["rows"][0]["object"]["spec"]["replicas"] == 2
    _, t = server.json("GET", "/apis/apps/v1/namespaces/default/deployments/web?"
                       "includeObject=None", headers={
                           "Accept": "application/json;as=Table;v=v1beta1;g=meta.k8s.io"},
                       expect=200)
    assert t["apiVersion"] == "meta.k8s.io/v1beta1" and "object" not in t["rows"][0]
    status, _ = server.json("GET", "/api/v1/namespaces/default/pods?includeObject=All",
                            headers={"Accept": TABLE})
    assert status == 400
    _, plain = server.json("GET", "/apis/apps/v1/namespaces/default/deployments",
                           expect=200)
    assert plain["kind"] == "DeploymentList"
    # A CRD kind: Argo's additionalPrinterColumns, null where nothing is set.
    _, t = server.json("GET", "/apis/argoproj.io/v1alpha1/namespaces/default/rollouts",
                       headers={"Accept": TABLE}, expect=200)
    assert [(c["name"], c["type"]) for c in t["columnDefinitions"]] == [
        ("Name", "string"), ("Desired", "integer"), ("Current", "integer"),
        ("Up-to-date", "integer"), ("Available", "integer"), ("Age", "date")]
    assert t["rows"] == []


def test_get_all_lists_what_a_cluster_lists(server, workdir, kubectl):
    start_web(server, workdir, kubectl)
    out = kubectl("get", "all").stdout
    names = [r[0] for r in rows(out) if r and r[0] != "NAME"]
    assert "service/web" in names and "deployment.apps/web" in names, out
    assert sum(n.startswith("pod/web-") for n in names) == 2, out
    assert sum(n.startswith("replicaset.apps/web-") for n in names) == 1, out
    assert not any(n.startswith(("configmap/", "endpoints/", "event")) for n in names), out
    p = kubectl("api-resources", "--categories", "all", "-o", "name")
    assert set(p.stdout.split()) >= {"pods", "services", "deployments.apps",
                                     "replicasets.apps", "statefulsets.apps",
                                     "daemonsets.apps", "jobs.batch", "cronjobs.batch"}
    assert "configmaps" not in p.stdout.split()


def test_top_pods_and_nodes_find_the_metrics_api(server, workdir, kubectl):
    start_web(server, workdir, kubectl)

    def top():
        p = kubectl("top", "pods", check=False)
        return p if p.returncode == 0 and len(rows(p.stdout)) == 3 else None
    p = wait_for(top, 60, "kubectl top pods to list both pods")
    assert header(p.stdout) == ["NAME", "CPU(cores)", "MEMORY(bytes)"], p.stdout
    assert all(r[0].startswith("web-") and r[1].endswith("m") and r[2].endswith("Mi")
               for r in rows(p.stdout)[1:]), p.stdout

    # The node's own row: the machine's CPU and memory against its allocatable.
    node = server.json("GET", "/api/v1/nodes", expect=200)[1]["items"][0]["metadata"]["name"]
    p = wait_for(lambda: (lambda q: q if q.returncode == 0 else None)(
        kubectl("top", "nodes", check=False)), 30, "kubectl top nodes")
    assert header(p.stdout) == ["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]
    row = rows(p.stdout)[1]
    assert row[0] == node and row[1].endswith("m") and row[2].endswith("%") and \
        row[3].endswith("Mi") and int(row[3][:-2]) > 0, p.stdout


def test_list_paging_follows_continue_tokens(server, workdir, kubectl):
    for i in range(7):
        server.json("POST", "/api/v1/namespaces/default/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c%d" % i},
            "data": {"k": "v"}}, expect=201)
    p = kubectl("get", "configmaps", "--chunk-size=3", "-v=6")
    assert header(p.stdout) == ["NAME", "DATA", "AGE"], p.stdout
    assert [r[:2] for r in rows(p.stdout)[1:]] == [["c%d" % i, "1"] for i in range(7)]
    gets = [l for l in p.stderr.splitlines() if "/configmaps?" in l]
    assert len([l for l in gets if "limit=3" in l]) == 3, gets
    assert len([l for l in gets if "continue=" in l]) == 2, gets


def test_get_watch_prints_rows_as_they_change(server, workdir, kubectl):
    start_web(server, workdir, kubectl)
    proc = subprocess.Popen(kubectl.base + ["get", "deployments", "--watch"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=kubectl.env)
    try:
        lines = []
        import threading
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                                  daemon=True)
        reader.start()
        wait_for(lambda: len(lines) >= 2, 30, "the first rows of kubectl get -w")
        assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
        server.v6("scale", "deployment", "web", "--replicas", "3", check=True)
        wait_for(lambda: any(l.split()[1:2] == ["3/3"] for l in lines[1:]), 60,
                 "kubectl get -w to show web 3/3: %r" % lines)
        assert sum(l.split()[0] == "NAME" for l in lines) == 1, lines
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


ROLLOUT = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: testapp:1
        command: ["sleep", "600"]
        env: [{name: MODE, value: "one"}]
  strategy:
    canary:
      steps: [{setWeight: 50}, {pause: {}}]
"""


def test_apply_validates_diffs_and_explains(server, workdir, kubectl):
    """Client-side apply with kubectl's default (strict) validation: the
    server publishes OpenAPI v3 with fieldValidation, so kubectl lets the
    server validate; diff; explain reads the published schemas."""
    path = write(workdir, "web.yaml", WEB)
    p = kubectl("apply", "-f", path)
    assert p.stdout.split("\n")[:2] == ["deployment.apps/web created",
                                        "service/web created"], p.stdout
    d = server.json("GET", "/apis/apps/v1/namespaces/default/deployments/web",
                    expect=200)[1]
    last = json.loads(d["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 2
    assert "unchanged" in kubectl("apply", "-f", path).stdout

    three = write(workdir, "web3.yaml", WEB.replace("replicas: 2", "replicas: 3"))
    p = kubectl("diff", "-f", three, check=False)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "-  replicas: 2" in p.stdout and "+  replicas: 3" in p.stdout, p.stdout
    assert "deployment.apps/web configured" in kubectl("apply", "-f", three).stdout
    d = server.json("GET", "/apis/apps/v1/namespaces/default/deployments/web",
                    expect=200)[1]
    assert d["spec"]["replicas"] == 3
    assert kubectl("diff", "-f", three, check=False).returncode == 0

    bad = write(workdir, "bad.yaml", WEB.replace("replicas: 2", "replicaz: 2"))
    p = kubectl("apply", "-f", bad, check=False)
    assert p.returncode != 0 and "replicaz" in p.stderr, p.stderr

    p = kubectl("explain", "deployment.spec")
    assert "FIELD: spec <Object>" in p.stdout and "replicas\t<integer>" in p.stdout, p.stdout
    p = kubectl("explain", "rollouts.spec.strategy.canary")
    assert "steps\t<[]Object>" in p.stdout, p.stdout


def test_apply_merges_crd_lists_by_key(server, workdir, kubectl):
    """A Rollout (a CRD kind upstream) re-applied: kubectl computes a
    strategic merge patch from the published x-kubernetes-patch-merge-key,
    so a container another writer added survives, as on a cluster for the
    built-in kinds (a JSON merge patch would replace the list)."""
    kubectl("apply", "-f", write(workdir, "ro.yaml", ROLLOUT))
    base = "/apis/argoproj.io/v1alpha1/namespaces/default/rollouts/shop"
    server.json("PATCH", base, [{"op": "add", "path": "/spec/template/spec/containers/-",
                                 "value": {"name": "sidecar", "image": "testapp:1",
                                           "command": ["sleep", "600"]}}],
                headers={"Content-Type": "application/json-patch+json"}, expect=200)
    p = kubectl("apply", "-f", write(workdir, "ro2.yaml", ROLLOUT.replace('"one"', '"two"')),
                "-v=8")
    assert "rollout.argoproj.io/shop configured" in p.stdout, p.stdout
    patch = [l for l in p.stderr.splitlines() if "Request Body:" in l and
             "$setElementOrder/containers" in l]
    assert patch, p.stderr[-3000:]
    cs = server.json("GET", base, expect=200)[1]["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["app", "sidecar"], cs
    assert cs[0]["env"] == [{"name": "MODE", "value": "two"}], cs
    out = kubectl("get", "rollouts").stdout
    assert header(out) == ["NAME", "DESIRED", "CURRENT", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows(out)[1][:2] == ["shop", "1"], out


# The Deployment of WEB under another name, with a label to own.
SSA = WEB.split("---")[0].replace("web", "ss").replace(
    "{name: ss}", "{name: ss, labels: {team: a}}")


def managers(server, name="ss"):
    d = server.json("GET", "/apis/apps/v1/namespaces/default/deployments/" + name,
                    expect=200)[1]
    return d, {m["manager"]: m for m in d["metadata"].get("managedFields", [])}


def test_server_side_apply_owns_fields_and_reports_conflicts(server, workdir, kubectl):
    p = kubectl("apply", "--server-side", "-f", write(workdir, "ss.yaml", SSA))
    assert p.stdout.strip() == "deployment.apps/ss serverside-applied", p.stdout
    d, m = managers(server)
    assert m["kubectl"]["operation"] == "Apply" and m["kubectl"]["fieldsType"] == "FieldsV1"
    owned = m["kubectl"]["fieldsV1"]
    assert "f:replicas" in owned["f:spec"] and owned["f:metadata"]["f:labels"] == {"f:team": {}}
    assert 'k:{"name":"app"}' in owned["f:spec"]["f:template"]["f:spec"]["f:containers"]

    # A field kubectl stops applying, and nobody else owns, goes away.
    nolabel = write(workdir, "ss1.yaml", SSA.replace(", labels: {team: a}", ""))
    kubectl("apply", "--server-side", "-f", nolabel)
    d, m = managers(server)
    assert "team" not in d["metadata"].get("labels", {}), d["metadata"]
    assert d["metadata"]["generation"] == 1

    # Another manager changing an owned field: 409 with the conflicts.
    three = write(workdir, "ss3.yaml", SSA.replace("replicas: 2", "replicas: 3"))
    p = kubectl("apply", "--server-side", "--field-manager=ops", "-f", three, check=False)
    assert p.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas' in \
        p.stderr, p.stderr
    status, body = server.json("PATCH", "/apis/apps/v1/namespaces/default/deployments/ss?"
                               "fieldManager=ops", SSA.replace("replicas: 2", "replicas: 3"),
                               headers={"Content-Type": "application/apply-patch+yaml"})
    assert status == 409 and body["reason"] == "Conflict", body
    assert body["details"]["causes"] == [{
        "reason": "FieldManagerConflict", "field": ".spec.replicas",
        "message": 'conflict with "kubectl": .spec.replicas'}], body
    # The same value is shared ownership, not a conflict.
    kubectl("apply", "--server-side", "--field-manager=ops", "-f",
            write(workdir, "same.yaml", SSA))
    # --force-conflicts takes the field over.
    kubectl("apply", "--server-side", "--field-manager=ops", "--force-conflicts", "-f", three)
    d, m = managers(server)
    assert d["spec"]["replicas"] == 3
    assert "f:replicas" in m["ops"]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in m["kubectl"]["fieldsV1"]["f:spec"]
    status, body = server.json("PATCH", "/apis/apps/v1/namespaces/default/deployments/ss",
                               SSA, headers={"Content-Type": "application/apply-patch+yaml"})
    assert status == 400 and "fieldManager is required" in body["message"]

    # Other writes own what they change (operation Update), as on a cluster:
    # kubectl scale takes spec.replicas, and the applier then conflicts with it.
    kubectl("scale", "deployment/ss", "--replicas=5")
    d, m = managers(server)
    assert m["kubectl"]["fieldsV1"] != {} and "f:replicas" not in m["ops"]["fieldsV1"]["f:spec"]
    upd = [e for e in d["metadata"]["managedFields"] if e["operation"] == "Update"]
    assert [(e["manager"], e["fieldsV1"]) for e in upd] == [
        ("kubectl", {"f:spec": {"f:replicas": {}}})], upd
    p = kubectl("apply", "--server-side", "--field-manager=ops", "-f", three, check=False)
    assert 'conflict with "kubectl" using apps/v1: .spec.replicas' in p.stderr, p.stderr
    kubectl("label", "deployment/ss", "tier=web")
    _, m = managers(server)
    assert m["kubectl-label"]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:tier": {}}}}


def test_exec_over_websocket(server, workdir, kubectl):
    """kubectl exec speaks WebSocket v5.channel.k8s.io: stdout and stderr on
    their channels, the exit code from the closing Status."""
    start_web(server, workdir, kubectl)
    pod = rows(kubectl("get", "pods", "-l", "app=web", "-o", "name").stdout)[0][0]
    p = kubectl("exec", pod, "--", "sh", "-c", "echo out; echo err >&2; exit 3",
                check=False)
    assert p.returncode == 3 and p.stdout == "out\n", (p.stdout, p.stderr)
    assert "err\n" in p.stderr and "command terminated with exit code 3" in p.stderr
    p = kubectl("exec", "deploy/web", "-c", "app", "--", "printenv", "HOSTNAME")
    assert p.stdout.strip().startswith("web-"), p.stdout
    # stdin flows (more in test_kubectl_exec.py)
    p = subprocess.run(kubectl.base + ["exec", "-i", pod, "--", "cat"], input="hi\n",
                       capture_output=True, text=True, env=kubectl.env,
                       timeout=60 * TIMEOUT_SCALE)
    assert p.returncode == 0 and p.stdout == "hi\n", p.stderr


def test_day_two_commands(server, workdir, kubectl):
    """describe, scale, rollout status / restart / history / undo, wait,
    label, annotate, the three patch types, logs, logs -f, delete."""
    chatty = WEB.replace('command: ["sleep", "600"]', 'command: ["sh", "-c", "i=0; while '
                         'true; do echo line $i; i=$((i+1)); sleep 0.2; done"]')
    server.v6("apply", "-f", write(workdir, "web.yaml", chatty), check=True)
    kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    out = kubectl("describe", "deployment", "web").stdout
    assert "Name:                   web" in out and "Selector:               app=web" in out
    assert "2 desired | 2 updated | 2 total | 2 available | 0 unavailable" in out, out
    assert "ScalingReplicaSet" in out, out
    pod = rows(kubectl("get", "pods", "-o", "name").stdout)[0][0]
    out = kubectl("describe", pod).stdout
    assert "Controlled By:  ReplicaSet/web-" in out and "Status:       Running" in out, out
    assert "Endpoints:" in kubectl("describe", "service", "web").stdout

    assert kubectl("scale", "deployment/web", "--replicas=3").stdout.strip() == \
        "deployment.apps/web scaled"
    p = kubectl("wait", "--for=condition=Available", "deployment/web", "--timeout=60s")
    assert p.stdout.strip() == "deployment.apps/web condition met"
    wait_for(lambda: rows(kubectl("get", "deploy", "web").stdout)[1][1] == "3/3", 60,
             "3/3 after kubectl scale")
    assert "restarted" in kubectl("rollout", "restart", "deployment/web").stdout
    p = kubectl("rollout", "status", "deployment/web", "--timeout=90s")
    assert 'deployment "web" successfully rolled out' in p.stdout, p.stdout
    hist = kubectl("rollout", "history", "deployment/web").stdout
    assert [r[0] for r in rows(hist)[2:] if r] == ["1", "2"], hist
    assert "rolled back" in kubectl("rollout", "undo", "deployment/web").stdout
    kubectl("rollout", "status", "deployment/web", "--timeout=90s")

    assert "labeled" in kubectl("label", "deployment", "web", "tier=front").stdout
    assert "annotated" in kubectl("annotate", "deployment", "web", "owner=ops").stdout
    kubectl("patch", "deployment", "web", "-p", '{"spec":{"minReadySeconds":1}}')
    kubectl("patch", "deployment", "web", "--type=merge", "-p",
            '{"metadata":{"labels":{"stage":"dev"}}}')
    kubectl("patch", "deployment", "web", "--type=json", "-p",
            '[{"op":"replace","path":"/spec/revisionHistoryLimit","value":5}]')
    d = server.json("GET", "/apis/apps/v1/namespaces/default/deployments/web",
                    expect=200)[1]
    assert d["metadata"]["labels"] == {"tier": "front", "stage": "dev"}
    assert d["metadata"]["annotations"]["owner"] == "ops"
    assert d["spec"]["minReadySeconds"] == 1 and d["spec"]["revisionHistoryLimit"] == 5

    pod = rows(kubectl("get", "pods", "-l", "app=web", "-o", "name").stdout)[0][0]
    wait_for(lambda: "line 2" in kubectl("logs", pod).stdout, 30, "lines in kubectl logs")
    proc = subprocess.Popen(kubectl.base + ["logs", "-f", pod], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=kubectl.env)
    try:
        seen = []
        deadline = time.monotonic() + 30 * TIMEOUT_SCALE
        while time.monotonic() < deadline and len(seen) < 40:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.strip())
        # -f follows: lines keep arriving past what the first read had
        assert len(seen) == 40 and seen[-1].startswith("line "), seen
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
    assert kubectl("delete", "deployment", "web").stdout.strip() == \
        'deployment.apps "web" deleted'
    assert kubectl("get", "deployment", "web", check=False).returncode == 1
