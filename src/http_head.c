/* http_head.c — the strict fast path for complete HTTP/1.1 heads (see
 * http_head.h). http_parser, byte by byte with a callback per piece, was
 * 40 % of the proxy's user-space instructions under bench/proxy; this reads
 * a head in one pass. It says only "in the subset" or "ask http_parser":
 * every check that could reject a request is left to http_parser, so the
 * two never disagree on what is refused (request smuggling lives in such
 * disagreements: conflicting Content-Length, CL with TE, obs-fold, bare CR
 * or LF all leave the fast path). */
#include "http_head.h"

#include <http_parser.h>
#include <string.h>
#include <strings.h>

#define HH_MAX_CLEN_DIGITS	15	/* far below UINT64_MAX: no overflow */

/* Character classes, one lookup per byte: HH_TCHAR (RFC 9110 tchar),
 * HH_TARGET (what an origin-form target may hold in the subset: ALPHA,
 * DIGIT, unreserved, sub-delims, ":@/?%"), HH_TEXT (a header value or
 * reason byte: visible ASCII, SP, HTAB). Generated; 0x80-0xff are in none. */
enum { HH_TCHAR = 1, HH_TARGET = 2, HH_TEXT = 4 };

static const unsigned char cls[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	4, 7, 4, 5, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 4, 6, 4, 6,
	6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 4, 4, 4, 5, 7,
	5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 4, 5, 4, 7, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* 1: the name is `name`; -1: it starts with it (http_parser takes some of
 * those for the header itself: outside the subset); 0: another. */
static int
name_is(const char *b, const struct http_span *s, const char *name, size_t n)
{
	if (s->name_len < n || strncasecmp(b + s->name, name, n) != 0)
		return 0;
	return s->name_len == n ? 1 : -1;
}

static bool
value_is(const char *b, const struct http_span *s, const char *v, size_t n)
{
	return s->value_len == n && strncasecmp(b + s->value, v, n) == 0;
}

static int
method_of(const char *b, size_t n)
{
	static const struct { const char *s; int m; } tab[] = {
		{ "GET", HTTP_GET }, { "HEAD", HTTP_HEAD }, { "POST", HTTP_POST },
		{ "PUT", HTTP_PUT }, { "DELETE", HTTP_DELETE }, { "OPTIONS", HTTP_OPTIONS },
		{ "PATCH", HTTP_PATCH },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strlen(tab[i].s) == n && memcmp(b, tab[i].s, n) == 0)
			return tab[i].m;
	return -1;
}

/* "HTTP/1.0" or "HTTP/1.1" at b: the minor version, or -1. */
static int
version_at(const char *b)
{
	if (memcmp(b, "HTTP/1.", 7) != 0 || (b[7] != '0' && b[7] != '1'))
		return -1;
	return b[7] - '0';
}

/* The request line: METHOD SP target SP version CRLF. Returns the offset
 * after it, or 0. */
static size_t
request_line(const char *b, size_t len, struct http_head *h)
{
	size_t i = 0, t;

	while (i < len && i < 8 && b[i] >= 'A' && b[i] <= 'Z')
		i++;
	if (i == len || b[i] != ' ' || (h->method = method_of(b, i)) < 0)
		return 0;
	t = ++i;
	if (i == len || b[i] != '/')
		return 0;
	while (i < len && (cls[(unsigned char)b[i]] & HH_TARGET))
		i++;
	if (len - i < 11 || b[i] != ' ' || (h->minor = version_at(b + i + 1)) < 0 ||
	    b[i + 9] != '\r' || b[i + 10] != '\n')
		return 0;
	h->start = (uint32_t)t;
	h->start_len = (uint32_t)(i - t);
	return i + 11;
}

/* The status line: version SP 3DIGIT SP reason CRLF. */
static size_t
status_line(const char *b, size_t len, struct http_head *h)
{
	size_t i;

	if (len < 13 || (h->minor = version_at(b)) < 0 || b[8] != ' ' || b[12] != ' ')
		return 0;
	for (i = 9; i < 12; i++)
		if (b[i] < '0' || b[i] > '9')
			return 0;
	h->status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
	if (h->status < 200 || h->status > 599 || h->status == 204 || h->status == 304)
		return 0;
	for (i = 13; i < len && (cls[(unsigned char)b[i]] & HH_TEXT); i++)
		;
	if (len - i < 2 || b[i] != '\r' || b[i + 1] != '\n')
		return 0;
	h->start = 13;
	h->start_len = (uint32_t)(i - 13);
	return i + 2;
}

/* One header line at b[i]: name ":" OWS value CRLF. Returns the offset
 * after it, or 0. */
static size_t
header_line(const char *b, size_t len, size_t i, struct http_span *s)
{
	size_t n = i, v;

	while (i < len && (cls[(unsigned char)b[i]] & HH_TCHAR))
		i++;
	if (i == n || i == len || b[i] != ':')
		return 0;
	s->name = (uint32_t)n;
	s->name_len = (uint32_t)(i - n);
	for (i++; i < len && (b[i] == ' ' || b[i] == '\t'); i++)
		;
	v = i;
	while (i < len && (cls[(unsigned char)b[i]] & HH_TEXT))
		i++;
	if (i == v || len - i < 2 || b[i] != '\r' || b[i + 1] != '\n' ||
	    b[i - 1] == ' ' || b[i - 1] == '\t')
		return 0;
	s->value = (uint32_t)v;
	s->value_len = (uint32_t)(i - v);
	return i + 2;
}

/* Content-Length: digits only. Returns its value or -1. */
static int64_t
clen_of(const char *b, const struct http_span *s)
{
	int64_t v = 0;

	if (s->value_len > HH_MAX_CLEN_DIGITS)
		return -1;
	for (uint32_t i = 0; i < s->value_len; i++) {
		char c = b[s->value + i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	return v;
}

/* What the headers say about framing and the connection. Returns false for
 * anything outside the subset. */
static bool
head_facts(const char *b, bool response, struct http_head *h, const struct http_span *spans)
{
	int conn = 0;	/* 1: close, 2: keep-alive */

	h->clen = -1;
	for (size_t i = 0; i < h->nspans; i++) {
		const struct http_span *s = &spans[i];
		char c = (char)(b[s->name] | 0x20);
		int is;
		if (c != 'c' && c != 't' && c != 'u' && c != 'p')
			continue;	/* most headers: one compare */
		if ((is = name_is(b, s, "content-length", 14)) != 0) {
			if (is < 0 || !response || h->clen >= 0 || (h->clen = clen_of(b, s)) < 0)
				return false;
		} else if ((is = name_is(b, s, "connection", 10)) != 0) {
			if (is < 0 || conn != 0)
				return false;
			if (value_is(b, s, "close", 5))
				conn = 1;
			else if (value_is(b, s, "keep-alive", 10))
				conn = 2;
			else
				return false;
		} else if (name_is(b, s, "transfer-encoding", 17) || name_is(b, s, "upgrade", 7) ||
		    name_is(b, s, "proxy-connection", 16))
			return false;
	}
	if (response && h->clen < 0)
		return false;	/* delimited by the close, or chunked: http_parser */
	h->keep_alive = h->minor == 1 ? conn != 1 : conn == 2;
	return true;
}

long
http_head_parse(const char *b, size_t len, bool response, struct http_head *h,
    struct http_span *spans, size_t cap)
{
	size_t i;

	memset(h, 0, sizeof(*h));
	i = response ? status_line(b, len, h) : request_line(b, len, h);
	if (i == 0)
		return 0;
	for (;;) {
		if (len - i >= 2 && b[i] == '\r' && b[i + 1] == '\n')
			break;
		if (h->nspans == cap || (i = header_line(b, len, i, &spans[h->nspans])) == 0)
			return 0;
		h->nspans++;
	}
	i += 2;
	if (i > UINT32_MAX || !head_facts(b, response, h, spans))
		return 0;
	return (long)i;
}
