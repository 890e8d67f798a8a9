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
			if (strcmp(obj_str(ic, "name"), obj_str(c, "name")) == 0 &&
			    strcmp(obj_str(ic, "restartPolicy"), "Always") == 0 &&
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
		r[i].unassigned = !*obj_str(json_object_get(p, "spec"), "nodeName");
		r[i].phase = phase_ordinal(obj_str(json_object_get(p, "status"), "phase"));
		r[i].ready = obj_pod_ready(p, &r[i].ready_s);
		r[i].cost = deletion_cost(p);
		max_restarts(p, &r[i].restarts, &r[i].sidecar_restarts);
		r[i].created_s = obj_time_s(obj_get_path(p, "metadata.creationTimestamp"));
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
	    "namespace", obj_namespace(rs), "ownerReferences", obj_new_controller_ref(rs));
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
		if (!obj_pod_ready(owned[i], &since))
			continue;
		ready++;
		if (obj_pod_available(owned[i], min_ready, now_ms)) {
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
		if (!obj_pod_active(pod) || strcmp(obj_namespace(pod), obj_namespace(rs)) != 0)
			continue;
		const json_t *ref = obj_controller_ref(pod);
		bool match = selector_matches(sel, obj_labels(pod));
		if (ref && strcmp(obj_str(ref, "uid"), uid) != 0)
			continue;
		if (ref && match) {
			owned[n++] = pod;
		} else if (ref) {
			if (!rs_deleting)
				json_array_append_new(out->release, obj_claim(pod, rs, false));
		} else if (match && !rs_deleting) {
			json_t *p = obj_claim(pod, rs, true);
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
	if (!err_msg) {
		obj_condition_remove(status, "ReplicaFailure");
		return;
	}
	if (obj_condition(status, "ReplicaFailure"))
		return;
	json_t *ts = obj_time_json(now_ms);
	obj_condition_set(status, json_pack("{s:s, s:s, s:o, s:s, s:s}", "type", "ReplicaFailure",
	    "status", "True", "lastTransitionTime", ts, "reason", err_reason, "message",
	    err_msg));
}

/* ---- the adapter on the controller core ---------------------------------- */

enum { RS_W_CLAIM, RS_W_CREATE, RS_W_DELETE, RS_W_STATUS };

static const struct kind *
pod_kind(void)
{
	return kind_find_gvk("v1", "Pod");
}

/* The write list of rs_decide: claims (adoptions, releases), then creates
 * (Kubernetes' slowStartBatch stops at the first failure; so does the
 * list), then deletes; the status follows in rs_after, which knows how the
 * list went. */
static int
rs_ctrl_decide(struct ctrl *c, const json_t *rs, int64_t now_ms, struct ctrl_writes *w)
{
	json_t *pods = NULL, *p;
	struct rs_actions a = { 0 };
	size_t i;
	if (store_list(ctrl_store(c), "pods", obj_namespace(rs), &pods, NULL) < 0 ||
	    rs_decide(rs, pods, now_ms, &a) < 0) {
		json_decref(pods);
		return 0;
	}
	json_array_foreach(a.adopt, i, p)
		ctrl_writes_push(w, CTRL_UPDATE, pod_kind(), json_incref(p), RS_W_CLAIM);
	json_array_foreach(a.release, i, p)
		ctrl_writes_push(w, CTRL_UPDATE, pod_kind(), json_incref(p), RS_W_CLAIM);
	for (int n = 0; n < a.create; n++)
		ctrl_writes_push(w, CTRL_CREATE, pod_kind(), rs_pod_from_template(rs), RS_W_CREATE);
	json_array_foreach(a.remove, i, p)
		ctrl_writes_push(w, CTRL_DELETE, pod_kind(), json_pack("{s:{s:O}}", "metadata",
		    "name", p), RS_W_DELETE);
	w->carry = json_incref(a.status);
	w->requeue_ms = a.requeue_ms;
	rs_actions_free(&a);
	json_decref(pods);
	return 0;
}

/* The status, with ReplicaFailure after a failed create or delete; none
 * when a claim failed (the next sync decides again). */
static void
rs_after(struct ctrl *c, const json_t *rs, const struct ctrl_write *failed,
    struct ctrl_writes *w)
{
	(void)c;
	if (!w->carry || (failed && failed->tag == RS_W_CLAIM))
		return;
	const char *reason = !failed ? NULL :
	    failed->tag == RS_W_CREATE ? "FailedCreate" : "FailedDelete";
	rs_status_finish(w->carry, reason, failed ? w->error : NULL, time_now_ms());
	if (json_equal(w->carry, json_object_get(rs, "status")))
		return;
	json_t *copy = json_deep_copy(rs);
	json_object_set(copy, "status", w->carry);
	ctrl_writes_push(w, CTRL_STATUS, NULL, copy, RS_W_STATUS);
}

/* Events for pod creates and deletes, none for claims and the status. */
static void
rs_result(struct ctrl *c, const json_t *rs, const struct ctrl_write *w, const json_t *made,
    const char *err)
{
	if (w->tag == RS_W_CREATE || w->tag == RS_W_DELETE)
		ctrl_record_pod_write(c, rs, w, made, err);
}

static const struct ctrl_desc rs_desc = {
	.name = "replicaset", .component = RS_COMPONENT,
	.api_version = "apps/v1", .kind = "ReplicaSet", .res = "apps/replicasets",
	/* A ReplicaSet's pods are created in the commit that makes it (or its
	 * scale) durable; pods are heard once committed, so that a pod's
	 * status commit never waits for this controller's sync. */
	.sources = {
		{ .res = "apps/replicasets", .staged = true },
		{ "pods", ctrl_enqueue_pod_owner },
	},
	.decide = rs_ctrl_decide, .result = rs_result, .after = rs_after,
	.quiet_echo = true,
};

int
ctrl_replicaset_start(struct api *api, struct ctrl **out)
{
	return ctrl_start(api, &rs_desc, NULL, out);
}
