/* fuzz_head.c — libFuzzer target for src/http_head.c, the fast path of head
 * parsing, against http_parser, the parser it stands in for. Byte 0 picks a
 * request (even) or a response (odd); the rest is the head.
 *
 * Oracle: whenever http_head_parse() takes a head, http_parser reads the same
 * bytes the same way: no error, the head ends at the same byte, the same
 * method or status, version, request target or reason, the same header
 * names and values at the same offsets, the same Content-Length, not
 * chunked, no upgrade, the same keep-alive verdict, and a request's message
 * ends with its head (no body). So the fast path never accepts what
 * http_parser refuses (the smuggling cases: conflicting Content-Length,
 * CL with TE, obs-fold, bare CR or LF, bad tokens) nor reads it otherwise. */
#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 32

struct ref {
	const char *base;
	uint32_t start, start_len;
	struct http_span spans[CAP + 1];
	size_t nspans;
	bool value_last, head_done, msg_done, overflow;
};

static int
on_start(http_parser *p, const char *at, size_t len)
{
	struct ref *r = p->data;

	if (r->start_len == 0)
		r->start = (uint32_t)(at - r->base);
	else if (at != r->base + r->start + r->start_len)
		abort();	/* pieces of one span are contiguous */
	r->start_len += (uint32_t)len;
	return 0;
}

static int
on_field(http_parser *p, const char *at, size_t len)
{
	struct ref *r = p->data;

	if (r->nspans == 0 || r->value_last) {
		if (r->nspans == CAP + 1) {
			r->overflow = true;
			return 0;
		}
		r->spans[r->nspans].name = (uint32_t)(at - r->base);
		r->spans[r->nspans].name_len = 0;
		r->spans[r->nspans].value = r->spans[r->nspans].value_len = 0;
		r->nspans++;
		r->value_last = false;
	}
	if (!r->overflow)
		r->spans[r->nspans - 1].name_len += (uint32_t)len;
	return 0;
}

static int
on_value(http_parser *p, const char *at, size_t len)
{
	struct ref *r = p->data;
	struct http_span *s;

	if (r->overflow)
		return 0;
	s = &r->spans[r->nspans - 1];
	if (!r->value_last) {
		s->value = (uint32_t)(at - r->base);
		r->value_last = true;
	}
	s->value_len = (uint32_t)(at + len - (r->base + s->value));
	return 0;
}

static int
on_headers_complete(http_parser *p)
{
	((struct ref *)p->data)->head_done = true;
	http_parser_pause(p, 1);
	return 0;
}

static int
on_message_complete(http_parser *p)
{
	((struct ref *)p->data)->msg_done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_url = on_start,
	.on_status = on_start,
	.on_header_field = on_field,
	.on_header_value = on_value,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

static void
check(const char *b, size_t len, bool response, const struct http_head *h,
    const struct http_span *spans, long n)
{
	http_parser p;
	struct ref r = { .base = b };
	size_t got;

	http_parser_init(&p, response ? HTTP_RESPONSE : HTTP_REQUEST);
	p.data = &r;
	got = http_parser_execute(&p, &settings, b, len);
	if (HTTP_PARSER_ERRNO(&p) != HPE_PAUSED || !r.head_done || got + 1 != (size_t)n)
		abort();
	if (p.http_major != 1 || p.http_minor != h->minor || (p.flags & F_CHUNKED) || p.upgrade)
		abort();
	if (r.start != h->start || r.start_len != h->start_len || r.nspans != h->nspans ||
	    r.overflow)
		abort();
	if (memcmp(r.spans, spans, h->nspans * sizeof(*spans)) != 0)
		abort();
	if (response) {
		if (p.status_code != h->status || p.content_length != (uint64_t)h->clen)
			abort();
	} else {
		if (p.method != h->method || p.content_length != UINT64_MAX || h->clen != -1)
			abort();
	}
	if ((http_should_keep_alive(&p) != 0) != h->keep_alive)
		abort();
	if (!response) {
		/* no body: the message ends with the head */
		http_parser_pause(&p, 0);
		http_parser_execute(&p, &settings, b + got, (size_t)n - got);
		if (!r.msg_done || HTTP_PARSER_ERRNO(&p) != HPE_PAUSED)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_span spans[CAP];
	struct http_head h;
	bool response;
	char *b;
	long n;

	if (size < 1)
		return 0;
	response = data[0] & 1;
	size--;
	b = malloc(size ? size : 1);	/* exact size: ASan sees any over-read */
	memcpy(b, data + 1, size);
	n = http_head_parse(b, size, response, &h, spans, CAP);
	if (n < 0 || (size_t)n > size)
		abort();
	if (n > 0)
		check(b, size, response, &h, spans, n);
	free(b);
	return 0;
}
