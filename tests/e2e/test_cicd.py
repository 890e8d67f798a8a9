"""CI/CD (issue 14, part 5): `v6 apply -o json|yaml` prints what was applied
as kubectl does (the object alone, several as a v1 List), for -f and -k
and with --dry-run; and examples/ci/pipeline.sh run end to end."""
import json
import os
import subprocess

import yaml

from conftest import TIMEOUT_SCALE, V6, free_port, wait_for
from test_images import Registry

CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
data:
  k: {value}
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_apply_output_json_yaml(server, tmp_path):
    one = str(tmp_path / "one.yaml")
    write(one, CM.format(name="a", value="v1"))
    # created: the server's object (uid, resourceVersion), not the file
    p = server.v6("apply", "-f", one, "-o", "json", check=True)
    obj = json.loads(p.stdout)
    assert obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "a"
    assert obj["metadata"]["uid"] and obj["metadata"]["resourceVersion"]
    rv = obj["metadata"]["resourceVersion"]
    # unchanged: the live object
    obj = json.loads(server.v6("apply", "-f", one, "-o", "json", check=True).stdout)
    assert obj["metadata"]["resourceVersion"] == rv and obj["data"] == {"k": "v1"}
    # server dry run of a change: the new object, the store untouched
    write(one, CM.format(name="a", value="v2"))
    obj = yaml.safe_load(server.v6("apply", "-f", one, "-o", "yaml", "--dry-run=server",
                                   check=True).stdout)
    assert obj["data"] == {"k": "v2"} and obj["metadata"]["uid"]
    # client dry run of a change: the live object with the change merged
    obj = json.loads(server.v6("apply", "-f", one, "-o", "json", "--dry-run=client",
                               check=True).stdout)
    assert obj["data"] == {"k": "v2"} and obj["metadata"]["resourceVersion"] == rv
    live = json.loads(server.v6("get", "configmap", "a", "-o", "json", check=True).stdout)
    assert live["data"] == {"k": "v1"}
    # the real change: the object the server stored
    obj = json.loads(server.v6("apply", "-f", one, "-o", "json", check=True).stdout)
    assert obj["data"] == {"k": "v2"} and obj["metadata"]["resourceVersion"] != rv

    # several objects through -k: a v1 List, in apply order
    kdir = tmp_path / "k"
    write(str(kdir / "cms.yaml"), CM.format(name="b", value="x") + "---\n" +
          CM.format(name="c", value="y"))
    write(str(kdir / "kustomization.yaml"),
          "resources: [cms.yaml]\nnamePrefix: p-\n")
    lst = json.loads(server.v6("apply", "-k", str(kdir), "-o", "json", check=True).stdout)
    assert lst["apiVersion"] == "v1" and lst["kind"] == "List"
    assert [o["metadata"]["name"] for o in lst["items"]] == ["p-b", "p-c"]
    assert all(o["metadata"].get("uid") for o in lst["items"])
    lst = yaml.safe_load(server.v6("apply", "-k", str(kdir), "-o", "yaml", check=True).stdout)
    assert lst["kind"] == "List" and len(lst["items"]) == 2

    # create prints the created object too
    obj = yaml.safe_load(server.v6("create", "namespace", "made", "-o", "yaml",
                                   check=True).stdout)
    assert obj["kind"] == "Namespace" and obj["metadata"]["uid"]
    write(str(tmp_path / "d.yaml"), CM.format(name="d", value="z"))
    obj = json.loads(server.v6("create", "-f", str(tmp_path / "d.yaml"), "-o", "json",
                               check=True).stdout)
    assert obj["metadata"]["name"] == "d" and obj["metadata"]["uid"]

    # an unknown format is refused before anything is applied
    p = server.v6("apply", "-f", one, "-o", "wide")
    assert p.returncode == 1 and "allowed formats are: json, name, yaml" in p.stderr


def test_dry_run_server_on_every_writing_verb(server, tmp_path):
    """apply, create, delete (-f, -k, by name), scale and autoscale take
    --dry-run=server: the server checks the write (admission included:
    an environment's min-replicas) and answers, nothing is stored;
    --dry-run=client sends no write at all."""
    s = server
    s.json("POST", "/api/v1/namespaces", {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "guarded", "annotations": {"environment.v6.dev/min-replicas": "2"}}},
        expect=201)
    one = str(tmp_path / "one.yaml")
    write(one, CM.format(name="a", value="v1"))
    p = s.v6("apply", "-f", one, "-n", "guarded", "--dry-run=server", check=True)
    assert p.stdout == "configmap/a created (server dry run)\n", p.stdout
    p = s.v6("create", "-f", one, "-n", "guarded", "--dry-run=server", check=True)
    assert p.stdout == "configmap/a created (server dry run)\n", p.stdout
    assert s.v6("get", "cm", "a", "-n", "guarded").returncode == 1
    s.v6("apply", "-f", one, "-n", "guarded", check=True)

    for args in (["cm", "a"], ["-f", one]):
        p = s.v6("delete", *args, "-n", "guarded", "--dry-run=server")
        assert p.returncode == 0 and p.stdout == \
            'configmap "a" deleted (server dry run)\n', p.stdout + p.stderr
    p = s.v6("delete", "cm", "a", "-n", "guarded", "--dry-run", check=True)
    assert p.stdout == 'configmap "a" deleted (dry run)\n', p.stdout
    kdir = tmp_path / "k"
    write(str(kdir / "kustomization.yaml"), "resources: [../one.yaml]\nnamespace: guarded\n")
    p = s.v6("delete", "-k", str(kdir), "--dry-run=server", check=True)
    assert p.stdout == 'configmap "a" deleted (server dry run)\n', p.stdout
    live = json.loads(s.v6("get", "cm", "a", "-n", "guarded", "-o", "json",
                           check=True).stdout)
    assert "deletionTimestamp" not in live["metadata"]
    p = s.v6("delete", "cm", "absent", "-n", "guarded", "--dry-run=server")
    assert p.returncode == 1 and "NotFound" in p.stderr, p.stderr
    p = s.v6("delete", "cm", "a", "-n", "guarded", "--dry-run=maybe")
    assert p.returncode == 1 and "Invalid dry-run value (maybe)" in p.stderr, p.stderr

    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                        "terminationGracePeriodSeconds": 1, "containers": [{
                            "name": "main", "image": "sh",
                            "command": ["sh", "-c", "exec sleep 3600"]}]}}}}
    s.v6("apply", "-f", "-", "-n", "guarded", input=json.dumps(dep), check=True)
    p = s.v6("scale", "deploy/web", "--replicas", "3", "-n", "guarded", "--dry-run=server",
             check=True)
    assert p.stdout == "deployment.apps/web scaled (server dry run)\n", p.stdout
    p = s.v6("scale", "deploy/web", "--replicas", "1", "-n", "guarded", "--dry-run=server")
    assert p.returncode == 1 and "rule min-replicas" in p.stderr, p.stderr
    p = s.v6("scale", "deploy/web", "--replicas", "5", "-n", "guarded", "--dry-run",
             check=True)
    assert p.stdout == "deployment.apps/web scaled (dry run)\n", p.stdout
    d = json.loads(s.v6("get", "deploy", "web", "-n", "guarded", "-o", "json",
                        check=True).stdout)
    assert d["spec"]["replicas"] == 2 and d["metadata"]["generation"] == 1, d["metadata"]
    p = s.v6("autoscale", "deploy/web", "--min", "2", "--max", "4", "-n", "guarded",
             "--dry-run=server", check=True)
    assert p.stdout == "horizontalpodautoscaler.autoscaling/web autoscaled (server dry run)\n", \
        p.stdout
    p = s.v6("autoscale", "deploy/web", "--min", "1", "--max", "4", "-n", "guarded",
             "--dry-run=server")
    assert p.returncode == 1 and "min-replicas" in p.stderr, p.stderr
    assert s.v6("get", "hpa", "web", "-n", "guarded").returncode == 1


def test_dry_run_on_every_writing_rollout_subcommand(server):
    """rollout undo, restart, pause and resume take --dry-run too: the
    server dry run goes through the server and changes nothing, the client
    one sends no write; the reading subcommands refuse the flag."""
    s = server
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                        "terminationGracePeriodSeconds": 1, "containers": [{
                            "name": "main", "image": "sh",
                            "command": ["sh", "-c", "exec sleep 3600"]}]}}}}
    s.v6("apply", "-f", "-", input=json.dumps(dep), check=True)
    dep["spec"]["template"]["spec"]["containers"][0]["command"][2] = "exec sleep 3601"
    s.v6("apply", "-f", "-", input=json.dumps(dep), check=True)

    def live():
        return json.loads(s.v6("get", "deploy", "web", "-o", "json", check=True).stdout)

    def two_revisions():
        rs = json.loads(s.v6("get", "rs", "-l", "app=web", "-o", "json",
                             check=True).stdout)["items"]
        return len(rs) == 2 and live()["status"].get("observedGeneration") == 2
    wait_for(two_revisions, 30, "two ReplicaSets of web")
    before = live()
    for sub, done in (("undo", "rolled back"), ("restart", "restarted"), ("pause", "paused")):
        for mode, said in (("server", " (server dry run)"), ("client", " (dry run)")):
            p = s.v6("rollout", sub, "deployment/web", "--dry-run=" + mode)
            assert p.returncode == 0, p.stderr
            assert p.stdout == "deployment.apps/web %s%s\n" % (done, said), p.stdout
    after = live()
    assert after["metadata"]["generation"] == before["metadata"]["generation"] == 2
    assert after["spec"] == before["spec"]
    s.v6("rollout", "pause", "deployment/web", check=True)
    p = s.v6("rollout", "resume", "deployment/web", "--dry-run=server", check=True)
    assert p.stdout == "deployment.apps/web resumed (server dry run)\n", p.stdout
    assert live()["spec"]["paused"] is True
    p = s.v6("rollout", "undo", "deployment/web", "--dry-run=server")
    assert p.returncode == 1 and "paused deployment" in p.stderr, p.stderr
    p = s.v6("rollout", "undo", "deployment/absent", "--dry-run=server")
    assert p.returncode == 1 and ("NotFound" in p.stderr or "not found" in p.stderr), p.stderr
    for sub in ("status", "history"):
        p = s.v6("rollout", sub, "deployment/web", "--dry-run=server")
        assert p.returncode == 1 and "--dry-run" in p.stderr, p.stderr
    p = s.v6("rollout", "restart", "deployment/web", "--dry-run=maybe")
    assert p.returncode == 1 and "Invalid dry-run value (maybe)" in p.stderr, p.stderr


PIPELINE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                        "examples", "ci", "pipeline.sh")


def run_pipeline(server, reg, commit, workdir):
    env = dict(os.environ, V6_SERVER=server.url, REGISTRY=reg.host, COMMIT=commit,
               APP_BIN=os.path.join(os.path.dirname(os.path.abspath(V6)), "v6-testapp"),
               V6=V6, PUSH_TLS_VERIFY="false", TIMEOUT="%ds" % int(60 * TIMEOUT_SCALE),
               TMPDIR=workdir)
    env.pop("KUBECONFIG", None)
    return subprocess.run(["sh", PIPELINE], env=env, capture_output=True, text=True,
                          timeout=240 * TIMEOUT_SCALE)


def registry_digest(reg, ref):
    return subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--format",
                           "{{.Digest}}", "docker://%s/%s" % (reg.host, ref)],
                          capture_output=True, text=True, check=True,
                          timeout=60 * TIMEOUT_SCALE).stdout.strip()


def deploy_image(s, ns):
    d = json.loads(s.v6("get", "deploy", "app", "-n", ns, "-o", "json", check=True).stdout)
    return d["spec"]["template"]["spec"]["containers"][0]["image"]


def check_release(s, reg, commit, out):
    """staging runs the commit's tag, prod the same image pinned by digest,
    every running pod of both ready on it; returns the digest."""
    digest = registry_digest(reg, "v6/app:" + commit)
    assert digest.startswith("sha256:")
    assert "pushed %s/v6/app:%s@%s" % (reg.host, commit, digest) in out
    assert deploy_image(s, "staging") == "%s/v6/app:%s" % (reg.host, commit)
    prod = deploy_image(s, "prod")
    assert prod.startswith(reg.host + "/v6/app") and prod.endswith("@" + digest)
    assert "prod runs " + prod in out
    for ns in ("staging", "prod"):
        # --wait returned: the rollout is complete, the old pods are going
        pods = json.loads(s.v6("get", "pods", "-n", ns, "-l", "app=app", "-o", "json",
                               check=True).stdout)["items"]
        ready = [q for q in pods if q["status"].get("phase") == "Running" and
                 q["status"]["containerStatuses"][0].get("ready") and
                 not q["metadata"].get("deletionTimestamp")]
        assert len(ready) >= 2, (ns, [q["status"] for q in pods])
        for q in ready:
            assert q["status"]["containerStatuses"][0]["imageID"].endswith("@" + digest)
    return digest


def test_pipeline_builds_pushes_stages_and_promotes(examples_server, workdir):
    """examples/ci/pipeline.sh as a CI runs it, against a server running
    runc and a docker-registry on loopback, for two commits in a row: each
    reaches staging by tag and prod pinned by digest."""
    s = examples_server
    reg = Registry(workdir)
    try:
        digests = []
        for commit in ("c0ffee1", "c0ffee2"):
            p = run_pipeline(s, reg, commit, workdir)
            assert p.returncode == 0, p.stdout + p.stderr
            digests.append(check_release(s, reg, commit, p.stdout))
        assert digests[0] != digests[1]
        prod = deploy_image(s, "prod")

        # a failing step fails the pipeline and nothing after it runs: a
        # registry nobody listens on, prod untouched
        dead = Registry.__new__(Registry)
        dead.host = "127.0.0.1:%d" % free_port()
        p = run_pipeline(s, dead, "dead000", workdir)
        assert p.returncode != 0 and "==> apply to staging" not in p.stdout, p.stdout
        assert deploy_image(s, "prod") == prod
    finally:
        reg.close()
