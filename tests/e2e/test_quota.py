"""LimitRange and ResourceQuota (core v1) with Kubernetes' admission
semantics: defaults filled into a pod's containers, min / max refused with
the LimitRanger's words, a create past a quota's hard limit refused with
"exceeded quota", a pod without a constrained resource refused with
"must specify", status.used kept by the controller, and a Deployment whose
pods do not fit recording FailedCreate."""
from conftest import wait_for


def make_ns(server, name):
    server.json("POST", "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                expect=201)


def pod(name, resources=None):
    c = {"name": "app", "image": "sh", "command": ["sh", "-c", "exec sleep 3600"]}
    if resources is not None:
        c["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [c]}}


def create(server, ns, obj):
    return server.json("POST", "/api/v1/namespaces/%s/pods" % ns, obj)


def test_limitrange_defaults_and_bounds_then_quota(server):
    make_ns(server, "prod")
    server.json("POST", "/api/v1/namespaces/prod/limitranges",
                {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"},
                 "spec": {"limits": [{"type": "Container",
                                      "default": {"cpu": "200m", "memory": "64Mi"},
                                      "defaultRequest": {"cpu": "100m", "memory": "32Mi"},
                                      "max": {"cpu": "1"}, "min": {"memory": "16Mi"}}]}},
                expect=201)
    server.json("POST", "/api/v1/namespaces/prod/resourcequotas",
                {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                 "spec": {"hard": {"pods": "2", "requests.cpu": "1", "limits.memory": "1Gi",
                                   "count/deployments.apps": "1"}}}, expect=201)
    # defaults filled in by admission
    status, p = create(server, "prod", pod("a"))
    assert status == 201, p
    r = p["spec"]["containers"][0]["resources"]
    assert r == {"limits": {"cpu": "200m", "memory": "64Mi"},
                 "requests": {"cpu": "100m", "memory": "32Mi"}}, r
    # max and min, in the LimitRanger's words
    status, body = create(server, "prod", pod("big", {"limits": {"cpu": "2"}}))
    assert status == 403 and body["reason"] == "Forbidden", body
    assert body["message"] == ('pods "big" is forbidden: maximum cpu usage per Container '
                               'is 1, but limit is 2'), body
    status, body = create(server, "prod", pod("tiny", {"requests": {"memory": "8Mi"}}))
    assert status == 403 and "minimum memory usage per Container is 16Mi, but request " \
        "is 8Mi" in body["message"], body
    # the quota: two pods, then a third is refused with the usage
    status, _ = create(server, "prod", pod("b"))
    assert status == 201
    status, body = create(server, "prod", pod("c"))
    assert status == 403, body
    assert body["message"] == ('pods "c" is forbidden: exceeded quota: q, requested: pods=1, '
                               'used: pods=2, limited: pods=2'), body

    def used():
        _, q = server.json("GET", "/api/v1/namespaces/prod/resourcequotas/q")
        u = (q.get("status") or {}).get("used") or {}
        return u if u.get("pods") == "2" else None
    u = wait_for(used, 30, "the quota's status.used")
    assert u == {"pods": "2", "requests.cpu": "200m", "limits.memory": "128Mi",
                 "count/deployments.apps": "0"}, u
    # count/deployments.apps
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d%d"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                    "template": {"metadata": {"labels": {"app": "d"}},
                                 "spec": {"containers": [{"name": "app", "image": "sh"}]}}}}
    for i, want in ((1, 201), (2, 403)):
        dep["metadata"]["name"] = "d%d" % i
        status, body = server.json("POST", "/apis/apps/v1/namespaces/prod/deployments", dep)
        assert status == want, body
    assert "count/deployments.apps=1" in body["message"], body
    # d1's pod does not fit (pods=2 used): its ReplicaSet records FailedCreate
    def failed_create():
        _, evs = server.json("GET", "/api/v1/namespaces/prod/events")
        return [e for e in evs["items"] if e["reason"] == "FailedCreate"]
    ev = wait_for(failed_create, 30, "FailedCreate of d1's ReplicaSet")[0]
    assert "exceeded quota: q" in ev["message"], ev
    # deleting a pod frees room: the ReplicaSet's pod is then created
    server.json("DELETE", "/api/v1/namespaces/prod/pods/a?gracePeriodSeconds=0")
    wait_for(lambda: [p for p in server.json("GET", "/api/v1/namespaces/prod/pods")[1]["items"]
                      if p["metadata"]["name"].startswith("d1-")], 60, "d1's pod created")


def test_quota_on_limits_requires_them(server):
    make_ns(server, "strict")
    server.json("POST", "/api/v1/namespaces/strict/resourcequotas",
                {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute"},
                 "spec": {"hard": {"limits.cpu": "2", "limits.memory": "1Gi"}}}, expect=201)
    status, body = create(server, "strict", pod("nolimits"))
    assert status == 403, body
    assert body["message"] == ('pods "nolimits" is forbidden: failed quota: compute: must '
                               'specify limits.cpu for: app; limits.memory for: app'), body
    status, _ = create(server, "strict", pod("ok", {"limits": {"cpu": "1", "memory": "1Gi"}}))
    assert status == 201
    status, body = create(server, "strict", pod("more", {"limits": {"cpu": "2",
                                                                    "memory": "1Mi"}}))
    assert status == 403 and ("requested: limits.cpu=2,limits.memory=1Mi, used: "
                              "limits.cpu=1,limits.memory=1Gi, limited: "
                              "limits.cpu=2,limits.memory=1Gi") in body["message"], body


def test_invalid_limitrange_is_refused(server):
    status, body = server.json("POST", "/api/v1/namespaces/default/limitranges",
                               {"apiVersion": "v1", "kind": "LimitRange",
                                "metadata": {"name": "bad"},
                                "spec": {"limits": [{"type": "Container",
                                                     "min": {"cpu": "2"},
                                                     "max": {"cpu": "1"}}]}})
    assert status == 422 and "min value 2 is greater than max value 1" in body["message"], body
