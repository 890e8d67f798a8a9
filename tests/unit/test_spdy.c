/* Unit tests of spdy.c against a client made here with zlib the way
 * kubectl's spdystream frames: SYN_STREAMs whose header blocks share one
 * deflate context primed with the SPDY/3 dictionary, fed in odd-sized
 * pieces; data with FIN; PING echoed; the SYN_REPLY's header block inflates
 * with the dictionary on the client's side; a corrupt block is a session
 * error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "spdy.h"
#include "util.h"

struct seen {
	struct buf out;			/* bytes the session wrote */
	uint32_t stream;		/* last stream opened */
	char type[32], port[16], reqid[16];
	size_t nheaders;
	struct buf data;
	bool fin;
	uint32_t reset;
};

static void
w_out(void *arg, const char *data, size_t len)
{
	buf_append(&((struct seen *)arg)->out, data, len);
}

static void
w_stream(struct spdy *s, uint32_t id, const struct spdy_header *h, size_t n, void *arg)
{
	struct seen *x = arg;
	(void)s;
	x->stream = id;
	x->nheaders = n;
	for (size_t i = 0; i < n; i++) {
		char *dst = strcmp(h[i].name, "streamtype") == 0 ? x->type :
		    strcmp(h[i].name, "port") == 0 ? x->port :
		    strcmp(h[i].name, "requestid") == 0 ? x->reqid : NULL;
		if (dst)
			snprintf(dst, 16, "%s", h[i].value);
	}
}

static void
w_data(struct spdy *s, uint32_t id, const char *data, size_t len, bool fin, void *arg)
{
	struct seen *x = arg;
	(void)s;
	(void)id;
	buf_append(&x->data, data, len);
	x->fin = fin;
}

static void
w_reset(struct spdy *s, uint32_t id, void *arg)
{
	(void)s;
	((struct seen *)arg)->reset = id;
}

static const struct spdy_ops ops = { w_out, w_stream, w_data, w_reset };

static void
put32(struct buf *b, uint32_t v)
{
	unsigned char p[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
		(unsigned char)(v >> 8), (unsigned char)v };
	buf_append(b, p, 4);
}

static void
put_str(struct buf *b, const char *s)
{
	put32(b, (uint32_t)strlen(s));
	buf_puts(b, s);
}

/* A SYN_STREAM as spdystream sends it, compressed by the client's z. */
static void
syn_stream(z_stream *z, struct buf *out, uint32_t id, const char *type, const char *port,
    const char *reqid)
{
	struct buf block = BUF_INIT, frame = BUF_INIT;
	unsigned char zout[1024];
	put32(&block, 3);
	put_str(&block, "port");
	put_str(&block, port);
	put_str(&block, "requestid");
	put_str(&block, reqid);
	put_str(&block, "streamtype");
	put_str(&block, type);
	z->next_in = (unsigned char *)block.data;
	z->avail_in = (uInt)block.len;
	z->next_out = zout;
	z->avail_out = sizeof zout;
	assert_int_equal(deflate(z, Z_SYNC_FLUSH), Z_OK);
	size_t zlen = sizeof zout - z->avail_out;
	unsigned char head[8] = { 0x80, 3, 0, 1, 0 };
	size_t len = 10 + zlen;
	head[5] = (unsigned char)(len >> 16);
	head[6] = (unsigned char)(len >> 8);
	head[7] = (unsigned char)len;
	buf_append(&frame, head, 8);
	put32(&frame, id);
	put32(&frame, 0);
	buf_append(&frame, "\0\0", 2);
	buf_append(&frame, zout, zlen);
	buf_append(out, frame.data, frame.len);
	buf_free(&block);
	buf_free(&frame);
}

static void
feed(struct spdy *s, const struct buf *b)
{
	/* in pieces of 7: frames never arrive whole */
	for (size_t off = 0; off < b->len; off += 7)
		assert_int_equal(spdy_input(s, b->data + off, b->len - off < 7 ? b->len - off : 7),
		    0);
}

static void
test_dictionary_is_spdy3s(void **state)
{
	(void)state;
	size_t n;
	const unsigned char *d = spdy_dictionary(&n);
	assert_int_equal(n, 1423);
	assert_memory_equal(d, "\0\0\0\x07options\0\0\0\x04head", 15);
	assert_memory_equal(d + n - 6, "enq=0.", 6);
	/* zlib's id of the dictionary, which the client's stream names */
	assert_int_equal(adler32(1, d, (uInt)n), 0xe3c6a7c2);
}

static void
test_streams_data_ping_and_reply(void **state)
{
	(void)state;
	struct seen x = { 0 };
	struct spdy *s = spdy_new(&ops, &x);
	z_stream z = { 0 };
	size_t dl;
	const unsigned char *dict = spdy_dictionary(&dl);
	assert_int_equal(deflateInit(&z, Z_DEFAULT_COMPRESSION), Z_OK);
	assert_int_equal(deflateSetDictionary(&z, dict, (uInt)dl), Z_OK);
	struct buf in = BUF_INIT;
	syn_stream(&z, &in, 1, "error", "8080", "0");
	feed(s, &in);
	assert_int_equal(x.stream, 1);
	assert_string_equal(x.type, "error");
	/* the second block continues the same compression context */
	buf_reset(&in);
	syn_stream(&z, &in, 3, "data", "8080", "0");
	unsigned char data[8 + 5] = { 0, 0, 0, 3, 0x01, 0, 0, 5, 'h', 'e', 'l', 'l', 'o' };
	buf_append(&in, data, sizeof data);
	unsigned char ping[12] = { 0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 9 };
	buf_append(&in, ping, sizeof ping);
	feed(s, &in);
	assert_int_equal(x.stream, 3);
	assert_int_equal(x.nheaders, 3);
	assert_string_equal(x.type, "data");
	assert_string_equal(x.port, "8080");
	assert_string_equal(x.reqid, "0");
	assert_int_equal(x.data.len, 5);
	assert_memory_equal(x.data.data, "hello", 5);
	assert_true(x.fin);
	assert_int_equal(x.out.len, sizeof ping);	/* the PING, echoed */
	assert_memory_equal(x.out.data, ping, sizeof ping);

	/* SYN_REPLY: its block inflates on the client's side to 0 headers */
	buf_reset(&x.out);
	spdy_reply(s, 3, false);
	const unsigned char *r = (const unsigned char *)x.out.data;
	assert_true(x.out.len > 12);
	assert_int_equal(r[0], 0x80);
	assert_int_equal(r[3], 2);
	assert_int_equal((size_t)(r[5] << 16 | r[6] << 8 | r[7]), x.out.len - 8);
	assert_int_equal(r[11], 3);
	z_stream inf = { 0 };
	unsigned char block[64];
	assert_int_equal(inflateInit(&inf), Z_OK);
	inf.next_in = (unsigned char *)x.out.data + 12;
	inf.avail_in = (uInt)(x.out.len - 12);
	inf.next_out = block;
	inf.avail_out = sizeof block;
	assert_int_equal(inflate(&inf, Z_SYNC_FLUSH), Z_NEED_DICT);
	assert_int_equal(inflateSetDictionary(&inf, dict, (uInt)dl), Z_OK);
	assert_int_equal(inflate(&inf, Z_SYNC_FLUSH), Z_OK);
	assert_int_equal(sizeof block - inf.avail_out, 4);
	assert_memory_equal(block, "\0\0\0\0", 4);
	inflateEnd(&inf);

	/* data frames to the client: split at 64 KiB, FIN on the last */
	buf_reset(&x.out);
	char *big = xcalloc(1, 70000);
	spdy_data(s, 3, big, 70000, true);
	r = (const unsigned char *)x.out.data;
	assert_int_equal(x.out.len, 70000 + 16);
	assert_int_equal(r[4], 0);
	assert_int_equal(r[8 + 65536 + 4], 0x01);
	free(big);
	deflateEnd(&z);
	buf_free(&in);
	buf_free(&x.out);
	buf_free(&x.data);
	spdy_free(s);
}

static void
test_corrupt_header_block_fails_the_session(void **state)
{
	(void)state;
	struct seen x = { 0 };
	struct spdy *s = spdy_new(&ops, &x);
	unsigned char f[8 + 10 + 4] = { 0x80, 3, 0, 1, 0, 0, 0, 14, 0, 0, 0, 1 };
	memcpy(f + 18, "\xde\xad\xbe\xef", 4);
	assert_int_equal(spdy_input(s, (const char *)f, sizeof f), -EPROTO);
	assert_int_equal(x.stream, 0);
	spdy_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dictionary_is_spdy3s),
		cmocka_unit_test(test_streams_data_ping_and_reply),
		cmocka_unit_test(test_corrupt_header_block_fails_the_session),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
