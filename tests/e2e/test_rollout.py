"""Argo Rollouts on V6: canary steps with traffic weights shifted by the V6
proxy, header routes for A/B tests, blue-green switches, abort and retry —
all under a load generator that counts every request."""
import http.client
import json
import time

from load import version_load

RO_PATH = "/apis/argoproj.io/v1alpha1/namespaces/default/rollouts"


def container(version, extra=()):
    return {"name": "web", "image": "v6/testapp",
            "command": ["v6", "testapp", "--quiet", "--version-string", version] + list(extra),
            "env": [{"name": "POD_IP", "valueFrom": {
                "fieldRef": {"fieldPath": "status.podIP"}}}],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                               "periodSeconds": 1}}


def rollout(version, strategy, replicas=2, extra=(), annotations=None):
    meta = {"name": "web", "namespace": "default"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": meta,
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": {"app": "web"}},
                     "strategy": strategy,
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"terminationGracePeriodSeconds": 10,
                                           "containers": [container(version, extra)]}}}}


def service(name):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": "web"},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


# Argo needs trafficRouting for scaleDownDelaySeconds, setCanaryScale and header
# routes (whose names must be managedRoutes); V6's proxy is the router either way.
ROUTING = {"plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "web"}},
           "managedRoutes": [{"name": "beta"}, {"name": "testers"}]}


def canary(steps, **kw):
    c = {"canaryService": "web-canary", "stableService": "web", "steps": steps,
         "scaleDownDelaySeconds": 2, "trafficRouting": ROUTING}
    c.update(kw)
    return {"canary": c}


def apply(server, *objs):
    doc = "\n---\n".join(json.dumps(o) for o in objs)
    server.v6("apply", "-f", "-", input=doc, check=True)


def get_rollout(server):
    return server.json("GET", RO_PATH + "/web", expect=200)[1]


def wait_for(server, pred, what, timeout=90):
    deadline = time.time() + timeout
    ro = None
    while time.time() < deadline:
        ro = get_rollout(server)
        if pred(ro):
            return ro
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s: status %s\n%s" % (
        what, json.dumps(ro.get("status"), indent=1), server.log()[-2000:]))


def phase(p):
    return lambda ro: ro.get("status", {}).get("phase") == p


def healthy_on(server, version):
    def ok(ro):
        st = ro.get("status", {})
        return (st.get("phase") == "Healthy" and st.get("stableRS") == st.get("currentPodHash")
                and ro["metadata"].get("generation") and
                st.get("observedGeneration") == str(ro["metadata"]["generation"]))
    return wait_for(server, ok, "Healthy at " + version)


def service_ip(server, name="web"):
    _, svc = server.json("GET", "/api/v1/namespaces/default/services/" + name, expect=200)
    return svc["spec"]["clusterIP"]


def get_version(ip, headers=None):
    c = http.client.HTTPConnection(ip, 80, timeout=2)
    try:
        c.request("GET", "/", headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return json.loads(body)["version"] if r.status == 200 else "HTTP %d" % r.status
    finally:
        c.close()


def wait_serving(ip, version, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if get_version(ip) == version:
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    raise AssertionError("%s never served %s" % (ip, version))


def more_requests(load, n=50, timeout=30):
    """Waits until the load has sent n more requests (answered or failed);
    load.py records whatever a client raises as a failure."""
    load.wait_requests(n, timeout)


def wait_only(ip, version, n=20, timeout=20):
    """Waits until n requests in a row get version (the proxy has applied a
    routing change that the controller does not wait for)."""
    deadline = time.time() + timeout
    run = 0
    while run < n:
        assert time.time() < deadline, "%s never served only %s" % (ip, version)
        try:
            run = run + 1 if get_version(ip) == version else 0
        except (OSError, ValueError, http.client.HTTPException):
            run = 0


def promote(server):
    server.json("PATCH", RO_PATH + "/web/status",
                {"status": {"pauseConditions": None}},
                headers={"Content-Type": "application/merge-patch+json"}, expect=200)


def test_canary_10_50_100_of_a_healthy_version_fails_no_request(server):
    steps = [{"setWeight": 10}, {"pause": {"duration": "2s"}}, {"setWeight": 50},
             {"pause": {"duration": 2}}, {"setWeight": 100}]
    apply(server, service("web"), service("web-canary"), rollout("v1", canary(steps)))
    healthy_on(server, "v1")
    ip = service_ip(server)
    wait_serving(ip, "v1")
    with version_load(ip, 80) as load:
        more_requests(load)
        apply(server, rollout("v2", canary(steps)))
        seen = set()

        def watch(ro):
            w = ro.get("status", {}).get("canary", {}).get("weights", {}).get("canary", {})
            seen.add(w.get("weight"))
            return phase("Healthy")(ro) and ro["status"]["stableRS"] == ro["status"][
                "currentPodHash"] and ro["status"].get("currentStepIndex") == len(steps)
        ro = wait_for(server, watch, "canary to complete")
        more_requests(load)
    load.assert_clean(min_ok=50)
    assert {10, 50}.issubset(seen), seen
    assert load.by_key.get("v1") and load.by_key.get("v2"), load.by_key
    assert get_version(ip) == "v2"
    _, svc = server.json("GET", "/api/v1/namespaces/default/services/web", expect=200)
    assert svc["spec"]["selector"]["rollouts-pod-template-hash"] == ro["status"]["stableRS"]
    _, evs = server.json("GET", "/api/v1/namespaces/default/events", expect=200)
    reasons = {e["reason"] for e in evs["items"]}
    assert {"RolloutStepCompleted", "RolloutCompleted"} <= reasons, reasons


def test_canary_weight_splits_traffic_in_proportion(server):
    steps = [{"setWeight": 25}, {"pause": {}}]
    apply(server, service("web"), service("web-canary"), rollout("v1", canary(steps)))
    healthy_on(server, "v1")
    apply(server, rollout("v2", canary(steps)))
    wait_for(server, phase("Paused"), "pause after setWeight 25")
    ip = service_ip(server)     # the step ended once the proxy applied the weight
    counts = {}
    for _ in range(400):
        v = get_version(ip)
        counts[v] = counts.get(v, 0) + 1
    assert set(counts) == {"v1", "v2"}, counts
    share = counts["v2"] / 400
    assert 0.18 <= share <= 0.32, counts
    promote(server)
    healthy_on(server, "v2")
    wait_serving(ip, "v2")


def test_header_route_sends_only_matching_requests_to_the_canary(server):
    steps = [{"setCanaryScale": {"replicas": 1}},
             {"setHeaderRoute": {"name": "beta", "match": [
        {"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}},
        {"pause": {}}]
    apply(server, service("web"), service("web-canary"), rollout("v1", canary(steps)))
    healthy_on(server, "v1")
    apply(server, rollout("v2", canary(steps)))
    ro = wait_for(server, phase("Paused"), "pause after setHeaderRoute")
    assert ro["status"]["canary"]["weights"]["canary"]["weight"] == 0
    ip = service_ip(server)     # the step ended once the proxy applied the route
    with_header = [get_version(ip, {"X-Canary": "yes"}) for _ in range(100)]
    without = [get_version(ip) for _ in range(100)]
    other = [get_version(ip, {"X-Canary": "no"}) for _ in range(50)]
    assert with_header.count("v2") == 100, with_header
    assert without.count("v1") == 100, without
    assert other.count("v1") == 50, other
    promote(server)
    healthy_on(server, "v2")
    wait_serving(ip, "v2")
    assert [get_version(ip, {"X-Canary": "yes"}) for _ in range(10)] == ["v2"] * 10


def test_abort_sends_all_traffic_back_and_retry_starts_again(server):
    steps = [{"setWeight": 50}, {"pause": {}}]
    apply(server, service("web"), service("web-canary"),
          rollout("v1", canary(steps, abortScaleDownDelaySeconds=0)))
    healthy_on(server, "v1")
    apply(server, rollout("v2", canary(steps, abortScaleDownDelaySeconds=0)))
    wait_for(server, phase("Paused"), "pause at 50%")
    ip = service_ip(server)
    server.json("PATCH", RO_PATH + "/web/status", {"status": {"abort": True}},
                headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    ro = wait_for(server, phase("Degraded"), "Degraded after abort")
    assert "RolloutAborted" in ro["status"]["message"]
    assert ro["status"]["canary"]["weights"]["canary"]["weight"] == 0
    wait_only(ip, "v1")
    assert {get_version(ip) for _ in range(50)} == {"v1"}
    # retry: the same version goes again from step 0
    server.json("PATCH", RO_PATH + "/web/status", {"status": {"abort": False}},
                headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    wait_for(server, lambda r: phase("Paused")(r) and
             r["status"]["canary"]["weights"]["canary"]["weight"] == 50, "retry to 50%")
    # a new spec while paused mid-canary starts a new rollout and completes
    apply(server, rollout("v3", canary([{"setWeight": 50}], abortScaleDownDelaySeconds=0)))
    healthy_on(server, "v3")
    wait_serving(ip, "v3")


def test_blue_green_preview_then_instant_switch_fails_no_request(server):
    bg = {"blueGreen": {"activeService": "web", "previewService": "web-preview",
                        "autoPromotionEnabled": False, "scaleDownDelaySeconds": 5}}
    apply(server, service("web"), service("web-preview"), rollout("v1", bg))
    healthy_on(server, "v1")
    ip, pip = service_ip(server), service_ip(server, "web-preview")
    wait_serving(ip, "v1")
    with version_load(ip, 80) as load:
        apply(server, rollout("v2", bg))
        wait_for(server, phase("Paused"), "BlueGreenPause")
        wait_serving(pip, "v2")
        assert {get_version(ip) for _ in range(30)} == {"v1"}
        promote(server)
        t0 = time.time()
        wait_serving(ip, "v2")
        switch_s = time.time() - t0
        assert {get_version(ip) for _ in range(30)} == {"v2"}, "not switched 100% at once"
        healthy_on(server, "v2")
        more_requests(load)
    load.assert_clean(min_ok=50)
    print("blue-green switch took %.3f s after promote" % switch_s)


def get_with_headers(ip, headers=None):
    c = http.client.HTTPConnection(ip, 80, timeout=2)
    try:
        c.request("GET", "/", headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return json.loads(body)["version"], r.getheader("set-cookie")
    finally:
        c.close()


def test_ab_cookie_route_and_sticky_cookie_keep_users_on_one_version(server):
    steps = [{"setCanaryScale": {"replicas": 1}},
             {"setHeaderRoute": {"name": "testers", "match": [
                 {"headerName": "Cookie",
                  "headerValue": {"regex": "(^|; )group=beta(;|$)"}}]}},
             {"setWeight": 30}, {"pause": {}}, {"setWeight": 70}, {"pause": {}}]
    ann = {"v6.dev/sticky-cookie": "v6-affinity"}
    apply(server, service("web"), service("web-canary"),
          rollout("v1", canary(steps), annotations=ann))
    healthy_on(server, "v1")
    apply(server, rollout("v2", canary(steps), annotations=ann))
    wait_for(server, lambda r: phase("Paused")(r) and
             r["status"]["canary"]["weights"]["canary"]["weight"] == 30, "30%")
    ip = service_ip(server)
    # A/B: the beta group always gets the new version, whatever the weight
    beta = [get_with_headers(ip, {"Cookie": "a=1; group=beta"})[0] for _ in range(40)]
    assert beta == ["v2"] * 40, beta
    # sticky: 40 users each get a cookie on their first request and keep
    # their version for every later one, also after the weight grows
    users = []
    for _ in range(40):
        v, cookie = get_with_headers(ip)
        assert cookie and cookie.startswith("v6-affinity="), cookie
        users.append((v, cookie.split(";")[0]))
    assert {v for v, _ in users} == {"v1", "v2"}, users

    def check_users():
        for v, cookie in users:
            got = {get_with_headers(ip, {"Cookie": cookie})[0] for _ in range(3)}
            assert got == {v}, (v, cookie, got)
    check_users()
    promote(server)
    wait_for(server, lambda r: phase("Paused")(r) and
             r["status"]["canary"]["weights"]["canary"]["weight"] == 70, "70%")
    check_users()
    promote(server)
    healthy_on(server, "v2")


def test_canary_survives_kill_9_of_the_server(server):
    steps = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]
    apply(server, service("web"), service("web-canary"), rollout("v1", canary(steps)))
    healthy_on(server, "v1")
    apply(server, rollout("v2", canary(steps)))
    wait_for(server, phase("Paused"), "pause at 50%")
    ip = service_ip(server)
    with version_load(ip, 80) as load:
        server.kill()
        # the proxy keeps the last routing table: both versions keep answering
        counts = {}
        for _ in range(100):
            v = get_version(ip)
            counts[v] = counts.get(v, 0) + 1
        server.start()
        ro = get_rollout(server)
        assert ro["status"]["phase"] == "Paused", ro["status"]
        promote(server)
        healthy_on(server, "v2")
        wait_serving(ip, "v2")
        more_requests(load)
    assert set(counts) == {"v1", "v2"}, counts
    load.assert_clean(min_ok=50)
    _, rses = server.json("GET", "/apis/apps/v1/namespaces/default/replicasets", expect=200)
    assert len(rses["items"]) == 2, [r["metadata"]["name"] for r in rses["items"]]


def test_canary_weights_apply_to_an_httproute_through_a_gateway(server):
    from conftest import free_port
    port = free_port()
    gw = [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
           "metadata": {"name": "v6"}, "spec": {"controllerName": "v6.io/gateway-controller"}},
          {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
           "metadata": {"name": "edge", "namespace": "default"},
           "spec": {"gatewayClassName": "v6", "addresses": [{"value": "127.0.0.1"}],
                    "listeners": [{"name": "http", "protocol": "HTTP", "port": port}]}},
          {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"name": "web", "namespace": "default"},
           "spec": {"parentRefs": [{"name": "edge"}],
                    "rules": [{"backendRefs": [{"name": "web", "port": 80, "weight": 100},
                                               {"name": "web-canary", "port": 80,
                                                "weight": 0}]}]}}]
    steps = [{"setWeight": 40}, {"pause": {}}]
    strat = canary(steps, trafficRouting={"plugins": {"argoproj-labs/gatewayAPI": {
        "httpRoute": "web", "namespace": "default"}}})
    apply(server, service("web"), service("web-canary"), *gw, rollout("v1", strat))
    healthy_on(server, "v1")
    edge = "127.0.0.1:%d" % port

    def via_gateway():
        c = http.client.HTTPConnection(edge, timeout=2)
        try:
            c.request("GET", "/")
            r = c.getresponse()
            return json.loads(r.read())["version"] if r.status == 200 else r.status
        finally:
            c.close()
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            if via_gateway() == "v1":
                break
        except OSError:
            pass
        time.sleep(0.1)
    apply(server, rollout("v2", strat))
    wait_for(server, phase("Paused"), "pause at 40%")
    got = [via_gateway() for _ in range(300)]
    share = got.count("v2") / len(got)
    assert set(got) == {"v1", "v2"} and 0.32 <= share <= 0.48, (share, set(got))
    # the user's HTTPRoute is left as written: the weights live in the Rollout's status
    _, route = server.json("GET", "/apis/gateway.networking.k8s.io/v1/namespaces/default/"
                           "httproutes/web", expect=200)
    assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [100, 0]
    promote(server)
    healthy_on(server, "v2")
    deadline = time.time() + 20
    while time.time() < deadline and via_gateway() != "v2":
        time.sleep(0.05)
    assert [via_gateway() for _ in range(20)] == ["v2"] * 20
