/* Unit tests of the Deployment controller's decision (deploy_decide): a
 * small simulated world applies its writes, plays the ReplicaSet controller
 * and the kubelet, and checks Kubernetes' guarantees after every write. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrl.h"

#define NOW_S 1800000000LL

static json_t *
ts(int64_t s)
{
	char b[32];
	time_format_rfc3339((time_t)s, b);
	return json_string(b);
}

static json_t *
make_deploy(int replicas, json_t *surge, json_t *unavail, bool recreate)
{
	json_t *d = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:i, s:o},"
	    " s:{s:i, s:i, s:i, s:i, s:{s:{s:s}}, s:{s:{s:{s:s}}, s:{s:[{s:s, s:s}]}}}}",
	    "apiVersion", "apps/v1", "kind", "Deployment",
	    "metadata", "name", "web", "namespace", "default", "uid", "d-uid", "generation", 1,
	    "creationTimestamp", ts(NOW_S - 1000),
	    "spec", "replicas", replicas, "minReadySeconds", 0, "revisionHistoryLimit", 10,
	    "progressDeadlineSeconds", 600, "selector", "matchLabels", "app", "web",
	    "template", "metadata", "labels", "app", "web",
	    "spec", "containers", "name", "c", "image", "img:1");
	json_t *strategy = recreate ? json_pack("{s:s}", "type", "Recreate") :
	    json_pack("{s:s, s:{s:o, s:o}}", "type", "RollingUpdate", "rollingUpdate",
	    "maxSurge", surge, "maxUnavailable", unavail);
	if (recreate) {
		json_decref(surge);
		json_decref(unavail);
	}
	json_object_set_new(json_object_get(d, "spec"), "strategy", strategy);
	return d;
}

/* ---- the simulated world ------------------------------------------------ */

struct world {
	json_t *d, *rses, *pods, *events;
	int64_t now_ms;
	int next_uid;
	int surge, unavail;	/* the bounds to check; -1: do not check */
	bool never_ready;	/* pods of the current template never get ready */
	bool rolling;		/* a rollout from a complete state: check bounds */
	struct deploy_actions last;
};

static void
world_init(struct world *w, json_t *d)
{
	memset(w, 0, sizeof *w);
	w->d = d;
	w->rses = json_array();
	w->pods = json_array();
	w->events = json_array();
	w->now_ms = NOW_S * 1000;
	deploy_fenceposts(d, &w->surge, &w->unavail);
	if (strcmp(json_string_value(obj_get_path(d, "spec.strategy.type")), "Recreate") == 0)
		w->surge = w->unavail = -1;
}

static void
world_free(struct world *w)
{
	json_decref(w->d);
	json_decref(w->rses);
	json_decref(w->pods);
	json_decref(w->events);
	deploy_actions_free(&w->last);
}

static int
want(const struct world *w)
{
	return (int)json_integer_value(obj_get_path(w->d, "spec.replicas"));
}

static int
iat(const json_t *o, const char *path)
{
	return (int)json_integer_value(obj_get_path(o, path));
}

static json_t *
find_rs(struct world *w, const char *name, size_t *idx)
{
	size_t i;
	json_t *rs;
	json_array_foreach(w->rses, i, rs)
		if (strcmp(obj_name(rs), name) == 0) {
			if (idx)
				*idx = i;
			return rs;
		}
	return NULL;
}

static bool
is_current(const struct world *w, const json_t *rs)
{
	return json_equal(obj_get_path(rs, "spec.template.spec"),
	    obj_get_path(w->d, "spec.template.spec"));
}

/* The guarantees of a rolling update, at every moment. */
static void
check_bounds(struct world *w)
{
	if (w->surge < 0 || !w->rolling)
		return;
	int total = 0, avail = 0;
	size_t i;
	json_t *rs;
	json_array_foreach(w->rses, i, rs) {
		int spec = iat(rs, "spec.replicas"), a = iat(rs, "status.availableReplicas");
		total += spec;
		avail += a < spec ? a : spec;
	}
	if (total > want(w) + w->surge)
		fail_msg("surge: %d replicas > %d + %d", total, want(w), w->surge);
	if (avail < want(w) - w->unavail)
		fail_msg("availability: %d available < %d - %d", avail, want(w), w->unavail);
}

static void
apply(struct world *w, const struct deploy_actions *a)
{
	for (size_t i = 0; i < a->n; i++) {
		const struct deploy_action *act = &a->v[i];
		json_t *o = act->obj, *cur;
		size_t idx;
		switch (act->op) {
		case DEPLOY_CREATE_RS: {
			json_t *rs = json_deep_copy(o);
			char uid[32];
			snprintf(uid, sizeof uid, "rs-%d", ++w->next_uid);
			json_object_set_new(obj_metadata(rs), "uid", json_string(uid));
			json_object_set_new(obj_metadata(rs), "creationTimestamp",
			    ts(w->now_ms / 1000 + w->next_uid));
			json_object_set_new(obj_metadata(rs), "generation", json_integer(1));
			json_object_set_new(rs, "status", json_pack("{s:i}", "replicas", 0));
			assert_null(find_rs(w, obj_name(rs), NULL));
			json_array_append_new(w->rses, rs);
			break;
		}
		case DEPLOY_UPDATE_RS:
			cur = find_rs(w, obj_name(o), &idx);
			assert_non_null(cur);
			json_t *rs = json_deep_copy(o);
			json_object_set(rs, "status", json_object_get(cur, "status"));
			json_object_set(obj_metadata(rs), "uid", obj_get_path(cur, "metadata.uid"));
			json_object_set(obj_metadata(rs), "creationTimestamp",
			    obj_get_path(cur, "metadata.creationTimestamp"));
			int gen = iat(cur, "metadata.generation");
			if (!json_equal(json_object_get(cur, "spec"), json_object_get(o, "spec")))
				gen++;
			json_object_set_new(obj_metadata(rs), "generation", json_integer(gen));
			json_object_clear(cur);	/* in place: tests hold pointers */
			json_object_update(cur, rs);
			json_decref(rs);
			break;
		case DEPLOY_DELETE_RS:
			assert_non_null(find_rs(w, obj_name(o), &idx));
			json_array_remove(w->rses, idx);
			break;
		case DEPLOY_UPDATE_META:
			json_object_set(obj_metadata(w->d), "annotations",
			    obj_get_path(o, "metadata.annotations"));
			break;
		case DEPLOY_UPDATE_STATUS:
			json_object_set_new(w->d, "status", json_deep_copy(json_object_get(o, "status")));
			break;
		case DEPLOY_EVENT:
			json_array_append_new(w->events, json_string(act->message));
			break;
		}
		check_bounds(w);
	}
}

/* The ReplicaSet controller and the kubelet: pods follow spec.replicas;
 * new pods become available `rate` per step, unless never_ready. */
static void
kubelet(struct world *w, int rate)
{
	size_t i;
	json_t *rs;
	json_array_foreach(w->rses, i, rs) {
		int spec = iat(rs, "spec.replicas"), a = iat(rs, "status.availableReplicas");
		if (a > spec)
			a = spec;
		else if (!(w->never_ready && is_current(w, rs)))
			a = a + rate < spec ? a + rate : spec;
		json_t *st = json_pack("{s:i, s:i}", "replicas", spec,
		    "observedGeneration", iat(rs, "metadata.generation"));
		if (a) {
			json_object_set_new(st, "readyReplicas", json_integer(a));
			json_object_set_new(st, "availableReplicas", json_integer(a));
		}
		json_object_set_new(rs, "status", st);
	}
	check_bounds(w);
}

static void
step(struct world *w, int rate)
{
	deploy_actions_free(&w->last);
	assert_int_equal(deploy_decide(w->d, w->rses, w->pods, w->now_ms, &w->last), 0);
	apply(w, &w->last);
	kubelet(w, rate);
	w->now_ms += 1000;
}

static const json_t *
cond(const struct world *w, const char *type)
{
	size_t i;
	json_t *c;
	json_array_foreach(obj_get_path(w->d, "status.conditions"), i, c)
		if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0)
			return c;
	return NULL;
}

static const char *
cond_reason(const struct world *w, const char *type)
{
	const json_t *c = cond(w, type);
	return c ? json_string_value(json_object_get(c, "reason")) : "";
}

static bool
complete(const struct world *w)
{
	return iat(w->d, "status.observedGeneration") == iat(w->d, "metadata.generation") &&
	    iat(w->d, "status.updatedReplicas") == want(w) &&
	    iat(w->d, "status.availableReplicas") == want(w) &&
	    iat(w->d, "status.replicas") == want(w) &&
	    strcmp(cond_reason(w, "Progressing"), "NewReplicaSetAvailable") == 0;
}

static int
run_to_complete(struct world *w, int rate, int max_steps)
{
	for (int n = 1; n <= max_steps; n++) {
		step(w, rate);
		if (complete(w))
			return n;
	}
	fail_msg("rollout did not complete in %d steps", max_steps);
	return -1;
}

static void
set_image(struct world *w, const char *image)
{
	json_t *c = json_array_get(obj_get_path(w->d, "spec.template.spec.containers"), 0);
	json_object_set_new(c, "image", json_string(image));
	w->rolling = true;
	json_object_set_new(obj_metadata(w->d), "generation",
	    json_integer(iat(w->d, "metadata.generation") + 1));
}

static void
set_spec_int(struct world *w, const char *key, int v)
{
	json_object_set_new(json_object_get(w->d, "spec"), key, json_integer(v));
	json_object_set_new(obj_metadata(w->d), "generation",
	    json_integer(iat(w->d, "metadata.generation") + 1));
}

static int
count_ops(const struct deploy_actions *a, enum deploy_op op)
{
	int n = 0;
	for (size_t i = 0; i < a->n; i++)
		n += a->v[i].op == op;
	return n;
}

static bool
has_event(const struct world *w, const char *prefix)
{
	size_t i;
	json_t *e;
	json_array_foreach(w->events, i, e)
		if (str_has_prefix(json_string_value(e), prefix))
			return true;
	return false;
}

static const char *
ann(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(obj_get_path(o, "metadata.annotations"),
	    key));
	return s ? s : "";
}

/* ---- tests -------------------------------------------------------------- */

static void
test_fenceposts(void **state)
{
	(void)state;
	static const struct {
		int replicas;
		const char *surge, *unavail;	/* "N" or "N%" */
		int want_surge, want_unavail;
	} t[] = {
		{ 10, "25%", "25%", 3, 2 },
		{ 4, "25%", "25%", 1, 1 },
		{ 3, "25%", "25%", 1, 0 },
		{ 1, "25%", "25%", 1, 0 },
		{ 10, "2", "1", 2, 1 },
		{ 3, "0", "10%", 0, 1 },	/* both resolve to 0: unavailable 1 */
		{ 5, "0%", "0%", 0, 1 },
		{ 10, "100%", "0", 10, 0 },
		{ 7, "30%", "30%", 3, 2 },
		{ 0, "25%", "25%", 0, 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		json_t *s = strchr(t[i].surge, '%') ? json_string(t[i].surge) :
		    json_integer(atoi(t[i].surge));
		json_t *u = strchr(t[i].unavail, '%') ? json_string(t[i].unavail) :
		    json_integer(atoi(t[i].unavail));
		json_t *d = make_deploy(t[i].replicas, s, u, false);
		int gs, gu;
		deploy_fenceposts(d, &gs, &gu);
		if (gs != t[i].want_surge || gu != t[i].want_unavail)
			fail_msg("case %zu: got %d/%d want %d/%d", i, gs, gu, t[i].want_surge,
			    t[i].want_unavail);
		json_decref(d);
	}
}

static void
test_template_hash(void **state)
{
	(void)state;
	json_t *d = make_deploy(1, json_string("25%"), json_string("25%"), false);
	const json_t *t = obj_get_path(d, "spec.template");
	char a[16], b[16], c[16];
	deploy_template_hash(t, -1, a);
	deploy_template_hash(t, -1, b);
	deploy_template_hash(t, 1, c);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_true(strlen(a) >= 1 && strlen(a) <= 10);
	assert_int_equal(strspn(a, "bcdfghjklmnpqrstvwxz2456789"), strlen(a));
	json_decref(d);
}

static void
test_first_sync_creates_replicaset(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_deploy(3, json_string("25%"), json_string("25%"), false));
	step(&w, 0);
	const struct deploy_actions *a = &w.last;
	assert_true(a->n >= 3);
	assert_int_equal(a->v[0].op, DEPLOY_CREATE_RS);
	const json_t *rs = a->v[0].obj;
	char hash[16], name[64];
	deploy_template_hash(obj_get_path(w.d, "spec.template"), -1, hash);
	snprintf(name, sizeof name, "web-%s", hash);
	assert_string_equal(obj_name(rs), name);
	assert_string_equal(json_string_value(obj_get_path(rs, "metadata.labels.pod-template-hash")), hash);
	assert_string_equal(json_string_value(obj_get_path(rs,
	    "spec.selector.matchLabels.pod-template-hash")), hash);
	assert_string_equal(json_string_value(obj_get_path(rs,
	    "spec.template.metadata.labels.pod-template-hash")), hash);
	assert_int_equal(iat(rs, "spec.replicas"), 3);
	assert_string_equal(ann(rs, "deployment.kubernetes.io/revision"), "1");
	assert_string_equal(ann(rs, "deployment.kubernetes.io/desired-replicas"), "3");
	assert_string_equal(ann(rs, "deployment.kubernetes.io/max-replicas"), "4");
	const json_t *ref = obj_controller_ref(rs);
	assert_string_equal(json_string_value(json_object_get(ref, "kind")), "Deployment");
	assert_string_equal(json_string_value(json_object_get(ref, "uid")), "d-uid");
	assert_int_equal(a->v[1].op, DEPLOY_EVENT);
	assert_string_equal(a->v[1].reason, "ScalingReplicaSet");
	char msg[128];
	snprintf(msg, sizeof msg, "Scaled up replica set %s to 3", name);
	assert_string_equal(a->v[1].message, msg);
	assert_string_equal(ann(w.d, "deployment.kubernetes.io/revision"), "1");
	assert_string_equal(cond_reason(&w, "Progressing"), "NewReplicaSetCreated");
	assert_string_equal(cond_reason(&w, "Available"), "MinimumReplicasUnavailable");
	assert_int_equal(iat(w.d, "status.observedGeneration"), 1);
	/* Pods come up: Available, then complete. */
	run_to_complete(&w, 3, 5);
	assert_string_equal(json_string_value(json_object_get(cond(&w, "Available"), "status")),
	    "True");
	assert_int_equal(iat(w.d, "status.readyReplicas"), 3);
	assert_null(obj_get_path(w.d, "status.unavailableReplicas"));
	world_free(&w);
}

static void
test_idle_sync_writes_nothing(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_deploy(3, json_string("25%"), json_string("25%"), false));
	run_to_complete(&w, 3, 5);
	step(&w, 0);
	step(&w, 0);
	assert_int_equal(w.last.n, 0);
	assert_int_equal(w.last.requeue_ms, 0);
	assert_false(w.last.retry);
	world_free(&w);
}

/* Every rollout, for a table of sizes and bounds, keeps total replicas
 * <= replicas + maxSurge and available >= replicas - maxUnavailable after
 * every single write, and ends with the old ReplicaSet at 0. */
static void
test_rolling_update_bounds(void **state)
{
	(void)state;
	static const struct {
		int replicas;
		const char *surge, *unavail;
		int rate;
	} t[] = {
		{ 3, "25%", "25%", 1 }, { 10, "25%", "25%", 1 }, { 10, "3", "2", 2 },
		{ 5, "0", "1", 1 }, { 5, "1", "0", 1 }, { 1, "25%", "25%", 1 },
		{ 4, "50%", "50%", 3 }, { 10, "100%", "0", 4 }, { 7, "0", "100%", 2 },
		{ 6, "2", "3", 1 }, { 9, "10%", "10%", 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		json_t *s = strchr(t[i].surge, '%') ? json_string(t[i].surge) :
		    json_integer(atoi(t[i].surge));
		json_t *u = strchr(t[i].unavail, '%') ? json_string(t[i].unavail) :
		    json_integer(atoi(t[i].unavail));
		struct world w;
		world_init(&w, make_deploy(t[i].replicas, s, u, false));
		run_to_complete(&w, t[i].replicas, 5);
		set_image(&w, "img:2");
		run_to_complete(&w, t[i].rate, 200);
		assert_int_equal(json_array_size(w.rses), 2);
		size_t j;
		json_t *rs;
		json_array_foreach(w.rses, j, rs) {
			bool cur = is_current(&w, rs);
			assert_int_equal(iat(rs, "spec.replicas"), cur ? t[i].replicas : 0);
			assert_string_equal(ann(rs, "deployment.kubernetes.io/revision"),
			    cur ? "2" : "1");
		}
		assert_string_equal(ann(w.d, "deployment.kubernetes.io/revision"), "2");
		assert_true(has_event(&w, "Scaled down replica set web-"));
		assert_int_equal(iat(w.d, "status.observedGeneration"), 2);
		world_free(&w);
	}
}

/* Kubernetes' reconcileNewReplicaSet examples. */
static void
test_reconcile_new_replicaset(void **state)
{
	(void)state;
	static const struct {
		int replicas, surge, old, new_, want;	/* want -1: no scaling */
	} t[] = {
		{ 10, 0, 10, 0, -1 }, { 10, 2, 10, 0, 2 }, { 10, 2, 5, 0, 7 },
		{ 10, 2, 10, 2, -1 }, { 2, 2, 2, 3, 2 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct world w;
		world_init(&w, make_deploy(t[i].replicas, json_integer(t[i].surge),
		    json_integer(t[i].surge ? 0 : 1), false));
		w.surge = -1;
		run_to_complete(&w, 100, 3);	/* old RS, revision 1 */
		set_image(&w, "img:2");
		json_t *old = json_array_get(w.rses, 0);
		json_object_set_new(json_object_get(old, "spec"), "replicas", json_integer(t[i].old));
		kubelet(&w, 100);
		step(&w, 0);	/* creates the new RS */
		json_t *nrs = NULL;
		size_t j;
		json_t *rs;
		json_array_foreach(w.rses, j, rs)
			if (is_current(&w, rs))
				nrs = rs;
		assert_non_null(nrs);
		json_object_set_new(json_object_get(nrs, "spec"), "replicas", json_integer(t[i].new_));
		json_object_set_new(json_object_get(old, "spec"), "replicas", json_integer(t[i].old));
		kubelet(&w, 0);
		deploy_actions_free(&w.last);
		assert_int_equal(deploy_decide(w.d, w.rses, NULL, w.now_ms, &w.last), 0);
		int got = -1;
		for (size_t k = 0; k < w.last.n; k++)
			if (w.last.v[k].op == DEPLOY_UPDATE_RS &&
			    strcmp(obj_name(w.last.v[k].obj), obj_name(nrs)) == 0 &&
			    iat(w.last.v[k].obj, "spec.replicas") != t[i].new_)
				got = iat(w.last.v[k].obj, "spec.replicas");
		if (got != t[i].want)
			fail_msg("case %zu: new RS scaled to %d, want %d", i, got, t[i].want);
		world_free(&w);
	}
}

/* reconcileOldReplicaSets with cleanupUnhealthyReplicas, by hand:
 * replicas 10, maxSurge 0, maxUnavailable 2. */
static void
test_reconcile_old_replicasets(void **state)
{
	(void)state;
	static const struct {
		int old, old_avail, new_, new_avail, want_old;	/* -1: untouched */
	} t[] = {
		{ 10, 10, 0, 0, 8 },	/* 2 may go */
		{ 10, 8, 0, 0, 8 },	/* the 2 unhealthy go first, nothing more */
		{ 10, 9, 0, 0, 8 },	/* 1 unhealthy + 1 healthy */
		{ 8, 8, 2, 0, -1 },	/* new ones not available yet: wait */
		{ 8, 8, 2, 2, 6 },
		{ 8, 5, 2, 2, 6 },	/* 2 of the 3 unhealthy go (maxScaledDown 2) */
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct world w;
		world_init(&w, make_deploy(10, json_integer(0), json_integer(2), false));
		w.surge = -1;
		run_to_complete(&w, 100, 3);
		set_image(&w, "img:2");
		step(&w, 0);	/* creates the new RS (at 0: no surge) */
		json_t *old = NULL, *nrs = NULL, *rs;
		size_t j;
		json_array_foreach(w.rses, j, rs)
			*(is_current(&w, rs) ? &nrs : &old) = rs;
		assert_non_null(nrs);
		json_object_set_new(json_object_get(old, "spec"), "replicas", json_integer(t[i].old));
		json_object_set_new(json_object_get(nrs, "spec"), "replicas", json_integer(t[i].new_));
		json_t *st[2] = { json_object_get(old, "status"), json_object_get(nrs, "status") };
		int av[2] = { t[i].old_avail, t[i].new_avail }, sp[2] = { t[i].old, t[i].new_ };
		for (int k = 0; k < 2; k++) {
			json_object_set_new(st[k], "replicas", json_integer(sp[k]));
			json_object_set_new(st[k], "availableReplicas", json_integer(av[k]));
		}
		deploy_actions_free(&w.last);
		assert_int_equal(deploy_decide(w.d, w.rses, NULL, w.now_ms, &w.last), 0);
		int got = -1;
		for (size_t k = 0; k < w.last.n; k++)
			if (w.last.v[k].op == DEPLOY_UPDATE_RS &&
			    strcmp(obj_name(w.last.v[k].obj), obj_name(old)) == 0)
				got = iat(w.last.v[k].obj, "spec.replicas");
		if (got != t[i].want_old)
			fail_msg("case %zu: old RS scaled to %d, want %d", i, got, t[i].want_old);
		world_free(&w);
	}
}

static void
test_recreate_waits_for_old_pods(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_deploy(3, NULL, NULL, true));
	run_to_complete(&w, 3, 4);
	json_t *old = json_array_get(w.rses, 0);
	set_image(&w, "img:2");
	/* 1: the old RS goes to 0, nothing new yet. */
	deploy_actions_free(&w.last);
	assert_int_equal(deploy_decide(w.d, w.rses, w.pods, w.now_ms, &w.last), 0);
	apply(&w, &w.last);
	assert_int_equal(count_ops(&w.last, DEPLOY_CREATE_RS), 0);
	assert_int_equal(iat(old, "spec.replicas"), 0);
	/* 2: its status still counts 3 pods: wait. */
	deploy_actions_free(&w.last);
	assert_int_equal(deploy_decide(w.d, w.rses, w.pods, w.now_ms, &w.last), 0);
	assert_int_equal(count_ops(&w.last, DEPLOY_CREATE_RS), 0);
	/* 3: status says 0, but a terminating pod of the old RS still runs. */
	json_object_set_new(old, "status", json_pack("{s:i, s:i}", "replicas", 0,
	    "observedGeneration", 2));
	json_array_append_new(w.pods, json_pack("{s:{s:s, s:s, s:{s:s, s:s}, s:o,"
	    " s:[{s:s, s:s, s:s, s:s, s:b}]}, s:{s:s}}",
	    "metadata", "name", "old-pod", "namespace", "default",
	    "labels", "app", "web", "pod-template-hash", "x", "deletionTimestamp", ts(NOW_S),
	    "ownerReferences", "apiVersion", "apps/v1", "kind", "ReplicaSet", "name",
	    obj_name(old), "uid", obj_uid(old), "controller", 1, "status", "phase", "Running"));
	deploy_actions_free(&w.last);
	assert_int_equal(deploy_decide(w.d, w.rses, w.pods, w.now_ms, &w.last), 0);
	assert_int_equal(count_ops(&w.last, DEPLOY_CREATE_RS), 0);
	/* 4: the pod is gone: the new RS is created at full size at once. */
	json_array_clear(w.pods);
	deploy_actions_free(&w.last);
	assert_int_equal(deploy_decide(w.d, w.rses, w.pods, w.now_ms, &w.last), 0);
	assert_int_equal(count_ops(&w.last, DEPLOY_CREATE_RS), 1);
	assert_int_equal(iat(w.last.v[0].obj, "spec.replicas"), 3);
	apply(&w, &w.last);
	kubelet(&w, 3);
	run_to_complete(&w, 3, 3);
	assert_string_equal(ann(w.d, "deployment.kubernetes.io/revision"), "2");
	world_free(&w);
}

static void
test_paused_scales_but_does_not_roll(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_deploy(3, json_string("25%"), json_string("25%"), false));
	run_to_complete(&w, 3, 4);
	json_object_set_new(json_object_get(w.d, "spec"), "paused", json_true());
	set_image(&w, "img:2");
	step(&w, 1);
	assert_int_equal(count_ops(&w.last, DEPLOY_CREATE_RS), 0);
	assert_string_equal(cond_reason(&w, "Progressing"), "DeploymentPaused");
	assert_string_equal(json_string_value(json_object_get(cond(&w, "Progressing"), "status")),
	    "Unknown");
	w.surge = -1;	/* bounds are for the scaled size from here on */
	set_spec_int(&w, "replicas", 5);
	step(&w, 5);
	assert_int_equal(count_ops(&w.last, DEPLOY_CREATE_RS), 0);
	assert_int_equal(json_array_size(w.rses), 1);
	assert_int_equal(iat(json_array_get(w.rses, 0), "spec.replicas"), 5);
	assert_true(has_event(&w, "Scaled up replica set web-"));
	char msg[128];
	snprintf(msg, sizeof msg, "Scaled up replica set %s to 5 from 3",
	    obj_name(json_array_get(w.rses, 0)));
	assert_true(has_event(&w, msg));
	/* Resume: the rollout happens. */
	json_object_set_new(json_object_get(w.d, "spec"), "paused", json_false());
	step(&w, 1);
	assert_int_equal(count_ops(&w.last, DEPLOY_CREATE_RS), 1);
	run_to_complete(&w, 2, 50);
	world_free(&w);
}

static void
test_revision_history_limit(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_deploy(2, json_string("25%"), json_string("25%"), false));
	set_spec_int(&w, "revisionHistoryLimit", 2);
	run_to_complete(&w, 2, 4);
	const char *images[] = { "img:2", "img:3", "img:4", "img:5" };
	for (size_t i = 0; i < ARRAY_SIZE(images); i++) {
		set_image(&w, images[i]);
		run_to_complete(&w, 2, 40);
		step(&w, 2);
	}
	assert_int_equal(json_array_size(w.rses), 3);
	size_t j;
	json_t *rs;
	json_array_foreach(w.rses, j, rs) {
		long rev = atol(ann(rs, "deployment.kubernetes.io/revision"));
		assert_true(rev >= 3);	/* the oldest went first */
	}
	world_free(&w);
}

static void
test_progress_deadline_exceeded(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_deploy(2, json_integer(1), json_integer(0), false));
	set_spec_int(&w, "progressDeadlineSeconds", 10);
	run_to_complete(&w, 2, 4);
	w.never_ready = true;
	set_image(&w, "img:2");
	step(&w, 1);
	assert_string_equal(cond_reason(&w, "Progressing"), "NewReplicaSetCreated");
	/* No progress: the next sync waits for the deadline with a timer. */
	step(&w, 1);
	step(&w, 1);
	assert_true(w.last.requeue_ms > 1000 && w.last.requeue_ms <= 11000);
	w.now_ms += 20000;
	step(&w, 1);
	assert_string_equal(cond_reason(&w, "Progressing"), "ProgressDeadlineExceeded");
	assert_string_equal(json_string_value(json_object_get(cond(&w, "Progressing"), "status")),
	    "False");
	assert_true(has_event(&w, "Deployment \"web\" has timed out progressing."));
	/* The old pods stay: availability was never given up. */
	assert_int_equal(iat(w.d, "status.availableReplicas"), 2);
	step(&w, 1);
	assert_int_equal(w.last.n, 0);
	assert_int_equal(w.last.requeue_ms, 0);
	world_free(&w);
}

static void
test_rollback_reuses_replicaset(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_deploy(2, json_string("25%"), json_string("25%"), false));
	run_to_complete(&w, 2, 4);
	char first[64];
	snprintf(first, sizeof first, "%s", obj_name(json_array_get(w.rses, 0)));
	set_image(&w, "img:2");
	run_to_complete(&w, 2, 30);
	set_image(&w, "img:1");
	int creates = 0;
	for (int n = 0; n < 30; n++) {
		step(&w, 2);
		creates += count_ops(&w.last, DEPLOY_CREATE_RS);
		if (complete(&w))
			break;
	}
	assert_true(complete(&w));
	assert_int_equal(creates, 0);
	json_t *rs = find_rs(&w, first, NULL);
	assert_non_null(rs);
	assert_int_equal(iat(rs, "spec.replicas"), 2);
	assert_string_equal(ann(rs, "deployment.kubernetes.io/revision"), "3");
	assert_string_equal(ann(rs, "deployment.kubernetes.io/revision-history"), "1");
	assert_string_equal(ann(w.d, "deployment.kubernetes.io/revision"), "3");
	world_free(&w);
}

/* kubectl rollout undo sends the old ReplicaSet's template back as Go
 * encodes it: resources {} and creationTimestamp null. That is still the
 * old revision: no new ReplicaSet, the same hash. */
static void
test_undo_template_with_go_zero_values_reuses_replicaset(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_deploy(2, json_string("25%"), json_string("25%"), false));
	run_to_complete(&w, 2, 4);
	char first[64], h1[16], h2[16];
	snprintf(first, sizeof first, "%s", obj_name(json_array_get(w.rses, 0)));
	deploy_template_hash(obj_get_path(w.d, "spec.template"), -1, h1);
	set_image(&w, "img:2");
	run_to_complete(&w, 2, 30);
	set_image(&w, "img:1");
	json_t *tmpl = obj_get_path(w.d, "spec.template");
	json_object_set_new(json_array_get(obj_get_path(tmpl, "spec.containers"), 0),
	    "resources", json_object());
	json_object_set_new(json_object_get(tmpl, "metadata"), "creationTimestamp", json_null());
	deploy_template_hash(tmpl, -1, h2);
	assert_string_equal(h1, h2);
	int creates = 0;
	for (int n = 0; n < 30 && !complete(&w); n++) {
		step(&w, 2);
		creates += count_ops(&w.last, DEPLOY_CREATE_RS);
	}
	assert_true(complete(&w));
	assert_int_equal(creates, 0);
	json_t *rs = find_rs(&w, first, NULL);
	assert_non_null(rs);
	assert_int_equal(iat(rs, "spec.replicas"), 2);
	assert_string_equal(ann(w.d, "deployment.kubernetes.io/revision"), "3");
	world_free(&w);
}

/* The documented example: 10 replicas, maxSurge 3, maxUnavailable 2, a
 * rollout at old 8 / new 5 scaled to 15 gives 3 more to old, 2 to new. */
static void
test_proportional_scaling(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_deploy(10, json_integer(3), json_integer(2), false));
	w.surge = -1;
	run_to_complete(&w, 10, 3);
	set_image(&w, "img:2");
	step(&w, 0);
	json_t *old = NULL, *nrs = NULL, *rs;
	size_t j;
	json_array_foreach(w.rses, j, rs)
		*(is_current(&w, rs) ? &nrs : &old) = rs;
	assert_non_null(nrs);
	json_object_set_new(json_object_get(old, "spec"), "replicas", json_integer(8));
	json_object_set_new(json_object_get(nrs, "spec"), "replicas", json_integer(5));
	kubelet(&w, 0);
	set_spec_int(&w, "replicas", 15);
	deploy_actions_free(&w.last);
	assert_int_equal(deploy_decide(w.d, w.rses, NULL, w.now_ms, &w.last), 0);
	apply(&w, &w.last);
	assert_int_equal(iat(old, "spec.replicas"), 11);
	assert_int_equal(iat(nrs, "spec.replicas"), 7);
	assert_string_equal(ann(old, "deployment.kubernetes.io/desired-replicas"), "15");
	assert_string_equal(ann(nrs, "deployment.kubernetes.io/max-replicas"), "18");
	world_free(&w);
}

static void
test_adopts_orphan_replicaset(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, make_deploy(2, json_string("25%"), json_string("25%"), false));
	run_to_complete(&w, 2, 4);
	json_t *rs = json_array_get(w.rses, 0);
	json_object_del(obj_metadata(rs), "ownerReferences");
	step(&w, 0);
	assert_int_equal(count_ops(&w.last, DEPLOY_CREATE_RS), 0);
	assert_true(count_ops(&w.last, DEPLOY_UPDATE_RS) >= 1);
	const json_t *ref = obj_controller_ref(json_array_get(w.rses, 0));
	assert_non_null(ref);
	assert_string_equal(json_string_value(json_object_get(ref, "uid")), "d-uid");
	world_free(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fenceposts),
		cmocka_unit_test(test_template_hash),
		cmocka_unit_test(test_first_sync_creates_replicaset),
		cmocka_unit_test(test_idle_sync_writes_nothing),
		cmocka_unit_test(test_rolling_update_bounds),
		cmocka_unit_test(test_reconcile_new_replicaset),
		cmocka_unit_test(test_reconcile_old_replicasets),
		cmocka_unit_test(test_recreate_waits_for_old_pods),
		cmocka_unit_test(test_paused_scales_but_does_not_roll),
		cmocka_unit_test(test_revision_history_limit),
		cmocka_unit_test(test_progress_deadline_exceeded),
		cmocka_unit_test(test_rollback_reuses_replicaset),
		cmocka_unit_test(test_undo_template_with_go_zero_values_reuses_replicaset),
		cmocka_unit_test(test_proportional_scaling),
		cmocka_unit_test(test_adopts_orphan_replicaset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
