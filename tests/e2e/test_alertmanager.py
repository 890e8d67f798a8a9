"""Alerts end to end with Debian's real Prometheus (1 s evaluation) and
Alertmanager 0.25: a PrometheusRule applied -> loaded -> fires -> Alertmanager
-> V6's webhook receiver, which adds the probable cause (the rollout that
changed the pod) -> a DingTalk-format robot that checks the signature ->
resolved; `v6 get alerts`, `v6 describe alert` and `v6 silence` show and
silence it through V6's API; with Alertmanager (and then the robot) down,
and V6 killed while it cannot deliver, nothing is lost: the alert arrives
once, when they are back; the receiver's state survives kill -9. The noise
scenario (a bad canary, a slow memory leak caught by the default pack's
forecast before its OOM kill, a flapping probe, an unrelated crash loop)
counts notifications with and without V6's receiver."""
import calendar
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request

import pytest

from am import Alertmanager, Capture, receiver_secret
from conftest import free_port, wait_for
from prom import Prometheus

RECEIVER = "/apis/alerts.v6.dev/v1alpha1/namespaces/default/receivers/robot"


def container(version, ready="/readyz", extra=()):
    return {"name": "web", "image": "v6/testapp",
            "command": ["v6", "testapp", "--quiet", "--version-string", version] + list(extra),
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": ready, "port": "http"},
                               "periodSeconds": 1}}


def rollout(version, ready="/readyz"):
    strat = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}],
                        "abortScaleDownDelaySeconds": 0}}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": strat,
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"terminationGracePeriodSeconds": 2,
                                           "containers": [container(version, ready)]}}}}


def deployment(name, ready):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container("v1", ready)]}}}}


def rule(name, alert, expr, for_="2s"):
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"groups": [{"name": name, "interval": "1s", "rules": [{
                "alert": alert, "expr": expr, "for": for_,
                "labels": {"severity": "warning"},
                "annotations": {"summary": "{{ $labels.pod }} is not ready"}}]}]}}


POD_NOT_READY = ('kube_pod_status_ready{namespace="default",condition="false",'
                 'pod=~"%s-.*"} == 1')


def apply(s, *objs):
    r = s.v6("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objs))
    assert r.returncode == 0, r.stdout + r.stderr
    return r


class Stack:
    """V6 + Prometheus (rules from V6, alerts to Alertmanager) + Alertmanager
    (every alert to V6's receiver "robot", and to the webhooks of `also`)
    + the capture robot; V6 forwards to the robot in DingTalk's format."""

    def __init__(self, make_server, d, flags=(), also=(), interval="1s"):
        rules_dir = os.path.join(d, "rules")
        pport, aport = free_port(), free_port()
        self.s = make_server("--prometheus-rules-dir", rules_dir,
                             "--prometheus-url", "http://127.0.0.1:%d" % pport,
                             "--alertmanager-url", "http://127.0.0.1:%d" % aport, *flags)
        self.cap = Capture()
        self.am = Alertmanager(d, self.s.url + RECEIVER, port=aport,
                               also=[self.cap.url(k) for k in also])
        self.p = Prometheus(d, self.s.url + "/v6/sd/prometheus", port=pport,
                            rule_files=rules_dir + "/*.yaml", lifecycle=True,
                            alertmanager="127.0.0.1:%d" % aport, interval=interval)
        try:
            wait_for(self.p.ready, 60, "prometheus to be ready")
            wait_for(self.am.ready, 60, "alertmanager to be ready")
            apply(self.s, receiver_secret("robot", "dingtalk", self.cap.url("dingtalk"),
                                          self.cap.secret))
        except Exception:
            self.close()
            raise

    def close(self):
        self.p.stop()
        self.am.stop()
        self.cap.close()


@pytest.fixture
def stack(make_server):
    with tempfile.TemporaryDirectory(prefix="v6-am-") as d:
        st = Stack(make_server, d)
        try:
            yield st.s, st.p, st.am, st.cap
        finally:
            st.close()


def firing_with(cap, *words):
    return [t for t in cap.texts() if "[FIRING" in t and all(w in t for w in words)]


def test_rule_fires_through_alertmanager_with_the_rollout_as_probable_cause(stack):
    s, p, am, cap = stack
    apply(s, rollout("v1"))
    wait_for(lambda: s.v6("get", "rollout", "web", "-o", "json").stdout.count(
        '"phase": "Healthy"'), 60, "rollout v1 healthy", interval=0.3)
    apply(s, rule("web-ready", "WebPodNotReady", POD_NOT_READY % "web"))

    # the bad revision: its canary pod never becomes ready
    apply(s, rollout("v2", ready="/status/503"))
    t0 = time.time()
    texts = wait_for(lambda: firing_with(cap, "WebPodNotReady"), 90,
                     "the firing notification at the robot", interval=0.3)
    text = texts[0]
    # the robot checked DingTalk's signature on every request
    assert not cap.refused, cap.refused
    assert "Probable cause: rollout/web" in text, text
    assert "v6 rollout history rollout/web -n default" in text, text
    assert "revision 2" in text, text
    print("alert at the robot %.1f s after the bad revision" % (time.time() - t0))

    # what V6's CLI shows (through V6's API, not Alertmanager's)
    r = s.v6("get", "alerts")
    assert r.returncode == 0, r.stderr
    head, row = r.stdout.splitlines()[0].split(), [
        line for line in r.stdout.splitlines() if "WebPodNotReady" in line][0].split()
    assert head == ["ALERTNAME", "SEVERITY", "NAMESPACE", "TARGET", "STATE", "SINCE"]
    assert row[:3] == ["WebPodNotReady", "warning", "default"], row
    assert row[3].startswith("pod/web-") and row[4] == "firing", row
    r = s.v6("describe", "alert", "WebPodNotReady")
    assert r.returncode == 0, r.stderr
    assert "Probable Cause:" in r.stdout and "rollout/web" in r.stdout, r.stdout
    assert "see: v6 rollout history rollout/web -n default" in r.stdout, r.stdout
    assert "forwarded to receiver default/robot (dingtalk)" in r.stdout, r.stdout

    # a silence through V6: the alert shows silenced, then the silence expires
    r = s.v6("silence", "create", "--matcher", "alertname=WebPodNotReady",
             "--duration", "10m", "--comment", "fix on its way")
    assert r.returncode == 0, r.stderr
    sid = r.stdout.split()[0].rsplit("/", 1)[1]
    wait_for(lambda: "silenced" in s.v6("get", "alerts").stdout, 30, "alert silenced",
             interval=0.3)
    ls = s.v6("silence", "ls").stdout
    assert sid in ls and 'alertname="WebPodNotReady"' in ls and "fix on its way" in ls, ls
    assert sid in s.v6("describe", "alert", "WebPodNotReady").stdout
    assert s.v6("silence", "expire", sid).returncode == 0
    assert sid not in s.v6("silence", "ls").stdout
    wait_for(lambda: "firing" in s.v6("get", "alerts").stdout, 30, "alert firing again",
             interval=0.3)

    # resolved: back to v1 (the stable revision), the canary pod goes, the
    # robot hears it
    apply(s, rollout("v1"))
    wait_for(lambda: [t for t in cap.texts() if "[RESOLVED] WebPodNotReady" in t], 90,
             "the resolved notification", interval=0.5)
    assert not cap.refused, cap.refused


def test_nothing_is_lost_while_alertmanager_or_the_receiver_is_down(stack):
    s, p, am, cap = stack
    am.stop()
    cap.down = True
    apply(s, deployment("stuck", "/status/503"),
          rule("stuck-ready", "StuckPodNotReady", POD_NOT_READY % "stuck"))
    wait_for(lambda: any(a["state"] == "firing" for a in p.api("alerts")["alerts"]
                         if a["labels"]["alertname"] == "StuckPodNotReady"),
             90, "the alert firing in Prometheus", interval=0.5)
    time.sleep(3)       # Prometheus tries to send to the Alertmanager that is away
    assert not cap.got

    # Alertmanager back: Prometheus re-sends, Alertmanager sends to V6, V6's
    # forward fails (the robot is down), so V6 answers 502 and Alertmanager retries
    am.start()
    wait_for(am.ready, 60, "alertmanager back")
    wait_for(lambda: any(a["labels"]["alertname"] == "StuckPodNotReady"
                         for a in am.alerts()), 30, "the alert in Alertmanager",
             interval=0.5)
    wait_for(lambda: "default/robot (dingtalk): HTTP 503" in open(s.log_path).read(), 30,
             "V6 failing to deliver (the robot is down)", interval=0.5)
    assert not cap.got
    # V6 killed with the notification undelivered, the robot back while it
    # restarts: the alert arrives once, not lost, not twice
    s.restart()
    cap.down = False
    texts = wait_for(lambda: firing_with(cap, "StuckPodNotReady"), 120,
                     "the alert at the robot once everything is back", interval=0.5)
    assert "Probable cause: deployment/stuck" in texts[0], texts[0]
    time.sleep(5)       # Alertmanager flushes the group every second
    assert len(firing_with(cap, "StuckPodNotReady")) == 1, cap.texts()
    assert not cap.refused, cap.refused


# ---- noise control: notifications per incident ------------------------------

SUCCESS_RATE = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
    "metadata": {"name": "success-rate", "namespace": "default"},
    "spec": {"args": [{"name": "canary-hash"}],
             "metrics": [{"name": "success-rate", "interval": "2s", "count": 6,
                          "initialDelay": "1s", "failureLimit": 2,
                          "successCondition": "result >= 0.95",
                          "provider": {"plugin": {"v6.dev/traffic": {
                              "revision": "{{args.canary-hash}}",
                              "metric": "successRate", "window": "2s"}}}}]}}


def analysed_rollout(version, extra=()):
    steps = [{"setWeight": 50},
             {"analysis": {"templates": [{"templateName": "success-rate"}],
                           "args": [{"name": "canary-hash", "valueFrom": {
                               "podTemplateHashValue": "Latest"}}]}},
             {"setWeight": 100}]
    ro = rollout(version)
    ro["spec"]["replicas"] = 2
    ro["spec"]["strategy"] = {"canary": {"canaryService": "web-canary", "stableService": "web",
                                         "steps": steps, "abortScaleDownDelaySeconds": 0}}
    ro["spec"]["template"]["spec"]["containers"] = [container(version, extra=extra)]
    return ro


def web_service(name):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def flappy():
    """Ready for 4 s, not ready for 4 s, over and over (an exec probe)."""
    d = deployment("flappy", "/readyz")
    c = d["spec"]["template"]["spec"]["containers"][0]
    c["readinessProbe"] = {"exec": {"command": [
        "sh", "-c", "[ $(( $(date +%s) / 4 % 2 )) -eq 0 ]"]}, "periodSeconds": 1}
    return d


def noisy():
    d = deployment("noisy", "/readyz")
    d["spec"]["template"]["spec"]["containers"][0]["command"] += [
        "--crash-after", "1s", "--exit-code", "3"]
    return d


# A slow memory leak: 4 MiB more every second against a 160 MiB limit, so
# the kernel OOM-kills it about 40 s after it starts.
LEAK = """
import time
keep = []
while True:
    keep.append(b"x" * (4 << 20))
    time.sleep(1)
"""
PACK = os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "prometheus",
                    "v6-rules.yaml")


def leaky():
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "leaky", "namespace": "default"},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "leak", "image": "python",
                                     "command": [sys.executable, "-c", LEAK],
                                     "resources": {"limits": {"memory": "160Mi"}}}]}}


def pack_forecast(s):
    """The default pack's memory forecast as shipped, read through V6's own
    parser, on the test's time scale: growth over the last 10 s instead of
    30 min, pending 2 s instead of 10 min."""
    r = s.v6("apply", "--dry-run=client", "-o", "json", "-f", PACK)
    assert r.returncode == 0, r.stderr
    pack = [o for o in json.loads(r.stdout)["items"] if o["kind"] == "PrometheusRule"][0]
    rule = [x for g in pack["spec"]["groups"] for x in g["rules"]
            if x.get("alert") == "V6ContainerMemoryLimitPredicted"][0]
    assert "[30m]" in rule["expr"] and rule["for"] == "10m", rule
    rule["expr"] = rule["expr"].replace("[30m]", "[10s]")
    rule["for"] = "2s"
    ann = rule["annotations"]
    ann["description"] = ann["description"].replace("30 minutes", "10 seconds")
    return rule


NOISE_RULES = {
    "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
    "metadata": {"name": "incidents", "namespace": "default"},
    "spec": {"groups": [{"name": "incidents", "interval": "1s", "rules": [
        {"alert": "WebErrors", "for": "1s", "labels": {"severity": "critical"},
         "expr": 'sum by (service) (rate(v6_proxy_requests_total{service=~"default/web.*",'
                 'code="5xx"}[3s])) > 0',
         "annotations": {"summary": "web answers errors"}},
        # the rule pack's name: the rollout's own state is the signal
        {"alert": "V6RolloutDegraded", "for": "1s", "labels": {"severity": "warning"},
         "expr": 'rollout_info{namespace="default",name="web",phase="Degraded"} == 1',
         "annotations": {"summary": "rollout web is degraded"}},
        {"alert": "FlappyNotReady", "labels": {"severity": "warning"},
         "expr": POD_NOT_READY % "flappy", "annotations": {"summary": "flappy not ready"}},
        {"alert": "NoisyRestarts", "labels": {"severity": "warning"},
         "expr": 'increase(kube_pod_container_status_restarts_total{namespace="default",'
                 'pod=~"noisy-.*"}[1m]) > 0',
         "annotations": {"summary": "noisy restarts"}},
    ]}]}}

INCIDENTS = ("WebErrors", "V6RolloutDegraded", "FlappyNotReady", "NoisyRestarts",
             "V6ContainerMemoryLimitPredicted")


class Traffic:
    """GETs to ip:80 from one thread until stopped."""

    def __init__(self, ip):
        self.ip, self.stop_ = ip, False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        deadline = time.time() + 300
        while not self.stop_ and time.time() < deadline:
            try:
                with urllib.request.urlopen("http://%s/" % self.ip, timeout=2) as r:
                    r.read()
            except Exception:
                pass
            time.sleep(0.03)

    def stop(self):
        self.stop_ = True
        self.thread.join(10)


def oom_killed(s, name):
    """The time (epoch s) the pod's container was OOM-killed, or None."""
    _, pod = s.json("GET", "/api/v1/namespaces/default/pods/" + name, expect=200)
    for c in pod.get("status", {}).get("containerStatuses", []):
        t = c.get("state", {}).get("terminated") or c.get("lastState", {}).get("terminated")
        if t and t.get("reason") == "OOMKilled":
            return calendar.timegm(time.strptime(t["finishedAt"], "%Y-%m-%dT%H:%M:%SZ"))
    return None


def run_incidents(s, p, am, cap, seconds=40):
    """A bad canary aborted by its analysis under traffic, a slow memory
    leak until it is OOM-killed, a flapping readiness probe and an
    unrelated crash-looping pod, for `seconds` after the abort; returns the
    time of the OOM kill."""
    rules = json.loads(json.dumps(NOISE_RULES))
    rules["spec"]["groups"][0]["rules"].append(pack_forecast(s))
    apply(s, web_service("web"), web_service("web-canary"), SUCCESS_RATE,
          analysed_rollout("v1"))
    wait_for(lambda: s.v6("get", "rollout", "web", "-o", "json").stdout.count(
        '"phase": "Healthy"'), 60, "rollout v1 healthy", interval=0.3)
    _, svc = s.json("GET", "/api/v1/namespaces/default/services/web", expect=200)
    traffic = Traffic(svc["spec"]["clusterIP"])
    try:
        apply(s, rules, flappy(), noisy(), leaky())
        time.sleep(4)
        apply(s, analysed_rollout("v2", extra=["--error-rate", "1"]))
        wait_for(lambda: s.v6("get", "rollout", "web", "-o", "json").stdout.count(
            '"phase": "Degraded"'), 60, "rollout v2 aborted by its analysis", interval=0.3)
        time.sleep(seconds)
        return wait_for(lambda: oom_killed(s, "leaky"), 90, "the leak OOM-killed",
                        interval=0.5)
    finally:
        traffic.stop()


def notifications(cap, kind, alertname):
    """(time, status, text) of each notification of kind about alertname."""
    out = []
    with cap.lock:
        for t, k, b in cap.got:
            if k != kind:
                continue
            if kind == "webhook":
                if b.get("commonLabels", {}).get("alertname") == alertname:
                    out.append((t, b["status"], json.dumps(b)))
            elif ("] %s\n" % alertname) in b["markdown"]["text"]:
                text = b["markdown"]["text"]
                out.append((t, "firing" if "[FIRING" in text else "resolved", text))
    return out


def incident_counts(cap):
    """{alertname: (notifications via V6, from Alertmanager alone)} for each
    incident, and the notifications themselves (notifications())."""
    got = {a: (notifications(cap, "dingtalk", a), notifications(cap, "webhook", a))
           for a in INCIDENTS}
    return {a: (len(v6), len(alone)) for a, (v6, alone) in got.items()}, got


def seconds_of(human):
    """Prometheus' humanizeDuration ("31.46s", "1m 5s", "2h 0m 0s") in seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
    total = 0.0
    for part in human.split():
        num = part.rstrip("dhms")
        total += float(num) * units[part[len(num):]]
    return total


def test_noise_control_cuts_notifications_without_missing_a_problem(make_server):
    with tempfile.TemporaryDirectory(prefix="v6-am-") as d:
        # every notification goes to V6 (-> the robot) and, as the baseline
        # without V6, straight to a plain webhook
        st = Stack(make_server, d, flags=["--traffic-period", "500ms",
                                          "--alert-flap-threshold", "2"], also=["webhook"])
        try:
            oom_at = run_incidents(st.s, st.p, st.am, st.cap)
        finally:
            st.close()
    cap = st.cap
    counts, got = incident_counts(cap)
    print("notifications per incident (with V6's enrichment and noise control, "
          "Alertmanager alone):", counts)
    with_v6 = sum(c[0] for c in counts.values())
    alone = sum(c[1] for c in counts.values())
    print("total %d with noise control, %d without (%.0f %% fewer)" % (
        with_v6, alone, 100.0 * (alone - with_v6) / max(alone, 1)))
    assert not cap.refused, cap.refused

    def firing(alert, i):
        return [n for n in got[alert][i] if n[1] == "firing"]

    # no true problem missed, each exactly as expected:
    # the slow leak: one forecast, before the OOM kill, saying when
    leak = firing("V6ContainerMemoryLimitPredicted", 0)
    assert len(leak) == 1, got["V6ContainerMemoryLimitPredicted"]
    t, _, text = leak[0]
    assert "pod default/leaky will reach its memory limit in " in text, text
    predicted = seconds_of(text.split("memory limit in ", 1)[1].split(" at the growth")[0])
    print("leak forecast at the robot %.1f s before the OOM kill, predicting %.0f s" % (
        oom_at - t, predicted))
    assert t < oom_at, (t, oom_at)
    assert 1 <= predicted <= 300, text
    assert len(firing("V6ContainerMemoryLimitPredicted", 1)) == 1
    # the bad rollout: its abort once; its canary's error alert held back
    # (the abort is the signal) while Alertmanager alone sends it
    assert len(firing("V6RolloutDegraded", 0)) == 1, got["V6RolloutDegraded"]
    assert counts["WebErrors"][0] == 0 and counts["WebErrors"][1] >= 1, counts
    # the flapping probe: fired, then fired again with the flap count, and
    # folded from then on (Alertmanager alone: every transition)
    flaps = firing("FlappyNotReady", 0)
    assert len(flaps) == 2, got["FlappyNotReady"][0]
    assert "Flapping: fired 2 times in the last 10 min" in flaps[1][2], flaps[1][2]
    assert counts["FlappyNotReady"][1] >= 6, counts
    # the unrelated crash loop is a problem of its own: delivered
    assert len(firing("NoisyRestarts", 0)) >= 1, counts
    assert with_v6 < alone


# ---- the receivers V6 adds, driven with Alertmanager's webhook JSON ----------

def notification(status="firing", name="DiskFull", starts="2026-12-07T09:00:00Z",
                 ends="0001-01-01T00:00:00Z"):
    return {"version": "4", "status": status, "receiver": "v6", "groupKey": "{}:{}",
            "groupLabels": {"alertname": name}, "commonLabels": {"alertname": name},
            "commonAnnotations": {}, "externalURL": "http://am", "truncatedAlerts": 0,
            "alerts": [{"status": status, "fingerprint": "0123456789abcdef",
                        "labels": {"alertname": name, "severity": "page",
                                   "namespace": "default", "deployment": "db"},
                        "annotations": {"summary": "disk is full"},
                        "startsAt": starts, "endsAt": ends,
                        "generatorURL": "http://prom"}]}


def test_receiver_state_survives_kill_9_nothing_lost_nothing_sent_twice(make_server):
    """What the webhook receiver decided and delivered is on disk before
    Alertmanager hears back: a notification that failed before a kill -9 is
    delivered by Alertmanager's retry after it, once; a retry of one already
    delivered (its 200 lost with the server), or the group's next flush with
    the same alerts, is not sent again; and a
    flapping alert stays folded across restarts."""
    s = make_server("--alert-flap-threshold", "2")
    cap = Capture()
    base = "/apis/alerts.v6.dev/v1alpha1/namespaces/default/receivers/ding"
    try:
        apply(s, receiver_secret("ding", "dingtalk", cap.url("dingtalk"), cap.secret))
        first = notification(starts="2026-12-07T09:00:00Z")
        cap.down = True
        st, body = s.json("POST", base, first)
        assert st == 502, (st, body)
        s.restart()                     # kill -9 with the delivery pending
        cap.down = False
        st, body = s.json("POST", base, first)     # Alertmanager's retry
        assert st == 200 and body["forwarded"] == 1, (st, body)
        s.restart()
        st, body = s.json("POST", base, first)     # a retry whose 200 was lost
        assert st == 200 and body == {"forwarded": 0, "duplicate": True}, (st, body)
        # Alertmanager's next flush of the group, its 200 missed: the same
        # alerts with endsAt moved on are the same news, not sent again
        s.restart()
        st, body = s.json("POST", base, notification(starts="2026-12-07T09:00:00Z",
                                                     ends="2026-12-07T09:30:00Z"))
        assert st == 200 and body == {"forwarded": 0, "duplicate": True}, (st, body)
        assert cap.count("dingtalk", "DiskFull") == 1, cap.got

        # flapping: resolved, fired again (the second firing: the flap count
        # goes out), then folded, with a kill -9 between every notification
        seq = [notification("resolved", starts="2026-12-07T09:00:00Z",
                            ends="2026-12-07T09:01:00Z"),
               notification(starts="2026-12-07T09:02:00Z"),
               notification("resolved", starts="2026-12-07T09:02:00Z",
                            ends="2026-12-07T09:03:00Z"),
               notification(starts="2026-12-07T09:04:00Z")]
        answers = []
        for n in seq:
            s.restart()
            st, body = s.json("POST", base, n)
            assert st == 200, (st, body)
            answers.append(body["forwarded"])
        assert answers == [1, 1, 0, 0], answers
        texts = [t for t in cap.texts() if "DiskFull" in t]
        assert len(texts) == 3, texts
        assert "Flapping: fired 2 times in the last 10 min" in texts[2], texts[2]
        assert not cap.refused, cap.refused
        with open(os.path.join(s.data_dir, "alerts", "receiver-state.json")) as f:
            state = json.load(f)
        rec = state["seen"]["0123456789abcdef"]
        assert rec["folded"] == 2 and rec["flapCount"] == 3, rec
    finally:
        cap.close()


def test_wecom_webhook_and_dingtalk_receivers_sign_and_fail_loudly(server):
    cap = Capture()
    try:
        apply(server, receiver_secret("wecom", "wecom", cap.url("wecom")),
              receiver_secret("hook", "webhook", cap.url("webhook")),
              receiver_secret("ding-bad", "dingtalk", cap.url("dingtalk"), "SECwrong"),
              receiver_secret("ding", "dingtalk", cap.url("dingtalk"), cap.secret))
        base = "/apis/alerts.v6.dev/v1alpha1/namespaces/default/receivers/"
        for name in ("wecom", "hook", "ding"):
            st, body = server.json("POST", base + name, notification())
            assert st == 200 and body["forwarded"] == 1, (name, st, body)
        kinds = [k for _, k, _ in cap.got]
        assert kinds == ["wecom", "webhook", "dingtalk"], kinds
        wecom = cap.got[0][2]["markdown"]["content"]
        assert "[FIRING:1] DiskFull" in wecom and "disk is full" in wecom, wecom
        hook = cap.got[1][2]
        assert hook["alerts"][0]["labels"]["deployment"] == "db", hook
        assert not cap.refused, cap.refused

        # a wrong DingTalk secret: the robot refuses the signature, V6 says
        # so with 502 (Alertmanager retries) and names only the receiver
        st, body = server.json("POST", base + "ding-bad", notification())
        assert st == 502 and "default/ding-bad (dingtalk)" in body["message"], (st, body)
        assert cap.refused and cap.refused[-1][2] == "sign not match", cap.refused
        # a receiver that is not there, or not a receiver
        st, body = server.json("POST", base + "nope", notification())
        assert st == 404, (st, body)
        # credentials never reach the log
        with open(server.log_path, errors="replace") as f:
            log = f.read()
        assert "receiver default/ding-bad (dingtalk)" in log
        for secret in (cap.secret, "SECwrong", cap.key, "access_token=" + cap.token):
            assert secret not in log, secret
    finally:
        cap.close()


def am_silences(am):
    with urllib.request.urlopen(am.url + "/api/v2/silences", timeout=5) as r:
        return sorted((x["id"], x["status"]["state"], x["endsAt"]) for x in json.load(r))


def test_silence_dry_runs_check_and_write_nothing_to_alertmanager(make_server):
    with tempfile.TemporaryDirectory(prefix="v6-am-") as d:
        aport = free_port()
        s = make_server("--alertmanager-url", "http://127.0.0.1:%d" % aport)
        am = Alertmanager(d, s.url + "/apis/alerts.v6.dev/v1alpha1/webhook", port=aport)
        try:
            wait_for(am.ready, 60, "alertmanager to be ready")
            create = ("silence", "create", "-m", "alertname=DiskFull", "--duration", "2h",
                      "--comment", "disk swap")
            for flag, said in (("--dry-run=server", "(server dry run)"),
                               ("--dry-run", "(dry run)")):
                r = s.v6(*create, flag)
                assert r.returncode == 0, r.stderr
                assert r.stdout == "silence.alerts.v6.dev created %s\n" % said, r.stdout
            assert am_silences(am) == []
            # the server's dry run checks what the real create checks
            st, o = s.json("POST", "/apis/alerts.v6.dev/v1alpha1/silences?dryRun=All",
                           {"matchers": [{"name": "a", "value": "b"}], "comment": "c",
                            "duration": "-5m"})
            assert st == 422 and "duration" in o["message"], o
            st, o = s.json("POST", "/apis/alerts.v6.dev/v1alpha1/silences?dryRun=All",
                           {"matchers": [{"name": "a", "value": "b"}], "comment": "c"})
            assert st == 201 and o["matchers"][0]["name"] == "a" and \
                o["metadata"]["name"] == "", o
            s.json("POST", "/apis/alerts.v6.dev/v1alpha1/silences?dryRun=all",
                   {"matchers": [{"name": "a", "value": "b"}], "comment": "c"}, expect=422)
            assert am_silences(am) == []

            r = s.v6(*create)
            assert r.returncode == 0, r.stderr
            sid = r.stdout.split()[0].rsplit("/", 1)[1]
            before = am_silences(am)
            assert [x[:2] for x in before] == [(sid, "active")], before
            for flag, said in (("--dry-run=server", "(server dry run)"),
                               ("--dry-run", "(dry run)")):
                r = s.v6("silence", "expire", sid, flag)
                assert r.returncode == 0, r.stderr
                assert r.stdout == "silence.alerts.v6.dev/%s expired %s\n" % (sid, said)
            assert am_silences(am) == before
            # an unknown silence is an error in the server's dry run too
            r = s.v6("silence", "expire", "00000000-0000-0000-0000-000000000000",
                     "--dry-run=server")
            assert r.returncode != 0 and "not found" in r.stderr, (r.stdout, r.stderr)
            assert s.v6("silence", "expire", sid).returncode == 0
            r = s.v6("silence", "expire", sid, "--dry-run=server")
            assert r.returncode != 0 and "already expired" in r.stderr, r.stderr
        finally:
            am.stop()
