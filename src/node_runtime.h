/* node_runtime.h — the container runtime interface of the node agent, and
 * the process runtime behind it (runtimeClassName "process", the default).
 * A container runs under a shim (`v6 shim`, node_shim.c): a detached
 * process that holds the container's stdout/stderr and writes them to a
 * size-rotated log file in the CRI format, and records the exit status, so
 * that containers outlive `v6 server` and a restarted server adopts them.
 *
 * On disk, under STATE (DATA/node):
 *   STATE/containers/POD_UID/NAME-ATTEMPT/   spec.json, shim.pid, ctr.pid,
 *                                            exit.json (once exited)
 *   STATE/logs/NS_POD_UID/NAME/ATTEMPT.log   (+ ATTEMPT.log.1 ... rotated)
 * The runtime is driven from the server's loop; nothing here blocks for long. */
#ifndef V6_NODE_RUNTIME_H
#define V6_NODE_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct rt;
struct rt_ctr;

/* What to run; everything is resolved by the agent ($(VAR) expanded, env
 * merged from env/envFrom/downward API). Strings are copied by rt_start. */
struct rt_spec {
	const char *pod_uid;
	const char *pod_namespace;
	const char *pod_name;
	const char *name;		/* container name */
	int attempt;			/* 0 for the first run, +1 per restart */
	char *const *argv;		/* NULL-terminated; argv[0] looked up in PATH */
	char *const *envp;		/* NULL-terminated "NAME=value" */
	const char *working_dir;	/* NULL: the pod's own empty directory */
	const char *pod_ip;		/* "127.1.0.5" */
	int64_t memory_limit;		/* bytes, 0 = none */
	int64_t cpu_limit_millis;	/* millicores, 0 = none */
	int64_t pids_limit;		/* 0 = none */
	int64_t log_max_bytes;		/* rotate past this (default 10 MiB) */
	int log_max_files;		/* rotated files kept (default 2) */
};

enum rt_state { RT_RUNNING, RT_EXITED };

struct rt_status {
	enum rt_state state;
	int pid;			/* the container's main process */
	int exit_code;			/* 128+signal when killed by a signal */
	int signal;			/* 0 unless killed by a signal */
	bool oom_killed;
	int64_t started_at_ms;		/* wall clock */
	int64_t finished_at_ms;
	char reason[32];		/* "Completed", "Error", "OOMKilled", "Unknown" */
};

struct rt_usage {
	uint64_t cpu_ns;		/* CPU time used, all processes of the container */
	uint64_t memory_bytes;		/* working set */
};

/* Called once when a container exits (also for adopted ones). */
typedef void (*rt_exit_fn)(void *arg, struct rt_ctr *c, const struct rt_status *st);

/* node_runtime.c */
/* self_exe: path of the v6 binary (to start `v6 shim`). Creates STATE dirs. */
int rt_open(uv_loop_t *loop, const char *state_dir, const char *self_exe, struct rt **out);
/* Stops watching; containers keep running (that is the point). */
void rt_close(struct rt *rt);
/* Starts a container under a new shim. Returns 0 or negative errno (the
 * message for the pod's status in *err, caller frees: "executable file not
 * found in $PATH: foo"). */
int rt_start(struct rt *rt, const struct rt_spec *spec, rt_exit_fn fn, void *arg,
    struct rt_ctr **out, char **err);
/* Every container found on disk at start-up, running or exited, for the
 * agent to match with its pods. fn gets (pod_uid, name, attempt, status);
 * the agent then calls rt_adopt for those it keeps. */
typedef void (*rt_found_fn)(void *arg, const char *pod_uid, const char *name, int attempt,
    const struct rt_status *st);
int rt_scan(struct rt *rt, rt_found_fn fn, void *arg);
/* Takes over a container found by rt_scan: its exit is reported to fn. */
int rt_adopt(struct rt *rt, const char *pod_uid, const char *name, int attempt,
    rt_exit_fn fn, void *arg, struct rt_ctr **out);
void rt_status(const struct rt_ctr *c, struct rt_status *st);
/* Signals the container's whole process group. */
int rt_signal(struct rt_ctr *c, int sig);
int rt_usage(const struct rt_ctr *c, struct rt_usage *u);
/* Forgets a container (after its exit was handled); keeps its logs until
 * rt_remove_pod. */
void rt_release(struct rt_ctr *c);
/* Deletes every trace of a pod: container dirs, logs, cgroups. */
int rt_remove_pod(struct rt *rt, const char *pod_uid);
/* Path of a container's current log file (caller frees). */
char *rt_log_path(struct rt *rt, const char *pod_namespace, const char *pod_name,
    const char *pod_uid, const char *name, int attempt);

/* node_shim.c — `v6 shim` (internal; started by rt_start). */
int shim_main(int argc, char **argv);

#endif
