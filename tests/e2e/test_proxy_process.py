"""`v6 proxy` as its own process: the control socket protocol (snapshot ->
ack / nack), serving HTTP and TCP listeners from a snapshot to a real
`v6 testapp` upstream, the admin listener, a restarted proxy serving its
saved snapshot with no server around, SIGTERM draining an in-flight
request, and a seamless restart (`--upgrade`, SIGUSR2: the listening
sockets are handed over, the old proxy drains) with no failed request under
load. When `v6 server` runs the proxy (DATA/proxy), also: the server starts
it detached, kill -9 of the server leaves it serving, a new server adopts
it, and a proxy killed with SIGKILL fails no request: the server keeps
copies of its listening sockets, so connections wait in the backlog until
the restarted proxy takes the sockets over and answers them. Every
process started here is stopped by its PID, gracefully (SIGTERM, exit 0,
no sanitizer line in its log) unless the test is about kill -9."""
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import conftest
from conftest import V6, Server, free_port, report_problem, sanitizer_lines
import load
from test_zero_downtime import deploy, service_address


def wait_for(pred, timeout=10, what="condition"):
    """conftest.wait_for (scaled by V6_TIMEOUT_SCALE) with this file's
    defaults."""
    return conftest.wait_for(pred, timeout, what, interval=0.02)


def check_log(path, who):
    """A sanitizer line in the log at path is a problem for the test."""
    found = sanitizer_lines(path)
    if found:
        report_problem("sanitizer report from %s:\n  %s" % (who, "\n  ".join(found)))


def get(port, path, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def try_get(port, path):
    try:
        return get(port, path, timeout=1)
    except OSError:
        return None


class Proxy:
    def __init__(self, state_dir, admin_port):
        self.dir = state_dir
        self.admin_port = admin_port
        self.proc = None

    def start(self):
        log = open(os.path.join(self.dir, "test-proxy.log"), "ab")
        self.proc = subprocess.Popen(
            [V6, "proxy", "--state-dir", self.dir,
             "--admin", "127.0.0.1:%d" % self.admin_port],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        wait_for(lambda: self.proc.poll() is not None or self.connect_ok(),
                 what="control.sock")
        assert self.proc.poll() is None, self.log()
        return self

    def log(self):
        try:
            with open(os.path.join(self.dir, "test-proxy.log"), "rb") as f:
                return f.read().decode(errors="replace")[-3000:]
        except OSError:
            return ""

    def connect_ok(self):
        try:
            self.control().close()
            return True
        except OSError:
            return False

    def control(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(os.path.join(self.dir, "control.sock"))
        return s

    def kill(self, sig=signal.SIGKILL):
        """kill -9 (for the tests about it); returns the exit status."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=40)
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def stop(self):
        """The graceful stop at a test's end: SIGTERM, the proxy drains and
        must exit 0 (LeakSanitizer reports at that exit); its log must hold
        no sanitizer line. A proxy already gone is not signalled again."""
        p = self.proc
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                report_problem("v6 proxy did not exit on SIGTERM: " + self.log())
        if p is not None and p.returncode != 0:
            report_problem("v6 proxy exited with %d: %s" % (p.returncode, self.log()))
        self.proc = None
        check_log(os.path.join(self.dir, "test-proxy.log"), "v6 proxy")


def call(sock, msg):
    """Sends one control line, returns the reply line (parsed)."""
    sock.sendall((json.dumps(msg) + "\n").encode())
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(65536)
        assert chunk, "control connection closed"
        buf += chunk
    return json.loads(buf)


def snapshot(version, http_port, tcp_port, upstream_port):
    return {
        "version": version,
        "listeners": [
            {"name": "svc/default/web/http", "address": "127.0.0.1", "port": http_port,
             "protocol": "HTTP",
             "routes": [{"name": "svc/default/web",
                         "backends": [{"cluster": "default/web:http", "weight": 1}]}]},
            {"name": "svc/default/web/tcp", "address": "127.0.0.1", "port": tcp_port,
             "protocol": "TCP", "cluster": "default/web:http"},
        ],
        "clusters": {
            "default/web:http": {
                "service": "default/web", "lb": "round_robin",
                "connect_timeout_ms": 1000, "idle_timeout_ms": 60000,
                "endpoints": [{"address": "127.0.0.1", "port": upstream_port,
                               "pod": "web-abc-1", "revision": "abc"}]}},
    }


@pytest.fixture
def upstream(tmp_path):
    """A `v6 testapp` on a free port, stopped with SIGTERM at the end (exit
    0, no sanitizer line on its stderr)."""
    port = free_port()
    err = str(tmp_path / "testapp.log")
    with open(err, "ab") as log:
        p = subprocess.Popen([V6, "testapp", "--listen-ip", "127.0.0.1", "--port", str(port),
                              "--version-string", "v1", "--quiet"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=log)
    try:
        wait_for(lambda: try_get(port, "/healthz"), what="testapp")
        yield port
    finally:
        p.terminate()
        try:
            rc = p.wait(timeout=20 * conftest.TIMEOUT_SCALE)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
        if rc != 0:
            report_problem("v6 testapp exited with %d after SIGTERM" % rc)
        check_log(err, "v6 testapp")


@pytest.fixture
def proxy_dir():
    with tempfile.TemporaryDirectory(prefix="v6-proxy-") as d:
        yield os.path.join(d, "proxy")


def test_proxy_applies_snapshots_serves_http_and_tcp_and_survives_restart(upstream, proxy_dir):
    os.makedirs(proxy_dir)
    admin = free_port()
    http_port, tcp_port = free_port(), free_port()
    p = Proxy(proxy_dir, admin).start()
    try:
        assert oct(os.stat(os.path.join(proxy_dir, "control.sock")).st_mode & 0o777) == "0o600"
        assert get(admin, "/healthz")[0] == 200
        assert get(admin, "/snapshot")[0] == 404
        s = p.control()
        t0 = time.monotonic()
        reply = call(s, {"type": "snapshot", "snapshot": snapshot(5, http_port, tcp_port,
                                                                  upstream)})
        took = time.monotonic() - t0
        assert reply == {"type": "ack", "version": 5}, reply
        assert took < 1.0, took
        status, body = wait_for(lambda: try_get(http_port, "/version"), what="listener")
        assert status == 200 and b"v1" in body
        # The TCP listener passes bytes through to the same upstream.
        assert get(tcp_port, "/version")[0] == 200

        # A malformed snapshot is refused and the old one keeps serving.
        bad = snapshot(6, http_port, tcp_port, upstream)
        bad["listeners"][0]["routes"][0]["backends"][0]["cluster"] = "nope"
        reply = call(s, {"type": "snapshot", "snapshot": bad})
        assert reply["type"] == "nack" and reply["version"] == 6 and reply["error"]
        assert get(http_port, "/version")[0] == 200
        status, body = get(admin, "/snapshot")
        assert status == 200 and json.loads(body)["version"] == 5
        status, body = get(admin, "/metrics")
        assert b"v6_proxy_snapshot_version 5" in body
        assert b'v6_proxy_snapshots_total{outcome="rejected"} 1' in body
        s.close()

        saved = json.load(open(os.path.join(proxy_dir, "snapshot.json")))
        assert saved["version"] == 5

        # kill -9, then a new proxy serves the saved snapshot at once.
        p.kill()
        p.start()
        assert get(http_port, "/version")[0] == 200
        assert json.loads(get(admin, "/snapshot")[1])["version"] == 5
    finally:
        p.stop()


def test_proxy_sigterm_finishes_in_flight_request_then_exits(upstream, proxy_dir):
    os.makedirs(proxy_dir)
    admin, http_port, tcp_port = free_port(), free_port(), free_port()
    p = Proxy(proxy_dir, admin).start()
    try:
        s = p.control()
        assert call(s, {"type": "snapshot", "snapshot": snapshot(1, http_port, tcp_port,
                                                                 upstream)})["type"] == "ack"
        s.close()
        wait_for(lambda: try_get(http_port, "/healthz"), what="listener")
        result = {}

        def slow():
            try:
                result["r"] = get(http_port, "/delay/700", timeout=10)
            except OSError as e:
                result["r"] = e
        t = threading.Thread(target=slow)
        t.start()
        # The request is in flight once the proxy holds its connection.
        wait_for(lambda: b'v6_proxy_active_connections{listener="svc/default/web/http"} 1'
                 in get(admin, "/metrics")[1], what="the slow request at the proxy")
        p.proc.send_signal(signal.SIGTERM)
        t.join(10)
        assert not isinstance(result["r"], Exception), result
        assert result["r"][0] == 200
        assert p.proc.wait(timeout=35) == 0
        assert not os.path.exists(os.path.join(proxy_dir, "control.sock"))
        assert not os.path.exists(os.path.join(proxy_dir, "proxy.pid"))
    finally:
        p.stop()


def test_second_proxy_on_the_same_dir_refuses_to_start(proxy_dir):
    os.makedirs(proxy_dir)
    p = Proxy(proxy_dir, free_port()).start()
    try:
        r = subprocess.run([V6, "proxy", "--state-dir", proxy_dir, "--admin",
                            "127.0.0.1:%d" % free_port()], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 1
        assert "another v6 proxy" in r.stderr
        assert p.connect_ok()
    finally:
        p.stop()


def proxy_pid(data_dir):
    try:
        with open(os.path.join(data_dir, "proxy", "proxy.pid")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def test_server_runs_proxy_that_outlives_kill_9_and_is_adopted():
    with tempfile.TemporaryDirectory(prefix="v6-e2e-") as d:
        s = Server(d)
        s.start()
        try:
            pid = wait_for(lambda: proxy_pid(d), timeout=10, what="proxy.pid")
            admin = open(os.path.join(d, "proxy", "admin.addr")).read().strip()
            admin_port = int(admin.rsplit(":", 1)[1])
            wait_for(lambda: try_get(admin_port, "/snapshot"), what="first snapshot")
            s.kill()                        # kill -9 of the server
            assert alive(pid)
            assert get(admin_port, "/healthz")[0] == 200
            s.start()
            wait_for(lambda: "adopted the running proxy (pid %d)" % pid in s.log(),
                     timeout=20, what="the new server adopting the proxy")
            assert proxy_pid(d) == pid      # adopted, not restarted
            assert alive(pid)
            assert open(os.path.join(d, "proxy", "admin.addr")).read().strip() == admin
        finally:
            s.close()       # SIGTERM to the server, then to the proxy (must exit 0)


def read_pid(state_dir):
    try:
        with open(os.path.join(state_dir, "proxy.pid")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def loads(port):
    """Two keep-alive clients and two opening a connection per request
    (Connection: close: every request goes through the listening socket
    being handed over); each checks the body is the upstream's."""
    return (load.Load("127.0.0.1", port, clients=2, key=load.json_version, pause=0),
            load.Load("127.0.0.1", port, clients=2, key=load.json_version, pause=0,
                      headers={"Connection": "close"}))


def started_proxy_with_snapshot(proxy_dir, upstream):
    os.makedirs(proxy_dir)
    admin, http_port, tcp_port = free_port(), free_port(), free_port()
    p = Proxy(proxy_dir, admin).start()
    s = p.control()
    assert call(s, {"type": "snapshot", "snapshot": snapshot(1, http_port, tcp_port,
                                                             upstream)})["type"] == "ack"
    s.close()
    wait_for(lambda: try_get(http_port, "/healthz"), what="listener")
    return p, admin, http_port, tcp_port


def assert_no_sanitizer_report(log):
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error"):
        assert bad not in log, log


def assert_successor_serves(proxy_dir, old_pid, admin, http_port, tcp_port, upstream):
    new_pid = read_pid(proxy_dir)
    assert new_pid and new_pid != old_pid and alive(new_pid)
    assert get(http_port, "/version")[0] == 200
    assert get(tcp_port, "/version")[0] == 200          # TCP listener handed over too
    assert get(admin, "/healthz")[0] == 200             # and the admin listener
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(os.path.join(proxy_dir, "control.sock"))  # the successor's control.sock
    reply = call(s, {"type": "snapshot", "snapshot": snapshot(2, http_port, tcp_port,
                                                              upstream)})
    s.close()
    assert reply == {"type": "ack", "version": 2}, reply
    _, body = get(admin, "/metrics")
    assert b"v6_proxy_snapshot_version 2" in body
    return new_pid


def test_upgrade_takes_listening_sockets_over_under_load_without_a_failed_request(
        upstream, proxy_dir):
    p, admin, http_port, tcp_port = started_proxy_with_snapshot(proxy_dir, upstream)
    old_pid = p.proc.pid
    new = None
    try:
        ka, nc = loads(http_port)
        with ka, nc:
            wait_for(lambda: ka.ok > 50 and nc.ok > 50, what="load before the upgrade")
            log = open(os.path.join(proxy_dir, "test-proxy.log"), "ab")
            new = subprocess.Popen([V6, "proxy", "--state-dir", proxy_dir, "--admin",
                                    "127.0.0.1:%d" % admin, "--upgrade"],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            assert p.proc.wait(timeout=40) == 0, p.log()    # drained and exited
            ka.wait_requests(50)
            nc.wait_requests(50)
        ka.assert_clean(min_ok=100)
        nc.assert_clean(min_ok=100)
        assert new.poll() is None, p.log()
        assert read_pid(proxy_dir) == new.pid
        assert_successor_serves(proxy_dir, old_pid, admin, http_port, tcp_port, upstream)
        new.send_signal(signal.SIGTERM)                 # the successor stops cleanly too
        assert new.wait(timeout=40) == 0, p.log()
        assert_no_sanitizer_report(p.log())
    finally:
        p.stop()
        if new and new.poll() is None:
            new.terminate()
            try:
                new.wait(timeout=40)
            except subprocess.TimeoutExpired:
                new.kill()
                new.wait()
                report_problem("the successor proxy did not exit on SIGTERM")


def test_sigusr2_restarts_the_proxy_seamlessly_under_load(upstream, proxy_dir):
    p, admin, http_port, tcp_port = started_proxy_with_snapshot(proxy_dir, upstream)
    old_pid = p.proc.pid
    try:
        ka, nc = loads(http_port)
        with ka, nc:
            wait_for(lambda: ka.ok > 50 and nc.ok > 50, what="load before SIGUSR2")
            p.proc.send_signal(signal.SIGUSR2)
            assert p.proc.wait(timeout=40) == 0, p.log()
            ka.wait_requests(50)
            nc.wait_requests(50)
        ka.assert_clean(min_ok=100)
        nc.assert_clean(min_ok=100)
        new_pid = assert_successor_serves(proxy_dir, old_pid, admin, http_port, tcp_port,
                                          upstream)
        assert "SIGUSR2: started the new proxy" in p.log()
        os.kill(new_pid, signal.SIGTERM)                # not our child: wait for it to go
        wait_for(lambda: not os.path.exists("/proc/%d" % new_pid), timeout=40,
                 what="the successor to exit")
        assert_no_sanitizer_report(p.log())
    finally:
        p.stop()
        pid = read_pid(proxy_dir)
        if pid and pid != old_pid and alive(pid):
            os.kill(pid, signal.SIGTERM)
            if conftest.wait_gone([pid], 40):
                os.kill(pid, signal.SIGKILL)
                report_problem("the successor proxy did not exit on SIGTERM")


def paced_requests(host, port, count, every_s, on_request=None):
    """count requests, one new connection each, started every_s apart; for
    each, (start time, ok). on_request(i) runs before request i."""
    out = []
    t_next = time.monotonic()
    for i in range(count):
        if on_request:
            on_request(i)
        t0 = time.monotonic()
        ok = False
        try:
            c = http.client.HTTPConnection(host, port, timeout=2)
            c.request("GET", "/", headers={"Connection": "close"})
            r = c.getresponse()
            r.read()
            c.close()
            ok = r.status == 200
        except (OSError, http.client.HTTPException):
            pass
        out.append((t0, ok))
        t_next += every_s
        time.sleep(max(0.0, t_next - time.monotonic()))
    return out


def test_server_restarts_a_proxy_killed_with_sigkill_without_a_failed_request(server):
    deploy(server, "v1")
    ip = service_address(server)
    state = os.path.join(server.data_dir, "proxy")
    old_pid = read_pid(state)
    assert old_pid and alive(old_pid)
    killed = {}

    def kill_at_100(i):
        if i == 100:
            killed["t"] = time.monotonic()
            os.kill(old_pid, signal.SIGKILL)

    results = paced_requests(ip, 80, 600, 0.005, kill_at_100)
    failed = [t for t, ok in results if not ok]
    assert all(ok for _, ok in results[:100]), "failures before the kill"
    new_pid = read_pid(state)
    assert new_pid and new_pid != old_pid and alive(new_pid), "the proxy was not restarted"
    # The gap: from the kill to the first request of the unbroken run of
    # successes that follows (every later request must succeed).
    last_fail = max(failed) if failed else killed["t"]
    assert all(ok for t, ok in results if t > last_fail)
    resumed = min(t for t, ok in results if t > last_fail)
    gap_ms = (resumed - killed["t"]) * 1000
    print("kill -9 of the proxy: %d of %d requests failed, gap %.0f ms"
          % (len(failed), len(results), gap_ms))
    # Without the kept sockets: connections refused for ~40-120 ms (7-23 of
    # the 600 requests failed).
    assert not failed, "gap %.0f ms, %d failed" % (gap_ms, len(failed))
    with open(os.path.join(state, "proxy.log")) as f:
        assert "took the listening sockets the server kept" in f.read()
