/* test_api_audit.c — unit tests of the audit policy (src/api_audit.c): a
 * request's attributes from its method and path, rules matched by users,
 * verbs, resources (group, subresources, names), namespaces and
 * nonResourceURLs, first match wins, omitStages, and policy errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "util.h"

static const char policy_text[] =
    "apiVersion: audit.k8s.io/v1\n"
    "kind: Policy\n"
    "omitStages: [RequestReceived]\n"
    "rules:\n"
    "- level: None\n"
    "  users: [system:kube-proxy]\n"
    "- level: None\n"
    "  nonResourceURLs: [/healthz*, /version]\n"
    "- level: Metadata\n"
    "  resources: [{group: \"\", resources: [secrets, configmaps]}]\n"
    "- level: Request\n"
    "  resources: [{group: \"\", resources: [pods/log, \"*/status\"]}]\n"
    "- level: RequestResponse\n"
    "  verbs: [update, patch]\n"
    "  resources: [{group: apps, resources: [deployments], resourceNames: [web]}]\n"
    "  omitStages: [ResponseComplete]\n"
    "- level: Request\n"
    "  namespaces: [kube-system]\n"
    "- level: Metadata\n"
    "  verbs: [get, list, watch]\n";

static enum audit_level
level_of(const struct audit_policy *p, const char *method, const char *target,
    unsigned *omit)
{
	char *path = xstrdup(target), *q = strchr(path, '?'), *copy;
	struct audit_attrs a;
	unsigned o;
	if (q)
		*q++ = '\0';
	api_audit_attrs(method, path, q ? q : "", &copy, &a);
	enum audit_level l = api_audit_policy_level(p, &a, omit ? omit : &o);
	free(copy);
	free(path);
	return l;
}

static void
test_attributes_of_requests(void **state)
{
	(void)state;
	static const struct {
		const char *method, *path, *query;
		const char *verb, *group, *ns, *resource, *name, *sub;
	} cases[] = {
		{ "GET", "/api/v1/namespaces/d/pods", "", "list", "", "d", "pods", "", "" },
		{ "GET", "/api/v1/namespaces/d/pods", "watch=true", "watch", "", "d", "pods", "", "" },
		{ "GET", "/api/v1/namespaces/d/pods/p/log", "", "get", "", "d", "pods", "p", "log" },
		{ "POST", "/apis/apps/v1/namespaces/d/deployments", "", "create", "apps", "d",
		  "deployments", "", "" },
		{ "PUT", "/apis/apps/v1/namespaces/d/deployments/w/scale", "", "update", "apps",
		  "d", "deployments", "w", "scale" },
		{ "DELETE", "/api/v1/namespaces/d/secrets", "", "deletecollection", "", "d",
		  "secrets", "", "" },
		/* As Kubernetes' RequestInfo: a Namespace is in itself. */
		{ "GET", "/api/v1/namespaces/kube-system", "", "get", "", "kube-system",
		  "namespaces", "kube-system", "" },
		{ "PUT", "/api/v1/namespaces/t/finalize", "", "update", "", "t", "namespaces",
		  "t", "finalize" },
		{ "GET", "/api/v1/namespaces", "", "list", "", "", "namespaces", "", "" },
		{ "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "", "create",
		  "authorization.k8s.io", "", "selfsubjectaccessreviews", "", "" },
		{ "GET", "/api/v1/nodes", "", "list", "", "", "nodes", "", "" },
		{ "GET", "/healthz", "", "get", "", "", "", "", "" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct audit_attrs a;
		char *copy;
		api_audit_attrs(cases[i].method, cases[i].path, cases[i].query, &copy, &a);
		assert_string_equal(a.verb, cases[i].verb);
		assert_string_equal(a.group, cases[i].group);
		assert_string_equal(a.ns, cases[i].ns);
		assert_string_equal(a.resource, cases[i].resource);
		assert_string_equal(a.name, cases[i].name);
		assert_string_equal(a.subresource, cases[i].sub);
		assert_string_equal(a.user, "system:anonymous");
		free(copy);
	}
}

static void
test_first_matching_rule_wins(void **state)
{
	(void)state;
	struct audit_policy *p;
	char *err;
	unsigned omit;
	assert_int_equal(api_audit_policy_parse(policy_text, strlen(policy_text), &p, &err), 0);

	assert_int_equal(level_of(p, "GET", "/healthz/ready", NULL), AUDIT_NONE);
	assert_int_equal(level_of(p, "GET", "/version", NULL), AUDIT_NONE);
	/* a non-resource URL no rule names falls to rules without resources */
	assert_int_equal(level_of(p, "GET", "/metrics", NULL), AUDIT_METADATA);
	/* secrets at Metadata even in kube-system, whose rule comes later */
	assert_int_equal(level_of(p, "POST", "/api/v1/namespaces/kube-system/secrets",
	    NULL), AUDIT_METADATA);
	assert_int_equal(level_of(p, "GET", "/api/v1/namespaces/d/pods/x/log", NULL),
	    AUDIT_REQUEST);
	assert_int_equal(level_of(p, "PUT", "/api/v1/namespaces/d/pods/x/status", NULL),
	    AUDIT_REQUEST);	/* "*\/status" in the core group */
	assert_int_equal(level_of(p, "PUT", "/apis/apps/v1/namespaces/d/deployments/x/status",
	    NULL), AUDIT_NONE);	/* another group */
	/* pods itself is not pods/log: falls through to the verbs rule */
	assert_int_equal(level_of(p, "GET", "/api/v1/namespaces/d/pods/x", NULL),
	    AUDIT_METADATA);
	assert_int_equal(level_of(p, "PATCH", "/apis/apps/v1/namespaces/d/deployments/web",
	    &omit), AUDIT_REQUEST_RESPONSE);
	assert_int_equal(omit, (1u << AUDIT_STAGE_RECEIVED) | (1u << AUDIT_STAGE_COMPLETE));
	/* another name, another group, another verb: not that rule */
	assert_int_equal(level_of(p, "PATCH", "/apis/apps/v1/namespaces/d/deployments/api",
	    &omit), AUDIT_NONE);
	assert_int_equal(omit, 1u << AUDIT_STAGE_RECEIVED);
	assert_int_equal(level_of(p, "DELETE", "/apis/apps/v1/namespaces/d/deployments/web",
	    NULL), AUDIT_NONE);
	assert_int_equal(level_of(p, "DELETE", "/api/v1/namespaces/kube-system/pods/x", NULL),
	    AUDIT_REQUEST);
	assert_int_equal(level_of(p, "GET", "/api/v1/namespaces/d/services?watch=1", NULL),
	    AUDIT_METADATA);
	/* no rule matches: None */
	assert_int_equal(level_of(p, "POST", "/api/v1/namespaces/d/services", NULL),
	    AUDIT_NONE);
	api_audit_policy_free(p);
	/* without a policy every request is recorded at Metadata */
	assert_int_equal(level_of(NULL, "POST", "/api/v1/namespaces/d/services", NULL),
	    AUDIT_METADATA);
}

static void
test_user_rules(void **state)
{
	(void)state;
	const char *t = "kind: Policy\nrules:\n- level: RequestResponse\n"
	    "  users: [system:anonymous]\n  resources: [{resources: [pods]}]\n"
	    "- level: Request\n  userGroups: [system:masters]\n";
	struct audit_policy *p;
	char *err;
	assert_int_equal(api_audit_policy_parse(t, strlen(t), &p, &err), 0);
	assert_int_equal(level_of(p, "GET", "/api/v1/pods", NULL), AUDIT_REQUEST_RESPONSE);
	assert_int_equal(level_of(p, "GET", "/api/v1/services", NULL), AUDIT_NONE);
	api_audit_policy_free(p);
}

static void
test_policy_errors(void **state)
{
	(void)state;
	struct audit_policy *p;
	char *err;
	const char *t = "kind: Policy\nrules:\n- level: Metadata\n- level: Everything\n";
	assert_int_equal(api_audit_policy_parse(t, strlen(t), &p, &err), -EINVAL);
	assert_string_equal(err, "rules[1].level: expected None, Metadata, Request or "
	    "RequestResponse");
	free(err);
	t = "kind: Pod\n";
	assert_int_equal(api_audit_policy_parse(t, strlen(t), &p, &err), -EINVAL);
	assert_non_null(strstr(err, "expected Policy"));
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attributes_of_requests),
		cmocka_unit_test(test_first_matching_rule_wins),
		cmocka_unit_test(test_user_rules),
		cmocka_unit_test(test_policy_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
