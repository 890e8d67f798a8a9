"""One load client for e2e tests: keep-alive HTTP clients in threads that
record every answer, and every unexpected status or exception (of any type,
ValueError from a bad body included) as a failure the test asserts on with
assert_clean(). A client thread never ends silently: whatever it raises is
recorded, and a thread still running at exit is a failure too."""
import http.client
import json
import threading
import time


def is_2xx(status):
    return 200 <= status < 300


def answers(host, port, headers=None, path="/", ok_only=False):
    """True when one GET gets any HTTP answer (for wait_for before a load);
    with ok_only, only a 2xx/3xx answer counts (a route whose backends are
    not programmed yet answers 5xx, which the proxy's figures would show)."""
    try:
        c = http.client.HTTPConnection(host, port, timeout=1)
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            r.read()
            return not ok_only or r.status < 400
        finally:
            c.close()
    except (OSError, http.client.HTTPException):
        return False


def json_version(body):
    """The "version" field of the test app's JSON answer (v6 testapp)."""
    return json.loads(body)["version"]


def version_load(host, port, clients=4):
    """keep-alive clients hammering a Service address with no pause, counting
    the right answers by the test app's version in by_key (a body without
    one is a failure)."""
    return Load(host, port, clients=clients, key=json_version, pause=0)


class Load:
    """clients threads send `method path` to host:port until stop() (at most
    max_seconds). expect(status) says which answers are right; key(body),
    when given, labels each right answer (by_key counts them) and may raise,
    which counts as a failure. results holds (time, ok) for every request."""

    def __init__(self, host, port, clients=1, path="/", method="GET", expect=is_2xx,
                 key=None, pause=0.002, max_seconds=600, timeout=5, headers=None):
        self.host, self.port, self.path, self.method = host, port, path, method
        self.headers = headers or {}
        self.expect, self.key, self.pause = expect, key, pause
        self.max_seconds, self.timeout = max_seconds, timeout
        self.ok = 0
        self.codes = {}
        self.by_key = {}
        self.failures = []
        self.results = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(clients)]

    def _record(self, ok, failure=None, status=None, label=None):
        with self.lock:
            self.results.append((time.time(), ok))
            if status is not None:
                k = "%dxx" % (status // 100)
                self.codes[k] = self.codes.get(k, 0) + 1
            if ok:
                self.ok += 1
                if label is not None:
                    self.by_key[label] = self.by_key.get(label, 0) + 1
            else:
                self.failures.append(failure)

    def _one(self, conn):
        conn.request(self.method, self.path, headers=self.headers)
        r = conn.getresponse()
        body = r.read()
        if not self.expect(r.status):
            self._record(False, "HTTP %d %r" % (r.status, body[:100]), r.status)
        else:
            label = self.key(body) if self.key else None
            self._record(True, status=r.status, label=label)
        return r.getheader("connection", "").lower() != "close"

    def _run(self):
        conn = None
        deadline = time.time() + self.max_seconds
        while not self._stop.is_set() and time.time() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port,
                                                      timeout=self.timeout)
                if not self._one(conn):
                    conn.close()
                    conn = None
            except Exception as e:  # every kind counts, not only OSError
                self._record(False, "%s: %s" % (type(e).__name__, e))
                if conn:
                    conn.close()
                conn = None
                time.sleep(0.01)
            if self.pause:
                time.sleep(self.pause)
        if conn:
            conn.close()

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self.threads:
            t.join(self.timeout + 10)
            if t.is_alive():
                self.failures.append("a client thread did not stop")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def total(self):
        with self.lock:
            return len(self.results)

    def window(self, t0, t1):
        """(requests, failed requests) sent between t0 and t1."""
        with self.lock:
            sel = [ok for t, ok in self.results if t0 <= t < t1]
        return len(sel), sel.count(False)

    def wait_requests(self, n, timeout=30):
        """Waits until n more requests than now were answered or failed."""
        goal = self.total() + n
        deadline = time.time() + timeout
        while self.total() < goal:
            if time.time() > deadline:
                raise AssertionError("load: %d requests not done within %ds (%d done)"
                                     % (n, timeout, self.total()))
            time.sleep(0.01)

    def assert_clean(self, min_ok=1):
        """No failure of any kind, and at least min_ok right answers."""
        with self.lock:
            failures, ok = list(self.failures), self.ok
        assert not failures, "%d of %d requests failed: %s" % (
            len(failures), ok + len(failures), failures[:5])
        assert ok >= min_ok, "only %d requests answered (wanted %d)" % (ok, min_ok)
