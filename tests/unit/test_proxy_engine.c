/* test_proxy_engine.c — the proxy engine end to end on real sockets: a
 * libuv loop thread runs the engine, upstream HTTP servers (http.c) and raw
 * echo servers on 127.0.0.1; the test thread is the client, with blocking
 * sockets that time out after 3 s, and a watchdog bounds every test. Each
 * test tears everything down and checks the loop closes with no handle
 * left.
 *
 * By hand: V6_PROXY_BENCH=LISTEN_PORT:UPSTREAM_PORT build-x/unit/test_proxy_engine
 * runs an engine on 127.0.0.1:LISTEN_PORT in front of 127.0.0.1:UPSTREAM_PORT
 * (one thread) until killed, for wrk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "proxy.h"
#include "proxy_int.h"
#include "util.h"

#define NUP 4

/* ---- the loop thread --------------------------------------------------- */

struct raw_srv {
	uv_tcp_t tcp;
	int port;
	bool ws;		/* answer an upgrade with 101, then echo */
	bool oneshot;		/* answer one request per connection, then close
				 * without answering the next: the keep-alive race */
	atomic_int accepted;
};

struct fx {
	uv_loop_t loop;
	uv_async_t async;
	uv_timer_t watchdog;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void (*call)(struct fx *, void *);
	void *call_arg;
	bool call_done;
	struct proxy_engine *e;
	struct http_server *up[NUP];
	int up_port[NUP];
	atomic_int up_hits[NUP];
	struct raw_srv raw, ws, once;
	int port;		/* a free port for listeners */
	int port2;
	int dead_port;		/* nothing listens there */
	/* results of loop-side calls */
	int rc;
	char *err;
	unsigned conns;
	struct buf text;
};

static struct fx *F;

static void
on_async(uv_async_t *a)
{
	struct fx *f = a->data;

	pthread_mutex_lock(&f->mu);
	if (f->call && !f->call_done) {
		f->call(f, f->call_arg);
		f->call_done = true;
		pthread_cond_broadcast(&f->cv);
	}
	pthread_mutex_unlock(&f->mu);
}

/* Runs fn on the loop thread and waits for it. */
static void
on_loop(struct fx *f, void (*fn)(struct fx *, void *), void *arg)
{
	pthread_mutex_lock(&f->mu);
	f->call = fn;
	f->call_arg = arg;
	f->call_done = false;
	uv_async_send(&f->async);
	while (!f->call_done)
		pthread_cond_wait(&f->cv, &f->mu);
	f->call = NULL;
	pthread_mutex_unlock(&f->mu);
}

static void
on_watchdog(uv_timer_t *t)
{
	(void)t;
	fprintf(stderr, "watchdog: test took too long\n");
	abort();
}

static void *
loop_main(void *arg)
{
	struct fx *f = arg;

	uv_run(&f->loop, UV_RUN_DEFAULT);
	return NULL;
}

/* ---- upstreams ----------------------------------------------------------- */

struct slow {
	uv_timer_t t;
	struct http_req *req;
	int id;
};

static void
slow_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
on_slow(uv_timer_t *t)
{
	struct slow *s = t->data;

	http_respond(s->req, 200, "text/plain", "slow\n", 5);
	uv_close((uv_handle_t *)&s->t, slow_closed);
}

struct big {
	uv_timer_t t;
	struct http_req *req;
	size_t left;
};

static char bigchunk[64 * 1024];

static void
on_big(uv_timer_t *t)
{
	struct big *b = t->data;

	while (b->left > 0 && http_stream_pending(b->req) < 128 * 1024) {
		size_t n = b->left < sizeof(bigchunk) ? b->left : sizeof(bigchunk);
		if (http_stream_write(b->req, bigchunk, n) < 0) {
			b->left = 0;
			break;
		}
		b->left -= n;
	}
	if (b->left == 0) {
		http_stream_end(b->req);
		uv_close((uv_handle_t *)&b->t, slow_closed);
	}
}

/* Every upstream answers by path: its name, a dump of the headers it got,
 * a slow answer, chunks, 10 MB, an echo of the body, or a status. */
static void
up_handler(struct http_req *req, void *arg)
{
	int id = (int)(intptr_t)arg;
	char name[16];
	struct buf b = BUF_INIT;
	size_t i;

	atomic_fetch_add(&F->up_hits[id], 1);
	snprintf(name, sizeof(name), "u%d", id);
	http_add_header(req, "X-Upstream", name);
	if (id == 3) {		/* the broken one */
		http_respond(req, 503, "text/plain", "broken\n", 7);
		return;
	}
	if (strcmp(req->path, "/headers") == 0) {
		for (i = 0; i < req->nheaders; i++)
			buf_printf(&b, "%s: %s\n", req->headers[i].name, req->headers[i].value);
		http_respond(req, 200, "text/plain", b.data, b.len);
		buf_free(&b);
	} else if (strcmp(req->path, "/slow") == 0) {
		struct slow *s = xcalloc(1, sizeof(*s));
		s->req = req;
		s->t.data = s;
		uv_timer_init(&F->loop, &s->t);
		uv_timer_start(&s->t, on_slow, 500, 0);
	} else if (strcmp(req->path, "/chunked") == 0) {
		http_stream_start(req, 200, "text/plain");
		http_stream_write(req, "one,", 4);
		http_stream_write(req, "two,", 4);
		http_stream_write(req, "three", 5);
		http_stream_end(req);
	} else if (strcmp(req->path, "/big") == 0) {
		struct big *bg = xcalloc(1, sizeof(*bg));
		bg->req = req;
		bg->left = 10 * 1024 * 1024;
		bg->t.data = bg;
		uv_timer_init(&F->loop, &bg->t);
		http_stream_start(req, 200, "application/octet-stream");
		uv_timer_start(&bg->t, on_big, 0, 1);
	} else if (strcmp(req->path, "/echo") == 0) {
		http_respond(req, 200, "text/plain", req->body, req->body_len);
	} else {
		buf_printf(&b, "%s %s", name, req->path);
		http_respond(req, 200, "text/plain", b.data, b.len);
		buf_free(&b);
	}
}

struct rconn {
	uv_tcp_t tcp;
	struct raw_srv *s;
	bool upgraded;
	int answered;
	struct buf in;
};

static void
rconn_closed(uv_handle_t *h)
{
	struct rconn *c = h->data;

	buf_free(&c->in);
	free(c);
}

static void
r_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(sz);
	b->len = sz;
}

static void
r_written(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	free(w);
}

static void
r_send(struct rconn *c, const char *p, size_t n)
{
	uv_write_t *w = xmalloc(sizeof(*w));
	uv_buf_t b;

	w->data = xmalloc(n ? n : 1);
	memcpy(w->data, p, n);
	b = uv_buf_init(w->data, (unsigned)n);
	uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, r_written);
}

static void
r_shut(uv_shutdown_t *s, int status)
{
	(void)status;
	uv_close((uv_handle_t *)s->handle, rconn_closed);
	free(s);
}

static void
r_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct rconn *c = st->data;
	static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\n\r\n";
	char *end;

	if (n < 0) {
		uv_shutdown_t *s = xmalloc(sizeof(*s));
		uv_read_stop(st);
		if (uv_shutdown(s, st, r_shut) < 0) {
			free(s);
			uv_close((uv_handle_t *)st, rconn_closed);
		}
	} else if (n > 0 && c->s->ws && !c->upgraded) {
		buf_append(&c->in, b->base, (size_t)n);
		if ((end = strstr(c->in.data, "\r\n\r\n")) != NULL) {
			c->upgraded = true;
			r_send(c, ok, sizeof(ok) - 1);
			end += 4;
			r_send(c, end, c->in.len - (size_t)(end - c->in.data));
		}
	} else if (n > 0 && c->s->oneshot) {
		buf_append(&c->in, b->base, (size_t)n);
		if (strstr(c->in.data, "\r\n\r\n") != NULL) {
			buf_reset(&c->in);
			if (c->answered++ == 0)
				r_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 40);
			else if (!uv_is_closing((uv_handle_t *)st))
				uv_close((uv_handle_t *)st, rconn_closed);
		}
	} else if (n > 0)
		r_send(c, b->base, (size_t)n);
	free(b->base);
}

static void
raw_on_conn(uv_stream_t *l, int status)
{
	struct raw_srv *s = l->data;
	struct rconn *c;

	if (status < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->s = s;
	c->tcp.data = c;
	uv_tcp_init(l->loop, &c->tcp);
	if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
		uv_close((uv_handle_t *)&c->tcp, rconn_closed);
		return;
	}
	atomic_fetch_add(&s->accepted, 1);
	uv_read_start((uv_stream_t *)&c->tcp, r_alloc, r_read);
}

static int
raw_start(uv_loop_t *loop, struct raw_srv *s, bool ws)
{
	struct sockaddr_in sin;
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	s->ws = ws;
	s->tcp.data = s;
	uv_tcp_init(loop, &s->tcp);
	uv_ip4_addr("127.0.0.1", 0, &sin);
	uv_tcp_bind(&s->tcp, (struct sockaddr *)&sin, 0);
	uv_listen((uv_stream_t *)&s->tcp, 128, raw_on_conn);
	uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len);
	s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/* A free port below the kernel's ephemeral range (32768 up on Linux), so
 * that no outgoing connection of the test (upstream pools, clients) can be
 * handed the same port as its local end between this check and the bind
 * that needs it (seen: a listener the test occupies on purpose was already
 * taken). Bounded: 2,000 tries. */
static int
free_port(void)
{
	static unsigned seed;
	struct sockaddr_in sin;
	int port = 0;

	if (!seed)
		seed = (unsigned)getpid() * 2654435761u;
	for (int i = 0; i < 2000 && !port; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0), cand;
		seed = seed * 1103515245u + 12345u;
		cand = 20000 + (int)((seed >> 8) % 12000);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(cand);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
			port = cand;
		close(fd);
	}
	assert_int_not_equal(port, 0);
	return port;
}

static void
setup_on_loop(struct fx *f, void *arg)
{
	struct http_config cfg;
	int i;

	(void)arg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.handler = up_handler;
	for (i = 0; i < NUP; i++) {
		cfg.handler_arg = (void *)(intptr_t)i;
		assert_int_equal(http_server_start(&f->loop, "127.0.0.1", 0, &cfg, &f->up[i]), 0);
		f->up_port[i] = http_server_port(f->up[i]);
	}
	raw_start(&f->loop, &f->raw, false);
	raw_start(&f->loop, &f->ws, true);
	f->once.oneshot = true;
	raw_start(&f->loop, &f->once, false);
	f->e = proxy_engine_new(&f->loop);
}

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	F = f;
	uv_loop_init(&f->loop);
	uv_async_init(&f->loop, &f->async, on_async);
	f->async.data = f;
	uv_timer_init(&f->loop, &f->watchdog);
	uv_timer_start(&f->watchdog, on_watchdog, 30000, 0);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->port = free_port();
	f->port2 = free_port();
	f->dead_port = free_port();
	pthread_create(&f->thread, NULL, loop_main, f);
	on_loop(f, setup_on_loop, NULL);
	*state = f;
	return 0;
}

static void
close_cb(uv_handle_t *h)
{
	(void)h;
}

static void
teardown_on_loop(struct fx *f, void *arg)
{
	(void)arg;
	proxy_engine_free(f->e);
	for (int i = 0; i < NUP; i++)
		http_server_stop(f->up[i]);
	uv_close((uv_handle_t *)&f->raw.tcp, close_cb);
	uv_close((uv_handle_t *)&f->ws.tcp, close_cb);
	uv_close((uv_handle_t *)&f->once.tcp, close_cb);
	uv_close((uv_handle_t *)&f->watchdog, close_cb);
	uv_close((uv_handle_t *)&f->async, close_cb);
}

static void
walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	fprintf(stderr, "leaked handle type %d\n", h->type);
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	on_loop(f, teardown_on_loop, NULL);
	pthread_join(f->thread, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);	/* rconns closing late */
	if (uv_loop_close(&f->loop) != 0) {
		uv_walk(&f->loop, walk_cb, NULL);
		fail_msg("loop has open handles");
	}
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f->err);
	buf_free(&f->text);
	free(f);
	return 0;
}

/* ---- snapshots --------------------------------------------------------- */

static void
apply_on_loop(struct fx *f, void *arg)
{
	json_error_t je;
	json_t *j = json_loads(arg, 0, &je);

	free(f->err);
	f->err = NULL;
	if (j == NULL) {
		fprintf(stderr, "bad test JSON: %s at %d: %s\n", je.text, je.position,
		    (char *)arg);
		f->rc = -999;
		return;
	}
	f->rc = proxy_engine_apply(f->e, j, &f->err);
	json_decref(j);
}

static int
apply(struct fx *f, const char *fmt, ...) V6_PRINTF(2, 3);

static int
apply(struct fx *f, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	on_loop(f, apply_on_loop, s);
	free(s);
	return f->rc;
}

/* A cluster named c<i> with upstream i, revision r<i>. */
static char *
cluster_json(struct fx *f, int i)
{
	return xasprintf("\"c%d\": {\"service\": \"default/web\", \"lb\": \"round_robin\","
	    " \"endpoints\": [{\"address\": \"127.0.0.1\", \"port\": %d, \"pod\": \"p%d\","
	    " \"revision\": \"r%d\"}]}", i, f->up_port[i], i, i);
}

/* Applies one HTTP listener on f->port with the given routes, clusters c0..c3. */
static int
apply_routes(struct fx *f, const char *routes)
{
	char *c[NUP];
	int i, rc;

	for (i = 0; i < NUP; i++)
		c[i] = cluster_json(f, i);
	rc = apply(f, "{\"version\": 1, \"listeners\": [{\"name\": \"l1\", \"address\":"
	    " \"127.0.0.1\", \"port\": %d, \"protocol\": \"HTTP\", \"routes\": [%s]}],"
	    " \"clusters\": {%s, %s, %s, %s}}", f->port, routes, c[0], c[1], c[2], c[3]);
	for (i = 0; i < NUP; i++)
		free(c[i]);
	return rc;
}

/* ---- the client ---------------------------------------------------------- */

struct cl {
	int fd;
	size_t len;
	char buf[256 * 1024];
};

struct resp {
	int status;
	char head[8192];
	char body[64 * 1024];
	size_t body_len;	/* may exceed what body holds */
	bool chunked;
	bool closed;		/* the proxy closed after it */
};

static struct cl *
cl_open(int port)
{
	struct cl *c = xcalloc(1, sizeof(*c));
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
cl_send(struct cl *c, const char *s, size_t n)
{
	ssize_t w;

	while (n > 0 && (w = send(c->fd, s, n, MSG_NOSIGNAL)) > 0) {
		s += w;
		n -= (size_t)w;
	}
}

static void
cl_puts(struct cl *c, const char *s)
{
	cl_send(c, s, strlen(s));
}

/* Reads more; returns bytes read, 0 on EOF, -1 on error/timeout. */
static ssize_t
cl_fill(struct cl *c)
{
	ssize_t n;

	if (c->len == sizeof(c->buf))
		return -1;
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n > 0)
		c->len += (size_t)n;
	return n;
}

static void
cl_consume(struct cl *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

static void
body_add(struct resp *r, const char *p, size_t n)
{
	size_t room = sizeof(r->body) - 1 - (r->body_len < sizeof(r->body) - 1 ?
	    r->body_len : sizeof(r->body) - 1);
	size_t take = n < room ? n : room;

	memcpy(r->body + (r->body_len < sizeof(r->body) ? r->body_len : 0), p, take);
	r->body_len += n;
	r->body[r->body_len < sizeof(r->body) - 1 ? r->body_len : sizeof(r->body) - 1] = '\0';
}

static const char *
head_get(const struct resp *r, const char *name, char *out, size_t outsz)
{
	const char *p = r->head;
	size_t n = strlen(name);

	while ((p = strchr(p, '\n')) != NULL) {
		p++;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ')
				p++;
			snprintf(out, outsz, "%.*s", (int)strcspn(p, "\r\n"), p);
			return out;
		}
	}
	return NULL;
}

/* Reads one response (HEAD-less); returns 0 or -1. */
static int
cl_response(struct cl *c, struct resp *r)
{
	char *end, v[64];
	long long clen = -1;
	size_t hl;

	memset(r, 0, sizeof(*r));
	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
		if (cl_fill(c) <= 0)
			return -1;
	hl = (size_t)(end - c->buf) + 4;
	snprintf(r->head, sizeof(r->head), "%.*s", (int)hl, c->buf);
	cl_consume(c, hl);
	r->status = atoi(r->head + 9);
	if (head_get(r, "content-length", v, sizeof(v)))
		clen = atoll(v);
	r->chunked = head_get(r, "transfer-encoding", v, sizeof(v)) &&
	    strcasecmp(v, "chunked") == 0;
	r->closed = head_get(r, "connection", v, sizeof(v)) && strcasecmp(v, "close") == 0;
	if (r->status == 101 || r->status == 204 || r->status == 304)
		return 0;
	if (r->chunked) {
		for (;;) {
			char *nl;
			unsigned long sz;
			while ((nl = memmem(c->buf, c->len, "\r\n", 2)) == NULL)
				if (cl_fill(c) <= 0)
					return -1;
			sz = strtoul(c->buf, NULL, 16);
			cl_consume(c, (size_t)(nl - c->buf) + 2);
			while (c->len < sz + 2)
				if (cl_fill(c) <= 0)
					return -1;
			body_add(r, c->buf, sz);
			cl_consume(c, sz + 2);
			if (sz == 0)
				return 0;
		}
	}
	if (clen >= 0) {
		while ((long long)r->body_len < clen) {
			size_t take;
			if (c->len == 0 && cl_fill(c) <= 0)
				return -1;
			take = c->len < (size_t)(clen - (long long)r->body_len) ? c->len :
			    (size_t)(clen - (long long)r->body_len);
			body_add(r, c->buf, take);
			cl_consume(c, take);
		}
		return 0;
	}
	for (;;) {	/* until close */
		ssize_t n = cl_fill(c);
		if (n < 0)
			return -1;
		body_add(r, c->buf, c->len);
		cl_consume(c, c->len);
		if (n == 0)
			return 0;
	}
}

/* One GET on c; returns the status (body in r). */
static int
get(struct cl *c, const char *path, const char *extra, struct resp *r)
{
	char req[2048];

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: test\r\n%s\r\n", path,
	    extra ? extra : "");
	cl_puts(c, req);
	if (cl_response(c, r) < 0)
		return -1;
	return r->status;
}

static bool
cl_eof(struct cl *c)
{
	char ch;

	return recv(c->fd, &ch, 1, 0) == 0;
}

static long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct query {
	const char *service, *revision;
	struct proxy_stats *out;
};

static void
query_on_loop(struct fx *f, void *arg)
{
	struct query *q = arg;

	f->rc = proxy_metrics_query(f->e, q->service, q->revision, q->out);
}

/* proxy_metrics_query on the loop thread (the response reaches the client
 * just before the request is counted). */
static int
query(struct fx *f, const char *service, const char *revision, struct proxy_stats *out)
{
	struct query q = { service, revision, out };

	usleep(20000);
	on_loop(f, query_on_loop, &q);
	return f->rc;
}

#define ROUTE_ALL(c) "{\"name\": \"r\", \"backends\": [{\"cluster\": \"" c "\"}]}"

/* ---- tests ----------------------------------------------------------------- */

static void
test_routing_by_host_path_header_query_cookie(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;

	assert_int_equal(apply_routes(f,
	    "{\"name\": \"host\", \"hostnames\": [\"*.shop.example\"],"
	    " \"backends\": [{\"cluster\": \"c1\"}]},"
	    "{\"name\": \"hdr\", \"matches\": [{\"headers\": [{\"name\": \"x-canary\","
	    " \"type\": \"RegularExpression\", \"value\": \"^(yes|1)$\"}]}],"
	    " \"backends\": [{\"cluster\": \"c2\"}]},"
	    "{\"name\": \"query\", \"matches\": [{\"path\": {\"type\": \"Exact\", \"value\": \"/q\"},"
	    " \"queryParams\": [{\"name\": \"v\", \"value\": \"2\"}]}],"
	    " \"backends\": [{\"cluster\": \"c1\"}]},"
	    "{\"name\": \"cookie\", \"matches\": [{\"cookies\": [{\"name\": \"canary\","
	    " \"value\": \"always\"}]}], \"backends\": [{\"cluster\": \"c2\"}]},"
	    "{\"name\": \"api\", \"matches\": [{\"path\": {\"type\": \"PathPrefix\","
	    " \"value\": \"/api/\"}}], \"backends\": [{\"cluster\": \"c1\"}]},"
	    "{\"name\": \"rest\", \"matches\": [{\"path\": {\"type\": \"PathPrefix\","
	    " \"value\": \"/\"}}], \"backends\": [{\"cluster\": \"c0\"}]}"), 0);
	c = cl_open(f->port);
	assert_int_equal(get(c, "/x", NULL, &r), 200);
	assert_string_equal(r.body, "u0 /x");
	assert_int_equal(get(c, "/api", NULL, &r), 200);
	assert_string_equal(r.body, "u1 /api");
	assert_int_equal(get(c, "/api/v1/pods", NULL, &r), 200);
	assert_string_equal(r.body, "u1 /api/v1/pods");
	assert_int_equal(get(c, "/apix", NULL, &r), 200);
	assert_string_equal(r.body, "u0 /apix");
	assert_int_equal(get(c, "/y", "X-Canary: yes\r\n", &r), 200);
	assert_string_equal(r.body, "u2 /y");
	assert_int_equal(get(c, "/y", "X-Canary: no\r\n", &r), 200);
	assert_string_equal(r.body, "u0 /y");
	assert_int_equal(get(c, "/q?a=1&v=2", NULL, &r), 200);
	assert_string_equal(r.body, "u1 /q");
	assert_int_equal(get(c, "/q?v=3", NULL, &r), 200);
	assert_string_equal(r.body, "u0 /q");
	assert_int_equal(get(c, "/z", "Cookie: a=b; canary=always\r\n", &r), 200);
	assert_string_equal(r.body, "u2 /z");
	cl_puts(c, "GET /h HTTP/1.1\r\nHost: www.shop.example:8080\r\n\r\n");
	assert_int_equal(cl_response(c, &r), 0);
	assert_string_equal(r.body, "u1 /h");
	cl_close(c);
}

static void
test_no_route_404_and_no_endpoints_503(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;

	assert_int_equal(apply(f, "{\"version\": 3, \"listeners\": [{\"name\": \"l1\","
	    " \"address\": \"127.0.0.1\", \"port\": %d, \"routes\": [{\"name\": \"r\","
	    " \"hostnames\": [\"only.example\"], \"backends\": [{\"cluster\": \"empty\"}]}]}],"
	    " \"clusters\": {\"empty\": {\"service\": \"default/none\", \"endpoints\": []}}}",
	    f->port), 0);
	c = cl_open(f->port);
	assert_int_equal(get(c, "/", NULL, &r), 404);
	assert_string_equal(r.body, "no route\n");
	cl_puts(c, "GET / HTTP/1.1\r\nHost: only.example\r\n\r\n");
	assert_int_equal(cl_response(c, &r), 0);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "no healthy upstream\n");
	assert_int_equal(get(c, "/", NULL, &r), 404);	/* connection still usable */
	cl_close(c);
}

static void
test_weights_90_10(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;
	int i, n0 = 0, n1 = 0;

	assert_int_equal(apply_routes(f, "{\"name\": \"r\", \"backends\": ["
	    "{\"cluster\": \"c0\", \"weight\": 90}, {\"cluster\": \"c1\", \"weight\": 10}]}"), 0);
	c = cl_open(f->port);
	for (i = 0; i < 1000; i++) {
		assert_int_equal(get(c, "/", NULL, &r), 200);
		if (strncmp(r.body, "u0", 2) == 0)
			n0++;
		else if (strncmp(r.body, "u1", 2) == 0)
			n1++;
	}
	cl_close(c);
	assert_int_equal(n0 + n1, 1000);
	assert_in_range(n0, 880, 920);
	assert_in_range(n1, 80, 120);
}

static void
conns_on_loop(struct fx *f, void *arg)
{
	f->conns = http_server_connections(f->up[(intptr_t)arg]);
}

static void
test_keepalive_reuses_upstream_connection(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;
	int i;

	assert_int_equal(apply_routes(f, ROUTE_ALL("c0")), 0);
	c = cl_open(f->port);
	for (i = 0; i < 50; i++) {
		assert_int_equal(get(c, "/", NULL, &r), 200);
		assert_false(r.closed);
	}
	on_loop(f, conns_on_loop, (void *)0);
	assert_int_equal(f->conns, 1);
	cl_close(c);
	/* a second client, one after the other: still the pooled connection */
	c = cl_open(f->port);
	assert_int_equal(get(c, "/", NULL, &r), 200);
	on_loop(f, conns_on_loop, (void *)0);
	assert_int_equal(f->conns, 1);
	cl_close(c);
}

/* Requests written together, on one connection and on many: the proxy holds
 * small whole responses and body-less heads to the end of its loop turn
 * (proxy_upstream.c); each answer still arrives, in order, with keep-alive. */
static void
test_pipelined_and_concurrent_requests_answered_in_order(void **state)
{
	struct fx *f = *state;
	static const char *const paths[] = { "/p1", "/chunked", "/p2", "/headers", "/p3" };
	struct cl *c, *cs[20];
	struct resp r;
	char want[64], req[128];
	struct buf all = BUF_INIT;
	size_t i;

	assert_int_equal(apply_routes(f, ROUTE_ALL("c0")), 0);
	c = cl_open(f->port);
	for (int round = 0; round < 3; round++) {
		buf_reset(&all);
		for (i = 0; i < ARRAY_SIZE(paths); i++)
			buf_printf(&all, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", paths[i]);
		cl_send(c, all.data, all.len);
		for (i = 0; i < ARRAY_SIZE(paths); i++) {
			assert_int_equal(cl_response(c, &r), 0);
			assert_int_equal(r.status, 200);
			assert_false(r.closed);
			if (strcmp(paths[i], "/chunked") == 0)
				assert_string_equal(r.body, "one,two,three");
			else if (strcmp(paths[i], "/headers") == 0)
				assert_non_null(strstr(r.body, "X-Request-Id: "));
			else {
				snprintf(want, sizeof(want), "u0 %s", paths[i]);
				assert_string_equal(r.body, want);
			}
		}
	}
	cl_close(c);
	buf_free(&all);
	for (i = 0; i < ARRAY_SIZE(cs); i++)
		cs[i] = cl_open(f->port);
	for (int round = 0; round < 5; round++) {
		for (i = 0; i < ARRAY_SIZE(cs); i++) {
			snprintf(req, sizeof(req), "GET /c%zu HTTP/1.1\r\nHost: t\r\n\r\n", i);
			cl_puts(cs[i], req);
		}
		for (i = 0; i < ARRAY_SIZE(cs); i++) {
			assert_int_equal(cl_response(cs[i], &r), 0);
			assert_int_equal(r.status, 200);
			snprintf(want, sizeof(want), "u0 /c%zu", i);
			assert_string_equal(r.body, want);
		}
	}
	for (i = 0; i < ARRAY_SIZE(cs); i++)
		cl_close(cs[i]);
}

static void
test_client_half_close_still_answered(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;

	assert_int_equal(apply_routes(f, ROUTE_ALL("c0")), 0);
	c = cl_open(f->port);
	cl_puts(c, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
	shutdown(c->fd, SHUT_WR);
	assert_int_equal(cl_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "slow\n");
	assert_true(cl_eof(c));
	cl_close(c);
}

static void
test_chunked_request_and_response_stream(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;

	assert_int_equal(apply_routes(f, ROUTE_ALL("c0")), 0);
	c = cl_open(f->port);
	cl_puts(c, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5\r\nhello\r\n");
	usleep(50000);
	cl_puts(c, "6\r\n world\r\n0\r\n\r\n");
	assert_int_equal(cl_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "hello world");
	/* a Content-Length body, then a chunked response on the same connection */
	cl_puts(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
	assert_int_equal(cl_response(c, &r), 0);
	assert_string_equal(r.body, "abc");
	assert_int_equal(get(c, "/chunked", NULL, &r), 200);
	assert_true(r.chunked);
	assert_string_equal(r.body, "one,two,three");
	/* an HTTP/1.0 client gets it de-chunked, delimited by the close */
	cl_puts(c, "GET /chunked HTTP/1.0\r\nHost: t\r\n\r\n");
	assert_int_equal(cl_response(c, &r), 0);
	assert_false(r.chunked);
	assert_string_equal(r.body, "one,two,three");
	cl_close(c);
}

static void *
upload_main(void *arg)
{
	struct cl *c = arg;
	size_t n = 2 * 1024 * 1024, k;
	char *p = xmalloc(64 * 1024);

	memset(p, 'x', 64 * 1024);
	cl_puts(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2097152\r\n\r\n");
	for (; n > 0; n -= k) {
		k = n < 64 * 1024 ? n : 64 * 1024;
		cl_send(c, p, k);
	}
	free(p);
	return NULL;
}

static void
test_large_request_body_streams_upstream(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;
	pthread_t th;

	assert_int_equal(apply_routes(f, ROUTE_ALL("c0")), 0);
	c = cl_open(f->port);
	pthread_create(&th, NULL, upload_main, c);
	assert_int_equal(cl_response(c, &r), 0);
	pthread_join(th, NULL);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 2 * 1024 * 1024);
	assert_int_equal(r.body[1000], 'x');
	assert_int_equal(get(c, "/", NULL, &r), 200);
	cl_close(c);
}

static void
test_large_response_streams_with_bounded_memory(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;
	struct mallinfo2 m0, m1;
	int rcvbuf = 64 * 1024;

	assert_int_equal(apply_routes(f, ROUTE_ALL("c0")), 0);
	c = cl_open(f->port);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	m0 = mallinfo2();
	cl_puts(c, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
	usleep(400000);		/* not reading: the proxy must stop reading too */
	m1 = mallinfo2();
	assert_true(m1.uordblks < m0.uordblks + 3 * 1024 * 1024);
	assert_int_equal(cl_response(c, &r), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 10 * 1024 * 1024);
	assert_int_equal(get(c, "/", NULL, &r), 200);
	cl_close(c);
}

static void
test_websocket_upgrade_echo(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;
	char v[64];

	assert_int_equal(apply(f, "{\"version\": 2, \"listeners\": [{\"name\": \"l1\","
	    " \"address\": \"127.0.0.1\", \"port\": %d, \"routes\": [" ROUTE_ALL("ws") "]}],"
	    " \"clusters\": {\"ws\": {\"service\": \"default/ws\", \"endpoints\": [{\"address\":"
	    " \"127.0.0.1\", \"port\": %d}]}}}", f->port, f->ws.port), 0);
	c = cl_open(f->port);
	cl_puts(c, "GET /chat HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n\r\nearly");
	assert_int_equal(cl_response(c, &r), 0);
	assert_int_equal(r.status, 101);
	assert_non_null(head_get(&r, "upgrade", v, sizeof(v)));
	assert_string_equal(v, "websocket");
	while (c->len < 5)
		assert_true(cl_fill(c) > 0);
	assert_memory_equal(c->buf, "early", 5);
	cl_consume(c, 5);
	cl_puts(c, "ping-pong");
	while (c->len < 9)
		assert_true(cl_fill(c) > 0);
	assert_memory_equal(c->buf, "ping-pong", 9);
	shutdown(c->fd, SHUT_WR);
	c->len = 0;
	assert_true(cl_eof(c));
	cl_close(c);
}

static void
test_connect_failure_retried_on_another_endpoint(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;
	struct proxy_stats st;
	int i;

	assert_int_equal(apply(f, "{\"version\": 2, \"listeners\": [{\"name\": \"l1\","
	    " \"address\": \"127.0.0.1\", \"port\": %d, \"routes\": [" ROUTE_ALL("c") "]}],"
	    " \"clusters\": {\"c\": {\"service\": \"default/web\", \"endpoints\": ["
	    "{\"address\": \"127.0.0.1\", \"port\": %d, \"revision\": \"dead\"},"
	    "{\"address\": \"127.0.0.1\", \"port\": %d, \"revision\": \"live\"}]}}}",
	    f->port, f->dead_port, f->up_port[0]), 0);
	c = cl_open(f->port);
	for (i = 0; i < 20; i++) {
		assert_int_equal(get(c, "/", NULL, &r), 200);
		assert_string_equal(r.body, "u0 /");
	}
	cl_close(c);
	assert_int_equal(query(f, "default/web", "dead", &st), 0);
	assert_true(st.upstream_errors >= 1);
	assert_int_equal(st.requests, 0);
	assert_int_equal(query(f, "default/web", "live", &st), 0);
	assert_int_equal(st.requests, 20);
}

static void
test_keepalive_race_retried_for_idempotent_only(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;
	int i;

	assert_int_equal(apply(f, "{\"version\": 2, \"listeners\": [{\"name\": \"l1\","
	    " \"address\": \"127.0.0.1\", \"port\": %d, \"routes\": [" ROUTE_ALL("c") "]}],"
	    " \"clusters\": {\"c\": {\"service\": \"default/once\", \"endpoints\": ["
	    "{\"address\": \"127.0.0.1\", \"port\": %d}]}}}", f->port, f->once.port), 0);
	c = cl_open(f->port);
	for (i = 0; i < 5; i++) {
		assert_int_equal(get(c, "/", NULL, &r), 200);
		assert_string_equal(r.body, "ok");
	}
	/* every GET after the first went out on a pooled connection that the
	 * endpoint closed: retried on a new one */
	assert_int_equal(atomic_load(&f->once.accepted), 5);
	cl_puts(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(cl_response(c, &r), 0);
	assert_int_equal(r.status, 502);	/* not idempotent: not retried */
	cl_close(c);
}

static void
test_outlier_ejection_and_recovery(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;
	int i, bad = 0;

	assert_int_equal(apply(f, "{\"version\": 2, \"listeners\": [{\"name\": \"l1\","
	    " \"address\": \"127.0.0.1\", \"port\": %d, \"routes\": [" ROUTE_ALL("c") "]}],"
	    " \"clusters\": {\"c\": {\"service\": \"default/web\", \"outlier_consecutive_failures\": 3,"
	    " \"outlier_ejection_ms\": 300, \"endpoints\": ["
	    "{\"address\": \"127.0.0.1\", \"port\": %d}, {\"address\": \"127.0.0.1\", \"port\": %d}]}}}",
	    f->port, f->up_port[0], f->up_port[3]), 0);
	c = cl_open(f->port);
	for (i = 0; i < 30; i++) {
		get(c, "/", NULL, &r);
		bad += r.status == 503;
	}
	assert_int_equal(bad, 3);	/* then ejected */
	usleep(350000);
	for (i = 0, bad = 0; i < 10; i++) {
		get(c, "/", NULL, &r);
		bad += r.status == 503;
	}
	assert_int_equal(bad, 3);	/* back in rotation, ejected again */
	cl_close(c);
	/* the last endpoint is never ejected */
	assert_int_equal(apply(f, "{\"version\": 3, \"listeners\": [{\"name\": \"l1\","
	    " \"address\": \"127.0.0.1\", \"port\": %d, \"routes\": [" ROUTE_ALL("c") "]}],"
	    " \"clusters\": {\"c\": {\"service\": \"default/web\", \"outlier_consecutive_failures\": 3,"
	    " \"endpoints\": [{\"address\": \"127.0.0.1\", \"port\": %d}]}}}",
	    f->port, f->up_port[3]), 0);
	c = cl_open(f->port);
	for (i = 0; i < 10; i++)
		assert_int_equal(get(c, "/", NULL, &r), 503);
	assert_string_equal(r.body, "broken\n");
	cl_close(c);
}

static void
test_timeout_504(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;
	long t0;

	assert_int_equal(apply_routes(f, "{\"name\": \"r\", \"timeouts\": {\"request\": \"200ms\"},"
	    " \"backends\": [{\"cluster\": \"c0\"}]}"), 0);
	c = cl_open(f->port);
	t0 = mono_ms();
	assert_int_equal(get(c, "/slow", NULL, &r), 504);
	assert_in_range(mono_ms() - t0, 150, 450);
	assert_string_equal(r.body, "upstream request timeout\n");
	assert_int_equal(get(c, "/", NULL, &r), 200);
	cl_close(c);
}

static void
test_forwarded_headers_request_id_traceparent(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;
	const char *p;

	assert_int_equal(apply_routes(f, "{\"name\": \"r\", \"filters\": [{\"type\":"
	    " \"RequestHeaderModifier\", \"set\": [{\"name\": \"X-Env\", \"value\": \"prod\"}],"
	    " \"add\": [{\"name\": \"X-Added\", \"value\": \"1\"}], \"remove\": [\"X-Secret\"]}],"
	    " \"backends\": [{\"cluster\": \"c0\"}]}"), 0);
	c = cl_open(f->port);
	assert_int_equal(get(c, "/headers", "X-Forwarded-For: 1.2.3.4\r\nX-Request-Id: abc-1\r\n"
	    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
	    "X-Secret: s\r\nX-Env: dev\r\nConnection: keep-alive, X-Hop\r\nX-Hop: h\r\n", &r), 200);
	assert_non_null(strstr(r.body, "X-Forwarded-For: 1.2.3.4, 127.0.0.1\n"));
	assert_non_null(strstr(r.body, "X-Request-Id: abc-1\n"));
	assert_non_null(strstr(r.body, "X-Forwarded-Proto: http\n"));
	assert_non_null(p = strstr(r.body, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-"));
	assert_memory_not_equal(p + 13 + 36, "00f067aa0ba902b7", 16);
	assert_memory_equal(p + 13 + 52, "-01\n", 4);
	assert_non_null(strstr(r.body, "X-Env: prod\n"));
	assert_null(strstr(r.body, "X-Env: dev"));
	assert_non_null(strstr(r.body, "X-Added: 1\n"));
	assert_null(strstr(r.body, "X-Secret"));
	assert_null(strstr(r.body, "X-Hop"));
	assert_null(strstr(r.body, "onnection:"));
	/* none given: generated */
	assert_int_equal(get(c, "/headers", NULL, &r), 200);
	assert_non_null(p = strstr(r.body, "X-Request-Id: "));
	assert_int_equal(strcspn(p + 14, "\n"), 36);
	assert_non_null(p = strstr(r.body, "traceparent: 00-"));
	assert_int_equal(strcspn(p + 13, "\n"), 55);
	assert_memory_equal(p + 13 + 52, "-01", 3);
	cl_close(c);
}

static void
test_snapshot_update_keeps_connection_and_switches_backend(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;

	assert_int_equal(apply_routes(f, ROUTE_ALL("c0")), 0);
	c = cl_open(f->port);
	assert_int_equal(get(c, "/", NULL, &r), 200);
	assert_string_equal(r.body, "u0 /");
	on_loop(f, conns_on_loop, (void *)0);
	assert_int_equal(f->conns, 1);		/* pooled */
	assert_int_equal(apply(f, "{\"version\": 2, \"listeners\": [{\"name\": \"l1\","
	    " \"address\": \"127.0.0.1\", \"port\": %d, \"routes\": [" ROUTE_ALL("c1") "]}],"
	    " \"clusters\": {\"c1\": {\"service\": \"default/web\", \"endpoints\": ["
	    "{\"address\": \"127.0.0.1\", \"port\": %d}]}}}", f->port, f->up_port[1]), 0);
	assert_int_equal(get(c, "/", NULL, &r), 200);
	assert_string_equal(r.body, "u1 /");
	assert_false(r.closed);
	cl_close(c);
	usleep(50000);
	on_loop(f, conns_on_loop, (void *)0);
	assert_int_equal(f->conns, 0);		/* u0 left: its idle connection closed */
}

struct bg_get {
	int port;
	struct resp r;
	int status;
};

static void *
bg_get_main(void *arg)
{
	struct bg_get *g = arg;
	struct cl *c = cl_open(g->port);

	g->status = get(c, "/slow", NULL, &g->r);
	cl_close(c);
	return NULL;
}

static void
test_removed_listener_drains(void **state)
{
	struct fx *f = *state;
	struct bg_get g = { .port = f->port };
	pthread_t th;
	struct cl *c;
	struct resp r;

	assert_int_equal(apply_routes(f, ROUTE_ALL("c0")), 0);
	pthread_create(&th, NULL, bg_get_main, &g);
	usleep(100000);		/* the slow request is in flight */
	assert_int_equal(apply(f, "{\"version\": 9, \"listeners\": [{\"name\": \"l2\","
	    " \"address\": \"127.0.0.1\", \"port\": %d, \"routes\": [" ROUTE_ALL("c") "]}],"
	    " \"clusters\": {\"c\": {\"service\": \"s\", \"endpoints\": [{\"address\":"
	    " \"127.0.0.1\", \"port\": %d}]}}}", f->port2, f->up_port[1]), 0);
	c = cl_open(f->port);
	assert_int_equal(c->fd, -1);	/* no longer accepting */
	cl_close(c);
	pthread_join(th, NULL);
	assert_int_equal(g.status, 200);	/* ...but the one in flight finished */
	assert_string_equal(g.r.body, "slow\n");
	c = cl_open(f->port2);
	assert_int_equal(get(c, "/", NULL, &r), 200);
	assert_string_equal(r.body, "u1 /");
	cl_close(c);
}

static void
version_on_loop(struct fx *f, void *arg)
{
	(void)arg;
	f->rc = (int)proxy_engine_version(f->e);
}

static void
test_malformed_snapshot_rejected_atomically(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {
		"[1, 2]",
		"{\"version\": \"x\"}",
		"{\"version\": 5, \"listeners\": [{\"name\": \"l1\", \"address\": \"127.0.0.1\","
		    " \"port\": 1, \"routes\": [{\"name\": \"r\", \"backends\": [{\"cluster\": \"nope\"}]}]}],"
		    " \"clusters\": {}}",
		"{\"version\": 5, \"listeners\": [{\"name\": \"l1\", \"address\": \"127.0.0.1\","
		    " \"port\": 1, \"routes\": [{\"name\": \"r\", \"matches\": [{\"headers\": [{\"name\":"
		    " \"a\", \"type\": \"RegularExpression\", \"value\": \"(\"}]}], \"backends\": []}]}],"
		    " \"clusters\": {}}",
		"{\"version\": 5, \"listeners\": [], \"clusters\": {\"c\": {\"endpoints\": ["
		    "{\"address\": \"not-an-ip\", \"port\": 80}]}}}",
		"{\"version\": 5, \"listeners\": [{\"name\": \"a\", \"port\": 1}, {\"name\": \"a\","
		    " \"port\": 2}], \"clusters\": {}}",
		/* HTTPS: no certificate, then one whose key does not load */
		"{\"version\": 5, \"listeners\": [{\"name\": \"s\", \"port\": 1,"
		    " \"protocol\": \"HTTPS\", \"tls\": []}], \"clusters\": {}}",
		"{\"version\": 5, \"listeners\": [{\"name\": \"s\", \"port\": 1,"
		    " \"protocol\": \"HTTPS\", \"tls\": [{\"cert\": \"x\", \"key\":"
		    " \"-----BEGIN PRIVATE KEY-----\\nSECRETKEYBYTES\\n\"}]}], \"clusters\": {}}",
	};
	struct cl *c;
	struct resp r;
	size_t i;

	assert_int_equal(apply_routes(f, ROUTE_ALL("c0")), 0);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(apply(f, "%s", bad[i]), -EINVAL);
		assert_non_null(f->err);
		assert_null(strstr(f->err, "SECRETKEYBYTES"));	/* keys never in a message */
	}
	assert_non_null(strstr(f->err, "listener s:"));
	on_loop(f, version_on_loop, NULL);
	assert_int_equal(f->rc, 1);
	c = cl_open(f->port);
	assert_int_equal(get(c, "/", NULL, &r), 200);
	assert_string_equal(r.body, "u0 /");
	cl_close(c);
}

static void
metrics_on_loop(struct fx *f, void *arg)
{
	(void)arg;
	buf_reset(&f->text);
	proxy_engine_metrics(f->e, &f->text);
}

static void
test_metrics_per_revision(void **state)
{
	struct fx *f = *state;
	struct cl *c;
	struct resp r;
	struct proxy_stats st;
	int i;

	assert_int_equal(apply_routes(f, "{\"name\": \"web\", \"backends\": ["
	    "{\"cluster\": \"c0\", \"weight\": 3}, {\"cluster\": \"c1\", \"weight\": 1}]}"), 0);
	c = cl_open(f->port);
	for (i = 0; i < 40; i++)
		assert_int_equal(get(c, "/", NULL, &r), 200);
	cl_close(c);
	on_loop(f, metrics_on_loop, NULL);
	assert_non_null(strstr(f->text.data, "v6_proxy_requests_total{service=\"default/web\","
	    "route=\"web\",revision=\"r0\",code=\"2xx\"} 30\n"));
	assert_non_null(strstr(f->text.data, "v6_proxy_requests_total{service=\"default/web\","
	    "route=\"web\",revision=\"r1\",code=\"2xx\"} 10\n"));
	assert_non_null(strstr(f->text.data, "v6_proxy_request_duration_seconds_count{"
	    "service=\"default/web\",route=\"web\",revision=\"r0\"} 30\n"));
	assert_non_null(strstr(f->text.data, "le=\"+Inf\"} 10\n"));
	assert_non_null(strstr(f->text.data, "v6_proxy_bytes_total{service=\"default/web\","
	    "revision=\"r1\",direction=\"out\"}"));
	assert_non_null(strstr(f->text.data, "v6_proxy_active_connections{listener=\"l1\"}"));
	assert_non_null(strstr(f->text.data, "\nv6_proxy_held_requests 0\n"));
	/* per pod, for custom.metrics.k8s.io: each pod once, idle ones at 0 */
	assert_non_null(strstr(f->text.data, "v6_proxy_pod_requests_total{namespace=\"default\","
	    "pod=\"p0\",code=\"2xx\"} 30\n"));
	assert_non_null(strstr(f->text.data, "v6_proxy_pod_requests_total{namespace=\"default\","
	    "pod=\"p1\",code=\"2xx\"} 10\n"));
	assert_non_null(strstr(f->text.data, "v6_proxy_pod_requests_total{namespace=\"default\","
	    "pod=\"p2\",code=\"2xx\"} 0\n"));
	assert_non_null(strstr(f->text.data, "v6_proxy_pod_request_duration_seconds_count{"
	    "namespace=\"default\",pod=\"p1\"} 10\n"));
	assert_null(strstr(strstr(f->text.data, "pod=\"p1\",code=\"2xx\"") + 1,
	    "pod=\"p1\",code=\"2xx\""));
	assert_int_equal(query(f, "default/web", "r1", &st), 0);
	assert_int_equal(st.requests, 10);
	assert_int_equal(st.status_2xx, 10);
	assert_true(st.p99_ms > 0 && st.p99_ms < 100);
	assert_int_equal(query(f, "default/other", NULL, &st), -ENOENT);
}

static void
sweep_on_loop(struct fx *f, void *arg)
{
	(void)arg;
	px_metrics_sweep(f->e);
}

/* One cluster c0 of default/web on upstream up with revision rev. */
static int
apply_revision(struct fx *f, int version, int up, const char *rev)
{
	return apply(f, "{\"version\": %d, \"listeners\": [{\"name\": \"l1\", \"address\":"
	    " \"127.0.0.1\", \"port\": %d, \"routes\": [" ROUTE_ALL("c0") "]}], \"clusters\":"
	    " {\"c0\": {\"service\": \"default/web\", \"endpoints\": [{\"address\":"
	    " \"127.0.0.1\", \"port\": %d, \"revision\": \"%s\"}]}}}", version, f->port,
	    f->up_port[up], rev);
}

/* A rollout replaces r0 by r1 while a request to r0 is in flight: r0's
 * counters outlive that request (it counts into them as it ends), then a
 * sweep drops them; r1's survive a recompile of the route without a
 * request holding them, so its counters never restart. */
static void
test_metrics_of_a_gone_revision_dropped_after_its_last_request(void **state)
{
	struct fx *f = *state;
	struct bg_get g = { .port = f->port };
	struct proxy_stats st;
	struct resp r;
	struct cl *c;
	pthread_t th;

	assert_int_equal(apply_revision(f, 1, 0, "r0"), 0);
	c = cl_open(f->port);
	assert_int_equal(get(c, "/", NULL, &r), 200);
	cl_close(c);
	pthread_create(&th, NULL, bg_get_main, &g);
	usleep(150000);				/* /slow answers after 500 ms */
	assert_int_equal(apply_revision(f, 2, 1, "r1"), 0);
	on_loop(f, sweep_on_loop, NULL);
	assert_int_equal(query(f, "default/web", "r0", &st), 0);
	pthread_join(th, NULL);
	assert_int_equal(g.status, 200);
	assert_int_equal(query(f, "default/web", "r0", &st), 0);
	assert_int_equal(st.requests, 2);	/* the slow one counted as it ended */
	on_loop(f, sweep_on_loop, NULL);
	assert_int_equal(query(f, "default/web", "r0", &st), -ENOENT);

	c = cl_open(f->port);
	assert_int_equal(get(c, "/", NULL, &r), 200);
	assert_string_equal(r.body, "u1 /");
	cl_close(c);
	/* the same revision on another upstream: cluster and route compiled anew,
	 * the old table (the only holder of r1's counters) freed */
	assert_int_equal(apply_revision(f, 3, 2, "r1"), 0);
	on_loop(f, sweep_on_loop, NULL);
	assert_int_equal(query(f, "default/web", "r1", &st), 0);
	assert_int_equal(st.requests, 1);
}

static void
test_tcp_proxy_echo_half_close(void **state)
{
	struct fx *f = *state;
	struct cl *c;

	assert_int_equal(apply(f, "{\"version\": 4, \"listeners\": [{\"name\": \"db\","
	    " \"address\": \"127.0.0.1\", \"port\": %d, \"protocol\": \"TCP\", \"cluster\": \"db\"}],"
	    " \"clusters\": {\"db\": {\"service\": \"default/db\", \"endpoints\": ["
	    "{\"address\": \"127.0.0.1\", \"port\": %d}, {\"address\": \"127.0.0.1\", \"port\": %d}]}}}",
	    f->port, f->dead_port, f->raw.port), 0);
	for (int i = 0; i < 3; i++) {
		c = cl_open(f->port);
		cl_puts(c, "hello over tcp");
		shutdown(c->fd, SHUT_WR);	/* half-close: the answer still comes */
		while (cl_fill(c) > 0)
			;
		assert_int_equal(c->len, 14);
		assert_memory_equal(c->buf, "hello over tcp", 14);
		cl_close(c);
	}
	assert_int_equal(atomic_load(&f->raw.accepted), 3);
}

static void
apply_big_on_loop(struct fx *f, void *arg)
{
	json_t *snap = json_pack("{s:i, s:[], s:{}}", "version", 7, "listeners", "clusters");
	json_t *ls = json_object_get(snap, "listeners"), *cs = json_object_get(snap, "clusters");
	char name[64], addr[32];
	int i, k, rounds = (int)(intptr_t)arg;
	uint64_t t0, best = UINT64_MAX;

	for (i = 0; i < 100; i++) {
		json_t *eps = json_array();
		snprintf(name, sizeof(name), "default/svc%d:http", i);
		for (k = 0; k < 3; k++)
			json_array_append_new(eps, json_pack("{s:s, s:i, s:s, s:s}", "address",
			    "127.0.0.1", "port", 20000 + i * 3 + k, "pod", "p", "revision", "abc"));
		json_object_set_new(cs, name, json_pack("{s:s, s:o}", "service", name + 8,
		    "endpoints", eps));
		snprintf(addr, sizeof(addr), "127.0.0.%d", i + 2);
		json_array_append_new(ls, json_pack("{s:s, s:s, s:i, s:[{s:s, s:[s], s:[{s:s, s:i}]}]}",
		    "name", name, "address", addr, "port", f->port,
		    "routes", "name", name, "hostnames", name + 8, "backends", "cluster", name,
		    "weight", 1));
	}
	/* the first apply opens 100 listeners; the others only diff */
	for (i = 0; i < rounds; i++) {
		json_object_set_new(snap, "version", json_integer(8 + i));
		t0 = uv_hrtime();
		proxy_engine_apply(f->e, snap, &f->err);
		free(f->err);
		f->err = NULL;
		if (i > 0 && uv_hrtime() - t0 < best)
			best = uv_hrtime() - t0;
	}
	f->rc = (int)(best / 1000);
	json_decref(snap);
}

static void
test_apply_100_services_fast(void **state)
{
	struct fx *f = *state;

	on_loop(f, apply_big_on_loop, (void *)(intptr_t)20);
	fprintf(stderr, "apply of 100 services (re-apply, best of 19): %d us\n", f->rc);
#ifndef __SANITIZE_ADDRESS__
	assert_true(f->rc < 1000);
#endif
}

/* ---- incremental applies ------------------------------------------------- */

/* The compiled table, the listeners and the endpoint registry of e as
 * text (equal for equal routing), in b; the first broken invariant (a route
 * to a cluster the table does not hold, a listener on a spec of another
 * table, an endpoint counted in no cluster) in why. */
static void
engine_dump(struct proxy_engine *e, struct buf *b, char *why, size_t whysz)
{
	struct px_table *t = e->table;
	struct px_listener *l;
	struct px_endpoint *ep;
	size_t i, k, m, n, nl = 0, inuse = 0;

#define BROKEN(...) do { if (why[0] == 0) snprintf(why, whysz, __VA_ARGS__); } while (0)
	buf_printf(b, "version %lld\n", (long long)t->version);
	for (i = 0; i < t->nclusters; i++) {
		struct px_cluster *c = t->clusters[i];
		buf_printf(b, "C %s %s %d %u %u %u %u:", c->name, c->service, (int)c->lb,
		    c->connect_timeout_ms, c->idle_timeout_ms, c->outlier_fails, c->outlier_ms);
		for (k = 0; k < c->neps; k++)
			buf_printf(b, " %s/%s/%s/%d", c->eps[k]->key, c->eps[k]->pod,
			    c->eps[k]->revision, (int)c->eps[k]->removed);
		buf_printf(b, "\n");
		if (c->labels)
			BROKEN("cluster %s: labels never committed", c->name);
	}
	for (i = 0; i < t->nlisteners; i++) {
		struct px_lspec *ls = t->listeners[i];
		buf_printf(b, "L %s %s:%d %d %s\n", ls->name, ls->address, ls->port, (int)ls->proto,
		    ls->cluster ? ls->cluster->name : "-");
		if (ls->cluster && px_cluster_find(t, ls->cluster->name) != ls->cluster)
			BROKEN("listener %s: a cluster of another table", ls->name);
		if (ls->stale)
			BROKEN("listener %s: stale spec in the current table", ls->name);
		for (k = 0; k < ls->nroutes; k++) {
			struct px_route *r = &ls->routes[k];
			buf_printf(b, " R %s t=%llu/%llu", r->name, (unsigned long long)r->timeout_ms,
			    (unsigned long long)r->backend_timeout_ms);
			for (m = 0; m < r->nhosts; m++)
				buf_printf(b, " h=%s", r->hosts[m]);
			for (m = 0; m < r->nmatches; m++)
				buf_printf(b, " m=%s/%d/%s/%zu/%zu/%zu", r->matches[m].method,
				    (int)r->matches[m].path_type, r->matches[m].path ?
				    r->matches[m].path : "", r->matches[m].nheaders,
				    r->matches[m].nquery, r->matches[m].ncookies);
			for (m = 0; m < r->nbackends; m++) {
				struct px_cluster *c = r->backends[m].cluster;
				buf_printf(b, " b=%s*%d", c->name, r->backends[m].weight);
				if (px_cluster_find(t, c->name) != c)
					BROKEN("route %s: cluster %s of another table", r->name, c->name);
			}
			buf_printf(b, "\n");
		}
	}
	for (l = e->listeners; l; l = l->next) {
		if (l->removed)
			continue;
		nl++;
		if (l->table != NULL || l->spec == NULL || l->spec->listener != l)
			BROKEN("listener %s: not on the current table", l->name);
		for (k = 0; k < t->nlisteners && t->listeners[k] != l->spec; k++)
			;
		if (k == t->nlisteners)
			BROKEN("listener %s: its spec is not in the current table", l->name);
	}
	if (nl != t->nlisteners)
		BROKEN("%zu listeners open for %zu specs", nl, t->nlisteners);
	for (i = 0; i < ARRAY_SIZE(e->eps); i++)
		for (ep = e->eps[i]; ep; ep = ep->hnext) {
			for (n = 0, k = 0; k < t->nclusters; k++)
				for (m = 0; m < t->clusters[k]->neps; m++)
					n += t->clusters[k]->eps[m] == ep;
			if (n != ep->inuse || ep->removed != (n == 0))
				BROKEN("endpoint %s: in %zu clusters, counted %u, removed %d", ep->key,
				    n, ep->inuse, (int)ep->removed);
			inuse += n > 0;
		}
	buf_printf(b, "endpoints in use %zu\n", inuse);
#undef BROKEN
}

#define RS 10		/* service slots of the random model */
#define REPS 6		/* endpoint addresses they share */

struct rmodel {
	bool on[RS];
	bool tcp[RS];
	int eps[RS];		/* bit mask of REPS */
	int extra[RS];		/* a second backend's slot, or -1 */
	int weight[RS];
	int host[RS];
	int lb[RS];
	int rev[REPS];		/* an endpoint's revision label */
};

static void
rmodel_mutate(struct rmodel *m, unsigned *seed)
{
	int s = rand_r(seed) % RS;

	switch (rand_r(seed) % 8) {
	case 0: m->on[s] = !m->on[s] || s == 0; break;
	case 1: m->tcp[s] = !m->tcp[s]; break;
	case 2: m->extra[s] = rand_r(seed) % (RS + 1) - 1; break;
	case 3: m->weight[s] = rand_r(seed) % 4; break;
	case 4: m->host[s] = rand_r(seed) % 3; break;
	case 5: m->lb[s] = rand_r(seed) % 2; break;
	case 6: m->rev[rand_r(seed) % REPS]++; break;
	default: m->eps[s] = rand_r(seed) % (1 << REPS); break;
	}
}

/* The model's table: listeners (name -> listener) and clusters. */
static void
rmodel_render(const struct rmodel *m, int port, json_t **ls, json_t **cs)
{
	char name[64], lname[64], addr[32], other[64];

	*ls = json_object();
	*cs = json_object();
	for (int s = 0; s < RS; s++) {
		if (!m->on[s])
			continue;
		json_t *eps = json_array();
		for (int k = 0; k < REPS; k++) {
			char a[32], pod[16], rev[16];
			if (!(m->eps[s] & (1 << k)))
				continue;
			snprintf(a, sizeof(a), "127.1.0.%d", k + 1);
			snprintf(pod, sizeof(pod), "p%d", k);
			snprintf(rev, sizeof(rev), "r%d", m->rev[k]);
			json_array_append_new(eps, json_pack("{s:s, s:i, s:s, s:s}", "address", a,
			    "port", 9000, "pod", pod, "revision", rev));
		}
		snprintf(name, sizeof(name), "default/s%d:http", s);
		json_object_set_new(*cs, name, json_pack("{s:s, s:s, s:o}", "service", name,
		    "lb", m->lb[s] ? "least_request" : "round_robin", "endpoints", eps));
		snprintf(lname, sizeof(lname), "svc/default/s%d/http", s);
		snprintf(addr, sizeof(addr), "127.0.0.%d", s + 2);
		json_t *l = json_pack("{s:s, s:s, s:i, s:s}", "name", lname, "address", addr,
		    "port", port, "protocol", m->tcp[s] ? "TCP" : "HTTP");
		if (m->tcp[s]) {
			json_object_set_new(l, "cluster", json_string(name));
		} else {
			json_t *bes = json_pack("[{s:s, s:i}]", "cluster", name, "weight",
			    m->weight[s]);
			int x = m->extra[s];
			if (x >= 0 && x != s && m->on[x]) {
				snprintf(other, sizeof(other), "default/s%d:http", x);
				json_array_append_new(bes, json_pack("{s:s, s:i}", "cluster", other,
				    "weight", 1));
			}
			json_t *r = json_pack("{s:s, s:o}", "name", lname, "backends", bes);
			if (m->host[s])
				json_object_set_new(r, "hostnames", json_pack("[s]",
				    m->host[s] == 1 ? "a.example" : "*.b.example"));
			json_object_set_new(l, "routes", json_pack("[o]", r));
		}
		json_object_set_new(*ls, lname, l);
	}
}

/* What turns map a into map b: changed names to b's value, gone ones to null. */
static json_t *
map_delta(const json_t *a, const json_t *b)
{
	json_t *d = json_object(), *v;
	const char *name;

	json_object_foreach((json_t *)a, name, v)
		if (json_object_get(b, name) == NULL)
			json_object_set_new(d, name, json_null());
	json_object_foreach((json_t *)b, name, v)
		if (!json_equal(json_object_get(a, name), v))
			json_object_set(d, name, v);
	return d;
}

static json_t *
snapshot_of(int64_t version, const json_t *ls, const json_t *cs)
{
	json_t *arr = json_array(), *v;
	const char *name;

	json_object_foreach((json_t *)ls, name, v)
		json_array_append(arr, v);
	return json_pack("{s:I, s:o, s:O}", "version", (json_int_t)version, "listeners", arr,
	    "clusters", cs);
}

struct rrun {
	int rounds;
	char why[512];
	int applies;		/* deltas that applied */
};

/* Random rounds on one engine: the table after delta(A -> B) is dumped,
 * then B is applied whole and dumped again: both must be the same. */
static void
random_deltas_on_loop(struct fx *f, void *arg)
{
	struct rrun *run = arg;
	struct rmodel m = { .on = { true, true, true }, .extra = { 1, 2, 0, -1, -1, -1, -1, -1,
	    -1, -1 }, .weight = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, .eps = { 1, 3, 6 } };
	unsigned seed = 4242;
	json_t *ls, *cs, *ls2, *cs2, *snap;
	struct buf d1 = { 0 }, d2 = { 0 };
	char *err = NULL;
	int64_t v = 1;

	rmodel_render(&m, f->port, &ls, &cs);
	snap = snapshot_of(v, ls, cs);
	if (proxy_engine_apply(f->e, snap, &err) < 0 || err)
		snprintf(run->why, sizeof(run->why), "first apply: %s", err ? err : "?");
	json_decref(snap);
	for (int i = 0; i < run->rounds && run->why[0] == 0; i++) {
		int n = 1 + rand_r(&seed) % 3;
		while (n-- > 0)
			rmodel_mutate(&m, &seed);
		rmodel_render(&m, f->port, &ls2, &cs2);
		json_t *dl = map_delta(ls, ls2), *dc = map_delta(cs, cs2);
		free(err);
		err = NULL;
		if (proxy_engine_apply_delta(f->e, ++v, dl, dc, &err) < 0 || err) {
			snprintf(run->why, sizeof(run->why), "round %d: delta: %s", i, err);
		} else {
			run->applies++;
			d1.len = d2.len = 0;
			engine_dump(f->e, &d1, run->why, sizeof(run->why));
			snap = snapshot_of(v, ls2, cs2);
			free(err);
			err = NULL;
			if (proxy_engine_apply(f->e, snap, &err) < 0 || err)
				snprintf(run->why, sizeof(run->why), "round %d: whole: %s", i, err);
			engine_dump(f->e, &d2, run->why, sizeof(run->why));
			json_decref(snap);
			if (run->why[0] == 0 && (d1.len != d2.len || memcmp(d1.data, d2.data,
			    d1.len) != 0))
				snprintf(run->why, sizeof(run->why), "round %d: delta gave\n%.*s\n"
				    "whole gave\n%.*s", i, 200, d1.data, 200, d2.data);
		}
		json_decref(dl);
		json_decref(dc);
		json_decref(ls);
		json_decref(cs);
		ls = ls2;
		cs = cs2;
	}
	free(err);
	json_decref(ls);
	json_decref(cs);
	buf_free(&d1);
	buf_free(&d2);
}

static void
test_delta_matches_whole_snapshot_randomized(void **state)
{
	struct fx *f = *state;
	struct rrun run = { .rounds = 300 };

	on_loop(f, random_deltas_on_loop, &run);
	if (run.why[0])
		fail_msg("%s", run.why);
	assert_int_equal(run.applies, 300);
}

struct counts {
	uint64_t clusters, listeners;
	int rc;
	char *err;
};

struct delta_call {
	const char *listeners, *clusters;	/* JSON text, NULL: none */
	int64_t version;
	struct counts out;
};

static void
delta_on_loop(struct fx *f, void *arg)
{
	struct delta_call *c = arg;
	json_t *ls = c->listeners ? json_loads(c->listeners, 0, NULL) : NULL;
	json_t *cs = c->clusters ? json_loads(c->clusters, 0, NULL) : NULL;
	uint64_t c0 = f->e->ncluster_compiles, l0 = f->e->nlistener_compiles;

	free(c->out.err);
	c->out.err = NULL;
	c->out.rc = proxy_engine_apply_delta(f->e, c->version, ls, cs, &c->out.err);
	c->out.clusters = f->e->ncluster_compiles - c0;
	c->out.listeners = f->e->nlistener_compiles - l0;
	json_decref(ls);
	json_decref(cs);
}

/* A delta of json text (listeners, clusters) at version: what it compiled. */
static struct counts
delta(struct fx *f, int64_t version, const char *listeners, const char *clusters)
{
	struct delta_call c = { listeners, clusters, version, { 0 } };

	on_loop(f, delta_on_loop, &c);
	return c.out;
}

/* l1 on f->port routes to c0 (u0), l2 on f->port2 to c1 (u1); forty more
 * services with their own listener and cluster stand by. */
static void
apply_two_and_forty(struct fx *f)
{
	struct buf b = { 0 };
	char *c0 = cluster_json(f, 0), *c1 = cluster_json(f, 1);

	buf_printf(&b, "{\"version\": 1, \"listeners\": [{\"name\": \"l1\", \"address\":"
	    " \"127.0.0.1\", \"port\": %d, \"routes\": [" ROUTE_ALL("c0") "]}, {\"name\":"
	    " \"l2\", \"address\": \"127.0.0.1\", \"port\": %d, \"routes\": [" ROUTE_ALL("c1")
	    "]}", f->port, f->port2);
	for (int i = 0; i < 40; i++)
		buf_printf(&b, ", {\"name\": \"x%d\", \"address\": \"127.0.3.%d\", \"port\": %d,"
		    " \"routes\": [{\"name\": \"x%d\", \"backends\": [{\"cluster\": \"x%d\"}]}]}",
		    i, i + 1, f->port, i, i);
	buf_printf(&b, "], \"clusters\": {%s, %s", c0, c1);
	for (int i = 0; i < 40; i++)
		buf_printf(&b, ", \"x%d\": {\"service\": \"default/x%d\", \"endpoints\": ["
		    "{\"address\": \"127.0.0.1\", \"port\": %d}]}", i, i, f->dead_port);
	buf_printf(&b, "}}");
	assert_int_equal(apply(f, "%s", b.data), 0);
	assert_null(f->err);
	buf_free(&b);
	free(c0);
	free(c1);
}

static void
test_delta_compiles_only_what_changed(void **state)
{
	struct fx *f = *state;
	struct counts n;
	char js[512];

	apply_two_and_forty(f);
	/* one cluster: it, and the one listener routing to it */
	snprintf(js, sizeof(js), "{\"x7\": {\"service\": \"default/x7\", \"endpoints\": ["
	    "{\"address\": \"127.0.0.1\", \"port\": %d}]}}", f->up_port[2]);
	n = delta(f, 2, NULL, js);
	assert_int_equal(n.rc, 0);
	assert_int_equal(n.clusters, 1);
	assert_int_equal(n.listeners, 1);
	/* one listener: no cluster */
	n = delta(f, 3, "{\"x8\": {\"name\": \"x8\", \"address\": \"127.0.3.9\", \"port\": 1,"
	    " \"routes\": [" ROUTE_ALL("x9") "]}}", NULL);
	assert_int_equal(n.rc, 0);
	assert_int_equal(n.clusters, 0);
	assert_int_equal(n.listeners, 1);
	/* a cluster nothing routes to any more: removed, nothing compiled */
	n = delta(f, 4, NULL, "{\"x8\": null}");
	assert_int_equal(n.rc, 0);
	assert_int_equal(n.clusters + n.listeners, 0);
	/* refused atomically: a cluster still routed to, a listener of another name */
	n = delta(f, 5, NULL, "{\"x9\": null}");
	assert_true(n.rc < 0);
	assert_non_null(strstr(n.err, "unknown cluster"));
	free(n.err);
	n = delta(f, 5, "{\"x1\": {\"name\": \"x2\", \"port\": 1}}", NULL);
	assert_true(n.rc < 0);
	free(n.err);
	assert_int_equal(proxy_engine_version(f->e), 4);
}

static void
test_delta_keeps_connections_pools_and_metrics(void **state)
{
	struct fx *f = *state;
	struct proxy_stats st;
	struct cl *c, *c2;
	struct counts n;
	struct resp r;
	char js[512];

	apply_two_and_forty(f);
	c = cl_open(f->port);
	assert_int_equal(get(c, "/", NULL, &r), 200);
	assert_string_equal(r.body, "u0 /");
	/* l2's cluster moves to u2: l1's client and pooled upstream connection stay */
	snprintf(js, sizeof(js), "{\"c1\": {\"service\": \"default/web\", \"endpoints\": ["
	    "{\"address\": \"127.0.0.1\", \"port\": %d, \"pod\": \"p2\", \"revision\": \"r2\"}]}}",
	    f->up_port[2]);
	n = delta(f, 2, NULL, js);
	assert_int_equal(n.rc, 0);
	assert_int_equal(get(c, "/", NULL, &r), 200);
	assert_string_equal(r.body, "u0 /");
	assert_false(r.closed);
	on_loop(f, conns_on_loop, (void *)0);
	assert_int_equal(f->conns, 1);
	c2 = cl_open(f->port2);
	assert_int_equal(get(c2, "/b", NULL, &r), 200);
	assert_string_equal(r.body, "u2 /b");
	/* c0 itself replaced (u2 added): l1 recompiled, u0's pool and counts go on */
	snprintf(js, sizeof(js), "{\"c0\": {\"service\": \"default/web\", \"endpoints\": ["
	    "{\"address\": \"127.0.0.1\", \"port\": %d, \"pod\": \"p0\", \"revision\": \"r0\"},"
	    " {\"address\": \"127.0.0.1\", \"port\": %d, \"pod\": \"p2\", \"revision\": \"r2\"}]}}",
	    f->up_port[0], f->up_port[2]);
	n = delta(f, 3, NULL, js);
	assert_int_equal(n.rc, 0);
	assert_int_equal(n.listeners, 1);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(get(c, "/", NULL, &r), 200);
		assert_false(r.closed);
	}
	on_loop(f, conns_on_loop, (void *)0);
	assert_int_equal(f->conns, 1);		/* reused, not reopened */
	assert_int_equal(query(f, "default/web", "r0", &st), 0);
	assert_int_equal(st.requests, 4);	/* 2 before c0 changed, 2 of 4 after */
	assert_int_equal(query(f, "default/web", "r2", &st), 0);
	assert_int_equal(st.requests, 3);	/* 1 on l2, 2 of 4 on l1 */
	cl_close(c);
	cl_close(c2);
}

/* A listener that could not bind is tried again on the next delta, even
 * one that does not name it (as a whole snapshot would). */
static void
test_delta_retries_a_listener_that_could_not_bind(void **state)
{
	struct fx *f = *state;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(f->port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct counts n;
	struct cl *c;
	struct resp r;
	char js[512];

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(apply_routes(f, ROUTE_ALL("c0")), 0);
	assert_non_null(f->err);		/* l1 could not bind */
	close(fd);
	snprintf(js, sizeof(js), "{\"c1\": {\"service\": \"default/web\", \"endpoints\": ["
	    "{\"address\": \"127.0.0.1\", \"port\": %d}]}}", f->up_port[2]);
	n = delta(f, 2, NULL, js);
	assert_int_equal(n.rc, 0);
	assert_null(n.err);
	c = cl_open(f->port);
	assert_int_equal(get(c, "/", NULL, &r), 200);
	assert_string_equal(r.body, "u0 /");
	cl_close(c);
}

struct size_cost {
	int services;
	uint64_t whole_us, delta_us;	/* best of the deltas */
	char why[256];
};

/* Whole apply of size->services Services (listener + cluster each), then
 * 20 deltas each replacing one cluster's endpoints (so its listener is
 * compiled again too): the cost of one change. */
static void
size_cost_on_loop(struct fx *f, void *arg)
{
	struct size_cost *sc = arg;
	json_t *snap = json_pack("{s:i, s:[], s:{}}", "version", 1, "listeners", "clusters");
	json_t *ls = json_object_get(snap, "listeners"), *cs = json_object_get(snap, "clusters");
	char name[64], addr[32];
	char *err = NULL;
	uint64_t t0;
	int i;

	for (i = 0; i < sc->services; i++) {
		snprintf(name, sizeof(name), "default/svc%d:http", i);
		snprintf(addr, sizeof(addr), "127.1.%d.%d", i / 250, i % 250 + 1);
		json_object_set_new(cs, name, json_pack("{s:s, s:[{s:s, s:i, s:s, s:s}]}",
		    "service", name + 8, "endpoints", "address", addr, "port", 8080, "pod", "p",
		    "revision", "abc"));
		snprintf(addr, sizeof(addr), "127.3.%d.%d", i / 250, i % 250 + 1);
		json_array_append_new(ls, json_pack("{s:s, s:s, s:i, s:[{s:s, s:[{s:s}]}]}",
		    "name", name, "address", addr, "port", f->port, "routes", "name", name,
		    "backends", "cluster", name));
	}
	t0 = uv_hrtime();
	if (proxy_engine_apply(f->e, snap, &err) < 0 || err)
		snprintf(sc->why, sizeof(sc->why), "whole: %s", err ? err : "?");
	sc->whole_us = (uv_hrtime() - t0) / 1000;
	sc->delta_us = UINT64_MAX;
	for (i = 0; i < 20 && sc->why[0] == 0; i++) {
		json_t *d = json_object();
		snprintf(name, sizeof(name), "default/svc%d:http", i * 37 % sc->services);
		json_object_set_new(d, name, json_pack("{s:s, s:[{s:s, s:i}]}", "service", name + 8,
		    "endpoints", "address", "127.2.0.1", "port", 9000 + i));
		t0 = uv_hrtime();
		if (proxy_engine_apply_delta(f->e, 2 + i, NULL, d, &err) < 0 || err)
			snprintf(sc->why, sizeof(sc->why), "delta: %s", err ? err : "?");
		if ((uv_hrtime() - t0) / 1000 < sc->delta_us)
			sc->delta_us = (uv_hrtime() - t0) / 1000;
		json_decref(d);
	}
	free(err);
	json_decref(snap);
}

/* Issue 9: the cost of one change does not grow with the table. */
static void
test_delta_cost_independent_of_table_size(void **state)
{
	struct fx *f = *state;
	struct size_cost small = { .services = 1000 }, big = { .services = 10000 };

	on_loop(f, size_cost_on_loop, &small);
	assert_string_equal(small.why, "");
	on_loop(f, size_cost_on_loop, &big);	/* on top: the table grows to 10,000 */
	assert_string_equal(big.why, "");
	fprintf(stderr, "one-cluster delta: %llu us at 1,000 Services, %llu us at 10,000"
	    " (whole apply: %llu us, %llu us)\n", (unsigned long long)small.delta_us,
	    (unsigned long long)big.delta_us, (unsigned long long)small.whole_us,
	    (unsigned long long)big.whole_us);
#ifndef __SANITIZE_ADDRESS__
	assert_true(big.delta_us < 2000);
	assert_true(big.delta_us * 10 < big.whole_us);
#endif
}

/* ---- by hand: a benchmark target ------------------------------------------ */

static int
bench_serve(const char *spec)
{
	uv_loop_t *loop = uv_default_loop();
	struct proxy_engine *e = proxy_engine_new(loop);
	int lport = 0, uport = 0;
	char *err = NULL, js[1024];
	json_t *j;

	if (sscanf(spec, "%d:%d", &lport, &uport) != 2)
		return 2;
	snprintf(js, sizeof(js), "{\"version\": 1, \"listeners\": [{\"name\": \"bench\","
	    " \"address\": \"127.0.0.1\", \"port\": %d, \"routes\": [{\"name\": \"r\","
	    " \"backends\": [{\"cluster\": \"c\"}]}]}], \"clusters\": {\"c\": {\"service\":"
	    " \"bench/up\", \"endpoints\": [{\"address\": \"127.0.0.1\", \"port\": %d}]}}}",
	    lport, uport);
	j = json_loads(js, 0, NULL);
	if (proxy_engine_apply(e, j, &err) < 0 || err) {
		fprintf(stderr, "apply: %s\n", err ? err : "?");
		return 1;
	}
	json_decref(j);
	fprintf(stderr, "proxy on 127.0.0.1:%d -> %d (apply %.1f us)\n", lport, uport,
	    proxy_engine_apply_us(e));
	return uv_run(loop, UV_RUN_DEFAULT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routing_by_host_path_header_query_cookie, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_route_404_and_no_endpoints_503, setup, teardown),
		cmocka_unit_test_setup_teardown(test_weights_90_10, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive_reuses_upstream_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_and_concurrent_requests_answered_in_order,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_half_close_still_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunked_request_and_response_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_request_body_streams_upstream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_response_streams_with_bounded_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_websocket_upgrade_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_failure_retried_on_another_endpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive_race_retried_for_idempotent_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outlier_ejection_and_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_504, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forwarded_headers_request_id_traceparent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_update_keeps_connection_and_switches_backend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_listener_drains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_snapshot_rejected_atomically, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_per_revision, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_of_a_gone_revision_dropped_after_its_last_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_proxy_echo_half_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_100_services_fast, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delta_matches_whole_snapshot_randomized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delta_compiles_only_what_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delta_keeps_connections_pools_and_metrics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delta_retries_a_listener_that_could_not_bind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delta_cost_independent_of_table_size, setup, teardown),
	};
	const char *bench = getenv("V6_PROXY_BENCH");

	log_set_level(LOG_WARN);
	if (bench)
		return bench_serve(bench);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
