/* cli_print.c — how the CLI shows objects: kubectl's table columns for each
 * kind (one declarative table below), AGE, "kind.group/name" references and
 * JSON output. Used by get, describe and the verbs that print names. */
#include "cli.h"
#include "obj_print.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
cli_kind_ref(const struct kind *k, char *out, size_t len)
{
	return kind_display(k, out, len);
}

const char *
cli_obj_ref(const struct kind *k, const char *name, char *out, size_t len)
{
	char kr[128];
	snprintf(out, len, "%s/%s", cli_kind_ref(k, kr, sizeof kr), name);
	return out;
}

void
cli_age(const char *ts, int64_t now_ms, char *out)
{
	print_age(ts, now_ms, out);
}

char *
cli_json_dump(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(4) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	char *out = xasprintf("%s\n", s ? s : "null");
	free(s);
	return out;
}

/* ---- columns ---------------------------------------------------------- */

/* Argo Rollouts' columns (kubectl-argo-rollouts list) that `v6 get rollouts
 * -o wide` adds to the CRD's printer columns; "-" for what a blue-green
 * rollout does not have. */
static void
cell_ro_strategy(const struct print_ctx *c)
{
	const char *s = cli_argo_strategy(c->obj);
	buf_puts(c->out, *s ? s : "-");
}

static void
cell_ro_step(const struct print_ctx *c)
{
	int64_t i, n;
	if (cli_argo_step(c->obj, &i, &n))
		buf_printf(c->out, "%lld/%lld", (long long)i, (long long)n);
	else
		buf_puts(c->out, "-");
}

static void
cell_ro_set_weight(const struct print_ctx *c)
{
	int64_t w = cli_argo_set_weight(c->obj);
	if (w >= 0)
		buf_printf(c->out, "%lld", (long long)w);
	else
		buf_puts(c->out, "-");
}

static void
cell_ro_phase(const struct print_ctx *c)
{
	const char *p = obj_str_at(c->obj, "status.phase");
	buf_puts(c->out, *p ? p : "Progressing");
}

static const struct print_col rollout_wide[] = {
	{ "Strategy", "string", 1, cell_ro_strategy, PRINT_STR, PRINT_V6, NULL },
	{ "Step", "string", 1, cell_ro_step, PRINT_STR, PRINT_V6, NULL },
	{ "Set-Weight", "string", 1, cell_ro_set_weight, PRINT_STR, PRINT_V6, NULL },
	{ "Phase", "string", 1, cell_ro_phase, PRINT_STR, PRINT_V6, NULL },
};

/* ---- tables ----------------------------------------------------------- */

struct cli_table {
	const struct kind *k;
	const struct print_col **cols;	/* the columns shown, NULL-terminated */
	int flags;
	int64_t now;
	char **cells;		/* row-major, ncols per row; row 0 = header */
	size_t ncols, nrows;
	size_t *width;
	size_t rendered;	/* rows already rendered */
};

static bool
col_shown(int flags, const struct print_col *c)
{
	return c->who != PRINT_KUBE && (c->priority == 0 || (flags & CLI_TBL_WIDE));
}

/* The columns of kind the CLI shows with flags: kubectl's, then its own
 * wide Rollout columns. NULL-terminated; caller frees. */
static const struct print_col **
cli_columns(const char *kind, int flags)
{
	size_t n, m = 0;
	const struct print_col *cols = print_columns(kind, &n);
	bool ro = kind && strcmp(kind, "Rollout") == 0;
	const struct print_col **out = xcalloc(n + ARRAY_SIZE(rollout_wide) + 1, sizeof *out);
	for (size_t i = 0; i < n; i++)
		if (col_shown(flags, &cols[i]))
			out[m++] = &cols[i];
	for (size_t i = 0; ro && i < ARRAY_SIZE(rollout_wide); i++)
		if (col_shown(flags, &rollout_wide[i]))
			out[m++] = &rollout_wide[i];
	return out;
}

static void
table_push_row(struct cli_table *t, char **row)
{
	t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *t->cells);
	for (size_t i = 0; i < t->ncols; i++) {
		t->cells[t->nrows * t->ncols + i] = row[i];
		size_t w = strlen(row[i]);
		if (w > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
}

static char *
header(const char *name)
{
	char *h = xstrdup(name);
	for (char *p = h; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 32);
	return h;
}

struct cli_table *
cli_table_new(const struct kind *k, const char *kind, int flags, int64_t now_ms)
{
	struct cli_table *t = xcalloc(1, sizeof *t);
	t->k = k;
	t->cols = cli_columns(kind ? kind : k ? k->kind : NULL, flags);
	t->flags = flags;
	t->now = now_ms;
	t->ncols = (flags & CLI_TBL_NS) ? 1 : 0;
	for (const struct print_col **c = t->cols; *c; c++)
		t->ncols++;
	t->ncols += (flags & CLI_TBL_LABELS) ? 1 : 0;
	t->width = xcalloc(t->ncols, sizeof *t->width);
	char **hdr = xcalloc(t->ncols, sizeof *hdr);
	size_t n = 0;
	if (flags & CLI_TBL_NS)
		hdr[n++] = xstrdup("NAMESPACE");
	for (const struct print_col **c = t->cols; *c; c++)
		hdr[n++] = header((*c)->name);
	if (flags & CLI_TBL_LABELS)
		hdr[n++] = xstrdup("LABELS");
	table_push_row(t, hdr);
	free(hdr);
	if (flags & CLI_TBL_NOHEAD) {	/* the header takes no room then */
		t->rendered = 1;
		memset(t->width, 0, t->ncols * sizeof *t->width);
	}
	return t;
}

static char *
name_cell(const struct cli_table *t, const json_t *obj)
{
	char ref[512];
	if ((t->flags & CLI_TBL_KINDREF) && t->k)
		return xstrdup(cli_obj_ref(t->k, obj_name(obj), ref, sizeof ref));
	return xstrdup(obj_name(obj));
}

void
cli_table_add(struct cli_table *t, const json_t *obj)
{
	char **row = xcalloc(t->ncols, sizeof *row);
	size_t n = 0;
	if (t->flags & CLI_TBL_NS)
		row[n++] = xstrdup(obj_namespace(obj));
	for (const struct print_col **c = t->cols; *c; c++) {
		if ((*c)->cell == NULL) {
			row[n++] = name_cell(t, obj);
			continue;
		}
		struct buf b = BUF_INIT;
		print_cell(*c, obj, t->now, &b);
		if (b.len == 0 && ((*c)->cell_type == PRINT_OPT ||
		    (*c)->cell_type == PRINT_OPT_INT))
			buf_puts(&b, "<none>");
		row[n++] = buf_steal(&b);
	}
	if (t->flags & CLI_TBL_LABELS) {
		struct buf b = BUF_INIT;
		print_labels(&b, obj_labels(obj));
		row[n++] = buf_steal(&b);
	}
	table_push_row(t, row);
	free(row);
}

static void
render_row(const struct cli_table *t, size_t r, struct buf *out)
{
	for (size_t i = 0; i < t->ncols; i++) {
		const char *s = t->cells[r * t->ncols + i];
		if (i + 1 == t->ncols) {
			buf_puts(out, s);
			break;
		}
		buf_printf(out, "%-*s", (int)(t->width[i] + 3), s);
	}
	buf_putc(out, '\n');
}

char *
cli_table_render(struct cli_table *t)
{
	struct buf out = BUF_INIT;
	for (size_t r = (t->flags & CLI_TBL_NOHEAD) ? 1 : 0; r < t->nrows; r++)
		render_row(t, r, &out);
	t->rendered = t->nrows;
	return buf_steal(&out);
}

char *
cli_table_render_new_rows(struct cli_table *t)
{
	struct buf out = BUF_INIT;
	for (size_t r = t->rendered; r < t->nrows; r++)
		render_row(t, r, &out);
	t->rendered = t->nrows;
	return buf_steal(&out);
}

void
cli_table_free(struct cli_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t->cols);
	free(t);
}

/* Prints rows (arrays of strings, the header first) as kubectl's printer
 * lays them out: columns padded to the widest cell, three spaces apart. */
void
cli_print_rows(const json_t *rows)
{
	size_t ncol = 0, i, j;
	json_t *r, *c;
	json_array_foreach(rows, i, r)
		if (json_array_size(r) > ncol)
			ncol = json_array_size(r);
	size_t *w = xcalloc(ncol ? ncol : 1, sizeof *w);
	json_array_foreach(rows, i, r)
		json_array_foreach(r, j, c)
			if (strlen(json_string_value(c)) > w[j])
				w[j] = strlen(json_string_value(c));
	json_array_foreach(rows, i, r) {
		size_t n = json_array_size(r);
		json_array_foreach(r, j, c)
			printf("%-*s%s", j + 1 < n ? (int)w[j] : 0, json_string_value(c),
			    j + 1 < n ? "   " : "\n");
	}
	free(w);
}
