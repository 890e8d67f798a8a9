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
EXEMPT = ("volumes", "workdir", "resolv.conf")


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
        for name in [""] + [f for f in files if f not in EXEMPT]:
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
    specs = [os.path.join(r, f) for r, _, fs in os.walk(server.data_dir)
             for f in fs if f == "spec.json"]
    assert specs, "no container spec.json under the data dir"
    assert exposed_files(server.data_dir) == []
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
