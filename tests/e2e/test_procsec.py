"""securityContext on the process runtime and the namespace image policy, as
a user sees them with real processes: the uid a container runs as (read in
/proc/PID/status of its host PID), runAsNonRoot refused as the kubelet
refuses it, capability sets, a non-root process binding port 80 with
NET_BIND_SERVICE, pods that cannot see or signal each other (own PID
namespace, private /proc), a read-only root with writable volumes, fields
the runtime cannot enforce refused with their path, a process pod without
command, and image-policy.v6.io rules denying pods and ReplicaSet creates.
Runs as root (CI does): changing uids needs it."""
import glob
import json
import os
import shutil
import socket
import tempfile

import pytest

import conftest
from test_pods import apply, ctr_status, get_pod, pod_manifest, sh, wait_for

# containerd's default capability set (CHOWN ... SETFCAP), as /proc shows it
DEFAULT_CAPS = "00000000a80425fb"


def host_pid(server, pod, ctr="c"):
    """The host PID of the container's main process (ctr.pid), once it has
    exec'd its command (before that it is the shim's fork, still root)."""
    def find():
        p = get_pod(server, pod) or {}
        uid = p.get("metadata", {}).get("uid")
        paths = glob.glob(os.path.join(server.data_dir, "node", "containers", uid or "-",
                                       ctr + "-*", "ctr.pid")) if uid else []
        pid = conftest.read_pid(paths[0]) if paths else 0
        try:
            with open("/proc/%d/comm" % pid) as f:
                return pid if pid and f.read().strip() != "v6-shim" else 0
        except OSError:
            return 0
    return wait_for(pod + " ctr.pid", find, timeout=30)


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def finished(server, name, timeout=60):
    wait_for(name + " finished", lambda: (get_pod(server, name) or {}).get(
        "status", {}).get("phase") in ("Succeeded", "Failed"), timeout=timeout)
    return get_pod(server, name)


def logs(server, pod, ctr="c"):
    p = server.v6("logs", pod, "-c", ctr)
    assert p.returncode == 0, p.stderr
    return p.stdout


def waiting(server, name, ctr="c", timeout=30):
    """The container's waiting state once it has a reason other than
    ContainerCreating."""
    def find():
        st = ctr_status(get_pod(server, name) or {}, ctr) or {}
        w = st.get("state", {}).get("waiting")
        return w if w and w.get("reason") not in (None, "ContainerCreating") else None
    return wait_for(name + " waiting", find, timeout=timeout)


def test_run_as_user_runs_the_container_as_that_uid(server):
    c = sh("c", "exec sleep 600", workingDir="/",
           securityContext={"runAsUser": 65534, "runAsGroup": 65534})
    apply(server, pod_manifest("nobody", [c], securityContext={
        "runAsUser": 1000, "supplementalGroups": [4242]}))
    st = proc_status(host_pid(server, "nobody"))
    assert st["Uid"].split() == ["65534"] * 4, st["Uid"]  # the container's wins
    assert st["Gid"].split() == ["65534"] * 4, st["Gid"]
    assert st["Groups"].split() == ["4242"], st["Groups"]
    assert st["NoNewPrivs"] == "0"


def test_run_as_non_root_without_user_is_refused_with_the_kubelets_message(server):
    apply(server, pod_manifest("rootish", [sh("c", "sleep 600")],
                               securityContext={"runAsNonRoot": True}))
    w = waiting(server, "rootish")
    uid = get_pod(server, "rootish")["metadata"]["uid"]
    assert w["reason"] == "CreateContainerConfigError", w
    assert w["message"] == ('container has runAsNonRoot and image will run as root '
                            '(pod: "rootish_default(%s)", container: c)' % uid), w
    assert not glob.glob(os.path.join(server.data_dir, "node", "containers", uid, "c-*"))
    # runAsUser 0 breaks it too, with the other message
    c = sh("c", "sleep 600", securityContext={"runAsUser": 0, "runAsNonRoot": True})
    apply(server, pod_manifest("root0", [c]))
    assert "container's runAsUser breaks non-root policy" in waiting(server, "root0")["message"]


def test_capabilities_drop_all_leaves_none_and_the_default_set_is_containerds(server):
    caps = "grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status"
    apply(server, pod_manifest("nocaps", [sh("c", caps, securityContext={
        "capabilities": {"drop": ["ALL"]}, "allowPrivilegeEscalation": False})],
        restart="Never"))
    apply(server, pod_manifest("defcaps", [sh("c", caps)], restart="Never"))
    for name, want in (("nocaps", "0000000000000000"), ("defcaps", DEFAULT_CAPS)):
        pod = finished(server, name)
        assert pod["status"]["phase"] == "Succeeded", pod["status"]
        got = dict(line.split(":\t") for line in logs(server, name).split("\n") if line)
        assert got["CapEff"] == want and got["CapBnd"] == want, (name, got)
        assert got["CapAmb"] == "0000000000000000", (name, got)


def test_added_capability_lets_a_non_root_container_listen_on_port_80(server):
    script = ("import os, socket, time\n"
              "s = socket.socket(); s.bind((os.environ['POD_IP'], 80)); s.listen(1)\n"
              "print('listening', flush=True)\n"
              "c, _ = s.accept(); c.sendall(b'hello from 80'); c.close(); time.sleep(600)\n")
    c = {"name": "c", "image": "python", "command": ["python3", "-c", script],
         "workingDir": "/",
         "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
         "securityContext": {"runAsUser": 65534, "runAsNonRoot": True,
                             "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}
    apply(server, pod_manifest("port80", [c]))
    wait_for("listening", lambda: "listening" in logs(server, "port80"), timeout=30)
    ip = get_pod(server, "port80")["status"]["podIP"]
    assert ip.startswith("127."), ip
    with socket.create_connection((ip, 80), timeout=10) as conn:
        assert conn.recv(100) == b"hello from 80"
    st = proc_status(host_pid(server, "port80"))
    assert st["Uid"].split()[0] == "65534"
    assert st["CapEff"] == "0000000000000400" and st["CapBnd"] == "0000000000000400", st


def test_pods_cannot_see_or_signal_each_other(server):
    b = sh("c", "exec sleep 600", env=[{"name": "SECRET", "value": "b-secret"}])
    apply(server, pod_manifest("pod-b", [b]))
    bpid = host_pid(server, "pod-b")

    def environ():                  # the host (root) can read it, once exec'd
        with open("/proc/%d/environ" % bpid, "rb") as f:
            return b"SECRET=b-secret" in f.read()
    wait_for("pod-b's environ", environ, timeout=30)
    a = sh("c", "ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' '; echo; "
           "cat /proc/%d/environ 2>/dev/null && echo READ || echo NOREAD; "
           "kill -0 %d 2>/dev/null && echo SIGNALLED || echo NOSIGNAL; "
           "wc -c < /proc/timer_list; mount | grep -c ' /proc/sys .*ro,'" % (bpid, bpid))
    apply(server, pod_manifest("pod-a", [a], restart="Never"))
    pod = finished(server, "pod-a")
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    out = logs(server, "pod-a").split("\n")
    pids = [int(x) for x in out[0].split()]
    assert 1 in pids and str(bpid) not in out[0].split(), out  # its own namespace
    assert max(pids) < 50, out            # the host's processes are not there
    assert out[1:3] == ["NOREAD", "NOSIGNAL"], out
    assert out[3:5] == ["0", "1"], out    # runc's masked and read-only /proc paths
    with open("/proc/timer_list") as f:   # which the host does have
        assert f.read(10)
    assert conftest.alive(bpid)


def test_read_only_root_filesystem_keeps_volumes_writable(server, workdir):
    mnt = os.path.join(workdir, "scratch")
    probe = "/tmp/v6-procsec-%d" % os.getpid()
    c = sh("c", "echo x > %s; echo rc=$?; echo y > %s/f && echo vol-ok" % (probe, mnt),
           volumeMounts=[{"name": "scratch", "mountPath": mnt}],
           securityContext={"readOnlyRootFilesystem": True})
    apply(server, pod_manifest("rofs", [c], restart="Never",
                               volumes=[{"name": "scratch", "emptyDir": {}}]))
    pod = finished(server, "rofs")
    out = logs(server, "rofs")
    assert "Read-only file system" in out and "rc=2" in out, out
    assert "vol-ok" in out, out
    assert not os.path.exists(probe)
    assert pod["status"]["phase"] == "Succeeded", pod["status"]


def test_fs_group_owns_the_empty_dir_a_non_root_user_writes(server, workdir):
    mnt = os.path.join(workdir, "data")
    c = sh("c", "id -G; echo hi > %s/f && stat -c '%%g %%a' %s %s/f" % (mnt, mnt, mnt),
           workingDir="/", volumeMounts=[{"name": "data", "mountPath": mnt}])
    apply(server, pod_manifest("fsgroup", [c], restart="Never", securityContext={
        "runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 4000},
        volumes=[{"name": "data", "emptyDir": {}}]))
    pod = finished(server, "fsgroup")
    out = logs(server, "fsgroup").split("\n")
    assert pod["status"]["phase"] == "Succeeded", (pod["status"], out)
    assert out[0].split() == ["65534", "4000"], out
    assert out[1] == "4000 2777", out      # the volume: fsGroup's, set-gid
    assert out[2].split()[0] == "4000", out  # a new file inherits the group


def test_exec_probe_runs_inside_the_container(server, workdir):
    """An exec probe sees the container's volumes, uid and PID namespace:
    the volume exists only in the container's mount namespace."""
    mnt = os.path.join(workdir, "state")
    probe = ("test -f %s/ready && test \"$(id -u)\" = 65534 && "
             "test \"$(ls /proc | grep -c '^[0-9]')\" -lt 20" % mnt)
    c = sh("c", "touch %s/ready; exec sleep 600" % mnt, workingDir="/",
           volumeMounts=[{"name": "state", "mountPath": mnt}],
           readinessProbe={"exec": {"command": ["sh", "-c", probe]}, "periodSeconds": 1},
           securityContext={"runAsUser": 65534})
    apply(server, pod_manifest("probed", [c], volumes=[{"name": "state", "emptyDir": {}}]))

    def ready():
        conds = (get_pod(server, "probed") or {}).get("status", {}).get("conditions", [])
        return any(x["type"] == "Ready" and x["status"] == "True" for x in conds)
    wait_for("Ready through the exec probe", ready, timeout=30)
    assert not os.path.exists(os.path.join(mnt, "ready"))  # not on the host


def test_field_the_process_runtime_cannot_enforce_is_refused_with_its_path(server):
    pod = pod_manifest("seccomp", [sh("c", "true", securityContext={
        "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}})])
    status, body = server.json("POST", "/api/v1/namespaces/default/pods", pod)
    assert status == 422 and body["reason"] == "Invalid", body
    field = "spec.containers[0].securityContext.seccompProfile"
    assert field in body["message"] and "process runtime" in body["message"], body
    assert [c["field"] for c in body["details"]["causes"]] == [field], body
    pod = pod_manifest("sysctl", [sh("c", "true")], securityContext={
        "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]})
    status, body = server.json("POST", "/api/v1/namespaces/default/pods", pod)
    assert status == 422 and "spec.securityContext.sysctls" in body["message"], body
    # what the runtime does enforce is accepted
    pod = pod_manifest("unconfined", [sh("c", "true", securityContext={
        "seccompProfile": {"type": "Unconfined"}})], hostPID=False)
    server.json("POST", "/api/v1/namespaces/default/pods", pod, expect=201)


def test_process_pod_without_command_says_the_image_cannot_run_there(server):
    apply(server, pod_manifest("nginx", [{"name": "c", "image": "nginx:1.25"}]))
    w = waiting(server, "nginx")
    assert w["reason"] == "CreateContainerError", w
    assert "process runtime" in w["message"] and "runtimeClassName: runc" in w["message"], w
    assert "executable file not found" not in w["message"]


def namespace(server, name, **annotations):
    server.json("POST", "/api/v1/namespaces", {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "annotations": {
            "image-policy.v6.io/" + k.replace("_", "-"): v for k, v in annotations.items()}}},
        expect=201)


def create_pod(server, ns, name, image):
    pod = pod_manifest(name, [{"name": "c", "image": image, "command": ["sleep", "600"]}])
    pod["metadata"]["namespace"] = ns
    return server.json("POST", "/api/v1/namespaces/%s/pods" % ns, pod)


def test_image_policy_denies_latest_and_registries_not_allowed(server):
    namespace(server, "prod", deny_latest="true",
              allowed_registries="registry.local:5000, docker.io/library")
    for image, rule in (("nginx:latest", "deny-latest"), ("nginx", "deny-latest"),
                        ("ghcr.io/acme/web:1.0", "allowed-registries"),
                        ("acme/web:1.0", "allowed-registries")):
        status, body = create_pod(server, "prod", "denied", image)
        assert status == 403 and body["reason"] == "Forbidden", (image, body)
        assert 'namespace "prod"' in body["message"], body
        assert "rule " + rule in body["message"], (image, body)
        if image == "nginx":
            assert "has no tag (it means :latest)" in body["message"], body
    # a reference no rule can read is not waved through: the first rule set denies it
    status, body = create_pod(server, "prod", "unreadable", "Acme/Web:1")
    assert status == 403 and "rule deny-latest" in body["message"], body
    assert "invalid image reference" in body["message"], body
    for i, image in enumerate(("nginx:1.25", "registry.local:5000/app:1",
                               "docker.io/library/busybox@sha256:" + "a" * 64)):
        status, body = create_pod(server, "prod", "ok%d" % i, image)
        assert status == 201, (image, body)


def test_image_policy_requires_digests_and_non_root(server):
    namespace(server, "pinned", require_digest="true", require_run_as_non_root="true")
    digest = "sha256:" + "b" * 64
    for image in ("registry.local:5000/app:1", "busybox"):
        status, body = create_pod(server, "pinned", "unpinned", image)
        assert status == 403 and "rule require-digest" in body["message"], (image, body)
        assert "is not pinned by digest" in body["message"], body
    status, body = create_pod(server, "pinned", "root", "busybox@" + digest)
    assert status == 403 and "rule require-run-as-non-root" in body["message"], body
    assert "container c:" in body["message"], body

    def pod_as(name, **sc):
        pod = pod_manifest(name, [{"name": "c", "image": "registry.local:5000/app@" + digest,
                                   "command": ["sleep", "600"], "securityContext": sc}])
        pod["metadata"]["namespace"] = "pinned"
        return server.json("POST", "/api/v1/namespaces/pinned/pods", pod)
    status, body = pod_as("uid0", runAsNonRoot=True, runAsUser=0)
    assert status == 403 and "rule require-run-as-non-root" in body["message"], body
    status, body = pod_as("fine", runAsNonRoot=True, runAsUser=1000)
    assert status == 201, body


def test_image_policy_denial_is_the_replicasets_failed_create_event(server):
    namespace(server, "strict", require_run_as_non_root="true")
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": "web", "namespace": "strict"},
          "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                   "template": {"metadata": {"labels": {"app": "web"}},
                                "spec": {"containers": [{"name": "c", "image": "web:1",
                                                         "command": ["sleep", "600"]}]}}}}
    server.json("POST", "/apis/apps/v1/namespaces/strict/replicasets", rs, expect=201)

    def failed_create():
        _, evs = server.json("GET", "/api/v1/namespaces/strict/events")
        return [e for e in evs.get("items", []) if e.get("reason") == "FailedCreate"]
    ev = wait_for("FailedCreate", failed_create, timeout=30)[0]
    assert "rule require-run-as-non-root" in ev["message"], ev
    assert 'namespace "strict"' in ev["message"] and "forbidden" in ev["message"], ev
    _, pods = server.json("GET", "/api/v1/namespaces/strict/pods")
    assert pods["items"] == []
    assert json.dumps(ev["involvedObject"]).find('"ReplicaSet"') >= 0


def test_a_container_copies_the_hosts_mount_table_once(workdir, monkeypatch):
    """A container with its own PID namespace (private /proc) and volumes
    gets one mount namespace, not one for /proc and a second for the
    volumes: each unshare(CLONE_NEWNS) copies the host's mount table, ~2 ms
    with the 650 mounts a busy host had. Counted with strace on the shim."""
    strace = shutil.which("strace")
    if not strace:
        pytest.skip("strace is not installed")
    trace = os.path.join(workdir, "unshare.trace")
    shim = os.path.join(os.path.dirname(os.path.realpath(conftest.V6)), "v6-shim")
    wrapper = os.path.join(workdir, "traced-shim")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec %s -f -qq -e trace=unshare -o %s %s "$@"\n'
                % (strace, trace, shim))
    os.chmod(wrapper, 0o755)
    monkeypatch.setenv("V6_SHIM", wrapper)
    with tempfile.TemporaryDirectory(prefix="v6-e2e-") as d:
        s = conftest.Server(d)
        s.start()
        try:
            c = sh("c", "cat /proc/1/comm",
                   volumeMounts=[{"name": "d", "mountPath": "/data"}])
            apply(s, pod_manifest("once", [c], restart="Never",
                                  volumes=[{"name": "d", "emptyDir": {}}]))
            pod = finished(s, "once")
            assert pod["status"]["phase"] == "Succeeded", pod["status"]
            assert logs(s, "once") == "v6-init\n"   # its own PID namespace and /proc
        finally:
            s.close()
    with open(trace) as f:
        calls = [line for line in f if "CLONE_NEWNS" in line]
    assert len(calls) == 1, calls
