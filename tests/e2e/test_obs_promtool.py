"""promtool check metrics on every page V6 serves: the pages are taken from
V6's own http_sd endpoint (the server's /metrics, /metrics/cadvisor,
/metrics/node and the proxy's page), after objects of every kind the
kube-state page covers exist, pods run and crash, and requests went through
the proxy. Each page must exit 0, except for one finding promtool 2.42 also
makes on Debian's node_exporter (run here, in the same test): its lint calls
the meminfo names (node_memory_MemTotal_bytes, ...) camelCase. V6 keeps those
names, the ones every node_exporter dashboard queries; the test checks that
the node page's findings are a subset of node_exporter's own, on the same
promtool, so any other problem still fails it."""
import json
import shutil
import subprocess
import urllib.error
import urllib.request

from conftest import TIMEOUT_SCALE, free_port, wait_for
from load import answers
from prom import PROMTOOL, stop_process

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"

def template(name, args=()):
    return {"metadata": {"labels": {"app": name}},
            "spec": {"containers": [{
                "name": "app", "image": "v6/testapp",
                "command": ["v6", "testapp", "--quiet"] + list(args),
                "env": [{"name": "POD_IP", "valueFrom": {
                    "fieldRef": {"fieldPath": "status.podIP"}}}],
                "ports": [{"name": "http", "containerPort": 8080}],
                "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                              "limits": {"cpu": "1", "memory": "256Mi"}}}]}}


def workload(kind, api, name, **spec):
    spec.setdefault("selector", {"matchLabels": {"app": name}})
    spec.setdefault("template", template(name))
    return {"apiVersion": api, "kind": kind,
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def objects():
    return [
        workload("Deployment", "apps/v1", "web", replicas=2),
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "web", "namespace": "default"},
         "spec": {"selector": {"app": "web"},
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        workload("Rollout", "argoproj.io/v1alpha1", "shop", replicas=1,
                 strategy={"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}),
        workload("StatefulSet", "apps/v1", "db", replicas=1, serviceName="db",
                 volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Mi"}}}}]),
        workload("DaemonSet", "apps/v1", "agent"),
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "crash", "namespace": "default", "labels": {"app": "crash"}},
         "spec": template("crash", ["--crash-after", "1s"])["spec"]},
        {"apiVersion": "batch/v1", "kind": "Job",
         "metadata": {"name": "once", "namespace": "default"},
         "spec": {"backoffLimit": 0, "template": {"spec": {
             "restartPolicy": "Never",
             "containers": [{"name": "c", "image": "busybox",
                             "command": ["sh", "-c", "exit 3"]}]}}}},
    ]


def promtool(text):
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    return r.returncode, sorted(l for l in (r.stdout + r.stderr).splitlines() if l.strip())


def get(url):
    with urllib.request.urlopen(url, timeout=20) as r:
        return r.read().decode()


def node_exporter_findings():
    """promtool's findings on Debian's node_exporter's own page (its meminfo
    collector, the one V6's node page shares names with)."""
    port = free_port()
    p = subprocess.Popen([NODE_EXPORTER, "--web.listen-address=127.0.0.1:%d" % port],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = "http://127.0.0.1:%d/metrics" % port

        def page():
            try:
                return get(url)
            except (urllib.error.URLError, ConnectionError):
                return None
        text = wait_for(page, 20, "node_exporter's page")
    finally:
        stop_process(p)
    return promtool(text)


def test_every_page_v6_serves_passes_promtool(make_server):
    s = make_server("--max-backoff", "1s")
    s.v6("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objects()),
         check=True)
    r = s.v6("rollout", "status", "deployment/web", "--timeout", "90s", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    _, svc = s.json("GET", "/api/v1/namespaces/default/services/web", expect=200)
    ip = svc["spec"]["clusterIP"]
    wait_for(lambda: answers(ip, 80), 20, "Service web to answer")
    for i in range(12):     # 2xx and 5xx through the proxy: its RED families have samples
        try:
            get("http://%s/%s" % (ip, "status/500" if i % 4 == 0 else ""))
        except urllib.error.HTTPError as e:
            assert e.code == 500
    wait_for(lambda: (s.json("GET", "/api/v1/namespaces/default/pods/crash")[1]
                      .get("status", {}).get("containerStatuses") or [{}])[0]
             .get("restartCount", 0) >= 1, 60, "pod crash to restart")

    sd = json.loads(get(s.url + "/v6/sd/prometheus"))
    pages = {g["labels"]["job"]: "%s://%s%s" % (g["labels"].get("__scheme__", "http"),
                                               g["targets"][0],
                                               g["labels"]["__metrics_path__"])
             for g in sd if g["labels"].get("job", "").startswith("v6-")}
    assert set(pages) == {"v6-server", "v6-cadvisor", "v6-node", "v6-proxy"}, pages
    texts = {job: get(url) for job, url in pages.items()}
    # the pages hold what they are for, so promtool had something to check
    assert 'kube_pod_status_phase{namespace="default",pod="crash"' in texts["v6-server"]
    assert "kube_statefulset_replicas" in texts["v6-server"]
    assert "kube_persistentvolumeclaim_info" in texts["v6-server"]
    assert "rollout_info{" in texts["v6-server"]
    assert 'container_cpu_usage_seconds_total{namespace="default"' in texts["v6-cadvisor"]
    assert "node_cpu_seconds_total{" in texts["v6-node"]
    assert 'v6_proxy_requests_total{service="default/web"' in texts["v6-proxy"]

    failed = {}
    for job, text in texts.items():
        rc, findings = promtool(text)
        if job == "v6-node":
            continue
        if rc != 0:
            failed[job] = (rc, findings)
    assert not failed, failed

    # the node page: nothing but what node_exporter's own page gets
    rc, findings = promtool(texts["v6-node"])
    ne_rc, ne_findings = node_exporter_findings()
    extra = set(findings) - set(ne_findings)
    assert not extra, ("findings node_exporter does not have", extra)
    assert rc == 0 or (rc == ne_rc == 3 and findings), (rc, ne_rc, findings)
