"""Secrets at rest, as a user (or an attacker with a shell on the node) sees
them: the data directory is private to V6 (no file readable by group or
other, the database unreadable to an unprivileged user), Secret data is
encrypted in the database and its journal with the keys of an
--encryption-provider-config file, read back in plaintext through the API,
and survives a key rotation with `v6 secrets reencrypt`.
Runs as root (CI does): reading as `nobody` needs it."""
import base64
import json
import os
import stat
import subprocess

import conftest
from test_pods import apply, get_pod, pod_manifest, sh, wait_for

MARKER = "s3cr3t-marker-7f1c2a"
# Pod files a container reads as any user keep their pod's modes (see
# docs/security.md, "Data directory"); the tree above them is 0700.
EXEMPT = ("volumes", "workdir", "resolv.conf", "layers", "prometheus-rules", "upper",
          "work", "rootfs")


def exempt(root, name):
    """Also a pod's working dir node/pods/UID (logs are node/pods/NS_NAME_UID)."""
    return name in EXEMPT or (root.endswith("/node/pods") and "_" not in name)


def secret(name, value=MARKER):
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"password": base64.b64encode(value.encode()).decode()}}


def exposed_files(top):
    """Every path under top (top included) that group or other may read,
    write or search, not entering the exempt pod files nor other mounts."""
    bad, dev = [], os.lstat(top).st_dev
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if not exempt(root, d)
                   and os.lstat(os.path.join(root, d)).st_dev == dev]
        # node/shared (itself private) holds the one copy of pod files many
        # pods link (ca.crt, namespace, resolv.conf): readable like the
        # exempt pod files they are, so a non-root container reads its own
        shared = root.endswith("/node/shared")
        for name in [""] + [f for f in files if f not in EXEMPT and not shared]:
            path = os.path.join(root, name) if name else root
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o077:
                bad.append("%s %o" % (path, st.st_mode & 0o7777))
    return bad


def as_nobody(*argv):
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           *argv], capture_output=True, text=True, timeout=30)


def test_data_dir_is_private_after_a_secret_using_pod_ran(server):
    apply(server, secret("db"))
    env = [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]
    apply(server, pod_manifest("app", [sh("c", 'echo "started"; exec sleep 600', env=env)]))
    wait_for("app running", lambda: (get_pod(server, "app") or {}).get(
        "status", {}).get("phase") == "Running", timeout=60)
    wait_for("app logged", lambda: "started" in server.v6("logs", "app").stdout, timeout=30)
    specs = [os.path.join(r, f) for r, _, fs in os.walk(server.data_dir, followlinks=True)
             for f in fs if f == "spec.json"]
    assert specs, "no container spec.json under the data dir"
    assert exposed_files(server.data_dir) == []
    ctrs = os.path.join(server.data_dir, "node", "containers")
    if os.path.islink(ctrs):        # on tmpfs (node_rundir.c): inside a private dir
        base = os.path.dirname(os.path.dirname(os.readlink(ctrs)))   # RUN/containers
        assert os.lstat(base).st_mode & 0o7777 == 0o700, oct(os.lstat(base).st_mode)
    db = os.path.join(server.data_dir, "v6.db")
    p = as_nobody("cat", db)
    assert p.returncode != 0 and "Permission denied" in p.stderr, p
    p = as_nobody("ls", os.path.join(server.data_dir, "node"))
    assert p.returncode != 0, p


def test_an_old_install_is_made_private_at_start(make_server):
    s = make_server()
    s.stop()
    loose = os.path.join(s.data_dir, "node", "old-state.json")
    with open(loose, "w") as f:
        f.write("{}")
    os.chmod(loose, 0o644)
    os.chmod(s.data_dir, 0o755)
    os.chmod(os.path.join(s.data_dir, "v6.db"), 0o644)
    s.start()
    assert exposed_files(s.data_dir) == []
    with open(s.log_path, errors="replace") as f:
        assert "removed group and other access" in f.read()


# ---- Secrets encrypted in the store ----------------------------------------

def b64(raw):
    return base64.b64encode(raw).decode()


def enc_config(path, *providers):
    """An EncryptionConfiguration for secrets with these providers, e.g.
    ("aesgcm", [("k1", KEY)]), ("identity", None)."""
    provs = [{kind: ({"keys": [{"name": n, "secret": b64(k)} for n, k in keys]}
                     if keys else {})} for kind, keys in providers]
    with open(path, "w") as f:
        json.dump({"apiVersion": "apiserver.config.k8s.io/v1",
                   "kind": "EncryptionConfiguration",
                   "resources": [{"resources": ["secrets"], "providers": provs}]}, f)


def raw_files(data_dir):
    """The database and its WAL as bytes (read beside the running server)."""
    out = b""
    for name in ("v6.db", "v6.db-wal"):
        try:
            with open(os.path.join(data_dir, name), "rb") as f:
                out += f.read()
        except FileNotFoundError:
            pass
    return out


def stored_rows(data_dir, name):
    """Every stored form of secret default/name: its objects row and its
    journal rows (read with the server stopped: it holds the db locked)."""
    import sqlite3
    db = sqlite3.connect(os.path.join(data_dir, "v6.db"))
    try:
        rows = db.execute("SELECT data FROM objects WHERE res = 'secrets' AND name = ?"
                          " UNION ALL SELECT data FROM journal WHERE res = 'secrets'"
                          " AND name = ?", (name, name)).fetchall()
    finally:
        db.close()
    return [bytes(r[0]) if isinstance(r[0], bytes) else r[0].encode() for r in rows]


def password(server, name):
    status, obj = server.json("GET", "/api/v1/namespaces/default/secrets/" + name)
    assert status == 200, obj
    return base64.b64decode(obj["data"]["password"]).decode()


def test_secret_is_encrypted_at_rest_and_plain_through_the_api(make_server, workdir):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    key = os.urandom(32)
    cfg = os.path.join(workdir, "enc.yaml")
    enc_config(cfg, ("aesgcm", [("key1", key)]))
    s = make_server("--encryption-provider-config", cfg)
    apply(s, secret("db"))
    assert password(s, "db") == MARKER
    status, lst = s.json("GET", "/api/v1/secrets")
    assert [base64.b64decode(i["data"]["password"]).decode() for i in lst["items"]
            if i["metadata"]["name"] == "db"] == [MARKER]
    raw = raw_files(s.data_dir)
    assert b"k8s:enc:aesgcm:v1:key1:" in raw
    assert MARKER.encode() not in raw and b64(MARKER.encode()).encode() not in raw
    s.stop()
    rows = stored_rows(s.data_dir, "db")
    assert len(rows) >= 2  # the object and its journal row
    prefix = b"k8s:enc:aesgcm:v1:key1:"
    for r in rows:  # the apiserver's format, opened by another implementation
        assert r.startswith(prefix), r[:40]
        body = r[len(prefix):]
        plain = AESGCM(key).decrypt(body[:12], body[12:], b"/registry/secrets/default/db")
        assert json.loads(plain)["data"]["password"] == b64(MARKER.encode())
    s.start()
    assert password(s, "db") == MARKER


def test_key_rotation_rewrites_every_secret_and_an_unknown_key_is_named(make_server,
                                                                        workdir):
    k1, k2, k3 = os.urandom(32), os.urandom(16), os.urandom(32)
    cfg = os.path.join(workdir, "enc.yaml")
    enc_config(cfg, ("aesgcm", [("key1", k1)]))
    s = make_server("--encryption-provider-config", cfg)
    apply(s, secret("db"))
    apply(s, secret("api", "other-" + MARKER))
    s.stop()

    enc_config(cfg, ("aesgcm", [("key2", k2), ("key1", k1)]))  # new first key, old kept
    s.start()
    assert password(s, "db") == MARKER
    s.stop()
    for name in ("db", "api"):
        rows = stored_rows(s.data_dir, name)
        assert rows and all(r.startswith(b"k8s:enc:aesgcm:v1:key2:") for r in rows), \
            [r[:30] for r in rows]

    enc_config(cfg, ("aesgcm", [("key2", k2)]))  # the old key removed
    s.start()
    assert password(s, "db") == MARKER
    assert password(s, "api") == "other-" + MARKER
    apply(s, secret("later"))
    s.stop()

    enc_config(cfg, ("secretbox", [("key3", k3)]), ("aesgcm", [("key2", k2)]))
    s.start()
    assert password(s, "later") == MARKER
    s.stop()
    assert all(r.startswith(b"k8s:enc:secretbox:v1:key3:")
               for r in stored_rows(s.data_dir, "db"))

    enc_config(cfg, ("aesgcm", [("key2", k2)]))  # key3 forgotten
    s.start()
    status, body = s.json("GET", "/api/v1/namespaces/default/secrets/db")
    assert status == 500, body
    with open(s.log_path, errors="replace") as f:
        assert 'encrypted with secretbox key \\"key3\\", which the encryption ' \
            'configuration does not list' in f.read()


def test_turning_encryption_on_and_off_rewrites_the_store(make_server, workdir):
    cfg = os.path.join(workdir, "enc.yaml")
    s = make_server()
    apply(s, secret("db"))
    s.stop()
    assert all(r.startswith(b"{") for r in stored_rows(s.data_dir, "db"))
    s.extra_args += ["--encryption-provider-config", cfg]
    enc_config(cfg, ("aesgcm", [("k", os.urandom(32))]), ("identity", None))
    s.start()
    assert password(s, "db") == MARKER
    raw = raw_files(s.data_dir)  # no plaintext left in freed space nor in the WAL
    assert b64(MARKER.encode()).encode() not in raw
    s.stop()
    assert all(r.startswith(b"k8s:enc:aesgcm:v1:k:") for r in stored_rows(s.data_dir, "db"))


def test_a_bad_encryption_config_stops_the_server_with_the_field(workdir):
    cfg = os.path.join(workdir, "enc.yaml")
    with open(cfg, "w") as f:
        f.write("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
                "resources:\n- resources: [secrets]\n  providers:\n"
                "  - aesgcm:\n      keys:\n      - name: k1\n        secret: c2hvcnQ=\n")
    p = subprocess.run([os.environ["V6_BIN"], "server", "--data-dir",
                        os.path.join(workdir, "data"), "--listen", "127.0.0.1:0",
                        "--encryption-provider-config", cfg],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "resources[0].providers[0].aesgcm.keys[0].secret: must be the base64 of a " \
        "aesgcm key (16, 24 or 32 bytes)" in p.stderr, p.stderr
    assert "c2hvcnQ" not in p.stderr


# ---- Secret data never in logs, events or error messages -------------------

ENV_FILES = ("spec.json", "config.json")


def marker_hits(data_dir):
    """Files under data_dir holding the marker (or its base64), but for the
    containers' spec.json and runc's config.json: they hold the resolved
    environment, values from secretKeyRef included, and are 0600
    (docs/security.md)."""
    needles = (MARKER.encode(), b64(MARKER.encode()).encode())
    hits = []
    for root, _, files in os.walk(data_dir, followlinks=True):
        for f in files:
            path = os.path.join(root, f)
            if f in ENV_FILES or not os.path.isfile(path):
                continue
            with open(path, "rb") as fh:
                raw = fh.read()
            hits += [path for n in needles if n in raw]
    return hits


def test_secret_values_appear_in_no_log_event_or_error(make_server, workdir):
    cfg = os.path.join(workdir, "enc.yaml")
    enc_config(cfg, ("aesgcm", [("k", os.urandom(32))]))
    s = make_server("--encryption-provider-config", cfg, "--log-level", "debug")
    ns = "/api/v1/namespaces/default/secrets"
    m64 = b64(MARKER.encode())
    meta = {"namespace": "default"}
    bad = [  # each is refused: the answer must not quote the value
        {"data": {"password": "!!" + MARKER + "!!"}},               # not base64
        {"data": MARKER},                                           # not a map
        {"data": {"password": {"nested": m64}}},                    # not a string
        {"data": {"password": [m64]}},
        {"stringData": {"password": 42, "other": MARKER}, "data": 7},
        {"data": {"bad key!": m64, "password": "!" + MARKER}},
        {"type": 5, "data": {"password": "*" + MARKER}},
    ]
    bodies = []
    for i, extra in enumerate(bad):
        obj = {"apiVersion": "v1", "kind": "Secret",
               "metadata": dict(meta, name="bad%d" % i)}
        obj.update(extra)
        status, _, body = s.request("POST", ns, obj)
        assert status in (400, 422), (extra, status, body)
        bodies.append(body)
    # a body that is not even JSON, cut in the middle of the value
    status, _, body = s.request("POST", ns, '{"apiVersion":"v1","kind":"Secret",'
                                '"metadata":{"name":"cut"},"data":{"password":"' + m64)
    assert status == 400, body
    bodies.append(body)
    # an immutable Secret changed: refused without echoing old or new data
    apply(s, dict(secret("frozen"), immutable=True))
    status, _, body = s.request("PUT", ns + "/frozen", dict(
        secret("frozen", "new-" + MARKER), immutable=True))
    assert status == 422, body
    bodies.append(body)
    # the CLI's view of a refused apply
    p = s.v6("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cli"},
         "data": {"password": "%" + MARKER}}))
    assert p.returncode != 0
    bodies.append((p.stdout + p.stderr).encode())
    # a pod using the Secret, and one using a key it does not have
    env = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "frozen", "key": "password"}}}]
    apply(s, pod_manifest("user", [sh("c", 'test -n "$PW" && echo ok; exec sleep 600', env=env)]))
    env2 = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "frozen", "key": "nope"}}}]
    apply(s, pod_manifest("miss", [sh("c", "sleep 600", env=env2)]))
    wait_for("user logged", lambda: "ok" in s.v6("logs", "user").stdout, timeout=60)
    wait_for("miss event", lambda: "nope" in json.dumps(
        s.json("GET", "/api/v1/events")[1]), timeout=60)
    status, events = s.json("GET", "/api/v1/events")
    bodies.append(json.dumps(events).encode())
    for body in bodies:
        assert MARKER.encode() not in body and m64.encode() not in body, body[:600]
    s.stop()
    assert marker_hits(s.data_dir) == []
    specs = [os.path.join(r, f) for r, _, fs in os.walk(s.data_dir, followlinks=True) for f in fs
             if f in ENV_FILES]  # the one place the value is (0600): the grep sees it
    assert any(MARKER.encode() in open(p, "rb").read() for p in specs), specs


# ---- the audit log ---------------------------------------------------------

AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  resources: [{group: "", resources: [events]}]
- level: RequestResponse
  resources: [{group: "", resources: [secrets, configmaps]}]
- level: RequestResponse
  verbs: [get]
  resources: [{group: "", resources: [services]}]
- level: Request
  verbs: [create]
  namespaces: [default]
  omitStages: [RequestReceived]
- level: Metadata
"""


def audit_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_audit_log_records_levels_and_never_secret_data(make_server, workdir):
    log, pol = os.path.join(workdir, "audit.log"), os.path.join(workdir, "policy.yaml")
    with open(pol, "w") as f:
        f.write(AUDIT_POLICY)
    s = make_server("--audit-log-path", log, "--audit-policy-file", pol)
    apply(s, secret("db"))
    s.json("POST", "/api/v1/namespaces/default/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
        "data": {"k": MARKER}}, expect=201)
    s.json("POST", "/api/v1/namespaces/default/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}]}}, expect=201)
    s.json("GET", "/api/v1/namespaces/default/pods", expect=200)
    s.json("GET", "/api/v1/namespaces/default/services/web", expect=200)
    s.json("GET", "/api/v1/events", expect=200)
    s.json("GET", "/api/v1/namespaces/default/secrets/db", expect=200)
    s.json("GET", "/api/v1/namespaces/default/secrets/nope", expect=404)

    def find(verb, resource, name=None):
        return [e for e in audit_lines(log) if e["verb"] == verb
                and e.get("objectRef", {}).get("resource") == resource
                and (name is None or e["objectRef"].get("name") == name)]
    wait_for("audit lines", lambda: find("get", "secrets", "nope"), timeout=20)
    raw = open(log).read()
    assert MARKER not in raw and b64(MARKER.encode()) not in raw

    svc = find("create", "services")
    assert [e["stage"] for e in svc] == ["ResponseComplete"]  # RequestReceived omitted
    e = svc[0]
    assert e["level"] == "Request" and e["apiVersion"] == "audit.k8s.io/v1"
    assert e["kind"] == "Event" and e["requestObject"]["metadata"]["name"] == "web"
    assert e["objectRef"] == {"resource": "services", "namespace": "default",
                              "apiVersion": "v1"}
    assert e["responseStatus"]["code"] == 201
    # The plain loopback listener without credentials: the unsecured admin.
    assert e["user"] == {"username": "system:unsecured",
                         "groups": ["system:masters", "system:authenticated"]}
    assert e["sourceIPs"] == ["127.0.0.1"] and e["requestURI"].endswith("/services")
    assert e["requestReceivedTimestamp"] <= e["stageTimestamp"]

    sec = find("create", "secrets")
    assert sec and all(x["level"] == "RequestResponse" and "requestObject" not in x
                       and "responseObject" not in x for x in sec)
    assert sec[0]["userAgent"]  # the CLI says who it is
    cm = find("create", "configmaps")
    assert cm and "requestObject" not in cm[0]
    got = find("get", "secrets", "db")
    assert got and got[-1]["responseStatus"]["code"] == 200  # (apply GETs first: 404)
    assert all("responseObject" not in x for x in got)
    web = find("get", "services", "web")[-1]
    assert web["level"] == "RequestResponse" and web["stage"] == "ResponseComplete"
    assert web["responseObject"]["kind"] == "Service"
    assert web["responseObject"]["metadata"]["name"] == "web"
    assert "responseObject" not in svc[0]  # Request level: the request only
    assert find("get", "secrets", "nope")[-1]["responseStatus"]["code"] == 404

    pods = find("list", "pods")
    assert [x["stage"] for x in pods] == ["RequestReceived", "ResponseComplete"]
    assert pods[0]["level"] == "Metadata" and pods[0]["auditID"] == pods[1]["auditID"]
    assert find("list", "events") == []  # level None
