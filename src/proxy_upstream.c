/* proxy_upstream.c — the proxy's HTTP/1.1 client: one request's way from
 * the downstream connection (http.c) to an endpoint and back. Owns the
 * per-endpoint keep-alive pools (bounded, idle timeout, closed when the
 * endpoint leaves), endpoint choice with retries (failed connects; a reused
 * connection that died before any response byte), timeouts, the forwarded
 * request head (hop-by-hop headers out, X-Forwarded-*, X-Request-Id,
 * traceparent, header filters), body streaming both ways with
 * backpressure, WebSocket upgrades handed to the splice (proxy_tcp.c), and
 * per-request metrics. Called by proxy_engine.c.
 *
 * Retry rule: a request is tried again when its connection could not be
 * made (on another endpoint: nothing was sent), when writing its head to a
 * pooled connection failed at once (nothing was sent), or when a pooled
 * connection closed or reset before any response byte and the request is
 * idempotent (GET HEAD OPTIONS TRACE PUT DELETE) with no body byte
 * forwarded yet: the keep-alive race, where the endpoint closed an idle
 * connection just as the request went out (retried on a new connection).
 * A POST on such a connection gets 502: the endpoint may have acted on it.
 * At most PX_MAX_ATTEMPTS tries in all, within the route's request timeout.
 *
 * Memory: request objects come from a short free list and keep their
 * (small) buffers; a pooled connection gives its read buffer back (to a
 * spare list of a few, then to malloc), so idle upstream connections and
 * a burst of past requests cost ~1 KB each, not 16 KB; headers are copied from the request head into one buffer and sent with
 * one write; response bytes go from the upstream read buffer to the client
 * with writev, copied only when the kernel does not take them at once.
 * A response head in http_head.c's strict subset (one Content-Length, no
 * Transfer-Encoding or Upgrade) is read in one pass and its body forwarded
 * by count; http_parser reads the rest (chunked, close-delimited, 1xx). */
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http_head.h"
#include "log.h"
#include "net.h"
#include "proxy_trace.h"
#include "proxy_upstream.h"

#define UC_RBUF_INIT	(16 * 1024)
#define UC_RBUF_MAX	(64 * 1024)	/* response head limit */
#define PX_POOL_MAX	128		/* idle connections per endpoint */
#define PX_FREE_REQS	64		/* request objects kept for reuse */
#define PX_REQ_BUF_KEEP	4096		/* their head buffers past this are freed */
#define PX_IDLE_DEF_MS	60000

enum uc_state { UC_CONNECTING, UC_IDLE, UC_BUSY, UC_CLOSED };
enum uc_timeout { UT_NONE, UT_CONNECT, UT_RESPONSE, UT_IDLE };

struct px_uconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t creq;
	http_parser parser;
	struct proxy_engine *e;
	struct px_endpoint *ep;
	struct px_req *req;		/* NULL while pooled */
	struct px_uconn *next, *prev;	/* ep's idle list */
	char *rbuf;
	size_t rlen, rcap, parsed, head_end;
	uint64_t body_left;		/* fast: body bytes still to forward */
	struct http_head fh;		/* fast: what the head says */
	uint32_t reason, reason_len;
	struct http_span *spans;
	size_t nspans, spans_cap;
	enum uc_state state;
	enum uc_timeout tkind;
	uint64_t deadline, armed;
	unsigned writes;
	int handles;
	unsigned idle_ms;
	bool value_last;
	bool reused;			/* served a request before this one */
	bool got_bytes;			/* a response byte arrived for this request */
	bool head_ready;		/* on_headers_complete ran */
	bool msg_done;
	bool fast;			/* head read by http_head_parse: body by count */
	bool head_done;			/* the response head went downstream */
	bool reading;
	bool bp_stopped;		/* not reading: the client's queue is long */
};

struct px_req {
	struct proxy_engine *e;
	struct px_listener *l;
	struct px_table *t;
	struct px_route *route;
	struct px_cluster *cluster;
	struct px_endpoint *ep;		/* this attempt's; a ref and an active count */
	struct px_endpoint *sticky;
	struct px_uconn *uc;
	struct px_stat *stat;
	struct http_req *dreq;
	struct buf head;		/* the upstream request head */
	struct buf rhead;		/* the downstream response head */
	uint64_t t0;			/* uv_hrtime() at the start */
	uint64_t deadline;		/* uv_now() ms; 0: none */
	struct px_endpoint *tried[PX_MAX_ATTEMPTS];	/* could not connect */
	size_t ntried;
	unsigned attempts;
	int status;
	bool fresh;			/* retry of the keep-alive race: new connection */
	bool idempotent;
	bool is_head;
	bool has_body;			/* the body streams from the client */
	bool body_sent;			/* a body byte went upstream */
	bool body_done;
	bool body_bp;			/* body paused: upstream queue long */
	bool resp_started;		/* response bytes went to the client */
	bool ds_keep_alive;
	bool dechunk;			/* HTTP/1.0 client, chunked response */
	bool upgrade;
	struct px_tspan ts;		/* tracing (proxy_trace.c); ts.on when traced */
	struct px_req *next_free;
};

static void uc_close(struct px_uconn *uc);
static void uc_error(struct px_uconn *uc, enum px_err kind, bool connecting, bool unsent);
static void uc_sync_reading(struct px_uconn *uc);
static void req_attempt(struct px_req *pr);
static void req_finish(struct px_req *pr, int status, const char *msg, bool keep_alive);
static const http_parser_settings uc_settings;

/* ---- small helpers ------------------------------------------------------ */

static bool
method_idempotent(const char *m)
{
	static const char *const tab[] = { "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE" };

	for (size_t i = 0; i < ARRAY_SIZE(tab); i++)
		if (strcmp(m, tab[i]) == 0)
			return true;
	return false;
}

static void
put_hex(char *out, uint64_t v, int digits)
{
	for (int i = digits - 1; i >= 0; i--, v >>= 4)
		out[i] = "0123456789abcdef"[v & 15];
}

/* W3C trace context: keep the trace (and flags) of a valid traceparent,
 * with a new parent span for this hop; start a trace when there is none. */
static void
put_traceparent(struct proxy_engine *e, struct buf *b, const char *in)
{
	struct w3c_parent tp;
	char line[13 + 55 + 2] = "traceparent: ";

	if (w3c_parent_parse(in, &tp) < 0) {
		tp.trace_hi = px_random(e) | 1;
		tp.trace_lo = px_random(e);
		tp.flags = 1;
	}
	tp.parent_id = px_random(e) | 1;
	w3c_parent_format(line + 13, &tp);
	memcpy(line + 13 + 55, "\r\n", 2);
	buf_append(b, line, sizeof(line));
}

/* "X-Request-Id: " and a random (version 4) UUID: one append. */
static void
put_request_id(struct proxy_engine *e, struct buf *b)
{
	static const char pre[] = "X-Request-Id: ";
	uint64_t hi = px_random(e), lo = px_random(e);
	char line[sizeof(pre) - 1 + 36 + 2], *u = line + sizeof(pre) - 1;

	hi = (hi & ~0xf000ULL) | 0x4000ULL;			/* version 4 */
	lo = (lo & ~(3ULL << 62)) | (2ULL << 62);		/* variant */
	memcpy(line, pre, sizeof(pre) - 1);
	put_hex(u, hi >> 32, 8);
	u[8] = '-';
	put_hex(u + 9, (hi >> 16) & 0xffff, 4);
	u[13] = '-';
	put_hex(u + 14, hi & 0xffff, 4);
	u[18] = '-';
	put_hex(u + 19, lo >> 48, 4);
	u[23] = '-';
	put_hex(u + 24, lo & 0xffffffffffffULL, 12);
	memcpy(u + 36, "\r\n", 2);
	buf_append(b, line, sizeof(line));
}

/* Header classes for forwarding, by name. */
enum { H_PASS, H_DROP, H_XFF, H_XFP, H_RID, H_TRACE, H_TSTATE, H_HOST, H_CONN };

/* The class of header n (nl bytes): the length and first letter pick the
 * one name it can be, compared once (a request head is rebuilt per
 * request: this runs for every header of every request). */
static int
hdr_class(const char *n, size_t nl)
{
	static const struct { const char *name; int cls; } tab[] = {
		{ "connection", H_CONN }, { "keep-alive", H_DROP },
		{ "proxy-connection", H_DROP }, { "te", H_DROP }, { "trailer", H_DROP },
		{ "upgrade", H_DROP }, { "transfer-encoding", H_DROP }, { "expect", H_DROP },
		{ "x-forwarded-for", H_XFF }, { "x-forwarded-proto", H_XFP },
		{ "x-request-id", H_RID }, { "traceparent", H_TRACE }, { "host", H_HOST },
		{ "tracestate", H_TSTATE },
	};
	char c = (char)(n[0] | 0x20);

	for (size_t i = 0; i < ARRAY_SIZE(tab); i++)
		if (tab[i].name[0] == c && strlen(tab[i].name) == nl &&
		    strcasecmp(n, tab[i].name) == 0)
			return tab[i].cls;
	return H_PASS;
}

/* True when the comma-separated list names tok (case-insensitive). */
static bool
list_has(const char *list, const char *tok)
{
	size_t n = strlen(tok);
	const char *p = list;

	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (strncasecmp(p, tok, n) == 0 &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

/* Connection: tokens other than the usual ones name more hop-by-hop
 * headers. */
static bool
conn_lists_others(const char *v)
{
	char tok[64];
	const char *p = v;
	size_t n;

	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		n = strcspn(p, ", \t");
		if (n == 0)
			break;
		snprintf(tok, sizeof(tok), "%.*s", (int)(n < 63 ? n : 63), p);
		if (strcasecmp(tok, "close") != 0 && strcasecmp(tok, "keep-alive") != 0 &&
		    strcasecmp(tok, "upgrade") != 0)
			return true;
		p += n;
	}
	return false;
}

static bool
name_in(char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(names[i], name) == 0)
			return true;
	return false;
}

static bool
set_has(const struct px_route *r, const char *name)
{
	for (size_t i = 0; i < r->nset; i++)
		if (strcasecmp(r->hset[i].name, name) == 0)
			return true;
	return false;
}

/* "name: value\r\n", composed on the stack when short: one append. */
static void
put_line(struct buf *b, const char *name, size_t nl, const char *value, size_t vl)
{
	char line[512];

	if (nl + vl + 4 > sizeof(line)) {
		buf_append(b, name, nl);
		buf_append(b, ": ", 2);
		buf_append(b, value, vl);
		buf_append(b, "\r\n", 2);
		return;
	}
	memcpy(line, name, nl);
	memcpy(line + nl, ": ", 2);
	memcpy(line + nl + 2, value, vl);
	memcpy(line + nl + 2 + vl, "\r\n", 2);
	buf_append(b, line, nl + vl + 4);
}

static void
put_hdr(struct buf *b, const char *name, const char *value)
{
	put_line(b, name, strlen(name), value, strlen(value));
}

/* The client's address without the port. */
static void
put_client_ip(struct buf *b, const char *remote)
{
	const char *end = strrchr(remote, ':');

	if (remote[0] == '[') {
		end = strchr(remote, ']');
		remote++;
	}
	buf_append(b, remote, end ? (size_t)(end - remote) : strlen(remote));
}

/* Builds the request head for the upstream into pr->head. */
static void
build_request_head(struct px_req *pr)
{
	const struct http_req *q = pr->dreq;
	const struct px_route *r = pr->route;
	struct buf *b = &pr->head;
	const char *xff = NULL, *trace = NULL, *conn = NULL, *upgrade = NULL;
	bool rid = false, xfp = false, host = false, others = false, filt;
	size_t i;

	char *target = px_filter_target(r, q->target);	/* URLRewrite */
	const char *new_host = px_filter_host(r);

	buf_reset(b);
	buf_puts(b, q->method);
	buf_putc(b, ' ');
	buf_puts(b, target ? target : q->target);
	buf_puts(b, " HTTP/1.1\r\n");
	free(target);
	filt = r->nremove || r->nset;
	for (i = 0; i < q->nheaders; i++)
		if ((q->headers[i].name[0] | 0x20) == 'c' &&
		    strcasecmp(q->headers[i].name, "connection") == 0) {
			conn = q->headers[i].value;
			others = conn_lists_others(conn);
		}
	for (i = 0; i < q->nheaders; i++) {
		const char *n = q->headers[i].name, *v = q->headers[i].value;
		size_t nl = strlen(n);

		switch (hdr_class(n, nl)) {
		case H_DROP:
			if (pr->upgrade && strcasecmp(n, "upgrade") == 0)
				upgrade = v;
			continue;
		case H_CONN:
			continue;
		case H_XFF:
			xff = v;
			continue;
		case H_TRACE:
			trace = v;
			continue;
		case H_TSTATE:
			if (pr->ts.on && pr->ts.trace_state == NULL)
				continue;	/* a new trace: not the state of another */
			break;
		case H_XFP:
			xfp = true;
			break;
		case H_RID:
			rid = true;
			break;
		case H_HOST:
			if (new_host)
				continue;	/* URLRewrite's hostname below */
			host = true;
			break;
		default:
			break;
		}
		if (others && list_has(conn, n))
			continue;
		if (filt && (name_in(r->hremove, r->nremove, n) || set_has(r, n)))
			continue;
		put_line(b, n, nl, v, strlen(v));
	}
	for (i = 0; i < r->nset; i++)
		put_hdr(b, r->hset[i].name, r->hset[i].value);
	for (i = 0; i < r->nadd; i++)
		put_hdr(b, r->hadd[i].name, r->hadd[i].value);
	if (!host)
		put_hdr(b, "Host", new_host ? new_host : pr->ep->key);
	buf_puts(b, "X-Forwarded-For: ");
	if (xff && *xff) {
		buf_puts(b, xff);
		buf_puts(b, ", ");
	}
	put_client_ip(b, q->remote_addr);
	buf_puts(b, "\r\n");
	if (!xfp)
		buf_puts(b, "X-Forwarded-Proto: http\r\n");
	if (!rid)
		put_request_id(pr->e, b);
	if (pr->ts.on)
		px_trace_put_header(b, &pr->ts);
	else
		put_traceparent(pr->e, b, trace);
	if (q->chunked)
		buf_puts(b, "Transfer-Encoding: chunked\r\n");
	if (pr->upgrade && upgrade) {
		put_hdr(b, "Upgrade", upgrade);
		buf_puts(b, "Connection: upgrade\r\n");
	}
	buf_puts(b, "\r\n");
}

/* ---- upstream connections ---------------------------------------------- */

static void
on_uc_closed(uv_handle_t *h)
{
	struct px_uconn *uc = h->data;

	if (--uc->handles > 0)
		return;
	px_endpoint_unref(uc->e, uc->ep);
	free(uc->rbuf);
	free(uc->spans);
	free(uc);
}

static void
pool_unlink(struct px_uconn *uc)
{
	struct px_endpoint *ep = uc->ep;

	if (uc->prev)
		uc->prev->next = uc->next;
	else
		ep->idle = uc->next;
	if (uc->next)
		uc->next->prev = uc->prev;
	uc->next = uc->prev = NULL;
	ep->nidle--;
}

static void
uc_close(struct px_uconn *uc)
{
	if (uc->state == UC_CLOSED)
		return;
	if (uc->state == UC_IDLE)
		pool_unlink(uc);
	uc->state = UC_CLOSED;
	if (uc->req) {
		uc->req->uc = NULL;
		uc->req = NULL;
	}
	uv_close((uv_handle_t *)&uc->tcp, on_uc_closed);
	uv_close((uv_handle_t *)&uc->timer, on_uc_closed);
}

void
px_pool_close_idle(struct px_endpoint *ep)
{
	while (ep->idle)
		uc_close(ep->idle);
}

static void
on_uc_timer(uv_timer_t *t)
{
	struct px_uconn *uc = t->data;
	uint64_t now = uv_now(t->loop);

	if (uc->tkind == UT_NONE || uc->state == UC_CLOSED)
		return;
	if (now < uc->deadline) {
		uc->armed = uc->deadline;
		uv_timer_start(t, on_uc_timer, uc->deadline - now, 0);
		return;
	}
	switch (uc->tkind) {
	case UT_CONNECT:
		uc_error(uc, PX_E_TIMEOUT, true, true);
		break;
	case UT_RESPONSE:
		uc_error(uc, PX_E_TIMEOUT, false, false);
		break;
	default:
		uc_close(uc);
		break;
	}
}

/* Arms the timer lazily: only an earlier deadline touches the timer heap;
 * a timer firing early re-arms itself. deadline 0: none. */
static void
uc_set_timeout(struct px_uconn *uc, enum uc_timeout kind, uint64_t deadline)
{
	uc->tkind = deadline ? kind : UT_NONE;
	if (deadline == 0)
		return;
	uc->deadline = deadline;
	if (!uv_is_active((uv_handle_t *)&uc->timer) || uc->armed > deadline) {
		uint64_t now = uv_now(uc->timer.loop);
		uc->armed = deadline;
		uv_timer_start(&uc->timer, on_uc_timer, deadline > now ? deadline - now : 0, 0);
	}
}

static void
on_uc_write(uv_write_t *wr, int status)
{
	struct net_write *w = (struct net_write *)wr;
	struct px_uconn *uc = w->owner;
	struct px_req *pr;

	free(w);
	uc->writes--;
	if (uc->state == UC_CLOSED)
		return;
	if (status < 0) {
		uc_error(uc, PX_E_RESET, false, false);
		return;
	}
	pr = uc->req;
	if (uc->writes == 0 && pr && pr->body_bp) {
		pr->body_bp = false;
		http_req_body_pause(pr->dreq, false);
	}
}

/* Sends bufs after anything queued; copies what the kernel did not take.
 * Returns bytes sent at once (>= 0) or a negative errno. */
static int
uc_send(struct px_uconn *uc, const uv_buf_t *bufs, unsigned n)
{
	return net_send((uv_stream_t *)&uc->tcp, bufs, n, &uc->writes, on_uc_write, uc, 0);
}

static void
uc_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct px_uconn *uc = h->data;

	(void)suggested;
	if (uc->rbuf == NULL) {
		struct proxy_engine *e = uc->e;
		uc->rcap = UC_RBUF_INIT;
		uc->rbuf = e->nspare_rbufs ? e->spare_rbufs[--e->nspare_rbufs]
		    : xmalloc(uc->rcap);
	} else if (uc->rcap - uc->rlen < 1024 && uc->rcap < UC_RBUF_MAX) {
		uc->rcap *= 2;
		uc->rbuf = xrealloc(uc->rbuf, uc->rcap);
	}
	*b = uv_buf_init(uc->rbuf + uc->rlen, (unsigned)(uc->rcap - uc->rlen));
}

static void uc_parse(struct px_uconn *uc);
static void resp_done(struct px_req *pr, struct px_uconn *uc);

static void
uc_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct px_uconn *uc = s->data;

	(void)b;
	if (n == 0 || uc->state == UC_CLOSED)
		return;
	if (uc->state != UC_BUSY) {
		uc_close(uc);	/* pooled: the endpoint closed it or spoke out of turn */
		return;
	}
	if (n == UV_ENOBUFS) {
		uc_error(uc, PX_E_RESET, false, false);	/* head too large */
		return;
	}
	if (n < 0) {
		if (n == UV_EOF && uc->head_done && !uc->fast) {
			/* a response delimited by the close */
			http_parser_execute(&uc->parser, &uc_settings, NULL, 0);
			if (uc->msg_done) {
				resp_done(uc->req, uc);
				return;
			}
		}
		uc_error(uc, PX_E_RESET, false, false);
		return;
	}
	uc->got_bytes = true;
	uc->rlen += (size_t)n;
	uc_parse(uc);
}

static void
uc_sync_reading(struct px_uconn *uc)
{
	bool want = uc->state == UC_IDLE || (uc->state == UC_BUSY && !uc->bp_stopped);

	if (want == uc->reading)
		return;
	uc->reading = want;
	if (!want)
		uv_read_stop((uv_stream_t *)&uc->tcp);
	else if (uv_read_start((uv_stream_t *)&uc->tcp, uc_on_alloc, uc_on_read) < 0)
		uc_error(uc, PX_E_RESET, false, false);
}

static void
uc_reset_exchange(struct px_uconn *uc)
{
	http_parser_init(&uc->parser, HTTP_RESPONSE);
	uc->parser.data = uc;
	uc->rlen = uc->parsed = uc->head_end = 0;
	uc->nspans = 0;
	uc->value_last = uc->got_bytes = uc->head_ready = uc->msg_done = false;
	uc->head_done = uc->bp_stopped = uc->fast = false;
	uc->body_left = 0;
	uc->reason = uc->reason_len = 0;
}

/* An idle connection needs no read buffer until bytes arrive: a buffer of
 * the first size goes to the engine's short spare list, others to malloc. */
static void
uc_release_rbuf(struct px_uconn *uc)
{
	struct proxy_engine *e = uc->e;

	if (uc->rbuf == NULL)
		return;
	if (uc->rcap == UC_RBUF_INIT && e->nspare_rbufs < ARRAY_SIZE(e->spare_rbufs))
		e->spare_rbufs[e->nspare_rbufs++] = uc->rbuf;
	else
		free(uc->rbuf);
	uc->rbuf = NULL;
	uc->rcap = 0;
}

static void
pool_put(struct px_uconn *uc)
{
	struct px_endpoint *ep = uc->ep;

	uc->req = NULL;
	uc->state = UC_IDLE;
	uc->reused = true;
	uc_reset_exchange(uc);
	uc_release_rbuf(uc);
	uc->next = ep->idle;
	uc->prev = NULL;
	if (ep->idle)
		ep->idle->prev = uc;
	ep->idle = uc;
	ep->nidle++;
	uc_set_timeout(uc, UT_IDLE, uv_now(uc->e->loop) + uc->idle_ms);
	uc_sync_reading(uc);
}

static struct px_uconn *
pool_get(struct px_endpoint *ep)
{
	struct px_uconn *uc = ep->idle;

	if (uc == NULL)
		return NULL;
	pool_unlink(uc);
	uc->state = UC_BUSY;
	return uc;
}

static void send_head(struct px_req *pr);

static void
on_uc_connect(uv_connect_t *cr, int status)
{
	struct px_uconn *uc = cr->data;

	if (uc->state == UC_CLOSED)
		return;
	if (status < 0) {
		uc_error(uc, PX_E_CONNECT, true, true);
		return;
	}
	uv_tcp_nodelay(&uc->tcp, 1);
	uc->state = UC_BUSY;
	uc->tkind = UT_NONE;
	uc_sync_reading(uc);
	if (uc->req)
		send_head(uc->req);
}

static struct px_uconn *
uc_connect(struct proxy_engine *e, struct px_endpoint *ep, const struct px_cluster *c)
{
	struct px_uconn *uc = xcalloc(1, sizeof(*uc));
	int r;

	uc->e = e;
	uc->ep = ep;
	ep->refs++;
	uc->tcp.data = uc->timer.data = uc->creq.data = uc;
	uc->idle_ms = c->idle_timeout_ms ? c->idle_timeout_ms : PX_IDLE_DEF_MS;
	uv_tcp_init(e->loop, &uc->tcp);
	uv_timer_init(e->loop, &uc->timer);
	uc->handles = 2;
	uc->state = UC_CONNECTING;
	uc_reset_exchange(uc);
	if ((r = uv_tcp_connect(&uc->creq, &uc->tcp, (struct sockaddr *)&ep->sa,
	    on_uc_connect)) < 0) {
		log_debug("proxy", "connect %s: %s", ep->key, uv_strerror(r));
		uc->tkind = UT_CONNECT;	/* fails from the loop, not from here */
		uc->deadline = uc->armed = uv_now(e->loop);
		uv_timer_start(&uc->timer, on_uc_timer, 0, 0);
		return uc;
	}
	uc_set_timeout(uc, UT_CONNECT, uv_now(e->loop) +
	    (c->connect_timeout_ms ? c->connect_timeout_ms : 1000));
	return uc;
}

/* ---- the request ------------------------------------------------------- */

static struct px_req *
req_alloc(struct proxy_engine *e)
{
	struct px_req *pr = e->free_reqs;
	struct buf head, rhead;

	if (pr == NULL)
		return xcalloc(1, sizeof(*pr));
	e->free_reqs = pr->next_free;
	e->nfree_reqs--;
	head = pr->head;
	rhead = pr->rhead;
	memset(pr, 0, sizeof(*pr));
	pr->head = head;
	pr->rhead = rhead;
	return pr;
}

void
px_upstream_free_cache(struct proxy_engine *e)
{
	struct px_req *pr;

	while ((pr = e->free_reqs) != NULL) {
		e->free_reqs = pr->next_free;
		buf_free(&pr->head);
		buf_free(&pr->rhead);
		free(pr);
	}
	e->nfree_reqs = 0;
	while (e->nspare_rbufs)
		free(e->spare_rbufs[--e->nspare_rbufs]);
}

/* Keeps pr for the next request, unless enough are kept already. */
static void
req_recycle(struct proxy_engine *e, struct px_req *pr)
{
	if (e->nfree_reqs >= PX_FREE_REQS) {
		buf_free(&pr->head);
		buf_free(&pr->rhead);
		free(pr);
		return;
	}
	if (pr->head.cap > PX_REQ_BUF_KEEP)
		buf_free(&pr->head);
	if (pr->rhead.cap > PX_REQ_BUF_KEEP)
		buf_free(&pr->rhead);
	pr->next_free = e->free_reqs;
	e->free_reqs = pr;
	e->nfree_reqs++;
}

/* Lets go of this attempt's endpoint. */
static void
req_drop_endpoint(struct px_req *pr)
{
	if (pr->ep == NULL)
		return;
	pr->ep->active--;
	px_endpoint_unref(pr->e, pr->ep);
	pr->ep = NULL;
}

static void
on_dabort(struct http_req *dreq, void *arg)
{
	struct px_req *pr = arg;

	(void)dreq;
	if (pr->uc)
		uc_close(pr->uc);
	req_finish(pr, 0, NULL, false);
}

static void
on_ddrain(struct http_req *dreq, void *arg)
{
	struct px_req *pr = arg;

	(void)dreq;
	if (pr->uc && pr->uc->bp_stopped) {
		pr->uc->bp_stopped = false;
		uc_sync_reading(pr->uc);
	}
}

static void
on_dbody(struct http_req *dreq, const char *data, size_t len, bool end, void *arg)
{
	struct px_req *pr = arg;
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	struct px_uconn *uc = pr->uc;

	if (end) {
		pr->body_done = true;
		return;
	}
	pr->body_sent = true;
	if (pr->stat)
		pr->stat->bytes_in += len;
	if (uc == NULL || uc->state != UC_BUSY)
		return;		/* the attempt failed; the answer is on its way */
	if (uc_send(uc, &b, 1) < 0) {
		uc_error(uc, PX_E_RESET, false, false);
		return;
	}
	if (uc->writes > 0 && uv_stream_get_write_queue_size((uv_stream_t *)&uc->tcp) >
	    PX_WQ_HIGH) {
		pr->body_bp = true;
		http_req_body_pause(dreq, true);
	}
}

static uint64_t
min_deadline(uint64_t a, uint64_t b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

static void
send_head(struct px_req *pr)
{
	struct px_uconn *uc = pr->uc;
	uv_buf_t b;
	uint64_t now = uv_now(pr->e->loop), backend = 0;
	int r;

	build_request_head(pr);
	b = uv_buf_init(pr->head.data, (unsigned)pr->head.len);
	if ((r = uc_send(uc, &b, 1)) < 0) {
		uc_error(uc, PX_E_RESET, false, r < 0);
		return;
	}
	if (pr->route->backend_timeout_ms)
		backend = now + pr->route->backend_timeout_ms;
	uc_set_timeout(uc, UT_RESPONSE, min_deadline(pr->deadline, backend));
	if (pr->has_body && !pr->body_bp)
		http_req_body_pause(pr->dreq, false);
}

static void
req_attempt(struct px_req *pr)
{
	struct proxy_engine *e = pr->e;
	uint64_t now = uv_now(e->loop);
	struct px_endpoint *ep = NULL;
	struct px_uconn *uc;

	if (pr->deadline && now >= pr->deadline) {
		req_finish(pr, 504, "upstream request timeout\n", true);
		return;
	}
	if (pr->sticky && pr->attempts == 0)
		ep = pr->sticky;
	else if (pr->attempts < PX_MAX_ATTEMPTS)
		ep = px_pick_endpoint(pr->cluster, pr->tried, pr->ntried, now);
	if (ep == NULL) {
		if (pr->attempts == 0)
			req_finish(pr, 503, "no healthy upstream\n", true);
		else
			req_finish(pr, 502, "upstream connect error\n", true);
		return;
	}
	pr->attempts++;
	pr->ep = ep;
	ep->refs++;
	ep->active++;
	pr->stat = px_route_stat(e, pr->route, pr->cluster, ep->revision);
	if (pr->ts.on)
		px_trace_attempt(e, &pr->ts, ep);
	if (!pr->fresh && (uc = pool_get(ep)) != NULL) {
		uc->req = pr;
		pr->uc = uc;
		send_head(pr);
		return;
	}
	uc = uc_connect(e, ep, pr->cluster);
	uc->req = pr;
	pr->uc = uc;
}

/* The attempt on uc failed: retry elsewhere when it is safe (see the top
 * of the file), else answer 502/504 or cut the response short. */
static void
uc_error(struct px_uconn *uc, enum px_err kind, bool connecting, bool unsent)
{
	struct px_req *pr = uc->req;
	bool reused = uc->reused, got = uc->got_bytes, retry;

	uc_close(uc);
	if (pr == NULL)
		return;
	if (pr->stat)
		pr->stat->errors[kind]++;
	if (connecting)
		px_outlier_report(pr->cluster, pr->ep, true, uv_now(pr->e->loop));
	retry = !pr->resp_started && !got && pr->attempts < PX_MAX_ATTEMPTS &&
	    (connecting || (unsent && !pr->body_sent) ||
	    (reused && kind == PX_E_RESET && pr->idempotent && !pr->body_sent));
	if (connecting && pr->ep && pr->ntried < PX_MAX_ATTEMPTS)
		pr->tried[pr->ntried++] = pr->ep;	/* another endpoint next */
	else
		pr->fresh = true;	/* the same one will do, on a new connection */
	if (LOG_DEBUG >= log_min_level) {
		struct px_trace_ids ids;
		struct log_ctx ctx = { .pod = pr->ep ? pr->ep->pod : NULL };
		if (pr->ts.client_open) {	/* the attempt's CLIENT span */
			px_trace_ids(&pr->ts, &ids);
			ctx.trace_id = ids.trace_id;
			ctx.span_id = ids.span_id;
		}
		log_debug_ctx("proxy", &ctx, "upstream %s: %s error%s", pr->ep ? pr->ep->key : "?",
		    kind == PX_E_TIMEOUT ? "timeout" : kind == PX_E_CONNECT ? "connect" : "reset",
		    retry ? ", retrying" : "");
	}
	if (pr->ts.client_open) {
		static const char *const err_type[PX_E_N] = { [PX_E_CONNECT] = "connect_error",
			[PX_E_RESET] = "connection_reset", [PX_E_TIMEOUT] = "timeout" };
		px_trace_client_end(pr->e, &pr->ts, pr->dreq, pr->cluster, pr->ep, pr->attempts, 0,
		    err_type[kind]);
	}
	req_drop_endpoint(pr);
	if (retry)
		req_attempt(pr);
	else if (pr->resp_started)
		req_finish(pr, 0, NULL, false);
	else if (kind == PX_E_TIMEOUT && !connecting)
		req_finish(pr, 504, "upstream request timeout\n", true);
	else
		req_finish(pr, 502, kind == PX_E_RESET ? "upstream reset\n" :
		    "upstream connect error\n", true);
}

/* Ends pr: the response is complete (status 0, keep_alive: whether the
 * client connection goes on), or the proxy answers status with msg. The
 * last thing done is finishing the downstream request, which may dispatch
 * the client's next request at once. */
static void
req_finish(struct px_req *pr, int status, const char *msg, bool keep_alive)
{
	struct proxy_engine *e = pr->e;
	struct http_req *dreq = pr->dreq;
	struct px_listener *l = pr->l;
	struct px_stat *st = pr->stat;
	uint64_t ns = uv_hrtime() - pr->t0;

	if (pr->uc) {
		pr->uc->req = NULL;
		uc_close(pr->uc);
	}
	if (msg && st == NULL)
		st = pr->stat = px_route_stat(e, pr->route, pr->cluster, "");
	if (dreq && !http_req_aborted(dreq) && st)
		px_stat_request(st, msg ? status : pr->status, ns);
	if (dreq && !http_req_aborted(dreq) && pr->ep && !msg)
		px_stat_request(&pr->ep->pod_st, pr->status, ns);	/* the pod metrics */
	if (pr->ts.on) {
		px_trace_client_end(e, &pr->ts, dreq, pr->cluster, pr->ep, pr->attempts, 0, "aborted");
		px_trace_server_end(e, &pr->ts, dreq, pr->route, pr->cluster,
		    msg ? status : pr->status);
	}
	req_drop_endpoint(pr);
	px_table_unref(e, pr->t);
	req_recycle(e, pr);
	if (dreq) {
		http_req_on_abort(dreq, NULL, NULL);
		http_req_on_drain(dreq, NULL, NULL);
		http_req_body(dreq, NULL, NULL);
		if (msg) {
			if (!keep_alive)
				http_add_header(dreq, "Connection", "close");
			http_respond(dreq, status, "text/plain; charset=utf-8", msg, strlen(msg));
		} else
			http_raw_end(dreq, keep_alive);
	}
	px_listener_done(l);
}

/* ---- the response ------------------------------------------------------ */

static int
uc_on_status(http_parser *p, const char *at, size_t len)
{
	struct px_uconn *uc = p->data;

	if (uc->reason_len == 0)
		uc->reason = (uint32_t)(at - uc->rbuf);
	uc->reason_len += (uint32_t)len;
	return 0;
}

static int
uc_on_field(http_parser *p, const char *at, size_t len)
{
	struct px_uconn *uc = p->data;
	struct http_span *s;

	if (uc->head_ready)
		return 0;	/* trailers */
	if (uc->nspans == 0 || uc->value_last) {
		if (uc->nspans == uc->spans_cap) {
			uc->spans_cap = uc->spans_cap ? uc->spans_cap * 2 : 16;
			uc->spans = xrealloc(uc->spans, uc->spans_cap * sizeof(*uc->spans));
		}
		s = &uc->spans[uc->nspans++];
		s->name = (uint32_t)(at - uc->rbuf);
		s->name_len = 0;
		s->value = s->value_len = 0;
		uc->value_last = false;
	}
	uc->spans[uc->nspans - 1].name_len += (uint32_t)len;
	return 0;
}

static int
uc_on_value(http_parser *p, const char *at, size_t len)
{
	struct px_uconn *uc = p->data;
	struct http_span *s;

	if (uc->head_ready)
		return 0;
	s = &uc->spans[uc->nspans - 1];
	if (!uc->value_last) {
		s->value = (uint32_t)(at - uc->rbuf);
		s->value_len = 0;
		uc->value_last = true;
	}
	s->value_len = (uint32_t)(at + len - (uc->rbuf + s->value));
	return 0;
}

static int
uc_on_headers_complete(http_parser *p)
{
	struct px_uconn *uc = p->data;

	uc->head_ready = true;
	http_parser_pause(p, 1);
	return uc->req && uc->req->is_head ? 1 : 0;
}

static void fwd_body(struct px_req *pr, const char *data, size_t len);

static int
uc_on_body(http_parser *p, const char *at, size_t len)
{
	struct px_uconn *uc = p->data;

	if (uc->req && uc->req->dechunk)
		fwd_body(uc->req, at, len);
	return 0;
}

static int
uc_on_message_complete(http_parser *p)
{
	struct px_uconn *uc = p->data;

	uc->msg_done = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings uc_settings = {
	.on_status = uc_on_status,
	.on_header_field = uc_on_field,
	.on_header_value = uc_on_value,
	.on_headers_complete = uc_on_headers_complete,
	.on_body = uc_on_body,
	.on_message_complete = uc_on_message_complete,
};

static bool
span_is(const struct px_uconn *uc, const struct http_span *s, const char *name)
{
	size_t n = strlen(name);

	return s->name_len == n && strncasecmp(uc->rbuf + s->name, name, n) == 0;
}

static bool
resp_hop_header(const struct px_uconn *uc, const struct http_span *s, bool upgrade)
{
	static const char *const tab[] = { "connection", "keep-alive", "proxy-connection",
	    "transfer-encoding", "te", "trailer" };
	char c = (char)(uc->rbuf[s->name] | 0x20);

	if (c != 'c' && c != 'k' && c != 'p' && c != 't' && c != 'u')
		return false;	/* most headers: one compare */
	for (size_t i = 0; i < ARRAY_SIZE(tab); i++)
		if (tab[i][0] == c && span_is(uc, s, tab[i]))
			return true;
	return !upgrade && span_is(uc, s, "upgrade");
}

static void
put_status_line(struct buf *b, const struct px_uconn *uc, int status)
{
	/* http_parser allows 3 digits only */
	char line[13] = { 'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ', (char)('0' + status / 100 % 10),
		(char)('0' + status / 10 % 10), (char)('0' + status % 10), ' ' };

	buf_append(b, line, sizeof(line));
	if (uc->reason_len)
		buf_append(b, uc->rbuf + uc->reason, uc->reason_len);
	else
		buf_puts(b, "Unknown");
	buf_puts(b, "\r\n");
}

/* The response head for the client, from the upstream's: hop-by-hop
 * headers out, our own framing and connection headers in. */
static void
build_response_head(struct px_req *pr, struct px_uconn *uc)
{
	const http_parser *p = &uc->parser;
	struct buf *b = &pr->rhead;
	int status = uc->fast ? uc->fh.status : p->status_code;
	bool chunked = !uc->fast && (p->flags & F_CHUNKED) != 0;
	bool upgrade = !uc->fast && status == 101 && p->upgrade;
	bool no_body = pr->is_head || status / 100 == 1 || status == 204 || status == 304;
	bool eof_body = !no_body && !chunked && !uc->fast && p->content_length == UINT64_MAX;
	size_t i;

	pr->status = status;
	pr->dechunk = chunked && pr->dreq->http10 && !pr->is_head;
	pr->ds_keep_alive = pr->dreq->keep_alive && !eof_body && !pr->dechunk && !upgrade &&
	    (!pr->has_body || pr->body_done);	/* an early answer ends the connection */
	buf_reset(b);
	put_status_line(b, uc, status);
	for (i = 0; i < uc->nspans; i++) {
		const struct http_span *s = &uc->spans[i];
		if (resp_hop_header(uc, s, upgrade))
			continue;
		put_line(b, uc->rbuf + s->name, s->name_len, uc->rbuf + s->value, s->value_len);
	}
	if (chunked && !pr->dechunk)
		buf_puts(b, "Transfer-Encoding: chunked\r\n");
	if (pr->route->sticky && pr->ep && pr->sticky != pr->ep) {
		buf_printf(b, "Set-Cookie: %s=%08x; Path=/; HttpOnly", pr->route->sticky,
		    pr->ep->sticky);
		if (pr->route->sticky_ttl_s)
			buf_printf(b, "; Max-Age=%llu", (unsigned long long)pr->route->sticky_ttl_s);
		buf_puts(b, "\r\n");
	}
	if (upgrade)
		buf_puts(b, "Connection: upgrade\r\n");
	else if (!pr->ds_keep_alive)
		buf_puts(b, "Connection: close\r\n");
	else if (pr->dreq->http10)
		buf_puts(b, "Connection: keep-alive\r\n");
	buf_puts(b, "\r\n");
}

static void
resp_backpressure(struct px_req *pr)
{
	struct px_uconn *uc = pr->uc;

	if (uc && http_stream_pending(pr->dreq) > PX_WQ_HIGH) {
		uc->bp_stopped = true;
		uc_sync_reading(uc);
	}
}

/* Sends body bytes to the client, after the response head when it has not
 * gone yet: one writev. */
static void
fwd_body(struct px_req *pr, const char *data, size_t len)
{
	uv_buf_t bufs[2];
	unsigned n = 0;

	if (!pr->resp_started) {
		bufs[n++] = uv_buf_init(pr->rhead.data, (unsigned)pr->rhead.len);
		pr->resp_started = true;
	}
	if (len)
		bufs[n++] = uv_buf_init((char *)data, (unsigned)len);
	if (n == 0)
		return;
	if (pr->stat)
		pr->stat->bytes_out += len;
	http_raw_write(pr->dreq, bufs, n);
	resp_backpressure(pr);
}

/* 101 Switching Protocols: both sockets leave HTTP for the splice. */
static void
resp_upgrade(struct px_req *pr, struct px_uconn *uc)
{
	uv_os_fd_t ufd;
	uv_os_sock_t dfd, ufd2;
	uv_buf_t to_client[2];
	char *rest = NULL;
	size_t nrest = 0;
	int r;

	if (uv_fileno((uv_handle_t *)&uc->tcp, &ufd) < 0 ||
	    (ufd2 = fcntl(ufd, F_DUPFD_CLOEXEC, 0)) < 0) {
		uc_error(uc, PX_E_RESET, false, false);
		return;
	}
	if (pr->ts.on) {
		px_trace_client_end(pr->e, &pr->ts, pr->dreq, pr->cluster, pr->ep, pr->attempts, 101,
		    NULL);
		px_trace_server_end(pr->e, &pr->ts, pr->dreq, pr->route, pr->cluster, 101);
	}
	if ((r = http_req_detach(pr->dreq, &dfd, &rest, &nrest)) < 0) {
		close(ufd2);
		uc_error(uc, PX_E_RESET, false, false);
		return;
	}
	to_client[0] = uv_buf_init(pr->rhead.data, (unsigned)pr->rhead.len);
	to_client[1] = uv_buf_init(uc->rbuf + uc->parsed, (unsigned)(uc->rlen - uc->parsed));
	px_outlier_report(pr->cluster, pr->ep, false, uv_now(pr->e->loop));
	px_splice_fds(pr->e, pr->l, pr->stat, dfd, ufd2, to_client, 2, rest, nrest);
	free(rest);
	if (pr->stat)
		px_stat_request(pr->stat, 101, uv_hrtime() - pr->t0);
	pr->dreq = NULL;	/* detached: finished by http.c */
	pr->resp_started = true;
	req_finish(pr, 0, NULL, false);
}

/* The whole response went to the client: pool the connection if it can
 * carry another request, then finish. */
static void
resp_done(struct px_req *pr, struct px_uconn *uc)
{
	bool keep = uc->fast ? uc->fh.keep_alive : http_should_keep_alive(&uc->parser) != 0;
	bool reuse = keep && uc->parsed == uc->rlen &&
	    (!pr->has_body || pr->body_done) && uc->writes == 0 && !uc->ep->removed &&
	    uc->ep->nidle < PX_POOL_MAX;

	if (!pr->resp_started)
		fwd_body(pr, NULL, 0);
	if (pr->ts.client_open)
		px_trace_client_end(pr->e, &pr->ts, pr->dreq, pr->cluster, pr->ep, pr->attempts,
		    pr->status, NULL);
	px_outlier_report(pr->cluster, pr->ep, pr->status >= 500, uv_now(pr->e->loop));
	uc->req = NULL;
	pr->uc = NULL;
	if (reuse)
		pool_put(uc);
	else
		uc_close(uc);
	req_finish(pr, 0, NULL, pr->ds_keep_alive);
}

/* A response head is complete: skip interim ones, switch protocols on 101,
 * else prepare the client's head. Returns false when pr is over. */
static bool
resp_head(struct px_req *pr, struct px_uconn *uc)
{
	int status = uc->parser.status_code;

	uc->head_end = uc->parsed + 1;	/* the parser stopped at the last LF */
	if (status == 101 && uc->parser.upgrade && pr->upgrade) {
		uc->parsed = uc->head_end;
		build_response_head(pr, uc);
		resp_upgrade(pr, uc);
		return false;
	}
	if (status / 100 == 1) {
		uc->head_ready = false;	/* interim (100, 103): not for the client */
		return true;
	}
	build_response_head(pr, uc);
	uc->head_done = true;
	return true;
}

/* Drops what an interim response left in the buffer. */
static void
uc_skip_interim(struct px_uconn *uc)
{
	memmove(uc->rbuf, uc->rbuf + uc->parsed, uc->rlen - uc->parsed);
	uc->rlen -= uc->parsed;
	uc->parsed = 0;
	uc->nspans = 0;
	uc->value_last = uc->msg_done = false;
	uc->reason = uc->reason_len = 0;
}

/* Fast path: forwards the body of a head read by http_head_parse, by its
 * Content-Length, without a parser over the bytes. */
static void
uc_fast_body(struct px_uconn *uc)
{
	struct px_req *pr = uc->req;
	size_t avail = uc->rlen - uc->parsed;
	size_t take = avail < uc->body_left ? avail : (size_t)uc->body_left;

	if (take || !pr->resp_started)
		fwd_body(pr, uc->rbuf + uc->parsed, take);
	uc->parsed += take;
	uc->body_left -= take;
	if (uc->state != UC_BUSY)
		return;
	if (uc->body_left == 0) {
		uc->msg_done = true;
		resp_done(pr, uc);	/* bytes past the body: not reused */
		return;
	}
	uc->rlen = uc->parsed = uc->head_end = 0;	/* all passed on */
}

/* A response head in http_head.c's strict subset (most are: a status with
 * a body, one Content-Length, no Transfer-Encoding or Upgrade) is read in
 * one pass. Returns false to leave the response to http_parser. */
static bool
uc_parse_fast(struct px_uconn *uc)
{
	struct px_req *pr = uc->req;
	long n;

	if (uc->spans_cap < 16) {
		uc->spans_cap = 16;
		uc->spans = xrealloc(uc->spans, uc->spans_cap * sizeof(*uc->spans));
	}
	n = http_head_parse(uc->rbuf, uc->rlen, true, &uc->fh, uc->spans, uc->spans_cap);
	if (n <= 0)
		return false;
	uc->fast = uc->head_ready = true;
	uc->nspans = uc->fh.nspans;
	uc->reason = uc->fh.start;
	uc->reason_len = uc->fh.start_len;
	uc->parsed = uc->head_end = (size_t)n;
	uc->body_left = pr->is_head ? 0 : (uint64_t)uc->fh.clen;
	build_response_head(pr, uc);
	uc->head_done = true;
	uc_fast_body(uc);
	return true;
}

static void
uc_parse(struct px_uconn *uc)
{
	struct px_req *pr = uc->req;
	enum http_errno err;
	size_t before, n, from;

	if (uc->fast) {
		uc_fast_body(uc);
		return;
	}
	if (uc->parsed == 0 && !uc->head_ready && uc->state == UC_BUSY && uc_parse_fast(uc))
		return;
	while (uc->state == UC_BUSY && uc->parsed < uc->rlen) {
		before = uc->parsed;
		n = http_parser_execute(&uc->parser, &uc_settings, uc->rbuf + uc->parsed,
		    uc->rlen - uc->parsed);
		uc->parsed += n;
		err = HTTP_PARSER_ERRNO(&uc->parser);
		if (uc->head_done && !pr->dechunk) {
			from = before > uc->head_end ? before : uc->head_end;
			if (uc->parsed > from)
				fwd_body(pr, uc->rbuf + from, uc->parsed - from);
		}
		if (uc->state != UC_BUSY)
			return;
		if (err == HPE_PAUSED) {
			http_parser_pause(&uc->parser, 0);
			if (uc->msg_done && uc->head_done) {
				resp_done(pr, uc);
				return;
			}
			if (uc->msg_done) {
				uc_skip_interim(uc);
				continue;
			}
			if (uc->head_ready && !uc->head_done && !resp_head(pr, uc))
				return;
		} else if (err != HPE_OK) {
			uc_error(uc, PX_E_RESET, false, false);
			return;
		}
	}
	if (uc->state != UC_BUSY)
		return;
	if (uc->head_done) {
		if (!pr->resp_started)
			fwd_body(pr, NULL, 0);
		uc->rlen = uc->parsed = uc->head_end = 0;	/* all passed on */
	} else if (uc->rlen == uc->rcap)
		uc_error(uc, PX_E_RESET, false, false);	/* head too large */
}

/* ---- entry points ------------------------------------------------------- */

void
px_answer_local(struct proxy_engine *e, struct px_stat *st, struct http_req *req,
    int status, const char *msg)
{
	(void)e;
	if (st)
		px_stat_request(st, status, 0);
	http_respond(req, status, "text/plain; charset=utf-8", msg, strlen(msg));
}

void
px_forward(struct proxy_engine *e, struct px_listener *l, struct px_table *t,
    struct px_route *route, struct http_req *req)
{
	struct px_req *pr = req_alloc(e);

	pr->e = e;
	pr->l = l;
	pr->t = t;
	t->refs++;
	l->inflight++;
	e->ninflight++;
	pr->route = route;
	pr->dreq = req;
	pr->t0 = uv_hrtime();
	if (route->timeout_ms)
		pr->deadline = uv_now(e->loop) + route->timeout_ms;
	pr->idempotent = method_idempotent(req->method);
	pr->is_head = strcmp(req->method, "HEAD") == 0;
	pr->has_body = req->body_follows;
	pr->upgrade = req->upgrade && strcmp(req->method, "CONNECT") != 0;
	http_req_on_abort(req, on_dabort, pr);
	http_req_on_drain(req, on_ddrain, pr);
	if (pr->has_body) {
		http_req_body(req, on_dbody, pr);
		http_req_body_pause(req, true);	/* until the head went upstream */
	}
	pr->cluster = px_route_backend(route, req, &pr->sticky);
	if (e->tracer)
		px_trace_begin(e, &pr->ts, req, pr->cluster);
	if (pr->cluster == NULL) {
		req_finish(pr, 503, "no backend\n", true);
		return;
	}
	req_attempt(pr);
}
