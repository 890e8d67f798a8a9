#!/usr/bin/env python3
"""bench/store/store_bench.py — the store benchmark: V6 against etcd, side by side.

Started by bench/store/run.sh (which builds the C load generator). Starts a
fresh `v6 server` and a fresh single-node etcd on loopback, drives both with
the same ConfigMaps, concurrency and count, measures RSS and idle disk writes,
and prints one table of V6 / etcd ratios. Standard library only. A timing
never fails the process: exit 0 unless the harness itself could not run.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import Interrupted, env_int, free_port, loadavg, log, log_tail, median, on_signal  # noqa: E402


CFG = {
    "count": env_int("BENCH_COUNT", 10000),
    "conns": env_int("BENCH_CONNS", 16),
    "seq_count": env_int("BENCH_SEQ_COUNT", 1000),
    "list_reps": env_int("BENCH_LIST_REPS", 5),
    "idle_s": env_int("BENCH_IDLE_S", 60),
    "settle_s": env_int("BENCH_SETTLE_S", 5),
    "rounds": env_int("BENCH_ROUNDS", 3),
    "calibrate": env_int("BENCH_CALIBRATE", 1),
    "keep": env_int("BENCH_KEEP", 0),
    "tmp": os.environ.get("BENCH_TMP", os.environ.get("TMPDIR", "/tmp")),
    "etcd": os.environ.get("ETCD", shutil.which("etcd") or "/usr/bin/etcd"),
    "nginx": os.environ.get("NGINX", shutil.which("nginx") or "/usr/sbin/nginx"),
    "json_out": os.environ.get("BENCH_JSON", ""),
}
LOAD_LIMIT_S = 600          # one load run never takes longer than this
READY_TIMEOUT_S = 30
TARGETS = {"rate": 2000, "list_ms": 200, "rss_mb": 30, "idle_bytes": 0}

procs = []                  # every process we started: killed at exit


def fs_type(path):
    """The filesystem type of the mount holding path (from mountinfo)."""
    path = os.path.realpath(path)
    best, fstype = "", "?"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            mnt = left.split()[4]
            inside = path == mnt or path.startswith(mnt.rstrip("/") + "/")
            if inside and len(mnt) >= len(best):
                best, fstype = mnt, right.split()[0]
    return fstype


def start(name, argv, logdir, **kw):
    path = os.path.join(logdir, f"{name}.log")
    logf = open(path, "wb")
    p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, **kw)
    logf.close()
    p.bench_name, p.bench_log = name, path
    procs.append(p)
    return p


def stop(p, grace=10):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    if p in procs:
        procs.remove(p)


def http(method, url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_ready(p, url, timeout=READY_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{p.bench_name} exited with {p.returncode} "
                               "before it was ready (see its log)")
        try:
            status, _ = http("GET", url, timeout=2)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{p.bench_name} not ready after {timeout} s")


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


def proc_io(pid):
    with open(f"/proc/{pid}/io") as f:
        return {k: int(v) for k, v in (line.split(": ") for line in f)}


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dir_snapshot(root):
    snap = {}
    for d, _, files in os.walk(root):
        for name in files:
            path = os.path.join(d, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            snap[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return snap


def dir_bytes(root):
    return sum(size for size, _ in dir_snapshot(root).values())


def run_load(load, port, target, *args):
    argv = [load, "-p", str(port), "-t", target, "-l", str(LOAD_LIMIT_S),
            *map(str, args)]
    r = subprocess.run(argv, capture_output=True, text=True,
                       timeout=LOAD_LIMIT_S + 30)
    if not r.stdout.strip():
        raise RuntimeError(f"load generator failed: {r.stderr.strip()}")
    res = json.loads(r.stdout)
    if res.get("first_error"):
        log(f"{target}: {' '.join(argv[5:])}: errors: {res['first_error']}")
    return res


# ---- the two servers ---------------------------------------------------------

class V6:
    name = "V6"
    target = "v6"

    def __init__(self, binary, root):
        self.binary, self.root = binary, root
        self.data = os.path.join(root, "v6-data")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self):
        # The store and the API server are what is measured: no node agent and
        # no proxy (their processes would outlive this server).
        self.proc = start("v6", [self.binary, "server", "--insecure-http", "--data-dir", self.data,
                                 "--listen", f"127.0.0.1:{self.port}",
                                 "--controllers", "*,-node,-proxy"],
                          self.root)
        wait_ready(self.proc, self.base + "/readyz")

    def make_namespace(self, ns):
        status, body = http("POST", self.base + "/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns}})
        if status not in (200, 201, 409):
            raise RuntimeError(f"v6: creating namespace {ns}: {status} {body[:200]}")

    def count(self, ns):
        status, body = http("GET", f"{self.base}/api/v1/namespaces/{ns}/configmaps",
                            timeout=60)
        if status != 200:
            return -1
        return len(json.loads(body).get("items") or [])


class Etcd:
    name = "etcd"
    target = "etcd"

    def __init__(self, binary, root):
        self.binary, self.root = binary, root
        self.data = os.path.join(root, "etcd-data")
        self.port, self.peer = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self):
        client = self.base
        peer = f"http://127.0.0.1:{self.peer}"
        # defaults otherwise: fsync per commit batch, snapshot-count 100000
        self.proc = start("etcd", [
            self.binary, "--name", "bench", "--data-dir", self.data,
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"bench={peer}"], self.root)
        wait_ready(self.proc, self.base + "/health")

    def make_namespace(self, ns):
        pass                                # keys need no parent

    def count(self, ns):
        key = f"/registry/configmaps/{ns}/".encode()
        end = key[:-1] + bytes([key[-1] + 1])
        status, body = http("POST", self.base + "/v3/kv/range", {
            "key": base64.b64encode(key).decode(),
            "range_end": base64.b64encode(end).decode(),
            "count_only": True}, timeout=60)
        if status != 200:
            return -1
        return int(json.loads(body).get("count", 0))


def load_server(srv, load):
    """Creates, lists and samples one server; returns its figures."""
    log(f"{srv.name}: starting")
    srv.start()
    fig = {"pid": srv.proc.pid}
    log(f"{srv.name}: {CFG['count']} creates over {CFG['conns']} connections")
    fig["apply"] = run_load(load, srv.port, srv.target, "-o", "apply",
                            "-n", CFG["count"], "-c", CFG["conns"],
                            "-N", "default", "-P", "bench")
    if CFG["seq_count"] > 0:
        srv.make_namespace("bench-seq")
        log(f"{srv.name}: {CFG['seq_count']} creates over 1 connection")
        fig["seq"] = run_load(load, srv.port, srv.target, "-o", "apply",
                              "-n", CFG["seq_count"], "-c", 1,
                              "-N", "bench-seq", "-P", "seq")
    log(f"{srv.name}: {CFG['list_reps']} lists of the {CFG['count']}")
    fig["list"] = run_load(load, srv.port, srv.target, "-o", "list",
                           "-r", CFG["list_reps"], "-N", "default")
    fig["listed"] = srv.count("default")
    fig["mem"] = proc_status(srv.proc.pid)
    fig["cpu_load_s"] = proc_cpu_s(srv.proc.pid)
    fig["disk_bytes"] = dir_bytes(srv.data)
    return fig


def idle(servers):
    """All servers idle at once: write_bytes, file changes and CPU over IDLE_S."""
    log(f"settling {CFG['settle_s']} s, then measuring {CFG['idle_s']} s of idle")
    time.sleep(CFG["settle_s"])
    before = {s.name: (proc_io(s.proc.pid), dir_snapshot(s.data),
                       proc_cpu_s(s.proc.pid)) for s in servers}
    time.sleep(CFG["idle_s"])
    out = {}
    for s in servers:
        io0, snap0, cpu0 = before[s.name]
        io1, snap1 = proc_io(s.proc.pid), dir_snapshot(s.data)
        changed = sorted(k for k in set(snap0) | set(snap1)
                         if snap0.get(k) != snap1.get(k))
        out[s.name] = {
            "write_bytes": io1["write_bytes"] - io0["write_bytes"],
            "syscw": io1["syscw"] - io0["syscw"],
            "files_changed": changed,
            "cpu_s": round(proc_cpu_s(s.proc.pid) - cpu0, 2),
            "alive": s.proc.poll() is None,
        }
    return out


def disk_sync_ms(root, n=200):
    """fdatasync cost of 1 KB on the data disk: appending (the file grows,
    so metadata is journalled too) and overwriting preallocated blocks."""
    path = os.path.join(root, "fsync-probe")
    out = {}
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, b"\0" * (n * 1024), 0)
        os.fsync(fd)
        for mode, base in (("overwrite", 0), ("append", n * 1024)):
            t = []
            for i in range(n):
                t0 = time.perf_counter()
                os.pwrite(fd, b"x" * 1024, base + i * 1024)
                os.fdatasync(fd)
                t.append(time.perf_counter() - t0)
            t.sort()
            out[mode] = round(t[n // 2] * 1e3, 3)
    finally:
        os.close(fd)
        os.unlink(path)
    return out


def calibrate(load, root):
    """The generator's own ceiling: the same creates against nginx `return 201`."""
    if not (CFG["calibrate"] and os.access(CFG["nginx"], os.X_OK)):
        return None
    port = free_port()
    conf = os.path.join(root, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {root}/nginx.pid;
error_log {root}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {root}/nginx-body;
  keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port};
    location / {{ default_type application/json; return 201 '{{}}'; }} }} }}
""")
    p = start("nginx", [CFG["nginx"], "-p", root, "-c", conf, "-e",
                        f"{root}/nginx-error.log"], root)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and p.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.05)
        return run_load(load, port, "raw", "-o", "apply", "-n", CFG["count"],
                        "-c", CFG["conns"])
    finally:
        stop(p)


def run_rounds(v6bin, load, root, has_etcd):
    """Fresh servers every round, V6 and etcd back to back, order alternating
    so neither always runs first. The last round's servers stay up for idle."""
    rounds = []
    for r in range(CFG["rounds"]):
        rdir = os.path.join(root, f"round-{r + 1}")
        os.mkdir(rdir)
        servers = [V6(v6bin, rdir)] + ([Etcd(CFG["etcd"], rdir)] if has_etcd else [])
        if r % 2:
            servers.reverse()
        figs = {}
        for s in servers:
            log(f"round {r + 1}/{CFG['rounds']}: {s.name}")
            figs[s.name] = load_server(s, load)
            if figs[s.name]["apply"]["errors"]:
                tail = open(s.proc.bench_log, errors="replace").readlines()[-5:]
                figs[s.name]["log_tail"] = tail
        rounds.append(figs)
        if r + 1 < CFG["rounds"]:
            for s in servers:
                figs[s.name]["alive"] = s.proc.poll() is None
                stop(s.proc)
                shutil.rmtree(s.data, ignore_errors=True)
    return rounds, servers


# ---- the report --------------------------------------------------------------

def get(fig, *path):
    for k in path:
        if not isinstance(fig, dict) or k not in fig:
            return None
        fig = fig[k]
    return fig


def fmt(x, unit):
    if x is None:
        return "-"
    if unit == "B" or isinstance(x, int):
        return f"{x:,.0f} {unit}"
    return f"{x:,.2f} {unit}" if x < 100 else f"{x:,.0f} {unit}"


def ratio_text(r, higher_better, a, b):
    if a == 0 and b == 0:
        return "= (both 0)"
    if r is None:
        return "n/a"
    if abs(r - 1) < 0.005:
        return f"{r:.2f}x (equal)"
    better = (r > 1) == higher_better
    return f"{r:.2f}x ({'V6 better' if better else 'V6 worse'})"


def rows():
    n, c, reps = CFG["count"], CFG["conns"], CFG["list_reps"]
    # key, label, path in a round's figures, unit, scale, higher is better
    return [
        ("rate", f"applies/s ({n:,} creates, {c} conns)", ("apply", "rate"), "/s", 1, True),
        ("p50", f"write latency p50 ({c} conns)", ("apply", "lat_ms", "p50"), "ms", 1, False),
        ("p99", f"write latency p99 ({c} conns)", ("apply", "lat_ms", "p99"), "ms", 1, False),
        ("max", f"write latency max ({c} conns)", ("apply", "lat_ms", "max"), "ms", 1, False),
        ("seq_rate", "applies/s (1 conn)", ("seq", "rate"), "/s", 1, True),
        ("seq_p50", "write latency p50 (1 conn)", ("seq", "lat_ms", "p50"), "ms", 1, False),
        ("seq_p99", "write latency p99 (1 conn)", ("seq", "lat_ms", "p99"), "ms", 1, False),
        ("list", f"list {n:,} (median of {reps})", ("list", "ms", "median"), "ms", 1, False),
        ("list_bytes", "list response size", ("list", "bytes"), "MB", 1e-6, False),
        ("rss", "RSS after load (VmRSS)", ("mem", "VmRSS"), "MB", 1 / 1024, False),
        ("hwm", "peak RSS (VmHWM)", ("mem", "VmHWM"), "MB", 1 / 1024, False),
        ("cpu", "server CPU for the load phases", ("cpu_load_s",), "s", 1, False),
        ("disk", "data dir size after load", ("disk_bytes",), "MB", 1e-6, False),
    ]


def summarize(rounds, idle_figs):
    """Per metric: V6 and etcd medians over rounds, their ranges, and the
    median of the per-round V6/etcd ratios (each round pairs runs that were
    seconds apart, which cancels most of the machine's drift)."""
    out = []
    for key, label, path, unit, scale, hb in rows():
        def vals(name):
            xs = [get(r.get(name), *path) for r in rounds]
            return [x * scale if x is not None else None for x in xs]
        a, b = vals("V6"), vals("etcd")
        ratios = [x / y for x, y in zip(a, b) if x is not None and y]
        out.append({"key": key, "metric": label, "unit": unit, "higher_better": hb,
                    "v6": median(a), "etcd": median(b), "v6_all": a,
                    "etcd_all": b, "ratio": median(ratios)})
    for key, label, field, unit in (
            ("idle_bytes", f"idle disk writes, {CFG['idle_s']} s (write_bytes)",
             "write_bytes", "B"),
            ("idle_cpu", f"idle CPU, {CFG['idle_s']} s", "cpu_s", "s")):
        a, b = get(idle_figs, "V6", field), get(idle_figs, "etcd", field)
        out.append({"key": key, "metric": label, "unit": unit, "higher_better": False,
                    "v6": a, "etcd": b, "v6_all": [a], "etcd_all": [b],
                    "ratio": a / b if a is not None and b else None})
    return out


def spread(xs, unit):
    xs = [x for x in xs if x is not None]
    if len(xs) < 2:
        return ""
    lo, hi = min(xs), max(xs)
    return f"{fmt(lo, '')}..{fmt(hi, '')}".replace(" ", "")


def report(summary, rounds, idle_figs, cal, env):
    table = [("metric", "V6", "etcd", "V6/etcd", "V6 range", "etcd range")]
    for m in summary:
        table.append((m["metric"], fmt(m["v6"], m["unit"]), fmt(m["etcd"], m["unit"]),
                      ratio_text(m["ratio"], m["higher_better"], m["v6"], m["etcd"]),
                      spread(m["v6_all"], m["unit"]), spread(m["etcd_all"], m["unit"])))
    w = [max(len(r[i]) for r in table) for i in range(6)]
    print()
    print(f"store benchmark: V6 vs etcd {env['etcd_version']} in the same run, "
          f"{CFG['rounds']} rounds (medians), data on {env['fstype']}, "
          f"{os.cpu_count()} CPUs shared by servers and generator")
    for i, r in enumerate(table):
        print(f"  {r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]:<{w[3]}}"
              f"  {r[4]:>{w[4]}}  {r[5]:>{w[5]}}".rstrip())
        if i == 0:
            print("  " + "  ".join("-" * x for x in w))
    for name in ("V6", "etcd"):
        if not any(name in r for r in rounds):
            continue
        listed = [get(r, name, "listed") for r in rounds]
        errs = sum(get(r, name, k, "errors") or 0 for r in rounds for k in ("apply", "seq"))
        changed = get(idle_figs, name, "files_changed")
        died = [i + 1 for i, r in enumerate(rounds) if get(r, name, "alive") is False]
        if get(idle_figs, name, "alive") is False:
            died.append(len(rounds))
        print(f"  {name}: listed {'/'.join(map(str, listed))} objects; "
              f"{errs} failed requests; idle files changed: "
              f"{', '.join(changed) if changed else 'none'}"
              f"{'; DIED in round ' + str(died) if died else ''}")
    if cal:
        print(f"  generator ceiling (same creates against nginx 'return 201', "
              f"{CFG['conns']} conns): {cal['rate']:,.0f}/s, p99 {cal['lat_ms']['p99']:.2f} ms")
    print(f"  disk: 1 KB write + fdatasync p50 before/after: "
          f"{env['sync0']['overwrite']}/{env['sync1']['overwrite']} ms overwriting, "
          f"{env['sync0']['append']}/{env['sync1']['append']} ms appending; "
          f"load average before/after {env['load0']}/{env['load1']}")
    print("  V6/etcd is the median of per-round ratios; 'V6 better' follows the "
          "metric's direction (rates: higher is better; times, sizes, bytes: lower).")
    print("  noise: 2 cores shared with the generator and anything else running; "
          "rates and p99s move 2-3x between rounds, read the ranges.")
    by = {m["key"]: m["v6"] for m in summary}
    rate, rss, idle_b = by["rate"], by["rss"], by["idle_bytes"]
    lst = by["list"] if CFG["count"] >= 10000 else None
    print()
    print("issue targets (informational; benchmarks never fail the build):")
    for label, x, ok in (
            ("applies/s >= 2,000", rate, lambda x: x >= TARGETS["rate"]),
            ("list of 10,000 < 200 ms", lst, lambda x: x < TARGETS["list_ms"]),
            ("RSS after load < 30 MB", rss, lambda x: x < TARGETS["rss_mb"]),
            ("idle writes 0 bytes", idle_b,
             lambda x: x == 0 and not get(idle_figs, "V6", "files_changed"))):
        verdict = "n/a" if x is None else ("PASS" if ok(x) else "FAIL")
        print(f"  {verdict:4}  {label}")
    if CFG["count"] < 10000:
        print(f"  (BENCH_COUNT={CFG['count']}: the list target is only judged at 10,000)")


def etcd_version():
    try:
        out = subprocess.run([CFG["etcd"], "--version"], capture_output=True,
                             text=True, timeout=10).stdout
        return out.split()[2]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: store_bench.py V6_BINARY LOAD_BINARY")
    v6bin, load = map(os.path.abspath, sys.argv[1:])
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if CFG["rounds"] < 1 or CFG["count"] < 1 or CFG["conns"] < 1:
        sys.exit("bench: BENCH_ROUNDS, BENCH_COUNT and BENCH_CONNS must be >= 1")
    root = tempfile.mkdtemp(prefix="v6-bench-store-", dir=CFG["tmp"])
    env = {"fstype": fs_type(root), "etcd_version": etcd_version()}
    if env["fstype"] in ("tmpfs", "ramfs"):
        log(f"WARNING: {root} is on {env['fstype']}: fsync is free and write_bytes "
            "is 0; set BENCH_TMP to a directory on a disk")
    has_etcd = os.access(CFG["etcd"], os.X_OK)
    if not has_etcd:
        log(f"no etcd at {CFG['etcd']}: V6 only (apt-get install etcd-server)")
    try:
        env["load0"], env["sync0"] = loadavg(), disk_sync_ms(root)
        cal = calibrate(load, root)
        rounds, servers = run_rounds(v6bin, load, root, has_etcd)
        idle_figs = idle(servers)
        env["load1"], env["sync1"] = loadavg(), disk_sync_ms(root)
        summary = summarize(rounds, idle_figs)
        report(summary, rounds, idle_figs, cal, env)
        if CFG["json_out"]:
            with open(CFG["json_out"], "w") as f:
                json.dump({"config": CFG, "env": env, "calibration": cal,
                           "summary": summary, "rounds": rounds, "idle": idle_figs},
                          f, indent=1)
    except (Interrupted, RuntimeError, OSError, ValueError,
            subprocess.TimeoutExpired) as ex:
        log(f"aborted: {ex}")
        for p in procs:
            log_tail(p.bench_log)
        return 1
    finally:
        for p in list(procs):
            stop(p)
        if CFG["keep"]:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
