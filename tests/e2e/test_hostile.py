"""Hostile clients on the TLS port (issue 15 part 7), beside the slowloris,
token brute-force and watch-storm tests of test_tls.py and test_rbac.py:
an oversized client certificate chain is refused at the handshake, and a
flood of unauthenticated TLS requests (a new handshake each; each gets
Kubernetes' 403 for system:anonymous) leaves an
authenticated client served with bounded latency and the server's memory
bounded. Every loop is bounded in count and time; loopback only."""
import os
import socket
import ssl
import threading
import time

import pytest

from conftest import TIMEOUT_SCALE


@pytest.fixture
def tls_server(make_server, monkeypatch):
    """An HTTPS server whose memory figures mean something under
    AddressSanitizer too: freed memory would sit in its 256 MB quarantine."""
    old = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (old + ":" if old else "") +
                       "quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
    return make_server(tls=True)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_oversized_client_certificate_chain_is_refused(tls_server, workdir):
    s = tls_server
    # the admin certificate followed by 2,000 copies of the CA: ~1.5 MB of chain
    with open(os.path.join(s.pki, "admin.crt")) as f:
        leaf = f.read()
    with open(os.path.join(s.pki, "ca.crt")) as f:
        ca = f.read()
    chain = os.path.join(workdir, "huge-chain.pem")
    with open(chain, "w") as f:
        f.write(leaf + ca * 2000)
    assert os.path.getsize(chain) > 1_000_000
    ctx = ssl.create_default_context(cafile=os.path.join(s.pki, "ca.crt"))
    ctx.load_cert_chain(chain, os.path.join(s.pki, "admin.key"))
    before = rss_kib(s.proc.pid)
    refused = 0
    for _ in range(5):
        try:
            with socket.create_connection(("127.0.0.1", s.port), timeout=20) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as c:
                    c.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
                    c.settimeout(20)
                    if not c.recv(1):
                        refused += 1
        except (ssl.SSLError, ConnectionError, socket.timeout) as e:
            print("oversized chain:", e)
            refused += 1
    assert refused == 5, "a 1.5 MB client certificate chain was accepted"
    # the server is up, serves the normal admin, and did not keep the chains
    assert s.json("GET", "/version", expect=200)[1]["major"] == "1"
    assert rss_kib(s.proc.pid) - before < 20 * 1024, (before, rss_kib(s.proc.pid))


def test_unauthenticated_flood_leaves_the_admin_served(tls_server):
    s = tls_server
    anon = ssl.create_default_context(cafile=os.path.join(s.pki, "ca.crt"))
    deadline = time.monotonic() + 20 * TIMEOUT_SCALE
    counts = {"403": 0, "other": 0, "errors": 0}
    lock = threading.Lock()

    def flood():
        for _ in range(150):  # a new TLS handshake and a request without credentials each
            if time.monotonic() > deadline:
                return
            try:
                with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
                    with anon.wrap_socket(raw, server_hostname="localhost") as c:
                        c.sendall(b"GET /api/v1/namespaces/default/secrets HTTP/1.1\r\n"
                                  b"Host: x\r\nConnection: close\r\n\r\n")
                        head = c.recv(64)
                key = "403" if head.startswith(b"HTTP/1.1 403") else "other"
            except (OSError, ssl.SSLError):
                key = "errors"
            with lock:
                counts[key] += 1

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(6)]
    before = rss_kib(s.proc.pid)
    for t in threads:
        t.start()
    # meanwhile the admin works: every request answered, none slow
    worst = 0.0
    for _ in range(20):
        t0 = time.monotonic()
        assert s.json("GET", "/api/v1/namespaces/default/configmaps", expect=200)
        worst = max(worst, time.monotonic() - t0)
        time.sleep(0.05)
    for t in threads:
        t.join(60 * TIMEOUT_SCALE)
    print("flood: %s; the admin's slowest request %.0f ms" % (counts, worst * 1000))
    assert counts["403"] >= 100, counts
    # anonymous, as Kubernetes treats a request without credentials: 403, never data
    assert counts["other"] == 0, counts
    assert worst < 3 * TIMEOUT_SCALE, worst
    assert rss_kib(s.proc.pid) - before < 30 * 1024, (before, rss_kib(s.proc.pid))
