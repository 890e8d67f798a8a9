/* test_node_pod.c — the pod state machine with a fake clock: phases per
 * restartPolicy, init container order, the CrashLoopBackOff schedule with
 * its cap and reset, probe threshold counting, readiness -> conditions,
 * graceful termination, status rendering and restoring. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node_pod.h"
#include "obj.h"

#define T0 1800000000000LL	/* a wall clock in ms */

static json_t *
mkpod(const char *restart, const char *containers, const char *init)
{
	char *s = xasprintf("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
	    "\"namespace\":\"default\",\"uid\":\"u1\"},\"spec\":{\"restartPolicy\":\"%s\","
	    "\"terminationGracePeriodSeconds\":30,\"containers\":%s%s%s}}", restart, containers,
	    init ? ",\"initContainers\":" : "", init ? init : "");
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s: %s", e.text, s);
	free(s);
	return j;
}

#define ONE "[{\"name\":\"c\",\"image\":\"sh\"}]"

struct run {
	struct npod p;
	struct npod_act a[NPOD_MAX_ACTS];
	size_t n;
	int64_t next;
};

static void
step(struct run *r, int64_t now)
{
	r->n = npod_step(&r->p, now, r->a, NPOD_MAX_ACTS, &r->next);
}

static const struct npod_act *
find(const struct run *r, enum npod_act_type t, size_t ctr)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->a[i].type == t && r->a[i].ctr == ctr)
			return &r->a[i];
	return NULL;
}

static const struct npod_act *
find_event(const struct run *r, const char *reason)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->a[i].type == NACT_EVENT && !strcmp(r->a[i].reason, reason))
			return &r->a[i];
	return NULL;
}

static void
exit_with(struct run *r, size_t i, int code, int64_t at)
{
	struct rt_status st = { .state = RT_EXITED, .exit_code = code,
		.started_at_ms = r->p.c[i].started_ms, .finished_at_ms = at };
	npod_exited(&r->p, i, r->p.c[i].attempt, &st);
}

/* Steps at now, expects a start of ctr and reports it started. */
static void
expect_start(struct run *r, size_t ctr, int64_t now)
{
	step(r, now);
	const struct npod_act *s = find(r, NACT_START, ctr);
	assert_non_null(s);
	assert_int_equal(s->attempt, r->p.c[ctr].attempt + 1);
	npod_started(&r->p, ctr, s->attempt, now);
}

static const char *
phase(const struct run *r)
{
	static const char *const names[] = { "Pending", "Running", "Succeeded", "Failed" };
	return names[npod_phase(&r->p)];
}

static void
test_backoff_schedule(void **state)
{
	(void)state;
	struct run r;
	json_t *pod = mkpod("Always", ONE, NULL);
	npod_init(&r.p, pod, 0, T0);
	int64_t now = T0;
	expect_start(&r, 0, now);
	/* first exit: restarted at once (kubelet: no back-off entry yet) */
	now += 1000;
	exit_with(&r, 0, 1, now);
	expect_start(&r, 0, now);
	int want[] = { 10, 20, 40, 80, 160, 300, 300 };
	for (size_t k = 0; k < ARRAY_SIZE(want); k++) {
		now += 500;
		exit_with(&r, 0, 1, now);
		step(&r, now);
		assert_null(find(&r, NACT_START, 0));
		assert_int_equal(r.next, now + want[k] * 1000);
		assert_string_equal(r.p.c[0].reason, "CrashLoopBackOff");
		char msg[160];
		snprintf(msg, sizeof msg, "back-off %ds restarting failed container=c "
		    "pod=p_default(u1)", want[k]);
		assert_string_equal(r.p.c[0].message, msg);
		assert_non_null(find_event(&r, "BackOff"));
		step(&r, now + want[k] * 1000 - 1);
		assert_null(find(&r, NACT_START, 0));
		assert_null(find_event(&r, "BackOff"));	/* once per exit */
		now += want[k] * 1000;
		expect_start(&r, 0, now);
	}
	assert_int_equal(r.p.c[0].attempt, 2 + (int)ARRAY_SIZE(want) - 1);
	json_t *st = npod_status(&r.p, NULL, "127.1.0.1", now);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(
	    json_object_get(st, "containerStatuses"), 0), "restartCount")), 8);
	json_decref(st);
	npod_free(&r.p);
	json_decref(pod);
}

static void
test_backoff_cap_and_reset(void **state)
{
	(void)state;
	struct run r;
	json_t *pod = mkpod("Always", ONE, NULL);
	npod_init(&r.p, pod, 30, T0);
	int64_t now = T0;
	expect_start(&r, 0, now);
	exit_with(&r, 0, 2, now);
	expect_start(&r, 0, now);
	int want[] = { 10, 20, 30, 30 };
	for (size_t k = 0; k < ARRAY_SIZE(want); k++) {
		exit_with(&r, 0, 2, now);
		step(&r, now);
		assert_int_equal(r.next, now + want[k] * 1000);
		now += want[k] * 1000;
		expect_start(&r, 0, now);
	}
	/* ten minutes of running: the next restart is immediate again */
	now += 601 * 1000;
	exit_with(&r, 0, 2, now);
	expect_start(&r, 0, now);
	exit_with(&r, 0, 2, now + 100);
	step(&r, now + 100);
	assert_int_equal(r.next, now + 100 + 10 * 1000);
	npod_free(&r.p);
	json_decref(pod);
}

static void
test_phase_rules(void **state)
{
	(void)state;
	static const struct {
		const char *policy;
		int code;
		const char *phase;
		bool restarts;
	} cases[] = {
		{ "Never", 0, "Succeeded", false },
		{ "Never", 3, "Failed", false },
		{ "OnFailure", 0, "Succeeded", false },
		{ "OnFailure", 3, "Running", true },
		{ "Always", 0, "Running", true },
		{ "Always", 3, "Running", true },
	};
	for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
		struct run r;
		json_t *pod = mkpod(cases[k].policy, ONE, NULL);
		npod_init(&r.p, pod, 0, T0);
		assert_string_equal(phase(&r), "Pending");
		expect_start(&r, 0, T0);
		assert_string_equal(phase(&r), "Running");
		exit_with(&r, 0, cases[k].code, T0 + 10);
		assert_string_equal(phase(&r), cases[k].phase);
		step(&r, T0 + 10);
		assert_int_equal(find(&r, NACT_START, 0) != NULL, cases[k].restarts);
		npod_free(&r.p);
		json_decref(pod);
	}
}

static void
test_two_containers_phase(void **state)
{
	(void)state;
	struct run r;
	json_t *pod = mkpod("Never", "[{\"name\":\"a\",\"image\":\"x\"},"
	    "{\"name\":\"b\",\"image\":\"x\"}]", NULL);
	npod_init(&r.p, pod, 0, T0);
	step(&r, T0);
	assert_non_null(find(&r, NACT_START, 0));
	assert_non_null(find(&r, NACT_START, 1));
	npod_started(&r.p, 0, 0, T0);
	assert_string_equal(phase(&r), "Pending");	/* b still waiting */
	npod_started(&r.p, 1, 0, T0);
	exit_with(&r, 0, 0, T0 + 5);
	assert_string_equal(phase(&r), "Running");
	exit_with(&r, 1, 1, T0 + 6);
	assert_string_equal(phase(&r), "Failed");
	npod_free(&r.p);
	json_decref(pod);
}

static void
test_init_order(void **state)
{
	(void)state;
	struct run r;
	json_t *pod = mkpod("OnFailure", ONE, "[{\"name\":\"i1\",\"image\":\"x\"},"
	    "{\"name\":\"i2\",\"image\":\"x\"}]");
	npod_init(&r.p, pod, 0, T0);
	assert_int_equal(r.p.n_init, 2);
	step(&r, T0);
	assert_int_equal(r.n, 1);
	assert_non_null(find(&r, NACT_START, 0));
	npod_started(&r.p, 0, 0, T0);
	step(&r, T0 + 1);
	assert_int_equal(r.n, 0);
	json_t *st = npod_status(&r.p, NULL, NULL, T0);
	json_t *cond = json_array_get(json_object_get(st, "conditions"), 0);
	assert_string_equal(json_string_value(json_object_get(cond, "type")), "Initialized");
	assert_string_equal(json_string_value(json_object_get(cond, "status")), "False");
	assert_string_equal(json_string_value(json_object_get(cond, "message")),
	    "containers with incomplete status: [i1 i2]");
	json_t *app = json_array_get(json_object_get(st, "containerStatuses"), 0);
	assert_string_equal(json_string_value(obj_get_path(app, "state.waiting.reason")),
	    "PodInitializing");
	json_decref(st);
	exit_with(&r, 0, 0, T0 + 2);
	expect_start(&r, 1, T0 + 2);
	exit_with(&r, 1, 1, T0 + 3);		/* OnFailure: the init container restarts */
	assert_string_equal(phase(&r), "Pending");
	expect_start(&r, 1, T0 + 3);
	assert_null(find(&r, NACT_START, 2));
	exit_with(&r, 1, 0, T0 + 4);
	expect_start(&r, 2, T0 + 4);
	assert_string_equal(phase(&r), "Running");
	npod_free(&r.p);
	json_decref(pod);
}

static void
test_init_failure_never(void **state)
{
	(void)state;
	struct run r;
	json_t *pod = mkpod("Never", ONE, "[{\"name\":\"i1\",\"image\":\"x\"}]");
	npod_init(&r.p, pod, 0, T0);
	expect_start(&r, 0, T0);
	exit_with(&r, 0, 7, T0 + 1);
	step(&r, T0 + 1);
	assert_int_equal(r.n, 0);
	assert_string_equal(phase(&r), "Failed");
	npod_free(&r.p);
	json_decref(pod);
}

#define PROBED "[{\"name\":\"c\",\"image\":\"x\",\"livenessProbe\":{\"exec\":{\"command\":" \
	"[\"true\"]},\"periodSeconds\":5,\"failureThreshold\":3,\"initialDelaySeconds\":2," \
	"\"terminationGracePeriodSeconds\":4},\"readinessProbe\":{\"tcpSocket\":{\"port\":80}," \
	"\"periodSeconds\":1,\"successThreshold\":2,\"failureThreshold\":2}," \
	"\"startupProbe\":{\"exec\":{\"command\":[\"true\"]},\"periodSeconds\":1," \
	"\"failureThreshold\":5}}]"

static void
probe(struct run *r, enum nprobe_kind k, bool ok, int64_t now, struct npod_act *ev)
{
	const struct npod_act *a = NULL;
	for (size_t i = 0; i < r->n; i++)
		if (r->a[i].type == NACT_PROBE && r->a[i].probe == k)
			a = &r->a[i];
	assert_non_null(a);
	npod_probe_done(&r->p, 0, k, ok, "boom", now, ev);
}

static bool
has_probe(const struct run *r, enum nprobe_kind k)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->a[i].type == NACT_PROBE && r->a[i].probe == k)
			return true;
	return false;
}

static void
test_probes(void **state)
{
	(void)state;
	struct run r;
	struct npod_act ev;
	json_t *pod = mkpod("Always", PROBED, NULL);
	npod_init(&r.p, pod, 0, T0);
	int64_t now = T0;
	expect_start(&r, 0, now);
	/* the startup probe gates the others */
	step(&r, now);
	assert_true(has_probe(&r, NPROBE_STARTUP));
	assert_false(has_probe(&r, NPROBE_LIVENESS));
	assert_false(has_probe(&r, NPROBE_READINESS));
	probe(&r, NPROBE_STARTUP, false, now, &ev);
	assert_string_equal(ev.reason, "Unhealthy");
	assert_string_equal(ev.message, "Startup probe failed: boom");
	step(&r, now);		/* in flight: not again before the period */
	assert_false(has_probe(&r, NPROBE_STARTUP));
	assert_int_equal(r.next, now + 1000);
	now += 1000;
	step(&r, now);
	probe(&r, NPROBE_STARTUP, true, now, &ev);
	assert_true(r.p.c[0].started);
	/* liveness waits for its initialDelaySeconds (from the start) */
	step(&r, now);
	assert_false(has_probe(&r, NPROBE_LIVENESS));
	assert_true(has_probe(&r, NPROBE_READINESS));
	assert_false(r.p.c[0].ready);
	probe(&r, NPROBE_READINESS, true, now, &ev);
	assert_false(r.p.c[0].ready);		/* successThreshold 2 */
	now += 1000;
	step(&r, now);
	assert_true(has_probe(&r, NPROBE_LIVENESS));
	probe(&r, NPROBE_READINESS, true, now, &ev);
	assert_true(r.p.c[0].ready);
	json_t *st = npod_status(&r.p, NULL, "127.1.0.1", now);
	json_t *ready = json_array_get(json_object_get(st, "conditions"), 1);
	assert_string_equal(json_string_value(json_object_get(ready, "type")), "Ready");
	assert_string_equal(json_string_value(json_object_get(ready, "status")), "True");
	/* liveness: three consecutive failures kill, with the probe's grace */
	for (int k = 0; k < 3; k++) {
		if (k)
			step(&r, now);
		probe(&r, NPROBE_LIVENESS, false, now, &ev);
		now += 5000;
		assert_true(k == 2 || r.p.c[0].kill == NKILL_NONE);
	}
	step(&r, now);
	assert_non_null(find_event(&r, "Killing"));
	assert_string_equal(find_event(&r, "Killing")->message,
	    "Container c failed liveness probe, will be restarted");
	const struct npod_act *sig = find(&r, NACT_SIGNAL, 0);
	assert_non_null(sig);
	assert_int_equal(sig->sig, SIGTERM);
	assert_int_equal(r.next, now + 4000);
	step(&r, now + 4000);
	sig = find(&r, NACT_SIGNAL, 0);
	assert_non_null(sig);
	assert_int_equal(sig->sig, SIGKILL);
	exit_with(&r, 0, 137, now + 4001);
	assert_false(r.p.c[0].ready);
	expect_start(&r, 0, now + 4001);	/* first restart: immediate */
	/* readiness failures take the pod out of Ready, with a transition */
	json_t *st2 = npod_status(&r.p, st, "127.1.0.1", now + 4001);
	ready = json_array_get(json_object_get(st2, "conditions"), 1);
	assert_string_equal(json_string_value(json_object_get(ready, "status")), "False");
	assert_string_equal(json_string_value(json_object_get(ready, "reason")),
	    "ContainersNotReady");
	assert_string_equal(json_string_value(json_object_get(ready, "message")),
	    "containers with unready status: [c]");
	json_decref(st2);
	json_decref(st);
	npod_free(&r.p);
	json_decref(pod);
}

static void
test_readiness_without_probe(void **state)
{
	(void)state;
	struct run r;
	json_t *pod = mkpod("Always", ONE, NULL);
	npod_init(&r.p, pod, 0, T0);
	expect_start(&r, 0, T0);
	step(&r, T0);
	assert_true(r.p.c[0].ready);
	assert_true(r.p.c[0].started);
	/* lastTransitionTime moves only on a transition */
	json_t *a = npod_status(&r.p, NULL, "127.1.0.1", T0);
	json_t *b = npod_status(&r.p, a, "127.1.0.1", T0 + 60000);
	assert_true(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	npod_free(&r.p);
	json_decref(pod);
}

#define HOOKED "[{\"name\":\"c\",\"image\":\"x\",\"lifecycle\":{\"preStop\":{\"exec\":" \
	"{\"command\":[\"true\"]}},\"postStart\":{\"exec\":{\"command\":[\"true\"]}}}}]"

static void
test_termination_with_prestop(void **state)
{
	(void)state;
	struct run r;
	struct npod_act ev;
	json_t *pod = mkpod("Always", HOOKED, NULL);
	npod_init(&r.p, pod, 0, T0);
	expect_start(&r, 0, T0);
	step(&r, T0);
	const struct npod_act *h = find(&r, NACT_HOOK, 0);
	assert_non_null(h);
	assert_int_equal(h->hook, NHOOK_POST_START);
	assert_false(r.p.c[0].started);		/* not before postStart returned */
	npod_hook_done(&r.p, 0, NHOOK_POST_START, true, "", T0 + 5, &ev);
	step(&r, T0 + 5);
	assert_true(r.p.c[0].ready);
	/* delete with 10 s: preStop, then SIGTERM when it returns, SIGKILL at 10 s */
	npod_delete(&r.p, 10, T0 + 1000);
	step(&r, T0 + 1000);
	h = find(&r, NACT_HOOK, 0);
	assert_non_null(h);
	assert_int_equal(h->hook, NHOOK_PRE_STOP);
	assert_int_equal(h->timeout_ms, 10000);
	assert_null(find(&r, NACT_SIGNAL, 0));
	assert_non_null(find_event(&r, "Killing"));
	npod_hook_done(&r.p, 0, NHOOK_PRE_STOP, true, "", T0 + 4000, &ev);
	step(&r, T0 + 4000);
	assert_int_equal(find(&r, NACT_SIGNAL, 0)->sig, SIGTERM);
	assert_int_equal(r.next, T0 + 11000);
	step(&r, T0 + 10999);
	assert_null(find(&r, NACT_SIGNAL, 0));
	step(&r, T0 + 11000);
	assert_int_equal(find(&r, NACT_SIGNAL, 0)->sig, SIGKILL);
	assert_false(npod_all_stopped(&r.p));
	exit_with(&r, 0, 137, T0 + 11001);
	assert_true(npod_all_stopped(&r.p));
	step(&r, T0 + 11002);
	assert_int_equal(r.n, 0);		/* nothing restarts while deleting */
	assert_string_equal(phase(&r), "Failed");
	npod_free(&r.p);
	json_decref(pod);
}

static void
test_termination_prestop_overrun_and_min_grace(void **state)
{
	(void)state;
	struct run r;
	json_t *pod = mkpod("Always", HOOKED, NULL);
	npod_init(&r.p, pod, 0, T0);
	expect_start(&r, 0, T0);
	r.p.c[0].post_start = NPOST_NONE;
	npod_delete(&r.p, 3, T0);
	step(&r, T0);
	assert_int_equal(r.next, T0 + 3000);
	step(&r, T0 + 3000);			/* preStop still running: SIGTERM now */
	assert_int_equal(find(&r, NACT_SIGNAL, 0)->sig, SIGTERM);
	assert_int_equal(r.next, T0 + 5000);	/* then 2 s more */
	npod_free(&r.p);
	json_decref(pod);

	pod = mkpod("Never", ONE, NULL);
	npod_init(&r.p, pod, 0, T0);
	expect_start(&r, 0, T0);
	npod_delete(&r.p, 0, T0);
	step(&r, T0);
	assert_int_equal(find(&r, NACT_SIGNAL, 0)->sig, SIGTERM);
	assert_int_equal(r.next, T0 + 2000);
	exit_with(&r, 0, 0, T0 + 10);
	assert_string_equal(phase(&r), "Succeeded");
	npod_free(&r.p);
	json_decref(pod);
}

static void
test_failed_post_start_kills(void **state)
{
	(void)state;
	struct run r;
	struct npod_act ev;
	json_t *pod = mkpod("Always", HOOKED, NULL);
	npod_init(&r.p, pod, 0, T0);
	expect_start(&r, 0, T0);
	step(&r, T0);
	npod_hook_done(&r.p, 0, NHOOK_POST_START, false, "exit 1", T0 + 1, &ev);
	assert_string_equal(ev.reason, "FailedPostStartHook");
	step(&r, T0 + 1);
	assert_non_null(find_event(&r, "Killing"));
	assert_non_null(find(&r, NACT_HOOK, 0));	/* preStop runs on every kill */
	npod_free(&r.p);
	json_decref(pod);
}

/* A failed pull: ErrImagePull, then ImagePullBackOff (one BackOff event)
 * until the retry, 10 s then 20 s later; imageID once the image is known. */
static void
test_image_pull_backoff(void **state)
{
	(void)state;
	struct run r;
	json_t *pod = mkpod("Always", ONE, NULL);
	json_object_set_new(json_object_get(pod, "spec"), "runtimeClassName", json_string("runc"));
	npod_init(&r.p, pod, 0, T0);
	step(&r, T0);
	assert_int_equal(find(&r, NACT_START, 0)->attempt, 0);
	npod_start_failed(&r.p, 0, "ErrImagePull", "manifest unknown", T0);
	step(&r, T0);
	assert_string_equal(r.p.c[0].reason, "ErrImagePull");
	assert_null(find(&r, NACT_START, 0));
	assert_int_equal(r.next, T0 + NPOD_PULL_ERR_SHOW_MS);
	step(&r, T0 + NPOD_PULL_ERR_SHOW_MS);
	assert_string_equal(r.p.c[0].reason, "ImagePullBackOff");
	assert_string_equal(r.p.c[0].message, "Back-off pulling image \"sh\"");
	assert_non_null(find_event(&r, "BackOff"));
	assert_false(find_event(&r, "BackOff")->warning);
	step(&r, T0 + 5000);
	assert_null(find_event(&r, "BackOff"));	/* announced once */
	assert_null(find(&r, NACT_START, 0));
	step(&r, T0 + 10000);
	assert_int_equal(find(&r, NACT_START, 0)->attempt, 0);
	npod_start_failed(&r.p, 0, "ErrImagePull", "manifest unknown", T0 + 10000);
	step(&r, T0 + 29999);
	assert_null(find(&r, NACT_START, 0));
	step(&r, T0 + 30000);
	assert_non_null(find(&r, NACT_START, 0));
	npod_image_id(&r.p, 0, "reg/app@sha256:1");
	npod_started(&r.p, 0, 0, T0 + 30000);
	json_t *st = npod_status(&r.p, NULL, NULL, T0 + 30000);
	json_t *cs = json_array_get(json_object_get(st, "containerStatuses"), 0);
	assert_string_equal(json_string_value(json_object_get(cs, "imageID")), "reg/app@sha256:1");
	/* A restarted server keeps it. */
	struct npod q;
	npod_init(&q, pod, 0, T0);
	npod_restore(&q, st);
	assert_string_equal(q.c[0].image_id, "reg/app@sha256:1");
	npod_free(&q);
	json_decref(st);
	npod_free(&r.p);
	json_decref(pod);
}

static void
test_start_failure_and_unsupported_runtime(void **state)
{
	(void)state;
	struct run r;
	json_t *pod = mkpod("Always", ONE, NULL);
	npod_init(&r.p, pod, 0, T0);
	step(&r, T0);
	npod_start_failed(&r.p, 0, "CreateContainerConfigError",
	    "configmap \"cfg\" not found", T0);
	json_t *st = npod_status(&r.p, NULL, NULL, T0);
	json_t *cs = json_array_get(json_object_get(st, "containerStatuses"), 0);
	assert_string_equal(json_string_value(obj_get_path(cs, "state.waiting.reason")),
	    "CreateContainerConfigError");
	assert_string_equal(json_string_value(obj_get_path(cs, "state.waiting.message")),
	    "configmap \"cfg\" not found");
	assert_string_equal(phase(&r), "Pending");
	json_decref(st);
	step(&r, T0 + 9999);
	assert_null(find(&r, NACT_START, 0));
	step(&r, T0 + 10000);
	assert_int_equal(find(&r, NACT_START, 0)->attempt, 0);
	npod_free(&r.p);
	json_decref(pod);

	pod = mkpod("Always", ONE, NULL);
	json_object_set_new(json_object_get(pod, "spec"), "runtimeClassName", json_string("kata"));
	npod_init(&r.p, pod, 0, T0);
	step(&r, T0);
	assert_int_equal(r.n, 0);
	assert_string_equal(phase(&r), "Failed");
	st = npod_status(&r.p, NULL, NULL, T0);
	assert_string_equal(json_string_value(json_object_get(st, "reason")),
	    "UnsupportedRuntimeClass");
	json_decref(st);
	npod_free(&r.p);
	json_decref(pod);
}

static void
test_status_and_restore(void **state)
{
	(void)state;
	struct run r;
	json_t *pod = mkpod("Always", ONE, NULL);
	npod_init(&r.p, pod, 0, T0);
	expect_start(&r, 0, T0);
	exit_with(&r, 0, 3, T0 + 2000);
	expect_start(&r, 0, T0 + 2000);
	exit_with(&r, 0, 4, T0 + 3000);
	step(&r, T0 + 3000);				/* CrashLoopBackOff */
	json_t *st = npod_status(&r.p, NULL, "127.1.0.9", T0 + 3000);
	json_t *cs = json_array_get(json_object_get(st, "containerStatuses"), 0);
	assert_string_equal(json_string_value(obj_get_path(cs, "state.waiting.reason")),
	    "CrashLoopBackOff");
	assert_int_equal(json_integer_value(obj_get_path(cs, "lastState.terminated.exitCode")), 4);
	assert_string_equal(json_string_value(obj_get_path(cs, "lastState.terminated.reason")),
	    "Error");
	assert_string_equal(json_string_value(json_object_get(cs, "containerID")),
	    "process://u1/c-1");
	assert_int_equal(json_integer_value(json_object_get(cs, "restartCount")), 1);
	assert_string_equal(json_string_value(json_object_get(st, "podIP")), "127.1.0.9");
	assert_string_equal(json_string_value(json_object_get(st, "phase")), "Running");

	/* a new server restores attempts and the last termination */
	struct run r2;
	npod_init(&r2.p, pod, 0, T0 + 50000);
	npod_restore(&r2.p, st);
	assert_int_equal(r2.p.start_ms, T0);
	assert_int_equal(r2.p.c[0].attempt, 1);
	assert_int_equal(r2.p.c[0].state, NCTR_TERMINATED);
	assert_int_equal(r2.p.c[0].term.exit_code, 4);
	expect_start(&r2, 0, T0 + 50000);
	assert_int_equal(r2.p.c[0].attempt, 2);
	json_t *st2 = npod_status(&r2.p, st, "127.1.0.9", T0 + 50000);
	cs = json_array_get(json_object_get(st2, "containerStatuses"), 0);
	assert_int_equal(json_integer_value(json_object_get(cs, "restartCount")), 2);
	assert_int_equal(json_integer_value(obj_get_path(cs, "lastState.terminated.exitCode")), 4);
	json_decref(st2);
	json_decref(st);
	npod_free(&r2.p);
	npod_free(&r.p);
	json_decref(pod);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_schedule),
		cmocka_unit_test(test_image_pull_backoff),
		cmocka_unit_test(test_backoff_cap_and_reset),
		cmocka_unit_test(test_phase_rules),
		cmocka_unit_test(test_two_containers_phase),
		cmocka_unit_test(test_init_order),
		cmocka_unit_test(test_init_failure_never),
		cmocka_unit_test(test_probes),
		cmocka_unit_test(test_readiness_without_probe),
		cmocka_unit_test(test_termination_with_prestop),
		cmocka_unit_test(test_termination_prestop_overrun_and_min_grace),
		cmocka_unit_test(test_failed_post_start_kills),
		cmocka_unit_test(test_start_failure_and_unsupported_runtime),
		cmocka_unit_test(test_status_and_restore),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
