/* Unit tests of the AnalysisRun controller's pure parts: arun_decide (phases,
 * counters, limits, scheduling, terminate, args, restart), the measurement
 * judgement, and the prometheus / web answer parsers. No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "util.h"

#define NOW_MS 1800000000000LL

static json_t *
make_run(const char *metric_json, const char *args_json, bool terminate)
{
	json_error_t je;
	json_t *metrics = json_loads(metric_json, 0, &je);
	assert_non_null(metrics);
	json_t *run = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:{s:o, s:b}}",
	    "apiVersion", "argoproj.io/v1alpha1", "kind", "AnalysisRun",
	    "metadata", "name", "run", "namespace", "default", "uid", "u1",
	    "spec", "metrics", metrics, "terminate", terminate);
	if (args_json)
		json_object_set_new(json_object_get(run, "spec"), "args",
		    json_loads(args_json, 0, &je));
	return run;
}

/* Runs one decision and stores its status back into run (as the watch
 * layer's write does); returns the decision (caller frees). */
static struct arun_decision
step(json_t *run, int64_t now, const struct arun_outcome *outs, size_t n)
{
	struct arun_decision d;
	assert_int_equal(arun_decide(run, now, outs, n, &d), 0);
	json_object_set(run, "status", d.status);
	return d;
}

static struct arun_outcome
ok_num(const char *metric, double v, int64_t at, json_t **hold)
{
	*hold = json_real(v);
	return (struct arun_outcome){ .metric = metric, .kind = ARUN_OK, .result = *hold,
		.started_ms = at - 5, .finished_ms = at };
}

static const json_t *
result_of(const json_t *run, size_t i)
{
	return json_array_get(json_object_get(json_object_get(run, "status"),
	    "metricResults"), i);
}

static json_int_t
counter(const json_t *run, size_t i, const char *key)
{
	return json_integer_value(json_object_get(result_of(run, i), key));
}

static const char *
run_phase(const json_t *run)
{
	return json_string_value(json_object_get(json_object_get(run, "status"), "phase"));
}

static const char *
run_message(const json_t *run)
{
	const char *s = json_string_value(json_object_get(json_object_get(run, "status"),
	    "message"));
	return s ? s : "";
}

static void
test_first_decision_starts_and_measures(void **state)
{
	(void)state;
	json_t *run = make_run("[{\"name\":\"m\",\"interval\":\"1s\",\"count\":3,"
	    "\"successCondition\":\"result > 0.9\",\"provider\":{\"web\":{\"url\":\"x\"}}}]",
	    NULL, false);
	struct arun_decision d = step(run, NOW_MS, NULL, 0);
	assert_string_equal(run_phase(run), "Running");
	assert_false(d.completed);
	assert_string_equal(json_string_value(json_object_get(d.status, "startedAt")),
	    "2027-01-15T08:00:00.000Z");
	assert_string_equal(json_string_value(json_object_get(result_of(run, 0), "phase")),
	    "Pending");
	assert_int_equal(json_array_size(d.measure), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(d.measure, 0),
	    "name")), "m");
	arun_decision_free(&d);
	json_decref(run);
}

static void
test_initial_delay_and_interval_schedule(void **state)
{
	(void)state;
	json_t *run = make_run("[{\"name\":\"m\",\"interval\":\"2s\",\"initialDelay\":\"5s\","
	    "\"count\":2,\"provider\":{\"web\":{\"url\":\"x\"}}}]", NULL, false);
	struct arun_decision d = step(run, NOW_MS, NULL, 0);
	assert_int_equal(json_array_size(d.measure), 0);
	assert_int_equal(d.requeue_ms, 5000);
	arun_decision_free(&d);
	d = step(run, NOW_MS + 5000, NULL, 0);
	assert_int_equal(json_array_size(d.measure), 1);
	arun_decision_free(&d);
	json_t *h;
	struct arun_outcome o = ok_num("m", 1, NOW_MS + 5300, &h);
	d = step(run, NOW_MS + 5300, &o, 1);
	/* the next one is due interval after the last finished, to the ms */
	assert_int_equal(json_array_size(d.measure), 0);
	assert_int_equal(d.requeue_ms, 2000);
	assert_string_equal(json_string_value(json_object_get(result_of(run, 0), "phase")),
	    "Running");
	arun_decision_free(&d);
	json_decref(h);
	json_decref(run);
}

static void
test_count_reached_is_successful_with_event(void **state)
{
	(void)state;
	json_t *run = make_run("[{\"name\":\"m\",\"interval\":\"1s\",\"count\":\"2\","
	    "\"successCondition\":\"result > 0.9\",\"provider\":{\"web\":{\"url\":\"x\"}}}]",
	    NULL, false);
	json_t *h1, *h2;
	struct arun_outcome o1 = ok_num("m", 0.95, NOW_MS + 10, &h1);
	struct arun_outcome o2 = ok_num("m", 0.99, NOW_MS + 1100, &h2);
	struct arun_decision d = step(run, NOW_MS, NULL, 0);
	arun_decision_free(&d);
	d = step(run, NOW_MS + 10, &o1, 1);
	assert_false(d.completed);
	arun_decision_free(&d);
	d = step(run, NOW_MS + 1100, &o2, 1);
	assert_true(d.completed);
	assert_string_equal(run_phase(run), "Successful");
	assert_string_equal(d.event_type, "Normal");
	assert_string_equal(d.event_reason, "AnalysisRunSuccessful");
	assert_int_equal(counter(run, 0, "count"), 2);
	assert_int_equal(counter(run, 0, "successful"), 2);
	assert_int_equal(json_array_size(d.measure), 0);
	const json_t *m0 = json_array_get(json_object_get(result_of(run, 0), "measurements"), 0);
	assert_string_equal(json_string_value(json_object_get(m0, "value")), "0.95");
	assert_string_equal(json_string_value(json_object_get(m0, "phase")), "Successful");
	const json_t *sum = json_object_get(json_object_get(run, "status"), "runSummary");
	assert_int_equal(json_integer_value(json_object_get(sum, "successful")), 1);
	arun_decision_free(&d);
	/* a final run stays as it is */
	d = step(run, NOW_MS + 99999, &o2, 1);
	assert_false(d.completed);
	assert_int_equal(counter(run, 0, "count"), 2);
	arun_decision_free(&d);
	json_decref(h1);
	json_decref(h2);
	json_decref(run);
}

static void
test_failure_limit(void **state)
{
	(void)state;
	json_t *run = make_run("[{\"name\":\"m\",\"interval\":\"1s\",\"count\":5,"
	    "\"failureLimit\":1,\"successCondition\":\"result > 0.9\","
	    "\"provider\":{\"web\":{\"url\":\"x\"}}}]", NULL, false);
	json_t *h;
	struct arun_outcome o = ok_num("m", 0.5, NOW_MS + 10, &h);
	struct arun_decision d = step(run, NOW_MS, &o, 1);
	assert_string_equal(run_phase(run), "Running");	/* 1 failure is allowed */
	arun_decision_free(&d);
	o.finished_ms = NOW_MS + 1100;
	d = step(run, NOW_MS + 1100, &o, 1);
	assert_true(d.completed);
	assert_string_equal(run_phase(run), "Failed");
	assert_string_equal(run_message(run),
	    "Metric \"m\" assessed Failed due to failed (2) > failureLimit (1)");
	assert_string_equal(d.event_type, "Warning");
	assert_int_equal(counter(run, 0, "failed"), 2);
	assert_int_equal(counter(run, 0, "count"), 2);
	arun_decision_free(&d);
	json_decref(h);
	json_decref(run);
}

static void
test_no_data_is_inconclusive(void **state)
{
	(void)state;
	json_t *run = make_run("[{\"name\":\"m\",\"successCondition\":\"result > 0.9\","
	    "\"provider\":{\"v6\":{\"service\":\"s\",\"metric\":\"successRate\"}}}]",
	    NULL, false);
	struct arun_outcome o = { .metric = "m", .kind = ARUN_NODATA,
		.message = "v6: no requests", .started_ms = NOW_MS, .finished_ms = NOW_MS + 1 };
	struct arun_decision d = step(run, NOW_MS, &o, 1);
	assert_true(d.completed);
	assert_string_equal(run_phase(run), "Inconclusive");
	assert_int_equal(counter(run, 0, "inconclusive"), 1);
	assert_non_null(strstr(run_message(run), "inconclusive (1) > inconclusiveLimit (0)"));
	assert_non_null(strstr(run_message(run), "v6: no requests"));
	arun_decision_free(&d);
	json_decref(run);
}

static void
test_consecutive_errors_then_error_phase(void **state)
{
	(void)state;
	json_t *run = make_run("[{\"name\":\"m\",\"interval\":\"30s\",\"count\":2,"
	    "\"consecutiveErrorLimit\":1,\"provider\":{\"web\":{\"url\":\"x\"}}}]", NULL, false);
	struct arun_outcome o = { .metric = "m", .kind = ARUN_ERROR,
		.message = "connection refused", .started_ms = NOW_MS, .finished_ms = NOW_MS };
	struct arun_decision d = step(run, NOW_MS, &o, 1);
	assert_string_equal(run_phase(run), "Running");
	/* an error is retried after min(interval, 10 s) */
	assert_int_equal(d.requeue_ms, 10000);
	assert_int_equal(counter(run, 0, "count"), 0);
	assert_int_equal(counter(run, 0, "error"), 1);
	arun_decision_free(&d);
	o.finished_ms = NOW_MS + 10000;
	d = step(run, NOW_MS + 10000, &o, 1);
	assert_string_equal(run_phase(run), "Error");
	assert_string_equal(run_message(run), "Metric \"m\" assessed Error due to "
	    "consecutiveErrors (2) > consecutiveErrorLimit (1): \"Error Message: "
	    "connection refused\"");
	arun_decision_free(&d);
	json_decref(run);
}

static void
test_default_error_limit_is_four_and_success_resets(void **state)
{
	(void)state;
	json_t *run = make_run("[{\"name\":\"m\",\"interval\":\"1s\",\"count\":9,"
	    "\"provider\":{\"web\":{\"url\":\"x\"}}}]", NULL, false);
	struct arun_outcome e = { .metric = "m", .kind = ARUN_ERROR, .message = "x" };
	json_t *h;
	struct arun_outcome ok = ok_num("m", 1, NOW_MS, &h);
	struct arun_decision d;
	for (int i = 0; i < 4; i++) {
		d = step(run, NOW_MS, &e, 1);
		arun_decision_free(&d);
	}
	assert_string_equal(run_phase(run), "Running");
	d = step(run, NOW_MS, &ok, 1);
	arun_decision_free(&d);
	assert_int_equal(counter(run, 0, "consecutiveError"), 0);
	for (int i = 0; i < 5; i++) {
		d = step(run, NOW_MS, &e, 1);
		arun_decision_free(&d);
	}
	assert_string_equal(run_phase(run), "Error");
	assert_int_equal(counter(run, 0, "error"), 9);
	json_decref(h);
	json_decref(run);
}

static void
test_terminate_indefinite_metric(void **state)
{
	(void)state;
	json_t *run = make_run("[{\"name\":\"m\",\"interval\":\"1s\","
	    "\"successCondition\":\"result > 0.9\",\"provider\":{\"web\":{\"url\":\"x\"}}}]",
	    NULL, false);
	json_t *h;
	struct arun_outcome o = ok_num("m", 1, NOW_MS, &h);
	struct arun_decision d;
	for (int i = 0; i < 12; i++) {
		d = step(run, NOW_MS + i * 1000, &o, 1);
		assert_string_equal(run_phase(run), "Running");
		arun_decision_free(&d);
	}
	/* only the last 10 measurements are kept; the counters count all */
	assert_int_equal(json_array_size(json_object_get(result_of(run, 0), "measurements")),
	    10);
	assert_int_equal(counter(run, 0, "count"), 12);
	json_object_set_new(json_object_get(run, "spec"), "terminate", json_true());
	json_t *h2;
	struct arun_outcome late = ok_num("m", 0.1, NOW_MS + 20000, &h2);
	d = step(run, NOW_MS + 20000, &late, 1);
	assert_true(d.completed);
	assert_string_equal(run_phase(run), "Successful");
	assert_string_equal(run_message(run), "Run Terminated");
	assert_int_equal(counter(run, 0, "failed"), 0);	/* landed after terminate */
	arun_decision_free(&d);
	json_decref(h);
	json_decref(h2);
	json_decref(run);
}

static void
test_terminate_after_only_errors_is_error(void **state)
{
	(void)state;
	json_t *run = make_run("[{\"name\":\"m\",\"interval\":\"1s\","
	    "\"provider\":{\"web\":{\"url\":\"x\"}}}]", NULL, false);
	struct arun_outcome e = { .metric = "m", .kind = ARUN_ERROR, .message = "refused" };
	struct arun_decision d = step(run, NOW_MS, &e, 1);
	arun_decision_free(&d);
	d = step(run, NOW_MS, &e, 1);
	arun_decision_free(&d);
	json_object_set_new(json_object_get(run, "spec"), "terminate", json_true());
	d = step(run, NOW_MS, NULL, 0);
	assert_string_equal(run_phase(run), "Error");
	assert_non_null(strstr(run_message(run), "all 2 measurements errored"));
	arun_decision_free(&d);
	json_decref(run);
}

static void
test_failed_metric_stops_the_others(void **state)
{
	(void)state;
	json_t *run = make_run("[{\"name\":\"a\",\"successCondition\":\"result > 0.9\","
	    "\"provider\":{\"web\":{\"url\":\"x\"}}},"
	    "{\"name\":\"b\",\"interval\":\"1s\",\"provider\":{\"web\":{\"url\":\"y\"}}}]",
	    NULL, false);
	json_t *h1, *h2;
	struct arun_outcome o[2] = { ok_num("b", 1, NOW_MS, &h1), ok_num("a", 0.1, NOW_MS, &h2) };
	struct arun_decision d = step(run, NOW_MS, o, 2);
	assert_true(d.completed);
	assert_string_equal(run_phase(run), "Failed");
	assert_string_equal(json_string_value(json_object_get(result_of(run, 0), "phase")),
	    "Failed");
	assert_string_equal(json_string_value(json_object_get(result_of(run, 1), "phase")),
	    "Successful");
	arun_decision_free(&d);
	json_decref(h1);
	json_decref(h2);
	json_decref(run);
}

static void
test_args_resolved_or_error(void **state)
{
	(void)state;
	json_t *run = make_run("[{\"name\":\"m\",\"successCondition\":\"result == {{args.want}}\","
	    "\"provider\":{\"web\":{\"url\":\"http://{{args.host}}/ok\"}}}]",
	    "[{\"name\":\"host\",\"value\":\"h:1\"},{\"name\":\"want\",\"value\":\"7\"}]", false);
	struct arun_decision d = step(run, NOW_MS, NULL, 0);
	const json_t *m = json_array_get(d.measure, 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(m,
	    "provider"), "web"), "url")), "http://h:1/ok");
	assert_string_equal(json_string_value(json_object_get(m, "successCondition")),
	    "result == 7");
	arun_decision_free(&d);
	json_decref(run);

	run = make_run("[{\"name\":\"m\",\"provider\":{\"web\":{\"url\":\"{{args.nope}}\"}}}]",
	    "[]", false);
	d = step(run, NOW_MS, NULL, 0);
	assert_true(d.completed);
	assert_string_equal(run_phase(run), "Error");
	assert_string_equal(run_message(run),
	    "unable to resolve metric arguments: failed to resolve {{args.nope}}");
	arun_decision_free(&d);
	json_decref(run);

	char *out = NULL, *err = NULL;
	json_error_t je;
	json_t *args = json_loads("[{\"name\":\"a\",\"value\":\"1\"},{\"name\":\"b\"}]", 0, &je);
	assert_int_equal(arun_subst_args("x{{args.a}}y{{args.a}}", args, &out, &err), 0);
	assert_string_equal(out, "x1y1");
	free(out);
	assert_int_equal(arun_subst_args("{{args.b}}", args, &out, &err), -ENOENT);
	assert_string_equal(err, "failed to resolve {{args.b}}: the arg has no value");
	free(err);
	json_decref(args);
}

/* A restarted server decides from the stored status alone: nothing counted
 * twice, the schedule continues from the last finishedAt. */
static void
test_resume_from_stored_status(void **state)
{
	(void)state;
	json_t *run = make_run("[{\"name\":\"m\",\"interval\":\"2s\",\"count\":3,"
	    "\"provider\":{\"web\":{\"url\":\"x\"}}}]", NULL, false);
	json_t *h;
	struct arun_outcome o = ok_num("m", 1, NOW_MS + 500, &h);
	struct arun_decision d = step(run, NOW_MS, &o, 1);
	arun_decision_free(&d);
	char *text = json_dumps(run, JSON_COMPACT);
	json_t *reloaded = json_loads(text, 0, NULL);
	free(text);
	d = step(reloaded, NOW_MS + 1000, NULL, 0);
	assert_int_equal(counter(reloaded, 0, "count"), 1);
	assert_int_equal(json_array_size(d.measure), 0);
	assert_int_equal(d.requeue_ms, 1500);
	assert_true(json_equal(json_object_get(run, "status"), d.status));
	arun_decision_free(&d);
	json_decref(h);
	json_decref(reloaded);
	json_decref(run);
}

static void
test_measurement_phase_table(void **state)
{
	(void)state;
	static const struct {
		const char *succ, *fail;
		double v;
		const char *want;
	} cases[] = {
		{ NULL, NULL, 0, "Successful" },
		{ "result > 1", NULL, 2, "Successful" },
		{ "result > 1", NULL, 0, "Failed" },
		{ NULL, "result > 1", 2, "Failed" },
		{ NULL, "result > 1", 0, "Successful" },
		{ "result > 5", "result < 1", 3, "Inconclusive" },
		{ "result > 5", "result < 1", 0, "Failed" },
		{ "result > 5", "result < 1", 9, "Successful" },
		{ "result.nope > 5", NULL, 9, "Error" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *m = json_object();
		if (cases[i].succ)
			json_object_set_new(m, "successCondition", json_string(cases[i].succ));
		if (cases[i].fail)
			json_object_set_new(m, "failureCondition", json_string(cases[i].fail));
		json_t *r = json_real(cases[i].v);
		struct arun_outcome o = { .metric = "m", .kind = ARUN_OK, .result = r };
		char *msg = NULL;
		const char *got = arun_measurement_phase(m, &o, &msg);
		if (strcmp(got, cases[i].want))
			fail_msg("case %zu: %s, want %s (%s)", i, got, cases[i].want,
			    msg ? msg : "");
		if (!strcmp(got, "Error"))
			assert_non_null(strstr(msg, "successCondition"));
		free(msg);
		json_decref(r);
		json_decref(m);
	}
}

static void
test_prometheus_answers(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		enum arun_outcome_kind kind;
		const char *value_or_msg;
	} cases[] = {
		{ "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
		  "{\"metric\":{},\"value\":[1.5,\"0.99\"]},{\"metric\":{},\"value\":[1.5,\"2\"]}]}}",
		  ARUN_OK, "[0.99,2]" },
		{ "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"42.5\"]}}",
		  ARUN_OK, "42.5" },
		{ "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}",
		  ARUN_NODATA, "prometheus: the query returned an empty vector (no data)" },
		{ "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
		  "{\"metric\":{},\"value\":[1,\"NaN\"]}]}}",
		  ARUN_NODATA, "prometheus: the query returned NaN (no data)" },
		{ "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"NaN\"]}}",
		  ARUN_NODATA, "prometheus: the query returned NaN (no data)" },
		{ "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error\"}",
		  ARUN_ERROR, "prometheus: bad_data: parse error" },
		{ "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}",
		  ARUN_ERROR, "prometheus: result type \"matrix\" is not supported (vector or "
		  "scalar expected)" },
		{ "<html>", ARUN_ERROR, NULL },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *res = NULL;
		char *value = NULL, *msg = NULL;
		enum arun_outcome_kind k = arun_prom_result(cases[i].body, strlen(cases[i].body),
		    &res, &value, &msg);
		assert_int_equal(k, cases[i].kind);
		if (cases[i].value_or_msg)
			assert_string_equal(k == ARUN_OK ? value : msg, cases[i].value_or_msg);
		if (k == ARUN_OK)
			assert_non_null(res);
		else
			assert_non_null(msg);
		json_decref(res);
		free(value);
		free(msg);
	}
}

static void
test_json_path(void **state)
{
	(void)state;
	json_error_t je;
	json_t *doc = json_loads("{\"data\":{\"ok\":true,\"list\":[{\"v\":3}],"
	    "\"a.b\":\"dot\"}}", 0, &je);
	char *err = NULL;
	assert_true(json_is_true(arun_json_path(doc, "{$.data.ok}", &err)));
	assert_int_equal(json_integer_value(arun_json_path(doc, "$.data.list[0].v", &err)), 3);
	assert_int_equal(json_integer_value(arun_json_path(doc, ".data.list[-1].v", &err)), 3);
	assert_string_equal(json_string_value(arun_json_path(doc, "{.data['a.b']}", &err)), "dot");
	assert_ptr_equal(arun_json_path(doc, "{$}", &err), doc);
	assert_null(arun_json_path(doc, "{$.data.missing}", &err));
	assert_string_equal(err, "jsonPath {$.data.missing}: missing is not found");
	free(err);
	assert_null(arun_json_path(doc, "$.data.list[4]", &err));
	assert_non_null(strstr(err, "out of range"));
	free(err);
	json_decref(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_decision_starts_and_measures),
		cmocka_unit_test(test_initial_delay_and_interval_schedule),
		cmocka_unit_test(test_count_reached_is_successful_with_event),
		cmocka_unit_test(test_failure_limit),
		cmocka_unit_test(test_no_data_is_inconclusive),
		cmocka_unit_test(test_consecutive_errors_then_error_phase),
		cmocka_unit_test(test_default_error_limit_is_four_and_success_resets),
		cmocka_unit_test(test_terminate_indefinite_metric),
		cmocka_unit_test(test_terminate_after_only_errors_is_error),
		cmocka_unit_test(test_failed_metric_stops_the_others),
		cmocka_unit_test(test_args_resolved_or_error),
		cmocka_unit_test(test_resume_from_stored_status),
		cmocka_unit_test(test_measurement_phase_table),
		cmocka_unit_test(test_prometheus_answers),
		cmocka_unit_test(test_json_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
