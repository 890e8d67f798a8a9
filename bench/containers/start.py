#!/usr/bin/env python3
"""bench/containers/start.py — container start latency: V6's runc runtime
against the floor of `runc run -d` on prepared bundles, same run, same image.

Started by bench/containers/start.sh. A busybox image (Debian's
busybox-static, one layer) is built with umoci and imported into a fresh
`v6 server --default-runtime runc` per round. For 1, 10 and 100 pods: a
Deployment of that many replicas is POSTed at t0 (the apply) and a watch
notes when each of its pods is Running (its container's
`runc run -d` done: the runtime reports a runc container started only
then); per-pod latency = Running - t0. The floor: the same number of
bundles prepared in advance (the same unpacked layer as an overlay lower
dir, an upper/work dir each, a config.json from `runc spec`), then at t0
as many `runc run -d` started at once; per-container latency = its runc's
exit - t0. Printed: p50, p99 and all-running for both, and V6/floor ratios
(target <= 1.3x). Published anchor: crun starts 100 containers in 1.69 s,
runc in 3.34 s. A timing never fails: exit 0 unless the harness could not
run. Standard library only.
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import http.client

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import (WatchStream, env_int, kill_workloads, log, log_tail,  # noqa: E402
                      remove_cgroups, unmount_pod_dirs)

COUNTS = [int(x) for x in os.environ.get("BENCH_PODS", "1 10 100").split()]
ROUNDS = env_int("BENCH_ROUNDS", 1)
TIMEOUT_S = env_int("BENCH_TIMEOUT_S", 120)
TARGET = 1.3
ANCHOR = "published anchor: crun 100 containers 1.69 s, runc 3.34 s"
BUSYBOX = "/bin/busybox"
IMAGE = "localhost/bench-busybox:1"


def run(*argv, **kw):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s: %s%s" % (" ".join(map(str, argv)), p.stdout, p.stderr))
    return p.stdout


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def build_image(work):
    """busybox + sleep in one layer; returns the oci-archive path."""
    rootfs = os.path.join(work, "layer")
    os.makedirs(os.path.join(rootfs, "bin"))
    shutil.copy(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    for a in ("sh", "sleep"):
        os.symlink("busybox", os.path.join(rootfs, "bin", a))
    tar = os.path.join(work, "layer.tar")
    run("tar", "-C", rootfs, "-cf", tar, ".")
    layout = os.path.join(work, "oci")
    run("umoci", "init", "--layout", layout)
    run("umoci", "new", "--image", layout + ":bb")
    run("umoci", "raw", "add-layer", "--image", layout + ":bb", tar)
    out = os.path.join(work, "bb.tar")
    run("skopeo", "copy", "-q", "oci:%s:bb" % layout, "oci-archive:%s:%s" % (out, IMAGE))
    return out


class Server:
    def __init__(self, v6, work, image_tar):
        self.v6, self.dir = v6, tempfile.mkdtemp(prefix="v6-bench-ctr-", dir=work)
        self.log = os.path.join(self.dir, "server.log")
        with open(self.log, "wb") as f:
            self.p = subprocess.Popen(
                [v6, "server", "--insecure-http", "--data-dir", self.dir, "--listen", "127.0.0.1:0",
                 "--default-runtime", "runc",
                 "--pod-cidr", "127.77.0.0/16", "--service-cidr", "127.78.0.0/16"],
                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        addr = os.path.join(self.dir, "server.address")
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                text = open(addr).read()
                if text.endswith("\n"):
                    self.port = int(text.strip().rsplit(":", 1)[1])
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            log_tail(self.log)
            raise RuntimeError("v6 server did not start")
        while time.monotonic() < end:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/readyz")
                ok = c.getresponse().status == 200
                c.close()
                if ok:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        run(v6, "--server", "http://127.0.0.1:%d" % self.port, "image", "import", image_tar)

    def post(self, path, obj):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("POST", path, json.dumps(obj), {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        c.close()
        if r.status != 201:
            raise RuntimeError("POST %s: %d" % (path, r.status))

    def close(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        kill_workloads(self.dir)
        root = os.path.join(self.dir, "node", "runc")
        if os.path.isdir(root):
            for cid in subprocess.run(["runc", "--root", root, "list", "-q"],
                                      capture_output=True, text=True).stdout.split():
                subprocess.run(["runc", "--root", root, "delete", "-f", cid],
                               capture_output=True)
        remove_cgroups(self.dir)
        unmount_pod_dirs(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


class Running(WatchStream):
    def __init__(self, port, want):
        self.want, self.at = want, {}
        super().__init__(port, "/api/v1/namespaces/default/pods?watch=true")

    def on_event(self, kind, obj, now):
        name = obj.get("metadata", {}).get("name")
        sts = obj.get("status", {}).get("containerStatuses") or []
        if name not in self.at and sts and "running" in sts[0].get("state", {}):
            self.at[name] = now
        return len(self.at) >= self.want


def v6_round(v6, work, image_tar, n):
    s = Server(v6, work, image_tar)
    try:
        w = Running(s.port, n)
        t0 = time.time()
        s.post("/apis/apps/v1/namespaces/default/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "start"},
            "spec": {"replicas": n, "selector": {"matchLabels": {"app": "start"}},
                     "template": {"metadata": {"labels": {"app": "start"}},
                                  "spec": {"containers": [{
                                      "name": "app", "image": IMAGE,
                                      "command": ["sleep", "3600"]}]}}}})
        end = time.monotonic() + TIMEOUT_S
        while len(w.at) < n and time.monotonic() < end:
            time.sleep(0.01)
        w.close()
        if len(w.at) < n:
            log_tail(s.log)
            raise RuntimeError("only %d of %d pods Running" % (len(w.at), n))
        return [(t - t0) * 1000 for t in w.at.values()]
    finally:
        s.close()


def floor_round(work, layer_dir, n):
    """n bundles over the same layer, then n `runc run -d` at once."""
    root = tempfile.mkdtemp(prefix="floor-", dir=work)
    state = os.path.join(root, "state")
    spec_dir = os.path.join(root, "spec")
    os.makedirs(spec_dir)
    run("runc", "spec", "--bundle", spec_dir)
    with open(os.path.join(spec_dir, "config.json")) as f:
        config = json.load(f)
    config["process"].update(terminal=False, args=["sleep", "3600"])
    mounts, ids = [], []
    try:
        for i in range(n):
            b = os.path.join(root, "b%d" % i)
            for d in ("rootfs", "upper", "work"):
                os.makedirs(os.path.join(b, d))
            with open(os.path.join(b, "config.json"), "w") as f:
                json.dump(config, f)
            run("mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,workdir=%s"
                % (layer_dir, os.path.join(b, "upper"), os.path.join(b, "work")),
                os.path.join(b, "rootfs"))
            mounts.append(os.path.join(b, "rootfs"))
            ids.append("floor-%d-%d" % (os.getpid(), i))
        null = subprocess.DEVNULL
        t0 = time.time()
        procs = [subprocess.Popen(["runc", "--root", state, "run", "-d", "--bundle",
                                   os.path.join(root, "b%d" % i), ids[i]],
                                  stdin=null, stdout=null, stderr=null) for i in range(n)]
        done, left, end = [], list(procs), time.monotonic() + TIMEOUT_S
        while left and time.monotonic() < end:      # each noted as it exits
            for p in [p for p in left if p.poll() is not None]:
                done.append((time.time() - t0) * 1000)
                left.remove(p)
                if p.returncode != 0:
                    raise RuntimeError("runc run -d failed (%d)" % p.returncode)
            time.sleep(0.001)
        if left:
            raise RuntimeError("%d runc run -d still running" % len(left))
        return done
    finally:
        for cid in ids:
            subprocess.run(["runc", "--root", state, "delete", "-f", cid], capture_output=True)
        for m in mounts:
            subprocess.run(["umount", m], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def main():
    if len(sys.argv) != 2:
        print("usage: start.py path/to/v6", file=sys.stderr)
        return 2
    v6 = os.path.abspath(sys.argv[1])
    if os.geteuid() != 0 or not shutil.which("runc"):
        print("bench/containers: needs root and runc", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="v6-bench-containers-")
    try:
        tar = build_image(work)
        layer = os.path.join(work, "layer")
        rows = []
        for n in COUNTS:
            v, f = [], []
            for r in range(ROUNDS):
                f += floor_round(work, layer, n)
                v += v6_round(v6, work, tar, n)
                log("n=%d round %d: v6 all %.0f ms, floor all %.0f ms" % (n, r + 1, max(v),
                                                                           max(f)))
            rows.append((n, v, f))
        print("\ncontainer start, apply -> Running (ms; floor: runc run -d on prepared "
              "bundles, launched at once)")
        print("%5s %9s %9s %9s   %9s %9s %9s   %7s %7s %7s" % (
            "pods", "v6 p50", "v6 p99", "v6 all", "floor p50", "floor p99", "floor all",
            "x p50", "x p99", "x all"))
        for n, v, f in rows:
            print("%5d %9.0f %9.0f %9.0f   %9.0f %9.0f %9.0f   %6.2fx %6.2fx %6.2fx" % (
                n, pct(v, .5), pct(v, .99), max(v), pct(f, .5), pct(f, .99), max(f),
                pct(v, .5) / pct(f, .5), pct(v, .99) / pct(f, .99), max(v) / max(f)))
        print("target: <= %.1fx the floor; %s" % (TARGET, ANCHOR))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
