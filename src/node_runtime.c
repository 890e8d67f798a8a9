/* node_runtime.c — the process runtime (node_runtime.h): starts each
 * container under a detached shim (node_shim.c), watches the shims through
 * pidfds on the server's loop (so adopted shims, which are not our children,
 * are watched the same way), reads their exit.json, finds and adopts what a
 * previous server left running, signals, measures and removes containers.
 * Shims are forked by one resident `v6-shim --zygote` per runtime ("the shim
 * zygote" below, started with the runtime), so a start costs one exec (the
 * workload's), not two.
 * Called by the node agent (node_agent.c). */
#include "node_runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "file_wait.h"
#include "log.h"
#include "node_cgroup.h"
#include "node_secctx.h"
#include "proc.h"
#include "util.h"

#define DEFAULT_PATH	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define UNKNOWN_CODE	137	/* a shim that vanished: as if SIGKILLed */
#define ZYGOTE_PAD	PATH_MAX	/* empty arguments: room for a shim's title */
#define ZYGOTE_TIMEOUT_S 5		/* for its answer: then it is killed and replaced */

struct rt {
	uv_loop_t *loop;
	char *ctr_root;			/* STATE/containers (on tmpfs: node_rundir.c) */
	char *log_root;			/* STATE/pods */
	char *runc_root;		/* STATE/runc: `runc --root` of every runc container */
	char *layer_root;		/* STATE/overlays: runc containers' upper and work dirs,
					 * on disk (what a container writes is not memory) */
	char *shared_root;		/* STATE/shared: rt_spec.shared_files' copies */
	char *pod_state_root;		/* RUN/pods, or STATE/pods (rt_pod_state_dir) */
	char *shim_exe;
	bool shim_verb;			/* shim_exe is v6 itself: `v6 shim DIR` */
	char *cg_base[CG_NCTRL];	/* NULL: controller unavailable */
	struct rt_ctr *ctrs;		/* every handle not yet released */
	rt_started_fn started;
	int refs;			/* 1 for the open runtime + 1 per ctr */
	/* The shim zygote (`v6-shim --zygote`, node_shim.c), started by rt_open
	 * (again by a spawn job after it died) and shared by the jobs under zmu. */
	uv_mutex_t zmu;
	bool zygote;			/* allowed: the static shim, not V6_SHIM_ZYGOTE=0 */
	int zfd;			/* our end of its socket, -1: not running */
	pid_t zpid;
	unsigned zserved;		/* shims it forked: one that never did is not retried */
};

struct rt_ctr {
	struct rt *rt;
	struct rt_ctr *next, **prevp;
	char *dir;
	char *pod_uid, *name;
	int attempt;
	char *runc_id;			/* runc containers: the runc id, else NULL */
	char *cg[CG_NCTRL];
	struct proc_watch *watch;	/* the shim, while running */
	uv_timer_t timer;		/* adopted already exited: report soon */
	bool has_timer;
	struct rt_status st;
	rt_exit_fn fn;
	void *arg;
	struct spawn_job *job;		/* the shim is being started off the loop */
	bool awaiting;			/* runc: the shim runs, `runc run` not done yet */
	struct file_wait *await;	/* ... and DIR/ctr.pid is waited for */
	int64_t await_until;		/* mono ms: then reported started anyway */
	int pending_sig;		/* rt_signal while job / awaiting: sent after */
	bool dropped;			/* released while job: freed by job_done */
};

/* The part of a start that touches the disk and forks (log dir, spec.json,
 * the shim's spawn, shim.pid): done on libuv's thread pool, so that a
 * hundred pods applied at once do not start one after the other on the
 * loop. Everything is prepared on the loop; the worker only makes system
 * calls. */
struct spawn_job {
	uv_work_t req;
	struct rt_ctr *c;
	char *dir, *spec_path, *spec_text;
	char **files;			/* runc: path, text, path, text, ..., NULL */
	char **dirs;			/* runc: made before the files, NULL-terminated */
	char **pod_files;		/* rt_spec.files: path, text, ..., NULL */
	char **shared_files;		/* rt_spec.shared_files: the same */
	char *shared_root;
	int (*sandbox)(const char *dir);	/* rt_runc.sandbox, NULL: none */
	char *sandbox_dir;
	bool sandbox_failed;		/* j->rc is sandbox()'s */
	char *argv[4];
	struct rt *rt;
	pid_t pid;
	bool forked;			/* by the zygote: not our child */
	uint64_t ticks;			/* then its start, 0 once gone */
	int rc;
};

static void shared_gc(const struct rt *rt);
static void zygote_stop(struct rt *rt, bool kill_it);

/* ---- files of a container dir ------------------------------------------ */

static char *
ctr_file(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void
copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

/* exit.json -> st. Returns 0 or negative errno (-ENOENT: still running). */
static int
read_exit(const char *dir, struct rt_status *st)
{
	char *path = ctr_file(dir, "exit.json");
	json_t *j = json_load_file(path, 0, NULL);
	free(path);
	if (j == NULL)
		return -ENOENT;
	st->state = RT_EXITED;
	st->exit_code = (int)json_integer_value(json_object_get(j, "exitCode"));
	st->signal = (int)json_integer_value(json_object_get(j, "signal"));
	if (json_integer_value(json_object_get(j, "pid")) > 0)
		st->pid = (int)json_integer_value(json_object_get(j, "pid"));
	st->oom_killed = json_is_true(json_object_get(j, "oomKilled"));
	st->started_at_ms = json_integer_value(json_object_get(j, "startedAt"));
	st->finished_at_ms = json_integer_value(json_object_get(j, "finishedAt"));
	copy_str(st->reason, sizeof st->reason, json_string_value(json_object_get(j, "reason")));
	copy_str(st->message, sizeof st->message,
	    json_string_value(json_object_get(j, "message")));
	json_decref(j);
	return 0;
}

/* DIR/NAME, a pid file (proc.h). Returns 0 or negative errno. */
static int
load_pidfile(const char *dir, const char *name, struct proc_id *id)
{
	char *path = ctr_file(dir, name);
	int rc = proc_pidfile_load(path, id);
	free(path);
	return rc;
}

/* ctr.pid -> st->pid, st->started_at_ms; 0 unless the container was forked. */
static int
read_ctr_pid(const char *dir, struct rt_status *st, struct proc_id *id)
{
	struct proc_id ctr;
	if (load_pidfile(dir, "ctr.pid", &ctr) < 0)
		return -ENOENT;
	st->pid = (int)ctr.pid;
	if (ctr.extra > 0)
		st->started_at_ms = ctr.extra;
	if (id)
		*id = ctr;
	return 0;
}

/* The shim of dir, if it is alive: its pid and start, else 0. */
static int
live_shim(const char *dir, struct proc_id *id)
{
	struct proc_id shim;
	if (load_pidfile(dir, "shim.pid", &shim) < 0 || !proc_is_alive(&shim))
		return 0;
	if (id)
		*id = shim;
	return (int)shim.pid;
}

/* An end the shim could not record itself: st becomes exited with code,
 * reason and message, written to DIR/exit.json as the shim would, so that
 * every later look agrees. */
static void
record_exit(const char *dir, struct rt_status *st, int code, const char *reason,
    const char *message)
{
	st->state = RT_EXITED;
	st->exit_code = code;
	st->signal = 0;
	st->finished_at_ms = time_now_ms();
	copy_str(st->reason, sizeof st->reason, reason);
	copy_str(st->message, sizeof st->message, message);
	json_t *j = json_pack("{s:i, s:i, s:b, s:i, s:I, s:I, s:s, s:s}", "exitCode",
	    st->exit_code, "signal", 0, "oomKilled", 0, "pid", st->pid,
	    "startedAt", (json_int_t)st->started_at_ms,
	    "finishedAt", (json_int_t)st->finished_at_ms, "reason", st->reason,
	    "message", st->message);
	char *text = json_dumps(j, JSON_COMPACT), *path = ctr_file(dir, "exit.json");
	file_write_atomic(path, text, strlen(text), false);
	free(path);
	free(text);
	json_decref(j);
}

/* A runc container whose shim is gone: `runc delete -f` kills and forgets
 * it (its init is in a session of its own, out of reach of the kill of
 * runc's process group). Blocks for the few ms runc takes: a rare path. */
static void
runc_delete(const char *dir)
{
	char *path = ctr_file(dir, "spec.json");
	json_t *spec = json_load_file(path, 0, NULL);
	json_t *r = json_object_get(spec, "runc");
	const char *root = json_string_value(json_object_get(r, "root"));
	const char *id = json_string_value(json_object_get(r, "id"));
	char *runc = proc_which("runc");
	char *argv[] = { runc, "--root", (char *)root, "delete", "-f", (char *)id, NULL };
	pid_t pid;
	int status;
	free(path);
	if (runc && root && id && proc_spawn(argv, NULL, &pid) == 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	else if (root && id)
		log_error("node", "runc delete -f %s: cannot run runc", id);
	free(runc);
	json_decref(spec);
}

/* The shim is gone without an exit.json (killed): kill what may be left of
 * the container, so nothing runs unsupervised, and record the loss. */
static void
record_unknown(const char *dir, struct rt_status *st)
{
	struct proc_id ctr;
	if (read_ctr_pid(dir, st, &ctr) == 0 && proc_is_alive(&ctr))
		kill(-st->pid, SIGKILL);
	runc_delete(dir);
	record_exit(dir, st, UNKNOWN_CODE, "Unknown",
	    "the container's shim exited without recording an exit status");
}

/* What a container dir says: exited (exit.json), running (live shim), or
 * lost. Returns the live shim's pid (and *shim_id when not NULL) or 0. */
static int
load_status(const char *dir, struct rt_status *st, struct proc_id *shim_id)
{
	memset(st, 0, sizeof *st);
	if (read_exit(dir, st) == 0)
		return 0;
	int shim = live_shim(dir, shim_id);
	if (shim > 0) {
		st->state = RT_RUNNING;
		read_ctr_pid(dir, st, NULL);
		return shim;
	}
	if (read_exit(dir, st) == 0)	/* it finished while we looked */
		return 0;
	record_unknown(dir, st);
	return 0;
}

/* The container's group under controller i, as spec.json records it. */
static char *
ctr_cg_path(const struct rt *rt, const char *pod_uid, const char *name, int i)
{
	return rt->cg_base[i] ? xasprintf("%s/%s/%s", rt->cg_base[i], pod_uid, name) : NULL;
}

/* The container's cgroups and, for runc, its id, from spec.json. */
static void
load_cgroups(struct rt_ctr *c)
{
	char *path = ctr_file(c->dir, "spec.json");
	json_t *spec = json_load_file(path, 0, NULL);
	json_t *cg = json_object_get(spec, "cgroups");
	const char *id = json_string_value(json_object_get(json_object_get(spec, "runc"), "id"));
	free(path);
	for (int i = 0; i < CG_NCTRL; i++) {
		const char *d = json_string_value(json_object_get(cg, cg_ctrl_name(i)));
		c->cg[i] = d ? xstrdup(d) : NULL;
	}
	if (id && c->runc_id == NULL)
		c->runc_id = xstrdup(id);
	json_decref(spec);
}

/* ---- the shim zygote --------------------------------------------------- */

/* Ends the zygote (it exits when its socket closes; kill: one that stopped
 * answering is killed) and reaps it. zmu held or no job left. */
static void
zygote_stop(struct rt *rt, bool kill_it)
{
	if (rt->zfd < 0)
		return;
	close(rt->zfd);
	rt->zfd = -1;
	if (kill_it)
		kill(rt->zpid, SIGKILL);
	while (waitpid(rt->zpid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Spawns `v6-shim --zygote` with its end of a socket pair as fd 3, and
 * ZYGOTE_PAD empty arguments its shims write their title over. zmu held. */
static int
zygote_start(struct rt *rt)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	char **argv = xcalloc(ZYGOTE_PAD + 3, sizeof *argv);
	argv[0] = rt->shim_exe;
	argv[1] = "--zygote";
	for (size_t i = 2; i < ZYGOTE_PAD + 2; i++)
		argv[i] = "";
	struct timeval tv = { ZYGOTE_TIMEOUT_S, 0 };	/* a hung zygote does not hang starts */
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	int rc = proc_spawn_fd(argv, NULL, sv[1], &rt->zpid);
	free(argv);
	close(sv[1]);
	if (rc < 0)
		close(sv[0]);
	else
		rt->zfd = sv[0];
	return rc;
}

/* On the thread pool: the zygote forks the shim of dir. 0 with *pid;
 * -ENOSYS when there is no zygote to ask (the `v6 shim` verb,
 * V6_SHIM_ZYGOTE=0, one that failed at once) or it was gone before it
 * heard of dir, or forked nothing: the caller spawns the shim itself;
 * another negative errno
 * when it heard and did not answer (it may have forked a shim: none is
 * spawned a second time, the start fails). */
static int
zygote_spawn(struct rt *rt, const char *dir, pid_t *pid)
{
	int32_t got = -ENOSYS;
	if (!rt->zygote)
		return -ENOSYS;
	uv_mutex_lock(&rt->zmu);
	if (rt->zfd < 0 && rt->zygote && zygote_start(rt) < 0)
		rt->zygote = false;
	ssize_t sent = -1, n = -1;
	if (rt->zfd >= 0) {
		while ((sent = send(rt->zfd, dir, strlen(dir), MSG_NOSIGNAL)) < 0 && errno == EINTR)
			;
		while (sent >= 0 && (n = recv(rt->zfd, &got, sizeof got, 0)) < 0 && errno == EINTR)
			;
	}
	if (rt->zfd >= 0 && n != (ssize_t)sizeof got) {	/* gone: restarted next time */
		log_warn("node", "shim zygote %s (pid %d) did not answer%s", rt->shim_exe,
		    (int)rt->zpid, rt->zserved ? "" : "; shims are spawned directly");
		zygote_stop(rt, true);
		/* one that ended before its first answer does not know --zygote
		 * (an older v6-shim): it forked nothing */
		got = sent < 0 || (n == 0 && rt->zserved == 0) ? -ENOSYS : -EPIPE;
		rt->zygote = rt->zserved > 0;
	}
	if (got > 0)
		rt->zserved++;
	else if (n == (ssize_t)sizeof got)	/* it forked nothing (fork failed, long dir) */
		got = -ENOSYS;
	uv_mutex_unlock(&rt->zmu);
	if (got > 0)
		*pid = got;
	return got > 0 ? 0 : got;
}

/* ---- handles ------------------------------------------------------------ */

static void
rt_unref(struct rt *rt)
{
	if (--rt->refs > 0)
		return;
	zygote_stop(rt, false);
	uv_mutex_destroy(&rt->zmu);
	for (int i = 0; i < CG_NCTRL; i++)
		free(rt->cg_base[i]);
	free(rt->ctr_root);
	free(rt->log_root);
	free(rt->runc_root);
	free(rt->layer_root);
	free(rt->shared_root);
	free(rt->pod_state_root);
	free(rt->shim_exe);
	free(rt);
}

static struct rt_ctr *
ctr_new(struct rt *rt, const char *pod_uid, const char *name, int attempt, rt_exit_fn fn,
    void *arg)
{
	struct rt_ctr *c = xcalloc(1, sizeof *c);
	c->rt = rt;
	c->dir = xasprintf("%s/%s/%s-%d", rt->ctr_root, pod_uid, name, attempt);
	c->pod_uid = xstrdup(pod_uid);
	c->name = xstrdup(name);
	c->attempt = attempt;
	c->fn = fn;
	c->arg = arg;
	c->next = rt->ctrs;
	if (c->next)
		c->next->prevp = &c->next;
	c->prevp = &rt->ctrs;
	rt->ctrs = c;
	rt->refs++;
	return c;
}

static void
ctr_free(struct rt_ctr *c)
{
	for (int i = 0; i < CG_NCTRL; i++)
		free(c->cg[i]);
	free(c->dir);
	free(c->runc_id);
	free(c->pod_uid);
	free(c->name);
	struct rt *rt = c->rt;
	free(c);
	rt_unref(rt);
}

static void
on_handle_closed(uv_handle_t *h)
{
	ctr_free(h->data);
}

/* Unlinks c and frees it once its handle is closed. */
static void await_end(struct rt_ctr *c);

static void
ctr_drop(struct rt_ctr *c)
{
	if (c->next)
		c->next->prevp = c->prevp;
	*c->prevp = c->next;
	c->fn = NULL;
	proc_watch_close(c->watch);
	c->watch = NULL;
	await_end(c);
	if (c->job) {
		c->dropped = true;	/* freed when the job is done */
		return;
	}
	if (c->has_timer)
		uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	else
		ctr_free(c);
}

/* The shim is gone (or the adopted container was found exited): read the
 * outcome and report it. fn is the last thing to touch c. */
static void
ctr_finish(struct rt_ctr *c)
{
	await_end(c);
	if (c->st.state == RT_RUNNING) {
		struct rt_status st = c->st;
		if (read_exit(c->dir, &st) < 0)
			record_unknown(c->dir, &st);
		c->st = st;
	}
	if (c->fn)
		c->fn(c->arg, c, &c->st);
}

static void
on_shim_exit(struct proc_watch *w, int status, void *arg)
{
	(void)w;
	(void)status;
	ctr_finish(arg);
}

static void
on_adopted_exited(uv_timer_t *t)
{
	ctr_finish(t->data);
}

/* c's timer, made on first use (closed by ctr_drop). */
static uv_timer_t *
ctr_timer(struct rt_ctr *c)
{
	if (!c->has_timer) {
		uv_timer_init(c->rt->loop, &c->timer);
		c->timer.data = c;
		c->has_timer = true;
	}
	return &c->timer;
}

/* A container found already over: reported on the loop's next turn. */
static void
finish_soon(struct rt_ctr *c)
{
	uv_timer_start(ctr_timer(c), on_adopted_exited, 0, 0);
}

/* Watches the shim (ticks != 0: an adopted one, checked against PID
 * reuse; ticks == 0: our own child, reaped on exit). */
static int
ctr_watch(struct rt_ctr *c, pid_t shim_pid, uint64_t ticks)
{
	return proc_watch_start(c->rt->loop, shim_pid, ticks, ticks == 0, on_shim_exit, c,
	    &c->watch);
}

/* ---- open / close ------------------------------------------------------- */

static int
mkdirs(const char *dir)
{
	return cg_mkdirs(dir);
}

static void
find_shim(struct rt *rt, const char *self_exe)
{
	const char *env = getenv("V6_SHIM");
	const char *slash = strrchr(self_exe, '/');
	char *small = slash ? xasprintf("%.*s/v6-shim", (int)(slash - self_exe), self_exe)
	    : xstrdup("v6-shim");
	if (env && *env) {
		rt->shim_exe = xstrdup(env);
		free(small);
	} else if (access(small, X_OK) == 0) {
		rt->shim_exe = small;
	} else {
		rt->shim_exe = xstrdup(self_exe);
		rt->shim_verb = true;
		free(small);
	}
}

/* Before the kubelet's layout (pods/NS_POD_UID/CTR/N.log) the same tree
 * lived under STATE/logs. Moves it to STATE/pods (a rename, so the shims of
 * adopted containers keep writing to the same open files) and leaves
 * STATE/logs as a symbolic link to pods, so their rotation, which renames
 * by the old path, still lands in the new tree. */
static int
migrate_log_root(const char *state_dir, const char *log_root)
{
	char *old = xasprintf("%s/logs", state_dir);
	struct stat st;
	int rc = 0;
	if (lstat(old, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (rename(old, log_root) < 0 && (errno == EEXIST || errno == ENOTEMPTY)) {
			/* both trees: move the old pods' dirs over one by one */
			DIR *d = opendir(old);
			struct dirent *de;
			while (d && (de = readdir(d)) != NULL) {
				if (de->d_name[0] == '.')
					continue;
				char *from = xasprintf("%s/%s", old, de->d_name);
				char *to = xasprintf("%s/%s", log_root, de->d_name);
				if (rename(from, to) < 0)
					log_warn("node", "moving %s to %s: %s", from, to, strerror(errno));
				free(from);
				free(to);
			}
			if (d)
				closedir(d);
			rmdir(old);
		}
		if (lstat(old, &st) == 0)
			rc = -ENOTEMPTY;
		else if (symlink("pods", old) < 0)
			rc = -errno;
		if (rc < 0)
			log_warn("node", "moving the container logs from %s to %s: %s", old,
			    log_root, strerror(-rc));
		else
			log_info("node", "container logs moved from %s to %s (kubelet layout)", old,
			    log_root);
		rc = 0;
	}
	free(old);
	return rc;
}

int
rt_open(uv_loop_t *loop, const char *state_dir, const char *self_exe, struct rt **out)
{
	struct rt *rt = xcalloc(1, sizeof *rt);
	rt->loop = loop;
	rt->refs = 1;
	rt->zfd = -1;
	uv_mutex_init(&rt->zmu);
	rt->ctr_root = xasprintf("%s/containers", state_dir);
	rt->log_root = xasprintf("%s/pods", state_dir);
	rt->runc_root = xasprintf("%s/runc", state_dir);
	rt->layer_root = xasprintf("%s/overlays", state_dir);
	rt->shared_root = xasprintf("%s/shared", state_dir);
	char *run = NULL;
	int rc = rt_rundir_make(state_dir, rt->ctr_root, &run);
	rt->pod_state_root = run ? xasprintf("%s/pods", run) : xstrdup(rt->log_root);
	free(run);
	if (rc == 0)
		rc = mkdirs(rt->shared_root);
	if (rc == 0)
		rc = migrate_log_root(state_dir, rt->log_root);
	if (rc == 0)
		rc = mkdirs(rt->log_root);
	if (rc < 0) {
		log_error("node", "creating %s: %s", state_dir, strerror(-rc));
		rt_unref(rt);
		return rc;
	}
	find_shim(rt, self_exe);
	const char *z = getenv("V6_SHIM_ZYGOTE");
	rt->zygote = !rt->shim_verb && !(z && strcmp(z, "0") == 0);
	/* Started now rather than by the first start's job: its exec is not on
	 * the first pod's path (a server's first pod waited ~5 ms for it). */
	if (rt->zygote && zygote_start(rt) < 0)
		rt->zygote = false;
	shared_gc(rt);			/* copies pods removed while we were away left */
	for (int i = 0; i < CG_NCTRL; i++) {
		int err = 0;
		rt->cg_base[i] = cg_base(i, &err);
		if (rt->cg_base[i] == NULL)
			log_warn("node", "cgroup v1 controller %s unavailable (%s): its limits "
			    "and usage are not enforced or measured by cgroups", cg_ctrl_name(i),
			    strerror(err));
	}
	*out = rt;
	return 0;
}

void
rt_close(struct rt *rt)
{
	while (rt->ctrs)
		ctr_drop(rt->ctrs);
	rt_unref(rt);
}

/* ---- start -------------------------------------------------------------- */

static const char *
env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

static int
check_file(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0)
		return -EACCES;
	return 0;
}

/* The lookup execvp will do in the shim, done first so that rt_start can
 * refuse a command that cannot run. */
static int
find_exec(const char *file, const char *path_env, const char *cwd, char **err)
{
	int rc = -ENOENT;
	if (strchr(file, '/')) {
		char *p = file[0] == '/' ? xstrdup(file) : xasprintf("%s/%s", cwd, file);
		rc = check_file(p);
		free(p);
		if (rc < 0)
			*err = xasprintf("exec: \"%s\": %s", file,
			    rc == -ENOENT ? "no such file or directory" : "permission denied");
		return rc;
	}
	for (const char *d = path_env; rc < 0 && d; d = strchr(d, ':') ? strchr(d, ':') + 1 : NULL) {
		int len = (int)strcspn(d, ":");
		char *p = len == 0 ? xasprintf("%s/%s", cwd, file)
		    : d[0] == '/' ? xasprintf("%.*s/%s", len, d, file)
		    : xasprintf("%s/%.*s/%s", cwd, len, d, file);
		int r = check_file(p);
		free(p);
		if (r == 0 || (r == -EACCES && rc == -ENOENT))
			rc = r;
	}
	if (rc == -ENOENT)
		*err = xasprintf("exec: \"%s\": executable file not found in $PATH", file);
	else if (rc < 0)
		*err = xasprintf("exec: \"%s\": permission denied", file);
	return rc;
}

static json_t *
str_list(char *const *v, bool add_path)
{
	json_t *a = json_array();
	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	if (add_path)
		json_array_append_new(a, json_string("PATH=" DEFAULT_PATH));
	return a;
}

/* [{source, target, readOnly}] for the shim to bind-mount. */
static json_t *
mounts_json(const struct rt_spec *s)
{
	json_t *a = json_array();
	for (size_t i = 0; i < s->n_mounts; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:b}", "source",
		    s->mounts[i].source, "target", s->mounts[i].target,
		    "readOnly", s->mounts[i].read_only));
	return a;
}

static json_t *
spec_json(struct rt *rt, const struct rt_spec *s, const char *cwd, const char *log_path)
{
	json_t *cg = json_object();
	for (int i = 0; i < CG_NCTRL; i++) {
		char *d = ctr_cg_path(rt, s->pod_uid, s->name, i);
		if (d)
			json_object_set_new(cg, cg_ctrl_name(i), json_string(d));
		free(d);
	}
	bool given = s->working_dir && *s->working_dir;
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:o, s:o, s:s, s:b, s:s, s:I, s:i, s:o, "
	    "s:I, s:I, s:I, s:s, s:o, s:o*, s:b, s:b, s:b}",
	    "podUID", s->pod_uid, "podNamespace", s->pod_namespace ? s->pod_namespace : "",
	    "podName", s->pod_name ? s->pod_name : "", "name", s->name, "attempt", s->attempt,
	    "argv", str_list(s->argv, false),
	    "env", str_list(s->envp, env_get(s->envp, "PATH") == NULL),
	    "workingDir", cwd, "makeWorkingDir", !given || s->make_working_dir, "log", log_path,
	    "logMaxBytes", (json_int_t)(s->log_max_bytes > 0 ? s->log_max_bytes : 10 << 20),
	    "logMaxFiles", s->log_max_files > 0 ? s->log_max_files : 2,
	    "cgroups", cg, "memoryLimit", (json_int_t)s->memory_limit,
	    "cpuLimitMillis", (json_int_t)s->cpu_limit_millis,
	    "pidsLimit", (json_int_t)s->pids_limit, "podIP", s->pod_ip ? s->pod_ip : "",
	    "mounts", mounts_json(s),
	    "security", s->security ? secctx_to_json(s->security) : NULL,
	    "stdin", s->stdin_open, "stdinOnce", s->stdin_once, "tty", s->tty);
}

/* The dirs of a runc container's bundle: under DIR (tmpfs) and, for its
 * overlay's writable half, under OVERLAYS (disk). */
static const char *const runc_dirs[] = { "bundle/rootfs" };
static const char *const runc_layer_dirs[] = { "upper", "work" };

/* OVERLAYS/UID/NAME-ATTEMPT, where a runc container's upper and work are. */
static char *
layer_dir(const struct rt *rt, const struct rt_spec *s)
{
	return xasprintf("%s/%s/%s-%d", rt->layer_root, s->pod_uid, s->name, s->attempt);
}

/* spec.json of a runc container: the shim runs `runc run -d` (argv) after
 * mounting the overlay that "runc" describes, then supervises the
 * container's init itself (node_shim.c). */
static json_t *
runc_spec_json(struct rt *rt, const struct rt_spec *s, const char *dir, json_t *spec)
{
	char *id = xasprintf("%s-%s-%d", s->pod_uid, s->name, s->attempt);
	char *bundle = xasprintf("%s/bundle", dir), *layers = layer_dir(rt, s);
	json_t *lower = str_list(s->runc->layers, false);
	json_t *r = json_pack("{s:s, s:s, s:s, s:o, s:s+, s:s+}", "root", rt->runc_root,
	    "id", id, "bundle", bundle, "lower", lower, "upper", layers, "/upper",
	    "work", layers, "/work");
	free(layers);
	char *log = xasprintf("%s/runc.log", dir), *pid_file = xasprintf("%s/init.pid", dir);
	json_object_set_new(spec, "argv", json_pack("[s, s, s, s, s, s, s, s, s, s, s, s, s, s]",
	    "runc", "--root", rt->runc_root, "--log", log, "--log-format", "json", "run", "-d",
	    "--pid-file", pid_file, "--bundle", bundle, id));
	free(log);
	free(pid_file);
	json_object_set_new(spec, "env", str_list(NULL, true));
	json_object_set_new(spec, "workingDir", json_string(dir));
	json_object_set_new(spec, "makeWorkingDir", json_false());
	json_object_set_new(spec, "mounts", json_array());
	json_object_set_new(spec, "runc", r);
	free(id);
	free(bundle);
	return spec;
}

/* The bundle's dirs and files (config.json, the pod's /etc files) for the
 * job. */
static void
runc_job_files(struct spawn_job *j, const struct rt *rt, const struct rt_spec *s)
{
	const struct rt_runc *r = s->runc;
	size_t n = 0, k = 0;
	const char *name;
	json_t *v;
	char *layers = layer_dir(rt, s);
	j->dirs = xcalloc(sizeof runc_dirs / sizeof runc_dirs[0] +
	    sizeof runc_layer_dirs / sizeof runc_layer_dirs[0] + 2, sizeof *j->dirs);
	for (size_t i = 0; i < sizeof runc_dirs / sizeof runc_dirs[0]; i++)
		j->dirs[n++] = xasprintf("%s/%s", j->dir, runc_dirs[i]);
	for (size_t i = 0; i < sizeof runc_layer_dirs / sizeof runc_layer_dirs[0]; i++)
		j->dirs[n++] = xasprintf("%s/%s", layers, runc_layer_dirs[i]);
	free(layers);
	if (r->etc_dir)
		j->dirs[n++] = xstrdup(r->etc_dir);
	j->files = xcalloc(2 * (json_object_size(r->etc_files) + 1) + 1, sizeof *j->files);
	j->files[k++] = xasprintf("%s/bundle/config.json", j->dir);
	j->files[k++] = xstrdup(r->config);
	json_object_foreach((json_t *)r->etc_files, name, v) {
		if (!r->etc_dir || !json_is_string(v))
			continue;
		j->files[k++] = xasprintf("%s/%s", r->etc_dir, name);
		j->files[k++] = xstrdup(json_string_value(v));
	}
}

static void
free_vec(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void
job_free(struct spawn_job *j)
{
	free(j->dir);
	free(j->spec_path);
	free(j->spec_text);
	free_vec(j->files);
	free_vec(j->dirs);
	free_vec(j->pod_files);
	free_vec(j->shared_files);
	free(j->shared_root);
	free(j->sandbox_dir);
	free(j);
}

/* rt_spec.files as path, text, ..., NULL. */
static char **
pod_files_vec(const json_t *files)
{
	size_t k = 0;
	const char *path;
	json_t *v;
	char **out = xcalloc(2 * json_object_size(files) + 1, sizeof *out);
	json_object_foreach((json_t *)files, path, v) {
		if (*path != '/' || !json_is_string(v))
			continue;
		out[k++] = xstrdup(path);
		out[k++] = xstrndup(json_string_value(v), json_string_length(v));
	}
	return out;
}

/* The name of text's copy in STATE/shared: FNV-1a 64 of the bytes and
 * their length (the content is compared before a copy is used anyway). */
static char *
shared_name(const char *root, const char *text)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t n = strlen(text);
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)text[i]) * 0x100000001b3ULL;
	return xasprintf("%s/%016" PRIx64 "-%zu", root, h, n);
}

/* True when path holds exactly text. */
static bool
same_text(const char *path, const char *text)
{
	char *got = NULL;
	size_t len = 0;
	bool same = file_read_all(path, &got, &len) == 0 && len == strlen(text) &&
	    memcmp(got, text, len) == 0;
	free(got);
	return same;
}

/* path becomes a hard link to text's copy in root (made 0644 when missing
 * or different), swapped in by rename like an atomic write. A copy removed
 * by shared_gc between the two steps is made again. */
static int
shared_link(const char *root, const char *path, const char *text)
{
	char *copy = shared_name(root, text), tmp[PATH_MAX];
	int rc = 0;
	snprintf(tmp, sizeof tmp, "%s.lnk%d", path, (int)gettid());
	for (int tries = 0; tries < 3; tries++) {
		if (!same_text(copy, text) && ((rc = file_write_atomic(copy, text, strlen(text),
		    false)) < 0 || (rc = chmod(copy, 0644) < 0 ? -errno : 0) < 0))
			break;
		unlink(tmp);
		rc = link(copy, tmp) < 0 ? -errno : rename(tmp, path) < 0 ? -errno : 0;
		if (rc != -ENOENT)
			break;
	}
	if (rc < 0)
		unlink(tmp);
	free(copy);
	return rc;
}

/* Removes the copies no pod links any more (one name, st_nlink 1). */
static void
shared_gc(const struct rt *rt)
{
	DIR *d = opendir(rt->shared_root);
	struct dirent *de;
	struct stat st;
	while (d && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &st, 0) == 0 &&
		    st.st_nlink == 1)
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
}

/* Writes one of rt_spec.files (or links one of rt_spec.shared_files when
 * shared_root is given): its dir made 0755, the file 0644 (both are
 * bind-mounted into containers running as any user). */
static int
pod_file_write(const char *path, const char *text, const char *shared_root)
{
	char *dir = xstrndup(path, (size_t)(strrchr(path, '/') - path));
	int rc = cg_mkdirs(dir);
	if (rc == 0 && chmod(dir, 0755) < 0)
		rc = -errno;
	free(dir);
	if (rc == 0 && shared_root)
		return shared_link(shared_root, path, text);
	if (rc == 0)
		rc = file_write_atomic(path, text, strlen(text), false);
	return rc == 0 && chmod(path, 0644) < 0 ? -errno : rc;
}

/* Everything the worker needs, built on the loop (jansson is not shared
 * across threads). */
static struct spawn_job *
job_new(struct rt *rt, const struct rt_spec *s, const char *dir, const char *cwd)
{
	struct spawn_job *j = xcalloc(1, sizeof *j);
	char *log_path = rt_log_path(rt, s->pod_namespace, s->pod_name, s->pod_uid, s->name,
	    s->attempt);
	json_t *spec = spec_json(rt, s, cwd, log_path);
	j->dir = xstrdup(dir);
	if (s->runc) {
		runc_spec_json(rt, s, dir, spec);
		runc_job_files(j, rt, s);
		if (s->runc->sandbox && s->runc->sandbox_dir) {
			j->sandbox = s->runc->sandbox;
			j->sandbox_dir = xstrdup(s->runc->sandbox_dir);
		}
	}
	if (s->files)
		j->pod_files = pod_files_vec(s->files);
	if (s->shared_files) {
		j->shared_files = pod_files_vec(s->shared_files);
		j->shared_root = xstrdup(rt->shared_root);
	}
	j->spec_text = json_dumps(spec, JSON_COMPACT);
	json_decref(spec);
	free(log_path);
	j->spec_path = ctr_file(dir, "spec.json");
	j->rt = rt;
	j->argv[0] = rt->shim_exe;
	j->argv[1] = rt->shim_verb ? "shim" : j->dir;
	j->argv[2] = rt->shim_verb ? j->dir : NULL;
	return j;
}

/* On the thread pool: system calls only. */
static void
job_work(uv_work_t *req)
{
	struct spawn_job *j = req->data;
	if (j->sandbox && (j->rc = j->sandbox(j->sandbox_dir)) < 0) {
		j->sandbox_failed = true;
		return;
	}
	j->rc = cg_mkdirs(j->dir);
	/* The overlay's upper dir is the container's "/" and the /etc files
	 * are bind-mounted: any container user reads them, whatever the
	 * server's umask. config.json (files[0], the environment) stays 0600. */
	for (size_t i = 0; j->rc == 0 && j->dirs && j->dirs[i]; i++)
		if ((j->rc = cg_mkdirs(j->dirs[i])) == 0 && chmod(j->dirs[i], 0755) < 0)
			j->rc = -errno;
	for (size_t i = 0; j->rc == 0 && j->files && j->files[i]; i += 2)
		if ((j->rc = file_write_atomic(j->files[i], j->files[i + 1],
		    strlen(j->files[i + 1]), false)) == 0 && i > 0 && chmod(j->files[i], 0644) < 0)
			j->rc = -errno;
	for (size_t i = 0; j->rc == 0 && j->pod_files && j->pod_files[i]; i += 2)
		j->rc = pod_file_write(j->pod_files[i], j->pod_files[i + 1], NULL);
	for (size_t i = 0; j->rc == 0 && j->shared_files && j->shared_files[i]; i += 2)
		j->rc = pod_file_write(j->shared_files[i], j->shared_files[i + 1], j->shared_root);
	if (j->rc == 0)
		j->rc = file_write_atomic(j->spec_path, j->spec_text, strlen(j->spec_text), false);
	int z = j->rc == 0 ? zygote_spawn(j->rt, j->dir, &j->pid) : -ENOSYS;
	if (z == 0) {
		j->forked = true;
		if (proc_start_ticks(j->pid, &j->ticks) < 0)
			j->ticks = 0;	/* already over: its exit.json says how */
	} else if (j->rc == 0 && z == -ENOSYS) {
		j->rc = proc_spawn(j->argv, NULL, &j->pid);
	} else if (j->rc == 0) {
		j->rc = z;
	}
}

/* The shim could not be started: the container ends as a StartError, as
 * if the shim had written it, and fn hears of it like of any exit. */
static void
record_start_error(struct rt_ctr *c, int rc, const char *sandbox_dir)
{
	char msg[sizeof c->st.message];
	if (sandbox_dir)
		snprintf(msg, sizeof msg, "Failed to create pod sandbox in %s: %s", sandbox_dir,
		    strerror(-rc));
	else
		snprintf(msg, sizeof msg, "starting the shim %s: %s", c->rt->shim_exe,
		    strerror(-rc));
	record_exit(c->dir, &c->st, 128, "StartError", msg);
	log_error("node", "%s: %s", c->dir, msg);
}

static bool shim_alive(const struct rt_ctr *c);

/* A runc container counts as started once its shim recorded the init's pid
 * in DIR/ctr.pid (`runc run -d` done), or ended. Noticed through inotify
 * (file_wait.c); the slow poll is the safety net, the fast one the way
 * without inotify. */
#define AWAIT_SAFETY_MS	100
#define AWAIT_POLL_MS	5
#define AWAIT_MAX_MS	60000

static void
await_end(struct rt_ctr *c)
{
	file_wait_stop(c->await);
	c->await = NULL;
	c->awaiting = false;
}

static void
await_check(void *arg)
{
	struct rt_ctr *c = arg;
	struct rt_status st = c->st;
	bool ran = read_ctr_pid(c->dir, &st, NULL) == 0;
	if (!ran && shim_alive(c) && time_mono_ms() < c->await_until)
		return;
	await_end(c);
	if (ran)
		c->st.pid = st.pid;
	if (c->pending_sig)
		rt_signal(c, c->pending_sig);
	else if (c->rt->started && c->st.state == RT_RUNNING)
		c->rt->started(c->arg, c);
}

/* Looks once at once: the loop may have been slower than runc. */
static void
await_runc(struct rt_ctr *c)
{
	c->awaiting = true;
	c->await_until = time_mono_ms() + AWAIT_MAX_MS;
	if (file_wait_start(c->rt->loop, c->dir, "ctr.pid", AWAIT_SAFETY_MS, AWAIT_POLL_MS,
	    await_check, c, &c->await) < 0)
		c->await = NULL;	/* no timer either: the shim's exit ends it */
	await_check(c);
}

static void
job_done(uv_work_t *req, int status)
{
	struct spawn_job *j = req->data;
	struct rt_ctr *c = j->c;
	int rc = status < 0 ? status : j->rc;
	c->job = NULL;
	if (c->dropped) {
		job_free(j);
		ctr_free(c);
		return;
	}
	/* A shim of the zygote is not our child: watched as an adopted one (its
	 * start time against PID reuse); one that is already over is read
	 * from its exit.json on the next turn. */
	bool over = false;
	if (rc == 0)
		rc = j->forked && j->ticks == 0 ? -ESRCH : ctr_watch(c, j->pid, j->ticks);
	if (rc == -ESRCH && j->forked) {
		rc = 0;
		over = true;
		finish_soon(c);
	}
	if (rc < 0 && j->pid > 0)
		log_error("node", "watching shim %d of %s: %s", (int)j->pid, c->dir,
		    strerror(-rc));
	char *sandbox = j->sandbox_failed ? xstrdup(j->sandbox_dir) : NULL;
	job_free(j);
	if (rc < 0 && c->watch == NULL) {
		record_start_error(c, rc, sandbox);
		free(sandbox);
		if (c->fn)
			c->fn(c->arg, c, &c->st);
		return;
	}
	free(sandbox);			/* NULL: a failed sandbox never has a watch */
	if (c->runc_id && !over)
		await_runc(c);
	else if (c->pending_sig)
		rt_signal(c, c->pending_sig);
	else if (c->rt->started)
		c->rt->started(c->arg, c);
}

void
rt_set_started_fn(struct rt *rt, rt_started_fn fn)
{
	rt->started = fn;
}

bool
rt_starting(const struct rt_ctr *c)
{
	return c->job != NULL || c->awaiting;
}

/* A file name of its own: no "/", not "." or "..". */
static bool
path_safe(const char *s)
{
	return *s && *s != '.' && strchr(s, '/') == NULL;
}

/* Refuses what cannot start, with the message for the pod's status. */
static int
check_spec(struct rt *rt, const struct rt_spec *s, char **cwd, char **err)
{
	struct stat st;
	const char *path = env_get(s->envp, "PATH");
	if (s->pod_uid == NULL || !*s->pod_uid || s->name == NULL || !*s->name ||
	    (!s->runc && (s->argv == NULL || s->argv[0] == NULL || !*s->argv[0]))) {
		*err = xstrdup("no command to run");
		return -EINVAL;
	}
	if (!path_safe(s->pod_uid) || !path_safe(s->name)) {
		*err = xasprintf("invalid pod uid or container name \"%s/%s\"", s->pod_uid,
		    s->name);
		return -EINVAL;
	}
	if (s->runc) {		/* the command is in config.json, run by runc */
		*cwd = xstrdup("/");
		return 0;
	}
	bool given = s->working_dir && *s->working_dir;
	/* The default is the pod's dir on disk (the node agent's, too): what a
	 * workload writes there is not memory, as it would be under ctr_root. */
	*cwd = given ? xstrdup(s->working_dir) : xasprintf("%s/%s", rt->log_root, s->pod_uid);
	if (!given || s->make_working_dir)	/* made by the start's job */
		return find_exec(s->argv[0], path ? path : DEFAULT_PATH, *cwd, err);
	int rc = stat(*cwd, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	if (rc < 0) {
		*err = xasprintf("chdir to working directory \"%s\": %s", *cwd, strerror(-rc));
		return rc;
	}
	return find_exec(s->argv[0], path ? path : DEFAULT_PATH, *cwd, err);
}

static bool is_listed(struct rt *rt, const char *dir);

/* A new container dir's path; an attempt is never reused. The directory
 * itself is made by the start's job. */
static char *
ctr_dir_new(struct rt *rt, const struct rt_spec *spec, int *rc, char **err)
{
	struct stat st;
	char *dir = xasprintf("%s/%s/%s-%d", rt->ctr_root, spec->pod_uid, spec->name,
	    spec->attempt);
	*rc = 0;
	if (stat(dir, &st) == 0 || is_listed(rt, dir)) {
		*rc = -EEXIST;
		*err = xasprintf("container %s attempt %d: already exists", spec->name,
		    spec->attempt);
		free(dir);
		dir = NULL;
	}
	return dir;
}

int
rt_start(struct rt *rt, const struct rt_spec *spec, rt_exit_fn fn, void *arg,
    struct rt_ctr **out, char **err)
{
	char *cwd = NULL, *dir = NULL;
	*err = NULL;
	int rc = check_spec(rt, spec, &cwd, err);
	if (rc == 0)
		dir = ctr_dir_new(rt, spec, &rc, err);
	if (rc < 0) {
		free(cwd);
		return rc;
	}
	struct spawn_job *j = job_new(rt, spec, dir, cwd);
	free(cwd);
	free(dir);
	struct rt_ctr *c = ctr_new(rt, spec->pod_uid, spec->name, spec->attempt, fn, arg);
	c->st.state = RT_RUNNING;
	c->st.started_at_ms = time_now_ms();
	for (int i = 0; i < CG_NCTRL; i++)
		c->cg[i] = ctr_cg_path(rt, spec->pod_uid, spec->name, i);
	if (spec->runc)
		c->runc_id = xasprintf("%s-%s-%d", spec->pod_uid, spec->name, spec->attempt);
	j->c = c;
	j->req.data = j;
	c->job = j;
	rc = uv_queue_work(rt->loop, &j->req, job_work, job_done);
	BUG_ON(rc < 0);			/* only for a NULL callback */
	*out = c;
	return 0;
}

/* ---- scan / adopt ------------------------------------------------------- */

/* "NAME-ATTEMPT" -> name (caller frees) and attempt. */
static char *
parse_ctr_dir(const char *s, int *attempt)
{
	const char *dash = strrchr(s, '-');
	char *end;
	if (dash == NULL || dash == s || dash[1] == '\0')
		return NULL;
	long a = strtol(dash + 1, &end, 10);
	if (*end != '\0' || a < 0 || a > INT_MAX)
		return NULL;
	*attempt = (int)a;
	return xstrndup(s, (size_t)(dash - s));
}

static bool
is_listed(struct rt *rt, const char *dir)
{
	for (struct rt_ctr *c = rt->ctrs; c; c = c->next)
		if (strcmp(c->dir, dir) == 0)
			return true;
	return false;
}

static void
scan_pod(struct rt *rt, const char *uid, rt_found_fn fn, void *arg)
{
	char *pod_dir = xasprintf("%s/%s", rt->ctr_root, uid);
	DIR *d = opendir(pod_dir);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		int attempt;
		char *name = parse_ctr_dir(de->d_name, &attempt);
		char *dir = xasprintf("%s/%s", pod_dir, de->d_name);
		struct rt_status st;
		if (name && !is_listed(rt, dir)) {
			load_status(dir, &st, NULL);
			fn(arg, uid, name, attempt, &st);
		}
		free(dir);
		free(name);
	}
	if (d)
		closedir(d);
	free(pod_dir);
}

int
rt_scan(struct rt *rt, rt_found_fn fn, void *arg)
{
	DIR *d = opendir(rt->ctr_root);
	struct dirent *de;
	if (d == NULL)
		return -errno;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			scan_pod(rt, de->d_name, fn, arg);
	closedir(d);
	return 0;
}

int
rt_adopt(struct rt *rt, const char *pod_uid, const char *name, int attempt,
    rt_exit_fn fn, void *arg, struct rt_ctr **out)
{
	struct stat sb;
	struct rt_ctr *c = ctr_new(rt, pod_uid, name, attempt, fn, arg);
	int rc = stat(c->dir, &sb) < 0 ? -errno : 0;
	for (struct rt_ctr *o = c->next; rc == 0 && o; o = o->next)
		if (strcmp(o->dir, c->dir) == 0)
			rc = -EBUSY;
	if (rc < 0) {
		ctr_drop(c);
		return rc;
	}
	load_cgroups(c);
	struct proc_id shim_id;
	int shim = load_status(c->dir, &c->st, &shim_id);
	if (shim > 0) {
		rc = ctr_watch(c, shim, shim_id.ticks);
		if (rc == 0) {
			*out = c;
			return 0;
		}
		if (rc != -ESRCH) {	/* alive but cannot be watched */
			ctr_drop(c);
			return rc;
		}
	}
	if (c->st.state == RT_RUNNING)	/* exited between the two looks */
		load_status(c->dir, &c->st, NULL);
	finish_soon(c);
	*out = c;
	return 0;
}

/* ---- status, signals, usage --------------------------------------------- */

static bool
shim_alive(const struct rt_ctr *c)
{
	return c->watch && proc_watch_alive(c->watch);
}

void
rt_status(const struct rt_ctr *c, struct rt_status *st)
{
	*st = c->st;
	if (st->state == RT_RUNNING && st->pid == 0)
		read_ctr_pid(c->dir, st, NULL);
}

int
rt_signal(struct rt_ctr *c, int sig)
{
	struct timespec ms = { 0, 1000 * 1000 };
	if (c->st.state != RT_RUNNING)
		return -ESRCH;
	if (c->job || c->awaiting) {
		c->pending_sig = sig;
		return 0;
	}
	/* Just started: the shim has not forked the container yet (a few ms). */
	for (int i = 0; c->st.pid == 0 && i < 200; i++) {
		if (read_ctr_pid(c->dir, &c->st, NULL) == 0 || !shim_alive(c))
			break;
		nanosleep(&ms, NULL);
	}
	if (c->st.pid <= 0)
		return -ESRCH;
	return kill(-c->st.pid, sig) < 0 ? -errno : 0;
}

/* Without cgroups: the main process alone, from /proc. */
static int
proc_usage(int pid, struct rt_usage *u, bool cpu, bool mem)
{
	char path[64], buf[1024];
	unsigned long long utime, stime;
	long pages = 0;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	/* after ')': state(3) ... utime(14) stime(15) */
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	    &utime, &stime) != 2)
		return -ESRCH;
	if (cpu)
		u->cpu_ns = (utime + stime) * (1000000000ULL / (uint64_t)sysconf(_SC_CLK_TCK));
	snprintf(path, sizeof path, "/proc/%d/statm", pid);
	f = fopen(path, "re");
	if (f && fscanf(f, "%*d %ld", &pages) == 1 && mem)
		u->memory_bytes = (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
	if (f)
		fclose(f);
	return 0;
}

int
rt_usage(const struct rt_ctr *c, struct rt_usage *u)
{
	struct rt_status st;
	bool cpu = false, mem = false;
	memset(u, 0, sizeof *u);
	rt_status(c, &st);
	if (st.state != RT_RUNNING)
		return -ESRCH;
	if (c->cg[CG_CPUACCT] && cg_cpu_usage_ns(c->cg[CG_CPUACCT], &u->cpu_ns) == 0)
		cpu = true;
	if (c->cg[CG_MEMORY] && cg_memory_working_set(c->cg[CG_MEMORY], &u->memory_bytes) == 0)
		mem = true;
	if (cpu && mem)
		return 0;
	return st.pid > 0 ? proc_usage(st.pid, u, !cpu, !mem) : -ESRCH;
}

bool
rt_is_runc(const struct rt_ctr *c)
{
	return c->runc_id != NULL;
}

const char *
rt_cgroup_dir(const struct rt_ctr *c, int k)
{
	return k >= 0 && k < CG_NCTRL ? c->cg[k] : NULL;
}

json_t *
rt_enter_argv(const struct rt_ctr *c)
{
	if (c->runc_id)		/* runc exec: the container's env, cwd, user */
		return json_pack("[s, s, s, s, s]", "runc", "--root", c->rt->runc_root, "exec",
		    c->runc_id);
	if (c->job || c->st.state != RT_RUNNING || geteuid() != 0)
		return NULL;
	json_t *a = json_array();
	json_array_append_new(a, json_string(c->rt->shim_exe));
	if (c->rt->shim_verb)
		json_array_append_new(a, json_string("shim"));
	json_array_append_new(a, json_string("--enter"));
	json_array_append_new(a, json_string(c->dir));
	return a;
}

json_t *
rt_runc_process(const struct rt_ctr *c)
{
	if (!c->runc_id)
		return NULL;
	char *path = xasprintf("%s/bundle/config.json", c->dir);
	json_t *cfg = json_load_file(path, 0, NULL);
	json_t *p = json_incref(json_object_get(cfg, "process"));
	json_decref(cfg);
	free(path);
	return p;
}

char *
rt_stdin_path(const struct rt_ctr *c)
{
	return ctr_file(c->dir, "stdin");
}

char *
rt_ctl_path(const struct rt_ctr *c)
{
	return ctr_file(c->dir, "ctl");
}

void
rt_release(struct rt_ctr *c)
{
	ctr_drop(c);
}

/* ---- removal ------------------------------------------------------------ */

static void
rm_tree(const char *path)
{
	int rc = util_remove_tree(path);
	if (rc < 0)
		log_warn("node", "removing %s: %s", path, strerror(-rc));
}

/* Removes the container groups recorded in each spec.json of the pod, then
 * the pod's group under every controller. */
static void
remove_cgroups(struct rt *rt, const char *pod_uid)
{
	char *pod_dir = xasprintf("%s/%s", rt->ctr_root, pod_uid);
	DIR *d = opendir(pod_dir);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		int attempt;
		char *name = parse_ctr_dir(de->d_name, &attempt);
		struct rt_ctr c = { .dir = xasprintf("%s/%s", pod_dir, de->d_name) };
		if (name) {
			load_cgroups(&c);
			for (int i = 0; i < CG_NCTRL; i++) {
				int rc = c.cg[i] ? cg_remove(c.cg[i]) : 0;
				if (rc < 0 && rc != -ENOENT)	/* runc removes its own */
					log_warn("node", "removing cgroup %s: %s", c.cg[i],
					    strerror(-rc));
				free(c.cg[i]);
			}
		}
		free(c.runc_id);
		free(c.dir);
		free(name);
	}
	if (d)
		closedir(d);
	free(pod_dir);
	for (int i = 0; i < CG_NCTRL; i++) {
		if (rt->cg_base[i] == NULL)
			continue;
		char *pod_cg = xasprintf("%s/%s", rt->cg_base[i], pod_uid);
		DIR *cd = opendir(pod_cg);
		while (cd && (de = readdir(cd)) != NULL) {
			char *sub = xasprintf("%s/%s", pod_cg, de->d_name);
			if (de->d_type == DT_DIR && de->d_name[0] != '.')
				cg_remove(sub);
			free(sub);
		}
		if (cd)
			closedir(cd);
		cg_remove(pod_cg);
		free(pod_cg);
	}
}

int
rt_remove_pod(struct rt *rt, const char *pod_uid)
{
	if (pod_uid == NULL || !path_safe(pod_uid))
		return -EINVAL;
	remove_cgroups(rt, pod_uid);
	cg_remove_v6_everywhere(pod_uid);	/* runc's groups in other controllers */
	char *pod_dir = xasprintf("%s/%s", rt->ctr_root, pod_uid);
	rm_tree(pod_dir);
	free(pod_dir);
	pod_dir = xasprintf("%s/%s", rt->layer_root, pod_uid);
	rm_tree(pod_dir);
	free(pod_dir);
	pod_dir = xasprintf("%s/%s", rt->log_root, pod_uid);	/* the default working dir */
	rm_tree(pod_dir);
	free(pod_dir);
	pod_dir = rt_pod_state_dir(rt, pod_uid);
	rm_tree(pod_dir);
	free(pod_dir);
	DIR *d = opendir(rt->log_root);
	struct dirent *de;
	char *suffix = xasprintf("_%s", pod_uid);
	while (d && (de = readdir(d)) != NULL) {
		if (!str_has_suffix(de->d_name, suffix))
			continue;
		char *log_dir = xasprintf("%s/%s", rt->log_root, de->d_name);
		rm_tree(log_dir);
		free(log_dir);
	}
	if (d)
		closedir(d);
	free(suffix);
	shared_gc(rt);
	return 0;
}

char *
rt_pod_state_dir(const struct rt *rt, const char *pod_uid)
{
	return xasprintf("%s/%s", rt->pod_state_root, pod_uid);
}

char *
rt_log_path(struct rt *rt, const char *pod_namespace, const char *pod_name,
    const char *pod_uid, const char *name, int attempt)
{
	return xasprintf("%s/%s_%s_%s/%s/%d.log", rt->log_root,
	    pod_namespace && *pod_namespace ? pod_namespace : "default",
	    pod_name && *pod_name ? pod_name : pod_uid, pod_uid, name, attempt);
}
