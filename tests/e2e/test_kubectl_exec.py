"""Stock kubectl 1.32's interactive verbs against V6 (issues 15 part 5, 10):
`exec -i` pipes stdin through WebSocket v5.channel.k8s.io (and its close
signal) or kubectl's SPDY/3.1 fallback, `exec -it` gives the command a real terminal that follows kubectl's
window size, exit codes come back through the Status channel; `port-forward`
to a pod and to a Service, over kubectl's default (SPDY tunnelled in a
WebSocket) and its SPDY fallback, with several and concurrent connections;
a viewer gets 403 for both. The process runtime here over HTTPS; runc on the
pod network in test_kubectl_exec_runc.py. kubectl runs with a throwaway
home and cache."""
import base64
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
import urllib.request

import pytest

from conftest import TIMEOUT_SCALE, V6, wait_for, write

KUBECTL = shutil.which("kubectl")

APP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: testapp:1
        command: ["v6", "testapp"]
        ports: [{containerPort: 8080}]
        env:
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""

VIEWER_TOKENS = "viewer-token,vera,uid-vera\n"


class Kubectl:
    """/usr/bin/kubectl with server's admin kubeconfig (or a token; the
    unsecured admin on a plain HTTP server)."""

    def __init__(self, server, home, token=None):
        assert KUBECTL, "kubectl 1.32 is part of the test environment"
        self.env = dict(os.environ, HOME=home, KUBECONFIG=server.kubeconfig() if
                        server.tls else "/dev/null")
        self.base = [KUBECTL, "--cache-dir", os.path.join(home, "cache")]
        if not server.tls:
            self.base += ["--server", server.url]
        if token:
            # the admin kubeconfig's client certificate would win: the
            # user's own has the CA and the token only
            self.base = [KUBECTL, "--cache-dir", os.path.join(home, "cache"),
                         "--kubeconfig", "/dev/null", "--server", server.url,
                         "--certificate-authority", os.path.join(server.pki, "ca.crt"),
                         "--token", token]

    def run(self, *args, input=None, check=True, timeout=60, env=None):
        p = subprocess.run(self.base + list(args), input=input, capture_output=True,
                           env=dict(self.env, **(env or {})), timeout=timeout * TIMEOUT_SCALE)
        if check:
            assert p.returncode == 0, (args, p.stdout[-2000:], p.stderr[-2000:])
        return p


def start_app(server, workdir):
    server.v6("apply", "-f", write(workdir, "app.yaml", APP), check=True)

    def ready():
        _, lst = server.json("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")
        for p in (lst or {}).get("items", []):
            conds = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}
            if conds.get("Ready") == "True":
                return p["metadata"]["name"]
        return None
    return wait_for(ready, 60, "the testapp pod ready")


@pytest.fixture
def tserver(make_server, workdir):
    """An HTTPS server (process runtime) that also knows a viewer's token."""
    return make_server("--token-auth-file", write(workdir, "tokens.csv", VIEWER_TOKENS),
                       tls=True)


def run_in_pty(argv, env, rows, cols, steps, timeout=60):
    """Runs argv with a pseudo-terminal (rows x cols) as its stdin, stdout
    and stderr. steps: [(expected regex, action)] in order; action(master,
    pid) runs once the output so far matches. Returns (exit code, output)."""
    pid, master = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.execvpe(argv[0], argv, env)
    out = b""
    deadline = time.monotonic() + timeout * TIMEOUT_SCALE
    code = None
    try:
        while time.monotonic() < deadline:
            while steps and re.search(steps[0][0], out.decode(errors="replace")):
                steps.pop(0)[1](master, pid)
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                out += chunk
        done, status = os.waitpid(pid, 0 if not steps else os.WNOHANG)
        if done:
            pid = None
            code = os.waitstatus_to_exitcode(status)
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(master)
    assert not steps, ("steps left", [s[0] for s in steps], out[-2000:])
    return code, out.decode(errors="replace")


def resize(rows, cols):
    """A step action: the terminal kubectl sits on changes size."""
    def act(master, pid):
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.kill(pid, signal.SIGWINCH)
        time.sleep(0.5 * TIMEOUT_SCALE)  # the resize goes out before the next line
        os.write(master, b"go\r")
    return act


def exec_tty(k, pod, rows=33, cols=101):
    """kubectl exec -it (or k=(argv, env) for v6's): `tty`, the size (the
    client's: the command starts once it arrived), a resize, the new
    size, exit 5."""
    base, env = (k.base, k.env) if isinstance(k, Kubectl) else k
    argv = base + ["exec", "-it", pod, "--", "sh", "-c",
                   "tty; echo size=$(stty size); read x; echo size=$(stty size); exit 5"]
    code, out = run_in_pty(argv, env, rows, cols,
                           [(r"size=\d+ \d+", resize(40, 120))])
    assert re.search(r"^/dev/pts/\d+", out, re.M), out
    assert re.findall(r"size=\d+ \d+", out) == ["size=%d %d" % (rows, cols),
                                                "size=40 120"], out
    assert code == 5, (code, out)
    return out


def test_exec_stdin_tty_and_exit_codes(tserver, workdir, tmp_path):
    s = tserver
    pod = start_app(s, workdir)
    k = Kubectl(s, str(tmp_path))
    # -i: stdin piped through and closed (v5's close signal): cat ends
    p = k.run("exec", "-i", pod, "--", "cat", input=b"hello\nworld\n")
    assert p.stdout == b"hello\nworld\n", p
    big = os.urandom(300 * 1024).hex().encode()  # 600 KB, past every buffer
    p = k.run("exec", "-i", pod, "--", "sh", "-c", "cat | wc -c", input=big)
    assert p.stdout.strip() == str(len(big)).encode(), p
    # exit codes through the Status channel, with and without stdin
    p = k.run("exec", "-i", pod, "--", "sh", "-c", "read x; exit $x", input=b"7\n",
              check=False)
    assert p.returncode == 7 and b"command terminated with exit code 7" in p.stderr, p
    assert k.run("exec", pod, "--", "false", check=False).returncode == 1
    # a process left in the background does not hold the stream open
    t0 = time.monotonic()
    p = k.run("exec", pod, "--", "sh", "-c", "sleep 60 & echo started")
    assert p.stdout == b"started\n" and time.monotonic() - t0 < 20, p
    # -it: a terminal in the container, its size following kubectl's
    exec_tty(k, pod)


def test_exec_over_kubectls_spdy_fallback(tserver, workdir, tmp_path):
    """KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false: kubectl 1.32 speaks its old
    SPDY/3.1 exec protocol (v4.channel.k8s.io), as it does when a
    WebSocket upgrade fails on the way: stdin, output, exit codes, a
    terminal and its resize work the same."""
    s = tserver
    pod = start_app(s, workdir)
    k = Kubectl(s, str(tmp_path))
    spdy = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
    p = k.run("exec", "-i", pod, "--", "cat", input=b"over\nspdy\n", env=spdy)
    assert p.stdout == b"over\nspdy\n", p
    big = os.urandom(300 * 1024).hex().encode()
    p = k.run("exec", "-i", pod, "--", "sh", "-c", "cat | wc -c", input=big, env=spdy)
    assert p.stdout.strip() == str(len(big)).encode(), p
    p = k.run("exec", pod, "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False,
              env=spdy)
    assert p.returncode == 3 and p.stdout == b"out\n" and b"err\n" in p.stderr, p
    assert b"command terminated with exit code 3" in p.stderr, p
    assert k.run("exec", pod, "--", "true", env=spdy).returncode == 0
    exec_tty((k.base, dict(k.env, **spdy)), pod)


def spdy_frame_syn(comp, sid, headers):
    """A SPDY/3.1 SYN_STREAM of stream sid with headers (a dict), its
    header block compressed in the session's one zlib stream (a stream
    without the protocol's dictionary inflates the same)."""
    block = struct.pack(">I", len(headers))
    for k, v in headers.items():
        block += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
    block = comp.compress(block) + comp.flush(__import__("zlib").Z_SYNC_FLUSH)
    body = struct.pack(">IIBB", sid, 0, 0, 0) + block
    return struct.pack(">HHI", 0x8003, 1, len(body)) + body


def spdy_frames(sock, deadline):
    """The server's frames until it closes the connection: (control type
    or None for data, stream id, flags, payload)."""
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    frames = []
    while len(data) >= 8:
        n = int.from_bytes(data[5:8], "big")
        payload, flags = data[8:8 + n], data[4]
        if data[0] & 0x80:
            ctype = int.from_bytes(data[2:4], "big")
            sid = int.from_bytes(payload[:4], "big") & 0x7fffffff if len(payload) >= 4 else 0
            frames.append((ctype, sid, flags, payload))
        else:
            frames.append((None, int.from_bytes(data[:4], "big"), flags, payload))
        data = data[8 + n:]
    return frames


def test_spdy_exec_waits_for_every_announced_stream(server, workdir):
    """client-go creates its SPDY streams one by one and waits for each
    reply: a command that ends before the last of them arrives (`true`,
    no output) must not end the session under the client (kubectl saw
    'error: EOF'). The stdout and stderr streams come a second after the
    error stream; each gets its reply, then the Success Status."""
    import zlib
    pod = start_app(server, workdir)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(("POST /api/v1/namespaces/default/pods/%s/exec?command=true&stdout=true"
                      "&stderr=true HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
                      "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                      "Content-Length: 0\r\n\r\n" % pod).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        comp = zlib.compressobj()
        sock.sendall(spdy_frame_syn(comp, 1, {"streamtype": "error"}))
        time.sleep(1.0)         # `true` has exited; the drain timer (2 s) has not fired
        sock.sendall(spdy_frame_syn(comp, 3, {"streamtype": "stdout"}) +
                     spdy_frame_syn(comp, 5, {"streamtype": "stderr"}))
        frames = spdy_frames(sock, time.monotonic() + 10 * TIMEOUT_SCALE)
    finally:
        sock.close()
    replies = sorted(sid for ctype, sid, _, _ in frames if ctype == 2)
    assert replies == [1, 3, 5], frames
    status = b"".join(p for ctype, sid, _, p in frames if ctype is None and sid == 1)
    assert json.loads(status)["status"] == "Success", frames


def forward(k, target, port, extra_env=None):
    """Starts kubectl port-forward target :port; returns (process, local port)."""
    p = subprocess.Popen(k.base + ["port-forward", target, ":%d" % port],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(k.env, **(extra_env or {})))
    line = p.stdout.readline()  # "Forwarding from 127.0.0.1:N -> port"
    m = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> %d" % port, line)
    if not m:
        p.kill()
        p.wait()
        raise AssertionError("port-forward did not start: %r %r" % (line, p.stderr.read()))
    return p, int(m.group(1))


def get(port, path="/"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                timeout=20 * TIMEOUT_SCALE) as r:
        return r.status, r.read().decode()


def check_forwarding(port, pod):
    """Several requests one after another, then 8 at once, all answered by
    the pod behind the forward."""
    for _ in range(3):
        status, body = get(port)
        assert status == 200 and pod in body, body
    results = []

    def one():
        try:
            results.append(get(port))
        except Exception as e:  # noqa: BLE001 (reported below)
            results.append((0, repr(e)))
    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60 * TIMEOUT_SCALE)
    assert len(results) == 8 and all(st == 200 and pod in b for st, b in results), results


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


@pytest.mark.parametrize("websockets", ["true", "false"])
def test_port_forward_to_pod_and_service(tserver, workdir, tmp_path, websockets):
    """kubectl's default tunnels SPDY in a WebSocket; with
    KUBECTL_PORT_FORWARD_WEBSOCKETS=false it speaks plain SPDY/3.1."""
    s = tserver
    pod = start_app(s, workdir)
    k = Kubectl(s, str(tmp_path))
    env = {"KUBECTL_PORT_FORWARD_WEBSOCKETS": websockets}
    for target in ("pod/" + pod, "svc/web"):
        p, port = forward(k, target, 8080 if target.startswith("pod") else 80, env)
        try:
            check_forwarding(port, pod)
        finally:
            stop(p)
    # nothing listens on 9: the error stream says so, the forward survives
    p, port = forward(k, "pod/" + pod, 9, env)
    try:
        with pytest.raises(Exception):
            get(port)
    finally:
        stop(p)
    assert "error forwarding port 9" in p.stderr.read(), "the pod's refusal is reported"


def test_viewer_may_not_exec_or_forward(tserver, workdir, tmp_path):
    """exec, attach and portforward are creates on pods' subresources: the
    view role has none of them (Kubernetes' 403)."""
    s = tserver
    pod = start_app(s, workdir)
    s.json("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "vera-view", "namespace": "default"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                      "name": "vera"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "view"}}, expect=201)
    k = Kubectl(s, str(tmp_path), token="viewer-token")
    assert k.run("get", "pod", pod).returncode == 0  # the viewer sees the pod
    p = k.run("exec", pod, "--", "true", check=False)
    assert p.returncode != 0 and b"Forbidden" in p.stderr and \
        b'cannot create resource "pods/exec"' in p.stderr, p.stderr
    p = subprocess.run(k.base + ["port-forward", "pod/" + pod, ":8080"], env=k.env,
                       capture_output=True, text=True, timeout=60 * TIMEOUT_SCALE)
    assert p.returncode != 0 and "pods/portforward" in p.stderr, p.stderr


def test_v6_exec_and_port_forward(tserver, workdir):
    """The CLI's own verbs over the same WebSockets: v6 exec -i / -it
    (raw mode on the local terminal, resize) and v6 port-forward."""
    s = tserver
    pod = start_app(s, workdir)
    env = dict(os.environ, KUBECONFIG=s.kubeconfig())
    p = subprocess.run([V6, "exec", "-i", pod, "--", "sh", "-c", "cat; exit 4"],
                       input=b"piped\n", capture_output=True, env=env,
                       timeout=60 * TIMEOUT_SCALE)
    assert p.returncode == 4 and p.stdout == b"piped\n", p
    exec_tty(([V6], env), pod, rows=21, cols=77)
    pf = subprocess.Popen([V6, "port-forward", "svc/web", ":80"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env)
    try:
        m = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", pf.stdout.readline())
        assert m, pf.stderr.read() if pf.poll() is not None else "no Forwarding line"
        check_forwarding(int(m.group(1)), pod)
    finally:
        stop(pf)
    assert pf.returncode == 0, pf.stderr.read()


def test_exec_tty_command_starts_with_the_clients_size(server, tmp_path):
    """The command of `v6 exec -t` / `kubectl exec -it` starts once the
    client's first size arrived, so its first look at the terminal sees
    that size, every time (it raced the resize message and could see the
    pty's default 24 80). 20 sizes through v6, 5 through kubectl."""
    server.json("POST", "/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sl"},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "c", "image": "x", "command": ["sleep", "600"]}]}},
        expect=201)

    def running():
        _, p = server.json("GET", "/api/v1/namespaces/default/pods/sl")
        return p.get("status", {}).get("phase") == "Running"
    wait_for(running, 30, "pod sl running")
    # a client whose first size comes late (0.5 s): the command waits for it
    out = ws_exec_late_size(server, "/api/v1/namespaces/default/pods/sl/exec?command=stty&"
                            "command=size&stdout=true&tty=true", 0.5, 21, 77)
    assert out == b"21 77\r\n", out
    first_sizes([V6, "exec", "-t", "sl"], dict(os.environ, V6_SERVER=server.url), 20)
    k = Kubectl(server, str(tmp_path))
    first_sizes(k.base + ["exec", "-it", "sl"], k.env, 5)


def first_sizes(argv, env, times):
    """`stty size` as the first thing in argv's terminal, times times, on a
    terminal of another size each time: always that size."""
    for i in range(times):
        rows, cols = 20 + i, 70 + 3 * i
        code, out = run_in_pty(argv + ["--", "stty", "size"], env, rows, cols, [],
                               timeout=30)
        assert (code, out.strip()) == (0, "%d %d" % (rows, cols)), (i, out)


def ws_exec_late_size(server, path, delay, rows, cols, timeout=30):
    """A bare WebSocket v5.channel.k8s.io exec that sends its terminal
    size (channel 4) only after delay seconds; returns its stdout
    (channel 1) once the server closes."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout * TIMEOUT_SCALE)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v5.channel.k8s.io"
                   "\r\n\r\n" % (path, key)).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            assert chunk, buf
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        time.sleep(delay)
        msg = b"\x04" + json.dumps({"Width": cols, "Height": rows}).encode()
        mask = os.urandom(4)
        s.sendall(bytes([0x82, 0x80 | len(msg)]) + mask +
                  bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
        out = b""
        while True:
            while len(buf) < 2 or len(buf) < 2 + (buf[1] & 0x7f):
                chunk = s.recv(65536)
                if not chunk:
                    return out
                buf += chunk
            n = buf[1] & 0x7f
            assert n < 126, "short frames only"
            op, payload, buf = buf[0] & 0x0f, buf[2:2 + n], buf[2 + n:]
            if op == 8:
                return out
            if payload[:1] == b"\x01":
                out += payload[1:]
    finally:
        s.close()
