/* obs_metrics_page.c — the server's Prometheus pages on the API port, split
 * as the kubelet splits its own: /metrics (V6's instruments and every
 * object as kube-state-metrics / Argo Rollouts name them), /metrics/cadvisor
 * (the node's containers), /metrics/node (the machine, node_exporter's
 * names). Each is streamed in 64 KiB chunks, text 0.0.4 or OpenMetrics as
 * the Accept header asks. Registered by server.c. */
#include "obs_metrics.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "http.h"
#include "node.h"
#include "node_cgroup.h"
#include "node_runtime.h"

static struct obs_config cfg_copy;

static int
stream_sink(void *arg, const char *data, size_t len)
{
	return http_stream_write(arg, data, len);
}

/* Starts req's streamed answer and a writer on it. */
static void
page_begin(struct http_req *req, struct om_writer *w, struct buf *b)
{
	bool om = om_accepts_openmetrics(http_req_header(req, "Accept"));
	om_writer_init(w, b, om);
	w->fn = stream_sink;
	w->arg = req;
	http_stream_start(req, 200, om ? OM_CONTENT_TYPE_OPENMETRICS : OM_CONTENT_TYPE_TEXT);
}

static void
page_end(struct http_req *req, struct om_writer *w, struct buf *b)
{
	om_finish(w);
	buf_free(b);
	http_stream_end(req);
}

static bool
method_ok(struct http_req *req)
{
	if (strcmp(req->method, "GET") == 0)
		return true;
	http_add_header(req, "Allow", "GET");
	http_respond(req, 405, "text/plain", "method not allowed\n", 19);
	return false;
}

/* /metrics is written a family at a time; past PAGE_PENDING_MAX bytes not
 * yet taken by the client it waits for the socket to drain, so a slow
 * scraper holds at most that much (plus one family) of the page. */
#define PAGE_PENDING_MAX (1u << 20)

struct main_page {
	struct http_req *req;
	struct store *st;
	struct om_writer w;
	struct buf b;
	const struct ksm_kind *const *kind;	/* the kind being written */
	size_t fam;				/* its next family */
	json_t *items;				/* its objects, listed once */
	bool pumping;		/* inside main_page_pump: callbacks only take note */
	bool aborted;
};

static void
main_page_end(struct main_page *pg)
{
	http_req_on_drain(pg->req, NULL, NULL);
	http_req_on_abort(pg->req, NULL, NULL);
	page_end(pg->req, &pg->w, &pg->b);
	json_decref(pg->items);
	free(pg);
	/* the parsed lists (about 15 KB a pod) are gone: hand the pages back
	 * rather than keep the peak of the largest scrape for good */
	malloc_trim(0);
}

static void
main_page_pump(struct main_page *pg)
{
	if (pg->pumping)
		return;
	pg->pumping = true;
	while (*pg->kind && pg->w.err == 0 && !pg->aborted && !http_req_aborted(pg->req)) {
		if (!pg->items && store_list(pg->st, ksm_kind_resource(*pg->kind), NULL,
		    &pg->items, NULL) < 0)
			pg->items = json_array();
		ksm_write_family(&pg->w, *pg->kind, pg->fam++, pg->items);
		if (pg->fam == ksm_kind_nfamilies(*pg->kind)) {
			json_decref(pg->items);
			pg->items = NULL;
			pg->fam = 0;
			pg->kind++;
		}
		if (http_stream_pending(pg->req) > PAGE_PENDING_MAX && !pg->aborted) {
			pg->pumping = false;
			return;		/* on_main_drain resumes */
		}
	}
	main_page_end(pg);
}

static void
on_main_drain(struct http_req *req, void *arg)
{
	(void)req;
	main_page_pump(arg);
}

static void
on_main_abort(struct http_req *req, void *arg)
{
	struct main_page *pg = arg;
	(void)req;
	pg->aborted = true;
	if (!pg->pumping)
		main_page_end(pg);
}

static void
serve_main(void *arg, struct http_req *req)
{
	const struct obs_config *c = arg;
	struct main_page *pg;
	int64_t db_bytes, rows;

	if (!method_ok(req))
		return;
	pg = xcalloc(1, sizeof *pg);
	pg->req = req;
	pg->st = api_store(c->api);
	pg->kind = ksm_kinds();
	page_begin(req, &pg->w, &pg->b);
	store_stats(pg->st, &db_bytes, &rows);
	obs_self_write(&pg->w, db_bytes, rows);
	http_req_on_drain(req, on_main_drain, pg);
	http_req_on_abort(req, on_main_abort, pg);
	main_page_pump(pg);
}

struct ctr_list {
	struct host_ctr *v;
	size_t n, cap;
};

static void
add_ctr(void *arg, const char *ns, const char *pod, const char *container,
    const char *image, const struct rt_ctr *ctr)
{
	struct ctr_list *l = arg;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	struct host_ctr *h = &l->v[l->n++];
	*h = (struct host_ctr){ ns, pod, container, image, rt_cgroup_dir(ctr, CG_CPUACCT),
		rt_cgroup_dir(ctr, CG_CPU), rt_cgroup_dir(ctr, CG_MEMORY), false, 0, 0, 0 };
	struct rt_status st;
	rt_status(ctr, &st);
	h->pid = st.pid;
	if (!h->cg_cpuacct || !h->cg_memory) {
		struct rt_usage u;
		if (rt_usage(ctr, &u) == 0)
			h->have_usage = true, h->cpu_ns = u.cpu_ns, h->memory_bytes = u.memory_bytes;
	}
}

static void
serve_cadvisor(void *arg, struct http_req *req)
{
	const struct obs_config *c = arg;
	struct ctr_list l = { 0 };
	struct om_writer w;
	struct buf b = BUF_INIT;

	if (!method_ok(req))
		return;
	if (*c->node)
		node_each_container(*c->node, add_ctr, &l);
	page_begin(req, &w, &b);
	host_write_containers(&w, l.v, l.n);
	free(l.v);
	page_end(req, &w, &b);
}

static void
serve_node(void *arg, struct http_req *req)
{
	const struct obs_config *c = arg;
	struct om_writer w;
	struct buf b = BUF_INIT;

	if (!method_ok(req))
		return;
	page_begin(req, &w, &b);
	host_write_node(&w, "/proc", c->data_dir);
	page_end(req, &w, &b);
}

static void
serve_sd(void *arg, struct http_req *req)
{
	if (method_ok(req))
		obs_sd_serve(arg, req);
}

void
obs_pages_start(const struct obs_config *cfg)
{
	cfg_copy = *cfg;
	api_register_path(cfg->api, "/metrics", serve_main, &cfg_copy);
	api_register_path(cfg->api, "/metrics/cadvisor", serve_cadvisor, &cfg_copy);
	api_register_path(cfg->api, "/metrics/node", serve_node, &cfg_copy);
	api_register_path(cfg->api, "/v6/sd/prometheus", serve_sd, &cfg_copy);
}
