/* proxy_int.h — internals shared by the engine's files (proxy_engine.c,
 * proxy_route.c, proxy_upstream.c, proxy_tcp.c, proxy_metrics.c): the
 * compiled routing table, endpoints with their connection pools, listeners
 * and metrics. Only proxy_*.c and their unit tests include it; proxy.h is
 * the public contract. */
#ifndef V6_PROXY_INT_H
#define V6_PROXY_INT_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "proxy.h"
#include "util.h"

#define PX_MAX_ATTEMPTS		3	/* first try + 2 retries */
#define PX_OUTLIER_FAILS	5	/* consecutive failures before ejection */
#define PX_OUTLIER_MS		30000	/* first ejection; doubles, capped x8 */
#define PX_WQ_HIGH		(256 * 1024)	/* stop reading the other side */
#define PX_NBUCKETS		PROXY_STATS_BUCKETS

enum px_lb { PX_LB_RR, PX_LB_LEAST };
enum px_proto { PX_HTTP, PX_TCP };
enum px_mtype { PX_M_ANY, PX_M_EXACT, PX_M_PREFIX, PX_M_REGEX };
enum px_err { PX_E_CONNECT, PX_E_RESET, PX_E_TIMEOUT, PX_E_N };

struct px_uconn;

/* Counters of one (service, route, revision), and of one endpoint. */
struct px_stat {
	unsigned refs;
	char *service, *route, *revision;
	uint64_t requests[6];		/* by status class: [1]=1xx .. [5]=5xx, [0] other */
	uint64_t buckets[PX_NBUCKETS];	/* latency, not cumulative */
	uint64_t count;
	double sum_s;
	uint64_t errors[PX_E_N];
	uint64_t bytes_in, bytes_out;
	struct px_stat *next;
};

/* One upstream address, shared by every cluster and table that lists it,
 * so its pool, load and outlier state survive snapshots. */
struct px_endpoint {
	char *key;			/* "127.1.0.3:8080" */
	struct sockaddr_storage sa;
	char *pod;
	char *revision;
	unsigned refs;			/* clusters of live tables + upstream conns */
	unsigned inuse;			/* clusters of the current table listing it */
	bool removed;			/* in no cluster of the current table */
	unsigned active;		/* requests in flight (least_request) */
	unsigned fails;			/* consecutive connect failures or 5xx */
	unsigned ejections;		/* ejections in a row: the back-off */
	uint64_t ejected_until;		/* uv_now() ms; 0: in rotation */
	uint32_t sticky;		/* value of the sticky cookie */
	struct px_uconn *idle;		/* pooled connections, most recent first */
	unsigned nidle;
	struct px_endpoint *hnext;	/* engine registry chain */
	struct px_stat pod_st;		/* what this pod answered (the pod metrics;
					 * only the counters are used) */
	unsigned mark;			/* the last pod-metrics pass that wrote it */
};

struct px_lspec;
struct ep_label;
struct px_tls;
struct ssl_ctx_st;

/* Compiled once, shared by every table that holds the same definition
 * (refcounted: tables and the listener specs routing to it). */
struct px_cluster {
	unsigned refs;
	char *name;
	char *service;
	enum px_lb lb;
	unsigned connect_timeout_ms;
	unsigned idle_timeout_ms;
	unsigned outlier_fails;
	unsigned outlier_ms;
	double trace_ratio;		/* new traces sampled; < 0: the proxy's ratio */
	unsigned hold_ms;		/* no endpoint: requests wait this long (0: 503) */
	struct px_endpoint **eps;
	size_t neps;
	unsigned rr;
	struct ep_label *labels;	/* endpoint labels, until the table commits */
	struct px_lspec **users;	/* listener specs routing to it (a spec per reference) */
	size_t nusers, users_cap;
};

/* A header, query-parameter or cookie condition. */
struct px_kv {
	char *name;
	char *value;
	size_t value_len;
	enum px_mtype type;
	bool has_re;
	regex_t re;
};

struct px_match {
	char method[8];			/* "" = any method (HTTPRoute matches[].method) */
	enum px_mtype path_type;	/* ANY, EXACT, PREFIX */
	char *path;
	size_t path_len;
	struct px_kv *headers, *query, *cookies;
	size_t nheaders, nquery, ncookies;
};

struct px_hdr {
	char *name;
	char *value;
};

struct px_backend {
	struct px_cluster *cluster;
	int weight;
	int cur;			/* smooth weighted round robin */
};

/* Metrics of one (service, route, revision). Held (refs) by the routes
 * that resolved it, by TCP splices and by e->misc; a request in flight holds
 * its table, so its route's reference covers it. Freed by px_metrics_sweep()
 * once nothing holds it and the current table no longer routes to
 * (service, revision): counters of a live revision never restart. */
struct px_statref {
	const char *revision;		/* the stat's own copy */
	struct px_cluster *cluster;
	struct px_stat *stat;
};

struct px_route {
	char *name;
	char **hosts;
	size_t nhosts;
	struct px_match *matches;
	size_t nmatches;
	struct px_hdr *hset, *hadd;
	size_t nset, nadd;
	char **hremove;
	size_t nremove;
	uint64_t timeout_ms;		/* whole request; 0: none */
	uint64_t backend_timeout_ms;	/* each attempt; 0: none */
	char *sticky;			/* cookie name or NULL */
	uint64_t sticky_ttl_s;
	struct px_backend *backends;
	size_t nbackends;
	int total_weight;
	struct px_statref *stats;	/* resolved lazily, per revision */
	size_t nstats, stats_cap;
	struct px_rewrite *redirect;	/* RequestRedirect: answered, not forwarded */
	struct px_rewrite *rewrite;	/* URLRewrite: path / Host upstream */
};

/* A compiled listener, shared by every table holding the same definition
 * with the same clusters (refcounted: tables). Holds its clusters. */
struct px_lspec {
	unsigned refs;
	json_t *src;			/* its definition, to recompile it when a cluster changes */
	bool holds;			/* has a reference on each cluster it routes to */
	bool stale;			/* replaced in or removed from the current table */
	struct px_listener *listener;	/* the open listener on it, if any */
	char *name;
	char *address;
	int port;
	enum px_proto proto;
	bool https;			/* protocol HTTPS: PX_HTTP behind TLS */
	struct px_tls *tls;		/* HTTPS: its contexts (proxy_tls.c) */
	struct px_route *routes;
	size_t nroutes;
	struct px_cluster *cluster;	/* TCP */
};

/* A compiled snapshot; requests hold a reference while they run. Its
 * clusters and listener specs (sorted by name) are shared with the tables
 * before and after it when unchanged, so an apply compiles only changes. */
struct px_table {
	unsigned refs;
	int64_t version;
	struct px_cluster **clusters;
	size_t nclusters;
	struct px_lspec **listeners;
	size_t nlisteners;
};

/* A listening socket, kept across snapshots while its name, protocol,
 * address and port stay the same. */
struct px_listener {
	struct proxy_engine *e;
	char *name;
	char *address;
	int port;
	enum px_proto proto;
	struct px_table *table;		/* NULL while open: spec is in e->table; once
					 * removed, a ref on a table holding spec */
	struct px_lspec *spec;
	struct http_server *http;
	struct ssl_ctx_st *tls_ctx;	/* what new connections of http take (NULL: plain) */
	uv_tcp_t *tcp;			/* TCP listener */
	unsigned inflight;		/* HTTP requests / TCP sessions */
	unsigned tcp_conns;
	bool removed;			/* draining */
	struct px_listener *next;
};

struct px_req;
struct splice;

/* A listening socket inherited from the proxy this one replaces
 * (proxy_handoff.c), waiting for the listener that binds the same address. */
struct px_inherited {
	enum px_proto proto;
	char *address;
	int port;
	int fd;
	struct px_inherited *next;
};

struct proxy_engine {
	uv_loop_t *loop;
	struct px_table *table;
	struct px_listener *listeners;
	struct px_endpoint *eps[16384];	/* registry by key hash (10,000 Services: short chains) */
	struct px_stat *stats;
	struct px_stat *misc;		/* 404s and other routeless answers */
	uint64_t stats_swept_ms;	/* uv_now() of the last px_metrics_sweep() */
	struct px_req *free_reqs;	/* at most PX_FREE_REQS */
	unsigned nfree_reqs;
	char *spare_rbufs[8];		/* upstream read buffers of pooled connections */
	unsigned nspare_rbufs;
	uint64_t rng[2];
	unsigned ninflight;		/* HTTP requests + splices */
	unsigned neps;			/* endpoints in the registry */
	struct splice *splices;		/* every live splice (proxy_tcp.c) */
	unsigned nsplices;
	uv_timer_t reaper;		/* deferred frees and callbacks */
	void (*drain_cb)(void *);
	void *drain_arg;
	bool draining;
	bool closing;			/* proxy_engine_free() was called */
	struct px_inherited *inherited;	/* until proxy_handoff_done() */
	bool unbound;			/* a listener of the table could not open: retried */
	uint64_t apply_ns;		/* duration of the last apply */
	unsigned pod_mark;		/* pod-metrics passes (proxy_metrics.c) */
	uint64_t ncluster_compiles;	/* since the start: what applies cost */
	uint64_t nlistener_compiles;
	struct px_tracer *tracer;	/* NULL: tracing off (proxy_trace.c) */
	struct px_tls *tls;		/* compiled TLS lists, shared (proxy_tls.c) */
	struct px_held *held;		/* requests waiting for an endpoint (proxy_hold.c) */
	unsigned nheld;
	uv_timer_t *hold_timer;		/* its own allocation: it may close after e */
	void (*hold_cb)(void *arg, const char *service);
	void *hold_arg;
	uint64_t hold_notified_ms;
	char hold_notified[256];	/* the service last told about */
	char sbuf[64 * 1024];		/* read buffer of every splice */
};

/* proxy_engine.c */
/* Runs the reaper soon: frees drained listeners, calls the drain callback,
 * frees the engine after proxy_engine_free() once everything closed. */
void px_engine_poke(struct proxy_engine *e);
void px_table_unref(struct proxy_engine *e, struct px_table *t);
/* The cluster of t called name, NULL when none (t's clusters are sorted). */
struct px_cluster *px_cluster_find(struct px_table *t, const char *name);
void px_listener_done(struct px_listener *l);
uint64_t px_random(struct proxy_engine *e);
void px_endpoint_unref(struct proxy_engine *e, struct px_endpoint *ep);
/* Drops a reference on c (taken with c->refs++), freeing it with the last. */
void px_cluster_unref(struct proxy_engine *e, struct px_cluster *c);

/* proxy_hold.c — requests held while a Service has no endpoint. */
struct px_held;
/* True when req was held (or answered 503 because the queue is full):
 * route's clusters have no endpoint and a hold time. */
bool px_hold_maybe(struct proxy_engine *e, struct px_listener *l, const struct px_route *r,
    struct http_req *req);
/* After a table commit: held requests whose route has an endpoint now go on. */
void px_hold_retry(struct proxy_engine *e);
void px_hold_expire(uv_timer_t *t);
void px_hold_close(struct proxy_engine *e);

/* proxy_filter.c — RequestRedirect and URLRewrite. */
/* Compiles filter f (type RequestRedirect or URLRewrite) into r, after r's
 * matches; 0 or -EINVAL with *err (caller frees). */
int px_filter_compile(const json_t *f, struct px_route *r, char **err);
void px_filter_free(struct px_rewrite *w);
/* The target the upstream gets under r's URLRewrite, or NULL when unchanged
 * (caller frees). */
char *px_filter_target(const struct px_route *r, const char *target);
/* The Host the upstream gets under r's URLRewrite, or NULL when unchanged. */
const char *px_filter_host(const struct px_route *r);
/* Answers req with r's redirect (r->redirect set); listener_port and https:
 * the listener req arrived on (its scheme and port are kept in Location unless
 * the filter says otherwise). */
void px_filter_redirect(const struct px_route *r, int listener_port, bool https,
    struct http_req *req);

/* proxy_route.c — pure matching and choice, no I/O. */
int px_route_compile(const json_t *j, struct px_table *t, struct px_route *r, char **err);
void px_route_clear(struct px_route *r);
/* First route of ls matching req, or NULL. */
struct px_route *px_route_find(struct px_lspec *ls, const struct http_req *req);
bool px_route_matches(const struct px_route *r, const struct http_req *req);
bool px_host_matches(const char *pattern, const char *host, size_t host_len);
bool px_path_matches(enum px_mtype type, const char *value, size_t len, const char *path);
/* Value of cookie name in req's Cookie headers (copied into out, at most
 * outsz-1 bytes); false when absent. */
bool px_cookie_get(const struct http_req *req, const char *name, char *out, size_t outsz);
/* The backend for the next request: the sticky endpoint's cluster when the
 * cookie names a live one (*sticky set), else smooth weighted round robin.
 * NULL when every weight is 0. */
struct px_cluster *px_route_backend(struct px_route *r, const struct http_req *req,
    struct px_endpoint **sticky);
/* An endpoint of c not in tried[] and not ejected (ejected ones when
 * nothing else is left), by c->lb; NULL when none. */
struct px_endpoint *px_pick_endpoint(struct px_cluster *c, struct px_endpoint *const *tried,
    size_t ntried, uint64_t now);
/* Passive outlier detection: a connect failure or 5xx (fail) or a good
 * answer. Never ejects the last endpoint of c in rotation. */
void px_outlier_report(struct px_cluster *c, struct px_endpoint *ep, bool fail, uint64_t now);
uint32_t px_hash(const char *s, size_t n);

/* proxy_metrics.c */
#define PX_STAT_SWEEP_MS	10000	/* at most one sweep per table commit in this */
/* The stat of (service, route, revision), created when missing, with a
 * reference the caller gives back with px_stat_put(). */
struct px_stat *px_stat_get(struct proxy_engine *e, const char *service, const char *route,
    const char *revision);
void px_stat_put(struct px_stat *s);
/* The stat of (route, cluster's service, revision), cached in the route
 * (which holds the reference; px_route_clear() gives it back). */
struct px_stat *px_route_stat(struct proxy_engine *e, struct px_route *r,
    struct px_cluster *c, const char *revision);
/* Frees the stats nothing holds whose (service, revision) the current
 * table does not route to; cost: the table's endpoints plus the stats.
 * px_metrics_sweep_maybe() does it at most every PX_STAT_SWEEP_MS. */
void px_metrics_sweep(struct proxy_engine *e);
void px_metrics_sweep_maybe(struct proxy_engine *e);
void px_stat_request(struct px_stat *s, int status, uint64_t ns);
void px_metrics_render(struct proxy_engine *e, struct buf *out);
void px_metrics_free(struct proxy_engine *e);

/* proxy_tls.c */
/* The contexts of a listener's "tls" list (borrowed), shared with every
 * spec holding an equal list: a reference the caller gives back with
 * px_tls_put(). NULL with *err (caller frees) when a certificate or key
 * does not load. */
struct px_tls *px_tls_get(struct proxy_engine *e, const json_t *list, char **err);
void px_tls_put(struct proxy_engine *e, struct px_tls *t);
/* The context new connections start on (SNI may switch them); NULL for NULL. */
struct ssl_ctx_st *px_tls_ctx(const struct px_tls *t);

/* proxy_tcp.c */
/* Listens for l: on fd when >= 0 (an inherited listening socket, taken
 * over in every case), else on a socket bound to l's address. */
int px_tcp_listen(struct px_listener *l, int fd);
void px_tcp_close_all(struct proxy_engine *e);
void px_tcp_unlisten(struct px_listener *l);
/* Splices two connected sockets (fds taken over) both ways until both
 * sides are done; head/rest are sent first to the client / upstream side. */
int px_splice_fds(struct proxy_engine *e, struct px_listener *l, struct px_stat *st,
    uv_os_sock_t client, uv_os_sock_t upstream, const uv_buf_t *to_client, unsigned nc,
    const char *to_upstream, size_t nu);

#endif
