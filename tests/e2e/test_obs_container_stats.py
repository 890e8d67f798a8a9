"""cAdvisor's network and filesystem figures of a real runc pod on the pod
network: a busybox httpd in its own network namespace receives requests
from the host and its container_network_{receive,transmit}_bytes_total
(interface eth0, container "POD") rise by at least what was sent; a second
container writes a file with fsync and its container_fs_usage_bytes (the
overlay's writable layer) and container_fs_writes_bytes_total (blkio) rise;
the page still passes promtool with those families on it."""
import json
import os
import re
import subprocess
import urllib.request

import pytest

from conftest import wait_for
from prom import PROMTOOL
from test_podnet import PodNet, http_get
from test_runc import busybox_image, IMAGE


@pytest.fixture(scope="module")
def image_tar(tmp_path_factory):
    return busybox_image(str(tmp_path_factory.mktemp("stats-image")))


def series(text, name, **labels):
    """Sum of the samples of name whose labels include labels; None when
    there is none."""
    total, found = 0.0, False
    for line in text.splitlines():
        m = re.match(r"^%s\{(.*)\} (\S+)$" % re.escape(name), line)
        if not m:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
            found = True
    return total if found else None


def test_runc_pod_network_and_fs_counters_rise(image_tar):
    pn = PodNet()
    try:
        pn.server.start()
        s = pn.server
        s.v6("image", "import", image_tar, check=True)
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web", "namespace": "default"},
               "spec": {"runtimeClassName": "runc", "containers": [
                   {"name": "httpd", "image": IMAGE, "command": ["sh", "-c",
                    "mkdir -p /www && head -c 65536 /dev/zero > /www/big && "
                    "exec httpd -f -p 80 -h /www"],
                    "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 1}},
                   {"name": "writer", "image": IMAGE, "command": ["sh", "-c",
                    "while [ ! -e /go ]; do sleep 0.2; done; "
                    "dd if=/dev/zero of=/data bs=65536 count=64 conv=fsync; "
                    "exec sleep 3600"]}]}}
        s.json("POST", "/api/v1/namespaces/default/pods", pod, expect=201)

        def ready():
            st = s.json("GET", "/api/v1/namespaces/default/pods/web")[1].get("status", {})
            ok = any(c["type"] == "Ready" and c["status"] == "True"
                     for c in st.get("conditions", []))
            return ok and st.get("podIP")
        ip = wait_for(ready, 90, "pod web Ready")

        def page():
            with urllib.request.urlopen(s.url + "/metrics/cadvisor", timeout=20) as r:
                return r.read().decode()
        net = dict(namespace="default", pod="web", container="POD", interface="eth0")
        before = page()
        rx0 = series(before, "container_network_receive_bytes_total", **net)
        tx0 = series(before, "container_network_transmit_bytes_total", **net)
        assert rx0 is not None and tx0 is not None, \
            [l for l in before.splitlines() if "network" in l][:20]
        # the pod's network is its own: no series of the host's interfaces
        assert series(before, "container_network_receive_bytes_total",
                      interface="lo") is None
        for _ in range(20):
            assert len(http_get("http://%s/big" % ip)) == 65536
        after = page()
        rx1 = series(after, "container_network_receive_bytes_total", **net)
        tx1 = series(after, "container_network_transmit_bytes_total", **net)
        # 20 requests in, 20 x 64 KiB out
        assert rx1 - rx0 >= 20 * 40, (rx0, rx1)
        assert tx1 - tx0 >= 20 * 65536, (tx0, tx1)
        assert series(after, "container_network_receive_packets_total", **net) > 0
        assert series(after, "container_network_receive_errors_total", **net) is not None

        w = dict(namespace="default", pod="web", container="writer", image=IMAGE)
        usage0 = series(after, "container_fs_usage_bytes", **w)
        writes0 = series(after, "container_fs_writes_bytes_total", **w) or 0
        assert usage0 is not None, [l for l in after.splitlines() if "container_fs" in l]
        s.v6("exec", "web", "-c", "writer", "--", "touch", "/go", check=True)

        last = {}

        def grown():
            t = page()
            u = series(t, "container_fs_usage_bytes", **w)
            wr = series(t, "container_fs_writes_bytes_total", **w) or 0
            last.update(usage=(usage0, u), writes=(writes0, wr),
                        lines=[l for l in t.splitlines() if l.startswith("container_fs")])
            return (u - usage0 >= 4 * 2 ** 20 and wr - writes0 >= 4 * 2 ** 20) and t or None
        try:
            text = wait_for(grown, 60, "the writer's fs usage and written bytes to grow")
        except AssertionError:
            raise AssertionError(last)
        assert 'device="/dev/' in text
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        pn.close()
