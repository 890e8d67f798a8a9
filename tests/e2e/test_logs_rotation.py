"""Container log rotation (the shim writes size-rotated CRI files; node_log.c
reads them): a container writing well past the rotation size (10 MiB, the
kubelet's containerLogMaxSize default) leaves N.log plus a capped number of
rotated files, none past the size; `v6 logs` still shows the newest lines in
order, and `--tail` reaches across the rotation boundary."""
import glob
import os
import re
import sys

from test_pods import apply, get_pod, pod_manifest, wait_for

MAX_BYTES = 10 << 20
MAX_ROTATED = 2         # rotated files kept besides the live one
LINES = 40000           # ~40 MiB of ~1 KiB lines: four rotations' worth

WRITER = """
import sys
pad = "x" * 1000
w = sys.stdout.write
for i in range(%d):
    w("line %%08d %%s\\n" %% (i, pad))
sys.stdout.flush()
""" % LINES


def numbers(text):
    return [int(n) for n in re.findall(r"^line (\d{8}) x+$", text, re.M)]


def test_rotated_logs_are_capped_and_read_across_the_boundary(server):
    apply(server, pod_manifest("chatty", [{"name": "c", "image": "python",
                                           "command": [sys.executable, "-c", WRITER]}],
                               restart="Never"))
    wait_for("chatty done", lambda: (get_pod(server, "chatty") or {}).get(
        "status", {}).get("phase") in ("Succeeded", "Failed"), timeout=120)
    assert get_pod(server, "chatty")["status"]["phase"] == "Succeeded"

    uid = get_pod(server, "chatty")["metadata"]["uid"]
    live = glob.glob(os.path.join(server.data_dir, "**", "default_chatty_%s" % uid,
                                  "c", "0.log"), recursive=True)
    assert len(live) == 1, live
    files = sorted(glob.glob(live[0] + "*"))
    assert files == [live[0]] + ["%s.%d" % (live[0], i) for i in range(1, MAX_ROTATED + 1)], files
    for f in files:
        assert os.path.getsize(f) <= MAX_BYTES, (f, os.path.getsize(f))

    # everything kept, newest last, no line lost or repeated inside the kept window
    out = server.v6("logs", "chatty", timeout=120, check=True).stdout
    got = numbers(out)
    assert got[-1] == LINES - 1, got[-3:]
    assert got == list(range(got[0], LINES)), "gap or repeat in v6 logs"
    assert got[0] > 0, "nothing was rotated away"
    kept = sum(os.path.getsize(f) for f in files)
    assert len(out) >= kept * 0.9, (len(out), kept)   # the files, minus the CRI prefixes

    # --tail across the boundary: more lines than the live file holds
    with open(live[0]) as f:
        in_live = sum(1 for _ in f)
    n = in_live + 100
    tail = server.v6("logs", "chatty", "--tail", str(n), check=True).stdout
    assert numbers(tail) == list(range(LINES - n, LINES)), tail[:200]
    tail = server.v6("logs", "chatty", "--tail", "3", check=True).stdout
    assert numbers(tail) == [LINES - 3, LINES - 2, LINES - 1]
