"""Cluster DNS end to end: a `v6 server --cluster-dns` on an address of its
own Service range answers `dig` as CoreDNS would on a cluster (Service A,
headless Services, StatefulSet pod names, SRV for named ports, PTR,
NXDOMAIN with the SOA, UDP and TCP), forwards other names to an upstream
(a stub DNS server written here, on loopback, given with --dns-upstream),
answers SERVFAIL when that upstream is silent, follows scaling within
100 ms of the Endpoints, and a process pod resolves a Service by its short
name through the resolv.conf V6 mounts in it. Every process is stopped by
its PID at the end."""
import json
import os
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

import conftest
from conftest import Server

DIG = "dig"


def wait_for(what, fn, timeout=30, interval=0.05):
    return conftest.wait_for(fn, timeout, what, interval)


def apply(s, *objs):
    text = "\n---\n".join(json.dumps(o) for o in objs)
    return s.v6("apply", "-f", "-", input=text, check=True)


def sh_pod_template(labels, script="trap 'exit 0' TERM; while :; do sleep 0.2; done"):
    return {"metadata": {"labels": labels},
            "spec": {"terminationGracePeriodSeconds": 2,
                     "containers": [{"name": "main", "image": "sh",
                                     "command": ["sh", "-c", script],
                                     "ports": [{"name": "pg", "containerPort": 5432}]}]}}


def dig(dns_ip, *args):
    """dig's answer, one record per line ("NAME TTL IN TYPE RDATA"), and
    its status (NOERROR, NXDOMAIN, ...), asked of the cluster DNS."""
    p = subprocess.run([DIG, "@" + dns_ip, "+tries=1", "+time=5", "+nocmd", "+noall",
                        "+answer", "+authority", "+comments"] + list(args),
                       capture_output=True, text=True, timeout=30)
    status = None
    records = []
    for line in p.stdout.splitlines():
        if "status:" in line:
            status = line.split("status:")[1].split(",")[0].strip()
        elif line and not line.startswith(";"):
            records.append(" ".join(line.split()))
    return status, records


def rdatas(records, rtype):
    return sorted(r.split(None, 4)[4] for r in records if r.split()[3] == rtype)


class StubUpstream:
    """A DNS server on 127.0.0.1 that answers every A question with
    192.0.2.44 (silent=True: never answers, an upstream that is down)."""

    def __init__(self, silent=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.silent = silent
        self.asked = []
        self.done = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.done:
            try:
                q, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            qid, = struct.unpack("!H", q[:2])
            end = 12
            while q[end]:
                end += q[end] + 1
            question = q[12:end + 5]
            self.asked.append(question)
            if self.silent:
                continue
            answer = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question
            answer += struct.pack("!HHHIH", 0xc00c, 1, 1, 30, 4) + socket.inet_aton("192.0.2.44")
            self.sock.sendto(answer, peer)

    def close(self):
        self.done = True
        self.thread.join(5)
        self.sock.close()


def query_a(dns_ip, name, timeout=1.0):
    """One A query over UDP: the sorted addresses of the answer."""
    qid = os.getpid() & 0xffff
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (dns_ip, 53))
        r, _ = s.recvfrom(4096)
    an, = struct.unpack("!H", r[6:8])
    off = len(q)
    ips = []
    for _ in range(an):
        if r[off] & 0xc0 == 0xc0:
            off += 2
        else:
            while r[off]:
                off += r[off] + 1
            off += 1
        rtype, _, _, rdlen = struct.unpack("!HHIH", r[off:off + 10])
        off += 10
        if rtype == 1:
            ips.append(socket.inet_ntoa(r[off:off + rdlen]))
        off += rdlen
    return sorted(ips)


@pytest.fixture
def dns_server():
    """A server with cluster DNS on .10 of its Service range, forwarding to
    a stub upstream; yields (server, dns ip, upstream)."""
    up = StubUpstream()
    d = tempfile.TemporaryDirectory(prefix="v6-e2e-")
    s = Server(d.name)
    dns_ip = s.service_ip(10)
    s.extra_args += ["--cluster-dns", dns_ip, "--dns-upstream", up.addr]
    try:
        s.start()
        yield s, dns_ip, up
    finally:
        s.close()
        up.close()
        d.cleanup()


def pod_ips(s, selector):
    status, lst = s.json("GET", "/api/v1/namespaces/default/pods?labelSelector=" + selector)
    return sorted(p["status"]["podIP"] for p in lst["items"]
                  if p.get("status", {}).get("podIP"))


def ready_ips(s, name):
    status, ep = s.json("GET", "/api/v1/namespaces/default/endpoints/" + name)
    if status != 200:
        return []
    return sorted(a["ip"] for sub in ep.get("subsets") or [] for a in sub.get("addresses") or [])


def test_cluster_names_answer_as_coredns_does(dns_server):
    s, dns, _ = dns_server
    apply(s,
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}},
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
           "spec": {"clusterIP": "None", "selector": {"app": "db"},
                    "ports": [{"name": "pg", "port": 5432}]}},
          {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"serviceName": "db", "replicas": 2, "podManagementPolicy": "Parallel",
                    "selector": {"matchLabels": {"app": "db"}},
                    "template": sh_pod_template({"app": "db"})}})
    _, svc = s.json("GET", "/api/v1/namespaces/default/services/web")
    cip = svc["spec"]["clusterIP"]
    ips = wait_for("two ready db pods", lambda: len(ready_ips(s, "db")) == 2 and
                   ready_ips(s, "db"))

    status, rr = dig(dns, "web.default.svc.cluster.local", "A")
    assert status == "NOERROR" and rdatas(rr, "A") == [cip], rr
    assert rr[0].split()[1] == "5"  # CoreDNS's TTL
    status, rr = dig(dns, "+tcp", "web.default.svc.cluster.local", "A")
    assert status == "NOERROR" and rdatas(rr, "A") == [cip], rr

    status, rr = dig(dns, "db.default.svc.cluster.local", "A")
    assert status == "NOERROR" and rdatas(rr, "A") == ips, rr
    by_name = {}
    for name in ("db-0", "db-1"):
        status, rr = dig(dns, name + ".db.default.svc.cluster.local", "A")
        assert status == "NOERROR" and len(rdatas(rr, "A")) == 1, rr
        by_name[name] = rdatas(rr, "A")[0]
    assert sorted(by_name.values()) == ips
    _, pod0 = s.json("GET", "/api/v1/namespaces/default/pods/db-0")
    assert by_name["db-0"] == pod0["status"]["podIP"]

    status, rr = dig(dns, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert rdatas(rr, "SRV") == ["0 100 80 web.default.svc.cluster.local."], rr
    status, rr = dig(dns, "_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert rdatas(rr, "SRV") == ["0 100 5432 db-0.db.default.svc.cluster.local.",
                                 "0 100 5432 db-1.db.default.svc.cluster.local."], rr

    status, rr = dig(dns, "-x", cip)
    assert rdatas(rr, "PTR") == ["web.default.svc.cluster.local."], rr
    status, rr = dig(dns, "-x", by_name["db-1"])
    assert rdatas(rr, "PTR") == ["db-1.db.default.svc.cluster.local."], rr

    status, rr = dig(dns, "nope.default.svc.cluster.local", "A")
    assert status == "NXDOMAIN", rr
    assert rdatas(rr, "SOA") and rdatas(rr, "SOA")[0].startswith("ns.dns.cluster.local."), rr

    # kube-dns is there, as on a cluster
    out = s.v6("get", "svc", "-n", "kube-system", check=True).stdout
    row = [l.split() for l in out.splitlines() if l.startswith("kube-dns")]
    assert row and row[0][1] == "ClusterIP" and row[0][2] == dns and "53/UDP" in row[0][4], out


def test_other_names_go_upstream(dns_server):
    s, dns, up = dns_server
    status, rr = dig(dns, "www.example.test", "A")
    assert status == "NOERROR" and rdatas(rr, "A") == ["192.0.2.44"], rr
    assert any(b"example" in q for q in up.asked)
    status, rr = dig(dns, "+tcp", "other.example.test", "A")
    assert status == "NOERROR" and rdatas(rr, "A") == ["192.0.2.44"], rr


def test_a_silent_upstream_is_servfail_not_a_hang():
    up = StubUpstream(silent=True)
    d = tempfile.TemporaryDirectory(prefix="v6-e2e-")
    s = Server(d.name)
    dns = s.service_ip(10)
    s.extra_args += ["--cluster-dns", dns, "--dns-upstream", up.addr]
    try:
        s.start()
        t0 = time.monotonic()
        status, rr = dig(dns, "www.example.test", "A")
        took = time.monotonic() - t0
        assert status == "SERVFAIL", rr
        assert took < 4.5, "SERVFAIL took %.1fs" % took
        assert up.asked, "the query never reached the upstream"
        # cluster names do not wait on the upstream
        status, rr = dig(dns, "kube-dns.kube-system.svc.cluster.local", "A")
        assert status == "NOERROR" and rdatas(rr, "A") == [dns], rr
    finally:
        s.close()
        up.close()
        d.cleanup()


def test_headless_answer_follows_scaling_within_100ms(dns_server):
    s, dns, _ = dns_server
    apply(s,
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "work"},
           "spec": {"clusterIP": "None", "selector": {"app": "work"},
                    "ports": [{"name": "pg", "port": 5432}]}},
          {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "work"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "work"}},
                    "template": sh_pod_template({"app": "work"})}})
    wait_for("one ready pod", lambda: len(ready_ips(s, "work")) == 1)
    assert len(query_a(dns, "work.default.svc.cluster.local")) == 1
    for want in (3, 1):
        _, ep0 = s.json("GET", "/api/v1/namespaces/default/endpoints/work")
        seen = {}
        stop = threading.Event()

        def poll_dns():
            deadline = time.monotonic() + 60 * conftest.TIMEOUT_SCALE
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    ips = query_a(dns, "work.default.svc.cluster.local")
                except socket.timeout:
                    continue
                if len(ips) == want:
                    seen["dns"] = (time.monotonic(), ips)
                    return
                time.sleep(0.002)

        t = threading.Thread(target=poll_dns)
        t.start()
        try:
            with conftest.Watch(s, "/api/v1/namespaces/default/endpoints?fieldSelector="
                                "metadata.name=work",
                                rv=ep0["metadata"]["resourceVersion"]) as w:
                s.v6("scale", "deployment/work", "--replicas=%d" % want, check=True)
                ev = w.wait(lambda e: len([a for sub in e["object"].get("subsets") or []
                                           for a in sub.get("addresses") or []]) == want,
                            60, "the Endpoints with %d ready pods" % want)
                seen["ep"] = time.monotonic()
        finally:
            t.join(60 * conftest.TIMEOUT_SCALE)
            stop.set()
        assert "dns" in seen, "DNS never answered %d addresses" % want
        lag_ms = (seen["dns"][0] - seen["ep"]) * 1000
        print("scale to %d: DNS answer changed %.1f ms after the Endpoints watch event "
              "reached the test (negative: before)" % (want, lag_ms))
        assert lag_ms < 100, lag_ms
        assert seen["dns"][1] == ready_ips(s, "work")
        del ev


def test_process_pod_resolves_a_service_by_name(dns_server):
    s, dns, _ = dns_server
    script = ("cat /etc/resolv.conf; getent hosts web || echo NOTFOUND; "
              "trap 'exit 0' TERM; while :; do sleep 0.2; done")
    apply(s,
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
          {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
           "spec": {"terminationGracePeriodSeconds": 2,
                    "containers": [{"name": "main", "image": "sh",
                                    "command": ["sh", "-c", script]}]}})
    _, svc = s.json("GET", "/api/v1/namespaces/default/services/web")
    cip = svc["spec"]["clusterIP"]
    out = wait_for("the pod's output", lambda: (lambda o: o if ("NOTFOUND" in o or
                   "web.default" in o) else None)(s.v6("logs", "client").stdout))
    assert "nameserver %s" % dns in out, out
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in out, out
    assert "options ndots:5" in out, out
    assert "%s" % cip in out and "web.default.svc.cluster.local" in out, out
    # the host's own resolv.conf is untouched
    with open("/etc/resolv.conf") as f:
        assert "nameserver %s" % dns not in f.read()
