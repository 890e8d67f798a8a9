/* Unit tests of the Job and CronJob controllers' decisions (job_decide,
 * cronjob_decide): each test builds the Job or CronJob and the pods or
 * Jobs a user would have, runs one sync and reads the writes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ctrl.h"
#include "obj_schema.h"

#define NOW_S 1800000000LL	/* 2027-01-15T08:00:00Z, a whole minute */
#define NOW_MS (NOW_S * 1000)

static json_t *
make_job(const char *extra_spec)
{
	json_t *j = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:{s:{s:{s:s, s:[{s:s, "
	    "s:s}]}}}}", "apiVersion", "batch/v1", "kind", "Job", "metadata", "name", "pi",
	    "namespace", "default", "uid", "job-uid", "creationTimestamp",
	    "2027-01-15T07:00:00Z", "spec", "template", "spec", "restartPolicy", "Never",
	    "containers", "name", "main", "image", "sh");
	if (extra_spec) {
		json_t *x = json_loads(extra_spec, 0, NULL);
		assert_non_null(x);
		json_object_update(json_object_get(j, "spec"), x);
		json_decref(x);
	}
	batch_job_defaults(j);
	return j;
}

/* A pod of job: phase, and for a finished one its container's exit code
 * and finishedAt (seconds before NOW). */
static json_t *
pod(const json_t *job, const char *name, const char *phase, int code, int ago_s,
    const char *index)
{
	json_t *p = job_pod(job, index ? atoi(index) : -1);
	json_t *meta = json_object_get(p, "metadata");
	json_object_set_new(meta, "name", json_string(name));
	json_object_set_new(meta, "uid", json_string(name));
	json_object_set_new(meta, "creationTimestamp", obj_time_json(NOW_MS - 60000));
	json_t *st = json_pack("{s:s}", "phase", phase);
	if (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)
		json_object_set_new(st, "containerStatuses", json_pack("[{s:s, s:{s:{s:i, "
		    "s:o}}}]", "name", "main", "state", "terminated", "exitCode", code,
		    "finishedAt", obj_time_json(NOW_MS - ago_s * 1000LL)));
	json_object_set_new(p, "status", st);
	return p;
}

static size_t
count(const struct ctrl_writes *w, enum ctrl_op op)
{
	size_t n = 0;
	for (size_t i = 0; i < w->n; i++)
		n += w->v[i].op == op;
	return n;
}

static const json_t *
status_of(const struct ctrl_writes *w)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].op == CTRL_STATUS)
			return json_object_get(w->v[i].obj, "status");
	return NULL;
}

static const char *
cond_reason(const json_t *st, const char *type)
{
	const json_t *c = obj_condition(st, type);
	return c && strcmp(obj_str(c, "status"), "True") == 0 ? obj_str(c, "reason") : NULL;
}

static void
test_defaults_and_selector(void **state)
{
	(void)state;
	json_t *j = make_job(NULL);
	const json_t *spec = json_object_get(j, "spec");
	assert_int_equal(json_integer_value(json_object_get(spec, "completions")), 1);
	assert_int_equal(json_integer_value(json_object_get(spec, "parallelism")), 1);
	assert_int_equal(json_integer_value(json_object_get(spec, "backoffLimit")), 6);
	assert_string_equal(obj_str(spec, "completionMode"), "NonIndexed");
	const json_t *ml = obj_get_path(j, "spec.selector.matchLabels");
	assert_string_equal(json_string_value(json_object_get(ml,
	    "batch.kubernetes.io/controller-uid")), "job-uid");
	const json_t *l = obj_get_path(j, "spec.template.metadata.labels");
	assert_string_equal(json_string_value(json_object_get(l, "job-name")), "pi");
	assert_string_equal(json_string_value(json_object_get(l, "controller-uid")), "job-uid");
	assert_string_equal(json_string_value(json_object_get(l,
	    "batch.kubernetes.io/job-name")), "pi");
	json_decref(j);
	/* only parallelism set: a work queue, completions stays unset */
	j = make_job("{\"parallelism\": 3}");
	assert_null(obj_get_path(j, "spec.completions"));
	json_decref(j);
	/* restartPolicy Always is refused */
	j = make_job(NULL);
	json_object_set_new(json_object_get(obj_get_path(j, "spec.template"), "spec"),
	    "restartPolicy", json_string("Always"));
	struct errlist errs = { 0 };
	batch_job_validate(j, &errs);
	assert_true(errs.n > 0);
	errlist_free(&errs);
	json_decref(j);
}

static void
test_creates_up_to_parallelism_within_completions(void **state)
{
	(void)state;
	json_t *j = make_job("{\"completions\": 5, \"parallelism\": 3}");
	json_t *pods = json_array();
	struct ctrl_writes w = { 0 };
	job_decide(j, pods, NOW_MS, &w);
	assert_int_equal(count(&w, CTRL_CREATE), 3);
	assert_int_equal(json_integer_value(json_object_get(status_of(&w), "active")), 0);
	assert_non_null(json_object_get(status_of(&w), "startTime"));
	ctrl_writes_free(&w);
	/* 3 succeeded, 1 running: only one more (5 - 3 - 1) */
	for (int i = 0; i < 3; i++) {
		char n[8];
		snprintf(n, sizeof n, "s%d", i);
		json_array_append_new(pods, pod(j, n, "Succeeded", 0, 5, NULL));
	}
	json_array_append_new(pods, pod(j, "r0", "Running", 0, 0, NULL));
	memset(&w, 0, sizeof w);
	job_decide(j, pods, NOW_MS, &w);
	assert_int_equal(count(&w, CTRL_CREATE), 1);
	assert_int_equal(json_integer_value(json_object_get(status_of(&w), "succeeded")), 3);
	assert_int_equal(json_integer_value(json_object_get(status_of(&w), "active")), 1);
	ctrl_writes_free(&w);
	/* 5 succeeded: SuccessCriteriaMet and Complete with completionTime */
	json_array_clear(pods);
	for (int i = 0; i < 5; i++) {
		char n[8];
		snprintf(n, sizeof n, "s%d", i);
		json_array_append_new(pods, pod(j, n, "Succeeded", 0, 5, NULL));
	}
	memset(&w, 0, sizeof w);
	job_decide(j, pods, NOW_MS, &w);
	assert_int_equal(count(&w, CTRL_CREATE), 0);
	assert_string_equal(cond_reason(status_of(&w), "SuccessCriteriaMet"),
	    "CompletionsReached");
	assert_non_null(cond_reason(status_of(&w), "Complete"));
	assert_non_null(json_object_get(status_of(&w), "completionTime"));
	assert_int_equal(count(&w, CTRL_EVENT), 1);
	ctrl_writes_free(&w);
	json_decref(pods);
	json_decref(j);
}

static void
test_backoff_then_backoff_limit(void **state)
{
	(void)state;
	assert_int_equal(job_backoff_ms(1), 10000);
	assert_int_equal(job_backoff_ms(2), 20000);
	assert_int_equal(job_backoff_ms(6), 320000);
	assert_int_equal(job_backoff_ms(7), 360000);
	assert_int_equal(job_backoff_ms(40), 360000);
	json_t *j = make_job("{\"backoffLimit\": 2}");
	json_t *pods = json_array();
	json_array_append_new(pods, pod(j, "f0", "Failed", 1, 4, NULL));
	struct ctrl_writes w = { 0 };
	job_decide(j, pods, NOW_MS, &w);
	/* one failure 4 s ago: 6 s of the 10 s back-off left */
	assert_int_equal(count(&w, CTRL_CREATE), 0);
	assert_int_equal(w.requeue_ms, 6000);
	ctrl_writes_free(&w);
	memset(&w, 0, sizeof w);
	job_decide(j, pods, NOW_MS + 6000, &w);
	assert_int_equal(count(&w, CTRL_CREATE), 1);
	ctrl_writes_free(&w);
	/* three failures > backoffLimit 2 */
	json_array_append_new(pods, pod(j, "f1", "Failed", 1, 3, NULL));
	json_array_append_new(pods, pod(j, "f2", "Failed", 1, 2, NULL));
	memset(&w, 0, sizeof w);
	job_decide(j, pods, NOW_MS, &w);
	assert_string_equal(cond_reason(status_of(&w), "Failed"), "BackoffLimitExceeded");
	assert_string_equal(cond_reason(status_of(&w), "FailureTarget"), "BackoffLimitExceeded");
	assert_int_equal(count(&w, CTRL_CREATE), 0);
	ctrl_writes_free(&w);
	json_decref(pods);
	json_decref(j);
}

static void
test_pod_failure_policy(void **state)
{
	(void)state;
	json_t *j = make_job("{\"podFailurePolicy\": {\"rules\": ["
	    "{\"action\": \"Ignore\", \"onExitCodes\": {\"operator\": \"In\", \"values\": [7]}},"
	    "{\"action\": \"FailJob\", \"onExitCodes\": {\"containerName\": \"main\","
	    " \"operator\": \"In\", \"values\": [42]}}]}}");
	json_t *pods = json_array();
	/* exit 7 is ignored: not counted, no back-off, a new pod at once */
	json_array_append_new(pods, pod(j, "i0", "Failed", 7, 1, NULL));
	struct ctrl_writes w = { 0 };
	job_decide(j, pods, NOW_MS, &w);
	assert_int_equal(count(&w, CTRL_CREATE), 1);
	assert_int_equal(json_integer_value(json_object_get(status_of(&w), "failed")), 0);
	ctrl_writes_free(&w);
	/* exit 42 fails the Job at once, a running pod is deleted first */
	json_array_append_new(pods, pod(j, "x0", "Failed", 42, 1, NULL));
	json_array_append_new(pods, pod(j, "r0", "Running", 0, 0, NULL));
	memset(&w, 0, sizeof w);
	job_decide(j, pods, NOW_MS, &w);
	assert_int_equal(count(&w, CTRL_DELETE), 1);
	assert_string_equal(cond_reason(status_of(&w), "FailureTarget"), "PodFailurePolicy");
	assert_null(cond_reason(status_of(&w), "Failed"));
	assert_non_null(strstr(obj_str(obj_condition(status_of(&w), "FailureTarget"),
	    "message"), "failed with exit code 42 matching FailJob rule at index 1"));
	ctrl_writes_free(&w);
	json_decref(pods);
	json_decref(j);
}

static void
test_deadline_suspend_and_ttl(void **state)
{
	(void)state;
	json_t *j = make_job("{\"activeDeadlineSeconds\": 30, \"ttlSecondsAfterFinished\": 10}");
	json_object_set_new(j, "status", json_pack("{s:o}", "startTime",
	    obj_time_json(NOW_MS - 20000)));
	json_t *pods = json_array();
	json_array_append_new(pods, pod(j, "r0", "Running", 0, 0, NULL));
	struct ctrl_writes w = { 0 };
	job_decide(j, pods, NOW_MS, &w);
	assert_int_equal(w.requeue_ms, 10000);	/* the deadline */
	ctrl_writes_free(&w);
	memset(&w, 0, sizeof w);
	job_decide(j, pods, NOW_MS + 10000, &w);
	assert_int_equal(count(&w, CTRL_DELETE), 1);
	assert_string_equal(cond_reason(status_of(&w), "FailureTarget"), "DeadlineExceeded");
	ctrl_writes_free(&w);
	/* finished: the TTL deletes the Job itself once it passed */
	json_t *st = json_object_get(j, "status");
	obj_condition_set(st, json_pack("{s:s, s:s, s:s, s:o}", "type", "Failed", "status",
	    "True", "reason", "DeadlineExceeded", "lastTransitionTime",
	    obj_time_json(NOW_MS)));
	json_array_clear(pods);
	memset(&w, 0, sizeof w);
	job_decide(j, pods, NOW_MS + 4000, &w);
	assert_int_equal(w.n, 0);
	assert_int_equal(w.requeue_ms, 6000);
	ctrl_writes_free(&w);
	memset(&w, 0, sizeof w);
	job_decide(j, pods, NOW_MS + 10000, &w);
	assert_int_equal(w.n, 1);
	assert_int_equal(w.v[0].op, CTRL_DELETE);
	assert_int_equal(w.v[0].tag, JOB_W_TTL);
	ctrl_writes_free(&w);
	json_decref(j);
	/* suspended: running pods go, Suspended, no startTime */
	j = make_job("{\"suspend\": true}");
	json_array_append_new(pods, pod(j, "r0", "Running", 0, 0, NULL));
	memset(&w, 0, sizeof w);
	job_decide(j, pods, NOW_MS, &w);
	assert_int_equal(count(&w, CTRL_DELETE), 1);
	assert_int_equal(count(&w, CTRL_CREATE), 0);
	assert_string_equal(cond_reason(status_of(&w), "Suspended"), "JobSuspended");
	assert_null(json_object_get(status_of(&w), "startTime"));
	ctrl_writes_free(&w);
	json_decref(pods);
	json_decref(j);
}

static void
test_indexed(void **state)
{
	(void)state;
	json_t *j = make_job("{\"completions\": 4, \"parallelism\": 2, "
	    "\"completionMode\": \"Indexed\"}");
	json_t *pods = json_array();
	json_array_append_new(pods, pod(j, "a", "Succeeded", 0, 1, "0"));
	json_array_append_new(pods, pod(j, "b", "Running", 0, 0, "1"));
	struct ctrl_writes w = { 0 };
	job_decide(j, pods, NOW_MS, &w);
	assert_int_equal(count(&w, CTRL_CREATE), 1);
	const json_t *p = NULL;
	for (size_t i = 0; i < w.n; i++)
		if (w.v[i].op == CTRL_CREATE)
			p = w.v[i].obj;
	/* the lowest index neither done nor running: 2 */
	assert_string_equal(obj_str_at(p, "metadata.generateName"), "pi-2-");
	assert_string_equal(json_string_value(json_object_get(obj_get_path(p,
	    "metadata.annotations"), "batch.kubernetes.io/job-completion-index")), "2");
	assert_string_equal(obj_str_at(p, "spec.hostname"), "pi-2");
	const json_t *env = json_array_get(obj_get_path(p, "spec.containers"), 0);
	env = json_array_get(json_object_get(env, "env"), 0);
	assert_string_equal(obj_str(env, "name"), "JOB_COMPLETION_INDEX");
	assert_string_equal(json_string_value(json_object_get(status_of(&w),
	    "completedIndexes")), "0");
	ctrl_writes_free(&w);
	json_array_append_new(pods, pod(j, "c", "Succeeded", 0, 1, "2"));
	json_array_append_new(pods, pod(j, "d", "Succeeded", 0, 1, "3"));
	memset(&w, 0, sizeof w);
	job_decide(j, pods, NOW_MS, &w);
	assert_string_equal(json_string_value(json_object_get(status_of(&w),
	    "completedIndexes")), "0,2-3");
	assert_int_equal(count(&w, CTRL_CREATE), 0);
	ctrl_writes_free(&w);
	json_decref(pods);
	json_decref(j);
}

/* ---- CronJob ----------------------------------------------------------- */

static json_t *
make_cj(const char *schedule, const char *policy)
{
	json_t *cj = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:{s:{s:{s:{s:s,"
	    " s:[{s:s, s:s}]}}}}}}", "apiVersion", "batch/v1", "kind", "CronJob", "metadata",
	    "name", "tick", "namespace", "default", "uid", "cj-uid", "creationTimestamp",
	    "2027-01-15T07:30:30Z", "spec", "schedule", schedule, "concurrencyPolicy", policy,
	    "jobTemplate", "spec", "template", "spec", "restartPolicy", "Never", "containers",
	    "name", "main", "image", "sh");
	batch_cronjob_defaults(cj);
	return cj;
}

static json_t *
cj_job(const json_t *cj, const char *name, const char *done, int64_t start_s)
{
	json_t *j = cronjob_job(cj, name, 0, true);
	json_object_set_new(json_object_get(j, "metadata"), "uid", json_string(name));
	json_t *st = json_pack("{s:o}", "startTime", obj_time_json(start_s * 1000));
	if (done) {
		obj_condition_set(st, json_pack("{s:s, s:s}", "type", done, "status", "True"));
		json_object_set_new(st, "completionTime", obj_time_json((start_s + 5) * 1000));
	}
	json_object_set_new(j, "status", st);
	return j;
}

static const json_t *
created(const struct ctrl_writes *w)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].op == CTRL_CREATE)
			return w->v[i].obj;
	return NULL;
}

static void
test_cronjob_schedules_the_newest_time(void **state)
{
	(void)state;
	json_t *cj = make_cj("*/10 * * * *", "Allow");
	json_t *jobs = json_array();
	struct ctrl_writes w = { 0 };
	/* created 07:30:30; now 08:00:00: 07:40, 07:50, 08:00 missed, only
	 * the newest runs: tick-<08:00 in minutes> */
	cronjob_decide(cj, jobs, NOW_MS, &w);
	const json_t *j = created(&w);
	assert_non_null(j);
	char want[32];
	snprintf(want, sizeof want, "tick-%lld", NOW_S / 60);
	assert_string_equal(obj_name(j), want);
	assert_string_equal(json_string_value(json_object_get(obj_get_path(j,
	    "metadata.annotations"), "batch.kubernetes.io/cronjob-scheduled-timestamp")),
	    "2027-01-15T08:00:00Z");
	assert_string_equal(obj_str_at(status_of(&w), "lastScheduleTime"),
	    "2027-01-15T08:00:00Z");
	assert_int_equal(w.requeue_ms, 600 * 1000 + 100);	/* 08:10 */
	ctrl_writes_free(&w);
	/* startingDeadlineSeconds 30, now 08:01: 08:00 is too late */
	json_object_set_new(json_object_get(cj, "spec"), "startingDeadlineSeconds",
	    json_integer(30));
	memset(&w, 0, sizeof w);
	cronjob_decide(cj, jobs, NOW_MS + 60000, &w);
	assert_null(created(&w));
	ctrl_writes_free(&w);
	/* suspended: nothing */
	json_object_del(json_object_get(cj, "spec"), "startingDeadlineSeconds");
	json_object_set_new(json_object_get(cj, "spec"), "suspend", json_true());
	memset(&w, 0, sizeof w);
	cronjob_decide(cj, jobs, NOW_MS, &w);
	assert_null(created(&w));
	ctrl_writes_free(&w);
	json_decref(jobs);
	json_decref(cj);
}

static void
test_cronjob_concurrency_and_history(void **state)
{
	(void)state;
	json_t *cj = make_cj("*/10 * * * *", "Forbid");
	json_t *jobs = json_array();
	json_array_append_new(jobs, cj_job(cj, "running", NULL, NOW_S - 100));
	struct ctrl_writes w = { 0 };
	cronjob_decide(cj, jobs, NOW_MS, &w);
	assert_null(created(&w));	/* Forbid: one runs */
	assert_int_equal(json_array_size(json_object_get(status_of(&w), "active")), 1);
	ctrl_writes_free(&w);
	json_object_set_new(json_object_get(cj, "spec"), "concurrencyPolicy",
	    json_string("Replace"));
	memset(&w, 0, sizeof w);
	cronjob_decide(cj, jobs, NOW_MS, &w);
	assert_int_equal(w.v[0].op, CTRL_DELETE);	/* the running one first */
	assert_string_equal(obj_name(w.v[0].obj), "running");
	assert_non_null(created(&w));
	ctrl_writes_free(&w);
	/* history: 5 successful (limit 3), 2 failed (limit 1): the oldest go */
	json_array_clear(jobs);
	for (int i = 0; i < 5; i++) {
		char n[8];
		snprintf(n, sizeof n, "ok%d", i);
		json_array_append_new(jobs, cj_job(cj, n, "Complete", NOW_S - 1000 + i * 10));
	}
	json_array_append_new(jobs, cj_job(cj, "bad0", "Failed", NOW_S - 900));
	json_array_append_new(jobs, cj_job(cj, "bad1", "Failed", NOW_S - 800));
	json_array_append_new(jobs, cj_job(cj, "other", "Complete", NOW_S - 5000));
	json_object_set_new(json_object_get(json_array_get(jobs, 7), "metadata"),
	    "ownerReferences", json_array());	/* not the CronJob's */
	memset(&w, 0, sizeof w);
	cronjob_decide(cj, jobs, NOW_MS, &w);
	const char *gone[3] = { 0 };
	size_t n = 0;
	for (size_t i = 0; i < w.n; i++)
		if (w.v[i].op == CTRL_DELETE && n < 3)
			gone[n++] = obj_name(w.v[i].obj);
	assert_int_equal(n, 3);
	assert_string_equal(gone[0], "ok0");
	assert_string_equal(gone[1], "ok1");
	assert_string_equal(gone[2], "bad0");
	assert_string_equal(obj_str_at(status_of(&w), "lastSuccessfulTime"),
	    "2027-01-15T07:44:05Z");
	ctrl_writes_free(&w);
	json_decref(jobs);
	json_decref(cj);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_selector),
		cmocka_unit_test(test_creates_up_to_parallelism_within_completions),
		cmocka_unit_test(test_backoff_then_backoff_limit),
		cmocka_unit_test(test_pod_failure_policy),
		cmocka_unit_test(test_deadline_suspend_and_ttl),
		cmocka_unit_test(test_indexed),
		cmocka_unit_test(test_cronjob_schedules_the_newest_time),
		cmocka_unit_test(test_cronjob_concurrency_and_history),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
