"""Live traffic figures: requests sent through a Service's address show up,
within a sampling period or two, in the traffic.v6.dev API (per Service and
per revision) and in `v6 describe service`; errors the workload answers show
up as the error rate."""
import json

from conftest import free_port, wait_for
from load import Load, answers


def manifest(args=()):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "web", "image": "v6/testapp",
                        "command": ["v6", "testapp", "--quiet"] + list(args),
                        "env": [{"name": "POD_IP", "valueFrom": {
                            "fieldRef": {"fieldPath": "status.podIP"}}}],
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                                           "periodSeconds": 1},
                    }]}}}}


SERVICE = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": "default"},
           "spec": {"selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}

TRAFFIC = "/apis/traffic.v6.dev/v1alpha1/namespaces/default/services/web"


def deploy(server, args=()):
    server.v6("apply", "-f", "-", input=json.dumps(manifest(args)), check=True)
    p = server.v6("rollout", "status", "deployment/web", "--timeout", "60s", timeout=90)
    assert p.returncode == 0, p.stdout + p.stderr
    server.v6("apply", "-f", "-", input=json.dumps(SERVICE), check=True)
    _, svc = server.json("GET", "/api/v1/namespaces/default/services/web", expect=200)
    ip = svc["spec"]["clusterIP"]
    wait_for(lambda: answers(ip, 80), 10, "Service %s to answer" % ip)
    return ip


def pod_revision(server):
    _, pods = server.json("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
                          expect=200)
    revs = {p["metadata"]["labels"]["pod-template-hash"] for p in pods["items"]}
    assert len(revs) == 1, revs
    return revs.pop()


def wait_traffic(server, ok, timeout=12):
    """Polls the traffic API until ok(body) holds; returns the last body."""
    def matched():
        status, body = server.json("GET", TRAFFIC)
        return status == 200 and ok(body) and body
    return wait_for(matched, timeout, "the traffic API to match", interval=0.25)


def test_requests_through_a_service_show_in_the_traffic_api_and_describe(server):
    status, body = server.json("GET", "/apis/traffic.v6.dev/v1alpha1")
    assert status == 200 and body["kind"] == "APIResourceList", body
    assert body["resources"][0]["kind"] == "ServiceTraffic"
    status, body = server.json("GET", TRAFFIC)
    assert status == 404 and body["kind"] == "Status", body

    ip = deploy(server)
    rev = pod_revision(server)
    with Load(ip, 80, max_seconds=60) as load:
        load.wait_requests(50)
        body = wait_traffic(server, lambda b: b["requestsPerSecond"] > 0 and any(
            r["revision"] == rev and r["requestsPerSecond"] > 0 for r in b["revisions"]))
        p = server.v6("describe", "svc", "web", check=True)
    load.assert_clean(min_ok=50)
    assert body["kind"] == "ServiceTraffic"
    assert body["apiVersion"] == "traffic.v6.dev/v1alpha1"
    assert body["metadata"] == {"name": "web", "namespace": "default"}
    assert body["window"] == "5s"
    assert body["errorRate"] == 0
    assert 0 < body["averageLatencyMs"] < 1000
    assert body["p99LatencyMs"] >= body["averageLatencyMs"] * 0.5
    line = next(l for l in p.stdout.splitlines() if l.startswith("Traffic:"))
    assert "req/s, 0.0% errors, avg " in line and "(last 5s)" in line, p.stdout
    assert rev + ": " in p.stdout, p.stdout
    print(p.stdout)


def test_error_rate_of_a_failing_workload(server):
    ip = deploy(server, ["--error-rate", "0.5"])
    with Load(ip, 80, max_seconds=60, expect=lambda st: st // 100 in (2, 5)) as load:
        load.wait_requests(50)
        body = wait_traffic(server, lambda b: b["requestsPerSecond"] > 0)
    load.assert_clean(min_ok=50)
    assert load.codes.get("5xx", 0) > 10, load.codes
    assert 0.3 <= body["errorRate"] <= 0.7, body
    assert 0.3 <= body["revisions"][0]["errorRate"] <= 0.7, body


def gateway_and_route(port):
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
          "metadata": {"name": "edge", "namespace": "default"},
          "spec": {"gatewayClassName": "v6", "addresses": [{"value": "127.3.0.1"}],
                   "listeners": [{"name": "http", "port": port, "protocol": "HTTP",
                                  "hostname": "*.example.com"}]}}
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "shop", "namespace": "default"},
             "spec": {"hostnames": ["shop.example.com"],
                      "parentRefs": [{"name": "edge", "sectionName": "http"},
                                     {"name": "missing"}],
                      "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                 "timeouts": {"request": "10s"},
                                 "backendRefs": [{"name": "web", "port": 80, "weight": 100},
                                                 {"name": "gone", "port": 80, "weight": 0}]}]}}
    return gw, route


def test_describe_httproute_shows_parents_backends_and_live_traffic(server):
    deploy(server)
    port = free_port()
    gw, route = gateway_and_route(port)
    text = "\n---\n".join(json.dumps(o) for o in (gw, route))
    server.v6("apply", "-f", "-", input=text, check=True)
    host = {"Host": "shop.example.com"}
    # a 2xx, not any answer: a 503 from before web's endpoints reached the
    # route would count in the 5 s window the describe shows as errors
    wait_for(lambda: answers("127.3.0.1", port, host, ok_only=True), 20,
             "the Gateway listener to answer from web")
    with Load("127.3.0.1", port, max_seconds=60, headers=host) as load:
        load.wait_requests(20)
        wait_traffic(server, lambda b: b["requestsPerSecond"] > 0, timeout=20)
        p = server.v6("describe", "httproute", "shop", check=True)
    load.assert_clean(min_ok=20)
    out = p.stdout
    print(out)
    assert "Hostnames:" in out and "shop.example.com" in out
    attached = next(l for l in out.splitlines() if "gateway/edge:http:" in l)
    assert "Accepted=True (Accepted)" in attached, out
    missing = next(l for l in out.splitlines() if "gateway/missing:" in l)
    assert "Accepted=False (NoMatchingParent)" in missing, out
    assert "ResolvedRefs=False (BackendNotFound)" in out, out
    assert "PathPrefix /" in out and "request 10s" in out, out
    web = out[out.index("default/web:80:"):]
    assert "weight 100, endpoints: 1 ready, 0 not ready" in web.splitlines()[0], out
    assert "req/s, 0.0% errors" in web.splitlines()[1], out
    assert "default/gone:80:" in out and "Service not found" in out, out

    p = server.v6("get", "httproutes", check=True)
    assert p.stdout.split("\n")[0].split() == ["NAME", "HOSTNAMES", "PARENTS", "AGE"], p.stdout
    assert p.stdout.split("\n")[1].split()[:3] == [
        "shop", "shop.example.com", "gateway/edge:http,gateway/missing"], p.stdout
    p = server.v6("get", "gateways", check=True)
    assert p.stdout.split("\n")[0].split() == ["NAME", "CLASS", "ADDRESS", "PROGRAMMED",
                                               "AGE"], p.stdout
    assert p.stdout.split("\n")[1].split()[:4] == ["edge", "v6", "127.3.0.1", "True"], p.stdout
    p = server.v6("describe", "gateway", "edge", check=True)
    assert "Attached Routes:  1" in p.stdout, p.stdout
    assert "Programmed=True (Programmed)" in p.stdout, p.stdout
