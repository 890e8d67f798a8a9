/* proxy_trace.c — the proxy's spans (proxy_trace.h): W3C traceparent
 * parsing and formatting, the parent-based ratio sampler, and the SERVER /
 * CLIENT spans of the stable HTTP semantic conventions, encoded at the end
 * of each request or attempt (sampled ones only) and queued on the OTLP
 * exporter (obs_otlp.c). The resource of a span is its Service: service.name,
 * k8s.namespace.name and service.version (the revision that answered). */
#include "proxy_trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "obs_otlp.h"
#include "proxy_int.h"

struct px_tracer {
	struct otlp_exporter *x;
	double ratio;			/* root sampling ratio */
	uint64_t base_hr, base_ns;	/* uv_hrtime() and the wall clock, at start */
	struct buf span, res;		/* scratch, reused */
};

/* ---- W3C Trace Context -------------------------------------------------- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;		/* upper case is invalid in traceparent */
}

/* n (<= 16) lower-case hex digits at s into *out. */
static bool
hex_u64(const char *s, int n, uint64_t *out)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++) {
		int d = hexval(s[i]);
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return true;
}

int
w3c_parent_parse(const char *s, struct w3c_parent *out)
{
	uint64_t ver, flags;
	size_t n;

	if (s == NULL)
		return -EINVAL;
	n = strlen(s);
	if (n < 55 || !hex_u64(s, 2, &ver) || ver == 0xff || s[2] != '-' || s[35] != '-' ||
	    s[52] != '-')
		return -EINVAL;
	if (ver == 0 ? n != 55 : n > 55 && s[55] != '-')
		return -EINVAL;
	if (!hex_u64(s + 3, 16, &out->trace_hi) || !hex_u64(s + 19, 16, &out->trace_lo) ||
	    !hex_u64(s + 36, 16, &out->parent_id) || !hex_u64(s + 53, 2, &flags))
		return -EINVAL;
	if ((out->trace_hi | out->trace_lo) == 0 || out->parent_id == 0)
		return -EINVAL;
	out->flags = (uint8_t)flags;
	return 0;
}

void
w3c_parent_format(char out[56], const struct w3c_parent *tp)
{
	memcpy(out, "00-", 3);
	otlp_hex(out + 3, tp->trace_hi, 16);
	otlp_hex(out + 19, tp->trace_lo, 16);
	out[35] = '-';
	otlp_hex(out + 36, tp->parent_id, 16);
	out[52] = '-';
	otlp_hex(out + 53, tp->flags, 2);
	out[55] = '\0';
}

bool
trace_ratio_sampled(double ratio, uint64_t trace_lo)
{
	if (!(ratio > 0))
		return false;
	if (ratio >= 1)
		return true;
	/* the low 56 bits of the id, as OpenTelemetry's TraceIdRatioBased */
	return (trace_lo & ((1ull << 56) - 1)) < (uint64_t)(ratio * (double)(1ull << 56));
}

/* ---- the tracer ------------------------------------------------------------ */

struct px_tracer *
proxy_tracer_new(struct otlp_exporter *x, double ratio)
{
	struct px_tracer *t = xcalloc(1, sizeof *t);

	t->x = x;
	t->ratio = ratio;
	t->base_hr = uv_hrtime();
	t->base_ns = otlp_now_ns();
	return t;
}

void
proxy_tracer_free(struct px_tracer *t)
{
	if (t == NULL)
		return;
	buf_free(&t->span);
	buf_free(&t->res);
	free(t);
}

void
proxy_engine_set_tracer(struct proxy_engine *e, struct px_tracer *t)
{
	e->tracer = t;
}

/* Wall-clock ns from the monotonic clock: no system call per span. */
static uint64_t
now_ns(const struct px_tracer *t)
{
	return t->base_ns + (uv_hrtime() - t->base_hr);
}

static uint64_t
nonzero_random(struct proxy_engine *e)
{
	uint64_t v;

	while ((v = px_random(e)) == 0)
		;
	return v;
}

void
px_trace_begin(struct proxy_engine *e, struct px_tspan *ts, const struct http_req *req,
    const struct px_cluster *c)
{
	const char *tp = NULL;
	struct w3c_parent in;
	unsigned ntp = 0;
	size_t i;

	if (e->tracer == NULL)
		return;
	for (i = 0; i < req->nheaders; i++) {
		const char *n = req->headers[i].name;
		if ((n[0] | 0x20) != 't')
			continue;
		if (strcasecmp(n, "traceparent") == 0) {
			tp = req->headers[i].value;
			ntp++;
		} else if (strcasecmp(n, "tracestate") == 0 && ts->trace_state == NULL) {
			ts->trace_state = req->headers[i].value;
		}
	}
	ts->on = true;
	if (ntp == 1 && w3c_parent_parse(tp, &in) == 0) {
		ts->trace_hi = in.trace_hi;
		ts->trace_lo = in.trace_lo;
		ts->parent_id = in.parent_id;
		ts->sampled = in.flags & 1;	/* parent-based */
	} else {
		/* no valid parent: a new trace; the tracestate goes with the old one */
		ts->trace_state = NULL;
		ts->trace_hi = px_random(e);
		ts->trace_lo = nonzero_random(e);
		ts->sampled = trace_ratio_sampled(c && c->trace_ratio >= 0 ? c->trace_ratio :
		    e->tracer->ratio, ts->trace_lo);
	}
	if (!ts->sampled)
		return;		/* only the forwarded traceparent: no span, no clock */
	ts->server_id = nonzero_random(e);
	ts->start_ns = now_ns(e->tracer);
}

void
px_trace_attempt(struct proxy_engine *e, struct px_tspan *ts, const struct px_endpoint *ep)
{
	size_t n;

	ts->client_id = nonzero_random(e);
	ts->client_open = true;
	if (!ts->sampled || e->tracer == NULL)
		return;
	n = ep->revision ? strlen(ep->revision) : 0;	/* ep may go before the span ends */
	if (n >= sizeof ts->revision)
		n = sizeof ts->revision - 1;
	memcpy(ts->revision, ep->revision ? ep->revision : "", n);
	ts->revision[n] = '\0';
	ts->client_start_ns = now_ns(e->tracer);
}

void
px_trace_ids(const struct px_tspan *ts, struct px_trace_ids *out)
{
	otlp_hex(out->trace_id, ts->trace_hi, 16);
	otlp_hex(out->trace_id + 16, ts->trace_lo, 16);
	out->trace_id[32] = '\0';
	otlp_hex(out->span_id, ts->client_id, 16);
	out->span_id[16] = '\0';
}

void
px_trace_put_header(struct buf *b, const struct px_tspan *ts)
{
	struct w3c_parent out = { ts->trace_hi, ts->trace_lo, ts->client_id, ts->sampled };
	char line[13 + 56 + 2] = "traceparent: ";

	w3c_parent_format(line + 13, &out);
	memcpy(line + 13 + 55, "\r\n", 2);
	buf_append(b, line, 13 + 55 + 2);
}

/* The resource of the cluster's Service at revision: its attribute list. */
static void
put_resource(struct buf *b, const struct px_cluster *c, const char *revision)
{
	const char *svc = c && c->service ? c->service : "";
	const char *slash = strchr(svc, '/');

	buf_reset(b);
	buf_putc(b, '[');
	if (slash) {
		otlp_attr_cstr(b, "service.name", slash + 1);
		otlp_attr_str(b, "k8s.namespace.name", svc, (size_t)(slash - svc));
	} else {
		otlp_attr_cstr(b, "service.name", *svc ? svc : "v6-proxy");
	}
	if (revision && *revision)
		otlp_attr_cstr(b, "service.version", revision);
	buf_putc(b, ']');
}

/* The method for attributes and names: one the conventions know, or _OTHER. */
static const char *
known_method(const char *m)
{
	static const char *const tab[] = { "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS",
		"PATCH", "CONNECT", "TRACE" };

	for (size_t i = 0; i < ARRAY_SIZE(tab); i++)
		if (strcmp(m, tab[i]) == 0)
			return tab[i];
	return NULL;
}

static void
put_method(struct buf *b, const char *m)
{
	const char *k = known_method(m);

	otlp_attr_cstr(b, "http.request.method", k ? k : "_OTHER");
	if (!k)
		otlp_attr_cstr(b, "http.request.method_original", m);
}

/* "host:port" / "[v6]:port" split into address and port (def when none). */
static void
put_addr_port(struct buf *b, const char *akey, const char *pkey, const char *hp, int def)
{
	const char *colon = strrchr(hp, ':'), *a = hp;
	size_t n;

	if (hp[0] == '[') {
		const char *close = strchr(hp, ']');
		a = hp + 1;
		n = close ? (size_t)(close - a) : strlen(a);
		colon = close && close[1] == ':' ? close + 1 : NULL;
	} else {
		n = colon ? (size_t)(colon - hp) : strlen(hp);
	}
	otlp_attr_str(b, akey, a, n);
	if (colon && colon[1]) {
		int port = 0;
		for (const char *d = colon + 1; *d >= '0' && *d <= '9' && port < 65536; d++)
			port = port * 10 + (*d - '0');
		otlp_attr_int(b, pkey, port);
	}
	else if (def > 0)
		otlp_attr_int(b, pkey, def);
}

static void
put_path(struct buf *b, const struct http_req *req)
{
	const char *q = strchr(req->target, '?');

	otlp_attr_str(b, "url.path", req->target, q ? (size_t)(q - req->target) : strlen(req->target));
	if (q && q[1])
		otlp_attr_cstr(b, "url.query", q + 1);
}

static void
emit(struct px_tracer *t)
{
	otlp_add(t->x, t->res.data, t->res.len, t->span.data, t->span.len);
}

void
px_trace_client_end(struct proxy_engine *e, struct px_tspan *ts, const struct http_req *req,
    const struct px_cluster *c, const struct px_endpoint *ep, unsigned attempt, int status,
    const char *err)
{
	struct px_tracer *t = e->tracer;
	struct otlp_ids ids = { ts->trace_hi, ts->trace_lo, ts->client_id, ts->server_id };
	struct buf *b;
	const char *m;
	char code[16];

	if (!ts->client_open)
		return;
	ts->client_open = false;
	if (!ts->sampled || t == NULL || req == NULL)
		return;
	b = &t->span;
	buf_reset(b);
	m = known_method(req->method);
	otlp_span_begin(b, &ids, ts->trace_state, m ? m : "HTTP", OTLP_KIND_CLIENT,
	    ts->client_start_ns, now_ns(t));
	put_method(b, req->method);
	if (ep) {
		put_addr_port(b, "server.address", "server.port", ep->key, 80);
		put_addr_port(b, "network.peer.address", "network.peer.port", ep->key, 80);
		buf_reset(&t->res);	/* scratch until the resource */
		buf_printf(&t->res, "http://%s%s", ep->key, req->target);
		otlp_attr_str(b, "url.full", t->res.data, t->res.len);
		if (ep->pod)
			otlp_attr_cstr(b, "k8s.pod.name", ep->pod);
	}
	if (attempt > 1)
		otlp_attr_int(b, "http.request.resend_count", attempt - 1);
	if (status > 0)
		otlp_attr_int(b, "http.response.status_code", status);
	if (status >= 400) {
		snprintf(code, sizeof code, "%d", status);
		err = code;
	}
	if (err)
		otlp_attr_cstr(b, "error.type", err);
	otlp_span_end(b, err ? OTLP_STATUS_ERROR : OTLP_STATUS_UNSET, NULL, false);
	put_resource(&t->res, c, ts->revision);
	emit(t);
}

void
px_trace_server_end(struct proxy_engine *e, struct px_tspan *ts, const struct http_req *req,
    const struct px_route *r, const struct px_cluster *c, int status)
{
	struct px_tracer *t = e->tracer;
	struct otlp_ids ids = { ts->trace_hi, ts->trace_lo, ts->server_id, ts->parent_id };
	const char *route = NULL, *m, *v;
	struct buf *b;
	char name[160], code[16];

	ts->on = false;
	if (!ts->sampled || t == NULL || req == NULL)
		return;
	b = &t->span;
	buf_reset(b);
	/* http.route: the one path an HTTPRoute rule matches on, when it has one */
	if (r && r->nmatches == 1 && r->matches[0].path_type != PX_M_ANY)
		route = r->matches[0].path;
	m = known_method(req->method);
	if (route)
		snprintf(name, sizeof name, "%s %s", m ? m : "HTTP", route);
	else
		snprintf(name, sizeof name, "%s", m ? m : "HTTP");
	otlp_span_begin(b, &ids, ts->trace_state, name, OTLP_KIND_SERVER, ts->start_ns, now_ns(t));
	put_method(b, req->method);
	put_path(b, req);
	otlp_attr_cstr(b, "url.scheme", "http");
	if (route)
		otlp_attr_cstr(b, "http.route", route);
	if ((v = http_req_header(req, "host")) != NULL && *v)
		put_addr_port(b, "server.address", "server.port", v, 80);
	put_addr_port(b, "network.peer.address", "network.peer.port", req->remote_addr, 0);
	otlp_attr_cstr(b, "network.protocol.version", req->http10 ? "1.0" : "1.1");
	if ((v = http_req_header(req, "user-agent")) != NULL)
		otlp_attr_cstr(b, "user_agent.original", v);
	if (status > 0)
		otlp_attr_int(b, "http.response.status_code", status);
	if (status >= 500 || status == 0) {
		/* 5xx is an error of the server's; 4xx is the client's (SERVER spans) */
		snprintf(code, sizeof code, "%d", status);
		otlp_attr_cstr(b, "error.type", status ? code : "_OTHER");
	}
	otlp_span_end(b, status >= 500 || status == 0 ? OTLP_STATUS_ERROR : OTLP_STATUS_UNSET,
	    NULL, false);
	put_resource(&t->res, c, ts->revision);
	emit(t);
}
