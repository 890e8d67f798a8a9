#!/usr/bin/env python3
"""bench/proxy/proxy_bench.py — the proxy benchmark: V6's proxy against HAProxy
and nginx, side by side, in front of the same upstream, in the same run.

Started by bench/proxy/run.sh (which builds the idle-connection holder).
Starts one upstream (`v6 testapp`, or nginx answering `return 200`), measures
it alone, then each proxy with one worker/thread and keep-alive to the
upstream, all on loopback: wrk rounds in alternating order (requests/s and
p99 latency, ratios to HAProxy), then 10,000 idle keep-alive client
connections per proxy (RSS), then HTTPS: V6's proxy and HAProxy terminating
TLS with the same ECDSA P-256 certificate (made with the openssl CLI), with
keep-alive and with a new connection (a full handshake) per request.
Standard library only. A timing never fails the
process: exit 0 unless the harness itself could not run.
"""
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import Interrupted, env_int, free_port, log, on_signal  # noqa: E402


CFG = {
    "rounds": env_int("BENCH_ROUNDS", 3),
    "duration": env_int("BENCH_DURATION", 10),
    "conns": env_int("BENCH_CONNS", 50),
    "threads": env_int("BENCH_THREADS", 1),
    "warmup": env_int("BENCH_WARMUP", 2),
    "idle_conns": env_int("BENCH_IDLE_CONNS", 10000),
    "idle_hold": env_int("BENCH_IDLE_HOLD_S", 5),
    "parts": os.environ.get("BENCH_PARTS", "wrk,idle,tls"),
    "upstream": os.environ.get("BENCH_UPSTREAM", "testapp"),
    "path": os.environ.get("BENCH_PATH", "/"),
    "peers": os.environ.get("BENCH_PEERS", "haproxy,nginx,v6"),
    "keep": env_int("BENCH_KEEP", 0),
    "json_out": os.environ.get("BENCH_JSON", ""),
    "haproxy": os.environ.get("HAPROXY", shutil.which("haproxy") or "/usr/sbin/haproxy"),
    "nginx": os.environ.get("NGINX", shutil.which("nginx") or "/usr/sbin/nginx"),
    "wrk": os.environ.get("WRK", shutil.which("wrk") or "/usr/bin/wrk"),
}
READY_TIMEOUT_S = 20
IDLE_SETUP_S = 60           # opening the idle connections never takes longer
TARGETS = {"rps_ratio": 1.2, "p99_ratio": 0.8, "idle_rss_mb": 40}

procs = []                  # every process we started: stopped at exit
TLS = {}                    # "crt", "key", "pem" once made (the tls part); proxies serve it
TLS_PORTS = {}              # proxy name -> its HTTPS port
NOFILE = 65536              # set by raise_nofile(): configs use it
UPSTREAM = []               # the upstream process, once started: its CPU per request


def raise_nofile():
    """Soft RLIMIT_NOFILE to the hard limit (65536 at most): children inherit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    global NOFILE
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    NOFILE = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return NOFILE


def start(name, argv, logdir, **kw):
    logf = open(os.path.join(logdir, f"{name}.log"), "ab")
    p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, **kw)
    logf.close()
    p.bench_name = name
    p.bench_log = os.path.join(logdir, f"{name}.log")
    procs.append(p)
    return p


def stop(p, grace=10):
    """SIGTERM by PID, SIGKILL after grace seconds."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in procs:
        procs.remove(p)


def wait_port(p, port, timeout=READY_TIMEOUT_S):
    """Waits until port answers an HTTP request with any status line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{p.bench_name} exited with {p.returncode} "
                               f"(see {p.bench_log})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if s.recv(16).startswith(b"HTTP/1."):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{p.bench_name} did not answer on port {port} "
                       f"within {timeout}s (see {p.bench_log})")


def vm_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def log_tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            tail = f.readlines()[-lines:]
    except OSError:
        return
    log(f"--- last lines of {path}")
    for line in tail:
        log("  " + line.rstrip())


# ---- upstream and peers ----------------------------------------------------

def start_testapp(v6bin, root):
    port = free_port()
    p = start("upstream-testapp", [v6bin, "testapp", "--quiet", "--listen-ip", "127.0.0.1",
                                   "--port", str(port), "--version-string", "bench"], root)
    wait_port(p, port)
    return p, port


def nginx_conf(root, name, body):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile {NOFILE};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections {min(NOFILE - 100, 30000)}; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
{body}
}}
""")
    return conf


def start_nginx_upstream(root):
    port = free_port()
    conf = nginx_conf(root, "upstream-nginx", f"""    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 "ok\\n"; }}
    }}""")
    p = start("upstream-nginx", [CFG["nginx"], "-e", "stderr", "-c", conf], root)
    wait_port(p, port)
    return p, port


def make_cert(root):
    """A CA and a leaf for bench.example (ECDSA P-256) with the openssl CLI."""
    d = os.path.join(root, "tls")
    os.makedirs(d, exist_ok=True)
    ca, cakey, crt, key, csr = (os.path.join(d, x) for x in
                                ("ca.crt", "ca.key", "leaf.crt", "leaf.key", "leaf.csr"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)
    run("req", "-x509", *ec, "-keyout", cakey, "-out", ca, "-days", "2", "-subj", "/CN=bench CA")
    run("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=bench.example")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-set_serial", "1",
        "-days", "2", "-out", crt)
    pem = os.path.join(d, "haproxy.pem")
    with open(pem, "w") as f:
        f.write(open(crt).read() + open(key).read())
    os.chmod(pem, 0o600)
    TLS.update(crt=open(crt).read(), key=open(key).read(), pem=pem)


def haproxy_tls_frontend():
    if not TLS:
        return ""
    TLS_PORTS["haproxy"] = port = free_port()
    return f"""
frontend bench_tls
    bind 127.0.0.1:{port} ssl crt {TLS['pem']} alpn http/1.1 ssl-min-ver TLSv1.2
    default_backend upstream
"""


def start_haproxy(root, up_port, wrap=()):
    port = free_port()
    conf = os.path.join(root, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write(f"""global
    nbthread 1
    maxconn 12000
    ulimit-n {NOFILE}
    # HAProxy reserves two descriptors per connection (client + server); idle
    # keep-alive clients use one, so 10,000 of them fit in 20,000 files:
    # warn instead of refusing to start when the hard limit is below 24,014.
    no strict-limits
    log stderr format short local0 warning

defaults
    mode http
    maxconn 12000
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 30s
    timeout http-keep-alive 300s
    timeout http-request 10s

frontend bench
    bind 127.0.0.1:{port}
    default_backend upstream
{haproxy_tls_frontend()}
backend upstream
    server up1 127.0.0.1:{up_port} maxconn 1000
""")
    p = start("haproxy", [*wrap, CFG["haproxy"], "-db", "-f", conf], root)
    wait_port(p, port, READY_TIMEOUT_S * (3 if wrap else 1))
    return p, port


def start_nginx_proxy(root, up_port, wrap=()):
    port = free_port()
    conf = nginx_conf(root, "proxy-nginx", f"""    upstream up {{
        server 127.0.0.1:{up_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }}
    }}""")
    p = start("nginx", [*wrap, CFG["nginx"], "-e", "stderr", "-c", conf], root)
    wait_port(p, port, READY_TIMEOUT_S * (3 if wrap else 1))
    return p, port


def v6_has_proxy(v6bin):
    try:
        r = subprocess.run([v6bin, "proxy", "--help"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def v6_snapshot(port, up_port):
    """One HTTP listener -> one route -> one cluster with the upstream (proxy.h)."""
    cluster = "bench/upstream:http"
    route = {"name": "svc/bench/upstream", "hostnames": [], "matches": [],
             "backends": [{"cluster": cluster, "weight": 1}]}
    listeners = [{"name": "svc/bench/upstream/http", "address": "127.0.0.1", "port": port,
                  "protocol": "HTTP", "routes": [route]}]
    if TLS:
        TLS_PORTS["v6"] = free_port()
        listeners.append({"name": "gw/bench/edge/https", "address": "127.0.0.1",
                          "port": TLS_PORTS["v6"], "protocol": "HTTPS", "routes": [route],
                          "tls": [{"hostname": "", "cert": TLS["crt"], "key": TLS["key"]}]})
    return {
        "version": 1,
        "listeners": listeners,
        "clusters": {cluster: {
            "service": "bench/upstream", "lb": "round_robin",
            "connect_timeout_ms": 1000, "idle_timeout_ms": 300000,
            "endpoints": [{"address": "127.0.0.1", "port": up_port,
                           "pod": "upstream", "revision": "bench"}],
        }},
    }


def feed_snapshot(sock_path, snap, timeout=10):
    """Sends one snapshot line on control.sock and waits for its ack."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(sock_path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"v6 proxy: no {sock_path}")
        time.sleep(0.05)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        while True:     # the socket file exists a moment before it listens
            try:
                s.connect(sock_path)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        s.sendall(json.dumps({"type": "snapshot", "snapshot": snap}).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("v6 proxy closed control.sock without an answer")
            buf += chunk
    ans = json.loads(buf.split(b"\n", 1)[0])
    if ans.get("type") != "ack" or ans.get("version") != snap["version"]:
        raise RuntimeError(f"v6 proxy did not ack the snapshot: {ans}")


def start_v6_proxy(v6bin, root, up_port, wrap=()):
    port = free_port()
    state = os.path.join(root, "v6-proxy")
    os.makedirs(state, exist_ok=True)
    p = start("v6-proxy", [*wrap, v6bin, "proxy", "--state-dir", state,
                           "--admin", f"127.0.0.1:{free_port()}", "--log-level", "warn"], root)
    feed_snapshot(os.path.join(state, "control.sock"), v6_snapshot(port, up_port),
                  timeout=10 * (3 if wrap else 1))
    wait_port(p, port, READY_TIMEOUT_S * (3 if wrap else 1))
    return p, port


# ---- measurements ----------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(out):
    """Figures from `wrk --latency`: requests/s of successful (2xx/3xx)
    responses only, p50/p99 (ms), socket errors and non-2xx/3xx responses.
    wrk's own Requests/sec counts every response, a 502 as much as a 200;
    here an error never adds to a rate."""
    fig = {"rps": None, "p50_ms": None, "p99_ms": None, "errors": 0, "non2xx": 0,
           "requests": None, "ok": None, "wrk_rps": None}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        fig["wrk_rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if m:
            fig[key] = float(m.group(1)) * UNITS[m.group(2)]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        fig["errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        fig["non2xx"] = int(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", out)
    if m and fig["wrk_rps"] is not None:
        secs = float(m.group(2)) * UNITS[m.group(3)] / 1e3
        fig["requests"] = int(m.group(1))
        fig["ok"] = max(0, fig["requests"] - fig["non2xx"])
        fig["rps"] = fig["ok"] / secs if secs > 0 else None
    return fig


def run_wrk(port, duration, scheme="http", extra=()):
    argv = [CFG["wrk"], f"-t{CFG['threads']}", f"-c{CFG['conns']}", f"-d{duration}s",
            "--latency", *extra, f"{scheme}://127.0.0.1:{port}{CFG['path']}"]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=duration + 60, text=True)
    fig = parse_wrk(r.stdout)
    if fig["rps"] is None:
        raise RuntimeError(f"wrk failed on port {port}: {r.stdout.strip()[:400]}")
    return fig


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def machine():
    """(idle s, busy s, context switches) of the whole machine so far
    (/proc/stat: idle + iowait against the rest; the ctxt line)."""
    idle = busy = ctxt = 0
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                t = [int(x) for x in line.split()[1:9]]
                idle, busy = t[3] + t[4], sum(t) - t[3] - t[4]
            elif line.startswith("ctxt "):
                ctxt = int(line.split()[1])
    hz = os.sysconf("SC_CLK_TCK")
    return idle / hz, busy / hz, ctxt


def children_cpu_s():
    t = os.times()
    return t.children_user + t.children_system


def measure(name, p, port, scheme="http", extra=()):
    """One wrk run through p: rates, latency, p's CPU per request and that of
    the upstream behind it (a proxy's writes decide how often it is woken),
    wrk's own (the only child reaped meanwhile), and the machine's idle
    share and context switches per request: with wrk, the proxy and the
    upstream on two cores, requests/s = busy CPU / (the three's CPU per
    request), so a proxy gains by costing less and by leaving no core idle."""
    up = UPSTREAM[0] if UPSTREAM and UPSTREAM[0] is not p else None
    c0, u0 = cpu_s(p.pid), cpu_s(up.pid) if up else 0
    m0, w0 = machine(), children_cpu_s()
    fig = run_wrk(port, CFG["duration"], scheme, extra)
    m1, w1 = machine(), children_cpu_s()
    fig["cpu_s"] = cpu_s(p.pid) - c0
    fig["cpu_us_req"] = fig["cpu_s"] * 1e6 / fig["ok"] if fig["ok"] else None
    if up and fig["ok"]:
        fig["up_us_req"] = (cpu_s(up.pid) - u0) * 1e6 / fig["ok"]
    idle, busy = m1[0] - m0[0], m1[1] - m0[1]
    fig["idle_pct"] = 100 * idle / (idle + busy) if idle + busy > 0 else None
    if fig["ok"]:
        fig["wrk_us_req"] = (w1 - w0) * 1e6 / fig["ok"]
        fig["cs_req"] = (m1[2] - m0[2]) / fig["ok"]
    log(f"  {name:9} {fig['rps']:>10.0f} req/s  p99 {fig['p99_ms'] or 0:.2f} ms"
        + (f"  ERRORS {fig['errors']}" if fig["errors"] else "")
        + (f"  non-2xx {fig['non2xx']}" if fig["non2xx"] else ""))
    return fig


def idle_test(idle_bin, name, p, port):
    """Holds CFG idle_conns keep-alive connections through the proxy; RSS."""
    rss0 = vm_kb(p.pid, "VmRSS")
    h = subprocess.Popen([idle_bin, "127.0.0.1", str(port), str(CFG["idle_conns"]),
                          str(IDLE_SETUP_S), str(CFG["idle_hold"] + 30), CFG["path"]],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    h.bench_name, h.bench_log = "idle", "(stdout)"
    procs.append(h)
    try:
        ready, _, _ = select.select([h.stdout], [], [], IDLE_SETUP_S + 10)
        if not ready:
            raise RuntimeError(f"idle client got nowhere against {name}")
        first = json.loads(h.stdout.readline() or "{}")
        time.sleep(CFG["idle_hold"])
        rss = vm_kb(p.pid, "VmRSS")
        h.stdin.close()
        last = json.loads(h.stdout.readline() or "{}")
        h.wait(30)
    finally:
        stop(h)
    fig = {"rss0_kb": rss0, "rss_kb": rss, "idle": first.get("idle", 0),
           "failed": first.get("failed", 0), "setup_s": first.get("setup_s"),
           "idle_at_end": last.get("idle_at_end"), "closed_by_peer": last.get("closed_by_peer")}
    log(f"  {name:9} {fig['idle']} idle (failed {fig['failed']}), RSS {rss0 / 1024:.1f} -> "
        f"{rss / 1024:.1f} MB, still open after {CFG['idle_hold']}s: {fig['idle_at_end']}")
    return fig


# ---- report -----------------------------------------------------------------

def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def spread(xs, fmt):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "n/a"
    m = median(xs)
    return f"{fmt.format(m)} ({fmt.format(min(xs))}..{fmt.format(max(xs))})"


def report(names, rounds, upstream, idle, env):
    if rounds:
        report_wrk(names, rounds, upstream, env)
    ratios = report_ratios(names, rounds) if rounds else {}
    if idle:
        report_idle(idle)
    if rounds or idle:
        report_targets(names, ratios, idle)
    return ratios


def errors_of(rs):
    """(socket errors, non-2xx/3xx responses) summed over rounds rs."""
    return sum(r["errors"] for r in rs), sum(r["non2xx"] for r in rs)


def report_wrk(names, rounds, upstream, env):
    print()
    print(f"Proxy benchmark: wrk -t{CFG['threads']} -c{CFG['conns']} -d{CFG['duration']}s "
          f"--latency http://127.0.0.1:PORT{CFG['path']}, {CFG['rounds']} rounds in "
          f"alternating order; upstream {env['upstream']} (one process)")
    print(f"{env['nproc']} CPUs, load average before {env['load0']}, after {env['load1']}; "
          f"{env['versions']}")
    print()
    print("median (min..max) over the rounds; requests/s counts 2xx/3xx responses only")
    print(f"{'target':12} {'requests/s':>26} {'p99 latency ms':>24} {'p50 ms':>8} "
          f"{'CPU s/round':>11} {'CPU us/req':>10} {'upstream us/req':>15} {'wrk us/req':>10} "
          f"{'idle %':>6} {'cs/req':>6} {'sock err':>8} {'non-2xx':>8}")
    rows = [("upstream", upstream)] + [(n, [r[n] for r in rounds]) for n in names]
    for n, rs in rows:
        err, bad = errors_of(rs)
        cpu = f"{median([r.get('cpu_s') for r in rs]) or 0:>11.1f}" if n != "upstream" else f"{'':>11}"
        per = median([r.get("cpu_us_req") for r in rs]) if n != "upstream" else None
        upr = median([r.get("up_us_req") for r in rs]) if n != "upstream" else None
        wrk, idle, cs = (median([r.get(k) for r in rs]) for k in ("wrk_us_req", "idle_pct", "cs_req"))
        print(f"{n:12} {spread([r['rps'] for r in rs], '{:.0f}'):>26} "
              f"{spread([r['p99_ms'] for r in rs], '{:.2f}'):>24} "
              f"{median([r['p50_ms'] for r in rs]) or 0:>8.2f} {cpu} "
              f"{'' if per is None else f'{per:.1f}':>10} "
              f"{'' if upr is None else f'{upr:.1f}':>15} "
              f"{'' if wrk is None else f'{wrk:.1f}':>10} "
              f"{'' if idle is None else f'{idle:.1f}':>6} "
              f"{'' if cs is None else f'{cs:.2f}':>6} {err:>8} {bad:>8}")


def report_ratios(names, rounds):
    ratios = {}
    if "haproxy" in names:
        print()
        print("ratios to HAProxy (median of the per-round ratios, min..max; "
              "requests/s of successful responses)")
        for n in names:
            if n == "haproxy":
                continue
            rr = [r[n]["rps"] / r["haproxy"]["rps"] for r in rounds if r["haproxy"]["rps"]]
            pr = [r[n]["p99_ms"] / r["haproxy"]["p99_ms"] for r in rounds
                  if r[n]["p99_ms"] and r["haproxy"]["p99_ms"]]
            ratios[n] = {"rps": median(rr), "p99": median(pr),
                         "errors": sum(errors_of([r[n] for r in rounds])),
                         "haproxy_errors": sum(errors_of([r["haproxy"] for r in rounds]))}
            if rr:
                print(f"  {n:10} requests/s {spread(rr, '{:.2f}x')}  "
                      f"({'more' if median(rr) >= 1 else 'fewer'} requests/s than HAProxy; "
                      f"higher is better)")
            if pr:
                print(f"  {'':10} p99        {spread(pr, '{:.2f}x')}  "
                      f"({'lower' if median(pr) <= 1 else 'higher'} p99 than HAProxy; "
                      f"lower is better)")
            if ratios[n]["errors"]:
                print(f"  {'':10} {ratios[n]['errors']} errors: its targets FAIL")
        if ratios and next(iter(ratios.values()))["haproxy_errors"]:
            print("  HAProxy had errors: the ratios compare unlike runs")
    return ratios


def report_idle(idle):
    print()
    print(f"{CFG['idle_conns']} idle keep-alive connections (one request each, then "
          f"held {CFG['idle_hold']}s), proxy VmRSS")
    print(f"{'target':12} {'established':>11} {'RSS before':>11} {'RSS held':>9} "
          f"{'per conn':>9} {'open at end':>11}")
    for n, f in idle.items():
        per = (f["rss_kb"] - f["rss0_kb"]) * 1024 / f["idle"] if f["idle"] else 0
        print(f"{n:12} {f['idle']:>11} {f['rss0_kb'] / 1024:>9.1f}MB "
              f"{f['rss_kb'] / 1024:>7.1f}MB {per:>7.0f} B {f['idle_at_end']!s:>11}")


def verdict(ok, errors):
    if errors:
        return f"FAIL ({errors} errors)"
    return "PASS" if ok else "FAIL"


def report_targets(names, ratios, idle):
    print()
    print("targets (information only, never failing the run; a proxy with any socket "
          "error or non-2xx/3xx response fails its targets):")
    if "v6" in names and "v6" in ratios:
        r = ratios["v6"]
        if r["rps"] is None:
            print(f"  V6 >= {TARGETS['rps_ratio']:.1f}x HAProxy requests/s: n/a  FAIL")
        else:
            print(f"  V6 >= {TARGETS['rps_ratio']:.1f}x HAProxy requests/s: {r['rps']:.2f}x  "
                  f"{verdict(r['rps'] >= TARGETS['rps_ratio'], r['errors'])}")
        if r["p99"] is None:
            print(f"  V6 p99 <= {TARGETS['p99_ratio']:.1f}x HAProxy's: n/a (no p99 from wrk)  FAIL")
        else:
            print(f"  V6 p99 <= {TARGETS['p99_ratio']:.1f}x HAProxy's: {r['p99']:.2f}x  "
                  f"{verdict(r['p99'] <= TARGETS['p99_ratio'], r['errors'])}")
    else:
        print(f"  V6 >= {TARGETS['rps_ratio']:.1f}x HAProxy requests/s: n/a (V6 not measured)")
        print(f"  V6 p99 <= {TARGETS['p99_ratio']:.1f}x HAProxy's: n/a (V6 not measured)")
    if "v6" in idle:
        f = idle["v6"]
        ok = f["idle"] >= CFG["idle_conns"] and f["rss_kb"] / 1024 < TARGETS["idle_rss_mb"]
        print(f"  V6 holds {CFG['idle_conns']} idle connections in < {TARGETS['idle_rss_mb']} MB: "
              f"{f['idle']} held, {f['rss_kb'] / 1024:.1f} MB  {verdict(ok, f['failed'])}")
    else:
        print(f"  V6 holds {CFG['idle_conns']} idle connections in < "
              f"{TARGETS['idle_rss_mb']} MB: n/a (V6 not measured)")


TLS_MODES = (("keep-alive", ()), ("new conn/req", ("-H", "Connection: close")))


def report_tls(names, tls_rounds, env):
    """HTTPS rows: per mode, each proxy's requests/s and p99, ratios to HAProxy."""
    print()
    print(f"{env['nproc']} CPUs, load average before {env['load0']}, after {env['load1']}; "
          f"{env['versions']}; wrk -t{CFG['threads']} -c{CFG['conns']} -d{CFG['duration']}s, "
          f"{CFG['rounds']} rounds")
    print("HTTPS (TLS terminated by the proxy, ECDSA P-256, the version wrk's OpenSSL "
          "negotiates): "
          "keep-alive, and a new connection with a full handshake per request "
          "(Connection: close)")
    print(f"{'target':12} {'mode':13} {'requests/s':>26} {'p99 latency ms':>24} "
          f"{'CPU us/req':>10} {'errors':>7}")
    for mode, _ in TLS_MODES:
        for n in names:
            rs = [r[mode][n] for r in tls_rounds if n in r[mode]]
            if not rs:
                continue
            per = median([r.get("cpu_us_req") for r in rs])
            print(f"{n:12} {mode:13} {spread([r['rps'] for r in rs], '{:.0f}'):>26} "
                  f"{spread([r['p99_ms'] for r in rs], '{:.2f}'):>24} "
                  f"{'' if per is None else f'{per:.1f}':>10} {sum(errors_of(rs)):>7}")
    for mode, _ in TLS_MODES:
        rr = [r[mode]["v6"]["rps"] / r[mode]["haproxy"]["rps"] for r in tls_rounds
              if "v6" in r[mode] and "haproxy" in r[mode] and r[mode]["haproxy"]["rps"]]
        pr = [r[mode]["v6"]["p99_ms"] / r[mode]["haproxy"]["p99_ms"] for r in tls_rounds
              if "v6" in r[mode] and "haproxy" in r[mode] and r[mode]["haproxy"]["p99_ms"]
              and r[mode]["v6"]["p99_ms"]]
        if rr:
            print(f"  v6 / HAProxy, HTTPS {mode:13} requests/s {spread(rr, '{:.2f}x')}"
                  f"  p99 {spread(pr, '{:.2f}x')}")


def tls_round(i, names, running):
    order = names[i % len(names):] + names[:i % len(names)]
    fig = {}
    for mode, extra in TLS_MODES:
        fig[mode] = {}
        log(f"  HTTPS {mode}:")
        for n in order:
            fig[mode][n] = measure(n, running[n][0], TLS_PORTS[n], "https", extra)
    return fig


def versions(v6bin, names):
    out = []
    if "haproxy" in names:
        r = subprocess.run([CFG["haproxy"], "-v"], stdout=subprocess.PIPE, text=True)
        out.append("HAProxy " + r.stdout.split()[2])
    if "nginx" in names or CFG["upstream"] == "nginx":
        r = subprocess.run([CFG["nginx"], "-v"], stderr=subprocess.PIPE, text=True)
        out.append(r.stderr.strip().split(": ", 1)[-1])
    r = subprocess.run([CFG["wrk"], "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    out.append(r.stdout.split("[")[0].strip())
    return ", ".join(out)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: proxy_bench.py V6_BINARY IDLE_BINARY")
    v6bin, idle_bin = map(os.path.abspath, sys.argv[1:])
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if CFG["rounds"] < 1 or CFG["duration"] < 1 or CFG["conns"] < 1:
        sys.exit("bench: BENCH_ROUNDS, BENCH_DURATION and BENCH_CONNS must be >= 1")
    parts = {x.strip() for x in CFG["parts"].split(",") if x.strip()}
    if not parts or parts - {"wrk", "idle", "tls"}:
        sys.exit("bench: BENCH_PARTS is a list of wrk, idle, tls")
    if not os.access(CFG["wrk"], os.X_OK):
        sys.exit(f"bench: no wrk at {CFG['wrk']} (apt-get install wrk)")
    nofile = raise_nofile()
    if nofile < CFG["idle_conns"] + 100:
        log(f"RLIMIT_NOFILE is {nofile}: too low for {CFG['idle_conns']} connections; "
            "the idle test will fall short")
    wanted = [n.strip() for n in CFG["peers"].split(",") if n.strip()]
    names = []
    for n in wanted:
        if n == "haproxy" and not os.access(CFG["haproxy"], os.X_OK):
            log(f"no HAProxy at {CFG['haproxy']} (apt-get install haproxy): skipped")
        elif n == "nginx" and not os.access(CFG["nginx"], os.X_OK):
            log(f"no nginx at {CFG['nginx']} (apt-get install nginx-light): skipped")
        elif n == "v6" and not v6_has_proxy(v6bin):
            log(f"`{v6bin} proxy --help` fails: V6's proxy is not built yet; peers only")
        elif n in ("haproxy", "nginx", "v6"):
            names.append(n)
    if not names:
        sys.exit("bench: no proxy to measure")
    root = tempfile.mkdtemp(prefix="v6-bench-proxy-")
    env = {"nproc": os.cpu_count(), "load0": loadavg(), "versions": versions(v6bin, names),
           "nofile": nofile}
    try:
        if CFG["upstream"] == "nginx":
            up, up_port = start_nginx_upstream(root)
            UPSTREAM.append(up)
            env["upstream"] = f"nginx `return 200` on port {up_port}"
        else:
            up, up_port = start_testapp(v6bin, root)
            UPSTREAM.append(up)
            env["upstream"] = f"v6 testapp --quiet on port {up_port}"
        if "tls" in parts:
            make_cert(root)
        starters = {"haproxy": lambda: start_haproxy(root, up_port),
                    "nginx": lambda: start_nginx_proxy(root, up_port),
                    "v6": lambda: start_v6_proxy(v6bin, root, up_port)}
        running = {}
        for n in names:
            running[n] = starters[n]()
            log(f"{n} pid {running[n][0].pid} on port {running[n][1]}")
        rounds, upstream = [], []
        if "wrk" in parts:
            log(f"warm-up {CFG['warmup']}s each")
        for n in names if "wrk" in parts else []:
            run_wrk(running[n][1], CFG["warmup"])
        for i in range(CFG["rounds"] if "wrk" in parts else 0):
            order = names[i % len(names):] + names[:i % len(names)]
            log(f"round {i + 1}/{CFG['rounds']}: upstream alone, then {', '.join(order)}")
            upstream.append(measure("upstream", up, up_port))
            fig = {}
            for n in order:
                fig[n] = measure(n, *running[n])
            rounds.append(fig)
        idle = {}
        if CFG["idle_conns"] > 0 and "idle" in parts:
            log(f"{CFG['idle_conns']} idle connections to each proxy")
            for n in names:
                idle[n] = idle_test(idle_bin, n, *running[n])
        tls_names = [n for n in names if n in TLS_PORTS]
        tls_rounds = []
        for i in range(CFG["rounds"] if tls_names else 0):
            log(f"HTTPS round {i + 1}/{CFG['rounds']}: {', '.join(tls_names)}")
            tls_rounds.append(tls_round(i, tls_names, running))
        env["load1"] = loadavg()
        ratios = report(names, rounds, upstream, idle, env)
        if tls_rounds:
            report_tls(tls_names, tls_rounds, env)
        if CFG["json_out"]:
            with open(CFG["json_out"], "w") as f:
                json.dump({"config": CFG, "env": env, "rounds": rounds,
                           "upstream": upstream, "idle": idle, "ratios": ratios,
                           "tls_rounds": tls_rounds}, f, indent=1)
    except (Interrupted, RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as ex:
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
