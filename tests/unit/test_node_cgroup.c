/* test_node_cgroup.c — the cgroup knobs of node_cgroup.c on a fake cgroupfs
 * (a directory tree of plain files laid out as the kernel lays out v2 and v1
 * groups): which file each limit and counter uses per version, what is
 * written, and how the v2 V6 subtree enables its controllers. The real
 * kernel's side (EBUSY, OOM kills) is covered by tests/e2e/test_limits.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "node_cgroup.h"
#include "util.h"

static char root[64];

static void
put(const char *dir, const char *file, const char *text)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *
get(const char *dir, const char *file)
{
	static char buf[256];
	char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The interface files of a group exist, as the kernel creates them; a
 * write to a missing one fails (ENOENT) as it would on cgroupfs. */
static void
knobs(const char *dir, const char *const *names)
{
	for (; *names; names++)
		put(dir, *names, "");
}

static const char *const v2_knobs[] = { "cgroup.subtree_control", "cgroup.procs",
	"memory.max", "memory.swap.max", "cpu.max", "pids.max", NULL };
static const char *const v1_knobs[] = { "cgroup.procs", "memory.limit_in_bytes",
	"cpu.cfs_period_us", "cpu.cfs_quota_us", "pids.max", NULL };

static char *
v2_group(const char *rel, const char *controllers)
{
	char *dir = xasprintf("%s/%s", root, rel);
	assert_int_equal(cg_mkdirs(dir), 0);
	put(dir, "cgroup.controllers", controllers);
	knobs(dir, v2_knobs);
	return dir;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(root, sizeof root, "/tmp/v6-cgtest-XXXXXX");
	assert_non_null(mkdtemp(root));
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	return util_remove_tree(root);
}

static void
test_v2_base_enables_controllers_down_to_v6(void **state)
{
	(void)state;
	char *own = v2_group("own", "cpuset cpu io memory pids\n");
	char *v6 = v2_group("own/v6", "cpu memory pids\n");
	char *base = NULL;
	assert_int_equal(cg__v2_base(own, CG_MEMORY, &base), 0);
	assert_string_equal(base, v6);
	assert_string_equal(get(own, "cgroup.subtree_control"), "+memory +cpu +pids");
	assert_string_equal(get(v6, "cgroup.subtree_control"), "+memory +cpu +pids");
	free(base);
	/* cpuacct is v2's cpu controller */
	assert_int_equal(cg__v2_base(own, CG_CPUACCT, &base), 0);
	free(base);
	free(v6);
	free(own);
}

static void
test_v2_base_without_the_controller(void **state)
{
	(void)state;
	char *own = v2_group("bare", "cpu io\n");
	char *base = (char *)"unchanged";
	assert_int_equal(cg__v2_base(own, CG_MEMORY, &base), -ENOENT);
	assert_null(base);
	assert_int_equal(cg__v2_base(own, CG_PIDS, &base), -ENOENT);
	free(own);
}

static void
test_v2_container_limits_and_counters(void **state)
{
	(void)state;
	char *pod = v2_group("own/v6/pod1", "cpu memory pids\n");
	char *ctr = v2_group("own/v6/pod1/web", "");
	assert_true(cg_is_v2(ctr));
	assert_int_equal(cg_group_create(ctr), 0);
	assert_string_equal(get(pod, "cgroup.subtree_control"), "+memory +cpu +pids");

	assert_int_equal(cg_set_memory_max(ctr, 64 << 20), 0);
	assert_string_equal(get(ctr, "memory.max"), "67108864");
	assert_string_equal(get(ctr, "memory.swap.max"), "0");
	assert_int_equal(cg_set_memory_max(ctr, 0), 0);
	assert_string_equal(get(ctr, "memory.max"), "max");

	assert_int_equal(cg_set_cpu_max(ctr, 250), 0);
	assert_string_equal(get(ctr, "cpu.max"), "25000 100000");
	assert_int_equal(cg_set_cpu_max(ctr, 5), 0);		/* the kernel's 1 ms floor */
	assert_string_equal(get(ctr, "cpu.max"), "1000 100000");
	assert_int_equal(cg_set_cpu_max(ctr, 0), 0);
	assert_string_equal(get(ctr, "cpu.max"), "max 100000");

	assert_int_equal(cg_set_pids_max(ctr, 64), 0);
	assert_string_equal(get(ctr, "pids.max"), "64");
	assert_int_equal(cg_set_pids_max(ctr, 0), 0);
	assert_string_equal(get(ctr, "pids.max"), "max");

	uint64_t v = 99;
	put(ctr, "memory.events", "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n");
	assert_int_equal(cg_oom_kills(ctr, &v), 0);
	assert_int_equal(v, 2);
	put(ctr, "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
	assert_int_equal(cg_cpu_usage_ns(ctr, &v), 0);
	assert_int_equal(v, 1500000);
	put(ctr, "memory.current", "10000000\n");
	put(ctr, "memory.stat", "anon 5000000\nfile 5000000\ninactive_file 4000000\n");
	assert_int_equal(cg_memory_working_set(ctr, &v), 0);
	assert_int_equal(v, 6000000);
	free(ctr);
	free(pod);
}

static void
test_v1_container_limits_and_counters(void **state)
{
	(void)state;
	char *ctr = xasprintf("%s/memory/v6/pod1/web", root);
	assert_int_equal(cg_group_create(ctr), 0);
	knobs(ctr, v1_knobs);
	assert_false(cg_is_v2(ctr));
	assert_int_equal(cg_set_memory_max(ctr, 1 << 20), 0);
	assert_string_equal(get(ctr, "memory.limit_in_bytes"), "1048576");
	assert_int_equal(cg_set_memory_max(ctr, 0), 0);
	assert_string_equal(get(ctr, "memory.limit_in_bytes"), "-1");
	assert_int_equal(cg_set_cpu_max(ctr, 500), 0);
	assert_string_equal(get(ctr, "cpu.cfs_period_us"), "100000");
	assert_string_equal(get(ctr, "cpu.cfs_quota_us"), "50000");
	assert_int_equal(cg_set_cpu_max(ctr, 0), 0);
	assert_string_equal(get(ctr, "cpu.cfs_quota_us"), "-1");

	uint64_t v = 0;
	put(ctr, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
	assert_int_equal(cg_oom_kills(ctr, &v), 0);
	assert_int_equal(v, 3);
	put(ctr, "cpuacct.usage", "123456789\n");
	assert_int_equal(cg_cpu_usage_ns(ctr, &v), 0);
	assert_int_equal(v, 123456789);
	put(ctr, "memory.usage_in_bytes", "3000\n");
	put(ctr, "memory.stat", "cache 1\ntotal_inactive_file 1000\n");
	assert_int_equal(cg_memory_working_set(ctr, &v), 0);
	assert_int_equal(v, 2000);
	free(ctr);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v2_base_enables_controllers_down_to_v6),
		cmocka_unit_test(test_v2_base_without_the_controller),
		cmocka_unit_test(test_v2_container_limits_and_counters),
		cmocka_unit_test(test_v1_container_limits_and_counters),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
