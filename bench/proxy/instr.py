#!/usr/bin/env python3
"""bench/proxy/instr.py — CPU per request as instructions, the figure that
does not move with the machine's load: each proxy of bench/proxy (same
configs, same upstream) runs under `valgrind --tool=callgrind` with
instrumentation off; after a warm-up it is switched on for one wrk run and
off again, and the proxy's instructions in that window are divided by the
successful responses wrk counted. Standard library only; exit 0 unless the
harness could not run.

Usage: bench/proxy/instr.py path/to/v6   (env: BENCH_PEERS, INSTR_DURATION,
INSTR_CONNS)
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import proxy_bench as pb  # noqa: E402

DURATION = int(os.environ.get("INSTR_DURATION", "5"))
CONNS = int(os.environ.get("INSTR_CONNS", "50"))


def callgrind_control(pid, what):
    subprocess.run(["callgrind_control", what, str(pid)], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=60, check=True)


def total_ir(path):
    """The instruction total of a callgrind output file (written at exit)."""
    with open(path) as f:
        for line in f:
            m = re.match(r"totals: (\d+)", line)
            if m:
                return int(m.group(1))
    return 0


def measure(name, starter, root):
    out = os.path.join(root, f"{name}.callgrind")
    wrap = ("valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={out}")
    p, port = starter(wrap)
    pb.CFG["conns"] = CONNS
    pb.run_wrk(port, 2)                     # warm-up: pools filled, code paged in
    callgrind_control(p.pid, "--instr=on")
    fig = pb.run_wrk(port, DURATION)
    callgrind_control(p.pid, "--instr=off")
    pb.stop(p, grace=60)
    ir = total_ir(out)
    per = ir / fig["ok"] if fig["ok"] else None
    bad = fig["errors"] + fig["non2xx"]
    pb.log(f"  {name:9} {fig['ok']} ok responses, {bad} errors, {ir / 1e6:.1f} M instructions: "
           f"{per or 0:.0f} instructions/request")
    return {"ok": fig["ok"], "errors": bad, "ir": ir, "ir_per_req": per}


def strace_counts(path):
    """{syscall: calls} from an `strace -c` summary."""
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                out[parts[-1]] = int(parts[3])
    return out


def measure_syscalls(name, starter, root):
    """Syscalls per successful request: strace -c attached for one wrk run
    (the proxy runs slower traced; the counts per request are what count)."""
    p, port = starter(())
    pb.run_wrk(port, 2)
    out = os.path.join(root, f"{name}.strace")
    st = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(p.pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    fig = pb.run_wrk(port, DURATION)
    st.send_signal(signal.SIGINT)
    st.wait(30)
    pb.stop(p)
    calls = strace_counts(out)
    total = sum(calls.values())
    per = total / fig["ok"] if fig["ok"] else None
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
    pb.log(f"  {name:9} {per or 0:.2f} syscalls/request: " + ", ".join(
        f"{k} {v / fig['ok']:.2f}" for k, v in top if fig["ok"]))
    return per


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: instr.py V6_BINARY")
    v6bin = os.path.abspath(sys.argv[1])
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: no {tool} (apt-get install valgrind)")
    pb.raise_nofile()
    root = tempfile.mkdtemp(prefix="v6-bench-instr-")
    names = [n.strip() for n in os.environ.get("BENCH_PEERS", "haproxy,nginx,v6").split(",")
             if n.strip()]
    res = {}
    try:
        up, up_port = pb.start_testapp(v6bin, root)
        starters = {
            "haproxy": lambda w: pb.start_haproxy(root, up_port, w),
            "nginx": lambda w: pb.start_nginx_proxy(root, up_port, w),
            "v6": lambda w: pb.start_v6_proxy(v6bin, root, up_port, w),
        }
        for n in names:
            res[n] = measure(n, starters[n], root)
            if shutil.which("strace"):
                res[n]["sys_per_req"] = measure_syscalls(n, starters[n], root)
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
    print()
    print(f"user-space instructions per successful request (callgrind, wrk -c{CONNS} "
          f"-d{DURATION}s, proxy process only; the kernel's share is not counted)")
    for n, r in res.items():
        ratio = (f"  {r['ir_per_req'] / res['haproxy']['ir_per_req']:.2f}x HAProxy"
                 if "haproxy" in res and r["ir_per_req"] and res["haproxy"]["ir_per_req"]
                 else "")
        print(f"  {n:10} {r['ir_per_req'] or 0:>8.0f}{ratio}"
              + (f"  ({r['errors']} errors)" if r["errors"] else "")
              + (f"; {r['sys_per_req']:.2f} syscalls/request (strace -c)"
                 if r.get("sys_per_req") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
