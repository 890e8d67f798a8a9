"""The pod network end to end: `v6 server --pod-network cni` gives each runc
pod a network namespace (DATA/node/netns/UID) on a bridge of the test's own
name and subnet through Debian's CNI plugins; two workloads listen on
0.0.0.0:80 in two of them, each reachable at its pod IP from the host and
from the other namespace; a Service's cluster IP (routable, held on lo)
and the cluster DNS answer from inside a namespace; nothing outside is
routed; deleting the pods tears their networks down, and a network whose
pod went away while the node agent was off is released at start. Until
the runc runtime lands, the test runs its workloads in the namespaces the
agent made with nsenter. Bridges, routes, namespaces and processes the
test makes are removed at the end."""
import json
import os
import random
import signal
import subprocess
import tempfile
import time

import pytest

import conftest
from conftest import Server, V6

def wait_for(what, fn, timeout=30, interval=0.05):
    return conftest.wait_for(fn, timeout, what, interval)


def apply(s, *objs):
    return s.v6("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objs),
                check=True)


def runc_pod(name):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"runtimeClassName": "runc",
                     # Never: no pull of this made-up image (tests stay on loopback)
                     "containers": [{"name": "main", "image": "registry.test/web:1",
                                     "imagePullPolicy": "Never"}]}}


def pod(s, name):
    status, obj = s.json("GET", "/api/v1/namespaces/default/pods/" + name)
    return obj if status == 200 else None


def run(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=check)


class PodNet:
    """A server on a pod network of its own: bridge v6t<random>, a /24 for
    pods and one for Services; close() stops everything and removes the
    bridge and the Services' local route."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="v6-e2e-")
        self.bridge = "v6t%05x" % random.getrandbits(20)
        b, c = random.randint(160, 250), random.randrange(0, 254, 2)
        self.pod_cidr = "10.%d.%d.0/24" % (b, c)
        self.svc_cidr = "10.%d.%d.0/24" % (b, c + 1)
        self.dns = "10.%d.%d.10" % (b, c + 1)  # the default: .10 of the Service range
        self.server = Server(self.dir.name)
        self.server.extra_args = [a for a in self.server.extra_args]
        i = self.server.extra_args.index("--service-cidr")
        self.server.extra_args[i + 1] = self.svc_cidr
        self.server.extra_args += ["--pod-network", "cni", "--bridge", self.bridge,
                                   "--pod-network-cidr", self.pod_cidr]
        self.procs = []

    def netns(self, uid):
        return os.path.join(self.dir.name, "node", "netns", uid)

    def spawn_in(self, netns, *args):
        """A process in a pod's network namespace (stopped by PID at the end)."""
        p = subprocess.Popen(["nsenter", "--net=" + netns] + list(args),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        try:
            self.server.close()
        finally:
            run("ip", "link", "del", self.bridge, check=False)
            run("ip", "route", "del", "local", self.svc_cidr, "dev", "lo", "table", "local",
                check=False)
            for ns in os.listdir(os.path.join(self.dir.name, "node", "netns")) if \
                    os.path.isdir(os.path.join(self.dir.name, "node", "netns")) else []:
                run("umount", "-l", self.netns(ns), check=False)
            self.dir.cleanup()


@pytest.fixture
def podnet():
    pn = PodNet()
    try:
        pn.server.start()
        yield pn
    finally:
        pn.close()


def http_get(url, netns=None):
    cmd = ["curl", "-s", "-m", "5", url]
    if netns:
        cmd = ["nsenter", "--net=" + netns] + cmd
    return run(*cmd, check=False).stdout


def veths_on(bridge):
    return [l for l in run("ip", "-o", "link", "show", "master", bridge, check=False)
            .stdout.splitlines() if l.strip()]


def test_runc_pods_get_namespaces_on_the_bridge_and_reach_services(podnet):
    s = podnet.server
    apply(s, runc_pod("a"), runc_pod("b"))
    ips = {}
    for name in ("a", "b"):
        ips[name] = wait_for("pod %s's IP" % name, lambda: (pod(s, name) or {})
                             .get("status", {}).get("podIP"))
        assert s.in_range(ips[name], podnet.pod_cidr), ips
        st = pod(s, name)["status"]
        assert st["podIPs"] == [{"ip": ips[name]}]
    assert ips["a"] != ips["b"]
    uid = {n: pod(s, n)["metadata"]["uid"] for n in ("a", "b")}
    for n in ("a", "b"):
        assert os.path.exists(podnet.netns(uid[n]))
        addrs = run("nsenter", "--net=" + podnet.netns(uid[n]), "ip", "-o", "-4", "addr").stdout
        assert ips[n] + "/24" in addrs and "127.0.0.1/8" in addrs, addrs  # eth0 and lo up
        routes = run("nsenter", "--net=" + podnet.netns(uid[n]), "ip", "route").stdout
        assert "default" not in routes, routes  # no route to the outside world
        assert podnet.svc_cidr in routes, routes
    assert len(veths_on(podnet.bridge)) == 2

    # both listen on 0.0.0.0:80, each in its own namespace
    for n in ("a", "b"):
        podnet.spawn_in(podnet.netns(uid[n]), V6, "testapp", "--listen-ip", "0.0.0.0",
                        "--port", "80", "--version-string", "pod-" + n)
    for n in ("a", "b"):
        wait_for("pod %s's server from the host" % n,
                 lambda: "pod-" + n in http_get("http://%s/" % ips[n]))
    other = {"a": "b", "b": "a"}
    for n in ("a", "b"):
        assert "pod-" + other[n] in http_get("http://%s/" % ips[other[n]],
                                             podnet.netns(uid[n]))

    # a Service (backed by a process pod) by cluster IP and by DNS, from inside a pod
    apply(s, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
              "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
          {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
           "spec": {"terminationGracePeriodSeconds": 2,
                    "containers": [{"name": "main", "image": "testapp",
                                    "command": [V6, "testapp", "--port", "8080",
                                                "--version-string", "svc-web"],
                                    "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {
                                        "fieldPath": "status.podIP"}}}]}]}})
    cip = s.json("GET", "/api/v1/namespaces/default/services/web")[1]["spec"]["clusterIP"]
    assert s.in_range(cip, podnet.svc_cidr), cip
    wait_for("the Service from inside pod a",
             lambda: "svc-web" in http_get("http://%s/" % cip, podnet.netns(uid["a"])))
    assert "svc-web" in http_get("http://%s/" % cip)  # and from the host
    dig = run("nsenter", "--net=" + podnet.netns(uid["b"]), "dig", "+short", "+time=5",
              "+tries=1", "@" + podnet.dns, "web.default.svc.cluster.local").stdout.split()
    assert dig == [cip], dig

    # deleting the pods tears their networks down
    s.v6("delete", "pod", "a", "b", check=True)
    for n in ("a", "b"):
        wait_for("pod %s's namespace gone" % n, lambda: not os.path.exists(podnet.netns(uid[n])))
    wait_for("no veth left on the bridge", lambda: not veths_on(podnet.bridge))
    ipam = os.path.join(podnet.dir.name, "node", "cni", "ipam", "v6")
    assert not [f for f in os.listdir(ipam) if f[0].isdigit() and "." in f and
                not f.startswith("last")], os.listdir(ipam)


def test_a_network_whose_pod_went_away_is_released_at_start(podnet):
    s = podnet.server
    apply(s, runc_pod("gone"))
    wait_for("the pod's IP", lambda: (pod(s, "gone") or {}).get("status", {}).get("podIP"))
    uid = pod(s, "gone")["metadata"]["uid"]
    assert os.path.exists(podnet.netns(uid))
    # the node agent goes away; the pod is removed without it
    s.kill()
    s.extra_args += ["--controllers", "*,-node"]
    s.start()
    s.json("DELETE", "/api/v1/namespaces/default/pods/gone")
    s.json("PATCH", "/api/v1/namespaces/default/pods/gone",
           {"metadata": {"finalizers": None}},
           headers={"Content-Type": "application/merge-patch+json"})
    wait_for("the pod gone from the store", lambda: pod(s, "gone") is None)
    assert os.path.exists(podnet.netns(uid))
    s.stop()
    s.extra_args = s.extra_args[:-2]
    s.start()
    wait_for("the leaked namespace released", lambda: not os.path.exists(podnet.netns(uid)))
    wait_for("no veth left on the bridge", lambda: not veths_on(podnet.bridge))
    assert "network torn down" in s.log()


def route_held(cidr):
    return cidr in run("ip", "route", "show", "table", "local", check=False).stdout


def test_reset_removes_the_bridge_and_the_service_route(podnet):
    """`v6 reset` stops a pod-network server's pods and undoes what the pod
    network made on the host: the bridge (no interface left) and the
    Services' local route, as k3s-killall.sh removes cni0."""
    s = podnet.server
    apply(s, runc_pod("r"))
    wait_for("the pod's IP", lambda: (pod(s, "r") or {}).get("status", {}).get("podIP"))
    assert len(veths_on(podnet.bridge)) == 1
    assert route_held(podnet.svc_cidr)
    p = run(V6, "reset", "--data-dir", podnet.dir.name, "--timeout", "5s", check=False)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "removed bridge %s" % podnet.bridge in p.stdout, p.stdout
    assert "removed route local %s dev lo" % podnet.svc_cidr in p.stdout, p.stdout
    assert run("ip", "link", "show", podnet.bridge, check=False).returncode != 0
    assert not route_held(podnet.svc_cidr)
    # a second reset has nothing left to remove and still succeeds
    p = run(V6, "reset", "--data-dir", podnet.dir.name, check=False)
    assert p.returncode == 0 and "removed bridge" not in p.stdout, (p.stdout, p.stderr)


def test_host_port_reaches_the_pod_through_the_proxy(server):
    """hostPort through the proxy's TCP splice (the NodePort path, no
    iptables): the same for a runc pod's address as for this process pod's."""
    s = server
    hp = conftest.free_port()
    apply(s, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hp"},
              "spec": {"terminationGracePeriodSeconds": 2,
                       "containers": [{"name": "main", "image": "testapp",
                                       "command": [V6, "testapp", "--port", "8080",
                                                   "--version-string", "via-hostport"],
                                       "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {
                                           "fieldPath": "status.podIP"}}}],
                                       "ports": [{"containerPort": 8080, "hostPort": hp}]}]}})
    wait_for("the pod through its hostPort",
             lambda: "via-hostport" in http_get("http://127.0.0.1:%d/" % hp))
    s.v6("delete", "pod", "hp", check=True)
    wait_for("the hostPort closed", lambda: "via-hostport" not in
             http_get("http://127.0.0.1:%d/" % hp))
