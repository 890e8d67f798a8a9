"""The API front door over TLS (issue 15): `v6 server` serves HTTPS by
default with its own CA in DATA/pki, `v6 kubeconfig` gives the admin's
credentials to the v6 CLI and to stock kubectl, wrong CAs, foreign client
certificates and plain HTTP get clear errors, plain HTTP needs
--insecure-http on loopback, slow handshakes are closed, and certificates
are rotated and renewed online without dropping connections."""
import base64
import calendar
import os
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import V6, TIMEOUT_SCALE, wait_for

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def kubectl(kubeconfig, *args, timeout=60):
    return subprocess.run([KUBECTL, "--kubeconfig", kubeconfig] + list(args),
                          capture_output=True, text=True, timeout=timeout * TIMEOUT_SCALE)


def peer_cert(server, conn=None):
    """The DER serving certificate a (new) TLS connection sees."""
    if conn is None:
        conn = server.connect(timeout=10)
        conn.connect()
    return conn.sock.getpeercert(binary_form=True)


def serial_of(der):
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem,
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split("=", 1)[1]


def make_ca(workdir, name):
    """Another CA and a client certificate it signed (openssl CLI)."""
    key, crt = os.path.join(workdir, name + "-ca.key"), os.path.join(workdir, name + "-ca.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "1", "-subj", "/CN=%s" % name], check=True, capture_output=True)
    ckey, ccsr = os.path.join(workdir, name + ".key"), os.path.join(workdir, name + ".csr")
    ccrt = os.path.join(workdir, name + ".crt")
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", ckey, "-out", ccsr, "-subj",
                    "/O=system:masters/CN=mallory"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", ccsr, "-CA", crt, "-CAkey", key,
                    "-CAcreateserial", "-out", ccrt, "-days", "1"], check=True,
                   capture_output=True)
    return crt, ccrt, ckey


def b64file(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def edit_kubeconfig(src, dst, **repl):
    """A copy of the kubeconfig src with fields (dashes as underscores)
    replaced by new values."""
    with open(src) as f:
        text = f.read()
    for key, val in repl.items():
        key = key.replace("_", "-")
        text = re.sub(r"(?m)^(\s*%s: ).*$" % re.escape(key), lambda m: m.group(1) + val, text)
    with open(dst, "w") as f:
        f.write(text)
    return dst


def test_server_makes_its_pki_and_serves_https_to_v6_and_kubectl(tls_server, workdir):
    pki = tls_server.pki
    assert os.stat(pki).st_mode & 0o777 == 0o700
    for name in ("ca", "server", "admin"):
        for ext in ("crt", "key"):
            st = os.stat(os.path.join(pki, "%s.%s" % (name, ext)))
            assert st.st_mode & 0o777 == 0o600, (name, ext, oct(st.st_mode))
    # the kubeconfig: server, CA and admin certificate inline, 0600
    kc = os.path.join(workdir, "kc")
    p = subprocess.run([V6, "kubeconfig", "--data-dir", tls_server.data_dir, "--out", kc],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert os.stat(kc).st_mode & 0o777 == 0o600
    text = open(kc).read()
    assert "server: https://127.0.0.1:%d\n" % tls_server.port in text
    assert "certificate-authority-data: " + b64file(os.path.join(pki, "ca.crt")) in text
    assert "client-certificate-data: " + b64file(os.path.join(pki, "admin.crt")) in text
    # the same on stdout
    p = subprocess.run([V6, "kubeconfig", "--data-dir", tls_server.data_dir],
                       capture_output=True, text=True, timeout=30)
    assert p.stdout == text
    # the v6 CLI through $KUBECONFIG (no V6_SERVER)
    env = dict(os.environ, KUBECONFIG=kc)
    env.pop("V6_SERVER", None)
    p = subprocess.run([V6, "get", "namespaces"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and "kube-system" in p.stdout, p.stderr
    # stock kubectl with the same file
    p = kubectl(kc, "version")
    assert p.returncode == 0 and "Server Version: v1." in p.stdout, p.stdout + p.stderr
    p = kubectl(kc, "get", "pods")
    assert p.returncode == 0, p.stderr
    p = kubectl(kc, "get", "namespaces")
    assert p.returncode == 0 and "kube-system" in p.stdout, p.stderr
    # the serving certificate names loopback and localhost
    p = tls_server.v6("certs", "status", "--data-dir", tls_server.data_dir)
    assert p.returncode == 0, p.stderr
    line = [l for l in p.stdout.splitlines() if l.startswith("server ")][0]
    assert "IP:127.0.0.1" in line and "IP:::1" in line and "DNS:localhost" in line, line
    admin = [l for l in p.stdout.splitlines() if l.startswith("admin ")][0]
    assert "CN=v6-admin" in admin and "O=system:masters" in admin, admin
    # ... and it is reused by a restart
    before = peer_cert(tls_server)
    tls_server.stop()
    tls_server.start()
    assert peer_cert(tls_server) == before


def test_wrong_ca_foreign_cert_and_plain_http_give_clear_errors(tls_server, workdir):
    good = tls_server.kubeconfig()
    other_ca, other_crt, other_key = make_ca(workdir, "other")
    env = dict(os.environ)
    env.pop("V6_SERVER", None)

    def v6(kc, *args):
        return subprocess.run([V6, "--kubeconfig", kc] + list(args), env=env,
                              capture_output=True, text=True, timeout=60)

    # a CA that did not sign the server's certificate
    wrong_ca = edit_kubeconfig(good, os.path.join(workdir, "wrong-ca"),
                               certificate_authority_data=b64file(other_ca))
    p = v6(wrong_ca, "get", "pods")
    assert p.returncode != 0
    assert "not signed by the CA in use" in p.stderr, p.stderr
    p = kubectl(wrong_ca, "get", "pods")
    assert p.returncode != 0 and "certificate signed by unknown authority" in p.stderr, p.stderr
    # a client certificate of another CA: the handshake is refused
    foreign = edit_kubeconfig(good, os.path.join(workdir, "foreign"),
                              client_certificate_data=b64file(other_crt),
                              client_key_data=b64file(other_key))
    p = v6(foreign, "get", "pods")
    assert p.returncode != 0 and "handshake failed" in p.stderr, p.stderr
    p = kubectl(foreign, "get", "pods")
    assert p.returncode != 0, p.stdout
    # plain HTTP to the TLS port: a plain 400 that says so
    p = subprocess.run([V6, "get", "pods", "--server", "http://127.0.0.1:%d" % tls_server.port],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "Client sent an HTTP request to an HTTPS server." in p.stderr, p.stderr
    # (kubectl's discovery does not print the body: "the server rejected our request")
    p = kubectl(good, "--server", "http://127.0.0.1:%d" % tls_server.port, "get", "pods")
    assert p.returncode != 0 and "rejected our request" in p.stderr, p.stderr
    # none of it hurt the server
    assert tls_server.json("GET", "/api/v1/namespaces", expect=200)[1]["items"]


def test_insecure_http_only_on_loopback(tmp_path):
    p = subprocess.run([V6, "server", "--data-dir", str(tmp_path), "--insecure-http",
                        "--listen", "0.0.0.0:0"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "--insecure-http" in p.stderr and "loopback" in p.stderr, p.stderr
    assert not os.path.exists(tmp_path / "pki")


def test_slow_tls_clients_are_closed_and_never_block_others(tls_server):
    """Slowloris on the TLS port: connections that never finish a handshake
    are closed at the header timeout (10 s) while everyone else is served."""
    slow = []
    for i in range(20):
        s = socket.create_connection(("127.0.0.1", tls_server.port), timeout=30)
        if i % 2:
            s.sendall(b"\x16\x03")  # half a record header, then nothing
        slow.append(s)
    t0 = time.monotonic()
    for _ in range(5):
        assert tls_server.json("GET", "/version", expect=200)[1]["major"] == "1"
    assert time.monotonic() - t0 < 5 * TIMEOUT_SCALE
    for s in slow:
        s.settimeout(30 * TIMEOUT_SCALE)
        assert s.recv(1) == b""  # closed by the server
        s.close()
    assert time.monotonic() - t0 < 25 * TIMEOUT_SCALE


def test_rotate_serves_a_new_certificate_and_keeps_open_connections(tls_server):
    old_conn = tls_server.connect(timeout=10)
    old_conn.request("GET", "/version")
    assert old_conn.getresponse().read()
    before = peer_cert(tls_server, old_conn)
    p = tls_server.v6("certs", "rotate")
    assert p.returncode == 0, p.stderr
    m = re.search(r"^server: renewed, serial ([0-9A-F]+)", p.stdout, re.M)
    assert m, p.stdout
    after = peer_cert(tls_server)
    assert after != before
    assert serial_of(after) == m.group(1)
    # the keep-alive connection from before still answers
    old_conn.request("GET", "/version")
    r = old_conn.getresponse()
    assert r.status == 200 and b"gitVersion" in r.read()
    old_conn.close()
    # the metric follows the new certificate
    end = subprocess.run(["openssl", "x509", "-noout", "-enddate"],
                         input=ssl.DER_cert_to_PEM_cert(after), capture_output=True,
                         text=True, check=True).stdout.strip().split("=", 1)[1]
    notafter = calendar.timegm(time.strptime(end, "%b %d %H:%M:%S %Y %Z"))
    _, _, body = tls_server.request("GET", "/metrics")
    m = re.search(rb'^v6_certificate_expiration_timestamp_seconds\{name="server"\} (\S+)$',
                  body, re.M)
    assert m and int(float(m.group(1))) == notafter, (m, notafter)


def test_short_lived_certificate_is_renewed_before_it_expires(make_server):
    srv = make_server("--cert-lifetime", "6s", tls=True)
    conn = srv.connect(timeout=10)
    conn.request("GET", "/version")
    assert conn.getresponse().read()
    first = peer_cert(srv, conn)
    seen = set([first])

    def renewed_twice():
        seen.add(peer_cert(srv))
        return len(seen) >= 3
    # renewed with a third of its 6 s left: about every 4 s
    wait_for(renewed_twice, 20, "the serving certificate renewed twice", interval=0.5)
    conn.request("GET", "/version")
    assert conn.getresponse().status == 200
    assert "renewed" in srv.log()
