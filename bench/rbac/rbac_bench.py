#!/usr/bin/env python3
"""bench/rbac/rbac_bench.py — what authorization costs an API request.

Starts a fresh `v6 server` with a token file, fills it with RBAC objects
(BENCH_BINDINGS RoleBindings for other users across namespaces, plus the
one that lets the bench user read ConfigMaps), then drives the same GET with
wrk as the unsecured admin (system:masters: authorization skipped, as
before RBAC) and as the token user (token digest lookup + RBAC through the
subject index), alternating rounds. Prints requests/s and latency of each
and the ratio. A timing never fails the process.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import env_int, kill_workloads, log, median  # noqa: E402

V6 = sys.argv[1] if len(sys.argv) > 1 else "build/v6"
BINDINGS = env_int("BENCH_BINDINGS", 1000)
ROUNDS = env_int("BENCH_ROUNDS", 3)
SECS = env_int("BENCH_SECS", 5)
CONNS = env_int("BENCH_CONNS", 8)
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def call(url, method, path, body=None):
    req = urllib.request.Request(url + path, method=method,
                                 data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status


def binding(ns, name, user, role):
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns},
            "subjects": [{"kind": "User", "name": user}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role}}


def wrk(url, path, header):
    args = ["wrk", "-t1", "-c%d" % CONNS, "-d%ds" % SECS, "--latency"]
    if header:
        args += ["-H", header]
    out = subprocess.run(args + [url + path], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def lat(p):
        m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)" % p, out)
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, lat(50), lat(99), int(non2xx.group(1)) if non2xx else 0


def main():
    with tempfile.TemporaryDirectory(prefix="v6-bench-rbac-") as d:
        tokens = os.path.join(d, "tokens.csv")
        with open(tokens, "w") as f:
            f.write("bench-token,bench,uid-bench\n")
        data = os.path.join(d, "data")
        os.mkdir(data)
        logf = open(os.path.join(d, "server.log"), "wb")
        srv = subprocess.Popen([V6, "server", "--data-dir", data, "--listen", "127.0.0.1:0",
                                "--token-auth-file", tokens, "--default-runtime", "process",
                                "--pod-cidr", "127.241.0.0/16",
                                "--service-cidr", "127.242.0.0/16"],
                               stdout=logf, stderr=logf)
        try:
            addr = os.path.join(data, "server.address")
            for _ in range(400):
                if os.path.exists(addr) and open(addr).read().endswith("\n"):
                    break
                time.sleep(0.05)
            url = "http://" + open(addr).read().strip()
            for i in range(10):
                call(url, "POST", "/api/v1/namespaces", {"metadata": {"name": "ns%d" % i}})
            for i in range(BINDINGS):
                call(url, "POST", RBAC + "/namespaces/ns%d/rolebindings" % (i % 10),
                     binding("ns%d" % (i % 10), "b%d" % i, "user%d" % i, "view"))
            call(url, "POST", RBAC + "/namespaces/ns0/rolebindings",
                 binding("ns0", "bench", "bench", "view"))
            call(url, "POST", "/api/v1/namespaces/ns0/configmaps",
                 {"metadata": {"name": "x"}, "data": {"k": "v"}})
            path = "/api/v1/namespaces/ns0/configmaps/x"
            runs = {"admin": [], "rbac": []}
            for r in range(ROUNDS):
                runs["admin"].append(wrk(url, path, None))
                runs["rbac"].append(wrk(url, path, "Authorization: Bearer bench-token"))
            log("GET %s, %d RoleBindings, %d connections, %d x %ds rounds, load %s" % (
                path, BINDINGS + 1, CONNS, ROUNDS, SECS, os.getloadavg()[0]))
            print("%-28s %10s %9s %9s %6s" % ("caller", "req/s", "p50 ms", "p99 ms", "non2xx"))
            for name, label in (("admin", "system:masters (no RBAC)"),
                                ("rbac", "token user through RBAC")):
                rs = runs[name]
                print("%-28s %10.0f %9.3f %9.3f %6d" % (
                    label, median([x[0] for x in rs]), median([x[1] for x in rs]),
                    median([x[2] for x in rs]), sum(x[3] for x in rs)))
            a = median([x[0] for x in runs["admin"]])
            b = median([x[0] for x in runs["rbac"]])
            print("throughput with RBAC / without: %.2f" % (b / a))
        finally:
            srv.terminate()
            srv.wait(timeout=30)
            kill_workloads(data)    # the proxy outlives the server by design
            logf.close()


if __name__ == "__main__":
    main()
