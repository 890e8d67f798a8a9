/* api_audit.c — the API server's audit log (--audit-log-path,
 * --audit-policy-file): an audit.k8s.io/v1 Policy decides each request's
 * level (first matching rule wins), and events are appended as JSON lines
 * in audit.k8s.io/v1 Event form at RequestReceived and ResponseComplete.
 * Bodies of Secrets and ConfigMaps are never recorded, whatever the level.
 * Called by api_server.c when a request arrives and when it is finished. */
#include "api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "http.h"
#include "log.h"
#include "obj.h"
#include "util.h"

static const char *const level_names[] = {
	[AUDIT_NONE] = "None", [AUDIT_METADATA] = "Metadata",
	[AUDIT_REQUEST] = "Request", [AUDIT_REQUEST_RESPONSE] = "RequestResponse",
};

/* Resources whose bodies hold credentials: Metadata at most (tokens ride
 * in TokenReviews and serviceaccounts/token). */
static const char *const bodyless[] = { "secrets", "configmaps", "tokenreviews",
	"serviceaccounts" };

struct group_res {
	char *group;
	json_t *resources, *names;	/* arrays; NULL: any */
};

struct audit_rule {
	enum audit_level level;
	json_t *users, *groups, *verbs, *namespaces, *urls;	/* NULL: any */
	struct group_res *res;
	size_t nres;
	unsigned omit;		/* bit per AUDIT_STAGE_* */
};

struct audit_policy {
	struct audit_rule *rules;
	size_t nrules;
	unsigned omit;
};

struct api_audit {
	struct audit_policy *policy;
	int fd;
};

/* One request in flight (req->user). */
struct audit_req {
	struct audit_attrs at;
	char *copy;		/* the path, split into at's strings */
	char id[40];
	char received[96];
	enum audit_level level;
	unsigned omit;
	json_t *request_object;
	json_t *response_object;
};

/* ---- the policy --------------------------------------------------------- */

static unsigned
stages_parse(const json_t *a)
{
	unsigned m = 0;
	size_t i;
	const json_t *v;
	json_array_foreach(a, i, v) {
		const char *s = json_string_value(v);
		if (s && strcmp(s, "RequestReceived") == 0)
			m |= 1u << AUDIT_STAGE_RECEIVED;
		else if (s && strcmp(s, "ResponseComplete") == 0)
			m |= 1u << AUDIT_STAGE_COMPLETE;
	}
	return m;
}

static json_t *
list_or_null(const json_t *o, const char *field)
{
	json_t *v = json_object_get(o, field);
	return json_array_size(v) ? json_incref(v) : NULL;
}

static int
rule_parse(const json_t *j, size_t idx, struct audit_rule *r, char **err)
{
	const char *lvl = json_string_value(json_object_get(j, "level"));
	const json_t *res = json_object_get(j, "resources"), *g;
	size_t i;

	r->level = AUDIT_NONE;
	for (i = 0; lvl && i < ARRAY_SIZE(level_names); i++)
		if (strcmp(lvl, level_names[i]) == 0)
			break;
	if (!lvl || i == ARRAY_SIZE(level_names)) {
		*err = xasprintf("rules[%zu].level: expected None, Metadata, Request or "
		    "RequestResponse", idx);
		return -EINVAL;
	}
	r->level = (enum audit_level)i;
	r->users = list_or_null(j, "users");
	r->groups = list_or_null(j, "userGroups");
	r->verbs = list_or_null(j, "verbs");
	r->namespaces = list_or_null(j, "namespaces");
	r->urls = list_or_null(j, "nonResourceURLs");
	r->omit = stages_parse(json_object_get(j, "omitStages"));
	r->res = xcalloc(json_array_size(res) + 1, sizeof *r->res);
	json_array_foreach(res, i, g) {
		const char *group = json_string_value(json_object_get(g, "group"));
		r->res[r->nres++] = (struct group_res){ xstrdup(group ? group : ""),
			list_or_null(g, "resources"), list_or_null(g, "resourceNames") };
	}
	return 0;
}

void
api_audit_policy_free(struct audit_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nrules; i++) {
		struct audit_rule *r = &p->rules[i];
		json_decref(r->users);
		json_decref(r->groups);
		json_decref(r->verbs);
		json_decref(r->namespaces);
		json_decref(r->urls);
		for (size_t j = 0; j < r->nres; j++) {
			free(r->res[j].group);
			json_decref(r->res[j].resources);
			json_decref(r->res[j].names);
		}
		free(r->res);
	}
	free(p->rules);
	free(p);
}

int
api_audit_policy_parse(const char *text, size_t len, struct audit_policy **out, char **err)
{
	struct obj_docs docs = { 0 };
	struct errlist errs = { 0 };
	struct audit_policy *p = NULL;
	const json_t *doc, *rules, *r;
	size_t i;
	int rc = -EINVAL;

	*out = NULL;
	*err = NULL;
	if (obj_parse(text, len, &docs, &errs) < 0 || docs.n != 1) {
		*err = errs.n ? field_err_format(&errs.v[0], NULL)
		    : xstrdup("expected one Policy document");
		goto out;
	}
	doc = docs.v[0].obj;
	const char *kind = json_string_value(json_object_get(doc, "kind"));
	if (!kind || strcmp(kind, "Policy") != 0) {
		*err = xstrdup("kind: expected Policy (apiVersion audit.k8s.io/v1)");
		goto out;
	}
	rules = json_object_get(doc, "rules");
	p = xcalloc(1, sizeof *p);
	p->rules = xcalloc(json_array_size(rules) + 1, sizeof *p->rules);
	p->omit = stages_parse(json_object_get(doc, "omitStages"));
	json_array_foreach(rules, i, r) {
		p->nrules = i + 1;
		if (rule_parse(r, i, &p->rules[i], err) < 0)
			goto out;
	}
	*out = p;
	p = NULL;
	rc = 0;
out:
	api_audit_policy_free(p);
	obj_docs_free(&docs);
	errlist_free(&errs);
	return rc;
}

/* A list (NULL: any) holds s, or "*". */
static bool
in_list(const json_t *list, const char *s)
{
	size_t i;
	const json_t *v;
	if (!list)
		return true;
	json_array_foreach(list, i, v) {
		const char *e = json_string_value(v);
		if (e && (strcmp(e, "*") == 0 || strcmp(e, s) == 0))
			return true;
	}
	return false;
}

bool
api_url_match(const json_t *list, const char *path)
{
	size_t i;
	const json_t *v;
	json_array_foreach(list, i, v) {
		const char *e = json_string_value(v);
		size_t n = e ? strlen(e) : 0;
		if (n && ((e[n - 1] == '*' && strncmp(e, path, n - 1) == 0) ||
		    strcmp(e, path) == 0))
			return true;
	}
	return false;
}

/* resources entries: "pods", "pods/log", "*", "*\/scale", "pods/\*". */
static bool
resource_match(const json_t *list, const struct audit_attrs *a)
{
	size_t i;
	const json_t *v;
	if (!list)
		return true;
	json_array_foreach(list, i, v) {
		const char *e = json_string_value(v), *slash = e ? strchr(e, '/') : NULL;
		if (!e)
			continue;
		if (!slash) {
			if ((strcmp(e, "*") == 0 && !*a->subresource) ||
			    (strcmp(e, a->resource) == 0 && !*a->subresource))
				return true;
			continue;
		}
		size_t n = (size_t)(slash - e);
		bool res_ok = (n == 1 && e[0] == '*') ||
		    (strlen(a->resource) == n && strncmp(e, a->resource, n) == 0);
		bool sub_ok = strcmp(slash + 1, "*") == 0 || strcmp(slash + 1, a->subresource) == 0;
		if (res_ok && sub_ok && *a->subresource)
			return true;
	}
	return false;
}

static bool
rule_match(const struct audit_rule *r, const struct audit_attrs *a)
{
	bool group_ok = !r->groups;
	for (size_t i = 0; i < a->ngroups && !group_ok; i++)
		group_ok = in_list(r->groups, a->groups[i]);
	if (!in_list(r->users, a->user) || !group_ok || !in_list(r->verbs, a->verb))
		return false;
	if (!*a->resource)	/* a non-resource request: only nonResourceURLs rules */
		return r->urls ? api_url_match(r->urls, a->path) : !r->nres && !r->namespaces;
	if (r->urls || !in_list(r->namespaces, a->ns))
		return false;
	for (size_t i = 0; i < r->nres; i++)
		if (strcmp(r->res[i].group, a->group) == 0 &&
		    resource_match(r->res[i].resources, a) && in_list(r->res[i].names, a->name))
			return true;
	return r->nres == 0;
}

enum audit_level
api_audit_policy_level(const struct audit_policy *p, const struct audit_attrs *a,
    unsigned *omit)
{
	*omit = p ? p->omit : 0;
	if (!p)
		return AUDIT_METADATA;	/* --audit-log-path alone: every request */
	for (size_t i = 0; i < p->nrules; i++)
		if (rule_match(&p->rules[i], a)) {
			*omit |= p->rules[i].omit;
			return p->rules[i].level;
		}
	return AUDIT_NONE;
}

/* ---- the request's attributes -------------------------------------------- */

static const struct {
	const char *method;
	const char *one, *many;	/* the verb on one object, on a collection */
} verbs[] = {
	{ "GET", "get", "list" }, { "HEAD", "get", "list" }, { "POST", "create", "create" },
	{ "PUT", "update", "update" }, { "PATCH", "patch", "patch" },
	{ "DELETE", "delete", "deletecollection" },
};

void
api_audit_attrs(const char *method, const char *path, const char *query, char **copy,
    struct audit_attrs *a)
{
	static const char *const ns_subresources[] = { "status", "finalize" };
	char *seg[16], *p;
	size_t n = 0, at = 0;

	static const char *const anonymous[] = { "system:unauthenticated" };
	*a = (struct audit_attrs){ .user = "system:anonymous", .verb = "", .path = path,
		.group = "", .version = "", .ns = "", .resource = "", .name = "",
		.subresource = "", .groups = anonymous, .ngroups = 1 };
	p = *copy = xstrdup(path);
	while (*p == '/')
		p++;
	while (*p && n < ARRAY_SIZE(seg)) {
		seg[n++] = p;
		if (!(p = strchr(p, '/')))
			break;
		*p++ = '\0';
	}
	if (n >= 3 && strcmp(seg[0], "api") == 0)
		at = 2, a->version = seg[1];
	else if (n >= 4 && strcmp(seg[0], "apis") == 0)
		at = 3, a->group = seg[1], a->version = seg[2];
	/* Kubernetes' RequestInfo: .../namespaces/NS is the Namespace NS in
	 * namespace NS; .../namespaces/NS/status its subresource. */
	if (at && n - at >= 2 && strcmp(seg[at], "namespaces") == 0) {
		a->ns = seg[at + 1];
		bool shift = n - at > 2;
		for (size_t i = 0; shift && i < ARRAY_SIZE(ns_subresources); i++)
			shift = strcmp(seg[at + 2], ns_subresources[i]) != 0;
		if (shift)
			at += 2;
	}
	if (at && at < n)
		a->resource = seg[at];
	if (at && at + 1 < n)
		a->name = seg[at + 1];
	if (at && at + 2 < n)
		a->subresource = seg[at + 2];
	for (size_t i = 0; *a->resource && i < ARRAY_SIZE(verbs); i++)
		if (strcmp(method, verbs[i].method) == 0)
			a->verb = *a->name ? verbs[i].one : verbs[i].many;
	if (*a->resource && !*a->name && strcmp(method, "GET") == 0 && query) {
		const char *w = strstr(query, "watch=");
		if (w && (w == query || w[-1] == '&') && (strncmp(w + 6, "true", 4) == 0 ||
		    w[6] == '1'))
			a->verb = "watch";
	}
	if (!*a->verb) {	/* a non-resource request: the method in lower case */
		static const char *const lower[] = { "get", "head", "post", "put", "patch",
			"delete", "options" };
		a->verb = method;
		for (size_t i = 0; i < ARRAY_SIZE(lower); i++)
			if (strcasecmp(method, lower[i]) == 0)
				a->verb = lower[i];
	}
}

/* ---- the log ---------------------------------------------------------- */

int
api_audit_open(const char *log_path, const char *policy_path, struct api_audit **out,
    char **err)
{
	struct audit_policy *p = NULL;
	char *text = NULL;
	size_t len;
	int rc;

	*out = NULL;
	*err = NULL;
	if (policy_path) {
		if ((rc = file_read_all(policy_path, &text, &len)) < 0) {
			*err = xasprintf("%s: %s", policy_path, strerror(-rc));
			return rc;
		}
		rc = api_audit_policy_parse(text, len, &p, err);
		free(text);
		if (rc < 0)
			return rc;
	}
	int fd = strcmp(log_path, "-") == 0 ? dup(1) :
	    open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		*err = xasprintf("%s: %s", log_path, strerror(errno));
		api_audit_policy_free(p);
		return rc;
	}
	*out = xcalloc(1, sizeof **out);
	(*out)->policy = p;
	(*out)->fd = fd;
	return 0;
}

void
api_audit_close(struct api_audit *a)
{
	if (!a)
		return;
	api_audit_policy_free(a->policy);
	close(a->fd);
	free(a);
}

/* "2026-12-07T06:55:01.123456Z", the apiserver's MicroTime. */
static void
micro_now(char out[96])
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(out, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
}

static bool
is_bodyless(const char *resource)
{
	for (size_t i = 0; i < ARRAY_SIZE(bodyless); i++)
		if (strcmp(resource, bodyless[i]) == 0)
			return true;
	return false;
}

/* A body that mentions a Secret or ConfigMap anywhere (a List, a body sent
 * to another resource's path, a patch) is not recorded either. */
static bool
names_bodyless_kind(const char *body)
{
	return strstr(body, "Secret") || strstr(body, "ConfigMap");
}

static void
emit(struct api_audit *a, const struct audit_req *ar, const struct http_req *req,
    const char *stage, int status)
{
	char now[96], ip[64];
	const char *ua = http_req_header(req, "User-Agent");
	const char *colon = strrchr(req->remote_addr, ':');
	size_t iplen = colon ? (size_t)(colon - req->remote_addr) : strlen(req->remote_addr);
	json_t *ev, *ref;

	micro_now(now);
	snprintf(ip, sizeof ip, "%.*s", (int)iplen, req->remote_addr);
	json_t *groups = json_array();
	for (size_t i = 0; i < ar->at.ngroups; i++)
		json_array_append_new(groups, json_string(ar->at.groups[i]));
	ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:o}, s:[s], s:s, s:s}",
	    "kind", "Event", "apiVersion", "audit.k8s.io/v1",
	    "level", level_names[ar->level], "auditID", ar->id, "stage", stage,
	    "requestURI", req->target, "verb", ar->at.verb,
	    "user", "username", ar->at.user, "groups", groups,
	    "sourceIPs", ip, "requestReceivedTimestamp", ar->received, "stageTimestamp", now);
	if (ua)
		json_object_set_new(ev, "userAgent", json_string(ua));
	if (*ar->at.resource) {
		ref = json_pack("{s:s, s:s}", "resource", ar->at.resource, "apiVersion",
		    ar->at.version);
		if (*ar->at.ns)
			json_object_set_new(ref, "namespace", json_string(ar->at.ns));
		if (*ar->at.name)
			json_object_set_new(ref, "name", json_string(ar->at.name));
		if (*ar->at.group)
			json_object_set_new(ref, "apiGroup", json_string(ar->at.group));
		if (*ar->at.subresource)
			json_object_set_new(ref, "subresource", json_string(ar->at.subresource));
		json_object_set_new(ev, "objectRef", ref);
	}
	if (status)
		json_object_set_new(ev, "responseStatus", json_pack("{s:{}, s:i}", "metadata",
		    "code", status));
	if (ar->request_object)
		json_object_set(ev, "requestObject", ar->request_object);
	if (ar->response_object && status)
		json_object_set(ev, "responseObject", ar->response_object);
	char *line = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (!line)
		return;
	size_t n = strlen(line);
	line[n] = '\n';	/* json_dumps' NUL becomes the line end */
	if (write(a->fd, line, n + 1) != (ssize_t)(n + 1))
		log_warn("api", "writing the audit log: %s", strerror(errno));
	free(line);
}

static void
audit_req_free(struct audit_req *ar)
{
	if (!ar)
		return;
	json_decref(ar->request_object);
	json_decref(ar->response_object);
	free(ar->copy);
	free(ar);
}

/* The request's record: its level, ID and received time. */
static struct audit_req *
audit_req_new(struct api_audit *a, const struct http_req *req)
{
	struct audit_req *ar = xcalloc(1, sizeof *ar);
	json_t *uid = api_new_uid();

	snprintf(ar->id, sizeof ar->id, "%s", json_string_value(uid));
	json_decref(uid);
	micro_now(ar->received);
	api_audit_attrs(req->method, req->path, req->query, &ar->copy, &ar->at);
	const struct auth_user *u = api_auth_user(req);
	if (u) {	/* authenticated (not answered by http.c before the API) */
		ar->at.user = u->name;
		ar->at.groups = u->groups;
		ar->at.ngroups = u->ngroups;
	}
	ar->level = api_audit_policy_level(a->policy, &ar->at, &ar->omit);
	if (ar->level >= AUDIT_REQUEST && req->body_len && !is_bodyless(ar->at.resource) &&
	    !names_bodyless_kind(req->body))
		ar->request_object = json_loadb(req->body, req->body_len, 0, NULL);
	return ar;
}

void
api_audit_response(struct api_audit *a, struct http_req *req, const char *body)
{
	struct audit_req *ar = a ? req->user : NULL;

	if (!ar || ar->level < AUDIT_REQUEST_RESPONSE || !body ||
	    is_bodyless(ar->at.resource) || names_bodyless_kind(body))
		return;
	json_decref(ar->response_object);
	ar->response_object = json_loads(body, 0, NULL);
}

void
api_audit_received(struct api_audit *a, struct http_req *req)
{
	struct audit_req *ar;

	if (!a)
		return;
	req->user = ar = audit_req_new(a, req);
	if (ar->level != AUDIT_NONE && !(ar->omit & (1u << AUDIT_STAGE_RECEIVED)))
		emit(a, ar, req, "RequestReceived", 0);
}

void
api_audit_done(struct api_audit *a, struct http_req *req, int status)
{
	struct audit_req *ar;

	if (!a)
		return;
	ar = req->user ? req->user : audit_req_new(a, req);	/* answered by http.c */
	req->user = NULL;
	if (ar->level != AUDIT_NONE && !(ar->omit & (1u << AUDIT_STAGE_COMPLETE)))
		emit(a, ar, req, "ResponseComplete", status);
	audit_req_free(ar);
}
