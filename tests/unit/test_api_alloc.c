/* Unit tests of Service address allocation (api_alloc.c) through the object
 * operations, on a real store and API server on a private loop: cluster
 * IPs, node ports, conflicts, immutability, release and rebuild. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "api_env.h"

static struct api_env *E;

static void
pump(void)
{
	api_env_pump(E);
}

static const struct kind *
svc_kind(void)
{
	return kind_find_gvk("v1", "Service");
}

/* Creates a Service from JSON text; returns the stored object or NULL with
 * *err set (caller clears). */
static json_t *
create_svc(const char *text, unsigned flags, struct api_error *err)
{
	json_t *obj = json_loads(text, 0, NULL), *out = NULL;
	assert_non_null(obj);
	if (api_create(E->api, svc_kind(), "default", obj, flags, &out, err) < 0)
		return NULL;
	pump();
	return out;
}

static json_t *
must_create(const char *text)
{
	struct api_error err = { 0 };
	json_t *s = create_svc(text, 0, &err);
	if (!s)
		fail_msg("create: %s", err.message);
	return s;
}

static void
must_fail(const char *text, const char *field, const char *what)
{
	struct api_error err = { 0 };
	json_t *s = create_svc(text, 0, &err);
	assert_null(s);
	assert_int_equal(err.code, 422);
	bool found = false;
	for (size_t i = 0; i < err.causes.n; i++)
		found |= !strcmp(err.causes.v[i].field, field) &&
		    strstr(err.causes.v[i].message, what) != NULL;
	if (!found)
		fail_msg("no '%s' on %s in: %s", what, field, err.message);
	api_error_clear(&err);
}

static const char *
spec_str(const json_t *svc, const char *key)
{
	return json_string_value(json_object_get(json_object_get(svc, "spec"), key));
}

static json_int_t
node_port(const json_t *svc, size_t i)
{
	return json_integer_value(json_object_get(json_array_get(
	    obj_get_path(svc, "spec.ports"), i), "nodePort"));
}

static void
delete_svc(const char *name)
{
	struct api_error err = { 0 };
	assert_int_equal(api_delete(E->api, svc_kind(), "default", name,
	    API_PROPAGATE_BACKGROUND, NULL, 0, 0, NULL, &err), 0);
	pump();
}

static int
update_svc(json_t *obj, struct api_error *err, json_t **out)
{
	int rc = api_update(E->api, svc_kind(), "default", obj, false, 0, out, err);
	pump();
	return rc;
}

#define SVC(name, extra) "{\"apiVersion\": \"v1\", \"kind\": \"Service\", " \
	"\"metadata\": {\"name\": \"" name "\"}, \"spec\": {\"selector\": {\"app\": \"x\"}, " \
	"\"ports\": [{\"port\": 80}]" extra "}}"
#define NP_SVC(name, extra) "{\"apiVersion\": \"v1\", \"kind\": \"Service\", " \
	"\"metadata\": {\"name\": \"" name "\"}, \"spec\": {\"type\": \"NodePort\", " \
	"\"ports\": [{\"name\": \"a\", \"port\": 80" extra "}, {\"name\": \"b\", \"port\": 81}]}}"

static int
setup(void **state)
{
	(void)state;
	E = calloc(1, sizeof *E);
	api_env_open(E);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	api_env_close(E);
	free(E);
	return 0;
}

static void
test_cluster_ips_are_allocated_from_the_range(void **state)
{
	(void)state;
	json_t *a = must_create(SVC("a", ""));
	json_t *b = must_create(SVC("b", ""));
	const char *ia = spec_str(a, "clusterIP"), *ib = spec_str(b, "clusterIP");
	assert_true(str_has_prefix(ia, "127.2."));
	assert_true(str_has_prefix(ib, "127.2."));
	assert_string_not_equal(ia, ib);
	assert_string_equal(json_string_value(json_array_get(obj_get_path(a,
	    "spec.clusterIPs"), 0)), ia);
	assert_string_equal(json_string_value(json_array_get(obj_get_path(a,
	    "spec.ipFamilies"), 0)), "IPv4");
	/* dynamic addresses stay out of the lower band users pick from */
	assert_false(str_has_prefix(ia, "127.2.0."));
	json_decref(a);
	json_decref(b);
}

static void
test_requested_ip_must_be_free_and_in_range(void **state)
{
	(void)state;
	json_t *a = must_create(SVC("a", ", \"clusterIP\": \"127.2.0.50\""));
	assert_string_equal(spec_str(a, "clusterIP"), "127.2.0.50");
	must_fail(SVC("b", ", \"clusterIP\": \"127.2.0.50\""), "spec.clusterIP",
	    "provided IP is already allocated");
	must_fail(SVC("b", ", \"clusterIP\": \"10.0.0.1\""), "spec.clusterIP",
	    "is not in the valid range");
	must_fail(SVC("b", ", \"clusterIP\": \"127.2.0.7\", \"clusterIPs\": [\"127.2.0.8\"]"),
	    "spec.clusterIPs[0]", "must match");
	/* clusterIPs alone is enough */
	json_t *c = must_create(SVC("c", ", \"clusterIPs\": [\"127.2.0.9\"]"));
	assert_string_equal(spec_str(c, "clusterIP"), "127.2.0.9");
	/* freed on delete, then free to take */
	delete_svc("a");
	json_t *d = must_create(SVC("d", ", \"clusterIP\": \"127.2.0.50\""));
	json_decref(a);
	json_decref(c);
	json_decref(d);
}

static void
test_headless_gets_no_address(void **state)
{
	(void)state;
	json_t *a = must_create(SVC("a", ", \"clusterIP\": \"None\""));
	assert_string_equal(spec_str(a, "clusterIP"), "None");
	assert_string_equal(json_string_value(json_array_get(obj_get_path(a,
	    "spec.clusterIPs"), 0)), "None");
	json_decref(a);
}

static void
test_cluster_ip_is_kept_and_immutable_on_update(void **state)
{
	(void)state;
	json_t *a = must_create(SVC("a", ""));
	char ip[32];
	snprintf(ip, sizeof ip, "%s", spec_str(a, "clusterIP"));
	json_decref(a);
	/* an update that leaves clusterIP out keeps it (kubectl apply) */
	json_t *upd = json_loads(SVC("a", ", \"sessionAffinity\": \"ClientIP\""), 0, NULL);
	struct api_error err = { 0 };
	json_t *out = NULL;
	assert_int_equal(update_svc(upd, &err, &out), 0);
	assert_string_equal(spec_str(out, "clusterIP"), ip);
	json_decref(out);
	upd = json_loads(SVC("a", ", \"clusterIP\": \"127.2.0.99\""), 0, NULL);
	assert_int_equal(update_svc(upd, &err, NULL), -1);
	assert_int_equal(err.code, 422);
	assert_non_null(strstr(err.message, "spec.clusterIP: Invalid value: \"127.2.0.99\": "
	    "field is immutable"));
	api_error_clear(&err);
	/* the refused address was not taken */
	json_t *b = must_create(SVC("b", ", \"clusterIP\": \"127.2.0.99\""));
	json_decref(b);
}

static void
test_node_ports(void **state)
{
	(void)state;
	json_t *a = must_create(NP_SVC("a", ", \"nodePort\": 30080"));
	assert_int_equal(node_port(a, 0), 30080);
	json_int_t b_port = node_port(a, 1);
	assert_true(b_port >= 30000 && b_port <= 32767 && b_port != 30080);
	assert_string_equal(spec_str(a, "externalTrafficPolicy"), "Cluster");
	must_fail(NP_SVC("b", ", \"nodePort\": 30080"), "spec.ports[0].nodePort",
	    "provided port is already allocated");
	/* update without nodePorts keeps them */
	struct api_error err = { 0 };
	json_t *out = NULL;
	assert_int_equal(update_svc(json_loads(NP_SVC("a", ""), 0, NULL), &err, &out), 0);
	assert_int_equal(node_port(out, 0), 30080);
	assert_int_equal(node_port(out, 1), b_port);
	/* type ClusterIP: the allocated nodePorts go away and are free again */
	json_object_set_new(json_object_get(out, "spec"), "type", json_string("ClusterIP"));
	json_object_del(obj_metadata(out), "resourceVersion");
	json_t *cip = NULL;
	if (update_svc(out, &err, &cip) < 0)
		fail_msg("type change: %s", err.message);
	assert_null(json_object_get(json_array_get(obj_get_path(cip, "spec.ports"), 0),
	    "nodePort"));
	json_decref(cip);
	json_t *b = must_create(NP_SVC("b", ", \"nodePort\": 30080"));
	json_decref(a);
	json_decref(b);
}

/* A dynamic node port is one no program on the host listens on: with every
 * port of the dynamic band but one taken (by this test, or by whoever held
 * it already), the allocation lands on the free one. */
static void
test_node_port_skips_ports_in_use_on_the_host(void **state)
{
	(void)state;
	enum { LO = 30086, HI = 32767 };
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < HI - LO + 200) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)(HI - LO + 200) ? rl.rlim_max : HI - LO + 200;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	static int fds[HI - LO + 1];
	int left = -1;
	for (int p = LO; p <= HI; p++) {
		fds[p - LO] = -1;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fd >= 0);
		int one = 1;	/* as the proxy binds: a port in TIME_WAIT is usable */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p),
			.sin_addr.s_addr = htonl(INADDR_ANY) };
		if (left < 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
			close(fd);	/* the one left free */
			left = p;
			continue;
		}
		if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 1) == 0)
			fds[p - LO] = fd;
		else
			close(fd);	/* in use elsewhere already */
	}
	assert_true(left > 0);
	json_t *a = must_create(NP_SVC("a", ""));
	int got0 = (int)node_port(a, 0), got1 = (int)node_port(a, 1);
	for (int i = 0; i <= HI - LO; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	/* one port of the two is the free one, the other comes from the static
	 * band (30000-30085) once the dynamic band is exhausted */
	print_message("free %d, allocated %d and %d\n", left, got0, got1);
	assert_true(got0 == left || got1 == left);
	assert_true((got0 < LO) != (got1 < LO));
	json_decref(a);
}

static void
test_dry_run_allocates_nothing(void **state)
{
	(void)state;
	struct api_error err = { 0 };
	json_t *a = create_svc(SVC("a", ", \"clusterIP\": \"127.2.0.60\""), API_DRY_RUN, &err);
	assert_non_null(a);
	json_decref(a);
	a = must_create(SVC("a", ", \"clusterIP\": \"127.2.0.60\""));
	json_decref(a);
}

static void
test_allocations_rebuilt_from_the_store(void **state)
{
	(void)state;
	json_t *a = must_create(SVC("a", ", \"clusterIP\": \"127.2.0.70\""));
	json_t *n = must_create(NP_SVC("n", ", \"nodePort\": 31000"));
	api_alloc_forget(api_allocator(E->api));	/* as after a restart */
	must_fail(SVC("b", ", \"clusterIP\": \"127.2.0.70\""), "spec.clusterIP",
	    "already allocated");
	api_alloc_init(api_allocator(E->api));
	must_fail(NP_SVC("m", ", \"nodePort\": 31000"), "spec.ports[0].nodePort",
	    "already allocated");
	json_decref(a);
	json_decref(n);
}

/* A NodePort Service with 70 ports (more than any fixed table): each gets
 * its own node port, all of them held after a rebuild from the store, all
 * free again once it goes. */
static void
test_many_node_ports_all_held(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_printf(&b, "{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\":"
	    " \"many\"}, \"spec\": {\"type\": \"NodePort\", \"ports\": [");
	for (int i = 0; i < 70; i++)
		buf_printf(&b, "%s{\"name\": \"p%d\", \"port\": %d}", i ? ", " : "", i, 1000 + i);
	buf_printf(&b, "]}}");
	json_t *svc = must_create(b.data);
	buf_free(&b);
	json_int_t last = node_port(svc, 69);
	assert_true(last >= 30000 && last <= 32767);
	for (size_t i = 0; i < 69; i++)
		assert_true(node_port(svc, i) >= 30000 && node_port(svc, i) != last);
	char text[512];
	snprintf(text, sizeof text, NP_SVC("m", ", \"nodePort\": %lld"), (long long)last);
	must_fail(text, "spec.ports[0].nodePort", "already allocated");
	api_alloc_forget(api_allocator(E->api));	/* as after a restart */
	api_alloc_init(api_allocator(E->api));
	must_fail(text, "spec.ports[0].nodePort", "already allocated");
	delete_svc("many");
	json_decref(must_create(text));
	json_decref(svc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cluster_ips_are_allocated_from_the_range,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_requested_ip_must_be_free_and_in_range,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_headless_gets_no_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cluster_ip_is_kept_and_immutable_on_update,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run_allocates_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocations_rebuilt_from_the_store,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_node_ports_all_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_port_skips_ports_in_use_on_the_host,
		    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
