"""The workload stories of issue 3 end to end with REAL pods: `v6 server`
runs the controllers and its node agent, every pod is a `v6 testapp` (or a
small `sh` loop) process under a shim, listening on its own loopback pod IP.
Each story is bounded in time and checks what a user would see: the CLI's
output and exit status, HTTP answers from the pods' IPs, and the processes
on this machine. Processes are attributed to a test by an E2E_TAG variable
in their environment; the fixtures stop every container at the end."""
import glob
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import conftest
from conftest import V6

NS = "default"
PODS = "/api/v1/namespaces/%s/pods" % NS
DEPLOYS = "/apis/apps/v1/namespaces/%s/deployments" % NS
REV = "deployment.kubernetes.io/revision"
V6_DIR = os.path.dirname(os.path.abspath(V6))


# ---------------------------------------------------------------- helpers

def wait_for(what, fn, timeout=20.0, interval=0.05):
    """conftest.wait_for with this file's argument order."""
    return conftest.wait_for(fn, timeout, what, interval)


def apply(s, *objs):
    text = "\n---\n".join(json.dumps(o) for o in objs)
    return s.v6("apply", "-f", "-", input=text, check=True)


def app_container(version, args=(), tag="", **extra):
    c = {"name": "app", "image": "v6/testapp",
         "command": ["v6", "testapp", "--version-string", version],
         "args": list(args),
         "ports": [{"name": "http", "containerPort": 8080}],
         "env": [{"name": "E2E_TAG", "value": tag},
                 {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "POD_NAMESPACE",
                  "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                 {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}
    c.update(extra)
    return c


READYZ = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1}


def deployment(name, version, replicas=3, args=(), tag="", strategy=None,
               container=None, grace=2, **spec):
    """A Deployment whose template carries the label ver=<version>."""
    c = container or app_container(version, args, tag, readinessProbe=READYZ)
    d = {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "namespace": NS},
         "spec": {"replicas": replicas,
                  "selector": {"matchLabels": {"app": name}},
                  "strategy": strategy or {"type": "RollingUpdate", "rollingUpdate": {
                      "maxSurge": 1, "maxUnavailable": 0}},
                  "template": {"metadata": {"labels": {"app": name, "ver": version}},
                               "spec": {"terminationGracePeriodSeconds": grace,
                                        "containers": [c]}}}}
    d["spec"].update(spec)
    return d


def pod_manifest(name, containers, restart="Always", **spec):
    body = {"restartPolicy": restart, "containers": containers}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS}, "spec": body}


def get_pod(s, name):
    status, obj = s.json("GET", PODS + "/" + name)
    return obj if status == 200 else None


def list_pods(s, app=None):
    q = "?labelSelector=app%3D" + app if app else ""
    return s.json("GET", PODS + q, expect=200)[1]["items"]


def get_deploy(s, name="web"):
    return s.json("GET", DEPLOYS + "/" + name, expect=200)[1]


def is_ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod.get("status", {}).get("conditions", []))


def terminating(pod):
    return bool(pod["metadata"].get("deletionTimestamp"))


def ver(pod):
    return pod["metadata"]["labels"].get("ver")


def ctr_status(pod, name="app"):
    for c in (pod or {}).get("status", {}).get("containerStatuses", []):
        if c["name"] == name:
            return c
    return None


def http_get(ip, path="/", port=8080, timeout=2):
    """(status, body text) or (None, error string) when nothing answers."""
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (ip, port, path),
                                    timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (OSError, urllib.error.URLError) as e:
        return None, str(e)


def listening(ip, port=8080):
    try:
        with socket.create_connection((ip, port), timeout=1):
            return True
    except OSError:
        return False


def procs(tag):
    """{pid: (argv list, env dict)} of live processes whose environment
    carries E2E_TAG=tag (zombies excluded)."""
    out = {}
    needle = ("E2E_TAG=%s" % tag).encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                raw = f.read()
            if needle not in raw.split(b"\0"):
                continue
            with open("/proc/%s/stat" % d) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = [a.decode() for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        env = dict(kv.decode(errors="replace").split("=", 1)
                   for kv in raw.split(b"\0") if b"=" in kv)
        out[int(d)] = (argv, env)
    return out


def app_procs(tag):
    """{pid: env} of the live testapp processes of tag."""
    return {pid: env for pid, (argv, env) in procs(tag).items()
            if len(argv) > 1 and argv[1] == "testapp"}


def new_tag():
    return uuid.uuid4().hex[:12]


def rollout_status(s, name="web", timeout=90):
    return s.v6("rollout", "status", "deployment/" + name, "--timeout", "%ds" % timeout,
                timeout=timeout + 15)


def start_rollout_status(s, name="web", timeout=90):
    env = dict(os.environ, V6_SERVER=s.url)
    return subprocess.Popen([V6, "rollout", "status", "deployment/" + name,
                             "--timeout", "%ds" % timeout], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p, timeout):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("rollout status still running after %ds: %s%s" % (
            timeout, out, err))
    return p.returncode, out, err


def settled(s, name, replicas, version):
    """The pods of name are exactly `replicas` Ready pods of version, none
    terminating."""
    ps = list_pods(s, name)
    return (len(ps) == replicas and all(
        ver(p) == version and is_ready(p) and not terminating(p) for p in ps)) and ps


def start_v1(s, tag, name="web", replicas=3, **kw):
    apply(s, deployment(name, "v1", replicas, tag=tag, **kw))
    r = rollout_status(s, name, 60)
    assert r.returncode == 0, (r.stdout, r.stderr, s.log())
    return wait_for("%d Ready v1 pods" % replicas,
                    lambda: settled(s, name, replicas, "v1"), timeout=20)


def version_at(ip):
    status, body = http_get(ip)
    if status != 200:
        return None
    return json.loads(body)["version"]


# ---------------------------------------------------------------- stories

def test_readiness_gates_rolling_update(server):
    """maxSurge 1, maxUnavailable 0, the new version Ready only after 2 s:
    never fewer than 3 Ready pods, an old pod goes only after a new one is
    Ready, and no v1 process is left at the end."""
    s, tag = server, new_tag()
    old = start_v1(s, tag)
    old_ips = {p["status"]["podIP"] for p in old}
    old_names = {p["metadata"]["name"] for p in old}
    assert all(version_at(ip) == "v1" for ip in old_ips)

    apply(s, deployment("web", "v2", 3, args=["--slow-start", "2s"], tag=tag))
    t0 = time.time()
    rs = start_rollout_status(s)
    samples = []
    while rs.poll() is None and time.time() - t0 < 90:
        ps = list_pods(s, "web")
        live_old = [p for p in ps if ver(p) == "v1" and not terminating(p)]
        ready = [p for p in ps if is_ready(p) and not terminating(p)]
        new_ready = [p for p in ready if ver(p) == "v2"]
        samples.append((time.time() - t0, len(ready), len(live_old), len(new_ready)))
        time.sleep(0.05)
    code, out, err = finish(rs, 5)
    took = time.time() - t0
    assert code == 0, (out, err, s.log())
    assert "successfully rolled out" in out
    # three pods, each Ready only after 2 s: at least ~6 s when gated
    assert took >= 5.5, (took, samples[-5:])
    low = [x for x in samples if x[1] < 3]
    assert not low, "fewer than 3 Ready pods at (t, ready, old, newReady): %r" % low[:5]
    # an old pod leaves only once as many new pods are Ready as old ones left
    early = [x for x in samples if 3 - x[2] > x[3]]
    assert not early, "old pod removed before its replacement was Ready: %r" % early[:5]

    new = wait_for("3 Ready v2 pods", lambda: settled(s, "web", 3, "v2"), timeout=15)
    assert not old_names & {p["metadata"]["name"] for p in new}
    for p in new:
        assert version_at(p["status"]["podIP"]) == "v2"
    # the old version's processes are gone
    wait_for("no v1 process", lambda: not any(
        env.get("POD_NAME") in old_names for env in app_procs(tag).values()), timeout=10)
    for ip in old_ips:
        assert version_at(ip) in (None, "v2"), ip   # gone, or the IP reused by v2
    assert len(app_procs(tag)) == 3


def test_progress_deadline_exceeded_old_pods_keep_serving(server):
    s, tag = server, new_tag()
    old = start_v1(s, tag)
    apply(s, deployment("web", "v2", 3, args=["--slow-start", "1h"], tag=tag,
                        progressDeadlineSeconds=5))
    t0 = time.time()
    r = rollout_status(s, "web", 60)
    took = time.time() - t0
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "exceeded its progress deadline" in r.stdout + r.stderr, (r.stdout, r.stderr)
    assert 4 <= took <= 20, took
    d = get_deploy(s)
    conds = {c["type"]: c for c in d["status"]["conditions"]}
    assert conds["Progressing"]["status"] == "False"
    assert conds["Progressing"]["reason"] == "ProgressDeadlineExceeded"
    # the old pods are untouched and keep answering v1
    ps = list_pods(s, "web")
    live_old = [p for p in ps if ver(p) == "v1" and not terminating(p)]
    assert {p["metadata"]["name"] for p in live_old} == {p["metadata"]["name"] for p in old}
    for p in live_old:
        assert is_ready(p)
        assert version_at(p["status"]["podIP"]) == "v1"
    new = [p for p in ps if ver(p) == "v2"]
    assert len(new) == 1 and not is_ready(new[0])     # maxSurge 1
    st, body = http_get(new[0]["status"]["podIP"], "/readyz")
    assert st == 503, (st, body)


def test_rollout_undo_brings_back_v1(server):
    s, tag = server, new_tag()
    start_v1(s, tag)
    apply(s, deployment("web", "v2", 3, tag=tag))
    r = rollout_status(s, "web", 60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    v2 = wait_for("v2 settled", lambda: settled(s, "web", 3, "v2"))
    assert all(version_at(p["status"]["podIP"]) == "v2" for p in v2)
    assert get_deploy(s)["metadata"]["annotations"][REV] == "2"

    r = s.v6("rollout", "undo", "deployment/web")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "rolled back" in r.stdout, r.stdout
    r = rollout_status(s, "web", 60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    back = wait_for("v1 settled", lambda: settled(s, "web", 3, "v1"))
    for p in back:
        assert version_at(p["status"]["podIP"]) == "v1"
    assert get_deploy(s)["metadata"]["annotations"][REV] == "3"
    wait_for("3 testapp processes", lambda: len(app_procs(tag)) == 3, timeout=10)
    # the command line says which version each process is
    for pid, (argv, _) in procs(tag).items():
        if len(argv) > 1 and argv[1] == "testapp":
            assert argv[argv.index("--version-string") + 1] == "v1", argv
    hist = s.v6("rollout", "history", "deployment/web", check=True).stdout
    revs = [int(line.split()[0]) for line in hist.splitlines()[1:]
            if line.strip() and line.split()[0].isdigit()]
    assert revs == [2, 3], hist


def test_recreate_never_runs_both_versions(server):
    s, tag = server, new_tag()
    recreate = {"type": "Recreate"}
    start_v1(s, tag, strategy=recreate)
    apply(s, deployment("web", "v2", 3, tag=tag, strategy=recreate))
    t0 = time.time()
    rs = start_rollout_status(s)
    both_api, both_proc = [], []
    while rs.poll() is None and time.time() - t0 < 60:
        ps = list_pods(s, "web")
        running = {ver(p) for p in ps if p.get("status", {}).get("phase") == "Running"}
        if running >= {"v1", "v2"}:
            both_api.append((round(time.time() - t0, 2), [
                (p["metadata"]["name"], ver(p), terminating(p)) for p in ps]))
        versions = {argv[argv.index("--version-string") + 1]
                    for argv, _ in procs(tag).values()
                    if len(argv) > 1 and argv[1] == "testapp"}
        if versions >= {"v1", "v2"}:
            both_proc.append(round(time.time() - t0, 2))
        time.sleep(0.03)
    code, out, err = finish(rs, 5)
    assert code == 0, (out, err)
    assert not both_api, "v1 and v2 pods Running together: %r" % both_api[:3]
    assert not both_proc, "v1 and v2 processes alive together at %r" % both_proc[:5]
    new = wait_for("v2 settled", lambda: settled(s, "web", 3, "v2"))
    assert all(version_at(p["status"]["podIP"]) == "v2" for p in new)


def test_liveness_failure_restarts_testapp(server):
    s, tag = server, new_tag()
    c = app_container("v1", ["--fail-liveness-after", "2s"], tag, livenessProbe={
        "httpGet": {"path": "/healthz", "port": "http"},
        "periodSeconds": 1, "failureThreshold": 2})
    apply(s, pod_manifest("live", [c], terminationGracePeriodSeconds=2))
    pod = wait_for("a restart", lambda: (lambda p: p if (ctr_status(p) or {}).get(
        "restartCount", 0) >= 1 else None)(get_pod(s, "live")), timeout=20)
    cs = ctr_status(pod)
    assert cs["lastState"]["terminated"]["exitCode"] in (0, 143, 137)
    desc = s.v6("describe", "pod", "live", check=True).stdout
    assert re.search(r"Unhealthy\s.*Liveness probe failed", desc), desc
    assert re.search(r"Killing\s.*failed liveness probe", desc), desc
    prev = s.v6("logs", "live", "--previous")
    assert prev.returncode == 0, (prev.stdout, prev.stderr)
    prev_lines = [json.loads(x) for x in prev.stdout.splitlines() if x.startswith("{")]
    prev_listen = [x for x in prev_lines if x.get("msg") == "listening"]
    assert len(prev_listen) == 1, prev.stdout
    # the previous instance was stopped with SIGTERM and drained
    assert any("SIGTERM" in x.get("msg", "") for x in prev_lines), prev.stdout
    wait_for("current instance listening", lambda: [
        json.loads(x) for x in s.v6("logs", "live").stdout.splitlines()
        if '"listening"' in x], timeout=10)
    # the logged pid is the one in the container's own PID namespace: the
    # instances are told apart by their host PIDs (ctr.pid of each attempt)
    host = [conftest.read_pid(p) for p in sorted(glob.glob(os.path.join(
        s.data_dir, "node", "containers", pod["metadata"]["uid"], "app-*", "ctr.pid")))]
    assert len(host) >= 2 and host[-1] != host[0], host
    alive = [pid for pid in app_procs(tag)]
    assert alive == [ctr_pid(s, get_pod(s, "live"))], (alive, host)


def restart_times(s, name, count, timeout):
    """Polls the pod; returns the times (time.time()) at which restartCount
    reached 1..count, and the CrashLoopBackOff messages seen meanwhile."""
    seen, msgs, deadline = {}, set(), time.time() + timeout
    while len(seen) < count and time.time() < deadline:
        cs = ctr_status(get_pod(s, name))
        if cs:
            n = cs["restartCount"]
            for k in range(1, n + 1):
                seen.setdefault(k, time.time())
            w = cs["state"].get("waiting", {})
            if w.get("reason") == "CrashLoopBackOff":
                msgs.add(w.get("message", ""))
        time.sleep(0.02)
    return [seen[k] for k in sorted(seen)], msgs


def test_crash_loop_backoff_schedule_real_pod(make_server):
    """--max-backoff 4s: the first restart is immediate, later ones wait the
    (capped) back-off of 4 s after each exit; CrashLoopBackOff in get pods."""
    s, tag = make_server("--max-backoff", "4s"), new_tag()
    c = app_container("v1", ["--crash-after", "500ms", "--exit-code", "3"], tag)
    t0 = time.time()
    apply(s, pod_manifest("crash", [c]))
    table = {}

    def watch_get():
        end = time.time() + 8
        while time.time() < end and "CrashLoopBackOff" not in table.get("out", ""):
            table["out"] = s.v6("get", "pods").stdout
            time.sleep(0.2)
    th = threading.Thread(target=watch_get)
    th.start()
    times, msgs = restart_times(s, "crash", 3, timeout=25)
    th.join()
    assert len(times) == 3, (times, s.log())
    # run 0.5 s, exit, immediate restart: restart 1 within ~0.5 s of the first start
    first = times[0] - t0
    assert first < 1.5, first
    gaps = [times[1] - times[0], times[2] - times[1]]
    for g in gaps:               # 0.5 s running + 4 s back-off
        assert 4.3 <= g <= 5.3, gaps
    assert any(m.startswith("back-off 4s restarting failed container=app pod=crash_default(")
               for m in msgs), msgs
    assert re.search(r"^crash\s+0/1\s+CrashLoopBackOff\s+\d+", table.get("out", ""), re.M), \
        table.get("out")
    cs = ctr_status(get_pod(s, "crash"))
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    prev = s.v6("logs", "crash", "--previous", check=True)
    assert "crashing as configured by --crash-after" in prev.stdout + prev.stderr


COUNTER = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done"


def counter_deployment(version, tag):
    c = {"name": "app", "image": "sh", "command": ["sh", "-c", COUNTER],
         "env": [{"name": "E2E_TAG", "value": tag}, {"name": "VERSION", "value": version}]}
    return deployment("web", version, 3, tag=tag, container=c, grace=1, minReadySeconds=2)


def counter_lines(s, pod):
    out = s.v6("logs", pod, check=True).stdout
    return [int(x.split()[1]) for x in out.splitlines()]


def ctr_pid(s, pod):
    uid = pod["metadata"]["uid"]
    cid = ctr_status(pod)["containerID"]            # process://UID/app-N
    d = os.path.join(s.data_dir, "node", "containers", uid, cid.rsplit("/", 1)[1])
    with open(os.path.join(d, "ctr.pid")) as f:
        return int(f.read().split()[0])


def test_kill_9_server_mid_rollout_of_real_pods(server):
    s, tag = server, new_tag()
    apply(s, counter_deployment("v1", tag))
    assert rollout_status(s, "web", 60).returncode == 0
    wait_for("v1 settled", lambda: settled(s, "web", 3, "v1"))
    apply(s, counter_deployment("v2", tag))
    # kill once a v2 pod runs and the rollout is still going
    survivor = wait_for("a running v2 pod", lambda: [
        p for p in list_pods(s, "web") if ver(p) == "v2" and
        p.get("status", {}).get("phase") == "Running"], timeout=20)[0]
    name = survivor["metadata"]["name"]
    before = wait_for("the survivor's first lines", lambda: counter_lines(s, name),
                      timeout=10)
    d = get_deploy(s)
    assert d["status"].get("updatedReplicas", 0) < 3, d["status"]
    s.kill(signal.SIGKILL)
    time.sleep(2)       # a deliberate window with the server away: the pods keep writing
    s.start()
    r = rollout_status(s, "web", 120)   # see test_min_ready_seconds_... for its speed
    assert r.returncode == 0, (r.stdout, r.stderr, s.log())
    ps = wait_for("3 v2 pods", lambda: settled(s, "web", 3, "v2"), timeout=20)
    names = {p["metadata"]["name"] for p in ps}
    assert name in names
    # each pod runs exactly once: one `sh` per pod name, nothing else of the tag
    def shells():
        return sorted(env.get("HOSTNAME") for argv, env in procs(tag).values()
                      if argv[:2] == ["sh", "-c"])
    wait_for("exactly one shell per pod", lambda: shells() == sorted(names), timeout=10)
    pids = [ctr_pid(s, p) for p in ps]
    assert len(set(pids)) == 3
    for pid in pids:
        os.kill(pid, 0)
        with open("/proc/%d/environ" % pid, "rb") as f:
            assert ("E2E_TAG=%s" % tag).encode() in f.read().split(b"\0")
    # the survivor's log has every line, before, during and after the kill
    after = counter_lines(s, name)
    assert after[:len(before)] == before
    assert after == list(range(len(after))), after[:50]
    assert len(after) >= len(before) + 20, (len(before), len(after))


def test_grace_period_ends_ignored_sigterm(server):
    s, tag = server, new_tag()
    c = app_container("v1", ["--ignore-sigterm"], tag)
    apply(s, pod_manifest("stubborn", [c], terminationGracePeriodSeconds=2))
    pod = wait_for("Running", lambda: (lambda p: p if p and p["status"].get(
        "phase") == "Running" else None)(get_pod(s, "stubborn")))
    ip = pod["status"]["podIP"]
    wait_for("listening", lambda: listening(ip), timeout=10)
    pids = list(app_procs(tag))
    assert len(pids) == 1
    t = time.time()
    s.v6("delete", "pod", "stubborn", "--wait=false", check=True)
    time.sleep(1)       # inside the 2 s grace period: nothing to wait for
    os.kill(pids[0], 0)                         # SIGTERM ignored: still there
    wait_for("pod gone", lambda: get_pod(s, "stubborn") is None, timeout=15)
    took = time.time() - t
    assert 1.8 <= took <= 5, took
    assert not app_procs(tag)
    assert not listening(ip)


def test_env_and_downward_api_reach_the_app(server):
    s, tag = server, new_tag()
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "settings", "namespace": NS},
          "data": {"GREETING": "hello", "COLOR": "blue"}}
    c = app_container("v1", ["--version-string", "$(GREETING)-$(POD_NAME)"], tag,
                          envFrom=[{"configMapRef": {"name": "settings"}}],
                          readinessProbe=READYZ)
    c["env"].append({"name": "WHERE", "value": "at-$(POD_IP)"})
    apply(s, cm, pod_manifest("envy", [c]))
    pod = wait_for("Ready", lambda: (lambda p: p if p and is_ready(p) else None)(
        get_pod(s, "envy")), timeout=20)
    ip = pod["status"]["podIP"]
    st, body = http_get(ip, "/env")
    assert st == 200, body
    env = json.loads(body)
    assert env["POD_IP"] == ip
    assert env["POD_NAME"] == "envy"
    assert env["POD_NAMESPACE"] == NS
    assert env["GREETING"] == "hello" and env["COLOR"] == "blue"
    assert env["WHERE"] == "at-" + ip
    assert env["HOSTNAME"] == "envy"
    st, body = http_get(ip, "/")
    assert st == 200
    root = json.loads(body)
    assert root["version"] == "hello-envy"      # $(VAR) expanded in args
    assert root["pod"] == "envy" and root["ip"] == ip and root["namespace"] == NS


def test_scale_3_10_1_runs_that_many_processes(server):
    s, tag = server, new_tag()
    start_v1(s, tag)
    for n in (3, 10, 1):
        r = s.v6("scale", "deployment/web", "--replicas", n)
        assert r.returncode == 0, (r.stdout, r.stderr)
        wait_for("%d Ready pods" % n, lambda: settled(s, "web", n, "v1"), timeout=40)
        wait_for("%d testapp processes" % n, lambda: len(app_procs(tag)) == n, timeout=15)
        ps = list_pods(s, "web")
        names = {p["metadata"]["name"] for p in ps}
        assert {e["POD_NAME"] for e in app_procs(tag).values()} == names
        for p in ps:
            assert version_at(p["status"]["podIP"]) == "v1"
        with conftest.Watch(s, PODS + "?labelSelector=app%3Dweb") as w:
            w.assert_quiet(1, "the pod count stays %d" % n,   # and it stays that many
                           lambda ev: ev["type"] in ("ADDED", "DELETED"))
        assert len(app_procs(tag)) == n
        assert len(list_pods(s, "web")) == n
        # and the node keeps state for exactly those pods
        uids = {p["metadata"]["uid"] for p in ps}
        wait_for("container dirs of the %d pods only" % n, lambda: set(os.listdir(
            os.path.join(s.data_dir, "node", "containers"))) == uids, timeout=5)


def test_min_ready_seconds_rollout_without_probes_is_prompt(server):
    """Pods without probes are Ready as soon as they run; with minReadySeconds 2
    the ReplicaSet looks again 2 s later, and the Deployment is complete right
    after (Kubernetes: ~2-3 s). Nothing else happens on the server meanwhile,
    so this also checks that a controller's delayed work is committed at once
    rather than on the next unrelated wake-up of the server."""
    s, tag = server, new_tag()
    apply(s, counter_deployment("v1", tag))
    t0 = time.time()
    r = rollout_status(s, "web", 60)
    took = time.time() - t0
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert took < 5, "3 replicas with minReadySeconds 2 took %.1fs to roll out" % took
    apply(s, counter_deployment("v2", tag))
    t0 = time.time()
    r = rollout_status(s, "web", 60)
    took = time.time() - t0
    assert r.returncode == 0, (r.stdout, r.stderr)
    # three surge steps of ~2-3 s each
    assert took < 12, "rolling 3 replicas with minReadySeconds 2 took %.1fs" % took
