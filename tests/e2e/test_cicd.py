"""CI/CD (issue 14, part 5): `v6 apply -o json|yaml` prints what was applied
as kubectl does (the object alone, several as a v1 List), for -f and -k
and with --dry-run; and examples/ci/pipeline.sh run end to end."""
import json
import os

import yaml

CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
data:
  k: {value}
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_apply_output_json_yaml(server, tmp_path):
    one = str(tmp_path / "one.yaml")
    write(one, CM.format(name="a", value="v1"))
    # created: the server's object (uid, resourceVersion), not the file
    p = server.v6("apply", "-f", one, "-o", "json", check=True)
    obj = json.loads(p.stdout)
    assert obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "a"
    assert obj["metadata"]["uid"] and obj["metadata"]["resourceVersion"]
    rv = obj["metadata"]["resourceVersion"]
    # unchanged: the live object
    obj = json.loads(server.v6("apply", "-f", one, "-o", "json", check=True).stdout)
    assert obj["metadata"]["resourceVersion"] == rv and obj["data"] == {"k": "v1"}
    # server dry run of a change: the new object, the store untouched
    write(one, CM.format(name="a", value="v2"))
    obj = yaml.safe_load(server.v6("apply", "-f", one, "-o", "yaml", "--dry-run=server",
                                   check=True).stdout)
    assert obj["data"] == {"k": "v2"} and obj["metadata"]["uid"]
    # client dry run of a change: the live object with the change merged
    obj = json.loads(server.v6("apply", "-f", one, "-o", "json", "--dry-run=client",
                               check=True).stdout)
    assert obj["data"] == {"k": "v2"} and obj["metadata"]["resourceVersion"] == rv
    live = json.loads(server.v6("get", "configmap", "a", "-o", "json", check=True).stdout)
    assert live["data"] == {"k": "v1"}
    # the real change: the object the server stored
    obj = json.loads(server.v6("apply", "-f", one, "-o", "json", check=True).stdout)
    assert obj["data"] == {"k": "v2"} and obj["metadata"]["resourceVersion"] != rv

    # several objects through -k: a v1 List, in apply order
    kdir = tmp_path / "k"
    write(str(kdir / "cms.yaml"), CM.format(name="b", value="x") + "---\n" +
          CM.format(name="c", value="y"))
    write(str(kdir / "kustomization.yaml"),
          "resources: [cms.yaml]\nnamePrefix: p-\n")
    lst = json.loads(server.v6("apply", "-k", str(kdir), "-o", "json", check=True).stdout)
    assert lst["apiVersion"] == "v1" and lst["kind"] == "List"
    assert [o["metadata"]["name"] for o in lst["items"]] == ["p-b", "p-c"]
    assert all(o["metadata"].get("uid") for o in lst["items"])
    lst = yaml.safe_load(server.v6("apply", "-k", str(kdir), "-o", "yaml", check=True).stdout)
    assert lst["kind"] == "List" and len(lst["items"]) == 2

    # an unknown format is refused before anything is applied
    p = server.v6("apply", "-f", one, "-o", "wide")
    assert p.returncode == 1 and "allowed formats are: json, name, yaml" in p.stderr
