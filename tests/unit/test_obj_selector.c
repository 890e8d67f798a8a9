/* test_obj_selector.c — label selectors (string and LabelSelector forms)
 * and field selectors: parsing, Kubernetes matching semantics, errors. */
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

/* Does selector string s match the labels given as JSON? */
static bool
sel_match(const char *s, const char *labels)
{
	struct selector *sel = NULL;
	char *err = NULL;
	json_t *l = labels ? J(labels) : NULL;
	bool r;

	if (selector_parse(s, &sel, &err) != 0)
		fail_msg("selector \"%s\" did not parse: %s", s, err);
	r = selector_matches(sel, l);
	selector_free(sel);
	json_decref(l);
	return r;
}

/* Parses s expecting failure; returns the message (caller frees). */
static char *
sel_error(const char *s)
{
	struct selector *sel = (struct selector *)1;
	char *err = NULL;

	assert_int_equal(selector_parse(s, &sel, &err), -EINVAL);
	assert_null(sel);
	assert_non_null(err);
	return err;
}

static void
assert_sel_error(const char *s, const char *needle)
{
	char *err = sel_error(s);
	if (strstr(err, needle) == NULL)
		fail_msg("selector \"%s\": error \"%s\" lacks \"%s\"", s, err, needle);
	free(err);
}

static void
test_equality_operators(void **state)
{
	(void)state;
	assert_true(sel_match("app=web", "{\"app\":\"web\"}"));
	assert_true(sel_match("app==web", "{\"app\":\"web\",\"x\":\"y\"}"));
	assert_false(sel_match("app=web", "{\"app\":\"db\"}"));
	assert_false(sel_match("app=web", "{}"));
	assert_false(sel_match("app=web", NULL));
	assert_true(sel_match("app!=web", "{\"app\":\"db\"}"));
	assert_false(sel_match("app!=web", "{\"app\":\"web\"}"));
	/* != matches when the label is absent */
	assert_true(sel_match("app!=web", "{}"));
	assert_true(sel_match("app!=web", NULL));
	/* "a=" selects the empty value */
	assert_true(sel_match("a=", "{\"a\":\"\"}"));
	assert_false(sel_match("a=", "{\"a\":\"x\"}"));
}

static void
test_set_operators(void **state)
{
	(void)state;
	assert_true(sel_match("env in (prod, staging)", "{\"env\":\"staging\"}"));
	assert_false(sel_match("env in (prod,staging)", "{\"env\":\"dev\"}"));
	assert_false(sel_match("env in (prod)", "{}"));
	assert_true(sel_match("env notin (prod)", "{\"env\":\"dev\"}"));
	assert_false(sel_match("env notin (prod,dev)", "{\"env\":\"dev\"}"));
	/* notin matches when the label is absent */
	assert_true(sel_match("env notin (prod)", "{}"));
	assert_true(sel_match("env notin (prod)", NULL));
	/* keywords are fine as values */
	assert_true(sel_match("x in (in,notin)", "{\"x\":\"notin\"}"));
	assert_true(sel_match("x in ()", "{\"x\":\"\"}"));
}

static void
test_existence_and_combination(void **state)
{
	(void)state;
	assert_true(sel_match("app", "{\"app\":\"\"}"));
	assert_false(sel_match("app", "{\"other\":\"x\"}"));
	assert_true(sel_match("!legacy", "{\"app\":\"x\"}"));
	assert_true(sel_match("!legacy", NULL));
	assert_false(sel_match("!legacy", "{\"legacy\":\"true\"}"));
	assert_true(sel_match("  app = web ,tier in(fe),  !legacy,track!=canary ",
	    "{\"app\":\"web\",\"tier\":\"fe\"}"));
	assert_false(sel_match("app=web,tier in (fe),!legacy",
	    "{\"app\":\"web\",\"tier\":\"fe\",\"legacy\":\"1\"}"));
	assert_true(sel_match("example.com/part-of=shop", "{\"example.com/part-of\":\"shop\"}"));
	assert_true(sel_match("replicas>2,replicas<5", "{\"replicas\":\"3\"}"));
	assert_false(sel_match("replicas>2", "{\"replicas\":\"2\"}"));
	assert_false(sel_match("replicas>2", "{\"replicas\":\"many\"}"));
}

static void
test_empty_string_selects_everything(void **state)
{
	struct selector *sel;
	char *err = NULL;

	(void)state;
	assert_int_equal(selector_parse("", &sel, &err), 0);
	assert_true(selector_empty(sel));
	assert_false(selector_is_nothing(sel));
	assert_true(selector_matches(sel, NULL));
	selector_free(sel);
	assert_int_equal(selector_parse("   ", &sel, &err), 0);
	assert_true(selector_empty(sel));
	selector_free(sel);
	assert_int_equal(selector_parse("a", &sel, &err), 0);
	assert_false(selector_empty(sel));
	selector_free(sel);
}

static void
test_syntax_errors(void **state)
{
	(void)state;
	assert_sel_error("a in (", "found end of string at column 7, expected: identifier, ',' or ')'");
	assert_sel_error("(a)", "found '(' at column 1, expected: !, identifier");
	assert_sel_error("a in x", "found 'x' at column 6, expected: '('");
	assert_sel_error("a in (x y)", "found 'y' at column 9, expected: ',' or ')'");
	assert_sel_error("a in (b,c", "found end of string at column 10, expected: ',' or ')'");
	assert_sel_error("a=b,", "expected: identifier after ','");
	assert_sel_error("a=b c", "found 'c' at column 5, expected: ',' or end of string");
	assert_sel_error("a b", "found 'b' at column 3, expected: =, ==, !=, in, notin");
	assert_sel_error("!", "found end of string at column 2, expected: identifier");
	assert_sel_error("a==(", "found '(' at column 4, expected: identifier");
	assert_sel_error(",a", "found ',' at column 1");
	/* keys and values use Kubernetes label syntax */
	assert_sel_error("-a=b", "invalid label key \"-a\"");
	assert_sel_error("a/b/c=d", "invalid label key \"a/b/c\"");
	assert_sel_error("Example.COM/a=b", "invalid label key \"Example.COM/a\"");
	assert_sel_error("/a=b", "prefix before '/'");
	assert_sel_error("a=b_", "invalid label value \"b_\"");
	assert_sel_error("a in (ok,-bad)", "invalid label value \"-bad\"");
	assert_sel_error("a>x", "must be an integer");
	assert_sel_error("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=b",
	    "invalid label key");
}

static void
test_format_round_trip(void **state)
{
	struct selector *sel, *again;
	char *s, *err = NULL;
	json_t *l;

	(void)state;
	assert_int_equal(selector_parse("tier notin (b,a), app==web, !old, x, n>3",
	    &sel, &err), 0);
	s = selector_format(sel);
	assert_string_equal(s, "app=web,n>3,!old,tier notin (a,b),x");
	assert_int_equal(selector_parse(s, &again, &err), 0);
	l = J("{\"app\":\"web\",\"x\":\"\",\"n\":\"4\"}");
	assert_true(selector_matches(again, l));
	json_object_set_new(l, "old", json_string("1"));
	assert_false(selector_matches(again, l));
	json_decref(l);
	free(s);
	selector_free(sel);
	selector_free(again);
}

static struct selector *
from_json(const char *js)
{
	struct selector *sel = NULL;
	char *err = NULL;
	json_t *j = js ? J(js) : NULL;

	if (selector_from_json(j, &sel, &err) != 0)
		fail_msg("LabelSelector %s rejected: %s", js, err);
	json_decref(j);
	return sel;
}

static void
test_from_json_matches(void **state)
{
	struct selector *sel;
	json_t *l;

	(void)state;
	sel = from_json("{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":["
	    "{\"key\":\"tier\",\"operator\":\"In\",\"values\":[\"fe\",\"be\"]},"
	    "{\"key\":\"env\",\"operator\":\"NotIn\",\"values\":[\"dev\"]},"
	    "{\"key\":\"track\",\"operator\":\"Exists\"},"
	    "{\"key\":\"legacy\",\"operator\":\"DoesNotExist\"}]}");
	l = J("{\"app\":\"web\",\"tier\":\"be\",\"track\":\"stable\"}");
	assert_true(selector_matches(sel, l));
	json_object_set_new(l, "env", json_string("dev"));
	assert_false(selector_matches(sel, l));
	json_object_set_new(l, "env", json_string("prod"));
	assert_true(selector_matches(sel, l));
	json_object_set_new(l, "legacy", json_string("y"));
	assert_false(selector_matches(sel, l));
	json_decref(l);
	selector_free(sel);
}

static void
test_from_json_everything_and_nothing(void **state)
{
	struct selector *sel;
	json_t *l;

	(void)state;
	sel = from_json("{}");
	assert_true(selector_empty(sel));
	assert_true(selector_matches(sel, NULL));
	selector_free(sel);
	sel = from_json(NULL);
	assert_false(selector_empty(sel));
	assert_true(selector_is_nothing(sel));
	assert_false(selector_matches(sel, NULL));
	l = J("{\"a\":\"b\"}");
	assert_false(selector_matches(sel, l));
	json_decref(l);
	selector_free(sel);
	sel = from_json("null");
	assert_true(selector_is_nothing(sel));
	selector_free(sel);
	sel = selector_nothing();
	assert_false(selector_matches(sel, NULL));
	selector_free(sel);
}

static void
assert_json_error(const char *js, const char *needle)
{
	struct selector *sel = NULL;
	char *err = NULL;
	json_t *j = J(js);

	assert_int_equal(selector_from_json(j, &sel, &err), -EINVAL);
	assert_null(sel);
	assert_non_null(err);
	if (strstr(err, needle) == NULL)
		fail_msg("%s: error \"%s\" lacks \"%s\"", js, err, needle);
	free(err);
	json_decref(j);
}

static void
test_from_json_errors(void **state)
{
	(void)state;
	assert_json_error("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Equals\","
	    "\"values\":[\"x\"]}]}", "matchExpressions[0].operator: unsupported value \"Equals\"");
	assert_json_error("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}",
	    "matchExpressions[0].values: must be specified");
	assert_json_error("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\","
	    "\"values\":[]}]}", "matchExpressions[0].values: must be specified");
	assert_json_error("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\"},"
	    "{\"key\":\"b\",\"operator\":\"DoesNotExist\",\"values\":[\"x\"]}]}",
	    "matchExpressions[1].values: may not be specified");
	assert_json_error("{\"matchExpressions\":[{\"operator\":\"Exists\"}]}",
	    "matchExpressions[0].key: required");
	assert_json_error("{\"matchLabels\":{\"bad key\":\"x\"}}", "invalid label key \"bad key\"");
	assert_json_error("{\"matchLabels\":{\"a\":\"-x\"}}", "matchLabels[a]: invalid value");
	assert_json_error("{\"matchLabels\":{\"a\":1}}", "matchLabels[a]: must be a string");
	assert_json_error("[]", "must be an object");
}

static struct field_selector *
fsel(const char *s)
{
	struct field_selector *f = NULL;
	char *err = NULL;

	if (field_selector_parse(s, &f, &err) != 0)
		fail_msg("field selector \"%s\" rejected: %s", s, err);
	return f;
}

static bool
fmatch(const char *s, const char *obj)
{
	struct field_selector *f = fsel(s);
	json_t *o = J(obj);
	bool r = field_selector_matches(f, o);

	field_selector_free(f);
	json_decref(o);
	return r;
}

static const char pod[] = "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\","
    "\"namespace\":\"shop\"},\"spec\":{\"restartPolicy\":\"Always\"},"
    "\"status\":{\"phase\":\"Running\"}}";

static void
test_field_selector_matching(void **state)
{
	(void)state;
	assert_true(fmatch("metadata.name=web", pod));
	assert_true(fmatch("metadata.name==web,metadata.namespace=shop", pod));
	assert_false(fmatch("metadata.name=db", pod));
	assert_true(fmatch("metadata.namespace!=kube-system", pod));
	assert_false(fmatch("metadata.namespace!=shop", pod));
	assert_true(fmatch("status.phase=Running,spec.restartPolicy=Always", pod));
	assert_false(fmatch("status.phase=Running,metadata.name=x", pod));
	/* absent fields compare as "" */
	assert_true(fmatch("spec.nodeName=", pod));
	assert_false(fmatch("spec.nodeName!=", pod));
	assert_true(fmatch("", pod));
	assert_true(fmatch(" metadata.name = web ", pod));
	/* events: source is source.component, values compared as strings */
	assert_true(fmatch("source=kubelet,involvedObject.resourceVersion=42,type=Warning",
	    "{\"kind\":\"Event\",\"source\":{\"component\":\"kubelet\"},"
	    "\"involvedObject\":{\"resourceVersion\":42},\"type\":\"Warning\"}"));
	/* escaped commas and equals signs in values */
	assert_true(fmatch("reason=a\\,b\\=c", "{\"reason\":\"a,b=c\"}"));
}

static void
assert_field_error(const char *s, const char *needle)
{
	struct field_selector *f = (struct field_selector *)1;
	char *err = NULL;

	assert_int_equal(field_selector_parse(s, &f, &err), -EINVAL);
	assert_null(f);
	if (err == NULL || strstr(err, needle) == NULL)
		fail_msg("field selector \"%s\": error \"%s\" lacks \"%s\"", s, err, needle);
	free(err);
}

static void
test_field_selector_errors(void **state)
{
	struct field_selector *f;
	char *err = NULL;

	(void)state;
	assert_field_error("foo=bar", "field label not supported: foo");
	assert_field_error("metadata.name=web,spec.replicas=3",
	    "field label not supported: spec.replicas");
	assert_field_error("metadata.name", "invalid field selector: 'metadata.name'");
	assert_field_error("metadata.name=a=b", "unescaped '='");
	assert_field_error("metadata.name=a\\x", "invalid escape sequence");

	f = fsel("status.phase=Running,metadata.name=web");
	assert_int_equal(field_selector_check_kind(f, "Pod", &err), 0);
	assert_int_equal(field_selector_check_kind(f, "Namespace", &err), 0);
	assert_int_equal(field_selector_check_kind(f, "ConfigMap", &err), -EINVAL);
	assert_string_equal(err, "field label not supported: status.phase");
	free(err);
	field_selector_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equality_operators),
		cmocka_unit_test(test_set_operators),
		cmocka_unit_test(test_existence_and_combination),
		cmocka_unit_test(test_empty_string_selects_everything),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_from_json_matches),
		cmocka_unit_test(test_from_json_everything_and_nothing),
		cmocka_unit_test(test_from_json_errors),
		cmocka_unit_test(test_field_selector_matching),
		cmocka_unit_test(test_field_selector_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
