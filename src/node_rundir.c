/* node_rundir.c — the node's volatile state on tmpfs: STATE/containers (each
 * container's spec.json, pid files and exit.json) is a symlink to RUN/containers,
 * RUN a directory of its own under /run or /dev/shm (with RUN/owner, the state
 * dir it serves, and RUN/pods, the pods' ServiceAccount files), as containerd
 * keeps its tasks' state in /run/containerd. That state only means something
 * while the machine is up (the shims it describes die with it), and a file
 * made on tmpfs costs ~0.01 ms of CPU where this machine's ext4 took
 * 0.24-0.29 ms: the seven a pod made there were a quarter of a burst's CPU.
 * Called by rt_open (node_runtime.c). */
#include "node_runtime.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "node_cgroup.h"
#include "util.h"

#define TMPFS_MAGIC	0x01021994
#define OWNER_FILE	"owner"		/* in each run dir: the state dir it serves */

static const char *const tmpfs_roots[] = { "/run", "/dev/shm" };

/* ROOT/v6-UID, made 0700 and checked to be ours (/dev/shm is writable by
 * all: a link or a directory someone else made there is refused), on the
 * first tmpfs root writable here; NULL when there is none. */
static char *
runs_base(void)
{
	for (size_t i = 0; i < sizeof tmpfs_roots / sizeof *tmpfs_roots; i++) {
		struct statfs sf;
		struct stat st;
		if (statfs(tmpfs_roots[i], &sf) < 0 || (unsigned long)sf.f_type != TMPFS_MAGIC ||
		    access(tmpfs_roots[i], W_OK) < 0)
			continue;
		char *base = xasprintf("%s/v6-%u", tmpfs_roots[i], (unsigned)geteuid());
		if ((mkdir(base, 0700) == 0 || errno == EEXIST) && lstat(base, &st) == 0 &&
		    S_ISDIR(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & 077) == 0)
			return base;
		free(base);
	}
	return NULL;
}

/* Whether run dir dir still serves its state dir: STATE/containers is a
 * link to DIR/containers. One made in the last minute is counted as in use
 * (another server may be between making it and linking it); an older one
 * without an owner file is not (its server failed to finish it). */
static bool
run_in_use(const char *dir)
{
	char *owner_file = xasprintf("%s/%s", dir, OWNER_FILE), *owner = NULL;
	char target[PATH_MAX];
	struct stat st;
	bool used = true;
	if (stat(dir, &st) == 0 && time(NULL) - st.st_mtime > 60 && stat(owner_file, &st) < 0)
		used = false;
	else if (stat(owner_file, &st) == 0 && time(NULL) - st.st_mtime > 60 &&
	    file_read_all(owner_file, &owner, NULL) == 0 && owner[0] == '/') {
		char *link = xasprintf("%s/containers", owner);
		char *want = xasprintf("%s/containers", dir);
		ssize_t n = readlink(link, target, sizeof target - 1);
		used = n > 0 && (size_t)n == strlen(want) && memcmp(target, want, (size_t)n) == 0;
		free(want);
		free(link);
	}
	free(owner);
	free(owner_file);
	return used;
}

/* Removes the run dirs under base no state dir links to any more (a data
 * dir deleted, as tests and benchmarks do): tmpfs is memory. */
static void
runs_sweep(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char *dir = xasprintf("%s/%s", base, de->d_name);
		if (!run_in_use(dir))
			util_remove_tree(dir);
		free(dir);
	}
	if (d)
		closedir(d);
}

/* Writes DIR/owner: the state dir's real path, for runs_sweep. */
static int
owner_write(const char *dir, const char *state_dir)
{
	char real[PATH_MAX];
	if (realpath(state_dir, real) == NULL)
		return -errno;
	char *owner = xasprintf("%s/%s", dir, OWNER_FILE);
	int rc = file_write_atomic(owner, real, strlen(real), false);
	free(owner);
	return rc;
}

/* Makes path (STATE/containers) a link to RUN/containers, RUN new under
 * base; *run is RUN. */
static int
link_new(const char *base, const char *state_dir, const char *path, char **run)
{
	char *tmpl = xasprintf("%s/XXXXXX", base), *ctrs = NULL;
	int rc = 0;
	if (mkdtemp(tmpl) == NULL) {
		rc = -errno;
		goto out;
	}
	ctrs = xasprintf("%s/containers", tmpl);
	rc = owner_write(tmpl, state_dir);
	if (rc == 0 && (chmod(tmpl, 0755) < 0 || mkdir(ctrs, 0755) < 0))	/* as on disk */
		rc = -errno;
	if (rc == 0 && symlink(ctrs, path) < 0)
		rc = -errno;
	if (rc < 0)
		util_remove_tree(tmpl);
out:
	free(ctrs);
	if (rc == 0)
		*run = tmpl;
	else
		free(tmpl);
	return rc;
}

int
rt_rundir_follow(const char *path, char **run)
{
	char target[PATH_MAX];
	ssize_t n = readlink(path, target, sizeof target - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	char *slash = strrchr(target, '/');
	if (slash == NULL || slash == target || strcmp(slash, "/containers") != 0)
		return -EINVAL;
	if (access(target, F_OK) < 0)
		return -errno;
	*slash = '\0';
	*run = xstrdup(target);
	return 0;
}

int
rt_rundir_make(const char *state_dir, const char *path, char **run)
{
	struct stat st;
	*run = NULL;
	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;		/* on disk, from before: its shims run from there */
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		int rc = rt_rundir_follow(path, run);
		if (rc != -ENOENT)
			return rc;
		unlink(path);	/* made anew below, in a base checked again */
	}
	char *base = runs_base();
	int rc = -ENOENT;
	if (base) {
		runs_sweep(base);
		rc = link_new(base, state_dir, path, run);
		if (rc < 0)
			log_warn("node", "%s on tmpfs (%s): %s; kept on disk", path, base,
			    strerror(-rc));
		free(base);
	}
	return rc < 0 ? cg_mkdirs(path) : 0;
}
