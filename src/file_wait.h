/* file_wait.h — a callback on a libuv loop when a file may have appeared in
 * a directory: inotify (libuv's fs events) names it, with a slow poll as
 * the safety net and the only way where inotify is unavailable. The runtime
 * waits with it for a runc container's shim to record the init's pid. */
#ifndef V6_FILE_WAIT_H
#define V6_FILE_WAIT_H

#include <stdint.h>
#include <uv.h>

struct file_wait;
typedef void (*file_wait_fn)(void *arg);

/* Calls fn(arg) on later turns of loop whenever DIR/NAME may have appeared
 * (created, renamed into place, written): on an inotify event naming it,
 * and every poll_ms besides (every fallback_ms when the directory cannot be
 * watched). fn looks for itself; it may call file_wait_stop. dir must
 * exist. Returns 0 and *out, or a negative errno (no timer). */
int file_wait_start(uv_loop_t *loop, const char *dir, const char *name, uint64_t poll_ms,
    uint64_t fallback_ms, file_wait_fn fn, void *arg, struct file_wait **out);
/* No call of fn after this; freed once its handles are closed. NULL ok. */
void file_wait_stop(struct file_wait *w);

#endif
