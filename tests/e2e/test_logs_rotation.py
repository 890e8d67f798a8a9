"""Container log rotation (the shim writes size-rotated CRI files; node_log.c
reads them): a container writing well past the rotation size (10 MiB, the
kubelet's containerLogMaxSize default, or `v6 server
--container-log-max-size`) leaves N.log plus a capped number of rotated
files (--container-log-max-files, the live one included), none past the
size; `v6 logs` still shows the newest lines in order, and `--tail` reaches
across the rotation boundary."""
import glob
import os
import re
import subprocess
import sys

from conftest import V6

from test_pods import apply, get_pod, pod_manifest, wait_for

WRITER = """
import sys
pad = "x" * %d
w = sys.stdout.write
for i in range(%d):
    w("line %%08d %%s\\n" %% (i, pad))
sys.stdout.flush()
"""


def numbers(text):
    return [int(n) for n in re.findall(r"^line (\d{8}) x+$", text, re.M)]


def test_rotated_logs_are_capped_and_read_across_the_boundary(server):
    # the defaults: 10 MiB, the live file and 2 rotated ones; ~40 MiB written
    check_rotation(server, 10 << 20, 2, 40000, 1000)


def test_rotation_size_and_file_count_are_server_flags(make_server):
    s = make_server("--container-log-max-size", "64Ki", "--container-log-max-files", "4")
    check_rotation(s, 64 << 10, 3, 6000, 100)


def test_rotation_flags_are_checked(make_server):
    for flags, msg in ((("--container-log-max-size", "1k"), "between 4Ki and 1T"),
                       (("--container-log-max-files", "1"), "expected 2..64")):
        p = subprocess.run([V6, "server", "--data-dir", "/nonexistent/v6"] + list(flags),
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and msg in p.stderr, (flags, p.returncode, p.stderr)


def check_rotation(server, max_bytes, max_rotated, lines, pad):
    LINES = lines
    apply(server, pod_manifest("chatty", [{
        "name": "c", "image": "python",
        "command": [sys.executable, "-c", WRITER % (pad, lines)]}], restart="Never"))
    wait_for("chatty done", lambda: (get_pod(server, "chatty") or {}).get(
        "status", {}).get("phase") in ("Succeeded", "Failed"), timeout=120)
    assert get_pod(server, "chatty")["status"]["phase"] == "Succeeded"

    uid = get_pod(server, "chatty")["metadata"]["uid"]
    live = glob.glob(os.path.join(server.data_dir, "**", "default_chatty_%s" % uid,
                                  "c", "0.log"), recursive=True)
    assert len(live) == 1, live
    files = sorted(glob.glob(live[0] + "*"))
    assert files == [live[0]] + ["%s.%d" % (live[0], i) for i in range(1, max_rotated + 1)], files
    for f in files:
        assert os.path.getsize(f) <= max_bytes, (f, os.path.getsize(f))

    # everything kept, newest last, no line lost or repeated inside the kept window
    out = server.v6("logs", "chatty", timeout=120, check=True).stdout
    got = numbers(out)
    assert got[-1] == LINES - 1, got[-3:]
    assert got == list(range(got[0], LINES)), "gap or repeat in v6 logs"
    assert got[0] > 0, "nothing was rotated away"
    records = 0
    for f in files:
        with open(f) as fh:
            records += sum(1 for _ in fh)
    assert len(got) == records, (len(got), records)   # every kept record shown

    # --tail across the boundary: more lines than the live file holds
    with open(live[0]) as f:
        in_live = sum(1 for _ in f)
    n = in_live + 100
    tail = server.v6("logs", "chatty", "--tail", str(n), check=True).stdout
    assert numbers(tail) == list(range(LINES - n, LINES)), tail[:200]
    tail = server.v6("logs", "chatty", "--tail", "3", check=True).stdout
    assert numbers(tail) == [LINES - 3, LINES - 2, LINES - 1]
