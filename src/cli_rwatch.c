/* cli_rwatch.c — how the CLI shows an Argo Rollout: the view (steps, weights,
 * revisions and pods, analysis runs) as a pure function, and `v6 rollout
 * watch`, one list+watch stream per kind (Rollout, ReplicaSets, Pods,
 * AnalysisRuns) on a curl multi handle, redrawing the view on every change.
 * Called by cli_rollout.c (watch) and cli_describe.c. */
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HASH_LABEL "rollouts-pod-template-hash"
#define KEYW 14			/* where values start in the view */

static long long
num(const json_t *obj, const char *path)
{
	return json_integer_value(obj_get_path(obj, path));
}

static const char *
hash_of(const json_t *obj)
{
	const char *h = json_string_value(json_object_get(obj_labels(obj), HASH_LABEL));
	return h ? h : "";
}

static bool
controlled_by(const json_t *obj, const char *uid)
{
	size_t i;
	json_t *ref;
	json_array_foreach(obj_get_path(obj, "metadata.ownerReferences"), i, ref)
		if (json_is_true(json_object_get(ref, "controller")) &&
		    strcmp(obj_str_at(ref, "uid"), uid) == 0)
			return true;
	return false;
}

static void
key(struct buf *b, int ind, const char *k)
{
	int pad = KEYW - ind - (int)strlen(k) - 1;
	buf_printf(b, "%*s%s:%*s", ind, "", k, pad > 0 ? pad : 1, "");
}

/* ---- steps ------------------------------------------------------------ */

static void
step_pause(struct buf *b, const json_t *p)
{
	json_t *d = json_object_get(p, "duration");
	if (json_is_integer(d))
		buf_printf(b, "pause: %llds", (long long)json_integer_value(d));
	else if (json_is_string(d))
		buf_printf(b, "pause: %s", json_string_value(d));
	else
		buf_puts(b, "pause (until promoted)");
}

static void
step_scale(struct buf *b, const json_t *s)
{
	buf_puts(b, "setCanaryScale:");
	if (json_object_get(s, "replicas"))
		buf_printf(b, " replicas %lld", num(s, "replicas"));
	if (json_object_get(s, "weight"))
		buf_printf(b, " weight %lld%%", num(s, "weight"));
	if (json_is_true(json_object_get(s, "matchTrafficWeight")))
		buf_puts(b, " matchTrafficWeight");
}

static void
step_analysis(struct buf *b, const json_t *a)
{
	size_t i;
	json_t *t;
	buf_puts(b, "analysis:");
	json_array_foreach(json_object_get(a, "templates"), i, t)
		buf_printf(b, "%s %s", i ? "," : "", obj_str_at(t, "templateName"));
}

static void
step_header_route(struct buf *b, const json_t *h)
{
	size_t i;
	json_t *m;
	buf_printf(b, "setHeaderRoute: %s", obj_str_at(h, "name"));
	json_array_foreach(json_object_get(h, "match"), i, m) {
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(m, "headerValue"), k, v)
			buf_printf(b, "%s %s %s \"%s\"", i ? "," : "", obj_str_at(m, "headerName"), k,
			    json_string_value(v) ? json_string_value(v) : "");
	}
	if (json_array_size(json_object_get(h, "match")) == 0)
		buf_puts(b, " (removed)");
}

static void
step_describe(struct buf *b, const json_t *step)
{
	json_t *v;
	if ((v = json_object_get(step, "setWeight")))
		buf_printf(b, "setWeight: %lld%%", (long long)json_integer_value(v));
	else if ((v = json_object_get(step, "pause")))
		step_pause(b, v);
	else if ((v = json_object_get(step, "setCanaryScale")))
		step_scale(b, v);
	else if ((v = json_object_get(step, "analysis")))
		step_analysis(b, v);
	else if ((v = json_object_get(step, "setHeaderRoute")))
		step_header_route(b, v);
	else
		buf_puts(b, "(unknown step)");
}

static void
view_canary(struct buf *b, const json_t *ro)
{
	int64_t idx, n;
	cli_argo_step(ro, &idx, &n);
	key(b, 2, "Step");
	buf_printf(b, "%lld/%lld\n", (long long)idx, (long long)n);
	key(b, 2, "SetWeight");
	buf_printf(b, "%lld\n", (long long)cli_argo_set_weight(ro));
	int64_t cw = cli_argo_weight(ro);
	json_t *w = obj_get_path(ro, "status.canary.weights");
	bool actual = w && (obj_get_path(ro, "spec.strategy.canary.canaryService") ||
	    obj_get_path(ro, "spec.strategy.canary.trafficRouting"));
	if (actual) {
		key(b, 2, "ActualWeight");
		buf_printf(b, "%lld\n", (long long)cw);
	}
	key(b, 0, "Weights");
	buf_printf(b, "stable %lld%%, canary %lld%%%s\n", actual ? num(w, "stable.weight")
	    : (long long)(100 - cw), (long long)cw, actual ? "" : " (by replicas)");
	if (n == 0)
		return;
	buf_puts(b, "Steps:\n");
	size_t i;
	json_t *st;
	json_array_foreach(obj_get_path(ro, "spec.strategy.canary.steps"), i, st) {
		buf_printf(b, "  %s %zu  ", (int64_t)i < idx ? "ok" : (int64_t)i == idx ? "=>"
		    : "  ", i);
		step_describe(b, st);
		buf_putc(b, '\n');
	}
}

static void
view_bluegreen(struct buf *b, const json_t *ro)
{
	const json_t *bg = obj_get_path(ro, "spec.strategy.blueGreen");
	const char *prev = obj_str_at(bg, "previewService");
	const char *active = obj_str_at(ro, "status.blueGreen.activeSelector");
	key(b, 2, "ActiveService");
	buf_printf(b, "%s (%s)\n", obj_str_at(bg, "activeService"),
	    *active ? active : "no revision yet");
	if (*prev) {
		key(b, 2, "PreviewService");
		buf_printf(b, "%s (%s)\n", prev, *obj_str_at(ro, "status.blueGreen.previewSelector") ?
		    obj_str_at(ro, "status.blueGreen.previewSelector") : "no revision");
	}
	json_t *ap = json_object_get(bg, "autoPromotionEnabled");
	key(b, 2, "AutoPromotion");
	if (ap && !json_is_true(ap))
		buf_puts(b, "false (waits for 'v6 rollout promote')\n");
	else if (num(bg, "autoPromotionSeconds") > 0)
		buf_printf(b, "after %llds\n", num(bg, "autoPromotionSeconds"));
	else
		buf_puts(b, "true\n");
}

/* ---- revisions and pods ---------------------------------------------- */

static void
roles(struct buf *b, const json_t *ro, const char *hash)
{
	const char *stable = obj_str_at(ro, "status.stableRS");
	const char *cur = obj_str_at(ro, "status.currentPodHash");
	bool canary = strcmp(cli_argo_strategy(ro), "Canary") == 0;
	size_t start = b->len;
	if (*hash && strcmp(hash, stable) == 0)
		buf_puts(b, "stable");
	if (canary && *hash && strcmp(hash, cur) == 0 && strcmp(hash, stable) != 0)
		buf_puts(b, "canary");
	if (*hash && strcmp(hash, obj_str_at(ro, "status.blueGreen.activeSelector")) == 0)
		buf_printf(b, "%sactive", b->len > start ? "," : "");
	if (*hash && strcmp(hash, obj_str_at(ro, "status.blueGreen.previewSelector")) == 0)
		buf_printf(b, "%spreview", b->len > start ? "," : "");
	if (b->len == start)
		buf_puts(b, "old");
}

static void
pod_line(struct buf *b, const json_t *p)
{
	size_t i, ready = 0;
	json_t *cs;
	const char *status = obj_str_at(p, "status.phase");
	json_array_foreach(obj_get_path(p, "status.containerStatuses"), i, cs) {
		ready += json_is_true(json_object_get(cs, "ready"));
		if (*obj_str_at(cs, "state.waiting.reason"))
			status = obj_str_at(cs, "state.waiting.reason");
	}
	if (obj_get_path(p, "metadata.deletionTimestamp"))
		status = "Terminating";
	buf_printf(b, "      %s  %zu/%zu  %s\n", obj_name(p), ready,
	    json_array_size(obj_get_path(p, "spec.containers")), *status ? status : "Pending");
}

static int
by_revision_desc(const void *a, const void *b)
{
	int64_t ra = cli_revision_of(*(json_t *const *)a);
	int64_t rb = cli_revision_of(*(json_t *const *)b);
	return ra < rb ? 1 : ra > rb ? -1 : 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(obj_name(*(json_t *const *)a), obj_name(*(json_t *const *)b));
}

/* The elements of arr for which keep(elem, arg), sorted by cmp; caller
 * frees the vector (elements borrowed). */
static json_t **
pick(const json_t *arr, bool (*keep)(const json_t *, const void *), const void *arg,
    int (*cmp)(const void *, const void *), size_t *n)
{
	json_t **v = xcalloc(json_array_size(arr) + 1, sizeof *v);
	size_t i;
	json_t *e;
	*n = 0;
	json_array_foreach(arr, i, e)
		if (keep(e, arg))
			v[(*n)++] = e;
	qsort(v, *n, sizeof *v, cmp);
	return v;
}

static bool
keep_owned(const json_t *obj, const void *uid)
{
	return *(const char *)uid && controlled_by(obj, uid);
}

static bool
keep_hash(const json_t *obj, const void *hash)
{
	return *(const char *)hash && strcmp(hash_of(obj), hash) == 0;
}

static void
images(struct buf *b, const json_t *rs)
{
	size_t i;
	json_t *c;
	json_array_foreach(obj_get_path(rs, "spec.template.spec.containers"), i, c)
		buf_printf(b, "%s%s", i ? "," : "", obj_str_at(c, "image"));
}

static void
view_revisions(struct buf *b, const json_t *ro, const json_t *rsets, const json_t *pods)
{
	size_t n, np, i, hidden = 0;
	json_t **v = pick(rsets, keep_owned, obj_uid(ro), by_revision_desc, &n);
	buf_puts(b, "Revisions:\n");
	if (n == 0)
		buf_puts(b, "  <none>\n");
	else
		buf_printf(b, "  %-8s  %-12s  %-14s  %-7s  %-5s  %s\n", "REVISION", "HASH", "ROLE",
		    "DESIRED", "READY", "IMAGES");
	for (i = 0; i < n; i++) {
		const char *h = hash_of(v[i]);
		struct buf role = BUF_INIT, img = BUF_INIT;
		json_t **pv = pick(pods, keep_hash, h, by_name, &np);
		roles(&role, ro, h);
		if (num(v[i], "spec.replicas") == 0 && np == 0 && strcmp(role.data, "old") == 0) {
			hidden++;
			buf_free(&role);
			free(pv);
			continue;
		}
		images(&img, v[i]);
		buf_printf(b, "  %-8lld  %-12s  %-14s  %-7lld  %-5lld  %s\n",
		    (long long)cli_revision_of(v[i]), *h ? h : "<none>", role.data,
		    num(v[i], "spec.replicas"), num(v[i], "status.readyReplicas"),
		    img.len ? img.data : "<none>");
		for (size_t j = 0; j < np; j++)
			pod_line(b, pv[j]);
		buf_free(&role);
		buf_free(&img);
		free(pv);
	}
	if (hidden)
		buf_printf(b, "  (%zu older revision%s scaled to zero)\n", hidden,
		    hidden == 1 ? "" : "s");
	free(v);
}

/* ---- analysis ---------------------------------------------------------- */

/* "success rate 98.5%", "P99 0.12", "value 3" for the latest measurement
 * of metric name: what the number means is read from the metric's name. */
static void
measurement_value(struct buf *b, const char *metric, const char *value)
{
	char *copy = xstrdup(value), *p = copy, *end;
	while (*p == '[' || *p == ' ')
		p++;
	size_t n = strlen(p);
	while (n && (p[n - 1] == ']' || p[n - 1] == ' '))
		p[--n] = '\0';
	double x = strtod(p, &end);
	bool is_num = *p && *end == '\0';
	if (strcasestr(metric, "success") && is_num)
		buf_printf(b, "success rate %.1f%%", x <= 1 ? x * 100 : x);
	else if (strcasestr(metric, "p99"))
		buf_printf(b, "P99 %s", p);
	else if (strcasestr(metric, "error") && is_num && x <= 1)
		buf_printf(b, "error rate %.1f%%", x * 100);
	else
		buf_printf(b, "value %s", *p ? p : "<none>");
	free(copy);
}

static void
metric_line(struct buf *b, int ind, const json_t *m)
{
	json_t *ms = json_object_get(m, "measurements");
	json_t *last = json_array_get(ms, json_array_size(ms) ? json_array_size(ms) - 1 : 0);
	const char *name = obj_str_at(m, "name"), *phase = obj_str_at(m, "phase");
	buf_printf(b, "%*s%s  %s  ", ind, "", name, *phase ? phase : "Pending");
	if (last) {
		measurement_value(b, name, obj_str_at(last, "value"));
		buf_printf(b, " (%s)", *obj_str_at(last, "phase") ? obj_str_at(last, "phase") : "Running");
	} else {
		buf_puts(b, "no measurement yet");
	}
	buf_printf(b, "  measured %lld: %lld successful, %lld failed, %lld inconclusive, "
	    "%lld error\n", num(m, "count"), num(m, "successful"), num(m, "failed"),
	    num(m, "inconclusive"), num(m, "error"));
	if (*obj_str_at(m, "message"))
		buf_printf(b, "%*s  %s\n", ind, "", obj_str_at(m, "message"));
}

static int
by_created(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(obj_str_at(x, "metadata.creationTimestamp"),
	    obj_str_at(y, "metadata.creationTimestamp"));
	return c ? c : strcmp(obj_name(x), obj_name(y));
}

static void
view_analysis(struct buf *b, const json_t *ro, const json_t *runs)
{
	size_t n, i, j, shown = 0;
	json_t **v = pick(runs, keep_owned, obj_uid(ro), by_created, &n);
	const char *cur = obj_str_at(ro, "status.currentPodHash");
	if (n == 0) {
		free(v);
		return;
	}
	buf_puts(b, "Analysis:\n");
	for (i = 0; i < n; i++) {
		if (*cur && strcmp(hash_of(v[i]), cur) != 0)
			continue;
		const char *phase = obj_str_at(v[i], "status.phase");
		buf_printf(b, "  %s  %s", obj_name(v[i]), *phase ? phase : "Pending");
		if (*obj_str_at(v[i], "status.message"))
			buf_printf(b, "  %s", obj_str_at(v[i], "status.message"));
		buf_putc(b, '\n');
		json_t *m;
		json_array_foreach(obj_get_path(v[i], "status.metricResults"), j, m)
			metric_line(b, 4, m);
		shown++;
	}
	if (shown < n)
		buf_printf(b, "  (%zu run%s of older revisions)\n", n - shown,
		    n - shown == 1 ? "" : "s");
	free(v);
}

char *
cli_rwatch_view(const json_t *ro, const json_t *rsets, const json_t *pods,
    const json_t *runs)
{
	struct buf b = BUF_INIT;
	char *status;
	cli_argo_status_msg(ro, &status);
	key(&b, 0, "Status");	/* phase - message (step, weight) */
	buf_puts(&b, status);
	free(status);
	const char *strategy = cli_argo_strategy(ro);
	key(&b, 0, "Strategy");
	buf_printf(&b, "%s\n", *strategy ? strategy : "<none>");
	if (strcmp(strategy, "Canary") == 0)
		view_canary(&b, ro);
	else if (*strategy)
		view_bluegreen(&b, ro);
	key(&b, 0, "Replicas");
	buf_printf(&b, "desired %lld, current %lld, updated %lld, ready %lld, available %lld\n",
	    num(ro, "spec.replicas"), num(ro, "status.replicas"), num(ro, "status.updatedReplicas"),
	    num(ro, "status.readyReplicas"), num(ro, "status.availableReplicas"));
	view_revisions(&b, ro, rsets, pods);
	view_analysis(&b, ro, runs);
	return buf_steal(&b);
}

char *
cli_rwatch_analysisrun(const json_t *run)
{
	struct buf b = BUF_INIT;
	size_t i, j;
	json_t *m, *ms;
	const char *phase = obj_str_at(run, "status.phase");
	key(&b, 0, "Status");
	buf_printf(&b, "%s\n", *phase ? phase : "Pending");
	if (*obj_str_at(run, "status.message")) {
		key(&b, 0, "Message");
		buf_printf(&b, "%s\n", obj_str_at(run, "status.message"));
	}
	buf_puts(&b, "Metrics:\n");
	if (json_array_size(obj_get_path(run, "status.metricResults")) == 0)
		buf_puts(&b, "  <none yet>\n");
	json_array_foreach(obj_get_path(run, "status.metricResults"), i, m) {
		metric_line(&b, 2, m);
		if (json_array_size(json_object_get(m, "measurements")) == 0)
			continue;
		buf_printf(&b, "    %-20s  %-20s  %-12s  %-16s  %s\n", "STARTED", "FINISHED",
		    "PHASE", "VALUE", "MESSAGE");
		json_array_foreach(json_object_get(m, "measurements"), j, ms) {
			buf_printf(&b, "    %-20s  %-20s  %-12s  %-16s  %s",
			    *obj_str_at(ms, "startedAt") ? obj_str_at(ms, "startedAt") : "-",
			    *obj_str_at(ms, "finishedAt") ? obj_str_at(ms, "finishedAt") : "-",
			    *obj_str_at(ms, "phase") ? obj_str_at(ms, "phase") : "Running",
			    *obj_str_at(ms, "value") ? obj_str_at(ms, "value") : "-", obj_str_at(ms, "message"));
			while (b.len && b.data[b.len - 1] == ' ')
				b.data[--b.len] = '\0';
			buf_putc(&b, '\n');
		}
	}
	return buf_steal(&b);
}

/* ---- fetching ---------------------------------------------------------- */

/* The streams of the view, in this order; AnalysisRun may be unknown. */
static const struct {
	const char *api_version;
	const char *kind;
} related_kinds[] = {
	{ "apps/v1", "ReplicaSet" },
	{ "v1", "Pod" },
	{ "argoproj.io/v1alpha1", "AnalysisRun" },
};

/* Objects of a rollout carry the hash label; listing only those keeps a
 * busy namespace out of the view. */
static char *
related_query(void)
{
	struct buf q = BUF_INIT;
	cli_query_add(&q, "labelSelector", HASH_LABEL);
	return buf_steal(&q);
}

/* GET a list; *items (new ref) and *rv (caller frees). 0 or -EIO. */
static int
list_get(const struct kind *k, const char *ns, const char *query, json_t **items, char **rv)
{
	struct cli_resp r;
	char *path = cli_path(k, ns, NULL, query);
	int rc = cli_http("GET", path, NULL, NULL, &r);
	free(path);
	if (rc < 0)
		return -EIO;
	if (r.status != 200) {
		cli_print_error(&r, NULL);
		cli_resp_free(&r);
		return -EIO;
	}
	json_t *it = json_object_get(r.body, "items");
	*items = json_is_array(it) ? json_incref(it) : json_array();
	if (rv)
		*rv = xstrdup(obj_str_at(r.body, "metadata.resourceVersion"));
	cli_resp_free(&r);
	return 0;
}

int
cli_rwatch_related(const json_t *ro, json_t **rsets, json_t **pods, json_t **runs)
{
	json_t **out[] = { rsets, pods, runs };
	char *q = related_query();
	int rc = 0;
	for (size_t i = 0; i < ARRAY_SIZE(related_kinds); i++) {
		const struct kind *k = kind_find_gvk(related_kinds[i].api_version,
		    related_kinds[i].kind);
		*out[i] = NULL;
		if (k == NULL || rc < 0 || list_get(k, obj_namespace(ro), q, out[i], NULL) < 0) {
			rc = k && rc == 0 ? -EIO : rc;
			*out[i] = json_array();
		}
	}
	free(q);
	return rc;
}

/* ---- the live view ------------------------------------------------------ */

struct rwatch;

struct stream {
	struct rwatch *w;
	const struct kind *k;
	char *query;		/* labelSelector / fieldSelector, escaped */
	json_t *objs;		/* name -> object */
	char *rv;		/* resume point */
	CURL *h;
	struct curl_slist *hdrs;
	struct buf line;
	bool relist;		/* the server said the rv is too old (410) */
	int failures;
	int64_t start_at;	/* monotonic ms; 0 = now */
};

struct rwatch {
	const char *ns;
	const char *name;
	CURLM *multi;
	struct stream s[4];	/* Rollout first */
	size_t n;
	bool dirty;
	bool gone;
	bool tty;
	char *shown;
};

/* The list part of list+watch: replaces the stream's objects. */
static int
stream_list(struct stream *s)
{
	json_t *items;
	char *rv;
	size_t i;
	json_t *o;
	if (list_get(s->k, s->w->ns, s->query, &items, &rv) < 0)
		return -EIO;
	json_object_clear(s->objs);
	json_array_foreach(items, i, o)
		json_object_set(s->objs, obj_name(o), o);
	json_decref(items);
	free(s->rv);
	s->rv = rv;
	s->relist = false;
	s->w->dirty = true;
	return 0;
}

static void
stream_event(struct stream *s, const char *type, json_t *obj)
{
	const char *rv = obj_str_at(obj, "metadata.resourceVersion");
	if (strcmp(type, "ERROR") == 0 || *type == '\0') {
		s->relist = true;
		return;
	}
	if (*rv) {
		free(s->rv);
		s->rv = xstrdup(rv);
	}
	if (strcmp(type, "BOOKMARK") == 0)
		return;
	if (strcmp(type, "DELETED") == 0) {
		json_object_del(s->objs, obj_name(obj));
		s->w->gone |= s == &s->w->s[0];
	} else {
		json_object_set(s->objs, obj_name(obj), obj);
	}
	s->w->dirty = true;
}

static size_t
stream_write(char *p, size_t size, size_t n, void *arg)
{
	struct stream *s = arg;
	for (size_t i = 0; i < size * n; i++) {
		if (p[i] != '\n') {
			buf_putc(&s->line, p[i]);
			continue;
		}
		json_t *ev = s->line.len ? json_loads(s->line.data, 0, NULL) : NULL;
		buf_reset(&s->line);
		if (ev == NULL)
			continue;
		stream_event(s, obj_str_at(ev, "type"), json_object_get(ev, "object"));
		json_decref(ev);
		if (s->relist)
			return 0;	/* ends the transfer; relisted next turn */
	}
	return size * n;
}

static void
stream_start(struct stream *s)
{
	struct buf q = BUF_INIT;
	if (s->query)
		buf_puts(&q, s->query);
	cli_query_add(&q, "watch", "true");
	cli_query_add(&q, "resourceVersion", s->rv ? s->rv : "");
	char *path = cli_path(s->k, s->w->ns, NULL, q.data);
	s->h = curl_easy_init();
	BUG_ON(s->h == NULL);
	s->hdrs = cli_curl_prepare(s->h, path, curl_slist_append(NULL, "Accept: application/json"));
	curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, stream_write);
	curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
	curl_multi_add_handle(s->w->multi, s->h);
	buf_reset(&s->line);
	free(path);
	buf_free(&q);
}

static void
stream_stop(struct stream *s)
{
	if (s->h == NULL)
		return;
	curl_multi_remove_handle(s->w->multi, s->h);
	curl_easy_cleanup(s->h);
	curl_slist_free_all(s->hdrs);
	s->h = NULL;
	s->hdrs = NULL;
}

/* A transfer ended: the server closed the watch (resume at once), or it
 * failed (back off up to 3 s; the server may be restarting), or the
 * stream needs a relist (after half a second, so that a server refusing
 * every watch is not asked in a tight loop). */
static void
stream_done(struct stream *s, CURLcode result)
{
	long code = 0;
	curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
	stream_stop(s);
	bool failed = (result != CURLE_OK && !s->relist) || code >= 400;
	s->failures = failed ? s->failures + 1 : 0;
	s->relist |= code == 410;
	s->start_at = time_mono_ms() + (failed ? (s->failures < 6 ? s->failures * 500 : 3000)
	    : s->relist ? 500 : 100);
}

/* Starts the streams that are due; a relist that fails waits too. */
static void
streams_start_due(struct rwatch *w)
{
	int64_t now = time_mono_ms();
	for (size_t i = 0; i < w->n; i++) {
		struct stream *s = &w->s[i];
		if (s->h || now < s->start_at)
			continue;
		if (s->relist && stream_list(s) < 0) {
			s->start_at = now + 3000;
			continue;
		}
		stream_start(s);
	}
}

static json_t *
values(const json_t *map)
{
	json_t *a = json_array();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)map, k, v)
		json_array_append(a, v);
	return a;
}

/* Renders the view; prints it when it changed (ANSI redraw on a tty, a
 * new block separated by a blank line otherwise). */
static void
rwatch_show(struct rwatch *w)
{
	json_t *ro = json_object_get(w->s[0].objs, w->name);
	w->dirty = false;
	if (ro == NULL)
		return;
	json_t *rsets = values(w->s[1].objs), *pods = values(w->s[2].objs);
	json_t *runs = w->n > 3 ? values(w->s[3].objs) : json_array();
	char *view = cli_rwatch_view(ro, rsets, pods, runs);
	char *text = xasprintf("Name:         %s\nNamespace:    %s\n%s", w->name, w->ns, view);
	free(view);
	json_decref(rsets);
	json_decref(pods);
	json_decref(runs);
	if (w->shown && strcmp(w->shown, text) == 0) {
		free(text);
		return;
	}
	if (w->tty)
		printf("\033[H\033[2J%s", text);
	else
		printf("%s%s", w->shown ? "\n" : "", text);
	fflush(stdout);
	free(w->shown);
	w->shown = text;
}

static int
rwatch_loop(struct rwatch *w, int64_t deadline)
{
	for (;;) {
		int running, left;
		CURLMsg *m;
		streams_start_due(w);
		curl_multi_perform(w->multi, &running);
		while ((m = curl_multi_info_read(w->multi, &left)))
			if (m->msg == CURLMSG_DONE) {
				char *priv = NULL;
				curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
				stream_done((struct stream *)(void *)priv, m->data.result);
			}
		if (w->dirty)
			rwatch_show(w);
		if (w->gone)
			return cli_err("rollout \"%s\" was deleted", w->name);
		int64_t now = time_mono_ms(), wait = 250;
		if (deadline && now >= deadline)
			return 0;
		if (deadline && deadline - now < wait)
			wait = deadline - now;
		curl_multi_poll(w->multi, NULL, 0, (int)wait, NULL);
	}
}

int
cli_rwatch_run(struct cli_opts *o, const struct kind *k, const char *ns, const char *name)
{
	int64_t ms = cli_timeout_ms(o, 0);
	if (ms < 0)
		return 1;
	struct rwatch w = { .ns = ns, .name = name, .tty = isatty(STDOUT_FILENO) };
	struct buf fq = BUF_INIT;
	char *fs = xasprintf("metadata.name=%s", name);
	cli_query_add(&fq, "fieldSelector", fs);
	free(fs);
	w.s[w.n++] = (struct stream){ .k = k, .query = buf_steal(&fq) };
	for (size_t i = 0; i < ARRAY_SIZE(related_kinds); i++) {
		const struct kind *rk = kind_find_gvk(related_kinds[i].api_version,
		    related_kinds[i].kind);
		if (rk)
			w.s[w.n++] = (struct stream){ .k = rk, .query = related_query() };
	}
	int rc = 0;
	for (size_t i = 0; i < w.n; i++) {
		w.s[i].w = &w;
		w.s[i].objs = json_object();
		if (rc == 0 && stream_list(&w.s[i]) < 0)
			rc = 1;
	}
	if (rc == 0 && json_object_get(w.s[0].objs, name) == NULL) {
		char ref[256];
		rc = cli_err("%s \"%s\" not found in namespace \"%s\"", cli_kind_ref(k, ref,
		    sizeof ref), name, ns);
	}
	if (rc == 0) {
		w.multi = curl_multi_init();
		rwatch_show(&w);
		rc = rwatch_loop(&w, ms ? time_mono_ms() + ms : 0);
	}
	for (size_t i = 0; i < w.n; i++) {
		stream_stop(&w.s[i]);
		json_decref(w.s[i].objs);
		free(w.s[i].query);
		free(w.s[i].rv);
		buf_free(&w.s[i].line);
	}
	if (w.multi)
		curl_multi_cleanup(w.multi);
	free(w.shown);
	return rc;
}
