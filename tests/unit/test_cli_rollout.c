/* test_cli_rollout.c — the pure parts of the workload verbs: kubectl's
 * rollout status message for every state of a Deployment, the ReplicaSet
 * `rollout undo` goes back to and the patch it sends, the quantity
 * arithmetic of `top`, and for Argo Rollouts: the status line, step and
 * weight, what promote / abort / retry / pause / resume send in every
 * state, history, undo, and the `rollout watch` / describe views. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "quantity.h"

static json_t *
js(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, 0, &e);
	if (v == NULL)
		fail_msg("bad test JSON: %s: %s", e.text, text);
	return v;
}

/* A deployment "web": generation/observedGeneration, spec.replicas (-1 =
 * absent), status counts, and an optional Progressing reason. */
static json_t *
deploy(int gen, int observed, int spec, int replicas, int updated, int available,
    const char *progressing)
{
	json_t *d = js("{\"metadata\":{\"name\":\"web\",\"uid\":\"u-1\",\"annotations\":"
	    "{\"deployment.kubernetes.io/revision\":\"3\"}},\"spec\":{},\"status\":{}}");
	json_object_set_new(json_object_get(d, "metadata"), "generation", json_integer(gen));
	if (spec >= 0)
		json_object_set_new(json_object_get(d, "spec"), "replicas", json_integer(spec));
	json_t *st = json_object_get(d, "status");
	json_object_set_new(st, "observedGeneration", json_integer(observed));
	json_object_set_new(st, "replicas", json_integer(replicas));
	json_object_set_new(st, "updatedReplicas", json_integer(updated));
	json_object_set_new(st, "availableReplicas", json_integer(available));
	if (progressing)
		json_object_set_new(st, "conditions", json_pack("[{s:s, s:s, s:s}]", "type",
		    "Progressing", "status", strcmp(progressing, "ProgressDeadlineExceeded") == 0
		    ? "False" : "True", "reason", progressing));
	return d;
}

static void
expect_status(json_t *d, int64_t revision, int want_rc, const char *want, bool want_done)
{
	char *msg = NULL;
	bool done = true;
	int rc = cli_rollout_status_msg(d, revision, &msg, &done);
	assert_int_equal(rc, want_rc);
	assert_non_null(msg);
	assert_string_equal(msg, want);
	assert_int_equal(done, want_done);
	free(msg);
	json_decref(d);
}

static void
test_status_spec_update_not_observed(void **state)
{
	(void)state;
	expect_status(deploy(2, 1, 3, 3, 3, 3, NULL), 0, 0,
	    "Waiting for deployment spec update to be observed...\n", false);
	/* not observed wins even over a deadline exceeded from the old spec */
	expect_status(deploy(2, 1, 3, 3, 1, 1, "ProgressDeadlineExceeded"), 0, 0,
	    "Waiting for deployment spec update to be observed...\n", false);
}

static void
test_status_new_replicas_updated(void **state)
{
	(void)state;
	expect_status(deploy(2, 2, 3, 4, 1, 3, "ReplicaSetUpdated"), 0, 0,
	    "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have "
	    "been updated...\n", false);
}

static void
test_status_old_replicas_pending_termination(void **state)
{
	(void)state;
	expect_status(deploy(2, 2, 3, 5, 3, 3, NULL), 0, 0,
	    "Waiting for deployment \"web\" rollout to finish: 2 old replicas are pending "
	    "termination...\n", false);
}

static void
test_status_updated_replicas_available(void **state)
{
	(void)state;
	expect_status(deploy(2, 2, 3, 3, 3, 2, NULL), 0, 0,
	    "Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are "
	    "available...\n", false);
}

static void
test_status_successfully_rolled_out(void **state)
{
	(void)state;
	expect_status(deploy(2, 2, 3, 3, 3, 3, "NewReplicaSetAvailable"), 0, 0,
	    "deployment \"web\" successfully rolled out\n", true);
	expect_status(deploy(5, 5, 0, 0, 0, 0, NULL), 0, 0,
	    "deployment \"web\" successfully rolled out\n", true);
	/* spec.replicas absent: the updated count is not compared */
	expect_status(deploy(1, 1, -1, 2, 2, 2, NULL), 0, 0,
	    "deployment \"web\" successfully rolled out\n", true);
}

static void
test_status_progress_deadline_exceeded(void **state)
{
	(void)state;
	expect_status(deploy(2, 2, 3, 4, 1, 3, "ProgressDeadlineExceeded"), 0, -1,
	    "deployment \"web\" exceeded its progress deadline", false);
}

static void
test_status_revision(void **state)
{
	(void)state;
	expect_status(deploy(2, 2, 3, 3, 3, 3, NULL), 3, 0,
	    "deployment \"web\" successfully rolled out\n", true);
	expect_status(deploy(2, 2, 3, 3, 3, 3, NULL), 4, -1,
	    "desired revision (4) is different from the running revision (3)", false);
}

/* ---- history and undo ---------------------------------------------------- */

static json_t *
rs(const char *name, const char *owner_uid, bool controller, const char *rev,
    const char *image, const char *cause)
{
	json_t *r = json_pack("{s:{s:s, s:{}, s:[{s:s, s:s, s:s, s:b}]}, s:{s:{s:{s:{s:s, s:s}},"
	    " s:{s:[{s:s, s:s}]}}}}",
	    "metadata", "name", name, "annotations", "ownerReferences", "kind", "Deployment",
	    "name", "web", "uid", owner_uid, "controller", controller,
	    "spec", "template", "metadata", "labels", "app", "web", "pod-template-hash", name,
	    "spec", "containers", "name", "web", "image", image);
	json_t *ann = obj_get_path(r, "metadata.annotations");
	if (rev)
		json_object_set_new(ann, "deployment.kubernetes.io/revision", json_string(rev));
	if (cause)
		json_object_set_new(ann, "kubernetes.io/change-cause", json_string(cause));
	return r;
}

static json_t *
web_with_image(const char *image)
{
	json_t *d = js("{\"metadata\":{\"name\":\"web\",\"uid\":\"u-1\",\"annotations\":{"
	    "\"deployment.kubernetes.io/revision\":\"3\",\"keep\":\"me?\","
	    "\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"}},"
	    "\"spec\":{\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
	    "\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"\"}]}}}}");
	json_t *c = json_array_get(obj_get_path(d, "spec.template.spec.containers"), 0);
	json_object_set_new(c, "image", json_string(image));
	return d;
}

static json_t *
history(void)
{
	json_t *items = json_array();
	json_array_append_new(items, rs("web-c", "u-1", true, "3", "app:3", NULL));
	json_array_append_new(items, rs("web-a", "u-1", true, "1", "app:1", "first"));
	json_array_append_new(items, rs("other", "u-2", true, "7", "other:7", NULL));
	json_array_append_new(items, rs("adopted-not", "u-1", false, "9", "x:9", NULL));
	json_array_append_new(items, rs("web-b", "u-1", true, "2", "app:2", NULL));
	return items;
}

static void
test_owned_replicasets_sorted_by_revision(void **state)
{
	(void)state;
	json_t *d = web_with_image("app:3"), *items = history();
	json_t *owned = cli_owned_replicasets(d, items);
	assert_int_equal(json_array_size(owned), 3);
	assert_string_equal(obj_name(json_array_get(owned, 0)), "web-a");
	assert_string_equal(obj_name(json_array_get(owned, 1)), "web-b");
	assert_string_equal(obj_name(json_array_get(owned, 2)), "web-c");
	assert_int_equal(cli_revision_of(json_array_get(owned, 2)), 3);
	json_decref(owned);
	json_decref(items);
	json_decref(d);
}

static void
test_undo_target_previous_and_explicit(void **state)
{
	(void)state;
	json_t *d = web_with_image("app:3"), *items = history();
	json_t *owned = cli_owned_replicasets(d, items);
	char *err = NULL;
	const json_t *t = cli_undo_target(d, owned, 0, &err);
	assert_non_null(t);
	assert_string_equal(obj_name(t), "web-b");	/* the previous revision */
	t = cli_undo_target(d, owned, 1, &err);
	assert_non_null(t);
	assert_string_equal(obj_name(t), "web-a");
	assert_null(err);
	assert_null(cli_undo_target(d, owned, 7, &err));	/* another deployment's */
	assert_string_equal(err, "unable to find specified revision 7 in history");
	free(err);
	err = NULL;
	json_t *one = json_array();
	json_array_append(one, json_array_get(owned, 2));
	assert_null(cli_undo_target(d, one, 0, &err));
	assert_string_equal(err, "no rollout history found for deployment \"web\"");
	free(err);
	json_decref(one);
	json_decref(owned);
	json_decref(items);
	json_decref(d);
}

static void
test_template_matches_ignores_hash_label(void **state)
{
	(void)state;
	json_t *d = web_with_image("app:2");
	json_t *b = rs("web-b", "u-1", true, "2", "app:2", NULL);
	json_t *c = rs("web-c", "u-1", true, "3", "app:3", NULL);
	assert_true(cli_template_matches(d, b));
	assert_false(cli_template_matches(d, c));
	/* the RS is left untouched */
	assert_non_null(obj_get_path(b, "spec.template.metadata.labels.pod-template-hash"));
	json_decref(b);
	json_decref(c);
	json_decref(d);
}

static void
test_undo_patch_restores_template_and_annotations(void **state)
{
	(void)state;
	json_t *d = web_with_image("app:3");
	json_t *a = rs("web-a", "u-1", true, "1", "app:1", "first");
	json_t *patch = cli_undo_patch(d, a);
	char *err = NULL;
	json_t *out = patch_json(d, patch, &err);
	assert_non_null(out);
	json_t *c = json_array_get(obj_get_path(out, "spec.template.spec.containers"), 0);
	assert_string_equal(json_string_value(json_object_get(c, "image")), "app:1");
	json_t *labels = obj_get_path(out, "spec.template.metadata.labels");
	assert_null(json_object_get(labels, "pod-template-hash"));
	assert_string_equal(json_string_value(json_object_get(labels, "app")), "web");
	json_t *ann = obj_get_path(out, "metadata.annotations");
	/* kept from the deployment: revision and last-applied; from the RS: the rest */
	assert_string_equal(json_string_value(json_object_get(ann,
	    "deployment.kubernetes.io/revision")), "3");
	assert_non_null(json_object_get(ann, OBJ_LAST_APPLIED));
	assert_string_equal(json_string_value(json_object_get(ann,
	    "kubernetes.io/change-cause")), "first");
	assert_null(json_object_get(ann, "keep"));
	json_decref(out);
	json_decref(patch);
	json_decref(a);
	json_decref(d);
}

/* ---- top ----------------------------------------------------------------- */

static int64_t
scaled(const char *q, int scale)
{
	int64_t v = -12345;
	assert_int_equal(quantity_scaled(q, scale, &v), 0);
	return v;
}

static void
test_quantity_scaled(void **state)
{
	(void)state;
	assert_int_equal(scaled("250m", -3), 250);
	assert_int_equal(scaled("3141592n", -3), 4);	/* rounds up */
	assert_int_equal(scaled("3000000n", -3), 3);
	assert_int_equal(scaled("3141592n", -9), 3141592);
	assert_int_equal(scaled("1", -3), 1000);
	assert_int_equal(scaled("1.5", -3), 1500);
	assert_int_equal(scaled("0.001", -3), 1);
	assert_int_equal(scaled("0", -9), 0);
	assert_int_equal(scaled("12Mi", 0), 12 * 1024 * 1024);
	assert_int_equal(scaled("12345Ki", 0), 12345 * 1024);
	assert_int_equal(scaled("1Gi", 0), 1073741824);
	assert_int_equal(scaled("1.5Gi", 0), 1610612736);
	assert_int_equal(scaled("100M", 0), 100000000);
	assert_int_equal(scaled("1k", 0), 1000);
	assert_int_equal(scaled("1e3", 0), 1000);
	assert_int_equal(scaled("1E3", 0), 1000);
	assert_int_equal(scaled("2E", 0), 2000000000000000000LL);
	assert_int_equal(scaled("5u", -9), 5000);
	int64_t v;
	assert_int_equal(quantity_scaled("", 0, &v), -EINVAL);
	assert_int_equal(quantity_scaled("12Xi", 0, &v), -EINVAL);
	assert_int_equal(quantity_scaled("m", -3, &v), -EINVAL);
	assert_int_equal(quantity_scaled("12 Mi", 0, &v), -EINVAL);
	assert_int_equal(quantity_scaled("100Ei", 0, &v), -ERANGE);
	assert_int_equal(quantity_scaled("1e-99999", -9, &v), 0);
	assert_int_equal(v, 1);					/* rounds up */
	assert_int_equal(quantity_scaled("1e99999", 0, &v), -ERANGE);
	assert_int_equal(quantity_scaled("1e123456", 0, &v), -EINVAL);
}

/* The same reader as a double, as the schema and the node use it. */
static void
test_quantity_parse(void **state)
{
	(void)state;
	static const struct { const char *s; double v; } ok[] = {
		{ "500m", 0.5 }, { "1.5", 1.5 }, { "1.5Gi", 1610612736.0 }, { "64Mi", 67108864.0 },
		{ "1e3", 1000.0 }, { "2E", 2e18 }, { "-2k", -2000.0 }, { "+.5", 0.5 },
		{ "3141592n", 0.003141592 }, { "1e-3", 0.001 },
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		double d = -1;
		assert_int_equal(quantity_parse(ok[i].s, &d), 0);
		assert_true(d == ok[i].v);
	}
	static const char *const bad[] = { "", "m", "12Xi", "1 Mi", "1e99999", "1e", "1.5.5",
		"Mi1" };
	double d;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(quantity_parse(bad[i], &d), -EINVAL);
}

static void
test_format_cpu_and_memory(void **state)
{
	(void)state;
	char out[32];
	cli_format_cpu(0, out);
	assert_string_equal(out, "0m");
	cli_format_cpu(3141592, out);
	assert_string_equal(out, "4m");
	cli_format_cpu(3000000, out);
	assert_string_equal(out, "3m");
	cli_format_cpu(1500000000, out);
	assert_string_equal(out, "1500m");
	cli_format_memory(12 * 1024 * 1024 + 5, out);
	assert_string_equal(out, "12Mi");
	cli_format_memory(1024 * 1024 - 1, out);
	assert_string_equal(out, "0Mi");
}


/* ---- Argo Rollouts -------------------------------------------------------- */

/* A canary rollout "web" with four steps; status fields merged from st
 * (JSON text), spec fields from sp. */
static json_t *
ro(const char *sp, const char *st)
{
	json_t *r = js("{\"apiVersion\":\"argoproj.io/v1alpha1\",\"kind\":\"Rollout\","
	    "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"ro-1\","
	    "\"generation\":2},"
	    "\"spec\":{\"replicas\":5,\"strategy\":{\"canary\":{\"steps\":["
	    "{\"setWeight\":20},{\"pause\":{}},{\"setWeight\":60},"
	    "{\"analysis\":{\"templates\":[{\"templateName\":\"success-rate\"}]}}]}}},"
	    "\"status\":{\"observedGeneration\":\"2\"}}");
	json_t *s = js(sp ? sp : "{}"), *t = js(st ? st : "{}");
	json_object_update(json_object_get(r, "spec"), s);
	json_object_update(json_object_get(r, "status"), t);
	json_decref(s);
	json_decref(t);
	return r;
}

static json_t *
bluegreen(const char *st)
{
	json_t *r = ro("{\"strategy\":{\"blueGreen\":{\"activeService\":\"web\","
	    "\"previewService\":\"web-preview\",\"autoPromotionEnabled\":false}}}", st);
	return r;
}

static void
expect_argo_status(json_t *r, int want_state, const char *want)
{
	char *msg = NULL;
	assert_int_equal(cli_argo_status_msg(r, &msg), want_state);
	assert_string_equal(msg, want);
	free(msg);
	json_decref(r);
}

static void
test_argo_status_line_per_phase(void **state)
{
	(void)state;
	expect_argo_status(ro(NULL, "{\"phase\":\"Healthy\",\"currentStepIndex\":4}"),
	    CLI_ARGO_DONE, "Healthy\n");
	/* every pause is followed through, as kubectl-argo-rollouts status */
	expect_argo_status(ro(NULL, "{\"phase\":\"Paused\",\"message\":\"CanaryPauseStep\","
	    "\"currentStepIndex\":1,\"pauseConditions\":[{\"reason\":\"CanaryPauseStep\"}]}"),
	    CLI_ARGO_WAIT, "Paused - CanaryPauseStep (step 1/4, weight 20%)\n");
	expect_argo_status(ro("{\"paused\":true}", "{\"phase\":\"Paused\","
	    "\"currentStepIndex\":2}"), CLI_ARGO_WAIT, "Paused (step 2/4, weight 60%)\n");
	expect_argo_status(ro(NULL, "{\"phase\":\"Paused\",\"currentStepIndex\":2,"
	    "\"pauseConditions\":[{\"reason\":\"InconclusiveAnalysisRun\"}]}"),
	    CLI_ARGO_WAIT, "Paused (step 2/4, weight 60%)\n");
	expect_argo_status(ro(NULL, "{\"phase\":\"Progressing\",\"message\":\"more replicas "
	    "need to be updated\",\"currentStepIndex\":2}"), CLI_ARGO_WAIT,
	    "Progressing - more replicas need to be updated (step 2/4, weight 60%)\n");
	expect_argo_status(ro(NULL, "{\"phase\":\"Degraded\",\"message\":\"RolloutAborted: "
	    "metric success-rate failed\",\"abort\":true,\"currentStepIndex\":3}"),
	    CLI_ARGO_FAILED, "Degraded - RolloutAborted: metric success-rate failed "
	    "(step 3/4, weight 0%)\n");
	/* the weight the controller reports wins over the step's when traffic
	 * is split between services; without them it says nothing */
	const char *weights = "{\"phase\":\"Progressing\",\"currentStepIndex\":2,"
	    "\"canary\":{\"weights\":{\"canary\":{\"weight\":40},\"stable\":{\"weight\":60}}}}";
	expect_argo_status(ro("{\"strategy\":{\"canary\":{\"canaryService\":\"c\","
	    "\"stableService\":\"s\",\"steps\":[{\"setWeight\":20},{\"pause\":{}},"
	    "{\"setWeight\":60},{\"pause\":{}}]}}}", weights),
	    CLI_ARGO_WAIT, "Progressing (step 2/4, weight 40%)\n");
	expect_argo_status(ro(NULL, weights), CLI_ARGO_WAIT,
	    "Progressing (step 2/4, weight 60%)\n");
	/* blue-green has no steps */
	expect_argo_status(bluegreen("{\"phase\":\"Paused\",\"message\":\"BlueGreenPause\","
	    "\"pauseConditions\":[{\"reason\":\"BlueGreenPause\"}]}"),
	    CLI_ARGO_WAIT, "Paused - BlueGreenPause\n");
}

static void
test_argo_status_waits_for_observed_generation(void **state)
{
	(void)state;
	const char *want = "Progressing - waiting for rollout spec update to be observed\n";
	expect_argo_status(ro(NULL, "{\"phase\":\"Healthy\",\"observedGeneration\":\"1\"}"),
	    CLI_ARGO_WAIT, want);
	expect_argo_status(ro(NULL, "{\"phase\":\"Healthy\",\"observedGeneration\":1}"),
	    CLI_ARGO_WAIT, want);
	json_t *r = ro(NULL, "{\"phase\":\"Healthy\"}");
	json_object_del(json_object_get(r, "status"), "observedGeneration");
	expect_argo_status(r, CLI_ARGO_WAIT, want);
	expect_argo_status(ro(NULL, "{\"phase\":\"Healthy\",\"observedGeneration\":2}"),
	    CLI_ARGO_DONE, "Healthy\n");
}

static void
test_argo_step_and_set_weight(void **state)
{
	(void)state;
	static const struct { const char *status; int64_t step, weight; } cases[] = {
		{ "{}", 0, 20 },
		{ "{\"currentStepIndex\":0}", 0, 20 },
		{ "{\"currentStepIndex\":1}", 1, 20 },	/* pause: the last setWeight */
		{ "{\"currentStepIndex\":2}", 2, 60 },
		{ "{\"currentStepIndex\":3}", 3, 60 },
		{ "{\"currentStepIndex\":4}", 4, 100 },	/* past the last step */
		{ "{\"currentStepIndex\":9}", 4, 100 },
		{ "{\"currentStepIndex\":2,\"abort\":true}", 2, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *r = ro(NULL, cases[i].status);
		int64_t idx = -1, n = -1;
		assert_true(cli_argo_step(r, &idx, &n));
		assert_int_equal(n, 4);
		assert_int_equal(idx, cases[i].step);
		assert_int_equal(cli_argo_set_weight(r), cases[i].weight);
		assert_string_equal(cli_argo_strategy(r), "Canary");
		json_decref(r);
	}
	json_t *nosteps = ro("{\"strategy\":{\"canary\":{}}}", NULL);
	assert_int_equal(cli_argo_set_weight(nosteps), 100);
	json_decref(nosteps);
	json_t *bg = bluegreen(NULL);
	int64_t idx, n;
	assert_false(cli_argo_step(bg, &idx, &n));
	assert_int_equal(cli_argo_set_weight(bg), -1);
	assert_string_equal(cli_argo_strategy(bg), "BlueGreen");
	json_decref(bg);
}

/* Runs cmd on r; checks the return, the spec and status patches (JSON
 * text, NULL = none) or the message. */
static void
expect_patches(const char *cmd, json_t *r, int want_rc, const char *want_spec,
    const char *want_status, const char *want_msg)
{
	json_t *spec = (json_t *)1, *status = (json_t *)1;
	char *msg = (char *)1;
	assert_int_equal(cli_argo_patches(cmd, r, &spec, &status, &msg), want_rc);
	if (want_spec) {
		json_t *w = js(want_spec);
		assert_non_null(spec);
		assert_true(json_equal(spec, w));
		json_decref(w);
	} else {
		assert_null(spec);
	}
	if (want_status) {
		json_t *w = js(want_status);
		assert_non_null(status);
		if (!json_equal(status, w))
			fail_msg("%s: status patch %s", cmd, json_dumps(status, JSON_COMPACT));
		json_decref(w);
	} else {
		assert_null(status);
	}
	if (want_msg)
		assert_string_equal(msg, want_msg);
	else
		assert_null(msg);
	json_decref(spec);
	json_decref(status);
	free(msg);
	json_decref(r);
}

#define PAUSED_AT_STEP "{\"phase\":\"Paused\",\"currentStepIndex\":1,\"pauseConditions\":" \
	"[{\"reason\":\"CanaryPauseStep\",\"startTime\":\"2026-12-03T06:00:00Z\"}]," \
	"\"currentPodHash\":\"new\",\"stableRS\":\"old\"}"
#define IN_PROGRESS "{\"phase\":\"Progressing\",\"currentStepIndex\":2," \
	"\"currentPodHash\":\"new\",\"stableRS\":\"old\"}"
#define HEALTHY "{\"phase\":\"Healthy\",\"currentStepIndex\":4," \
	"\"currentPodHash\":\"new\",\"stableRS\":\"new\"}"
#define ABORTED "{\"phase\":\"Degraded\",\"abort\":true,\"currentStepIndex\":2," \
	"\"currentPodHash\":\"new\",\"stableRS\":\"old\"}"

static void
test_argo_promote(void **state)
{
	(void)state;
	/* paused at a pause step: clear the pause conditions */
	expect_patches("promote", ro(NULL, PAUSED_AT_STEP), 0, NULL,
	    "{\"pauseConditions\":null}", NULL);
	/* paused at a step and by the user: both */
	expect_patches("promote", ro("{\"paused\":true}", PAUSED_AT_STEP), 0,
	    "{\"paused\":false}", "{\"pauseConditions\":null}", NULL);
	/* only paused by the user: unpause, no step skipped */
	expect_patches("promote", ro("{\"paused\":true}", IN_PROGRESS), 0,
	    "{\"paused\":false}", NULL, NULL);
	/* not paused: skip the current step */
	expect_patches("promote", ro(NULL, IN_PROGRESS), 0, NULL,
	    "{\"currentStepIndex\":3}", NULL);
	expect_patches("promote", ro(NULL, "{\"phase\":\"Progressing\"}"), 0, NULL,
	    "{\"currentStepIndex\":1}", NULL);
	expect_patches("promote", ro(NULL, HEALTHY), -EINVAL, NULL, NULL,
	    "rollout/web has no canary step left to skip (at step 4/4); use 'promote --full' "
	    "to skip analysis and pauses too");
	expect_patches("promote", ro(NULL, ABORTED), -EINVAL, NULL, NULL,
	    "rollout/web is aborted; run 'v6 rollout retry rollout/web' to try the update "
	    "again, or change spec.template back to the stable version");
	/* blue-green waiting for promotion, and not waiting */
	expect_patches("promote", bluegreen("{\"phase\":\"Paused\",\"pauseConditions\":"
	    "[{\"reason\":\"BlueGreenPause\"}]}"), 0, NULL, "{\"pauseConditions\":null}", NULL);
	expect_patches("promote", bluegreen("{\"phase\":\"Healthy\"}"), -EINVAL, NULL, NULL,
	    "rollout/web is not paused: a blue-green rollout is promoted while it waits for "
	    "promotion; use 'promote --full' to switch over now");
}

static void
test_argo_promote_full(void **state)
{
	(void)state;
	expect_patches("promote-full", ro(NULL, PAUSED_AT_STEP), 0, NULL,
	    "{\"promoteFull\":true}", NULL);
	expect_patches("promote-full", ro("{\"paused\":true}", IN_PROGRESS), 0,
	    "{\"paused\":false}", "{\"promoteFull\":true}", NULL);
	expect_patches("promote-full", ro(NULL, HEALTHY), 1, NULL, NULL,
	    "rollout/web is already fully promoted (the stable revision is the current one)");
	expect_patches("promote-full", ro(NULL, ABORTED), -EINVAL, NULL, NULL,
	    "rollout/web is aborted; run 'v6 rollout retry rollout/web' to try the update "
	    "again, or change spec.template back to the stable version");
}

static void
test_argo_abort_and_retry(void **state)
{
	(void)state;
	expect_patches("abort", ro(NULL, PAUSED_AT_STEP), 0, NULL, "{\"abort\":true}", NULL);
	expect_patches("abort", ro(NULL, IN_PROGRESS), 0, NULL, "{\"abort\":true}", NULL);
	expect_patches("abort", ro(NULL, ABORTED), -EINVAL, NULL, NULL,
	    "rollout/web is already aborted; use 'v6 rollout retry rollout/web' to try the "
	    "update again");
	expect_patches("abort", ro(NULL, HEALTHY), -EINVAL, NULL, NULL,
	    "rollout/web has no update in progress (its stable revision is the current one); "
	    "nothing to abort");
	expect_patches("retry", ro(NULL, ABORTED), 0, NULL, "{\"abort\":false}", NULL);
	expect_patches("retry", ro(NULL, IN_PROGRESS), -EINVAL, NULL, NULL,
	    "rollout/web is not aborted; retry restarts an aborted update (to move on, use "
	    "'v6 rollout promote rollout/web')");
}

static void
test_argo_pause_and_resume(void **state)
{
	(void)state;
	expect_patches("pause", ro(NULL, IN_PROGRESS), 0, "{\"paused\":true}", NULL, NULL);
	expect_patches("pause", ro("{\"paused\":true}", IN_PROGRESS), -EINVAL, NULL, NULL,
	    "rollout/web is already paused");
	expect_patches("resume", ro("{\"paused\":true}", IN_PROGRESS), 0,
	    "{\"paused\":false}", NULL, NULL);
	expect_patches("resume", ro("{\"paused\":true}", PAUSED_AT_STEP), 0,
	    "{\"paused\":false}", "{\"pauseConditions\":null}", NULL);
	expect_patches("resume", ro(NULL, PAUSED_AT_STEP), 0, NULL,
	    "{\"pauseConditions\":null}", NULL);
	expect_patches("resume", ro(NULL, IN_PROGRESS), -EINVAL, NULL, NULL,
	    "rollout/web is not paused; use 'v6 rollout promote rollout/web' to skip the "
	    "current step");
	expect_patches("restart", ro(NULL, IN_PROGRESS), -EINVAL, NULL, NULL,
	    "unknown rollout command \"restart\"");
}

/* A ReplicaSet of rollout "web" (uid ro-1): revision, hash, image,
 * replicas desired / ready. */
static json_t *
ro_rs(const char *owner_uid, int rev, const char *hash, const char *image, int desired,
    int ready)
{
	char revs[16];
	snprintf(revs, sizeof revs, "%d", rev);
	char *name = xasprintf("web-%s", hash);
	json_t *r = json_pack("{s:{s:s, s:s, s:{s:s}, s:{s:s}, s:[{s:s, s:s, s:s, s:b}]},"
	    " s:{s:i, s:{s:{s:{s:s, s:s}}, s:{s:[{s:s, s:s}]}}}, s:{s:i}}",
	    "metadata", "name", name, "namespace", "default",
	    "labels", "rollouts-pod-template-hash", hash,
	    "annotations", "rollout.argoproj.io/revision", revs,
	    "ownerReferences", "kind", "Rollout", "name", "web", "uid", owner_uid,
	    "controller", true,
	    "spec", "replicas", desired, "template", "metadata", "labels", "app", "web",
	    "rollouts-pod-template-hash", hash, "spec", "containers", "name", "web",
	    "image", image,
	    "status", "readyReplicas", ready);
	free(name);
	return r;
}

static json_t *
pod(const char *name, const char *hash, bool ready)
{
	return json_pack("{s:{s:s, s:{s:s}}, s:{s:[{s:s}]}, s:{s:s, s:[{s:b}]}}",
	    "metadata", "name", name, "labels", "rollouts-pod-template-hash", hash,
	    "spec", "containers", "name", "web",
	    "status", "phase", "Running", "containerStatuses", "ready", ready);
}

static void
test_argo_history_and_undo(void **state)
{
	(void)state;
	json_t *r = ro(NULL, IN_PROGRESS);
	json_t *items = json_array();
	json_array_append_new(items, ro_rs("ro-1", 2, "new", "app:2", 1, 1));
	json_array_append_new(items, ro_rs("ro-1", 1, "old", "app:1", 4, 4));
	json_array_append_new(items, ro_rs("other", 7, "zzz", "x:1", 1, 1));
	json_t *owned = cli_owned_replicasets(r, items);
	assert_int_equal(json_array_size(owned), 2);
	assert_int_equal(cli_revision_of(json_array_get(owned, 0)), 1);
	char *h = cli_argo_history(owned);
	assert_string_equal(h, "REVISION  HASH          CHANGE-CAUSE\n"
	    "1         old           <none>\n"
	    "2         new           <none>\n\n");
	free(h);
	h = cli_argo_history(json_array_get(items, 99));
	assert_string_equal(h, "No rollout history found.\n");
	free(h);

	/* undo goes to revision 1 and drops Argo's hash label */
	char *err = NULL;
	const json_t *target = cli_undo_target(r, owned, 0, &err);
	assert_non_null(target);
	assert_string_equal(obj_name(target), "web-old");
	json_object_set_new(json_object_get(r, "spec"), "template", json_pack(
	    "{s:{s:{s:s}}, s:{s:[{s:s, s:s}]}}", "metadata", "labels", "app", "web",
	    "spec", "containers", "name", "web", "image", "app:2"));
	assert_false(cli_template_matches(r, target));
	assert_true(cli_template_matches(r, json_array_get(owned, 1)));
	json_t *patch = cli_undo_patch(r, target);
	json_t *out = patch_json(r, patch, &err);
	assert_non_null(out);
	json_t *c = json_array_get(obj_get_path(out, "spec.template.spec.containers"), 0);
	assert_string_equal(json_string_value(json_object_get(c, "image")), "app:1");
	assert_null(obj_get_path(out, "spec.template.metadata.labels.rollouts-pod-template-hash"));
	assert_null(json_object_get(obj_get_path(out, "metadata.annotations"),
	    "rollout.argoproj.io/revision"));
	json_decref(out);
	json_decref(patch);
	json_t *one = json_array();
	json_array_append(one, json_array_get(owned, 1));
	assert_null(cli_undo_target(r, one, 0, &err));
	assert_string_equal(err, "no rollout history found for rollout \"web\"");
	free(err);
	json_decref(one);
	json_decref(owned);
	json_decref(items);
	json_decref(r);
}

/* Asserts that needle is in hay, with the whole hay in the failure. */
static void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("\"%s\" not in:\n%s", needle, hay);
}

static json_t *
analysis_run(const char *name, const char *hash, const char *owner_uid, const char *created)
{
	return json_pack("{s:{s:s, s:s, s:{s:s}, s:[{s:s, s:s, s:b}]}, s:{s:s, s:[{s:s, s:s,"
	    " s:i, s:i, s:i, s:[{s:s, s:s}, {s:s, s:s}]}, {s:s, s:s, s:i, s:i, s:i,"
	    " s:[{s:s, s:s}]}]}}",
	    "metadata", "name", name, "creationTimestamp", created,
	    "labels", "rollouts-pod-template-hash", hash,
	    "ownerReferences", "kind", "Rollout", "uid", owner_uid, "controller", true,
	    "status", "phase", "Running", "metricResults",
	    "name", "success-rate", "phase", "Running", "count", 2, "successful", 2, "failed", 0,
	    "measurements", "phase", "Successful", "value", "0.9", "phase", "Successful",
	    "value", "[0.985]",
	    "name", "latency-p99", "phase", "Failed", "count", 1, "successful", 0, "failed", 1,
	    "measurements", "phase", "Failed", "value", "0.412");
}

static void
test_argo_view_canary(void **state)
{
	(void)state;
	json_t *r = ro(NULL, "{\"phase\":\"Paused\",\"message\":\"CanaryPauseStep\","
	    "\"currentStepIndex\":1,\"currentPodHash\":\"new\",\"stableRS\":\"old\","
	    "\"replicas\":6,\"updatedReplicas\":1,\"readyReplicas\":6,\"availableReplicas\":6,"
	    "\"pauseConditions\":[{\"reason\":\"CanaryPauseStep\"}]}");
	json_t *rsets = json_array(), *pods = json_array(), *runs = json_array();
	json_array_append_new(rsets, ro_rs("ro-1", 3, "new", "app:3", 1, 1));
	json_array_append_new(rsets, ro_rs("ro-1", 2, "old", "app:2", 5, 4));
	json_array_append_new(rsets, ro_rs("ro-1", 1, "older", "app:1", 0, 0));
	json_array_append_new(rsets, ro_rs("other", 1, "foreign", "x:1", 3, 3));
	json_array_append_new(pods, pod("web-new-a", "new", true));
	json_array_append_new(pods, pod("web-old-b", "old", false));
	json_array_append_new(pods, pod("web-foreign-c", "foreign", true));
	json_array_append_new(runs, analysis_run("web-new-3", "new", "ro-1",
	    "2026-12-03T06:10:00Z"));
	json_array_append_new(runs, analysis_run("web-old-2", "old", "ro-1",
	    "2026-12-03T06:00:00Z"));
	char *v = cli_rwatch_view(r, rsets, pods, runs);
	assert_contains(v, "Status:       Paused - CanaryPauseStep (step 1/4, weight 20%)\n");
	assert_contains(v, "Strategy:     Canary\n  Step:       1/4\n  SetWeight:  20\n");
	assert_contains(v, "Weights:      stable 80%, canary 20% (by replicas)\n");
	assert_contains(v, "  ok 0  setWeight: 20%\n  => 1  pause (until promoted)\n"
	    "     2  setWeight: 60%\n     3  analysis: success-rate\n");
	assert_contains(v, "Replicas:     desired 5, current 6, updated 1, ready 6, available 6\n");
	assert_contains(v, "  3         new           canary          1        1      app:3\n"
	    "      web-new-a  1/1  Running\n"
	    "  2         old           stable          5        4      app:2\n"
	    "      web-old-b  0/1  Running\n"
	    "  (1 older revision scaled to zero)\n");
	assert_null(strstr(v, "foreign"));
	assert_contains(v, "Analysis:\n  web-new-3  Running\n"
	    "    success-rate  Running  success rate 98.5% (Successful)  measured 2: 2 "
	    "successful, 0 failed, 0 inconclusive, 0 error\n"
	    "    latency-p99  Failed  P99 0.412 (Failed)  measured 1: 0 successful, 1 failed");
	assert_contains(v, "  (1 run of older revisions)\n");
	free(v);
	/* the controller's weights, when it reports them for a routed canary */
	json_object_set_new(json_object_get(r, "status"), "canary", js("{\"weights\":"
	    "{\"canary\":{\"weight\":17},\"stable\":{\"weight\":83}}}"));
	v = cli_rwatch_view(r, rsets, pods, NULL);
	assert_contains(v, "Weights:      stable 80%, canary 20% (by replicas)\n");
	free(v);
	json_object_set_new(obj_get_path(r, "spec.strategy.canary"), "canaryService",
	    json_string("web-canary"));
	v = cli_rwatch_view(r, rsets, pods, NULL);
	assert_contains(v, "  ActualWeight: 17\nWeights:      stable 83%, canary 17%\n");
	assert_null(strstr(v, "Analysis:"));
	free(v);
	json_decref(rsets);
	json_decref(pods);
	json_decref(runs);
	json_decref(r);
}

static void
test_argo_view_bluegreen(void **state)
{
	(void)state;
	json_t *r = bluegreen("{\"phase\":\"Paused\",\"message\":\"BlueGreenPause\","
	    "\"currentPodHash\":\"new\",\"stableRS\":\"old\",\"blueGreen\":"
	    "{\"activeSelector\":\"old\",\"previewSelector\":\"new\"}}");
	json_t *rsets = json_array(), *pods = json_array();
	json_array_append_new(rsets, ro_rs("ro-1", 2, "new", "app:2", 5, 5));
	json_array_append_new(rsets, ro_rs("ro-1", 1, "old", "app:1", 5, 5));
	char *v = cli_rwatch_view(r, rsets, pods, NULL);
	assert_contains(v, "Status:       Paused - BlueGreenPause\n");
	assert_contains(v, "  ActiveService: web (old)\n  PreviewService: web-preview (new)\n"
	    "  AutoPromotion: false (waits for 'v6 rollout promote')\n");
	assert_contains(v, "  2         new           preview ");
	assert_contains(v, "  1         old           stable,active ");
	assert_null(strstr(v, "Steps:"));
	free(v);
	json_decref(rsets);
	json_decref(pods);
	json_decref(r);
}

static void
test_argo_analysisrun_description(void **state)
{
	(void)state;
	json_t *run = analysis_run("web-new-3", "new", "ro-1", "2026-12-03T06:10:00Z");
	json_t *m0 = json_array_get(obj_get_path(run, "status.metricResults"), 0);
	json_t *ms = json_array_get(json_object_get(m0, "measurements"), 0);
	json_object_set_new(ms, "startedAt", json_string("2026-12-03T06:10:00Z"));
	char *d = cli_rwatch_analysisrun(run);
	assert_contains(d, "Status:       Running\nMetrics:\n  success-rate  Running  success "
	    "rate 98.5% (Successful)");
	assert_contains(d, "    2026-12-03T06:10:00Z  -                     Successful    "
	    "0.9\n    -                     -                     Successful    [0.985]\n");
	assert_contains(d, "  latency-p99  Failed  P99 0.412 (Failed)");
	free(d);
	json_object_set_new(json_object_get(run, "status"), "metricResults", json_array());
	d = cli_rwatch_analysisrun(run);
	assert_contains(d, "Metrics:\n  <none yet>\n");
	free(d);
	json_decref(run);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_spec_update_not_observed),
		cmocka_unit_test(test_status_new_replicas_updated),
		cmocka_unit_test(test_status_old_replicas_pending_termination),
		cmocka_unit_test(test_status_updated_replicas_available),
		cmocka_unit_test(test_status_successfully_rolled_out),
		cmocka_unit_test(test_status_progress_deadline_exceeded),
		cmocka_unit_test(test_status_revision),
		cmocka_unit_test(test_owned_replicasets_sorted_by_revision),
		cmocka_unit_test(test_undo_target_previous_and_explicit),
		cmocka_unit_test(test_template_matches_ignores_hash_label),
		cmocka_unit_test(test_undo_patch_restores_template_and_annotations),
		cmocka_unit_test(test_quantity_scaled),
		cmocka_unit_test(test_quantity_parse),
		cmocka_unit_test(test_format_cpu_and_memory),
		cmocka_unit_test(test_argo_status_line_per_phase),
		cmocka_unit_test(test_argo_status_waits_for_observed_generation),
		cmocka_unit_test(test_argo_step_and_set_weight),
		cmocka_unit_test(test_argo_promote),
		cmocka_unit_test(test_argo_promote_full),
		cmocka_unit_test(test_argo_abort_and_retry),
		cmocka_unit_test(test_argo_pause_and_resume),
		cmocka_unit_test(test_argo_history_and_undo),
		cmocka_unit_test(test_argo_view_canary),
		cmocka_unit_test(test_argo_view_bluegreen),
		cmocka_unit_test(test_argo_analysisrun_description),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
