"""Jobs and CronJobs (batch/v1) end to end with real process pods: a
`v6 server` runs the job and cronjob controllers and the node agent; each
pod is a small `sh`. Each story checks what a user sees: the Job's status
and conditions, its pods, `v6 get`, `v6 wait`, `v6 logs job/NAME`. The
fixture stops every container the server started."""
import calendar
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
    # re-applying is a no-op; parallelism may change, the template may not
    apply(s, job("imm", "sleep 100", completions=2))
    p = s.v6("apply", "-f", "-", input=json.dumps(job("imm", "sleep 100", completions=2)))
    assert p.returncode == 0 and "unchanged" in p.stdout
    p = s.v6("apply", "-f", "-", input=json.dumps(
        job("imm", "sleep 100", completions=2, parallelism=2)))
    assert p.returncode == 0 and "configured" in p.stdout
    p = s.v6("apply", "-f", "-", input=json.dumps(job("imm", "sleep 9", completions=2)))
    assert p.returncode != 0 and "spec.template" in p.stderr and "immutable" in p.stderr


def cronjob(name, schedule, script, **spec):
    body = {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
        "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": "sh", "command": ["sh", "-c", script]}]}}}}}
    body.update(spec)
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": name, "namespace": NS}, "spec": body}


def get_cronjob(s, name):
    _, body = s.json("GET", "%s/%s" % (CRONJOBS, name), expect=200)
    return body


def cj_jobs(s, cj):
    _, body = s.json("GET", JOBS, expect=200)
    return [j for j in body["items"] if any(
        r.get("controller") and r["name"] == cj
        for r in j["metadata"].get("ownerReferences", []))]


def test_cronjob_schedule_manual_jobs_and_history(server):
    """`v6 create job --from=cronjob/X` makes Jobs the CronJob owns (its
    history limit keeps 2 successful ones); the schedule * * * * * fires
    at the next whole minute with a Job NAME-<minutes since the epoch>.
    At that same minute, with a Job of theirs still running, a Forbid
    CronJob starts none and a Replace one deletes it and starts its own."""
    s = server
    if time.time() % 60 > 50:  # the running Jobs must exist before the minute
        time.sleep(61 - time.time() % 60)
    for name, policy in (("forbid", "Forbid"), ("replace", "Replace")):
        apply(s, cronjob(name, "* * * * *", "sleep 300", concurrencyPolicy=policy))
        s.v6("create", "job", name + "-pre", "--from=cronjob/" + name, check=True)
    wait_for("both running Jobs active", lambda: all(
        len(get_cronjob(s, n).get("status", {}).get("active", [])) == 1
        for n in ("forbid", "replace")), timeout=30)
    apply(s, cronjob("tick", "* * * * *", "echo tick", successfulJobsHistoryLimit=2))
    cj = get_cronjob(s, "tick")
    assert cj["spec"]["concurrencyPolicy"] == "Allow"
    assert cj["spec"]["failedJobsHistoryLimit"] == 1 and cj["spec"]["suspend"] is False
    created = time.time()
    for i in range(3):
        p = s.v6("create", "job", "manual-%d" % i, "--from=cronjob/tick")
        assert p.returncode == 0, p.stderr
        assert "job.batch/manual-%d created" % i in p.stdout
        wait_for("manual-%d complete" % i,
                 lambda: cond(get_job(s, "manual-%d" % i), "Complete"), timeout=60)
    j = get_job(s, "manual-2")
    assert j["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    wait_for("history limited to 2", lambda: sorted(
        x["metadata"]["name"] for x in cj_jobs(s, "tick")
        if x["metadata"]["name"].startswith("manual-")) == ["manual-1", "manual-2"],
        timeout=30)
    out = s.v6("get", "cronjobs", check=True).stdout.splitlines()
    assert out[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE",
                              "LAST", "SCHEDULE", "AGE"]
    assert [r.split()[:8] for r in out[1:] if r.startswith("tick ")] == [
        ["tick", "*", "*", "*", "*", "*", "<none>", "False"]], out
    # the next whole minute fires (bounded: 70 s from creation)
    left = 70 - (time.time() - created)
    wait_for("a scheduled job", lambda: [x for x in cj_jobs(s, "tick")
                                         if not x["metadata"]["name"].startswith("manual-")],
             timeout=max(left, 5))
    sched = [x for x in cj_jobs(s, "tick") if not x["metadata"]["name"].startswith("manual-")]
    cj = get_cronjob(s, "tick")
    last = cj["status"]["lastScheduleTime"]
    t = calendar.timegm(time.strptime(last, "%Y-%m-%dT%H:%M:%SZ"))
    assert t % 60 == 0
    assert sched[0]["metadata"]["name"] == "tick-%d" % (t // 60)
    assert sched[0]["metadata"]["annotations"][
        "batch.kubernetes.io/cronjob-scheduled-timestamp"] == last
    wait_for("lastSuccessfulTime", lambda: get_cronjob(s, "tick")["status"].get(
        "lastSuccessfulTime"), timeout=60)
    wait_for("history still 2", lambda: len(cj_jobs(s, "tick")) == 2, timeout=30)
    # Replace: the running Job deleted, the scheduled one started
    minute = calendar.timegm(time.strptime(get_cronjob(s, "replace")["status"]
                                           ["lastScheduleTime"], "%Y-%m-%dT%H:%M:%SZ"))
    wait_for("replace's own Job", lambda: [x["metadata"]["name"] for x in cj_jobs(
        s, "replace") if not x["metadata"].get("deletionTimestamp")] == [
        "replace-%d" % (minute // 60)], timeout=30)
    # Forbid: only the Job that was running, no scheduled time taken
    forbid = get_cronjob(s, "forbid")
    assert [x["metadata"]["name"] for x in cj_jobs(s, "forbid")] == ["forbid-pre"]
    assert "lastScheduleTime" not in forbid["status"], forbid["status"]
    for name in ("forbid", "replace"):
        s.v6("delete", "cronjob", name, check=True)


def test_cronjob_validation(server):
    s = server
    p = s.v6("apply", "-f", "-", input=json.dumps(cronjob("bad", "61 * * * *", "true")))
    assert p.returncode != 0 and "spec.schedule" in p.stderr
    p = s.v6("apply", "-f", "-", input=json.dumps(
        cronjob("badtz", "@daily", "true", timeZone="Mars/Olympus")))
    assert p.returncode != 0 and "spec.timeZone" in p.stderr
    apply(s, cronjob("ny", "0 9 * * mon-fri", "true", timeZone="America/New_York"))
    out = s.v6("get", "cj", "ny", check=True).stdout.splitlines()
    assert out[1].split()[:8] == ["ny", "0", "9", "*", "*", "mon-fri", "America/New_York",
                                  "False"]


def test_apply_wait(server):
    """`v6 apply --wait`: returns once the Deployment rolled out and the Job
    completed; exit 1 with the reason when a Job fails, or at --timeout."""
    s = server
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": NS},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                           "terminationGracePeriodSeconds": 1,
                           "containers": [{"name": "main", "image": "sh",
                                           "command": ["sh", "-c", "exec sleep 1000"]}]}}}}
    text = "\n---\n".join(json.dumps(o) for o in (
        deploy, job("migrate", "sleep 1; echo migrated", completions=2)))
    p = s.v6("apply", "-f", "-", "--wait", "--timeout", "90s", input=text, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert 'deployment "web" successfully rolled out' in p.stdout
    assert 'job "migrate" completed' in p.stdout
    assert cond(get_job(s, "migrate"), "Complete")
    _, d = s.json("GET", "/apis/apps/v1/namespaces/default/deployments/web", expect=200)
    assert d["status"]["availableReplicas"] == 2
    bad = job("fails", "exit 42", podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]})
    p = s.v6("apply", "-f", "-", "--wait", input=json.dumps(bad), timeout=120)
    assert p.returncode == 1
    assert 'job "fails" failed: PodFailurePolicy' in p.stderr, p.stderr
    p = s.v6("apply", "-f", "-", "--wait", "--timeout", "2s",
             input=json.dumps(job("forever", "sleep 1000")))
    assert p.returncode == 1 and "timed out" in p.stderr, p.stderr
    # a Deployment that never becomes ready: the controller gives up at its
    # progress deadline and apply --wait says so, well before --timeout
    stuck = json.loads(json.dumps(deploy))
    stuck["metadata"]["name"] = "stuck"
    stuck["spec"].update(replicas=1, progressDeadlineSeconds=2,
                         selector={"matchLabels": {"app": "stuck"}})
    stuck["spec"]["template"]["metadata"]["labels"] = {"app": "stuck"}
    stuck["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["false"]}, "periodSeconds": 1}
    t0 = time.monotonic()
    p = s.v6("apply", "-f", "-", "--wait", "--timeout", "90s", input=json.dumps(stuck),
             timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    assert 'deployment "stuck" exceeded its progress deadline' in p.stderr, p.stderr
    assert time.monotonic() - t0 < 60
