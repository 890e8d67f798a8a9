/* obs_metrics_ctr.c — cAdvisor's network and filesystem families of the
 * node's containers: per interface of a pod's own network namespace (from
 * /proc/PID/net/dev of one of its processes), block I/O per device (the
 * container's blkio cgroup, v1, or io.stat, v2) and the bytes its writable
 * layer holds (runc's overlay upperdir). Called by obs_metrics_host.c for
 * /metrics/cadvisor; plain reads, no state. Also the blkio rule runc
 * containers get so that a cgroup v1 kernel counts their bytes. */
#include "obs_metrics.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <jansson.h>

/* A process of the container: the first of its cgroup (any of them shares
 * the container's namespaces), else the runtime's main pid. 0: none. */
static int
ctr_pid(const struct host_ctr *c, const char *proc)
{
	const char *dirs[] = { c->cg_memory, c->cg_cpuacct, c->cg_cpu };
	char path[1024];
	int pid = 0;

	for (size_t i = 0; i < ARRAY_SIZE(dirs) && pid <= 0; i++) {
		if (!dirs[i])
			continue;
		snprintf(path, sizeof path, "%s/cgroup.procs", dirs[i]);
		FILE *f = fopen(path, "re");
		if (f && fscanf(f, "%d", &pid) != 1)
			pid = 0;
		if (f)
			fclose(f);
	}
	if (pid <= 0)
		pid = c->pid;
	if (pid > 0) {
		snprintf(path, sizeof path, "%s/%d", proc, pid);
		struct stat st;
		if (stat(path, &st) < 0)
			pid = 0;
	}
	return pid;
}

/* ---- network ----------------------------------------------------------------- */

/* /proc/net/dev columns: rx bytes packets errs drop fifo frame compressed
 * multicast, then tx bytes packets errs drop ... */
static const struct {
	const char *name, *help;
	int col;
} net_fam[] = {
	{ "container_network_receive_bytes_total", "Cumulative count of bytes received", 0 },
	{ "container_network_receive_packets_total", "Cumulative count of packets received",
	  1 },
	{ "container_network_receive_errors_total",
	  "Cumulative count of errors encountered while receiving", 2 },
	{ "container_network_receive_packets_dropped_total",
	  "Cumulative count of packets dropped while receiving", 3 },
	{ "container_network_transmit_bytes_total", "Cumulative count of bytes transmitted",
	  8 },
	{ "container_network_transmit_packets_total",
	  "Cumulative count of packets transmitted", 9 },
	{ "container_network_transmit_errors_total",
	  "Cumulative count of errors encountered while transmitting", 10 },
	{ "container_network_transmit_packets_dropped_total",
	  "Cumulative count of packets dropped while transmitting", 11 },
};

#define NET_MAX_IF 16

/* One pod's network namespace: its interfaces but lo, as cAdvisor skips it. */
struct pod_net {
	const struct host_ctr *c;	/* its first container: namespace, pod */
	size_t n;
	char dev[NET_MAX_IF][32];
	unsigned long long v[NET_MAX_IF][16];
};

static ino_t
netns_of(const char *proc, const char *who)
{
	char path[256];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s/ns/net", proc, who);
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

static int
ctr_net_dev_parse(FILE *f, char (*dev)[32], unsigned long long (*v)[16], size_t max)
{
	char line[512];
	size_t n = 0;

	while (n < max && fgets(line, sizeof line, f)) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		if (sscanf(line, "%31s", dev[n]) != 1 || strcmp(dev[n], "lo") == 0)
			continue;
		if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
		    &v[n][0], &v[n][1], &v[n][2], &v[n][3], &v[n][4], &v[n][5], &v[n][6],
		    &v[n][7], &v[n][8], &v[n][9], &v[n][10], &v[n][11]) == 12)
			n++;
	}
	return (int)n;
}

static void
write_net(struct om_writer *w, const struct host_ctr *c, const int *pid, size_t n,
    const char *proc)
{
	struct pod_net *pn = xcalloc(n ? n : 1, sizeof *pn);
	ino_t *seen = xcalloc(n ? n : 1, sizeof *seen), host = netns_of(proc, "self");
	size_t np = 0;
	char path[256], who[32];

	for (size_t i = 0; i < n; i++) {
		if (pid[i] <= 0)
			continue;
		snprintf(who, sizeof who, "%d", pid[i]);
		ino_t ns = netns_of(proc, who);
		bool dup = ns == 0 || ns == host;	/* the host's network: not the pod's */
		for (size_t k = 0; k < np && !dup; k++)
			dup = seen[k] == ns;
		if (dup)
			continue;
		snprintf(path, sizeof path, "%s/%d/net/dev", proc, pid[i]);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		pn[np].c = &c[i];
		pn[np].n = (size_t)ctr_net_dev_parse(f, pn[np].dev, pn[np].v, NET_MAX_IF);
		fclose(f);
		seen[np++] = ns;
	}
	for (size_t k = 0; k < ARRAY_SIZE(net_fam); k++) {
		om_family(w, net_fam[k].name, OM_COUNTER, net_fam[k].help);
		/* the pod's sandbox, as cAdvisor labels it under CRI-O / dockershim */
		for (size_t p = 0; p < np; p++)
			for (size_t i = 0; i < pn[p].n; i++)
				om_sample(w, net_fam[k].name, (const char *const[]){ "namespace",
				    pn[p].c->ns, "pod", pn[p].c->pod, "container", "POD",
				    "interface", pn[p].dev[i], NULL },
				    (double)pn[p].v[i][net_fam[k].col]);
	}
	free(seen);
	free(pn);
}

/* ---- filesystem -------------------------------------------------------------- */

enum { FS_RBYTES, FS_WBYTES, FS_RIOS, FS_WIOS, FS_NSTAT };

static const struct {
	const char *name, *help;
} fs_fam[FS_NSTAT] = {
	[FS_RBYTES] = { "container_fs_reads_bytes_total", "Cumulative count of bytes read" },
	[FS_WBYTES] = { "container_fs_writes_bytes_total",
		"Cumulative count of bytes written" },
	[FS_RIOS] = { "container_fs_reads_total", "Cumulative count of reads completed" },
	[FS_WIOS] = { "container_fs_writes_total", "Cumulative count of writes completed" },
};

#define IO_MAX_DEV 8
/* 4 EiB/s: a throttle rule that never throttles */
#define BLKIO_NO_LIMIT (1ll << 62)

struct ctr_io {
	size_t n;
	unsigned maj[IO_MAX_DEV], min[IO_MAX_DEV];
	unsigned long long v[IO_MAX_DEV][FS_NSTAT];
	bool have_usage;
	unsigned long long usage;
	dev_t usage_dev;
};

static unsigned long long *
io_slot(struct ctr_io *io, unsigned maj, unsigned min)
{
	for (size_t i = 0; i < io->n; i++)
		if (io->maj[i] == maj && io->min[i] == min)
			return io->v[i];
	if (io->n == IO_MAX_DEV)
		return NULL;
	io->maj[io->n] = maj;
	io->min[io->n] = min;
	memset(io->v[io->n], 0, sizeof io->v[io->n]);
	return io->v[io->n++];
}

/* v1 blkio.throttle.io_service_bytes / io_serviced: "MAJ:MIN Read N",
 * "MAJ:MIN Write N", ..., "Total N". rd/wr: the slots to add to. */
static void
ctr_blkio_v1_parse(FILE *f, struct ctr_io *io, int rd, int wr)
{
	char line[256], op[16];
	unsigned maj, min;
	unsigned long long v, *s;

	while (fgets(line, sizeof line, f))
		if (sscanf(line, "%u:%u %15s %llu", &maj, &min, op, &v) == 4 &&
		    (s = io_slot(io, maj, min)) != NULL) {
			if (strcmp(op, "Read") == 0)
				s[rd] += v;
			else if (strcmp(op, "Write") == 0)
				s[wr] += v;
		}
}

/* v2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N". */
static void
ctr_io_stat_parse(FILE *f, struct ctr_io *io)
{
	static const char *const keys[FS_NSTAT] = { "rbytes=", "wbytes=", "rios=", "wios=" };
	char line[512];
	unsigned maj, min;
	unsigned long long *s;

	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%u:%u", &maj, &min) != 2 || (s = io_slot(io, maj, min)) == NULL)
			continue;
		for (int k = 0; k < FS_NSTAT; k++) {
			const char *p = strstr(line, keys[k]);
			if (p)
				s[k] = strtoull(p + strlen(keys[k]), NULL, 10);
		}
	}
}

/* The cgroup dir of pid for the v1 controller ctrl ("blkio"), or its v2
 * group when ctrl is NULL: the mount point from /proc/self/mountinfo +
 * the path in /proc/PID/cgroup. */
static bool
cgroup_dir_of(const char *proc, int pid, const char *ctrl, char *out, size_t len)
{
	char path[256], line[1024], mnt[512], opts[512], rel[512] = "";
	bool found = false;
	FILE *f;

	snprintf(path, sizeof path, "%s/%d/cgroup", proc, pid);
	if (!(f = fopen(path, "re")))
		return false;
	while (!found && fgets(line, sizeof line, f)) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (!b)
			continue;
		*b = '\0';
		b[strcspn(b + 1, "\n") + 1] = '\0';
		bool v2 = strcmp(a + 1, "") == 0;
		if (ctrl ? (!v2 && strstr(a + 1, ctrl) != NULL) : v2)
			snprintf(rel, sizeof rel, "%s", b + 1), found = true;
	}
	fclose(f);
	if (!found)
		return false;
	snprintf(path, sizeof path, "%s/self/mountinfo", proc);
	if (!(f = fopen(path, "re")))
		return false;
	found = false;
	while (!found && fgets(line, sizeof line, f)) {
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1)
			continue;
		char fstype[32];
		if (sscanf(dash + 3, "%31s %*s %511s", fstype, opts) != 2)
			continue;
		if (ctrl ? strcmp(fstype, "cgroup") == 0 && strstr(opts, ctrl) != NULL :
		    strcmp(fstype, "cgroup2") == 0)
			found = true;
	}
	fclose(f);
	if (found)
		snprintf(out, len, "%s%s", mnt, strcmp(rel, "/") == 0 ? "" : rel);
	return found;
}

static void
read_blkio(const char *proc, int pid, struct ctr_io *io)
{
	static const struct { const char *file; int rd, wr; } v1[] = {
		{ "blkio.throttle.io_service_bytes_recursive", FS_RBYTES, FS_WBYTES },
		{ "blkio.throttle.io_serviced_recursive", FS_RIOS, FS_WIOS },
	};
	char dir[1024], path[1200];
	FILE *f;

	if (cgroup_dir_of(proc, pid, "blkio", dir, sizeof dir)) {
		for (size_t i = 0; i < ARRAY_SIZE(v1); i++) {
			snprintf(path, sizeof path, "%s/%s", dir, v1[i].file);
			if ((f = fopen(path, "re")) != NULL) {
				ctr_blkio_v1_parse(f, io, v1[i].rd, v1[i].wr);
				fclose(f);
			}
		}
	} else if (cgroup_dir_of(proc, pid, NULL, dir, sizeof dir)) {
		snprintf(path, sizeof path, "%s/io.stat", dir);
		if ((f = fopen(path, "re")) != NULL) {
			ctr_io_stat_parse(f, io);
			fclose(f);
		}
	}
}

/* The upperdir of the overlay mounted at the container's / (runc's
 * writable layer), from /proc/PID/mountinfo. */
static bool
upper_dir_of(const char *proc, int pid, char *out, size_t len)
{
	char path[256], line[4096], mnt[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof path, "%s/%d/mountinfo", proc, pid);
	if (!(f = fopen(path, "re")))
		return false;
	while (!found && fgets(line, sizeof line, f)) {
		char *dash = strstr(line, " - overlay ");
		char *up = dash ? strstr(dash, "upperdir=") : NULL;
		if (!up || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 || strcmp(mnt, "/") != 0)
			continue;
		up += strlen("upperdir=");
		size_t n = strcspn(up, ",\n ");
		snprintf(out, len, "%.*s", (int)n, up);
		found = true;
	}
	fclose(f);
	return found;
}

/* du of one tree (blocks allocated), as cAdvisor's fs usage; a tree of more
 * than DU_MAX_ENTRIES entries is not measured (the scrape stays short). */
#define DU_MAX_ENTRIES 100000

static _Thread_local struct {
	unsigned long long bytes;
	size_t entries;
} du;

static int
du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path, (void)flag, (void)ftw;
	du.bytes += (unsigned long long)st->st_blocks * 512;
	return ++du.entries > DU_MAX_ENTRIES;
}

static void
read_usage(const char *proc, int pid, struct ctr_io *io)
{
	char upper[1024];
	struct stat st;

	if (!upper_dir_of(proc, pid, upper, sizeof upper) || stat(upper, &st) < 0)
		return;
	du.bytes = 0;
	du.entries = 0;
	if (nftw(upper, du_one, 16, FTW_PHYS | FTW_MOUNT) != 0)
		return;
	io->have_usage = true;
	io->usage = du.bytes;
	io->usage_dev = st.st_dev;
}

/* "/dev/NAME" of a block device, as cAdvisor labels it (DEVNAME of sysfs);
 * "MAJ:MIN" when sysfs does not say. */
static void
dev_name(unsigned maj, unsigned min, char *out, size_t len)
{
	char path[128], line[64];
	FILE *f;

	snprintf(out, len, "%u:%u", maj, min);
	snprintf(path, sizeof path, "/sys/dev/block/%u:%u/uevent", maj, min);
	if (!(f = fopen(path, "re")))
		return;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "DEVNAME=", 8) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, len, "/dev/%s", line + 8);
		}
	fclose(f);
}

static void
write_fs(struct om_writer *w, const struct host_ctr *c, const int *pid, size_t n,
    const char *proc)
{
	struct ctr_io *io = xcalloc(n ? n : 1, sizeof *io);
	char dev[80];

	for (size_t i = 0; i < n; i++)
		if (pid[i] > 0) {
			read_blkio(proc, pid[i], &io[i]);
			read_usage(proc, pid[i], &io[i]);
		}
#define CTR_LABELS(i, d) (const char *const[]){ "namespace", c[i].ns, "pod", c[i].pod, \
	"container", c[i].container, "image", c[i].image, "device", d, NULL }
	om_family(w, "container_fs_usage_bytes", OM_GAUGE,
	    "Number of bytes that are consumed by the container on this filesystem.");
	for (size_t i = 0; i < n; i++)
		if (io[i].have_usage) {
			dev_name(major(io[i].usage_dev), minor(io[i].usage_dev), dev, sizeof dev);
			om_sample(w, "container_fs_usage_bytes", CTR_LABELS(i, dev),
			    (double)io[i].usage);
		}
	for (int k = 0; k < FS_NSTAT; k++) {
		om_family(w, fs_fam[k].name, OM_COUNTER, fs_fam[k].help);
		for (size_t i = 0; i < n; i++)
			for (size_t d = 0; d < io[i].n; d++) {
				dev_name(io[i].maj[d], io[i].min[d], dev, sizeof dev);
				om_sample(w, fs_fam[k].name, CTR_LABELS(i, dev),
				    (double)io[i].v[d][k]);
			}
	}
#undef CTR_LABELS
	free(io);
}

/* The whole disk holding path (a partition's parent: blk-throttle takes
 * rules for disks only). false: not on a block device. */
static bool
disk_of(const char *path, unsigned *maj, unsigned *min)
{
	char p[1024], sys[128], line[32];
	struct stat st;
	FILE *f;

	snprintf(p, sizeof p, "%s", path);
	while (stat(p, &st) < 0) {
		char *slash = strrchr(p, '/');
		if (!slash || slash == p)
			return false;
		*slash = '\0';
	}
	if (major(st.st_dev) == 0)		/* tmpfs, overlay, ... */
		return false;
	*maj = major(st.st_dev);
	*min = minor(st.st_dev);
	snprintf(sys, sizeof sys, "/sys/dev/block/%u:%u/partition", *maj, *min);
	if (access(sys, F_OK) != 0)
		return true;
	snprintf(sys, sizeof sys, "/sys/dev/block/%u:%u/../dev", *maj, *min);
	if (!(f = fopen(sys, "re")))
		return false;
	bool ok = fgets(line, sizeof line, f) && sscanf(line, "%u:%u", maj, min) == 2;
	fclose(f);
	return ok;
}

void
obs_blkio_accounting(json_t *resources, const char *path)
{
	char dir[1024];
	unsigned maj, min;

	if (!cgroup_dir_of("/proc", getpid(), "blkio", dir, sizeof dir) ||
	    !disk_of(path, &maj, &min))
		return;
	json_t *rule = json_pack("[{s:I, s:I, s:I}]", "major", (json_int_t)maj, "minor",
	    (json_int_t)min, "rate", (json_int_t)BLKIO_NO_LIMIT);
	json_object_set_new(resources, "blockIO", json_pack("{s:O, s:o}",
	    "throttleReadBpsDevice", rule, "throttleWriteBpsDevice", rule));
}

void
host_write_ctr_io(struct om_writer *w, const struct host_ctr *c, size_t n, const char *proc)
{
	int *pid = xcalloc(n ? n : 1, sizeof *pid);

	for (size_t i = 0; i < n; i++)
		pid[i] = ctr_pid(&c[i], proc);
	write_net(w, c, pid, n, proc);
	write_fs(w, c, pid, n, proc);
	free(pid);
}
