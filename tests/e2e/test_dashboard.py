"""The web dashboard (/ui/) in a real browser: headless Chromium from Debian
driven over WebDriver (webdriver.py). A user opens it, follows a canary
from 10 % to 100 % with the weight moving on screen, promotes it with the
button, follows a pod's log, and a page of 1,000 pods stays interactive.
Screenshots of every view go to tests/e2e/artifacts/dashboard/ (the alerts
and images views' and the HTTPS one's from test_dashboard_alerts.py)."""
import json
import os
import time

from load import version_load
from test_rollout import apply, canary, healthy_on, rollout, service, service_ip, wait_serving
from conftest import wait_for
from webdriver import Browser

ART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "artifacts", "dashboard")

# Samples the weight and step on screen every 50 ms into window.__seen,
# whatever re-renders them (the view repaints on each watch event).
SAMPLER = """
window.__seen = [];
setInterval(function () {
  var w = document.querySelector('[data-t=weight]'), s = document.querySelector('[data-t=step]');
  if (!w || !s) return;
  var v = w.textContent + '@' + s.textContent, a = window.__seen;
  if (!a.length || a[a.length - 1] !== v) a.push(v);
}, 50);
"""


def shot(b, name):
    b.screenshot(os.path.join(ART, name + ".png"))


def open_ui(b, server, hash_=""):
    b.get(server.url + "/ui/" + hash_)
    # The loopback server needs no login: the page goes straight in.
    b.wait("return !document.getElementById('app').hidden && "
           "document.getElementById('login').hidden", "the dashboard to open")


def goto(b, hash_):
    b.js("location.hash = arguments[0]", hash_)


def weights(b):
    return [tuple(int(x) for x in v.split("@")) for v in b.js("return window.__seen")]


def test_canary_followed_and_promoted_from_the_dashboard(server):
    steps = [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": 2}}]
    apply(server, service("web"), service("web-canary"), rollout("v1", canary(steps)))
    healthy_on(server, "v1")
    with Browser() as b:
        open_ui(b, server)
        b.wait("return document.querySelector('.card[data-ns=default]')", "namespace cards")
        shot(b, "overview")

        goto(b, "#/rollout/default/web")
        b.wait_text("[data-t=weight]", lambda t: t == "100", "v1 to hold all traffic")
        b.js(SAMPLER)
        apply(server, rollout("v2", canary(steps)))
        # The canary reaches its first pause at 10 %, live, without a reload.
        b.wait_text("[data-t=step]", lambda t: t == "1", "the pause step", timeout=90)
        assert b.text("[data-t=weight]") == "10"
        assert b.text("[data-t=step-current]").startswith("pause")
        # Both revisions with their pods: the canary's one, the stable's two.
        b.wait("var r = Array.from(document.querySelectorAll('.rev')).map(x => "
               "[!!x.querySelector('.b-canary'), !!x.querySelector('.b-stable'), "
               "x.querySelectorAll('.pod-chip').length]);"
               "return JSON.stringify(r) == '[[true,false,1],[false,true,2]]'",
               "the canary and stable revisions with their pods")
        shot(b, "rollout-paused")

        # The buttons the state allows are enabled (no RBAC yet: admin).
        enabled = b.js("return Array.from(document.querySelectorAll('button[data-action]'))"
                       ".filter(x => !x.disabled).map(x => x.dataset.action)")
        assert {"promote", "promote-full", "abort", "pause"} <= set(enabled), enabled
        assert "retry" not in enabled, enabled     # not aborted: nothing to retry

        # Traffic per revision, from the proxy, while the canary takes 10 %.
        ip = service_ip(server)
        wait_serving(ip, "v1")
        goto(b, "#/service/default/web")
        with version_load(ip, 80) as load:
            rows = b.wait("var r = document.querySelectorAll('table[data-t=traffic] tbody tr');"
                          "return r.length >= 2 && Array.from(r).every(x => "
                          "!/^0\\.0\\//.test(x.cells[2].textContent.trim().split(' ').pop())) "
                          "&& Array.from(r).map(x => x.textContent)",
                          "requests/s of both revisions", timeout=40)
            shot(b, "service")
        load.assert_clean(min_ok=20)
        assert b.js("return document.querySelectorAll('table[data-t=traffic] svg.spark').length"
                    ) >= 6, rows

        goto(b, "#/rollout/default/web")
        b.wait_text("[data-t=step]", lambda t: t == "1", "the rollout view again")
        b.js(SAMPLER)
        b.click("button[data-action=promote]")
        b.wait_text("[data-t=weight]", lambda t: t == "100", "the canary to finish", timeout=90)
        b.wait("return document.querySelector('h1 .b-healthy')", "Healthy on screen", timeout=30)
        shot(b, "rollout-promoted")
        seen = weights(b)
        # The step moved past the pause and the weight went 10 -> 50 -> 100,
        # each shown as it happened.
        ws = [w for w, _ in seen]
        assert ws[0] == 10 and 50 in ws and ws[-1] == 100, seen
        assert ws.index(50) < len(ws) - 1 - ws[::-1].index(100), seen
        assert max(s for _, s in seen) >= 3, seen
        _, ro = server.json("GET", "/apis/argoproj.io/v1alpha1/namespaces/default/rollouts/web")
        assert ro["status"]["stableRS"] == ro["status"]["currentPodHash"]

        # Revisions list their pods; the new revision is stable now.
        revs = b.js("return Array.from(document.querySelectorAll('.rev')).map("
                    "r => [r.dataset.hash, r.querySelectorAll('.pod-chip').length, "
                    "!!r.querySelector('.b-stable')])")
        assert any(h == ro["status"]["stableRS"] and stable and n >= 1
                   for h, n, stable in revs), revs

        # Pause and resume: spec.paused, as `v6 rollout pause/resume`.
        b.click("button[data-action=pause]")
        b.wait("return document.querySelector('#main h1 .b-paused') && "
               "!document.querySelector('button[data-action=resume]').disabled", "paused")
        _, ro = server.json("GET", "/apis/argoproj.io/v1alpha1/namespaces/default/rollouts/web")
        assert ro["spec"]["paused"] is True
        b.click("button[data-action=resume]")
        b.wait("return !document.querySelector('#main h1 .b-paused')", "resumed")
        _, ro = server.json("GET", "/apis/argoproj.io/v1alpha1/namespaces/default/rollouts/web")
        assert ro["spec"]["paused"] is False

        goto(b, "#/workloads?q=app%3Dweb")
        b.wait("return document.querySelectorAll('table[data-t=pods] tbody tr').length >= 2",
               "the rollout's pods in the list")
        wl = b.wait("var r = document.querySelector('table[data-t=workloads] tbody tr');"
                    "return r && Array.from(r.cells).map(c => c.textContent)",
                    "the rollout among the workloads (by its pods' label)")
        assert wl[:3] == ["Rollout", "web", "default"], wl
        assert wl[5] == ro["status"]["currentPodHash"], wl
        assert wl[6] == "v6/testapp", wl
        shot(b, "workloads")
        goto(b, "#/services")
        b.wait("return document.querySelector('table[data-t=services] tbody tr')", "services")
        shot(b, "services")
        hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "web", "namespace": "default"},
               "spec": {"scaleTargetRef": {"apiVersion": "argoproj.io/v1alpha1",
                                           "kind": "Rollout", "name": "web"},
                        "minReplicas": 2, "maxReplicas": 4,
                        "metrics": [{"type": "Resource", "resource": {
                            "name": "cpu", "target": {"type": "Utilization",
                                                      "averageUtilization": 80}}}]}}
        apply(server, hpa)
        goto(b, "#/hpa")
        row = b.wait("var r = document.querySelector('table[data-t=hpas] tbody tr');"
                     "return r && Array.from(r.cells).map(c => c.textContent)", "the HPA's row")
        assert row[:4] == ["web", "default", "Rollout/web", "2\u20134"], row
        assert row[5].startswith("cpu ") and row[5].endswith("/ 80%"), row
        shot(b, "hpa")

        # The namespace cards lead to that namespace; the selector follows.
        goto(b, "#/overview")
        b.wait("return document.querySelector('.card[data-ns=default]')", "the cards")
        b.click(".card[data-ns=default]")
        b.wait("return location.hash.indexOf('ns=default') > 0 && "
               "document.getElementById('ns').value == 'default'", "the namespace selected")

        # Undo: the template goes back to v1's, which starts a new canary.
        goto(b, "#/rollout/default/web")
        b.wait("var u = document.querySelector('button[data-action=undo]');"
               "return u && !u.disabled", "undo enabled with two revisions")
        b.click("button[data-action=undo]")
        b.wait_text("[data-t=step]", lambda t: t == "1", "the undo's canary at its pause",
                    timeout=90)
        assert b.text("[data-t=weight]") == "10"
        _, ro = server.json("GET", "/apis/argoproj.io/v1alpha1/namespaces/default/rollouts/web")
        assert "v1" in ro["spec"]["template"]["spec"]["containers"][0]["command"], ro["spec"]
        assert b.text("#action-error") == ""


def test_pod_log_followed_live_and_the_previous_container(make_server):
    server = make_server("--max-backoff", "1s")
    # Each run prints its own boot line, 25 ticks, and fails: it restarts.
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "ticker", "namespace": "default", "labels": {"app": "tick"}},
           "spec": {"containers": [{"name": "main", "image": "busybox",
                                    "command": ["sh", "-c", "echo boot `date +%s%N`; i=0; "
                                                "while [ $i -lt 25 ]; do i=$((i+1)); "
                                                "echo tick $i; sleep 0.3; done; exit 3"],
                                    "env": [{"name": "MODE", "value": "demo"}]}]}}
    server.json("POST", "/api/v1/namespaces/default/pods", pod, expect=201)
    with Browser() as b:
        open_ui(b, server, "#/pod/default/ticker")
        first = b.wait_text("#log", lambda t: "tick 2\n" in t, "the log's first lines",
                            timeout=60)
        boot = first.splitlines()[0]
        assert boot.startswith("boot ") and boot[5:].isdigit(), first   # its start, in ns
        # Follow: lines written after the page opened arrive by themselves.
        n = int(first.strip().splitlines()[-1].split()[1])
        b.wait_text("#log", lambda t: ("tick %d\n" % (n + 5)) in t, "new lines, followed")
        assert b.js("return Array.from(document.querySelectorAll('table[data-t=env] td'))"
                    ".map(x => x.textContent)") == ["main", "MODE", "demo"]
        shot(b, "pod")
        # The run ends (exit 3) and the container restarts: its previous
        # log is the first run's, to its last line.
        b.wait("var r = document.querySelector('table[data-t=containers] tbody tr');"
               "return r && r.cells[3].textContent == '1'", "a restart", timeout=60)
        # Following goes on with the new run's log...
        b.wait("var t = document.getElementById('log').textContent;"
               "return t.indexOf('boot ') == 0 && t.split('\\n')[0] != arguments[0]",
               "the restarted container followed", 30, boot)
        # ...and "previous" shows the first run's.
        b.click("#log-previous")
        prev = b.wait_text("#log", lambda t: "tick 25\n" in t, "the previous container's log")
        assert prev.splitlines()[0] == boot, prev[:200]
        b.wait_text("#log-state", lambda t: t == "end of log", "the previous log's end")
        # At phone size the page still reads (one column, no sideways scroll).
        b.resize(390, 844)
        b.js("document.activeElement.blur()")     # keys go to the page, not the checkbox
        b.keys("t")     # the theme key
        assert b.js("return document.documentElement.dataset.theme") == "dark"
        assert b.js("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot(b, "pod-phone-dark")


def test_thousand_pods_stay_interactive(server):
    # Pods bound to a node that does not exist stay Pending: 1,000 of them
    # cost the API objects, not processes.
    for i in range(1000):
        p = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "load-%04d" % i, "namespace": "default",
                          "labels": {"app": "load", "shard": str(i % 10)}},
             "spec": {"nodeName": "elsewhere",
                      "containers": [{"name": "c", "image": "busybox"}]}}
        server.request("POST", "/api/v1/namespaces/default/pods", p)
    with Browser() as b:
        b.get(server.url + "/ui/#/workloads")
        tti = b.wait("var c = document.querySelector('[data-t=pod-count]');"
                     "if (!c || c.textContent !== '1000') return 0;"
                     "return performance.now()", "1,000 pods on screen", timeout=60)
        # Interactive: the main thread answers a task within a frame or two.
        lag = b.js_async("var t = performance.now(), done = arguments[0];"
                         "setTimeout(function () { done(performance.now() - t); }, 0);")
        shot(b, "pods-1000")
        # Frame budget while 200 of the pods change in a burst: the gaps
        # between animation frames stay short while every change is shown.
        b.frames_start()
        for i in range(0, 1000, 5):
            server.request("PATCH", "/api/v1/namespaces/default/pods/load-%04d" % i,
                           {"metadata": {"labels": {"touched": "yes"}}},
                           headers={"Content-Type": "application/merge-patch+json"})
        b.type("#q", "touched=yes")
        b.wait_text("[data-t=pod-count]", lambda t: t == "200", "the burst of changes")
        gaps = b.frames_stop()
        b.js("document.getElementById('q').value = ''")
        # Search narrows 1,000 rows by label at once.
        b.type("#q", "shard=3")
        b.wait_text("[data-t=pod-count]", lambda t: t == "100", "the label search")
        assert "q=shard%3D3" in b.js("return location.hash")    # a URL to share
        # Keyboard: j selects the first row, Enter opens it.
        b.js("document.activeElement.blur()")
        b.keys("j")
        b.keys("\ue007")
        b.wait("return location.hash.indexOf('#/pod/default/load-') == 0", "a pod opened by keys")
        b.js("history.back()")
        # And a change to one pod arrives through the watch.
        server.request("DELETE", "/api/v1/namespaces/default/pods/load-0003?gracePeriodSeconds=0")
        b.wait_text("[data-t=pod-count]", lambda t: t == "99", "a deleted pod to go")
    with open(os.path.join(ART, "pods-1000.json"), "w") as f:
        json.dump({"time_to_interactive_ms": tti, "task_lag_ms": lag, "frames": len(gaps),
                   "frame_gap_p95_ms": gaps[int(len(gaps) * 0.95)],
                   "frame_gap_max_ms": gaps[-1]}, f)
    assert tti < 15000, tti
    assert lag < 200, lag
    assert len(gaps) > 10 and gaps[-1] < 1000, gaps[-10:]


def test_failing_analysis_shown_with_its_measurements(make_server):
    from test_rollout_analysis import ANALYSIS_STEPS, SUCCESS_RATE
    server = make_server("--traffic-period", "500ms")
    strat = canary(ANALYSIS_STEPS, abortScaleDownDelaySeconds=0)
    apply(server, service("web"), service("web-canary"), SUCCESS_RATE, rollout("v1", strat))
    healthy_on(server, "v1")
    ip = service_ip(server)
    wait_serving(ip, "v1")
    with Browser() as b:
        open_ui(b, server, "#/rollout/default/web")
        b.wait_text("[data-t=weight]", lambda t: t == "100", "v1 to hold all traffic")
        with version_load(ip, 80):
            apply(server, rollout("v2", strat, extra=["--error-rate", "0.3"]))
            b.wait("return document.querySelector('#main h1 .b-aborted')", "the abort on screen",
                   timeout=90)
        rows = b.wait("var r = Array.from(document.querySelectorAll("
                      "'.run table[data-t=measurements] tbody tr'));"
                      "return r.length >= 2 && r.map(x => Array.from(x.cells).map(c => "
                      "c.textContent.trim()))", "the analysis' measurements", timeout=30)
        shot(b, "rollout-analysis-failed")
        assert all(r[0] == "success-rate" for r in rows), rows
        assert any(r[1] == "Failed" and float(r[2]) < 0.95 for r in rows), rows
        assert b.text(".run .badge").strip() == "Failed"
        assert b.text("[data-t=weight]") == "0"
        enabled = b.js("return Array.from(document.querySelectorAll('button[data-action]'))"
                       ".filter(x => !x.disabled).map(x => x.dataset.action)")
        # Aborted: retry is what is left to do; promote and abort are not.
        assert "retry" in enabled and "promote" not in enabled and "abort" not in enabled, \
            enabled


def test_application_out_of_sync_diff_and_sync_button(server, workdir):
    from gitserve import Repo
    from test_gitops import DEST, NS, application, cm, configmap, yaml_docs
    from test_gitops import apply as apply_app
    repo = Repo(workdir)
    repo.write("app/config.yaml", yaml_docs(configmap("settings", {"color": "blue"})))
    repo.commit("first")
    apply_app(server, application("shop", repo.file_url))
    with Browser() as b:
        open_ui(b, server, "#/apps")
        row = b.wait("var r = document.querySelector('table[data-t=apps] tbody tr');"
                     "return r && r.cells[2].textContent == 'OutOfSync' && "
                     "Array.from(r.cells).map(c => c.textContent)", "the app out of sync",
                     timeout=60)
        assert row[:2] == ["shop", NS], row
        shot(b, "applications")
        b.click("table[data-t=apps] tbody tr a")
        # The diff: the ConfigMap git wants and the cluster lacks.
        diff = b.wait_text("pre[data-t=diff]", lambda t: any(
            l.startswith("+ ") and '"color": "blue"' in l for l in t.splitlines()),
            "the diff of the missing ConfigMap", timeout=30)
        shot(b, "application-out-of-sync")
        b.click("button[data-action=sync]")
        b.wait("return document.querySelector('#main h1 .b-synced') && "
               "document.querySelector('[data-t=no-diff]')", "synced, no diff", timeout=60)
        assert cm(server, "settings")["data"] == {"color": "blue"}
        res = b.js("return Array.from(document.querySelectorAll("
                   "'table[data-t=app-resources] tbody td')).map(c => c.textContent)")
        assert res[:4] == ["ConfigMap", DEST, "settings", "Synced"], (res, diff)
        shot(b, "application-synced")


def pending_pod(name):
    """A pod bound to a node that does not exist: it stays Pending, no process."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "idle"}},
            "spec": {"nodeName": "elsewhere", "containers": [{"name": "c", "image": "busybox"}]}}


def test_a_view_resumes_its_watch_after_a_server_restart(server):
    server.json("POST", "/api/v1/namespaces/default/pods", pending_pod("before"), expect=201)
    with Browser() as b:
        open_ui(b, server, "#/workloads?q=app%3Didle")
        b.wait_text("[data-t=pod-count]", lambda t: t == "1", "the first pod")
        server.restart()    # kill -9: the page's watch breaks mid-stream
        server.json("POST", "/api/v1/namespaces/default/pods", pending_pod("after"), expect=201)
        server.request("DELETE", "/api/v1/namespaces/default/pods/before?gracePeriodSeconds=0")
        # Both changes arrive through the resumed watch, without a reload.
        b.wait("var r = document.querySelectorAll('table[data-t=pods] tbody tr');"
               "return r.length == 1 && r[0].cells[0].textContent == 'after'",
               "the changes made while the page was disconnected", timeout=45)
        assert b.js("return performance.getEntriesByType('navigation').length") == 1
        # A hidden tab gives its watches back (a browser has six connections
        # per server for all its tabs) and catches up when shown again.
        wait_for(lambda: watches(server) == 2, 20, "pods and rollouts watched")
        set_visibility(b, "hidden")
        wait_for(lambda: watches(server) == 0, 20, "the hidden tab's watches to close")
        server.json("POST", "/api/v1/namespaces/default/pods", pending_pod("hidden"),
                    expect=201)
        set_visibility(b, "visible")
        b.wait("return document.querySelectorAll('table[data-t=pods] tbody tr').length == 2",
               "the pod created while hidden")
        wait_for(lambda: watches(server) == 2, 20, "the watches back")


def test_a_failed_action_is_reported_next_to_its_button(server):
    apply(server, rollout("v1", canary([{"setWeight": 10}, {"pause": {}}]), replicas=0))
    with Browser() as b:
        open_ui(b, server, "#/rollout/default/web")
        b.wait("var p = document.querySelector('button[data-action=pause]');"
               "return p && !p.disabled", "the pause button")
        server.kill()   # the server is gone when the user clicks
        b.click("button[data-action=pause]")
        err = b.wait_text("#action-error",
                          lambda t: t.startswith("pause: the server did not answer"),
                          "the error next to the buttons")
        shot(b, "rollout-action-error")
        server.start()
        # Once the server is back, the same button works and the error goes.
        b.wait("var p = document.querySelector('button[data-action=pause]');"
               "return p && !p.disabled", "the pause button again", timeout=30)
        b.click("button[data-action=pause]")
        b.wait("return document.querySelector('#main h1 .b-paused') && "
               "document.getElementById('action-error').textContent == ''",
               "paused, no error", timeout=30)
        assert err


def watches(server):
    """The server's open watches (apiserver_longrunning_requests)."""
    _, _, text = server.request("GET", "/metrics")
    for line in text.decode().splitlines():
        if line.startswith('apiserver_longrunning_requests{verb="WATCH"}'):
            return int(float(line.split()[-1]))
    raise AssertionError("no apiserver_longrunning_requests in /metrics")


def set_visibility(b, state):
    b.js("Object.defineProperty(document, 'visibilityState', {configurable: true,"
         " get: function () { return arguments[0]; }.bind(null, arguments[0])});"
         "document.dispatchEvent(new Event('visibilitychange'));", state)


def test_assets_are_embedded_gzipped_and_revalidated(server):
    import gzip
    status, h, body = server.request("GET", "/ui")
    assert status == 308 and h["Location"] == "/ui/"
    status, h, plain = server.request("GET", "/ui/app.js")
    assert status == 200 and "Content-Encoding" not in h
    assert h["Content-Type"].startswith("text/javascript")
    status, hz, packed = server.request("GET", "/ui/app.js",
                                        headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert status == 200 and hz["Content-Encoding"] == "gzip" and hz["Vary"] == "Accept-Encoding"
    assert gzip.decompress(packed) == plain and len(packed) < len(plain) / 2
    # gzip;q=0 refuses it.
    _, h0, _ = server.request("GET", "/ui/app.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in h0
    etag = h["ETag"]
    assert etag == hz["ETag"] and etag.startswith('"')
    status, h, body = server.request("GET", "/ui/app.js", headers={"If-None-Match": etag})
    assert status == 304 and body == b""
    status, _, body = server.request("GET", "/ui/", headers={"If-None-Match": '"stale"'})
    assert status == 200 and b'<script src="app.js"' in body
    assert "script-src 'self'" in h["Content-Security-Policy"]
    status, _, body = server.request("GET", "/ui/../api/v1/pods")
    assert status in (400, 404)
    status, _, body = server.request("GET", "/ui/secret.txt")
    assert status == 404 and json.loads(body)["kind"] == "Status"
    status, _, _ = server.request("POST", "/ui/app.js", body="x")
    assert status == 405


def test_a_viewer_sees_the_actions_disabled_and_a_direct_write_refused(make_server, workdir):
    from conftest import write
    tokens = write(workdir, "tokens.csv", "viewer-token,viv,uid-viv\n")
    server = make_server("--token-auth-file", tokens)
    server.json("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "viv-view"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "viv"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "view"}}, expect=201)
    apply(server, service("web"), service("web-canary"),
          rollout("v1", canary([{"setWeight": 10}, {"pause": {}}])))
    actions = ("return Array.from(document.querySelectorAll('button[data-action]'))"
               ".filter(x => !x.disabled).map(x => x.dataset.action)")
    with Browser() as b:
        # Without a token the loopback listener's browser is the unsecured admin.
        open_ui(b, server, "#/rollout/default/web")
        b.wait_text("#who", lambda t: t == "system:unsecured", "the admin's name")
        assert "pause" in b.wait(actions, "the admin's buttons")
        b.click("#signin")
        b.type("#token", "not-a-token\n")
        b.wait_text("#login-error", lambda t: "refused" in t, "a bad token refused")
        b.type("#token", "viewer-token\n")
        b.wait_text("#who", lambda t: t == "viv", "the viewer signed in")
        b.wait("return document.querySelector('button[data-action=pause]') && "
               "document.querySelector('button[data-action=pause]').title == "
               "'your identity may not do this'", "the viewer's buttons")
        assert b.js(actions) == []
        assert b.js("return sessionStorage.getItem('v6.token')") == "viewer-token"
        shot(b, "rollout-viewer")
        # What the button would do, sent by hand with the viewer's token: refused.
        status, msg = b.js_async(
            "var done = arguments[0];"
            "fetch('/apis/argoproj.io/v1alpha1/namespaces/default/rollouts/web', {"
            " method: 'PATCH', body: JSON.stringify({spec: {paused: true}}),"
            " headers: {'Content-Type': 'application/merge-patch+json',"
            "  Authorization: 'Bearer ' + sessionStorage.getItem('v6.token')}})"
            ".then(r => r.json().then(j => done([r.status, j.message])));")
        assert status == 403, (status, msg)
        assert msg == ('rollouts.argoproj.io "web" is forbidden: User "viv" cannot patch '
                       'resource "rollouts" in API group "argoproj.io" in the namespace '
                       '"default"'), msg
        _, ro = server.json("GET", "/apis/argoproj.io/v1alpha1/namespaces/default/rollouts/web")
        assert not ro["spec"].get("paused")
        b.click("#logout")
        b.wait_text("#who", lambda t: t == "system:unsecured", "signed out")
