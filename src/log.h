/* log.h — V6's one logger: a line per record on stderr, JSON by default
 * (time, level, component, msg, then namespace, name, pod, trace_id and
 * span_id when the caller knows them) or text (--log-format text). The
 * level is checked before any formatting. A sink (the Loki shipper,
 * obs_loki.c) may receive every line written. */
#ifndef V6_LOG_H
#define V6_LOG_H

#include "util.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };
enum log_format { LOG_FORMAT_JSON, LOG_FORMAT_TEXT };

/* What a record is about; every field may be NULL. trace_id (32) and
 * span_id (16) are lowercase hex, as the OpenTelemetry "trace context in
 * non-OTLP log formats" convention asks, and become top-level fields. */
struct log_ctx {
	const char *namespace;
	const char *name;
	const char *pod;
	const char *trace_id;
	const char *span_id;
};

/* Receives each line as written (without the "\n"), from whichever thread
 * logged; must not log itself (such lines are not passed on). */
typedef void (*log_sink_fn)(void *arg, enum log_level level, const char *component,
    int64_t time_ms, const char *line, size_t len);

extern enum log_level log_min_level;

/* log.c */
void log_set_level(enum log_level level);
int log_parse_level(const char *s, enum log_level *out);
void log_set_format(enum log_format format);
enum log_format log_get_format(void);
/* "json" or "text". Returns 0 or -EINVAL. */
int log_parse_format(const char *s, enum log_format *out);
/* One sink at most; NULL removes it. */
void log_set_sink(log_sink_fn fn, void *arg);
/* Formats one record into b (no newline) as the current format does; for
 * the logger itself and its tests. */
void log_format_line(struct buf *b, enum log_format format, int64_t time_ms,
    enum log_level level, const char *component, const struct log_ctx *ctx,
    const char *msg);
void log__write(enum log_level level, const char *component, const struct log_ctx *ctx,
    const char *fmt, ...) V6_PRINTF(4, 5);

#define log__at(lvl, comp, ctx, ...) \
	do { if ((lvl) >= log_min_level) log__write((lvl), (comp), (ctx), __VA_ARGS__); } while (0)
#define log_debug(comp, ...) log__at(LOG_DEBUG, comp, NULL, __VA_ARGS__)
#define log_info(comp, ...)  log__at(LOG_INFO, comp, NULL, __VA_ARGS__)
#define log_warn(comp, ...)  log__at(LOG_WARN, comp, NULL, __VA_ARGS__)
#define log_error(comp, ...) log__at(LOG_ERROR, comp, NULL, __VA_ARGS__)
/* The same with fields: log_info_ctx("proxy", &(struct log_ctx){ .trace_id
 * = tid, .span_id = sid }, "upstream %s failed", addr). */
#define log_debug_ctx(comp, ctx, ...) log__at(LOG_DEBUG, comp, ctx, __VA_ARGS__)
#define log_info_ctx(comp, ctx, ...)  log__at(LOG_INFO, comp, ctx, __VA_ARGS__)
#define log_warn_ctx(comp, ctx, ...)  log__at(LOG_WARN, comp, ctx, __VA_ARGS__)
#define log_error_ctx(comp, ctx, ...) log__at(LOG_ERROR, comp, ctx, __VA_ARGS__)

#endif
