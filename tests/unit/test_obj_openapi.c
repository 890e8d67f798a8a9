/* test_obj_openapi.c — the OpenAPI v3 documents kubectl reads: the index,
 * the GVK and fieldValidation of PATCH operations, the merge keys of lists
 * (containers by name, container ports by containerPort, Service ports by
 * port) for built-in and CRD kinds alike. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "obj.h"

static const json_t *
at(const json_t *o, const char *const *path)
{
	for (; o && *path; path++)
		o = json_object_get(o, *path);
	return o;
}

static void
test_index_and_patch_operation(void **state)
{
	(void)state;
	json_t *idx = openapi_v3_index();
	const char *url = json_string_value(json_object_get(json_object_get(json_object_get(idx,
	    "paths"), "apis/apps/v1"), "serverRelativeURL"));
	assert_non_null(url);
	assert_true(strncmp(url, "/openapi/v3/apis/apps/v1?hash=", 30) == 0);
	assert_non_null(json_object_get(json_object_get(idx, "paths"), "api/v1"));
	assert_non_null(json_object_get(json_object_get(idx, "paths"), "apis/argoproj.io/v1alpha1"));
	json_decref(idx);

	json_t *doc = openapi_v3_group_version("apps", "v1");
	const char *const patch[] = { "paths", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
		"patch", NULL };
	const json_t *op = at(doc, patch);
	assert_non_null(op);
	assert_string_equal(json_string_value(at(op, (const char *const[]){
	    "x-kubernetes-group-version-kind", "kind", NULL })), "Deployment");
	bool fv = false;
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(op, "parameters"), i, p)
		fv |= strcmp(json_string_value(json_object_get(p, "name")), "fieldValidation") == 0 &&
		    strcmp(json_string_value(json_object_get(p, "in")), "query") == 0;
	assert_true(fv);
	assert_non_null(at(op, (const char *const[]){ "requestBody", "content",
	    "application/strategic-merge-patch+json", NULL }));
	const json_t *cs = at(doc, (const char *const[]){ "components", "schemas",
	    "io.k8s.api.apps.v1.Deployment", "properties", "spec", "properties", "template",
	    "properties", "spec", "properties", "containers", NULL });
	assert_string_equal(json_string_value(json_object_get(cs, "x-kubernetes-patch-merge-key")),
	    "name");
	const json_t *ports = at(cs, (const char *const[]){ "items", "properties", "ports", NULL });
	assert_string_equal(json_string_value(json_object_get(ports,
	    "x-kubernetes-patch-merge-key")), "containerPort");
	json_decref(doc);

	doc = openapi_v3_group_version("", "v1");
	ports = at(doc, (const char *const[]){ "components", "schemas", "io.k8s.api.core.v1.Service",
	    "properties", "spec", "properties", "ports", NULL });
	assert_string_equal(json_string_value(json_object_get(ports,
	    "x-kubernetes-patch-merge-key")), "port");
	json_decref(doc);

	doc = openapi_v3_group_version("argoproj.io", "v1alpha1");
	cs = at(doc, (const char *const[]){ "components", "schemas", "io.argoproj.v1alpha1.Rollout",
	    "properties", "spec", "properties", "template", "properties", "spec", "properties",
	    "containers", NULL });
	assert_string_equal(json_string_value(json_object_get(cs, "x-kubernetes-list-type")), "map");
	json_decref(doc);
	assert_null(openapi_v3_group_version("apps", "v2"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_and_patch_operation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
