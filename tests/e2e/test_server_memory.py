"""The server's memory: libraries only some features need (libcurl for
registries and notifications, libarchive for image layers, libgit2 for GitOps,
with their ~30 dependencies, ~7 MB of RSS) are not mapped by a server that has
not used them, and are loaded when a feature first needs one (src/lazylib.c)."""
import os

from conftest import TESTAPP_TAR

LAZY = ("libcurl.so", "libarchive.so", "libgit2.so")


def mapped_libraries(pid):
    with open("/proc/%d/maps" % pid) as f:
        return {os.path.basename(line.split()[5]) for line in f if len(line.split()) > 5}


def maps(libs, prefix):
    return any(lib.startswith(prefix) for lib in libs)


def test_an_idle_server_maps_no_library_it_has_not_used(server):
    libs = mapped_libraries(server.proc.pid)
    for lazy in LAZY:
        assert not maps(libs, lazy), (lazy, sorted(libs))
    # ... nor what only they need
    # (not libstdc++: the sanitizer build maps it for its own runtime)
    for dep in ("libgnutls.so", "libxml2.so", "libicuuc.so", "libssh2.so"):
        assert not maps(libs, dep), (dep, sorted(libs))


def test_importing_an_image_loads_libarchive_then(server):
    assert os.path.exists(TESTAPP_TAR), "no %s: run make" % TESTAPP_TAR
    server.v6("image", "import", TESTAPP_TAR, check=True, timeout=120)
    out = server.v6("image", "ls", check=True).stdout
    assert "testapp" in out, out
    libs = mapped_libraries(server.proc.pid)
    assert maps(libs, "libarchive.so"), sorted(libs)
    assert not maps(libs, "libgit2.so"), sorted(libs)
