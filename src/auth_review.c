/* auth_review.c — the review APIs: SelfSubjectReview (`kubectl auth
 * whoami`), TokenReview, SelfSubjectAccessReview and SelfSubjectRulesReview
 * (`kubectl auth can-i [--list]`), SubjectAccessReview. Requests reach
 * these handlers once api_auth.c authorized the create itself. */
#include "auth.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define AUTHN "authentication.k8s.io"
#define AUTHZ "authorization.k8s.io"

static json_t *
user_info(const struct auth_user *u)
{
	json_t *groups = json_array();
	for (size_t i = 0; i < u->ngroups; i++)
		json_array_append_new(groups, json_string(u->groups[i]));
	json_t *o = json_pack("{s:s, s:o}", "username", u->name, "groups", groups);
	if (*u->uid)
		json_object_set_new(o, "uid", json_string(u->uid));
	return o;
}

static json_t *
body_json(struct http_req *req, const char *kind)
{
	json_t *b = json_loadb(req->body, req->body_len, 0, NULL);
	const char *k = json_string_value(json_object_get(b, "kind"));
	if (!json_is_object(b) || (k && strcmp(k, kind) != 0)) {
		json_decref(b);
		api_respond_status(req, 400, "the request body is not a JSON object of this kind");
		return NULL;
	}
	return b;
}

static void
serve_authn(void *arg, struct http_req *req, const char *rest)
{
	json_t *o, *b;
	char now[32];
	bool tokens = !strcmp(rest, "/v1/tokenreviews");
	if (!strcmp(req->method, "GET") && (o = api_group_discovery(rest, AUTHN, "v1",
	    json_pack("[{s:s, s:s, s:s, s:b, s:[s]}, {s:s, s:s, s:s, s:b, s:[s]}]", "name",
	    "selfsubjectreviews", "singularName", "selfsubjectreview", "kind",
	    "SelfSubjectReview", "namespaced", false, "verbs", "create", "name",
	    "tokenreviews", "singularName", "tokenreview", "kind", "TokenReview",
	    "namespaced", false, "verbs", "create"))) != NULL) {
		api_respond_json(req, 200, o);
		return;
	}
	if (!tokens && strcmp(rest, "/v1/selfsubjectreviews") != 0) {
		api_respond_status(req, 404, "the server could not find the requested resource");
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		api_respond_status(req, 405, "method not allowed on this resource");
		return;
	}
	if (!(b = body_json(req, tokens ? "TokenReview" : "SelfSubjectReview")))
		return;
	if (tokens) {	/* who a token is, for a webhook or an admin */
		const json_t *spec = json_object_get(b, "spec");
		json_object_set_new(b, "status", auth_token_review(arg, json_string_value(
		    json_object_get(spec, "token")), json_object_get(spec, "audiences")));
		json_object_set_new(b, "apiVersion", json_string(AUTHN "/v1"));
		json_object_set_new(b, "kind", json_string("TokenReview"));
		api_respond_json(req, 201, b);
		return;
	}
	time_format_rfc3339(time(NULL), now);
	api_respond_json(req, 201, json_pack("{s:s, s:s, s:{s:s}, s:{s:o}}", "kind",
	    "SelfSubjectReview", "apiVersion", AUTHN "/v1", "metadata", "creationTimestamp",
	    now, "status", "userInfo", user_info(api_auth_user(req))));
	json_decref(b);
}

static const char *
str(const json_t *o, const char *f)
{
	const char *s = json_string_value(json_object_get(o, f));
	return s ? s : "";
}

/* The attributes a review's spec asks about. */
static void
spec_attrs(const json_t *spec, struct audit_attrs *a)
{
	const json_t *ra = json_object_get(spec, "resourceAttributes");
	const json_t *na = json_object_get(spec, "nonResourceAttributes");
	*a = (struct audit_attrs){ .verb = "", .path = "", .group = "", .version = "",
		.ns = "", .resource = "", .name = "", .subresource = "" };
	if (ra) {
		a->verb = str(ra, "verb");
		a->group = str(ra, "group");
		a->version = str(ra, "version");
		a->ns = str(ra, "namespace");
		a->resource = *str(ra, "resource") ? str(ra, "resource") : "*";
		a->subresource = str(ra, "subresource");
		a->name = str(ra, "name");
	} else {
		a->verb = str(na, "verb");
		a->path = str(na, "path");
	}
}

/* SelfSubjectRulesReview (`kubectl auth can-i --list`): the caller's
 * rules in spec.namespace, resource and non-resource ones apart. */
static void
rules_review(struct auth *au, struct http_req *req, json_t *b)
{
	const char *ns = str(json_object_get(b, "spec"), "namespace");
	json_t *rules = auth_user_rules(au, api_auth_user(req), ns), *res = json_array(),
	    *urls = json_array(), *r;
	size_t i;
	json_array_foreach(rules, i, r)
		json_array_append(json_object_get(r, "nonResourceURLs") ? urls : res, r);
	json_decref(rules);
	json_object_set_new(b, "status", json_pack("{s:o, s:o, s:b}", "resourceRules", res,
	    "nonResourceRules", urls, "incomplete", false));
	json_object_set_new(b, "apiVersion", json_string(AUTHZ "/v1"));
	api_respond_json(req, 201, b);
}

static void
serve_authz(void *arg, struct http_req *req, const char *rest)
{
	struct auth *au = arg;
	json_t *o, *b;
	bool self = !strcmp(rest, "/v1/selfsubjectaccessreviews");
	bool rules = !strcmp(rest, "/v1/selfsubjectrulesreviews");
	if (!strcmp(req->method, "GET") && (o = api_group_discovery(rest, AUTHZ, "v1",
	    json_pack("[{s:s, s:s, s:s, s:b, s:[s]}, {s:s, s:s, s:s, s:b, s:[s]}, "
	    "{s:s, s:s, s:s, s:b, s:[s]}]", "name",
	    "selfsubjectaccessreviews", "singularName", "selfsubjectaccessreview", "kind",
	    "SelfSubjectAccessReview", "namespaced", false, "verbs", "create", "name",
	    "subjectaccessreviews", "singularName", "subjectaccessreview", "kind",
	    "SubjectAccessReview", "namespaced", false, "verbs", "create", "name",
	    "selfsubjectrulesreviews", "singularName", "selfsubjectrulesreview", "kind",
	    "SelfSubjectRulesReview", "namespaced", false, "verbs", "create"))) != NULL) {
		api_respond_json(req, 200, o);
		return;
	}
	if (!self && !rules && strcmp(rest, "/v1/subjectaccessreviews") != 0) {
		api_respond_status(req, 404, "the server could not find the requested resource");
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		api_respond_status(req, 405, "method not allowed on this resource");
		return;
	}
	if (!(b = body_json(req, rules ? "SelfSubjectRulesReview" : self ?
	    "SelfSubjectAccessReview" : "SubjectAccessReview")))
		return;
	if (rules) {
		rules_review(au, req, b);
		return;
	}
	const json_t *spec = json_object_get(b, "spec");
	struct audit_attrs a;
	struct auth_user who;
	const char **groups = NULL;
	if (!json_object_get(spec, "resourceAttributes") &&
	    !json_object_get(spec, "nonResourceAttributes")) {
		api_respond_status(req, 422, "spec.resourceAttributes: Required value: exactly one "
		    "of nonResourceAttributes or resourceAttributes must be specified");
		json_decref(b);
		return;
	}
	spec_attrs(spec, &a);
	if (self) {
		who = *api_auth_user(req);
	} else {
		const json_t *g = json_object_get(spec, "groups"), *v;
		size_t i;
		groups = xcalloc(json_array_size(g) + 1, sizeof *groups);
		who = (struct auth_user){ str(spec, "user"), str(spec, "uid"), groups, 0 };
		json_array_foreach(g, i, v)
			if (json_string_value(v))
				groups[who.ngroups++] = json_string_value(v);
	}
	bool allowed = auth_authorize(au, &who, &a);
	/* No reason on a denial, as Kubernetes' RBAC (kubectl prints "no"). */
	json_object_set_new(b, "status", json_pack("{s:b}", "allowed", allowed));
	json_object_set_new(b, "apiVersion", json_string(AUTHZ "/v1"));
	json_object_set_new(b, "kind", json_string(self ? "SelfSubjectAccessReview" :
	    "SubjectAccessReview"));
	api_respond_json(req, 201, b);
	free(groups);
}

void
auth_review_register(struct api *api, struct auth *au)
{
	api_register_group(api, AUTHN, serve_authn, au);	/* arg: for TokenReview */
	api_register_group(api, AUTHZ, serve_authz, au);
}
