/* http.c — V6's one HTTP/1.1 server stack: a libuv TCP listener, one
 * explicit state machine per connection (enum conn_state + switch, as in
 * relayd), http-parser for the wire format (http_head.c reads the common
 * bodiless request head in one pass first), keep-alive, strict in-order
 * pipelining, limits answered with 400/408/413/417/431/503, and chunked
 * streaming for watches. Used by the API server, later by the proxy and
 * the probes; http.h is the contract.
 *
 * Memory: each connection owns one request object (struct hreq) that is
 * reused for every request on it: the read buffer holds the request head,
 * which is NUL-terminated in place, so a request costs at most one
 * allocation (the read buffer, given back while the connection is idle so
 * that idle keep-alive connections stay small). When the client leaves
 * while a handler holds the request, the
 * request (with its buffers) is handed to the handler, which frees it by
 * finishing it.
 *
 * TLS (cfg.tls_ctx): OpenSSL runs over memory BIOs between the socket and
 * the same state machine: ciphertext is read into one scratch buffer and
 * fed to the SSL object, plaintext lands in the request's read buffer as
 * plain bytes would, and every write is encrypted before net_send. A plain
 * connection never touches any of it. */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "http_head.h"
#include "log.h"
#include "net.h"
#include "util.h"

#define HTTP_DEF_MAX_HEADER	(64 * 1024)
#define HTTP_DEF_MAX_BODY	(3 * 1024 * 1024)
#define HTTP_DEF_HEADER_MS	10000
#define HTTP_DEF_IDLE_MS	120000
#define HTTP_DEF_MAX_CONNS	10000
#define HTTP_LINGER_MS		1000	/* after our FIN, wait this long for the client's */
#define HTTP_RBUF_INIT		4096
#define HTTP_RBUF_SLACK		1024	/* grow the read buffer when less is free */
#define HTTP_BODY_KEEP		(64 * 1024)	/* body buffer kept between requests */
#define HTTP_BACKLOG		511
#define HTTP_DRAIN_IDLE_MS	1000	/* draining: a connection idle this long closes */
#define HTTP_SPARES		64	/* idle connections' buffers kept per server */
#define HTTP_TLS_RBUF		(64 * 1024)	/* ciphertext scratch, one per thread */
#define HTTP_TLS_FLUSH		(256 * 1024)	/* encrypt at most this before sending */
#define HTTP_TLS_MAX_ORGS	16	/* O values taken from a client certificate */

enum conn_state {
	CONN_HEADERS,		/* reading request line and headers (or idle) */
	CONN_BODY,		/* reading the body */
	CONN_DISPATCHED,	/* request is with the handler; not reading */
	CONN_WRITING,		/* response queued; waiting for the kernel to take it */
	CONN_STREAMING,		/* chunked response in progress; reading to see EOF */
	CONN_CLOSING,		/* last response queued; then FIN, then wait for EOF */
	CONN_CLOSED,		/* uv_close called; waiting for the close callbacks */
};

enum conn_timeout {
	TO_NONE,
	TO_IDLE,		/* keep-alive connection without a request */
	TO_HEADER,		/* head not complete in time: 408 */
	TO_BODY,		/* body stalled: 408 */
	TO_DRAIN,		/* client does not read its response */
	TO_LINGER,		/* client does not close after our FIN */
};

/* What a request head says, from http_parser or from http_head_parse. */
struct head_facts {
	int method, major, minor;
	bool chunked, upgrade, keep_alive;
	int64_t clen;			/* -1: none */
};

/* States of chunk_check(), the strict re-check of chunked framing. */
enum { CK_SIZE0, CK_SIZE, CK_EXT, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF,
	CK_TRAILER0, CK_TRAILER, CK_TRAILER_LF, CK_END_LF, CK_DONE };

struct hreq {
	struct http_req pub;		/* first: http_req * <-> hreq * */
	struct conn *conn;		/* NULL once the connection is gone */
	bool with_handler;		/* dispatched and not finished yet */
	int status;			/* of the response head, 0 before it */
	uint64_t start_ns;		/* uv_hrtime() at dispatch */
	http_done_fn done;		/* cfg.done at dispatch */
	void *done_arg;
	bool aborted;
	bool streaming;
	bool keep_alive;
	bool is_head;
	bool http10;
	bool head_done;
	bool value_last;		/* last head callback was a header value */
	bool want_continue;		/* owe the client "100 Continue" */
	bool chunked;			/* body framing checked by chunk_check() */
	bool msg_done;			/* on_message_complete ran */
	bool body_stream;		/* stream_body: handler holds req, body still coming */
	bool body_paused;		/* http_req_body_pause() */
	int64_t clen;			/* Content-Length of the request, -1 if none */
	int method;			/* enum http_method */
	bool upgrade;
	http_body_fn body_cb;
	void *body_arg;
	void (*drain_cb)(struct http_req *, void *);
	void *drain_arg;
	int ck_state;
	uint64_t ck_left;
	void (*abort_cb)(struct http_req *, void *);
	void *abort_arg;
	http_tunnel_fn tunnel_cb;	/* http_req_tunnel(): bytes after a switch */
	void *tunnel_arg;
	bool tunnel_paused;

	/* rbuf: [0, head_len) the current request head, then bytes not parsed
	 * yet; [parsed, rlen) is still to be fed to the parser. */
	char *rbuf;
	size_t rlen, rcap, parsed, head_len;
	uint32_t url_off, url_len;
	/* where the pieces of the head sit in rbuf: offsets, not pointers,
	 * because the buffer may move while the head is being read */
	struct http_span *spans;
	size_t nspans, spans_cap;
	struct http_header *hdrs;
	size_t hdrs_cap;
	char *body;
	size_t body_len, body_cap;
	struct buf target;		/* decoded path NUL raw query NUL */
	struct buf extra;		/* lines added with http_add_header */
	struct buf out;			/* response head being built */
	char remote[64];
	char *tls_cn;			/* verified client certificate: CN */
	char **tls_orgs;		/* and its O values */
	size_t tls_norgs;
};

struct conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shutdown;
	http_parser parser;
	struct http_server *srv;
	struct hreq *req;
	struct conn *prev, *next;
	enum conn_state state;
	enum conn_timeout tkind;
	uint64_t deadline;		/* when tkind fires */
	uint64_t armed;			/* when the uv timer fires */
	unsigned writes;		/* uv_write requests in flight */
	int handles;			/* open uv handles; freed at 0 */
	int err_status;			/* set by a parser callback to fail */
	const char *err_msg;
	bool reading;
	bool in_parse;
	bool shut;
	bool peer_eof;			/* the client half-closed while its request was held */
	/* TLS only (ssl != NULL) */
	SSL *ssl;
	uv_idle_t tls_idle;		/* resumes decrypting what OpenSSL holds */
	bool tls_ready;			/* handshake done */
	bool tls_http;			/* plain HTTP sent to the TLS port */
};

/* The buffers of one request, parked while its connection is idle. */
struct req_bufs {
	char *rbuf;
	struct http_span *spans;
	size_t spans_cap;
	struct http_header *hdrs;
	size_t hdrs_cap;
	struct buf target, out;
};

struct http_server {
	uv_tcp_t tcp;
	struct req_bufs spares[HTTP_SPARES];	/* reused by the next request read */
	unsigned nspares;
	struct http_config cfg;
	struct conn *conns;
	unsigned nconns;
	int port;
	bool unlistened;		/* http_server_unlisten() closed the listener */
	bool listener_closed;		/* its close callback ran */
	bool stopped;			/* http_server_stop(): free once both closed */
	bool draining;			/* http_server_drain(): every response closes */
	void (*drained_cb)(void *);	/* once no connection is left */
	void *drained_arg;
	SSL_CTX *tls_ctx;		/* NULL: plain HTTP; new connections take it */
};

static void conn_drop(struct conn *);
static int body_pass(struct conn *, size_t);
static void body_finish(struct conn *);
static void conn_dispatch_early(struct conn *);
static void conn_parse(struct conn *);
static void conn_fail(struct conn *, int, const char *);
static void conn_next(struct conn *);
static void conn_shutdown(struct conn *);
static void conn_sync_reading(struct conn *);
static void tunnel_pass(struct conn *);
static void conn_set_timeout(struct conn *, enum conn_timeout, unsigned);
static void on_timer(uv_timer_t *);
static void on_alloc(uv_handle_t *, size_t, uv_buf_t *);
static void on_read(uv_stream_t *, ssize_t, const uv_buf_t *);
static int tls_send(struct conn *, const uv_buf_t *, unsigned);
static void tls_pump(struct conn *);
static void tls_sync(struct conn *);

static const char *const empty = "";

/* ---- small helpers ---------------------------------------------------- */

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0, n) in place and returns the new length. strict:
 * malformed escapes and %00 are errors (-EINVAL); otherwise they stay
 * literal and '+' means space (query strings). */
static long
pct_decode(char *s, size_t n, bool strict)
{
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
			lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
				s[o++] = (char)(hi * 16 + lo);
				i += 2;
				continue;
			}
			if (strict)
				return -EINVAL;
		} else if (s[i] == '+' && !strict) {
			s[o++] = ' ';
			continue;
		}
		s[o++] = s[i];
	}
	return (long)o;
}

static char *
utoa(char *end, uint64_t v, unsigned base)
{
	*--end = '\0';
	do {
		*--end = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	return end;
}

/* The Date header, formatted once a second. */
static void
date_header(struct buf *b)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char mons[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	static time_t last;
	static char line[64];
	time_t now = time(NULL);
	struct tm tm;

	if (now != last) {
		gmtime_r(&now, &tm);
		snprintf(line, sizeof(line), "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
		    days[tm.tm_wday % 7], tm.tm_mday, mons[tm.tm_mon % 12], tm.tm_year + 1900,
		    tm.tm_hour, tm.tm_min, tm.tm_sec);
		last = now;
	}
	buf_puts(b, line);
}

static bool
status_has_body(int status)
{
	return status >= 200 && status != 204 && status != 304;
}

static const char *
status_text(int status)
{
	const char *s = http_status_str((enum http_status)status);

	return s[0] == '<' ? "Unknown" : s;
}

/* ---- request object ---------------------------------------------------- */

static struct hreq *
req_new(void)
{
	return xcalloc(1, sizeof(struct hreq));	/* rbuf comes with the first bytes */
}

/* The read buffer exists only while a request is read or held: an idle
 * keep-alive connection keeps none (10,000 idle proxy connections would
 * otherwise pin 40 MB). Its buffers go to the server's few spares, which
 * the next request read takes: no malloc/free per request on a busy
 * keep-alive connection, and idle ones still cost nothing. */
static void
req_rbuf(struct hreq *r)
{
	struct http_server *srv = r->conn ? r->conn->srv : NULL;
	struct req_bufs *sp;

	if (r->rbuf != NULL)
		return;
	r->rcap = HTTP_RBUF_INIT;
	if (srv == NULL || srv->nspares == 0) {
		r->rbuf = xmalloc(r->rcap);
		return;
	}
	sp = &srv->spares[--srv->nspares];
	r->rbuf = sp->rbuf;
	if (r->spans == NULL) {
		r->spans = sp->spans;
		r->spans_cap = sp->spans_cap;
	} else
		free(sp->spans);
	if (r->hdrs == NULL) {
		r->hdrs = sp->hdrs;
		r->hdrs_cap = sp->hdrs_cap;
	} else
		free(sp->hdrs);
	if (r->target.data == NULL)
		r->target = sp->target;
	else
		buf_free(&sp->target);
	if (r->out.data == NULL)
		r->out = sp->out;
	else
		buf_free(&sp->out);
}

/* Parks r's buffers in srv's spares (when there is room and they are of
 * the usual size) or frees them. */
static void
req_park(struct hreq *r, struct http_server *srv)
{
	struct req_bufs *sp;

	if (srv && srv->nspares < HTTP_SPARES && r->rcap == HTTP_RBUF_INIT &&
	    r->target.cap <= HTTP_RBUF_INIT && r->out.cap <= HTTP_RBUF_INIT) {
		sp = &srv->spares[srv->nspares++];
		sp->rbuf = r->rbuf;
		sp->spans = r->spans;
		sp->spans_cap = r->spans_cap;
		sp->hdrs = r->hdrs;
		sp->hdrs_cap = r->hdrs_cap;
		sp->target = r->target;
		sp->out = r->out;
	} else {
		free(r->rbuf);
		free(r->spans);
		free(r->hdrs);
		buf_free(&r->target);
		buf_free(&r->out);
	}
	r->rbuf = NULL;
	r->rcap = 0;
	r->spans = NULL;
	r->spans_cap = 0;
	r->hdrs = NULL;
	r->hdrs_cap = 0;
	memset(&r->target, 0, sizeof(r->target));
	memset(&r->out, 0, sizeof(r->out));
}

static void
server_free(struct http_server *srv)
{
	while (srv->nspares > 0) {
		struct req_bufs *sp = &srv->spares[--srv->nspares];
		free(sp->rbuf);
		free(sp->spans);
		free(sp->hdrs);
		buf_free(&sp->target);
		buf_free(&sp->out);
	}
	SSL_CTX_free(srv->tls_ctx);
	free(srv);
}

static void
req_free(struct hreq *r)
{
	free(r->rbuf);
	free(r->spans);
	free(r->hdrs);
	free(r->body);
	buf_free(&r->target);
	buf_free(&r->extra);
	buf_free(&r->out);
	free(r->tls_cn);
	for (size_t i = 0; i < r->tls_norgs; i++)
		free(r->tls_orgs[i]);
	free(r->tls_orgs);
	free(r);
}

/* Forgets the finished request and moves the bytes already read for the
 * next one to the front of the read buffer. */
static void
req_reset(struct hreq *r)
{
	if (r->rlen > r->parsed)
		memmove(r->rbuf, r->rbuf + r->parsed, r->rlen - r->parsed);
	r->rlen -= r->parsed;
	if (r->rlen == 0) {
		/* idle: keep no buffer at all (about 1 KB per idle connection
		 * otherwise, measured with 10,000 through the proxy) */
		req_park(r, r->conn ? r->conn->srv : NULL);
	}
	r->parsed = r->head_len = 0;
	r->url_off = r->url_len = 0;
	r->nspans = 0;
	r->body_len = 0;
	if (r->body_cap > HTTP_BODY_KEEP) {
		free(r->body);
		r->body = NULL;
		r->body_cap = 0;
	}
	buf_reset(&r->extra);
	r->streaming = r->head_done = r->value_last = r->want_continue = false;
	r->msg_done = r->body_stream = r->body_paused = false;
	r->body_cb = NULL;
	r->body_arg = NULL;
	r->drain_cb = NULL;
	r->drain_arg = NULL;
	r->is_head = r->http10 = false;
	r->keep_alive = true;
	r->abort_cb = NULL;
	r->abort_arg = NULL;
	r->tunnel_cb = NULL;
	r->tunnel_arg = NULL;
	r->tunnel_paused = false;
	memset(&r->pub, 0, sizeof(r->pub));
}

/* The handler finished an aborted request: nobody else holds it. */
static void
req_release(struct hreq *r)
{
	if (r->conn)
		r->conn->req = NULL;
	req_free(r);
}

static const char *
span_value(const struct hreq *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nspans; i++)
		if (strcasecmp(r->rbuf + r->spans[i].name, name) == 0)
			return r->spans[i].value_len ? r->rbuf + r->spans[i].value : empty;
	return NULL;
}

/* NUL-terminates the request target and every header in place: the byte
 * after each piece (' ', ':', CR or blank) is already parsed. */
static void
head_terminate(struct hreq *r)
{
	struct http_span *s;
	size_t i;

	r->rbuf[r->url_off + r->url_len] = '\0';
	for (i = 0; i < r->nspans; i++) {
		s = &r->spans[i];
		r->rbuf[s->name + s->name_len] = '\0';
		while (s->value_len && (r->rbuf[s->value + s->value_len - 1] == ' ' ||
		    r->rbuf[s->value + s->value_len - 1] == '\t'))
			s->value_len--;
		if (s->value_len)
			r->rbuf[s->value + s->value_len] = '\0';
	}
}

/* Splits the target into the decoded path and the raw query. Returns 0 or
 * -EINVAL for a malformed escape or %00. */
static int
req_split_target(struct hreq *r)
{
	const char *t = r->pub.target, *p = t, *s, *end, *qs = empty, *qe = empty;
	size_t qoff;
	long n;

	if (*t != '/' && *t != '*') {
		s = strstr(t, "://");
		p = s ? strchr(s + 3, '/') : NULL;
		if (p == NULL)
			p = s ? "/" : empty;
	}
	end = p + strcspn(p, "?#");
	if (*end == '?') {
		qs = end + 1;
		qe = qs + strcspn(qs, "#");
	}
	buf_reset(&r->target);
	buf_append(&r->target, p, (size_t)(end - p));
	if ((n = pct_decode(r->target.data, r->target.len, true)) < 0)
		return -EINVAL;
	r->target.len = (size_t)n;
	buf_append(&r->target, "", 1);
	qoff = r->target.len;
	buf_append(&r->target, qs, (size_t)(qe - qs));
	r->pub.path = r->target.data;
	r->pub.query = r->target.data + qoff;
	return 0;
}

/* Fills the public view of a complete request. Returns 0 or -EINVAL. */
static int
req_build(struct conn *c, struct hreq *r)
{
	size_t i;

	r->pub.method = http_method_str((enum http_method)r->method);
	r->pub.target = r->rbuf + r->url_off;
	if (req_split_target(r) < 0)
		return -EINVAL;
	if (r->nspans > r->hdrs_cap) {
		r->hdrs_cap = r->nspans * 2;
		r->hdrs = xrealloc(r->hdrs, r->hdrs_cap * sizeof(*r->hdrs));
	}
	for (i = 0; i < r->nspans; i++) {
		r->hdrs[i].name = r->rbuf + r->spans[i].name;
		r->hdrs[i].value = r->spans[i].value_len ?
		    r->rbuf + r->spans[i].value : (char *)empty;
	}
	r->pub.headers = r->hdrs;
	r->pub.nheaders = r->nspans;
	/* the body buffer is kept between requests and is not NUL-terminated
	 * until a body byte arrives: an empty body is always "" */
	r->pub.body = r->body_len ? r->body : empty;
	r->pub.body_len = r->body_len;
	r->pub.remote_addr = r->remote;
	r->pub.user = NULL;
	r->pub.keep_alive = r->keep_alive;
	r->pub.http10 = r->http10;
	r->pub.upgrade = r->upgrade;
	r->pub.chunked = r->chunked;
	r->pub.content_length = r->clen;
	r->pub.body_follows = r->body_stream;
	r->pub.tls = c->ssl != NULL;
	r->pub.client_cn = r->tls_cn;
	r->pub.client_orgs = (const char *const *)r->tls_orgs;
	r->pub.client_norgs = r->tls_norgs;
	return 0;
}

/* Builds the status line and headers into r->out; len < 0: chunked. */
static void
resp_head(struct hreq *r, int status, const char *ctype, long long len)
{
	struct buf *b = &r->out;
	char num[24];

	r->status = status;
	buf_reset(b);
	buf_puts(b, "HTTP/1.1 ");
	buf_puts(b, utoa(num + sizeof(num), (uint64_t)status, 10));
	buf_putc(b, ' ');
	buf_puts(b, status_text(status));
	buf_puts(b, "\r\n");
	date_header(b);
	if (ctype) {
		buf_puts(b, "Content-Type: ");
		buf_puts(b, ctype);
		buf_puts(b, "\r\n");
	}
	if (len >= 0 && status_has_body(status)) {
		buf_puts(b, "Content-Length: ");
		buf_puts(b, utoa(num + sizeof(num), (uint64_t)len, 10));
		buf_puts(b, "\r\n");
	} else if (len < 0 && !r->http10)
		buf_puts(b, "Transfer-Encoding: chunked\r\n");
	if (r->extra.len)
		buf_append(b, r->extra.data, r->extra.len);
	if (!r->keep_alive)
		buf_puts(b, "Connection: close\r\n");
	else if (r->http10)
		buf_puts(b, "Connection: keep-alive\r\n");
	buf_puts(b, "\r\n");
}

/* ---- parser callbacks -------------------------------------------------- */

static int
parse_fail(struct conn *c, int status, const char *msg)
{
	c->err_status = status;
	c->err_msg = msg;
	return -1;
}

/* Fails with 431 once the head reaches past max_header_bytes. */
static int
head_check(struct conn *c, const char *end)
{
	if ((size_t)(end - c->req->rbuf) > c->srv->cfg.max_header_bytes)
		return parse_fail(c, 431, "request header fields too large");
	return 0;
}

static int
on_message_begin(http_parser *p)
{
	struct conn *c = p->data;

	conn_set_timeout(c, TO_HEADER, c->srv->cfg.header_timeout_ms);
	return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	struct hreq *r = c->req;

	if (r->url_len == 0)
		r->url_off = (uint32_t)(at - r->rbuf);
	r->url_len += (uint32_t)len;
	return head_check(c, at + len);
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	struct hreq *r = c->req;
	struct http_span *s;

	if (r->head_done)
		return 0;	/* chunked trailers are ignored */
	if (r->nspans == 0 || r->value_last) {
		if (r->nspans == r->spans_cap) {
			r->spans_cap = r->spans_cap ? r->spans_cap * 2 : 16;
			r->spans = xrealloc(r->spans, r->spans_cap * sizeof(*r->spans));
		}
		s = &r->spans[r->nspans++];
		s->name = (uint32_t)(at - r->rbuf);
		s->name_len = 0;
		s->value = s->value_len = 0;
		r->value_last = false;
	}
	r->spans[r->nspans - 1].name_len += (uint32_t)len;
	return head_check(c, at + len);
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	struct hreq *r = c->req;
	struct http_span *s;
	char *end;

	if (r->head_done)
		return 0;
	s = &r->spans[r->nspans - 1];
	if (!r->value_last) {
		s->value = (uint32_t)(at - r->rbuf);
		s->value_len = 0;
		r->value_last = true;
	} else if (at != r->rbuf + s->value + s->value_len) {
		/* obs-fold: the line break between the pieces becomes spaces */
		end = r->rbuf + s->value + s->value_len;
		memset(end, ' ', (size_t)(at - end));
		s->value_len = (uint32_t)(at - (r->rbuf + s->value));
	}
	s->value_len += (uint32_t)len;
	return head_check(c, at + len);
}

/* The head is read (by either parser): framing, limits, Expect. */
static int
head_complete(struct conn *c, const struct head_facts *f)
{
	struct hreq *r = c->req;
	const struct http_config *cfg = &c->srv->cfg;
	const char *expect;

	r->head_done = true;
	head_terminate(r);
	if (f->major == 0)
		return parse_fail(c, 400, "HTTP/0.9 is not supported");
	if (f->major > 1)
		return parse_fail(c, 505, "HTTP version not supported");
	r->method = f->method;
	r->upgrade = f->upgrade;
	r->is_head = f->method == HTTP_HEAD;
	r->http10 = f->major == 1 && f->minor == 0;
	r->chunked = f->chunked;
	r->ck_state = CK_SIZE0;
	r->ck_left = 0;
	r->clen = f->clen;
	r->keep_alive = f->keep_alive;
	if (cfg->stream_body && (r->chunked || r->clen > 0)) {
		/* dispatched from conn_parse once the parser stops here */
		if ((expect = span_value(r, "expect")) != NULL)
			r->want_continue = !r->http10 &&
			    strcasecmp(expect, "100-continue") == 0;
		c->state = CONN_BODY;
		return 0;
	}
	if (r->clen >= 0) {
		if ((uint64_t)r->clen > cfg->max_body_bytes)
			return parse_fail(c, 413, "request body too large");
		if ((size_t)r->clen + 1 > r->body_cap) {
			r->body_cap = (size_t)r->clen + 1;
			r->body = xrealloc(r->body, r->body_cap);
		}
	}
	if ((expect = span_value(r, "expect")) != NULL) {
		if (strcasecmp(expect, "100-continue") != 0)
			return parse_fail(c, 417, "unsupported expectation");
		r->want_continue = !r->http10;
	}
	c->state = CONN_BODY;
	conn_set_timeout(c, TO_BODY, cfg->idle_timeout_ms);
	return 0;
}

static int
on_headers_complete(http_parser *p)
{
	bool chunked = (p->flags & F_CHUNKED) != 0;
	struct head_facts f = {
		.method = p->method, .major = p->http_major, .minor = p->http_minor,
		.chunked = chunked, .upgrade = p->upgrade != 0,
		.keep_alive = http_should_keep_alive(p) && !p->upgrade,
		.clen = chunked || p->content_length == UINT64_MAX ? -1 :
		    (int64_t)p->content_length,
	};

	/* conn_parse learns where the head ends from where the parser stops */
	http_parser_pause(p, 1);
	return head_complete(p->data, &f);
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	struct hreq *r = c->req;

	if (r->body_stream)
		return 0;	/* conn_parse passes the raw bytes on */
	if (r->body_len + len > c->srv->cfg.max_body_bytes)
		return parse_fail(c, 413, "request body too large");
	if (r->body_len + len + 1 > r->body_cap) {
		r->body_cap = r->body_cap * 2 > r->body_len + len + 1 ?
		    r->body_cap * 2 : r->body_len + len + 1;
		r->body = xrealloc(r->body, r->body_cap);
	}
	memcpy(r->body + r->body_len, at, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

/* Stops the parser right after the message so that pipelined bytes wait in
 * the buffer until this request is finished. */
static int
on_message_complete(http_parser *p)
{
	struct conn *c = p->data;

	c->req->keep_alive = http_should_keep_alive(p) && !p->upgrade;
	c->req->msg_done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* ---- writing ------------------------------------------------------------ */

static void
on_shutdown(uv_shutdown_t *sr, int status)
{
	struct conn *c = sr->data;

	if (c->state == CONN_CLOSED)
		return;
	if (status < 0 || c->peer_eof)
		conn_drop(c);	/* error, or both directions are done */
}

/* Every queued write is done: move on according to the state. */
static void
conn_drained(struct conn *c)
{
	switch (c->state) {
	case CONN_WRITING:
		conn_next(c);
		break;
	case CONN_CLOSING:
		conn_shutdown(c);
		break;
	default:
		if (c->req->with_handler && c->req->drain_cb)
			c->req->drain_cb(&c->req->pub, c->req->drain_arg);
		break;
	}
}

static void
on_write(uv_write_t *wr, int status)
{
	struct net_write *w = (struct net_write *)wr;
	struct conn *c = w->owner;

	free(w);
	c->writes--;
	if (c->state == CONN_CLOSED)
		return;
	if (status < 0) {
		conn_drop(c);
		return;
	}
	if (c->writes == 0)
		conn_drained(c);
}

/* Sends bufs after anything already queued: straight to the kernel when
 * nothing is queued, the rest copied into one write request, so callers may
 * pass stack memory. Returns 0, or a negative errno after dropping c. */
static int
conn_send(struct conn *c, const uv_buf_t *bufs, unsigned n)
{
	if (c->ssl)
		return tls_send(c, bufs, n);
	int r = net_send((uv_stream_t *)&c->tcp, bufs, n, &c->writes, on_write, c, 0);

	if (r < 0) {
		conn_drop(c);
		return r;
	}
	return 0;
}

/* ---- connection state machine ------------------------------------------ */

/* Sets what happens ms from now. The uv timer is only re-armed when the new
 * deadline is earlier than the armed one; a timer firing early re-arms
 * itself, so a busy keep-alive connection rarely touches the timer heap. */
static void
conn_set_timeout(struct conn *c, enum conn_timeout kind, unsigned ms)
{
	uint64_t now = uv_now(c->timer.loop);

	c->tkind = kind;
	if (kind == TO_NONE)
		return;
	c->deadline = now + ms;
	if (!uv_is_active((uv_handle_t *)&c->timer) || c->armed > c->deadline) {
		c->armed = c->deadline;
		uv_timer_start(&c->timer, on_timer, ms, 0);
	}
}

static void
on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	uint64_t now = uv_now(t->loop);

	if (c->tkind == TO_NONE || c->state == CONN_CLOSED)
		return;
	if (now < c->deadline) {
		c->armed = c->deadline;
		uv_timer_start(t, on_timer, c->deadline - now, 0);
		return;
	}
	switch (c->tkind) {
	case TO_HEADER:
	case TO_BODY:
		log_debug("http", "%s: request timeout", c->req->remote);
		if (c->req->with_handler)
			conn_drop(c);	/* a streamed body stalled */
		else
			conn_fail(c, 408, "request timeout");
		break;
	default:
		conn_drop(c);
		break;
	}
}

static void
on_conn_close(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct hreq *r = c->req;

	if (--c->handles > 0)
		return;
	SSL_free(c->ssl);
	if (r && r->with_handler) {
		r->conn = NULL;
		if (r->abort_cb)
			r->abort_cb(&r->pub, r->abort_arg);
	} else if (r)
		req_free(r);
	free(c);
}

/* Closes c now. A request the handler holds is marked aborted; its abort
 * callback runs from the close callback, never inside an http_* call. */
static void
conn_drop(struct conn *c)
{
	struct http_server *srv = c->srv;

	if (c->state == CONN_CLOSED)
		return;
	c->state = CONN_CLOSED;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	if (c->req && c->req->with_handler)
		c->req->aborted = true;
	uv_close((uv_handle_t *)&c->tcp, on_conn_close);
	uv_close((uv_handle_t *)&c->timer, on_conn_close);
	if (c->handles == 3)
		uv_close((uv_handle_t *)&c->tls_idle, on_conn_close);
	if (srv->draining && srv->nconns == 0 && srv->drained_cb) {
		void (*cb)(void *) = srv->drained_cb;
		srv->drained_cb = NULL;
		cb(srv->drained_arg);
	}
}

/* Half-closes after the last response; the client's EOF or the linger
 * timeout then drops the connection. Reading (and discarding) meanwhile
 * keeps an unread request from turning our close into a reset that would
 * destroy the response in flight. */
static void
conn_shutdown(struct conn *c)
{
	if (c->shut)
		return;
	c->shut = true;
	if (c->ssl && c->tls_ready) {
		/* close_notify: a response delimited by the close ends cleanly */
		SSL_shutdown(c->ssl);
		if (tls_send(c, NULL, 0) < 0)
			return;
	}
	c->shutdown.data = c;
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
		conn_drop(c);
		return;
	}
	conn_set_timeout(c, TO_LINGER, HTTP_LINGER_MS);
}

static void
conn_closing(struct conn *c)
{
	c->state = CONN_CLOSING;
	if (c->writes == 0)
		conn_shutdown(c);
	else
		conn_set_timeout(c, TO_DRAIN, c->srv->cfg.idle_timeout_ms);
	conn_sync_reading(c);
}

/* Answers an error by itself (no handler involved) and closes. */
static void
conn_fail(struct conn *c, int status, const char *msg)
{
	struct hreq *r = c->req;
	const char *ctype = "text/plain; charset=utf-8";
	char *body;
	uv_buf_t bufs[2];

	if (c->ssl && !c->tls_ready) {
		if (!c->tls_http) {
			conn_drop(c);	/* nothing can be said before the handshake */
			return;
		}
		SSL_free(c->ssl);	/* answered in plain, as Go's servers do */
		c->ssl = NULL;
	}
	if (r->with_handler) {
		/* a streamed body went wrong: the handler owns the response */
		log_debug("http", "%s: %d %s", r->remote, status, msg);
		conn_drop(c);
		return;
	}
	log_debug("http", "%s: %d %s", r->remote, status, msg);
	r->keep_alive = false;
	r->http10 = false;
	buf_reset(&r->extra);
	if (c->srv->cfg.error_body) {
		body = c->srv->cfg.error_body(status, msg, &ctype);
		if (ctype == NULL)
			ctype = "text/plain; charset=utf-8";
	} else
		body = xasprintf("%s\n", msg);
	resp_head(r, status, ctype, (long long)strlen(body));
	bufs[0] = uv_buf_init(r->out.data, (unsigned)r->out.len);
	bufs[1] = uv_buf_init(body, (unsigned)strlen(body));
	if (conn_send(c, bufs, 2) == 0)
		conn_closing(c);
	free(body);
}

static void
conn_dispatch(struct conn *c)
{
	struct hreq *r = c->req;

	if (req_build(c, r) < 0) {
		r->body_stream = false;
		conn_fail(c, 400, "malformed percent-encoding in path");
		return;
	}
	c->state = r->body_stream ? CONN_BODY : CONN_DISPATCHED;
	conn_set_timeout(c, TO_NONE, 0);
	if (c->srv->draining)
		r->keep_alive = r->pub.keep_alive = false;
	r->with_handler = true;
	r->status = 0;
	r->start_ns = uv_hrtime();
	r->done = c->srv->cfg.done;
	r->done_arg = c->srv->cfg.handler_arg;
	c->srv->cfg.handler(&r->pub, c->srv->cfg.handler_arg);
}

/* stream_body: the head of a request with a body is complete. The handler
 * gets it now; the read buffer gets room for body bytes first, because it
 * must not move while the handler points into the head. */
static void
conn_dispatch_early(struct conn *c)
{
	struct hreq *r = c->req;

	if (r->rcap - r->head_len < HTTP_RBUF_INIT) {
		r->rcap = r->head_len + HTTP_RBUF_INIT;
		r->rbuf = xrealloc(r->rbuf, r->rcap);
	}
	r->body_stream = true;
	conn_dispatch(c);
}

/* Hands the raw body bytes [from, parsed) to the handler. Returns -1 when
 * the connection went away meanwhile. */
static int
body_pass(struct conn *c, size_t from)
{
	struct hreq *r = c->req;

	if (r->parsed > from && r->with_handler && r->body_cb)
		r->body_cb(&r->pub, r->rbuf + from, r->parsed - from, false, r->body_arg);
	return c->state == CONN_CLOSED ? -1 : 0;
}

/* The streamed body is complete; the request stays with the handler. */
static void
body_finish(struct conn *c)
{
	struct hreq *r = c->req;

	r->body_stream = false;
	c->state = r->streaming ? CONN_STREAMING : CONN_DISPATCHED;
	conn_set_timeout(c, TO_NONE, 0);
	if (r->with_handler && r->body_cb)
		r->body_cb(&r->pub, NULL, 0, true, r->body_arg);
}

static void
conn_send_continue(struct conn *c)
{
	static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
	uv_buf_t b = uv_buf_init((char *)line, sizeof(line) - 1);

	c->req->want_continue = false;
	conn_send(c, &b, 1);
}

/* The system http-parser is built without HTTP_PARSER_STRICT, so it takes
 * any two bytes after chunk data for the CRLF ("2\r\nabcdef" reads as a
 * chunk "ab" and a chunk of size 0xef): a request smuggling hazard. This
 * re-checks the chunked framing of the raw body bytes. Returns -1 on a
 * framing error. */
static int
chunk_check(struct hreq *r, const char *p, size_t n)
{
	for (size_t i = 0; i < n && r->ck_state != CK_DONE; i++) {
		char ch = p[i];
		switch (r->ck_state) {
		case CK_SIZE0:
		case CK_SIZE:
			if (isxdigit((unsigned char)ch)) {
				if (r->ck_left >> 59)
					return -1;
				r->ck_left = r->ck_left * 16 + (uint64_t)(isdigit((unsigned char)ch) ?
				    ch - '0' : (tolower((unsigned char)ch) - 'a' + 10));
				r->ck_state = CK_SIZE;
			} else if (r->ck_state == CK_SIZE && (ch == ';' || ch == ' ' || ch == '\t'))
				r->ck_state = CK_EXT;
			else if (r->ck_state == CK_SIZE && ch == '\r')
				r->ck_state = CK_SIZE_LF;
			else
				return -1;
			break;
		case CK_EXT:
			if (ch == '\r')
				r->ck_state = CK_SIZE_LF;
			break;
		case CK_SIZE_LF:
			if (ch != '\n')
				return -1;
			r->ck_state = r->ck_left ? CK_DATA : CK_TRAILER0;
			break;
		case CK_DATA: {
			size_t take = n - i < r->ck_left ? n - i : (size_t)r->ck_left;
			r->ck_left -= take;
			i += take - 1;
			if (r->ck_left == 0)
				r->ck_state = CK_DATA_CR;
			break;
		}
		case CK_DATA_CR:
			if (ch != '\r')
				return -1;
			r->ck_state = CK_DATA_LF;
			break;
		case CK_DATA_LF:
			if (ch != '\n')
				return -1;
			r->ck_state = CK_SIZE0;
			break;
		case CK_TRAILER0:
			r->ck_state = ch == '\r' ? CK_END_LF : CK_TRAILER;
			break;
		case CK_TRAILER:
			if (ch == '\r')
				r->ck_state = CK_TRAILER_LF;
			break;
		case CK_TRAILER_LF:
			if (ch != '\n')
				return -1;
			r->ck_state = CK_TRAILER0;
			break;
		case CK_END_LF:
			if (ch != '\n')
				return -1;
			r->ck_state = CK_DONE;
			break;
		}
	}
	return 0;
}

/* A request head in http_head.c's strict subset (no body: most GETs) is
 * read in one pass and dispatched, not fed to http_parser byte by byte.
 * Returns false to leave the request to http_parser. */
static bool
conn_parse_fast(struct conn *c)
{
	struct hreq *r = c->req;
	struct http_head h;
	struct head_facts f;
	long n;

	if (r->spans_cap < 16) {
		r->spans_cap = 16;
		r->spans = xrealloc(r->spans, r->spans_cap * sizeof(*r->spans));
	}
	n = http_head_parse(r->rbuf, r->rlen, false, &h, r->spans, r->spans_cap);
	if (n <= 0 || (size_t)n > c->srv->cfg.max_header_bytes)
		return false;	/* http_parser answers 431 the same way */
	r->url_off = h.start;
	r->url_len = h.start_len;
	r->nspans = h.nspans;
	r->parsed = r->head_len = (size_t)n;
	f = (struct head_facts){ .method = h.method, .major = 1, .minor = h.minor,
		.keep_alive = h.keep_alive, .clen = -1 };
	if (head_complete(c, &f) < 0) {
		conn_fail(c, c->err_status, c->err_msg);
		return true;
	}
	r->msg_done = true;
	conn_dispatch(c);
	return true;
}

/* Feeds buffered bytes to the parser while a request is being read, and
 * dispatches each complete one. A handler that answers at once lets the
 * loop go on with the next pipelined request without recursion. */
static void
conn_parse(struct conn *c)
{
	struct hreq *r = c->req;
	size_t n;
	enum http_errno e;

	c->in_parse = true;
	while ((c->state == CONN_HEADERS || c->state == CONN_BODY) && r->parsed < r->rlen &&
	    !(r->body_stream && r->body_paused)) {
		size_t before = r->parsed;
		bool had_head = r->head_done;
		if (c->state == CONN_HEADERS && r->parsed == 0 && conn_parse_fast(c))
			continue;
		n = http_parser_execute(&c->parser, &parser_settings,
		    r->rbuf + r->parsed, r->rlen - r->parsed);
		r->parsed += n;
		e = HTTP_PARSER_ERRNO(&c->parser);
		if (c->err_status) {
			conn_fail(c, c->err_status, c->err_msg);
			break;
		}
		if (r->head_done && !had_head) {
			/* paused in on_headers_complete, on the byte it took for
			 * the final LF (the lenient parser takes any byte after
			 * the CR): the head ends right after it */
			r->head_len = r->parsed + 1;
			if (r->head_len > c->srv->cfg.max_header_bytes) {
				conn_fail(c, 431, "request header fields too large");
				break;
			}
		}
		if (r->head_done && r->chunked) {
			size_t from = before > r->head_len ? before : r->head_len;
			if (r->parsed > from && chunk_check(r, r->rbuf + from, r->parsed - from) < 0) {
				conn_fail(c, 400, "malformed chunked encoding");
				break;
			}
		}
		if (r->body_stream && r->parsed > r->head_len &&
		    body_pass(c, before > r->head_len ? before : r->head_len) < 0)
			break;
		if (e == HPE_PAUSED) {
			http_parser_pause(&c->parser, 0);
			if (!had_head && r->head_done) {
				if (c->state == CONN_BODY && c->srv->cfg.stream_body &&
				    (r->chunked || r->clen > 0))
					conn_dispatch_early(c);
			} else if (!r->msg_done)
				conn_dispatch_early(c);
			else if (r->body_stream)
				body_finish(c);
			else
				conn_dispatch(c);
		} else if (e == HPE_HEADER_OVERFLOW) {
			conn_fail(c, 431, "request header fields too large");
			break;
		} else if (e != HPE_OK) {
			conn_fail(c, 400, http_errno_description(e));
			break;
		}
	}
	c->in_parse = false;
	switch (c->state) {
	case CONN_HEADERS:
		if (r->parsed > c->srv->cfg.max_header_bytes)
			conn_fail(c, 431, "request header fields too large");
		break;
	case CONN_BODY:
		/* body bytes were copied out: keep only the head */
		if (r->parsed > r->head_len) {
			memmove(r->rbuf + r->head_len, r->rbuf + r->parsed, r->rlen - r->parsed);
			r->rlen -= r->parsed - r->head_len;
			r->parsed = r->head_len;
		}
		if (r->want_continue && (!r->body_stream || !r->body_paused))
			conn_send_continue(c);
		break;
	case CONN_CLOSED:
		return;
	default:
		break;
	}
	conn_sync_reading(c);
}

/* Reads in the states that need it: a request, EOF during a stream (bounded
 * by the free buffer), the client's FIN when closing. */
static void
conn_sync_reading(struct conn *c)
{
	bool want;

	switch (c->state) {
	case CONN_BODY:
		if (c->req->body_stream) {
			want = !c->req->body_paused && c->req->rlen < c->req->rcap;
			break;
		}
		/* fall through */
	case CONN_HEADERS:
	case CONN_CLOSING:
		want = !c->peer_eof;
		break;
	case CONN_DISPATCHED:
		/* keep reading (pipelined bytes wait in the free part of the
		 * buffer, which must not move): no epoll_ctl per request, and a
		 * reset is seen at once */
		want = !c->peer_eof && (c->req->rbuf == NULL || c->req->rlen < c->req->rcap);
		break;
	case CONN_STREAMING:
		want = !c->peer_eof && (c->req->rbuf == NULL || c->req->rlen < c->req->rcap) &&
		    !(c->req->tunnel_cb && c->req->tunnel_paused);
		break;
	case CONN_CLOSED:
		return;
	default:
		want = false;
		break;
	}
	if (want == c->reading)
		return;
	c->reading = want;
	if (!want)
		uv_read_stop((uv_stream_t *)&c->tcp);
	else if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
		conn_drop(c);
	else if (c->ssl)
		tls_sync(c);
}

/* Ready for the next request on a keep-alive connection. */
static void
conn_next(struct conn *c)
{
	req_reset(c->req);
	c->state = CONN_HEADERS;
	conn_set_timeout(c, TO_IDLE, c->srv->draining ? HTTP_DRAIN_IDLE_MS :
	    c->srv->cfg.idle_timeout_ms);
	if (!c->in_parse)
		conn_parse(c);
}

/* The handler finished the request and its response is queued. When the
 * kernel took it all, the next pipelined request is dispatched right away,
 * so a handler may run again before http_respond() returns. */
static void
conn_finished(struct conn *c)
{
	if (c->req->body_stream) {
		/* answered before the end of the body: no next request */
		c->req->body_stream = false;
		c->req->keep_alive = false;
	}
	if (!c->req->keep_alive) {
		conn_closing(c);
	} else if (c->writes > 0) {
		c->state = CONN_WRITING;
		conn_set_timeout(c, TO_DRAIN, c->srv->cfg.idle_timeout_ms);
		conn_sync_reading(c);
	} else
		conn_next(c);
}

/* Where the next plain bytes go: the free end of the read buffer (empty
 * when it is full and must not move). */
static void
conn_rbuf(struct conn *c, uv_buf_t *b)
{
	struct hreq *r = c->req;

	req_rbuf(r);
	switch (c->state) {
	case CONN_HEADERS:
	case CONN_BODY:
		if (r->rcap - r->rlen < HTTP_RBUF_SLACK && !r->with_handler) {
			r->rcap *= 2;
			r->rbuf = xrealloc(r->rbuf, r->rcap);
		}
		break;
	case CONN_CLOSING:
		/* discarded; nothing in the buffer matters any more */
		*b = uv_buf_init(r->rbuf, (unsigned)r->rcap);
		return;
	default:
		/* the handler points into rbuf: it must not move */
		break;
	}
	*b = uv_buf_init(r->rbuf + r->rlen, (unsigned)(r->rcap - r->rlen));
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static _Thread_local char tls_rbuf[HTTP_TLS_RBUF];
	struct conn *c = h->data;

	(void)suggested;
	if (c->ssl)	/* ciphertext goes straight into OpenSSL's BIO */
		*b = uv_buf_init(tls_rbuf, sizeof(tls_rbuf));
	else
		conn_rbuf(c, b);
}

/* n plain bytes arrived at the end of the read buffer (conn_rbuf), or the
 * stream ended (UV_EOF), failed, or has no room (UV_ENOBUFS). */
static void
conn_input(struct conn *c, ssize_t n)
{
	struct hreq *r = c->req;

	if (n == UV_ENOBUFS) {
		/* streaming with a full buffer: wait for the stream to end */
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
		return;
	}
	if (n == UV_EOF && c->state == CONN_DISPATCHED) {
		/* a half-close after the request: answer it, then close */
		c->peer_eof = true;
		r->keep_alive = false;
		conn_sync_reading(c);
		return;
	}
	if (n < 0) {
		conn_drop(c);
		return;
	}
	switch (c->state) {
	case CONN_CLOSING:
		break;
	case CONN_BODY:
		conn_set_timeout(c, TO_BODY, c->srv->cfg.idle_timeout_ms);
		/* fall through */
	case CONN_HEADERS:
		r->rlen += (size_t)n;
		conn_parse(c);
		break;
	default:
		/* streaming: kept for the next request, or a tunnel's */
		r->rlen += (size_t)n;
		if (r->tunnel_cb) {
			tunnel_pass(c);
			break;
		}
		if (r->rlen == r->rcap)
			conn_sync_reading(c);
		break;
	}
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = s->data;

	if (c->ssl == NULL) {
		conn_input(c, n);
		return;
	}
	if (n > 0) {
		/* a memory BIO takes everything */
		BIO_write(SSL_get_rbio(c->ssl), b->base, (int)n);
		tls_pump(c);
	} else if (n < 0) {
		if (n == UV_EOF && c->tls_ready)
			tls_pump(c);	/* what OpenSSL still holds comes first */
		if (c->state != CONN_CLOSED)
			conn_input(c, n);
	}
}

/* ---- TLS ------------------------------------------------------------- */

/* Sends what OpenSSL produced (handshake records, encrypted data) after
 * encrypting bufs. Returns 0, or a negative errno after dropping c. */
static int
tls_send(struct conn *c, const uv_buf_t *bufs, unsigned n)
{
	BIO *wbio = SSL_get_wbio(c->ssl);
	char *p;
	long len;
	int r;

	for (unsigned i = 0; i < n; i++) {
		for (size_t off = 0; off < bufs[i].len; ) {
			size_t take = bufs[i].len - off;
			if (take > HTTP_TLS_FLUSH)
				take = HTTP_TLS_FLUSH;
			if (SSL_write(c->ssl, bufs[i].base + off, (int)take) <= 0) {
				ERR_clear_error();
				conn_drop(c);
				return -EPROTO;
			}
			off += take;
			if (BIO_ctrl_pending(wbio) >= HTTP_TLS_FLUSH &&
			    (r = tls_send(c, NULL, 0)) < 0)
				return r;
		}
	}
	if ((len = BIO_get_mem_data(wbio, &p)) <= 0)
		return 0;
	uv_buf_t b = uv_buf_init(p, (unsigned)len);
	r = net_send((uv_stream_t *)&c->tcp, &b, 1, &c->writes, on_write, c, 0);
	(void)BIO_reset(wbio);
	if (r < 0) {
		conn_drop(c);
		return r;
	}
	return 0;
}

/* The verified client certificate's subject: CN and O values become the
 * request's transport identity (Kubernetes' X.509 user and groups). */
static void
tls_identity(struct conn *c)
{
	struct hreq *r = c->req;
	X509 *peer = SSL_get0_peer_certificate(c->ssl);
	X509_NAME *name;
	const ASN1_STRING *v;
	int i = -1;

	if (peer == NULL || SSL_get_verify_result(c->ssl) != X509_V_OK)
		return;
	name = X509_get_subject_name(peer);
	if ((i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) >= 0) {
		v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
		r->tls_cn = xstrndup((const char *)ASN1_STRING_get0_data(v),
		    (size_t)ASN1_STRING_length(v));
	}
	for (i = -1; r->tls_norgs < HTTP_TLS_MAX_ORGS &&
	    (i = X509_NAME_get_index_by_NID(name, NID_organizationName, i)) >= 0; ) {
		v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
		r->tls_orgs = xrealloc(r->tls_orgs, (r->tls_norgs + 1) * sizeof(char *));
		r->tls_orgs[r->tls_norgs++] = xstrndup((const char *)ASN1_STRING_get0_data(v),
		    (size_t)ASN1_STRING_length(v));
	}
}

/* Before the handshake: plain HTTP on the TLS port gets a plain 400 (a
 * TLS connection opens with a handshake record, 0x16). Returns 0 once the
 * handshake is done, -EAGAIN while it goes on, -EPROTO when c was closed. */
static int
tls_handshake(struct conn *c)
{
	char *p;
	int rc, e;

	if (BIO_get_mem_data(SSL_get_rbio(c->ssl), &p) > 0 && *p != 0x16 &&
	    isalpha((unsigned char)*p)) {
		c->tls_http = true;
		conn_fail(c, 400, "Client sent an HTTP request to an HTTPS server.");
		return -EPROTO;
	}
	rc = SSL_do_handshake(c->ssl);
	e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, rc);
	if (tls_send(c, NULL, 0) < 0)	/* our flight, or the alert */
		return -EPROTO;
	if (e == SSL_ERROR_WANT_READ)
		return -EAGAIN;
	if (e != SSL_ERROR_NONE) {
		unsigned long err = ERR_peek_error();
		log_debug("http", "%s: TLS handshake failed: %s", c->req->remote,
		    err ? ERR_reason_error_string(err) : "connection closed");
		ERR_clear_error();
		conn_drop(c);
		return -EPROTO;
	}
	c->tls_ready = true;
	tls_identity(c);
	return 0;
}

/* Decrypts into the read buffer and runs the state machine on it, as long
 * as c reads and OpenSSL has whole records. */
static void
tls_pump(struct conn *c)
{
	uv_buf_t b;
	int n, e;

	if (!c->tls_ready && tls_handshake(c) < 0)
		return;
	while (c->state != CONN_CLOSED && c->reading) {
		conn_rbuf(c, &b);
		if (b.len == 0) {
			conn_input(c, UV_ENOBUFS);
			return;
		}
		n = SSL_read(c->ssl, b.base, (int)b.len);
		if (n > 0) {
			conn_input(c, n);
			continue;
		}
		e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_READ) {
			tls_send(c, NULL, 0);	/* post-handshake messages */
			return;
		}
		ERR_clear_error();
		conn_input(c, e == SSL_ERROR_ZERO_RETURN ? UV_EOF : UV_EPROTO);
		return;
	}
}

static void
on_tls_idle(uv_idle_t *h)
{
	struct conn *c = h->data;

	uv_idle_stop(h);
	if (c->state != CONN_CLOSED)
		tls_pump(c);
}

/* Reading resumed: bytes OpenSSL took from the socket earlier would wait
 * for more to arrive, so they are decrypted on the next loop turn. */
static void
tls_sync(struct conn *c)
{
	if (c->tls_ready && (SSL_pending(c->ssl) > 0 ||
	    BIO_ctrl_pending(SSL_get_rbio(c->ssl)) > 0))
		uv_idle_start(&c->tls_idle, on_tls_idle);
}

static void
conn_remote_name(struct conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET6) {
			uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
			snprintf(c->req->remote, sizeof(c->req->remote), "[%s]:%d", ip, port);
			return;
		}
		uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	snprintf(c->req->remote, sizeof(c->req->remote), "%s:%d", ip, port);
}

/* A TLS server connection over memory BIOs. Returns 0 or -ENOMEM after
 * dropping c. */
static int
tls_conn_init(struct conn *c)
{
	BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());

	c->ssl = SSL_new(c->srv->tls_ctx);
	if (c->ssl == NULL || rbio == NULL || wbio == NULL) {
		BIO_free(rbio);
		BIO_free(wbio);
		ERR_clear_error();
		conn_drop(c);
		return -ENOMEM;
	}
	BIO_set_mem_eof_return(rbio, -1);	/* empty: "want read", not EOF */
	SSL_set_bio(c->ssl, rbio, wbio);
	SSL_set_accept_state(c->ssl);
	uv_idle_init(c->tcp.loop, &c->tls_idle);
	c->tls_idle.data = c;
	c->handles = 3;
	return 0;
}

static void
on_connection(uv_stream_t *l, int status)
{
	struct http_server *srv = l->data;
	struct conn *c;

	if (status < 0) {
		log_warn("http", "accept: %s", uv_strerror(status));
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	c->req = req_new();
	c->req->conn = c;
	c->req->keep_alive = true;
	c->tcp.data = c->timer.data = c;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	uv_tcp_init(l->loop, &c->tcp);
	uv_timer_init(l->loop, &c->timer);
	c->handles = 2;
	c->state = CONN_HEADERS;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
		conn_drop(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	conn_remote_name(c);
	if (srv->tls_ctx && tls_conn_init(c) < 0)
		return;
	if (srv->nconns > srv->cfg.max_connections) {
		conn_fail(c, 503, "too many connections");
		return;
	}
	/* the TLS handshake counts against the header timeout (slowloris) */
	if (c->ssl)
		conn_set_timeout(c, TO_HEADER, srv->cfg.header_timeout_ms);
	else
		conn_set_timeout(c, TO_IDLE, srv->cfg.idle_timeout_ms);
	conn_sync_reading(c);
}

/* ---- public API ---------------------------------------------------------- */

static void
on_listener_close(uv_handle_t *h)
{
	struct http_server *srv = h->data;

	srv->listener_closed = true;
	if (srv->stopped)
		server_free(srv);
}

static int
parse_host(const char *host, int port, struct sockaddr_storage *ss)
{
	char tmp[INET6_ADDRSTRLEN + 2];
	size_t n;

	if (host == NULL || *host == '\0')
		host = "0.0.0.0";
	else if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	n = strlen(host);
	if (host[0] == '[' && n >= 2 && host[n - 1] == ']' && n - 2 < sizeof(tmp)) {
		memcpy(tmp, host + 1, n - 2);
		tmp[n - 2] = '\0';
		host = tmp;
	}
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
		return 0;
	if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	return -EINVAL;
}

/* A peer that vanishes must turn a write into EPIPE, not kill the process. */
static void
ignore_sigpipe(void)
{
	struct sigaction sa;

	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &sa, NULL);
	}
}

static void
config_defaults(struct http_config *cfg)
{
	if (!cfg->max_header_bytes)
		cfg->max_header_bytes = HTTP_DEF_MAX_HEADER;
	if (!cfg->max_body_bytes)
		cfg->max_body_bytes = HTTP_DEF_MAX_BODY;
	if (!cfg->header_timeout_ms)
		cfg->header_timeout_ms = HTTP_DEF_HEADER_MS;
	if (!cfg->idle_timeout_ms)
		cfg->idle_timeout_ms = HTTP_DEF_IDLE_MS;
	if (!cfg->max_connections)
		cfg->max_connections = HTTP_DEF_MAX_CONNS;
}

static struct http_server *
server_new(uv_loop_t *loop, const struct http_config *cfg)
{
	struct http_server *srv;

	ignore_sigpipe();
	if (cfg->max_header_bytes >= 80 * 1024)	/* http-parser's compiled-in cap */
		http_parser_set_max_header_size((uint32_t)cfg->max_header_bytes + 1);
	srv = xcalloc(1, sizeof(*srv));
	srv->cfg = *cfg;
	config_defaults(&srv->cfg);
	http_server_set_tls(srv, cfg->tls_ctx);
	srv->tcp.data = srv;
	uv_tcp_init(loop, &srv->tcp);
	return srv;
}

/* Listens on srv's bound or inherited socket and learns its port. */
static int
server_listen(struct http_server *srv)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss), r;

	if ((r = uv_listen((uv_stream_t *)&srv->tcp, HTTP_BACKLOG, on_connection)) < 0)
		return r;
	if ((r = uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&ss, &len)) < 0)
		return r;
	srv->port = ntohs(ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static void
server_fail(struct http_server *srv)
{
	srv->stopped = true;
	uv_close((uv_handle_t *)&srv->tcp, on_listener_close);
}

/* uv_tcp_bind sets SO_REUSEADDR on Unix. */
int
http_server_start(uv_loop_t *loop, const char *host, int port,
    const struct http_config *cfg, struct http_server **out)
{
	struct http_server *srv;
	struct sockaddr_storage ss;
	int r;

	if (cfg->handler == NULL || port < 0 || port > 65535)
		return -EINVAL;
	memset(&ss, 0, sizeof(ss));
	if ((r = parse_host(host, port, &ss)) < 0)
		return r;
	srv = server_new(loop, cfg);
	if ((r = uv_tcp_bind(&srv->tcp, (struct sockaddr *)&ss, 0)) < 0 ||
	    (r = server_listen(srv)) < 0) {
		server_fail(srv);
		return r;
	}
	*out = srv;
	return 0;
}

int
http_server_open(uv_loop_t *loop, uv_os_sock_t fd, const struct http_config *cfg,
    struct http_server **out)
{
	struct http_server *srv;
	int r;

	if (cfg->handler == NULL)
		return -EINVAL;
	srv = server_new(loop, cfg);
	if ((r = uv_tcp_open(&srv->tcp, fd)) < 0) {
		close(fd);		/* not the handle's: closed here */
		server_fail(srv);
		return r;
	}
	if ((r = server_listen(srv)) < 0) {
		server_fail(srv);	/* closes fd */
		return r;
	}
	*out = srv;
	return 0;
}

int
http_server_fd(const struct http_server *srv)
{
	uv_os_fd_t fd;

	if (srv->unlistened || uv_fileno((const uv_handle_t *)&srv->tcp, &fd) < 0)
		return -EBADF;
	return fd;
}

void
http_server_set_tls(struct http_server *srv, struct ssl_ctx_st *ctx)
{
	if (ctx)
		SSL_CTX_up_ref(ctx);
	SSL_CTX_free(srv->tls_ctx);
	srv->tls_ctx = ctx;
}

int
http_server_port(const struct http_server *srv)
{
	return srv->port;
}

void
http_server_stop(struct http_server *srv)
{
	if (srv == NULL)
		return;
	while (srv->conns)
		conn_drop(srv->conns);
	srv->stopped = true;
	if (!srv->unlistened)
		uv_close((uv_handle_t *)&srv->tcp, on_listener_close);
	else if (srv->listener_closed)
		server_free(srv);
}

void
http_server_unlisten(struct http_server *srv)
{
	if (srv == NULL || srv->unlistened)
		return;
	srv->unlistened = true;
	uv_close((uv_handle_t *)&srv->tcp, on_listener_close);
}

void
http_server_drain(struct http_server *srv, void (*done)(void *), void *arg)
{
	struct conn *c;

	http_server_unlisten(srv);
	srv->draining = true;
	srv->drained_cb = done;
	srv->drained_arg = arg;
	for (c = srv->conns; c; c = c->next) {
		if (c->req->with_handler)	/* a response head not written yet says close */
			c->req->keep_alive = c->req->pub.keep_alive = false;
		else if (c->state == CONN_HEADERS)
			conn_set_timeout(c, TO_IDLE, HTTP_DRAIN_IDLE_MS);
	}
	if (srv->nconns == 0 && srv->drained_cb) {
		srv->drained_cb = NULL;
		done(arg);
	}
}

const char *
http_req_header(const struct http_req *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

char *
http_query_get(const char *query, const char *key)
{
	const char *p = query, *amp, *eq;
	size_t klen = strlen(key), n;
	char *name, *val;
	long m;

	if (query == NULL)
		return NULL;
	for (; *p; p = *amp ? amp + 1 : amp) {
		amp = p + strcspn(p, "&");
		eq = memchr(p, '=', (size_t)(amp - p));
		n = (size_t)((eq ? eq : amp) - p);
		name = xstrndup(p, n);
		m = pct_decode(name, n, false);
		if ((size_t)m == klen && memcmp(name, key, klen) == 0) {
			free(name);
			if (eq == NULL)
				return xstrdup("");
			val = xstrndup(eq + 1, (size_t)(amp - eq - 1));
			val[pct_decode(val, (size_t)(amp - eq - 1), false)] = '\0';
			return val;
		}
		free(name);
	}
	return NULL;
}

bool
http_query_bool(const char *query, const char *key)
{
	char *v = http_query_get(query, key);
	bool on = v && (!*v || !strcmp(v, "true") || !strcmp(v, "1"));
	free(v);
	return on;
}

void
http_add_header(struct http_req *req, const char *name, const char *value)
{
	struct hreq *r = (struct hreq *)req;

	if (strcasecmp(name, "connection") == 0 && strcasecmp(value, "close") == 0) {
		r->keep_alive = false;	/* resp_head says it */
		return;
	}
	buf_puts(&r->extra, name);
	buf_puts(&r->extra, ": ");
	buf_puts(&r->extra, value);
	buf_puts(&r->extra, "\r\n");
}

/* The handler finished req: cfg.done hears of it (status 0 when no
 * response head was sent, e.g. the client left first). */
static void
req_done(struct hreq *r)
{
	r->with_handler = false;
	if (r->done)
		r->done(&r->pub, r->status, uv_hrtime() - r->start_ns, r->done_arg);
	r->done = NULL;
}

void
http_respond(struct http_req *req, int status, const char *content_type,
    const char *body, size_t len)
{
	struct hreq *r = (struct hreq *)req;
	struct conn *c = r->conn;
	uv_buf_t bufs[2];

	BUG_ON(!r->with_handler || r->streaming);
	r->status = status;
	req_done(r);
	if (r->aborted || c == NULL) {
		req_release(r);
		return;
	}
	if (r->body_stream)
		r->keep_alive = false;
	resp_head(r, status, content_type, (long long)len);
	bufs[0] = uv_buf_init(r->out.data, (unsigned)r->out.len);
	bufs[1] = uv_buf_init((char *)body,
	    !r->is_head && status_has_body(status) ? (unsigned)len : 0);
	if (conn_send(c, bufs, 2) == 0)
		conn_finished(c);
}

void
http_stream_start(struct http_req *req, int status, const char *content_type)
{
	struct hreq *r = (struct hreq *)req;
	struct conn *c = r->conn;
	uv_buf_t b;

	BUG_ON(!r->with_handler || r->streaming);
	r->streaming = true;
	if (r->aborted || c == NULL)
		return;
	if (r->http10)
		r->keep_alive = false;	/* no chunking: the end is our FIN */
	resp_head(r, status, content_type, -1);
	b = uv_buf_init(r->out.data, (unsigned)r->out.len);
	if (conn_send(c, &b, 1) < 0)
		return;
	c->state = CONN_STREAMING;
	conn_sync_reading(c);
}

int
http_stream_write(struct http_req *req, const char *data, size_t len)
{
	struct hreq *r = (struct hreq *)req;
	char num[24];
	uv_buf_t bufs[3];

	BUG_ON(!r->with_handler || !r->streaming);
	if (r->aborted || r->conn == NULL)
		return -EPIPE;
	if (len == 0 || r->is_head)
		return 0;
	if (r->http10) {
		bufs[0] = uv_buf_init((char *)data, (unsigned)len);
		return conn_send(r->conn, bufs, 1) < 0 ? -EPIPE : 0;
	}
	bufs[0].base = utoa(num + sizeof(num) - 2, len, 16);
	num[sizeof(num) - 3] = '\r';	/* over utoa's NUL */
	num[sizeof(num) - 2] = '\n';
	bufs[0].len = (size_t)(num + sizeof(num) - 1 - bufs[0].base);
	bufs[1] = uv_buf_init((char *)data, (unsigned)len);
	bufs[2] = uv_buf_init((char *)"\r\n", 2);
	return conn_send(r->conn, bufs, 3) < 0 ? -EPIPE : 0;
}

size_t
http_stream_pending(const struct http_req *req)
{
	const struct hreq *r = (const struct hreq *)req;

	if (r->aborted || r->conn == NULL)
		return 0;
	return uv_stream_get_write_queue_size((const uv_stream_t *)&r->conn->tcp);
}

void
http_stream_end(struct http_req *req)
{
	struct hreq *r = (struct hreq *)req;
	struct conn *c = r->conn;
	uv_buf_t b = uv_buf_init((char *)"0\r\n\r\n", 5);

	BUG_ON(!r->with_handler || !r->streaming);
	req_done(r);
	if (r->aborted || c == NULL) {
		req_release(r);
		return;
	}
	if (!r->http10 && !r->is_head && conn_send(c, &b, 1) < 0)
		return;
	conn_finished(c);
}

void
http_stream_abort(struct http_req *req)
{
	BUG_ON(!((struct hreq *)req)->streaming);
	http_raw_end(req, false);
}

void
http_req_on_abort(struct http_req *req, void (*cb)(struct http_req *, void *), void *arg)
{
	struct hreq *r = (struct hreq *)req;

	r->abort_cb = cb;
	r->abort_arg = arg;
}

bool
http_req_aborted(const struct http_req *req)
{
	return ((const struct hreq *)req)->aborted;
}

void
http_req_body(struct http_req *req, http_body_fn cb, void *arg)
{
	struct hreq *r = (struct hreq *)req;

	r->body_cb = cb;
	r->body_arg = arg;
}

void
http_req_body_pause(struct http_req *req, bool pause)
{
	struct hreq *r = (struct hreq *)req;
	struct conn *c = r->conn;

	if (r->body_paused == pause)
		return;
	r->body_paused = pause;
	if (r->aborted || c == NULL || c->state != CONN_BODY || !r->body_stream)
		return;
	if (!pause && !c->in_parse)
		conn_parse(c);
	else
		conn_sync_reading(c);
}

int
http_raw_write(struct http_req *req, const uv_buf_t *bufs, unsigned n)
{
	struct hreq *r = (struct hreq *)req;
	struct conn *c = r->conn;

	BUG_ON(!r->with_handler);
	if (r->aborted || c == NULL)
		return -EPIPE;
	r->streaming = true;
	if (conn_send(c, bufs, n) < 0)
		return -EPIPE;
	if (c->state == CONN_DISPATCHED) {
		c->state = CONN_STREAMING;
		conn_sync_reading(c);
	}
	return 0;
}

void
http_raw_end(struct http_req *req, bool keep_alive)
{
	struct hreq *r = (struct hreq *)req;
	struct conn *c = r->conn;

	BUG_ON(!r->with_handler);
	req_done(r);
	if (r->aborted || c == NULL) {
		req_release(r);
		return;
	}
	if (!keep_alive)
		r->keep_alive = false;
	conn_finished(c);
}

void
http_req_on_drain(struct http_req *req, void (*cb)(struct http_req *, void *), void *arg)
{
	struct hreq *r = (struct hreq *)req;

	r->drain_cb = cb;
	r->drain_arg = arg;
}

int
http_req_detach(struct http_req *req, uv_os_sock_t *fd, char **rest, size_t *rest_len)
{
	struct hreq *r = (struct hreq *)req;
	struct conn *c = r->conn;
	uv_os_fd_t ofd;
	size_t from;
	int nfd;

	BUG_ON(!r->with_handler);
	if (r->aborted || c == NULL)
		return -EPIPE;
	if (c->ssl)
		return -EPROTONOSUPPORT;	/* the bytes on the wire are TLS records */
	if (c->writes > 0)
		return -EBUSY;
	if (uv_fileno((uv_handle_t *)&c->tcp, &ofd) < 0)
		return -EPIPE;
	if ((nfd = fcntl(ofd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	from = r->parsed > r->head_len ? r->parsed : r->head_len;
	*rest_len = r->rlen > from ? r->rlen - from : 0;
	*rest = xmalloc(*rest_len + 1);
	if (*rest_len)
		memcpy(*rest, r->rbuf + from, *rest_len);
	*fd = nfd;
	r->with_handler = false;
	conn_drop(c);
	return 0;
}

/* Hands the tunnel's bytes past the request, [parsed, rlen), to its
 * callback; they leave the buffer first, so the callback may finish req. */
static void
tunnel_pass(struct conn *c)
{
	struct hreq *r = c->req;

	while (c->state == CONN_STREAMING && r->with_handler && r->tunnel_cb &&
	    !r->tunnel_paused && r->rlen > r->parsed) {
		size_t n = r->rlen - r->parsed;
		char *copy = xmalloc(n);
		memcpy(copy, r->rbuf + r->parsed, n);
		r->rlen = r->parsed;
		r->tunnel_cb(&r->pub, copy, n, r->tunnel_arg);
		free(copy);
		if (c->state == CONN_CLOSED || c->req != r)
			return;
	}
	conn_sync_reading(c);
}

void
http_req_tunnel(struct http_req *req, http_tunnel_fn cb, void *arg)
{
	struct hreq *r = (struct hreq *)req;

	BUG_ON(!r->with_handler || !r->streaming);
	r->tunnel_cb = cb;
	r->tunnel_arg = arg;
	if (r->conn && !r->aborted)
		tunnel_pass(r->conn);
}

void
http_req_tunnel_pause(struct http_req *req, bool pause)
{
	struct hreq *r = (struct hreq *)req;

	if (r->tunnel_paused == pause)
		return;
	r->tunnel_paused = pause;
	if (r->conn && !r->aborted && r->conn->state == CONN_STREAMING)
		tunnel_pass(r->conn);
}

unsigned
http_server_connections(const struct http_server *srv)
{
	return srv->nconns;
}
