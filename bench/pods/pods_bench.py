#!/usr/bin/env python3
"""bench/pods/pods_bench.py — the pods benchmark: V6 against supervisord, side by side.

Started by bench/pods/run.sh (which builds the floor launcher, launch.c).
For 1, 10 and 100 copies of a workload: V6 (a Deployment POSTed to a fresh
`v6 server`, pods watched until Running) and supervisord (the same commands
as generated [program:x] sections, added to a running supervisord the way
`supervisorctl update` does), then a raw fork+exec launcher as the floor;
the first restart of crashing processes; the memory of each supervisor with
100 processes. Standard library only. A timing never fails the process:
exit 0 unless the harness itself could not run.
"""
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import http.client
import urllib.error
import urllib.request
import xmlrpc.client

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import (Interrupted, WatchStream, env_int, free_port, kill_workloads,  # noqa: E402
                      loadavg, log, log_tail, marked_pids, median, on_signal, read_pid,
                      remove_cgroups)


CFG = {
    "counts": [int(x) for x in os.environ.get("BENCH_PODS", "1 10 100").split()],
    "workloads": os.environ.get("BENCH_WORKLOADS", "sleep testapp").split(),
    "restart_pods": env_int("BENCH_RESTART_PODS", 10),
    "rounds": env_int("BENCH_ROUNDS", 3),
    "timeout_s": env_int("BENCH_TIMEOUT_S", 60),
    "keep": env_int("BENCH_KEEP", 0),
    "tmp": os.environ.get("BENCH_TMP", os.environ.get("TMPDIR", "/tmp")),
    "supervisord": os.environ.get("SUPERVISORD", shutil.which("supervisord")
                                  or "/usr/bin/supervisord"),
    "json_out": os.environ.get("BENCH_JSON", ""),
    "poke_ms": env_int("BENCH_V6_POKE_MS", 0),
}
TARGETS = {"p99_ms": 100, "restart_ms": 100, "server_rss_mb": 20, "shim_mb": 1,
           "floor_ratio": 1.3}
# supervisord notices that a silent program (`sleep`) is RUNNING only on its
# next loop turn, a 1 s select timeout it has no setting for: its Running
# times for such a workload measure that tick, so no ratio is computed on
# them (the row shows why). testapp prints a line at start, which wakes it.
SV_TICK_BOUND = {"sleep"}
SV_TICK_ROWS = ("from_apply", "all_ms")
READY_TIMEOUT_S = 30
# The crashing workload prints its own start and exit times (bash's
# EPOCHREALTIME, no fork), so every supervisor is timed against the same
# clock readings taken inside the process.
CRASHER = ("echo start $EPOCHREALTIME; sleep 1; echo exit $EPOCHREALTIME; exit 1")
MARK = f"v6-bench-pods-{os.getpid()}-{random.randrange(1 << 30)}"

procs = []                  # every daemon we started: stopped at exit
data_dirs = []              # every V6 data dir: its containers are killed at exit


def start(name, argv, logdir, env=None):
    path = os.path.join(logdir, f"{name}.log")
    logf = open(path, "wb")
    p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL,
                         env=dict(os.environ, BENCH_MARK=MARK, **(env or {})))
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


def deadline_loop(timeout_s, step=0.01):
    """Yields until timeout_s has passed; the caller breaks when done."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        yield
        time.sleep(step)


def pct(xs, p):
    """Nearest-rank percentile (p99 of 10 samples is the largest)."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = max(0, min(len(xs) - 1, -(-len(xs) * p // 100) - 1))
    return xs[int(k)]


def lat_fig(samples):
    return {"p50": pct(samples, 50), "p99": pct(samples, 99),
            "max": max(samples) if samples else None, "n": len(samples)}


# ---- /proc ------------------------------------------------------------------

def proc_mem(pid):
    """VmRSS, VmHWM (status) and Rss, Pss, private (smaps_rollup), in KB."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Pss", "Private_Clean", "Private_Dirty"):
                    out[k] = int(v.split()[0])
    except OSError:
        return None
    out["Private"] = out.get("Private_Clean", 0) + out.get("Private_Dirty", 0)
    return out


def proc_cpu_s(pid, thread=None):
    """CPU time of a process's live threads (or of one thread) in seconds,
    from schedstat's nanoseconds. utime/stime in /proc/PID/stat are whole
    clock ticks (10 ms) per process: they counted a shim's start, ~1 ms,
    as 0, so 100 shims added next to nothing."""
    paths = ([f"/proc/{pid}/task/{thread}/schedstat"] if thread else
             glob.glob(f"/proc/{pid}/task/*/schedstat"))
    ns = None
    for path in paths:
        try:
            with open(path) as f:
                ns = (ns or 0) + int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    if ns is not None:
        return ns / 1e9
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stamps(path):
    """'start T' / 'exit T' lines a crasher printed (CRI or plain log)."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                w = line.split()
                for i, tok in enumerate(w[:-1]):
                    if tok in ("start", "exit"):
                        try:
                            out.append((tok, float(w[i + 1])))
                        except ValueError:
                            pass
                        break
    except OSError:
        pass
    return out


def restart_gap_ms(st):
    """First exit -> next start, from the process's own stamps."""
    try:
        i = next(i for i, (k, _) in enumerate(st) if k == "exit")
        t_exit = st[i][1]
        t_next = next(t for k, t in st[i + 1:] if k == "start")
    except StopIteration:
        return None, None
    return (t_next - t_exit) * 1e3, t_exit


# ---- V6 ---------------------------------------------------------------------

def api_call(method, url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class PodWatch(WatchStream):
    """Watches the pods of a namespace from before the apply; per pod, the
    wall time each event was received: ADDED, bound (spec.nodeName set by
    the node agent's claim), first Running (restartCount 0), first Running
    again after a restart."""

    def __init__(self, port, ns):
        self.pods = {}
        self.lock = threading.Lock()
        super().__init__(port, f"/api/v1/namespaces/{ns}/pods?watch=true")

    def on_event(self, kind, obj, now):
        name = (obj.get("metadata") or {}).get("name")
        if not name or kind not in ("ADDED", "MODIFIED"):
            return False
        with self.lock:
            p = self.pods.setdefault(name, {"uid": obj["metadata"].get("uid")})
            p.setdefault("added", now)
            if (obj.get("spec") or {}).get("nodeName"):
                p.setdefault("bound", now)
            cs = ((obj.get("status") or {}).get("containerStatuses") or [{}])[0]
            if "running" in (cs.get("state") or {}):
                key = "running0" if cs.get("restartCount", 0) == 0 else "running1"
                p.setdefault(key, now)
        return False

    def count(self, key):
        with self.lock:
            return sum(1 for p in self.pods.values() if key in p)

    def snapshot(self):
        with self.lock:
            return {k: dict(v) for k, v in self.pods.items()}


class Poker:
    """Diagnostic (BENCH_V6_POKE_MS): GET /readyz every period, so that the
    server's loop wakes up that often whatever it is waiting for."""

    def __init__(self, base, period_ms):
        self.base, self.period = base, period_ms / 1e3
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.wait(self.period):
            try:
                api_call("GET", self.base + "/readyz", timeout=2)
            except OSError:
                pass

    def stop(self):
        self.done.set()
        self.thread.join(5)


def deployment(name, n, argv, with_ip):
    env = [{"name": "BENCH_MARK", "value": MARK}]
    if with_ip:
        env.append({"name": "POD_IP",
                    "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": n,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "c", "image": "bench", "command": argv, "env": env}]}}}}


def server_log_notes(path):
    """Warning and error lines of the server log, by message."""
    notes = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("level") in ("warn", "error"):
                    key = f"{rec.get('level')} {rec.get('component')}: {rec.get('msg')}"
                    notes[key[:200]] = notes.get(key[:200], 0) + 1
    except OSError:
        pass
    return notes


def run_v6(v6bin, root, argv, n, crash, with_ip, measure_mem):
    """One fresh server, one Deployment of n pods; returns its figures."""
    data = os.path.join(root, "data")
    os.makedirs(data)
    data_dirs.append(data)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # No Service is involved: without the proxy part, no detached v6 proxy
    # outlives the run.
    srv = start("v6", [v6bin, "server", "--insecure-http", "--data-dir", data,
                       "--listen", f"127.0.0.1:{port}",
                       "--controllers", "*,-proxy",
                       # process pods: a host command against the fork+exec
                       # floor (runc pods are bench/containers' part)
                       "--default-runtime", "process"], root)
    watch = poke = None
    try:
        for _ in deadline_loop(READY_TIMEOUT_S, 0.02):
            if srv.poll() is not None:
                raise RuntimeError(f"v6 server exited with {srv.returncode}")
            try:
                if api_call("GET", base + "/readyz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
        else:
            raise RuntimeError("v6 server not ready")
        watch = PodWatch(port, "default")
        if CFG["poke_ms"] > 0:
            poke = Poker(base, CFG["poke_ms"])
        cpu0 = (proc_cpu_s(srv.pid), proc_cpu_s(srv.pid, srv.pid))
        t0 = time.time()
        status, body = api_call("POST", base + "/apis/apps/v1/namespaces/default/deployments",
                            deployment("bench", n, argv, with_ip))
        t_ack = time.time()
        if status != 201:
            raise RuntimeError(f"v6: creating the Deployment: {status} {body[:300]}")
        fig = {"ack_ms": (t_ack - t0) * 1e3}
        key = "running1" if crash else "running0"
        for _ in deadline_loop(CFG["timeout_s"]):
            if watch.count(key) >= n and (not crash or v6_restarts_logged(data, n)):
                break
        t_done = time.time()
        pods = watch.snapshot()
        fig["running"] = watch.count("running0")
        fig["timed_out"] = watch.count(key) < n
        if crash:
            fig.update(v6_restart_figs(data, pods))
        else:
            run_ms = [(p["running0"] - t0) * 1e3 for p in pods.values() if "running0" in p]
            fig["from_apply"] = lat_fig(run_ms)
            fig["from_added"] = lat_fig([(p["running0"] - p["added"]) * 1e3
                                         for p in pods.values() if "running0" in p])
            fig["all_ms"] = max(run_ms) if len(run_ms) >= n else None
            fig["bound"] = lat_fig([(p["bound"] - t0) * 1e3 for p in pods.values()
                                    if "bound" in p])
            fig["forked"] = lat_fig(v6_forked_ms(data, t0))
            fig["wall_s"] = t_done - t0
        if measure_mem:
            time.sleep(0.5)
            fig.update(v6_memory(srv.pid, data, cpu0))
        fig["alive"] = srv.poll() is None
        return fig
    finally:
        if poke:
            poke.stop()
        if watch:
            watch.close()
        stop(srv)
        kill_workloads(data)
        CGROUPS_LEFT[0] += remove_cgroups(data)
        fig_notes = server_log_notes(srv.bench_log)
        if fig_notes:
            V6_NOTES.update({k: V6_NOTES.get(k, 0) + v for k, v in fig_notes.items()})


V6_NOTES = {}
CGROUPS_LEFT = [0]          # cgroup dirs of our pods that could not be removed


def v6_forked_ms(data, t0):
    """The runtime's own start record: ctr.pid's third field (ms, wall)."""
    out = []
    for path in glob.glob(os.path.join(data, "node", "containers", "*", "c-0", "ctr.pid")):
        try:
            with open(path) as f:
                out.append(int(f.read().split()[2]) - t0 * 1e3)
        except (OSError, ValueError, IndexError):
            pass
    return out


def v6_logs(data, uid, attempt):
    return glob.glob(os.path.join(data, "node", "pods", f"*_{uid}", "c", f"{attempt}.log"))


def v6_restarts_logged(data, n):
    got = 0
    for path in glob.glob(os.path.join(data, "node", "pods", "*", "c", "1.log")):
        if any(k == "start" for k, _ in stamps(path)):
            got += 1
    return got >= n


def v6_restart_figs(data, pods):
    gaps, reap_gaps, rt_gaps, api_gaps = [], [], [], []
    for p in pods.values():
        st = []
        for a in (0, 1):
            for path in v6_logs(data, p["uid"], a):
                st += stamps(path)
        gap, t_exit = restart_gap_ms(st)
        if gap is None:
            continue
        gaps.append(gap)
        if "running1" in p:
            api_gaps.append((p["running1"] - t_exit) * 1e3)
        cdir = os.path.join(data, "node", "containers", p["uid"])
        try:
            with open(os.path.join(cdir, "c-0", "exit.json")) as f:
                fin = json.load(f)["finishedAt"]
            reap_gaps.append(fin - t_exit * 1e3)
            with open(os.path.join(cdir, "c-1", "ctr.pid")) as f:
                rt_gaps.append(int(f.read().split()[2]) - fin)
        except (OSError, ValueError, KeyError, IndexError):
            pass
    return {"restart": lat_fig(gaps), "restart_reap": lat_fig(reap_gaps),
            "restart_rt": lat_fig(rt_gaps),
            "restart_api": lat_fig(api_gaps)}


def proc_ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def v6_memory(server_pid, data, cpu0):
    shims = []
    zygotes = set()         # the server's shim zygote (the shims' parent), counted once
    cpu = server_cpu = proc_cpu_s(server_pid) - cpu0[0]
    loop_cpu = proc_cpu_s(server_pid, server_pid) - cpu0[1]
    for path in glob.glob(os.path.join(data, "node", "containers", "*", "c-*", "shim.pid")):
        if os.path.exists(os.path.join(os.path.dirname(path), "exit.json")):
            continue
        pid = read_pid(path)
        m = proc_mem(pid) if pid else None
        if m:
            shims.append(m)
            cpu += proc_cpu_s(pid)
            ppid = proc_ppid(pid)
            if ppid > 1 and ppid != server_pid and proc_ppid(ppid) == server_pid:
                zygotes.add(ppid)
    cpu += sum(proc_cpu_s(z) for z in zygotes)
    fig = {"mem": proc_mem(server_pid), "cpu_s": cpu, "loop_cpu_s": loop_cpu,
           "server_cpu_s": server_cpu,
           "shims": len(shims)}
    if shims:
        fig["shim_one"] = shims[0]
        for k in ("VmRSS", "Private", "Pss"):
            vals = [s.get(k, 0) for s in shims]
            fig[f"shim_mean_{k}"] = sum(vals) / len(vals)
            fig[f"shim_max_{k}"] = max(vals)
        fig["shim_sum_Pss"] = sum(s.get("Pss", 0) for s in shims)
    return fig


# ---- supervisord ------------------------------------------------------------

def sv_conf(root, port):
    path = os.path.join(root, "supervisord.conf")
    with open(path, "w") as f:
        f.write(f"""[supervisord]
nodaemon=true
logfile={root}/supervisord.log
loglevel=info
pidfile={root}/supervisord.pid
childlogdir={root}
user=root
[inet_http_server]
port=127.0.0.1:{port}
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[include]
files={root}/conf.d/*.conf
""")
    os.makedirs(os.path.join(root, "conf.d"))
    return path


def sv_programs(root, n, argv, with_ip):
    """N [program:w-i] sections in one group, each like a pod: same command,
    started at once (startsecs=0), restarted at once (autorestart)."""
    cmd = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
    with open(os.path.join(root, "conf.d", "bench.conf"), "w") as f:
        for i in range(n):
            env = f'BENCH_MARK="{MARK}"'
            if with_ip:
                env += f',POD_IP="127.2.{i // 250}.{i % 250 + 1}"'
            f.write(f"""[program:w-{i}]
command={cmd.replace('%', '%%')}
environment={env}
autostart=true
autorestart=true
startsecs=0
startretries=100
stopsignal=KILL
killasgroup=true
stdout_logfile={root}/w-{i}.log
redirect_stderr=true
""")
        f.write("[group:g]\nprograms=" + ",".join(f"w-{i}" for i in range(n)) + "\n")


def sv_log_times(path):
    """Per program: first 'spawned' and first 'entered RUNNING' (wall time)."""
    out = {}
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return out
    for line in lines:
        w = line.split()
        if len(w) < 5:
            continue
        what = None
        if w[3] == "spawned:":
            what, name = "spawned", w[4].strip("'")
        elif w[3] == "success:" and "RUNNING" in line:
            what, name = "running", w[4]
        if not what:
            continue
        try:
            sec, ms = w[1].split(",")
            t = time.mktime(time.strptime(f"{w[0]} {sec}", "%Y-%m-%d %H:%M:%S"))
            t += int(ms) / 1e3
        except ValueError:
            continue
        name = name.split(":")[-1]
        out.setdefault(name, {}).setdefault(what, t)
    return out


def run_supervisord(root, argv, n, crash, with_ip, measure_mem):
    port = free_port()
    conf = sv_conf(root, port)
    sv = start("supervisord", [CFG["supervisord"], "-c", conf], root)
    try:
        rpc = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2")
        for _ in deadline_loop(READY_TIMEOUT_S, 0.02):
            if sv.poll() is not None:
                raise RuntimeError(f"supervisord exited with {sv.returncode}")
            try:
                if rpc.supervisor.getState()["statename"] == "RUNNING":
                    break
            except OSError:
                pass
        else:
            raise RuntimeError("supervisord not ready")
        sv_programs(root, n, argv, with_ip)
        cpu0 = proc_cpu_s(sv.pid)
        t0 = time.time()
        rpc.supervisor.reloadConfig()           # what `supervisorctl update` does
        rpc.supervisor.addProcessGroup("g")
        fig = {"ack_ms": (time.time() - t0) * 1e3}
        svlog = os.path.join(root, "supervisord.log")
        names = [f"w-{i}" for i in range(n)]
        for _ in deadline_loop(CFG["timeout_s"]):
            times = sv_log_times(svlog)
            running = sum(1 for k in names if "running" in times.get(k, {}))
            if crash:
                done = sum(1 for i in range(n)
                           if restart_gap_ms(stamps(f"{root}/w-{i}.log"))[0] is not None)
            else:
                done = running
            if done >= n:
                break
        fig["running"], fig["timed_out"] = running, done < n
        if crash:
            gaps = [restart_gap_ms(stamps(f"{root}/w-{i}.log"))[0] for i in range(n)]
            fig["restart"] = lat_fig([g for g in gaps if g is not None])
        else:
            run_ms = [(times[k]["running"] - t0) * 1e3 for k in names
                      if "running" in times.get(k, {})]
            fig["from_apply"] = lat_fig(run_ms)
            fig["all_ms"] = max(run_ms) if len(run_ms) >= n else None
            fig["forked"] = lat_fig([(times[k]["spawned"] - t0) * 1e3 for k in names
                                     if "spawned" in times.get(k, {})])
        if measure_mem:
            time.sleep(0.5)
            fig["mem"] = proc_mem(sv.pid)
            fig["cpu_s"] = proc_cpu_s(sv.pid) - cpu0
        fig["alive"] = sv.poll() is None
        return fig
    finally:
        stop(sv, grace=15)


# ---- the floor ----------------------------------------------------------------

def run_floor(launch, root, argv, n, crash, with_ip):
    args = [launch, "-n", str(n), "-o", root, "-t", str(CFG["timeout_s"])]
    if with_ip:
        args += ["-i", "127.3"]
    if crash:
        args += ["-r", "-H", "300"]
    r = subprocess.run(args + ["--"] + argv, capture_output=True, text=True,
                       timeout=CFG["timeout_s"] + 30,
                       env=dict(os.environ, BENCH_MARK=MARK))
    if not r.stdout.strip():
        raise RuntimeError(f"launcher failed: {r.stderr.strip()}")
    res = json.loads(r.stdout)
    fig = {"failed": res["failed"]}
    if crash:
        gaps = [restart_gap_ms(stamps(f"{root}/{i}.log"))[0] for i in range(n)]
        fig["restart"] = lat_fig([g for g in gaps if g is not None])
    else:
        fig["from_apply"] = lat_fig(res["exec_ms"])
        fig["all_ms"] = res["all_ms"]
    return fig


# ---- rounds -------------------------------------------------------------------

def workload_argv(v6bin, wl, port):
    if wl == "sleep":
        return ["sleep", "3600"], False
    if wl == "testapp":
        return [v6bin, "testapp", "--quiet", "--port", str(port)], True
    if wl == "crash":
        return ["bash", "-c", CRASHER], False
    raise RuntimeError(f"unknown workload {wl} (BENCH_WORKLOADS: sleep, testapp)")


def scenarios():
    """(workload, n, crash): start-up per workload and count, then restarts."""
    out = [(wl, n, False) for wl in CFG["workloads"] for n in CFG["counts"]]
    if CFG["restart_pods"] > 0:
        out.append(("crash", CFG["restart_pods"], True))
    return out


def run_rounds(v6bin, launch, root, has_sv):
    rounds = []
    mem_n = max(CFG["counts"])
    for r in range(CFG["rounds"]):
        figs = {}
        for wl, n, crash in scenarios():
            port = random.randrange(20000, 60000)
            argv, with_ip = workload_argv(v6bin, wl, port)
            sides = ["V6"] + (["supervisord"] if has_sv else [])
            if r % 2:
                sides.reverse()
            key = f"{wl}/{n}"
            figs[key] = {}
            mem = n == mem_n and not crash
            for side in sides + ["floor"]:
                d = os.path.join(root, f"r{r + 1}-{wl}-{n}-{side}")
                os.makedirs(d)
                log(f"round {r + 1}/{CFG['rounds']}: {side}: {n} x {wl}")
                if side == "V6":
                    f = run_v6(v6bin, d, argv, n, crash, with_ip, mem)
                elif side == "supervisord":
                    f = run_supervisord(d, argv, n, crash, with_ip, mem)
                else:
                    f = run_floor(launch, d, argv, n, crash, with_ip)
                figs[key][side] = f
                if f.get("timed_out"):
                    log(f"{side}: {n} x {wl}: not done after {CFG['timeout_s']} s "
                        f"({f.get('running')} running)")
                if not CFG["keep"]:
                    shutil.rmtree(d, ignore_errors=True)
        rounds.append(figs)
    return rounds


# ---- the report ----------------------------------------------------------------

def get(fig, *path):
    for k in path:
        if not isinstance(fig, dict) or k not in fig:
            return None
        fig = fig[k]
    return fig


def fmt(x, unit):
    if x is None:
        return "-"
    if unit == "ms":
        return f"{x:,.1f} ms" if x < 100 else f"{x:,.0f} ms"
    if unit == "MB":
        return f"{x:,.2f} MB"
    return f"{x:,.2f} {unit}"


def ratio_text(a, b, r):
    if r is None:
        return "-"
    if abs(r - 1) < 0.005:
        return f"{r:.2f}x (equal)"
    return f"{r:.2f}x ({'V6 better' if r < 1 else 'V6 worse'})"


def spread(xs, unit):
    xs = [x for x in xs if x is not None]
    if len(xs) < 2:
        return ""
    lo, hi = (fmt(x, unit).rsplit(" ", 1)[0] for x in (min(xs), max(xs)))
    return f"{lo}..{hi}"


def rows_for(n, crash, is_mem):
    """(label, path in V6 figs, path in peer figs, unit, scale); a path of
    None means the side has no such figure."""
    kb = 1 / 1024
    if crash:
        return [
            ("first restart: exit -> next start p50", ("restart", "p50"), ("restart", "p50"), "ms", 1),
            ("first restart: exit -> next start max", ("restart", "max"), ("restart", "max"), "ms", 1),
            ("  V6: exit -> exit.json finishedAt (shim reaped), p50", ("restart_reap", "p50"), None, "ms", 1),
            ("  V6: finishedAt -> next ctr.pid (shim forks), p50", ("restart_rt", "p50"), None, "ms", 1),
            ("  V6: finishedAt -> next ctr.pid (shim forks), max", ("restart_rt", "max"), None, "ms", 1),
            ("  V6 API: exit -> Running again (watch) p50", ("restart_api", "p50"), None, "ms", 1),
            ("  V6 API: exit -> Running again (watch) max", ("restart_api", "max"), None, "ms", 1),
        ]
    rows = []
    if n == 1:
        rows.append(("1 pod: apply -> Running", ("from_apply", "p50"), ("from_apply", "p50"), "ms", 1))
    else:
        rows += [
            (f"{n} pods: per-pod p50 from apply", ("from_apply", "p50"), ("from_apply", "p50"), "ms", 1),
            (f"{n} pods: per-pod p99 from apply", ("from_apply", "p99"), ("from_apply", "p99"), "ms", 1),
            (f"{n} pods: all Running", ("all_ms",), ("all_ms",), "ms", 1),
        ]
    rows += [
        ("  per-pod p50 from pod ADDED", ("from_added", "p50"), None, "ms", 1),
        ("  per-pod p99 from pod ADDED", ("from_added", "p99"), None, "ms", 1),
        ("  V6: bound by the node agent, p50 from apply", ("bound", "p50"), None, "ms", 1),
        ("  V6: bound by the node agent, p99 from apply", ("bound", "p99"), None, "ms", 1),
        ("  process forked p50 from apply", ("forked", "p50"), ("forked", "p50"), "ms", 1),
        ("  process forked p99 from apply", ("forked", "p99"), ("forked", "p99"), "ms", 1),
    ]
    if is_mem:
        rows += [
            (f"  CPU to start {n} (server+shims / supervisord)", ("cpu_s",), ("cpu_s",), "s", 1),
            ("  V6: of which the server's (all threads)", ("server_cpu_s",), None, "ms", 1000),
            ("  V6: of which the server's loop thread", ("loop_cpu_s",), None, "ms", 1000),
            (f"  daemon RSS with {n} (VmRSS)", ("mem", "VmRSS"), ("mem", "VmRSS"), "MB", kb),
            ("  daemon peak RSS (VmHWM)", ("mem", "VmHWM"), ("mem", "VmHWM"), "MB", kb),
            ("  shim VmRSS (one)", ("shim_one", "VmRSS"), None, "MB", kb),
            (f"  shim private, mean of {n}", ("shim_mean_Private",), None, "MB", kb),
            (f"  shim PSS, mean of {n}", ("shim_mean_Pss",), None, "MB", kb),
            (f"  total: server RSS + {n} shims' PSS", ("total_kb",), ("mem", "VmRSS"), "MB", kb),
        ]
    return rows


def summarize(rounds):
    """One table block per scenario: medians over rounds, per-round ratios."""
    for r in rounds:
        for sides in r.values():
            v = sides.get("V6") or {}
            if get(v, "mem", "VmRSS") is not None:
                v["total_kb"] = v["mem"]["VmRSS"] + v.get("shim_sum_Pss", 0)
    mem_n = max(CFG["counts"])
    blocks = []
    for wl, n, crash in scenarios():
        key = f"{wl}/{n}"
        block = []
        for label, vp, sp, unit, scale in rows_for(n, crash, n == mem_n and not crash):
            def vals(side, path):
                if path is None:
                    return [None] * len(rounds)
                xs = [get(r.get(key, {}).get(side), *path) for r in rounds]
                return [x * scale if x is not None else None for x in xs]
            a, b = vals("V6", vp), vals("supervisord", sp)
            c = vals("floor", sp if sp and sp[0] in ("from_apply", "all_ms", "restart") else None)
            ratios = [x / y for x, y in zip(a, b) if x is not None and y]
            tick = wl in SV_TICK_BOUND and sp is not None and sp[0] in SV_TICK_ROWS
            block.append({"metric": label, "unit": unit, "v6": median(a),
                          "sv": median(b), "floor": median(c), "v6_all": a,
                          "sv_all": b, "ratio": None if tick else median(ratios),
                          "tick": tick})
        blocks.append((wl, n, crash, block))
    return blocks


def title(wl, n, crash, v6bin):
    if crash:
        return (f"first restart: {n} processes `bash -c '{CRASHER}'`, restartPolicy "
                "Always / autorestart=true, startsecs=0")
    what = {"sleep": "`sleep 3600`",
            "testapp": f"`{os.path.basename(v6bin)} testapp --quiet` on its own IP"}
    return f"start-up: {what.get(wl, wl)}, no probes"


def cell_row(m):
    ratio = ("n/a: sv's 1 s tick" if m.get("tick") and m["sv"] is not None
             else ratio_text(m["v6"], m["sv"], m["ratio"]))
    return (m["metric"], fmt(m["v6"], m["unit"]), fmt(m["sv"], m["unit"]),
            ratio, fmt(m["floor"], m["unit"]),
            spread(m["v6_all"], m["unit"]), spread(m["sv_all"], m["unit"]))


def report(blocks, rounds, v6bin, env):
    print()
    print(f"pods benchmark: V6 vs supervisord {env['sv_version']} in the same run, "
          f"{CFG['rounds']} rounds (medians), {os.cpu_count()} CPUs shared by everything; "
          "floor = fork+exec from a tiny C launcher")
    if CFG["poke_ms"] > 0:
        print(f"DIAGNOSTIC RUN: BENCH_V6_POKE_MS={CFG['poke_ms']}: a client sent GET /readyz "
              f"to V6 every {CFG['poke_ms']} ms during its runs; these are not V6's normal figures")
    header = ("metric", "V6", "supervisord", "V6/supervisord", "floor", "V6 range",
              "supervisord range")
    cells = [header] + [cell_row(m) for _, _, _, b in blocks for m in b]
    w = [max(len(r[i]) for r in cells) for i in range(7)]
    seen = set()
    for wl, n, crash, block in blocks:
        t = title(wl, n, crash, v6bin)
        table = [header] if t not in seen else []
        if t not in seen:
            print()
            print(t)
            seen.add(t)
        table += [cell_row(m) for m in block]
        for i, r in enumerate(table):
            print(f"  {r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]:<{w[3]}}"
                  f"  {r[4]:>{w[4]}}  {r[5]:>{w[5]}}  {r[6]:>{w[6]}}".rstrip())
            if r is header:
                print("  " + "  ".join("-" * x for x in w))
    print()
    print("  V6 times: from the POST of the Deployment to the watch event showing the pod's")
    print("  container running (client receive time); supervisord: from reloadConfig +")
    print("  addProcessGroup (what `supervisorctl update` does) to its log line 'entered")
    print("  RUNNING' (ms); floor: from the launcher's start to each exec. Restart: the")
    print("  process's own stamps (bash $EPOCHREALTIME) of the first exit and the next start.")
    print("  V6/supervisord is the median of per-round ratios; below 1 is better for V6 (every")
    print("  figure here is a time or a size). p99 of 10 samples is their maximum.")
    print("  No ratio on supervisord's Running times for `sleep`: a silent program is seen")
    print("  RUNNING on its next 1 s tick (no setting lowers it); testapp's output wakes it.")
    timeouts = [(k, s) for r in rounds for k, sides in r.items() for s, f in sides.items()
                if f.get("timed_out")]
    if timeouts:
        print(f"  NOT DONE within {CFG['timeout_s']} s: " +
              ", ".join(f"{s} {k}" for k, s in timeouts))
    died = [(k, s) for r in rounds for k, sides in r.items() for s, f in sides.items()
            if f.get("alive") is False]
    if died:
        print("  DIED during the run: " + ", ".join(f"{s} {k}" for k, s in died))
    if V6_NOTES:
        print("  V6 server log, warnings and errors (count over all runs):")
        for k, v in sorted(V6_NOTES.items(), key=lambda kv: -kv[1])[:8]:
            print(f"    {v:5d}  {k}")
    print(f"  leftovers after cleanup: {env['leftovers']} processes "
          f"(marked with this run's BENCH_MARK), {CGROUPS_LEFT[0]} pod cgroup dirs")
    print(f"  load average before/after {env['load0']}/{env['load1']}")
    targets(blocks)
    sys.stdout.flush()


def targets(blocks):
    by = {}
    floor = {}
    for wl, n, crash, block in blocks:
        for m in block:
            by[(wl, n, m["metric"])] = m["v6"]
            floor[(wl, n, m["metric"])] = m["floor"]
    print()
    print("issue targets (informational; benchmarks never fail the build):")
    lines = []
    for wl in CFG["workloads"]:
        for n in CFG["counts"]:
            label = ("1 pod: apply -> Running" if n == 1
                     else f"{n} pods: per-pod p99 from apply")
            lines.append((f"per-pod p99 < 100 ms, {n} x {wl}", by.get((wl, n, label)),
                          TARGETS["p99_ms"], "ms"))
    rn = CFG["restart_pods"]
    if rn > 0:
        lines.append((f"first restart < 100 ms after the exit (max of {rn})",
                      by.get(("crash", rn, "first restart: exit -> next start max")),
                      TARGETS["restart_ms"], "ms"))
    big = max(CFG["counts"])
    wl0 = CFG["workloads"][0] if CFG["workloads"] else None
    for wl in CFG["workloads"]:
        lines.append((f"server RSS < 20 MB with {big} pods ({wl})",
                      by.get((wl, big, f"  daemon RSS with {big} (VmRSS)")),
                      TARGETS["server_rss_mb"], "MB"))
    if wl0:
        lines.append((f"shim < 1 MB each: VmRSS of one ({wl0})",
                      by.get((wl0, big, "  shim VmRSS (one)")), TARGETS["shim_mb"], "MB"))
        lines.append((f"shim < 1 MB each: private, mean of {big} ({wl0})",
                      by.get((wl0, big, f"  shim private, mean of {big}")),
                      TARGETS["shim_mb"], "MB"))
    for label, x, limit, unit in lines:
        verdict = "n/a" if x is None else ("PASS" if x < limit else "FAIL")
        print(f"  {verdict:4}  {label}: {fmt(x, unit)}")
    if big > 1:
        label = f"{big} pods: per-pod p99 from apply"
        for wl in CFG["workloads"]:
            v, f = by.get((wl, big, label)), floor.get((wl, big, label))
            r = v / f if v is not None and f else None
            verdict = "n/a" if r is None else ("PASS" if r <= TARGETS["floor_ratio"] else "FAIL")
            print(f"  {verdict:4}  per-pod p99 within {TARGETS['floor_ratio']}x of the floor, "
                  f"{big} x {wl}: {fmt(v, 'ms')} vs {fmt(f, 'ms')}"
                  + (f" = {r:.2f}x" if r is not None else ""))


def sv_version():
    try:
        return subprocess.run([CFG["supervisord"], "--version"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def cleanup(root):
    for p in list(procs):
        try:
            stop(p)
        except (OSError, subprocess.TimeoutExpired):
            pass
    for d in data_dirs:
        kill_workloads(d)
    for d in data_dirs:
        remove_cgroups(d, timeout_s=1)
    time.sleep(0.2)
    left = marked_pids(MARK)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if CFG["keep"]:
        log(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return len(left)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: pods_bench.py V6_BINARY LAUNCH_BINARY")
    v6bin, launch = map(os.path.abspath, sys.argv[1:])
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if CFG["rounds"] < 1 or not CFG["counts"] or min(CFG["counts"]) < 1:
        sys.exit("bench: BENCH_ROUNDS and BENCH_PODS must be >= 1")
    has_sv = os.access(CFG["supervisord"], os.X_OK)
    if not has_sv:
        log(f"no supervisord at {CFG['supervisord']}: V6 and the floor only "
            "(apt-get install supervisor)")
    root = tempfile.mkdtemp(prefix="v6-bench-pods-", dir=CFG["tmp"])
    env = {"sv_version": sv_version() if has_sv else "-", "load0": loadavg()}
    rc = 0
    try:
        rounds = run_rounds(v6bin, launch, root, has_sv)
        env["load1"] = loadavg()
        blocks = summarize(rounds)
    except (Interrupted, RuntimeError, OSError, ValueError,
            subprocess.TimeoutExpired, xmlrpc.client.Error) as ex:
        log(f"aborted: {ex}")
        for p in procs:
            log_tail(p.bench_log)
        rounds, rc = None, 1
    finally:
        env["leftovers"] = cleanup(root)
    if rounds is None:
        if env["leftovers"]:
            log(f"killed {env['leftovers']} leftover processes")
        return rc
    report(blocks, rounds, v6bin, env)
    if CFG["json_out"]:
        with open(CFG["json_out"], "w") as f:
            json.dump({"config": CFG, "env": env, "rounds": rounds,
                       "summary": [{"workload": wl, "n": n, "crash": c, "rows": b}
                                   for wl, n, c, b in blocks],
                       "v6_log_notes": V6_NOTES}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
