/* node_cgroup.c — cgroup helpers (see node_cgroup.h): locating each
 * controller's V6 subtree from /proc/self/mountinfo and /proc/self/cgroup
 * (a v1 hierarchy when the controller is mounted there, else the v2 unified
 * one), and the file reads and writes a container's group needs, named per
 * version by one table. */
#include "node_cgroup.h"

#include <dirent.h>
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

/* Mount point and mount root of the v1 hierarchy carrying ctrl, or with
 * ctrl NULL of the v2 unified hierarchy. */
static int
find_mount(const char *ctrl, char *mnt, char *root, size_t size)
{
	const char *want = ctrl ? "cgroup" : "cgroup2";
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
		if (strcmp(fstype, want) != 0 || (ctrl && !has_token(opts, ctrl)) ||
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

static char *v2_base(enum cg_ctrl c, int *err);

char *
cg_base(enum cg_ctrl c, int *err)
{
	char mnt[512], root[512], own[512];
	int rc = find_mount(ctrl_names[c], mnt, root, sizeof mnt);
	if (rc == -ENOENT)
		return v2_base(c, err);
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

/* rmdir DIR's child groups, then DIR; errors ignored (a group in use stays). */
static void
remove_group_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		char *sub = xasprintf("%s/%s", dir, de->d_name);
		rmdir(sub);
		free(sub);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

void
cg_remove_v6_everywhere(const char *rel)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	while (f && fgets(line, sizeof line, f)) {
		char r[512], m[512], fstype[64], opts[256], own[512], *save = NULL;
		char *dash = strstr(line, " - ");
		if (dash == NULL || sscanf(line, "%*s %*s %*s %511s %511s", r, m) != 2 ||
		    sscanf(dash + 3, "%63s %*s %255s", fstype, opts) != 2 ||
		    strcmp(fstype, "cgroup") != 0)
			continue;
		bool found = false;
		for (char *t = strtok_r(opts, ",", &save); t && !found; t = strtok_r(NULL, ",",
		    &save))
			found = strcmp(t, "rw") != 0 && strcmp(t, "ro") != 0 &&
			    own_path(t, own, sizeof own) == 0;
		if (!found)
			continue;
		const char *o = own;
		if (strcmp(r, "/") != 0 && str_has_prefix(own, r))
			o = own + strlen(r);
		while (*o == '/')
			o++;
		char *dir = *o ? xasprintf("%s/%s/v6/%s", m, o, rel) : xasprintf("%s/v6/%s", m,
		    rel);
		remove_group_tree(dir);
		free(dir);
	}
	if (f)
		fclose(f);
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
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);	/* O_TRUNC: no-op on cgroupfs */
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

/* ---- cgroup v2 (the unified hierarchy; Debian 12's default) ----
 * One tree carries every controller, so the V6 subtree is the same directory
 * for all of them. A controller reaches a child only when its parent lists
 * it in cgroup.subtree_control, and a group that does (other than the root)
 * may hold no process: so the server, when it sits in the group V6 nests
 * under, moves itself into a leaf of it (V2_SELF) before enabling them. */

#define V2_SELF "v6-server"

/* The controller's name in the unified hierarchy (cpuacct is part of cpu). */
static const char *const v2_names[CG_NCTRL] = {
	[CG_MEMORY] = "memory", [CG_CPU] = "cpu", [CG_CPUACCT] = "cpu", [CG_PIDS] = "pids",
};

bool
cg_is_v2(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/cgroup.controllers", dir);
	return access(path, F_OK) == 0;
}

/* true when DIR/FILE (a space-separated list) has the token name. */
static bool
file_has_token(const char *dir, const char *file, const char *name)
{
	FILE *f = cg_open(dir, file);
	char tok[64];
	bool found = false;
	if (f == NULL)
		return false;
	while (!found && fscanf(f, "%63s", tok) == 1)
		found = strcmp(tok, name) == 0;
	fclose(f);
	return found;
}

/* Enables in DIR's children every controller V6 uses that DIR has.
 * Returns 0 or negative errno (-EBUSY: DIR holds processes). */
static int
v2_enable(const char *dir)
{
	char buf[64] = "";
	for (int c = 0; c < CG_NCTRL; c++) {
		char tok[16];
		snprintf(tok, sizeof tok, "+%s", v2_names[c]);
		if (strstr(buf, tok) == NULL && file_has_token(dir, "cgroup.controllers", v2_names[c]))
			snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", *buf ? " " : "", tok);
	}
	return *buf ? cg_write(dir, "cgroup.subtree_control", buf) : 0;
}

int
cg__v2_base(const char *own, enum cg_ctrl c, char **out)
{
	*out = NULL;
	if (!file_has_token(own, "cgroup.controllers", v2_names[c]))
		return -ENOENT;
	int rc = v2_enable(own);
	if (rc == -EBUSY) {	/* we (and maybe others) live in own: move to a leaf */
		char *self = xasprintf("%s/%s", own, V2_SELF);
		rc = cg_mkdirs(self);
		if (rc == 0)
			rc = cg_join(self, getpid());
		free(self);
		if (rc == 0)
			rc = v2_enable(own);
	}
	char *base = xasprintf("%s/v6", own);
	if (rc == 0)
		rc = cg_mkdirs(base);
	if (rc == 0)
		rc = v2_enable(base);
	if (rc < 0) {
		free(base);
		return rc;
	}
	*out = base;
	return 0;
}

/* cg_base for a controller not on a v1 hierarchy: the unified mount + our
 * own group (its parent when we are already in our V2_SELF leaf). */
static char *
v2_base(enum cg_ctrl c, int *err)
{
	char mnt[512], root[512], own[512];
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[1024];
	int rc = find_mount(NULL, mnt, root, sizeof mnt);
	own[0] = '\0';
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "0::", 3) == 0 && strlen(line) < sizeof own + 3)
			snprintf(own, sizeof own, "%.*s", (int)strcspn(line + 3, "\n"), line + 3);
	if (f)
		fclose(f);
	if (rc == 0 && own[0] != '/')
		rc = -ENOENT;
	if (rc < 0) {
		*err = -rc;
		return NULL;
	}
	const char *rel = own;
	if (strcmp(root, "/") != 0 && str_has_prefix(own, root))
		rel = own + strlen(root);
	size_t len = strlen(rel);
	if (len >= sizeof V2_SELF && strcmp(rel + len - (sizeof V2_SELF - 1), V2_SELF) == 0 &&
	    rel[len - sizeof V2_SELF] == '/')
		len -= sizeof V2_SELF;
	while (len > 0 && rel[len - 1] == '/')
		len--;
	char *dir = xasprintf("%s%.*s", mnt, (int)len, rel);
	char *base = NULL;
	rc = cg__v2_base(dir, c, &base);
	free(dir);
	if (rc < 0)
		*err = -rc;
	return base;
}

/* ---- files that differ between the versions ---- */

int
cg_group_create(const char *dir)
{
	int rc = cg_mkdirs(dir);
	if (rc < 0 || !cg_is_v2(dir))
		return rc;
	char *parent = xstrdup(dir);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	rc = v2_enable(parent);
	free(parent);
	return rc;
}

int
cg_set_memory_max(const char *dir, int64_t bytes)
{
	if (!cg_is_v2(dir))
		return cg_write_i64(dir, "memory.limit_in_bytes", bytes > 0 ? bytes : -1);
	int rc = bytes > 0 ? cg_write_i64(dir, "memory.max", bytes) : cg_write(dir, "memory.max", "max");
	if (rc == 0 && bytes > 0)	/* v1's limit_in_bytes bounds RAM only; so does K8s */
		cg_write(dir, "memory.swap.max", "0");
	return rc;
}

int
cg_set_cpu_max(const char *dir, int64_t millis)
{
	int64_t quota = millis > 0 ? millis * 100 : -1;	/* of a 100 ms period */
	if (quota > 0 && quota < 1000)
		quota = 1000;
	if (cg_is_v2(dir)) {
		char v[48];
		if (quota > 0)
			snprintf(v, sizeof v, "%" PRId64 " 100000", quota);
		else
			snprintf(v, sizeof v, "max 100000");
		return cg_write(dir, "cpu.max", v);
	}
	int rc = cg_write_i64(dir, "cpu.cfs_period_us", 100000);
	return rc == 0 ? cg_write_i64(dir, "cpu.cfs_quota_us", quota) : rc;
}

int
cg_set_pids_max(const char *dir, int64_t n)
{
	return n > 0 ? cg_write_i64(dir, "pids.max", n) : cg_write(dir, "pids.max", "max");
}

int
cg_oom_kills(const char *dir, uint64_t *out)
{
	*out = 0;
	return cg_is_v2(dir) ? cg_read_key(dir, "memory.events", "oom_kill", out) :
	    cg_read_key(dir, "memory.oom_control", "oom_kill", out);
}

int
cg_cpu_usage_ns(const char *dir, uint64_t *out)
{
	if (!cg_is_v2(dir))
		return cg_read_u64(dir, "cpuacct.usage", out);
	uint64_t us;
	int rc = cg_read_key(dir, "cpu.stat", "usage_usec", &us);
	if (rc == 0)
		*out = us * 1000;
	return rc;
}

int
cg_memory_working_set(const char *dir, uint64_t *out)
{
	bool v2 = cg_is_v2(dir);
	uint64_t usage, inactive = 0;
	int rc = cg_read_u64(dir, v2 ? "memory.current" : "memory.usage_in_bytes", &usage);
	if (rc < 0)
		return rc;
	cg_read_key(dir, "memory.stat", v2 ? "inactive_file" : "total_inactive_file", &inactive);
	*out = usage > inactive ? usage - inactive : 0;
	return 0;
}
