"""Shared fixtures for V6's end-to-end tests: a real `v6 server` in a
temporary data directory on a port it picked itself (--listen 127.0.0.1:0),
the CLI pointed at it, raw HTTP helpers, wait_for(), and the checks every
test gets: servers, proxies and shims are stopped gracefully and must exit
cleanly, no sanitizer report may appear in any V6 process's output, and
under CI=true a skip fails unless tests/skip-allowlist.txt lists it.
Standard library only; every process started here is stopped by its PID."""
import glob
import http.client
import json
import os
import queue
import random
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

V6 = os.environ.get("V6_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "v6")

# The test workload's OCI image (Makefile: scripts/testapp-image.sh), with
# the tags examples/ and the README use: localhost:5000/v6/testapp:0.1..0.3.
TESTAPP_TAR = os.path.join(os.path.dirname(os.path.abspath(V6)), "images", "testapp.tar")

# Waits are multiplied by this (the sanitizer pass sets 3: everything is slower).
TIMEOUT_SCALE = float(os.environ.get("V6_TIMEOUT_SCALE") or 1)

# What ASan, LSan and UBSan print; any of it in a V6 process's output fails the test.
SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                          r"runtime error:")

# Problems found while stopping processes (non-zero exits, sanitizer reports);
# the autouse fixture `v6_clean_exit` fails the test that produced them.
_problems = []


def _random_free_port(lo, hi):
    """A port of lo-hi that a bind to every address accepted a moment ago."""
    for _ in range(200):
        port = random.randint(lo, hi)
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port in %d-%d" % (lo, hi))


def free_port():
    """A port free a moment ago. Racy (another process may take it before
    the caller binds it): prefer letting the program bind port 0 and report
    its port, as Server does; kept for programs that cannot. Picked at
    random below the kernel's ephemeral range (32768-60999) and the NodePort
    range, so that neither the source port of some other test's outgoing
    connection nor another xdist worker's pick takes it in the meantime."""
    return _random_free_port(20000, 29999)


def free_node_port():
    """A port in the NodePort range (30000-32767) free a moment ago, for
    tests that ask for a node port of their choice (racy like free_port)."""
    return _random_free_port(30000, 32767)


def wait_for(cond, timeout, what, interval=0.05):
    """Polls cond() until it returns something truthy and returns that; after
    timeout seconds (times V6_TIMEOUT_SCALE) raises AssertionError naming
    what was awaited and cond's last value. A slow machine gets a longer
    wait, never a skip."""
    deadline = time.monotonic() + timeout * TIMEOUT_SCALE
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (
                timeout * TIMEOUT_SCALE, what, last))
        time.sleep(interval)


def sanitizer_lines(path, limit=20):
    """Lines of the file at path that a sanitizer wrote."""
    out = []
    try:
        with open(path, "rb") as f:
            for line in f:
                text = line.decode(errors="replace").rstrip()
                if SANITIZER_RE.search(text):
                    out.append("%s: %s" % (path, text[:300]))
                    if len(out) >= limit:
                        break
    except OSError:
        pass
    return out


def v6_logs(data_dir):
    """Every file a V6 process of data_dir writes its stderr to: the server's
    log, the proxy's, each shim's and each container's (v6 testapp runs as
    a container)."""
    pats = ["server.log", "proxy/*.log", "node/containers/*/*/shim.log",
            "node/pods/*/*/*.log*"]
    return [p for pat in pats for p in sorted(glob.glob(os.path.join(data_dir, pat)))]


def check_sanitizer_logs(data_dir):
    """Records every sanitizer report in data_dir's logs as a problem."""
    for path in v6_logs(data_dir):
        found = sanitizer_lines(path)
        if found:
            _problems.append("sanitizer report:\n  " + "\n  ".join(found))


def report_problem(msg):
    _problems.append(msg)


def alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pids, timeout):
    """Waits until none of pids runs; returns those still running."""
    deadline = time.monotonic() + timeout * TIMEOUT_SCALE
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [p for p in left if alive(p)]
    return left


def own_ranges():
    """A pod range and a Service range (/24 each) of their own for one server,
    inside 127.0.0.0/8 and away from 127.0.0.0/16 and the defaults a demo
    uses (127.1.0.0/16, 127.2.0.0/16), so that tests, a running demo and pods
    a crashed test left behind never share an address."""
    b, c = random.randint(16, 250), random.randrange(0, 254, 2)
    return "127.%d.%d.0/24" % (b, c), "127.%d.%d.0/24" % (b, c + 1)


class Server:
    """One `v6 server` process with its own pod and Service ranges. start()
    lets it pick a free port (the port is kept by restart()); stop() is the
    graceful SIGTERM stop and checks the exit; kill() is kill -9. The data
    dir survives both."""

    def __init__(self, data_dir, extra_args=(), tls=False):
        self.data_dir = data_dir
        # The suite speaks plain HTTP to its servers unless a test asks for
        # the default, HTTPS with the certificates in DATA/pki (tls=True).
        self.tls = tls
        self.port = 0
        self.pod_cidr, self.service_cidr = own_ranges()
        # The suite's pods run host commands: the process runtime, unless a
        # test asks for runc (runtimeClassName, or its own --default-runtime).
        runtime = [] if "--default-runtime" in extra_args else [
            "--default-runtime", "process"]
        self.extra_args = ["--pod-cidr", self.pod_cidr,
                           "--service-cidr", self.service_cidr] + runtime + \
            list(extra_args) + ([] if tls else ["--insecure-http"])
        self.proc = None
        self.log_path = os.path.join(data_dir, "server.log")
        self.addr_path = os.path.join(data_dir, "server.address")

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    @property
    def pki(self):
        return os.path.join(self.data_dir, "pki")

    def ssl_context(self, client_cert=True):
        """Trusts this server's CA; presents the admin certificate."""
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, "ca.crt"))
        if client_cert:
            ctx.load_cert_chain(os.path.join(self.pki, "admin.crt"),
                                os.path.join(self.pki, "admin.key"))
        return ctx

    def kubeconfig(self):
        """The admin kubeconfig `v6 kubeconfig` writes (TLS servers)."""
        path = os.path.join(self.data_dir, "admin.kubeconfig")
        if not os.path.exists(path):
            subprocess.run([V6, "kubeconfig", "--data-dir", self.data_dir, "--out", path],
                           check=True, capture_output=True,
                           timeout=30 * TIMEOUT_SCALE)
        return path

    def service_ip(self, n):
        """The n-th address of this server's Service range."""
        return self.service_cidr.rsplit(".", 1)[0] + ".%d" % n

    def in_range(self, ip, cidr):
        return ip.rsplit(".", 1)[0] == cidr.rsplit(".", 1)[0]

    def _bound_port(self):
        try:
            with open(self.addr_path) as f:
                text = f.read()
        except OSError:
            return 0
        if not text.endswith("\n"):
            return 0  # still being written
        return int(text.strip().rsplit(":", 1)[1])

    def start(self, timeout=20):
        try:
            os.unlink(self.addr_path)
        except FileNotFoundError:
            pass
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [V6, "server", "--data-dir", self.data_dir,
             "--listen", "127.0.0.1:%d" % self.port] + self.extra_args,
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout * TIMEOUT_SCALE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("v6 server exited: %s" % self.log())
            port = self._bound_port()
            if port:
                self.port = port
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
        """Sends sig (default: kill -9) and reaps the process."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=15 * TIMEOUT_SCALE)
        self.proc = None

    def restart(self):
        """kill -9, then start on the same port and data."""
        self.kill()
        return self.start()

    def stop(self, timeout=20):
        """The graceful stop: SIGTERM, then the server must exit 0 within
        timeout (LeakSanitizer reports at this exit). A failure is recorded
        for the test and the process is killed."""
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=timeout * TIMEOUT_SCALE)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            report_problem("v6 server did not exit within %ds of SIGTERM: %s" % (
                timeout * TIMEOUT_SCALE, self.log()))
            return
        if rc != 0:
            report_problem("v6 server exited with %d after SIGTERM: %s" % (rc, self.log()))

    def close(self):
        """End of a test: graceful stop of the server, then of everything it
        started; problems are recorded for the test."""
        self.stop()
        stop_workloads(self.data_dir)

    def connect(self, timeout=None):
        """A connection to the API (HTTPS as the admin on a TLS server)."""
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.ssl_context())
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        """Returns (status, headers dict, body bytes)."""
        conn = self.connect(timeout)
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
        """Runs the CLI against this server; returns CompletedProcess (text).
        A sanitizer report on its stderr is a problem for the test."""
        if self.tls:
            env = dict(os.environ, KUBECONFIG=self.kubeconfig())
            env.pop("V6_SERVER", None)
        else:
            env = dict(os.environ, V6_SERVER=self.url)
        p = subprocess.run([V6] + [str(a) for a in args], input=input, env=env,
                           capture_output=True, text=True,
                           timeout=timeout * TIMEOUT_SCALE)
        bad = [l for l in p.stderr.splitlines() if SANITIZER_RE.search(l)]
        if bad:
            report_problem("sanitizer report from v6 %s:\n  %s" % (
                " ".join(map(str, args)), "\n  ".join(bad[:20])))
        if check and p.returncode != 0:
            raise AssertionError("v6 %s failed (%d): %s%s" % (
                " ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
        if p.returncode == 0:
            record_applied(args, input)
        return p


# V6_SCHEMA_RECORD=DIR: every manifest a test applies successfully with `v6 apply`
# is kept in DIR, one file per apply named after the test, for
# `tests/schemas/check.py --recorded DIR` (manifests V6 accepts must port).
SCHEMA_RECORD = os.environ.get("V6_SCHEMA_RECORD")


def record_applied(args, input):
    if not SCHEMA_RECORD or not args or str(args[0]) != "apply":
        return
    texts = [input] if input is not None else []
    args = [str(a) for a in args]
    for i, a in enumerate(args[:-1]):
        if a in ("-f", "--filename") and os.path.isfile(args[i + 1]):
            with open(args[i + 1]) as f:
                texts.append(f.read())
    test = os.environ.get("PYTEST_CURRENT_TEST", "unknown").split(" ")[0]
    for t in texts:
        name = "%s.%d.%d.yaml" % (re.sub(r"[^A-Za-z0-9_.-]", "_", test), os.getpid(),
                                  time.monotonic_ns())
        with open(os.path.join(SCHEMA_RECORD, name), "w") as f:
            f.write("# %s\n%s" % (test, t))


class Watch:
    """A watch on a list path of server from resourceVersion rv (default:
    now), opened at construction so that it sees every change made after;
    a thread reads its events. Use it for "this happens" (wait) and for
    "nothing happens" (assert_quiet) instead of sleeping and comparing."""

    def __init__(self, server, path, rv=None):
        full = path + ("&" if "?" in path else "?") + "watch=true"
        if rv is None:
            _, lst = server.json("GET", path, expect=200)
            rv = lst["metadata"]["resourceVersion"]
        full += "&resourceVersion=%s" % rv
        self.conn = server.connect()
        self.conn.request("GET", full)
        self.sock = self.conn.sock
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200, (self.resp.status, self.resp.read(500))
        self.events = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for line in iter(self.resp.readline, b""):
                if line.strip():
                    self.events.put(json.loads(line))
        except Exception as e:  # closed by close(), or a broken stream
            self.events.put({"type": "CLOSED", "error": str(e)})
        self.events.put({"type": "CLOSED"})

    def _next(self, deadline):
        try:
            ev = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None
        if ev["type"] != "BOOKMARK":
            self.seen.append(ev)
        return ev

    def wait(self, pred, timeout, what):
        """The first event for which pred(event) holds."""
        deadline = time.monotonic() + timeout * TIMEOUT_SCALE
        while True:
            ev = self._next(deadline)
            if ev is None or ev["type"] == "CLOSED":
                raise AssertionError("no watch event for %s within %ss (%s)" % (
                    what, timeout * TIMEOUT_SCALE, "stream ended" if ev else "timeout"))
            if pred(ev):
                return ev

    def assert_quiet(self, seconds, what, pred=lambda ev: True):
        """No event (or none for which pred holds) for seconds."""
        deadline = time.monotonic() + seconds
        while True:
            ev = self._next(deadline)
            if ev is None:
                return
            assert ev["type"] != "CLOSED", "the watch for %s ended" % what
            assert not (ev["type"] != "BOOKMARK" and pred(ev)), "%s, but got %s %s" % (
                what, ev["type"], json.dumps(ev.get("object"))[:500])

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def own_cgroups():
    """(controller, path) of this process for every cgroup v1 hierarchy: the
    runtime uses memory, cpu, cpuacct and pids, runc makes groups in all of
    them; the server, our child, puts pods below the same paths."""
    out = []
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                for c in ctrls.split(","):
                    c = c[len("name="):] if c.startswith("name=") else c
                    if c and os.path.isdir("/sys/fs/cgroup/" + c):
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


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def runs_with(pid, arg):
    """True when pid's command line holds arg: still the process started
    with it (the shim of a container dir, the proxy of a state dir), not a
    reused pid."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return arg.encode() in f.read().split(b"\0")
    except OSError:
        return False


def signal_pid(pid, sig, group=False):
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except OSError:
        pass


def delete_runc_containers(data_dir):
    """`runc delete -f` whatever runc still knows in the runc root of
    data_dir (the shims do it themselves; this is for a test that failed
    half-way): no test leaves a runc container behind."""
    root = os.path.join(data_dir, "node", "runc")
    if not os.path.isdir(root):
        return
    out = subprocess.run(["runc", "--root", root, "list", "-q"], capture_output=True,
                         text=True, timeout=30).stdout
    for cid in out.split():
        subprocess.run(["runc", "--root", root, "delete", "-f", cid],
                       capture_output=True, timeout=30)
    unmount_pod_dirs(data_dir)


def unmount_pod_dirs(data_dir):
    """Lazily unmounts what runc pods hold under data_dir's pod dirs (the
    pod's pinned IPC namespace and /dev/shm) so that the data dir can go;
    deepest first."""
    # the pods' state dirs: RUN/pods next to what node/containers links to
    # (tmpfs), and node/pods (no tmpfs, or an older server's pods)
    run = os.path.dirname(os.path.realpath(os.path.join(data_dir, "node", "containers")))
    below = tuple(os.path.realpath(d) + "/" for d in
                  (os.path.join(data_dir, "node", "pods"), os.path.join(run, "pods")))
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if line.split()[4].startswith(below)]
    for m in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True, timeout=30)


def stop_workloads(data_dir, grace=5):
    """Stops every container, shim and the proxy the server of data_dir
    started (they outlive the server by design, so tests must end them):
    SIGTERM first, SIGKILL after grace seconds. Containers are user
    workloads and may ignore SIGTERM; the proxy must drain and exit on it.
    Then scans every V6 log of data_dir for sanitizer reports. A container
    whose exit.json exists is finished and its pid may be reused: left alone."""
    ctrs, shims = [], []
    for d in glob.glob(os.path.join(data_dir, "node", "containers", "*", "*")):
        shim = read_pid(os.path.join(d, "shim.pid"))
        if shim and runs_with(shim, d):
            shims.append(shim)
        if not os.path.exists(os.path.join(d, "exit.json")):
            ctr = read_pid(os.path.join(d, "ctr.pid"))
            if ctr:
                ctrs.append(ctr)
    proxy = read_pid(os.path.join(data_dir, "proxy", "proxy.pid"))
    proxy = proxy if proxy and runs_with(proxy, os.path.join(data_dir, "proxy")) else 0
    for pid in ctrs:
        signal_pid(pid, signal.SIGTERM, group=True)  # the container leads its group
    if proxy:
        signal_pid(proxy, signal.SIGTERM)
    for pid in wait_gone(ctrs + shims, grace):
        signal_pid(pid, signal.SIGKILL, group=pid in ctrs)
    wait_gone(ctrs + shims, 5)
    if proxy and wait_gone([proxy], 35):  # it drains for at most 30 s
        signal_pid(proxy, signal.SIGKILL)
        report_problem("v6 proxy (pid %d) did not exit on SIGTERM" % proxy)
    delete_runc_containers(data_dir)
    remove_pod_cgroups(data_dir)
    check_sanitizer_logs(data_dir)


# The old name: test files written before the graceful stop call it.
kill_workloads = stop_workloads


@pytest.fixture(autouse=True)
def v6_clean_exit():
    """Fails the test when a V6 process it started exited badly or printed a
    sanitizer report (fixtures record those while stopping processes)."""
    del _problems[:]
    yield
    problems, _problems[:] = list(_problems), []
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory(prefix="v6-e2e-") as d:
        s = Server(d)
        s.start()
        try:
            yield s
        finally:
            s.close()


@pytest.fixture
def tls_server():
    """A server as a user starts it: HTTPS with its own CA in DATA/pki."""
    with tempfile.TemporaryDirectory(prefix="v6-e2e-") as d:
        s = Server(d, tls=True)
        s.start()
        try:
            yield s
        finally:
            s.close()


@pytest.fixture
def make_server():
    """Factory for servers with extra flags (tls=True: HTTPS); all are
    stopped at the end."""
    dirs, servers = [], []

    def make(*extra, tls=False):
        d = tempfile.TemporaryDirectory(prefix="v6-e2e-")
        dirs.append(d)
        s = Server(d.name, extra, tls=tls)
        servers.append(s)
        return s.start()
    yield make
    for s in servers:
        s.close()
    for d in dirs:
        d.cleanup()


def _examples(make_server, tls):
    assert os.path.exists(TESTAPP_TAR), "no %s: run make" % TESTAPP_TAR
    s = make_server("--default-runtime", "runc", tls=tls)
    p = s.v6("image", "import", TESTAPP_TAR, timeout=120)
    assert p.returncode == 0 and "localhost:5000/v6/testapp:0.1" in p.stdout, p
    return s


@pytest.fixture
def examples_server(make_server):
    """A server that runs examples/ as shipped: runc (the default as root)
    with the test workload's image imported, as the README tour does."""
    return _examples(make_server, False)


@pytest.fixture
def examples_tls_server(make_server):
    """examples_server as the README tour starts it: HTTPS (tls=True)."""
    return _examples(make_server, True)


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="v6-files-") as d:
        yield d


def write(dirpath, name, text):
    path = os.path.join(dirpath, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# ---- skips: under CI=true a skip fails unless the allow-list names it ----
ALLOWLIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                         "skip-allowlist.txt")


def load_allowlist(path=ALLOWLIST):
    """{"test_file.py::test_name": reason} from the allow-list file; lines
    are `test_file.py::test_name  reason` (or `test_file.py  reason` for a
    whole file), # starts a comment."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    name, _, reason = line.partition(" ")
                    out[name] = reason.strip()
    except FileNotFoundError:
        pass
    return out


def allowlisted(nodeid, allow):
    """Whether nodeid (tests/e2e/test_x.py::test_y[param]) is allowed to skip."""
    short = nodeid.rsplit("/", 1)[-1]
    return any(k in allow for k in (short, short.split("[", 1)[0], short.split("::", 1)[0]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.skipped or os.environ.get("CI") != "true":
        return
    if allowlisted(rep.nodeid, load_allowlist()):
        return
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    rep.outcome = "failed"
    rep.longrepr = ("skipped, and CI=true allows only the skips listed in "
                    "tests/skip-allowlist.txt: %s" % reason)


def orphan_run_dirs():
    """The run dirs (node_rundir.c: /run/v6-UID/X or /dev/shm/v6-UID/X, the
    containers' state on tmpfs) whose data dir is gone or no longer links to
    them; a server sweeps these only a minute after, so without this each e2e
    run would leave its servers' run dirs in memory."""
    bases = ["/run/v6-%d" % os.getuid(), "/dev/shm/v6-%d" % os.getuid()]
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    found = []
    for d in (os.path.join(b, n) for b in bases if os.path.isdir(b) for n in os.listdir(b)):
        try:
            with open(os.path.join(d, "owner")) as f:
                owner = f.read().strip()
            if time.time() - os.stat(os.path.join(d, "owner")).st_mtime < 60:
                continue  # its server may be between making it and linking it
        except OSError:
            continue  # a server is still making it, or not ours to judge
        link = os.path.join(owner, "containers")
        if os.path.realpath(link) == os.path.realpath(os.path.join(d, "containers")):
            continue
        if any(m == d or m.startswith(d + "/") for m in mounts):
            continue
        found.append(d)
    return found


def pytest_sessionfinish(session, exitstatus):
    """Removes the run dirs of the servers this session's tests started and
    removed (every worker does it at its end; live servers keep theirs)."""
    for d in orphan_run_dirs():
        subprocess.run(["rm", "-rf", "--one-file-system", d], capture_output=True, timeout=60)
