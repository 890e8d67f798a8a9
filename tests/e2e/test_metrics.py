"""Metrics into the real Prometheus: Debian's Prometheus 2.42 finds V6's pages
and an annotated pod through the http_sd endpoint, scrapes them every second
(every target up), sees kube-state-metrics / cAdvisor / node_exporter / V6
names, and sees them move as pods start and crash; promtool accepts the
pages; every PromQL expression of the Grafana dashboard parses and returns
data after traffic went through the proxy."""
import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import TIMEOUT_SCALE, wait_for
from load import answers
from prom import PROMTOOL, Prometheus, wait_value

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DASHBOARD = os.path.join(ROOT, "contrib", "grafana", "v6.json")

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def app_template(name, args=(), annotate=True):
    meta = {"labels": {"app": name}}
    if annotate:
        meta["annotations"] = {"prometheus.io/scrape": "true", "prometheus.io/port": "8080",
                               "prometheus.io/path": "/metrics"}
    return {"metadata": meta,
            "spec": {"containers": [{
                "name": "app", "image": "v6/testapp",
                "command": ["v6", "testapp", "--quiet"] + list(args),
                "env": [{"name": "POD_IP", "valueFrom": {
                    "fieldRef": {"fieldPath": "status.podIP"}}}],
                "ports": [{"name": "http", "containerPort": 8080}],
                "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                              "limits": {"memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                                   "periodSeconds": 1}}]}}


def deployment(name):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": app_template(name)}}


def rollout(name):
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
                     "template": app_template(name, annotate=False)}}


def service(name):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": name},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def pod(name, spec):
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": dict(spec["metadata"], name=name, namespace="default"),
         "spec": spec["spec"]}
    return p


def apply(server, *objs):
    server.v6("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objs),
              check=True)


@pytest.fixture
def prom_server(make_server):
    s = make_server("--max-backoff", "1s")
    with tempfile.TemporaryDirectory(prefix="v6-prom-") as d:
        p = Prometheus(d, s.url + "/v6/sd/prometheus")
        try:
            wait_for(p.ready, 60 * TIMEOUT_SCALE, "prometheus to be ready")
            yield s, p
        finally:
            p.stop()


def targets_up(p, want_jobs, want_pods):
    active = p.api("targets", state="active")["activeTargets"]
    jobs = {t["labels"].get("job") for t in active if t["health"] == "up"}
    pods = {t["labels"].get("pod") for t in active if t["health"] == "up"}
    down = [(t["scrapeUrl"], t["lastError"]) for t in active if t["health"] != "up"]
    return want_jobs <= jobs and want_pods <= pods and not down, (jobs, pods, down)


def send_traffic(ip, n_ok=60, n_err=6):
    for i in range(n_ok + n_err):
        path = "/status/500" if i < n_err else "/"
        try:
            urllib.request.urlopen("http://%s%s" % (ip, path), timeout=5).read()
        except urllib.error.HTTPError as e:
            assert e.code == 500
            e.read()


def dashboard_exprs():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    out = []
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            out.append((panel["title"], t["expr"]))
    return out


METRIC_NAMES = [
    # kube-state-metrics
    "kube_deployment_status_replicas", "kube_deployment_status_replicas_available",
    "kube_deployment_status_replicas_updated", "kube_deployment_status_replicas_unavailable",
    "kube_deployment_spec_replicas", "kube_deployment_metadata_generation",
    "kube_deployment_status_observed_generation", "kube_replicaset_status_replicas",
    "kube_replicaset_owner", "kube_pod_info", "kube_pod_status_phase", "kube_pod_status_ready",
    "kube_pod_container_status_restarts_total", "kube_pod_container_status_running",
    "kube_pod_container_resource_requests", "kube_pod_container_resource_limits",
    "kube_pod_owner", "kube_pod_created", "kube_deployment_created", "kube_service_info",
    "kube_service_spec_type",
    "kube_namespace_status_phase",
    # Argo Rollouts
    "rollout_info", "rollout_info_replicas_available", "rollout_info_replicas_desired",
    "rollout_phase",
    # cAdvisor
    "container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
    "container_memory_usage_bytes", "container_spec_memory_limit_bytes",
    "container_oom_events_total",
    # node_exporter
    "node_cpu_seconds_total", "node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes",
    "node_load1", "node_filesystem_size_bytes", "node_filesystem_avail_bytes",
    "node_network_receive_bytes_total", "node_disk_read_bytes_total",
    # V6 itself
    "apiserver_request_total", "apiserver_request_duration_seconds_bucket",
    "apiserver_longrunning_requests", "v6_store_commit_duration_seconds_bucket",
    "v6_store_fsync_duration_seconds_count", "v6_store_db_bytes", "v6_store_journal_rows",
    "workqueue_depth", "workqueue_adds_total", "workqueue_queue_duration_seconds_bucket",
    "workqueue_work_duration_seconds_bucket", "v6_controller_reconcile_errors_total",
    "v6_proxy_requests_total", "v6_proxy_request_duration_seconds_bucket",
    # the annotated pod's own page
    "testapp_info",
]


def test_prometheus_scrapes_v6_through_http_sd(prom_server):
    s, p = prom_server
    apply(s, deployment("web"), service("web"), rollout("shop"), service("shop"))
    r = s.v6("rollout", "status", "deployment/web", "--timeout", "90s", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    _, pods = s.json("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
                     expect=200)
    web_pod = pods["items"][0]["metadata"]["name"]

    # every target V6 lists is up: its own pages, the proxy, the annotated pod
    jobs = {"v6-server", "v6-cadvisor", "v6-node", "v6-proxy"}
    last = []

    def up():
        ok, info = targets_up(p, jobs, {web_pod})
        last[:] = [info]
        return ok
    try:
        wait_for(up, 60 * TIMEOUT_SCALE, "every target up", interval=0.5)
    except AssertionError:
        raise AssertionError("targets: %r\n%s" % (last, p.logtail()))
    assert wait_value(p, 'up{job="v6-server"}', lambda v: v == 1, 10, "server up") == 1

    # the listed names are all in Prometheus
    _, svc = s.json("GET", "/api/v1/namespaces/default/services/web", expect=200)
    ip = svc["spec"]["clusterIP"]
    wait_for(lambda: answers(ip, 80), 20 * TIMEOUT_SCALE, "Service web to answer")
    send_traffic(ip)
    missing = []

    def names_present():
        have = set(p.api("label/__name__/values"))
        missing[:] = [n for n in METRIC_NAMES if n not in have]
        return not missing
    try:
        wait_for(names_present, 30 * TIMEOUT_SCALE, "metric names", interval=0.5)
    except AssertionError:
        raise AssertionError("missing in Prometheus: %s" % missing)
    # the pod's own page carries its identity from the __meta_v6_* labels
    r = p.query('testapp_info{namespace="default",pod="%s",app="web"}' % web_pod)
    assert len(r) == 1 and r[0]["metric"]["revision"], r
    # container figures come from its cgroups (or /proc) with KSM's labels
    wait_value(p, 'container_memory_working_set_bytes{namespace="default",pod="%s",'
               'container="app"}' % web_pod, lambda v: v > 0, 20, "web's working set")
    assert p.value('container_spec_memory_limit_bytes{pod="%s"}' % web_pod) in (
        0, 256 * 2 ** 20)
    assert p.value('kube_pod_container_resource_limits{pod="%s",resource="memory"}'
                   % web_pod) == 256 * 2 ** 20
    # V6's own request counter counted the kubectl-style list above
    assert wait_value(p, 'sum(apiserver_request_total{verb="LIST",resource="pods",'
                      'code="200"})', lambda v: v >= 1, 10, "LIST pods counted") >= 1

    # a new pod: Running goes 0 -> 1 (an init container holds it Pending first)
    slow = app_template("late", annotate=False)
    slow["spec"]["initContainers"] = [{"name": "wait", "image": "busybox",
                                       "command": ["sleep", "4"]}]
    apply(s, pod("late", slow))
    expr = 'kube_pod_status_phase{namespace="default",pod="late",phase="Running"}'
    wait_value(p, expr, lambda v: v == 0, 20, "late Pending first")
    wait_value(p, expr, lambda v: v == 1, 60, "late Running")

    # a crashing container: restarts_total rises, and Prometheus sees the rise
    apply(s, pod("crash", app_template("crash", ["--crash-after", "1s"], annotate=False)))
    expr = ('kube_pod_container_status_restarts_total{namespace="default",pod="crash",'
            'container="app"}')
    wait_value(p, expr, lambda v: v >= 2, 90, "crash restarted twice")
    assert p.value('increase(%s[1m])' % expr) > 0
    wait_value(p, 'kube_pod_container_status_last_terminated_reason{pod="crash",'
               'reason="Error"}', lambda v: v == 1, 30, "last termination reason")


def promtool(text):
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)


def fetch(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=20) as r:
        return r.headers.get("Content-Type"), r.read().decode()


def test_pages_pass_promtool_and_negotiate_openmetrics(make_server):
    s = make_server()
    apply(s, deployment("web"), service("web"))
    r = s.v6("rollout", "status", "deployment/web", "--timeout", "90s", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    _, svc = s.json("GET", "/api/v1/namespaces/default/services/web", expect=200)
    wait_for(lambda: answers(svc["spec"]["clusterIP"], 80), 20 * TIMEOUT_SCALE,
             "Service web to answer")
    send_traffic(svc["spec"]["clusterIP"], 10, 2)
    with urllib.request.urlopen(s.url + "/v6/sd/prometheus", timeout=10) as resp:
        assert resp.headers.get("Content-Type") == "application/json"
        sd = json.loads(resp.read())
    proxy = [g["targets"][0] for g in sd if g["labels"].get("job") == "v6-proxy"]
    assert len(proxy) == 1, sd
    pages = [s.url + "/metrics", s.url + "/metrics/cadvisor", "http://%s/metrics" % proxy[0]]
    for url in pages:
        ctype, text = fetch(url)
        assert ctype == TEXT_TYPE, (url, ctype)
        r = promtool(text)
        assert r.returncode == 0, (url, r.stdout, r.stderr)
        assert "# HELP" in text
    # the node page uses node_exporter's own names, whose meminfo part
    # (node_memory_MemTotal_bytes, ...) promtool's lint calls camelCase, as
    # it does on node_exporter itself; nothing else may be wrong
    _, text = fetch(s.url + "/metrics/node")
    r = promtool(text)
    problems = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
    assert problems and all("node_memory_" in l and "camelCase" in l for l in problems), \
        problems
    assert r.returncode == 3, r.returncode
    # OpenMetrics when asked: its content type, counters named without
    # _total in TYPE, and the closing # EOF
    ctype, text = fetch(s.url + "/metrics", "application/openmetrics-text; version=1.0.0")
    assert ctype == OM_TYPE
    assert text.endswith("# EOF\n")
    assert "# TYPE apiserver_request counter\n" in text
    assert "\napiserver_request_total{" in text
    ctype, text = fetch(s.url + "/metrics")
    assert "# EOF" not in text and "# TYPE apiserver_request_total counter\n" in text
    # requests are counted by verb, resource and code; a made-up path counts
    # under resource "" rather than growing the label set
    s.request("GET", "/api/v1/made-up-thing")
    s.request("GET", "/apis/apps/v1/namespaces/default/deployments/web")
    _, text = fetch(s.url + "/metrics")
    assert "made-up-thing" not in text
    assert 'apiserver_request_total{verb="GET",resource="deployments",code="200"} ' in text
    assert 'apiserver_request_total{verb="GET",resource="",code="404"} ' in text
    assert 'workqueue_adds_total{name="deployment"} ' in text


def test_dashboard_queries_return_data(prom_server):
    s, p = prom_server
    apply(s, deployment("web"), service("web"), rollout("shop"), service("shop"))
    for kind in ("deployment/web", "rollout/shop"):
        r = s.v6("rollout", "status", kind, "--timeout", "90s", timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
    _, svc = s.json("GET", "/api/v1/namespaces/default/services/web", expect=200)
    ip = svc["spec"]["clusterIP"]
    wait_for(lambda: answers(ip, 80), 20 * TIMEOUT_SCALE, "Service web to answer")
    exprs = dashboard_exprs()
    assert len(exprs) >= 30
    empty = []
    deadline = time.monotonic() + 60 * TIMEOUT_SCALE
    while True:
        send_traffic(ip, 30, 3)
        empty = []
        for title, e in exprs:
            # a parse error is an HTTP 400 from Prometheus: urlopen raises
            if not p.query(e):
                empty.append((title, e))
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not empty, "dashboard queries without data: %s" % empty
