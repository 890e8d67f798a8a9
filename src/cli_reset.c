/* cli_reset.c — `v6 reset`, as k3s-killall.sh: stops everything one data
 * directory started (the server holding DIR/v6.db, the proxy of
 * DIR/proxy/proxy.pid, every container and shim under DIR/node/containers,
 * the pods' cgroups, the pod network's bridge and Service route) and with
 * --wipe removes the directory. A program verb
 * of the CLI table (src/cli.c); it reads pid files, never process names. */
#include "node_cgroup.h"
#include "node_cni.h"
#include "node_runc.h"
#include "node_runtime.h"
#include "proc.h"
#include "server.h"
#include "flags.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define RESET_POLL_MS	50

struct reset_opts {
	char *data_dir;
	bool wipe;
	int64_t timeout_ms;	/* SIGTERM grace before SIGKILL */
};

static const struct flag_def reset_flags[] = {
	{ "--data-dir", "DIR", "the data directory whose processes to stop (default "
	    "$V6_DATA_DIR, else /var/lib/v6 as root, else ~/.local/share/v6)" },
	{ "--wipe", NULL, "then remove the data directory: the store, logs, volumes" },
	{ "--timeout", "DURATION", "how long each process gets after SIGTERM before SIGKILL "
	    "(default 10s)" },
	{ "--help", NULL, "show this help" },
};

static void
reset_usage(FILE *f)
{
	fprintf(f, "Usage: v6 reset [--data-dir DIR] [--wipe] [--timeout DURATION]\n\n"
	    "Stops everything a data directory started, as k3s-killall.sh does: the\n"
	    "server (the process holding DIR/v6.db), the proxy, every pod's containers\n"
	    "and shims, and removes the pods' cgroups and what --pod-network cni made on\n"
	    "the host (the pods' network namespaces, the bridge once empty, the Services'\n"
	    "local route). Workloads outlive 'v6 server' by design; this is how to end\n"
	    "them. With --wipe, the directory is removed too.\n"
	    "\nFlags:\n");
	flags_usage(f, reset_flags, ARRAY_SIZE(reset_flags), 26);
	fprintf(f, "\nExamples:\n  v6 reset\n  v6 reset --data-dir /tmp/v6 --wipe\n");
}

static int
reset_parse(int argc, char **argv, struct reset_opts *o)
{
	o->timeout_ms = 10000;
	for (int i = 1; i < argc; i++) {
		char name[64];
		const char *val;
		const struct flag_def *fl = flags_next(reset_flags, ARRAY_SIZE(reset_flags),
		    argc, argv, &i, name, sizeof name, &val);
		if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
			reset_usage(stdout);
			exit(0);
		}
		if (!fl) {
			fprintf(stderr, "error: unknown flag: %s\nSee 'v6 reset --help' for usage.\n",
			    name);
			return -EINVAL;
		}
		if (!fl->arg) {		/* --wipe */
			o->wipe = true;
			continue;
		}
		if (!val) {
			fprintf(stderr, "error: flag needs an argument: %s\n", name);
			return -EINVAL;
		}
		if (strcmp(name, "--data-dir") == 0) {
			free(o->data_dir);
			o->data_dir = xstrdup(val);
		} else if (duration_parse(val, &o->timeout_ms) < 0) {	/* --timeout */
			fprintf(stderr, "error: --timeout: expected a duration, got \"%s\"\n", val);
			return -EINVAL;
		}
	}
	if (!o->data_dir)
		o->data_dir = server_default_data_dir();
	return 0;
}

/* Whether pid is gone (or a zombie of someone else: not ours to wait for). */
static bool
gone(pid_t pid)
{
	char path[64], st = 0;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	int n = fscanf(f, "%*d (%*[^)]) %c", &st);
	fclose(f);
	return n != 1 || st == 'Z' || st == 'X';
}

/* SIGTERM (to the group when group), wait up to timeout, then SIGKILL. */
static void
stop_pid(pid_t pid, bool group, int64_t timeout_ms, const char *what)
{
	if (pid <= 0 || gone(pid))
		return;
	printf("stopping %s (pid %d)\n", what, (int)pid);
	kill(group ? -pid : pid, SIGTERM);
	for (int64_t t = 0; t < timeout_ms && !gone(pid); t += RESET_POLL_MS)
		usleep(RESET_POLL_MS * 1000);
	if (!gone(pid)) {
		kill(group ? -pid : pid, SIGKILL);
		for (int i = 0; i < 100 && !gone(pid); i++)
			usleep(RESET_POLL_MS * 1000);
	}
}

/* The process that holds path open (the server holds DIR/v6.db): 0 if none. */
static pid_t
holder_of(const char *path)
{
	char want[PATH_MAX], link[PATH_MAX], fdpath[PATH_MAX];
	pid_t found = 0;
	if (!realpath(path, want))
		return 0;
	DIR *proc = opendir("/proc");
	struct dirent *p;
	while (proc && !found && (p = readdir(proc))) {
		pid_t pid = (pid_t)atoi(p->d_name);
		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(fdpath, sizeof fdpath, "/proc/%d/fd", (int)pid);
		DIR *fds = opendir(fdpath);
		struct dirent *f;
		while (fds && !found && (f = readdir(fds))) {
			char lp[PATH_MAX + 300];
			snprintf(lp, sizeof lp, "%s/%s", fdpath, f->d_name);
			ssize_t n = readlink(lp, link, sizeof link - 1);
			if (n > 0 && (link[n] = '\0', strcmp(link, want) == 0))
				found = pid;
		}
		if (fds)
			closedir(fds);
	}
	if (proc)
		closedir(proc);
	return found;
}

/* The cgroup v1 directory of pid for one controller, from /proc/PID/cgroup. */
static char *
cgroup_of(pid_t pid, const char *ctrl)
{
	char path[64], line[1024], *out = NULL;
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	FILE *f = fopen(path, "r");
	while (f && !out && fgets(line, sizeof line, f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		line[strcspn(line, "\n")] = '\0';
		c2[1 + strcspn(c2 + 1, "\n")] = '\0';
		for (char *tok = strtok(c1 + 1, ","); tok; tok = strtok(NULL, ","))
			if (strcmp(tok, ctrl) == 0 && strstr(c2 + 1, "/v6/"))
				out = xasprintf("/sys/fs/cgroup/%s%s", ctrl, c2 + 1);
	}
	if (f)
		fclose(f);
	return out;
}

/* Stops one container: its process group (SIGTERM, then SIGKILL), anything
 * else left in its cgroups, then its shim; removes the cgroups. */
static void
stop_container(const char *dir, int64_t timeout_ms)
{
	static const char *const ctrls[] = { "memory", "pids", "cpu,cpuacct", "cpu",
		"cpuacct" };
	char *ctr = xasprintf("%s/ctr.pid", dir), *shim = xasprintf("%s/shim.pid", dir);
	uint64_t ticks;
	pid_t cpid = proc_pidfile_read(ctr, &ticks);
	pid_t spid = proc_pidfile_read(shim, &ticks);
	char *cgs[ARRAY_SIZE(ctrls)] = { 0 };
	for (size_t i = 0; cpid > 0 && i < ARRAY_SIZE(ctrls); i++)
		cgs[i] = cgroup_of(cpid, ctrls[i]);
	char *what = xasprintf("container %s", dir);
	stop_pid(cpid, true, timeout_ms, what);
	free(what);
	for (size_t i = 0; i < ARRAY_SIZE(ctrls); i++) {
		if (!cgs[i])
			continue;
		cg_kill_all(cgs[i], SIGKILL);
		cg_remove(cgs[i]);
		char *slash = strrchr(cgs[i], '/');
		if (slash) {
			*slash = '\0';
			rmdir(cgs[i]);	/* the pod's cgroup, once its last container is gone */
		}
		free(cgs[i]);
	}
	/* The shim records the exit and leaves on its own; do not wait long. */
	for (int i = 0; i < 40 && spid > 0 && !gone(spid); i++)
		usleep(RESET_POLL_MS * 1000);
	stop_pid(spid, false, timeout_ms, "shim");
	free(ctr);
	free(shim);
}

static void
stop_containers(const char *data_dir, int64_t timeout_ms)
{
	char *root = xasprintf("%s/node/containers", data_dir);
	DIR *pods = opendir(root);
	struct dirent *p;
	while (pods && (p = readdir(pods))) {
		if (p->d_name[0] == '.')
			continue;
		char *pod = xasprintf("%s/%s", root, p->d_name);
		DIR *ctrs = opendir(pod);
		struct dirent *c;
		while (ctrs && (c = readdir(ctrs))) {
			if (c->d_name[0] == '.')
				continue;
			char *dir = xasprintf("%s/%s", pod, c->d_name);
			stop_container(dir, timeout_ms);
			free(dir);
		}
		if (ctrs)
			closedir(ctrs);
		free(pod);
	}
	if (pods)
		closedir(pods);
	free(root);
}

/* The runc pods' pinned IPC namespaces and /dev/shm tmpfs (POD/{ipc,shm}
 * in each pod's state dir below root): with their containers stopped,
 * nothing else holds them; the next server makes new ones, as it does the
 * pod netns. */
static void
drop_pod_ipc_below(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *pod = xasprintf("%s/%s", root, e->d_name);
		nrunc_pod_release(pod);
		free(pod);
	}
	if (d)
		closedir(d);
}

/* Both places a pod's state dir has been: RUN/pods, next to what
 * STATE/node/containers links to (node_rundir.c), and STATE/node/pods (no
 * tmpfs, or a pod an older server started). */
static void
drop_pod_ipc(const char *data_dir)
{
	char *root = xasprintf("%s/node/pods", data_dir);
	char *ctrs = xasprintf("%s/node/containers", data_dir), *run = NULL;
	drop_pod_ipc_below(root);
	if (rt_rundir_follow(ctrs, &run) == 0) {
		char *pods = xasprintf("%s/pods", run);
		drop_pod_ipc_below(pods);
		free(pods);
		free(run);
	}
	free(ctrs);
	free(root);
}

/* Unmounts what is mounted below dir (runc rootfs, volumes), deepest first. */
static void
unmount_below(const char *dir)
{
	char want[PATH_MAX], line[4096];
	if (!realpath(dir, want))
		return;
	for (int pass = 0; pass < 4096; pass++) {	/* pod netns, rootfs, volumes */
		FILE *f = fopen("/proc/self/mountinfo", "r");
		char best[PATH_MAX] = "";
		while (f && fgets(line, sizeof line, f)) {
			char mnt[PATH_MAX];
			if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 &&
			    str_has_prefix(mnt, want) && mnt[strlen(want)] == '/' &&
			    strlen(mnt) > strlen(best))
				snprintf(best, sizeof best, "%s", mnt);
		}
		if (f)
			fclose(f);
		if (!best[0] || umount2(best, MNT_DETACH) < 0)
			return;
	}
}

int
reset_main(int argc, char **argv)
{
	struct reset_opts o = { 0 };
	int rc = 1;
	if (reset_parse(argc, argv, &o) < 0)
		goto out;
	if (access(o.data_dir, F_OK) < 0) {
		fprintf(stderr, "v6 reset: %s does not exist: nothing to do\n", o.data_dir);
		rc = 0;
		goto out;
	}
	/* The server first, so that it neither restarts pods nor the proxy. */
	char *db = xasprintf("%s/v6.db", o.data_dir);
	stop_pid(holder_of(db), false, o.timeout_ms, "server");
	free(db);
	char *pp = xasprintf("%s/proxy/proxy.pid", o.data_dir);
	uint64_t ticks;
	stop_pid(proc_pidfile_read(pp, &ticks), false, o.timeout_ms, "proxy");
	free(pp);
	stop_containers(o.data_dir, o.timeout_ms);
	rc = 0;
	drop_pod_ipc(o.data_dir);
	/* The pod network's bridge and route, after every pod left them. */
	char *node = xasprintf("%s/node", o.data_dir);
	if (ncni_reset_host(node, stdout) < 0)
		rc = 1;
	free(node);
	if (o.wipe) {
		unmount_below(o.data_dir);
		int err = util_remove_tree(o.data_dir);
		if (err < 0) {
			fprintf(stderr, "v6 reset: removing %s: %s\n", o.data_dir, strerror(-err));
			rc = 1;
		} else {
			printf("removed %s\n", o.data_dir);
		}
	}
out:
	free(o.data_dir);
	return rc;
}
