/* node_shim.c — the per-container supervisor (`v6 shim DIR`, or the small
 * static `v6-shim DIR`), started detached by rt_start (node_runtime.c).
 * It reads DIR/spec.json, puts the container in its cgroups, runs it, copies
 * its stdout/stderr into a size-rotated CRI log file, and records the exit in
 * DIR/exit.json. Plain libc + jansson and no loop library, to stay small.
 *
 * spec.json: {argv[], env[], workingDir, makeWorkingDir, log, logMaxBytes, logMaxFiles,
 *   cgroups{memory,cpu,cpuacct,pids: DIR}, memoryLimit, cpuLimitMillis,
 *   pidsLimit, podUID, podNamespace, podName, name, attempt,
 *   mounts[{source, target, readOnly}], security{...} (node_secctx.h), stdin,
 *   stdinOnce, tty}
 * stdin true: the container's stdin is the FIFO DIR/stdin (pods/attach).
 * tty true: a pty is its stdin/stdout/stderr and controlling terminal; the
 * shim copies the master to the log (as stdout) and DIR/stdin into it.
 * Either makes the control FIFO DIR/ctl, whose lines the node writes
 * (node_attach.c): "size ROWS COLS" resizes the pty, "end" (an attach's
 * stdin ended) with stdinOnce drops the shim's own writer of DIR/stdin,
 * so the container reads EOF once the attach's writer is gone too (with
 * a tty: the shim stops copying DIR/stdin, as containerd's CloseIO).
 * Volumes: with mounts, the container gets its own mount namespace in which
 * each source is bind-mounted at its target (see setup_mounts).
 * security: its PID, IPC and mount namespaces, private /proc, read-only
 * root and the privilege drop before exec, in node_shim_sec.c; so is
 * `v6-shim --enter DIR CMD...` (exec probes and hooks in the container).
 * The shim makes what only it uses, in parallel with the other shims rather
 * than on the server's start path: DIR/shim.log (its stderr; only once it
 * has something to say), the log file and its directory (only once the
 * container writes), and the working directory when makeWorkingDir is true.
 * ctr.pid: "PID STARTTICKS STARTED_MS\n" (written as soon as it is forked)
 * exit.json: {exitCode, signal, oomKilled, pid, startedAt, finishedAt (ms),
 *   reason, message} — written atomically, after the pipes are drained.
 * A runc container (spec.json has runc{root, id, bundle, lower[], upper,
 * work}): the child mounts the overlay rootfs in a mount namespace of its own
 * and execs argv, `runc run -d --pid-file DIR/init.pid`, with the log pipes
 * as its stdio (which the container inherits). runc exits once the container
 * runs; its init, orphaned, is reparented to the shim (a subreaper), which
 * waits for it as for a process container's: the real exit status, the
 * cgroup's OOM counter still there to read. Then `runc delete -f` forgets
 * the container and removes its cgroups. A failed `runc run` is a
 * StartError with runc's own error message (DIR/runc.log).
 * A runc container with tty true (config.json process.terminal): runc makes
 * the pty in the container and sends its master over DIR/console.sock
 * (--console-socket, which the shim adds to argv; SCM_RIGHTS, as to
 * containerd's shim), then used as the master of its own openpty above. */
#include "node_runtime.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "node_cgroup.h"
#include "node_secctx.h"
#include "proc.h"
#include "util.h"

#define LINE_MAX_BYTES	(16 * 1024)	/* longer lines become P records (as kubelet) */
#define READ_BYTES	(16 * 1024)
#define FLUSH_BYTES	(16 * 1024)
#define STRAGGLER_MS	2000		/* wait for grandchildren holding the pipes */
#define KILLED_MS	500		/* then kill them and drain what is left */

extern char **environ;

struct stream {
	int fd;
	const char *name;		/* "stdout", "stderr" */
	size_t len;
	char line[LINE_MAX_BYTES];
};

struct shim {
	const char *dir;
	json_t *spec;
	const char *log_path;
	int64_t max_bytes;
	int max_files;
	const char *cg[CG_NCTRL];
	uint64_t oom_base;
	int log_fd;
	int64_t log_size;
	bool log_failed;
	char ts[96];			/* timestamp of the chunk being copied */
	struct stream s[2];
	size_t out_len;
	char out[FLUSH_BYTES + LINE_MAX_BYTES + 128];
	pid_t pid;
	pid_t init_pid;			/* pid 1 of the container's PID namespace */
	struct secctx sec;		/* spec.json "security" (node_shim_sec.c) */
	int status;
	bool exited;
	json_t *runc;			/* spec.runc, NULL for a process container */
	bool tty, stdin_once;		/* spec.tty, spec.stdinOnce */
	int stdin_keep;			/* our writer of DIR/stdin (no tty), or -1 */
	int ctl_fd;			/* DIR/ctl, or -1 */
	int fifo_fd;			/* with a tty: DIR/stdin, read into the master */
	int tty_fd;			/* the pty master, to write to and resize */
	int console_fd;			/* runc with a tty: listening for the master, or -1 */
	char *console_path;		/* its path (console_listen) */
	size_t ctl_len, in_len, in_off;
	char ctl_line[128];
	char in_buf[4096];		/* read from fifo_fd, not yet in the master */
	int64_t started_ms, finished_ms;
};

/* ---- small files -------------------------------------------------------- */

static char *
dir_file(const struct shim *sh, const char *name)
{
	return xasprintf("%s/%s", sh->dir, name);
}

/* ---- the log ------------------------------------------------------------ */

static void
stamp_now(struct shim *sh)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(sh->ts, sizeof sh->ts, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec);
}

static int
log_open(struct shim *sh, bool truncate)
{
	int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
	struct stat st;
	sh->log_fd = open(sh->log_path, flags, 0600);
	if (sh->log_fd < 0 && errno == ENOENT) {	/* the first attempt: make its dir */
		char *dir = xstrndup(sh->log_path, (size_t)(strrchr(sh->log_path, '/') -
		    sh->log_path));
		int rc = cg_mkdirs(dir);
		free(dir);
		if (rc < 0)
			return rc;
		sh->log_fd = open(sh->log_path, flags, 0600);
	}
	if (sh->log_fd < 0)
		return -errno;
	sh->log_size = fstat(sh->log_fd, &st) == 0 ? st.st_size : 0;
	return 0;
}

/* The log file (and its directories) is made by the first output, not at
 * the start: a container that writes nothing, like most of a burst of
 * `sleep` pods, costs no disk inode for it (three a container, ~0.6 ms of
 * CPU each on this VM's churned ext4), and readers take a missing file for
 * an empty log (node_log.c). A failure is reported once; output is then
 * dropped, as when a write fails. */
static void
log_open_first(struct shim *sh)
{
	if (sh->log_fd >= 0 || sh->log_failed)
		return;
	if (log_open(sh, false) < 0) {
		log_warn("shim", "opening %s: %s (output dropped)", sh->log_path,
		    strerror(errno));
		sh->log_failed = true;
	}
}

static void
log_flush(struct shim *sh)
{
	const char *p = sh->out;
	size_t n = sh->out_len;
	if (n > 0)
		log_open_first(sh);
	while (n > 0 && sh->log_fd >= 0) {
		ssize_t w = write(sh->log_fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (!sh->log_failed)
				log_warn("shim", "writing %s: %s (output dropped)", sh->log_path,
				    strerror(errno));
			sh->log_failed = true;
			break;
		}
		sh->log_size += w;
		p += w;
		n -= (size_t)w;
	}
	sh->out_len = 0;
}

/* ATTEMPT.log -> .1 -> .2 ... -> .max_files (the oldest is overwritten). */
static void
log_rotate(struct shim *sh)
{
	char from[PATH_MAX], to[PATH_MAX];
	log_flush(sh);
	if (sh->log_fd >= 0)
		close(sh->log_fd);
	for (int i = sh->max_files; i >= 1; i--) {
		if (i == 1)
			snprintf(from, sizeof from, "%s", sh->log_path);
		else
			snprintf(from, sizeof from, "%s.%d", sh->log_path, i - 1);
		snprintf(to, sizeof to, "%s.%d", sh->log_path, i);
		rename(from, to);
	}
	if (log_open(sh, true) < 0)
		log_warn("shim", "reopening %s: %s", sh->log_path, strerror(errno));
}

/* Appends one CRI record of the stream's pending bytes, rotating first when
 * it would carry the file past log_max_bytes. */
static void
emit(struct shim *sh, struct stream *s, char tag)
{
	size_t rec = strlen(sh->ts) + strlen(s->name) + s->len + 5;
	int64_t size = sh->log_size + (int64_t)sh->out_len;
	if (size > 0 && size + (int64_t)rec > sh->max_bytes)
		log_rotate(sh);
	sh->out_len += (size_t)snprintf(sh->out + sh->out_len, sizeof sh->out - sh->out_len,
	    "%s %s %c ", sh->ts, s->name, tag);
	memcpy(sh->out + sh->out_len, s->line, s->len);
	sh->out_len += s->len;
	sh->out[sh->out_len++] = '\n';
	s->len = 0;
	if (sh->out_len >= FLUSH_BYTES)
		log_flush(sh);
}

/* Splits a chunk of a stream into lines: F records for complete lines, P
 * records for every LINE_MAX_BYTES of a longer one. */
static void
copy_chunk(struct shim *sh, struct stream *s, const char *p, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		size_t room = LINE_MAX_BYTES - s->len;
		if (take > room) {
			memcpy(s->line + s->len, p, room);
			s->len += room;
			emit(sh, s, 'P');
			p += room;
			n -= room;
			continue;
		}
		memcpy(s->line + s->len, p, take);
		s->len += take;
		p += take;
		n -= take;
		if (nl) {
			emit(sh, s, 'F');
			p++;
			n--;
		}
	}
}

/* Reads what the pipe holds; closes it at EOF. Returns bytes read. */
static ssize_t
pump(struct shim *sh, struct stream *s)
{
	static char buf[READ_BYTES];
	ssize_t n = read(s->fd, buf, sizeof buf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close(s->fd);
		s->fd = -1;
		return 0;
	}
	stamp_now(sh);
	copy_chunk(sh, s, buf, (size_t)n);
	log_flush(sh);		/* readers see each chunk at once */
	return n;
}

/* ---- the spec ----------------------------------------------------------- */

static char **
str_array(json_t *a)
{
	size_t i, n = json_array_size(a);
	char **v = xcalloc(n + 1, sizeof *v);
	for (i = 0; i < n; i++)
		v[i] = (char *)json_string_value(json_array_get(a, i));
	return v;
}

static int
load_spec(struct shim *sh)
{
	char *path = dir_file(sh, "spec.json");
	json_error_t jerr;
	sh->spec = json_load_file(path, 0, &jerr);
	free(path);
	if (sh->spec == NULL) {
		log_error("shim", "%s/spec.json: %s", sh->dir, jerr.text);
		return -EINVAL;
	}
	sh->log_path = json_string_value(json_object_get(sh->spec, "log"));
	sh->max_bytes = json_integer_value(json_object_get(sh->spec, "logMaxBytes"));
	sh->max_files = (int)json_integer_value(json_object_get(sh->spec, "logMaxFiles"));
	if (sh->max_bytes <= 0)
		sh->max_bytes = 10 << 20;
	if (sh->max_files <= 0)
		sh->max_files = 1;
	json_t *cg = json_object_get(sh->spec, "cgroups");
	for (int c = 0; c < CG_NCTRL; c++)
		sh->cg[c] = json_string_value(json_object_get(cg, cg_ctrl_name(c)));
	secctx_from_json(json_object_get(sh->spec, "security"), &sh->sec);
	json_t *argv = json_object_get(sh->spec, "argv");
	if (sh->log_path == NULL || json_array_size(argv) == 0) {
		log_error("shim", "%s/spec.json: no argv or log", sh->dir);
		return -EINVAL;
	}
	return 0;
}

static int64_t
spec_int(const struct shim *sh, const char *key)
{
	return json_integer_value(json_object_get(sh->spec, key));
}

/* Creates the container's groups and writes its limits; a controller that
 * cannot be set up is dropped with a log line (limits not enforced). A
 * group made just now has no limits (the kernel's defaults), so "none" is
 * written only to a group an earlier attempt left: a cgroup write costs.
 * runc makes a runc container's groups and writes its limits (config.json):
 * the shim only notes the OOM count to start from. */
static void
setup_cgroups(struct shim *sh)
{
	int64_t mem = spec_int(sh, "memoryLimit"), cpu = spec_int(sh, "cpuLimitMillis");
	int64_t pids = spec_int(sh, "pidsLimit");
	if (sh->runc && sh->cg[CG_MEMORY])
		cg_oom_kills(sh->cg[CG_MEMORY], &sh->oom_base);
	for (int c = 0; c < CG_NCTRL && !sh->runc; c++) {
		const char *d = sh->cg[c];
		bool fresh = d && access(d, F_OK) < 0;
		int rc = d ? cg_group_create(d) : 0;
		if (rc == 0 && d && c == CG_MEMORY) {
			if (mem > 0 || !fresh)
				rc = cg_set_memory_max(d, mem);
			cg_oom_kills(d, &sh->oom_base);
		}
		if (rc == 0 && d && c == CG_CPU && (cpu > 0 || !fresh))
			rc = cg_set_cpu_max(d, cpu);
		if (rc == 0 && d && c == CG_PIDS && (pids > 0 || !fresh))
			rc = cg_set_pids_max(d, pids);
		if (rc < 0) {
			log_warn("shim", "cgroup %s %s: %s; its limits are not enforced",
			    cg_ctrl_name(c), d, strerror(-rc));
			sh->cg[c] = NULL;
		}
	}
}

/* ---- the container ------------------------------------------------------ */

struct start_err {
	int stage;			/* 0 chdir, 1 exec, 2 volumes, 3 securityContext, 4 rootfs */
	int err;
	int mount;			/* stage 2: the mount that failed, -1 the namespace;
					 * stage 3: the step (shim_sec_step) */
};

/* ---- volumes ------------------------------------------------------------ */

static int
write_proc(const char *file, const char *text)
{
	int fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int rc = n == (ssize_t)strlen(text) ? 0 : -errno;
	close(fd);
	return rc;
}

/* Without CAP_SYS_ADMIN: a user namespace mapping our own uid and gid to
 * themselves, with a mount namespace, lets us bind-mount what we own. */
static int
enter_user_ns(void)
{
	char map[64];
	uid_t uid = getuid();
	gid_t gid = getgid();
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return -errno;
	int rc = write_proc("/proc/self/setgroups", "deny");
	snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if (rc == 0)
		rc = write_proc("/proc/self/uid_map", map);
	snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	if (rc == 0)
		rc = write_proc("/proc/self/gid_map", map);
	return rc;
}

/* Makes dst a place src can be bind-mounted on: a directory (mkdir -p) for
 * a directory, an empty file in a made parent for a single file (a subPath
 * naming a file, as Kubernetes allows). Returns 0 or -errno. */
static int
mount_point(const char *src, const char *dst)
{
	struct stat st;
	if (stat(src, &st) < 0 || S_ISDIR(st.st_mode))
		return cg_mkdirs(dst);
	char parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%s", dst);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		int rc = cg_mkdirs(parent);
		if (rc < 0)
			return rc;
	}
	int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* In the forked container, before exec: a private mount namespace (as
 * root; else a user namespace, see enter_user_ns; the one of
 * shim_sec_namespaces when have_ns: a second copy of the host's mount
 * table cost as much again, ~2 ms with 650 mounts) where each volume's
 * directory (or file) is bind-mounted at its mountPath (made by mount_point on the
 * host's filesystem: the process runtime has no root filesystem of its
 * own), read-only when asked. Returns 0 or -errno with se->mount set. */
static int
setup_mounts(json_t *mounts, bool have_ns, struct start_err *se)
{
	size_t i;
	json_t *m;
	se->mount = -1;
	if (json_array_size(mounts) == 0)
		return 0;
	if (!have_ns && unshare(CLONE_NEWNS) < 0) {
		int e = errno;
		if (e != EPERM || enter_user_ns() < 0)
			return -e;
	}
	if (!have_ns && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	json_array_foreach(mounts, i, m) {
		const char *src = json_string_value(json_object_get(m, "source"));
		const char *dst = json_string_value(json_object_get(m, "target"));
		se->mount = (int)i;
		if (!src || !dst || *dst != '/')
			return -EINVAL;
		int rc = mount_point(src, dst);
		if (rc < 0)
			return rc;
		if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
			return -errno;
		if (json_is_true(json_object_get(m, "readOnly")) && mount(NULL, dst, NULL,
		    MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
			return -errno;
	}
	se->mount = -1;
	return 0;
}

/* In the forked child of a runc container: a mount namespace of its own
 * (so the overlay goes away with the last process using it) and the image's
 * layers as the read-only lower dirs (topmost first) of an overlay on the
 * bundle's rootfs, with the container's own upper and work dirs. */
static int
mount_rootfs(json_t *r)
{
	json_t *lower = json_object_get(r, "lower");
	const char *bundle = json_string_value(json_object_get(r, "bundle"));
	const char *upper = json_string_value(json_object_get(r, "upper"));
	const char *work = json_string_value(json_object_get(r, "work"));
	size_t n = json_array_size(lower);
	if (n == 0 || !bundle || !upper || !work)
		return -EINVAL;
	char *opts = xstrdup("lowerdir=");
	for (size_t i = n; i-- > 0; ) {
		char *o = xasprintf("%s%s%s", opts, json_string_value(json_array_get(lower, i)),
		    i ? ":" : "");
		free(opts);
		opts = o;
	}
	char *o = xasprintf("%s,upperdir=%s,workdir=%s", opts, upper, work);
	char *root = xasprintf("%s/rootfs", bundle);
	int rc = 0;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0 ||
	    mount("overlay", root, "overlay", 0, o) < 0)
		rc = -errno;
	free(opts);
	free(o);
	free(root);
	return rc;
}

/* securityContext, after the volumes are mounted (node_shim_sec.c): the
 * writable volumes stay writable under a read-only root. */
static int
secure(struct shim *sh, int *step)
{
	json_t *mounts = json_object_get(sh->spec, "mounts"), *m;
	const char **rw = xcalloc(json_array_size(mounts) + 1, sizeof *rw);
	size_t i, n = 0;
	json_array_foreach(mounts, i, m)
		if (!json_is_true(json_object_get(m, "readOnly")))
			rw[n++] = json_string_value(json_object_get(m, "target"));
	int rc = shim_sec_mounts(&sh->sec, rw, n, step);
	free(rw);
	return rc;
}

static _Noreturn void
child(struct shim *sh, int in, int out, int err, int report)
{
	struct start_err se = { 0, 0, -1 };
	json_t *spec = sh->spec;
	char **argv = str_array(json_object_get(spec, "argv"));
	char **envp = str_array(json_object_get(spec, "env"));
	const char *cwd = json_string_value(json_object_get(spec, "workingDir"));
	sigset_t all;

	if (sh->tty)		/* its own session, for a controlling terminal */
		setsid();
	else
		setpgid(0, 0);
	for (int c = 0; c < CG_NCTRL && !sh->runc; c++)	/* runc places its container */
		if (sh->cg[c])
			cg_join(sh->cg[c], getpid());
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	umask(022);	/* runc's default: the server's 077 is for V6's own files */
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	dup2(in >= 0 ? in : open("/dev/null", O_RDONLY), 0);
	dup2(out, 1);
	dup2(err, 2);
	if (sh->tty)
		ioctl(0, TIOCSCTTY, 0);
	int src = 0, mrc;
	if (sh->runc) {		/* runc applies the securityContext (config.json) */
		mrc = mount_rootfs(sh->runc);
	} else {
		src = shim_sec_namespaces(&sh->sec, &se.mount);
		bool have_ns = src > 0;
		if (src > 0)
			src = 0;
		mrc = src < 0 ? 0 : setup_mounts(json_object_get(spec, "mounts"), have_ns, &se);
		if (src == 0 && mrc == 0)
			src = secure(sh, &se.mount);
	}
	if (src < 0) {
		se.stage = 3;
		se.err = -src;
	} else if (mrc < 0) {
		se.stage = sh->runc ? 4 : 2;
		se.err = -mrc;
	} else if (cwd && chdir(cwd) < 0) {
		se.err = errno;
	} else if (!sh->runc && (src = shim_sec_drop(&sh->sec, &se.mount)) < 0) {
		se.stage = 3;
		se.err = -src;
	} else {
		environ = envp;		/* execvp searches the pod's PATH */
		execvp(argv[0], argv);
		se.stage = 1;
		se.err = errno;
	}
	if (write(report, &se, sizeof se) < 0)
		_exit(127);
	_exit(127);
}

/* Fills in exit.json's reason, code and message for a failed start. */
static void
start_error(const struct shim *sh, const struct start_err *se, json_t *ex)
{
	json_t *argv = json_object_get(sh->spec, "argv");
	const char *file = json_string_value(json_array_get(argv, 0));
	char why[128];
	snprintf(why, sizeof why, "%s", strerror(se->err));
	why[0] = (char)tolower((unsigned char)why[0]);
	int code = se->err == ENOENT ? 127 : 126;
	char *msg;
	json_t *m = json_array_get(json_object_get(sh->spec, "mounts"), (size_t)se->mount);
	if (se->stage == 3)
		msg = xasprintf("securityContext: %s: %s", shim_sec_step(se->mount), why);
	else if (se->stage == 4)
		msg = xasprintf("mounting the image's layers (overlay): %s", why);
	else if (se->stage == 2 && se->mount < 0)
		msg = xasprintf("mounting volumes needs root or unprivileged user namespaces: "
		    "unshare: %s", why);
	else if (se->stage == 2)
		msg = xasprintf("mounting volume at \"%s\": %s", json_string_value(
		    json_object_get(m, "target")), why);
	else if (se->stage == 0)
		msg = xasprintf("chdir to working directory \"%s\": %s", json_string_value(
		    json_object_get(sh->spec, "workingDir")), why);
	else if (se->err == ENOENT && strchr(file, '/') == NULL)
		msg = xasprintf("exec: \"%s\": executable file not found in $PATH", file);
	else
		msg = xasprintf("exec: \"%s\": %s", file, why);
	json_object_set_new(ex, "exitCode", json_integer(se->stage != 1 ? 128 : code));
	json_object_set_new(ex, "reason", json_string("StartError"));
	json_object_set_new(ex, "message", json_string(msg));
	free(msg);
}

static void
write_ctr_pid(struct shim *sh)
{
	char *path = dir_file(sh, "ctr.pid");
	int rc = proc_pidfile_write(path, sh->pid, sh->started_ms);
	if (rc < 0)
		log_warn("shim", "writing %s: %s", path, strerror(-rc));
	free(path);
}

/* Reaps the container and, the shim being their subreaper, whatever its
 * processes left behind. */
static void
reap(struct shim *sh)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != sh->pid || sh->exited)
			continue;
		sh->status = status;
		sh->exited = true;
		sh->finished_ms = time_now_ms();
	}
}

/* Kills whatever is left of the container: its process group, and the
 * processes in its cgroups that left the group. */
static void
kill_rest(struct shim *sh)
{
	kill(-sh->pid, SIGKILL);
	if (sh->init_pid > 0)		/* and with it, its whole PID namespace */
		kill(sh->init_pid, SIGKILL);
	for (int c = 0; c < CG_NCTRL; c++)
		if (sh->cg[c] && (c == CG_MEMORY || c == CG_PIDS))
			cg_kill_all(sh->cg[c], SIGKILL);
}

/* One line of DIR/ctl (see the header). */
static void
control_line(struct shim *sh, const char *line)
{
	unsigned rows, cols;
	if (strcmp(line, "end") == 0 && sh->stdin_once) {
		if (sh->stdin_keep >= 0)
			close(sh->stdin_keep);
		if (sh->fifo_fd >= 0)
			close(sh->fifo_fd);
		sh->stdin_keep = sh->fifo_fd = -1;
	} else if (sscanf(line, "size %u %u", &rows, &cols) == 2 && sh->tty_fd >= 0 &&
	    rows > 0 && cols > 0 && rows <= 0xffff && cols <= 0xffff) {
		struct winsize ws = { .ws_row = (unsigned short)rows,
			.ws_col = (unsigned short)cols };
		ioctl(sh->tty_fd, TIOCSWINSZ, &ws);	/* the terminal's group: SIGWINCH */
	}
}

static void
control(struct shim *sh)
{
	ssize_t n;
	while ((n = read(sh->ctl_fd, sh->ctl_line + sh->ctl_len,
	    sizeof sh->ctl_line - 1 - sh->ctl_len)) > 0) {
		sh->ctl_len += (size_t)n;
		char *nl;
		while ((nl = memchr(sh->ctl_line, '\n', sh->ctl_len))) {
			*nl = '\0';
			control_line(sh, sh->ctl_line);
			sh->ctl_len -= (size_t)(nl + 1 - sh->ctl_line);
			memmove(sh->ctl_line, nl + 1, sh->ctl_len);
		}
		if (sh->ctl_len == sizeof sh->ctl_line - 1)
			sh->ctl_len = 0;	/* no command is that long */
	}
}

/* With a tty: DIR/stdin into the master, as much as it takes now. */
static void
copy_stdin(struct shim *sh)
{
	if (sh->in_len == 0 && sh->fifo_fd >= 0) {
		ssize_t n = read(sh->fifo_fd, sh->in_buf, sizeof sh->in_buf);
		sh->in_off = 0;
		sh->in_len = n > 0 ? (size_t)n : 0;
	}
	if (sh->in_len > 0) {
		ssize_t w = write(sh->tty_fd, sh->in_buf + sh->in_off, sh->in_len);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			w = (ssize_t)sh->in_len;	/* the terminal is gone */
		if (w > 0) {
			sh->in_off += (size_t)w;
			sh->in_len -= (size_t)w;
		}
	}
}

/* Copies output until the container has exited and its pipes are closed;
 * stragglers holding the pipes get STRAGGLER_MS, then are killed. */
static void
supervise(struct shim *sh)
{
	int pidfd = proc_pidfd_open(sh->pid, 0);
	int64_t deadline = 0;
	bool killed = false;
	for (;;) {
		reap(sh);
		if (sh->exited && deadline == 0)
			deadline = time_mono_ms() + STRAGGLER_MS;
		if (sh->exited && sh->s[0].fd < 0 && sh->s[1].fd < 0)
			break;
		int timeout = pidfd < 0 ? 100 : -1;
		if (sh->exited) {
			int64_t left = deadline - time_mono_ms();
			if (left <= 0 && killed)
				break;
			if (left <= 0) {
				kill_rest(sh);
				killed = true;
				deadline = time_mono_ms() + KILLED_MS;
				continue;
			}
			timeout = (int)left;
		}
		bool live = !sh->exited;
		struct pollfd p[6] = {
			{ sh->s[0].fd, POLLIN, 0 }, { sh->s[1].fd, POLLIN, 0 },
			{ live ? pidfd : -1, POLLIN, 0 }, { live ? sh->ctl_fd : -1, POLLIN, 0 },
			{ live && sh->in_len == 0 ? sh->fifo_fd : -1, POLLIN, 0 },
			{ live && sh->in_len > 0 ? sh->tty_fd : -1, POLLOUT, 0 },
		};
		if (poll(p, 6, timeout) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++)
			if (p[i].revents)
				pump(sh, &sh->s[i]);
		if (p[3].revents)
			control(sh);
		if (p[4].revents || p[5].revents)
			copy_stdin(sh);
	}
	if (pidfd >= 0)
		close(pidfd);
	if (!killed)
		kill_rest(sh);
	reap(sh);
	for (int i = 0; i < 2; i++) {
		while (sh->s[i].fd >= 0 && pump(sh, &sh->s[i]) > 0)
			;
		if (sh->s[i].len > 0)
			emit(sh, &sh->s[i], 'P');
	}
	log_flush(sh);
}

static void
exit_status(struct shim *sh, json_t *ex)
{
	int code = 0, sig = 0;
	uint64_t ooms = 0;
	if (WIFEXITED(sh->status))
		code = WEXITSTATUS(sh->status);
	if (WIFSIGNALED(sh->status)) {
		sig = WTERMSIG(sh->status);
		code = 128 + sig;
	}
	/* An OOM kill in the container's group during this run, and a failed
	 * exit: the main process killed, or a shell whose child was (it exits
	 * 137 itself). containerd reports both as OOMKilled. */
	bool oom = sh->cg[CG_MEMORY] &&
	    cg_oom_kills(sh->cg[CG_MEMORY], &ooms) == 0 &&
	    ooms > sh->oom_base && code != 0;
	json_object_set_new(ex, "exitCode", json_integer(code));
	json_object_set_new(ex, "signal", json_integer(sig));
	json_object_set_new(ex, "oomKilled", json_boolean(oom));
	json_object_set_new(ex, "reason",
	    json_string(oom ? "OOMKilled" : code == 0 ? "Completed" : "Error"));
}

static int
write_exit(struct shim *sh, json_t *ex)
{
	json_object_set_new(ex, "pid", json_integer(sh->pid));
	json_object_set_new(ex, "startedAt", json_integer(sh->started_ms));
	json_object_set_new(ex, "finishedAt", json_integer(sh->finished_ms));
	char *text = json_dumps(ex, JSON_COMPACT);
	char *path = dir_file(sh, "exit.json");
	int rc = file_write_atomic(path, text, strlen(text), true);
	if (rc < 0)
		log_error("shim", "writing %s: %s", path, strerror(-rc));
	free(path);
	free(text);
	json_decref(ex);
	return rc;
}

/* runc's last error message in DIR/runc.log (--log-format json), or a
 * generic one. Caller frees. */
static char *
runc_error(struct shim *sh, int status)
{
	char *path = dir_file(sh, "runc.log"), line[2048], *msg = NULL;
	FILE *f = fopen(path, "re");
	free(path);
	while (f && fgets(line, sizeof line, f)) {
		json_t *j = json_loads(line, 0, NULL);
		const char *m = json_string_value(json_object_get(j, "msg"));
		if (m && strcmp(json_string_value(json_object_get(j, "level")) ?: "", "error") == 0) {
			free(msg);
			msg = xstrdup(m);
		}
		json_decref(j);
	}
	if (f)
		fclose(f);
	return msg ? msg : xasprintf("runc run exited with status %d", status);
}

/* After the child (`runc run -d`) was exec'd: waits for runc, then takes
 * the container's init (from DIR/init.pid) as the process to supervise.
 * Returns 0, or -1 with ex filled in for a failed start. */
static int
runc_started(struct shim *sh, json_t *ex)
{
	int status = 0;
	while (waitpid(sh->pid, &status, 0) < 0 && errno == EINTR)
		;
	char *path = dir_file(sh, "init.pid"), *text = NULL;
	size_t len = 0;
	pid_t init = file_read_all(path, &text, &len) == 0 ? (pid_t)atoi(text) : 0;
	free(text);
	free(path);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || init <= 0) {
		char *msg = runc_error(sh, WIFEXITED(status) ? WEXITSTATUS(status) : 128);
		sh->exited = true;
		sh->finished_ms = time_now_ms();
		json_object_set_new(ex, "exitCode", json_integer(128));
		json_object_set_new(ex, "reason", json_string("StartError"));
		json_object_set_new(ex, "message", json_string(msg));
		free(msg);
		return -1;
	}
	sh->pid = init;
	write_ctr_pid(sh);
	return 0;
}

/* The container's own PID namespace: its pid 1 (shim_sec_init) is forked
 * first, the container next, so that the container is the shim's child
 * (its exit status, its host PID in ctr.pid) and gets SIGTERM like any
 * process, not as a pid 1 without handlers. */
static int
start_pid_ns(struct shim *sh)
{
	if (!sh->sec.pid_ns)
		return 0;
	int rc = shim_sec_unshare_pid(&sh->sec);
	if (rc < 0)
		return rc;
	sh->init_pid = fork();
	if (sh->init_pid < 0)
		return -errno;
	if (sh->init_pid == 0)
		shim_sec_init();
	return 0;
}

/* mkfifo DIR/NAME and open it with flags; the fd or a negative errno. */
static int
open_fifo(const struct shim *sh, const char *name, int flags)
{
	char *path = dir_file(sh, name);
	int fd = -1;
	if (mkfifo(path, 0600) < 0 && errno != EEXIST)
		fd = -errno;
	else if ((fd = open(path, flags | O_CLOEXEC)) < 0)
		fd = -errno;
	free(path);
	return fd;
}

/* master is the container's terminal: the shim writes DIR/stdin into (a
 * non-blocking copy of) it and resizes it (control_line). */
static void
use_master(struct shim *sh, int master)
{
	sh->tty_fd = fcntl(master, F_DUPFD_CLOEXEC, 0);
	fcntl(sh->tty_fd, F_SETFL, O_NONBLOCK);
}

/* A unix socket listening at path. fd or -errno. */
static int
unix_listen(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof a.sun_path)
		return -ENAMETOOLONG;
	memcpy(a.sun_path, path, strlen(path) + 1);
	unlink(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 1) < 0) {
		int e = -errno;
		if (fd >= 0)
			close(fd);
		return e;
	}
	return fd;
}

/* The socket runc's --console-socket connects to: DIR/console.sock, or
 * when that path is too long for a socket's, /tmp/v6-pty-XXXXXX/pty.sock
 * (as containerd's temporary one); added to `runc run`'s arguments, before
 * the container id. fd or -errno. */
static int
console_listen(struct shim *sh)
{
	sh->console_path = dir_file(sh, "console.sock");
	int fd = unix_listen(sh->console_path);
	if (fd == -ENAMETOOLONG) {
		char tmp[] = "/tmp/v6-pty-XXXXXX";
		free(sh->console_path);
		sh->console_path = NULL;
		if (!mkdtemp(tmp))
			return -errno;
		sh->console_path = xasprintf("%s/pty.sock", tmp);
		fd = unix_listen(sh->console_path);
		if (fd < 0)
			rmdir(tmp);
	}
	if (fd < 0) {
		free(sh->console_path);
		sh->console_path = NULL;
	} else {
		json_t *argv = json_object_get(sh->spec, "argv");
		size_t id = json_array_size(argv) - 1;
		json_array_insert_new(argv, id, json_string(sh->console_path));
		json_array_insert_new(argv, id, json_string("--console-socket"));
	}
	return fd;
}

/* Stops listening for runc's master and removes the socket. */
static void
console_close(struct shim *sh)
{
	if (sh->console_fd < 0)
		return;
	close(sh->console_fd);
	sh->console_fd = -1;
	unlink(sh->console_path);
	if (strncmp(sh->console_path, "/tmp/v6-pty-", 12) == 0)
		rmdir(dirname(sh->console_path));
	free(sh->console_path);
	sh->console_path = NULL;
}

/* Once `runc run -d` succeeded: the pty master runc sent on console.sock
 * (it connected and sent before exiting). The fd or -errno. */
static int
console_recv(struct shim *sh)
{
	struct pollfd p = { sh->console_fd, POLLIN, 0 };
	int conn = poll(&p, 1, 5000) == 1 ? accept4(sh->console_fd, NULL, NULL,
	    SOCK_CLOEXEC) : -1;
	int master = -EPROTO;
	if (conn >= 0) {
		char name[256];
		union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } c;
		struct iovec iov = { name, sizeof name };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = c.buf, .msg_controllen = sizeof c.buf };
		struct cmsghdr *h;
		if (recvmsg(conn, &m, MSG_CMSG_CLOEXEC) > 0 && (h = CMSG_FIRSTHDR(&m)) &&
		    h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
			memcpy(&master, CMSG_DATA(h), sizeof master);
		close(conn);
	}
	console_close(sh);
	return master;
}

/* The container's stdin and, with a tty, the pty in place of the output
 * pipes. A container with stdin: true reads DIR/stdin, a FIFO that
 * pods/attach writes to (node_attach.c); the shim holds a writer of its
 * own (stdin_keep), so the container does not read EOF between two
 * attaches, until "end" with stdinOnce (control). With a tty the
 * container's stdio is the pty's slave and the shim copies DIR/stdin into
 * the master (runc: runc makes the pty; the master comes in start). *in: the child's stdin, -1 for /dev/null. 0 or -errno. */
static int
open_stdio(struct shim *sh, int *in, int out[2], int err[2])
{
	bool want_in = json_is_true(json_object_get(sh->spec, "stdin"));
	*in = -1;
	if (!want_in && !sh->tty)
		return 0;
	if ((sh->ctl_fd = open_fifo(sh, "ctl", O_RDWR | O_NONBLOCK)) < 0)
		return sh->ctl_fd;
	if (sh->tty && sh->runc) {	/* runc's pty: its master comes later */
		if ((sh->console_fd = console_listen(sh)) < 0)
			return sh->console_fd;
	} else if (sh->tty) {
		int master, slave;
		if (openpty(&master, &slave, NULL, NULL, NULL) < 0)
			return -errno;
		fcntl(master, F_SETFD, FD_CLOEXEC);
		fcntl(slave, F_SETFD, FD_CLOEXEC);
		use_master(sh, master);
		close(out[0]);
		close(out[1]);
		close(err[0]);
		close(err[1]);
		out[0] = master;
		out[1] = slave;
		err[0] = -1;
		err[1] = fcntl(slave, F_DUPFD_CLOEXEC, 0);
		*in = fcntl(slave, F_DUPFD_CLOEXEC, 0);
	}
	if (sh->tty) {
		if (want_in && (sh->fifo_fd = open_fifo(sh, "stdin", O_RDWR | O_NONBLOCK)) < 0)
			return sh->fifo_fd;
		return 0;
	}
	if ((*in = open_fifo(sh, "stdin", O_RDONLY | O_NONBLOCK)) < 0)
		return *in;
	char *path = dir_file(sh, "stdin");
	sh->stdin_keep = open(path, O_WRONLY | O_CLOEXEC);
	free(path);
	if (sh->stdin_keep < 0)
		return -errno;
	fcntl(*in, F_SETFL, 0);		/* the container's reads block */
	return 0;
}

static void shim_failed(json_t *ex, const char *what, int err);

/* Forks the container; returns 0 once it runs, or fills ex for a failed start. */
static int
start(struct shim *sh, json_t *ex)
{
	int out[2], err[2], rep[2], in;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0)
		return -errno;
	int rc = open_stdio(sh, &in, out, err);
	if (rc < 0)
		return rc;
	sh->started_ms = time_now_ms();
	rc = start_pid_ns(sh);
	if (rc < 0)
		return rc;
	sh->pid = fork();
	if (sh->pid < 0)
		return -errno;
	if (sh->pid == 0)
		child(sh, in, out[1], err[1], rep[1]);
	if (!sh->tty)		/* its setsid would fail in a group of its own */
		setpgid(sh->pid, sh->pid);
	if (!sh->runc)
		write_ctr_pid(sh);
	close(out[1]);
	close(err[1]);
	close(rep[1]);
	if (sh->tty)		/* the master reads EIO once the container's are gone */
		close(in);
	sh->s[0].fd = out[0];
	sh->s[1].fd = err[0];
	struct start_err se;
	ssize_t n;
	while ((n = read(rep[0], &se, sizeof se)) < 0 && errno == EINTR)
		;
	close(rep[0]);
	if (n == (ssize_t)sizeof se) {
		waitpid(sh->pid, &sh->status, 0);
		sh->exited = true;
		sh->finished_ms = time_now_ms();
		start_error(sh, &se, ex);
		return -se.err;
	}
	if (sh->runc && runc_started(sh, ex) < 0) {
		close(sh->s[0].fd);	/* nothing to copy: runc's errors are in the log */
		close(sh->s[1].fd);
		console_close(sh);
		return -1;
	}
	if (sh->console_fd >= 0) {	/* runc's own stdio: done; the terminal's next */
		int master = console_recv(sh);
		close(sh->s[0].fd);
		close(sh->s[1].fd);
		sh->s[0].fd = sh->s[1].fd = -1;
		if (master < 0) {	/* the container runs without its terminal */
			kill_rest(sh);
			reap(sh);
			sh->exited = true;
			sh->finished_ms = time_now_ms();
			shim_failed(ex, "receiving runc's terminal (console.sock)", -master);
			return master;
		}
		use_master(sh, master);
		sh->s[0].fd = master;
	}
	return 0;
}

/* `runc delete -f ID`: the container is gone (or killed now) and runc
 * forgets it. A runc that was killed left its state behind. */
static void
runc_delete(struct shim *sh)
{
	const char *root = json_string_value(json_object_get(sh->runc, "root"));
	const char *id = json_string_value(json_object_get(sh->runc, "id"));
	char *argv[] = { "runc", "--root", (char *)root, "delete", "-f", (char *)id, NULL };
	char **envp = str_array(json_object_get(sh->spec, "env"));
	int status;
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		environ = envp;
		execvp(argv[0], argv);
		_exit(127);
	}
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		log_warn("shim", "runc delete -f %s failed", id);
	free(envp);
}

/* The first thing the shim does, so that a restarted server finds it (the
 * runtime does not write it: that would be one more file on its path). */
static void
write_shim_pid(struct shim *sh)
{
	char *path = dir_file(sh, "shim.pid");
	proc_pidfile_write(path, getpid(), 0);
	free(path);
}

/* With makeWorkingDir (the pod's own directory): made here, not on the
 * server's start path. A failure shows in the child's chdir. */
static void
make_working_dir(struct shim *sh)
{
	const char *cwd = json_string_value(json_object_get(sh->spec, "workingDir"));
	if (cwd && json_is_true(json_object_get(sh->spec, "makeWorkingDir"))) {
		mode_t old = umask(022);	/* the container's dir, not V6's */
		cg_mkdirs(cwd);
		umask(old);
	}
}

/* Our own diagnostics (stderr) go to DIR/shim.log, made by the first of
 * them: a start that logs nothing makes no file (every new inode counts
 * when a hundred pods start at once). Until then stderr is /dev/null, so
 * the sink writes the first line itself, then points stderr at the file;
 * a forked child (its stderr is the container's) is left alone. */
static const char *shim_log_dir;
static pid_t shim_log_pid;

/* Opens DIR/shim.log as stderr, once; false when it cannot. */
static bool
shim_log_open(void)
{
	if (shim_log_dir == NULL || getpid() != shim_log_pid)
		return false;
	char *path = xasprintf("%s/shim.log", shim_log_dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	free(path);
	shim_log_dir = NULL;
	if (fd >= 0 && fd != 2) {
		dup2(fd, 2);
		close(fd);
	}
	return fd >= 0;
}

static void
shim_log_sink(void *arg, enum log_level level, const char *component, int64_t time_ms,
    const char *line, size_t len)
{
	(void)arg;
	(void)level;
	(void)component;
	(void)time_ms;
	/* line[len] is its newline; the logger's own write went to /dev/null */
	if (shim_log_open()) {
		ssize_t w = write(2, line, len + 1);
		(void)w;
	}
}

static void
open_shim_log(struct shim *sh)
{
	shim_log_dir = sh->dir;
	shim_log_pid = getpid();
	log_set_sink(shim_log_sink, NULL);
}

/* exit.json for a container that could not even be forked. */
static void
shim_failed(json_t *ex, const char *what, int err)
{
	char *msg = xasprintf("%s: %s", what, strerror(err));
	json_object_set_new(ex, "exitCode", json_integer(128));
	json_object_set_new(ex, "reason", json_string("StartError"));
	json_object_set_new(ex, "message", json_string(msg));
	log_error("shim", "%s", msg);
	free(msg);
}

/* ---- the zygote --------------------------------------------------------- */

/* The forked shim's command line becomes `v6-shim DIR`, as if exec'd (ps,
 * and whoever tells a container dir's shim from a reused pid by its
 * arguments): written over the zygote's own argument area, which its
 * runtime padded with empty strings for that. With write false, only
 * whether it fits: 0 or -ENAMETOOLONG. */
static int
zygote_title(int argc, char **argv, const char *dir, bool write)
{
	if (argc < 3)
		return -ENAMETOOLONG;
	char *start = argv[1], *end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
	size_t n = strlen(dir) + 1;
	if (n > (size_t)(end - start))
		return -ENAMETOOLONG;
	if (write) {
		memcpy(start, dir, n);
		memset(start + n, 0, (size_t)(end - start) - n);
	}
	return 0;
}

/* `v6-shim --zygote` (started by the runtime, node_runtime.c): fd 3 is a
 * SOCK_SEQPACKET socket to the runtime. Each message names a container
 * dir; the zygote forks a shim for it, one fork where a start used to be
 * a fork and an exec (glibc's start-up alone is a third of an exec here),
 * and answers with its pid (int32, or -errno). The zygote was exec'd
 * fresh, so nothing of the server (memory, fds) reaches a shim. It exits
 * when the runtime's end closes (the server stopped or died: a new server
 * starts its own), and the kernel reaps its shims (SIGCHLD ignored), which
 * the runtime watches through pidfds like adopted ones. */
static int
zygote_main(int argc, char **argv)
{
	char dir[PATH_MAX];
	syscall(SYS_close_range, 4, ~0U, 0);
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		ssize_t n = recv(3, dir, sizeof dir - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		dir[n] = '\0';
		int32_t pid = zygote_title(argc, argv, dir, false);
		if (pid == 0 && (pid = fork()) == 0) {
			close(3);
			signal(SIGCHLD, SIG_DFL);
			signal(SIGPIPE, SIG_DFL);
			setsid();
			zygote_title(argc, argv, dir, true);
			char *av[] = { argv[0], dir, NULL };
			_exit(shim_main(2, av));
		}
		if (pid == -1)
			pid = -errno;
		while (send(3, &pid, sizeof pid, MSG_NOSIGNAL) < 0 && errno == EINTR)
			;
	}
}

int
shim_main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--enter") == 0)
		return shim_sec_enter_main(argc, argv);	/* node_shim_sec.c */
	if (argc >= 2 && strcmp(argv[1], "--zygote") == 0)
		return zygote_main(argc, argv);
	if (argc != 2) {
		fprintf(stderr, "usage: v6 shim DIR (internal: started by the node agent)\n");
		return 2;
	}
	struct shim *sh = xcalloc(1, sizeof *sh);
	json_t *ex = json_object();
	syscall(SYS_close_range, 3, ~0U, 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sh->dir = argv[1];
	sh->log_fd = -1;
	sh->stdin_keep = sh->ctl_fd = sh->fifo_fd = sh->tty_fd = sh->console_fd = -1;
	sh->s[0] = (struct stream){ .fd = -1, .name = "stdout" };
	sh->s[1] = (struct stream){ .fd = -1, .name = "stderr" };
	sh->started_ms = sh->finished_ms = time_now_ms();
	open_shim_log(sh);
	write_shim_pid(sh);
	int err = load_spec(sh);
	if (err < 0) {
		shim_failed(ex, "reading spec.json", -err);
	} else {
		sh->runc = json_object_get(sh->spec, "runc");
		sh->tty = json_is_true(json_object_get(sh->spec, "tty"));
		sh->stdin_once = json_is_true(json_object_get(sh->spec, "stdinOnce"));
		if (sh->runc)	/* runc delete's stderr (runc_delete) goes there too */
			shim_log_open();
		setup_cgroups(sh);
		make_working_dir(sh);
		err = start(sh, ex);
		if (err < 0 && sh->pid <= 0 && !sh->runc)
			shim_failed(ex, "starting the container", -err);
	}
	if (err == 0) {
		supervise(sh);
		exit_status(sh, ex);
	}
	if (sh->runc)
		runc_delete(sh);
	int rc = write_exit(sh, ex) < 0 ? 1 : 0;
	if (sh->log_fd >= 0)
		close(sh->log_fd);
	json_decref(sh->spec);
	free(sh);
	return rc;
}

#ifdef V6_SHIM_MAIN
/* The static `v6-shim` program (Makefile): nothing but the shim. */
int
main(int argc, char **argv)
{
	return shim_main(argc, argv);
}
#endif
