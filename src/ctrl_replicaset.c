/* ctrl_replicaset.c — the ReplicaSet controller (kube-controller-manager's
 * replicaset controller): claims the pods its selector matches (adoption,
 * release), creates pods from the template and deletes surplus ones in
 * Kubernetes' order, and reports status. rs_decide() is the pure decision;
 * the rest watches the store and applies it through api.h. Started by
 * server.c; also holds pod helpers the Deployment controller shares. */
#include "ctrl.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RS_BURST 500		/* burstReplicas: pods created or deleted per sync */
#define RS_COMPONENT "replicaset-controller"
#define DELETION_COST "controller.kubernetes.io/pod-deletion-cost"

/* ---- shared helpers ----------------------------------------------------- */

static int64_t
ts_seconds(const json_t *v)
{
	time_t t;
	const char *s = json_string_value(v);
	if (!s || time_parse_rfc3339(s, &t) < 0)
		return 0;
	return (int64_t)t;
}

static const char *
str_of(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

const json_t *
ctrl_controller_ref(const json_t *obj)
{
	size_t i;
	json_t *ref;
	json_array_foreach(obj_get_path(obj, "metadata.ownerReferences"), i, ref)
		if (json_is_true(json_object_get(ref, "controller")))
			return ref;
	return NULL;
}

json_t *
ctrl_new_controller_ref(const json_t *owner)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}",
	    "apiVersion", obj_api_version(owner), "kind", obj_kind(owner),
	    "name", obj_name(owner), "uid", obj_uid(owner),
	    "controller", 1, "blockOwnerDeletion", 1);
}

static const json_t *
pod_condition(const json_t *pod, const char *type)
{
	size_t i;
	json_t *c;
	json_array_foreach(obj_get_path(pod, "status.conditions"), i, c)
		if (strcmp(str_of(c, "type"), type) == 0)
			return c;
	return NULL;
}

bool
ctrl_pod_ready(const json_t *pod, int64_t *since_s)
{
	const json_t *c = pod_condition(pod, "Ready");
	bool ready = c && strcmp(str_of(c, "status"), "True") == 0;
	if (since_s)
		*since_s = ready ? ts_seconds(json_object_get(c, "lastTransitionTime")) : 0;
	return ready;
}

bool
ctrl_pod_available(const json_t *pod, int64_t min_ready_s, int64_t now_ms)
{
	int64_t since;
	if (!ctrl_pod_ready(pod, &since))
		return false;
	return min_ready_s == 0 || (since > 0 && (since + min_ready_s) * 1000 < now_ms);
}

bool
ctrl_pod_active(const json_t *pod)
{
	const char *phase = str_of(json_object_get(pod, "status"), "phase");
	return strcmp(phase, "Succeeded") != 0 && strcmp(phase, "Failed") != 0 &&
	    !obj_get_path(pod, "metadata.deletionTimestamp");
}

/* ---- the order of deletion ---------------------------------------------- */

struct pod_rank {
	const json_t *pod;
	bool unassigned, ready;
	int phase;			/* Pending 0 < Unknown 1 < Running 2 */
	int64_t ready_s, created_s;	/* 0 when unknown */
	int64_t cost;
	int restarts, sidecar_restarts;
};

static int
phase_ordinal(const char *phase)
{
	if (strcmp(phase, "Unknown") == 0)
		return 1;
	if (strcmp(phase, "Running") == 0)
		return 2;
	return 0;
}

static int64_t
deletion_cost(const json_t *pod)
{
	const json_t *ann = obj_get_path(pod, "metadata.annotations");
	const char *v = json_string_value(json_object_get(ann, DELETION_COST));
	if (!v || !*v)
		return 0;
	char *end;
	long long n = strtoll(v, &end, 10);
	if (*end || n < INT32_MIN || n > INT32_MAX)
		return 0;
	return n;
}

static void
max_restarts(const json_t *pod, int *regular, int *sidecar)
{
	size_t i, j;
	json_t *c, *ic;
	*regular = *sidecar = 0;
	json_array_foreach(obj_get_path(pod, "status.containerStatuses"), i, c)
		if (json_integer_value(json_object_get(c, "restartCount")) > *regular)
			*regular = (int)json_integer_value(json_object_get(c, "restartCount"));
	json_array_foreach(obj_get_path(pod, "status.initContainerStatuses"), i, c) {
		json_array_foreach(obj_get_path(pod, "spec.initContainers"), j, ic)
			if (strcmp(str_of(ic, "name"), str_of(c, "name")) == 0 &&
			    strcmp(str_of(ic, "restartPolicy"), "Always") == 0 &&
			    json_integer_value(json_object_get(c, "restartCount")) > *sidecar)
				*sidecar = (int)json_integer_value(json_object_get(c, "restartCount"));
	}
}

/* floor(log2(now - t)) in nanoseconds, as LogarithmicScaleDown ranks; a
 * zero time is the oldest possible (Go's saturated duration). */
static int
log_rank(int64_t t_s, int64_t now_ms)
{
	if (t_s == 0)
		return 63;
	int64_t d_ms = now_ms - t_s * 1000;
	if (d_ms <= 0)
		return -1;
	uint64_t ns = (uint64_t)d_ms * 1000000u;
	return 63 - __builtin_clzll(ns);
}

static int
cmp_time_log(int64_t a, int64_t b, const struct pod_rank *x, const struct pod_rank *y,
    int64_t now_ms)
{
	int diff = log_rank(a, now_ms) - log_rank(b, now_ms);
	if (diff != 0)
		return diff < 0 ? -1 : 1;
	return strcmp(obj_uid(x->pod), obj_uid(y->pod));
}

static int
cmp_rank(const void *pa, const void *pb, void *arg)
{
	const struct pod_rank *a = pa, *b = pb;
	int64_t now_ms = *(const int64_t *)arg;
	if (a->unassigned != b->unassigned)
		return a->unassigned ? -1 : 1;
	if (a->phase != b->phase)
		return a->phase < b->phase ? -1 : 1;
	if (a->ready != b->ready)
		return a->ready ? 1 : -1;
	if (a->cost != b->cost)
		return a->cost < b->cost ? -1 : 1;
	if (a->ready && b->ready && a->ready_s != b->ready_s) {
		int c = cmp_time_log(a->ready_s, b->ready_s, a, b, now_ms);
		if (c)
			return c;
	}
	if (a->restarts != b->restarts)
		return a->restarts > b->restarts ? -1 : 1;
	if (a->sidecar_restarts != b->sidecar_restarts)
		return a->sidecar_restarts > b->sidecar_restarts ? -1 : 1;
	if (a->created_s != b->created_s) {
		int c = cmp_time_log(a->created_s, b->created_s, a, b, now_ms);
		if (c)
			return c;
	}
	return strcmp(obj_name(a->pod), obj_name(b->pod));
}

void
rs_sort_for_deletion(const json_t **pods, size_t n, int64_t now_ms)
{
	struct pod_rank *r = xcalloc(n ? n : 1, sizeof *r);
	for (size_t i = 0; i < n; i++) {
		const json_t *p = pods[i];
		r[i].pod = p;
		r[i].unassigned = !*str_of(json_object_get(p, "spec"), "nodeName");
		r[i].phase = phase_ordinal(str_of(json_object_get(p, "status"), "phase"));
		r[i].ready = ctrl_pod_ready(p, &r[i].ready_s);
		r[i].cost = deletion_cost(p);
		max_restarts(p, &r[i].restarts, &r[i].sidecar_restarts);
		r[i].created_s = ts_seconds(obj_get_path(p, "metadata.creationTimestamp"));
	}
	qsort_r(r, n, sizeof *r, cmp_rank, &now_ms);
	for (size_t i = 0; i < n; i++)
		pods[i] = r[i].pod;
	free(r);
}

/* ---- the decision ------------------------------------------------------- */

void
rs_actions_free(struct rs_actions *a)
{
	json_decref(a->adopt);
	json_decref(a->release);
	json_decref(a->remove);
	json_decref(a->status);
	memset(a, 0, sizeof *a);
}

json_t *
rs_pod_from_template(const json_t *rs)
{
	const json_t *tmpl = obj_get_path(rs, "spec.template");
	const json_t *tmeta = json_object_get(tmpl, "metadata");
	/* names.SimpleNameGenerator keeps at most 58 characters of the base. */
	char prefix[59];
	snprintf(prefix, sizeof prefix, "%s-", obj_name(rs));
	json_t *meta = json_pack("{s:s, s:s, s:[o]}", "generateName", prefix,
	    "namespace", obj_namespace(rs), "ownerReferences", ctrl_new_controller_ref(rs));
	static const char *const copied[] = { "labels", "annotations", "finalizers" };
	for (size_t i = 0; i < ARRAY_SIZE(copied); i++) {
		json_t *v = json_object_get(tmeta, copied[i]);
		if (v)
			json_object_set_new(meta, copied[i], json_deep_copy(v));
	}
	json_t *spec = json_object_get(tmpl, "spec");
	return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "v1", "kind", "Pod",
	    "metadata", meta, "spec", spec ? json_deep_copy(spec) : json_object());
}

/* A copy of pod with the controller reference to rs added (adopt) or every
 * reference to rs's uid removed (release). */
static json_t *
pod_with_ref(const json_t *pod, const json_t *rs, bool adopt)
{
	json_t *p = json_deep_copy(pod);
	json_t *refs = json_array(), *ref;
	size_t i;
	json_array_foreach(obj_get_path(pod, "metadata.ownerReferences"), i, ref)
		if (strcmp(str_of(ref, "uid"), obj_uid(rs)) != 0)
			json_array_append(refs, ref);
	if (adopt)
		json_array_append_new(refs, ctrl_new_controller_ref(rs));
	if (json_array_size(refs))
		json_object_set_new(obj_metadata(p), "ownerReferences", refs);
	else {
		json_decref(refs);
		json_object_del(obj_metadata(p), "ownerReferences");
	}
	return p;
}

static bool
labels_contain(const json_t *labels, const json_t *want)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)want, k, v) {
		json_t *have = json_object_get(labels, k);
		if (!have || !json_equal(have, v))
			return false;
	}
	return true;
}

static void
set_count(json_t *st, const char *key, size_t n, bool always)
{
	if (n || always)
		json_object_set_new(st, key, json_integer((json_int_t)n));
}

/* calculateStatus: from the owned active pods, before they are managed. */
static json_t *
rs_status(const json_t *rs, const json_t **owned, size_t n, int64_t now_ms,
    int64_t *requeue_ms)
{
	int64_t min_ready = json_integer_value(obj_get_path(rs, "spec.minReadySeconds"));
	const json_t *tlabels = obj_get_path(rs, "spec.template.metadata.labels");
	size_t fully = 0, ready = 0, avail = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t since;
		if (labels_contain(obj_labels(owned[i]), tlabels))
			fully++;
		if (!ctrl_pod_ready(owned[i], &since))
			continue;
		ready++;
		if (ctrl_pod_available(owned[i], min_ready, now_ms)) {
			avail++;
			continue;
		}
		int64_t wait = (since + min_ready) * 1000 + 1 - now_ms;
		if (wait > 0 && (*requeue_ms == 0 || wait < *requeue_ms))
			*requeue_ms = wait;
	}
	json_t *st = json_object();
	set_count(st, "replicas", n, true);
	set_count(st, "fullyLabeledReplicas", fully, false);
	set_count(st, "readyReplicas", ready, false);
	set_count(st, "availableReplicas", avail, false);
	json_t *gen = obj_get_path(rs, "metadata.generation");
	if (json_integer_value(gen) > 0)
		json_object_set(st, "observedGeneration", gen);
	json_t *conds = obj_get_path(rs, "status.conditions");
	if (json_array_size(conds))
		json_object_set_new(st, "conditions", json_deep_copy(conds));
	return st;
}

int
rs_decide(const json_t *rs, const json_t *pods, int64_t now_ms, struct rs_actions *out)
{
	struct selector *sel = NULL;
	char *err = NULL;
	memset(out, 0, sizeof *out);
	if (selector_from_json(obj_get_path(rs, "spec.selector"), &sel, &err) < 0) {
		free(err);
		return -EINVAL;
	}
	bool rs_deleting = obj_get_path(rs, "metadata.deletionTimestamp") != NULL;
	const char *uid = obj_uid(rs);
	out->adopt = json_array();
	out->release = json_array();
	out->remove = json_array();
	const json_t **owned = xcalloc(json_array_size(pods) + 1, sizeof *owned);
	size_t n = 0, i;
	json_t *pod;
	json_array_foreach(pods, i, pod) {
		if (!ctrl_pod_active(pod) || strcmp(obj_namespace(pod), obj_namespace(rs)) != 0)
			continue;
		const json_t *ref = ctrl_controller_ref(pod);
		bool match = selector_matches(sel, obj_labels(pod));
		if (ref && strcmp(str_of(ref, "uid"), uid) != 0)
			continue;
		if (ref && match) {
			owned[n++] = pod;
		} else if (ref) {
			if (!rs_deleting)
				json_array_append_new(out->release, pod_with_ref(pod, rs, false));
		} else if (match && !rs_deleting) {
			json_t *p = pod_with_ref(pod, rs, true);
			json_array_append_new(out->adopt, p);
			owned[n++] = p;
		}
	}
	selector_free(sel);
	out->status = rs_status(rs, owned, n, now_ms, &out->requeue_ms);
	int64_t want = json_integer_value(obj_get_path(rs, "spec.replicas"));
	if (!rs_deleting && (int64_t)n < want)
		out->create = (int)(want - (int64_t)n > RS_BURST ? RS_BURST : want - (int64_t)n);
	else if (!rs_deleting && (int64_t)n > want) {
		size_t diff = (size_t)((int64_t)n - want);
		if (diff > RS_BURST)
			diff = RS_BURST;
		rs_sort_for_deletion(owned, n, now_ms);
		for (size_t j = 0; j < diff; j++)
			json_array_append_new(out->remove, json_string(obj_name(owned[j])));
	}
	free(owned);
	return 0;
}

void
rs_status_finish(json_t *status, const char *err_reason, const char *err_msg,
    int64_t now_ms)
{
	json_t *conds = json_object_get(status, "conditions"), *c;
	size_t i;
	int found = -1;
	json_array_foreach(conds, i, c)
		if (strcmp(str_of(c, "type"), "ReplicaFailure") == 0)
			found = (int)i;
	if (err_msg && found < 0) {
		char ts[32];
		time_format_rfc3339((time_t)(now_ms / 1000), ts);
		if (!conds) {
			conds = json_array();
			json_object_set_new(status, "conditions", conds);
		}
		json_array_append_new(conds, json_pack("{s:s, s:s, s:s, s:s, s:s}",
		    "type", "ReplicaFailure", "status", "True", "lastTransitionTime", ts,
		    "reason", err_reason, "message", err_msg));
	} else if (!err_msg && found >= 0) {
		json_array_remove(conds, (size_t)found);
		if (json_array_size(conds) == 0)
			json_object_del(status, "conditions");
	}
}

/* ---- the controller ----------------------------------------------------- */

struct ctrl_replicaset {
	struct api *api;
	struct ctrl_wq *wq;
	struct ctrl_watches watches;
};

/* Creates pods in batches of 1, 2, 4, ... (slowStartBatch); stops at the
 * first failure. Returns 0 or -1 with *errmsg (caller frees) set. */
static int
rs_create_pods(struct ctrl_replicaset *c, const json_t *rs, int count, char **errmsg)
{
	const struct kind *pk = kind_find_gvk("v1", "Pod");
	int batch = 1, done = 0;
	while (done < count) {
		for (int i = 0; i < batch && done < count; i++, done++) {
			struct api_error err = { 0 };
			json_t *made = NULL;
			if (api_create(c->api, pk, obj_namespace(rs), rs_pod_from_template(rs), 0,
			    &made, &err) < 0) {
				api_record_event(c->api, rs, "Warning", "FailedCreate", RS_COMPONENT,
				    "Error creating: %s", err.message);
				*errmsg = xstrdup(err.message ? err.message : "error");
				api_error_clear(&err);
				return -1;
			}
			api_record_event(c->api, rs, "Normal", "SuccessfulCreate", RS_COMPONENT,
			    "Created pod: %s", obj_name(made));
			json_decref(made);
		}
		batch *= 2;
	}
	return 0;
}

static int
rs_delete_pods(struct ctrl_replicaset *c, const json_t *rs, const json_t *names,
    char **errmsg)
{
	const struct kind *pk = kind_find_gvk("v1", "Pod");
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v) {
		struct api_error err = { 0 };
		const char *name = json_string_value(v);
		if (api_delete(c->api, pk, obj_namespace(rs), name, API_PROPAGATE_BACKGROUND,
		    NULL, 0, 0, NULL, &err) < 0 && err.code != 404) {
			api_record_event(c->api, rs, "Warning", "FailedDelete", RS_COMPONENT,
			    "Error deleting: %s", err.message);
			*errmsg = xstrdup(err.message ? err.message : "error");
			api_error_clear(&err);
			return -1;
		}
		api_error_clear(&err);
		api_record_event(c->api, rs, "Normal", "SuccessfulDelete", RS_COMPONENT,
		    "Deleted pod: %s", name);
	}
	return 0;
}

/* Writes each pod of list (adoptions, releases); a pod gone is no error. */
static int
rs_write_pods(struct ctrl_replicaset *c, const json_t *list)
{
	const struct kind *pk = kind_find_gvk("v1", "Pod");
	size_t i;
	json_t *p;
	int rc = 0;
	json_array_foreach(list, i, p) {
		struct api_error err = { 0 };
		json_t *copy = json_deep_copy(p);
		json_object_del(obj_metadata(copy), "resourceVersion");
		if (api_update(c->api, pk, obj_namespace(p), copy, false, 0, NULL, &err) < 0 &&
		    err.code != 404) {
			log_warn("replicaset", "claiming pod %s/%s: %s", obj_namespace(p),
			    obj_name(p), err.message);
			rc = -1;
		}
		api_error_clear(&err);
	}
	return rc;
}

static void
rs_write_status(struct ctrl_replicaset *c, const json_t *rs, json_t *status)
{
	if (json_equal(status, json_object_get(rs, "status")))
		return;
	struct api_error err = { 0 };
	json_t *copy = json_deep_copy(rs);
	json_object_set(copy, "status", status);
	json_object_del(obj_metadata(copy), "resourceVersion");
	if (api_update(c->api, kind_find_gvk("apps/v1", "ReplicaSet"), obj_namespace(rs), copy,
	    true, 0, NULL, &err) < 0 && err.code != 404)
		log_warn("replicaset", "status of %s/%s: %s", obj_namespace(rs), obj_name(rs),
		    err.message);
	api_error_clear(&err);
}

/* One sync of the ReplicaSet named by key "NS/NAME". Everything runs on the
 * loop between two commits, so what was read is what is written over. */
static int
rs_sync(void *arg, const char *key)
{
	struct ctrl_replicaset *c = arg;
	const char *slash = strchr(key, '/');
	if (!slash)
		return 0;
	char *ns = xstrndup(key, (size_t)(slash - key));
	struct api_error err = { 0 };
	json_t *rs = NULL, *pods = NULL;
	struct rs_actions a = { 0 };
	char *errmsg = NULL;
	const char *reason = NULL;
	int rc = 0;
	if (api_get(c->api, kind_find_gvk("apps/v1", "ReplicaSet"), ns, slash + 1, &rs,
	    &err) < 0)
		goto out;
	if (store_list(api_store(c->api), "pods", ns, &pods, NULL) < 0 ||
	    rs_decide(rs, pods, time_now_ms(), &a) < 0)
		goto out;
	if (rs_write_pods(c, a.adopt) < 0 || rs_write_pods(c, a.release) < 0) {
		rc = -EAGAIN;
		goto out;
	}
	if (a.create > 0 && rs_create_pods(c, rs, a.create, &errmsg) < 0)
		reason = "FailedCreate";
	if (json_array_size(a.remove) && rs_delete_pods(c, rs, a.remove, &errmsg) < 0)
		reason = "FailedDelete";
	rs_status_finish(a.status, reason, errmsg, time_now_ms());
	rs_write_status(c, rs, a.status);
	if (errmsg)
		rc = -EAGAIN;
	else if (a.requeue_ms > 0)
		ctrl_wq_add_after(c->wq, key, a.requeue_ms);
out:
	rs_actions_free(&a);
	api_error_clear(&err);
	json_decref(rs);
	json_decref(pods);
	free(errmsg);
	free(ns);
	return rc;
}

static void
rs_on_pod(void *arg, enum store_event ev, const char *res, const json_t *pod, int64_t rv)
{
	struct ctrl_replicaset *c = arg;
	(void)res;
	(void)rv;
	ctrl_wq_add_pod_owner(c->wq, api_store(c->api), ev, pod, "ReplicaSet", "apps/replicasets");
}

int
ctrl_replicaset_start(struct api *api, struct ctrl_replicaset **out)
{
	static const struct ctrl_watch watches[] = {
		{ "apps/replicasets", ctrl_wq_on_change, true },
		{ "pods", rs_on_pod, false },
	};
	struct ctrl_replicaset *c = xcalloc(1, sizeof *c);
	struct store *st = api_store(api);
	int rc;
	c->api = api;
	c->wq = ctrl_wq_new(api_loop(api), rs_sync, c);
	if ((rc = ctrl_wq_add_all(c->wq, st, "apps/replicasets")) < 0 ||
	    (rc = ctrl_watches_start(&c->watches, st, watches, ARRAY_SIZE(watches), c,
	    c->wq)) < 0) {
		ctrl_replicaset_stop(c);
		return rc;
	}
	log_info("replicaset", "replicaset controller started");
	*out = c;
	return 0;
}

void
ctrl_replicaset_stop(struct ctrl_replicaset *c)
{
	if (!c)
		return;
	ctrl_watches_stop(&c->watches);
	ctrl_wq_free(c->wq);
	free(c);
}
