/* node_daemon.h — helpers for processes V6 starts detached so that they
 * outlive `v6 server` (the proxy; the shape the runtime uses for shims):
 * spawn in a new session, record "PID START_TICKS" in a pid file, find the
 * recorded process again after a server restart (start time checked
 * against PID reuse) and open a pidfd to watch it on a libuv loop. */
#ifndef V6_NODE_DAEMON_H
#define V6_NODE_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* node_daemon.c */
/* posix_spawn of argv[0] (a path) in a new session, signals reset to
 * default and unblocked, stdin/stdout on /dev/null, stderr appended to
 * log_path (/dev/null when NULL). Returns 0 or negative errno. The caller
 * reaps the child (waitpid WNOHANG once its pidfd is readable). */
int node_daemon_spawn(char *const argv[], const char *log_path, pid_t *pid);
/* Writes "PID TICKS\n" to path atomically (TICKS: the process's start time,
 * /proc/PID/stat field 22). Returns 0 or negative errno. */
int node_daemon_write_pidfile(const char *path, pid_t pid);
/* The process a pid file names, if it is still that process: its pid and
 * start ticks; 0 when the file is missing or the process is gone (or the
 * pid was reused). */
pid_t node_daemon_read_pidfile(const char *path, uint64_t *ticks);
/* A pidfd for pid, opened before the start time is checked again (when
 * ticks != 0), so that it names the recorded process and not a reused pid.
 * Returns the fd (readable once the process exited) or negative errno. */
int node_daemon_pidfd(pid_t pid, uint64_t ticks);

#endif
