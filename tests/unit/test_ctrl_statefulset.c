/* Unit tests of the StatefulSet controller's decision (sts_decide): a small
 * in-memory world applies the actions of each sync (pods, claims, revisions,
 * status) so that each test reads as the behaviour it checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ctrl.h"

#define NOW_S 1800000000LL
#define NOW_MS (NOW_S * 1000)

struct world {
	json_t *set, *pods, *claims, *revs;
	struct sts_actions a;
	int uid_seq;
};

static json_t *
ts(int64_t s)
{
	char b[32];
	time_format_rfc3339((time_t)s, b);
	return json_string(b);
}

static json_t *
make_set(int replicas, const char *policy)
{
	json_t *s = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:i},"
	    " s:{s:i, s:s, s:s, s:{s:s, s:{s:i}}, s:i, s:{s:s, s:s},"
	    " s:{s:{s:s}}, s:{s:{s:{s:s}}, s:{s:[{s:s, s:s, s:[{s:s, s:s}]}]}},"
	    " s:[{s:{s:s}, s:{s:[s], s:{s:{s:s}}}}]}}",
	    "apiVersion", "apps/v1", "kind", "StatefulSet",
	    "metadata", "name", "web", "namespace", "default", "uid", "set-uid",
	    "generation", 1,
	    "spec", "replicas", replicas, "serviceName", "web-svc", "podManagementPolicy", policy,
	    "updateStrategy", "type", "RollingUpdate", "rollingUpdate", "partition", 0,
	    "revisionHistoryLimit", 10,
	    "persistentVolumeClaimRetentionPolicy", "whenDeleted", "Retain",
	    "whenScaled", "Retain",
	    "selector", "matchLabels", "app", "web",
	    "template", "metadata", "labels", "app", "web",
	    "spec", "containers", "name", "c", "image", "img:1",
	    "volumeMounts", "name", "data", "mountPath", "/data",
	    "volumeClaimTemplates", "metadata", "name", "data",
	    "spec", "accessModes", "ReadWriteOnce", "resources", "requests", "storage", "1Gi");
	return s;
}

static void
world_init(struct world *w, int replicas, const char *policy)
{
	memset(w, 0, sizeof *w);
	w->set = make_set(replicas, policy);
	w->pods = json_array();
	w->claims = json_array();
	w->revs = json_array();
}

static void
world_free(struct world *w)
{
	sts_actions_free(&w->a);
	json_decref(w->set);
	json_decref(w->pods);
	json_decref(w->claims);
	json_decref(w->revs);
}

static json_t *
find(json_t *list, const char *name, size_t *at)
{
	size_t i;
	json_t *o;
	json_array_foreach(list, i, o)
		if (!strcmp(obj_name(o), name)) {
			if (at)
				*at = i;
			return o;
		}
	return NULL;
}

static void
put(struct world *w, json_t *list, json_t *obj, bool create)
{
	size_t at;
	json_t *o = json_deep_copy(obj);
	if (create) {
		char uid[32];
		snprintf(uid, sizeof uid, "uid-%d", ++w->uid_seq);
		json_object_set_new(obj_metadata(o), "uid", json_string(uid));
		assert_null(find(list, obj_name(o), NULL));
		json_array_append_new(list, o);
	} else if (find(list, obj_name(o), &at))
		json_array_set_new(list, at, o);
	else
		json_decref(o);
}

/* One sync: decide, then apply every action to the world. A deleted pod is
 * marked terminating (the node agent removes it later: finish_deletions). */
static struct sts_actions *
sync_once(struct world *w)
{
	sts_actions_free(&w->a);
	assert_int_equal(sts_decide(w->set, w->pods, w->claims, w->revs, NOW_MS, &w->a), 0);
	for (size_t i = 0; i < w->a.n; i++) {
		json_t *o = w->a.v[i].obj;
		switch (w->a.v[i].op) {
		case STS_CREATE_REVISION: put(w, w->revs, o, true); break;
		case STS_UPDATE_REVISION: put(w, w->revs, o, false); break;
		case STS_DELETE_REVISION: {
			size_t at;
			if (find(w->revs, obj_name(o), &at))
				json_array_remove(w->revs, at);
			break;
		}
		case STS_CREATE_CLAIM: put(w, w->claims, o, true); break;
		case STS_UPDATE_CLAIM: put(w, w->claims, o, false); break;
		case STS_CREATE_POD: put(w, w->pods, o, true); break;
		case STS_UPDATE_POD: put(w, w->pods, o, false); break;
		case STS_DELETE_POD: {
			json_t *p = find(w->pods, obj_name(o), NULL);
			assert_non_null(p);
			json_object_set_new(obj_metadata(p), "deletionTimestamp", ts(NOW_S));
			break;
		}
		case STS_UPDATE_STATUS:
			json_object_set(w->set, "status", json_object_get(o, "status"));
			break;
		}
	}
	return &w->a;
}

static void
finish_deletions(struct world *w)
{
	for (size_t i = json_array_size(w->pods); i-- > 0;)
		if (obj_get_path(json_array_get(w->pods, i), "metadata.deletionTimestamp"))
			json_array_remove(w->pods, i);
}

static void
set_ready(struct world *w, const char *name)
{
	json_t *p = find(w->pods, name, NULL);
	assert_non_null(p);
	json_object_set_new(p, "status", json_pack("{s:s, s:[{s:s, s:s, s:o}]}",
	    "phase", "Running", "conditions", "type", "Ready", "status", "True",
	    "lastTransitionTime", ts(NOW_S - 60)));
}

/* Syncs, marking every pod Ready and finishing deletions, until nothing but
 * a status write is left (bounded). */
static void
settle(struct world *w)
{
	for (int round = 0; round < 40; round++) {
		struct sts_actions *a = sync_once(w);
		size_t i;
		json_t *p;
		json_array_foreach(w->pods, i, p)
			set_ready(w, obj_name(p));
		finish_deletions(w);
		bool busy = false;
		for (size_t k = 0; k < a->n; k++)
			busy |= a->v[k].op != STS_UPDATE_STATUS && a->v[k].op != STS_DELETE_REVISION;
		if (!busy)
			return;
	}
	fail_msg("the set did not settle");
}

static size_t
count_op(const struct sts_actions *a, enum sts_op op)
{
	size_t n = 0;
	for (size_t i = 0; i < a->n; i++)
		n += a->v[i].op == op;
	return n;
}

static const json_t *
first_op(const struct sts_actions *a, enum sts_op op)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].op == op)
			return a->v[i].obj;
	return NULL;
}

static const char *
label(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(obj_labels(o), key));
}

static void
change_template(struct world *w, const char *image)
{
	json_t *c = json_array_get(obj_get_path(w->set, "spec.template.spec.containers"), 0);
	json_object_set_new(c, "image", json_string(image));
}

static void
change_template_of(json_t *set)
{
	json_t *c = json_array_get(obj_get_path(set, "spec.template.spec.containers"), 0);
	json_object_set_new(c, "image", json_string("img:9"));
}

/* ---- tests -------------------------------------------------------------- */

static void
test_ordinal_parsing(void **state)
{
	(void)state;
	json_t *set = make_set(1, "OrderedReady");
	const char *names[] = { "web-0", "web-12", "web-", "web-01", "web-1-0", "webx-1", "web-a" };
	int want[] = { 0, 12, -1, -1, -1, -1, -1 };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		json_t *p = json_pack("{s:{s:s}}", "metadata", "name", names[i]);
		assert_int_equal(sts_pod_ordinal(set, p), want[i]);
		json_decref(p);
	}
	json_decref(set);
}

static void
test_ordered_ready_creates_one_pod_at_a_time_with_its_claim(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 3, "OrderedReady");
	struct sts_actions *a = sync_once(&w);
	assert_int_equal(count_op(a, STS_CREATE_REVISION), 1);
	assert_int_equal(count_op(a, STS_CREATE_POD), 1);
	assert_int_equal(count_op(a, STS_CREATE_CLAIM), 1);
	/* The claim comes before its pod. */
	size_t claim_at = a->n, pod_at = a->n;
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i].op == STS_CREATE_CLAIM)
			claim_at = i;
		if (a->v[i].op == STS_CREATE_POD)
			pod_at = i;
	}
	assert_true(claim_at < pod_at);
	const json_t *claim = first_op(a, STS_CREATE_CLAIM);
	assert_string_equal(obj_name(claim), "data-web-0");
	assert_string_equal(label(claim, "app"), "web");
	assert_null(obj_get_path(claim, "metadata.ownerReferences"));	/* Retain */
	const json_t *pod = first_op(a, STS_CREATE_POD);
	assert_string_equal(obj_name(pod), "web-0");
	assert_string_equal(label(pod, "statefulset.kubernetes.io/pod-name"), "web-0");
	assert_string_equal(label(pod, "apps.kubernetes.io/pod-index"), "0");
	assert_string_equal(label(pod, "controller-revision-hash"),
	    obj_name(first_op(a, STS_CREATE_REVISION)));
	assert_string_equal(json_string_value(obj_get_path(pod, "spec.hostname")), "web-0");
	assert_string_equal(json_string_value(obj_get_path(pod, "spec.subdomain")), "web-svc");
	assert_string_equal(json_string_value(obj_get_path(json_array_get(obj_get_path(pod,
	    "spec.volumes"), 0), "persistentVolumeClaim.claimName")), "data-web-0");
	assert_string_equal(json_string_value(obj_get_path(json_array_get(obj_get_path(pod,
	    "metadata.ownerReferences"), 0), "uid")), "set-uid");

	/* web-0 not Ready yet: nothing new. */
	a = sync_once(&w);
	assert_int_equal(count_op(a, STS_CREATE_POD), 0);
	set_ready(&w, "web-0");
	a = sync_once(&w);
	assert_int_equal(count_op(a, STS_CREATE_POD), 1);
	assert_string_equal(obj_name(first_op(a, STS_CREATE_POD)), "web-1");
	assert_int_equal(count_op(a, STS_CREATE_REVISION), 0);
	world_free(&w);
}

static void
test_parallel_creates_every_pod_at_once(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 3, "Parallel");
	struct sts_actions *a = sync_once(&w);
	assert_int_equal(count_op(a, STS_CREATE_POD), 3);
	assert_int_equal(count_op(a, STS_CREATE_CLAIM), 3);
	json_t *st = json_object_get(w.set, "status");
	assert_int_equal(json_integer_value(json_object_get(st, "replicas")), 3);
	assert_int_equal(json_integer_value(json_object_get(st, "collisionCount")), 0);
	world_free(&w);
}

static void
test_status_after_settling(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 3, "OrderedReady");
	settle(&w);
	json_t *st = json_object_get(w.set, "status");
	static const char *const counts[] = { "replicas", "readyReplicas", "availableReplicas",
		"currentReplicas", "updatedReplicas" };
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		assert_int_equal(json_integer_value(json_object_get(st, counts[i])), 3);
	assert_string_equal(json_string_value(json_object_get(st, "currentRevision")),
	    json_string_value(json_object_get(st, "updateRevision")));
	assert_int_equal(json_integer_value(json_object_get(st, "observedGeneration")), 1);
	/* Settled: a sync writes nothing. */
	assert_int_equal(sync_once(&w)->n, 0);
	world_free(&w);
}

static void
test_rolling_update_goes_from_the_highest_ordinal_one_at_a_time(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 3, "OrderedReady");
	settle(&w);
	const char *old = json_string_value(obj_get_path(w.set, "status.currentRevision"));
	char *old_rev = xstrdup(old);
	change_template(&w, "img:2");
	const char *order[] = { "web-2", "web-1", "web-0" };
	for (int k = 0; k < 3; k++) {
		struct sts_actions *a = sync_once(&w);
		assert_int_equal(count_op(a, STS_DELETE_POD), 1);
		assert_string_equal(obj_name(first_op(a, STS_DELETE_POD)), order[k]);
		/* Terminating: the next sync waits. */
		a = sync_once(&w);
		assert_int_equal(count_op(a, STS_DELETE_POD) + count_op(a, STS_CREATE_POD), 0);
		finish_deletions(&w);
		a = sync_once(&w);
		assert_int_equal(count_op(a, STS_CREATE_POD), 1);
		const json_t *p = first_op(a, STS_CREATE_POD);
		assert_string_equal(obj_name(p), order[k]);
		assert_string_not_equal(label(p, "controller-revision-hash"), old_rev);
		/* Not Ready yet: the next one waits. */
		a = sync_once(&w);
		assert_int_equal(count_op(a, STS_DELETE_POD), 0);
		set_ready(&w, order[k]);
	}
	sync_once(&w);
	json_t *st = json_object_get(w.set, "status");
	assert_string_not_equal(json_string_value(json_object_get(st, "currentRevision")),
	    old_rev);
	assert_int_equal(json_integer_value(json_object_get(st, "updatedReplicas")), 3);
	assert_int_equal(json_array_size(w.revs), 2);
	/* The claims were never touched. */
	assert_int_equal(json_array_size(w.claims), 3);
	free(old_rev);
	world_free(&w);
}

static void
test_partition_updates_only_the_ordinals_at_or_above_it(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 3, "OrderedReady");
	settle(&w);
	char *old_rev = xstrdup(json_string_value(obj_get_path(w.set, "status.currentRevision")));
	json_object_set_new(obj_get_path(w.set, "spec.updateStrategy.rollingUpdate"),
	    "partition", json_integer(2));
	change_template(&w, "img:2");
	settle(&w);
	assert_string_equal(label(find(w.pods, "web-0", NULL), "controller-revision-hash"),
	    old_rev);
	assert_string_equal(label(find(w.pods, "web-1", NULL), "controller-revision-hash"),
	    old_rev);
	assert_string_not_equal(label(find(w.pods, "web-2", NULL), "controller-revision-hash"),
	    old_rev);
	json_t *st = json_object_get(w.set, "status");
	assert_string_equal(json_string_value(json_object_get(st, "currentRevision")), old_rev);
	assert_int_equal(json_integer_value(json_object_get(st, "updatedReplicas")), 1);
	assert_int_equal(json_integer_value(json_object_get(st, "currentReplicas")), 2);

	/* A pod below the partition that goes away comes back at the current
	 * (old) revision. */
	size_t at;
	find(w.pods, "web-0", &at);
	json_array_remove(w.pods, at);
	struct sts_actions *a = sync_once(&w);
	assert_string_equal(label(first_op(a, STS_CREATE_POD), "controller-revision-hash"),
	    old_rev);
	free(old_rev);
	world_free(&w);
}

static void
test_scale_down_highest_first_and_claims_retained(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 3, "OrderedReady");
	settle(&w);
	json_object_set_new(json_object_get(w.set, "spec"), "replicas", json_integer(1));
	struct sts_actions *a = sync_once(&w);
	assert_int_equal(count_op(a, STS_DELETE_POD), 1);
	assert_string_equal(obj_name(first_op(a, STS_DELETE_POD)), "web-2");
	a = sync_once(&w);		/* web-2 terminating: wait */
	assert_int_equal(count_op(a, STS_DELETE_POD), 0);
	finish_deletions(&w);
	a = sync_once(&w);
	assert_string_equal(obj_name(first_op(a, STS_DELETE_POD)), "web-1");
	settle(&w);
	assert_int_equal(json_array_size(w.pods), 1);
	assert_int_equal(json_array_size(w.claims), 3);
	assert_int_equal(count_op(&w.a, STS_UPDATE_CLAIM), 0);
	world_free(&w);
}

static void
test_parallel_scale_down_deletes_all_condemned(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 3, "Parallel");
	settle(&w);
	json_object_set_new(json_object_get(w.set, "spec"), "replicas", json_integer(1));
	struct sts_actions *a = sync_once(&w);
	assert_int_equal(count_op(a, STS_DELETE_POD), 2);
	world_free(&w);
}

static void
test_retention_delete_sets_owner_references(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 2, "OrderedReady");
	json_t *rp = obj_get_path(w.set, "spec.persistentVolumeClaimRetentionPolicy");
	json_object_set_new(rp, "whenDeleted", json_string("Delete"));
	json_object_set_new(rp, "whenScaled", json_string("Delete"));
	settle(&w);
	const json_t *ref = json_array_get(obj_get_path(find(w.claims, "data-web-1", NULL),
	    "metadata.ownerReferences"), 0);
	assert_string_equal(json_string_value(json_object_get(ref, "kind")), "StatefulSet");
	assert_string_equal(json_string_value(json_object_get(ref, "uid")), "set-uid");
	json_object_set_new(json_object_get(w.set, "spec"), "replicas", json_integer(1));
	struct sts_actions *a = sync_once(&w);
	/* The claim of the condemned pod gets the pod as owner, before the pod
	 * is deleted, so the garbage collector takes it with the pod. */
	size_t upd = a->n, del = a->n;
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i].op == STS_UPDATE_CLAIM && upd == a->n)
			upd = i;
		if (a->v[i].op == STS_DELETE_POD)
			del = i;
	}
	assert_true(upd < del && del < a->n);
	const json_t *claim = a->v[upd].obj;
	assert_string_equal(obj_name(claim), "data-web-1");
	json_t *refs = obj_get_path(claim, "metadata.ownerReferences");
	bool pod_ref = false;
	size_t i;
	json_t *r;
	json_array_foreach(refs, i, r)
		pod_ref |= !strcmp(json_string_value(json_object_get(r, "kind")), "Pod") &&
		    !strcmp(json_string_value(json_object_get(r, "name")), "web-1");
	assert_true(pod_ref);
	world_free(&w);
}

static void
test_claim_being_deleted_holds_the_pod_back(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 1, "OrderedReady");
	json_array_append_new(w.claims, json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:o}}",
	    "apiVersion", "v1", "kind", "PersistentVolumeClaim", "metadata", "name", "data-web-0",
	    "namespace", "default", "uid", "c0", "deletionTimestamp", ts(NOW_S)));
	struct sts_actions *a = sync_once(&w);
	assert_int_equal(count_op(a, STS_CREATE_POD), 0);
	assert_int_equal(count_op(a, STS_CREATE_CLAIM), 0);
	json_array_clear(w.claims);
	a = sync_once(&w);
	assert_int_equal(count_op(a, STS_CREATE_CLAIM), 1);
	assert_int_equal(count_op(a, STS_CREATE_POD), 1);
	world_free(&w);
}

static void
test_adoption_release_and_history_limit(void **state)
{
	(void)state;
	struct world w;
	world_init(&w, 1, "OrderedReady");
	/* An orphan web-0 that matches is adopted; web-x (not an ordinal) is not. */
	json_array_append_new(w.pods, json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", "web-0", "namespace",
	    "default", "uid", "orphan", "labels", "app", "web"));
	json_array_append_new(w.pods, json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}}}",
	    "apiVersion", "v1", "kind", "Pod", "metadata", "name", "web-x", "namespace",
	    "default", "uid", "other", "labels", "app", "web"));
	struct sts_actions *a = sync_once(&w);
	assert_int_equal(count_op(a, STS_UPDATE_POD), 1);
	assert_string_equal(obj_name(first_op(a, STS_UPDATE_POD)), "web-0");
	assert_int_equal(count_op(a, STS_CREATE_POD), 0);
	json_array_remove(w.pods, 1);
	/* Three template changes with a history limit of 1: old revisions no
	 * pod uses are pruned. */
	json_object_set_new(json_object_get(w.set, "spec"), "revisionHistoryLimit",
	    json_integer(1));
	const char *images[] = { "img:2", "img:3", "img:4" };
	for (size_t i = 0; i < ARRAY_SIZE(images); i++) {
		change_template(&w, images[i]);
		settle(&w);
	}
	sync_once(&w);		/* the status write of the last sync brings another */
	assert_int_equal(json_array_size(w.revs), 2);	/* img:4 and one old: img:3 */
	/* Back to the kept older template: its revision is renumbered, not
	 * created again. */
	change_template(&w, "img:3");
	struct sts_actions *b = sync_once(&w);
	assert_int_equal(count_op(b, STS_CREATE_REVISION), 0);
	assert_int_equal(count_op(b, STS_UPDATE_REVISION), 1);
	assert_int_equal(json_integer_value(json_object_get(first_op(b, STS_UPDATE_REVISION),
	    "revision")), 5);
	assert_string_equal(json_string_value(obj_get_path(w.set, "status.updateRevision")),
	    obj_name(first_op(b, STS_UPDATE_REVISION)));
	world_free(&w);
}

/* ---- the schema (obj_schema_apps.c, obj_schema_core.c) ------------------ */

static bool
has_err(const struct errlist *e, const char *field, const char *reason)
{
	for (size_t i = 0; i < e->n; i++)
		if (!strcmp(e->v[i].field, field) && !strcmp(e->v[i].reason, reason))
			return true;
	return false;
}

static void
test_statefulset_and_claim_validation(void **state)
{
	(void)state;
	struct errlist e = { 0 };
	json_t *set = make_set(3, "OrderedReady");
	json_object_del(set, "status");
	/* A container may mount a claim template by name. */
	assert_int_equal(obj_validate(set, &e), 0);
	json_t *bad = json_deep_copy(set);
	json_object_set_new(obj_get_path(bad, "spec.updateStrategy.rollingUpdate"),
	    "maxUnavailable", json_integer(2));
	json_object_del(json_object_get(json_array_get(obj_get_path(bad,
	    "spec.volumeClaimTemplates"), 0), "spec"), "resources");
	json_object_set_new(json_array_get(obj_get_path(bad,
	    "spec.template.spec.containers"), 0), "volumeMounts",
	    json_pack("[{s:s, s:s}]", "name", "nope", "mountPath", "/x"));
	assert_int_equal(obj_validate(bad, &e), -EINVAL);
	assert_true(has_err(&e, "spec.updateStrategy.rollingUpdate.maxUnavailable",
	    "FieldValueForbidden"));
	errlist_free(&e);
	json_object_del(obj_get_path(bad, "spec.updateStrategy.rollingUpdate"), "maxUnavailable");
	assert_int_equal(obj_validate(bad, &e), -EINVAL);
	assert_true(has_err(&e, "spec.volumeClaimTemplates[0].spec.resources[storage]",
	    "FieldValueRequired"));
	assert_true(has_err(&e, "spec.template.spec.containers[0].volumeMounts[0].name",
	    "FieldValueNotFound"));
	errlist_free(&e);

	/* Defaults, then updates: template and replicas may change, the
	 * service name may not (compared after defaulting). */
	json_t *stored = json_deep_copy(set);
	obj_default(stored);
	json_t *ct = json_array_get(obj_get_path(stored, "spec.volumeClaimTemplates"), 0);
	assert_string_equal(json_string_value(obj_get_path(ct, "spec.volumeMode")), "Filesystem");
	assert_string_equal(json_string_value(obj_get_path(stored,
	    "spec.persistentVolumeClaimRetentionPolicy.whenScaled")), "Retain");
	json_t *upd = json_deep_copy(set);
	json_object_set_new(json_object_get(upd, "spec"), "replicas", json_integer(5));
	change_template_of(upd);
	assert_int_equal(obj_validate_update(stored, upd, &e), 0);
	json_object_set_new(json_object_get(upd, "spec"), "serviceName", json_string("other"));
	assert_int_equal(obj_validate_update(stored, upd, &e), -EINVAL);
	assert_true(has_err(&e, "spec", "FieldValueForbidden"));
	errlist_free(&e);

	/* A claim: status Pending by default, access modes required. */
	json_t *pvc = json_pack("{s:s, s:s, s:{s:s}, s:{s:[s], s:{s:{s:s}}}}",
	    "apiVersion", "v1", "kind", "PersistentVolumeClaim", "metadata", "name", "c",
	    "spec", "accessModes", "ReadWriteOnce", "resources", "requests", "storage", "1Gi");
	assert_int_equal(obj_validate(pvc, &e), 0);
	obj_default(pvc);
	assert_string_equal(json_string_value(obj_get_path(pvc, "status.phase")), "Pending");
	json_object_set_new(json_object_get(pvc, "spec"), "accessModes", json_array());
	assert_int_equal(obj_validate(pvc, &e), -EINVAL);
	assert_true(has_err(&e, "spec.accessModes", "FieldValueRequired"));
	errlist_free(&e);
	json_decref(pvc);
	json_decref(upd);
	json_decref(stored);
	json_decref(bad);
	json_decref(set);
}

static void
expect_status(const json_t *sts, const char *want, bool want_done)
{
	char *msg = NULL;
	bool done;
	assert_int_equal(cli_rollout_status_msg(sts, 0, &msg, &done), 0);
	assert_string_equal(msg, want);
	assert_int_equal(done, want_done);
	free(msg);
}

/* `v6 rollout status statefulset/NAME` says what kubectl says. */
static void
test_rollout_status_messages(void **state)
{
	(void)state;
	json_t *sts = json_pack("{s:s, s:s, s:{s:s, s:i}, s:{s:i, s:{s:s}}, s:{s:i, s:i, s:i,"
	    " s:i, s:s, s:s}}", "apiVersion", "apps/v1", "kind", "StatefulSet",
	    "metadata", "name", "web", "generation", 2,
	    "spec", "replicas", 3, "updateStrategy", "type", "RollingUpdate",
	    "status", "observedGeneration", 2, "readyReplicas", 2, "updatedReplicas", 1,
	    "currentReplicas", 2, "currentRevision", "web-a", "updateRevision", "web-b");
	json_t *st = json_object_get(sts, "status");
	expect_status(sts, "Waiting for 1 pods to be ready...\n", false);
	json_object_set_new(st, "readyReplicas", json_integer(3));
	expect_status(sts, "waiting for statefulset rolling update to complete 1 pods at "
	    "revision web-b...\n", false);
	json_object_set_new(st, "currentRevision", json_string("web-b"));
	json_object_set_new(st, "currentReplicas", json_integer(3));
	expect_status(sts, "statefulset rolling update complete 3 pods at revision web-b...\n",
	    true);
	json_object_set_new(json_object_get(json_object_get(sts, "spec"), "updateStrategy"),
	    "rollingUpdate", json_pack("{s:i}", "partition", 2));
	expect_status(sts, "partitioned roll out complete: 1 new pods have been updated...\n",
	    true);
	json_object_set_new(st, "updatedReplicas", json_integer(0));
	expect_status(sts, "Waiting for partitioned roll out to finish: 0 out of 1 new pods "
	    "have been updated...\n", false);
	json_object_set_new(obj_metadata(sts), "generation", json_integer(3));
	expect_status(sts, "Waiting for statefulset spec update to be observed...\n", false);
	json_decref(sts);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ordinal_parsing),
		cmocka_unit_test(test_ordered_ready_creates_one_pod_at_a_time_with_its_claim),
		cmocka_unit_test(test_parallel_creates_every_pod_at_once),
		cmocka_unit_test(test_status_after_settling),
		cmocka_unit_test(test_rolling_update_goes_from_the_highest_ordinal_one_at_a_time),
		cmocka_unit_test(test_partition_updates_only_the_ordinals_at_or_above_it),
		cmocka_unit_test(test_scale_down_highest_first_and_claims_retained),
		cmocka_unit_test(test_parallel_scale_down_deletes_all_condemned),
		cmocka_unit_test(test_retention_delete_sets_owner_references),
		cmocka_unit_test(test_claim_being_deleted_holds_the_pod_back),
		cmocka_unit_test(test_adoption_release_and_history_limit),
		cmocka_unit_test(test_statefulset_and_claim_validation),
		cmocka_unit_test(test_rollout_status_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
