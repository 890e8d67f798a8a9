"""`v6 label` and `v6 annotate` against a real server, as kubectl label /
annotate behave: KEY=VALUE sets, KEY- removes, --overwrite guards a changed
value, -l / --all select, --dry-run=client|server change nothing,
-o json|yaml|name print the result, --resource-version is a precondition
(409 Conflict), and a bad key or value comes back as the server's
Invalid Status."""
import json

import yaml

from conftest import wait_for

CM = "/api/v1/namespaces/%s/configmaps"


def make_cm(server, name, ns="default", labels=None, annotations=None):
    meta = {"name": name}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    server.json("POST", CM % ns, {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": meta, "data": {"k": "v"}}, expect=201)


def meta(server, name, field, ns="default"):
    _, cm = server.json("GET", CM % ns + "/" + name, expect=200)
    return cm["metadata"].get(field, {})


def test_label_sets_overwrites_and_removes_like_kubectl(server):
    make_cm(server, "web", labels={"app": "web"})
    p = server.v6("label", "configmap/web", "tier=front", "env=dev", check=True)
    assert p.stdout == "configmap/web labeled\n"
    assert meta(server, "web", "labels") == {"app": "web", "tier": "front", "env": "dev"}

    # the same values again: nothing changes
    p = server.v6("label", "cm", "web", "tier=front", check=True)
    assert p.stdout == "configmap/web not labeled\n"

    # another value needs --overwrite
    p = server.v6("label", "configmap/web", "tier=back")
    assert p.returncode == 1
    assert p.stderr == ("error: 'tier' already has a value (front), and --overwrite "
                        "is false\n")
    assert meta(server, "web", "labels")["tier"] == "front"
    p = server.v6("label", "configmap/web", "tier=back", "--overwrite", check=True)
    assert p.stdout == "configmap/web labeled\n"
    assert meta(server, "web", "labels")["tier"] == "back"

    # KEY- removes; a missing key is reported and is no change
    p = server.v6("label", "configmap/web", "env-", check=True)
    assert p.stdout == "configmap/web unlabeled\n"
    p = server.v6("label", "configmap/web", "nope-", check=True)
    assert p.stdout == 'label "nope" not found.\nconfigmap/web not labeled\n'
    assert meta(server, "web", "labels") == {"app": "web", "tier": "back"}


def test_label_argument_errors(server):
    make_cm(server, "web")
    cases = [
        (["label", "configmap/web"], "error: at least one label update is required\n"),
        (["label", "tier=x"], "error: one or more resources must be specified as "
         "<resource> <name> or <resource>/<name>\n"),
        (["label", "configmap/web", "a=1", "configmap/other"],
         "error: all resources must be specified before label changes: configmap/other\n"),
        (["label", "configmap/web", "a=1", "a-"],
         "error: can not both modify and remove a label in the same command\n"),
        (["label", "configmap/web", "a=b=c"], "error: invalid label spec: a=b=c\n"),
        (["label", "configmaps", "a=1"],
         "error: resource(s) were provided, but no name was specified\n"),
        (["label", "configmap/web", "a=1", "--dry-run=maybe"],
         'error: Invalid dry-run value (maybe). Must be "none", "server", or "client".\n'),
    ]
    for args, err in cases:
        p = server.v6(*args)
        assert (p.returncode, p.stderr) == (1, err), args
    p = server.v6("label", "configmap/nope", "a=1")
    assert p.returncode == 1
    assert p.stderr == 'Error from server (NotFound): configmaps "nope" not found\n'
    assert meta(server, "web", "labels") == {}


def test_label_key_and_value_are_validated_by_the_server(server):
    make_cm(server, "web")
    long_name = "a" * 64
    p = server.v6("label", "configmap/web", long_name + "=x")
    assert p.returncode == 1
    assert p.stderr.startswith("Error from server (Invalid): ")
    assert "name part must be no more than 63 characters" in p.stderr
    p = server.v6("label", "configmap/web", "ok=" + "v" * 64)
    assert p.returncode == 1 and "must be no more than 63 characters" in p.stderr
    p = server.v6("label", "configmap/web", "a" * 254 + "/x=1")
    assert p.returncode == 1
    assert "prefix part must be no more than 253 characters" in p.stderr
    p = server.v6("label", "configmap/web", "bad key!=1")
    assert p.returncode == 1 and "name part must consist of alphanumeric" in p.stderr
    # the longest valid ones are accepted
    key = "%s.example.com/%s" % ("b" * 50, "n" * 63)
    p = server.v6("label", "configmap/web", key + "=" + "v" * 63, check=True)
    assert meta(server, "web", "labels") == {key: "v" * 63}


def test_label_selector_all_namespace_and_output(server):
    server.json("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": "stage"}}, expect=201)
    for name, app in (("a", "web"), ("b", "web"), ("c", "db")):
        make_cm(server, name, ns="stage", labels={"app": app})
    p = server.v6("label", "cm", "-l", "app=web", "-n", "stage", "canary=true", check=True)
    assert sorted(p.stdout.splitlines()) == ["configmap/a labeled", "configmap/b labeled"]
    assert "canary" not in meta(server, "c", "labels", ns="stage")
    p = server.v6("label", "configmaps", "--all", "-n", "stage", "team=core", "-o", "name",
                  check=True)
    assert sorted(p.stdout.splitlines()) == ["configmap/a", "configmap/b", "configmap/c"]
    p = server.v6("label", "configmap/c", "-n", "stage", "x=1", "-o", "json", check=True)
    obj = json.loads(p.stdout)
    assert obj["metadata"]["labels"] == {"app": "db", "team": "core", "x": "1"}
    p = server.v6("annotate", "configmap/c", "-n", "stage", "note=hi", "-o", "yaml",
                  check=True)
    assert yaml.safe_load(p.stdout)["metadata"]["annotations"] == {"note": "hi"}
    p = server.v6("label", "configmap/c", "-n", "stage", "y=1", "-o", "wide")
    assert p.returncode == 1 and "allowed formats are: json, name, yaml" in p.stderr


def test_label_dry_runs_change_nothing(server):
    make_cm(server, "web", labels={"app": "web"})
    _, before = server.json("GET", CM % "default" + "/web", expect=200)
    p = server.v6("label", "configmap/web", "tier=front", "--dry-run=client", check=True)
    assert p.stdout == "configmap/web labeled (dry run)\n"
    p = server.v6("label", "configmap/web", "tier=front", "--dry-run=server", "-o", "json",
                  check=True)
    assert json.loads(p.stdout)["metadata"]["labels"] == {"app": "web", "tier": "front"}
    p = server.v6("label", "configmap/web", "app-", "--dry-run=server", check=True)
    assert p.stdout == "configmap/web unlabeled (server dry run)\n"
    _, after = server.json("GET", CM % "default" + "/web", expect=200)
    assert after["metadata"] == before["metadata"]


def test_label_resource_version_is_a_precondition(server):
    make_cm(server, "web")
    _, cm = server.json("GET", CM % "default" + "/web", expect=200)
    rv = cm["metadata"]["resourceVersion"]
    server.json("PATCH", CM % "default" + "/web", {"data": {"k": "changed"}},
                headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    p = server.v6("label", "configmap/web", "a=1", "--resource-version", rv)
    assert p.returncode == 1
    assert p.stderr.startswith("Error from server (Conflict): Operation cannot be "
                               "fulfilled on configmaps \"web\"")
    assert meta(server, "web", "labels") == {}
    _, cm = server.json("GET", CM % "default" + "/web", expect=200)
    p = server.v6("label", "configmap/web", "a=1", "--resource-version",
                  cm["metadata"]["resourceVersion"], check=True)
    assert p.stdout == "configmap/web labeled\n"
    make_cm(server, "other")
    p = server.v6("label", "cm", "web", "other", "b=1", "--resource-version", "1")
    assert p.returncode == 1
    assert p.stderr == "error: --resource-version may only be used with a single resource\n"


def test_annotate_needs_overwrite_and_removes(server):
    make_cm(server, "web", annotations={"owner": "a"})
    p = server.v6("annotate", "configmap/web", "note=x=y", "owner=a", check=True)
    assert p.stdout == "configmap/web annotated\n"
    assert meta(server, "web", "annotations") == {"owner": "a", "note": "x=y"}
    p = server.v6("annotate", "configmap/web", "owner=b")
    assert p.returncode == 1
    assert p.stderr == ("error: --overwrite is false but found the following declared "
                        "annotation(s): 'owner' already has a value (a)\n")
    p = server.v6("annotate", "configmap/web", "owner=b", "--overwrite", check=True)
    p = server.v6("annotate", "configmap/web", "note-", check=True)
    assert p.stdout == "configmap/web annotated\n"
    assert meta(server, "web", "annotations") == {"owner": "b"}
    p = server.v6("annotate", "configmap/web", "a=1", "a-")
    assert p.stderr == ("error: can not both modify and remove the following "
                        "annotation(s) in the same command: a\n")
    p = server.v6("annotate", "configmap/web", "bad key=1")
    assert p.returncode == 1 and p.stderr.startswith("Error from server (Invalid): ")


def test_label_a_pod_and_the_help(server):
    server.json("POST", "/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"nodeName": "nowhere",
                 "containers": [{"name": "c", "image": "x", "command": ["sleep", "60"]}]}},
        expect=201)
    p = server.v6("label", "pod/web", "tier=front", check=True)
    assert p.stdout == "pod/web labeled\n"
    p = server.v6("annotate", "pods", "web", "why=test", check=True)
    assert p.stdout == "pod/web annotated\n"
    wait_for(lambda: meta_pod(server).get("labels") == {"tier": "front"}, 10, "label")
    for verb in ("label", "annotate"):
        p = server.v6(verb, "--help", check=True)
        for flag in ("--overwrite", "--resource-version", "--selector", "--all",
                     "--dry-run", "--output", "--namespace"):
            assert flag in p.stdout, (verb, flag)
    server.json("DELETE", "/api/v1/namespaces/default/pods/web?gracePeriodSeconds=0")


def meta_pod(server):
    _, pod = server.json("GET", "/api/v1/namespaces/default/pods/web", expect=200)
    return pod["metadata"]


def cm_doc(name, ns=None):
    meta = {"name": name}
    if ns:
        meta["namespace"] = ns
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})


def test_label_and_annotate_the_objects_of_files_like_kubectl(server, tmp_path):
    for name in ("f1", "f2", "f3"):
        make_cm(server, name)
    d = tmp_path / "m"
    (d / "sub").mkdir(parents=True)
    (d / "a.yaml").write_text(cm_doc("f1"))
    (d / "sub" / "b.yaml").write_text(cm_doc("f2", "default"))
    (tmp_path / "c.json").write_text(json.dumps(yaml.safe_load(cm_doc("f3"))))

    # one file
    p = server.v6("label", "-f", d / "a.yaml", "tier=front", check=True)
    assert p.stdout == "configmap/f1 labeled\n"
    assert meta(server, "f1", "labels") == {"tier": "front"}
    # a directory: its own files, and with -R those below it too
    p = server.v6("label", "-f", d, "team=a", check=True)
    assert p.stdout == "configmap/f1 labeled\n"
    p = server.v6("label", "-f", d, "-R", "team=a", check=True)
    assert p.stdout == "configmap/f1 not labeled\nconfigmap/f2 labeled\n"
    assert meta(server, "f2", "labels") == {"team": "a"}
    # several -f, and -f - for stdin
    p = server.v6("annotate", "-f", d / "sub" / "b.yaml", "-f", tmp_path / "c.json",
                  "owner=x", check=True)
    assert p.stdout == "configmap/f2 annotated\nconfigmap/f3 annotated\n"
    p = server.v6("annotate", "-f", "-", "owner-", "note=a=b", input=cm_doc("f3"), check=True)
    assert p.stdout == "configmap/f3 annotated\n"
    assert meta(server, "f3", "annotations") == {"note": "a=b"}
    assert meta(server, "f2", "annotations") == {"owner": "x"}

    # errors as kubectl's: a missing path changes nothing
    p = server.v6("label", "-f", d / "a.yaml", "-f", tmp_path / "nope.yaml", "x=1")
    assert (p.returncode, p.stdout) == (1, ""), p
    assert p.stderr == 'error: the path "%s" does not exist\n' % (tmp_path / "nope.yaml")
    assert "x" not in meta(server, "f1", "labels")
    # an object of the file that does not exist: the others are labeled
    (tmp_path / "two.yaml").write_text(cm_doc("ghost") + "---\n" + cm_doc("f1"))
    p = server.v6("label", "-f", tmp_path / "two.yaml", "x=1")
    assert p.returncode == 1, p
    assert p.stderr == 'Error from server (NotFound): configmaps "ghost" not found\n'
    assert p.stdout == "configmap/f1 labeled\n"
    assert meta(server, "f1", "labels") == {"tier": "front", "team": "a", "x": "1"}
    p = server.v6("label", "-f", d / "a.yaml", "configmap/f2", "y=1")
    assert p.returncode == 1
    assert p.stderr == ("error: when paths, URLs, or stdin is provided as input, you may "
                        "not specify resource arguments as well\n")
    p = server.v6("annotate", "-f", d / "a.yaml")
    assert p.stderr == "error: at least one annotation update is required\n"
