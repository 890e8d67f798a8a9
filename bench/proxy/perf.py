#!/usr/bin/env python3
"""bench/proxy/perf.py — where a proxy's CPU goes: each proxy of bench/proxy
(same configs, same upstream) is sampled by `perf record -g` (Debian's
linux-perf; software cpu-clock, the VM has no hardware counters) during one
wrk run; prints its CPU per request, its voluntary / involuntary context
switches per request, the share of kernel vs user time and the top symbols.
Standard library only; exit 0 unless the harness could not run.

Usage: bench/proxy/perf.py path/to/v6   (env: BENCH_PEERS, PERF_DURATION,
PERF_TOP; BENCH_KEEP=1 keeps the perf.data files)
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxy_bench as pb  # noqa: E402

DURATION = int(os.environ.get("PERF_DURATION", "5"))
TOP = int(os.environ.get("PERF_TOP", "25"))


def ctx_switches(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if "ctxt_switches" in line:
                k, v = line.split(":")
                out[k.split("_")[0]] = int(v)
    return out


def report(data, what):
    """perf report lines (overhead, name) sorted by `what` (dso or sym)."""
    out = subprocess.run(["perf", "report", "-i", data, "--no-children", "-g", "none",
                          "--sort", what, "--stdio"], capture_output=True, text=True,
                         timeout=300).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].endswith("%"):
            rows.append((float(parts[0][:-1]), parts[1].strip()))
    return rows


def measure(name, starter, root):
    p, port = starter(())
    pb.run_wrk(port, 2)
    data = os.path.join(root, f"{name}.perf.data")
    rec = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-o", data, "-p", str(p.pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    c0, x0 = pb.cpu_s(p.pid), ctx_switches(p.pid)
    fig = pb.run_wrk(port, DURATION)
    c1, x1 = pb.cpu_s(p.pid), ctx_switches(p.pid)
    rec.send_signal(signal.SIGINT)
    rec.wait(60)
    pb.stop(p)
    ok = fig["ok"] or 1
    kernel = sum(v for v, n in report(data, "dso") if "kernel" in n)
    print(f"\n{name}: {fig['ok']} ok responses, {fig['errors'] + fig['non2xx']} errors, "
          f"{(c1 - c0) / ok * 1e6:.2f} CPU us/request, context switches per request: "
          f"voluntary {(x1['voluntary'] - x0['voluntary']) / ok:.3f}, involuntary "
          f"{(x1['nonvoluntary'] - x0['nonvoluntary']) / ok:.3f}; kernel {kernel:.0f}% of "
          f"the samples")
    for v, n in report(data, "dso,sym")[:TOP]:
        print(f"  {v:6.2f}%  {n}")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: perf.py V6_BINARY")
    if shutil.which("perf") is None:
        sys.exit("bench: no perf (apt-get install linux-perf)")
    v6bin = os.path.abspath(sys.argv[1])
    pb.raise_nofile()
    root = tempfile.mkdtemp(prefix="v6-bench-perf-")
    names = [n.strip() for n in os.environ.get("BENCH_PEERS", "haproxy,v6").split(",")
             if n.strip()]
    try:
        up, up_port = pb.start_testapp(v6bin, root)
        starters = {
            "haproxy": lambda w: pb.start_haproxy(root, up_port, w),
            "nginx": lambda w: pb.start_nginx_proxy(root, up_port, w),
            "v6": lambda w: pb.start_v6_proxy(v6bin, root, up_port, w),
        }
        for n in names:
            measure(n, starters[n], root)
    except (pb.Interrupted, RuntimeError, OSError, subprocess.SubprocessError) as ex:
        pb.log(f"aborted: {ex}")
        return 1
    finally:
        for p in list(pb.procs):
            pb.stop(p)
        if os.environ.get("BENCH_KEEP"):
            pb.log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
