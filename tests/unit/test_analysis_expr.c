/* test_analysis_expr.c — the successCondition / failureCondition language:
 * precedence, every operator and function, NaN, the typical Argo Rollouts
 * conditions, errors with their column, and the limits. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "analysis.h"
#include "util.h"

static json_t *
J(const char *s)
{
	json_error_t e;
	json_t *j;

	if (s == NULL)
		return NULL;
	j = json_loads(s, JSON_DECODE_ANY, &e);
	if (j == NULL)
		fail_msg("bad test JSON %s: %s", s, e.text);
	return j;
}

/* Evaluates expr against result (JSON text, NULL = unbound) expecting
 * success; returns its truth. */
static bool
ev(const char *expr, const char *result)
{
	json_t *r = J(result);
	char *err = NULL;
	bool out = false;

	if (aexpr_eval_bool(expr, r, &out, &err) != 0)
		fail_msg("\"%s\" with %s failed: %s", expr, result ? result : "nil", err);
	assert_null(err);
	json_decref(r);
	return out;
}

/* Expects evaluation to fail with a message containing want. */
static void
ev_err(const char *expr, const char *result, const char *want)
{
	json_t *r = J(result);
	char *err = NULL;
	bool out = true;

	if (aexpr_eval_bool(expr, r, &out, &err) != -EINVAL)
		fail_msg("\"%s\" with %s should fail with \"%s\"", expr, result ? result : "nil", want);
	assert_false(out);
	assert_non_null(err);
	if (strstr(err, want) == NULL)
		fail_msg("\"%s\": error \"%s\" lacks \"%s\"", expr, err, want);
	free(err);
	json_decref(r);
}

#define T(expr, result) assert_true(ev(expr, result))
#define F(expr, result) assert_false(ev(expr, result))

static void
test_literals_and_arithmetic(void **state)
{
	(void)state;
	T("1 + 2 * 3 == 7", NULL);
	T("(1 + 2) * 3 == 9", NULL);
	T("10 - 2 - 3 == 5", NULL);
	T("7 / 2 == 3.5", NULL);
	T("6 / 3 == 2", NULL);
	T("7 % 3 == 1", NULL);
	T("-7 % 3 == -1", NULL);
	T("2 ** 3 == 8", NULL);
	T("2 ^ 3 ^ 2 == 512", NULL);	/* right associative */
	T("-2 ** 2 == -4", NULL);	/* ** binds tighter than unary minus */
	T("-3 * 2 == -6", NULL);
	T("+5 == 5", NULL);
	T("- -5 == 5", NULL);
	T("1e3 == 1000", NULL);
	T("1.5e-1 == 0.15", NULL);
	T("1_000 == 1000", NULL);
	T("1.5 + 1 == 2.5", NULL);
	T("\"a\" + 'b' == \"ab\"", NULL);
	T("'it\\'s' == \"it's\"", NULL);
	T("\"tab\\there\" == 'tab\there'", NULL);
	T("\"\\u00e9\" == \"\xc3\xa9\"", NULL);
	T("\"\\x41\\101\" == 'AA'", NULL);
	T("`raw\\n` == 'raw\\\\n'", NULL);
	T("true", NULL);
	F("false", NULL);
	T("nil == nil", NULL);
	T("9223372036854775807 + 1 == -9223372036854775807 - 1", NULL);	/* wraps as Go */
}

static void
test_precedence(void **state)
{
	(void)state;
	T("true || false && false", NULL);
	F("(true || false) && false", NULL);
	T("true or false and false", NULL);
	T("not false", NULL);
	T("!true == false", NULL);	/* (!true) == false, as expr parses it */
	T("!(1 == 2)", NULL);
	T("1 + 2 > 2 && 3 * 2 == 6", NULL);
	T("1 < 2 < 3", NULL);		/* chained: 1 < 2 && 2 < 3 */
	F("3 > 2 > 2", NULL);
	T("1 > 2 ? false : true", NULL);
	T("(false ? 1 : true ? 2 : 3) == 2", NULL);
	T("1 + 2 == 3 ? 'yes' == 'yes' : false", NULL);
	T("nil ?? 3 == 3", NULL);
	T("result.a ?? 1 + 1 == 2", "{}");	/* ?? binds tightest */
}

static void
test_comparisons_and_membership(void **state)
{
	(void)state;
	T("1 == 1.0", NULL);
	T("1 < 1.5 && 2.5 > 2 && 2 >= 2.0 && 2 <= 2", NULL);
	F("1 == '1'", NULL);		/* == across types is false */
	T("1 != '1'", NULL);
	F("nil == false", NULL);
	T("'a' < 'b' && 'ab' > 'a' && 'abc' == 'abc' && 'B' < 'a'", NULL);
	T("[1, 2] == [1, 2.0]", NULL);
	F("[1, 2] == [2, 1]", NULL);
	T("2 in [1, 2, 3]", NULL);
	F("5 in [1, 2, 3]", NULL);
	T("5 not in [1, 2, 3]", NULL);
	T("'p99' in result && not ('x' in result)", "{\"p99\": 1}");
	T("'ok' in ['ok', 'fine']", NULL);
	T("'hello' contains 'ell' && 'hello' startsWith 'he' && 'hello' endsWith 'lo'", NULL);
	F("'hello' contains 'xyz'", NULL);
	T("'hello' not contains 'xyz'", NULL);
	T("result == nil", "null");
	T("result == 'up'", "\"up\"");
	T("result", "true");
	F("result", "false");
}

static void
test_result_access(void **state)
{
	(void)state;
	const char *obj = "{\"successRate\": 0.995, \"p99\": 120, \"nested\": {\"a\": [1, 2]},"
	    " \"name\": \"web\", \"none\": null}";

	T("result.successRate > 0.99 && result.p99 < 250", obj);
	T("result['p99'] == 120 && result[\"name\"] == 'web'", obj);
	T("result.missing == nil && result.none == nil", obj);
	T("result.nested.a[1] == 2 && result.nested['a'][0] == 1", obj);
	T("result.nested.a[-1] == 2 && result.nested.a[-2] == 1", obj);
	T("result.nested?.a[0] == 1 && result.x?.y == nil && result.x?.[0] == nil", obj);
	T("result[0] == 0.1 && result[2] == 0.3", "[0.1, 0.2, 0.3]");
	T("result[1.0] == 0.2", "[0.1, 0.2, 0.3]");
	T("result[1:] == [0.2, 0.3] && result[:1] == [0.1] && result[-2:-1] == [0.2]",
	    "[0.1, 0.2, 0.3]");
	T("result[5:] == [] && len(result[1:2]) == 1", "[0.1, 0.2, 0.3]");
	T("[10, 20, 30][1] == 20", NULL);
}

static void
test_functions(void **state)
{
	(void)state;
	T("len('abc') == 3 && len('\xc3\xa9') == 1", NULL);
	T("len(result) == 3", "[1, 2, 3]");
	T("len(result) == 2", "{\"a\": 1, \"b\": 2}");
	T("len(result) == 0", "[]");
	T("abs(-2) == 2 && abs(-2.5) == 2.5 && abs(3) == 3", NULL);
	T("int(2.9) == 2 && int(-2.9) == -2 && int('42') == 42 && int(7) == 7", NULL);
	T("asInt('7') + 1 == 8", NULL);
	T("float(2) / 4 == 0.5 && float('1.5') == 1.5 && asFloat('2') == 2", NULL);
	T("isNaN(float('NaN')) && isInf(asFloat('+Inf'))", NULL);
	T("string(1.5) == '1.5' && string(42) == '42' && string(1e6) == '1e+06'", NULL);
	T("string(123456.0) == '123456' && string(0.0001) == '0.0001' && string(1e-5) == '1e-05'",
	    NULL);
	T("string(true) == 'true' && string(nil) == '<nil>' && string('s') == 's'", NULL);
	T("string([1, 'a', 2.5]) == '[1 a 2.5]'", NULL);
	T("string(result) == 'map[a:1 b:[x]]'", "{\"b\": [\"x\"], \"a\": 1}");
	T("min(3, 1, 2) == 1 && max(1, 2.5) == 2.5 && max(-1) == -1", NULL);
	T("max(result) == 0.9 && min(result) == 0.1", "[0.1, 0.9, 0.5]");
	T("isNil(result) && default(result, 5) == 5", "null");
	F("isNil(result)", "0");
	T("default(result, 5) == 0", "0");
	T("ceil(1.2) == 2 && floor(1.8) == 1 && round(2.5) == 3 && round(-2.5) == -3", NULL);
	T("ceil(3) == 3", NULL);
}

static void
test_predicates(void **state)
{
	(void)state;
	T("all(result, {# > 0.9})", "[0.95, 0.99]");
	F("all(result, {# > 0.9})", "[0.95, 0.5]");
	T("all(result, # > 0.9)", "[]");		/* braces optional; vacuous truth */
	T("any(result, {# < 0.9})", "[0.95, 0.5]");
	F("any(result, {# < 0.9})", "[]");
	T("none(result, {# > 1})", "[0.95, 0.5]");
	T("one(result, {# > 0.9})", "[0.95, 0.5]");
	F("one(result, {# > 0.1})", "[0.95, 0.5]");
	T("count(result, {# > 0.9}) == 1", "[0.95, 0.5]");
	T("filter(result, {# > 0.9}) == [0.95]", "[0.95, 0.5]");
	T("map(result, {# * 2}) == [1.9, 1]", "[0.95, 0.5]");
	T("all(result, {.ok}) && any(result, {#.code == 200})",
	    "[{\"ok\": true, \"code\": 200}, {\"ok\": true, \"code\": 503}]");
	T("all(result, {all(#, {# > 0})})", "[[1, 2], [3]]");
	T("len(filter(result, {# != nil})) == 1", "[null, 1]");
	ev_err("all(result, {#})", "[1]", "the predicate of all must return a bool, got number");
	ev_err("all(result, {# > 0})", "{}", "all needs an array, got object");
}

static void
test_nan_and_infinity(void **state)
{
	(void)state;
	/* Prometheus spells non-finite samples as strings; JSON has no NaN. */
	T("isNaN(result)", "\"NaN\"");
	F("result >= 0.95", "\"NaN\"");
	F("result < 0.95", "\"NaN\"");
	F("result == result", "\"NaN\"");
	T("result != result", "\"NaN\"");
	F("isInf(result)", "\"NaN\"");
	T("isNaN(result[0]) && !isNaN(result[1])", "[\"NaN\", 0.5]");
	T("isInf(result) && result > 1e308", "\"+Inf\"");
	T("isInf(result) && result < 0", "\"-Inf\"");
	T("isNaN(0.0 / 0) && isInf(1 / 0.0) && isInf(-1 / 0)", NULL);
	F("isNaN(1)", NULL);
	F("float('NaN') > 1 || float('NaN') <= 1", NULL);
	T("result == 'nan'", "\"nan\"");	/* only Prometheus' exact spelling */
	ev_err("isNaN('x')", NULL, "column 1: isNaN needs a number, got string");
	ev_err("int(result)", "\"NaN\"", "cannot convert number (NaN, Inf or too large) to int");
}

static void
test_typical_argo_conditions(void **state)
{
	(void)state;
	T("result[0] >= 0.95", "[0.97]");
	F("result[0] >= 0.95", "[0.9]");
	T("result >= 0.95", "0.97");
	F("result >= 0.95", "0.5");
	T("len(result) == 0 || result[0] < 1", "[]");	/* short-circuits */
	T("len(result) == 0 || result[0] < 1", "[0.5]");
	F("len(result) == 0 || result[0] < 1", "[2]");
	T("result.successRate > 0.99 && result.p99 < 250", "{\"successRate\": 0.999, \"p99\": 80}");
	F("result.successRate > 0.99 && result.p99 < 250", "{\"successRate\": 0.999, \"p99\": 300}");
	T("asFloat(result) > 0.5", "\"0.75\"");
	T("result.code == 200 and result.body contains 'ok'", "{\"code\": 200, \"body\": \"ok!\"}");
}

static void
test_errors_carry_column(void **state)
{
	(void)state;
	ev_err("foo(1)", NULL, "column 1: unknown function foo");
	ev_err("result > 0.5 && foo(result)", "1", "column 17: unknown function foo");
	ev_err("'a' < 1", NULL, "column 5: cannot compare string and number");
	ev_err("result[5] > 0", "[1, 2]", "column 7: index 5 out of range (len 2)");
	ev_err("result[-3] > 0", "[1, 2]", "index -3 out of range (len 2)");
	ev_err("x > 1", NULL, "column 1: unknown name x");
	ev_err("result +", "1", "column 9: unexpected end of expression");
	ev_err("(1 > 2", NULL, "column 7: unexpected end of expression");
	ev_err("1 > 2)", NULL, "column 6: unexpected token )");
	ev_err("1 > 2 3", NULL, "column 7: unexpected token 3");
	ev_err("'abc", NULL, "column 1: unterminated string");
	ev_err("'\\q'", NULL, "invalid escape");
	ev_err("1 @ 2", NULL, "column 3: unexpected character '@'");
	ev_err("12abc", NULL, "column 1: invalid number");
	ev_err("99999999999999999999 > 1", NULL, "integer literal is too large");
	ev_err("result", "0.5", "column 1: the condition must be a bool, got number");
	ev_err("result", "\"yes\"", "must be a bool, got string");
	ev_err("result", "null", "must be a bool, got nil");
	ev_err("1 && true", NULL, "column 3: operator && needs bool operands, got number");
	ev_err("true and 'x'", NULL, "operator and needs bool operands, got string");
	ev_err("not 1", NULL, "operator not needs a bool, got number");
	ev_err("-'a' == 1", NULL, "operator - needs a number, got string");
	ev_err("'a' + 1 == 1", NULL, "column 5: cannot apply + to string and number");
	ev_err("5 % 0 == 1", NULL, "integer divide by zero");
	ev_err("5.5 % 2 == 1", NULL, "operator % needs integers");
	ev_err("# > 1", NULL, "column 1: cannot use # outside a predicate");
	ev_err("len(1, 2) == 1", NULL, "len expects 1 argument, got 2");
	ev_err("min() == 1", NULL, "min expects at least 1 argument, got 0");
	ev_err("len(5) == 1", NULL, "len needs a string, array or object, got number");
	ev_err("result matches 'x'", "\"x\"", "operator matches is not supported by v6");
	ev_err("", NULL, "column 1: empty expression");
	ev_err("   ", NULL, "empty expression");
	ev_err("1 ? true : false", NULL, "the condition of ?: needs a bool, got number");
	ev_err("result.x > 1", "[1]", "column 8: cannot read field x of array");
	ev_err("result.x > 1", "null", "cannot read field x of nil");
	ev_err("result[0] > 1", "0.5", "cannot index number");
	ev_err("result['a'] > 1", "[1]", "an array index must be an integer, got string");
	ev_err("result[1] > 1", "{\"a\": 1}", "an object key must be a string, got number");
	ev_err("1 in 'abc'", NULL, "operator in needs an array or object on its right, got string");
	ev_err("{a: 1}", NULL, "map literals are not supported by v6");
	ev_err("int('x1') > 0", NULL, "cannot convert \"x1\" to int");
	ev_err("max(result) > 0", "[]", "max of an empty array");
	ev_err("max('a', 1) > 0", NULL, "max needs numbers, got string");
	ev_err("result.len() > 0", "{}", "method calls are not supported by v6");
}

static void
test_check_reports_syntax_only(void **state)
{
	char *err = NULL;

	(void)state;
	assert_int_equal(aexpr_check("result[0] >= 0.95", &err), 0);
	assert_null(err);
	/* runtime facts (the index, the type) are not known until evaluation */
	assert_int_equal(aexpr_check("result[5] > 'a'", &err), 0);
	assert_int_equal(aexpr_check("result > 0.9 &&", &err), -EINVAL);
	assert_string_equal(err, "column 16: unexpected end of expression");
	free(err);
	assert_int_equal(aexpr_check("reslt > 1", &err), -EINVAL);
	assert_string_equal(err, "column 1: unknown name reslt (only result is defined)");
	free(err);
	assert_int_equal(aexpr_check("lenn(result) > 1", &err), -EINVAL);
	assert_string_equal(err, "column 1: unknown function lenn");
	free(err);
	assert_int_equal(aexpr_check(NULL, &err), -EINVAL);
	free(err);
	assert_int_equal(aexpr_check("1 >", NULL), -EINVAL);	/* err optional */
}

/* Returns a malloc'd string: prefix, then s repeated n times, then suffix. */
static char *
repeat(const char *prefix, const char *s, int n, const char *suffix)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, prefix);
	for (int i = 0; i < n; i++)
		buf_puts(&b, s);
	buf_puts(&b, suffix);
	return buf_steal(&b);
}

static void
test_limits(void **state)
{
	char *e, *tail;
	struct timespec t0, t1;
	json_t *big;

	(void)state;
	/* 60 parentheses are fine, 100 are refused before the stack grows */
	tail = repeat("1", ")", 60, " == 1");
	e = repeat("", "(", 60, tail);
	T(e, NULL);
	free(e);
	free(tail);
	tail = repeat("1", ")", 100, " == 1");
	e = repeat("", "(", 100, tail);
	ev_err(e, NULL, "nested deeper than 64 levels");
	free(e);
	free(tail);
	e = repeat("", "!", 200, "true");
	ev_err(e, NULL, "nested deeper than 64 levels");
	free(e);
	e = repeat("", "- ", 2000, "1 == 1");
	ev_err(e, NULL, "nested deeper than 64 levels");
	free(e);
	/* a left-deep chain is capped by AST height, which bounds evaluation */
	e = repeat("1", " + 1", 100, " == 101");
	ev_err(e, NULL, "nested deeper than 64 levels");
	free(e);
	e = repeat("1", " + 1", 40, " == 41");
	T(e, NULL);
	free(e);
	/* length */
	e = repeat("result == '", "x", 5000, "'");
	ev_err(e, "1", "column 4097: expression longer than 4096 bytes");
	free(e);
	/* work: nested predicates over 20 elements would be 20^6 steps */
	big = json_array();
	for (int i = 0; i < 20; i++)
		json_array_append_new(big, json_integer(i));
	{
		char *err = NULL;
		bool out = true;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(aexpr_eval_bool("all(result, all(result, all(result, all(result, "
		    "all(result, all(result, true))))))", big, &out, &err), -EINVAL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		assert_non_null(strstr(err, "expression needs more than 1000000 steps"));
		free(err);
		/* generous: the budget is about 1 s even under sanitizers on a busy box */
		assert_true((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 5000);
	}
	json_decref(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literals_and_arithmetic),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_comparisons_and_membership),
		cmocka_unit_test(test_result_access),
		cmocka_unit_test(test_functions),
		cmocka_unit_test(test_predicates),
		cmocka_unit_test(test_nan_and_infinity),
		cmocka_unit_test(test_typical_argo_conditions),
		cmocka_unit_test(test_errors_carry_column),
		cmocka_unit_test(test_check_reports_syntax_only),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
