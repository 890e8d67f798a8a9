/* cli_top.c — `v6 top pods`: CPU and memory use of pods from the
 * metrics.k8s.io/v1beta1 API (served by the node agent), printed as
 * kubectl top prints them ("3141592n" -> 4m, "12345Ki" -> 12Mi, with
 * quantity.c's exact arithmetic), unit tested. */
#include "cli.h"
#include "quantity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- cells ------------------------------------------------------------- */

void
cli_format_cpu(int64_t nanocores, char *out)
{
	long long m = nanocores / 1000000 + (nanocores % 1000000 > 0);
	snprintf(out, 32, "%lldm", m);
}

void
cli_format_memory(int64_t bytes, char *out)
{
	snprintf(out, 32, "%lldMi", (long long)(bytes / (1024 * 1024)));
}

/* ---- rows -------------------------------------------------------------- */

struct usage_row {
	const char *ns;
	const char *pod;
	const char *container;	/* NULL for a pod row */
	int64_t cpu;		/* nanocores */
	int64_t mem;		/* bytes */
};

struct rows {
	struct usage_row *v;
	size_t n;
};

static void
usage_of(const json_t *usage, int64_t *cpu, int64_t *mem)
{
	int64_t c = 0, m = 0;
	const char *cs = json_string_value(json_object_get(usage, "cpu"));
	const char *ms = json_string_value(json_object_get(usage, "memory"));
	if (cs)
		quantity_scaled(cs, -9, &c);
	if (ms)
		quantity_scaled(ms, 0, &m);
	*cpu += c;
	*mem += m;
}

static void
rows_add(struct rows *r, const json_t *pm, bool per_container)
{
	const char *ns = obj_namespace(pm), *pod = obj_name(pm);
	struct usage_row sum = { ns, pod, NULL, 0, 0 };
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(pm, "containers"), i, c) {
		struct usage_row row = { ns, pod, json_string_value(json_object_get(c, "name")),
			0, 0 };
		usage_of(json_object_get(c, "usage"), &row.cpu, &row.mem);
		sum.cpu += row.cpu;
		sum.mem += row.mem;
		if (per_container) {
			r->v = xrealloc(r->v, (r->n + 1) * sizeof *r->v);
			r->v[r->n++] = row;
		}
	}
	if (!per_container) {
		r->v = xrealloc(r->v, (r->n + 1) * sizeof *r->v);
		r->v[r->n++] = sum;
	}
}

static int
by_cpu(const void *a, const void *b)
{
	const struct usage_row *x = a, *y = b;
	return x->cpu > y->cpu ? -1 : x->cpu < y->cpu;
}

static int
by_memory(const void *a, const void *b)
{
	const struct usage_row *x = a, *y = b;
	return x->mem > y->mem ? -1 : x->mem < y->mem;
}

/* ---- printing: Go's tabwriter as kubectl top configures it ------------ */

#define TAB_MINWIDTH 6
#define TAB_PADDING 3
#define MAXCOLS 5

struct grid {
	char **cells;		/* row-major */
	size_t ncols, nrows;
};

static void
grid_row(struct grid *g, const char *const *cells)
{
	g->cells = xrealloc(g->cells, (g->nrows + 1) * g->ncols * sizeof *g->cells);
	for (size_t i = 0; i < g->ncols; i++)
		g->cells[g->nrows * g->ncols + i] = xstrdup(cells[i]);
	g->nrows++;
}

static void
grid_print(struct grid *g)
{
	size_t width[MAXCOLS] = { 0 };
	for (size_t r = 0; r < g->nrows; r++)
		for (size_t c = 0; c < g->ncols; c++) {
			size_t w = strlen(g->cells[r * g->ncols + c]) + TAB_PADDING;
			w = w < TAB_MINWIDTH ? TAB_MINWIDTH : w;
			width[c] = w > width[c] ? w : width[c];
		}
	for (size_t r = 0; r < g->nrows; r++) {
		for (size_t c = 0; c < g->ncols; c++) {
			printf("%-*s", (int)width[c], g->cells[r * g->ncols + c]);
			free(g->cells[r * g->ncols + c]);
		}
		putchar('\n');
	}
	free(g->cells);
}

static void
print_rows(const struct cli_opts *o, const struct rows *r)
{
	static const char *const head[] = { "NAMESPACE", "POD", "NAME", "CPU(cores)",
		"MEMORY(bytes)" };
	/* which of head[] are shown */
	bool show[MAXCOLS] = { o->all_ns, o->containers, true, true, true };
	struct grid g = { NULL, 0, 0 };
	const char *cells[MAXCOLS];
	for (size_t i = 0; i < MAXCOLS; i++)
		g.ncols += show[i];
	size_t n = 0;
	for (size_t i = 0; i < MAXCOLS; i++)
		if (show[i])
			cells[n++] = head[i];
	if (!o->no_headers)
		grid_row(&g, cells);
	for (size_t i = 0; i < r->n; i++) {
		char cpu[32], mem[32];
		const struct usage_row *u = &r->v[i];
		const char *vals[MAXCOLS] = { u->ns, u->pod, u->container ? u->container : u->pod,
			cpu, mem };
		cli_format_cpu(u->cpu, cpu);
		cli_format_memory(u->mem, mem);
		n = 0;
		for (size_t j = 0; j < MAXCOLS; j++)
			if (show[j])
				cells[n++] = vals[j];
		grid_row(&g, cells);
	}
	grid_print(&g);
}

/* ---- the verb ---------------------------------------------------------- */

static char *
metrics_path(const struct cli_opts *o, const char *name)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, "/apis/metrics.k8s.io/v1beta1");
	if (!o->all_ns || name)
		buf_printf(&b, "/namespaces/%s", cli_ns(o));
	buf_puts(&b, "/pods");
	if (name)
		buf_printf(&b, "/%s", name);
	if (o->selector) {
		struct buf q = BUF_INIT;
		cli_query_add(&q, "labelSelector", o->selector);
		buf_printf(&b, "?%s", q.data);
		buf_free(&q);
	}
	return buf_steal(&b);
}

/* The group answers 404 "could not find the requested resource" (or 503)
 * when nothing serves it; a 404 naming a pod means that pod has no metrics. */
static bool
metrics_unavailable(const struct cli_resp *r)
{
	const char *msg = json_string_value(json_object_get(r->body, "message"));
	return r->status == 503 || (r->status == 404 && (msg == NULL ||
	    strstr(msg, "could not find the requested resource") != NULL));
}

/* No metrics: kubectl says "not available yet" when there are pods. */
static int
no_metrics(const struct cli_opts *o)
{
	const struct kind *pk = kind_find_gvk("v1", "Pod");
	struct buf q = BUF_INIT;
	struct cli_resp r;
	if (o->selector)
		cli_query_add(&q, "labelSelector", o->selector);
	char *path = cli_path(pk, o->all_ns ? NULL : cli_ns(o), NULL, q.data);
	int rc = cli_http("GET", path, NULL, NULL, &r);
	free(path);
	buf_free(&q);
	if (rc < 0)
		return 1;
	size_t pods = json_array_size(json_object_get(r.body, "items"));
	cli_resp_free(&r);
	if (pods)
		return cli_err("metrics not available yet");
	if (o->all_ns)
		fputs("No resources found\n", stderr);
	else
		fprintf(stderr, "No resources found in %s namespace.\n", cli_ns(o));
	return 0;
}

static int
top_pods(struct cli_opts *o, const char *name)
{
	struct cli_resp r;
	struct rows rows = { NULL, 0 };
	char *path = metrics_path(o, name);
	int rc = cli_http("GET", path, NULL, NULL, &r);
	free(path);
	if (rc < 0)
		return 1;
	if (r.status != 200) {
		if (metrics_unavailable(&r))
			cli_err("Metrics API not available");
		else
			cli_print_error(&r, NULL);
		cli_resp_free(&r);
		return 1;
	}
	size_t i;
	json_t *pm;
	if (name)
		rows_add(&rows, r.body, o->containers);
	json_array_foreach(name ? NULL : json_object_get(r.body, "items"), i, pm)
		rows_add(&rows, pm, o->containers);
	if (o->sort_by)
		qsort(rows.v, rows.n, sizeof *rows.v, o->sort_by[0] == 'c' ? by_cpu : by_memory);
	rc = rows.n ? (print_rows(o, &rows), 0) : no_metrics(o);
	free(rows.v);
	cli_resp_free(&r);
	return rc;
}

int
cli_top(struct cli_opts *o)
{
	static const char *const pods[] = { "pods", "pod", "po" };
	if (o->sort_by && strcmp(o->sort_by, "cpu") != 0 && strcmp(o->sort_by, "memory") != 0)
		return cli_err("--sort-by accepts only cpu or memory");
	if (o->nargs == 0 || o->nargs > 2)
		return cli_err("you must say what to show: 'v6 top pods [NAME]'");
	for (size_t i = 0; i < ARRAY_SIZE(pods); i++)
		if (strcmp(o->args[0], pods[i]) == 0)
			return top_pods(o, o->nargs == 2 ? o->args[1] : NULL);
	if (strncmp(o->args[0], "node", 4) == 0 || strcmp(o->args[0], "no") == 0)
		return cli_err("v6 top nodes is not supported yet: V6 runs one node; use "
		    "'v6 top pods -A'");
	return cli_err("unknown command \"%s\" for \"v6 top\": use 'v6 top pods'", o->args[0]);
}
