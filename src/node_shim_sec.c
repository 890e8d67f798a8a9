/* node_shim_sec.c — the shim's half of securityContext (node_secctx.h):
 * the container's PID namespace and its pid 1, its IPC and mount
 * namespaces, a read-only root, a private /proc, and the privilege drop
 * right before exec (setgroups, setgid, setuid, capabilities,
 * no_new_privs). Linked into the static v6-shim; called by node_shim.c. */
#include "node_secctx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node_cgroup.h"
#include "proc.h"
#include "util.h"

/* runc's defaults (libcontainer/specconv): hidden, and read-only. */
static const char *const masked_paths[] = {
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

enum { STEP_IPC = 1, STEP_MNTNS, STEP_ROOT_RO, STEP_RW, STEP_PROC, STEP_MASK,
	STEP_GROUPS, STEP_GID, STEP_UID, STEP_CAPS, STEP_BOUNDING, STEP_AMBIENT, STEP_NNP };
static const char *const step_names[] = {
	[STEP_IPC] = "creating the IPC namespace",
	[STEP_MNTNS] = "creating the mount namespace",
	[STEP_ROOT_RO] = "making / read-only (readOnlyRootFilesystem)",
	[STEP_RW] = "keeping a volume writable",
	[STEP_PROC] = "mounting the container's /proc",
	[STEP_MASK] = "masking /proc paths",
	[STEP_GROUPS] = "setgroups", [STEP_GID] = "setgid (runAsGroup)",
	[STEP_UID] = "setuid (runAsUser)", [STEP_CAPS] = "setting capabilities",
	[STEP_BOUNDING] = "dropping capabilities from the bounding set",
	[STEP_AMBIENT] = "raising ambient capabilities",
	[STEP_NNP] = "setting no_new_privs (allowPrivilegeEscalation: false)",
};

const char *
shim_sec_step(int step)
{
	if (step <= 0 || (size_t)step >= ARRAY_SIZE(step_names))
		return "applying securityContext";
	return step_names[step];
}

static uint64_t
hex_of(const json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));
	return s ? strtoull(s, NULL, 16) : 0;
}

int
secctx_from_json(const json_t *j, struct secctx *out)
{
	memset(out, 0, sizeof *out);
	if (!json_is_object(j))
		return -EINVAL;
	out->set_ids = json_is_true(json_object_get(j, "setIds"));
	out->uid = (uint32_t)json_integer_value(json_object_get(j, "uid"));
	out->gid = (uint32_t)json_integer_value(json_object_get(j, "gid"));
	const json_t *g = json_object_get(j, "groups");
	for (size_t i = 0; i < json_array_size(g) && i < SECCTX_MAX_GROUPS; i++)
		out->groups[out->n_groups++] = (uint32_t)json_integer_value(json_array_get(g, i));
	out->set_caps = json_is_true(json_object_get(j, "setCaps"));
	out->cap_bounding = hex_of(j, "capBounding");
	out->cap_permitted = hex_of(j, "capPermitted");
	out->cap_effective = hex_of(j, "capEffective");
	out->cap_inheritable = hex_of(j, "capInheritable");
	out->cap_ambient = hex_of(j, "capAmbient");
	out->no_new_privs = json_is_true(json_object_get(j, "noNewPrivs"));
	out->read_only_root = json_is_true(json_object_get(j, "readOnlyRoot"));
	out->pid_ns = json_is_true(json_object_get(j, "pidNamespace"));
	out->ipc_ns = json_is_true(json_object_get(j, "ipcNamespace"));
	out->unmasked = json_is_true(json_object_get(j, "unmasked"));
	return 0;
}

/* ---- namespaces --------------------------------------------------------- */

int
shim_sec_unshare_pid(const struct secctx *s)
{
	return s->pid_ns && unshare(CLONE_NEWPID) < 0 ? -errno : 0;
}

_Noreturn void
shim_sec_init(void)
{
	sigset_t all;
	prctl(PR_SET_PDEATHSIG, SIGKILL);	/* the shim gone: the namespace goes */
	prctl(PR_SET_NAME, "v6-init");
	syscall(SYS_close_range, 0, ~0U, 0);
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		sigset_t chld;
		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		sigwaitinfo(&chld, NULL);
	}
}

int
shim_sec_namespaces(const struct secctx *s, int *step)
{
	if (s->ipc_ns && unshare(CLONE_NEWIPC) < 0) {
		*step = STEP_IPC;
		return -errno;
	}
	if (!s->pid_ns && !s->read_only_root)
		return 0;
	*step = STEP_MNTNS;
	if (unshare(CLONE_NEWNS) < 0)
		return -errno;
	return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ? -errno : 1;
}

static int
set_rdonly(const char *path, bool rdonly)
{
	struct mount_attr a = { 0 };
	if (rdonly)
		a.attr_set = MOUNT_ATTR_RDONLY;
	else
		a.attr_clr = MOUNT_ATTR_RDONLY;
	return mount_setattr(AT_FDCWD, path, AT_RECURSIVE, &a, sizeof a) < 0 ? -errno : 0;
}

/* True when path is the root of a mount (else mount_setattr on it would
 * change the mount that contains it). */
static bool
mount_root(const char *path)
{
	struct statx sx;
	return statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx) == 0 &&
	    (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* / and everything under it read-only, but for the writable volumes and
 * /dev when it is a mount of its own (devices and /dev/shm stay usable, as
 * under runc). */
static int
root_read_only(const char *const *rw, size_t n_rw, int *step)
{
	struct statvfs vfs;
	bool *was_rw = xcalloc(n_rw + 1, sizeof *was_rw);
	bool dev = mount_root("/dev") && statvfs("/dev", &vfs) == 0 && !(vfs.f_flag & ST_RDONLY);
	for (size_t i = 0; i < n_rw; i++)	/* a volume read-only on the host stays so */
		was_rw[i] = statvfs(rw[i], &vfs) == 0 && !(vfs.f_flag & ST_RDONLY);
	*step = STEP_ROOT_RO;
	int rc = set_rdonly("/", true);
	if (rc == 0 && dev)
		rc = set_rdonly("/dev", false);
	*step = STEP_RW;
	for (size_t i = 0; rc == 0 && i < n_rw; i++)
		if (was_rw[i])
			rc = set_rdonly(rw[i], false);
	free(was_rw);
	return rc;
}

/* runc's masked paths (/dev/null over a file, an empty read-only tmpfs
 * over a directory) and read-only paths. Paths this kernel lacks are
 * skipped. */
static int
mask_proc(void)
{
	struct stat st;
	for (size_t i = 0; i < ARRAY_SIZE(masked_paths); i++) {
		const char *p = masked_paths[i];
		if (stat(p, &st) < 0)
			continue;
		int rc = S_ISDIR(st.st_mode) ? mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0")
		    : mount("/dev/null", p, NULL, MS_BIND, NULL);
		if (rc < 0)
			return -errno;
	}
	for (size_t i = 0; i < ARRAY_SIZE(readonly_paths); i++) {
		const char *p = readonly_paths[i];
		if (stat(p, &st) < 0)
			continue;
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0 ||
		    mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV |
		    MS_NOEXEC, NULL) < 0)
			return -errno;
	}
	return 0;
}

static int
mount_proc(bool unmasked, int *step)
{
	*step = STEP_PROC;
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -errno;
	*step = STEP_MASK;
	return unmasked ? 0 : mask_proc();
}

/* ---- privileges --------------------------------------------------------- */

static int
capset_all(uint64_t eff, uint64_t perm, uint64_t inh)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = {
		{ (uint32_t)eff, (uint32_t)perm, (uint32_t)inh },
		{ (uint32_t)(eff >> 32), (uint32_t)(perm >> 32), (uint32_t)(inh >> 32) },
	};
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

static int
set_ids(const struct secctx *s, int *step)
{
	gid_t groups[SECCTX_MAX_GROUPS];
	for (size_t i = 0; i < s->n_groups; i++)
		groups[i] = s->groups[i];
	*step = STEP_GROUPS;
	if (setgroups(s->n_groups, groups) < 0)
		return -errno;
	*step = STEP_GID;
	if (setresgid(s->gid, s->gid, s->gid) < 0)
		return -errno;
	*step = STEP_UID;
	return setresuid(s->uid, s->uid, s->uid) < 0 ? -errno : 0;
}

/* After setuid (permitted kept by PR_SET_KEEPCAPS, effective cleared):
 * effective again, to drop from the bounding set (CAP_SETPCAP), then the
 * container's sets, then its ambient ones. */
static int
set_caps(const struct secctx *s, int *step)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	*step = STEP_CAPS;
	int rc = syscall(SYS_capget, &h, d) < 0 ? -errno : 0;
	uint64_t perm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	if (rc == 0)
		rc = capset_all(perm, perm, 0);
	*step = STEP_BOUNDING;
	for (int cap = 0; rc == 0 && cap < 64; cap++)
		if (!(s->cap_bounding & ((uint64_t)1 << cap)) &&
		    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			rc = -errno;
	*step = STEP_CAPS;
	if (rc == 0)
		rc = capset_all(s->cap_effective, s->cap_permitted, s->cap_inheritable);
	*step = STEP_AMBIENT;
	if (rc == 0 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		rc = -errno;
	for (int cap = 0; rc == 0 && cap < 64; cap++)
		if ((s->cap_ambient & ((uint64_t)1 << cap)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			rc = -errno;
	return rc;
}

int
shim_sec_mounts(const struct secctx *s, const char *const *rw_targets, size_t n_rw,
    int *step)
{
	int rc = 0;
	if (s->read_only_root)
		rc = root_read_only(rw_targets, n_rw, step);
	if (rc == 0 && s->pid_ns)
		rc = mount_proc(s->unmasked, step);
	return rc;
}

int
shim_sec_drop(const struct secctx *s, int *step)
{
	int rc = 0;
	*step = STEP_CAPS;
	if (s->set_caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		rc = -errno;
	if (rc == 0 && s->set_ids)
		rc = set_ids(s, step);
	if (rc == 0 && s->set_caps)
		rc = set_caps(s, step);
	if (rc == 0 && s->set_caps)
		prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	*step = STEP_NNP;
	if (rc == 0 && s->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		rc = -errno;
	return rc;
}

/* ---- entering a running container (exec probes and hooks) -------------- */

#define ENTER_WAIT_MS	2000	/* for the container to exec (its set-up done) */

/* The container's main process, once it has left the shim's image (exec'd:
 * its namespaces are set up), or after ENTER_WAIT_MS. 0 when not running. */
static pid_t
enter_target(const char *dir, uint64_t *ticks)
{
	char path[PATH_MAX], self[PATH_MAX], exe[PATH_MAX], link[64];
	struct proc_id id;
	snprintf(path, sizeof path, "%s/ctr.pid", dir);
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = '\0';
	for (int i = 0; i < ENTER_WAIT_MS; i++) {
		if (proc_pidfile_load(path, &id) == 0 && proc_is_alive(&id)) {
			snprintf(link, sizeof link, "/proc/%d/exe", (int)id.pid);
			n = readlink(link, exe, sizeof exe - 1);
			exe[n > 0 ? n : 0] = '\0';
			if (n > 0 && strcmp(exe, self) != 0)
				break;
		}
		usleep(1000);
	}
	if (proc_pidfile_load(path, &id) < 0 || !proc_is_alive(&id))
		return 0;
	*ticks = id.ticks;
	return id.pid;
}

/* Exits as the command did: its code, or killed by its signal. */
static _Noreturn void
exit_as(int status)
{
	if (WIFSIGNALED(status)) {
		signal(WTERMSIG(status), SIG_DFL);
		kill(getpid(), WTERMSIG(status));
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128);
}

int
shim_sec_enter_main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: v6-shim --enter CONTAINER_DIR COMMAND [ARG...]\n");
		return 2;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/spec.json", argv[2]);
	json_t *spec = json_load_file(path, 0, NULL);
	struct secctx sec;
	uint64_t ticks = 0;
	pid_t pid = spec ? enter_target(argv[2], &ticks) : 0;
	int fd = pid > 0 ? proc_pidfd_open(pid, ticks) : -ESRCH;
	if (fd < 0) {
		fprintf(stderr, "%s: the container is not running\n", argv[2]);
		return 126;
	}
	secctx_from_json(json_object_get(spec, "security"), &sec);
	json_t *cg = json_object_get(spec, "cgroups");
	for (int c = 0; c < CG_NCTRL; c++) {
		const char *d = json_string_value(json_object_get(cg, cg_ctrl_name(c)));
		if (d)
			cg_join(d, getpid());
	}
	if (setns(fd, CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWPID) < 0) {
		fprintf(stderr, "entering the container's namespaces: %s\n", strerror(errno));
		return 126;
	}
	close(fd);
	pid_t child = fork();		/* the PID namespace is for children */
	if (child == 0) {
		int step = 0;
		const char *cwd = json_string_value(json_object_get(spec, "workingDir"));
		if (cwd == NULL || chdir(cwd) < 0)
			chdir("/");
		int rc = shim_sec_drop(&sec, &step);
		if (rc < 0) {
			fprintf(stderr, "securityContext: %s: %s\n", shim_sec_step(step),
			    strerror(-rc));
			_exit(126);
		}
		execvp(argv[3], argv + 3);
		fprintf(stderr, "exec: \"%s\": %s\n", argv[3], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	int status = 0;
	while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	json_decref(spec);
	if (child < 0)
		return 126;
	exit_as(status);
}
