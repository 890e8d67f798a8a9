/* test_trace.c — the pure parts of tracing: W3C traceparent parsing and
 * formatting (the spec's valid and invalid cases), the ratio sampler, span
 * ids from the proxy's generator, the OTLP JSON encoding of a span (parsed
 * back with jansson and checked field by field against the proto3 JSON
 * mapping) and the exporter URL rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "obs_otlp.h"
#include "proxy_int.h"
#include "proxy_trace.h"

static void
test_traceparent_valid(void **state)
{
	struct w3c_parent p;
	char out[56];

	(void)state;
	assert_int_equal(w3c_parent_parse(
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &p), 0);
	assert_true(p.trace_hi == 0x4bf92f3577b34da6ull && p.trace_lo == 0xa3ce929d0e0e4736ull);
	assert_true(p.parent_id == 0x00f067aa0ba902b7ull);
	assert_int_equal(p.flags, 1);
	w3c_parent_format(out, &p);
	assert_string_equal(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	/* not sampled */
	assert_int_equal(w3c_parent_parse(
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &p), 0);
	assert_int_equal(p.flags, 0);
	/* a future version may be longer, after a '-' (W3C: parse what you know) */
	assert_int_equal(w3c_parent_parse(
	    "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds",
	    &p), 0);
	assert_int_equal(w3c_parent_parse(
	    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", &p), 0);
	assert_int_equal(p.flags, 9);
}

static void
test_traceparent_invalid(void **state)
{
	static const char *const bad[] = {
		"",
		"00",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",	/* version ff */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",	/* zero trace */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",	/* zero parent */
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",	/* upper case */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",	/* bad flags */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",	/* 00 is 55 long */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
		"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",	/* short id */
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",	/* separators */
		"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
		"0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",	/* version hex */
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.x",	/* future: '-' */
		" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	};
	struct w3c_parent p;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(w3c_parent_parse(bad[i], &p), -EINVAL);
	assert_int_equal(w3c_parent_parse(NULL, &p), -EINVAL);
}

static void
test_sampler(void **state)
{
	struct proxy_engine *e;
	unsigned n = 0;

	(void)state;
	assert_false(trace_ratio_sampled(0, ~0ull));
	assert_false(trace_ratio_sampled(0, 0));
	assert_true(trace_ratio_sampled(1, ~0ull));
	assert_true(trace_ratio_sampled(1, 0));
	/* the decision is a function of the id: the same id, the same answer */
	assert_true(trace_ratio_sampled(0.5, 0x0010000000000000ull));
	assert_false(trace_ratio_sampled(0.5, 0x00f0000000000000ull));
	assert_true(trace_ratio_sampled(0.5, 0xff10000000000000ull));	/* top byte ignored */
	e = proxy_engine_new(uv_default_loop());
	for (int i = 0; i < 100000; i++)
		n += trace_ratio_sampled(0.01, px_random(e));
	assert_in_range(n, 800, 1200);		/* 1000 expected, sd ~31 */
	proxy_engine_free(e);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}

static void
test_span_ids_unique_and_nonzero(void **state)
{
	struct proxy_engine *e = proxy_engine_new(uv_default_loop());
	struct px_endpoint ep = { .revision = "abc123" };
	struct px_tracer *t = proxy_tracer_new(NULL, 1);	/* no span ends: no exporter */
	uint64_t seen[2000];

	(void)state;
	proxy_engine_set_tracer(e, t);
	for (size_t i = 0; i < ARRAY_SIZE(seen); i++) {
		struct px_tspan ts = { .sampled = true };
		px_trace_attempt(e, &ts, &ep);
		assert_true(ts.client_id != 0 && ts.client_open);
		assert_string_equal(ts.revision, "abc123");
		for (size_t j = 0; j < i; j++)
			assert_true(seen[j] != ts.client_id);
		seen[i] = ts.client_id;
	}
	proxy_engine_set_tracer(e, NULL);
	proxy_tracer_free(t);
	proxy_engine_free(e);
	uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}

static void
test_forwarded_header(void **state)
{
	struct px_tspan ts = { .trace_hi = 0x4bf92f3577b34da6ull, .trace_lo = 0xa3ce929d0e0e4736ull,
		.client_id = 0x1234, .sampled = false };
	struct buf b = BUF_INIT;
	struct px_trace_ids ids;

	(void)state;
	px_trace_put_header(&b, &ts);
	assert_string_equal(b.data,
	    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000001234-00\r\n");
	buf_reset(&b);
	ts.sampled = true;
	px_trace_put_header(&b, &ts);
	assert_string_equal(b.data,
	    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000001234-01\r\n");
	buf_free(&b);
	px_trace_ids(&ts, &ids);	/* for log records */
	assert_string_equal(ids.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(ids.span_id, "0000000000001234");
}

static const char *
attr_of(json_t *attrs, const char *key, const char *kind)
{
	size_t i;
	json_t *kv;

	json_array_foreach(attrs, i, kv)
		if (!strcmp(json_string_value(json_object_get(kv, "key")), key)) {
			json_t *v = json_object_get(json_object_get(kv, "value"), kind);
			return json_is_string(v) ? json_string_value(v) : v ? "<non-string>" : NULL;
		}
	return NULL;
}

static void
test_span_json_encoding(void **state)
{
	struct otlp_ids ids = { 0x4bf92f3577b34da6ull, 0xa3ce929d0e0e4736ull, 0xabcdefull,
		0x00f067aa0ba902b7ull };
	struct buf b = BUF_INIT;
	json_error_t err;
	json_t *j, *a, *ev;
	char big[3000];

	(void)state;
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	otlp_span_begin(&b, &ids, "k=v", "GET /a\"b", OTLP_KIND_SERVER, 1700000000000000001ull,
	    1700000000000000002ull);
	otlp_attr_cstr(&b, "http.request.method", "GET");
	otlp_attr_int(&b, "http.response.status_code", 503);
	otlp_attr_cstr(&b, "url.path", "/p\n\x01\xff\"\\");	/* control, invalid UTF-8 */
	otlp_attr_cstr(&b, "user_agent.original", big);
	otlp_attr_double(&b, "ratio", 0.25);
	otlp_attr_int(&b, "neg", -9223372036854775807LL - 1);
	otlp_span_events(&b);
	otlp_event_begin(&b, "step", 1700000000000000001ull);
	otlp_attr_cstr(&b, "message", "m");
	otlp_event_end(&b);
	otlp_span_end(&b, OTLP_STATUS_ERROR, "boom", true);
	j = json_loads(b.data, 0, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "traceId")),
	    "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(json_string_value(json_object_get(j, "spanId")), "0000000000abcdef");
	assert_string_equal(json_string_value(json_object_get(j, "parentSpanId")),
	    "00f067aa0ba902b7");
	assert_string_equal(json_string_value(json_object_get(j, "traceState")), "k=v");
	assert_string_equal(json_string_value(json_object_get(j, "name")), "GET /a\"b");
	assert_int_equal(json_integer_value(json_object_get(j, "kind")), 2);	/* enum as int */
	assert_string_equal(json_string_value(json_object_get(j, "startTimeUnixNano")),
	    "1700000000000000001");	/* fixed64 as a decimal string */
	a = json_object_get(j, "attributes");
	assert_string_equal(attr_of(a, "http.request.method", "stringValue"), "GET");
	assert_string_equal(attr_of(a, "http.response.status_code", "intValue"), "503");
	assert_string_equal(attr_of(a, "url.path", "stringValue"), "/p\n\x01\xef\xbf\xbd\"\\");
	assert_int_equal(strlen(attr_of(a, "user_agent.original", "stringValue")),
	    OTLP_VALUE_MAX);
	assert_string_equal(attr_of(a, "ratio", "doubleValue"), "<non-string>");
	assert_string_equal(attr_of(a, "neg", "intValue"), "-9223372036854775808");
	ev = json_array_get(json_object_get(j, "events"), 0);
	assert_string_equal(json_string_value(json_object_get(ev, "name")), "step");
	assert_string_equal(json_string_value(json_object_get(ev, "timeUnixNano")),
	    "1700000000000000001");
	assert_string_equal(attr_of(json_object_get(ev, "attributes"), "message", "stringValue"),
	    "m");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "status"), "code")),
	    2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "status"),
	    "message")), "boom");
	json_decref(j);

	/* a root span has no parentSpanId; no events list: still valid JSON */
	buf_reset(&b);
	ids.parent_id = 0;
	otlp_span_begin(&b, &ids, NULL, "GET", OTLP_KIND_CLIENT, 5, 4);
	otlp_span_end(&b, OTLP_STATUS_UNSET, NULL, false);
	j = json_loads(b.data, 0, &err);
	assert_non_null(j);
	assert_null(json_object_get(j, "parentSpanId"));
	assert_null(json_object_get(j, "traceState"));
	assert_string_equal(json_string_value(json_object_get(j, "endTimeUnixNano")), "5");
	json_decref(j);
	buf_free(&b);
}

static void
test_urls_and_ratio(void **state)
{
	char *u;
	double r;

	(void)state;
	u = otlp_traces_url("http://c:4318");
	assert_string_equal(u, "http://c:4318/v1/traces");
	free(u);
	u = otlp_traces_url("http://c:4318/");
	assert_string_equal(u, "http://c:4318/v1/traces");
	free(u);
	u = otlp_traces_url("http://c:4318/custom/v1/traces");
	assert_string_equal(u, "http://c:4318/custom/v1/traces");
	free(u);
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318", 1);
	unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
	u = otlp_endpoint_from(NULL);
	assert_string_equal(u, "http://env:4318/v1/traces");
	free(u);
	u = otlp_endpoint_from("http://flag:1");
	assert_string_equal(u, "http://flag:1/v1/traces");
	free(u);
	setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/x", 1);
	u = otlp_endpoint_from(NULL);
	assert_string_equal(u, "http://t:1/x");	/* the signal's own: as given */
	free(u);
	unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	unsetenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
	assert_null(otlp_endpoint_from(NULL));
	assert_int_equal(otlp_ratio_parse("0.01", &r), 0);
	assert_true(r == 0.01);
	assert_int_equal(otlp_ratio_parse("1", &r), 0);
	assert_int_equal(otlp_ratio_parse("1.5", &r), -EINVAL);
	assert_int_equal(otlp_ratio_parse("-0.1", &r), -EINVAL);
	assert_int_equal(otlp_ratio_parse("x", &r), -EINVAL);
	assert_int_equal(otlp_ratio_parse("nan", &r), -EINVAL);
}

/* The exporter drops what does not fit its queue and counts it. */
static void
test_exporter_queue_bound(void **state)
{
	struct otlp_config cfg = { .endpoint = "http://127.0.0.1:1", .max_queue = 4,
		.max_batch = 4, .delay_ms = 60000, .timeout_ms = 100 };
	struct otlp_exporter *x;
	struct otlp_stats st;
	bool done = false;

	(void)state;
	assert_int_equal(otlp_start(uv_default_loop(), &cfg, &x), 0);
	for (int i = 0; i < 3; i++)
		assert_true(otlp_add(x, "[]", 2, "{}", 2));
	otlp_get_stats(x, &st);
	assert_int_equal(st.queue_len, 3);
	assert_true(otlp_add(x, "[]", 2, "{}", 2));	/* 4: a full batch goes */
	for (int i = 0; i < 10; i++)
		otlp_add(x, "[]", 2, "{}", 2);
	otlp_get_stats(x, &st);
	assert_int_equal(st.queue_len, 8);		/* 4 in flight + 4 waiting */
	assert_int_equal(st.dropped_full, 6);
	otlp_stop(x, &done);
	for (int i = 0; i < 100 && !done; i++)
		uv_run(uv_default_loop(), UV_RUN_ONCE);
	assert_true(done);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_traceparent_valid),
		cmocka_unit_test(test_traceparent_invalid),
		cmocka_unit_test(test_sampler),
		cmocka_unit_test(test_span_ids_unique_and_nonzero),
		cmocka_unit_test(test_forwarded_header),
		cmocka_unit_test(test_span_json_encoding),
		cmocka_unit_test(test_urls_and_ratio),
		cmocka_unit_test(test_exporter_queue_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
