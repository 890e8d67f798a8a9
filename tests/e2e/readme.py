"""A small reader of README.md's shell blocks, so that tests run the README's
commands as written: the ```sh block under a heading, split into commands,
each with the trailing `# comment` (its promise to the reader) kept apart."""
import os
import re

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
README = os.path.join(ROOT, "README.md")


def strip_comment(line):
    """(command, comment): the part before an unquoted ` #`, and the rest."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def section(heading, path=README):
    """The text of the section under a markdown heading (any level) up to the
    next heading of the same or a higher level."""
    with open(path) as f:
        lines = f.read().split("\n")
    out, level, fenced = None, None, False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"^(#+)\s+(.*)$", line)
        if m and out is not None and len(m.group(1)) <= level:
            break
        if m and m.group(2).strip() == heading:
            out, level = [], len(m.group(1))
            continue
        if out is not None:
            out.append(line)
    if out is None:
        raise LookupError("README has no heading %r" % heading)
    return "\n".join(out)


def sh_blocks(text):
    """The ```sh blocks of text, each a list of raw lines."""
    blocks, cur = [], None
    for line in text.split("\n"):
        if cur is None and line.strip() in ("```sh", "```shell", "```bash"):
            cur = []
        elif cur is not None and line.strip() == "```":
            blocks.append(cur)
            cur = None
        elif cur is not None:
            cur.append(line)
    return blocks


def commands(heading, index=0, path=README):
    """[(command, comment)] of the index-th sh block under heading. A line
    holding only a comment continues the previous command's comment."""
    out = []
    for raw in sh_blocks(section(heading, path))[index]:
        cmd, comment = strip_comment(raw)
        if not cmd.strip():
            if comment and out:
                out[-1] = (out[-1][0], out[-1][1] + " " + comment)
            continue
        out.append((cmd.strip(), comment))
    return out
