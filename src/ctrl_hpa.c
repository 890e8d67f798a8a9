/* ctrl_hpa.c — the HorizontalPodAutoscaler controller on the controller
 * core: every sync period it reads the target's scale (spec.replicas and
 * selector of a Deployment, StatefulSet, ReplicaSet or Rollout), the pods it
 * selects and their usage from the node agent (metrics.k8s.io), asks
 * hpa_decide, then writes the scale, the SuccessfulRescale Event and the
 * HPA's status, as kube-controller-manager's podautoscaler does. */
#include "hpa.h"
#include "log.h"
#include "obs_custom.h"
#include "quantity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HPA_COMPONENT "horizontal-pod-autoscaler"
#define HPA_WAKE_MAX 32		/* Services with requests held at the proxy */
#define HPA_WAKE_MS 3000	/* the proxy repeats each second while they wait */
#define HPA_WAKE_FLOOR 100	/* milli-requests/s: one held request per 10 s */

/* The kinds a scaleTargetRef may name: those with a /scale subresource. */
static const char *const scalable[] = { "Deployment", "StatefulSet", "ReplicaSet",
	"Rollout" };

/* What is remembered per HPA (upstream: the controller's recommendations
 * and scale-event maps), dropped when the HPA goes. */
struct hpa_mem {
	char *key;
	struct hpa_history hist;
	int32_t from;		/* replicas before the scale write in flight */
	char reason[256];	/* and why it was made */
	struct hpa_mem *next;
};

struct ctrl_hpa {
	struct ctrl *core;
	int64_t sync_ms;
	struct hpa_config cfg;
	hpa_usage_fn *usage;
	void *usage_arg;
	struct obs_custom *custom;	/* Pods, Object, External values; NULL: none */
	struct hpa_mem *mem;
	struct { char svc[320]; int64_t ms; } wake[HPA_WAKE_MAX];	/* held requests */
};

enum { HPA_W_SCALE = 1, HPA_W_STATUS };

static struct hpa_mem *
mem_get(struct ctrl_hpa *h, const json_t *hpa, bool create)
{
	char key[512];
	snprintf(key, sizeof key, "%s/%s", obj_namespace(hpa), obj_name(hpa));
	for (struct hpa_mem **m = &h->mem; *m; m = &(*m)->next) {
		if (strcmp((*m)->key, key))
			continue;
		if (create)
			return *m;
		struct hpa_mem *gone = *m;	/* the HPA is gone: forget it */
		*m = gone->next;
		free(gone->key);
		free(gone);
		return NULL;
	}
	if (!create)
		return NULL;
	struct hpa_mem *m = xcalloc(1, sizeof *m);
	m->key = xstrdup(key);
	m->next = h->mem;
	h->mem = m;
	return m;
}

/* A quantity (string or number) in milli-units; -1 when absent or bad. */
static int64_t
milli(const json_t *q)
{
	int64_t v;
	if (json_is_integer(q))
		return json_integer_value(q) * 1000;
	if (json_is_string(q) && quantity_scaled(json_string_value(q), -3, &v) == 0)
		return v;
	return -1;
}

static const char *const res_names[HPA_NRES] = { "cpu", "memory" };

/* The pod as the replica calculator sees it; usage is its PodMetrics (or NULL). */
static void
pod_view(const json_t *pod, const json_t *usage, struct hpa_pod *p)
{
	const char *phase = json_string_value(obj_get_path(pod, "status.phase")) ?: "Pending";
	const json_t *ready = obj_condition(json_object_get(pod, "status"), "Ready");
	*p = (struct hpa_pod){ .name = obj_name(pod),
		.ignored = obj_is_deleting(pod) || !strcmp(phase, "Failed"),
		.pending = !strcmp(phase, "Pending"),
		.start_ms = obj_time_ms(obj_get_path(pod, "status.startTime")),
		.ready = ready && !strcmp(json_string_value(json_object_get(ready, "status")) ?:
		    "", "True"),
		.ready_ms = obj_time_ms(json_object_get(ready, "lastTransitionTime")) };
	p->has_ready = ready && p->start_ms;
	const json_t *c;
	size_t i;
	for (int r = 0; r < HPA_NRES; r++)
		p->has_request[r] = json_array_size(obj_get_path(pod, "spec.containers")) > 0;
	json_array_foreach(obj_get_path(pod, "spec.containers"), i, c)
		for (int r = 0; r < HPA_NRES; r++) {
			int64_t v = milli(json_object_get(obj_get_path(c, "resources.requests"),
			    res_names[r]));
			if (v < 0)
				p->has_request[r] = false;
			else
				p->request[r] += v;
		}
	if (!usage)
		return;
	p->has_metric = true;
	p->metric_ms = obj_time_ms(json_object_get(usage, "timestamp"));
	const char *w = json_string_value(json_object_get(usage, "window"));
	p->window_ms = w ? (int64_t)(strtod(w, NULL) * 1000) : 0;
	json_array_foreach(json_object_get(usage, "containers"), i, c)
		for (int r = 0; r < HPA_NRES; r++) {
			int64_t v = milli(obj_get_path(c, r == HPA_CPU ? "usage.cpu" :
			    "usage.memory"));
			p->usage[r] += v > 0 ? v : 0;
		}
}

/* The target of hpa (new reference) and its kind, or NULL with why. */
static json_t *
get_target(struct ctrl *c, const json_t *hpa, const struct kind **k, char *why, size_t len)
{
	const json_t *ref = obj_get_path(hpa, "spec.scaleTargetRef");
	const char *av = json_string_value(json_object_get(ref, "apiVersion")) ?: "";
	const char *kn = json_string_value(json_object_get(ref, "kind")) ?: "";
	const char *name = json_string_value(json_object_get(ref, "name")) ?: "";
	*k = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(scalable); i++)
		if (!strcmp(kn, scalable[i]))
			*k = kind_find_gvk(av, kn);
	if (!*k) {
		snprintf(why, len, "the HPA controller was unable to get the target's current "
		    "scale: no matches for kind \"%s\" in group version \"%s\" with a scale "
		    "subresource", kn, av);
		return NULL;
	}
	char res[160];
	snprintf(res, sizeof res, "%s%s%s", (*k)->group, (*k)->group[0] ? "/" : "", (*k)->plural);
	json_t *t = NULL;
	if (store_get(ctrl_store(c), res, obj_namespace(hpa), name, &t) < 0 || !t) {
		snprintf(why, len, "the HPA controller was unable to get the target's current "
		    "scale: %s.%s \"%s\" not found", (*k)->plural, (*k)->group, name);
		return NULL;
	}
	return t;
}

/* The pods of the target's selector, as the replica calculator's views
 * (*pods and the usages they borrow names from stay in *keep). */
static size_t
select_pods(struct ctrl_hpa *h, const json_t *hpa, const json_t *target,
    struct hpa_pod **pods, json_t **keep)
{
	struct selector *sel = NULL;
	char *msg = NULL;
	json_t *all = NULL, *pod;
	size_t i, n = 0;
	*pods = NULL;
	*keep = json_array();
	if (selector_from_json(obj_get_path(target, "spec.selector"), &sel, &msg) < 0 ||
	    store_list(ctrl_store(h->core), "pods", obj_namespace(hpa), &all, NULL) < 0) {
		free(msg);
		selector_free(sel);
		return 0;
	}
	*pods = xcalloc(json_array_size(all) + 1, sizeof **pods);
	json_array_foreach(all, i, pod) {
		if (!selector_matches(sel, obj_labels(pod)))
			continue;
		json_t *u = h->usage ? h->usage(h->usage_arg, obj_namespace(pod), obj_name(pod)) :
		    NULL;
		json_array_append(*keep, pod);
		if (u)
			json_array_append_new(*keep, u);
		pod_view(pod, u, &(*pods)[n++]);
	}
	json_decref(all);
	selector_free(sel);
	return n;
}

/* Requests for Service ns/name wait at the proxy (told within
 * HPA_WAKE_MS), and metric is one of requests. */
static bool
waking(const struct ctrl_hpa *h, const char *ns, const char *kind, const char *name,
    const char *metric)
{
	char key[320];
	if (strcmp(kind, "Service") || strcmp(metric, "requests_per_second"))
		return false;
	snprintf(key, sizeof key, "%s/%s", ns, name);
	int64_t now = time_now_ms();
	for (size_t i = 0; i < HPA_WAKE_MAX; i++)
		if (h->wake[i].ms > now - HPA_WAKE_MS && !strcmp(h->wake[i].svc, key))
			return true;
	return false;
}

void
ctrl_hpa_activate(struct ctrl_hpa *h, const char *service)
{
	size_t slot = 0;
	for (size_t i = 0; i < HPA_WAKE_MAX; i++) {
		if (!strcmp(h->wake[i].svc, service)) {
			slot = i;
			break;
		}
		if (h->wake[i].ms < h->wake[slot].ms)
			slot = i;	/* the oldest, or a free one */
	}
	snprintf(h->wake[slot].svc, sizeof h->wake[slot].svc, "%s", service);
	h->wake[slot].ms = time_now_ms();
	/* the HPAs with an Object metric on that Service decide now */
	const char *slash = strchr(service, '/');
	if (!slash)
		return;
	char *ns = xstrndup(service, (size_t)(slash - service));
	json_t *all = NULL, *hpa, *m;
	size_t i, k;
	if (store_list(ctrl_store(h->core), "autoscaling/horizontalpodautoscalers", ns, &all,
	    NULL) == 0)
		json_array_foreach(all, i, hpa)
			json_array_foreach(obj_get_path(hpa, "spec.metrics"), k, m) {
				const json_t *o = obj_get_path(m, "object.describedObject");
				if (!strcmp(json_string_value(json_object_get(o, "kind")) ?: "", "Service")
				    && !strcmp(json_string_value(json_object_get(o, "name")) ?: "",
				    slash + 1)) {
					ctrl_enqueue(h->core, ns, obj_name(hpa));
					break;
				}
			}
	json_decref(all);
	free(ns);
}

/* The values of the HPA's Pods, Object and External metrics, read as the
 * controller manager reads them from the custom and external metrics APIs
 * (per spec.metrics index; free with inputs_free). */
static struct hpa_metric_in *
read_inputs(struct ctrl_hpa *h, const json_t *hpa, const struct hpa_pod *pods, size_t npods)
{
	const json_t *metrics = obj_get_path(hpa, "spec.metrics"), *m;
	const char *ns = obj_namespace(hpa);
	struct hpa_metric_in *in = xcalloc(json_array_size(metrics) + 1, sizeof *in);
	size_t i;
	json_array_foreach(metrics, i, m) {
		const char *type = json_string_value(json_object_get(m, "type")) ?: "";
		struct hpa_metric_in *x = &in[i];
		x->rc = -ENOENT;
		snprintf(x->why, sizeof x->why, "no custom metrics API (the HPA runs without it)");
		if (!h->custom)
			continue;
		if (!strcmp(type, "Pods")) {
			const char *name = json_string_value(obj_get_path(m, "pods.metric.name")) ?: "";
			x->pod_values = xcalloc(npods + 1, sizeof *x->pod_values);
			snprintf(x->why, sizeof x->why, "no metrics returned from custom metrics API");
			for (size_t k = 0; k < npods; k++) {
				x->pod_values[k] = HPA_NO_VALUE;
				if (obs_custom_value(h->custom, "Pod", ns, pods[k].name, name,
				    &x->pod_values[k], x->why, sizeof x->why) == 0)
					x->rc = 0;
			}
		} else if (!strcmp(type, "Object")) {
			const json_t *o = obj_get_path(m, "object.describedObject");
			const char *kind = json_string_value(json_object_get(o, "kind")) ?: "";
			const char *name = json_string_value(json_object_get(o, "name")) ?: "";
			const char *metric = json_string_value(obj_get_path(m, "object.metric.name")) ?:
			    "";
			x->rc = obs_custom_value(h->custom, kind, ns, name, metric, &x->value, x->why,
			    sizeof x->why);
			if (waking(h, ns, kind, name, metric)) {
				/* a request waits at the proxy: it is demand the
				 * figures cannot show yet (scale from zero) */
				x->value = x->rc == 0 && x->value > HPA_WAKE_FLOOR ? x->value :
				    HPA_WAKE_FLOOR;
				x->rc = 0;
			}
		} else if (!strcmp(type, "External")) {
			x->rc = obs_custom_external(h->custom, ns, json_string_value(obj_get_path(m,
			    "external.metric.name")) ?: "", obj_get_path(m, "external.metric.selector"),
			    &x->value, x->why, sizeof x->why);
		}
	}
	return in;
}

static void
inputs_free(struct hpa_metric_in *in, const json_t *hpa)
{
	for (size_t i = 0; i < json_array_size(obj_get_path(hpa, "spec.metrics")); i++)
		free(in[i].pod_values);
	free(in);
}

static void
push_events(struct ctrl_writes *w, const json_t *events)
{
	const json_t *e;
	size_t i;
	static const char *const reasons[] = { "FailedGetResourceMetric",
		"FailedComputeMetricsReplicas", "InvalidMetricSourceType", "FailedGetScale",
		"FailedGetPodsMetric", "FailedGetObjectMetric", "FailedGetExternalMetric" };
	json_array_foreach(events, i, e) {
		const char *r = json_string_value(json_object_get(e, "reason"));
		for (size_t j = 0; j < ARRAY_SIZE(reasons); j++)
			if (!strcmp(r, reasons[j]))	/* ctrl_writes_event wants static strings */
				ctrl_writes_event(w, "Warning", reasons[j],
				    json_string_value(json_object_get(e, "message")));
	}
}

static int
hpa_ctrl_decide(struct ctrl *c, const json_t *hpa, int64_t now_ms, struct ctrl_writes *w)
{
	struct ctrl_hpa *h = ctrl_data(c);
	if (!obj_uid(hpa)) {
		mem_get(h, hpa, false);
		return 0;
	}
	struct hpa_mem *m = mem_get(h, hpa, true);
	const struct kind *k;
	char why[512];
	w->requeue_ms = h->sync_ms;
	json_t *target = get_target(c, hpa, &k, why, sizeof why);
	if (!target) {
		json_t *st = json_deep_copy(json_object_get(hpa, "status"));
		if (!st)
			st = json_object();
		json_t *cond = json_pack("{s:s, s:s, s:o, s:s, s:s}", "type", "AbleToScale",
		    "status", "False", "lastTransitionTime", obj_time_json(now_ms), "reason",
		    "FailedGetScale", "message", why);
		obj_condition_set(st, cond);
		ctrl_writes_event(w, "Warning", "FailedGetScale", why);
		w->carry = st;
		return 0;
	}
	struct hpa_pod *pods;
	json_t *keep;
	size_t n = select_pods(h, hpa, target, &pods, &keep);
	struct hpa_decision d;
	int32_t cur = (int32_t)json_integer_value(obj_get_path(target, "spec.replicas"));
	struct hpa_metric_in *in = read_inputs(h, hpa, pods, n);
	hpa_decide(hpa, cur, pods, n, in, &m->hist, &h->cfg, now_ms, &d);
	inputs_free(in, hpa);
	push_events(w, d.events);
	if (d.rescale) {
		json_t *t = json_deep_copy(target);
		json_object_set_new(json_object_get(t, "spec"), "replicas",
		    json_integer(d.desired));
		ctrl_writes_push(w, CTRL_UPDATE, k, t, HPA_W_SCALE);
		char *msg = xasprintf("New size: %d; reason: %s", d.desired, d.reason);
		ctrl_writes_event(w, "Normal", "SuccessfulRescale", msg);
		free(msg);
		m->from = cur;
		snprintf(m->reason, sizeof m->reason, "%s", d.reason);
	}
	w->carry = json_incref(d.status);
	hpa_decision_free(&d);
	free(pods);
	json_decref(keep);
	json_decref(target);
	return 0;
}

/* The status after the list: a failed scale write keeps the replicas and
 * says why (FailedUpdateScale); written only when it changed. */
static void
hpa_after(struct ctrl *c, const json_t *hpa, const struct ctrl_write *failed,
    struct ctrl_writes *w)
{
	if (!w->carry)
		return;
	if (failed && failed->tag == HPA_W_SCALE) {
		char *ev = xasprintf("New size: %lld; reason: %s; error: %s",
		    (long long)json_integer_value(obj_get_path(failed->obj, "spec.replicas")),
		    mem_get(ctrl_data(c), hpa, true)->reason, w->error ? w->error : "unknown error");
		ctrl_writes_event(w, "Warning", "FailedRescale", ev);
		free(ev);
		char *msg = xasprintf("the HPA controller was unable to update the target scale: "
		    "%s", w->error ? w->error : "unknown error");
		obj_condition_set(w->carry, json_pack("{s:s, s:s, s:o, s:s, s:s}", "type",
		    "AbleToScale", "status", "False", "lastTransitionTime",
		    obj_time_json(time_now_ms()), "reason", "FailedUpdateScale", "message", msg));
		free(msg);
		json_object_set(w->carry, "desiredReplicas", json_object_get(w->carry,
		    "currentReplicas"));
		json_t *last = obj_get_path(hpa, "status.lastScaleTime");
		if (last)
			json_object_set(w->carry, "lastScaleTime", last);
		else
			json_object_del(w->carry, "lastScaleTime");
	}
	if (json_equal(w->carry, json_object_get(hpa, "status")))
		return;
	json_t *copy = json_deep_copy(hpa);
	json_object_set(copy, "status", w->carry);
	ctrl_writes_push(w, CTRL_STATUS, NULL, copy, HPA_W_STATUS);
}

/* A scale write that succeeded is a scale event for the rate policies. */
static void
hpa_result(struct ctrl *c, const json_t *hpa, const struct ctrl_write *w, const json_t *made,
    const char *err)
{
	(void)made;
	if (w->tag != HPA_W_SCALE)
		return;
	struct ctrl_hpa *h = ctrl_data(c);
	struct hpa_mem *m = mem_get(h, hpa, true);
	int32_t to = (int32_t)json_integer_value(obj_get_path(w->obj, "spec.replicas"));
	if (err)
		return;		/* hpa_after records FailedRescale */
	hpa_history_scaled(&m->hist, hpa, m->from, to, time_now_ms());
	log_info(HPA_COMPONENT, "%s/%s: scaled %s from %d to %d", obj_namespace(hpa),
	    obj_name(hpa), obj_name(w->obj), m->from, to);
}

static const struct ctrl_desc hpa_desc = {
	.name = "hpa", .component = HPA_COMPONENT,
	.api_version = "autoscaling/v2", .kind = "HorizontalPodAutoscaler",
	.res = "autoscaling/horizontalpodautoscalers",
	.sources = { { "autoscaling/horizontalpodautoscalers", NULL } },
	.decide = hpa_ctrl_decide, .after = hpa_after, .result = hpa_result, .on_gone = true,
};

int
ctrl_hpa_start(struct api *api, int64_t sync_ms, hpa_usage_fn *usage, void *arg,
    struct obs_custom *custom, struct ctrl_hpa **out)
{
	struct ctrl_hpa *h = xcalloc(1, sizeof *h);
	h->custom = custom;
	h->sync_ms = sync_ms > 0 ? sync_ms : 15000;
	hpa_config_default(&h->cfg);
	h->usage = usage;
	h->usage_arg = arg;
	int rc = ctrl_start(api, &hpa_desc, h, &h->core);
	if (rc < 0) {
		free(h);
		return rc;
	}
	*out = h;
	return 0;
}

void
ctrl_hpa_stop(struct ctrl_hpa *h)
{
	if (!h)
		return;
	ctrl_stop(h->core);
	while (h->mem) {
		struct hpa_mem *m = h->mem;
		h->mem = m->next;
		free(m->key);
		free(m);
	}
	free(h);
}
