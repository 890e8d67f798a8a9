"""Pods on the process runtime, end to end: a real `v6 server` with its node
agent runs plain `sh` workloads. Phases, logs, env, CrashLoopBackOff,
probes, init containers, graceful deletion and adoption after kill -9 of
the server. Every container a test started is stopped by its PID at the
end (workloads outlive the server by design)."""
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import conftest
from conftest import Server


def node_agent_running(s):
    status, _, _ = s.request("GET", "/apis/metrics.k8s.io/v1beta1")
    return status == 200


@pytest.fixture
def node():
    """A server with a node agent and a low back-off cap (--max-backoff)."""
    made = []

    def make(*extra):
        d = tempfile.TemporaryDirectory(prefix="v6-pods-")
        s = Server(d.name, list(extra))
        made.append((s, d))
        s.start()
        assert node_agent_running(s), "the node agent's metrics.k8s.io is not served"
        return s
    yield make
    for s, d in made:
        s.close()
        d.cleanup()


def apply(s, manifest):
    p = s.v6("apply", "-f", "-", input=json.dumps(manifest), check=True)
    return p


def pod_manifest(name, containers, restart="Always", **spec):
    body = {"restartPolicy": restart, "containers": containers}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"}, "spec": body}


def sh(name, script, **extra):
    c = {"name": name, "image": "sh", "command": ["sh", "-c", script]}
    c.update(extra)
    return c


def get_pod(s, name):
    status, obj = s.json("GET", "/api/v1/namespaces/default/pods/" + name)
    return obj if status == 200 else None


def wait_for(what, fn, timeout=20, interval=0.05):
    """conftest.wait_for with this file's argument order."""
    return conftest.wait_for(fn, timeout, what, interval)


def read_pid(workdir, s, pod):
    """The host PID of pod's shell once it wrote its $$ to workdir/pid: $$ is
    its PID in its own PID namespace, the host's is in its ctr.pid."""
    path = os.path.join(workdir, "pid")
    text = open(path).read().strip() if os.path.exists(path) else ""
    uid = (get_pod(s, pod) or {}).get("metadata", {}).get("uid")
    if not text.isdigit() or not uid:
        return None
    pids = glob.glob(os.path.join(s.data_dir, "node", "containers", uid, "c-*", "ctr.pid"))
    return conftest.read_pid(pids[0]) or None if len(pids) == 1 else None


def ctr_status(pod, name):
    for c in pod.get("status", {}).get("containerStatuses", []):
        if c["name"] == name:
            return c
    return None


def phase(s, name):
    p = get_pod(s, name)
    return p and p.get("status", {}).get("phase")


def events(s, reason):
    _, lst = s.json("GET", "/api/v1/namespaces/default/events")
    return [e for e in lst["items"] if e["reason"] == reason]


def test_pod_prints_env_and_succeeds_with_logs(node):
    s = node()
    apply(s, pod_manifest("hello", [sh(
        "c", "echo hello $(WHO) ip=$POD_IP name=$MY_NAME host=$HOSTNAME",
        env=[{"name": "WHO", "value": "world"},
             {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
             {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])],
        restart="Never"))
    wait_for("Succeeded", lambda: phase(s, "hello") == "Succeeded")
    pod = get_pod(s, "hello")
    ip = pod["status"]["podIP"]
    assert s.in_range(ip, s.pod_cidr), (ip, s.pod_cidr)
    assert pod["spec"]["nodeName"]
    cs = ctr_status(pod, "c")
    assert cs["state"]["terminated"]["exitCode"] == 0
    assert cs["state"]["terminated"]["reason"] == "Completed"
    assert cs["containerID"] == "process://%s/c-0" % pod["metadata"]["uid"]
    conds = {c["type"]: c for c in pod["status"]["conditions"]}
    assert conds["PodScheduled"]["status"] == "True"
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "PodCompleted"
    out = s.v6("logs", "hello", check=True).stdout
    assert out == "hello world ip=%s name=hello host=hello\n" % ip
    assert {"Scheduled", "Created", "Started"} <= {
        e["reason"] for e in s.json("GET", "/api/v1/namespaces/default/events")[1]["items"]}


PODS = "/api/v1/namespaces/default/pods"


def ready_in(pod):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def ready(s, name):
    return ready_in(get_pod(s, name))


def test_idle_node_writes_nothing(node):
    s = node()
    apply(s, pod_manifest("idle", [sh("c", "sleep 1000")]))
    wait_for("Running and Ready", lambda: phase(s, "idle") == "Running" and ready(s, "idle"))
    with conftest.Watch(s, PODS) as w:
        w.assert_quiet(2, "an idle node writes nothing")


def test_crash_loop_backoff_schedule(node):
    s = node()
    apply(s, pod_manifest("crash", [sh("c", "echo run; exit 3")]))
    # first restart: immediate; then back-off 10 s, then 20 s (kubelet's schedule)
    pod = wait_for("first restart", lambda: (lambda p: p if p and ctr_status(p, "c") and
                   ctr_status(p, "c")["restartCount"] >= 1 else None)(get_pod(s, "crash")),
                   timeout=5)
    t1 = time.time()
    cs = wait_for("CrashLoopBackOff 10s", lambda: (lambda c: c if c and c["state"].get(
        "waiting", {}).get("reason") == "CrashLoopBackOff" else None)(
        ctr_status(get_pod(s, "crash"), "c")), timeout=5)
    uid = pod["metadata"]["uid"]
    assert cs["state"]["waiting"]["message"] == (
        "back-off 10s restarting failed container=c pod=crash_default(%s)" % uid)
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    assert cs["restartCount"] == 1
    wait_for("second restart", lambda: ctr_status(get_pod(s, "crash"), "c")["restartCount"] >= 2,
             timeout=15)
    waited = time.time() - t1
    assert 8.5 <= waited <= 12.5, waited
    cs = wait_for("back-off 20s", lambda: (lambda c: c if "back-off 20s" in c["state"].get(
        "waiting", {}).get("message", "") else None)(ctr_status(get_pod(s, "crash"), "c")),
        timeout=5)
    assert phase(s, "crash") == "Running"
    assert events(s, "BackOff")
    assert s.v6("logs", "crash", "--previous", check=True).stdout == "run\n"


def test_backoff_cap_is_configurable(node):
    s = node("--max-backoff", "2s")
    apply(s, pod_manifest("fast", [sh("c", "exit 1")]))
    pod = wait_for("4 restarts", lambda: (lambda p: p if p and ctr_status(p, "c") and
                   ctr_status(p, "c")["restartCount"] >= 4 else None)(get_pod(s, "fast")),
                   timeout=15)
    msg = wait_for("capped message", lambda: ctr_status(get_pod(s, "fast"), "c")["state"].get(
        "waiting", {}).get("message"), timeout=5)
    assert msg.startswith("back-off 2s ")


def test_liveness_failure_restarts_container(node):
    s = node()
    apply(s, pod_manifest("live", [sh("c", "sleep 1000", livenessProbe={
        "exec": {"command": ["sh", "-c", "exit 1"]}, "periodSeconds": 1,
        "failureThreshold": 2, "terminationGracePeriodSeconds": 1})]))
    pod = wait_for("restart after liveness failure", lambda: (lambda p: p if p and ctr_status(
        p, "c") and ctr_status(p, "c")["restartCount"] >= 1 else None)(get_pod(s, "live")),
        timeout=15)
    last = ctr_status(pod, "c")["lastState"]["terminated"]
    assert last["exitCode"] in (143, 137)
    assert any("failed liveness probe" in e["message"] for e in events(s, "Killing"))
    assert any(e["message"].startswith("Liveness probe failed") for e in events(s, "Unhealthy"))


def test_readiness_gates_ready_condition(node, workdir):
    s = node()
    flag = os.path.join(workdir, "ready")
    apply(s, pod_manifest("ready", [sh("c", "sleep 1000", workingDir=workdir, readinessProbe={
        "exec": {"command": ["test", "-f", "ready"]}, "periodSeconds": 1})]))
    with conftest.Watch(s, PODS) as w:
        wait_for("Running", lambda: phase(s, "ready") == "Running")
        w.assert_quiet(1.5, "the probe fails while the file is missing",
                       lambda ev: ready_in(ev["object"]))
    pod = get_pod(s, "ready")
    conds = {c["type"]: c for c in pod["status"]["conditions"]}
    assert conds["Ready"]["status"] == "False"
    assert conds["ContainersReady"]["message"] == "containers with unready status: [c]"
    assert ctr_status(pod, "c")["ready"] is False
    open(flag, "w").close()
    wait_for("Ready", lambda: {c["type"]: c["status"] for c in get_pod(
        s, "ready")["status"]["conditions"]}["Ready"] == "True", timeout=5)
    os.unlink(flag)
    wait_for("not Ready again", lambda: {c["type"]: c["status"] for c in get_pod(
        s, "ready")["status"]["conditions"]}["Ready"] == "False", timeout=8)


def test_http_readiness_on_pod_ip(node):
    s = node()
    apply(s, pod_manifest("web", [{
        "name": "web", "image": "python3",
        "command": ["python3", "-m", "http.server", "--bind", "$(POD_IP)", "8080"],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}}]))
    wait_for("Ready", lambda: (lambda p: p and ctr_status(p, "web") and
             ctr_status(p, "web")["ready"])(get_pod(s, "web")), timeout=15)


def test_init_containers_run_in_order(node, workdir):
    s = node()
    apply(s, pod_manifest("init", [sh("app", "cat order", workingDir=workdir)],
                          restart="Never", initContainers=[
                              sh("one", "sleep 0.3; echo one >> order", workingDir=workdir),
                              sh("two", "echo two >> order", workingDir=workdir)]))
    wait_for("Succeeded", lambda: phase(s, "init") == "Succeeded")
    pod = get_pod(s, "init")
    assert [c["state"]["terminated"]["reason"] for c in
            pod["status"]["initContainerStatuses"]] == ["Completed", "Completed"]
    assert s.v6("logs", "init", check=True).stdout == "one\ntwo\n"


def test_delete_sends_sigterm_then_pod_is_gone(node, workdir):
    s = node()
    apply(s, pod_manifest("term", [sh(
        "c", "trap 'echo TERM > got; exit 0' TERM; echo $$$$ > pid; while :; do sleep 0.1; done",
        workingDir=workdir)]))
    wait_for("Running", lambda: phase(s, "term") == "Running")
    pid = wait_for("pid", lambda: read_pid(workdir, s, "term"))
    t = time.time()
    s.v6("delete", "pod", "term", "--wait=false", check=False)
    wait_for("pod gone", lambda: get_pod(s, "term") is None, timeout=10)
    assert time.time() - t < 5
    assert open(os.path.join(workdir, "got")).read() == "TERM\n"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_grace_period_ends_with_sigkill(node, workdir):
    s = node()
    apply(s, pod_manifest("stubborn", [sh(
        "c", "trap '' TERM; echo $$$$ > pid; sleep 1000", workingDir=workdir)],
        terminationGracePeriodSeconds=2))
    wait_for("Running", lambda: phase(s, "stubborn") == "Running")
    pid = wait_for("pid", lambda: read_pid(workdir, s, "stubborn"))
    t = time.time()
    s.v6("delete", "pod", "stubborn", "--wait=false", check=False)
    time.sleep(1)       # inside the 2 s grace period: nothing to wait for
    os.kill(pid, 0)                 # still there: SIGTERM is ignored
    wait_for("pod gone", lambda: get_pod(s, "stubborn") is None, timeout=10)
    took = time.time() - t
    assert 1.8 <= took <= 6, took
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_kill_9_server_adopts_running_containers(node, workdir):
    s = node()
    apply(s, pod_manifest("keep", [sh("c", "echo $$$$ > pid; echo started; sleep 1000",
                                      workingDir=workdir)]))
    apply(s, pod_manifest("quit", [sh("c", "sleep 2; exit 3")], restart="Never"))
    wait_for("Running", lambda: phase(s, "keep") == "Running" and phase(s, "quit") == "Running")
    pid = wait_for("pid", lambda: read_pid(workdir, s, "keep"))
    before = get_pod(s, "keep")
    quit_uid = get_pod(s, "quit")["metadata"]["uid"]
    s.kill(signal.SIGKILL)
    os.kill(pid, 0)                 # the workload outlives the server
    # "quit" exits while the server is away (its shim records the exit)
    wait_for("quit's exit.json", lambda: glob.glob(os.path.join(
        s.data_dir, "node", "containers", quit_uid, "*", "exit.json")), timeout=10)
    s.start()
    with conftest.Watch(s, PODS) as w:
        wait_for("exit recorded", lambda: phase(s, "quit") == "Failed", timeout=10)
        quit_cs = ctr_status(get_pod(s, "quit"), "c")
        assert quit_cs["state"]["terminated"]["exitCode"] == 3
        w.assert_quiet(1, "the adopted container is not restarted", lambda ev: (
            ev["object"]["metadata"]["name"] == "keep" and
            (ctr_status(ev["object"], "c") or {}).get("restartCount", 0) > 0))
    after = get_pod(s, "keep")
    cs = ctr_status(after, "c")
    assert cs["restartCount"] == 0
    assert cs["containerID"] == ctr_status(before, "c")["containerID"]
    assert cs["state"]["running"]["startedAt"] == \
        ctr_status(before, "c")["state"]["running"]["startedAt"]
    assert read_pid(workdir, s, "keep") == pid
    os.kill(pid, 0)
    assert s.v6("logs", "keep", check=True).stdout == "started\n"
    # no duplicate: exactly one container dir for the pod
    uid = after["metadata"]["uid"]
    assert len(glob.glob(os.path.join(s.data_dir, "node", "containers", uid, "*"))) == 1
    # and the adopted container still terminates properly
    s.v6("delete", "pod", "keep", "--wait=false")
    wait_for("pod gone", lambda: get_pod(s, "keep") is None, timeout=10)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def statfs_type(path):
    return subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_container_state_lives_on_tmpfs_and_is_swept_with_its_data_dir(node):
    """STATE/containers links to a directory on tmpfs (containerd keeps its
    tasks' state in /run the same way): a container's files there cost no
    disk inode. A second server on the same data dir keeps using it (and
    adopts); once a data dir is gone (or made again without the link), the
    next server started anywhere removes its run dir."""
    if not any(statfs_type(r) == "tmpfs" and os.access(r, os.W_OK)
               for r in ("/run", "/dev/shm")):
        pytest.skip("no writable tmpfs at /run or /dev/shm")
    s = node()
    link = os.path.join(s.data_dir, "node", "containers")
    assert os.path.islink(link)
    ctrs = os.readlink(link)
    run = os.path.dirname(ctrs)     # RUN/containers: RUN has the owner file too
    assert statfs_type(run) == "tmpfs"
    assert (os.stat(os.path.dirname(run)).st_mode & 0o077) == 0
    apply(s, pod_manifest("st", [sh("c", "sleep 1000")]))
    wait_for("Running", lambda: phase(s, "st") == "Running")
    uid = get_pod(s, "st")["metadata"]["uid"]
    wait_for("ctr.pid on tmpfs", lambda: glob.glob(os.path.join(ctrs, uid, "c-*", "ctr.pid")),
             timeout=10)
    assert os.path.isfile(os.path.join(run, "pods", uid, "serviceaccount", "token"))
    s.kill(signal.SIGKILL)
    s.start()                       # the same data dir: the same run dir
    assert os.readlink(link) == ctrs
    wait_for("adopted", lambda: (ctr_status(get_pod(s, "st"), "c") or {}).get(
        "restartCount") == 0 and phase(s, "st") == "Running")
    s.v6("delete", "pod", "st", "--wait=false")
    wait_for("pod gone", lambda: get_pod(s, "st") is None, timeout=10)
    wait_for("its state removed", lambda: not os.path.exists(os.path.join(run, "pods", uid))
             and not os.path.exists(os.path.join(ctrs, uid)), timeout=10)
    s.close()
    shutil.rmtree(s.data_dir)       # made again empty: the fixture removes it
    os.mkdir(s.data_dir)
    assert os.path.isdir(run)
    old = time.time() - 3600        # older than the minute a new one is spared
    os.utime(os.path.join(run, "owner"), (old, old))
    node()
    assert not os.path.exists(run)


def test_runtime_class_must_exist(node):
    s = node()
    p = s.v6("apply", "-f", "-", input=json.dumps(
        pod_manifest("oci", [sh("c", "true")], runtimeClassName="kata")))
    assert p.returncode != 0
    assert 'pod rejected: RuntimeClass "kata" not found' in p.stderr
    assert get_pod(s, "oci") is None
    # the two V6 has exist from the start, each with its own handler
    rcs = s.json("GET", "/apis/node.k8s.io/v1/runtimeclasses", expect=200)[1]["items"]
    assert sorted((r["metadata"]["name"], r["handler"]) for r in rcs) == [
        ("process", "process"), ("runc", "runc")]


def test_missing_configmap_is_config_error(node):
    s = node()
    apply(s, pod_manifest("cfg", [sh("c", "echo $X", envFrom=[
        {"configMapRef": {"name": "settings"}}])]))
    cs = wait_for("config error", lambda: (lambda c: c if c and c["state"].get(
        "waiting", {}).get("reason") == "CreateContainerConfigError" else None)(
        ctr_status(get_pod(s, "cfg") or {}, "c")))
    assert cs["state"]["waiting"]["message"] == 'configmap "settings" not found'


def test_metrics_api_serves_pod_usage(node):
    s = node()
    apply(s, pod_manifest("busy", [sh("c", "while :; do :; done")]))
    wait_for("Running", lambda: phase(s, "busy") == "Running")
    m = wait_for("metrics", lambda: (lambda r: r[1] if r[0] == 200 else None)(s.json(
        "GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/busy")), timeout=25,
        interval=0.5)
    assert m["kind"] == "PodMetrics"
    cpu = m["containers"][0]["usage"]["cpu"]
    assert cpu.endswith("n") and int(cpu[:-1]) > 100 * 1000 * 1000   # > 100m
    assert m["containers"][0]["usage"]["memory"].endswith("Ki")


def test_containers_of_a_pod_start_together_with_their_pod_files(node):
    """The start jobs of a pod's containers run at once on the thread pool
    and each writes the pod's ServiceAccount files: none may trip over
    another's temporary file (a StartError, then a restart)."""
    s = node()
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    n = 8
    apply(s, pod_manifest("many", [sh("c%d" % i, "cat %s/namespace; echo; exec sleep 3600" % sa)
                                   for i in range(n)]))

    def all_running():
        cs = ((get_pod(s, "many") or {}).get("status") or {}).get("containerStatuses") or []
        return cs if len(cs) == n and all("running" in c["state"] for c in cs) else None
    cs = wait_for("all %d containers running" % n, all_running, timeout=40)
    for c in cs:
        assert c["restartCount"] == 0 and not c.get("lastState"), c
    for i in range(n):
        # Running is reported when the process runs; its first line reaches
        # the log file when the shim's pump has read it, a moment later
        out = wait_for("c%d's log line" % i, lambda: (lambda o: o if o.strip() else None)(
            s.v6("logs", "many", "-c", "c%d" % i, check=True).stdout), timeout=20)
        assert out.strip() == "default", (i, out)
