/* fuzz_http.c — libFuzzer target for the HTTP/1.1 server of src/http.c,
 * driven the way a client drives it: every input gets a fresh libuv loop and
 * http_server on loopback, one real TCP client that sends the bytes in one or
 * several writes, a handler that answers each request now, later, or as a
 * stream, and ends with http_server_stop() and uv_loop_close() == 0.
 * Build and run: tests/fuzz/Makefile, docs/fuzzing.md.
 *
 * Input: byte 0 picks the number of writes and their split points (bits
 * 0-2), a client that does not read while it writes, with 4 KiB socket
 * buffers on both sides (bit 3), 1 ms header or idle timeouts (bits 4-6 == 1 or 2) and
 * cfg.stream_body, the proxy's mode (bit 7; FUZZ_HTTP_STREAM_BODY=0 turns it
 * off); byte 1 the handler's first
 * behaviour, the limits, a half-close after the last write, a second
 * connection against max_connections = 1 and a custom error renderer; the
 * rest is what the client sends. Table: docs/fuzzing.md.
 *
 * Oracle besides the sanitizers: the server's output parses as HTTP/1.1
 * responses (http-parser, HTTP_RESPONSE), one per dispatched request in order
 * (bodiless after HEAD), plus interim 100s and at most one final error; the
 * promises of http.h about requests, bodies and callbacks hold (see the
 * abort() calls); a handle left open fails uv_loop_close(). */
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "http.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void on_timer_cb(uv_timer_t *);

#define MAX_HEADS	4096	/* dispatched requests tracked for the oracle */
#define SETTLE_ITERS	200	/* loop iterations after the last write, at most */
#define BIG_BODY	(192 * 1024)

/* What the handler does with a request. */
enum act {
	ACT_NOW,		/* 200 at once, a body describing the request */
	ACT_NO_CONTENT,		/* 204 at once */
	ACT_LATER,		/* 200 from the timer */
	ACT_STREAM,		/* chunked: start, two writes, end, all at once */
	ACT_STREAM_LATER,	/* chunked: start now, write and end from the timer */
	ACT_CLOSE,		/* 200 with an extra header and Connection: close */
	ACT_NOT_MODIFIED,	/* 304 with a body that must not be sent */
	ACT_BIG,		/* 192 KiB at once: the write queue */
	ACT_RAW,		/* http_raw_write of a framed response, end on drain */
	ACT_COUNT
};

/* What the handler does with a streamed body (cfg.stream_body). */
enum body_way {
	BODY_READ,		/* read it all, then answer */
	BODY_PAUSED,		/* pause at once, resume from the timer */
	BODY_ANSWER_FIRST,	/* answer before reading it: the server closes */
	BODY_IGNORED,		/* no body callback; answer from the timer */
	BODY_WAYS
};

/* The request the handler holds. http.c dispatches one request at a time
 * per connection and only the first client sends requests, so there is at
 * most one: a second dispatch while one is held is a finding. */
struct held {
	struct http_req *req;
	enum act act;
	bool started;		/* the response is under way (stream or raw) */
	bool wait_body;		/* finish when the body ends */
	bool paused;
	size_t body_bytes;
	unsigned polls;		/* timer rounds waiting for the write queue */
};

/* One connection's view from the client side. */
struct client {
	int fd;
	bool eof;
	http_parser parser;
	unsigned heads_seen;		/* final responses matched to requests */
	bool error_seen;		/* a final response with no request left */
};

static struct {
	uv_loop_t loop;
	uv_timer_t timer;		/* finishes deferred requests */
	uv_timer_t guard;		/* bounds UV_RUN_ONCE in timed mode */
	struct http_server *srv;
	struct http_config cfg;
	struct held h;
	unsigned seq;			/* requests dispatched so far */
	unsigned mode;			/* first action */
	bool heads[MAX_HEADS];		/* per dispatched request: was it HEAD */
	unsigned nheads;
	bool heads_lost;		/* more than MAX_HEADS: oracle off */
	struct client cl[2];
	unsigned ncl;
} F;

static char big[BIG_BODY];
static int port;			/* reused: no TIME_WAIT pile-up on new ports */
static bool debug;			/* FUZZ_HTTP_DEBUG=1: print what goes by */
static bool no_stream_body;		/* FUZZ_HTTP_STREAM_BODY=0 */

/* ---- handler -------------------------------------------------------------- */

static void
describe(struct http_req *req)
{
	char body[512];
	const char *host = http_req_header(req, "Host");
	char *a = http_query_get(req->query, "a");
	int n;

	n = snprintf(body, sizeof(body), "%s %s ? %s a=%s host=%s h=%zu b=%zu\n",
	    req->method, req->path, req->query, a ? a : "-", host ? host : "-",
	    req->nheaders, req->body_len);
	free(a);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)sizeof(body) - 1;
	http_respond(req, 200, "text/plain", body, (size_t)n);
}

/* Starts the response of act; returns true when req is finished. */
static bool
act_start(struct http_req *req, enum act act)
{
	static const char raw_small[] = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nraw\n";
	char head[96];
	uv_buf_t b[2];
	bool body = strcmp(req->method, "HEAD") != 0;

	switch (act) {
	case ACT_NOW:
		describe(req);
		return true;
	case ACT_NO_CONTENT:
		http_respond(req, 204, NULL, NULL, 0);
		return true;
	case ACT_LATER:
		return false;
	case ACT_STREAM:
		http_stream_start(req, 200, "text/plain");
		(void)http_stream_write(req, req->path, strlen(req->path));
		(void)http_stream_write(req, "\n", 1);
		http_stream_end(req);
		return true;
	case ACT_STREAM_LATER:
		http_stream_start(req, 200, "application/json");
		(void)http_stream_write(req, "{}\n", 3);
		return false;
	case ACT_CLOSE:
		http_add_header(req, "X-Fuzz", req->method);
		http_add_header(req, "Connection", "close");
		http_respond(req, 200, "text/plain", "bye\n", 4);
		return true;
	case ACT_NOT_MODIFIED:
		http_respond(req, 304, NULL, "ignored", 7);
		return true;
	case ACT_BIG:
		http_respond(req, 200, "application/octet-stream", big, sizeof(big));
		return true;
	default:
		if (F.seq & 1) {
			b[0] = uv_buf_init((char *)raw_small, body ? sizeof(raw_small) - 1 :
			    sizeof(raw_small) - 5);
			(void)http_raw_write(req, b, 1);
			http_raw_end(req, req->keep_alive);
			return true;
		}
		snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n",
		    BIG_BODY);
		b[0] = uv_buf_init(head, (unsigned)strlen(head));
		b[1] = uv_buf_init(big, body ? BIG_BODY : 0);
		(void)http_raw_write(req, b, 2);
		return false;
	}
}

/* Completes a response act_start left open. */
static void
act_finish(struct http_req *req, enum act act, bool started)
{
	if (!started) {
		if (act == ACT_LATER || !act_start(req, act)) {
			http_add_header(req, "X-Deferred", "1");
			if (act == ACT_RAW)
				http_raw_end(req, false);
			else if (act == ACT_STREAM_LATER)
				http_stream_end(req);
			else
				http_respond(req, 200, "text/plain", "deferred\n", 9);
		}
		return;
	}
	if (act == ACT_RAW) {
		http_raw_end(req, req->keep_alive);
		return;
	}
	(void)http_stream_pending(req);
	if (http_stream_write(req, "later\n", 6) == 0)
		(void)http_stream_write(req, "", 0);
	http_stream_end(req);
}

/* Finishes the held request. Finishing may dispatch the next pipelined
 * request at once, so the slot is cleared first. */
static void
held_finish(void)
{
	struct held h = F.h;

	memset(&F.h, 0, sizeof(F.h));
	act_finish(h.req, h.act, h.started);
}

static void
kick(void)
{
	uv_timer_start(&F.timer, on_timer_cb, 0, 0);
}

static void
on_abort(struct http_req *req, void *arg)
{
	(void)arg;
	if (F.h.req != req)
		abort();	/* abort callback for a request already finished */
	/* Finishing from the abort callback is allowed; do it half the time. */
	if (F.seq & 1)
		held_finish();
	else
		kick();
}

static void
on_drain(struct http_req *req, void *arg)
{
	(void)arg;
	if (F.h.req == req && F.h.act == ACT_RAW && F.h.started && !F.h.wait_body)
		held_finish();
}

static void
on_timer_cb(uv_timer_t *t)
{
	struct http_req *req = F.h.req;

	(void)t;
	if (req == NULL)
		return;
	if (F.h.paused) {
		F.h.paused = false;
		http_req_body_pause(req, false);	/* may deliver and finish */
		return;
	}
	if (F.h.wait_body && !http_req_aborted(req))
		return;		/* on_body finishes it */
	if (F.h.started && F.h.act == ACT_RAW && !http_req_aborted(req) &&
	    http_stream_pending(req) > 0 && F.h.polls++ < 50) {
		kick();		/* on_drain should come first */
		return;
	}
	held_finish();
}

static void
on_body(struct http_req *req, const char *data, size_t len, bool end, void *arg)
{
	(void)arg;
	if (F.h.req != req || F.h.paused)
		abort();	/* body for a finished or paused request */
	if (debug)
		fprintf(stderr, "fuzz_http: body %zu [%.*s]%s\n", len, (int)len, data,
		    end ? " end" : "");
	F.h.body_bytes += len;
	if (!end)
		return;
	/* raw bytes: exactly Content-Length of them unless chunked */
	if (!req->chunked && req->content_length >= 0 &&
	    F.h.body_bytes != (size_t)req->content_length)
		abort();
	F.h.wait_body = false;
	held_finish();
}

/* Holds req: the timer, the body, the drain or the abort finishes it. */
static void
hold(struct http_req *req, enum act act, bool started)
{
	F.h.req = req;
	F.h.act = act;
	F.h.started = started;
	if (F.seq % 3 == 0 || req->body_follows)
		http_req_on_abort(req, on_abort, NULL);
	if (act == ACT_RAW)
		http_req_on_drain(req, on_drain, NULL);
	kick();
}

static void
stream_body(struct http_req *req, enum act act)
{
	enum body_way way = (enum body_way)(F.seq % BODY_WAYS);

	hold(req, act, false);
	if (way != BODY_IGNORED)
		http_req_body(req, on_body, NULL);
	switch (way) {
	case BODY_READ:
		F.h.wait_body = true;
		break;
	case BODY_PAUSED:
		F.h.wait_body = F.h.paused = true;
		http_req_body_pause(req, true);
		break;
	case BODY_ANSWER_FIRST:
		held_finish();
		break;
	default:
		break;
	}
}

static void
check_request(const struct http_req *req)
{
	/* complete and NUL-terminated as promised */
	if (req->body[req->body_len] != '\0' || req->path == NULL || req->query == NULL)
		abort();
	for (size_t i = 0; i < req->nheaders; i++)
		if (req->headers[i].name == NULL || req->headers[i].value == NULL)
			abort();
	if (req->body_len > F.cfg.max_body_bytes)
		abort();
	if (!req->body_follows && !req->chunked && req->content_length >= 0 &&
	    req->body_len != (size_t)req->content_length)
		abort();
}

static void
handler(struct http_req *req, void *arg)
{
	enum act act = (enum act)((F.mode + F.seq) % ACT_COUNT);

	(void)arg;
	if (F.h.req != NULL)
		abort();	/* two requests of one connection at once */
	if (F.nheads < MAX_HEADS)
		F.heads[F.nheads++] = strcmp(req->method, "HEAD") == 0;
	else
		F.heads_lost = true;
	F.seq++;
	check_request(req);
	if (req->body_follows) {
		stream_body(req, act);
		return;
	}
	if (act == ACT_LATER) {
		hold(req, act, false);
		return;
	}
	if (!act_start(req, act))
		hold(req, act, true);
}

static char *
error_body(int status, const char *message, const char **content_type)
{
	*content_type = status == 431 ? NULL : "application/json";
	return xasprintf("{\"code\":%d,\"message\":\"%s\"}", status, message);
}

/* ---- client side and the response oracle ---------------------------------- */

static int
resp_on_headers_complete(http_parser *p)
{
	struct client *c = p->data;

	if (p->status_code / 100 == 1 || F.heads_lost)
		return 0;
	if (c != &F.cl[0] || c->heads_seen >= F.nheads) {
		/* an answer the server gave by itself; nothing may follow it */
		if (c->error_seen)
			abort();
		c->error_seen = true;
		return 0;
	}
	return F.heads[c->heads_seen++] ? 1 : 0;	/* 1: no body (HEAD) */
}

static const http_parser_settings resp_settings = {
	.on_headers_complete = resp_on_headers_complete,
};

static void
client_read(struct client *c)
{
	char buf[65536];
	ssize_t n = -1;
	size_t done;

	while (!c->eof && (n = recv(c->fd, buf, sizeof(buf), 0)) != 0) {
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				c->eof = true;	/* reset by the server */
			if (errno != EINTR)
				return;
			continue;
		}
		if (debug)
			fprintf(stderr, "fuzz_http: recv %zd [%.*s]\n", n, (int)n, buf);
		done = http_parser_execute(&c->parser, &resp_settings, buf, (size_t)n);
		if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || done != (size_t)n) {
			fprintf(stderr, "fuzz_http: server sent an invalid response: %s\n",
			    http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
			abort();
		}
	}
	if (n == 0)
		c->eof = true;
}

static int
client_open(struct client *c, bool small_window)
{
	struct sockaddr_in sin;
	int one = 1, tries, rcvbuf = 4096;

	memset(c, 0, sizeof(*c));
	http_parser_init(&c->parser, HTTP_RESPONSE);
	c->parser.data = c;
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	/* With small socket buffers on both sides the server's writes queue
	 * (uv_write, on_write, drain) instead of all going through
	 * uv_try_write. */
	if (small_window)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Loopback: a blocking connect completes against the backlog at once;
	 * EADDRNOTAVAIL (no ephemeral port free) passes after a moment. */
	for (tries = 0; connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0; tries++) {
		if (tries == 20 || (errno != EADDRNOTAVAIL && errno != EAGAIN &&
		    errno != EINTR)) {
			int e = errno;
			close(c->fd);
			c->fd = -1;
			errno = e;
			return -1;
		}
		usleep(1000);
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

/* Closes with a reset (SO_LINGER 0): no TIME_WAIT left per input. */
static void
client_close(struct client *c)
{
	struct linger lg = { 1, 0 };

	if (c->fd < 0)
		return;
	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c->fd);
	c->fd = -1;
}

/* Sends all of p unless the server stops reading for good. */
static void
client_send(struct client *c, const uint8_t *p, size_t n, bool read_too)
{
	unsigned stuck = 0;
	ssize_t w;

	while (n > 0 && stuck < 50) {
		w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			stuck = 0;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return;		/* the server is gone */
		stuck++;
		uv_run(&F.loop, UV_RUN_NOWAIT);
		client_read(c);
	}
	uv_run(&F.loop, UV_RUN_NOWAIT);
	if (read_too)
		client_read(c);
}

/* ---- one input ------------------------------------------------------------ */

/* uv_walk callback: a small send buffer on the server's sockets, so that
 * its responses outgrow what the kernel takes at once. */
static void
shrink_sndbuf(uv_handle_t *h, void *arg)
{
	int size = 4096;

	(void)arg;
	if (h->type == UV_TCP && !uv_is_closing(h))
		uv_send_buffer_size(h, &size);
}

static uint32_t
next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
config_from(uint8_t ctl, uint8_t mode, struct http_config *cfg)
{
	static const size_t hdr[4] = { 8192, 512, 96, 4096 };
	static const size_t body[4] = { 65536, 128, 8, 1024 };

	memset(cfg, 0, sizeof(*cfg));
	cfg->max_header_bytes = hdr[(mode >> 3) & 3];
	cfg->max_body_bytes = body[(mode >> 3) & 3];
	cfg->header_timeout_ms = (ctl >> 4 & 7) == 1 ? 1 : 60000;
	cfg->idle_timeout_ms = (ctl >> 4 & 7) == 2 ? 1 : 60000;
	cfg->max_connections = mode & 0x40 ? 1 : 16;
	cfg->handler = handler;
	cfg->error_body = mode & 0x80 ? error_body : NULL;
	cfg->stream_body = (ctl & 0x80) && !no_stream_body;
}

static int
server_start(const struct http_config *cfg)
{
	int r = http_server_start(&F.loop, "127.0.0.1", port, cfg, &F.srv);

	if (r == -EADDRINUSE && port != 0) {
		port = 0;
		r = http_server_start(&F.loop, "127.0.0.1", 0, cfg, &F.srv);
	}
	if (r == 0)
		port = http_server_port(F.srv);
	return r;
}

static void
on_guard(uv_timer_t *t)
{
	(void)t;
}

/* Runs the loop until the server closed the connection or nothing moves. */
static void
settle(bool timed)
{
	unsigned i, quiet = 0;

	if (timed)	/* the 1 ms request timeouts fire; nothing blocks long */
		uv_timer_start(&F.guard, on_guard, 1, 1);
	for (i = 0; i < SETTLE_ITERS && quiet < 3; i++) {
		unsigned long before = F.cl[0].parser.nread + F.seq;
		uv_run(&F.loop, timed ? UV_RUN_ONCE : UV_RUN_NOWAIT);
		for (unsigned k = 0; k < F.ncl; k++)
			client_read(&F.cl[k]);
		if (F.cl[0].eof)
			break;
		quiet = F.h.req == NULL &&
		    before == F.cl[0].parser.nread + F.seq ? quiet + 1 : 0;
	}
}

static void
teardown(void)
{
	unsigned i;

	uv_close((uv_handle_t *)&F.guard, NULL);
	for (i = 0; i < F.ncl; i++)
		client_close(&F.cl[i]);
	http_server_stop(F.srv);
	/* A held request is aborted now; the callbacks finish it, or we do. */
	for (i = 0; i < 100 && F.h.req != NULL; i++)
		uv_run(&F.loop, UV_RUN_NOWAIT);
	if (F.h.req != NULL)
		held_finish();
	uv_close((uv_handle_t *)&F.timer, NULL);
	uv_run(&F.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&F.loop) != 0) {
		fprintf(stderr, "fuzz_http: a handle is left open after http_server_stop\n");
		abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *e = getenv("FUZZ_HTTP_STREAM_BODY");

	debug = getenv("FUZZ_HTTP_DEBUG") != NULL;
	no_stream_body = e != NULL && strcmp(e, "0") == 0;
	log_set_level(LOG_OFF);
	memset(big, 'x', sizeof(big));
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t ctl, mode;
	uint32_t rnd;
	size_t off, cut, nwrites, i;

	if (size < 2)
		return 0;
	ctl = data[0];
	mode = data[1];
	data += 2;
	size -= 2;
	memset(&F, 0, sizeof(F));
	F.mode = mode & 7;
	config_from(ctl, mode, &F.cfg);
	if (uv_loop_init(&F.loop) != 0)
		abort();
	uv_timer_init(&F.loop, &F.timer);
	uv_timer_init(&F.loop, &F.guard);
	if (server_start(&F.cfg) != 0)
		abort();
	F.ncl = mode & 0x40 ? 2 : 1;
	for (i = 0; i < F.ncl; i++)
		if (client_open(&F.cl[i], ctl & 0x08) < 0) {
			/* the machine, not http.c (ports): skip this input */
			fprintf(stderr, "fuzz_http: connect: %s; input skipped\n",
			    strerror(errno));
			F.ncl = (unsigned)i;
			teardown();
			return 0;
		}
	uv_run(&F.loop, UV_RUN_NOWAIT);	/* accept */
	if (ctl & 0x08)
		uv_walk(&F.loop, shrink_sndbuf, NULL);

	/* 1 to 8 writes at pseudo-random cuts chosen by byte 0 */
	nwrites = 1 + (ctl & 7);
	rnd = 0x9e3779b9u ^ ((uint32_t)ctl << 8) ^ (uint32_t)size;
	for (off = 0, i = 0; i < nwrites && off < size; i++) {
		cut = i + 1 == nwrites ? size - off : next_rand(&rnd) % (size - off + 1);
		client_send(&F.cl[0], data + off, cut, !(ctl & 0x08));
		off += cut;
	}
	if (mode & 0x20)
		shutdown(F.cl[0].fd, SHUT_WR);
	settle((ctl >> 4 & 7) == 1 || (ctl >> 4 & 7) == 2);
	teardown();
	return 0;
}
