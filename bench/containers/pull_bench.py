"""bench/containers/pull_bench.py — pull + unpack of one multi-layer image
from Debian's docker-registry on loopback: `v6 image pull` (into a fresh
store: download, verify, unpack every layer, record) against `skopeo copy
docker://... oci:DIR` + `umoci unpack` of the same image (the tools a
runtime without V6 would use), BENCH_ROUNDS rounds each, alternating, cold
each time. Prints the medians and V6's time as a ratio of the peer's
(target <= 0.7). Standard library only; exits 0 whatever the figures."""
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import http.client
import io

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import log, median, env_int, free_port  # noqa: E402

ROUNDS = env_int("BENCH_ROUNDS", 5)
LAYERS = env_int("BENCH_LAYERS", 6)
LAYER_MB = env_int("BENCH_LAYER_MB", 16)
SMALL_FILES = env_int("BENCH_SMALL_FILES", 2000)


def run(*args, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit("bench: %s failed: %s%s" % (" ".join(map(str, args)), p.stdout, p.stderr))
    return p.stdout


def make_layers(work):
    """Layers like a real image's: one of many small files (a distro's /usr),
    the others mixed text (compressible) and random (not) files."""
    rnd = random.Random(6)
    paths = []
    for n in range(LAYERS):
        path = os.path.join(work, "layer%d.tar" % n)
        with tarfile.open(path, "w") as t:
            def add(name, data):
                ti = tarfile.TarInfo(name)
                ti.size, ti.mode, ti.mtime = len(data), 0o644, 1700000000
                t.addfile(ti, io.BytesIO(data))
            if n == 0:
                # In directory-walk order, as image builders write them.
                for i in range(SMALL_FILES):
                    words = " ".join("w%d" % rnd.randrange(5000) for _ in range(60))
                    add("usr/share/doc/pkg%d/file%d.txt" % (i * 97 // SMALL_FILES, i),
                        words.encode())
            else:
                size = LAYER_MB << 20
                add("opt/l%d/random.bin" % n, rnd.randbytes(size // 2))
                text = ("line %d of a log-like text file\n" % n).encode()
                add("opt/l%d/text.txt" % n, text * (size // 2 // len(text)))
        paths.append(path)
    return paths


class Registry:
    def __init__(self, work):
        self.dir = os.path.join(work, "registry")
        os.makedirs(self.dir)
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                    "    rootdirectory: %s/data\nhttp:\n  addr: %s\n" % (self.dir, self.host))
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=self.log,
                                     stderr=self.log)
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/v2/")
                if c.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        sys.exit("bench: docker-registry did not start")

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


class V6:
    def __init__(self, v6, work, n):
        self.v6 = v6
        self.dir = os.path.join(work, "v6-%d" % n)
        os.makedirs(self.dir)
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        self.proc = subprocess.Popen([v6, "server", "--insecure-http", "--data-dir", self.dir, "--listen",
                                      "127.0.0.1:0", "--controllers", "images"],
                                     stdout=self.log, stderr=self.log)
        addr = os.path.join(self.dir, "server.address")
        for _ in range(400):
            if os.path.exists(addr) and open(addr).read().endswith("\n"):
                self.url = "http://" + open(addr).read().strip()
                return
            time.sleep(0.025)
        sys.exit("bench: v6 server did not start")

    def pull(self, ref):
        t0 = time.monotonic()
        p = subprocess.run([self.v6, "--server", self.url, "image", "pull", ref],
                           capture_output=True, text=True)
        dt = time.monotonic() - t0
        if p.returncode != 0:
            sys.exit("bench: v6 image pull failed: " + p.stderr)
        return dt

    def close(self):
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def peer(ref, work, n):
    d = os.path.join(work, "peer-%d" % n)
    os.makedirs(d)
    t0 = time.monotonic()
    run("skopeo", "copy", "-q", "--src-tls-verify=false", "docker://" + ref,
        "oci:%s/oci:bench" % d)
    t1 = time.monotonic()
    run("umoci", "unpack", "--image", "%s/oci:bench" % d, "%s/bundle" % d)
    t2 = time.monotonic()
    shutil.rmtree(d, ignore_errors=True)
    return t2 - t0, t1 - t0, t2 - t1


def main():
    v6 = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="v6-bench-containers-")
    reg = None
    try:
        log("building a %d-layer image (%d small files, %d MiB per other layer)" % (
            LAYERS, SMALL_FILES, LAYER_MB))
        layout = os.path.join(work, "oci")
        run("umoci", "init", "--layout", layout)
        run("umoci", "new", "--image", layout + ":bench")
        for path in make_layers(work):
            run("umoci", "raw", "add-layer", "--image", layout + ":bench", path)
            os.unlink(path)
        reg = Registry(work)
        ref = "%s/bench/app:1" % reg.host
        run("skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:%s:bench" % layout,
            "docker://" + ref)
        raw = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false",
                             "docker://" + ref))
        size = sum(l["size"] for l in raw["layers"])
        log("image: %d layers, %.1f MB compressed; %d rounds, cold each" % (
            len(raw["layers"]), size / 1e6, ROUNDS))
        v6_t, peer_t, copy_t, unpack_t = [], [], [], []
        for n in range(ROUNDS):
            subprocess.run(["sync"])
            total, c, u = peer(ref, work, n)
            peer_t.append(total)
            copy_t.append(c)
            unpack_t.append(u)
            subprocess.run(["sync"])
            s = V6(v6, work, n)
            try:
                v6_t.append(s.pull(ref))
            finally:
                s.close()
            log("round %d: v6 %.3fs, skopeo+umoci %.3fs (copy %.3fs + unpack %.3fs)" % (
                n + 1, v6_t[-1], total, c, u))
        mv, mp = median(v6_t), median(peer_t)
        print("containers (b) pull+unpack, %d layers, %.1f MB compressed, median of %d:" % (
            len(raw["layers"]), size / 1e6, ROUNDS))
        print("  v6 image pull             %.3f s" % mv)
        print("  skopeo copy + umoci unpack %.3f s (copy %.3f s, unpack %.3f s)" % (
            mp, median(copy_t), median(unpack_t)))
        print("  ratio v6 / peer           %.2fx (target <= 0.70x): %s" % (
            mv / mp, "met" if mv / mp <= 0.7 else "missed"))
        print("  v6 / skopeo copy alone    %.2fx (the download and verification only, "
              "no unpack)" % (mv / median(copy_t)))
    finally:
        if reg:
            reg.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
