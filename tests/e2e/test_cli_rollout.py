"""The Argo Rollouts verbs of the `v6` CLI against a real server: rollout
promote / abort / retry / pause / resume, status, history, undo, the live
`rollout watch` view, get and describe.

The server runs only the garbage collector: the test plays the Rollout
controller, writing the Rollout's status through the status subresource and
creating the ReplicaSets, pods and AnalysisRuns it would own, so what the CLI
sends and shows is checked exactly, whatever the controller does. The whole
file skips when the server does not serve argoproj.io/v1alpha1 rollouts;
the AnalysisRun tests skip when it does not serve analysisruns."""
import os
import pty
import re
import select
import subprocess
import time

import pytest

from conftest import V6

NS = "/apis/argoproj.io/v1alpha1/namespaces/default"


@pytest.fixture
def argo(make_server):
    """A server with only the garbage collector running (the test is the
    rollout controller); skips when the server has no Rollout kind."""
    s = make_server("--controllers", "garbagecollector")
    status, body = s.json("GET", "/apis/argoproj.io/v1alpha1")
    plurals = [r["name"] for r in (body or {}).get("resources", [])] if status == 200 else []
    if "rollouts" not in plurals:
        pytest.skip("the server does not serve argoproj.io/v1alpha1 rollouts yet")
    s.plurals = plurals
    return s


def rollout(name="web", strategy=None, image="app:2", **spec):
    r = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image,
                                         "command": ["sleep", "600"]}]},
            },
            "strategy": strategy or {"canary": {"steps": [
                {"setWeight": 20}, {"pause": {}}, {"setWeight": 60},
                {"analysis": {"templates": [{"templateName": "success-rate"}]}}]}},
        },
    }
    r["spec"].update(spec)
    return r


def create(server, **kw):
    _, r = server.json("POST", NS + "/rollouts", rollout(**kw), expect=201)
    return r


def get(server, name="web"):
    _, r = server.json("GET", NS + "/rollouts/" + name, expect=200)
    return r


def set_status(server, name="web", **status):
    """The controller's part: a merge patch of the status, observed at the
    current generation unless the caller says otherwise."""
    r = get(server, name)
    status.setdefault("observedGeneration", str(r["metadata"]["generation"]))
    server.json("PATCH", NS + "/rollouts/%s/status" % name, {"status": status},
                headers={"Content-Type": "application/merge-patch+json"}, expect=200)


PAUSED_AT_STEP = dict(phase="Paused", message="CanaryPauseStep", currentStepIndex=1,
                      currentPodHash="new", stableRS="old",
                      pauseConditions=[{"reason": "CanaryPauseStep",
                                        "startTime": "2026-12-03T06:00:00Z"}])
IN_PROGRESS = dict(phase="Progressing", message="more replicas need to be updated",
                   currentStepIndex=2, currentPodHash="new", stableRS="old")


def owned(server, r, kind, obj):
    obj["metadata"]["ownerReferences"] = [{
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "name": r["metadata"]["name"], "uid": r["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}]
    return obj


def replicaset(server, r, revision, hash_, image, replicas=0, ready=0):
    name = r["metadata"]["name"]
    labels = {"app": name, "rollouts-pod-template-hash": hash_}
    rs = owned(server, r, "ReplicaSet", {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "%s-%s" % (name, hash_), "labels": labels,
                     "annotations": {"rollout.argoproj.io/revision": str(revision)}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "app", "image": image,
                                                       "command": ["sleep", "600"]}]}}},
    })
    server.json("POST", "/apis/apps/v1/namespaces/default/replicasets", rs, expect=201)
    if ready:
        server.json("PATCH", "/apis/apps/v1/namespaces/default/replicasets/%s-%s/status"
                    % (name, hash_), {"status": {"replicas": replicas, "readyReplicas": ready}},
                    headers={"Content-Type": "application/merge-patch+json"}, expect=200)


def pod(server, name, hash_, app="web"):
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": name, "labels": {"app": app,
                                               "rollouts-pod-template-hash": hash_}},
         "spec": {"containers": [{"name": "app", "image": "x",
                                  "command": ["sleep", "600"]}]}}
    server.json("POST", "/api/v1/namespaces/default/pods", p, expect=201)


# ---- promote, abort, retry, pause, resume ------------------------------------


def test_promote_at_a_pause_step_clears_the_pause_conditions(argo):
    create(argo)
    set_status(argo, **PAUSED_AT_STEP)
    p = argo.v6("rollout", "promote", "web")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "rollout.argoproj.io/web promoted\n"
    r = get(argo)
    assert "pauseConditions" not in r["status"]
    assert r["status"]["currentStepIndex"] == 1  # the controller moves on, not the CLI
    assert not r["spec"].get("paused")


def test_promote_when_not_paused_skips_the_current_step(argo):
    create(argo)
    set_status(argo, **IN_PROGRESS)
    gen = get(argo)["metadata"]["generation"]
    p = argo.v6("rollout", "promote", "rollout/web")
    assert p.returncode == 0, p.stderr
    r = get(argo)
    assert r["status"]["currentStepIndex"] == 3
    assert r["metadata"]["generation"] == gen  # a status write only


def test_promote_full_and_a_manual_pause(argo):
    create(argo, paused=True)
    set_status(argo, **IN_PROGRESS)
    p = argo.v6("rollout", "promote", "web", "--full")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "rollout.argoproj.io/web fully promoted\n"
    r = get(argo)
    assert r["status"]["promoteFull"] is True
    assert r["spec"]["paused"] is False


def test_promote_past_the_last_step_says_what_to_do(argo):
    create(argo)
    set_status(argo, phase="Healthy", currentStepIndex=4, currentPodHash="new",
               stableRS="new")
    p = argo.v6("rollout", "promote", "web")
    assert p.returncode == 1
    assert "rollout/web has no canary step left to skip (at step 4/4)" in p.stderr
    p = argo.v6("rollout", "promote", "web", "--full")
    assert p.returncode == 0
    assert "already fully promoted" in p.stdout


def test_abort_then_retry(argo):
    create(argo)
    set_status(argo, **PAUSED_AT_STEP)
    p = argo.v6("rollout", "abort", "web")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "rollout.argoproj.io/web aborted\n"
    assert get(argo)["status"]["abort"] is True
    p = argo.v6("rollout", "abort", "web")
    assert p.returncode == 1
    assert "rollout/web is already aborted; use 'v6 rollout retry rollout/web'" in p.stderr
    p = argo.v6("rollout", "promote", "web")
    assert p.returncode == 1 and "is aborted; run 'v6 rollout retry" in p.stderr
    p = argo.v6("rollout", "retry", "rollout/web")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "rollout.argoproj.io/web retried\n"
    assert get(argo)["status"]["abort"] is False
    p = argo.v6("rollout", "retry", "web")
    assert p.returncode == 1 and "rollout/web is not aborted" in p.stderr


def test_pause_and_resume(argo):
    create(argo)
    set_status(argo, **PAUSED_AT_STEP)
    assert argo.v6("rollout", "pause", "rollout/web").stdout == \
        "rollout.argoproj.io/web paused\n"
    assert get(argo)["spec"]["paused"] is True
    p = argo.v6("rollout", "pause", "rollout/web")
    assert p.returncode == 1 and "rollout/web is already paused" in p.stderr
    p = argo.v6("rollout", "resume", "rollout/web")
    assert p.returncode == 0 and p.stdout == "rollout.argoproj.io/web resumed\n"
    r = get(argo)
    assert r["spec"]["paused"] is False and "pauseConditions" not in r["status"]
    p = argo.v6("rollout", "resume", "rollout/web")
    assert p.returncode == 1
    assert ("rollout/web is not paused; use 'v6 rollout promote rollout/web' to skip "
            "the current step") in p.stderr


def test_argo_verbs_on_a_deployment_and_a_missing_rollout(argo):
    p = argo.v6("rollout", "promote", "deployment/web")
    assert p.returncode == 1
    assert "rollout promote is not supported for Deployment by v6 (it works on: Rollout)" \
        in p.stderr
    p = argo.v6("rollout", "restart", "rollout/web")
    assert p.returncode == 1 and "(it works on: Deployment" in p.stderr
    p = argo.v6("rollout", "abort", "nope")
    assert p.returncode == 1 and "NotFound" in p.stderr and "nope" in p.stderr
    p = argo.v6("rollout", "promote")
    assert p.returncode == 1 and "'v6 rollout promote rollout/NAME'" in p.stderr


def test_rollout_help_lists_every_subcommand(argo):
    out = argo.v6("rollout", "--help").stdout
    for word in ("promote", "abort", "retry", "watch", "--full", "rollout/NAME",
                 "Paused", "Degraded"):
        assert word in out


# ---- status ------------------------------------------------------------------


def follow_status(server, *extra):
    env = {"V6_SERVER": server.url, "PATH": "/usr/bin:/bin"}
    return subprocess.Popen([V6, "rollout", "status", "rollout/web", "--timeout", "30s"]
                            + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def wait_line(proc, want, timeout=15):
    """Reads stdout lines until one contains want; returns what was read."""
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if want in line:
            return seen
    raise AssertionError("%r not seen in %r" % (want, seen))


def finish(proc, timeout=15):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, out, err


def test_status_follows_steps_until_healthy(argo):
    create(argo)
    p = follow_status(argo)
    try:
        wait_line(p, "Progressing - waiting for rollout spec update to be observed")
        set_status(argo, phase="Progressing", message="more replicas need to be updated",
                   currentStepIndex=0)
        wait_line(p, "Progressing - more replicas need to be updated (step 0/4, weight 20%)")
        set_status(argo, currentStepIndex=2)
        wait_line(p, "(step 2/4, weight 60%)")
        set_status(argo, phase="Healthy", message=None, currentStepIndex=4)
        rc, out, err = finish(p)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert rc == 0, err
    assert out == "Healthy\n"


def test_status_exits_1_when_degraded_and_0_when_paused(argo):
    create(argo)
    set_status(argo, phase="Degraded", message="RolloutAborted: metric failed", abort=True,
               currentStepIndex=3)
    p = argo.v6("rollout", "status", "rollout/web", "--timeout", "10s")
    assert p.returncode == 1
    assert p.stdout.startswith("Degraded - RolloutAborted: metric failed")
    assert "the rollout is in a degraded state with message: RolloutAborted: metric " \
        "failed" in p.stderr
    set_status(argo, abort=False, **PAUSED_AT_STEP)
    p = argo.v6("rollout", "status", "rollout/web", "--timeout", "10s")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "Paused - CanaryPauseStep (step 1/4, weight 20%)\n"
    set_status(argo, **IN_PROGRESS)
    p = argo.v6("rollout", "status", "rollout/web", "--timeout", "1s")
    assert p.returncode == 1 and "timed out" in p.stderr
    p = argo.v6("rollout", "status", "rollout/web", "--watch=false")
    assert p.returncode == 0 and p.stdout.startswith("Progressing - ")


# ---- history and undo ----------------------------------------------------------


def test_history_and_undo_to_the_previous_revision(argo):
    r = create(argo)
    replicaset(argo, r, 1, "aaa111", "app:1")
    replicaset(argo, r, 2, "bbb222", "app:2", replicas=5)
    p = argo.v6("rollout", "history", "rollout/web")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ("rollout.argoproj.io/web\n"
                        "REVISION  HASH          CHANGE-CAUSE\n"
                        "1         aaa111        <none>\n"
                        "2         bbb222        <none>\n\n")
    p = argo.v6("rollout", "history", "rollout/web", "--revision", "1")
    assert p.returncode == 0 and "app:1" in p.stdout
    p = argo.v6("rollout", "undo", "rollout/web")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "rollout.argoproj.io/web rolled back\n"
    tpl = get(argo)["spec"]["template"]
    assert tpl["spec"]["containers"][0]["image"] == "app:1"
    assert "rollouts-pod-template-hash" not in tpl["metadata"]["labels"]
    p = argo.v6("rollout", "undo", "rollout/web", "--to-revision", "1")
    assert p.returncode == 0 and "skipped rollback" in p.stdout


# ---- watch, get, describe -------------------------------------------------------


def test_watch_prints_a_block_per_change(argo):
    r = create(argo)
    set_status(argo, **PAUSED_AT_STEP)
    replicaset(argo, r, 1, "old", "app:1", replicas=4, ready=4)
    replicaset(argo, r, 2, "new", "app:2", replicas=1)
    env = {"V6_SERVER": argo.url, "PATH": "/usr/bin:/bin"}
    p = subprocess.Popen([V6, "rollout", "watch", "web", "--timeout", "12s"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = wait_line(p, "Replicas:")
        assert any("Status:       Paused - CanaryPauseStep (step 1/4, weight 20%)" in l
                   for l in first)
        wait_line(p, "Revisions:")
        block = "".join(wait_line(p, "1         old           stable"))
        assert "2         new           canary          1        0      app:2" in block
        assert "  => 1  pause (until promoted)" in "".join(first)
        # the controller moves on: a new block with the new step
        set_status(argo, phase="Progressing", message="", pauseConditions=None,
                   currentStepIndex=2)
        block = "".join(wait_line(p, "  => 2  setWeight: 60%"))
        assert "Status:       Progressing (step 2/4, weight 60%)" in block
        # a pod of the canary appears under its revision
        pod(argo, "web-new-x1", "new")
        wait_line(p, "      web-new-x1  0/1  Pending")
        rc, out, err = finish(p, timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert rc == 0, err  # --timeout ends the view


def test_watch_redraws_in_place_on_a_terminal(argo):
    create(argo)
    set_status(argo, **PAUSED_AT_STEP)
    master, slave = pty.openpty()
    env = {"V6_SERVER": argo.url, "PATH": "/usr/bin:/bin"}
    p = subprocess.Popen([V6, "rollout", "watch", "web", "--timeout", "6s"], stdout=slave,
                         stderr=subprocess.PIPE, env=env)
    os.close(slave)
    out, moved = b"", False
    try:
        deadline = time.time() + 10
        while time.time() < deadline and out.count(b"\033[H\033[2J") < 2:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
            if b"Replicas:" in out and not moved:  # the first screen is complete
                set_status(argo, phase="Progressing", pauseConditions=None,
                           currentStepIndex=2)
                moved = True
        p.wait(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    assert out.startswith(b"\033[H\033[2J"), out[:200]
    assert out.count(b"\033[H\033[2J") == 2, out
    assert b"(step 2/4, weight 60%)" in out.split(b"\033[H\033[2J")[2]


def test_watch_of_a_missing_rollout_fails(argo):
    p = argo.v6("rollout", "watch", "rollout/nope", "--timeout", "5s")
    assert p.returncode == 1
    assert 'rollout.argoproj.io "nope" not found' in p.stderr


def test_get_rollouts_columns(argo):
    create(argo)
    set_status(argo, replicas=6, updatedReplicas=1, availableReplicas=5, **PAUSED_AT_STEP)
    create(argo, name="bg", strategy={"blueGreen": {"activeService": "bg"}})
    out = argo.v6("get", "rollouts").stdout.splitlines()
    assert out[0].split() == ["NAME", "DESIRED", "CURRENT", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert out[2].split()[:5] == ["web", "5", "6", "1", "5"]
    out = argo.v6("get", "rollouts", "-o", "wide").stdout.splitlines()
    assert out[0].split()[6:] == ["STRATEGY", "STEP", "SET-WEIGHT", "PHASE"]
    assert out[1].split()[6:] == ["BlueGreen", "-", "-", "Progressing"]
    assert out[2].split()[6:] == ["Canary", "1/4", "20", "Paused"]


def test_describe_rollout(argo):
    r = create(argo)
    set_status(argo, **PAUSED_AT_STEP)
    replicaset(argo, r, 2, "new", "app:2", replicas=1)
    p = argo.v6("describe", "rollout", "web")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for want in ("Name:", "Selector:", "app=web",
                 "Status:       Paused - CanaryPauseStep (step 1/4, weight 20%)",
                 "Strategy:     Canary", "  ok 0  setWeight: 20%", "  => 1  pause",
                 "Weights:      stable 80%, canary 20% (by replicas)", "canary",
                 "Events:"):
        assert want in out, (want, out)


def analysis_run(server, r, name, hash_):
    run = owned(server, r, "AnalysisRun", {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": name, "labels": {"rollouts-pod-template-hash": hash_}},
        "spec": {"metrics": [{"name": "success-rate", "interval": "10s",
                              "successCondition": "result[0] >= 0.95",
                              "provider": {"prometheus": {
                                  "address": "http://127.0.0.1:9",
                                  "query": "vector(1)"}}}]},
    })
    status, body = server.json("POST", NS + "/analysisruns", run)
    assert status == 201, body
    status, body = server.json(
        "PATCH", NS + "/analysisruns/%s/status" % name,
        {"status": {"phase": "Running", "metricResults": [{
            "name": "success-rate", "phase": "Running", "count": 1, "successful": 1,
            "measurements": [{"phase": "Successful", "value": "[0.97]",
                              "startedAt": "2026-12-03T06:10:00Z"}]}]}},
        headers={"Content-Type": "application/merge-patch+json"})
    assert status == 200, body


def test_analysisruns_in_get_describe_and_the_rollout_view(argo):
    if "analysisruns" not in argo.plurals:
        pytest.skip("the server does not serve analysisruns yet")
    r = create(argo)
    set_status(argo, **PAUSED_AT_STEP)
    analysis_run(argo, r, "web-new-1", "new")
    out = argo.v6("get", "analysisruns").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "AGE"]
    assert out[1].split()[:2] == ["web-new-1", "Running"]
    out = argo.v6("describe", "analysisrun", "web-new-1").stdout
    assert re.search(r"\nControlled By: +Rollout/web\n", out), out
    assert "success-rate  Running  success rate 97.0% (Successful)" in out
    out = argo.v6("describe", "rollout", "web").stdout
    assert "Analysis:\n  web-new-1  Running\n    success-rate  Running  success rate 97.0%" \
        in out


# ---- with the rollout controller ---------------------------------------------


def set_image(server, image):
    server.json("PATCH", NS + "/rollouts/web",
                {"spec": {"template": {"spec": {"containers": [
                    {"name": "app", "image": image, "command": ["sleep", "600"]}]}}}},
                headers={"Content-Type": "application/merge-patch+json"}, expect=200)


def test_canary_paused_promoted_aborted_and_retried_with_the_controller(server):
    """The user story end to end against V6's own Rollout controller."""
    status, body = server.json("GET", "/apis/argoproj.io/v1alpha1")
    if status != 200 or "rollouts" not in [r["name"] for r in body.get("resources", [])]:
        pytest.skip("the server does not serve argoproj.io/v1alpha1 rollouts yet")
    r = rollout(strategy={"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
                replicas=2)
    r["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
    server.json("POST", NS + "/rollouts", r, expect=201)

    def status_of():
        p = server.v6("rollout", "status", "rollout/web", "--timeout", "60s", timeout=90)
        return p.returncode, p.stdout.splitlines()[-1] if p.stdout else "", p.stderr

    assert status_of()[:2] == (0, "Healthy")
    set_image(server, "app:3")
    assert status_of()[:2] == (0, "Paused - CanaryPauseStep (step 1/2, weight 50%)")
    view = server.v6("rollout", "watch", "web", "--timeout", "1s").stdout
    assert "  => 1  pause (until promoted)" in view
    assert re.search(r"\n  \d+ +\w+ +canary +1 +1 +app:3\n", view), view
    assert server.v6("rollout", "promote", "web").returncode == 0
    assert status_of()[:2] == (0, "Healthy")
    hist = server.v6("rollout", "history", "rollout/web").stdout.splitlines()
    assert [l.split()[0] for l in hist[2:] if l] == ["1", "2"], hist

    set_image(server, "app:4")
    assert status_of()[:2] == (0, "Paused - CanaryPauseStep (step 1/2, weight 50%)")
    assert server.v6("rollout", "abort", "web").returncode == 0
    rc, last, err = status_of()
    assert rc == 1 and last.startswith("Degraded - ") and "degraded state" in err
    assert server.v6("rollout", "retry", "web").returncode == 0
    assert status_of()[:2] == (0, "Paused - CanaryPauseStep (step 1/2, weight 50%)")
    assert server.v6("rollout", "promote", "web", "--full").returncode == 0
    assert status_of()[:2] == (0, "Healthy")
    assert get(server)["status"]["stableRS"] == get(server)["status"]["currentPodHash"]
