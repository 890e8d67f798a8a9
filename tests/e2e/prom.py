"""Debian's real Prometheus for the e2e tests: one started on a free
loopback port with its own TSDB, scraping what V6's http_sd endpoint lists
every second (optionally reading rule files, with the lifecycle API for
reloads, sending alerts to an Alertmanager), and waits on the value of a
query. Used by test_metrics.py, test_prometheus_rules.py and
test_alertmanager.py."""
import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request

from conftest import TIMEOUT_SCALE, free_port, wait_for

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def stop_process(proc):
    """SIGTERM to proc (a Popen) if it runs, SIGKILL after 20 s."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Prometheus:
    """Debian's prometheus on a free loopback port with its own TSDB,
    scraping every second what V6's http_sd endpoint lists."""

    def __init__(self, workdir, sd_url, port=None, rule_files=None, lifecycle=False,
                 alertmanager=None, interval="1s"):
        self.port = port or free_port()
        self.dir = workdir
        cfg = os.path.join(workdir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("""global:
  scrape_interval: %s
  scrape_timeout: 1s
  evaluation_interval: %s
scrape_configs:
  - job_name: v6
    http_sd_configs:
      - url: %s
        refresh_interval: 1s
    relabel_configs:
      - {source_labels: [__meta_v6_namespace], regex: (.+), target_label: namespace}
      - {source_labels: [__meta_v6_pod], regex: (.+), target_label: pod}
      - {source_labels: [__meta_v6_container], regex: (.+), target_label: container}
      - {source_labels: [__meta_v6_app], regex: (.+), target_label: app}
      - {source_labels: [__meta_v6_revision], regex: (.+), target_label: revision}
""" % (interval, interval, sd_url))
            if rule_files:
                f.write("rule_files:\n  - %s\n" % rule_files)
            if alertmanager:
                f.write("alerting:\n  alertmanagers:\n    - static_configs:\n"
                        "        - targets: ['%s']\n" % alertmanager)
        self.log = open(os.path.join(workdir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + cfg,
             "--storage.tsdb.path=" + os.path.join(workdir, "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"] +
            (["--web.enable-lifecycle"] if lifecycle else []) +
            # firing alerts are re-sent each second (default 1m), so an
            # Alertmanager that was away gets them as soon as it is back
            (["--rules.alert.resend-delay=1s"] if alertmanager else []),
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    def value(self, expr):
        """The value of a one-series query, or None when it has no series."""
        r = self.query(expr)
        assert len(r) <= 1, (expr, r)
        return float(r[0]["value"][1]) if r else None

    def ready(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % self.port,
                                        timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        stop_process(self.proc)
        self.log.close()

    def logtail(self):
        with open(os.path.join(self.dir, "prometheus.log"), "rb") as f:
            return f.read().decode(errors="replace")[-3000:]


def wait_value(p, expr, ok, timeout, what):
    last = []

    def check():
        last[:] = [p.value(expr)]
        return last[0] is not None and ok(last[0])
    try:
        wait_for(check, timeout * TIMEOUT_SCALE, what, interval=0.5)
    except AssertionError:
        raise AssertionError("%s: last value %r" % (what, last))
    return last[0]
