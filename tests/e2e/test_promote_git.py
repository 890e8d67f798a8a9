"""`v6 promote` into an environment that GitOps owns: the target Deployment
is synced by an Application, so the promotion becomes a commit on the
Application's branch (pushed over git's smart HTTP, to a file:// repo, or
over ssh with the host key checked) and the Application syncs it; nothing
is written to the target directly (selfHeal would revert that). The whole
template difference goes (image, env, args, resources, probes) and the data
of the ConfigMaps it uses; Secrets only by reference. A plain manifest is
edited in place (only the changed lines differ, comments stay); a kustomize
overlay gets its `images:` entry and configMapGenerator literals edited in
place and the rest as a patch file it lists. An Application that tracks a
tag or HEAD cannot take a commit: refused, nothing pushed."""
import json
import os
import subprocess

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

        # --dry-run=server: the commit's diff, nothing pushed, nothing written
        rv = s.json("GET", "/apis/apps/v1/namespaces/test/deployments/web")[1][
            "metadata"]["resourceVersion"]
        p = s.v6("promote", "deploy/web", "--from", "dev", "--to", "test",
                 "--dry-run=server", timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        out = p.stdout.split("\n")
        assert "--- a/prod/web.yaml" in out and "+++ b/prod/web.yaml" in out, p.stdout
        assert any(l.startswith("-") and "image: %s   # bumped" % OLD in l for l in out), \
            p.stdout
        assert any(l.startswith("+") and "image: %s   # bumped" % NEW in l for l in out), \
            p.stdout
        assert out[-2].endswith("nothing pushed (dry run)"), p.stdout
        assert not any(l.startswith("pushed ") for l in out), p.stdout
        assert head(repo) == first
        assert s.json("GET", "/apis/apps/v1/namespaces/test/deployments/web")[1][
            "metadata"]["resourceVersion"] == rv

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


def repo_secret(s, url, insecure):
    # "false" rather than no key: apply merges stringData into data, so a
    # key dropped from stringData would stay in data (as with kubectl)
    data = {"url": url, "insecure": "true" if insecure else "false"}
    s.v6("apply", "-f", "-", check=True, input=json.dumps(
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": "tls-repo", "namespace": "default",
                      "labels": {"argocd.argoproj.io/secret-type": "repository"}},
         "stringData": data}))


def test_promote_pushes_over_https_with_an_insecure_repository_secret(server, workdir):
    """The push goes through TLS to a self-signed git server when the
    repository Secret says insecure: "true" (Argo CD's field), as the fetch
    does; without it the certificate is refused and nothing is pushed."""
    s = server
    env_ns(s, "dev", "dev")
    env_ns(s, "test", "test")
    repo = Repo(workdir)
    repo.write("prod/web.yaml", manifest(OLD))
    first = repo.commit("prod at 1.0")
    gh = GitHTTP(workdir, tls=True)
    try:
        url = gh.url()
        assert url.startswith("https://127.0.0.1:")
        repo_secret(s, url, insecure=True)
        s.v6("apply", "-f", "-", input=json.dumps(application("prod-web", url, "prod")),
             check=True)
        assert synced(s, "prod-web") == first
        dev_web(s, NEW)

        # without insecure: the checkout for the commit refuses the certificate
        repo_secret(s, url, insecure=False)
        p = s.v6("promote", "deploy/web", "--from", "dev", "--to", "test", timeout=60)
        assert p.returncode != 0 and "certificate" in p.stderr.lower(), p.stdout + p.stderr
        assert head(repo) == first

        repo_secret(s, url, insecure=True)
        pushes = gh.requests
        p = s.v6("promote", "deploy/web", "--from", "dev", "--to", "test", "--wait",
                 "--timeout", "90s", timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "pushed" in p.stdout, p.stdout
        new = head(repo)
        assert new != first and git(repo.bare, "rev-parse", new + "^") == first
        assert gh.requests > pushes
        diff = git(repo.bare, "diff", "--unified=0", first, new)
        assert "+        image: %s   # bumped by promotions" % NEW in diff, diff
        assert synced(s, "prod-web") == new
        assert image_in_target(s) == NEW
    finally:
        gh.close()


KUST = """# prod: the shared base, labelled
resources:
- ../../base   # the shop
commonLabels:
  tier: web    # for the dashboards
"""


def test_promote_into_a_kustomize_overlay_and_refuse_a_tag(server, workdir):
    s = server
    env_ns(s, "dev", "dev")
    env_ns(s, "test", "test")
    repo = Repo(workdir)
    repo.write("base/web.yaml", manifest(OLD))
    repo.write("base/kustomization.yaml", "resources:\n- web.yaml\n")
    repo.write("overlays/prod/kustomization.yaml", KUST)
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
    # the entry for the image as the base names it, a digest pinning it, added
    # below the user's lines, which stay as they were
    assert kust == (KUST + "images:\n- name: registry.example/shop/web\n"
                    "  digest: sha256:%s" % ("ab" * 32)), kust
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


# ---- the whole template and its config through git ---------------------------

BASE = """# the shop's web tier, shared by every environment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: registry.example/shop/web:1.0
        command: ["sh", "-c"]
        args: ['echo "v1 greeting=$GREETING mode=$MODE extra=$EXTRA flag=$FLAG"; exec sleep 3600']
        envFrom:
        - configMapRef: {name: web-flags}
        env:
        - name: GREETING
          valueFrom:
            configMapKeyRef: {name: web-config, key: GREETING}
        - name: MODE
          value: normal
        - name: LEGACY
          value: "yes"
        resources:
          limits: {cpu: 500m, memory: 64Mi}
        readinessProbe:
          exec: {command: ["true"]}
          periodSeconds: 1
        livenessProbe:
          exec: {command: ["true"]}
          periodSeconds: 5
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-flags   # a plain one, in the base
data:
  FLAG: "off"
"""

PROD_OVERLAY = """# prod overlay: owned by the platform team
resources:
- ../../base   # the shared base
configMapGenerator:
- name: web-config
  literals:
  - GREETING=hello   # what / says
  files:
  - motd.txt
"""

STAGING_PATCH = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: web
        args: ['echo "v2 greeting=$GREETING mode=$MODE extra=$EXTRA flag=$FLAG"; exec sleep 3600']
        env:
        - name: MODE
          value: fast
        - name: EXTRA
          value: "1"
        - name: LEGACY
          $patch: delete
        resources:
          limits: {memory: 96Mi}
        readinessProbe:
          periodSeconds: 2
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-flags
data:
  FLAG: "on"
"""


def pod_lines(s, ns, app):
    """The first log line of each live pod of app in ns (None while one has none)."""
    _, pods = s.json("GET", "/api/v1/namespaces/%s/pods?labelSelector=app%%3D%s" % (ns, app))
    out = []
    for p in pods["items"]:
        if p["metadata"].get("deletionTimestamp"):
            continue
        r = s.v6("logs", "-n", ns, p["metadata"]["name"])
        line = r.stdout.strip().splitlines()[:1]
        if r.returncode != 0 or not line:
            return None
        out.append(line[0])
    return out


def pods_say(s, ns, app, want, count):
    def check():
        lines = pod_lines(s, ns, app)
        return lines is not None and len(lines) == count and all(l == want for l in lines)
    conftest.wait_for(check, 90, "%s pods of %s/%s saying %r" % (count, ns, app, want))


def containers(s, ns):
    _, d = s.json("GET", "/apis/apps/v1/namespaces/%s/deployments/web" % ns)
    return d["spec"]["template"]["spec"]["containers"]


def changed_lines(repo, a, b, path):
    diff = git(repo.bare, "diff", "--unified=0", a, b, "--", path)
    return [ln for ln in diff.splitlines()
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]


def test_promote_template_and_config_into_a_kustomize_overlay(server, workdir):
    """staging -> prod where prod is an overlay that an Application syncs:
    env, args, resources, probes, a configMapGenerator's literal and file and
    a base's ConfigMap go into one commit (the overlay's generator edited,
    the rest as a patch file the kustomization lists), the user's comments stay, the base is untouched,
    kubectl kustomize reads the result, and prod's pods then run staging's
    template with staging's config."""
    s = server
    env_ns(s, "staging", "staging")
    env_ns(s, "prod", "prod")
    repo = Repo(workdir)
    repo.write("base/web.yaml", BASE)
    repo.write("base/kustomization.yaml", "resources:\n- web.yaml\n")
    repo.write("overlays/prod/kustomization.yaml", PROD_OVERLAY)
    repo.write("overlays/staging/kustomization.yaml", PROD_OVERLAY.replace("prod", "staging"))
    for env in ("prod", "staging"):
        repo.write("overlays/%s/motd.txt" % env, "welcome\n")
    first = repo.commit("prod and staging")
    app = application("prod-web", repo.file_url, "overlays/prod")
    app["spec"]["destination"]["namespace"] = "prod"
    s.v6("apply", "-f", "-", input=json.dumps(app), check=True)
    assert synced(s, "prod-web") == first
    pods_say(s, "prod", "web", "v1 greeting=hello mode=normal extra= flag=off", 2)

    # staging moves on: a patch of its own and another greeting
    repo.write("overlays/staging/web-patch.yaml", STAGING_PATCH)
    repo.write("overlays/staging/motd.txt", "welcome to v2\nmind the gap\n")
    repo.write("overlays/staging/kustomization.yaml",
               PROD_OVERLAY.replace("prod", "staging").replace("hello", "bonjour") +
               "patches:\n- path: web-patch.yaml\n")
    staged = repo.commit("staging: fast mode, bonjour")
    s.v6("apply", "-n", "staging", "-k", os.path.join(repo.work, "overlays/staging"),
         check=True)
    assert containers(s, "staging") != containers(s, "prod")

    p = s.v6("promote", "deploy/web", "--from", "staging", "--to", "prod", "--wait",
             "--timeout", "120s", timeout=150)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "configmap/web-config: data.GREETING set" in p.stdout, p.stdout
    assert "env[EXTRA] set" in p.stdout and "resources.limits.memory set" in p.stdout, p.stdout

    new = head(repo)
    assert git(repo.bare, "rev-parse", new + "^") == staged
    files = git(repo.bare, "show", "--format=", "--name-only", new).split()
    assert sorted(files) == ["overlays/prod/kustomization.yaml",
                             "overlays/prod/motd.txt",
                             "overlays/prod/promoted-deployments-web.yaml"], files
    # the generator's file, rewritten with staging's content
    assert git(repo.bare, "show", new + ":overlays/prod/motd.txt") == \
        "welcome to v2\nmind the gap"
    # the kustomization: the literal edited in place, the patch listed; comments stay
    assert changed_lines(repo, staged, new, "overlays/prod/kustomization.yaml") == [
        "-  - GREETING=hello   # what / says",
        "+  - GREETING=bonjour   # what / says",
        "+patches:",
        "+- path: promoted-deployments-web.yaml"]
    kust = git(repo.bare, "show", new + ":overlays/prod/kustomization.yaml")
    assert kust.startswith("# prod overlay: owned by the platform team\n"), kust
    patch = git(repo.bare, "show", new + ":overlays/prod/promoted-deployments-web.yaml")
    for want in ("kind: Deployment", "name: EXTRA", "value: fast", "memory: 96Mi",
                 "periodSeconds: 2", "v2 greeting", "kind: ConfigMap", "name: web-flags",
                 'FLAG: "on"', "$patch: delete"):
        assert want in patch, patch  # the base's plain ConfigMap: patched in the overlay
    assert "image:" not in patch, patch  # the same image: nothing to say

    # real kustomize (kubectl's) renders the commit to staging's template
    out = os.path.join(workdir, "checkout")
    git(workdir, "clone", "-q", repo.bare, out)
    k = subprocess.run(["kubectl", "kustomize", os.path.join(out, "overlays/prod")],
                       capture_output=True, text=True, timeout=60)
    assert k.returncode == 0, k.stderr
    for want in ("GREETING: bonjour", "value: fast", "name: EXTRA", "memory: 96Mi",
                 "periodSeconds: 2", "welcome to v2", 'FLAG: "on"'):
        assert want in k.stdout, k.stdout
    assert "LEGACY" not in k.stdout, k.stdout  # removed in staging: removed in prod

    # synced, rolled out: prod runs exactly staging's containers and config
    assert synced(s, "prod-web") == new
    assert containers(s, "prod") == containers(s, "staging")
    pods_say(s, "prod", "web", "v2 greeting=bonjour mode=fast extra=1 flag=on", 2)
    _, d = s.json("GET", "/apis/apps/v1/namespaces/prod/deployments/web")
    assert "environment.v6.dev/promoted-from" not in \
        (d["metadata"].get("annotations") or {}), "written directly, not through git"

    # again: the patch file is edited in place, and nothing differs now
    p = s.v6("promote", "deploy/web", "--from", "staging", "--to", "prod", timeout=60)
    assert p.returncode == 0 and "nothing to commit" in p.stdout, p.stdout + p.stderr
    assert head(repo) == new


SETTINGS = """# what the web tier says
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-settings
data:
  GREETING: hello   # said on /
  COLOR: blue
"""


def plain_web(mode="normal", secret=False):
    env = """        - name: GREETING
          valueFrom:
            configMapKeyRef: {name: web-settings, key: GREETING}   # from settings.yaml
        - name: MODE
          value: %s   # how fast
""" % mode
    if secret:
        env += """        - name: PASSWORD
          valueFrom:
            secretKeyRef: {name: db-creds, key: password}
"""
    return """# the web tier of the test environment
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
        image: registry.example/shop/web:1.0
        command: ["sh", "-c", 'echo "greeting=$GREETING mode=$MODE password=$PASSWORD"; exec sleep 3600']
        env:
%s""" % env


def secret(ns, password):
    return json.dumps({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "db-creds", "namespace": ns},
                       "stringData": {"password": password}})


def test_promote_plain_manifests_in_place_and_secrets_by_reference_only(server, workdir):
    """test -> staging where staging is a directory of plain manifests: the
    Deployment's env and the ConfigMap's value change in their own lines
    (comments kept); a Secret the source uses and the target lacks is
    refused (its value never goes to git), and once the target has its own
    Secret only the reference is committed."""
    s = server
    env_ns(s, "test", "test")
    env_ns(s, "staging", "staging")
    repo = Repo(workdir)
    repo.write("staging/web.yaml", plain_web())
    repo.write("staging/settings.yaml", SETTINGS)
    first = repo.commit("staging")
    app = application("staging-web", repo.file_url, "staging")
    app["spec"]["destination"]["namespace"] = "staging"
    s.v6("apply", "-f", "-", input=json.dumps(app), check=True)
    assert synced(s, "staging-web") == first
    pods_say(s, "staging", "web", "greeting=hello mode=normal password=", 1)

    s.v6("apply", "-n", "test", "-f", "-", input=secret("test", "s3cret-of-test"), check=True)
    s.v6("apply", "-n", "test", "-f", "-", input=SETTINGS.replace("hello", "bonjour"),
         check=True)
    s.v6("apply", "-n", "test", "-f", "-", input=plain_web("fast", secret=True), check=True)

    p = s.v6("promote", "deploy/web", "--from", "test", "--to", "staging", timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Secret db-creds" in p.stderr and "never writes a Secret's values into git" \
        in p.stderr, p.stderr
    assert head(repo) == first

    s.v6("apply", "-n", "staging", "-f", "-", input=secret("staging", "staging-pw"),
         check=True)
    p = s.v6("promote", "deploy/web", "--from", "test", "--to", "staging", "--wait",
             "--timeout", "120s", timeout=150)
    assert p.returncode == 0, p.stdout + p.stderr
    new = head(repo)
    assert changed_lines(repo, first, new, "staging/settings.yaml") == [
        "-  GREETING: hello   # said on /", "+  GREETING: bonjour   # said on /"]
    assert changed_lines(repo, first, new, "staging/web.yaml") == [
        "-          value: normal   # how fast",
        "+          value: fast   # how fast",
        "+        - name: PASSWORD",
        "+          valueFrom:",
        "+            secretKeyRef:",
        "+              name: db-creds",
        "+              key: password"]
    assert "s3cret-of-test" not in git(repo.bare, "show", new)
    assert synced(s, "staging-web") == new
    pods_say(s, "staging", "web", "greeting=bonjour mode=fast password=staging-pw", 1)


def test_promote_over_ssh_checks_the_host_key(make_server, workdir, monkeypatch, tmp_path):
    """The promotion's own fetch and push over ssh (dropbear) check the
    server's host key as the controller's do: with the repository Secret's
    sshKnownHosts the commit is pushed over ssh; with an entry of another
    key for that address the promotion stops with the reason, nothing
    pushed."""
    from test_gitops import SSHServer, lsan_ssh
    lsan_ssh(monkeypatch, tmp_path)
    home = tmp_path / "home"  # the CLI also reads ~/.ssh/known_hosts: none here
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    s = make_server()
    env_ns(s, "dev", "dev")
    env_ns(s, "test", "test")
    repo = Repo(workdir)
    repo.write("prod/web.yaml", manifest(OLD))
    first = repo.commit("prod at 1.0")
    ssh = SSHServer(workdir)
    try:
        url = "ssh://root@127.0.0.1:%d%s" % (ssh.port, repo.bare)
        with open(ssh.key) as f:
            key = f.read()

        def repo_secret(known):
            s.v6("apply", "-f", "-", check=True, input=json.dumps({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "ssh-repo", "namespace": "default", "labels": {
                    "argocd.argoproj.io/secret-type": "repository"}},
                "stringData": {"url": url, "sshPrivateKey": key, "sshKnownHosts": known}}))
        repo_secret(ssh.known_hosts + "\n")
        s.v6("apply", "-f", "-", input=json.dumps(application("prod-web", url, "prod")),
             check=True)
        assert synced(s, "prod-web") == first
        dev_web(s, NEW)
        p = s.v6("promote", "deploy/web", "--from", "dev", "--to", "test", "--wait",
                 "--timeout", "90s", timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        new = head(repo)
        assert new != first and "image: %s" % NEW in git(repo.bare, "show", new)
        assert synced(s, "prod-web") == new

        repo_secret(ssh.wrong_known_hosts + "\n")
        dev_web(s, "registry.example/shop/web:1.2")
        p = s.v6("promote", "deploy/web", "--from", "dev", "--to", "test", timeout=60)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "host key verification failed" in p.stderr and "key mismatch" in p.stderr, \
            p.stderr
        assert head(repo) == new
    finally:
        ssh.close()
