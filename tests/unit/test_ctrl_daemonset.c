/* Unit tests of the DaemonSet controller's decision (ds_decide) over three
 * fake Nodes: placement by nodeSelector and taints, manage (create, excess,
 * failed, misscheduled), rolling update with maxUnavailable and maxSurge,
 * OnDelete, adoption, ControllerRevisions and status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cli.h"
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
make_node(const char *name, const char *disk)
{
	json_t *n = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{}}", "apiVersion", "v1",
	    "kind", "Node", "metadata", "name", name, "labels", "kubernetes.io/hostname", name,
	    "spec");
	if (disk)
		json_object_set_new(obj_labels(n), "disk", json_string(disk));
	return n;
}

static void
taint(json_t *node, const char *key, const char *effect)
{
	json_t *spec = json_object_get(node, "spec");
	json_t *t = json_object_get(spec, "taints");
	if (!t) {
		t = json_array();
		json_object_set_new(spec, "taints", t);
	}
	json_array_append_new(t, json_pack("{s:s, s:s, s:s}", "key", key, "value", "v",
	    "effect", effect));
}

/* Three nodes: n1 (ssd), n2 (hdd), n3 (ssd). */
static json_t *
three_nodes(void)
{
	return json_pack("[o, o, o]", make_node("n2", "hdd"), make_node("n3", "ssd"),
	    make_node("n1", "ssd"));
}

static json_t *
make_ds(const char *image)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:i},"
	    " s:{s:{s:{s:s}}, s:{s:{s:{s:s}}, s:{s:[{s:s, s:s}]}},"
	    " s:{s:s, s:{s:i, s:i}}}}",
	    "apiVersion", "apps/v1", "kind", "DaemonSet",
	    "metadata", "name", "agent", "namespace", "default", "uid", "ds-uid", "generation", 3,
	    "spec", "selector", "matchLabels", "app", "agent",
	    "template", "metadata", "labels", "app", "agent",
	    "spec", "containers", "name", "c", "image", image,
	    "updateStrategy", "type", "RollingUpdate", "rollingUpdate", "maxUnavailable", 1,
	    "maxSurge", 0);
}

static void
set_rolling(json_t *ds, int unavailable, int surge)
{
	json_t *ru = obj_get_path(ds, "spec.updateStrategy.rollingUpdate");
	json_object_set_new(ru, "maxUnavailable", json_integer(unavailable));
	json_object_set_new(ru, "maxSurge", json_integer(surge));
}

static char *
hash_of(const json_t *ds)
{
	static char h[16];
	ds_template_hash(ds, h);
	return h;
}

struct podopt {
	const char *hash;	/* controller-revision-hash; NULL: "old" */
	const char *phase;	/* NULL: Running */
	int ready;		/* 0 not ready, 1 ready (since NOW_S - 50) */
	int64_t ready_s, created_s;
	bool orphan, deleting;
};

static json_t *
make_pod(const char *name, const char *node, struct podopt o)
{
	json_t *p = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s, s:s}, s:o},"
	    " s:{s:s, s:[{s:s}]}, s:{s:s}}",
	    "apiVersion", "v1", "kind", "Pod",
	    "metadata", "name", name, "namespace", "default", "uid", name,
	    "labels", "app", "agent", "controller-revision-hash", o.hash ? o.hash : "old",
	    "creationTimestamp", ts(o.created_s ? o.created_s : NOW_S - 100),
	    "spec", "nodeName", node, "containers", "name", "c",
	    "status", "phase", o.phase ? o.phase : "Running");
	if (!o.orphan)
		json_object_set_new(obj_metadata(p), "ownerReferences", json_pack(
		    "[{s:s, s:s, s:s, s:s, s:b}]", "apiVersion", "apps/v1", "kind", "DaemonSet",
		    "name", "agent", "uid", "ds-uid", "controller", 1));
	json_object_set_new(json_object_get(p, "status"), "conditions", json_pack(
	    "[{s:s, s:s, s:o}]", "type", "Ready", "status", o.ready ? "True" : "False",
	    "lastTransitionTime", ts(o.ready_s ? o.ready_s : NOW_S - 50)));
	if (o.deleting)
		json_object_set_new(obj_metadata(p), "deletionTimestamp", ts(NOW_S));
	return p;
}

/* "create:n1 delete:p2(update) status" — the actions as one line. */
static char *
summary(const struct ds_actions *a)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < a->n; i++) {
		const struct ds_action *x = &a->v[i];
		const char *sep = i ? " " : "";
		switch (x->op) {
		case DS_ADOPT_POD:
			buf_printf(&b, "%sadopt:%s", sep, obj_name(x->obj));
			break;
		case DS_RELEASE_POD:
			buf_printf(&b, "%srelease:%s", sep, obj_name(x->obj));
			break;
		case DS_CREATE_POD:
			buf_printf(&b, "%screate:%s%s", sep,
			    json_string_value(obj_get_path(x->obj, "spec.nodeName")),
			    x->why ? "(update)" : "");
			break;
		case DS_DELETE_POD:
			buf_printf(&b, "%sdelete:%s(%s)", sep, obj_name(x->obj), x->why);
			break;
		case DS_UPDATE_STATUS:
			buf_printf(&b, "%sstatus", sep);
			break;
		case DS_CREATE_REVISION:
		case DS_UPDATE_REVISION:
		case DS_DELETE_REVISION:
			buf_printf(&b, "%s%s:%s@%lld", sep, x->op == DS_CREATE_REVISION ? "newrev" :
			    x->op == DS_UPDATE_REVISION ? "renumber" : "droprev", obj_name(x->obj),
			    (long long)json_integer_value(json_object_get(x->obj, "revision")));
			break;
		}
	}
	char *s = xstrdup(b.data ? b.data : "");
	buf_free(&b);
	return s;
}

/* A ControllerRevision of ds, named NAME-HASH of template, number n. */
static json_t *
make_rev(const char *name, const json_t *tmpl, int n, const char *hash, const char *owner)
{
	json_t *t = json_deep_copy(tmpl);
	json_object_set_new(t, "$patch", json_string("replace"));
	json_t *r = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:{s:o}}, s:i}",
	    "apiVersion", "apps/v1", "kind", "ControllerRevision",
	    "metadata", "name", name, "namespace", "default", "labels",
	    "controller-revision-hash", hash, "data", "spec", "template", t, "revision", n);
	if (owner)
		json_object_set_new(obj_metadata(r), "ownerReferences", json_pack(
		    "[{s:s, s:s, s:s, s:s, s:b}]", "apiVersion", "apps/v1", "kind", "DaemonSet",
		    "name", "agent", "uid", owner, "controller", 1));
	return r;
}

/* ds_decide with the revision of ds's current template already stored. */
static int
decide(const json_t *ds, const json_t *nodes, const json_t *pods, struct ds_actions *a)
{
	char h[16], name[64];
	ds_template_hash(ds, h);
	snprintf(name, sizeof name, "agent-%s", h);
	json_t *revs = json_pack("[o]", make_rev(name, obj_get_path(ds, "spec.template"), 1, h,
	    "ds-uid"));
	int rc = ds_decide(ds, nodes, pods, revs, NOW_MS, a);
	json_decref(revs);
	return rc;
}

static void
expect(const json_t *ds, const json_t *nodes, const json_t *pods, const char *want)
{
	struct ds_actions a;
	assert_int_equal(decide(ds, nodes, pods, &a), 0);
	char *got = summary(&a);
	assert_string_equal(got, want);
	free(got);
	ds_actions_free(&a);
}

static const json_t *
status_of(const struct ds_actions *a)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].op == DS_UPDATE_STATUS)
			return json_object_get(a->v[i].obj, "status");
	return NULL;
}

static int
stat_int(const struct ds_actions *a, const char *key)
{
	const json_t *v = json_object_get(status_of(a), key);
	return v ? (int)json_integer_value(v) : -1;
}

static void
test_one_pod_per_node(void **state)
{
	(void)state;
	json_t *ds = make_ds("img:1"), *nodes = three_nodes(), *pods = json_array();
	struct ds_actions a;
	assert_int_equal(decide(ds, nodes, pods, &a), 0);
	char *got = summary(&a);
	assert_string_equal(got, "create:n1 create:n2 create:n3 status");
	free(got);
	const json_t *p = a.v[0].obj;
	assert_string_equal(json_string_value(obj_get_path(p, "metadata.generateName")), "agent-");
	assert_string_equal(json_string_value(json_object_get(obj_labels(p),
	    "controller-revision-hash")), hash_of(ds));
	assert_string_equal(json_string_value(json_object_get(obj_labels(p),
	    "pod-template-generation")), "3");
	assert_string_equal(json_string_value(json_object_get(obj_controller_ref(p), "uid")),
	    "ds-uid");
	assert_int_equal(json_array_size(obj_get_path(p, "spec.tolerations")), 6);
	assert_int_equal(stat_int(&a, "desiredNumberScheduled"), 3);
	assert_int_equal(stat_int(&a, "currentNumberScheduled"), 0);
	assert_int_equal(stat_int(&a, "numberUnavailable"), 3);
	assert_int_equal(stat_int(&a, "observedGeneration"), 3);
	ds_actions_free(&a);
	json_decref(ds);
	json_decref(nodes);
	json_decref(pods);
}

static void
test_node_selector_and_misscheduled(void **state)
{
	(void)state;
	json_t *ds = make_ds("img:1"), *nodes = three_nodes();
	json_object_set_new(obj_get_path(ds, "spec.template.spec"), "nodeSelector",
	    json_pack("{s:s}", "disk", "ssd"));
	const char *h = hash_of(ds);
	json_t *pods = json_pack("[o, o]",
	    make_pod("p1", "n1", (struct podopt){ .hash = h, .ready = 1 }),
	    make_pod("p2", "n2", (struct podopt){ .hash = h, .ready = 1 }));
	struct ds_actions a;
	assert_int_equal(decide(ds, nodes, pods, &a), 0);
	char *got = summary(&a);
	assert_string_equal(got, "delete:p2(misscheduled) create:n3 status");
	free(got);
	assert_int_equal(stat_int(&a, "desiredNumberScheduled"), 2);
	assert_int_equal(stat_int(&a, "currentNumberScheduled"), 1);
	assert_int_equal(stat_int(&a, "numberMisscheduled"), 1);
	assert_int_equal(stat_int(&a, "numberReady"), 1);
	ds_actions_free(&a);
	/* a pod already terminating is not deleted twice */
	json_object_set_new(obj_metadata(json_array_get(pods, 1)), "deletionTimestamp", ts(NOW_S));
	expect(ds, nodes, pods, "create:n3 status");
	json_decref(ds);
	json_decref(nodes);
	json_decref(pods);
}

static void
test_taints(void **state)
{
	(void)state;
	json_t *ds = make_ds("img:1"), *nodes = three_nodes();
	const char *h = hash_of(ds);
	json_t *n1 = json_array_get(nodes, 2), *n2 = json_array_get(nodes, 0);
	json_t *n3 = json_array_get(nodes, 1);
	taint(n1, "dedicated", "NoSchedule");	/* no new pod, the old one stays */
	taint(n2, "dedicated", "NoExecute");	/* the pod goes */
	taint(n3, "node.kubernetes.io/unschedulable", "NoSchedule");	/* tolerated */
	json_t *pods = json_pack("[o, o]",
	    make_pod("p1", "n1", (struct podopt){ .hash = h, .ready = 1 }),
	    make_pod("p2", "n2", (struct podopt){ .hash = h, .ready = 1 }));
	expect(ds, nodes, pods, "delete:p2(misscheduled) create:n3 status");
	json_array_remove(pods, 0);
	expect(ds, nodes, pods, "delete:p2(misscheduled) create:n3 status");
	/* tolerating the key with Exists lets pods onto n1 and n2 */
	json_object_set_new(obj_get_path(ds, "spec.template.spec"), "tolerations",
	    json_pack("[{s:s, s:s}]", "key", "dedicated", "operator", "Exists"));
	json_array_clear(pods);
	expect(ds, nodes, pods, "create:n1 create:n2 create:n3 status");
	bool run, keep;
	json_t *picky = make_ds("img:1");
	json_object_set_new(obj_get_path(picky, "spec.template.spec"), "tolerations",
	    json_pack("[{s:s, s:s, s:s, s:s}]", "key", "dedicated", "operator", "Equal",
	    "value", "other", "effect", "NoSchedule"));
	ds_node_should_run(picky, n1, &run, &keep);
	assert_false(run);
	assert_true(keep);
	json_object_set_new(json_array_get(obj_get_path(picky, "spec.template.spec.tolerations"),
	    0), "value", json_string("v"));
	ds_node_should_run(picky, n1, &run, &keep);
	assert_true(run);
	json_decref(picky);
	json_decref(ds);
	json_decref(nodes);
	json_decref(pods);
}

static void
test_excess_and_failed_pods(void **state)
{
	(void)state;
	json_t *ds = make_ds("img:1"), *nodes = three_nodes();
	const char *h = hash_of(ds);
	json_t *pods = json_pack("[o, o, o, o]",
	    make_pod("young", "n1", (struct podopt){ .hash = h, .ready = 1, .created_s = NOW_S - 10 }),
	    make_pod("old", "n1", (struct podopt){ .hash = h, .ready = 1, .created_s = NOW_S - 90 }),
	    make_pod("dead", "n2", (struct podopt){ .hash = h, .phase = "Failed" }),
	    make_pod("p3", "n3", (struct podopt){ .hash = h, .ready = 1 }));
	expect(ds, nodes, pods, "delete:young(excess) delete:dead(failed) create:n2 status");
	json_decref(ds);
	json_decref(nodes);
	json_decref(pods);
}

static json_t *
old_pods(int ready_mask)
{
	json_t *pods = json_array();
	static const char *const names[] = { "p1", "p2", "p3" };
	static const char *const nodes[] = { "n1", "n2", "n3" };
	for (int i = 0; i < 3; i++)
		json_array_append_new(pods, make_pod(names[i], nodes[i],
		    (struct podopt){ .ready = (ready_mask >> i) & 1 }));
	return pods;
}

static void
test_rolling_update_max_unavailable(void **state)
{
	(void)state;
	json_t *ds = make_ds("img:2"), *nodes = three_nodes(), *pods = old_pods(7);
	expect(ds, nodes, pods, "delete:p1(update) status");
	set_rolling(ds, 2, 0);
	expect(ds, nodes, pods, "delete:p1(update) delete:p2(update) status");
	/* 34% of 3 nodes rounds up to 2 */
	json_object_set_new(obj_get_path(ds, "spec.updateStrategy.rollingUpdate"),
	    "maxUnavailable", json_string("34%"));
	expect(ds, nodes, pods, "delete:p1(update) delete:p2(update) status");
	/* a new pod not ready yet uses up maxUnavailable 1 */
	set_rolling(ds, 1, 0);
	json_array_set_new(pods, 0, make_pod("p1new", "n1",
	    (struct podopt){ .hash = hash_of(ds), .ready = 0 }));
	expect(ds, nodes, pods, "status");
	/* ... but an old pod that is unavailable anyway may always be replaced */
	json_decref(pods);
	pods = old_pods(5);	/* p2 not ready */
	json_array_set_new(pods, 0, make_pod("p1new", "n1",
	    (struct podopt){ .hash = hash_of(ds), .ready = 0 }));
	expect(ds, nodes, pods, "delete:p2(update) status");
	json_decref(ds);
	json_decref(nodes);
	json_decref(pods);
}

static void
test_rolling_update_waits_for_manage(void **state)
{
	(void)state;
	json_t *ds = make_ds("img:2"), *nodes = three_nodes(), *pods = old_pods(7);
	json_array_remove(pods, 2);	/* n3 has no pod: manage creates it first */
	set_rolling(ds, 2, 0);		/* (room for one more node down) */
	expect(ds, nodes, pods, "create:n3 status");
	json_decref(ds);
	json_decref(nodes);
	json_decref(pods);
}

static void
test_rolling_update_with_surge(void **state)
{
	(void)state;
	json_t *ds = make_ds("img:2"), *nodes = three_nodes(), *pods = old_pods(7);
	set_rolling(ds, 0, 1);
	expect(ds, nodes, pods, "create:n1(update) status");
	/* the surged pod is not available yet: wait */
	json_array_append_new(pods, make_pod("p1new", "n1",
	    (struct podopt){ .hash = hash_of(ds), .ready = 0, .created_s = NOW_S - 5 }));
	expect(ds, nodes, pods, "status");
	/* available: the old one goes, and the next node surges */
	json_array_remove(pods, 3);
	json_array_append_new(pods, make_pod("p1new", "n1",
	    (struct podopt){ .hash = hash_of(ds), .ready = 1, .created_s = NOW_S - 5 }));
	expect(ds, nodes, pods, "delete:p1(update) create:n2(update) status");
	json_decref(ds);
	json_decref(nodes);
	json_decref(pods);
}

static void
test_on_delete_keeps_old_pods(void **state)
{
	(void)state;
	json_t *ds = make_ds("img:2"), *nodes = three_nodes(), *pods = old_pods(7);
	json_t *st = obj_get_path(ds, "spec.updateStrategy");
	json_object_set_new(st, "type", json_string("OnDelete"));
	json_object_del(st, "rollingUpdate");
	struct ds_actions a;
	assert_int_equal(decide(ds, nodes, pods, &a), 0);
	char *got = summary(&a);
	assert_string_equal(got, "status");
	free(got);
	assert_int_equal(stat_int(&a, "updatedNumberScheduled"), -1);	/* 0: omitted */
	assert_int_equal(stat_int(&a, "numberAvailable"), 3);
	ds_actions_free(&a);
	/* a deleted old pod is replaced by a new one */
	json_object_set_new(obj_metadata(json_array_get(pods, 1)), "deletionTimestamp", ts(NOW_S));
	expect(ds, nodes, pods, "create:n2 status");
	json_decref(ds);
	json_decref(nodes);
	json_decref(pods);
}

static void
test_adopt_and_release(void **state)
{
	(void)state;
	json_t *ds = make_ds("img:1"), *nodes = three_nodes();
	const char *h = hash_of(ds);
	json_t *stray = make_pod("stray", "n2", (struct podopt){ .hash = h, .ready = 1 });
	json_object_set_new(obj_labels(stray), "app", json_string("other"));
	json_t *pods = json_pack("[o, o, o, o]",
	    make_pod("orphan", "n1", (struct podopt){ .hash = h, .ready = 1, .orphan = true }),
	    stray,
	    make_pod("p3", "n3", (struct podopt){ .hash = h, .ready = 1 }),
	    make_pod("gone", "n9", (struct podopt){ .hash = h, .ready = 1 }));
	struct ds_actions a;
	assert_int_equal(decide(ds, nodes, pods, &a), 0);
	char *got = summary(&a);
	/* the pod on a node that does not exist is left alone, as Kubernetes does */
	assert_string_equal(got, "adopt:orphan release:stray create:n2 status");
	free(got);
	assert_string_equal(json_string_value(json_object_get(obj_controller_ref(a.v[0].obj),
	    "uid")), "ds-uid");
	assert_null(obj_controller_ref(a.v[1].obj));
	assert_int_equal(stat_int(&a, "currentNumberScheduled"), 2);
	ds_actions_free(&a);
	json_decref(ds);
	json_decref(nodes);
	json_decref(pods);
}

static void
test_status_min_ready_and_no_rewrite(void **state)
{
	(void)state;
	json_t *ds = make_ds("img:1"), *nodes = three_nodes();
	json_object_set_new(json_object_get(ds, "spec"), "minReadySeconds", json_integer(60));
	const char *h = hash_of(ds);
	json_t *pods = json_pack("[o, o, o]",
	    make_pod("p1", "n1", (struct podopt){ .hash = h, .ready = 1, .ready_s = NOW_S - 100 }),
	    make_pod("p2", "n2", (struct podopt){ .hash = h, .ready = 1, .ready_s = NOW_S - 20 }),
	    make_pod("p3", "n3", (struct podopt){ .hash = h, .ready = 0 }));
	struct ds_actions a;
	assert_int_equal(decide(ds, nodes, pods, &a), 0);
	assert_int_equal(stat_int(&a, "desiredNumberScheduled"), 3);
	assert_int_equal(stat_int(&a, "currentNumberScheduled"), 3);
	assert_int_equal(stat_int(&a, "numberReady"), 2);
	assert_int_equal(stat_int(&a, "numberAvailable"), 1);
	assert_int_equal(stat_int(&a, "numberUnavailable"), 2);
	assert_int_equal(stat_int(&a, "updatedNumberScheduled"), 3);
	assert_int_equal(stat_int(&a, "numberMisscheduled"), 0);
	assert_int_equal(a.requeue_ms, 40 * 1000 + 1);	/* p2 becomes available */
	/* the same status again is not written */
	json_object_set(ds, "status", (json_t *)status_of(&a));
	ds_actions_free(&a);
	expect(ds, nodes, pods, "");
	json_decref(ds);
	json_decref(nodes);
	json_decref(pods);
}

static void
test_deleting_daemonset_does_nothing(void **state)
{
	(void)state;
	json_t *ds = make_ds("img:1"), *nodes = three_nodes(), *pods = json_array();
	json_object_set_new(obj_metadata(ds), "deletionTimestamp", ts(NOW_S));
	expect(ds, nodes, pods, "");
	json_object_del(obj_metadata(ds), "deletionTimestamp");
	json_object_set_new(json_object_get(ds, "spec"), "selector", json_pack("{s:[{s:s, s:s}]}",
	    "matchExpressions", "key", "app", "operator", "Bogus"));
	struct ds_actions a;
	assert_int_equal(ds_decide(ds, nodes, pods, NULL, NOW_MS, &a), -EINVAL);
	assert_int_equal(a.n, 0);
	json_decref(ds);
	json_decref(nodes);
	json_decref(pods);
}

static void
test_hash_follows_template(void **state)
{
	(void)state;
	json_t *a = make_ds("img:1"), *b = make_ds("img:2"), *c = make_ds("img:1");
	char ha[16], hb[16], hc[16];
	ds_template_hash(a, ha);
	ds_template_hash(b, hb);
	set_rolling(c, 3, 0);	/* the strategy is not part of the template */
	ds_template_hash(c, hc);
	assert_string_not_equal(ha, hb);
	assert_string_equal(ha, hc);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

static void
test_controller_revisions(void **state)
{
	(void)state;
	json_t *ds = make_ds("img:2"), *nodes = json_array(), *pods = json_array();
	json_t *v1 = make_ds("img:1");
	const json_t *t1 = obj_get_path(v1, "spec.template");
	const json_t *t2 = obj_get_path(ds, "spec.template");
	char h2[16], cur[64], want[256];
	ds_template_hash(ds, h2);
	snprintf(cur, sizeof cur, "agent-%s", h2);
	struct ds_actions a;
	/* the first sync records the template as revision max + 1 */
	json_t *revs = json_pack("[o, o]", make_rev("agent-old", t1, 4, "old", "ds-uid"),
	    make_rev("other-x", t2, 9, "x", "someone-else"));
	assert_int_equal(ds_decide(ds, nodes, pods, revs, NOW_MS, &a), 0);
	char *got = summary(&a);
	snprintf(want, sizeof want, "newrev:%s@5 status", cur);
	assert_string_equal(got, want);
	free(got);
	const json_t *rev = a.v[0].obj;
	assert_string_equal(json_string_value(json_object_get(obj_controller_ref(rev), "uid")),
	    "ds-uid");
	assert_string_equal(json_string_value(obj_get_path(rev, "data.spec.template.$patch")),
	    "replace");
	assert_string_equal(json_string_value(json_object_get(obj_labels(rev),
	    "controller-revision-hash")), h2);
	ds_actions_free(&a);
	json_decref(revs);
	/* going back to an older template renumbers its revision */
	revs = json_pack("[o, o]", make_rev(cur, t2, 1, h2, "ds-uid"),
	    make_rev("agent-old", t1, 2, "old", "ds-uid"));
	assert_int_equal(ds_decide(ds, nodes, pods, revs, NOW_MS, &a), 0);
	got = summary(&a);
	snprintf(want, sizeof want, "renumber:%s@3 status", cur);
	assert_string_equal(got, want);
	free(got);
	ds_actions_free(&a);
	json_decref(revs);
	/* history beyond the limit goes, oldest first, but not what a pod runs */
	json_object_set_new(json_object_get(ds, "spec"), "revisionHistoryLimit", json_integer(1));
	revs = json_pack("[o, o, o, o]", make_rev("agent-a", t1, 1, "a", "ds-uid"),
	    make_rev("agent-b", t1, 2, "b", "ds-uid"), make_rev("agent-c", t1, 3, "c", "ds-uid"),
	    make_rev(cur, t2, 4, h2, "ds-uid"));
	json_array_append_new(pods, make_pod("p", "gone-node", (struct podopt){ .hash = "a" }));
	assert_int_equal(ds_decide(ds, nodes, pods, revs, NOW_MS, &a), 0);
	got = summary(&a);
	assert_string_equal(got, "droprev:agent-b@2 droprev:agent-c@3 status");
	free(got);
	ds_actions_free(&a);
	json_decref(revs);
	/* NAME-HASH taken by another template: only collisionCount moves */
	revs = json_pack("[o]", make_rev(cur, t1, 1, h2, "someone-else"));
	assert_int_equal(ds_decide(ds, nodes, pods, revs, NOW_MS, &a), 0);
	got = summary(&a);
	assert_string_equal(got, "status");
	free(got);
	assert_int_equal(stat_int(&a, "collisionCount"), 1);
	json_object_set(ds, "status", (json_t *)status_of(&a));
	char h3[16];
	ds_template_hash(ds, h3);
	assert_string_not_equal(h3, h2);
	ds_actions_free(&a);
	json_decref(revs);
	json_decref(v1);
	json_decref(ds);
	json_decref(nodes);
	json_decref(pods);
}

/* `v6 rollout status daemonset/NAME` (cli_rollout.c), from the status
 * ds_decide writes. */
static void
test_rollout_status_messages(void **state)
{
	(void)state;
	json_t *ds = make_ds("img:2");
	json_object_set_new(ds, "status", json_pack("{s:i, s:i, s:i, s:i}",
	    "observedGeneration", 3, "desiredNumberScheduled", 3,
	    "updatedNumberScheduled", 1, "numberAvailable", 2));
	char *msg;
	bool done;
	assert_int_equal(cli_rollout_status_msg(ds, 0, &msg, &done), 0);
	assert_string_equal(msg, "Waiting for daemon set \"agent\" rollout to finish: "
	    "1 out of 3 new pods have been updated...\n");
	assert_false(done);
	free(msg);
	json_object_set_new(json_object_get(ds, "status"), "updatedNumberScheduled",
	    json_integer(3));
	assert_int_equal(cli_rollout_status_msg(ds, 0, &msg, &done), 0);
	assert_string_equal(msg, "Waiting for daemon set \"agent\" rollout to finish: "
	    "2 of 3 updated pods are available...\n");
	free(msg);
	json_object_set_new(json_object_get(ds, "status"), "numberAvailable", json_integer(3));
	assert_int_equal(cli_rollout_status_msg(ds, 0, &msg, &done), 0);
	assert_string_equal(msg, "daemon set \"agent\" successfully rolled out\n");
	assert_true(done);
	free(msg);
	json_object_set_new(obj_metadata(ds), "generation", json_integer(4));
	assert_int_equal(cli_rollout_status_msg(ds, 0, &msg, &done), 0);
	assert_string_equal(msg, "Waiting for daemon set spec update to be observed...\n");
	free(msg);
	json_object_set_new(obj_get_path(ds, "spec.updateStrategy"), "type",
	    json_string("OnDelete"));
	assert_int_equal(cli_rollout_status_msg(ds, 0, &msg, &done), -1);
	free(msg);
	json_decref(ds);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_pod_per_node),
		cmocka_unit_test(test_node_selector_and_misscheduled),
		cmocka_unit_test(test_taints),
		cmocka_unit_test(test_excess_and_failed_pods),
		cmocka_unit_test(test_rolling_update_max_unavailable),
		cmocka_unit_test(test_rolling_update_waits_for_manage),
		cmocka_unit_test(test_rolling_update_with_surge),
		cmocka_unit_test(test_on_delete_keeps_old_pods),
		cmocka_unit_test(test_adopt_and_release),
		cmocka_unit_test(test_status_min_ready_and_no_rewrite),
		cmocka_unit_test(test_deleting_daemonset_does_nothing),
		cmocka_unit_test(test_hash_follows_template),
		cmocka_unit_test(test_controller_revisions),
		cmocka_unit_test(test_rollout_status_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
