/* test_trace_env.c — the OpenTelemetry SDK variables a pod gets
 * (node_env.c's nenv_otel): the OTEL_SERVICE_NAME rule in its order, the
 * resource attributes with the revision, the endpoint variable, and a
 * pod's own settings left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "node_pod.h"

struct vars {
	char name[8][64];
	char value[8][512];
	int n;
};

static void
collect(void *arg, const char *name, const char *value)
{
	struct vars *v = arg;

	assert_true(v->n < 8);
	snprintf(v->name[v->n], sizeof v->name[0], "%s", name);
	snprintf(v->value[v->n], sizeof v->value[0], "%s", value);
	v->n++;
}

static const char *
var(const struct vars *v, const char *name)
{
	for (int i = 0; i < v->n; i++)
		if (!strcmp(v->name[i], name))
			return v->value[i];
	return NULL;
}

static json_t *
pod(const char *labels, const char *annotations, const char *owners)
{
	char *text = NULL;
	json_t *p;
	json_error_t err;

	assert_true(asprintf(&text, "{\"metadata\":{\"name\":\"web-6d9d67d84f-cgxql\","
	    "\"namespace\":\"shop\",\"uid\":\"u-1\",\"labels\":%s,\"annotations\":%s,"
	    "\"ownerReferences\":%s}}", labels, annotations, owners) > 0);
	p = json_loads(text, 0, &err);
	free(text);
	assert_non_null(p);
	return p;
}

static const char *const RS_OWNER = "[{\"kind\":\"ReplicaSet\",\"name\":\"web-6d9d67d84f\","
	"\"controller\":true}]";

static void
test_service_name_rule(void **state)
{
	static const struct {
		const char *labels, *annotations, *owners, *want;
	} cases[] = {
		{ "{\"app\":\"a\",\"app.kubernetes.io/name\":\"k\",\"pod-template-hash\":\"6d9d67d84f\"}",
		  "{\"resource.opentelemetry.io/service.name\":\"ann\"}", "[]", "ann" },
		{ "{\"app\":\"a\",\"app.kubernetes.io/name\":\"k\"}", "{}", "[]", "k" },
		{ "{\"app\":\"a\"}", "{}", "[]", "a" },
		{ "{\"pod-template-hash\":\"6d9d67d84f\"}", "{}", NULL, "web" },
		{ "{}", "{}", "[{\"kind\":\"StatefulSet\",\"name\":\"db\",\"controller\":true}]", "db" },
		{ "{}", "{}", "[]", "web-6d9d67d84f-cgxql" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct vars v = { .n = 0 };
		json_t *p = pod(cases[i].labels, cases[i].annotations,
		    cases[i].owners ? cases[i].owners : RS_OWNER);
		nenv_otel(p, NULL, NULL, collect, &v);
		assert_string_equal(var(&v, "OTEL_SERVICE_NAME"), cases[i].want);
		assert_null(var(&v, "OTEL_EXPORTER_OTLP_ENDPOINT"));	/* none configured */
		json_decref(p);
	}
}

static void
test_resource_and_endpoint(void **state)
{
	struct vars v = { .n = 0 };
	json_t *p = pod("{\"app\":\"web\",\"pod-template-hash\":\"6d9d67d84f\"}", "{}", RS_OWNER);

	(void)state;
	nenv_otel(p, "http://10.0.0.1:4318", NULL, collect, &v);
	assert_string_equal(var(&v, "OTEL_RESOURCE_ATTRIBUTES"), "k8s.namespace.name=shop,"
	    "k8s.pod.name=web-6d9d67d84f-cgxql,k8s.pod.uid=u-1,service.version=6d9d67d84f");
	assert_string_equal(var(&v, "OTEL_EXPORTER_OTLP_ENDPOINT"), "http://10.0.0.1:4318");
	v.n = 0;
	nenv_otel(p, "http://c:4318/v1/traces", NULL, collect, &v);
	assert_string_equal(var(&v, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
	    "http://c:4318/v1/traces");
	assert_null(var(&v, "OTEL_EXPORTER_OTLP_ENDPOINT"));
	json_decref(p);
}

static void
test_own_settings_win(void **state)
{
	char *env[] = { "OTEL_SERVICE_NAME=mine", "OTEL_RESOURCE_ATTRIBUTES=a=b",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://x", NULL };
	struct vars v = { .n = 0 };
	json_t *p = pod("{\"app\":\"web\"}", "{}", "[]");

	(void)state;
	nenv_otel(p, "http://10.0.0.1:4318", env, collect, &v);
	assert_int_equal(v.n, 0);
	json_decref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_name_rule),
		cmocka_unit_test(test_resource_and_endpoint),
		cmocka_unit_test(test_own_settings_win),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
