/* test_node_env.c — container environment resolution: Kubernetes' $(VAR)
 * expansion rules, envFrom with prefix and optional sources, key refs,
 * the downward API, resourceFieldRef, PATH / HOSTNAME and the command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node_pod.h"
#include "obj.h"

static json_t *
parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static void
test_expand_rules(void **state)
{
	(void)state;
	char *env[] = { "A=alpha", "B=", "C=$(A)", NULL };
	static const char *const cases[][2] = {
		{ "$(A)", "alpha" },
		{ "x$(A)y", "xalphay" },
		{ "$(B)", "" },
		{ "$(C)", "$(A)" },		/* values are not expanded twice */
		{ "$(UNKNOWN)", "$(UNKNOWN)" },
		{ "$$(A)", "$(A)" },		/* escaped */
		{ "$$$(A)", "$alpha" },
		{ "$$", "$" },
		{ "$", "$" },
		{ "a$", "a$" },
		{ "$x", "$x" },
		{ "$(A", "$(A" },		/* unterminated */
		{ "$()", "$()" },
		{ "$(A)$(A)", "alphaalpha" },
		{ "", "" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *got = nenv_expand(cases[i][0], env);
		if (strcmp(got, cases[i][1]) != 0)
			fail_msg("expand(\"%s\") = \"%s\", want \"%s\"", cases[i][0], got,
			    cases[i][1]);
		free(got);
	}
}

static json_t *
fake_lookup(void *arg, const char *kind, const char *ns, const char *name)
{
	json_t *objs = arg;
	assert_string_equal(ns, "demo");
	char key[128];
	snprintf(key, sizeof key, "%s/%s", kind, name);
	return json_incref(json_object_get(objs, key));
}

static json_t *
objects(void)
{
	return parse("{\"ConfigMap/cfg\":{\"data\":{\"MODE\":\"fast\",\"LEVEL\":\"3\","
	    "\"bad key\":\"x\"}},\"Secret/sec\":{\"data\":{\"TOKEN\":\"czNjcjN0\"}}}");
}

#define POD "{\"metadata\":{\"name\":\"web-1\",\"namespace\":\"demo\",\"uid\":\"u-9\"," \
	"\"labels\":{\"app\":\"web\"},\"annotations\":{\"team\":\"core\"}}," \
	"\"spec\":{\"nodeName\":\"n1\",\"serviceAccountName\":\"sa\"," \
	"\"containers\":[{\"name\":\"c\",\"image\":\"sh\"}]}}"

static char **
resolve(json_t *pod, const char *container, json_t *objs, char **err)
{
	json_t *c = parse(container);
	struct nenv_ctx ctx = { .pod = pod, .container = c, .pod_ip = "127.1.0.7",
		.node_name = "n1", .bin_dir = "/opt/v6", .node_cpu_millis = 2000,
		.node_memory_bytes = 1 << 30, .lookup = fake_lookup, .lookup_arg = objs };
	char **env = nenv_resolve(&ctx, err);
	json_decref(c);
	return env;
}

static void
test_env_sources(void **state)
{
	(void)state;
	json_t *pod = parse(POD), *objs = objects();
	char *err = NULL;
	char **env = resolve(pod, "{\"name\":\"c\",\"image\":\"sh\","
	    "\"envFrom\":[{\"configMapRef\":{\"name\":\"cfg\"},\"prefix\":\"APP_\"},"
	    "{\"secretRef\":{\"name\":\"sec\"}},"
	    "{\"configMapRef\":{\"name\":\"missing\",\"optional\":true}}],"
	    "\"env\":[{\"name\":\"APP_MODE\",\"value\":\"slow\"},"
	    "{\"name\":\"GREETING\",\"value\":\"mode=$(APP_MODE) tok=$(TOKEN) $(NOPE) $$(APP_MODE)\"},"
	    "{\"name\":\"POD_NAME\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}},"
	    "{\"name\":\"POD_NS\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.namespace\"}}},"
	    "{\"name\":\"POD_UID\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.uid\"}}},"
	    "{\"name\":\"POD_IP\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"status.podIP\"}}},"
	    "{\"name\":\"NODE\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"spec.nodeName\"}}},"
	    "{\"name\":\"SA\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"spec.serviceAccountName\"}}},"
	    "{\"name\":\"APP\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.labels['app']\"}}},"
	    "{\"name\":\"TEAM\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.annotations['team']\"}}},"
	    "{\"name\":\"LVL\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":\"cfg\",\"key\":\"LEVEL\"}}},"
	    "{\"name\":\"OPT\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":\"cfg\",\"key\":\"x\",\"optional\":true}}},"
	    "{\"name\":\"SECRET\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"sec\",\"key\":\"TOKEN\"}}}]}",
	    objs, &err);
	assert_non_null(env);
	static const char *const want[][2] = {
		{ "APP_MODE", "slow" }, { "APP_LEVEL", "3" }, { "TOKEN", "s3cr3t" },
		{ "GREETING", "mode=slow tok=s3cr3t $(NOPE) $(APP_MODE)" },
		{ "POD_NAME", "web-1" }, { "POD_NS", "demo" }, { "POD_UID", "u-9" },
		{ "POD_IP", "127.1.0.7" }, { "NODE", "n1" }, { "SA", "sa" }, { "APP", "web" },
		{ "TEAM", "core" }, { "LVL", "3" }, { "SECRET", "s3cr3t" },
		{ "HOSTNAME", "web-1" },
		{ "PATH", "/opt/v6:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		const char *v = nenv_get(env, want[i][0]);
		if (!v || strcmp(v, want[i][1]) != 0)
			fail_msg("%s = \"%s\", want \"%s\"", want[i][0], v ? v : "(unset)",
			    want[i][1]);
	}
	assert_null(nenv_get(env, "OPT"));
	assert_null(nenv_get(env, "APP_bad key"));
	nenv_free(env);
	json_decref(objs);
	json_decref(pod);
}

static void
test_env_errors(void **state)
{
	(void)state;
	json_t *pod = parse(POD), *objs = objects();
	static const char *const cases[][2] = {
		{ "{\"envFrom\":[{\"configMapRef\":{\"name\":\"nope\"}}]}",
		  "configmap \"nope\" not found" },
		{ "{\"env\":[{\"name\":\"X\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":\"cfg\","
		  "\"key\":\"NOKEY\"}}}]}", "couldn't find key NOKEY in ConfigMap demo/cfg" },
		{ "{\"env\":[{\"name\":\"X\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"s2\","
		  "\"key\":\"k\"}}}]}", "secret \"s2\" not found" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *err = NULL;
		char **env = resolve(pod, cases[i][0], objs, &err);
		assert_null(env);
		assert_non_null(err);
		assert_string_equal(err, cases[i][1]);
		free(err);
	}
	json_decref(objs);
	json_decref(pod);
}

static void
test_resource_field_ref_and_overrides(void **state)
{
	(void)state;
	json_t *pod = parse(POD);
	char *err = NULL;
	char **env = resolve(pod, "{\"resources\":{\"limits\":{\"memory\":\"64Mi\","
	    "\"cpu\":\"250m\"},\"requests\":{\"cpu\":\"100m\"}},\"env\":["
	    "{\"name\":\"MEM\",\"valueFrom\":{\"resourceFieldRef\":{\"resource\":\"limits.memory\","
	    "\"divisor\":\"1Mi\"}}},"
	    "{\"name\":\"CPU\",\"valueFrom\":{\"resourceFieldRef\":{\"resource\":\"limits.cpu\"}}},"
	    "{\"name\":\"CPUM\",\"valueFrom\":{\"resourceFieldRef\":{\"resource\":\"requests.cpu\","
	    "\"divisor\":\"1m\"}}},"
	    "{\"name\":\"EPH\",\"valueFrom\":{\"resourceFieldRef\":{\"resource\":\"limits.ephemeral-storage\"}}},"
	    "{\"name\":\"PATH\",\"value\":\"/mine\"},{\"name\":\"HOSTNAME\",\"value\":\"h\"}]}",
	    NULL, &err);
	assert_non_null(env);
	assert_string_equal(nenv_get(env, "MEM"), "64");
	assert_string_equal(nenv_get(env, "CPU"), "1");		/* rounded up */
	assert_string_equal(nenv_get(env, "CPUM"), "100");
	assert_string_equal(nenv_get(env, "PATH"), "/mine");
	assert_string_equal(nenv_get(env, "HOSTNAME"), "h");
	nenv_free(env);
	json_decref(pod);
}

static void
test_argv(void **state)
{
	(void)state;
	char *env[] = { "WHO=world", NULL };
	json_t *c = parse("{\"image\":\"sh\",\"command\":[\"sh\",\"-c\"],"
	    "\"args\":[\"echo $(WHO) $$HOME $(X)\"]}");
	char **argv = nenv_argv(c, env);
	assert_string_equal(argv[0], "sh");
	assert_string_equal(argv[1], "-c");
	assert_string_equal(argv[2], "echo world $HOME $(X)");
	assert_null(argv[3]);
	nenv_free(argv);
	json_decref(c);
	c = parse("{\"image\":\"python3\",\"args\":[\"-m\",\"http.server\"]}");
	argv = nenv_argv(c, env);
	assert_string_equal(argv[0], "python3");
	assert_string_equal(argv[2], "http.server");
	assert_null(argv[3]);
	nenv_free(argv);
	json_decref(c);
}

static void
test_ipam(void **state)
{
	(void)state;
	struct nipam *ip = nipam_new_at(0);
	char a[16], b[16];
	assert_int_equal(nipam_reserve(ip, "127.1.0.5"), 0);
	assert_int_equal(nipam_reserve(ip, "127.1.0.5"), -EEXIST);
	assert_int_equal(nipam_reserve(ip, "10.0.0.1"), -ERANGE);
	assert_int_equal(nipam_alloc(ip, a), 0);
	assert_string_equal(a, "127.1.0.6");
	nipam_release(ip, "127.1.0.5");
	assert_int_equal(nipam_alloc(ip, b), 0);
	assert_string_equal(b, "127.1.0.7");		/* not reused at once */
	int n = 0;
	while (nipam_alloc(ip, a) == 0)
		n++;
	assert_int_equal(n, 65534 - 3 + 1);		/* .0.5 came back at the end */
	nipam_free(ip);
	/* Two agents start at different places (random), so that two servers
	 * on one machine rarely hand out the same pod IP. */
	struct nipam *x = nipam_new(), *y = nipam_new();
	assert_int_equal(nipam_alloc(x, a), 0);
	assert_int_equal(nipam_alloc(y, b), 0);
	assert_string_not_equal(a, b);	/* fails with probability 1/65534 */
	nipam_free(x);
	nipam_free(y);
}

/* Service links: docker-link style variables, namespace and
 * enableServiceLinks rules, default/kubernetes always, manifest env wins. */
static void
test_service_links(void **state)
{
	(void)state;
	json_t *svcs = parse("["
	    "{\"metadata\": {\"name\": \"redis-primary\", \"namespace\": \"prod\"},"
	    " \"spec\": {\"clusterIP\": \"127.2.1.5\", \"ports\": ["
	    "{\"name\": \"redis\", \"port\": 6379, \"protocol\": \"TCP\"},"
	    "{\"name\": \"metrics-udp\", \"port\": 9121, \"protocol\": \"UDP\"}]}},"
	    "{\"metadata\": {\"name\": \"db\", \"namespace\": \"prod\"},"
	    " \"spec\": {\"clusterIP\": \"None\", \"ports\": [{\"port\": 5432}]}},"
	    "{\"metadata\": {\"name\": \"other\", \"namespace\": \"dev\"},"
	    " \"spec\": {\"clusterIP\": \"127.2.1.6\", \"ports\": [{\"port\": 80}]}},"
	    "{\"metadata\": {\"name\": \"kubernetes\", \"namespace\": \"default\"},"
	    " \"spec\": {\"clusterIP\": \"127.2.0.1\", \"ports\": ["
	    "{\"name\": \"https\", \"port\": 443}]}}]");
	json_t *pod = parse("{\"metadata\": {\"name\": \"p\", \"namespace\": \"prod\"},"
	    " \"spec\": {\"containers\": [{\"name\": \"c\", \"image\": \"x\","
	    " \"env\": [{\"name\": \"REDIS_PRIMARY_SERVICE_HOST\", \"value\": \"mine\"},"
	    " {\"name\": \"URL\", \"value\": \"$(REDIS_PRIMARY_PORT)\"}]}]}}");
	char **links = nenv_service_env(pod, svcs);
	assert_string_equal(nenv_get(links, "REDIS_PRIMARY_SERVICE_HOST"), "127.2.1.5");
	assert_string_equal(nenv_get(links, "REDIS_PRIMARY_SERVICE_PORT"), "6379");
	assert_string_equal(nenv_get(links, "REDIS_PRIMARY_SERVICE_PORT_REDIS"), "6379");
	assert_string_equal(nenv_get(links, "REDIS_PRIMARY_SERVICE_PORT_METRICS_UDP"), "9121");
	assert_string_equal(nenv_get(links, "REDIS_PRIMARY_PORT"), "tcp://127.2.1.5:6379");
	assert_string_equal(nenv_get(links, "REDIS_PRIMARY_PORT_6379_TCP"),
	    "tcp://127.2.1.5:6379");
	assert_string_equal(nenv_get(links, "REDIS_PRIMARY_PORT_6379_TCP_PROTO"), "tcp");
	assert_string_equal(nenv_get(links, "REDIS_PRIMARY_PORT_6379_TCP_PORT"), "6379");
	assert_string_equal(nenv_get(links, "REDIS_PRIMARY_PORT_6379_TCP_ADDR"), "127.2.1.5");
	assert_string_equal(nenv_get(links, "REDIS_PRIMARY_PORT_9121_UDP"),
	    "udp://127.2.1.5:9121");
	assert_string_equal(nenv_get(links, "KUBERNETES_SERVICE_HOST"), "127.2.0.1");
	assert_string_equal(nenv_get(links, "KUBERNETES_SERVICE_PORT_HTTPS"), "443");
	assert_null(nenv_get(links, "DB_SERVICE_HOST"));	/* headless */
	assert_null(nenv_get(links, "OTHER_SERVICE_HOST"));	/* other namespace */

	/* through nenv_resolve: manifest env wins, $(VAR) sees the links */
	struct nenv_ctx ctx = { .pod = pod,
		.container = json_array_get(obj_get_path(pod, "spec.containers"), 0),
		.extra_env = (const char *const *)links };
	char *err = NULL;
	char **env = nenv_resolve(&ctx, &err);
	assert_non_null(env);
	assert_string_equal(nenv_get(env, "REDIS_PRIMARY_SERVICE_HOST"), "mine");
	assert_string_equal(nenv_get(env, "URL"), "tcp://127.2.1.5:6379");
	nenv_free(env);
	nenv_free(links);

	json_object_set_new(json_object_get(pod, "spec"), "enableServiceLinks", json_false());
	links = nenv_service_env(pod, svcs);
	assert_null(nenv_get(links, "REDIS_PRIMARY_SERVICE_HOST"));
	assert_string_equal(nenv_get(links, "KUBERNETES_SERVICE_HOST"), "127.2.0.1");
	nenv_free(links);
	json_decref(pod);
	json_decref(svcs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand_rules),
		cmocka_unit_test(test_env_sources),
		cmocka_unit_test(test_env_errors),
		cmocka_unit_test(test_resource_field_ref_and_overrides),
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_ipam),
		cmocka_unit_test(test_service_links),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
