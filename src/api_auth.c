/* api_auth.c — who calls and whether they may, for every API request
 * (auth.h): client certificate, bearer token (file or ServiceAccount),
 * anonymous or the unsecured loopback admin; impersonation; 401 / 429 with
 * the failed-token limit per address; RBAC and escalation checks (403); the
 * per-user watch cap. Called first by api_server.c for each request. */
#include "auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

/* Failed tokens per client address: FAIL_LIMIT within FAIL_WINDOW_MS, then
 * every token from it is refused (429) until the window ends. */
#define FAIL_LIMIT	20
#define FAIL_WINDOW_MS	10000
#define FAIL_SLOTS	256

struct fail_slot {
	char addr[64];
	int64_t since;		/* start of the window, monotonic ms */
	unsigned fails;
};

struct auth {
	struct api *api;
	struct auth_tokens *tokens;
	struct auth_sa *sa;
	struct rbac *rbac;
	struct fail_slot fails[FAIL_SLOTS];
	int64_t last_fail;	/* monotonic ms of the newest failure */
	json_t *watches;	/* user name -> open watches (outside system:masters) */
};

/* req->auth: a copy of the identity, owned by the request. */
struct auth_req {
	struct auth_user user;	/* first: api_auth_user() returns it */
	char *name, *uid;
	char **groups;
};

static const char *const masters[] = { "system:masters", "system:authenticated" };
static const struct auth_user unsecured = { "system:unsecured", "", masters, 2 };
static const char *const unauthenticated[] = { "system:unauthenticated" };
static const struct auth_user anonymous = { "system:anonymous", "", unauthenticated, 1 };

static void
set_user(struct http_req *req, const char *name, const char *uid,
    const char *const *groups, size_t ngroups, bool authenticated)
{
	struct auth_req *ar = xcalloc(1, sizeof *ar);
	size_t n = 0;
	ar->name = xstrdup(name);
	ar->uid = xstrdup(uid);
	ar->groups = xcalloc(ngroups + 1, sizeof *ar->groups);
	for (size_t i = 0; i < ngroups; i++)
		ar->groups[n++] = xstrdup(groups[i]);
	if (authenticated && !auth_in_group(&(struct auth_user){ name, uid, groups, ngroups },
	    "system:authenticated"))
		ar->groups[n++] = xstrdup("system:authenticated");
	ar->user = (struct auth_user){ ar->name, ar->uid, (const char *const *)ar->groups, n };
	req->auth = ar;
}

void
api_auth_done(struct http_req *req)
{
	struct auth_req *ar = req->auth;
	if (!ar)
		return;
	for (size_t i = 0; i < ar->user.ngroups; i++)
		free(ar->groups[i]);
	free(ar->groups);
	free(ar->name);
	free(ar->uid);
	free(ar);
	req->auth = NULL;
}

const struct auth_user *
api_auth_user(const struct http_req *req)
{
	return req->auth;
}

bool
auth_in_group(const struct auth_user *u, const char *group)
{
	for (size_t i = 0; i < u->ngroups; i++)
		if (strcmp(u->groups[i], group) == 0)
			return true;
	return false;
}

/* ---- failed tokens per address ------------------------------------------- */

static void
client_addr(const struct http_req *req, char out[64])
{
	const char *colon = strrchr(req->remote_addr, ':');
	size_t n = colon ? (size_t)(colon - req->remote_addr) : strlen(req->remote_addr);
	snprintf(out, 64, "%.*s", (int)n, req->remote_addr);
}

/* The slot of addr (a new or the oldest one when absent and create). */
static struct fail_slot *
fail_slot(struct auth *au, const char *addr, bool create)
{
	struct fail_slot *oldest = &au->fails[0];
	for (size_t i = 0; i < FAIL_SLOTS; i++) {
		if (strcmp(au->fails[i].addr, addr) == 0)
			return &au->fails[i];
		if (au->fails[i].since < oldest->since)
			oldest = &au->fails[i];
	}
	if (!create)
		return NULL;
	*oldest = (struct fail_slot){ .since = time_mono_ms() };
	snprintf(oldest->addr, sizeof oldest->addr, "%s", addr);
	return oldest;
}

static bool
addr_blocked(struct auth *au, const char *addr)
{
	int64_t now = time_mono_ms();
	if (!au->last_fail || now - au->last_fail >= FAIL_WINDOW_MS)
		return false;	/* no failure lately: no need to look */
	struct fail_slot *s = fail_slot(au, addr, false);
	if (!s || now - s->since >= FAIL_WINDOW_MS)
		return false;
	return s->fails >= FAIL_LIMIT;
}

static void
addr_failed(struct auth *au, const char *addr, const char *why)
{
	struct fail_slot *s = fail_slot(au, addr, true);
	int64_t now = time_mono_ms();
	au->last_fail = now;
	if (now - s->since >= FAIL_WINDOW_MS)
		s->since = now, s->fails = 0;
	if (++s->fails == 1)
		log_warn("auth", "invalid bearer token from %s: %s", addr, why);
	if (s->fails == FAIL_LIMIT)
		log_warn("auth", "%u invalid bearer tokens from %s within %d s: refusing its "
		    "tokens for the rest of that time (token brute force?)", s->fails, addr,
		    FAIL_WINDOW_MS / 1000);
}

/* ---- authentication -------------------------------------------------------- */

/* The token of "Authorization: Bearer TOKEN", NULL when none (other schemes
 * are not V6's and are ignored, as Kubernetes does). */
static const char *
bearer_token(const struct http_req *req)
{
	const char *h = http_req_header(req, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return *h ? h : NULL;
}

/* The user a bearer token names: a ServiceAccount's (signed token) or one
 * of the token file's; NULL with *why when none. New JSON: {username, uid,
 * groups}. */
static json_t *
token_user(struct auth *au, const char *token, const char *audience, const char **why)
{
	json_t *claims, *u = NULL;
	int rc = auth_sa_verify(au->sa, token, audience, &claims, why);
	if (rc == 0) {
		const json_t *k = json_object_get(claims, "kubernetes.io");
		const char *ns = json_string_value(json_object_get(k, "namespace"));
		const json_t *acct = json_object_get(k, "serviceaccount");
		char *name = xasprintf("system:serviceaccount:%s:%s", ns,
		    json_string_value(json_object_get(acct, "name")));
		char *nsgroup = xasprintf("system:serviceaccounts:%s", ns);
		u = json_pack("{s:s, s:s, s:[s, s, s]}", "username", name, "uid",
		    json_string_value(json_object_get(acct, "uid")), "groups",
		    "system:serviceaccounts", nsgroup, "system:authenticated");
		free(name);
		free(nsgroup);
		json_decref(claims);
		return u;
	}
	const struct auth_user *t = rc == -EINVAL ? auth_tokens_find(au->tokens, token) : NULL;
	if (!t) {
		if (rc == -EINVAL)
			*why = "unknown token";
		return NULL;
	}
	json_t *groups = json_array();
	for (size_t i = 0; i < t->ngroups; i++)
		json_array_append_new(groups, json_string(t->groups[i]));
	return json_pack("{s:s, s:s, s:o}", "username", t->name, "uid", t->uid, "groups",
	    groups);
}

json_t *
auth_token_review(struct auth *au, const char *token, const json_t *audiences)
{
	const char *aud = json_string_value(json_array_get(audiences, 0));
	const char *why = NULL;
	json_t *u = token_user(au, token ? token : "", aud ? aud : SA_ISSUER, &why);
	if (!u)
		return json_pack("{s:b, s:s}", "authenticated", false, "error", why);
	return json_pack("{s:b, s:o, s:[s]}", "authenticated", true, "user", u, "audiences",
	    aud ? aud : SA_ISSUER);
}

/* Sets req->auth from a {username, uid, groups} object. */
static void
set_user_json(struct http_req *req, const json_t *u)
{
	const json_t *g = json_object_get(u, "groups"), *v;
	const char **groups = xcalloc(json_array_size(g) + 1, sizeof *groups);
	size_t i, n = 0;
	json_array_foreach(g, i, v)
		groups[n++] = json_string_value(v);
	set_user(req, json_string_value(json_object_get(u, "username")),
	    json_string_value(json_object_get(u, "uid")), groups, n, true);
	free(groups);
}

/* Sets req->auth, or answers 401 / 429 and returns -1. */
static int
authenticate(struct auth *au, struct http_req *req)
{
	const char *token = bearer_token(req);
	char addr[64];

	if (req->tls && req->client_cn) {
		set_user(req, req->client_cn, "", req->client_orgs, req->client_norgs, true);
		return 0;
	}
	if (!token) {
		const struct auth_user *u = req->tls ? &anonymous : &unsecured;
		set_user(req, u->name, u->uid, u->groups, u->ngroups, false);
		return 0;
	}
	client_addr(req, addr);
	if (addr_blocked(au, addr)) {
		http_add_header(req, "Retry-After", "10");
		api_respond_status(req, 429, "too many invalid bearer tokens from this address; "
		    "try again later");
		return -1;
	}
	const char *why = NULL;
	const struct auth_user *t = strchr(token, '.') ? NULL : auth_tokens_find(au->tokens,
	    token);
	if (t) {	/* a static token (no JWT has no dot): the common, cheap case */
		set_user(req, t->name, t->uid, t->groups, t->ngroups, true);
		return 0;
	}
	json_t *u = token_user(au, token, SA_ISSUER, &why);
	if (!u) {
		addr_failed(au, addr, why);
		api_respond_status(req, 401, "Unauthorized");
		return -1;
	}
	set_user_json(req, u);
	json_decref(u);
	return 0;
}

/* ---- authorization --------------------------------------------------------- */

bool
auth_authorize(struct auth *au, const struct auth_user *u, const struct audit_attrs *a)
{
	if (auth_in_group(u, "system:masters"))
		return true;
	return au && rbac_allows(rbac_current(au->rbac), u, a);
}

json_t *
auth_user_rules(struct auth *au, const struct auth_user *u, const char *ns)
{
	return rbac_user_rules(rbac_current(au->rbac), u, ns);
}

char *
auth_forbidden_message(const struct auth_user *u, const struct audit_attrs *a)
{
	if (!*a->resource)
		return xasprintf("User \"%s\" cannot %s path \"%s\"", u->name, a->verb, a->path);
	char res[256];
	snprintf(res, sizeof res, "%s%s%s", a->resource, *a->subresource ? "/" : "",
	    a->subresource);
	if (*a->ns)
		return xasprintf("User \"%s\" cannot %s resource \"%s\" in API group \"%s\" in "
		    "the namespace \"%s\"", u->name, a->verb, res, a->group, a->ns);
	return xasprintf("User \"%s\" cannot %s resource \"%s\" in API group \"%s\" at the "
	    "cluster scope", u->name, a->verb, res, a->group);
}

/* 403 as Kubernetes' NewForbidden: "pods \"p\" is forbidden: why". */
static void
forbid(struct http_req *req, const struct audit_attrs *a, const char *why)
{
	char gr[256];
	char *msg;
	snprintf(gr, sizeof gr, "%s%s%s", a->resource, *a->group ? "." : "", a->group);
	if (!*a->resource)
		msg = xasprintf("forbidden: %s", why);
	else if (*a->name)
		msg = xasprintf("%s \"%s\" is forbidden: %s", gr, a->name, why);
	else
		msg = xasprintf("%s is forbidden: %s", gr, why);
	json_t *details = json_object();
	if (*a->name)
		json_object_set_new(details, "name", json_string(a->name));
	if (*a->group)
		json_object_set_new(details, "group", json_string(a->group));
	if (*a->resource)
		json_object_set_new(details, "kind", json_string(a->resource));
	api_respond_json(req, 403, json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:o, s:i}",
	    "kind", "Status", "apiVersion", "v1", "metadata", "status", "Failure",
	    "message", msg, "reason", "Forbidden", "details", details, "code", 403));
	free(msg);
}

static bool
is_rbac_kind(const struct audit_attrs *a, const char *resource)
{
	return strcmp(a->group, "rbac.authorization.k8s.io") == 0 &&
	    strcmp(a->resource, resource) == 0;
}

/* Kubernetes' "attempting to grant RBAC permissions not currently held". */
static char *
escalation_message(const struct auth_user *u, const json_t *rules)
{
	struct buf b = { 0 };
	char *r = json_dumps(rules, JSON_COMPACT);
	buf_printf(&b, "user \"%s\" (groups=[", u->name);
	for (size_t i = 0; i < u->ngroups; i++)
		buf_printf(&b, "%s\"%s\"", i ? " " : "", u->groups[i]);
	buf_printf(&b, "]) is attempting to grant RBAC permissions not currently held: %s",
	    r ? r : "");
	free(r);
	return buf_steal(&b);
}

/* Escalation prevention on a write of a Role, ClusterRole or binding by a
 * user RBAC let write it: a role only with every permission it grants or
 * the escalate verb; a binding only with bind on its role or every
 * permission of the role. NULL when allowed, else why not (caller frees). */
static char *
escalation_check(struct auth *au, const struct http_req *req, const struct auth_user *u,
    const struct audit_attrs *a)
{
	bool role = is_rbac_kind(a, "roles") || is_rbac_kind(a, "clusterroles");
	bool binding = is_rbac_kind(a, "rolebindings") || is_rbac_kind(a, "clusterrolebindings");
	bool write = strcmp(a->verb, "create") == 0 || strcmp(a->verb, "update") == 0 ||
	    strcmp(a->verb, "patch") == 0;
	if ((!role && !binding) || !write || *a->subresource ||
	    auth_in_group(u, "system:masters"))
		return NULL;
	struct audit_attrs q = *a;
	json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
	const json_t *ref = json_object_get(body, "roleRef");
	const char *rk = json_string_value(json_object_get(ref, "kind"));
	const char *rn = json_string_value(json_object_get(ref, "name"));
	const struct rbac_index *ix = rbac_current(au->rbac);
	const json_t *rules = NULL;
	char *why = NULL;
	json_t *stored = NULL, *aggregated = NULL;

	if (role && strcmp(a->verb, "patch") == 0) {
		/* the role as the patch would leave it (kubectl apply patches) */
		const struct kind *k = kind_find_resource(a->group, a->version, a->resource);
		api_patch_fn fn = api_patch_for(http_req_header(req, "Content-Type"));
		char key[128], *perr = NULL;
		json_t *patched;
		if (!k || !fn || !body || store_get(api_store(au->api), api_res_key(k, key,
		    sizeof key), a->ns, a->name, &stored) < 0 ||
		    !(patched = fn(stored, body, &perr))) {
			free(perr);
			goto out;	/* the handler answers the bad patch (404, 415, 422) */
		}
		json_decref(body);
		body = patched;
	}
	if (role && json_object_get(body, "aggregationRule")) {
		/* an aggregated role grants what it would select */
		json_t *all = NULL;
		if (store_list(api_store(au->api), "rbac.authorization.k8s.io/clusterroles", NULL,
		    &all, NULL) == 0)
			aggregated = rbac_clusterrole_rules(all, body);
		json_decref(all);
	}
	if (role) {
		q.verb = "escalate";
		rules = aggregated ? aggregated : json_object_get(body, "rules");
	} else {
		if (strcmp(a->verb, "patch") == 0 || !rk || !rn) {
			/* roleRef is immutable: a patch keeps the stored one */
			const struct kind *k = kind_find_resource(a->group, a->version, a->resource);
			char key[128];
			if (k && store_get(api_store(au->api), api_res_key(k, key, sizeof key),
			    a->ns, a->name, &stored) == 0)
				ref = json_object_get(stored, "roleRef");
			rk = json_string_value(json_object_get(ref, "kind"));
			rn = json_string_value(json_object_get(ref, "name"));
		}
		q.verb = "bind";
		q.resource = rk && strcmp(rk, "Role") == 0 ? "roles" : "clusterroles";
		q.name = rn ? rn : "";
		rules = rk && rn ? rbac_role_rules(ix, rk, a->ns, rn) : NULL;
	}
	q.subresource = "";
	if (auth_authorize(au, u, &q))
		goto out;
	if (!rules && role) {
		goto out;	/* no rules: grants nothing */
	}
	if (!rules) {
		why = xasprintf("user \"%s\" cannot bind %s \"%s\": it does not exist and the "
		    "user lacks the bind verb on it", u->name, rk ? rk : "role", rn ? rn : "");
		goto out;
	}
	json_t *owner = rbac_user_rules(ix, u, a->ns);
	if (!rbac_rules_cover(owner, rules))
		why = escalation_message(u, rules);
	json_decref(owner);
out:
	json_decref(aggregated);
	json_decref(stored);
	json_decref(body);
	return why;
}

/* Kubernetes' impersonation (kubectl --as USER --as-group G): the caller
 * needs the impersonate verb on users (serviceaccounts for
 * system:serviceaccount:NS:NAME) and groups of those names; the request
 * then runs as that user. Also how stock kubectl acts as someone over the
 * plain listener, where it sends no bearer token. Returns 0 or -1 when it
 * answered the request. */
static int
impersonate(struct auth *au, struct http_req *req)
{
	const char *as = http_req_header(req, "Impersonate-User");
	const struct auth_user *u = api_auth_user(req);
	const char **groups = xcalloc(req->nheaders + 1, sizeof *groups);
	size_t ng = 0;
	int rc = 0;

	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, "Impersonate-Group") == 0)
			groups[ng++] = req->headers[i].value;
	if (!as) {
		if (ng)
			api_respond_status(req, 400, "requested groups without impersonating a user");
		free(groups);
		return ng ? -1 : 0;
	}
	for (size_t i = 0; i <= ng && rc == 0; i++) {
		struct audit_attrs q = { .user = u->name, .verb = "impersonate", .path = req->path,
			.group = "", .version = "v1", .ns = "", .resource = "users", .name = as,
			.subresource = "", .groups = u->groups, .ngroups = u->ngroups };
		char sa_ns[256];
		const char *sa = str_has_prefix(as, "system:serviceaccount:") ?
		    as + strlen("system:serviceaccount:") : NULL;
		if (i < ng) {
			q.resource = "groups";
			q.name = groups[i];
		} else if (sa && strchr(sa, ':')) {
			snprintf(sa_ns, sizeof sa_ns, "%.*s", (int)(strchr(sa, ':') - sa), sa);
			q.resource = "serviceaccounts";
			q.ns = sa_ns;
			q.name = strchr(sa, ':') + 1;
		}
		if (!auth_authorize(au, u, &q)) {
			char *why = auth_forbidden_message(u, &q);
			forbid(req, &q, why);
			free(why);
			rc = -1;
		}
	}
	if (rc == 0) {
		char *name = xstrdup(as);
		api_auth_done(req);
		set_user(req, name, "", groups, ng, strcmp(name, "system:anonymous") != 0);
		free(name);
	}
	free(groups);
	return rc;
}

/* A GET of pods/exec, attach or portforward (the WebSocket form of what
 * SPDY does with POST) needs create too, as Kubernetes 1.31's
 * AuthorizePodWebsocketUpgradeCreatePermission: get alone must not run
 * commands in a pod. */
static bool
streams_need_create(const struct audit_attrs *a)
{
	static const char *const subs[] = { "exec", "attach", "portforward" };
	if (strcmp(a->verb, "get") != 0 || strcmp(a->resource, "pods") != 0 || *a->group)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		if (strcmp(a->subresource, subs[i]) == 0)
			return true;
	return false;
}

static int
authorize(struct auth *au, struct http_req *req)
{
	const struct auth_user *u = api_auth_user(req);
	struct audit_attrs a;
	char *copy, *why = NULL;
	int rc = 0;

	if (auth_in_group(u, "system:masters"))
		return 0;
	api_audit_attrs(req->method, req->path, req->query, &copy, &a);
	a.user = u->name;
	a.groups = u->groups;
	a.ngroups = u->ngroups;
	if (auth_authorize(au, u, &a) && streams_need_create(&a))
		a.verb = "create";	/* checked again below as create */
	if (!auth_authorize(au, u, &a))
		why = auth_forbidden_message(u, &a);
	else
		why = escalation_check(au, req, u, &a);
	if (why) {
		forbid(req, &a, why);
		rc = -1;
	}
	free(why);
	free(copy);
	return rc;
}

int
api_auth_request(struct api *api, struct http_req *req)
{
	struct auth *au = *api_auth_slot(api);
	if (!au) {	/* not started (unit tests of the API alone): as before */
		set_user(req, unsecured.name, "", unsecured.groups, unsecured.ngroups, false);
		return 0;
	}
	if (authenticate(au, req) < 0 || impersonate(au, req) < 0)
		return -1;
	return authorize(au, req);
}

/* ---- watches per identity ------------------------------------------------ */

static bool
watch_counted(struct auth *au, const struct http_req *req)
{
	const struct auth_user *u = api_auth_user(req);
	return au && u && !auth_in_group(u, "system:masters");
}

int
api_auth_watch_begin(struct api *api, struct http_req *req)
{
	struct auth *au = *api_auth_slot(api);
	if (!watch_counted(au, req))
		return 0;
	const char *name = api_auth_user(req)->name;
	json_int_t n = json_integer_value(json_object_get(au->watches, name));
	if (n >= AUTH_MAX_WATCHES) {
		if (n == AUTH_MAX_WATCHES)
			log_warn("auth", "user %s holds %d watches: refusing more until some end",
			    name, AUTH_MAX_WATCHES);
		json_object_set_new(au->watches, name, json_integer(AUTH_MAX_WATCHES + 1));
		http_add_header(req, "Retry-After", "1");
		api_respond_status(req, 429, "too many watches open by this user");
		return -EBUSY;
	}
	json_object_set_new(au->watches, name, json_integer(n + 1));
	return 0;
}

void
api_auth_watch_end(struct api *api, struct http_req *req)
{
	struct auth *au = *api_auth_slot(api);
	if (!watch_counted(au, req))
		return;
	const char *name = api_auth_user(req)->name;
	json_int_t n = json_integer_value(json_object_get(au->watches, name));
	if (n > AUTH_MAX_WATCHES)	/* past the limit: the log line's marker */
		n = AUTH_MAX_WATCHES;
	if (n <= 1)
		json_object_del(au->watches, name);
	else
		json_object_set_new(au->watches, name, json_integer(n - 1));
}

/* ---- life ------------------------------------------------------------------ */

struct auth_sa *
api_auth_sa(struct api *api)
{
	struct auth *au = *api_auth_slot(api);
	return au ? au->sa : NULL;
}

int
api_auth_start(struct api *api, const struct auth_config *cfg, char **err)
{
	struct auth *au = xcalloc(1, sizeof *au);
	int rc;
	*err = NULL;
	au->api = api;
	au->watches = json_object();
	if (cfg->token_auth_file &&
	    (rc = auth_tokens_load(cfg->token_auth_file, &au->tokens, err)) < 0) {
		json_decref(au->watches);
		free(au);
		return rc;
	}
	if (cfg->data_dir && (rc = auth_sa_open(api, cfg->data_dir, cfg->ca_file, &au->sa,
	    err)) < 0) {
		auth_tokens_free(au->tokens);
		json_decref(au->watches);
		free(au);
		return rc;
	}
	if (au->sa)
		auth_sa_register(api, au->sa);
	au->rbac = rbac_start(api_store(api));
	*api_auth_slot(api) = au;
	auth_review_register(api, au);
	if ((rc = auth_roles_ensure(api)) < 0) {
		*err = xstrdup("creating the default RBAC roles failed");
		return rc;
	}
	return 0;
}

void
api_auth_stop(struct api *api)
{
	struct auth *au = *api_auth_slot(api);
	if (!au)
		return;
	rbac_stop(au->rbac);
	auth_tokens_free(au->tokens);
	auth_sa_close(au->sa);
	json_decref(au->watches);
	free(au);
	*api_auth_slot(api) = NULL;
}
