"""Portability both ways (issue 15, part 6): what V6 hands back validates against the
upstream schemas (tests/schemas/), Argo Rollouts' controller rules are V6's, and the
forms Argo and the Gateway API accept are accepted. The schema checker itself is tested
here too, so a checker that passes everything fails this file."""
import glob
import json
import os
import sys

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "schemas"))
import check  # noqa: E402  (tests/schemas/check.py)

EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.yaml")))
SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation",
                 "managedFields")


def apply(server, *objs):
    doc = "\n---\n".join(json.dumps(o) for o in objs)
    return server.v6("apply", "-f", "-", input=doc)


def rollout(canary):
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"canary": canary},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web",
                                                           "image": "web:1"}]}}}}


HEADER_STEP = {"setHeaderRoute": {"name": "beta", "match": [
    {"headerName": "X-Canary", "headerValue": {"exact": "yes"}}]}}
GW = {"plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "web"}}}


def test_checker_finds_what_a_cluster_would_refuse():
    bad_deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "x"},
                  "spec": {"replicas": "two", "selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": {"containers": [{"name": "c",
                                                                 "imagee": "x"}]}}}}
    bad_ro = rollout({"canaryService": "c", "stableService": "s",
                      "steps": [HEADER_STEP], "scaleDownDelaySeconds": 5})
    problems = check.check_docs([("deploy", bad_deploy), ("ro", bad_ro)])
    text = "\n".join(problems)
    assert 'spec.template.spec.containers[0].imagee: unknown field "imagee"' in text, text
    assert "spec.replicas: type" in text, text
    assert "SetHeaderRoute requires TrafficRouting" in text, text
    assert "Canary scaleDownDelaySeconds can only be used with traffic routing" in text, text
    good = rollout({"canaryService": "c", "stableService": "s", "steps": [HEADER_STEP],
                    "trafficRouting": dict(GW, managedRoutes=[{"name": "beta"}])})
    assert check.check_docs([("ro", good)]) == []


def test_exported_examples_apply_to_a_real_cluster(server):
    """Every example applied, read back with `get -o yaml --export`: no server
    fields, and the result passes the upstream schemas and Argo's rules."""
    kinds = set()
    for path in EXAMPLES:
        server.v6("apply", "-f", path, check=True)
        for d in yaml.safe_load_all(open(path)):
            if d:
                kinds.add(d["kind"].lower())
    plain = yaml.safe_load(server.v6("get", "rollout", "shop", "-n", "demo", "-o", "yaml",
                                     check=True).stdout)
    assert plain["metadata"].get("uid") and "status" in plain   # what --export drops
    docs = []
    for kind in sorted(kinds - {"namespace"}) + ["namespace"]:
        out = server.v6("get", kind, "-A", "-o", "yaml", "--export", check=True).stdout
        items = yaml.safe_load(out)["items"]
        assert items, kind
        for it in items:
            assert "status" not in it, (kind, it)
            assert not set(SERVER_FIELDS) & set(it["metadata"]), (kind, it["metadata"])
            docs.append(("%s/%s" % (kind, it["metadata"]["name"]), it))
    assert check.check_docs(docs) == []
    # and the export applies again unchanged (what `kubectl apply` of it would do)
    one = server.v6("get", "rollout", "shop", "-n", "demo", "-o", "yaml", "--export",
                    check=True).stdout
    server.v6("apply", "-f", "-", input=one, check=True)


def test_argo_controller_rules_refuse_with_argos_messages(server):
    cases = [
        ({"canaryService": "c", "stableService": "s", "steps": [HEADER_STEP]},
         "SetHeaderRoute requires TrafficRouting, supports Istio and ALB and Apisix"),
        ({"canaryService": "c", "stableService": "s", "steps": [{"setWeight": 10}],
          "scaleDownDelaySeconds": 5},
         "Canary scaleDownDelaySeconds can only be used with traffic routing"),
        ({"canaryService": "c", "stableService": "s",
          "steps": [{"setCanaryScale": {"replicas": 1}}]},
         "SetCanaryScale requires TrafficRouting to be set"),
        ({"canaryService": "c", "stableService": "s", "steps": [HEADER_STEP],
          "trafficRouting": GW},
         "Rollout has missing field 'spec.strategy.canary.trafficRouting.managedRoutes'"),
    ]
    for canary, msg in cases:
        p = apply(server, rollout(canary))
        assert p.returncode != 0 and msg in p.stderr, (canary, p.stderr)
        assert check.argo_rollout_errors(rollout(canary)), canary   # Argo agrees
    p = server.v6("get", "rollout", "web")
    assert p.returncode != 0   # nothing was half-applied


def test_forms_argo_accepts_are_accepted(server):
    canary = {"canaryService": "web-canary", "stableService": "web",
              "scaleDownDelaySeconds": 5,
              "trafficRouting": {"plugins": {"argoproj-labs/gatewayAPI": {
                  "httpRoutes": [{"name": "web", "useHeaderRoutes": True}],
                  "namespace": "default"}}, "managedRoutes": [{"name": "beta"}]},
              "steps": [{"setCanaryScale": {"replicas": 1}}, HEADER_STEP,
                        {"setWeight": 20}, {"pause": {}}]}
    tmpl = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": "sr", "namespace": "default"},
            "spec": {"metrics": [{"name": "sr", "successCondition": "result >= 0.9",
                                  "provider": {"plugin": {"v6.dev/traffic": {
                                      "service": "web", "metric": "successRate"}}}}]}}
    p = apply(server, rollout(canary), tmpl)
    assert p.returncode == 0, p.stderr
    out = server.v6("get", "rollout,analysistemplate", "-o", "yaml", "--export",
                    check=True).stdout
    docs = [("export", d) for d in yaml.safe_load(out)["items"]]
    assert len(docs) == 2 and check.check_docs(docs) == []
    # the first form of V6's provider is refused, naming the form to use
    old = json.loads(json.dumps(tmpl))
    old["metadata"]["name"] = "old"
    old["spec"]["metrics"][0]["provider"] = {"v6": {"service": "web",
                                                    "metric": "successRate"}}
    p = apply(server, old)
    assert p.returncode != 0 and 'plugin: {"v6.dev/traffic"' in p.stderr, p.stderr


def test_gateway_api_v1beta1_and_referencegrant(server):
    """Manifests written for Gateway API v1beta1 apply (stored as v1, as a
    cluster's conversion would serve them), ReferenceGrant is a kind."""
    route = {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "HTTPRoute",
             "metadata": {"name": "web", "namespace": "default"},
             "spec": {"parentRefs": [{"name": "edge"}],
                      "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}}
    grant = {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
             "metadata": {"name": "from-default", "namespace": "default"},
             "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                "namespace": "shop"}],
                      "to": [{"group": "", "kind": "Service"}]}}
    p = apply(server, route, grant)
    assert p.returncode == 0, p.stderr
    _, got = server.json("GET", "/apis/gateway.networking.k8s.io/v1/namespaces/default/"
                         "httproutes/web", expect=200)
    assert got["apiVersion"] == "gateway.networking.k8s.io/v1"
    # the older version is discoverable and served on its own path (kubectl needs both)
    _, group = server.json("GET", "/apis/gateway.networking.k8s.io", expect=200)
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
    assert group["preferredVersion"]["version"] == "v1"
    _, res = server.json("GET", "/apis/gateway.networking.k8s.io/v1beta1", expect=200)
    names = {r["name"] for r in res["resources"]}
    assert {"httproutes", "gateways", "gatewayclasses", "referencegrants"} <= names, names
    base = "/apis/gateway.networking.k8s.io/v1beta1/namespaces/default/"
    _, g = server.json("GET", base + "referencegrants/from-default", expect=200)
    assert g["spec"]["from"][0]["namespace"] == "shop"
    grant2 = dict(grant, metadata={"name": "two", "namespace": "default"})
    server.json("POST", base + "referencegrants", grant2, expect=201)
    assert server.v6("get", "referencegrants", "-o", "name", check=True).stdout.split() == [
        "referencegrant.gateway.networking.k8s.io/from-default",
        "referencegrant.gateway.networking.k8s.io/two"]
    out = server.v6("get", "httproute,referencegrant", "-o", "yaml", "--export",
                    check=True).stdout
    assert check.check_docs([("export", d) for d in yaml.safe_load(out)["items"]]) == []
    # GRPCRoute: stored and validated; its status says V6 does not route it
    grpc = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
            "metadata": {"name": "users", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "edge"}], "rules": [{
                "matches": [{"method": {"service": "com.example.User", "method": "Login"}}],
                "backendRefs": [{"name": "users", "port": 50051}]}]}}
    p = apply(server, grpc)
    assert p.returncode == 0, p.stderr
    path = "/apis/gateway.networking.k8s.io/v1/namespaces/default/grpcroutes/users"

    def refused():
        _, r = server.json("GET", path, expect=200)
        conds = [c for p in r.get("status", {}).get("parents", [])
                 for c in p["conditions"]]
        return conds and conds[0]
    from conftest import wait_for
    c = wait_for(refused, 20, "GRPCRoute status")
    assert (c["type"], c["status"], c["reason"]) == ("Accepted", "False",
                                                     "NotAllowedByListeners"), c
    assert "not supported by v6" in c["message"], c
    out = server.v6("get", "grpcroute", "users", "-o", "yaml", "--export", check=True).stdout
    assert check.check_docs([("export", yaml.safe_load(out))]) == []
    bad = dict(grant, metadata={"name": "bad", "namespace": "default"},
               spec={"from": [], "to": [{"group": "", "kind": "Service"}]})
    p = apply(server, bad)
    assert p.returncode != 0 and "spec.from" in p.stderr, p.stderr


def test_request_redirect_and_url_rewrite_through_the_gateway(server):
    """The two filters that change where a request goes, served by V6's proxy
    as a Gateway API implementation must."""
    import http.client
    import time
    from conftest import free_port
    port = free_port()
    app = {"name": "web", "image": "v6/testapp",
           "command": ["v6", "testapp", "--quiet", "--version-string", "v1"],
           "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {
               "fieldPath": "status.podIP"}}}],
           "ports": [{"name": "http", "containerPort": 8080}],
           "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                              "periodSeconds": 1}}
    objs = [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": "default"},
         "spec": {"selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [app]}}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "web", "namespace": "default"},
         "spec": {"selector": {"app": "web"},
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": {"name": "v6"}, "spec": {"controllerName": "v6.io/gateway-controller"}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": "edge", "namespace": "default"},
         "spec": {"gatewayClassName": "v6", "addresses": [{"value": "127.0.0.1"}],
                  "listeners": [{"name": "http", "protocol": "HTTP", "port": port}]}},
        {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "HTTPRoute",
         "metadata": {"name": "web", "namespace": "default"},
         "spec": {"parentRefs": [{"name": "edge"}], "rules": [
             {"matches": [{"path": {"type": "PathPrefix", "value": "/old"}}],
              "filters": [{"type": "RequestRedirect", "requestRedirect": {
                  "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"},
                  "statusCode": 301}}]},
             {"matches": [{"path": {"type": "PathPrefix", "value": "/secure"}}],
              "filters": [{"type": "RequestRedirect", "requestRedirect": {
                  "scheme": "https", "hostname": "shop.example"}}]},
             {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
              "filters": [{"type": "URLRewrite", "urlRewrite": {
                  "hostname": "backend.internal",
                  "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}],
              "backendRefs": [{"name": "web", "port": 80}]}]}}]
    p = apply(server, *objs)
    assert p.returncode == 0, p.stderr

    def get(path):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.getheader("Location"), r.read()
        finally:
            c.close()
    deadline, last = time.time() + 60, None
    while time.time() < deadline:
        try:
            last = get("/api/echo?x=1")
            if last[0] == 200:
                break
        except OSError as e:
            last = e
        time.sleep(0.2)
    status, _, body = last
    assert status == 200, last
    echo = json.loads(body)
    assert echo["path"] == "/echo" and echo["query"] == "x=1", echo
    host = {k.lower(): v for k, v in echo["headers"].items()}["host"]
    assert host == "backend.internal", echo["headers"]
    assert get("/old/page?a=b")[:2] == (301, "http://127.0.0.1:%d/new/page?a=b" % port)
    assert get("/old")[:2] == (301, "http://127.0.0.1:%d/new" % port)
    assert get("/secure/x")[:2] == (302, "https://shop.example/secure/x")
    out = server.v6("get", "httproute", "web", "-o", "yaml", "--export", check=True).stdout
    assert check.check_docs([("export", yaml.safe_load(out))]) == []
    # a rule may not both redirect and rewrite (the CRD's rule)
    both = json.loads(json.dumps(objs[-1]))
    both["spec"]["rules"][0]["filters"].append(
        {"type": "URLRewrite", "urlRewrite": {"hostname": "x.example"}})
    p = apply(server, both)
    assert p.returncode != 0 and "not both" in p.stderr, p.stderr


def test_kubectl_applies_a_v1beta1_httproute(tls_server):
    """Stock kubectl (strict validation: it reads the version's OpenAPI) applies a
    Gateway API v1beta1 manifest twice and reads it back through v1beta1."""
    import subprocess
    route = {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "HTTPRoute",
             "metadata": {"name": "r", "namespace": "default"},
             "spec": {"parentRefs": [{"name": "edge"}],
                      "rules": [{"backendRefs": [{"name": "web", "port": 80}]}]}}
    env = dict(os.environ, KUBECONFIG=tls_server.kubeconfig())

    def kubectl(*args, input=None):
        return subprocess.run(["kubectl"] + list(args), input=input, text=True,
                              capture_output=True, env=env, timeout=60)
    p = kubectl("apply", "-f", "-", input=json.dumps(route))
    assert p.returncode == 0 and "created" in p.stdout, p.stderr
    route["spec"]["hostnames"] = ["shop.example"]
    p = kubectl("apply", "-f", "-", input=json.dumps(route))
    assert p.returncode == 0 and "configured" in p.stdout, p.stderr
    p = kubectl("get", "httproutes.v1beta1.gateway.networking.k8s.io", "r", "-o", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["spec"]["hostnames"] == ["shop.example"]
