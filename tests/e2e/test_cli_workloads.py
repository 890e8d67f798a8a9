"""The workload verbs of the `v6` CLI against a real server: rollout
status / history / undo / restart / pause / resume, scale through the /scale
subresource, get events, logs and top.

Deployments and ReplicaSets are created directly through the API (owned
ReplicaSets carry the revision annotation and a controller ownerReference);
a deployment is created paused while its history is written, so that a
deployment controller, when one runs, adopts that history instead of
starting its own: the tests hold with or without controllers.
rollout status is driven by writing the deployment's status through the
status subresource, on a server without the Deployment controller (`bare`);
logs and top run against the node agent of the default server."""
import json
import subprocess
import threading
import time

import pytest

from conftest import TIMEOUT_SCALE, V6, wait_for

NS = "/apis/apps/v1/namespaces/default"


def deployment(name, image="app:3", replicas=0, **spec):
    d = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "app", "image": image,
                                         "command": ["sleep", "600"]}]},
            },
        },
    }
    d["spec"].update(spec)
    return d


def create_deployment(server, name, **kw):
    _, d = server.json("POST", NS + "/deployments", deployment(name, **kw), expect=201)
    return d


def owned_replicaset(server, d, revision, image, cause=None, name=None):
    """A ReplicaSet of revision `revision` controlled by deployment d."""
    app = d["metadata"]["name"]
    ann = {"deployment.kubernetes.io/revision": str(revision)}
    if cause:
        ann["kubernetes.io/change-cause"] = cause
    rs = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": name or "%s-r%d" % (app, revision),
            "annotations": ann,
            "labels": {"app": app, "pod-template-hash": "r%d" % revision},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": app,
                "uid": d["metadata"]["uid"], "controller": True,
                "blockOwnerDeletion": True}],
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": app, "pod-template-hash": "r%d" % revision}},
            "template": {
                "metadata": {"labels": {"app": app, "pod-template-hash": "r%d" % revision}},
                "spec": {"terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "app", "image": image,
                                         "command": ["sleep", "600"]}]},
            },
        },
    }
    server.json("POST", NS + "/replicasets", rs, expect=201)


def set_paused(server, name, paused):
    server.json("PATCH", NS + "/deployments/" + name, {"spec": {"paused": paused}},
                headers={"Content-Type": "application/merge-patch+json"}, expect=200)


def history(server, name="web", paused=False):
    """A deployment at image app:3 with revisions 1..3 (app:1..app:3)."""
    d = create_deployment(server, name, image="app:3", paused=True)
    for rev in (1, 2, 3):
        owned_replicaset(server, d, rev, "app:%d" % rev, cause="set image app:%d" % rev)
    if not paused:
        set_paused(server, name, False)
    return d


@pytest.fixture(autouse=True)
def cleanup(server):
    """Deletes the workloads a test made and waits for their pods to go, so
    that a node agent leaves no process behind (containers outlive a killed
    server by design)."""
    yield
    if server.proc is None:
        return
    for res in (NS + "/deployments", NS + "/replicasets", "/api/v1/namespaces/default/pods"):
        server.request("DELETE", res)
    deadline = time.time() + 30
    while time.time() < deadline:
        status, _, body = server.request("GET", "/api/v1/namespaces/default/pods")
        if status != 200 or not json.loads(body).get("items"):
            break
        time.sleep(0.2)


def get_deploy(server, name="web"):
    return server.json("GET", NS + "/deployments/" + name, expect=200)[1]


def image_of(obj):
    return obj["spec"]["template"]["spec"]["containers"][0]["image"]


def set_status(server, name, **status):
    d = get_deploy(server, name)
    status.setdefault("observedGeneration", d["metadata"]["generation"])
    server.json("PATCH", NS + "/deployments/%s/status" % name, {"status": status},
                headers={"Content-Type": "application/merge-patch+json"}, expect=200)


def deadline_exceeded():
    return [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet \"web-1\" has timed out progressing."}]


def controller_runs(server):
    """Whether a deployment controller writes Deployment status here."""
    create_deployment(server, "probe-ctrl")
    try:
        return wait_for(lambda: get_deploy(server, "probe-ctrl").get("status", {})
                        .get("observedGeneration"), 30, "Deployment status")
    finally:
        server.request("DELETE", NS + "/deployments/probe-ctrl")


@pytest.fixture
def bare(make_server):
    """A server without the deployment and replicaset controllers: these tests
    write Deployment status themselves, as a controller would."""
    return make_server("--controllers", "*,-deployment,-replicaset,-node")


def require_pods_run(server):
    """The default server runs the Deployment controller and the node agent."""
    assert controller_runs(server), "the Deployment controller did not write status"
    status, _, _ = server.request("GET", "/apis/metrics.k8s.io/v1beta1")
    assert status == 200, "the node agent's metrics.k8s.io is not served (%d)" % status


def spawn(server, *args):
    env = {"V6_SERVER": server.url, "PATH": "/usr/bin:/bin"}
    return subprocess.Popen([V6] + list(args), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def first_line(proc, timeout=20):
    """The first line `v6 rollout status` prints: it has done its GET, and
    watches from that GET's resourceVersion, so no change made after this
    line can be missed (the event to wait for instead of a sleep)."""
    got = []
    t = threading.Thread(target=lambda: got.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(timeout * TIMEOUT_SCALE)
    assert got and got[0], "no status line within %ds" % (timeout * TIMEOUT_SCALE)
    return got[0]


# ---- pause, resume, restart --------------------------------------------------

def test_rollout_pause_and_resume_flip_spec_paused(server):
    create_deployment(server, "web")
    p = server.v6("rollout", "pause", "deployment/web", check=True)
    assert p.stdout == "deployment.apps/web paused\n"
    assert get_deploy(server)["spec"]["paused"] is True
    p = server.v6("rollout", "pause", "deployment/web")
    assert p.returncode == 1
    assert p.stderr == 'error: deployments.apps "web" is already paused\n'
    p = server.v6("rollout", "resume", "deploy", "web", check=True)
    assert p.stdout == "deployment.apps/web resumed\n"
    assert not get_deploy(server)["spec"].get("paused")
    p = server.v6("rollout", "resume", "deploy/web")
    assert p.returncode == 1
    assert p.stderr == 'error: deployments.apps "web" is not paused\n'


def test_rollout_restart_stamps_the_template_and_refuses_a_paused_deployment(server):
    create_deployment(server, "web")
    gen = get_deploy(server)["metadata"]["generation"]
    p = server.v6("rollout", "restart", "deployment/web", check=True)
    assert p.stdout == "deployment.apps/web restarted\n"
    d = get_deploy(server)
    stamp = d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert stamp.startswith(time.strftime("%Y-", time.gmtime())) and stamp.endswith("Z")
    assert d["metadata"]["generation"] == gen + 1     # a template change: a new revision
    server.v6("rollout", "pause", "deployment/web", check=True)
    p = server.v6("rollout", "restart", "deployment/web")
    assert p.returncode == 1
    assert "can't restart paused deployment (run rollout resume first)" in p.stderr


def test_rollout_rejects_other_kinds_and_unknown_subcommands(server):
    p = server.v6("rollout", "status", "pod/web")
    assert p.returncode == 1 and "it works on: Deployment, Rollout" in p.stderr, p.stderr
    p = server.v6("rollout", "frobnicate", "deployment/web")
    assert p.returncode == 1 and 'unknown command "frobnicate"' in p.stderr
    p = server.v6("rollout", "pause", "deployment/missing")
    assert p.returncode == 1
    assert p.stderr == 'Error from server (NotFound): deployments.apps "missing" not found\n'


# ---- history and undo --------------------------------------------------------

def test_rollout_history_lists_the_revisions_of_the_owned_replicasets(server):
    d = history(server)
    other = create_deployment(server, "other")
    owned_replicaset(server, other, 7, "other:7")
    # same labels, but not controlled by web: not part of its history
    owned_replicaset(server, {"metadata": {"name": "web", "uid": other["metadata"]["uid"]}},
                     9, "stray:9", name="web-stray")
    p = server.v6("rollout", "history", "deployment/web", check=True)
    assert p.stdout == (
        "deployment.apps/web \n"
        "REVISION  CHANGE-CAUSE\n"
        "1         set image app:1\n"
        "2         set image app:2\n"
        "3         set image app:3\n"
        "\n")
    assert d["metadata"]["uid"]


def test_rollout_history_revision_shows_its_pod_template(server):
    history(server)
    p = server.v6("rollout", "history", "deployment/web", "--revision", "2", check=True)
    out = p.stdout
    assert out.startswith("deployment.apps/web with revision #2\nPod Template:\n")
    assert "app:2" in out and "app:3" not in out
    assert "pod-template-hash=r2" in out
    p = server.v6("rollout", "history", "deployment/web", "--revision", "9")
    assert p.returncode == 1
    assert p.stderr == "error: unable to find the specified revision\n"


def test_rollout_history_without_replicasets(server):
    create_deployment(server, "web", paused=True)
    p = server.v6("rollout", "history", "deployment/web", check=True)
    assert p.stdout == "deployment.apps/web \nNo rollout history found.\n"


def test_rollout_undo_goes_back_to_the_previous_revision(server):
    history(server)
    p = server.v6("rollout", "undo", "deployment/web", check=True)
    assert p.stdout == "deployment.apps/web rolled back\n"
    d = get_deploy(server)
    assert image_of(d) == "app:2"
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert labels == {"app": "web"}                   # no pod-template-hash
    assert d["metadata"]["annotations"]["kubernetes.io/change-cause"] == "set image app:2"


def test_rollout_undo_to_revision_and_its_errors(server):
    history(server)
    p = server.v6("rollout", "undo", "deployment/web", "--to-revision", "3", check=True)
    assert p.stdout == ("deployment.apps/web skipped rollback (current template already "
                        "matches revision 3)\n")
    p = server.v6("rollout", "undo", "deployment/web", "--to-revision", "1", check=True)
    assert p.stdout == "deployment.apps/web rolled back\n"
    assert image_of(get_deploy(server)) == "app:1"
    # (a deployment controller now gives that ReplicaSet the next revision, 4)
    p = server.v6("rollout", "undo", "deployment/web", "--to-revision", "42")
    assert p.returncode == 1
    assert p.stderr == "error: unable to find specified revision 42 in history\n"
    assert image_of(get_deploy(server)) == "app:1"


def test_rollout_undo_without_history_and_when_paused(server):
    d = create_deployment(server, "web", paused=True)
    owned_replicaset(server, d, 1, "app:3")
    set_paused(server, "web", False)
    p = server.v6("rollout", "undo", "deployment/web")
    assert p.returncode == 1
    assert p.stderr == 'error: no rollout history found for deployment "web"\n'
    owned_replicaset(server, d, 2, "app:2")
    server.v6("rollout", "pause", "deployment/web", check=True)
    p = server.v6("rollout", "undo", "deployment/web")
    assert p.returncode == 1 and "cannot rollback a paused deployment" in p.stderr
    assert image_of(get_deploy(server)) == "app:3"


# ---- scale ------------------------------------------------------------------

def test_scale_deployment_and_replicaset_through_the_scale_subresource(server):
    create_deployment(server, "web", replicas=1)
    p = server.v6("scale", "deployment/web", "--replicas", "3", check=True)
    assert p.stdout == "deployment.apps/web scaled\n"
    assert get_deploy(server)["spec"]["replicas"] == 3
    _, sc = server.json("GET", NS + "/deployments/web/scale", expect=200)
    assert sc["kind"] == "Scale" and sc["spec"]["replicas"] == 3
    server.json("POST", NS + "/replicasets", {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "solo"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "solo"}},
                 "template": deployment("solo")["spec"]["template"]}}, expect=201)
    p = server.v6("scale", "rs", "solo", "--replicas=2", check=True)
    assert p.stdout == "replicaset.apps/solo scaled\n"
    _, rs = server.json("GET", NS + "/replicasets/solo", expect=200)
    assert rs["spec"]["replicas"] == 2


def test_scale_current_replicas_precondition(server):
    create_deployment(server, "web", replicas=2)
    p = server.v6("scale", "deploy/web", "--current-replicas", "3", "--replicas", "5")
    assert p.returncode == 1
    assert p.stderr == "error: Expected replicas to be 3, was 2\n"
    assert get_deploy(server)["spec"]["replicas"] == 2
    p = server.v6("scale", "deploy/web", "--current-replicas", "2", "--replicas", "5",
                  check=True)
    assert get_deploy(server)["spec"]["replicas"] == 5


def test_scale_flag_and_target_errors(server):
    create_deployment(server, "web", replicas=2)
    p = server.v6("scale", "deploy/web")
    assert p.returncode == 1 and p.stderr == 'error: required flag(s) "replicas" not set\n'
    p = server.v6("scale", "deploy/web", "--replicas", "-1")
    assert p.returncode == 1 and "must be greater than or equal to 0" in p.stderr
    p = server.v6("scale", "deploy/web", "--replicas", "many")
    assert p.returncode == 1 and "--replicas" in p.stderr
    p = server.v6("scale", "configmap/web", "--replicas", "1")
    assert p.returncode == 1 and "cannot scale configmaps" in p.stderr
    p = server.v6("scale", "deploy/nope", "--replicas", "1")
    assert p.returncode == 1
    assert p.stderr == 'Error from server (NotFound): deployments.apps "nope" not found\n'
    assert get_deploy(server)["spec"]["replicas"] == 2


# ---- rollout status ----------------------------------------------------------

def test_rollout_status_of_a_complete_rollout(bare):
    server = bare
    create_deployment(server, "web", replicas=3)
    set_status(server, "web", replicas=3, updatedReplicas=3, readyReplicas=3,
               availableReplicas=3)
    p = server.v6("rollout", "status", "deployment/web", timeout=20)
    assert p.returncode == 0, p.stderr
    assert p.stdout == 'deployment "web" successfully rolled out\n'


def test_rollout_status_waits_for_the_spec_to_be_observed(bare):
    server = bare
    create_deployment(server, "web", replicas=3)
    p = server.v6("rollout", "status", "deployment/web", "--watch=false", check=True)
    assert p.stdout == "Waiting for deployment spec update to be observed...\n"


def test_rollout_status_follows_an_update_until_it_completes(bare):
    server = bare
    create_deployment(server, "web", replicas=3)
    set_status(server, "web", replicas=4, updatedReplicas=1, availableReplicas=3)
    proc = spawn(server, "rollout", "status", "deployment/web", "--timeout", "30s")
    try:
        out = first_line(proc)
        set_status(server, "web", replicas=4, updatedReplicas=3, availableReplicas=3)
        set_status(server, "web", replicas=3, updatedReplicas=3, availableReplicas=2)
        set_status(server, "web", replicas=3, updatedReplicas=3, availableReplicas=3)
        rest, err = proc.communicate(timeout=20)
        out += rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out == (
        'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been '
        'updated...\n'
        'Waiting for deployment "web" rollout to finish: 1 old replicas are pending '
        'termination...\n'
        'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are '
        'available...\n'
        'deployment "web" successfully rolled out\n')


def test_rollout_status_exits_nonzero_when_the_progress_deadline_is_exceeded(bare):
    server = bare
    create_deployment(server, "web", replicas=3, progressDeadlineSeconds=5)
    set_status(server, "web", replicas=3, updatedReplicas=1, availableReplicas=0)
    proc = spawn(server, "rollout", "status", "deployment/web")
    try:
        out = first_line(proc)
        set_status(server, "web", replicas=3, updatedReplicas=1, availableReplicas=0,
                   conditions=deadline_exceeded())
        rest, err = proc.communicate(timeout=20)
        out += rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert "1 out of 3 new replicas have been updated" in out
    assert err == 'error: deployment "web" exceeded its progress deadline\n'


def test_rollout_status_times_out_with_a_nonzero_exit(bare):
    server = bare
    create_deployment(server, "web", replicas=3)
    set_status(server, "web", replicas=3, updatedReplicas=3, availableReplicas=1)
    t0 = time.time()
    p = server.v6("rollout", "status", "deployment/web", "--timeout", "1s")
    assert p.returncode == 1
    assert time.time() - t0 < 10
    assert p.stdout == ('Waiting for deployment "web" rollout to finish: 1 of 3 updated '
                        'replicas are available...\n')
    assert p.stderr == "error: timed out waiting for the condition\n"


def test_rollout_status_reports_a_deleted_deployment(bare):
    server = bare
    create_deployment(server, "web", replicas=1)
    set_status(server, "web", replicas=1, updatedReplicas=0)
    proc = spawn(server, "rollout", "status", "deployment/web", "--timeout", "20s")
    try:
        first_line(proc)
        server.json("DELETE", NS + "/deployments/web", expect=200)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert "object has been deleted" in err


def test_rollout_status_survives_a_server_restart(bare):
    server = bare
    create_deployment(server, "web", replicas=2)
    set_status(server, "web", replicas=2, updatedReplicas=1, availableReplicas=1)
    proc = spawn(server, "rollout", "status", "deployment/web", "--timeout", "60s")
    try:
        out = first_line(proc)
        server.restart()                                  # kill -9, same port and data
        set_status(server, "web", replicas=2, updatedReplicas=2, availableReplicas=2)
        rest, err = proc.communicate(timeout=40)
        out += rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.endswith('deployment "web" successfully rolled out\n')


def test_rollout_status_revision_mismatch(bare):
    server = bare
    d = deployment("web", replicas=1)
    d["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "2"}
    server.json("POST", NS + "/deployments", d, expect=201)
    set_status(server, "web", replicas=1, updatedReplicas=1, availableReplicas=1)
    p = server.v6("rollout", "status", "deployment/web", "--revision", "3")
    assert p.returncode == 1
    assert "desired revision (3) is different from the running revision (2)" in p.stderr
    p = server.v6("rollout", "status", "deployment/web", "--revision", "2", check=True)
    assert p.stdout == 'deployment "web" successfully rolled out\n'


def test_rollout_status_follows_a_real_rollout(server):
    require_pods_run(server)
    create_deployment(server, "web", replicas=2)
    p = server.v6("rollout", "status", "deployment/web", "--timeout", "60s", timeout=90)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.endswith('deployment "web" successfully rolled out\n')
    server.v6("scale", "deployment/web", "--replicas", "0", check=True)


def test_rollout_status_fails_when_the_controller_reports_the_deadline(server):
    require_pods_run(server)
    d = deployment("bad", replicas=1, progressDeadlineSeconds=2)
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["false"]}, "periodSeconds": 1}    # never Ready
    server.json("POST", NS + "/deployments", d, expect=201)
    p = server.v6("rollout", "status", "deployment/bad", "--timeout", "60s", timeout=90)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stderr == 'error: deployment "bad" exceeded its progress deadline\n'


# ---- events -------------------------------------------------------------------

def test_get_events_lists_the_latest_last(server):
    for name, ts, typ, reason in (("ev-a", "2026-01-02T10:00:00Z", "Normal", "Scaled"),
                                  ("ev-b", "2026-01-02T08:00:00Z", "Warning", "BackOff"),
                                  ("ev-c", "2026-01-02T09:00:00Z", "Normal", "Started")):
        server.json("POST", "/api/v1/namespaces/default/events", {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "Deployment", "name": "web", "namespace": "default"},
            "reason": reason, "message": "about " + name, "type": typ, "count": 1,
            "firstTimestamp": ts, "lastTimestamp": ts}, expect=201)
    p = server.v6("get", "events", check=True)
    rows = p.stdout.splitlines()
    assert rows[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert [r.split()[-1] for r in rows[1:]] == ["ev-b", "ev-c", "ev-a"]
    assert rows[1].split()[1:4] == ["Warning", "BackOff", "deployment/web"]
    p = server.v6("events", "--field-selector", "type=Warning", check=True)
    assert [r.split()[-1] for r in p.stdout.splitlines()[1:]] == ["ev-b"]
    p = server.v6("get", "events", "-A", check=True)
    assert p.stdout.splitlines()[1].split()[0] == "default"


# ---- logs ---------------------------------------------------------------------

def pod(name, containers, labels=None, init=None):
    spec = {"terminationGracePeriodSeconds": 1,
            "containers": [{"name": c, "image": "busybox", "command": cmd}
                           for c, cmd in containers]}
    if init:
        spec["initContainers"] = [{"name": init, "image": "busybox", "command": ["true"]}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


@pytest.fixture
def pods(server):
    """Creates pods; deletes them at the end and waits until they are gone,
    so that a node agent leaves no process behind (containers outlive a
    killed server by design)."""
    names = []

    def create(p):
        server.json("POST", "/api/v1/namespaces/default/pods", p, expect=201)
        names.append(p["metadata"]["name"])
    yield create
    for name in names:
        server.request("DELETE", "/api/v1/namespaces/default/pods/" + name)
    deadline = time.time() + 20
    while names and time.time() < deadline:
        names = [n for n in names if server.request(
            "GET", "/api/v1/namespaces/default/pods/" + n)[0] != 404]
        time.sleep(0.2)


def serves_logs(server, pod_name):
    status, _, body = server.request("GET", "/api/v1/namespaces/default/pods/%s/log" % pod_name)
    return not (status == 404 and b"could not find the requested resource" in body)


def wait_running(server, name, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, p = server.json("GET", "/api/v1/namespaces/default/pods/" + name)
        if p.get("status", {}).get("phase") == "Running":
            return p
        time.sleep(0.2)
    pytest.fail("pod %s is not Running after %ss: %s" % (name, timeout, p.get("status")))


def test_logs_of_a_pod_with_several_containers_needs_a_container(server, pods):
    pods(pod("two", [("app", ["sleep", "60"]), ("side", ["sleep", "60"])],
                           init="setup"))
    p = server.v6("logs", "two")
    assert p.returncode == 1
    assert p.stderr == ("error: a container name must be specified for pod two, choose one "
                        "of: [app side] or one of the init containers: [setup]\n")
    p = server.v6("logs", "missing")
    assert p.returncode == 1
    assert p.stderr == 'Error from server (NotFound): pods "missing" not found\n'


def test_logs_flags_are_the_logs_ones(server):
    # -f is --follow for logs (--filename elsewhere), -c --container, -p --previous
    p = server.v6("logs", "-f", "-p", "missing", "-c", "app")
    assert p.returncode == 1
    assert p.stderr == 'Error from server (NotFound): pods "missing" not found\n'
    p = server.v6("logs", "-l", "app=x", "somepod")
    assert p.returncode == 1 and "only a selector (-l) or a POD name" in p.stderr
    p = server.v6("logs", "pod1", "--all-containers", "-c", "app")
    assert p.returncode == 1 and "--all-containers=true should not be specified" in p.stderr


def test_logs_of_a_deployment_picks_one_of_its_pods(server, pods):
    create_deployment(server, "web")
    for i in (1, 2):
        pods(pod("web-%d" % i, [("app", ["sleep", "60"])], labels={"app": "web"}))
    p = server.v6("logs", "deploy/web", "--pod-running-timeout", "2s")
    assert "Found 2 pods, using pod/web-" in p.stderr


def test_logs_of_a_running_pod(server, pods):
    pods(pod("talker", [("app", ["sh", "-c",
                                                "echo one; echo two; echo three; sleep 60"])],
                           labels={"app": "talker"}))
    assert serves_logs(server, "talker"), "pods/log is not served"
    wait_running(server, "talker")
    deadline = time.time() + 10
    while time.time() < deadline:
        p = server.v6("logs", "talker")
        if p.stdout == "one\ntwo\nthree\n":
            break
        time.sleep(0.2)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "one\ntwo\nthree\n"
    p = server.v6("logs", "pod/talker", "--tail", "1", check=True)
    assert p.stdout == "three\n"
    p = server.v6("logs", "-l", "app=talker", check=True)
    assert p.stdout == "[pod/talker/app] one\n[pod/talker/app] two\n[pod/talker/app] three\n"
    p = server.v6("logs", "talker", "--timestamps", check=True)
    assert all(line.split(" ", 1)[1] in ("one", "two", "three")
               and line[:4].isdigit() for line in p.stdout.splitlines())
    proc = spawn(server, "logs", "-f", "talker")
    try:
        first = proc.stdout.readline()
        assert first == "one\n"
    finally:
        proc.kill()
        proc.communicate()


# ---- top ----------------------------------------------------------------------

def top_rows(server, *args):
    """`v6 top pods` rows by pod name (or (pod, container) with --containers),
    as (millicores, MiB); {} while it fails."""
    p = server.v6("top", "pods", *args)
    if p.returncode != 0:
        return {}, p
    rows = {}
    for line in p.stdout.splitlines()[1:]:
        f = line.split()
        key = tuple(f[:-2]) if len(f) > 3 else f[0]
        rows[key] = (int(f[-2][:-1]), int(f[-1][:-2]))
    return rows, p


def test_top_pods_busy_pod_uses_more_cpu_than_an_idle_one_within_seconds(server, pods):
    """Usage comes from the containers' cgroups (cpuacct, memory), sampled by
    the node's 1 s metrics tick once a container is 300 ms old and a second
    later: a busy loop shows most of a core, a sleeping pod next to nothing,
    and both within seconds, not after the 10 s sampling period."""
    pods(pod("busy", [("app", ["sh", "-c", "while :; do :; done"])]))
    pods(pod("idle", [("app", ["sleep", "3600"])]))
    wait_running(server, "busy")
    wait_running(server, "idle")
    running = time.time()
    rows, p = {}, None
    while time.time() < running + 30 and not ("busy" in rows and "idle" in rows):
        rows, p = top_rows(server)
        time.sleep(0.2)
    assert "busy" in rows and "idle" in rows, (p.stdout, p.stderr)
    # Two samples about a second apart (the old 10 s period needed >= 10 s).
    assert time.time() - running < 8, "metrics took %.1f s" % (time.time() - running)
    assert p.stdout.splitlines()[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    # A core's busy loop on a shared 2-CPU machine gets well over 100m; a
    # sleep uses nothing measurable.
    deadline = time.time() + 30
    while time.time() < deadline and not (rows["busy"][0] >= 100 and rows["idle"][0] <= 5):
        time.sleep(1)
        rows, p = top_rows(server)
    assert rows["busy"][0] >= 100, p.stdout
    assert rows["idle"][0] <= 5, p.stdout
    assert rows["busy"][0] >= 20 * max(rows["idle"][0], 1), p.stdout
    _, m = server.json("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/busy",
                       expect=200)
    assert m["containers"][0]["usage"]["memory"] not in ("0", "0Ki")
    p = server.v6("top", "pods", "--containers", check=True)
    assert p.stdout.splitlines()[0].split() == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert any(r.split()[:2] == ["busy", "app"] for r in p.stdout.splitlines())


def test_top_pods_reports_a_pods_memory(server, pods):
    """The memory column is the cgroup's working set: a pod holding 64 MiB
    of written memory shows at least that much, a sleeping one far less."""
    pods(pod("hog", [("app", ["sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); "
                                          "echo held; sleep 3600"])]))
    pods(pod("small", [("app", ["sleep", "3600"])]))
    wait_running(server, "hog")
    wait_running(server, "small")
    deadline = time.time() + 60
    rows = {}
    while time.time() < deadline and not (rows.get("hog", (0, 0))[1] >= 64 and "small" in rows):
        rows, p = top_rows(server)
        time.sleep(0.5)
    assert rows.get("hog", (0, 0))[1] >= 64, p.stdout
    assert rows["small"][1] < 16, p.stdout


def test_top_without_a_node_agent_says_metrics_are_not_available(bare):
    p = bare.v6("top", "pods")
    assert p.returncode == 1
    assert p.stderr == "error: Metrics API not available\n"


def test_top_flag_errors(server):
    p = server.v6("top", "pods", "--sort-by", "name")
    assert p.returncode == 1 and "--sort-by accepts only cpu or memory" in p.stderr
    p = server.v6("top", "things")
    assert p.returncode == 1 and 'unknown command "things"' in p.stderr


# ---- help -----------------------------------------------------------------------

def test_help_lists_workload_verbs_and_programs_apart(server):
    p = server.v6("--help", check=True)
    verbs, programs = p.stdout.split("Programs V6 runs:")
    for v in ("logs", "rollout", "scale", "top"):
        assert "\n  %s " % v in verbs
    for v in ("server", "shim", "testapp"):
        assert "\n  %s " % v in programs and "\n  %s " % v not in verbs
    for verb, flag in (("logs", "--follow"), ("rollout", "--to-revision"),
                       ("scale", "--current-replicas"), ("top", "--containers")):
        p = server.v6(verb, "--help", check=True)
        assert "Usage:\n  v6 %s" % verb in p.stdout and flag in p.stdout
        assert "Examples:\n" in p.stdout
    p = server.v6("scale", "deploy/web", "--replicas", "1", "--follow")
    assert p.returncode == 1 and "unknown flag: --follow" in p.stderr
