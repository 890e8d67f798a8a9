"""`v6 promote` (here dev -> test) into an environment that GitOps owns: the target Deployment
is synced by an Application, so the promotion becomes a commit on the
Application's branch (pushed over git's smart HTTP, or to a file:// repo)
and the Application syncs it; nothing is written to the target directly
(selfHeal would revert that). A plain manifest keeps its comments and
layout (only the image line changes); a kustomize overlay gets an `images:`
entry as `kustomize edit set image` writes one. An Application that tracks
a tag or HEAD cannot take a commit: refused, nothing pushed."""
import json
import os

import conftest
from gitserve import GitHTTP, Repo, git

LABEL = "environment.v6.dev/name"
APPS = "/apis/argoproj.io/v1alpha1/namespaces/default/applications"
OLD = "registry.example/shop/web:1.0"
NEW = "registry.example/shop/web:1.1"


def env_ns(server, name, env):
    server.json("POST", "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": name, "labels": {LABEL: env}}}, expect=201)


def manifest(image, comment="# the shop's web tier"):
    # YAML as people write it: comments and a field order of their own
    return """%s
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: %s   # bumped by promotions
        command: ["sleep", "3600"]
""" % (comment, image)


def application(name, url, path, revision="main"):
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"project": "default",
                     "source": {"repoURL": url, "targetRevision": revision, "path": path},
                     "destination": {"server": "https://kubernetes.default.svc",
                                     "namespace": "test"},
                     "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}}


def dev_web(s, image):
    s.v6("apply", "-n", "dev", "-f", "-", input=manifest(image), check=True)


def image_in_target(s):
    _, d = s.json("GET", "/apis/apps/v1/namespaces/test/deployments/web")
    c = (((d or {}).get("spec") or {}).get("template") or {}).get("spec", {})
    return (c.get("containers") or [{}])[0].get("image")


def synced(s, name):
    def check():
        _, a = s.json("GET", "%s/%s" % (APPS, name))
        st = (a or {}).get("status") or {}
        return st.get("sync", {}).get("status") == "Synced" and st["sync"].get("revision")
    return conftest.wait_for(check, 60, "application %s synced" % name)


def head(repo):
    return git(repo.bare, "rev-parse", "refs/heads/main")


def test_promote_through_git_edits_the_image_line_and_pushes_over_http(server, workdir):
    s = server
    env_ns(s, "dev", "dev")
    env_ns(s, "test", "test")
    repo = Repo(workdir)
    repo.write("prod/web.yaml", manifest(OLD))
    first = repo.commit("prod at 1.0")
    http = GitHTTP(workdir)
    try:
        url = http.url()
        s.v6("apply", "-f", "-", input=json.dumps(application("prod-web", url, "prod")),
             check=True)
        assert synced(s, "prod-web") == first
        assert image_in_target(s) == OLD
        dev_web(s, NEW)

        p = s.v6("promote", "deploy/web", "--from", "dev", "--to", "test", "--wait",
                 "--timeout", "90s", timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "promoting through git" in p.stdout and "pushed" in p.stdout, p.stdout
        assert "web: %s -> %s" % (OLD, NEW) in p.stdout, p.stdout

        # one commit on main, by the promotion, changing only the image
        new = head(repo)
        assert new != first
        assert git(repo.bare, "rev-parse", new + "^") == first
        msg = git(repo.bare, "log", "-1", "--format=%B", new)
        assert msg.startswith("promote deployment.apps/web from dev to test") or \
            msg.startswith("promote deployment/web from dev to test"), msg
        diff = git(repo.bare, "diff", "--unified=0", first, new)
        changed = [ln for ln in diff.splitlines()
                   if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
        assert changed == ["-        image: %s   # bumped by promotions" % OLD,
                           "+        image: %s   # bumped by promotions" % NEW], diff
        # the Application synced the commit and prod runs the new image
        assert synced(s, "prod-web") == new
        assert image_in_target(s) == NEW
        _, d = s.json("GET", "/apis/apps/v1/namespaces/test/deployments/web")
        assert "environment.v6.dev/promoted-from" not in \
            (d["metadata"].get("annotations") or {}), "written directly, not through git"

        # promoting again: nothing to commit
        p = s.v6("promote", "deploy/web", "--from", "dev", "--to", "test", timeout=60)
        assert p.returncode == 0 and "nothing to commit" in p.stdout, p.stdout + p.stderr
        assert head(repo) == new
    finally:
        http.close()


def test_promote_into_a_kustomize_overlay_and_refuse_a_tag(server, workdir):
    s = server
    env_ns(s, "dev", "dev")
    env_ns(s, "test", "test")
    repo = Repo(workdir)
    repo.write("base/web.yaml", manifest(OLD))
    repo.write("base/kustomization.yaml", "resources:\n- web.yaml\n")
    repo.write("overlays/prod/kustomization.yaml",
               "resources:\n- ../../base\ncommonLabels:\n  tier: web\n")
    first = repo.commit("overlay")
    s.v6("apply", "-f", "-", input=json.dumps(
        application("prod-kz", repo.file_url, "overlays/prod")), check=True)
    assert synced(s, "prod-kz") == first
    dev_web(s, NEW + "@sha256:" + "ab" * 32)

    p = s.v6("promote", "deploy/web", "--from", "dev", "--to", "test", "--wait",
             "--timeout", "90s", timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    new = head(repo)
    assert new != first
    kust = git(repo.bare, "show", new + ":overlays/prod/kustomization.yaml")
    # the entry for the image as the base names it; a digest pins it
    assert "name: registry.example/shop/web" in kust, kust
    assert "digest: sha256:" + "ab" * 32 in kust, kust
    assert "tier: web" in kust and "../../base" in kust, kust
    assert git(repo.bare, "show", new + ":base/web.yaml") == \
        git(repo.bare, "show", first + ":base/web.yaml")
    assert synced(s, "prod-kz") == new
    assert image_in_target(s) == "registry.example/shop/web@sha256:" + "ab" * 32

    # an Application on a tag: a commit cannot go there
    git(repo.work, "tag", "v1")
    git(repo.work, "push", "-q", "origin", "v1")
    s.v6("apply", "-f", "-", input=json.dumps(
        application("prod-kz", repo.file_url, "overlays/prod", revision="v1")), check=True)
    synced(s, "prod-kz")
    before = head(repo)
    dev_web(s, "registry.example/shop/web:1.2")
    p = s.v6("promote", "deploy/web", "--from", "dev", "--to", "test", timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "v1 is not a branch" in p.stderr, p.stderr
    assert head(repo) == before
    assert not os.path.exists(os.path.join(repo.bare, "refs", "heads", "v1"))
