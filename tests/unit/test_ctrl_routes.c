/* test_ctrl_routes.c — routes_build(), the mapping from Services,
 * Endpoints, Pods, Gateways and HTTPRoutes to the proxy's routing snapshot
 * (ctrl_routes.c): listeners and clusters per Service port, NodePort,
 * headless, the HTTP/TCP rule, revisions, HTTPRoutes on Gateways and on
 * Services (weights, matches, filters, timeouts, precedence), stable names,
 * deterministic output, and that the proxy engine accepts what is built. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrl.h"
#include "log.h"
#include "proxy.h"
#include "util.h"
#include "api_env.h"

#define GW_GROUP_V1 "gateway.networking.k8s.io/v1"

static json_t *
J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (j == NULL)
		fail_msg("bad test JSON at %d: %s", e.position, e.text);
	return j;
}

static json_t *
svc_web(void)
{
	return J("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"namespace\":"
	    "\"default\",\"name\":\"web\"},\"spec\":{\"type\":\"ClusterIP\",\"clusterIP\":"
	    "\"127.2.0.5\",\"selector\":{\"app\":\"web\"},\"ports\":["
	    "{\"name\":\"http\",\"port\":80,\"targetPort\":8080,\"protocol\":\"TCP\"},"
	    "{\"name\":\"metrics\",\"port\":9100,\"targetPort\":9100,\"protocol\":\"TCP\"}]}}");
}

static json_t *
ep_web(void)
{
	return J("{\"apiVersion\":\"v1\",\"kind\":\"Endpoints\",\"metadata\":{\"namespace\":"
	    "\"default\",\"name\":\"web\"},\"subsets\":[{\"addresses\":["
	    "{\"ip\":\"127.1.0.9\",\"targetRef\":{\"kind\":\"Pod\",\"namespace\":\"default\","
	    "\"name\":\"web-7c5d-b\"}},"
	    "{\"ip\":\"127.1.0.3\",\"targetRef\":{\"kind\":\"Pod\",\"namespace\":\"default\","
	    "\"name\":\"web-6d9d-a\"}}],"
	    "\"notReadyAddresses\":[{\"ip\":\"127.1.0.7\",\"targetRef\":{\"kind\":\"Pod\","
	    "\"name\":\"web-7c5d-c\"}}],"
	    "\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"},"
	    "{\"name\":\"metrics\",\"port\":9100,\"protocol\":\"TCP\"}]}]}");
}

static json_t *
pods_web(void)
{
	return J("[{\"metadata\":{\"namespace\":\"default\",\"name\":\"web-6d9d-a\","
	    "\"labels\":{\"app\":\"web\",\"pod-template-hash\":\"6d9d\"}}},"
	    "{\"metadata\":{\"namespace\":\"default\",\"name\":\"web-7c5d-b\","
	    "\"labels\":{\"app\":\"web\",\"pod-template-hash\":\"7c5d\"}}}]");
}

static const json_t *
listener(const json_t *snap, const char *name)
{
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(snap, "listeners"), i, l)
		if (strcmp(json_string_value(json_object_get(l, "name")), name) == 0)
			return l;
	return NULL;
}

static const char *
sget(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static json_int_t
iget(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static json_t *
build1(json_t *svc, json_t *ep, json_t *pods, json_t *routes, json_t *gws, int64_t v)
{
	json_t *svcs = json_array(), *eps = json_array();
	if (svc)
		json_array_append_new(svcs, svc);
	if (ep)
		json_array_append_new(eps, ep);
	json_t *snap = routes_build(svcs, eps, pods, routes, gws, NULL, NULL, v);
	json_decref(svcs);
	json_decref(eps);
	json_decref(pods);
	json_decref(routes);
	json_decref(gws);
	return snap;
}

static void
test_service_port_becomes_listener_and_cluster(void **state)
{
	(void)state;
	json_t *snap = build1(svc_web(), ep_web(), pods_web(), NULL, NULL, 42);
	assert_int_equal(iget(snap, "version"), 42);
	assert_int_equal(json_array_size(json_object_get(snap, "listeners")), 2);
	const json_t *l = listener(snap, "svc/default/web/http");
	assert_non_null(l);
	assert_string_equal(sget(l, "address"), "127.2.0.5");
	assert_int_equal(iget(l, "port"), 80);
	assert_string_equal(sget(l, "protocol"), "HTTP");
	json_t *r = json_array_get(json_object_get(l, "routes"), 0);
	assert_int_equal(json_array_size(json_object_get(l, "routes")), 1);
	assert_string_equal(sget(r, "name"), "svc/default/web");
	json_t *be = json_array_get(json_object_get(r, "backends"), 0);
	assert_string_equal(sget(be, "cluster"), "default/web:http");

	json_t *c = json_object_get(json_object_get(snap, "clusters"), "default/web:http");
	assert_non_null(c);
	assert_string_equal(sget(c, "service"), "default/web");
	assert_string_equal(sget(c, "lb"), "round_robin");
	json_t *eps = json_object_get(c, "endpoints");
	assert_int_equal(json_array_size(eps), 2);	/* the not-ready one left out */
	json_t *e0 = json_array_get(eps, 0), *e1 = json_array_get(eps, 1);
	assert_string_equal(sget(e0, "address"), "127.1.0.3");	/* sorted */
	assert_int_equal(iget(e0, "port"), 8080);		/* the target port */
	assert_string_equal(sget(e0, "pod"), "web-6d9d-a");
	assert_string_equal(sget(e0, "revision"), "6d9d");
	assert_string_equal(sget(e1, "revision"), "7c5d");
	json_t *m = json_object_get(json_object_get(snap, "clusters"), "default/web:metrics");
	assert_int_equal(iget(json_array_get(json_object_get(m, "endpoints"), 0), "port"), 9100);
	json_decref(snap);
}

static void
test_nodeport_headless_and_unallocated(void **state)
{
	(void)state;
	json_t *svc = svc_web();
	json_object_set_new(json_object_get(svc, "spec"), "type", json_string("NodePort"));
	json_object_set_new(json_array_get(json_object_get(json_object_get(svc, "spec"), "ports"),
	    0), "nodePort", json_integer(30080));
	json_t *snap = build1(svc, ep_web(), pods_web(), NULL, NULL, 1);
	const json_t *np = listener(snap, "svc/default/web/http/nodeport");
	assert_non_null(np);
	assert_string_equal(sget(np, "address"), "0.0.0.0");
	assert_int_equal(iget(np, "port"), 30080);
	assert_string_equal(sget(json_array_get(json_object_get(np, "routes"), 0), "name"),
	    "svc/default/web");
	assert_non_null(listener(snap, "svc/default/web/http"));
	json_decref(snap);

	svc = svc_web();
	json_object_set_new(json_object_get(svc, "spec"), "clusterIP", json_string("None"));
	snap = build1(svc, ep_web(), pods_web(), NULL, NULL, 1);
	assert_int_equal(json_array_size(json_object_get(snap, "listeners")), 0);
	/* still a cluster, for routes that name the Service */
	assert_non_null(json_object_get(json_object_get(snap, "clusters"), "default/web:http"));
	json_decref(snap);

	svc = svc_web();
	json_object_del(json_object_get(svc, "spec"), "clusterIP");
	snap = build1(svc, NULL, NULL, NULL, NULL, 1);
	assert_int_equal(json_array_size(json_object_get(snap, "listeners")), 0);
	json_decref(snap);
}

/* One Service per port spec; which protocol each listener gets. */
static void
test_http_or_tcp_rule(void **state)
{
	(void)state;
	static const struct {
		const char *port;
		const char *want;	/* "HTTP", "TCP", or NULL: no listener */
	} cases[] = {
		{ "{\"port\":80}", "HTTP" },
		{ "{\"port\":8080,\"name\":\"web\"}", "HTTP" },
		{ "{\"port\":9000,\"name\":\"http-admin\"}", "HTTP" },
		{ "{\"port\":9000,\"name\":\"tcp-admin\",\"appProtocol\":\"http\"}", "HTTP" },
		{ "{\"port\":9000,\"appProtocol\":\"kubernetes.io/ws\"}", "HTTP" },
		{ "{\"port\":80,\"appProtocol\":\"tcp\"}", "TCP" },
		{ "{\"port\":80,\"appProtocol\":\"kubernetes.io/h2c\"}", "TCP" },
		{ "{\"port\":9000,\"name\":\"grpc\"}", "TCP" },
		{ "{\"port\":9000,\"name\":\"tcp\"}", "TCP" },
		{ "{\"port\":9000,\"name\":\"postgres-main\"}", "TCP" },
		{ "{\"port\":9000,\"name\":\"http2\"}", "TCP" },
		{ "{\"port\":5432}", "TCP" },
		{ "{\"port\":6379}", "TCP" },
		{ "{\"port\":53,\"protocol\":\"UDP\"}", NULL },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *text = xasprintf("{\"kind\":\"Service\",\"metadata\":{\"namespace\":\"ns\","
		    "\"name\":\"s\"},\"spec\":{\"clusterIP\":\"127.2.0.9\",\"ports\":[%s]}}",
		    cases[i].port);
		json_t *snap = build1(J(text), NULL, NULL, NULL, NULL, 1);
		json_t *l = json_array_get(json_object_get(snap, "listeners"), 0);
		if (cases[i].want == NULL) {
			assert_null(l);
		} else {
			assert_non_null(l);
			if (strcmp(sget(l, "protocol"), cases[i].want) != 0)
				fail_msg("%s: got %s, want %s", cases[i].port, sget(l, "protocol"),
				    cases[i].want);
			if (strcmp(cases[i].want, "TCP") == 0) {
				assert_null(json_object_get(l, "routes"));
				assert_non_null(json_object_get(json_object_get(snap, "clusters"),
				    sget(l, "cluster")));
			}
		}
		json_decref(snap);
		free(text);
	}
}

static json_t *
svc_named(const char *name, const char *ip)
{
	char *t = xasprintf("{\"kind\":\"Service\",\"metadata\":{\"namespace\":\"default\","
	    "\"name\":\"%s\"},\"spec\":{\"clusterIP\":\"%s\",\"ports\":[{\"name\":\"http\","
	    "\"port\":80,\"targetPort\":8080}]}}", name, ip);
	json_t *j = J(t);
	free(t);
	return j;
}

static json_t *
gateway(void)
{
	return J("[{\"kind\":\"Gateway\",\"metadata\":{\"namespace\":\"default\",\"name\":\"edge\"},"
	    "\"spec\":{\"gatewayClassName\":\"v6\",\"listeners\":["
	    "{\"name\":\"web\",\"port\":8088,\"protocol\":\"HTTP\",\"hostname\":\"*.example.com\"},"
	    "{\"name\":\"open\",\"port\":8089,\"protocol\":\"HTTP\",\"allowedRoutes\":"
	    "{\"namespaces\":{\"from\":\"All\"}}},"
	    "{\"name\":\"tls\",\"port\":8443,\"protocol\":\"HTTPS\"}]}}]");
}

static json_t *
canary_route(const char *ns, const char *parent)
{
	char *t = xasprintf("{\"kind\":\"HTTPRoute\",\"metadata\":{\"namespace\":\"%s\","
	    "\"name\":\"shop\",\"creationTimestamp\":\"2026-01-01T00:00:00Z\"},\"spec\":{"
	    "\"parentRefs\":[%s],\"hostnames\":[\"shop.example.com\"],\"rules\":["
	    "{\"backendRefs\":[{\"name\":\"web\",\"namespace\":\"default\",\"port\":80}]},"
	    "{\"matches\":[{\"path\":{\"type\":\"Exact\",\"value\":\"/api\"},"
	    "\"headers\":[{\"name\":\"x-canary\",\"value\":\"1\"}]}],"
	    "\"filters\":[{\"type\":\"RequestHeaderModifier\",\"requestHeaderModifier\":"
	    "{\"set\":[{\"name\":\"x-v6\",\"value\":\"yes\"}],\"remove\":[\"x-drop\"]}}],"
	    "\"timeouts\":{\"request\":\"10s\"},"
	    "\"backendRefs\":[{\"name\":\"web\",\"namespace\":\"default\",\"port\":80,\"weight\":90},"
	    "{\"name\":\"web-canary\",\"namespace\":\"default\",\"port\":80,\"weight\":10}]}]}}",
	    ns, parent);
	json_t *j = J(t);
	free(t);
	return j;
}

static json_t *
two_services(void)
{
	json_t *a = json_array();
	json_array_append_new(a, svc_named("web", "127.2.0.5"));
	json_array_append_new(a, svc_named("web-canary", "127.2.0.6"));
	return a;
}

static void
test_httproute_on_gateway(void **state)
{
	(void)state;
	json_t *routes = json_array();
	json_array_append_new(routes, canary_route("default",
	    "{\"name\":\"edge\",\"sectionName\":\"web\"}"));
	json_t *svcs = two_services(), *gws = gateway();
	json_t *snap = routes_build(svcs, NULL, NULL, routes, gws, NULL, NULL, 7);
	assert_null(listener(snap, "gw/default/edge/tls"));	/* HTTPS without a certificate */
	const json_t *l = listener(snap, "gw/default/edge/web");
	assert_non_null(l);
	assert_string_equal(sget(l, "address"), "0.0.0.0");
	assert_int_equal(iget(l, "port"), 8088);
	json_t *rs = json_object_get(l, "routes");
	assert_int_equal(json_array_size(rs), 2);
	/* Exact /api with a header wins over the catch-all rule listed first. */
	json_t *r0 = json_array_get(rs, 0), *r1 = json_array_get(rs, 1);
	assert_string_equal(sget(r0, "name"), "httproute/default/shop/1");
	assert_string_equal(sget(r1, "name"), "httproute/default/shop/0");
	assert_string_equal(json_string_value(json_array_get(json_object_get(r0, "hostnames"), 0)),
	    "shop.example.com");
	json_t *m = json_array_get(json_object_get(r0, "matches"), 0);
	assert_string_equal(sget(json_object_get(m, "path"), "type"), "Exact");
	assert_string_equal(sget(json_array_get(json_object_get(m, "headers"), 0), "name"),
	    "x-canary");
	json_t *m1 = json_object_get(json_array_get(json_object_get(r1, "matches"), 0), "path");
	assert_string_equal(sget(m1, "type"), "PathPrefix");
	assert_string_equal(sget(m1, "value"), "/");
	json_t *be = json_object_get(r0, "backends");
	assert_int_equal(json_array_size(be), 2);
	assert_string_equal(sget(json_array_get(be, 0), "cluster"), "default/web:http");
	assert_int_equal(iget(json_array_get(be, 0), "weight"), 90);
	assert_string_equal(sget(json_array_get(be, 1), "cluster"), "default/web-canary:http");
	assert_int_equal(iget(json_array_get(be, 1), "weight"), 10);
	assert_int_equal(iget(json_array_get(json_object_get(r1, "backends"), 0), "weight"), 1);
	json_t *f = json_array_get(json_object_get(r0, "filters"), 0);
	assert_string_equal(sget(f, "type"), "RequestHeaderModifier");
	assert_string_equal(sget(json_array_get(json_object_get(f, "set"), 0), "name"), "x-v6");
	assert_string_equal(json_string_value(json_array_get(json_object_get(f, "remove"), 0)),
	    "x-drop");
	assert_string_equal(sget(json_object_get(r0, "timeouts"), "request"), "10s");
	assert_null(json_object_get(r1, "filters"));
	json_decref(snap);

	/* A route from another namespace: refused by "Same", taken by "All". */
	json_array_clear(routes);
	json_array_append_new(routes, canary_route("team",
	    "{\"name\":\"edge\",\"namespace\":\"default\"}"));
	snap = routes_build(svcs, NULL, NULL, routes, gws, NULL, NULL, 8);
	assert_int_equal(json_array_size(json_object_get(listener(snap, "gw/default/edge/web"),
	    "routes")), 0);
	const json_t *open = listener(snap, "gw/default/edge/open");
	assert_int_equal(json_array_size(json_object_get(open, "routes")), 2);
	json_decref(snap);

	/* Hostnames that do not intersect the listener's: not attached. */
	json_array_clear(routes);
	json_t *r = canary_route("default", "{\"name\":\"edge\",\"sectionName\":\"web\"}");
	json_object_set_new(json_object_get(r, "spec"), "hostnames", J("[\"shop.other.org\"]"));
	json_array_append_new(routes, r);
	snap = routes_build(svcs, NULL, NULL, routes, gws, NULL, NULL, 9);
	assert_int_equal(json_array_size(json_object_get(listener(snap, "gw/default/edge/web"),
	    "routes")), 0);
	json_decref(snap);
	json_decref(routes);
	json_decref(svcs);
	json_decref(gws);
}

static void
test_httproute_on_service_gamma(void **state)
{
	(void)state;
	json_t *routes = json_array();
	json_t *r = canary_route("default", "{\"kind\":\"Service\",\"group\":\"\","
	    "\"name\":\"web\",\"port\":80}");
	json_object_del(json_object_get(r, "spec"), "hostnames");
	json_array_append_new(routes, r);
	json_t *svcs = two_services();
	json_t *snap = routes_build(svcs, NULL, NULL, routes, NULL, NULL, NULL, 3);
	const json_t *l = listener(snap, "svc/default/web/http");
	json_t *rs = json_object_get(l, "routes");
	assert_int_equal(json_array_size(rs), 3);
	assert_string_equal(sget(json_array_get(rs, 0), "name"), "httproute/default/shop/1");
	assert_string_equal(sget(json_array_get(rs, 1), "name"), "httproute/default/shop/0");
	assert_string_equal(sget(json_array_get(rs, 2), "name"), "svc/default/web");
	assert_int_equal(json_array_size(json_object_get(json_array_get(rs, 0), "hostnames")), 0);
	/* The canary Service's own listener is untouched. */
	assert_int_equal(json_array_size(json_object_get(listener(snap,
	    "svc/default/web-canary/http"), "routes")), 1);
	json_decref(snap);

	/* A backend Service that does not exist: an empty cluster, never a
	 * dangling name (the proxy would refuse the whole snapshot). */
	json_array_clear(routes);
	r = canary_route("default", "{\"kind\":\"Service\",\"name\":\"web\"}");
	json_object_set_new(json_array_get(json_object_get(json_array_get(obj_get_path(r,
	    "spec.rules"), 1), "backendRefs"), 1), "name", json_string("ghost"));
	json_array_append_new(routes, r);
	snap = routes_build(svcs, NULL, NULL, routes, NULL, NULL, NULL, 4);
	json_t *ghost = json_object_get(json_object_get(snap, "clusters"), "default/ghost:80");
	assert_non_null(ghost);
	assert_int_equal(json_array_size(json_object_get(ghost, "endpoints")), 0);
	json_decref(snap);
	json_decref(routes);
	json_decref(svcs);
}

static void
test_output_is_deterministic_and_names_stable(void **state)
{
	(void)state;
	json_t *svcs = two_services(), *rev = json_array();
	json_array_append(rev, json_array_get(svcs, 1));
	json_array_append(rev, json_array_get(svcs, 0));
	json_t *eps = json_array(), *eps_obj = json_object();
	json_array_append_new(eps, ep_web());
	json_object_set(eps_obj, "default/web", json_array_get(eps, 0));
	json_t *routes = json_array();
	json_array_append_new(routes, canary_route("default", "{\"name\":\"edge\"}"));
	json_t *gws = gateway(), *pods = pods_web();
	json_t *a = routes_build(svcs, eps, pods, routes, gws, NULL, NULL, 5);
	json_t *b = routes_build(rev, eps_obj, pods, routes, gws, NULL, NULL, 5);
	char *ta = json_dumps(a, JSON_COMPACT), *tb = json_dumps(b, JSON_COMPACT);
	assert_string_equal(ta, tb);
	/* Listeners come sorted by name. */
	json_t *ls = json_object_get(a, "listeners");
	for (size_t i = 1; i < json_array_size(ls); i++)
		assert_true(strcmp(sget(json_array_get(ls, i - 1), "name"),
		    sget(json_array_get(ls, i), "name")) < 0);
	/* Another version changes nothing else. */
	json_t *c = routes_build(svcs, eps, pods, routes, gws, NULL, NULL, 6);
	json_object_del(c, "version");
	json_object_del(a, "version");
	assert_true(json_equal(a, c));
	free(ta);
	free(tb);
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(svcs);
	json_decref(rev);
	json_decref(eps);
	json_decref(eps_obj);
	json_decref(routes);
	json_decref(gws);
	json_decref(pods);
}

static json_t *
grant(const char *from_ns, const char *to_name)
{
	char *t = xasprintf("{\"kind\":\"ReferenceGrant\",\"metadata\":{\"namespace\":"
	    "\"default\",\"name\":\"g\"},\"spec\":{\"from\":[{\"group\":"
	    "\"gateway.networking.k8s.io\",\"kind\":\"HTTPRoute\",\"namespace\":\"%s\"}],"
	    "\"to\":[{\"group\":\"\",\"kind\":\"Service\"%s%s%s}]}}", from_ns,
	    to_name ? ",\"name\":\"" : "", to_name ? to_name : "", to_name ? "\"" : "");
	json_t *j = J(t);
	free(t);
	return j;
}

/* The cluster of backend i of the route's rule on listener gw/default/edge/open. */
static const char *
open_backend(const json_t *snap, const char *rule, size_t i)
{
	const json_t *r;
	size_t k;
	json_array_foreach(json_object_get(listener(snap, "gw/default/edge/open"), "routes"), k, r)
		if (!strcmp(sget(r, "name"), rule))
			return sget(json_array_get(json_object_get(r, "backends"), i), "cluster");
	fail_msg("no route %s", rule);
	return NULL;
}

/* A backendRef into another namespace routes only when a ReferenceGrant of
 * that namespace lets the route's namespace refer to the Service; refused,
 * its share goes to a cluster without endpoints (never the Service's). */
static void
test_cross_namespace_backend_needs_a_grant(void **state)
{
	(void)state;
	json_t *svcs = two_services(), *gws = gateway(), *routes = json_array();
	json_array_append_new(svcs, svc_web());
	json_array_append_new(routes, canary_route("shop", "{\"name\":\"edge\",\"namespace\":"
	    "\"default\",\"sectionName\":\"open\"}"));
	json_t *eps = json_array(), *grants = json_array();
	json_array_append_new(eps, ep_web());
	json_t *snap = routes_build(svcs, eps, NULL, routes, gws, NULL, NULL, 1);
	assert_string_equal(open_backend(snap, "httproute/shop/shop/0", 0), "refused/default/web:80");
	assert_int_equal(json_array_size(json_object_get(json_object_get(json_object_get(snap,
	    "clusters"), "refused/default/web:80"), "endpoints")), 0);
	json_decref(snap);

	json_array_append_new(grants, grant("other", NULL));	/* another namespace's */
	snap = routes_build(svcs, eps, NULL, routes, gws, NULL, grants, 2);
	assert_string_equal(open_backend(snap, "httproute/shop/shop/0", 0), "refused/default/web:80");
	json_decref(snap);

	json_array_clear(grants);
	json_array_append_new(grants, grant("shop", "web-canary"));	/* one Service by name */
	snap = routes_build(svcs, eps, NULL, routes, gws, NULL, grants, 3);
	assert_string_equal(open_backend(snap, "httproute/shop/shop/1", 0), "refused/default/web:80");
	assert_string_equal(open_backend(snap, "httproute/shop/shop/1", 1), "default/web-canary:http");
	json_decref(snap);

	json_array_clear(grants);
	json_array_append_new(grants, grant("shop", NULL));		/* every Service */
	snap = routes_build(svcs, eps, NULL, routes, gws, NULL, grants, 4);
	assert_string_equal(open_backend(snap, "httproute/shop/shop/0", 0), "default/web:http");
	assert_int_equal(json_array_size(json_object_get(json_object_get(json_object_get(snap,
	    "clusters"), "default/web:http"), "endpoints")), 2);
	assert_null(json_object_get(json_object_get(snap, "clusters"), "refused/default/web:80"));
	json_decref(snap);

	assert_true(gw_ref_permitted(NULL, "gateway.networking.k8s.io", "HTTPRoute", "a", "",
	    "Service", "a", "x"));				/* one namespace: always */
	assert_false(gw_ref_permitted(grants, "gateway.networking.k8s.io", "GRPCRoute", "shop",
	    "", "Service", "default", "web"));		/* not the kind granted */
	assert_false(gw_ref_permitted(grants, "gateway.networking.k8s.io", "HTTPRoute", "shop",
	    "", "Secret", "default", "web"));		/* not the target kind */
	assert_true(gw_ref_permitted(grants, "gateway.networking.k8s.io", "HTTPRoute", "shop",
	    "core", "Service", "default", "web"));	/* "core" is "" */
	json_decref(grants);
	json_decref(eps);
	json_decref(routes);
	json_decref(gws);
	json_decref(svcs);
}

/* The engine takes the builder's output (listeners on free loopback ports). */
static void
test_engine_accepts_built_snapshot(void **state)
{
	(void)state;
	json_t *svcs = json_array();
	json_array_append_new(svcs, J("{\"kind\":\"Service\",\"metadata\":{\"namespace\":"
	    "\"default\",\"name\":\"web\",\"annotations\":{\"v6.dev/load-balancing\":"
	    "\"least_request\"}},\"spec\":{\"clusterIP\":\"127.0.0.1\",\"type\":\"NodePort\","
	    "\"ports\":[{\"name\":\"http\",\"port\":38571,\"nodePort\":38572},"
	    "{\"name\":\"tcp\",\"port\":38573}]}}"));
	json_t *eps = json_array();
	json_array_append_new(eps, J("{\"metadata\":{\"namespace\":\"default\",\"name\":\"web\"},"
	    "\"subsets\":[{\"addresses\":[{\"ip\":\"127.0.0.1\"}],\"ports\":[{\"name\":\"http\","
	    "\"port\":38574},{\"name\":\"tcp\",\"port\":38575}]}]}"));
	json_t *routes = json_array();
	json_t *r = canary_route("default", "{\"kind\":\"Service\",\"name\":\"web\"}");
	json_object_del(json_object_get(r, "spec"), "hostnames");
	json_array_append_new(routes, r);
	json_t *snap = routes_build(svcs, eps, NULL, routes, NULL, NULL, NULL, 11);
	assert_string_equal(sget(json_object_get(json_object_get(snap, "clusters"),
	    "default/web:http"), "lb"), "least_request");
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct proxy_engine *e = proxy_engine_new(&loop);
	char *err = NULL;
	int rc = proxy_engine_apply(e, snap, &err);
	if (rc < 0)
		fail_msg("engine refused the snapshot: %s", err);
	assert_int_equal(proxy_engine_version(e), 11);
	free(err);
	proxy_engine_free(e);
	for (int i = 0; i < 10; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	json_decref(snap);
	json_decref(svcs);
	json_decref(eps);
	json_decref(routes);
}

/* ---- the watcher on a real store ---------------------------------------- */

struct env {
	struct api_env a;
	struct ctrl_endpoints *ep;
	struct ctrl_routes *routes;
};

static const json_t *
current_cluster(struct env *e)
{
	return json_object_get(json_object_get(ctrl_routes_current(e->routes), "clusters"),
	    "default/web:http");
}

static void
test_watcher_rebuilds_on_changes(void **state)
{
	(void)state;
	struct env env = { 0 }, *e = &env;
	api_env_open(&e->a);
	assert_int_equal(ctrl_endpoints_start(e->a.api, &e->ep), 0);
	assert_int_equal(ctrl_routes_start(e->a.api, NULL, &e->routes), 0);
	assert_int_equal(json_array_size(json_object_get(ctrl_routes_current(e->routes),
	    "listeners")), 0);

	api_env_create(&e->a, J("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"namespace\":"
	    "\"default\",\"name\":\"web\"},\"spec\":{\"selector\":{\"app\":\"web\"},"
	    "\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080}]}}"));
	api_env_create(&e->a, J("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"namespace\":"
	    "\"default\",\"name\":\"web-abc-1\",\"labels\":{\"app\":\"web\","
	    "\"pod-template-hash\":\"abc\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
	    "\"image\":\"img\"}]}}"));
	api_env_pump(&e->a);
	assert_non_null(current_cluster(e));
	assert_int_equal(json_array_size(json_object_get(current_cluster(e), "endpoints")), 0);
	uint64_t builds = ctrl_routes_builds(e->routes);

	api_env_pod_status(&e->a, "web-abc-1", "127.1.0.42", true);
	api_env_pump(&e->a);
	const json_t *eps = json_object_get(current_cluster(e), "endpoints");
	assert_int_equal(json_array_size(eps), 1);
	json_t *ep0 = json_array_get(eps, 0);
	assert_string_equal(sget(ep0, "address"), "127.1.0.42");
	assert_string_equal(sget(ep0, "revision"), "abc");
	/* the version is the store's, and builds are debounced per loop turn */
	assert_int_equal(iget(ctrl_routes_current(e->routes), "version"),
	    store_current_rv(e->a.st));
	assert_true(ctrl_routes_builds(e->routes) - builds <= 2);

	/* a pod change that moves nothing in the table: no rebuild, but the
	 * version follows the store */
	builds = ctrl_routes_builds(e->routes);
	api_env_create(&e->a, J("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"namespace\":"
	    "\"default\",\"name\":\"lonely\"},\"spec\":{\"containers\":[{\"name\":\"c\","
	    "\"image\":\"img\"}]}}"));
	api_env_pump(&e->a);
	assert_int_equal(ctrl_routes_builds(e->routes), builds);
	assert_int_equal(iget(ctrl_routes_current(e->routes), "version"),
	    store_current_rv(e->a.st));

	struct api_error err = { 0 };
	assert_int_equal(api_delete(e->a.api, kind_find_gvk("v1", "Service"), "default", "web",
	    API_PROPAGATE_BACKGROUND, NULL, 0, 0, NULL, &err), 0);
	api_error_clear(&err);
	api_env_pump(&e->a);
	assert_null(current_cluster(e));

	ctrl_routes_stop(e->routes);
	ctrl_endpoints_stop(e->ep);
	api_env_close(&e->a);
}

/* ---- routes_apply_rollouts: canary weights, header routes, sticky --------- */

/* web (stable) and web-canary with one ready endpoint each, and the
 * GAMMA HTTPRoute "shop" on web (rule 1: /api + x-canary, web 90 /
 * web-canary 10; rule 0: web only). */
static json_t *
ro_snapshot(void)
{
	json_t *eps = json_array(), *routes = json_array();
	json_array_append_new(eps, J("{\"metadata\":{\"namespace\":\"default\",\"name\":\"web\"},"
	    "\"subsets\":[{\"addresses\":[{\"ip\":\"127.1.0.2\"}],\"ports\":[{\"name\":\"http\","
	    "\"port\":8080}]}]}"));
	json_array_append_new(eps, J("{\"metadata\":{\"namespace\":\"default\",\"name\":"
	    "\"web-canary\"},\"subsets\":[{\"addresses\":[{\"ip\":\"127.1.0.3\"}],\"ports\":"
	    "[{\"name\":\"http\",\"port\":8080}]}]}"));
	json_t *r = canary_route("default", "{\"kind\":\"Service\",\"name\":\"web\",\"port\":80}");
	json_object_del(json_object_get(r, "spec"), "hostnames");
	json_array_append_new(routes, r);
	json_t *svcs = two_services();
	json_t *snap = routes_build(svcs, eps, NULL, routes, NULL, NULL, NULL, 1);
	json_decref(svcs);
	json_decref(eps);
	json_decref(routes);
	return snap;
}

/* A Rollout "web" with canary weight w; extra: more of its JSON text. */
static json_t *
ro_rollout(int w, const char *canary_services, const char *extra_status, const char *ann)
{
	char *t = xasprintf("[{\"metadata\":{\"namespace\":\"default\",\"name\":\"web\"%s},"
	    "\"spec\":{\"strategy\":{\"canary\":{%s}}},\"status\":{\"canary\":{\"weights\":"
	    "{\"canary\":{\"weight\":%d},\"stable\":{\"weight\":%d}}%s}}}]", ann, canary_services,
	    w, 100 - w, extra_status);
	json_t *j = J(t);
	free(t);
	return j;
}

#define RO_SERVICES "\"stableService\":\"web\",\"canaryService\":\"web-canary\""

static json_t *
ro_apply(int w, const char *extra_status, const char *ann)
{
	json_t *snap = ro_snapshot(), *ros = ro_rollout(w, RO_SERVICES, extra_status, ann);
	routes_apply_rollouts(snap, ros);
	json_decref(ros);
	return snap;
}

static const json_t *
ro_route(const json_t *snap, const char *name, size_t *idx)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(listener(snap, "svc/default/web/http"), "routes"), i, r)
		if (strcmp(sget(r, "name"), name) == 0) {
			if (idx)
				*idx = i;
			return r;
		}
	return NULL;
}

/* Weight of cluster in route's backends, -1 when it is not one. */
static json_int_t
ro_backend(const json_t *route, const char *cluster)
{
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(route, "backends"), i, b)
		if (strcmp(sget(b, "cluster"), cluster) == 0)
			return iget(b, "weight");
	return -1;
}

static void
test_rollout_weights_split_stable_backends(void **state)
{
	(void)state;
	static const struct {
		int w;
		int stable, canary;	/* share in percent, -1: no backend */
	} cases[] = {
		{ 30, 70, 30 },
		{ 0, 100, -1 },
		{ 100, -1, 100 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *snap = ro_apply(cases[i].w, "", "");
		/* the Service's own default route and both HTTPRoute rules */
		static const char *const names[] = { "svc/default/web", "httproute/default/shop/1",
			"httproute/default/shop/0" };
		for (size_t k = 0; k < ARRAY_SIZE(names); k++) {
			const json_t *r = ro_route(snap, names[k], NULL);
			assert_non_null(r);
			json_int_t s = ro_backend(r, "default/web:http");
			json_int_t c = ro_backend(r, "default/web-canary:http");
			json_int_t total = (s > 0 ? s : 0) + (c > 0 ? c : 0);
			assert_true(total > 0);
			json_int_t sp = s < 0 ? -1 : s * 100 / total, cp = c < 0 ? -1 : c * 100 / total;
			if (sp != cases[i].stable || cp != cases[i].canary)
				fail_msg("weight %d, %s: stable %lld%% canary %lld%%, want %d / %d",
				    cases[i].w, names[k], (long long)sp, (long long)cp, cases[i].stable,
				    cases[i].canary);
			assert_int_equal(json_array_size(json_object_get(r, "backends")),
			    (cases[i].stable > 0) + (cases[i].canary > 0));
		}
		/* the canary Service's own listener keeps going to the canary */
		const json_t *cl = listener(snap, "svc/default/web-canary/http");
		json_t *cr = json_array_get(json_object_get(cl, "routes"), 0);
		assert_int_equal(json_array_size(json_object_get(cr, "backends")), 1);
		assert_string_equal(sget(json_array_get(json_object_get(cr, "backends"), 0),
		    "cluster"), "default/web-canary:http");
		json_decref(snap);
	}
}

static void
test_rollout_header_routes_and_sticky_cookie(void **state)
{
	(void)state;
	json_t *snap = ro_apply(30, ",\"headerRoutes\":[{\"name\":\"beta\",\"match\":["
	    "{\"headerName\":\"X-Group\",\"headerValue\":{\"exact\":\"beta\"}}]}]",
	    ",\"annotations\":{\"v6.dev/sticky-cookie\":\"v6-aff\"}");
	static const char *const names[] = { "svc/default/web", "httproute/default/shop/1",
		"httproute/default/shop/0" };
	for (size_t k = 0; k < ARRAY_SIZE(names); k++) {
		size_t at, hat;
		const json_t *r = ro_route(snap, names[k], &at);
		char *hname = xasprintf("%s/header/beta", names[k]);
		const json_t *h = ro_route(snap, hname, &hat);
		if (!h)
			fail_msg("no header route %s", hname);
		assert_int_equal(hat + 1, at);	/* right before the route it copies */
		assert_int_equal(json_array_size(json_object_get(h, "backends")), 1);
		assert_int_equal(ro_backend(h, "default/web-canary:http"), 1);
		assert_string_equal(sget(json_object_get(r, "sticky"), "cookie"), "v6-aff");
		/* the route's own matches, each with the header added */
		const json_t *own = json_object_get(r, "matches"), *hm = json_object_get(h, "matches");
		assert_int_equal(json_array_size(hm), json_array_size(own) ? json_array_size(own) : 1);
		for (size_t m = 0; m < json_array_size(hm); m++) {
			const json_t *x = json_array_get(hm, m), *o = json_array_get(own, m);
			if (o)
				assert_true(json_equal(json_object_get(x, "path"),
				    json_object_get(o, "path")));
			else
				assert_null(json_object_get(x, "path"));
			json_t *hs = json_object_get(x, "headers");
			size_t own_h = json_array_size(json_object_get(o, "headers"));
			assert_int_equal(json_array_size(hs), own_h + 1);
			json_t *last = json_array_get(hs, own_h);
			assert_string_equal(sget(last, "name"), "X-Group");
			assert_string_equal(sget(last, "type"), "Exact");
			assert_string_equal(sget(last, "value"), "beta");
		}
		free(hname);
	}
	/* rule 1 keeps its own Exact /api and x-canary header in the copy */
	const json_t *h1 = ro_route(snap, "httproute/default/shop/1/header/beta", NULL);
	json_t *m0 = json_array_get(json_object_get(h1, "matches"), 0);
	assert_string_equal(sget(json_object_get(m0, "path"), "type"), "Exact");
	assert_string_equal(sget(json_object_get(m0, "path"), "value"), "/api");
	assert_string_equal(sget(json_array_get(json_object_get(m0, "headers"), 0), "name"),
	    "x-canary");
	/* 6 routes: 3 plus one header route each, and the canary's own route
	 * gets neither a header route nor a cookie */
	assert_int_equal(json_array_size(json_object_get(listener(snap, "svc/default/web/http"),
	    "routes")), 6);
	json_t *cr = json_array_get(json_object_get(listener(snap,
	    "svc/default/web-canary/http"), "routes"), 0);
	assert_null(json_object_get(cr, "sticky"));
	assert_int_equal(json_array_size(json_object_get(listener(snap,
	    "svc/default/web-canary/http"), "routes")), 1);
	json_decref(snap);

	/* a prefix and a regex header value */
	snap = ro_apply(0, ",\"headerRoutes\":[{\"name\":\"p\",\"match\":[{\"headerName\":\"A\","
	    "\"headerValue\":{\"prefix\":\"x\"}},{\"headerName\":\"Cookie\",\"headerValue\":"
	    "{\"regex\":\"g=b\"}}]}]", "");
	const json_t *hp = ro_route(snap, "svc/default/web/header/p", NULL);
	assert_non_null(hp);
	json_t *hs = json_object_get(json_array_get(json_object_get(hp, "matches"), 0), "headers");
	assert_int_equal(json_array_size(hs), 2);
	assert_string_equal(sget(json_array_get(hs, 0), "type"), "Prefix");
	assert_string_equal(sget(json_array_get(hs, 1), "type"), "RegularExpression");
	assert_string_equal(sget(json_array_get(hs, 1), "value"), "g=b");
	/* weight 0: the plain route is all stable, the header route all canary */
	assert_int_equal(ro_backend(ro_route(snap, "svc/default/web", NULL),
	    "default/web-canary:http"), -1);
	assert_int_equal(ro_backend(hp, "default/web-canary:http"), 1);
	json_decref(snap);
}

static void
test_rollout_without_canary_service_changes_nothing(void **state)
{
	(void)state;
	static const char *const services[] = {
		"\"stableService\":\"web\"",
		"",
	};
	for (size_t i = 0; i < ARRAY_SIZE(services); i++) {
		json_t *snap = ro_snapshot(), *before = json_deep_copy(snap);
		json_t *ros = ro_rollout(40, services[i], ",\"headerRoutes\":[{\"name\":\"b\","
		    "\"match\":[{\"headerName\":\"X\",\"headerValue\":{\"exact\":\"1\"}}]}]",
		    ",\"annotations\":{\"v6.dev/sticky-cookie\":\"c\"}");
		routes_apply_rollouts(snap, ros);
		assert_true(json_equal(snap, before));
		json_decref(ros);
		json_decref(snap);
		json_decref(before);
	}
	/* a Rollout of another namespace does not touch default/web either */
	json_t *snap = ro_snapshot(), *before = json_deep_copy(snap);
	json_t *ros = ro_rollout(40, RO_SERVICES, "", "");
	json_object_set_new(obj_metadata(json_array_get(ros, 0)), "namespace",
	    json_string("other"));
	routes_apply_rollouts(snap, ros);
	assert_true(json_equal(snap, before));
	json_decref(ros);
	json_decref(snap);
	json_decref(before);
}

/* The engine accepts a snapshot with weights, header routes and a cookie. */
static void
test_rollout_snapshot_accepted_by_engine(void **state)
{
	(void)state;
	json_t *snap = ro_apply(30, ",\"headerRoutes\":[{\"name\":\"beta\",\"match\":["
	    "{\"headerName\":\"X-Group\",\"headerValue\":{\"exact\":\"beta\"}}]}]",
	    ",\"annotations\":{\"v6.dev/sticky-cookie\":\"v6-aff\"}");
	/* listeners on loopback ports instead of the Services' addresses */
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(snap, "listeners"), i, l) {
		json_object_set_new(l, "address", json_string("127.0.0.1"));
		json_object_set_new(l, "port", json_integer(38591 + (json_int_t)i));
	}
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct proxy_engine *e = proxy_engine_new(&loop);
	char *err = NULL;
	if (proxy_engine_apply(e, snap, &err) < 0)
		fail_msg("engine refused the snapshot: %s", err);
	free(err);
	proxy_engine_free(e);
	for (int k = 0; k < 10; k++)
		uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	json_decref(snap);
}


/* ---- the incremental table: commits == the whole build ---------------------- */

/* A small world where everything collides now and then: two namespaces,
 * six Service names, three cluster IPs, NodePorts, Gateways on Service
 * addresses, HTTPRoutes on Gateways and Services, Rollouts, relabelled
 * pods. */
static const char *const rnd_ns[] = { "a", "a-b" };
static const char *const rnd_names[] = { "s0", "s1", "s2", "s3", "s4", "s5" };

static const char *
rnd_pick(const char *const *v, size_t n, unsigned *seed)
{
	return v[(unsigned)rand_r(seed) % n];
}

#define PICK(v, seed) rnd_pick(v, ARRAY_SIZE(v), seed)

static json_t *
rnd_service(const char *ns, const char *name, unsigned *seed)
{
	static const char *const ips[] = { "127.2.0.1", "127.2.0.2", "127.2.0.3", "None", "" };
	static const char *const pnames[] = { "http", "web", "tcp", "", "redis" };
	static const char *const types[] = { "ClusterIP", "ClusterIP", "NodePort" };
	json_t *ports = json_array();
	int n = 1 + rand_r(seed) % 2;
	const char *first = NULL;
	for (int i = 0; i < n; i++) {
		json_t *p = json_pack("{s:i}", "port", 80 + rand_r(seed) % 3);
		const char *pn = PICK(pnames, seed);
		/* as validation requires: names unique, and given with two ports */
		if (n > 1 && (!*pn || (first && !strcmp(pn, first))))
			pn = i ? "second" : "first";
		first = pn;
		if (*pn)
			json_object_set_new(p, "name", json_string(pn));
		if (rand_r(seed) % 2)
			json_object_set_new(p, "nodePort", json_integer(30000 + rand_r(seed) % 3));
		json_array_append_new(ports, p);
	}
	json_t *svc = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:o}}", "apiVersion", "v1",
	    "kind", "Service", "metadata", "namespace", ns, "name", name, "spec", "type",
	    PICK(types, seed), "clusterIP", PICK(ips, seed), "ports", ports);
	if (rand_r(seed) % 4 == 0)
		json_object_set_new(json_object_get(svc, "metadata"), "annotations",
		    json_pack("{s:s}", "v6.dev/load-balancing", "least_request"));
	return svc;
}

static json_t *
rnd_endpoints(const char *ns, const char *name, unsigned *seed)
{
	static const char *const pnames[] = { "http", "web", "tcp", "", "redis" };
	json_t *addrs = json_array();
	int n = rand_r(seed) % 3;
	for (int i = 0; i < n; i++) {
		char ip[32];
		snprintf(ip, sizeof ip, "127.1.0.%d", 1 + rand_r(seed) % 4);
		json_array_append_new(addrs, json_pack("{s:s, s:{s:s, s:s}}", "ip", ip,
		    "targetRef", "kind", "Pod", "name", PICK(rnd_names, seed)));
	}
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:[{s:o, s:[{s:s, s:i}]}]}", "apiVersion",
	    "v1", "kind", "Endpoints", "metadata", "namespace", ns, "name", name, "subsets",
	    "addresses", addrs, "ports", "name", PICK(pnames, seed), "port", 8080);
}

static json_t *
rnd_pod(const char *ns, const char *name, unsigned *seed)
{
	static const char *const hashes[] = { "h1", "h2", "h3" };
	static const char *const phases[] = { "Running", "Pending", "Failed" };
	json_t *pod = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}}", "apiVersion", "v1", "kind",
	    "Pod", "metadata", "namespace", ns, "name", name, "labels", "pod-template-hash",
	    PICK(hashes, seed));
	if (rand_r(seed) % 3 == 0) {	/* hostPorts: some on node ports and Gateway ports */
		char ip[32];
		snprintf(ip, sizeof ip, "10.88.0.%d", 1 + rand_r(seed) % 4);
		json_object_set_new(pod, "spec", json_pack("{s:[{s:s, s:[{s:i, s:i}]}]}",
		    "containers", "name", "c", "ports", "containerPort", 80, "hostPort",
		    rand_r(seed) % 2 ? 30000 + rand_r(seed) % 3 : 8000 + rand_r(seed) % 3));
		json_object_set_new(pod, "status", json_pack("{s:s, s:s}", "podIP",
		    rand_r(seed) % 4 ? ip : "", "phase", PICK(phases, seed)));
		if (rand_r(seed) % 4 == 0)
			json_object_set_new(json_object_get(pod, "metadata"), "deletionTimestamp",
			    json_string("2026-01-01T00:00:00Z"));
	}
	return pod;
}

/* HTTPS listeners and their Secrets draw from their own sequence, so the
 * other kinds' random cases stay those the table was tested with. */
static unsigned tls_seed = 1;

static json_t *
rnd_gateway(const char *ns, const char *name, unsigned *seed)
{
	static const char *const addrs[] = { "127.2.0.1", "127.3.0.1", "0.0.0.0" };
	static const char *const hosts[] = { "", "shop.example", "*.example" };
	json_t *gl = json_pack("{s:s, s:i, s:s}", "name", "http", "port",
	    rand_r(seed) % 2 ? 80 : 30000 + rand_r(seed) % 3, "protocol", "HTTP");
	const char *h = PICK(hosts, seed);
	if (*h)
		json_object_set_new(gl, "hostname", json_string(h));
	if (rand_r(seed) % 2)
		json_object_set_new(gl, "allowedRoutes", json_pack("{s:{s:s}}", "namespaces",
		    "from", "All"));
	if (rand_r(&tls_seed) % 2) {	/* HTTPS with a Secret that may be missing or broken */
		json_object_set_new(gl, "protocol", json_string("HTTPS"));
		json_object_set_new(gl, "tls", json_pack("{s:s, s:[{s:s}]}", "mode", "Terminate",
		    "certificateRefs", "name", PICK(rnd_names, &tls_seed)));
	}
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:[{s:s}], s:[o]}}", "apiVersion",
	    GW_GROUP_V1, "kind", "Gateway", "metadata", "namespace", ns, "name", name, "spec",
	    "gatewayClassName", "v6", "addresses", "value", PICK(addrs, seed), "listeners", gl);
}

/* A self-signed ECDSA certificate for shop.example and its key (base64 of
 * the PEM, as a Secret holds them); made once with the openssl CLI. */
static const char test_crt_b64[] =
	    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJoVENDQVN1Z0F3SUJBZ0lV"
	    "Tm5WVDJ6S3hGOTFaalRKU0M2bGM0OUlpM3Fjd0NnWUlLb1pJemowRUF3SXcKRnpF"
	    "Vk1CTUdBMVVFQXd3TWMyaHZjQzVsZUdGdGNHeGxNQ0FYRFRJMk1USXdOekV6TURF"
	    "eE5sb1lEekl4TWpZeApNVEV6TVRNd01URTJXakFYTVJVd0V3WURWUVFEREF4emFH"
	    "OXdMbVY0WVcxd2JHVXdXVEFUQmdjcWhrak9QUUlCCkJnZ3Foa2pPUFFNQkJ3TkNB"
	    "QVF4UzBEbXhpOTgzSytUZEEyWFZ3MkEwOUxzRUJnU3piNFg2bWlUcENJMk5Xd0kK"
	    "OWxWVUZlY2F0L1Z6dk9Ga1I3Tko1c0h2clFTMFRKK0JLOUdodTIvVm8xTXdVVEFk"
	    "QmdOVkhRNEVGZ1FVdTllZAovSVZQc1JFMlNBM3h2RFRFdWVCanVVY3dId1lEVlIw"
	    "akJCZ3dGb0FVdTllZC9JVlBzUkUyU0EzeHZEVEV1ZUJqCnVVY3dEd1lEVlIwVEFR"
	    "SC9CQVV3QXdFQi96QUtCZ2dxaGtqT1BRUURBZ05JQURCRkFpQk9xSmdGSk0rVmww"
	    "RHcKcGJ4c2NlZWhFOWtEVDVYc0E1b29CVEh3U3p5VWZRSWhBSzdsaXVrcHR3WkMr"
	    "K2dIQkcrN1p0NGt6T1lvZnlmawprZzMrSWd4ZTQvQ3AKLS0tLS1FTkQgQ0VSVElG"
	    "SUNBVEUtLS0tLQo=";
static const char test_key_b64[] =
	    "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JR0hBZ0VBTUJNR0J5cUdTTTQ5"
	    "QWdFR0NDcUdTTTQ5QXdFSEJHMHdhd0lCQVFRZ0xlZHB6amIwV0NRbU9VWm4KMVRh"
	    "NlB1aE1VaFJJeXhlRi9udmZUclNJeXlHaFJBTkNBQVF4UzBEbXhpOTgzSytUZEEy"
	    "WFZ3MkEwOUxzRUJnUwp6YjRYNm1pVHBDSTJOV3dJOWxWVUZlY2F0L1Z6dk9Ga1I3"
	    "Tko1c0h2clFTMFRKK0JLOUdodTIvVgotLS0tLUVORCBQUklWQVRFIEtFWS0tLS0t"
	    "Cg==";

/* A kubernetes.io/tls Secret with test_crt (a good one, or a broken key)
 * or another type the routing table must not keep. */
static json_t *
tls_secret(const char *ns, const char *name, const char *type, bool good)
{
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:{s:s, s:s}}", "apiVersion", "v1",
	    "kind", "Secret", "metadata", "namespace", ns, "name", name, "type", type, "data",
	    "tls.crt", test_crt_b64, "tls.key", good ? test_key_b64 : "bm90IGEga2V5Cg==");
}

static json_t *
rnd_secret(const char *ns, const char *name, unsigned *seed)
{
	static const char *const types[] = { "kubernetes.io/tls", "Opaque" };
	return tls_secret(ns, name, PICK(types, seed), rand_r(seed) % 4 != 0);
}

static json_t *
rnd_httproute(const char *ns, const char *name, unsigned *seed)
{
	static const char *const kinds[] = { "Gateway", "Service" };
	static const char *const hosts[] = { "shop.example", "a.example" };
	const char *kind = PICK(kinds, seed);
	json_t *parent = json_pack("{s:s, s:s}", "kind", kind, "name", PICK(rnd_names, seed));
	if (rand_r(seed) % 3 == 0)
		json_object_set_new(parent, "namespace", json_string(PICK(rnd_ns, seed)));
	json_t *backends = json_array();
	for (int i = 0, n = 1 + rand_r(seed) % 2; i < n; i++) {
		json_t *br = json_pack("{s:s, s:i, s:i}", "name", PICK(rnd_names, seed), "port",
		    80 + rand_r(seed) % 3, "weight", rand_r(seed) % 100);
		if (rand_r(seed) % 3 == 0)	/* maybe another namespace: a grant decides */
			json_object_set_new(br, "namespace", json_string(PICK(rnd_ns, seed)));
		json_array_append_new(backends, br);
	}
	json_t *rule = json_pack("{s:o}", "backendRefs", backends);
	if (rand_r(seed) % 2)
		json_object_set_new(rule, "matches", json_pack("[{s:{s:s, s:s}}]", "path", "type",
		    "PathPrefix", "value", rand_r(seed) % 2 ? "/api" : "/"));
	json_t *r = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:{s:[o], s:[o]}}", "apiVersion",
	    GW_GROUP_V1, "kind", "HTTPRoute", "metadata", "namespace", ns, "name", name,
	    "creationTimestamp", rand_r(seed) % 2 ? "2026-01-01T00:00:00Z" : "2026-01-02T00:00:00Z",
	    "spec", "parentRefs", parent, "rules", rule);
	if (rand_r(seed) % 2)
		json_object_set_new(json_object_get(r, "spec"), "hostnames",
		    json_pack("[s]", PICK(hosts, seed)));
	return r;
}

/* A ReferenceGrant letting HTTPRoutes of some namespace refer to Services
 * (all, or one by name) of ns. */
static json_t *
rnd_grant(const char *ns, const char *name, unsigned *seed)
{
	json_t *to = json_pack("{s:s, s:s}", "group", "", "kind", "Service");
	if (rand_r(seed) % 2)
		json_object_set_new(to, "name", json_string(PICK(rnd_names, seed)));
	return json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:[{s:s, s:s, s:s}], s:[o]}}",
	    "apiVersion", GW_GROUP_V1, "kind", "ReferenceGrant", "metadata", "namespace", ns,
	    "name", name, "spec", "from", "group", "gateway.networking.k8s.io", "kind",
	    "HTTPRoute", "namespace", PICK(rnd_ns, seed), "to", to);
}

static json_t *
rnd_rollout(const char *ns, const char *name, unsigned *seed)
{
	json_t *ro = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:{s:s, s:s}}}, "
	    "s:{s:{s:{s:{s:i}}}}}", "apiVersion", "argoproj.io/v1alpha1", "kind", "Rollout",
	    "metadata", "namespace", ns, "name", name, "spec", "strategy", "canary",
	    "stableService", PICK(rnd_names, seed), "canaryService", PICK(rnd_names, seed),
	    "status", "canary", "weights", "canary", "weight", rand_r(seed) % 101);
	if (rand_r(seed) % 2)
		json_object_set_new(json_object_get(json_object_get(ro, "status"), "canary"),
		    "headerRoutes", json_pack("[{s:s, s:[{s:s, s:{s:s}}]}]", "name", "hdr",
		    "match", "headerName", "x-canary", "headerValue", "exact", "1"));
	if (rand_r(seed) % 3 == 0)
		json_object_set_new(json_object_get(ro, "metadata"), "annotations",
		    json_pack("{s:s}", "v6.dev/sticky-cookie", "v6-canary"));
	return ro;
}

typedef json_t *(*rnd_fn)(const char *, const char *, unsigned *);

/* Applies the changes (name -> value or null) to map. */
static void
apply_changes(json_t *map, const json_t *changes)
{
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)changes, name, v) {
		if (json_is_null(v))
			json_object_del(map, name);
		else
			json_object_set(map, name, v);
	}
}

/* A pod's hostPort is a TCP listener on hostIP:hostPort to the pod's own
 * address, while it runs; not once it is being deleted or finished. */
static void
test_host_port_of_a_running_pod(void **state)
{
	(void)state;
	json_t *pod = json_pack("{s:{s:s, s:s}, s:{s:[{s:s, s:[{s:i, s:i}, {s:i}]}]}, "
	    "s:{s:s, s:s}}", "metadata", "namespace", "default", "name", "web", "spec",
	    "containers", "name", "c", "ports", "containerPort", 80, "hostPort", 8081,
	    "containerPort", 9090, "status", "podIP", "10.88.0.7", "phase", "Running");
	json_t *pods = json_pack("[O]", pod);
	json_t *snap = routes_build(NULL, NULL, pods, NULL, NULL, NULL, NULL, 1);
	json_t *l = json_array_get(json_object_get(snap, "listeners"), 0);
	assert_int_equal(json_array_size(json_object_get(snap, "listeners")), 1);
	assert_string_equal(obj_str(l, "address"), "0.0.0.0");
	assert_int_equal(json_integer_value(json_object_get(l, "port")), 8081);
	assert_string_equal(obj_str(l, "protocol"), "TCP");
	json_t *c = json_object_get(json_object_get(snap, "clusters"), obj_str(l, "cluster"));
	json_t *ep = json_array_get(json_object_get(c, "endpoints"), 0);
	assert_int_equal(json_object_size(json_object_get(snap, "clusters")), 1);
	assert_string_equal(obj_str(ep, "address"), "10.88.0.7");
	assert_int_equal(json_integer_value(json_object_get(ep, "port")), 80);
	json_decref(snap);
	json_object_set_new(json_object_get(pod, "metadata"), "deletionTimestamp",
	    json_string("2026-01-01T00:00:00Z"));
	json_array_set(pods, 0, pod);
	snap = routes_build(NULL, NULL, pods, NULL, NULL, NULL, NULL, 2);
	assert_int_equal(json_array_size(json_object_get(snap, "listeners")), 0);
	json_decref(snap);
	json_decref(pods);
	json_decref(pod);
}

/* HTTPS listeners: certificates from their Secrets, two hostnames on one
 * port share one proxy listener (SNI picks); a missing, broken or
 * cross-namespace Secret is reported and not served. */
static void
test_https_listeners_take_their_secrets(void **state)
{
	(void)state;
	json_t *gws = J("[{\"kind\":\"Gateway\",\"metadata\":{\"namespace\":\"default\","
	    "\"name\":\"edge\"},\"spec\":{\"gatewayClassName\":\"v6\",\"listeners\":["
	    "{\"name\":\"a\",\"port\":8443,\"protocol\":\"HTTPS\",\"hostname\":\"a.example\","
	    "\"tls\":{\"certificateRefs\":[{\"name\":\"a-cert\"}]}},"
	    "{\"name\":\"b\",\"port\":8443,\"protocol\":\"HTTPS\",\"hostname\":\"b.example\","
	    "\"tls\":{\"certificateRefs\":[{\"name\":\"b-cert\"}]}},"
	    "{\"name\":\"c\",\"port\":9443,\"protocol\":\"HTTPS\","
	    "\"tls\":{\"certificateRefs\":[{\"name\":\"a-cert\",\"namespace\":\"other\"}]}}]}}]");
	json_t *secrets = json_pack("[o, o, o]", tls_secret("default", "a-cert",
	    "kubernetes.io/tls", true), tls_secret("default", "b-cert", "kubernetes.io/tls", false),
	    tls_secret("other", "a-cert", "kubernetes.io/tls", true));
	json_t *routes = json_array();
	json_array_append_new(routes, canary_route("default", "{\"name\":\"edge\"}"));
	json_object_set_new(json_object_get(json_array_get(routes, 0), "spec"), "hostnames",
	    J("[\"a.example\", \"b.example\"]"));
	json_t *svcs = two_services();
	json_t *snap = routes_build(svcs, NULL, NULL, routes, gws, secrets, NULL, 1);
	json_decref(svcs);
	const json_t *l = listener(snap, "gw/default/edge/a");
	assert_non_null(l);
	assert_string_equal(sget(l, "protocol"), "HTTPS");
	json_t *tls = json_object_get(l, "tls");
	assert_int_equal(json_array_size(tls), 1);	/* b's key is broken */
	assert_string_equal(sget(json_array_get(tls, 0), "hostname"), "a.example");
	assert_true(str_has_prefix(sget(json_array_get(tls, 0), "cert"),
	    "-----BEGIN CERTIFICATE-----"));
	assert_true(str_has_prefix(sget(json_array_get(tls, 0), "key"), "-----BEGIN PRIVATE KEY"));
	json_t *rs = json_object_get(l, "routes");	/* only a's hostname is served */
	assert_true(json_array_size(rs) > 0);
	for (size_t i = 0; i < json_array_size(rs); i++)
		assert_string_equal(json_string_value(json_array_get(json_object_get(
		    json_array_get(rs, i), "hostnames"), 0)), "a.example");
	assert_null(listener(snap, "gw/default/edge/b"));
	assert_null(listener(snap, "gw/default/edge/c"));	/* the Secret is elsewhere */
	json_decref(snap);

	json_t *idx = obj_index(secrets), *certs;
	const json_t *gw = json_array_get(gws, 0), *gls = obj_get_path(gw, "spec.listeners");
	const char *reason;
	char *msg;
	assert_true(gw_listener_certs(gw, json_array_get(gls, 0), idx, NULL, &certs, &reason, &msg));
	free(msg);
	json_decref(certs);
	assert_false(gw_listener_certs(gw, json_array_get(gls, 1), idx, NULL, &certs, &reason, &msg));
	assert_string_equal(reason, "InvalidCertificateRef");
	assert_null(strstr(msg, "PRIVATE"));
	free(msg);
	json_decref(certs);
	assert_false(gw_listener_certs(gw, json_array_get(gls, 2), idx, NULL, &certs, &reason, &msg));
	assert_string_equal(reason, "RefNotPermitted");
	free(msg);
	json_decref(certs);
	/* ... unless a ReferenceGrant of that namespace lets the Gateway refer to it */
	json_t *grants = J("[{\"metadata\":{\"namespace\":\"other\",\"name\":\"g\"},\"spec\":"
	    "{\"from\":[{\"group\":\"gateway.networking.k8s.io\",\"kind\":\"Gateway\","
	    "\"namespace\":\"default\"}],\"to\":[{\"group\":\"\",\"kind\":\"Secret\","
	    "\"name\":\"a-cert\"}]}}]");
	assert_true(gw_listener_certs(gw, json_array_get(gls, 2), idx, grants, &certs, &reason,
	    &msg));
	free(msg);
	json_decref(certs);
	svcs = two_services();
	snap = routes_build(svcs, NULL, NULL, routes, gws, secrets, grants, 2);
	assert_non_null(listener(snap, "gw/default/edge/c"));
	json_decref(snap);
	json_decref(svcs);
	json_decref(grants);
	json_object_del(idx, "default/a-cert");
	assert_false(gw_listener_certs(gw, json_array_get(gls, 0), idx, NULL, &certs, &reason, &msg));
	assert_string_equal(reason, "InvalidCertificateRef");
	assert_non_null(strstr(msg, "not found"));
	free(msg);
	json_decref(certs);
	json_decref(idx);

	/* The table rebuilds for a referenced Secret only. */
	struct routes_table *t = routes_table_new();
	json_t *dl, *dc;
	routes_table_put(t, ROUTES_GATEWAY, "default", "edge", gw);
	routes_table_commit(t, &dl, &dc);
	assert_null(json_object_get(dl, "gw/default/edge/a"));	/* no Secret yet */
	json_decref(dl);
	json_decref(dc);
	assert_false(routes_table_put(t, ROUTES_SECRET, "default", "unrelated",
	    json_array_get(secrets, 0)));
	assert_true(routes_table_put(t, ROUTES_SECRET, "default", "a-cert",
	    json_array_get(secrets, 0)));
	routes_table_commit(t, &dl, &dc);
	assert_string_equal(sget(json_object_get(dl, "gw/default/edge/a"), "protocol"), "HTTPS");
	json_decref(dl);
	json_decref(dc);
	routes_table_free(t);
	json_decref(routes);
	json_decref(secrets);
	json_decref(gws);
}

static void
test_incremental_table_equals_whole_build(void **state)
{
	(void)state;
	static const rnd_fn make[ROUTES_NKINDS] = {
		[ROUTES_SERVICE] = rnd_service, [ROUTES_ENDPOINTS] = rnd_endpoints,
		[ROUTES_POD] = rnd_pod, [ROUTES_GATEWAY] = rnd_gateway,
		[ROUTES_HTTPROUTE] = rnd_httproute, [ROUTES_ROLLOUT] = rnd_rollout,
		[ROUTES_SECRET] = rnd_secret, [ROUTES_GRANT] = rnd_grant,
	};
	tls_seed = 1;
	for (unsigned run = 0; run < 20; run++) {
		unsigned seed = run * 7919 + 1;
		struct routes_table *t = routes_table_new();
		json_t *objs[ROUTES_NKINDS], *mirror_l = json_object(), *mirror_c = json_object();
		for (int k = 0; k < ROUTES_NKINDS; k++)
			objs[k] = json_object();
		for (int step = 0; step < 150; step++) {
			for (int puts = 1 + rand_r(&seed) % 3; puts >= 0; puts--) {
				/* the last put is a Secret's, from the TLS sequence */
				unsigned *sq = puts ? &seed : &tls_seed;
				int k = puts ? rand_r(sq) % ROUTES_SECRET : ROUTES_SECRET;
				const char *ns = PICK(rnd_ns, sq), *name = PICK(rnd_names, sq);
				char *key = xasprintf("%s/%s", ns, name);
				json_t *o = rand_r(sq) % 5 == 0 ? NULL : make[k](ns, name, sq);
				routes_table_put(t, k, ns, name, o);
				if (o)
					json_object_set_new(objs[k], key, o);
				else
					json_object_del(objs[k], key);
				free(key);
			}
			json_t *dl, *dc;
			routes_table_commit(t, &dl, &dc);
			apply_changes(mirror_l, dl);
			apply_changes(mirror_c, dc);
			json_decref(dl);
			json_decref(dc);
			json_t *want = routes_build(objs[ROUTES_SERVICE], objs[ROUTES_ENDPOINTS],
			    objs[ROUTES_POD], objs[ROUTES_HTTPROUTE], objs[ROUTES_GATEWAY], objs[ROUTES_SECRET],
			    objs[ROUTES_GRANT], step);
			routes_apply_rollouts(want, objs[ROUTES_ROLLOUT]);
			json_t *got = routes_table_snapshot(t, step);
			json_t *mirror = json_pack("{s:I, s:o, s:O}", "version", (json_int_t)step,
			    "listeners", proxy_sorted_members(mirror_l, true), "clusters", mirror_c);
			if (!json_equal(want, got) || !json_equal(want, mirror)) {
				char *w = json_dumps(want, JSON_SORT_KEYS), *g = json_dumps(got,
				    JSON_SORT_KEYS), *m = json_dumps(mirror, JSON_SORT_KEYS);
				fail_msg("run %u step %d:\nwant %s\ngot  %s\ndeltas %s", run, step, w, g, m);
			}
			json_decref(want);
			json_decref(got);
			json_decref(mirror);
		}
		for (int k = 0; k < ROUTES_NKINDS; k++)
			json_decref(objs[k]);
		json_decref(mirror_l);
		json_decref(mirror_c);
		routes_table_free(t);
	}
}

/* One change to a table of many Services rebuilds that Service only: the
 * delta names its listener and cluster, nothing else. */
static void
test_one_change_touches_one_service(void **state)
{
	(void)state;
	struct routes_table *t = routes_table_new();
	json_t *dl, *dc;
	for (int i = 0; i < 300; i++) {
		char name[16], ip[32];
		snprintf(name, sizeof name, "s%d", i);
		snprintf(ip, sizeof ip, "127.2.%d.%d", i / 200, i % 200 + 1);
		json_t *svc = json_pack("{s:{s:s, s:s}, s:{s:s, s:[{s:s, s:i}]}}", "metadata",
		    "namespace", "default", "name", name, "spec", "clusterIP", ip, "ports", "name",
		    "http", "port", 80);
		routes_table_put(t, ROUTES_SERVICE, "default", name, svc);
		json_decref(svc);
	}
	routes_table_commit(t, &dl, &dc);
	assert_int_equal(json_object_size(dl), 300);
	assert_int_equal(json_object_size(dc), 300);
	json_decref(dl);
	json_decref(dc);
	json_t *ep = J("{\"metadata\":{\"namespace\":\"default\",\"name\":\"s7\"},\"subsets\":"
	    "[{\"addresses\":[{\"ip\":\"127.1.0.9\"}],\"ports\":[{\"name\":\"http\",\"port\":80}]}]}");
	assert_true(routes_table_put(t, ROUTES_ENDPOINTS, "default", "s7", ep));
	routes_table_commit(t, &dl, &dc);
	assert_int_equal(json_object_size(dl), 0);
	assert_int_equal(json_object_size(dc), 1);
	assert_non_null(json_object_get(dc, "default/s7:http"));
	assert_true(routes_table_routes_to(t, "127.1.0.9"));
	json_decref(dl);
	json_decref(dc);
	/* the same object again: nothing to rebuild */
	assert_false(routes_table_put(t, ROUTES_ENDPOINTS, "default", "s7", ep));
	json_decref(ep);
	routes_table_put(t, ROUTES_SERVICE, "default", "s7", NULL);
	routes_table_commit(t, &dl, &dc);
	assert_int_equal(json_object_size(dl), 1);
	assert_true(json_is_null(json_object_get(dl, "svc/default/s7/http")));
	assert_true(json_is_null(json_object_get(dc, "default/s7:http")));
	assert_false(routes_table_routes_to(t, "127.1.0.9"));
	json_decref(dl);
	json_decref(dc);
	routes_table_free(t);
}

int
main(void)
{
	log_set_level(LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_service_port_becomes_listener_and_cluster),
		cmocka_unit_test(test_nodeport_headless_and_unallocated),
		cmocka_unit_test(test_http_or_tcp_rule),
		cmocka_unit_test(test_httproute_on_gateway),
		cmocka_unit_test(test_httproute_on_service_gamma),
		cmocka_unit_test(test_cross_namespace_backend_needs_a_grant),
		cmocka_unit_test(test_output_is_deterministic_and_names_stable),
		cmocka_unit_test(test_engine_accepts_built_snapshot),
		cmocka_unit_test(test_watcher_rebuilds_on_changes),
		cmocka_unit_test(test_host_port_of_a_running_pod),
		cmocka_unit_test(test_https_listeners_take_their_secrets),
		cmocka_unit_test(test_incremental_table_equals_whole_build),
		cmocka_unit_test(test_one_change_touches_one_service),
	};
	const struct CMUnitTest rollout_tests[] = {
		cmocka_unit_test(test_rollout_weights_split_stable_backends),
		cmocka_unit_test(test_rollout_header_routes_and_sticky_cookie),
		cmocka_unit_test(test_rollout_without_canary_service_changes_nothing),
		cmocka_unit_test(test_rollout_snapshot_accepted_by_engine),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	return failed + cmocka_run_group_tests(rollout_tests, NULL, NULL);
}
