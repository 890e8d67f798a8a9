#!/usr/bin/env python3
"""bench/observability/tracing.py — what tracing costs the proxy, same run:
three `v6 proxy` processes (tracing off, 1 % and 100 % of new traces
sampled) in front of the same v6 testapp, exporting to an OTLP/HTTP receiver
that accepts and discards (a thread here); wrk rounds alternate between them
and the medians of requests/s and p99 are compared with tracing off.
With valgrind installed (BENCH_INSTR=1, the default when it is), user-space
instructions per request of each (bench/proxy/instr.py's method): the figure
that does not move with the machine's load.
Never fails on a figure; exit 0 unless the harness could not run.

Usage: bench/observability/tracing.py path/to/v6
Env: BENCH_ROUNDS (3), BENCH_DURATION (10), BENCH_CONNS (50), BENCH_INSTR,
BENCH_KEEP (keep the temp dir with the callgrind files)."""
import os
import shutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "proxy"))
import proxy_bench as pb  # noqa: E402
import instr  # noqa: E402

# name, sampling ratio (None: tracing off), OTLP protocol
CONFIGS = [("off", None, None), ("1%", "0.01", "http/protobuf"),
           ("100%", "1", "http/protobuf"), ("100%json", "1", "http/json")]
PROTOCOL = {n: proto for n, _, proto in CONFIGS}


class Discard(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    spans_bytes = 0

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        while n > 0:
            n -= len(self.rfile.read(min(n, 1 << 20)))
        Discard.spans_bytes += int(self.headers.get("Content-Length", "0"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def start_proxy(v6bin, root, up_port, name, ratio, collector, wrap=()):
    port = pb.free_port()
    tag = name.replace("%", "pct")
    state = os.path.join(root, "proxy-" + tag)
    os.makedirs(state, exist_ok=True)
    extra = [] if ratio is None else ["--otlp-endpoint", collector,
                                      "--trace-sample-ratio", ratio]
    # the proxy reads the SDK's variable, as it does in production
    os.environ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = \
        PROTOCOL.get(name.replace("-cg", "")) or "http/protobuf"
    try:
        p = pb.start("v6-proxy-" + tag,
                     [*wrap, v6bin, "proxy", "--state-dir", state, "--admin",
                      f"127.0.0.1:{pb.free_port()}", "--log-level", "warn", *extra], root)
    finally:
        del os.environ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"]
    pb.feed_snapshot(os.path.join(state, "control.sock"), pb.v6_snapshot(port, up_port),
                     timeout=10 * (3 if wrap else 1))
    pb.wait_port(p, port, pb.READY_TIMEOUT_S * (3 if wrap else 1))
    return p, port


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tracing.py V6_BINARY")
    v6bin = os.path.abspath(sys.argv[1])
    if not os.path.exists(pb.CFG["wrk"]):
        sys.exit("bench: no wrk (apt-get install wrk)")
    pb.raise_nofile()
    root = tempfile.mkdtemp(prefix="v6-bench-tracing-")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Discard)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    collector = "http://127.0.0.1:%d" % httpd.server_address[1]
    figs = {n: [] for n, _, _ in CONFIGS}
    ir = {}
    try:
        _, up_port = pb.start_testapp(v6bin, root)
        ports = {}
        for name, ratio, _ in CONFIGS:
            ports[name] = start_proxy(v6bin, root, up_port, name, ratio, collector)[1]
            pb.run_wrk(ports[name], pb.CFG["warmup"])
        for r in range(pb.CFG["rounds"]):
            order = CONFIGS if r % 2 == 0 else CONFIGS[::-1]
            pb.log(f"round {r + 1}/{pb.CFG['rounds']}")
            for name, _, _ in order:
                figs[name].append(pb.run_wrk(ports[name], pb.CFG["duration"]))
                f = figs[name][-1]
                pb.log(f"  tracing {name:5} {f['rps']:>9.0f} req/s  p99 {f['p99_ms']:.2f} ms"
                       + (f"  errors {f['errors'] + f['non2xx']}"
                          if f["errors"] + f["non2xx"] else ""))
        want_instr = os.environ.get("BENCH_INSTR", "1") != "0" and shutil.which("valgrind")
        if want_instr:
            for name, ratio, _ in CONFIGS:
                ir[name] = instr.measure("tracing-" + name.replace("%", "pct"), lambda w, n=name, r=ratio:
                                         start_proxy(v6bin, root, up_port, n + "-cg", r,
                                                     collector, w), root)
    except (pb.Interrupted, RuntimeError, OSError) as ex:
        pb.log(f"aborted: {ex}")
        return 1
    finally:
        for p in list(pb.procs):
            pb.stop(p)
        httpd.shutdown()
        if os.environ.get("BENCH_KEEP"):
            pb.log(f"kept {root} (callgrind files: callgrind_annotate them)")
        else:
            shutil.rmtree(root, ignore_errors=True)
    base_rps = pb.median([f["rps"] for f in figs["off"]])
    base_p99 = pb.median([f["p99_ms"] for f in figs["off"]])
    print()
    print(f"proxy with tracing, wrk -c{pb.CFG['conns']} -d{pb.CFG['duration']}s x "
          f"{pb.CFG['rounds']} rounds (medians), OTLP/HTTP (protobuf unless named json) "
          f"to a discarding receiver; "
          f"{Discard.spans_bytes / 1e6:.1f} MB of spans received")
    for name, _, _ in CONFIGS:
        rps = pb.median([f["rps"] for f in figs[name]])
        p99 = pb.median([f["p99_ms"] for f in figs[name]])
        cost = (1 - rps / base_rps) * 100
        line = (f"  tracing {name:8} {rps:>9.0f} req/s ({cost:+.1f} % cost)  p99 {p99:.2f} ms "
                f"({p99 / base_p99:.2f}x off)")
        if name == "1%":
            line += "  target <= 5 % cost: " + ("met" if cost <= 5 else "NOT met")
        print(line)
    for name, r in ir.items():
        print(f"  instructions/request, tracing {name}: {r['ir_per_req'] or 0:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
