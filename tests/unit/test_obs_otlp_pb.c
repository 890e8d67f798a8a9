/* test_obs_otlp_pb.c — the OTLP protobuf encoding: a small
 * ExportTraceServiceRequest byte for byte against the wire format worked out
 * by hand from the .proto field numbers, a span from V6's own span builder
 * (events, every attribute type) transcoded, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "obs_otlp.h"

static void
assert_bytes(const struct buf *b, const unsigned char *want, size_t n)
{
	assert_int_equal(b->len, n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)b->data[i] != want[i])
			fail_msg("byte %zu: 0x%02x, want 0x%02x", i, (unsigned char)b->data[i], want[i]);
}

static bool
has_bytes(const struct buf *b, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i + n <= b->len; i++)
		if (memcmp(b->data + i, p, n) == 0)
			return true;
	return false;
}

static void
test_request_bytes_as_the_wire_format_says(void **state)
{
	static const char json[] = "{\"resourceSpans\":[{\"resource\":{\"attributes\":"
	    "[{\"key\":\"a\",\"value\":{\"intValue\":\"-1\"}}]},\"scopeSpans\":[{\"scope\":"
	    "{\"name\":\"s\"},\"spans\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
	    "\"spanId\":\"1112131415161718\",\"name\":\"n\",\"kind\":2,"
	    "\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"2\",\"attributes\":[],"
	    "\"status\":{\"code\":2}}]}]}]}";
	static const unsigned char want[] = {
		0x0a, 0x54,				/* resource_spans (1), 84 bytes */
		  0x0a, 0x12,				/* resource (1), 18 */
		    0x0a, 0x10,				/* attributes (1): KeyValue, 16 */
		      0x0a, 0x01, 'a',			/* key (1) */
		      0x12, 0x0b,			/* value (2): AnyValue, 11 */
		        0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
		  0x12, 0x3e,				/* scope_spans (2), 62 */
		    0x0a, 0x03, 0x0a, 0x01, 's',	/* scope (1): name (1) */
		    0x12, 0x37,				/* spans (2), 55 */
		      0x0a, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
		      0x12, 0x08, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
		      0x2a, 0x01, 'n',			/* name (5) */
		      0x30, 0x02,			/* kind (6): SERVER */
		      0x39, 1, 0, 0, 0, 0, 0, 0, 0,	/* start (7), fixed64 */
		      0x41, 2, 0, 0, 0, 0, 0, 0, 0,	/* end (8) */
		      0x7a, 0x02, 0x18, 0x02,		/* status (15): code (3) ERROR */
	};
	struct buf b = BUF_INIT;
	(void)state;
	assert_int_equal(otlp_pb_from_json(json, strlen(json), &b), 0);
	assert_bytes(&b, want, sizeof want);
	buf_free(&b);
}

/* V6's span builder's output, as the exporter batches it. */
static void
test_span_from_the_builder_transcodes(void **state)
{
	struct otlp_ids ids = { 0x4bf92f3577b34da6ull, 0xa3ce929d0e0e4736ull,
		0x00f067aa0ba902b7ull, 0x1122334455667788ull };
	struct buf s = BUF_INIT, req = BUF_INIT, pb = BUF_INIT;
	(void)state;
	otlp_span_begin(&s, &ids, "v=1", "GET /x", OTLP_KIND_CLIENT, 1000, 2000);
	otlp_attr_cstr(&s, "http.request.method", "GET");
	otlp_attr_int(&s, "http.response.status_code", 503);
	otlp_attr_double(&s, "w", 0.5);
	otlp_span_events(&s);
	otlp_event_begin(&s, "moved", 1500);
	otlp_attr_int(&s, "argoproj.rollout.step", 2);
	otlp_event_end(&s);
	otlp_span_end(&s, OTLP_STATUS_ERROR, "boom", true);
	buf_puts(&req, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[]},\"scopeSpans\":"
	    "[{\"scope\":{\"name\":\"v6.proxy\",\"version\":\"1\"},\"spans\":[");
	buf_append(&req, s.data, s.len);
	buf_puts(&req, "]}]}]}");
	assert_int_equal(otlp_pb_from_json(req.data, req.len, &pb), 0);
	static const unsigned char trace_id[] = { 0x0a, 0x10, 0x4b, 0xf9, 0x2f, 0x35, 0x77,
		0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36 };
	static const unsigned char parent[] = { 0x22, 0x08, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
		0x77, 0x88 };
	static const unsigned char state_[] = { 0x1a, 0x03, 'v', '=', '1' };
	static const unsigned char kind[] = { 0x30, 0x03 };
	static const unsigned char start[] = { 0x39, 0xe8, 0x03, 0, 0, 0, 0, 0, 0 };
	static const unsigned char code[] = { 0x12, 0x03, 0x18, 0xf7, 0x03 };	/* int 503 */
	static const unsigned char half[] = { 0x21, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f };
	static const unsigned char ev_time[] = { 0x09, 0xdc, 0x05, 0, 0, 0, 0, 0, 0 };
	static const unsigned char status[] = { 0x7a, 0x08, 0x12, 0x04, 'b', 'o', 'o', 'm',
		0x18, 0x02 };
	const struct { const unsigned char *p; size_t n; } want[] = {
		{ trace_id, sizeof trace_id }, { parent, sizeof parent },
		{ state_, sizeof state_ }, { kind, sizeof kind }, { start, sizeof start },
		{ code, sizeof code }, { half, sizeof half }, { ev_time, sizeof ev_time },
		{ status, sizeof status },
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		if (!has_bytes(&pb, want[i].p, want[i].n))
			fail_msg("piece %zu missing", i);
	buf_free(&s);
	buf_free(&req);
	buf_free(&pb);
}

static void
test_bad_requests_refused(void **state)
{
	static const char *const bad[] = {
		"not json",
		"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"zz\"}]}]}]}",
		"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"spanId\":\"0102\"}]}]}]}",
		"{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":\"x1\"}]}]}]}",
		"{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"k\",\"value\":"
		    "{\"bytesValue\":\"AA==\"}}]}}]}",
	};
	struct buf b = BUF_INIT;
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(otlp_pb_from_json(bad[i], strlen(bad[i]), &b), -EINVAL);
	/* an empty request is an empty message */
	assert_int_equal(otlp_pb_from_json("{\"resourceSpans\":[]}", 20, &b), 0);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_bytes_as_the_wire_format_says),
		cmocka_unit_test(test_span_from_the_builder_transcodes),
		cmocka_unit_test(test_bad_requests_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
