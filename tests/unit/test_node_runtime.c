/* test_node_runtime.c — unit tests of the process runtime (node_runtime.c),
 * its shim (node_shim.c, run as BUILD/v6-shim), cgroups (node_cgroup.c) and
 * log reading (node_log.c): exit codes, signals, start errors, env and
 * working dir, CRI logs with rotation and partial lines, adoption after the
 * runtime (or its whole process) died, cgroup limits, shim memory and the
 * exit-to-callback latency. Every process started is killed by PID. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "node_cgroup.h"
#include "node_log.h"
#include "node_runtime.h"
#include "util.h"

/* ---- fixture ------------------------------------------------------------ */

/* Pod uids carry the run's pid: cgroups live in a machine-wide tree, and
 * two runs of this test at once must not touch each other's groups. */
static int run_id;

static const char *
UID(const char *name)
{
	static char table[32][64];
	int i;
	char want[64];
	snprintf(want, sizeof want, "%s-%d", name, run_id);
	for (i = 0; i < 32 && table[i][0] && strcmp(table[i], want) != 0; i++)
		;
	assert_true(i < 32);
	memcpy(table[i], want, sizeof want);
	return table[i];
}

struct fx {
	char dir[64];
	char *self_exe;
	uv_loop_t loop;
	struct rt *rt;
};

/* One container's exit as the callback saw it. */
struct done {
	bool called;
	int calls;
	struct rt_status st;
	int64_t at_ms;
};

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static char *
exe_dir_v6(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	assert_true(n > 0);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';		/* BUILD/unit */
	*strrchr(self, '/') = '\0';		/* BUILD */
	return xasprintf("%s/v6", self);	/* rt finds BUILD/v6-shim */
}

static int
setup(void **state)
{
	struct fx *fx = xcalloc(1, sizeof *fx);
	snprintf(fx->dir, sizeof fx->dir, "/tmp/v6-rt-test.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	fx->self_exe = exe_dir_v6();
	uv_loop_init(&fx->loop);
	if (rt_open(&fx->loop, fx->dir, fx->self_exe, &fx->rt) < 0)
		return -1;
	*state = fx;
	return 0;
}

static void
close_rt(struct fx *fx)
{
	if (fx->rt)
		rt_close(fx->rt);
	fx->rt = NULL;
	uv_run(&fx->loop, UV_RUN_NOWAIT);
}

/* Removes every pod's cgroups (and files) through the runtime. */
static void
remove_all_pods(struct fx *fx)
{
	struct rt *rt;
	char *root = xasprintf("%s/containers", fx->dir);
	DIR *d = opendir(root);
	struct dirent *de;
	assert_int_equal(rt_open(&fx->loop, fx->dir, fx->self_exe, &rt), 0);
	while (d && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			rt_remove_pod(rt, de->d_name);
	if (d)
		closedir(d);
	rt_close(rt);
	free(root);
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	close_rt(fx);
	remove_all_pods(fx);
	while (waitpid(-1, NULL, WNOHANG) > 0)	/* shims orphaned to us (subreaper) */
		;
	assert_int_equal(uv_loop_close(&fx->loop), 0);	/* no handle leaked */
	nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx->self_exe);
	free(fx);
	return 0;
}

static void
on_exit_cb(void *arg, struct rt_ctr *c, const struct rt_status *st)
{
	struct done *d = arg;
	(void)c;
	d->called = true;
	d->calls++;
	d->st = *st;
	d->at_ms = time_now_ms();
}

static void
on_deadline(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Runs the loop until *flag or ms have passed. */
static void
run_until(struct fx *fx, const bool *flag, int ms)
{
	uv_timer_t t;
	bool expired = false;
	uv_timer_init(&fx->loop, &t);
	t.data = &expired;
	uv_timer_start(&t, on_deadline, (uint64_t)ms, 0);
	while (!*flag && !expired)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static struct rt_spec
spec_of(const char *uid, const char *name, char *const *argv, char *const *envp)
{
	struct rt_spec s = {
		.pod_uid = uid, .pod_namespace = "default", .pod_name = "web",
		.name = name, .attempt = 0, .argv = argv, .envp = envp,
	};
	return s;
}

static char *env_default[] = { "PATH=/usr/local/bin:/usr/bin:/bin", NULL };

static struct rt_ctr *
start(struct fx *fx, const struct rt_spec *s, struct done *d)
{
	struct rt_ctr *c = NULL;
	char *err = NULL;
	int rc = rt_start(fx->rt, s, on_exit_cb, d, &c, &err);
	if (rc < 0)
		fail_msg("rt_start: %d %s", rc, err ? err : "");
	free(err);
	return c;
}

static char *
read_file(const char *path)
{
	char *s = NULL;
	size_t n;
	if (file_read_all(path, &s, &n) < 0)
		return NULL;
	return s;
}

static char *
log_of(struct fx *fx, const char *uid, const char *name, int attempt)
{
	char *path = rt_log_path(fx->rt, "default", "web", uid, name, attempt);
	char *s = read_file(path);
	free(path);
	return s;
}

static void
buf_out(void *arg, const char *data, size_t len)
{
	if (data)
		buf_append(arg, data, len);
}

/* The log as `v6 logs` would show it. */
static char *
logs(struct fx *fx, const char *uid, const char *name, int attempt, const struct log_opts *o)
{
	struct log_opts all = { .tail_lines = -1 };
	struct buf b = BUF_INIT;
	char *path = rt_log_path(fx->rt, "default", "web", uid, name, attempt);
	assert_int_equal(log_read(path, o ? o : &all, buf_out, &b), 0);
	free(path);
	return buf_steal(&b);
}

static int
file_pid(struct fx *fx, const char *uid, const char *ctr, const char *file)
{
	char *path = xasprintf("%s/containers/%s/%s/%s", fx->dir, uid, ctr, file);
	char *s = read_file(path);
	int pid = s ? atoi(s) : 0;
	free(s);
	free(path);
	return pid;
}

/* Waits (the loop running, up to 20 s: a loaded machine is slow, not
 * wrong) until the shim of ctr (NAME-ATTEMPT) has forked the container:
 * its ctr.pid is there; and, when c is given, its start is handed back.
 * Then 100 ms more, for the child to join its cgroups and exec. */
static void
wait_forked(struct fx *fx, const char *uid, const char *ctr, struct rt_ctr *c)
{
	for (int i = 0; i < 2000; i++) {
		if (fx->rt)
			uv_run(&fx->loop, UV_RUN_NOWAIT);
		if (file_pid(fx, uid, ctr, "ctr.pid") > 0 && (c == NULL || !rt_starting(c))) {
			sleep_ms(100);
			return;
		}
		sleep_ms(10);
	}
	fail_msg("%s/%s: not forked within 20 s", uid, ctr);
}

/* Gone, or a zombie nobody reaped yet. */
static bool
proc_gone(int pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	char *s = read_file(path);
	bool gone = s == NULL || strstr(s, ") Z ") != NULL;
	free(s);
	return gone;
}

static bool
wait_gone(int pid, int ms)
{
	for (int i = 0; i < ms / 10 && !proc_gone(pid); i++)
		sleep_ms(10);
	return proc_gone(pid);
}

/* Stops a container and waits for its exit to be reported. */
static void
kill_and_wait(struct fx *fx, struct rt_ctr *c, struct done *d)
{
	if (!d->called)
		rt_signal(c, SIGKILL);
	run_until(fx, &d->called, 5000);
	assert_true(d->called);
}

/* Reaps a shim this process spawned but no runtime watches any more. */
static void
reap_shim(int pid)
{
	for (int i = 0; i < 500; i++) {
		if (waitpid(pid, NULL, WNOHANG) != 0)
			return;
		sleep_ms(10);
	}
	fail_msg("shim %d did not exit", pid);
}

/* ---- tests -------------------------------------------------------------- */

static bool
cri_line(const char *line, const char *stream, const char *tag, const char *text)
{
	/* 2026-11-28T19:00:00.123456789Z stdout F text */
	char expect[256];
	snprintf(expect, sizeof expect, " %s %s %s", stream, tag, text);
	return strlen(line) > 31 && line[4] == '-' && line[10] == 'T' && line[19] == '.' &&
	    line[29] == 'Z' && strncmp(line + 30, expect, strlen(expect)) == 0;
}

static void
test_exit_code_and_cri_log(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	struct rt_spec s = spec_of(UID("uid-a"), "app", argv, env_default);
	struct done d = { 0 };
	struct rt_ctr *c = start(fx, &s, &d);
	run_until(fx, &d.called, 5000);
	assert_true(d.called);
	assert_int_equal(d.st.state, RT_EXITED);
	assert_int_equal(d.st.exit_code, 3);
	assert_int_equal(d.st.signal, 0);
	assert_string_equal(d.st.reason, "Error");
	assert_true(d.st.finished_at_ms >= d.st.started_at_ms);
	struct rt_status st;
	rt_status(c, &st);
	assert_int_equal(st.state, RT_EXITED);
	assert_true(st.pid > 0);

	char *log = log_of(fx, UID("uid-a"), "app", 0);
	assert_non_null(log);
	char *nl = strchr(log, '\n');
	assert_non_null(nl);
	*nl = '\0';
	char *second = nl + 1;
	/* The two streams are separate pipes: either may be copied first. */
	bool ok = (cri_line(log, "stdout", "F", "out") && cri_line(second, "stderr", "F", "err")) ||
	    (cri_line(log, "stderr", "F", "err") && cri_line(second, "stdout", "F", "out"));
	if (!ok)
		fail_msg("log lines: [%s] [%s]", log, second);
	free(log);
	rt_release(c);
}

static void
test_completed(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "true", NULL };
	struct rt_spec s = spec_of(UID("uid-b"), "app", argv, env_default);
	struct done d = { 0 };
	struct rt_ctr *c = start(fx, &s, &d);
	run_until(fx, &d.called, 5000);
	assert_int_equal(d.st.exit_code, 0);
	assert_string_equal(d.st.reason, "Completed");
	rt_release(c);

	/* An attempt is never run twice, and a refused start leaves it alone. */
	char *err = NULL;
	assert_int_equal(rt_start(fx->rt, &s, on_exit_cb, &d, &c, &err), -EEXIST);
	assert_non_null(strstr(err, "already exists"));
	free(err);
	char *path = xasprintf("%s/containers/%s/app-0/exit.json", fx->dir, UID("uid-b"));
	char *ex = read_file(path);
	assert_non_null(ex);
	assert_non_null(strstr(ex, "\"Completed\""));
	free(ex);
	free(path);
}

/* Lines written by a background process after the main one exited are
 * kept; one that holds the pipes for good is killed after 2 s. */
static void
test_stragglers(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "sh", "-c", "(sleep 0.3; echo late) & echo early", NULL };
	struct rt_spec s = spec_of(UID("uid-t"), "app", argv, env_default);
	struct done d = { 0 };
	struct rt_ctr *c = start(fx, &s, &d);
	run_until(fx, &d.called, 5000);
	assert_int_equal(d.st.exit_code, 0);
	char *text = logs(fx, UID("uid-t"), "app", 0, NULL);
	assert_string_equal(text, "early\nlate\n");
	free(text);
	rt_release(c);

	char *argv2[] = { "sh", "-c", "sleep 100 & echo $! > kid; echo main done", NULL };
	s = spec_of(UID("uid-t"), "holder", argv2, env_default);
	s.working_dir = fx->dir;
	memset(&d, 0, sizeof d);
	int64_t t0 = time_mono_ms();
	c = start(fx, &s, &d);
	run_until(fx, &d.called, 5000);
	assert_true(d.called);
	int64_t took = time_mono_ms() - t0;
	assert_in_range(took, 1900, 3999);
	assert_int_equal(d.st.exit_code, 0);
	char *kid_path = xasprintf("%s/kid", fx->dir), *kid = read_file(kid_path);
	assert_non_null(kid);
	assert_true(wait_gone(atoi(kid), 1000));
	text = logs(fx, UID("uid-t"), "holder", 0, NULL);
	assert_string_equal(text, "main done\n");
	free(text);
	free(kid);
	free(kid_path);
	rt_release(c);
}

static void
test_sigterm_kills_the_group(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "sh", "-c", "sleep 100 & echo $! > kid; wait", NULL };
	struct rt_spec s = spec_of(UID("uid-c"), "app", argv, env_default);
	char *cwd = xasprintf("%s/wd", fx->dir);
	mkdir(cwd, 0755);
	s.working_dir = cwd;
	struct done d = { 0 };
	struct rt_ctr *c = start(fx, &s, &d);
	char *kid_path = xasprintf("%s/kid", cwd);
	char *kid = NULL;
	for (int i = 0; i < 300 && kid == NULL; i++) {
		kid = read_file(kid_path);
		if (kid == NULL || !strchr(kid, '\n')) {
			free(kid);
			kid = NULL;
			sleep_ms(10);
		}
	}
	assert_non_null(kid);
	int kid_pid = atoi(kid);
	assert_false(proc_gone(kid_pid));
	assert_int_equal(rt_signal(c, SIGTERM), 0);
	run_until(fx, &d.called, 5000);
	assert_true(d.called);
	assert_int_equal(d.st.signal, SIGTERM);
	assert_int_equal(d.st.exit_code, 143);
	assert_string_equal(d.st.reason, "Error");
	assert_true(wait_gone(kid_pid, 2000));		/* the whole group got it */
	assert_int_equal(rt_signal(c, SIGTERM), -ESRCH);
	rt_release(c);
	free(kid);
	free(kid_path);
	free(cwd);
}

static void
test_executable_not_found(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "no-such-command-v6", "x", NULL };
	struct rt_spec s = spec_of(UID("uid-d"), "app", argv, env_default);
	struct rt_ctr *c = NULL;
	char *err = NULL;
	assert_int_equal(rt_start(fx->rt, &s, on_exit_cb, NULL, &c, &err), -ENOENT);
	assert_non_null(err);
	assert_string_equal(err, "exec: \"no-such-command-v6\": executable file not found in $PATH");
	free(err);

	/* Not executable, by path. */
	char *file = xasprintf("%s/plain.txt", fx->dir);
	int fd = open(file, O_CREAT | O_WRONLY, 0644);
	close(fd);
	char *argv2[] = { file, NULL };
	s.argv = argv2;
	err = NULL;
	assert_int_equal(rt_start(fx->rt, &s, on_exit_cb, NULL, &c, &err), -EACCES);
	assert_non_null(strstr(err, "permission denied"));
	free(err);

	/* A missing working directory. */
	char *argv3[] = { "true", NULL };
	s.argv = argv3;
	s.working_dir = "/nonexistent/v6";
	err = NULL;
	assert_int_equal(rt_start(fx->rt, &s, on_exit_cb, NULL, &c, &err), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/v6"));
	free(err);
	free(file);
}

/* A failure only exec can see (a script's missing interpreter) comes back
 * through exit.json as StartError. */
static void
test_start_error_from_the_shim(void **state)
{
	struct fx *fx = *state;
	char *file = xasprintf("%s/bad.sh", fx->dir);
	FILE *f = fopen(file, "w");
	fputs("#!/nonexistent/interpreter\n", f);
	fclose(f);
	chmod(file, 0755);
	char *argv[] = { file, NULL };
	struct rt_spec s = spec_of(UID("uid-e"), "app", argv, env_default);
	struct done d = { 0 };
	struct rt_ctr *c = start(fx, &s, &d);
	run_until(fx, &d.called, 5000);
	assert_true(d.called);
	assert_string_equal(d.st.reason, "StartError");
	assert_int_equal(d.st.exit_code, 127);
	assert_non_null(strstr(d.st.message, "no such file or directory"));
	rt_release(c);
	free(file);
}

static void
test_env_path_and_working_dir(void **state)
{
	struct fx *fx = *state;
	char *bin = xasprintf("%s/bin", fx->dir), *tool = xasprintf("%s/bin/v6-hello", fx->dir);
	mkdir(bin, 0755);
	FILE *f = fopen(tool, "w");
	fputs("#!/bin/sh\necho \"hello $GREETING from $(pwd)\"\n", f);
	fclose(f);
	chmod(tool, 0755);
	char *path_env = xasprintf("PATH=%s:/usr/bin:/bin", bin);
	char *envp[] = { path_env, "GREETING=bonjour", NULL };
	char *argv[] = { "v6-hello", NULL };
	struct rt_spec s = spec_of(UID("uid-f"), "app", argv, envp);
	s.working_dir = bin;
	struct done d = { 0 };
	struct rt_ctr *c = start(fx, &s, &d);
	run_until(fx, &d.called, 5000);
	assert_int_equal(d.st.exit_code, 0);
	char *text = logs(fx, UID("uid-f"), "app", 0, NULL);
	char *expect = xasprintf("hello bonjour from %s\n", bin);
	assert_string_equal(text, expect);
	rt_release(c);
	free(text);
	free(expect);

	/* No working dir: the pod's own empty directory; no PATH: the default. */
	char *argv2[] = { "sh", "-c", "pwd; echo $PATH", NULL };
	char *envp2[] = { "A=1", NULL };
	struct rt_spec s2 = spec_of(UID("uid-f"), "second", argv2, envp2);
	struct done d2 = { 0 };
	c = start(fx, &s2, &d2);
	run_until(fx, &d2.called, 5000);
	text = logs(fx, UID("uid-f"), "second", 0, NULL);
	char *expect2 = xasprintf("%s/pods/%s\n"
	    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", fx->dir, UID("uid-f"));
	assert_string_equal(text, expect2);
	rt_release(c);
	free(text);
	free(expect2);
	free(path_env);
	free(bin);
	free(tool);
}

static int
count_files(struct fx *fx, const char *uid, int max_bytes)
{
	int n = 0;
	for (int i = 0; i < 64; i++) {
		char *base = rt_log_path(fx->rt, "default", "web", uid, "app", 0);
		char *p = i ? xasprintf("%s.%d", base, i) : xstrdup(base);
		struct stat st;
		if (stat(p, &st) == 0) {
			n++;
			assert_true(st.st_size <= max_bytes);
		}
		free(p);
		free(base);
	}
	return n;
}

/* Checks that text is the lines first..last of `seq`, in order. */
static void
assert_seq(const char *text, int first, int last)
{
	int expect = first;
	for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
		assert_int_equal(atoi(p), expect);
		expect++;
		assert_non_null(strchr(p, '\n'));
	}
	assert_int_equal(expect, last + 1);
}

static void
test_rotation_loses_no_line(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "seq", "1", "10000", NULL };
	struct rt_spec s = spec_of(UID("uid-g"), "app", argv, env_default);
	s.log_max_bytes = 64 * 1024;
	s.log_max_files = 10;
	struct done d = { 0 };
	struct rt_ctr *c = start(fx, &s, &d);
	run_until(fx, &d.called, 5000);
	assert_int_equal(d.st.exit_code, 0);
	rt_release(c);
	int files = count_files(fx, UID("uid-g"), 64 * 1024);
	assert_true(files >= 7 && files <= 11);
	char *text = logs(fx, UID("uid-g"), "app", 0, NULL);
	assert_seq(text, 1, 10000);
	free(text);

	/* Few files kept: what is left is an unbroken tail of the output. */
	s.pod_uid = UID("uid-h");
	s.log_max_bytes = 16 * 1024;
	s.log_max_files = 2;
	memset(&d, 0, sizeof d);
	c = start(fx, &s, &d);
	run_until(fx, &d.called, 5000);
	rt_release(c);
	assert_int_equal(count_files(fx, UID("uid-h"), 16 * 1024), 3);
	text = logs(fx, UID("uid-h"), "app", 0, NULL);
	int first = atoi(text);
	assert_true(first > 8000);
	assert_seq(text, first, 10000);
	free(text);
}

static void
test_long_line_partial_records(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "sh", "-c", "head -c 40000 /dev/zero | tr '\\0' a; echo; printf tail",
		NULL };
	struct rt_spec s = spec_of(UID("uid-i"), "app", argv, env_default);
	struct done d = { 0 };
	struct rt_ctr *c = start(fx, &s, &d);
	run_until(fx, &d.called, 5000);
	assert_int_equal(d.st.exit_code, 0);
	rt_release(c);

	char *raw = log_of(fx, UID("uid-i"), "app", 0);
	const char *tags = "PPFP";
	size_t lens[] = { 16384, 16384, 40000 - 2 * 16384, 4 };
	int n = 0;
	for (char *p = raw; *p; p = strchr(p, '\n') + 1, n++) {
		assert_true(n < 4);
		char tag[8];
		char fmt[8] = "stdout ";
		assert_non_null(strstr(p, fmt));
		snprintf(tag, sizeof tag, " %c ", tags[n]);
		assert_memory_equal(p + 37, tag, 3);
		assert_int_equal((size_t)(strchr(p, '\n') - (p + 40)), lens[n]);
	}
	assert_int_equal(n, 4);
	free(raw);

	char *text = logs(fx, UID("uid-i"), "app", 0, NULL);
	assert_int_equal(strlen(text), 40000 + 1 + 4);
	assert_int_equal(strspn(text, "a"), 40000);
	assert_string_equal(text + 40000, "\ntail");
	free(text);
	struct log_opts last = { .tail_lines = 1 };
	text = logs(fx, UID("uid-i"), "app", 0, &last);
	assert_string_equal(text, "tail");
	free(text);
	last.tail_lines = 2;
	text = logs(fx, UID("uid-i"), "app", 0, &last);
	assert_int_equal(strlen(text), 40005);
	free(text);
}

struct found {
	int n;
	struct {
		char uid[64], name[64];
		int attempt;
		struct rt_status st;
	} e[16];
};

static void
on_found(void *arg, const char *uid, const char *name, int attempt, const struct rt_status *st)
{
	struct found *f = arg;
	assert_true(f->n < 16);
	snprintf(f->e[f->n].uid, sizeof f->e[f->n].uid, "%s", uid);
	snprintf(f->e[f->n].name, sizeof f->e[f->n].name, "%s", name);
	f->e[f->n].attempt = attempt;
	f->e[f->n].st = *st;
	f->n++;
}

static int
find(const struct found *f, const char *uid, const char *name)
{
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->e[i].uid, uid) == 0 && strcmp(f->e[i].name, name) == 0)
			return i;
	fail_msg("%s/%s not found by rt_scan", uid, name);
	return -1;
}

static void
reopen(struct fx *fx)
{
	close_rt(fx);
	assert_int_equal(rt_open(&fx->loop, fx->dir, fx->self_exe, &fx->rt), 0);
}

static void
test_adopt_after_runtime_restart(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "sh", "-c", "echo before; sleep 100", NULL };
	struct rt_spec s = spec_of(UID("uid-j"), "app", argv, env_default);
	s.attempt = 2;
	struct done d = { 0 };
	wait_forked(fx, UID("uid-j"), "app-2", start(fx, &s, &d));
	int shim = file_pid(fx, UID("uid-j"), "app-2", "shim.pid");
	int ctr = file_pid(fx, UID("uid-j"), "app-2", "ctr.pid");
	assert_true(shim > 0 && ctr > 0);

	reopen(fx);			/* the server "died" */
	assert_false(proc_gone(ctr));
	struct found f = { 0 };
	assert_int_equal(rt_scan(fx->rt, on_found, &f), 0);
	int i = find(&f, UID("uid-j"), "app");
	assert_int_equal(f.e[i].attempt, 2);
	assert_int_equal(f.e[i].st.state, RT_RUNNING);
	assert_int_equal(f.e[i].st.pid, ctr);

	struct rt_ctr *c = NULL;
	assert_int_equal(rt_adopt(fx->rt, UID("uid-j"), "app", 2, on_exit_cb, &d, &c), 0);
	assert_int_equal(rt_adopt(fx->rt, UID("uid-j"), "app", 2, on_exit_cb, &d, &c), -EBUSY);
	struct rt_status st;
	rt_status(c, &st);
	assert_int_equal(st.state, RT_RUNNING);
	assert_int_equal(st.pid, ctr);
	struct rt_usage u;
	assert_int_equal(rt_usage(c, &u), 0);
	assert_true(u.memory_bytes > 0);
	assert_int_equal(rt_signal(c, SIGTERM), 0);
	run_until(fx, &d.called, 5000);
	assert_true(d.called);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.st.exit_code, 143);
	rt_release(c);
	reap_shim(shim);
	char *text = logs(fx, UID("uid-j"), "app", 2, NULL);
	assert_string_equal(text, "before\n");
	free(text);
}

static void
test_exit_while_nobody_watches(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "sh", "-c", "sleep 0.2; echo bye; exit 7", NULL };
	struct rt_spec s = spec_of(UID("uid-k"), "app", argv, env_default);
	struct done d = { 0 };
	wait_forked(fx, UID("uid-k"), "app-0", start(fx, &s, &d));
	int shim = file_pid(fx, UID("uid-k"), "app-0", "shim.pid");
	close_rt(fx);
	fx->rt = NULL;
	reap_shim(shim);		/* the container exited meanwhile */
	assert_int_equal(rt_open(&fx->loop, fx->dir, fx->self_exe, &fx->rt), 0);
	struct found f = { 0 };
	assert_int_equal(rt_scan(fx->rt, on_found, &f), 0);
	int i = find(&f, UID("uid-k"), "app");
	assert_int_equal(f.e[i].st.state, RT_EXITED);
	if (f.e[i].st.exit_code != 7)
		print_message("%s: %s: %s\n", UID("uid-k"), f.e[i].st.reason, f.e[i].st.message);
	assert_int_equal(f.e[i].st.exit_code, 7);
	struct rt_ctr *c = NULL;
	assert_int_equal(rt_adopt(fx->rt, UID("uid-k"), "app", 0, on_exit_cb, &d, &c), 0);
	assert_false(d.called);		/* reported from the loop, not inside rt_adopt */
	run_until(fx, &d.called, 1000);
	assert_true(d.called);
	assert_int_equal(d.st.exit_code, 7);
	rt_release(c);
	char *text = logs(fx, UID("uid-k"), "app", 0, NULL);
	assert_string_equal(text, "bye\n");
	free(text);
}

/* The process that started the container is SIGKILLed (as `kill -9` of the
 * server): the container keeps running, and the next runtime adopts it. */
/* In the forked "server": tells the test the shim runs, then waits to be
 * killed. */
static void
child_started(void *arg, struct rt_ctr *c)
{
	(void)c;
	if (write(*(int *)arg, "x", 1) != 1)
		_exit(1);
	pause();
	_exit(0);
}

static void
test_container_outlives_sigkilled_server(void **state)
{
	struct fx *fx = *state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t server = fork();
	assert_true(server >= 0);
	if (server == 0) {
		uv_loop_t loop;
		struct rt *rt;
		struct rt_ctr *c;
		char *err = NULL;
		char *argv[] = { "sh", "-c", "while :; do echo tick; sleep 0.05; done", NULL };
		struct rt_spec s = spec_of(UID("uid-l"), "app", argv, env_default);
		uv_loop_init(&loop);
		if (rt_open(&loop, fx->dir, fx->self_exe, &rt) < 0)
			_exit(1);
		/* The start's spawn runs off the loop: "started" once the shim runs. */
		rt_set_started_fn(rt, child_started);
		if (rt_start(rt, &s, NULL, &p[1], &c, &err) < 0)
			_exit(1);
		uv_run(&loop, UV_RUN_DEFAULT);
		_exit(1);
	}
	char x;
	assert_int_equal(read(p[0], &x, 1), 1);
	close(p[0]);
	close(p[1]);
	wait_forked(fx, UID("uid-l"), "app-0", NULL);
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	int ctr = file_pid(fx, UID("uid-l"), "app-0", "ctr.pid");
	int shim = file_pid(fx, UID("uid-l"), "app-0", "shim.pid");
	sleep_ms(200);
	assert_false(proc_gone(ctr));
	assert_false(proc_gone(shim));

	struct found f = { 0 };
	assert_int_equal(rt_scan(fx->rt, on_found, &f), 0);
	int i = find(&f, UID("uid-l"), "app");
	assert_int_equal(f.e[i].st.state, RT_RUNNING);
	struct done d = { 0 };
	struct rt_ctr *c = NULL;
	assert_int_equal(rt_adopt(fx->rt, UID("uid-l"), "app", 0, on_exit_cb, &d, &c), 0);
	char *text = logs(fx, UID("uid-l"), "app", 0, NULL);
	assert_true(strlen(text) >= 5 * strlen("tick\n"));	/* still logging */
	free(text);
	assert_int_equal(rt_signal(c, SIGKILL), 0);
	run_until(fx, &d.called, 5000);
	assert_true(d.called);
	assert_int_equal(d.st.signal, SIGKILL);
	assert_int_equal(d.st.exit_code, 137);
	rt_release(c);
	reap_shim(shim);		/* reparented to this process, the subreaper */
}

static void
test_killed_shim_reports_unknown(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "sleep", "100", NULL };
	struct rt_spec s = spec_of(UID("uid-m"), "app", argv, env_default);
	struct done d = { 0 };
	struct rt_ctr *c = start(fx, &s, &d);
	wait_forked(fx, UID("uid-m"), "app-0", c);
	int shim = file_pid(fx, UID("uid-m"), "app-0", "shim.pid");
	int ctr = file_pid(fx, UID("uid-m"), "app-0", "ctr.pid");
	assert_true(shim > 0 && ctr > 0);
	kill(shim, SIGKILL);
	run_until(fx, &d.called, 5000);
	assert_true(d.called);
	assert_string_equal(d.st.reason, "Unknown");
	assert_int_equal(d.st.exit_code, 137);
	assert_true(wait_gone(ctr, 2000));	/* no orphan left running */
	rt_release(c);
	/* Every later look agrees. */
	struct found f = { 0 };
	rt_scan(fx->rt, on_found, &f);
	assert_string_equal(f.e[find(&f, UID("uid-m"), "app")].st.reason, "Unknown");
}

static void
test_remove_pod(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "echo", "hi", NULL };
	struct rt_spec s = spec_of(UID("uid-n"), "app", argv, env_default);
	struct done d = { 0 };
	struct rt_ctr *c = start(fx, &s, &d);
	run_until(fx, &d.called, 5000);
	rt_release(c);
	assert_int_equal(rt_remove_pod(fx->rt, UID("uid-n")), 0);
	char *dir = xasprintf("%s/containers/%s", fx->dir, UID("uid-n"));
	char *logdir = xasprintf("%s/pods/default_web_%s", fx->dir, UID("uid-n"));
	struct stat st;
	assert_int_equal(stat(dir, &st), -1);
	assert_int_equal(stat(logdir, &st), -1);
	free(dir);
	free(logdir);
	assert_int_equal(rt_remove_pod(fx->rt, "../x"), -EINVAL);
}

/* Files many pods share (a namespace's name, the CA) are one inode in
 * STATE/shared, hard-linked into each pod's dir; the pod's own files are
 * its own; the copy goes with the last pod. A start that logs nothing makes
 * no shim.log. */
static void
test_shared_files_are_links(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "true", NULL };
	const char *uids[2] = { UID("uid-s1"), UID("uid-s2") };
	struct stat a[2], own[2], st;
	for (int i = 0; i < 2; i++) {
		char *ns = xasprintf("%s/pods/%s/sa/namespace", fx->dir, uids[i]);
		char *tok = xasprintf("%s/pods/%s/sa/token", fx->dir, uids[i]);
		json_t *files = json_pack("{s:s}", tok, i ? "token-2" : "token-1");
		json_t *shared = json_pack("{s:s}", ns, "team-a");
		struct rt_spec s = spec_of(uids[i], "app", argv, env_default);
		s.files = files;
		s.shared_files = shared;
		struct done d = { 0 };
		struct rt_ctr *c = start(fx, &s, &d);
		json_decref(files);
		json_decref(shared);
		run_until(fx, &d.called, 5000);
		assert_true(d.called);
		assert_int_equal(d.st.exit_code, 0);
		char *text = read_file(ns);
		assert_string_equal(text, "team-a");
		free(text);
		assert_int_equal(stat(ns, &a[i]), 0);
		assert_int_equal(stat(tok, &own[i]), 0);
		assert_int_equal(a[i].st_mode & 0777, 0644);
		char *slog = xasprintf("%s/containers/%s/app-0/shim.log", fx->dir, uids[i]);
		assert_int_equal(stat(slog, &st), -1);
		free(slog);
		rt_release(c);
		free(ns);
		free(tok);
	}
	assert_true(a[0].st_ino == a[1].st_ino);
	assert_int_equal((int)a[1].st_nlink, 3);	/* STATE/shared + two pods */
	assert_true(own[0].st_ino != own[1].st_ino);
	char *shared_dir = xasprintf("%s/shared", fx->dir);
	char *pod_dir = xasprintf("%s/pods/%s", fx->dir, uids[0]);
	util_remove_tree(pod_dir);		/* as the agent does, first */
	free(pod_dir);
	assert_int_equal(rt_remove_pod(fx->rt, uids[0]), 0);
	DIR *d = opendir(shared_dir);
	int left = 0;
	for (struct dirent *de; d && (de = readdir(d)) != NULL; )
		left += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(left, 1);		/* the other pod still links it */
	pod_dir = xasprintf("%s/pods/%s", fx->dir, uids[1]);
	util_remove_tree(pod_dir);
	free(pod_dir);
	assert_int_equal(rt_remove_pod(fx->rt, uids[1]), 0);
	d = opendir(shared_dir);
	left = 0;
	for (struct dirent *de; d && (de = readdir(d)) != NULL; )
		left += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(left, 0);
	free(shared_dir);
}

/* The field of /proc/PID/stat after comm numbered k (3 = state, 4 = ppid). */
static long
stat_field(int pid, int k)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	char *s = read_file(path), *p = s ? strrchr(s, ')') : NULL;
	long v = -1;
	for (int i = 3; p && i <= k; i++)
		p = strchr(p + 1, ' ');
	if (p)
		v = strtol(p + 1, NULL, 10);
	free(s);
	return v;
}

/* Shims are forked by the runtime's zygote (one exec per container, not
 * two): not our children, their command line `v6-shim DIR` all the same;
 * the zygote ends with the runtime, the shims stay. */
static void
test_shims_forked_by_zygote(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "sleep", "30", NULL };
	struct rt_spec s = spec_of(UID("uid-z"), "app", argv, env_default);
	struct done d = { 0 };
	struct rt_ctr *c = start(fx, &s, &d);
	for (int i = 0; i < 500 && rt_starting(c); i++)
		run_until(fx, &d.called, 10);
	assert_false(rt_starting(c));
	int shim = file_pid(fx, UID("uid-z"), "app-0", "shim.pid");
	for (int i = 0; i < 500 && shim == 0; i++) {
		sleep_ms(10);
		shim = file_pid(fx, UID("uid-z"), "app-0", "shim.pid");
	}
	assert_true(shim > 0);
	int zygote = (int)stat_field(shim, 4);
	assert_true(zygote > 1 && zygote != (int)getpid());
	char *dir = xasprintf("%s/containers/%s/app-0", fx->dir, UID("uid-z"));
	char path[64], cmd[8192];
	snprintf(path, sizeof path, "/proc/%d/cmdline", shim);
	int fd = open(path, O_RDONLY);
	ssize_t n = read(fd, cmd, sizeof cmd - 1);
	close(fd);
	assert_true(n > 0);
	assert_string_equal(cmd + strlen(cmd) + 1, dir);	/* argv[1] */
	snprintf(path, sizeof path, "/proc/%d/cmdline", zygote);
	fd = open(path, O_RDONLY);
	n = read(fd, cmd, sizeof cmd - 1);
	close(fd);
	assert_string_equal(cmd + strlen(cmd) + 1, "--zygote");
	close_rt(fx);			/* the zygote ends; the container does not */
	assert_true(wait_gone(zygote, 5000));
	assert_false(proc_gone(shim));
	int ctr = file_pid(fx, UID("uid-z"), "app-0", "ctr.pid");
	if (ctr > 0)
		kill(-ctr, SIGKILL);
	kill(shim, SIGKILL);		/* it is ours now (subreaper): reap it */
	reap_shim(shim);
	assert_int_equal(rt_open(&fx->loop, fx->dir, fx->self_exe, &fx->rt), 0);
	free(dir);
}

static char *
spec_cgroup(struct fx *fx, const char *uid, const char *ctr, const char *ctrl)
{
	char *path = xasprintf("%s/containers/%s/%s/spec.json", fx->dir, uid, ctr);
	json_t *j = json_load_file(path, 0, NULL);
	const char *d = json_string_value(json_object_get(json_object_get(j, "cgroups"), ctrl));
	char *out = d ? xstrdup(d) : NULL;
	json_decref(j);
	free(path);
	return out;
}

static bool
cgroups_writable(void)
{
	int err = 0;
	char *base = cg_base(CG_MEMORY, &err);
	bool ok = base != NULL;
	if (!ok)
		print_message("cgroup limits test skipped: memory cgroup not writable (%s)\n",
		    strerror(err));
	free(base);
	return ok;
}

static void
test_cgroup_limits(void **state)
{
	struct fx *fx = *state;
	if (!cgroups_writable()) {
		skip();
		return;
	}
	char *argv[] = { "sleep", "100", NULL };
	struct rt_spec s = spec_of(UID("uid-o"), "app", argv, env_default);
	s.memory_limit = 64 << 20;
	s.cpu_limit_millis = 250;
	s.pids_limit = 50;
	struct done d = { 0 };
	struct rt_ctr *c = start(fx, &s, &d);
	wait_forked(fx, UID("uid-o"), "app-0", c);
	char *mem = spec_cgroup(fx, UID("uid-o"), "app-0", "memory");
	char *cpu = spec_cgroup(fx, UID("uid-o"), "app-0", "cpu");
	char *pids = spec_cgroup(fx, UID("uid-o"), "app-0", "pids");
	assert_non_null(mem);
	uint64_t v = 0;
	assert_int_equal(cg_read_u64(mem, "memory.limit_in_bytes", &v), 0);
	assert_int_equal(v, 64 << 20);
	if (cpu) {
		assert_int_equal(cg_read_u64(cpu, "cpu.cfs_quota_us", &v), 0);
		assert_int_equal(v, 25000);
	}
	if (pids) {
		assert_int_equal(cg_read_u64(pids, "pids.max", &v), 0);
		assert_int_equal(v, 50);
	}
	int ctr = file_pid(fx, UID("uid-o"), "app-0", "ctr.pid");
	char *procs_path = xasprintf("%s/cgroup.procs", mem);
	char *procs = read_file(procs_path);
	assert_int_equal(atoi(procs), ctr);
	struct rt_usage u;
	assert_int_equal(rt_usage(c, &u), 0);
	assert_true(u.memory_bytes > 0);
	kill_and_wait(fx, c, &d);
	rt_release(c);
	assert_int_equal(rt_remove_pod(fx->rt, UID("uid-o")), 0);
	struct stat st;
	assert_int_equal(stat(mem, &st), -1);
	char *pod_cg = xstrndup(mem, (size_t)(strrchr(mem, '/') - mem));
	assert_int_equal(stat(pod_cg, &st), -1);
	free(pod_cg);
	free(procs);
	free(procs_path);
	free(mem);
	free(cpu);
	free(pids);
}

static void
test_oom_killed(void **state)
{
	struct fx *fx = *state;
	if (!cgroups_writable() || access("/usr/bin/python3", X_OK) != 0) {
		skip();
		return;
	}
	char *argv[] = { "python3", "-c", "b = bytearray(256 << 20); print('survived')", NULL };
	struct rt_spec s = spec_of(UID("uid-p"), "app", argv, env_default);
	s.memory_limit = 32 << 20;
	struct done d = { 0 };
	struct rt_ctr *c = start(fx, &s, &d);
	run_until(fx, &d.called, 10000);
	assert_true(d.called);
	assert_true(d.st.oom_killed);
	assert_string_equal(d.st.reason, "OOMKilled");
	assert_int_equal(d.st.exit_code, 137);
	rt_release(c);
	assert_int_equal(rt_remove_pod(fx->rt, UID("uid-p")), 0);
}

/* ---- node_log on hand-written files ------------------------------------- */

static void
write_log(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_log_tail_since_limit_previous(void **state)
{
	struct fx *fx = *state;
	char *dir = xasprintf("%s/pods/default_web_%s/app", fx->dir, UID("uid-q"));
	assert_int_equal(cg_mkdirs(dir), 0);
	char *p0 = xasprintf("%s/0.log", dir), *p1 = xasprintf("%s/1.log", dir);
	write_log(p0, "2026-01-01T00:00:00.000000000Z stdout F old attempt\n");
	char *rot = xasprintf("%s.1", p1);
	write_log(rot,
	    "2026-01-01T00:00:01.000000000Z stdout F one\n"
	    "2026-01-01T00:00:02.000000000Z stderr F two\n");
	write_log(p1,
	    "2026-01-01T00:00:03.000000000Z stdout P thr\n"
	    "2026-01-01T00:00:03.100000000Z stdout F ee\n"
	    "2026-01-01T00:00:04.500000000Z stdout F four\n"
	    "2026-01-01T00:00:05.000000000Z stdout F \n"
	    "2026-01-01T00:00:06.000000000Z stdout F incompl");	/* being written */
	char *t;
	struct log_opts o = { .tail_lines = -1 };
	t = logs(fx, UID("uid-q"), "app", 1, &o);
	assert_string_equal(t, "one\ntwo\nthree\nfour\n\n");
	free(t);
	o.tail_lines = 3;
	t = logs(fx, UID("uid-q"), "app", 1, &o);
	assert_string_equal(t, "three\nfour\n\n");
	free(t);
	o.tail_lines = 0;
	t = logs(fx, UID("uid-q"), "app", 1, &o);
	assert_string_equal(t, "");
	free(t);
	o.tail_lines = -1;
	assert_int_equal(log_parse_time("2026-01-01T00:00:02.5Z", 22, &o.since_ms), 0);
	t = logs(fx, UID("uid-q"), "app", 1, &o);
	assert_string_equal(t, "three\nfour\n\n");
	free(t);
	o.since_ms = 0;
	o.timestamps = true;
	o.tail_lines = 2;
	t = logs(fx, UID("uid-q"), "app", 1, &o);
	assert_string_equal(t, "2026-01-01T00:00:04.500000000Z four\n"
	    "2026-01-01T00:00:05.000000000Z \n");
	free(t);
	o = (struct log_opts){ .tail_lines = -1, .limit_bytes = 6 };
	t = logs(fx, UID("uid-q"), "app", 1, &o);
	assert_string_equal(t, "one\ntw");
	free(t);
	/* --previous is attempt - 1. */
	o = (struct log_opts){ .tail_lines = -1 };
	t = logs(fx, UID("uid-q"), "app", 0, &o);
	assert_string_equal(t, "old attempt\n");
	free(t);
	struct buf b = BUF_INIT;
	char *missing = xasprintf("%s/7.log", dir);
	assert_int_equal(log_read(missing, &o, buf_out, &b), -ENOENT);
	free(missing);
	free(rot);
	free(p0);
	free(p1);
	free(dir);
}

static void
append(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");
	fputs(text, f);
	fclose(f);
}

/* A data dir from before the kubelet layout: STATE/logs moves to
 * STATE/pods and stays reachable through a symlink (adopted shims write
 * and rotate by the old path). */
static void
test_old_log_layout_is_moved(void **state)
{
	struct fx *fx = *state;
	close_rt(fx);
	char *pods = xasprintf("%s/pods", fx->dir), *old = xasprintf("%s/logs/default_o_u1/c",
	    fx->dir);
	assert_int_equal(rmdir(pods), 0);
	assert_int_equal(cg_mkdirs(old), 0);
	char *old_log = xasprintf("%s/0.log", old);
	write_log(old_log, "2026-01-01T00:00:01.000000000Z stdout F before\n");
	assert_int_equal(rt_open(&fx->loop, fx->dir, fx->self_exe, &fx->rt), 0);
	char *new_log = xasprintf("%s/default_o_u1/c/0.log", pods);
	char *link = xasprintf("%s/logs", fx->dir);
	struct stat st;
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	FILE *f = fopen(old_log, "a");		/* a shim's write by the old path */
	assert_non_null(f);
	fputs("2026-01-01T00:00:02.000000000Z stdout F after\n", f);
	fclose(f);
	char *text = NULL;
	size_t len;
	assert_int_equal(file_read_all(new_log, &text, &len), 0);
	assert_string_equal(text, "2026-01-01T00:00:01.000000000Z stdout F before\n"
	    "2026-01-01T00:00:02.000000000Z stdout F after\n");
	/* a second open leaves it as it is */
	close_rt(fx);
	assert_int_equal(rt_open(&fx->loop, fx->dir, fx->self_exe, &fx->rt), 0);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	free(text);
	free(link);
	free(new_log);
	free(old_log);
	free(old);
	free(pods);
}

static void
test_log_follow_across_rotation(void **state)
{
	struct fx *fx = *state;
	char *dir = xasprintf("%s/logs/f", fx->dir);
	assert_int_equal(cg_mkdirs(dir), 0);
	char *p = xasprintf("%s/0.log", dir), *p1 = xasprintf("%s.1", p), *p2 = xasprintf("%s.2", p);
	write_log(p, "2026-01-01T00:00:01.000000000Z stdout F a\n"
	    "2026-01-01T00:00:01.000000000Z stdout F b\n");
	struct buf b = BUF_INIT;
	struct log_opts o = { .tail_lines = 1 };
	struct log_follower *lf;
	assert_int_equal(log_follow_start(&fx->loop, p, &o, buf_out, &b, &lf), 0);
	assert_int_equal(b.len, 2);
	assert_memory_equal(b.data, "b\n", 2);
	append(p, "2026-01-01T00:00:02.000000000Z stdout F c\n2026-01-01T00:00:02.0000");
	log_follow_poll(lf);
	append(p, "00000Z stdout F d\n");
	/* Two rotations before the follower looks again. */
	rename(p, p1);
	write_log(p, "2026-01-01T00:00:03.000000000Z stdout F e\n");
	rename(p1, p2);
	rename(p, p1);
	write_log(p, "2026-01-01T00:00:04.000000000Z stdout P f\n"
	    "2026-01-01T00:00:04.000000000Z stdout F g\n");
	bool never = false;
	run_until(fx, &never, 450);	/* the 200 ms timer polls */
	assert_int_equal(b.len, strlen("b\nc\nd\ne\nfg\n"));
	assert_memory_equal(b.data, "b\nc\nd\ne\nfg\n", b.len);
	log_follow_stop(lf);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	buf_free(&b);
	free(p);
	free(p1);
	free(p2);
	free(dir);
}

/* ---- measurements ------------------------------------------------------- */

static long
proc_kb(int pid, const char *file, const char *key)
{
	char path[64], line[256];
	long total = 0, v;
	snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof line, f))
		if (str_has_prefix(line, key) && sscanf(line + strlen(key), " %ld", &v) == 1)
			total += v;
	if (f)
		fclose(f);
	return total;
}

/* A shim alone maps its static text privately; with others running (the
 * normal case) the text is shared and only heap, stack and data are its own. */
static void
test_shim_memory(void **state)
{
	struct fx *fx = *state;
	char *argv[] = { "sh", "-c", "while :; do echo tick; sleep 0.01; done", NULL };
	struct done d[2] = { { 0 }, { 0 } };
	struct rt_ctr *c[2];
	const char *names[] = { "one", "two" };
	for (int i = 0; i < 2; i++) {
		struct rt_spec s = spec_of(UID("uid-r"), names[i], argv, env_default);
		c[i] = start(fx, &s, &d[i]);
	}
	wait_forked(fx, UID("uid-r"), "one-0", c[0]);
	wait_forked(fx, UID("uid-r"), "two-0", c[1]);
	int shim = file_pid(fx, UID("uid-r"), "two-0", "shim.pid");
	char exe[PATH_MAX], link[64];
	snprintf(link, sizeof link, "/proc/%d/exe", shim);
	ssize_t n = readlink(link, exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = '\0';
	long rss = proc_kb(shim, "status", "VmRSS:");
	long uss = proc_kb(shim, "smaps_rollup", "Private_Clean:") +
	    proc_kb(shim, "smaps_rollup", "Private_Dirty:");
	long pss = proc_kb(shim, "smaps_rollup", "Pss:");
	print_message("shim %s (2 running): VmRSS %ld kB, USS %ld kB, PSS %ld kB\n", exe, rss,
	    uss, pss);
	if (str_has_suffix(exe, "/v6-shim"))
		assert_true(rss > 0 && rss < 1024 && uss < 512);
	for (int i = 0; i < 2; i++) {
		kill_and_wait(fx, c[i], &d[i]);
		rt_release(c[i]);
	}
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void
test_exit_to_callback_latency(void **state)
{
	struct fx *fx = *state;
	enum { N = 30 };
	int64_t lat[N];
	char *argv[] = { "true", NULL };
	for (int i = 0; i < N; i++) {
		struct rt_spec s = spec_of(UID("uid-s"), "app", argv, env_default);
		s.attempt = i;
		struct done d = { 0 };
		struct rt_ctr *c = start(fx, &s, &d);
		run_until(fx, &d.called, 5000);
		assert_true(d.called);
		lat[i] = d.at_ms - d.st.finished_at_ms;
		rt_release(c);
	}
	qsort(lat, N, sizeof lat[0], cmp_i64);
	print_message("exit -> callback: p50 %" PRId64 " ms, max %" PRId64 " ms (%d runs)\n",
	    lat[N / 2], lat[N - 1], N);
	assert_true(lat[N / 2] < 20);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_exit_code_and_cri_log),
		T(test_completed),
		T(test_stragglers),
		T(test_sigterm_kills_the_group),
		T(test_executable_not_found),
		T(test_start_error_from_the_shim),
		T(test_env_path_and_working_dir),
		T(test_rotation_loses_no_line),
		T(test_long_line_partial_records),
		T(test_adopt_after_runtime_restart),
		T(test_exit_while_nobody_watches),
		T(test_container_outlives_sigkilled_server),
		T(test_killed_shim_reports_unknown),
		T(test_remove_pod),
		T(test_shared_files_are_links),
		T(test_shims_forked_by_zygote),
		T(test_cgroup_limits),
		T(test_oom_killed),
		T(test_log_tail_since_limit_previous),
		T(test_log_follow_across_rotation),
		T(test_old_log_layout_is_moved),
		T(test_shim_memory),
		T(test_exit_to_callback_latency),
	};
	log_set_level(LOG_ERROR);
	run_id = (int)getpid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);	/* orphaned shims come back to us */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
