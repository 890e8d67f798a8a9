"""Gateway HTTPS listeners end to end: the proxy terminates TLS with the
certificates of the listeners' certificateRefs Secrets (made here with the
openssl CLI: a CA and a leaf per hostname), picks them by SNI, serves a
Secret's new certificate to new connections while a kept-alive connection
goes on, reports a missing or cross-namespace Secret in the listener's
conditions (resolved once a ReferenceGrant allows it), never shows a private key, and stays up under a handshake flood
and garbage bytes on the TLS port, and serves them again after a kill -9."""
import base64
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import threading

from conftest import free_port, wait_for
from test_traffic import deploy

GW_ADDR = "127.3.0.1"
GW_API = "/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways/"


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=30)


def make_ca(d):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", os.path.join(d, "ca.key"), "-out", os.path.join(d, "ca.crt"),
            "-days", "2", "-subj", "/CN=v6 test CA")
    return os.path.join(d, "ca.crt")


def make_leaf(d, name, host, serial):
    """A leaf for host signed by d's CA: (cert PEM, key PEM)."""
    key, csr, crt = (os.path.join(d, name + x) for x in (".key", ".csr", ".crt"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\n" % host)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + host)
    openssl("x509", "-req", "-in", csr, "-CA", os.path.join(d, "ca.crt"), "-CAkey",
            os.path.join(d, "ca.key"), "-set_serial", str(serial), "-days", "2",
            "-extfile", ext, "-out", crt)
    return open(crt).read(), open(key).read()


def secret(name, pair, ns="default"):
    crt, key = pair
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": ns},
            "data": {"tls.crt": base64.b64encode(crt.encode()).decode(),
                     "tls.key": base64.b64encode(key.encode()).decode()}}


def gateway(port, listeners):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "edge", "namespace": "default"},
            "spec": {"gatewayClassName": "v6", "addresses": [{"value": GW_ADDR}],
                     "listeners": [{"name": n, "port": port, "protocol": "HTTPS",
                                    "hostname": h,
                                    "tls": {"certificateRefs": [ref]}}
                                   for n, h, ref in listeners]}}


def route(hosts, backend="web"):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "shop", "namespace": "default"},
            "spec": {"hostnames": hosts, "parentRefs": [{"name": "edge"}],
                     "rules": [{"backendRefs": [{"name": backend, "port": 80}]}]}}


def apply(server, *objs):
    server.v6("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objs),
              check=True)


class TLSConn:
    """One TLS connection to the Gateway with SNI sni, verified against ca
    (hostname checked when check is true); HTTP/1.1 keep-alive on it."""

    def __init__(self, port, sni, ca, check=True):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca)
        ctx.check_hostname = check
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        raw = socket.create_connection((GW_ADDR, port), timeout=5)
        self.sock = ctx.wrap_socket(raw, server_hostname=sni)
        self.conn = http.client.HTTPConnection(GW_ADDR, port, timeout=5)
        self.conn.sock = self.sock
        self.host = sni

    def serial(self):
        return int(self.sock.getpeercert()["serialNumber"], 16)

    def get(self, path="/"):
        self.conn.request("GET", path, headers={"Host": self.host or "x"})
        r = self.conn.getresponse()
        return r.status, r.read()

    def close(self):
        self.conn.close()


def handshake_serial(port, sni, ca, check=True):
    """The serial of the certificate a new connection gets, None if the
    handshake fails (or the name check, when check)."""
    try:
        c = TLSConn(port, sni, ca, check)
    except (OSError, ssl.SSLError):
        return None
    try:
        return c.serial()
    finally:
        c.close()


def listener_cond(server, name, ctype):
    _, gw = server.json("GET", GW_API + "edge", expect=200)
    for l in (gw.get("status") or {}).get("listeners") or []:
        if l["name"] == name:
            for c in l["conditions"]:
                if c["type"] == ctype:
                    return c
    return None


def proxy_files(server):
    d = os.path.join(server.data_dir, "proxy")
    return [os.path.join(d, f) for f in os.listdir(d)]


def proxy_pid(server):
    """The proxy's pid from DATA/proxy/proxy.pid ("PID TICKS"), None while
    the file is missing or being rewritten."""
    try:
        with open(os.path.join(server.data_dir, "proxy", "proxy.pid")) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def test_https_listeners_pick_certificates_by_sni_and_follow_a_secret_update(server,
                                                                             tmp_path):
    deploy(server)
    d = str(tmp_path)
    ca = make_ca(d)
    a1, b1 = make_leaf(d, "a1", "a.example.com", 101), make_leaf(d, "b1", "b.example.com", 201)
    w = make_leaf(d, "w", "*.w.example.com", 401)
    port = free_port()
    apply(server, secret("a-cert", a1), secret("b-cert", b1), secret("w-cert", w),
          gateway(port, [("a", "a.example.com", {"name": "a-cert"}),
                         ("b", "b.example.com", {"name": "b-cert"}),
                         ("w", "*.w.example.com", {"name": "w-cert"})]),
          route(["a.example.com", "b.example.com"]))
    wait_for(lambda: handshake_serial(port, "a.example.com", ca) == 101, 30,
             "the HTTPS listener to serve a.example.com")
    for name in ("a", "b"):
        assert listener_cond(server, name, "ResolvedRefs")["status"] == "True"
        wait_for(lambda: (listener_cond(server, name, "Programmed") or {}).get("status")
                 == "True", 20, "listener %s Programmed" % name)

    # Each hostname its own certificate, verified against the CA; HTTP/1.1
    # negotiated by ALPN; the request reaches the testapp through the route.
    old = TLSConn(port, "a.example.com", ca)
    assert old.serial() == 101
    assert old.sock.selected_alpn_protocol() == "http/1.1"
    status, body = old.get("/")
    assert status == 200, body
    b = TLSConn(port, "b.example.com", ca)
    assert b.serial() == 201
    assert b.get("/")[0] == 200
    b.close()
    # A wildcard listener covers names below it, not its own suffix.
    assert handshake_serial(port, "shop.w.example.com", ca) == 401
    assert handshake_serial(port, "w.example.com", ca, check=False) == 101
    # No SNI (or an unknown name): the port's default, the first listener's.
    assert handshake_serial(port, None, ca, check=False) == 101
    assert handshake_serial(port, "c.example.com", ca, check=False) == 101

    # A new certificate in the Secret: new connections get it, the kept-alive
    # one goes on with its session.
    a2 = make_leaf(d, "a2", "a.example.com", 102)
    apply(server, secret("a-cert", a2))
    wait_for(lambda: handshake_serial(port, "a.example.com", ca) == 102, 20,
             "new connections to get the renewed certificate")
    status, _ = old.get("/")
    assert status == 200
    assert old.serial() == 101
    old.close()

    # Private keys are never shown or logged; the proxy's copies are 0600.
    key_line = a2[1].splitlines()[1]
    for path in proxy_files(server):
        if os.path.isfile(path) and path.endswith((".json", ".journal")):
            assert oct(os.stat(path).st_mode & 0o777) == "0o600", path
    for path in [server.log_path] + [p for p in proxy_files(server) if p.endswith(".log")]:
        assert key_line not in open(path, errors="replace").read(), path
    with open(os.path.join(server.data_dir, "proxy", "admin.addr")) as f:
        admin = f.read().strip()
    c = http.client.HTTPConnection(admin.rsplit(":", 1)[0], int(admin.rsplit(":", 1)[1]),
                                   timeout=5)
    c.request("GET", "/snapshot")
    snap = c.getresponse().read().decode()
    c.close()
    assert "REDACTED" in snap and key_line not in snap


def flood(port, n):
    """n connections at once: garbage, a half handshake, plain HTTP, or a
    connection closed at once; none waits for an answer longer than 2 s."""
    hello = ssl.create_default_context()
    hello.check_hostname = False
    hello.verify_mode = ssl.CERT_NONE

    def one(i):
        try:
            s = socket.create_connection((GW_ADDR, port), timeout=2)
        except OSError:
            return
        try:
            kind = i % 4
            if kind == 0:
                s.sendall(os.urandom(512))
            elif kind == 1:
                s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64))
            elif kind == 2:
                s.sendall(b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
            if kind != 3:
                s.recv(4096)
        except OSError:
            pass
        finally:
            s.close()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)


def test_missing_or_foreign_secret_is_reported_and_garbage_does_not_take_the_proxy_down(
        server, tmp_path):
    d = str(tmp_path)
    ca = make_ca(d)
    a = make_leaf(d, "a", "a.example.com", 301)
    port = free_port()
    apply(server, secret("a-cert", a, ns="kube-public"),
          gateway(port, [("a", "a.example.com", {"name": "a-cert"}),
                         ("b", "b.example.com", {"name": "a-cert",
                                                 "namespace": "kube-public"})]),
          route(["a.example.com"], backend="nothing"))

    def cond_is(name, ctype, status, reason):
        c = listener_cond(server, name, ctype)
        return c is not None and c["status"] == status and c["reason"] == reason
    wait_for(lambda: cond_is("a", "ResolvedRefs", "False", "InvalidCertificateRef"), 20,
             "a missing Secret reported")
    assert "not found" in listener_cond(server, "a", "ResolvedRefs")["message"]
    assert cond_is("a", "Programmed", "False", "Invalid")
    assert cond_is("a", "Accepted", "True", "Accepted")
    wait_for(lambda: cond_is("b", "ResolvedRefs", "False", "RefNotPermitted"), 20,
             "a Secret of another namespace refused")
    assert handshake_serial(port, "a.example.com", ca) is None     # nothing served

    # The Secret arrives: the listener is served and reported so.
    apply(server, secret("a-cert", a))
    wait_for(lambda: handshake_serial(port, "a.example.com", ca) == 301, 30,
             "the listener to serve once its Secret exists")
    wait_for(lambda: cond_is("a", "ResolvedRefs", "True", "ResolvedRefs"), 20,
             "ResolvedRefs once the Secret exists")

    # A ReferenceGrant in the Secret's namespace lets the Gateway use it.
    apply(server, {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
                   "metadata": {"name": "edge-certs", "namespace": "kube-public"},
                   "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                      "namespace": "default"}],
                            "to": [{"group": "", "kind": "Secret", "name": "a-cert"}]}})
    wait_for(lambda: cond_is("b", "ResolvedRefs", "True", "ResolvedRefs"), 20,
             "the granted Secret of another namespace resolved")

    # Plain HTTP on the TLS port gets a plain 400; a client that speaks only
    # h2 is refused in the handshake (ALPN: HTTP/1.1 only).
    with socket.create_connection((GW_ADDR, port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
        assert s.recv(64).startswith(b"HTTP/1.1 400"), "plain HTTP answered 400"
    h2 = ssl.create_default_context(cafile=ca)
    h2.set_alpn_protocols(["h2"])
    with socket.create_connection((GW_ADDR, port), timeout=5) as raw:
        try:
            h2.wrap_socket(raw, server_hostname="a.example.com").close()
            refused = False
        except ssl.SSLError as ex:
            refused = "no application protocol" in str(ex)
    assert refused, "an h2-only client must be refused"

    # Garbage, half handshakes and plain HTTP on the TLS port: the proxy
    # stays the same process and keeps serving handshakes.
    pid = proxy_pid(server)
    for _ in range(3):
        flood(port, 120)
    assert proxy_pid(server) == pid
    os.kill(pid, 0)
    c = TLSConn(port, "a.example.com", ca)
    assert c.serial() == 301
    status, _ = c.get("/")
    assert status in (500, 502, 503), status    # answered: the backend does not exist
    c.close()

    # A proxy killed with SIGKILL is restarted by the server and serves the
    # HTTPS listener again from its saved table (certificates included).
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: proxy_pid(server) not in (None, pid) and
             handshake_serial(port, "a.example.com", ca) == 301, 30,
             "the restarted proxy to serve HTTPS")
