/* test_proxy_feed.c — the `v6 proxy` process (proxy_main.c) and the
 * server's feed (proxy_feed.c) together, with a stub engine defined here:
 * this test binary is also the proxy (`test_proxy_feed proxy ...` runs
 * proxy_main), so the feed spawns it as it spawns `v6 proxy`. Covers start,
 * a whole snapshot then deltas, ack / nack, coalescing, same-content
 * versions, a refused delta resynced whole, wait_version, restart after
 * kill -9 with resync, adoption by a new feed, a stable admin address, the
 * saved snapshot and journal served without a server, the raw control
 * protocol (deltas from the wrong base refused) and SIGTERM. Every process started is killed by PID. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "proxy.h"
#include "proxy_handoff.h"
#include "util.h"

/* ---- the stub engine (runs in the proxy child) ------------------------------ */

struct proxy_engine {
	int64_t version;
	int applies;
};

struct proxy_engine *
proxy_engine_new(uv_loop_t *loop)
{
	(void)loop;
	return xcalloc(1, sizeof(struct proxy_engine));
}

int
proxy_engine_apply(struct proxy_engine *e, const json_t *snapshot, char **err)
{
	if (json_object_get(json_object_get(snapshot, "clusters"), "bad")) {
		*err = xstrdup("bad snapshot");
		return -EINVAL;
	}
	e->version = json_integer_value(json_object_get(snapshot, "version"));
	e->applies++;
	return 0;
}

int
proxy_engine_apply_delta(struct proxy_engine *e, int64_t version, const json_t *listeners,
    const json_t *clusters, char **err)
{
	(void)listeners;
	if (json_object_get(clusters, "bad")) {
		*err = xstrdup("bad delta");
		return -EINVAL;
	}
	e->version = version;
	e->applies++;
	return 0;
}

int64_t
proxy_engine_version(const struct proxy_engine *e)
{
	return e->version;
}

void
proxy_engine_metrics(struct proxy_engine *e, struct buf *out)
{
	buf_printf(out, "stub_engine_applies %d\n", e->applies);
}

void
proxy_engine_drain(struct proxy_engine *e, void (*done)(void *), void *arg)
{
	(void)e;
	done(arg);
}

void
proxy_engine_free(struct proxy_engine *e)
{
	free(e);
}

/* The stub engine does not trace (proxy_trace.c needs the real one). */
struct px_tracer *
proxy_tracer_new(struct otlp_exporter *x, double ratio)
{
	(void)x;
	(void)ratio;
	return NULL;
}

void
proxy_tracer_free(struct px_tracer *t)
{
	(void)t;
}

void
proxy_engine_set_tracer(struct proxy_engine *e, struct px_tracer *t)
{
	(void)e;
	(void)t;
}

/* The stub holds no request (scale from zero is test_proxy_engine's). */
void
proxy_engine_on_hold(struct proxy_engine *e, void (*cb)(void *arg, const char *service),
    void *arg)
{
	(void)e;
	(void)cb;
	(void)arg;
}

/* The stub has no listening sockets to hand over nor to take. */
void
proxy_engine_listen_fds(struct proxy_engine *e, proxy_listen_fn fn, void *arg)
{
	(void)e;
	(void)fn;
	(void)arg;
}

bool
proxy_engine_inherit(struct proxy_engine *e, const char *proto, const char *address, int port,
    int fd)
{
	(void)e;
	(void)proto;
	(void)address;
	(void)port;
	(void)fd;
	return false;
}

void
proxy_engine_inherit_end(struct proxy_engine *e)
{
	(void)e;
}

/* ---- helpers ------------------------------------------------------------------ */

static char self_exe[4096];

static char *
make_dir(void)
{
	char tmpl[] = "/tmp/v6-feed-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	return xasprintf("%s/proxy", tmpl);
}

static void
rm_dir(char *dir)
{
	char *cmd = xasprintf("rm -rf '%.*s'", (int)(strrchr(dir, '/') - dir), dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(dir);
}

static char *
dir_file(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static pid_t
proxy_pid(const char *dir)
{
	char *path = dir_file(dir, "proxy.pid");
	pid_t pid = proc_pidfile_read(path, NULL);
	free(path);
	return pid;
}

/* GET path on "host:port": status, body in *body (caller frees). */
static int
http_get(const char *addr, const char *path, char **body)
{
	const char *colon = strrchr(addr, ':');
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
	char host[64];
	snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
	inet_pton(AF_INET, host, &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;
	*body = NULL;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	char *req = xasprintf("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
	assert_true(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
	free(req);
	struct buf b = BUF_INIT;
	char chunk[4096];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof chunk)) > 0)
		buf_append(&b, chunk, (size_t)n);
	close(fd);
	char *text = buf_steal(&b), *sep = strstr(text, "\r\n\r\n");
	if (sscanf(text, "HTTP/1.1 %d", &status) == 1 && sep)
		*body = xstrdup(sep + 4);
	free(text);
	return status;
}

static char *
read_admin(const char *dir)
{
	char *path = dir_file(dir, "admin.addr"), *text = NULL;
	size_t len;
	int rc = file_read_all(path, &text, &len);
	free(path);
	if (rc < 0)
		return NULL;
	text[strcspn(text, "\n")] = '\0';
	return text;
}

/* The served snapshot's version (GET /snapshot), -1 when none. */
static int64_t
served_version(const char *admin)
{
	char *body = NULL;
	int64_t v = -1;
	if (http_get(admin, "/snapshot", &body) == 200) {
		json_t *j = json_loads(body, 0, NULL);
		v = json_integer_value(json_object_get(j, "version"));
		json_decref(j);
	}
	free(body);
	return v;
}

/* The served snapshot (GET /snapshot), NULL when none. */
static json_t *
served_snapshot(const char *admin)
{
	char *body = NULL;
	json_t *j = NULL;
	if (http_get(admin, "/snapshot", &body) == 200)
		j = json_loads(body, 0, NULL);
	free(body);
	return j;
}

/* A value of the admin /metrics, -1 when absent. */
static long
metric(const char *admin, const char *name)
{
	char *body = NULL, *p;
	long v = -1;
	if (http_get(admin, "/metrics", &body) == 200 && (p = strstr(body, name)) != NULL)
		v = strtol(p + strlen(name) + 1, NULL, 10);
	free(body);
	return v;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

struct wait_result {
	bool called, applied;
};

static void
on_wait(void *arg, bool applied)
{
	struct wait_result *r = arg;
	r->called = true;
	r->applied = applied;
}

static void
on_tick(uv_timer_t *t)
{
	(void)t;
}

/* Runs the loop until *flag or ms passed. */
static void
run_until(uv_loop_t *loop, bool *flag, int ms)
{
	uv_timer_t tick;
	uv_timer_init(loop, &tick);
	uv_timer_start(&tick, on_tick, 5, 5);
	int64_t end = time_mono_ms() + ms;
	while (!*flag && time_mono_ms() < end)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

static bool
wait_applied(uv_loop_t *loop, struct proxy_feed *f, int64_t v, unsigned timeout_ms)
{
	struct wait_result r = { false, false };
	proxy_feed_wait_version(f, v, timeout_ms, on_wait, &r);
	run_until(loop, &r.called, (int)timeout_ms + 2000);
	assert_true(r.called);
	return r.applied;
}

static void
send_snap(struct proxy_feed *f, const char *json)
{
	json_t *j = json_loads(json, 0, NULL);
	assert_non_null(j);
	proxy_feed_send(f, j);
	json_decref(j);
}

/* Runs the loop for ms. */
static void
spin(uv_loop_t *loop, int ms)
{
	bool never = false;
	run_until(loop, &never, ms);
}

static struct proxy_feed *
start_feed(uv_loop_t *loop, const char *dir)
{
	struct proxy_feed_config cfg = { .state_dir = dir, .self_exe = self_exe,
		.admin_address = "127.0.0.1:0" };
	struct proxy_feed *f = NULL;
	assert_int_equal(proxy_feed_start(loop, &cfg, &f), 0);
	return f;
}

static void
stop_feed(uv_loop_t *loop, struct proxy_feed *f)
{
	proxy_feed_stop(f);
	spin(loop, 20);
}

/* SIGTERM to our child proxy: it must drain and exit 0. */
static void
term_proxy(pid_t pid)
{
	int status = 0;
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- tests ------------------------------------------------------------------------ */

static void
test_feed_starts_proxy_acks_and_coalesces(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *dir = make_dir();
	struct proxy_feed *f = start_feed(&loop, dir);
	pid_t pid = proxy_pid(dir);
	assert_true(pid > 0);
	assert_non_null(proxy_feed_admin_address(f));
	char *admin = xstrdup(proxy_feed_admin_address(f));
	assert_string_not_equal(strrchr(admin, ':'), ":0");

	int64_t t0 = time_mono_ms();
	send_snap(f, "{\"version\": 5, \"listeners\": []}");
	assert_true(wait_applied(&loop, f, 5, 5000));
	assert_true(time_mono_ms() - t0 < 2000);
	assert_int_equal(served_version(admin), 5);
	char *snap_path = dir_file(dir, "snapshot.json");
	json_t *saved = json_load_file(snap_path, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(saved, "version")), 5);
	json_decref(saved);
	char *body = NULL;
	assert_int_equal(http_get(admin, "/healthz", &body), 200);
	free(body);

	/* 7 arrives while 6 waits for its ack: only 8, the newest, follows 6,
	 * as deltas; the proxy's table is the feed's. */
	send_snap(f, "{\"version\": 6, \"listeners\": [], \"clusters\": {\"n\": {\"v\": 6}}}");
	send_snap(f, "{\"version\": 7, \"listeners\": [], \"clusters\": {\"n\": {\"v\": 7}, "
	    "\"gone\": {}}}");
	send_snap(f, "{\"version\": 8, \"listeners\": [], \"clusters\": {\"n\": {\"v\": 8}, "
	    "\"m\": {}}}");
	assert_true(wait_applied(&loop, f, 8, 5000));
	assert_int_equal(metric(admin, "stub_engine_applies"), 3);
	assert_int_equal(served_version(admin), 8);
	json_t *served = served_snapshot(admin);
	json_t *want8 = json_pack("{s:{s:i}, s:{}}", "n", "v", 8, "m");
	assert_true(json_equal(json_object_get(served, "clusters"), want8));
	json_decref(want8);
	json_decref(served);

	/* Same content at a newer version: applied without a new apply. */
	send_snap(f, "{\"version\": 9, \"listeners\": [], \"clusters\": {\"n\": {\"v\": 8}, "
	    "\"m\": {}}}");
	assert_true(wait_applied(&loop, f, 9, 5000));
	assert_int_equal(metric(admin, "stub_engine_applies"), 3);
	/* A version not sent yet is not applied: the waiter times out. */
	assert_false(wait_applied(&loop, f, 10, 100));

	/* A rejected table is never "applied" (the delta, then the whole table
	 * the feed resyncs with, are both refused); the next good one is. */
	send_snap(f, "{\"version\": 10, \"clusters\": {\"bad\": {}}}");
	assert_false(wait_applied(&loop, f, 10, 300));
	assert_int_equal(metric(admin, "v6_proxy_snapshots_total{outcome=\"rejected\"}"), 2);
	assert_int_equal(served_version(admin), 8);
	send_snap(f, "{\"version\": 11, \"listeners\": [], \"clusters\": {\"n\": {\"v\": 11}}}");
	assert_true(wait_applied(&loop, f, 11, 5000));
	assert_int_equal(served_version(admin), 11);
	served = served_snapshot(admin);	/* m, dropped by the refused table, is gone */
	json_t *want = json_pack("{s:{s:i}}", "n", "v", 11);
	assert_true(json_equal(json_object_get(served, "clusters"), want));
	json_decref(want);
	json_decref(served);
	/* after a refusal the feed resends the whole table (saved whole); the
	 * deltas after it are journalled */
	saved = json_load_file(snap_path, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(saved, "version")), 11);
	json_decref(saved);
	send_snap(f, "{\"version\": 12, \"listeners\": [], \"clusters\": {\"n\": {\"v\": 12}}}");
	assert_true(wait_applied(&loop, f, 12, 5000));
	saved = json_load_file(snap_path, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(saved, "version")), 11);
	json_decref(saved);
	char *journal = dir_file(dir, "snapshot.journal"), *jtext = NULL;
	size_t jlen = 0;
	assert_int_equal(file_read_all(journal, &jtext, &jlen), 0);
	assert_non_null(strstr(jtext, "\"base\":11,\"version\":12"));
	free(jtext);
	free(journal);

	/* The feed stops; the proxy keeps serving. */
	stop_feed(&loop, f);
	assert_int_equal(kill(pid, 0), 0);
	assert_int_equal(served_version(admin), 12);
	term_proxy(pid);
	char *pid_path = dir_file(dir, "proxy.pid"), *sock = dir_file(dir, "control.sock");
	assert_int_equal(access(pid_path, F_OK), -1);
	assert_int_equal(access(sock, F_OK), -1);
	free(pid_path);
	free(sock);
	free(snap_path);
	free(admin);
	assert_int_equal(uv_loop_close(&loop), 0);
	rm_dir(dir);
}

static void
test_feed_restarts_killed_proxy_resyncs_and_is_adopted(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *dir = make_dir();
	struct proxy_feed *f = start_feed(&loop, dir);
	char *admin = xstrdup(proxy_feed_admin_address(f));
	send_snap(f, "{\"version\": 3, \"listeners\": []}");
	assert_true(wait_applied(&loop, f, 3, 5000));
	pid_t pid1 = proxy_pid(dir);
	assert_true(pid1 > 0);

	/* kill -9, and lose the saved snapshot: only a resync can bring v3 back. */
	assert_int_equal(kill(pid1, SIGKILL), 0);
	char *snap_path = dir_file(dir, "snapshot.json");
	unlink(snap_path);
	pid_t pid2 = 0;
	int64_t end = time_mono_ms() + 5000;
	while (time_mono_ms() < end && served_version(admin) != 3)
		spin(&loop, 20);
	pid2 = proxy_pid(dir);
	assert_true(pid2 > 0 && pid2 != pid1);
	assert_int_equal(served_version(admin), 3);	/* same admin address */

	/* A new feed (a restarted server) adopts the running proxy. */
	stop_feed(&loop, f);
	f = start_feed(&loop, dir);
	assert_string_equal(proxy_feed_admin_address(f), admin);
	send_snap(f, "{\"version\": 4, \"listeners\": []}");
	assert_true(wait_applied(&loop, f, 4, 5000));
	assert_int_equal(proxy_pid(dir), pid2);
	assert_int_equal(served_version(admin), 4);
	stop_feed(&loop, f);
	term_proxy(pid2);
	free(snap_path);
	free(admin);
	assert_int_equal(uv_loop_close(&loop), 0);
	rm_dir(dir);
}

static int
ctl_connect(const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/control.sock", dir);
	for (int i = 0; i < 400; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			return fd;
		close(fd);
		sleep_ms(5);
	}
	fail_msg("control.sock never answered");
	return -1;
}

/* Sends one line, returns the reply line parsed. */
static json_t *
ctl_call(int fd, const char *line)
{
	char reply[4096];
	size_t n = 0;
	assert_true(write(fd, line, strlen(line)) == (ssize_t)strlen(line));
	while (n < sizeof reply - 1 && (n == 0 || reply[n - 1] != '\n')) {
		ssize_t r = read(fd, reply + n, sizeof reply - 1 - n);
		assert_true(r > 0);
		n += (size_t)r;
	}
	reply[n] = '\0';
	json_t *j = json_loads(reply, 0, NULL);
	assert_non_null(j);
	return j;
}

static void
test_proxy_serves_saved_snapshot_and_speaks_the_protocol(void **state)
{
	(void)state;
	char *dir = make_dir();
	assert_int_equal(mkdir(dir, 0700), 0);
	char *snap_path = dir_file(dir, "snapshot.json");
	FILE *sf = fopen(snap_path, "w");
	fputs("{\"version\": 7, \"listeners\": []}", sf);
	fclose(sf);
	char *argv[] = { self_exe, "proxy", "--state-dir", dir, "--admin", "127.0.0.1:0", NULL };
	pid_t pid;
	assert_int_equal(proc_spawn(argv, NULL, &pid), 0);
	int fd = ctl_connect(dir);
	char *admin = read_admin(dir);
	assert_non_null(admin);
	assert_int_equal(served_version(admin), 7);	/* before any server spoke */

	char *sock = dir_file(dir, "control.sock");
	struct stat sb;
	assert_int_equal(stat(sock, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	json_t *r = ctl_call(fd, "{\"type\":\"snapshot\",\"snapshot\":{\"version\":8}}\n");
	assert_string_equal(json_string_value(json_object_get(r, "type")), "ack");
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 8);
	json_decref(r);
	r = ctl_call(fd, "{\"type\":\"snapshot\",\"snapshot\":{\"version\":9,\"clusters\":"
	    "{\"bad\":{}}}}\n");
	assert_string_equal(json_string_value(json_object_get(r, "type")), "nack");
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 9);
	assert_string_equal(json_string_value(json_object_get(r, "error")), "bad snapshot");
	json_decref(r);
	/* a delta from a version the proxy does not have is refused, changing
	 * nothing; one from its version applies */
	r = ctl_call(fd, "{\"type\":\"delta\",\"base\":7,\"version\":10,\"listeners\":{},"
	    "\"clusters\":{\"x\":{}}}\n");
	assert_string_equal(json_string_value(json_object_get(r, "type")), "nack");
	json_decref(r);
	assert_int_equal(served_version(admin), 8);
	r = ctl_call(fd, "{\"type\":\"delta\",\"base\":8,\"version\":9,\"listeners\":{},"
	    "\"clusters\":{\"bad\":{}}}\n");
	assert_string_equal(json_string_value(json_object_get(r, "type")), "nack");
	json_decref(r);
	r = ctl_call(fd, "{\"type\":\"delta\",\"base\":8,\"version\":10,\"listeners\":{},"
	    "\"clusters\":{\"x\":{\"n\":1},\"y\":{}}}\n");
	assert_string_equal(json_string_value(json_object_get(r, "type")), "ack");
	json_decref(r);
	r = ctl_call(fd, "{\"type\":\"delta\",\"base\":10,\"version\":12,\"listeners\":{},"
	    "\"clusters\":{\"y\":null}}\n");
	assert_string_equal(json_string_value(json_object_get(r, "type")), "ack");
	json_decref(r);
	assert_int_equal(served_version(admin), 12);
	r = ctl_call(fd, "not json\n");
	assert_string_equal(json_string_value(json_object_get(r, "type")), "nack");
	json_decref(r);
	r = ctl_call(fd, "{\"type\":\"ping\"}\n");
	assert_string_equal(json_string_value(json_object_get(r, "type")), "pong");
	assert_int_equal(json_integer_value(json_object_get(r, "version")), 12);
	json_decref(r);
	assert_int_equal(served_version(admin), 12);

	/* Restarted, the proxy serves the saved snapshot with the journal's
	 * deltas: version 12, x and no y. */
	close(fd);
	term_proxy(pid);
	assert_int_equal(proc_spawn(argv, NULL, &pid), 0);
	fd = ctl_connect(dir);
	free(admin);
	admin = read_admin(dir);
	assert_int_equal(served_version(admin), 12);
	json_t *served = served_snapshot(admin);
	json_t *want = json_pack("{s:{s:i}}", "x", "n", 1);
	assert_true(json_equal(json_object_get(served, "clusters"), want));
	json_decref(want);
	json_decref(served);

	/* A second proxy on the same dir refuses to start. */
	int status = 0;
	pid_t other;
	assert_int_equal(proc_spawn(argv, NULL, &other), 0);
	assert_int_equal(waitpid(other, &status, 0), other);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	assert_int_equal(served_version(admin), 12);

	close(fd);
	term_proxy(pid);
	free(sock);
	free(admin);
	free(snap_path);
	rm_dir(dir);
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "proxy") == 0)
		return proxy_main(argc - 1, argv + 1);
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (n <= 0)
		return 1;
	self_exe[n] = '\0';
	log_set_level(getenv("FEED_DEBUG") ? LOG_DEBUG : LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_feed_starts_proxy_acks_and_coalesces),
		cmocka_unit_test(test_feed_restarts_killed_proxy_resyncs_and_is_adopted),
		cmocka_unit_test(test_proxy_serves_saved_snapshot_and_speaks_the_protocol),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
