"""Images end to end: images built here from static binaries with umoci,
exported with skopeo (oci-archive, docker-archive) or pushed to Debian's
docker-registry started by the test on loopback, then imported / pulled by
a real `v6 server` and checked the way a user would: `v6 image ls`, the
overlay view of the unpacked layers, pod status and events."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time

import pytest

from conftest import V6, TIMEOUT_SCALE, free_port, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIM = os.path.join(os.path.dirname(V6), "v6-shim")


def run(*args, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                       timeout=120 * TIMEOUT_SCALE, **kw)
    assert p.returncode == 0, "%s: %s%s" % (" ".join(map(str, args)), p.stdout, p.stderr)
    return p.stdout


def layer_tar(path, entries):
    """entries: (name, kind, data) with kind file | dir | symlink | hardlink;
    data is the content or the link target."""
    with tarfile.open(path, "w") as t:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            if kind == "file":
                raw = data if isinstance(data, bytes) else data.encode()
                ti.size, ti.mode = len(raw), 0o755
                t.addfile(ti, io.BytesIO(raw))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                       "hardlink": tarfile.LNKTYPE}[kind]
            ti.mode = 0o755
            if kind != "dir":
                ti.linkname = data
            t.addfile(ti)
    return path


class ImageBuilder:
    """An OCI layout in dir built with umoci; layers come from tars made by
    layer_tar (umoci raw add-layer compresses them)."""

    def __init__(self, workdir, tag="app"):
        self.dir = workdir
        self.layout = os.path.join(workdir, "oci")
        self.tag = tag
        if not os.path.exists(self.layout):
            run("umoci", "init", "--layout", self.layout)
        run("umoci", "new", "--image", self.image)
        self.n = 0

    @property
    def image(self):
        return "%s:%s" % (self.layout, self.tag)

    def layer(self, entries):
        self.n += 1
        path = layer_tar(os.path.join(self.dir, "%s-l%d.tar" % (self.tag, self.n)), entries)
        run("umoci", "raw", "add-layer", "--image", self.image, path)
        return self

    def entrypoint(self, *argv):
        args = ["umoci", "config", "--image", self.image]
        for a in argv:
            args += ["--config.entrypoint", a]
        run(*args)
        return self

    def export(self, transport, name):
        """skopeo copy to oci-archive / docker-archive; returns the file."""
        out = os.path.join(self.dir, "%s-%s.tar" % (self.tag, transport))
        if os.path.exists(out):
            os.unlink(out)
        run("skopeo", "copy", "-q", "oci:" + self.image, "%s:%s:%s" % (transport, out, name))
        return out


def app_image(workdir, tag="app"):
    """Three layers: the static shim binary, files, then a whiteout of one
    file and an opaque directory."""
    b = ImageBuilder(workdir, tag)
    with open(SHIM, "rb") as f:
        b.layer([("bin", "dir", None), ("bin/app", "file", f.read())])
    b.layer([("etc", "dir", None), ("etc/gone", "file", "x"), ("etc/keep", "file", "k"),
             ("data", "dir", None), ("data/old", "file", "o")])
    b.layer([("etc/.wh.gone", "file", ""), ("data", "dir", None),
             ("data/.wh..wh..opq", "file", ""), ("data/new", "file", "n")])
    return b.entrypoint("/bin/app")


def store_dir(server):
    return os.path.join(server.data_dir, "node", "images")


def image_rows(server):
    p = server.v6("image", "ls", "--no-headers", check=True)
    return [l.split() for l in p.stdout.splitlines() if l.strip()]


def image_list(server):
    _, body = server.json("GET", "/apis/images.v6.dev/v1alpha1/images", expect=200)
    return {i["ref"]: i for i in body["items"]}


def layer_dirs(server, ref):
    """The unpacked layer dirs of ref, lowest first (from the store)."""
    d = store_dir(server)
    with open(os.path.join(d, "images.json")) as f:
        digest = json.load(f)[ref]["digest"]
    with open(os.path.join(d, "blobs", "sha256", digest[7:])) as f:
        m = json.load(f)
    return [os.path.join(d, "layers", "sha256", l["digest"][7:]) for l in m["layers"]]


def overlay_view(lowers, mnt):
    """Mounts the layers read-only as overlayfs does for a container."""
    os.makedirs(mnt, exist_ok=True)
    run("mount", "-t", "overlay", "overlay", "-o",
        "lowerdir=" + ":".join(reversed(lowers)), mnt)


def tree(path):
    out = set()
    for dirpath, dirs, files in os.walk(path):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(dirpath, n), path))
    return out


def test_import_oci_archive_list_view_and_remove(server, workdir):
    tar = app_image(workdir).export("oci-archive", "localhost/app:1")
    p = server.v6("image", "import", tar, check=True)
    assert "imported localhost/app:1" in p.stdout
    rows = image_rows(server)
    assert [r[:2] for r in rows] == [["localhost/app", "1"]]

    # The whiteout and the opaque directory hide the lower layers' files.
    lowers = layer_dirs(server, "localhost/app:1")
    assert len(lowers) == 3
    mnt = os.path.join(workdir, "mnt")
    overlay_view(lowers, mnt)
    try:
        assert tree(mnt) == {"bin", "bin/app", "etc", "etc/keep", "data", "data/new"}
    finally:
        run("umount", mnt)

    # Importing again changes nothing; rm takes the image and its layers.
    server.v6("image", "import", tar, check=True)
    assert len(image_rows(server)) == 1
    p = server.v6("image", "rm", "localhost/app:1", check=True)
    assert "Deleted: localhost/app:1" in p.stdout
    assert image_rows(server) == []
    d = store_dir(server)
    assert os.listdir(os.path.join(d, "layers", "sha256")) == []
    assert os.listdir(os.path.join(d, "blobs", "sha256")) == []
    p = server.v6("image", "rm", "localhost/app:1")
    assert p.returncode != 0 and "not found" in p.stderr


def test_import_docker_archive(server, workdir):
    tar = app_image(workdir).export("docker-archive", "localhost/app:2")
    server.v6("image", "import", tar, check=True)
    img = image_list(server)["localhost/app:2"]
    assert img["imageID"].startswith("localhost/app@sha256:")
    assert len(layer_dirs(server, "localhost/app:2")) == 3


def test_import_refuses_archives_escaping_the_root(server, workdir):
    outside = os.path.join(workdir, "outside")
    os.makedirs(outside)
    cases = {
        "dotdot": [("ok", "file", "fine"), ("../../../../../../%s/pwned" % outside.lstrip("/"),
                                            "file", "x")],
        "abslink": [("link", "symlink", outside), ("link/pwned", "file", "x")],
        "hardlink": [("hl", "hardlink", outside + "/victim")],
    }
    with open(os.path.join(outside, "victim"), "w") as f:
        f.write("secret")
    for name, entries in cases.items():
        b = ImageBuilder(workdir, name).layer(entries).entrypoint("/x")
        tar = b.export("oci-archive", "localhost/%s:1" % name)
        p = server.v6("image", "import", tar)
        assert p.returncode != 0, name
        assert "escapes the root" in p.stderr or "symlink" in p.stderr or \
            "not inside the root" in p.stderr, (name, p.stderr)
    assert sorted(os.listdir(outside)) == ["victim"]
    assert os.stat(os.path.join(outside, "victim")).st_nlink == 1
    assert image_rows(server) == []
    d = store_dir(server)
    assert os.listdir(os.path.join(d, "layers", "sha256")) == []
    assert os.listdir(os.path.join(d, "tmp")) == []


# ---- a registry on loopback: Debian's docker-registry ---------------------

class Registry:
    """docker-registry serving its own storage dir on 127.0.0.1:PORT; with
    token=TokenServer it requires Bearer tokens from it. Stopped by PID."""

    def __init__(self, workdir, token=None, tls=False, client_ca=None, htpasswd=None):
        self.dir = tempfile.mkdtemp(prefix="registry-", dir=workdir)
        self.tls = tls
        self.client_ca = client_ca
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        cfg = ["version: 0.1", "log:", "  level: error", "storage:", "  filesystem:",
               "    rootdirectory: %s/data" % self.dir, "http:",
               "  addr: %s" % self.host]
        if tls:
            key, cert = os.path.join(self.dir, "key.pem"), os.path.join(self.dir, "cert.pem")
            run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                "-out", cert, "-subj", "/CN=127.0.0.1", "-days", "2",
                "-addext", "subjectAltName=IP:127.0.0.1")
            self.cert = cert
            cfg += ["  tls:", "    certificate: " + cert, "    key: " + key]
            if client_ca:   # client certificates signed by this CA required
                cfg += ["    clientcas:", "      - " + client_ca]
        if htpasswd:    # ("user", "password"): Basic auth, bcrypt in an htpasswd file
            import warnings
            with warnings.catch_warnings():   # Debian's python3 3.11 has it
                warnings.simplefilter("ignore", DeprecationWarning)
                import crypt
            path = os.path.join(self.dir, "htpasswd")
            with open(path, "w") as f:
                f.write("%s:%s\n" % (htpasswd[0], crypt.crypt(htpasswd[1], crypt.mksalt(
                    crypt.METHOD_BLOWFISH, rounds=16))))
            cfg += ["auth:", "  htpasswd:", "    realm: v6-test", "    path: " + path]
        if token:
            cfg += ["auth:", "  token:", "    realm: %s/token" % token.url,
                    "    service: v6-test-registry", "    issuer: v6-test-issuer",
                    "    rootcertbundle: %s" % token.cert]
        self.config = os.path.join(self.dir, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", self.config],
                                     stdout=self.log, stderr=self.log)
        wait_for(self._up, 20, "docker-registry to listen")

    def _up(self):
        import http.client
        import ssl
        try:
            if self.tls:
                c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=1,
                                                context=ssl._create_unverified_context())
            else:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            c.request("GET", "/v2/")
            return c.getresponse().status in (200, 401)
        except ssl.SSLError:
            return self.client_ca is not None   # it answered: no client certificate
        except OSError:
            return False

    def push(self, image, name, creds=None):
        args = ["skopeo", "copy", "-q", "--dest-tls-verify=false"]
        if creds:
            args += ["--dest-creds", creds]
        run(*(args + ["oci:" + image, "docker://%s/%s" % (self.host, name)]))
        return "%s/%s" % (self.host, name)

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.dir, "data", "docker", "registry", "v2", "blobs",
                            "sha256", hexd[:2], hexd, "data")

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def b64url(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """The distribution token protocol: GET /token?service=&scope= answers
    {"token": JWT} signed RS256 by a key made here (openssl), its
    certificate in the JWT's x5c and the registry's rootcertbundle. With
    creds="user:pass" it answers 401 unless given that Basic auth."""

    def __init__(self, workdir, creds=None):
        import base64
        import http.server
        import threading
        d = tempfile.mkdtemp(prefix="token-", dir=workdir)
        self.key, self.cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
            "-out", self.cert, "-subj", "/CN=v6-test-token", "-days", "2")
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"],
                             capture_output=True, check=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.creds = creds
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.requests.append((self.path, dict(self.headers)))
                auth = self.headers.get("Authorization", "")
                want = creds and "Basic " + base64.b64encode(creds.encode()).decode()
                if creds and auth != want:
                    self.send_response(401)
                    self.end_headers()
                    return
                from urllib.parse import parse_qs, urlparse
                q = parse_qs(urlparse(self.path).query)
                body = json.dumps({"token": outer.jwt(q.get("service", [""])[0],
                                                      q.get("scope", []))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def jwt(self, service, scopes):
        access = []
        for s in scopes:
            for one in s.split(" "):
                kind, name, actions = one.split(":", 2) if one.count(":") >= 2 else \
                    (None, None, None)
                if kind == "repository":
                    access.append({"type": kind, "name": name,
                                   "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": "v6-test-issuer", "sub": "tester", "aud": service,
                  "exp": now + 600, "nbf": now - 10, "iat": now, "jti": str(now),
                  "access": access}
        signing = "%s.%s" % (b64url(json.dumps(header).encode()),
                             b64url(json.dumps(claims).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key],
                             input=signing.encode(), capture_output=True, check=True).stdout
        return signing + "." + b64url(sig)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def registries(workdir):
    made = []

    def make(token=None, tls=False, client_ca=None, htpasswd=None):
        r = Registry(workdir, token, tls, client_ca, htpasswd)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def pull(server, ref, auths=None):
    body = {"ref": ref}
    if auths:
        body["auths"] = auths
    st, _, data = server.request("POST", "/apis/images.v6.dev/v1alpha1/images", body,
                                 timeout=120 * TIMEOUT_SCALE)
    return st, json.loads(data)


def test_pull_anonymous_multi_layer_with_whiteouts(server, workdir, registries):
    reg = registries()
    ref = reg.push(app_image(workdir).image, "team/app:1")
    p = server.v6("image", "pull", ref, timeout=120)
    assert p.returncode == 0, p.stderr
    img = image_list(server)[ref]
    assert p.stdout.strip() == "Image is up to date for " + img["imageID"]
    assert img["imageID"] == "%s/team/app@%s" % (reg.host, img["digest"])
    mnt = os.path.join(workdir, "mnt")
    overlay_view(layer_dirs(server, ref), mnt)
    try:
        assert tree(mnt) == {"bin", "bin/app", "etc", "etc/keep", "data", "data/new"}
        with open(os.path.join(mnt, "bin", "app"), "rb") as f, open(SHIM, "rb") as g:
            assert f.read() == g.read()
    finally:
        run("umount", mnt)
    # By digest too; an unknown tag is the registry's "manifest unknown".
    st, body = pull(server, "%s/team/app@%s" % (reg.host, img["digest"]))
    assert st == 201, body
    st, body = pull(server, reg.host + "/team/app:nope")
    assert st == 404 and "manifest unknown" in body["message"], body
    # A Docker v2 schema 2 manifest (what docker push writes).
    run("skopeo", "copy", "-q", "--dest-tls-verify=false", "--format", "v2s2",
        "docker://" + ref, "docker://%s/team/docker:1" % reg.host, "--src-tls-verify=false")
    raw = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false",
                         "docker://%s/team/docker:1" % reg.host))
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    st, body = pull(server, reg.host + "/team/docker:1")
    assert st == 201 and body["layers"] == 3, body


def test_pull_with_token_auth(server, workdir, registries):
    tok = TokenServer(workdir)
    try:
        reg = registries(token=tok)
        ref = reg.push(app_image(workdir).image, "secure/app:1")
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", reg.port, timeout=5)
        c.request("GET", "/v2/secure/app/manifests/1")
        assert c.getresponse().status == 401   # the registry does require a token
        del tok.requests[:]
        st, body = pull(server, ref)
        assert st == 201, body
        v6_reqs = [(p, h) for p, h in tok.requests if h.get("User-Agent", "").startswith("v6/")]
        assert v6_reqs, tok.requests
        assert "service=v6-test-registry" in v6_reqs[0][0]
        assert "scope=repository%3Asecure%2Fapp%3Apull" in v6_reqs[0][0]
    finally:
        tok.close()


def test_pull_with_credentials_from_a_pull_secret(server, workdir, registries):
    import base64
    tok = TokenServer(workdir, creds="alice:s3cret")
    try:
        reg = registries(token=tok)
        ref = reg.push(app_image(workdir).image, "private/app:1", creds="alice:s3cret")
        st, body = pull(server, ref)
        assert st == 403 and "unauthorized" in body["message"], body
        auths = {reg.host: {"auth": base64.b64encode(b"alice:s3cret").decode()}}
        st, body = pull(server, ref, auths)
        assert st == 201, body
        bad = {reg.host: {"username": "alice", "password": "wrong"}}
        st, body = pull(server, reg.host + "/private/app:1", bad)
        assert st == 403, body
    finally:
        tok.close()


def test_pull_with_basic_auth_from_a_pull_secret(server, workdir, registries):
    """A registry asking for Basic auth itself (WWW-Authenticate: Basic, an
    htpasswd file) gets the pull secret's credentials."""
    import base64
    reg = registries(htpasswd=("carol", "pw3"))
    ref = reg.push(app_image(workdir).image, "basic/app:1", creds="carol:pw3")
    st, body = pull(server, ref)
    assert st == 403 and "no pull secret for this registry" in body["message"], body
    st, body = pull(server, ref, {reg.host: {"username": "carol", "password": "nope"}})
    assert st == 403 and "the pull secret was refused" in body["message"], body
    st, body = pull(server, ref, {reg.host: {"auth": base64.b64encode(b"carol:pw3").decode()}})
    assert st == 201 and body["layers"] == 3, body


def test_corrupted_blob_is_refused_and_nothing_half_unpacked(server, workdir, registries):
    reg = registries()
    ref = reg.push(app_image(workdir).image, "bad/app:1")
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          "docker://" + ref], capture_output=True, text=True, check=True)
    layers = json.loads(raw.stdout)["layers"]
    victim = reg.blob_path(layers[1]["digest"])
    with open(victim, "r+b") as f:
        data = bytearray(f.read())
        data[len(data) // 2] ^= 0xff
        f.seek(0)
        f.write(data)
    st, body = pull(server, ref)
    assert st == 502 and "digest mismatch" in body["message"], body
    assert image_rows(server) == []
    d = store_dir(server)
    # The intact first layer may stay (content-addressed, verified); the
    # corrupted one is neither a blob nor a layer, and tmp/ is empty.
    bad = layers[1]["digest"].split(":")[1]
    assert bad not in os.listdir(os.path.join(d, "blobs", "sha256"))
    assert bad not in os.listdir(os.path.join(d, "layers", "sha256"))
    assert os.listdir(os.path.join(d, "tmp")) == []
    # A pod of that image: ErrImagePull saying why.
    apply(server, runc_pod("corrupt", ref))
    wait_for(lambda: waiting_reason(server, "corrupt") in ("ErrImagePull", "ImagePullBackOff"),
             30, "the failed pull")
    assert any("digest mismatch" in m for r, m in events(server, "corrupt") if r == "Failed")


def test_tampered_manifest_is_refused_by_tag_and_by_digest(server, workdir, registries):
    """The manifest is checked too: against the digest asked for, or the
    registry's Docker-Content-Digest for a tag."""
    reg = registries()
    ref = reg.push(app_image(workdir).image, "tampered/app:1")
    raw = run("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://" + ref).encode()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    m = json.loads(raw)
    size = m["config"]["size"]
    bad = raw.replace(b'"size":%d' % size, b'"size":%d' % (size + 1), 1)
    assert bad != raw and len(bad) == len(raw) + (len(str(size + 1)) - len(str(size)))
    with open(reg.blob_path(digest), "wb") as f:
        f.write(bad)
    for r in (ref, "%s/tampered/app@%s" % (reg.host, digest)):
        st, body = pull(server, r)
        assert st != 201 and "manifest digest mismatch" in body["message"], (r, body)
    assert image_rows(server) == []


def test_unreachable_registry_fails_with_the_connection_error(server):
    port = free_port()
    st, body = pull(server, "127.0.0.1:%d/app:1" % port)
    assert st == 502 and "onnect" in body["message"], body


# ---- pods: the node agent's image step (runtimeClassName: runc) ------------

def runc_pod(name, image, policy=None, secrets=None):
    c = {"name": "app", "image": image}
    if policy:
        c["imagePullPolicy"] = policy
    spec = {"runtimeClassName": "runc", "containers": [c]}
    if secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in secrets]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def apply(server, obj):
    server.v6("apply", "-f", "-", input=json.dumps(obj), check=True)


def container(server, name):
    st, pod = server.json("GET", "/api/v1/namespaces/default/pods/" + name)
    if st != 200:
        return {}
    cs = pod.get("status", {}).get("containerStatuses") or [{}]
    return cs[0]


def waiting_reason(server, name):
    return container(server, name).get("state", {}).get("waiting", {}).get("reason")


def events(server, name):
    _, body = server.json("GET", "/api/v1/namespaces/default/events")
    return [(e["reason"], e["message"]) for e in body["items"]
            if e["involvedObject"]["name"] == name]


def event_count(server, name, reason):
    _, body = server.json("GET", "/api/v1/namespaces/default/events")
    return sum(e.get("count", 1) for e in body["items"]
               if e["involvedObject"]["name"] == name and e["reason"] == reason)


def wait_event(server, name, reason, timeout=60):
    return wait_for(lambda: [m for r, m in events(server, name) if r == reason],
                    timeout, "event %s of pod %s" % (reason, name))


def test_pod_pulls_its_image_and_reports_the_image_id(server, workdir, registries):
    reg = registries()
    ref = reg.push(app_image(workdir).image, "team/app:1")
    apply(server, runc_pod("web", ref))
    pulled = wait_event(server, "web", "Pulled")
    assert pulled[0].startswith('Successfully pulled image "%s" in ' % ref), pulled
    assert ('Pulling image "%s"' % ref) in [m for r, m in events(server, "web")
                                             if r == "Pulling"]
    img = image_list(server)[ref]
    wait_for(lambda: container(server, "web").get("imageID") == img["imageID"], 30,
             "imageID in the container status")
    # An image a pod uses cannot be removed.
    p = server.v6("image", "rm", ref)
    assert p.returncode != 0 and "in use by pod default/web" in p.stderr
    # IfNotPresent (a tag other than latest): the next pod finds it present.
    apply(server, runc_pod("web2", ref))
    msgs = wait_event(server, "web2", "Pulled")
    assert msgs[0] == 'Container image "%s" already present on machine' % ref


def test_always_pull_policy_follows_a_moved_tag(server, workdir, registries):
    """Always asks the registry at every container start (a tag pushed again
    gives the new image); IfNotPresent keeps the image already present."""
    reg = registries()
    ref = reg.push(app_image(workdir, "v1").layer([("v1", "file", "first build")]).image,
                   "team/moving:1")
    apply(server, runc_pod("first", ref, policy="Always"))
    wait_event(server, "first", "Pulled")
    old = image_list(server)[ref]["imageID"]
    old_layers = layer_dirs(server, ref)
    wait_for(lambda: container(server, "first").get("imageID") == old, 30, "imageID")
    new_image = app_image(workdir, "v2").layer([("v2", "file", "second build")]).image
    reg.push(new_image, "team/moving:1")
    apply(server, runc_pod("kept", ref, policy="IfNotPresent"))
    msgs = wait_event(server, "kept", "Pulled")
    assert msgs[0] == 'Container image "%s" already present on machine' % ref, msgs
    wait_for(lambda: container(server, "kept").get("imageID") == old, 30, "old imageID")
    apply(server, runc_pod("fresh", ref, policy="Always"))
    msgs = wait_event(server, "fresh", "Pulled")
    assert msgs[0].startswith('Successfully pulled image "%s" in ' % ref), msgs
    new = image_list(server)[ref]["imageID"]
    assert new != old and new.startswith(reg.host + "/team/moving@sha256:"), (old, new)
    wait_for(lambda: container(server, "fresh").get("imageID") == new, 30, "new imageID")
    # The image the tag left stays, untagged (as Docker's <none>), while
    # pods run it: listed by its digest, its layers kept through a removal
    # of another image (which sweeps what no image refers to), not removable.
    other = reg.push(app_image(workdir, "v3").layer([("v3", "file", "3")]).image,
                     "team/other:1")
    server.v6("image", "pull", other, check=True, timeout=120)
    server.v6("image", "rm", other, check=True)
    assert all(os.path.isdir(d) for d in old_layers), old_layers
    images = image_list(server)
    dangling = [r for r, i in images.items() if i["imageID"] == old]
    assert dangling == [old], images.keys()
    p = server.v6("image", "rm", old)
    assert p.returncode != 0 and "in use by pod default/" in p.stderr, p.stderr
    server.v6("delete", "pod", "first", "kept", check=True)
    wait_for(lambda: server.v6("image", "rm", old).returncode == 0, 60,
             "the untagged image removable once no pod runs it")
    assert not any(os.path.isdir(d) for d in old_layers if d not in layer_dirs(server, ref))


def test_never_pull_policy(server):
    apply(server, runc_pod("never", "127.0.0.1:1/none:1", policy="Never"))
    wait_for(lambda: waiting_reason(server, "never") == "ErrImageNeverPull", 30,
             "ErrImageNeverPull")
    msg = container(server, "never")["state"]["waiting"]["message"]
    assert msg == 'Container image "127.0.0.1:1/none:1" is not present with pull policy of Never'
    assert not [r for r, _ in events(server, "never") if r == "Pulling"]


def test_unreachable_registry_backs_off_and_other_pods_run(server):
    ref = "127.0.0.1:%d/gone/app:1" % free_port()
    apply(server, runc_pod("lost", ref))
    apply(server, {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "fine", "namespace": "default"},
                   "spec": {"containers": [{"name": "c", "image": "sh",
                                            "command": ["sh", "-c", "sleep 300"]}]}})
    # ErrImagePull shows for 2 s: the status is polled, the event stays.
    wait_for(lambda: waiting_reason(server, "lost") in ("ErrImagePull", "ImagePullBackOff"),
             30, "the failed pull")
    failed = wait_event(server, "lost", "Failed")
    assert any("Couldn't connect" in m for m in failed), failed
    wait_for(lambda: waiting_reason(server, "lost") == "ImagePullBackOff", 30,
             "ImagePullBackOff")
    assert container(server, "lost")["state"]["waiting"]["message"] == \
        'Back-off pulling image "%s"' % ref
    evs = events(server, "lost")
    assert ("BackOff", 'Back-off pulling image "%s"' % ref) in evs
    assert ("Failed", "Error: ErrImagePull") in evs
    assert any(r == "Failed" and m.startswith('Failed to pull image "%s": ' % ref)
               for r, m in evs)
    wait_for(lambda: "running" in container(server, "fine").get("state", {}), 30,
             "the process pod next to it running")
    # 10 s later the pull is tried again (a second Pulling event).
    wait_for(lambda: event_count(server, "lost", "Pulling") >= 2, 40,
             "the retry after the back-off")


def test_pod_pull_secret(server, workdir, registries):
    import base64
    tok = TokenServer(workdir, creds="bob:pw")
    try:
        reg = registries(token=tok)
        ref = reg.push(app_image(workdir).image, "private/app:1", creds="bob:pw")
        apply(server, runc_pod("nosecret", ref))
        wait_for(lambda: waiting_reason(server, "nosecret") in ("ErrImagePull",
                                                                 "ImagePullBackOff"),
                 30, "a pull refused without the secret")
        assert any("unauthorized" in m for r, m in events(server, "nosecret")
                   if r == "Failed")
        cfg = {"auths": {reg.host: {"auth": base64.b64encode(b"bob:pw").decode()}}}
        apply(server, {"apiVersion": "v1", "kind": "Secret", "type":
                       "kubernetes.io/dockerconfigjson",
                       "metadata": {"name": "regcred", "namespace": "default"},
                       "data": {".dockerconfigjson":
                                base64.b64encode(json.dumps(cfg).encode()).decode()}})
        apply(server, runc_pod("withsecret", ref, secrets=["regcred"]))
        wait_event(server, "withsecret", "Pulled")
        wait_for(lambda: container(server, "withsecret").get("imageID", "").startswith(
            reg.host + "/private/app@sha256:"), 30, "imageID")
    finally:
        tok.close()


def test_image_gc_removes_unused_images_never_one_in_use(workdir):
    from conftest import Server
    data = tempfile.mkdtemp(prefix="v6-gc-", dir=workdir)
    s = Server(data).start()
    try:
        a = app_image(workdir, "a").export("oci-archive", "localhost/a:1")
        b = app_image(workdir, "b").layer([("b", "file", "only in b")]).export(
            "oci-archive", "localhost/b:1")
        s.v6("image", "import", a, check=True)
        s.v6("image", "import", b, check=True)
        apply(s, runc_pod("user", "localhost/a:1"))
        wait_for(lambda: container(s, "user").get("imageID"), 30, "imageID of the pod")
    finally:
        s.stop()
    # 0% thresholds: the disk is always "full"; only the image in use stays.
    s = Server(data, ["--image-gc-high-threshold", "0", "--image-gc-low-threshold", "0",
                      "--minimum-image-ttl-duration", "0s", "--image-gc-period", "200ms"])
    s.start()
    try:
        wait_for(lambda: [r[:2] for r in image_rows(s)] == [["localhost/a", "1"]], 30,
                 "the GC to remove localhost/b:1 only")
        assert "image GC removed localhost/b:1" in open(s.log_path).read()
        time.sleep(1)   # a few more periods: a stays
        assert [r[:2] for r in image_rows(s)] == [["localhost/a", "1"]]
        s.v6("delete", "pod", "user", check=True)
        wait_for(lambda: image_rows(s) == [], 30, "the GC to remove the image once unused")
    finally:
        s.close()


def test_stalled_registry_pull_is_shared_and_does_not_hold_the_server(workdir):
    """Two pods of one image pull once; a registry that accepts and never
    answers does not keep a stopping server waiting for its pull."""
    import socket
    import threading
    from conftest import Server
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    conns = []

    def accept():
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            conns.append(c)
    threading.Thread(target=accept, daemon=True).start()
    ref = "127.0.0.1:%d/hang/app:1" % lsock.getsockname()[1]
    s = Server(tempfile.mkdtemp(prefix="v6-stall-", dir=workdir)).start()
    try:
        apply(s, runc_pod("one", ref))
        apply(s, runc_pod("two", ref))
        wait_for(lambda: event_count(s, "one", "Pulling") and event_count(s, "two", "Pulling"),
                 30, "both pods pulling")
        time.sleep(0.5)
        assert len(conns) == 1, "one pull for both pods, got %d connections" % len(conns)
        # Four more stalled images: pulls hold pool threads, but at most two
        # at once, so a process pod next to them still starts.
        for i in range(4):
            apply(s, runc_pod("stall%d" % i, ref.replace("/hang/", "/hang%d/" % i)))
        wait_for(lambda: all(event_count(s, "stall%d" % i, "Pulling") for i in range(4)),
                 30, "the stalled pods asking for their images")
        apply(s, {"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": "fine", "namespace": "default"},
                  "spec": {"containers": [{"name": "c", "image": "sh",
                                           "command": ["sh", "-c", "sleep 300"]}]}})
        wait_for(lambda: "running" in container(s, "fine").get("state", {}), 20,
                 "a process pod running next to the stalled pulls")
        assert len(conns) == 2, "two pulls at a time, got %d connections" % len(conns)
        t0 = time.monotonic()
        s.stop()
        assert time.monotonic() - t0 < 5, "the stalled pull held the server's exit"
    finally:
        s.close()
        lsock.close()
        for c in conns:
            c.close()


def test_pull_refuses_a_layer_escaping_the_root(server, workdir, registries):
    """The same path rules hold when a layer is unpacked as it downloads."""
    reg = registries()
    outside = os.path.join(workdir, "outside")
    os.makedirs(outside)
    b = ImageBuilder(workdir, "evil").layer([("ok", "file", "fine"),
                                              ("link", "symlink", outside),
                                              ("link/pwned", "file", "x")])
    ref = reg.push(b.entrypoint("/x").image, "evil/app:1")
    st, body = pull(server, ref)
    assert st != 201 and "symlink" in body["message"], body
    assert os.listdir(outside) == []
    d = store_dir(server)
    assert os.listdir(os.path.join(d, "layers", "sha256")) == []
    assert os.listdir(os.path.join(d, "tmp")) == []
    assert image_rows(server) == []


def blob_write(layout, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest[7:]), "wb") as f:
        f.write(data)
    return digest


def node_platform():
    import platform
    return {"x86_64": ("amd64", None), "aarch64": ("arm64", "v8")}[platform.machine()]


def multi_arch_index(b, name):
    """Turns image b's tag into an OCI index of two manifests: another
    platform's (a config of its own) listed first, then this node's."""
    arch, variant = node_platform()
    other = ("arm64", "v8") if arch == "amd64" else ("amd64", None)
    with open(os.path.join(b.layout, "index.json")) as f:
        idx = json.load(f)
    desc = next(m for m in idx["manifests"]
                if m["annotations"]["org.opencontainers.image.ref.name"] == b.tag)
    with open(os.path.join(b.layout, "blobs", "sha256", desc["digest"][7:]), "rb") as f:
        amd = json.load(f)
    with open(os.path.join(b.layout, "blobs", "sha256", amd["config"]["digest"][7:])) as f:
        cfg = json.load(f)
    cfg["architecture"] = other[0]
    if other[1]:
        cfg["variant"] = other[1]
    raw = json.dumps(cfg).encode()
    arm = dict(amd, config=dict(amd["config"], digest=blob_write(b.layout, raw),
                                size=len(raw)))
    arm_raw = json.dumps(arm).encode()
    mt = "application/vnd.oci.image.manifest.v1+json"

    def plat(a, v):
        return dict({"architecture": a, "os": "linux"}, **({"variant": v} if v else {}))
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [
                 {"mediaType": mt, "digest": blob_write(b.layout, arm_raw),
                  "size": len(arm_raw), "platform": plat(*other)},
                 {"mediaType": mt, "digest": desc["digest"], "size": desc["size"],
                  "platform": plat(arch, variant)}]}
    index_raw = json.dumps(index).encode()
    idx["manifests"].append({"mediaType": index["mediaType"],
                             "digest": blob_write(b.layout, index_raw),
                             "size": len(index_raw),
                             "annotations": {"org.opencontainers.image.ref.name": name}})
    with open(os.path.join(b.layout, "index.json"), "w") as f:
        json.dump(idx, f)
    return desc["digest"]


def test_pull_an_index_picks_this_platform_and_zstd_layers(server, workdir, registries):
    reg = registries()
    b = app_image(workdir)
    amd_digest = multi_arch_index(b, "multi")
    run("skopeo", "copy", "-q", "--all", "--dest-tls-verify=false",
        "oci:%s:multi" % b.layout, "docker://%s/multi/app:1" % reg.host)
    index_digest = "sha256:" + hashlib.sha256(subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false",
         "docker://%s/multi/app:1" % reg.host], capture_output=True,
        check=True).stdout).hexdigest()
    st, body = pull(server, reg.host + "/multi/app:1")
    assert st == 201, body
    assert body["digest"] == amd_digest
    assert body["imageID"] == "%s/multi/app@%s" % (reg.host, index_digest)
    # zstd-compressed layers (skopeo recompresses on push; a registry of its
    # own, or skopeo would reuse the gzip blobs it already holds).
    reg = registries()
    run("skopeo", "copy", "-q", "--dest-tls-verify=false", "--dest-compress",
        "--dest-compress-format", "zstd", "oci:" + b.image,
        "docker://%s/zstd/app:1" % reg.host)
    raw = json.loads(run("skopeo", "inspect", "--raw", "--tls-verify=false",
                         "docker://%s/zstd/app:1" % reg.host))
    assert all("zstd" in l["mediaType"] for l in raw["layers"]), raw
    ref = reg.host + "/zstd/app:1"
    st, body = pull(server, ref)
    assert st == 201, body
    mnt = os.path.join(workdir, "mnt")
    overlay_view(layer_dirs(server, ref), mnt)
    try:
        assert tree(mnt) == {"bin", "bin/app", "etc", "etc/keep", "data", "data/new"}
    finally:
        run("umount", mnt)


def test_pull_from_a_tls_registry_on_loopback(server, workdir, registries):
    """Docker's rule for a registry that may be insecure (loopback): HTTPS
    first, its certificate unchecked; the plain-HTTP registries of the other
    tests are reached after that TLS attempt fails."""
    reg = registries(tls=True)
    ref = reg.push(app_image(workdir).image, "tls/app:1")
    st, body = pull(server, ref)
    assert st == 201, body
    assert body["layers"] == 3


def openssl_ca(d, name):
    """A self-signed CA in d: (key, cert)."""
    key, cert = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
        cert, "-subj", "/CN=" + name, "-days", "2")
    return key, cert


def test_private_registry_ca_and_client_certificate_from_the_certs_dir(make_server, workdir,
                                                                        registries):
    """--registry-certs-dir DIR, Docker's certs.d: DIR/HOST:PORT/ca.crt is
    the one CA the registry's certificate is checked against (on loopback
    too, where no CA means no check), client.cert + client.key the
    certificate a registry requiring one gets. Read at each pull."""
    certs = os.path.join(workdir, "certs.d")
    s = make_server("--registry-certs-dir", certs)
    cakey, cacrt = openssl_ca(workdir, "v6-client-ca")
    reg = registries(tls=True, client_ca=cacrt)
    ckey, ccsr, ccert = (os.path.join(workdir, n) for n in ("c.key", "c.csr", "c.cert"))
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", ckey, "-out", ccsr,
        "-subj", "/CN=v6-puller")
    run("openssl", "x509", "-req", "-in", ccsr, "-CA", cacrt, "-CAkey", cakey,
        "-CAcreateserial", "-out", ccert, "-days", "2")
    run("skopeo", "copy", "-q", "--dest-cert-dir", certdir_for_skopeo(workdir, ccert, ckey),
        "--dest-tls-verify=false", "oci:" + app_image(workdir).image,
        "docker://%s/ca/app:1" % reg.host)
    ref = reg.host + "/ca/app:1"
    host = os.path.join(certs, reg.host)
    os.makedirs(host)
    shutil.copy(ccert, os.path.join(host, "client.cert"))
    shutil.copy(ckey, os.path.join(host, "client.key"))
    # a CA that did not sign the registry's certificate: refused, no fallback
    shutil.copy(openssl_ca(workdir, "another-ca")[1], os.path.join(host, "ca.crt"))
    st, body = pull(s, ref)
    assert st != 201 and "certificate" in body["message"], body
    shutil.copy(reg.cert, os.path.join(host, "ca.crt"))
    st, body = pull(s, ref)
    assert st == 201 and body["layers"] == 3, body
    # without the client certificate the registry refuses the handshake
    os.unlink(os.path.join(host, "client.cert"))
    s.v6("image", "rm", ref, check=True)
    st, body = pull(s, ref)
    assert st != 201, body


def certdir_for_skopeo(workdir, cert, key):
    """skopeo's --cert-dir: *.cert with its *.key."""
    d = os.path.join(workdir, "skopeo-certs")
    os.makedirs(d, exist_ok=True)
    shutil.copy(cert, os.path.join(d, "client.cert"))
    shutil.copy(key, os.path.join(d, "client.key"))
    return d


def test_max_image_size_policy_refuses_a_larger_image_before_fetching_it(server, workdir,
                                                                         registries):
    """image-policy.v6.io/max-image-size: a pod whose image's manifest
    declares more bytes fails with ErrImagePull naming the rule, before any
    layer is fetched; the same image is fine in a namespace without the
    limit, and once present it is still refused where the limit applies."""
    reg = registries()
    ref = reg.push(app_image(workdir).image, "team/big:1")
    apply(server, {"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "small", "annotations": {
                       "image-policy.v6.io/max-image-size": "10Ki"}}})

    def pod_in(ns, name):
        p = runc_pod(name, ref)
        p["metadata"]["namespace"] = ns
        return p

    def waiting(ns, name):
        _, p = server.json("GET", "/api/v1/namespaces/%s/pods/%s" % (ns, name))
        cs = (p.get("status") or {}).get("containerStatuses") or [{}]
        return cs[0].get("state", {}).get("waiting", {})

    apply(server, pod_in("small", "big"))
    w = wait_for(lambda: (lambda x: x if x.get("reason") in ("ErrImagePull",
                                                             "ImagePullBackOff") and
                          x.get("message") else None)(waiting("small", "big")),
                 60, "ErrImagePull for the size")
    assert "max-image-size" in w["message"] and "10240 bytes" in w["message"], w
    assert ref not in image_list(server)        # nothing was kept
    assert not os.listdir(os.path.join(store_dir(server), "layers", "sha256"))
    # no limit in default: the same image pulls and runs
    apply(server, pod_in("default", "fine"))
    wait_for(lambda: ref in image_list(server), 60, "the image pulled in default")
    # present now, but still over the limit in small
    apply(server, pod_in("small", "big2"))
    w = wait_for(lambda: (lambda x: x if x.get("message") else None)(waiting("small", "big2")),
                 60, "ErrImagePull of a present image")
    assert "max-image-size" in w["message"], w


class SlowBlobs:
    """A stand-in in front of a docker-registry that holds every blob's
    answer for delay seconds and counts the blob GETs in flight at once."""

    def __init__(self, upstream, delay):
        import http.server
        import threading
        self.delay, self.inflight, self.most, self.blobs = delay, 0, 0, 0
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                import http.client
                blob = "/blobs/" in self.path
                if blob:
                    with lock:
                        outer.inflight += 1
                        outer.blobs += 1
                        outer.most = max(outer.most, outer.inflight)
                try:
                    c = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=30)
                    c.request("GET", self.path, headers={
                        k: v for k, v in self.headers.items() if k.lower() in
                        ("accept", "authorization")})
                    r = c.getresponse()
                    body = r.read()
                    if blob:
                        time.sleep(outer.delay)
                    self.send_response(r.status)
                    for k in ("Content-Type", "Docker-Content-Digest", "WWW-Authenticate"):
                        if r.getheader(k):
                            self.send_header(k, r.getheader(k))
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    if blob:
                        with lock:
                            outer.inflight -= 1

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = "127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_layers_of_one_image_download_three_at_a_time(server, workdir, registries):
    """containerd's default of 3 concurrent downloads: with every blob
    answered after a delay, a 5-layer image pulls in about 1 + 2 delays
    (the config, then the layers 3 and 2 at a time), not 1 + 5; every
    layer is still checked and unpacked, and a pod started with it runs."""
    reg = registries()
    b = ImageBuilder(workdir, "five")
    for i in range(5):
        b.layer([("l%d" % i, "dir", None), ("l%d/f" % i, "file", "layer %d\n" % i)])
    reg.push(b.image, "team/five:1")
    slow = SlowBlobs(reg, 1.5)
    try:
        ref = slow.host + "/team/five:1"
        t0 = time.monotonic()
        st, body = pull(server, ref)
        took = time.monotonic() - t0
        print("5 layers, %.1f s per blob: pulled in %.2f s" % (slow.delay, took))
        assert st == 201 and body["layers"] == 5, body
        assert slow.blobs == 6, slow.blobs          # the config and each layer once
        assert slow.most == 3, "blob GETs at once: %d" % slow.most
        assert took < 1.5 * 5, "the pull took %.1f s" % took
        mnt = os.path.join(workdir, "mnt")
        overlay_view(layer_dirs(server, ref), mnt)
        try:
            assert tree(mnt) == {"l%d%s" % (i, f) for i in range(5) for f in ("", "/f")}
        finally:
            run("umount", mnt)
    finally:
        slow.close()
