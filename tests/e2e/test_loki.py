"""The built-in Loki shipper (src/obs_loki.c) against a Loki push endpoint
(loki_receiver.py: Loki 2.4's push rules with ordered writes; Debian ships no
Grafana Loki). Pod lines arrive once, in order, with the kubelet-style
labels; nothing is lost or doubled across a kill -9 of V6 or while Loki is
away; a 429 storm is ridden out with back-off; a 1 MB line, invalid UTF-8
and a collector that never answers leave V6 serving. Also: V6's own JSON
log lines (--log-format)."""
import datetime
import json
import os
import re
import sys
import time

import conftest
from conftest import Server
from loki_receiver import LokiReceiver, query_range
from test_pods import apply, get_pod, pod_manifest, wait_for

# numbered lines: "n 00000042 <pad>", RATE per second (0: as fast as it can)
WRITER = """
import sys, time
first, count, rate, pad = %d, %d, %f, %r
w = sys.stdout.write
for i in range(first, first + count):
    w("n %%08d %%s\\n" %% (i, pad))
    if rate:
        sys.stdout.flush()
        time.sleep(1.0 / rate)
sys.stdout.flush()
sys.stderr.write("done\\n")
time.sleep(3600)
"""

FLAGS = ("--loki-batch-wait", "200ms", "--loki-timeout", "2s")


def writer_pod(server, name, count, rate=0.0, pad="x" * 40, labels=None):
    m = pod_manifest(name, [{"name": "c", "image": "python", "command": [
        sys.executable, "-c", WRITER % (0, count, rate, pad)]}])
    m["metadata"]["labels"] = labels or {"app": name + "-app"}
    apply(server, m)


def numbers(values):
    out = []
    for _, line in values:
        m = re.match(r"^n (\d{8}) ", line)
        if m:
            out.append(int(m.group(1)))
    return out


def pod_stream(recv, pod, stream="stdout"):
    res = query_range(recv.url, '{namespace="default",pod="%s",container="c",stream="%s"}'
                      % (pod, stream))
    return res


def wait_lines(recv, pod, count, timeout=90):
    def got():
        res = pod_stream(recv, pod)
        return res and len(numbers(res[0]["values"])) >= count
    wait_for("%d lines of %s in Loki" % (count, pod), got, timeout=timeout, interval=0.2)
    res = pod_stream(recv, pod)
    assert len(res) == 1, res
    return res[0]


def assert_once_in_order(values, count):
    got = numbers(values)
    assert got == list(range(count)), "lost %s, doubled %s" % (
        sorted(set(range(count)) - set(got))[:10],
        sorted(n for n in set(got) if got.count(n) > 1)[:10])
    ts = [int(t) for t, _ in values]
    assert ts == sorted(ts)


def loki_server(recv, data_dir, *extra):
    s = Server(data_dir, ("--loki-url", recv.url) + FLAGS + extra)
    return s


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_pod_lines_arrive_once_in_order_with_labels(make_server):
    recv = LokiReceiver().start()
    try:
        s = make_server("--loki-url", recv.url, "--node-name", "edge-1", *FLAGS)
        writer_pod(s, "talker", 5000)
        st = wait_lines(recv, "talker", 5000)
        assert_once_in_order(st["values"], 5000)
        assert st["stream"] == {"namespace": "default", "pod": "talker", "container": "c",
                                "app": "talker-app", "node": "edge-1", "stream": "stdout",
                                "job": "pods"}, st["stream"]
        wait_for("stderr line", lambda: pod_stream(recv, "talker", "stderr"), timeout=30)
        assert [v[1] for v in pod_stream(recv, "talker", "stderr")[0]["values"]] == ["done"]
        # V6's own log lines: JSON with time/level/component/msg, labelled by
        # component, never by an id
        own = []
        wait_for("V6's own lines", lambda: own.extend(query_range(
            recv.url, '{job="v6",component="loki"}')) or own, timeout=30)
        line = json.loads(own[0]["values"][0][1])
        assert line["component"] == "loki" and line["level"] == "info", line
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", line["time"]), line
        # and the proxy's, from its log file, with their own timestamps
        proxy = []
        wait_for("the proxy's lines", lambda: proxy.extend(query_range(
            recv.url, '{job="v6",component="proxy"}')) or proxy, timeout=30)
        first = proxy[0]["values"][0]
        rec = json.loads(first[1])
        assert rec["component"] == "proxy"
        when = datetime.datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc)
        assert int(first[0]) // 10**6 == int(when.timestamp() * 1000 + 0.5), first
        for res in query_range(recv.url, "{}"):
            assert set(res["stream"]) <= {"namespace", "pod", "container", "app", "node",
                                          "stream", "component", "job"}, res["stream"]
        # a position per file, written once Loki acknowledged
        pos = json.load(open(os.path.join(s.data_dir, "node", "loki", "positions.json")))
        keys = [k for k in pos["files"] if "/default_talker_" in k]
        assert keys and keys[0].startswith("pods/default_talker_") and \
            keys[0].endswith("/c/0.log"), pos
        # a deleted pod's logs go, and so does its position
        s.v6("delete", "pod", "talker", "--wait=false", check=True)

        def forgotten():
            with open(os.path.join(s.data_dir, "node", "loki", "positions.json")) as f:
                return not [k for k in json.load(f)["files"] if "/default_talker_" in k]
        wait_for("talker's position forgotten", forgotten, timeout=60, interval=0.2)
    finally:
        recv.stop()


def test_kill9_of_v6_mid_stream_loses_and_doubles_nothing(workdir):
    recv = LokiReceiver().start()
    s = loki_server(recv, workdir)
    try:
        s.start()
        writer_pod(s, "steady", 6000, rate=1500)
        wait_for("some lines shipped", lambda: pod_stream(recv, "steady") and len(
            numbers(pod_stream(recv, "steady")[0]["values"])) > 500, timeout=60)
        s.kill()
        time.sleep(1)
        s.start()
        wait_for("more lines shipped", lambda: len(
            numbers(pod_stream(recv, "steady")[0]["values"])) > 3000, timeout=60)
        s.kill()
        s.start()
        st = wait_lines(recv, "steady", 6000)
        time.sleep(1.5)     # anything doubled would arrive by now
        assert_once_in_order(pod_stream(recv, "steady")[0]["values"], 6000)
        # resumed from the positions: at most what was unacknowledged at each
        # kill came again (Loki refuses it as out of order, or drops it as a
        # duplicate), not the stream from its start
        again = recv.refused + recv.duplicates
        print("sent again after the restarts:", again)
        assert again < 1500, "%d entries sent again after the restarts" % again
        assert st["stream"]["app"] == "steady-app"
    finally:
        s.close()
        recv.stop()


def test_lines_written_while_loki_is_away_arrive_when_it_is_back(workdir):
    recv = LokiReceiver().start()
    s = loki_server(recv, workdir)
    try:
        s.start()
        writer_pod(s, "away", 4000, rate=800)
        wait_for("first lines", lambda: pod_stream(recv, "away"), timeout=60)
        recv.stop()                          # Loki goes away mid-stream
        wait_for("the pod wrote everything", lambda: log_has(s, "away", "done"), timeout=60)
        time.sleep(1)
        recv.start()                         # same port, same data
        st = wait_lines(recv, "away", 4000)
        assert_once_in_order(st["values"], 4000)
        # and a restart of Loki with V6 restarted meanwhile
        recv.stop()
        s.kill()
        s.start()
        recv.start()
        time.sleep(1.5)
        assert_once_in_order(pod_stream(recv, "away")[0]["values"], 4000)
    finally:
        s.close()
        recv.stop()


def log_has(s, pod, text):
    return text in s.v6("logs", pod).stdout


def test_429_storm_backs_off_and_loses_nothing(workdir, monkeypatch):
    # Under AddressSanitizer freed memory sits in a quarantine (256 MB) and
    # every allocation grows the RSS: turn that off for this server.
    old = os.environ.get("ASAN_OPTIONS", "")
    monkeypatch.setenv("ASAN_OPTIONS", (old + ":" if old else "") +
                       "quarantine_size_mb=0:thread_local_quarantine_size_kb=0")
    recv = LokiReceiver().start()
    recv.fail_429 = 8
    s = loki_server(recv, workdir, "--loki-batch-size", "64Ki")
    try:
        s.start()
        rss0 = rss_kb(s.proc.pid)
        writer_pod(s, "storm", 20000)
        st = wait_lines(recv, "storm", 20000, timeout=120)
        assert_once_in_order(st["values"], 20000)
        refused = [t for t, status, _ in recv.pushes if status == 429]
        assert len(refused) == 8
        gaps = [b - a for a, b in zip(refused, refused[1:])]
        # exponential back-off from 500 ms with jitter: later gaps are longer
        assert gaps[0] >= 0.2 and max(gaps) >= 2.0 and gaps[-1] > gaps[0], gaps
        grown = rss_kb(s.proc.pid) - rss0
        print("429 gaps %s s; server RSS growth %d kB" % (
            ["%.2f" % g for g in gaps], grown))
        assert grown < 64 * 1024, "server RSS grew by %d kB" % grown
    finally:
        s.close()
        recv.stop()


def test_1mb_line_and_invalid_utf8_are_shipped_and_v6_keeps_serving(make_server):
    recv = LokiReceiver(max_line_size=256 * 1024).start()
    try:
        s = make_server("--loki-url", recv.url, *FLAGS)
        script = ("import sys,time\n"
                  "o=sys.stdout.buffer\n"
                  "o.write(b'big ' + b'0123456789abcdef' * 65536 + b'\\n')\n"
                  "o.write(b'bad \\xff\\xfe utf8 \\xc3\\x28 end\\n')\n"
                  "o.write(b'n 00000000 after\\n')\n"
                  "o.flush(); time.sleep(3600)\n")
        apply(s, pod_manifest("odd", [{"name": "c", "image": "python",
                                       "command": [sys.executable, "-c", script]}]))
        st = wait_lines(recv, "odd", 1)
        lines = [v[1] for v in st["values"]]
        # the 1 MB line: split into pieces of at most 256 KiB, in order
        big = [l for l in lines if l.startswith("big ") or set(l) <= set("0123456789abcdef")]
        assert len(big) == 5 and all(len(l.encode()) <= 256 * 1024 for l in big), \
            [len(l) for l in big]
        assert "".join(big) == "big " + "0123456789abcdef" * 65536
        assert "bad \ufffd\ufffd utf8 \ufffd( end" in lines, lines[-3:]
        assert recv.refused == 0
        status, _, _ = s.request("GET", "/api/v1/namespaces/default/pods/odd")
        assert status == 200
    finally:
        recv.stop()


def test_a_hanging_collector_times_out_and_the_api_stays_responsive(workdir):
    recv = LokiReceiver().start()
    recv.hang = True
    s = loki_server(recv, workdir, "--loki-timeout", "1s")
    try:
        s.start()
        writer_pod(s, "hang", 2000, rate=400)
        worst = 0.0
        t_end = time.monotonic() + 6
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            status, _, _ = s.request("GET", "/api/v1/namespaces/default/pods")
            worst = max(worst, time.monotonic() - t0)
            assert status == 200
            time.sleep(0.05)
        assert worst < 0.5 * conftest.TIMEOUT_SCALE, "GET took %.3fs" % worst
        assert len(recv.hung) >= 2, "the shipper did not time out and retry"
        recv.hang = False
        recv.release_hung()
        st = wait_lines(recv, "hang", 2000)
        assert_once_in_order(st["values"], 2000)
    finally:
        s.close()
        recv.stop()


def test_log_format_json_and_text(make_server):
    s = make_server()
    # the first line of the whole file (log() is only the last 4,000 chars)
    first = open(s.log_path, encoding="utf-8").read().splitlines()[0]
    line = json.loads(first)
    assert list(line)[:4] == ["time", "level", "component", "msg"], line
    t = make_server("--log-format", "text")
    text = open(t.log_path, encoding="utf-8").read().splitlines()[0]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info|warn) +\w+: ", text), text
    # the proxy the server starts follows its format
    plog = os.path.join(t.data_dir, "proxy", "proxy.log")
    wait_for("the proxy's first line", lambda: os.path.exists(plog) and
             open(plog).read().strip(), timeout=30)
    ptext = open(plog).read().splitlines()[0]
    assert re.match(r"^\d{4}-\d\d-\d\dT\S+Z (info|warn) +proxy: ", ptext), ptext
    p = conftest.subprocess.run([conftest.V6, "server", "--log-format", "xml"],
                                capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "expected json or text" in p.stderr
