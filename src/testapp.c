/* testapp.c — `v6 testapp`, the test workload: an HTTP/1.1 server on http.c
 * whose version, latency, error rate, crash, probes and SIGTERM behaviour
 * come from one option table (flag, else env, else default). It owns its
 * libuv loop and logs JSON lines (stdout: info, stderr: errors). The CLI's
 * verb table calls testapp_main(); docs/testapp.md is the user's manual. */
#include "testapp.h"

#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "http.h"
#include "util.h"

extern char **environ;

#define TA_MAX_DELAY_MS		3600000	/* /delay/MS and latency cap: one hour */
#define TA_DRAIN_GRACE_MS	20	/* let the last writes reach the kernel */
#define TA_EXIT_GRACE_MS	10	/* same, before /exit/CODE exits */
#define TA_LOG_BUF		(64 * 1024)
#define TA_NCODES		600

/* ---- options ------------------------------------------------------------ */

enum opt_kind { OPT_STR, OPT_PORT, OPT_CODE, OPT_DUR, OPT_RATE, OPT_BOOL };

struct ta_conf {
	const char *listen_ip;
	int port;
	const char *version;
	int64_t latency_ms;
	int64_t jitter_ms;
	double error_rate;
	int64_t crash_after_ms;		/* -1: never */
	int exit_code;
	int64_t fail_liveness_ms;	/* -1: never */
	int64_t slow_start_ms;
	int64_t not_ready_ms;		/* -1: never */
	int64_t startup_delay_ms;
	bool ignore_sigterm;
	bool quiet;
	bool help;
};

struct opt {
	const char *name;	/* the flag without "--" */
	const char *env;	/* NULL: flag only */
	enum opt_kind kind;
	size_t off;		/* into struct ta_conf */
	const char *def;	/* default as text; NULL: unset */
	const char *arg;	/* placeholder in --help */
	const char *help;
};

#define OFF(f) offsetof(struct ta_conf, f)

static const struct opt opts[] = {
	{ "listen-ip", "POD_IP", OPT_STR, OFF(listen_ip), "0.0.0.0", "IP",
	  "address to listen on" },
	{ "port", "PORT", OPT_PORT, OFF(port), "8080", "N",
	  "TCP port; 0 picks a free one (the \"listening\" line says which)" },
	{ "version-string", "VERSION", OPT_STR, OFF(version), "v1", "S",
	  "version reported by /, /version and the X-Version header" },
	{ "latency", "TESTAPP_LATENCY", OPT_DUR, OFF(latency_ms), "0", "D",
	  "delay every response by D" },
	{ "latency-jitter", "TESTAPP_LATENCY_JITTER", OPT_DUR, OFF(jitter_ms), "0", "D",
	  "add a uniformly random extra delay in [0, D] to every response" },
	{ "error-rate", "TESTAPP_ERROR_RATE", OPT_RATE, OFF(error_rate), "0", "F",
	  "fraction 0..1 of requests to / answered 500, evenly spread" },
	{ "crash-after", "TESTAPP_CRASH_AFTER", OPT_DUR, OFF(crash_after_ms), NULL, "D",
	  "exit with status --exit-code once D has passed" },
	{ "exit-code", "TESTAPP_EXIT_CODE", OPT_CODE, OFF(exit_code), "1", "N",
	  "exit status for --crash-after" },
	{ "fail-liveness-after", "TESTAPP_FAIL_LIVENESS_AFTER", OPT_DUR,
	  OFF(fail_liveness_ms), NULL, "D", "/healthz answers 500 from D after start on" },
	{ "slow-start", "TESTAPP_SLOW_START", OPT_DUR, OFF(slow_start_ms), "0", "D",
	  "/readyz answers 503 until D after start" },
	{ "not-ready-after", "TESTAPP_NOT_READY_AFTER", OPT_DUR, OFF(not_ready_ms), NULL, "D",
	  "/readyz answers 503 from D after start on" },
	{ "startup-delay", "TESTAPP_STARTUP_DELAY", OPT_DUR, OFF(startup_delay_ms), "0", "D",
	  "do not listen until D after start" },
	{ "ignore-sigterm", "TESTAPP_IGNORE_SIGTERM", OPT_BOOL, OFF(ignore_sigterm), "false", NULL,
	  "log SIGTERM and carry on (only SIGKILL stops it)" },
	{ "quiet", "TESTAPP_QUIET", OPT_BOOL, OFF(quiet), "false", NULL,
	  "no per-request log lines (benchmarks)" },
	{ "help", NULL, OPT_BOOL, OFF(help), "false", NULL, "show this help" },
};

static const char endpoints_help[] =
    "Endpoints:\n"
    "  /               200 JSON {version, pod, namespace, ip, path, requests} and\n"
    "                  X-Version; 500 for the --error-rate share. Any path not\n"
    "                  listed here is answered the same way.\n"
    "  /healthz        200 ok; 500 once --fail-liveness-after has passed\n"
    "  /readyz         200 ready; 503 during --slow-start, after --not-ready-after\n"
    "                  and while draining after SIGTERM\n"
    "  /version        the version string as text/plain\n"
    "  /status/CODE    answers with status CODE (200..599)\n"
    "  /delay/MS       answers 200 after MS milliseconds (or a duration: 2s)\n"
    "  /echo           JSON {method, path, query, headers, body, remote}\n"
    "  /exit/CODE      answers, then exits with status CODE (0..255)\n"
    "  /env            the environment as a JSON object\n"
    "  /metrics        Prometheus text: requests_total{code}, requests_in_flight,\n"
    "                  request_duration_seconds, testapp_info\n";

static int
opt_set(struct ta_conf *c, const struct opt *o, const char *v)
{
	void *field = (char *)c + o->off;
	int64_t ms;
	char *end;
	long n;
	double d;

	switch (o->kind) {
	case OPT_STR:
		*(const char **)field = v;
		return 0;
	case OPT_PORT:
	case OPT_CODE:
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno || end == v || *end || n < 0 || n > (o->kind == OPT_PORT ? 65535 : 255))
			return -EINVAL;
		*(int *)field = (int)n;
		return 0;
	case OPT_DUR:
		if (duration_parse(v, &ms) < 0 || ms > TA_MAX_DELAY_MS * 24)
			return -EINVAL;
		*(int64_t *)field = ms;
		return 0;
	case OPT_RATE:
		errno = 0;
		d = strtod(v, &end);
		if (errno || end == v || *end || !(d >= 0 && d <= 1))
			return -EINVAL;
		*(double *)field = d;
		return 0;
	case OPT_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
			*(bool *)field = true;
		else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !*v)
			*(bool *)field = false;
		else
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

static const struct opt *
opt_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(opts); i++)
		if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len))
			return &opts[i];
	return NULL;
}

static int
opt_bad(const char *what, const char *name, const char *v)
{
	fprintf(stderr, "error: testapp: invalid %s%s: \"%s\"\n", what, name, v);
	return -EINVAL;
}

static void
conf_defaults(struct ta_conf *c)
{
	size_t i;
	int r;

	memset(c, 0, sizeof(*c));
	c->crash_after_ms = c->fail_liveness_ms = c->not_ready_ms = -1;

	for (i = 0; i < ARRAY_SIZE(opts); i++) {
		if (opts[i].def == NULL)
			continue;
		r = opt_set(c, &opts[i], opts[i].def);
		BUG_ON(r < 0);	/* the table's own defaults parse */
	}
}

static int
conf_env(struct ta_conf *c)
{
	const char *v;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(opts); i++)
		if (opts[i].env && (v = getenv(opts[i].env)) && *v &&
		    opt_set(c, &opts[i], v) < 0)
			return opt_bad("value of env ", opts[i].env, v);
	return 0;
}

/* "--name value", "--name=value", "--bool", "-h". */
static int
conf_flags(struct ta_conf *c, int argc, char **argv)
{
	const struct opt *o;
	const char *a, *eq, *v;
	int i;

	for (i = 1; i < argc; i++) {
		a = argv[i];
		if (!strcmp(a, "-h"))
			a = "--help";
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "error: testapp: unexpected argument \"%s\"\n", a);
			return -EINVAL;
		}
		a += 2;
		eq = strchr(a, '=');
		if ((o = opt_find(a, eq ? (size_t)(eq - a) : strlen(a))) == NULL) {
			fprintf(stderr, "error: testapp: unknown flag --%s (see --help)\n", a);
			return -EINVAL;
		}
		if (eq)
			v = eq + 1;
		else if (o->kind == OPT_BOOL)
			v = "true";
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			fprintf(stderr, "error: testapp: flag --%s needs a value\n", o->name);
			return -EINVAL;
		}
		if (opt_set(c, o, v) < 0)
			return opt_bad("value for flag --", o->name, v);
	}
	return 0;
}

static void
usage(void)
{
	char left[64];
	size_t i;

	printf("Usage: v6 testapp [flags]\n\n"
	    "The V6 test workload: an HTTP server whose behaviour is set by flags or\n"
	    "env (a flag wins). Durations: 100ms, 2s, 1m, 1h30m; a bare number is\n"
	    "seconds. Times are measured from process start.\n\nFlags:\n");
	for (i = 0; i < ARRAY_SIZE(opts); i++) {
		const struct opt *o = &opts[i];

		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "",
		    o->arg ? o->arg : "");
		printf("  %-26s %s\n", left, o->help);
		if (o->env && o->def && o->kind != OPT_BOOL)
			printf("  %-26s env %s, default %s\n", "", o->env, o->def);
		else if (o->env)
			printf("  %-26s env %s\n", "", o->env);
	}
	printf("\nRequest n to / fails when floor(n*F) > floor((n-1)*F): exactly F*N of\n"
	    "any N consecutive requests (within one), evenly spread, no randomness.\n"
	    "--latency-jitter draws from a PRNG seeded per process.\n");
	printf("\n%s\nSignals: SIGTERM (and SIGINT) stop accepting, finish the requests in\n"
	    "flight, and exit 0; with --ignore-sigterm SIGTERM is only logged.\n", endpoints_help);
}

/* ---- state --------------------------------------------------------------- */

static const double dur_buckets[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1, 2.5, 5, 10 };

struct testapp {
	struct ta_conf conf;
	uv_loop_t loop;
	struct http_server *http;
	uv_signal_t sigterm, sigint;
	uv_timer_t start_timer, crash_timer, exit_timer, drain_timer;
	uv_prepare_t flush;
	uint64_t t0;			/* uv_now() at start */
	char *version_js, *pod_js, *ns_js, *ip_js;	/* JSON-escaped, no quotes */
	uint64_t requests;		/* received, every path */
	uint64_t root_requests;		/* received on /, for --error-rate */
	uint64_t error_ppm;		/* error_rate in parts per million */
	uint64_t codes[TA_NCODES];
	uint64_t dur_count[ARRAY_SIZE(dur_buckets) + 1];
	double dur_sum;
	unsigned inflight;
	bool listening;
	bool draining;
	bool log_dirty;
	int exit_status;		/* for the exit timer */
	uint64_t rng;
	struct buf scratch;		/* body of the response being built */
	struct buf line;		/* log line being built */
};

static struct testapp app;

/* What a route decided; sent at once or after the delay. */
struct resp {
	int status;
	const char *ctype;
	int64_t delay_ms;	/* on top of --latency */
	int exit_code;		/* >= 0: exit after answering */
};

/* A response waiting for its delay. */
struct pending {
	uv_timer_t timer;
	struct http_req *req;
	struct resp resp;
	uint64_t start_ns;
	char *body;
	size_t len;
	bool done;
};

static void app_finish(struct testapp *, struct http_req *, const struct resp *,
    const char *, size_t, uint64_t, bool);

static int64_t
app_uptime_ms(struct testapp *a)
{
	uv_update_time(&a->loop);
	return (int64_t)(uv_now(&a->loop) - a->t0);
}

static uint64_t
app_random(struct testapp *a)
{
	a->rng ^= a->rng >> 12;
	a->rng ^= a->rng << 25;
	a->rng ^= a->rng >> 27;
	return a->rng * 2685821657736338717ULL;
}

/* ---- JSON text helpers --------------------------------------------------- */

static void
js_escape(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *run = p;

	for (; *p; p++) {
		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue;
		buf_append(b, run, (size_t)(p - run));
		switch (*p) {
		case '"':  buf_puts(b, "\\\""); break;
		case '\\': buf_puts(b, "\\\\"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\r': buf_puts(b, "\\r"); break;
		case '\t': buf_puts(b, "\\t"); break;
		default:   buf_printf(b, "\\u%04x", *p); break;
		}
		run = p + 1;
	}
	buf_append(b, run, (size_t)(p - run));
}

static char *
js_dup(const char *s)
{
	struct buf b = BUF_INIT;

	js_escape(&b, s);
	return buf_steal(&b);
}

/* ---- logging: JSON lines, stdout for info, stderr for errors ------------- */

static void
log_begin(struct buf *b, const char *level, const char *msg)
{
	int64_t now = time_now_ms();
	char sec[32];

	time_format_rfc3339((time_t)(now / 1000), sec);
	buf_reset(b);
	buf_printf(b, "{\"ts\":\"%.19s.%03dZ\",\"level\":\"%s\",\"msg\":\"", sec,
	    (int)(now % 1000), level);
	js_escape(b, msg);
	buf_putc(b, '"');
}

/* Ends the line and writes it: stdout is flushed once per loop turn (see
 * on_flush), stderr at once. */
static void
log_end(struct testapp *a, struct buf *b, FILE *f)
{
	buf_puts(b, "}\n");
	fwrite(b->data, 1, b->len, f);
	if (f == stdout)
		a->log_dirty = true;
	else
		fflush(f);
}

static void
log_event(struct testapp *a, FILE *f, const char *level, const char *msg,
    const char *fields_fmt, ...) V6_PRINTF(5, 6);

/* A lifecycle line; fields_fmt adds ,"key":value pairs (already JSON). */
static void
log_event(struct testapp *a, FILE *f, const char *level, const char *msg,
    const char *fields_fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	char *fields;

	log_begin(&b, level, msg);
	if (fields_fmt) {
		va_start(ap, fields_fmt);
		fields = xvasprintf(fields_fmt, ap);
		va_end(ap);
		buf_puts(&b, fields);
		free(fields);
	}
	log_end(a, &b, f);
	buf_free(&b);
	if (f == stdout)
		fflush(stdout);
}

static void
on_flush(uv_prepare_t *h)
{
	struct testapp *a = h->data;

	if (a->log_dirty) {
		fflush(stdout);
		a->log_dirty = false;
	}
}

/* n lowercase hex digits, not all zero when nonzero is set. */
static bool
hex_ok(const char *s, size_t n, bool nonzero)
{
	bool seen = false;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
		seen |= s[i] != '0';
	}
	return seen || !nonzero;
}

/* W3C traceparent "VV-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>":
 * points *trace and *span into v when it is valid. Version 00 is exactly 55
 * characters; later versions may append "-..."; ff is invalid. */
static bool
traceparent_parse(const char *v, const char **trace, const char **span)
{
	size_t n = v ? strlen(v) : 0;

	if (n < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
		return false;
	if (!hex_ok(v, 2, false) || !strncmp(v, "ff", 2) || !hex_ok(v + 53, 2, false))
		return false;
	if (n > 55 && (!strncmp(v, "00", 2) || v[55] != '-'))
		return false;
	if (!hex_ok(v + 3, 32, true) || !hex_ok(v + 36, 16, true))
		return false;
	*trace = v + 3;
	*span = v + 36;
	return true;
}

static void
log_request(struct testapp *a, struct http_req *req, int status, uint64_t start_ns)
{
	struct buf *b = &a->line;
	const char *trace, *span;

	log_begin(b, "info", "request");
	buf_puts(b, ",\"method\":\"");
	js_escape(b, req->method);
	buf_puts(b, "\",\"path\":\"");
	js_escape(b, req->path);
	buf_printf(b, "\",\"status\":%d,\"duration_ms\":%.3f,\"remote\":\"%s\"", status,
	    (double)(uv_hrtime() - start_ns) / 1e6, req->remote_addr);
	if (traceparent_parse(http_req_header(req, "traceparent"), &trace, &span))
		buf_printf(b, ",\"trace_id\":\"%.32s\",\"span_id\":\"%.16s\"", trace, span);
	log_end(a, b, stdout);
}

/* ---- routes -------------------------------------------------------------- */

static void
reply_text(struct testapp *a, struct resp *r, int status, const char *fmt, ...)
    V6_PRINTF(4, 5);

static void
reply_text(struct testapp *a, struct resp *r, int status, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	buf_puts(&a->scratch, s);
	free(s);
	r->status = status;
	r->ctype = "text/plain; charset=utf-8";
}

static void
reply_json(struct testapp *a, struct resp *r, int status, json_t *doc)
{
	char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);

	buf_puts(&a->scratch, s ? s : "{}");
	buf_putc(&a->scratch, '\n');
	free(s);
	json_decref(doc);
	r->status = status;
	r->ctype = "application/json";
}

/* Request n on / fails when floor(n*rate) moved: exactly rate*N failures,
 * evenly spread, in any window of N requests (within one). */
static bool
root_should_fail(struct testapp *a)
{
	uint64_t n = ++a->root_requests;

	return (n * a->error_ppm) / 1000000 > ((n - 1) * a->error_ppm) / 1000000;
}

static void
route_root(struct testapp *a, struct http_req *req, const char *arg, struct resp *r)
{
	struct buf *b = &a->scratch;

	(void)arg;
	r->ctype = "application/json";
	if (root_should_fail(a)) {
		r->status = 500;
		buf_printf(b, "{\"error\":\"injected failure (--error-rate)\",\"version\":\"%s\","
		    "\"pod\":\"%s\"}\n", a->version_js, a->pod_js);
		return;
	}
	r->status = 200;
	buf_printf(b, "{\"version\":\"%s\",\"pod\":\"%s\",\"namespace\":\"%s\",\"ip\":\"%s\","
	    "\"path\":\"", a->version_js, a->pod_js, a->ns_js, a->ip_js);
	js_escape(b, req->path);
	buf_printf(b, "\",\"requests\":%llu}\n", (unsigned long long)a->requests);
}

static void
route_healthz(struct testapp *a, struct http_req *req, const char *arg, struct resp *r)
{
	int64_t at = a->conf.fail_liveness_ms;

	(void)req;
	(void)arg;
	if (at >= 0 && app_uptime_ms(a) >= at)
		reply_text(a, r, 500, "unhealthy: --fail-liveness-after %lldms passed\n",
		    (long long)at);
	else
		reply_text(a, r, 200, "ok\n");
}

static void
route_readyz(struct testapp *a, struct http_req *req, const char *arg, struct resp *r)
{
	int64_t up = app_uptime_ms(a);

	(void)req;
	(void)arg;
	if (a->draining)
		reply_text(a, r, 503, "not ready: shutting down\n");
	else if (up < a->conf.slow_start_ms)
		reply_text(a, r, 503, "not ready: slow start, %lldms left\n",
		    (long long)(a->conf.slow_start_ms - up));
	else if (a->conf.not_ready_ms >= 0 && up >= a->conf.not_ready_ms)
		reply_text(a, r, 503, "not ready: --not-ready-after %lldms passed\n",
		    (long long)a->conf.not_ready_ms);
	else
		reply_text(a, r, 200, "ready\n");
}

static void
route_version(struct testapp *a, struct http_req *req, const char *arg, struct resp *r)
{
	(void)req;
	(void)arg;
	reply_text(a, r, 200, "%s\n", a->conf.version);
}

static int
parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || end == s || *end || n < lo || n > hi)
		return -EINVAL;
	*out = n;
	return 0;
}

static void
route_status(struct testapp *a, struct http_req *req, const char *arg, struct resp *r)
{
	const char *text;
	long code;

	(void)req;
	if (parse_int(arg, 200, 599, &code) < 0) {
		reply_text(a, r, 400, "bad status \"%s\": use /status/CODE with 200..599\n", arg);
		return;
	}
	text = http_status_str((enum http_status)code);
	if (text[0] == '<')
		text = "";	/* http-parser has no name for it */
	reply_text(a, r, (int)code, "%ld%s%s\n", code, *text ? " " : "", text);
}

static void
route_delay(struct testapp *a, struct http_req *req, const char *arg, struct resp *r)
{
	int64_t ms;
	long n;

	(void)req;
	if (parse_int(arg, 0, TA_MAX_DELAY_MS, &n) == 0)
		ms = n;
	else if (duration_parse(arg, &ms) < 0 || ms > TA_MAX_DELAY_MS) {
		reply_text(a, r, 400, "bad delay \"%s\": use /delay/MS or /delay/2s, at most 1h\n",
		    arg);
		return;
	}
	r->delay_ms = ms;
	reply_json(a, r, 200, json_pack("{s:I}", "delay_ms", (json_int_t)ms));
}

static void
route_exit(struct testapp *a, struct http_req *req, const char *arg, struct resp *r)
{
	long code;

	(void)req;
	if (parse_int(arg, 0, 255, &code) < 0) {
		reply_text(a, r, 400, "bad exit code \"%s\": use /exit/CODE with 0..255\n", arg);
		return;
	}
	r->exit_code = (int)code;
	reply_json(a, r, 200, json_pack("{s:i}", "exit_code", (int)code));
}

/* A JSON string, or base64 under key_b64 when s is not UTF-8. */
static void
json_set_bytes(json_t *obj, const char *key, const char *key_b64, const char *s, size_t n)
{
	json_t *v = json_stringn(s, n);
	char *b64;

	if (v) {
		json_object_set_new(obj, key, v);
		return;
	}
	b64 = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)s, (int)n);
	json_object_set_new(obj, key_b64, json_string(b64));
	free(b64);
}

static void
route_echo(struct testapp *a, struct http_req *req, const char *arg, struct resp *r)
{
	json_t *doc = json_object(), *hdrs = json_object(), *old, *v;
	char *name, *joined, *p;
	size_t i;

	(void)arg;
	for (i = 0; i < req->nheaders; i++) {
		name = xstrdup(req->headers[i].name);
		for (p = name; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		old = json_object_get(hdrs, name);
		if (old) {
			joined = xasprintf("%s, %s", json_string_value(old), req->headers[i].value);
			v = json_string(joined);
			free(joined);
		} else
			v = json_string(req->headers[i].value);
		if (v)
			json_object_set_new(hdrs, name, v);
		free(name);
	}
	json_object_set_new(doc, "method", json_string(req->method));
	json_set_bytes(doc, "path", "path_base64", req->path, strlen(req->path));
	json_set_bytes(doc, "query", "query_base64", req->query, strlen(req->query));
	json_object_set_new(doc, "headers", hdrs);
	json_set_bytes(doc, "body", "body_base64", req->body, req->body_len);
	json_object_set_new(doc, "remote", json_string(req->remote_addr));
	reply_json(a, r, 200, doc);
}

static void
route_env(struct testapp *a, struct http_req *req, const char *arg, struct resp *r)
{
	json_t *doc = json_object(), *v;
	const char *eq;
	char **e;
	char *name;

	(void)req;
	(void)arg;
	for (e = environ; *e; e++) {
		if ((eq = strchr(*e, '=')) == NULL)
			continue;
		name = xstrndup(*e, (size_t)(eq - *e));
		if ((v = json_string(eq + 1)) != NULL)
			json_object_set_new(doc, name, v);
		free(name);
	}
	reply_json(a, r, 200, doc);
}

static void
route_metrics(struct testapp *a, struct http_req *req, const char *arg, struct resp *r)
{
	struct buf *b = &a->scratch;
	uint64_t cum = 0;
	size_t i;

	(void)req;
	(void)arg;
	buf_puts(b, "# HELP requests_total Requests answered, by status code.\n"
	    "# TYPE requests_total counter\n");
	for (i = 0; i < TA_NCODES; i++)
		if (a->codes[i])
			buf_printf(b, "requests_total{code=\"%zu\"} %llu\n", i,
			    (unsigned long long)a->codes[i]);
	buf_printf(b, "# HELP requests_in_flight Requests received and not answered yet.\n"
	    "# TYPE requests_in_flight gauge\nrequests_in_flight %u\n", a->inflight);
	buf_puts(b, "# HELP request_duration_seconds Time from request to response.\n"
	    "# TYPE request_duration_seconds histogram\n");
	for (i = 0; i < ARRAY_SIZE(dur_buckets); i++) {
		cum += a->dur_count[i];
		buf_printf(b, "request_duration_seconds_bucket{le=\"%g\"} %llu\n", dur_buckets[i],
		    (unsigned long long)cum);
	}
	cum += a->dur_count[i];
	buf_printf(b, "request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "request_duration_seconds_sum %.6f\nrequest_duration_seconds_count %llu\n",
	    (unsigned long long)cum, a->dur_sum, (unsigned long long)cum);
	buf_printf(b, "# HELP testapp_info The test workload's version and pod.\n"
	    "# TYPE testapp_info gauge\ntestapp_info{version=\"%s\",pod=\"%s\"} 1\n",
	    a->version_js, a->pod_js);
	r->status = 200;
	r->ctype = "text/plain; version=0.0.4; charset=utf-8";
}

enum route_arg { ARG_NONE, ARG_OPTIONAL, ARG_REQUIRED };

static const struct route {
	const char *path;
	enum route_arg arg;	/* "/path/ARG" */
	void (*fn)(struct testapp *, struct http_req *, const char *, struct resp *);
} routes[] = {
	{ "/healthz", ARG_NONE, route_healthz },
	{ "/readyz", ARG_NONE, route_readyz },
	{ "/version", ARG_NONE, route_version },
	{ "/status", ARG_REQUIRED, route_status },
	{ "/delay", ARG_REQUIRED, route_delay },
	{ "/echo", ARG_OPTIONAL, route_echo },
	{ "/exit", ARG_REQUIRED, route_exit },
	{ "/env", ARG_NONE, route_env },
	{ "/metrics", ARG_NONE, route_metrics },
};

/* The route for path and its argument ("" when none); / for the rest. */
static const struct route *
route_find(const char *path, const char **arg)
{
	static const struct route root = { "/", ARG_NONE, route_root };
	const struct route *rt;
	size_t i, n;

	*arg = "";
	for (i = 0; i < ARRAY_SIZE(routes); i++) {
		rt = &routes[i];
		n = strlen(rt->path);
		if (strncmp(path, rt->path, n) != 0)
			continue;
		if (path[n] == '\0' && rt->arg != ARG_REQUIRED)
			return rt;
		if (path[n] == '/' && rt->arg != ARG_NONE) {
			*arg = path + n + 1;
			return rt;
		}
	}
	return &root;
}

/* ---- request flow ---------------------------------------------------------- */

static void app_drain_check(struct testapp *);
static void app_exit_soon(struct testapp *, int, const char *);

static void
on_pending_close(uv_handle_t *h)
{
	struct pending *p = h->data;

	free(p->body);
	free(p);
}

static void
pending_finish(struct pending *p, bool aborted)
{
	if (p->done)
		return;
	p->done = true;
	uv_timer_stop(&p->timer);
	app_finish(&app, p->req, &p->resp, p->body, p->len, p->start_ns, aborted);
	uv_close((uv_handle_t *)&p->timer, on_pending_close);
}

static void
on_pending_timer(uv_timer_t *t)
{
	pending_finish(t->data, false);
}

static void
on_pending_abort(struct http_req *req, void *arg)
{
	(void)req;
	pending_finish(arg, true);
}

static void
app_observe(struct testapp *a, int status, uint64_t start_ns, bool aborted)
{
	double s = (double)(uv_hrtime() - start_ns) / 1e9;
	size_t i;

	if (aborted)
		return;		/* nobody got an answer: logged as 499, not counted */
	if (status > 0 && status < TA_NCODES)
		a->codes[status]++;
	for (i = 0; i < ARRAY_SIZE(dur_buckets) && s > dur_buckets[i]; i++)
		;
	a->dur_count[i]++;
	a->dur_sum += s;
}

/* Logs, counts and sends the response. http_respond() may run the handler
 * again for a pipelined request, so all bookkeeping happens before it. */
static void
app_finish(struct testapp *a, struct http_req *req, const struct resp *r,
    const char *body, size_t len, uint64_t start_ns, bool aborted)
{
	BUG_ON(a->inflight == 0);
	if (!a->conf.quiet)
		log_request(a, req, aborted ? 499 : r->status, start_ns);
	app_observe(a, r->status, start_ns, aborted);
	a->inflight--;
	http_add_header(req, "X-Version", a->conf.version);
	if (a->draining || r->exit_code >= 0)
		http_add_header(req, "Connection", "close");
	http_respond(req, r->status, r->ctype, body, len);
	if (r->exit_code >= 0)
		app_exit_soon(a, r->exit_code, "exiting as asked by /exit");
	else if (a->draining)
		app_drain_check(a);
}

static int64_t
app_delay(struct testapp *a, const struct resp *r)
{
	int64_t d = a->conf.latency_ms + r->delay_ms;

	if (a->conf.jitter_ms > 0)
		d += (int64_t)(app_random(a) % (uint64_t)(a->conf.jitter_ms + 1));
	return d;
}

static void
on_request(struct http_req *req, void *arg)
{
	struct testapp *a = arg;
	struct resp r = { 0, NULL, 0, -1 };
	const struct route *rt;
	const char *rarg;
	struct pending *p;
	uint64_t start = uv_hrtime();
	int64_t delay;

	a->requests++;
	a->inflight++;
	buf_reset(&a->scratch);
	rt = route_find(req->path, &rarg);
	rt->fn(a, req, rarg, &r);
	if ((delay = app_delay(a, &r)) <= 0) {
		app_finish(a, req, &r, a->scratch.data ? a->scratch.data : "",
		    a->scratch.len, start, false);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	p->req = req;
	p->resp = r;
	p->start_ns = start;
	p->len = a->scratch.len;
	p->body = xmalloc(p->len + 1);
	memcpy(p->body, a->scratch.data ? a->scratch.data : "", p->len);
	p->timer.data = p;
	uv_timer_init(&a->loop, &p->timer);
	uv_timer_start(&p->timer, on_pending_timer, (uint64_t)delay, 0);
	http_req_on_abort(req, on_pending_abort, p);
}

/* ---- lifecycle ------------------------------------------------------------ */

static void
on_exit_timer(uv_timer_t *t)
{
	struct testapp *a = t->data;

	fflush(stdout);
	exit(a->exit_status);
}

static void
app_exit_soon(struct testapp *a, int status, const char *why)
{
	if (uv_is_active((uv_handle_t *)&a->exit_timer))
		return;
	log_event(a, status ? stderr : stdout, status ? "error" : "info", why,
	    ",\"exit_code\":%d", status);
	a->exit_status = status;
	uv_timer_start(&a->exit_timer, on_exit_timer, TA_EXIT_GRACE_MS, 0);
}

static void
on_crash_timer(uv_timer_t *t)
{
	struct testapp *a = t->data;

	log_event(a, stderr, "error", "crashing as configured by --crash-after",
	    ",\"after_ms\":%lld,\"exit_code\":%d", (long long)a->conf.crash_after_ms,
	    a->conf.exit_code);
	fflush(stdout);
	exit(a->conf.exit_code);
}

static void
close_handle(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Drained: drop idle keep-alive connections and close every handle, so
 * uv_run() in testapp_main returns. */
static void
on_drain_timer(uv_timer_t *t)
{
	struct testapp *a = t->data;

	if (a->inflight > 0)
		return;		/* a keep-alive client sent more; its finish re-checks */
	log_event(a, stdout, "info", "drained, exiting", ",\"requests\":%llu",
	    (unsigned long long)a->requests);
	http_server_stop(a->http);
	a->http = NULL;
	uv_walk(&a->loop, close_handle, NULL);
}

static void
app_drain_check(struct testapp *a)
{
	if (a->inflight == 0 && !uv_is_active((uv_handle_t *)&a->drain_timer))
		uv_timer_start(&a->drain_timer, on_drain_timer, TA_DRAIN_GRACE_MS, 0);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct testapp *a = h->data;
	const char *name = signum == SIGTERM ? "SIGTERM" : "SIGINT";
	char msg[96];

	if (signum == SIGTERM && a->conf.ignore_sigterm) {
		log_event(a, stdout, "info", "received SIGTERM, ignoring it (--ignore-sigterm)",
		    NULL);
		return;
	}
	if (a->draining) {
		log_event(a, stdout, "info", "already draining", ",\"signal\":\"%s\"", name);
		return;
	}
	snprintf(msg, sizeof(msg), "received %s, draining %u requests", name, a->inflight);
	log_event(a, stdout, "info", msg, ",\"in_flight\":%u", a->inflight);
	a->draining = true;
	uv_timer_stop(&a->start_timer);
	if (a->http)
		http_server_unlisten(a->http);
	app_drain_check(a);
}

static void
app_listen(struct testapp *a)
{
	struct http_config cfg;
	int r;

	memset(&cfg, 0, sizeof(cfg));
	cfg.handler = on_request;
	cfg.handler_arg = a;
	r = http_server_start(&a->loop, a->conf.listen_ip, a->conf.port, &cfg, &a->http);
	if (r < 0) {
		log_event(a, stderr, "error", "cannot listen",
		    ",\"address\":\"%s\",\"port\":%d,\"error\":\"%s\"", a->ip_js, a->conf.port,
		    uv_strerror(r));
		fflush(stdout);
		exit(1);
	}
	a->listening = true;
	log_event(a, stdout, "info", "listening",
	    ",\"address\":\"%s\",\"port\":%d,\"version\":\"%s\",\"pod\":\"%s\",\"pid\":%d",
	    a->ip_js, http_server_port(a->http), a->version_js, a->pod_js, (int)getpid());
}

static void
on_start_timer(uv_timer_t *t)
{
	app_listen(t->data);
}

static void
app_init_identity(struct testapp *a)
{
	const char *pod = getenv("POD_NAME"), *ns = getenv("POD_NAMESPACE");
	char host[256];

	if (pod == NULL || *pod == '\0') {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "unknown");
		host[sizeof(host) - 1] = '\0';
		pod = host;
	}
	a->pod_js = js_dup(pod);
	a->ns_js = js_dup(ns ? ns : "");
	a->version_js = js_dup(a->conf.version);
	a->ip_js = js_dup(a->conf.listen_ip);
	a->error_ppm = (uint64_t)(a->conf.error_rate * 1000000 + 0.5);
	a->rng = (uv_hrtime() ^ ((uint64_t)getpid() << 32)) | 1;
}

static void
app_init_handles(struct testapp *a)
{
	uv_timer_t *timers[] = { &a->start_timer, &a->crash_timer, &a->exit_timer,
	    &a->drain_timer };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(timers); i++) {
		uv_timer_init(&a->loop, timers[i]);
		timers[i]->data = a;
	}
	uv_signal_init(&a->loop, &a->sigterm);
	uv_signal_init(&a->loop, &a->sigint);
	a->sigterm.data = a->sigint.data = a;
	uv_signal_start(&a->sigterm, on_signal, SIGTERM);
	uv_signal_start(&a->sigint, on_signal, SIGINT);
	uv_prepare_init(&a->loop, &a->flush);
	a->flush.data = a;
	uv_prepare_start(&a->flush, on_flush);
	uv_unref((uv_handle_t *)&a->flush);
	if (a->conf.crash_after_ms >= 0)
		uv_timer_start(&a->crash_timer, on_crash_timer, (uint64_t)a->conf.crash_after_ms, 0);
}

static void
app_free(struct testapp *a)
{
	free(a->pod_js);
	free(a->ns_js);
	free(a->version_js);
	free(a->ip_js);
	buf_free(&a->scratch);
	buf_free(&a->line);
}

int
testapp_main(int argc, char **argv)
{
	struct testapp *a = &app;

	memset(a, 0, sizeof(*a));
	conf_defaults(&a->conf);
	if (conf_env(&a->conf) < 0 || conf_flags(&a->conf, argc, argv) < 0)
		return 2;
	if (a->conf.help) {
		usage();
		return 0;
	}
	setvbuf(stdout, NULL, _IOFBF, TA_LOG_BUF);
	if (uv_loop_init(&a->loop) < 0)
		return 1;
	a->t0 = uv_now(&a->loop);
	app_init_identity(a);
	app_init_handles(a);
	if (a->conf.startup_delay_ms > 0) {
		log_event(a, stdout, "info", "delaying startup (--startup-delay)",
		    ",\"delay_ms\":%lld", (long long)a->conf.startup_delay_ms);
		uv_timer_start(&a->start_timer, on_start_timer,
		    (uint64_t)a->conf.startup_delay_ms, 0);
	} else
		app_listen(a);
	uv_run(&a->loop, UV_RUN_DEFAULT);
	/* only a drain ends the loop; make sure every handle's close ran */
	uv_walk(&a->loop, close_handle, NULL);
	uv_run(&a->loop, UV_RUN_DEFAULT);
	uv_loop_close(&a->loop);
	fflush(stdout);
	app_free(a);
	return 0;
}

#ifdef V6_TESTAPP_MAIN
/* The static `v6-testapp` program (Makefile): the test workload alone, the
 * entrypoint of its OCI image (build/images/testapp). */
int
main(int argc, char **argv)
{
	return testapp_main(argc, argv);
}
#endif
