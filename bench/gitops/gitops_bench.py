#!/usr/bin/env python3
"""bench/gitops/gitops_bench.py — GitOps figures (issue 14, part 7).

Started by bench/gitops/run.sh. One `v6 server` (process runtime) in a temp
dir syncs Applications from a bare git repository served over loopback by
`git http-backend` (tests/e2e/gitserve.py). Three figures:

1. commit -> pods running on the new revision: a Deployment of 2 replicas
   gets a new pod-template label per commit; t0 is when `git push` returns,
   then the push is announced on /api/webhook (as GitHub would), and the
   clock stops when both replicas of the new revision are Ready and no old
   pod is left. BENCH_COMMITS commits; median and max, against Argo CD's
   default 3-minute poll (timeout.reconciliation 180 s) and V6's own
   --app-resync-period poll. Target: < 2 s.
2. memory per Application: the server's RSS before and after BENCH_APPS
   Applications (each syncing 3 ConfigMaps into its own namespace) are
   Synced, divided by their number (the objects they made included).
3. a 500-object repository (BENCH_OBJECTS ConfigMaps): create -> Synced,
   then one object changed -> Synced again, against the same objects sent
   by `v6 apply -f DIR` into another namespace (the CLI path the sync uses
   in process).

Prints figures; exit 0 unless it could not run. Standard library only.
"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
from benchlib import (Interrupted, env_int, free_port, kill_workloads, loadavg, log,  # noqa
                      log_tail, median, on_signal, rss_kb)
from gitserve import GitHTTP, Repo  # noqa: E402

CFG = {
    "commits": env_int("BENCH_COMMITS", 5),
    "apps": env_int("BENCH_APPS", 50),
    "objects": env_int("BENCH_OBJECTS", 500),
    "resync_s": env_int("BENCH_RESYNC_S", 180),
}
ARGO_POLL_S = 180
APPS = "/apis/argoproj.io/v1alpha1/namespaces/default/applications"


class Api:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, ctype="application/json", timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body) if body is not None else None
            c.request(method, path, body=data, headers={"Content-Type": ctype})
            r = c.getresponse()
            raw = r.read()
            try:
                return r.status, json.loads(raw)
            except ValueError:
                return r.status, None
        finally:
            c.close()


def wait(what, fn, timeout=120, interval=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    raise RuntimeError("timed out: " + what)


def app(name, url, path, dest):
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"source": {"repoURL": url, "targetRevision": "main", "path": path},
                     "destination": {"server": "https://kubernetes.default.svc",
                                     "namespace": dest},
                     "syncPolicy": {"automated": {"prune": True},
                                    "syncOptions": ["CreateNamespace=true"]}}}


def synced(api, name, sha):
    s, a = api.call("GET", "%s/%s" % (APPS, name))
    st = (a or {}).get("status", {})
    return (s == 200 and st.get("sync", {}).get("status") == "Synced"
            and st.get("sync", {}).get("revision") == sha
            and st.get("operationState", {}).get("phase") in (None, "Succeeded"))


def deployment(version):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "web", "version": version}},
                                  "spec": {"terminationGracePeriodSeconds": 0,
                                           "containers": [{"name": "main", "image": "sh",
                                                           "command": ["sleep", "3600"]}]}}}}


def configmaps(prefix, n):
    return "".join("---\n" + json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": "%s-%d" % (prefix, i)},
                                         "data": {"i": str(i)}}) + "\n" for i in range(n))


def rolled_out(api, ns, version):
    s, pods = api.call("GET", "/api/v1/namespaces/%s/pods" % ns)
    if s != 200:
        return False
    new = old = 0
    for p in pods["items"]:
        if p["metadata"].get("deletionTimestamp"):
            old += 1
            continue
        ready = any(c["type"] == "Ready" and c["status"] == "True"
                    for c in p.get("status", {}).get("conditions", []))
        if p["metadata"]["labels"].get("version") == version and ready:
            new += 1
        else:
            old += 1
    return new == 2 and old == 0


def bench_webhook(api, repo, gh):
    repo.write("web/web.yaml", json.dumps(deployment("v0")))
    sha = repo.commit("v0")
    api.call("POST", APPS, app("web", gh.url(), "web", "bench-web"))
    wait("web synced", lambda: synced(api, "web", sha))
    wait("v0 running", lambda: rolled_out(api, "bench-web", "v0"))
    times = []
    for i in range(1, CFG["commits"] + 1):
        version = "v%d" % i
        repo.write("web/web.yaml", json.dumps(deployment(version)))
        sha = repo.commit(version)
        t0 = time.monotonic()
        api.call("POST", "/api/webhook", {"ref": "refs/heads/main",
                                          "repository": {"clone_url": gh.url()}})
        wait(version + " running", lambda: rolled_out(api, "bench-web", version))
        times.append(time.monotonic() - t0)
        wait("synced", lambda: synced(api, "web", sha))
    med = median(times)
    print("commit -> 2 pods Ready on the new revision, via /api/webhook: median %.2f s, "
          "max %.2f s over %d commits (target < 2 s)" % (med, max(times), len(times)))
    print("  against polling: Argo CD's default %d s (%.0fx slower), V6's --app-resync-period "
          "default %d s" % (ARGO_POLL_S, ARGO_POLL_S / med, CFG["resync_s"]))


def bench_memory(api, pid, repo, gh):
    repo.write("small/cms.yaml", configmaps("cfg", 3))
    sha = repo.commit("small")
    time.sleep(0.5)
    before = rss_kb(pid)
    n = CFG["apps"]
    t0 = time.monotonic()
    for i in range(n):
        api.call("POST", APPS, app("small-%d" % i, gh.url(), "small", "bench-small-%d" % i))
    for i in range(n):
        wait("small-%d synced" % i, lambda: synced(api, "small-%d" % i, sha), timeout=300,
             interval=0.05)
    took = time.monotonic() - t0
    time.sleep(0.5)
    after = rss_kb(pid)
    print("memory per Application: %.0f KiB (RSS %d -> %d KiB for %d Applications of 3 "
          "ConfigMaps each; all Synced in %.1f s)" % ((after - before) / n, before, after, n,
                                                       took))


def bench_big(api, v6bin, port, repo, gh, root):
    n = CFG["objects"]
    repo.write("big/cms.yaml", configmaps("obj", n))
    sha = repo.commit("big")
    t0 = time.monotonic()
    api.call("POST", APPS, app("big", gh.url(), "big", "bench-big"))
    wait("big synced", lambda: synced(api, "big", sha), timeout=600, interval=0.05)
    first = time.monotonic() - t0
    text = configmaps("obj", n).replace('"i": "7"', '"i": "changed"')
    repo.write("big/cms.yaml", text)
    sha = repo.commit("one change")
    t0 = time.monotonic()
    api.call("POST", "/api/webhook", {"repository": {"clone_url": gh.url()}})
    wait("big resynced", lambda: synced(api, "big", sha), timeout=600, interval=0.05)
    change = time.monotonic() - t0
    d = os.path.join(root, "apply")
    os.makedirs(d)
    with open(os.path.join(d, "cms.yaml"), "w") as f:
        f.write(configmaps("obj", n))
    env = dict(os.environ, V6_SERVER="http://127.0.0.1:%d" % port)
    subprocess.run([v6bin, "create", "namespace", "bench-apply"], env=env,
                   capture_output=True, check=True)
    t0 = time.monotonic()
    subprocess.run([v6bin, "apply", "-n", "bench-apply", "-f", d], env=env,
                   capture_output=True, check=True)
    cli = time.monotonic() - t0
    print("%d-object repository: create -> Synced %.2f s; one object changed -> Synced "
          "%.2f s (webhook); `v6 apply -f` of the same %d objects %.2f s (%.1fx)"
          % (n, first, change, n, cli, first / cli if cli else 0))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gitops_bench.py path/to/v6")
    v6bin = os.path.abspath(sys.argv[1])
    signal.signal(signal.SIGTERM, on_signal)
    root = tempfile.mkdtemp(prefix="v6-bench-gitops-")
    data = os.path.join(root, "data")
    os.makedirs(data)
    port = free_port()
    srv = gh = None
    log("load average %s" % loadavg())
    try:
        with open(os.path.join(root, "server.log"), "ab") as logf:
            # plain HTTP on loopback, as the other benches (the default is HTTPS)
            srv = subprocess.Popen([v6bin, "server", "--insecure-http", "--data-dir", data,
                                    "--listen",
                                    "127.0.0.1:%d" % port, "--default-runtime", "process",
                                    "--app-resync-period", "%ds" % CFG["resync_s"]] +
                                   os.environ.get("BENCH_SERVER_ARGS", "").split(),
                                   stdout=logf, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        api = Api(port)
        wait("server ready", lambda: _ready(api), timeout=30)
        repo = Repo(os.path.join(root, "git"))
        gh = GitHTTP(os.path.join(root, "git"))
        bench_webhook(api, repo, gh)
        bench_memory(api, srv.pid, repo, gh)
        bench_big(api, v6bin, port, repo, gh, root)
    except (Interrupted, RuntimeError, OSError, subprocess.CalledProcessError) as e:
        log("could not finish: %s" % e)
        log_tail(os.path.join(root, "server.log"))
    finally:
        if gh:
            gh.close()
        if srv:
            srv.send_signal(signal.SIGTERM)
            try:
                srv.wait(timeout=30)
            except subprocess.TimeoutExpired:
                srv.kill()
        kill_workloads(data)
        if os.environ.get("BENCH_KEEP"):
            log("kept %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)


def _ready(api):
    try:
        return api.call("GET", "/readyz", timeout=2)[0] == 200
    except OSError:
        return False


if __name__ == "__main__":
    main()
