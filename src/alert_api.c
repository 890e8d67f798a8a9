/* alert_api.c — alerts and silences through V6's API, an aggregated group
 * alerts.v6.dev/v1alpha1 backed by Alertmanager's v2 API (--alertmanager-url),
 * so that the CLI talks only to V6 and V6's authorization applies:
 *   GET    .../[namespaces/NS/]alerts[/NAME]   AlertList (NAME: fingerprint
 *                                             or alertname; one adds its
 *                                             probable cause and silences)
 *   GET    .../silences                       SilenceList
 *   POST   .../silences {matchers, duration|endsAt, comment}   201 Silence
 *   DELETE .../silences/ID                    expire
 * (POST and DELETE take ?dryRun=All: checked, Alertmanager only read)
 *   POST   .../webhook, .../namespaces/NS/receivers/NAME   Alertmanager's
 *                                             webhook_config (alert_notify.c)
 * Each call is one request to Alertmanager on the loop (http_client.c);
 * the API request is answered when it returns. Registered by server.c. */
#include "alert.h"
#include "api.h"
#include "http.h"
#include "log.h"
#include "obj.h"
#include "store.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define AM_TIMEOUT_MS	10000

struct alert_api {
	struct api *api;
	char *url, *host, *prefix;
	struct sockaddr_storage addr;
	struct alert_notify *notify;
	struct call *calls;		/* in flight, cancelled at stop */
	bool discovered;		/* no flag: the addon's Alertmanager, if any */
};

/* OP_CREATE_DRY and OP_EXPIRE_DRY: ?dryRun=All. Alertmanager has no dry
 * run: the silence is checked here and Alertmanager is only read (its
 * silences: reachable; the one to expire: exists and is not expired). */
enum op { OP_LIST, OP_GET, OP_GET_SILENCES, OP_SILENCES, OP_CREATE, OP_EXPIRE,
	OP_CREATE_DRY, OP_EXPIRE_DRY };

/* One API request waiting on Alertmanager. */
struct call {
	struct alert_api *a;
	struct http_req *req;
	enum op op;
	char *ns, *name;
	json_t *alerts;			/* OP_GET: the matches, while silences load;
					 * OP_CREATE_DRY: the silence checked */
	struct http_client_req *http;
	struct call *next;
};

/* ---- Alertmanager's objects as V6's ----------------------------------- */

static const char *const target_labels[] = {
	"rollout", "deployment", "statefulset", "daemonset", "job_name", "pod", "service",
	"node", "instance",
};

/* "rollout/web": the object an alert is about, from its labels. */
static char *
alert_target(const json_t *labels)
{
	for (size_t i = 0; i < ARRAY_SIZE(target_labels); i++) {
		const char *v = json_string_value(json_object_get(labels, target_labels[i]));
		if (v && *v)
			return xasprintf("%s/%s", !strcmp(target_labels[i], "job_name") ? "job" :
			    target_labels[i], v);
	}
	return xstrdup("");
}

/* AM's state (active / suppressed / unprocessed) in the words users read:
 * firing, silenced, inhibited, pending. */
static const char *
alert_state(const json_t *am)
{
	if (json_array_size(obj_get_path(am, "status.silencedBy")))
		return "silenced";
	if (json_array_size(obj_get_path(am, "status.inhibitedBy")))
		return "inhibited";
	const char *s = obj_str_at(am, "status.state");
	return !strcmp(s, "unprocessed") ? "pending" : "firing";
}

static json_t *
empty_string(void)
{
	return json_string("");
}

/* A member of an Alertmanager object copied into V6's, and its default. */
struct field {
	const char *to, *from;		/* from: a dotted path */
	json_t *(*dflt)(void);
};

static void
copy_fields(json_t *o, const json_t *am, const struct field *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_t *v = obj_get_path(am, t[i].from);
		json_object_set_new(o, t[i].to, v ? json_incref(v) : t[i].dflt());
	}
}

static const struct field alert_fields[] = {
	{ "labels", "labels", json_object }, { "annotations", "annotations", json_object },
	{ "startsAt", "startsAt", json_null }, { "endsAt", "endsAt", json_null },
	{ "updatedAt", "updatedAt", json_null },
	{ "silencedBy", "status.silencedBy", json_array },
	{ "inhibitedBy", "status.inhibitedBy", json_array },
	{ "receivers", "receivers", json_array },
};

static const struct field silence_fields[] = {
	{ "matchers", "matchers", json_array }, { "startsAt", "startsAt", json_null },
	{ "endsAt", "endsAt", json_null }, { "updatedAt", "updatedAt", json_null },
	{ "createdBy", "createdBy", empty_string }, { "comment", "comment", empty_string },
};

static json_t *
alert_object(const json_t *am)
{
	json_t *labels = json_object_get(am, "labels");
	char *target = alert_target(labels);
	const char *ns = json_string_value(json_object_get(labels, "namespace"));
	json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s}", "kind", "Alert",
	    "apiVersion", ALERT_GROUP_VERSION, "metadata", "name", obj_str(am, "fingerprint"),
	    "namespace", ns ? ns : "", "state", alert_state(am), "target", target);
	copy_fields(o, am, alert_fields, ARRAY_SIZE(alert_fields));
	free(target);
	return o;
}

static json_t *
silence_object(const json_t *am)
{
	json_t *o = json_pack("{s:s, s:s, s:{s:s}, s:s}", "kind", "Silence", "apiVersion",
	    ALERT_GROUP_VERSION, "metadata", "name", obj_str(am, "id"), "state",
	    obj_str_at(am, "status.state"));
	copy_fields(o, am, silence_fields, ARRAY_SIZE(silence_fields));
	return o;
}

static json_t *
list_of(const char *kind, json_t *items)
{
	return json_pack("{s:s, s:s, s:{}, s:o}", "kind", kind, "apiVersion",
	    ALERT_GROUP_VERSION, "metadata", "items", items);
}

/* ---- calls to Alertmanager ----------------------------------------------- */

static void call_done(int rc, const struct http_response *res, void *arg);

static void
call_unlink(struct call *c)
{
	for (struct call **p = &c->a->calls; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
}

static void
call_free(struct call *c)
{
	call_unlink(c);
	json_decref(c->alerts);
	free(c->ns);
	free(c->name);
	free(c);
}

static void
call_fail(struct call *c, int code, const char *msg)
{
	api_respond_status(c->req, code, msg);
	call_free(c);
}

/* Sends method path (under the URL's prefix) for c; the answer comes to
 * call_done. */
static void
am_send(struct call *c, const char *method, const char *path, const char *body)
{
	struct alert_api *a = c->a;
	char *full = xasprintf("%s%s", a->prefix, path);
	struct http_client_opts o = { .method = method, .path = full, .host = a->host,
		.timeout_ms = AM_TIMEOUT_MS, .body = body, .body_len = body ? strlen(body) : 0,
		.headers = body ? "Accept: application/json\r\nContent-Type: application/json\r\n" :
		    "Accept: application/json\r\n" };
	http_client_request(api_loop(a->api), (struct sockaddr *)&a->addr, &o, call_done, c,
	    &c->http);
	free(full);
}

static struct call *
call_new(struct alert_api *a, struct http_req *req, enum op op, const char *ns,
    const char *name)
{
	struct call *c = xcalloc(1, sizeof *c);
	*c = (struct call){ .a = a, .req = req, .op = op, .ns = ns ? xstrdup(ns) : NULL,
		.name = name ? xstrdup(name) : NULL, .next = a->calls };
	a->calls = c;
	return c;
}

static bool
in_namespace(const json_t *am, const char *ns)
{
	return !ns || !strcmp(obj_str_at(am, "labels.namespace"), ns);
}

static bool
named(const json_t *am, const char *name)
{
	return !strcmp(obj_str(am, "fingerprint"), name) ||
	    !strcmp(obj_str_at(am, "labels.alertname"), name);
}

/* describe: the cause, what V6's webhook saw, and the silences. */
static json_t *
detail(struct alert_api *a, json_t *alert, const json_t *silences)
{
	struct alert_world w;
	const char *ns = alert_namespace(json_object_get(alert, "labels"));
	int64_t at = obj_time_ms(json_object_get(alert, "startsAt"));
	alert_world_load(api_store(a->api), ns, &w);
	json_t *changes = alert_cause(json_object_get(alert, "labels"), at,
	    ALERT_CAUSE_WINDOW_MS, &w);
	alert_world_free(&w);
	json_object_set_new(alert, "probableCause", changes);
	json_t *seen = alert_notify_seen(a->notify, obj_name(alert));
	if (seen)
		json_object_set_new(alert, "notifications", seen);
	json_t *mine = json_array(), *id, *s;
	size_t i, j;
	json_array_foreach(json_object_get(alert, "silencedBy"), i, id)
		json_array_foreach(silences, j, s)
			if (!strcmp(obj_str(s, "id"), json_string_value(id) ?: ""))
				json_array_append_new(mine, silence_object(s));
	json_object_set_new(alert, "silences", mine);
	return alert;
}

/* The expire's answer (a dry run's too): a Status naming the silence. */
static void
expired(struct call *c)
{
	api_respond_json(c->req, 200, json_pack("{s:s, s:s, s:{}, s:s, s:{s:s, s:s}}",
	    "kind", "Status", "apiVersion", "v1", "metadata", "status", "Success",
	    "details", "name", c->name, "kind", "silences"));
	call_free(c);
}

static void
answer(struct call *c, const json_t *doc)
{
	json_t *items = json_array(), *it;
	size_t i;
	switch (c->op) {
	case OP_LIST:
		json_array_foreach(doc, i, it)
			if (in_namespace(it, c->ns))
				json_array_append_new(items, alert_object(it));
		api_respond_json(c->req, 200, list_of("AlertList", items));
		break;
	case OP_GET:
		json_array_foreach(doc, i, it)
			if (in_namespace(it, c->ns) && named(it, c->name))
				json_array_append_new(items, alert_object(it));
		if (json_array_size(items) == 0) {
			char *m = xasprintf("alerts.%s \"%s\" not found (no alert firing with this "
			    "fingerprint or alertname)", ALERT_GROUP, c->name);
			json_decref(items);
			call_fail(c, 404, m);
			free(m);
			return;
		}
		c->alerts = items;
		c->op = OP_GET_SILENCES;
		am_send(c, "GET", "/api/v2/silences", NULL);
		return;
	case OP_GET_SILENCES:
		json_decref(items);
		items = json_array();
		json_array_foreach(c->alerts, i, it)
			json_array_append_new(items, detail(c->a, json_incref(it), doc));
		api_respond_json(c->req, 200, list_of("AlertList", items));
		break;
	case OP_SILENCES:
		json_array_foreach(doc, i, it)
			json_array_append_new(items, silence_object(it));
		api_respond_json(c->req, 200, list_of("SilenceList", items));
		break;
	case OP_CREATE:
		json_decref(items);
		api_respond_json(c->req, 201, json_pack("{s:s, s:s, s:{s:s}}", "kind", "Silence",
		    "apiVersion", ALERT_GROUP_VERSION, "metadata", "name",
		    obj_str(doc, "silenceID")));
		call_free(c);
		return;
	case OP_CREATE_DRY:	/* the silence as it would be, without an id */
		json_decref(items);
		api_respond_json(c->req, 201, silence_object(c->alerts));
		call_free(c);
		return;
	case OP_EXPIRE_DRY:
		json_decref(items);
		if (!strcmp(obj_str_at(doc, "status.state"), "expired")) {
			char *m = xasprintf("silence \"%s\" is already expired", c->name);
			call_fail(c, 422, m);
			free(m);
		} else {
			expired(c);
		}
		return;
	case OP_EXPIRE:
		json_decref(items);
		expired(c);
		return;
	}
	call_free(c);
}

static void
call_done(int rc, const struct http_response *res, void *arg)
{
	struct call *c = arg;
	c->http = NULL;
	if (rc < 0) {
		char *m = xasprintf("alertmanager %s unreachable: %s", c->a->url, strerror(-rc));
		call_fail(c, 503, m);
		free(m);
		return;
	}
	if (res->status == 404 && (c->op == OP_EXPIRE || c->op == OP_EXPIRE_DRY)) {
		char *m = xasprintf("silence \"%s\" not found", c->name);
		call_fail(c, 404, m);
		free(m);
		return;
	}
	if (res->status / 100 != 2) {
		/* Alertmanager's own words: a bad matcher, an unknown silence */
		char *m = xasprintf("alertmanager %s: HTTP %d: %.300s", c->a->url, res->status,
		    res->body);
		call_fail(c, res->status == 400 || res->status == 422 ? 422 : 502, m);
		free(m);
		return;
	}
	json_t *doc = res->body_len ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
	if (!doc && c->op != OP_EXPIRE) {
		call_fail(c, 502, "alertmanager answered something that is not JSON");
		return;
	}
	answer(c, doc);
	json_decref(doc);
}

/* ---- silences: what the CLI sends -> what Alertmanager takes ------------- */

/* {matchers: [{name, value, isRegex, isEqual}], duration: "2h" | endsAt,
 * startsAt?, comment, createdBy?} -> Alertmanager's postableSilence. */
static json_t *
postable_silence(const json_t *in, const struct http_req *req, char **err)
{
	json_t *m = json_object_get(in, "matchers");
	const char *comment = obj_str(in, "comment"), *dur = obj_str(in, "duration");
	int64_t now = time_now_ms(), ms = 0;
	if (!json_is_array(m) || json_array_size(m) == 0) {
		*err = xstrdup("matchers: at least one matcher (NAME=VALUE) is required");
		return NULL;
	}
	if (!*comment) {
		*err = xstrdup("comment: required (say why the alerts are silenced)");
		return NULL;
	}
	int64_t starts = obj_time_ms(json_object_get(in, "startsAt"));
	int64_t ends = obj_time_ms(json_object_get(in, "endsAt"));
	if (*dur && (duration_parse(dur, &ms) < 0 || ms <= 0)) {
		*err = xasprintf("duration: \"%s\" is not a positive duration (2h, 30m)", dur);
		return NULL;
	}
	if (!starts)
		starts = now;
	if (!ends)
		ends = starts + (ms ? ms : 60 * 60 * 1000);
	if (ends <= starts) {
		*err = xstrdup("endsAt: must be after startsAt");
		return NULL;
	}
	const char *by = obj_str(in, "createdBy");
	char *who = *by ? xstrdup(by) : xasprintf("v6 (%s)", req->remote_addr);
	json_t *out = json_pack("{s:O, s:o, s:o, s:s, s:s}", "matchers", m, "startsAt",
	    obj_time_json(starts), "endsAt", obj_time_json(ends), "createdBy", who, "comment",
	    comment);
	free(who);
	return out;
}

/* ---- the group ------------------------------------------------------------ */

static json_t *
discovery(const char *rest)
{
	return api_group_discovery(rest, ALERT_GROUP, ALERT_VERSION, json_pack(
	    "[{s:s, s:s, s:s, s:b, s:[s, s]}, {s:s, s:s, s:s, s:b, s:[s, s, s]}, "
	    "{s:s, s:s, s:s, s:b, s:[s]}]",
	    "name", "alerts", "singularName", "alert", "kind", "Alert", "namespaced", true,
	    "verbs", "list", "get",
	    "name", "silences", "singularName", "silence", "kind", "Silence", "namespaced",
	    false, "verbs", "list", "create", "delete",
	    "name", "receivers", "singularName", "receiver", "kind", "Receiver",
	    "namespaced", true, "verbs", "create"));
}

/* rest after the version, split: [namespaces NS] RESOURCE [NAME]. */
struct route {
	const char *ns, *res, *name;
};

static int
split_rest(char *rest, struct route *r)
{
	char *seg[6], *save = NULL;
	size_t n = 0;
	for (char *t = strtok_r(rest, "/", &save); t && n < ARRAY_SIZE(seg);
	    t = strtok_r(NULL, "/", &save))
		seg[n++] = t;
	size_t at = 0;
	memset(r, 0, sizeof *r);
	if (n >= 3 && !strcmp(seg[0], "namespaces"))
		r->ns = seg[1], at = 2;
	if (n - at < 1 || n - at > 2)
		return -ENOENT;
	r->res = seg[at];
	r->name = n - at == 2 ? seg[at + 1] : NULL;
	return 0;
}

static int
set_url(struct alert_api *a, const char *url)
{
	struct sockaddr_storage addr;
	char *host = NULL, *prefix = NULL;
	if (http_client_parse_url(url, &addr, &host, &prefix) < 0)
		return -EINVAL;
	free(a->url);
	free(a->host);
	free(a->prefix);
	a->url = xstrdup(url);
	a->addr = addr;
	a->host = host;
	a->prefix = prefix;
	return 0;
}

/* Without --alertmanager-url, the Alertmanager of `v6 addon enable
 * observability` (the Service v6-system/alertmanager), looked up at each
 * request so that it can come and go, as promrules finds its Prometheus. */
static void
discover(struct alert_api *a)
{
	json_t *svc = NULL;
	const char *ip = NULL;
	if (store_get(api_store(a->api), "services", "v6-system", "alertmanager", &svc) == 0 &&
	    !strcmp(obj_str(obj_labels(svc), "addon.v6.dev/name"), "observability"))
		ip = obj_str_at(svc, "spec.clusterIP");
	char *url = ip && *ip ? xasprintf("http://%s:9093", ip) : NULL;
	if (!url) {
		free(a->url);
		a->url = NULL;
	} else if ((!a->url || strcmp(a->url, url) != 0) && set_url(a, url) == 0) {
		log_info("alerts", "alerts and silences from the addon's Alertmanager %s", url);
	}
	free(url);
	json_decref(svc);
}

static void
serve(void *arg, struct http_req *req, const char *rest)
{
	struct alert_api *a = arg;
	bool get = !strcmp(req->method, "GET"), post = !strcmp(req->method, "POST");
	bool del = !strcmp(req->method, "DELETE");
	unsigned dry = 0;
	json_t *o;
	if (get && (o = discovery(rest)) != NULL) {
		api_respond_json(req, 200, o);
		return;
	}
	const char *pre = "/" ALERT_VERSION "/";
	if (!str_has_prefix(rest, pre)) {
		api_respond_status(req, 404, "the server could not find the requested resource");
		return;
	}
	char *copy = xstrdup(rest + strlen(pre));
	struct route r;
	if (split_rest(copy, &r) < 0) {
		api_respond_status(req, 404, "the server could not find the requested resource");
		goto out;
	}
	bool alerts = !strcmp(r.res, "alerts"), silences = !strcmp(r.res, "silences");
	if (post && ((!strcmp(r.res, "webhook") && !r.ns && !r.name) ||
	    (!strcmp(r.res, "receivers") && r.ns && r.name))) {
		alert_notify_serve(a->notify, req, r.ns, r.name);
		goto out;
	}
	if (!alerts && !silences) {
		api_respond_status(req, 404, "the server could not find the requested resource");
		goto out;
	}
	if ((silences && r.ns) || (alerts && !get) || (silences && ((get || post) && r.name)) ||
	    (silences && del && !r.name) || (!get && !post && !del)) {
		api_respond_status(req, 405, "method not allowed on this resource");
		goto out;
	}
	if (!get && api_dry_run_query(req, &dry) < 0)
		goto out;
	if (a->discovered)
		discover(a);
	if (!a->url) {
		api_respond_status(req, 503, "no Alertmanager: start the server with "
		    "--alertmanager-url http://IP:PORT, or run 'v6 addon enable observability'");
		goto out;
	}
	if (alerts) {
		struct call *c = call_new(a, req, r.name ? OP_GET : OP_LIST, r.ns, r.name);
		am_send(c, "GET", "/api/v2/alerts", NULL);
	} else if (get) {
		am_send(call_new(a, req, OP_SILENCES, NULL, NULL), "GET", "/api/v2/silences",
		    NULL);
	} else if (del) {
		char *path = xasprintf("/api/v2/silence/%s", r.name);
		am_send(call_new(a, req, dry ? OP_EXPIRE_DRY : OP_EXPIRE, NULL, r.name),
		    dry ? "GET" : "DELETE", path, NULL);
		free(path);
	} else {
		json_t *in = json_loadb(req->body, req->body_len, 0, NULL);
		char *err = NULL;
		json_t *ps = json_is_object(in) ? postable_silence(in, req, &err) : NULL;
		if (!ps) {
			api_respond_status(req, 422, err ? err : "the request body is not a JSON "
			    "object");
		} else if (dry) {
			struct call *c = call_new(a, req, OP_CREATE_DRY, NULL, NULL);
			c->alerts = json_incref(ps);
			am_send(c, "GET", "/api/v2/silences", NULL);
		} else {
			char *body = json_dumps(ps, JSON_COMPACT);
			am_send(call_new(a, req, OP_CREATE, NULL, NULL), "POST", "/api/v2/silences",
			    body);
			free(body);
		}
		json_decref(ps);
		json_decref(in);
		free(err);
	}
out:
	free(copy);
}

int
alert_api_start(struct api *api, const struct alert_config *cfg, struct alert_api **out)
{
	struct alert_api *a = xcalloc(1, sizeof *a);
	a->api = api;
	a->discovered = !cfg->alertmanager_url;
	if (cfg->alertmanager_url && set_url(a, cfg->alertmanager_url) < 0) {
		log_error("alerts", "--alertmanager-url %s: expected http://IP:PORT[/PATH]",
		    cfg->alertmanager_url);
		free(a);
		return -EINVAL;
	}
	a->notify = alert_notify_new(api, cfg);
	api_register_group(api, ALERT_GROUP, serve, a);
	if (a->url)
		log_info("alerts", "alerts and silences from Alertmanager %s", a->url);
	*out = a;
	return 0;
}

void
alert_api_stop(struct alert_api *a)
{
	if (!a)
		return;
	while (a->calls) {
		struct call *c = a->calls;
		http_client_cancel(c->http);
		call_fail(c, 503, "the server is stopping");
	}
	alert_notify_free(a->notify);
	free(a->url);
	free(a->host);
	free(a->prefix);
	free(a);
}
