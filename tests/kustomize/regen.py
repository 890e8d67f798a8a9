#!/usr/bin/env python3
"""Regenerates the corpus's expected outputs from kubectl kustomize (1.32
ships kustomize v5.5.0): expected.json for every case directory (a
kustomization.yaml at its top) whose name does not start with err-. Run it
only after checking a new case by hand; tests/e2e/test_kustomize.py compares
`v6 kustomize` with these files and, where kubectl is installed, the files
with kubectl itself."""
import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.abspath(__file__))
KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")


def render(case):
    out = subprocess.run([KUBECTL, "kustomize", os.path.join(ROOT, case)],
                         capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d is not None]


def main():
    for case in sorted(os.listdir(ROOT)):
        if case.startswith("err-") or not os.path.exists(
                os.path.join(ROOT, case, "kustomization.yaml")):
            continue
        with open(os.path.join(ROOT, case, "expected.json"), "w") as f:
            json.dump(render(case), f, indent=1, sort_keys=True)
            f.write("\n")
        print("wrote", case)


if __name__ == "__main__":
    sys.exit(main())
