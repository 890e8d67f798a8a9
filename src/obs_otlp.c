/* obs_otlp.c — OTLP/HTTP trace export (protobuf or JSON, see
 * obs_otlp.h): the span encoder, and an exporter whose queue lives on the
 * loop thread (no locks on the data path) and whose requests run one at a
 * time in libuv's thread pool through libcurl, so a collector that hangs
 * costs one pool thread for at most the timeout and never the loop.
 * Memory is bounded by the queue's length and OTLP_VALUE_MAX per string. */
#include "obs_otlp.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define OTLP_MAX_ATTEMPTS	5	/* a batch is dropped after this many failures */
#define OTLP_BACKOFF_MS		1000	/* first retry; doubles */
#define OTLP_BACKOFF_MAX_MS	30000	/* also the cap on Retry-After */

/* ---- encoding --------------------------------------------------------------- */

/* Appends without a call when it fits: a sampled span is ~100 appends. */
static inline void
put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n < b->cap) {
		memcpy(b->data + b->len, s, n);
		b->len += n;
		b->data[b->len] = '\0';
	} else {
		buf_append(b, s, n);
	}
}

#define PUT_LIT(b, lit) put((b), (lit), sizeof(lit) - 1)

static inline void
putch(struct buf *b, char c)
{
	put(b, &c, 1);
}

static inline void
putstr(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

void
otlp_hex(char *out, uint64_t v, int digits)
{
	for (int i = digits - 1; i >= 0; i--, v >>= 4)
		out[i] = "0123456789abcdef"[v & 15];
}

uint64_t
otlp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A JSON string of s[0, n): escaped, valid UTF-8, at most OTLP_VALUE_MAX
 * bytes (cut before a continuation byte). */
static void
put_jstr(struct buf *b, const char *s, size_t n)
{
	char *fixed = NULL;
	size_t i, run = 0;

	if (n > OTLP_VALUE_MAX) {
		n = OTLP_VALUE_MAX;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	for (i = 0; i < n && !((unsigned char)s[i] & 0x80); i++)
		;
	if (i < n && !utf8_valid(s, n)) {
		char *tmp = xstrndup(s, n);
		fixed = utf8_sanitize(tmp);
		free(tmp);
		s = fixed;
		n = strlen(fixed);
	}
	putch(b, '"');
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(b, s + run, i - run);
		run = i + 1;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(b, esc, 2);
		} else {
			snprintf(esc, sizeof esc, "\\u%04x", c);
			put(b, esc, 6);
		}
	}
	put(b, s + run, n - run);
	putch(b, '"');
	free(fixed);
}

/* The decimal digits of v (no printf on the path of every sampled span). */
static void
put_dec(struct buf *b, uint64_t v, bool neg)
{
	char tmp[24];
	int i = sizeof tmp;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (neg)
		tmp[--i] = '-';
	put(b, tmp + i, sizeof tmp - (size_t)i);
}

/* "key":"decimal" — 64-bit integers are strings in the JSON mapping. */
static void
put_u64(struct buf *b, const char *key, uint64_t v)
{
	putch(b, '"');
	putstr(b, key);
	PUT_LIT(b, "\":\"");
	put_dec(b, v, false);
	putch(b, '"');
}

/* A comma unless the list or object just opened. */
static void
sep(struct buf *b)
{
	if (b->len && b->data[b->len - 1] != '[' && b->data[b->len - 1] != '{')
		putch(b, ',');
}

void
otlp_span_begin(struct buf *b, const struct otlp_ids *ids, const char *trace_state,
    const char *name, int kind, uint64_t start_ns, uint64_t end_ns)
{
	char id[33];

	sep(b);
	PUT_LIT(b, "{\"traceId\":\"");
	otlp_hex(id, ids->trace_hi, 16);
	otlp_hex(id + 16, ids->trace_lo, 16);
	put(b, id, 32);
	PUT_LIT(b, "\",\"spanId\":\"");
	otlp_hex(id, ids->span_id, 16);
	put(b, id, 16);
	putch(b, '"');
	if (ids->parent_id) {
		PUT_LIT(b, ",\"parentSpanId\":\"");
		otlp_hex(id, ids->parent_id, 16);
		put(b, id, 16);
		putch(b, '"');
	}
	if (trace_state && *trace_state) {
		PUT_LIT(b, ",\"traceState\":");
		put_jstr(b, trace_state, strlen(trace_state));
	}
	PUT_LIT(b, ",\"name\":");
	put_jstr(b, name, strlen(name));
	PUT_LIT(b, ",\"kind\":");
	put_dec(b, (uint64_t)kind, false);
	putch(b, ',');
	put_u64(b, "startTimeUnixNano", start_ns);
	putch(b, ',');
	put_u64(b, "endTimeUnixNano", end_ns < start_ns ? start_ns : end_ns);
	PUT_LIT(b, ",\"attributes\":[");
}

static void
attr_key(struct buf *b, const char *key)
{
	sep(b);
	PUT_LIT(b, "{\"key\":\"");
	putstr(b, key);		/* keys are V6's own constants */
	PUT_LIT(b, "\",\"value\":{");
}

void
otlp_attr_str(struct buf *b, const char *key, const char *v, size_t n)
{
	attr_key(b, key);
	PUT_LIT(b, "\"stringValue\":");
	put_jstr(b, v, n);
	PUT_LIT(b, "}}");
}

void
otlp_attr_cstr(struct buf *b, const char *key, const char *v)
{
	otlp_attr_str(b, key, v, strlen(v));
}

void
otlp_attr_int(struct buf *b, const char *key, int64_t v)
{
	attr_key(b, key);
	PUT_LIT(b, "\"intValue\":\"");
	put_dec(b, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0);
	PUT_LIT(b, "\"}}");
}

void
otlp_attr_double(struct buf *b, const char *key, double v)
{
	attr_key(b, key);
	buf_printf(b, "\"doubleValue\":%.17g}}", v);
}

void
otlp_span_events(struct buf *b)
{
	PUT_LIT(b, "],\"events\":[");
}

void
otlp_event_begin(struct buf *b, const char *name, uint64_t time_ns)
{
	sep(b);
	putch(b, '{');
	put_u64(b, "timeUnixNano", time_ns);
	PUT_LIT(b, ",\"name\":");
	put_jstr(b, name, strlen(name));
	PUT_LIT(b, ",\"attributes\":[");
}

void
otlp_event_end(struct buf *b)
{
	PUT_LIT(b, "]}");
}

void
otlp_span_end(struct buf *b, int status_code, const char *status_msg, bool with_events)
{
	(void)with_events;	/* both lists end with ']' */
	PUT_LIT(b, "],\"status\":{");
	if (status_msg && *status_msg) {
		PUT_LIT(b, "\"message\":");
		put_jstr(b, status_msg, strlen(status_msg));
		putch(b, ',');
	}
	PUT_LIT(b, "\"code\":");
	put_dec(b, (uint64_t)status_code, false);
	PUT_LIT(b, "}}");
}

/* ---- configuration ------------------------------------------------------------ */

char *
otlp_traces_url(const char *endpoint)
{
	size_t n = strlen(endpoint);

	if (str_has_suffix(endpoint, "/v1/traces"))
		return xstrdup(endpoint);
	while (n > 0 && endpoint[n - 1] == '/')
		n--;
	return xasprintf("%.*s/v1/traces", (int)n, endpoint);
}

char *
otlp_endpoint_from(const char *flag)
{
	const char *v;

	if (flag && *flag)
		return otlp_traces_url(flag);
	if ((v = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) && *v)
		return xstrdup(v);
	if ((v = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) && *v)
		return otlp_traces_url(v);
	return NULL;
}

int
otlp_ratio_parse(const char *s, double *out)
{
	char *end;
	double v;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	v = strtod(s, &end);
	if (*end || !(v >= 0 && v <= 1))
		return -EINVAL;
	*out = v;
	return 0;
}

static unsigned
env_uint(const char *name, unsigned def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long x;

	if (v == NULL || *v == '\0')
		return def;
	x = strtoul(v, &end, 10);
	return *end || x == 0 || x > 1000000000ul ? def : (unsigned)x;
}

/* http/protobuf unless the configuration or the SDK's variables say
 * http/json. */
static bool
protocol_is_protobuf(const char *cfg)
{
	const char *p = cfg && *cfg ? cfg : getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
	if (!p || !*p)
		p = getenv("OTEL_EXPORTER_OTLP_PROTOCOL");
	if (!p || !*p || strcmp(p, "http/protobuf") == 0)
		return true;
	if (strcmp(p, "http/json") == 0)
		return false;
	log_warn("otlp", "OTLP protocol %s is not supported: using http/protobuf", p);
	return true;
}

/* ---- the exporter --------------------------------------------------------------- */

struct item {
	struct item *next;
	uint32_t rlen, slen;
	char data[];			/* resource, then span */
};

struct otlp_exporter {
	uv_loop_t *loop;
	char *url, *scope;
	unsigned max_queue, max_batch, delay_ms, timeout_ms;
	struct item *head, **tailp;	/* waiting */
	unsigned n;
	struct item *batch;		/* taken for a request (in flight or to retry) */
	unsigned nbatch;
	unsigned attempt;		/* failed tries of batch */
	uv_timer_t timer;		/* batch delay, then retry back-off */
	bool timer_retry;		/* the timer waits to retry batch */
	uv_work_t work;
	bool busy;			/* work queued or running */
	CURL *curl;			/* used by one request at a time */
	struct buf body;		/* batch encoded (kept for retries) */
	bool protobuf;			/* http/protobuf: body transcoded into pb */
	bool pb_ok;			/* pb holds this batch */
	struct buf pb;
	/* results of the request, written by the pool thread */
	long status;
	CURLcode crc;
	long retry_after_s;
	atomic_bool stopping;
	bool *done;			/* set once freed after otlp_stop */
	int closing;			/* what otlp_stop still waits for */
	struct otlp_stats st;
};

static void
items_free(struct item *it)
{
	while (it) {
		struct item *next = it->next;
		free(it);
		it = next;
	}
}

/* Groups the batch by resource into one ExportTraceServiceRequest. */
static void
encode_batch(struct otlp_exporter *x)
{
	struct buf *b = &x->body;
	struct item **v = xcalloc(x->nbatch, sizeof *v);
	bool *used = xcalloc(x->nbatch, sizeof *used);
	unsigned i, j, k = 0;

	for (struct item *it = x->batch; it; it = it->next)
		v[k++] = it;
	buf_reset(b);
	buf_puts(b, "{\"resourceSpans\":[");
	for (i = 0; i < k; i++) {
		if (used[i])
			continue;
		sep(b);
		buf_puts(b, "{\"resource\":{\"attributes\":");
		buf_append(b, v[i]->data, v[i]->rlen);
		buf_puts(b, "},\"scopeSpans\":[{\"scope\":{\"name\":");
		put_jstr(b, x->scope, strlen(x->scope));
		buf_puts(b, ",\"version\":\"" V6_VERSION "\"},\"spans\":[");
		for (j = i; j < k; j++) {
			if (used[j] || v[j]->rlen != v[i]->rlen ||
			    memcmp(v[j]->data, v[i]->data, v[i]->rlen) != 0)
				continue;
			used[j] = true;
			sep(b);
			buf_append(b, v[j]->data + v[j]->rlen, v[j]->slen);
		}
		buf_puts(b, "]}]}");
	}
	buf_puts(b, "]}");
	free(v);
	free(used);
}

static size_t
on_curl_body(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;	/* the response (ExportTraceServiceResponse) is not needed */
}

static size_t
on_curl_header(char *p, size_t size, size_t n, void *arg)
{
	struct otlp_exporter *x = arg;
	size_t len = size * n;
	char line[128];

	if (len > 12 && len < sizeof line && strncasecmp(p, "retry-after:", 12) == 0) {
		memcpy(line, p + 12, len - 12);
		line[len - 12] = '\0';
		x->retry_after_s = strtol(line, NULL, 10);	/* an HTTP date: the default */
	}
	return len;
}

static int
on_curl_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct otlp_exporter *x = arg;

	(void)a, (void)b, (void)c, (void)d;
	return atomic_load(&x->stopping) ? 1 : 0;
}

/* Pool thread: encode (first try only) and POST the batch. */
static void
work_post(uv_work_t *w)
{
	struct otlp_exporter *x = w->data;
	struct curl_slist *hdrs = NULL;
	CURL *c;

	if (x->attempt == 0) {
		encode_batch(x);
		/* a batch the transcoder refuses (a NaN attribute, say) goes as
		 * JSON, which every OTLP/HTTP receiver also takes */
		x->pb_ok = x->protobuf && otlp_pb_from_json(x->body.data, x->body.len, &x->pb) == 0;
	}
	if (x->curl == NULL)
		x->curl = curl_easy_init();
	c = x->curl;
	x->status = 0;
	x->retry_after_s = -1;
	if (c == NULL) {
		x->crc = CURLE_FAILED_INIT;
		return;
	}
	curl_easy_reset(c);
	const struct buf *body = x->pb_ok ? &x->pb : &x->body;
	hdrs = curl_slist_append(hdrs, x->pb_ok ? "Content-Type: application/x-protobuf" :
	    "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, x->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data ? body->data : "");
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "v6/" V6_VERSION " OTLP-exporter");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)x->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)x->timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_curl_body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_curl_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_curl_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	x->crc = curl_easy_perform(c);
	if (x->crc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->status);
	curl_slist_free_all(hdrs);
}

static void on_timer(uv_timer_t *t);
static void kick(struct otlp_exporter *x);

static void
finish_free(struct otlp_exporter *x)
{
	if (--x->closing > 0)
		return;
	items_free(x->head);
	items_free(x->batch);
	buf_free(&x->body);
	buf_free(&x->pb);
	if (x->curl)
		curl_easy_cleanup(x->curl);
	if (x->done)
		*x->done = true;
	free(x->url);
	free(x->scope);
	free(x);
}

static void
batch_drop(struct otlp_exporter *x, bool sent)
{
	if (sent)
		x->st.exported += x->nbatch;
	else
		x->st.dropped_failed += x->nbatch;
	items_free(x->batch);
	x->batch = NULL;
	x->nbatch = 0;
	x->attempt = 0;
}

/* What is queued goes now when a batch is full, else after the delay. */
static void
schedule(struct otlp_exporter *x)
{
	if (x->busy || x->batch || x->n == 0)
		return;
	if (x->n >= x->max_batch) {
		kick(x);
		return;
	}
	if (!uv_is_active((uv_handle_t *)&x->timer)) {
		x->timer_retry = false;
		uv_timer_start(&x->timer, on_timer, x->delay_ms, 0);
	}
}

static bool
retryable(const struct otlp_exporter *x)
{
	if (x->crc != CURLE_OK)
		return true;	/* connection refused, reset, timed out */
	return x->status == 429 || x->status == 502 || x->status == 503 || x->status == 504;
}

static void
after_post(uv_work_t *w, int status)
{
	struct otlp_exporter *x = w->data;
	uint64_t ms;

	(void)status;
	x->busy = false;
	if (x->closing) {
		finish_free(x);
		return;
	}
	x->st.requests++;
	if (x->crc == CURLE_OK && x->status >= 200 && x->status < 300) {
		batch_drop(x, true);
	} else if (retryable(x) && x->attempt + 1 < OTLP_MAX_ATTEMPTS) {
		ms = (uint64_t)OTLP_BACKOFF_MS << x->attempt;
		ms += ms * (util_random32() % 256) / 1024;	/* jitter, up to +25 % */
		if (x->retry_after_s >= 0)
			ms = (uint64_t)x->retry_after_s * 1000;
		if (ms > OTLP_BACKOFF_MAX_MS)
			ms = OTLP_BACKOFF_MAX_MS;
		x->attempt++;
		x->st.retries++;
		x->timer_retry = true;
		uv_timer_stop(&x->timer);
		uv_timer_start(&x->timer, on_timer, ms, 0);
		return;
	} else {
		if (x->crc != CURLE_OK)
			fprintf(stderr, "otlp: export to %s failed: %s; %u spans dropped\n", x->url,
			    curl_easy_strerror(x->crc), x->nbatch);
		batch_drop(x, false);
	}
	schedule(x);
}

static void
post(struct otlp_exporter *x)
{
	x->busy = true;
	if (uv_queue_work(x->loop, &x->work, work_post, after_post) < 0) {
		x->busy = false;
		batch_drop(x, false);
	}
}

/* Takes up to max_batch queued spans and posts them. */
static void
kick(struct otlp_exporter *x)
{
	struct item **pp = &x->head;

	if (x->busy || x->batch || x->n == 0)
		return;
	uv_timer_stop(&x->timer);
	x->batch = x->head;
	while (*pp && x->nbatch < x->max_batch) {
		pp = &(*pp)->next;
		x->nbatch++;
	}
	x->head = *pp;
	*pp = NULL;
	x->n -= x->nbatch;
	if (x->head == NULL)
		x->tailp = &x->head;
	x->attempt = 0;
	post(x);
}

static void
on_timer(uv_timer_t *t)
{
	struct otlp_exporter *x = t->data;

	if (x->timer_retry && x->batch && !x->busy) {
		x->timer_retry = false;
		post(x);
		return;
	}
	kick(x);
}

int
otlp_start(uv_loop_t *loop, const struct otlp_config *cfg, struct otlp_exporter **out)
{
	struct otlp_exporter *x;

	if (cfg->endpoint == NULL || *cfg->endpoint == '\0')
		return -EINVAL;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	x = xcalloc(1, sizeof *x);
	x->loop = loop;
	x->url = otlp_traces_url(cfg->endpoint);
	x->scope = xstrdup(cfg->scope ? cfg->scope : "v6");
	x->max_queue = cfg->max_queue ? cfg->max_queue : env_uint("OTEL_BSP_MAX_QUEUE_SIZE", 2048);
	x->max_batch = cfg->max_batch ? cfg->max_batch :
	    env_uint("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512);
	if (x->max_batch > x->max_queue)
		x->max_batch = x->max_queue;
	x->delay_ms = cfg->delay_ms ? cfg->delay_ms : env_uint("OTEL_BSP_SCHEDULE_DELAY", 5000);
	x->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms :
	    env_uint("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
	    env_uint("OTEL_EXPORTER_OTLP_TIMEOUT", 10000));
	x->protobuf = protocol_is_protobuf(cfg->protocol);
	x->tailp = &x->head;
	x->work.data = x;
	atomic_init(&x->stopping, false);
	uv_timer_init(loop, &x->timer);
	x->timer.data = x;
	uv_unref((uv_handle_t *)&x->timer);
	*out = x;
	return 0;
}

bool
otlp_add(struct otlp_exporter *x, const char *resource, size_t rlen, const char *span,
    size_t slen)
{
	struct item *it;

	if (x->n >= x->max_queue) {
		x->st.dropped_full++;
		return false;
	}
	it = xmalloc(sizeof *it + rlen + slen);
	it->next = NULL;
	it->rlen = (uint32_t)rlen;
	it->slen = (uint32_t)slen;
	memcpy(it->data, resource, rlen);
	memcpy(it->data + rlen, span, slen);
	*x->tailp = it;
	x->tailp = &it->next;
	x->n++;
	x->st.queued++;
	schedule(x);
	return true;
}

void
otlp_get_stats(const struct otlp_exporter *x, struct otlp_stats *out)
{
	*out = x->st;
	out->queue_len = x->n + x->nbatch;
}

void
otlp_flush(struct otlp_exporter *x)
{
	kick(x);
}

static void
on_timer_closed(uv_handle_t *h)
{
	finish_free(h->data);
}

void
otlp_stop(struct otlp_exporter *x, bool *done)
{
	*done = false;
	x->done = done;
	atomic_store(&x->stopping, true);
	x->closing = 1 + (x->busy ? 1 : 0);
	uv_close((uv_handle_t *)&x->timer, on_timer_closed);
}

static void
on_tick(uv_timer_t *t)
{
	(void)t;	/* only wakes uv_run(UV_RUN_ONCE) up */
}

void
otlp_stop_wait(struct otlp_exporter *x, uv_loop_t *loop, unsigned flush_ms)
{
	uint64_t deadline = uv_now(loop) + flush_ms;
	bool done = true;
	uv_timer_t tick;

	if (x == NULL)
		return;
	uv_timer_init(loop, &tick);
	uv_timer_start(&tick, on_tick, 20, 20);
	/* flush: every queued span, a batch at a time, a waiting retry at once */
	while ((x->busy || x->batch || x->n) && uv_now(loop) < deadline) {
		if (!x->busy && x->batch) {
			uv_timer_stop(&x->timer);
			x->timer_retry = false;
			post(x);
		} else if (!x->busy) {
			kick(x);
		}
		uv_run(loop, UV_RUN_ONCE);
	}
	otlp_stop(x, &done);
	for (int i = 0; i < 500 && !done; i++)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}
