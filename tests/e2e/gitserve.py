"""gitserve.py — a git repository for tests and benchmarks: a bare repo
with a work tree that commits and pushes with the git CLI (Repo), served
over loopback by git's smart HTTP protocol through `git http-backend` as a
CGI behind a small threaded http.server (GitHTTP), optionally behind basic
auth and TLS (a self-signed certificate for 127.0.0.1). Used by tests/e2e/test_gitops.py and bench/gitops. Standard library
only; no pytest."""
import base64
import http.server
import os
import ssl
import subprocess
import threading


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
    without those Basic credentials get 401; with tls=True it speaks HTTPS
    with a self-signed certificate made for 127.0.0.1 (openssl)."""

    def __init__(self, root, auth=None, tls=False):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self.cgi()

            def do_POST(self):
                self.cgi()

            def read_chunked(self, limit=64 << 20):
                """An HTTP/1.1 chunked request body (RFC 9112 7.1), bounded."""
                out = b""
                for _ in range(1 << 20):
                    size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline(1024)
                    assert len(out) <= limit, "request body too large"
                return out

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
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    body = self.read_chunked()  # libgit2 pushes this way
                else:
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
        self.scheme = "https" if tls else "http"
        if tls:
            key, crt = os.path.join(root, "git-tls.key"), os.path.join(root, "git-tls.crt")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                            "-subj", "/CN=127.0.0.1", "-addext",
                            "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt],
                           check=True, capture_output=True, timeout=30)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(crt, key)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name="origin.git"):
        return "%s://127.0.0.1:%d/%s" % (self.scheme, self.port, name)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
