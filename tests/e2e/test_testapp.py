"""`v6 testapp`, the test workload: each test starts the real binary on a
free loopback port (--port 0, read back from its "listening" log line) and
checks one behaviour the way a probe, a rollout or a load test would see it.
Every process is killed by its PID at the end; every wait is bounded."""
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

from conftest import V6


class AppProcess:
    """One `v6 testapp` process with its stdout/stderr in files."""

    def __init__(self, args, env, workdir):
        self.out_path = os.path.join(workdir, "stdout.log")
        self.err_path = os.path.join(workdir, "stderr.log")
        full_env = dict(os.environ)
        for k in ("PORT", "POD_IP", "VERSION", "POD_NAME", "POD_NAMESPACE"):
            full_env.pop(k, None)
        full_env.update(env or {})
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [V6, "testapp", "--listen-ip", "127.0.0.1", "--port", "0"] + list(args),
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=full_env)
        self.port = None

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def log_lines(self):
        lines = []
        for line in self.stdout().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                raise AssertionError("stdout line is not JSON: %r" % line)
        return lines

    def wait_log(self, pred, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.log_lines():
                if pred(line):
                    return line
            time.sleep(0.02)
        raise AssertionError("no matching log line in:\n%s%s" % (
            self.stdout()[-3000:], self.stderr()[-2000:]))

    def wait_listening(self, timeout=10):
        line = self.wait_log(lambda l: l.get("msg") == "listening", timeout)
        self.port = line["port"]
        return self

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path, headers=None, method="GET", body=None, timeout=10):
        """Returns (status, headers dict, body bytes) on a fresh connection."""
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def wait_exit(self, timeout=5):
        return self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def testapp():
    """Factory: testapp(*flags, env={}, listen=True) -> AppProcess."""
    apps, dirs = [], []

    def start(*args, env=None, listen=True):
        d = tempfile.TemporaryDirectory(prefix="v6-testapp-")
        dirs.append(d)
        app = AppProcess(args, env, d.name)
        apps.append(app)
        return app.wait_listening() if listen else app
    yield start
    for app in apps:
        app.kill()
    for d in dirs:
        d.cleanup()


def test_root_answers_version_json_and_header(testapp):
    app = testapp("--version-string", "v2",
                  env={"POD_NAME": "web-7d9c-x2k4p", "POD_NAMESPACE": "prod"})
    status, hdrs, body = app.get("/")
    assert status == 200
    assert hdrs["X-Version"] == "v2"
    assert hdrs["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc == {"version": "v2", "pod": "web-7d9c-x2k4p", "namespace": "prod",
                   "ip": "127.0.0.1", "path": "/", "requests": 1}
    status, _, body = app.get("/some/path")
    assert status == 200 and json.loads(body)["path"] == "/some/path"
    assert json.loads(body)["requests"] == 2
    status, hdrs, body = app.get("/version")
    assert (status, body, hdrs["X-Version"]) == (200, b"v2\n", "v2")


def test_env_sets_version_and_flag_wins(testapp):
    app = testapp(env={"VERSION": "from-env"})
    assert json.loads(app.get("/")[2])["version"] == "from-env"
    app2 = testapp("--version-string", "from-flag", env={"VERSION": "from-env"})
    assert json.loads(app2.get("/")[2])["version"] == "from-flag"


def test_error_rate_proportion_over_1000_requests(testapp):
    app = testapp("--error-rate", "0.2", "--quiet")
    c = app.conn()
    codes = {}
    try:
        for _ in range(1000):
            c.request("GET", "/")
            r = c.getresponse()
            r.read()
            codes[r.status] = codes.get(r.status, 0) + 1
    finally:
        c.close()
    assert set(codes) <= {200, 500}
    assert abs(codes.get(500, 0) - 200) <= 30, codes
    # probes are never failed by --error-rate
    assert all(app.get("/healthz")[0] == 200 for _ in range(20))


def test_latency_is_applied_to_every_response(testapp):
    app = testapp("--latency", "200ms", "--latency-jitter", "100ms")
    for path in ("/", "/healthz"):
        t = time.monotonic()
        assert app.get(path)[0] == 200
        took = time.monotonic() - t
        assert 0.2 <= took < 1.5, (path, took)
    t = time.monotonic()
    assert app.get("/delay/300")[0] == 200
    assert 0.5 <= time.monotonic() - t < 2.0


def test_liveness_fails_after_deadline(testapp):
    app = testapp("--fail-liveness-after", "1s")
    assert app.get("/healthz")[:1] == (200,)
    time.sleep(1.2)     # the timer under test: 1 s from the app's start (before t)
    status, _, body = app.get("/healthz")
    assert status == 500, body
    assert app.get("/")[0] == 200       # the app itself still serves


def test_slow_start_keeps_readiness_down_while_listening(testapp):
    app = testapp("--slow-start", "1s")
    assert app.get("/readyz")[0] == 503
    assert app.get("/")[0] == 200       # listening at once
    deadline = time.time() + 5
    while app.get("/readyz")[0] != 200:
        assert time.time() < deadline, "still not ready after 5 s"
        time.sleep(0.05)


def test_not_ready_after_drops_readiness(testapp):
    app = testapp("--not-ready-after", "500ms")
    assert app.get("/readyz")[0] == 200
    time.sleep(0.7)     # the timer under test: 500 ms from the app's start
    assert app.get("/readyz")[0] == 503


def test_startup_delay_does_not_listen_until_it_passed(testapp):
    t = time.monotonic()
    app = testapp("--startup-delay", "700ms", listen=False)
    app.wait_listening()
    assert time.monotonic() - t >= 0.6
    assert app.get("/readyz")[0] == 200


def test_crash_after_exits_with_the_exit_code(testapp):
    app = testapp("--crash-after", "500ms", "--exit-code", "3")
    assert app.get("/")[0] == 200
    assert app.wait_exit(timeout=5) == 3
    line = json.loads(app.stderr().strip().splitlines()[-1])
    assert line["level"] == "error" and "crash" in line["msg"]


def test_exit_endpoint_answers_then_exits(testapp):
    app = testapp()
    status, _, body = app.get("/exit/7")
    assert status == 200 and json.loads(body) == {"exit_code": 7}
    assert app.wait_exit(timeout=5) == 7


def test_sigterm_drains_in_flight_request_then_exits_zero(testapp):
    app = testapp()
    result = {}

    def slow():
        result["resp"] = app.get("/delay/500")
    t = threading.Thread(target=slow)
    t.start()
    deadline = time.time() + 5
    while b"requests_in_flight 2" not in app.get("/metrics")[2]:
        assert time.time() < deadline, "the /delay request never arrived"
        time.sleep(0.01)
    os.kill(app.proc.pid, signal.SIGTERM)
    app.wait_log(lambda l: l.get("msg") == "received SIGTERM, draining 1 requests")
    # no longer accepting while the request drains
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", app.port), timeout=1).close()
    t.join(timeout=5)
    assert not t.is_alive()
    status, hdrs, body = result["resp"]
    assert status == 200 and json.loads(body) == {"delay_ms": 500}
    assert app.wait_exit(timeout=5) == 0


def test_ignore_sigterm_keeps_running_until_sigkill(testapp):
    app = testapp("--ignore-sigterm")
    os.kill(app.proc.pid, signal.SIGTERM)
    app.wait_log(lambda l: "SIGTERM" in l.get("msg", ""))
    time.sleep(1)       # a grace window: nothing to wait for, it must not exit
    assert app.proc.poll() is None
    assert app.get("/")[0] == 200
    app.kill()
    assert app.proc.returncode == -signal.SIGKILL


def test_env_endpoint_shows_the_environment(testapp):
    app = testapp(env={"GREETING": "hello world", "DB_HOST": "db.prod.svc"})
    status, _, body = app.get("/env")
    doc = json.loads(body)
    assert status == 200
    assert doc["GREETING"] == "hello world" and doc["DB_HOST"] == "db.prod.svc"


def test_request_log_line_carries_traceparent(testapp):
    app = testapp()
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    app.get("/traced", headers={"traceparent": tp})
    app.get("/untraced", headers={"traceparent": "garbage"})
    line = app.wait_log(lambda l: l.get("path") == "/traced")
    assert line["msg"] == "request" and line["method"] == "GET"
    assert line["status"] == 200 and line["level"] == "info"
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert line["span_id"] == "00f067aa0ba902b7"
    assert isinstance(line["duration_ms"], (int, float)) and "ts" in line
    bad = app.wait_log(lambda l: l.get("path") == "/untraced")
    assert "trace_id" not in bad


def test_quiet_drops_request_lines_but_not_lifecycle(testapp):
    app = testapp("--quiet")
    app.get("/")
    os.kill(app.proc.pid, signal.SIGTERM)
    assert app.wait_exit() == 0
    msgs = [l["msg"] for l in app.log_lines()]
    assert "request" not in msgs and "listening" in msgs


def test_status_echo_and_metrics(testapp):
    app = testapp()
    assert app.get("/status/503")[0] == 503
    assert app.get("/status/abc")[0] == 400
    status, _, body = app.get("/echo?a=1", method="POST", body=b"payload",
                              headers={"X-Test": "yes"})
    doc = json.loads(body)
    assert (doc["method"], doc["path"], doc["query"], doc["body"]) == \
        ("POST", "/echo", "a=1", "payload")
    assert doc["headers"]["x-test"] == "yes"
    body = app.get("/metrics")[2].decode()
    assert 'requests_total{code="503"} 1' in body
    assert 'requests_total{code="400"} 1' in body
    assert "requests_in_flight 1" in body


def test_bad_flag_is_an_error():
    p = subprocess.run([V6, "testapp", "--error-rate", "2"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 2 and "--error-rate" in p.stderr
