/* cli_get.c — `v6 get` (tables, -o yaml|json|name|jsonpath, -w watch) and
 * `v6 version`. Resolves "KIND[,KIND] [NAME...]" and "KIND/NAME" arguments
 * into requests, fetches the objects and hands them to cli_print.c. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum out { OUT_TABLE, OUT_WIDE, OUT_YAML, OUT_JSON, OUT_NAME, OUT_JSONPATH };

struct req {
	const struct kind *k;
	const char **names;
	size_t nnames;
	json_t *objs;		/* array of what was fetched */
	char *list_rv;		/* resourceVersion of the list, for -w */
};

struct get {
	struct cli_opts *o;
	enum out out;
	const char *jsonpath;
	struct req *reqs;
	size_t nreqs;
	bool single;		/* exactly one object asked for by name */
	int rc;
};

static int
parse_output(const char *s, enum out *out, const char **jsonpath)
{
	static const struct { const char *name; enum out out; } map[] = {
		{ "wide", OUT_WIDE }, { "yaml", OUT_YAML }, { "json", OUT_JSON },
		{ "name", OUT_NAME },
	};
	*out = OUT_TABLE;
	if (s == NULL)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcmp(s, map[i].name) == 0) {
			*out = map[i].out;
			return 0;
		}
	if (str_has_prefix(s, "jsonpath=")) {
		*out = OUT_JSONPATH;
		*jsonpath = s + 9;
		return 0;
	}
	cli_err("unable to match a printer suitable for the output format \"%s\", allowed "
	    "formats are: json,jsonpath,name,wide,yaml", s);
	return -EINVAL;
}

static struct req *
req_for(struct get *g, const struct kind *k)
{
	for (size_t i = 0; i < g->nreqs; i++)
		if (g->reqs[i].k == k)
			return &g->reqs[i];
	g->reqs = xrealloc(g->reqs, (g->nreqs + 1) * sizeof *g->reqs);
	struct req *r = &g->reqs[g->nreqs++];
	memset(r, 0, sizeof *r);
	r->k = k;
	r->objs = json_array();
	return r;
}

static void
req_add_name(struct req *r, const char *name)
{
	r->names = xrealloc(r->names, (r->nnames + 1) * sizeof *r->names);
	r->names[r->nnames++] = name;
}

/* "KIND/NAME ..." form. */
static int
parse_slash_args(struct get *g, const char **args, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *slash = strchr(args[i], '/');
		if (slash == NULL) {
			cli_err("there is no need to specify a resource type as a separate argument "
			    "when passing arguments in resource/name form (e.g. 'v6 get "
			    "resource/<resource_name>' instead of 'v6 get resource "
			    "resource/<resource_name>'");
			return -EINVAL;
		}
		char *kname = xstrndup(args[i], (size_t)(slash - args[i]));
		const struct kind *k = cli_kind(kname);
		free(kname);
		if (k == NULL)
			return -EINVAL;
		req_add_name(req_for(g, k), slash + 1);
	}
	return 0;
}

/* "KIND[,KIND...] [NAME...]" form. */
static int
parse_kind_args(struct get *g, const char **args, size_t n)
{
	char *list = xstrdup(args[0]), *save = NULL;
	int rc = 0;
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		const struct kind *k = cli_kind(t);
		if (k == NULL) {
			rc = -EINVAL;
			break;
		}
		struct req *r = req_for(g, k);
		for (size_t i = 1; i < n; i++)
			req_add_name(r, args[i]);
	}
	free(list);
	return rc;
}

static int
parse_resources(struct get *g, const char **args, size_t n)
{
	if (n == 0) {
		cli_err("you must specify the type of resource to %s, e.g. 'v6 %s deployments'",
		    g->o->verb, g->o->verb);
		return -EINVAL;
	}
	bool slash = false;
	for (size_t i = 0; i < n; i++)
		slash |= strchr(args[i], '/') != NULL;
	int rc = slash ? parse_slash_args(g, args, n) : parse_kind_args(g, args, n);
	g->single = rc == 0 && g->nreqs == 1 && g->reqs[0].nnames == 1;
	return rc;
}

static void
fill_type(json_t *obj, const struct kind *k)
{
	if (json_object_get(obj, "apiVersion") == NULL)
		json_object_set_new(obj, "apiVersion", json_string(k->api_version));
	if (json_object_get(obj, "kind") == NULL)
		json_object_set_new(obj, "kind", json_string(k->kind));
}

static const char *
req_ns(const struct get *g)
{
	return g->o->all_ns ? NULL : cli_ns(g->o);
}

static int
fetch_named(struct get *g, struct req *r)
{
	for (size_t i = 0; i < r->nnames; i++) {
		struct cli_resp resp;
		char *path = cli_path(r->k, req_ns(g) ? req_ns(g) : cli_ns(g->o), r->names[i], NULL);
		int rc = cli_http("GET", path, NULL, NULL, &resp);
		free(path);
		if (rc < 0)
			return rc;
		if (resp.status == 200 && json_is_object(resp.body)) {
			fill_type(resp.body, r->k);
			json_array_append(r->objs, resp.body);
		} else {
			cli_print_error(&resp, NULL);
			g->rc = 1;
		}
		cli_resp_free(&resp);
	}
	return 0;
}

static char *
list_query(const struct cli_opts *o, const char *extra_field)
{
	struct buf q = BUF_INIT;
	if (o->selector)
		cli_query_add(&q, "labelSelector", o->selector);
	if (o->field_selector && extra_field) {
		char *fs = xasprintf("%s,%s", o->field_selector, extra_field);
		cli_query_add(&q, "fieldSelector", fs);
		free(fs);
	} else if (o->field_selector || extra_field) {
		cli_query_add(&q, "fieldSelector", o->field_selector ? o->field_selector
		    : extra_field);
	}
	return buf_steal(&q);
}

/* When an event last happened: lastTimestamp, else eventTime, else creation. */
static const char *
event_time(const json_t *ev)
{
	const char *ts = json_string_value(json_object_get(ev, "lastTimestamp"));
	if (ts == NULL)
		ts = json_string_value(json_object_get(ev, "eventTime"));
	if (ts == NULL)
		ts = json_string_value(obj_get_path(ev, "metadata.creationTimestamp"));
	return ts ? ts : "";
}

static int
by_event_time(const void *a, const void *b)
{
	return strcmp(event_time(*(json_t *const *)a), event_time(*(json_t *const *)b));
}

/* Events are listed oldest first, the latest at the bottom, as `kubectl
 * events` shows them. (eventTime has microseconds; the string order of
 * RFC 3339 UTC stamps is their time order to the second.) */
static void
sort_events(struct req *r)
{
	size_t n = json_array_size(r->objs);
	json_t **v = xcalloc(n + 1, sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(r->objs, i));
	qsort(v, n, sizeof *v, by_event_time);
	json_array_clear(r->objs);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(r->objs, v[i]);
	free(v);
}

static int
fetch_list(struct get *g, struct req *r)
{
	struct cli_resp resp;
	char *q = list_query(g->o, NULL);
	char *path = cli_path(r->k, req_ns(g), NULL, q);
	int rc = cli_http("GET", path, NULL, NULL, &resp);
	free(path);
	free(q);
	if (rc < 0)
		return rc;
	if (resp.status != 200) {
		cli_print_error(&resp, NULL);
		g->rc = 1;
		cli_resp_free(&resp);
		return 0;
	}
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(resp.body, "items"), i, it) {
		fill_type(it, r->k);
		json_array_append(r->objs, it);
	}
	const char *rv = json_string_value(obj_get_path(resp.body, "metadata.resourceVersion"));
	r->list_rv = xstrdup(rv ? rv : "");
	if (strcmp(r->k->kind, "Event") == 0)
		sort_events(r);
	cli_resp_free(&resp);
	return 0;
}

/* ---- jsonpath (the subset: {.a.b[0].c}, [*], text between) ----------- */

static void jp_eval(const json_t *v, const char *p, json_t *out);

static void
jp_index(const json_t *v, const char *p, json_t *out)
{
	const char *close = strchr(p, ']');
	if (close == NULL)
		return;
	if (p[1] == '*') {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
			jp_eval(e, close + 1, out);
		return;
	}
	long idx = strtol(p + 1, NULL, 10);
	if (idx < 0)
		idx += (long)json_array_size(v);
	json_t *e = json_array_get(v, (size_t)idx);
	if (e)
		jp_eval(e, close + 1, out);
}

static void
jp_eval(const json_t *v, const char *p, json_t *out)
{
	if (*p == '\0') {
		json_array_append(out, (json_t *)v);
		return;
	}
	if (*p == '[') {
		jp_index(v, p, out);
		return;
	}
	if (*p != '.')
		return;
	p++;
	size_t n = strcspn(p, ".[");
	if (n == 0) {
		jp_eval(v, p, out);
		return;
	}
	json_t *child = json_object_getn(v, p, n);
	if (child)
		jp_eval(child, p + n, out);
}

static void
jp_print(const json_t *root, const char *tmpl, struct buf *b)
{
	for (const char *p = tmpl; *p; ) {
		const char *close = *p == '{' ? strchr(p, '}') : NULL;
		if (close == NULL) {
			buf_putc(b, *p++);
			continue;
		}
		char *expr = xstrndup(p + 1, (size_t)(close - p - 1));
		json_t *res = json_array();
		jp_eval(root, expr, res);
		size_t i;
		json_t *e;
		json_array_foreach(res, i, e) {
			char *s = json_is_string(e) ? xstrdup(json_string_value(e))
			    : json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
			buf_printf(b, "%s%s", i ? " " : "", s);
			free(s);
		}
		json_decref(res);
		free(expr);
		p = close + 1;
	}
}

/* ---- printing --------------------------------------------------------- */

static size_t
total_objs(const struct get *g)
{
	size_t n = 0;
	for (size_t i = 0; i < g->nreqs; i++)
		n += json_array_size(g->reqs[i].objs);
	return n;
}

static json_t *
as_list(const struct get *g)
{
	json_t *items = json_array();
	for (size_t i = 0; i < g->nreqs; i++)
		json_array_extend(items, g->reqs[i].objs);
	return json_pack("{s:s, s:o, s:s, s:{s:s}}", "apiVersion", "v1", "items", items, "kind",
	    "List", "metadata", "resourceVersion", "");
}

/* --export: a copy of v (an object or a List) without the server's fields. */
static json_t *
exported(const json_t *v)
{
	json_t *c = json_deep_copy(v), *it;
	size_t i;
	if (json_is_array(json_object_get(c, "items")))
		json_array_foreach(json_object_get(c, "items"), i, it)
			obj_strip_server_fields(it);
	else
		obj_strip_server_fields(c);
	return c;
}

static void
print_doc(const struct get *g, const json_t *doc)
{
	char *s = NULL;
	struct buf b = BUF_INIT;
	json_t *v = g->o->export_ ? exported(doc) : json_incref((json_t *)doc);
	switch (g->out) {
	case OUT_YAML:
		s = cli_yaml_dump(v);
		break;
	case OUT_JSON:
		s = cli_json_dump(v);
		break;
	default:
		jp_print(v, g->jsonpath, &b);
		s = buf_steal(&b);
		break;
	}
	fputs(s, stdout);
	free(s);
	json_decref(v);
}

static int
table_flags(const struct get *g, const struct kind *k)
{
	return (g->out == OUT_WIDE ? CLI_TBL_WIDE : 0) |
	    (g->o->all_ns && k->namespaced ? CLI_TBL_NS : 0) |
	    (g->o->show_labels ? CLI_TBL_LABELS : 0) |
	    (g->nreqs > 1 ? CLI_TBL_KINDREF : 0) |
	    (g->o->no_headers ? CLI_TBL_NOHEAD : 0);
}

static void
print_tables(const struct get *g)
{
	bool first = true;
	int64_t now = time_now_ms();
	for (size_t i = 0; i < g->nreqs; i++) {
		const struct req *r = &g->reqs[i];
		if (json_array_size(r->objs) == 0)
			continue;
		struct cli_table *t = cli_table_new(r->k, NULL, table_flags(g, r->k), now);
		size_t j;
		json_t *obj;
		json_array_foreach(r->objs, j, obj)
			cli_table_add(t, obj);
		char *s = cli_table_render(t);
		printf("%s%s", first ? "" : "\n", s);
		free(s);
		cli_table_free(t);
		first = false;
	}
}

static void
print_names(const struct get *g)
{
	char ref[512];
	for (size_t i = 0; i < g->nreqs; i++) {
		size_t j;
		json_t *obj;
		json_array_foreach(g->reqs[i].objs, j, obj)
			printf("%s\n", cli_obj_ref(g->reqs[i].k, obj_name(obj), ref, sizeof ref));
	}
}

static void
print_none(const struct get *g)
{
	bool namespaced = false;
	for (size_t i = 0; i < g->nreqs; i++)
		namespaced |= g->reqs[i].k->namespaced;
	if (g->o->all_ns || !namespaced)
		fputs("No resources found\n", stderr);
	else
		fprintf(stderr, "No resources found in %s namespace.\n", cli_ns(g->o));
}

static void
print_all(struct get *g)
{
	size_t n = total_objs(g);
	if (n == 0 && (g->out == OUT_TABLE || g->out == OUT_WIDE || g->out == OUT_NAME)) {
		if (g->rc == 0)
			print_none(g);
		return;
	}
	if (g->out == OUT_TABLE || g->out == OUT_WIDE) {
		print_tables(g);
	} else if (g->out == OUT_NAME) {
		print_names(g);
	} else if (g->single) {
		if (n)
			print_doc(g, json_array_get(g->reqs[0].objs, 0));
	} else {
		json_t *list = as_list(g);
		print_doc(g, list);
		json_decref(list);
	}
}

/* ---- watch ------------------------------------------------------------ */

struct watch_ctx {
	struct get *g;
	struct cli_table *t;
};

static int
on_event(const char *type, json_t *obj, void *arg)
{
	struct watch_ctx *w = arg;
	struct get *g = w->g;
	char ref[512];
	if (!json_is_object(obj) || strcmp(type, "ERROR") == 0 || type[0] == '\0')
		return strcmp(type, "ERROR") == 0 ? -EIO : 0;
	fill_type(obj, g->reqs[0].k);
	if (g->out == OUT_NAME) {
		printf("%s\n", cli_obj_ref(g->reqs[0].k, obj_name(obj), ref, sizeof ref));
	} else if (g->out == OUT_TABLE || g->out == OUT_WIDE) {
		cli_table_add(w->t, obj);
		char *s = cli_table_render_new_rows(w->t);
		fputs(s, stdout);
		free(s);
	} else {
		if (g->out == OUT_YAML)
			fputs("---\n", stdout);
		print_doc(g, obj);
	}
	fflush(stdout);
	return 0;
}

static int
watch(struct get *g)
{
	struct req *r = &g->reqs[0];
	int64_t ms = cli_timeout_ms(g->o, 0);
	if (ms < 0)
		return 1;
	struct watch_ctx w = { g, cli_table_new(r->k, NULL, table_flags(g, r->k),
	    time_now_ms()) };
	size_t i;
	json_t *obj;
	json_array_foreach(r->objs, i, obj)	/* widths as the table printed */
		cli_table_add(w.t, obj);
	if (json_array_size(r->objs))	/* else the header comes with the first event */
		free(cli_table_render(w.t));
	char *field = r->nnames ? xasprintf("metadata.name=%s", r->names[0]) : NULL;
	char *q = list_query(g->o, field);
	struct buf qb = BUF_INIT;
	buf_puts(&qb, q);
	cli_query_add(&qb, "watch", "true");
	cli_query_add(&qb, "resourceVersion", r->list_rv ? r->list_rv : "");
	char *path = cli_path(r->k, req_ns(g), NULL, qb.data);
	fflush(stdout);
	int rc = cli_watch(path, ms ? time_mono_ms() + ms : 0, on_event, &w);
	free(path);
	buf_free(&qb);
	free(q);
	free(field);
	cli_table_free(w.t);
	return rc == 0 || rc == -ETIMEDOUT ? g->rc : 1;
}

static int
fetch_all(struct get *g)
{
	for (size_t i = 0; i < g->nreqs; i++) {
		struct req *r = &g->reqs[i];
		int rc = r->nnames && !g->o->watch ? fetch_named(g, r) : fetch_list(g, r);
		if (rc < 0)
			return rc;
		if (r->nnames && g->o->watch) {	/* -w NAME: keep only that object */
			json_t *keep = json_array();
			size_t j;
			json_t *obj;
			json_array_foreach(r->objs, j, obj)
				if (strcmp(obj_name(obj), r->names[0]) == 0)
					json_array_append(keep, obj);
			json_decref(r->objs);
			r->objs = keep;
		}
	}
	return 0;
}

int
cli_get(struct cli_opts *o)
{
	struct get g = { .o = o };
	int rc = 1;
	if (o->nargs > 0 && cli_alert_resource(o->args[0]))
		return cli_alert_get(o);
	if (parse_output(o->output, &g.out, &g.jsonpath) < 0 ||
	    parse_resources(&g, o->args, o->nargs) < 0)
		goto out;
	if (o->watch && (g.nreqs != 1 || g.reqs[0].nnames > 1)) {
		cli_err("you may only specify a single resource type (and at most one name) "
		    "with --watch");
		goto out;
	}
	if (fetch_all(&g) < 0)
		goto out;
	if (o->watch && g.out != OUT_TABLE && g.out != OUT_WIDE) {
		size_t i;
		json_t *obj;
		struct watch_ctx w = { &g, NULL };
		json_array_foreach(g.reqs[0].objs, i, obj)
			on_event("ADDED", obj, &w);
	} else {
		print_all(&g);
	}
	rc = o->watch && g.rc == 0 ? watch(&g) : g.rc;
out:
	for (size_t i = 0; i < g.nreqs; i++) {
		free(g.reqs[i].names);
		json_decref(g.reqs[i].objs);
		free(g.reqs[i].list_rv);
	}
	free(g.reqs);
	return rc;
}

/* ---- version ---------------------------------------------------------- */

int
cli_version(struct cli_opts *o)
{
	enum out out;
	const char *jp = NULL;
	if (parse_output(o->output, &out, &jp) < 0)
		return 1;
	json_t *client = json_pack("{s:s, s:s, s:s}", "major", "0", "minor", "1", "gitVersion",
	    "v" V6_VERSION);
	struct cli_resp r = { 0 };
	int rc = cli_http("GET", "/version", NULL, NULL, &r);
	if (out == OUT_JSON || out == OUT_YAML) {
		json_t *v = json_pack("{s:O}", "clientVersion", client);
		if (rc == 0 && r.status == 200)
			json_object_set(v, "serverVersion", r.body);
		char *s = out == OUT_JSON ? cli_json_dump(v) : cli_yaml_dump(v);
		fputs(s, stdout);
		free(s);
		json_decref(v);
	} else {
		printf("Client Version: v%s\n", V6_VERSION);
		const char *gv = json_string_value(json_object_get(r.body, "gitVersion"));
		if (rc == 0 && r.status == 200)
			printf("Server Version: %s\n", gv ? gv : "unknown");
	}
	if (rc == 0 && r.status != 200) {
		cli_print_error(&r, NULL);
		rc = -EIO;
	}
	cli_resp_free(&r);
	json_decref(client);
	return rc < 0 ? 1 : 0;
}
