/* Unit tests of http_head.c, the strict fast path of head parsing: the
 * heads it takes and what it reads from them, and the request-smuggling
 * shapes it must leave to http_parser (which then answers 400 or reads them
 * its own way): conflicting or repeated Content-Length, Content-Length with
 * Transfer-Encoding, obs-fold, bare CR or LF, invalid tokens, header names
 * that http_parser matches by prefix. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <http_parser.h>
#include <string.h>

#include "http_head.h"

#define CAP 16

static long
parse(const char *s, bool response, struct http_head *h, struct http_span *spans)
{
	return http_head_parse(s, strlen(s), response, h, spans, CAP);
}

static void
assert_declined(const char *s, bool response)
{
	struct http_span spans[CAP];
	struct http_head h;

	if (parse(s, response, &h, spans) != 0)
		fail_msg("fast path took: %s", s);
}

static void
test_request_taken(void **state)
{
	static const char req[] = "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
	    "User-Agent: wrk\r\nX-Empty-Ok:  v  v\r\n\r\nGET / HTTP/1.1\r\n";
	struct http_span spans[CAP];
	struct http_head h;
	long n;

	(void)state;
	n = parse(req, false, &h, spans);
	assert_int_equal(n, strstr(req, "\r\n\r\n") + 4 - req);
	assert_int_equal(h.method, HTTP_GET);
	assert_int_equal(h.minor, 1);
	assert_true(h.keep_alive);
	assert_int_equal(h.clen, -1);
	assert_int_equal(h.start_len, strlen("/a/b?x=1&y=%20"));
	assert_memory_equal(req + h.start, "/a/b?x=1&y=%20", h.start_len);
	assert_int_equal(h.nspans, 3);
	assert_memory_equal(req + spans[0].name, "Host", spans[0].name_len);
	assert_memory_equal(req + spans[0].value, "127.0.0.1:8080", spans[0].value_len);
	assert_memory_equal(req + spans[2].value, "v  v", spans[2].value_len);

	assert_true(parse("HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false, &h, spans) > 0);
	assert_int_equal(h.method, HTTP_HEAD);
	assert_true(h.keep_alive);
	assert_true(parse("GET / HTTP/1.0\r\n\r\n", false, &h, spans) > 0);
	assert_false(h.keep_alive);
	assert_true(parse("GET / HTTP/1.1\r\nconnection: CLOSE\r\n\r\n", false, &h, spans) > 0);
	assert_false(h.keep_alive);
}

static void
test_response_taken(void **state)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: 87\r\n\r\n{";
	struct http_span spans[CAP];
	struct http_head h;

	(void)state;
	assert_int_equal(parse(resp, true, &h, spans), strlen(resp) - 1);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.clen, 87);
	assert_true(h.keep_alive);
	assert_memory_equal(resp + h.start, "OK", h.start_len);
	assert_true(parse("HTTP/1.0 503 Busy\r\nContent-Length: 0\r\n\r\n", true, &h, spans) > 0);
	assert_false(h.keep_alive);
	assert_int_equal(h.clen, 0);
}

static void
test_incomplete_declined(void **state)
{
	(void)state;
	assert_declined("GET / HTTP/1.1\r\nHost: x\r\n", false);
	assert_declined("GET / HTTP/1.1\r\nHost: x\r\n\r", false);
	assert_declined("GET / HTT", false);
	assert_declined("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", true);
}

static void
test_smuggling_declined(void **state)
{
	(void)state;
	/* framing */
	assert_declined("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", false);
	assert_declined("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", true);
	assert_declined("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", true);
	assert_declined("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", true);
	assert_declined("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true);
	assert_declined("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", false);
	assert_declined("HTTP/1.1 200 OK\r\nTransfer-EncodingX: chunked\r\n"
	    "Content-Length: 3\r\n\r\n", true);
	assert_declined("HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n", true);
	assert_declined("HTTP/1.1 200 OK\r\nContent-Length: 3 \r\n\r\n", true);
	assert_declined("HTTP/1.1 200 OK\r\nContent-Length: 3,3\r\n\r\n", true);
	assert_declined("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", true);
	assert_declined("HTTP/1.1 200 OK\r\n\r\n", true);	/* delimited by the close */
	assert_declined("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", true);
	assert_declined("HTTP/1.1 101 Switching\r\nContent-Length: 0\r\n\r\n", true);
	/* line structure */
	assert_declined("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", false);	/* obs-fold */
	assert_declined("GET / HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n", false);
	assert_declined("GET / HTTP/1.1\nHost: x\r\n\r\n", false);	/* bare LF */
	assert_declined("GET / HTTP/1.1\r\nHost: x\n\r\n", false);
	assert_declined("GET / HTTP/1.1\r\nHost: x\r\n\n", false);
	assert_declined("GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n", false);	/* bare CR */
	assert_declined("GET / HTTP/1.1\r\nHost: x\r\r\n\r\n", false);
	assert_declined("HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n", true);
	/* tokens and values */
	assert_declined("GET / HTTP/1.1\r\nHost : x\r\n\r\n", false);
	assert_declined("GET / HTTP/1.1\r\nHo(st: x\r\n\r\n", false);
	assert_declined("GET / HTTP/1.1\r\n: x\r\n\r\n", false);
	assert_declined("GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", false);
	assert_declined("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", false);
	assert_declined("GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n", false);
	assert_declined("GET / HTTP/1.1\r\nX:\r\n\r\n", false);
	assert_declined("G@T / HTTP/1.1\r\n\r\n", false);
	assert_declined("FOO / HTTP/1.1\r\n\r\n", false);
	assert_declined("CONNECT h:443 HTTP/1.1\r\n\r\n", false);
	assert_declined("GET  / HTTP/1.1\r\n\r\n", false);
	assert_declined("GET / HTTP/1.1 \r\n\r\n", false);
	assert_declined("GET /a b HTTP/1.1\r\n\r\n", false);
	assert_declined("GET /a#f HTTP/1.1\r\n\r\n", false);
	assert_declined("GET http://h/ HTTP/1.1\r\n\r\n", false);
	assert_declined("GET / HTTP/2.0\r\n\r\n", false);
	assert_declined("GET / HTTP/1.2\r\n\r\n", false);
	assert_declined("HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", true);
	assert_declined("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", true);
	/* connection semantics http_parser reads by tokens */
	assert_declined("GET / HTTP/1.1\r\nConnection: close, upgrade\r\n\r\n", false);
	assert_declined("GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: ws\r\n\r\n", false);
	assert_declined("GET / HTTP/1.1\r\nConnection: close\r\nConnection: close\r\n\r\n", false);
	assert_declined("GET / HTTP/1.1\r\nProxy-Connection: close\r\n\r\n", false);
	assert_declined("GET / HTTP/1.1\r\nConnectionX: close\r\n\r\n", false);
}

static void
test_too_many_headers_declined(void **state)
{
	char req[1024] = "GET / HTTP/1.1\r\n";

	(void)state;
	for (int i = 0; i < CAP + 1; i++)
		strcat(req, "X: y\r\n");
	strcat(req, "\r\n");
	assert_declined(req, false);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_taken),
		cmocka_unit_test(test_response_taken),
		cmocka_unit_test(test_incomplete_declined),
		cmocka_unit_test(test_smuggling_declined),
		cmocka_unit_test(test_too_many_headers_declined),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
