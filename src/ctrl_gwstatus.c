/* ctrl_gwstatus.c — Gateway API status, as a Gateway controller reports it:
 * Gateway conditions Accepted and Programmed, addresses and listeners[]
 * (attachedRoutes, conditions), HTTPRoute status.parents[] (Accepted,
 * ResolvedRefs) under controllerName v6.dev/gateway-controller.
 * gwstatus_gateway() / gwstatus_route() are the pure decision, using the
 * attachment rule of the routing snapshot (routes_listener_admits in
 * ctrl_routes.c); two adapters on the controller core (Gateways, HTTPRoutes)
 * write a status only when it differs. Started by server.c (the "gwstatus"
 * part). */
#include "ctrl.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GW_GROUP	"gateway.networking.k8s.io"

/* ---- conditions ---------------------------------------------------------- */

struct cond_ctx {
	const json_t *old;		/* the object's current conditions (array) */
	json_int_t generation;
	const char *now;		/* RFC 3339 */
};

/* A metav1.Condition; lastTransitionTime carried over from the current one
 * of the same type while its status stays. */
static json_t *
cond(const struct cond_ctx *cx, const char *type, bool ok, const char *reason,
    const char *msg)
{
	const char *status = ok ? "True" : "False", *since = cx->now;
	const json_t *c;
	size_t i;
	json_array_foreach(cx->old, i, c)
		if (strcmp(obj_str(c, "type"), type) == 0 && strcmp(obj_str(c, "status"), status) == 0 &&
		    *obj_str(c, "lastTransitionTime"))
			since = obj_str(c, "lastTransitionTime");
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "type", type, "status", status,
	    "reason", reason, "message", msg, "lastTransitionTime", since,
	    "observedGeneration", cx->generation);
}

static json_int_t
generation(const json_t *obj)
{
	return json_integer_value(obj_get_path(obj, "metadata.generation"));
}

/* ---- Gateways ----------------------------------------------------------- */

/* The HTTPRoutes attached to listener gl of gw: each route once, whatever
 * the number of its parentRefs that reach gl. */
static json_int_t
attached_routes(const json_t *gw, const json_t *gl, const json_t *routes)
{
	const char *key;
	const json_t *r, *ref;
	json_int_t n = 0;
	json_object_foreach((json_t *)routes, key, r) {
		size_t i;
		json_array_foreach(obj_get_path(r, "spec.parentRefs"), i, ref) {
			const char *kind = *obj_str(ref, "kind") ? obj_str(ref, "kind") : "Gateway";
			const char *ns = *obj_str(ref, "namespace") ? obj_str(ref, "namespace")
			    : obj_namespace(r);
			if (strcmp(kind, "Gateway") == 0 && strcmp(ns, obj_namespace(gw)) == 0 &&
			    strcmp(obj_str(ref, "name"), obj_name(gw)) == 0 &&
			    routes_listener_admits(gw, gl, r, ref) == ROUTES_ADMITTED) {
				n++;
				break;
			}
		}
	}
	return n;
}

static const json_t *
old_listener(const json_t *gw, const char *name)
{
	const json_t *l;
	size_t i;
	json_array_foreach(obj_get_path(gw, "status.listeners"), i, l)
		if (strcmp(obj_str(l, "name"), name) == 0)
			return l;
	return NULL;
}

/* ResolvedRefs of listener gl: its route kinds, then (HTTPS) its
 * certificates; *certs tells whether it has one to serve with. */
static json_t *
listener_refs(const struct cond_ctx *cx, const json_t *gw, const json_t *gl, bool https,
    const json_t *secrets, const json_t *grants, bool *certs)
{
	const char *reason;
	char *msg = NULL;
	json_t *pairs = NULL, *c;
	*certs = true;
	if (!routes_listener_takes_httproutes(gl))
		return cond(cx, "ResolvedRefs", false, "InvalidRouteKinds", "v6 serves HTTPRoutes only");
	if (!https)
		return cond(cx, "ResolvedRefs", true, "ResolvedRefs",
		    "Listener references are resolved");
	bool ok = gw_listener_certs(gw, gl, secrets, grants, &pairs, &reason, &msg);
	*certs = json_array_size(pairs) > 0;
	c = cond(cx, "ResolvedRefs", ok, reason, msg);
	json_decref(pairs);
	free(msg);
	return c;
}

/* True when an earlier listener of gw on gl's port speaks the other one of
 * HTTP / HTTPS: that one has the port (routes_build serves the first), gl
 * is not served (Gateway API's ProtocolConflict). */
static bool
protocol_conflict(const json_t *gw, const json_t *gl)
{
	const json_t *x;
	size_t i;
	json_array_foreach(obj_get_path(gw, "spec.listeners"), i, x) {
		if (x == gl)
			return false;
		if (json_equal(json_object_get(x, "port"), json_object_get(gl, "port")) &&
		    strcmp(obj_str(x, "protocol"), obj_str(gl, "protocol")) != 0 &&
		    (!strcmp(obj_str(x, "protocol"), "HTTP") || !strcmp(obj_str(x, "protocol"),
		    "HTTPS")))
			return true;
	}
	return false;
}

/* One listener's status; *accepted tells whether V6 serves it. */
static json_t *
listener_status(const json_t *gw, const json_t *gl, const json_t *routes,
    const json_t *secrets, const json_t *grants, bool programmed, const char *now,
    bool *accepted)
{
	const char *name = obj_str(gl, "name");
	struct cond_ctx cx = { json_object_get(old_listener(gw, name), "conditions"),
		generation(gw), now };
	bool https = strcmp(obj_str(gl, "protocol"), "HTTPS") == 0;
	bool http = https || strcmp(obj_str(gl, "protocol"), "HTTP") == 0;
	bool kinds = routes_listener_takes_httproutes(gl), certs;
	json_t *conds = json_array(), *supported = json_array();
	json_t *refs = listener_refs(&cx, gw, gl, https, secrets, grants, &certs);
	bool conflict = http && protocol_conflict(gw, gl);
	*accepted = http;
	if (http && kinds)
		json_array_append_new(supported, json_pack("{s:s, s:s}", "group", GW_GROUP,
		    "kind", "HTTPRoute"));
	if (http)
		json_array_append_new(conds, cond(&cx, "Accepted", true, "Accepted",
		    "Listener is valid"));
	else
		json_array_append_new(conds, cond(&cx, "Accepted", false, "UnsupportedProtocol",
		    "v6 serves HTTP and HTTPS listeners only"));
	if (conflict)
		json_array_append_new(conds, cond(&cx, "Conflicted", true, "ProtocolConflict",
		    "an earlier listener on this port speaks another protocol"));
	if (!http || conflict)
		json_array_append_new(conds, cond(&cx, "Programmed", false, "Invalid",
		    "Listener is not served"));
	else if (!certs)
		json_array_append_new(conds, cond(&cx, "Programmed", false, "Invalid",
		    "no certificate to terminate TLS with"));
	else if (programmed)
		json_array_append_new(conds, cond(&cx, "Programmed", true, "Programmed",
		    "Listener is in the proxy's routing table"));
	else
		json_array_append_new(conds, cond(&cx, "Programmed", false, "Pending",
		    "the proxy is turned off (--controllers)"));
	json_array_append_new(conds, refs);
	return json_pack("{s:s, s:o, s:I, s:o}", "name", name, "supportedKinds", supported,
	    "attachedRoutes", http && kinds && !conflict ? attached_routes(gw, gl, routes) :
	    (json_int_t)0,
	    "conditions", conds);
}

json_t *
gwstatus_gateway(const json_t *gw, const json_t *routes, const json_t *secrets,
    const json_t *grants, bool programmed, const char *now)
{
	struct cond_ctx cx = { obj_get_path(gw, "status.conditions"), generation(gw), now };
	json_t *listeners = json_array(), *conds = json_array(), *addrs = json_array(), *gl;
	size_t i, nok = 0;
	json_array_foreach(obj_get_path(gw, "spec.listeners"), i, gl) {
		bool ok;
		json_array_append_new(listeners, listener_status(gw, gl, routes, secrets, grants, programmed,
		    now, &ok));
		nok += ok;
	}
	const json_t *al = json_array_get(obj_get_path(gw, "spec.addresses"), 0);
	json_array_append_new(addrs, json_pack("{s:s, s:s}", "type", "IPAddress", "value",
	    *obj_str(al, "value") ? obj_str(al, "value") : "0.0.0.0"));
	json_array_append_new(conds, nok ? cond(&cx, "Accepted", true, "Accepted",
	    "Gateway is served by v6") : cond(&cx, "Accepted", false, "ListenersNotValid",
	    "no listener v6 can serve"));
	if (!nok)
		json_array_append_new(conds, cond(&cx, "Programmed", false, "Invalid",
		    "Gateway is not accepted"));
	else if (programmed)
		json_array_append_new(conds, cond(&cx, "Programmed", true, "Programmed",
		    "Gateway is in the proxy's routing table"));
	else
		json_array_append_new(conds, cond(&cx, "Programmed", false, "Pending",
		    "the proxy is turned off (--controllers)"));
	return json_pack("{s:o, s:o, s:o}", "addresses", addrs, "conditions", conds,
	    "listeners", listeners);
}

/* ---- HTTPRoutes --------------------------------------------------------- */

/* Accepted of one parentRef: reason and message (caller frees) set. */
static bool
parent_accepted(const json_t *route, const json_t *ref, const json_t *gateways,
    const json_t *services, const char **reason, char **msg)
{
	const char *kind = *obj_str(ref, "kind") ? obj_str(ref, "kind") : "Gateway";
	const char *ns = *obj_str(ref, "namespace") ? obj_str(ref, "namespace")
	    : obj_namespace(route);
	const char *name = obj_str(ref, "name");
	*reason = "NoMatchingParent";
	if (strcmp(kind, "Service") == 0) {
		const json_t *svc = obj_lookup(services, ns, name), *sp;
		json_int_t port = json_integer_value(json_object_get(ref, "port"));
		size_t i;
		json_array_foreach(obj_get_path(svc, "spec.ports"), i, sp)
			if (!port || json_integer_value(json_object_get(sp, "port")) == port) {
				*reason = "Accepted";
				*msg = xstrdup("Route is attached to the Service's listeners");
				return true;
			}
		*msg = svc ? xasprintf("Service %s/%s has no port %lld", ns, name, (long long)port)
		    : xasprintf("Service %s/%s not found", ns, name);
		return false;
	}
	const json_t *gw = strcmp(kind, "Gateway") == 0 ? obj_lookup(gateways, ns, name) : NULL, *gl;
	if (gw == NULL) {
		*msg = strcmp(kind, "Gateway") == 0 ? xasprintf("Gateway %s/%s not found", ns, name)
		    : xasprintf("parent kind %s is not supported by v6", kind);
		return false;
	}
	bool hostname = false, listener = false;
	size_t i;
	json_array_foreach(obj_get_path(gw, "spec.listeners"), i, gl) {
		enum routes_admit a = routes_listener_admits(gw, gl, route, ref);
		if (a == ROUTES_ADMITTED) {
			*reason = "Accepted";
			*msg = xstrdup("Route is attached to the Gateway");
			return true;
		}
		hostname |= a == ROUTES_NO_HOSTNAME;
		listener |= a != ROUTES_NOT_LISTENER;
	}
	if (hostname) {
		*reason = "NoMatchingListenerHostname";
		*msg = xstrdup("no listener's hostname matches the route's hostnames");
	} else if (listener) {
		*reason = "NotAllowedByListeners";
		*msg = xstrdup("the listeners do not allow this route (protocol, allowedRoutes)");
	} else {
		*msg = xasprintf("Gateway %s/%s has no listener matching sectionName/port", ns, name);
	}
	return false;
}

/* ResolvedRefs of the route's backends (the same for every parent). */
static bool
backends_resolved(const json_t *route, const json_t *services, const json_t *grants,
    const char **reason, char **msg)
{
	const json_t *rule, *br, *sp;
	size_t i, j, k;
	json_array_foreach(obj_get_path(route, "spec.rules"), i, rule)
		json_array_foreach(json_object_get(rule, "backendRefs"), j, br) {
			const char *kind = obj_str(br, "kind"), *group = obj_str(br, "group");
			const char *ns = *obj_str(br, "namespace") ? obj_str(br, "namespace")
			    : obj_namespace(route);
			const char *name = obj_str(br, "name");
			json_int_t port = json_integer_value(json_object_get(br, "port"));
			if ((*kind && strcmp(kind, "Service") != 0) || (*group && strcmp(group, "core"))) {
				*reason = "InvalidKind";
				*msg = xasprintf("backendRef %s: only Services are supported", name);
				return false;
			}
			if (!gw_ref_permitted(grants, GW_GROUP, "HTTPRoute", obj_namespace(route), "",
			    "Service", ns, name)) {
				*reason = "RefNotPermitted";
				*msg = xasprintf("backendRef to Service %s/%s: no ReferenceGrant in "
				    "namespace %s lets HTTPRoutes of namespace %s refer to it", ns, name,
				    ns, obj_namespace(route));
				return false;
			}
			const json_t *svc = obj_lookup(services, ns, name);
			bool found = false;
			json_array_foreach(obj_get_path(svc, "spec.ports"), k, sp)
				found |= json_integer_value(json_object_get(sp, "port")) == port;
			if (!found) {
				*reason = "BackendNotFound";
				*msg = svc ? xasprintf("Service %s/%s has no port %lld", ns, name,
				    (long long)port) : xasprintf("Service %s/%s not found", ns, name);
				return false;
			}
		}
	*reason = "ResolvedRefs";
	*msg = xstrdup("all backendRefs are resolved");
	return true;
}

/* The parentRef as status echoes it: group and kind spelled out. */
static json_t *
parent_ref(const json_t *ref)
{
	json_t *out = json_deep_copy(ref);
	if (!json_object_get(out, "group"))
		json_object_set_new(out, "group", json_string(GW_GROUP));
	if (!json_object_get(out, "kind"))
		json_object_set_new(out, "kind", json_string("Gateway"));
	return out;
}

static const json_t *
old_parent(const json_t *route, const json_t *ref)
{
	const json_t *p;
	json_t *want = parent_ref(ref);
	size_t i;
	const json_t *found = NULL;
	json_array_foreach(obj_get_path(route, "status.parents"), i, p)
		if (!found && json_equal(json_object_get(p, "parentRef"), want) &&
		    strcmp(obj_str(p, "controllerName"), GW_CONTROLLER_NAME) == 0)
			found = p;
	json_decref(want);
	return found;
}

json_t *
gwstatus_route(const json_t *route, const json_t *gateways, const json_t *services,
    const json_t *grants, const char *now)
{
	json_t *parents = json_array(), *ref;
	const char *rr_reason;
	char *rr_msg;
	bool resolved = backends_resolved(route, services, grants, &rr_reason, &rr_msg);
	size_t i;
	json_array_foreach(obj_get_path(route, "spec.parentRefs"), i, ref) {
		struct cond_ctx cx = { json_object_get(old_parent(route, ref), "conditions"),
			generation(route), now };
		const char *reason;
		char *msg;
		bool ok = parent_accepted(route, ref, gateways, services, &reason, &msg);
		json_array_append_new(parents, json_pack("{s:o, s:s, s:[o, o]}",
		    "parentRef", parent_ref(ref), "controllerName", GW_CONTROLLER_NAME,
		    "conditions", cond(&cx, "Accepted", ok, reason, msg),
		    cond(&cx, "ResolvedRefs", resolved, rr_reason, rr_msg)));
		free(msg);
	}
	free(rr_msg);
	return json_pack("{s:o}", "parents", parents);
}

/* A GRPCRoute: every parent refuses it (no listener of V6's proxy, which speaks
 * HTTP/1.1, supports the kind), in the condition a Gateway API implementation
 * gives a route kind it does not support. */
static json_t *
gwstatus_grpcroute(const json_t *route, const char *now)
{
	json_t *parents = json_array(), *ref;
	size_t i;
	json_array_foreach(obj_get_path(route, "spec.parentRefs"), i, ref) {
		struct cond_ctx cx = { json_object_get(old_parent(route, ref), "conditions"),
			generation(route), now };
		json_array_append_new(parents, json_pack("{s:o, s:s, s:[o]}",
		    "parentRef", parent_ref(ref), "controllerName", GW_CONTROLLER_NAME,
		    "conditions", cond(&cx, "Accepted", false, "NotAllowedByListeners",
		    "GRPCRoute is not supported by v6: its proxy does not speak HTTP/2")));
	}
	return json_pack("{s:o}", "parents", parents);
}

/* ---- the controllers ---------------------------------------------------- */

/* Two descriptors on the controller core, one per primary kind: a
 * Gateway's status depends on the HTTPRoutes (attachedRoutes), a route's
 * on the Gateways and Services; a change of one queues every primary of
 * the other controller (their number is small: routes, not Services). */
struct ctrl_gwstatus {
	bool programmed;
	size_t writes;
	struct ctrl *gw, *route, *grpc;
};

static json_t *
index_of(struct ctrl *c, const char *api_version, const char *kind, const char *ns)
{
	const struct kind *k = kind_find_gvk(api_version, kind);
	json_t *items = NULL, *idx;
	char res[128];
	if (k == NULL)
		return json_object();
	api_res_key(k, res, sizeof res);
	if (store_list(ctrl_store(c), res, ns, &items, NULL) < 0)
		return json_object();
	idx = obj_index(items);
	json_decref(items);
	return idx;
}

/* A status write when want (consumed) differs from obj's. */
static void
push_status(const json_t *obj, json_t *want, struct ctrl_writes *out)
{
	if (json_equal(json_object_get(obj, "status"), want)) {
		json_decref(want);
		return;
	}
	json_t *copy = json_deep_copy(obj);
	json_object_set_new(copy, "status", want);
	ctrl_writes_push(out, CTRL_STATUS, NULL, copy, 0);
}

static void
now_rfc3339(int64_t now_ms, char out[64])
{
	time_format_rfc3339((time_t)(now_ms / 1000), out);
}

static int
gateway_decide(struct ctrl *c, const json_t *gw, int64_t now_ms, struct ctrl_writes *out)
{
	struct ctrl_gwstatus *g = ctrl_data(c);
	json_t *routes = index_of(c, GW_GROUP "/v1", "HTTPRoute", NULL), *secrets = NULL, *gl;
	json_t *grants = NULL, *ref;
	size_t i, j;
	bool other_ns = false;
	char now[64];
	json_array_foreach(obj_get_path(gw, "spec.listeners"), i, gl)
		json_array_foreach(obj_get_path(gl, "tls.certificateRefs"), j, ref)
			other_ns |= *obj_str(ref, "namespace") &&
			    strcmp(obj_str(ref, "namespace"), obj_namespace(gw)) != 0;
	json_array_foreach(obj_get_path(gw, "spec.listeners"), i, gl)
		if (secrets == NULL && strcmp(obj_str(gl, "protocol"), "HTTPS") == 0)
			/* only when certificates count; other namespaces' only when a
			 * certificateRef points there (a ReferenceGrant may allow it) */
			secrets = index_of(c, "v1", "Secret", other_ns ? NULL : obj_namespace(gw));
	if (other_ns)
		grants = index_of(c, GW_GROUP "/v1", "ReferenceGrant", NULL);
	now_rfc3339(now_ms, now);
	push_status(gw, gwstatus_gateway(gw, routes, secrets, grants, g->programmed, now), out);
	json_decref(routes);
	json_decref(secrets);
	json_decref(grants);
	return 0;
}

static int
route_decide(struct ctrl *c, const json_t *route, int64_t now_ms, struct ctrl_writes *out)
{
	json_t *gws = index_of(c, GW_GROUP "/v1", "Gateway", NULL);
	json_t *svcs = index_of(c, "v1", "Service", NULL);
	json_t *grants = index_of(c, GW_GROUP "/v1", "ReferenceGrant", NULL);
	char now[64];
	now_rfc3339(now_ms, now);
	push_status(route, gwstatus_route(route, gws, svcs, grants, now), out);
	json_decref(gws);
	json_decref(svcs);
	json_decref(grants);
	return 0;
}

static int
grpc_decide(struct ctrl *c, const json_t *route, int64_t now_ms, struct ctrl_writes *out)
{
	char now[64];
	(void)c;
	now_rfc3339(now_ms, now);
	push_status(route, gwstatus_grpcroute(route, now), out);
	return 0;
}

static void
count_write(struct ctrl *c, const json_t *obj, const struct ctrl_write *w, const json_t *made,
    const char *err)
{
	struct ctrl_gwstatus *g = ctrl_data(c);
	(void)obj;
	(void)w;
	(void)made;
	if (err == NULL)
		g->writes++;
}

static void
enqueue_all(struct ctrl *c, enum store_event ev, const json_t *obj)
{
	(void)ev;
	(void)obj;
	ctrl_enqueue_all(c);
}

/* A Secret's change matters to the Gateways with an HTTPS listener only. */
static void
enqueue_secret_users(struct ctrl *c, enum store_event ev, const json_t *obj)
{
	(void)ev;
	if (strcmp(obj_str(obj, "type"), "kubernetes.io/tls") == 0)
		ctrl_enqueue_all(c);
}

static const struct ctrl_desc gateway_desc = {
	.name = "gateway",
	.component = GW_CONTROLLER_NAME,
	.api_version = GW_GROUP "/v1",
	.kind = "Gateway",
	.res = GW_GROUP "/gateways",
	.sources = {
		{ .res = GW_GROUP "/gateways" },
		{ .res = GW_GROUP "/httproutes", .map = enqueue_all },
		{ .res = "secrets", .map = enqueue_secret_users },
		{ .res = GW_GROUP "/referencegrants", .map = enqueue_all },
	},
	.decide = gateway_decide,
	.result = count_write,
};

static const struct ctrl_desc route_desc = {
	.name = "httproute",
	.component = GW_CONTROLLER_NAME,
	.api_version = GW_GROUP "/v1",
	.kind = "HTTPRoute",
	.res = GW_GROUP "/httproutes",
	.sources = {
		{ .res = GW_GROUP "/httproutes" },
		{ .res = GW_GROUP "/gateways", .map = enqueue_all },
		{ .res = "services", .map = enqueue_all },
		{ .res = GW_GROUP "/referencegrants", .map = enqueue_all },
	},
	.decide = route_decide,
	.result = count_write,
};

static const struct ctrl_desc grpc_desc = {
	.name = "grpcroute",
	.component = GW_CONTROLLER_NAME,
	.api_version = GW_GROUP "/v1",
	.kind = "GRPCRoute",
	.res = GW_GROUP "/grpcroutes",
	.sources = {
		{ .res = GW_GROUP "/grpcroutes" },
	},
	.decide = grpc_decide,
	.result = count_write,
};

int
ctrl_gwstatus_start(struct api *api, bool programmed, struct ctrl_gwstatus **out)
{
	struct ctrl_gwstatus *g = xcalloc(1, sizeof *g);
	int rc = 0;
	g->programmed = programmed;
	*out = g;
	if (!kind_find_gvk(gateway_desc.api_version, gateway_desc.kind) ||
	    !kind_find_gvk(route_desc.api_version, route_desc.kind))
		return 0;	/* no Gateway API kinds: nothing to report */
	if ((rc = ctrl_start(api, &gateway_desc, g, &g->gw)) < 0 ||
	    (rc = ctrl_start(api, &route_desc, g, &g->route)) < 0 ||
	    (kind_find_gvk(grpc_desc.api_version, grpc_desc.kind) &&
	    (rc = ctrl_start(api, &grpc_desc, g, &g->grpc)) < 0)) {
		ctrl_gwstatus_stop(g);
		*out = NULL;
	}
	return rc;
}

size_t
ctrl_gwstatus_writes(const struct ctrl_gwstatus *c)
{
	return c ? c->writes : 0;
}

void
ctrl_gwstatus_stop(struct ctrl_gwstatus *c)
{
	if (c == NULL)
		return;
	ctrl_stop(c->gw);
	ctrl_stop(c->route);
	ctrl_stop(c->grpc);
	free(c);
}
