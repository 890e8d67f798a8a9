/* test_auth_rbac.c — unit tests of the RBAC authorizer (src/auth_rbac.c)
 * over the cases Kubernetes' RBAC documentation and rbac/v1 helpers
 * describe: verbs, apiGroups, resources with subresources and "*",
 * resourceNames, nonResourceURLs; bindings by User, Group and
 * ServiceAccount, RoleBindings confined to their namespace, aggregation;
 * the escalation check (Covers); and the static token file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "auth.h"
#include "util.h"

static json_t *
J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		fail_msg("bad JSON in test: %s: %s", e.text, text);
	return j;
}

/* The request METHOD PATH[?QUERY] as user u. */
static bool
allowed(const struct rbac_index *ix, const struct auth_user *u, const char *method,
    const char *target)
{
	char *path = xstrdup(target), *q = strchr(path, '?'), *copy;
	struct audit_attrs a;
	if (q)
		*q++ = '\0';
	api_audit_attrs(method, path, q ? q : "", &copy, &a);
	bool ok = rbac_allows(ix, u, &a);
	free(copy);
	free(path);
	return ok;
}

static bool
rule_allows(const char *rule, const char *method, const char *target)
{
	char *path = xstrdup(target), *q = strchr(path, '?'), *copy;
	struct audit_attrs a;
	json_t *r = J(rule);
	if (q)
		*q++ = '\0';
	api_audit_attrs(method, path, q ? q : "", &copy, &a);
	bool ok = rbac_rule_allows(r, &a);
	json_decref(r);
	free(copy);
	free(path);
	return ok;
}

static void
test_one_rule(void **state)
{
	(void)state;
	static const struct {
		const char *rule, *method, *target;
		bool allowed;
	} cases[] = {
		{ "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}",
		  "GET", "/api/v1/namespaces/d/pods/p", true },
		{ "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}",
		  "GET", "/api/v1/namespaces/d/pods", false },	/* list is not get */
		{ "{\"verbs\":[\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}",
		  "GET", "/api/v1/namespaces/d/pods?watch=true", false },	/* nor watch */
		{ "{\"verbs\":[\"watch\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}",
		  "GET", "/api/v1/pods?watch=1", true },
		{ "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"deployments\"]}",
		  "GET", "/apis/apps/v1/namespaces/d/deployments/w", false },	/* group */
		{ "{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],\"resources\":[\"*\"]}",
		  "DELETE", "/apis/apps/v1/namespaces/d/deployments", true },
		/* subresources are named: pods does not give pods/log */
		{ "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}",
		  "GET", "/api/v1/namespaces/d/pods/p/log", false },
		{ "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods/log\"]}",
		  "GET", "/api/v1/namespaces/d/pods/p/log", true },
		{ "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods/log\"]}",
		  "GET", "/api/v1/namespaces/d/pods/p", false },
		{ "{\"verbs\":[\"create\"],\"apiGroups\":[\"\"],\"resources\":[\"pods/exec\"]}",
		  "POST", "/api/v1/namespaces/d/pods/p/exec", true },
		{ "{\"verbs\":[\"update\"],\"apiGroups\":[\"*\"],\"resources\":[\"*/scale\"]}",
		  "PUT", "/apis/apps/v1/namespaces/d/deployments/w/scale", true },
		{ "{\"verbs\":[\"update\"],\"apiGroups\":[\"*\"],\"resources\":[\"*/scale\"]}",
		  "PUT", "/apis/apps/v1/namespaces/d/deployments/w", false },
		/* "pods/\*" is an audit-policy form, not an RBAC one */
		{ "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods/*\"]}",
		  "GET", "/api/v1/namespaces/d/pods/p/log", false },
		{ "{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],\"resources\":[\"*\"]}",
		  "GET", "/api/v1/namespaces/d/pods/p/log", true },
		{ "{\"verbs\":[\"get\"],\"apiGroups\":[\"argoproj.io\"],"
		  "\"resources\":[\"rollouts/status\"]}",
		  "GET", "/apis/argoproj.io/v1alpha1/namespaces/d/rollouts/r/status", true },
		/* resourceNames: only those objects, and never a list or create */
		{ "{\"verbs\":[\"get\",\"list\",\"create\"],\"apiGroups\":[\"\"],"
		  "\"resources\":[\"configmaps\"],\"resourceNames\":[\"a\"]}",
		  "GET", "/api/v1/namespaces/d/configmaps/a", true },
		{ "{\"verbs\":[\"get\",\"list\",\"create\"],\"apiGroups\":[\"\"],"
		  "\"resources\":[\"configmaps\"],\"resourceNames\":[\"a\"]}",
		  "GET", "/api/v1/namespaces/d/configmaps/b", false },
		{ "{\"verbs\":[\"get\",\"list\",\"create\"],\"apiGroups\":[\"\"],"
		  "\"resources\":[\"configmaps\"],\"resourceNames\":[\"a\"]}",
		  "GET", "/api/v1/namespaces/d/configmaps", false },
		{ "{\"verbs\":[\"get\",\"list\",\"create\"],\"apiGroups\":[\"\"],"
		  "\"resources\":[\"configmaps\"],\"resourceNames\":[\"a\"]}",
		  "POST", "/api/v1/namespaces/d/configmaps", false },
		/* a Namespace is named by itself */
		{ "{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"namespaces\"],"
		  "\"resourceNames\":[\"d\"]}", "GET", "/api/v1/namespaces/d", true },
		/* nonResourceURLs: exact, or a prefix ending in "*" */
		{ "{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/healthz\"]}",
		  "GET", "/healthz", true },
		{ "{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/healthz\"]}",
		  "GET", "/healthz/ping", false },
		{ "{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/apis/*\"]}",
		  "GET", "/apis/apps/v1", true },
		{ "{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/apis/*\"]}",
		  "GET", "/apis", false },
		{ "{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"*\"]}", "GET", "/metrics", true },
		{ "{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/metrics\"]}",
		  "POST", "/metrics", false },	/* the verb is the method: post */
		/* a resource rule never grants a path, nor the reverse */
		{ "{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],\"resources\":[\"*\"]}",
		  "GET", "/metrics", false },
		{ "{\"verbs\":[\"*\"],\"nonResourceURLs\":[\"*\"]}",
		  "GET", "/api/v1/namespaces/d/pods", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (rule_allows(cases[i].rule, cases[i].method, cases[i].target) !=
		    cases[i].allowed)
			fail_msg("case %zu: %s %s under %s: expected %s", i, cases[i].method,
			    cases[i].target, cases[i].rule, cases[i].allowed ? "allowed" : "denied");
}

static const char roles[] =
    "[{\"metadata\":{\"namespace\":\"a\",\"name\":\"reader\"},"
    "  \"rules\":[{\"verbs\":[\"get\",\"list\"],\"apiGroups\":[\"\"],"
    "\"resources\":[\"pods\"]}]}]";
static const char clusterroles[] =
    "[{\"metadata\":{\"name\":\"secrets\"},"
    "  \"rules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"secrets\"]}]},"
    " {\"metadata\":{\"name\":\"nodes\"},"
    "  \"rules\":[{\"verbs\":[\"list\"],\"apiGroups\":[\"\"],\"resources\":[\"nodes\"]}]},"
    " {\"metadata\":{\"name\":\"monitoring\"},\"rules\":[],"
    "  \"aggregationRule\":{\"clusterRoleSelectors\":"
    "[{\"matchLabels\":{\"agg\":\"mon\"}}]}},"
    " {\"metadata\":{\"name\":\"mon-part\",\"labels\":{\"agg\":\"mon\"}},"
    "  \"rules\":[{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/metrics\"]}]}]";
static const char rolebindings[] =
    "[{\"metadata\":{\"namespace\":\"a\",\"name\":\"b1\"},"
    "  \"subjects\":[{\"kind\":\"User\",\"name\":\"alice\"},"
    "{\"kind\":\"ServiceAccount\",\"name\":\"bot\"}],"
    "  \"roleRef\":{\"kind\":\"Role\",\"name\":\"reader\"}},"
    " {\"metadata\":{\"namespace\":\"a\",\"name\":\"b2\"},"
    "  \"subjects\":[{\"kind\":\"Group\",\"name\":\"ops\"}],"
    "  \"roleRef\":{\"kind\":\"ClusterRole\",\"name\":\"secrets\"}},"
    " {\"metadata\":{\"namespace\":\"b\",\"name\":\"b3\"},"
    "  \"subjects\":[{\"kind\":\"User\",\"name\":\"carol\"}],"
    "  \"roleRef\":{\"kind\":\"Role\",\"name\":\"reader\"}},"
    " {\"metadata\":{\"namespace\":\"b\",\"name\":\"b4\"},"
    "  \"subjects\":[{\"kind\":\"User\",\"name\":\"carol\"}],"
    "  \"roleRef\":{\"kind\":\"ClusterRole\",\"name\":\"nodes\"}}]";
static const char clusterrolebindings[] =
    "[{\"metadata\":{\"name\":\"c1\"},"
    "  \"subjects\":[{\"kind\":\"User\",\"name\":\"dave\"},"
    "{\"kind\":\"ServiceAccount\",\"name\":\"prom\",\"namespace\":\"mon\"}],"
    "  \"roleRef\":{\"kind\":\"ClusterRole\",\"name\":\"monitoring\"}},"
    " {\"metadata\":{\"name\":\"c2\"},"
    "  \"subjects\":[{\"kind\":\"Group\",\"name\":\"ops\"}],"
    "  \"roleRef\":{\"kind\":\"ClusterRole\",\"name\":\"nodes\"}},"
    " {\"metadata\":{\"name\":\"c3\"},"
    "  \"subjects\":[{\"kind\":\"User\",\"name\":\"erin\"}],"
    "  \"roleRef\":{\"kind\":\"ClusterRole\",\"name\":\"missing\"}}]";

static struct rbac_index *
index_new(void)
{
	json_t *r = J(roles), *cr = J(clusterroles), *rb = J(rolebindings),
	    *crb = J(clusterrolebindings);
	struct rbac_index *ix = rbac_index_build(r, cr, rb, crb);
	json_decref(r);
	json_decref(cr);
	json_decref(rb);
	json_decref(crb);
	return ix;
}

static void
test_bindings(void **state)
{
	(void)state;
	static const char *const ops_groups[] = { "ops", "system:authenticated" };
	static const char *const no_groups[] = { "system:authenticated" };
	const struct auth_user alice = { "alice", "", no_groups, 1 };
	const struct auth_user bob = { "bob", "", ops_groups, 2 };
	const struct auth_user carol = { "carol", "", no_groups, 1 };
	const struct auth_user dave = { "dave", "", no_groups, 1 };
	const struct auth_user erin = { "erin", "", no_groups, 1 };
	const struct auth_user bot = { "system:serviceaccount:a:bot", "", no_groups, 1 };
	const struct auth_user prom = { "system:serviceaccount:mon:prom", "", no_groups, 1 };
	struct rbac_index *ix = index_new();

	/* A RoleBinding grants in its namespace only. */
	assert_true(allowed(ix, &alice, "GET", "/api/v1/namespaces/a/pods"));
	assert_false(allowed(ix, &alice, "GET", "/api/v1/namespaces/b/pods"));
	assert_false(allowed(ix, &alice, "GET", "/api/v1/pods"));	/* all namespaces */
	assert_false(allowed(ix, &alice, "DELETE", "/api/v1/namespaces/a/pods/p"));
	/* A ServiceAccount subject without namespace: the binding's. */
	assert_true(allowed(ix, &bot, "GET", "/api/v1/namespaces/a/pods/p"));
	/* Groups; a ClusterRole through a RoleBinding stays in that namespace. */
	assert_true(allowed(ix, &bob, "GET", "/api/v1/namespaces/a/secrets/s"));
	assert_false(allowed(ix, &bob, "GET", "/api/v1/namespaces/b/secrets/s"));
	assert_true(allowed(ix, &bob, "GET", "/api/v1/nodes"));	/* ClusterRoleBinding */
	assert_false(allowed(ix, &alice, "GET", "/api/v1/namespaces/a/secrets/s"));
	/* A RoleBinding to a Role of another namespace grants nothing; a
	 * RoleBinding to a ClusterRole for cluster-scoped resources neither. */
	assert_false(allowed(ix, &carol, "GET", "/api/v1/namespaces/b/pods"));
	assert_false(allowed(ix, &carol, "GET", "/api/v1/nodes"));
	/* Aggregation: monitoring has mon-part's rules. */
	assert_true(allowed(ix, &dave, "GET", "/metrics"));
	assert_true(allowed(ix, &prom, "GET", "/metrics"));
	assert_false(allowed(ix, &dave, "GET", "/healthz"));
	/* A binding to a missing role grants nothing. */
	assert_false(allowed(ix, &erin, "GET", "/metrics"));
	assert_null(rbac_role_rules(ix, "ClusterRole", "", "missing"));
	assert_int_equal(json_array_size(rbac_role_rules(ix, "ClusterRole", "", "monitoring")),
	    1);
	rbac_index_free(ix);
}

static bool
covers(const char *owner, const char *rules)
{
	json_t *o = J(owner), *r = J(rules);
	bool ok = rbac_rules_cover(o, r);
	json_decref(o);
	json_decref(r);
	return ok;
}

static void
test_escalation_covers(void **state)
{
	(void)state;
	const char *all = "[{\"verbs\":[\"*\"],\"apiGroups\":[\"*\"],\"resources\":[\"*\"]},"
	    "{\"verbs\":[\"*\"],\"nonResourceURLs\":[\"*\"]}]";
	const char *pods = "[{\"verbs\":[\"get\",\"list\"],\"apiGroups\":[\"\"],"
	    "\"resources\":[\"pods\"]}]";
	assert_true(covers(all, pods));
	assert_true(covers(all, all));
	assert_true(covers(pods, "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],"
	    "\"resources\":[\"pods\"]}]"));
	assert_true(covers(pods, "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],"
	    "\"resources\":[\"pods\"],\"resourceNames\":[\"p\"]}]"));
	assert_false(covers(pods, "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],"
	    "\"resources\":[\"pods\",\"secrets\"]}]"));
	assert_false(covers(pods, "[{\"verbs\":[\"delete\"],\"apiGroups\":[\"\"],"
	    "\"resources\":[\"pods\"]}]"));
	assert_false(covers(pods, "[{\"verbs\":[\"get\"],\"apiGroups\":[\"*\"],"
	    "\"resources\":[\"pods\"]}]"));	/* "*" is only covered by "*" */
	assert_false(covers(pods, all));
	/* names: an owner limited to names covers only those names */
	const char *named = "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],"
	    "\"resources\":[\"configmaps\"],\"resourceNames\":[\"a\",\"b\"]}]";
	assert_true(covers(named, "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],"
	    "\"resources\":[\"configmaps\"],\"resourceNames\":[\"b\"]}]"));
	assert_false(covers(named, "[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],"
	    "\"resources\":[\"configmaps\"]}]"));
	/* subresources: "*\/scale" covers deployments/scale, not deployments */
	const char *scale = "[{\"verbs\":[\"update\"],\"apiGroups\":[\"apps\"],"
	    "\"resources\":[\"*/scale\"]}]";
	assert_true(covers(scale, "[{\"verbs\":[\"update\"],\"apiGroups\":[\"apps\"],"
	    "\"resources\":[\"deployments/scale\"]}]"));
	assert_false(covers(scale, "[{\"verbs\":[\"update\"],\"apiGroups\":[\"apps\"],"
	    "\"resources\":[\"deployments\"]}]"));
	/* URLs: a prefix covers what is under it */
	assert_true(covers("[{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/apis/*\"]}]",
	    "[{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/apis/apps\", \"/apis/*\"]}]"));
	assert_false(covers("[{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/apis/*\"]}]",
	    "[{\"verbs\":[\"get\"],\"nonResourceURLs\":[\"/metrics\"]}]"));
	assert_true(covers(pods, "[]"));
}

static void
test_token_file(void **state)
{
	(void)state;
	char path[] = "/tmp/v6-test-tokens-XXXXXX";
	int fd = mkstemp(path);
	const char text[] = "# comment\n"
	    "t1,alice,u1\n"
	    "t2, bob ,u2,\"dev,ops\"\r\n"
	    "\n"
	    "\"t,3\",carol,u3,\"a \"\"quoted\"\" group\"\n";
	struct auth_tokens *t;
	char *err = NULL;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(auth_tokens_load(path, &t, &err), 0);
	const struct auth_user *u = auth_tokens_find(t, "t1");
	assert_non_null(u);
	assert_string_equal(u->name, "alice");
	assert_string_equal(u->uid, "u1");
	assert_int_equal(u->ngroups, 1);
	assert_string_equal(u->groups[0], "system:authenticated");
	u = auth_tokens_find(t, "t2");
	assert_string_equal(u->name, "bob ");
	assert_int_equal(u->ngroups, 3);
	assert_string_equal(u->groups[0], "dev");
	assert_string_equal(u->groups[1], "ops");
	u = auth_tokens_find(t, "t,3");
	assert_string_equal(u->name, "carol");
	assert_string_equal(u->groups[0], "a \"quoted\" group");
	assert_null(auth_tokens_find(t, "t"));
	assert_null(auth_tokens_find(t, "t1 "));
	auth_tokens_free(t);

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "t1,alice,u1\nonlytoken\n", 22), 22);
	close(fd);
	assert_int_equal(auth_tokens_load(path, &t, &err), -EINVAL);
	assert_non_null(strstr(err, ":2: expected token,user,uid"));
	free(err);
	unlink(path);
	assert_int_equal(auth_tokens_load(path, &t, &err), -ENOENT);
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_rule),
		cmocka_unit_test(test_bindings),
		cmocka_unit_test(test_escalation_covers),
		cmocka_unit_test(test_token_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
