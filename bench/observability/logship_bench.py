"""bench/observability/logship_bench.py — the Loki shipper's throughput and
memory: pods write a backlog of CRI log lines with shipping off, then
`v6 server --loki-url` restarts on the same data and ships the backlog to a
Loki push endpoint (tests/e2e/loki_receiver.py, counting only: Debian has no
Grafana Loki, and promtail is not packaged). Reports lines/s from the
restart until the endpoint holds every line, and the server's RSS with
shipping off, at its peak while shipping, and after. Never fails a build.

Env: BENCH_PODS (4), BENCH_LINES (250000 per pod), BENCH_LINE_BYTES (100)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
import benchlib  # noqa: E402
from benchlib import env_int, log  # noqa: E402
from loki_receiver import LokiReceiver  # noqa: E402

WRITER = """
import sys
pad = "x" * %d
w = sys.stdout.write
for i in range(%d):
    w("n %%08d %%s\\n" %% (i, pad))
sys.stdout.flush()
"""


def cpu_s(pid):
    """User + system CPU seconds of pid so far."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class V6:
    def __init__(self, exe, data, extra):
        self.exe, self.data, self.extra = exe, data, list(extra)
        self.proc = None

    def start(self, extra=()):
        addr = os.path.join(self.data, "server.address")
        if os.path.exists(addr):
            os.unlink(addr)
        log_f = open(os.path.join(self.data, "server.log"), "ab")
        self.proc = subprocess.Popen([self.exe, "server", "--insecure-http", "--data-dir", self.data,
                                      "--listen", "127.0.0.1:0"] + self.extra + list(extra),
                                     stdout=log_f, stderr=log_f, stdin=subprocess.DEVNULL)
        log_f.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if os.path.exists(addr) and open(addr).read().endswith("\n"):
                self.addr = open(addr).read().strip()
                return
            time.sleep(0.05)
        raise RuntimeError("v6 server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.proc = None

    def v6(self, *args, input=None):
        return subprocess.run([self.exe, "--server", "http://" + self.addr] + list(args),
                              input=input, capture_output=True, text=True, timeout=120)


def main():
    exe = os.path.abspath(sys.argv[1])
    pods, lines = env_int("BENCH_PODS", 4), env_int("BENCH_LINES", 250000)
    pad = max(1, env_int("BENCH_LINE_BYTES", 100) - 11)
    total = pods * lines
    data = tempfile.mkdtemp(prefix="v6-bench-logship-")
    recv = LokiReceiver(keep_lines=False).start()
    s = V6(exe, data, ["--container-log-max-size", "1Gi", "--log-level", "warn"])
    try:
        # 1. the backlog, shipping off
        s.start()
        for i in range(pods):
            m = {"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": "w%d" % i, "namespace": "default", "labels": {"app": "w"}},
                "spec": {"restartPolicy": "Never", "containers": [{
                    "name": "c", "image": "python",
                    "command": [sys.executable, "-c", WRITER % (pad, lines)]}]}}
            p = s.v6("apply", "-f", "-", input=json.dumps(m))
            if p.returncode:
                sys.exit("bench: apply failed: " + p.stderr)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            out = s.v6("get", "pods", "-o", "json").stdout
            phases = [p["status"].get("phase") for p in json.loads(out)["items"]]
            if phases.count("Succeeded") == pods:
                break
            time.sleep(0.5)
        else:
            sys.exit("bench: the writer pods did not finish")
        time.sleep(2)
        rss_off = rss_kb(s.proc.pid)
        s.stop()
        size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in
                   os.walk(os.path.join(data, "node", "pods")) for f in fs)
        log("backlog: %d lines, %.1f MB of CRI files; server RSS with shipping off "
            "%d kB" % (total, size / 1e6, rss_off))

        # 2. ship it
        peak = [0]
        t0 = time.monotonic()
        s.start(["--loki-url", recv.url])
        pid = s.proc.pid
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(pid))
                time.sleep(0.05)
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        deadline = time.monotonic() + 900
        while recv.count() < total and time.monotonic() < deadline:
            time.sleep(0.02)
        elapsed = time.monotonic() - t0
        cpu = cpu_s(pid)
        got = recv.count()
        time.sleep(2)
        stop.set()
        th.join()
        rss_after = rss_kb(pid)
        pushes = len(recv.pushes)
        log("shipped %d of %d lines in %.2f s: %.0f lines/s, %.1f MB/s of log text, "
            "%d pushes" % (got, total, elapsed, got / elapsed, size / 1e6 / elapsed, pushes))
        log("server CPU while shipping: %.2f s (%.0f%% of one core); the receiver is "
            "Python, so the figure is a floor for the shipper" % (cpu, 100 * cpu / elapsed))
        log("server RSS: shipping off %d kB, peak while shipping %d kB (+%d kB), "
            "2 s after %d kB (+%d kB)" % (rss_off, peak[0], peak[0] - rss_off, rss_after,
                                           rss_after - rss_off))
        print(json.dumps({"lines": got, "seconds": round(elapsed, 3),
                          "lines_per_s": round(got / elapsed),
                          "mb_per_s": round(size / 1e6 / elapsed, 2), "pushes": pushes, "server_cpu_s": round(cpu, 2),
                          "rss_off_kb": rss_off, "rss_peak_kb": peak[0],
                          "rss_after_kb": rss_after}))
    finally:
        s.stop()
        recv.stop()
        benchlib.kill_workloads(data)
        benchlib.remove_cgroups(data)
        subprocess.run(["rm", "-rf", data])


if __name__ == "__main__":
    main()
