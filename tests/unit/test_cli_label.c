/* test_cli_label.c — the pure parts of `v6 label` / `v6 annotate`: how the
 * arguments split into resources and KEY=VALUE / KEY- changes (kubectl's
 * rules and messages), the merge patch made of a change against an object
 * with --overwrite's guard, and the label key / value checks the server
 * answers with (Kubernetes' lengths and character sets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int
parse(bool labels, const char **args, size_t n, size_t *nres, struct cli_meta_edit *e,
    char **err)
{
	return cli_meta_edit_parse(labels, args, n, nres, e, err);
}

static void
expect_parse_error(bool labels, const char **args, size_t n, const char *msg)
{
	struct cli_meta_edit e;
	size_t nres;
	char *err;
	assert_int_equal(parse(labels, args, n, &nres, &e, &err), -EINVAL);
	assert_string_equal(err, msg);
	free(err);
}

static void
test_parse_splits_resources_and_changes(void **state)
{
	(void)state;
	const char *args[] = { "pods", "web", "db", "tier=front", "env-", "empty=" };
	struct cli_meta_edit e;
	size_t nres;
	char *err;
	assert_int_equal(parse(true, args, 6, &nres, &e, &err), 0);
	assert_int_equal(nres, 3);
	assert_string_equal(json_string_value(json_object_get(e.set, "tier")), "front");
	assert_string_equal(json_string_value(json_object_get(e.set, "empty")), "");
	assert_int_equal(json_array_size(e.remove), 1);
	assert_string_equal(json_string_value(json_array_get(e.remove, 0)), "env");
	cli_meta_edit_free(&e);

	/* an annotation value may hold '=' */
	const char *ann[] = { "deploy/web", "note=a=b" };
	assert_int_equal(parse(false, ann, 2, &nres, &e, &err), 0);
	assert_int_equal(nres, 1);
	assert_string_equal(json_string_value(json_object_get(e.set, "note")), "a=b");
	cli_meta_edit_free(&e);
}

static void
test_parse_errors_are_kubectls(void **state)
{
	(void)state;
	const char *none[] = { "pod/web" };
	expect_parse_error(true, none, 1, "at least one label update is required");
	expect_parse_error(false, none, 1, "at least one annotation update is required");
	const char *late[] = { "pod/web", "a=1", "pod/db" };
	expect_parse_error(true, late, 3, "all resources must be specified before label "
	    "changes: pod/db");
	const char *both[] = { "pod/web", "a=1", "a-" };
	expect_parse_error(true, both, 3, "can not both modify and remove a label in the "
	    "same command");
	expect_parse_error(false, both, 3, "can not both modify and remove the following "
	    "annotation(s) in the same command: a");
	const char *eq2[] = { "pod/web", "a=b=c" };
	expect_parse_error(true, eq2, 2, "invalid label spec: a=b=c");
	/* "-" alone and "=x" are no changes: resources, so no update given */
	const char *odd[] = { "pod/web", "-", "=x" };
	expect_parse_error(true, odd, 3, "at least one label update is required");
}

static json_t *
object(const char *labels_json)
{
	json_error_t je;
	json_t *l = json_loads(labels_json, 0, &je);
	assert_non_null(l);
	return json_pack("{s:{s:s, s:o}}", "metadata", "name", "web", "labels", l);
}

static int
patch_of(const char **changes, size_t n, const char *labels, bool overwrite, char **out,
    char **err)
{
	struct cli_meta_edit e;
	size_t nres;
	const char *args[8] = { "pod/web" };
	memcpy(args + 1, changes, n * sizeof *changes);
	assert_int_equal(parse(true, args, n + 1, &nres, &e, err), 0);
	json_t *obj = object(labels), *patch = NULL;
	int rc = cli_meta_edit_patch(&e, true, obj, overwrite, &patch, err);
	*out = patch ? json_dumps(patch, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(patch);
	json_decref(obj);
	cli_meta_edit_free(&e);
	return rc;
}

static void
test_patch_holds_only_the_changes(void **state)
{
	(void)state;
	char *p, *err;
	const char *set[] = { "a=1", "b=2", "gone-", "c-" };
	assert_int_equal(patch_of(set, 4, "{\"a\":\"1\",\"c\":\"3\"}", false, &p, &err), 1);
	assert_string_equal(p, "{\"metadata\":{\"labels\":{\"b\":\"2\",\"c\":null}}}");
	free(p);
	const char *same[] = { "a=1", "gone-" };
	assert_int_equal(patch_of(same, 2, "{\"a\":\"1\"}", false, &p, &err), 0);
	assert_string_equal(p, "{\"metadata\":{\"labels\":{}}}");
	free(p);
	const char *rm[] = { "a-" };
	assert_int_equal(patch_of(rm, 1, "{\"a\":\"1\"}", false, &p, &err), 2);
	assert_string_equal(p, "{\"metadata\":{\"labels\":{\"a\":null}}}");
	free(p);
}

static void
test_overwrite_guards_a_changed_value(void **state)
{
	(void)state;
	char *p, *err;
	const char *chg[] = { "a=2", "b=3" };
	assert_int_equal(patch_of(chg, 2, "{\"a\":\"1\",\"b\":\"1\"}", false, &p, &err),
	    -EINVAL);
	assert_null(p);
	assert_string_equal(err, "'a' already has a value (1), and --overwrite is false\n"
	    "'b' already has a value (1), and --overwrite is false");
	free(err);
	assert_int_equal(patch_of(chg, 2, "{\"a\":\"1\"}", true, &p, &err), 1);
	assert_string_equal(p, "{\"metadata\":{\"labels\":{\"a\":\"2\",\"b\":\"3\"}}}");
	free(p);

	/* annotate: one line; kubernetes.io/change-cause is always rewritable */
	struct cli_meta_edit e;
	size_t nres;
	const char *args[] = { "deploy/web", "kubernetes.io/change-cause=new", "o=2" };
	assert_int_equal(parse(false, args, 3, &nres, &e, &err), 0);
	json_t *obj = json_pack("{s:{s:{s:s, s:s}}}", "metadata", "annotations",
	    "kubernetes.io/change-cause", "old", "o", "1");
	json_t *patch;
	assert_int_equal(cli_meta_edit_patch(&e, false, obj, false, &patch, &err), -EINVAL);
	assert_string_equal(err, "--overwrite is false but found the following declared "
	    "annotation(s): 'o' already has a value (1)");
	free(err);
	json_array_clear(e.remove);
	json_object_del(e.set, "o");
	assert_int_equal(cli_meta_edit_patch(&e, false, obj, false, &patch, &err), 1);
	json_decref(patch);
	json_decref(obj);
	cli_meta_edit_free(&e);
}

/* What the server checks each key and value against (obj_schema.c). */
static void
test_label_key_and_value_limits(void **state)
{
	(void)state;
	char key[400], name63[64];
	memset(name63, 'n', 63);
	name63[63] = '\0';
	assert_null(label_check_key(name63));
	snprintf(key, sizeof key, "%sx", name63);
	assert_string_equal(label_check_key(key), "name part must be no more than 63 characters");
	memset(key, 'a', 253);
	snprintf(key + 253, sizeof key - 253, "/x");
	key[100] = '.';
	assert_null(label_check_key(key));
	memset(key, 'a', 254);
	snprintf(key + 254, sizeof key - 254, "/x");
	assert_string_equal(label_check_key(key),
	    "prefix part must be no more than 253 characters");
	assert_non_null(label_check_key("Example.com/x"));	/* the prefix is lowercase */
	assert_non_null(label_check_key("/x"));
	assert_non_null(label_check_key("a/"));
	assert_non_null(label_check_key("-a"));
	assert_non_null(label_check_key("a b"));
	assert_null(label_check_key("A_b.c-9"));
	assert_null(label_check_value(""));
	assert_null(label_check_value(name63));
	snprintf(key, sizeof key, "%sx", name63);
	assert_string_equal(label_check_value(key), "must be no more than 63 characters");
	assert_non_null(label_check_value("a/b"));
	assert_non_null(label_check_value("_a"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_splits_resources_and_changes),
		cmocka_unit_test(test_parse_errors_are_kubectls),
		cmocka_unit_test(test_patch_holds_only_the_changes),
		cmocka_unit_test(test_overwrite_guards_a_changed_value),
		cmocka_unit_test(test_label_key_and_value_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
