/* node_log.h — reading a container's log for `v6 logs`: the CRI files the
 * shim writes (node_shim.c: "TIME STREAM F|P TEXT" per line, rotated as
 * ATTEMPT.log.N ... ATTEMPT.log.1, ATTEMPT.log), read in order with tail,
 * since, limit and timestamps, and followed as they grow and rotate.
 * `--previous` is the same read on attempt-1's path (rt_log_path). Called by
 * the node agent when it serves pods/log. */
#ifndef V6_NODE_LOG_H
#define V6_NODE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct log_opts {
	int64_t tail_lines;	/* the last N lines; < 0: all (kubectl's default) */
	int64_t since_ms;	/* wall clock ms: skip lines logged before; 0: all */
	int64_t limit_bytes;	/* stop after this many bytes of output; 0: no limit */
	bool timestamps;	/* prefix each line with its RFC 3339 nanosecond time */
	const char *stream;	/* only the records of "stdout" or "stderr"; NULL: both
				 * (pods/attach follows each on its channel) */
};

/* Output: the text as the container wrote it (P records re-joined into one
 * line; a final partial line ends without "\n"). data == NULL, len == 0
 * once, when limit_bytes was reached and nothing more will come. */
typedef void (*log_out_fn)(void *arg, const char *data, size_t len);

/* node_log.c */
/* Reads path (".../ATTEMPT.log") after its rotated files, oldest first.
 * Returns 0 or negative errno (-ENOENT: no log at all). Blocking file reads
 * (mmap): short for a tail, proportional to the logs for a full read. */
int log_read(const char *path, const struct log_opts *o, log_out_fn fn, void *arg);

/* Follow mode (`-f`): outputs what log_read would, then every 200 ms (a
 * uv_timer on loop) what was appended since, across rotations (a rotated
 * file is finished before the next one is read). A log not made yet (the
 * shim makes it with the container's first output) is read from its start
 * once it appears. Stop it when the
 * container has exited (after one last log_follow_poll) or the client left. */
struct log_follower;
int log_follow_start(uv_loop_t *loop, const char *path, const struct log_opts *o,
    log_out_fn fn, void *arg, struct log_follower **out);
/* Reads what is new now (the timer calls it too). */
void log_follow_poll(struct log_follower *f);
/* Stops; the follower is freed once the loop has closed its timer. */
void log_follow_stop(struct log_follower *f);

/* "2026-11-28T19:00:00.123456789Z" -> wall clock ms. Returns 0 or -EINVAL. */
int log_parse_time(const char *s, size_t len, int64_t *ms);

#endif
