/* obs_custom.c — custom.metrics.k8s.io/v1beta2 and external.metrics.k8s.io/v1beta1
 * as a prometheus-adapter serves them, so an HPA manifest with Pods, Object
 * or External metrics means the same on V6 and on a cluster with an adapter.
 * Custom values come from the proxy's per-pod and per-Service counters
 * (obs_traffic.c), external ones from PromQL instant queries to
 * --prometheus-url. Started by server.c; read by ctrl_hpa.c and the API. */
#include "obs_custom.h"
#include "api.h"
#include "http.h"
#include "log.h"
#include "obj.h"
#include "obs_traffic.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUSTOM_GROUP "custom.metrics.k8s.io"
#define EXTERNAL_GROUP "external.metrics.k8s.io"
/* Rates and quantiles over this much traffic (prometheus-adapter's rules
 * typically rate() over a few scrapes). */
#define CUSTOM_WINDOW_MS 10000
#define PROM_TIMEOUT_MS 5000
#define EXT_CACHE_MAX 256	/* remembered external queries */
#define EXT_FORGET_MS 600000	/* one nobody asked for in 10 min goes */

/* The metrics V6 serves per pod and per Service: one table drives discovery,
 * the API and the HPA. */
static const struct custom_metric {
	const char *name;
	double scale;			/* milli-units per unit of the figure */
	size_t off;			/* a double in struct obs_traffic_stats */
} custom_metrics[] = {
	{ "requests_per_second", 1000, offsetof(struct obs_traffic_stats, rps) },
	{ "request_duration_p99_seconds", 1, offsetof(struct obs_traffic_stats, p99_ms) },
};

static const struct { const char *kind, *plural; } custom_kinds[] = {
	{ "Pod", "pods" }, { "Service", "services" },
};

/* One external query the HPA asks for: its last answer. */
struct ext_entry {
	char *key;			/* the PromQL */
	int rc;				/* 0, -EAGAIN before the first answer, -EIO */
	int64_t milli;
	char why[256];
	int64_t asked_ms;		/* the last obs_custom_external() */
	struct http_client_req *inflight;
	struct obs_custom *c;
	struct ext_entry *next;
};

struct obs_custom {
	uv_loop_t *loop;
	struct api *api;
	struct obs_traffic *traffic;
	struct sockaddr_storage prom;
	bool has_prom;
	struct ext_entry *ext;
	struct api_ext_req *reqs;	/* API requests waiting for Prometheus */
};

/* ---- custom.metrics.k8s.io --------------------------------------------- */

static const struct custom_metric *
metric_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(custom_metrics); i++)
		if (strcmp(custom_metrics[i].name, name) == 0)
			return &custom_metrics[i];
	return NULL;
}

int
obs_custom_value(struct obs_custom *c, const char *kind, const char *ns, const char *name,
    const char *metric, int64_t *milli, char *why, size_t whylen)
{
	const struct custom_metric *m = metric_find(metric);
	struct obs_traffic_stats st;
	int rc = -ENOENT;

	if (m == NULL) {
		snprintf(why, whylen, "the server could not find the metric %s for %s", metric,
		    kind);
		return -ENOENT;
	}
	if (c->traffic && strcmp(kind, "Pod") == 0)
		rc = obs_traffic_pod(c->traffic, ns, name, CUSTOM_WINDOW_MS, &st);
	else if (c->traffic && strcmp(kind, "Service") == 0) {
		char *svc = xasprintf("%s/%s", ns, name);
		json_t *o = NULL;
		rc = obs_traffic_query_window(c->traffic, svc, NULL, CUSTOM_WINDOW_MS, &st);
		free(svc);
		/* the proxy counts every request: a Service it has no series for
		 * in fresh samples had none (its series go when idle) */
		if (rc == -ENOENT && st.age_ms < 3 * CUSTOM_WINDOW_MS &&
		    store_get(api_store(c->api), "services", ns, name, &o) == 0 && o) {
			memset(&st, 0, sizeof(st));
			st.window_s = CUSTOM_WINDOW_MS / 1000.0;
			rc = 0;
		}
		json_decref(o);
	}
	if (rc == 0 && st.window_s > 0) {
		*milli = llround(*(const double *)((const char *)&st + m->off) * m->scale);
		return 0;
	}
	snprintf(why, whylen, "the server could not find the metric %s for %s %s/%s%s", metric,
	    kind, ns, name, rc == -EAGAIN || rc == 0 ? " (not measured yet)" :
	    " (the proxy does not route to it)");
	return -ENOENT;
}

/* A MetricValue of v1beta2 for kind ns/name. */
static json_t *
metric_value(const char *kind, const char *ns, const char *name, const char *metric,
    int64_t milli)
{
	char v[32];
	snprintf(v, sizeof(v), "%lldm", (long long)milli);
	return json_pack("{s:{s:s, s:s, s:s, s:s}, s:{s:s, s:n}, s:o, s:i, s:s}",
	    "describedObject", "kind", kind, "namespace", ns, "name", name, "apiVersion", "/v1",
	    "metric", "name", metric, "selector", "timestamp", obj_time_json(time_now_ms()),
	    "windowSeconds", CUSTOM_WINDOW_MS / 1000, "value", v);
}

static json_t *
value_list(const char *group_version, json_t *items)
{
	return json_pack("{s:s, s:s, s:{}, s:o}", "kind", strcmp(group_version,
	    EXTERNAL_GROUP "/v1beta1") ? "MetricValueList" : "ExternalMetricValueList",
	    "apiVersion", group_version, "metadata", "items", items);
}

/* GET .../namespaces/NS/PLURAL/NAME/METRIC, NAME "*" with ?labelSelector. */
static void
custom_get(struct obs_custom *c, struct http_req *req, const char *ns, const char *plural,
    const char *name, const char *metric)
{
	const char *kind = NULL;
	char why[512];
	int64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(custom_kinds); i++)
		if (strcmp(custom_kinds[i].plural, plural) == 0)
			kind = custom_kinds[i].kind;
	if (kind == NULL || metric_find(metric) == NULL) {
		snprintf(why, sizeof(why), "the server could not find the metric %s for %s",
		    metric, plural);
		api_respond_status(req, 404, why);
		return;
	}
	if (strcmp(name, "*") != 0) {
		if (obs_custom_value(c, kind, ns, name, metric, &v, why, sizeof(why)) < 0) {
			api_respond_status(req, 404, why);
			return;
		}
		api_respond_json(req, 200, value_list(CUSTOM_GROUP "/v1beta2",
		    json_pack("[o]", metric_value(kind, ns, name, metric, v))));
		return;
	}
	char *ls = http_query_get(req->query, "labelSelector"), *err = NULL;
	struct selector *sel = NULL;
	json_t *all = NULL, *o, *items = json_array();
	size_t i;
	if (selector_parse(ls ? ls : "", &sel, &err) < 0) {
		api_respond_status(req, 400, err);
		goto out;
	}
	if (store_list(api_store(c->api), plural, ns, &all, NULL) < 0) {
		api_respond_status(req, 500, "listing failed");
		goto out;
	}
	json_array_foreach(all, i, o)
		if (selector_matches(sel, obj_labels(o)) && obs_custom_value(c, kind, ns,
		    obj_name(o), metric, &v, why, sizeof(why)) == 0)
			json_array_append_new(items, metric_value(kind, ns, obj_name(o), metric, v));
	api_respond_json(req, 200, value_list(CUSTOM_GROUP "/v1beta2", items));
	items = NULL;
out:
	json_decref(items);
	json_decref(all);
	selector_free(sel);
	free(ls);
	free(err);
}

static json_t *
custom_resources(void)
{
	json_t *r = json_array();
	for (size_t k = 0; k < ARRAY_SIZE(custom_kinds); k++)
		for (size_t i = 0; i < ARRAY_SIZE(custom_metrics); i++) {
			char *n = xasprintf("%s/%s", custom_kinds[k].plural, custom_metrics[i].name);
			json_array_append_new(r, json_pack("{s:s, s:s, s:b, s:s, s:[s]}", "name", n,
			    "singularName", "", "namespaced", true, "kind", "MetricValueList",
			    "verbs", "get"));
			free(n);
		}
	return r;
}

static void
serve_custom(void *arg, struct http_req *req, const char *rest)
{
	struct obs_custom *c = arg;
	char ns[254], plural[64], name[254], metric[128], tail;
	json_t *o;

	if (strcmp(req->method, "GET") != 0) {
		api_respond_status(req, 405, "only GET is supported");
		return;
	}
	if ((o = api_group_discovery(rest, CUSTOM_GROUP, "v1beta2", custom_resources())))
		api_respond_json(req, 200, o);
	else if (sscanf(rest, "/v1beta2/namespaces/%253[^/]/%63[^/]/%253[^/]/%127[^/]%c", ns,
	    plural, name, metric, &tail) == 4)
		custom_get(c, req, ns, plural, name, metric);
	else
		api_respond_status(req, 404, "the server could not find the requested resource");
}

/* ---- external.metrics.k8s.io ------------------------------------------- */

static bool
metric_name_ok(const char *s)
{
	if (!(*s == '_' || *s == ':' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:") ==
	    strlen(s);
}

/* The PromQL `metric{matchers}` for sel (NULL: every series); NULL with why. */
static char *
promql(const char *metric, const struct selector *sel, char *why, size_t whylen)
{
	if (!metric_name_ok(metric)) {
		snprintf(why, whylen, "%s is not a Prometheus metric name", metric);
		return NULL;
	}
	char *m = sel ? selector_promql(sel) : xstrdup("{}");
	if (m == NULL) {
		snprintf(why, whylen, "the selector has a key that is not a Prometheus label "
		    "name, or a Gt / Lt requirement");
		return NULL;
	}
	char *q = xasprintf("%s%s", metric, strcmp(m, "{}") ? m : "");
	free(m);
	return q;
}

/* Prometheus' vector answer as ExternalMetricValues (items) and their sum.
 * Returns 0 or -EIO with why. */
static int
prom_parse(int rc, const struct http_response *res, const char *metric, json_t *items,
    int64_t *sum, char *why, size_t whylen)
{
	json_t *doc = NULL, *r;
	size_t i;
	double total = 0;

	if (rc < 0 || res->status != 200 ||
	    (doc = json_loadb(res->body, res->body_len, 0, NULL)) == NULL) {
		snprintf(why, whylen, "querying Prometheus: %s", rc < 0 ? strerror(-rc) :
		    res->status != 200 ? "HTTP error" : "the answer is not JSON");
		if (rc == 0 && res->status != 200)
			snprintf(why, whylen, "querying Prometheus: HTTP %d: %.160s", res->status,
			    res->body);
		return -EIO;
	}
	json_t *data = json_object_get(doc, "data");
	if (strcmp(json_string_value(json_object_get(data, "resultType")) ?: "", "vector")) {
		snprintf(why, whylen, "querying Prometheus: expected a vector");
		json_decref(doc);
		return -EIO;
	}
	json_array_foreach(json_object_get(data, "result"), i, r) {
		const char *v = json_string_value(json_array_get(json_object_get(r, "value"), 1));
		double d = v ? strtod(v, NULL) : NAN;
		if (!isfinite(d))
			continue;
		total += d;
		char q[40];
		snprintf(q, sizeof(q), "%lldm", (long long)llround(d * 1000));
		json_t *labels = json_deep_copy(json_object_get(r, "metric"));
		json_object_del(labels, "__name__");
		json_array_append_new(items, json_pack("{s:s, s:o, s:o, s:s}", "metricName", metric,
		    "metricLabels", labels ? labels : json_object(), "timestamp",
		    obj_time_json(time_now_ms()), "value", q));
	}
	*sum = llround(total * 1000);
	json_decref(doc);
	return 0;
}

static int
prom_query(struct obs_custom *c, const char *q, http_client_fn fn, void *arg,
    struct http_client_req **out)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, "/api/v1/query?query=");
	for (const unsigned char *p = (const unsigned char *)q; *p; p++)	/* RFC 3986 */
		if (strchr("-._~", *p) || (*p >= '0' && *p <= '9') || ((*p | 32) >= 'a' &&
		    (*p | 32) <= 'z'))
			buf_putc(&b, (char)*p);
		else
			buf_printf(&b, "%%%02X", *p);
	char *path = buf_steal(&b);
	struct http_client_opts o = { .path = path, .host = "prometheus",
		.timeout_ms = PROM_TIMEOUT_MS };
	int rc = http_client_request(c->loop, (struct sockaddr *)&c->prom, &o, fn, arg, out);
	free(path);
	return rc;
}

/* The API's GET waits for Prometheus; a client that leaves cancels it. */
struct api_ext_req {
	struct obs_custom *c;
	struct http_req *req;
	struct http_client_req *inflight;
	char *metric;
	struct api_ext_req *next;
};

static void
ext_req_unlink(struct api_ext_req *r)
{
	for (struct api_ext_req **p = &r->c->reqs; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	free(r->metric);
	free(r);
}

static void
ext_req_done(int rc, const struct http_response *res, void *arg)
{
	struct api_ext_req *r = arg;
	json_t *items = json_array();
	char why[320];
	int64_t sum;

	http_req_on_abort(r->req, NULL, NULL);
	if (prom_parse(rc, res, r->metric, items, &sum, why, sizeof(why)) < 0) {
		api_respond_status(r->req, 503, why);
		json_decref(items);
	} else {
		api_respond_json(r->req, 200, value_list(EXTERNAL_GROUP "/v1beta1", items));
	}
	ext_req_unlink(r);
}

static void
ext_req_abort(struct http_req *req, void *arg)
{
	struct api_ext_req *r = arg;
	(void)req;
	http_client_cancel(r->inflight);
	ext_req_unlink(r);
}

static void
external_get(struct obs_custom *c, struct http_req *req, const char *metric)
{
	char why[320], *err = NULL;
	char *ls = http_query_get(req->query, "labelSelector");
	struct selector *sel = NULL;
	char *q = NULL;

	if (!c->has_prom) {
		api_respond_status(req, 404, "no external metrics: the server has no "
		    "--prometheus-url");
	} else if (selector_parse(ls ? ls : "", &sel, &err) < 0) {
		api_respond_status(req, 400, err);
	} else if ((q = promql(metric, sel, why, sizeof(why))) == NULL) {
		api_respond_status(req, 400, why);
	} else {
		struct api_ext_req *r = xcalloc(1, sizeof(*r));
		*r = (struct api_ext_req){ c, req, NULL, xstrdup(metric), c->reqs };
		c->reqs = r;
		http_req_on_abort(req, ext_req_abort, r);
		prom_query(c, q, ext_req_done, r, &r->inflight);
	}
	free(q);
	free(ls);
	free(err);
	selector_free(sel);
}

static void
serve_external(void *arg, struct http_req *req, const char *rest)
{
	struct obs_custom *c = arg;
	char ns[254], metric[254], tail;
	json_t *o;

	if (strcmp(req->method, "GET") != 0) {
		api_respond_status(req, 405, "only GET is supported");
		return;
	}
	/* as prometheus-adapter: the metrics are named in the path, not listed */
	if ((o = api_group_discovery(rest, EXTERNAL_GROUP, "v1beta1", json_array())))
		api_respond_json(req, 200, o);
	else if (sscanf(rest, "/v1beta1/namespaces/%253[^/]/%253[^/]%c", ns, metric,
	    &tail) == 2)
		external_get(c, req, metric);
	else
		api_respond_status(req, 404, "the server could not find the requested resource");
}

/* ---- the HPA's external values ----------------------------------------- */

static void
ext_done(int rc, const struct http_response *res, void *arg)
{
	struct ext_entry *e = arg;
	json_t *items = json_array();
	int64_t sum = 0;

	e->inflight = NULL;
	e->rc = prom_parse(rc, res, "", items, &sum, e->why, sizeof(e->why));
	if (e->rc == 0 && json_array_size(items) == 0) {
		e->rc = -ENOENT;
		snprintf(e->why, sizeof(e->why), "no series for %s", e->key);
	}
	if (e->rc == 0)
		e->milli = sum;
	json_decref(items);
}

static void
ext_free(struct ext_entry *e)
{
	http_client_cancel(e->inflight);
	free(e->key);
	free(e);
}

/* Forgets queries nobody asked for lately, then the oldest while too many. */
static void
ext_sweep(struct obs_custom *c, int64_t now)
{
	size_t n = 0;
	for (struct ext_entry **p = &c->ext; *p;) {
		struct ext_entry *e = *p;
		if (now - e->asked_ms > EXT_FORGET_MS || ++n > EXT_CACHE_MAX) {
			*p = e->next;
			ext_free(e);
			continue;
		}
		p = &e->next;
	}
}

int
obs_custom_external(struct obs_custom *c, const char *ns, const char *metric,
    const json_t *selector, int64_t *milli, char *why, size_t whylen)
{
	struct selector *sel = NULL;
	char *err = NULL, *q;
	(void)ns;

	if (!c->has_prom) {
		snprintf(why, whylen, "unable to fetch metrics from external metrics API: the "
		    "server has no --prometheus-url");
		return -ENOENT;
	}
	if (selector && !json_is_null(selector) && selector_from_json(selector, &sel,
	    &err) < 0) {
		snprintf(why, whylen, "metric.selector: %s", err);
		free(err);
		return -EINVAL;
	}
	q = promql(metric, sel, why, whylen);
	selector_free(sel);
	if (q == NULL)
		return -EINVAL;
	int64_t now = time_now_ms();
	struct ext_entry *e = c->ext;
	while (e && strcmp(e->key, q) != 0)
		e = e->next;
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		*e = (struct ext_entry){ .key = q, .rc = -EAGAIN, .c = c, .next = c->ext };
		snprintf(e->why, sizeof(e->why), "no answer from Prometheus yet for %s", q);
		c->ext = e;
		q = NULL;
	}
	free(q);
	e->asked_ms = now;
	if (e->inflight == NULL)
		prom_query(c, e->key, ext_done, e, &e->inflight);
	*milli = e->milli;
	snprintf(why, whylen, "%s", e->why);
	int rc = e->rc;
	ext_sweep(c, now);
	return rc;
}

/* ---- start / stop ------------------------------------------------------ */

int
obs_custom_start(uv_loop_t *loop, struct api *api, struct obs_traffic *traffic,
    const char *prometheus_url, struct obs_custom **out)
{
	struct obs_custom *c = xcalloc(1, sizeof(*c));

	c->loop = loop;
	c->api = api;
	c->traffic = traffic;
	if (prometheus_url) {
		const char *hp = str_has_prefix(prometheus_url, "http://") ? prometheus_url + 7 :
		    NULL;
		char *addr = hp ? xstrndup(hp, strcspn(hp, "/")) : NULL;
		c->has_prom = addr && obs_parse_addr(addr, &c->prom) == 0;
		if (!c->has_prom)
			log_error("custom-metrics", "--prometheus-url %s: expected http://IP:PORT; "
			    "no external metrics", prometheus_url);
		free(addr);
	}
	api_register_group(api, CUSTOM_GROUP, serve_custom, c);
	api_register_group(api, EXTERNAL_GROUP, serve_external, c);
	*out = c;
	return 0;
}

void
obs_custom_stop(struct obs_custom *c)
{
	if (c == NULL)
		return;
	while (c->ext) {
		struct ext_entry *e = c->ext;
		c->ext = e->next;
		ext_free(e);
	}
	while (c->reqs) {
		struct api_ext_req *r = c->reqs;
		http_client_cancel(r->inflight);
		http_req_on_abort(r->req, NULL, NULL);
		api_respond_status(r->req, 503, "the server is stopping");
		ext_req_unlink(r);
	}
	free(c);
}
