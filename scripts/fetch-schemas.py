#!/usr/bin/env python3
"""fetch-schemas.py — fetch the upstream schemas tests/schemas/ holds again.

Downloads the pinned npm packages (`npm pack`, checked against the sha512 recorded
below), keeps the compiled validators (`_schemas/*.js`) reachable from the kinds in
tests/schemas/kinds.json and writes tests/schemas/fields.json, the field names of every
upstream type read from the packages' TypeScript declarations (the validators do not
reject unknown fields; Kubernetes' strict field validation does). Run it only to move to
new versions; make test uses the committed files and needs no network.
Usage: scripts/fetch-schemas.py
"""
import base64, hashlib, json, os, re, shutil, subprocess, sys, tarfile, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEST = os.path.join(ROOT, "tests", "schemas")

# name, version, npm "integrity" (sha512, base64)
PACKAGES = [
    ("kubernetes-models", "5.1.0",
     "ym4Kiyr8BzGIWj4f853ytVYES1B8C1BdONRP5zodItPD1o//OEKuTwC5nFV3ZJtFGeMqOFbIYkpunSVXSlHS8g=="),
    ("@kubernetes-models/apimachinery", "3.0.2",
     "6Vbzr/tinxPBGGdfYjXiV9WPj8PEhyiqGJiWhXrsihK7h6glPj4HKUxZ0YwYXH/5uucm/NVef/xY3vZ4Crj1Fg=="),
    ("@kubernetes-models/argo-rollouts", "2.0.0",
     "bKva0rPs0/kN7iWBmMTeNZytV7vCYHHr2/QhcBfOnp+y8daM5BJlHLd1yE+6JBkh5Z4k24QoQXbAMuZSbcwU1A=="),
    ("@kubernetes-models/gateway-api", "2.0.0",
     "e7SY7EkCGRHy5wHkaGhP32v7V1L+gBalfoqZDFDWn5k9Q7+IW6uz9jNWgOZ9R/Hv5NWyAFYaA01ET2qsysVt5A=="),
    ("@kubernetes-models/validate", "5.0.2",
     "EzfxB8mu2VPlFYSwsMlZdgTeeqJGI2R58irUrZJWHxJqOqOhnau/oS9KNCZKXjdC2vFubU6v81m2CrIoU+/pxQ=="),
]


def integrity(path):
    with open(path, "rb") as f:
        return base64.b64encode(hashlib.sha512(f.read()).digest()).decode()


def fetch(name, version, want, tmp):
    out = subprocess.run(["npm", "pack", "--silent", f"{name}@{version}"], cwd=tmp,
                         check=True, capture_output=True, text=True).stdout.split()[-1]
    tgz = os.path.join(tmp, out)
    got = integrity(tgz)
    if want and got != want:
        sys.exit(f"{name}@{version}: sha512 {got} != recorded {want}")
    top = os.path.join(tmp, name.replace("/", "+"))
    with tarfile.open(tgz) as t:
        t.extractall(top, filter="data")
    return os.path.join(top, "package"), got


IMPORT_RE = re.compile(r'import\s*\{\s*(\w+)\s*\}\s*from\s*"([^"]+)"')
SCHEMA_IMPORT_RE = re.compile(r'from"((?:\./|@kubernetes-models/apimachinery/_schemas/|'
                              r'kubernetes-models/_schemas/)[^"]+)"')


def pkg_of(spec):
    """'@kubernetes-models/apimachinery/apis/meta/v1/X' -> (pkg, rest)."""
    if spec.startswith("@"):
        a, b, rest = spec.split("/", 2)
        return a + "/" + b, rest
    a, rest = spec.split("/", 1)
    return a, rest


def parse_type(t):
    """A TypeScript property type -> field-map node: None (a scalar or free form),
    ("ref", spec), ("array", node) or ("map", node)."""
    t = t.strip()
    m = re.fullmatch(r"Array<(.*)>", t, re.S)
    if m:
        return ("array", parse_type(m.group(1)))
    m = re.fullmatch(r"\{\s*\[key: string\]:\s*(.*?);?\s*\}", t, re.S)
    if m:
        return ("map", parse_type(m.group(1)))
    if re.fullmatch(r"I\w+", t):
        return ("ref", t)
    return None


def interface_fields(text):
    """Properties of the model: {name: (type, required)}. The class declaration
    lists them all (an interface may extend another and list only its own)."""
    m = (re.search(r"export declare class \w+ extends [^{]+\{", text) or
         re.search(r"export interface \w+(?: extends [^{]+)?\s*\{", text))
    if not m:
        return None
    i, depth, body = m.end(), 1, []
    while depth:
        c = text[i]
        depth += (c == "{") - (c == "}")
        body.append(c)
        i += 1
    body = re.sub(r"/\*\*.*?\*/", "", "".join(body[:-1]), flags=re.S)
    fields, pos = {}, 0
    prop = re.compile(r'\s*"([^"]+)"(\??):\s*')
    while True:
        m = prop.match(body, pos)
        if not m:
            break
        j, depth = m.end(), 0
        while depth or body[j] != ";":
            depth += (body[j] in "{<") - (body[j] in "}>")
            j += 1
        fields[m.group(1)] = (body[m.end():j], m.group(2) != "?")
        pos = j + 1
    return fields


class Fields:
    """Walks the declarations from the root kinds, naming each type by its module
    spec ('kubernetes-models/apps/v1/Deployment')."""

    def __init__(self, dirs):
        self.dirs, self.types = dirs, {}

    def load(self, spec):
        if spec in self.types:
            return
        pkg, rest = pkg_of(spec)
        path = os.path.join(self.dirs[pkg], rest + ".d.ts")
        text = open(path).read()
        imports = {n: os.path.normpath(os.path.join(os.path.dirname(spec), s[:-3]))
                   if s.startswith(".") else s for n, s in IMPORT_RE.findall(text)}
        raw = interface_fields(text)
        self.types[spec] = None
        if raw is None:          # a type alias: IntOrString, Quantity, Time...
            return
        out = {}

        def resolve(node):
            if node is None:
                return None
            if node[0] == "ref":
                target = imports.get(node[1])
                if target is None:
                    return None
                self.load(target)
                return target if self.types.get(target) is not None else None
            inner = resolve(node[1])
            return [node[0], inner] if inner is not None else [node[0], None]

        for name, (t, req) in raw.items():
            out[name] = {"type": resolve(parse_type(t)), "required": req}
        self.types[spec] = out


def reachable_js(dirs, roots):
    """The compiled validator files reachable from the roots: {pkg: set(names)}."""
    seen, todo = {}, list(roots)
    while todo:
        pkg, name = todo.pop()
        if name in seen.setdefault(pkg, set()):
            continue
        seen[pkg].add(name)
        text = open(os.path.join(dirs[pkg], "_schemas", name + ".js")).read()
        for spec in SCHEMA_IMPORT_RE.findall(text):
            if spec.startswith("./"):
                todo.append((pkg, spec[2:].removesuffix(".js")))
            else:
                p, rest = pkg_of(spec)
                todo.append((p, rest.split("/", 1)[1].removesuffix(".js")))
    return seen


def main():
    kinds = json.load(open(os.path.join(DEST, "kinds.json")))
    with tempfile.TemporaryDirectory() as tmp:
        dirs, sums = {}, {}
        for name, version, want in PACKAGES:
            dirs[name], sums[name] = fetch(name, version, want, tmp)
        roots = [(k["package"], k["schema"]) for k in kinds["kinds"]]
        js = reachable_js(dirs, roots)
        f = Fields(dirs)
        for k in kinds["kinds"]:
            f.load(k["package"] + "/" + k["model"])
        nm = os.path.join(DEST, "node_modules")
        shutil.rmtree(nm, ignore_errors=True)
        for pkg, names in js.items():
            d = os.path.join(nm, pkg, "_schemas")
            os.makedirs(d)
            for n in sorted(names):
                shutil.copy(os.path.join(dirs[pkg], "_schemas", n + ".js"), d)
            shutil.copy(os.path.join(dirs[pkg], "LICENSE"), os.path.join(nm, pkg))
            with open(os.path.join(nm, pkg, "package.json"), "w") as o:
                json.dump({"name": pkg, "type": "module", "exports": {
                    "./_schemas/*.js": "./_schemas/*.js", "./_schemas/*": "./_schemas/*.js"}}, o)
        # the validators import formats and ucs2length from @kubernetes-models/validate:
        # V6's small stand-ins (formats.js, ucs2length.js), so ajv is not needed
        v = os.path.join(nm, "@kubernetes-models", "validate")
        os.makedirs(os.path.join(v, "runtime"), exist_ok=True)
        shutil.copy(os.path.join(DEST, "ucs2length.js"), os.path.join(v, "runtime"))
        shutil.copy(os.path.join(dirs["@kubernetes-models/validate"], "LICENSE"), v)
        shutil.copy(os.path.join(DEST, "formats.js"), os.path.join(v, "index.js"))
        with open(os.path.join(v, "package.json"), "w") as o:
            json.dump({"name": "@kubernetes-models/validate", "type": "module",
                       "exports": {".": "./index.js",
                                   "./runtime/ucs2length": "./runtime/ucs2length.js"}}, o)
        with open(os.path.join(DEST, "fields.json"), "w") as o:
            json.dump({k: f.types[k] for k in sorted(f.types) if f.types[k] is not None},
                      o, indent=0, sort_keys=True)
        with open(os.path.join(DEST, "packages.lock"), "w") as o:
            for name, version, _ in PACKAGES:
                o.write(f"{name}@{version} sha512-{sums[name]}\n")
    print("tests/schemas updated:", sum(len(v) for v in js.values()), "validators,",
          len(f.types), "types")


if __name__ == "__main__":
    main()
