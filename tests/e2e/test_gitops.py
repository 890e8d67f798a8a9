"""GitOps end to end: Argo CD Applications synced from real git repositories.
Each test makes a bare repository, commits with the git CLI, and serves it
over loopback through `git http-backend` (CGI behind a small http.server in
this process, with basic auth for the private-repo story) or as file://.
A `v6 server` runs the Application controller; the stories check what a
user sees: the Application's sync / health status, the objects in the
destination namespace, `v6 app ...` and `v6 get applications`."""
import base64
import http.server
import json
import os
import subprocess
import threading
import time

import conftest

NS = "default"
DEST = "gitops-demo"
APPS = "/apis/argoproj.io/v1alpha1/namespaces/%s/applications" % NS


def wait_for(what, fn, timeout=60.0, interval=0.1):
    return conftest.wait_for(fn, timeout, what, interval)


# ---- a git repository and its loopback server ------------------------------

def git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com",
               HOME=cwd)
    p = subprocess.run(["git"] + list(args), cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p.stdout.strip()


class Repo:
    """A bare repository (origin.git) and a work tree that pushes to it."""

    def __init__(self, root, branch="main"):
        self.bare = os.path.join(root, "origin.git")
        self.work = os.path.join(root, "work")
        os.makedirs(self.work)
        git(root, "init", "-q", "--bare", "-b", branch, self.bare)
        git(self.bare, "config", "http.receivepack", "true")
        git(self.work, "init", "-q", "-b", branch)
        git(self.work, "remote", "add", "origin", self.bare)
        self.branch = branch

    def write(self, path, text):
        full = os.path.join(self.work, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)

    def remove(self, path):
        git(self.work, "rm", "-q", path)

    def commit(self, msg, branch=None, force=False):
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", msg)
        args = ["push", "-q"] + (["-f"] if force else []) + \
            ["origin", "HEAD:refs/heads/%s" % (branch or self.branch)]
        git(self.work, *args)
        return git(self.work, "rev-parse", "HEAD")

    @property
    def file_url(self):
        return "file://" + self.bare


class GitHTTP:
    """git's smart HTTP protocol on 127.0.0.1 (a free port): each request
    runs `git http-backend` as a CGI; with auth=(user, password) requests
    without those Basic credentials get 401."""

    def __init__(self, root, auth=None):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self.cgi()

            def do_POST(self):
                self.cgi()

            def cgi(self):
                outer.requests += 1
                if outer.auth:
                    want = "Basic " + base64.b64encode(
                        ("%s:%s" % outer.auth).encode()).decode()
                    if self.headers.get("Authorization") != want:
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="git"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                path, _, query = self.path.partition("?")
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                env = {"GIT_PROJECT_ROOT": root, "GIT_HTTP_EXPORT_ALL": "1",
                       "PATH_INFO": path, "QUERY_STRING": query,
                       "REQUEST_METHOD": self.command, "REMOTE_USER": "git",
                       "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body)), "PATH": os.environ["PATH"]}
                if self.headers.get("Content-Encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                p = subprocess.run(["git", "http-backend"], input=body, env=env,
                                   capture_output=True, timeout=30)
                head, _, out = p.stdout.partition(b"\r\n\r\n")
                status = 200
                hdrs = []
                for line in head.decode().split("\r\n"):
                    k, _, v = line.partition(":")
                    if k.lower() == "status":
                        status = int(v.strip().split()[0])
                    elif k:
                        hdrs.append((k, v.strip()))
                self.send_response(status)
                for k, v in hdrs:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.auth = auth
        self.requests = 0
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name="origin.git"):
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


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
    probe = {}
    if ready_after:
        probe = {"readinessProbe": {
            "exec": {"command": ["sh", "-c", "test $(( $(date +%%s) - $(cat /tmp/%s-start) )) "
                                 "-ge %d" % (name, ready_after)]},
            "periodSeconds": 1}}
    cmd = "date +%%s > /tmp/%s-start; exec sleep 3600" % name
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
