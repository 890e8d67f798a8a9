/* test_obj_monitoring.c — PrometheusRule (monitoring.coreos.com/v1): the
 * CRD's schema and patterns (obj_schema_monitoring.c), and admission by the
 * real promtool with its messages at the rule's path (ctrl_promrules.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "obj_schema.h"

#define HEAD "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n" \
	"metadata: {name: r, namespace: default}\nspec:\n  groups:\n"

static json_t *
load(const char *yaml)
{
	struct obj_docs docs = { NULL, 0 };
	struct errlist errs = { NULL, 0, 0 };
	if (obj_parse(yaml, strlen(yaml), &docs, &errs) != 0 || docs.n != 1)
		fail_msg("parse failed: %s", errs.n ? errs.v[0].message : "not one doc");
	json_t *o = json_incref(docs.v[0].obj);
	obj_docs_free(&docs);
	return o;
}

/* The errors of validating (admit: and of promtool's admission) HEAD+groups
 * as "field reason" lines, for one assert. */
static char *
errors_of(const char *groups, bool admit)
{
	char *yaml = xasprintf(HEAD "%s", groups);
	json_t *o = load(yaml);
	struct errlist e = { NULL, 0, 0 };
	int rc = obj_validate(o, &e);
	if (rc == 0 && admit)
		rc = promrules_admit(o, NULL, &e);
	assert_int_equal(rc, e.n ? -EINVAL : 0);
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < e.n; i++)
		buf_printf(&b, "%s%s %s", i ? "\n" : "", e.v[i].field, e.v[i].reason);
	errlist_free(&e);
	json_decref(o);
	free(yaml);
	return buf_steal(&b);
}

static void
expect(const char *groups, bool admit, const char *want)
{
	char *got = errors_of(groups, admit);
	assert_string_equal(got ? got : "", want);
	free(got);
}

static void
test_realistic_rule_validates_and_passes_promtool(void **state)
{
	(void)state;
	expect("  - name: web\n    interval: 30s\n    limit: 10\n"
	    "    partial_response_strategy: warn\n    rules:\n"
	    "    - record: job:up:sum\n      expr: sum by (job) (up)\n"
	    "    - alert: Down\n      expr: up == 0\n      for: 5m\n      keep_firing_for: 1m\n"
	    "      labels: {severity: page}\n"
	    "      annotations: {summary: '{{ $labels.job }} down'}\n"
	    "    - alert: Always\n      expr: 1\n", true, "");
	const struct kind *k = kind_find_user("promrule");
	assert_non_null(k);
	assert_string_equal(k->kind, "PrometheusRule");
	assert_true(k->namespaced);
}

static void
test_durations_follow_the_crd_pattern(void **state)
{
	(void)state;
	static const char *const good[] = { "0", "30s", "1h30m", "500ms", "1y2w3d4h5m6s7ms",
		"90m", "1m500ms" };
	static const char *const bad[] = { "", "1 minute", "5", "1.5h", "30s1m", "1h1h", "m",
		"-1s", "1S" };
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_true(monitoring_duration_valid(good[i]));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (monitoring_duration_valid(bad[i]))
			fail_msg("%s accepted", bad[i]);
	expect("  - name: g\n    interval: 1 minute\n    rules:\n"
	    "    - alert: A\n      expr: up\n      for: '5'\n      keep_firing_for: 1h1h\n", false,
	    "spec.groups[0].interval FieldValueInvalid\n"
	    "spec.groups[0].rules[0].for FieldValueInvalid\n"
	    "spec.groups[0].rules[0].keep_firing_for FieldValueInvalid");
}

static void
test_one_of_alert_and_record_and_group_rules(void **state)
{
	(void)state;
	expect("  - name: g\n    rules:\n"
	    "    - {alert: A, record: a:b, expr: up}\n"
	    "    - {expr: up}\n"
	    "    - {record: a:b, expr: up, for: 1m}\n"
	    "    - {alert: A, expr: ''}\n"
	    "  - name: g\n    limit: -1\n    partial_response_strategy: maybe\n"
	    "  - name: ''\n", false,
	    "spec.groups[0].rules[0] FieldValueInvalid\n"
	    "spec.groups[0].rules[1] FieldValueInvalid\n"
	    "spec.groups[0].rules[2].for FieldValueForbidden\n"
	    "spec.groups[0].rules[3].expr FieldValueRequired\n"
	    "spec.groups[1].partial_response_strategy FieldValueInvalid\n"
	    "spec.groups[1].limit FieldValueInvalid\n"
	    "spec.groups[1].name FieldValueDuplicate\n"
	    "spec.groups[2].name FieldValueRequired");
	expect("  - name: g\n    rules:\n    - {alert: A, expr: up, severity: page}\n", false,
	    "spec.groups[0].rules[0].severity FieldValueUnknown");
}

static void
test_promtool_messages_land_on_the_rule_path(void **state)
{
	(void)state;
	expect("  - name: a\n    rules:\n    - {alert: A, expr: up}\n"
	    "  - name: b\n    rules:\n    - {alert: B, expr: up}\n"
	    "    - {alert: C, expr: 'rate(x[5m) > 1'}\n"
	    "    - {record: 'not a name', expr: up}\n"
	    "    - {alert: D, expr: up, labels: {'0bad': x}}\n", true,
	    "spec.groups[1].rules[1].expr FieldValueInvalid\n"
	    "spec.groups[1].rules[2].record FieldValueInvalid\n"
	    "spec.groups[1].rules[3].labels FieldValueInvalid");
	/* the message is promtool's, without the temporary file's name */
	json_t *o = load(HEAD "  - name: b\n    rules:\n    - {alert: C, expr: 'sum(('}\n");
	struct errlist e = { NULL, 0, 0 };
	assert_int_equal(promrules_admit(o, NULL, &e), -EINVAL);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.v[0].message, "promtool check rules: group \"b\", rule 1, "
	    "\"C\": could not parse expression: "));
	assert_null(strstr(e.v[0].message, "/tmp/"));
	errlist_free(&e);
	/* an update that leaves spec alone is not checked again */
	assert_int_equal(promrules_admit(o, o, &e), 0);
	json_decref(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_realistic_rule_validates_and_passes_promtool),
		cmocka_unit_test(test_durations_follow_the_crd_pattern),
		cmocka_unit_test(test_one_of_alert_and_record_and_group_rules),
		cmocka_unit_test(test_promtool_messages_land_on_the_rule_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
