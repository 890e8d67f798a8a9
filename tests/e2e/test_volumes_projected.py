"""Volumes projected from API objects (configMap, secret, downwardAPI,
projected), as the kubelet makes them, for both runtimes: the files and
their modes as a container sees them, the kubelet's ..data layout, updates
of a ConfigMap reaching a running pod whole, and a missing ConfigMap
reported on the pod. Runs as root (runc); the process runtime's pods see
the volumes through their own mount namespace."""
import base64
import json

from conftest import wait_for
from test_runc import IMAGE, apply, cstatus, get_pod, image_tar, rserver  # noqa: F401


def b64(s):
    return base64.b64encode(s.encode()).decode()


def objects(s):
    s.json("POST", "/api/v1/namespaces/default/configmaps",
           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config"},
            "data": {"greeting": "hello", "app.yaml": "level: info\n"},
            "binaryData": {"blob.bin": b64("\x00\x01bin")}}, expect=201)
    s.json("POST", "/api/v1/namespaces/default/secrets",
           {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-secret"},
            "data": {"password": b64("s3cret"), "token": b64("tkn")}}, expect=201)


VOLUMES = [
    {"name": "cfg", "configMap": {"name": "app-config"}},
    {"name": "sec", "secret": {"secretName": "app-secret", "defaultMode": 0o400,
                               "items": [{"key": "password", "path": "db/password"}]}},
    {"name": "info", "downwardAPI": {"items": [
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "app",
                                             "resource": "limits.memory",
                                             "divisor": "1Mi"}}]}},
    {"name": "all", "projected": {"sources": [
        {"configMap": {"name": "app-config", "items": [{"key": "greeting", "path": "g"}]}},
        {"secret": {"name": "app-secret", "items": [{"key": "token", "path": "t"}]}},
        {"downwardAPI": {"items": [{"path": "ns",
                                    "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
]
MOUNTS = [{"name": "cfg", "mountPath": "/etc/cfg"},
          {"name": "sec", "mountPath": "/etc/sec"},
          {"name": "info", "mountPath": "/etc/info"},
          {"name": "all", "mountPath": "/etc/all"}]


def exec_out(s, name, *cmd):
    p = s.v6("exec", name, "--", *cmd)
    assert p.returncode == 0, (cmd, p.stdout, p.stderr)
    return p.stdout


def check_files(s, name):
    assert exec_out(s, name, "cat", "/etc/cfg/greeting") == "hello"
    assert exec_out(s, name, "cat", "/etc/cfg/app.yaml") == "level: info\n"
    assert exec_out(s, name, "busybox", "od", "-An", "-c", "/etc/cfg/blob.bin").split() == \
        ["\\0", "001", "b", "i", "n"]
    assert exec_out(s, name, "cat", "/etc/sec/db/password") == "s3cret"
    # defaultMode applies to the file behind the symlink, as in Kubernetes
    assert exec_out(s, name, "busybox", "stat", "-L", "-c", "%a", "/etc/sec/db/password").strip() == "400"
    assert exec_out(s, name, "busybox", "stat", "-L", "-c", "%a", "/etc/cfg/greeting").strip() == "644"
    assert exec_out(s, name, "cat", "/etc/info/name") == name
    assert exec_out(s, name, "cat", "/etc/info/labels") == 'app="vol"\ntier="web"'
    assert exec_out(s, name, "cat", "/etc/info/mem") == "64"
    assert exec_out(s, name, "cat", "/etc/all/g") == "hello"
    assert exec_out(s, name, "cat", "/etc/all/t") == "tkn"
    assert exec_out(s, name, "cat", "/etc/all/ns") == "default"
    # the kubelet's layout: ..data -> ..TIMESTAMP, names are symlinks into it
    assert exec_out(s, name, "busybox", "readlink", "/etc/cfg/greeting").strip() == "..data/greeting"
    assert exec_out(s, name, "busybox", "readlink", "/etc/cfg/..data").strip().startswith("..")
    # read-only, as the kubelet mounts them
    p = s.v6("exec", name, "--", "sh", "-c", "echo x > /etc/cfg/new")
    assert p.returncode != 0


def pod_with(name, runtime, command):
    spec = {"volumes": VOLUMES, "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "app", "image": IMAGE if runtime == "runc" else "sh",
                            "command": command, "volumeMounts": MOUNTS,
                            "resources": {"limits": {"memory": "64Mi"}}}]}
    if runtime == "runc":
        spec["runtimeClassName"] = "runc"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "vol", "tier": "web"}}, "spec": spec}


def run_and_check(s, name, runtime):
    objects(s)
    apply(s, pod_with(name, runtime, ["sh", "-c", "exec sleep 3600"]))
    wait_for(lambda: "running" in cstatus(s, name).get("state", {}), 60,
             "pod %s running: %s" % (name, cstatus(s, name)))
    check_files(s, name)
    # an update of the ConfigMap reaches the running pod, whole
    s.json("PATCH", "/api/v1/namespaces/default/configmaps/app-config",
           {"data": {"greeting": "hello again", "app.yaml": None, "new": "n"}},
           headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    wait_for(lambda: s.v6("exec", name, "--", "cat", "/etc/cfg/greeting").stdout ==
             "hello again", 30, "the new greeting in the pod")
    assert exec_out(s, name, "cat", "/etc/cfg/new") == "n"
    assert s.v6("exec", name, "--", "cat", "/etc/cfg/app.yaml").returncode != 0   # gone
    assert exec_out(s, name, "cat", "/etc/all/g") == "hello again"   # projected too
    # a label change reaches the downwardAPI file
    s.json("PATCH", "/api/v1/namespaces/default/pods/" + name,
           {"metadata": {"labels": {"tier": "api"}}},
           headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    wait_for(lambda: 'tier="api"' in s.v6("exec", name, "--", "cat", "/etc/info/labels").stdout,
             30, "the new label in the pod")


def test_projected_volumes_in_a_runc_container(rserver):
    run_and_check(rserver, "vol-runc", "runc")


def test_projected_volumes_in_a_process_pod(rserver):
    run_and_check(rserver, "vol-proc", "process")


def test_a_missing_configmap_holds_the_container_with_the_reason(rserver):
    s = rserver
    apply(s, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nocm"},
              "spec": {"volumes": [{"name": "c", "configMap": {"name": "absent"}},
                                   {"name": "o", "configMap": {"name": "absent2",
                                                               "optional": True}}],
                       "containers": [{"name": "app", "image": "sh",
                                       "command": ["sh", "-c", "exec sleep 3600"],
                                       "volumeMounts": [{"name": "c", "mountPath": "/c"},
                                                        {"name": "o", "mountPath": "/o"}]}]}})

    def held():
        w = cstatus(s, "nocm").get("state", {}).get("waiting", {})
        return w if 'configmap "absent" not found' in w.get("message", "") else None
    w = wait_for(held, 30, "the missing ConfigMap on the pod: %s" % cstatus(s, "nocm"))
    assert "absent2" not in w["message"], w          # optional: not a problem
    # it appears: the container starts
    s.json("POST", "/api/v1/namespaces/default/configmaps",
           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "absent"},
            "data": {"k": "v"}}, expect=201)
    wait_for(lambda: "running" in cstatus(s, "nocm").get("state", {}), 90,
             "nocm running once its ConfigMap exists: %s" % json.dumps(get_pod(s, "nocm")
                                                                      .get("status")))
