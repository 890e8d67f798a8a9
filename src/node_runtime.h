/* node_runtime.h — the container runtime interface of the node agent, and
 * the process runtime behind it (runtimeClassName "process", the default).
 * A container runs under a shim (`v6 shim`, node_shim.c): a detached
 * process that holds the container's stdout/stderr and writes them to a
 * size-rotated log file in the CRI format, and records the exit status, so
 * that containers outlive `v6 server` and a restarted server adopts them.
 *
 * On disk, under STATE (DATA/node):
 *   STATE/containers/POD_UID/NAME-ATTEMPT/   spec.json, shim.pid, ctr.pid,
 *                                            exit.json (once exited), shim.log
 *                                            (once the shim logged something),
 *                                            stdin (a FIFO, container.stdin);
 *                                            STATE/containers links to tmpfs
 *                                            (node_rundir.c)
 *   RUN/pods/POD_UID/serviceaccount/         the pod's token (rt_pod_state_dir;
 *                                            STATE/pods/POD_UID/ without tmpfs)
 *   STATE/overlays/POD_UID/NAME-ATTEMPT/     a runc container's upper and work
 *   STATE/pods/POD_UID/                      the default working dir
 *   STATE/pods/NS_PODNAME_POD_UID/NAME/ATTEMPT.log (+ .1 ... rotated), the
 *                                kubelet's /var/log/pods layout (STATE/logs,
 *                                the older place, is moved there on open)
 *   STATE/volumes/pvc-CLAIM_UID/             a PersistentVolumeClaim's data
 *   STATE/shared/HASH-LEN                    one copy of each shared file
 *                                            (rt_spec.shared_files), gone
 *                                            once no pod links it
 * The runtime is driven from the server's loop; nothing here blocks for long. */
#ifndef V6_NODE_RUNTIME_H
#define V6_NODE_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

struct rt;
struct rt_ctr;
struct secctx;

/* A volume made visible to a container: source (a directory on the host)
 * bind-mounted at target (an absolute mountPath) in the container's own
 * mount namespace. */
struct rt_mount {
	const char *source;
	const char *target;
	bool read_only;
};

/* A container of the runc runtime (runtimeClassName "runc"): its OCI
 * config, made by node_runc.c, and the image layers its rootfs is an
 * overlay of. The bundle is DIR/bundle (config.json, rootfs), the overlay's
 * upper and work dirs STATE/overlays/UID/NAME-ATTEMPT/{upper,work} (on disk
 * while DIR is on tmpfs: node_rundir.c); the shim mounts the overlay in
 * a mount namespace of its own (so nothing is left mounted on the host when
 * it dies) and runs `runc --root STATE/runc run --bundle DIR/bundle ID`
 * in the foreground, holding its stdio. */
struct rt_runc {
	const char *config;		/* config.json text, root.path "rootfs" */
	char *const *layers;		/* unpacked layer dirs, lowest first */
	const char *etc_dir;		/* the pod's /etc files, written with the start */
	const json_t *etc_files;	/* {name: text} for etc_dir (nrunc_pod_files) */
	/* What the pod's containers share and its first start makes (the
	 * runc runtime: the IPC namespace and /dev/shm, nrunc_pod_sandbox):
	 * sandbox(sandbox_dir) is called first by the start's job, off the
	 * loop, so that its fork overlaps the loop's work (the bind's commit);
	 * a failure ends the start as a StartError saying so. NULL: none. */
	int (*sandbox)(const char *dir);
	const char *sandbox_dir;
};

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
	bool make_working_dir;		/* create working_dir (mkdir -p) with the start,
					 * off the loop, instead of requiring it */
	const char *pod_ip;		/* "127.1.0.5" */
	int64_t memory_limit;		/* bytes, 0 = none */
	int64_t cpu_limit_millis;	/* millicores, 0 = none */
	int64_t pids_limit;		/* 0 = none */
	int64_t log_max_bytes;		/* rotate past this (default 10 MiB) */
	int log_max_files;		/* rotated files kept (default 2) */
	const struct rt_mount *mounts;	/* volumes (node_volume.c), n_mounts of them */
	size_t n_mounts;
	const struct rt_runc *runc;	/* NULL: the process runtime (argv, envp,
					 * working_dir, mounts); else all of that is
					 * in runc->config and argv is ignored */
	const struct secctx *security;	/* node_secctx.h: ids, capabilities,
					 * namespaces; NULL: as the shim */
	const json_t *files;		/* {absolute path: text}: written 0644 (their
					 * dir made 0755) by the start's job, off the
					 * loop, before the shim runs: the pod's
					 * ServiceAccount token, resolv.conf; NULL: none */
	bool stdin_open;		/* container.stdin: DIR/stdin is a FIFO the
					 * container reads (rt_stdin_path) */
	bool stdin_once;		/* container.stdinOnce: the first attach's
					 * end ends the container's stdin */
	bool tty;			/* container.tty: a pty is its stdio */
	const json_t *shared_files;	/* the same, for texts many pods share (the
					 * ServiceAccount's namespace and ca.crt): a
					 * hard link to one copy in STATE/shared, so
					 * a start makes no inode for them */
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
	char reason[32];		/* "Completed", "Error", "OOMKilled", "StartError",
					 * "Unknown" (shim vanished: exit_code 137) */
	char message[256];		/* StartError: `exec: "foo": permission denied` */
};

struct rt_usage {
	uint64_t cpu_ns;		/* CPU time used, all processes of the container */
	uint64_t memory_bytes;		/* working set */
};

/* Called once when a container exits (also for adopted ones). */
typedef void (*rt_exit_fn)(void *arg, struct rt_ctr *c, const struct rt_status *st);

/* node_runtime.c */
/* self_exe: path of the v6 binary. The shim run is $V6_SHIM if set, else
 * v6-shim next to self_exe (the small static build), else `self_exe shim`.
 * Creates STATE dirs and, per cgroup v1 controller (memory, cpu, cpuacct,
 * pids), the subtree MOUNT/<this process's cgroup>/v6 (logged once and
 * skipped when not writable). */
int rt_open(uv_loop_t *loop, const char *state_dir, const char *self_exe, struct rt **out);
/* Stops watching and frees every rt_ctr; containers keep running (that is
 * the point). Handles close on the loop's next turn. */
void rt_close(struct rt *rt);
/* Starts a container under a new shim (spawned detached: new session,
 * stdio /dev/null; spec in DIR/spec.json) and returns at once: the
 * directories, spec.json and the spawn are done on libuv's thread pool, a
 * shim that cannot be spawned ends the container with reason "StartError"
 * through fn. Fails with a
 * negative errno and the message for the pod's status in *err (caller
 * frees) when the command cannot run: -ENOENT `exec: "foo": executable file
 * not found in $PATH` (searched in the pod env's PATH; a default PATH is
 * added when the env has none), -EACCES `... permission denied`, a missing
 * working dir, -EEXIST for an attempt that already ran. Failures only exec
 * can see come through fn: reason "StartError", exit code 127 (not found)
 * or 126 (cannot execute), 128 (working dir), with a message. */
int rt_start(struct rt *rt, const struct rt_spec *spec, rt_exit_fn fn, void *arg,
    struct rt_ctr **out, char **err);
/* Runs (with the arg given to rt_start) once the shim of a started
 * container runs, on a later turn of the loop; a shim that could not be
 * spawned goes to the exit fn instead. */
typedef void (*rt_started_fn)(void *arg, struct rt_ctr *c);
void rt_set_started_fn(struct rt *rt, rt_started_fn fn);
/* True from rt_start until the shim runs (or failed to). */
bool rt_starting(const struct rt_ctr *c);
/* Every container found on disk at start-up, running or exited, for the
 * agent to match with its pods. fn gets (pod_uid, name, attempt, status);
 * the agent then calls rt_adopt for those it keeps. */
typedef void (*rt_found_fn)(void *arg, const char *pod_uid, const char *name, int attempt,
    const struct rt_status *st);
int rt_scan(struct rt *rt, rt_found_fn fn, void *arg);
/* Takes over a container found by rt_scan: its exit is reported to fn (on a
 * later turn of the loop when it has already exited). The shim is watched
 * through a pidfd checked against the start time in shim.pid (PID reuse).
 * -ENOENT: no such container; -EBUSY: already handled by this runtime. */
int rt_adopt(struct rt *rt, const char *pod_uid, const char *name, int attempt,
    rt_exit_fn fn, void *arg, struct rt_ctr **out);
/* st->pid is 0 for the first few ms, until the shim has forked. */
void rt_status(const struct rt_ctr *c, struct rt_status *st);
/* Signals the container's whole process group. Right after rt_start it may
 * wait (up to 200 ms, in 1 ms steps) for the shim to fork the container.
 * -ESRCH once exited. */
int rt_signal(struct rt_ctr *c, int sig);
/* cpuacct.usage and memory.usage_in_bytes - total_inactive_file of the
 * container's cgroups; without them, /proc of the main process. */
int rt_usage(const struct rt_ctr *c, struct rt_usage *u);
/* True for a container of the runc runtime. */
bool rt_is_runc(const struct rt_ctr *c);
/* The container's group of controller k (node_cgroup.h), NULL when it has
 * none (borrowed). */
const char *rt_cgroup_dir(const struct rt_ctr *c, int k);
/* The argv prefix that runs a command inside the running container c (its
 * namespaces, cgroups and securityContext: `v6-shim --enter DIR`), for exec
 * probes, hooks and `v6 exec`; NULL when c is not running yet or the server
 * is not root (its containers then share the host's namespaces). A runc
 * container's is always `runc --root R exec ID` (the container's env, cwd,
 * user and capabilities come from its config). New reference. */
json_t *rt_enter_argv(const struct rt_ctr *c);
/* A runc container's OCI process (its config.json's), the base of a
 * `runc exec --process` that needs more than runc exec's flags say (a
 * terminal's initial size); NULL for others. New reference. */
json_t *rt_runc_process(const struct rt_ctr *c);
/* The FIFO that is the stdin of a container started with stdin_open
 * (pods/attach writes to it); it does not exist for the others. Caller
 * frees. */
char *rt_stdin_path(const struct rt_ctr *c);
/* The shim's control FIFO (containers with stdin or tty, node_shim.c):
 * lines "end" (an attach's stdin ended) and "size ROWS COLS". Caller
 * frees. */
char *rt_ctl_path(const struct rt_ctr *c);
/* Forgets a container (after its exit was handled); keeps its logs until
 * rt_remove_pod. */
void rt_release(struct rt_ctr *c);
/* Deletes every trace of a pod: container dirs, logs, cgroups (a process
 * still in one of its cgroups is SIGKILLed). Release its containers first. */
int rt_remove_pod(struct rt *rt, const char *pod_uid);
/* RUN/pods/UID (tmpfs: node_rundir.c; STATE/pods/UID without one): the
 * pod's dir for files that mean something only while it runs (its
 * ServiceAccount token); rt_remove_pod removes it. Caller frees. */
char *rt_pod_state_dir(const struct rt *rt, const char *pod_uid);
/* Path of a container's current log file (caller frees). */
char *rt_log_path(struct rt *rt, const char *pod_namespace, const char *pod_name,
    const char *pod_uid, const char *name, int attempt);

/* node_volume.c — volumes of the process runtime. PersistentVolumeClaims
 * are bound to STATE/volumes/pvc-UID (made on first use, as a
 * WaitForFirstConsumer local provisioner does), protected by the finalizer
 * kubernetes.io/pvc-protection while a pod uses them, and removed with the
 * claim; emptyDir lives in the pod's dir; hostPath is the host's path. */
struct nvol;
struct api;
/* Watches claims and pods of api's store; state_dir is STATE (DATA/node).
 * Stale pvc-* directories (claim gone while the server was down) go. */
int nvol_start(struct api *api, const char *state_dir, struct nvol **out);
void nvol_stop(struct nvol *v);
/* The mounts of container cspec of pod (pod_dir: the pod's own dir, for
 * emptyDir), directories made. Returns the count (*out: caller frees with
 * nvol_mounts_free), or -1 with a message for the pod's status in *err
 * (caller frees): an unknown or terminating claim, an unsupported type. */
int nvol_mounts(struct nvol *v, const json_t *pod, const json_t *cspec,
    const char *pod_dir, struct rt_mount **out, char **err);
void nvol_mounts_free(struct rt_mount *m, int n);

/* node_projected.c — configMap, secret, downwardAPI and projected volumes:
 * files from API objects, laid out as the kubelet's atomic writer does. */
struct nenv_ctx;
struct nproj_file {
	char *path;		/* relative to the volume, e.g. "conf/app.yaml" */
	char *data;
	size_t len;
	int mode;		/* permission bits */
};
/* Whether vol is one of those four kinds. */
bool nproj_is(const json_t *vol);
/* The files of vol, its ConfigMaps and Secrets found through ctx->lookup
 * (ctx->pod / container for the downward API). 0 (*out: nproj_files_free)
 * or a negative errno with *err for the pod's status (caller frees): a
 * missing object or key that is not optional, an unsupported source. */
int nproj_files(const struct nenv_ctx *ctx, const json_t *vol, struct nproj_file **out,
    size_t *n, char **err);
void nproj_files_free(struct nproj_file *f, size_t n);
/* Lays the files out in dir: ..TIMESTAMP/, ..data -> it (swapped by
 * rename), NAME -> ..data/NAME; nothing is rewritten when they are the
 * same. 0 or a negative errno with *err. */
int nproj_write(const char *dir, const struct nproj_file *f, size_t n, char **err);

/* node_shim.c — `v6 shim DIR` (internal; started by rt_start; also built
 * alone as the small static program `v6-shim DIR`, which rt_start prefers). */
int shim_main(int argc, char **argv);

/* node_rundir.c */
/* Makes path (STATE/containers) unless it exists: a symlink to
 * RUN/containers, RUN a new directory on tmpfs (/run, else /dev/shm:
 * ROOT/v6-UID/XXXXXX, which records state_dir and is removed by a later
 * call once state_dir no longer links to it), or a plain directory where
 * no tmpfs is writable. A link whose target a reboot removed is made
 * anew. *run is RUN (caller frees), NULL when path is on disk.
 * 0 or negative errno. */
int rt_rundir_make(const char *state_dir, const char *path, char **run);
/* path (STATE/containers) is a link to RUN/containers: *run is RUN (caller
 * frees). -ENOENT when RUN is gone (a reboot emptied tmpfs: no container of
 * it runs any more), -EINVAL for a link of another shape, -errno else
 * (-EINVAL too for a plain directory: the state is on disk). */
int rt_rundir_follow(const char *path, char **run);
#endif
