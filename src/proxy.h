/* proxy.h — V6's data plane (`v6 proxy`, its own process): the routing
 * snapshot it is fed, the engine that serves it (HTTP/1.1 reverse proxy and
 * TCP proxy), the process around the engine, and the server-side feed that
 * starts, adopts and updates the proxy process.
 *
 * The routing snapshot is one JSON document, built by the server from
 * Services, Endpoints, Gateways and HTTPRoutes (ctrl_routes.c) and applied
 * by the engine atomically (listeners and clusters are keyed by name, so a
 * delta of named listeners and clusters changes it):
 *
 * {
 *   "version": 42,                        store resourceVersion it reflects
 *   "listeners": [{
 *     "name": "svc/default/web/http",     unique; stable across snapshots
 *     "address": "127.2.0.5", "port": 80,
 *     "protocol": "HTTP" | "HTTPS" | "TCP",
 *     "tls": [{"hostname": "shop.example",   HTTPS: certificates by SNI name
 *              "cert": "PEM chain", "key": "PEM"}],  ("" / absent: the default;
 *                                     "*.x" a suffix; one context per hostname,
 *                                     an RSA and an ECDSA pair may share one)
 *     "routes": [{                        HTTP: first matching route wins
 *       "name": "httproute/default/web/0" | "svc/default/web",
 *       "hostnames": ["shop.example"],    empty: any Host
 *       "matches": [{                     any match (OR); empty: match all
 *         "path": {"type": "PathPrefix" | "Exact", "value": "/api"},
 *         "headers": [{"name": "x-canary", "type": "Exact" | "RegularExpression"
 *                      | "Prefix", "value": "1"}],
 *         "queryParams": [{"name": "v", "type": "Exact", "value": "2"}],
 *         "cookies": [{"name": "canary", "value": "always"}]   V6 extension for A/B
 *       }],
 *       "filters": [{"type": "RequestHeaderModifier",
 *                    "set": [{"name","value"}], "add": [...], "remove": ["x"]}],
 *       "timeouts": {"request": "10s", "backendRequest": "5s"},
 *       "sticky": {"cookie": "v6-affinity", "ttl": "1h"},    optional
 *       "backends": [{"cluster": "default/web:http", "weight": 90},
 *                    {"cluster": "default/web-canary:http", "weight": 10}]
 *     }],
 *     "cluster": "default/db:5432"         TCP listeners: the one backend
 *   }],
 *   "clusters": {
 *     "default/web:http": {
 *       "service": "default/web",
 *       "lb": "round_robin" | "least_request",
 *       "connect_timeout_ms": 1000, "idle_timeout_ms": 60000,
 *       "outlier_consecutive_failures": 5, "outlier_ejection_ms": 30000,  optional
 *       "trace_sample_ratio": 0.01,        optional: share of new traces sampled
 *       "endpoints": [{"address": "127.1.0.3", "port": 8080,
 *                      "pod": "web-6d9d67d84f-cgxql", "revision": "6d9d67d84f"}]
 *     }
 *   }
 * }
 *
 * Control protocol (STATE/control.sock, one JSON object per line; every
 * snapshot or delta is answered {"type":"ack"|"nack","version":V[,"error"]}):
 *   {"type":"snapshot","snapshot":{...}}      the whole table, as above
 *   {"type":"delta","base":B,"version":V,     applies only when the proxy's
 *    "listeners":{"NAME": {...} | null},      version is B (else a nack: the
 *    "clusters":{"NAME": {...} | null}}       feed resyncs with a snapshot);
 *                                             null removes, a value replaces
 *   {"type":"ping"} -> {"type":"pong","version":V}
 * The feed sends a whole snapshot on each connection and after a nacked
 * delta, then deltas, one awaiting its ack at a time. The proxy saves the
 * last whole snapshot in STATE/snapshot.json and the deltas applied since
 * in STATE/snapshot.journal, and replays both when it starts.
 *
 * Engine metrics (Prometheus text), labels service, route, revision, code:
 *   v6_proxy_requests_total{service,route,revision,code="2xx|3xx|4xx|5xx"}
 *   v6_proxy_request_duration_seconds_bucket/_sum/_count{service,route,revision,le}
 *   v6_proxy_upstream_errors_total{service,revision,kind="connect|reset|timeout"}
 *   v6_proxy_active_connections{listener}, v6_proxy_bytes_total{service,direction}
 */
#ifndef V6_PROXY_H
#define V6_PROXY_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "util.h"

struct proxy_engine;

/* proxy_engine.c — the data path, on one loop. */
struct proxy_engine *proxy_engine_new(uv_loop_t *loop);
/* Applies a snapshot: opens new listeners, updates routes and clusters in
 * place (new requests use the new table at once; in-flight ones finish on
 * the old), closes listeners that are gone after draining them. Returns 0,
 * or negative errno with *err (caller frees) when the snapshot is malformed
 * — then nothing changed. A listener that cannot bind is reported in *err
 * but the rest applies (returns 0). */
int proxy_engine_apply(struct proxy_engine *e, const json_t *snapshot, char **err);
/* Applies a delta to the current table: listeners and clusters (borrowed;
 * either may be NULL) map each changed name to its new definition (a
 * listener's own "name" must be that name) or to JSON null to remove it; the
 * table then has version. Compiles only what the delta names and the
 * listeners routing to a replaced cluster; the rest is shared with the
 * previous table. Returns and reports as proxy_engine_apply. */
int proxy_engine_apply_delta(struct proxy_engine *e, int64_t version, const json_t *listeners,
    const json_t *clusters, char **err);
int64_t proxy_engine_version(const struct proxy_engine *e);
/* Appends the Prometheus text exposition of every metric to out. */
void proxy_engine_metrics(struct proxy_engine *e, struct buf *out);
/* Controllers' view of the metrics (additive): everything counted for a
 * service ("ns/name") and revision (NULL: every revision) since the engine
 * started. Take two readings and subtract for rates; quantiles over a
 * window come from proxy_stats_quantile(now, before, q). */
#define PROXY_STATS_BUCKETS 15
struct proxy_stats {
	uint64_t requests;		/* answered, any status */
	uint64_t status_2xx, status_3xx, status_4xx, status_5xx;
	uint64_t errors;		/* 5xx answers, the proxy's own 502/503/504 included */
	uint64_t upstream_errors;	/* connect, reset, timeout (retried ones too) */
	uint64_t timed;			/* requests in the histogram */
	double avg_ms, p50_ms, p99_ms;	/* since the start */
	uint64_t bytes_in, bytes_out;
	uint64_t buckets[PROXY_STATS_BUCKETS];	/* latency histogram, not cumulative */
};
/* Returns 0, or -ENOENT (out zeroed) when nothing was counted for them. */
int proxy_metrics_query(struct proxy_engine *e, const char *service, const char *revision,
    struct proxy_stats *out);
/* Latency in ms below which a fraction q of the requests counted between
 * two readings finished (before may be NULL: since the start). */
double proxy_stats_quantile(const struct proxy_stats *now, const struct proxy_stats *before,
    double q);
/* Duration of the last successful proxy_engine_apply in microseconds. */
double proxy_engine_apply_us(const struct proxy_engine *e);

/* Stops accepting, finishes in-flight requests, then calls done. */
void proxy_engine_drain(struct proxy_engine *e, void (*done)(void *), void *arg);
void proxy_engine_free(struct proxy_engine *e);
/* cb(arg, "ns/name") when a request starts waiting for an endpoint of that
 * Service (a cluster with hold_ms and none), again each second it waits. */
void proxy_engine_on_hold(struct proxy_engine *e, void (*cb)(void *arg, const char *service),
    void *arg);

/* proxy_trace.c — spans of the requests (SERVER) and their upstream
 * attempts (CLIENT), sampled at ratio for new traces and as the caller
 * says for continued ones, queued on x (borrowed; outlives the tracer). */
struct px_tracer;
struct otlp_exporter;
struct px_tracer *proxy_tracer_new(struct otlp_exporter *x, double ratio);
void proxy_tracer_free(struct px_tracer *t);
/* Turns tracing on with t (borrowed), or off with NULL. */
void proxy_engine_set_tracer(struct proxy_engine *e, struct px_tracer *t);

/* proxy_tls.c — a listener definition (borrowed) as it may be shown: a
 * copy with every TLS private key replaced by "REDACTED" when it has any,
 * else a new reference to it. */
json_t *proxy_listener_redacted(const json_t *listener);

/* proxy_main.c — `v6 proxy`: the process around the engine. */
int proxy_main(int argc, char **argv);

/* proxy_feed.c — in the server: keeps one proxy process running (starting
 * it detached so it outlives the server, adopting a running one after a
 * server restart) and sends it every new snapshot. */
struct proxy_feed;
struct proxy_feed_config {
	const char *state_dir;		/* DATA/proxy: control.sock, proxy.pid, snapshot.json */
	const char *self_exe;		/* the v6 binary */
	const char *admin_address;	/* "127.0.0.1:0": /metrics, /healthz of the proxy */
	const char *const *proxy_args;	/* more flags for the proxy (NULL-terminated), or NULL */
};
int proxy_feed_start(uv_loop_t *loop, const struct proxy_feed_config *cfg,
    struct proxy_feed **out);
/* The table moved to version v: listeners and clusters (borrowed; either
 * may be NULL) map each changed name to its new value, or to JSON null
 * when it is gone. The feed keeps the whole table and sends the proxy a
 * full snapshot on (re)connect or after a refused delta, else deltas. */
void proxy_feed_update(struct proxy_feed *f, int64_t v, const json_t *listeners,
    const json_t *clusters);
/* Makes snapshot (borrowed) the table: proxy_feed_update with its
 * differences from the table the feed holds. */
void proxy_feed_send(struct proxy_feed *f, const json_t *snapshot);
/* cb runs once the proxy has applied a snapshot of version >= v (or after
 * timeout_ms, with applied=false): used to take a pod out of the routing
 * table before it receives SIGTERM. */
void proxy_feed_wait_version(struct proxy_feed *f, int64_t v, unsigned timeout_ms,
    void (*cb)(void *arg, bool applied), void *arg);
/* obj's members (name -> value) sorted by name: a new object, or an array
 * of the values when as_array. Snapshots list listeners and clusters so. */
json_t *proxy_sorted_members(const json_t *obj, bool as_array);
/* "127.0.0.1:PORT" of the proxy's admin listener (metrics), NULL if unknown. */
const char *proxy_feed_admin_address(const struct proxy_feed *f);
/* cb(arg, "ns/name") when the proxy holds a request for a Service without
 * an endpoint (scale from zero); NULL: ignored. */
void proxy_feed_on_activate(struct proxy_feed *f, void (*cb)(void *arg, const char *service),
    void *arg);
/* Stops feeding; the proxy process keeps serving its last snapshot. */
void proxy_feed_stop(struct proxy_feed *f);

#endif
