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
