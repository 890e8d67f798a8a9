/* obs_metrics.c — the one Prometheus exposition writer: families with HELP
 * and TYPE, samples with escaped labels, histograms as _bucket / _sum /
 * _count, in text format 0.0.4 or OpenMetrics 1.0 (counter families without
 * "_total", "# EOF"). Output goes to a buffer that is handed to a sink in
 * pieces, so a large page streams. Used by the server's pages and the
 * proxy's. */
#include "obs_metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define OM_FLUSH_AT (64u << 10)

bool
om_accepts_openmetrics(const char *accept)
{
	return accept && strcasestr(accept, "application/openmetrics-text") != NULL;
}

void
om_writer_init(struct om_writer *w, struct buf *out, bool openmetrics)
{
	memset(w, 0, sizeof *w);
	w->out = out;
	w->openmetrics = openmetrics;
	w->flush_at = OM_FLUSH_AT;
}

static void
maybe_flush(struct om_writer *w, bool force)
{
	if (!w->fn || w->out->len == 0 || (!force && w->out->len < w->flush_at))
		return;
	w->bytes += w->out->len;
	if (w->err == 0)
		w->err = w->fn(w->arg, w->out->data, w->out->len);
	buf_reset(w->out);
}

/* Label values escape \\, \" and newline; HELP text only \\ and newline. */
static void
escape(struct buf *out, const char *v, bool quote)
{
	for (const char *p = v; *p; p++) {
		if (*p == '\\' || (quote && *p == '"'))
			buf_putc(out, '\\'), buf_putc(out, *p);
		else if (*p == '\n')
			buf_puts(out, "\\n");
		else
			buf_putc(out, *p);
	}
}

void
om_escape(struct buf *out, const char *v)
{
	escape(out, v, true);
}

void
om_family(struct om_writer *w, const char *name, enum om_type type, const char *help)
{
	static const char *const type_name[] = { "counter", "gauge", "histogram" };
	size_t len = strlen(name);

	if (w->openmetrics && type == OM_COUNTER && str_has_suffix(name, "_total"))
		len -= strlen("_total");
	w->family = name;
	buf_printf(w->out, "# HELP %.*s ", (int)len, name);
	escape(w->out, help, false);
	buf_printf(w->out, "\n# TYPE %.*s %s\n", (int)len, name, type_name[type]);
	maybe_flush(w, false);
}

static void
put_value(struct buf *out, double v)
{
	if (isnan(v))
		buf_puts(out, "NaN");
	else if (isinf(v))
		buf_puts(out, v > 0 ? "+Inf" : "-Inf");
	else if (v == (double)(int64_t)v && fabs(v) < 1e15)
		buf_printf(out, "%lld", (long long)v);
	else
		buf_printf(out, "%.17g", v);
}

static void
put_labels(struct buf *out, const char *const *labels, const char *le)
{
	bool any = false;

	for (size_t i = 0; labels && labels[i]; i += 2) {
		if (!labels[i + 1])
			continue;
		buf_puts(out, any ? "," : "{");
		buf_printf(out, "%s=\"", labels[i]);
		om_escape(out, labels[i + 1]);
		buf_putc(out, '"');
		any = true;
	}
	if (le) {
		buf_printf(out, "%sle=\"%s\"", any ? "," : "{", le);
		any = true;
	}
	if (any)
		buf_putc(out, '}');
}

void
om_sample(struct om_writer *w, const char *name, const char *const *labels, double v)
{
	buf_puts(w->out, name);
	put_labels(w->out, labels, NULL);
	buf_putc(w->out, ' ');
	put_value(w->out, v);
	buf_putc(w->out, '\n');
	maybe_flush(w, false);
}

void
om_histogram(struct om_writer *w, const char *name, const char *const *labels,
    const struct om_hist *h)
{
	char le[32], *sample = xasprintf("%s_bucket", name);
	uint64_t cum = 0;

	for (size_t b = 0; b <= h->n; b++) {
		cum += h->buckets[b];
		if (b < h->n)
			snprintf(le, sizeof le, "%g", h->le[b]);
		else
			snprintf(le, sizeof le, "+Inf");
		buf_puts(w->out, sample);
		put_labels(w->out, labels, le);
		buf_printf(w->out, " %llu\n", (unsigned long long)cum);
	}
	free(sample);
	buf_printf(w->out, "%s_sum", name);
	put_labels(w->out, labels, NULL);
	buf_putc(w->out, ' ');
	put_value(w->out, h->sum);
	buf_printf(w->out, "\n%s_count", name);
	put_labels(w->out, labels, NULL);
	buf_printf(w->out, " %llu\n", (unsigned long long)h->count);
	maybe_flush(w, false);
}

void
om_hist_observe(struct om_hist *h, double v)
{
	size_t b = 0;

	while (b < h->n && v > h->le[b])
		b++;
	h->buckets[b]++;
	h->sum += v;
	h->count++;
}

int
om_finish(struct om_writer *w)
{
	if (w->openmetrics)
		buf_puts(w->out, "# EOF\n");
	maybe_flush(w, true);
	if (!w->fn)
		w->bytes = w->out->len;
	return w->err;
}
