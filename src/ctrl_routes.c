/* ctrl_routes.c — the routing snapshot (proxy.h) from Services, Endpoints,
 * Pods (revision labels), Gateways, HTTPRoutes and Rollouts: routes_build()
 * is the pure mapping; routes_table keeps the same table incrementally (per
 * Service, plus a shared part for Gateways, HTTPRoutes and Rollouts); the
 * watcher feeds it from a store watch, commits at most once per loop
 * iteration and hands what changed to the proxy feed with the store's
 * resourceVersion. Started by server.c. Kinds missing from the kind table
 * are skipped. */
#include "obs_otlp.h"
#include "ctrl.h"
#include "log.h"
#include "proxy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define GW_GROUP	"gateway.networking.k8s.io"
#define LB_ANNOTATION	"v6.dev/load-balancing"
#define TRACE_ANNOTATION "v6.dev/trace-sample-ratio"	/* the proxy's root sampling, per Service */
/* scale from zero: with no endpoint, requests wait this long (a duration) */
#define HOLD_ANNOTATION "v6.dev/hold-requests-timeout"

/* ---- collections -------------------------------------------------------- */

static int
cmp_obj(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(obj_namespace(x), obj_namespace(y));
	return c ? c : strcmp(obj_name(x), obj_name(y));
}

/* Routes: oldest first, then by namespace/name (Gateway API's tie-break). */
static int
cmp_route_obj(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(obj_str_at(x, "metadata.creationTimestamp"),
	    obj_str_at(y, "metadata.creationTimestamp"));
	return c ? c : cmp_obj(a, b);
}

/* The objects of coll (an array, or an object whose values are objects),
 * sorted; borrowed pointers in a malloc'ed array. */
static const json_t **
sorted(const json_t *coll, size_t *n, int (*cmp)(const void *, const void *))
{
	size_t cap = json_is_array(coll) ? json_array_size(coll) : json_object_size(coll);
	const json_t **v = xcalloc(cap + 1, sizeof *v);
	const char *key;
	json_t *o;
	size_t i;
	*n = 0;
	if (json_is_array(coll))
		json_array_foreach(coll, i, o)
			v[(*n)++] = o;
	else
		json_object_foreach((json_t *)coll, key, o)
			v[(*n)++] = o;
	qsort(v, *n, sizeof *v, cmp);
	return v;
}

/* ---- Service ports ------------------------------------------------------- */

/* "http" or "80": a port's name, else its number. out >= 64 bytes. */
static const char *
port_key(const json_t *port, char *out)
{
	const char *name = obj_str(port, "name");
	if (*name)
		snprintf(out, 64, "%s", name);
	else
		snprintf(out, 64, "%lld", (long long)json_integer_value(json_object_get(port, "port")));
	return out;
}

/* The first word of a port name ("http" of "http-metrics"). */
static bool
word_is(const char *name, const char *const *words)
{
	size_t len = strcspn(name, "-");
	for (; *words; words++)
		if (strlen(*words) == len && strncasecmp(name, *words, len) == 0)
			return true;
	return false;
}

/* HTTP or TCP, in this order: appProtocol ("http", "kubernetes.io/ws" ->
 * HTTP; anything else -> TCP); the port name's first word (Istio's
 * convention: http, web, ws -> HTTP; tcp, tls, https, grpc, h2c, database
 * and broker names -> TCP); the port numbers of well-known non-HTTP
 * services -> TCP; otherwise HTTP. */
static bool
port_is_http(const json_t *port)
{
	static const char *const http_words[] = { "http", "web", "ws", "websocket", NULL };
	static const char *const tcp_words[] = { "tcp", "tls", "https", "grpc", "grpcs",
		"h2", "h2c", "http2", "mysql", "postgres", "postgresql", "pg", "redis", "mongo",
		"mongodb", "amqp", "kafka", "zookeeper", "nats", "mqtt", "memcached", "ssh",
		"smtp", "dns", "ldap", NULL };
	static const int tcp_ports[] = { 22, 25, 53, 389, 443, 1433, 1521, 2181, 3306, 4222,
		5432, 5672, 6379, 9042, 9092, 11211, 27017 };
	const char *ap = obj_str(port, "appProtocol"), *name = obj_str(port, "name");
	if (*ap)
		return strcasecmp(ap, "http") == 0 || strcasecmp(ap, "kubernetes.io/ws") == 0;
	if (*name && word_is(name, http_words))
		return true;
	if (*name && word_is(name, tcp_words))
		return false;
	json_int_t num = json_integer_value(json_object_get(port, "port"));
	for (size_t i = 0; i < ARRAY_SIZE(tcp_ports); i++)
		if (num == tcp_ports[i])
			return false;
	return true;
}

static bool
port_is_tcp_protocol(const json_t *port)
{
	const char *p = obj_str(port, "protocol");
	return !*p || strcmp(p, "TCP") == 0;
}

/* ---- the build ------------------------------------------------------------ */

struct build {
	json_t *svcs;		/* "ns/name" -> Service */
	json_t *eps;		/* "ns/name" -> Endpoints */
	const json_t *pods;	/* "ns/name" -> Pod */
	json_t *clusters;	/* name -> cluster */
	json_t *listeners;	/* name -> listener */
	json_t *by_addr;	/* "addr:port" -> listener name (Gateways share ports) */
	json_t *extra;		/* listener name -> [route entries] from HTTPRoutes */
	const json_t *secrets;	/* "ns/name" -> Secret: HTTPS listeners' certificates */
	const json_t *grants;	/* ReferenceGrants: cross-namespace references */
	json_t *served;		/* "ns/gw/listener" -> the listener serving it */
};

static const char *
pod_revision(const json_t *pod)
{
	const json_t *labels = obj_labels(pod);
	const char *r = json_string_value(json_object_get(labels, "rollouts-pod-template-hash"));
	if (r == NULL)
		r = json_string_value(json_object_get(labels, "pod-template-hash"));
	if (r == NULL)
		r = json_string_value(json_object_get(labels, "controller-revision-hash"));
	return r;
}

static int
cmp_endpoint(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(obj_str(x, "address"), obj_str(y, "address"));
	if (c)
		return c;
	json_int_t px = json_integer_value(json_object_get(x, "port"));
	json_int_t py = json_integer_value(json_object_get(y, "port"));
	return px < py ? -1 : px > py;
}

/* The ready addresses of the Endpoints of svc for the Service port sp. */
static json_t *
cluster_endpoints(struct build *b, const json_t *svc, const json_t *sp)
{
	const char *ns = obj_namespace(svc), *want = obj_str(sp, "name");
	const json_t *ep = obj_lookup(b->eps, ns, obj_name(svc)), *subset, *port, *addr;
	size_t i, j, k, n = 0;
	json_t *list = json_array();
	json_array_foreach(json_object_get(ep, "subsets"), i, subset)
		json_array_foreach(json_object_get(subset, "ports"), j, port) {
			if (strcmp(obj_str(port, "name"), want) != 0 ||
			    !port_is_tcp_protocol(port))
				continue;
			json_array_foreach(json_object_get(subset, "addresses"), k, addr) {
				const json_t *ref = json_object_get(addr, "targetRef");
				json_t *e = json_pack("{s:s, s:O}", "address", obj_str(addr, "ip"),
				    "port", json_object_get(port, "port"));
				if (strcmp(obj_str(ref, "kind"), "Pod") == 0) {
					const char *pns = *obj_str(ref, "namespace") ? obj_str(ref,
					    "namespace") : ns;
					const char *rev = pod_revision(obj_lookup(b->pods, pns,
					    obj_str(ref, "name")));
					json_object_set_new(e, "pod", json_string(obj_str(ref, "name")));
					if (rev)
						json_object_set_new(e, "revision", json_string(rev));
				}
				json_array_append_new(list, e);
			}
		}
	json_t **v = xcalloc(json_array_size(list) + 1, sizeof *v), *e;
	json_array_foreach(list, i, e)
		v[n++] = e;
	qsort(v, n, sizeof *v, cmp_endpoint);
	json_t *out = json_array();
	for (i = 0; i < n; i++)
		if (i == 0 || cmp_endpoint(&v[i - 1], &v[i]) != 0)
			json_array_append(out, v[i]);
	free(v);
	json_decref(list);
	return out;
}

/* The cluster of Service ns/name port sp (NULL: the Service or the port is
 * unknown, then an empty cluster named after port_num). Returns its name
 * (caller frees). */
static char *
cluster_for(struct build *b, const char *ns, const char *name, const json_t *sp,
    json_int_t port_num)
{
	char pk[64];
	char *cname = sp ? xasprintf("%s/%s:%s", ns, name, port_key(sp, pk))
	    : xasprintf("%s/%s:%lld", ns, name, (long long)port_num);
	if (json_object_get(b->clusters, cname))
		return cname;
	const json_t *svc = obj_lookup(b->svcs, ns, name);
	const char *lb = json_string_value(json_object_get(obj_get_path(svc,
	    "metadata.annotations"), LB_ANNOTATION));
	char *svc_name = xasprintf("%s/%s", ns, name);
	json_t *c = json_pack("{s:s, s:s, s:i, s:i, s:o}", "service", svc_name,
	    "lb", lb && strcmp(lb, "least_request") == 0 ? "least_request" : "round_robin",
	    "connect_timeout_ms", 1000, "idle_timeout_ms", 60000,
	    "endpoints", sp && svc ? cluster_endpoints(b, svc, sp) : json_array());
	free(svc_name);
	const char *tr = json_string_value(json_object_get(obj_get_path(svc,
	    "metadata.annotations"), TRACE_ANNOTATION));
	double ratio;
	if (tr && otlp_ratio_parse(tr, &ratio) == 0)	/* else the proxy's own ratio */
		json_object_set_new(c, "trace_sample_ratio", json_real(ratio));
	const char *hold = json_string_value(json_object_get(obj_get_path(svc,
	    "metadata.annotations"), HOLD_ANNOTATION));
	int64_t hold_ms;
	if (hold && duration_parse(hold, &hold_ms) == 0 && hold_ms > 0 && hold_ms <= 86400000)
		json_object_set_new(c, "hold_ms", json_integer(hold_ms));
	json_object_set_new(b->clusters, cname, c);
	return cname;
}

/* The cluster of a backendRef no ReferenceGrant permits: no endpoints, so
 * the requests its weight takes fail (Gateway API: as for a Service that
 * does not exist), never the Service's own cluster. Returns its name
 * (caller frees). */
static char *
refused_cluster(struct build *b, const char *ns, const char *name, json_int_t port)
{
	char *cname = xasprintf("refused/%s/%s:%lld", ns, name, (long long)port);
	if (!json_object_get(b->clusters, cname))
		json_object_set_new(b->clusters, cname, json_pack("{s:s, s:s, s:i, s:i, s:[]}",
		    "service", cname, "lb", "round_robin", "connect_timeout_ms", 1000,
		    "idle_timeout_ms", 60000, "endpoints"));
	return cname;
}

/* A listener on addr:port, or the one already there (two Gateway
 * listeners may share a port, told apart by hostname). Returns it. */
static json_t *
listener_add(struct build *b, const char *name, const char *addr, json_int_t port,
    bool http, const char *cluster)
{
	char *key = xasprintf("%s:%lld", addr, (long long)port);
	const char *have = json_string_value(json_object_get(b->by_addr, key));
	json_t *l = have ? json_object_get(b->listeners, have) : NULL;
	if (l == NULL) {
		l = json_pack("{s:s, s:s, s:I, s:s}", "name", name, "address", addr, "port",
		    (json_int_t)port, "protocol", http ? "HTTP" : "TCP");
		if (http)
			json_object_set_new(l, "routes", json_array());
		else
			json_object_set_new(l, "cluster", json_string(cluster));
		json_object_set_new(b->listeners, name, l);
		json_object_set_new(b->by_addr, key, json_string(name));
	}
	free(key);
	return l;
}

static void
add_service(struct build *b, const json_t *svc)
{
	const char *ns = obj_namespace(svc), *name = obj_name(svc);
	const char *type = obj_str_at(svc, "spec.type"), *cip = obj_str_at(svc, "spec.clusterIP");
	bool node_port = strcmp(type, "NodePort") == 0 || strcmp(type, "LoadBalancer") == 0;
	size_t i;
	json_t *sp;
	if (strcmp(type, "ExternalName") == 0)
		return;
	json_array_foreach(obj_get_path(svc, "spec.ports"), i, sp) {
		char pk[64];
		if (!port_is_tcp_protocol(sp))
			continue;
		char *cname = cluster_for(b, ns, name, sp, 0);
		bool http = port_is_http(sp);
		char *lname = xasprintf("svc/%s/%s/%s", ns, name, port_key(sp, pk));
		char *route = xasprintf("svc/%s/%s", ns, name);
		json_t *def = json_pack("{s:s, s:[{s:s, s:i}]}", "name", route, "backends",
		    "cluster", cname, "weight", 1);
		json_int_t np = json_integer_value(json_object_get(sp, "nodePort"));
		json_t *l;
		if (*cip && strcmp(cip, "None") != 0) {
			l = listener_add(b, lname, cip, json_integer_value(json_object_get(sp,
			    "port")), http, cname);
			if (http)
				json_array_append(json_object_get(l, "routes"), def);
		}
		if (node_port && np > 0) {
			char *nname = xasprintf("%s/nodeport", lname);
			l = listener_add(b, nname, "0.0.0.0", np, http, cname);
			if (http)
				json_array_append(json_object_get(l, "routes"), def);
			free(nname);
		}
		json_decref(def);
		free(route);
		free(lname);
		free(cname);
	}
}

/* The container ports of pod with a TCP hostPort, as [{hostPort, hostIP,
 * containerPort}]: also what pod_trim keeps of them. */
static json_t *
host_ports_of(const json_t *pod)
{
	json_t *out = json_array();
	const json_t *c, *p;
	size_t i, j;
	json_array_foreach(obj_get_path(pod, "spec.containers"), i, c)
		json_array_foreach(json_object_get(c, "ports"), j, p) {
			json_int_t hp = json_integer_value(json_object_get(p, "hostPort"));
			if (hp <= 0 || !port_is_tcp_protocol(p))
				continue;
			json_array_append_new(out, json_pack("{s:I, s:s, s:I}", "hostPort", hp,
			    "hostIP", obj_str(p, "hostIP"), "containerPort",
			    json_integer_value(json_object_get(p, "containerPort"))));
		}
	return out;
}

/* A pod's hostPorts, as kubelet's portmap plugin gives them but through the
 * proxy's TCP splice (the NodePort path; no iptables): a listener on
 * hostIP (default 0.0.0.0):hostPort and a cluster of the pod's own
 * address:containerPort, while the pod has an IP, runs and is not being
 * deleted. For both runtimes: a runc pod's address is on the pod network,
 * a process pod's on loopback. */
static void
add_host_ports(struct build *b, const json_t *pod)
{
	const char *ip = obj_str_at(pod, "status.podIP"), *phase = obj_str_at(pod, "status.phase");
	const char *ns = obj_namespace(pod), *name = obj_name(pod);
	if (!*ip || obj_get_path(pod, "metadata.deletionTimestamp") ||
	    strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)
		return;
	json_t *hps = host_ports_of(pod), *hp;
	size_t i;
	json_array_foreach(hps, i, hp) {
		json_int_t port = json_integer_value(json_object_get(hp, "hostPort"));
		const char *hip = obj_str(hp, "hostIP");
		char *cname = xasprintf("hostport/%s/%s:%lld", ns, name, (long long)port);
		char *lname = xasprintf("hostport/%s/%s/%lld", ns, name, (long long)port);
		json_object_set_new(b->clusters, cname, json_pack("{s:s++, s:s, s:i, s:i, "
		    "s:[{s:s, s:O, s:s}]}", "service", ns, "/", name, "lb", "round_robin",
		    "connect_timeout_ms", 1000, "idle_timeout_ms", 60000, "endpoints", "address",
		    ip, "port", json_object_get(hp, "containerPort"), "pod", name));
		listener_add(b, lname, *hip ? hip : "0.0.0.0", port, false, cname);
		free(cname);
		free(lname);
	}
	json_decref(hps);
}

/* ---- HTTPRoutes ------------------------------------------------------------- */

/* pattern matches host: equal, or "*.x" and host ends in ".x". */
static bool
host_covers(const char *pattern, const char *host)
{
	if (strcasecmp(pattern, host) == 0)
		return true;
	if (strncmp(pattern, "*.", 2) != 0)
		return false;
	size_t pl = strlen(pattern + 1), hl = strlen(host);
	return hl > pl && strcasecmp(host + hl - pl, pattern + 1) == 0;
}

/* The hostnames a route serves on a listener with hostname lh ("" = any):
 * a new array; NULL when they do not intersect. An empty array: any host. */
static json_t *
hosts_on(const json_t *route_hosts, const char *lh)
{
	json_t *out = json_array(), *h;
	size_t i;
	if (json_array_size(route_hosts) == 0) {
		if (*lh)
			json_array_append_new(out, json_string(lh));
		return out;
	}
	json_array_foreach(route_hosts, i, h) {
		const char *rh = json_string_value(h);
		if (rh == NULL)
			continue;
		if (!*lh || host_covers(lh, rh))
			json_array_append_new(out, json_string(rh));
		else if (host_covers(rh, lh))
			json_array_append_new(out, json_string(lh));
	}
	if (json_array_size(out) == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static json_t *
route_backends(struct build *b, const char *rns, const json_t *rule)
{
	json_t *out = json_array(), *br;
	size_t i;
	json_array_foreach(json_object_get(rule, "backendRefs"), i, br) {
		const char *kind = obj_str(br, "kind"), *group = obj_str(br, "group");
		if ((*kind && strcmp(kind, "Service") != 0) || (*group && strcmp(group, "core")))
			continue;
		const char *ns = *obj_str(br, "namespace") ? obj_str(br, "namespace") : rns;
		json_int_t port = json_integer_value(json_object_get(br, "port"));
		const json_t *svc = obj_lookup(b->svcs, ns, obj_str(br, "name")), *sp, *found = NULL;
		size_t j;
		json_array_foreach(obj_get_path(svc, "spec.ports"), j, sp)
			if (json_integer_value(json_object_get(sp, "port")) == port && !found)
				found = sp;
		char *cname = gw_ref_permitted(b->grants, GW_GROUP, "HTTPRoute", rns, "", "Service",
		    ns, obj_str(br, "name")) ? cluster_for(b, ns, obj_str(br, "name"), found, port)
		    : refused_cluster(b, ns, obj_str(br, "name"), port);
		const json_t *w = json_object_get(br, "weight");
		json_array_append_new(out, json_pack("{s:s, s:I}", "cluster", cname, "weight",
		    w ? json_integer_value(w) : (json_int_t)1));
		free(cname);
	}
	return out;
}

/* The filters the proxy applies, as the snapshot has them: {type, ...the
 * filter's member}; NULL when none. One of each type (the schema's rule). */
static json_t *
route_filters(const json_t *rule)
{
	static const struct { const char *type, *member; } served[] = {
		{ "RequestHeaderModifier", "requestHeaderModifier" },
		{ "RequestRedirect", "requestRedirect" },
		{ "URLRewrite", "urlRewrite" },
	};
	json_t *f, *out = json_array();
	size_t i;
	json_array_foreach(json_object_get(rule, "filters"), i, f)
		for (size_t k = 0; k < ARRAY_SIZE(served); k++) {
			const json_t *m = json_object_get(f, served[k].member);
			if (strcmp(obj_str(f, "type"), served[k].type) != 0 || !json_is_object(m))
				continue;
			json_t *one = json_deep_copy(m);
			json_object_set_new(one, "type", json_string(served[k].type));
			json_array_append_new(out, one);
		}
	if (json_array_size(out) == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* A match as the snapshot has it; NULL for one the proxy cannot serve. */
static json_t *
route_match(const json_t *m)
{
	const json_t *path = json_object_get(m, "path");
	const char *type = *obj_str(path, "type") ? obj_str(path, "type") : "PathPrefix";
	const char *value = *obj_str(path, "value") ? obj_str(path, "value") : "/";
	static const char *const keys[] = { "headers", "queryParams", "method" };
	if (strcmp(type, "PathPrefix") != 0 && strcmp(type, "Exact") != 0)
		return NULL;
	json_t *out = json_pack("{s:{s:s, s:s}}", "path", "type", type, "value", value);
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
		if (json_object_get(m, keys[k]))
			json_object_set_new(out, keys[k], json_deep_copy(json_object_get(m, keys[k])));
	return out;
}

/* Gateway API precedence, as one sortable key: an exact hostname before a
 * wildcard before none (longer first), Exact path before prefix, longer
 * path, a method, more headers, more query params; then the order the
 * routes arrive in (oldest route first, rule, match). */
static json_t *
entry_new(json_t *route, const char *host, const json_t *match, size_t seq)
{
	const json_t *path = json_object_get(match, "path");
	int hclass = host == NULL ? 2 : host[0] == '*' ? 1 : 0;
	json_t *e = json_pack("{s:i, s:I, s:b, s:I, s:b, s:I, s:I, s:I, s:o}",
	    "hclass", hclass, "hlen", (json_int_t)(host ? strlen(host) : 0),
	    "exact", strcmp(obj_str(path, "type"), "Exact") == 0,
	    "plen", (json_int_t)strlen(obj_str(path, "value")),
	    "method", json_object_get(match, "method") != NULL,
	    "nh", (json_int_t)json_array_size(json_object_get(match, "headers")),
	    "nq", (json_int_t)json_array_size(json_object_get(match, "queryParams")),
	    "seq", (json_int_t)seq, "route", route);
	return e;
}

static json_int_t
ival(const json_t *e, const char *k)
{
	return json_integer_value(json_object_get(e, k));
}

static int
cmp_entry(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	static const struct { const char *key; int dir; } order[] = {
		{ "hclass", 1 }, { "hlen", -1 }, { "exact", -1 }, { "plen", -1 },
		{ "method", -1 }, { "nh", -1 }, { "nq", -1 }, { "seq", 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		json_int_t u = ival(x, order[i].key), v = ival(y, order[i].key);
		if (u != v)
			return (u < v ? -1 : 1) * order[i].dir;
	}
	return 0;
}

/* Adds the rules of HTTPRoute r to listener lname, for hostnames hosts. */
static void
attach_rules(struct build *b, const json_t *r, const char *lname, const json_t *hosts,
    size_t *seq)
{
	const char *ns = obj_namespace(r);
	json_t *entries = json_object_get(b->extra, lname), *rule;
	size_t i, j, h;
	if (entries == NULL) {
		entries = json_array();
		json_object_set_new(b->extra, lname, entries);
	}
	json_array_foreach(obj_get_path(r, "spec.rules"), i, rule) {
		json_t *ms = json_object_get(rule, "matches"), *m;
		json_t *all = json_array_size(ms) ? json_incref(ms) : json_pack("[{}]");
		json_t *filters = route_filters(rule), *backends = route_backends(b, ns, rule);
		char *name = xasprintf("httproute/%s/%s/%zu", ns, obj_name(r), i);
		json_array_foreach(all, j, m) {
			json_t *match = route_match(m);
			if (match == NULL)
				continue;
			for (h = 0; h < json_array_size(hosts) || (h == 0 && !json_array_size(hosts));
			    h++) {
				const char *host = json_string_value(json_array_get(hosts, h));
				json_t *route = json_pack("{s:s, s:[], s:[O], s:O}", "name", name,
				    "hostnames", "matches", match, "backends", backends);
				if (host)
					json_array_append_new(json_object_get(route, "hostnames"),
					    json_string(host));
				if (filters)
					json_object_set(route, "filters", filters);
				if (json_object_get(rule, "timeouts"))
					json_object_set_new(route, "timeouts",
					    json_deep_copy(json_object_get(rule, "timeouts")));
				json_array_append_new(entries, entry_new(route, host, match, (*seq)++));
			}
			json_decref(match);
		}
		free(name);
		json_decref(all);
		json_decref(filters);
		json_decref(backends);
	}
}

static bool
allowed_from(const json_t *gw, const json_t *gl, const json_t *route)
{
	const char *from = obj_str_at(gl, "allowedRoutes.namespaces.from");
	if (strcmp(from, "All") == 0)
		return true;
	if (*from && strcmp(from, "Same") != 0)
		return false;	/* Selector: not supported yet */
	return strcmp(obj_namespace(gw), obj_namespace(route)) == 0;
}

bool
routes_listener_takes_httproutes(const json_t *gl)
{
	const json_t *kinds = obj_get_path(gl, "allowedRoutes.kinds"), *k;
	size_t i;
	if (json_array_size(kinds) == 0)
		return true;
	json_array_foreach(kinds, i, k)
		if (strcmp(obj_str(k, "kind"), "HTTPRoute") == 0 &&
		    (!*obj_str(k, "group") || strcmp(obj_str(k, "group"), GW_GROUP) == 0))
			return true;
	return false;
}

enum routes_admit
routes_listener_admits(const json_t *gw, const json_t *gl, const json_t *route,
    const json_t *ref)
{
	const char *section = obj_str(ref, "sectionName");
	json_int_t port = json_integer_value(json_object_get(ref, "port"));
	if ((*section && strcmp(section, obj_str(gl, "name")) != 0) ||
	    (port && port != json_integer_value(json_object_get(gl, "port"))))
		return ROUTES_NOT_LISTENER;
	if ((strcmp(obj_str(gl, "protocol"), "HTTP") != 0 &&
	    strcmp(obj_str(gl, "protocol"), "HTTPS") != 0) || !allowed_from(gw, gl, route) ||
	    !routes_listener_takes_httproutes(gl))
		return ROUTES_NOT_ALLOWED;
	json_t *hosts = hosts_on(obj_get_path(route, "spec.hostnames"), obj_str(gl, "hostname"));
	bool intersect = hosts != NULL;
	json_decref(hosts);
	return intersect ? ROUTES_ADMITTED : ROUTES_NO_HOSTNAME;
}

static void
attach_to_gateway(struct build *b, const json_t *r, const json_t *ref, const json_t *gws,
    size_t *seq)
{
	const char *ns = *obj_str(ref, "namespace") ? obj_str(ref, "namespace") : obj_namespace(r);
	const json_t *gw = obj_lookup(gws, ns, obj_str(ref, "name")), *gl;
	size_t i;
	json_array_foreach(obj_get_path(gw, "spec.listeners"), i, gl) {
		if (routes_listener_admits(gw, gl, r, ref) != ROUTES_ADMITTED)
			continue;
		json_t *hosts = hosts_on(obj_get_path(r, "spec.hostnames"), obj_str(gl, "hostname"));
		char *key = xasprintf("%s/%s/%s", obj_namespace(gw), obj_name(gw), obj_str(gl, "name"));
		const char *owner = json_string_value(json_object_get(b->served, key));
		if (hosts && owner)
			attach_rules(b, r, owner, hosts, seq);
		free(key);
		json_decref(hosts);
	}
}

/* GAMMA: a route whose parent is a Service adds its rules before the
 * Service's own default route on the Service's listeners. */
static void
attach_to_service(struct build *b, const json_t *r, const json_t *ref, size_t *seq)
{
	const char *ns = *obj_str(ref, "namespace") ? obj_str(ref, "namespace") : obj_namespace(r);
	const json_t *svc = obj_lookup(b->svcs, ns, obj_str(ref, "name")), *sp;
	json_int_t port = json_integer_value(json_object_get(ref, "port"));
	const json_t *hosts = obj_get_path(r, "spec.hostnames");
	size_t i;
	json_array_foreach(obj_get_path(svc, "spec.ports"), i, sp) {
		char pk[64];
		if (port && port != json_integer_value(json_object_get(sp, "port")))
			continue;
		char *lname = xasprintf("svc/%s/%s/%s", ns, obj_name(svc), port_key(sp, pk));
		char *nname = xasprintf("%s/nodeport", lname);
		const char *names[] = { lname, nname };
		for (size_t k = 0; k < ARRAY_SIZE(names); k++) {
			json_t *l = json_object_get(b->listeners, names[k]);
			if (l && strcmp(obj_str(l, "protocol"), "HTTP") == 0)
				attach_rules(b, r, names[k], hosts, seq);
		}
		free(nname);
		free(lname);
	}
}

static void
add_routes(struct build *b, const json_t *httproutes, const json_t *gateways)
{
	json_t *gws = obj_index(gateways);
	size_t n, i, seq = 0;
	const json_t **v = sorted(httproutes, &n, cmp_route_obj), *ref;
	for (size_t k = 0; k < n; k++)
		json_array_foreach(obj_get_path(v[k], "spec.parentRefs"), i, ref) {
			const char *kind = *obj_str(ref, "kind") ? obj_str(ref, "kind") : "Gateway";
			if (strcmp(kind, "Gateway") == 0)
				attach_to_gateway(b, v[k], ref, gws, &seq);
			else if (strcmp(kind, "Service") == 0)
				attach_to_service(b, v[k], ref, &seq);
		}
	free(v);
	json_decref(gws);
}

/* The certificates of HTTPS listener gl on the proxy listener l (made for
 * it, or another HTTPS Gateway listener's on the same port: SNI tells them
 * apart). False when l is plain HTTP (a protocol conflict) or gl has no
 * certificate that loads: then gl is not served. */
static bool
add_tls(struct build *b, const json_t *gw, const json_t *gl, json_t *l, bool made)
{
	json_t *certs = NULL;
	const char *reason;
	char *msg = NULL;
	if (made) {
		json_object_set_new(l, "protocol", json_string("HTTPS"));
		json_object_set_new(l, "tls", json_array());
	}
	if (strcmp(obj_str(l, "protocol"), "HTTPS") != 0)
		return false;
	gw_listener_certs(gw, gl, b->secrets, b->grants, &certs, &reason, &msg);
	free(msg);
	bool ok = json_array_size(certs) > 0;
	json_array_extend(json_object_get(l, "tls"), certs);
	json_decref(certs);
	return ok;
}

static void
add_gateways(struct build *b, const json_t *gateways)
{
	size_t n, i;
	const json_t **v = sorted(gateways, &n, cmp_obj), *gl;
	for (size_t k = 0; k < n; k++) {
		json_t *al = json_array_get(obj_get_path(v[k], "spec.addresses"), 0);
		const char *addr = *obj_str(al, "value") ? obj_str(al, "value") : "0.0.0.0";
		json_array_foreach(obj_get_path(v[k], "spec.listeners"), i, gl) {
			bool https = strcmp(obj_str(gl, "protocol"), "HTTPS") == 0;
			if (strcmp(obj_str(gl, "protocol"), "HTTP") != 0 && !https)
				continue;	/* no TCPRoute or TLS passthrough yet */
			char *name = xasprintf("gw/%s/%s/%s", obj_namespace(v[k]), obj_name(v[k]),
			    obj_str(gl, "name"));
			json_t *l = listener_add(b, name, addr, json_integer_value(json_object_get(gl,
			    "port")), true, NULL);
			bool made = strcmp(obj_str(l, "name"), name) == 0;
			if (https ? add_tls(b, v[k], gl, l, made) :
			    strcmp(obj_str(l, "protocol"), "HTTP") == 0)
				json_object_set_new(b->served, name + 3, json_string(obj_str(l, "name")));
			if (made && https && json_array_size(json_object_get(l, "tls")) == 0) {
				char *key = xasprintf("%s:%lld", addr, (long long)json_integer_value(
				    json_object_get(gl, "port")));
				json_object_del(b->by_addr, key);	/* nothing to serve with */
				json_object_del(b->listeners, name);
				free(key);
			}
			free(name);
		}
	}
	free(v);
}

/* Puts the sorted HTTPRoute entries before each listener's own routes. */
static void
merge_routes(struct build *b)
{
	const char *lname;
	json_t *entries;
	json_object_foreach(b->extra, lname, entries) {
		json_t *l = json_object_get(b->listeners, lname);
		json_t *own = json_object_get(l, "routes"), *routes = json_array();
		size_t n = json_array_size(entries), i;
		json_t **v = xcalloc(n + 1, sizeof *v);
		for (i = 0; i < n; i++)
			v[i] = json_array_get(entries, i);
		qsort(v, n, sizeof *v, cmp_entry);
		for (i = 0; i < n; i++)
			json_array_append(routes, json_object_get(v[i], "route"));
		json_array_extend(routes, own);
		json_object_set_new(l, "routes", routes);
		free(v);
	}
}

/* The snapshot of the Services in svcs (an index "ns/name" -> Service, or
 * an array), reading Endpoints and Pods from the indexes eps and pods, with
 * the HTTPRoutes and Gateways (arrays or objects of objects). */
static json_t *
build_indexed(const json_t *svcs, const json_t *eps, const json_t *pods,
    const json_t *httproutes, const json_t *gateways, const json_t *secrets,
    const json_t *grants, bool host_ports, int64_t version)
{
	struct build b = { .svcs = obj_index(svcs), .eps = (json_t *)eps, .pods = pods,
		.clusters = json_object(), .listeners = json_object(), .by_addr = json_object(),
		.extra = json_object(), .secrets = secrets, .grants = grants,
		.served = json_object() };
	size_t n;
	const json_t **v = sorted(svcs, &n, cmp_obj);
	for (size_t i = 0; i < n; i++)
		add_service(&b, v[i]);
	free(v);
	if (host_ports) {
		v = sorted(pods, &n, cmp_obj);
		for (size_t i = 0; i < n; i++)
			add_host_ports(&b, v[i]);
		free(v);
	}
	add_gateways(&b, gateways);
	add_routes(&b, httproutes, gateways);
	merge_routes(&b);
	json_t *snap = json_pack("{s:I, s:o, s:o}", "version", (json_int_t)version,
	    "listeners", proxy_sorted_members(b.listeners, true),
	    "clusters", proxy_sorted_members(b.clusters, false));
	json_decref(b.svcs);
	json_decref(b.clusters);
	json_decref(b.listeners);
	json_decref(b.by_addr);
	json_decref(b.extra);
	json_decref(b.served);
	return snap;
}

json_t *
routes_build(const json_t *services, const json_t *endpoints, const json_t *pods,
    const json_t *httproutes, const json_t *gateways, const json_t *secrets,
    const json_t *grants, int64_t version)
{
	json_t *eps = obj_index(endpoints);
	json_t *pod_idx = json_is_array(pods) ? obj_index(pods) : NULL;
	json_t *sec_idx = obj_index(secrets);
	json_t *snap = build_indexed(services, eps, pod_idx ? pod_idx : pods, httproutes,
	    gateways, sec_idx, grants, true, version);
	json_decref(eps);
	json_decref(pod_idx);
	json_decref(sec_idx);
	return snap;
}

/* ---- Rollouts: canary weights, header routes, sticky cookie ------------------ */

#define STICKY_ANNOTATION "v6.dev/sticky-cookie"

/* The cluster of service ns/name serving the same port key as the cluster
 * "ns/other:KEY", else any cluster of ns/name; NULL when it has none. */
static const char *
sibling_cluster(const json_t *clusters, const char *stable_cluster, const char *svc)
{
	const char *colon = strrchr(stable_cluster, ':'), *k;
	json_t *c;
	char *want = xasprintf("%s%s", svc, colon ? colon : "");
	const char *found = NULL;
	json_object_foreach((json_t *)clusters, k, c) {
		if (!strcmp(k, want)) {
			found = k;
			break;
		}
		if (!found && !strcmp(obj_str(c, "service"), svc))
			found = k;
	}
	free(want);
	return found;
}

static json_t *
header_matches(const json_t *route, const json_t *hr)
{
	json_t *headers = json_array(), *out = json_array(), *m;
	const json_t *own = json_object_get(route, "matches");
	size_t i;
	json_array_foreach(json_object_get(hr, "match"), i, m) {
		const json_t *hv = json_object_get(m, "headerValue");
		const char *type = json_object_get(hv, "exact") ? "Exact" :
		    json_object_get(hv, "prefix") ? "Prefix" : "RegularExpression";
		const char *val = json_object_get(hv, "exact") ? obj_str(hv, "exact") :
		    json_object_get(hv, "prefix") ? obj_str(hv, "prefix") : obj_str(hv, "regex");
		json_array_append_new(headers, json_pack("{s:s, s:s, s:s}", "name",
		    obj_str(m, "headerName"), "type", type, "value", val));
	}
	if (json_array_size(own) == 0)
		json_array_append_new(out, json_pack("{s:O}", "headers", headers));
	json_array_foreach(own, i, m) {
		json_t *c = json_deep_copy(m), *h = json_object_get(c, "headers");
		if (!json_is_array(h))
			json_object_set_new(c, "headers", h = json_array());
		json_array_extend(h, headers);
		json_array_append_new(out, c);
	}
	json_decref(headers);
	return out;
}

/* Splits the backends of route that go to the stable Service: weight W of
 * them to the canary's cluster. Returns true when it touched the route. */
static bool
split_route(json_t *route, const json_t *clusters, const char *stable, const char *canary,
    int w, const char **canary_cluster)
{
	json_t *out = json_array(), *b;
	size_t i;
	bool touched = false;
	json_array_foreach(json_object_get(route, "backends"), i, b) {
		const json_t *c = json_object_get(clusters, obj_str(b, "cluster"));
		const char *svc = obj_str(c, "service");
		if (!strcmp(svc, canary))
			continue;	/* the rollout decides the canary's share */
		if (strcmp(svc, stable) != 0) {
			json_array_append(out, b);
			continue;
		}
		const char *cc = sibling_cluster(clusters, obj_str(b, "cluster"), canary);
		json_int_t wb = json_integer_value(json_object_get(b, "weight"));
		touched = true;
		if (!cc) {
			json_array_append(out, b);
			continue;
		}
		*canary_cluster = cc;
		if (w < 100)
			json_array_append_new(out, json_pack("{s:s, s:I}", "cluster",
			    obj_str(b, "cluster"), "weight", wb * (100 - w)));
		if (w > 0)
			json_array_append_new(out, json_pack("{s:s, s:I}", "cluster", cc,
			    "weight", wb * w));
	}
	if (touched)
		json_object_set_new(route, "backends", out);
	else
		json_decref(out);
	return touched;
}

static void
apply_rollout(json_t *snap, const json_t *ro)
{
	const json_t *canary = obj_get_path(ro, "spec.strategy.canary");
	const char *ns = obj_namespace(ro);
	if (!*obj_str(canary, "stableService") || !*obj_str(canary, "canaryService"))
		return;
	char *stable = xasprintf("%s/%s", ns, obj_str(canary, "stableService"));
	char *csvc = xasprintf("%s/%s", ns, obj_str(canary, "canaryService"));
	int w = (int)json_integer_value(obj_get_path(ro, "status.canary.weights.canary.weight"));
	const json_t *hrs = obj_get_path(ro, "status.canary.headerRoutes");
	const char *cookie = obj_annotation(ro, STICKY_ANNOTATION);
	const json_t *clusters = json_object_get(snap, "clusters"), *hr;
	json_t *l;
	size_t i, j, k;
	json_array_foreach(json_object_get(snap, "listeners"), i, l) {
		json_t *routes = json_object_get(l, "routes"), *out = json_array(), *r;
		json_array_foreach(routes, j, r) {
			const char *cc = NULL;
			json_t *copy = json_deep_copy(r);
			if (split_route(copy, clusters, stable, csvc, w, &cc) && cc) {
				json_array_foreach(hrs, k, hr) {
					char *name = xasprintf("%s/header/%s", obj_str(r, "name"),
					    obj_str(hr, "name"));
					json_t *h = json_deep_copy(r);
					json_object_set_new(h, "name", json_string(name));
					json_object_set_new(h, "matches", header_matches(r, hr));
					json_object_set_new(h, "backends", json_pack("[{s:s, s:i}]",
					    "cluster", cc, "weight", 1));
					json_array_append_new(out, h);
					free(name);
				}
				if (cookie && *cookie)
					json_object_set_new(copy, "sticky", json_pack("{s:s}", "cookie",
					    cookie));
			}
			json_array_append_new(out, copy);
		}
		if (routes)
			json_object_set_new(l, "routes", out);
		else
			json_decref(out);
	}
	free(stable);
	free(csvc);
}

void
routes_apply_rollouts(json_t *snap, const json_t *rollouts)
{
	size_t n;
	const json_t **v = sorted(rollouts, &n, cmp_obj);
	for (size_t i = 0; i < n; i++)
		apply_rollout(snap, v[i]);
	free(v);
}

/* What the routing table needs of a Rollout. */
static json_t *
rollout_trim(const json_t *ro)
{
	json_t *t = json_pack("{s:{s:s, s:s}}", "metadata", "namespace", obj_namespace(ro),
	    "name", obj_name(ro));
	const char *cookie = obj_annotation(ro, STICKY_ANNOTATION);
	if (cookie)
		json_object_set_new(json_object_get(t, "metadata"), "annotations",
		    json_pack("{s:s}", STICKY_ANNOTATION, cookie));
	const json_t *c = obj_get_path(ro, "spec.strategy.canary");
	if (c)
		json_object_set_new(t, "spec", json_pack("{s:{s:{s:s, s:s}}}", "strategy",
		    "canary", "stableService", obj_str(c, "stableService"), "canaryService",
		    obj_str(c, "canaryService")));
	const json_t *w = obj_get_path(ro, "status.canary.weights");
	const json_t *h = obj_get_path(ro, "status.canary.headerRoutes");
	json_t *sc = json_object();
	if (w)
		json_object_set(sc, "weights", (json_t *)w);
	if (h)
		json_object_set(sc, "headerRoutes", (json_t *)h);
	json_object_set_new(t, "status", json_pack("{s:o}", "canary", sc));
	return t;
}

static json_t *pod_trim_labels(const json_t *pod);

/* What the build needs of a pod: its revision labels; with hostPorts, those
 * ports, its IP, phase and deletionTimestamp (add_host_ports). */
static json_t *
pod_trim(const json_t *pod)
{
	json_t *hps = host_ports_of(pod);
	json_t *out = pod_trim_labels(pod);
	if (json_array_size(hps) > 0) {
		const json_t *del = obj_get_path(pod, "metadata.deletionTimestamp");
		if (del)
			json_object_set(json_object_get(out, "metadata"), "deletionTimestamp",
			    (json_t *)del);
		json_object_set_new(out, "spec", json_pack("{s:[{s:O}]}", "containers", "ports",
		    hps));
		json_object_set_new(out, "status", json_pack("{s:s, s:s}", "podIP",
		    obj_str_at(pod, "status.podIP"), "phase", obj_str_at(pod, "status.phase")));
	}
	json_decref(hps);
	return out;
}

static json_t *
pod_trim_labels(const json_t *pod)
{
	json_t *labels = json_object(), *l = obj_labels(pod);
	static const char *const keep[] = { "pod-template-hash", "controller-revision-hash",
		"rollouts-pod-template-hash" };
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
		if (json_object_get(l, keep[i]))
			json_object_set(labels, keep[i], json_object_get(l, keep[i]));
	return json_pack("{s:{s:s, s:s, s:o}}", "metadata", "namespace", obj_namespace(pod),
	    "name", obj_name(pod), "labels", labels);
}

/* ---- the incremental table ----------------------------------------------------
 *
 * The table is kept in parts that are rebuilt alone, so that one change
 * costs what it touches, not what the table holds:
 *  - a unit per Service: its own listeners and clusters (build_indexed of
 *    that one Service), rebuilt when the Service, its Endpoints or a Pod
 *    those Endpoints name changes;
 *  - the shared part: Gateways, HTTPRoutes, Rollouts and pods' hostPorts
 *    with the Services they read (build_indexed of that subset, then
 *    routes_apply_rollouts), rebuilt when one of them changes, or a Service
 *    it read, or a Service listening on an address:port a Gateway or a
 *    hostPort listens on.
 * A listener is the shared part's when it has it (its routes carry the
 * HTTPRoutes and canary splits), else its unit's; a cluster is the unit's
 * (fresh endpoints), else the shared part's (a backend naming an unknown
 * Service or port). Two Services on one address:port share one listener in
 * routes_build and cannot be built apart: while any do, a commit compares
 * the whole build (and once more after, to leave that mode exactly). */

struct routes_table {
	json_t *objs[ROUTES_NKINDS];	/* "ns/name" -> object (pods, rollouts: trimmed) */
	json_t *pod_eps;		/* pod "ns/name" -> {Endpoints "ns/name": true} */
	json_t *units;			/* Service "ns/name" -> {"l":{}, "c":{}, "a":{}} */
	json_t *unit_l, *unit_c;	/* name -> listener / cluster, every unit's */
	json_t *addr_owners;		/* "addr:port" -> {Service "ns/name": true} */
	size_t shared_addrs;		/* addr:port keys with more than one owner */
	json_t *shared_l, *shared_c;	/* the shared part */
	json_t *shared_refs;		/* Service "ns/name" -> true: read by the shared part */
	json_t *gw_addrs;		/* "addr:port" -> true: Gateway listeners */
	json_t *tls_refs;		/* Secret "ns/name" -> true: a Gateway's certificateRefs */
	json_t *dirty_units;		/* Service "ns/name" -> true */
	bool dirty_shared;
	bool was_whole;			/* the last commit compared the whole build */
	json_t *final_l, *final_c;	/* the table: name -> listener / cluster */
	json_t *ips;			/* endpoint address -> how many endpoints have it */
};

static void
set_add(json_t *set, const char *key)
{
	json_object_set_new(set, key, json_true());
}

static char *
ns_key(const char *ns, const char *name)
{
	return xasprintf("%s/%s", ns, name);
}

struct routes_table *
routes_table_new(void)
{
	struct routes_table *t = xcalloc(1, sizeof *t);
	json_t **all[] = { &t->pod_eps, &t->units, &t->unit_l, &t->unit_c, &t->addr_owners,
		&t->shared_l, &t->shared_c, &t->shared_refs, &t->gw_addrs, &t->dirty_units,
		&t->final_l, &t->final_c, &t->ips, &t->tls_refs };
	for (int k = 0; k < ROUTES_NKINDS; k++)
		t->objs[k] = json_object();
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		*all[i] = json_object();
	return t;
}

void
routes_table_free(struct routes_table *t)
{
	if (t == NULL)
		return;
	json_t *all[] = { t->pod_eps, t->units, t->unit_l, t->unit_c, t->addr_owners,
		t->shared_l, t->shared_c, t->shared_refs, t->gw_addrs, t->dirty_units,
		t->final_l, t->final_c, t->ips, t->tls_refs };
	for (int k = 0; k < ROUTES_NKINDS; k++)
		json_decref(t->objs[k]);
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		json_decref(all[i]);
	free(t);
}

/* Adds (delta 1) or removes (-1) the pod references of Endpoints ep. */
static void
pod_refs(struct routes_table *t, const char *ep_key, const json_t *ep, int delta)
{
	const json_t *subset, *addr;
	size_t i, j;
	json_array_foreach(json_object_get(ep, "subsets"), i, subset)
		json_array_foreach(json_object_get(subset, "addresses"), j, addr) {
			const json_t *ref = json_object_get(addr, "targetRef");
			if (strcmp(obj_str(ref, "kind"), "Pod") != 0)
				continue;
			const char *pns = *obj_str(ref, "namespace") ? obj_str(ref, "namespace")
			    : obj_namespace(ep);
			char *pk = ns_key(pns, obj_str(ref, "name"));
			json_t *set = json_object_get(t->pod_eps, pk);
			if (delta > 0 && set == NULL)
				json_object_set_new(t->pod_eps, pk, set = json_object());
			if (delta > 0)
				set_add(set, ep_key);
			else if (set && (json_object_del(set, ep_key), json_object_size(set) == 0))
				json_object_del(t->pod_eps, pk);
			free(pk);
		}
}

static json_t *
trimmed(enum routes_kind k, const json_t *obj)
{
	if (obj == NULL)
		return NULL;
	if (k == ROUTES_POD)
		return pod_trim(obj);
	if (k == ROUTES_ROLLOUT)
		return rollout_trim(obj);
	if (k == ROUTES_SECRET)		/* only certificates are read; others not kept */
		return strcmp(obj_str(obj, "type"), "kubernetes.io/tls") != 0 ? NULL :
		    json_pack("{s:{s:s, s:s}, s:s, s:O}", "metadata", "namespace",
		    obj_namespace(obj), "name", obj_name(obj), "type", "kubernetes.io/tls", "data",
		    obj_get_path(obj, "data") ? obj_get_path(obj, "data") : json_object());
	return json_deep_copy(obj);
}

bool
routes_table_put(struct routes_table *t, enum routes_kind k, const char *ns, const char *name,
    const json_t *obj)
{
	char *key = ns_key(ns, name);
	json_t *old = json_incref(json_object_get(t->objs[k], key)), *val = trimmed(k, obj);
	bool changed = old || val ? !(old && val && json_equal(old, val)) : false;
	bool dirty = false;
	const char *ep;
	json_t *v;
	if (changed && k == ROUTES_ENDPOINTS) {
		pod_refs(t, key, old, -1);
		pod_refs(t, key, val, 1);
	}
	if (val)
		json_object_set_new(t->objs[k], key, val);
	else
		json_object_del(t->objs[k], key);
	if (changed && (k == ROUTES_SERVICE || k == ROUTES_ENDPOINTS)) {
		set_add(t->dirty_units, key);
		if (k == ROUTES_SERVICE && json_object_get(t->shared_refs, key))
			t->dirty_shared = true;
		dirty = true;
	} else if (changed && k == ROUTES_POD) {
		json_object_foreach(json_object_get(t->pod_eps, key), ep, v) {
			set_add(t->dirty_units, ep);
			dirty = true;
		}
		if (obj_get_path(old, "spec") || obj_get_path(val, "spec"))	/* hostPorts */
			t->dirty_shared = dirty = true;
	} else if (changed && k == ROUTES_SECRET) {
		if (json_object_get(t->tls_refs, key))
			t->dirty_shared = dirty = true;
	} else if (changed) {
		t->dirty_shared = dirty = true;
	}
	json_decref(old);
	free(key);
	return dirty;
}

static void
addr_own(struct routes_table *t, const char *addr, const char *svc, bool own)
{
	json_t *set = json_object_get(t->addr_owners, addr);
	size_t before = json_object_size(set);
	if (own && set == NULL)
		json_object_set_new(t->addr_owners, addr, set = json_object());
	if (own)
		set_add(set, svc);
	else if (set)
		json_object_del(set, svc);
	size_t after = json_object_size(set);
	if (before <= 1 && after > 1)
		t->shared_addrs++;
	else if (before > 1 && after <= 1)
		t->shared_addrs--;
	if (set && after == 0)
		json_object_del(t->addr_owners, addr);
	if (json_object_get(t->gw_addrs, addr))
		t->dirty_shared = true;
}

/* Drops the names of part (an object name -> value) from flat (may be
 * NULL), marking them touched; names_add adds them. */
static void
names_drop(json_t *part, json_t *flat, json_t *touched)
{
	const char *name;
	json_t *v;
	json_object_foreach(part, name, v) {
		set_add(touched, name);
		if (flat)
			json_object_del(flat, name);
	}
}

static void
names_add(json_t *part, json_t *flat, json_t *touched)
{
	const char *name;
	json_t *v;
	json_object_foreach(part, name, v) {
		set_add(touched, name);
		if (flat)
			json_object_set(flat, name, v);
	}
}

/* The listeners of snap as an object name -> listener. */
static json_t *
listeners_by_name(const json_t *snap)
{
	json_t *out = json_object(), *l;
	size_t i;
	json_array_foreach(json_object_get(snap, "listeners"), i, l)
		json_object_set(out, obj_str(l, "name"), l);
	return out;
}

static void
unit_rebuild(struct routes_table *t, const char *key, json_t *tl, json_t *tc)
{
	json_t *old = json_object_get(t->units, key), *v;
	const char *name;
	if (old) {
		names_drop(json_object_get(old, "l"), t->unit_l, tl);
		names_drop(json_object_get(old, "c"), t->unit_c, tc);
		json_object_foreach(json_object_get(old, "a"), name, v)
			addr_own(t, name, key, false);
		json_object_del(t->units, key);
	}
	const json_t *svc = json_object_get(t->objs[ROUTES_SERVICE], key);
	if (svc == NULL)
		return;
	json_t *one = json_pack("{s:O}", key, svc);
	json_t *snap = build_indexed(one, t->objs[ROUTES_ENDPOINTS], t->objs[ROUTES_POD], NULL,
	    NULL, NULL, NULL, false, 0);
	json_t *unit = json_pack("{s:o, s:O, s:o}", "l", listeners_by_name(snap), "c",
	    json_object_get(snap, "clusters"), "a", json_object());
	json_object_foreach(json_object_get(unit, "l"), name, v) {
		char *addr = xasprintf("%s:%lld", obj_str(v, "address"),
		    (long long)json_integer_value(json_object_get(v, "port")));
		set_add(json_object_get(unit, "a"), addr);
		addr_own(t, addr, key, true);
		free(addr);
	}
	names_add(json_object_get(unit, "l"), t->unit_l, tl);
	names_add(json_object_get(unit, "c"), t->unit_c, tc);
	json_object_set_new(t->units, key, unit);
	json_decref(snap);
	json_decref(one);
}

/* The Services the shared part reads: parents and backends of HTTPRoutes,
 * stable and canary Services of Rollouts, owners of Gateway addresses. */
static json_t *
shared_refs(struct routes_table *t)
{
	json_t *refs = json_object(), *o, *x, *y;
	const char *k, *a;
	size_t i, j, n;
	json_object_clear(t->gw_addrs);
	json_object_clear(t->tls_refs);
	json_object_foreach(t->objs[ROUTES_HTTPROUTE], k, o) {
		const char *rns = obj_namespace(o);
		json_array_foreach(obj_get_path(o, "spec.parentRefs"), i, x)
			if (strcmp(obj_str(x, "kind"), "Service") == 0) {
				char *r = ns_key(*obj_str(x, "namespace") ? obj_str(x, "namespace") : rns,
				    obj_str(x, "name"));
				set_add(refs, r);
				free(r);
			}
		json_array_foreach(obj_get_path(o, "spec.rules"), i, x)
			json_array_foreach(json_object_get(x, "backendRefs"), j, y) {
				char *r = ns_key(*obj_str(y, "namespace") ? obj_str(y, "namespace") : rns,
				    obj_str(y, "name"));
				set_add(refs, r);
				free(r);
			}
	}
	json_object_foreach(t->objs[ROUTES_ROLLOUT], k, o) {
		static const char *const roles[] = { "stableService", "canaryService" };
		const json_t *c = obj_get_path(o, "spec.strategy.canary");
		for (n = 0; n < ARRAY_SIZE(roles); n++) {
			char *r = ns_key(obj_namespace(o), obj_str(c, roles[n]));
			set_add(refs, r);
			free(r);
		}
	}
	json_object_foreach(t->objs[ROUTES_POD], k, o) {	/* only pods with hostPorts */
		json_array_foreach(json_object_get(json_array_get(obj_get_path(o,
		    "spec.containers"), 0), "ports"), i, x) {
			const char *hip = obj_str(x, "hostIP");
			char *key = xasprintf("%s:%lld", *hip ? hip : "0.0.0.0",
			    (long long)json_integer_value(json_object_get(x, "hostPort")));
			set_add(t->gw_addrs, key);
			json_object_foreach(json_object_get(t->addr_owners, key), a, y)
				set_add(refs, a);
			free(key);
		}
	}
	json_object_foreach(t->objs[ROUTES_GATEWAY], k, o) {
		json_t *al = json_array_get(obj_get_path(o, "spec.addresses"), 0);
		const char *addr = *obj_str(al, "value") ? obj_str(al, "value") : "0.0.0.0";
		json_array_foreach(obj_get_path(o, "spec.listeners"), i, x) {
			json_array_foreach(obj_get_path(x, "tls.certificateRefs"), j, y) {
				char *r = ns_key(*obj_str(y, "namespace") ? obj_str(y, "namespace") :
				    obj_namespace(o), obj_str(y, "name"));
				set_add(t->tls_refs, r);
				free(r);
			}
			char *key = xasprintf("%s:%lld", addr,
			    (long long)json_integer_value(json_object_get(x, "port")));
			set_add(t->gw_addrs, key);
			json_object_foreach(json_object_get(t->addr_owners, key), a, y)
				set_add(refs, a);
			free(key);
		}
	}
	return refs;
}

static void
shared_rebuild(struct routes_table *t, json_t *tl, json_t *tc)
{
	names_drop(t->shared_l, NULL, tl);
	names_drop(t->shared_c, NULL, tc);
	json_decref(t->shared_refs);
	t->shared_refs = shared_refs(t);
	json_t *subset = json_object(), *svc;
	const char *k;
	json_t *v;
	json_object_foreach(t->shared_refs, k, v)
		if ((svc = json_object_get(t->objs[ROUTES_SERVICE], k)))
			json_object_set(subset, k, svc);
	json_t *snap = build_indexed(subset, t->objs[ROUTES_ENDPOINTS], t->objs[ROUTES_POD],
	    t->objs[ROUTES_HTTPROUTE], t->objs[ROUTES_GATEWAY], t->objs[ROUTES_SECRET],
	    t->objs[ROUTES_GRANT], true, 0);
	routes_apply_rollouts(snap, t->objs[ROUTES_ROLLOUT]);
	json_decref(t->shared_l);
	json_decref(t->shared_c);
	t->shared_l = listeners_by_name(snap);
	t->shared_c = json_incref(json_object_get(snap, "clusters"));
	names_add(t->shared_l, NULL, tl);
	names_add(t->shared_c, NULL, tc);
	json_decref(snap);
	json_decref(subset);
}

static void
ips_count(struct routes_table *t, const json_t *cluster, int delta)
{
	const json_t *ep;
	size_t i;
	json_array_foreach(json_object_get(cluster, "endpoints"), i, ep) {
		const char *ip = obj_str(ep, "address");
		json_int_t n = json_integer_value(json_object_get(t->ips, ip)) + delta;
		if (n > 0)
			json_object_set_new(t->ips, ip, json_integer(n));
		else
			json_object_del(t->ips, ip);
	}
}

/* Makes final[name] want (NULL: absent), recording a change. */
static void
final_set(struct routes_table *t, json_t *final, const char *name, json_t *want,
    json_t *changes)
{
	json_t *have = json_object_get(final, name);
	if (have == want || (have && want && json_equal(have, want)))
		return;
	if (final == t->final_c) {
		ips_count(t, have, -1);
		ips_count(t, want, 1);
	}
	json_object_set_new(changes, name, want ? json_incref(want) : json_null());
	if (want)
		json_object_set(final, name, want);
	else
		json_object_del(final, name);
}

/* Every name of the objects in parts[] (NULL-terminated), as a set. */
static json_t *
names_of(json_t *const *parts)
{
	json_t *set = json_object(), *v;
	const char *name;
	for (; *parts; parts++)
		json_object_foreach(*parts, name, v)
			set_add(set, name);
	return set;
}

/* The table as the whole build has it (Services sharing an address). */
static void
commit_whole(struct routes_table *t, json_t *dl, json_t *dc)
{
	json_t *snap = build_indexed(t->objs[ROUTES_SERVICE], t->objs[ROUTES_ENDPOINTS],
	    t->objs[ROUTES_POD], t->objs[ROUTES_HTTPROUTE], t->objs[ROUTES_GATEWAY],
	    t->objs[ROUTES_SECRET], t->objs[ROUTES_GRANT], true, 0);
	routes_apply_rollouts(snap, t->objs[ROUTES_ROLLOUT]);
	json_t *want_l = listeners_by_name(snap), *want_c = json_object_get(snap, "clusters");
	json_t *nl = names_of((json_t *[]){ t->final_l, want_l, NULL });
	json_t *nc = names_of((json_t *[]){ t->final_c, want_c, NULL });
	const char *name;
	json_t *v;
	json_object_foreach(nl, name, v)
		final_set(t, t->final_l, name, json_object_get(want_l, name), dl);
	json_object_foreach(nc, name, v)
		final_set(t, t->final_c, name, json_object_get(want_c, name), dc);
	json_decref(nl);
	json_decref(nc);
	json_decref(want_l);
	json_decref(snap);
}

/* The touched names from the parts: a listener is the shared part's when it
 * has it, else its unit's; a cluster the unit's, else the shared part's. */
static void
commit_parts(struct routes_table *t, json_t *tl, json_t *tc, json_t *dl, json_t *dc)
{
	const char *name;
	json_t *v, *want;
	json_object_foreach(tl, name, v) {
		want = json_object_get(t->shared_l, name);
		final_set(t, t->final_l, name, want ? want : json_object_get(t->unit_l, name), dl);
	}
	json_object_foreach(tc, name, v) {
		want = json_object_get(t->unit_c, name);
		final_set(t, t->final_c, name, want ? want : json_object_get(t->shared_c, name), dc);
	}
}

void
routes_table_commit(struct routes_table *t, json_t **listeners, json_t **clusters)
{
	json_t *tl = json_object(), *tc = json_object(), *v;
	const char *key;
	*listeners = json_object();
	*clusters = json_object();
	json_object_foreach(t->dirty_units, key, v)
		unit_rebuild(t, key, tl, tc);
	json_object_clear(t->dirty_units);
	if (t->dirty_shared)
		shared_rebuild(t, tl, tc);
	t->dirty_shared = false;
	if (t->shared_addrs > 0) {
		commit_whole(t, *listeners, *clusters);
		t->was_whole = true;
	} else if (t->was_whole) {
		/* leaving the whole-build mode: every name, from the parts */
		json_t *al = names_of((json_t *[]){ t->final_l, t->unit_l, t->shared_l, NULL });
		json_t *ac = names_of((json_t *[]){ t->final_c, t->unit_c, t->shared_c, NULL });
		commit_parts(t, al, ac, *listeners, *clusters);
		json_decref(al);
		json_decref(ac);
		t->was_whole = false;
	} else {
		commit_parts(t, tl, tc, *listeners, *clusters);
	}
	json_decref(tl);
	json_decref(tc);
}

json_t *
routes_table_snapshot(const struct routes_table *t, int64_t version)
{
	return json_pack("{s:I, s:o, s:o}", "version", (json_int_t)version,
	    "listeners", proxy_sorted_members(t->final_l, true),
	    "clusters", proxy_sorted_members(t->final_c, false));
}

bool
routes_table_routes_to(const struct routes_table *t, const char *ip)
{
	return json_object_get(t->ips, ip) != NULL;
}

/* ---- the watcher -------------------------------------------------------------- */

static const struct {
	const char *api_version, *kind;
} watched[ROUTES_NKINDS] = {
	[ROUTES_SERVICE] = { "v1", "Service" },
	[ROUTES_ENDPOINTS] = { "v1", "Endpoints" },
	[ROUTES_POD] = { "v1", "Pod" },
	[ROUTES_GATEWAY] = { GW_GROUP "/v1", "Gateway" },
	[ROUTES_HTTPROUTE] = { GW_GROUP "/v1", "HTTPRoute" },
	[ROUTES_ROLLOUT] = { "argoproj.io/v1alpha1", "Rollout" },
	[ROUTES_SECRET] = { "v1", "Secret" },
	[ROUTES_GRANT] = { GW_GROUP "/v1", "ReferenceGrant" },
};

struct drain;

struct ctrl_routes {
	struct api *api;
	struct proxy_feed *feed;
	struct store_watch *sw;
	struct drain *polling;		/* drains still reading the table (they end at stop) */
	char res[ROUTES_NKINDS][128];	/* store keys; "" when the kind is not registered */
	struct routes_table *table;
	json_t *current;		/* the table as a snapshot, made when asked for */
	int64_t rv;			/* the store's, as seen in events */
	int64_t version;		/* of the last commit: the table reflects rv up to it */
	bool dirty;			/* commit at the next idle turn */
	uint64_t builds;
	uv_idle_t idle;
};

/* Commits the changes since the last turn (or only moves the version on:
 * then waiters for it, such as a pod about to be stopped that no Service
 * selects, resolve at once) and hands them to the feed. */
static void
routes_commit(struct ctrl_routes *c, bool always)
{
	int64_t t0 = time_mono_ms();
	json_t *dl = NULL, *dc = NULL;
	if (c->dirty) {
		routes_table_commit(c->table, &dl, &dc);
		c->builds++;
	}
	size_t n = json_object_size(dl) + json_object_size(dc);
	if (n == 0 && c->version >= c->rv && !always)
		goto out;
	c->version = c->rv;
	if (n) {
		json_decref(c->current);
		c->current = NULL;
	}
	if (c->feed)
		proxy_feed_update(c->feed, c->version, dl, dc);
	if (n)
		log_debug("routes", "routing table version %lld: %zu listeners and %zu clusters "
		    "changed in %lld ms", (long long)c->version, json_object_size(dl),
		    json_object_size(dc), (long long)(time_mono_ms() - t0));
out:
	json_decref(dl);
	json_decref(dc);
}

static void
on_idle(uv_idle_t *h)
{
	struct ctrl_routes *c = h->data;
	uv_idle_stop(h);
	routes_commit(c, false);
	c->dirty = false;
}

static void
on_event(void *arg, enum store_event ev, const char *res, const json_t *obj, int64_t rv)
{
	struct ctrl_routes *c = arg;
	for (int rk = 0; rk < ROUTES_NKINDS; rk++) {
		if (!c->res[rk][0] || strcmp(res, c->res[rk]) != 0)
			continue;
		if (routes_table_put(c->table, rk, obj_namespace(obj), obj_name(obj),
		    ev == STORE_DELETED ? NULL : obj))
			c->dirty = true;
		if (rv > c->rv)
			c->rv = rv;
		uv_idle_start(&c->idle, on_idle);
		return;
	}
}

int
ctrl_routes_start(struct api *api, struct proxy_feed *feed, struct ctrl_routes **out)
{
	struct ctrl_routes *c = xcalloc(1, sizeof *c);
	struct store *st = api_store(api);
	c->api = api;
	c->feed = feed;
	c->table = routes_table_new();
	uv_idle_init(api_loop(api), &c->idle);
	c->idle.data = c;
	for (int rk = 0; rk < ROUTES_NKINDS; rk++) {
		const struct kind *k = kind_find_gvk(watched[rk].api_version, watched[rk].kind);
		json_t *items = NULL, *o;
		size_t i;
		if (k == NULL)
			continue;
		api_res_key(k, c->res[rk], sizeof c->res[rk]);
		if (store_list(st, c->res[rk], NULL, &items, NULL) < 0)
			continue;
		json_array_foreach(items, i, o)
			routes_table_put(c->table, rk, obj_namespace(o), obj_name(o), o);
		json_decref(items);
	}
	c->rv = store_current_rv(st);
	int rc = store_watch_start(st, NULL, NULL, 0, on_event, c, &c->sw);
	if (rc < 0) {
		ctrl_routes_stop(c);
		return rc;
	}
	c->dirty = true;
	routes_commit(c, true);
	c->dirty = false;
	log_info("routes", "routing table started: %zu services, %zu gateways, %zu httproutes",
	    json_object_size(c->table->objs[ROUTES_SERVICE]),
	    json_object_size(c->table->objs[ROUTES_GATEWAY]),
	    json_object_size(c->table->objs[ROUTES_HTTPROUTE]));
	*out = c;
	return 0;
}

const json_t *
ctrl_routes_current(struct ctrl_routes *c)
{
	if (c->current == NULL)
		c->current = routes_table_snapshot(c->table, c->version);
	json_object_set_new(c->current, "version", json_integer(c->version));
	return c->current;
}

uint64_t
ctrl_routes_builds(const struct ctrl_routes *c)
{
	return c->builds;
}

static void
on_routes_closed(uv_handle_t *h)
{
	struct ctrl_routes *c = h->data;
	routes_table_free(c->table);
	json_decref(c->current);
	free(c);
}

static void drain_finish(struct drain *d, bool ok);

void
ctrl_routes_stop(struct ctrl_routes *c)
{
	while (c->polling)		/* they read c: done (not drained) before it goes */
		drain_finish(c->polling, false);
	if (c->sw)
		store_watch_stop(c->sw);
	c->sw = NULL;
	uv_close((uv_handle_t *)&c->idle, on_routes_closed);
}

/* ---- draining a pod out of the data plane ------------------------------ */

#define DRAIN_POLL_MS 10

struct drain {
	struct ctrl_routes *c;
	char ip[64];
	int64_t deadline_ms;
	void (*done)(void *, bool);
	void *arg;
	uv_timer_t timer;
	struct drain *next, **prevp;	/* on c->polling while polling the table */
};

static void
drain_unlink(struct drain *d)
{
	if (!d->prevp)
		return;
	if (d->next)
		d->next->prevp = d->prevp;
	*d->prevp = d->next;
	d->prevp = NULL;
}

static void
drain_free_cb(uv_handle_t *h)
{
	free(h->data);
}

static void
drain_finish(struct drain *d, bool ok)
{
	drain_unlink(d);
	d->done(d->arg, ok);
	uv_close((uv_handle_t *)&d->timer, drain_free_cb);
}

static void
drain_acked(void *arg, bool applied)
{
	drain_finish(arg, applied);
}

/* Polls until the latest built snapshot no longer sends traffic to the IP,
 * then waits for the proxy to have applied it. */
static void
drain_poll(uv_timer_t *t)
{
	struct drain *d = t->data;
	int64_t now = time_mono_ms();
	if (!d->c->dirty && !routes_table_routes_to(d->c->table, d->ip)) {
		int64_t v = d->c->version;
		int64_t left = d->deadline_ms - now;
		drain_unlink(d);	/* the feed has it now; c is no longer read */
		proxy_feed_wait_version(d->c->feed, v, left > 0 ? (unsigned)left : 1, drain_acked, d);
		return;
	}
	if (now >= d->deadline_ms) {
		drain_finish(d, false);
		return;
	}
	uv_timer_start(&d->timer, drain_poll, DRAIN_POLL_MS, 0);
}

void
ctrl_routes_drain(struct ctrl_routes *c, const char *ip, unsigned timeout_ms,
    void (*done)(void *arg, bool drained), void *arg)
{
	struct drain *d = xcalloc(1, sizeof *d);
	d->c = c;
	snprintf(d->ip, sizeof d->ip, "%s", ip);
	d->deadline_ms = time_mono_ms() + timeout_ms;
	d->done = done;
	d->arg = arg;
	uv_timer_init(api_loop(c->api), &d->timer);
	d->timer.data = d;
	d->next = c->polling;
	if (d->next)
		d->next->prevp = &d->next;
	d->prevp = &c->polling;
	c->polling = d;
	uv_timer_start(&d->timer, drain_poll, 0, 0);
}

void
ctrl_routes_wait_applied(struct ctrl_routes *c, int64_t rv, unsigned timeout_ms,
    void (*cb)(void *arg, bool applied), void *arg)
{
	if (!c->feed) {
		cb(arg, true);
		return;
	}
	proxy_feed_wait_version(c->feed, rv, timeout_ms, cb, arg);
}
