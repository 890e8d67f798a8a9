"""README.md's five-minute tour, run as written: every command of the block
under "Five-minute tour" goes through `sh -c` in the repository root with
`v6` on PATH and KUBECONFIG the admin's of an HTTPS test server (the tour's own
`build/v6 server &`, `export` and `alias` lines are that setup). Each command
must exit 0, and what the README's comments promise is checked on the output;
a command the README gains without a check here still has to succeed. Also
`make demo` (scripts/demo.sh) as shipped, and every examples/*.yaml reaching
its ready state."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import V6, free_port, own_ranges, stop_workloads
import readme
from test_pods import wait_for   # (what, fn, timeout, interval)


@pytest.fixture
def server(examples_tls_server):
    """examples/ are images run by runc: the server the README starts (as
    root), HTTPS, used through the admin kubeconfig."""
    return examples_tls_server

ROOT = readme.ROOT
SETUP = ("make", "build/v6 server ", "export KUBECONFIG=", "build/v6 kubeconfig ",
         "alias v6=")


@pytest.fixture
def shell(server):
    """Runs one README line as the reader's shell would."""
    bindir = tempfile.mkdtemp(prefix="v6-tour-bin-")
    os.symlink(os.path.abspath(V6), os.path.join(bindir, "v6"))
    env = dict(os.environ, KUBECONFIG=server.kubeconfig(),
               PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    env.pop("V6_SERVER", None)

    def run(cmd, timeout=120):
        return subprocess.run(["sh", "-c", cmd], cwd=ROOT, env=env, text=True,
                              capture_output=True, timeout=timeout)
    run.env = env
    yield run
    shutil.rmtree(bindir)


def deployment(server, name="web", ns="demo"):
    _, d = server.json("GET", "/apis/apps/v1/namespaces/%s/deployments/%s" % (ns, name))
    return d


def image_of(server):
    return deployment(server)["spec"]["template"]["spec"]["containers"][0]["image"]


def lines(out):
    return [l.rstrip() for l in out.strip().split("\n") if l.strip()]


def check_created(p, server):
    for want in ("namespace/demo created", "deployment.apps/web created",
                 "service/web created", "configmap/web-config created"):
        assert want in p.stdout, p.stdout


def check_unchanged(p, server):
    out = lines(p.stdout)
    assert out and all(l.endswith(" unchanged") for l in out), p.stdout


def check_watch(cmd, shell):
    """`-w` runs until Ctrl-C: it must print the table, then keep running and
    print a change made meanwhile."""
    # Ctrl-C as a terminal sends it: SIGINT at its default action, even when
    # this run was started in the background of a non-interactive shell (POSIX
    # then starts it with SIGINT ignored, and children inherit that)
    proc = subprocess.Popen(["sh", "-c", "exec " + cmd], cwd=ROOT, env=shell.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        wait_for("web-config in the watch", lambda: any("web-config" in l for l in seen),
                 timeout=30)
        assert seen[0].split()[:1] == ["NAME"], seen
        assert proc.poll() is None, "the watch ended by itself"
        p = shell("printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: tour-watch\\n"
                  "  namespace: demo\\n' | v6 apply -f -")
        assert p.returncode == 0, p.stderr
        wait_for("the new configmap in the watch",
                 lambda: any("tour-watch" in l for l in seen), timeout=30)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(10)
    assert proc.returncode in (0, 130, -signal.SIGINT), proc.returncode


# Checks keyed by the README command (exactly as written); each gets the
# finished process and the server. The state changing ones are checked on the
# objects too, not only on what was printed.
def _c(pred, what):
    def check(p, server):
        assert pred(p.stdout), "%s: %s" % (what, p.stdout)
    return check


def check_pods_wide(p, server):
    # "its own 127.1.x.y IP": from the pod range, here the test server's own
    # (every pod that runs: a StatefulSet's next pod may still be Pending,
    # without an IP, while its ordered start waits for the previous one)
    running = [l for l in lines(p.stdout)[1:] if l.split()[2] == "Running"]
    ips = [ip for l in running for ip in re.findall(r"\b127\.\d+\.\d+\.\d+\b", l)
           if server.in_range(ip, server.pod_cidr)]
    assert len(set(ips)) == len(ips) == len(running) >= 3, p.stdout


def check_svc_endpoints(p, server):
    """"the Service has a 127.2.x.y address" (the Service range; the test
    server's own), its endpoints are pod addresses."""
    svc = re.search(r"service/web\s+ClusterIP\s+(127[.\d]+)", p.stdout)
    ep = re.search(r"endpoints/web\s+(127[.\d]+):8080", p.stdout)
    assert svc and server.in_range(svc.group(1), server.service_cidr), p.stdout
    assert ep and server.in_range(ep.group(1), server.pod_cidr), p.stdout


def check_pod_curl(p, server):
    body = json.loads(p.stdout)
    assert body["namespace"] == "demo" and body["pod"].startswith("web-"), body


def check_svc_curl(p, server):
    check_pod_curl(p, server)


def check_describe_service(p, server):
    m = re.search(r"Endpoints:\s+(127[.\d]+)", p.stdout)
    assert m and server.in_range(m.group(1), server.pod_cidr), p.stdout
    assert "Traffic:" in p.stdout, p.stdout
    # "live traffic (req/s, errors, p99)": with requests going through the
    # proxy (one every poll), the figures show once the next sample is taken
    _, svc = server.json("GET", "/api/v1/namespaces/demo/services/web", expect=200)

    def figures():
        subprocess.run(["curl", "-sf", "--max-time", "5", "http://%s/" % svc["spec"]["clusterIP"]],
                       capture_output=True, check=True)
        return re.search(r"Traffic:\s+[\d.]+ req/s, [\d.]+% errors, avg [\d.]+ ms, p99 [\d.]+ ms",
                         server.v6("describe", "service", "web", "-n", "demo").stdout)
    wait_for("traffic figures in describe", figures, timeout=30, interval=0.5)


def check_logs_tail(p, server):
    # one pod's last 5 lines (kubectl picks one pod of the Deployment)
    out = lines(p.stdout)
    assert 1 <= len(out) <= 5, p.stdout
    for l in out:
        json.loads(l)   # testapp's JSON log lines, not garbage


def check_new_template(p, server):
    assert "deployment.apps/web configured" in p.stdout, p.stdout
    assert image_of(server) == "localhost:5000/v6/testapp:0.2"


def check_history(p, server):
    out = lines(p.stdout)
    assert out[:2] == ["deployment.apps/web", "REVISION  CHANGE-CAUSE"], p.stdout
    assert [l.split()[0] for l in out[2:]] == ["1", "2"], p.stdout


def check_undo(p, server):
    assert "rolled back" in p.stdout, p.stdout
    # the old template is back, and the rollout of it completes
    assert image_of(server) == "localhost:5000/v6/testapp:0.1"
    wait_for("rollback rolled out", lambda: all(
        pod["spec"]["containers"][0]["image"] == "localhost:5000/v6/testapp:0.1"
        for pod in server.json("GET", "/api/v1/namespaces/demo/pods?labelSelector=app%3Dweb")[1]["items"]
        if not pod["metadata"].get("deletionTimestamp")) and
        (deployment(server).get("status") or {}).get("updatedReplicas") == 3)


def check_scale(p, server):
    assert "deployment.apps/web scaled" in p.stdout, p.stdout
    wait_for("5 ready replicas",
             lambda: (deployment(server).get("status") or {}).get("readyReplicas") == 5)


def check_delete(p, server):
    assert 'deployment.apps "web" deleted' in p.stdout, p.stdout


def check_gone(p, server):
    assert server.json("GET", "/apis/apps/v1/namespaces/demo/deployments/web")[0] == 404
    # "cascades to ReplicaSets and pods"
    wait_for("web's ReplicaSets and pods gone", lambda: not server.json(
        "GET", "/api/v1/namespaces/demo/pods?labelSelector=app%3Dweb")[1]["items"] and not
        server.json("GET", "/apis/apps/v1/namespaces/demo/replicasets?labelSelector=app%3Dweb")[1]["items"])


CHECKS = {
    "v6 image import build/images/testapp.tar": _c(
        lambda o: all("imported localhost:5000/v6/testapp:%s" % t in o for t in ("0.1", "0.2")),
        "imported"),
    "v6 create namespace staging": _c(lambda o: "namespace/staging created" in o, "created"),
    "v6 get deploy,cm -n demo": _c(lambda o: "deployment.apps/web" in o and
                                   "configmap/web-config" in o and "READY" in o, "tables"),
    "v6 get deployment web -n demo -o yaml": _c(lambda o: "kind: Deployment" in o and
                                                "name: web" in o, "yaml"),
    "v6 describe deployment web -n demo": _c(lambda o: "Events:" in o and
                                             "ScalingReplicaSet" in o, "events"),
    "v6 get configmaps -A -l app=web": _c(lambda o: re.search(r"demo\s+web-config", o), "cm"),
    "v6 rollout status deployment/web -n demo": _c(
        lambda o: 'deployment "web" successfully rolled out' in o, "rolled out"),
    "v6 get pods -n demo -o wide": check_pods_wide,
    "v6 get svc,endpoints -n demo": check_svc_endpoints,
    "v6 describe service web -n demo": check_describe_service,
    "v6 logs deploy/web -n demo --tail 5": check_logs_tail,
    "v6 top pods -n demo": _c(lambda o: "CPU" in o and "MEMORY" in o and "web-" in o, "top"),
    "sed 's/testapp:0.1/testapp:0.2/' examples/web.yaml | v6 apply -f -": check_new_template,
    "v6 rollout history deployment/web -n demo": check_history,
    "v6 rollout undo deployment/web -n demo": check_undo,
    "v6 scale deployment/web -n demo --replicas 5": check_scale,
    "v6 delete -f examples/web.yaml": check_delete,
    "v6 wait --for=delete deployment/web -n demo --timeout 30s": check_gone,
}


def test_readme_five_minute_tour_runs_as_written(server, shell):
    cmds = [(c.text, c.comment) for c in readme.commands("Five-minute tour")]
    setup = [c for c, _ in cmds if c.startswith(SETUP)]
    assert len(setup) == 5, setup       # the tour starts the way this test does
    applies = 0
    checked = set()
    for cmd, _ in cmds:
        if cmd.startswith(SETUP):
            continue
        if cmd.endswith(" -w"):
            check_watch(cmd, shell)
            continue
        p = shell(cmd)
        if cmd.startswith("v6 top "):   # like metrics-server, the first sample takes a period
            p = wait_for("metrics", lambda: (lambda q: q if q.returncode == 0 or
                         "metrics not available yet" not in q.stderr else None)(shell(cmd)),
                         timeout=40, interval=1)
        assert p.returncode == 0, "%s -> %d\n%s%s" % (cmd, p.returncode, p.stdout, p.stderr)
        if cmd == "v6 apply -f examples/":
            (check_created if applies == 0 else check_unchanged)(p, server)
            applies += 1
        elif cmd.startswith("curl ") and ":8080/" in cmd:
            check_pod_curl(p, server)
        elif cmd.startswith("curl "):
            check_svc_curl(p, server)
        elif cmd in CHECKS:
            CHECKS[cmd](p, server)
            checked.add(cmd)
    assert applies == 2
    # every check of this file matched a line: the README and the test agree
    assert checked == set(CHECKS), set(CHECKS) - checked


def status_ready(server):
    """{kind/name: bool} for every workload examples/ creates."""
    out = {}
    for plural in ("deployments", "statefulsets", "daemonsets"):
        _, lst = server.json("GET", "/apis/apps/v1/%s" % plural)
        for o in lst["items"]:
            st, want = o.get("status") or {}, (o["spec"].get("replicas", 1))
            if plural == "daemonsets":
                ok = st.get("desiredNumberScheduled", 0) > 0 and \
                    st.get("numberReady") == st.get("desiredNumberScheduled")
            else:
                ok = st.get("readyReplicas") == want and st.get("updatedReplicas", want) == want
            out["%s/%s" % (plural, o["metadata"]["name"])] = ok
    _, lst = server.json("GET", "/apis/argoproj.io/v1alpha1/rollouts")
    for o in lst["items"]:
        out["rollouts/" + o["metadata"]["name"]] = (o.get("status") or {}).get("phase") == "Healthy"
    return out


def test_every_example_applies_cleanly_and_becomes_ready(server):
    files = sorted(f for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".yaml"))
    assert files
    for f in files:
        p = server.v6("apply", "-f", os.path.join(ROOT, "examples", f))
        assert p.returncode == 0 and p.stderr == "", (f, p.stdout, p.stderr)
        assert " created" in p.stdout, (f, p.stdout)
    ready = status_ready(server)
    assert len(ready) >= 5, ready   # web, stateful, daemon set, two rollouts
    # the DaemonSet runs on nodes labelled role=edge: label ours, as its comment says
    _, nodes = server.json("GET", "/api/v1/nodes", expect=200)
    assert len(nodes["items"]) == 1, nodes
    server.json("PATCH", "/api/v1/nodes/" + nodes["items"][0]["metadata"]["name"],
                {"metadata": {"labels": {"role": "edge"}}},
                headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    not_ready = []

    def all_ready():
        not_ready[:] = [k for k, ok in status_ready(server).items() if not ok]
        return not not_ready
    try:
        wait_for("every example workload ready", all_ready, timeout=120, interval=0.5)
    except AssertionError:
        raise AssertionError("not ready: %s\n%s" % (not_ready, "\n".join(
            json.dumps(o.get("status")) for plural in ("apps/v1/statefulsets", "apps/v1/daemonsets",
                                                       "argoproj.io/v1alpha1/rollouts")
            for o in server.json("GET", "/apis/" + plural)[1]["items"])))
    # the web Service answers through the proxy
    _, svc = server.json("GET", "/api/v1/namespaces/demo/services/web")
    ip = svc["spec"]["clusterIP"]
    out = subprocess.run(["curl", "-sf", "--max-time", "5", "http://%s/" % ip],
                         capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["pod"].startswith("web-"), out


def test_make_demo_script_as_shipped():
    """scripts/demo.sh (`make demo` minus the build) on a free port: it must
    finish with exit 0, having shown the Service answering."""
    port = free_port()
    pods, svcs = own_ranges()   # not the defaults: a demo may be running
    registry = "127.0.0.1:%d" % free_port()    # its own registry, not localhost:5000
    env = dict(os.environ, V6_DEMO_PORT=str(port), V6_DEMO_REGISTRY=registry,
               V6_DEMO_SERVER_ARGS="--pod-cidr %s --service-cidr %s" % (pods, svcs))
    p = subprocess.run(["sh", os.path.join(ROOT, "scripts", "demo.sh"), os.path.abspath(V6)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    reg = re.search(r"docker-registry \(pid (\d+)\) serving " + re.escape(registry), p.stdout)
    m = re.search(r"v6 server \(pid (\d+)\) serving (\S+), data in (\S+)", p.stdout)
    if reg:
        stop_registry = lambda: os.kill(int(reg.group(1)), signal.SIGTERM)
    else:
        stop_registry = lambda: None
    if not m:
        stop_registry()
    assert m, (p.returncode, p.stdout, p.stderr)
    pid, url, data = int(m.group(1)), m.group(2), m.group(3)
    try:
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert reg, p.stdout         # the demo started the registry the pods pulled from
        for tag in ("0.1", "0.2", "0.3"):
            assert "docker://%s/v6/testapp:%s" % (registry, tag) in p.stdout, p.stdout
        assert "%s/v6/testapp:0.1" % registry in p.stdout, p.stdout   # the IMAGES column
        assert url == "https://127.0.0.1:%d" % port
        assert "==> v6 kubeconfig --data-dir" in p.stdout, p.stdout
        assert 'deployment "web" successfully rolled out' in p.stdout, p.stdout
        answers = re.findall(r'^\{"version".*\}$', p.stdout, re.M)
        assert len(answers) == 4, p.stdout     # one pod + three through the Service
        assert "Stop it with:" in p.stdout
        # one pod on its own IP, then the Service's address
        assert re.search(r"==> curl http://%s\.\d+:8080/" % re.escape(pods.rsplit(".", 1)[0]),
                         p.stdout), p.stdout
        assert re.search(r"==> curl http://%s\.\d+/" % re.escape(svcs.rsplit(".", 1)[0]),
                         p.stdout), p.stdout
    finally:
        d = subprocess.run([V6, "delete", "namespace", "demo", "--kubeconfig",
                            os.path.join(data, "kubeconfig")],
                           capture_output=True, text=True, timeout=60)
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(200):
                os.kill(pid, 0)
                time.sleep(0.05)
        except ProcessLookupError:
            pass
        stop_workloads(data)
        stop_registry()
        shutil.rmtree(data, ignore_errors=True)
    assert d.returncode == 0, d.stderr
