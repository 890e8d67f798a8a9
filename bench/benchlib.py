"""Helpers every V6 benchmark driver shares (bench/*/..._bench.py): settings
from the environment, logging, signals, free ports, small statistics and
machine readings, and the cleanup of what a `v6 server` leaves running.
Standard library only."""
import glob
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    raise Interrupted(f"signal {signum}")


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        sys.exit(f"bench: {name} must be an integer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def rss_kb(pid, field="VmRSS:"):
    """A process's resident set (or another /proc/PID/status field) in KiB;
    0 when it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def median(xs):
    """Median of the values that are not None; None when there are none."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def log_tail(path, lines=20):
    try:
        with open(path, errors="replace") as f:
            tail = f.readlines()[-lines:]
    except OSError:
        return
    log(f"last lines of {path}:")
    sys.stderr.write("".join("    " + t for t in tail))


# ---- cleanup of a V6 data dir (containers, shims and the proxy outlive the server)

def read_pid(path):
    """The first number in a pid file; None when it is missing or garbled."""
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def kill_workloads(data_dir):
    """SIGKILLs every container (its process group), shim and the `v6 proxy`
    of a V6 data dir, by the pids the server recorded. A container whose
    exit.json exists is finished and its pid may be reused: left alone."""
    for d in glob.glob(os.path.join(data_dir, "node", "containers", "*", "*")):
        for name in ("ctr.pid", "shim.pid"):
            if name == "ctr.pid" and os.path.exists(os.path.join(d, "exit.json")):
                continue
            pid = read_pid(os.path.join(d, name))
            try:
                if pid and name == "ctr.pid":
                    os.killpg(pid, signal.SIGKILL)    # the container leads its group
                elif pid:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    pid = read_pid(os.path.join(data_dir, "proxy", "proxy.pid"))
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def unmount_pod_dirs(data_dir):
    """Lazily unmounts what runc pods pin under data_dir's pod dirs (their
    IPC namespace and /dev/shm), deepest first, so that the data dir can
    go: left mounted, each run adds ~100 mounts to the host's table, and
    every later unshare(CLONE_NEWNS) copies them (a shim's biggest cost)."""
    import subprocess
    # the pods' state dirs: RUN/pods next to what node/containers links to
    # (tmpfs), and node/pods (no tmpfs, or an older server's pods)
    run = os.path.dirname(os.path.realpath(os.path.join(data_dir, "node", "containers")))
    below = tuple(os.path.realpath(d) + "/" for d in
                  (os.path.join(data_dir, "node", "pods"), os.path.join(run, "pods")))
    with open("/proc/self/mountinfo") as f:
        points = {line.split()[4] for line in f if line.split()[4].startswith(below)}
    for m in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True, timeout=30)


def remove_cgroups(data_dir, timeout_s=3):
    """rmdirs the cgroups V6 made for the pods of data_dir (from each
    container's spec.json), retrying while processes exit. Returns how many
    are left."""
    dirs = set()
    for path in glob.glob(os.path.join(data_dir, "node", "containers", "*", "*", "spec.json")):
        try:
            with open(path) as f:
                groups = (json.load(f).get("cgroups") or {}).values()
        except (OSError, ValueError, AttributeError):
            continue
        for g in groups:
            dirs.update((g, os.path.dirname(g)))      # the container's, then the pod's
    end = time.monotonic() + timeout_s
    while dirs and time.monotonic() < end:
        for d in sorted(dirs, key=len, reverse=True):
            try:
                os.rmdir(d)
                dirs.discard(d)
            except FileNotFoundError:
                dirs.discard(d)
            except OSError:
                pass
        if dirs:
            time.sleep(0.05)
    return len(dirs)


def marked_pids(mark):
    """Pids of the processes whose environment holds BENCH_MARK=mark."""
    out, want = [], f"BENCH_MARK={mark}".encode()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if want in f.read().split(b"\0"):
                    out.append(int(d))
        except OSError:
            pass
    return out


class WatchStream:
    """A watch (`?watch=true`) on the V6 API at 127.0.0.1:port, read by a
    thread: on_event(type, object, receive time) runs per event and returns
    True to stop reading. close() ends it."""

    def __init__(self, port, path):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=None)
        self.conn.request("GET", path)
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RuntimeError(f"watch {path}: answered {self.resp.status}")
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    return
                now = time.time()
                ev = json.loads(line)
                if self.on_event(ev.get("type"), ev.get("object") or {}, now):
                    return
        except Exception:       # closed under us at the end: nothing to keep
            return

    def on_event(self, kind, obj, now):
        return False

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()



class ServiceLoad:
    """Keep-alive clients sending GET / to ip:port until stop (at most
    max_s), each pausing pause_ms between requests. Every request counts:
    a 2xx is ok; any other status or an exception of any kind is a failure,
    counted by kind in failures. For the ok answers whose JSON body names a
    "version" (`v6 testapp`), first[version] and last[version] are the
    wall-clock times it first and last answered. Shared by bench/rollout and
    bench/soak."""

    def __init__(self, ip, clients, pause_ms=0, port=80, max_s=None):
        self.ip, self.port, self.pause_ms, self.max_s = ip, port, pause_ms, max_s
        self.sent = self.ok = 0
        self.failures = {}
        self.first, self.last = {}, {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True)
                        for _ in range(clients)]

    @property
    def failed(self):
        return self.sent - self.ok

    def _one(self, conn):
        """One request: (failure kind or None, version or None, keep conn)."""
        conn.request("GET", "/")
        r = conn.getresponse()
        body = r.read()
        keep = r.getheader("connection", "").lower() != "close"
        if not 200 <= r.status < 300:
            return f"HTTP {r.status}", None, keep
        try:
            version = json.loads(body).get("version")
        except (ValueError, AttributeError):
            version = None          # not the test app: counted, not labelled
        return None, version, keep

    def run(self):
        conn = None
        end = time.monotonic() + self.max_s if self.max_s else None
        while not self.stop.is_set() and (end is None or time.monotonic() < end):
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.ip, self.port, timeout=5)
                what, version, keep = self._one(conn)
                if not keep:
                    conn.close()
                    conn = None
            except Exception as e:  # every kind is a failed request, never a dead client
                what, version = type(e).__name__, None
                if conn:
                    conn.close()
                conn = None
            now = time.time()
            with self.lock:
                self.sent += 1
                if what is None:
                    self.ok += 1
                    self.first.setdefault(version, now)
                    self.last[version] = now
                else:
                    self.failures[what] = self.failures.get(what, 0) + 1
            if self.pause_ms:
                time.sleep(self.pause_ms / 1000)
        if conn:
            conn.close()

    def wait_answers(self, n, timeout_s=30):
        end = time.monotonic() + timeout_s
        while self.sent < n:
            if time.monotonic() > end:
                raise RuntimeError(f"the load got no answers from {self.ip}")
            time.sleep(0.01)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
