"""The runc runtime end to end: a busybox image built here with umoci from
Debian's busybox-static, imported into a real `v6 server`, and pods with
runtimeClassName: runc run from it by the real runc. Checked as a user
would: pod status, `v6 logs`, probes, `v6 exec`, and what runc itself lists
in the server's runc root (DATA/node/runc) after kill -9 of the server or
of a shim. Every runc container is deleted by the fixture, even on failure."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import TIMEOUT_SCALE, V6, delete_runc_containers, read_pid, wait_for
from test_images import ImageBuilder
from test_kubectl_exec import run_in_pty

BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "id", "cat", "echo", "sleep", "touch", "dd", "ls", "test", "env",
           "pwd", "hostname", "true", "false", "httpd", "mkdir", "readlink"]
IMAGE = "localhost/busybox:1"


def busybox_image(workdir):
    """busybox with its applets and an /etc/passwd; Cmd prints a line and
    sleeps, so that a pod without command runs the image's Cmd."""
    b = ImageBuilder(workdir, "bb")
    with open(BUSYBOX, "rb") as f:
        entries = [("bin", "dir", None), ("bin/busybox", "file", f.read())]
    entries += [("bin/" + a, "symlink", "busybox") for a in APPLETS]
    entries += [("etc", "dir", None),
                ("etc/passwd", "file", "root:x:0:0:root:/root:/bin/sh\n"
                 "app:x:1000:1000::/home/app:/bin/sh\n"),
                ("tmp", "dir", None)]
    b.layer(entries)
    subprocess.run(["umoci", "config", "--image", b.image, "--config.cmd", "/bin/sh",
                    "--config.cmd", "-c", "--config.cmd",
                    "echo from-image-cmd; exec sleep 3600",
                    "--config.env", "FROM_IMAGE=yes"], check=True, capture_output=True)
    return b.export("oci-archive", IMAGE)


@pytest.fixture(scope="module")
def image_tar(tmp_path_factory):
    return busybox_image(str(tmp_path_factory.mktemp("runc-image")))


@pytest.fixture
def rserver(make_server, image_tar):
    """A server whose default runtime is process (the suite's rule) with the
    busybox image imported; its runc containers are deleted at the end."""
    s = make_server()
    try:
        s.v6("image", "import", image_tar, check=True)
        yield s
    finally:
        delete_runc_containers(s.data_dir)


def runc_root(s):
    return os.path.join(s.data_dir, "node", "runc")


def runc_list(s):
    """[(id, pid, status)] of what runc knows in the server's root."""
    p = subprocess.run(["runc", "--root", runc_root(s), "list", "--format", "json"],
                       capture_output=True, text=True, timeout=30)
    return [(c["id"], c["pid"], c["status"]) for c in json.loads(p.stdout or "null") or []]


def pod(name, containers, restart="Always", **spec):
    spec.update(runtimeClassName="runc", restartPolicy=restart, containers=containers)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def ctr(command=None, name="app", **kw):
    c = {"name": name, "image": IMAGE}
    if command is not None:
        c["command"] = ["sh", "-c", command]
    c.update(kw)
    return c


def apply(s, obj):
    s.json("POST", "/api/v1/namespaces/default/pods", obj, expect=201)


def get_pod(s, name):
    return s.json("GET", "/api/v1/namespaces/default/pods/" + name, expect=200)[1]


def cstatus(s, name, i=0):
    sts = get_pod(s, name).get("status", {}).get("containerStatuses") or []
    return sts[i] if len(sts) > i else {}


def wait_running(s, name, timeout=30):
    wait_for(lambda: "running" in cstatus(s, name).get("state", {}),
             timeout, "pod %s running: %s" % (name, cstatus(s, name)))
    return cstatus(s, name)


def logs(s, name, *extra):
    return s.v6("logs", name, *extra).stdout


def wait_log(s, name, text, timeout=30):
    wait_for(lambda: text in logs(s, name), timeout,
             "%r in the log of %s: %r" % (text, name, logs(s, name)))


def test_pod_from_image_runs_logs_and_restarts(rserver):
    s = rserver
    apply(s, pod("hello", [ctr("echo hello from $HOSTNAME $FROM_IMAGE; id -u; exit 3",
                               securityContext={"runAsUser": 1234})]))
    wait_for(lambda: cstatus(s, "hello").get("restartCount", 0) >= 1, 60,
             "a restart: %s" % cstatus(s, "hello"))
    st = cstatus(s, "hello")
    assert st["lastState"]["terminated"]["exitCode"] == 3
    assert st["lastState"]["terminated"]["reason"] == "Error"
    out = logs(s, "hello", "--previous")
    assert "hello from hello yes\n" in out     # env: HOSTNAME, then the image's env
    assert "1234\n" in out                      # runAsUser


def test_image_cmd_and_args_rules(rserver):
    s = rserver
    apply(s, pod("cmd", [ctr()]))               # no command: the image's Cmd
    wait_log(s, "cmd", "from-image-cmd")
    # args alone replace the image's Cmd (no Entrypoint here: args run)
    apply(s, pod("args", [ctr(args=["sh", "-c", "echo args-replace-cmd; sleep 3600"])]))
    wait_log(s, "args", "args-replace-cmd")
    assert "from-image-cmd" not in logs(s, "args")


def test_exec_probe_runs_inside_the_container(rserver):
    s = rserver
    # /ready-marker exists only inside the container: the probe sees it
    # there, never on the host.
    assert not os.path.exists("/ready-marker")
    apply(s, pod("probed", [ctr("touch /ready-marker; exec sleep 3600",
                                readinessProbe={"exec": {"command": ["test", "-f",
                                                                     "/ready-marker"]},
                                                "periodSeconds": 1})]))

    def ready():
        conds = get_pod(s, "probed").get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
    wait_for(ready, 30, "pod Ready through the exec probe")


def test_post_start_hook_runs_inside_the_container(rserver):
    s = rserver
    apply(s, pod("hooked", [ctr("exec sleep 3600", lifecycle={"postStart": {"exec": {
        "command": ["sh", "-c", "echo hook-ran-in-$(hostname) > /tmp/hook"]}}})]))
    wait_running(s, "hooked")
    out = wait_for(lambda: s.v6("exec", "hooked", "--", "cat", "/tmp/hook").stdout, 30,
                   "the postStart hook's file inside the container")
    assert out == "hook-ran-in-hooked\n"     # the container's hostname, its /tmp
    assert wait_running(s, "hooked")["restartCount"] == 0


def test_read_only_root_filesystem_is_enforced(rserver):
    s = rserver
    apply(s, pod("ro", [ctr("touch /x && echo wrote || echo write-failed; exec sleep 3600",
                            securityContext={"readOnlyRootFilesystem": True})]))
    wait_log(s, "ro", "write-failed")
    assert "Read-only file system" in logs(s, "ro")
    assert "wrote" not in logs(s, "ro")


def test_run_as_non_root_refused_for_a_root_image(rserver):
    s = rserver
    apply(s, pod("nonroot", [ctr("id", securityContext={"runAsNonRoot": True})]))
    wait_for(lambda: cstatus(s, "nonroot").get("state", {}).get("waiting", {}).get(
        "reason") == "CreateContainerConfigError", 30,
        "CreateContainerConfigError: %s" % cstatus(s, "nonroot"))
    msg = cstatus(s, "nonroot")["state"]["waiting"]["message"]
    assert msg.startswith("container has runAsNonRoot and image will run as root")
    assert runc_list(s) == []


def test_memory_limit_oom_killed(rserver):
    s = rserver
    c = ctr(resources={"limits": {"memory": "16Mi"}})
    c["command"] = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]
    apply(s, pod("oom", [c], restart="Never"))
    wait_for(lambda: "terminated" in cstatus(s, "oom").get("state", {}), 60,
             "terminated: %s" % cstatus(s, "oom"))
    t = cstatus(s, "oom")["state"]["terminated"]
    assert (t["reason"], t["exitCode"]) == ("OOMKilled", 137)


def test_server_kill9_adopts_running_containers_without_duplicates(rserver):
    s = rserver
    apply(s, pod("keep", [ctr("echo up; exec sleep 3600")]))
    # and one with a terminal: its shim, not the server, holds runc's pty
    # master, so the new server's attach drives the same terminal (a long
    # name: its dir's path is too long for a socket's, runc's console
    # socket is a temporary one in /tmp)
    apply(s, pod("term", [ctr("exec sh", name="t" * 63, stdin=True, tty=True)]))
    wait_log(s, "keep", "up")
    wait_running(s, "term")
    before = sorted(c for c in runc_list(s) if c[2] == "running")
    assert len(before) == 2
    s.restart()                                 # kill -9, then a new server
    wait_for(lambda: s.log().count("adopted container ") == 2, 30,
             "the containers adopted")
    time.sleep(2)                               # a duplicate would start by now
    after = sorted(c for c in runc_list(s) if c[2] == "running")
    assert after == before                      # same id, same init pid
    st = wait_running(s, "keep")
    assert st["restartCount"] == 0
    assert logs(s, "keep").count("up\n") == 1
    assert cstatus(s, "term")["restartCount"] == 0
    code, out = run_in_pty([V6, "attach", "-it", "term"], dict(os.environ, V6_SERVER=s.url),
                           24, 70, [(r"", lambda m, pid: (
                               time.sleep(1.5 * TIMEOUT_SCALE),
                               os.write(m, b"tty; stty size; exit\r")))])
    assert code == 0, out
    assert re.search(r"(?m)^/dev/pts/\d+\r?$", out), out
    assert re.search(r"(?m)^24 70\r?$", out), out


def test_shim_kill9_cleans_up_and_restarts(rserver):
    s = rserver
    apply(s, pod("crash", [ctr("echo started; exec sleep 3600")]))
    wait_log(s, "crash", "started")
    (cid, init, _), = runc_list(s)
    uid = get_pod(s, "crash")["metadata"]["uid"]
    d = os.path.join(s.data_dir, "node", "containers", uid, "app-0")
    shim = read_pid(os.path.join(d, "shim.pid"))
    assert shim > 0
    os.kill(shim, signal.SIGKILL)
    wait_for(lambda: cstatus(s, "crash").get("restartCount", 0) >= 1, 60,
             "restarted after its shim was killed: %s" % cstatus(s, "crash"))
    wait_running(s, "crash")
    ids = [c[0] for c in runc_list(s)]
    assert cid not in ids                       # the old container deleted
    d1 = os.path.join(s.data_dir, "node", "containers", uid, "app-1")
    assert ids == [uid + "-app-1"], (cstatus(s, "crash"), os.listdir(d1),
                                     open(os.path.join(d1, "shim.log")).read(),
                                     logs(s, "crash"))
    assert not os.path.exists("/proc/%d" % init) or \
        open("/proc/%d/stat" % init).read().split()[2] == "Z"


def test_v6_exec_in_a_runc_container(rserver):
    s = rserver
    apply(s, pod("ex", [ctr("echo up; exec sleep 3600", workingDir="/etc",
                            env=[{"name": "GREETING", "value": "hi"}],
                            securityContext={"runAsUser": 1000})]))
    wait_log(s, "ex", "up")
    p = s.v6("exec", "ex", "--", "sh", "-c", "echo $GREETING $FROM_IMAGE $(pwd) $(id -u); "
             "echo to-stderr >&2; exit 7")
    assert p.returncode == 7, p
    assert p.stdout == "hi yes /etc 1000\n"
    assert p.stderr == "to-stderr\n"
    # the container's own filesystem: its hostname file, not the host's
    assert s.v6("exec", "ex", "--", "cat", "/etc/hostname").stdout == "ex\n"
    p = s.v6("exec", "-i", "ex", "-c", "app", "--", "cat", input="from stdin\n")
    assert (p.returncode, p.stdout) == (0, "from stdin\n")
    p = s.v6("exec", "ex", "-c", "nope", "--", "true")
    assert p.returncode == 1 and "container nope is not valid for pod ex" in p.stderr
    # its usage comes from the same cgroups as a process pod's (metrics.k8s.io,
    # v6 top): busybox's memory, in Ki
    def usage():
        st, m = s.json("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/ex")
        mem = m["containers"][0]["usage"]["memory"] if st == 200 and m.get("containers") \
            else "0"
        return mem if mem not in ("0", "0Ki") else None
    mem = wait_for(usage, 30, "the runc pod's memory usage")
    assert mem.endswith("Ki") and int(mem[:-2]) > 0, mem
    assert s.v6("top", "pods", "ex", "--no-headers").stdout.split()[0] == "ex"


def test_v6_exec_in_a_process_container(rserver):
    s = rserver
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "proc"},
           "spec": {"runtimeClassName": "process", "containers": [{
               "name": "app", "image": "host", "command": ["sleep", "3600"],
               "env": [{"name": "GREETING", "value": "hello"}]}]}}
    apply(s, obj)
    wait_running(s, "proc")
    p = s.v6("exec", "proc", "--", "sh", "-c", "echo $GREETING; exit 3")
    assert (p.returncode, p.stdout) == (3, "hello\n"), p


def test_runc_pods_on_the_pod_network_serve_on_port_80(image_tar):
    """Two replicas of an image listening on 0.0.0.0:80, each in the network
    namespace the pod network made: an httpGet probe reaches each through
    its pod IP, and so does the host; the pod's resolv.conf names the
    cluster DNS."""
    from test_podnet import PodNet, http_get
    pn = PodNet()
    try:
        pn.server.start()
        s = pn.server
        s.v6("image", "import", image_tar, check=True)
        for name in ("w1", "w2"):
            apply(s, pod(name, [ctr(
                "mkdir -p /www && echo served-by-$HOSTNAME > /www/index.html && "
                "exec httpd -f -p 80 -h /www",
                readinessProbe={"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1})]))
        for name in ("w1", "w2"):
            wait_for(lambda: any(c["type"] == "Ready" and c["status"] == "True" for c in
                                 get_pod(s, name).get("status", {}).get("conditions", [])),
                     60, "pod %s Ready through its httpGet probe" % name)
            ip = get_pod(s, name)["status"]["podIP"]
            assert s.in_range(ip, pn.pod_cidr), ip
            assert http_get("http://%s/" % ip) == "served-by-%s\n" % name
        out = s.v6("exec", "w1", "--", "cat", "/etc/resolv.conf").stdout
        assert "nameserver %s" % pn.dns in out, out
        assert "search default.svc.cluster.local" in out, out
    finally:
        pn.close()      # stop_workloads deletes the runc containers too


def test_default_runtime_is_runc_for_root_with_runc_else_process(image_tar, tmp_path,
                                                                 monkeypatch):
    """Without --default-runtime the server picks runc when it can use it
    (root, runc on PATH): a pod without runtimeClassName runs from its image
    in runc; with no runc on PATH it is the process runtime."""
    from conftest import Server
    for d in ("auto", "norunc"):
        (tmp_path / d).mkdir()
    s = Server(str(tmp_path / "auto"))
    i = s.extra_args.index("--default-runtime")
    del s.extra_args[i:i + 2]
    try:
        s.start()
        assert "default runtime for pods without runtimeClassName: runc (root and runc " \
            "on PATH)" in open(s.log_path).read()
        s.v6("image", "import", image_tar, check=True)
        obj = pod("plain", [ctr("echo in-runc; exec sleep 3600")])
        del obj["spec"]["runtimeClassName"]
        apply(s, obj)
        wait_log(s, "plain", "in-runc")
        uid = get_pod(s, "plain")["metadata"]["uid"]
        assert [c for c in runc_list(s) if c[0].startswith(uid)], runc_list(s)
    finally:
        try:
            s.close()
        finally:
            delete_runc_containers(s.data_dir)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    s = Server(str(tmp_path / "norunc"))
    del s.extra_args[i:i + 2]
    try:
        s.start()
        assert "default runtime for pods without runtimeClassName: process (runc not " \
            "on PATH)" in open(s.log_path).read()
    finally:
        s.close()


def test_empty_dir_host_path_and_claim_volumes_in_runc_containers(rserver, tmp_path):
    """The volumes of the process runtime, in runc containers: an emptyDir
    the pod's two containers share, a hostPath read and written (and one
    mounted readOnly), a PersistentVolumeClaim's directory."""
    s = rserver
    host = tmp_path / "host"
    host.mkdir()
    (host / "in").write_text("from-the-host\n")
    s.json("POST", "/api/v1/namespaces/default/persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}}, expect=201)
    mounts = [{"name": "shared", "mountPath": "/shared"},
              {"name": "host", "mountPath": "/host"},
              {"name": "host", "mountPath": "/ro", "readOnly": True},
              {"name": "claim", "mountPath": "/data"}]
    apply(s, pod("vols", [
        ctr("cat /host/in > /shared/f; echo from-runc > /host/out; echo kept > /data/c; "
            "exec sleep 3600", name="writer", volumeMounts=mounts),
        ctr("exec sleep 3600", name="reader", volumeMounts=mounts)],
        terminationGracePeriodSeconds=1,
        volumes=[{"name": "shared", "emptyDir": {}},
                 {"name": "host", "hostPath": {"path": str(host)}},
                 {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}}]))
    wait_for(lambda: (host / "out").exists(), 60, "the writer's file on the hostPath")
    assert (host / "out").read_text() == "from-runc\n"
    wait_for(lambda: s.v6("exec", "vols", "-c", "reader", "--", "cat", "/shared/f",
                          "/data/c").stdout == "from-the-host\nkept\n", 30,
             "the emptyDir and the claim seen from the other container")
    p = s.v6("exec", "vols", "-c", "reader", "--", "touch", "/ro/x")
    assert p.returncode != 0 and "Read-only file system" in p.stdout + p.stderr, p
    assert not (host / "x").exists()
    _, claim = s.json("GET", "/api/v1/namespaces/default/persistentvolumeclaims/data")
    d = os.path.join(s.data_dir, "node", "volumes", "pvc-" + claim["metadata"]["uid"])
    with open(os.path.join(d, "c")) as f:
        assert f.read() == "kept\n"


def test_containers_of_a_pod_share_its_ipc_namespace_and_dev_shm(rserver):
    """As on Kubernetes, a pod's containers share one IPC namespace and one
    /dev/shm (a file one writes there the other reads); another pod has its
    own; hostIPC gives the host's. Both survive the server's kill -9 (the
    namespace is pinned under the pod's dir) and go with the pod."""
    s = rserver
    apply(s, pod("ipc", [ctr("exec sleep 3600", name="a"), ctr("exec sleep 3600", name="b")]))
    apply(s, pod("other", [ctr("exec sleep 3600")]))
    apply(s, pod("hipc", [ctr("exec sleep 3600")], hostIPC=True))
    for name, n in (("ipc", 2), ("other", 1), ("hipc", 1)):
        for i in range(n):
            wait_for(lambda: "running" in cstatus(s, name, i).get("state", {}), 30,
                     "pod %s container %d running: %s" % (name, i, cstatus(s, name, i)))

    def run(name, c, cmd):
        p = s.v6("exec", name, "-c", c, "--", "sh", "-c", cmd)
        return p.returncode, p.stdout, p.stderr

    def ipc_ns(name, c="app"):
        rc, out, err = run(name, c, "readlink /proc/self/ns/ipc")
        assert rc == 0 and out.startswith("ipc:["), (rc, out, err)
        return out.strip()

    host = os.readlink("/proc/self/ns/ipc")
    a = ipc_ns("ipc", "a")
    assert ipc_ns("ipc", "b") == a
    assert a != host and ipc_ns("other") not in (a, host)
    assert ipc_ns("hipc") == host
    assert run("ipc", "a", "echo shared > /dev/shm/x")[0] == 0
    assert run("ipc", "b", "cat /dev/shm/x") == (0, "shared\n", "")
    assert run("other", "app", "test -e /dev/shm/x")[0] == 1
    uid = get_pod(s, "ipc")["metadata"]["uid"]
    assert ("/pods/%s/shm " % uid) in open("/proc/self/mountinfo").read()

    s.restart()                                 # kill -9, then a new server
    wait_for(lambda: "adopted container b-0" in s.log(), 30, "the container adopted")
    assert ipc_ns("ipc", "b") == a
    assert run("ipc", "b", "cat /dev/shm/x") == (0, "shared\n", "")

    st, _ = s.json("DELETE", "/api/v1/namespaces/default/pods/ipc")
    assert st in (200, 202), st
    wait_for(lambda: ("/pods/%s/" % uid) not in open("/proc/self/mountinfo").read(), 60,
             "the pod's IPC namespace and /dev/shm unmounted")
    # v6 reset (no --wipe) stops the other pods and drops theirs too
    other = get_pod(s, "other")["metadata"]["uid"]
    assert ("/pods/%s/shm " % other) in open("/proc/self/mountinfo").read()
    p = subprocess.run([V6, "reset",
                        "--data-dir", s.data_dir, "--timeout", "5s"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p
    s.proc.wait(timeout=10)                     # our child: reap it
    assert ("/pods/%s/" % other) not in open("/proc/self/mountinfo").read()


def test_pod_sandbox_and_etc_files_live_in_the_tmpfs_run_dir(rserver):
    """A runc pod's pinned IPC namespace, its /dev/shm mount point and its
    /etc files (hosts, hostname, resolv.conf) only mean something while the
    machine is up: they are made in the pod's state dir on tmpfs (next to
    its ServiceAccount files), not in node/pods on the data dir's disk,
    where each new inode cost this machine's ext4 0.24-0.29 ms of CPU (a
    quarter of the server's CPU in a 10-pod start). The container still
    sees them, and they go with the pod."""
    s = rserver
    link = os.path.join(s.data_dir, "node", "containers")
    if not os.path.islink(link):
        pytest.skip("no writable tmpfs at /run or /dev/shm")
    state = os.path.join(os.path.dirname(os.readlink(link)), "pods")
    apply(s, pod("tmp", [ctr("exec sleep 3600")]))
    wait_running(s, "tmp")
    uid = get_pod(s, "tmp")["metadata"]["uid"]
    here = os.path.join(state, uid)
    assert ("%s/shm " % here) in open("/proc/self/mountinfo").read()
    assert subprocess.run(["stat", "-f", "-c", "%T", os.path.join(here, "ipc")],
                          capture_output=True, text=True).stdout.strip() == "nsfs"
    for f in ("hosts", "hostname", "resolv.conf"):
        assert os.path.isfile(os.path.join(here, "etc", f)), f
    disk = os.path.join(s.data_dir, "node", "pods", uid)
    assert not os.path.exists(os.path.join(disk, "etc")) and \
        not os.path.exists(os.path.join(disk, "ipc")), os.listdir(disk)
    p = s.v6("exec", "tmp", "--", "sh", "-c", "cat /etc/hostname; grep -c tmp /etc/hosts")
    assert p.returncode == 0 and p.stdout.split()[0] == "tmp", (p.stdout, p.stderr)
    st, _ = s.json("DELETE", "/api/v1/namespaces/default/pods/tmp")
    assert st in (200, 202), st
    wait_for(lambda: ("%s/" % here) not in open("/proc/self/mountinfo").read()
             and not os.path.exists(here), 60, "the pod's state dir unmounted and removed")
