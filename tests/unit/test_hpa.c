/* Unit tests of the HorizontalPodAutoscaler's decision (hpa_decide.c) over
 * the cases of kube-controller-manager's replica_calculator_test.go and
 * horizontal_test.go: scale up / down, tolerance, missing metrics in both
 * directions, unready pods, a rolling update's surge pod, stabilization
 * windows, scaling policies with selectPolicy Max / Min / Disabled, min /
 * max limits, conditions and status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hpa.h"

#define NOW_MS (1800000000LL * 1000)
#define MIN_MS 60000LL

/* An HPA on cpu utilization target (percent); beh: a behavior JSON or NULL. */
static json_t *
make_hpa(int min, int max, int target, const char *beh)
{
	json_t *h = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:s, s:s, s:s}, s:i, s:i,"
	    " s:[{s:s, s:{s:s, s:{s:s, s:i}}}]}}", "apiVersion", "autoscaling/v2", "kind",
	    "HorizontalPodAutoscaler", "metadata", "name", "web", "namespace", "default",
	    "spec", "scaleTargetRef", "apiVersion", "apps/v1", "kind", "Deployment", "name",
	    "web", "minReplicas", min, "maxReplicas", max, "metrics", "type", "Resource",
	    "resource", "name", "cpu", "target", "type", "Utilization", "averageUtilization",
	    target);
	if (beh)
		json_object_set_new(json_object_get(h, "spec"), "behavior",
		    json_loads(beh, 0, NULL));
	/* what the API server's defaults would add */
	extern void autoscaling_hpa_defaults(json_t *obj);
	autoscaling_hpa_defaults(h);
	return h;
}

static const char *const names[] = { "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8",
	"p9" };

/* n running, ready pods started 10 minutes ago, each requesting 1 cpu;
 * levels[i] < 0: no metric for pod i. */
static void
make_pods(struct hpa_pod *p, size_t n, const int64_t *levels)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = (struct hpa_pod){ .name = names[i], .has_ready = true, .ready = true,
			.start_ms = NOW_MS - 10 * MIN_MS, .ready_ms = NOW_MS - 10 * MIN_MS,
			.has_metric = levels[i] >= 0, .metric_ms = NOW_MS - 1000,
			.window_ms = 30000 };
		p[i].usage[HPA_CPU] = levels[i] >= 0 ? levels[i] : 0;
		p[i].request[HPA_CPU] = 1000;
		p[i].has_request[HPA_CPU] = true;
	}
}

/* Unready: Ready False since it started (never ready). */
static void
unready(struct hpa_pod *p)
{
	p->ready = false;
	p->ready_ms = p->start_ms;
}

static struct hpa_config cfg;

static int
setup(void **state)
{
	(void)state;
	hpa_config_default(&cfg);
	return 0;
}

/* One decision with a fresh history; returns desired; *util: cpu utilization. */
static int32_t
decide(json_t *hpa, int32_t current, struct hpa_pod *p, size_t n, int64_t *util)
{
	struct hpa_history h = { 0 };
	struct hpa_decision d;
	hpa_decide(hpa, current, p, n, NULL, &h, &cfg, NOW_MS, &d);
	if (util)
		*util = json_integer_value(obj_get_path(json_array_get(json_object_get(d.status,
		    "currentMetrics"), 0), "resource.current.averageUtilization"));
	int32_t r = d.desired;
	hpa_decision_free(&d);
	json_decref(hpa);
	return r;
}

static const char *
cond_reason(const json_t *status, const char *type)
{
	return json_string_value(json_object_get(obj_condition(status, type), "reason"));
}

static void
test_scale_up_and_down(void **state)
{
	(void)state;
	struct hpa_pod p[5];
	int64_t util;
	make_pods(p, 3, (int64_t[]){ 300, 500, 700 });
	assert_int_equal(decide(make_hpa(1, 10, 30, NULL), 3, p, 3, &util), 5);
	assert_int_equal(util, 50);
	make_pods(p, 5, (int64_t[]){ 100, 300, 500, 250, 250 });
	/* behavior with no down window: the proposal is applied at once */
	assert_int_equal(decide(make_hpa(1, 10, 50, "{\"scaleDown\":"
	    "{\"stabilizationWindowSeconds\":0}}"), 5, p, 5, &util), 3);
	assert_int_equal(util, 28);
}

static void
test_tolerance(void **state)
{
	(void)state;
	struct hpa_pod p[3];
	int64_t util;
	make_pods(p, 3, (int64_t[]){ 1010, 1030, 1020 });
	p[0].request[HPA_CPU] = 900;
	p[2].request[HPA_CPU] = 1100;
	assert_int_equal(decide(make_hpa(1, 10, 100, NULL), 3, p, 3, &util), 3);
	assert_int_equal(util, 102);
}

static void
test_missing_metrics(void **state)
{
	(void)state;
	struct hpa_pod p[4];
	const char *nowin = "{\"scaleDown\":{\"stabilizationWindowSeconds\":0}}";
	/* scale-down: the missing ones count as 100 % of their request */
	make_pods(p, 4, (int64_t[]){ 400, 95, -1, -1 });
	assert_int_equal(decide(make_hpa(1, 10, 100, nowin), 4, p, 4, NULL), 3);
	/* exactly on target, one missing: no change */
	make_pods(p, 2, (int64_t[]){ 1000, -1 });
	assert_int_equal(decide(make_hpa(1, 10, 100, nowin), 2, p, 2, NULL), 2);
	/* scale-up: missing counts as 0 %, which turns 190 % into 95 %: no change */
	make_pods(p, 2, (int64_t[]){ 1900, -1 });
	assert_int_equal(decide(make_hpa(1, 10, 100, nowin), 2, p, 2, NULL), 2);
	/* 60 % with one missing at 100 % -> 80 %: no scale-up either */
	make_pods(p, 2, (int64_t[]){ 600, -1 });
	assert_int_equal(decide(make_hpa(1, 10, 100, nowin), 2, p, 2, NULL), 2);
}

static void
test_unready_pods(void **state)
{
	(void)state;
	struct hpa_pod p[4];
	int64_t util;
	/* unready pods count as 0 % on a scale-up */
	make_pods(p, 3, (int64_t[]){ 300, 500, 700 });
	unready(&p[0]);
	assert_int_equal(decide(make_hpa(1, 10, 30, NULL), 3, p, 3, &util), 4);
	assert_int_equal(util, 60);
	/* ... which can cancel it */
	make_pods(p, 3, (int64_t[]){ 400, 500, 700 });
	unready(&p[1]);
	unready(&p[2]);
	assert_int_equal(decide(make_hpa(1, 10, 30, NULL), 3, p, 3, &util), 3);
	assert_int_equal(util, 40);
	/* unready and missing on a scale-up */
	make_pods(p, 3, (int64_t[]){ 100, 2000, -1 });
	unready(&p[0]);
	assert_int_equal(decide(make_hpa(1, 10, 50, NULL), 3, p, 3, &util), 4);
	assert_int_equal(util, 200);
	/* on a scale-down unready pods are left out, missing ones are 100 % */
	make_pods(p, 4, (int64_t[]){ 100, 100, 100, -1 });
	unready(&p[0]);
	assert_int_equal(decide(make_hpa(1, 10, 50, "{\"scaleDown\":"
	    "{\"stabilizationWindowSeconds\":0}}"), 4, p, 4, &util), 3);
	assert_int_equal(util, 10);
	/* a pod starting (within the cpu initialization period) whose sample
	 * began before it became ready is unready: its start-up burn is ignored */
	make_pods(p, 2, (int64_t[]){ 500, 3000 });
	p[1].start_ms = NOW_MS - MIN_MS;
	p[1].ready_ms = NOW_MS - 20000;
	assert_int_equal(decide(make_hpa(1, 10, 50, NULL), 2, p, 2, &util), 2);
	assert_int_equal(util, 50);
	/* ... but counts once a whole window was sampled after it became ready */
	p[1].ready_ms = NOW_MS - 40000;
	assert_int_equal(decide(make_hpa(1, 10, 50, NULL), 2, p, 2, &util), 4);	/* 7, limited */
	assert_int_equal(util, 175);
	/* a pending pod is unready; a failed or deleting one is ignored */
	make_pods(p, 3, (int64_t[]){ 900, -1, -1 });
	p[1].pending = true;
	p[2].ignored = true;
	assert_int_equal(decide(make_hpa(1, 10, 50, NULL), 2, p, 3, &util), 2);
}

/* Kubernetes #72775: the surge pod of a rolling update (3 pods for 2
 * replicas, one without metrics yet) must not scale up. */
static void
test_rolling_update_surge_no_scale_up(void **state)
{
	(void)state;
	struct hpa_pod p[3];
	make_pods(p, 3, (int64_t[]){ 100, 100, -1 });
	assert_int_equal(decide(make_hpa(1, 10, 50, NULL), 2, p, 3, NULL), 2);
}

static void
test_min_max_limits(void **state)
{
	(void)state;
	struct hpa_pod p[3];
	struct hpa_history h = { 0 };
	struct hpa_decision d;
	make_pods(p, 3, (int64_t[]){ 900, 900, 900 });
	json_t *hpa = make_hpa(1, 4, 10, "{}");
	hpa_decide(hpa, 3, p, 3, NULL, &h, &cfg, NOW_MS, &d);
	assert_int_equal(d.desired, 4);
	assert_true(d.rescale);
	assert_string_equal(cond_reason(d.status, "ScalingLimited"), "TooManyReplicas");
	assert_string_equal(json_string_value(json_object_get(obj_condition(d.status,
	    "ScalingLimited"), "status")), "True");
	assert_string_equal(d.reason, "cpu resource utilization (percentage of request) above "
	    "target");
	assert_string_equal(cond_reason(d.status, "ScalingActive"), "ValidMetricFound");
	hpa_decision_free(&d);
	json_decref(hpa);
	/* below min: raised to it, whatever the metrics */
	hpa = make_hpa(3, 5, 50, NULL);
	hpa_decide(hpa, 1, p, 1, NULL, &h, &cfg, NOW_MS, &d);
	assert_int_equal(d.desired, 3);
	assert_string_equal(d.reason, "Current number of replicas below Spec.MinReplicas");
	hpa_decision_free(&d);
	/* above max */
	hpa_decide(hpa, 8, p, 3, NULL, &h, &cfg, NOW_MS, &d);
	assert_int_equal(d.desired, 5);
	assert_string_equal(d.reason, "Current number of replicas above Spec.MaxReplicas");
	hpa_decision_free(&d);
	/* replicas 0: scaling disabled */
	hpa_decide(hpa, 0, p, 0, NULL, &h, &cfg, NOW_MS, &d);
	assert_false(d.rescale);
	assert_string_equal(cond_reason(d.status, "ScalingActive"), "ScalingDisabled");
	hpa_decision_free(&d);
	json_decref(hpa);
	/* low usage, min 2: TooFewReplicas */
	make_pods(p, 3, (int64_t[]){ 10, 10, 10 });
	hpa = make_hpa(2, 5, 50, "{\"scaleDown\":{\"stabilizationWindowSeconds\":0}}");
	hpa_decide(hpa, 3, p, 3, NULL, &h, &cfg, NOW_MS, &d);
	assert_int_equal(d.desired, 2);
	assert_string_equal(cond_reason(d.status, "ScalingLimited"), "TooFewReplicas");
	assert_string_equal(d.reason, "All metrics below target");
	hpa_decision_free(&d);
	json_decref(hpa);
}

/* Default scale-up rules: max(+4 pods, +100 %) per 15 s; Min picks the
 * smaller; Disabled none. Events within the period count. */
static void
test_scale_up_policies(void **state)
{
	(void)state;
	struct hpa_pod p[10];
	int64_t lv[10];
	for (int i = 0; i < 10; i++)
		lv[i] = 1000;
	make_pods(p, 10, lv);
	struct hpa_history h = { 0 };
	struct hpa_decision d;
	json_t *hpa = make_hpa(1, 100, 10, "{}");
	hpa_decide(hpa, 1, p, 1, NULL, &h, &cfg, NOW_MS, &d);
	assert_int_equal(d.desired, 5);		/* 1 + 4 beats 1 x 2 */
	assert_string_equal(cond_reason(d.status, "ScalingLimited"), "ScaleUpLimit");
	hpa_decision_free(&d);
	hpa_history_scaled(&h, hpa, 1, 5, NOW_MS);
	/* 5 s later: the period started at 1 replica, so 5 is still the limit */
	hpa_decide(hpa, 5, p, 5, NULL, &h, &cfg, NOW_MS + 5000, &d);
	assert_int_equal(d.desired, 5);
	assert_false(d.rescale);
	hpa_decision_free(&d);
	/* after the period: 5 x 2 = 10 */
	hpa_decide(hpa, 5, p, 5, NULL, &h, &cfg, NOW_MS + 16000, &d);
	assert_int_equal(d.desired, 10);
	hpa_decision_free(&d);
	json_decref(hpa);
	hpa = make_hpa(1, 100, 10, "{\"scaleUp\":{\"selectPolicy\":\"Min\"}}");
	memset(&h, 0, sizeof h);
	hpa_decide(hpa, 1, p, 1, NULL, &h, &cfg, NOW_MS, &d);
	assert_int_equal(d.desired, 2);		/* min(1 + 4, 1 x 2) */
	hpa_decision_free(&d);
	json_decref(hpa);
	hpa = make_hpa(1, 100, 10, "{\"scaleUp\":{\"selectPolicy\":\"Disabled\"}}");
	memset(&h, 0, sizeof h);
	hpa_decide(hpa, 1, p, 1, NULL, &h, &cfg, NOW_MS, &d);
	assert_int_equal(d.desired, 1);
	assert_false(d.rescale);
	hpa_decision_free(&d);
	json_decref(hpa);
	/* without behavior: the legacy limit max(2 x current, 4) */
	hpa = make_hpa(1, 100, 10, NULL);
	memset(&h, 0, sizeof h);
	hpa_decide(hpa, 3, p, 3, NULL, &h, &cfg, NOW_MS, &d);
	assert_int_equal(d.desired, 6);
	assert_string_equal(cond_reason(d.status, "ScalingLimited"), "ScaleUpLimit");
	hpa_decision_free(&d);
	json_decref(hpa);
}

/* Scale-down: the highest recommendation of the window wins; a Pods policy
 * limits the step. */
static void
test_scale_down_stabilization_and_policy(void **state)
{
	(void)state;
	struct hpa_pod p[10];
	int64_t hot[10], cold[10];
	for (int i = 0; i < 10; i++) {
		hot[i] = 500;
		cold[i] = 50;
	}
	struct hpa_history h = { 0 };
	struct hpa_decision d;
	json_t *hpa = make_hpa(1, 100, 50, "{\"scaleDown\":{\"stabilizationWindowSeconds\":60,"
	    "\"policies\":[{\"type\":\"Pods\",\"value\":2,\"periodSeconds\":30}]}}");
	make_pods(p, 10, hot);
	hpa_decide(hpa, 10, p, 10, NULL, &h, &cfg, NOW_MS, &d);	/* recommends 10 */
	assert_int_equal(d.desired, 10);
	hpa_decision_free(&d);
	make_pods(p, 10, cold);
	hpa_decide(hpa, 10, p, 10, NULL, &h, &cfg, NOW_MS + 30000, &d);
	assert_int_equal(d.desired, 10);
	assert_string_equal(cond_reason(d.status, "AbleToScale"), "ScaleDownStabilized");
	hpa_decision_free(&d);
	/* past the window (the 10 recorded at NOW is out): 1, limited to -2 */
	hpa_decide(hpa, 10, p, 10, NULL, &h, &cfg, NOW_MS + 61000, &d);
	assert_int_equal(d.desired, 8);
	assert_string_equal(cond_reason(d.status, "ScalingLimited"), "ScaleDownLimit");
	assert_string_equal(d.reason, "All metrics below target");
	hpa_decision_free(&d);
	hpa_history_scaled(&h, hpa, 10, 8, NOW_MS + 61000);
	/* within the policy's period: no further step */
	hpa_decide(hpa, 8, p, 8, NULL, &h, &cfg, NOW_MS + 70000, &d);
	assert_int_equal(d.desired, 8);
	hpa_decision_free(&d);
	hpa_decide(hpa, 8, p, 8, NULL, &h, &cfg, NOW_MS + 92000, &d);
	assert_int_equal(d.desired, 6);
	hpa_decision_free(&d);
	json_decref(hpa);
	/* without behavior: the controller manager's 5 minute window */
	hpa = make_hpa(1, 100, 50, NULL);
	memset(&h, 0, sizeof h);
	make_pods(p, 10, hot);
	hpa_decide(hpa, 10, p, 10, NULL, &h, &cfg, NOW_MS, &d);
	hpa_decision_free(&d);
	make_pods(p, 10, cold);
	hpa_decide(hpa, 10, p, 10, NULL, &h, &cfg, NOW_MS + 4 * MIN_MS, &d);
	assert_int_equal(d.desired, 10);
	hpa_decision_free(&d);
	hpa_decide(hpa, 10, p, 10, NULL, &h, &cfg, NOW_MS + 5 * MIN_MS + 1000, &d);
	assert_int_equal(d.desired, 1);
	hpa_decision_free(&d);
	json_decref(hpa);
}

static void
test_failed_metrics_conditions(void **state)
{
	(void)state;
	struct hpa_pod p[2];
	struct hpa_history h = { 0 };
	struct hpa_decision d;
	json_t *hpa = make_hpa(1, 10, 50, NULL);
	make_pods(p, 2, (int64_t[]){ -1, -1 });
	assert_int_equal(hpa_decide(hpa, 2, p, 2, NULL, &h, &cfg, NOW_MS, &d), -EINVAL);
	assert_false(d.rescale);
	assert_string_equal(cond_reason(d.status, "ScalingActive"), "FailedGetResourceMetric");
	assert_string_equal(json_string_value(json_object_get(json_array_get(d.events, 0),
	    "reason")), "FailedGetResourceMetric");
	assert_string_equal(json_string_value(json_object_get(json_array_get(d.events, 1),
	    "reason")), "FailedComputeMetricsReplicas");
	hpa_decision_free(&d);
	make_pods(p, 2, (int64_t[]){ 100, 100 });
	p[1].has_request[HPA_CPU] = false;
	assert_int_equal(hpa_decide(hpa, 2, p, 2, NULL, &h, &cfg, NOW_MS, &d), -EINVAL);
	assert_non_null(strstr(json_string_value(json_object_get(obj_condition(d.status,
	    "ScalingActive"), "message")), "missing request for cpu in pod p1"));
	hpa_decision_free(&d);
	json_decref(hpa);
}

/* memory AverageValue: the average in bytes against the target. */
static void
test_memory_average_value(void **state)
{
	(void)state;
	struct hpa_pod p[2];
	struct hpa_history h = { 0 };
	struct hpa_decision d;
	json_t *hpa = make_hpa(1, 10, 50, NULL);
	json_array_set_new(obj_get_path(hpa, "spec.metrics"), 0, json_pack("{s:s, s:{s:s,"
	    " s:{s:s, s:s}}}", "type", "Resource", "resource", "name", "memory", "target",
	    "type", "AverageValue", "averageValue", "100Mi"));
	make_pods(p, 2, (int64_t[]){ -1, -1 });
	for (int i = 0; i < 2; i++) {
		p[i].has_metric = true;
		p[i].usage[HPA_MEMORY] = 250LL * 1048576 * 1000;
	}
	hpa_decide(hpa, 2, p, 2, NULL, &h, &cfg, NOW_MS, &d);
	assert_int_equal(d.desired, 4);		/* only 4 (x2), no legacy limit hit */
	assert_string_equal(json_string_value(obj_get_path(json_array_get(json_object_get(
	    d.status, "currentMetrics"), 0), "resource.current.averageValue")), "262144000");
	assert_string_equal(d.reason, "memory resource above target");
	hpa_decision_free(&d);
	json_decref(hpa);
}

/* Upstream's validation: maxReplicas required and >= minReplicas, the
 * metric source matching its type, Utilization only for resources, policy
 * bounds. */
static void
test_validation(void **state)
{
	(void)state;
	static const struct { const char *spec, *field; } bad[] = {
		{ "{\"scaleTargetRef\":{\"kind\":\"Deployment\",\"name\":\"w\"}}",
		  "spec.maxReplicas" },
		{ "{\"scaleTargetRef\":{\"kind\":\"Deployment\",\"name\":\"w\"},"
		  "\"minReplicas\":3,\"maxReplicas\":2}", "spec.maxReplicas" },
		{ "{\"scaleTargetRef\":{\"kind\":\"Deployment\",\"name\":\"w\"},"
		  "\"minReplicas\":-1,\"maxReplicas\":2}", "spec.minReplicas" },
		/* HPAScaleToZero: 0 needs an Object or External metric */
		{ "{\"scaleTargetRef\":{\"kind\":\"Deployment\",\"name\":\"w\"},"
		  "\"minReplicas\":0,\"maxReplicas\":2}", "spec.metrics" },
		{ "{\"scaleTargetRef\":{\"kind\":\"Deployment\",\"name\":\"w\"},"
		  "\"maxReplicas\":2,\"metrics\":[{\"type\":\"Pods\",\"resource\":"
		  "{\"name\":\"cpu\",\"target\":{\"type\":\"Utilization\","
		  "\"averageUtilization\":5}}}]}", "spec.metrics[0].pods" },
		{ "{\"scaleTargetRef\":{\"kind\":\"Deployment\",\"name\":\"w\"},"
		  "\"maxReplicas\":2,\"metrics\":[{\"type\":\"Resource\",\"resource\":"
		  "{\"name\":\"cpu\",\"target\":{\"type\":\"Utilization\"}}}]}",
		  "spec.metrics[0].resource.target.averageUtilization" },
		{ "{\"scaleTargetRef\":{\"kind\":\"Deployment\",\"name\":\"w\"},"
		  "\"maxReplicas\":2,\"behavior\":{\"scaleUp\":{\"policies\":[{\"type\":"
		  "\"Pods\",\"value\":1,\"periodSeconds\":1801}]}}}",
		  "spec.behavior.scaleUp.policies[0].periodSeconds" },
		{ "{\"scaleTargetRef\":{\"kind\":\"Deployment\",\"name\":\"w\"},"
		  "\"maxReplicas\":2,\"behavior\":{\"scaleDown\":"
		  "{\"stabilizationWindowSeconds\":3601}}}",
		  "spec.behavior.scaleDown.stabilizationWindowSeconds" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion",
		    "autoscaling/v2", "kind", "HorizontalPodAutoscaler", "metadata", "name", "h",
		    "namespace", "default", "spec", json_loads(bad[i].spec, 0, NULL));
		struct errlist e = { NULL, 0, 0 };
		assert_int_equal(obj_validate(o, &e), -EINVAL);
		bool found = false;
		for (size_t j = 0; j < e.n; j++)
			found |= !strcmp(e.v[j].field, bad[i].field);
		if (!found)
			fail_msg("case %zu: no error on %s (first: %s)", i, bad[i].field,
			    e.n ? e.v[0].field : "none");
		errlist_free(&e);
		json_decref(o);
	}
}

/* Kubernetes #72775: during a rolling update the surge pod is Ready and
 * measured; upstream multiplies the ratio by the 4 pods (ceil(1.2 x 4) = 5
 * for spec.replicas 3), V6 by spec.replicas (4): the surge adds nothing. */
static void
test_surge_pods_do_not_multiply_a_scale_up(void **state)
{
	(void)state;
	struct hpa_pod p[4];
	make_pods(p, 4, (int64_t[]){ 600, 600, 600, 600 });
	assert_int_equal(decide(make_hpa(1, 10, 50, NULL), 3, p, 4, NULL), 4);
	/* at the target during the surge: no move at all */
	make_pods(p, 4, (int64_t[]){ 500, 500, 520, 480 });
	assert_int_equal(decide(make_hpa(1, 10, 50, NULL), 3, p, 4, NULL), 3);
	/* without surge the same figures are upstream's */
	make_pods(p, 4, (int64_t[]){ 600, 600, 600, 600 });
	assert_int_equal(decide(make_hpa(1, 10, 50, NULL), 4, p, 4, NULL), 5);
}

/* ---- Pods, Object and External metrics (replica_calculator_test.go's
 * ...CM cases: values in milli-units as the custom metrics API gives them) */

static json_t *
hpa_with(const char *metric)
{
	json_t *h = make_hpa(1, 10, 50, NULL);
	json_object_set_new(json_object_get(h, "spec"), "metrics",
	    json_pack("[o]", json_loads(metric, 0, NULL)));
	return h;
}

/* desired, and the first currentMetrics entry in *cur (new reference). */
static int32_t
decide_in(json_t *hpa, int32_t current, struct hpa_pod *p, size_t n, struct hpa_metric_in *in,
    json_t **cur, json_t **status)
{
	struct hpa_history h = { 0 };
	struct hpa_decision d;
	hpa_decide(hpa, current, p, n, in, &h, &cfg, NOW_MS, &d);
	if (cur)
		*cur = json_incref(json_array_get(json_object_get(d.status, "currentMetrics"), 0));
	if (status)
		*status = json_incref(d.status);
	int32_t r = d.desired;
	hpa_decision_free(&d);
	json_decref(hpa);
	return r;
}

#define PODS_RPS(target) "{\"type\":\"Pods\",\"pods\":{\"metric\":{\"name\":" \
	"\"requests_per_second\"},\"target\":{\"type\":\"AverageValue\",\"averageValue\":\"" \
	target "\"}}}"

static void
test_pods_metric_scale_up_and_down(void **state)
{
	(void)state;
	struct hpa_pod p[5];
	json_t *cur;
	make_pods(p, 5, (int64_t[]){ 0, 0, 0, 0, 0 });
	/* TestReplicaCalcScaleUpCM */
	int64_t up[] = { 20000, 10000, 30000 };
	struct hpa_metric_in in = { .pod_values = up };
	assert_int_equal(decide_in(hpa_with(PODS_RPS("15")), 3, p, 3, &in, &cur, NULL), 4);
	assert_string_equal(json_string_value(obj_get_path(cur, "type")), "Pods");
	assert_string_equal(json_string_value(obj_get_path(cur, "pods.metric.name")),
	    "requests_per_second");
	assert_string_equal(json_string_value(obj_get_path(cur, "pods.current.averageValue")),
	    "20");
	json_decref(cur);
	/* TestReplicaCalcScaleDownCM */
	int64_t down[] = { 12000, 12000, 12000, 12000, 12000 };
	in.pod_values = down;
	/* the first sync seeds the window with the current 5: held (upstream) */
	assert_int_equal(decide_in(hpa_with(PODS_RPS("20")), 5, p, 5, &in, NULL, NULL), 5);
	json_t *h = hpa_with(PODS_RPS("20"));
	json_object_set_new(json_object_get(h, "spec"), "behavior", json_loads("{\"scaleDown\":"
	    "{\"stabilizationWindowSeconds\":0}}", 0, NULL));
	extern void autoscaling_hpa_defaults(json_t *obj);
	autoscaling_hpa_defaults(h);
	assert_int_equal(decide_in(h, 5, p, 5, &in, NULL, NULL), 3);
}

static void
test_pods_metric_unready_counts_and_missing_holds(void **state)
{
	(void)state;
	struct hpa_pod p[3];
	make_pods(p, 3, (int64_t[]){ 0, 0, 0 });
	/* TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale: readiness is a cpu matter */
	unready(&p[0]);
	unready(&p[2]);
	int64_t v[] = { 50000, 10000, 30000 };
	struct hpa_metric_in in = { .pod_values = v };
	assert_int_equal(decide_in(hpa_with(PODS_RPS("15")), 3, p, 3, &in, NULL, NULL), 6);
	/* pods the proxy has not routed to yet are missing, counted at 0 against a
	 * scale-up: 2 hot pods of 5 do not make 4 (ceil(25 / 15 x 2)) */
	struct hpa_pod q[5];
	make_pods(q, 5, (int64_t[]){ 0, 0, 0, 0, 0 });
	int64_t w[] = { 25000, 25000, HPA_NO_VALUE, HPA_NO_VALUE, HPA_NO_VALUE };
	in.pod_values = w;
	assert_int_equal(decide_in(hpa_with(PODS_RPS("15")), 5, q, 5, &in, NULL, NULL), 5);
	/* no pod measured at all: FailedGetPodsMetric, nothing moves */
	json_t *st;
	in = (struct hpa_metric_in){ .rc = -ENOENT, .why = "no metrics returned from custom "
		"metrics API" };
	assert_int_equal(decide_in(hpa_with(PODS_RPS("15")), 3, p, 3, &in, NULL, &st), 3);
	assert_string_equal(cond_reason(st, "ScalingActive"), "FailedGetPodsMetric");
	json_decref(st);
}

static void
test_object_and_external_metrics(void **state)
{
	(void)state;
	struct hpa_pod p[5];
	json_t *cur;
	make_pods(p, 5, (int64_t[]){ 0, 0, 0, 0, 0 });
	/* TestReplicaCalcScaleUpCMObject: 3 ready pods x 20/15 */
	struct hpa_metric_in in = { .value = 20000 };
	assert_int_equal(decide_in(hpa_with("{\"type\":\"Object\",\"object\":{\"metric\":{\"name\":"
	    "\"requests_per_second\"},\"describedObject\":{\"apiVersion\":\"v1\",\"kind\":"
	    "\"Service\",\"name\":\"web\"},\"target\":{\"type\":\"Value\",\"value\":\"15\"}}}"), 3, p,
	    3, &in, &cur, NULL), 4);
	assert_string_equal(json_string_value(obj_get_path(cur, "object.current.value")), "20");
	assert_string_equal(json_string_value(obj_get_path(cur,
	    "object.describedObject.kind")), "Service");
	json_decref(cur);
	/* TestReplicaCalcScaleUpPerPodCMExternal: ceil(8.6 / 2.15) = 4, 8.6 / 3 per pod */
	in.value = 8600;
	assert_int_equal(decide_in(hpa_with("{\"type\":\"External\",\"external\":{\"metric\":{"
	    "\"name\":\"queue_depth\",\"selector\":{\"matchLabels\":{\"queue\":\"work\"}}},"
	    "\"target\":{\"type\":\"AverageValue\",\"averageValue\":\"2150m\"}}}"), 3, p, 3, &in,
	    &cur, NULL), 4);
	assert_string_equal(json_string_value(obj_get_path(cur, "external.current.averageValue")),
	    "2867m");
	assert_string_equal(json_string_value(obj_get_path(cur,
	    "external.metric.selector.matchLabels.queue")), "work");
	json_decref(cur);
	/* TestReplicaCalcScaleUpCMExternal: 1 pod, 8.6 / 4.4 */
	assert_int_equal(decide_in(hpa_with("{\"type\":\"External\",\"external\":{\"metric\":{"
	    "\"name\":\"queue_depth\"},\"target\":{\"type\":\"Value\",\"value\":\"4400m\"}}}"), 1,
	    p, 1, &in, NULL, NULL), 2);
	/* an unreachable Prometheus: FailedGetExternalMetric */
	json_t *st;
	in = (struct hpa_metric_in){ .rc = -EIO, .why = "querying Prometheus: connection refused" };
	assert_int_equal(decide_in(hpa_with("{\"type\":\"External\",\"external\":{\"metric\":{"
	    "\"name\":\"queue_depth\"},\"target\":{\"type\":\"Value\",\"value\":\"1\"}}}"), 2, p, 2,
	    &in, NULL, &st), 2);
	assert_string_equal(cond_reason(st, "ScalingActive"), "FailedGetExternalMetric");
	json_decref(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_scale_up_and_down, setup),
		cmocka_unit_test_setup(test_tolerance, setup),
		cmocka_unit_test_setup(test_missing_metrics, setup),
		cmocka_unit_test_setup(test_unready_pods, setup),
		cmocka_unit_test_setup(test_rolling_update_surge_no_scale_up, setup),
		cmocka_unit_test_setup(test_min_max_limits, setup),
		cmocka_unit_test_setup(test_scale_up_policies, setup),
		cmocka_unit_test_setup(test_scale_down_stabilization_and_policy, setup),
		cmocka_unit_test_setup(test_failed_metrics_conditions, setup),
		cmocka_unit_test_setup(test_memory_average_value, setup),
		cmocka_unit_test(test_validation),
		cmocka_unit_test_setup(test_pods_metric_scale_up_and_down, setup),
		cmocka_unit_test_setup(test_pods_metric_unready_counts_and_missing_holds, setup),
		cmocka_unit_test_setup(test_object_and_external_metrics, setup),
		cmocka_unit_test_setup(test_surge_pods_do_not_multiply_a_scale_up, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
