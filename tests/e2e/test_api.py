"""The API server over raw HTTP: Kubernetes REST paths, Status errors,
optimistic concurrency, watch with resume and 410, durability under kill -9,
garbage collection through ownerReferences, and malformed input."""
import json
import os
import socket
import threading
import time

import pytest

from conftest import Watch, wait_for


def cm(name, ns="default", data=None, labels=None, **meta):
    m = {"name": name, "namespace": ns}
    if labels:
        m["labels"] = labels
    m.update(meta)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": m,
            "data": data or {"k": "v"}}


CMS = "/api/v1/namespaces/default/configmaps"


def test_health_version_and_discovery(server):
    assert server.request("GET", "/healthz")[0] == 200
    _, v = server.json("GET", "/version", expect=200)
    assert v["major"] == "1" and "v6" in v["gitVersion"]
    _, api = server.json("GET", "/api", expect=200)
    assert api["versions"] == ["v1"]
    _, core = server.json("GET", "/api/v1", expect=200)
    names = {r["name"]: r for r in core["resources"]}
    assert names["pods"]["namespaced"] and names["pods"]["kind"] == "Pod"
    assert "po" in names["pods"]["shortNames"]
    assert not names["namespaces"]["namespaced"]
    assert "pods/status" in names
    _, groups = server.json("GET", "/apis", expect=200)
    assert "apps" in [g["name"] for g in groups["groups"]]
    _, apps = server.json("GET", "/apis/apps/v1", expect=200)
    assert {"deployments", "replicasets"} <= {r["name"] for r in apps["resources"]}
    status, body = server.json("GET", "/apis/nope/v1")
    assert status == 404 and body["kind"] == "Status"


def test_create_get_list_and_system_fields(server):
    _, o = server.json("POST", CMS, cm("a", labels={"app": "x"}), expect=201)
    md = o["metadata"]
    assert md["uid"] and md["creationTimestamp"] and int(md["resourceVersion"]) > 0
    _, got = server.json("GET", CMS + "/a", expect=200)
    assert got == o
    server.json("POST", CMS, cm("b", labels={"app": "y"}), expect=201)
    _, lst = server.json("GET", CMS, expect=200)
    assert lst["kind"] == "ConfigMapList" and lst["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in lst["items"]] == ["a", "b"]
    assert int(lst["metadata"]["resourceVersion"]) >= int(md["resourceVersion"])
    _, sel = server.json("GET", CMS + "?labelSelector=app%3Dy", expect=200)
    assert [i["metadata"]["name"] for i in sel["items"]] == ["b"]
    _, sel = server.json("GET", CMS + "?labelSelector=app+notin+(y)", expect=200)
    assert [i["metadata"]["name"] for i in sel["items"]] == ["a"]
    _, sel = server.json("GET", CMS + "?fieldSelector=metadata.name%3Da", expect=200)
    assert [i["metadata"]["name"] for i in sel["items"]] == ["a"]
    _, allns = server.json("GET", "/api/v1/configmaps", expect=200)
    assert len(allns["items"]) == 2
    status, err = server.json("POST", CMS, cm("a"))
    assert status == 409 and err["reason"] == "AlreadyExists"
    status, err = server.json("GET", CMS + "/zzz")
    assert status == 404 and err["reason"] == "NotFound"
    assert err["message"] == 'configmaps "zzz" not found'


def test_generation_moves_only_with_spec(server):
    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "default"},
           "spec": {"paused": True, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}
    path = "/apis/apps/v1/namespaces/default/deployments"
    merge = {"Content-Type": "application/merge-patch+json"}
    _, d = server.json("POST", path, dep, expect=201)
    assert d["metadata"]["generation"] == 1
    assert d["spec"]["replicas"] == 1  # defaulted
    _, d = server.json("PATCH", path + "/web", {"metadata": {"labels": {"x": "y"}}},
                       headers=merge, expect=200)
    assert d["metadata"]["generation"] == 1
    _, d = server.json("PATCH", path + "/web", {"spec": {"replicas": 3}},
                       headers=merge, expect=200)
    assert d["metadata"]["generation"] == 2


def test_status_subresource_and_main_resource_own_their_parts(server):
    # A Service: nothing in V6 writes its status yet, so the test owns it.
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80}]}}
    path = "/api/v1/namespaces/default/services"
    merge = {"Content-Type": "application/merge-patch+json"}
    server.json("POST", path, svc, expect=201)
    lb = {"loadBalancer": {"ingress": [{"ip": "127.0.0.9"}]}}
    _, s = server.json("PATCH", path + "/s/status", {"status": lb, "spec": {"ports": []}},
                       headers=merge, expect=200)
    assert s["status"] == lb and s["spec"]["ports"][0]["port"] == 80  # spec untouched
    s["status"] = {"loadBalancer": {}}
    s["spec"]["ports"][0]["port"] = 81
    _, s = server.json("PUT", path + "/s", s, expect=200)
    assert s["status"] == lb and s["spec"]["ports"][0]["port"] == 81  # status untouched


def test_stale_update_gets_409_conflict(server):
    _, o = server.json("POST", CMS, cm("c"), expect=201)
    o["data"] = {"k": "2"}
    _, o2 = server.json("PUT", CMS + "/c", o, expect=200)
    assert int(o2["metadata"]["resourceVersion"]) > int(o["metadata"]["resourceVersion"])
    o["data"] = {"k": "3"}  # still carries the old resourceVersion
    status, err = server.json("PUT", CMS + "/c", o)
    assert status == 409 and err["reason"] == "Conflict"
    assert "the object has been modified" in err["message"]
    _, now = server.json("GET", CMS + "/c", expect=200)
    assert now["data"] == {"k": "2"}


def test_noop_update_keeps_resource_version(server):
    _, o = server.json("POST", CMS, cm("n"), expect=201)
    _, o2 = server.json("PUT", CMS + "/n", o, expect=200)
    assert o2["metadata"]["resourceVersion"] == o["metadata"]["resourceVersion"]


def test_patch_formats(server):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "a", "image": "a:1"},
                                   {"name": "b", "image": "b:1"}]}}
    path = "/api/v1/namespaces/default/pods"
    server.json("POST", path, pod, expect=201)
    _, p = server.json("PATCH", path + "/p",
                       {"spec": {"containers": [{"name": "b", "image": "b:2"}]}},
                       headers={"Content-Type": "application/strategic-merge-patch+json"},
                       expect=200)
    assert [(c["name"], c["image"]) for c in p["spec"]["containers"]] == \
        [("a", "a:1"), ("b", "b:2")]
    _, p = server.json("PATCH", path + "/p",
                       [{"op": "add", "path": "/metadata/labels", "value": {"t": "1"}}],
                       headers={"Content-Type": "application/json-patch+json"}, expect=200)
    assert p["metadata"]["labels"] == {"t": "1"}
    status, err = server.json("PATCH", path + "/p",
                              [{"op": "remove", "path": "/spec/nothing"}],
                              headers={"Content-Type": "application/json-patch+json"})
    assert status in (400, 422) and err["kind"] == "Status"
    status, err = server.json("PATCH", path + "/p", {"a": 1},
                              headers={"Content-Type": "text/plain"})
    assert status == 415


def test_invalid_objects_get_status_with_field_causes(server):
    bad = cm("Bad_Name")
    status, err = server.json("POST", CMS, bad)
    assert status == 422 and err["reason"] == "Invalid"
    assert any(c["field"] == "metadata.name" for c in err["details"]["causes"])
    unknown = cm("ok")
    unknown["spec"] = {"x": 1}
    status, err = server.json("POST", CMS, unknown)
    assert status == 400 and "spec" in err["message"]
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"selector": {"matchLabels": {"app": "d"}},
                    "template": {"metadata": {"labels": {"app": "d"}},
                                 "spec": {"containers": [{"name": "c"}]}}}}
    status, err = server.json("POST", "/apis/apps/v1/namespaces/default/deployments", dep)
    assert status == 422
    fields = [c["field"] for c in err["details"]["causes"]]
    assert "spec.template.spec.containers[0].image" in fields
    status, _, _ = server.request("GET", CMS + "/ok")
    assert status == 404  # nothing half-created


def test_missing_namespace_and_namespace_mismatch(server):
    status, err = server.json("POST", "/api/v1/namespaces/nope/configmaps", cm("x", "nope"))
    assert status == 404 and 'namespaces "nope" not found' in err["message"]
    status, err = server.json("POST", CMS, cm("x", "other"))
    assert status == 400 and "does not match" in err["message"]


def test_malformed_requests_get_400_and_server_survives(server):
    status, _, body = server.request("POST", CMS, body=b'{"apiVersion": "v1", ')
    assert status == 400 and json.loads(body)["kind"] == "Status"
    status, _, body = server.request("POST", CMS, body=b"[1,2]")
    assert status == 400
    status, _, _ = server.request("POST", CMS, body=b'{"a":1,"a":2}')
    assert status == 400
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GARBAGE\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nX: " + b"a" * 100000 + b"\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 431")
    big = json.dumps(cm("big", data={"k": "x" * (4 << 20)}))
    status, _, _ = server.request("POST", CMS, body=big)
    assert status == 413
    assert server.request("GET", "/healthz")[0] == 200


def read_events(sock_file, n, timeout=5):
    """Reads n watch events from a chunked HTTP response file."""
    events = []
    deadline = time.time() + timeout
    while len(events) < n and time.time() < deadline:
        size_line = sock_file.readline()
        if not size_line:
            break
        size = int(size_line.strip(), 16)
        if size == 0:
            break
        chunk = sock_file.read(size)
        sock_file.readline()
        for line in chunk.decode().splitlines():
            if line.strip():
                events.append(json.loads(line))
    return events


def open_watch(server, path):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    f = s.makefile("rb")
    status = f.readline()
    assert b"200" in status, status
    while f.readline() not in (b"\r\n", b""):
        pass
    return s, f


def test_watch_streams_events_and_resumes_from_resource_version(server):
    _, a = server.json("POST", CMS, cm("w1", labels={"app": "w"}), expect=201)
    rv0 = a["metadata"]["resourceVersion"]
    s, f = open_watch(server, CMS + "?watch=true")
    try:
        first = read_events(f, 1)
        assert first[0]["type"] == "ADDED" and first[0]["object"]["metadata"]["name"] == "w1"
        server.json("POST", CMS, cm("w2"), expect=201)
        a["data"] = {"k": "changed"}
        server.json("PUT", CMS + "/w1", a, expect=200)
        server.json("DELETE", CMS + "/w2", expect=200)
        evs = read_events(f, 3)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in evs] == \
            [("ADDED", "w2"), ("MODIFIED", "w1"), ("DELETED", "w2")]
    finally:
        s.close()
    # Resume after a "disconnect": everything after rv0 is replayed.
    s, f = open_watch(server, CMS + "?watch=true&resourceVersion=" + rv0)
    try:
        evs = read_events(f, 3)
        assert [e["type"] for e in evs] == ["ADDED", "MODIFIED", "DELETED"]
    finally:
        s.close()


def test_watch_with_label_selector_sees_objects_leave(server):
    server.json("POST", CMS, cm("l1", labels={"app": "x"}), expect=201)
    s, f = open_watch(server, CMS + "?watch=1&labelSelector=app%3Dx")
    try:
        assert read_events(f, 1)[0]["type"] == "ADDED"
        server.json("PATCH", CMS + "/l1", {"metadata": {"labels": {"app": "y"}}},
                    headers={"Content-Type": "application/merge-patch+json"}, expect=200)
        ev = read_events(f, 1)
        assert ev[0]["type"] == "DELETED"
    finally:
        s.close()


def test_watch_from_compacted_resource_version_gets_410(make_server):
    srv = make_server("--journal-limit", "10")
    _, first = srv.json("POST", CMS, cm("g0"), expect=201)
    for i in range(1, 40):
        srv.json("POST", CMS, cm("g%d" % i), expect=201)
    s, f = open_watch(srv, CMS + "?watch=true&resourceVersion=" +
                      first["metadata"]["resourceVersion"])
    try:
        ev = read_events(f, 1)
        assert ev[0]["type"] == "ERROR"
        assert ev[0]["object"]["code"] == 410 and ev[0]["object"]["reason"] == "Expired"
    finally:
        s.close()


def owned(name, owner, kind="ConfigMap", block=True):
    o = cm(name)
    o["metadata"]["ownerReferences"] = [{
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block}]
    return o


def wait_gone(server, path, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.request("GET", path)[0] == 404:
            return True
        time.sleep(0.05)
    return False


def test_cascading_delete_background(server):
    _, owner = server.json("POST", CMS, cm("owner"), expect=201)
    _, child = server.json("POST", CMS, owned("child", owner), expect=201)
    server.json("POST", CMS, owned("grandchild", child), expect=201)
    server.json("DELETE", CMS + "/owner", expect=200)
    assert wait_gone(server, CMS + "/child")
    assert wait_gone(server, CMS + "/grandchild")


def test_cascading_delete_foreground_waits_for_dependents(server):
    _, owner = server.json("POST", CMS, cm("fowner"), expect=201)
    child = owned("fchild", owner)
    child["metadata"]["finalizers"] = ["example.com/hold"]
    _, child = server.json("POST", CMS, child, expect=201)
    status, o = server.json("DELETE", CMS + "/fowner",
                            {"kind": "DeleteOptions", "propagationPolicy": "Foreground"})
    assert status == 202 and "foregroundDeletion" in o["metadata"]["finalizers"]
    wait_for(lambda: server.json("GET", CMS + "/fchild", expect=200)[1]["metadata"].get(
        "deletionTimestamp"), 10, "the garbage collector to delete the child")
    _, o = server.json("GET", CMS + "/fowner", expect=200)  # blocked by fchild
    assert o["metadata"].get("deletionTimestamp")
    server.json("PATCH", CMS + "/fchild", {"metadata": {"finalizers": None}},
                headers={"Content-Type": "application/merge-patch+json"})
    assert wait_gone(server, CMS + "/fchild")
    assert wait_gone(server, CMS + "/fowner")


def test_orphan_delete_keeps_dependents(server):
    _, owner = server.json("POST", CMS, cm("oowner"), expect=201)
    server.json("POST", CMS, owned("ochild", owner), expect=201)
    server.json("DELETE", CMS + "/oowner?propagationPolicy=Orphan")
    assert wait_gone(server, CMS + "/oowner")
    wait_for(lambda: not server.json("GET", CMS + "/ochild", expect=200)[1]["metadata"].get(
        "ownerReferences"), 10, "the orphaned child to lose its ownerReferences")
    with Watch(server, CMS + "?fieldSelector=metadata.name%3Dochild") as w:
        w.assert_quiet(0.5, "the orphaned child is not deleted",
                       lambda ev: ev["type"] == "DELETED")


def test_finalizer_holds_object_until_removed(server):
    o = cm("fin")
    o["metadata"]["finalizers"] = ["example.com/x"]
    server.json("POST", CMS, o, expect=201)
    status, d = server.json("DELETE", CMS + "/fin")
    assert status == 202 and d["metadata"]["deletionTimestamp"]
    _, d = server.json("GET", CMS + "/fin", expect=200)
    d["metadata"]["finalizers"] = []
    server.json("PUT", CMS + "/fin", d)
    assert server.request("GET", CMS + "/fin")[0] == 404


def test_namespace_delete_removes_its_contents(server):
    server.json("POST", "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tmp"}},
                expect=201)
    server.json("POST", "/api/v1/namespaces/tmp/configmaps", cm("x", "tmp"), expect=201)
    status, ns = server.json("DELETE", "/api/v1/namespaces/tmp")
    assert status in (200, 202)
    assert wait_gone(server, "/api/v1/namespaces/tmp/configmaps/x")
    assert wait_gone(server, "/api/v1/namespaces/tmp")


def test_acknowledged_writes_survive_kill_9(server):
    """A stream of writes from several clients; the server is killed with
    SIGKILL in the middle; every write that got a 201 is there after restart."""
    acked, stop = [], threading.Event()

    def writer(prefix):
        i = 0
        while not stop.is_set() and i < 5000:
            try:
                st, _, _ = server.request("POST", CMS, cm("%s-%d" % (prefix, i)), timeout=2)
                if st == 201:
                    acked.append("%s-%d" % (prefix, i))
            except OSError:
                return
            i += 1

    threads = [threading.Thread(target=writer, args=("k%d" % t,)) for t in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) > 50, 30, "50 acknowledged writes")
    server.kill()
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) > 50
    server.start()
    _, lst = server.json("GET", CMS, expect=200)
    names = {i["metadata"]["name"] for i in lst["items"]}
    missing = [n for n in acked if n not in names]
    assert not missing, "lost %d acknowledged writes, e.g. %s" % (len(missing), missing[:5])
    rvs = [int(i["metadata"]["resourceVersion"]) for i in lst["items"]]
    assert len(set(rvs)) == len(rvs)
    _, o = server.json("POST", CMS, cm("after-restart"), expect=201)
    assert int(o["metadata"]["resourceVersion"]) > max(rvs)


def test_delete_collection_by_label(server):
    for i, app in enumerate(["a", "a", "b"]):
        server.json("POST", CMS, cm("dc%d" % i, labels={"app": app}), expect=201)
    _, lst = server.json("DELETE", CMS + "?labelSelector=app%3Da", expect=200)
    assert sorted(i["metadata"]["name"] for i in lst["items"]) == ["dc0", "dc1"]
    _, left = server.json("GET", CMS, expect=200)
    assert [i["metadata"]["name"] for i in left["items"]] == ["dc2"]


def proc_write_bytes(pid):
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    raise AssertionError("no write_bytes")


def test_idle_server_writes_nothing(server):
    for i in range(20):
        server.json("POST", CMS, cm("idle%d" % i), expect=201)
    s, f = open_watch(server, CMS + "?watch=true")  # a live watch must not write either
    try:
        time.sleep(0.5)
        before = proc_write_bytes(server.proc.pid)
        sizes = {n: os.stat(os.path.join(server.data_dir, n)).st_mtime_ns
                 for n in os.listdir(server.data_dir) if n.startswith("v6.db")}
        for _ in range(10):  # reads are not writes
            server.json("GET", CMS, expect=200)
        time.sleep(3)
        assert proc_write_bytes(server.proc.pid) == before
        after = {n: os.stat(os.path.join(server.data_dir, n)).st_mtime_ns
                 for n in os.listdir(server.data_dir) if n.startswith("v6.db")}
        assert after == sizes
    finally:
        s.close()


def test_scale_subresource(server):
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "s"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "s"}},
                    "template": {"metadata": {"labels": {"app": "s"}},
                                 "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    path = "/apis/apps/v1/namespaces/default/deployments"
    server.json("POST", path, dep, expect=201)
    _, sc = server.json("GET", path + "/s/scale", expect=200)
    assert sc["kind"] == "Scale" and sc["spec"]["replicas"] == 2
    assert sc["status"]["selector"] == "app=s"
    _, sc = server.json("PATCH", path + "/s/scale", {"spec": {"replicas": 5}},
                        headers={"Content-Type": "application/merge-patch+json"}, expect=200)
    assert sc["spec"]["replicas"] == 5
    _, d = server.json("GET", path + "/s", expect=200)
    assert d["spec"]["replicas"] == 5 and d["metadata"]["generation"] == 2
    sc["spec"]["replicas"] = -1
    status, _ = server.json("PUT", path + "/s/scale", sc)
    assert status == 422
    status, _ = server.json("GET", "/api/v1/namespaces/default/configmaps/x/scale")
    assert status == 404


def test_pod_on_a_node_is_deleted_gracefully(server):
    path = "/api/v1/namespaces/default/pods"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "g"},
           "spec": {"nodeName": "elsewhere", "terminationGracePeriodSeconds": 45,
                    "containers": [{"name": "c", "image": "x"}]}}
    server.json("POST", path, pod, expect=201)
    status, p = server.json("DELETE", path + "/g")
    assert status in (200, 202)
    _, p = server.json("GET", path + "/g", expect=200)
    assert p["metadata"]["deletionGracePeriodSeconds"] == 45
    server.json("DELETE", path + "/g?gracePeriodSeconds=0")
    assert server.request("GET", path + "/g")[0] == 404
    # A finished pod has nothing to stop: it goes at once.
    done = dict(pod, metadata={"name": "d"})
    _, d = server.json("POST", path, done, expect=201)
    d["status"] = {"phase": "Succeeded"}
    server.json("PUT", path + "/d/status", d, expect=200)
    server.json("DELETE", path + "/d", expect=200)
    assert server.request("GET", path + "/d")[0] == 404
