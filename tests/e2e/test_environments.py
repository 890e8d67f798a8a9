"""Environments (docs/environments.md): namespaces labelled
environment.v6.dev/name. prod's policy (probes, limits, two replicas)
refuses a workload without them; `v6 promote` copies staging's exact
template into prod (images pinned to the digest staging runs, its
ConfigMap copied) along the chain only, and prod's own rollout runs it;
`v6 env ls` shows the environments and what differs. Runs images with
runc (the examples' test workload)."""
import copy
import json

from conftest import wait_for

LABEL = "environment.v6.dev/name"
IMAGE = "localhost:5000/v6/testapp:0.1"


def env_ns(server, name, env):
    server.json("POST", "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": name, "labels": {LABEL: env}}}, expect=201)


def web(replicas=2, image=IMAGE, probes=True, limits=True):
    c = {"name": "web", "image": image, "ports": [{"name": "http", "containerPort": 8080}],
         "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
         "envFrom": [{"configMapRef": {"name": "web-config"}}]}
    if probes:
        c["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": "http"},
                               "periodSeconds": 1}
        c["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": "http"}}
    if limits:
        c["resources"] = {"limits": {"cpu": "200m", "memory": "64Mi"}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [c]}}}}


def deploy(server, ns, obj):
    return server.json("POST", "/apis/apps/v1/namespaces/%s/deployments" % ns, obj)


def available(server, ns, n):
    _, d = server.json("GET", "/apis/apps/v1/namespaces/%s/deployments/web" % ns)
    st = d.get("status") or {}
    return st.get("availableReplicas") == n and st.get("updatedReplicas") == n and \
        st.get("observedGeneration") == d["metadata"]["generation"]


def test_prod_policy_promotion_and_env_ls(examples_server):
    s = examples_server
    env_ns(s, "staging", "staging")
    env_ns(s, "prod", "prod")
    env_ns(s, "dev", "dev")
    # prod's policy, by name of the rule
    for obj, rule in ((web(probes=False), "rule require-probes: container web has no "
                                          "readinessProbe"),
                      (web(limits=False), "rule require-limits"),
                      (web(replicas=1), "rule min-replicas: 1 replica(s), the environment "
                                        "requires at least 2")):
        status, body = deploy(s, "prod", obj)
        assert status == 403 and rule in body["message"], body
        assert 'environment policy of namespace "prod"' in body["message"], body
    # staging runs web with its config
    s.json("POST", "/api/v1/namespaces/staging/configmaps",
           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"},
            "data": {"GREETING": "hello from staging"}}, expect=201)
    status, body = deploy(s, "staging", web())
    assert status == 201, body
    wait_for(lambda: available(s, "staging", 2), 60, "staging/web available")
    # along the chain only: dev is not where prod takes releases from
    p = s.v6("promote", "deploy/web", "--from", "dev", "--to", "prod")
    assert p.returncode != 0 and "environment prod takes promotions from staging, not dev" \
        in p.stderr, p.stderr
    p = s.v6("promote", "deploy/web", "--from", "staging", "--to", "prod", "--wait",
             timeout=180)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "configmap/web-config created" in p.stdout, p.stdout
    assert "deployment.apps/web created" in p.stdout, p.stdout
    _, d = s.json("GET", "/apis/apps/v1/namespaces/prod/deployments/web", expect=200)
    img = d["spec"]["template"]["spec"]["containers"][0]["image"]
    assert img.startswith(IMAGE + "@sha256:"), img        # the digest staging runs
    _, pods = s.json("GET", "/api/v1/namespaces/staging/pods?labelSelector=app%3Dweb")
    ids = {cs["imageID"].split("@")[1] for p_ in pods["items"]
           for cs in p_["status"]["containerStatuses"]}
    assert img.split("@")[1] in ids, (img, ids)
    assert d["metadata"]["annotations"]["environment.v6.dev/promoted-from"] == "staging"
    assert available(s, "prod", 2)
    _, cm = s.json("GET", "/api/v1/namespaces/prod/configmaps/web-config", expect=200)
    assert cm["data"] == {"GREETING": "hello from staging"}
    # env ls: both, their policies, and that web now runs the same in both
    p = s.v6("env", "ls")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert any(l.split()[:3] == ["prod", "prod", "probes,limits,replicas>=2"] for l in lines), \
        p.stdout
    assert any(l.split()[:2] == ["staging", "staging"] for l in lines), p.stdout
    row = [l for l in lines if l.startswith("web ")]
    assert row and row[0].split()[-1] == "no", p.stdout   # tag vs pinned digest differ
    # a new staging release, promoted again: prod rolls to it, replicas kept
    new = copy.deepcopy(web())
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "localhost:5000/v6/testapp:0.2"
    s.json("PUT", "/apis/apps/v1/namespaces/staging/deployments/web",
           dict(new, metadata=dict(new["metadata"], resourceVersion=s.json(
               "GET", "/apis/apps/v1/namespaces/staging/deployments/web")[1]["metadata"]
               ["resourceVersion"])), expect=200)
    wait_for(lambda: available(s, "staging", 2), 60, "staging/web on 0.2")
    s.json("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web/scale",
           {"spec": {"replicas": 3}},
           headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    p = s.v6("promote", "deploy/web", "--from", "staging", "--to", "prod", "--wait",
             timeout=180)
    assert p.returncode == 0 and "deployment.apps/web configured" in p.stdout, (p.stdout,
                                                                               p.stderr)
    _, d = s.json("GET", "/apis/apps/v1/namespaces/prod/deployments/web", expect=200)
    assert d["spec"]["replicas"] == 3, json.dumps(d["spec"])
    assert d["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "localhost:5000/v6/testapp:0.2@sha256:")
    # scaling prod below its minimum is refused too
    status, body = s.json("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web/scale",
                          {"spec": {"replicas": 1}},
                          headers={"Content-Type": "application/merge-patch+json"})
    assert status == 403 and "min-replicas" in body["message"], body
