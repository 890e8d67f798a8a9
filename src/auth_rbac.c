/* auth_rbac.c — Kubernetes' RBAC authorizer: roles and bindings indexed by
 * subject ("u:NAME", "g:GROUP"), aggregation resolved, so a request looks
 * at its own user's and groups' rules only; the live index is rebuilt after
 * a watch event on the four kinds. Also the escalation check (Covers).
 * Called by api_auth.c and auth_review.c. */
#include "auth.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define AGGREGATION_DEPTH 8

struct rbac_index {
	json_t *roles;		/* "ns/name" -> rules */
	json_t *clusterroles;	/* name -> effective rules (aggregation resolved) */
	json_t *by_subject;	/* "u:NAME" | "g:NAME" -> [[ns or "", rules], ...] */
};

/* ---- matching one rule (Kubernetes' rbac/v1 helpers) ---------------------- */

static bool
has(const json_t *list, const char *s)
{
	size_t i;
	const json_t *v;
	json_array_foreach(list, i, v)
		if (strcmp(json_string_value(v) ? json_string_value(v) : "", s) == 0)
			return true;
	return false;
}

static bool
has_or_star(const json_t *list, const char *s)
{
	return has(list, "*") || has(list, s);
}

/* "pods", "pods/log", "*", "*\/scale" against the request's resource. */
static bool
resource_matches(const json_t *rule_res, const char *res, const char *sub)
{
	size_t i, n = strlen(res);
	const json_t *v;
	json_array_foreach(rule_res, i, v) {
		const char *r = json_string_value(v);
		if (!r)
			continue;
		if (strcmp(r, "*") == 0)
			return true;
		if (strncmp(r, res, n) == 0 && (*sub ? r[n] == '/' && strcmp(r + n + 1, sub) == 0 :
		    r[n] == '\0'))
			return true;	/* "res" or "res/sub" */
		if (*sub && strncmp(r, "*/", 2) == 0 && strcmp(r + 2, sub) == 0)
			return true;
	}
	return false;
}

bool
rbac_rule_allows(const json_t *rule, const struct audit_attrs *a)
{
	if (!has_or_star(json_object_get(rule, "verbs"), a->verb))
		return false;
	if (!*a->resource)
		return api_url_match(json_object_get(rule, "nonResourceURLs"), a->path);
	const json_t *names = json_object_get(rule, "resourceNames");
	return has_or_star(json_object_get(rule, "apiGroups"), a->group) &&
	    resource_matches(json_object_get(rule, "resources"), a->resource, a->subresource) &&
	    (json_array_size(names) == 0 || has(names, a->name));
}

/* ---- the index ------------------------------------------------------------ */

static const char *
str_at(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);
	const char *s = json_string_value(b ? json_object_get(v, b) : v);
	return s ? s : "";
}

static void
rules_extend(json_t *out, const json_t *rules)
{
	size_t i, j;
	const json_t *r, *have;
	json_array_foreach(rules, i, r) {
		bool dup = false;
		json_array_foreach(out, j, have)
			if ((dup = json_equal(have, r)))
				break;
		if (!dup)
			json_array_append(out, (json_t *)r);
	}
}

static json_t *
clusterrole_rules(const json_t *all, const json_t *cr, int depth)
{
	const json_t *agg = json_object_get(cr, "aggregationRule");
	const json_t *sels = json_object_get(agg, "clusterRoleSelectors"), *sj, *other;
	size_t i, j;
	if (!agg || depth > AGGREGATION_DEPTH) {
		const json_t *rules = json_object_get(cr, "rules");
		return rules ? json_incref((json_t *)rules) : json_array();
	}
	json_t *out = json_array();
	json_array_foreach(sels, i, sj) {
		struct selector *sel;
		char *err = NULL;
		if (selector_from_json(sj, &sel, &err) < 0) {
			free(err);
			continue;
		}
		json_array_foreach(all, j, other) {
			if (other == cr || !selector_matches(sel,
			    json_object_get(json_object_get(other, "metadata"), "labels")))
				continue;
			json_t *r = clusterrole_rules(all, other, depth + 1);
			rules_extend(out, r);
			json_decref(r);
		}
		selector_free(sel);
	}
	return out;
}

static void
bind_subject(json_t *by_subject, const char *key, const char *ns, json_t *rules)
{
	json_t *l = json_object_get(by_subject, key);
	if (!l) {
		l = json_array();
		json_object_set_new(by_subject, key, l);
	}
	json_array_append_new(l, json_pack("[s, O]", ns, rules));
}

/* A binding's subjects get its role's rules, in ns ("" : everywhere). */
static void
index_binding(struct rbac_index *ix, const json_t *b, const char *ns)
{
	const json_t *rules = rbac_role_rules(ix, str_at(b, "roleRef", "kind"), ns,
	    str_at(b, "roleRef", "name"));
	const json_t *s;
	size_t i;
	if (!rules)
		return;	/* a binding to a missing role grants nothing (as upstream) */
	json_array_foreach(json_object_get(b, "subjects"), i, s) {
		const char *kind = str_at(s, "kind", NULL), *name = str_at(s, "name", NULL);
		char *key;
		if (strcmp(kind, "User") == 0)
			key = xasprintf("u:%s", name);
		else if (strcmp(kind, "Group") == 0)
			key = xasprintf("g:%s", name);
		else if (strcmp(kind, "ServiceAccount") == 0)
			key = xasprintf("u:system:serviceaccount:%s:%s",
			    *str_at(s, "namespace", NULL) ? str_at(s, "namespace", NULL) : ns, name);
		else
			continue;
		bind_subject(ix->by_subject, key, ns, (json_t *)rules);
		free(key);
	}
}

struct rbac_index *
rbac_index_build(const json_t *roles, const json_t *clusterroles, const json_t *rolebindings,
    const json_t *clusterrolebindings)
{
	struct rbac_index *ix = xcalloc(1, sizeof *ix);
	const json_t *o;
	size_t i;

	ix->roles = json_object();
	ix->clusterroles = json_object();
	ix->by_subject = json_object();
	json_array_foreach(roles, i, o) {
		char *key = xasprintf("%s/%s", str_at(o, "metadata", "namespace"),
		    str_at(o, "metadata", "name"));
		const json_t *rules = json_object_get(o, "rules");
		json_object_set_new(ix->roles, key, rules ? json_incref((json_t *)rules) :
		    json_array());
		free(key);
	}
	json_array_foreach(clusterroles, i, o)
		json_object_set_new(ix->clusterroles, str_at(o, "metadata", "name"),
		    clusterrole_rules(clusterroles, o, 0));
	json_array_foreach(clusterrolebindings, i, o)
		if (strcmp(str_at(o, "roleRef", "kind"), "ClusterRole") == 0)
			index_binding(ix, o, "");
	json_array_foreach(rolebindings, i, o)
		if (*str_at(o, "metadata", "namespace"))
			index_binding(ix, o, str_at(o, "metadata", "namespace"));
	return ix;
}

json_t *
rbac_clusterrole_rules(const json_t *all, const json_t *cr)
{
	return clusterrole_rules(all, cr, 0);
}

void
rbac_index_free(struct rbac_index *ix)
{
	if (!ix)
		return;
	json_decref(ix->roles);
	json_decref(ix->clusterroles);
	json_decref(ix->by_subject);
	free(ix);
}

const json_t *
rbac_role_rules(const struct rbac_index *ix, const char *kind, const char *ns,
    const char *name)
{
	if (strcmp(kind, "ClusterRole") == 0)
		return json_object_get(ix->clusterroles, name);
	if (strcmp(kind, "Role") != 0 || !*ns)
		return NULL;
	char *key = xasprintf("%s/%s", ns, name);
	const json_t *r = json_object_get(ix->roles, key);
	free(key);
	return r;
}

/* Calls fn on each rule bound to u that applies in ns, until fn says stop. */
static bool
each_rule(const struct rbac_index *ix, const struct auth_user *u, const char *ns,
    bool (*fn)(const json_t *rule, void *arg), void *arg)
{
	for (size_t k = 0; k <= u->ngroups; k++) {
		char key[512];
		const char *who = k == 0 ? u->name : u->groups[k - 1];
		if (snprintf(key, sizeof key, "%c:%s", k == 0 ? 'u' : 'g', who) >=
		    (int)sizeof key)
			continue;	/* no binding names a subject this long */
		const json_t *l = json_object_get(ix->by_subject, key), *e, *r;
		size_t i, j;
		json_array_foreach(l, i, e) {
			const char *bns = json_string_value(json_array_get(e, 0));
			if (*bns && strcmp(bns, ns) != 0)
				continue;
			json_array_foreach(json_array_get(e, 1), j, r)
				if (fn(r, arg))
					return true;
		}
	}
	return false;
}

static bool
rule_allows_cb(const json_t *rule, void *arg)
{
	return rbac_rule_allows(rule, arg);
}

bool
rbac_allows(const struct rbac_index *ix, const struct auth_user *u,
    const struct audit_attrs *a)
{
	return each_rule(ix, u, a->ns, rule_allows_cb, (void *)a);
}

static bool
collect_cb(const json_t *rule, void *arg)
{
	json_array_append((json_t *)arg, (json_t *)rule);
	return false;
}

json_t *
rbac_user_rules(const struct rbac_index *ix, const struct auth_user *u, const char *ns)
{
	json_t *out = json_array();
	each_rule(ix, u, ns, collect_cb, out);
	return out;
}

/* ---- escalation: do the owner's rules cover a rule? ---------------------- */

/* One atom of a broken-down rule: one verb on one group/resource/name, or
 * one verb on one URL. NULL members are absent. */
struct atom {
	const char *verb, *group, *resource, *name, *url;
};

static bool
resource_covers(const json_t *owner, const char *res)
{
	const char *slash = strchr(res, '/');
	char star[256];
	if (has(owner, "*") || has(owner, res))
		return true;
	if (!slash)
		return false;
	snprintf(star, sizeof star, "*%s", slash);
	return has(owner, star);
}

static bool
atom_covered(const json_t *owner, const struct atom *t)
{
	size_t i;
	const json_t *o;
	json_array_foreach(owner, i, o) {
		const json_t *names = json_object_get(o, "resourceNames");
		if (!has_or_star(json_object_get(o, "verbs"), t->verb))
			continue;
		if (t->url) {
			if (api_url_match(json_object_get(o, "nonResourceURLs"), t->url) &&
			    json_array_size(names) == 0)
				return true;
			continue;
		}
		if (!has_or_star(json_object_get(o, "apiGroups"), t->group) ||
		    !resource_covers(json_object_get(o, "resources"), t->resource))
			continue;
		if (json_array_size(names) == 0 || (t->name && has(names, t->name)))
			return true;
	}
	return false;
}

static bool
rule_covered(const json_t *owner, const json_t *r)
{
	const json_t *verbs = json_object_get(r, "verbs"), *urls = json_object_get(r,
	    "nonResourceURLs"), *names = json_object_get(r, "resourceNames"), *v, *x, *g, *n;
	size_t i, j, k, l;
	json_array_foreach(verbs, i, v) {
		const char *verb = json_string_value(v);
		json_array_foreach(urls, j, x)
			if (!atom_covered(owner, &(struct atom){ .verb = verb,
			    .url = json_string_value(x) }))
				return false;
		json_array_foreach(json_object_get(r, "apiGroups"), j, g)
		json_array_foreach(json_object_get(r, "resources"), k, x) {
			struct atom t = { verb, json_string_value(g), json_string_value(x), NULL,
				NULL };
			if (!t.group || !t.resource)
				return false;
			if (json_array_size(names) == 0 && !atom_covered(owner, &t))
				return false;
			json_array_foreach(names, l, n) {
				t.name = json_string_value(n);
				if (!atom_covered(owner, &t))
					return false;
			}
		}
	}
	return true;
}

bool
rbac_rules_cover(const json_t *owner, const json_t *rules)
{
	size_t i;
	const json_t *r;
	json_array_foreach(rules, i, r)
		if (!rule_covered(owner, r))
			return false;
	return true;
}

/* ---- the live index -------------------------------------------------------- */

static const char *const rbac_res[] = {
	"rbac.authorization.k8s.io/roles", "rbac.authorization.k8s.io/clusterroles",
	"rbac.authorization.k8s.io/rolebindings",
	"rbac.authorization.k8s.io/clusterrolebindings",
};

struct rbac {
	struct store *st;
	struct store_watch *w[ARRAY_SIZE(rbac_res)];
	struct rbac_index *ix;
	bool stale;
};

static void
on_rbac_event(void *arg, enum store_event ev, const char *res, const json_t *obj,
    int64_t rv)
{
	(void)ev, (void)res, (void)obj, (void)rv;
	((struct rbac *)arg)->stale = true;
}

struct rbac *
rbac_start(struct store *st)
{
	struct rbac *r = xcalloc(1, sizeof *r);
	r->st = st;
	r->stale = true;
	for (size_t i = 0; i < ARRAY_SIZE(rbac_res); i++)
		BUG_ON(store_watch_start(st, rbac_res[i], NULL, 0, on_rbac_event, r,
		    &r->w[i]) < 0);
	return r;
}

void
rbac_stop(struct rbac *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(rbac_res); i++)
		store_watch_stop(r->w[i]);
	rbac_index_free(r->ix);
	free(r);
}

const struct rbac_index *
rbac_current(struct rbac *r)
{
	json_t *l[ARRAY_SIZE(rbac_res)] = { NULL };
	if (!r->stale && r->ix)
		return r->ix;
	for (size_t i = 0; i < ARRAY_SIZE(rbac_res); i++)
		if (store_list(r->st, rbac_res[i], NULL, &l[i], NULL) < 0)
			l[i] = NULL;
	rbac_index_free(r->ix);
	r->ix = rbac_index_build(l[0], l[1], l[2], l[3]);
	for (size_t i = 0; i < ARRAY_SIZE(rbac_res); i++)
		json_decref(l[i]);
	r->stale = false;
	return r->ix;
}
