/* obs_loki.h — the built-in log shipper: tails every pod's CRI log files
 * (STATE/pods/NS_POD_UID/CTR/N.log and their rotated N.log.K), the proxy's
 * log and the server's own log lines (a log.c sink), and pushes them to
 * Loki's /loki/api/v1/push as gzipped JSON, in batches, with retry and a
 * position per file persisted once Loki acknowledged. Runs on the server's
 * loop; file reading, encoding and gzip run on the thread pool. */
#ifndef V6_OBS_LOKI_H
#define V6_OBS_LOKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util.h"

struct obs_loki;

/* Writes the value of the pod's "app" label (or nothing) into out; runs on
 * the loop, once per container log file. */
typedef void (*obs_loki_app_fn)(void *arg, const char *ns, const char *pod, char *out,
    size_t outlen);

struct obs_loki_config {
	const char *url;		/* "http://HOST:PORT[/PATH]"; PATH defaults to
					 * /loki/api/v1/push */
	const char *state_dir;		/* DATA/node: pods/ is read, loki/ written */
	const char *node_name;		/* the node label */
	const char *proxy_log;		/* the proxy's log file, or NULL */
	size_t batch_bytes;		/* log text per push; 0: 1 MiB */
	int64_t batch_wait_ms;		/* longest a line waits for its push; 0: 1 s */
	size_t spool_bytes;		/* gzipped batches not yet taken (on disk in
					 * STATE/loki/spool and in memory); 0: 64 MiB */
	size_t max_line_bytes;		/* longer lines are split; 0: 256 KiB */
	int64_t timeout_ms;		/* one push; 0: 10 s */
	int64_t backoff_min_ms;		/* first retry delay; 0: 500 ms */
	int64_t backoff_max_ms;		/* retry delay cap; 0: 30 s */
	obs_loki_app_fn app;		/* NULL: no app label */
	void *app_arg;
};

/* Counters since the start, for /metrics. */
struct obs_loki_stats {
	uint64_t lines_read;		/* entries taken from files and the log sink */
	uint64_t lines_sent;		/* acknowledged by Loki */
	uint64_t bytes_sent;		/* gzipped request bodies acknowledged */
	uint64_t batches_sent;
	uint64_t lines_dropped;		/* refused with a 4xx, or spool overflow */
	uint64_t batches_dropped;
	uint64_t retries;		/* pushes sent again after 429 / 5xx / errors */
	uint64_t lines_split;		/* lines longer than max_line_bytes */
	uint64_t files_lost;		/* rotated away before they were read */
	uint64_t spool_bytes;		/* now: gzipped batches not yet acknowledged */
	uint64_t spool_batches;		/* now */
};

/* obs_loki.c */
/* Starts the shipper on loop. Returns 0 or a negative errno (-EINVAL: the
 * URL is not http://HOST:PORT/..., or HOST does not resolve). */
int obs_loki_start(uv_loop_t *loop, const struct obs_loki_config *cfg, struct obs_loki **out);
/* Stops reading and sending; what was not acknowledged is sent by the next
 * start (positions). Frees l once its thread-pool work is back. */
void obs_loki_stop(struct obs_loki *l);
void obs_loki_get_stats(const struct obs_loki *l, struct obs_loki_stats *out);

/* Internal, for tests. */
/* The retry delay after the attempt-th failure (1, 2, ...): min doubled per
 * attempt up to max, "equal jitter" (half fixed, half from rnd). */
int64_t obs_loki__backoff_ms(unsigned attempt, int64_t min_ms, int64_t max_ms, uint32_t rnd);
/* "NS_POD_UID" (a pod's log directory) -> its parts; 0 or -EINVAL. */
int obs_loki__parse_pod_dir(const char *name, char **ns, char **pod, char **uid);
/* A CRI log line "TIME STREAM P|F TEXT" (no "\n"): time in ns since the
 * epoch, stream 0 stdout / 1 stderr, partial for P, the text. 0 or -EINVAL. */
int obs_loki__parse_cri(const char *line, size_t len, int64_t *ts_ns, int *stream,
    bool *partial, const char **text, size_t *text_len);
/* Appends the JSON label set of a stream, keys sorted, empty values left out:
 * names[i] / values[i], n of them, in any order. */
void obs_loki__labels(struct buf *b, const char *const *names, const char *const *values,
    size_t n);
/* Where a piece of at most max bytes of s[0, n) ends without cutting a
 * UTF-8 sequence (>= 1 when n >= 1). */
size_t obs_loki__cut(const char *s, size_t n, size_t max);

/* The push body of one batch: entries added per stream in order, with
 * timestamps made strictly increasing per stream (Loki 2.4 refuses an older
 * entry than the stream's last one). */
struct loki_stream;
struct loki_enc;
struct loki_enc *obs_loki__enc_new(void);
void obs_loki__enc_free(struct loki_enc *e);
/* The stream of a label set (JSON object text, as obs_loki__labels makes
 * it), created on first use; lives as long as e. */
struct loki_stream *obs_loki__enc_stream(struct loki_enc *e, const char *labels);
/* Adds an entry; returns the timestamp used (ts_ns, or the stream's last
 * one + 1 ns when ts_ns is not later). */
int64_t obs_loki__enc_add(struct loki_enc *e, struct loki_stream *s, int64_t ts_ns,
    const char *line, size_t len);
/* Raises a stream's last timestamp (restored from the positions). */
void obs_loki__enc_seen(struct loki_stream *s, int64_t ts_ns);
/* The {"streams":[...]} JSON of the entries added since the last call,
 * into b; returns how many entries. */
size_t obs_loki__enc_take(struct loki_enc *e, struct buf *b);

#endif
