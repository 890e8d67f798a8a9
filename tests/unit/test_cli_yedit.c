/* Unit tests of the in-place YAML edits of `v6 promote` through git
 * (cli_yedit.c): values set, keys and keyed list items added and removed,
 * in block and flow style, with every comment and the key order kept. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gitops.h"

static const char manifest[] =
	"# the shop's web tier\n"
	"apiVersion: apps/v1\n"
	"kind: Deployment\n"
	"metadata:\n"
	"  name: web   # keep me\n"
	"spec:\n"
	"  template:\n"
	"    metadata:\n"
	"      labels: {app: web}\n"
	"    spec:\n"
	"      containers:\n"
	"      - name: web\n"
	"        image: r/web:1.0   # bumped by promotions\n"
	"        command: [\"sleep\", \"3600\"]\n"
	"        env:\n"
	"        - name: A   # first\n"
	"          value: \"1\"\n"
	"        - name: B\n"
	"          value: two\n"
	"      # end of containers\n";

/* text after op, op given as (path JSON, value JSON or NULL for delete). */
static char *
edited(const char *text, size_t doc, const char *path, const char *value)
{
	char *t = strdup(text);
	json_t *p = json_loads(path, 0, NULL);
	json_t *v = value ? json_loads(value, JSON_DECODE_ANY, NULL) : NULL;
	assert_non_null(p);
	int rc = v ? yedit_set(&t, doc, p, v) : yedit_delete(&t, doc, p);
	assert_int_equal(rc, 0);
	json_decref(p);
	json_decref(v);
	return t;
}

/* text with the line at `at` replaced by `with` (several lines allowed). */
static char *
expect(const char *text, const char *at, const char *with)
{
	const char *p = strstr(text, at);
	assert_non_null(p);
	size_t n = strlen(text) + strlen(with) + 1;
	char *out = malloc(n);
	snprintf(out, n, "%.*s%s%s", (int)(p - text), text, with, p + strlen(at));
	return out;
}

static void
check(const char *path, const char *value, const char *at, const char *with)
{
	char *got = edited(manifest, 0, path, value), *want = expect(manifest, at, with);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static void
test_scalar_keeps_its_comment(void **state)
{
	(void)state;
	check("[\"spec\",\"template\",\"spec\",\"containers\",{\"name\":\"web\"},\"image\"]",
	    "\"r/web@sha256:ab\"", "r/web:1.0   #", "r/web@sha256:ab   #");
	check("[\"spec\",\"template\",\"spec\",\"containers\",{\"name\":\"web\"},\"env\","
	    "{\"name\":\"A\"},\"value\"]", "\"2\"", "\"1\"", "\"2\"");
}

static void
test_keyed_items_added_and_removed(void **state)
{
	(void)state;
	check("[\"spec\",\"template\",\"spec\",\"containers\",{\"name\":\"web\"},\"env\","
	    "{\"name\":\"C\"}]", "{\"name\":\"C\",\"value\":\"x y\"}",
	    "          value: two\n",
	    "          value: two\n        - name: C\n          value: x y\n");
	check("[\"spec\",\"template\",\"spec\",\"containers\",{\"name\":\"web\"},\"env\","
	    "{\"name\":\"A\"}]", NULL, "        - name: A   # first\n          value: \"1\"\n", "");
	check("[\"spec\",\"template\",\"spec\",\"containers\",{\"name\":\"web\"},\"env\","
	    "{\"name\":\"B\"}]", NULL, "        - name: B\n          value: two\n", "");
	/* the first key of an item: the next one takes its place after "- " */
	check("[\"spec\",\"template\",\"spec\",\"containers\",{\"name\":\"web\"},\"env\","
	    "{\"name\":\"A\"},\"name\"]", NULL, "name: A   # first\n          value",
	    "value");
	/* a value under a missing item makes the item */
	check("[\"spec\",\"template\",\"spec\",\"containers\",{\"name\":\"web\"},\"env\","
	    "{\"name\":\"D\"},\"value\"]", "\"4\"", "          value: two\n",
	    "          value: two\n        - name: D\n          value: \"4\"\n");
}

static void
test_keys_added_in_block_and_flow(void **state)
{
	(void)state;
	check("[\"spec\",\"template\",\"spec\",\"containers\",{\"name\":\"web\"},\"resources\"]",
	    "{\"limits\":{\"memory\":\"64Mi\"}}", "          value: two\n",
	    "          value: two\n        resources:\n          limits:\n"
	    "            memory: 64Mi\n");
	check("[\"spec\",\"template\",\"metadata\",\"labels\",\"tier\"]", "\"web\"",
	    "{app: web}", "{\"app\": \"web\", \"tier\": \"web\"}");
	check("[\"spec\",\"template\",\"spec\",\"containers\",{\"name\":\"web\"},\"command\"]",
	    "[\"sleep\",\"7200\"]", "[\"sleep\", \"3600\"]", "[\"sleep\", \"7200\"]");
	check("[\"spec\",\"template\",\"spec\",\"containers\",{\"name\":\"web\"},\"command\"]",
	    NULL, "        command: [\"sleep\", \"3600\"]\n", "");
}

static void
test_kustomization_lists(void **state)
{
	(void)state;
	static const char k[] =
		"# prod overlay\n"
		"resources:\n"
		"- ../../base   # shared\n"
		"configMapGenerator:\n"
		"- name: web-config\n"
		"  literals:\n"
		"  - GREETING=hello   # said on /\n"
		"  - COLOR=blue\n";
	char *t = strdup(k);
	json_t *p = json_pack("[s]", "patches"), *item = json_pack("{s:s}", "path", "p.yaml");
	assert_int_equal(yedit_append(&t, 0, p, item), 0);
	json_decref(p);
	json_decref(item);
	char *want = expect(k, "  - COLOR=blue\n", "  - COLOR=blue\npatches:\n- path: p.yaml\n");
	assert_string_equal(t, want);
	free(want);
	p = json_pack("[s,i,s,i]", "configMapGenerator", 0, "literals", 0);
	json_t *v = json_string("GREETING=hi there");
	assert_int_equal(yedit_set(&t, 0, p, v), 0);
	json_decref(v);
	json_decref(p);
	assert_non_null(strstr(t, "  - GREETING=hi there   # said on /\n"));
	json_t *j = yedit_json(t, 0);
	assert_string_equal(json_string_value(json_array_get(obj_get_path(json_array_get(
	    json_object_get(j, "configMapGenerator"), 0), "literals"), 0)), "GREETING=hi there");
	json_decref(j);
	free(t);
}

static void
test_second_document(void **state)
{
	(void)state;
	static const char two[] = "a: 1\n---\n# b's doc\nb: 2 # two\nc: 3\n";
	char *t = edited(two, 1, "[\"b\"]", "5");
	assert_string_equal(t, "a: 1\n---\n# b's doc\nb: 5 # two\nc: 3\n");
	free(t);
	t = strdup(two);
	json_t *p = json_pack("[s]", "x");
	assert_int_equal(yedit_set(&t, 2, p, p), -ENOENT);
	json_decref(p);
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalar_keeps_its_comment),
		cmocka_unit_test(test_keyed_items_added_and_removed),
		cmocka_unit_test(test_keys_added_in_block_and_flow),
		cmocka_unit_test(test_kustomization_lists),
		cmocka_unit_test(test_second_document),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
