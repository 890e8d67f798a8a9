"""`v6 addon enable observability` end to end (issue 11 part 5): Debian's
Prometheus and Alertmanager start as V6 workloads in v6-system, Prometheus
scrapes every target V6's discovery lists (up == 1), loads V6's default rule
pack and a user's PrometheusRule (V6 finds the addon's Prometheus without
--prometheus-url and reloads it), knows its Alertmanager; enable again
changes nothing; disable removes the workloads and keeps the data volumes
unless --purge."""
import json
import urllib.request

from conftest import wait_for


def prom(ip, path):
    with urllib.request.urlopen("http://%s:9090%s" % (ip, path), timeout=5) as r:
        return json.load(r)


def annotation(server, ns, name):
    _, o = server.json("GET", "/apis/monitoring.coreos.com/v1/namespaces/%s/prometheusrules/%s"
                       % (ns, name))
    return (o.get("metadata", {}).get("annotations") or {}).get("v6.io/rules-loaded", "")


def test_observability_addon_runs_the_stack_and_loads_the_rules(tls_server):
    server = tls_server  # as a user runs it: HTTPS, Prometheus scrapes V6 with its CA
    p = server.v6("addon", "enable", "observability")
    assert p.returncode == 0, (p.stdout, p.stderr)
    for line in ("namespace/v6-system configured", "deployment/prometheus configured",
                 "deployment/alertmanager configured", "prometheusrule/v6-rules configured",
                 "persistentvolumeclaim/prometheus configured"):
        assert line in p.stdout, p.stdout

    def ready():
        out = server.v6("addon", "ls").stdout
        return out if "observability    yes        2/2" in out else None
    wait_for(ready, 90, "both addon workloads ready")
    _, svc = server.json("GET", "/api/v1/namespaces/v6-system/services/prometheus", expect=200)
    ip = svc["spec"]["clusterIP"]

    def all_up():
        res = prom(ip, "/api/v1/query?query=up")["data"]["result"]
        jobs = {r["metric"]["job"]: r["value"][1] for r in res}
        return jobs if {"v6-server", "v6-node", "v6-cadvisor", "v6-proxy"} <= set(jobs) and \
            all(v == "1" for v in jobs.values()) else None
    wait_for(all_up, 90, "Prometheus scraping every V6 target")
    # Prometheus's notifier learns its (static) Alertmanager through its
    # discovery manager, which publishes on its own throttled cycle, after
    # the scrape targets may already be up: wait for it, do not sample once
    def one_am():
        ams = prom(ip, "/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
        return ams if len(ams) == 1 and ":9093/" in ams[0]["url"] else None
    wait_for(one_am, 60, "Prometheus knowing the addon's Alertmanager")

    # the default pack and a user's rule are loaded by the addon's Prometheus
    wait_for(lambda: annotation(server, "v6-system", "v6-rules").startswith(
        "prometheus http://%s:9090" % ip), 60, "the rule pack loaded")
    server.json("POST", "/apis/monitoring.coreos.com/v1/namespaces/default/prometheusrules",
                {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
                 "metadata": {"name": "mine"},
                 "spec": {"groups": [{"name": "mine", "rules": [
                     {"alert": "AlwaysFiring", "expr": "vector(1)",
                      "labels": {"severity": "none"}}]}]}}, expect=201)
    wait_for(lambda: annotation(server, "default", "mine").startswith("prometheus "), 60,
             "the user's rule loaded")
    groups = {g["name"] for g in prom(ip, "/api/v1/rules")["data"]["groups"]}
    assert "mine" in groups and len(groups) >= 4, groups

    # V6 finds the addon's Alertmanager by itself (no --alertmanager-url):
    # the user's always-firing rule shows in `v6 get alerts`
    wait_for(lambda: "AlwaysFiring" in server.v6("get", "alerts").stdout, 90,
             "AlwaysFiring in v6 get alerts (through the addon's Alertmanager)", interval=1)

    # enabling again changes nothing that runs
    _, before = server.json("GET", "/api/v1/namespaces/v6-system/pods", expect=200)
    p = server.v6("addon", "enable", "observability")
    assert p.returncode == 0, p.stderr
    _, after = server.json("GET", "/api/v1/namespaces/v6-system/pods", expect=200)
    assert sorted(x["metadata"]["uid"] for x in before["items"]) == \
        sorted(x["metadata"]["uid"] for x in after["items"])

    # a dry run of disable --purge deletes nothing
    _, cms = server.json("GET", "/api/v1/namespaces/v6-system/configmaps", expect=200)
    p = server.v6("addon", "disable", "observability", "--purge", "--dry-run=server")
    assert p.returncode == 0, p.stderr
    for line in ("deployments/prometheus deleted (server dry run)",
                 "persistentvolumeclaims/prometheus deleted (server dry run)",
                 "addon observability disabled (server dry run): nothing was changed"):
        assert line in p.stdout, p.stdout
    assert "data volumes are kept" not in p.stdout, p.stdout
    _, after2 = server.json("GET", "/api/v1/namespaces/v6-system/pods", expect=200)
    assert sorted(x["metadata"]["uid"] for x in after["items"]) == \
        sorted(x["metadata"]["uid"] for x in after2["items"])
    _, cms2 = server.json("GET", "/api/v1/namespaces/v6-system/configmaps", expect=200)
    assert cms2 == cms
    _, deps = server.json("GET", "/apis/apps/v1/namespaces/v6-system/deployments", expect=200)
    assert not any(d["metadata"].get("deletionTimestamp") for d in deps["items"]), deps
    assert sorted(d["metadata"]["name"] for d in deps["items"]) == ["alertmanager", "prometheus"]

    # disable: workloads go, data volumes stay; --purge takes them too
    p = server.v6("addon", "disable", "observability")
    assert p.returncode == 0 and "deployments/prometheus deleted" in p.stdout, p.stdout
    assert "data volumes are kept" in p.stdout, p.stdout
    wait_for(lambda: not server.json("GET", "/api/v1/namespaces/v6-system/pods")[1]["items"],
             60, "the addon's pods gone")
    _, pvcs = server.json("GET", "/api/v1/namespaces/v6-system/persistentvolumeclaims")
    assert sorted(x["metadata"]["name"] for x in pvcs["items"]) == ["alertmanager", "prometheus"]
    assert "no" in server.v6("addon", "ls").stdout.split("\n")[1]
    p = server.v6("addon", "disable", "observability", "--purge")
    assert p.returncode == 0 and "persistentvolumeclaims/prometheus deleted" in p.stdout, p.stdout


def test_unknown_addon_is_a_clear_error(server):
    p = server.v6("addon", "enable", "grafana")
    assert p.returncode != 0 and 'unknown addon "grafana"' in p.stderr, p.stderr


def listing(server, path):
    _, o = server.json("GET", path, expect=200)
    return sorted((x["metadata"]["name"], x["metadata"]["resourceVersion"]) for x in o["items"])


def test_enable_dry_run_checks_every_write_and_stores_nothing(server):
    # server: every object is checked by the API, nothing stored, no namespace made
    p = server.v6("addon", "enable", "observability", "--dry-run=server")
    assert p.returncode == 0, (p.stdout, p.stderr)
    for line in ("namespace/v6-system configured (server dry run)",
                 "deployment/prometheus configured (server dry run)",
                 "addon observability enabled (server dry run): nothing was changed"):
        assert line in p.stdout, p.stdout
    assert "v6 get pods" not in p.stdout, p.stdout
    server.json("GET", "/api/v1/namespaces/v6-system", expect=404)
    # with the namespace there, the objects in it are checked too (and not stored)
    server.json("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "v6-system"}}, expect=201)
    before = [listing(server, "/api/v1/namespaces/v6-system/" + r)
              for r in ("services", "configmaps", "persistentvolumeclaims")]
    before.append(listing(server, "/apis/apps/v1/namespaces/v6-system/deployments"))
    p = server.v6("addon", "enable", "observability", "--dry-run=server")
    assert p.returncode == 0 and "service/alertmanager configured (server dry run)" in \
        p.stdout, (p.stdout, p.stderr)
    after = [listing(server, "/api/v1/namespaces/v6-system/" + r)
             for r in ("services", "configmaps", "persistentvolumeclaims")]
    after.append(listing(server, "/apis/apps/v1/namespaces/v6-system/deployments"))
    assert before == after == [[], [], [], []], after
    _, ns = server.json("GET", "/api/v1/namespaces/v6-system", expect=200)
    assert "addon.v6.dev/name" not in (ns["metadata"].get("labels") or {}), ns
    # client: nothing sent; an unknown addon is still an error
    p = server.v6("addon", "disable", "observability", "--dry-run")
    assert p.returncode == 0 and "addon observability disabled (dry run)" in p.stdout, p.stdout
    p = server.v6("addon", "enable", "grafana", "--dry-run")
    assert p.returncode != 0 and 'unknown addon "grafana"' in p.stderr, p.stderr
    p = server.v6("addon", "enable", "observability", "--dry-run=maybe")
    assert p.returncode != 0 and "Invalid dry-run value" in p.stderr, p.stderr
    # a typo in the API's dryRun is refused, never a real write
    server.json("POST", "/v6/addons/observability?dryRun=all", expect=422)
    server.json("GET", "/apis/apps/v1/namespaces/v6-system/deployments/prometheus",
                expect=404)
