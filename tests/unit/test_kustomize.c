/* Unit tests of the kustomize internals: the content hash against names
 * kubectl kustomize 5.5.0 printed (HTML-escaped JSON, empty data, Secrets
 * with their type), kustomize's image matching and splitting, and the
 * transformers on a small set: prefix with name references rewritten,
 * namespace, commonLabels into selectors, replicas. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kustomize_int.h"
#include "obj.h"

static char *
hash_of(const char *json)
{
	json_t *o = json_loads(json, 0, NULL);
	assert_non_null(o);
	char *h = kz_hash(o);
	json_decref(o);
	return h;
}

static void
test_hash_matches_kubectl(void **state)
{
	(void)state;
	static const struct { const char *obj, *hash; } cases[] = {
		{ "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"settings\"},"
		  "\"data\":{\"KEEP\":\"base\",\"OTHER\":\"1\"}}", "2g5995bc4c" },
		/* no data at all: "data":"" is hashed */
		{ "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"empty\"}}", "6ct58987ht" },
		/* <, > and & are escaped as Go's json.Marshal does */
		{ "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"app-settings\"},\"data\":{"
		  "\"BAZ\":\"qux=quux\",\"FOO\":\"bar\",\"GREETING\":\"hello world\","
		  "\"LOG_LEVEL\":\"debug\",\"app.properties\":\"a=1\\nb=two\\n\","
		  "\"custom-key\":\"Welcome <to> & \\\"v6\\\"\\n\\ttabbed\\n\"}}", "gtt2gd7ckg" },
		{ "{\"kind\":\"Secret\",\"type\":\"Opaque\",\"metadata\":{\"name\":\"db\"},"
		  "\"data\":{\"PASS\":\"cEBzcyB3MHJkIQ==\",\"USER\":\"YXBw\"}}", "bmd4ktk944" },
		{ "{\"kind\":\"Secret\",\"type\":\"kubernetes.io/tls\",\"metadata\":{\"name\":"
		  "\"tls-like\"},\"data\":{\"tls.crt\":\"Q0VSVERBVEEK\",\"tls.key\":"
		  "\"S0VZREFUQQo=\"}}", "4db9778tdg" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *h = hash_of(cases[i].obj);
		assert_string_equal(h, cases[i].hash);
		free(h);
	}
	/* the name does not take part (kustomize looks it up under a path
	 * that never exists); the type of a Secret does */
	char *a = hash_of("{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"other\"},"
	    "\"data\":{\"KEEP\":\"base\",\"OTHER\":\"1\"}}");
	assert_string_equal(a, "2g5995bc4c");
	free(a);
	a = hash_of("{\"kind\":\"Secret\",\"type\":\"Other\",\"metadata\":{\"name\":\"db\"},"
	    "\"data\":{\"PASS\":\"cEBzcyB3MHJkIQ==\",\"USER\":\"YXBw\"}}");
	assert_string_not_equal(a, "bmd4ktk944");
	free(a);
}

static void
check_image(const char *value, const char *entry, const char *want)
{
	json_t *e = json_loads(entry, 0, NULL);
	char *got = kz_image_set(value, e);
	if (want)
		assert_string_equal(got, want);
	else
		assert_null(got);
	free(got);
	json_decref(e);
}

static void
test_images(void **state)
{
	(void)state;
	check_image("nginx:1.25", "{\"name\":\"nginx\",\"newTag\":\"1.27\"}", "nginx:1.27");
	check_image("nginx", "{\"name\":\"nginx\",\"newName\":\"r.io/nginx\"}", "r.io/nginx");
	check_image("nginxx:1", "{\"name\":\"nginx\",\"newTag\":\"2\"}", NULL);
	check_image("nginx:1@sha256:abc", "{\"name\":\"nginx\",\"digest\":\"sha256:def\"}",
	    "nginx@sha256:def");
	check_image("nginx@sha256:abc", "{\"name\":\"nginx\",\"newTag\":\"2\"}", "nginx:2");
	check_image("busybox", "{\"name\":\"busybox\",\"newTag\":\"1\",\"digest\":\"sha256:f\"}",
	    "busybox:1@sha256:f");
	/* a registry port is part of the name, not a tag */
	check_image("localhost:5000/app:1", "{\"name\":\"localhost:5000/app\",\"newTag\":\"2\"}",
	    "localhost:5000/app:2");
	check_image("app:1", "{\"name\":\"app\",\"newTag\":7}", "app:7");
}

static struct kresmap
load(const char *const *docs, size_t n)
{
	struct kresmap m = { 0 };
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_loads(docs[i], 0, NULL);
		assert_non_null(o);
		kz_add(&m, o);
	}
	return m;
}

static void
test_prefix_namespace_and_references(void **state)
{
	(void)state;
	const char *docs[] = {
		"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\"},"
		"\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{"
		"\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":"
		"\"c\",\"image\":\"x\",\"envFrom\":[{\"configMapRef\":{\"name\":\"cfg\"}}]}],"
		"\"volumes\":[{\"name\":\"v\",\"configMap\":{\"name\":\"unrelated\"}}]}}}}",
		"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cfg\"}}",
		"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\"},"
		"\"spec\":{\"ports\":[{\"port\":80}]}}",
		"{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"ClusterRole\","
		"\"metadata\":{\"name\":\"reader\"}}",
	};
	struct kresmap m = load(docs, 4);
	json_t *k = json_loads("{\"namePrefix\":\"p-\",\"namespace\":\"prod\","
	    "\"commonLabels\":{\"team\":\"a\"},\"replicas\":[{\"name\":\"web\",\"count\":3}]}",
	    0, NULL);
	struct kust kt = { "/nonexistent", "/nonexistent/kustomization.yaml", k };
	char *err = NULL;
	assert_int_equal(kz_transform(&kt, &m, &err), 0);
	assert_int_equal(kz_fix_names(&m, &err), 0);
	const json_t *dep = m.v[0].obj;
	assert_string_equal(obj_name(dep), "p-web");
	assert_string_equal(obj_namespace(dep), "prod");
	assert_string_equal(obj_str_at(dep, "spec.selector.matchLabels.team"), "a");
	assert_string_equal(obj_str_at(dep, "spec.template.metadata.labels.team"), "a");
	assert_int_equal(obj_int_at(dep, "spec.replicas", 0), 3);
	json_t *c = json_array_get(obj_get_path(dep, "spec.template.spec.containers"), 0);
	assert_string_equal(obj_str_at(json_array_get(json_object_get(c, "envFrom"), 0),
	    "configMapRef.name"), "p-cfg");
	/* a reference to nothing in the set stays as written */
	json_t *v = json_array_get(obj_get_path(dep, "spec.template.spec.volumes"), 0);
	assert_string_equal(obj_str_at(v, "configMap.name"), "unrelated");
	/* the Service has no selector: commonLabels creates one */
	assert_string_equal(obj_str_at(m.v[2].obj, "spec.selector.team"), "a");
	/* cluster-scoped kinds get no namespace */
	assert_string_equal(obj_namespace(m.v[3].obj), "");
	assert_string_equal(obj_name(m.v[3].obj), "p-reader");
	json_decref(k);
	kz_map_free(&m);
}

static void
test_replicas_without_match_is_an_error(void **state)
{
	(void)state;
	const char *docs[] = {
		"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"web\"}}",
	};
	struct kresmap m = load(docs, 1);
	json_t *k = json_loads("{\"replicas\":[{\"name\":\"web\",\"count\":2}]}", 0, NULL);
	struct kust kt = { "d", "d/kustomization.yaml", k };
	char *err = NULL;
	assert_true(kz_transform(&kt, &m, &err) < 0);
	assert_non_null(strstr(err, "d/kustomization.yaml: resource with name web"));
	free(err);
	json_decref(k);
	kz_map_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_matches_kubectl),
		cmocka_unit_test(test_images),
		cmocka_unit_test(test_prefix_namespace_and_references),
		cmocka_unit_test(test_replicas_without_match_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
