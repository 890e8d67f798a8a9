/* obs_metrics.h — Prometheus exposition for every V6 page: the writer
 * (families, HELP/TYPE, label escaping, histograms; text 0.0.4 or
 * OpenMetrics 1.0, flushed in pieces so a page is never one big string),
 * V6's own instruments (API requests, store commits, work queues), the
 * kube-state-metrics / Argo Rollouts mapping of objects, the node_exporter
 * and cAdvisor readings, and the server's /metrics pages that put them
 * together. The proxy renders its page with the same writer. */
#ifndef V6_OBS_METRICS_H
#define V6_OBS_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct http_req;

#define OM_CONTENT_TYPE_TEXT	"text/plain; version=0.0.4; charset=utf-8"
#define OM_CONTENT_TYPE_OPENMETRICS \
	"application/openmetrics-text; version=1.0.0; charset=utf-8"

enum om_type { OM_COUNTER, OM_GAUGE, OM_HISTOGRAM };

/* Where a page goes: out grows until flush_at bytes, then fn(arg, data, len)
 * takes it (a stream write) and out is emptied; without fn, out keeps the
 * whole page (the proxy, tests). fn returns 0 or a negative errno, which
 * sticks in err and stops further output. */
struct om_writer {
	struct buf *out;
	bool openmetrics;
	size_t flush_at;
	int (*fn)(void *arg, const char *data, size_t len);
	void *arg;
	int err;
	const char *family;	/* the family being written (OpenMetrics naming) */
	uint64_t bytes;		/* bytes written so far */
};

/* A histogram with fixed upper bounds (le[n - 1] is the largest finite
 * one; +Inf is implicit). buckets has n + 1 slots, not cumulative. */
struct om_hist {
	const double *le;
	size_t n;
	uint64_t *buckets;
	double sum;
	uint64_t count;
};

/* obs_metrics.c */
/* True when an Accept header asks for OpenMetrics text. */
bool om_accepts_openmetrics(const char *accept);
void om_writer_init(struct om_writer *w, struct buf *out, bool openmetrics);
/* "# HELP" and "# TYPE" of a family. name is the sample name; a counter's
 * OpenMetrics family drops its "_total". */
void om_family(struct om_writer *w, const char *name, enum om_type type, const char *help);
/* One sample: labels is NULL or a NULL-terminated list of name, value
 * pairs (values escaped here; a NULL value skips the pair). */
void om_sample(struct om_writer *w, const char *name, const char *const *labels, double v);
/* The _bucket / _sum / _count lines of h under the family base name. */
void om_histogram(struct om_writer *w, const char *name, const char *const *labels,
    const struct om_hist *h);
void om_hist_observe(struct om_hist *h, double v);
/* "# EOF" for OpenMetrics; flushes what is left. Returns w->err. */
int om_finish(struct om_writer *w);
/* Appends v escaped as a label value (\\, \", \n). */
void om_escape(struct buf *out, const char *v);

/* ---- V6's own instruments (obs_metrics_self.c), on the loop thread ----- */
/* An API request finished: verb ("GET", "LIST", "WATCH", "POST", ... as the
 * apiserver names them), resource ("pods", "" for non-resource paths). */
void obs_api_request(const char *verb, const char *resource, int code, double seconds);
/* A watch of kind (group "" for core) opened (+1) or ended (-1). */
void obs_api_watchers(const char *group, const char *version, const char *kind, int delta);
/* A store commit took seconds (fsync included); one fsync call took seconds. */
void obs_store_commit(double seconds);
void obs_store_fsync(double seconds);
/* A work queue: name is its controller; events as client-go counts them. */
struct obs_wq;
struct obs_wq *obs_wq_register(const char *name);
void obs_wq_unregister(struct obs_wq *q);
void obs_wq_add(struct obs_wq *q);
void obs_wq_depth(struct obs_wq *q, size_t depth);
void obs_wq_got(struct obs_wq *q, double queued_s);
void obs_wq_done(struct obs_wq *q, double work_s, bool failed);
void obs_wq_retry(struct obs_wq *q);
/* Writes every instrument above. store_db_bytes / journal_rows < 0: not shown. */
/* v6_certificate_expiration_timestamp_seconds{name}: name is one of V6's
 * certificates ("ca", "server", "admin"; at most 8 names). */
void obs_cert_expiry(const char *name, double unix_seconds);
void obs_self_write(struct om_writer *w, int64_t db_bytes, int64_t journal_rows);

/* ---- objects as kube-state-metrics and Argo Rollouts name them ---------- */
/* (obs_metrics_ksm.c) A kind's families, each written for every object of
 * items (a JSON array of that kind's objects), family by family. */
struct ksm_kind;
const struct ksm_kind *ksm_kind_find(const char *kind);
/* The store resource of a ksm kind ("apps/deployments"). */
const char *ksm_kind_resource(const struct ksm_kind *k);
/* The kinds in page order, NULL-terminated. */
const struct ksm_kind *const *ksm_kinds(void);
void ksm_write(struct om_writer *w, const struct ksm_kind *k, const json_t *items);
/* The same one family at a time (f < ksm_kind_nfamilies(k)), for a page
 * that waits for its client between families. */
size_t ksm_kind_nfamilies(const struct ksm_kind *k);
void ksm_write_family(struct om_writer *w, const struct ksm_kind *k, size_t f,
    const json_t *items);

/* ---- the host: node_exporter and cAdvisor names (obs_metrics_host.c) ---- */
/* node_exporter's families from /proc and statvfs(data_dir). proc is "/proc"
 * (tests point it elsewhere). */
void host_write_node(struct om_writer *w, const char *proc, const char *data_dir);
/* The machine's CPU time spent busy so far (all CPUs, ns) and its memory in
 * use (MemTotal - MemAvailable): what metrics.k8s.io's NodeMetrics report.
 * Returns 0 or -ENOENT. */
int host_usage_read(const char *proc, uint64_t *busy_ns, uint64_t *memory_bytes);
/* One container's cgroups, as the runtime made them (NULL: not there). */
struct host_ctr {
	const char *ns, *pod, *container, *image;
	const char *cg_cpuacct, *cg_cpu, *cg_memory;
	/* Without cgroups (not root): the runtime's reading of the main
	 * process from /proc, when have_usage. */
	bool have_usage;
	uint64_t cpu_ns, memory_bytes;
	int pid;		/* its main process, 0: unknown (the cgroups say) */
};
/* cAdvisor's families for n containers (host_write_ctr_io's included). */
void host_write_containers(struct om_writer *w, const struct host_ctr *c, size_t n);

/* obs_metrics_ctr.c */
/* cAdvisor's network families (per interface of each pod's own network
 * namespace, once per pod, container "POD"; none for a pod on the host's
 * network) and filesystem ones (blkio bytes and ops per device, the writable
 * layer's bytes) of n containers. proc is "/proc" (tests point it at a
 * tree of their own: PID/cgroup, PID/ns/net, PID/net/dev, PID/mountinfo,
 * self/mountinfo). */
void host_write_ctr_io(struct om_writer *w, const struct host_ctr *c, size_t n,
    const char *proc);
/* Adds linux.resources.blockIO to an OCI config's resources: read and write
 * throttle rules of 4 EiB/s (never reached) on the disk holding path. A
 * cgroup v1 kernel (6.x) counts a blkio group's bytes in
 * blkio.throttle.io_service_bytes only for disks it has a rule for, so
 * without one container_fs_{reads,writes}_bytes_total stay 0. Nothing on
 * cgroup v2 (io.stat counts anyway) or for a path not on a block device. */
void obs_blkio_accounting(json_t *resources, const char *path);

/* ---- the server's pages (obs_metrics_page.c) and discovery (obs_sd.c) --- */
struct api;
struct node;
struct proxy_feed;
struct obs_config {
	struct api *api;
	struct node *const *node;	/* the server's, NULL while the node part is off */
	struct proxy_feed *const *feed;	/* likewise for the proxy part */
	const char *data_dir;		/* its filesystem is node_filesystem_* */
	const char *host;		/* the API's listen host ("127.0.0.1", "::1") */
};
/* Serves /metrics (V6 itself and the objects), /metrics/cadvisor (the
 * containers), /metrics/node (the machine) and /v6/sd/prometheus (http_sd
 * targets) on the API's port. cfg's pointers must outlive the server. */
void obs_pages_start(const struct obs_config *cfg);
/* The http_sd target list (a new JSON array): V6's pages, the proxy's
 * admin /metrics, every pod annotated prometheus.io/scrape "true". self is
 * "HOST:PORT" of the API (self_https: its pages are HTTPS); proxy_admin may
 * be NULL. */
json_t *obs_sd_targets(const json_t *pods, const char *self, bool self_https,
    const char *proxy_admin);
void obs_sd_serve(const struct obs_config *cfg, struct http_req *req);

#endif
