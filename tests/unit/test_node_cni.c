/* Unit tests of the pod network's pure parts: the network configuration
 * handed to the CNI plugins and the reading of their results and errors
 * (CNI 1.0.0 and 0.4.0 forms, as Debian's plugins print them). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "node_cni.h"

static void
test_netconf_is_a_bridge_with_host_local_ipam(void **state)
{
	(void)state;
	struct ncni_config cfg = { .state_dir = "/d/node", .bridge = "v6t1", .cidr =
		"10.77.0.0/24", .service_cidr = "10.78.0.0/24" };
	char *text = ncni_netconf(&cfg);
	json_t *c = json_loads(text, 0, NULL);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "cniVersion")), "1.0.0");
	assert_string_equal(json_string_value(json_object_get(c, "type")), "bridge");
	assert_string_equal(json_string_value(json_object_get(c, "bridge")), "v6t1");
	assert_true(json_is_true(json_object_get(c, "isGateway")));
	assert_true(json_is_false(json_object_get(c, "ipMasq")));
	json_t *ipam = json_object_get(c, "ipam");
	assert_string_equal(json_string_value(json_object_get(ipam, "type")), "host-local");
	assert_string_equal(json_string_value(json_object_get(ipam, "dataDir")), "/d/node/cni/ipam");
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_array_get(
	    json_object_get(ipam, "ranges"), 0), 0), "subnet")), "10.77.0.0/24");
	/* Services only: no default route, so nothing outside is reachable */
	json_t *routes = json_object_get(ipam, "routes");
	assert_int_equal(json_array_size(routes), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(routes, 0), "dst")),
	    "10.78.0.0/24");
	json_decref(c);
	free(text);

	cfg.masquerade = true;
	text = ncni_netconf(&cfg);
	c = json_loads(text, 0, NULL);
	assert_true(json_is_true(json_object_get(c, "ipMasq")));
	routes = json_object_get(json_object_get(c, "ipam"), "routes");
	assert_int_equal(json_array_size(routes), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(routes, 1), "dst")),
	    "0.0.0.0/0");
	json_decref(c);
	free(text);
}

static void
test_result_1_0_0(void **state)
{
	(void)state;
	/* what /usr/lib/cni/bridge 1.1.1 prints for an ADD */
	static const char out[] = "{\n    \"cniVersion\": \"1.0.0\",\n    \"interfaces\": ["
	    "{\"name\": \"v6t1\", \"mac\": \"5a:8e:1f:58:2a:8b\"}, {\"name\": \"veth3c2f\","
	    " \"mac\": \"de:ad:be:ef:00:01\"}, {\"name\": \"eth0\", \"mac\": "
	    "\"0a:58:0a:4d:00:02\", \"sandbox\": \"/d/node/netns/u1\"}],\n    \"ips\": ["
	    "{\"interface\": 2, \"address\": \"10.77.0.2/24\", \"gateway\": \"10.77.0.1\"}],"
	    "\n    \"routes\": [{\"dst\": \"10.78.0.0/24\"}],\n    \"dns\": {}\n}";
	struct ncni_result r;
	char *err = (char *)1;
	assert_int_equal(ncni_parse_result(out, &r, &err), 0);
	assert_null(err);
	assert_string_equal(r.ip, "10.77.0.2");
	assert_string_equal(r.gateway, "10.77.0.1");
}

static void
test_result_0_4_0_and_ipv6_first(void **state)
{
	(void)state;
	static const char out[] = "{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"6\","
	    "\"address\":\"fd00::2/64\"},{\"version\":\"4\",\"address\":\"10.1.2.3/16\"}]}";
	struct ncni_result r;
	char *err = NULL;
	assert_int_equal(ncni_parse_result(out, &r, &err), 0);
	assert_string_equal(r.ip, "10.1.2.3");
	assert_string_equal(r.gateway, "");
}

static void
test_errors_say_why(void **state)
{
	(void)state;
	struct ncni_result r;
	char *err = NULL;
	assert_int_equal(ncni_parse_result("{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":"
	    "\"failed to allocate for range 0\",\"details\":\"no IP addresses available in "
	    "range set: 10.77.0.1-10.77.0.2\"}", &r, &err), -EIO);
	assert_string_equal(err, "CNI error 11: failed to allocate for range 0: no IP "
	    "addresses available in range set: 10.77.0.1-10.77.0.2");
	free(err);
	assert_int_equal(ncni_parse_result("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":"
	    "\"fd00::2/64\"}]}", &r, &err), -EIO);
	assert_string_equal(err, "the CNI result has no IPv4 address");
	free(err);
	assert_int_equal(ncni_parse_result("", &r, &err), -EIO);
	assert_non_null(strstr(err, "not a JSON object"));
	free(err);
	assert_int_equal(ncni_parse_result(NULL, &r, &err), -EIO);
	free(err);
	assert_int_equal(ncni_parse_result("{\"ips\":[{\"address\":\"\"}]}", &r, &err), -EIO);
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_netconf_is_a_bridge_with_host_local_ipam),
		cmocka_unit_test(test_result_1_0_0),
		cmocka_unit_test(test_result_0_4_0_and_ipv6_first),
		cmocka_unit_test(test_errors_say_why),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
