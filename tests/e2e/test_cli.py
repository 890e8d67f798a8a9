"""The `v6` command line against a real server: apply's created / configured /
unchanged, all-or-nothing validation with FILE:LINE:COL errors, get tables and
output formats, describe, delete, create namespace, wait, exit codes and help.
Uses the `server` fixture of conftest.py (server.v6(...) runs the CLI)."""
import json
import os
import subprocess
import threading
import time

from conftest import V6, write

WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
        env:
        - name: GREETING
          value: "yes"
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
"""

CM = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
data:
  a: "1"
"""


def lines(text):
    return [l for l in text.splitlines() if l.strip()]


def test_apply_reports_created_then_unchanged_then_configured(server, workdir):
    path = write(workdir, "web.yaml", WEB)
    p = server.v6("apply", "-f", path, check=True)
    assert lines(p.stdout) == ["deployment.apps/web created", "service/web created"]
    p = server.v6("apply", "-f", path, check=True)
    assert lines(p.stdout) == ["deployment.apps/web unchanged", "service/web unchanged"]
    write(workdir, "web.yaml", WEB.replace("replicas: 2", "replicas: 5"))
    p = server.v6("apply", "-f", path, check=True)
    assert lines(p.stdout) == ["deployment.apps/web configured", "service/web unchanged"]
    _, d = server.json("GET", "/apis/apps/v1/namespaces/default/deployments/web",
                       expect=200)
    assert d["spec"]["replicas"] == 5


def test_apply_removes_fields_dropped_from_the_manifest(server, workdir):
    path = write(workdir, "cm.yaml", CM.format(name="c") + "  b: two\n")
    server.v6("apply", "-f", path, check=True)
    write(workdir, "cm.yaml", CM.format(name="c"))
    p = server.v6("apply", "-f", path, check=True)
    assert p.stdout.strip() == "configmap/c configured"
    _, c = server.json("GET", "/api/v1/namespaces/default/configmaps/c", expect=200)
    assert c["data"] == {"a": "1"}


def test_apply_directory_and_stdin(server, workdir):
    write(workdir, "b.yaml", CM.format(name="b"))
    write(workdir, "a.json", json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": "a"}}))
    write(workdir, "notes.txt", "not a manifest")
    p = server.v6("apply", "-f", workdir, check=True)
    assert lines(p.stdout) == ["configmap/a created", "configmap/b created"]
    p = server.v6("apply", "-f", "-", input=CM.format(name="from-stdin"), check=True)
    assert p.stdout.strip() == "configmap/from-stdin created"


def test_apply_creates_namespace_before_its_objects(server, workdir):
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: prod\n"
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n")
    p = server.v6("apply", "-f", write(workdir, "ns.yaml", text), check=True)
    assert lines(p.stdout) == ["namespace/prod created", "configmap/c created"]


def test_bad_manifest_error_names_file_line_and_field(server, workdir):
    bad = WEB.replace("        image: nginx:1.25\n", "        imagee: nginx:1.25\n")
    path = write(workdir, "web.yaml", bad)
    p = server.v6("apply", "-f", path)
    assert p.returncode == 1
    assert path + ":19:9: spec.template.spec.containers[0].imagee:" in p.stderr
    assert "spec.template.spec.containers[0].image: required" in p.stderr
    assert p.stdout == ""


def test_yaml_syntax_error_has_position(server, workdir):
    path = write(workdir, "broken.yaml", "apiVersion: v1\nkind: ConfigMap\n  bad: [\n")
    p = server.v6("apply", "-f", path)
    assert p.returncode == 1
    assert p.stderr.startswith(path + ":"), p.stderr


def test_one_bad_document_means_nothing_is_applied(server, workdir):
    text = CM.format(name="good") + "---\n" + CM.format(name="Bad_Name")
    p = server.v6("apply", "-f", write(workdir, "two.yaml", text))
    assert p.returncode == 1
    assert "metadata.name" in p.stderr
    assert server.request("GET", "/api/v1/namespaces/default/configmaps/good")[0] == 404


def test_server_side_rejection_applies_nothing(server, workdir):
    text = CM.format(name="first") + "---\n" + CM.format(name="second").replace(
        "  name: second\n", "  name: second\n  namespace: missing\n")
    p = server.v6("apply", "-f", write(workdir, "two.yaml", text))
    assert p.returncode == 1
    assert 'namespaces "missing" not found' in p.stderr
    assert server.request("GET", "/api/v1/namespaces/default/configmaps/first")[0] == 404


def test_namespace_flag_mismatch_is_an_error(server, workdir):
    text = CM.format(name="c").replace("  name: c\n", "  name: c\n  namespace: a\n")
    p = server.v6("apply", "-n", "b", "-f", write(workdir, "c.yaml", text))
    assert p.returncode == 1
    assert "does not match the namespace \"b\"" in p.stderr


def test_dry_run_changes_nothing(server, workdir):
    path = write(workdir, "c.yaml", CM.format(name="dry"))
    for mode in ("client", "server"):
        p = server.v6("apply", "--dry-run=" + mode, "-f", path, check=True)
        assert "configmap/dry created (" in p.stdout
    assert server.request("GET", "/api/v1/namespaces/default/configmaps/dry")[0] == 404


def test_get_tables_and_formats(server, workdir):
    server.v6("apply", "-f", write(workdir, "web.yaml", WEB), check=True)
    p = server.v6("get", "deployments", check=True)
    assert p.stdout.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE",
                                               "AGE"]
    assert p.stdout.split("\n")[1].split()[:2] == ["web", "0/2"]
    p = server.v6("get", "deploy", "-o", "wide", check=True)
    assert p.stdout.split("\n")[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert "nginx:1.25" in p.stdout and "app=web" in p.stdout
    p = server.v6("get", "svc", check=True)
    assert p.stdout.split("\n")[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP",
                                               "PORT(S)", "AGE"]
    p = server.v6("get", "deploy,svc", check=True)
    assert "deployment.apps/web" in p.stdout and "service/web" in p.stdout
    p = server.v6("get", "deploy,svc", "-o", "name", check=True)
    assert lines(p.stdout) == ["deployment.apps/web", "service/web"]
    p = server.v6("get", "deploy/web", "-o", "json", check=True)
    d = json.loads(p.stdout)
    assert d["kind"] == "Deployment" and d["metadata"]["name"] == "web"
    p = server.v6("get", "deploy", "-o", "json", check=True)
    assert json.loads(p.stdout)["kind"] == "List"
    p = server.v6("get", "deploy", "web", "-o", "yaml", check=True)
    assert p.stdout.startswith("apiVersion: apps/v1\nkind: Deployment\n")
    assert "value: \"yes\"" in p.stdout          # quoted so it stays a string
    p = server.v6("get", "deploy", "web", "-o", "jsonpath={.spec.replicas}", check=True)
    assert p.stdout == "2"
    p = server.v6("get", "ns", "-A", "--no-headers", check=True)
    assert "default" in p.stdout and "NAME" not in p.stdout


def test_get_selectors_and_all_namespaces(server, workdir):
    server.v6("create", "namespace", "other", check=True)
    server.v6("apply", "-f", write(workdir, "c.yaml", CM.format(name="x")), check=True)
    server.v6("apply", "-n", "other", "-f", write(workdir, "d.yaml", CM.format(name="y")),
              check=True)
    p = server.v6("get", "cm", "-A", check=True)
    assert p.stdout.split("\n")[0].split()[:2] == ["NAMESPACE", "NAME"]
    rows = [l.split()[:2] for l in p.stdout.splitlines()[1:]]
    assert ["default", "x"] in rows and ["other", "y"] in rows, p.stdout
    p = server.v6("get", "cm", "--field-selector", "metadata.name=x", "-o", "name",
                  check=True)
    assert p.stdout.strip() == "configmap/x"
    p = server.v6("get", "cm", "-l", "nothing=here")
    assert p.returncode == 0
    assert "No resources found in default namespace." in p.stderr


def test_get_missing_object_is_not_found(server):
    p = server.v6("get", "deployment", "nope")
    assert p.returncode == 1
    assert 'Error from server (NotFound): deployments.apps "nope" not found' in p.stderr
    p = server.v6("get", "frobs")
    assert p.returncode == 1 and "frobs" in p.stderr


def test_get_watch_prints_changes(server, workdir):
    server.v6("apply", "-f", write(workdir, "a.yaml", CM.format(name="first")), check=True)
    env = dict(os.environ, V6_SERVER=server.url)
    proc = subprocess.Popen([V6, "get", "cm", "-w", "--timeout", "8s"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    while not any(l.startswith("first ") for l in lines):  # the watch has listed
        line = proc.stdout.readline()
        assert line, "v6 get -w ended before listing: %s" % lines
        lines.append(line)
    server.v6("apply", "-f", write(workdir, "c.yaml", CM.format(name="watched")), check=True)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert lines[0].split()[0] == "NAME" and "\nwatched " in "\n" + out, lines + [out]


def test_describe_deployment_and_service(server, workdir):
    server.v6("apply", "-f", write(workdir, "web.yaml", WEB), check=True)
    p = server.v6("describe", "deployment", "web", check=True)
    for want in ("Name:", "Namespace:", "Labels:", "app=web", "Replicas:",
                 "StrategyType:", "Pod Template:", "Image:", "nginx:1.25", "GREETING",
                 "Events:"):
        assert want in p.stdout, want
    assert "last-applied-configuration" not in p.stdout
    p = server.v6("describe", "svc/web", check=True)
    assert "Type:" in p.stdout and "ClusterIP" in p.stdout and "Endpoints:" in p.stdout
    p = server.v6("describe", "deploy", "nope")
    assert p.returncode == 1 and "NotFound" in p.stderr


def test_delete_by_file_name_and_selector(server, workdir):
    path = write(workdir, "web.yaml", WEB)
    server.v6("apply", "-f", path, check=True)
    p = server.v6("delete", "-f", path, check=True)
    assert lines(p.stdout) == ['deployment.apps "web" deleted', 'service "web" deleted']
    assert server.request("GET", "/apis/apps/v1/namespaces/default/deployments/web")[0] == 404
    p = server.v6("delete", "deploy", "web")
    assert p.returncode == 1 and "NotFound" in p.stderr
    p = server.v6("delete", "deploy", "web", "--ignore-not-found")
    assert p.returncode == 0 and p.stdout == ""
    labeled = CM.format(name="l1").replace("  name: l1\n", "  name: l1\n  labels:\n"
                                            "    tier: x\n")
    server.v6("apply", "-f", write(workdir, "l.yaml", labeled), check=True)
    p = server.v6("delete", "cm", "-l", "tier=x", check=True)
    assert p.stdout.strip() == 'configmap "l1" deleted'
    p = server.v6("delete", "cm")
    assert p.returncode == 1 and "--all" in p.stderr


def test_create_namespace_and_create_only(server, workdir):
    p = server.v6("create", "namespace", "staging", check=True)
    assert p.stdout.strip() == "namespace/staging created"
    p = server.v6("create", "namespace", "staging")
    assert p.returncode == 1 and "AlreadyExists" in p.stderr
    path = write(workdir, "c.yaml", CM.format(name="once"))
    assert server.v6("create", "-f", path, check=True).stdout.strip() == \
        "configmap/once created"
    p = server.v6("create", "-f", path)
    assert p.returncode == 1 and "AlreadyExists" in p.stderr


def test_wait_for_delete_and_timeout(server, workdir):
    server.v6("apply", "-f", write(workdir, "c.yaml", CM.format(name="w")), check=True)
    p = server.v6("wait", "--for=condition=Ready", "cm/w", "--timeout", "600ms")
    assert p.returncode == 1
    assert "timed out waiting for the condition on configmaps/w" in p.stderr
    result = {}

    def waiter():
        result["p"] = server.v6("wait", "--for=delete", "configmap/w", "--timeout", "20s")
    t = threading.Thread(target=waiter)
    t.start()
    # A head start for the waiter (it prints nothing to wait on); if it lost
    # the race, "deleted before the wait" is condition met too: same answer.
    time.sleep(0.5)
    server.v6("delete", "cm", "w", "--wait=false", check=True)
    t.join(30)
    assert result["p"].returncode == 0, result["p"].stderr
    assert result["p"].stdout.strip() == "configmap/w condition met"


def test_wait_for_condition_met(server):
    # Bound to another node, so this server's node agent leaves its status
    # to the test.
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"nodeName": "elsewhere",
                     "containers": [{"name": "c", "image": "busybox"}]}}
    server.json("POST", "/api/v1/namespaces/default/pods", body, expect=201)
    _, pod = server.json("GET", "/api/v1/namespaces/default/pods/p", expect=200)
    pod["status"] = {"phase": "Running",
                     "conditions": [{"type": "Ready", "status": "True"}]}
    server.json("PUT", "/api/v1/namespaces/default/pods/p/status", pod, expect=200)
    p = server.v6("wait", "--for=condition=Ready", "pod/p", "--timeout", "10s")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "pod/p condition met"


def test_version(server):
    p = server.v6("version", check=True)
    assert "Client Version: v0.1.0" in p.stdout and "Server Version: v" in p.stdout
    p = server.v6("version", "-o", "json", check=True)
    assert json.loads(p.stdout)["clientVersion"]["gitVersion"] == "v0.1.0"


def test_unreachable_server_is_a_clear_error():
    env = dict(os.environ, V6_SERVER="http://127.0.0.1:9")
    p = subprocess.run([V6, "get", "pods"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1
    assert "cannot reach the v6 server at http://127.0.0.1:9" in p.stderr
    assert "Connection refused" in p.stderr


def test_unknown_flag_and_verb_exit_1():
    p = subprocess.run([V6, "get", "pods", "--frob"], capture_output=True, text=True)
    assert p.returncode == 1
    assert "error: unknown flag: --frob" in p.stderr
    assert "See 'v6 get --help' for usage." in p.stderr
    p = subprocess.run([V6, "frob"], capture_output=True, text=True)
    assert p.returncode == 1 and "unknown command" in p.stderr


def test_help_for_every_verb():
    top = subprocess.run([V6, "--help"], capture_output=True, text=True, check=True).stdout
    for verb in ("apply", "get", "describe", "delete", "create", "wait", "version",
                 "server"):
        assert "\n  %s " % verb in top, verb
        if verb == "server":
            continue
        for args in ([verb, "--help"], ["help", verb]):
            p = subprocess.run([V6] + args, capture_output=True, text=True)
            assert p.returncode == 0, args
            assert "Usage:\n  v6 " + verb in p.stdout
            assert "Examples:" in p.stdout
    get = subprocess.run([V6, "get", "-h"], capture_output=True, text=True).stdout
    for flag in ("--namespace", "--all-namespaces", "--selector", "--output", "--watch",
                 "--server"):
        assert flag in get, flag


def _cm(name, labels):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "labels": labels}}


def _event(name, obj, reason, last, first=None, count=1):
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "ConfigMap", "name": obj, "namespace": "default"},
            "reason": reason, "message": "msg " + reason, "type": "Normal",
            "source": {"component": "test"}, "count": count,
            "firstTimestamp": first or last, "lastTimestamp": last}


def _ts(ago):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - ago))


def test_describe_lists_events_oldest_first_with_repeat_counts(server):
    server.json("POST", "/api/v1/namespaces/default/configmaps", _cm("c", {"app": "x"}),
                expect=201)
    # Created in an order that is neither time order nor name order.
    for name, reason, ago in (("b", "Second", 120), ("a", "Third", 10), ("c", "First", 600)):
        server.json("POST", "/api/v1/namespaces/default/events",
                    _event(name, "c", reason, _ts(ago), count=3 if reason == "Third" else 1,
                           first=_ts(300) if reason == "Third" else None), expect=201)
    p = server.v6("describe", "configmap", "c", check=True)
    out = p.stdout
    assert out.index("First") < out.index("Second") < out.index("Third"), out
    assert "(x3 over 5m" in out, out


def test_describe_with_a_label_selector_describes_each_match(server):
    for name, app in (("one", "x"), ("two", "x"), ("three", "y")):
        server.json("POST", "/api/v1/namespaces/default/configmaps", _cm(name, {"app": app}),
                    expect=201)
    p = server.v6("describe", "configmaps", "-l", "app=x", check=True)
    names = [l.split()[1] for l in p.stdout.splitlines() if l.startswith("Name:")]
    assert names == ["one", "two"], p.stdout
    p = server.v6("describe", "configmaps", "-l", "app=none")
    assert p.returncode == 0 and "No resources found" in p.stderr
    p = server.v6("describe", "configmaps", "one", "-l", "app=x")
    assert p.returncode == 1 and "selector" in p.stderr


def _pid_alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _pidfile(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def test_reset_stops_server_proxy_and_pods_and_wipe_removes_the_data(make_server):
    import glob
    srv = make_server()
    d = srv.data_dir
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper"},
           "spec": {"containers": [{"name": "c", "image": "sh",
                                    "command": ["sh", "-c", "sleep 600"]}]}}
    srv.json("POST", "/api/v1/namespaces/default/pods", pod, expect=201)
    deadline = time.time() + 60
    pids = {}
    while time.time() < deadline:
        _, p = srv.json("GET", "/api/v1/namespaces/default/pods/sleeper", expect=200)
        ctr = glob.glob(os.path.join(d, "node", "containers", "*", "c*"))
        proxy = _pidfile(os.path.join(d, "proxy", "proxy.pid"))
        if p.get("status", {}).get("phase") == "Running" and ctr and proxy:
            pids = {"container": _pidfile(os.path.join(ctr[0], "ctr.pid")),
                    "shim": _pidfile(os.path.join(ctr[0], "shim.pid")),
                    "proxy": proxy, "server": srv.proc.pid}
            if all(pids.values()):
                break
        time.sleep(0.1)
    assert all(pids.values()) and all(_pid_alive(p) for p in pids.values()), pids

    p = subprocess.run([V6, "reset", "--data-dir", d, "--timeout", "5s"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    srv.proc.wait(timeout=10)   # our child: reap it
    left = {k: v for k, v in pids.items() if _pid_alive(v)}
    assert not left, (left, p.stdout)
    for what in ("server", "proxy", "container"):
        assert what in p.stdout, p.stdout
    assert os.path.exists(os.path.join(d, "v6.db"))   # without --wipe the data stays

    p = subprocess.run([V6, "reset", "--data-dir", d, "--wipe"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert not os.path.exists(d)
    os.makedirs(d)   # for the fixture's cleanup


def test_reset_help_and_bad_flags():
    p = subprocess.run([V6, "reset", "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "--wipe" in p.stdout and "--data-dir" in p.stdout
    p = subprocess.run([V6, "reset", "--bogus"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "unknown flag" in p.stderr
