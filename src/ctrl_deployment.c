/* ctrl_deployment.c — the Deployment controller (kube-controller-manager's
 * deployment controller): ReplicaSets named NAME-HASH per pod template,
 * revisions, RollingUpdate and Recreate, scaling (proportional during a
 * rollout), pause, history cleanup, and the status with its Available and
 * Progressing conditions. deploy_decide() simulates one sync on copies and
 * returns the writes in order; the rest watches the store and applies them.
 * Started by server.c. */
#include "ctrl.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REV_ANN "deployment.kubernetes.io/revision"
#define REV_HIST_ANN "deployment.kubernetes.io/revision-history"
#define DESIRED_ANN "deployment.kubernetes.io/desired-replicas"
#define MAX_ANN "deployment.kubernetes.io/max-replicas"
#define HASH_LABEL "pod-template-hash"
#define DC_COMPONENT "deployment-controller"
#define REV_HISTORY_MAX_CHARS 2000
#define NO_LIMIT 2147483647	/* math.MaxInt32: "no deadline", "no history limit" */

/* ---- small accessors ---------------------------------------------------- */

static bool
set_annotation(json_t *obj, const char *key, const char *val)
{
	const char *cur = obj_annotation(obj, key);
	if (cur && strcmp(cur, val) == 0)
		return false;
	json_object_set_new(obj_annotations(obj), key, json_string(val));
	return true;
}

static int64_t
revision_of(const json_t *rs)
{
	const char *s = obj_annotation(rs, REV_ANN);
	char *end;
	if (!s || !*s)
		return 0;
	long long v = strtoll(s, &end, 10);
	return *end ? 0 : v;
}

/* ---- strategy arithmetic ------------------------------------------------ */

static int
scaled_value(const json_t *v, int total, bool round_up)
{
	if (json_is_integer(v))
		return (int)json_integer_value(v);
	const char *s = json_string_value(v);
	if (!s)
		return 0;
	long long pct = strtoll(s, NULL, 10);
	long long x = pct * total;
	return (int)(round_up ? (x + 99) / 100 : x / 100);
}

static bool
is_rolling(const json_t *d)
{
	return strcmp(obj_str(obj_get_path(d, "spec.strategy"), "type"), "Recreate") != 0;
}

void
deploy_fenceposts(const json_t *d, int *surge, int *unavailable)
{
	const json_t *ru = obj_get_path(d, "spec.strategy.rollingUpdate");
	int desired = (int)obj_int_at(d, "spec.replicas", 0);
	*surge = scaled_value(json_object_get(ru, "maxSurge"), desired, true);
	*unavailable = scaled_value(json_object_get(ru, "maxUnavailable"), desired, false);
	if (*surge == 0 && *unavailable == 0)
		*unavailable = 1;
}

static int
max_surge(const json_t *d)
{
	int s, u;
	if (!is_rolling(d))
		return 0;
	deploy_fenceposts(d, &s, &u);
	return s;
}

static int
max_unavailable(const json_t *d)
{
	int s, u, want = (int)obj_int_at(d, "spec.replicas", 0);
	if (!is_rolling(d) || want == 0)
		return 0;
	deploy_fenceposts(d, &s, &u);
	return u > want ? want : u;
}

/* ---- template hash ------------------------------------------------------ */

/* Both hash and compare the canonical template (pod_template_canonical), as
 * Kubernetes hashes the decoded, defaulted one: a template kubectl sends back
 * with `resources: {}` is the revision it came from. */

void
deploy_template_hash(const json_t *tmpl, int64_t collision_count, char out[16])
{
	static const char alphanums[] = "bcdfghjklmnpqrstvwxz2456789";
	json_t *canon = pod_template_canonical(tmpl);
	char *text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(canon);
	uint32_t h = 2166136261u;
	for (const char *p = text ? text : ""; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	if (collision_count >= 0)
		for (int i = 0; i < 4; i++)
			h = (h ^ (uint32_t)((collision_count >> (8 * i)) & 0xff)) * 16777619u;
	free(text);
	char dec[16];
	snprintf(dec, sizeof dec, "%u", h);
	size_t i;
	for (i = 0; dec[i]; i++)
		out[i] = alphanums[(unsigned char)dec[i] % (sizeof alphanums - 1)];
	out[i] = '\0';
}

/* EqualIgnoreHash: templates equal but for the pod-template-hash label. */
static bool
template_equal(const json_t *a, const json_t *b)
{
	json_t *x = pod_template_canonical(a), *y = pod_template_canonical(b);
	json_t *pair[2] = { x, y };
	for (int i = 0; i < 2; i++) {
		json_t *labels = obj_get_path(pair[i], "metadata.labels");
		json_object_del(labels, HASH_LABEL);
		if (labels && json_object_size(labels) == 0)
			json_object_del(json_object_get(pair[i], "metadata"), "labels");
		json_t *meta = json_object_get(pair[i], "metadata");
		if (meta && json_object_size(meta) == 0)
			json_object_del(pair[i], "metadata");
	}
	bool eq = json_equal(x, y);
	json_decref(x);
	json_decref(y);
	return eq;
}

/* ---- lists of ReplicaSets ----------------------------------------------- */

struct rslist {
	json_t **v;
	size_t n;
};

static void
rsl_add(struct rslist *l, json_t *rs)
{
	if (!rs)
		return;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n++] = rs;
}

static struct rslist
rsl_copy(const struct rslist *l, json_t *extra)
{
	struct rslist c = { NULL, 0 };
	for (size_t i = 0; i < l->n; i++)
		rsl_add(&c, l->v[i]);
	rsl_add(&c, extra);
	return c;
}

static void
rsl_free(struct rslist *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int
cmp_created(const void *pa, const void *pb)
{
	const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	int64_t ta = obj_time_s(obj_get_path(a, "metadata.creationTimestamp"));
	int64_t tb = obj_time_s(obj_get_path(b, "metadata.creationTimestamp"));
	if (ta != tb)
		return ta < tb ? -1 : 1;
	return strcmp(obj_name(a), obj_name(b));
}

static int
cmp_revision(const void *pa, const void *pb)
{
	const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
	int64_t ra = revision_of(a), rb = revision_of(b);
	if (ra != rb)
		return ra < rb ? -1 : 1;
	return cmp_created(pa, pb);
}

/* Larger first; same size: newer first. */
static int
cmp_size_newer(const void *pa, const void *pb)
{
	int a = (int)obj_int_at(*(json_t *const *)pa, "spec.replicas", 0);
	int b = (int)obj_int_at(*(json_t *const *)pb, "spec.replicas", 0);
	if (a != b)
		return a > b ? -1 : 1;
	return -cmp_created(pa, pb);
}

/* Larger first; same size: older first. */
static int
cmp_size_older(const void *pa, const void *pb)
{
	int a = (int)obj_int_at(*(json_t *const *)pa, "spec.replicas", 0);
	int b = (int)obj_int_at(*(json_t *const *)pb, "spec.replicas", 0);
	if (a != b)
		return a > b ? -1 : 1;
	return cmp_created(pa, pb);
}

static void
rsl_sort(struct rslist *l, int (*cmp)(const void *, const void *))
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof *l->v, cmp);
}

static struct rslist
rsl_active(const struct rslist *l)
{
	struct rslist c = { NULL, 0 };
	for (size_t i = 0; i < l->n; i++)
		if ((int)obj_int_at(l->v[i], "spec.replicas", 0) > 0)
			rsl_add(&c, l->v[i]);
	return c;
}

static int
rsl_sum(const struct rslist *l, const char *path)
{
	int n = 0;
	for (size_t i = 0; i < l->n; i++)
		n += (int)obj_int_at(l->v[i], path, 0);
	return n;
}

/* ---- the simulated sync ------------------------------------------------- */

struct dsync {
	json_t *d;		/* the Deployment as this sync leaves it */
	json_t *owned;		/* array: working copies of the ReplicaSets it owns */
	const json_t *ns_rses;
	const json_t *pods;
	int64_t now_ms;
	struct deploy_actions *out;
	json_t *last_ann, *last_status;	/* as last written (or read) */
	bool stop;
};

static void
push(struct dsync *s, enum deploy_op op, json_t *obj)
{
	struct deploy_actions *a = s->out;
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 8;
		a->v = xrealloc(a->v, a->cap * sizeof *a->v);
	}
	a->v[a->n++] = (struct deploy_action){ .op = op, .obj = obj };
}

static void V6_PRINTF(4, 5)
event(struct dsync *s, const char *type, const char *reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	push(s, DEPLOY_EVENT, NULL);
	struct deploy_action *act = &s->out->v[s->out->n - 1];
	act->type = type;
	act->reason = reason;
	act->message = xvasprintf(fmt, ap);
	va_end(ap);
}

/* Equal maps, absent counting as empty. */
static bool
same_map(const json_t *a, const json_t *b)
{
	if (!a || !b)
		return json_object_size(a) == 0 && json_object_size(b) == 0;
	return json_equal((json_t *)a, (json_t *)b);
}

/* UpdateStatus of the Deployment: its annotations and its status, each
 * written only when it differs from what was last written. */
static void
write_status(struct dsync *s)
{
	json_t *ann = obj_get_path(s->d, "metadata.annotations");
	if (!same_map(ann, s->last_ann)) {
		push(s, DEPLOY_UPDATE_META, json_deep_copy(s->d));
		json_decref(s->last_ann);
		s->last_ann = json_deep_copy(ann);
	}
	json_t *st = json_object_get(s->d, "status");
	if (!json_equal(st, s->last_status)) {
		push(s, DEPLOY_UPDATE_STATUS, json_deep_copy(s->d));
		json_decref(s->last_status);
		s->last_status = json_deep_copy(st);
	}
}

static int
replicas(const struct dsync *s)
{
	return (int)obj_int_at(s->d, "spec.replicas", 0);
}

static bool
has_deadline(const json_t *d)
{
	json_t *v = obj_get_path(d, "spec.progressDeadlineSeconds");
	return v && json_integer_value(v) != NO_LIMIT;
}

/* ---- conditions --------------------------------------------------------- */

static json_t *
status_of(json_t *d)
{
	return obj_child(d, "status");
}

static json_t *
new_cond(const char *type, const char *status, const char *reason, const char *msg,
    int64_t now_ms)
{
	json_t *ts = obj_time_json(now_ms);
	json_t *c = json_pack("{s:s, s:s, s:O, s:O, s:s, s:s}", "type", type, "status", status,
	    "lastUpdateTime", ts, "lastTransitionTime", ts, "reason", reason, "message", msg);
	json_decref(ts);
	return c;
}

/* ---- annotations of ReplicaSets ----------------------------------------- */

static bool
set_replicas_annotations(json_t *rs, int desired, int max)
{
	char a[16], b[16];
	snprintf(a, sizeof a, "%d", desired);
	snprintf(b, sizeof b, "%d", max);
	bool changed = set_annotation(rs, DESIRED_ANN, a);
	return set_annotation(rs, MAX_ANN, b) || changed;
}

static bool
skip_copy_annotation(const char *k)
{
	static const char *const skip[] = {
		"kubectl.kubernetes.io/last-applied-configuration", REV_ANN, REV_HIST_ANN,
		DESIRED_ANN, MAX_ANN, "deprecated.deployment.rollback.to",
	};
	for (size_t i = 0; i < ARRAY_SIZE(skip); i++)
		if (strcmp(k, skip[i]) == 0)
			return true;
	return false;
}

/* Appends old to the revision-history annotation, oldest dropped first to
 * stay within REV_HISTORY_MAX_CHARS. */
static void
push_revision_history(json_t *rs, const char *old)
{
	const char *hist = obj_annotation(rs, REV_HIST_ANN);
	if (!hist || !*hist) {
		set_annotation(rs, REV_HIST_ANN, old);
		return;
	}
	const char *start = hist;
	size_t total = strlen(hist) + strlen(old) + 1;
	while (total > REV_HISTORY_MAX_CHARS && start) {
		const char *comma = strchr(start, ',');
		total -= (comma ? (size_t)(comma - start) : strlen(start)) + 1;
		start = comma ? comma + 1 : NULL;
	}
	if (total > REV_HISTORY_MAX_CHARS)
		return;
	char *v = start && *start ? xasprintf("%s,%s", start, old) : xstrdup(old);
	set_annotation(rs, REV_HIST_ANN, v);
	free(v);
}

static bool
set_new_rs_annotations(struct dsync *s, json_t *rs, int64_t new_rev, bool exists)
{
	bool changed = false;
	const char *k;
	json_t *v;
	json_object_foreach(obj_get_path(s->d, "metadata.annotations"), k, v)
		if (!skip_copy_annotation(k) && json_is_string(v))
			changed |= set_annotation(rs, k, json_string_value(v));
	const char *old = obj_annotation(rs, REV_ANN);
	char *oldcopy = old ? xstrdup(old) : NULL;
	int64_t old_rev = 0;
	if (old && *old) {
		char *end;
		old_rev = strtoll(old, &end, 10);
		if (*end) {
			free(oldcopy);
			return false;
		}
	}
	if (old_rev < new_rev) {
		char buf[24];
		snprintf(buf, sizeof buf, "%lld", (long long)new_rev);
		set_annotation(rs, REV_ANN, buf);
		changed = true;
		if (oldcopy)
			push_revision_history(rs, oldcopy);
	}
	free(oldcopy);
	if (!exists && set_replicas_annotations(rs, replicas(s), replicas(s) + max_surge(s->d)))
		changed = true;
	return changed;
}

static bool
set_deployment_revision(struct dsync *s, const char *rev)
{
	return set_annotation(s->d, REV_ANN, rev ? rev : "");
}

/* ---- scaling ------------------------------------------------------------ */

static bool
scale_rs(struct dsync *s, json_t *rs, int new_scale)
{
	int old = (int)obj_int_at(rs, "spec.replicas", 0);
	bool size = old != new_scale;
	bool ann = set_replicas_annotations(rs, replicas(s), replicas(s) + max_surge(s->d));
	if (!size && !ann)
		return false;
	json_object_set_new(obj_child(rs, "spec"), "replicas", json_integer(new_scale));
	push(s, DEPLOY_UPDATE_RS, json_deep_copy(rs));
	if (size)
		event(s, "Normal", "ScalingReplicaSet", "Scaled %s replica set %s to %d from %d",
		    old < new_scale ? "up" : "down", obj_name(rs), new_scale, old);
	return size;
}

static bool
scale_rs_and_record(struct dsync *s, json_t *rs, int new_scale)
{
	if ((int)obj_int_at(rs, "spec.replicas", 0) == new_scale)
		return false;
	return scale_rs(s, rs, new_scale);
}

static int
new_rs_new_replicas(struct dsync *s, const struct rslist *all, const json_t *new_rs)
{
	int cur = (int)obj_int_at(new_rs, "spec.replicas", 0);
	if (!is_rolling(s->d))
		return replicas(s);
	int surge = scaled_value(obj_get_path(s->d, "spec.strategy.rollingUpdate.maxSurge"),
	    replicas(s), true);
	int count = rsl_sum(all, "spec.replicas"), max_total = replicas(s) + surge;
	if (count >= max_total)
		return cur;
	int up = max_total - count;
	if (up > replicas(s) - cur)
		up = replicas(s) - cur;
	return cur + up;
}

/* ---- finding and creating the new ReplicaSet ---------------------------- */

static json_t *
find_new_rs(struct dsync *s)
{
	struct rslist l = { NULL, 0 };
	size_t i;
	json_t *rs, *found = NULL;
	json_array_foreach(s->owned, i, rs)
		rsl_add(&l, rs);
	rsl_sort(&l, cmp_created);
	for (i = 0; i < l.n && !found; i++)
		if (template_equal(obj_get_path(l.v[i], "spec.template"),
		    obj_get_path(s->d, "spec.template")))
			found = l.v[i];
	rsl_free(&l);
	return found;
}

static void
find_old_rses(struct dsync *s, const json_t *new_rs, struct rslist *olds)
{
	size_t i;
	json_t *rs;
	json_array_foreach(s->owned, i, rs)
		if (rs != new_rs)
			rsl_add(olds, rs);
}

static int64_t
max_revision(const struct rslist *l)
{
	int64_t m = 0;
	for (size_t i = 0; i < l->n; i++)
		if (revision_of(l->v[i]) > m)
			m = revision_of(l->v[i]);
	return m;
}

static json_t *
existing_new_rs(struct dsync *s, json_t *rs, int64_t new_rev)
{
	bool ann = set_new_rs_annotations(s, rs, new_rev, true);
	json_t *mrs = obj_get_path(s->d, "spec.minReadySeconds");
	bool mrs_diff = (int)obj_int_at(rs, "spec.minReadySeconds", 0) != (int)json_integer_value(mrs);
	if (ann || mrs_diff) {
		json_object_set_new(obj_child(rs, "spec"), "minReadySeconds",
		    json_integer(json_integer_value(mrs)));
		push(s, DEPLOY_UPDATE_RS, json_deep_copy(rs));
		return rs;
	}
	bool needs = set_deployment_revision(s, obj_annotation(rs, REV_ANN));
	if (has_deadline(s->d) && !obj_condition(status_of(s->d), "Progressing")) {
		char *msg = xasprintf("Found new replica set \"%s\"", obj_name(rs));
		obj_condition_set(status_of(s->d), new_cond("Progressing", "True", "FoundNewReplicaSet", msg,
		    s->now_ms));
		free(msg);
		needs = true;
	}
	if (needs)
		write_status(s);
	return rs;
}

static json_t *
build_new_rs(struct dsync *s, const char *hash)
{
	json_t *tmpl = json_deep_copy(obj_get_path(s->d, "spec.template"));
	json_t *tlabels = obj_child(obj_child(tmpl, "metadata"), "labels");
	json_object_set_new(tlabels, HASH_LABEL, json_string(hash));
	json_t *sel = json_deep_copy(obj_get_path(s->d, "spec.selector"));
	json_object_set_new(obj_child(sel, "matchLabels"), HASH_LABEL, json_string(hash));
	char *name = xasprintf("%s-%s", obj_name(s->d), hash);
	json_t *rs = json_pack("{s:s, s:s, s:{s:s, s:s, s:[o], s:o, s:o}, s:{s:i, s:i, s:o, s:o}}",
	    "apiVersion", "apps/v1", "kind", "ReplicaSet",
	    "metadata", "name", name, "namespace", obj_namespace(s->d),
	    "ownerReferences", obj_new_controller_ref(s->d), "labels", json_deep_copy(tlabels),
	    "creationTimestamp", obj_time_json(s->now_ms),
	    "spec", "replicas", 0, "minReadySeconds", (int)obj_int_at(s->d, "spec.minReadySeconds", 0),
	    "selector", sel, "template", tmpl);
	free(name);
	return rs;
}

static const json_t *
ns_rs_named(struct dsync *s, const char *name)
{
	size_t i;
	json_t *rs;
	json_array_foreach(s->ns_rses, i, rs)
		if (strcmp(obj_name(rs), name) == 0 &&
		    strcmp(obj_namespace(rs), obj_namespace(s->d)) == 0)
			return rs;
	return NULL;
}

static json_t *
create_new_rs(struct dsync *s, const struct rslist *olds, int64_t new_rev)
{
	json_t *cc = obj_get_path(s->d, "status.collisionCount");
	char hash[16];
	deploy_template_hash(obj_get_path(s->d, "spec.template"),
	    cc ? json_integer_value(cc) : -1, hash);
	json_t *rs = build_new_rs(s, hash);
	const json_t *clash = ns_rs_named(s, obj_name(rs));
	if (clash) {
		const json_t *ref = obj_controller_ref(clash);
		json_decref(rs);
		if (ref && strcmp(obj_str(ref, "uid"), obj_uid(s->d)) == 0 &&
		    template_equal(obj_get_path(clash, "spec.template"),
		    obj_get_path(s->d, "spec.template"))) {
			rs = json_deep_copy(clash);
			json_array_append_new(s->owned, rs);
			return rs;
		}
		json_object_set_new(status_of(s->d), "collisionCount",
		    json_integer(json_integer_value(cc) + 1));
		write_status(s);
		s->stop = true;
		s->out->retry = true;
		return NULL;
	}
	struct rslist all = rsl_copy(olds, rs);
	int n = new_rs_new_replicas(s, &all, rs);
	rsl_free(&all);
	json_object_set_new(obj_child(rs, "spec"), "replicas", json_integer(n));
	set_new_rs_annotations(s, rs, new_rev, false);
	push(s, DEPLOY_CREATE_RS, json_deep_copy(rs));
	json_array_append_new(s->owned, rs);
	if (n > 0)
		event(s, "Normal", "ScalingReplicaSet", "Scaled up replica set %s to %d",
		    obj_name(rs), n);
	char rev[24];
	snprintf(rev, sizeof rev, "%lld", (long long)new_rev);
	set_deployment_revision(s, rev);
	if (has_deadline(s->d)) {
		char *msg = xasprintf("Created new replica set \"%s\"", obj_name(rs));
		obj_condition_set(status_of(s->d), new_cond("Progressing", "True", "NewReplicaSetCreated",
		    msg, s->now_ms));
		free(msg);
	}
	write_status(s);
	return rs;
}

/* getAllReplicaSetsAndSyncRevision: the new ReplicaSet (created when
 * create and absent) and every old one. */
static json_t *
sync_revision(struct dsync *s, bool create, struct rslist *olds)
{
	json_t *new_rs = find_new_rs(s);
	rsl_free(olds);
	find_old_rses(s, new_rs, olds);
	int64_t new_rev = max_revision(olds) + 1;
	if (new_rs)
		return existing_new_rs(s, new_rs, new_rev);
	if (!create)
		return NULL;
	return create_new_rs(s, olds, new_rev);
}

/* ---- status ------------------------------------------------------------- */

static void
put_count(json_t *st, const char *key, int n)
{
	if (n)
		json_object_set_new(st, key, json_integer(n));
}

static json_t *
calculate_status(struct dsync *s, const struct rslist *all, const json_t *new_rs)
{
	int avail = rsl_sum(all, "status.availableReplicas");
	int total = rsl_sum(all, "spec.replicas");
	int unavail = total - avail > 0 ? total - avail : 0;
	json_t *st = json_object(), *old = status_of(s->d);
	put_count(st, "observedGeneration", (int)obj_int_at(s->d, "metadata.generation", 0));
	put_count(st, "replicas", rsl_sum(all, "status.replicas"));
	put_count(st, "updatedReplicas", new_rs ? (int)obj_int_at(new_rs, "status.replicas", 0) : 0);
	put_count(st, "readyReplicas", rsl_sum(all, "status.readyReplicas"));
	put_count(st, "availableReplicas", avail);
	put_count(st, "unavailableReplicas", unavail);
	json_t *conds = json_object_get(old, "conditions");
	if (json_array_size(conds))
		json_object_set_new(st, "conditions", json_deep_copy(conds));
	json_t *cc = json_object_get(old, "collisionCount");
	if (cc)
		json_object_set(st, "collisionCount", cc);
	if (avail >= replicas(s) - max_unavailable(s->d))
		obj_condition_set(st, new_cond("Available", "True", "MinimumReplicasAvailable",
		    "Deployment has minimum availability.", s->now_ms));
	else
		obj_condition_set(st, new_cond("Available", "False", "MinimumReplicasUnavailable",
		    "Deployment does not have minimum availability.", s->now_ms));
	return st;
}

static bool
deployment_complete(const struct dsync *s, const json_t *st)
{
	int want = replicas(s);
	return (int)obj_int_at(st, "updatedReplicas", 0) == want && (int)obj_int_at(st, "replicas", 0) == want &&
	    (int)obj_int_at(st, "availableReplicas", 0) == want &&
	    (int)obj_int_at(st, "observedGeneration", 0) >= (int)obj_int_at(s->d, "metadata.generation", 0);
}

static bool
deployment_progressing(const struct dsync *s, const json_t *st)
{
	const json_t *old = json_object_get(s->d, "status");
	int old_old = (int)obj_int_at(old, "replicas", 0) - (int)obj_int_at(old, "updatedReplicas", 0);
	int new_old = (int)obj_int_at(st, "replicas", 0) - (int)obj_int_at(st, "updatedReplicas", 0);
	return (int)obj_int_at(st, "updatedReplicas", 0) > (int)obj_int_at(old, "updatedReplicas", 0) ||
	    new_old < old_old ||
	    (int)obj_int_at(st, "readyReplicas", 0) > (int)obj_int_at(old, "readyReplicas", 0) ||
	    (int)obj_int_at(st, "availableReplicas", 0) > (int)obj_int_at(old, "availableReplicas", 0);
}

static bool
deployment_timed_out(const struct dsync *s, const json_t *st)
{
	const json_t *c = obj_condition(st, "Progressing");
	if (!has_deadline(s->d) || !c)
		return false;
	if (strcmp(obj_str(c, "reason"), "NewReplicaSetAvailable") == 0)
		return false;
	if (strcmp(obj_str(c, "reason"), "ProgressDeadlineExceeded") == 0)
		return true;
	int64_t from = obj_time_s(json_object_get(c, "lastUpdateTime"));
	return (from + (int)obj_int_at(s->d, "spec.progressDeadlineSeconds", 0)) * 1000 < s->now_ms;
}

/* A ReplicaFailure of the new ReplicaSet, else of any, as a Deployment
 * condition (new reference) or NULL. */
static json_t *
replica_failure(const struct rslist *all, const json_t *new_rs)
{
	const json_t *found = new_rs ? obj_condition(json_object_get(new_rs, "status"),
	    "ReplicaFailure") : NULL;
	for (size_t i = 0; i < all->n && !found; i++)
		found = obj_condition(json_object_get(all->v[i], "status"), "ReplicaFailure");
	if (!found)
		return NULL;
	json_t *t = json_object_get(found, "lastTransitionTime");
	return json_pack("{s:s, s:s, s:O*, s:O*, s:s, s:s}", "type", "ReplicaFailure",
	    "status", obj_str(found, "status"), "lastUpdateTime", t, "lastTransitionTime", t,
	    "reason", obj_str(found, "reason"), "message", obj_str(found, "message"));
}

static void
requeue_stuck(struct dsync *s, const json_t *st)
{
	const json_t *cur = obj_condition(json_object_get(s->d, "status"), "Progressing");
	if (!has_deadline(s->d) || !cur || deployment_complete(s, st) ||
	    strcmp(obj_str(cur, "reason"), "ProgressDeadlineExceeded") == 0)
		return;
	int64_t after = (obj_time_s(json_object_get(cur, "lastUpdateTime")) +
	    (int)obj_int_at(s->d, "spec.progressDeadlineSeconds", 0)) * 1000 - s->now_ms;
	if (after < 1000)
		s->out->retry = true;
	else
		s->out->requeue_ms = after + 1000;
}

static void
progress_cond(struct dsync *s, json_t *st, const json_t *new_rs, const char *status,
    const char *reason, const char *what)
{
	char *msg = new_rs ? xasprintf("ReplicaSet \"%s\" %s.", obj_name(new_rs), what) :
	    xasprintf("Deployment \"%s\" %s.", obj_name(s->d), what);
	json_t *c = new_cond("Progressing", status, reason, msg, s->now_ms);
	free(msg);
	if (strcmp(reason, "ReplicaSetUpdated") == 0) {
		const json_t *cur = obj_condition(json_object_get(s->d, "status"), "Progressing");
		if (cur) {
			if (strcmp(obj_str(cur, "status"), "True") == 0)
				json_object_set(c, "lastTransitionTime",
				    json_object_get(cur, "lastTransitionTime"));
			obj_condition_remove(st, "Progressing");
		}
	}
	obj_condition_set(st, c);
}

static void
sync_rollout_status(struct dsync *s, const struct rslist *all, const json_t *new_rs)
{
	json_t *st = calculate_status(s, all, new_rs);
	if (!has_deadline(s->d))
		obj_condition_remove(st, "Progressing");
	const json_t *cur = obj_condition(json_object_get(s->d, "status"), "Progressing");
	bool complete = (int)obj_int_at(st, "replicas", 0) == (int)obj_int_at(st, "updatedReplicas", 0) && cur &&
	    strcmp(obj_str(cur, "reason"), "NewReplicaSetAvailable") == 0;
	if (has_deadline(s->d) && !complete) {
		if (deployment_complete(s, st))
			progress_cond(s, st, new_rs, "True", "NewReplicaSetAvailable",
			    "has successfully progressed");
		else if (deployment_progressing(s, st))
			progress_cond(s, st, new_rs, "True", "ReplicaSetUpdated", "is progressing");
		else if (deployment_timed_out(s, st)) {
			const json_t *c = obj_condition(st, "Progressing");
			bool already = c && !strcmp(obj_str(c, "reason"), "ProgressDeadlineExceeded");
			progress_cond(s, st, new_rs, "False", "ProgressDeadlineExceeded",
			    "has timed out progressing");
			if (!already)
				event(s, "Warning", "ProgressDeadlineExceeded",
				    "Deployment \"%s\" has timed out progressing.", obj_name(s->d));
		}
	}
	json_t *rf = replica_failure(all, new_rs);
	if (rf)
		obj_condition_set(st, rf);
	else
		obj_condition_remove(st, "ReplicaFailure");
	if (json_equal(st, json_object_get(s->d, "status")))
		requeue_stuck(s, st);
	else {
		json_object_set(s->d, "status", st);
		write_status(s);
	}
	json_decref(st);
}

static void
sync_deployment_status(struct dsync *s, const struct rslist *all, const json_t *new_rs)
{
	json_t *st = calculate_status(s, all, new_rs);
	if (!json_equal(st, json_object_get(s->d, "status"))) {
		json_object_set(s->d, "status", st);
		write_status(s);
	}
	json_decref(st);
}

/* ---- cleanup ------------------------------------------------------------ */

static void
cleanup_deployment(struct dsync *s, const struct rslist *olds)
{
	json_t *lim = obj_get_path(s->d, "spec.revisionHistoryLimit");
	if (!lim || json_integer_value(lim) == NO_LIMIT)
		return;
	struct rslist alive = { NULL, 0 };
	for (size_t i = 0; i < olds->n; i++)
		if (!obj_is_deleting(olds->v[i]))
			rsl_add(&alive, olds->v[i]);
	long long diff = (long long)alive.n - json_integer_value(lim);
	rsl_sort(&alive, cmp_revision);
	for (long long i = 0; i < diff; i++) {
		json_t *rs = alive.v[i];
		if ((int)obj_int_at(rs, "status.replicas", 0) || (int)obj_int_at(rs, "spec.replicas", 0) ||
		    (int)obj_int_at(rs, "metadata.generation", 0) > (int)obj_int_at(rs, "status.observedGeneration", 0))
			continue;
		push(s, DEPLOY_DELETE_RS, json_deep_copy(rs));
		json_object_set_new(obj_metadata(rs), "deletionTimestamp", obj_time_json(s->now_ms));
	}
	rsl_free(&alive);
}

/* ---- rolling update ----------------------------------------------------- */

static bool
reconcile_new_rs(struct dsync *s, const struct rslist *all, json_t *new_rs)
{
	int cur = (int)obj_int_at(new_rs, "spec.replicas", 0);
	if (cur == replicas(s))
		return false;
	if (cur > replicas(s))
		return scale_rs_and_record(s, new_rs, replicas(s));
	return scale_rs_and_record(s, new_rs, new_rs_new_replicas(s, all, new_rs));
}

static int
cleanup_unhealthy(struct dsync *s, struct rslist *olds, int max_cleanup)
{
	int total = 0;
	rsl_sort(olds, cmp_created);
	for (size_t i = 0; i < olds->n && total < max_cleanup; i++) {
		json_t *rs = olds->v[i];
		int want = (int)obj_int_at(rs, "spec.replicas", 0), avail = (int)obj_int_at(rs, "status.availableReplicas", 0);
		if (want == 0 || want == avail)
			continue;
		int down = max_cleanup - total < want - avail ? max_cleanup - total : want - avail;
		scale_rs_and_record(s, rs, want - down);
		total += down;
	}
	return total;
}

static int
scale_down_old_rolling(struct dsync *s, const struct rslist *all, struct rslist *olds)
{
	int min_avail = replicas(s) - max_unavailable(s->d);
	int avail = rsl_sum(all, "status.availableReplicas");
	if (avail <= min_avail)
		return 0;
	rsl_sort(olds, cmp_created);
	int total = 0, target = avail - min_avail;
	for (size_t i = 0; i < olds->n && total < target; i++) {
		json_t *rs = olds->v[i];
		int want = (int)obj_int_at(rs, "spec.replicas", 0);
		if (want == 0)
			continue;
		int down = want < target - total ? want : target - total;
		scale_rs_and_record(s, rs, want - down);
		total += down;
	}
	return total;
}

static bool
reconcile_old_rses(struct dsync *s, const struct rslist *all, struct rslist *olds,
    json_t *new_rs)
{
	if (rsl_sum(olds, "spec.replicas") == 0)
		return false;
	int min_avail = replicas(s) - max_unavailable(s->d);
	int new_unavail = (int)obj_int_at(new_rs, "spec.replicas", 0) -
	    (int)obj_int_at(new_rs, "status.availableReplicas", 0);
	int max_down = rsl_sum(all, "spec.replicas") - min_avail - new_unavail;
	if (max_down <= 0)
		return false;
	int cleaned = cleanup_unhealthy(s, olds, max_down);
	struct rslist all2 = rsl_copy(olds, new_rs);
	int down = scale_down_old_rolling(s, &all2, olds);
	rsl_free(&all2);
	return cleaned + down > 0;
}

static void
rollout_rolling(struct dsync *s)
{
	struct rslist olds = { NULL, 0 };
	json_t *new_rs = sync_revision(s, true, &olds);
	if (s->stop || !new_rs) {
		rsl_free(&olds);
		return;
	}
	struct rslist all = rsl_copy(&olds, new_rs);
	struct rslist active = rsl_active(&olds);
	if (!reconcile_new_rs(s, &all, new_rs) &&
	    !reconcile_old_rses(s, &all, &active, new_rs) &&
	    deployment_complete(s, json_object_get(s->d, "status")))
		cleanup_deployment(s, &olds);
	sync_rollout_status(s, &all, new_rs);
	rsl_free(&active);
	rsl_free(&all);
	rsl_free(&olds);
}

/* ---- recreate ----------------------------------------------------------- */

static bool
old_pods_running(struct dsync *s, const json_t *new_rs, const struct rslist *olds)
{
	if (rsl_sum(olds, "status.replicas") > 0)
		return true;
	struct selector *sel = NULL;
	char *err = NULL;
	bool running = false;
	if (selector_from_json(obj_get_path(s->d, "spec.selector"), &sel, &err) < 0) {
		free(err);
		return false;
	}
	size_t i;
	json_t *pod;
	json_array_foreach(s->pods, i, pod) {
		const json_t *ref = obj_controller_ref(pod);
		const char *phase = obj_str(json_object_get(pod, "status"), "phase");
		if (!ref || !selector_matches(sel, obj_labels(pod)) ||
		    (new_rs && strcmp(obj_str(ref, "uid"), obj_uid(new_rs)) == 0) ||
		    !strcmp(phase, "Failed") || !strcmp(phase, "Succeeded"))
			continue;
		for (size_t j = 0; j < olds->n && !running; j++)
			running = strcmp(obj_str(ref, "uid"), obj_uid(olds->v[j])) == 0;
	}
	selector_free(sel);
	return running;
}

static void
rollout_recreate(struct dsync *s)
{
	struct rslist olds = { NULL, 0 };
	json_t *new_rs = sync_revision(s, false, &olds);
	if (s->stop) {
		rsl_free(&olds);
		return;
	}
	struct rslist all = rsl_copy(&olds, new_rs);
	struct rslist active = rsl_active(&olds);
	bool scaled = false;
	for (size_t i = 0; i < active.n; i++)
		scaled |= scale_rs_and_record(s, active.v[i], 0);
	if (scaled || old_pods_running(s, new_rs, &olds))
		goto status;
	if (!new_rs) {
		new_rs = sync_revision(s, true, &olds);
		if (s->stop || !new_rs)
			goto out;
		rsl_free(&all);
		all = rsl_copy(&olds, new_rs);
	}
	scale_rs_and_record(s, new_rs, replicas(s));
	if (deployment_complete(s, json_object_get(s->d, "status")))
		cleanup_deployment(s, &olds);
status:
	sync_rollout_status(s, &all, new_rs);
out:
	rsl_free(&active);
	rsl_free(&all);
	rsl_free(&olds);
}

/* ---- scaling and pausing ------------------------------------------------ */

static json_t *
find_active_or_latest(json_t *new_rs, struct rslist *olds)
{
	if (!new_rs && olds->n == 0)
		return NULL;
	rsl_sort(olds, cmp_created);
	struct rslist all = rsl_copy(olds, new_rs), active = rsl_active(&all);
	json_t *r = NULL;
	if (active.n == 1)
		r = active.v[0];
	else if (active.n == 0)
		r = new_rs ? new_rs : olds->v[olds->n - 1];
	rsl_free(&all);
	rsl_free(&active);
	return r;
}

static bool
is_saturated(struct dsync *s, const json_t *rs)
{
	const char *desired = rs ? obj_annotation(rs, DESIRED_ANN) : NULL;
	char *end;
	if (!desired || !*desired)
		return false;
	long v = strtol(desired, &end, 10);
	return !*end && (int)obj_int_at(rs, "spec.replicas", 0) == replicas(s) && v == replicas(s) &&
	    (int)obj_int_at(rs, "status.availableReplicas", 0) == replicas(s);
}

static int
replica_fraction(struct dsync *s, const json_t *rs)
{
	int cur = (int)obj_int_at(rs, "spec.replicas", 0);
	if (replicas(s) == 0)
		return -cur;
	int dep = replicas(s) + max_surge(s->d);
	const char *ann = obj_annotation(rs, MAX_ANN);
	char *end;
	long annotated = ann && *ann ? strtol(ann, &end, 10) : -1;
	if (!ann || !*ann || *end)
		annotated = (int)obj_int_at(s->d, "status.replicas", 0);
	if (annotated <= 0)
		return 0;
	double x = (double)cur * dep / (double)annotated;
	long r = (long)(x < 0 ? x - 0.5 : x + 0.5);
	return (int)r - cur;
}

static int
proportion(struct dsync *s, const json_t *rs, int to_add, int added)
{
	if ((int)obj_int_at(rs, "spec.replicas", 0) == 0 || to_add == 0 || to_add == added)
		return 0;
	int frac = replica_fraction(s, rs), allowed = to_add - added;
	if (to_add > 0)
		return frac < allowed ? frac : allowed;
	return frac > allowed ? frac : allowed;
}

static void
scale_proportionally(struct dsync *s, json_t *new_rs, struct rslist *olds)
{
	struct rslist both = rsl_copy(olds, new_rs), all = rsl_active(&both);
	int allowed = replicas(s) > 0 ? replicas(s) + max_surge(s->d) : 0;
	int to_add = allowed - rsl_sum(&all, "spec.replicas"), added = 0;
	if (to_add > 0)
		rsl_sort(&all, cmp_size_newer);
	else if (to_add < 0)
		rsl_sort(&all, cmp_size_older);
	int *size = xcalloc(all.n + 1, sizeof *size);
	for (size_t i = 0; i < all.n; i++) {
		int p = to_add ? proportion(s, all.v[i], to_add, added) : 0;
		size[i] = (int)obj_int_at(all.v[i], "spec.replicas", 0) + p;
		added += p;
	}
	for (size_t i = 0; i < all.n; i++) {
		if (i == 0 && to_add) {
			size[0] += to_add - added;
			if (size[0] < 0)
				size[0] = 0;
		}
		scale_rs(s, all.v[i], size[i]);
	}
	free(size);
	rsl_free(&both);
	rsl_free(&all);
}

static void
scale(struct dsync *s, json_t *new_rs, struct rslist *olds)
{
	json_t *one = find_active_or_latest(new_rs, olds);
	if (one) {
		if ((int)obj_int_at(one, "spec.replicas", 0) != replicas(s))
			scale_rs_and_record(s, one, replicas(s));
		return;
	}
	if (is_saturated(s, new_rs)) {
		struct rslist active = rsl_active(olds);
		for (size_t i = 0; i < active.n; i++)
			scale_rs_and_record(s, active.v[i], 0);
		rsl_free(&active);
		return;
	}
	if (is_rolling(s->d))
		scale_proportionally(s, new_rs, olds);
}

/* sync: scaling and paused deployments, no rollout progress. */
static void
sync_scale(struct dsync *s)
{
	struct rslist olds = { NULL, 0 };
	json_t *new_rs = sync_revision(s, false, &olds);
	if (!s->stop) {
		scale(s, new_rs, &olds);
		if (json_is_true(obj_get_path(s->d, "spec.paused")))
			cleanup_deployment(s, &olds);
		struct rslist all = rsl_copy(&olds, new_rs);
		sync_deployment_status(s, &all, new_rs);
		rsl_free(&all);
	}
	rsl_free(&olds);
}

static void
sync_status_only(struct dsync *s)
{
	struct rslist olds = { NULL, 0 };
	json_t *new_rs = sync_revision(s, false, &olds);
	struct rslist all = rsl_copy(&olds, new_rs);
	sync_deployment_status(s, &all, new_rs);
	rsl_free(&all);
	rsl_free(&olds);
}

static bool
is_scaling_event(struct dsync *s)
{
	struct rslist olds = { NULL, 0 };
	json_t *new_rs = sync_revision(s, false, &olds);
	struct rslist all = rsl_copy(&olds, new_rs), active = rsl_active(&all);
	bool yes = false;
	for (size_t i = 0; i < active.n && !yes; i++) {
		const char *v = obj_annotation(active.v[i], DESIRED_ANN);
		char *end;
		long n = v && *v ? strtol(v, &end, 10) : 0;
		yes = v && *v && !*end && n != replicas(s);
	}
	rsl_free(&active);
	rsl_free(&all);
	rsl_free(&olds);
	return yes;
}

static void
check_paused_conditions(struct dsync *s)
{
	if (!has_deadline(s->d))
		return;
	const json_t *c = obj_condition(json_object_get(s->d, "status"), "Progressing");
	if (c && strcmp(obj_str(c, "reason"), "ProgressDeadlineExceeded") == 0)
		return;
	bool paused = json_is_true(obj_get_path(s->d, "spec.paused"));
	bool has = c && strcmp(obj_str(c, "reason"), "DeploymentPaused") == 0;
	if (paused && !has)
		obj_condition_set(status_of(s->d), new_cond("Progressing", "Unknown", "DeploymentPaused",
		    "Deployment is paused", s->now_ms));
	else if (!paused && has)
		obj_condition_set(status_of(s->d), new_cond("Progressing", "Unknown", "DeploymentResumed",
		    "Deployment is resumed", s->now_ms));
	else
		return;
	write_status(s);
}

/* ---- claiming ReplicaSets ----------------------------------------------- */

static int
claim_rses(struct dsync *s)
{
	struct selector *sel = NULL;
	char *err = NULL;
	if (selector_from_json(obj_get_path(s->d, "spec.selector"), &sel, &err) < 0) {
		free(err);
		return -EINVAL;
	}
	bool deleting = obj_is_deleting(s->d);
	size_t i;
	json_t *rs;
	json_array_foreach(s->ns_rses, i, rs) {
		if (strcmp(obj_namespace(rs), obj_namespace(s->d)) != 0)
			continue;
		const json_t *ref = obj_controller_ref(rs);
		bool match = selector_matches(sel, obj_labels(rs));
		if (ref && strcmp(obj_str(ref, "uid"), obj_uid(s->d)) != 0)
			continue;
		if (ref && match)
			json_array_append_new(s->owned, json_deep_copy(rs));
		else if (ref && !deleting)
			push(s, DEPLOY_UPDATE_RS, obj_claim(rs, s->d, false));
		else if (!ref && match && !deleting && !obj_is_deleting(rs)) {
			json_t *c = obj_claim(rs, s->d, true);
			push(s, DEPLOY_UPDATE_RS, json_deep_copy(c));
			json_array_append_new(s->owned, c);
		}
	}
	selector_free(sel);
	return 0;
}

/* ---- the decision ------------------------------------------------------- */

void
deploy_actions_free(struct deploy_actions *a)
{
	for (size_t i = 0; i < a->n; i++) {
		json_decref(a->v[i].obj);
		free(a->v[i].message);
	}
	free(a->v);
	memset(a, 0, sizeof *a);
}

/* Drops a status or annotation write that the next write of the same kind
 * supersedes. */
static void
coalesce(struct deploy_actions *a)
{
	size_t j = 0;
	for (size_t i = 0; i < a->n; i++) {
		enum deploy_op op = a->v[i].op;
		if ((op == DEPLOY_UPDATE_STATUS || op == DEPLOY_UPDATE_META) && i + 1 < a->n &&
		    a->v[i + 1].op == op) {
			json_decref(a->v[i].obj);
			continue;
		}
		a->v[j++] = a->v[i];
	}
	a->n = j;
}

int
deploy_decide(const json_t *deploy, const json_t *rses, const json_t *pods,
    int64_t now_ms, struct deploy_actions *out)
{
	struct dsync s = {
		.d = json_deep_copy(deploy), .owned = json_array(), .ns_rses = rses,
		.pods = pods, .now_ms = now_ms, .out = out,
		.last_ann = json_deep_copy(obj_get_path(deploy, "metadata.annotations")),
		.last_status = json_deep_copy(json_object_get(deploy, "status")),
	};
	memset(out, 0, sizeof *out);
	if (!json_object_get(s.d, "status"))
		json_object_set_new(s.d, "status", json_object());
	if (!s.last_status)
		s.last_status = json_object();
	int rc = claim_rses(&s);
	if (rc < 0)
		goto out;
	if (obj_is_deleting(s.d)) {
		sync_status_only(&s);
		goto out;
	}
	check_paused_conditions(&s);
	if (json_is_true(obj_get_path(s.d, "spec.paused")) || is_scaling_event(&s))
		sync_scale(&s);
	else if (is_rolling(s.d))
		rollout_rolling(&s);
	else
		rollout_recreate(&s);
out:
	coalesce(out);
	json_decref(s.d);
	json_decref(s.owned);
	json_decref(s.last_ann);
	json_decref(s.last_status);
	return rc;
}

/* ---- the adapter on the controller core ---------------------------------- */

static const struct {
	enum ctrl_op op;
	const char *kind;
} deploy_writes[] = {
	[DEPLOY_CREATE_RS] = { CTRL_CREATE, "ReplicaSet" },
	[DEPLOY_UPDATE_RS] = { CTRL_UPDATE, "ReplicaSet" },
	[DEPLOY_DELETE_RS] = { CTRL_DELETE, "ReplicaSet" },
	[DEPLOY_UPDATE_META] = { CTRL_UPDATE, "Deployment" },
	[DEPLOY_UPDATE_STATUS] = { CTRL_STATUS, "Deployment" },
	[DEPLOY_EVENT] = { CTRL_EVENT, NULL },
};

static int
d_ctrl_decide(struct ctrl *c, const json_t *d, int64_t now_ms, struct ctrl_writes *w)
{
	struct store *st = ctrl_store(c);
	json_t *rses = NULL, *pods = NULL;
	struct deploy_actions a = { 0 };
	if (store_list(st, "apps/replicasets", obj_namespace(d), &rses, NULL) == 0 &&
	    (is_rolling(d) || store_list(st, "pods", obj_namespace(d), &pods, NULL) == 0) &&
	    deploy_decide(d, rses, pods, now_ms, &a) == 0) {
		for (size_t i = 0; i < a.n; i++) {
			const struct deploy_action *x = &a.v[i];
			if (x->op == DEPLOY_EVENT)
				ctrl_writes_event(w, x->type, x->reason, x->message);
			else
				ctrl_writes_push(w, deploy_writes[x->op].op,
				    kind_find_gvk("apps/v1", deploy_writes[x->op].kind),
				    json_incref(x->obj), x->op);
		}
		w->requeue_ms = a.requeue_ms;
		w->retry = a.retry;
	}
	deploy_actions_free(&a);
	json_decref(rses);
	json_decref(pods);
	return 0;
}

static void
d_result(struct ctrl *c, const json_t *d, const struct ctrl_write *w, const json_t *made,
    const char *err)
{
	(void)made;
	if (w->tag == DEPLOY_CREATE_RS && err)
		api_record_event(ctrl_api(c), d, "Warning", "FailedCreate", DC_COMPONENT,
		    "Failed to create new replica set \"%s\": %s", obj_name(w->obj), err);
}

static bool
ref_is(const json_t *ref, const char *kind)
{
	return ref && strcmp(obj_str(ref, "kind"), kind) == 0 &&
	    str_has_prefix(obj_str(ref, "apiVersion"), "apps/");
}

/* A ReplicaSet changed: its Deployment, or for an orphan the ones that
 * select it (adoption). */
static void
d_on_rs(struct ctrl *c, enum store_event ev, const json_t *rs)
{
	const json_t *ref = obj_controller_ref(rs);
	if (ref_is(ref, "Deployment"))
		ctrl_enqueue(c, obj_namespace(rs), obj_str(ref, "name"));
	else if (!ref && ev != STORE_DELETED)
		ctrl_enqueue_selecting(c, obj_namespace(rs), obj_labels(rs));
}

/* A pod gone may let a Recreate rollout go on: queue its Deployment. */
static void
d_on_pod(struct ctrl *c, enum store_event ev, const json_t *pod)
{
	const json_t *ref = obj_controller_ref(pod);
	json_t *rs = NULL;
	if (ev != STORE_DELETED || !ref_is(ref, "ReplicaSet") ||
	    store_get(ctrl_store(c), "apps/replicasets", obj_namespace(pod),
	    obj_str(ref, "name"), &rs) < 0)
		return;
	const json_t *dref = obj_controller_ref(rs);
	if (ref_is(dref, "Deployment"))
		ctrl_enqueue(c, obj_namespace(rs), obj_str(dref, "name"));
	json_decref(rs);
}

static const struct ctrl_desc deploy_desc = {
	.name = "deployment", .component = DC_COMPONENT,
	.api_version = "apps/v1", .kind = "Deployment", .res = "apps/deployments",
	/* Staged as the ReplicaSet controller's own source: a Deployment's
	 * ReplicaSets, their pods and the status of both ride in one commit. */
	.sources = {
		{ .res = "apps/deployments", .staged = true },
		{ .res = "apps/replicasets", .map = d_on_rs, .staged = true },
		{ "pods", d_on_pod },
	},
	.decide = d_ctrl_decide, .result = d_result,
};

int
ctrl_deployment_start(struct api *api, struct ctrl **out)
{
	return ctrl_start(api, &deploy_desc, NULL, out);
}
