/* proc.h — the one helper for processes V6 starts detached so that they
 * outlive their starter (the shims of the runtime, `v6 proxy` of the proxy
 * supervisor): spawn in a new session, "PID TICKS [EXTRA]" pid files that
 * name one process for good (TICKS: its start time, against PID reuse),
 * pidfds, and a watch of a pidfd on a libuv loop. proc.c is plain libc (it
 * is linked into the static v6-shim too); proc_watch.c needs libuv. */
#ifndef V6_PROC_H
#define V6_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

/* What a pid file records: one process, and an optional extra number
 * (the runtime's ctr.pid keeps the container's start time in ms there). */
struct proc_id {
	pid_t pid;
	uint64_t ticks;		/* /proc/PID/stat field 22 */
	int64_t extra;		/* 0 when the file has none */
};

/* proc.c */
/* posix_spawn of argv[0] (a path) in a new session, signals reset to
 * default and unblocked, stdin/stdout on /dev/null, stderr appended to
 * log_path (/dev/null when NULL). Returns 0 or negative errno. The caller
 * reaps the child (proc_watch does when asked). */
int proc_spawn(char *const argv[], const char *log_path, pid_t *pid);
/* The same, with fd3 (when >= 0) as the child's fd 3: an inherited end of
 * a socket pair (the runtime's shim zygote). */
int proc_spawn_fd(char *const argv[], const char *log_path, int fd3, pid_t *pid);
/* The first executable NAME in $PATH (as execvp finds it), or NULL. Caller
 * frees. */
char *proc_which(const char *name);
/* Start time of pid in clock ticks since boot. Returns 0 or negative errno. */
int proc_start_ticks(pid_t pid, uint64_t *out);
/* True while id names the process it recorded (same pid, same start). */
bool proc_is_alive(const struct proc_id *id);
/* Writes "PID TICKS\n" (or "PID TICKS EXTRA\n" when extra != 0) for pid
 * atomically. Returns 0 or negative errno. */
int proc_pidfile_write(const char *path, pid_t pid, int64_t extra);
/* Reads a pid file as written, without looking at the process. Returns 0
 * or negative errno (-ENOENT: missing, -EINVAL: malformed). */
int proc_pidfile_load(const char *path, struct proc_id *id);
/* The process a pid file names if it is still that process: its pid (and
 * *ticks when not NULL), else 0. */
pid_t proc_pidfile_read(const char *path, uint64_t *ticks);
/* A pidfd for pid, opened before the start time is checked again (when
 * ticks != 0), so that it names the recorded process and not a reused pid.
 * Returns the fd (readable once the process exited) or negative errno. */
int proc_pidfd_open(pid_t pid, uint64_t ticks);

/* proc_watch.c */
struct proc_watch;
/* Runs once, on the loop, when the watched process has exited; status is
 * the waitpid status for a child that was reaped, -1 otherwise. The watch
 * stays valid until proc_watch_close. */
typedef void (*proc_exit_fn)(struct proc_watch *w, int status, void *arg);
/* Watches pid (checked against ticks when != 0) through a pidfd on loop;
 * reap: it is our child, waitpid it on exit. Returns 0 or negative errno. */
int proc_watch_start(uv_loop_t *loop, pid_t pid, uint64_t ticks, bool reap,
    proc_exit_fn fn, void *arg, struct proc_watch **out);
pid_t proc_watch_pid(const struct proc_watch *w);
/* True until the process has exited (a poll of the pidfd, no syscall on
 * /proc). */
bool proc_watch_alive(const struct proc_watch *w);
/* Stops watching (fn never runs after this) and frees w once its handle is
 * closed. NULL is fine. */
void proc_watch_close(struct proc_watch *w);

#endif
