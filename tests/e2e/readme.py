"""The README's shell examples as tests run them: commands() reads the ```sh
block under a heading of README.md (so a test breaks when the README
drifts), and Shell runs them one by one in one bash process, as a reader
typing them would (variables and background jobs carry over, `v6` is the
binary under test). Standard library only."""
import os
import queue
import re
import subprocess
import threading
import time
import uuid

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
README = os.path.join(ROOT, "README.md")


class Command:
    """One command line of a README block: its text, its trailing comment
    and the comment lines that follow it (what the README says happens)."""

    def __init__(self, text, comment, lineno):
        self.text = text
        self.comment = comment
        self.notes = []
        self.lineno = lineno

    def says(self):
        return " ".join([self.comment] + self.notes)

    def __repr__(self):
        return "README.md:%d: %s" % (self.lineno, self.text)


def split_comment(line):
    """(command, comment): the comment starts at the first # outside quotes
    that follows whitespace."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def commands(heading, path=README):
    """The commands of the first ```sh block after the heading line that
    contains `heading` (a Markdown heading)."""
    with open(path) as f:
        lines = f.read().split("\n")
    start = next((i for i, l in enumerate(lines)
                  if l.startswith("#") and heading in l), None)
    assert start is not None, "README.md has no heading %r" % heading
    fence = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```sh"))
    out = []
    for i in range(fence + 1, len(lines)):
        line = lines[i]
        if line.startswith("```"):
            break
        text, comment = split_comment(line)
        if not text.strip():
            if comment and out:
                out[-1].notes.append(comment)
            continue
        out.append(Command(text.strip(), comment, i + 1))
    return out


def find(cmds, pattern):
    """The one command whose text matches the regular expression."""
    hits = [c for c in cmds if re.search(pattern, c.text)]
    assert len(hits) == 1, "README commands matching %r: %s" % (pattern, hits)
    return hits[0]


class Shell:
    """One bash process in the repository root; run() feeds it one command
    and returns (exit status, output). `v6` is a function calling v6_bin
    with V6_SERVER set; background jobs (`&`) keep running until close()
    kills the shell's process group."""

    def __init__(self, v6_bin, server_url, env=None):
        e = dict(os.environ, V6_SERVER=server_url, V6_BIN=v6_bin)
        e.update(env or {})
        self.env = e
        self.proc = subprocess.Popen(["bash", "--norc", "--noprofile"], cwd=ROOT, env=e,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1,
                                     start_new_session=True)
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.run('v6() { "$V6_BIN" "$@"; }')

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, text, timeout=120):
        mark = "__rc_%s__" % uuid.uuid4().hex
        # stdin is the script: the command must not read it
        self.proc.stdin.write("{ %s\n} </dev/null\n__rc=$?; echo; echo %s$__rc\n" % (
            text, mark))
        self.proc.stdin.flush()
        out = []
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("%r did not finish in %d s; output so far:\n%s" % (
                    text, timeout, "".join(out)))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("the shell ended during %r:\n%s" % (text, "".join(out)))
            if line.startswith(mark):
                body = "".join(out)
                return int(line[len(mark):]), body[:-1] if body.endswith("\n") else body
            out.append(line)

    def interrupt_when(self, text, want, timeout=120):
        """Runs a command that follows changes until Ctrl-C (`v6 rollout
        watch`, `v6 get -w`) and presses Ctrl-C once its output shows want,
        as the reader would. Returns (exit status, output); raises when want
        never shows. Shell variables are not seen (it runs in its own bash)."""
        p = subprocess.Popen(["bash", "--norc", "--noprofile", "-c",
                              'v6() { "$V6_BIN" "$@"; }; ' + text], cwd=ROOT, env=self.env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
        out, lines = [], queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in p.stdout] + [lines.put(None)],
                         daemon=True).start()
        deadline, seen = time.time() + timeout, False
        try:
            while not seen and time.time() < deadline:
                try:
                    line = lines.get(timeout=max(0.01, deadline - time.time()))
                except queue.Empty:
                    continue
                if line is None:
                    break
                out.append(line)
                seen = want in line
        finally:
            if p.poll() is None:
                os.killpg(p.pid, 2)     # SIGINT, as Ctrl-C
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait(10)
        assert seen, "%r never showed %r:\n%s" % (text, want, "".join(out)[-3000:])
        return p.returncode, "".join(out)

    def close(self):
        try:
            os.killpg(self.proc.pid, 9)
        except OSError:
            pass
        self.proc.wait(10)
