"""Alerts end to end with Debian's real Prometheus (1 s evaluation) and
Alertmanager 0.25: a PrometheusRule applied -> loaded -> fires -> Alertmanager
-> V6's webhook receiver, which adds the probable cause (the rollout that
changed the pod) -> a DingTalk-format robot that checks the signature ->
resolved; `v6 get alerts`, `v6 describe alert` and `v6 silence` show and
silence it through V6's API; with Alertmanager (and then the robot) down,
nothing is lost: the alert arrives once they are back."""
import json
import os
import tempfile
import time

import pytest

from am import Alertmanager, Capture, receiver_secret
from conftest import TIMEOUT_SCALE, free_port, wait_for
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


@pytest.fixture
def stack(make_server):
    """V6 + Prometheus (rules from V6, alerts to Alertmanager) + Alertmanager
    (every alert to V6's receiver "robot") + the capture robot."""
    with tempfile.TemporaryDirectory(prefix="v6-am-") as d:
        rules_dir = os.path.join(d, "rules")
        pport, aport = free_port(), free_port()
        s = make_server("--prometheus-rules-dir", rules_dir,
                        "--prometheus-url", "http://127.0.0.1:%d" % pport,
                        "--alertmanager-url", "http://127.0.0.1:%d" % aport)
        cap = Capture()
        am = Alertmanager(d, s.url + RECEIVER, port=aport)
        p = Prometheus(d, s.url + "/v6/sd/prometheus", port=pport,
                       rule_files=rules_dir + "/*.yaml", lifecycle=True,
                       alertmanager="127.0.0.1:%d" % aport)
        try:
            wait_for(p.ready, 60, "prometheus to be ready")
            wait_for(am.ready, 60, "alertmanager to be ready")
            apply(s, receiver_secret("robot", "dingtalk", cap.url("dingtalk"), cap.secret))
            yield s, p, am, cap
        finally:
            p.stop()
            am.stop()
            cap.close()


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
    time.sleep(3)
    assert not cap.got
    cap.down = False
    texts = wait_for(lambda: firing_with(cap, "StuckPodNotReady"), 120,
                     "the alert at the robot once everything is back", interval=0.5)
    assert "Probable cause: deployment/stuck" in texts[0], texts[0]
    assert not cap.refused, cap.refused
