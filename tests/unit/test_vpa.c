/* Unit tests of the VPA's pure parts against hand-computed cases: the
 * exponential buckets and percentiles of upstream's histogram, decay by
 * half-life, one memory peak per window, the OOM bump, checkpoints, the
 * estimators (margin, confidence, per-container minimums), the container
 * policies, and the Initial-mode admission of a new pod. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vpa.h"

#define DAY_MS (24LL * 3600 * 1000)
#define T0 (20833LL * DAY_MS)	/* a day boundary in 2027 */
#define MI (1024.0 * 1024)

static void
assert_near(double got, double want)
{
	if (fabs(got - want) > 1e-6 * fmax(1, fabs(want)))
		fail_msg("got %.9f, want %.9f", got, want);
}

/* log(v * 0.05 / first + 1) / log(1.05), and (1.05^b - 1) / 0.05 * first. */
static void
test_buckets(void **state)
{
	(void)state;
	struct vpa_hist h;
	vpa_hist_init(&h, VPA_CPU, DAY_MS);
	assert_int_equal(vpa_hist_bucket(&h, 0.005), 0);
	assert_int_equal(vpa_hist_bucket(&h, 0.01), 1);
	assert_int_equal(vpa_hist_bucket(&h, 0.5), 25);
	assert_int_equal(vpa_hist_bucket(&h, 1000), 174);
	assert_int_equal(vpa_hist_bucket(&h, 1e6), VPA_NBUCKETS - 1);
	assert_near(vpa_hist_bucket_start(&h, 0), 0);
	assert_near(vpa_hist_bucket_start(&h, 1), 0.01);
	assert_near(vpa_hist_bucket_start(&h, 2), 0.0205);
	vpa_hist_init(&h, VPA_MEM, DAY_MS);
	assert_int_equal(vpa_hist_bucket(&h, 300e6), 18);
}

/* The percentile is the end of the bucket that reaches it. */
static void
test_percentile(void **state)
{
	(void)state;
	struct vpa_hist h;
	vpa_hist_init(&h, VPA_CPU, DAY_MS);
	assert_true(vpa_hist_empty(&h));
	assert_near(vpa_hist_percentile(&h, 0.9), 0);
	vpa_hist_add(&h, 0.1, 1, T0);
	vpa_hist_add(&h, 1.0, 1, T0);
	assert_false(vpa_hist_empty(&h));
	assert_near(vpa_hist_percentile(&h, 0.5), 0.11026564319570324);
	assert_near(vpa_hist_percentile(&h, 0.9), 1.0162813885540927);
	/* subtracting the small one leaves the large one */
	vpa_hist_sub(&h, 0.1, 1, T0);
	assert_near(vpa_hist_percentile(&h, 0.1), 1.0162813885540927);
	assert_near(h.total, 1);
}

/* A sample a half-life later weighs twice as much. */
static void
test_decay(void **state)
{
	(void)state;
	struct vpa_hist h;
	vpa_hist_init(&h, VPA_CPU, DAY_MS);
	vpa_hist_add(&h, 0.1, 1, T0);
	vpa_hist_add(&h, 1.0, 1, T0 + DAY_MS);
	assert_near(h.total / h.w[8], 3);
	assert_near(vpa_hist_percentile(&h, 0.3), 0.11026564319570324);
	assert_near(vpa_hist_percentile(&h, 0.5), 1.0162813885540927);
	/* within the hour no decay: the time is truncated to the hour */
	vpa_hist_init(&h, VPA_CPU, DAY_MS);
	vpa_hist_add(&h, 0.1, 1, T0 + 60000);
	vpa_hist_add(&h, 1.0, 1, T0 + 3500000);
	assert_near(h.total, 2 * h.w[8]);
	/* 100 half-lives on, the reference moves and weights stay finite */
	vpa_hist_add(&h, 1.0, 1, T0 + 150 * DAY_MS);
	assert_true(isfinite(h.total) && h.total > 0);
	assert_near(vpa_hist_percentile(&h, 0.5), 1.0162813885540927);
}

/* One memory peak per window: the higher sample replaces the lower. */
static void
test_memory_peaks(void **state)
{
	(void)state;
	struct vpa_config cfg;
	struct vpa_state s;
	struct vpa_peak pk = { 0 };
	vpa_config_default(&cfg);
	vpa_state_init(&s, &cfg);
	assert_true(vpa_state_add_mem(&s, &pk, 100e6, T0, &cfg));
	assert_true(vpa_state_add_mem(&s, &pk, 300e6, T0 + 60000, &cfg));
	assert_true(vpa_state_add_mem(&s, &pk, 200e6, T0 + 120000, &cfg));
	assert_false(vpa_state_add_mem(&s, &pk, 900e6, T0 + 30000, &cfg));	/* older */
	assert_near(s.mem.total, 1);
	assert_near(vpa_hist_percentile(&s.mem, 0.5), 305390039.075128);
	/* the next window adds a second peak */
	vpa_state_add_mem(&s, &pk, 150e6, T0 + DAY_MS + 1000, &cfg);
	assert_near(s.mem.total / s.mem.w[18], 3);	/* 1 + the next window's 2 */
}

/* After an OOM kill: max(used + 100Mi, used * 1.2), used = max(request, peak). */
static void
test_oom_bump(void **state)
{
	(void)state;
	struct vpa_config cfg;
	struct vpa_state s;
	struct vpa_peak pk = { 0 };
	vpa_config_default(&cfg);
	vpa_state_init(&s, &cfg);
	vpa_state_add_mem(&s, &pk, 100e6, T0, &cfg);
	vpa_state_oom(&s, &pk, 200 * MI, T0 + 1000, &cfg);	/* 200Mi + 100Mi > 240Mi */
	assert_near(pk.oom_peak, 300 * MI);
	assert_near(s.mem.total, 1);	/* it replaced the window's peak */
	assert_int_equal(s.mem.max_b, vpa_hist_bucket(&s.mem, 300 * MI));
	vpa_state_oom(&s, &pk, 1024 * MI, T0 + 2000, &cfg);	/* 1.2Gi > 1Gi + 100Mi */
	assert_near(pk.oom_peak, 1.2 * 1024 * MI);
	assert_near(vpa_hist_percentile(&s.mem, 0.9), 1352317511.023487);
}

/* p90 of 0.5 cores is 0.5111 (511m); + 15 % = 587m; bounds scaled by the
 * confidence (one day of history at a sample a minute: confidence 1):
 * upper x (1 + 1/1) = 1174m, lower x (1 + 0.001)^-2 = 585m. */
static void
test_estimate(void **state)
{
	(void)state;
	struct vpa_config cfg;
	struct vpa_state s;
	struct vpa_peak pk = { 0 };
	struct vpa_estimate e;
	char q[48];
	vpa_config_default(&cfg);
	vpa_state_init(&s, &cfg);
	for (int i = 0; i <= 2880; i++)
		vpa_state_add_cpu(&s, 0.5, 1.0, T0 + (int64_t)i * DAY_MS / 2880);
	vpa_state_add_mem(&s, &pk, 300e6, T0, &cfg);
	vpa_estimate(&s, 1, &cfg, &e);
	vpa_quantity(VPA_CPU, e.target[VPA_CPU], q, sizeof q);
	assert_string_equal(q, "587m");
	vpa_quantity(VPA_CPU, e.upper[VPA_CPU], q, sizeof q);
	assert_string_equal(q, "1174m");
	vpa_quantity(VPA_CPU, e.lower[VPA_CPU], q, sizeof q);
	assert_string_equal(q, "585m");
	vpa_quantity(VPA_MEM, e.target[VPA_MEM], q, sizeof q);
	assert_string_equal(q, "351198544");	/* 305390039 * 1.15 */
	/* without confidence scaling all three are the margin'd percentiles */
	cfg.confidence = false;
	vpa_estimate(&s, 1, &cfg, &e);
	vpa_quantity(VPA_CPU, e.upper[VPA_CPU], q, sizeof q);
	assert_string_equal(q, "587m");
}

/* Idle containers get the pod minimums split between them: 25m / 2 = 12m
 * (truncated), 250Mi / 2 = 131072000 bytes. */
static void
test_minimums(void **state)
{
	(void)state;
	struct vpa_config cfg;
	struct vpa_state s;
	struct vpa_peak pk = { 0 };
	struct vpa_estimate e;
	char q[48];
	vpa_config_default(&cfg);
	vpa_state_init(&s, &cfg);
	vpa_state_add_cpu(&s, 0.001, 0, T0);
	vpa_state_add_mem(&s, &pk, 1e6, T0, &cfg);
	vpa_estimate(&s, 2, &cfg, &e);
	vpa_quantity(VPA_CPU, e.target[VPA_CPU], q, sizeof q);
	assert_string_equal(q, "12m");
	vpa_quantity(VPA_MEM, e.target[VPA_MEM], q, sizeof q);
	assert_string_equal(q, "131072k");
	vpa_quantity(VPA_MEM, e.lower[VPA_MEM], q, sizeof q);
	assert_string_equal(q, "131072k");
	vpa_estimate(&s, 1, &cfg, &e);
	vpa_quantity(VPA_CPU, e.target[VPA_CPU], q, sizeof q);
	assert_string_equal(q, "25m");
	vpa_quantity(VPA_MEM, e.target[VPA_MEM], q, sizeof q);
	assert_string_equal(q, "262144k");
	vpa_quantity(VPA_CPU, 2.0, q, sizeof q);
	assert_string_equal(q, "2");
	/* no history yet: upper bounds at MaxResourceAmount, as upstream shows */
	vpa_quantity(VPA_CPU, 1e11, q, sizeof q);
	assert_string_equal(q, "100G");
	vpa_quantity(VPA_MEM, 1e14, q, sizeof q);
	assert_string_equal(q, "100T");
}

/* A history without a sample for 8 days expires (upstream's isExpired);
 * an OOM kill counts as a sample. */
static void
test_expiry(void **state)
{
	(void)state;
	struct vpa_config cfg;
	struct vpa_state s;
	struct vpa_peak pk = { 0 };
	vpa_config_default(&cfg);
	vpa_state_init(&s, &cfg);
	vpa_state_add_cpu(&s, 0.1, 0, T0);
	assert_false(vpa_state_expired(&s, T0 + 8 * DAY_MS - 1, &cfg));
	assert_true(vpa_state_expired(&s, T0 + 8 * DAY_MS, &cfg));
	vpa_state_oom(&s, &pk, 0, T0 + DAY_MS, &cfg);
	assert_false(vpa_state_expired(&s, T0 + 8 * DAY_MS, &cfg));
	assert_true(vpa_state_expired(&s, T0 + 9 * DAY_MS, &cfg));
}

/* A checkpoint keeps the shape (weights scaled to 10000) and the total. */
static void
test_checkpoint(void **state)
{
	(void)state;
	struct vpa_config cfg;
	struct vpa_state s, back;
	struct vpa_peak pk = { 0 };
	vpa_config_default(&cfg);
	vpa_state_init(&s, &cfg);
	vpa_state_add_cpu(&s, 0.1, 0.5, T0);
	vpa_state_add_cpu(&s, 0.1, 0.5, T0 + 60000);
	vpa_state_add_cpu(&s, 1.0, 0.5, T0 + 120000);
	vpa_state_add_mem(&s, &pk, 300e6, T0, &cfg);
	json_t *cp = vpa_state_save(&s, T0 + 180000);
	assert_int_equal(json_integer_value(obj_get_path(cp,
	    "cpuHistogram.bucketWeights.8")), 10000);
	assert_int_equal(json_integer_value(obj_get_path(cp,
	    "cpuHistogram.bucketWeights.36")), 5000);
	assert_int_equal(json_integer_value(json_object_get(cp, "totalSamplesCount")), 3);
	assert_string_equal(obj_str(cp, "version"), "v3");
	assert_int_equal(vpa_state_load(&back, cp, &cfg), 0);
	assert_near(back.cpu.total, s.cpu.total);
	assert_near(vpa_hist_percentile(&back.cpu, 0.5), vpa_hist_percentile(&s.cpu, 0.5));
	assert_near(vpa_hist_percentile(&back.cpu, 0.9), 1.0162813885540927);
	assert_near(vpa_hist_percentile(&back.mem, 0.9), 305390039.075128);
	assert_true(back.first_ms == T0 && back.last_ms == T0 + 120000 && back.samples == 3);
	assert_true(back.seen_ms == T0 + 180000);	/* its lastUpdateTime */
	/* a bucket out of range is refused */
	json_object_set_new(json_object_get(json_object_get(cp, "cpuHistogram"),
	    "bucketWeights"), "176", json_integer(1));
	assert_int_equal(vpa_state_load(&back, cp, &cfg), -EINVAL);
	json_decref(cp);
}

static json_t *
make_vpa(const char *mode, const char *policies)
{
	json_t *v = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:s, s:s, s:s}, s:{s:s}}}",
	    "apiVersion", "autoscaling.k8s.io/v1", "kind", "VerticalPodAutoscaler", "metadata",
	    "name", "web-vpa", "namespace", "default", "spec", "targetRef", "apiVersion",
	    "apps/v1", "kind", "Deployment", "name", "web", "updatePolicy", "updateMode", mode);
	if (policies)
		json_object_set_new(json_object_get(v, "spec"), "resourcePolicy",
		    json_pack("{s:o}", "containerPolicies", json_loads(policies, 0, NULL)));
	return v;
}

/* minAllowed / maxAllowed cap target and bounds, uncappedTarget keeps the
 * estimate; controlledResources limits the resources; "*" is the fallback;
 * mode Off drops the container. */
static void
test_policy(void **state)
{
	(void)state;
	struct vpa_estimate e = { .target = { 0.587, 262144000 }, .lower = { 0.012, 262144000 },
		.upper = { 4.0, 262144000 } };
	json_t *v = make_vpa("Off", "[{\"containerName\": \"*\", \"minAllowed\": "
	    "{\"cpu\": \"100m\"}, \"maxAllowed\": {\"cpu\": \"2\", \"memory\": \"200Mi\"}},"
	    "{\"containerName\": \"side\", \"mode\": \"Off\"},"
	    "{\"containerName\": \"cpuonly\", \"controlledResources\": [\"cpu\"]}]");
	json_t *r = vpa_container_recommendation(v, "app", &e);
	assert_string_equal(obj_str_at(r, "target.cpu"), "587m");
	assert_string_equal(obj_str_at(r, "target.memory"), "200Mi");
	assert_string_equal(obj_str_at(r, "lowerBound.cpu"), "100m");
	assert_string_equal(obj_str_at(r, "upperBound.cpu"), "2");
	assert_string_equal(obj_str_at(r, "uncappedTarget.memory"), "262144k");
	assert_string_equal(obj_str(r, "containerName"), "app");
	json_decref(r);
	assert_null(vpa_container_recommendation(v, "side", &e));
	r = vpa_container_recommendation(v, "cpuonly", &e);
	assert_string_equal(obj_str_at(r, "target.cpu"), "587m");	/* not "*"'s caps */
	assert_null(obj_get_path(r, "target.memory"));
	json_decref(r);
	assert_string_equal(vpa_update_mode(v), "Off");
	json_object_del(json_object_get(v, "spec"), "updatePolicy");
	assert_string_equal(vpa_update_mode(v), "Auto");
	assert_true(vpa_uses_default_recommender(v));
	json_object_set_new(json_object_get(v, "spec"), "recommenders",
	    json_loads("[{\"name\": \"other\"}]", 0, NULL));
	assert_false(vpa_uses_default_recommender(v));
	json_decref(v);
}

/* ReplicaSet web-abc belongs to Deployment web. */
static json_t *
owner_rs(void *arg, const char *ns, const char *kind, const char *name)
{
	(void)arg;
	(void)ns;
	if (strcmp(kind, "ReplicaSet") || strcmp(name, "web-abc"))
		return NULL;
	return json_loads("{\"metadata\": {\"name\": \"web-abc\", \"ownerReferences\": "
	    "[{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"name\": \"web\", "
	    "\"uid\": \"u1\", \"controller\": true}]}}", 0, NULL);
}

static json_t *
make_pod(const char *rs)
{
	char *s = xasprintf("{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": "
	    "{\"name\": \"p\", \"namespace\": \"default\", \"ownerReferences\": [{\"apiVersion\": "
	    "\"apps/v1\", \"kind\": \"ReplicaSet\", \"name\": \"%s\", \"uid\": \"u2\", "
	    "\"controller\": true}]}, \"spec\": {\"containers\": [{\"name\": \"app\", "
	    "\"image\": \"x\", \"resources\": {\"requests\": {\"cpu\": \"100m\", \"memory\": "
	    "\"100Mi\"}, \"limits\": {\"cpu\": \"200m\", \"memory\": \"200Mi\"}}}]}}", rs);
	json_t *p = json_loads(s, 0, NULL);
	free(s);
	return p;
}

static void
add_recommendation(json_t *vpa)
{
	json_object_set_new(vpa, "status", json_loads("{\"recommendation\": "
	    "{\"containerRecommendations\": [{\"containerName\": \"app\", \"target\": "
	    "{\"cpu\": \"587m\", \"memory\": \"262144k\"}}]}}", 0, NULL));
}

/* Initial: requests become the target, limits keep their ratio (200m /
 * 100m x 587m = 1174m; 200Mi / 100Mi x 262144000 = 524288000 bytes). */
static void
test_admit_initial(void **state)
{
	(void)state;
	json_t *vpa = make_vpa("Initial", NULL), *vpas = json_array(), *pod = make_pod("web-abc");
	add_recommendation(vpa);
	json_array_append_new(vpas, vpa);
	assert_true(vpa_targets_pod(vpa, pod, owner_rs, NULL));
	vpa_admit_pod(pod, vpas, owner_rs, NULL);
	json_t *res = json_object_get(json_array_get(obj_get_path(pod, "spec.containers"), 0),
	    "resources");
	assert_string_equal(obj_str_at(res, "requests.cpu"), "587m");
	assert_string_equal(obj_str_at(res, "requests.memory"), "262144k");
	assert_string_equal(obj_str_at(res, "limits.cpu"), "1174m");
	assert_string_equal(obj_str_at(res, "limits.memory"), "524288k");
	assert_string_equal(obj_annotation(pod, "vpaObservedContainers"), "app");
	assert_string_equal(obj_annotation(pod, "vpaUpdates"), "Pod resources updated by "
	    "web-vpa: container 0: cpu request, cpu limit, memory request, memory limit");
	json_decref(pod);
	/* RequestsOnly leaves the limits */
	json_object_set_new(json_object_get(vpa, "spec"), "resourcePolicy", json_loads(
	    "{\"containerPolicies\": [{\"containerName\": \"app\", \"controlledValues\": "
	    "\"RequestsOnly\"}]}", 0, NULL));
	pod = make_pod("web-abc");
	vpa_admit_pod(pod, vpas, owner_rs, NULL);
	res = json_object_get(json_array_get(obj_get_path(pod, "spec.containers"), 0),
	    "resources");
	assert_string_equal(obj_str_at(res, "requests.cpu"), "587m");
	assert_string_equal(obj_str_at(res, "limits.cpu"), "200m");
	json_decref(pod);
	/* a pod of another controller is not touched */
	pod = make_pod("other-xyz");
	assert_false(vpa_targets_pod(vpa, pod, owner_rs, NULL));
	vpa_admit_pod(pod, vpas, owner_rs, NULL);
	assert_null(obj_annotation(pod, "vpaObservedContainers"));
	json_decref(pod);
	json_decref(vpas);
}

/* A StatefulSet's (or DaemonSet's) pod is its controller's directly; a
 * Deployment's is not matched through a ReplicaSet of another owner. */
static void
test_targets_direct_owner(void **state)
{
	(void)state;
	json_t *vpa = make_vpa("Initial", NULL);
	json_t *pod = json_loads("{\"metadata\": {\"name\": \"db-0\", \"namespace\": "
	    "\"default\", \"ownerReferences\": [{\"apiVersion\": \"apps/v1\", \"kind\": "
	    "\"StatefulSet\", \"name\": \"db\", \"uid\": \"u3\", \"controller\": true}]}}",
	    0, NULL);
	json_t *ref = obj_get_path(vpa, "spec.targetRef");
	assert_false(vpa_targets_pod(vpa, pod, owner_rs, NULL));
	json_object_set_new(ref, "kind", json_string("StatefulSet"));
	json_object_set_new(ref, "name", json_string("db"));
	assert_true(vpa_targets_pod(vpa, pod, owner_rs, NULL));
	json_object_set_new(ref, "kind", json_string("DaemonSet"));
	assert_false(vpa_targets_pod(vpa, pod, owner_rs, NULL));
	json_decref(pod);
	json_decref(vpa);
}

/* Off: the pod is created as it was written, without annotations. */
static void
test_admit_off(void **state)
{
	(void)state;
	json_t *vpa = make_vpa("Off", NULL), *vpas = json_array(), *pod = make_pod("web-abc");
	add_recommendation(vpa);
	json_array_append_new(vpas, vpa);
	json_t *before = json_deep_copy(pod);
	vpa_admit_pod(pod, vpas, owner_rs, NULL);
	assert_true(json_equal(pod, before));
	json_decref(before);
	json_decref(pod);
	json_decref(vpas);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_percentile),
		cmocka_unit_test(test_decay),
		cmocka_unit_test(test_memory_peaks),
		cmocka_unit_test(test_oom_bump),
		cmocka_unit_test(test_estimate),
		cmocka_unit_test(test_minimums),
		cmocka_unit_test(test_checkpoint),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_admit_initial),
		cmocka_unit_test(test_targets_direct_owner),
		cmocka_unit_test(test_admit_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
