"""PrometheusRule objects into the real Prometheus: the server writes each
one as a rule file into --prometheus-rules-dir and reloads the Prometheus at
--prometheus-url (Debian's 2.42, --web.enable-lifecycle, 1 s scrape and
evaluation); the rule shows up in /api/v1/rules, its alert fires on a real
condition (a Deployment that cannot become ready) and resolves when the
condition is fixed; a rule with a bad expr is refused at apply with
promtool's message at the rule's path; a deleted rule leaves Prometheus."""
import json
import os
import tempfile
import urllib.request

import pytest

from conftest import TIMEOUT_SCALE, free_port, wait_for
from prom import Prometheus

GROUP = "stuck-deployments"


def deployment(name, ready_path):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "containers": [{
                             "name": "app", "image": "v6/testapp",
                             "command": ["v6", "testapp", "--quiet"],
                             "env": [{"name": "POD_IP", "valueFrom": {
                                 "fieldRef": {"fieldPath": "status.podIP"}}}],
                             "ports": [{"name": "http", "containerPort": 8080}],
                             "readinessProbe": {"httpGet": {"path": ready_path,
                                                            "port": "http"},
                                                "periodSeconds": 1}}]}}}}


def rule(name, rules):
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"groups": [{"name": GROUP, "interval": "1s", "rules": rules}]}}


NOT_AVAILABLE = {
    "alert": "DeploymentNotAvailable",
    "expr": 'kube_deployment_status_replicas_available{namespace="default",'
            'deployment="stuck"} < kube_deployment_spec_replicas{namespace="default",'
            'deployment="stuck"}',
    "for": "2s",
    "labels": {"severity": "warning"},
    "annotations": {"summary": "{{ $labels.deployment }} has unavailable replicas"}}


def apply(server, *objs):
    return server.v6("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objs))


@pytest.fixture
def rules_env(make_server):
    with tempfile.TemporaryDirectory(prefix="v6-rules-") as d:
        rules_dir = os.path.join(d, "rules")
        port = free_port()
        s = make_server("--prometheus-rules-dir", rules_dir,
                        "--prometheus-url", "http://127.0.0.1:%d" % port)
        p = Prometheus(d, s.url + "/v6/sd/prometheus", port=port,
                       rule_files=rules_dir + "/*.yaml", lifecycle=True)
        try:
            wait_for(p.ready, 60 * TIMEOUT_SCALE, "prometheus to be ready")
            yield s, p, rules_dir
        finally:
            p.stop()


def loaded_groups(p):
    return {(os.path.basename(g["file"]), g["name"]): g for g in p.api("rules")["groups"]}


def alerts(p, name):
    return [a for a in p.api("alerts")["alerts"] if a["labels"]["alertname"] == name]


def annotation(s, name, *ns):
    r = s.v6("get", "prometheusrule", name, "-o", "json", *ns)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["metadata"].get("annotations", {}).get("v6.io/rules-loaded")


def test_rule_loads_fires_resolves_and_unloads(rules_env):
    s, p, rules_dir = rules_env
    assert apply(s, deployment("stuck", "/status/503")).returncode == 0
    r = apply(s, rule("stuck-alerts", [NOT_AVAILABLE]))
    assert r.returncode == 0, r.stdout + r.stderr
    path = os.path.join(rules_dir, "default_stuck-alerts.yaml")
    wait_for(lambda: os.path.exists(path), 30 * TIMEOUT_SCALE, "the rule file", interval=0.1)

    # reloaded and loaded: Prometheus lists the group from our file, and the
    # object says which Prometheus loaded it
    wait_for(lambda: ("default_stuck-alerts.yaml", GROUP) in loaded_groups(p),
             30 * TIMEOUT_SCALE, "the group in /api/v1/rules", interval=0.3)
    prom = "prometheus http://127.0.0.1:%d at " % p.port
    wait_for(lambda: (annotation(s, "stuck-alerts") or "").startswith(prom),
             30 * TIMEOUT_SCALE, "v6.io/rules-loaded naming the Prometheus", interval=0.3)

    # the deployment never becomes available: pending, then firing
    wait_for(lambda: any(a["state"] == "firing" for a in alerts(p, "DeploymentNotAvailable")),
             90 * TIMEOUT_SCALE, "DeploymentNotAvailable firing", interval=0.5)
    a = alerts(p, "DeploymentNotAvailable")[0]
    assert a["labels"]["severity"] == "warning"
    assert a["annotations"]["summary"] == "stuck has unavailable replicas"

    # fixed: a ready pod, and the alert goes away
    assert apply(s, deployment("stuck", "/readyz")).returncode == 0
    wait_for(lambda: not alerts(p, "DeploymentNotAvailable"), 90 * TIMEOUT_SCALE,
             "DeploymentNotAvailable resolved", interval=0.5)

    # deleted: the file goes and Prometheus unloads the group
    assert s.v6("delete", "prometheusrule", "stuck-alerts").returncode == 0
    wait_for(lambda: not os.path.exists(path), 30 * TIMEOUT_SCALE, "rule file removed",
             interval=0.2)
    wait_for(lambda: ("default_stuck-alerts.yaml", GROUP) not in loaded_groups(p),
             30 * TIMEOUT_SCALE, "the group gone from /api/v1/rules", interval=0.3)


def test_bad_expr_is_refused_with_promtool_message_and_path(rules_env):
    s, p, rules_dir = rules_env
    bad = rule("bad", [NOT_AVAILABLE, {"alert": "Broken", "expr": "rate(x[5m) > 1"}])
    r = apply(s, bad)
    assert r.returncode != 0
    assert "spec.groups[0].rules[1].expr" in r.stderr, r.stderr
    assert "promtool check rules" in r.stderr and "parse error" in r.stderr, r.stderr
    assert s.v6("get", "prometheusrule", "bad").returncode != 0
    assert not os.path.exists(os.path.join(rules_dir, "default_bad.yaml"))

    # the same through the API: 422 Invalid with the cause at the rule's path
    req = urllib.request.Request(
        s.url + "/apis/monitoring.coreos.com/v1/namespaces/default/prometheusrules",
        data=json.dumps(bad).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("a bad expr was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 422
        status = json.loads(e.read())
    causes = status["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.groups[0].rules[1].expr"], causes
    assert "could not parse expression" in causes[0]["message"]

    # a record with a for is refused by the CRD's rules before promtool runs
    r = apply(s, rule("bad2", [{"record": "x:y", "expr": "1", "for": "1m"}]))
    assert r.returncode != 0 and "spec.groups[0].rules[0].for" in r.stderr, r.stderr
    r = apply(s, rule("bad3", [{"alert": "A", "expr": "up", "for": "1 minute"}]))
    assert r.returncode != 0 and "spec.groups[0].rules[0].for" in r.stderr, r.stderr


def test_default_rule_pack_applies_and_loads(rules_env):
    s, p, rules_dir = rules_env
    pack = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "contrib",
                        "prometheus", "v6-rules.yaml")
    r = s.v6("apply", "-f", pack)
    assert r.returncode == 0, r.stdout + r.stderr
    want = {("v6-system_v6-rules.yaml", g) for g in
            ("v6-workloads", "v6-rollouts", "v6-service-slo", "v6-platform")}
    wait_for(lambda: want <= set(loaded_groups(p)), 30 * TIMEOUT_SCALE,
             "the default groups in /api/v1/rules", interval=0.3)
    groups = loaded_groups(p)
    assert all(ru["health"] != "err" for k in want for ru in groups[k]["rules"]), groups
    prom = "prometheus http://127.0.0.1:%d at " % p.port
    wait_for(lambda: (annotation(s, "v6-rules", "-n", "v6-system") or "").startswith(prom),
             30 * TIMEOUT_SCALE, "v6.io/rules-loaded on the pack", interval=0.3)


def test_selection_by_namespace_labels_and_stale_files(make_server, workdir):
    rules_dir = os.path.join(workdir, "rules")
    os.makedirs(rules_dir)
    ghost = os.path.join(rules_dir, "default_ghost.yaml")
    with open(ghost, "w") as f:
        f.write('{"groups": []}')
    s = make_server("--prometheus-rules-dir", rules_dir,
                    "--prometheus-rule-namespace-selector", "team=ops")
    # a file whose object is gone (deleted while the server was away) goes
    wait_for(lambda: not os.path.exists(ghost), 30 * TIMEOUT_SCALE, "stale file removed",
             interval=0.1)

    assert apply(s, rule("picky", [NOT_AVAILABLE])).returncode == 0
    wait_for(lambda: annotation(s, "picky") == "no: not selected: namespace labels do not "
             "match --prometheus-rule-namespace-selector", 30 * TIMEOUT_SCALE,
             "the not-selected annotation", interval=0.2)
    path = os.path.join(rules_dir, "default_picky.yaml")
    assert not os.path.exists(path)

    # the namespace gets the label: the rule is selected, written, and says
    # that no Prometheus is there to load it
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "default", "labels": {"team": "ops"}}}
    assert apply(s, ns).returncode == 0
    wait_for(lambda: os.path.exists(path), 30 * TIMEOUT_SCALE, "the rule file", interval=0.1)
    with open(path) as f:
        assert json.load(f)["groups"][0]["rules"][0]["alert"] == "DeploymentNotAvailable"
    wait_for(lambda: (annotation(s, "picky") or "").startswith(
        "no: written to %s; no --prometheus-url" % path), 30 * TIMEOUT_SCALE,
        "the no-Prometheus annotation", interval=0.2)

    # and loses it again: the file goes
    ns["metadata"]["labels"] = {"team": "dev"}
    assert apply(s, ns).returncode == 0
    wait_for(lambda: not os.path.exists(path), 30 * TIMEOUT_SCALE, "file removed",
             interval=0.1)


def test_prometheus_away_then_back_loads_the_rule(make_server, workdir):
    rules_dir = os.path.join(workdir, "rules")
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    s = make_server("--prometheus-rules-dir", rules_dir, "--prometheus-url", url)
    assert apply(s, rule("early", [NOT_AVAILABLE])).returncode == 0
    wait_for(lambda: (annotation(s, "early") or "").startswith(
        "no: reload of %s failed: " % url), 30 * TIMEOUT_SCALE,
        "the failed-reload annotation", interval=0.2)
    p = Prometheus(workdir, s.url + "/v6/sd/prometheus", port=port,
                   rule_files=rules_dir + "/*.yaml", lifecycle=True)
    try:
        wait_for(p.ready, 60 * TIMEOUT_SCALE, "prometheus to be ready")
        # the server retries every 5 s: the rule is loaded without a new write
        wait_for(lambda: (annotation(s, "early") or "").startswith("prometheus %s at " % url),
                 60 * TIMEOUT_SCALE, "v6.io/rules-loaded after Prometheus came", interval=0.3)
        assert ("default_early.yaml", GROUP) in loaded_groups(p)
    finally:
        p.stop()
