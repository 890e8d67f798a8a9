"""GitOps end to end: Argo CD Applications synced from real git repositories.
Each test makes a bare repository, commits with the git CLI, and serves it
over loopback through `git http-backend` (CGI behind a small http.server in
this process, with basic auth for the private-repo story) or as file://.
A `v6 server` runs the Application controller; the stories check what a
user sees: the Application's sync / health status, the objects in the
destination namespace, `v6 app ...` and `v6 get applications`."""
import calendar
import json
import os
import subprocess
import time
import uuid

import conftest
from gitserve import GitHTTP, Repo, git

NS = "default"
DEST = "gitops-demo"
APPS = "/apis/argoproj.io/v1alpha1/namespaces/%s/applications" % NS


def wait_for(what, fn, timeout=60.0, interval=0.1):
    return conftest.wait_for(fn, timeout, what, interval)


# ---- manifests ------------------------------------------------------------

def configmap(name, data, wave=None, hook=None, **ann):
    meta = {"name": name}
    annotations = dict(ann)
    if wave is not None:
        annotations["argocd.argoproj.io/sync-wave"] = str(wave)
    if hook:
        annotations["argocd.argoproj.io/hook"] = hook
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def deployment(name, version, wave=None, ready_after=0):
    # the start time goes to a file of this run only: a stale one left by an
    # earlier run would make the probe pass before the container wrote it
    start = "/tmp/%s-%s-start" % (name, uuid.uuid4().hex[:12])
    probe = {}
    if ready_after:
        probe = {"readinessProbe": {
            "exec": {"command": ["sh", "-c", "test -f %s && test $(( $(date +%%s) - "
                                 "$(cat %s) )) -ge %d" % (start, start, ready_after)]},
            "periodSeconds": 1}}
    cmd = "date +%%s > %s; exec sleep 3600" % start
    d = {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "labels": {"app": name}},
         "spec": {"selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name, "version": version}},
                               "spec": {"terminationGracePeriodSeconds": 1,
                                        "containers": [dict({
                                            "name": "main", "image": "sh",
                                            "command": ["sh", "-c", cmd]}, **probe)]}}}}
    if wave is not None:
        d["metadata"]["annotations"] = {"argocd.argoproj.io/sync-wave": str(wave)}
    return d


def hook_job(name, hook, script="exit 0", policy=None):
    ann = {"argocd.argoproj.io/hook": hook}
    if policy:
        ann["argocd.argoproj.io/hook-delete-policy"] = policy
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "annotations": ann},
            "spec": {"backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "sh",
                                "command": ["sh", "-c", script]}]}}}}


def yaml_docs(*objs):
    # JSON is YAML; one document per object
    return "\n---\n".join(json.dumps(o, indent=2) for o in objs) + "\n"


def application(name, url, path="app", revision="main", automated=None, options=(),
                retry=None, dest=DEST, **extra):
    spec = {"project": "default",
            "source": {"repoURL": url, "targetRevision": revision, "path": path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": dest},
            "syncPolicy": {"syncOptions": ["CreateNamespace=true"] + list(options)}}
    if automated is not None:
        spec["syncPolicy"]["automated"] = automated
    if retry:
        spec["syncPolicy"]["retry"] = retry
    spec.update(extra)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def apply(s, *objs):
    return s.v6("apply", "-f", "-", input=yaml_docs(*objs), check=True)


def get_app(s, name):
    _, body = s.json("GET", "%s/%s" % (APPS, name), expect=200)
    return body


def get_obj(s, path):
    status, _, body = s.request("GET", path)
    return json.loads(body) if status == 200 else None


def cm(s, name, ns=DEST):
    return get_obj(s, "/api/v1/namespaces/%s/configmaps/%s" % (ns, name))


def deploy(s, name, ns=DEST):
    return get_obj(s, "/apis/apps/v1/namespaces/%s/deployments/%s" % (ns, name))


def synced_to(s, name, sha, health="Healthy"):
    """The Application is Synced and `health` at sha, its last operation done."""
    def check():
        a = get_app(s, name)
        st = a.get("status", {})
        op = st.get("operationState", {})
        errs = [c["message"] for c in st.get("conditions", [])
                if c.get("type") == "ComparisonError"]
        assert not (errs and st.get("sync", {}).get("revision") == sha), errs
        return (st.get("sync", {}).get("status") == "Synced"
                and st.get("sync", {}).get("revision") == sha
                and st.get("health", {}).get("status") == health
                and op.get("phase") in (None, "Succeeded")
                and "operation" not in a) and a
    return wait_for("application %s synced to %s and %s" % (name, sha[:7], health), check,
                    timeout=90)


def webhook(s, url):
    """A GitHub push payload for url, as Argo CD's /api/webhook takes it."""
    status, _, body = s.request("POST", "/api/webhook", {
        "ref": "refs/heads/main", "repository": {"html_url": url, "clone_url": url}},
        headers={"X-GitHub-Event": "push"})
    assert status == 200, body
    return json.loads(body)


# ---- the stories ---------------------------------------------------------------

def test_commit_sync_change_autosync_with_prune_over_http(server, workdir):
    """A repository over git's smart HTTP: the first commit is synced into a
    namespace the Application creates; a second commit, announced through
    the webhook, changes one ConfigMap and drops another, which automated
    prune deletes; history has both revisions; `v6 get applications` and
    `v6 app get` show Synced / Healthy at the commit."""
    s = server
    repo = Repo(workdir)
    gh = GitHTTP(workdir)
    try:
        repo.write("app/config.yaml", yaml_docs(configmap("settings", {"color": "blue"}),
                                                configmap("extra", {"x": "1"})))
        repo.write("app/web.yaml", yaml_docs(deployment("web", "v1")))
        repo.write("README.md", "not a manifest\n")
        sha1 = repo.commit("first")
        apply(s, application("guestbook", gh.url(), automated={"prune": True}))
        synced_to(s, "guestbook", sha1)
        assert cm(s, "settings")["data"] == {"color": "blue"}
        tid = cm(s, "settings")["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"]
        assert tid == "guestbook:/ConfigMap:%s/settings" % DEST
        assert deploy(s, "web")["status"].get("availableReplicas") == 1

        out = s.v6("get", "applications", check=True).stdout.splitlines()
        assert out[0].split()[:6] == ["NAME", "SYNC", "STATUS", "HEALTH", "STATUS", "REVISION"]
        assert out[1].split()[:4] == ["guestbook", "Synced", "Healthy", sha1]

        repo.write("app/config.yaml", yaml_docs(configmap("settings", {"color": "green"})))
        sha2 = repo.commit("second")
        t0 = time.monotonic()
        assert webhook(s, gh.url())["refreshed"] == 1
        synced_to(s, "guestbook", sha2)
        took = time.monotonic() - t0
        assert cm(s, "settings")["data"] == {"color": "green"}
        wait_for("extra pruned", lambda: cm(s, "extra") is None, timeout=30)
        assert took < 30, took  # the poll is 3 minutes: only the webhook explains this
        hist = get_app(s, "guestbook")["status"]["history"]
        assert [h["revision"] for h in hist] == [sha1, sha2]
        assert [h["id"] for h in hist] == [1, 2]

        got = s.v6("app", "get", "guestbook", check=True).stdout
        assert "Sync Status:        Synced to %s" % sha2 in got
        assert "Health Status:      Healthy" in got
        hist_out = s.v6("app", "history", "guestbook", check=True).stdout
        assert sha1 in hist_out and sha2 in hist_out
    finally:
        gh.close()


def test_self_heal_reverts_a_manual_edit_and_nothing_stays_out_of_sync(server, workdir):
    """selfHeal: an edit made by hand (kubectl-style patch) is put back from
    git. A synced Application whose objects the server defaulted (Service
    cluster IP, Deployment strategy, pod template defaults) and a Deployment
    scaled by hand where git does not set replicas stay Synced."""
    s = server
    repo = Repo(workdir)
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    repo.write("app/all.yaml", yaml_docs(configmap("settings", {"color": "blue"}),
                                         deployment("web", "v1"), svc))
    sha = repo.commit("first")
    apply(s, application("healer", repo.file_url,
                         automated={"prune": True, "selfHeal": True}))
    synced_to(s, "healer", sha)
    s.json("PATCH", "/api/v1/namespaces/%s/configmaps/settings" % DEST,
           {"data": {"color": "red"}},
           headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    wait_for("selfHeal put blue back",
             lambda: cm(s, "settings")["data"] == {"color": "blue"}, timeout=30)
    wait_for("the heal recorded", lambda: len(get_app(s, "healer")["status"]
                                              .get("history", [])) == 2, timeout=30)
    # replicas is not in git: a manual scale is not drift
    s.v6("scale", "deployment/web", "--replicas", "2", "-n", DEST, check=True)
    wait_for("2 available", lambda: deploy(s, "web")["status"].get("availableReplicas") == 2,
             timeout=30)
    rv = get_app(s, "healer")["metadata"]["resourceVersion"]
    time.sleep(1.5)
    a = get_app(s, "healer")
    assert a["status"]["sync"]["status"] == "Synced", a["status"]
    assert a["metadata"]["resourceVersion"] == rv  # idle: nothing written
    assert len(a["status"]["history"]) == 2  # no sync for defaults or the scale


def test_manual_app_shows_out_of_sync_diff_and_syncs_on_request(server, workdir):
    """Without automated sync a change in git leaves the Application
    OutOfSync; `v6 app diff` shows the change (exit 1), `v6 app sync`
    applies it and waits for the operation."""
    s = server
    repo = Repo(workdir)
    repo.write("app/config.yaml", yaml_docs(configmap("settings", {"color": "blue"})))
    sha1 = repo.commit("first")
    apply(s, application("manual", repo.file_url))
    wait_for("OutOfSync before any sync", lambda: get_app(s, "manual").get("status", {})
             .get("sync", {}).get("status") == "OutOfSync", timeout=30)
    assert cm(s, "settings") is None
    p = s.v6("app", "sync", "manual")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Phase:              Succeeded" in p.stdout
    synced_to(s, "manual", sha1)
    repo.write("app/config.yaml", yaml_docs(configmap("settings", {"color": "green"})))
    sha2 = repo.commit("second")
    webhook(s, repo.file_url)
    wait_for("OutOfSync at the new commit", lambda: get_app(s, "manual")["status"]["sync"]
             == dict(get_app(s, "manual")["status"]["sync"], status="OutOfSync",
                     revision=sha2), timeout=30)
    d = s.v6("app", "diff", "manual")
    assert d.returncode == 1, d.stdout + d.stderr
    assert "-  color: blue" in d.stdout and "+  color: green" in d.stdout, d.stdout
    assert cm(s, "settings")["data"] == {"color": "blue"}
    # a dry run says what the sync would do and changes nothing
    rv = get_app(s, "manual")["metadata"]["resourceVersion"]
    p = s.v6("app", "sync", "manual", "--dry-run=server")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout == "configmap/settings configured (server dry run)\n", p.stdout
    assert cm(s, "settings")["data"] == {"color": "blue"}
    assert get_app(s, "manual")["metadata"]["resourceVersion"] == rv
    bad = s.v6("app", "sync", "manual", "--dry-run=sometimes")
    assert bad.returncode != 0 and "dry-run" in bad.stderr, bad.stderr
    s.v6("app", "sync", "manual", check=True)
    assert cm(s, "settings")["data"] == {"color": "green"}
    assert s.v6("app", "diff", "manual").returncode == 0
    p = s.v6("app", "sync", "manual", "--dry-run")
    assert p.stdout == "application manual is synced to %s: nothing to change (dry run)\n" \
        % sha2, p.stdout


def test_broken_commit_leaves_running_state_and_marks_degraded(server, workdir):
    """A commit with an invalid manifest is not applied, not even its valid
    files: the running objects stay as they were and the Application is
    Degraded with a ComparisonError naming the file, line and field. The
    fix commit syncs again."""
    s = server
    repo = Repo(workdir)
    repo.write("app/a-config.yaml", yaml_docs(configmap("settings", {"color": "blue"})))
    repo.write("app/web.yaml", yaml_docs(deployment("web", "v1")))
    sha1 = repo.commit("good")
    apply(s, application("fragile", repo.file_url, automated={"prune": True}))
    synced_to(s, "fragile", sha1)
    before = deploy(s, "web")
    repo.write("app/a-config.yaml", yaml_docs(configmap("settings", {"color": "red"})))
    bad = deployment("web", "v2")
    bad["spec"]["replicas"] = "two"
    repo.write("app/web.yaml", yaml_docs(bad))
    sha2 = repo.commit("broken")
    webhook(s, repo.file_url)

    def degraded():
        st = get_app(s, "fragile").get("status", {})
        return (st.get("health", {}).get("status") == "Degraded"
                and st.get("sync", {}).get("revision") == sha2) and st
    st = wait_for("Degraded", degraded, timeout=30)
    conds = [c for c in st["conditions"] if c["type"] == "ComparisonError"]
    assert conds, st
    msg = conds[0]["message"]
    assert "app/web.yaml" in msg and "spec.replicas" in msg, msg
    assert st["sync"]["status"] == "Unknown"
    time.sleep(1)
    assert cm(s, "settings")["data"] == {"color": "blue"}  # nothing half-applied
    after = deploy(s, "web")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    got = s.v6("app", "get", "fragile", check=True).stdout
    assert "ComparisonError" in got and "spec.replicas" in got
    repo.write("app/web.yaml", yaml_docs(deployment("web", "v3")))
    sha3 = repo.commit("fixed")
    webhook(s, repo.file_url)
    synced_to(s, "fragile", sha3)
    assert cm(s, "settings")["data"] == {"color": "red"}
    assert "ComparisonError" not in json.dumps(get_app(s, "fragile")["status"])


def test_force_push_and_deleted_branch(server, workdir):
    """A branch force-pushed to an unrelated commit is followed (its old
    commit is gone from the branch); when the branch is deleted the
    Application says it cannot resolve it and leaves the running state."""
    s = server
    repo = Repo(workdir)
    repo.write("app/config.yaml", yaml_docs(configmap("settings", {"v": "1"})))
    repo.commit("on main")
    git(repo.work, "checkout", "-q", "-b", "feature")
    repo.write("app/config.yaml", yaml_docs(configmap("settings", {"v": "feature-1"})))
    sha1 = repo.commit("feature 1", branch="feature")
    apply(s, application("feat", repo.file_url, revision="feature",
                         automated={"prune": True}))
    synced_to(s, "feat", sha1)
    git(repo.work, "reset", "-q", "--hard", "HEAD~1")
    repo.write("app/config.yaml", yaml_docs(configmap("settings", {"v": "rewritten"})))
    sha2 = repo.commit("rewritten history", branch="feature", force=True)
    assert sha2 != sha1
    webhook(s, repo.file_url)
    synced_to(s, "feat", sha2)
    assert cm(s, "settings")["data"] == {"v": "rewritten"}
    git(repo.work, "push", "-q", "origin", ":feature")
    webhook(s, repo.file_url)

    def unresolved():
        st = get_app(s, "feat").get("status", {})
        return any("unable to resolve 'feature'" in c.get("message", "")
                   for c in st.get("conditions", [])) and st
    st = wait_for("branch gone reported", unresolved, timeout=30)
    assert st["health"]["status"] == "Degraded"
    assert cm(s, "settings")["data"] == {"v": "rewritten"}


def test_rollback_to_a_history_id(server, workdir):
    """Two synced commits, then `v6 app rollback NAME 1` brings the first
    revision's objects back (auto-sync must be off, as in Argo CD)."""
    s = server
    repo = Repo(workdir)
    repo.write("app/config.yaml", yaml_docs(configmap("settings", {"v": "1"})))
    sha1 = repo.commit("one")
    apply(s, application("rb", repo.file_url, automated={"prune": True}))
    synced_to(s, "rb", sha1)
    repo.write("app/config.yaml", yaml_docs(configmap("settings", {"v": "2"})))
    sha2 = repo.commit("two")
    webhook(s, repo.file_url)
    synced_to(s, "rb", sha2)
    p = s.v6("app", "rollback", "rb", "1")
    assert p.returncode == 1 and "auto-sync is enabled" in p.stderr
    a = application("rb", repo.file_url)
    apply(s, a)
    p = s.v6("app", "rollback", "rb", "1")
    assert p.returncode == 0, p.stdout + p.stderr
    assert cm(s, "settings")["data"] == {"v": "1"}
    st = get_app(s, "rb")["status"]
    assert st["operationState"]["syncResult"]["revision"] == sha1
    assert [h["revision"] for h in st["history"]] == [sha1, sha2, sha1]
    # compared with git's main again (still at two) once the rollback is done
    wait_for("OutOfSync against main", lambda: get_app(s, "rb")["status"]["sync"] == dict(
        get_app(s, "rb")["status"]["sync"], status="OutOfSync", revision=sha2), timeout=30)
    assert cm(s, "settings")["data"] == {"v": "1"}  # no auto-sync: stays rolled back
    assert s.v6("app", "rollback", "rb", "9").returncode == 1


def test_private_repository_with_a_repository_secret(server, workdir):
    """A repository behind basic auth: without credentials the Application
    reports the fetch error; a Secret labelled
    argocd.argoproj.io/secret-type=repository gives them, the sync happens,
    and the password appears in no log line and no status."""
    s = server
    repo = Repo(workdir)
    password = "s3cret-PW-%d" % os.getpid()
    gh = GitHTTP(workdir, auth=("deploy", password))
    try:
        repo.write("app/config.yaml", yaml_docs(configmap("settings", {"v": "private"})))
        sha = repo.commit("one")
        apply(s, application("private", gh.url(), automated={}))

        def failed():
            st = get_app(s, "private").get("status", {})
            return any("Failed to load target state" in c.get("message", "")
                       for c in st.get("conditions", [])) and st
        wait_for("fetch refused", failed, timeout=30)
        apply(s, {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": "private-repo", "labels": {
                      "argocd.argoproj.io/secret-type": "repository"}},
                  "stringData": {"url": gh.url(), "username": "deploy",
                                 "password": password}})
        webhook(s, gh.url())
        synced_to(s, "private", sha)
        assert cm(s, "settings")["data"] == {"v": "private"}
        assert password not in json.dumps(get_app(s, "private"))
        for name in os.listdir(s.data_dir):
            path = os.path.join(s.data_dir, name)
            if name.endswith(".log") and os.path.isfile(path):
                with open(path, errors="replace") as f:
                    assert password not in f.read(), name
    finally:
        gh.close()


def test_https_repository_with_a_self_signed_certificate(server, workdir):
    """https through git's smart HTTP protocol: a server whose certificate
    no system CA signed is refused with the certificate named; a repository
    Secret with insecure: "true" (Argo CD's field) lets the fetch go
    through TLS and the sync happen."""
    s = server
    repo = Repo(workdir)
    gh = GitHTTP(workdir, tls=True)
    try:
        assert gh.url().startswith("https://127.0.0.1:")
        repo.write("app/config.yaml", yaml_docs(configmap("settings", {"v": "tls"})))
        sha = repo.commit("one")
        apply(s, application("tls", gh.url(), automated={}))

        def refused():
            st = get_app(s, "tls").get("status", {})
            return [c["message"] for c in st.get("conditions", [])
                    if "Failed to load target state" in c.get("message", "")]
        msg = wait_for("certificate refused", refused, timeout=30)[0]
        assert "certificate" in msg.lower(), msg
        assert cm(s, "settings") is None
        apply(s, {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": "tls-repo", "labels": {
                      "argocd.argoproj.io/secret-type": "repository"}},
                  "stringData": {"url": gh.url(), "insecure": "true"}})
        webhook(s, gh.url())
        synced_to(s, "tls", sha)
        assert cm(s, "settings")["data"] == {"v": "tls"}
        assert gh.requests > 0
    finally:
        gh.close()


def test_sync_waves_hooks_and_kill9_resume(server, workdir):
    """Waves run in order, each waiting for the previous one to be healthy:
    a PreSync Job, wave 0 ConfigMap, wave 1 a Deployment that is ready only
    after 4 s, wave 2 a ConfigMap, then a PostSync Job. The server is
    killed (kill -9) while wave 1 waits: after the restart the same
    operation resumes — wave 2 still comes only after wave 1 is healthy,
    the PreSync hook is not run again, and the operation succeeds."""
    s = server
    repo = Repo(workdir)
    repo.write("app/hooks.yaml", yaml_docs(
        hook_job("migrate", "PreSync", "sleep 1", policy="HookSucceeded"),
        hook_job("smoke", "PostSync", "exit 0")))
    repo.write("app/waves.yaml", yaml_docs(
        configmap("first", {"w": "0"}, wave=0),
        deployment("slow", "v1", wave=1, ready_after=4),
        configmap("last", {"w": "2"}, wave=2)))
    sha = repo.commit("waves")
    apply(s, application("waves", repo.file_url, automated={"prune": True}))

    def waiting_on_wave1():
        os_ = get_app(s, "waves").get("status", {}).get("operationState", {})
        return "waiting for wave 1" in os_.get("message", "") and os_
    try:
        os_ = wait_for("wave 1 in progress", waiting_on_wave1, timeout=60)
    except AssertionError as e:
        raise AssertionError("%s; the Application's status: %s" % (
            e, json.dumps(get_app(s, "waves").get("status"))))
    started = os_["startedAt"]
    assert cm(s, "first") is not None
    assert cm(s, "last") is None
    s.restart()
    d = deploy(s, "slow")
    avail = d and d.get("status", {}).get("availableReplicas")
    if not avail:
        assert cm(s, "last") is None  # wave 2 not before wave 1 is healthy
    synced_to(s, "waves", sha)
    a = get_app(s, "waves")
    op = a["status"]["operationState"]
    assert op["startedAt"] == started  # the same operation, resumed
    assert op["phase"] == "Succeeded"
    hooks = {r["name"]: r for r in op["syncResult"]["resources"] if r.get("hookType")}
    assert hooks["migrate"]["hookPhase"] == "Succeeded"
    assert hooks["smoke"]["hookPhase"] == "Succeeded"
    # PreSync ran once and was deleted on success; PostSync kept
    assert get_obj(s, "/apis/batch/v1/namespaces/%s/jobs/migrate" % DEST) is None
    assert get_obj(s, "/apis/batch/v1/namespaces/%s/jobs/smoke" % DEST) is not None
    # wave 2 was created after wave 1 became available
    last = cm(s, "last")
    slow = deploy(s, "slow")
    avail_at = [c["lastTransitionTime"] for c in slow["status"]["conditions"]
                if c["type"] == "Available"][0]
    assert last["metadata"]["creationTimestamp"] >= avail_at
    assert cm(s, "first")["metadata"]["creationTimestamp"] <= \
        slow["metadata"]["creationTimestamp"]
    assert len(a["status"]["history"]) == 1


def test_failed_sync_retries_with_backoff_then_runs_syncfail_hook(server, workdir):
    """An object the API refuses at sync time (its namespace does not exist)
    fails the operation; syncPolicy.retry tries again after the back-off,
    `limit` times, then the operation is Failed with the object and the
    reason, the SyncFail hook Job runs, and automated sync does not try the
    same revision again."""
    s = server
    repo = Repo(workdir)
    bad = configmap("bad", {"k": "v"})
    bad["metadata"]["namespace"] = "does-not-exist"
    repo.write("app/all.yaml", yaml_docs(configmap("good", {"k": "v"}), bad,
                                         hook_job("notify", "SyncFail", "exit 0")))
    sha = repo.commit("bad namespace")
    apply(s, application("failing", repo.file_url, automated={},
                         retry={"limit": 2, "backoff": {"duration": "1s", "factor": 2}}))
    seen = []

    def failed():
        op = get_app(s, "failing").get("status", {}).get("operationState", {})
        if op.get("message") and op["message"] not in seen:
            seen.append(op["message"])
        return op.get("phase") == "Failed" and op
    op = wait_for("operation Failed", failed, timeout=60, interval=0.05)
    assert op["retryCount"] == 2
    # the back-off doubles (factor 2): 1 s before the first retry, 2 s before the second
    retries = [m.split(":")[0] for m in seen if m.startswith("retrying")]
    assert retries == ["retrying attempt #1 in 1s", "retrying attempt #2 in 2s"], seen
    took = calendar.timegm(time.strptime(op["finishedAt"], "%Y-%m-%dT%H:%M:%SZ")) - \
        calendar.timegm(time.strptime(op["startedAt"], "%Y-%m-%dT%H:%M:%SZ"))
    assert took >= 2, op  # the back-offs were waited (3 s, whole seconds)
    assert "ConfigMap/bad" in op["message"] and "not found" in op["message"], op
    assert op["syncResult"]["revision"] == sha
    wait_for("SyncFail hook ran", lambda: (get_obj(
        s, "/apis/batch/v1/namespaces/%s/jobs/notify" % DEST) or {}).get("status", {})
        .get("succeeded") == 1, timeout=60)
    assert cm(s, "good") is not None
    time.sleep(2)
    again = get_app(s, "failing")["status"]["operationState"]
    assert again["startedAt"] == op["startedAt"] and again["phase"] == "Failed"
    assert get_app(s, "failing")["status"]["sync"]["status"] == "OutOfSync"


def test_deleting_with_the_resources_finalizer_cascades(server, workdir):
    """With resources-finalizer.argocd.argoproj.io, deleting the Application
    deletes what it synced first; without it, the objects stay."""
    s = server
    repo = Repo(workdir)
    repo.write("app/config.yaml", yaml_docs(configmap("settings", {"v": "1"})))
    sha = repo.commit("one")
    a = application("cascade", repo.file_url, automated={})
    a["metadata"]["finalizers"] = ["resources-finalizer.argocd.argoproj.io"]
    apply(s, a, application("keep", repo.file_url, automated={}, dest="gitops-keep"))
    synced_to(s, "cascade", sha)
    synced_to(s, "keep", sha)
    s.v6("delete", "application", "cascade", "keep", check=True)
    wait_for("cascade gone", lambda: s.request("GET", APPS + "/cascade")[0] == 404,
             timeout=30)
    assert cm(s, "settings") is None
    assert cm(s, "settings", ns="gitops-keep") is not None


def test_kustomize_overlay_source(server, workdir):
    """A kustomize source (an overlay over a base, found by its
    kustomization.yaml): the rendered objects are synced — name prefix,
    replicas, the configMapGenerator's hashed name referenced from the
    Deployment. A change of a generated value makes a new ConfigMap, the
    Deployment follows it and prune removes the old one. A broken
    kustomization is reported with its file, nothing applied."""
    s = server
    repo = Repo(workdir)
    repo.write("base/deploy.yaml", yaml_docs(deployment("web", "v1")))
    repo.write("base/kustomization.yaml",
               "resources:\n- deploy.yaml\n"
               "configMapGenerator:\n- name: web-config\n  literals:\n  - color=blue\n")
    repo.write("overlays/prod/kustomization.yaml",
               "resources:\n- ../../base\nnamePrefix: prod-\n"
               "replicas:\n- name: web\n  count: 2\n")
    sha = repo.commit("kustomize")
    apply(s, application("kz", repo.file_url, path="overlays/prod",
                         automated={"prune": True}))
    synced_to(s, "kz", sha)
    d = deploy(s, "prod-web")
    assert d["spec"]["replicas"] == 2
    _, cms = s.json("GET", "/api/v1/namespaces/%s/configmaps" % DEST, expect=200)
    gen = [c["metadata"]["name"] for c in cms["items"]
           if c["metadata"]["name"].startswith("prod-web-config-")]
    assert len(gen) == 1, gen
    assert get_app(s, "kz")["status"]["sourceType"] == "Kustomize"
    assert cm(s, gen[0])["data"] == {"color": "blue"}

    repo.write("base/kustomization.yaml",
               "resources:\n- deploy.yaml\n"
               "configMapGenerator:\n- name: web-config\n  literals:\n  - color=green\n")
    sha2 = repo.commit("green")
    webhook(s, repo.file_url)
    synced_to(s, "kz", sha2)
    wait_for("old generated ConfigMap pruned", lambda: cm(s, gen[0]) is None, timeout=30)
    _, cms = s.json("GET", "/api/v1/namespaces/%s/configmaps" % DEST, expect=200)
    gen2 = [c["metadata"]["name"] for c in cms["items"]
            if c["metadata"]["name"].startswith("prod-web-config-")]
    assert len(gen2) == 1 and gen2 != gen and cm(s, gen2[0])["data"] == {"color": "green"}

    repo.write("overlays/prod/kustomization.yaml",
               "resources:\n- ../../base\nnamePrefix: prod-\nbogusField: 1\n")
    sha3 = repo.commit("broken kustomization")
    webhook(s, repo.file_url)

    def degraded():
        st = get_app(s, "kz").get("status", {})
        return (st.get("health", {}).get("status") == "Degraded"
                and st.get("sync", {}).get("revision") == sha3) and st
    st = wait_for("Degraded", degraded, timeout=30)
    msg = [c["message"] for c in st["conditions"] if c["type"] == "ComparisonError"][0]
    assert "overlays/prod" in msg and "kustomization" in msg, msg
    assert deploy(s, "prod-web")["spec"]["replicas"] == 2


def test_polling_and_allow_empty(make_server, workdir):
    """Without a webhook the repository is polled every --app-resync-period.
    A commit that leaves the path without manifests is not synced by
    automated prune (it would delete everything) until allowEmpty says so."""
    s = make_server("--app-resync-period", "1s")
    repo = Repo(workdir)
    repo.write("app/config.yaml", yaml_docs(configmap("settings", {"v": "1"})))
    repo.write("app/README.md", "the manifests of the app\n")
    sha1 = repo.commit("one")
    apply(s, application("polled", repo.file_url, automated={"prune": True}))
    synced_to(s, "polled", sha1)
    repo.write("app/config.yaml", yaml_docs(configmap("settings", {"v": "2"})))
    sha2 = repo.commit("two")
    synced_to(s, "polled", sha2)  # found by the poll alone
    assert cm(s, "settings")["data"] == {"v": "2"}
    repo.remove("app/config.yaml")
    sha3 = repo.commit("empty")
    wait_for("OutOfSync at the empty commit", lambda: get_app(s, "polled")["status"]["sync"]
             .get("revision") == sha3, timeout=30)
    time.sleep(2)
    a = get_app(s, "polled")
    assert a["status"]["sync"]["status"] == "OutOfSync"
    assert cm(s, "settings") is not None  # not wiped
    apply(s, application("polled", repo.file_url,
                         automated={"prune": True, "allowEmpty": True}))
    synced_to(s, "polled", sha3)
    wait_for("pruned", lambda: cm(s, "settings") is None, timeout=30)


def test_git_protocol_through_git_daemon(server, workdir):
    """git:// served by `git daemon` on a loopback port works as a source."""
    s = server
    repo = Repo(workdir)
    repo.write("app/config.yaml", yaml_docs(configmap("settings", {"via": "git-daemon"})))
    sha = repo.commit("one")
    port = conftest.free_port()
    d = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all",
                          "--listen=127.0.0.1", "--port=%d" % port,
                          "--base-path=" + workdir, workdir],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = "git://127.0.0.1:%d/origin.git" % port
        wait_for("git daemon up", lambda: subprocess.run(
            ["git", "ls-remote", url], capture_output=True, timeout=10).returncode == 0,
            timeout=20)
        apply(s, application("daemon", url, automated={}))
        synced_to(s, "daemon", sha)
        assert cm(s, "settings")["data"] == {"via": "git-daemon"}
    finally:
        d.terminate()
        d.wait(timeout=10)


class SSHServer:
    """Dropbear (Debian's dropbear-bin: the binaries, no service) on a
    loopback port, for ssh:// sources. It runs in a mount namespace of its
    own whose /root is a private tmpfs holding only .ssh/authorized_keys with
    the test's key, so the machine's own /root is neither read nor changed;
    `git-upload-pack` runs as root in that namespace, so it sees the test's
    repositories under /tmp."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "ssh")
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "id_ecdsa")
        subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-m", "PEM", "-N", "", "-f",
                        self.key], check=True, timeout=30)
        hostkey = os.path.join(self.dir, "host_key")
        subprocess.run(["dropbearkey", "-t", "ecdsa", "-f", hostkey], check=True,
                       capture_output=True, timeout=30)
        self.port = conftest.free_port()
        self.known_hosts = self.known_hosts_line(hostkey)
        other = os.path.join(self.dir, "other_key")  # another machine's key
        subprocess.run(["dropbearkey", "-t", "ecdsa", "-f", other], check=True,
                       capture_output=True, timeout=30)
        self.wrong_known_hosts = self.known_hosts_line(other)
        with open(self.key + ".pub") as f:
            pub = f.read()
        script = ("mount -t tmpfs -o mode=0700 tmpfs /root && mkdir -m 0700 /root/.ssh && "
                  "printf '%%s' \"$PUB\" > /root/.ssh/authorized_keys && "
                  "chmod 0600 /root/.ssh/authorized_keys && "
                  "exec dropbear -F -E -s -j -k -p 127.0.0.1:%d -r %s -P %s/pid"
                  % (self.port, hostkey, self.dir))
        self.log = open(os.path.join(self.dir, "dropbear.log"), "w")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                      "sh", "-c", script], env=dict(os.environ, PUB=pub),
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for("dropbear listening", self.listening, timeout=20)

    def known_hosts_line(self, key):
        """The known_hosts line for this server's address with key's public half."""
        p = subprocess.run(["dropbearkey", "-y", "-f", key], check=True,
                           capture_output=True, text=True, timeout=30)
        pub = [ln for ln in p.stdout.splitlines() if ln.startswith("ecdsa-")][0]
        return "[127.0.0.1]:%d %s" % (self.port, " ".join(pub.split()[:2]))

    def listening(self):
        assert self.proc.poll() is None, "dropbear exited"
        import socket
        with socket.socket() as c:
            c.settimeout(1)
            return c.connect_ex(("127.0.0.1", self.port)) == 0

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=10)
        self.log.close()


def lsan_ssh(monkeypatch, tmp_path):
    """Debian's libgit2 1.5 leaks in its ssh transport (a known-hosts list from
    libssh2_knownhost_init and a buffer of its own, per connection): under
    LeakSanitizer the processes of the calling test ignore leaks allocated
    inside those two libraries; every other test still reports any leak,
    libgit2's included."""
    supp = str(tmp_path / "lsan-ssh.supp")  # outlives the server's stop
    with open(supp, "w") as f:
        f.write("leak:libssh2_knownhost_init\nleak:libgit2.so\n")
    old = os.environ.get("LSAN_OPTIONS", "")
    monkeypatch.setenv("LSAN_OPTIONS", (old + ":" if old else "") + "suppressions=" + supp)


def condition(s, name, text):
    """The Application's condition message holding text, once there is one."""
    def check():
        for c in get_app(s, name).get("status", {}).get("conditions", []):
            if text in c.get("message", ""):
                return c["message"]
        return None
    return wait_for("condition saying %r" % text, check, timeout=30)


def test_ssh_source_with_a_private_key_secret(make_server, workdir, monkeypatch, tmp_path):
    """An ssh:// repository: the server's host key must be in known hosts
    (the repository Secret's sshKnownHosts, or Argo CD's ConfigMap
    argocd-ssh-known-hosts-cm): an unknown host and a changed key fail the
    fetch with the reason; with a key the server knows, a repository Secret
    with sshPrivateKey gives access, the sync happens, and the key appears in
    no status or log."""
    lsan_ssh(monkeypatch, tmp_path)
    s = make_server()
    repo = Repo(workdir)
    repo.write("app/config.yaml", yaml_docs(configmap("settings", {"via": "ssh"})))
    sha = repo.commit("one")
    ssh = SSHServer(workdir)
    try:
        url = "ssh://root@127.0.0.1:%d%s" % (ssh.port, repo.bare)
        apply(s, application("viassh", url, automated={}))
        # nothing knows the server: refused before any key is offered
        msg = condition(s, "viassh", "host key verification failed")
        assert "Failed to load target state" in msg and "is not in known_hosts" in msg, msg
        assert "[127.0.0.1]:%d" % ssh.port in msg and "SHA256:" in msg, msg
        with open(ssh.key) as f:
            key = f.read()

        def repo_secret(**extra):
            apply(s, {"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "ssh-repo", "labels": {
                          "argocd.argoproj.io/secret-type": "repository"}},
                      "stringData": dict({"url": url, "sshPrivateKey": key}, **extra)})
            webhook(s, url)
        # a key, and a known_hosts entry for this address with another key
        repo_secret(sshKnownHosts="# ours\n" + ssh.wrong_known_hosts + "\n")
        msg = condition(s, "viassh", "key mismatch")
        assert "host key verification failed" in msg, msg
        assert get_app(s, "viassh").get("status", {}).get("sync", {}).get("revision") != sha
        with open(os.path.join(ssh.dir, "dropbear.log"), errors="replace") as f:
            assert "Pubkey auth succeeded" not in f.read()  # never authenticated
        # the right entry
        repo_secret(sshKnownHosts=ssh.known_hosts + "\n")
        synced_to(s, "viassh", sha)
        assert cm(s, "settings")["data"] == {"via": "ssh"}
        # a new commit over ssh too, the host known from Argo CD's ConfigMap, as
        # a hashed entry (ssh-keygen -H) after another host's
        hashed = os.path.join(ssh.dir, "known_hosts")
        with open(hashed, "w") as f:
            f.write(ssh.known_hosts + "\n")
        subprocess.run(["ssh-keygen", "-q", "-H", "-f", hashed], check=True,
                       capture_output=True, timeout=30)
        with open(hashed) as f:
            line = f.read()
        assert line.startswith("|1|") and "127.0.0.1" not in line, line
        apply(s, {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": "argocd-ssh-known-hosts-cm"},
                  "data": {"ssh_known_hosts": "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"
                           "AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n" + line}})
        repo_secret()
        repo.write("app/config.yaml", yaml_docs(configmap("settings", {"via": "ssh-2"})))
        sha2 = repo.commit("two")
        webhook(s, url)
        synced_to(s, "viassh", sha2)
        assert cm(s, "settings")["data"] == {"via": "ssh-2"}
        body = key.strip().splitlines()[1]
        assert body not in json.dumps(get_app(s, "viassh"))
        for name in os.listdir(s.data_dir):
            path = os.path.join(s.data_dir, name)
            if name.endswith(".log") and os.path.isfile(path):
                with open(path, errors="replace") as f:
                    assert body not in f.read(), name
        # the fetches went through dropbear, by public key
        with open(os.path.join(ssh.dir, "dropbear.log"), errors="replace") as f:
            log = f.read()
        assert "Pubkey auth succeeded for 'root'" in log, log[-2000:]
    finally:
        ssh.close()
