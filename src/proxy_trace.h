/* proxy_trace.h — the proxy's distributed tracing (proxy_trace.c): W3C
 * trace context in and out, a parent-based ratio sampler, a SERVER span per
 * request and a CLIENT span per upstream attempt, exported as OTLP
 * (obs_otlp.c). proxy_upstream.c calls the px_trace_* hooks, each behind
 * one branch on whether tracing is on; the W3C and sampler parts are pure. */
#ifndef V6_PROXY_TRACE_H
#define V6_PROXY_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* ---- W3C Trace Context (pure) ---------------------------------------------- */
struct w3c_parent {
	uint64_t trace_hi, trace_lo;	/* trace-id */
	uint64_t parent_id;		/* parent-id */
	uint8_t flags;			/* trace-flags; bit 0: sampled */
};
/* Parses a traceparent value by the W3C rules: version 00 is exactly 55
 * characters; a higher version may be longer when a '-' follows the flags;
 * version ff, upper-case hex, all-zero trace-id or parent-id are invalid.
 * Returns 0 or -EINVAL. */
int w3c_parent_parse(const char *s, struct w3c_parent *out);
/* Writes "00-TRACE-PARENT-FLAGS" (55 characters and a NUL) into out. */
void w3c_parent_format(char out[56], const struct w3c_parent *tp);
/* The root sampler: whether a new trace whose low id bits are trace_lo is
 * sampled at ratio (0..1), deterministic in the id as TraceIdRatioBased. */
bool trace_ratio_sampled(double ratio, uint64_t trace_lo);

/* ---- per request ---------------------------------------------------------- */
/* A request's trace state, zeroed with the request; on only when tracing is. */
struct px_tspan {
	uint64_t trace_hi, trace_lo;
	uint64_t parent_id;		/* the caller's span; 0: this trace starts here */
	uint64_t server_id;		/* the SERVER span */
	uint64_t client_id;		/* the current attempt's CLIENT span */
	uint64_t start_ns, client_start_ns;	/* wall clock */
	const char *trace_state;	/* the caller's tracestate (the request's memory) */
	char revision[32];		/* of the last attempt's endpoint */
	bool on;
	bool sampled;
	bool client_open;		/* an attempt is under way */
};

struct proxy_engine;
struct http_req;
struct px_route;
struct px_cluster;
struct px_endpoint;
struct buf;

/* px_forward: continues the request's traceparent or starts a trace, and
 * decides sampling (a new trace: at c's ratio when its Service sets one,
 * else the proxy's; c may be NULL). Only when the engine traces (e->tracer). */
void px_trace_begin(struct proxy_engine *e, struct px_tspan *ts, const struct http_req *req,
    const struct px_cluster *c);
/* An attempt to ep starts: a new CLIENT span id. */
void px_trace_attempt(struct proxy_engine *e, struct px_tspan *ts, const struct px_endpoint *ep);
/* The trace id and the current CLIENT span id as lowercase hex, for log
 * records (log.h's trace_id / span_id). */
struct px_trace_ids {
	char trace_id[33], span_id[17];
};
void px_trace_ids(const struct px_tspan *ts, struct px_trace_ids *out);
/* The forwarded "traceparent: 00-TRACE-CLIENTSPAN-FLAGS\r\n" line. */
void px_trace_put_header(struct buf *b, const struct px_tspan *ts);
/* The attempt ended with an upstream status, or (status 0) the error err
 * ("connect_error", "reset", "timeout", ...). attempt counts from 1. */
void px_trace_client_end(struct proxy_engine *e, struct px_tspan *ts, const struct http_req *req,
    const struct px_cluster *c, const struct px_endpoint *ep, unsigned attempt, int status,
    const char *err);
/* The request ended with status (0: the client went away or the response
 * was cut). */
void px_trace_server_end(struct proxy_engine *e, struct px_tspan *ts, const struct http_req *req,
    const struct px_route *r, const struct px_cluster *c, int status);

#endif
