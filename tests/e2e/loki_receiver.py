"""A Loki push endpoint written in the test suite from Loki's HTTP API
documentation, for the shipper's e2e tests and bench (Debian has no Grafana
Loki: its `loki` package is a genetics program, MCMC linkage analysis).

It keeps what Loki 2.4 enforces on the push path with ordered writes
(`unordered_writes: false`): per stream, an entry older than the stream's
last one is refused ("entry out of order"), one equal to the last entry
(same timestamp and line) is dropped silently as a duplicate, other entries
of the same request are kept and the request answers 400 when any entry was
refused; label names must match [a-zA-Z_][a-zA-Z0-9_]*; lines above
max_line_size are refused. The body is JSON, gzip-compressed when
Content-Encoding says so. Storage survives stop()/start() on the same port
(a restarted Loki with its data). Failure modes for the tests: answer 429
the next N pushes, hang (accept and never answer), or be down.

Reads: GET /loki/api/v1/query_range?query={k="v",...}&limit=N&direction=
forward (stream selectors with = only), /ready."""
import gzip
import json
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
SELECTOR_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


class LokiReceiver:
    def __init__(self, port=0, max_line_size=0, keep_lines=True):
        self.port = port
        self.keep_lines = keep_lines   # False: keep (ts, len) only (bench)
        self.max_line_size = max_line_size
        self.lock = threading.Lock()
        self.streams = {}          # frozenset(labels) -> [(ts, line)]
        self.pushes = []           # (monotonic time, status, entries in request)
        self.refused = 0           # entries refused (out of order, too long...)
        self.duplicates = 0        # entries dropped as duplicates
        self.fail_429 = 0          # answer 429 to this many pushes
        self.hang = False          # accept pushes and never answer
        self.httpd = None
        self.thread = None
        self.hung = []             # sockets of hung requests

    # ---- lifecycle -------------------------------------------------------
    def start(self):
        recv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                recv._get(self)

            def do_POST(self):
                recv._post(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Loki goes away: the port refuses connections until start()."""
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        self.release_hung()

    def release_hung(self):
        with self.lock:
            hung, self.hung = self.hung, []
        for ev in hung:
            ev.set()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # ---- push ------------------------------------------------------------
    def _post(self, h):
        n = int(h.headers.get("Content-Length", "0"))
        body = h.rfile.read(n)
        if h.path != "/loki/api/v1/push":
            return self._reply(h, 404, b"404 page not found\n")
        if self.hang:
            ev = threading.Event()
            with self.lock:
                self.hung.append(ev)
            ev.wait(120)
            h.close_connection = True
            return
        with self.lock:
            if self.fail_429 > 0:
                self.fail_429 -= 1
                self.pushes.append((time.monotonic(), 429, 0))
                return self._reply(h, 429, b"Ingestion rate limit exceeded\n")
        try:
            if h.headers.get("Content-Encoding", "") == "gzip":
                body = gzip.decompress(body)
            if not h.headers.get("Content-Type", "").startswith("application/json"):
                raise ValueError("only JSON pushes here")
            req = json.loads(body)
        except (ValueError, OSError) as e:
            return self._reply(h, 400, ("bad push: %s\n" % e).encode())
        errors, total = [], 0
        with self.lock:
            for s in req.get("streams", []):
                labels = s.get("stream") or {}
                if not labels or not all(LABEL_RE.match(k) for k in labels):
                    errors.append("invalid labels %r" % labels)
                    continue
                key = frozenset(labels.items())
                entries = self.streams.setdefault(key, [])
                for ts, line in s.get("values", []):
                    total += 1
                    ts = int(ts)
                    if self.max_line_size and len(line.encode()) > self.max_line_size:
                        self.refused += 1
                        errors.append("max line size exceeded")
                        continue
                    if entries and ts < entries[-1][0]:
                        self.refused += 1
                        errors.append("entry out of order for stream %r" % labels)
                        continue
                    if entries and ts == entries[-1][0] and line == entries[-1][1]:
                        self.duplicates += 1
                        continue
                    entries.append((ts, line if self.keep_lines else len(line)))
            status = 400 if errors else 204
            self.pushes.append((time.monotonic(), status, total))
        self._reply(h, status, ("\n".join(errors[:5]) + "\n").encode() if errors else b"")

    def _reply(self, h, status, body):
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    # ---- reads -----------------------------------------------------------
    def _get(self, h):
        u = urllib.parse.urlparse(h.path)
        if u.path == "/ready":
            return self._reply(h, 200, b"ready\n")
        if u.path != "/loki/api/v1/query_range":
            return self._reply(h, 404, b"404 page not found\n")
        q = urllib.parse.parse_qs(u.query)
        sel = self.parse_selector(q.get("query", ["{}"])[0])
        limit = int(q.get("limit", ["100"])[0])
        result = []
        for labels, values in self.select(sel):
            result.append({"stream": labels,
                           "values": [[str(ts), line] for ts, line in values[:limit]]})
        body = json.dumps({"status": "success", "data": {
            "resultType": "streams", "result": result}}).encode()
        self._reply(h, 200, body)

    @staticmethod
    def parse_selector(q):
        q = q.strip()
        assert q.startswith("{") and q.endswith("}"), q
        return dict((k, json.loads('"%s"' % v)) for k, v in SELECTOR_RE.findall(q[1:-1]))

    def count(self):
        with self.lock:
            return sum(len(v) for v in self.streams.values())

    def select(self, sel):
        with self.lock:
            out = []
            for key, values in self.streams.items():
                labels = dict(key)
                if all(labels.get(k) == v for k, v in sel.items()):
                    out.append((labels, list(values)))
            return out


def query_range(url, selector, limit=1000000, timeout=30):
    """The streams of selector, as a client of Loki's HTTP API reads them."""
    import http.client
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", "/loki/api/v1/query_range?" + urllib.parse.urlencode({
            "query": selector, "limit": limit, "direction": "forward",
            "start": "0", "end": str(int(time.time() + 3600) * 10**9)}))
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body[:500])
        return json.loads(body)["data"]["result"]
    finally:
        conn.close()
