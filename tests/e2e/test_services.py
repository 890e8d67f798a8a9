"""Services end to end: cluster IPs from the server's --service-cidr and node
ports, their conflicts and immutability, Endpoints that follow real pods' readiness (the
node agent runs `sh` pods whose exec readiness probe looks for a file the
test creates), terminating pods leaving at once, named target ports,
headless Services, Service environment variables in a pod, and the Gateway
API kinds through `v6 apply`. Every container is stopped by its PID at the
end (conftest.kill_workloads)."""
import json
import os
import tempfile
import time

import pytest

import conftest
from conftest import Server, free_node_port, write

NS = "/api/v1/namespaces/default"


def wait_for(what, fn, timeout=20, interval=0.05):
    return conftest.wait_for(fn, timeout, what, interval)


def apply(s, *objs):
    text = "\n---\n".join(json.dumps(o) for o in objs)
    return s.v6("apply", "-f", "-", input=text, check=True)


def service(name, ports, selector=None, **spec):
    body = {"ports": ports}
    if selector is not None:
        body["selector"] = selector
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"}, "spec": body}


def get(s, path):
    status, obj = s.json("GET", path)
    return obj if status == 200 else None


def endpoints(s, name):
    return get(s, NS + "/endpoints/" + name)


def addresses(ep, key="addresses"):
    """{ip: sorted port numbers} over every subset of an Endpoints."""
    out = {}
    for sub in (ep or {}).get("subsets") or []:
        for a in sub.get(key) or []:
            out.setdefault(a["ip"], set()).update(p["port"] for p in sub.get("ports") or [])
    return out


def pod_ip(s, name):
    pod = get(s, NS + "/pods/" + name)
    return pod and pod.get("status", {}).get("podIP")


@pytest.fixture
def node():
    """A server with the node agent and the Endpoints controller."""
    made = []

    def make():
        d = tempfile.TemporaryDirectory(prefix="v6-svc-")
        s = Server(d.name)
        made.append((s, d))
        s.start()
        status = s.request("GET", "/apis/metrics.k8s.io/v1beta1")[0]
        assert status == 200, "the node agent's metrics.k8s.io is not served (%d)" % status
        return s
    yield make
    for s, d in made:
        s.close()
        d.cleanup()


def require_endpoints_controller(s):
    apply(s, service("probe-ec", [{"port": 80}], {"app": "nothing"}))
    wait_for("the Endpoints controller to write Endpoints for Service probe-ec",
             lambda: endpoints(s, "probe-ec"), 30)


def gated_pod(name, flagdir, app="web", port=8080, port_name="http", grace=30):
    """A pod that is Ready while flagdir/NAME exists and ignores SIGTERM."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
            "spec": {"terminationGracePeriodSeconds": grace, "containers": [{
                "name": "c", "image": "sh",
                "command": ["sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"],
                "ports": [{"name": port_name, "containerPort": port}],
                "readinessProbe": {"exec": {"command": ["test", "-f",
                                                        os.path.join(flagdir, name)]},
                                   "periodSeconds": 1}}]}}


def ready(flagdir, name, on=True):
    path = os.path.join(flagdir, name)
    if on:
        open(path, "w").close()
    elif os.path.exists(path):
        os.unlink(path)


# ---- addresses ---------------------------------------------------------------

def test_service_gets_a_cluster_ip_and_node_ports(server):
    admin_port = free_node_port()
    apply(server, service("web", [{"port": 80}]),
          service("edge", [{"name": "http", "port": 80}, {"name": "admin", "port": 81,
                                                           "nodePort": admin_port}],
                  type="NodePort"))
    web = get(server, NS + "/services/web")
    ip = web["spec"]["clusterIP"]
    assert server.in_range(ip, server.service_cidr) and web["spec"]["clusterIPs"] == [ip]
    edge = get(server, NS + "/services/edge")
    assert server.in_range(edge["spec"]["clusterIP"], server.service_cidr)
    assert edge["spec"]["clusterIP"] != ip
    ports = {p["name"]: p["nodePort"] for p in edge["spec"]["ports"]}
    assert ports["admin"] == admin_port
    assert 30000 <= ports["http"] <= 32767 and ports["http"] != admin_port


def test_service_range_is_the_servers_own(server):
    """--service-cidr: an address outside it is refused, naming the range."""
    status, body = server.json("POST", NS + "/services",
                               service("x", [{"port": 80}], clusterIP="127.2.0.10"))
    assert status == 422, body
    assert "The range of valid IPs is %s" % server.service_cidr in body["message"]


def test_requested_cluster_ip_conflict_is_422(server, workdir):
    wanted = server.service_ip(10)
    apply(server, service("a", [{"port": 80}], clusterIP=wanted))
    status, body = server.json("POST", NS + "/services",
                               service("b", [{"port": 80}], clusterIP=wanted))
    assert status == 422, body
    assert body["reason"] == "Invalid"
    assert "provided IP is already allocated" in body["message"]
    assert body["details"]["causes"][0]["field"] == "spec.clusterIP"
    status, body = server.json("POST", NS + "/services",
                               service("c", [{"port": 80}], clusterIP="10.96.0.10"))
    assert status == 422 and "not in the valid range" in body["message"], body
    path = write(workdir, "np.yaml",
                 "apiVersion: v1\nkind: Service\nmetadata:\n  name: d\nspec:\n"
                 "  type: NodePort\n  ports:\n  - port: 80\n    nodePort: %d\n"
                 % free_node_port())
    server.v6("apply", "-f", path, check=True)
    other = write(workdir, "np2.yaml", open(path).read().replace("name: d", "name: e"))
    p = server.v6("apply", "-f", other)
    assert p.returncode == 1
    assert "provided port is already allocated" in p.stderr


def test_cluster_ip_is_kept_on_apply_immutable_and_survives_restart(server):
    apply(server, service("web", [{"port": 80}], {"app": "web"}))
    ip = get(server, NS + "/services/web")["spec"]["clusterIP"]
    apply(server, service("web", [{"port": 80}], {"app": "web2"}))
    assert get(server, NS + "/services/web")["spec"]["clusterIP"] == ip
    svc = get(server, NS + "/services/web")
    svc["spec"]["clusterIP"] = server.service_ip(77)
    svc["spec"]["clusterIPs"] = [server.service_ip(77)]
    status, body = server.json("PUT", NS + "/services/web", svc)
    assert status == 422 and "field is immutable" in body["message"], body
    server.restart()
    status, body = server.json("POST", NS + "/services",
                               service("other", [{"port": 80}], clusterIP=ip))
    assert status == 422 and "already allocated" in body["message"], body
    server.v6("delete", "service", "web", check=True)
    status, body = server.json("POST", NS + "/services",
                               service("other", [{"port": 80}], clusterIP=ip))
    assert status == 201, body


def test_headless_service_has_no_address(server):
    apply(server, service("db", [{"port": 5432}], {"app": "db"}, clusterIP="None"))
    svc = get(server, NS + "/services/db")
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["clusterIPs"] == ["None"]


# ---- Endpoints -----------------------------------------------------------------

def test_endpoints_follow_pod_readiness_and_terminating_pods_leave_at_once(node):
    s = node()
    require_endpoints_controller(s)
    with tempfile.TemporaryDirectory(prefix="v6-flags-") as flags:
        apply(s, service("web", [{"name": "http", "port": 80, "targetPort": "http"}],
                         {"app": "web"}),
              gated_pod("web-a", flags), gated_pod("web-b", flags, port=8081),
              gated_pod("db", flags, app="db"))
        ip_a = wait_for("pod IP", lambda: pod_ip(s, "web-a"))
        ip_b = wait_for("pod IP", lambda: pod_ip(s, "web-b"))
        # running, not Ready: listed as not ready, with the named port resolved
        nr = wait_for("not ready", lambda: len(addresses(endpoints(s, "web"),
                                                     "notReadyAddresses")) == 2 and
                      addresses(endpoints(s, "web"), "notReadyAddresses"))
        assert nr == {ip_a: {8080}, ip_b: {8081}}
        assert addresses(endpoints(s, "web")) == {}
        ready(flags, "web-a")
        wait_for("web-a ready", lambda: addresses(endpoints(s, "web")) == {ip_a: {8080}})
        ready(flags, "web-b")
        wait_for("both ready", lambda: len(addresses(endpoints(s, "web"))) == 2)
        ep = endpoints(s, "web")
        ref = [a for sub in ep["subsets"] for a in sub["addresses"]
               if a["ip"] == ip_a][0]["targetRef"]
        assert ref["kind"] == "Pod" and ref["name"] == "web-a"
        assert ref["uid"] == get(s, NS + "/pods/web-a")["metadata"]["uid"]
        ready(flags, "web-b", False)
        wait_for("web-b not ready", lambda: addresses(endpoints(s, "web"),
                                                      "notReadyAddresses") == {ip_b: {8081}})
        # delete: the pod ignores SIGTERM and stays terminating for 30 s,
        # but it leaves the Endpoints at once
        t = time.time()
        s.v6("delete", "pod", "web-a", "--wait=false", check=False)
        wait_for("web-a gone from endpoints",
                 lambda: ip_a not in addresses(endpoints(s, "web")), timeout=5)
        assert time.time() - t < 2
        pod = get(s, NS + "/pods/web-a")
        assert pod is not None and pod["metadata"].get("deletionTimestamp")
        # idle: nothing changes, nothing is written
        with conftest.Watch(s, NS + "/endpoints?fieldSelector=metadata.name%3Dweb") as w:
            w.assert_quiet(2.5, "idle Endpoints are not rewritten")


def test_endpoints_go_with_their_service_and_selectorless_ones_are_left_alone(node):
    s = node()
    require_endpoints_controller(s)
    apply(s, service("manual", [{"port": 80}]),
          {"apiVersion": "v1", "kind": "Endpoints",
           "metadata": {"name": "manual", "namespace": "default"},
           "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 9}]}]})
    apply(s, service("auto", [{"port": 80}], {"app": "none"}))
    with conftest.Watch(s, NS + "/endpoints?fieldSelector=metadata.name%3Dmanual") as w:
        wait_for("auto endpoints", lambda: endpoints(s, "auto"))
        w.assert_quiet(0.5, "the controller leaves selectorless Endpoints alone")
    assert addresses(endpoints(s, "manual")) == {"127.0.0.1": {9}}
    s.v6("delete", "service", "auto", check=True)
    wait_for("endpoints deleted", lambda: endpoints(s, "auto") is None, timeout=5)


def test_headless_service_endpoints(node):
    s = node()
    require_endpoints_controller(s)
    with tempfile.TemporaryDirectory(prefix="v6-flags-") as flags:
        ready(flags, "db-0")
        apply(s, service("db", [{"port": 5432, "targetPort": 8080}], {"app": "db"},
                         clusterIP="None"),
              gated_pod("db-0", flags, app="db"))
        ip = wait_for("pod IP", lambda: pod_ip(s, "db-0"))
        wait_for("ready address", lambda: addresses(endpoints(s, "db")) == {ip: {8080}})
        ep = endpoints(s, "db")
        assert "service.kubernetes.io/headless" in ep["metadata"]["labels"]


# ---- environment ------------------------------------------------------------------

def test_pod_sees_service_environment_variables(node):
    s = node()
    apply(s, service("redis-primary", [{"name": "redis", "port": 6379},
                                       {"name": "metrics", "port": 9121}]))
    ip = get(s, NS + "/services/redis-primary")["spec"]["clusterIP"]
    apply(s, {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "env", "namespace": "default"},
              "spec": {"restartPolicy": "Never", "containers": [{
                  "name": "c", "image": "sh", "command": ["sh", "-c", "env | sort"],
                  "env": [{"name": "REDIS_PRIMARY_SERVICE_PORT_METRICS",
                           "value": "mine"}]}]}},
          {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "nolinks", "namespace": "default"},
           "spec": {"restartPolicy": "Never", "enableServiceLinks": False,
                    "containers": [{"name": "c", "image": "sh",
                                    "command": ["sh", "-c", "env | sort"]}]}})
    wait_for("Succeeded", lambda: all(
        (get(s, NS + "/pods/" + n) or {}).get("status", {}).get("phase") == "Succeeded"
        for n in ("env", "nolinks")))
    out = s.v6("logs", "env", check=True).stdout.splitlines()
    for line in ("REDIS_PRIMARY_SERVICE_HOST=" + ip,
                 "REDIS_PRIMARY_SERVICE_PORT=6379",
                 "REDIS_PRIMARY_SERVICE_PORT_REDIS=6379",
                 "REDIS_PRIMARY_SERVICE_PORT_METRICS=mine",
                 "REDIS_PRIMARY_PORT=tcp://%s:6379" % ip,
                 "REDIS_PRIMARY_PORT_6379_TCP=tcp://%s:6379" % ip,
                 "REDIS_PRIMARY_PORT_6379_TCP_PROTO=tcp",
                 "REDIS_PRIMARY_PORT_6379_TCP_PORT=6379",
                 "REDIS_PRIMARY_PORT_6379_TCP_ADDR=" + ip,
                 "REDIS_PRIMARY_PORT_9121_TCP_ADDR=" + ip):
        assert line in out, (line, out)
    out = s.v6("logs", "nolinks", check=True).stdout
    assert "REDIS_PRIMARY" not in out


# ---- Gateway API ------------------------------------------------------------------

GATEWAY = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: v6
spec:
  controllerName: v6.io/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: edge
spec:
  gatewayClassName: v6
  listeners:
  - name: http
    protocol: HTTP
    port: 8080
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  parentRefs:
  - name: edge
  hostnames: [shop.example.com]
  rules:
  - matches:
    - path: {type: PathPrefix, value: /api}
      headers:
      - {name: X-Canary, value: "true"}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Env, value: prod}]
    backendRefs:
    - {name: web-v1, port: 80, weight: 90}
    - {name: web-v2, port: 80, weight: 10}
    timeouts: {request: 10s}
"""


def test_gateway_and_httproute_apply_with_defaults(server, workdir):
    p = server.v6("apply", "-f", write(workdir, "gw.yaml", GATEWAY), check=True)
    assert p.stdout.split() == [
        "gatewayclass.gateway.networking.k8s.io/v6", "created",
        "gateway.gateway.networking.k8s.io/edge", "created",
        "httproute.gateway.networking.k8s.io/web", "created"]
    base = "/apis/gateway.networking.k8s.io/v1"
    route = get(server, base + "/namespaces/default/httproutes/web")
    assert route["spec"]["parentRefs"][0]["kind"] == "Gateway"
    assert route["spec"]["rules"][0]["matches"][0]["headers"][0]["type"] == "Exact"
    gw = get(server, base + "/namespaces/default/gateways/edge")
    assert gw["spec"]["listeners"][0]["allowedRoutes"]["namespaces"]["from"] == "Same"
    assert get(server, base + "/gatewayclasses/v6") is not None
    p = server.v6("get", "httproutes", check=True)
    assert [l.split()[0] for l in p.stdout.splitlines()] == ["NAME", "web"], p.stdout


def test_httproute_errors_name_file_line_and_field(server, workdir):
    bad = GATEWAY.replace("value: /api}", "value: api}").replace(
        "weight: 10}", "weight: 10, prt: 80}")
    path = write(workdir, "bad.yaml", bad)
    p = server.v6("apply", "-f", path)
    assert p.returncode == 1
    lines = bad.splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "value: api}" in t)
    assert ("%s:%d:" % (path, line)) in p.stderr, p.stderr
    assert "spec.rules[0].matches[0].path.value" in p.stderr
    assert "spec.rules[0].backendRefs[1].prt" in p.stderr
    assert p.stdout == ""
    status, _ = server.json("GET", "/apis/gateway.networking.k8s.io/v1/gatewayclasses/v6")
    assert status == 404        # nothing applied
    tls = GATEWAY.replace("protocol: HTTP\n", "protocol: TLS\n")
    p = server.v6("apply", "-f", write(workdir, "tls.yaml", tls))
    assert p.returncode == 1
    assert "spec.listeners[0].protocol" in p.stderr and "not supported by v6" in p.stderr
