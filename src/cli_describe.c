/* cli_describe.c — `v6 describe`: kubectl-like human descriptions. A small
 * writer aligns "Key:  value" runs; a table of kinds picks the sections
 * (Deployment, Pod, Service, HTTPRoute and Gateway with their status and
 * live traffic, generic fallback), and every description ends with the
 * object's Events. */
#include "cli.h"
#include "obj_print.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the aligned writer ---------------------------------------------- */

struct row {
	int ind;
	char *key;	/* NULL: a raw line in val */
	char *val;
};

struct dw {
	struct row *rows;
	size_t n;
	int64_t now;
	struct buf out;
};

static void
dw_push(struct dw *w, int ind, const char *key, char *val)
{
	w->rows = xrealloc(w->rows, (w->n + 1) * sizeof *w->rows);
	w->rows[w->n++] = (struct row){ ind, key ? xstrdup(key) : NULL, val };
}

static void
kv(struct dw *w, int ind, const char *key, const char *fmt, ...) V6_PRINTF(4, 5);

static void
kv(struct dw *w, int ind, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	dw_push(w, ind, key, xvasprintf(fmt, ap));
	va_end(ap);
}

static void
line(struct dw *w, int ind, const char *fmt, ...) V6_PRINTF(3, 4);

static void
line(struct dw *w, int ind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	dw_push(w, ind, NULL, xvasprintf(fmt, ap));
	va_end(ap);
}

/* Aligns consecutive key rows of the same indentation; a value with
 * newlines continues under its value column. */
static char *
dw_render(struct dw *w)
{
	for (size_t i = 0; i < w->n; ) {
		size_t j = i, width = 0;
		while (j < w->n && w->rows[j].key && w->rows[j].ind == w->rows[i].ind) {
			size_t l = strlen(w->rows[j].key) + 1;
			width = l > width ? l : width;
			j++;
		}
		if (j == i) {
			buf_printf(&w->out, "%*s%s\n", w->rows[i].ind, "", w->rows[i].val);
			i++;
			continue;
		}
		for (; i < j; i++) {
			struct row *r = &w->rows[i];
			int col = r->ind + (int)width + 2;
			buf_printf(&w->out, "%*s%s:%*s", r->ind, "", r->key,
			    (int)(width - strlen(r->key) - 1 + 2), "");
			for (const char *p = r->val; *p; p++) {
				buf_putc(&w->out, *p);
				if (*p == '\n')
					buf_printf(&w->out, "%*s", col, "");
			}
			buf_putc(&w->out, '\n');
		}
	}
	for (size_t i = 0; i < w->n; i++) {
		free(w->rows[i].key);
		free(w->rows[i].val);
	}
	free(w->rows);
	w->rows = NULL;
	w->n = 0;
	return buf_steal(&w->out);
}

/* ---- helpers ---------------------------------------------------------- */

static long long
num(const json_t *obj, const char *path)
{
	return json_integer_value(obj_get_path(obj, path));
}

static const char *
or_none(const char *s)
{
	return s && *s ? s : "<none>";
}

/* "k=v\nk2=v2" (or "<none>"); sep "=" for labels, ": " for annotations. */
static char *
map_lines(const json_t *map, const char *sep, const char *skip)
{
	struct buf b = BUF_INIT;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)map, k, v) {
		if (skip && strcmp(k, skip) == 0)
			continue;
		buf_printf(&b, "%s%s%s%s", b.len ? "\n" : "", k, sep,
		    json_is_string(v) ? json_string_value(v) : "");
	}
	if (b.len == 0)
		buf_puts(&b, "<none>");
	return buf_steal(&b);
}

static void
kv_map(struct dw *w, int ind, const char *key, const json_t *map, const char *sep)
{
	dw_push(w, ind, key, map_lines(map, sep, OBJ_LAST_APPLIED));
}

static void
kv_selector(struct dw *w, int ind, const char *key, const json_t *map)
{
	char *s = map_lines(map, "=", NULL);
	for (char *p = s; *p; p++)
		if (*p == '\n')
			*p = ',';
	dw_push(w, ind, key, s);
}

static void
kv_time(struct dw *w, const char *key, const char *ts)
{
	time_t t;
	char out[64];
	struct tm tm;
	if (ts == NULL || time_parse_rfc3339(ts, &t) < 0) {
		kv(w, 0, key, "<unknown>");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(out, sizeof out, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	kv(w, 0, key, "%s", out);
}

static void
describe_meta(struct dw *w, const struct kind *k, const json_t *obj)
{
	kv(w, 0, "Name", "%s", obj_name(obj));
	if (k->namespaced)
		kv(w, 0, "Namespace", "%s", obj_namespace(obj));
	kv_time(w, "CreationTimestamp", json_string_value(obj_get_path(obj,
	    "metadata.creationTimestamp")));
	kv_map(w, 0, "Labels", obj_labels(obj), "=");
	kv_map(w, 0, "Annotations", obj_get_path(obj, "metadata.annotations"), ": ");
}

static void
conditions(struct dw *w, const json_t *conds, bool with_reason)
{
	if (json_array_size(conds) == 0)
		return;
	line(w, 0, "Conditions:");
	struct buf b = BUF_INIT;
	size_t i;
	json_t *c;
	buf_printf(&b, "  %-16s %-8s %s\n  %-16s %-8s %s\n", "Type", "Status",
	    with_reason ? "Reason" : "", "----", "------", with_reason ? "------" : "");
	json_array_foreach(conds, i, c)
		buf_printf(&b, "  %-16s %-8s %s\n", obj_str_at(c, "type"), obj_str_at(c, "status"),
		    with_reason ? obj_str_at(c, "reason") : "");
	/* raw lines, trailing blanks trimmed */
	char *s = buf_steal(&b);
	for (char *p = strtok(s, "\n"); p; p = strtok(NULL, "\n")) {
		size_t n = strlen(p);
		while (n && p[n - 1] == ' ')
			p[--n] = '\0';
		line(w, 0, "%s", p);
	}
	free(s);
}

static void
container_ports(struct dw *w, int ind, const json_t *ct)
{
	struct buf b = BUF_INIT;
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(ct, "ports"), i, p) {
		const char *proto = obj_str_at(p, "protocol");
		buf_printf(&b, "%s%lld/%s", i ? ", " : "", num(p, "containerPort"),
		    *proto ? proto : "TCP");
	}
	kv(w, ind, "Port", "%s", or_none(b.data));
	buf_free(&b);
}

static void
container_env(struct dw *w, int ind, const json_t *ct)
{
	struct buf b = BUF_INIT;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(ct, "env"), i, e) {
		if (json_object_get(e, "valueFrom"))
			buf_printf(&b, "%s%s:  <set from a source>", i ? "\n" : "", obj_str_at(e, "name"));
		else
			buf_printf(&b, "%s%s:  %s", i ? "\n" : "", obj_str_at(e, "name"), obj_str_at(e, "value"));
	}
	if (b.len)
		dw_push(w, ind, "Environment", buf_steal(&b));
	else
		kv(w, ind, "Environment", "<none>");
	buf_free(&b);
}

static void
container_args(struct dw *w, int ind, const char *key, const json_t *list)
{
	if (json_array_size(list) == 0)
		return;
	struct buf b = BUF_INIT;
	size_t i;
	json_t *a;
	json_array_foreach(list, i, a)
		buf_printf(&b, "%s%s", i ? "\n" : "", json_string_value(a) ? json_string_value(a)
		    : "");
	dw_push(w, ind, key, buf_steal(&b));
}

static const json_t *
container_status(const json_t *pod, const char *name)
{
	size_t i;
	json_t *s;
	json_array_foreach(obj_get_path(pod, "status.containerStatuses"), i, s)
		if (strcmp(obj_str_at(s, "name"), name) == 0)
			return s;
	return NULL;
}

/* One ContainerState as "Running", "Waiting (REASON)" or "Terminated
 * (REASON, exit code N)" under key; none (an empty lastState) is skipped
 * unless always. */
static void
state_line(struct dw *w, int ind, const char *key, const json_t *state, bool always)
{
	if (json_object_get(state, "running"))
		kv(w, ind, key, "Running");
	else if (json_object_get(state, "waiting"))
		kv(w, ind, key, "Waiting (%s)", or_none(obj_str_at(state, "waiting.reason")));
	else if (json_object_get(state, "terminated"))
		kv(w, ind, key, "Terminated (%s, exit code %lld)",
		    or_none(obj_str_at(state, "terminated.reason")), num(state, "terminated.exitCode"));
	else if (always)
		kv(w, ind, key, "Waiting");
}

static void
container_state(struct dw *w, int ind, const json_t *st)
{
	state_line(w, ind, "State", json_object_get(st, "state"), true);
	state_line(w, ind, "Last State", json_object_get(st, "lastState"), false);
	kv(w, ind, "Ready", "%s", json_is_true(json_object_get(st, "ready")) ? "True" : "False");
	kv(w, ind, "Restart Count", "%lld", num(st, "restartCount"));
}

static void
containers(struct dw *w, int ind, const json_t *podspec, const json_t *pod)
{
	json_t *cs = json_object_get(podspec, "containers");
	size_t i;
	json_t *ct;
	line(w, ind, "Containers:");
	int name_ind = ind ? ind + 1 : 2, in = ind ? ind + 2 : 4;	/* as kubectl */
	json_array_foreach(cs, i, ct) {
		line(w, name_ind, "%s:", obj_str_at(ct, "name"));
		kv(w, in, "Image", "%s", obj_str_at(ct, "image"));
		container_ports(w, in, ct);
		container_args(w, in, "Command", json_object_get(ct, "command"));
		container_args(w, in, "Args", json_object_get(ct, "args"));
		if (pod)
			container_state(w, in, container_status(pod, obj_str_at(ct, "name")));
		container_env(w, in, ct);
	}
}

char *
cli_describe_pod_template(const json_t *tpl)
{
	struct dw w = { 0 };
	line(&w, 0, "Pod Template:");
	kv_map(&w, 2, "Labels", obj_get_path(tpl, "metadata.labels"), "=");
	kv_map(&w, 2, "Annotations", obj_get_path(tpl, "metadata.annotations"), ": ");
	containers(&w, 2, json_object_get(tpl, "spec"), NULL);
	return dw_render(&w);
}

/* ---- kinds ------------------------------------------------------------ */

static void
int_or_percent(const json_t *v, char *out, size_t len)
{
	if (json_is_string(v))
		snprintf(out, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, len, "%lld", (long long)json_integer_value(v));
	else
		snprintf(out, len, "25%%");
}

static void
describe_deployment(struct dw *w, struct cli_opts *o, const json_t *d)
{
	(void)o;
	json_t *rep = obj_get_path(d, "spec.replicas");
	kv_selector(w, 0, "Selector", obj_get_path(d, "spec.selector.matchLabels"));
	kv(w, 0, "Replicas", "%lld desired | %lld updated | %lld total | %lld available | "
	    "%lld unavailable", rep ? json_integer_value(rep) : 1,
	    num(d, "status.updatedReplicas"), num(d, "status.replicas"),
	    num(d, "status.availableReplicas"), num(d, "status.unavailableReplicas"));
	const char *type = obj_str_at(d, "spec.strategy.type");
	kv(w, 0, "StrategyType", "%s", *type ? type : "RollingUpdate");
	kv(w, 0, "MinReadySeconds", "%lld", num(d, "spec.minReadySeconds"));
	if (!*type || strcmp(type, "RollingUpdate") == 0) {
		json_t *ru = obj_get_path(d, "spec.strategy.rollingUpdate");
		char mu[32], ms[32];
		int_or_percent(json_object_get(ru, "maxUnavailable"), mu, sizeof mu);
		int_or_percent(json_object_get(ru, "maxSurge"), ms, sizeof ms);
		kv(w, 0, "RollingUpdateStrategy", "%s max unavailable, %s max surge", mu, ms);
	}
	line(w, 0, "Pod Template:");
	kv_map(w, 2, "Labels", obj_get_path(d, "spec.template.metadata.labels"), "=");
	containers(w, 2, obj_get_path(d, "spec.template.spec"), NULL);
	conditions(w, obj_get_path(d, "status.conditions"), true);
}

static void
describe_pod(struct dw *w, struct cli_opts *o, const json_t *p)
{
	(void)o;
	kv(w, 0, "Node", "%s", or_none(obj_str_at(p, "spec.nodeName")));
	kv(w, 0, "Status", "%s", or_none(obj_str_at(p, "status.phase")));
	kv(w, 0, "IP", "%s", or_none(obj_str_at(p, "status.podIP")));
	size_t i;
	json_t *ref;
	json_array_foreach(obj_get_path(p, "metadata.ownerReferences"), i, ref)
		if (json_is_true(json_object_get(ref, "controller")))
			kv(w, 0, "Controlled By", "%s/%s", obj_str_at(ref, "kind"), obj_str_at(ref, "name"));
	containers(w, 0, json_object_get(p, "spec"), p);
	conditions(w, obj_get_path(p, "status.conditions"), false);
}

static char *
endpoints_of(const char *ns, const char *name)
{
	const struct kind *k = kind_find_gvk("v1", "Endpoints");
	struct cli_resp r;
	struct buf b = BUF_INIT;
	if (k == NULL)
		return xstrdup("<none>");
	char *path = cli_path(k, ns, name, NULL);
	int rc = cli_http("GET", path, NULL, NULL, &r);
	free(path);
	if (rc < 0)
		return xstrdup("<none>");
	size_t i, j, l;
	json_t *sub, *a, *p;
	json_array_foreach(json_object_get(r.body, "subsets"), i, sub)
		json_array_foreach(json_object_get(sub, "addresses"), j, a)
			json_array_foreach(json_object_get(sub, "ports"), l, p)
				buf_printf(&b, "%s%s:%lld", b.len ? "," : "", obj_str_at(a, "ip"),
				    num(p, "port"));
	cli_resp_free(&r);
	if (b.len == 0)
		buf_puts(&b, "<none>");
	return buf_steal(&b);
}

/* "12.4 req/s, 0.0% errors, avg 1.2 ms, p99 4.1 ms" of a traffic.v6.dev
 * object or one of its revisions. */
static void
traffic_figures(struct buf *b, const json_t *t)
{
	buf_printf(b, "%.1f req/s, %.1f%% errors, avg %.1f ms, p99 %.1f ms",
	    json_number_value(json_object_get(t, "requestsPerSecond")),
	    100 * json_number_value(json_object_get(t, "errorRate")),
	    json_number_value(json_object_get(t, "averageLatencyMs")),
	    json_number_value(json_object_get(t, "p99LatencyMs")));
}

/* The Service's live traffic from traffic.v6.dev: the whole, then one line
 * per revision; "<none>" without figures. */
static char *
traffic_of(const char *ns, const char *name)
{
	struct cli_resp r;
	struct buf b = BUF_INIT;
	char *path = xasprintf("/apis/traffic.v6.dev/v1alpha1/namespaces/%s/services/%s",
	    ns, name);
	int rc = cli_http("GET", path, NULL, NULL, &r);
	free(path);
	if (rc < 0)
		return xstrdup("<none>");
	if (r.status == 200 && json_number_value(json_object_get(r.body,
	    "requestsPerSecond")) > 0) {
		size_t i;
		json_t *rev;
		traffic_figures(&b, r.body);
		buf_printf(&b, " (last %s)", obj_str_at(r.body, "window"));
		json_array_foreach(json_object_get(r.body, "revisions"), i, rev) {
			buf_printf(&b, "\n%s: ", or_none(obj_str_at(rev, "revision")));
			traffic_figures(&b, rev);
		}
	}
	cli_resp_free(&r);
	if (b.len == 0)
		buf_puts(&b, "<none>");
	return buf_steal(&b);
}

static void
describe_service(struct dw *w, struct cli_opts *o, const json_t *s)
{
	(void)o;
	const char *type = obj_str_at(s, "spec.type");
	kv_selector(w, 0, "Selector", obj_get_path(s, "spec.selector"));
	kv(w, 0, "Type", "%s", *type ? type : "ClusterIP");
	kv(w, 0, "IP", "%s", or_none(obj_str_at(s, "spec.clusterIP")));
	size_t i;
	json_t *p;
	json_array_foreach(obj_get_path(s, "spec.ports"), i, p) {
		const char *proto = obj_str_at(p, "protocol");
		json_t *tp = json_object_get(p, "targetPort");
		kv(w, 0, "Port", "%s  %lld/%s", or_none(obj_str_at(p, "name")), num(p, "port"),
		    *proto ? proto : "TCP");
		if (json_is_string(tp))
			kv(w, 0, "TargetPort", "%s/%s", json_string_value(tp), *proto ? proto : "TCP");
		else
			kv(w, 0, "TargetPort", "%lld/%s", tp ? (long long)json_integer_value(tp)
			    : num(p, "port"), *proto ? proto : "TCP");
	}
	dw_push(w, 0, "Endpoints", endpoints_of(obj_namespace(s), obj_name(s)));
	dw_push(w, 0, "Traffic", traffic_of(obj_namespace(s), obj_name(s)));
}

/* ---- Gateway API ------------------------------------------------------ */

/* A GET of a core object; NULL when it is not there (or no server). */
static json_t *
get_core(const char *kind, const char *ns, const char *name)
{
	const struct kind *k = kind_find_gvk("v1", kind);
	struct cli_resp r;
	json_t *out = NULL;
	if (k == NULL)
		return NULL;
	char *path = cli_path(k, ns, name, NULL);
	if (cli_http("GET", path, NULL, NULL, &r) == 0) {
		if (r.status == 200)
			out = json_incref(r.body);
		cli_resp_free(&r);
	}
	free(path);
	return out;
}

/* "2 ready, 1 not ready" endpoints of Service ns/name behind its port
 * number port (the Endpoints name their ports after the Service's). */
static char *
ready_endpoints(const char *ns, const char *name, long long port)
{
	json_t *svc = get_core("Service", ns, name);
	if (svc == NULL)
		return xstrdup("Service not found");
	json_t *ep = get_core("Endpoints", ns, name), *sp, *sub, *p;
	const char *pname = NULL;
	size_t i, j, ready = 0, unready = 0;
	json_array_foreach(obj_get_path(svc, "spec.ports"), i, sp)
		if (num(sp, "port") == port && pname == NULL)
			pname = obj_str_at(sp, "name");
	json_array_foreach(json_object_get(ep, "subsets"), i, sub)
		json_array_foreach(json_object_get(sub, "ports"), j, p)
			if (pname && strcmp(obj_str_at(p, "name"), pname) == 0) {
				ready += json_array_size(json_object_get(sub, "addresses"));
				unready += json_array_size(json_object_get(sub, "notReadyAddresses"));
			}
	char *out = pname ? xasprintf("%zu ready, %zu not ready", ready, unready)
	    : xasprintf("Service has no port %lld", port);
	json_decref(svc);
	json_decref(ep);
	return out;
}

/* "gateway/edge:http" (namespace first when it is not the route's). */
static void
parent_name(struct buf *b, const json_t *ref, const char *route_ns)
{
	const char *kind = obj_str_at(ref, "kind"), *ns = obj_str_at(ref, "namespace");
	buf_printf(b, "%s/", *kind && strcmp(kind, "Gateway") != 0 ? "service" : "gateway");
	if (*ns && strcmp(ns, route_ns) != 0)
		buf_printf(b, "%s/", ns);
	buf_puts(b, obj_str_at(ref, "name"));
	if (*obj_str_at(ref, "sectionName"))
		buf_printf(b, ":%s", obj_str_at(ref, "sectionName"));
}

/* "Type=Status (Reason): message" per condition, one per line. */
static void
condition_lines(struct buf *b, const json_t *conds)
{
	const json_t *c;
	size_t i;
	json_array_foreach(conds, i, c)
		buf_printf(b, "%s%s=%s (%s)%s%s", i ? "\n" : "", obj_str_at(c, "type"), obj_str_at(c, "status"),
		    obj_str_at(c, "reason"), *obj_str_at(c, "message") ? ": " : "", obj_str_at(c, "message"));
}

/* Whether the route is attached to each parent, from status.parents. */
static void
route_parents(struct dw *w, const json_t *r)
{
	const json_t *ref, *p;
	size_t i, j;
	line(w, 0, "Parents:");
	json_array_foreach(obj_get_path(r, "spec.parentRefs"), i, ref) {
		struct buf name = BUF_INIT, st = BUF_INIT;
		parent_name(&name, ref, obj_namespace(r));
		json_array_foreach(obj_get_path(r, "status.parents"), j, p) {
			const json_t *pr = json_object_get(p, "parentRef");
			if (st.len == 0 && strcmp(obj_str_at(pr, "name"), obj_str_at(ref, "name")) == 0 &&
			    strcmp(obj_str_at(pr, "sectionName"), obj_str_at(ref, "sectionName")) == 0 &&
			    strcmp(obj_str_at(pr, "namespace"), obj_str_at(ref, "namespace")) == 0 &&
			    num(pr, "port") == num(ref, "port"))
				condition_lines(&st, json_object_get(p, "conditions"));
		}
		if (st.len == 0)
			buf_puts(&st, "unknown (no status yet)");
		dw_push(w, 2, name.data, buf_steal(&st));
		buf_free(&name);
	}
}

/* "PathPrefix /api, header x-canary=1, query v=2, method GET" per match. */
static char *
route_matches(const json_t *rule)
{
	struct buf b = BUF_INIT;
	const json_t *m, *h;
	size_t i, j;
	json_array_foreach(json_object_get(rule, "matches"), i, m) {
		const char *pt = obj_str_at(m, "path.type");
		buf_printf(&b, "%s%s %s", i ? "\n" : "", *pt ? pt : "PathPrefix",
		    *obj_str_at(m, "path.value") ? obj_str_at(m, "path.value") : "/");
		json_array_foreach(json_object_get(m, "headers"), j, h)
			buf_printf(&b, ", header %s%s%s", obj_str_at(h, "name"),
			    strcmp(obj_str_at(h, "type"), "RegularExpression") == 0 ? "~" : "=",
			    obj_str_at(h, "value"));
		json_array_foreach(json_object_get(m, "queryParams"), j, h)
			buf_printf(&b, ", query %s=%s", obj_str_at(h, "name"), obj_str_at(h, "value"));
		if (*obj_str_at(m, "method"))
			buf_printf(&b, ", method %s", obj_str_at(m, "method"));
	}
	if (b.len == 0)
		buf_puts(&b, "PathPrefix / (every request)");
	return buf_steal(&b);
}

static char *
route_filters(const json_t *rule)
{
	struct buf b = BUF_INIT;
	const json_t *f, *h;
	size_t i, j;
	json_array_foreach(json_object_get(rule, "filters"), i, f) {
		const json_t *m = json_object_get(f, "requestHeaderModifier");
		const char *sep = ": ";
		buf_printf(&b, "%s%s", i ? "\n" : "", obj_str_at(f, "type"));
		json_array_foreach(json_object_get(m, "set"), j, h) {
			buf_printf(&b, "%sset %s=%s", sep, obj_str_at(h, "name"), obj_str_at(h, "value"));
			sep = ", ";
		}
		json_array_foreach(json_object_get(m, "add"), j, h) {
			buf_printf(&b, "%sadd %s=%s", sep, obj_str_at(h, "name"), obj_str_at(h, "value"));
			sep = ", ";
		}
		json_array_foreach(json_object_get(m, "remove"), j, h) {
			buf_printf(&b, "%sremove %s", sep, json_string_value(h) ?
			    json_string_value(h) : "");
			sep = ", ";
		}
	}
	return b.len ? buf_steal(&b) : xstrdup("<none>");
}

/* Each backend: weight, ready endpoints and the Service's live traffic. */
static void
route_backends(struct dw *w, const json_t *r, const json_t *rule)
{
	const json_t *br;
	size_t i;
	json_array_foreach(json_object_get(rule, "backendRefs"), i, br) {
		const char *ns = *obj_str_at(br, "namespace") ? obj_str_at(br, "namespace") : obj_namespace(r);
		const char *kind = obj_str_at(br, "kind");
		const json_t *wt = json_object_get(br, "weight");
		char *key = xasprintf("%s/%s:%lld", ns, obj_str_at(br, "name"), num(br, "port"));
		if (*kind && strcmp(kind, "Service") != 0) {
			kv(w, 6, key, "%s (not supported by v6)", kind);
			free(key);
			continue;
		}
		char *eps = ready_endpoints(ns, obj_str_at(br, "name"), num(br, "port"));
		char *traffic = traffic_of(ns, obj_str_at(br, "name"));
		kv(w, 6, key, "weight %lld, endpoints: %s\ntraffic: %s",
		    wt ? (long long)json_integer_value(wt) : 1LL, eps, traffic);
		free(traffic);
		free(eps);
		free(key);
	}
}

static void
describe_httproute(struct dw *w, struct cli_opts *o, const json_t *r)
{
	(void)o;
	struct buf hs = BUF_INIT;
	const json_t *h, *rule;
	size_t i;
	json_array_foreach(obj_get_path(r, "spec.hostnames"), i, h)
		buf_printf(&hs, "%s%s", i ? ", " : "", json_string_value(h) ? json_string_value(h)
		    : "");
	if (hs.len == 0)
		buf_puts(&hs, "* (any)");
	dw_push(w, 0, "Hostnames", buf_steal(&hs));
	route_parents(w, r);
	line(w, 0, "Rules:");
	json_array_foreach(obj_get_path(r, "spec.rules"), i, rule) {
		const json_t *t = json_object_get(rule, "timeouts");
		line(w, 2, "Rule %zu:", i);
		dw_push(w, 4, "Matches", route_matches(rule));
		dw_push(w, 4, "Filters", route_filters(rule));
		if (t)
			kv(w, 4, "Timeouts", "request %s, backendRequest %s",
			    or_none(obj_str_at(t, "request")), or_none(obj_str_at(t, "backendRequest")));
		else
			kv(w, 4, "Timeouts", "<none>");
		line(w, 4, "Backends:");
		route_backends(w, r, rule);
	}
}

static void
describe_gateway(struct dw *w, struct cli_opts *o, const json_t *g)
{
	(void)o;
	const json_t *gl, *ls;
	size_t i, j;
	struct buf b = BUF_INIT;
	kv(w, 0, "GatewayClass", "%s", or_none(obj_str_at(g, "spec.gatewayClassName")));
	const json_t *a = json_array_get(obj_get_path(g, "status.addresses"), 0);
	kv(w, 0, "Address", "%s", or_none(obj_str_at(a ? a : json_array_get(obj_get_path(g,
	    "spec.addresses"), 0), "value")));
	condition_lines(&b, obj_get_path(g, "status.conditions"));
	dw_push(w, 0, "Conditions", b.len ? buf_steal(&b) : xstrdup("<none>"));
	line(w, 0, "Listeners:");
	json_array_foreach(obj_get_path(g, "spec.listeners"), i, gl) {
		const json_t *st = NULL;
		json_array_foreach(obj_get_path(g, "status.listeners"), j, ls)
			if (strcmp(obj_str_at(ls, "name"), obj_str_at(gl, "name")) == 0)
				st = ls;
		line(w, 2, "%s:", obj_str_at(gl, "name"));
		kv(w, 4, "Port", "%lld/%s", num(gl, "port"), obj_str_at(gl, "protocol"));
		kv(w, 4, "Hostname", "%s", *obj_str_at(gl, "hostname") ? obj_str_at(gl, "hostname") : "* (any)");
		kv(w, 4, "Allowed Routes", "from %s", *obj_str_at(gl, "allowedRoutes.namespaces.from") ?
		    obj_str_at(gl, "allowedRoutes.namespaces.from") : "Same");
		if (st)
			kv(w, 4, "Attached Routes", "%lld", num(st, "attachedRoutes"));
		else
			kv(w, 4, "Attached Routes", "unknown (no status yet)");
		condition_lines(&b, json_object_get(st, "conditions"));
		dw_push(w, 4, "Conditions", b.len ? buf_steal(&b) : xstrdup("<none>"));
	}
}

static void
describe_generic(struct dw *w, struct cli_opts *o, const json_t *obj)
{
	(void)o;
	static const char *const parts[] = { "spec", "data", "status" };
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		json_t *v = json_object_get(obj, parts[i]);
		if (v == NULL)
			continue;
		char *y = cli_yaml_dump(v);
		line(w, 0, "%c%s:", parts[i][0] - 32, parts[i] + 1);
		for (char *p = strtok(y, "\n"); p; p = strtok(NULL, "\n"))
			line(w, 2, "%s", p);
		free(y);
	}
}

/* Raw lines of text (a view rendered elsewhere) at indentation ind. */
static void
text_lines(struct dw *w, int ind, char *text)
{
	for (char *p = text, *nl; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p) - 1;
		else
			*nl = '\0';
		line(w, ind, "%s", p);
	}
	free(text);
}

/* The view of `v6 rollout watch` (cli_rwatch.c), then the conditions. */
static void
describe_rollout(struct dw *w, struct cli_opts *o, const json_t *ro)
{
	(void)o;
	json_t *rsets, *pods, *runs;
	kv_selector(w, 0, "Selector", obj_get_path(ro, "spec.selector.matchLabels"));
	cli_rwatch_related(ro, &rsets, &pods, &runs);
	text_lines(w, 0, cli_rwatch_view(ro, rsets, pods, runs));
	json_decref(rsets);
	json_decref(pods);
	json_decref(runs);
	conditions(w, obj_get_path(ro, "status.conditions"), true);
}

static void
describe_analysisrun(struct dw *w, struct cli_opts *o, const json_t *run)
{
	(void)o;
	size_t i;
	json_t *ref;
	json_array_foreach(obj_get_path(run, "metadata.ownerReferences"), i, ref)
		if (json_is_true(json_object_get(ref, "controller")))
			kv(w, 0, "Controlled By", "%s/%s", obj_str_at(ref, "kind"), obj_str_at(ref, "name"));
	text_lines(w, 0, cli_rwatch_analysisrun(run));
}

/* kubectl's HPA description: reference, each metric current / target, the
 * limits, the behavior's windows and policies, pods, conditions. */
static void
hpa_rules(struct dw *w, const char *title, const json_t *r)
{
	const json_t *p;
	size_t i;
	if (!r)
		return;
	line(w, 2, "%s:", title);
	kv(w, 4, "Stabilization Window", "%lld seconds",
	    num(r, "stabilizationWindowSeconds"));
	kv(w, 4, "Select Policy", "%s", obj_str_at(r, "selectPolicy"));
	line(w, 4, "Policies:");
	json_array_foreach(json_object_get(r, "policies"), i, p)
		line(w, 6, "- Type: %-7s  Value: %-4lld  Period: %lld seconds",
		    obj_str_at(p, "type"), num(p, "value"), num(p, "periodSeconds"));
}

/* The conditions with their messages: they say which window or limit
 * shaped the last decision. */
static void
hpa_conditions(struct dw *w, const json_t *conds)
{
	const json_t *c;
	size_t i;
	int rw = (int)strlen("Reason"), tw = 14;
	if (json_array_size(conds) == 0)
		return;
	json_array_foreach(conds, i, c) {
		if ((int)strlen(obj_str_at(c, "reason")) > rw)
			rw = (int)strlen(obj_str_at(c, "reason"));
		if ((int)strlen(obj_str_at(c, "type")) > tw)
			tw = (int)strlen(obj_str_at(c, "type"));	/* the VPA's are longer */
	}
	line(w, 0, "Conditions:");
	line(w, 2, "%-*s  %-6s  %-*s  %s", tw, "Type", "Status", rw, "Reason", "Message");
	line(w, 2, "%-*s  %-6s  %-*s  %s", tw, "----", "------", rw, "------", "-------");
	json_array_foreach(conds, i, c)
		line(w, 2, "%-*s  %-6s  %-*s  %s", tw, obj_str_at(c, "type"),
		    obj_str_at(c, "status"), rw, obj_str_at(c, "reason"), obj_str_at(c, "message"));
}

static void
describe_hpa(struct dw *w, struct cli_opts *o, const json_t *h)
{
	(void)o;
	char *label, *value;
	kv(w, 0, "Reference", "%s/%s", obj_str_at(h, "spec.scaleTargetRef.kind"),
	    obj_str_at(h, "spec.scaleTargetRef.name"));
	kv(w, 0, "Metrics", "( current / target )");
	for (size_t i = 0; print_hpa_metric_line(h, i, &label, &value); i++) {
		dw_push(w, 2, label, value);
		free(label);
	}
	json_t *min = obj_get_path(h, "spec.minReplicas");
	kv(w, 0, "Min replicas", "%lld", min ? json_integer_value(min) : 1);
	kv(w, 0, "Max replicas", "%lld", num(h, "spec.maxReplicas"));
	const json_t *beh = obj_get_path(h, "spec.behavior");
	if (beh) {
		line(w, 0, "Behavior:");
		hpa_rules(w, "Scale Up", json_object_get(beh, "scaleUp"));
		hpa_rules(w, "Scale Down", json_object_get(beh, "scaleDown"));
	}
	kv(w, 0, "Last scale time", "%s", *obj_str_at(h, "status.lastScaleTime") ?
	    obj_str_at(h, "status.lastScaleTime") : "<never>");
	char pods[96];
	snprintf(pods, sizeof pods, "%s pods", obj_str_at(h, "spec.scaleTargetRef.kind"));
	kv(w, 0, pods, "%lld current / %lld desired", num(h, "status.currentReplicas"),
	    num(h, "status.desiredReplicas"));
	hpa_conditions(w, obj_get_path(h, "status.conditions"));
}

/* The VPA: its target and mode, then per container requests, usage and
 * recommendation (cli_vpa.c), then the conditions. */
static void
describe_vpa(struct dw *w, struct cli_opts *o, const json_t *v)
{
	(void)o;
	json_t *target, *cps;
	kv(w, 0, "Reference", "%s/%s", obj_str_at(v, "spec.targetRef.kind"),
	    obj_str_at(v, "spec.targetRef.name"));
	kv(w, 0, "Update Mode", "%s", or_none(obj_str_at(v, "spec.updatePolicy.updateMode")));
	cli_vpa_related(v, &target, &cps);
	text_lines(w, 0, cli_vpa_view(v, target, cps));
	json_decref(target);
	json_decref(cps);
	hpa_conditions(w, obj_get_path(v, "status.conditions"));
}

static const struct {
	const char *kind;
	void (*fn)(struct dw *w, struct cli_opts *o, const json_t *obj);
} describers[] = {
	{ "VerticalPodAutoscaler", describe_vpa },
	{ "HorizontalPodAutoscaler", describe_hpa },
	{ "Rollout", describe_rollout },
	{ "AnalysisRun", describe_analysisrun },
	{ "Deployment", describe_deployment },
	{ "Pod", describe_pod },
	{ "Service", describe_service },
	{ "HTTPRoute", describe_httproute },
	{ "Gateway", describe_gateway },
};

/* ---- events ----------------------------------------------------------- */

/* When an Event last happened, as kubectl reads it: lastTimestamp, else
 * eventTime (events.k8s.io), else creation. */
static const char *
event_last(const json_t *e)
{
	static const char *const paths[] = { "lastTimestamp", "series.lastObservedTime",
		"eventTime", "metadata.creationTimestamp" };
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if (*obj_str_at(e, paths[i]))
			return obj_str_at(e, paths[i]);
	return "";
}

static time_t
event_time(const json_t *e)
{
	time_t t = 0;
	return time_parse_rfc3339(event_last(e), &t) == 0 ? t : 0;
}

/* Oldest first, as kubectl's SortableEvents (by lastTimestamp). */
static int
event_cmp(const void *a, const void *b)
{
	time_t ta = event_time(*(const json_t *const *)a);
	time_t tb = event_time(*(const json_t *const *)b);
	return ta < tb ? -1 : ta > tb;
}

/* kubectl's Age column: "5s", or "5s (x3 over 2m)" for a repeated Event. */
static void
event_age(const json_t *e, int64_t now, char *out, size_t len)
{
	char last[32], first[32];
	cli_age(event_last(e), now, last);
	json_int_t count = json_integer_value(json_object_get(e, "count"));
	const char *ft = obj_str_at(e, "firstTimestamp");
	if (count > 1 && *ft) {
		cli_age(ft, now, first);
		snprintf(out, len, "%s (x%lld over %s)", last, (long long)count, first);
	} else {
		snprintf(out, len, "%s", last);
	}
}

static void
events(struct dw *w, const struct kind *k, const json_t *obj)
{
	const struct kind *ek = kind_find_gvk("v1", "Event");
	struct cli_resp r = { 0 };
	struct buf q = BUF_INIT;
	char *fs = xasprintf("involvedObject.name=%s,involvedObject.kind=%s", obj_name(obj),
	    k->kind);
	cli_query_add(&q, "fieldSelector", fs);
	char *path = ek ? cli_path(ek, k->namespaced ? obj_namespace(obj) : NULL, NULL, q.data)
	    : NULL;
	json_t *items = NULL;
	if (path && cli_http("GET", path, NULL, NULL, &r) == 0 && r.status == 200)
		items = json_object_get(r.body, "items");
	free(path);
	free(fs);
	buf_free(&q);
	if (json_array_size(items) == 0) {
		kv(w, 0, "Events", "<none>");
		cli_resp_free(&r);
		return;
	}
	line(w, 0, "Events:");
	size_t i, n = json_array_size(items);
	json_t *e;
	const json_t **sorted = xcalloc(n, sizeof *sorted);
	json_array_foreach(items, i, e)
		sorted[i] = e;
	qsort(sorted, n, sizeof *sorted, event_cmp);
	line(w, 2, "%-8s %-20s %-8s %-24s %s", "Type", "Reason", "Age", "From", "Message");
	line(w, 2, "%-8s %-20s %-8s %-24s %s", "----", "------", "----", "----", "-------");
	for (i = 0; i < n; i++) {
		char age[96];
		event_age(sorted[i], w->now, age, sizeof age);
		const char *from = obj_str_at(sorted[i], "source.component");
		line(w, 2, "%-8s %-20s %-8s %-24s %s", obj_str_at(sorted[i], "type"),
		    obj_str_at(sorted[i], "reason"), age,
		    *from ? from : obj_str_at(sorted[i], "reportingComponent"), obj_str_at(sorted[i], "message"));
	}
	free(sorted);
	cli_resp_free(&r);
}

/* GET path (freed) into r; 0, or 1 with the error printed and r freed. */
static int
get_200(char *path, struct cli_resp *r)
{
	int rc = cli_http("GET", path, NULL, NULL, r);
	free(path);
	if (rc < 0)
		return 1;
	if (r->status != 200) {
		cli_print_error(r, NULL);
		cli_resp_free(r);
		return 1;
	}
	return 0;
}

static int
describe_one(struct cli_opts *o, const struct kind *k, const char *name)
{
	struct cli_resp r;
	if (get_200(cli_path(k, cli_ns(o), name, NULL), &r))
		return 1;
	struct dw w = { .now = time_now_ms() };
	describe_meta(&w, k, r.body);
	void (*fn)(struct dw *, struct cli_opts *, const json_t *) = describe_generic;
	for (size_t i = 0; i < ARRAY_SIZE(describers); i++)
		if (strcmp(describers[i].kind, k->kind) == 0)
			fn = describers[i].fn;
	fn(&w, o, r.body);
	events(&w, k, r.body);
	char *s = dw_render(&w);
	fputs(s, stdout);
	free(s);
	cli_resp_free(&r);
	return 0;
}

/* `describe KIND [-l SEL]`: every object of KIND in the namespace that the
 * selector matches, as kubectl does. */
static int
describe_selected(struct cli_opts *o, const struct kind *k)
{
	struct buf q = BUF_INIT;
	struct cli_resp r;
	if (o->selector)
		cli_query_add(&q, "labelSelector", o->selector);
	char *path = cli_path(k, cli_ns(o), NULL, q.data);
	buf_free(&q);
	if (get_200(path, &r))
		return 1;
	json_t *items = json_object_get(r.body, "items");
	size_t i;
	json_t *it;
	if (json_array_size(items) == 0)
		fprintf(stderr, "No resources found in %s namespace.\n", cli_ns(o));
	int rc = 0;
	json_array_foreach(items, i, it) {
		if (i)
			fputc('\n', stdout);
		rc |= describe_one(o, k, obj_name(it));
	}
	cli_resp_free(&r);
	return rc;
}

int
cli_describe(struct cli_opts *o)
{
	int rc = 0;
	size_t shown = 0;
	if (o->nargs == 0)
		return cli_err("you must specify the type of resource to describe, e.g. "
		    "'v6 describe deployment web'");
	if (cli_alert_resource(o->args[0]))
		return cli_alert_describe(o);
	bool slash = strchr(o->args[0], '/') != NULL;
	if (!slash && o->nargs == 1) {
		const struct kind *k = cli_kind(o->args[0]);
		return k ? describe_selected(o, k) : 1;
	}
	if (o->selector)
		return cli_err("a name and a selector (-l) cannot both be given");
	for (size_t i = slash ? 0 : 1; i < o->nargs; i++) {
		const char *arg = o->args[i], *name = arg;
		char *kname = NULL;
		const char *s = strchr(arg, '/');
		if (s) {
			kname = xstrndup(arg, (size_t)(s - arg));
			name = s + 1;
		}
		const struct kind *k = cli_kind(kname ? kname : o->args[0]);
		free(kname);
		if (k == NULL)
			return 1;
		if (shown++)
			fputc('\n', stdout);
		rc |= describe_one(o, k, name);
	}
	return rc;
}
