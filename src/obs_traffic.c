/* obs_traffic.c — the server's view of live traffic: a timer scrapes the
 * proxy's admin /metrics (a GET by http_client.c), keeps the last two
 * samples, and turns their difference into requests/s, error rate and
 * latency per Service and revision, served as traffic.v6.dev and read by
 * the controllers. Started and stopped by server.c next to the proxy feed;
 * it only reads: an idle server writes nothing. */
#include "obs_traffic.h"
#include "api.h"
#include "http.h"
#include "log.h"
#include "proxy.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FETCH_MAX_BYTES (8u << 20)
#define FETCH_TIMEOUT_MS 2000
#define GROUP "traffic.v6.dev"
#define GROUP_VERSION GROUP "/v1alpha1"

/* ---- the Prometheus text ------------------------------------------------ */

struct labels {
	char service[256], route[256], revision[128], code[16], le[32], ns[256], pod[256];
};

static const struct {
	const char *name;
	size_t off;
	size_t len;
} label_slots[] = {
	{ "service", offsetof(struct labels, service), sizeof(((struct labels *)0)->service) },
	{ "route", offsetof(struct labels, route), sizeof(((struct labels *)0)->route) },
	{ "revision", offsetof(struct labels, revision), sizeof(((struct labels *)0)->revision) },
	{ "code", offsetof(struct labels, code), sizeof(((struct labels *)0)->code) },
	{ "le", offsetof(struct labels, le), sizeof(((struct labels *)0)->le) },
	{ "namespace", offsetof(struct labels, ns), sizeof(((struct labels *)0)->ns) },
	{ "pod", offsetof(struct labels, pod), sizeof(((struct labels *)0)->pod) },
};

static void
label_store(struct labels *l, const char *name, size_t nlen, const char *val, size_t vlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(label_slots); i++) {
		if (strlen(label_slots[i].name) != nlen ||
		    memcmp(label_slots[i].name, name, nlen) != 0)
			continue;
		char *dst = (char *)l + label_slots[i].off;
		size_t n = vlen < label_slots[i].len - 1 ? vlen : label_slots[i].len - 1;
		memcpy(dst, val, n);
		dst[n] = '\0';
	}
}

/* Reads {k="v",...} at *p (just past the '{') up to the '}'. Returns 0 or
 * -EINVAL. Escapes (\\, \", \n) are undone. */
static int
parse_labels(const char **p, const char *end, struct labels *l)
{
	const char *s = *p;
	char val[512];

	for (;;) {
		while (s < end && (*s == ' ' || *s == ','))
			s++;
		if (s < end && *s == '}') {
			*p = s + 1;
			return 0;
		}
		const char *name = s;
		while (s < end && *s != '=' && *s != '}' && *s != '\n')
			s++;
		if (s + 1 >= end || *s != '=' || s[1] != '"')
			return -EINVAL;
		size_t nlen = (size_t)(s - name), vlen = 0;
		for (s += 2; s < end && *s != '"' && *s != '\n'; s++) {
			char c = *s;
			if (c == '\\' && s + 1 < end) {
				c = *++s;
				if (c == 'n')
					c = '\n';
			}
			if (vlen < sizeof val)
				val[vlen++] = c;
		}
		if (s >= end || *s != '"')
			return -EINVAL;
		s++;
		label_store(l, name, nlen, val, vlen);
	}
}

static struct obs_series *
series_find(struct obs_series *arr, size_t n, const char *service, const char *revision)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(arr[i].service, service) == 0 && strcmp(arr[i].revision, revision) == 0)
			return &arr[i];
	return NULL;
}

static struct obs_series *
series_get(struct obs_series **arr, size_t *n, const char *service, const char *revision)
{
	struct obs_series *s = series_find(*arr, *n, service, revision);

	if (s)
		return s;
	*arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
	s = &(*arr)[(*n)++];
	memset(s, 0, sizeof(*s));
	s->service = xstrdup(service);
	s->revision = xstrdup(revision);
	return s;
}

/* Adds a cumulative bucket count, keeping le[] ascending (routes of one
 * series share their bounds; their counts add up). */
static void
bucket_add(struct obs_series *s, double le, uint64_t v)
{
	size_t i = 0;

	while (i < s->nbuckets && s->le[i] < le)
		i++;
	if (i < s->nbuckets && s->le[i] == le) {
		s->cum[i] += v;
		return;
	}
	if (s->nbuckets == OBS_MAX_BUCKETS)
		return;
	memmove(&s->le[i + 1], &s->le[i], (s->nbuckets - i) * sizeof(s->le[0]));
	memmove(&s->cum[i + 1], &s->cum[i], (s->nbuckets - i) * sizeof(s->cum[0]));
	s->le[i] = le;
	s->cum[i] = v;
	s->nbuckets++;
}

enum metric { M_REQUESTS, M_BUCKET, M_SUM, M_COUNT };

static const struct {
	const char *name;
	enum metric m;
	bool pod;		/* labelled by namespace and pod */
} metrics[] = {
	{ "v6_proxy_requests_total", M_REQUESTS, false },
	{ "v6_proxy_request_duration_seconds_bucket", M_BUCKET, false },
	{ "v6_proxy_request_duration_seconds_sum", M_SUM, false },
	{ "v6_proxy_request_duration_seconds_count", M_COUNT, false },
	{ "v6_proxy_pod_requests_total", M_REQUESTS, true },
	{ "v6_proxy_pod_request_duration_seconds_bucket", M_BUCKET, true },
	{ "v6_proxy_pod_request_duration_seconds_sum", M_SUM, true },
	{ "v6_proxy_pod_request_duration_seconds_count", M_COUNT, true },
};

static void
sample_add(struct obs_sample *out, enum metric m, bool pod, const struct labels *l, double v)
{
	struct obs_series *s;
	uint64_t n = v > 0 && isfinite(v) ? (uint64_t)(v + 0.5) : 0;
	char key[520];

	if (pod) {
		if (l->ns[0] == '\0' || l->pod[0] == '\0')
			return;
		snprintf(key, sizeof(key), "%s/%s", l->ns, l->pod);
		s = series_get(&out->pods, &out->npods, key, "");
	} else if (l->service[0] == '\0') {
		return;
	} else {
		s = series_get(&out->series, &out->n, l->service, l->revision);
	}
	switch (m) {
	case M_REQUESTS:
		s->requests += n;
		if (strcmp(l->code, "5xx") == 0)
			s->status_5xx += n;
		break;
	case M_BUCKET:
		if (l->le[0])
			bucket_add(s, strtod(l->le, NULL), n);
		break;
	case M_SUM:
		s->sum_s += isfinite(v) ? v : 0;
		break;
	case M_COUNT:
		s->count += n;
		break;
	}
}

static void
parse_line(struct obs_sample *out, const char *s, const char *end)
{
	struct labels l;
	const char *name = s;
	char num[64];

	while (s < end && *s != '{' && *s != ' ')
		s++;
	size_t nlen = (size_t)(s - name);
	for (size_t i = 0; i < ARRAY_SIZE(metrics); i++) {
		if (strlen(metrics[i].name) != nlen || memcmp(metrics[i].name, name, nlen) != 0)
			continue;
		memset(&l, 0, sizeof(l));
		if (s < end && *s == '{') {
			s++;
			if (parse_labels(&s, end, &l) < 0)
				return;
		}
		while (s < end && *s == ' ')
			s++;
		size_t vlen = 0;
		while (s < end && *s != ' ' && vlen < sizeof(num) - 1)
			num[vlen++] = *s++;
		num[vlen] = '\0';
		char *e;
		double v = strtod(num, &e);
		if (vlen == 0 || *e != '\0')
			return;
		sample_add(out, metrics[i].m, metrics[i].pod, &l, v);
		return;
	}
}

size_t
obs_sample_parse(const char *text, size_t len, struct obs_sample *out)
{
	const char *p = text, *end = text + len;

	memset(out, 0, sizeof(*out));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		const char *e = eol;
		if (e > p && e[-1] == '\r')
			e--;
		if (e > p && *p != '#')
			parse_line(out, p, e);
		p = nl ? nl + 1 : end;
	}
	return out->n;
}

static void
series_free(struct obs_series *arr, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(arr[i].service);
		free(arr[i].revision);
	}
	free(arr);
}

void
obs_sample_free(struct obs_sample *s)
{
	series_free(s->series, s->n);
	series_free(s->pods, s->npods);
	memset(s, 0, sizeof(*s));
}

const struct obs_series *
obs_sample_find(const struct obs_sample *s, const char *service, const char *revision)
{
	return s ? series_find(s->series, s->n, service, revision) : NULL;
}

/* ---- rates and quantiles ---------------------------------------------- */

double
obs_histogram_quantile(double q, const double *le, const uint64_t *cum, size_t n)
{
	if (n == 0 || cum[n - 1] == 0 || q < 0 || q > 1)
		return 0;
	double rank = q * (double)cum[n - 1];
	size_t b = 0;
	while (b < n - 1 && (double)cum[b] < rank)
		b++;
	if (isinf(le[b]))
		return b > 0 ? le[b - 1] : 0;
	double start = b > 0 ? le[b - 1] : 0, below = b > 0 ? (double)cum[b - 1] : 0;
	double inside = (double)cum[b] - below;
	if (b == 0 && le[0] <= 0)
		return le[0];
	if (inside <= 0)
		return le[b];
	return start + (le[b] - start) * (rank - below) / inside;
}

/* The window's totals, summed over the matching series. */
struct window {
	uint64_t requests, errors, count;
	double sum_s;
	size_t nbuckets;
	double le[OBS_MAX_BUCKETS];
	uint64_t cum[OBS_MAX_BUCKETS];
};

static uint64_t
delta(uint64_t now, uint64_t before)
{
	return now >= before ? now - before : now;
}

static void
window_add(struct window *w, const struct obs_series *now, const struct obs_series *before)
{
	static const struct obs_series zero;

	if (before == NULL || now->requests < before->requests || now->count < before->count)
		before = &zero;		/* new, or the proxy restarted */
	w->requests += delta(now->requests, before->requests);
	w->errors += delta(now->status_5xx, before->status_5xx);
	w->count += delta(now->count, before->count);
	w->sum_s += now->sum_s - before->sum_s > 0 ? now->sum_s - before->sum_s : 0;
	for (size_t i = 0; i < now->nbuckets; i++) {
		uint64_t prev = 0;
		for (size_t j = 0; j < before->nbuckets; j++)
			if (before->le[j] == now->le[i])
				prev = before->cum[j];
		size_t k = 0;
		while (k < w->nbuckets && w->le[k] != now->le[i])
			k++;
		if (k == w->nbuckets) {
			if (k == OBS_MAX_BUCKETS)
				continue;
			w->le[w->nbuckets] = now->le[i];
			w->cum[w->nbuckets++] = 0;
		}
		w->cum[k] += delta(now->cum[i], prev);
	}
}

/* Sorts the merged bounds (series normally share theirs: then a no-op). */
static void
window_sort(struct window *w)
{
	for (size_t i = 1; i < w->nbuckets; i++)
		for (size_t j = i; j > 0 && w->le[j - 1] > w->le[j]; j--) {
			double l = w->le[j];
			uint64_t c = w->cum[j];
			w->le[j] = w->le[j - 1];
			w->cum[j] = w->cum[j - 1];
			w->le[j - 1] = l;
			w->cum[j - 1] = c;
		}
}

int
obs_traffic_compute(const struct obs_sample *before, const struct obs_sample *now,
    const char *service, const char *revision, struct obs_traffic_stats *out)
{
	struct window w;
	bool found = false;

	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	for (size_t i = 0; now && i < now->n; i++) {
		const struct obs_series *s = &now->series[i];
		if ((service && strcmp(s->service, service) != 0) ||
		    (revision && strcmp(s->revision, revision) != 0))
			continue;
		found = true;
		window_add(&w, s, obs_sample_find(before, s->service, s->revision));
	}
	if (!found)
		return -ENOENT;
	window_sort(&w);
	out->success_rate = 1;
	if (before == NULL || now->mono_ms <= before->mono_ms)
		return 0;
	out->window_s = (double)(now->mono_ms - before->mono_ms) / 1000;
	out->requests = w.requests;
	out->rps = (double)w.requests / out->window_s;
	out->error_rate = w.requests ? (double)w.errors / (double)w.requests : 0;
	out->success_rate = 1 - out->error_rate;
	out->avg_ms = w.count ? 1000 * w.sum_s / (double)w.count : 0;
	out->p99_ms = 1000 * obs_histogram_quantile(0.99, w.le, w.cum, w.nbuckets);
	return 0;
}

/* ---- the scrape --------------------------------------------------------- */

struct obs_traffic {
	uv_loop_t *loop;
	struct api *api;
	struct proxy_feed *feed;
	uv_timer_t timer;
	struct http_client_req *inflight;
	struct obs_sample prev, cur;	/* cur.n == 0 && !have_cur: none yet */
	bool have_prev, have_cur;
	bool failing;			/* the last scrape failed (logged once) */
	unsigned period_ms;
	struct obs_history hist;	/* for queries over a window (canary analysis) */
};

static void sample_taken(struct obs_traffic *t, int rc, const char *body, size_t len);

static void
fetch_done(int rc, const struct http_response *res, void *arg)
{
	struct obs_traffic *t = arg;

	t->inflight = NULL;
	if (rc == 0 && res->status != 200)
		rc = -EPROTO;
	sample_taken(t, rc, res->body, res->body_len);
}

int
obs_parse_addr(const char *s, struct sockaddr_storage *sa)
{
	const char *colon = strrchr(s, ':');
	char host[64];

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	int port = atoi(colon + 1);
	size_t hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)hl - 2, s + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)hl, s);
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)sa) == 0 ||
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)sa) == 0)
		return 0;
	return -EINVAL;
}

static int
fetch_start(struct obs_traffic *t, const char *addr)
{
	struct sockaddr_storage sa;
	int rc;

	if ((rc = obs_parse_addr(addr, &sa)) < 0)
		return rc;
	struct http_client_opts o = { .path = "/metrics", .host = "proxy",
		.timeout_ms = FETCH_TIMEOUT_MS, .max_body = FETCH_MAX_BYTES };
	return http_client_request(t->loop, (struct sockaddr *)&sa, &o, fetch_done, t,
	    &t->inflight);
}

/* ---- the sampler ------------------------------------------------------ */

static struct obs_series *
series_copy(const struct obs_series *src, size_t n)
{
	struct obs_series *dst = xcalloc(n ? n : 1, sizeof(*dst));

	for (size_t i = 0; i < n; i++) {
		dst[i] = src[i];
		dst[i].service = xstrdup(src[i].service);
		dst[i].revision = xstrdup(src[i].revision);
	}
	return dst;
}

static void
sample_copy(struct obs_sample *dst, const struct obs_sample *src)
{
	*dst = *src;
	dst->series = series_copy(src->series, src->n);
	dst->pods = series_copy(src->pods, src->npods);
}

void
obs_history_push(struct obs_history *h, const struct obs_sample *s)
{
	if (h->n == OBS_TRAFFIC_HISTORY) {
		obs_sample_free(&h->s[h->head]);
		sample_copy(&h->s[h->head], s);
		h->head = (h->head + 1) % OBS_TRAFFIC_HISTORY;
		return;
	}
	sample_copy(&h->s[(h->head + h->n) % OBS_TRAFFIC_HISTORY], s);
	h->n++;
}

int
obs_history_window(const struct obs_history *h, int64_t window_ms,
    const struct obs_sample **before, const struct obs_sample **now)
{
	if (h->n < 2)
		return -EAGAIN;
	*now = &h->s[(h->head + h->n - 1) % OBS_TRAFFIC_HISTORY];
	*before = &h->s[h->head];
	for (size_t i = h->n - 1; i-- > 0;) {
		const struct obs_sample *s = &h->s[(h->head + i) % OBS_TRAFFIC_HISTORY];
		if ((*now)->mono_ms - s->mono_ms >= window_ms) {
			*before = s;
			break;
		}
	}
	return 0;
}

size_t
obs_history_series(const struct obs_history *h)
{
	size_t n = 0;

	for (size_t i = 0; i < h->n; i++)
		n += h->s[(h->head + i) % OBS_TRAFFIC_HISTORY].n +
		    h->s[(h->head + i) % OBS_TRAFFIC_HISTORY].npods;
	return n;
}

void
obs_history_free(struct obs_history *h)
{
	for (size_t i = 0; i < h->n; i++)
		obs_sample_free(&h->s[(h->head + i) % OBS_TRAFFIC_HISTORY]);
	h->n = h->head = 0;
}

static void
sample_taken(struct obs_traffic *t, int rc, const char *body, size_t len)
{
	struct obs_sample s;

	if (rc < 0) {
		if (!t->failing)
			log_warn("traffic", "scraping the proxy's metrics: %s", strerror(-rc));
		t->failing = true;
		return;
	}
	t->failing = false;
	obs_sample_parse(body, len, &s);
	s.mono_ms = time_mono_ms();
	obs_sample_free(&t->prev);
	t->prev = t->cur;
	t->have_prev = t->have_cur;
	t->cur = s;
	t->have_cur = true;
	obs_history_push(&t->hist, &s);
}

static void
on_tick(uv_timer_t *h)
{
	struct obs_traffic *t = h->data;
	const char *addr = proxy_feed_admin_address(t->feed);

	if (addr == NULL || t->inflight)
		return;
	fetch_start(t, addr);
}

int
obs_traffic_query(struct obs_traffic *t, const char *service, const char *revision,
    struct obs_traffic_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!t->have_cur)
		return -ENOENT;
	int rc = obs_traffic_compute(t->have_prev ? &t->prev : NULL, &t->cur, service,
	    revision, out);
	return rc == 0 && !t->have_prev ? -EAGAIN : rc;
}

int
obs_traffic_query_window(struct obs_traffic *t, const char *service, const char *revision,
    int64_t window_ms, struct obs_traffic_stats *out)
{
	const struct obs_sample *before, *now;

	memset(out, 0, sizeof(*out));
	if (obs_history_window(&t->hist, window_ms, &before, &now) < 0)
		return -EAGAIN;
	int rc = obs_traffic_compute(before, now, service, revision, out);
	out->age_ms = time_mono_ms() - now->mono_ms;
	return rc;
}

int
obs_traffic_pod(struct obs_traffic *t, const char *ns, const char *pod, int64_t window_ms,
    struct obs_traffic_stats *out)
{
	const struct obs_sample *before, *now;

	memset(out, 0, sizeof(*out));
	if (obs_history_window(&t->hist, window_ms, &before, &now) < 0)
		return -EAGAIN;
	/* the pods as the series of two samples of their own */
	struct obs_sample b = { .series = before->pods, .n = before->npods,
		.mono_ms = before->mono_ms };
	struct obs_sample n = { .series = now->pods, .n = now->npods, .mono_ms = now->mono_ms };
	char *key = xasprintf("%s/%s", ns, pod);
	int rc = obs_traffic_compute(&b, &n, key, NULL, out);
	free(key);
	out->age_ms = time_mono_ms() - now->mono_ms;
	return rc;
}

void
obs_traffic_set_period(struct obs_traffic *t, unsigned period_ms)
{
	t->period_ms = period_ms < 200 ? 200 : period_ms;
	uv_timer_start(&t->timer, on_tick, 200, t->period_ms);
}

/* ---- traffic.v6.dev ---------------------------------------------------- */

static json_t *
stats_json(const struct obs_traffic_stats *st)
{
	return json_pack("{s:f, s:f, s:f, s:f}", "requestsPerSecond", st->rps, "errorRate",
	    st->error_rate, "averageLatencyMs", st->avg_ms, "p99LatencyMs", st->p99_ms);
}

static int
revision_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static json_t *
revisions_json(struct obs_traffic *t, const char *service)
{
	const char **revs = xcalloc(t->cur.n + 1, sizeof(*revs));
	json_t *arr = json_array();
	size_t n = 0;

	for (size_t i = 0; i < t->cur.n; i++)
		if (strcmp(t->cur.series[i].service, service) == 0)
			revs[n++] = t->cur.series[i].revision;
	qsort(revs, n, sizeof(*revs), revision_cmp);
	for (size_t i = 0; i < n; i++) {
		struct obs_traffic_stats st;
		obs_traffic_compute(t->have_prev ? &t->prev : NULL, &t->cur, service, revs[i],
		    &st);
		json_t *r = stats_json(&st);
		json_object_set_new(r, "revision", json_string(revs[i]));
		json_array_append_new(arr, r);
	}
	free(revs);
	return arr;
}

int
obs_traffic_service(struct obs_traffic *t, const char *ns, const char *name, json_t **out)
{
	struct obs_traffic_stats st;
	char *service = xasprintf("%s/%s", ns, name);
	int rc = obs_traffic_query(t, service, NULL, &st);

	*out = NULL;
	if (rc < 0 && rc != -EAGAIN) {
		free(service);
		return rc;
	}
	char window[32];
	snprintf(window, sizeof(window), "%ds", OBS_TRAFFIC_PERIOD_MS / 1000);
	json_t *o = stats_json(&st);
	json_object_update_missing_new(o, json_pack("{s:s, s:s, s:{s:s, s:s}, s:s}",
	    "kind", "ServiceTraffic", "apiVersion", GROUP_VERSION, "metadata", "name", name,
	    "namespace", ns, "window", window));
	json_object_set_new(o, "revisions", revisions_json(t, service));
	free(service);
	*out = o;
	return 0;
}

static void
reply_json(struct http_req *req, int code, json_t *j)
{
	char *body = json_dumps(j, JSON_COMPACT);

	http_respond(req, code, "application/json", body, strlen(body));
	free(body);
	json_decref(j);
}

static void
reply_status(struct http_req *req, int code, const char *reason, const char *msg)
{
	reply_json(req, code, json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind",
	    "Status", "apiVersion", "v1", "metadata", "status", "Failure", "message", msg,
	    "reason", reason, "code", code));
}

static json_t *
discovery(const char *rest)
{
	return api_group_discovery(rest, GROUP, "v1alpha1", json_pack("[{s:s, s:s, s:s, "
	    "s:b, s:[s]}]", "name", "services", "singularName", "", "kind", "ServiceTraffic",
	    "namespaced", true, "verbs", "get"));
}

static void
serve_traffic(void *arg, struct http_req *req, const char *rest)
{
	struct obs_traffic *t = arg;
	char ns[254], name[254], tail;
	json_t *o;

	if (strcmp(req->method, "GET") != 0) {
		reply_status(req, 405, "MethodNotAllowed", "only GET is supported");
		return;
	}
	if ((o = discovery(rest)) != NULL) {
		reply_json(req, 200, o);
		return;
	}
	if (sscanf(rest, "/v1alpha1/namespaces/%253[^/]/services/%253[^/]%c", ns, name,
	    &tail) != 2) {
		reply_status(req, 404, "NotFound",
		    "the server could not find the requested resource");
		return;
	}
	if (obs_traffic_service(t, ns, name, &o) < 0) {
		char msg[600];
		snprintf(msg, sizeof(msg), "services.%s \"%s\" not found (no traffic seen)",
		    GROUP, name);
		reply_status(req, 404, "NotFound", msg);
		return;
	}
	reply_json(req, 200, o);
}

/* ---- start / stop ------------------------------------------------------ */

int
obs_traffic_start(uv_loop_t *loop, struct api *api, struct proxy_feed *feed,
    struct obs_traffic **out)
{
	struct obs_traffic *t = xcalloc(1, sizeof(*t));

	t->loop = loop;
	t->api = api;
	t->feed = feed;
	uv_timer_init(loop, &t->timer);
	t->timer.data = t;
	t->period_ms = OBS_TRAFFIC_PERIOD_MS;
	uv_timer_start(&t->timer, on_tick, 200, t->period_ms);
	api_register_group(api, GROUP, serve_traffic, t);
	api_group_version(api, GROUP, "v1alpha1");
	*out = t;
	return 0;
}

static void
traffic_closed(uv_handle_t *h)
{
	struct obs_traffic *t = h->data;

	obs_sample_free(&t->prev);
	obs_sample_free(&t->cur);
	obs_history_free(&t->hist);
	free(t);
}

void
obs_traffic_stop(struct obs_traffic *t)
{
	http_client_cancel(t->inflight);
	t->inflight = NULL;
	uv_timer_stop(&t->timer);
	uv_close((uv_handle_t *)&t->timer, traffic_closed);
}
