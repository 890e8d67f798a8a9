/* Unit tests of the ReplicaSet controller's decision (rs_decide and the
 * deletion order) and of the controllers' work queue. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ctrl.h"

#define NOW_S 1800000000LL
#define NOW_MS (NOW_S * 1000)

static json_t *
ts(int64_t s)
{
	char b[32];
	time_format_rfc3339((time_t)s, b);
	return json_string(b);
}

static json_t *
make_rs(int replicas, int min_ready)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:i},"
	    " s:{s:i, s:i, s:{s:{s:s}}, s:{s:{s:{s:s, s:s}}, s:{s:[{s:s, s:s}]}}}}",
	    "apiVersion", "apps/v1", "kind", "ReplicaSet",
	    "metadata", "name", "web-abc", "namespace", "default", "uid", "rs-uid",
	    "generation", 2,
	    "spec", "replicas", replicas, "minReadySeconds", min_ready,
	    "selector", "matchLabels", "app", "web",
	    "template", "metadata", "labels", "app", "web", "tier", "fe",
	    "spec", "containers", "name", "c", "image", "img:1");
}

struct podopt {
	const char *owner;	/* controller uid, NULL for an orphan */
	const char *phase;	/* NULL: Running */
	int ready;		/* -1 no condition, 0 False, 1 True */
	int64_t ready_s, created_s;
	int restarts;
	bool unassigned, deleting, partial_labels;
	const char *cost;
};

static json_t *
make_pod(const char *name, struct podopt o)
{
	json_t *labels = o.partial_labels ? json_pack("{s:s}", "app", "web") :
	    json_pack("{s:s, s:s}", "app", "web", "tier", "fe");
	json_t *p = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:o, s:o}, s:{s:[{s:s}]},"
	    " s:{s:s, s:[{s:s, s:i}]}}",
	    "apiVersion", "v1", "kind", "Pod",
	    "metadata", "name", name, "namespace", "default", "uid", name,
	    "labels", labels, "creationTimestamp", ts(o.created_s ? o.created_s : NOW_S - 100),
	    "spec", "containers", "name", "c",
	    "status", "phase", o.phase ? o.phase : "Running",
	    "containerStatuses", "name", "c", "restartCount", o.restarts);
	if (!o.unassigned)
		json_object_set_new(json_object_get(p, "spec"), "nodeName", json_string("n1"));
	if (o.owner)
		json_object_set_new(obj_metadata(p), "ownerReferences", json_pack(
		    "[{s:s, s:s, s:s, s:s, s:b}]", "apiVersion", "apps/v1", "kind", "ReplicaSet",
		    "name", "x", "uid", o.owner, "controller", 1));
	if (o.ready >= 0)
		json_object_set_new(json_object_get(p, "status"), "conditions", json_pack(
		    "[{s:s, s:s, s:o}]", "type", "Ready", "status", o.ready ? "True" : "False",
		    "lastTransitionTime", ts(o.ready_s ? o.ready_s : NOW_S - 50)));
	if (o.deleting)
		json_object_set_new(obj_metadata(p), "deletionTimestamp", ts(NOW_S));
	if (o.cost)
		json_object_set_new(obj_metadata(p), "annotations", json_pack("{s:s}",
		    "controller.kubernetes.io/pod-deletion-cost", o.cost));
	return p;
}

static int
status_int(const struct rs_actions *a, const char *key)
{
	return (int)json_integer_value(json_object_get(a->status, key));
}

static void
test_creates_missing_pods(void **state)
{
	(void)state;
	json_t *rs = make_rs(3, 0), *pods = json_array();
	json_array_append_new(pods, make_pod("p1", (struct podopt){ .owner = "rs-uid", .ready = 1 }));
	struct rs_actions a;
	assert_int_equal(rs_decide(rs, pods, NOW_MS, &a), 0);
	assert_int_equal(a.create, 2);
	assert_int_equal(json_array_size(a.remove), 0);
	assert_int_equal(status_int(&a, "replicas"), 1);
	assert_int_equal(status_int(&a, "readyReplicas"), 1);
	assert_int_equal(status_int(&a, "availableReplicas"), 1);
	assert_int_equal(status_int(&a, "fullyLabeledReplicas"), 1);
	assert_int_equal(status_int(&a, "observedGeneration"), 2);
	rs_actions_free(&a);
	json_decref(rs);
	json_decref(pods);
}

static void
test_zero_counts_are_omitted_but_replicas(void **state)
{
	(void)state;
	json_t *rs = make_rs(0, 0), *pods = json_array();
	struct rs_actions a;
	assert_int_equal(rs_decide(rs, pods, NOW_MS, &a), 0);
	assert_int_equal(a.create, 0);
	assert_non_null(json_object_get(a.status, "replicas"));
	assert_null(json_object_get(a.status, "readyReplicas"));
	assert_null(json_object_get(a.status, "availableReplicas"));
	rs_actions_free(&a);
	json_decref(rs);
	json_decref(pods);
}

static void
test_claims_adopt_release_ignore(void **state)
{
	(void)state;
	json_t *rs = make_rs(2, 0), *pods = json_array();
	json_array_append_new(pods, make_pod("orphan", (struct podopt){ .ready = 1 }));
	json_array_append_new(pods, make_pod("other", (struct podopt){ .owner = "x", .ready = 1 }));
	json_array_append_new(pods, make_pod("done", (struct podopt){ .phase = "Succeeded" }));
	json_array_append_new(pods, make_pod("dying", (struct podopt){ .owner = "rs-uid",
	    .deleting = true }));
	json_t *gone = make_pod("moved", (struct podopt){ .owner = "rs-uid", .ready = 1 });
	json_object_set_new(obj_labels(gone), "app", json_string("other"));
	json_array_append_new(pods, gone);
	struct rs_actions a;
	assert_int_equal(rs_decide(rs, pods, NOW_MS, &a), 0);
	assert_int_equal(json_array_size(a.adopt), 1);
	json_t *adopted = json_array_get(a.adopt, 0);
	assert_string_equal(obj_name(adopted), "orphan");
	const json_t *ref = obj_controller_ref(adopted);
	assert_non_null(ref);
	assert_string_equal(json_string_value(json_object_get(ref, "uid")), "rs-uid");
	assert_string_equal(json_string_value(json_object_get(ref, "kind")), "ReplicaSet");
	assert_true(json_is_true(json_object_get(ref, "blockOwnerDeletion")));
	assert_int_equal(json_array_size(a.release), 1);
	assert_string_equal(obj_name(json_array_get(a.release, 0)), "moved");
	assert_null(obj_get_path(json_array_get(a.release, 0), "metadata.ownerReferences"));
	/* The adopted orphan counts, the deleting / finished / foreign ones do not. */
	assert_int_equal(status_int(&a, "replicas"), 1);
	assert_int_equal(a.create, 1);
	rs_actions_free(&a);
	json_decref(rs);
	json_decref(pods);
}

static void
test_rs_being_deleted_does_not_manage(void **state)
{
	(void)state;
	json_t *rs = make_rs(3, 0), *pods = json_array();
	json_object_set_new(obj_metadata(rs), "deletionTimestamp", ts(NOW_S));
	json_array_append_new(pods, make_pod("orphan", (struct podopt){ .ready = 1 }));
	struct rs_actions a;
	assert_int_equal(rs_decide(rs, pods, NOW_MS, &a), 0);
	assert_int_equal(a.create, 0);
	assert_int_equal(json_array_size(a.adopt), 0);
	rs_actions_free(&a);
	json_decref(rs);
	json_decref(pods);
}

static void
test_deletion_order(void **state)
{
	(void)state;
	json_t *rs = make_rs(0, 0), *pods = json_array();
	const char *o = "rs-uid";
	/* Listed in reverse of the expected order. */
	json_array_append_new(pods, make_pod("ready-old", (struct podopt){ .owner = o, .ready = 1,
	    .ready_s = NOW_S - 100000, .created_s = NOW_S - 200000 }));
	json_array_append_new(pods, make_pod("ready-new", (struct podopt){ .owner = o, .ready = 1,
	    .ready_s = NOW_S - 10, .created_s = NOW_S - 20 }));
	json_array_append_new(pods, make_pod("ready-restarts", (struct podopt){ .owner = o,
	    .ready = 1, .ready_s = NOW_S - 100000, .created_s = NOW_S - 200000, .restarts = 4 }));
	json_array_append_new(pods, make_pod("ready-cheap", (struct podopt){ .owner = o,
	    .ready = 1, .ready_s = NOW_S - 100000, .cost = "-5" }));
	json_array_append_new(pods, make_pod("not-ready", (struct podopt){ .owner = o, .ready = 0 }));
	json_array_append_new(pods, make_pod("pending", (struct podopt){ .owner = o,
	    .phase = "Pending", .ready = -1 }));
	json_array_append_new(pods, make_pod("unscheduled", (struct podopt){ .owner = o,
	    .phase = "Pending", .ready = -1, .unassigned = true }));
	struct rs_actions a;
	assert_int_equal(rs_decide(rs, pods, NOW_MS, &a), 0);
	const char *want[] = { "unscheduled", "pending", "not-ready", "ready-cheap", "ready-new",
		"ready-restarts", "ready-old" };
	assert_int_equal(json_array_size(a.remove), ARRAY_SIZE(want));
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		assert_string_equal(json_string_value(json_array_get(a.remove, i)), want[i]);
	rs_actions_free(&a);
	json_decref(rs);
	json_decref(pods);
}

static void
test_scale_down_takes_the_first_ones(void **state)
{
	(void)state;
	json_t *rs = make_rs(2, 0), *pods = json_array();
	json_array_append_new(pods, make_pod("a", (struct podopt){ .owner = "rs-uid", .ready = 1 }));
	json_array_append_new(pods, make_pod("b", (struct podopt){ .owner = "rs-uid", .ready = 0 }));
	json_array_append_new(pods, make_pod("c", (struct podopt){ .owner = "rs-uid", .ready = 1 }));
	struct rs_actions a;
	assert_int_equal(rs_decide(rs, pods, NOW_MS, &a), 0);
	assert_int_equal(json_array_size(a.remove), 1);
	assert_string_equal(json_string_value(json_array_get(a.remove, 0)), "b");
	rs_actions_free(&a);
	json_decref(rs);
	json_decref(pods);
}

static void
test_min_ready_seconds_and_requeue(void **state)
{
	(void)state;
	json_t *rs = make_rs(3, 10), *pods = json_array();
	json_array_append_new(pods, make_pod("old", (struct podopt){ .owner = "rs-uid", .ready = 1,
	    .ready_s = NOW_S - 60 }));
	json_array_append_new(pods, make_pod("fresh", (struct podopt){ .owner = "rs-uid",
	    .ready = 1, .ready_s = NOW_S - 4 }));
	json_array_append_new(pods, make_pod("fresher", (struct podopt){ .owner = "rs-uid",
	    .ready = 1, .ready_s = NOW_S - 1, .partial_labels = true }));
	struct rs_actions a;
	assert_int_equal(rs_decide(rs, pods, NOW_MS, &a), 0);
	assert_int_equal(status_int(&a, "readyReplicas"), 3);
	assert_int_equal(status_int(&a, "availableReplicas"), 1);
	assert_int_equal(status_int(&a, "fullyLabeledReplicas"), 2);
	/* "fresh" becomes available just after 6 s. */
	assert_int_equal(a.requeue_ms, 6001);
	rs_actions_free(&a);
	/* Exactly at the boundary it is not yet available (strictly before). */
	assert_false(obj_pod_available(json_array_get(pods, 1), 4, NOW_MS));
	assert_true(obj_pod_available(json_array_get(pods, 1), 4, NOW_MS + 1));
	json_decref(rs);
	json_decref(pods);
}

static void
test_pod_from_template(void **state)
{
	(void)state;
	json_t *rs = make_rs(1, 0);
	json_t *pod = rs_pod_from_template(rs);
	assert_string_equal(json_string_value(obj_get_path(pod, "metadata.generateName")),
	    "web-abc-");
	assert_string_equal(obj_namespace(pod), "default");
	assert_string_equal(json_string_value(obj_get_path(pod, "metadata.labels.tier")), "fe");
	assert_string_equal(json_string_value(obj_get_path(pod, "spec.containers")
	    ? json_object_get(json_array_get(obj_get_path(pod, "spec.containers"), 0), "image")
	    : NULL), "img:1");
	const json_t *ref = obj_controller_ref(pod);
	assert_string_equal(json_string_value(json_object_get(ref, "name")), "web-abc");
	assert_string_equal(json_string_value(json_object_get(ref, "apiVersion")), "apps/v1");
	json_decref(pod);
	/* A long name keeps 58 characters of the base, as Kubernetes does. */
	char longname[80];
	memset(longname, 'a', 70);
	longname[70] = 0;
	json_object_set_new(obj_metadata(rs), "name", json_string(longname));
	pod = rs_pod_from_template(rs);
	assert_int_equal(strlen(json_string_value(obj_get_path(pod, "metadata.generateName"))), 58);
	json_decref(pod);
	json_decref(rs);
}

static void
test_status_finish_replica_failure(void **state)
{
	(void)state;
	json_t *st = json_pack("{s:i}", "replicas", 1);
	rs_status_finish(st, "FailedCreate", "quota", NOW_MS);
	json_t *c = json_array_get(json_object_get(st, "conditions"), 0);
	assert_string_equal(json_string_value(json_object_get(c, "type")), "ReplicaFailure");
	assert_string_equal(json_string_value(json_object_get(c, "reason")), "FailedCreate");
	rs_status_finish(st, "FailedCreate", "other", NOW_MS);
	assert_int_equal(json_array_size(json_object_get(st, "conditions")), 1);
	rs_status_finish(st, NULL, NULL, NOW_MS);
	assert_null(json_object_get(st, "conditions"));
	json_decref(st);
}

/* ---- the work queue ---------------------------------------------------- */

struct wq_probe {
	struct ctrl_wq *q;
	json_t *seen;		/* array of keys in processing order */
	int fail_left;
	int64_t t0;
	int64_t when[8];
};

static int
wq_fn(void *arg, const char *key)
{
	struct wq_probe *p = arg;
	size_t n = json_array_size(p->seen);
	if (n < ARRAY_SIZE(p->when))
		p->when[n] = time_mono_ms() - p->t0;
	json_array_append_new(p->seen, json_string(key));
	if (strcmp(key, "flaky") == 0 && p->fail_left > 0) {
		p->fail_left--;
		return -1;
	}
	return 0;
}

static void
test_workqueue_dedup_delay_retry(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct wq_probe p = { .seen = json_array(), .fail_left = 2, .t0 = time_mono_ms() };
	p.q = ctrl_wq_new(&loop, wq_fn, &p);
	ctrl_wq_add(p.q, "a");
	ctrl_wq_add(p.q, "b");
	ctrl_wq_add(p.q, "a");
	assert_int_equal(ctrl_wq_len(p.q), 2);
	ctrl_wq_add_after(p.q, "later", 50);
	ctrl_wq_add_after(p.q, "later", 500);	/* the earliest wins */
	ctrl_wq_add(p.q, "flaky");
	/* Runs until nothing is queued or delayed. */
	int64_t deadline = time_mono_ms() + 3000;
	while ((ctrl_wq_len(p.q) || ctrl_wq_delayed(p.q)) && time_mono_ms() < deadline)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(json_array_size(p.seen), 6);
	assert_string_equal(json_string_value(json_array_get(p.seen, 0)), "a");
	assert_string_equal(json_string_value(json_array_get(p.seen, 1)), "b");
	assert_string_equal(json_string_value(json_array_get(p.seen, 2)), "flaky");
	int later_at = -1, flaky = 0;
	for (size_t i = 0; i < json_array_size(p.seen); i++) {
		const char *k = json_string_value(json_array_get(p.seen, i));
		if (strcmp(k, "later") == 0)
			later_at = (int)i;
		flaky += strcmp(k, "flaky") == 0;
	}
	assert_int_equal(flaky, 3);	/* two failures, then success */
	assert_true(later_at > 0);
	assert_true(p.when[later_at] >= 45 && p.when[later_at] < 400);
	ctrl_wq_free(p.q);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	json_decref(p.seen);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_creates_missing_pods),
		cmocka_unit_test(test_zero_counts_are_omitted_but_replicas),
		cmocka_unit_test(test_claims_adopt_release_ignore),
		cmocka_unit_test(test_rs_being_deleted_does_not_manage),
		cmocka_unit_test(test_deletion_order),
		cmocka_unit_test(test_scale_down_takes_the_first_ones),
		cmocka_unit_test(test_min_ready_seconds_and_requeue),
		cmocka_unit_test(test_pod_from_template),
		cmocka_unit_test(test_status_finish_replica_failure),
		cmocka_unit_test(test_workqueue_dedup_delay_retry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
