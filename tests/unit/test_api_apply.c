/* test_api_apply.c — managedFields of client writes (operation Update): a
 * create owns what it sets, an update takes over what it changes from the
 * other managers, a no-op leaves managedFields as they were. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api.h"

static json_t *
deploy(int replicas, const char *image)
{
	return json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:i, s:{s:{s:[{s:s, s:s}]}}}}",
	    "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name", "web",
	    "labels", "app", "web", "spec", "replicas", replicas, "template", "spec",
	    "containers", "name", "app", "image", image);
}

static char *
fields(const json_t *obj, const char *manager)
{
	size_t i;
	json_t *e;
	json_array_foreach(obj_get_path(obj, "metadata.managedFields"), i, e)
		if (strcmp(obj_str(e, "manager"), manager) == 0) {
			assert_string_equal(obj_str(e, "operation"), "Update");
			return json_dumps(json_object_get(e, "fieldsV1"), JSON_COMPACT | JSON_SORT_KEYS);
		}
	return NULL;
}

static void
test_update_managers(void **state)
{
	(void)state;
	const struct kind *k = kind_find_user("deployment");
	json_t *created = deploy(2, "a:1");
	assert_int_equal(api_managed_update(k, NULL, created, "kubectl-create"),
	    API_MANAGED_FIELDS);
	char *f = fields(created, "kubectl-create");
	assert_string_equal(f, "{\"f:metadata\":{\"f:labels\":{\"f:app\":{}}},\"f:spec\":"
	    "{\"f:replicas\":{},\"f:template\":{\"f:spec\":{\"f:containers\":{\"k:{\\\"name\\\":"
	    "\\\"app\\\"}\":{\".\":{},\"f:image\":{},\"f:name\":{}}}}}}}");
	free(f);

	json_t *scaled = deploy(5, "a:1");
	api_managed_update(k, created, scaled, "kubectl-scale");
	f = fields(scaled, "kubectl-scale");
	assert_string_equal(f, "{\"f:spec\":{\"f:replicas\":{}}}");
	free(f);
	f = fields(scaled, "kubectl-create");
	assert_null(strstr(f, "f:replicas"));
	assert_non_null(strstr(f, "f:image"));
	free(f);

	/* A write that changes nothing keeps managedFields byte for byte. */
	json_t *again = deploy(5, "a:1");
	api_managed_update(k, scaled, again, "someone");
	assert_true(json_equal(obj_get_path(again, "metadata.managedFields"),
	    obj_get_path(scaled, "metadata.managedFields")));
	assert_null(fields(again, "someone"));
	json_decref(created);
	json_decref(scaled);
	json_decref(again);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_update_managers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
