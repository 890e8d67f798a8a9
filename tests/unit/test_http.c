/* test_http.c — unit tests for http.c: a real libuv loop serving on
 * 127.0.0.1:0, driven by a client thread with plain blocking sockets (every
 * socket times out after 3 s, a watchdog bounds the loop). Every test ends
 * with http_server_stop and checks the loop closes with no handle left.
 * Then the client (http_client.c) against a raw server thread that frames
 * each response by hand: Content-Length, chunked, the close, a timeout.
 *
 * By hand: V6_HTTP_SERVE=8080 build-x/unit/test_http serves "hello" on
 * 127.0.0.1:8080 forever instead, for `wrk -t1 -c50 -d5s`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "util.h"

#define MAX_RESP 12

struct resp {
	int status;
	char head[4096];
	char body[8192];
	size_t body_len;
	int chunks;
	bool chunked;
};

struct fixture {
	uv_loop_t loop;
	uv_async_t done;
	uv_timer_t watchdog;
	struct http_server *srv;
	pthread_t thread;
	void (*client)(struct fixture *);
	int port;
	bool watchdog_fired;

	/* filled by the client thread, checked after join */
	struct resp r[MAX_RESP];
	int nresp;
	int status_100;		/* status of an interim response */
	long elapsed_ms;
	int eof;		/* 1: server closed the connection */
	int ok;			/* client-specific success flag */

	/* set by handlers on the loop thread */
	atomic_int aborts;
	atomic_int epipe_after_abort;
	atomic_int held;
	struct http_req *held_req;
	size_t pending;		/* http_stream_pending under a client not reading */
	atomic_int flooded;
	atomic_int drained;	/* http_server_drain's callback ran */
};

/* ---- client side (runs in its own thread) ------------------------------ */

struct cl {
	int fd;
	size_t len;
	char buf[128 * 1024];
};

static long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct cl *
cl_open(int port)
{
	struct cl *c = calloc(1, sizeof(*c));
	struct sockaddr_in sin;
	struct timeval tv = { 3, 0 };

	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(c->fd);
		c->fd = -1;
	}
	return c;
}

static void
cl_close(struct cl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static void
cl_sendn(struct cl *c, const char *s, size_t n)
{
	ssize_t w;

	while (n > 0 && (w = send(c->fd, s, n, MSG_NOSIGNAL)) > 0) {
		s += w;
		n -= (size_t)w;
	}
}

static void
cl_send(struct cl *c, const char *s)
{
	cl_sendn(c, s, strlen(s));
}

/* Reads more; returns bytes read, 0 at EOF, -1 on error or timeout. */
static int
cl_fill(struct cl *c)
{
	ssize_t n;

	if (c->len == sizeof(c->buf))
		return -1;
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n > 0)
		c->len += (size_t)n;
	return n < 0 ? -1 : (int)n;
}

static void
cl_consume(struct cl *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

static char *
cl_find(struct cl *c, const char *s)
{
	return memmem(c->buf, c->len, s, strlen(s));
}

/* Waits until s is in the buffer; returns its offset or -1. */
static long
cl_wait(struct cl *c, const char *s)
{
	char *p;

	while ((p = cl_find(c, s)) == NULL)
		if (cl_fill(c) <= 0)
			return -1;
	return p - c->buf;
}

static int
cl_wait_len(struct cl *c, size_t n)
{
	while (c->len < n)
		if (cl_fill(c) <= 0)
			return -1;
	return 0;
}

/* Value of a response header (case-insensitive name) or NULL; static. */
static const char *
resp_header(const struct resp *r, const char *name)
{
	static char val[256];
	char pat[128];
	const char *p;
	size_t n;

	snprintf(pat, sizeof(pat), "\r\n%s:", name);
	if ((p = strcasestr(r->head, pat)) == NULL)
		return NULL;
	p += strlen(pat);
	p += strspn(p, " ");
	n = strcspn(p, "\r");
	if (n >= sizeof(val))
		n = sizeof(val) - 1;
	memcpy(val, p, n);
	val[n] = '\0';
	return val;
}

static void
resp_body_add(struct resp *r, const char *p, size_t n)
{
	if (r->body_len + n >= sizeof(r->body))
		n = sizeof(r->body) - 1 - r->body_len;
	memcpy(r->body + r->body_len, p, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
}

static int
cl_read_chunked(struct cl *c, struct resp *r)
{
	long eol;
	unsigned long size;

	for (;;) {
		if ((eol = cl_wait(c, "\r\n")) < 0)
			return -1;
		size = strtoul(c->buf, NULL, 16);
		cl_consume(c, (size_t)eol + 2);
		if (size == 0)
			return cl_wait(c, "\r\n") < 0 ? -1 : (cl_consume(c, 2), 0);
		if (cl_wait_len(c, size + 2) < 0)
			return -1;
		resp_body_add(r, c->buf, size);
		cl_consume(c, size + 2);
		r->chunks++;
	}
}

/* Reads one response (an interim 1xx too). no_body: answer to HEAD. */
static int
cl_response(struct cl *c, struct resp *r, bool no_body)
{
	long end;
	const char *v;
	size_t n;

	memset(r, 0, sizeof(*r));
	if ((end = cl_wait(c, "\r\n\r\n")) < 0)
		return -1;
	n = (size_t)end + 4 < sizeof(r->head) ? (size_t)end + 4 : sizeof(r->head) - 1;
	memcpy(r->head, c->buf, n);
	r->head[n] = '\0';
	cl_consume(c, (size_t)end + 4);
	if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
		return -1;
	if (no_body || r->status < 200 || r->status == 204 || r->status == 304)
		return 0;
	v = resp_header(r, "transfer-encoding");
	if (v && strcasecmp(v, "chunked") == 0) {
		r->chunked = true;
		return cl_read_chunked(c, r);
	}
	if ((v = resp_header(r, "content-length")) != NULL) {
		n = strtoul(v, NULL, 10);
		if (cl_wait_len(c, n) < 0)
			return -1;
		resp_body_add(r, c->buf, n);
		cl_consume(c, n);
		return 0;
	}
	while (cl_fill(c) > 0)
		;
	resp_body_add(r, c->buf, c->len);
	cl_consume(c, c->len);
	return 0;
}

/* True when the server closes the connection (EOF or reset) in time. */
static bool
cl_sees_close(struct cl *c)
{
	char b[4096];
	ssize_t n;

	while ((n = recv(c->fd, b, sizeof(b), 0)) > 0)
		;
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* One request on a fresh connection; its response goes to fx->r[fx->nresp]. */
static void
one_shot(struct fixture *fx, const char *req)
{
	struct cl *c = cl_open(fx->port);

	cl_send(c, req);
	if (cl_response(c, &fx->r[fx->nresp], false) == 0)
		fx->nresp++;
	fx->eof = cl_sees_close(c);
	cl_close(c);
}

static void *
client_main(void *arg)
{
	struct fixture *fx = arg;

	fx->client(fx);
	uv_async_send(&fx->done);
	return NULL;
}

/* ---- server side: handlers ---------------------------------------------- */

struct later {
	uv_timer_t timer;
	struct http_req *req;
	int step;
};

static struct later *
later_new(uv_loop_t *loop, struct http_req *req, uv_timer_cb cb, unsigned ms,
    unsigned repeat)
{
	struct later *l = xcalloc(1, sizeof(*l));

	l->req = req;
	uv_timer_init(loop, &l->timer);
	l->timer.data = l;
	uv_timer_start(&l->timer, cb, ms, repeat);
	return l;
}

static void
later_free(uv_handle_t *h)
{
	free(h->data);
}

static void
h_hello(struct fixture *fx, struct http_req *req)
{
	(void)fx;
	http_respond(req, 200, "text/plain", "hello", 5);
}

static void
h_echo(struct fixture *fx, struct http_req *req)
{
	char *s = xasprintf("%s %s ?%s [%s] %zu", req->method, req->path, req->query,
	    req->body, req->body_len);

	(void)fx;
	http_add_header(req, "X-Remote", req->remote_addr);
	http_add_header(req, "X-Test", http_req_header(req, "x-TEST") ?
	    http_req_header(req, "x-TEST") : "(none)");
	http_respond(req, 200, "text/plain", s, strlen(s));
	free(s);
}

static void
defer_fire(uv_timer_t *t)
{
	struct later *l = t->data;

	http_respond(l->req, 200, "text/plain", "deferred", 8);
	uv_close((uv_handle_t *)t, later_free);
}

static void
h_defer(struct fixture *fx, struct http_req *req)
{
	later_new(&fx->loop, req, defer_fire, 50, 0);
}

static void
stream_tick(uv_timer_t *t)
{
	static const char *const words[] = { "one", "two", "three" };
	struct later *l = t->data;

	if (l->step < 3 && http_stream_write(l->req, words[l->step],
	    strlen(words[l->step])) == 0) {
		l->step++;
		return;
	}
	http_stream_end(l->req);
	uv_close((uv_handle_t *)t, later_free);
}

static void
h_stream(struct fixture *fx, struct http_req *req)
{
	http_stream_start(req, 200, "text/plain");
	later_new(&fx->loop, req, stream_tick, 10, 10);
}

static void
watch_abort(struct http_req *req, void *arg)
{
	struct fixture *fx = arg;

	if (http_req_aborted(req) && http_stream_write(req, "x", 1) == -EPIPE &&
	    http_stream_pending(req) == 0)
		atomic_fetch_add(&fx->epipe_after_abort, 1);
	atomic_fetch_add(&fx->aborts, 1);
	http_stream_end(req);
}

/* A body that fails half-way: one chunk, then cut. */
static void
h_cut(struct fixture *fx, struct http_req *req)
{
	(void)fx;
	http_stream_start(req, 200, "application/json");
	http_stream_write(req, "{\"items\": [1,", 13);
	http_stream_abort(req);
}

static void
h_watch(struct fixture *fx, struct http_req *req)
{
	http_stream_start(req, 200, "application/json");
	http_stream_write(req, "{\"type\":\"ADDED\"}\n", 17);
	http_req_on_abort(req, watch_abort, fx);
}

static void
hold_abort(struct http_req *req, void *arg)
{
	struct fixture *fx = arg;

	atomic_fetch_add(&fx->aborts, 1);
	http_respond(req, 200, "text/plain", "late", 4);
}

static void
h_hold(struct fixture *fx, struct http_req *req)
{
	fx->held_req = req;
	http_req_on_abort(req, hold_abort, fx);
	atomic_store(&fx->held, 1);
}

static void
h_query(struct fixture *fx, struct http_req *req)
{
	static const char *const keys[] = { "a", "b", "c", "d", "e", "z" };
	struct buf b = BUF_INIT;
	size_t i;
	char *v;

	(void)fx;
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		v = http_query_get(req->query, keys[i]);
		buf_printf(&b, "%s%s=%s", i ? "|" : "", keys[i], v ? v : "(null)");
		free(v);
	}
	http_respond(req, 200, "text/plain", b.data, b.len);
	buf_free(&b);
}

/* Length and a checksum of the body, for bodies too big to echo. */
static void
h_sum(struct fixture *fx, struct http_req *req)
{
	unsigned long sum = 0;
	size_t i;
	char *s;

	(void)fx;
	for (i = 0; i < req->body_len; i++)
		sum = sum * 31 + (unsigned char)req->body[i];
	s = xasprintf("len=%zu sum=%lu nul=%d", req->body_len, sum, req->body[req->body_len] == '\0');
	http_respond(req, 200, "text/plain", s, strlen(s));
	free(s);
}

/* Streams 16 MiB at once: most of it has to wait in libuv's queue. */
static void
h_flood(struct fixture *fx, struct http_req *req)
{
	char *chunk = xcalloc(1, 1024 * 1024);
	int i;

	http_stream_start(req, 200, "application/octet-stream");
	for (i = 0; i < 16; i++)
		http_stream_write(req, chunk, 1024 * 1024);
	fx->pending = http_stream_pending(req);
	atomic_store(&fx->flooded, 1);
	http_stream_end(req);
	free(chunk);
}

static void
on_drained(void *arg)
{
	struct fixture *fx = arg;

	atomic_fetch_add(&fx->drained, 1);
}

/* Drains the server, answers this request and the held one. */
static void
h_drain(struct fixture *fx, struct http_req *req)
{
	http_server_drain(fx->srv, on_drained, fx);
	http_respond(req, 200, "text/plain", "draining", 8);
	if (fx->held_req) {
		http_req_on_abort(fx->held_req, NULL, NULL);
		http_respond(fx->held_req, 200, "text/plain", "held", 4);
		fx->held_req = NULL;
	}
}

static const struct {
	const char *prefix;
	void (*fn)(struct fixture *, struct http_req *);
} routes[] = {
	{ "/drain", h_drain },
	{ "/hello", h_hello },
	{ "/defer", h_defer },
	{ "/stream", h_stream },
	{ "/cut", h_cut },
	{ "/watch", h_watch },
	{ "/hold", h_hold },
	{ "/q", h_query },
	{ "/sum", h_sum },
	{ "/flood", h_flood },
	{ "/", h_echo },
};

static void
handler(struct http_req *req, void *arg)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(routes); i++)
		if (str_has_prefix(req->path, routes[i].prefix)) {
			routes[i].fn(arg, req);
			return;
		}
}

/* ---- harness ------------------------------------------------------------- */

static void
on_client_done(uv_async_t *a)
{
	struct fixture *fx = a->data;

	http_server_stop(fx->srv);
	uv_close((uv_handle_t *)a, NULL);
}

static void
on_watchdog(uv_timer_t *t)
{
	struct fixture *fx = t->data;

	fx->watchdog_fired = true;
	uv_stop(&fx->loop);
}

/* Serves with cfg until client returns, then stops the server and checks
 * that the loop ends with no handle left. */
static struct fixture *
run(struct http_config *cfg, void (*client)(struct fixture *))
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_int_equal(uv_loop_init(&fx->loop), 0);
	cfg->handler = handler;
	cfg->handler_arg = fx;
	assert_int_equal(http_server_start(&fx->loop, "127.0.0.1", 0, cfg, &fx->srv), 0);
	fx->port = http_server_port(fx->srv);
	assert_true(fx->port > 0);
	uv_async_init(&fx->loop, &fx->done, on_client_done);
	fx->done.data = fx;
	uv_timer_init(&fx->loop, &fx->watchdog);
	fx->watchdog.data = fx;
	uv_timer_start(&fx->watchdog, on_watchdog, 15000, 0);
	uv_unref((uv_handle_t *)&fx->watchdog);
	fx->client = client;
	assert_int_equal(pthread_create(&fx->thread, NULL, client_main, fx), 0);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&fx->watchdog, NULL);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	pthread_join(fx->thread, NULL);
	assert_false(fx->watchdog_fired);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	return fx;
}

/* ---- tests --------------------------------------------------------------- */

static void
c_get(struct fixture *fx)
{
	one_shot(fx, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
}

static void
test_get_hello(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_get);

	(void)state;
	assert_int_equal(fx->nresp, 1);
	assert_int_equal(fx->r[0].status, 200);
	assert_string_equal(fx->r[0].body, "hello");
	assert_string_equal(resp_header(&fx->r[0], "content-length"), "5");
	assert_string_equal(resp_header(&fx->r[0], "content-type"), "text/plain");
	assert_non_null(resp_header(&fx->r[0], "date"));
	assert_string_equal(resp_header(&fx->r[0], "connection"), "close");
	assert_true(fx->eof);
	free(fx);
}

static void
c_post(struct fixture *fx)
{
	one_shot(fx, "POST /echo HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\n"
	    "Content-Length: 7\r\nConnection: close\r\n\r\nname=v6");
	one_shot(fx, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	    "Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
}

static void
test_post_bodies(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_post);

	(void)state;
	assert_int_equal(fx->nresp, 2);
	assert_int_equal(fx->r[0].status, 200);
	assert_string_equal(fx->r[0].body, "POST /echo ? [name=v6] 7");
	assert_string_equal(resp_header(&fx->r[0], "x-test"), "yes");
	assert_true(str_has_prefix(resp_header(&fx->r[0], "x-remote"), "127.0.0.1:"));
	assert_string_equal(fx->r[1].body, "POST /echo ? [hello world] 11");
	free(fx);
}

static void
c_keepalive(struct fixture *fx)
{
	struct cl *c = cl_open(fx->port);
	int i;

	for (i = 0; i < 2; i++) {
		cl_send(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
		if (cl_response(c, &fx->r[fx->nresp], false) == 0)
			fx->nresp++;
	}
	cl_close(c);
	/* HTTP/1.0 closes unless asked; with keep-alive it stays open */
	one_shot(fx, "GET /hello HTTP/1.0\r\n\r\n");
	c = cl_open(fx->port);
	cl_send(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	cl_send(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	fx->ok = cl_response(c, &fx->r[3], false) == 0 &&
	    cl_response(c, &fx->r[3], false) == 0 && fx->r[3].status == 200;
	cl_close(c);
}

static void
test_keepalive(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_keepalive);

	(void)state;
	assert_int_equal(fx->nresp, 3);
	assert_int_equal(fx->r[0].status, 200);
	assert_int_equal(fx->r[1].status, 200);
	assert_null(resp_header(&fx->r[1], "connection"));
	assert_string_equal(fx->r[2].body, "hello");
	assert_string_equal(resp_header(&fx->r[2], "connection"), "close");
	assert_true(fx->eof);
	assert_true(fx->ok);
	assert_string_equal(resp_header(&fx->r[3], "connection"), "keep-alive");
	free(fx);
}

static void
c_pipeline(struct fixture *fx)
{
	struct cl *c = cl_open(fx->port);

	cl_send(c, "GET /defer HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
	    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
	while (fx->nresp < 3 && cl_response(c, &fx->r[fx->nresp], false) == 0)
		fx->nresp++;
	fx->eof = cl_sees_close(c);
	cl_close(c);
}

static void
test_pipeline_in_order(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_pipeline);

	(void)state;
	assert_int_equal(fx->nresp, 3);
	assert_string_equal(fx->r[0].body, "deferred");
	assert_string_equal(fx->r[1].body, "hello");
	assert_string_equal(fx->r[2].body, "POST /echo ? [hi] 2");
	assert_true(fx->eof);
	free(fx);
}

static void
c_deferred(struct fixture *fx)
{
	long t0 = mono_ms();

	one_shot(fx, "GET /defer HTTP/1.1\r\nConnection: close\r\n\r\n");
	fx->elapsed_ms = mono_ms() - t0;
}

static void
test_deferred_response(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_deferred);

	(void)state;
	assert_int_equal(fx->nresp, 1);
	assert_string_equal(fx->r[0].body, "deferred");
	assert_true(fx->elapsed_ms >= 45);
	free(fx);
}

static void
c_stream(struct fixture *fx)
{
	struct cl *c = cl_open(fx->port);

	cl_send(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
	if (cl_response(c, &fx->r[0], false) == 0)
		fx->nresp++;
	/* the connection is reusable after the stream ends */
	cl_send(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	if (cl_response(c, &fx->r[1], false) == 0)
		fx->nresp++;
	cl_close(c);
}

static void
test_stream_three_chunks(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_stream);

	(void)state;
	assert_int_equal(fx->nresp, 2);
	assert_true(fx->r[0].chunked);
	assert_int_equal(fx->r[0].chunks, 3);
	assert_string_equal(fx->r[0].body, "onetwothree");
	assert_null(resp_header(&fx->r[0], "content-length"));
	assert_string_equal(fx->r[1].body, "hello");
	free(fx);
}

static void
c_stream_cut(struct fixture *fx)
{
	struct cl *c = cl_open(fx->port);

	cl_send(c, "GET /cut HTTP/1.1\r\nHost: x\r\n\r\n");
	fx->ok = cl_response(c, &fx->r[0], false) < 0;	/* no final chunk */
	fx->eof = cl_sees_close(c);
	cl_close(c);
}

/* A stream cut short ends without its final chunk and closes: the client
 * cannot take the part it got for the whole body. */
static void
test_stream_cut_short_is_an_error(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_stream_cut);

	(void)state;
	assert_true(fx->ok);
	assert_int_equal(fx->r[0].status, 200);
	assert_string_equal(fx->r[0].body, "{\"items\": [1,");
	assert_true(fx->eof);
	free(fx);
}

static void
c_stream_abort(struct fixture *fx)
{
	struct cl *c = cl_open(fx->port);
	long t0;

	cl_send(c, "GET /watch HTTP/1.1\r\nHost: x\r\n\r\n");
	fx->ok = cl_wait(c, "ADDED") >= 0;
	cl_close(c);
	/* the abort must come from the disconnect, before the server stops */
	for (t0 = mono_ms(); mono_ms() - t0 < 3000 && !atomic_load(&fx->aborts);)
		usleep(1000);
	fx->eof = atomic_load(&fx->aborts);
}

static void
test_stream_client_disconnect_aborts(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_stream_abort);

	(void)state;
	assert_true(fx->ok);
	assert_int_equal(fx->eof, 1);
	assert_int_equal(atomic_load(&fx->aborts), 1);
	assert_int_equal(atomic_load(&fx->epipe_after_abort), 1);
	free(fx);
}

static void
c_bad(struct fixture *fx)
{
	one_shot(fx, "GARBAGE\r\n\r\n");
	one_shot(fx, "GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n");
	one_shot(fx, "GET /x HTTP/1.1\r\nBad Header Line\r\n\r\n");
	one_shot(fx, "GET /x HTTP/1.1\r\nExpect: something-else\r\n\r\n");
}

static char *
error_body(int status, const char *message, const char **ctype)
{
	*ctype = "application/json";
	return xasprintf("{\"code\":%d,\"message\":\"%s\"}", status, message);
}

static void
test_malformed_requests_400(void **state)
{
	struct http_config cfg = { .error_body = error_body };
	struct fixture *fx = run(&cfg, c_bad);

	(void)state;
	assert_int_equal(fx->nresp, 4);
	assert_int_equal(fx->r[0].status, 400);
	assert_true(str_has_prefix(fx->r[0].body, "{\"code\":400,"));
	assert_string_equal(resp_header(&fx->r[0], "content-type"), "application/json");
	assert_string_equal(resp_header(&fx->r[0], "connection"), "close");
	assert_int_equal(fx->r[1].status, 400);
	assert_int_equal(fx->r[2].status, 400);
	assert_int_equal(fx->r[3].status, 417);
	assert_true(fx->eof);
	free(fx);
}

/* Request smuggling shapes, each after a plain GET on the same connection
 * (read by http_head.c's fast path, which must leave the parser ready for
 * the next request): http_parser refuses every one with 400 and the
 * connection closes; the GET before it is answered. */
static void
c_smuggle(struct fixture *fx)
{
	static const char *const bad[] = {
		"POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "0\r\n\r\n",
		"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
		    "0\r\n\r\n",
		"GET /x HTTP/1.1\r\nHo(st: x\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
		"G@T /x HTTP/1.1\r\n\r\n",
	};
	char req[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cl *c = cl_open(fx->port);
		snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n%s", bad[i]);
		cl_send(c, req);
		if (cl_response(c, &fx->r[fx->nresp], false) == 0)
			fx->nresp++;
		if (cl_response(c, &fx->r[fx->nresp], false) == 0)
			fx->nresp++;
		fx->ok += cl_sees_close(c);
		cl_close(c);
	}
}

static void
test_smuggling_refused_after_fast_head(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_smuggle);

	(void)state;
	assert_int_equal(fx->nresp, 12);
	for (int i = 0; i < 12; i += 2) {
		assert_int_equal(fx->r[i].status, 200);
		assert_string_equal(fx->r[i].body, "hello");
		assert_int_equal(fx->r[i + 1].status, 400);
	}
	assert_int_equal(fx->ok, 6);
	free(fx);
}

static void
big_headers(struct fixture *fx, size_t size)
{
	struct buf b = BUF_INIT;
	int i;

	buf_puts(&b, "GET /hello HTTP/1.1\r\nHost: x\r\n");
	for (i = 0; b.len < size; i++)
		buf_printf(&b, "X-Pad-%d: %0100d\r\n", i, i);
	buf_puts(&b, "\r\n");
	one_shot(fx, b.data);
	buf_free(&b);
}

static void
c_big_headers(struct fixture *fx)
{
	big_headers(fx, 70 * 1024);
}

static void
c_bigger_headers(struct fixture *fx)
{
	big_headers(fx, 100 * 1024);
}

static void
test_headers_limit_configurable(void **state)
{
	struct http_config cfg = { .max_header_bytes = 128 * 1024 };
	struct fixture *fx = run(&cfg, c_bigger_headers);

	(void)state;
	assert_int_equal(fx->nresp, 1);
	assert_int_equal(fx->r[0].status, 200);
	free(fx);
}

static void
test_headers_too_large_431(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_big_headers);

	(void)state;
	assert_int_equal(fx->nresp, 1);
	assert_int_equal(fx->r[0].status, 431);
	assert_true(fx->eof);
	free(fx);
}

static void
c_big_body(struct fixture *fx)
{
	struct buf b = BUF_INIT;
	struct cl *c;
	int i;

	buf_puts(&b, "POST /echo HTTP/1.1\r\nContent-Length: 2000\r\n\r\n");
	for (i = 0; i < 2000; i++)
		buf_putc(&b, 'a');
	one_shot(fx, b.data);
	buf_reset(&b);
	buf_puts(&b, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (i = 0; i < 3; i++)
		buf_printf(&b, "320\r\n%0800d\r\n", i);
	buf_puts(&b, "0\r\n\r\n");
	one_shot(fx, b.data);
	buf_free(&b);
	/* with Expect, 413 comes before the body is sent */
	c = cl_open(fx->port);
	cl_send(c, "POST /echo HTTP/1.1\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n");
	if (cl_response(c, &fx->r[2], false) == 0)
		fx->nresp++;
	cl_close(c);
}

static void
test_body_too_large_413(void **state)
{
	struct http_config cfg = { .max_body_bytes = 1024 };
	struct fixture *fx = run(&cfg, c_big_body);

	(void)state;
	assert_int_equal(fx->nresp, 3);
	assert_int_equal(fx->r[0].status, 413);
	assert_int_equal(fx->r[1].status, 413);
	assert_int_equal(fx->r[2].status, 413);
	free(fx);
}

static unsigned long
sum_of(const char *p, size_t n)
{
	unsigned long sum = 0;

	while (n--)
		sum = sum * 31 + (unsigned char)*p++;
	return sum;
}

/* 1 MiB bodies sent in pieces: the read buffer must not keep them. */
static void
c_large_body(struct fixture *fx)
{
	size_t n = 1024 * 1024, off;
	char *body = malloc(n), head[256];
	struct cl *c = cl_open(fx->port);

	for (off = 0; off < n; off++)
		body[off] = (char)('a' + off % 23);
	snprintf(head, sizeof(head), "POST /sum HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", n);
	cl_send(c, head);
	for (off = 0; off < n; off += 60000)
		cl_sendn(c, body + off, n - off < 60000 ? n - off : 60000);
	if (cl_response(c, &fx->r[0], false) == 0)
		fx->nresp++;
	cl_send(c, "POST /sum HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (off = 0; off < n; off += 50000) {
		snprintf(head, sizeof(head), "%zx\r\n", n - off < 50000 ? n - off : 50000);
		cl_send(c, head);
		cl_sendn(c, body + off, n - off < 50000 ? n - off : 50000);
		cl_send(c, "\r\n");
	}
	cl_send(c, "0\r\n\r\n");
	if (cl_response(c, &fx->r[1], false) == 0)
		fx->nresp++;
	snprintf(fx->r[2].body, sizeof(fx->r[2].body), "len=%zu sum=%lu nul=1", n, sum_of(body, n));
	cl_close(c);
	free(body);
}

static void
test_large_bodies(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_large_body);

	(void)state;
	assert_int_equal(fx->nresp, 2);
	assert_string_equal(fx->r[0].body, fx->r[2].body);
	assert_string_equal(fx->r[1].body, fx->r[2].body);
	free(fx);
}

static void
c_flood(struct fixture *fx)
{
	struct cl *c = cl_open(fx->port);
	long t0;

	cl_send(c, "GET /flood HTTP/1.1\r\n\r\n");
	fx->ok = cl_wait(c, "\r\n\r\n") >= 0;
	/* closing earlier would reset the connection under the handler */
	for (t0 = mono_ms(); mono_ms() - t0 < 3000 && !atomic_load(&fx->flooded);)
		usleep(1000);
	cl_close(c);
}

static void
test_stream_pending_reports_backlog(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_flood);

	(void)state;
	assert_true(fx->ok);
	assert_true(fx->pending > 1024 * 1024);
	free(fx);
}

static void
c_slowloris(struct fixture *fx)
{
	struct cl *c = cl_open(fx->port);
	long t0 = mono_ms();

	cl_send(c, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow:");
	if (cl_response(c, &fx->r[0], false) == 0)
		fx->nresp++;
	fx->elapsed_ms = mono_ms() - t0;
	fx->eof = cl_sees_close(c);
	cl_close(c);
}

static void
test_slowloris_408(void **state)
{
	struct http_config cfg = { .header_timeout_ms = 200 };
	struct fixture *fx = run(&cfg, c_slowloris);

	(void)state;
	assert_int_equal(fx->nresp, 1);
	assert_int_equal(fx->r[0].status, 408);
	assert_true(fx->elapsed_ms >= 150 && fx->elapsed_ms < 1000);
	assert_true(fx->eof);
	free(fx);
}

static void
c_idle(struct fixture *fx)
{
	struct cl *c = cl_open(fx->port);
	long t0;

	cl_send(c, "GET /hello HTTP/1.1\r\n\r\n");
	if (cl_response(c, &fx->r[0], false) == 0)
		fx->nresp++;
	t0 = mono_ms();
	fx->eof = cl_sees_close(c);
	fx->elapsed_ms = mono_ms() - t0;
	cl_close(c);
}

static void
test_idle_keepalive_closed(void **state)
{
	struct http_config cfg = { .idle_timeout_ms = 200 };
	struct fixture *fx = run(&cfg, c_idle);

	(void)state;
	assert_int_equal(fx->nresp, 1);
	assert_true(fx->eof);
	assert_true(fx->elapsed_ms >= 150 && fx->elapsed_ms < 1500);
	free(fx);
}

static void
c_continue(struct fixture *fx)
{
	struct cl *c = cl_open(fx->port);
	struct resp interim;

	cl_send(c, "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
	    "Expect: 100-Continue\r\n\r\n");
	if (cl_response(c, &interim, false) == 0)
		fx->status_100 = interim.status;
	cl_send(c, "abcde");
	if (cl_response(c, &fx->r[0], false) == 0)
		fx->nresp++;
	cl_close(c);
}

static void
test_expect_100_continue(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_continue);

	(void)state;
	assert_int_equal(fx->status_100, 100);
	assert_int_equal(fx->nresp, 1);
	assert_string_equal(fx->r[0].body, "PUT /echo ? [abcde] 5");
	free(fx);
}

static void
c_percent(struct fixture *fx)
{
	one_shot(fx, "GET /a%20b/%41%2f?x=%20 HTTP/1.1\r\nConnection: close\r\n\r\n");
	one_shot(fx, "GET /x%00y HTTP/1.1\r\n\r\n");
	one_shot(fx, "GET /bad%zz HTTP/1.1\r\n\r\n");
	one_shot(fx, "GET /short%4 HTTP/1.1\r\n\r\n");
}

static void
test_percent_decoding(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_percent);

	(void)state;
	assert_int_equal(fx->nresp, 4);
	assert_string_equal(fx->r[0].body, "GET /a b/A/ ?x=%20 [] 0");
	assert_int_equal(fx->r[1].status, 400);
	assert_int_equal(fx->r[2].status, 400);
	assert_int_equal(fx->r[3].status, 400);
	free(fx);
}

static void
c_query(struct fixture *fx)
{
	one_shot(fx, "GET /q?a=1&b=hello+world&c=%41%42&d&e= HTTP/1.1\r\nConnection: close\r\n\r\n");
	one_shot(fx, "GET http://example.com/q?a=abs HTTP/1.1\r\nConnection: close\r\n\r\n");
}

static void
test_query_parsing(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_query);

	(void)state;
	assert_int_equal(fx->nresp, 2);
	assert_string_equal(fx->r[0].body, "a=1|b=hello world|c=AB|d=|e=|z=(null)");
	assert_string_equal(fx->r[1].body, "a=abs|b=(null)|c=(null)|d=(null)|e=(null)|z=(null)");
	free(fx);
}

static void
test_query_get(void **state)
{
	char *v;

	(void)state;
	assert_null(http_query_get(NULL, "a"));
	assert_null(http_query_get("", "a"));
	assert_null(http_query_get("ab=1", "a"));
	v = http_query_get("x=1&a%20b=2%zz", "a b");
	assert_string_equal(v, "2%zz");
	free(v);
	v = http_query_get("watch=true&resourceVersion=12", "resourceVersion");
	assert_string_equal(v, "12");
	free(v);
	v = http_query_get("labelSelector=app%3Dweb%2Ctier+in+(a)", "labelSelector");
	assert_string_equal(v, "app=web,tier in (a)");
	free(v);
}

static void
c_head(struct fixture *fx)
{
	struct cl *c = cl_open(fx->port);

	cl_send(c, "HEAD /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
	if (cl_response(c, &fx->r[0], true) == 0)
		fx->nresp++;
	if (cl_response(c, &fx->r[1], false) == 0)
		fx->nresp++;
	cl_close(c);
}

static void
test_head_has_no_body(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_head);

	(void)state;
	assert_int_equal(fx->nresp, 2);
	assert_string_equal(resp_header(&fx->r[0], "content-length"), "5");
	assert_int_equal(fx->r[1].status, 200);
	assert_string_equal(fx->r[1].body, "hello");
	free(fx);
}

static void
c_max_conns(struct fixture *fx)
{
	struct cl *a = cl_open(fx->port), *b = cl_open(fx->port);

	cl_send(a, "GET /hello HTTP/1.1\r\n\r\n");
	cl_send(b, "GET /hello HTTP/1.1\r\n\r\n");
	if (cl_response(a, &fx->r[0], false) == 0)
		fx->nresp++;
	if (cl_response(b, &fx->r[1], false) == 0)
		fx->nresp++;
	one_shot(fx, "GET /hello HTTP/1.1\r\n\r\n");
	cl_close(a);
	cl_close(b);
}

static void
test_max_connections_503(void **state)
{
	struct http_config cfg = { .max_connections = 2 };
	struct fixture *fx = run(&cfg, c_max_conns);

	(void)state;
	assert_int_equal(fx->nresp, 3);
	assert_int_equal(fx->r[0].status, 200);
	assert_int_equal(fx->r[1].status, 200);
	assert_int_equal(fx->r[2].status, 503);
	assert_true(fx->eof);
	free(fx);
}

static void
c_hold(struct fixture *fx)
{
	struct cl *c = cl_open(fx->port);
	long t0;

	cl_send(c, "GET /hold HTTP/1.1\r\n\r\n");
	for (t0 = mono_ms(); mono_ms() - t0 < 3000 && !atomic_load(&fx->held);)
		usleep(1000);
	fx->ok = atomic_load(&fx->held);
	/* returning stops the server while the handler holds the request */
	cl_close(c);
}

static void
test_stop_with_request_held(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_hold);

	(void)state;
	assert_true(fx->ok);
	assert_int_equal(atomic_load(&fx->aborts), 1);
	free(fx);
}

/* A: a request held by the handler; B: an idle keep-alive connection;
 * C asks for the drain. Every answer says Connection: close and is followed
 * by the server's close; B's next request within the grace is answered;
 * nothing new is accepted. */
static void
c_drain(struct fixture *fx)
{
	struct cl *a = cl_open(fx->port), *b = cl_open(fx->port), *c = cl_open(fx->port), *d;
	long t0;
	bool ok = true;

	cl_send(a, "GET /hold HTTP/1.1\r\n\r\n");
	for (t0 = mono_ms(); mono_ms() - t0 < 3000 && !atomic_load(&fx->held);)
		usleep(1000);
	cl_send(b, "GET /hello HTTP/1.1\r\n\r\n");
	ok = ok && cl_response(b, &fx->r[0], false) == 0;
	cl_send(c, "GET /drain HTTP/1.1\r\n\r\n");
	ok = ok && cl_response(c, &fx->r[1], false) == 0 && cl_fill(c) == 0;
	ok = ok && cl_response(a, &fx->r[2], false) == 0 && cl_fill(a) == 0;
	cl_send(b, "GET /hello HTTP/1.1\r\n\r\n");
	ok = ok && cl_response(b, &fx->r[3], false) == 0 && cl_fill(b) == 0;
	fx->nresp = 4;
	d = cl_open(fx->port);
	ok = ok && d->fd < 0;			/* not listening any more */
	cl_close(a);
	cl_close(b);
	cl_close(c);
	cl_close(d);
	for (t0 = mono_ms(); mono_ms() - t0 < 3000 && !atomic_load(&fx->drained);)
		usleep(1000);
	fx->ok = ok;
}

static void
test_drain_closes_after_each_answer(void **state)
{
	struct http_config cfg = { 0 };
	struct fixture *fx = run(&cfg, c_drain);
	int i;

	(void)state;
	assert_true(fx->ok);
	assert_null(resp_header(&fx->r[0], "Connection"));	/* before the drain */
	for (i = 1; i < 4; i++) {
		assert_int_equal(fx->r[i].status, 200);
		assert_non_null(resp_header(&fx->r[i], "Connection"));
		assert_string_equal(resp_header(&fx->r[i], "Connection"), "close");
	}
	assert_string_equal(fx->r[2].body, "held");
	assert_int_equal(atomic_load(&fx->drained), 1);
	free(fx);
}

static void
test_start_errors(void **state)
{
	struct http_config cfg = { .handler = handler };
	struct http_server *srv = NULL;
	uv_loop_t loop;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(http_server_start(&loop, "not-an-ip", 0, &cfg, &srv), -EINVAL);
	assert_int_equal(http_server_start(&loop, "::1", 0, &cfg, &srv), 0);
	assert_true(http_server_port(srv) > 0);
	http_server_stop(srv);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- the client (http_client.c) against a raw server thread ------------ */

/* Answers one connection with parts (a pause between them), then closes
 * it, or holds it open until the client closes (hold). */
struct raw_srv {
	int lfd, port;
	const char *parts[4];
	int nparts;
	bool hold;
	char request[2048];
	pthread_t thread;
};

static void *
raw_serve(void *arg)
{
	struct raw_srv *r = arg;
	struct timeval tv = { 3, 0 };
	int fd = accept(r->lfd, NULL, NULL);
	size_t len = 0;
	char tmp[256];

	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (len < sizeof(r->request) - 1 && !strstr(r->request, "\r\n\r\n")) {
		ssize_t n = recv(fd, r->request + len, sizeof(r->request) - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		r->request[len] = '\0';
	}
	for (int i = 0; i < r->nparts; i++) {
		if (i > 0)
			usleep(30 * 1000);
		send(fd, r->parts[i], strlen(r->parts[i]), MSG_NOSIGNAL);
	}
	while (r->hold && recv(fd, tmp, sizeof(tmp), 0) > 0)
		;
	close(fd);
	return NULL;
}

static void
raw_start(struct raw_srv *r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	struct timeval tv = { 3, 0 };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(r->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(bind(r->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(r->lfd, 4), 0);
	getsockname(r->lfd, (struct sockaddr *)&sin, &sl);
	r->port = ntohs(sin.sin_port);
	pthread_create(&r->thread, NULL, raw_serve, r);
}

struct got {
	int calls, rc, status;
	bool connected;
	char body[256];
	size_t body_len;
	char header[64];	/* X-A */
	long elapsed_ms;
	long started;
};

static void
client_done(int rc, const struct http_response *res, void *arg)
{
	struct got *g = arg;
	const char *xa = http_response_header(res, "x-a");

	g->calls++;
	g->rc = rc;
	g->status = res->status;
	g->connected = res->connected;
	g->body_len = res->body_len;
	snprintf(g->body, sizeof(g->body), "%s", res->body);
	snprintf(g->header, sizeof(g->header), "%s", xa ? xa : "");
	g->elapsed_ms = mono_ms() - g->started;
}

/* One request from a fresh loop to port; the loop must close clean. */
static void
client_run(int port, const struct http_client_opts *o, struct got *g)
{
	uv_loop_t loop;
	struct sockaddr_in sa;
	struct http_client_req *req;

	uv_loop_init(&loop);
	uv_ip4_addr("127.0.0.1", port, &sa);
	g->started = mono_ms();
	assert_int_equal(http_client_request(&loop, (struct sockaddr *)&sa, o, client_done, g,
	    &req), 0);
	assert_int_equal(g->calls, 0);		/* never from inside the call */
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(g->calls, 1);
}

static void
client_against(struct raw_srv *r, const struct http_client_opts *o, struct got *g)
{
	raw_start(r);
	client_run(r->port, o, g);
	pthread_join(r->thread, NULL);
	close(r->lfd);
}

static void
test_client_content_length(void **state)
{
	/* The server keeps the connection open: the length ends the body. */
	struct raw_srv r = { .nparts = 2, .hold = true, .parts = {
		"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello",
		" world" } };
	struct http_client_opts o = { .path = "/metrics", .host = "proxy",
		.headers = "Accept: */*\r\n", .timeout_ms = 2000 };
	struct got g = { 0 };

	(void)state;
	client_against(&r, &o, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.status, 200);
	assert_string_equal(g.body, "hello world");
	assert_int_equal(g.body_len, 11);
	assert_string_equal(g.header, "b");
	assert_true(g.elapsed_ms < 1000);
	assert_non_null(strstr(r.request, "GET /metrics HTTP/1.1\r\n"));
	assert_non_null(strstr(r.request, "\r\nHost: proxy\r\n"));
	assert_non_null(strstr(r.request, "\r\nAccept: */*\r\n"));
}

static void
test_client_chunked(void **state)
{
	/* Chunks split across reads, the last chunk ends it (no close). */
	struct raw_srv r = { .nparts = 3, .hold = true, .parts = {
		"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
		"lo\r\n6\r\n wor", "ld\r\n0\r\n\r\n" } };
	struct http_client_opts o = { .timeout_ms = 2000 };
	struct got g = { 0 };

	(void)state;
	client_against(&r, &o, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.status, 503);
	assert_string_equal(g.body, "hello world");
	assert_true(g.elapsed_ms < 1000);
}

static void
test_client_close_delimited(void **state)
{
	struct raw_srv r = { .nparts = 2, .parts = {
		"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ", "the close" } };
	struct http_client_opts o = { .timeout_ms = 2000 };
	struct got g = { 0 };

	(void)state;
	client_against(&r, &o, &g);
	assert_int_equal(g.rc, 0);
	assert_int_equal(g.status, 200);
	assert_string_equal(g.body, "until the close");
}

static void
test_client_cut_short_and_too_big(void **state)
{
	struct raw_srv cut = { .nparts = 1, .parts = {
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc" } };
	struct raw_srv big = { .nparts = 1, .hold = true, .parts = {
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789" } };
	struct raw_srv junk = { .nparts = 1, .parts = { "SSH-2.0-OpenSSH\r\n\r\n" } };
	struct http_client_opts o = { .timeout_ms = 2000 };
	struct got g = { 0 };

	(void)state;
	client_against(&cut, &o, &g);
	assert_int_equal(g.rc, -ECONNRESET);
	assert_int_equal(g.status, 200);
	memset(&g, 0, sizeof(g));
	o.max_body = 4;
	client_against(&big, &o, &g);
	assert_int_equal(g.rc, -EFBIG);
	memset(&g, 0, sizeof(g));
	o.max_body = 0;
	client_against(&junk, &o, &g);
	assert_int_equal(g.rc, -EPROTO);
}

static void
test_client_timeout(void **state)
{
	/* Accepted, never answered. */
	struct raw_srv r = { .nparts = 0, .hold = true };
	struct http_client_opts o = { .timeout_ms = 200 };
	struct got g = { 0 };

	(void)state;
	client_against(&r, &o, &g);
	assert_int_equal(g.rc, -ETIMEDOUT);
	assert_true(g.connected);
	assert_true(g.elapsed_ms >= 190 && g.elapsed_ms < 2000);
}

static void
test_client_refused(void **state)
{
	struct raw_srv r = { 0 };
	struct http_client_opts o = { .timeout_ms = 2000 };
	struct got g = { 0 };

	(void)state;
	raw_start(&r);				/* a port that was just free */
	shutdown(r.lfd, SHUT_RDWR);
	pthread_join(r.thread, NULL);
	close(r.lfd);
	client_run(r.port, &o, &g);
	assert_int_equal(g.rc, UV_ECONNREFUSED);
	assert_false(g.connected);
	assert_int_equal(g.status, 0);
}

/* ---- by hand: V6_HTTP_SERVE=port -------------------------------------- */

static void
serve_hello(struct http_req *req, void *arg)
{
	(void)arg;
	http_respond(req, 200, "text/plain", "hello", 5);
}

static int
serve_forever(int port)
{
	struct http_config cfg = { .handler = serve_hello };
	struct http_server *srv;
	uv_loop_t *loop = uv_default_loop();
	int r;

	if ((r = http_server_start(loop, "127.0.0.1", port, &cfg, &srv)) < 0) {
		fprintf(stderr, "http_server_start: %s\n", strerror(-r));
		return 1;
	}
	fprintf(stderr, "serving on 127.0.0.1:%d\n", http_server_port(srv));
	return uv_run(loop, UV_RUN_DEFAULT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_hello),
		cmocka_unit_test(test_post_bodies),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_pipeline_in_order),
		cmocka_unit_test(test_deferred_response),
		cmocka_unit_test(test_stream_three_chunks),
		cmocka_unit_test(test_stream_client_disconnect_aborts),
		cmocka_unit_test(test_stream_cut_short_is_an_error),
		cmocka_unit_test(test_malformed_requests_400),
		cmocka_unit_test(test_smuggling_refused_after_fast_head),
		cmocka_unit_test(test_headers_too_large_431),
		cmocka_unit_test(test_headers_limit_configurable),
		cmocka_unit_test(test_body_too_large_413),
		cmocka_unit_test(test_large_bodies),
		cmocka_unit_test(test_stream_pending_reports_backlog),
		cmocka_unit_test(test_slowloris_408),
		cmocka_unit_test(test_idle_keepalive_closed),
		cmocka_unit_test(test_expect_100_continue),
		cmocka_unit_test(test_percent_decoding),
		cmocka_unit_test(test_query_parsing),
		cmocka_unit_test(test_query_get),
		cmocka_unit_test(test_head_has_no_body),
		cmocka_unit_test(test_max_connections_503),
		cmocka_unit_test(test_stop_with_request_held),
		cmocka_unit_test(test_drain_closes_after_each_answer),
		cmocka_unit_test(test_start_errors),
		cmocka_unit_test(test_client_content_length),
		cmocka_unit_test(test_client_chunked),
		cmocka_unit_test(test_client_close_delimited),
		cmocka_unit_test(test_client_cut_short_and_too_big),
		cmocka_unit_test(test_client_timeout),
		cmocka_unit_test(test_client_refused),
	};
	const char *serve = getenv("V6_HTTP_SERVE");

	if (serve)
		return serve_forever(atoi(serve));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
