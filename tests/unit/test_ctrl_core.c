/* Unit tests of the controller core (ctrl_core.c) on a real store and API
 * server on a private loop: the one conflict policy of the executor (404 and
 * 409 outcomes, failures, the stop at the first write that does not
 * succeed), the after hook, the sync skeleton (watch -> queue -> decide),
 * asynchronous work for a decide (ctrl_queue_work) and staged controllers
 * (a Deployment's chain in one commit). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_env.h"
#include "ctrl.h"

struct env {
	struct api_env a;
	struct api *api;	/* a.api */
	struct ctrl *ctrl;
	struct ctrl *rs, *dc;	/* the real ReplicaSet and Deployment controllers */
	json_t *results;	/* [[name, error or null], ...] from the result hook */
	json_t *decided;	/* names decide was called for */
	int afters;		/* after hooks run by the last apply() */
	bool after_failed;	/* the last one was told of a failed write */
	char after_error[256];
	/* asynchronous work (ctrl_queue_work) */
	bool async;		/* decide of "a" queues a work until it has a result */
	int work_ms;		/* how long the work sleeps */
	int result;		/* what done recorded (0: none yet) */
	int dones, orphan_dones;	/* done calls with / without the controller */
	bool cancelled;
};

static struct env *E;

static void
pump(void)
{
	api_env_pump(&E->a);
}

static const struct kind *
cm_kind(void)
{
	return kind_find_gvk("v1", "ConfigMap");
}

static json_t *
cm(const char *name)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
	    "metadata", "name", name, "namespace", "default");
}

static json_t *
get_cm(const char *name)
{
	json_t *o = NULL;
	struct api_error err = { 0 };
	api_get(E->api, cm_kind(), "default", name, &o, &err);
	api_error_clear(&err);
	return o;
}

struct t_work {
	int ms;
	int value;		/* set on the thread pool */
};

static void
t_work_fn(void *arg)
{
	struct t_work *w = arg;
	usleep((useconds_t)w->ms * 1000);
	w->value = 42;
}

static void
t_work_done(struct ctrl *c, void *arg, int status)
{
	struct t_work *w = arg;
	if (c == NULL)
		E->orphan_dones++;
	else if (status == 0)
		E->result = w->value, E->dones++;
	free(w);
}

static void
t_work_cancel(void *arg)
{
	(void)arg;
	E->cancelled = true;
}

static int
t_decide(struct ctrl *c, const json_t *obj, int64_t now_ms, struct ctrl_writes *out)
{
	(void)now_ms;
	(void)out;
	const char *name = obj ? obj_name(obj) : "(gone)";
	if (E->async && !strcmp(name, "a") && E->result) {
		char *seen = xasprintf("a:%d", E->result);
		json_array_append_new(E->decided, json_string(seen));
		free(seen);
		return 0;
	}
	json_array_append_new(E->decided, json_string(name));
	if (E->async && !strcmp(name, "a") && ctrl_jobs(c) == 0) {
		struct t_work *w = xcalloc(1, sizeof *w);
		w->ms = E->work_ms;
		assert_int_equal(ctrl_queue_work(c, "default/a", t_work_fn, t_work_done,
		    t_work_cancel, w), 0);
	}
	return 0;
}

static void
t_result(struct ctrl *c, const json_t *obj, const struct ctrl_write *w, const json_t *made,
    const char *err)
{
	(void)c;
	(void)obj;
	const char *name = made ? obj_name(made) : obj_name(w->obj);
	json_array_append_new(E->results, json_pack("[s, s?]", name, err));
}

static void
t_after(struct ctrl *c, const json_t *obj, const struct ctrl_write *failed,
    struct ctrl_writes *out)
{
	(void)c;
	(void)obj;
	E->afters++;
	E->after_failed = failed != NULL;
	snprintf(E->after_error, sizeof E->after_error, "%s", out->error ? out->error : "");
}

static const struct ctrl_desc t_desc = {
	.name = "test", .component = "test-controller",
	.api_version = "v1", .kind = "ConfigMap", .res = "configmaps",
	.sources = { { "configmaps", NULL } },
	.decide = t_decide, .result = t_result, .after = t_after,
};

static int
setup(void **state)
{
	(void)state;
	E = calloc(1, sizeof *E);
	api_env_open(&E->a);
	E->api = E->a.api;
	struct api_error err = { 0 };
	assert_int_equal(api_create(E->api, cm_kind(), "default", cm("a"), 0, NULL, &err), 0);
	pump();
	E->results = json_array();
	E->decided = json_array();
	assert_int_equal(ctrl_start(E->api, &t_desc, NULL, &E->ctrl), 0);
	pump();
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	ctrl_stop(E->ctrl);
	ctrl_stop(E->dc);
	ctrl_stop(E->rs);
	api_env_close(&E->a);
	json_decref(E->results);
	json_decref(E->decided);
	free(E);
	return 0;
}

static const char *
result_err(size_t i)
{
	return json_string_value(json_array_get(json_array_get(E->results, i), 1));
}

static int
apply(struct ctrl_writes *w)
{
	json_t *primary = get_cm("a");
	E->afters = 0;
	int rc = ctrl_apply(E->ctrl, primary, w);
	int afters = E->afters;
	pump();		/* (syncs queued by the writes run their own after) */
	E->afters = afters;
	json_decref(primary);
	ctrl_writes_free(w);
	return rc;
}

/* Gone on delete / update, taken name on create: done, and the list goes
 * on; a taken generateName'd name is drawn again. */
static void
test_gone_and_existing_objects_are_done(void **state)
{
	(void)state;
	struct ctrl_writes w = { 0 };
	ctrl_writes_push(&w, CTRL_DELETE, cm_kind(), cm("never"), 0);
	ctrl_writes_push(&w, CTRL_UPDATE, cm_kind(), cm("missing"), 0);
	ctrl_writes_push(&w, CTRL_CREATE, cm_kind(), cm("a"), 0);
	json_t *gen = cm("");
	json_object_del(json_object_get(gen, "metadata"), "name");
	json_object_set_new(json_object_get(gen, "metadata"), "generateName",
	    json_string("g-"));
	ctrl_writes_push(&w, CTRL_CREATE, cm_kind(), gen, 0);
	ctrl_writes_event(&w, "Normal", "Tested", "all done");
	assert_int_equal(apply(&w), 0);
	assert_int_equal(json_array_size(E->results), 4);
	for (size_t i = 0; i < 4; i++)
		assert_null(result_err(i));
	const char *made = json_string_value(json_array_get(json_array_get(E->results, 3), 0));
	assert_true(strncmp(made, "g-", 2) == 0 && strlen(made) > 2);
	json_t *o = get_cm(made);
	assert_non_null(o);
	json_decref(o);
	assert_int_equal(E->afters, 1);
	assert_false(E->after_failed);
}

/* A precondition that no longer holds (409 Conflict): stop, no failure
 * reported, the sync is retried to decide again. */
static void
test_conflict_stops_the_list_and_redecides(void **state)
{
	(void)state;
	struct ctrl_writes w = { 0 };
	json_t *stale = cm("a");
	json_object_set_new(json_object_get(stale, "metadata"), "uid", json_string("not-its-uid"));
	ctrl_writes_push(&w, CTRL_DELETE, cm_kind(), stale, 0);
	ctrl_writes_push(&w, CTRL_CREATE, cm_kind(), cm("after"), 0);
	assert_int_equal(apply(&w), -EAGAIN);
	assert_int_equal(json_array_size(E->results), 0);
	json_t *a = get_cm("a"), *after = get_cm("after");
	assert_non_null(a);
	assert_null(after);
	json_decref(a);
	assert_int_equal(E->afters, 1);
	assert_true(E->after_failed);
}

/* Any other error: stop, report it (result, after), retry. */
static void
test_failure_is_reported_and_stops_the_list(void **state)
{
	(void)state;
	struct ctrl_writes w = { 0 };
	ctrl_writes_push(&w, CTRL_CREATE, cm_kind(), cm("Bad_Name"), 7);
	ctrl_writes_push(&w, CTRL_CREATE, cm_kind(), cm("after"), 0);
	assert_int_equal(apply(&w), -EAGAIN);
	assert_int_equal(json_array_size(E->results), 1);
	assert_non_null(result_err(0));
	assert_non_null(strstr(result_err(0), "Bad_Name"));
	assert_null(get_cm("after"));
	assert_int_equal(E->afters, 1);
	assert_non_null(strstr(E->after_error, "Bad_Name"));
}

/* The sync skeleton: every primary at start, then each one written. */
static void
test_watch_queues_and_decide_runs(void **state)
{
	(void)state;
	assert_string_equal(json_string_value(json_array_get(E->decided, 0)), "a");
	struct api_error err = { 0 };
	assert_int_equal(api_create(E->api, cm_kind(), "default", cm("b"), 0, NULL, &err), 0);
	pump();
	size_t n = json_array_size(E->decided);
	assert_true(n >= 2);
	assert_string_equal(json_string_value(json_array_get(E->decided, n - 1)), "b");
}

static bool
decided(const char *what)
{
	json_t *v;
	size_t i;
	json_array_foreach(E->decided, i, v)
		if (!strcmp(json_string_value(v), what))
			return true;
	return false;
}

/* Runs the loop until cond() or 10 s. */
static void
pump_until(bool (*cond)(void))
{
	for (int i = 0; i < 1000 && !cond(); i++) {
		pump();
		usleep(10000);
	}
}

static bool
saw_result(void)
{
	return decided("a:42");
}

/* A decide asks for work on the thread pool; its done hands the result
 * back on the loop and the core syncs the primary again, whose decide
 * sees it. */
static void
test_async_work_requeues_with_its_result(void **state)
{
	(void)state;
	E->async = true;
	E->work_ms = 20;
	ctrl_enqueue(E->ctrl, "default", "a");
	pump();
	assert_int_equal(ctrl_jobs(E->ctrl), 1);
	pump_until(saw_result);
	assert_true(saw_result());
	assert_int_equal(E->dones, 1);
	assert_int_equal(ctrl_jobs(E->ctrl), 0);
	assert_false(E->cancelled);
}

static bool
orphan_done(void)
{
	return E->orphan_dones > 0;
}

/* A work still running when the controller stops is cancelled; its done
 * comes later without the controller, only to free its argument. */
static void
test_stop_with_work_in_flight(void **state)
{
	(void)state;
	E->async = true;
	E->work_ms = 300;
	ctrl_enqueue(E->ctrl, "default", "a");
	pump();
	assert_int_equal(ctrl_jobs(E->ctrl), 1);
	ctrl_stop(E->ctrl);
	E->ctrl = NULL;
	assert_true(E->cancelled);
	pump_until(orphan_done);
	assert_int_equal(E->orphan_dones, 1);
	assert_int_equal(E->dones, 0);
}

/* Marks its primary "seen" (a write of the primary itself, as a status). */
static int
t_mark_decide(struct ctrl *c, const json_t *obj, int64_t now_ms, struct ctrl_writes *out)
{
	(void)c;
	(void)now_ms;
	json_array_append_new(E->decided, json_string(obj_name(obj)));
	if (!obj_get_path(obj, "data.seen")) {
		json_t *o = json_deep_copy(obj);
		json_object_set_new(o, "data", json_pack("{s:s}", "seen", "yes"));
		ctrl_writes_push(out, CTRL_UPDATE, cm_kind(), o, 0);
	}
	return 0;
}

static const struct ctrl_desc t_quiet_desc = {
	.name = "test", .component = "test-controller",
	.api_version = "v1", .kind = "ConfigMap", .res = "configmaps",
	.sources = { { .res = "configmaps", .staged = true } },
	.decide = t_mark_decide, .quiet_echo = true,
};

static size_t
decided_count(const char *what)
{
	json_t *v;
	size_t i, n = 0;
	json_array_foreach(E->decided, i, v)
		n += !strcmp(json_string_value(v), what);
	return n;
}

/* quiet_echo: the controller's own write of its primary comes back without
 * a sync; anyone else's write of it still syncs. */
static void
test_quiet_echo_skips_only_its_own_write(void **state)
{
	(void)state;
	ctrl_stop(E->ctrl);
	json_array_clear(E->decided);
	assert_int_equal(ctrl_start(E->api, &t_quiet_desc, NULL, &E->ctrl), 0);
	pump();
	assert_int_equal(decided_count("a"), 1);	/* wrote seen; its echo: nothing */
	json_t *o = get_cm("a");
	assert_non_null(o);
	json_object_set_new(json_object_get(o, "data"), "other", json_string("x"));
	struct api_error err = { 0 };
	assert_int_equal(api_update(E->api, cm_kind(), "default", o, false, 0, NULL, &err), 0);
	pump();
	assert_int_equal(decided_count("a"), 2);
}

static void
heard_fn(void *arg, enum store_event ev, const char *res, const json_t *obj, int64_t rv)
{
	(void)res;
	(void)rv;
	if (ev == STORE_ADDED && strcmp(obj_kind(obj), "Event") != 0)
		json_array_append_new(arg, json_string(obj_kind(obj)));
}

/* The Deployment and ReplicaSet controllers are staged: the Deployment's
 * ReplicaSet and its Pod are written before the Deployment's commit and
 * ride in it, so the one flush that makes the Deployment durable makes the
 * Pod durable too (before: three commits, each a loop turn and an fsync
 * apart), and a client's watch hears the three only after it, in order. */
static void
test_deployment_chain_commits_at_once(void **state)
{
	(void)state;
	struct store_watch *w = NULL;
	json_t *added = json_array(), *pods = NULL;
	assert_int_equal(ctrl_replicaset_start(E->api, &E->rs), 0);
	assert_int_equal(ctrl_deployment_start(E->api, &E->dc), 0);
	pump();
	assert_int_equal(store_watch_start(E->a.st, NULL, NULL, 0, heard_fn, added, &w), 0);
	api_env_create(&E->a, json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:i, s:{s:{s:s}},"
	    " s:{s:{s:{s:s}}, s:{s:[{s:s, s:s}]}}}}", "apiVersion", "apps/v1",
	    "kind", "Deployment", "metadata", "name", "web", "namespace", "default",
	    "spec", "replicas", 1, "selector", "matchLabels", "app", "web",
	    "template", "metadata", "labels", "app", "web",
	    "spec", "containers", "name", "c", "image", "img:1"));
	assert_int_equal(json_array_size(added), 0);
	api_flush(E->api);
	assert_false(store_dirty(E->a.st));
	assert_int_equal(store_list(E->a.st, "pods", "default", &pods, NULL), 0);
	assert_int_equal(json_array_size(pods), 1);
	assert_int_equal(json_array_size(added), 3);
	assert_string_equal(json_string_value(json_array_get(added, 0)), "Deployment");
	assert_string_equal(json_string_value(json_array_get(added, 1)), "ReplicaSet");
	assert_string_equal(json_string_value(json_array_get(added, 2)), "Pod");
	store_watch_stop(w);
	json_decref(pods);
	json_decref(added);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gone_and_existing_objects_are_done, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_conflict_stops_the_list_and_redecides, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_failure_is_reported_and_stops_the_list, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watch_queues_and_decide_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_work_requeues_with_its_result, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_stop_with_work_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deployment_chain_commits_at_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_quiet_echo_skips_only_its_own_write, setup,
		    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
