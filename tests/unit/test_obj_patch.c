/* test_obj_patch.c — JSON merge patch (RFC 7386 appendix A), JSON patch
 * (RFC 6902 appendix A, atomicity, pointer rules) and strategic merge
 * patch on Pods and Services. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "obj.h"

static json_t *
J(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, JSON_DECODE_ANY, &e);
	if (j == NULL)
		fail_msg("bad test JSON %s: %s", s, e.text);
	return j;
}

static void
assert_json(const json_t *got, const char *want_text)
{
	json_t *want = J(want_text);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS);
		fail_msg("got %s, want %s", g ? g : "NULL", want_text);
	}
	json_decref(want);
}

typedef json_t *(*patch_fn)(const json_t *, const json_t *, char **);

/* Applies patch to doc with fn and checks the result, and that doc and
 * patch were left as they were. */
static void
check(patch_fn fn, const char *doc, const char *patch, const char *want)
{
	json_t *d = J(doc), *p = J(patch), *d0 = json_deep_copy(d), *p0 = json_deep_copy(p);
	char *err = NULL;
	json_t *got = fn(d, p, &err);

	if (got == NULL)
		fail_msg("patch %s on %s failed: %s", patch, doc, err);
	assert_json(got, want);
	assert_true(json_equal(d, d0));
	assert_true(json_equal(p, p0));
	json_decref(got);
	json_decref(d);
	json_decref(p);
	json_decref(d0);
	json_decref(p0);
}

/* Expects fn to fail with an error containing needle, doc untouched. */
static void
check_err(patch_fn fn, const char *doc, const char *patch, const char *needle)
{
	json_t *d = J(doc), *p = J(patch), *d0 = json_deep_copy(d);
	char *err = NULL;
	json_t *got = fn(d, p, &err);

	if (got != NULL) {
		char *g = json_dumps(got, JSON_ENCODE_ANY);
		fail_msg("patch %s on %s succeeded: %s", patch, doc, g);
	}
	if (err == NULL || strstr(err, needle) == NULL)
		fail_msg("patch %s: error \"%s\" lacks \"%s\"", patch, err, needle);
	assert_true(json_equal(d, d0));
	free(err);
	json_decref(d);
	json_decref(p);
	json_decref(d0);
}

/* ---- RFC 7386 ---------------------------------------------------------- */

static void
test_merge_rfc7386_appendix(void **state)
{
	static const char *const cases[][3] = {
		{ "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
		{ "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}" },
		{ "{\"a\":\"b\"}", "{\"a\":null}", "{}" },
		{ "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}" },
		{ "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
		{ "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}" },
		{ "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}" },
		{ "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}" },
		{ "[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]" },
		{ "{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]" },
		{ "{\"a\":\"foo\"}", "null", "null" },
		{ "{\"a\":\"foo\"}", "\"bar\"", "\"bar\"" },
		{ "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}" },
		{ "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}" },
		{ "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(patch_merge, cases[i][0], cases[i][1], cases[i][2]);
}

static void
test_merge_result_is_independent(void **state)
{
	json_t *d = J("{\"a\":{\"x\":1}}"), *p = J("{\"b\":{\"y\":2}}"), *got;

	(void)state;
	got = patch_merge(d, p, NULL);
	json_object_set_new(json_object_get(got, "a"), "x", json_integer(9));
	json_object_set_new(json_object_get(got, "b"), "y", json_integer(9));
	assert_json(d, "{\"a\":{\"x\":1}}");
	assert_json(p, "{\"b\":{\"y\":2}}");
	json_decref(got);
	json_decref(d);
	json_decref(p);
}

/* ---- RFC 6902 ---------------------------------------------------------- */

static void
test_json_patch_rfc6902_appendix(void **state)
{
	static const char *const cases[][3] = {
		/* A.1 adding an object member */
		{ "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
		  "{\"baz\":\"qux\",\"foo\":\"bar\"}" },
		/* A.2 adding an array element */
		{ "{\"foo\":[\"bar\",\"baz\"]}", "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
		  "{\"foo\":[\"bar\",\"qux\",\"baz\"]}" },
		/* A.3 removing an object member */
		{ "{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"remove\",\"path\":\"/baz\"}]",
		  "{\"foo\":\"bar\"}" },
		/* A.4 removing an array element */
		{ "{\"foo\":[\"bar\",\"qux\",\"baz\"]}", "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]",
		  "{\"foo\":[\"bar\",\"baz\"]}" },
		/* A.5 replacing a value */
		{ "{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
		  "{\"baz\":\"boo\",\"foo\":\"bar\"}" },
		/* A.6 moving a value */
		{ "{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
		  "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
		  "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}" },
		/* A.7 moving an array element */
		{ "{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
		  "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
		  "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}" },
		/* A.8 testing a value: success */
		{ "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
		  "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
		  "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
		  "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}" },
		/* A.10 adding a nested member object */
		{ "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
		  "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}" },
		/* A.11 ignoring unrecognized elements */
		{ "{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
		  "{\"foo\":\"bar\",\"baz\":\"qux\"}" },
		/* A.14 ~ escape ordering */
		{ "{\"/\":9,\"~1\":10}", "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]",
		  "{\"/\":9,\"~1\":10}" },
		/* A.16 adding an array value */
		{ "{\"foo\":[\"bar\"]}", "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
		  "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(patch_json, cases[i][0], cases[i][1], cases[i][2]);
}

static void
test_json_patch_rfc6902_errors(void **state)
{
	(void)state;
	/* A.9 testing a value: error */
	check_err(patch_json, "{\"baz\":\"qux\"}",
	    "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]",
	    "operation 0 (test): test failed: value at path \"/baz\" is not equal to \"bar\"");
	/* A.12 adding to a nonexistent target */
	check_err(patch_json, "{\"foo\":\"bar\"}",
	    "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]",
	    "operation 0 (add): path \"/baz/bat\": parent does not exist");
	/* A.15 comparing strings and numbers */
	check_err(patch_json, "{\"/\":9,\"~1\":10}",
	    "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]",
	    "operation 0 (test): test failed");
}

static void
test_json_patch_is_atomic(void **state)
{
	(void)state;
	/* the first two operations succeed on the copy; the third fails, and
	 * the caller's document is untouched (check_err compares it) */
	check_err(patch_json, "{\"spec\":{\"replicas\":1}}",
	    "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1},"
	    "{\"op\":\"remove\",\"path\":\"/spec/replicas\"},"
	    "{\"op\":\"replace\",\"path\":\"/spec/foo\",\"value\":2}]",
	    "operation 2 (replace): path \"/spec/foo\" does not exist");
}

static void
test_json_patch_pointer_rules(void **state)
{
	(void)state;
	check(patch_json, "{\"a\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/a/2\",\"value\":3}]",
	    "{\"a\":[1,2,3]}");
	check(patch_json, "{\"a\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/a/0\",\"value\":0}]",
	    "{\"a\":[0,1,2]}");
	check(patch_json, "{\"a/b\":1,\"m~n\":2}",
	    "[{\"op\":\"replace\",\"path\":\"/a~1b\",\"value\":3},"
	    "{\"op\":\"remove\",\"path\":\"/m~0n\"}]", "{\"a/b\":3}");
	check(patch_json, "{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":[1]}]", "[1]");
	check(patch_json, "{\"a\":1}", "[{\"op\":\"add\",\"path\":\"\",\"value\":{\"b\":2}}]",
	    "{\"b\":2}");
	check(patch_json, "{\"\":{\"x\":1}}", "[{\"op\":\"replace\",\"path\":\"/\",\"value\":0}]",
	    "{\"\":0}");
	check(patch_json, "{\"a\":{\"b\":[1]}}",
	    "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/c\"},"
	    "{\"op\":\"add\",\"path\":\"/c/b/-\",\"value\":2}]",
	    "{\"a\":{\"b\":[1]},\"c\":{\"b\":[1,2]}}");
	check(patch_json, "{\"n\":1}", "[{\"op\":\"test\",\"path\":\"/n\",\"value\":1.0}]", "{\"n\":1}");
	check(patch_json, "{\"a\":1}", "[]", "{\"a\":1}");

	check_err(patch_json, "{\"a\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/a/01\",\"value\":0}]",
	    "operation 0 (add): path \"/a/01\": array index \"01\" is invalid");
	check_err(patch_json, "{\"a\":[1,2]}", "[{\"op\":\"add\",\"path\":\"/a/3\",\"value\":0}]",
	    "array index \"3\" is invalid or out of bounds");
	check_err(patch_json, "{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/-\"}]",
	    "operation 0 (remove): path \"/a/-\" does not exist");
	check_err(patch_json, "{\"a\":[1,2]}", "[{\"op\":\"remove\",\"path\":\"/a/2\"}]",
	    "path \"/a/2\" does not exist");
	check_err(patch_json, "{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"/~2\"}]",
	    "'~' must be followed by '0' or '1'");
	check_err(patch_json, "{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"a\"}]",
	    "must be empty or start with '/'");
	check_err(patch_json, "{\"a\":{\"b\":1}}",
	    "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]", "into its own child");
	check_err(patch_json, "{\"a\":1}", "[{\"op\":\"copy\",\"from\":\"/x\",\"path\":\"/y\"}]",
	    "operation 0 (copy): from \"/x\" does not exist");
	check_err(patch_json, "{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":1},"
	    "{\"op\":\"frobnicate\",\"path\":\"/a\"}]",
	    "operation 1: \"op\" must be one of add, remove, replace, move, copy, test");
	check_err(patch_json, "{\"a\":1}", "[{\"op\":\"add\",\"path\":\"/b\"}]",
	    "operation 0 (add): missing \"value\"");
	check_err(patch_json, "{\"a\":1}", "[{\"op\":\"move\",\"path\":\"/b\"}]",
	    "missing \"from\"");
	check_err(patch_json, "{\"a\":\"s\"}", "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]",
	    "parent is not an object or array");
	check_err(patch_json, "{\"a\":1}", "{\"op\":\"add\"}", "must be an array");
}

static void
test_json_patch_add_null_value(void **state)
{
	(void)state;
	check(patch_json, "{}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":null}]", "{\"a\":null}");
}

/* ---- strategic merge patch --------------------------------------------- */

static const char two_containers[] = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\","
    "\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":["
    "{\"name\":\"web\",\"image\":\"web:1\",\"env\":[{\"name\":\"A\",\"value\":\"1\"}]},"
    "{\"name\":\"sidecar\",\"image\":\"side:1\"}]}}";

static void
test_strategic_updates_one_container_by_name(void **state)
{
	(void)state;
	check(patch_strategic, two_containers,
	    "{\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"web:2\"}]}}",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
	    "\"spec\":{\"containers\":["
	    "{\"name\":\"web\",\"image\":\"web:2\",\"env\":[{\"name\":\"A\",\"value\":\"1\"}]},"
	    "{\"name\":\"sidecar\",\"image\":\"side:1\"}]}}");
	/* the same patch as a JSON merge patch replaces the whole list */
	check(patch_merge, two_containers,
	    "{\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"web:2\"}]}}",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
	    "\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"web:2\"}]}}");
}

static void
test_strategic_adds_env_var_and_container(void **state)
{
	(void)state;
	check(patch_strategic, two_containers,
	    "{\"spec\":{\"containers\":[{\"name\":\"web\",\"env\":["
	    "{\"name\":\"B\",\"value\":\"2\"},{\"name\":\"A\",\"value\":\"one\"}]},"
	    "{\"name\":\"new\",\"image\":\"n:1\",\"args\":null}]}}",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
	    "\"spec\":{\"containers\":["
	    "{\"name\":\"web\",\"image\":\"web:1\",\"env\":[{\"name\":\"A\",\"value\":\"one\"},"
	    "{\"name\":\"B\",\"value\":\"2\"}]},"
	    "{\"name\":\"sidecar\",\"image\":\"side:1\"},"
	    "{\"name\":\"new\",\"image\":\"n:1\"}]}}");
}

static void
test_strategic_patch_delete_and_replace(void **state)
{
	(void)state;
	/* $patch: delete removes the element with that merge key */
	check(patch_strategic, two_containers,
	    "{\"spec\":{\"containers\":[{\"name\":\"sidecar\",\"$patch\":\"delete\"}]}}",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
	    "\"spec\":{\"containers\":["
	    "{\"name\":\"web\",\"image\":\"web:1\",\"env\":[{\"name\":\"A\",\"value\":\"1\"}]}]}}");
	/* $patch: replace as a list element replaces the whole list */
	check(patch_strategic, two_containers,
	    "{\"spec\":{\"containers\":[{\"$patch\":\"replace\"},{\"name\":\"only\",\"image\":\"o:1\"}]}}",
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},"
	    "\"spec\":{\"containers\":[{\"name\":\"only\",\"image\":\"o:1\"}]}}");
	/* $patch: replace on a map replaces the map instead of merging */
	check(patch_strategic, "{\"metadata\":{\"labels\":{\"a\":\"1\",\"b\":\"2\"}}}",
	    "{\"metadata\":{\"labels\":{\"$patch\":\"replace\",\"c\":\"3\"}}}",
	    "{\"metadata\":{\"labels\":{\"c\":\"3\"}}}");
	/* $patch: delete on a map removes the field */
	check(patch_strategic, "{\"metadata\":{\"labels\":{\"a\":\"1\"},\"name\":\"x\"}}",
	    "{\"metadata\":{\"labels\":{\"$patch\":\"delete\"}}}",
	    "{\"metadata\":{\"name\":\"x\"}}");
	/* $patch: merge is the default */
	check(patch_strategic, "{\"metadata\":{\"labels\":{\"a\":\"1\"}}}",
	    "{\"metadata\":{\"labels\":{\"$patch\":\"merge\",\"b\":\"2\"}}}",
	    "{\"metadata\":{\"labels\":{\"a\":\"1\",\"b\":\"2\"}}}");
}

static void
test_strategic_service_ports_by_port(void **state)
{
	(void)state;
	check(patch_strategic,
	    "{\"kind\":\"Service\",\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80,"
	    "\"targetPort\":8080},{\"name\":\"https\",\"port\":443}]}}",
	    "{\"spec\":{\"ports\":[{\"port\":80,\"targetPort\":9090},{\"port\":9000,\"name\":\"m\"}]}}",
	    "{\"kind\":\"Service\",\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80,"
	    "\"targetPort\":9090},{\"name\":\"https\",\"port\":443},{\"port\":9000,\"name\":\"m\"}]}}");
	/* container ports merge by containerPort */
	check(patch_strategic,
	    "{\"spec\":{\"containers\":[{\"name\":\"c\",\"ports\":[{\"containerPort\":80,"
	    "\"name\":\"http\"},{\"containerPort\":81}]}]}}",
	    "{\"spec\":{\"containers\":[{\"name\":\"c\",\"ports\":[{\"containerPort\":81,"
	    "\"protocol\":\"UDP\"}]}]}}",
	    "{\"spec\":{\"containers\":[{\"name\":\"c\",\"ports\":[{\"containerPort\":80,"
	    "\"name\":\"http\"},{\"containerPort\":81,\"protocol\":\"UDP\"}]}]}}");
}

static void
test_strategic_finalizers_and_primitive_lists(void **state)
{
	(void)state;
	check(patch_strategic, "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
	    "{\"metadata\":{\"finalizers\":[\"b\",\"c\"]}}",
	    "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\"]}}");
	check(patch_strategic, "{\"metadata\":{\"finalizers\":[\"a\",\"b\",\"c\"]}}",
	    "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"b\",\"x\"]}}",
	    "{\"metadata\":{\"finalizers\":[\"a\",\"c\"]}}");
	/* lists without a merge strategy replace, like args */
	check(patch_strategic, "{\"spec\":{\"containers\":[{\"name\":\"c\",\"args\":[\"1\",\"2\"]}]}}",
	    "{\"spec\":{\"containers\":[{\"name\":\"c\",\"args\":[\"3\"]}]}}",
	    "{\"spec\":{\"containers\":[{\"name\":\"c\",\"args\":[\"3\"]}]}}");
	/* finalizers outside metadata (Namespace spec) replace */
	check(patch_strategic, "{\"spec\":{\"finalizers\":[\"kubernetes\"]}}",
	    "{\"spec\":{\"finalizers\":[\"x\"]}}", "{\"spec\":{\"finalizers\":[\"x\"]}}");
}

static void
test_strategic_other_directives(void **state)
{
	(void)state;
	/* null deletes, nested maps merge */
	check(patch_strategic, "{\"metadata\":{\"labels\":{\"a\":\"1\",\"b\":\"2\"}},\"x\":1}",
	    "{\"metadata\":{\"labels\":{\"a\":null,\"c\":\"3\"}},\"x\":null}",
	    "{\"metadata\":{\"labels\":{\"b\":\"2\",\"c\":\"3\"}}}");
	/* $retainKeys keeps only the listed fields */
	check(patch_strategic,
	    "{\"spec\":{\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxSurge\":1}}}}",
	    "{\"spec\":{\"strategy\":{\"$retainKeys\":[\"type\"],\"type\":\"Recreate\"}}}",
	    "{\"spec\":{\"strategy\":{\"type\":\"Recreate\"}}}");
	/* $setElementOrder reorders by merge key */
	check(patch_strategic,
	    "{\"spec\":{\"containers\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}]}}",
	    "{\"spec\":{\"$setElementOrder/containers\":[{\"name\":\"c\"},{\"name\":\"a\"}],"
	    "\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]}}",
	    "{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"},{\"name\":\"b\"},"
	    "{\"name\":\"a\"}]}}");
	/* a new map field arrives without directives or nulls */
	check(patch_strategic, "{}",
	    "{\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":null}],\"x\":{\"y\":null,\"z\":1}}}",
	    "{\"spec\":{\"containers\":[{\"name\":\"a\"}],\"x\":{\"z\":1}}}");
	/* ownerReferences merge by uid, conditions by type */
	check(patch_strategic,
	    "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"1\",\"name\":\"a\"}]},"
	    "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"},"
	    "{\"type\":\"Scheduled\",\"status\":\"True\"}]}}",
	    "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"2\",\"name\":\"b\"}]},"
	    "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
	    "{\"metadata\":{\"ownerReferences\":[{\"uid\":\"1\",\"name\":\"a\"},"
	    "{\"uid\":\"2\",\"name\":\"b\"}]},"
	    "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"},"
	    "{\"type\":\"Scheduled\",\"status\":\"True\"}]}}");
}

static void
test_strategic_errors(void **state)
{
	(void)state;
	check_err(patch_strategic, two_containers,
	    "{\"spec\":{\"containers\":[{\"image\":\"x\"}]}}",
	    "spec.containers: item 0 does not contain the merge key \"name\"");
	check_err(patch_strategic, two_containers,
	    "{\"spec\":{\"containers\":[{\"$patch\":\"delete\"}]}}",
	    "needs the merge key \"name\"");
	check_err(patch_strategic, two_containers,
	    "{\"spec\":{\"containers\":[{\"name\":\"web\",\"$patch\":\"explode\"}]}}",
	    "unknown \"$patch\" directive \"explode\"");
	check_err(patch_strategic, two_containers,
	    "{\"metadata\":{\"labels\":{\"$patch\":\"explode\"}}}",
	    "metadata.labels: unknown \"$patch\" directive");
	check_err(patch_strategic, two_containers, "[1]", "must be a JSON object");
	check_err(patch_strategic, "{\"spec\":{\"a\":1,\"b\":2}}",
	    "{\"spec\":{\"$retainKeys\":[\"a\"],\"b\":3}}", "field \"b\" is not in the $retainKeys list");
	/* an error after part of the patch was merged leaves the input alone */
	check_err(patch_strategic, two_containers,
	    "{\"metadata\":{\"name\":\"q\"},\"spec\":{\"containers\":[{\"name\":\"web\","
	    "\"image\":\"w:3\"},{\"image\":\"x\"}]}}",
	    "item 1 does not contain");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_rfc7386_appendix),
		cmocka_unit_test(test_merge_result_is_independent),
		cmocka_unit_test(test_json_patch_rfc6902_appendix),
		cmocka_unit_test(test_json_patch_rfc6902_errors),
		cmocka_unit_test(test_json_patch_is_atomic),
		cmocka_unit_test(test_json_patch_pointer_rules),
		cmocka_unit_test(test_json_patch_add_null_value),
		cmocka_unit_test(test_strategic_updates_one_container_by_name),
		cmocka_unit_test(test_strategic_adds_env_var_and_container),
		cmocka_unit_test(test_strategic_patch_delete_and_replace),
		cmocka_unit_test(test_strategic_service_ports_by_port),
		cmocka_unit_test(test_strategic_finalizers_and_primitive_lists),
		cmocka_unit_test(test_strategic_other_directives),
		cmocka_unit_test(test_strategic_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
