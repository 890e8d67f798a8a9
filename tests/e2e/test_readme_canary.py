"""The README's canary / blue-green tour, run as written: the commands are
read from README.md's "Canary, blue-green and A/B releases" block and typed
one by one into one bash against a real server, and each is held to what
the README says it does (the failing shop-v2 aborts by itself, traffic goes
back to shop-v1, the fix becomes stable, pay switches and switches back)."""
import pytest
import json
import re
import time

import readme
from conftest import V6


@pytest.fixture
def server(examples_server):
    """examples/ are images run by runc: the server the README starts (as root)."""
    return examples_server

SECTION = "Canary, blue-green and A/B releases"
NS_PATH = "/apis/argoproj.io/v1alpha1/namespaces/demo/"


def rollout(server, name):
    return server.json("GET", NS_PATH + "rollouts/" + name, expect=200)[1]


def eventually(sh, text, want, timeout=30):
    """Re-runs an idempotent command (a curl) until its output has want, as
    a reader would look again."""
    deadline = time.time() + timeout
    out = None
    while time.time() < deadline:
        rc, out = sh.run(text, timeout=15)
        if rc == 0 and want in out:
            return out
        time.sleep(0.2)
    raise AssertionError("%r never printed %r; last output: %r" % (text, want, out))


def last_line(out):
    return out.strip().split("\n")[-1]


def check_healthy(version):
    def check(server, sh, cmd, rc, out):
        assert rc == 0 and last_line(out).startswith("Healthy"), (cmd, rc, out)
        ro = rollout(server, "shop")
        assert ro["status"]["stableRS"] == ro["status"]["currentPodHash"], ro["status"]
        eventually(sh, "curl -s http://$SHOP/", version)
    return check


def check_aborted_by_itself(server, sh, cmd, rc, out):
    # exit 1 at Degraded, after following the steps (no stop at a pause)
    assert rc == 1, (cmd, rc, out)
    assert "Degraded - RolloutAborted" in out, out
    assert "InconclusiveAnalysis" not in out, out
    st = rollout(server, "shop")["status"]
    assert st["canary"]["weights"]["canary"]["weight"] == 0, st
    assert "success-rate" in st["message"], st
    run = st["canary"]["currentStepAnalysisRunStatus"]
    assert run["status"] == "Failed", run
    _, evs = server.json("GET", "/api/v1/namespaces/demo/events", expect=200)
    reasons = [e["reason"] for e in evs["items"]
               if e["involvedObject"]["name"] == "shop"]
    assert "RolloutAborted" in reasons, reasons
    assert "RolloutRetried" not in reasons, reasons


def check_ok(*wants):
    def check(server, sh, cmd, rc, out):
        assert rc == 0, (cmd, rc, out)
        for w in wants:
            assert w in out, (cmd, w, out)
    return check


def check_curl(want):
    def check(server, sh, cmd, rc, out):
        eventually(sh, cmd.text, want)
    return check


def check_pay(version, paused=False):
    def check(server, sh, cmd, rc, out):
        assert rc == 0, (cmd, rc, out)
        _, svc = server.json("GET", "/api/v1/namespaces/demo/services/pay", expect=200)
        eventually(sh, "curl -s http://%s/" % svc["spec"]["clusterIP"], version)
        deadline = time.time() + 30
        while time.time() < deadline:
            st = rollout(server, "pay")["status"]
            if st.get("phase") == "Healthy":
                break
            assert st.get("phase") != "Paused" or paused, st
            time.sleep(0.2)
        assert st.get("phase") == "Healthy", st
    return check


def check_history(server, sh, cmd, rc, out):
    assert rc == 0, (cmd, rc, out)
    lines = out.strip().split("\n")
    head = next(i for i, l in enumerate(lines) if l.startswith("REVISION"))
    revs = [l.split()[0] for l in lines[head + 1:]]
    assert revs == ["1", "2"], out


def check_undo(server, sh, cmd, rc, out):
    assert rc == 0 and "rolled back" in out, (cmd, rc, out)
    eventually(sh, "curl -s http://$(v6 get svc pay-preview -n demo -o jsonpath="
               "'{.spec.clusterIP}')/", "pay-v1")
    eventually(sh, "curl -s http://$(v6 get svc pay -n demo -o jsonpath="
               "'{.spec.clusterIP}')/", "pay-v2")
    deadline = time.time() + 30
    while rollout(server, "pay")["status"].get("phase") != "Paused":
        assert time.time() < deadline, rollout(server, "pay")["status"]
        time.sleep(0.2)


# The README's block, command by command: (what the command must look like,
# what it must do). A command added, removed or reordered fails the test.
TOUR = [
    (r"^v6 rollout status rollout/shop -n demo$", check_ok("Healthy")),
    (r"^v6 get rollouts -n demo -o wide$", check_ok("shop", "pay", "Canary", "BlueGreen")),
    (r"^SHOP=\$\(v6 get svc shop", check_ok()),
    (r"^while :; do curl .*\$SHOP.*done &$", check_ok()),
    (r"shop-v2.*--error-rate.*v6 apply -f -$", check_ok("rollout.argoproj.io/shop configured")),
    (r"^v6 rollout status rollout/shop -n demo$", check_aborted_by_itself),
    (r"^curl http://\$SHOP/$", check_curl("shop-v1")),
    (r"shop-v3.*v6 apply -f -$", check_ok("rollout.argoproj.io/shop configured")),
    (r"^v6 rollout watch shop -n demo$", "Paused - CanaryPauseStep"),
    (r"^curl -H 'X-Canary: always' http://\$SHOP/$", check_curl("shop-v3")),
    (r"^v6 rollout promote rollout/shop -n demo$", check_ok()),
    (r"^v6 rollout status rollout/shop -n demo$", check_healthy("shop-v3")),
    (r"^kill %1$", check_ok()),
    (r"pay-v2.*pay-bluegreen.yaml \| v6 apply -f -$", check_ok()),
    (r"^v6 rollout watch pay -n demo$", "Paused - BlueGreenPause"),
    (r"^curl http://\$\(v6 get svc pay-preview", check_curl("pay-v2")),
    (r"^v6 rollout promote rollout/pay -n demo$", check_pay("pay-v2")),
    (r"^v6 rollout history rollout/pay -n demo$", check_history),
    (r"^v6 rollout undo rollout/pay -n demo$", check_undo),
]


def test_readme_canary_and_blue_green_tour_runs_as_written(server):
    cmds = readme.commands(SECTION)
    assert [c.text for c in cmds if True] and len(cmds) == len(TOUR), \
        "the README block changed: %s" % cmds
    sh = readme.Shell(V6, server.url)
    try:
        # the five-minute tour before it applied examples/
        rc, out = sh.run("v6 apply -f examples/")
        assert rc == 0, out
        for cmd, (pattern, check) in zip(cmds, TOUR):
            assert re.search(pattern, cmd.text), "%r does not match %r" % (cmd, pattern)
            t0 = time.time()
            if isinstance(check, str):      # follows until Ctrl-C, pressed at check
                rc, out = sh.interrupt_when(cmd.text, check, timeout=180)
            else:
                rc, out = sh.run(cmd.text, timeout=180)
            print("%5.1f s  %s -> %d" % (time.time() - t0, cmd, rc))
            if not isinstance(check, str):
                check(server, sh, cmd, rc, out)
    except AssertionError:
        print(json.dumps(rollout(server, "shop").get("status"), indent=1))
        print(server.log()[-3000:])
        raise
    finally:
        sh.close()
