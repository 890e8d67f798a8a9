/* hpa_decide.c — the HorizontalPodAutoscaler's decision without I/O, as
 * kube-controller-manager's podautoscaler (horizontal.go, replica_calculator.go)
 * computes it: resource metrics per pod grouped into ready / unready / missing /
 * ignored, a proposal per metric with the tolerance, the largest proposal,
 * then stabilization and scaling policies, min / max, status and conditions.
 * ctrl_hpa.c feeds it; tests/unit/test_hpa.c runs Kubernetes' cases on it. */
#include "hpa.h"
#include "quantity.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
hpa_config_default(struct hpa_config *cfg)
{
	*cfg = (struct hpa_config){ .tolerance = 0.1, .cpu_init_ms = 300000,
		.readiness_delay_ms = 30000, .downscale_window_ms = 300000 };
}

/* ---- conditions ----------------------------------------------------------- */

/* upstream setCondition: reason and message replaced, lastTransitionTime
 * kept while the status stays. */
static void
set_cond(json_t *status, const char *type, bool ok, const char *reason, const char *msg,
    int64_t now_ms)
{
	json_t *conds = json_object_get(status, "conditions"), *c;
	if (!json_is_array(conds)) {
		conds = json_array();
		json_object_set_new(status, "conditions", conds);
	}
	size_t i;
	json_t *ts = NULL;
	json_array_foreach(conds, i, c) {
		if (strcmp(json_string_value(json_object_get(c, "type")) ?: "", type))
			continue;
		if (!strcmp(json_string_value(json_object_get(c, "status")) ?: "",
		    ok ? "True" : "False"))
			ts = json_incref(json_object_get(c, "lastTransitionTime"));
		json_array_remove(conds, i);
		break;
	}
	json_array_append_new(conds, json_pack("{s:s, s:s, s:o, s:s, s:s}", "type", type,
	    "status", ok ? "True" : "False", "lastTransitionTime",
	    ts ? ts : obj_time_json(now_ms), "reason", reason, "message", msg));
}

static void
add_event(struct hpa_decision *d, const char *type, const char *reason, const char *msg)
{
	json_array_append_new(d->events, json_pack("{s:s, s:s, s:s}", "type", type, "reason",
	    reason, "message", msg));
}

/* ---- the replica calculator ---------------------------------------------- */

enum group { G_READY, G_UNREADY, G_MISSING, G_IGNORED };

/* groupPods: which pods' samples count for resource res. */
static enum group
group_pod(const struct hpa_pod *p, enum hpa_res res, const struct hpa_config *cfg,
    int64_t now_ms)
{
	if (p->ignored)
		return G_IGNORED;
	if (p->pending)
		return G_UNREADY;
	if (!p->has_metric)
		return G_MISSING;
	if (res != HPA_CPU)
		return G_READY;
	if (!p->has_ready || !p->start_ms)
		return G_UNREADY;
	if (p->start_ms + cfg->cpu_init_ms > now_ms)
		/* still starting: unready, or a sample that began before it was ready */
		return !p->ready || p->metric_ms < p->ready_ms + p->window_ms ? G_UNREADY : G_READY;
	/* unready and never ready since start */
	return !p->ready && p->start_ms + cfg->readiness_delay_ms > p->ready_ms ? G_UNREADY :
	    G_READY;
}

struct sample { int64_t value, request; bool counted; };

/* Sum of values and requests over counted samples. */
static void
totals(const struct sample *s, size_t n, int64_t *val, int64_t *req, size_t *cnt)
{
	*val = *req = 0;
	*cnt = 0;
	for (size_t i = 0; i < n; i++)
		if (s[i].counted) {
			*val += s[i].value;
			*req += s[i].request;
			(*cnt)++;
		}
}

/* The usage ratio of the counted samples: utilization (percent of requests,
 * truncated as upstream's integer division) over target, or the average
 * value over target. */
static double
usage_ratio(const struct sample *s, size_t n, bool util, int64_t target, int64_t *cur,
    int64_t *raw)
{
	int64_t val, req;
	size_t cnt;
	totals(s, n, &val, &req, &cnt);
	*raw = cnt ? val / (int64_t)cnt : 0;
	if (util) {
		*cur = req ? val * 100 / req : 0;
		return (double)*cur / (double)target;
	}
	*cur = *raw;
	return cnt ? ((double)val / (double)cnt) / (double)target : 0;
}

/* GetResourceReplicas / GetRawResourceReplicas: the proposal for one
 * resource metric. *cur: utilization percent (util) or the average value
 * (milli-units); *raw: the average value. Returns 0 or -EINVAL with err. */
static int
resource_replicas(const struct hpa_pod *pods, size_t npods, int32_t current, enum hpa_res res,
    bool util, int64_t target, const struct hpa_config *cfg, int64_t now_ms,
    int32_t *replicas, int64_t *cur, int64_t *raw, char *err, size_t errlen)
{
	static const char *const rname[] = { "cpu", "memory" };
	if (npods == 0) {
		snprintf(err, errlen, "no pods returned by selector while calculating replica count");
		return -EINVAL;
	}
	struct sample *s = xcalloc(npods, sizeof *s);
	enum group *g = xcalloc(npods, sizeof *g);
	size_t ready = 0, unready = 0, missing = 0, metrics = 0;
	int rc = -EINVAL;
	for (size_t i = 0; i < npods; i++) {
		g[i] = group_pod(&pods[i], res, cfg, now_ms);
		ready += g[i] == G_READY;
		unready += g[i] == G_UNREADY;
		missing += g[i] == G_MISSING;
		if (util && g[i] != G_IGNORED && !pods[i].has_request[res]) {
			snprintf(err, errlen, "missing request for %s in pod %s", rname[res],
			    pods[i].name);
			goto out;
		}
		s[i] = (struct sample){ pods[i].usage[res], pods[i].request[res],
			g[i] == G_READY };
		metrics += g[i] == G_READY;
	}
	if (metrics == 0) {
		snprintf(err, errlen, "did not receive metrics for targeted pods (pods might be "
		    "unready)");
		goto out;
	}
	double ratio = usage_ratio(s, npods, util, target, cur, raw);
	bool up_with_unready = unready > 0 && ratio > 1.0;
	/* V6, beyond upstream (Kubernetes #72775): while a rollout's surge pods
	 * make more pods than spec.replicas, a scale-up multiplies the ratio by
	 * spec.replicas, not by the pod count, so surge pods never add replicas
	 * on their own; a real overload still scales up. */
	size_t live = ready + unready + missing;
	size_t surge_cap = current > 0 && live > (size_t)current ? (size_t)current : SIZE_MAX;
	rc = 0;
	if (!up_with_unready && missing == 0) {
		*replicas = fabs(1.0 - ratio) <= cfg->tolerance ? current :
		    (int32_t)ceil(ratio * (double)(ratio > 1.0 && ready > surge_cap ? surge_cap :
		    ready));
		goto out;
	}
	/* missing pods count against the move; unready ones as 0 on a scale-up */
	for (size_t i = 0; i < npods; i++) {
		if (g[i] == G_MISSING && ratio < 1.0)
			s[i] = (struct sample){ util ? s[i].request * (target > 100 ? target : 100) /
			    100 : target, s[i].request, true };
		else if (g[i] == G_MISSING && ratio > 1.0)
			s[i] = (struct sample){ 0, s[i].request, true };
		else if (g[i] == G_UNREADY && up_with_unready)
			s[i] = (struct sample){ 0, s[i].request, true };
	}
	int64_t c2, r2, val, req;
	size_t cnt;
	double nratio = usage_ratio(s, npods, util, target, &c2, &r2);
	totals(s, npods, &val, &req, &cnt);
	if (fabs(1.0 - nratio) <= cfg->tolerance || (ratio < 1.0 && nratio > 1.0) ||
	    (ratio > 1.0 && nratio < 1.0)) {
		*replicas = current;
		goto out;
	}
	int32_t n = (int32_t)ceil(nratio * (double)(nratio > 1.0 && cnt > surge_cap ? surge_cap :
	    cnt));
	*replicas = (nratio < 1.0 && n > current) || (nratio > 1.0 && n < current) ? current : n;
out:
	free(s);
	free(g);
	return rc;
}

/* A milli-value as a Quantity string: "250m", or whole units. */
static json_t *
milli_qty(int64_t v)
{
	char b[32];
	if (v % 1000 == 0)
		snprintf(b, sizeof b, "%lld", (long long)(v / 1000));
	else
		snprintf(b, sizeof b, "%lldm", (long long)v);
	return json_string(b);
}

/* Parses a target quantity into milli-units; -1 when unusable. */
static int64_t
target_milli(const json_t *q)
{
	if (json_is_integer(q))
		return json_integer_value(q) * 1000;
	int64_t v;
	if (json_is_string(q) && quantity_scaled(json_string_value(q), -3, &v) == 0)
		return v;
	return -1;
}

struct metrics_result {
	int32_t replicas;		/* the largest proposal, -1: none */
	char name[160];			/* the metric that proposed it */
	size_t invalid;
	char first_err[640], first_reason[64];
};

/* One metric's outcome. */
struct proposal {
	int32_t replicas;
	json_t *status;			/* its currentMetrics entry (new reference) */
	char name[160];			/* metricNameProposal */
	const char *reason;		/* on failure: the event's and condition's reason */
	char err[512];			/* on failure */
};

/* A Resource metric: cpu or memory of the pods. */
static int
propose_resource(const json_t *m, int32_t current, const struct hpa_pod *pods, size_t npods,
    const struct hpa_metric_in *in, const struct hpa_config *cfg, int64_t now_ms,
    struct proposal *p)
{
	const json_t *src = json_object_get(m, "resource");
	const char *rn = json_string_value(json_object_get(src, "name")) ?: "";
	enum hpa_res res = !strcmp(rn, "memory") ? HPA_MEMORY : HPA_CPU;
	const json_t *t = json_object_get(src, "target");
	bool util = !strcmp(json_string_value(json_object_get(t, "type")) ?: "", "Utilization");
	int64_t target = util ? json_integer_value(json_object_get(t, "averageUtilization")) :
	    target_milli(json_object_get(t, "averageValue"));
	int64_t cur = 0, raw = 0;
	char err[384] = "";
	(void)in;
	p->reason = "FailedGetResourceMetric";
	if (strcmp(rn, "cpu") && strcmp(rn, "memory"))
		snprintf(err, sizeof err, "unable to get metric %s: v6 reports cpu and memory", rn);
	else if (target <= 0)
		snprintf(err, sizeof err, "invalid resource metric source: neither a utilization "
		    "target nor a value target was set");
	else if (resource_replicas(pods, npods, current, res, util, target, cfg, now_ms,
	    &p->replicas, &cur, &raw, err, sizeof err) == 0) {
		json_t *c = json_pack("{s:o}", "averageValue", milli_qty(raw));
		if (util)
			json_object_set_new(c, "averageUtilization", json_integer(cur));
		p->status = json_pack("{s:s, s:{s:s, s:o}}", "type", "Resource", "resource",
		    "name", rn, "current", c);
		snprintf(p->name, sizeof p->name, util ? "%s resource utilization (percentage of "
		    "request)" : "%s resource", rn);
		return 0;
	}
	snprintf(p->err, sizeof p->err, "failed to get %s utilization: %s", rn, err);
	return -EINVAL;
}

/* A Pods metric (GetMetricReplicas): the average of the pods' values against
 * averageValue, grouped as a resource other than cpu is (missing pods count
 * against the move; unready ones only on a scale-up). */
static int
propose_pods(const json_t *m, int32_t current, const struct hpa_pod *pods, size_t npods,
    const struct hpa_metric_in *in, const struct hpa_config *cfg, int64_t now_ms,
    struct proposal *p)
{
	const json_t *src = json_object_get(m, "pods");
	const char *name = json_string_value(obj_get_path(src, "metric.name")) ?: "";
	int64_t target = target_milli(obj_get_path(src, "target.averageValue"));
	int64_t cur = 0, raw = 0;
	char err[384] = "";
	p->reason = "FailedGetPodsMetric";
	if (!in || in->rc < 0) {
		snprintf(p->err, sizeof p->err, "failed to get pods metric value: unable to get "
		    "metric %s: %s", name, in ? in->why : "no custom metrics API");
		return -EINVAL;
	}
	if (target <= 0) {
		snprintf(p->err, sizeof p->err, "invalid pods metric source: no averageValue");
		return -EINVAL;
	}
	/* the pods with this metric's values in the place of memory usage */
	struct hpa_pod *view = xcalloc(npods + 1, sizeof *view);
	for (size_t i = 0; i < npods; i++) {
		view[i] = pods[i];
		view[i].has_metric = in->pod_values && in->pod_values[i] != HPA_NO_VALUE;
		view[i].usage[HPA_MEMORY] = view[i].has_metric ? in->pod_values[i] : 0;
	}
	int rc = resource_replicas(view, npods, current, HPA_MEMORY, false, target, cfg, now_ms,
	    &p->replicas, &cur, &raw, err, sizeof err);
	free(view);
	if (rc < 0) {
		snprintf(p->err, sizeof p->err, "failed to get pods metric value: %s", err);
		return rc;
	}
	p->status = json_pack("{s:s, s:{s:{s:s}, s:{s:o}}}", "type", "Pods", "pods", "metric",
	    "name", name, "current", "averageValue", milli_qty(raw));
	snprintf(p->name, sizeof p->name, "pods metric %s", name);
	return 0;
}

/* getReadyPodsCount: Ready pods that are not ignored or Pending. */
static int64_t
ready_pods(const struct hpa_pod *pods, size_t npods)
{
	int64_t n = 0;
	for (size_t i = 0; i < npods; i++)
		n += !pods[i].ignored && !pods[i].pending && pods[i].ready;
	return n;
}

/* Object and External metrics: a Value target through getUsageRatioReplicaCount
 * (from zero: ceil(ratio)), an AverageValue one per current replica. */
static int
value_replicas(int64_t value, const json_t *target, int32_t current, const struct hpa_pod *pods,
    size_t npods, const struct hpa_config *cfg, int32_t *replicas, json_t **cur, char *err,
    size_t errlen)
{
	bool avg = !strcmp(json_string_value(json_object_get(target, "type")) ?: "",
	    "AverageValue");
	int64_t t = target_milli(json_object_get(target, avg ? "averageValue" : "value"));
	if (t <= 0) {
		snprintf(err, errlen, "invalid metric target: no %s", avg ? "averageValue" :
		    "value");
		return -EINVAL;
	}
	if (avg) {	/* GetObjectPerPodMetricReplicas / GetExternalPerPodMetricReplicas */
		*replicas = current;
		double ratio = (double)value / ((double)t * (double)current);
		if (current == 0 || fabs(1.0 - ratio) > cfg->tolerance)
			*replicas = (int32_t)ceil((double)value / (double)t);
		*cur = json_pack("{s:o}", "averageValue", milli_qty(current ?
		    (int64_t)ceil((double)value / (double)current) : value));
		return 0;
	}
	double ratio = (double)value / (double)t;
	*cur = json_pack("{s:o}", "value", milli_qty(value));
	if (current == 0) {
		*replicas = (int32_t)ceil(ratio);
		return 0;
	}
	if (fabs(1.0 - ratio) <= cfg->tolerance) {
		*replicas = current;
		return 0;
	}
	int64_t ready = ready_pods(pods, npods);
	if (ready == 0) {
		json_decref(*cur);
		*cur = NULL;
		snprintf(err, errlen, "no pods returned by selector while calculating replica "
		    "count");
		return -EINVAL;
	}
	*replicas = (int32_t)ceil(ratio * (double)ready);
	return 0;
}

static int
propose_object(const json_t *m, int32_t current, const struct hpa_pod *pods, size_t npods,
    const struct hpa_metric_in *in, const struct hpa_config *cfg, int64_t now_ms,
    struct proposal *p)
{
	const json_t *src = json_object_get(m, "object");
	const char *name = json_string_value(obj_get_path(src, "metric.name")) ?: "";
	const json_t *obj = json_object_get(src, "describedObject");
	json_t *cur = NULL;
	char err[384];
	(void)now_ms;
	p->reason = "FailedGetObjectMetric";
	if (!in || in->rc < 0) {
		snprintf(p->err, sizeof p->err, "failed to get object metric value: unable to get "
		    "metric %s: %s", name, in ? in->why : "no custom metrics API");
		return -EINVAL;
	}
	if (value_replicas(in->value, json_object_get(src, "target"), current, pods, npods, cfg,
	    &p->replicas, &cur, err, sizeof err) < 0) {
		snprintf(p->err, sizeof p->err, "failed to get object metric value: %s", err);
		return -EINVAL;
	}
	p->status = json_pack("{s:s, s:{s:{s:s}, s:O, s:o}}", "type", "Object", "object",
	    "metric", "name", name, "describedObject", obj, "current", cur);
	snprintf(p->name, sizeof p->name, "%s metric %s",
	    json_string_value(json_object_get(obj, "kind")) ?: "", name);
	return 0;
}

static int
propose_external(const json_t *m, int32_t current, const struct hpa_pod *pods, size_t npods,
    const struct hpa_metric_in *in, const struct hpa_config *cfg, int64_t now_ms,
    struct proposal *p)
{
	const json_t *src = json_object_get(m, "external");
	const json_t *metric = json_object_get(src, "metric");
	const char *name = json_string_value(json_object_get(metric, "name")) ?: "";
	json_t *cur = NULL;
	char err[384];
	(void)now_ms;
	p->reason = "FailedGetExternalMetric";
	if (!in || in->rc < 0) {
		snprintf(p->err, sizeof p->err, "failed to get external metric %s: %s", name,
		    in ? in->why : "no external metrics API");
		return -EINVAL;
	}
	if (value_replicas(in->value, json_object_get(src, "target"), current, pods, npods, cfg,
	    &p->replicas, &cur, err, sizeof err) < 0) {
		snprintf(p->err, sizeof p->err, "failed to get external metric %s: %s", name, err);
		return -EINVAL;
	}
	p->status = json_pack("{s:s, s:{s:O, s:o}}", "type", "External", "external", "metric",
	    metric, "current", cur);
	snprintf(p->name, sizeof p->name, "external metric %s", name);
	return 0;
}

typedef int propose_fn(const json_t *m, int32_t current, const struct hpa_pod *pods,
    size_t npods, const struct hpa_metric_in *in, const struct hpa_config *cfg, int64_t now_ms,
    struct proposal *p);

static const struct { const char *type; propose_fn *fn; } proposers[] = {
	{ "Resource", propose_resource }, { "Pods", propose_pods },
	{ "Object", propose_object }, { "External", propose_external },
};

/* computeReplicasForMetrics over spec.metrics; statuses appended to cm. */
static void
compute_metrics(const json_t *spec, int32_t current, const struct hpa_pod *pods, size_t npods,
    const struct hpa_metric_in *in, const struct hpa_config *cfg, int64_t now_ms, json_t *cm,
    struct hpa_decision *d, struct metrics_result *mr)
{
	json_t *m;
	size_t i, nm = json_array_size(json_object_get(spec, "metrics"));
	mr->replicas = -1;
	json_array_foreach(json_object_get(spec, "metrics"), i, m) {
		const char *type = json_string_value(json_object_get(m, "type")) ?: "";
		struct proposal p = { .reason = "InvalidMetricSourceType" };
		int rc = -EINVAL;
		snprintf(p.err, sizeof p.err, "v6 does not serve %s metrics yet", type);
		for (size_t k = 0; k < ARRAY_SIZE(proposers); k++)
			if (!strcmp(type, proposers[k].type))
				rc = proposers[k].fn(m, current, pods, npods, in ? &in[i] : NULL, cfg,
				    now_ms, &p);
		if (rc == 0) {
			json_array_append_new(cm, p.status);
			if (p.replicas > mr->replicas) {
				mr->replicas = p.replicas;
				snprintf(mr->name, sizeof mr->name, "%s", p.name);
			}
			continue;
		}
		/* an invalid metric: a Warning event, and the first one is remembered */
		add_event(d, "Warning", p.reason, p.err);
		json_array_append_new(cm, json_pack("{s:s}", "type", type));
		if (mr->invalid++ == 0) {
			snprintf(mr->first_err, sizeof mr->first_err, "the HPA was unable to compute "
			    "the replica count: %s", p.err);
			snprintf(mr->first_reason, sizeof mr->first_reason, "%s", p.reason);
		}
	}
	if (mr->invalid >= nm || (mr->invalid > 0 && mr->replicas < current))
		mr->replicas = -1;
}

/* ---- normalization: stabilization, rate limits, min / max --------------- */

struct rules { int64_t window_s; const char *select; const json_t *policies; };

static void
get_rules(const json_t *beh, const char *key, struct rules *r)
{
	const json_t *x = json_object_get(beh, key);
	r->window_s = json_integer_value(json_object_get(x, "stabilizationWindowSeconds"));
	r->select = json_string_value(json_object_get(x, "selectPolicy")) ?: "Max";
	r->policies = json_object_get(x, "policies");
}

/* getReplicasChangePerPeriod */
static int32_t
change_in_period(const struct hpa_scale_ev *ev, size_t n, int64_t period_s, int64_t now_ms)
{
	int32_t sum = 0;
	for (size_t i = 0; i < n; i++)
		if (ev[i].ms > now_ms - period_s * 1000)
			sum += ev[i].change;
	return sum;
}

/* calculateScaleUpLimitWithScalingRules (up) / calculateScaleDownLimitWithBehaviors */
static int32_t
rate_limit(const struct hpa_history *h, int32_t current, const struct rules *r, bool up,
    int64_t now_ms)
{
	if (!strcmp(r->select, "Disabled"))
		return current;
	bool pick_min = !strcmp(r->select, "Min") == up;	/* up+Min or down+Max */
	int64_t result = pick_min ? INT32_MAX : INT32_MIN;
	const json_t *p;
	size_t i;
	json_array_foreach(r->policies, i, p) {
		int64_t period = json_integer_value(json_object_get(p, "periodSeconds"));
		int64_t value = json_integer_value(json_object_get(p, "value"));
		int64_t start = current - change_in_period(h->up, h->nup, period, now_ms) +
		    change_in_period(h->down, h->ndown, period, now_ms);
		bool pods = !strcmp(json_string_value(json_object_get(p, "type")) ?: "", "Pods");
		int64_t prop = up ? (pods ? start + value : (int64_t)ceil((double)start *
		    (1 + (double)value / 100))) : (pods ? start - value :
		    (int64_t)((double)start * (1 - (double)value / 100)));
		result = pick_min ? (prop < result ? prop : result) : (prop > result ? prop : result);
	}
	return (int32_t)result;
}

/* Records the unstabilized recommendation, replacing the oldest one that is
 * outside both windows (or the oldest of all when the memory is full). */
static void
record(struct hpa_history *h, int32_t desired, int64_t keep_ms, int64_t now_ms)
{
	size_t slot = h->nrecs;
	for (size_t i = 0; i < h->nrecs; i++)
		if (h->recs[i].ms < now_ms - keep_ms) {
			slot = i;
			break;
		}
	if (slot == HPA_HIST_MAX) {
		slot = 0;
		for (size_t i = 1; i < h->nrecs; i++)
			if (h->recs[i].ms < h->recs[slot].ms)
				slot = i;
	}
	if (slot == h->nrecs)
		h->nrecs++;
	h->recs[slot] = (struct hpa_rec){ desired, now_ms };
}

/* normalizeDesiredReplicasWithBehaviors */
static int32_t
normalize_behavior(const json_t *spec, struct hpa_history *h, int32_t current,
    int32_t desired, int32_t min, int32_t max, json_t *st, int64_t now_ms)
{
	const json_t *beh = json_object_get(spec, "behavior");
	struct rules up, down;
	get_rules(beh, "scaleUp", &up);
	get_rules(beh, "scaleDown", &down);
	int32_t up_rec = desired, down_rec = desired;
	for (size_t i = 0; i < h->nrecs; i++) {
		if (h->recs[i].ms > now_ms - up.window_s * 1000 && h->recs[i].replicas < up_rec)
			up_rec = h->recs[i].replicas;
		if (h->recs[i].ms > now_ms - down.window_s * 1000 && h->recs[i].replicas > down_rec)
			down_rec = h->recs[i].replicas;
	}
	int32_t stab = current;
	if (stab < up_rec)
		stab = up_rec;
	if (stab > down_rec)
		stab = down_rec;
	record(h, desired, (up.window_s > down.window_s ? up.window_s : down.window_s) * 1000,
	    now_ms);
	if (stab != desired)
		set_cond(st, "AbleToScale", true, desired >= current ? "ScaleUpStabilized" :
		    "ScaleDownStabilized", desired >= current ? "recent recommendations were lower "
		    "than current one, applying the lowest recent recommendation" : "recent "
		    "recommendations were higher than current one, applying the highest recent "
		    "recommendation", now_ms);
	else
		set_cond(st, "AbleToScale", true, "ReadyForNewScale", "recommended size matches "
		    "current size", now_ms);
	const char *reason = "DesiredWithinRange";
	const char *msg = "the desired count is within the acceptable range";
	int32_t out = stab;
	if (stab > current) {
		int32_t lim = rate_limit(h, current, &up, true, now_ms), allowed = max;
		if (lim < current)
			lim = current;
		if (allowed > lim) {
			allowed = lim;
			reason = "ScaleUpLimit";
			msg = "the desired replica count is increasing faster than the maximum scale "
			    "rate";
		} else {
			reason = "TooManyReplicas";
			msg = "the desired replica count is more than the maximum replica count";
		}
		if (stab > allowed)
			out = allowed;
	} else if (stab < current) {
		int32_t lim = rate_limit(h, current, &down, false, now_ms), allowed = min;
		if (lim > current)
			lim = current;
		if (allowed < lim) {
			allowed = lim;
			reason = "ScaleDownLimit";
			msg = "the desired replica count is decreasing faster than the maximum scale "
			    "rate";
		} else {
			reason = "TooFewReplicas";
			msg = "the desired replica count is less than the minimum replica count";
		}
		if (stab < allowed)
			out = allowed;
	}
	if (out == stab) {
		reason = "DesiredWithinRange";
		msg = "the desired count is within the acceptable range";
	}
	set_cond(st, "ScalingLimited", out != stab, reason, msg, now_ms);
	return out;
}

/* normalizeDesiredReplicas: an HPA without behavior gets the downscale
 * stabilization window of the controller manager and its fixed scale-up
 * limit max(2 x current, 4). */
static int32_t
normalize_legacy(struct hpa_history *h, int32_t current, int32_t desired, int32_t min,
    int32_t max, json_t *st, const struct hpa_config *cfg, int64_t now_ms)
{
	int32_t stab = desired;
	for (size_t i = 0; i < h->nrecs; i++)
		if (h->recs[i].ms > now_ms - cfg->downscale_window_ms && h->recs[i].replicas > stab)
			stab = h->recs[i].replicas;
	record(h, desired, cfg->downscale_window_ms, now_ms);
	if (stab != desired)
		set_cond(st, "AbleToScale", true, "ScaleDownStabilized", "recent recommendations "
		    "were higher than current one, applying the highest recent recommendation",
		    now_ms);
	else
		set_cond(st, "AbleToScale", true, "ReadyForNewScale", "recommended size matches "
		    "current size", now_ms);
	int32_t up_limit = current * 2 > 4 ? current * 2 : 4, out = stab;
	const char *reason = "DesiredWithinRange";
	const char *msg = "the desired count is within the acceptable range";
	if (stab < min) {
		out = min;
		reason = "TooFewReplicas";
		msg = "the desired replica count is less than the minimum replica count";
	} else if (stab > max && max <= up_limit) {
		out = max;
		reason = "TooManyReplicas";
		msg = "the desired replica count is more than the maximum replica count";
	} else if (stab > up_limit) {
		out = up_limit < max ? up_limit : max;
		reason = "ScaleUpLimit";
		msg = "the desired replica count is increasing faster than the maximum scale rate";
	}
	set_cond(st, "ScalingLimited", strcmp(reason, "DesiredWithinRange") != 0, reason, msg,
	    now_ms);
	return out;
}

/* ---- reconcileAutoscaler -------------------------------------------------- */

int
hpa_decide(const json_t *hpa, int32_t current, const struct hpa_pod *pods, size_t npods,
    const struct hpa_metric_in *in, struct hpa_history *hist, const struct hpa_config *cfg, int64_t now_ms,
    struct hpa_decision *d)
{
	const json_t *spec = json_object_get(hpa, "spec");
	json_t *old = json_object_get(hpa, "status");
	json_t *st = json_object();
	json_t *cm = json_array();
	if (json_is_array(json_object_get(old, "conditions")))
		json_object_set_new(st, "conditions", json_deep_copy(json_object_get(old,
		    "conditions")));
	*d = (struct hpa_decision){ .current = current, .desired = current, .status = st,
		.events = json_array() };
	json_t *min_j = json_object_get(spec, "minReplicas");
	int32_t min = min_j ? (int32_t)json_integer_value(min_j) : 1;
	int32_t max = (int32_t)json_integer_value(json_object_get(spec, "maxReplicas"));
	int rc = 0;
	/* as the controller manager: an HPA seen for the first time starts its
	 * recommendations with the current count, so the scale-down window
	 * holds from its first sync */
	if (hist->nrecs == 0)
		hist->recs[hist->nrecs++] = (struct hpa_rec){ current, now_ms };
	set_cond(st, "AbleToScale", true, "SucceededGetScale", "the HPA controller was able to "
	    "get the target's current scale", now_ms);
	if (current == 0 && min != 0) {
		set_cond(st, "ScalingActive", false, "ScalingDisabled", "scaling is disabled since "
		    "the replica count of the target is zero", now_ms);
		d->desired = 0;
	} else if (current > max) {
		snprintf(d->reason, sizeof d->reason, "Current number of replicas above "
		    "Spec.MaxReplicas");
		d->desired = max;
	} else if (current < min) {
		snprintf(d->reason, sizeof d->reason, "Current number of replicas below "
		    "Spec.MinReplicas");
		d->desired = min;
	} else {
		struct metrics_result mr = { 0 };
		compute_metrics(spec, current, pods, npods, in, cfg, now_ms, cm, d, &mr);
		if (mr.replicas < 0) {
			set_cond(st, "ScalingActive", false, mr.first_reason[0] ? mr.first_reason :
			    "FailedGetResourceMetric", mr.first_err, now_ms);
			add_event(d, "Warning", "FailedComputeMetricsReplicas", mr.first_err +
			    strlen("the HPA was unable to compute the replica count: "));
			rc = -EINVAL;
			goto status;
		}
		char msg[256];
		snprintf(msg, sizeof msg, "the HPA was able to successfully calculate a replica "
		    "count from %s", mr.name);
		set_cond(st, "ScalingActive", true, "ValidMetricFound", msg, now_ms);
		int32_t want = mr.replicas;
		if (want > current)
			snprintf(d->reason, sizeof d->reason, "%s above target", mr.name);
		else if (want < current)
			snprintf(d->reason, sizeof d->reason, "All metrics below target");
		d->desired = json_is_object(json_object_get(spec, "behavior")) ?
		    normalize_behavior(spec, hist, current, want, min, max, st, now_ms) :
		    normalize_legacy(hist, current, want, min, max, st, cfg, now_ms);
	}
	d->rescale = d->desired != current && !(current == 0 && min != 0);
	if (!d->rescale)
		d->desired = current;
	else
		set_cond(st, "AbleToScale", true, "SucceededRescale", "the HPA controller was able "
		    "to update the target scale", now_ms);
status:
	json_object_set_new(st, "currentReplicas", json_integer(current));
	json_object_set_new(st, "desiredReplicas", json_integer(d->desired));
	json_object_set_new(st, "currentMetrics", cm);
	json_t *last = json_object_get(old, "lastScaleTime");
	if (d->rescale)
		json_object_set_new(st, "lastScaleTime", obj_time_json(now_ms));
	else if (last)
		json_object_set(st, "lastScaleTime", last);
	json_t *gen = obj_get_path(hpa, "metadata.generation");
	if (gen)
		json_object_set(st, "observedGeneration", gen);
	return rc;
}

/* storeScaleEvent: events older than the longest policy period go first. */
void
hpa_history_scaled(struct hpa_history *h, const json_t *hpa, int32_t from, int32_t to,
    int64_t now_ms)
{
	bool up = to > from;
	struct hpa_scale_ev *ev = up ? h->up : h->down;
	size_t *n = up ? &h->nup : &h->ndown;
	struct rules r;
	get_rules(obj_get_path(hpa, "spec.behavior"), up ? "scaleUp" : "scaleDown", &r);
	int64_t longest = 0;
	const json_t *p;
	size_t i, k = 0;
	json_array_foreach(r.policies, i, p) {
		int64_t s = json_integer_value(json_object_get(p, "periodSeconds"));
		longest = s > longest ? s : longest;
	}
	for (i = 0; i < *n; i++)
		if (ev[i].ms > now_ms - longest * 1000)
			ev[k++] = ev[i];
	*n = k;
	if (*n == HPA_HIST_MAX) {
		memmove(ev, ev + 1, (HPA_HIST_MAX - 1) * sizeof *ev);
		(*n)--;
	}
	ev[(*n)++] = (struct hpa_scale_ev){ up ? to - from : from - to, now_ms };
}

void
hpa_decision_free(struct hpa_decision *d)
{
	json_decref(d->status);
	json_decref(d->events);
	d->status = d->events = NULL;
}
