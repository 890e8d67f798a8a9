"""Shared fixtures for V6's end-to-end tests: a real `v6 server` in a
temporary data directory on a free loopback port, the CLI pointed at it, and
raw HTTP helpers. Standard library only; every process started here is
stopped by its PID."""
import glob
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

V6 = os.environ.get("V6_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "v6")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `v6 server` process; start(), kill(), restart() keep the data dir."""

    def __init__(self, data_dir, extra_args=()):
        self.data_dir = data_dir
        self.port = free_port()
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = os.path.join(data_dir, "server.log")

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=10):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [V6, "server", "--data-dir", self.data_dir,
             "--listen", "127.0.0.1:%d" % self.port] + self.extra_args,
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("v6 server exited: %s" % self.log())
            try:
                status, _, _ = self.request("GET", "/readyz", timeout=1)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("v6 server did not become ready: %s" % self.log())

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15)
        self.proc = None

    def restart(self):
        self.kill()
        return self.start()

    def stop(self):
        self.kill(signal.SIGTERM)

    def request(self, method, path, body=None, headers=None, timeout=10):
        """Returns (status, headers dict, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if body is not None and not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            hdrs = {"Content-Type": "application/json"}
            hdrs.update(headers or {})
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None, expect=None):
        status, _, data = self.request(method, path, body, headers)
        if expect is not None:
            assert status == expect, (status, data[:2000])
        return status, (json.loads(data) if data else None)

    def v6(self, *args, input=None, timeout=60, check=False):
        """Runs the CLI against this server; returns CompletedProcess (text)."""
        env = dict(os.environ, V6_SERVER=self.url)
        p = subprocess.run([V6] + [str(a) for a in args], input=input, env=env,
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("v6 %s failed (%d): %s%s" % (
                " ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
        return p


def own_cgroups():
    """(controller, path) of this process for the cgroup v1 controllers the
    runtime uses; the server, our child, puts pods below the same paths."""
    out = []
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                for c in ctrls.split(","):
                    if c in ("memory", "cpu", "cpuacct", "pids"):
                        out.append((c, path))
    except OSError:
        pass
    return out


def remove_pod_cgroups(data_dir):
    """rmdir the cgroups of the pods of data_dir (their processes are dead)."""
    uids = [os.path.basename(d) for d in
            glob.glob(os.path.join(data_dir, "node", "containers", "*"))]
    for ctrl, path in own_cgroups():
        for uid in uids:
            base = "/sys/fs/cgroup/%s%s/v6/%s" % (ctrl, path.rstrip("/"), uid)
            for attempt in range(20):
                try:
                    for child in glob.glob(os.path.join(base, "*", "")):
                        os.rmdir(child)
                    os.rmdir(base)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)  # processes still exiting


def kill_workloads(data_dir):
    """Stops every container and shim the server of data_dir started (they
    outlive the server by design, so tests must end them). A container whose
    exit.json exists is finished and its pid may be reused: left alone."""
    for d in glob.glob(os.path.join(data_dir, "node", "containers", "*", "*")):
        for name in ("ctr.pid", "shim.pid"):
            if name == "ctr.pid" and os.path.exists(os.path.join(d, "exit.json")):
                continue
            try:
                with open(os.path.join(d, name)) as f:
                    pid = int(f.read().split()[0])
                if name == "ctr.pid":
                    os.killpg(pid, signal.SIGKILL)  # the container leads its group
                else:
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass
    remove_pod_cgroups(data_dir)
    try:  # the proxy process outlives the server too
        with open(os.path.join(data_dir, "proxy", "proxy.pid")) as f:
            os.kill(int(f.read().split()[0]), signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory(prefix="v6-e2e-") as d:
        s = Server(d)
        s.start()
        try:
            yield s
        finally:
            s.kill()
            kill_workloads(d)


@pytest.fixture
def make_server():
    """Factory for servers with extra flags; all are killed at the end."""
    dirs, servers = [], []

    def make(*extra):
        d = tempfile.TemporaryDirectory(prefix="v6-e2e-")
        dirs.append(d)
        s = Server(d.name, extra)
        servers.append(s)
        return s.start()
    yield make
    for s in servers:
        s.kill()
        kill_workloads(s.data_dir)
    for d in dirs:
        d.cleanup()


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="v6-files-") as d:
        yield d


def write(dirpath, name, text):
    path = os.path.join(dirpath, name)
    with open(path, "w") as f:
        f.write(text)
    return path
