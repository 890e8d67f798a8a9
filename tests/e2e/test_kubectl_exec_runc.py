"""kubectl exec -it / -i and port-forward into runc containers on the pod
network (issues 10, 15 part 5): `runc exec --tty` gives the command a
terminal inside the container that follows kubectl's window size, and
port-forward reaches 127.0.0.1:PORT inside the pod's network namespace, as
a kubelet's does. The image is busybox built here (test_images'
ImageBuilder); the server, its bridge and runc containers are removed at
the end."""
import copy
import os
import subprocess
import time

import pytest

from conftest import TIMEOUT_SCALE, V6, delete_runc_containers, free_port, wait_for
from test_images import ImageBuilder
from test_kubectl_exec import Kubectl, check_forwarding, exec_tty, forward, stop
from test_podnet import PodNet, apply, http_get

BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "cat", "echo", "sleep", "mkdir", "httpd", "tty", "stty", "wc", "hostname",
           "true", "false"]
IMAGE = "localhost/bbtty:1"


@pytest.fixture(scope="module")
def image_tar(tmp_path_factory):
    b = ImageBuilder(str(tmp_path_factory.mktemp("bbtty")), "bbtty")
    with open(BUSYBOX, "rb") as f:
        entries = [("bin", "dir", None), ("bin/busybox", "file", f.read())]
    entries += [("bin/" + a, "symlink", "busybox") for a in APPLETS]
    entries += [("etc", "dir", None), ("etc/passwd", "file", "root:x:0:0::/:/bin/sh\n"),
                ("tmp", "dir", None)]
    b.layer(entries)
    return b.export("oci-archive", IMAGE)


@pytest.fixture
def podnet(image_tar):
    pn = PodNet()
    try:
        pn.server.start()
        pn.server.v6("image", "import", image_tar, check=True)
        yield pn
    finally:
        try:
            delete_runc_containers(pn.dir.name)
        finally:
            pn.close()


WEB = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bb", "labels": {"app": "bb"}},
       "spec": {"runtimeClassName": "runc", "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "web", "image": IMAGE,
                    # the page names the pod (the container's hostname)
                    "command": ["sh", "-c", "mkdir -p /tmp/www; hostname > "
                                "/tmp/www/index.html; exec httpd -f -p 8080 -h /tmp/www"],
                    "ports": [{"containerPort": 8080}],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}


def test_exec_tty_and_port_forward_in_a_runc_pod(podnet, tmp_path):
    s = podnet.server
    hp = free_port()
    web = copy.deepcopy(WEB)
    web["spec"]["containers"][0]["ports"][0]["hostPort"] = hp
    apply(s, web)

    def ready():
        _, p = s.json("GET", "/api/v1/namespaces/default/pods/bb")
        conds = {c["type"]: c["status"] for c in (p or {}).get("status", {}).get(
            "conditions", [])}
        return conds.get("Ready") == "True"
    wait_for(ready, 60, "runc pod bb ready")
    k = Kubectl(s, str(tmp_path))
    p = k.run("exec", "-i", "bb", "--", "cat", input=b"through runc\n")
    assert p.stdout == b"through runc\n", p
    p = k.run("exec", "bb", "--", "sh", "-c", "exit 9", check=False)
    assert p.returncode == 9, p
    out = exec_tty(k, "bb")
    assert "/dev/pts/0" in out, out  # the container's own devpts
    out = exec_tty(([V6], dict(os.environ, V6_SERVER=s.url)), "bb", rows=21, cols=77)
    assert "/dev/pts/0" in out, out  # v6 exec -it: the same terminal
    # the pod's hostPort, and a NodePort Service of it, on the host
    wait_for(lambda: http_get("http://127.0.0.1:%d/" % hp) == "bb\n", 30,
             "the runc pod through its hostPort %d" % hp)
    apply(s, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bb"},
              "spec": {"type": "NodePort", "selector": {"app": "bb"},
                       "ports": [{"port": 80, "targetPort": 8080}]}})
    np = s.json("GET", "/api/v1/namespaces/default/services/bb")[1]["spec"]["ports"][0][
        "nodePort"]
    wait_for(lambda: http_get("http://127.0.0.1:%d/" % np) == "bb\n", 30,
             "the runc pod through node port %d" % np)
    # nothing listens on the host's 127.0.0.1:8080 for this: only the pod's
    pf, port = forward(k, "pod/bb", 8080)
    try:
        check_forwarding(port, "bb")
    finally:
        stop(pf)


def test_attach_to_a_runc_pod(podnet, tmp_path):
    """pods/attach into a runc container started with stdin: true: its
    stdin is the shim's FIFO, inherited through `runc run -d`; with tty: true,
    the pty runc made, its master sent to the shim on --console-socket."""
    from test_attach import ECHO, attach
    s = podnet.server
    apply(s, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rd"},
              "spec": {"runtimeClassName": "runc", "terminationGracePeriodSeconds": 1,
                       "restartPolicy": "Never",
                       "containers": [{"name": "main", "image": IMAGE, "stdin": True,
                                       "command": ["sh", "-c", ECHO]}]}})

    def phase():
        _, p = s.json("GET", "/api/v1/namespaces/default/pods/rd")
        return (p or {}).get("status", {}).get("phase")
    wait_for(lambda: phase() == "Running", 60, "runc pod rd running")
    k = Kubectl(s, str(tmp_path))
    code, out, err = attach(k.base + ["attach", "-i", "rd"], k.env,
                            [(1.5, b"one\n"), (0.5, b"quit\n")])
    assert code == 0, (code, out, err)
    assert out == "out:one\nout:quit\n", (out, err)
    assert "err:one\nerr:quit\n" in err, err
    wait_for(lambda: phase() == "Succeeded", 30, "the runc container's exit")
    # tty: true: runc makes the pty (--console-socket) and the shim drives
    # its master as the process runtime's: attach -it from a 30x100
    # terminal, `tty` is a pts and `stty size` the client's size
    import re
    from test_kubectl_exec import run_in_pty
    apply(s, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rt"},
              "spec": {"runtimeClassName": "runc", "terminationGracePeriodSeconds": 1,
                       "restartPolicy": "Never",
                       "containers": [{"name": "main", "image": IMAGE, "stdin": True,
                                       "tty": True, "command": ["sh"]}]}})

    def rt_phase():
        _, p = s.json("GET", "/api/v1/namespaces/default/pods/rt")
        return (p or {}).get("status", {}).get("phase")
    wait_for(lambda: rt_phase() == "Running", 60, "runc tty pod rt running")
    code, out = run_in_pty(k.base + ["attach", "-it", "rt"], k.env, 30, 100,
                           [(r"", lambda m, pid: (time.sleep(1.5 * TIMEOUT_SCALE),
                                                  os.write(m, b"tty; stty size; exit\r")))])
    assert code == 0, out
    assert re.search(r"(?m)^/dev/pts/\d+\r?$", out), out
    assert re.search(r"(?m)^30 100\r?$", out), out
    wait_for(lambda: rt_phase() == "Succeeded", 30, "the runc shell's exit")
    status, _, log = s.request("GET", "/api/v1/namespaces/default/pods/rt/log")
    assert status == 200 and re.search(rb"/dev/pts/\d+\r\n", log), log
    assert b"30 100\r\n" in log, log


def test_exec_tty_in_runc_starts_with_the_clients_size(podnet):
    """`runc exec --tty` starts after the client's first size arrived; its
    terminal inside the container has that size from the command's start."""
    from test_kubectl_exec import first_sizes
    s = podnet.server
    apply(s, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sz"},
              "spec": {"runtimeClassName": "runc", "terminationGracePeriodSeconds": 1,
                       "containers": [{"name": "main", "image": IMAGE,
                                       "command": ["sleep", "600"]}]}})

    def running():
        _, p = s.json("GET", "/api/v1/namespaces/default/pods/sz")
        return (p or {}).get("status", {}).get("phase") == "Running"
    wait_for(running, 60, "runc pod sz running")
    first_sizes([V6, "exec", "-t", "sz"], dict(os.environ, V6_SERVER=s.url), 20)
