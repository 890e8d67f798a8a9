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
    # dev's image policy, quota and limits; a StatefulSet in dev and staging
    # (no replicas: only its template is compared)
    s.json("PATCH", "/api/v1/namespaces/dev",
           {"metadata": {"annotations": {
               "image-policy.v6.io/deny-latest": "true",
               "image-policy.v6.io/allowed-registries": "localhost:5000, ghcr.io/acme",
               "image-policy.v6.io/max-image-size": "200Mi"}}},
           headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    s.json("POST", "/api/v1/namespaces/dev/resourcequotas",
           {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute"},
            "spec": {"hard": {"pods": "20"}}}, expect=201)
    s.json("POST", "/api/v1/namespaces/dev/limitranges",
           {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "defaults"},
            "spec": {"limits": [{"type": "Container", "default": {"cpu": "100m"}}]}},
           expect=201)
    for ns, tag, mode in (("dev", "0.2", "debug"), ("staging", "0.1", "normal")):
        s.json("POST", "/apis/apps/v1/namespaces/%s/statefulsets" % ns,
               {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "cache"},
                "spec": {"replicas": 0, "serviceName": "cache",
                         "selector": {"matchLabels": {"app": "cache"}},
                         "template": {"metadata": {"labels": {"app": "cache"}},
                                      "spec": {"containers": [{
                                          "name": "cache", "image": "localhost:5000/v6/"
                                          "testapp:" + tag,
                                          "env": [{"name": "MODE", "value": mode}]}]}}}},
               expect=201)
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
    img = img_pinned = d["spec"]["template"]["spec"]["containers"][0]["image"]
    assert img.startswith(IMAGE + "@sha256:"), img        # the digest staging runs
    _, pods = s.json("GET", "/api/v1/namespaces/staging/pods?labelSelector=app%3Dweb")
    ids = {cs["imageID"].split("@")[1] for p_ in pods["items"]
           for cs in p_["status"]["containerStatuses"]}
    assert img.split("@")[1] in ids, (img, ids)
    assert d["metadata"]["annotations"]["environment.v6.dev/promoted-from"] == "staging"
    assert available(s, "prod", 2)
    _, cm = s.json("GET", "/api/v1/namespaces/prod/configmaps/web-config", expect=200)
    assert cm["data"] == {"GREETING": "hello from staging"}
    # env ls: each environment, its policies, and what differs field by field
    p = s.v6("env", "ls")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert lines[0].split() == ["ENVIRONMENT", "NAMESPACE", "POLICY", "IMAGE-POLICY", "QUOTA",
                                "LIMITRANGE", "PROMOTE-FROM", "WORKLOADS"], p.stdout
    assert lines[1].split() == ["dev", "dev", "-", "deny-latest,allowed-registries="
                                "localhost:5000|ghcr.io/acme,max-image-size=200Mi",
                                "compute", "defaults", "-", "1"], p.stdout
    assert lines[2].split() == ["prod", "prod", "probes,limits,replicas>=2", "-", "-", "-",
                                "staging", "1"], p.stdout
    assert lines[3].split() == ["staging", "staging", "-", "-", "-", "-", "test", "2"], \
        p.stdout
    rows = {tuple(l.split()[:2]): l.split()[2:] for l in lines[5:] if l}
    assert lines[5].split() == ["WORKLOAD", "FIELD", "dev", "prod", "staging", "SAME"], \
        p.stdout
    assert rows[("statefulset.apps/cache", "image[cache]")] == [
        "localhost:5000/v6/testapp:0.2", "-", "localhost:5000/v6/testapp:0.1", "no"], p.stdout
    assert rows[("statefulset.apps/cache", "env[cache].MODE")] == [
        "debug", "-", "normal", "no"], p.stdout
    assert rows[("statefulset.apps/cache", "replicas")] == ["0", "-", "0", "yes"], p.stdout
    assert rows[("deployment.apps/web", "replicas")] == ["-", "2", "2", "yes"], p.stdout
    assert rows[("deployment.apps/web", "env[web].POD_IP")] == [
        "-", "fieldRef:status.podIP", "fieldRef:status.podIP", "yes"], p.stdout
    assert rows[("deployment.apps/web", "configmap/web-config[GREETING]")] == [
        "-", "hello", "from", "staging", "hello", "from", "staging", "yes"], p.stdout
    img = rows[("deployment.apps/web", "image[web]")]
    assert img[0] == "-" and img[1].startswith(IMAGE + "@sha256:") and \
        img[1].endswith("...") and img[2:] == [IMAGE, "no"], p.stdout  # tag vs digest
    p = s.v6("env", "ls", "-o", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    dev = [e for e in doc["environments"] if e["environment"] == "dev"][0]
    assert dev["imagePolicy"].startswith("deny-latest,") and dev["resourceQuota"] == \
        "compute" and dev["limitRange"] == "defaults", dev
    web_img = [d for d in doc["differences"] if d["workload"] == "deployment.apps/web" and
               d["field"] == "image[web]"][0]
    assert web_img["values"]["prod"] == img_pinned and not web_img["same"], web_img
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
    # the controller's status writes for the scale-up bump the Deployment's
    # resourceVersion: let them settle before the dry runs are checked
    wait_for(lambda: available(s, "prod", 3), 60, "prod/web scaled to 3")
    s.json("PATCH", "/api/v1/namespaces/staging/configmaps/web-config",
           {"data": {"GREETING": "hello again"}},
           headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    # a dry run (server, then client) shows the diff and writes nothing
    before = {what: s.json("GET", path, expect=200)[1]["metadata"]["resourceVersion"]
              for what, path in (("web", "/apis/apps/v1/namespaces/prod/deployments/web"),
                                 ("cm", "/api/v1/namespaces/prod/configmaps/web-config"))}
    for mode, said in (("server", " (server dry run)"), ("client", " (dry run)")):
        p = s.v6("promote", "deploy/web", "--from", "staging", "--to", "prod",
                 "--dry-run=" + mode, timeout=60)
        assert p.returncode == 0, (p.stdout, p.stderr)
        out = p.stdout.split("\n")
        assert "--- a/configmap/web-config/data" in out and "-GREETING: hello from staging" \
            in out and "+GREETING: hello again" in out, p.stdout
        assert "configmap/web-config configured" + said in out, p.stdout
        assert "--- a/deployment.apps/web/spec.template" in out, p.stdout
        assert any(l.startswith("-") and l.split()[-2:] == ["image:", img_pinned]
                   for l in out), p.stdout
        assert any(l.startswith("+") and l.split()[-2] == "image:" and l.split()[-1]
                   .startswith("localhost:5000/v6/testapp:0.2@sha256:") for l in out), p.stdout
        assert "deployment.apps/web configured" + said in out, p.stdout
        for what, path in (("web", "/apis/apps/v1/namespaces/prod/deployments/web"),
                           ("cm", "/api/v1/namespaces/prod/configmaps/web-config")):
            assert s.json("GET", path)[1]["metadata"]["resourceVersion"] == before[what]
    p = s.v6("promote", "deploy/web", "--from", "staging", "--to", "prod", "--dry-run=maybe")
    assert p.returncode != 0 and "Invalid dry-run value (maybe)" in p.stderr, p.stderr
    p = s.v6("promote", "deploy/web", "--from", "staging", "--to", "prod", "--wait",
             timeout=180)
    assert p.returncode == 0 and "deployment.apps/web configured" in p.stdout, (p.stdout,
                                                                               p.stderr)
    _, d = s.json("GET", "/apis/apps/v1/namespaces/prod/deployments/web", expect=200)
    assert d["spec"]["replicas"] == 3, json.dumps(d["spec"])
    _, cm = s.json("GET", "/api/v1/namespaces/prod/configmaps/web-config", expect=200)
    assert cm["data"] == {"GREETING": "hello again"}
    assert d["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "localhost:5000/v6/testapp:0.2@sha256:")
    # scaling prod below its minimum is refused too
    status, body = s.json("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web/scale",
                          {"spec": {"replicas": 1}},
                          headers={"Content-Type": "application/merge-patch+json"})
    assert status == 403 and "min-replicas" in body["message"], body


def rollout(ns_image, replicas=2):
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "app", "image": ns_image,
                                         "command": ["sleep", "600"]}]}},
                     "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}}}


def test_promote_a_rollout_starts_the_targets_canary(server):
    """`v6 promote rollout/web` copies the source's template into the
    target's Rollout, which then runs its own strategy: staging's canary
    stops at its pause with the promoted template as the canary and the
    old one still stable, until someone promotes the Rollout."""
    s = server
    env_ns(s, "test", "test")
    env_ns(s, "staging", "staging")
    path = "/apis/argoproj.io/v1alpha1/namespaces/%s/rollouts"
    s.json("POST", path % "staging", rollout("app:1"), expect=201)
    s.json("POST", path % "test", rollout("app:2", replicas=1), expect=201)

    def ro(ns):
        return s.json("GET", path % ns + "/web", expect=200)[1]

    def phase(ns, want, step=None):
        r = ro(ns)
        st = r.get("status", {})
        return st.get("phase") == want and st.get("observedGeneration") == str(
            r["metadata"]["generation"]) and (step is None or
                                              st.get("currentStepIndex") == step) and r
    wait_for(lambda: phase("staging", "Healthy"), 60, "staging's first release Healthy")
    stable = ro("staging")["status"]["stableRS"]
    p = s.v6("promote", "rollout/web", "--from", "test", "--to", "staging")
    assert p.returncode == 0, p.stderr
    assert "rollout.argoproj.io/web configured" in p.stdout, p.stdout
    r = wait_for(lambda: phase("staging", "Paused", step=1), 60, "the canary at its pause")
    assert r["spec"]["replicas"] == 2  # the target's own replicas and strategy
    assert r["spec"]["template"]["spec"]["containers"][0]["image"] == "app:2"
    assert r["metadata"]["annotations"]["environment.v6.dev/promoted-from"] == "test"
    assert r["status"]["stableRS"] == stable
    assert r["status"]["currentPodHash"] != stable
    s.v6("rollout", "promote", "rollout/web", "-n", "staging", check=True)
    r = wait_for(lambda: phase("staging", "Healthy"), 60, "the promoted release Healthy")
    assert r["status"]["stableRS"] == r["status"]["currentPodHash"] != stable
    p = s.v6("promote", "rollout/web", "--from", "staging", "--to", "test")
    assert p.returncode != 0 and "takes promotions from dev, not staging" in p.stderr, p.stderr
    # the target namespace's annotation replaces the chain
    for allowed, ok in (("dev, staging", True), ("dev", False)):
        s.json("PATCH", "/api/v1/namespaces/test", {"metadata": {"annotations": {
            "environment.v6.dev/promote-from": allowed}}},
            headers={"Content-Type": "application/merge-patch+json"}, expect=200)
        p = s.v6("promote", "rollout/web", "--from", "staging", "--to", "test",
                 "--dry-run=server")
        assert (p.returncode == 0) == ok, (allowed, p.stdout, p.stderr)
        if ok:
            assert "rollout.argoproj.io/web configured (server dry run)" in p.stdout, p.stdout
        else:
            assert "namespace test accepts promotions only from dev" in p.stderr, p.stderr
    assert ro("test")["spec"]["template"]["spec"]["containers"][0]["image"] == "app:2"
