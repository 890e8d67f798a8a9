"""The Argo Rollouts verbs of the `v6` CLI against a real server running
V6's own Rollout controller with real pods: rollout promote / abort / retry
/ pause / resume, status, history, undo, the live `rollout watch` view, get
and describe, and analysis from a ClusterAnalysisTemplate. Every test
asserts what the user sees (the CLI's output and exit status) and what the
controller then did; waits follow a watch opened before the change."""
import http.server
import json
import os
import pty
import re
import select
import subprocess
import threading
import time

import pytest

import conftest
from conftest import V6

NS = "/apis/argoproj.io/v1alpha1/namespaces/default"
MERGE = {"Content-Type": "application/merge-patch+json"}


def rollout(name="web", steps=None, strategy=None, image="app:1", replicas=2, **spec):
    r = {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
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
            "strategy": strategy or {"canary": {"steps": steps if steps is not None else [
                {"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]}},
        },
    }
    r["spec"].update(spec)
    return r


def get(server, name="web"):
    return server.json("GET", NS + "/rollouts/" + name, expect=200)[1]


class Watch(conftest.Watch):
    """A watch on one Rollout, opened now (from the resourceVersion of a
    GET), so that no change made after it is missed."""

    def __init__(self, server, name="web"):
        self.obj = get(server, name)
        super().__init__(server, NS + "/rollouts?fieldSelector=metadata.name%3D" + name,
                         rv=self.obj["metadata"]["resourceVersion"])

    def until(self, pred, what, timeout=90, fresh=False):
        """The first version of the Rollout for which pred holds: the one
        the watch started from included unless fresh."""
        if not fresh and pred(self.obj):
            return self.obj
        ev = self.wait(lambda e: e["type"] in ("ADDED", "MODIFIED") and pred(e["object"]),
                       timeout, what)
        return ev["object"]


def status_is(phase, message=None, step=None):
    def pred(ro):
        st = ro.get("status", {})
        return (st.get("phase") == phase and
                st.get("observedGeneration") == str(ro["metadata"]["generation"]) and
                (message is None or st.get("message") == message) and
                (step is None or st.get("currentStepIndex") == step))
    return pred


def healthy(ro):
    st = ro.get("status", {})
    return status_is("Healthy")(ro) and st.get("stableRS") == st.get("currentPodHash")


def create(server, wait=True, **kw):
    """Creates the Rollout and waits for its first version to be Healthy."""
    server.json("POST", NS + "/rollouts", rollout(**kw), expect=201)
    name = kw.get("name", "web")
    if wait:
        p = server.v6("rollout", "status", "rollout/" + name, "--timeout", "90s", timeout=120)
        assert p.returncode == 0 and p.stdout.splitlines()[-1] == "Healthy", (p.stdout,
                                                                             p.stderr)
    return get(server, name)


def set_image(server, image, name="web", wait=None):
    """Changes the pod template; with wait (a predicate), returns the Rollout
    once it holds, watched from before the change."""
    w = Watch(server, name) if wait else None
    server.json("PATCH", NS + "/rollouts/" + name,
                {"spec": {"template": {"spec": {"containers": [
                    {"name": "app", "image": image, "command": ["sleep", "600"]}]}}}},
                headers=MERGE, expect=200)
    if not w:
        return None
    try:
        return w.until(wait, "rollout/%s after %s" % (name, image), fresh=True)
    finally:
        w.close()


PAUSED = status_is("Paused", "CanaryPauseStep", 1)


def v6_then(server, args, pred, what):
    """Runs the CLI (watch opened first) and waits for pred; returns (the
    CompletedProcess, the Rollout)."""
    w = Watch(server, "web")
    try:
        p = server.v6(*args)
        return p, w.until(pred, what, fresh=True)
    finally:
        w.close()


# ---- promote, abort, retry, pause, resume ------------------------------------


def test_promote_at_a_pause_step_goes_on_to_healthy(server):
    create(server)
    set_image(server, "app:2", wait=PAUSED)
    before = get(server)
    for mode, said in (("server", "(server dry run)"), ("client", "(dry run)")):
        p = server.v6("rollout", "promote", "web", "--dry-run=" + mode)
        assert p.stdout == "rollout.argoproj.io/web promoted %s\n" % said, p.stderr
    after = get(server)  # a dry run moves nothing on
    assert (after["spec"], after["status"]) == (before["spec"], before["status"])
    p, ro = v6_then(server, ["rollout", "promote", "web"], healthy, "Healthy after promote")
    assert p.returncode == 0 and p.stdout == "rollout.argoproj.io/web promoted\n", p.stderr
    assert ro["status"]["currentStepIndex"] == 3
    assert not ro["spec"].get("paused")
    out = server.v6("get", "rs", "-l", "app=web").stdout
    assert re.search(r"web-%s +2 +2 +2 " % ro["status"]["stableRS"], out), out


def test_promote_when_not_paused_skips_the_current_step(server):
    # the canary's pods never get ready: the setWeight step cannot finish
    create(server)
    r = get(server)
    r["spec"]["template"]["spec"]["containers"][0]["image"] = "app:2"
    r["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["false"]}, "periodSeconds": 1}
    w = Watch(server)
    server.json("PUT", NS + "/rollouts/web", r, expect=200)
    w.until(status_is("Progressing", step=0), "stuck at setWeight 50")
    gen = get(server)["metadata"]["generation"]
    p = server.v6("rollout", "promote", "rollout/web")
    assert p.returncode == 0, p.stderr
    ro = w.until(status_is("Paused", "CanaryPauseStep", 1), "at the pause step")
    w.close()
    assert ro["metadata"]["generation"] == gen  # a status write only
    p = server.v6("rollout", "status", "rollout/web", "--watch=false")
    assert p.returncode == 0 and p.stdout == \
        "Paused - CanaryPauseStep (step 1/3, weight 50%)\n", p.stdout


def test_promote_full_lifts_a_manual_pause_and_skips_every_step(server):
    create(server)
    set_image(server, "app:2", wait=PAUSED)
    p, ro = v6_then(server, ["rollout", "pause", "rollout/web"],
                    lambda r: r["spec"].get("paused") is True, "spec.paused")
    assert p.stdout == "rollout.argoproj.io/web paused\n"
    p, ro = v6_then(server, ["rollout", "promote", "web", "--full"], healthy,
                    "Healthy after promote --full")
    assert p.returncode == 0 and p.stdout == "rollout.argoproj.io/web fully promoted\n"
    assert ro["spec"]["paused"] is False
    assert "promoteFull" not in ro["status"]


def test_promote_past_the_last_step_says_what_to_do(server):
    create(server)
    p = server.v6("rollout", "promote", "web")
    assert p.returncode == 1
    assert "rollout/web has no canary step left to skip (at step 3/3)" in p.stderr
    p = server.v6("rollout", "promote", "web", "--full")
    assert p.returncode == 0
    assert "already fully promoted" in p.stdout


def test_abort_then_retry(server):
    ro = create(server)
    stable = ro["status"]["stableRS"]
    set_image(server, "app:2", wait=PAUSED)
    p, ro = v6_then(server, ["rollout", "abort", "web"], status_is("Degraded"), "Degraded")
    assert p.returncode == 0 and p.stdout == "rollout.argoproj.io/web aborted\n", p.stderr
    assert ro["status"]["message"].startswith("RolloutAborted: ")
    assert ro["status"]["stableRS"] == stable
    p = server.v6("rollout", "status", "rollout/web", "--timeout", "30s")
    assert p.returncode == 1 and p.stdout.startswith("Degraded - RolloutAborted"), p.stdout
    assert "the rollout is in a degraded state with message: RolloutAborted" in p.stderr
    p = server.v6("rollout", "abort", "web")
    assert p.returncode == 1
    assert "rollout/web is already aborted; use 'v6 rollout retry rollout/web'" in p.stderr
    p = server.v6("rollout", "promote", "web")
    assert p.returncode == 1 and "is aborted; run 'v6 rollout retry" in p.stderr
    p, ro = v6_then(server, ["rollout", "retry", "rollout/web"], PAUSED, "paused again")
    assert p.returncode == 0 and p.stdout == "rollout.argoproj.io/web retried\n"
    p = server.v6("rollout", "retry", "web")
    assert p.returncode == 1 and "rollout/web is not aborted" in p.stderr
    _, evs = server.json("GET", "/api/v1/namespaces/default/events", expect=200)
    reasons = [e["reason"] for e in evs["items"] if e["involvedObject"]["name"] == "web"]
    assert "RolloutAborted" in reasons and "RolloutRetried" in reasons, reasons


def test_pause_and_resume(server):
    create(server)
    p, ro = v6_then(server, ["rollout", "pause", "rollout/web"],
                    status_is("Paused", "rollout is paused by the user"), "user pause")
    assert p.stdout == "rollout.argoproj.io/web paused\n"
    p = server.v6("rollout", "pause", "rollout/web")
    assert p.returncode == 1 and "rollout/web is already paused" in p.stderr
    # paused: a new template waits (its ReplicaSet gets no pod)
    ro = set_image(server, "app:2", wait=status_is("Paused", "rollout is paused by the user"))
    h = ro["status"]["currentPodHash"]
    out = server.v6("get", "rs", "web-" + h).stdout
    assert re.search(r"web-%s +0 +0 +0 " % h, out), out
    p, ro = v6_then(server, ["rollout", "resume", "rollout/web"], PAUSED, "at the pause step")
    assert p.returncode == 0 and p.stdout == "rollout.argoproj.io/web resumed\n"
    assert ro["spec"]["paused"] is False
    # resume also goes on from a pause step
    p, ro = v6_then(server, ["rollout", "resume", "rollout/web"], healthy, "Healthy")
    assert p.returncode == 0
    p = server.v6("rollout", "resume", "rollout/web")
    assert p.returncode == 1
    assert ("rollout/web is not paused; use 'v6 rollout promote rollout/web' to skip "
            "the current step") in p.stderr


def test_argo_verbs_on_a_deployment_and_a_missing_rollout(server):
    p = server.v6("rollout", "promote", "deployment/web")
    assert p.returncode == 1
    assert "rollout promote is not supported for Deployment by v6 (it works on: Rollout)" \
        in p.stderr
    p = server.v6("rollout", "restart", "rollout/web")
    assert p.returncode == 1 and "(it works on: Deployment" in p.stderr
    p = server.v6("rollout", "abort", "nope")
    assert p.returncode == 1 and "NotFound" in p.stderr and "nope" in p.stderr
    p = server.v6("rollout", "promote")
    assert p.returncode == 1 and "'v6 rollout promote rollout/NAME'" in p.stderr


def test_rollout_help_lists_every_subcommand(server):
    out = server.v6("rollout", "--help").stdout
    for word in ("promote", "abort", "retry", "watch", "--full", "rollout/NAME",
                 "pauses", "Healthy", "Degraded"):
        assert word in out, word


# ---- status ------------------------------------------------------------------


def test_status_follows_a_timed_pause_until_healthy(server):
    """Regression: status returned (exit 0) at the first pause step."""
    create(server, steps=[{"setWeight": 50}, {"pause": {"duration": "3s"}},
                          {"setWeight": 100}])
    set_image(server, "app:2")
    p = server.v6("rollout", "status", "rollout/web", "--timeout", "90s", timeout=120)
    lines = p.stdout.splitlines()
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "Paused - CanaryPauseStep (step 1/3, weight 50%)" in lines, lines
    assert lines[-1] == "Healthy", lines
    assert healthy(get(server))           # it waited the pause out


def test_status_times_out_at_an_indefinite_pause_and_exits_1_when_degraded(server):
    create(server)
    set_image(server, "app:2", wait=PAUSED)
    p = server.v6("rollout", "status", "rollout/web", "--timeout", "3s")
    assert p.returncode == 1
    assert p.stdout == "Paused - CanaryPauseStep (step 1/3, weight 50%)\n", p.stdout
    assert ("timed out waiting for rollout.argoproj.io/web to become Healthy; it is "
            "Paused - CanaryPauseStep (step 1/3, weight 50%)") in p.stderr, p.stderr
    p = server.v6("rollout", "status", "rollout/web", "--watch=false")
    assert p.returncode == 0 and p.stdout.startswith("Paused - CanaryPauseStep")
    # abort while status follows: it exits 1 at Degraded
    env = dict(os.environ, V6_SERVER=server.url)
    f = subprocess.Popen([V6, "rollout", "status", "rollout/web", "--timeout", "60s"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert f.stdout.readline().startswith("Paused - CanaryPauseStep")
        assert server.v6("rollout", "abort", "web").returncode == 0
        out, err = f.communicate(timeout=60)
    finally:
        if f.poll() is None:
            f.kill()
            f.communicate()
    assert f.returncode == 1, (out, err)
    assert out.splitlines()[-1].startswith("Degraded - RolloutAborted"), out
    assert "the rollout is in a degraded state" in err


# ---- history and undo ----------------------------------------------------------


def test_history_and_undo_to_the_previous_revision(server):
    ro = create(server, steps=[])
    h1 = ro["status"]["stableRS"]
    ro = set_image(server, "app:2", wait=lambda r: healthy(r) and
                   r["status"]["stableRS"] != h1)
    h2 = ro["status"]["stableRS"]
    p = server.v6("rollout", "history", "rollout/web")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ("rollout.argoproj.io/web\n"
                        "REVISION  HASH          CHANGE-CAUSE\n"
                        "1         %-13s <none>\n"
                        "2         %-13s <none>\n\n" % (h1, h2)), p.stdout
    p = server.v6("rollout", "history", "rollout/web", "--revision", "1")
    assert p.returncode == 0 and "app:1" in p.stdout and "app:2" not in p.stdout
    p, ro = v6_then(server, ["rollout", "undo", "rollout/web"],
                    lambda r: healthy(r) and r["status"]["stableRS"] == h1, "back on " + h1)
    assert p.returncode == 0 and p.stdout == "rollout.argoproj.io/web rolled back\n", p.stderr
    tpl = ro["spec"]["template"]
    assert tpl["spec"]["containers"][0]["image"] == "app:1"
    assert "rollouts-pod-template-hash" not in tpl["metadata"]["labels"]
    out = server.v6("rollout", "history", "rollout/web").stdout
    assert re.search(r"\n2 +%s .*\n3 +%s " % (h2, h1), out), out   # revision 1 became 3
    p = server.v6("rollout", "undo", "rollout/web", "--to-revision", "3")
    assert p.returncode == 0 and "skipped rollback" in p.stdout


# ---- watch, get, describe -------------------------------------------------------


def read_until(proc, want, timeout=60):
    """Reads stdout lines until one contains want; returns what was read."""
    seen = []
    deadline = time.time() + timeout   # the view's own --timeout ends the read
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if want in line:
            return seen
    raise AssertionError("%r not seen in %r" % (want, "".join(seen)[-3000:]))


def test_watch_prints_a_block_per_change(server):
    create(server)
    ro = set_image(server, "app:2", wait=PAUSED)
    h2, h1 = ro["status"]["currentPodHash"], ro["status"]["stableRS"]
    env = dict(os.environ, V6_SERVER=server.url)
    p = subprocess.Popen([V6, "rollout", "watch", "web", "--timeout", "60s"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = "".join(read_until(p, "Revisions:") + read_until(p, h2))
        assert "Status:       Paused - CanaryPauseStep (step 1/3, weight 50%)" in first, first
        assert "  => 1  pause (until promoted)" in first, first
        assert re.search(r"\n  2 +%s +canary +1 +1 +app:2\n" % h2, first), first
        # promote: the view follows the controller to Healthy, the pods under
        # their revision
        assert server.v6("rollout", "promote", "web").returncode == 0
        read_until(p, "Status:       Healthy")
        block = "".join(read_until(p, "Revisions:") + read_until(p, "web-%s-" % h2))
        assert re.search(r"\n  2 +%s +stable +2 +2 +app:2\n" % h2, block), block
        p.terminate()
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert h1 and not err.strip(), err


def test_watch_redraws_in_place_on_a_terminal(server):
    create(server)
    set_image(server, "app:2", wait=PAUSED)
    master, slave = pty.openpty()
    env = dict(os.environ, V6_SERVER=server.url)
    p = subprocess.Popen([V6, "rollout", "watch", "web", "--timeout", "60s"], stdout=slave,
                         stderr=subprocess.PIPE, env=env)
    os.close(slave)
    out, promoted = b"", False
    clear = b"\033[H\033[2J"
    try:
        deadline = time.time() + 60
        while time.time() < deadline and b"Status:       Healthy" not in \
                out.split(clear)[-1]:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
            if b"Replicas:" in out and not promoted:  # the first screen is complete
                assert server.v6("rollout", "promote", "web").returncode == 0
                promoted = True
    finally:
        p.terminate()
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        os.close(master)
    screens = out.split(clear)
    assert out.startswith(clear), out[:200]
    assert b"Paused - CanaryPauseStep (step 1/3, weight 50%)" in screens[1], screens[1]
    assert len(screens) >= 3 and b"Status:       Healthy" in screens[-1], out[-2000:]


def test_watch_of_a_missing_rollout_fails(server):
    p = server.v6("rollout", "watch", "rollout/nope", "--timeout", "5s")
    assert p.returncode == 1
    assert 'rollout.argoproj.io "nope" not found' in p.stderr


def test_get_rollouts_columns(server):
    create(server)
    set_image(server, "app:2", wait=lambda r: PAUSED(r) and
              r["status"].get("availableReplicas") == 2 and
              r["status"].get("updatedReplicas") == 1)
    server.json("POST", "/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "bg"},
        "spec": {"selector": {"app": "bg"}, "ports": [{"port": 80}]}}, expect=201)
    create(server, name="bg", strategy={"blueGreen": {"activeService": "bg"}}, replicas=1)
    out = server.v6("get", "rollouts").stdout.splitlines()
    assert out[0].split() == ["NAME", "DESIRED", "CURRENT", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert out[1].split()[:5] == ["bg", "1", "1", "1", "1"], out
    assert out[2].split()[:5] == ["web", "2", "2", "1", "2"], out
    out = server.v6("get", "rollouts", "-o", "wide").stdout.splitlines()
    assert out[0].split()[6:] == ["STRATEGY", "STEP", "SET-WEIGHT", "PHASE"]
    assert out[1].split()[6:] == ["BlueGreen", "-", "-", "Healthy"], out
    assert out[2].split()[6:] == ["Canary", "1/3", "50", "Paused"], out


def test_describe_rollout(server):
    create(server)
    set_image(server, "app:2", wait=PAUSED)
    p = server.v6("describe", "rollout", "web")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for want in ("Name:", "Selector:", "app=web",
                 "Status:       Paused - CanaryPauseStep (step 1/3, weight 50%)",
                 "Strategy:     Canary", "  ok 0  setWeight: 50%", "  => 1  pause",
                 "Weights:      stable 50%, canary 50% (by replicas)", "canary",
                 "Events:", "RolloutPaused", "RolloutStepCompleted"):
        assert want in out, (want, out)


# ---- analysis: AnalysisRuns in the views, ClusterAnalysisTemplate ----------------


class Verdict:
    """A loopback JSON endpoint whose success rate the test sets."""

    def __init__(self, rate):
        self.rate = rate
        me = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                data = json.dumps({"rate": me.rate}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/rate" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def verdict():
    v = Verdict(0.97)
    yield v
    v.close()


def template(kind, url, count, name="success-rate"):
    t = {"apiVersion": "argoproj.io/v1alpha1", "kind": kind, "metadata": {"name": name},
         "spec": {"metrics": [{"name": "success-rate", "interval": "1s", "count": count,
                               "failureLimit": 0, "successCondition": "result >= 0.95",
                               "provider": {"web": {"url": url, "jsonPath": "{$.rate}"}}}]}}
    return t


ANALYSIS_STEPS = [{"setWeight": 50},
                  {"analysis": {"templates": [{"templateName": "success-rate",
                                               "clusterScope": True}]}},
                  {"setWeight": 100}]


def test_analysisruns_in_get_describe_and_the_rollout_view(server, verdict):
    server.json("POST", NS + "/analysistemplates",
                template("AnalysisTemplate", verdict.url, 600), expect=201)
    steps = [dict(ANALYSIS_STEPS[1])]
    steps[0] = {"analysis": {"templates": [{"templateName": "success-rate"}]}}
    create(server, steps=[{"setWeight": 50}] + steps + [{"setWeight": 100}])

    def measured(r):
        a = r.get("status", {}).get("canary", {}).get("currentStepAnalysisRunStatus", {})
        return a.get("status") == "Running"
    ro = set_image(server, "app:2", wait=measured)
    run = ro["status"]["canary"]["currentStepAnalysisRunStatus"]["name"]
    assert re.fullmatch(r"web-%s-2-1" % ro["status"]["currentPodHash"], run), run
    deadline = time.time() + 30
    while "success rate 97.0%" not in server.v6("describe", "analysisrun", run).stdout:
        assert time.time() < deadline, server.v6("describe", "analysisrun", run).stdout
        time.sleep(0.2)
    out = server.v6("get", "analysisruns").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "AGE"]
    assert out[1].split()[:2] == [run, "Running"], out
    out = server.v6("describe", "analysisrun", run).stdout
    assert re.search(r"\nControlled By: +Rollout/web\n", out), out
    assert "success-rate  Running  success rate 97.0% (Successful)" in out, out
    out = server.v6("describe", "rollout", "web").stdout
    assert ("Analysis:\n  %s  Running\n    success-rate  Running  success rate 97.0%%" % run) \
        in out, out


@pytest.mark.parametrize("rate,outcome", [(0.99, "Healthy"), (0.5, "Degraded")])
def test_analysis_from_a_cluster_analysis_template(server, verdict, rate, outcome):
    """A Rollout whose analysis step names a ClusterAnalysisTemplate
    (clusterScope: true): a good verdict promotes, a bad one aborts."""
    verdict.rate = rate
    server.json("POST", "/apis/argoproj.io/v1alpha1/clusteranalysistemplates",
                template("ClusterAnalysisTemplate", verdict.url, 2), expect=201)
    ro = create(server, steps=ANALYSIS_STEPS)
    h1 = ro["status"]["stableRS"]
    set_image(server, "app:2")
    p = server.v6("rollout", "status", "rollout/web", "--timeout", "90s", timeout=120)
    assert p.stdout.splitlines()[-1].startswith(outcome), (p.stdout, p.stderr)
    ro = get(server)
    run = ro["status"]["canary"]["currentStepAnalysisRunStatus"]
    if outcome == "Healthy":
        assert p.returncode == 0 and healthy(ro) and ro["status"]["stableRS"] != h1
        assert run["status"] == "Successful", run
    else:
        assert p.returncode == 1 and ro["status"]["stableRS"] == h1
        assert "success-rate" in ro["status"]["message"], ro["status"]
        assert run["status"] == "Failed", run
    _, r = server.json("GET", NS + "/analysisruns/" + run["name"], expect=200)
    m = r["spec"]["metrics"][0]
    assert m["provider"]["web"]["url"] == verdict.url   # taken from the cluster template
