/* obs_metrics_host.c — the machine as node_exporter names it (cpu, memory,
 * load, the data dir's filesystem, network, disks; from /proc and statvfs)
 * and containers as cAdvisor names them (CPU, memory, CFS throttling, OOM
 * events, memory limit; from each container's cgroups, v1 or v2, through
 * node_cgroup.c; network and filesystem in obs_metrics_ctr.c). Plain reads,
 * no state: every scrape reads afresh. */
#include "obs_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "node_cgroup.h"

static FILE *
open_at(const char *proc, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", proc, name);
	return fopen(path, "re");
}

/* /proc/stat "cpuN user nice system idle iowait irq softirq steal" in
 * USER_HZ ticks. */
static void
node_cpu(struct om_writer *w, const char *proc)
{
	static const char *const modes[] = { "user", "nice", "system", "idle", "iowait", "irq",
		"softirq", "steal" };
	double hz = (double)sysconf(_SC_CLK_TCK);
	unsigned long long v[8];
	char line[512], cpu[16];
	FILE *f = open_at(proc, "stat");

	om_family(w, "node_cpu_seconds_total", OM_COUNTER,
	    "Seconds the CPUs spent in each mode.");
	while (f && fgets(line, sizeof line, f)) {
		if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9')
			continue;
		if (sscanf(line, "cpu%15s %llu %llu %llu %llu %llu %llu %llu %llu", cpu, &v[0],
		    &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 9)
			continue;
		for (size_t m = 0; m < 8; m++)
			om_sample(w, "node_cpu_seconds_total", (const char *const[]){ "cpu", cpu,
			    "mode", modes[m], NULL }, (double)v[m] / hz);
	}
	if (f)
		fclose(f);
}

/* The /proc/meminfo values (kB) of fields[0..n-1]; have[i] tells which. */
static void
meminfo_read(const char *proc, const char *const *fields, size_t n,
    unsigned long long *kb, bool *have)
{
	char line[256], key[64];
	unsigned long long v;
	FILE *f = open_at(proc, "meminfo");

	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "%63[^:]: %llu", key, &v) == 2)
			for (size_t i = 0; i < n; i++)
				if (strcmp(key, fields[i]) == 0)
					kb[i] = v, have[i] = true;
	if (f)
		fclose(f);
}

int
host_usage_read(const char *proc, uint64_t *busy_ns, uint64_t *memory_bytes)
{
	static const char *const fields[] = { "MemTotal", "MemAvailable" };
	unsigned long long v[8], kb[2] = { 0, 0 };
	bool have[2] = { false, false };
	char line[512];
	int rc = -ENOENT;
	FILE *f = open_at(proc, "stat");
	double hz = (double)sysconf(_SC_CLK_TCK);

	/* busy = everything but idle and iowait, over all CPUs */
	if (f && fgets(line, sizeof line, f) && sscanf(line, "cpu %llu %llu %llu %llu %llu "
	    "%llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		*busy_ns = (uint64_t)((double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz * 1e9);
		rc = 0;
	}
	if (f)
		fclose(f);
	meminfo_read(proc, fields, 2, kb, have);
	if (!have[0] || !have[1])
		return -ENOENT;
	*memory_bytes = (kb[0] - kb[1]) * 1024;
	return rc;
}

/* node_memory_<Field>_bytes for the /proc/meminfo fields dashboards use. */
static void
node_memory(struct om_writer *w, const char *proc)
{
	static const char *const fields[] = { "MemTotal", "MemFree", "MemAvailable",
		"Buffers", "Cached", "SwapTotal", "SwapFree" };
	char name[96], help[128];
	unsigned long long kb[ARRAY_SIZE(fields)];
	bool have[ARRAY_SIZE(fields)] = { false };

	meminfo_read(proc, fields, ARRAY_SIZE(fields), kb, have);
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		if (!have[i])
			continue;
		snprintf(name, sizeof name, "node_memory_%s_bytes", fields[i]);
		snprintf(help, sizeof help, "Memory information field %s_bytes.", fields[i]);
		om_family(w, name, OM_GAUGE, help);
		om_sample(w, name, NULL, (double)kb[i] * 1024);
	}
}

static void
node_load(struct om_writer *w, const char *proc)
{
	static const char *const names[] = { "node_load1", "node_load5", "node_load15" };
	double l[3];
	FILE *f = open_at(proc, "loadavg");
	int n = f ? fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) : 0;

	if (f)
		fclose(f);
	for (int i = 0; n == 3 && i < 3; i++) {
		om_family(w, names[i], OM_GAUGE, i == 0 ? "1m load average." : i == 1 ?
		    "5m load average." : "15m load average.");
		om_sample(w, names[i], NULL, l[i]);
	}
}

/* The mount holding dir: the longest mount point of /proc/self/mounts that
 * is a prefix of dir (at a path boundary). */
static void
mount_of(const char *proc, const char *dir, char *mnt, char *dev, char *fstype, size_t len)
{
	char line[1024], m[512], d[256], t[64];
	size_t best = 0;
	FILE *f = open_at(proc, "self/mounts");

	snprintf(mnt, len, "/");
	dev[0] = fstype[0] = '\0';
	while (f && fgets(line, sizeof line, f)) {
		if (sscanf(line, "%255s %511s %63s", d, m, t) != 3)
			continue;
		size_t ml = strlen(m);
		bool under = strcmp(m, "/") == 0 || (strncmp(dir, m, ml) == 0 &&
		    (dir[ml] == '/' || dir[ml] == '\0'));
		if (under && ml >= best) {
			best = ml;
			snprintf(mnt, len, "%s", m);
			snprintf(dev, len, "%s", d);
			snprintf(fstype, 64, "%s", t);
		}
	}
	if (f)
		fclose(f);
}

static void
node_fs(struct om_writer *w, const char *proc, const char *data_dir)
{
	char mnt[512], dev[512], fstype[64];
	char *real = realpath(data_dir, NULL);
	struct statvfs sv;

	if (!real || statvfs(real, &sv) < 0) {
		free(real);
		return;
	}
	mount_of(proc, real, mnt, dev, fstype, sizeof mnt);
	free(real);
	const char *const labels[] = { "device", dev, "fstype", fstype, "mountpoint", mnt,
		NULL };
	om_family(w, "node_filesystem_size_bytes", OM_GAUGE, "Filesystem size in bytes.");
	om_sample(w, "node_filesystem_size_bytes", labels,
	    (double)sv.f_blocks * (double)sv.f_frsize);
	om_family(w, "node_filesystem_free_bytes", OM_GAUGE,
	    "Filesystem free space in bytes.");
	om_sample(w, "node_filesystem_free_bytes", labels,
	    (double)sv.f_bfree * (double)sv.f_frsize);
	om_family(w, "node_filesystem_avail_bytes", OM_GAUGE,
	    "Filesystem space available to non-root users in bytes.");
	om_sample(w, "node_filesystem_avail_bytes", labels,
	    (double)sv.f_bavail * (double)sv.f_frsize);
}

/* /proc/net/dev: "  eth0: rx_bytes rx_packets ... (8 fields) tx_bytes ...". */
static void
node_net(struct om_writer *w, const char *proc)
{
	static const struct { const char *name, *help; int col; } cols[] = {
		{ "node_network_receive_bytes_total", "Network device statistic receive_bytes.",
		  0 },
		{ "node_network_receive_packets_total",
		  "Network device statistic receive_packets.", 1 },
		{ "node_network_transmit_bytes_total",
		  "Network device statistic transmit_bytes.", 8 },
		{ "node_network_transmit_packets_total",
		  "Network device statistic transmit_packets.", 9 },
	};
	char line[512], dev[64][32];
	unsigned long long v[64][16];
	size_t n = 0;
	FILE *f = open_at(proc, "net/dev");

	while (f && n < 64 && fgets(line, sizeof line, f)) {
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		if (sscanf(line, "%31s", dev[n]) != 1)
			continue;
		if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
		    &v[n][0], &v[n][1], &v[n][2], &v[n][3], &v[n][4], &v[n][5], &v[n][6],
		    &v[n][7], &v[n][8], &v[n][9]) == 10)
			n++;
	}
	if (f)
		fclose(f);
	for (size_t c = 0; c < ARRAY_SIZE(cols); c++) {
		om_family(w, cols[c].name, OM_COUNTER, cols[c].help);
		for (size_t i = 0; i < n; i++)
			om_sample(w, cols[c].name, (const char *const[]){ "device", dev[i], NULL },
			    (double)v[i][cols[c].col]);
	}
}

/* A whole disk, not a partition, loop or RAM device (node_exporter's
 * default device filter, simplified). */
static bool
disk_wanted(const char *name, const char *proc)
{
	char path[512];
	if (strncmp(name, "loop", 4) == 0 || strncmp(name, "ram", 3) == 0 ||
	    strncmp(name, "zram", 4) == 0)
		return false;
	/* partitions have /sys/class/block/NAME/partition */
	(void)proc;
	snprintf(path, sizeof path, "/sys/class/block/%s/partition", name);
	return access(path, F_OK) != 0;
}

/* /proc/diskstats: major minor name reads merged sectors_read ms writes
 * merged sectors_written ...; sectors are 512 bytes. */
static void
node_disk(struct om_writer *w, const char *proc)
{
	char line[512], name[64][32];
	unsigned long long rd[64], wr[64], x;
	size_t n = 0;
	FILE *f = open_at(proc, "diskstats");

	while (f && n < 64 && fgets(line, sizeof line, f)) {
		if (sscanf(line, "%*u %*u %31s %llu %llu %llu %llu %llu %llu %llu", name[n], &x,
		    &x, &rd[n], &x, &x, &x, &wr[n]) == 8 && disk_wanted(name[n], proc))
			n++;
	}
	if (f)
		fclose(f);
	om_family(w, "node_disk_read_bytes_total", OM_COUNTER,
	    "The total number of bytes read successfully.");
	for (size_t i = 0; i < n; i++)
		om_sample(w, "node_disk_read_bytes_total", (const char *const[]){ "device",
		    name[i], NULL }, (double)rd[i] * 512);
	om_family(w, "node_disk_written_bytes_total", OM_COUNTER,
	    "The total number of bytes written successfully.");
	for (size_t i = 0; i < n; i++)
		om_sample(w, "node_disk_written_bytes_total", (const char *const[]){ "device",
		    name[i], NULL }, (double)wr[i] * 512);
}

void
host_write_node(struct om_writer *w, const char *proc, const char *data_dir)
{
	node_cpu(w, proc);
	node_memory(w, proc);
	node_load(w, proc);
	if (data_dir)
		node_fs(w, proc, data_dir);
	node_net(w, proc);
	node_disk(w, proc);
}

/* ---- cAdvisor ---------------------------------------------------------------- */

enum cadv {
	CA_CPU, CA_WSS, CA_USAGE, CA_RSS, CA_PERIODS, CA_THROTTLED, CA_THROTTLED_S, CA_OOM,
	CA_LIMIT, CA_N
};

static const struct {
	const char *name;
	enum om_type type;
	const char *help;
} cadv_fam[CA_N] = {
	[CA_CPU] = { "container_cpu_usage_seconds_total", OM_COUNTER,
		"Cumulative cpu time consumed in seconds." },
	[CA_WSS] = { "container_memory_working_set_bytes", OM_GAUGE,
		"Current working set in bytes." },
	[CA_USAGE] = { "container_memory_usage_bytes", OM_GAUGE,
		"Current memory usage in bytes, including all memory regardless of when it "
		"was accessed" },
	[CA_RSS] = { "container_memory_rss", OM_GAUGE, "Size of RSS in bytes." },
	[CA_PERIODS] = { "container_cpu_cfs_periods_total", OM_COUNTER,
		"Number of elapsed enforcement period intervals." },
	[CA_THROTTLED] = { "container_cpu_cfs_throttled_periods_total", OM_COUNTER,
		"Number of throttled period intervals." },
	[CA_THROTTLED_S] = { "container_cpu_cfs_throttled_seconds_total", OM_COUNTER,
		"Total time duration the container has been throttled." },
	[CA_OOM] = { "container_oom_events_total", OM_COUNTER,
		"Count of out of memory events observed for the container" },
	[CA_LIMIT] = { "container_spec_memory_limit_bytes", OM_GAUGE,
		"Memory limit for the container." },
};

/* One container's readings; have[k] false when its cgroup does not say. */
struct cadv_read {
	double v[CA_N];
	bool have[CA_N];
};

static void
put(struct cadv_read *r, enum cadv k, double v)
{
	r->v[k] = v;
	r->have[k] = true;
}

static void
read_container(const struct host_ctr *c, struct cadv_read *r)
{
	uint64_t u;
	bool v2;

	memset(r, 0, sizeof *r);
	if (c->cg_cpuacct && cg_cpu_usage_ns(c->cg_cpuacct, &u) == 0)
		put(r, CA_CPU, (double)u / 1e9);
	else if (c->have_usage)
		put(r, CA_CPU, (double)c->cpu_ns / 1e9);
	if (!c->cg_memory && c->have_usage)
		put(r, CA_WSS, (double)c->memory_bytes);
	if (c->cg_cpu) {
		v2 = cg_is_v2(c->cg_cpu);
		if (cg_read_key(c->cg_cpu, "cpu.stat", "nr_periods", &u) == 0)
			put(r, CA_PERIODS, (double)u);
		if (cg_read_key(c->cg_cpu, "cpu.stat", "nr_throttled", &u) == 0)
			put(r, CA_THROTTLED, (double)u);
		if (cg_read_key(c->cg_cpu, "cpu.stat", v2 ? "throttled_usec" : "throttled_time",
		    &u) == 0)
			put(r, CA_THROTTLED_S, (double)u / (v2 ? 1e6 : 1e9));
	}
	if (!c->cg_memory)
		return;
	v2 = cg_is_v2(c->cg_memory);
	if (cg_memory_working_set(c->cg_memory, &u) == 0)
		put(r, CA_WSS, (double)u);
	if (cg_read_u64(c->cg_memory, v2 ? "memory.current" : "memory.usage_in_bytes",
	    &u) == 0)
		put(r, CA_USAGE, (double)u);
	if (cg_read_key(c->cg_memory, "memory.stat", v2 ? "anon" : "total_rss", &u) == 0)
		put(r, CA_RSS, (double)u);
	if (cg_oom_kills(c->cg_memory, &u) == 0)
		put(r, CA_OOM, (double)u);
	/* "max" (v2) does not parse; v1's "unlimited" is a page-rounded
	 * INT64_MAX: cAdvisor reports both as 0 */
	if (cg_read_u64(c->cg_memory, v2 ? "memory.max" : "memory.limit_in_bytes", &u) == 0)
		put(r, CA_LIMIT, u >= (1ull << 62) ? 0 : (double)u);
	else
		put(r, CA_LIMIT, 0);
}

void
host_write_containers(struct om_writer *w, const struct host_ctr *c, size_t n)
{
	struct cadv_read *r = xcalloc(n ? n : 1, sizeof *r);

	for (size_t i = 0; i < n; i++)
		read_container(&c[i], &r[i]);
	for (int k = 0; k < CA_N; k++) {
		om_family(w, cadv_fam[k].name, cadv_fam[k].type, cadv_fam[k].help);
		for (size_t i = 0; i < n; i++)
			if (r[i].have[k])
				om_sample(w, cadv_fam[k].name, (const char *const[]){ "namespace",
				    c[i].ns, "pod", c[i].pod, "container", c[i].container,
				    "image", c[i].image, NULL }, r[i].v[k]);
	}
	free(r);
	host_write_ctr_io(w, c, n, "/proc");
}
