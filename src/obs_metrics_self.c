/* obs_metrics_self.c — V6's own instruments, named as the apiserver,
 * client-go's workqueue and controller-runtime name theirs: API requests by
 * verb / resource / code with a latency histogram, watches, store commit and
 * fsync latency, work queue depth, adds, waits and work times, reconcile
 * errors. Their owners (api_server.c, store.c, ctrl_workqueue.c) update them
 * on the loop thread; obs_self_write renders them. One set per process. */
#include "obs_metrics.h"

#include <stdlib.h>
#include <string.h>

/* apiserver_request_duration_seconds' bounds, trimmed to a slim set. */
static const double api_le[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
	10, 60 };
/* etcd's disk histograms (wal_fsync, backend_commit): 1 ms doubling. */
static const double disk_le[] = { 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032,
	0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192 };
/* client-go's workqueue histograms: 10 ns to 10 s by decades. */
static const double wq_le[] = { 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10 };

#define API_NB (ARRAY_SIZE(api_le) + 1)
#define DISK_NB (ARRAY_SIZE(disk_le) + 1)
#define WQ_NB (ARRAY_SIZE(wq_le) + 1)

struct api_count {
	char *verb, *resource;
	int code;
	uint64_t n;
};

struct api_lat {
	char *verb, *resource;
	uint64_t b[API_NB];
	struct om_hist h;
};

struct watchers {
	char *group, *version, *kind;
	int64_t n;
};

struct obs_wq {
	char *name;
	int refs;
	size_t depth;
	uint64_t adds, retries, errors;
	uint64_t qb[WQ_NB], wb[WQ_NB];
	struct om_hist queued, work;
	struct obs_wq *next;
};

static struct {
	struct api_count *counts;
	size_t ncounts, capcounts;
	struct api_lat *lats;
	size_t nlats, caplats;
	struct watchers *watch;
	size_t nwatch, capwatch;
	int64_t longrunning;
	uint64_t commit_b[DISK_NB], fsync_b[DISK_NB];
	struct om_hist commit, fsync;
	struct obs_wq *wqs;
} self = {
	.commit = { disk_le, ARRAY_SIZE(disk_le), self.commit_b, 0, 0 },
	.fsync = { disk_le, ARRAY_SIZE(disk_le), self.fsync_b, 0, 0 },
};

#define GROW(arr, n, cap) do { \
	if ((n) == (cap)) { \
		(cap) = (cap) ? (cap) * 2 : 16; \
		(arr) = xrealloc((arr), (cap) * sizeof(*(arr))); \
	} \
} while (0)

void
obs_api_request(const char *verb, const char *resource, int code, double seconds)
{
	size_t i;

	for (i = 0; i < self.ncounts; i++)
		if (self.counts[i].code == code && strcmp(self.counts[i].verb, verb) == 0 &&
		    strcmp(self.counts[i].resource, resource) == 0)
			break;
	if (i == self.ncounts) {
		GROW(self.counts, self.ncounts, self.capcounts);
		self.counts[self.ncounts++] = (struct api_count){ xstrdup(verb),
			xstrdup(resource), code, 0 };
	}
	self.counts[i].n++;
	if (strcmp(verb, "WATCH") == 0)
		return;		/* as the apiserver: a watch's duration is its life */
	for (i = 0; i < self.nlats; i++)
		if (strcmp(self.lats[i].verb, verb) == 0 &&
		    strcmp(self.lats[i].resource, resource) == 0)
			break;
	if (i == self.nlats) {
		GROW(self.lats, self.nlats, self.caplats);
		struct api_lat *l = &self.lats[self.nlats++];
		memset(l, 0, sizeof *l);
		l->verb = xstrdup(verb);
		l->resource = xstrdup(resource);
	}
	/* the array may have moved: point every histogram at its own buckets
	 * (write_api reads them all) */
	for (size_t j = 0; j < self.nlats; j++)
		self.lats[j].h.buckets = self.lats[j].b;
	struct api_lat *l = &self.lats[i];
	l->h.le = api_le;
	l->h.n = ARRAY_SIZE(api_le);
	om_hist_observe(&l->h, seconds);
}

void
obs_api_watchers(const char *group, const char *version, const char *kind, int delta)
{
	size_t i;

	for (i = 0; i < self.nwatch; i++)
		if (strcmp(self.watch[i].group, group) == 0 &&
		    strcmp(self.watch[i].version, version) == 0 &&
		    strcmp(self.watch[i].kind, kind) == 0)
			break;
	if (i == self.nwatch) {
		GROW(self.watch, self.nwatch, self.capwatch);
		self.watch[self.nwatch++] = (struct watchers){ xstrdup(group), xstrdup(version),
			xstrdup(kind), 0 };
	}
	self.watch[i].n += delta;
	self.longrunning += delta;
}

void
obs_store_commit(double seconds)
{
	om_hist_observe(&self.commit, seconds);
}

void
obs_store_fsync(double seconds)
{
	om_hist_observe(&self.fsync, seconds);
}

struct obs_wq *
obs_wq_register(const char *name)
{
	struct obs_wq *q;

	for (q = self.wqs; q; q = q->next)
		if (strcmp(q->name, name) == 0) {
			q->refs++;
			return q;
		}
	q = xcalloc(1, sizeof *q);
	q->name = xstrdup(name);
	q->refs = 1;
	q->queued = (struct om_hist){ wq_le, ARRAY_SIZE(wq_le), q->qb, 0, 0 };
	q->work = (struct om_hist){ wq_le, ARRAY_SIZE(wq_le), q->wb, 0, 0 };
	q->next = self.wqs;
	self.wqs = q;
	return q;
}

/* The figures stay (counters never go back) while another queue of that
 * name may come; the depth of a closed queue is 0. */
void
obs_wq_unregister(struct obs_wq *q)
{
	if (q && --q->refs == 0)
		q->depth = 0;
}

void
obs_wq_add(struct obs_wq *q)
{
	q->adds++;
}

void
obs_wq_depth(struct obs_wq *q, size_t depth)
{
	q->depth = depth;
}

void
obs_wq_got(struct obs_wq *q, double queued_s)
{
	om_hist_observe(&q->queued, queued_s);
}

void
obs_wq_done(struct obs_wq *q, double work_s, bool failed)
{
	om_hist_observe(&q->work, work_s);
	if (failed)
		q->errors++;
}

void
obs_wq_retry(struct obs_wq *q)
{
	q->retries++;
}

/* ---- rendering ---------------------------------------------------------- */

static void
write_api(struct om_writer *w)
{
	char code[16];
	size_t i;

	om_family(w, "apiserver_request_total", OM_COUNTER,
	    "Counter of apiserver requests broken out for each verb, resource and "
	    "HTTP response code.");
	for (i = 0; i < self.ncounts; i++) {
		const struct api_count *c = &self.counts[i];
		snprintf(code, sizeof code, "%d", c->code);
		om_sample(w, "apiserver_request_total", (const char *const[]){ "verb", c->verb,
		    "resource", c->resource, "code", code, NULL }, (double)c->n);
	}
	om_family(w, "apiserver_request_duration_seconds", OM_HISTOGRAM,
	    "Response latency distribution in seconds for each verb and resource "
	    "(watches excluded).");
	for (i = 0; i < self.nlats; i++)
		om_histogram(w, "apiserver_request_duration_seconds", (const char *const[]){
		    "verb", self.lats[i].verb, "resource", self.lats[i].resource, NULL },
		    &self.lats[i].h);
	om_family(w, "apiserver_registered_watchers", OM_GAUGE,
	    "Number of currently registered watchers for a given resource.");
	for (i = 0; i < self.nwatch; i++)
		om_sample(w, "apiserver_registered_watchers", (const char *const[]){ "group",
		    self.watch[i].group, "version", self.watch[i].version, "kind",
		    self.watch[i].kind, NULL }, (double)self.watch[i].n);
	om_family(w, "apiserver_longrunning_requests", OM_GAUGE,
	    "Gauge of all active long-running apiserver requests (watches).");
	om_sample(w, "apiserver_longrunning_requests",
	    (const char *const[]){ "verb", "WATCH", NULL }, (double)self.longrunning);
}

static void
write_store(struct om_writer *w, int64_t db_bytes, int64_t journal_rows)
{
	om_family(w, "v6_store_commit_duration_seconds", OM_HISTOGRAM,
	    "Latency of the store's group commits (SQLite COMMIT, fsync included).");
	om_histogram(w, "v6_store_commit_duration_seconds", NULL, &self.commit);
	om_family(w, "v6_store_fsync_duration_seconds", OM_HISTOGRAM,
	    "Latency of the fsync calls SQLite makes for the store.");
	om_histogram(w, "v6_store_fsync_duration_seconds", NULL, &self.fsync);
	if (db_bytes >= 0) {
		om_family(w, "v6_store_db_bytes", OM_GAUGE,
		    "Size of the store's database file (pages in use times page size).");
		om_sample(w, "v6_store_db_bytes", NULL, (double)db_bytes);
	}
	if (journal_rows >= 0) {
		om_family(w, "v6_store_journal_rows", OM_GAUGE,
		    "Change events kept in the store's journal for resuming watches.");
		om_sample(w, "v6_store_journal_rows", NULL, (double)journal_rows);
	}
}

static void
write_wq(struct om_writer *w)
{
	struct obs_wq *q;

	om_family(w, "workqueue_depth", OM_GAUGE, "Current depth of workqueue");
	for (q = self.wqs; q; q = q->next)
		om_sample(w, "workqueue_depth", (const char *const[]){ "name", q->name, NULL },
		    (double)q->depth);
	om_family(w, "workqueue_adds_total", OM_COUNTER,
	    "Total number of adds handled by workqueue");
	for (q = self.wqs; q; q = q->next)
		om_sample(w, "workqueue_adds_total", (const char *const[]){ "name", q->name,
		    NULL }, (double)q->adds);
	om_family(w, "workqueue_retries_total", OM_COUNTER,
	    "Total number of retries handled by workqueue");
	for (q = self.wqs; q; q = q->next)
		om_sample(w, "workqueue_retries_total", (const char *const[]){ "name", q->name,
		    NULL }, (double)q->retries);
	om_family(w, "workqueue_queue_duration_seconds", OM_HISTOGRAM,
	    "How long in seconds an item stays in workqueue before being requested.");
	for (q = self.wqs; q; q = q->next)
		om_histogram(w, "workqueue_queue_duration_seconds", (const char *const[]){
		    "name", q->name, NULL }, &q->queued);
	om_family(w, "workqueue_work_duration_seconds", OM_HISTOGRAM,
	    "How long in seconds processing an item from workqueue takes.");
	for (q = self.wqs; q; q = q->next)
		om_histogram(w, "workqueue_work_duration_seconds", (const char *const[]){
		    "name", q->name, NULL }, &q->work);
	om_family(w, "v6_controller_reconcile_errors_total", OM_COUNTER,
	    "Reconciles of a controller that failed (and were requeued rate-limited).");
	for (q = self.wqs; q; q = q->next)
		om_sample(w, "v6_controller_reconcile_errors_total", (const char *const[]){
		    "controller", q->name, NULL }, (double)q->errors);
}

static struct {
	const char *name;	/* static strings (pki_name) */
	double at;
} certs[8];

void
obs_cert_expiry(const char *name, double unix_seconds)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(certs) && certs[i].name; i++)
		if (strcmp(certs[i].name, name) == 0)
			break;
	if (i == ARRAY_SIZE(certs))
		return;
	certs[i].name = name;
	certs[i].at = unix_seconds;
}

static void
write_certs(struct om_writer *w)
{
	if (certs[0].name == NULL)
		return;
	om_family(w, "v6_certificate_expiration_timestamp_seconds", OM_GAUGE,
	    "NotAfter of V6's certificates in DATA/pki (renewed with a third of their life left)");
	for (size_t i = 0; i < ARRAY_SIZE(certs) && certs[i].name; i++) {
		const char *labels[] = { "name", certs[i].name, NULL };
		om_sample(w, "v6_certificate_expiration_timestamp_seconds", labels, certs[i].at);
	}
}

void
obs_self_write(struct om_writer *w, int64_t db_bytes, int64_t journal_rows)
{
	write_api(w);
	write_store(w, db_bytes, journal_rows);
	write_wq(w);
	write_certs(w);
}
