"""Volumes on the process runtime (node_volume.c; the shim bind-mounts them
in the container's private mount namespace), as a container sees them: an
emptyDir shared by the containers of a pod, hostPath content, a subPath
mounting only its sub-directory, and a readOnly mount refusing writes with
EROFS. Mount paths live in the test's own directory; the mounts are not
visible outside the containers."""
import os

from test_pods import apply, ctr_status, get_pod, pod_manifest, sh, wait_for


def finished(server, name, timeout=60):
    """Waits until the pod has succeeded or failed; returns the pod."""
    wait_for(name + " finished", lambda: (get_pod(server, name) or {}).get(
        "status", {}).get("phase") in ("Succeeded", "Failed"), timeout=timeout)
    return get_pod(server, name)


def logs(server, pod, ctr):
    p = server.v6("logs", pod, "-c", ctr)
    assert p.returncode == 0, p.stderr
    return p.stdout


def exit_code(pod, ctr):
    return ctr_status(pod, ctr)["state"]["terminated"]["exitCode"]


def test_empty_dir_is_shared_by_the_containers_of_a_pod(server, workdir):
    mnt_w, mnt_r = os.path.join(workdir, "w"), os.path.join(workdir, "r")
    writer = sh("writer", "echo 'hello from the writer' > %s/msg" % mnt_w,
                volumeMounts=[{"name": "scratch", "mountPath": mnt_w}])
    reader = sh("reader", "i=0; while [ ! -s %s/msg ] && [ $i -lt 300 ]; do sleep 0.1; "
                "i=$((i+1)); done; cat %s/msg" % (mnt_r, mnt_r),
                volumeMounts=[{"name": "scratch", "mountPath": mnt_r}])
    apply(server, pod_manifest("share", [writer, reader], restart="Never",
                               volumes=[{"name": "scratch", "emptyDir": {}}]))
    pod = finished(server, "share")
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    assert logs(server, "share", "reader").strip() == "hello from the writer"
    # the mount lived in the containers' namespaces: the host path is empty
    assert os.listdir(mnt_w) == [] and os.listdir(mnt_r) == []


def test_host_path_content_is_visible_and_writable(server, workdir):
    host = os.path.join(workdir, "host")
    os.mkdir(host)
    with open(os.path.join(host, "in.txt"), "w") as f:
        f.write("from the host\n")
    mnt = os.path.join(workdir, "mnt")
    c = sh("c", "cat %s/in.txt && echo 'from the pod' > %s/out.txt" % (mnt, mnt),
           volumeMounts=[{"name": "h", "mountPath": mnt}])
    apply(server, pod_manifest("hostpath", [c], restart="Never", volumes=[
        {"name": "h", "hostPath": {"path": host, "type": "Directory"}}]))
    pod = finished(server, "hostpath")
    assert exit_code(pod, "c") == 0, logs(server, "hostpath", "c")
    assert logs(server, "hostpath", "c").strip() == "from the host"
    with open(os.path.join(host, "out.txt")) as f:
        assert f.read() == "from the pod\n"


def test_sub_path_mounts_only_the_sub_directory(server, workdir):
    host = os.path.join(workdir, "host")
    for d, name in (("app", "config.ini"), ("secret", "key")):
        os.makedirs(os.path.join(host, d))
        with open(os.path.join(host, d, name), "w") as f:
            f.write(d + "\n")
    mnt = os.path.join(workdir, "etc-app")
    c = sh("c", "ls -A %s; cat %s/config.ini" % (mnt, mnt),
           volumeMounts=[{"name": "h", "mountPath": mnt, "subPath": "app"}])
    apply(server, pod_manifest("subpath", [c], restart="Never", volumes=[
        {"name": "h", "hostPath": {"path": host}}]))
    pod = finished(server, "subpath")
    assert exit_code(pod, "c") == 0, logs(server, "subpath", "c")
    assert logs(server, "subpath", "c").split() == ["config.ini", "app"]


def test_read_only_mount_refuses_writes_with_erofs(server, workdir):
    host = os.path.join(workdir, "host")
    os.mkdir(host)
    with open(os.path.join(host, "data"), "w") as f:
        f.write("keep\n")
    mnt = os.path.join(workdir, "ro")
    # reading works; writing fails with EROFS, reported by the shell
    c = sh("c", "cat %s/data; if echo x > %s/new 2>/tmp/v6-ro-$$; then echo WROTE; "
           "else cat /tmp/v6-ro-$$; rm -f /tmp/v6-ro-$$; exit 3; fi" % (mnt, mnt),
           volumeMounts=[{"name": "h", "mountPath": mnt, "readOnly": True}])
    apply(server, pod_manifest("readonly", [c], restart="Never", volumes=[
        {"name": "h", "hostPath": {"path": host}}]))
    pod = finished(server, "readonly")
    out = logs(server, "readonly", "c")
    assert exit_code(pod, "c") == 3, out
    assert out.startswith("keep\n"), out
    assert "Read-only file system" in out, out
    assert not os.path.exists(os.path.join(host, "new"))


def test_sub_path_can_mount_a_single_file(server, workdir):
    host = os.path.join(workdir, "host")
    os.mkdir(host)
    with open(os.path.join(host, "app.conf"), "w") as f:
        f.write("port = 8080\n")
    conf = os.path.join(workdir, "etc", "app.conf")
    c = sh("c", "cat %s" % conf,
           volumeMounts=[{"name": "h", "mountPath": conf, "subPath": "app.conf"}])
    apply(server, pod_manifest("onefile", [c], restart="Never", volumes=[
        {"name": "h", "hostPath": {"path": host}}]))
    pod = finished(server, "onefile")
    assert exit_code(pod, "c") == 0, (pod["status"], logs(server, "onefile", "c"))
    assert logs(server, "onefile", "c") == "port = 8080\n"
