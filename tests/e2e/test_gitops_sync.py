"""GitOps sync details (issue 14, part 2) beyond test_gitops.py's stories,
each against a real `v6 server` and a file:// git repository made with the
git CLI: an Application of many kinds stays Synced when idle (nothing
perpetually OutOfSync from server-set defaults) and selfHeal puts back a
hand-edited Secret and a deleted ServiceAccount at once (no 3-minute poll);
PruneLast deletes after every wave is healthy; ApplyOutOfSyncOnly leaves
objects that are in sync unwritten; a Sync hook runs in its wave; a
tracked object deleted by hand is Missing; `v6 app get|history|sync -o
json` print the Application and its history; `v6 app diff` masks a
Secret's values; a Rollout's health (Suspended at a
canary pause, Healthy once promoted) is the Application's."""
import json
import time

from gitserve import Repo
from test_gitops import (DEST, application, apply, cm, configmap, deploy, deployment,
                         get_app, get_obj, hook_job, synced_to, wait_for, webhook,
                         yaml_docs)


def obj(api_version, kind, name, **body):
    o = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
    o.update(body)
    return o


def pod_spec(cmd="exec sleep 3600", restart=None):
    spec = {"terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "sh", "command": ["sh", "-c", cmd]}]}
    if restart:
        spec["restartPolicy"] = restart
    return spec


def many_kinds():
    """One object of each kind a team keeps in git, as written by hand:
    everything the server defaults is left out."""
    labels = {"app": "db"}
    return [
        configmap("settings", {"color": "blue"}),
        obj("v1", "Secret", "creds", stringData={"password": "from-git"}),
        obj("v1", "ServiceAccount", "runner"),
        obj("rbac.authorization.k8s.io/v1", "Role", "reader", rules=[
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]),
        obj("rbac.authorization.k8s.io/v1", "RoleBinding", "reader", roleRef={
            "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            subjects=[{"kind": "ServiceAccount", "name": "runner"}]),
        obj("v1", "Service", "db", spec={"clusterIP": "None", "selector": labels,
                                         "ports": [{"port": 5432}]}),
        obj("apps/v1", "StatefulSet", "db", spec={
            "serviceName": "db", "replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec()}}),
        obj("apps/v1", "DaemonSet", "agent", spec={
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": pod_spec()}}),
        deployment("web", "v1"),
        obj("autoscaling/v2", "HorizontalPodAutoscaler", "web", spec={
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 2, "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}),
        obj("batch/v1", "Job", "once", spec={"template": {"spec": pod_spec("exit 0", "Never")}}),
        obj("batch/v1", "CronJob", "nightly", spec={
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": {"spec": pod_spec("exit 0", "Never")}}}}),
    ]


def test_many_kinds_stay_synced_and_self_heal_is_immediate_for_any_kind(server, workdir):
    """Synced and Healthy once, then idle: no write, no OutOfSync for what
    the server filled in (a Secret's stringData stored as data, a Job's
    selector and labels, a StatefulSet's and a CronJob's defaults...). A
    Secret edited by hand and a ServiceAccount deleted by hand are put back
    by selfHeal within seconds, though the repository is polled only every
    3 minutes: the change itself queues the Application."""
    s = server
    repo = Repo(workdir)
    repo.write("app/all.yaml", yaml_docs(*many_kinds()))
    sha = repo.commit("many kinds")
    apply(s, application("kinds", repo.file_url,
                         automated={"prune": True, "selfHeal": True}))
    synced_to(s, "kinds", sha)
    a = get_app(s, "kinds")
    kinds = sorted({r["kind"] for r in a["status"]["resources"]})
    assert len(kinds) == len(many_kinds()), kinds
    assert all(r["status"] == "Synced" for r in a["status"]["resources"]), \
        a["status"]["resources"]
    rv = a["metadata"]["resourceVersion"]
    time.sleep(2)
    a = get_app(s, "kinds")
    assert a["status"]["sync"]["status"] == "Synced", \
        [r for r in a["status"]["resources"] if r["status"] != "Synced"]
    assert a["metadata"]["resourceVersion"] == rv  # idle: nothing written
    assert len(a["status"]["history"]) == 1

    secret = "/api/v1/namespaces/%s/secrets/creds" % DEST
    s.json("PATCH", secret, {"stringData": {"password": "by-hand"}},
           headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    wait_for("selfHeal put the Secret back", lambda: get_obj(s, secret)["data"] ==
             {"password": "ZnJvbS1naXQ="}, timeout=20)
    sa = "/api/v1/namespaces/%s/serviceaccounts/runner" % DEST
    s.json("DELETE", sa, expect=200)
    wait_for("selfHeal recreated the ServiceAccount", lambda: get_obj(s, sa), timeout=20)
    wait_for("Synced again", lambda: get_app(s, "kinds")["status"]["sync"]["status"] ==
             "Synced", timeout=20)


def test_prune_last_deletes_after_every_wave_is_healthy(server, workdir):
    """A commit drops ConfigMap `old` and adds a Deployment in wave 1 that
    becomes ready only after 8 s. With PruneLast=true `old` is still there
    while the sync waits for wave 1, and is gone once the operation is
    done; without it (the second Application) it goes in its own wave 0,
    before wave 1 starts."""
    s = server
    repos = {}
    for name, opts in (("last", ["PruneLast=true"]), ("inwave", [])):
        repo = repos[name] = Repo("%s/%s" % (workdir, name))
        repo.write("app/cm.yaml", yaml_docs(configmap("old", {"v": "1"}),
                                            configmap("keep", {"v": "1"})))
        sha = repo.commit("one")
        apply(s, application(name, repo.file_url, automated={"prune": True},
                             options=opts, dest="ns-" + name))
        synced_to(s, name, sha)
    for name, repo in repos.items():
        repo.write("app/cm.yaml", yaml_docs(configmap("keep", {"v": "1"})))
        repo.write("app/web.yaml", yaml_docs(deployment("web", "v1", wave=1, ready_after=8)))
        repo.commit("two")
        webhook(s, repo.file_url)

    def waiting_on_wave1(name):
        op = get_app(s, name).get("status", {}).get("operationState", {})
        return "waiting for wave 1" in op.get("message", "") and op
    wait_for("last: wave 1 in progress", lambda: waiting_on_wave1("last"), timeout=60)
    assert cm(s, "old", ns="ns-last") is not None  # PruneLast: not yet
    wait_for("inwave: wave 1 in progress", lambda: waiting_on_wave1("inwave"), timeout=60)
    assert cm(s, "old", ns="ns-inwave") is None  # pruned in wave 0, before wave 1
    # git moves on while both operations wait for wave 1 (web needs 8 s): the
    # new revision needs no writes, so each waiting operation goes on for it
    # (it was left Running forever, and the Application never synced again)
    for name, repo in repos.items():
        sha = repo.commit("noop")  # an empty commit: same objects
        webhook(s, repo.file_url)
        synced_to(s, name, sha)
        assert cm(s, "old", ns="ns-" + name) is None
        assert deploy(s, "web", ns="ns-" + name)["status"]["availableReplicas"] == 1
    op = get_app(s, "last")["status"]["operationState"]
    pruned = [r for r in op["syncResult"]["resources"] if r.get("status") == "Pruned"]
    assert [r["name"] for r in pruned] == ["old"], op["syncResult"]


def test_apply_out_of_sync_only_leaves_synced_objects_alone(server, workdir):
    """A commit changes ConfigMap `a` and writes Service `svc`'s default
    (`type: ClusterIP`) out: `svc` stays Synced, so with
    ApplyOutOfSyncOnly=true the sync writes only `a`; without it (the
    other Application) `svc` is re-applied too, its recorded configuration
    now saying type ClusterIP."""
    s = server
    svc = obj("v1", "Service", "svc", spec={"selector": {"app": "x"}, "ports": [{"port": 80}]})
    repos, rvs = {}, {}
    for name, opts in (("oos", ["ApplyOutOfSyncOnly=true"]), ("all", [])):
        repo = repos[name] = Repo("%s/%s" % (workdir, name))
        repo.write("app/all.yaml", yaml_docs(configmap("a", {"v": "1"}), svc))
        sha = repo.commit("one")
        apply(s, application(name, repo.file_url, automated={}, options=opts,
                             dest="ns-" + name))
        synced_to(s, name, sha)
        rvs[name] = get_obj(s, "/api/v1/namespaces/ns-%s/services/svc" % name)[
            "metadata"]["resourceVersion"]
    explicit = json.loads(json.dumps(svc))
    explicit["spec"]["type"] = "ClusterIP"
    for name, repo in repos.items():
        repo.write("app/all.yaml", yaml_docs(configmap("a", {"v": "2"}), explicit))
        sha = repo.commit("two")
        webhook(s, repo.file_url)
        synced_to(s, name, sha)
        assert cm(s, "a", ns="ns-" + name)["data"] == {"v": "2"}
    live = {n: get_obj(s, "/api/v1/namespaces/ns-%s/services/svc" % n) for n in repos}
    last = {n: json.loads(live[n]["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"]) for n in repos}
    assert live["oos"]["metadata"]["resourceVersion"] == rvs["oos"]
    assert "type" not in last["oos"]["spec"]
    assert live["all"]["metadata"]["resourceVersion"] != rvs["all"]
    assert last["all"]["spec"]["type"] == "ClusterIP"
    tasks = {n: sorted(r["name"] for r in get_app(s, n)["status"]["operationState"]
                       ["syncResult"]["resources"]) for n in repos}
    assert tasks == {"oos": ["a"], "all": ["a", "svc"]}, tasks

    # deleted by hand, without selfHeal: Missing and OutOfSync, not synced
    # again automatically at the same revision (Argo CD's rule)
    s.json("DELETE", "/api/v1/namespaces/ns-oos/configmaps/a", expect=200)
    wait_for("Missing", lambda: get_app(s, "oos")["status"]["health"]["status"] ==
             "Missing", timeout=20)
    a = get_app(s, "oos")
    assert a["status"]["sync"]["status"] == "OutOfSync"
    res = [r for r in a["status"]["resources"] if r["name"] == "a"][0]
    assert res["health"]["status"] == "Missing" and res["status"] == "OutOfSync", res
    time.sleep(1.5)
    assert cm(s, "a", ns="ns-oos") is None


def test_sync_hook_runs_in_its_wave(server, workdir):
    """A Job annotated hook: Sync and sync-wave 1 runs after wave 0 and
    before wave 2: the wave-2 ConfigMap is created only once the Job has
    completed; the operation records the hook as Succeeded."""
    s = server
    repo = Repo(workdir)
    job = hook_job("between", "Sync", "sleep 2")
    job["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] = "1"
    repo.write("app/all.yaml", yaml_docs(configmap("first", {"w": "0"}, wave=0), job,
                                         configmap("last", {"w": "2"}, wave=2)))
    sha = repo.commit("hook in wave 1")
    apply(s, application("synchook", repo.file_url, automated={}))
    a = synced_to(s, "synchook", sha)
    hooks = [r for r in a["status"]["operationState"]["syncResult"]["resources"]
             if r.get("hookType")]
    assert [(h["name"], h["hookType"], h["hookPhase"]) for h in hooks] == \
        [("between", "Sync", "Succeeded")], hooks
    j = get_obj(s, "/apis/batch/v1/namespaces/%s/jobs/between" % DEST)
    done = j["status"]["completionTime"]
    assert cm(s, "first")["metadata"]["creationTimestamp"] <= j["metadata"][
        "creationTimestamp"]
    assert cm(s, "last")["metadata"]["creationTimestamp"] >= done

    # the same through `v6 app ... -o json`, as a CI script reads it
    got = json.loads(s.v6("app", "get", "synchook", "-o", "json", check=True).stdout)
    assert got["kind"] == "Application" and got["status"]["sync"] == a["status"]["sync"]
    hist = json.loads(s.v6("app", "history", "synchook", "-o", "json", check=True).stdout)
    assert [(h["id"], h["revision"]) for h in hist] == [(1, sha)], hist
    p = s.v6("app", "sync", "synchook", "-o", "json", timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    op = json.loads(p.stdout)["status"]["operationState"]
    assert op["phase"] == "Succeeded" and op["syncResult"]["revision"] == sha, op
    assert op["operation"]["initiatedBy"] == {"username": "admin"}, op
    p = s.v6("app", "get", "synchook", "-o", "wide")
    assert p.returncode == 1 and "takes -o json or -o yaml" in p.stderr, p.stderr


def test_app_diff_masks_secret_values(server, workdir):
    """`v6 app diff` of a Secret changed in git shows which keys changed,
    never their values (Argo CD masks them too): the diff subresource is
    readable by whoever may read the Application, not only by those who may
    read Secrets."""
    s = server
    repo = Repo(workdir)

    def secret(password):
        return obj("v1", "Secret", "db", stringData={"user": "admin", "password": password})
    repo.write("app/secret.yaml", yaml_docs(secret("hunter2-old")))
    sha = repo.commit("one")
    apply(s, application("sec", repo.file_url))
    s.v6("app", "sync", "sec", check=True, timeout=120)
    synced_to(s, "sec", sha)
    repo.write("app/secret.yaml", yaml_docs(secret("hunter2-new")))
    repo.commit("two")
    webhook(s, repo.file_url)
    wait_for("OutOfSync", lambda: get_app(s, "sec")["status"]["sync"]["status"] ==
             "OutOfSync", timeout=30)
    d = s.v6("app", "diff", "sec")
    assert d.returncode == 1, d.stdout + d.stderr
    assert "*** (before)" in d.stdout and "*** (after)" in d.stdout, d.stdout
    _, _, raw = s.request("GET", "/apis/argoproj.io/v1alpha1/namespaces/default/"
                          "applications/sec/diff")
    for text in (d.stdout, raw.decode()):
        for secret_ in ("hunter2", "aHVudGVyMi", "YWRtaW4"):  # plain, base64
            assert secret_ not in text, text


def rollout(version):
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web", "version": version}},
                                  "spec": pod_spec()},
                     "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}}}


def test_rollout_health_is_the_applications(server, workdir):
    """A Rollout synced from git: Healthy after its first revision; the
    next commit starts a canary that stops at a pause without duration, so
    the Application is Synced and Suspended (Argo CD's health for a paused
    Rollout); `v6 rollout promote` finishes it and the Application is
    Healthy again."""
    s = server
    repo = Repo(workdir)
    repo.write("app/rollout.yaml", yaml_docs(rollout("v1")))
    sha = repo.commit("v1")
    apply(s, application("ro", repo.file_url, automated={}))
    synced_to(s, "ro", sha)
    repo.write("app/rollout.yaml", yaml_docs(rollout("v2")))
    sha = repo.commit("v2")
    webhook(s, repo.file_url)
    a = synced_to(s, "ro", sha, health="Suspended")
    res = [r for r in a["status"]["resources"] if r["kind"] == "Rollout"][0]
    assert res["health"]["status"] == "Suspended", res
    s.v6("rollout", "promote", "web", "-n", DEST, check=True)
    synced_to(s, "ro", sha, health="Healthy")
