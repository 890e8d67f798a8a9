"""bench/dashboard — the web dashboard's figures on loopback: page weight
(gzip, as served), first contentful paint and time to interactive of the
workloads view with 1,000 pods in headless Chromium (Debian's), and the
server's memory with 10 dashboards open on that view, each holding its
watches. Compared with the Argo CD UI's published bundle sizes (README.md).
Usage: dashboard_bench.py path/to/v6. Standard library only (+ the e2e
WebDriver helper)."""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
from benchlib import env_int, free_port, kill_workloads, log, median  # noqa: E402
from webdriver import Browser  # noqa: E402

PODS = env_int("BENCH_PODS", 1000)
RUNS = env_int("BENCH_ROUNDS", 5)
DASHBOARDS = env_int("BENCH_DASHBOARDS", 10)
ASSETS = ["/ui/", "/ui/app.css", "/ui/api.js", "/ui/app.js"]

# Time to interactive: the pod count shows every pod and the main thread
# runs a queued task within 50 ms (no long task in the way).
TTI_SCRIPT = """
var want = arguments[0], done = arguments[1];
function check() {
  var c = document.querySelector('[data-t=pod-count]');
  if (!c || c.textContent !== String(want)) { setTimeout(check, 10); return; }
  var t = performance.now();
  setTimeout(function () {
    if (performance.now() - t > 50) { check(); return; }
    var fcp = performance.getEntriesByName('first-contentful-paint')[0];
    var nav = performance.getEntriesByType('navigation')[0];
    done({tti: t, fcp: fcp ? fcp.startTime : null,
          dcl: nav ? nav.domContentLoadedEventEnd : null,
          heap: performance.memory ? performance.memory.usedJSHeapSize : null});
  }, 0);
}
check();
"""


class Api:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, headers=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = {"Content-Type": "application/json"}
            h.update(headers or {})
            c.request(method, path, body=json.dumps(body) if body is not None else None,
                      headers=h)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_server(v6bin, root):
    data = os.path.join(root, "data")
    os.makedirs(data)
    port = free_port()
    logf = open(os.path.join(root, "server.log"), "ab")
    srv = subprocess.Popen([v6bin, "server", "--data-dir", data, "--listen",
                            "127.0.0.1:%d" % port, "--default-runtime", "process",
                            "--insecure-http"],
                           stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    logf.close()
    api = Api(port)
    end = time.monotonic() + 30
    while True:
        try:
            if api.call("GET", "/readyz", timeout=2)[0] == 200:
                return srv, api
        except OSError:
            pass
        if srv.poll() is not None or time.monotonic() > end:
            raise RuntimeError("v6 server did not become ready")
        time.sleep(0.05)


def page_weight(api):
    raw = gz = 0
    for path in ASSETS:
        s, h, body = api.call("GET", path, headers={"Accept-Encoding": "gzip"})
        assert s == 200 and h.get("Content-Encoding") == "gzip", (path, s)
        gz += len(body)
        raw += len(api.call("GET", path)[2])
    return raw, gz


def make_pods(api, n):
    """n Pending pods bound to a node that does not exist: API objects only."""
    for i in range(n):
        p = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "load-%04d" % i, "namespace": "default",
                          "labels": {"app": "load", "shard": str(i % 10)}},
             "spec": {"nodeName": "elsewhere",
                      "containers": [{"name": "c", "image": "busybox"}]}}
        s = api.call("POST", "/api/v1/namespaces/default/pods", p)[0]
        assert s == 201, s


def touch(api, step, value):
    """Changes a label on every step-th pod."""
    for i in range(0, PODS, step):
        api.call("PATCH", "/api/v1/namespaces/default/pods/load-%04d" % i,
                 {"metadata": {"labels": {"touched": value}}},
                 headers={"Content-Type": "application/merge-patch+json"})


def frame_gaps(api):
    """Gaps between animation frames of the workloads view while one pod
    in five changes in a burst."""
    with Browser() as b:
        b.get("http://127.0.0.1:%d/ui/#/workloads" % api.port)
        b.js_async(TTI_SCRIPT, PODS)
        b.frames_start()
        touch(api, 5, "once")
        time.sleep(1)
        return b.frames_stop()


def measure_load(api):
    with Browser() as b:
        b.get("http://127.0.0.1:%d/ui/#/workloads" % api.port)
        return b.js_async(TTI_SCRIPT, PODS)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: dashboard_bench.py path/to/v6")
    root = tempfile.mkdtemp(prefix="v6-bench-dashboard-")
    srv = None
    browsers = []
    try:
        srv, api = start_server(os.path.abspath(sys.argv[1]), root)
        raw, gz = page_weight(api)
        log("creating %d pods" % PODS)
        make_pods(api, PODS)
        time.sleep(1)
        idle = rss_kib(srv.pid)
        runs = []
        for i in range(RUNS):
            runs.append(measure_load(api))
            log("run %d: %s" % (i + 1, runs[-1]))
        gaps = frame_gaps(api)
        for i in range(DASHBOARDS):
            b = Browser().start()
            browsers.append(b)
            b.get("http://127.0.0.1:%d/ui/#/workloads" % api.port)
            b.js_async(TTI_SCRIPT, PODS)
        # Every dashboard holds its watches; one change per pod then
        # reaches each of them.
        open_rss = rss_kib(srv.pid)
        touch(api, 10, "twice")
        time.sleep(2)
        busy_rss = rss_kib(srv.pid)
        out = {
            "page_weight_bytes": raw, "page_weight_gzip_bytes": gz,
            "pods": PODS, "runs": RUNS,
            "first_contentful_paint_ms": median(r["fcp"] for r in runs),
            "dom_content_loaded_ms": median(r["dcl"] for r in runs),
            "time_to_interactive_ms": median(r["tti"] for r in runs),
            "js_heap_bytes": median(r["heap"] for r in runs),
            "burst_changes": PODS // 5, "frames": len(gaps),
            "frame_gap_p95_ms": gaps[int(len(gaps) * 0.95)], "frame_gap_max_ms": gaps[-1],
            "server_rss_kib_no_dashboard": idle,
            "server_rss_kib_%d_dashboards" % DASHBOARDS: open_rss,
            "server_rss_kib_%d_dashboards_after_%d_changes" % (DASHBOARDS, PODS // 10): busy_rss,
            "loadavg": open("/proc/loadavg").read().split()[0],
        }
        print(json.dumps(out, indent=1))
    finally:
        for b in browsers:
            b.close()
        if srv and srv.poll() is None:
            srv.terminate()
            try:
                srv.wait(15)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait()
        kill_workloads(os.path.join(root, "data"))   # pods and the proxy outlive it
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
