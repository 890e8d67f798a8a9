/* proxy_metrics.c — the engine's counters and latency histograms, one set
 * per (service, route, revision), kept while the table routes to the
 * revision or a route, splice or request still holds them (then swept, so a
 * rollout a minute does not grow the proxy or its scrapers); rendered as
 * Prometheus text for /metrics and summed by proxy_metrics_query() for the
 * controllers. The request path updates them through a pointer resolved
 * once per route and revision: no lookup, no allocation per request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs_metrics.h"
#include "proxy_int.h"

/* Upper bounds in seconds; the last bucket is +Inf. */
static const double bucket_le[PX_NBUCKETS - 1] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

static const char *const err_kind[PX_E_N] = { "connect", "reset", "timeout" };

static bool
str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

struct px_stat *
px_stat_get(struct proxy_engine *e, const char *service, const char *route,
    const char *revision)
{
	struct px_stat *s;

	for (s = e->stats; s; s = s->next)
		if (str_eq(s->service, service) && str_eq(s->route, route) &&
		    str_eq(s->revision, revision)) {
			s->refs++;
			return s;
		}
	s = xcalloc(1, sizeof(*s));
	s->refs = 1;
	s->service = xstrdup(service ? service : "");
	s->route = xstrdup(route ? route : "");
	s->revision = xstrdup(revision ? revision : "");
	s->next = e->stats;
	e->stats = s;
	return s;
}

struct px_stat *
px_route_stat(struct proxy_engine *e, struct px_route *r, struct px_cluster *c,
    const char *revision)
{
	struct px_statref *ref;
	size_t i;

	if (revision == NULL)
		revision = "";
	for (i = 0; i < r->nstats; i++) {
		ref = &r->stats[i];
		if (ref->cluster == c && strcmp(ref->revision, revision) == 0)
			return ref->stat;
	}
	if (r->nstats == r->stats_cap) {
		r->stats_cap = r->stats_cap ? r->stats_cap * 2 : 4;
		r->stats = xrealloc(r->stats, r->stats_cap * sizeof(*r->stats));
	}
	ref = &r->stats[r->nstats++];
	ref->cluster = c;
	ref->stat = px_stat_get(e, c ? c->service : "", r->name, revision);
	ref->revision = ref->stat->revision;
	return ref->stat;
}

void
px_stat_put(struct px_stat *s)
{
	if (s == NULL)
		return;
	BUG_ON(s->refs == 0);
	s->refs--;
}

/* ---- the sweep ------------------------------------------------------------ */

/* The (service, revision) pairs of a table: open addressing on pointers
 * into its clusters and endpoints, valid while the table is. */
struct pairs {
	const char **svc, **rev;
	size_t mask;
};

static size_t
pair_slot(const struct pairs *p, const char *service, const char *revision)
{
	return (px_hash(service, strlen(service)) * 31u +
	    px_hash(revision, strlen(revision))) & p->mask;
}

static bool
pairs_has(const struct pairs *p, const char *service, const char *revision)
{
	for (size_t i = pair_slot(p, service, revision); p->svc[i]; i = (i + 1) & p->mask)
		if (strcmp(p->svc[i], service) == 0 && strcmp(p->rev[i], revision) == 0)
			return true;
	return false;
}

static void
pairs_add(struct pairs *p, const char *service, const char *revision)
{
	size_t i = pair_slot(p, service, revision);

	for (; p->svc[i]; i = (i + 1) & p->mask)
		if (strcmp(p->svc[i], service) == 0 && strcmp(p->rev[i], revision) == 0)
			return;
	p->svc[i] = service;
	p->rev[i] = revision;
}

/* Every cluster's service with "" (answers without an endpoint) and with
 * each of its endpoints' revisions. */
static void
pairs_of_table(struct pairs *p, const struct px_table *t)
{
	size_t n = 1;

	for (size_t i = 0; t && i < t->nclusters; i++)
		n += 1 + t->clusters[i]->neps;
	for (p->mask = 1; p->mask < 2 * n; p->mask <<= 1)
		;
	p->svc = xcalloc(p->mask, sizeof(*p->svc));
	p->rev = xcalloc(p->mask, sizeof(*p->rev));
	p->mask--;
	for (size_t i = 0; t && i < t->nclusters; i++) {
		const struct px_cluster *c = t->clusters[i];
		pairs_add(p, c->service ? c->service : "", "");
		for (size_t k = 0; k < c->neps; k++)
			pairs_add(p, c->service ? c->service : "", c->eps[k]->revision);
	}
}

void
px_metrics_sweep(struct proxy_engine *e)
{
	struct px_stat **pp, *s;
	struct pairs p;

	e->stats_swept_ms = uv_now(e->loop);
	for (s = e->stats; s && s->refs > 0; s = s->next)
		;
	if (s == NULL)
		return;		/* all held: nothing to look up */
	pairs_of_table(&p, e->table);
	for (pp = &e->stats; (s = *pp) != NULL;) {
		if (s->refs > 0 || pairs_has(&p, s->service, s->revision)) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		free(s->service);
		free(s->route);
		free(s->revision);
		free(s);
	}
	free(p.svc);
	free(p.rev);
}

void
px_metrics_sweep_maybe(struct proxy_engine *e)
{
	if (uv_now(e->loop) - e->stats_swept_ms >= PX_STAT_SWEEP_MS)
		px_metrics_sweep(e);
}

/* ---- the request path ------------------------------------------------------ */

void
px_stat_request(struct px_stat *s, int status, uint64_t ns)
{
	double sec = (double)ns / 1e9;
	size_t b = 0;

	s->requests[status >= 100 && status < 600 ? status / 100 : 0]++;
	while (b < PX_NBUCKETS - 1 && sec > bucket_le[b])
		b++;
	s->buckets[b]++;
	s->count++;
	s->sum_s += sec;
}

/* ---- Prometheus text (obs_metrics.c's writer) ------------------------- */

static const double *const proxy_le = bucket_le;

static void
render_requests(struct proxy_engine *e, struct om_writer *w)
{
	static const char *const cls[6] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
	struct px_stat *s;
	int k;

	om_family(w, "v6_proxy_requests_total", OM_COUNTER,
	    "Requests answered, by Service, route, revision and status class.");
	for (s = e->stats; s; s = s->next)
		for (k = 0; k < 6; k++)
			if (s->requests[k])
				om_sample(w, "v6_proxy_requests_total", (const char *const[]){
				    "service", s->service, "route", s->route, "revision",
				    s->revision, "code", cls[k], NULL }, (double)s->requests[k]);
}

static void
render_latency(struct proxy_engine *e, struct om_writer *w)
{
	struct px_stat *s;

	om_family(w, "v6_proxy_request_duration_seconds", OM_HISTOGRAM,
	    "Time from a request's arrival to the end of its response.");
	for (s = e->stats; s; s = s->next) {
		if (s->count == 0)
			continue;
		struct om_hist h = { proxy_le, PX_NBUCKETS - 1, s->buckets, s->sum_s, s->count };
		om_histogram(w, "v6_proxy_request_duration_seconds", (const char *const[]){
		    "service", s->service, "route", s->route, "revision", s->revision, NULL }, &h);
	}
}

/* Errors and bytes have no route label: summed over the routes of a
 * (service, revision) when that pair is first met in the list. */
static void
render_by_service(struct proxy_engine *e, struct om_writer *w, bool bytes)
{
	struct px_stat *s, *t;
	uint64_t errs[PX_E_N], in, outb;
	bool seen;
	int k;

	if (bytes)
		om_family(w, "v6_proxy_bytes_total", OM_COUNTER,
		    "Body bytes from clients (in) and to clients (out).");
	else
		om_family(w, "v6_proxy_upstream_errors_total", OM_COUNTER,
		    "Upstream attempts that failed, by kind (connect, reset, timeout).");
	for (s = e->stats; s; s = s->next) {
		for (seen = false, t = e->stats; t != s; t = t->next)
			if (strcmp(t->service, s->service) == 0 &&
			    strcmp(t->revision, s->revision) == 0)
				seen = true;
		if (seen || s->service[0] == '\0')
			continue;
		memset(errs, 0, sizeof(errs));
		in = outb = 0;
		for (t = s; t; t = t->next) {
			if (strcmp(t->service, s->service) != 0 ||
			    strcmp(t->revision, s->revision) != 0)
				continue;
			for (k = 0; k < PX_E_N; k++)
				errs[k] += t->errors[k];
			in += t->bytes_in;
			outb += t->bytes_out;
		}
		for (k = 0; !bytes && k < PX_E_N; k++)
			if (errs[k])
				om_sample(w, "v6_proxy_upstream_errors_total", (const char *const[]){
				    "service", s->service, "revision", s->revision, "kind",
				    err_kind[k], NULL }, (double)errs[k]);
		if (!bytes)
			continue;
		om_sample(w, "v6_proxy_bytes_total", (const char *const[]){ "service",
		    s->service, "revision", s->revision, "direction", "in", NULL }, (double)in);
		om_sample(w, "v6_proxy_bytes_total", (const char *const[]){ "service",
		    s->service, "revision", s->revision, "direction", "out", NULL },
		    (double)outb);
	}
}

/* Per pod, for the autoscaler (custom.metrics.k8s.io) and for a Prometheus
 * adapter: every endpoint of the current table that names a pod, once
 * (a pod behind several Services answers for all of them), labelled as
 * kube-state-metrics labels pods (namespace, pod). hist: the latency
 * family, else the requests. */
static void
render_pods(struct proxy_engine *e, struct om_writer *w, bool hist)
{
	static const char *const cls[6] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
	const char *fam = hist ? "v6_proxy_pod_request_duration_seconds" :
	    "v6_proxy_pod_requests_total";
	unsigned mark = ++e->pod_mark;
	char ns[256];

	om_family(w, fam, hist ? OM_HISTOGRAM : OM_COUNTER, hist ?
	    "Time from a request's arrival to the end of its response, by the pod that answered." :
	    "Requests answered by each pod, by status class.");
	for (size_t i = 0; e->table && i < e->table->nclusters; i++) {
		struct px_cluster *c = e->table->clusters[i];
		const char *slash = c->service ? strchr(c->service, '/') : NULL;
		if (slash == NULL || (size_t)(slash - c->service) >= sizeof(ns))
			continue;
		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - c->service), c->service);
		for (size_t k = 0; k < c->neps; k++) {
			struct px_endpoint *ep = c->eps[k];
			struct px_stat *st = &ep->pod_st;
			if (ep->pod[0] == '\0' || ep->mark == mark)
				continue;
			ep->mark = mark;
			const char *const labels[] = { "namespace", ns, "pod", ep->pod, NULL };
			if (hist) {
				struct om_hist h = { proxy_le, PX_NBUCKETS - 1, st->buckets, st->sum_s,
					st->count };
				om_histogram(w, fam, labels, &h);
				continue;
			}
			for (int k2 = 0; k2 < 6; k2++)
				if (st->requests[k2] || k2 == 2)	/* 2xx always: a pod at 0 req/s */
					om_sample(w, fam, (const char *const[]){ "namespace", ns, "pod",
					    ep->pod, "code", cls[k2], NULL }, (double)st->requests[k2]);
		}
	}
}

static void
render_listeners(struct proxy_engine *e, struct om_writer *w)
{
	struct px_listener *l;
	unsigned n;

	om_family(w, "v6_proxy_active_connections", OM_GAUGE,
	    "Client connections open now, by listener.");
	for (l = e->listeners; l; l = l->next) {
		n = l->proto == PX_HTTP ? (l->http ? http_server_connections(l->http) : 0) :
		    l->tcp_conns;
		om_sample(w, "v6_proxy_active_connections", (const char *const[]){ "listener",
		    l->name, NULL }, n);
	}
}

void
px_metrics_render(struct proxy_engine *e, struct buf *out)
{
	struct om_writer w;

	om_writer_init(&w, out, false);
	render_requests(e, &w);
	render_latency(e, &w);
	render_by_service(e, &w, false);
	render_by_service(e, &w, true);
	render_pods(e, &w, false);
	render_pods(e, &w, true);
	render_listeners(e, &w);
	om_family(&w, "v6_proxy_held_requests", OM_GAUGE,
	    "Requests waiting for an endpoint of a Service at zero (proxy_hold.c).");
	om_sample(&w, "v6_proxy_held_requests", NULL, e->nheld);
}

void
px_metrics_free(struct proxy_engine *e)
{
	struct px_stat *s, *next;

	for (s = e->stats; s; s = next) {
		next = s->next;
		free(s->service);
		free(s->route);
		free(s->revision);
		free(s);
	}
	e->stats = NULL;
}

/* ---- the controllers' view ---------------------------------------------- */

/* Latency below which a fraction q of the requests finished, interpolated
 * linearly inside its bucket. */
static double
quantile_ms(const uint64_t *buckets, uint64_t count, double q)
{
	double want = q * (double)count, lo = 0, hi;
	uint64_t cum = 0;
	int b;

	if (count == 0)
		return 0;
	for (b = 0; b < PX_NBUCKETS; b++) {
		hi = b < PX_NBUCKETS - 1 ? bucket_le[b] : bucket_le[PX_NBUCKETS - 2] * 2;
		if ((double)(cum + buckets[b]) >= want && buckets[b] > 0)
			return 1000 * (lo + (hi - lo) * (want - (double)cum) / (double)buckets[b]);
		cum += buckets[b];
		lo = hi;
	}
	return 1000 * lo;
}

int
proxy_metrics_query(struct proxy_engine *e, const char *service, const char *revision,
    struct proxy_stats *out)
{
	struct px_stat *s;
	double sum = 0;
	int k, found = 0;

	memset(out, 0, sizeof(*out));
	for (s = e->stats; s; s = s->next) {
		if (service && strcmp(s->service, service) != 0)
			continue;
		if (revision && strcmp(s->revision, revision) != 0)
			continue;
		found = 1;
		for (k = 0; k < 6; k++)
			out->requests += s->requests[k];
		out->status_2xx += s->requests[2];
		out->status_3xx += s->requests[3];
		out->status_4xx += s->requests[4];
		out->status_5xx += s->requests[5];
		for (k = 0; k < PX_E_N; k++)
			out->upstream_errors += s->errors[k];
		for (k = 0; k < PX_NBUCKETS; k++)
			out->buckets[k] += s->buckets[k];
		out->bytes_in += s->bytes_in;
		out->bytes_out += s->bytes_out;
		sum += s->sum_s;
		out->timed += s->count;
	}
	out->errors = out->status_5xx;
	out->avg_ms = out->timed ? 1000 * sum / (double)out->timed : 0;
	out->p50_ms = quantile_ms(out->buckets, out->timed, 0.50);
	out->p99_ms = quantile_ms(out->buckets, out->timed, 0.99);
	return found ? 0 : -ENOENT;
}

double
proxy_stats_quantile(const struct proxy_stats *now, const struct proxy_stats *before,
    double q)
{
	uint64_t b[PX_NBUCKETS], n = 0;

	for (int k = 0; k < PX_NBUCKETS; k++) {
		b[k] = now->buckets[k] - (before ? before->buckets[k] : 0);
		n += b[k];
	}
	return quantile_ms(b, n, q);
}
