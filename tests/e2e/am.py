"""Debian's real Alertmanager for the e2e tests and the alerting bench: one
started on a loopback port with its own storage, clustering off, routing
every alert to V6's webhook receiver (grouping by alertname, 1 s waits);
and Capture, a local receiver that speaks DingTalk's and WeCom's robot
protocols (checking DingTalk's signature and WeCom's key) and records every
notification it accepts."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request

from conftest import free_port
from prom import stop_process

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


class Alertmanager:
    def __init__(self, workdir, webhook_url, port=None, group_by=("alertname",),
                 repeat="1h", also=()):
        self.port = port or free_port()
        self.dir = workdir
        self.cfg = os.path.join(workdir, "alertmanager.yml")
        with open(self.cfg, "w") as f:
            f.write("""route:
  receiver: v6
  group_by: [%s]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: %s
receivers:
  - name: v6
    webhook_configs:
      - url: %s
        send_resolved: true
""" % (", ".join(group_by), repeat, webhook_url))
            # more webhooks of the same receiver (a baseline without V6)
            for url in also:
                f.write("      - url: %s\n        send_resolved: true\n" % url)
        self.proc = None
        self.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self.log = open(os.path.join(self.dir, "alertmanager.log"), "ab")
        self.proc = subprocess.Popen(
            [ALERTMANAGER, "--config.file=" + self.cfg,
             "--storage.path=" + os.path.join(self.dir, "am-data"),
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--cluster.listen-address=", "--log.level=warn"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)

    def ready(self):
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def alerts(self):
        with urllib.request.urlopen(self.url + "/api/v2/alerts", timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        stop_process(self.proc)
        self.log.close()

    def logtail(self):
        with open(os.path.join(self.dir, "alertmanager.log"), "rb") as f:
            return f.read().decode(errors="replace")[-3000:]


def dingtalk_sign(ts, secret):
    """DingTalk's documented signature: base64 of HMAC-SHA256 keyed with the
    secret over "timestamp\\nsecret" (URL-encoding is the transport's)."""
    mac = hmac.new(secret.encode(), ("%s\n%s" % (ts, secret)).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class Capture:
    """A robot endpoint on a free loopback port. /robot/send?access_token=T
    is DingTalk's (timestamp and sign checked against secret), /cgi-bin/
    webhook/send?key=K is WeCom's, /hook a plain webhook. Accepted
    notifications land in .got as (time, kind, body); refused ones in .refused.
    While .down is set every request gets 503."""

    def __init__(self, secret="SECabc123", key="wecom-key", token="tok"):
        self.secret, self.key, self.token = secret, key, token
        self.got, self.refused = [], []
        self.down = False
        self.lock = threading.Lock()
        cap = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query)
                kind, why = cap.check(u.path, q)
                if cap.down:
                    self.answer(503, {"error": "down"})
                    return
                with cap.lock:
                    if why:
                        cap.refused.append((time.time(), kind, why))
                    else:
                        cap.got.append((time.time(), kind, json.loads(body)))
                if why:
                    self.answer(200, {"errcode": 310000, "errmsg": why})
                else:
                    self.answer(200, {"errcode": 0, "errmsg": "ok"})

            def answer(self, code, doc):
                data = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def check(self, path, q):
        if path == "/robot/send":
            if q.get("access_token") != [self.token]:
                return "dingtalk", "bad access_token"
            ts, sign = q.get("timestamp", [""])[0], q.get("sign", [""])[0]
            if not ts or abs(int(ts) / 1000 - time.time()) > 3600:
                return "dingtalk", "timestamp missing or more than an hour off"
            if sign != dingtalk_sign(ts, self.secret):
                return "dingtalk", "sign not match"
            return "dingtalk", None
        if path == "/cgi-bin/webhook/send":
            return "wecom", None if q.get("key") == [self.key] else "invalid webhook key"
        return "webhook", None

    def url(self, kind):
        base = "http://127.0.0.1:%d" % self.port
        return {"dingtalk": base + "/robot/send?access_token=" + self.token,
                "wecom": base + "/cgi-bin/webhook/send?key=" + self.key,
                "webhook": base + "/hook"}[kind]

    def texts(self, kinds=("dingtalk", "wecom", "webhook")):
        """Every accepted notification's text (markdown) or JSON dump."""
        with self.lock:
            out = []
            for _, kind, b in self.got:
                if kind not in kinds:
                    continue
                if kind == "dingtalk":
                    out.append(b["markdown"]["text"])
                elif kind == "wecom":
                    out.append(b["markdown"]["content"])
                else:
                    out.append(json.dumps(b))
            return out

    def count(self, kind, alertname):
        """Notifications of kind about alertname (the robot's title, the
        webhook's commonLabels)."""
        with self.lock:
            n = 0
            for _, k, b in self.got:
                if k != kind:
                    continue
                if kind == "webhook":
                    n += b.get("commonLabels", {}).get("alertname") == alertname
                else:
                    n += ("] %s\n" % alertname) in b["markdown"].get(
                        "text", b["markdown"].get("content", ""))
            return n

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def receiver_secret(name, kind, url, secret=None):
    data = {"type": kind, "url": url}
    if secret:
        data["secret"] = secret
    return {"apiVersion": "v1", "kind": "Secret", "type": "v6.dev/alert-receiver",
            "metadata": {"name": name, "namespace": "default"}, "stringData": data}
