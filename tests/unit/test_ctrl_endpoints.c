/* Unit tests of the Endpoints controller: the decision (endpoints_build:
 * readiness, terminating pods, named ports, repacking, headless) and the
 * controller against a real store and API server on a private loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctrl.h"
#include "api_env.h"

/* ---- fixtures ---------------------------------------------------------- */

static json_t *
make_svc(const char *ports_json)
{
	json_t *ports = json_loads(ports_json, 0, NULL);
	assert_non_null(ports);
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:{s:s}, s:s, s:o}}",
	    "apiVersion", "v1", "kind", "Service",
	    "metadata", "name", "web", "namespace", "default", "labels", "team", "a",
	    "spec", "selector", "app", "web", "clusterIP", "127.2.1.0", "ports", ports);
}

struct podopt {
	const char *ip;		/* NULL: no IP yet */
	int ready;		/* 1 Ready, 0 not */
	bool deleting;
	const char *phase;	/* NULL: Running */
	const char *ns;		/* NULL: default */
	const char *app;	/* NULL: web */
	const char *ports;	/* container ports JSON, NULL: [{name: http, 8080}] */
};

static json_t *
make_pod(const char *name, struct podopt o)
{
	json_t *cports = json_loads(o.ports ? o.ports :
	    "[{\"name\": \"http\", \"containerPort\": 8080, \"protocol\": \"TCP\"}]", 0, NULL);
	assert_non_null(cports);
	char uid[64];
	snprintf(uid, sizeof uid, "uid-%s", name);
	json_t *p = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:{s:s}},"
	    " s:{s:s, s:[{s:s, s:s, s:o}]}, s:{s:s, s:[{s:s, s:s}]}}",
	    "apiVersion", "v1", "kind", "Pod",
	    "metadata", "name", name, "namespace", o.ns ? o.ns : "default", "uid", uid,
	    "labels", "app", o.app ? o.app : "web",
	    "spec", "nodeName", "node1", "containers", "name", "c", "image", "img",
	    "ports", cports,
	    "status", "phase", o.phase ? o.phase : "Running",
	    "conditions", "type", "Ready", "status", o.ready ? "True" : "False");
	if (o.ip)
		json_object_set_new(json_object_get(p, "status"), "podIP", json_string(o.ip));
	if (o.deleting)
		json_object_set_new(json_object_get(p, "metadata"), "deletionTimestamp",
		    json_string("2030-01-01T00:00:00Z"));
	return p;
}

static json_t *
subset(const json_t *ep, size_t i)
{
	return json_array_get(json_object_get(ep, "subsets"), i);
}

static const char *
addr_ip(const json_t *sub, const char *list, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(sub, list), i),
	    "ip"));
}

static void
dump(const json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(1) | JSON_SORT_KEYS);
	print_message("%s\n", s);
	free(s);
}

/* ---- endpoints_build --------------------------------------------------- */

static void
test_ready_and_not_ready_pods(void **state)
{
	(void)state;
	json_t *svc = make_svc("[{\"name\": \"http\", \"port\": 80, \"targetPort\": 8080, "
	    "\"protocol\": \"TCP\", \"appProtocol\": \"http\"}]");
	json_t *pods = json_pack("[o, o, o]",
	    make_pod("b", (struct podopt){ .ip = "127.1.0.3", .ready = 1 }),
	    make_pod("a", (struct podopt){ .ip = "127.1.0.2", .ready = 1 }),
	    make_pod("c", (struct podopt){ .ip = "127.1.0.4", .ready = 0 }));
	json_t *ep = endpoints_build(svc, pods);
	assert_non_null(ep);
	assert_string_equal(obj_kind(ep), "Endpoints");
	assert_string_equal(obj_name(ep), "web");
	assert_string_equal(json_string_value(json_object_get(obj_labels(ep), "team")), "a");
	assert_int_equal(json_array_size(json_object_get(ep, "subsets")), 1);
	json_t *s = subset(ep, 0);
	assert_string_equal(addr_ip(s, "addresses", 0), "127.1.0.2");
	assert_string_equal(addr_ip(s, "addresses", 1), "127.1.0.3");
	assert_string_equal(addr_ip(s, "notReadyAddresses", 0), "127.1.0.4");
	json_t *a0 = json_array_get(json_object_get(s, "addresses"), 0);
	assert_string_equal(json_string_value(json_object_get(a0, "nodeName")), "node1");
	json_t *ref = json_object_get(a0, "targetRef");
	assert_string_equal(json_string_value(json_object_get(ref, "kind")), "Pod");
	assert_string_equal(json_string_value(json_object_get(ref, "name")), "a");
	assert_string_equal(json_string_value(json_object_get(ref, "uid")), "uid-a");
	assert_string_equal(json_string_value(json_object_get(ref, "namespace")), "default");
	json_t *port = json_array_get(json_object_get(s, "ports"), 0);
	assert_int_equal(json_integer_value(json_object_get(port, "port")), 8080);
	assert_string_equal(json_string_value(json_object_get(port, "name")), "http");
	assert_string_equal(json_string_value(json_object_get(port, "protocol")), "TCP");
	assert_string_equal(json_string_value(json_object_get(port, "appProtocol")), "http");
	json_decref(ep);
	json_decref(pods);
	json_decref(svc);
}

static void
test_terminating_finished_and_foreign_pods_left_out(void **state)
{
	(void)state;
	json_t *svc = make_svc("[{\"port\": 80, \"targetPort\": 8080}]");
	json_t *pods = json_pack("[o, o, o, o, o, o]",
	    make_pod("ok", (struct podopt){ .ip = "127.1.0.2", .ready = 1 }),
	    make_pod("term", (struct podopt){ .ip = "127.1.0.3", .ready = 1, .deleting = true }),
	    make_pod("done", (struct podopt){ .ip = "127.1.0.4", .ready = 0,
	    .phase = "Succeeded" }),
	    make_pod("noip", (struct podopt){ .ready = 0 }),
	    make_pod("other", (struct podopt){ .ip = "127.1.0.5", .ready = 1, .ns = "prod" }),
	    make_pod("db", (struct podopt){ .ip = "127.1.0.6", .ready = 1, .app = "db" }));
	json_t *ep = endpoints_build(svc, pods);
	assert_int_equal(json_array_size(json_object_get(ep, "subsets")), 1);
	json_t *s = subset(ep, 0);
	assert_int_equal(json_array_size(json_object_get(s, "addresses")), 1);
	assert_string_equal(addr_ip(s, "addresses", 0), "127.1.0.2");
	assert_null(json_object_get(s, "notReadyAddresses"));
	json_decref(ep);
	json_decref(pods);
	json_decref(svc);
}

static void
test_publish_not_ready_addresses(void **state)
{
	(void)state;
	json_t *svc = make_svc("[{\"port\": 80, \"targetPort\": 8080}]");
	json_object_set_new(json_object_get(svc, "spec"), "publishNotReadyAddresses",
	    json_true());
	json_t *pods = json_pack("[o, o]",
	    make_pod("a", (struct podopt){ .ip = "127.1.0.2", .ready = 0 }),
	    make_pod("b", (struct podopt){ .ip = "127.1.0.3", .ready = 1, .deleting = true }));
	json_t *ep = endpoints_build(svc, pods);
	json_t *s = subset(ep, 0);
	assert_int_equal(json_array_size(json_object_get(s, "addresses")), 2);
	assert_null(json_object_get(s, "notReadyAddresses"));
	json_decref(ep);
	json_decref(pods);
	json_decref(svc);
}

/* Named targetPort: each pod's own number; a pod without the name is left
 * out of that port only, which splits the subsets. */
static void
test_named_target_port_repacks_subsets(void **state)
{
	(void)state;
	json_t *svc = make_svc("[{\"name\": \"web\", \"port\": 80, \"targetPort\": \"http\", "
	    "\"protocol\": \"TCP\"}, {\"name\": \"admin\", \"port\": 81, \"targetPort\": 9000, "
	    "\"protocol\": \"TCP\"}]");
	json_t *pods = json_pack("[o, o, o]",
	    make_pod("a", (struct podopt){ .ip = "127.1.0.2", .ready = 1 }),
	    make_pod("b", (struct podopt){ .ip = "127.1.0.3", .ready = 1,
	    .ports = "[{\"name\": \"http\", \"containerPort\": 8081, \"protocol\": \"TCP\"}]" }),
	    make_pod("c", (struct podopt){ .ip = "127.1.0.4", .ready = 1, .ports = "[]" }));
	json_t *ep = endpoints_build(svc, pods);
	json_t *subs = json_object_get(ep, "subsets");
	/* {a}: web 8080; {b}: web 8081; {a, b, c}: admin 9000 */
	if (json_array_size(subs) != 3)
		dump(ep);
	assert_int_equal(json_array_size(subs), 3);
	size_t i;
	json_t *s;
	int seen = 0;
	json_array_foreach(subs, i, s) {
		json_t *ports = json_object_get(s, "ports");
		assert_int_equal(json_array_size(ports), 1);
		json_int_t num = json_integer_value(json_object_get(json_array_get(ports, 0),
		    "port"));
		size_t n = json_array_size(json_object_get(s, "addresses"));
		if (num == 8080 && n == 1 && !strcmp(addr_ip(s, "addresses", 0), "127.1.0.2"))
			seen |= 1;
		if (num == 8081 && n == 1 && !strcmp(addr_ip(s, "addresses", 0), "127.1.0.3"))
			seen |= 2;
		if (num == 9000 && n == 3)
			seen |= 4;
	}
	assert_int_equal(seen, 7);
	json_decref(ep);
	json_decref(pods);
	json_decref(svc);
}

/* Ports shared by the same set of addresses go into one subset. */
static void
test_ports_with_same_addresses_share_a_subset(void **state)
{
	(void)state;
	json_t *svc = make_svc("[{\"name\": \"b\", \"port\": 81, \"targetPort\": 9000}, "
	    "{\"name\": \"a\", \"port\": 80, \"targetPort\": \"http\"}]");
	json_t *pods = json_pack("[o, o]",
	    make_pod("a", (struct podopt){ .ip = "127.1.0.2", .ready = 1 }),
	    make_pod("b", (struct podopt){ .ip = "127.1.0.3", .ready = 0 }));
	json_t *ep = endpoints_build(svc, pods);
	assert_int_equal(json_array_size(json_object_get(ep, "subsets")), 1);
	json_t *ports = json_object_get(subset(ep, 0), "ports");
	assert_int_equal(json_array_size(ports), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ports, 0), "name")),
	    "a");
	assert_string_equal(addr_ip(subset(ep, 0), "notReadyAddresses", 0), "127.1.0.3");
	json_decref(ep);
	json_decref(pods);
	json_decref(svc);
}

static void
test_named_port_protocol_must_match(void **state)
{
	(void)state;
	json_t *svc = make_svc("[{\"port\": 53, \"targetPort\": \"http\", \"protocol\": \"UDP\"}]");
	json_t *pods = json_pack("[o]", make_pod("a", (struct podopt){ .ip = "127.1.0.2",
	    .ready = 1 }));
	json_t *ep = endpoints_build(svc, pods);
	assert_null(json_object_get(ep, "subsets"));
	json_decref(ep);
	json_decref(pods);
	json_decref(svc);
}

static void
test_headless_without_ports(void **state)
{
	(void)state;
	json_t *svc = make_svc("[]");
	json_object_set_new(json_object_get(svc, "spec"), "clusterIP", json_string("None"));
	json_t *pods = json_pack("[o]", make_pod("a", (struct podopt){ .ip = "127.1.0.2",
	    .ready = 1 }));
	json_object_set_new(obj_get_path(json_array_get(pods, 0), "spec"), "hostname",
	    json_string("a0"));
	json_object_set_new(obj_get_path(json_array_get(pods, 0), "spec"), "subdomain",
	    json_string("web"));
	json_t *ep = endpoints_build(svc, pods);
	json_t *s = subset(ep, 0);
	assert_non_null(s);
	assert_null(json_object_get(s, "ports"));
	assert_string_equal(addr_ip(s, "addresses", 0), "127.1.0.2");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(s, "addresses"), 0), "hostname")), "a0");
	assert_non_null(json_object_get(obj_labels(ep), "service.kubernetes.io/headless"));
	json_decref(ep);
	json_decref(pods);
	json_decref(svc);
}

static void
test_no_selector_means_user_managed(void **state)
{
	(void)state;
	json_t *svc = make_svc("[{\"port\": 80}]");
	json_object_del(json_object_get(svc, "spec"), "selector");
	json_t *pods = json_array();
	assert_null(endpoints_build(svc, pods));
	json_object_set_new(json_object_get(svc, "spec"), "selector", json_object());
	assert_null(endpoints_build(svc, pods));
	json_decref(pods);
	json_decref(svc);
}

static void
test_order_of_pods_does_not_matter_and_equal_means_no_write(void **state)
{
	(void)state;
	json_t *svc = make_svc("[{\"name\": \"a\", \"port\": 80, \"targetPort\": \"http\"}, "
	    "{\"name\": \"b\", \"port\": 81, \"targetPort\": 9000}]");
	json_t *p[4] = {
		make_pod("a", (struct podopt){ .ip = "127.1.0.9", .ready = 1 }),
		make_pod("b", (struct podopt){ .ip = "127.1.0.3", .ready = 0 }),
		make_pod("c", (struct podopt){ .ip = "127.1.0.5", .ready = 1, .ports = "[]" }),
		make_pod("d", (struct podopt){ .ip = "127.1.0.4", .ready = 1 }),
	};
	json_t *fwd = json_pack("[O, O, O, O]", p[0], p[1], p[2], p[3]);
	json_t *rev = json_pack("[O, O, O, O]", p[3], p[2], p[1], p[0]);
	json_t *e1 = endpoints_build(svc, fwd), *e2 = endpoints_build(svc, rev);
	assert_true(json_equal(e1, e2));
	assert_true(endpoints_equal(e1, e2));
	/* a pod turning Ready changes the result */
	json_object_set_new(json_array_get(obj_get_path(p[1], "status.conditions"), 0),
	    "status", json_string("True"));
	json_t *e3 = endpoints_build(svc, fwd);
	assert_false(endpoints_equal(e1, e3));
	/* absent and empty subsets are the same */
	json_t *empty = json_pack("{s:{s:{s:s}}, s:[]}", "metadata", "labels", "team", "a",
	    "subsets");
	json_t *none = json_pack("{s:{s:{s:s}}}", "metadata", "labels", "team", "a");
	assert_true(endpoints_equal(empty, none));
	for (int i = 0; i < 4; i++)
		json_decref(p[i]);
	json_decref(empty);
	json_decref(none);
	json_decref(e1);
	json_decref(e2);
	json_decref(e3);
	json_decref(fwd);
	json_decref(rev);
	json_decref(svc);
}

/* ---- the controller on a real store ------------------------------------ */

struct env {
	struct api_env a;
	struct ctrl_endpoints *c;
};

static json_t *
get_ep(struct env *e)
{
	struct api_error err = { 0 };
	json_t *ep = NULL;
	api_get(e->a.api, kind_find_gvk("v1", "Endpoints"), "default", "web", &ep, &err);
	api_error_clear(&err);
	return ep;
}

static int
env_setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	api_env_open(&e->a);
	assert_int_equal(ctrl_endpoints_start(e->a.api, &e->c), 0);
	*state = e;
	return 0;
}

static int
env_teardown(void **state)
{
	struct env *e = *state;
	ctrl_endpoints_stop(e->c);
	api_env_close(&e->a);
	free(e);
	return 0;
}

static json_t *
api_pod(const char *name, const char *app)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:[{s:s, s:s, s:[{s:s, s:i}]}]}}",
	    "apiVersion", "v1", "kind", "Pod",
	    "metadata", "name", name, "namespace", "default", "labels", "app", app,
	    "spec", "containers", "name", "c", "image", "img", "ports", "name", "http",
	    "containerPort", 8080);
}

static void
test_controller_follows_readiness_and_deletes_with_service(void **state)
{
	struct env *e = *state;
	api_env_create(&e->a, json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:s}, s:[{s:i, s:s}]}}",
	    "apiVersion", "v1", "kind", "Service", "metadata", "name", "web",
	    "namespace", "default", "spec", "selector", "app", "web",
	    "ports", "port", 80, "targetPort", "http"));
	api_env_create(&e->a, api_pod("web-1", "web"));
	api_env_create(&e->a, api_pod("other", "db"));
	api_env_pump(&e->a);
	json_t *ep = get_ep(e);
	assert_non_null(ep);
	assert_null(json_object_get(ep, "subsets"));
	json_decref(ep);

	api_env_pod_status(&e->a, "web-1", "127.1.0.7", false);
	api_env_pod_status(&e->a, "other", "127.1.0.8", true);
	api_env_pump(&e->a);
	ep = get_ep(e);
	assert_string_equal(addr_ip(subset(ep, 0), "notReadyAddresses", 0), "127.1.0.7");
	json_decref(ep);

	api_env_pod_status(&e->a, "web-1", "127.1.0.7", true);
	api_env_pump(&e->a);
	ep = get_ep(e);
	assert_string_equal(addr_ip(subset(ep, 0), "addresses", 0), "127.1.0.7");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(
	    json_object_get(subset(ep, 0), "ports"), 0), "port")), 8080);
	int64_t rv = obj_resource_version(ep);
	json_decref(ep);

	/* idle: nothing changes, nothing is written */
	size_t writes = ctrl_endpoints_writes(e->c);
	api_env_pod_status(&e->a, "other", "127.1.0.8", false);
	api_env_pump(&e->a);
	assert_int_equal(ctrl_endpoints_writes(e->c), writes);
	ep = get_ep(e);
	assert_int_equal(obj_resource_version(ep), rv);
	json_decref(ep);

	/* a hand edit of a managed Endpoints is put back */
	struct api_error err = { 0 };
	assert_int_equal(api_delete(e->a.api, kind_find_gvk("v1", "Endpoints"), "default",
	    "web", API_PROPAGATE_BACKGROUND, NULL, 0, 0, NULL, &err), 0);
	api_env_pump(&e->a);
	ep = get_ep(e);
	assert_non_null(ep);
	json_decref(ep);

	assert_int_equal(api_delete(e->a.api, kind_find_gvk("v1", "Service"), "default", "web",
	    API_PROPAGATE_BACKGROUND, NULL, 0, 0, NULL, &err), 0);
	api_env_pump(&e->a);
	assert_null(get_ep(e));
	api_error_clear(&err);
}

static void
test_controller_leaves_user_endpoints_alone(void **state)
{
	struct env *e = *state;
	api_env_create(&e->a, json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:[{s:i}]}}",
	    "apiVersion", "v1", "kind", "Service", "metadata", "name", "web",
	    "namespace", "default", "spec", "ports", "port", 80));
	api_env_create(&e->a, json_pack("{s:s, s:s, s:{s:s, s:s}, s:[{s:[{s:s}], s:[{s:i}]}]}",
	    "apiVersion", "v1", "kind", "Endpoints", "metadata", "name", "web",
	    "namespace", "default", "subsets", "addresses", "ip", "127.0.0.1",
	    "ports", "port", 9999));
	api_env_create(&e->a, api_pod("web-1", "web"));
	api_env_pump(&e->a);
	api_env_pod_status(&e->a, "web-1", "127.1.0.7", true);
	api_env_pump(&e->a);
	json_t *ep = get_ep(e);
	assert_string_equal(addr_ip(subset(ep, 0), "addresses", 0), "127.0.0.1");
	json_decref(ep);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_and_not_ready_pods),
		cmocka_unit_test(test_terminating_finished_and_foreign_pods_left_out),
		cmocka_unit_test(test_publish_not_ready_addresses),
		cmocka_unit_test(test_named_target_port_repacks_subsets),
		cmocka_unit_test(test_ports_with_same_addresses_share_a_subset),
		cmocka_unit_test(test_named_port_protocol_must_match),
		cmocka_unit_test(test_headless_without_ports),
		cmocka_unit_test(test_no_selector_means_user_managed),
		cmocka_unit_test(test_order_of_pods_does_not_matter_and_equal_means_no_write),
		cmocka_unit_test_setup_teardown(
		    test_controller_follows_readiness_and_deletes_with_service,
		    env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_controller_leaves_user_endpoints_alone,
		    env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
