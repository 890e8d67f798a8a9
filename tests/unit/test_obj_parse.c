/* test_obj_parse.c — manifests into JSON with source positions: positions
 * of keys and items, multi-document streams, List expansion, YAML typing,
 * JSON input, and the errors users see for broken YAML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"

static const char web_yaml[] =
    "apiVersion: apps/v1\n"			/* 1 */
    "kind: Deployment\n"
    "metadata:\n"
    "  name: web\n"
    "  labels:\n"				/* 5 */
    "    app.kubernetes.io/name: web\n"
    "spec:\n"
    "  replicas: 2\n"
    "  selector:\n"
    "    matchLabels:\n"			/* 10 */
    "      app.kubernetes.io/name: web\n"
    "  template:\n"
    "    metadata:\n"
    "      labels:\n"
    "        app.kubernetes.io/name: web\n"	/* 15 */
    "    spec:\n"
    "      containers:\n"
    "        - name: web\n"
    "          ports:\n"
    "            - containerPort: 8080\n";	/* 20 */

static int
parse(const char *text, struct obj_docs *docs, struct errlist *errs)
{
	memset(docs, 0, sizeof *docs);
	memset(errs, 0, sizeof *errs);
	return obj_parse(text, strlen(text), docs, errs);
}

static void
assert_pos(const json_t *pos, const char *field, int line, int col)
{
	int l, c;
	obj_pos_lookup(pos, field, &l, &c);
	if (l != line || c != col)
		fail_msg("%s: expected %d:%d, got %d:%d", field, line, col, l, c);
}

static bool
has_error(const struct errlist *e, const char *needle, int line, int col)
{
	for (size_t i = 0; i < e->n; i++)
		if (strstr(e->v[i].message, needle) && (!line || e->v[i].line == line) &&
		    (!col || e->v[i].col == col))
			return true;
	return false;
}

static void
dump_errors(const struct errlist *e)
{
	for (size_t i = 0; i < e->n; i++) {
		char *s = field_err_format(&e->v[i], "t.yaml");
		print_message("  %s\n", s);
		free(s);
	}
}

static void
test_missing_image_points_at_container(void **state)
{
	(void)state;
	struct obj_docs docs;
	struct errlist errs;
	assert_int_equal(parse(web_yaml, &docs, &errs), 0);
	assert_int_equal(docs.n, 1);
	assert_int_equal(obj_validate(docs.v[0].obj, &errs), -EINVAL);
	obj_pos_annotate(docs.v[0].pos, &errs);
	dump_errors(&errs);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0].field, "spec.template.spec.containers[0].image");
	assert_string_equal(errs.v[0].reason, "FieldValueRequired");
	assert_int_equal(errs.v[0].line, 18);
	assert_int_equal(errs.v[0].col, 11);
	char *s = field_err_format(&errs.v[0], "web.yaml");
	assert_string_equal(s, "web.yaml:18:11: spec.template.spec.containers[0].image: required");
	free(s);
	errlist_free(&errs);
	obj_docs_free(&docs);
}

static void
test_positions_of_keys_items_and_dotted_keys(void **state)
{
	(void)state;
	struct obj_docs docs;
	struct errlist errs;
	assert_int_equal(parse(web_yaml, &docs, &errs), 0);
	const json_t *pos = docs.v[0].pos;
	assert_pos(pos, "", 1, 1);
	assert_pos(pos, "spec.replicas", 8, 3);
	assert_pos(pos, "metadata.labels[app.kubernetes.io/name]", 6, 5);
	assert_pos(pos, "spec.template.spec.containers[0].ports[0].containerPort", 20, 15);
	assert_pos(pos, "spec.template.spec.containers[0].ports[0]", 20, 15);
	/* absent fields fall back to the nearest ancestor */
	assert_pos(pos, "spec.template.spec.containers[0].image", 18, 11);
	assert_pos(pos, "spec.strategy.type", 7, 1);
	assert_pos(pos, "nothing.here", 1, 1);
	assert_int_equal(docs.v[0].line, 1);
	assert_int_equal(json_integer_value(obj_get_path(docs.v[0].obj, "spec.replicas")), 2);
	obj_docs_free(&docs);
	errlist_free(&errs);
}

static void
test_multi_document_skips_empty(void **state)
{
	(void)state;
	struct obj_docs docs;
	struct errlist errs;
	const char *text =
	    "# leading comment\n"
	    "---\n"
	    "---\n"
	    "apiVersion: v1\n"
	    "kind: ConfigMap\n"
	    "metadata: {name: a}\n"
	    "---\n"
	    "# only a comment\n"
	    "---\n"
	    "apiVersion: v1\n"
	    "kind: ConfigMap\n"
	    "metadata:\n"
	    "  name: b\n"
	    "...\n";
	assert_int_equal(parse(text, &docs, &errs), 0);
	assert_int_equal(docs.n, 2);
	assert_string_equal(obj_name(docs.v[0].obj), "a");
	assert_string_equal(obj_name(docs.v[1].obj), "b");
	assert_int_equal(docs.v[0].line, 4);
	assert_int_equal(docs.v[1].line, 10);
	assert_pos(docs.v[1].pos, "metadata.name", 13, 3);
	obj_docs_free(&docs);
}

static void
test_list_is_expanded_with_positions(void **state)
{
	(void)state;
	struct obj_docs docs;
	struct errlist errs;
	const char *text =
	    "apiVersion: v1\n"
	    "kind: List\n"
	    "items:\n"
	    "- apiVersion: v1\n"
	    "  kind: ConfigMap\n"
	    "  metadata:\n"
	    "    name: one\n"
	    "- apiVersion: v1\n"
	    "  kind: ConfigMap\n"
	    "  metadata:\n"
	    "    name: two\n"
	    "  data:\n"
	    "    k: v\n";
	assert_int_equal(parse(text, &docs, &errs), 0);
	assert_int_equal(docs.n, 2);
	assert_string_equal(obj_name(docs.v[1].obj), "two");
	assert_int_equal(docs.v[1].line, 8);
	assert_pos(docs.v[1].pos, "", 8, 3);
	assert_pos(docs.v[1].pos, "metadata.name", 11, 5);
	assert_pos(docs.v[1].pos, "data.k", 13, 5);
	assert_pos(docs.v[0].pos, "metadata.name", 7, 5);
	obj_docs_free(&docs);

	/* a top-level "items" in something that is no List keeps its paths */
	assert_int_equal(parse("kind: Thing\nitems:\n- a: 1\n- [x]\n", &docs, &errs), 0);
	assert_int_equal(docs.n, 1);
	assert_pos(docs.v[0].pos, "items[0].a", 3, 3);
	assert_pos(docs.v[0].pos, "items[1]", 4, 3);
	assert_pos(docs.v[0].pos, "items[1][0]", 4, 4);
	obj_docs_free(&docs);

	/* List items that are not mappings */
	assert_int_equal(parse("apiVersion: v1\nkind: List\nitems:\n- 3\n", &docs, &errs), -EINVAL);
	assert_true(has_error(&errs, "list items must be mappings", 4, 3));
	assert_string_equal(errs.v[0].field, "items[0]");
	errlist_free(&errs);
}

static void
test_duplicate_key_reports_second_key(void **state)
{
	(void)state;
	struct obj_docs docs;
	struct errlist errs;
	const char *text =
	    "apiVersion: v1\n"
	    "kind: ConfigMap\n"
	    "metadata:\n"
	    "  name: a\n"
	    "  name: b\n";
	assert_int_equal(parse(text, &docs, &errs), -EINVAL);
	assert_int_equal(docs.n, 0);
	assert_int_equal(errs.n, 1);
	assert_true(has_error(&errs, "duplicate key \"name\"", 5, 3));
	assert_string_equal(errs.v[0].field, "metadata.name");
	errlist_free(&errs);
}

static void
test_syntax_errors_have_line_and_column(void **state)
{
	(void)state;
	struct obj_docs docs;
	struct errlist errs;
	/* tab indentation */
	assert_int_equal(parse("a:\n\tb: 1\n", &docs, &errs), -EINVAL);
	dump_errors(&errs);
	assert_true(errs.n >= 1);
	assert_int_equal(errs.v[0].line, 2);
	errlist_free(&errs);
	/* a value where a mapping can't hold one */
	assert_int_equal(parse("apiVersion: v1\nkind: Pod\nmetadata: name: x\n", &docs, &errs),
	    -EINVAL);
	dump_errors(&errs);
	assert_true(has_error(&errs, "mapping values are not allowed in this context", 3, 15));
	errlist_free(&errs);
	/* bad indentation */
	assert_int_equal(parse("metadata:\n  name: x\n labels: {}\n", &docs, &errs), -EINVAL);
	dump_errors(&errs);
	assert_true(errs.n >= 1);
	assert_int_equal(errs.v[0].line, 3);
	errlist_free(&errs);
	/* unterminated quote */
	assert_int_equal(parse("a: \"abc\nb: 1\n", &docs, &errs), -EINVAL);
	assert_true(errs.n >= 1 && errs.v[0].line > 0);
	errlist_free(&errs);
}

static void
test_document_must_be_mapping(void **state)
{
	(void)state;
	struct obj_docs docs;
	struct errlist errs;
	assert_int_equal(parse("kind: Pod\n---\n- a\n- b\n", &docs, &errs), -EINVAL);
	assert_int_equal(docs.n, 0);
	assert_true(has_error(&errs, "document must be a mapping (an object)", 3, 1));
	errlist_free(&errs);
	assert_int_equal(parse("just a string\n", &docs, &errs), -EINVAL);
	errlist_free(&errs);
	assert_int_equal(parse("? [a, b]\n: 1\n", &docs, &errs), -EINVAL);
	assert_true(has_error(&errs, "mapping keys must be strings", 0, 0));
	errlist_free(&errs);
}

static void
test_scalar_typing_core_schema(void **state)
{
	(void)state;
	struct obj_docs docs;
	struct errlist errs;
	const char *text =
	    "quoted: \"123\"\n"
	    "single: '0x1F'\n"
	    "hex: 0x1F\n"
	    "oct: 0o17\n"
	    "dec: -42\n"
	    "tilde: ~\n"
	    "empty:\n"
	    "t: True\n"
	    "f: false\n"
	    "yes: yes\n"
	    "float: 1.5e3\n"
	    "version: 1.10\n"
	    "tagged_str: !!str 123\n"
	    "tagged_int: !!int \"77\"\n"
	    "bang: ! 12\n"
	    "int_key_map: {80: http}\n"
	    "min: -9223372036854775808\n"
	    "nul: \"a\\0b\"\n";
	assert_int_equal(parse(text, &docs, &errs), 0);
	const json_t *o = docs.v[0].obj;
	assert_string_equal(json_string_value(json_object_get(o, "quoted")), "123");
	assert_string_equal(json_string_value(json_object_get(o, "single")), "0x1F");
	assert_int_equal(json_integer_value(json_object_get(o, "hex")), 31);
	assert_int_equal(json_integer_value(json_object_get(o, "oct")), 15);
	assert_int_equal(json_integer_value(json_object_get(o, "dec")), -42);
	assert_true(json_is_null(json_object_get(o, "tilde")));
	assert_true(json_is_null(json_object_get(o, "empty")));
	assert_true(json_is_true(json_object_get(o, "t")));
	assert_true(json_is_false(json_object_get(o, "f")));
	assert_string_equal(json_string_value(json_object_get(o, "yes")), "yes");
	assert_true(json_real_value(json_object_get(o, "float")) == 1500.0);
	assert_true(json_is_real(json_object_get(o, "version")));
	assert_string_equal(json_string_value(json_object_get(o, "tagged_str")), "123");
	assert_int_equal(json_integer_value(json_object_get(o, "tagged_int")), 77);
	assert_string_equal(json_string_value(json_object_get(o, "bang")), "12");
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(o, "int_key_map"), "80")), "http");
	assert_true(json_integer_value(json_object_get(o, "min")) == INT64_MIN);
	assert_int_equal(json_string_length(json_object_get(o, "nul")), 3);
	obj_docs_free(&docs);
}

static void
test_unrepresentable_scalars_are_errors(void **state)
{
	(void)state;
	struct obj_docs docs;
	struct errlist errs;
	assert_int_equal(parse("a: 1\nbig: 9223372036854775808\n", &docs, &errs), -EINVAL);
	assert_true(has_error(&errs, "out of range", 2, 6));
	assert_string_equal(errs.v[0].field, "big");
	errlist_free(&errs);
	assert_int_equal(parse("x: 0xFFFFFFFFFFFFFFFFFF\n", &docs, &errs), -EINVAL);
	errlist_free(&errs);
	assert_int_equal(parse("x: .inf\ny: -.Inf\nz: .nan\n", &docs, &errs), -EINVAL);
	assert_int_equal(errs.n, 3);
	assert_true(has_error(&errs, "infinity and NaN", 3, 4));
	errlist_free(&errs);
	assert_int_equal(parse("x: !!binary aGVsbG8=\n", &docs, &errs), -EINVAL);
	assert_true(has_error(&errs, "unsupported YAML tag", 1, 4));
	errlist_free(&errs);
	assert_int_equal(parse("x: !custom {a: 1}\n", &docs, &errs), -EINVAL);
	errlist_free(&errs);
	assert_int_equal(parse("x: !!int abc\n", &docs, &errs), -EINVAL);
	errlist_free(&errs);
	assert_int_equal(parse("x: 1e999\n", &docs, &errs), -EINVAL);
	errlist_free(&errs);
}

static void
test_aliases_and_merge_keys(void **state)
{
	(void)state;
	struct obj_docs docs;
	struct errlist errs;
	const char *text =
	    "base: &b {image: nginx, tag: \"1\"}\n"
	    "copy: *b\n"
	    "merged:\n"
	    "  <<: *b\n"
	    "  tag: \"2\"\n";
	assert_int_equal(parse(text, &docs, &errs), 0);
	const json_t *o = docs.v[0].obj;
	assert_true(json_equal(json_object_get(o, "base"), json_object_get(o, "copy")));
	/* aliases are copies, not shared: changing one leaves the other */
	assert_true(json_object_get(o, "base") != json_object_get(o, "copy"));
	const json_t *m = json_object_get(o, "merged");
	assert_string_equal(json_string_value(json_object_get(m, "image")), "nginx");
	assert_string_equal(json_string_value(json_object_get(m, "tag")), "2");
	obj_docs_free(&docs);

	assert_int_equal(parse("a: *nope\n", &docs, &errs), -EINVAL);
	assert_true(has_error(&errs, "unknown anchor", 1, 4));
	errlist_free(&errs);
}

static void
test_billion_laughs_is_bounded(void **state)
{
	(void)state;
	struct obj_docs docs;
	struct errlist errs;
	const char *text =
	    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
	    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
	    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
	    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
	    "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
	    "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
	assert_int_equal(parse(text, &docs, &errs), -EINVAL);
	assert_int_equal(docs.n, 0);
	assert_true(has_error(&errs, "aliases expand to more than 100000 nodes", 0, 0));
	errlist_free(&errs);
}

static void
test_nesting_depth_is_bounded(void **state)
{
	(void)state;
	struct obj_docs docs;
	struct errlist errs;
	char text[1000];
	size_t n = 0;
	n += (size_t)snprintf(text + n, sizeof text - n, "a: ");
	for (int i = 0; i < 150; i++)
		text[n++] = '[';
	text[n] = '\0';
	assert_int_equal(parse(text, &docs, &errs), -EINVAL);
	assert_true(has_error(&errs, "deeper than 100", 0, 0));
	errlist_free(&errs);
}

static void
test_json_input(void **state)
{
	(void)state;
	struct obj_docs docs;
	struct errlist errs;
	const char *text =
	    "{\n"
	    "  \"apiVersion\": \"v1\",\n"
	    "  \"kind\": \"ConfigMap\",\n"
	    "  \"metadata\": {\"name\": \"j\"},\n"
	    "  \"data\": {\"a.txt\": \"x\\/y\\t\", \"n\": \"1\"}\n"
	    "}\n";
	assert_int_equal(parse(text, &docs, &errs), 0);
	assert_int_equal(docs.n, 1);
	assert_string_equal(json_string_value(obj_get_path(docs.v[0].obj, "data.n")), "1");
	assert_pos(docs.v[0].pos, "data[a.txt]", 5, 12);
	obj_docs_free(&docs);

	/* libyaml refuses surrogate pairs; jansson reads them, positions stay */
	const char *emoji =
	    "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\",\n"
	    " \"metadata\": {\"name\": \"e\"},\n"
	    " \"data\": {\"smile\": \"\\ud83d\\ude00\"}}\n";
	assert_int_equal(parse(emoji, &docs, &errs), 0);
	assert_string_equal(json_string_value(obj_get_path(docs.v[0].obj, "data.smile")),
	    "\xf0\x9f\x98\x80");
	assert_pos(docs.v[0].pos, "data.smile", 3, 11);
	obj_docs_free(&docs);

	/* the same fallback for a List: items keep their positions */
	const char *list =
	    "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\n"
	    "  {\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"a\"}},\n"
	    "  {\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\",\n"
	    "   \"data\": {\"x\": \"\\ud83d\\ude00\"}}]}\n";
	assert_int_equal(parse(list, &docs, &errs), 0);
	assert_int_equal(docs.n, 2);
	assert_int_equal(docs.v[1].line, 3);
	assert_pos(docs.v[1].pos, "data.x", 4, 13);
	obj_docs_free(&docs);
	/* broken JSON reports libyaml's message and position */
	assert_int_equal(parse("{\"a\": [1, 2}\n", &docs, &errs), -EINVAL);
	assert_true(errs.n == 1 && errs.v[0].line == 1);
	errlist_free(&errs);

	assert_int_equal(parse("{\"a\": 1, \"a\": 2}", &docs, &errs), -EINVAL);
	assert_true(has_error(&errs, "duplicate key", 1, 0));
	errlist_free(&errs);
	assert_int_equal(parse("{\"a\": 123456789012345678901234567890}", &docs, &errs), -EINVAL);
	errlist_free(&errs);
}

static void
test_large_input(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_puts(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n");
	for (int i = 0; i < 50000; i++)
		buf_printf(&b, "  key-%d: \"value number %d with some padding text\"\n", i, i);
	struct obj_docs docs;
	struct errlist errs;
	assert_int_equal(parse(b.data, &docs, &errs), 0);
	assert_int_equal(json_object_size(json_object_get(docs.v[0].obj, "data")), 50000);
	assert_pos(docs.v[0].pos, "data.key-49999", 50005, 3);
	obj_docs_free(&docs);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_image_points_at_container),
		cmocka_unit_test(test_positions_of_keys_items_and_dotted_keys),
		cmocka_unit_test(test_multi_document_skips_empty),
		cmocka_unit_test(test_list_is_expanded_with_positions),
		cmocka_unit_test(test_duplicate_key_reports_second_key),
		cmocka_unit_test(test_syntax_errors_have_line_and_column),
		cmocka_unit_test(test_document_must_be_mapping),
		cmocka_unit_test(test_scalar_typing_core_schema),
		cmocka_unit_test(test_unrepresentable_scalars_are_errors),
		cmocka_unit_test(test_aliases_and_merge_keys),
		cmocka_unit_test(test_billion_laughs_is_bounded),
		cmocka_unit_test(test_nesting_depth_is_bounded),
		cmocka_unit_test(test_json_input),
		cmocka_unit_test(test_large_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
