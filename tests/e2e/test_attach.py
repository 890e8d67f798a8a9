"""pods/attach: `kubectl attach` (the real kubectl 1.32, WebSocket
v5.channel.k8s.io) and `v6 attach` join a running container's main
process: what it writes from then on arrives on stdout / stderr, -i feeds
its stdin when the container was started with stdin: true (and is dropped
for one started without), the stream ends with exit 0 when the container
exits. stdinOnce: the first attach's end is the container's EOF; tty: the
container's stdio is a terminal that attach -t drives (with resize).
Process runtime; the runc side is in test_kubectl_exec_runc.py."""
import re
import os
import subprocess
import threading
import time

from conftest import TIMEOUT_SCALE, V6, wait_for
from test_kubectl_exec import Kubectl, run_in_pty

PODS = "/api/v1/namespaces/default/pods"

# reads lines and answers on stdout and stderr; "quit" ends it
ECHO = ("while read l; do echo \"out:$l\"; echo \"err:$l\" >&2; "
        "[ \"$l\" = quit ] && exit 0; done; echo eof; sleep 600")


def make_pod(server, name, script, stdin=True, **extra):
    c = {"name": "main", "image": "x", "command": ["sh", "-c", script]}
    if stdin:
        c["stdin"] = True
    c.update(extra)
    server.json("POST", PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                               "spec": {"terminationGracePeriodSeconds": 1, "restartPolicy": "Never",
                                        "containers": [c]}}, expect=201)

    def running():
        _, p = server.json("GET", PODS + "/" + name)
        return p.get("status", {}).get("phase") == "Running"
    wait_for(running, 30, "pod %s running" % name)


def phase(server, name):
    _, p = server.json("GET", PODS + "/" + name)
    return p["status"]["phase"]


def attach(argv, env, feed=None, timeout=60):
    """Runs an attach; feed: [(delay seconds, bytes)] written to its stdin
    in order, then stdin is left open until it exits."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        for delay, data in feed or []:
            time.sleep(delay * TIMEOUT_SCALE)
            p.stdin.write(data)
            p.stdin.flush()
        out, err = p.communicate(timeout=timeout * TIMEOUT_SCALE)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, out.decode(), err.decode()


def test_kubectl_and_v6_attach_with_stdin_until_the_container_exits(server, tmp_path):
    make_pod(server, "echo", ECHO)
    k = Kubectl(server, str(tmp_path))
    # first attach: kubectl's; the container keeps running after "hi"
    # (the attach is ended by the test, as a user's Ctrl-C would)
    p = subprocess.Popen(k.base + ["attach", "-i", "echo"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=k.env)
    try:
        time.sleep(1.5 * TIMEOUT_SCALE)     # the stream is up before the line goes
        p.stdin.write(b"hi\n")
        p.stdin.flush()
        line = p.stdout.readline()
        assert line == b"out:hi\n", (line, p.stderr.read1() if p.poll() is not None else "")
    finally:
        p.kill()
        p.wait()
    assert phase(server, "echo") == "Running"
    # then v6 attach: only what comes after it, both streams, and the end
    # of the container ends the attach with exit 0
    env = dict(os.environ, V6_SERVER=server.url)
    code, out, err = attach([V6, "attach", "-i", "pod/echo"], env,
                            [(1.5, b"two\n"), (0.5, b"quit\n")])
    assert code == 0, (code, out, err)
    assert out == "out:two\nout:quit\n", (out, err)
    assert err == "err:two\nerr:quit\n", err
    wait_for(lambda: phase(server, "echo") == "Succeeded", 30, "the container's exit")


def test_attach_without_stdin_streams_output_only(server, tmp_path):
    # a counter: attach sees the lines written after it joined, not before
    make_pod(server, "count", "i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo n$i; "
             "sleep 0.2; done", stdin=False)
    time.sleep(1)
    env = dict(os.environ, V6_SERVER=server.url)
    p = subprocess.Popen([V6, "attach", "count", "-i"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        p.stdin.write(b"dropped\n")     # no stdin: dropped, as containerd does
        p.stdin.flush()
        first = int(p.stdout.readline().decode().strip()[1:])
        second = int(p.stdout.readline().decode().strip()[1:])
    finally:
        p.kill()
        p.wait()
    assert first > 3 and second == first + 1, (first, second)
    status, _, log = server.request("GET", PODS + "/count/log")
    assert status == 200 and b"n1\n" in log and b"dropped" not in log
    # -t: no terminal was allocated; said as kubectl says it, then attached
    k = Kubectl(server, str(tmp_path))
    p = subprocess.Popen(k.base + ["attach", "-t", "count"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=k.env)
    try:
        line = p.stdout.readline()
        assert line.startswith(b"n"), line
    finally:
        p.kill()
        _, err = p.communicate()
    assert b"Unable to use a TTY - container main did not allocate one" in err, err
    server.json("DELETE", PODS + "/count")


def test_attach_errors(server):
    make_pod(server, "echo", ECHO)
    env = dict(os.environ, V6_SERVER=server.url)
    p = subprocess.run([V6, "attach", "nope"], env=env, capture_output=True, text=True,
                       timeout=30 * TIMEOUT_SCALE)
    assert p.returncode == 1 and 'pods "nope" not found' in p.stderr, p
    p = subprocess.run([V6, "attach", "echo", "-c", "other"], env=env, capture_output=True,
                       text=True, timeout=30 * TIMEOUT_SCALE)
    assert p.returncode == 1 and "container other is not valid for pod echo" in p.stderr, p
    p = subprocess.run([V6, "attach"], env=env, capture_output=True, text=True)
    assert p.returncode == 1 and "exactly one pod" in p.stderr
    # a plain request (no WebSocket) is refused as an upgrade kubectl understands
    status, _, body = server.request("POST", PODS + "/echo/attach?stdout=true")
    assert status == 400 and b"unable to upgrade connection" in body, (status, body)


def test_stdin_once_the_first_attach_end_is_the_containers_eof(server, tmp_path):
    make_pod(server, "once", "cat; echo done", stdinOnce=True)
    k = Kubectl(server, str(tmp_path))
    # kubectl attach -i: "hello", then its stdin ends, so does the container's
    code, out, err = attach(k.base + ["attach", "-i", "once"], k.env, [(1.5, b"hello\n")])
    assert code == 0, (code, out, err)
    assert out.startswith("hello\n"), (out, err)
    wait_for(lambda: phase(server, "once") == "Succeeded", 30, "the container's exit")
    _, p = server.json("GET", PODS + "/once")
    term = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["reason"] == "Completed", term
    status, _, log = server.request("GET", PODS + "/once/log")
    assert status == 200 and log == b"hello\ndone\n", log


def test_tty_container_attach_drives_its_terminal(server, tmp_path):
    make_pod(server, "tsh", "sh", tty=True)
    env = dict(os.environ, V6_SERVER=server.url)
    # v6 attach -it from a 30x100 terminal: the container's stdio is a pty
    # of that size; ending the attach (the user's Ctrl-C) leaves it running
    code, out = run_in_pty([V6, "attach", "-it", "tsh"], env, 30, 100,
                           [(r"", lambda m, pid: (time.sleep(1.5 * TIMEOUT_SCALE),
                                                  os.write(m, b"tty; stty size\r"))),
                            (r"(?m)^30 100\r?$", lambda m, pid: os.kill(pid, 15))])
    assert re.search(r"(?m)^/dev/pts/\d+\r?$", out), out
    assert phase(server, "tsh") == "Running"
    # kubectl attach -it from a 25x90 one: the resize reached the terminal
    k = Kubectl(server, str(tmp_path))
    code, out = run_in_pty(k.base + ["attach", "-it", "tsh"], k.env, 25, 90,
                           [(r"", lambda m, pid: (time.sleep(1.5 * TIMEOUT_SCALE),
                                                  os.write(m, b"stty size; exit\r")))])
    assert code == 0, out
    assert re.search(r"(?m)^25 90\r?$", out), out
    wait_for(lambda: phase(server, "tsh") == "Succeeded", 30, "the shell's exit")
    status, _, log = server.request("GET", PODS + "/tsh/log")
    assert status == 200 and re.search(rb"/dev/pts/\d+\r\n", log), log
    assert b"30 100\r\n" in log and b"25 90\r\n" in log, log


def test_kubectl_attach_over_its_spdy_fallback(server, tmp_path):
    """kubectl's SPDY/3.1 fallback (v4.channel.k8s.io), as it speaks it when
    the WebSocket upgrade fails or KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false:
    stdin in, stdout and stderr out, exit 0 with the container's end; with
    -t the terminal follows kubectl's size."""
    make_pod(server, "secho", ECHO)
    make_pod(server, "stsh", "sh", tty=True)
    k = Kubectl(server, str(tmp_path))
    env = dict(k.env, KUBECTL_REMOTE_COMMAND_WEBSOCKETS="false")
    code, out, err = attach(k.base + ["attach", "-i", "secho"], env,
                            [(1.5, b"over spdy\n"), (0.5, b"quit\n")])
    assert code == 0, (code, out, err)
    assert out == "out:over spdy\nout:quit\n", (out, err)
    assert "err:over spdy\nerr:quit\n" in err, err
    wait_for(lambda: phase(server, "secho") == "Succeeded", 30, "the container's exit")
    code, out = run_in_pty(k.base + ["attach", "-it", "stsh"], env, 27, 95,
                           [(r"", lambda m, pid: (time.sleep(1.5 * TIMEOUT_SCALE),
                                                  os.write(m, b"stty size; exit\r")))])
    assert code == 0, out
    assert re.search(r"(?m)^27 95\r?$", out), out
    wait_for(lambda: phase(server, "stsh") == "Succeeded", 30, "the shell's exit")


def test_a_silent_container_has_no_log_file_until_it_writes(server, tmp_path):
    # The shim makes the CRI log (and its directories) with the first output,
    # so a burst of silent pods makes no disk inode for it; `logs` reads the
    # missing file as empty, and `logs -f` and attach, started before the
    # file exists, see the first line once it is written.
    make_pod(server, "quiet", "read l < /dev/null; sleep 3; echo late; sleep 600", stdin=False)
    _, pod = server.json("GET", PODS + "/quiet")
    uid = pod["metadata"]["uid"]
    log_dir = os.path.join(server.data_dir, "node", "pods", "default_quiet_" + uid)
    assert not os.path.exists(log_dir), os.listdir(os.path.dirname(log_dir))
    status, _, log = server.request("GET", PODS + "/quiet/log")
    assert status == 200 and log == b"", (status, log)
    env = dict(os.environ, V6_SERVER=server.url)
    procs = [subprocess.Popen([V6, "logs", "-f", "quiet"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env),
             subprocess.Popen([V6, "attach", "quiet"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env)]
    stop = [threading.Timer(30 * TIMEOUT_SCALE, p.kill) for p in procs]    # bounds readline
    try:
        for t in stop:
            t.start()
        for p in procs:
            assert p.stdout.readline() == b"late\n"
    finally:
        for t, p in zip(stop, procs):
            t.cancel()
            p.kill()
            p.wait()
    assert os.path.exists(os.path.join(log_dir, "main", "0.log"))
    server.json("DELETE", PODS + "/quiet")
