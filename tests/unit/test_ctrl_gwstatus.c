/* Unit tests of the Gateway API status controller: the decision
 * (gwstatus_gateway / gwstatus_route: Accepted, Programmed, listeners and
 * attachedRoutes, parents with their reasons, lastTransitionTime kept
 * while a status stays) and the controller against a real store and API
 * server on a private loop (writes once, then never again when idle). */
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

#define T0 "2026-01-01T00:00:00Z"
#define T1 "2026-01-01T00:05:00Z"

/* ---- fixtures ---------------------------------------------------------- */

static json_t *
gateway(const char *ns, const char *name, const char *listeners_json)
{
	json_t *ls = json_loads(listeners_json, 0, NULL);
	assert_non_null(ls);
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:i}, s:{s:s, s:[{s:s}], s:o}}",
	    "apiVersion", "gateway.networking.k8s.io/v1", "kind", "Gateway",
	    "metadata", "name", name, "namespace", ns, "generation", 1,
	    "spec", "gatewayClassName", "v6", "addresses", "value", "127.3.0.1",
	    "listeners", ls);
}

static json_t *
route(const char *ns, const char *name, const char *spec_json)
{
	json_t *spec = json_loads(spec_json, 0, NULL);
	assert_non_null(spec);
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:i}, s:o}",
	    "apiVersion", "gateway.networking.k8s.io/v1", "kind", "HTTPRoute",
	    "metadata", "name", name, "namespace", ns, "generation", 2, "spec", spec);
}

static json_t *
service(const char *ns, const char *name, int port)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:[{s:s, s:i}]}}",
	    "apiVersion", "v1", "kind", "Service", "metadata", "name", name, "namespace", ns,
	    "spec", "ports", "name", "http", "port", port);
}

/* "ns/name" -> object, from a NULL-terminated list (references stolen). */
static json_t *
index_of(json_t *first, ...)
{
	json_t *idx = json_object();
	va_list ap;
	va_start(ap, first);
	for (json_t *o = first; o; o = va_arg(ap, json_t *)) {
		char *k = xasprintf("%s/%s", obj_namespace(o), obj_name(o));
		json_object_set_new(idx, k, o);
		free(k);
	}
	va_end(ap);
	return idx;
}

static const json_t *
cond_of(const json_t *conds, const char *type)
{
	const json_t *c;
	size_t i;
	json_array_foreach(conds, i, c)
		if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0)
			return c;
	return NULL;
}

static void
assert_cond(const json_t *conds, const char *type, const char *status, const char *reason)
{
	const json_t *c = cond_of(conds, type);
	if (c == NULL)
		fail_msg("no condition %s", type);
	assert_string_equal(json_string_value(json_object_get(c, "status")), status);
	assert_string_equal(json_string_value(json_object_get(c, "reason")), reason);
}

static const json_t *
parent_conds(const json_t *st, size_t i)
{
	return json_object_get(json_array_get(json_object_get(st, "parents"), i), "conditions");
}

#define LISTENERS \
	"[{\"name\": \"http\", \"port\": 80, \"protocol\": \"HTTP\"," \
	"  \"hostname\": \"*.example.com\"}," \
	" {\"name\": \"open\", \"port\": 8080, \"protocol\": \"HTTP\"," \
	"  \"allowedRoutes\": {\"namespaces\": {\"from\": \"All\"}}}," \
	" {\"name\": \"tls\", \"port\": 443, \"protocol\": \"HTTPS\"}]"

/* ---- the decision ------------------------------------------------------ */

static void
test_gateway_conditions_listeners_and_attached_routes(void **state)
{
	(void)state;
	json_t *gw = gateway("default", "edge", LISTENERS);
	json_t *routes = index_of(
	    route("default", "shop", "{\"hostnames\": [\"shop.example.com\"],"
	    " \"parentRefs\": [{\"name\": \"edge\"}]}"),
	    route("default", "other-host", "{\"hostnames\": [\"x.other.org\"],"
	    " \"parentRefs\": [{\"name\": \"edge\", \"sectionName\": \"http\"}]}"),
	    route("team", "far", "{\"parentRefs\": [{\"name\": \"edge\", \"namespace\": \"default\"}]}"),
	    NULL);
	json_t *st = gwstatus_gateway(gw, routes, NULL, NULL, true, T0);
	assert_cond(json_object_get(st, "conditions"), "Accepted", "True", "Accepted");
	assert_cond(json_object_get(st, "conditions"), "Programmed", "True", "Programmed");
	assert_string_equal(json_string_value(obj_get_path(json_array_get(json_object_get(st,
	    "addresses"), 0), "value")), "127.3.0.1");
	json_t *ls = json_object_get(st, "listeners");
	assert_int_equal(json_array_size(ls), 3);
	/* "http": shop (hostname matches); not other-host (hostname), not far
	 * (namespace Same). "open": shop and far (All; no hostname). */
	assert_int_equal(json_integer_value(obj_get_path(json_array_get(ls, 0),
	    "attachedRoutes")), 1);
	assert_int_equal(json_integer_value(obj_get_path(json_array_get(ls, 1),
	    "attachedRoutes")), 2);
	assert_cond(json_object_get(json_array_get(ls, 0), "conditions"), "Accepted", "True",
	    "Accepted");
	/* HTTPS without certificateRefs: accepted, refs unresolved, not programmed */
	assert_cond(json_object_get(json_array_get(ls, 2), "conditions"), "Accepted", "True",
	    "Accepted");
	assert_cond(json_object_get(json_array_get(ls, 2), "conditions"), "ResolvedRefs", "False",
	    "InvalidCertificateRef");
	assert_cond(json_object_get(json_array_get(ls, 2), "conditions"), "Programmed", "False",
	    "Invalid");
	json_decref(st);

	/* Without a data plane nothing is programmed yet. */
	st = gwstatus_gateway(gw, routes, NULL, NULL, false, T0);
	assert_cond(json_object_get(st, "conditions"), "Programmed", "False", "Pending");
	json_decref(st);
	json_decref(gw);

	/* HTTP and HTTPS on one port: the first has it, the other conflicts. */
	gw = gateway("default", "mixed", "[{\"name\": \"p\", \"port\": 80, \"protocol\": \"HTTP\"},"
	    " {\"name\": \"s\", \"port\": 80, \"protocol\": \"HTTPS\","
	    "  \"tls\": {\"certificateRefs\": [{\"name\": \"c\"}]}}]");
	st = gwstatus_gateway(gw, routes, NULL, NULL, true, T0);
	ls = json_object_get(st, "listeners");
	assert_null(cond_of(json_object_get(json_array_get(ls, 0), "conditions"), "Conflicted"));
	assert_cond(json_object_get(json_array_get(ls, 1), "conditions"), "Conflicted", "True",
	    "ProtocolConflict");
	assert_cond(json_object_get(json_array_get(ls, 1), "conditions"), "Programmed", "False",
	    "Invalid");
	json_decref(st);
	json_decref(gw);

	/* Only unsupported listeners: not accepted. */
	gw = gateway("default", "tcp", "[{\"name\": \"t\", \"port\": 5432, \"protocol\": \"TCP\"}]");
	st = gwstatus_gateway(gw, routes, NULL, NULL, true, T0);
	assert_cond(json_object_get(st, "conditions"), "Accepted", "False", "ListenersNotValid");
	assert_cond(json_object_get(st, "conditions"), "Programmed", "False", "Invalid");
	json_decref(st);
	json_decref(gw);
	json_decref(routes);
}

static void
test_route_parents_accepted_and_refused_with_reasons(void **state)
{
	(void)state;
	json_t *gws = index_of(gateway("default", "edge", LISTENERS), NULL);
	json_t *svcs = index_of(service("default", "web", 80), service("default", "api", 8080),
	    NULL);
	json_t *r = route("default", "shop", "{\"hostnames\": [\"shop.example.com\"],"
	    " \"parentRefs\": [{\"name\": \"edge\", \"sectionName\": \"http\"},"
	    "   {\"name\": \"gone\"},"
	    "   {\"name\": \"edge\", \"sectionName\": \"tls\"},"
	    "   {\"name\": \"edge\", \"sectionName\": \"nope\"},"
	    "   {\"kind\": \"Service\", \"group\": \"\", \"name\": \"api\", \"port\": 8080}],"
	    " \"rules\": [{\"backendRefs\": [{\"name\": \"web\", \"port\": 80}]}]}");
	json_t *st = gwstatus_route(r, gws, svcs, NULL, T0);
	json_t *parents = json_object_get(st, "parents");
	assert_int_equal(json_array_size(parents), 5);
	const json_t *p0 = json_array_get(parents, 0);
	assert_string_equal(json_string_value(json_object_get(p0, "controllerName")),
	    "v6.dev/gateway-controller");
	assert_string_equal(json_string_value(obj_get_path(p0, "parentRef.kind")), "Gateway");
	assert_string_equal(json_string_value(obj_get_path(p0, "parentRef.group")),
	    "gateway.networking.k8s.io");
	assert_string_equal(json_string_value(obj_get_path(p0, "parentRef.sectionName")), "http");
	assert_cond(parent_conds(st, 0), "Accepted", "True", "Accepted");
	assert_cond(parent_conds(st, 0), "ResolvedRefs", "True", "ResolvedRefs");
	assert_int_equal(json_integer_value(json_object_get(cond_of(parent_conds(st, 0),
	    "Accepted"), "observedGeneration")), 2);
	assert_cond(parent_conds(st, 1), "Accepted", "False", "NoMatchingParent");
	/* the HTTPS listener takes the route (its certificates are its own status) */
	assert_cond(parent_conds(st, 2), "Accepted", "True", "Accepted");
	assert_cond(parent_conds(st, 3), "Accepted", "False", "NoMatchingParent");
	assert_cond(parent_conds(st, 4), "Accepted", "True", "Accepted");
	json_decref(st);
	json_decref(r);

	/* Hostnames that meet no listener; a backend that does not exist. */
	r = route("default", "lost", "{\"hostnames\": [\"a.other.org\"],"
	    " \"parentRefs\": [{\"name\": \"edge\", \"sectionName\": \"http\"}],"
	    " \"rules\": [{\"backendRefs\": [{\"name\": \"web\", \"port\": 80},"
	    "   {\"name\": \"missing\", \"port\": 80}]}]}");
	st = gwstatus_route(r, gws, svcs, NULL, T0);
	assert_cond(parent_conds(st, 0), "Accepted", "False", "NoMatchingListenerHostname");
	assert_cond(parent_conds(st, 0), "ResolvedRefs", "False", "BackendNotFound");
	json_decref(st);
	json_decref(r);

	/* A backend of another kind; a Service port that does not exist. */
	r = route("default", "odd", "{\"parentRefs\": [{\"name\": \"edge\"}],"
	    " \"rules\": [{\"backendRefs\": [{\"kind\": \"Bucket\", \"group\": \"s3\","
	    "   \"name\": \"b\", \"port\": 1}]}]}");
	st = gwstatus_route(r, gws, svcs, NULL, T0);
	assert_cond(parent_conds(st, 0), "Accepted", "True", "Accepted");
	assert_cond(parent_conds(st, 0), "ResolvedRefs", "False", "InvalidKind");
	json_decref(st);
	json_decref(r);
	r = route("default", "port", "{\"parentRefs\": [{\"name\": \"edge\"}],"
	    " \"rules\": [{\"backendRefs\": [{\"name\": \"web\", \"port\": 81}]}]}");
	st = gwstatus_route(r, gws, svcs, NULL, T0);
	assert_cond(parent_conds(st, 0), "ResolvedRefs", "False", "BackendNotFound");
	json_decref(st);
	json_decref(r);

	/* A Service of another namespace: only with a ReferenceGrant there. */
	json_t *other = index_of(service("default", "web", 80), service("shop", "web", 80), NULL);
	r = route("default", "cross", "{\"parentRefs\": [{\"name\": \"edge\"}],"
	    " \"rules\": [{\"backendRefs\": [{\"name\": \"web\", \"namespace\": \"shop\","
	    "   \"port\": 80}]}]}");
	st = gwstatus_route(r, gws, other, NULL, T0);
	assert_cond(parent_conds(st, 0), "ResolvedRefs", "False", "RefNotPermitted");
	json_decref(st);
	json_t *grants = json_pack("[{s:{s:s, s:s}, s:{s:[{s:s, s:s, s:s}], s:[{s:s, s:s}]}}]",
	    "metadata", "namespace", "shop", "name", "from-default", "spec", "from", "group",
	    "gateway.networking.k8s.io", "kind", "HTTPRoute", "namespace", "default", "to",
	    "group", "", "kind", "Service");
	st = gwstatus_route(r, gws, other, grants, T0);
	assert_cond(parent_conds(st, 0), "ResolvedRefs", "True", "ResolvedRefs");
	json_decref(st);
	json_decref(grants);
	json_decref(other);
	json_decref(r);
	json_decref(gws);
	json_decref(svcs);
}

static void
test_transition_time_kept_while_status_stays(void **state)
{
	(void)state;
	json_t *gws = index_of(gateway("default", "edge", LISTENERS), NULL);
	json_t *svcs = index_of(service("default", "web", 80), NULL);
	json_t *r = route("default", "shop", "{\"parentRefs\": [{\"name\": \"edge\","
	    " \"sectionName\": \"open\"}], \"rules\": [{\"backendRefs\": [{\"name\": \"web\","
	    " \"port\": 80}]}]}");
	json_object_set_new(r, "status", gwstatus_route(r, gws, svcs, NULL, T0));
	/* Later, nothing changed: the same status, so the controller writes nothing. */
	json_t *again = gwstatus_route(r, gws, svcs, NULL, T1);
	assert_true(json_equal(again, json_object_get(r, "status")));
	json_decref(again);
	/* The Service goes: ResolvedRefs flips (new time), Accepted keeps T0. */
	json_object_del(svcs, "default/web");
	json_t *st = gwstatus_route(r, gws, svcs, NULL, T1);
	const json_t *acc = cond_of(parent_conds(st, 0), "Accepted");
	const json_t *res = cond_of(parent_conds(st, 0), "ResolvedRefs");
	assert_string_equal(json_string_value(json_object_get(acc, "lastTransitionTime")), T0);
	assert_string_equal(json_string_value(json_object_get(res, "lastTransitionTime")), T1);
	assert_string_equal(json_string_value(json_object_get(res, "status")), "False");
	json_decref(st);
	json_decref(r);

	json_t *gw = gateway("default", "edge", LISTENERS), *routes = json_object();
	json_object_set_new(gw, "status", gwstatus_gateway(gw, routes, NULL, NULL, true, T0));
	again = gwstatus_gateway(gw, routes, NULL, NULL, true, T1);
	assert_true(json_equal(again, json_object_get(gw, "status")));
	json_decref(again);
	json_decref(gw);
	json_decref(routes);
	json_decref(gws);
	json_decref(svcs);
}

/* ---- the controller ------------------------------------------------------ */

struct env {
	struct api_env a;
	struct ctrl_gwstatus *c;
};

static json_t *
get(struct env *e, const char *kind, const char *name)
{
	struct api_error err = { 0 };
	json_t *o = NULL;
	api_get(e->a.api, kind_find_gvk("gateway.networking.k8s.io/v1", kind), "default", name,
	    &o, &err);
	api_error_clear(&err);
	return o;
}

static int
env_setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	api_env_open(&e->a);
	assert_int_equal(ctrl_gwstatus_start(e->a.api, true, &e->c), 0);
	*state = e;
	return 0;
}

static int
env_teardown(void **state)
{
	struct env *e = *state;
	ctrl_gwstatus_stop(e->c);
	api_env_close(&e->a);
	free(e);
	return 0;
}

static void
test_controller_writes_status_once_and_follows_changes(void **state)
{
	struct env *e = *state;
	api_env_create(&e->a, service("default", "web", 80));
	api_env_create(&e->a, gateway("default", "edge", "[{\"name\": \"http\", \"port\": 18080,"
	    " \"protocol\": \"HTTP\"}]"));
	json_t *r = route("default", "shop", "{\"parentRefs\": [{\"name\": \"edge\"}],"
	    " \"rules\": [{\"backendRefs\": [{\"name\": \"web\", \"port\": 80}]}]}");
	json_object_del(json_object_get(r, "metadata"), "generation");
	api_env_create(&e->a, r);
	api_env_pump(&e->a);
	json_t *gw = get(e, "Gateway", "edge"), *rt = get(e, "HTTPRoute", "shop");
	assert_cond(obj_get_path(gw, "status.conditions"), "Programmed", "True", "Programmed");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(obj_get_path(gw,
	    "status.listeners"), 0), "attachedRoutes")), 1);
	assert_cond(json_object_get(json_array_get(obj_get_path(rt, "status.parents"), 0),
	    "conditions"), "Accepted", "True", "Accepted");
	json_decref(gw);
	json_decref(rt);

	/* Idle: our own writes come back as events and change nothing. */
	size_t writes = ctrl_gwstatus_writes(e->c);
	assert_true(writes >= 2);
	api_env_pump(&e->a);
	api_env_pump(&e->a);
	assert_int_equal(ctrl_gwstatus_writes(e->c), writes);

	/* The Gateway goes: the route reports it. */
	struct api_error err = { 0 };
	assert_int_equal(api_delete(e->a.api, kind_find_gvk("gateway.networking.k8s.io/v1",
	    "Gateway"), "default", "edge", API_PROPAGATE_BACKGROUND, NULL, 0, 0, NULL, &err), 0);
	api_error_clear(&err);
	api_env_pump(&e->a);
	rt = get(e, "HTTPRoute", "shop");
	assert_cond(json_object_get(json_array_get(obj_get_path(rt, "status.parents"), 0),
	    "conditions"), "Accepted", "False", "NoMatchingParent");
	json_decref(rt);
	assert_int_equal(ctrl_gwstatus_writes(e->c), writes + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gateway_conditions_listeners_and_attached_routes),
		cmocka_unit_test(test_route_parents_accepted_and_refused_with_reasons),
		cmocka_unit_test(test_transition_time_kept_while_status_stays),
		cmocka_unit_test_setup_teardown(test_controller_writes_status_once_and_follows_changes,
		    env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
