/* api_server.c — the Kubernetes REST front of the server: routes
 * /api/v1/... and /apis/GROUP/VERSION/... requests from http.c to the object
 * operations in api_objects.c and the store, serves lists, watches,
 * discovery, /version and health, and renders every error as a Kubernetes
 * Status. Responses to writes wait for the group commit (api_flush) so that
 * nothing is acknowledged before it is durable. */
#include "api.h"
#include "api_table.h"
#include "auth.h"
#include "http.h"
#include "log.h"
#include "obs_metrics.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define V6_KUBE_MINOR "31"
#define WATCH_MAX_PENDING (32u << 20)

struct pending {
	struct http_req *req;
	int status;
	char *body;
	bool is_write;
	struct pending *next;
};

struct watch;

struct api {
	uv_loop_t *loop;
	struct store *st;
	struct api_alloc *alloc;	/* Service addresses over st */
	struct http_server *http;
	uv_check_t flush_check;		/* commits what I/O callbacks staged */
	uv_prepare_t flush_prepare;	/* commits what timers and idle work staged */
	struct pending *pend_head, **pend_tail;
	struct watch *watches;
	struct list_stream *lists;	/* streamed lists waiting for a drain */
	struct api_events *events;	/* Event aggregation and expiry */
	bool stopping;
	struct subres {
		const char *kind, *sub;
		api_subresource_fn fn;
		void *arg;
	} subres[8];
	size_t nsubres;
	struct group_handler {
		const char *group;
		const char *version;	/* listed in /apis when set */
		api_group_fn fn;
		void *arg;
	} groups[8];
	size_t ngroups;
	struct path_handler {
		const char *path;
		api_path_fn fn;
		void *arg;
		bool prefix;	/* api_register_prefix: every path under it */
	} paths[16];
	size_t npaths;
	struct api_audit *audit;	/* NULL: no audit log */
	struct auth *auth;		/* api_auth.c's state; NULL: not started */
};

/* Kinds with a /scale subresource (spec.replicas, status.replicas). */
static const char *const scalable_kinds[] = { "Deployment", "ReplicaSet", "StatefulSet",
	"Rollout" };

static bool
is_scalable(const struct kind *k)
{
	for (size_t i = 0; i < ARRAY_SIZE(scalable_kinds); i++)
		if (strcmp(k->kind, scalable_kinds[i]) == 0)
			return true;
	return false;
}

void
api_register_subresource(struct api *api, const char *kind, const char *sub,
    api_subresource_fn fn, void *arg)
{
	BUG_ON(api->nsubres == ARRAY_SIZE(api->subres));
	api->subres[api->nsubres++] = (struct subres){ kind, sub, fn, arg };
}

void
api_register_group(struct api *api, const char *group, api_group_fn fn, void *arg)
{
	BUG_ON(api->ngroups == ARRAY_SIZE(api->groups));
	api->groups[api->ngroups++] = (struct group_handler){ group, NULL, fn, arg };
}

void
api_group_version(struct api *api, const char *group, const char *version)
{
	for (size_t i = 0; i < api->ngroups; i++)
		if (strcmp(api->groups[i].group, group) == 0)
			api->groups[i].version = version;
}

static const struct subres *
find_subres(const struct api *api, const struct kind *k, const char *sub)
{
	for (size_t i = 0; i < api->nsubres; i++)
		if (strcmp(api->subres[i].kind, k->kind) == 0 &&
		    strcmp(api->subres[i].sub, sub) == 0)
			return &api->subres[i];
	return NULL;
}

struct watch {
	struct api *api;
	struct http_req *req;
	struct store_watch *sw;
	const struct kind *k;
	struct selector *ls;
	struct field_selector *fs;
	json_t *sent;		/* "ns/name" -> true: objects the client holds */
	const char *table;	/* a Table apiVersion: events carry one-row Tables */
	enum table_include include;
	bool table_head_sent;	/* the first Table carried the column definitions */
	uv_timer_t timer;
	bool ended;
	struct watch *next;
};

struct route {
	const struct kind *k;
	const char *ns;		/* NULL: every namespace */
	const char *name;	/* NULL: the collection */
	const char *sub;	/* NULL or "status" */
};

struct auth **
api_auth_slot(struct api *api)
{
	return &api->auth;
}

struct store *
api_store(struct api *api)
{
	return api->st;
}

uv_loop_t *
api_loop(struct api *api)
{
	return api->loop;
}

struct api_events *
api_events_of(struct api *api)
{
	return api->events;
}

/* ---- responses --------------------------------------------------------- */

/* A JSON string of s even when s holds bytes that are not UTF-8 (they
 * become U+FFFD): error messages quote what the client sent. */
static json_t *
text_json(const char *s)
{
	json_t *v = json_string(s);
	if (!v) {
		char *clean = utf8_sanitize(s);
		v = json_string(clean);
		free(clean);
	}
	return v;
}

static char *
status_json(int code, const char *reason, const char *message, const struct api_error *err)
{
	json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:o, s:s, s:i}", "kind", "Status",
	    "apiVersion", "v1", "metadata", "status", code < 400 ? "Success" : "Failure",
	    "message", text_json(message), "reason", reason, "code", code);
	if (err && (err->name || err->kind || err->causes.n)) {
		json_t *d = json_object();
		if (err->name)
			json_object_set_new(d, "name", text_json(err->name));
		if (err->kind) {
			if (err->kind->group[0])
				json_object_set_new(d, "group", json_string(err->kind->group));
			json_object_set_new(d, "kind", json_string(err->kind->plural));
		}
		if (err->causes.n) {
			json_t *causes = json_array();
			for (size_t i = 0; i < err->causes.n; i++)
				json_array_append_new(causes, json_pack("{s:s, s:o, s:o}",
				    "reason", err->causes.v[i].reason,
				    "message", text_json(err->causes.v[i].message),
				    "field", text_json(err->causes.v[i].field)));
			json_object_set_new(d, "causes", causes);
		}
		json_object_set_new(st, "details", d);
	}
	char *s = json_dumps(st, JSON_COMPACT);
	json_decref(st);
	return s;
}

static const char *
reason_for(int code)
{
	switch (code) {
	case 400: return "BadRequest";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "NotFound";
	case 405: return "MethodNotAllowed";
	case 406: return "NotAcceptable";
	case 408: return "Timeout";
	case 409: return "Conflict";
	case 410: return "Expired";
	case 413: return "RequestEntityTooLarge";
	case 415: return "UnsupportedMediaType";
	case 422: return "Invalid";
	case 429: return "TooManyRequests";
	case 431: return "RequestHeaderFieldsTooLarge";
	case 503: return "ServiceUnavailable";
	default: return code >= 500 ? "InternalError" : "BadRequest";
	}
}

void
api_respond_status(struct http_req *req, int code, const char *message)
{
	char *body = status_json(code, reason_for(code), message, NULL);
	http_respond(req, code, "application/json", body, strlen(body));
	free(body);
}

void
api_respond_json(struct http_req *req, int code, json_t *obj)
{
	char *body = json_dumps(obj, JSON_COMPACT);
	http_respond(req, code, "application/json", body, strlen(body));
	free(body);
	json_decref(obj);
}

json_t *
api_group_discovery(const char *rest, const char *group, const char *version,
    json_t *resources)
{
	char gv[256], path[64];
	snprintf(gv, sizeof gv, "%s/%s", group, version);
	snprintf(path, sizeof path, "/%s", version);
	json_t *o = NULL;
	if (!strcmp(rest, "") || !strcmp(rest, "/"))
		o = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}], s:{s:s, s:s}}", "kind",
		    "APIGroup", "apiVersion", "v1", "name", group, "versions", "groupVersion",
		    gv, "version", version, "preferredVersion", "groupVersion", gv,
		    "version", version);
	else if (!strcmp(rest, path) || (str_has_prefix(rest, path) &&
	    !strcmp(rest + strlen(path), "/")))
		o = json_pack("{s:s, s:s, s:s, s:O}", "kind", "APIResourceList", "apiVersion",
		    "v1", "groupVersion", gv, "resources", resources);
	json_decref(resources);
	return o;
}

/* Status bodies for the errors http.c answers on its own (400, 408, 413...). */
static char *
http_error_status(int status, const char *message, const char **content_type)
{
	*content_type = "application/json";
	return status_json(status, reason_for(status), message, NULL);
}

static void
send_now(struct http_req *req, int status, const char *body)
{
	http_respond(req, status, "application/json", body, strlen(body));
}

/* Answers req with body (taken). While writes are staged, the answer waits
 * for the commit so that a client never sees an unacknowledged write. */
static void
reply(struct api *api, struct http_req *req, int status, char *body, bool is_write)
{
	api_audit_response(api->audit, req, body);
	if (!store_dirty(api->st)) {
		send_now(req, status, body);
		free(body);
		return;
	}
	struct pending *p = xcalloc(1, sizeof *p);
	p->req = req;
	p->status = status;
	p->body = body;
	p->is_write = is_write;
	*api->pend_tail = p;
	api->pend_tail = &p->next;
}

static void
reply_obj(struct api *api, struct http_req *req, int status, const json_t *obj, bool is_write)
{
	reply(api, req, status, json_dumps(obj, JSON_COMPACT), is_write);
}

static void
reply_error(struct api *api, struct http_req *req, const struct api_error *err)
{
	reply(api, req, err->code, status_json(err->code, err->reason, err->message, err),
	    false);
}

static void
reply_status(struct api *api, struct http_req *req, int code, const char *fmt, ...)
    V6_PRINTF(4, 5);

static void
reply_status(struct api *api, struct http_req *req, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	reply(api, req, code, status_json(code, reason_for(code), msg, NULL), false);
	free(msg);
}

void
api_flush(struct api *api)
{
	int rc = store_dirty(api->st) ? store_flush(api->st) : 0;
	if (rc < 0)
		log_error("api", "commit failed: %s; answering staged writes with 500",
		    strerror(-rc));
	/* Detach the batch first: answering a request can dispatch the next
	 * pipelined one at once (http.h), and its answer must queue afresh. */
	struct pending *list = api->pend_head;
	api->pend_head = NULL;
	api->pend_tail = &api->pend_head;
	while (list) {
		struct pending *p = list;
		list = p->next;
		if (rc < 0 && p->is_write) {
			char *msg = xasprintf("storage commit failed: %s", strerror(-rc));
			free(p->body);
			p->body = status_json(500, "InternalError", msg, NULL);
			p->status = 500;
			free(msg);
		}
		send_now(p->req, p->status, p->body);
		free(p->body);
		free(p);
	}
}

/* The group commit point. It runs twice per loop iteration: in a check
 * handle, after the I/O callbacks (requests) of the iteration, and in a
 * prepare handle, just before the loop blocks, for what timers and idle
 * handles (controllers, the node agent) staged — otherwise their writes
 * would wait for the next unrelated wake-up. Watch callbacks run inside a
 * flush may stage more writes: commit those too, a bounded number of times
 * (the next iteration takes the rest). */
static void
flush_all(struct api *api)
{
	for (int i = 0; i < 8; i++) {
		api_flush(api);
		if (!store_dirty(api->st))
			break;
	}
}

static void
on_flush_check(uv_check_t *h)
{
	flush_all(h->data);
}

static void
on_flush_prepare(uv_prepare_t *h)
{
	flush_all(h->data);
}

/* ---- discovery --------------------------------------------------------- */

static const char *const verbs_all[] = { "create", "delete", "deletecollection", "get",
	"list", "patch", "update", "watch" };

/* Namespaces cannot be deleted as a collection, as in Kubernetes. */
static bool
has_verb(const struct kind *k, const char *verb)
{
	return !(strcmp(verb, "deletecollection") == 0 && strcmp(k->kind, "Namespace") == 0);
}

/* Sets key of o to the list in csv ("a,b"), unless csv is empty. */
static void
set_list(json_t *o, const char *key, const char *csv)
{
	json_t *a = json_array();
	char *copy = xstrdup(csv), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(t));
	free(copy);
	if (json_array_size(a))
		json_object_set_new(o, key, a);
	else
		json_decref(a);
}

static json_t *
resource_list(const char *group, const char *version)
{
	json_t *res = json_array();
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		if (strcmp(k->group, group) != 0 || !kind_serves_version(k, version))
			continue;
		json_t *verbs = json_array(), *shorts = json_array();
		for (size_t v = 0; v < ARRAY_SIZE(verbs_all); v++)
			if (has_verb(k, verbs_all[v]))
				json_array_append_new(verbs, json_string(verbs_all[v]));
		json_t *r = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", k->plural,
		    "singularName", k->singular, "namespaced", k->namespaced, "kind", k->kind,
		    "verbs", verbs);
		json_decref(shorts);
		set_list(r, "shortNames", k->short_names);
		set_list(r, "categories", kind_categories(k));
		json_array_append_new(res, r);
		if (k->has_status) {
			char name[128];
			snprintf(name, sizeof name, "%s/status", k->plural);
			json_array_append_new(res, json_pack("{s:s, s:s, s:b, s:s, s:[sss]}",
			    "name", name, "singularName", "", "namespaced", k->namespaced,
			    "kind", k->kind, "verbs", "get", "patch", "update"));
		}
	}
	char gv[96];
	snprintf(gv, sizeof gv, "%s%s%s", group, group[0] ? "/" : "", version);
	return json_pack("{s:s, s:s, s:s, s:o}", "kind", "APIResourceList", "apiVersion", "v1",
	    "groupVersion", gv, "resources", res);
}

static json_t *
api_group(const char *group)
{
	json_t *versions = json_array();
	json_t *preferred = NULL;
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		if (strcmp(k->group, group) != 0)
			continue;
		bool seen = false;
		size_t j;
		json_t *v;
		json_array_foreach(versions, j, v)
			if (strcmp(json_string_value(json_object_get(v, "version")), k->version) == 0)
				seen = true;
		if (seen)
			continue;
		json_t *gv = json_pack("{s:s, s:s}", "groupVersion", k->api_version,
		    "version", k->version);
		json_array_append_new(versions, gv);
		if (!preferred)
			preferred = json_incref(gv);
	}
	if (!preferred) {
		json_decref(versions);
		return NULL;
	}
	const char *alias;
	for (size_t i = 0; (alias = kind_alias_version(group, i)) != NULL; i++)
		json_array_append_new(versions, json_pack("{s:s++, s:s}", "groupVersion", group,
		    "/", alias, "version", alias));
	return json_pack("{s:s, s:s, s:s, s:o, s:o}", "kind", "APIGroup", "apiVersion", "v1",
	    "name", group, "versions", versions, "preferredVersion", preferred);
}

static json_t *
api_group_list(const struct api *api)
{
	json_t *groups = json_array();
	for (size_t i = 0; i < kind_count(); i++) {
		const struct kind *k = kind_at(i);
		if (!k->group[0])
			continue;
		bool seen = false;
		size_t j;
		json_t *g;
		json_array_foreach(groups, j, g)
			if (strcmp(json_string_value(json_object_get(g, "name")), k->group) == 0)
				seen = true;
		if (seen)
			continue;
		json_t *one = api_group(k->group);
		json_object_del(one, "kind");
		json_object_del(one, "apiVersion");
		json_array_append_new(groups, one);
	}
	for (size_t i = 0; i < api->ngroups; i++) {	/* aggregated APIs: metrics.k8s.io */
		const struct group_handler *g = &api->groups[i];
		char gv[160];
		if (!g->version)
			continue;
		snprintf(gv, sizeof gv, "%s/%s", g->group, g->version);
		json_array_append_new(groups, json_pack("{s:s, s:[{s:s, s:s}], s:{s:s, s:s}}",
		    "name", g->group, "versions", "groupVersion", gv, "version", g->version,
		    "preferredVersion", "groupVersion", gv, "version", g->version));
	}
	return json_pack("{s:s, s:s, s:o}", "kind", "APIGroupList", "apiVersion", "v1",
	    "groups", groups);
}

static json_t *
version_info(void)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "major", "1", "minor", V6_KUBE_MINOR,
	    "gitVersion", "v1." V6_KUBE_MINOR ".0+v6." V6_VERSION,
	    "gitCommit", "", "buildDate", __DATE__, "goVersion", "none (C11)",
	    "compiler", "gcc", "platform", "linux/amd64");
}

/* ---- routing ----------------------------------------------------------- */

/* Splits the path into at most max segments (in place in a copy). An empty
 * segment ("//") makes the path unknown: returns (size_t)-1. */
static size_t
split_path(char *p, char **seg, size_t max)
{
	size_t n = 0;
	if (*p == '/')
		p++;
	while (*p && n < max) {
		char *slash = strchr(p, '/');
		if (slash == p)
			return (size_t)-1;
		seg[n++] = p;
		if (!slash)
			break;
		*slash = '\0';
		p = slash + 1;
	}
	return n;
}

/* Resolves PATH segments after the group/version to a route.
 * Returns 0, or -1 with err set. */
static int
parse_route(const struct api *api, const char *group, const char *version, char **seg,
    size_t n, struct route *r, struct api_error *err)
{
	memset(r, 0, sizeof *r);
	if (n >= 3 && strcmp(seg[0], "namespaces") == 0) {
		const struct kind *k = kind_find_resource(group, version, seg[2]);
		if (k && k->namespaced) {
			r->k = k;
			r->ns = seg[1];
			r->name = n > 3 ? seg[3] : NULL;
			r->sub = n > 4 ? seg[4] : NULL;
			if (n > 5)
				goto notfound;
			goto check_sub;
		}
	}
	if (n == 0 || n > 3)
		goto notfound;
	r->k = kind_find_resource(group, version, seg[0]);
	if (!r->k)
		goto notfound;
	r->name = n > 1 ? seg[1] : NULL;
	r->sub = n > 2 ? seg[2] : NULL;
	if (!r->k->namespaced)
		r->ns = "";
	else if (r->name)
		goto notfound;	/* a namespaced object needs its namespace */
check_sub:
	if (r->sub && !(strcmp(r->sub, "status") == 0 && r->k->has_status) &&
	    !(strcmp(r->sub, "scale") == 0 && is_scalable(r->k)) && !find_subres(api, r->k, r->sub))
		goto notfound;
	return 0;
notfound:
	api_error_set(err, 404, "NotFound", "the server could not find the requested resource");
	return -1;
}

/* ---- list and get ------------------------------------------------------ */

/*
 * Lists are read from the store in passes of LIST_PASS objects and written
 * as they are read: a list without ?limit= is one chunked response whose
 * size does not depend on memory (a pass stops while more than
 * LIST_PENDING_MAX bytes wait for the client, and resumes on drain); a list
 * with ?limit= is one page with a continue token. Every pass and every page
 * reads the store as it was at the list's resourceVersion
 * (store_list_page), so a list is one snapshot however long it takes, and a
 * continue token expires (410) only when the journal was compacted past it.
 */
#define LIST_PASS		500
#define LIST_FLUSH_BYTES	(64u << 10)
#define LIST_PENDING_MAX	(256u << 10)
#define LIST_PAGE_MAX		1000	/* a larger ?limit= gets pages of this size */

struct list_stream {
	struct api *api;
	struct http_req *req;	/* NULL: a page answered in one piece */
	char res[128];
	char *ns;		/* NULL: every namespace */
	int64_t rv;
	char *after_ns, *after_name;
	struct selector *ls;
	struct field_selector *fs;
	struct buf out;
	size_t count;
	const char *table;	/* NULL, or the Table apiVersion to answer with */
	enum table_include include;
	struct list_stream *next;
};

static void list_stream_free(struct list_stream *ls);
static void list_end(struct list_stream *ls, bool cut);

static int
list_one(void *arg, const char *json, size_t len)
{
	struct list_stream *c = arg;
	if (c->ls || c->fs) {
		json_t *o = json_loadb(json, len, 0, NULL);
		bool ok = o && (!c->ls || selector_matches(c->ls, obj_labels(o))) &&
		    (!c->fs || field_selector_matches(c->fs, o));
		json_decref(o);
		if (!ok)
			return 0;
	}
	if (c->count++)
		buf_putc(&c->out, ',');
	buf_append(&c->out, json, len);
	if (c->req && c->out.len >= LIST_FLUSH_BYTES) {
		http_stream_write(c->req, c->out.data, c->out.len);
		buf_reset(&c->out);
	}
	return 1;
}

/* Parses labelSelector / fieldSelector from the query. Returns 0 or -1 with
 * a 400 already answered. */
static int
parse_selectors(struct api *api, struct http_req *req, const struct kind *k,
    struct selector **ls, struct field_selector **fs)
{
	char *l = http_query_get(req->query, "labelSelector");
	char *f = http_query_get(req->query, "fieldSelector");
	char *msg = NULL;
	int rc = 0;
	*ls = NULL;
	*fs = NULL;
	if (l && *l && selector_parse(l, ls, &msg) < 0) {
		reply_status(api, req, 400, "unable to parse requirement: %s", msg);
		rc = -1;
	} else if (f && *f && (field_selector_parse(f, fs, &msg) < 0 ||
	    field_selector_check_kind(*fs, k->kind, &msg) < 0)) {
		reply_status(api, req, 400, "%s", msg);
		rc = -1;
	}
	if (rc < 0) {
		selector_free(*ls);
		field_selector_free(*fs);
		*ls = NULL;
		*fs = NULL;
	}
	free(msg);
	free(l);
	free(f);
	return rc;
}

/* What the Accept header and ?includeObject= ask for: *table NULL (the
 * objects) or a Table apiVersion. Returns 0, or -1 with a 400 answered. */
static int
table_params(struct api *api, struct http_req *req, const char **table,
    enum table_include *inc)
{
	char *io = http_query_get(req->query, "includeObject");
	int rc = table_include_parse(io, inc);
	*table = table_accept(http_req_header(req, "Accept"));
	if (rc < 0)
		reply_status(api, req, 400, "includeObject: Unsupported value: \"%s\": supported "
		    "values: \"Metadata\", \"None\", \"Object\"", io);
	free(io);
	return rc < 0 ? -1 : 0;
}

/* Answers a page (or the whole list) of objects as a Table. */
static void
reply_table_list(struct api *api, struct http_req *req, const struct route *r,
    struct list_stream *ls, const char *rv, const char *cont, int64_t remaining)
{
	struct buf b = BUF_INIT;
	buf_putc(&b, '[');
	buf_append(&b, ls->out.data, ls->out.len);
	buf_putc(&b, ']');
	json_t *items = json_loadb(b.data, b.len, 0, NULL);
	json_t *t = table_build(r->k, ls->table, items, ls->include, true, rv, cont, remaining,
	    time_now_ms());
	reply_obj(api, req, 200, t, false);
	json_decref(t);
	json_decref(items);
	buf_free(&b);
}

/* Continue tokens: base64 of {"rv":N,"ns":"...","name":"..."}, the list's
 * resourceVersion and the last key of the page, as Kubernetes' are opaque
 * base64 of the list's revision and start key. */
static char *
continue_encode(int64_t rv, const char *ns, const char *name)
{
	json_t *t = json_pack("{s:I, s:s, s:s}", "rv", (json_int_t)rv, "ns", ns, "name", name);
	char *raw = json_dumps(t, JSON_COMPACT);
	size_t n = strlen(raw);
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, (int)n);
	free(raw);
	json_decref(t);
	return out;
}

static int
continue_decode(const char *tok, int64_t *rv, char **ns, char **name)
{
	size_t n = strlen(tok);
	if (n == 0 || n % 4 || n > 4096)
		return -EINVAL;
	unsigned char *raw = xmalloc(n / 4 * 3 + 1);
	int len = EVP_DecodeBlock(raw, (const unsigned char *)tok, (int)n);
	json_t *t = NULL;
	if (len > 0) {
		while (len > 0 && raw[len - 1] == '\0')
			len--;	/* EVP_DecodeBlock counts the padding */
		t = json_loadb((const char *)raw, (size_t)len, 0, NULL);
	}
	free(raw);
	json_t *jrv = json_object_get(t, "rv"), *jns = json_object_get(t, "ns");
	json_t *jname = json_object_get(t, "name");
	int rc = -EINVAL;
	if (json_is_integer(jrv) && json_integer_value(jrv) > 0 && json_is_string(jns) &&
	    json_is_string(jname)) {
		*rv = json_integer_value(jrv);
		*ns = xstrdup(json_string_value(jns));
		*name = xstrdup(json_string_value(jname));
		rc = 0;
	}
	json_decref(t);
	return rc;
}

/* One pass of a streamed list; ends it, or waits for the client to drain. */
static void
list_pump(struct list_stream *ls)
{
	for (;;) {
		struct store_page pg;
		int rc = store_list_page(ls->api->st, ls->res, ls->ns, ls->rv, ls->after_ns,
		    ls->after_name, LIST_PASS, list_one, ls, &pg);
		if (ls->out.len)
			http_stream_write(ls->req, ls->out.data, ls->out.len);
		buf_reset(&ls->out);
		if (rc < 0 || !pg.more || http_req_aborted(ls->req)) {
			/* A failed pass cuts the response short (no final
			 * chunk, the connection closes): the client gets an
			 * error, never a silently incomplete list. */
			if (rc < 0)
				log_warn("api", "list of %s ended early: %s", ls->res,
				    strerror(-rc));
			else if (!http_req_aborted(ls->req))
				http_stream_write(ls->req, "]}", 2);
			list_end(ls, rc < 0);
			return;
		}
		free(ls->after_ns);
		free(ls->after_name);
		ls->after_ns = pg.next_ns;
		ls->after_name = pg.next_name;
		if (http_stream_pending(ls->req) > LIST_PENDING_MAX)
			return;	/* on_list_drain resumes */
	}
}

static void
on_list_drain(struct http_req *req, void *arg)
{
	(void)req;
	list_pump(arg);
}

static void
on_list_abort(struct http_req *req, void *arg)
{
	(void)req;
	list_end(arg, false);
}

/* Finishes a streamed list's response (cut: short, see http_stream_abort)
 * and frees it. */
static void
list_end(struct list_stream *ls, bool cut)
{
	struct list_stream **pp = &ls->api->lists;
	while (*pp && *pp != ls)
		pp = &(*pp)->next;
	if (*pp)
		*pp = ls->next;
	http_req_on_drain(ls->req, NULL, NULL);
	if (cut)
		http_stream_abort(ls->req);
	else
		http_stream_end(ls->req);
	list_stream_free(ls);
}

static void
list_stream_free(struct list_stream *ls)
{
	selector_free(ls->ls);
	field_selector_free(ls->fs);
	buf_free(&ls->out);
	free(ls->ns);
	free(ls->after_ns);
	free(ls->after_name);
	free(ls);
}

static void
list_head(struct buf *b, const struct kind *k)
{
	buf_printf(b, "{\"kind\":\"%sList\",\"apiVersion\":\"%s\",\"metadata\":{", k->kind,
	    k->api_version);
}

/* A page of ?limit= objects, answered in one piece with its continue token. */
static void
list_page(struct api *api, struct http_req *req, const struct route *r,
    struct list_stream *ls, size_t limit)
{
	struct store_page pg;
	int rc = store_list_page(api->st, ls->res, ls->ns, ls->rv, ls->after_ns,
	    ls->after_name, limit, list_one, ls, &pg);
	if (rc == -ERANGE) {
		reply_status(api, req, 410, "The provided continue parameter is too old to "
		    "display a consistent list result. You can start a new list without the "
		    "continue parameter.");
		return;
	}
	if (rc < 0) {
		reply_status(api, req, 500, "listing %s failed: %s", r->k->plural, strerror(-rc));
		return;
	}
	struct buf b = BUF_INIT;
	char *tok = NULL, rv[32];
	int64_t rest = -1;
	snprintf(rv, sizeof rv, "%lld", (long long)ls->rv);
	if (pg.more) {
		tok = continue_encode(ls->rv, pg.next_ns, pg.next_name);
		/* As Kubernetes: unknown (left out) when selectors filter. */
		rest = ls->ls || ls->fs ? -1 : store_count_after(api->st, ls->res, ls->ns,
		    pg.next_ns, pg.next_name);
	}
	if (ls->table) {
		reply_table_list(api, req, r, ls, rv, tok, rest);
		free(tok);
		free(pg.next_ns);
		free(pg.next_name);
		return;
	}
	list_head(&b, r->k);
	buf_printf(&b, "\"resourceVersion\":\"%s\"", rv);
	if (tok)
		buf_printf(&b, ",\"continue\":\"%s\"", tok);
	if (rest >= 0)
		buf_printf(&b, ",\"remainingItemCount\":%lld", (long long)rest);
	free(tok);
	buf_puts(&b, "},\"items\":[");
	buf_append(&b, ls->out.data, ls->out.len);
	buf_puts(&b, "]}");
	free(pg.next_ns);
	free(pg.next_name);
	reply(api, req, 200, buf_steal(&b), false);
}

static void
handle_list(struct api *api, struct http_req *req, const struct route *r)
{
	struct list_stream *ls = xcalloc(1, sizeof *ls);
	char *lim = http_query_get(req->query, "limit");
	char *cont = http_query_get(req->query, "continue");
	size_t limit = lim && *lim ? strtoull(lim, NULL, 10) : 0;
	ls->api = api;
	api_res_key(r->k, ls->res, sizeof ls->res);
	ls->ns = r->ns ? xstrdup(r->ns) : NULL;
	ls->rv = store_current_rv(api->st);
	if (table_params(api, req, &ls->table, &ls->include) < 0 ||
	    parse_selectors(api, req, r->k, &ls->ls, &ls->fs) < 0)
		goto done;
	if (cont && *cont && continue_decode(cont, &ls->rv, &ls->after_ns, &ls->after_name) < 0) {
		reply_status(api, req, 400, "continue key is not valid: \"%s\"", cont);
		goto done;
	}
	if (cont && *cont && ls->rv < store_oldest_rv(api->st)) {
		reply_status(api, req, 410, "The provided continue parameter is too old to "
		    "display a consistent list result. You can start a new list without the "
		    "continue parameter.");
		goto done;
	}
	if (limit || (cont && *cont)) {
		list_page(api, req, r, ls, limit && limit < LIST_PAGE_MAX ? limit : LIST_PAGE_MAX);
		goto done;
	}
	if (ls->table) {	/* a Table is built whole: one page of everything */
		list_page(api, req, r, ls, SIZE_MAX / 2);
		goto done;
	}
	ls->req = req;
	ls->next = api->lists;
	api->lists = ls;
	http_stream_start(req, 200, "application/json");
	list_head(&ls->out, r->k);
	buf_printf(&ls->out, "\"resourceVersion\":\"%lld\"},\"items\":[", (long long)ls->rv);
	http_req_on_drain(req, on_list_drain, ls);
	http_req_on_abort(req, on_list_abort, ls);
	list_pump(ls);
	ls = NULL;
done:
	if (ls)
		list_stream_free(ls);
	free(lim);
	free(cont);
}

/* ---- watch ------------------------------------------------------------- */

static void watch_end(struct watch *w);

static void
watch_send(struct watch *w, const char *type, const json_t *obj)
{
	json_t *ev;
	if (w->table && strcmp(type, "ERROR") != 0) {
		json_t *one = json_pack("[O]", obj);
		ev = json_pack("{s:s, s:o}", "type", type, "object", table_build(w->k, w->table,
		    one, w->include, !w->table_head_sent, obj_str_at(obj,
		    "metadata.resourceVersion"), NULL, -1, time_now_ms()));
		w->table_head_sent = true;
		json_decref(one);
	} else {
		ev = json_pack("{s:s, s:O}", "type", type, "object", obj);
	}
	char *s = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	struct buf line = BUF_INIT;
	buf_puts(&line, s);
	buf_putc(&line, '\n');
	free(s);
	int rc = http_stream_write(w->req, line.data, line.len);
	buf_free(&line);
	if (rc < 0 || http_stream_pending(w->req) > WATCH_MAX_PENDING) {
		if (rc == 0)
			log_warn("api", "watch client %s too slow, closing its watch",
			    w->req->remote_addr);
		watch_end(w);
	}
}

/* Applies the selectors the way Kubernetes does: an object that stops
 * matching is DELETED for this watcher, one that starts matching is ADDED. */
static void
on_watch_event(void *arg, enum store_event ev, const char *res, const json_t *obj,
    int64_t rv)
{
	struct watch *w = arg;
	(void)res;
	(void)rv;
	if (w->ended)
		return;
	char key[600];
	snprintf(key, sizeof key, "%s/%s", obj_namespace(obj), obj_name(obj));
	bool match = (!w->ls || selector_matches(w->ls, obj_labels(obj))) &&
	    (!w->fs || field_selector_matches(w->fs, obj));
	bool filtered = w->ls || w->fs;
	bool held = json_object_get(w->sent, key) != NULL;
	if (ev == STORE_DELETED) {
		if (match || held)
			watch_send(w, "DELETED", obj);
		json_object_del(w->sent, key);
		return;
	}
	if (!match) {
		if (held) {
			json_object_del(w->sent, key);
			watch_send(w, "DELETED", obj);
		}
		return;
	}
	const char *type = ev == STORE_ADDED ? "ADDED" : "MODIFIED";
	if (filtered)
		json_object_set_new(w->sent, key, json_true());
	watch_send(w, type, obj);
}

static void
watch_free_cb(uv_handle_t *h)
{
	struct watch *w = h->data;
	free(w);
}

static void
watch_end(struct watch *w)
{
	if (w->ended)
		return;
	w->ended = true;
	obs_api_watchers(w->k->group, w->k->version, w->k->kind, -1);
	if (w->sw)
		store_watch_stop(w->sw);
	struct watch **pp = &w->api->watches;
	while (*pp && *pp != w)
		pp = &(*pp)->next;
	if (*pp)
		*pp = w->next;
	selector_free(w->ls);
	field_selector_free(w->fs);
	json_decref(w->sent);
	api_auth_watch_end(w->api, w->req);
	http_stream_end(w->req);
	uv_timer_stop(&w->timer);
	uv_close((uv_handle_t *)&w->timer, watch_free_cb);
}

static void
on_watch_abort(struct http_req *req, void *arg)
{
	(void)req;
	watch_end(arg);
}

static void
on_watch_timeout(uv_timer_t *t)
{
	watch_end(t->data);
}

static int
initial_event(void *arg, const char *json, size_t len)
{
	struct watch *w = arg;
	json_t *o = json_loadb(json, len, 0, NULL);
	if (o)
		on_watch_event(w, STORE_ADDED, NULL, o, 0);
	json_decref(o);
	return w->ended;
}

static void
handle_watch(struct api *api, struct http_req *req, const struct route *r)
{
	char key[128];
	struct selector *ls;
	struct field_selector *fs;
	const char *table;
	enum table_include inc;
	if (table_params(api, req, &table, &inc) < 0 ||
	    parse_selectors(api, req, r->k, &ls, &fs) < 0)
		return;
	if (api_auth_watch_begin(api, req) < 0) {	/* answered 429 */
		selector_free(ls);
		field_selector_free(fs);
		return;
	}
	char *rvs = http_query_get(req->query, "resourceVersion");
	char *tos = http_query_get(req->query, "timeoutSeconds");
	int64_t from = rvs && *rvs ? strtoll(rvs, NULL, 10) : 0;
	long timeout = tos && *tos ? strtol(tos, NULL, 10) : 0;
	free(rvs);
	free(tos);

	struct watch *w = xcalloc(1, sizeof *w);
	w->api = api;
	w->req = req;
	w->k = r->k;
	w->ls = ls;
	w->fs = fs;
	w->sent = json_object();
	w->table = table;
	w->include = inc;
	obs_api_watchers(w->k->group, w->k->version, w->k->kind, +1);
	uv_timer_init(api->loop, &w->timer);
	w->timer.data = w;
	w->next = api->watches;
	api->watches = w;
	http_req_on_abort(req, on_watch_abort, w);
	http_stream_start(req, 200, "application/json");
	if (timeout > 0)
		uv_timer_start(&w->timer, on_watch_timeout, (uint64_t)timeout * 1000, 0);

	api_res_key(r->k, key, sizeof key);
	if (from <= 0) {
		/* No resourceVersion: the current state as ADDED, then changes. */
		int64_t list_rv = 0;
		store_list_each(api->st, key, r->ns, initial_event, w, &list_rv);
		from = list_rv;
		if (from == 0)
			from = -1;
	}
	if (w->ended)
		return;
	int rc = store_watch_start(api->st, key, r->ns, from < 0 ? 0 : from,
	    on_watch_event, w, &w->sw);
	if (rc == -ERANGE) {
		char *msg = xasprintf("too old resource version: %lld (%lld)", (long long)from,
		    (long long)store_oldest_rv(api->st));
		char *st = status_json(410, "Expired", msg, NULL);
		json_t *sto = json_loads(st, 0, NULL);
		w->sw = NULL;
		watch_send(w, "ERROR", sto);
		json_decref(sto);
		free(st);
		free(msg);
		watch_end(w);
	}
}

/* ---- writes ------------------------------------------------------------ */

static char *dry_run_bad(struct http_req *req, unsigned *flags);

static unsigned
dry_run_flag(struct http_req *req)
{
	unsigned f;
	free(dry_run_bad(req, &f));
	return f;
}

static json_t *
parse_body(struct api *api, struct http_req *req)
{
	json_error_t jerr;
	const char *ct = http_req_header(req, "Content-Type");
	if (ct && (str_has_prefix(ct, "application/yaml") ||
	    str_has_prefix(ct, "application/x-yaml"))) {
		struct obj_docs docs = { 0 };
		struct errlist errs = { 0 };
		json_t *o = NULL;
		if (obj_parse(req->body, req->body_len, &docs, &errs) < 0 || docs.n != 1) {
			char *m = errs.n ? field_err_format(&errs.v[0], "body") :
			    xstrdup("the body must hold exactly one YAML document");
			reply_status(api, req, 400, "%s", m);
			free(m);
		} else {
			o = json_incref(docs.v[0].obj);
		}
		obj_docs_free(&docs);
		errlist_free(&errs);
		return o;
	}
	json_t *o = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o) {
		reply_status(api, req, 400, "the request body is not valid JSON: line %d "
		    "column %d: %s", jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(o)) {
		reply_status(api, req, 400, "the request body must be a JSON object");
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The field manager of a client's write: ?fieldManager=, else the
 * User-Agent's product ("kubectl" of "kubectl/v1.32.0 ..."), as the
 * apiserver names it. Caller frees. */
static char *
req_manager(struct http_req *req)
{
	char *m = http_query_get(req->query, "fieldManager");
	if (m && *m)
		return m;
	free(m);
	const char *ua = http_req_header(req, "User-Agent");
	size_t n = ua ? strcspn(ua, "/ ") : 0;
	return n ? xstrndup(ua, n > 128 ? 128 : n) : xstrdup("unknown");
}

/* managedFields of a client's write (api_apply.c): the flags it needs. */
static unsigned
managed_update(struct http_req *req, const struct kind *k, const json_t *old, json_t *obj)
{
	char *m = req_manager(req);
	unsigned f = api_managed_update(k, old, obj, m);
	free(m);
	return f;
}

static void
handle_create(struct api *api, struct http_req *req, const struct route *r)
{
	struct api_error err = { 0 };
	json_t *obj = parse_body(api, req), *out = NULL;
	if (!obj)
		return;
	unsigned flags = dry_run_flag(req) | managed_update(req, r->k, NULL, obj);
	if (api_create(api, r->k, r->ns ? r->ns : "", obj, flags, &out, &err) < 0)
		reply_error(api, req, &err);
	else
		reply_obj(api, req, 201, out, true);
	json_decref(out);
	api_error_clear(&err);
}

static void
handle_update(struct api *api, struct http_req *req, const struct route *r, json_t *obj)
{
	struct api_error err = { 0 };
	json_t *out = NULL;
	const char *body_name = obj_name(obj);
	if (*body_name && strcmp(body_name, r->name) != 0) {
		reply_status(api, req, 400, "the name of the object (%s) does not match the "
		    "name on the URL (%s)", body_name, r->name);
		json_decref(obj);
		return;
	}
	json_object_set_new(obj_metadata(obj), "name", json_string(r->name));
	bool status_only = r->sub != NULL;
	unsigned flags = dry_run_flag(req);
	json_t *old = NULL;
	if (!status_only && api_get(api, r->k, r->ns, r->name, &old, &err) == 0)
		flags |= managed_update(req, r->k, old, obj);
	json_decref(old);
	api_error_clear(&err);
	if (api_update(api, r->k, r->ns, obj, status_only, flags, &out, &err) < 0)
		reply_error(api, req, &err);
	else
		reply_obj(api, req, 200, out, true);
	json_decref(out);
	api_error_clear(&err);
}

/* Server-side apply: the body is the manager's whole intent (YAML or
 * JSON); api_apply.c merges it and keeps managedFields. */
static void
handle_apply(struct api *api, struct http_req *req, const struct route *r)
{
	struct api_error err = { 0 };
	struct obj_docs docs = { 0 };
	struct errlist errs = { 0 };
	char *mgr = http_query_get(req->query, "fieldManager");
	char *force = http_query_get(req->query, "force");
	json_t *out = NULL;
	bool created = false;
	if (!mgr || !*mgr) {
		reply_status(api, req, 400, "PATCH, PUT, POST requests: fieldManager is required "
		    "for apply requests");
	} else if (r->sub) {
		reply_status(api, req, 415, "server-side apply to the %s subresource is not "
		    "supported by v6; apply the object itself", r->sub);
	} else if (obj_parse(req->body, req->body_len, &docs, &errs) < 0 || docs.n != 1 ||
	    !json_is_object(docs.v[0].obj)) {
		reply_status(api, req, 400, "the body of an apply request must hold one object");
	} else if (*obj_name(docs.v[0].obj) && strcmp(obj_name(docs.v[0].obj), r->name)) {
		reply_status(api, req, 400, "the name of the object (%s) does not match the "
		    "name on the URL (%s)", obj_name(docs.v[0].obj), r->name);
	} else {
		json_t *applied = json_incref(docs.v[0].obj);
		json_object_set_new(obj_metadata(applied), "name", json_string(r->name));
		if (api_apply(api, r->k, r->ns, r->name, applied, mgr, force &&
		    strcmp(force, "true") == 0, dry_run_flag(req), &out, &created, &err) < 0)
			reply_error(api, req, &err);
		else
			reply_obj(api, req, created ? 201 : 200, out, true);
		json_decref(applied);
	}
	json_decref(out);
	obj_docs_free(&docs);
	errlist_free(&errs);
	api_error_clear(&err);
	free(mgr);
	free(force);
}

api_patch_fn
api_patch_for(const char *ct)
{
	ct = ct ? ct : "";
	if (str_has_prefix(ct, "application/merge-patch+json"))
		return patch_merge;
	if (str_has_prefix(ct, "application/json-patch+json"))
		return patch_json;
	if (str_has_prefix(ct, "application/strategic-merge-patch+json"))
		return patch_strategic;
	return NULL;
}

static void
handle_patch(struct api *api, struct http_req *req, const struct route *r)
{
	struct api_error err = { 0 };
	const char *ct = http_req_header(req, "Content-Type");
	if (ct && str_has_prefix(ct, "application/apply-patch+yaml")) {
		handle_apply(api, req, r);
		return;
	}
	api_patch_fn fn = api_patch_for(ct);
	if (!fn) {
		reply_status(api, req, 415, "the body of the request was in an unknown format - "
		    "accepted media types include: application/json-patch+json, "
		    "application/merge-patch+json, application/apply-patch+yaml, "
		    "application/strategic-merge-patch+json");
		return;
	}
	json_error_t jerr;
	json_t *patch = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!patch) {
		reply_status(api, req, 400, "the patch is not valid JSON: line %d column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		return;
	}
	json_t *cur = NULL;
	if (api_get(api, r->k, r->ns, r->name, &cur, &err) < 0) {
		reply_error(api, req, &err);
		goto out;
	}
	char *msg = NULL;
	json_t *patched = fn(cur, patch, &msg);
	if (!patched) {
		reply_status(api, req, fn == patch_json ? 422 : 400, "%s", msg ? msg : "bad patch");
		free(msg);
		goto out;
	}
	if (!json_is_object(patched)) {
		reply_status(api, req, 400, "the patch must produce an object");
		json_decref(patched);
		goto out;
	}
	handle_update(api, req, r, patched);
out:
	json_decref(cur);
	json_decref(patch);
	api_error_clear(&err);
}

static int
parse_propagation(const char *s, enum api_propagation *p)
{
	if (!s || !*s || strcmp(s, "Background") == 0)
		*p = API_PROPAGATE_BACKGROUND;
	else if (strcmp(s, "Foreground") == 0)
		*p = API_PROPAGATE_FOREGROUND;
	else if (strcmp(s, "Orphan") == 0)
		*p = API_PROPAGATE_ORPHAN;
	else
		return -EINVAL;
	return 0;
}

/* The type errors Kubernetes' decoder would report for a DeleteOptions. */
static const char *
delete_options_error(const json_t *o)
{
	json_t *v;
	if (!o)
		return NULL;
	if ((v = json_object_get(o, "propagationPolicy")) && !json_is_string(v))
		return "propagationPolicy: must be a string";
	if ((v = json_object_get(o, "gracePeriodSeconds")) && !json_is_integer(v) &&
	    !json_is_null(v))
		return "gracePeriodSeconds: must be an integer";
	if ((v = json_object_get(o, "orphanDependents")) && !json_is_boolean(v) &&
	    !json_is_null(v))
		return "orphanDependents: must be a boolean";
	if ((v = json_object_get(o, "preconditions")) && !json_is_object(v) && !json_is_null(v))
		return "preconditions: must be an object";
	json_t *pre = v;
	if (json_is_object(pre)) {
		json_t *u = json_object_get(pre, "uid"), *rv = json_object_get(pre, "resourceVersion");
		if ((u && !json_is_string(u)) || (rv && !json_is_string(rv)))
			return "preconditions: uid and resourceVersion must be strings";
	}
	if ((v = json_object_get(o, "dryRun"))) {
		size_t i;
		json_t *e;
		if (!json_is_array(v))
			return "dryRun: must be a list";
		json_array_foreach(v, i, e)
			if (!json_is_string(e) || strcmp(json_string_value(e), "All") != 0)
				return "dryRun: Unsupported value: supported values: \"All\"";
	}
	return NULL;
}

static void
handle_delete(struct api *api, struct http_req *req, const struct route *r)
{
	struct api_error err = { 0 };
	json_t *opts = NULL, *out = NULL;
	if (req->body_len) {
		json_error_t jerr;
		opts = json_loadb(req->body, req->body_len, 0, &jerr);
		if (!json_is_object(opts)) {
			reply_status(api, req, 400, "DeleteOptions: not a JSON object");
			json_decref(opts);
			return;
		}
	}
	const char *bad = delete_options_error(opts);
	if (bad) {
		reply_status(api, req, 400, "DeleteOptions: %s", bad);
		json_decref(opts);
		return;
	}
	char *qp = http_query_get(req->query, "propagationPolicy");
	const char *ps = qp ? qp : json_string_value(json_object_get(opts, "propagationPolicy"));
	const char *pre_uid = json_string_value(obj_get_path(opts, "preconditions.uid"));
	const char *pre_rv = json_string_value(obj_get_path(opts, "preconditions.resourceVersion"));
	unsigned flags = dry_run_flag(req);
	json_t *dr = json_object_get(opts, "dryRun");
	if (json_is_array(dr) && json_array_size(dr))
		flags |= API_DRY_RUN;
	bool orphan = json_is_true(json_object_get(opts, "orphanDependents"));
	char *qg = http_query_get(req->query, "gracePeriodSeconds");
	json_t *og = json_object_get(opts, "gracePeriodSeconds");
	int64_t grace = qg && *qg ? strtoll(qg, NULL, 10) : json_is_integer(og) ?
	    json_integer_value(og) : -1;
	free(qg);
	enum api_propagation prop;
	if (parse_propagation(ps, &prop) < 0) {
		reply_status(api, req, 400, "propagationPolicy: unsupported value \"%s\": "
		    "supported values: \"Background\", \"Foreground\", \"Orphan\"", ps);
	} else if (api_delete_grace(api, r->k, r->ns, r->name,
	    orphan ? API_PROPAGATE_ORPHAN : prop, pre_uid, pre_rv ? strtoll(pre_rv, NULL, 10) : 0,
	    grace, flags, &out, &err) < 0) {
		reply_error(api, req, &err);
	} else {
		bool pending = obj_get_path(out, "metadata.deletionTimestamp") != NULL &&
		    !(flags & API_DRY_RUN);
		reply_obj(api, req, pending ? 202 : 200, out, true);
	}
	free(qp);
	json_decref(opts);
	json_decref(out);
	api_error_clear(&err);
}

struct collect_ctx {
	json_t *items;
	struct selector *ls;
	struct field_selector *fs;
};

static int
collect_one(void *arg, const char *json, size_t len)
{
	struct collect_ctx *c = arg;
	json_t *o = json_loadb(json, len, 0, NULL);
	if (o && (!c->ls || selector_matches(c->ls, obj_labels(o))) &&
	    (!c->fs || field_selector_matches(c->fs, o)))
		json_array_append(c->items, o);
	json_decref(o);
	return 0;
}

/* DELETE on a collection: every object matching the selectors, each through
 * api_delete (so finalizers and propagation apply); answers the list of
 * what was deleted, as Kubernetes does. */
static void
handle_delete_collection(struct api *api, struct http_req *req, const struct route *r)
{
	char key[128];
	struct collect_ctx c = { .items = json_array() };
	if (parse_selectors(api, req, r->k, &c.ls, &c.fs) < 0) {
		json_decref(c.items);
		return;
	}
	char *qp = http_query_get(req->query, "propagationPolicy");
	enum api_propagation prop;
	if (parse_propagation(qp, &prop) < 0) {
		reply_status(api, req, 400, "propagationPolicy: unsupported value \"%s\"", qp);
		goto out;
	}
	store_list_each(api->st, api_res_key(r->k, key, sizeof key), r->ns, collect_one, &c,
	    NULL);
	json_t *done = json_array();
	size_t i;
	json_t *o;
	unsigned flags = dry_run_flag(req);
	json_array_foreach(c.items, i, o) {
		struct api_error err = { 0 };
		json_t *out = NULL;
		if (api_delete(api, r->k, obj_namespace(o), obj_name(o), prop, NULL, 0, flags,
		    &out, &err) == 0)
			json_array_append_new(done, out);
		api_error_clear(&err);
	}
	char kind[96];
	snprintf(kind, sizeof kind, "%sList", r->k->kind);
	json_t *list = json_pack("{s:s, s:s, s:{}, s:o}", "kind", kind, "apiVersion",
	    r->k->api_version, "metadata", "items", done);
	reply_obj(api, req, 200, list, true);
	json_decref(list);
out:
	free(qp);
	selector_free(c.ls);
	field_selector_free(c.fs);
	json_decref(c.items);
}

static void
handle_subresource(struct api *api, struct http_req *req, const struct route *r)
{
	struct api_error err = { 0 };
	json_t *o = NULL;
	const struct subres *sr = find_subres(api, r->k, r->sub);
	/* pods/exec, attach, portforward and serviceaccounts/token are
	 * creates; kubectl's WebSocket ones are GET upgrades */
	static const char *const posts[] = { "exec", "attach", "portforward", "token" };
	bool post = false;
	for (size_t i = 0; i < ARRAY_SIZE(posts); i++)
		post = post || strcmp(r->sub, posts[i]) == 0;
	if (strcmp(req->method, post ? "POST" : "GET") != 0 && !(post && req->upgrade) &&
	    (post || strcmp(req->method, "HEAD") != 0))
		reply_status(api, req, 405, "method %s is not allowed on %s/%s", req->method,
		    r->k->plural, r->sub);
	else if (api_get(api, r->k, r->ns, r->name, &o, &err) < 0)
		reply_error(api, req, &err);
	else
		sr->fn(sr->arg, req, o);
	json_decref(o);
	api_error_clear(&err);
}

/* The autoscaling/v1 Scale view of an object with spec.replicas. */
static json_t *
scale_of(const json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata");
	json_t *sm = json_object();
	static const char *const keep[] = { "name", "namespace", "uid", "resourceVersion",
		"creationTimestamp" };
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++) {
		json_t *v = json_object_get(meta, keep[i]);
		if (v)
			json_object_set(sm, keep[i], v);
	}
	struct selector *sel = NULL;
	char *sels = NULL, *msg = NULL;
	if (selector_from_json(obj_get_path(obj, "spec.selector"), &sel, &msg) == 0)
		sels = selector_format(sel);
	selector_free(sel);
	free(msg);
	json_t *sc = json_pack("{s:s, s:s, s:o, s:{s:I}, s:{s:I, s:s}}", "kind", "Scale",
	    "apiVersion", "autoscaling/v1", "metadata", sm,
	    "spec", "replicas", json_integer_value(obj_get_path(obj, "spec.replicas")),
	    "status", "replicas", json_integer_value(obj_get_path(obj, "status.replicas")),
	    "selector", sels ? sels : "");
	free(sels);
	return sc;
}

static void
handle_scale(struct api *api, struct http_req *req, const struct route *r)
{
	struct api_error err = { 0 };
	json_t *obj = NULL, *body = NULL, *want = NULL;
	const char *m = req->method;
	if (api_get(api, r->k, r->ns, r->name, &obj, &err) < 0) {
		reply_error(api, req, &err);
		goto out;
	}
	json_t *cur = scale_of(obj);
	if (strcmp(m, "GET") == 0) {
		reply_obj(api, req, 200, cur, false);
		json_decref(cur);
		goto out;
	}
	if (strcmp(m, "PUT") == 0) {
		want = parse_body(api, req);
	} else if (strcmp(m, "PATCH") == 0) {
		const char *ct = http_req_header(req, "Content-Type");
		char *msg = NULL;
		body = json_loads(req->body, 0, NULL);
		if (!body)
			reply_status(api, req, 400, "the patch is not valid JSON");
		else if (ct && str_has_prefix(ct, "application/json-patch+json"))
			want = patch_json(cur, body, &msg);
		else
			want = patch_merge(cur, body, &msg);
		if (body && !want)
			reply_status(api, req, 422, "%s", msg ? msg : "bad patch");
		free(msg);
	} else {
		reply_status(api, req, 405, "method %s is not allowed on scale", m);
	}
	json_decref(cur);
	if (!want)
		goto out;
	json_t *rep = obj_get_path(want, "spec.replicas");
	if (!json_is_integer(rep) || json_integer_value(rep) < 0) {
		reply_status(api, req, 422, "spec.replicas: must be a non-negative integer");
		goto out;
	}
	int64_t rv = obj_resource_version(want);
	if (rv)
		json_object_set_new(obj_metadata(obj), "resourceVersion",
		    json_string(json_string_value(obj_get_path(want, "metadata.resourceVersion"))));
	json_t *before = json_deep_copy(obj), *out = NULL;
	json_object_set(json_object_get(obj, "spec"), "replicas", rep);
	unsigned flags = dry_run_flag(req) | managed_update(req, r->k, before, obj);
	json_decref(before);
	if (api_update(api, r->k, r->ns, json_incref(obj), false, flags, &out, &err) < 0) {
		reply_error(api, req, &err);
	} else {
		json_t *sc = scale_of(out);
		reply_obj(api, req, 200, sc, true);
		json_decref(sc);
	}
	json_decref(out);
out:
	json_decref(obj);
	json_decref(body);
	json_decref(want);
	api_error_clear(&err);
}

static bool
is_uint(const char *s)
{
	size_t n = strspn(s, "0123456789");
	return n > 0 && n <= 18 && s[n] == '\0';
}

#define DRY_RUN_BAD "dryRun: Unsupported value: \"%s\": supported values: \"All\""

/* ?dryRun: *flags API_DRY_RUN for "All", 0 when absent; any other value
 * is returned (to be freed) for the caller to refuse. */
static char *
dry_run_bad(struct http_req *req, unsigned *flags)
{
	char *d = http_query_get(req->query, "dryRun");
	bool all = d && strcmp(d, "All") == 0;
	*flags = all ? API_DRY_RUN : 0;
	if (all) {
		free(d);
		return NULL;
	}
	return d;
}

int
api_dry_run_query(struct http_req *req, unsigned *flags)
{
	char *bad = dry_run_bad(req, flags);
	if (!bad)
		return 0;
	char *m = xasprintf(DRY_RUN_BAD, bad);
	api_respond_status(req, 422, m);
	free(m);
	free(bad);
	return -1;
}

/* Rejects malformed query parameters before anything happens: a typo in
 * dryRun must never turn into a real write. Returns 0 or -1 (answered). */
static int
check_query(struct api *api, struct http_req *req)
{
	static const char *const uints[] = { "resourceVersion", "timeoutSeconds",
		"gracePeriodSeconds", "limit" };
	unsigned dry;
	char *bad = dry_run_bad(req, &dry);
	int rc = 0;
	if (bad) {
		reply_status(api, req, 422, DRY_RUN_BAD, bad);
		rc = -1;
	}
	free(bad);
	for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(uints); i++) {
		char *v = http_query_get(req->query, uints[i]);
		if (v && *v && !is_uint(v)) {
			reply_status(api, req, 400, "invalid value for %s: \"%s\": must be a "
			    "non-negative integer", uints[i], v);
			rc = -1;
		}
		free(v);
	}
	return rc;
}

static void
handle_resource(struct api *api, struct http_req *req, const struct route *r)
{
	const char *m = req->method;
	if (check_query(api, req) < 0)
		return;
	if (!r->name && strcmp(m, "DELETE") == 0 && !has_verb(r->k, "deletecollection")) {
		reply_status(api, req, 405, "%s cannot be deleted as a collection", r->k->plural);
		return;
	}
	bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
	/* Reads see only committed state; writes join the open batch (group
	 * commit) and are answered after its COMMIT. */
	if (get && store_dirty(api->st))
		api_flush(api);
	if (!r->name) {
		char *w = http_query_get(req->query, "watch");
		bool watch = w && (strcmp(w, "true") == 0 || strcmp(w, "1") == 0);
		free(w);
		if (get && watch)
			handle_watch(api, req, r);
		else if (get)
			handle_list(api, req, r);
		else if (strcmp(m, "POST") == 0)
			handle_create(api, req, r);
		else if (strcmp(m, "DELETE") == 0)
			handle_delete_collection(api, req, r);
		else
			reply_status(api, req, 405, "method %s is not allowed on a collection", m);
		return;
	}
	if (r->sub && strcmp(r->sub, "scale") == 0) {
		handle_scale(api, req, r);
		return;
	}
	if (r->sub && strcmp(r->sub, "status") != 0) {
		handle_subresource(api, req, r);
		return;
	}
	if (get) {
		struct api_error err = { 0 };
		json_t *o = NULL;
		const char *table;
		enum table_include inc;
		if (table_params(api, req, &table, &inc) < 0)
			return;
		if (api_get(api, r->k, r->ns, r->name, &o, &err) < 0) {
			reply_error(api, req, &err);
		} else if (table && !r->sub) {
			json_t *one = json_pack("[O]", o);
			json_t *t = table_build(r->k, table, one, inc, true,
			    obj_str_at(o, "metadata.resourceVersion"), NULL, -1, time_now_ms());
			reply_obj(api, req, 200, t, false);
			json_decref(t);
			json_decref(one);
		} else {
			reply_obj(api, req, 200, o, false);
		}
		json_decref(o);
		api_error_clear(&err);
	} else if (strcmp(m, "PUT") == 0) {
		json_t *obj = parse_body(api, req);
		if (obj)
			handle_update(api, req, r, obj);
	} else if (strcmp(m, "PATCH") == 0) {
		handle_patch(api, req, r);
	} else if (strcmp(m, "DELETE") == 0 && !r->sub) {
		handle_delete(api, req, r);
	} else {
		reply_status(api, req, 405, "method %s is not allowed here", m);
	}
}

static void
reply_json(struct api *api, struct http_req *req, json_t *o)
{
	if (!o) {
		reply_status(api, req, 404, "the server could not find the requested resource");
		return;
	}
	reply_obj(api, req, 200, o, false);
	json_decref(o);
}

void
api_register_path(struct api *api, const char *path, api_path_fn fn, void *arg)
{
	BUG_ON(api->npaths == ARRAY_SIZE(api->paths));
	api->paths[api->npaths++] = (struct path_handler){ path, fn, arg, false };
}

void
api_register_prefix(struct api *api, const char *prefix, api_path_fn fn, void *arg)
{
	BUG_ON(api->npaths == ARRAY_SIZE(api->paths));
	api->paths[api->npaths++] = (struct path_handler){ prefix, fn, arg, true };
}

static const struct path_handler *
find_path(const struct api *api, const char *path)
{
	for (size_t i = 0; i < api->npaths; i++) {
		const struct path_handler *p = &api->paths[i];
		if (p->prefix ? strncmp(p->path, path, strlen(p->path)) == 0 :
		    strcmp(p->path, path) == 0)
			return p;
	}
	return NULL;
}

/* apiserver_request_total's verb and resource of a finished request, as
 * the apiserver names them: GET / LIST / WATCH / POST / PUT / PATCH /
 * DELETE, and the plural of a kind V6 serves ("" for anything else, so
 * that made-up paths cannot grow the label set). */
static void
on_request_done(struct http_req *req, int status, uint64_t ns, void *arg)
{
	api_audit_done(((struct api *)arg)->audit, req, status);
	api_auth_done(req);
	char *copy = xstrdup(req->path), *seg[16];
	size_t n = split_path(copy, seg, ARRAY_SIZE(seg));
	const char *resource = "", *verb = req->method, *group = "", *version;
	const struct kind *k = NULL;
	size_t at = 0, left;
	if (n != (size_t)-1 && n >= 3 && strcmp(seg[0], "api") == 0)
		at = 2;
	else if (n != (size_t)-1 && n >= 4 && strcmp(seg[0], "apis") == 0)
		at = 3, group = seg[1];
	version = at ? seg[at - 1] : "";
	left = at ? n - at : 0;
	if (left > 2 && strcmp(seg[at], "namespaces") == 0 &&
	    (k = kind_find_resource(group, version, seg[at + 2])) != NULL)
		at += 2, left -= 2;	/* namespaced: .../namespaces/NS/PLURAL... */
	else if (left >= 1)
		k = kind_find_resource(group, version, seg[at]);
	if (k) {
		resource = k->plural;
		if (strcmp(verb, "GET") == 0 && left == 1) {
			char *wv = http_query_get(req->query, "watch");
			verb = wv && (strcmp(wv, "true") == 0 || strcmp(wv, "1") == 0) ?
			    "WATCH" : "LIST";
			free(wv);
		}
	}
	obs_api_request(verb, resource, status, (double)ns / 1e9);
	free(copy);
}

static const struct group_handler *
find_group(const struct api *api, const char *group)
{
	for (size_t i = 0; i < api->ngroups; i++)
		if (strcmp(api->groups[i].group, group) == 0)
			return &api->groups[i];
	return NULL;
}

static void
handle_request(struct http_req *req, void *arg)
{
	struct api *api = arg;
	char *copy = xstrdup(req->path);
	char *seg[16];
	size_t n = split_path(copy, seg, ARRAY_SIZE(seg));
	struct api_error err = { 0 };
	if (n == (size_t)-1)
		n = 0, seg[0] = "";
	struct route r;
	log_debug("api", "%s %s from %s", req->method, req->target, req->remote_addr);
	if (api_auth_request(api, req) < 0)
		goto out;	/* answered: 401, 403 or 429 */
	api_audit_received(api->audit, req);

	/* Names, selectors and options from the URL end up in JSON (objects,
	 * Status messages, watch keys), which must be UTF-8: refuse the rest
	 * here, once, before anything quotes them. */
	if (!utf8_valid(req->path, strlen(req->path))) {
		reply_status(api, req, 400, "the request path is not valid UTF-8");
		goto out;
	}
	if (req->query && !utf8_valid_pct(req->query)) {
		reply_status(api, req, 400, "the query string is not valid UTF-8 once "
		    "percent-decoded (labelSelector, fieldSelector and names must be UTF-8)");
		goto out;
	}

	if (find_path(api, req->path)) {
		const struct path_handler *p = find_path(api, req->path);
		p->fn(p->arg, req);
	} else if (n == 1 && (strcmp(seg[0], "healthz") == 0 || strcmp(seg[0], "readyz") == 0 ||
	    strcmp(seg[0], "livez") == 0)) {
		http_respond(req, 200, "text/plain", "ok", 2);
	} else if (n >= 2 && strcmp(seg[0], "openapi") == 0 && strcmp(seg[1], "v3") == 0) {
		reply_json(api, req, n == 2 ? openapi_v3_index() : n == 4 && strcmp(seg[2],
		    "api") == 0 ? openapi_v3_group_version("", seg[3]) : n == 5 && strcmp(seg[2],
		    "apis") == 0 ? openapi_v3_group_version(seg[3], seg[4]) : NULL);
	} else if (n == 1 && strcmp(seg[0], "version") == 0) {
		reply_json(api, req, version_info());
	} else if (n == 1 && strcmp(seg[0], "api") == 0) {
		reply_json(api, req, json_pack("{s:s, s:[s], s:[{s:s, s:s}]}", "kind",
		    "APIVersions", "versions", "v1", "serverAddressByClientCIDRs",
		    "clientCIDR", "0.0.0.0/0", "serverAddress", ""));
	} else if (n == 2 && strcmp(seg[0], "api") == 0 && strcmp(seg[1], "v1") == 0) {
		reply_json(api, req, resource_list("", "v1"));
	} else if (n >= 2 && strcmp(seg[0], "apis") == 0 && find_group(api, seg[1])) {
		const struct group_handler *g = find_group(api, seg[1]);
		const char *rest = strstr(req->path, seg[1]) + strlen(seg[1]);
		g->fn(g->arg, req, rest);
	} else if (n == 1 && strcmp(seg[0], "apis") == 0) {
		reply_json(api, req, api_group_list(api));
	} else if (n == 2 && strcmp(seg[0], "apis") == 0) {
		reply_json(api, req, api_group(seg[1]));
	} else if (n == 3 && strcmp(seg[0], "apis") == 0) {
		json_t *l = resource_list(seg[1], seg[2]);
		if (json_array_size(json_object_get(l, "resources")) == 0) {
			json_decref(l);
			l = NULL;
		}
		reply_json(api, req, l);
	} else if (n >= 3 && strcmp(seg[0], "api") == 0 && strcmp(seg[1], "v1") == 0) {
		if (parse_route(api, "", "v1", seg + 2, n - 2, &r, &err) == 0)
			handle_resource(api, req, &r);
		else
			reply_error(api, req, &err);
	} else if (n >= 4 && strcmp(seg[0], "apis") == 0) {
		if (parse_route(api, seg[1], seg[2], seg + 3, n - 3, &r, &err) == 0)
			handle_resource(api, req, &r);
		else
			reply_error(api, req, &err);
	} else {
		reply_status(api, req, 404, "the server could not find the requested resource");
	}
out:
	api_error_clear(&err);
	free(copy);
}

int
api_start(uv_loop_t *loop, struct store *st, const struct api_config *cfg, struct api **out)
{
	struct api *api = xcalloc(1, sizeof *api);
	api->loop = loop;
	api->st = st;
	api->alloc = api_alloc_new(st);
	api->pend_tail = &api->pend_head;
	api->audit = cfg->audit;
	struct http_config hc = {
		.max_body_bytes = cfg->max_body_bytes,
		.handler = handle_request,
		.handler_arg = api,
		.error_body = http_error_status,
		.done = on_request_done,
		.tls_ctx = cfg->tls_ctx,
	};
	int rc = http_server_start(loop, cfg->listen_host, cfg->listen_port, &hc, &api->http);
	if (rc < 0) {
		api_alloc_free(api->alloc);
		free(api);
		return rc;
	}
	uv_check_init(loop, &api->flush_check);
	api->flush_check.data = api;
	uv_check_start(&api->flush_check, on_flush_check);
	uv_prepare_init(loop, &api->flush_prepare);
	api->flush_prepare.data = api;
	uv_prepare_start(&api->flush_prepare, on_flush_prepare);
	api->events = api_events_start(api, loop, cfg->event_ttl_ms);
	*out = api;
	return 0;
}

struct api_alloc *
api_allocator(struct api *api)
{
	return api->alloc;
}

int
api_port(const struct api *api)
{
	return http_server_port(api->http);
}

void
api_set_tls(struct api *api, struct ssl_ctx_st *ctx)
{
	http_server_set_tls(api->http, ctx);
}

static void
api_free_cb(uv_handle_t *h)
{
	struct api *api = h->data;
	api_alloc_free(api->alloc);
	free(api);
}

void
api_stop(struct api *api)
{
	api->stopping = true;
	api_auth_stop(api);
	api_flush(api);
	while (api->watches)
		watch_end(api->watches);
	while (api->lists)
		list_end(api->lists, false);
	api_events_stop(api->events);
	api->events = NULL;
	http_server_stop(api->http);
	uv_check_stop(&api->flush_check);
	uv_prepare_stop(&api->flush_prepare);
	uv_close((uv_handle_t *)&api->flush_prepare, NULL);
	uv_close((uv_handle_t *)&api->flush_check, api_free_cb);
}
