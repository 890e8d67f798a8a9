/* log.c — the logger behind log_info()/log_warn()/... (see log.h): formats
 * a record as one JSON object or one text line, writes it to stderr with a
 * single write, and hands it to the sink (the Loki shipper) if one is set. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum log_level log_min_level = LOG_INFO;
static enum log_format log_fmt = LOG_FORMAT_JSON;
/* The sink is called under sink_mu, so that log_set_sink(NULL) returns
 * only once no thread is inside it (its owner may then free its state). */
static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;
static log_sink_fn sink_fn;
static void *sink_arg;
static _Thread_local bool in_sink;

static const char *const level_names[] = { "debug", "info", "warn", "error", "off" };
static const char *const format_names[] = { "json", "text" };

void
log_set_level(enum log_level level)
{
	log_min_level = level;
}

/* The index of s in names[0, n), or -EINVAL. */
static int
name_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

int
log_parse_level(const char *s, enum log_level *out)
{
	int i = name_index(level_names, ARRAY_SIZE(level_names), s);
	if (i >= 0)
		*out = (enum log_level)i;
	return i < 0 ? i : 0;
}

void
log_set_format(enum log_format format)
{
	log_fmt = format;
}

enum log_format
log_get_format(void)
{
	return log_fmt;
}

int
log_parse_format(const char *s, enum log_format *out)
{
	int i = name_index(format_names, ARRAY_SIZE(format_names), s);
	if (i >= 0)
		*out = (enum log_format)i;
	return i < 0 ? i : 0;
}

void
log_set_sink(log_sink_fn fn, void *arg)
{
	pthread_mutex_lock(&sink_mu);
	sink_arg = arg;
	sink_fn = fn;
	pthread_mutex_unlock(&sink_mu);
}

/* The optional fields, in the order they are written. */
static const struct {
	const char *key;
	size_t off;
} ctx_fields[] = {
	{ "namespace", offsetof(struct log_ctx, namespace) },
	{ "name", offsetof(struct log_ctx, name) },
	{ "pod", offsetof(struct log_ctx, pod) },
	{ "trace_id", offsetof(struct log_ctx, trace_id) },
	{ "span_id", offsetof(struct log_ctx, span_id) },
};

static const char *
ctx_get(const struct log_ctx *ctx, size_t i)
{
	return ctx ? *(const char *const *)((const char *)ctx + ctx_fields[i].off) : NULL;
}

static void
json_field(struct buf *b, const char *key, const char *val)
{
	buf_printf(b, ",\"%s\":", key);
	utf8_json_quote(b, val, strlen(val));
}

void
log_format_line(struct buf *b, enum log_format format, int64_t time_ms,
    enum log_level level, const char *component, const struct log_ctx *ctx,
    const char *msg)
{
	char ts[40], sec[32];
	time_format_rfc3339((time_t)(time_ms / 1000), sec);
	snprintf(ts, sizeof ts, "%.19s.%03dZ", sec, (int)(time_ms % 1000));
	if (format == LOG_FORMAT_TEXT) {
		buf_printf(b, "%s %-5s %s: %s", ts, level_names[level], component, msg);
		for (size_t i = 0; i < ARRAY_SIZE(ctx_fields); i++)
			if (ctx_get(ctx, i))
				buf_printf(b, " %s=%s", ctx_fields[i].key, ctx_get(ctx, i));
		return;
	}
	buf_printf(b, "{\"time\":\"%s\",\"level\":\"%s\"", ts, level_names[level]);
	json_field(b, "component", component);
	json_field(b, "msg", msg);
	for (size_t i = 0; i < ARRAY_SIZE(ctx_fields); i++)
		if (ctx_get(ctx, i))
			json_field(b, ctx_fields[i].key, ctx_get(ctx, i));
	buf_putc(b, '}');
}

void
log__write(enum log_level level, const char *component, const struct log_ctx *ctx,
    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);

	int64_t now = time_now_ms();
	struct buf b = BUF_INIT;
	log_format_line(&b, log_fmt, now, level, component, ctx, msg);
	size_t len = b.len;
	buf_putc(&b, '\n');
	for (size_t off = 0; off < b.len;) {
		ssize_t w = write(STDERR_FILENO, b.data + off, b.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (!in_sink) {
		in_sink = true;
		pthread_mutex_lock(&sink_mu);
		if (sink_fn)
			sink_fn(sink_arg, level, component, now, b.data, len);
		pthread_mutex_unlock(&sink_mu);
		in_sink = false;
	}
	buf_free(&b);
	free(msg);
}
