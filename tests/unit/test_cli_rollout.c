/* test_cli_rollout.c — the pure parts of the workload verbs: kubectl's
 * rollout status message for every state of a Deployment, the ReplicaSet
 * `rollout undo` goes back to and the patch it sends, and the quantity
 * arithmetic of `top`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

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
	assert_non_null(json_object_get(ann, CLI_LAST_APPLIED));
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
	assert_int_equal(cli_quantity_scaled(q, scale, &v), 0);
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
	assert_int_equal(cli_quantity_scaled("", 0, &v), -EINVAL);
	assert_int_equal(cli_quantity_scaled("12Xi", 0, &v), -EINVAL);
	assert_int_equal(cli_quantity_scaled("m", -3, &v), -EINVAL);
	assert_int_equal(cli_quantity_scaled("12 Mi", 0, &v), -EINVAL);
	assert_int_equal(cli_quantity_scaled("100Ei", 0, &v), -ERANGE);
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
		cmocka_unit_test(test_format_cpu_and_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
