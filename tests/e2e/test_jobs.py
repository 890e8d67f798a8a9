"""Jobs and CronJobs (batch/v1) end to end with real process pods: a
`v6 server` runs the job and cronjob controllers and the node agent; each
pod is a small `sh`. Each story checks what a user sees: the Job's status
and conditions, its pods, `v6 get`, `v6 wait`, `v6 logs job/NAME`. The
fixture stops every container the server started."""
import json
import time

import conftest

NS = "default"
JOBS = "/apis/batch/v1/namespaces/%s/jobs" % NS
CRONJOBS = "/apis/batch/v1/namespaces/%s/cronjobs" % NS
PODS = "/api/v1/namespaces/%s/pods" % NS


def wait_for(what, fn, timeout=60.0, interval=0.1):
    return conftest.wait_for(fn, timeout, what, interval)


def apply(s, *objs):
    text = "\n---\n".join(json.dumps(o) for o in objs)
    return s.v6("apply", "-f", "-", input=text, check=True)


def job(name, script, restart="Never", **spec):
    body = {"template": {"spec": {
        "restartPolicy": restart, "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": "sh", "command": ["sh", "-c", script]}]}}}
    body.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": NS}, "spec": body}


def get_job(s, name):
    status, _, body = s.request("GET", "%s/%s" % (JOBS, name))
    return json.loads(body) if status == 200 else None


def job_pods(s, name):
    _, body = s.json("GET", PODS + "?labelSelector=batch.kubernetes.io/job-name%3D" + name,
                     expect=200)
    return body["items"]


def cond(obj, type_):
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c["type"] == type_ and c["status"] == "True":
            return c
    return None


def test_job_completes_with_parallelism(server):
    """completions 3, parallelism 2: never more than 2 pods at once, three
    Succeeded pods, Complete, `v6 wait` returns, get shows 3/3."""
    s = server
    apply(s, job("pi", "echo done-$HOSTNAME; sleep 1", completions=3, parallelism=2))
    j = get_job(s, "pi")
    sel = j["spec"]["selector"]["matchLabels"]
    uid = j["metadata"]["uid"]
    assert sel == {"batch.kubernetes.io/controller-uid": uid}
    labels = j["spec"]["template"]["metadata"]["labels"]
    assert labels["job-name"] == "pi" and labels["batch.kubernetes.io/job-name"] == "pi"
    assert labels["controller-uid"] == uid
    assert j["spec"]["backoffLimit"] == 6 and j["spec"]["completionMode"] == "NonIndexed"
    most = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        pods = job_pods(s, "pi")
        running = [p for p in pods if p.get("status", {}).get("phase") not in
                   ("Succeeded", "Failed")]
        most = max(most, len(running))
        if cond(get_job(s, "pi"), "Complete"):
            break
        time.sleep(0.1)
    p = s.v6("wait", "--for=condition=complete", "job/pi", "--timeout=30s")
    assert p.returncode == 0, p.stderr
    j = get_job(s, "pi")
    st = j["status"]
    assert st["succeeded"] == 3 and st["active"] == 0 and st.get("failed", 0) == 0
    assert st["startTime"] and st["completionTime"]
    assert cond(j, "SuccessCriteriaMet")
    assert most <= 2, "more than parallelism pods at once: %d" % most
    pods = job_pods(s, "pi")
    assert len(pods) == 3 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    out = s.v6("get", "jobs", check=True).stdout.splitlines()
    assert out[0].split()[:4] == ["NAME", "STATUS", "COMPLETIONS", "DURATION"]
    assert out[1].split()[:3] == ["pi", "Complete", "3/3"]
    logs = s.v6("logs", "job/pi", check=True).stdout
    assert logs.startswith("done-pi-"), logs


def test_job_backoff_limit(server):
    """A pod that always fails: one retry after the 10 s back-off, then
    Failed with BackoffLimitExceeded; the pods were created >= 10 s apart."""
    s = server
    apply(s, job("bad", "exit 3", backoffLimit=1))
    wait_for("Failed condition",
             lambda: cond(get_job(s, "bad"), "Failed"), timeout=90)
    j = get_job(s, "bad")
    c = cond(j, "Failed")
    assert c["reason"] == "BackoffLimitExceeded"
    assert j["status"]["failed"] == 2
    pods = sorted(job_pods(s, "bad"), key=lambda p: p["metadata"]["creationTimestamp"])
    assert len(pods) == 2
    t = [time.mktime(time.strptime(p["metadata"]["creationTimestamp"],
                                   "%Y-%m-%dT%H:%M:%SZ")) for p in pods]
    assert t[1] - t[0] >= 9, "no back-off between retries: %s" % t
    p = s.v6("wait", "--for=condition=complete", "job/bad", "--timeout=1s")
    assert p.returncode != 0
    out = s.v6("get", "jobs", "bad", check=True).stdout.splitlines()
    assert out[1].split()[:3] == ["bad", "Failed", "0/1"]


def test_pod_failure_policy_fail_job(server):
    """Exit code 42 matches a FailJob rule: Failed at once (no retry)."""
    s = server
    apply(s, job("pfp", "exit 42", backoffLimit=6, podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}))
    wait_for("Failed condition", lambda: cond(get_job(s, "pfp"), "Failed"), timeout=60)
    c = cond(get_job(s, "pfp"), "Failed")
    assert c["reason"] == "PodFailurePolicy"
    assert "exit code 42" in c["message"]
    assert len(job_pods(s, "pfp")) == 1


def test_active_deadline_kills(server):
    s = server
    apply(s, job("slow", "sleep 1000", activeDeadlineSeconds=2))
    wait_for("running pod", lambda: any(p.get("status", {}).get("phase") == "Running"
                                        for p in job_pods(s, "slow")))
    wait_for("Failed condition", lambda: cond(get_job(s, "slow"), "Failed"), timeout=60)
    assert cond(get_job(s, "slow"), "Failed")["reason"] == "DeadlineExceeded"
    wait_for("pods stopped", lambda: not any(
        p.get("status", {}).get("phase") == "Running" for p in job_pods(s, "slow")))


def test_ttl_after_finished(server):
    s = server
    apply(s, job("brief", "true", ttlSecondsAfterFinished=2))
    wait_for("Complete", lambda: cond(get_job(s, "brief"), "Complete"), timeout=60)
    wait_for("job deleted", lambda: get_job(s, "brief") is None, timeout=30)
    wait_for("pods deleted", lambda: not job_pods(s, "brief"), timeout=30)


def test_indexed_job(server):
    s = server
    apply(s, job("idx", "echo index=$JOB_COMPLETION_INDEX", completions=3, parallelism=3,
                 completionMode="Indexed"))
    wait_for("Complete", lambda: cond(get_job(s, "idx"), "Complete"), timeout=60)
    j = get_job(s, "idx")
    assert j["status"]["completedIndexes"] == "0-2"
    seen = set()
    for p in job_pods(s, "idx"):
        ix = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["name"].startswith("idx-%s-" % ix)
        out = s.v6("logs", p["metadata"]["name"], check=True).stdout.strip()
        assert out == "index=%s" % ix
        seen.add(ix)
    assert seen == {"0", "1", "2"}


def test_job_validation(server):
    s = server
    p = s.v6("apply", "-f", "-", input=json.dumps(job("rp", "true", restart="Always")))
    assert p.returncode != 0
    assert "spec.template.spec.restartPolicy" in p.stderr
    assert "Unsupported value" in p.stderr
