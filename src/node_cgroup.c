/* node_cgroup.c — cgroup v1 helpers (see node_cgroup.h): locating each
 * controller's V6 subtree from /proc/self/mountinfo and /proc/self/cgroup,
 * and the small file reads and writes a container's group needs. */
#include "node_cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static const char *const ctrl_names[CG_NCTRL] = {
	[CG_MEMORY] = "memory", [CG_CPU] = "cpu", [CG_CPUACCT] = "cpuacct", [CG_PIDS] = "pids",
};

const char *
cg_ctrl_name(enum cg_ctrl c)
{
	return ctrl_names[c];
}

/* true when the comma-separated list has the token name. */
static bool
has_token(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0' || p[n] == '\n'))
			return true;
	return false;
}

/* Mount point and mount root of the v1 hierarchy carrying ctrl. */
static int
find_mount(const char *ctrl, char *mnt, char *root, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	int rc = -ENOENT;
	if (f == NULL)
		return -errno;
	while (rc != 0 && fgets(line, sizeof line, f)) {
		char r[512], m[512], fstype[64], opts[256];
		char *dash = strstr(line, " - ");
		if (dash == NULL || sscanf(line, "%*s %*s %*s %511s %511s", r, m) != 2 ||
		    sscanf(dash + 3, "%63s %*s %255s", fstype, opts) != 2)
			continue;
		if (strcmp(fstype, "cgroup") != 0 || !has_token(opts, ctrl) ||
		    strlen(m) >= size || strlen(r) >= size)
			continue;
		strcpy(mnt, m);
		strcpy(root, r);
		rc = 0;
	}
	fclose(f);
	return rc;
}

/* This process's cgroup path in the hierarchy carrying ctrl. */
static int
own_path(const char *ctrl, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[1024];
	int rc = -ENOENT;
	if (f == NULL)
		return -errno;
	while (rc != 0 && fgets(line, sizeof line, f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2 == NULL)
			continue;
		*c2 = '\0';
		if (!has_token(c1 + 1, ctrl))
			continue;
		c2[1 + strcspn(c2 + 1, "\n")] = '\0';
		if (strlen(c2 + 1) >= size)
			continue;
		strcpy(out, c2 + 1);
		rc = 0;
	}
	fclose(f);
	return rc;
}

char *
cg_base(enum cg_ctrl c, int *err)
{
	char mnt[512], root[512], own[512];
	int rc = find_mount(ctrl_names[c], mnt, root, sizeof mnt);
	if (rc == 0)
		rc = own_path(ctrl_names[c], own, sizeof own);
	if (rc < 0) {
		*err = -rc;
		return NULL;
	}
	/* Inside a container the mount root is our own group: strip it. */
	const char *rel = own;
	if (strcmp(root, "/") != 0 && str_has_prefix(own, root))
		rel = own + strlen(root);
	while (*rel == '/')
		rel++;
	char *base = *rel ? xasprintf("%s/%s/v6", mnt, rel) : xasprintf("%s/v6", mnt);
	rc = cg_mkdirs(base);
	if (rc == 0 && access(base, W_OK) != 0)
		rc = -errno;
	if (rc < 0) {
		*err = -rc;
		free(base);
		return NULL;
	}
	return base;
}

int
cg_mkdirs(const char *dir)
{
	char path[PATH_MAX];
	if (strlen(dir) >= sizeof path)
		return -ENAMETOOLONG;
	if (mkdir(dir, 0755) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -errno;
	/* A parent is missing: make it first (only then walk up). */
	strcpy(path, dir);
	char *slash = strrchr(path, '/');
	if (slash == NULL || slash == path)
		return -ENOENT;
	*slash = '\0';
	int rc = cg_mkdirs(path);
	if (rc < 0)
		return rc;
	return mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

int
cg_write(const char *dir, const char *file, const char *value)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, value, strlen(value));
	int rc = n < 0 ? -errno : 0;
	close(fd);
	return rc;
}

int
cg_write_i64(const char *dir, const char *file, int64_t v)
{
	char s[32];
	snprintf(s, sizeof s, "%" PRId64, v);
	return cg_write(dir, file, s);
}

static FILE *
cg_open(const char *dir, const char *file)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	return fopen(path, "re");
}

int
cg_read_u64(const char *dir, const char *file, uint64_t *out)
{
	FILE *f = cg_open(dir, file);
	if (f == NULL)
		return -errno;
	int rc = fscanf(f, "%" SCNu64, out) == 1 ? 0 : -EINVAL;
	fclose(f);
	return rc;
}

int
cg_read_key(const char *dir, const char *file, const char *key, uint64_t *out)
{
	FILE *f = cg_open(dir, file);
	char k[128];
	uint64_t v;
	int rc = -ENOENT;
	if (f == NULL)
		return -errno;
	while (rc != 0 && fscanf(f, "%127s %" SCNu64, k, &v) == 2) {
		if (strcmp(k, key) == 0) {
			*out = v;
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}

int
cg_join(const char *dir, pid_t pid)
{
	return cg_write_i64(dir, "cgroup.procs", pid);
}

int
cg_kill_all(const char *dir, int sig)
{
	FILE *f = cg_open(dir, "cgroup.procs");
	int pid, n = 0;
	if (f == NULL)
		return 0;
	while (fscanf(f, "%d", &pid) == 1)
		if (pid > 0 && kill(pid, sig) == 0)
			n++;
	fclose(f);
	return n;
}

int
cg_remove(const char *dir)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	for (int i = 0; i < 40; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		cg_kill_all(dir, SIGKILL);
		nanosleep(&ts, NULL);
	}
	return -EBUSY;
}
