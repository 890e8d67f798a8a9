/* spdy.c — SPDY/3.1 framing for the server side of kubectl's
 * port-forward session: control frames (SYN_STREAM, SYN_REPLY, RST_STREAM,
 * SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE) and data frames, header
 * blocks compressed with zlib over the protocol's dictionary (one inflate
 * and one deflate context per session, as the spec requires). Flow control
 * windows are neither sent nor enforced: kubectl's spdystream does neither.
 * Owned by node_portforward.c. */
#include "spdy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util.h"

enum { SYN_STREAM = 1, SYN_REPLY = 2, RST_STREAM = 3, SETTINGS = 4, PING = 6, GOAWAY = 7,
	HEADERS = 8, WINDOW_UPDATE = 9 };
enum { FLAG_FIN = 0x01 };

#define SPDY_VERSION		3
#define SPDY_MAX_FRAME		(1u << 24)	/* 24-bit length */
#define SPDY_DATA_CHUNK		(64u << 10)
#define SPDY_MAX_HEADERS	64
#define SPDY_MAX_BLOCK		(64u << 10)	/* an inflated header block */

struct spdy {
	const struct spdy_ops *ops;
	void *arg;
	struct buf in;			/* bytes not yet a whole frame */
	z_stream inf, def;
	bool inf_ok, def_ok;
	bool failed;
};

/* The dictionary: the length-prefixed words, then a run of plain text
 * (draft-mbelshe-httpbis-spdy-00, 2.6.10.1). Built once; its length is a
 * known constant, checked. */
static const char *const dict_words[] = {
	"options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
	"accept-encoding", "accept-language", "accept-ranges", "age", "allow",
	"authorization", "cache-control", "connection", "content-base", "content-encoding",
	"content-language", "content-length", "content-location", "content-md5",
	"content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
	"if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since",
	"last-modified", "location", "max-forwards", "pragma", "proxy-authenticate",
	"proxy-authorization", "range", "referer", "retry-after", "server", "te", "trailer",
	"transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
	"www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
	"public", "set-cookie", "keep-alive", "origin",
};
static const char dict_tail[] =
	"100101201202205206300302303304305306307402405406407408409410411412413414415416417"
	"502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
	"400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
	"501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept "
	"Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,"
	"image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
	"text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8"
	"charset=iso-8859-1,utf-,*,enq=0.";
#define SPDY_DICT_LEN	1423

const unsigned char *
spdy_dictionary(size_t *len)
{
	static unsigned char dict[SPDY_DICT_LEN];
	static size_t n;
	if (n == 0) {
		size_t k = 0;
		for (size_t i = 0; i < ARRAY_SIZE(dict_words); i++) {
			size_t wl = strlen(dict_words[i]);
			BUG_ON(k + 4 + wl > sizeof dict);
			dict[k++] = 0;
			dict[k++] = 0;
			dict[k++] = 0;
			dict[k++] = (unsigned char)wl;
			memcpy(dict + k, dict_words[i], wl);
			k += wl;
		}
		BUG_ON(k + sizeof dict_tail - 1 != sizeof dict);
		memcpy(dict + k, dict_tail, sizeof dict_tail - 1);
		n = sizeof dict;
	}
	*len = n;
	return dict;
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

struct spdy *
spdy_new(const struct spdy_ops *ops, void *arg)
{
	struct spdy *s = xcalloc(1, sizeof *s);
	size_t dl;
	const unsigned char *dict = spdy_dictionary(&dl);
	s->ops = ops;
	s->arg = arg;
	s->inf_ok = inflateInit(&s->inf) == Z_OK;
	s->def_ok = deflateInit(&s->def, Z_DEFAULT_COMPRESSION) == Z_OK &&
	    deflateSetDictionary(&s->def, dict, (uInt)dl) == Z_OK;
	return s;
}

void
spdy_free(struct spdy *s)
{
	if (!s)
		return;
	if (s->inf_ok)
		inflateEnd(&s->inf);
	if (s->def_ok)
		deflateEnd(&s->def);
	buf_free(&s->in);
	free(s);
}

/* One frame: h's first 5 bytes as given, then the 24-bit length, body. */
static void
emit(struct spdy *s, unsigned char h[8], const void *body, size_t len)
{
	h[5] = (unsigned char)(len >> 16);
	h[6] = (unsigned char)(len >> 8);
	h[7] = (unsigned char)len;
	struct buf b = BUF_INIT;
	buf_append(&b, h, 8);
	buf_append(&b, body, len);
	s->ops->write(s->arg, b.data, b.len);
	buf_free(&b);
}

static void
control(struct spdy *s, int type, int flags, const unsigned char *body, size_t len)
{
	unsigned char h[8] = { 0x80, SPDY_VERSION, 0, (unsigned char)type,
		(unsigned char)flags };
	emit(s, h, body, len);
}

/* Inflates a header block into out (the session's context: every block
 * must pass through it, in order). */
static int
inflate_block(struct spdy *s, const unsigned char *p, size_t len, struct buf *out)
{
	size_t dl;
	const unsigned char *dict = spdy_dictionary(&dl);
	unsigned char chunk[4096];
	if (!s->inf_ok)
		return -EPROTO;
	s->inf.next_in = (unsigned char *)p;
	s->inf.avail_in = (uInt)len;
	for (;;) {
		s->inf.next_out = chunk;
		s->inf.avail_out = sizeof chunk;
		int rc = inflate(&s->inf, Z_SYNC_FLUSH);
		if (rc == Z_NEED_DICT) {
			if (inflateSetDictionary(&s->inf, dict, (uInt)dl) != Z_OK)
				return -EPROTO;
			continue;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return -EPROTO;
		buf_append(out, chunk, sizeof chunk - s->inf.avail_out);
		if (out->len > SPDY_MAX_BLOCK)
			return -EPROTO;
		if (s->inf.avail_in == 0 && s->inf.avail_out != 0)
			return 0;
		if (rc == Z_BUF_ERROR && s->inf.avail_in == 0)
			return 0;
	}
}

/* Splits an inflated block into headers: names and values copied,
 * NUL-terminated, into arena (at least b's size: each string's 4-byte
 * length makes room for its terminator). Returns the count or -EPROTO. */
static int
parse_block(const struct buf *b, char *arena, struct spdy_header *h, size_t max)
{
	const unsigned char *p = (const unsigned char *)b->data;
	size_t len = b->len, off = 4, n = 0, used = 0;
	if (len < 4)
		return -EPROTO;
	uint32_t count = be32(p);
	for (uint32_t i = 0; i < count; i++) {
		const char *kv[2];
		for (int k = 0; k < 2; k++) {
			if (len - off < 4)
				return -EPROTO;
			uint32_t l = be32(p + off);
			if (len - off - 4 < l)
				return -EPROTO;
			memcpy(arena + used, p + off + 4, l);
			arena[used + l] = '\0';
			kv[k] = arena + used;
			used += l + 1;
			off += 4 + l;
		}
		if (n < max) {
			h[n].name = kv[0];
			h[n].value = kv[1];
			n++;
		}
	}
	return (int)n;
}

static int
on_syn_stream(struct spdy *s, const unsigned char *p, size_t len)
{
	struct spdy_header h[SPDY_MAX_HEADERS];
	struct buf block = BUF_INIT;
	if (len < 10)
		return -EPROTO;
	uint32_t id = be32(p) & 0x7fffffff;
	int n = inflate_block(s, p + 10, len - 10, &block);
	char *arena = xmalloc(block.len + 1);
	if (n == 0)
		n = parse_block(&block, arena, h, ARRAY_SIZE(h));
	if (n >= 0)
		s->ops->stream(s, id, h, (size_t)n, s->arg);
	free(arena);
	buf_free(&block);
	return n < 0 ? n : 0;
}

/* One whole frame. */
static int
frame(struct spdy *s, const unsigned char *f, size_t len)
{
	int flags = f[4];
	const unsigned char *p = f + 8;
	if (!(f[0] & 0x80)) {
		s->ops->data(s, be32(f) & 0x7fffffff, (const char *)p, len, flags & FLAG_FIN,
		    s->arg);
		return 0;
	}
	if (((f[0] & 0x7f) << 8 | f[1]) != SPDY_VERSION)
		return -EPROTO;
	struct buf ignored = BUF_INIT;
	int rc = 0;
	switch (f[2] << 8 | f[3]) {
	case SYN_STREAM:
		return on_syn_stream(s, p, len);
	case RST_STREAM:
		if (len < 8)
			return -EPROTO;
		s->ops->reset(s, be32(p) & 0x7fffffff, s->arg);
		return 0;
	case PING:
		if (len < 4)
			return -EPROTO;
		control(s, PING, 0, p, 4);
		return 0;
	case GOAWAY:
		return -EPROTO;		/* the client is leaving: end */
	case HEADERS:
	case SYN_REPLY:
		/* kept in step with the client's compressor, else unused */
		if (len < 4)
			return -EPROTO;
		rc = inflate_block(s, p + 4, len - 4, &ignored);
		buf_free(&ignored);
		return rc;
	default:			/* SETTINGS, WINDOW_UPDATE, unknown */
		return 0;
	}
}

int
spdy_input(struct spdy *s, const char *data, size_t len)
{
	if (s->failed)
		return -EPROTO;
	buf_append(&s->in, data, len);
	size_t off = 0;
	const unsigned char *b = (const unsigned char *)s->in.data;
	while (s->in.len - off >= 8) {
		size_t flen = (size_t)b[off + 5] << 16 | (size_t)b[off + 6] << 8 | b[off + 7];
		if (s->in.len - off - 8 < flen)
			break;
		if (frame(s, b + off, flen) < 0) {
			s->failed = true;
			return -EPROTO;
		}
		off += 8 + flen;
	}
	memmove(s->in.data, s->in.data + off, s->in.len - off);
	s->in.len -= off;
	return 0;
}

void
spdy_reply(struct spdy *s, uint32_t id, bool fin)
{
	unsigned char body[4 + 64], zero[4] = { 0 };
	put32(body, id & 0x7fffffff);
	s->def.next_in = zero;
	s->def.avail_in = sizeof zero;
	s->def.next_out = body + 4;
	s->def.avail_out = sizeof body - 4;
	if (!s->def_ok || deflate(&s->def, Z_SYNC_FLUSH) != Z_OK || s->def.avail_in != 0) {
		spdy_reset(s, id, 1);
		return;
	}
	control(s, SYN_REPLY, fin ? FLAG_FIN : 0, body, sizeof body - s->def.avail_out);
}

void
spdy_data(struct spdy *s, uint32_t id, const char *data, size_t len, bool fin)
{
	do {
		size_t n = len > SPDY_DATA_CHUNK ? SPDY_DATA_CHUNK : len;
		bool last = n == len;
		unsigned char h[8];
		put32(h, id & 0x7fffffff);
		h[4] = last && fin ? FLAG_FIN : 0;
		emit(s, h, data, n);
		data += n;
		len -= n;
	} while (len > 0);
}

void
spdy_reset(struct spdy *s, uint32_t id, uint32_t status)
{
	unsigned char body[8];
	put32(body, id & 0x7fffffff);
	put32(body + 4, status);
	control(s, RST_STREAM, 0, body, sizeof body);
}
