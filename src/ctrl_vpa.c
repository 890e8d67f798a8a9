/* ctrl_vpa.c — the VPA recommender on the controller core: every interval
 * it reads the usage of the pods of each VerticalPodAutoscaler's target
 * from the node agent (metrics.k8s.io, the cgroup samples), adds new
 * samples and OOM kills to the per-container histograms (vpa_hist.c),
 * writes status.recommendation and, every checkpoint interval, a
 * VerticalPodAutoscalerCheckpoint per container so history survives a
 * restart, as upstream's recommender does. */
#include "vpa.h"
#include "log.h"
#include "quantity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VPA_COMPONENT "vpa-recommender"
#define CHECKPOINTS "autoscaling.k8s.io/verticalpodautoscalercheckpoints"

/* The kinds a targetRef may name, and their store resources. */
static const struct { const char *kind, *res; } targets[] = {
	{ "Deployment", "apps/deployments" }, { "StatefulSet", "apps/statefulsets" },
	{ "ReplicaSet", "apps/replicasets" }, { "DaemonSet", "apps/daemonsets" },
	{ "Rollout", "argoproj.io/rollouts" },
};

/* One container name of a VPA: its aggregate history. */
struct vctr {
	char *name;
	struct vpa_state st;
	bool dirty;		/* samples since the last checkpoint */
	struct vctr *next;
};

/* One container of one pod: what was read of it already. */
struct vpc {
	char *key;		/* pod uid "/" container */
	int64_t last_ms;	/* the newest metrics timestamp added */
	int64_t last_oom_ms;	/* the newest OOM kill added */
	struct vpa_peak pk;
	bool seen;		/* in this sync's pods */
	struct vpc *next;
};

/* What is remembered per VPA, dropped when it goes. */
struct vmem {
	char *key, *uid;
	bool loaded;		/* checkpoints read */
	int64_t restored_ms;	/* the newest checkpoint read: OOMs before it are in it */
	int64_t cp_ms;		/* the last checkpoint write */
	struct vctr *ctrs;
	struct vpc *pcs;
	struct vmem *next;
};

struct ctrl_vpa {
	struct ctrl *core;
	int64_t interval_ms, checkpoint_ms;
	struct vpa_config cfg;
	vpa_usage_fn *usage;
	void *usage_arg;
	struct vmem *mem;
};

static void
vmem_free(struct vmem *m)
{
	while (m->ctrs) {
		struct vctr *c = m->ctrs;
		m->ctrs = c->next;
		free(c->name);
		free(c);
	}
	while (m->pcs) {
		struct vpc *p = m->pcs;
		m->pcs = p->next;
		free(p->key);
		free(p);
	}
	free(m->key);
	free(m->uid);
	free(m);
}

/* The memory of vpa (made, or reset when its uid changed); NULL and
 * forgotten when vpa is gone (no uid). */
static struct vmem *
vmem_get(struct ctrl_vpa *v, const json_t *vpa)
{
	char key[512];
	snprintf(key, sizeof key, "%s/%s", obj_namespace(vpa), obj_name(vpa));
	for (struct vmem **m = &v->mem; *m; m = &(*m)->next) {
		if (strcmp((*m)->key, key))
			continue;
		if (obj_uid(vpa) && !strcmp((*m)->uid, obj_uid(vpa)))
			return *m;
		struct vmem *gone = *m;
		*m = gone->next;
		vmem_free(gone);
		break;
	}
	if (!obj_uid(vpa))
		return NULL;
	struct vmem *m = xcalloc(1, sizeof *m);
	m->key = xstrdup(key);
	m->uid = xstrdup(obj_uid(vpa));
	m->next = v->mem;
	v->mem = m;
	return m;
}

static struct vctr *
ctr_get(struct ctrl_vpa *v, struct vmem *m, const char *name)
{
	for (struct vctr *c = m->ctrs; c; c = c->next)
		if (!strcmp(c->name, name))
			return c;
	struct vctr *c = xcalloc(1, sizeof *c);
	c->name = xstrdup(name);
	vpa_state_init(&c->st, &v->cfg);
	c->next = m->ctrs;
	m->ctrs = c;
	return c;
}

static struct vpc *
pc_get(struct vmem *m, const char *uid, const char *ctr)
{
	char key[512];
	snprintf(key, sizeof key, "%s/%s", uid, ctr);
	for (struct vpc *p = m->pcs; p; p = p->next)
		if (!strcmp(p->key, key))
			return p;
	struct vpc *p = xcalloc(1, sizeof *p);
	p->key = xstrdup(key);
	p->last_ms = p->last_oom_ms = m->restored_ms;
	p->next = m->pcs;
	m->pcs = p;
	return p;
}

/* Forgets the pod containers not seen this sync (their pods are gone). */
static void
pcs_prune(struct vmem *m)
{
	for (struct vpc **p = &m->pcs; *p; ) {
		if ((*p)->seen) {
			(*p)->seen = false;
			p = &(*p)->next;
			continue;
		}
		struct vpc *gone = *p;
		*p = gone->next;
		free(gone->key);
		free(gone);
	}
}

/* The history in vpa's checkpoints (owned by this VPA), once. */
static void
load_checkpoints(struct ctrl_vpa *v, struct vmem *m, const json_t *vpa)
{
	json_t *all = NULL, *cp;
	size_t i;
	m->loaded = true;
	if (store_list(ctrl_store(v->core), CHECKPOINTS, obj_namespace(vpa), &all, NULL) < 0)
		return;
	json_array_foreach(all, i, cp) {
		const json_t *own = json_array_get(obj_get_path(cp, "metadata.ownerReferences"), 0);
		if (strcmp(obj_str_at(cp, "spec.vpaObjectName"), obj_name(vpa)) ||
		    (own && strcmp(obj_str(own, "uid"), m->uid)))
			continue;
		struct vpa_state st;
		if (vpa_state_load(&st, json_object_get(cp, "status"), &v->cfg) < 0) {
			log_warn(VPA_COMPONENT, "%s: checkpoint %s unreadable, history starts anew",
			    m->key, obj_name(cp));
			continue;
		}
		ctr_get(v, m, obj_str_at(cp, "spec.containerName"))->st = st;
		int64_t t = obj_time_ms(obj_get_path(cp, "status.lastUpdateTime"));
		m->restored_ms = t > m->restored_ms ? t : m->restored_ms;
	}
	json_decref(all);
}

/* The target of vpa (new reference), or NULL with why. */
static json_t *
get_target(struct ctrl_vpa *v, const json_t *vpa, char *why, size_t len)
{
	const char *kind = obj_str_at(vpa, "spec.targetRef.kind");
	const char *name = obj_str_at(vpa, "spec.targetRef.name");
	for (size_t i = 0; i < ARRAY_SIZE(targets); i++) {
		json_t *t = NULL;
		if (strcmp(kind, targets[i].kind))
			continue;
		if (store_get(ctrl_store(v->core), targets[i].res, obj_namespace(vpa), name,
		    &t) == 0 && t)
			return t;
		snprintf(why, len, "Cannot read targetRef: %s \"%s\" not found", kind, name);
		return NULL;
	}
	snprintf(why, len, "Cannot read targetRef: kind \"%s\" is not one of Deployment, "
	    "StatefulSet, ReplicaSet, DaemonSet, Rollout", kind);
	return NULL;
}

/* A quantity of a container's requests, in cores or bytes (0: none). */
static double
request_of(const json_t *ct, const char *res)
{
	double v = 0;
	const json_t *q = json_object_get(obj_get_path(ct, "resources.requests"), res);
	if (json_is_string(q))
		quantity_parse(json_string_value(q), &v);
	else if (json_is_number(q))
		v = json_number_value(q);
	return v;
}

/* The OOM kills in pod's container statuses not added yet. */
static void
pod_ooms(struct ctrl_vpa *v, struct vmem *m, const json_t *pod)
{
	const json_t *cs;
	size_t i;
	json_array_foreach(obj_get_path(pod, "status.containerStatuses"), i, cs) {
		static const char *const where[] = { "lastState.terminated", "state.terminated" };
		const char *name = obj_str(cs, "name");
		for (size_t k = 0; k < ARRAY_SIZE(where); k++) {
			const json_t *t = obj_get_path(cs, where[k]);
			int64_t at = obj_time_ms(json_object_get(t, "finishedAt"));
			struct vpc *p;
			if (strcmp(obj_str(t, "reason"), "OOMKilled") || !at)
				continue;
			p = pc_get(m, obj_uid(pod), name);
			p->seen = true;
			if (at <= p->last_oom_ms)
				continue;
			p->last_oom_ms = at;
			struct vctr *c = ctr_get(v, m, name);
			const json_t *ct = vpa_spec_container(json_object_get(pod, "spec"), name);
			vpa_state_oom(&c->st, &p->pk, request_of(ct, "memory"), at, &v->cfg);
			c->dirty = true;
			log_info(VPA_COMPONENT, "%s: OOM kill of %s/%s recorded", m->key,
			    obj_name(pod), name);
		}
	}
}

/* The usage samples of pod not added yet. */
static void
pod_samples(struct ctrl_vpa *v, struct vmem *m, const json_t *pod)
{
	json_t *u = v->usage ? v->usage(v->usage_arg, obj_namespace(pod), obj_name(pod)) : NULL;
	const json_t *c;
	size_t i;
	int64_t at = obj_time_ms(json_object_get(u, "timestamp"));
	json_array_foreach(json_object_get(u, "containers"), i, c) {
		const char *name = obj_str(c, "name");
		const json_t *ct = vpa_spec_container(json_object_get(pod, "spec"), name);
		struct vpc *p = pc_get(m, obj_uid(pod), name);
		double cpu, mem;
		p->seen = true;
		if (!ct || at <= p->last_ms ||
		    quantity_parse(obj_str_at(c, "usage.cpu"), &cpu) < 0 ||
		    quantity_parse(obj_str_at(c, "usage.memory"), &mem) < 0)
			continue;
		p->last_ms = at;
		struct vctr *vc = ctr_get(v, m, name);
		vpa_state_add_cpu(&vc->st, cpu, request_of(ct, "cpu"), at);
		vpa_state_add_mem(&vc->st, &p->pk, mem, at, &v->cfg);
		vc->dirty = true;
	}
	json_decref(u);
}

/* Reads the target's running pods; returns how many matched. */
static size_t
sample_pods(struct ctrl_vpa *v, struct vmem *m, const json_t *vpa, const json_t *target)
{
	struct selector *sel = NULL;
	char *msg = NULL;
	json_t *all = NULL, *pod;
	size_t i, n = 0;
	if (selector_from_json(obj_get_path(target, "spec.selector"), &sel, &msg) < 0 ||
	    store_list(ctrl_store(v->core), "pods", obj_namespace(vpa), &all, NULL) < 0) {
		free(msg);
		selector_free(sel);
		return 0;
	}
	json_array_foreach(all, i, pod) {
		if (!selector_matches(sel, obj_labels(pod)) || obj_is_deleting(pod))
			continue;
		n++;
		pod_ooms(v, m, pod);
		if (!strcmp(obj_str_at(pod, "status.phase"), "Running"))
			pod_samples(v, m, pod);
	}
	pcs_prune(m);
	json_decref(all);
	selector_free(sel);
	return n;
}

/* A container with CPU samples, or only memory peaks (a container that is
 * OOM-killed before its first usage sample needs a recommendation most). */
static bool
has_history(const struct vctr *c)
{
	return c->st.samples > 0 || !vpa_hist_empty(&c->st.mem);
}

static int
cmp_rec(const void *a, const void *b)
{
	return strcmp(obj_str(*(json_t *const *)a, "containerName"),
	    obj_str(*(json_t *const *)b, "containerName"));
}

/* status.recommendation.containerRecommendations, by container name. */
static json_t *
recommendations(struct ctrl_vpa *v, struct vmem *m, const json_t *vpa)
{
	size_t n = 0, k = 0;
	for (struct vctr *c = m->ctrs; c; c = c->next)
		n += has_history(c);
	json_t **v_recs = xcalloc(n + 1, sizeof *v_recs);
	for (struct vctr *c = m->ctrs; c; c = c->next) {
		struct vpa_estimate e;
		if (!has_history(c))
			continue;
		vpa_estimate(&c->st, n, &v->cfg, &e);
		json_t *r = vpa_container_recommendation(vpa, c->name, &e);
		if (r)
			v_recs[k++] = r;
	}
	qsort(v_recs, k, sizeof *v_recs, cmp_rec);
	json_t *out = json_array();
	for (size_t i = 0; i < k; i++)
		json_array_append_new(out, v_recs[i]);
	free(v_recs);
	return out;
}

static void
set_cond(json_t *st, const char *type, bool on, const char *reason, const char *msg,
    int64_t now_ms)
{
	json_t *c = json_pack("{s:s, s:s, s:o}", "type", type, "status", on ? "True" : "False",
	    "lastTransitionTime", obj_time_json(now_ms));
	if (reason)
		json_object_set_new(c, "reason", json_string(reason));
	if (msg)
		json_object_set_new(c, "message", json_string(msg));
	obj_condition_set(st, c);
}

/* A checkpoint write per container with new samples (NAME-CONTAINER, owned
 * by the VPA so the garbage collector takes it with it). */
static void
push_checkpoints(struct ctrl_vpa *v, struct vmem *m, const json_t *vpa, int64_t now_ms,
    struct ctrl_writes *w)
{
	const struct kind *k = kind_find_gvk("autoscaling.k8s.io/v1",
	    "VerticalPodAutoscalerCheckpoint");
	for (struct vctr *c = m->ctrs; c; c = c->next) {
		if (!c->dirty || !has_history(c))
			continue;
		char name[512];
		json_t *cp = NULL;
		snprintf(name, sizeof name, "%s-%s", obj_name(vpa), c->name);
		bool exists = store_get(ctrl_store(v->core), CHECKPOINTS, obj_namespace(vpa), name,
		    &cp) == 0 && cp;
		if (!exists)
			cp = json_pack("{s:s, s:s, s:{s:s, s:s, s:[o]}, s:{s:s, s:s}}",
			    "apiVersion", "autoscaling.k8s.io/v1", "kind",
			    "VerticalPodAutoscalerCheckpoint", "metadata", "name", name, "namespace",
			    obj_namespace(vpa), "ownerReferences", json_pack("{s:s, s:s, s:s, s:s}",
			    "apiVersion", "autoscaling.k8s.io/v1", "kind", "VerticalPodAutoscaler",
			    "name", obj_name(vpa), "uid", m->uid), "spec", "vpaObjectName",
			    obj_name(vpa), "containerName", c->name);
		json_object_set_new(cp, "status", vpa_state_save(&c->st, now_ms));
		ctrl_writes_push(w, exists ? CTRL_UPDATE : CTRL_CREATE, k, cp, 0);
		c->dirty = false;
	}
	m->cp_ms = now_ms;
}

/* Drops the histories of containers without a sample for the history's
 * length (renamed or removed from the template), and their checkpoints:
 * what a VPA holds stays bounded by the containers it has now. */
static void
expire_histories(struct ctrl_vpa *v, struct vmem *m, const json_t *vpa, int64_t now_ms,
    struct ctrl_writes *w)
{
	const struct kind *k = kind_find_gvk("autoscaling.k8s.io/v1",
	    "VerticalPodAutoscalerCheckpoint");
	for (struct vctr **c = &m->ctrs; *c; ) {
		if (!vpa_state_expired(&(*c)->st, now_ms, &v->cfg)) {
			c = &(*c)->next;
			continue;
		}
		struct vctr *gone = *c;
		char *name = xasprintf("%s-%s", obj_name(vpa), gone->name);
		ctrl_writes_push(w, CTRL_DELETE, k, json_pack("{s:s, s:s, s:{s:s, s:s}}",
		    "apiVersion", "autoscaling.k8s.io/v1", "kind", "VerticalPodAutoscalerCheckpoint",
		    "metadata", "name", name, "namespace", obj_namespace(vpa)), 0);
		log_info(VPA_COMPONENT, "%s: history of container %s expired", m->key, gone->name);
		free(name);
		*c = gone->next;
		free(gone->name);
		free(gone);
	}
}

static int
vpa_decide(struct ctrl *core, const json_t *vpa, int64_t now_ms, struct ctrl_writes *w)
{
	struct ctrl_vpa *v = ctrl_data(core);
	struct vmem *m = vmem_get(v, vpa);
	char why[512];
	if (!m || obj_is_deleting(vpa))
		return 0;
	w->requeue_ms = v->interval_ms;
	if (!vpa_uses_default_recommender(vpa))
		return 0;	/* another recommender's */
	if (!m->loaded)
		load_checkpoints(v, m, vpa);
	json_t *st = json_deep_copy(json_object_get(vpa, "status"));
	if (!st)
		st = json_object();
	json_t *target = get_target(v, vpa, why, sizeof why);
	size_t npods = target ? sample_pods(v, m, vpa, target) : 0;
	expire_histories(v, m, vpa, now_ms, w);
	json_t *recs = recommendations(v, m, vpa);
	if (json_array_size(recs))
		json_object_set_new(st, "recommendation", json_pack("{s:o}",
		    "containerRecommendations", recs));
	else {
		json_decref(recs);
		json_object_del(st, "recommendation");
	}
	set_cond(st, "RecommendationProvided", json_object_get(st, "recommendation") != NULL,
	    NULL, NULL, now_ms);
	if (!target)
		set_cond(st, "ConfigUnsupported", true, "FailedGetTarget", why, now_ms);
	else
		obj_condition_remove(st, "ConfigUnsupported");
	if (target && npods == 0)
		set_cond(st, "NoPodsMatched", true, "NoPodsMatched",
		    "No pods match this VPA object", now_ms);
	else
		obj_condition_remove(st, "NoPodsMatched");
	json_decref(target);
	if (!json_equal(st, json_object_get(vpa, "status"))) {
		json_t *copy = json_deep_copy(vpa);
		json_object_set_new(copy, "status", st);
		ctrl_writes_push(w, CTRL_STATUS, NULL, copy, 0);
	} else {
		json_decref(st);
	}
	if (now_ms - m->cp_ms >= v->checkpoint_ms)
		push_checkpoints(v, m, vpa, now_ms, w);
	return 0;
}

static const struct ctrl_desc vpa_desc = {
	.name = "vpa", .component = VPA_COMPONENT,
	.api_version = "autoscaling.k8s.io/v1", .kind = "VerticalPodAutoscaler",
	.res = "autoscaling.k8s.io/verticalpodautoscalers",
	.sources = { { "autoscaling.k8s.io/verticalpodautoscalers", NULL } },
	.decide = vpa_decide, .on_gone = true,
};

int
ctrl_vpa_start(struct api *api, int64_t interval_ms, int64_t checkpoint_ms,
    vpa_usage_fn *usage, void *arg, struct ctrl_vpa **out)
{
	struct ctrl_vpa *v = xcalloc(1, sizeof *v);
	v->interval_ms = interval_ms > 0 ? interval_ms : 60000;
	v->checkpoint_ms = checkpoint_ms > 0 ? checkpoint_ms : 600000;
	vpa_config_default(&v->cfg);
	v->usage = usage;
	v->usage_arg = arg;
	int rc = ctrl_start(api, &vpa_desc, v, &v->core);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	return 0;
}

void
ctrl_vpa_stop(struct ctrl_vpa *v)
{
	if (!v)
		return;
	ctrl_stop(v->core);
	while (v->mem) {
		struct vmem *m = v->mem;
		v->mem = m->next;
		vmem_free(m);
	}
	free(v);
}
