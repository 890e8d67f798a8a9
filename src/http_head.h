/* http_head.h — the fast path of V6's HTTP/1.1 head parsing: a complete
 * request or response head in a strict subset of the grammar, read in one
 * pass with no callbacks. Anything outside the subset is not an error here:
 * the caller hands the same bytes to http_parser, which accepts or rejects
 * them as before. So the fast path can only be stricter than http_parser,
 * never more lenient (tests/fuzz/fuzz_head.c checks that every head it takes
 * reads the same under http_parser). Used by http.c (requests) and
 * proxy_upstream.c (responses). */
#ifndef V6_HTTP_HEAD_H
#define V6_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where a header sits in the buffer: offsets from its start. */
struct http_span {
	uint32_t name, name_len;
	uint32_t value, value_len;
};

struct http_head {
	int method;		/* enum http_method (requests) */
	int status;		/* 200..599 but 204 and 304 (responses) */
	int minor;		/* HTTP/1.minor: 0 or 1 */
	bool keep_alive;	/* as http_should_keep_alive() would say */
	int64_t clen;		/* Content-Length; -1: none (requests only) */
	uint32_t start, start_len;	/* request target, or reason phrase */
	size_t nspans;
};

/* Parses the head at b[0, len). Returns its length (through the blank
 * line) when it is complete and in the subset, with h and spans[0, cap)
 * filled; 0 otherwise (incomplete, outside the subset, more than cap
 * headers): the caller then uses http_parser.
 *
 * The subset: methods GET HEAD POST PUT DELETE OPTIONS PATCH; an origin-form
 * target of unreserved, sub-delims, ":@/?%" only; HTTP/1.0 or HTTP/1.1;
 * every line ends in CRLF (no bare CR or LF, no obs-fold); header names are
 * tokens; values are visible ASCII, SP and HTAB, with no whitespace at
 * either end; Connection only "close" or "keep-alive"; no Upgrade,
 * Transfer-Encoding or Proxy-Connection. A request has no Content-Length (no
 * body); a response has exactly one, all digits, and a status that
 * allows a body. */
long http_head_parse(const char *b, size_t len, bool response, struct http_head *h,
    struct http_span *spans, size_t cap);

#endif
