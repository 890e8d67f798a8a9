/* obs_otlp.h — spans out of V6 as OTLP/HTTP, binary protobuf (the
 * default) or the JSON encoding (opentelemetry-proto's JSON mapping: hex
 * ids, enum integers, lowerCamelCase, 64-bit integers as decimal strings):
 * a span encoder (JSON; obs_otlp_pb.c transcodes a batch) and a batching
 * exporter, shared by the proxy (proxy_trace.c) and the server
 * (ctrl_rollout.c's rollout spans). */
#ifndef V6_OBS_OTLP_H
#define V6_OBS_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util.h"

/* Span kinds and status codes, as the enums of trace.proto number them. */
enum { OTLP_KIND_INTERNAL = 1, OTLP_KIND_SERVER = 2, OTLP_KIND_CLIENT = 3 };
enum { OTLP_STATUS_UNSET = 0, OTLP_STATUS_OK = 1, OTLP_STATUS_ERROR = 2 };

/* ---- encoding: one span as a JSON object, written into a buf ---------------
 * Order: otlp_span_begin, attributes, [otlp_span_events, (otlp_event_begin,
 * attributes, otlp_event_end)...], otlp_span_end. A resource's attribute
 * list is "[" + attributes + "]". Strings are escaped and made valid UTF-8;
 * longer than OTLP_VALUE_MAX bytes they are cut (on a character boundary). */
#define OTLP_VALUE_MAX 1024
struct otlp_ids {
	uint64_t trace_hi, trace_lo;	/* the 16-byte trace id, big-endian halves */
	uint64_t span_id;
	uint64_t parent_id;		/* 0: a root span */
};
void otlp_span_begin(struct buf *b, const struct otlp_ids *ids, const char *trace_state,
    const char *name, int kind, uint64_t start_ns, uint64_t end_ns);
void otlp_attr_str(struct buf *b, const char *key, const char *v, size_t n);
void otlp_attr_cstr(struct buf *b, const char *key, const char *v);
void otlp_attr_int(struct buf *b, const char *key, int64_t v);
void otlp_attr_double(struct buf *b, const char *key, double v);
void otlp_span_events(struct buf *b);
void otlp_event_begin(struct buf *b, const char *name, uint64_t time_ns);
void otlp_event_end(struct buf *b);
/* status_msg may be NULL. with_events: otlp_span_events was called. */
void otlp_span_end(struct buf *b, int status_code, const char *status_msg, bool with_events);
/* Lower-case hex of v in digits characters (16 for a span id). */
void otlp_hex(char *out, uint64_t v, int digits);
/* Wall-clock time in ns since the epoch. */
uint64_t otlp_now_ns(void);

/* ---- the exporter ---------------------------------------------------------- */
#define OTLP_SHUTDOWN_FLUSH_MS 2000	/* what V6's processes give the flush on exit */
struct otlp_exporter;
struct otlp_config {
	const char *endpoint;		/* base URL (".../v1/traces" appended) or the full one */
	const char *scope;		/* instrumentation scope name ("v6.proxy") */
	/* 0: the OTEL_BSP_* / OTEL_EXPORTER_OTLP_TIMEOUT variable, else the spec's default */
	unsigned max_queue;		/* spans waiting (2048) */
	unsigned max_batch;		/* spans per request (512) */
	unsigned delay_ms;		/* longest wait before a partial batch goes (5000) */
	unsigned timeout_ms;		/* one export request (10000) */
	/* "http/protobuf" or "http/json"; NULL: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
	 * else OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf (the spec's
	 * default). Another value ("grpc") is logged and http/protobuf used. */
	const char *protocol;
};
struct otlp_stats {
	uint64_t queued, exported, dropped_full, dropped_failed, requests, retries;
	unsigned queue_len;
};
/* The exporter URL for a configured endpoint: the endpoint itself when it
 * ends in /v1/traces, else endpoint + "/v1/traces" (the rule for
 * OTEL_EXPORTER_OTLP_ENDPOINT). Caller frees. */
char *otlp_traces_url(const char *endpoint);
/* The endpoint V6 exports to: flag (may be NULL), else
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (taken as the full URL), else
 * OTEL_EXPORTER_OTLP_ENDPOINT; NULL when none (tracing off). Caller frees. */
char *otlp_endpoint_from(const char *flag);
/* A sampling ratio "0".."1" (also "0.01", "1e-3"): 0 or -EINVAL. */
int otlp_ratio_parse(const char *s, double *out);
/* Starts an exporter on loop: spans are queued by otlp_add and posted in
 * batches from libuv's thread pool (the loop never waits on the network),
 * one request at a time, retried with exponential back-off (honouring
 * Retry-After) on 429/502/503/504 and connection errors or timeouts. */
int otlp_start(uv_loop_t *loop, const struct otlp_config *cfg, struct otlp_exporter **out);
/* Queues one span (JSON object text) of the resource whose attribute list
 * is resource (JSON array text); both copied. When the queue is full the
 * span is dropped and counted; returns false then. Loop thread only. */
bool otlp_add(struct otlp_exporter *x, const char *resource, size_t rlen, const char *span,
    size_t slen);
void otlp_get_stats(const struct otlp_exporter *x, struct otlp_stats *out);
/* Sends what is queued now (a batch at a time) without waiting for the delay. */
void otlp_flush(struct otlp_exporter *x);
/* Stops: an export in flight is aborted, queued spans are dropped. *done
 * becomes true once everything is freed: now, or from the loop when the
 * request in flight returned (run the loop until then). */
void otlp_stop(struct otlp_exporter *x, bool *done);
/* For a process on its way out: sends what is queued for at most flush_ms
 * (the SDKs' shutdown flush), then otlp_stop, running loop until x is
 * freed (an export still in flight is cut short within ~1 s by curl's
 * progress callback). x may be NULL. */
void otlp_stop_wait(struct otlp_exporter *x, uv_loop_t *loop, unsigned flush_ms);

/* obs_otlp_pb.c */
/* The protobuf encoding of an ExportTraceServiceRequest given in the JSON
 * mapping (what the exporter builds) into out (reset first). Returns 0, or
 * -EINVAL for text that is not such a request (bad JSON, an id that is not
 * hex of the right length, a bytesValue). */
int otlp_pb_from_json(const char *json, size_t len, struct buf *out);

#endif
