#!/usr/bin/env python3
"""check.py — every manifest V6 ships must run on a real cluster: checks them against
the vendored upstream schemas (validate.mjs) and Argo Rollouts' controller-side rules
(argo_rollout_errors, after pkg/apis/rollouts/validation/validation.go of Argo Rollouts
v1.8). Run by `make test` (phase "schemas"); tests import check_docs().
Usage: tests/schemas/check.py [FILE|DIR ...]   (default: everything V6 ships)
       tests/schemas/check.py --recorded DIR   (what e2e tests applied, V6_SCHEMA_RECORD)
"""
import glob, json, os, re, subprocess, sys, tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Kinds with no upstream schema vendored here (V6's own or other projects' CRDs);
# anything else unknown to kinds.json is an error.
OTHER_KINDS = {"kustomize.config.k8s.io/v1beta1/Kustomization",
               "argoproj.io/v1alpha1/Application",
               "monitoring.coreos.com/v1/PrometheusRule",
               "autoscaling.k8s.io/v1/VerticalPodAutoscaler",
               "apiserver.config.k8s.io/v1/EncryptionConfiguration",
               "v1/List"}


# ---- Argo Rollouts' controller rules (the InvalidSpec condition) ------------

def _pct_or_int(v, default):
    if v is None:
        v = default
    if isinstance(v, str) and v.endswith("%"):
        return int(v[:-1] or 0)
    return int(v)


def _duration_s(d):
    if d is None:
        return 0
    if isinstance(d, int):
        return d
    m = re.fullmatch(r"(\d+)([smh]?)", str(d))
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)] if m else -1


def _string_match(m, path, errs):
    n = sum(1 for k in ("exact", "regex", "prefix") if (m or {}).get(k))
    if n != 1:
        errs.append(f"{path}: StringMatch match value must have exactly one of the "
                    "following: exact, regex, prefix")


def argo_rollout_errors(ro):
    """The messages Argo's ValidateRollout gives for a Rollout, as 'path: message'."""
    errs, spec = [], ro.get("spec") or {}
    sel = spec.get("selector")
    if spec.get("workloadRef") is None:
        if not sel:
            errs.append("spec.selector: Rollout has missing field '.spec.selector'")
        elif not sel.get("matchLabels") and not sel.get("matchExpressions"):
            errs.append("spec.selector: empty selector is invalid for deployment")
    if spec.get("progressDeadlineSeconds", 600) <= spec.get("minReadySeconds", 0):
        errs.append("spec.progressDeadlineSeconds: must be greater than minReadySeconds")
    st = spec.get("strategy") or {}
    bg, c = st.get("blueGreen"), st.get("canary")
    if bg is None and c is None:
        errs.append("spec.strategy: Rollout has missing field "
                    "'.spec.strategy.canary or .spec.strategy.blueGreen'")
    elif bg is not None and c is not None:
        errs.append("spec.strategy: Multiple Strategies can not be listed")
    elif bg is not None:
        if bg.get("activeService") == bg.get("previewService"):
            errs.append("spec.strategy.activeService: This rollout uses the same service "
                        "for the active and preview services, but two different services "
                        "are required.")
        lim = bg.get("scaleDownDelayRevisionLimit")
        if lim is not None and spec.get("revisionHistoryLimit", 10) < lim:
            errs.append("spec.strategy.scaleDownDelayRevisionLimit: This rollout's revision "
                        "history limit can not be smaller than the rollout's scale down limit")
    else:
        _argo_canary(c, "spec.strategy", errs)
    return errs


def _argo_canary(c, fp, errs):
    tr = c.get("trafficRouting")
    if _pct_or_int(c.get("maxSurge"), "25%") == 0 and \
            _pct_or_int(c.get("maxUnavailable"), "25%") == 0:
        errs.append(f"{fp}.maxSurge: MaxSurge and MaxUnavailable both can not be zero")
    if c.get("canaryService") and c.get("canaryService") == c.get("stableService"):
        errs.append(f"{fp}.stableService: This rollout uses the same service for the "
                    "stable and canary services, but two different services are required.")
    meshes = ("alb", "smi", "apisix", "ambassador", "nginx", "appMesh", "traefik")
    if tr and (any(tr.get(k) for k in meshes) or
               (tr.get("istio") and not tr["istio"].get("destinationRule"))):
        for s in ("stableService", "canaryService"):
            if not c.get(s):
                errs.append(f"{fp}.{s}: Canary service and Stable service must to be set "
                            "to use Traffic Routing")
    if tr is None:
        if c.get("scaleDownDelaySeconds") is not None:
            errs.append(f"{fp}.scaleDownDelaySeconds: Canary scaleDownDelaySeconds can "
                        "only be used with traffic routing")
        if c.get("dynamicStableScale"):
            errs.append(f"{fp}.dynamicStableScale: Canary dynamicStableScale can only be "
                        "used with traffic routing")
    else:
        if c.get("scaleDownDelaySeconds") is not None and c.get("dynamicStableScale"):
            errs.append(f"{fp}.dynamicStableScale: Canary dynamicStableScale cannot be "
                        "used with scaleDownDelaySeconds")
        if tr.get("maxTrafficWeight") is not None and not tr.get("nginx") and \
                not tr.get("plugins"):
            errs.append(f"{fp}.trafficRouting.maxTrafficWeight: Canary maxTrafficWeight in "
                        "traffic routing only support in Nginx and Plugins")
    max_w = (tr or {}).get("maxTrafficWeight") or 100
    managed = [r.get("name") for r in (tr or {}).get("managedRoutes") or []]
    kinds = ("setWeight", "pause", "experiment", "analysis", "setCanaryScale",
             "setHeaderRoute", "setMirrorRoute", "plugin")
    for i, s in enumerate(c.get("steps") or []):
        sp = f"{fp}.steps[{i}]"
        if sum(1 for k in ("setWeight", "pause", "experiment", "analysis") if k in s) > 1 \
                or not any(k in s for k in kinds):
            errs.append(f"{sp}: Step must have one of the following set: experiment, "
                        "setWeight, setCanaryScale or pause")
        if "setWeight" in s and not 0 <= s["setWeight"] <= max_w:
            errs.append(f"{sp}.setWeight: SetWeight needs to be between 0 and {max_w}")
        if "pause" in s and _duration_s((s["pause"] or {}).get("duration")) < 0:
            errs.append(f"{sp}.pause.duration: Duration needs to be greater than 0")
        if "setCanaryScale" in s and tr is None:
            errs.append(f"{fp}.trafficRouting: SetCanaryScale requires TrafficRouting to "
                        "be set")
        hr = s.get("setHeaderRoute")
        if hr is not None:
            if not tr or not (tr.get("istio") or tr.get("alb") or tr.get("apisix") or
                              tr.get("plugins")):
                errs.append(f"{sp}.setHeaderRoute: SetHeaderRoute requires TrafficRouting, "
                            "supports Istio and ALB and Apisix")
            else:
                for j, m in enumerate(hr.get("match") or []):
                    _string_match(m.get("headerValue"), f"{sp}.setHeaderRoute.match[{j}]",
                                  errs)
        mr = s.get("setMirrorRoute")
        if mr is not None and not (tr or {}).get("istio"):
            errs.append(f"{sp}.setMirrorRoute: SetMirrorRoute requires TrafficRouting, "
                        "supports Istio only")
        for key, route in (("setHeaderRoute", hr), ("setMirrorRoute", mr)):
            if route is None or tr is None:
                continue
            if tr.get("managedRoutes") is None:
                errs.append(f"{fp}.trafficRouting.managedRoutes: Rollout has missing field "
                            "'spec.strategy.canary.trafficRouting.managedRoutes'")
            elif route.get("name") not in managed:
                errs.append(f"{sp}.{key}: Steps define a route that does not exist in "
                            "spec.strategy.canary.trafficRouting.managedRoutes")


# ---- collecting what V6 ships -------------------------------------------------

def docs_of_yaml(text, source):
    out = []
    for n, d in enumerate(yaml.safe_load_all(text)):
        if isinstance(d, dict) and d.get("kind") == "List":
            out += [(f"{source}#{n}.{i}", x) for i, x in enumerate(d.get("items") or [])]
        elif isinstance(d, dict) and "apiVersion" in d and "kind" in d:
            out.append((f"{source}#{n}", d))
    return out


FENCE = re.compile(r"^```ya?ml[^\n]*\n(.*?)^```", re.S | re.M)


def docs_of_markdown(path):
    """YAML blocks of a page that are manifests (apiVersion and kind at the top,
    no "..." or <placeholder> in them)."""
    text, out = open(path).read(), []
    for m in FENCE.finditer(text):
        block = m.group(1)
        # a block with elisions ("...") or <placeholders> is an illustration
        if not re.search(r"^apiVersion:", block, re.M) or "..." in block or \
                re.search(r"[:,\[{]\s*<[^>\n]+>", block):
            continue
        line = text.count("\n", 0, m.start()) + 2
        out += docs_of_yaml(block, f"{os.path.relpath(path, ROOT)}:{line}")
    return out


def docs_of_path(path):
    rel = os.path.relpath(path, ROOT)
    if path.endswith(".md"):
        return docs_of_markdown(path)
    text = open(path).read()
    if path.endswith(".json"):
        return [(rel, json.loads(text))]
    return docs_of_yaml(text, rel)


def shipped_files():
    files = sorted(glob.glob(os.path.join(ROOT, "examples", "**", "*.y*ml"),
                             recursive=True))
    files += sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    files += [os.path.join(ROOT, "README.md")]
    return files


def kustomize_outputs(v6):
    """`v6 kustomize DIR` of every kustomization among the examples."""
    out = []
    for k in sorted(glob.glob(os.path.join(ROOT, "examples", "**", "kustomization.yaml"),
                              recursive=True)):
        d = os.path.dirname(k)
        r = subprocess.run([v6, "kustomize", d], capture_output=True, text=True, timeout=60)
        if r.returncode:
            out.append((os.path.relpath(d, ROOT), {"error": r.stderr.strip()}))
        else:
            out += docs_of_yaml(r.stdout, "kustomize " + os.path.relpath(d, ROOT))
    return out


def check_docs(docs):
    """[(source, object)] -> ['source: kind: problem', ...]; empty when all pass."""
    problems, payload = [], []
    for src, d in docs:
        if "error" in d:
            problems.append(f"{src}: {d['error']}")
        elif f"{d.get('apiVersion')}/{d.get('kind')}" not in OTHER_KINDS:
            payload.append({"source": src, "doc": d})
        if d.get("apiVersion") == "argoproj.io/v1alpha1" and d.get("kind") == "Rollout":
            problems += [f"{src}: Rollout {e} (Argo InvalidSpec)"
                         for e in argo_rollout_errors(d)]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(payload, f)
        f.flush()
        r = subprocess.run(["node", os.path.join(HERE, "validate.mjs"), f.name],
                           capture_output=True, text=True, timeout=300)
    if r.returncode:
        return problems + [f"validate.mjs failed: {r.stderr.strip()}"]
    for line in r.stdout.splitlines():
        res = json.loads(line)
        if res.get("skipped"):
            problems.append(f"{res['source']}: {res['kind']}: no upstream schema")
        problems += [f"{res['source']}: {res['kind']}: {e}" for e in res.get("errors", [])]
    return problems


def recorded_docs(d):
    """The manifests e2e tests applied (V6_SCHEMA_RECORD, tests/e2e/conftest.py),
    each named by its test; documents that do not parse as YAML are skipped (a
    test may apply something V6 reads and a YAML library does not)."""
    out = []
    for f in sorted(glob.glob(os.path.join(d, "*.yaml"))):
        text = open(f).read()
        test = text.split("\n", 1)[0][2:]
        try:
            out += [(f"{test} ({os.path.basename(f)})", x) for _, x in
                    docs_of_yaml(text, test)]
        except yaml.YAMLError:
            continue
    return out


def main(argv):
    v6 = os.environ.get("V6_BIN", os.path.join(ROOT, "build", "v6"))
    if argv[:1] == ["--recorded"]:
        docs = recorded_docs(argv[1])
        problems = check_docs(docs)
        for p in problems:
            print(p)
        print(f"schemas: {len(docs)} recorded manifests, {len(problems)} problems")
        return 1 if problems else 0
    paths = argv or shipped_files()
    docs = []
    for p in paths:
        for f in (sorted(glob.glob(os.path.join(p, "**", "*.y*ml"), recursive=True))
                  if os.path.isdir(p) else [p]):
            docs += docs_of_path(os.path.abspath(f))
    if not argv:
        docs += kustomize_outputs(v6)
    problems = check_docs(docs)
    for p in problems:
        print(p)
    bad = len({p.split(": ")[0] for p in problems})
    print(f"schemas: {len(docs) - bad} passed, {bad} failed (manifests against the "
          f"upstream schemas, {len(problems)} problems)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
