/* test_obs_loki.c — the Loki shipper: back-off schedule, labels, CRI
 * parsing, JSON push encoding with per-stream order, line splitting, the
 * logger's JSON lines, and the whole shipper on a loop against a push
 * endpoint (V6's own HTTP server answering as Loki): positions written after
 * the ack, rotation finished before the next file, resumption without
 * loss or duplicate after a restart, retry after a 500, drop on a 400. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "http.h"
#include "log.h"
#include "obs_loki.h"

static void
test_backoff_schedule(void **state)
{
	(void)state;
	/* no jitter drawn (rnd 0): half of min doubled per attempt, capped */
	assert_int_equal(obs_loki__backoff_ms(1, 500, 30000, 0), 250);
	assert_int_equal(obs_loki__backoff_ms(2, 500, 30000, 0), 500);
	assert_int_equal(obs_loki__backoff_ms(3, 500, 30000, 0), 1000);
	assert_int_equal(obs_loki__backoff_ms(7, 500, 30000, 0), 15000);
	assert_int_equal(obs_loki__backoff_ms(40, 500, 30000, 0), 15000);
	/* the jitter stays in [d/2, d] */
	for (uint32_t r = 0; r < 5000; r += 7) {
		int64_t d = obs_loki__backoff_ms(3, 500, 30000, r * 2654435761u);
		assert_true(d >= 1000 && d <= 2000);
	}
	assert_int_equal(obs_loki__backoff_ms(3, 500, 30000, 1000), 2000);
}

static void
test_labels_sorted_and_empty_left_out(void **state)
{
	(void)state;
	const char *names[] = { "pod", "namespace", "app", "container", "node", "stream" };
	const char *values[] = { "web-1", "prod", "", "c\"x", "edge", "stdout" };
	struct buf b = BUF_INIT;
	obs_loki__labels(&b, names, values, 6);
	assert_string_equal(b.data, "{\"container\":\"c\\\"x\",\"namespace\":\"prod\","
	    "\"node\":\"edge\",\"pod\":\"web-1\",\"stream\":\"stdout\"}");
	buf_free(&b);
}

static void
test_pod_dir_and_cri_parsing(void **state)
{
	(void)state;
	char *ns, *pod, *uid;
	assert_int_equal(obs_loki__parse_pod_dir("default_web-7f9c_0b1e-22", &ns, &pod, &uid), 0);
	assert_string_equal(ns, "default");
	assert_string_equal(pod, "web-7f9c");
	assert_string_equal(uid, "0b1e-22");
	free(ns);
	free(pod);
	free(uid);
	assert_int_equal(obs_loki__parse_pod_dir("nounderscore", &ns, &pod, &uid), -EINVAL);
	assert_int_equal(obs_loki__parse_pod_dir("a_b", &ns, &pod, &uid), -EINVAL);

	const char *l = "2026-01-02T03:04:05.123456789Z stderr P half a line";
	int64_t ts;
	int stream;
	bool partial;
	const char *text;
	size_t tlen;
	assert_int_equal(obs_loki__parse_cri(l, strlen(l), &ts, &stream, &partial, &text,
	    &tlen), 0);
	assert_true(ts == 1767323045123456789LL);
	assert_int_equal(stream, 1);
	assert_true(partial);
	assert_int_equal(tlen, strlen("half a line"));
	assert_memory_equal(text, "half a line", tlen);
	const char *e = "2026-01-02T03:04:05Z stdout F ";
	assert_int_equal(obs_loki__parse_cri(e, strlen(e), &ts, &stream, &partial, &text,
	    &tlen), 0);
	assert_true(ts == 1767323045000000000LL && stream == 0 && !partial && tlen == 0);
	const char *bad = "yesterday stdout F x";
	assert_int_equal(obs_loki__parse_cri(bad, strlen(bad), &ts, &stream, &partial, &text,
	    &tlen), -EINVAL);
}

static void
test_push_encoding_and_order(void **state)
{
	(void)state;
	struct loki_enc *e = obs_loki__enc_new();
	struct loki_stream *a = obs_loki__enc_stream(e, "{\"pod\":\"a\"}");
	struct loki_stream *b = obs_loki__enc_stream(e, "{\"pod\":\"b\"}");
	assert_ptr_equal(obs_loki__enc_stream(e, "{\"pod\":\"a\"}"), a);
	assert_true(obs_loki__enc_add(e, a, 100, "one", 3) == 100);
	assert_true(obs_loki__enc_add(e, b, 50, "tab\there \xff", 10) == 50);
	/* older than the stream's last entry: moved just after it */
	assert_true(obs_loki__enc_add(e, a, 90, "two", 3) == 101);
	assert_true(obs_loki__enc_add(e, a, 101, "three", 5) == 102);
	struct buf j = BUF_INIT;
	assert_int_equal(obs_loki__enc_take(e, &j), 4);
	assert_string_equal(j.data, "{\"streams\":["
	    "{\"stream\":{\"pod\":\"a\"},\"values\":[[\"100\",\"one\"],[\"101\",\"two\"],"
	    "[\"102\",\"three\"]]},"
	    "{\"stream\":{\"pod\":\"b\"},\"values\":[[\"50\",\"tab\\there \xef\xbf\xbd\"]]}]}");
	json_error_t je;
	json_t *doc = json_loads(j.data, 0, &je);
	assert_non_null(doc);
	json_decref(doc);
	/* the next batch starts empty; the order carries over */
	buf_reset(&j);
	obs_loki__enc_seen(b, 500);
	assert_true(obs_loki__enc_add(e, b, 400, "later", 5) == 501);
	assert_int_equal(obs_loki__enc_take(e, &j), 1);
	assert_string_equal(j.data,
	    "{\"streams\":[{\"stream\":{\"pod\":\"b\"},\"values\":[[\"501\",\"later\"]]}]}");
	buf_free(&j);
	obs_loki__enc_free(e);
}

static void
test_cut_keeps_utf8_whole(void **state)
{
	(void)state;
	const char *s = "ab\xc3\xa9" "cd";	/* é is 2 bytes at [2, 4) */
	assert_int_equal(obs_loki__cut(s, 6, 10), 6);
	assert_int_equal(obs_loki__cut(s, 6, 3), 2);
	assert_int_equal(obs_loki__cut(s, 6, 4), 4);
}

static void
test_log_json_line_fields(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	struct log_ctx ctx = { .namespace = "prod", .pod = "web-1",
		.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736", .span_id = "00f067aa0ba902b7" };
	log_format_line(&b, LOG_FORMAT_JSON, 1767323045123, LOG_WARN, "proxy", &ctx,
	    "upstream \"x\" failed\n\xff");
	assert_string_equal(b.data, "{\"time\":\"2026-01-02T03:04:05.123Z\",\"level\":\"warn\","
	    "\"component\":\"proxy\",\"msg\":\"upstream \\\"x\\\" failed\\n\xef\xbf\xbd\","
	    "\"namespace\":\"prod\",\"pod\":\"web-1\","
	    "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\"}");
	buf_reset(&b);
	log_format_line(&b, LOG_FORMAT_TEXT, 1767323045123, LOG_INFO, "api", &ctx, "hello");
	assert_string_equal(b.data, "2026-01-02T03:04:05.123Z info  api: hello namespace=prod "
	    "pod=web-1 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7");
	buf_free(&b);
	enum log_format f;
	assert_int_equal(log_parse_format("text", &f), 0);
	assert_int_equal(f, LOG_FORMAT_TEXT);
	assert_int_equal(log_parse_format("xml", &f), -EINVAL);
}

/* ---- the shipper on a loop ------------------------------------------------ */

struct fake_loki {
	uv_loop_t loop;
	struct http_server *srv;
	int answer;			/* status of the next pushes */
	int answer_times;		/* how many; then 204 */
	int pushes;
	char *lines[4096];		/* received entries, in order */
	int64_t ts[4096];
	size_t n;
	char dir[64];
};

static void
on_push(struct http_req *req, void *arg)
{
	struct fake_loki *fl = arg;
	fl->pushes++;
	if (fl->answer_times > 0) {
		fl->answer_times--;
		http_respond(req, fl->answer, "text/plain", "no\n", 3);
		return;
	}
	/* gunzip and keep the entries */
	char *out = malloc(64 << 20);
	z_stream z = { 0 };
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)req->body;
	z.avail_in = (uInt)req->body_len;
	z.next_out = (Bytef *)out;
	z.avail_out = 64 << 20;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	json_t *doc = json_loadb(out, z.total_out, 0, NULL);
	inflateEnd(&z);
	free(out);
	assert_non_null(doc);
	size_t i, k;
	json_t *s, *v;
	json_array_foreach(json_object_get(doc, "streams"), i, s) {
		if (json_object_get(json_object_get(s, "stream"), "pod") == NULL)
			continue;	/* V6's own lines */
		json_array_foreach(json_object_get(s, "values"), k, v) {
			assert_true(fl->n < 4096);
			fl->ts[fl->n] = strtoll(json_string_value(json_array_get(v, 0)), NULL, 10);
			fl->lines[fl->n++] = strdup(json_string_value(json_array_get(v, 1)));
		}
	}
	json_decref(doc);
	http_respond(req, 204, "text/plain", "", 0);
}

static void
append(const char *path, int from, int to)
{
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	for (int i = from; i < to; i++)
		fprintf(f, "2026-01-02T03:04:05.%09dZ stdout F line %d\n", i, i);
	fclose(f);
}

static void
on_wait(uv_timer_t *t)
{
	(void)t;
}

/* Runs the loop until n entries arrived and the positions file shows
 * offset want_off (or the deadline). */
static void
run_until(struct fake_loki *fl, size_t n, long want_off)
{
	uv_timer_t t;
	uv_timer_init(&fl->loop, &t);
	uv_timer_start(&t, on_wait, 20, 20);
	char *pos = xasprintf("%s/loki/positions.json", fl->dir);
	int64_t deadline = time_mono_ms() + 20000;
	while (time_mono_ms() < deadline) {
		uv_run(&fl->loop, UV_RUN_ONCE);
		if (fl->n < n)
			continue;
		json_t *doc = json_load_file(pos, 0, NULL);
		const char *key;
		json_t *v;
		long off = -1;
		json_object_foreach(json_object_get(doc, "files"), key, v)
			off = (long)json_integer_value(json_object_get(v, "offset"));
		json_decref(doc);
		if (off == want_off)
			break;
	}
	free(pos);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&fl->loop, UV_RUN_NOWAIT);
}

static struct obs_loki *
start_spool(struct fake_loki *fl, size_t spool)
{
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", http_server_port(fl->srv));
	struct obs_loki_config c = { .url = url, .state_dir = fl->dir, .node_name = "n1",
		.batch_wait_ms = 20, .batch_bytes = 1000, .backoff_min_ms = 20,
		.backoff_max_ms = 100, .timeout_ms = 2000, .spool_bytes = spool };
	struct obs_loki *l;
	assert_int_equal(obs_loki_start(&fl->loop, &c, &l), 0);
	return l;
}

static struct obs_loki *
start(struct fake_loki *fl)
{
	return start_spool(fl, 0);
}

static void
stop(struct fake_loki *fl, struct obs_loki *l)
{
	obs_loki_stop(l);
	for (int i = 0; i < 200; i++)
		uv_run(&fl->loop, UV_RUN_NOWAIT), usleep(1000);
}

static void
fake_open(struct fake_loki *fl)
{
	fl->answer = 204;
	snprintf(fl->dir, sizeof fl->dir, "/tmp/v6-loki-XXXXXX");
	assert_non_null(mkdtemp(fl->dir));
	uv_loop_init(&fl->loop);
	struct http_config hc = { .handler = on_push, .handler_arg = fl,
		.max_body_bytes = 64 << 20 };
	assert_int_equal(http_server_start(&fl->loop, "127.0.0.1", 0, &hc, &fl->srv), 0);
	char *cmd = xasprintf("mkdir -p %s/pods/default_p_u1/c", fl->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void
fake_close(struct fake_loki *fl)
{
	for (size_t i = 0; i < fl->n; i++)
		free(fl->lines[i]);
	http_server_stop(fl->srv);
	uv_run(&fl->loop, UV_RUN_NOWAIT);
	for (int i = 0; i < 100 && uv_loop_close(&fl->loop) == UV_EBUSY; i++)
		uv_run(&fl->loop, UV_RUN_NOWAIT);
	char *rm = xasprintf("rm -rf %s", fl->dir);
	assert_int_equal(system(rm), 0);
	free(rm);
}

static void
test_shipper_positions_rotation_restart(void **state)
{
	(void)state;
	struct fake_loki fl = { 0 };
	fake_open(&fl);
	char *cdir = xasprintf("%s/pods/default_p_u1/c", fl.dir);
	char *live = xasprintf("%s/0.log", cdir), *rot = xasprintf("%s/0.log.1", cdir);
	append(live, 0, 100);
	struct stat st;

	/* a 500, then acks: all 100 lines once, position = the file's end */
	fl.answer = 500;
	fl.answer_times = 1;
	struct obs_loki *l = start(&fl);
	stat(live, &st);
	run_until(&fl, 100, (long)st.st_size);
	assert_int_equal(fl.n, 100);
	struct obs_loki_stats s;
	obs_loki_get_stats(l, &s);
	assert_true(s.retries >= 1 && s.lines_sent >= 100);

	/* rotation: the rest of the rotated file comes before the new file */
	append(live, 100, 150);
	assert_int_equal(rename(live, rot), 0);
	append(live, 150, 200);
	stat(live, &st);
	run_until(&fl, 200, (long)st.st_size);
	stop(&fl, l);

	/* a restart resumes at the position: no line twice */
	append(live, 200, 230);
	l = start(&fl);
	stat(live, &st);
	run_until(&fl, 230, (long)st.st_size);

	/* a 400 drops the batch (counted) and goes on */
	fl.answer = 400;
	fl.answer_times = 1000;
	append(live, 230, 240);
	int64_t until = time_mono_ms() + 3000;
	while (time_mono_ms() < until && (obs_loki_get_stats(l, &s), s.lines_dropped < 10))
		uv_run(&fl.loop, UV_RUN_NOWAIT), usleep(2000);
	assert_true(s.lines_dropped >= 10);
	stop(&fl, l);

	if (fl.n != 230)	/* say which lines came twice or never, for the log */
		for (size_t i = 0; i < fl.n; i++)
			if (i == 0 || strcmp(fl.lines[i], fl.lines[i - 1]) == 0 ||
			    atoi(fl.lines[i] + 5) != atoi(fl.lines[i - 1] + 5) + 1)
				print_message("received[%zu] = %s\n", i, fl.lines[i]);
	assert_int_equal(fl.n, 230);
	for (size_t i = 0; i < fl.n; i++) {
		char want[32];
		snprintf(want, sizeof want, "line %zu", i);
		assert_string_equal(fl.lines[i], want);
		if (i)
			assert_true(fl.ts[i] > fl.ts[i - 1]);
	}
	fake_close(&fl);
	free(cdir);
	free(live);
	free(rot);
}

/* Bytes and files in DIR/loki/spool. */
static size_t
spool_du(const struct fake_loki *fl, size_t *files)
{
	char *dir = xasprintf("%s/loki/spool", fl->dir);
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t bytes = 0;
	*files = 0;
	while (d && (e = readdir(d)) != NULL) {
		if (!strstr(e->d_name, ".batch"))
			continue;
		char *p = xasprintf("%s/%s", dir, e->d_name);
		struct stat st;
		if (stat(p, &st) == 0)
			bytes += (size_t)st.st_size, (*files)++;
		free(p);
	}
	if (d)
		closedir(d);
	free(dir);
	return bytes;
}


/* Loki away (503s) while lines keep coming: the spool stays within its
 * bound by dropping the oldest batches (counted); what is left arrives in
 * order once Loki answers, and the position reaches the end. */
static void
test_spool_bound_drops_oldest(void **state)
{
	(void)state;
	struct fake_loki fl = { 0 };
	fake_open(&fl);
	char *live = xasprintf("%s/pods/default_p_u1/c/0.log", fl.dir);
	fl.answer = 503;
	fl.answer_times = 1 << 30;
	append(live, 0, 3000);
	struct obs_loki *l = start_spool(&fl, 2048);
	struct obs_loki_stats s;
	uint64_t worst = 0;
	size_t worst_disk = 0, files;
	int64_t until = time_mono_ms() + 20000;
	do {
		uv_run(&fl.loop, UV_RUN_NOWAIT);
		usleep(1000);
		obs_loki_get_stats(l, &s);
		if (s.spool_bytes > worst)
			worst = s.spool_bytes;
		size_t du = spool_du(&fl, &files);
		if (du > worst_disk)
			worst_disk = du;
	} while (time_mono_ms() < until && s.lines_read < 3000);
	assert_true(s.lines_read >= 3000);
	assert_true(s.lines_dropped > 0 && s.batches_dropped > 0);
	assert_true(worst < 2048 + 1024);	/* the bound + the batch on the wire */
	/* on disk too, plus a header line per file and the batch being added */
	assert_true(worst_disk < 2048 + 2 * 1024 + 64 * 8);
	fl.answer_times = 0;
	struct stat st;
	stat(live, &st);
	run_until(&fl, 3000 - (size_t)s.lines_dropped, (long)st.st_size);
	obs_loki_get_stats(l, &s);
	assert_int_equal(fl.n + s.lines_dropped, 3000);
	for (size_t i = 1; i < fl.n; i++)
		assert_true(fl.ts[i] > fl.ts[i - 1]);
	assert_string_equal(fl.lines[fl.n - 1], "line 2999");
	stop(&fl, l);
	fake_close(&fl);
	free(live);
}
/* Loki away while the shipper reads a file that is then rotated away for
 * good, and the shipper restarts: the batches it read come back from the
 * on-disk spool and arrive once, in order; the spool ends empty. */
static void
test_spool_on_disk_survives_restart(void **state)
{
	(void)state;
	struct fake_loki fl = { 0 };
	fake_open(&fl);
	char *live = xasprintf("%s/pods/default_p_u1/c/0.log", fl.dir);
	fl.answer = 503;
	fl.answer_times = 1 << 30;
	append(live, 0, 300);
	struct obs_loki *l = start(&fl);
	struct obs_loki_stats s;
	size_t files = 0;
	int64_t until = time_mono_ms() + 20000;
	do {
		uv_run(&fl.loop, UV_RUN_NOWAIT);
		usleep(1000);
		obs_loki_get_stats(l, &s);
	} while (time_mono_ms() < until && s.lines_read < 300);
	assert_int_equal(s.lines_read, 300);
	stop(&fl, l);
	assert_int_equal(fl.n, 0);
	assert_true(spool_du(&fl, &files) > 0 && files >= 2);	/* 1000-byte batches */
	/* the file is gone (rotated past --container-log-max-files) */
	assert_int_equal(unlink(live), 0);
	fl.answer_times = 0;
	l = start(&fl);
	until = time_mono_ms() + 20000;
	while (time_mono_ms() < until && (fl.n < 300 || spool_du(&fl, &files) > 0))
		uv_run(&fl.loop, UV_RUN_NOWAIT), usleep(1000);
	obs_loki_get_stats(l, &s);
	assert_int_equal(s.files_lost, 0);
	stop(&fl, l);
	assert_int_equal(fl.n, 300);
	for (size_t i = 0; i < fl.n; i++) {
		char want[32];
		snprintf(want, sizeof want, "line %zu", i);
		assert_string_equal(fl.lines[i], want);
		if (i)
			assert_true(fl.ts[i] > fl.ts[i - 1]);
	}
	assert_int_equal(spool_du(&fl, &files), 0);
	fake_close(&fl);
	free(live);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_schedule),
		cmocka_unit_test(test_labels_sorted_and_empty_left_out),
		cmocka_unit_test(test_pod_dir_and_cri_parsing),
		cmocka_unit_test(test_push_encoding_and_order),
		cmocka_unit_test(test_cut_keeps_utf8_whole),
		cmocka_unit_test(test_log_json_line_fields),
		cmocka_unit_test(test_shipper_positions_rotation_restart),
		cmocka_unit_test(test_spool_bound_drops_oldest),
		cmocka_unit_test(test_spool_on_disk_survives_restart),
	};
	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
