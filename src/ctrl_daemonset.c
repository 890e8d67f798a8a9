/* ctrl_daemonset.c — the DaemonSet controller (kube-controller-manager's
 * daemon controller): one pod per eligible Node, created with spec.nodeName
 * set, replaced by a rolling update (maxUnavailable / maxSurge) or on
 * delete; ControllerRevisions and status. ds_decide() is the pure decision
 * over the Node list; the rest watches DaemonSets, pods and Nodes and
 * applies it through api.h. Started by server.c. */
#include "ctrl.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DS_COMPONENT "daemonset-controller"
#define HASH_LABEL "controller-revision-hash"
#define GEN_LABEL "pod-template-generation"

/* ---- small helpers ------------------------------------------------------ */

static int64_t
created_s(const json_t *obj)
{
	time_t t;
	const char *s = json_string_value(obj_get_path(obj, "metadata.creationTimestamp"));
	return s && time_parse_rfc3339(s, &t) == 0 ? (int64_t)t : 0;
}

static bool
is_terminal(const json_t *pod)
{
	const char *phase = obj_str(json_object_get(pod, "status"), "phase");
	return !strcmp(phase, "Failed") || !strcmp(phase, "Succeeded");
}

/* podByCreationTimestampAndPhase: oldest first, then by name. */
static int
cmp_pod_age(const void *pa, const void *pb)
{
	const json_t *a = *(const json_t *const *)pa, *b = *(const json_t *const *)pb;
	int64_t ta = created_s(a), tb = created_s(b);
	if (ta != tb)
		return ta < tb ? -1 : 1;
	return strcmp(obj_name(a), obj_name(b));
}

/* ---- which nodes run a daemon pod --------------------------------------- */

/* The tolerations every daemon pod gets (AddOrUpdateDaemonPodTolerations):
 * a DaemonSet keeps running on nodes that are not ready, unreachable,
 * under pressure or cordoned. */
static const struct { const char *key, *effect; } daemon_tolerations[] = {
	{ "node.kubernetes.io/not-ready", "NoExecute" },
	{ "node.kubernetes.io/unreachable", "NoExecute" },
	{ "node.kubernetes.io/disk-pressure", "NoSchedule" },
	{ "node.kubernetes.io/memory-pressure", "NoSchedule" },
	{ "node.kubernetes.io/pid-pressure", "NoSchedule" },
	{ "node.kubernetes.io/unschedulable", "NoSchedule" },
};

static bool
toleration_matches(const json_t *tol, const char *key, const char *value, const char *effect)
{
	const char *teffect = obj_str(tol, "effect"), *tkey = obj_str(tol, "key");
	const char *op = obj_str(tol, "operator");
	if (*teffect && strcmp(teffect, effect))
		return false;
	if (!*tkey)
		return !strcmp(op, "Exists");
	if (strcmp(tkey, key))
		return false;
	return !strcmp(op, "Exists") || !strcmp(obj_str(tol, "value"), value);
}

static bool
tolerated(const json_t *tolerations, const json_t *taint)
{
	const char *key = obj_str(taint, "key"), *effect = obj_str(taint, "effect");
	size_t i;
	json_t *t;
	for (i = 0; i < ARRAY_SIZE(daemon_tolerations); i++)
		if (!strcmp(key, daemon_tolerations[i].key) &&
		    !strcmp(effect, daemon_tolerations[i].effect))
			return true;
	json_array_foreach(tolerations, i, t)
		if (toleration_matches(t, key, obj_str(taint, "value"), effect))
			return true;
	return false;
}

void
ds_node_should_run(const json_t *ds, const json_t *node, bool *run, bool *keep)
{
	const json_t *spec = obj_get_path(ds, "spec.template.spec");
	const char *want = obj_str(spec, "nodeName");
	const json_t *sel = json_object_get(spec, "nodeSelector");
	const json_t *labels = obj_labels(node);
	const char *k;
	json_t *v;
	*run = *keep = false;
	if (*want && strcmp(want, obj_name(node)))
		return;
	json_object_foreach((json_t *)sel, k, v)
		if (!json_equal(v, json_object_get(labels, k)))
			return;
	*run = *keep = true;
	size_t i;
	json_t *taint;
	json_array_foreach(obj_get_path(node, "spec.taints"), i, taint) {
		const char *effect = obj_str(taint, "effect");
		bool hard = !strcmp(effect, "NoSchedule") || !strcmp(effect, "NoExecute");
		if (!hard || tolerated(json_object_get(spec, "tolerations"), taint))
			continue;
		*run = false;
		if (!strcmp(effect, "NoExecute"))
			*keep = false;
	}
}

/* ---- the daemon pod ----------------------------------------------------- */

void
ds_template_hash(const json_t *ds, char out[16])
{
	const json_t *cc = obj_get_path(ds, "status.collisionCount");
	deploy_template_hash(obj_get_path(ds, "spec.template"),
	    json_is_integer(cc) ? json_integer_value(cc) : -1, out);
}

static void
add_daemon_tolerations(json_t *spec)
{
	json_t *tols = json_object_get(spec, "tolerations");
	if (!json_is_array(tols)) {
		tols = json_array();
		json_object_set_new(spec, "tolerations", tols);
	}
	for (size_t i = 0; i < ARRAY_SIZE(daemon_tolerations); i++) {
		json_t *t = json_pack("{s:s, s:s, s:s}", "key", daemon_tolerations[i].key,
		    "operator", "Exists", "effect", daemon_tolerations[i].effect);
		size_t j;
		json_t *have;
		bool found = false;
		json_array_foreach(tols, j, have)
			found = found || json_equal(have, t);
		if (found)
			json_decref(t);
		else
			json_array_append_new(tols, t);
	}
}

json_t *
ds_pod_for_node(const json_t *ds, const char *node, const char *hash)
{
	const json_t *tmpl = obj_get_path(ds, "spec.template");
	const json_t *tmeta = json_object_get(tmpl, "metadata");
	char prefix[59];	/* SimpleNameGenerator keeps 58 characters of the base */
	snprintf(prefix, sizeof prefix, "%s-", obj_name(ds));
	json_t *meta = json_pack("{s:s, s:s, s:[o]}", "generateName", prefix,
	    "namespace", obj_namespace(ds), "ownerReferences", obj_new_controller_ref(ds));
	static const char *const copied[] = { "labels", "annotations", "finalizers" };
	for (size_t i = 0; i < ARRAY_SIZE(copied); i++) {
		json_t *v = json_object_get(tmeta, copied[i]);
		if (v)
			json_object_set_new(meta, copied[i], json_deep_copy(v));
	}
	json_t *labels = json_object_get(meta, "labels");
	if (!labels) {
		labels = json_object();
		json_object_set_new(meta, "labels", labels);
	}
	json_object_set_new(labels, HASH_LABEL, json_string(hash));
	char gen[24];
	snprintf(gen, sizeof gen, "%lld",
	    (long long)json_integer_value(obj_get_path(ds, "metadata.generation")));
	json_object_set_new(labels, GEN_LABEL, json_string(gen));
	json_t *spec = json_object_get(tmpl, "spec");
	spec = spec ? json_deep_copy(spec) : json_object();
	json_object_set_new(spec, "nodeName", json_string(node));
	add_daemon_tolerations(spec);
	return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Pod",
	    "metadata", meta, "spec", spec);
}

/* ---- the decision ------------------------------------------------------- */

/* One Node and the daemon pods on it (claimed, not terminal-and-deleted). */
struct dnode {
	const json_t *node;
	bool run, keep;
	const json_t **pods;
	size_t n;
};

struct dsync {
	const json_t *ds;
	char hash[16];
	int64_t now_ms, min_ready_s;
	struct dnode *nodes;
	size_t nnodes;
	struct ds_actions *out;
	const json_t **revs;	/* ControllerRevisions it owns */
	size_t nrevs;
	const json_t *current;	/* the one of the current template, if stored */
	json_t *live;		/* object: hashes the claimed pods carry */
};

static void
push(struct ds_actions *a, enum ds_op op, json_t *obj, const char *why)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 8;
		a->v = xrealloc(a->v, a->cap * sizeof *a->v);
	}
	a->v[a->n++] = (struct ds_action){ .op = op, .obj = obj, .why = why };
}

static void
delete_pod(struct dsync *s, const json_t *pod, const char *why)
{
	push(s->out, DS_DELETE_POD, json_deep_copy(pod), why);
}

static bool
pod_updated(const struct dsync *s, const json_t *pod)
{
	return !strcmp(obj_str(obj_labels(pod), HASH_LABEL), s->hash);
}

/* Available, or else the time it becomes available is a requeue candidate. */
static bool
available(struct dsync *s, const json_t *pod)
{
	int64_t since;
	if (!obj_pod_ready(pod, &since))
		return false;
	if (obj_pod_available(pod, s->min_ready_s, s->now_ms))
		return true;
	int64_t wait = (since + s->min_ready_s) * 1000 + 1 - s->now_ms;
	if (wait > 0 && (s->out->requeue_ms == 0 || wait < s->out->requeue_ms))
		s->out->requeue_ms = wait;
	return false;
}

static int
cmp_node_name(const void *a, const void *b)
{
	return strcmp(obj_name(((const struct dnode *)a)->node),
	    obj_name(((const struct dnode *)b)->node));
}

static int
cmp_name_node(const void *key, const void *elem)
{
	return strcmp(key, obj_name(((const struct dnode *)elem)->node));
}

static struct dnode *
node_named(struct dsync *s, const char *name)
{
	return bsearch(name, s->nodes, s->nnodes, sizeof *s->nodes, cmp_name_node);
}

static void
node_add_pod(struct dnode *d, const json_t *pod, size_t cap)
{
	if (!d->pods)
		d->pods = xcalloc(cap ? cap : 1, sizeof *d->pods);
	d->pods[d->n++] = pod;
}

/* ClaimPods, then the pods grouped by node (getNodesToDaemonPods). Adopted
 * pods are represented by their new copies, kept alive in `adopted`. */
static void
claim_pods(struct dsync *s, const struct selector *sel, const json_t *pods, json_t *adopted)
{
	size_t i, total = json_array_size(pods);
	json_t *pod;
	json_array_foreach(pods, i, pod) {
		if (strcmp(obj_namespace(pod), obj_namespace(s->ds)))
			continue;
		const json_t *ref = obj_controller_ref(pod);
		bool match = selector_matches(sel, obj_labels(pod));
		const json_t *owned = NULL;
		if (ref && strcmp(obj_str(ref, "uid"), obj_uid(s->ds)))
			continue;
		if (ref && match)
			owned = pod;
		else if (ref) {
			push(s->out, DS_RELEASE_POD, obj_claim(pod, s->ds, false), NULL);
		} else if (match && obj_pod_active(pod)) {
			json_t *p = obj_claim(pod, s->ds, true);
			json_array_append_new(adopted, p);
			push(s->out, DS_ADOPT_POD, json_incref(p), NULL);
			owned = p;
		}
		if (!owned)
			continue;
		json_object_set_new(s->live, obj_str(obj_labels(owned), HASH_LABEL), json_true());
		if (is_terminal(owned) && obj_is_deleting(owned))
			continue;
		struct dnode *d = node_named(s, obj_str(json_object_get(owned, "spec"), "nodeName"));
		if (d)
			node_add_pod(d, owned, total);
	}
	for (size_t j = 0; j < s->nnodes; j++)
		if (s->nodes[j].n > 1)
			qsort(s->nodes[j].pods, s->nodes[j].n, sizeof *s->nodes[j].pods,
			    cmp_pod_age);
}

static bool
allows_surge(const struct dsync *s)
{
	const json_t *ru = obj_get_path(s->ds, "spec.updateStrategy.rollingUpdate");
	const json_t *ms = json_object_get(ru, "maxSurge");
	const char *str = json_string_value(ms);
	return strcmp(obj_str(obj_get_path(s->ds, "spec.updateStrategy"), "type"),
	    "OnDelete") && ((json_is_integer(ms) && json_integer_value(ms) > 0) ||
	    (str && atoi(str) > 0));
}

/* podsShouldBeOnNode for one node: returns true when it wrote something. */
static bool
manage_node(struct dsync *s, struct dnode *d)
{
	size_t before = s->out->n, nrun = 0;
	const json_t **running = xcalloc(d->n + 1, sizeof *running);
	for (size_t i = 0; i < d->n; i++) {
		const json_t *p = d->pods[i];
		if (obj_is_deleting(p))
			continue;
		if (!d->keep)
			delete_pod(s, p, "misscheduled");
		else if (is_terminal(p))
			delete_pod(s, p, "failed");
		else
			running[nrun++] = p;
	}
	if (d->run && nrun == 0)
		push(s->out, DS_CREATE_POD, ds_pod_for_node(s->ds, obj_name(d->node), s->hash),
		    NULL);
	else if (nrun > 1 && !allows_surge(s)) {
		for (size_t i = 1; i < nrun; i++)	/* keep the oldest */
			delete_pod(s, running[i], "excess");
	} else if (nrun > 1) {
		bool have_new = false, have_old = false;	/* keep the oldest of each */
		for (size_t i = 0; i < nrun; i++) {
			bool *have = pod_updated(s, running[i]) ? &have_new : &have_old;
			if (*have)
				delete_pod(s, running[i], "excess");
			*have = true;
		}
	}
	free(running);
	return s->out->n > before;
}

/* intstr.GetScaledValueFromIntOrPercent(v, total, roundUp=true). */
static int
scaled_up(const json_t *v, int total)
{
	if (json_is_integer(v))
		return (int)json_integer_value(v);
	const char *str = json_string_value(v);
	if (!str)
		return 0;
	int pct = atoi(str);
	return (pct * total + 99) / 100;
}

/* findUpdatedPodsOnNode: false when the node has more than one new or old
 * pod (manage cleans it up first). */
static bool
updated_pods_on(const struct dsync *s, const struct dnode *d, const json_t **newp,
    const json_t **oldp)
{
	*newp = *oldp = NULL;
	for (size_t i = 0; i < d->n; i++) {
		const json_t *p = d->pods[i];
		if (obj_is_deleting(p))
			continue;
		const json_t **slot = pod_updated(s, p) ? newp : oldp;
		if (*slot)
			return false;
		*slot = p;
	}
	return true;
}

/* maxSurge 0: delete old pods, at most maxUnavailable nodes down at once;
 * an old pod that is not available anyway may always go. */
static void
rolling_unavailable(struct dsync *s, int max_unavailable)
{
	int unavailable = 0;
	const json_t **replace = xcalloc(s->nnodes + 1, sizeof *replace);
	const json_t **cand = xcalloc(s->nnodes + 1, sizeof *cand);
	size_t nreplace = 0, ncand = 0;
	for (size_t i = 0; i < s->nnodes; i++) {
		struct dnode *d = &s->nodes[i];
		const json_t *np, *op;
		if (!d->run)
			continue;
		if (!updated_pods_on(s, d, &np, &op) || (!np) == (!op))
			unavailable++;
		else if (np) {
			if (!available(s, np))
				unavailable++;
		} else if (!available(s, op))
			replace[nreplace++] = op;
		else if (unavailable < max_unavailable)
			cand[ncand++] = op;
	}
	int room = max_unavailable - unavailable;
	for (size_t i = 0; i < nreplace; i++)
		delete_pod(s, replace[i], "update");
	for (size_t i = 0; room > 0 && i < ncand; i++, room--)
		delete_pod(s, cand[i], "update");
	free(replace);
	free(cand);
}

/* maxSurge > 0: start the new pod next to the old one on at most maxSurge
 * nodes at once; delete the old pod once the new one is available. */
static void
rolling_surge(struct dsync *s, int max_surge)
{
	int surging = 0;
	const struct dnode **allowed = xcalloc(s->nnodes + 1, sizeof *allowed);
	const struct dnode **cand = xcalloc(s->nnodes + 1, sizeof *cand);
	size_t nallowed = 0, ncand = 0;
	for (size_t i = 0; i < s->nnodes; i++) {
		struct dnode *d = &s->nodes[i];
		const json_t *np, *op;
		if (!d->run)
			continue;
		if (!updated_pods_on(s, d, &np, &op)) {
			surging++;
			continue;
		}
		if (!op)
			continue;	/* manage creates the new pod */
		if (!np) {
			if (!available(s, op))
				allowed[nallowed++] = d;
			else if (surging < max_surge)
				cand[ncand++] = d;
		} else if (!available(s, np))
			surging++;
		else
			delete_pod(s, op, "update");
	}
	int room = max_surge - surging;
	for (size_t i = 0; i < nallowed + ncand; i++) {
		if (i >= nallowed && room-- <= 0)
			break;
		const struct dnode *d = i < nallowed ? allowed[i] : cand[i - nallowed];
		push(s->out, DS_CREATE_POD, ds_pod_for_node(s->ds, obj_name(d->node), s->hash),
		    "update");
	}
	free(allowed);
	free(cand);
}

static void
rolling_update(struct dsync *s)
{
	const json_t *ru = obj_get_path(s->ds, "spec.updateStrategy.rollingUpdate");
	int desired = 0;
	for (size_t i = 0; i < s->nnodes; i++)
		desired += s->nodes[i].run;
	int surge = scaled_up(json_object_get(ru, "maxSurge"), desired);
	const json_t *mu = json_object_get(ru, "maxUnavailable");
	int unavailable = mu ? scaled_up(mu, desired) : 1;
	if (desired > 0 && surge == 0 && unavailable == 0)
		unavailable = 1;
	if (surge == 0)
		rolling_unavailable(s, unavailable);
	else
		rolling_surge(s, surge);
}

static void
put_count(json_t *st, const char *key, int n, bool always)
{
	if (n || always)
		json_object_set_new(st, key, json_integer(n));
}

/* updateDaemonSetStatus: counted per node from its oldest daemon pod. */
static void
update_status(struct dsync *s)
{
	int desired = 0, current = 0, ready = 0, avail = 0, updated = 0, mis = 0;
	for (size_t i = 0; i < s->nnodes; i++) {
		struct dnode *d = &s->nodes[i];
		if (!d->run) {
			mis += d->n > 0;
			continue;
		}
		desired++;
		if (d->n == 0)
			continue;
		current++;
		const json_t *p = d->pods[0];
		if (obj_pod_ready(p, NULL)) {
			ready++;
			avail += available(s, p);
		}
		updated += pod_updated(s, p);
	}
	json_t *st = json_object();
	put_count(st, "currentNumberScheduled", current, true);
	put_count(st, "numberMisscheduled", mis, true);
	put_count(st, "desiredNumberScheduled", desired, true);
	put_count(st, "numberReady", ready, true);
	json_t *gen = obj_get_path(s->ds, "metadata.generation");
	if (json_integer_value(gen) > 0)
		json_object_set(st, "observedGeneration", gen);
	put_count(st, "updatedNumberScheduled", updated, false);
	put_count(st, "numberAvailable", avail, false);
	put_count(st, "numberUnavailable", desired - avail, false);
	static const char *const kept[] = { "collisionCount", "conditions" };
	const json_t *old = json_object_get(s->ds, "status");
	for (size_t i = 0; i < ARRAY_SIZE(kept); i++)
		if (json_object_get(old, kept[i]))
			json_object_set(st, kept[i], json_object_get(old, kept[i]));
	if (json_equal(st, json_object_get(s->ds, "status"))) {
		json_decref(st);
		return;
	}
	json_t *copy = json_deep_copy(s->ds);
	json_object_set_new(copy, "status", st);
	push(s->out, DS_UPDATE_STATUS, copy, NULL);
}

/* ---- history (ControllerRevisions) -------------------------------------- */

static int64_t
rev_number(const json_t *rev)
{
	return json_integer_value(json_object_get(rev, "revision"));
}

static int
cmp_revision(const void *pa, const void *pb)
{
	int64_t a = rev_number(*(const json_t *const *)pa);
	int64_t b = rev_number(*(const json_t *const *)pb);
	return a < b ? -1 : a > b;
}

/* getPatch: what a revision stores, the template to replace. */
static json_t *
revision_data(const json_t *ds)
{
	json_t *t = json_deep_copy(obj_get_path(ds, "spec.template"));
	json_object_set_new(t, "$patch", json_string("replace"));
	return json_pack("{s:{s:o}}", "spec", "template", t);
}

static json_t *
new_revision(const struct dsync *s, const char *name, json_t *data, int64_t number)
{
	json_t *labels = json_deep_copy(obj_get_path(s->ds, "spec.template.metadata.labels"));
	if (!labels)
		labels = json_object();
	json_object_set_new(labels, HASH_LABEL, json_string(s->hash));
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:[o]}, s:o, s:I}",
	    "apiVersion", "apps/v1", "kind", "ControllerRevision",
	    "metadata", "name", name, "namespace", obj_namespace(s->ds), "labels", labels,
	    "ownerReferences", obj_new_controller_ref(s->ds),
	    "data", data, "revision", (json_int_t)number);
}

/* constructHistory: returns false when NAME-HASH belongs to another
 * template (collisionCount goes up, nothing else is done this sync). */
static bool
sync_history(struct dsync *s, const json_t *revisions)
{
	json_t *data = revision_data(s->ds), *rev;
	char *name = xasprintf("%s-%s", obj_name(s->ds), s->hash);
	const json_t *taken = NULL;
	int64_t max = 0;
	size_t i;
	s->revs = xcalloc(json_array_size(revisions) + 1, sizeof *s->revs);
	json_array_foreach(revisions, i, rev) {
		const json_t *ref = obj_controller_ref(rev);
		if (!strcmp(obj_name(rev), name))
			taken = rev;
		if (!ref || strcmp(obj_str(ref, "uid"), obj_uid(s->ds)) || obj_is_deleting(rev))
			continue;
		s->revs[s->nrevs++] = rev;
		max = rev_number(rev) > max ? rev_number(rev) : max;
		if (json_equal(json_object_get(rev, "data"), data) &&
		    (!s->current || rev_number(rev) > rev_number(s->current)))
			s->current = rev;
	}
	bool ok = true;
	if (s->current && rev_number(s->current) < max) {
		json_t *c = json_deep_copy(s->current);
		json_object_set_new(c, "revision", json_integer(max + 1));
		push(s->out, DS_UPDATE_REVISION, c, NULL);
	} else if (!s->current && taken) {
		json_t *copy = json_deep_copy(s->ds), *st = json_object_get(copy, "status");
		if (!json_is_object(st)) {
			st = json_object();
			json_object_set_new(copy, "status", st);
		}
		json_object_set_new(st, "collisionCount", json_integer(1 + json_integer_value(
		    obj_get_path(s->ds, "status.collisionCount"))));
		push(s->out, DS_UPDATE_STATUS, copy, NULL);
		ok = false;
	} else if (!s->current) {
		push(s->out, DS_CREATE_REVISION, new_revision(s, name, json_incref(data), max + 1),
		    NULL);
	}
	json_decref(data);
	free(name);
	return ok;
}

/* cleanupHistory: old revisions no claimed pod carries, oldest first,
 * until at most revisionHistoryLimit old ones are left. */
static void
cleanup_history(struct dsync *s)
{
	const json_t *lim = obj_get_path(s->ds, "spec.revisionHistoryLimit");
	int64_t limit = json_is_integer(lim) ? json_integer_value(lim) : 10;
	int64_t kill = (int64_t)s->nrevs - (s->current ? 1 : 0) - limit;
	if (kill <= 0)
		return;
	qsort(s->revs, s->nrevs, sizeof *s->revs, cmp_revision);
	for (size_t i = 0; i < s->nrevs && kill > 0; i++) {
		const json_t *r = s->revs[i];
		if (r == s->current || json_object_get(s->live, obj_str(obj_labels(r), HASH_LABEL)))
			continue;
		push(s->out, DS_DELETE_REVISION, json_deep_copy(r), NULL);
		kill--;
	}
}

void
ds_actions_free(struct ds_actions *a)
{
	for (size_t i = 0; i < a->n; i++)
		json_decref(a->v[i].obj);
	free(a->v);
	memset(a, 0, sizeof *a);
}

int
ds_decide(const json_t *ds, const json_t *nodes, const json_t *pods,
    const json_t *revisions, int64_t now_ms, struct ds_actions *out)
{
	struct selector *sel = NULL;
	char *err = NULL;
	memset(out, 0, sizeof *out);
	if (selector_from_json(obj_get_path(ds, "spec.selector"), &sel, &err) < 0) {
		free(err);
		return -EINVAL;
	}
	if (obj_is_deleting(ds)) {	/* the garbage collector takes the pods */
		selector_free(sel);
		return 0;
	}
	struct dsync s = { .ds = ds, .now_ms = now_ms, .out = out, .live = json_object(),
		.min_ready_s = json_integer_value(obj_get_path(ds, "spec.minReadySeconds")) };
	ds_template_hash(ds, s.hash);
	if (!sync_history(&s, revisions)) {
		selector_free(sel);
		goto out;
	}
	s.nodes = xcalloc(json_array_size(nodes) + 1, sizeof *s.nodes);
	size_t i;
	json_t *node;
	json_array_foreach(nodes, i, node) {
		struct dnode *d = &s.nodes[s.nnodes++];
		d->node = node;
		ds_node_should_run(ds, node, &d->run, &d->keep);
	}
	qsort(s.nodes, s.nnodes, sizeof *s.nodes, cmp_node_name);
	json_t *adopted = json_array();
	claim_pods(&s, sel, pods, adopted);
	selector_free(sel);
	bool wrote = false;
	for (i = 0; i < s.nnodes; i++)
		wrote = manage_node(&s, &s.nodes[i]) || wrote;
	/* Kubernetes waits for manage's writes to be observed (expectations)
	 * before a rolling-update step; the next sync sees them. */
	if (!wrote && !strcmp(obj_str(obj_get_path(ds, "spec.updateStrategy"), "type"),
	    "RollingUpdate"))
		rolling_update(&s);
	cleanup_history(&s);
	update_status(&s);
	for (i = 0; i < s.nnodes; i++)
		free(s.nodes[i].pods);
	json_decref(adopted);
out:
	free(s.nodes);
	free(s.revs);
	json_decref(s.live);
	return 0;
}

/* ---- the adapter on the controller core ---------------------------------- */

static const struct {
	enum ctrl_op op;
	const char *api_version, *kind;
} ds_writes[] = {
	[DS_ADOPT_POD] = { CTRL_UPDATE, "v1", "Pod" },
	[DS_RELEASE_POD] = { CTRL_UPDATE, "v1", "Pod" },
	[DS_CREATE_POD] = { CTRL_CREATE, "v1", "Pod" },
	[DS_DELETE_POD] = { CTRL_DELETE, "v1", "Pod" },
	[DS_UPDATE_STATUS] = { CTRL_STATUS, "apps/v1", "DaemonSet" },
	[DS_CREATE_REVISION] = { CTRL_CREATE, "apps/v1", "ControllerRevision" },
	[DS_UPDATE_REVISION] = { CTRL_UPDATE, "apps/v1", "ControllerRevision" },
	[DS_DELETE_REVISION] = { CTRL_DELETE, "apps/v1", "ControllerRevision" },
};

static int
ds_ctrl_decide(struct ctrl *c, const json_t *ds, int64_t now_ms, struct ctrl_writes *w)
{
	struct store *st = ctrl_store(c);
	const char *ns = obj_namespace(ds);
	json_t *nodes = NULL, *pods = NULL, *revs = NULL;
	struct ds_actions a = { 0 };
	if (store_list(st, "nodes", NULL, &nodes, NULL) == 0 &&
	    store_list(st, "pods", ns, &pods, NULL) == 0 &&
	    store_list(st, "apps/controllerrevisions", ns, &revs, NULL) == 0 &&
	    ds_decide(ds, nodes, pods, revs, now_ms, &a) == 0) {
		for (size_t i = 0; i < a.n; i++) {
			enum ds_op op = a.v[i].op;
			ctrl_writes_push(w, ds_writes[op].op, kind_find_gvk(ds_writes[op].api_version,
			    ds_writes[op].kind), json_incref(a.v[i].obj), op);
		}
		w->requeue_ms = a.requeue_ms;
	}
	ds_actions_free(&a);
	json_decref(nodes);
	json_decref(pods);
	json_decref(revs);
	return 0;
}

/* Events for daemon pod creates and deletes. */
static void
ds_result(struct ctrl *c, const json_t *ds, const struct ctrl_write *w, const json_t *made,
    const char *err)
{
	if (w->tag == DS_CREATE_POD || w->tag == DS_DELETE_POD)
		ctrl_record_pod_write(c, ds, w, made, err);
}

/* A Node added, relabelled, tainted or removed: every DaemonSet looks again
 * (a sync that changes nothing writes nothing). */
static void
ds_on_node(struct ctrl *c, enum store_event ev, const json_t *node)
{
	(void)ev;
	(void)node;
	ctrl_enqueue_selecting(c, NULL, NULL);
}

static const struct ctrl_desc ds_desc = {
	.name = "daemonset", .component = DS_COMPONENT,
	.api_version = "apps/v1", .kind = "DaemonSet", .res = "apps/daemonsets",
	.sources = {
		{ "apps/daemonsets", NULL },
		{ "pods", ctrl_enqueue_pod_owner },
		{ "nodes", ds_on_node },
	},
	.decide = ds_ctrl_decide, .result = ds_result,
};

int
ctrl_daemonset_start(struct api *api, struct ctrl **out)
{
	return ctrl_start(api, &ds_desc, NULL, out);
}
