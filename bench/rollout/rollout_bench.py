#!/usr/bin/env python3
"""bench/rollout/rollout_bench.py — release strategies side by side: the wall
time and the failed requests of a rolling update, a canary Rollout and a
blue-green Rollout of the same 10-replica workload, on one `v6 server`.

Started by bench/rollout/run.sh. One server in a temp dir runs three copies of
`v6 testapp` (10 replicas each, readiness probe every second), each behind its
own Service: a Deployment (RollingUpdate, maxSurge 25%, maxUnavailable 0: the
baseline), an Argo canary Rollout (setWeight 20/40/60/80/100, no pauses) and an
Argo blue-green Rollout (autoPromotionEnabled). Every round rolls each of them
to a new version, the order rotating between rounds, while keep-alive clients
send GET / to that Service's address and count every answer (non-2xx and
connection errors are failures). Every clock stops at the same event: the
rollout is done when its object says so (the Deployment's `kubectl rollout
status` condition, the Rollout's phase Healthy with stableRS ==
currentPodHash) and the last pod of the old version is gone from the API
(its DELETED event), both seen on watches opened before the apply. Prints
medians and the median of the per-round ratios to the rolling update. Standard library only; exit 0 unless
the harness itself could not run.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import (Interrupted, ServiceLoad, WatchStream, env_int, free_port,  # noqa: E402
                      kill_workloads, loadavg, log, log_tail, marked_pids, median, on_signal,
                      remove_cgroups)

CFG = {
    "rounds": env_int("BENCH_ROUNDS", 3),
    "replicas": env_int("BENCH_REPLICAS", 10),
    "clients": env_int("BENCH_CLIENTS", 4),
    "pause_ms": env_int("BENCH_PAUSE_MS", 2),
    "tail_s": env_int("BENCH_TAIL_S", 2),
    "timeout_s": env_int("BENCH_TIMEOUT_S", 120),
    "keep": env_int("BENCH_KEEP", 0),
    "tmp": os.environ.get("BENCH_TMP", os.environ.get("TMPDIR", "/tmp")),
    "json_out": os.environ.get("BENCH_JSON", ""),
}
MARK = f"v6-bench-rollout-{os.getpid()}-{random.randrange(1 << 30)}"
READY_TIMEOUT_S = 30
NS = "default"
APPS = f"/apis/apps/v1/namespaces/{NS}/deployments"
ROS = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/rollouts"
STRATEGIES = ("rolling", "canary", "bluegreen")
LABELS = {"rolling": "rolling update (Deployment)",
          "canary": "canary Rollout, 5 steps",
          "bluegreen": "blue-green Rollout"}


# ---- manifests -----------------------------------------------------------------

def template(app, version):
    return {"metadata": {"labels": {"app": app}},
            "spec": {"terminationGracePeriodSeconds": 10, "containers": [{
                "name": "web", "image": "v6/testapp",
                "command": ["v6", "testapp", "--quiet", "--version-string", version],
                "env": [{"name": "POD_IP", "valueFrom": {
                    "fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "BENCH_MARK", "value": MARK}],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                                   "periodSeconds": 1}}]}}


def service(name, app):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"app": app},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def workload(strategy, version):
    """The object of one strategy at one version."""
    n, sel = CFG["replicas"], {"matchLabels": {"app": strategy}}
    if strategy == "rolling":
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": strategy, "namespace": NS},
                "spec": {"replicas": n, "selector": sel,
                         "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                             "maxSurge": "25%", "maxUnavailable": 0}},
                         "template": template(strategy, version)}}
    if strategy == "canary":
        strat = {"canary": {"canaryService": "canary-preview", "stableService": "canary",
                            "scaleDownDelaySeconds": 0, "trafficRouting": {"plugins": {
                                "argoproj-labs/gatewayAPI": {"httpRoute": "canary"}}},
                            "steps": [{"setWeight": w} for w in (20, 40, 60, 80, 100)]}}
    else:
        strat = {"blueGreen": {"activeService": "bluegreen",
                               "previewService": "bluegreen-preview",
                               "autoPromotionEnabled": True, "scaleDownDelaySeconds": 0}}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": strategy, "namespace": NS},
            "spec": {"replicas": n, "selector": sel, "strategy": strat,
                     "template": template(strategy, version)}}


def services(strategy):
    """The Service the load goes to first, then any other the strategy needs."""
    extra = {"rolling": [], "canary": ["canary-preview"], "bluegreen": ["bluegreen-preview"]}
    return [service(strategy, strategy)] + [service(s, strategy) for s in extra[strategy]]


def obj_path(strategy):
    return (APPS if strategy == "rolling" else ROS), strategy


def version_of(obj):
    cmd = obj["spec"]["template"]["spec"]["containers"][0]["command"]
    return cmd[cmd.index("--version-string") + 1]


def is_done(obj, version):
    """Deployment: the condition of `kubectl rollout status` (every replica
    updated and available, no old one left); Rollout: Healthy with stableRS ==
    currentPodHash. Both at the generation that carries `version`."""
    meta, st = obj.get("metadata") or {}, obj.get("status") or {}
    spec = obj.get("spec") or {}
    if version_of(obj) != version or not meta.get("generation"):
        return False
    if str(st.get("observedGeneration")) != str(meta["generation"]):
        return False
    if obj.get("kind") == "Deployment":
        n = spec.get("replicas", 1)
        return (st.get("updatedReplicas", 0) >= n and st.get("replicas", 0) <= st.get(
            "updatedReplicas", 0) and st.get("availableReplicas", 0) >= st.get(
            "updatedReplicas", 0))
    return (st.get("phase") == "Healthy" and bool(st.get("stableRS"))
            and st.get("stableRS") == st.get("currentPodHash"))


def canary_weight(obj):
    st = obj.get("status") or {}
    return (((st.get("canary") or {}).get("weights") or {}).get("canary") or {}).get("weight")


# ---- the server and its API -------------------------------------------------------

class Api:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=json.dumps(body) if body is not None else None,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            raw = r.read()
            ctype = r.getheader("Content-Type") or ""
            return r.status, (json.loads(raw) if raw and "json" in ctype else None)
        finally:
            c.close()

    def get(self, path):
        status, obj = self.call("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {json.dumps(obj)[:300]}")
        return obj


class DoneWatch(WatchStream):
    """A watch on one object, opened before the apply; the receive time of
    the first event that shows the rollout done."""

    def __init__(self, port, path, name, version):
        self.version, self.done_at, self.last = version, None, None
        self.weights = []       # canary weights the status went through, in order
        self.event = threading.Event()
        super().__init__(port, f"{path}?watch=true&fieldSelector=metadata.name%3D{name}")

    def on_event(self, kind, obj, now):
        if kind not in ("ADDED", "MODIFIED"):
            return False
        self.last = obj
        w = canary_weight(obj)
        if w is not None and version_of(obj) == self.version and (
                not self.weights or self.weights[-1] != w):
            self.weights.append(w)
        if is_done(obj, self.version):
            self.done_at = now
            self.event.set()
            return True
        return False


def pod_version(pod):
    cmd = ((pod.get("spec") or {}).get("containers") or [{}])[0].get("command") or []
    return cmd[cmd.index("--version-string") + 1] if "--version-string" in cmd else None


class OldPodsGone(WatchStream):
    """The strategy's pods of version `old`, listed now and followed on a
    watch from that list: gone_at is the receive time of the DELETED event of
    the last of them."""

    def __init__(self, api, strategy, old):
        path = f"/api/v1/namespaces/{NS}/pods"
        lst = api.get(f"{path}?labelSelector=app%3D{strategy}")
        self.old, self.gone_at = old, None
        self.alive = {p["metadata"]["name"] for p in lst.get("items") or []
                      if pod_version(p) == old}
        self.event = threading.Event()
        rv = (lst.get("metadata") or {}).get("resourceVersion", "")
        super().__init__(api.port, f"{path}?watch=true&labelSelector=app%3D{strategy}"
                         f"&resourceVersion={rv}")

    def on_event(self, kind, obj, now):
        name = (obj.get("metadata") or {}).get("name")
        if kind == "DELETED":
            self.alive.discard(name)
        elif kind in ("ADDED", "MODIFIED") and pod_version(obj) == self.old:
            self.alive.add(name)
        if not self.alive and self.gone_at is None:
            self.gone_at = now
            self.event.set()
            return True
        return False


def v6(v6bin, port, *args, stdin=None, timeout=60):
    env = dict(os.environ, V6_SERVER=f"http://127.0.0.1:{port}")
    return subprocess.run([v6bin, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=env)


def apply(v6bin, port, objs):
    p = v6(v6bin, port, "apply", "-f", "-", stdin="\n---\n".join(json.dumps(o) for o in objs))
    if p.returncode != 0:
        raise RuntimeError(f"v6 apply failed ({p.returncode}): {p.stdout}{p.stderr}")


def served_version(ip):
    c = http.client.HTTPConnection(ip, 80, timeout=2)
    try:
        c.request("GET", "/")
        r = c.getresponse()
        body = r.read()
        return json.loads(body).get("version") if r.status == 200 else None
    finally:
        c.close()


def wait_serving(ip, version, timeout_s=30):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            if served_version(ip) == version:
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{ip}:80 did not serve {version} within {timeout_s}s")


def wait_settled(api, strategy, timeout_s=60):
    """Until the strategy's pods are exactly its replicas (the old ones are
    gone, so the next rollout does not share the CPU with their shutdown)."""
    end = time.monotonic() + timeout_s
    n = 0
    while time.monotonic() < end:
        pods = api.get(f"/api/v1/namespaces/{NS}/pods?labelSelector=app%3D{strategy}")
        n = len(pods.get("items") or [])
        if n == CFG["replicas"]:
            return True
        time.sleep(0.2)
    log(f"{strategy}: still {n} pods after {timeout_s}s")
    return False


# ---- the load -------------------------------------------------------------------

def Load(ip):
    """benchlib's ServiceLoad with this bench's clients and pause."""
    return ServiceLoad(ip, CFG["clients"], CFG["pause_ms"], max_s=CFG["timeout_s"] + 60)


# ---- one rollout ----------------------------------------------------------------

def roll(v6bin, api, strategy, ip, old, new):
    """Rolls one strategy from `old` to `new` under load; its figures."""
    path, name = obj_path(strategy)
    watch = DoneWatch(api.port, path, name, new)
    gone = OldPodsGone(api, strategy, old)
    try:
        with Load(ip) as load:
            load.wait_answers(50)   # the clients are connected and counting
            t0 = time.time()
            apply(v6bin, api.port, [workload(strategy, new)])
            t_ack = time.time()
            watch.event.wait(CFG["timeout_s"])
            gone.event.wait(max(0.0, t0 + CFG["timeout_s"] - time.time()))
            t_status, t_gone = watch.done_at, gone.gone_at
            t_done = max(t_status, t_gone) if t_status and t_gone else None
            time.sleep(CFG["tail_s"])   # a tail of load after done: still counted
        fig = {"strategy": strategy, "from": old, "to": new,
               "apply_ms": (t_ack - t0) * 1e3,
               "wall_s": (t_done - t0) if t_done else None,
               "status_s": (t_status - t0) if t_status else None,
               "sent": load.sent, "failed": load.sent - load.ok,
               "failures": dict(load.failures),
               "first_new_s": (load.first[new] - t0) if new in load.first else None,
               "last_old_s": (load.last[old] - t0) if old in load.last else None,
               "weights": list(watch.weights)}
        if t_done is None:
            st = (watch.last or {}).get("status")
            log(f"{strategy}: not done within {CFG['timeout_s']}s; status {json.dumps(st)[:400]}"
                f"; old pods left: {sorted(gone.alive)}")
            return fig
        # the CLI agrees (untimed): `v6 rollout status` returns success at once
        kind = "deployment" if strategy == "rolling" else "rollout"
        p = v6(v6bin, api.port, "rollout", "status", f"{kind}/{name}", "--timeout", "20s",
               timeout=30)
        fig["cli_status_rc"] = p.returncode
        if p.returncode != 0:
            log(f"{strategy}: v6 rollout status disagrees: {p.stdout}{p.stderr}")
        fig["serving_new"] = served_version(ip) == new
        return fig
    finally:
        watch.close()
        gone.close()


def setup(v6bin, api):
    """Services and the three workloads at v1; their Service addresses."""
    objs = [s for st in STRATEGIES for s in services(st)]
    objs += [workload(st, "v1") for st in STRATEGIES]
    watches = {st: DoneWatch(api.port, *obj_path(st), "v1") for st in STRATEGIES}
    try:
        apply(v6bin, api.port, objs)
        for st, w in watches.items():
            if not w.event.wait(CFG["timeout_s"]):
                st_json = json.dumps((w.last or {}).get("status"))[:400]
                raise RuntimeError(f"{st} did not become ready at v1 within "
                                   f"{CFG['timeout_s']}s: {st_json}")
    finally:
        for w in watches.values():
            w.close()
    ips = {}
    for st in STRATEGIES:
        ips[st] = api.get(f"/api/v1/namespaces/{NS}/services/{st}")["spec"]["clusterIP"]
        wait_serving(ips[st], "v1")
        wait_settled(api, st)
    return ips


def run_rounds(v6bin, api, ips):
    rounds, version = [], {st: 1 for st in STRATEGIES}
    for r in range(CFG["rounds"]):
        order = STRATEGIES[r % 3:] + STRATEGIES[:r % 3]
        figs = {}
        for st in order:
            old, new = f"v{version[st]}", f"v{version[st] + 1}"
            version[st] += 1
            fig = roll(v6bin, api, st, ips[st], old, new)
            wall = f"{fig['wall_s']:.2f} s" if fig["wall_s"] is not None else "NOT DONE"
            log(f"round {r + 1}/{CFG['rounds']}: {st:9} {old}->{new} {wall}, "
                f"{fig['sent']} requests, {fig['failed']} failed {fig['failures'] or ''}")
            figs[st] = fig
            wait_settled(api, st)
        rounds.append(figs)
    return rounds


# ---- the report ----------------------------------------------------------------

def fnum(x, fmt, unit=""):
    return "-" if x is None else f"{x:{fmt}}{unit}"


def summarize(rounds):
    out = {}
    for st in STRATEGIES:
        figs = [r[st] for r in rounds if st in r]
        walls = [f["wall_s"] for f in figs]
        ratios = [r[st]["wall_s"] / r["rolling"]["wall_s"] for r in rounds
                  if r.get(st, {}).get("wall_s") and r.get("rolling", {}).get("wall_s")]
        out[st] = {
            "wall_s": median(walls),
            "status_s": median([f.get("status_s") for f in figs]),
            "wall_min": min((w for w in walls if w is not None), default=None),
            "wall_max": max((w for w in walls if w is not None), default=None),
            "ratio": median(ratios),
            "sent": median([f["sent"] for f in figs]),
            "failed": median([f["failed"] for f in figs]),
            "failed_total": sum(f["failed"] for f in figs),
            "sent_total": sum(f["sent"] for f in figs),
            "first_new_s": median([f["first_new_s"] for f in figs]),
            "last_old_s": median([f["last_old_s"] for f in figs]),
            "old_after_done_ms": median([(f["last_old_s"] - f["wall_s"]) * 1e3 for f in figs
                                         if f["wall_s"] is not None and
                                         f["last_old_s"] is not None]),
            "not_done": sum(1 for w in walls if w is None),
            "failures": {},
        }
        for f in figs:
            for k, v in f["failures"].items():
                out[st]["failures"][k] = out[st]["failures"].get(k, 0) + v
    return out


def report(summary, env):
    n = CFG["replicas"]
    print()
    print(f"rollout benchmark: one v6 server, {n} replicas of `v6 testapp` per strategy, "
          f"readiness probe every 1 s, {CFG['rounds']} rounds (medians), "
          f"{os.cpu_count()} CPUs shared by everything")
    print(f"load: {CFG['clients']} keep-alive clients, GET / on the Service address, "
          f"{CFG['pause_ms']} ms pause between requests, from 50 answers before the apply "
          f"to {CFG['tail_s']} s after done")
    print()
    header = ("strategy", "apply -> done", "range", "/rolling", "status said done",
              "requests", "failed",
              "failed (all rounds)", "new first served", "old last served",
              "old last - done")
    rows = [header]
    for st in STRATEGIES:
        s = summary[st]
        rng = (f"{s['wall_min']:.2f}..{s['wall_max']:.2f}"
               if s["wall_min"] is not None and CFG["rounds"] > 1 else "")
        rows.append((LABELS[st], fnum(s["wall_s"], ".2f", " s"), rng,
                     fnum(s["ratio"], ".2f", "x"), fnum(s["status_s"], ".2f", " s"),
                     fnum(s["sent"], ".0f"),
                     fnum(s["failed"], ".0f"),
                     f"{s['failed_total']} of {s['sent_total']}",
                     fnum(s["first_new_s"], ".2f", " s"), fnum(s["last_old_s"], ".2f", " s"),
                     fnum(s["old_after_done_ms"], "+.0f", " ms")))
    w = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        print("  " + f"{r[0]:<{w[0]}}  " + "  ".join(f"{c:>{w[i + 1]}}" for i, c in
                                                      enumerate(r[1:])))
        if r is header:
            print("  " + "  ".join("-" * x for x in w))
    print()
    print("  apply -> done: `v6 apply` started to the later of two watch events, the same")
    print("  for every strategy: the object says done (Deployment: every replica updated and")
    print("  available, as `rollout status`; Rollout: phase Healthy, stableRS ==")
    print("  currentPodHash), and the last pod of the old version is deleted (old pods gone).")
    print("  status said done: the first event alone. /rolling: median of")
    print("  the per-round ratios to the rolling update (above 1 is slower). requests, failed:")
    print("  medians per rollout; failures are non-2xx answers and connection errors. new first")
    print("  / old last served: when the load first got the new version, last got the old one,")
    print("  from the apply; old last - done: above 0, clients still got the old version")
    print("  after done (median of the rounds).")
    for st in STRATEGIES:
        s = summary[st]
        if s["failures"]:
            print(f"  {st} failures: " + ", ".join(f"{k} x{v}" for k, v in
                                                   sorted(s["failures"].items())))
        if s["not_done"]:
            print(f"  {st}: NOT DONE within {CFG['timeout_s']} s in {s['not_done']} rounds")
    seen = sorted({tuple(r["canary"]["weights"]) for r in env.get("rounds", [])
                   if "canary" in r})
    if seen:
        print("  canary weights the Rollout's status went through: " +
              "; ".join(" -> ".join(map(str, w)) or "none" for w in seen))
    if env.get("cli_disagreed"):
        print(f"  `v6 rollout status` did not confirm {env['cli_disagreed']} rollouts")
    print(f"  leftovers after cleanup: {env.get('leftovers', '?')} processes "
          f"(marked with this run's BENCH_MARK), {env.get('cgroups_left', '?')} pod cgroup dirs")
    print(f"  load average before/after {env['load0']}/{env.get('load1', '?')}")
    print()
    s = summary
    print(f"canary/rolling = {fnum(s['canary']['ratio'], '.2f', 'x')}, "
          f"bluegreen/rolling = {fnum(s['bluegreen']['ratio'], '.2f', 'x')}, "
          f"failed: {s['rolling']['failed_total']}/{s['canary']['failed_total']}/"
          f"{s['bluegreen']['failed_total']}")
    print("  (failed: rolling/canary/bluegreen, requests over all rounds)")
    sys.stdout.flush()


# ---- main -------------------------------------------------------------------------

def start_server(v6bin, root):
    data = os.path.join(root, "data")
    os.makedirs(data)
    port = free_port()
    logpath = os.path.join(root, "server.log")
    with open(logpath, "ab") as logf:
        srv = subprocess.Popen([v6bin, "server", "--insecure-http", "--data-dir", data,
                                "--listen", f"127.0.0.1:{port}"],
                               stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env=dict(os.environ, BENCH_MARK=MARK))
    api = Api(port)
    end = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            if api.call("GET", "/readyz", timeout=2)[0] == 200:
                break
        except OSError:
            pass
        if srv.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"v6 server did not become ready (see {logpath})")
        time.sleep(0.05)
    return srv, api, data, logpath


def cleanup(srv, data, root):
    if srv and srv.poll() is None:
        srv.terminate()
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait(5)
    left_cg = 0
    if data:
        kill_workloads(data)
        left_cg = remove_cgroups(data)
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
    return len(left), left_cg


def main():
    ap = argparse.ArgumentParser(description="release strategies side by side on V6")
    ap.add_argument("v6", help="path of the v6 binary")
    ap.add_argument("--rounds", type=int, default=CFG["rounds"],
                    help="rollouts per strategy (default BENCH_ROUNDS or 3)")
    args = ap.parse_args()
    CFG["rounds"] = args.rounds
    v6bin = os.path.abspath(args.v6)
    if CFG["rounds"] < 1 or CFG["replicas"] < 1 or CFG["clients"] < 1:
        sys.exit("bench: --rounds, BENCH_REPLICAS and BENCH_CLIENTS must be >= 1")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    root = tempfile.mkdtemp(prefix="v6-bench-rollout-", dir=CFG["tmp"])
    env = {"load0": loadavg()}
    srv = data = logpath = None
    rounds, rc = None, 0
    try:
        srv, api, data, logpath = start_server(v6bin, root)
        t0 = time.time()
        ips = setup(v6bin, api)
        log(f"3 x {CFG['replicas']} replicas ready at v1 in {time.time() - t0:.1f} s; "
            f"{CFG['rounds']} rounds")
        rounds = run_rounds(v6bin, api, ips)
        env["load1"] = loadavg()
        env["cli_disagreed"] = sum(1 for r in rounds for f in r.values()
                                   if f.get("cli_status_rc") not in (None, 0))
    except (Interrupted, RuntimeError, OSError, ValueError, KeyError,
            subprocess.TimeoutExpired, http.client.HTTPException) as ex:
        log(f"aborted: {ex}")
        if logpath:
            log_tail(logpath)
        rc = 1
    finally:
        env["leftovers"], env["cgroups_left"] = cleanup(srv, data, root)
    if rounds is None:
        return rc
    summary = summarize(rounds)
    report(summary, dict(env, rounds=rounds))
    if CFG["json_out"]:
        with open(CFG["json_out"], "w") as f:
            json.dump({"config": CFG, "env": env, "rounds": rounds, "summary": summary}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
