/* ctrl_endpoints.c — the Endpoints controller (kube-controller-manager's
 * endpoints controller): for every Service with a selector, an Endpoints
 * object of the same name listing the Ready pods (addresses) and the others
 * (notReadyAddresses) with each Service port resolved against the pod.
 * endpoints_build() is the pure decision; the rest keeps a cache of pods
 * and selectors from store watches and writes only what changed. Started
 * by server.c; the proxy's routing snapshots are built from its output. */
#include "ctrl.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HEADLESS_LABEL "service.kubernetes.io/headless"

/* ---- the decision ------------------------------------------------------ */

/* A Service's selector as an object of label -> value; NULL when the
 * Service has none (its Endpoints are the user's). */
static const json_t *
svc_selector(const json_t *svc)
{
	const json_t *sel = obj_get_path(svc, "spec.selector");
	return json_object_size(sel) ? sel : NULL;
}

static bool
selector_has(const json_t *sel, const json_t *labels)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)sel, k, v) {
		const char *have = json_string_value(json_object_get(labels, k));
		if (!have || !json_is_string(v) || strcmp(have, json_string_value(v)))
			return false;
	}
	return true;
}

static const char *
pod_ip(const json_t *pod)
{
	const char *ip = json_string_value(obj_get_path(pod, "status.podIP"));
	if (!ip || !*ip)
		ip = obj_str(json_array_get(obj_get_path(pod, "status.podIPs"), 0), "ip");
	return ip;
}

/* endpointsliceutil.ShouldPodBeInEndpoints */
static bool
pod_eligible(const json_t *pod, bool include_terminating)
{
	const char *phase = obj_str(json_object_get(pod, "status"), "phase");
	if (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed") || !*pod_ip(pod))
		return false;
	return include_terminating || !obj_get_path(pod, "metadata.deletionTimestamp");
}

static json_t *
pod_address(const json_t *svc, const json_t *pod)
{
	json_t *a = json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "ip", pod_ip(pod),
	    "targetRef", "kind", "Pod", "namespace", obj_namespace(pod),
	    "name", obj_name(pod), "uid", obj_uid(pod));
	const json_t *spec = json_object_get(pod, "spec");
	if (*obj_str(spec, "nodeName"))
		json_object_set_new(a, "nodeName", json_string(obj_str(spec, "nodeName")));
	if (*obj_str(spec, "hostname") && !strcmp(obj_str(spec, "subdomain"), obj_name(svc)))
		json_object_set_new(a, "hostname", json_string(obj_str(spec, "hostname")));
	return a;
}

/* podutil.FindPort: the container port a Service port sends to, or 0 when
 * the pod has no container port of that name and protocol. */
static json_int_t
find_port(const json_t *pod, const json_t *sp)
{
	const json_t *tp = json_object_get(sp, "targetPort");
	if (!tp)
		tp = json_object_get(sp, "port");
	if (json_is_integer(tp))
		return json_integer_value(tp);
	const char *name = json_string_value(tp), *proto = obj_str(sp, "protocol");
	size_t i, j;
	json_t *c, *p;
	json_array_foreach(obj_get_path(pod, "spec.containers"), i, c)
		json_array_foreach(json_object_get(c, "ports"), j, p) {
			const char *pp = obj_str(p, "protocol");
			if (name && !strcmp(obj_str(p, "name"), name) &&
			    !strcmp(*pp ? pp : "TCP", *proto ? proto : "TCP"))
				return json_integer_value(json_object_get(p, "containerPort"));
		}
	return 0;
}

static json_t *
endpoint_port(const json_t *sp, json_int_t num)
{
	const char *proto = obj_str(sp, "protocol");
	json_t *p = json_pack("{s:I, s:s}", "port", (json_int_t)num,
	    "protocol", *proto ? proto : "TCP");
	if (*obj_str(sp, "name"))
		json_object_set_new(p, "name", json_string(obj_str(sp, "name")));
	if (*obj_str(sp, "appProtocol"))
		json_object_set_new(p, "appProtocol", json_string(obj_str(sp, "appProtocol")));
	return p;
}

/* RepackSubsets works on (address, port) pairs: the state of one build. */
struct repack {
	json_t *addrs;		/* address key -> address */
	json_t *ports;		/* port key -> port ("" = no ports, headless) */
	json_t *by_port;	/* port key -> {address key -> ready} */
};

static char *
dump_sorted(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

static void
repack_add(struct repack *r, const json_t *addr, bool ready, json_t *port)
{
	const json_t *ref = json_object_get(addr, "targetRef");
	char *akey = xasprintf("%s/%s", obj_str(addr, "ip"), obj_str(ref, "uid"));
	char *pkey = port ? dump_sorted(port) : xstrdup("");
	json_object_set(r->addrs, akey, (json_t *)addr);
	json_t *set = json_object_get(r->by_port, pkey);
	if (!set) {
		set = json_object();
		json_object_set_new(r->by_port, pkey, set);
		json_object_set_new(r->ports, pkey, port ? port : json_null());
		port = NULL;
	}
	json_object_set_new(set, akey, json_boolean(ready));
	json_decref(port);
	free(akey);
	free(pkey);
}

static int
cmp_address(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(obj_str(x, "ip"), obj_str(y, "ip"));
	return c ? c : strcmp(obj_str(json_object_get(x, "targetRef"), "uid"),
	    obj_str(json_object_get(y, "targetRef"), "uid"));
}

static int
cmp_port(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(obj_str(x, "name"), obj_str(y, "name"));
	if (c)
		return c;
	json_int_t px = json_integer_value(json_object_get(x, "port"));
	json_int_t py = json_integer_value(json_object_get(y, "port"));
	if (px != py)
		return px < py ? -1 : 1;
	return strcmp(obj_str(x, "protocol"), obj_str(y, "protocol"));
}

/* Sorts a JSON array in place with cmp over its members. */
static void
sort_array(json_t *arr, int (*cmp)(const void *, const void *))
{
	size_t n = json_array_size(arr);
	if (n < 2)
		return;
	json_t **v = xmalloc(n * sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof *v, cmp);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
}

/* One subset per distinct set of (address, readiness): the ports that
 * share exactly that set go together. */
static json_t *
repack_subsets(struct repack *r)
{
	json_t *groups = json_object();	/* address-set key -> subset */
	const char *pkey;
	json_t *set;
	json_object_foreach(r->by_port, pkey, set) {
		char *skey = dump_sorted(set);
		json_t *sub = json_object_get(groups, skey);
		if (!sub) {
			sub = json_pack("{s:[], s:[], s:[]}", "addresses", "notReadyAddresses",
			    "ports");
			json_object_set_new(groups, skey, sub);
			const char *akey;
			json_t *ready;
			json_object_foreach(set, akey, ready)
				json_array_append(json_object_get(sub, json_is_true(ready) ?
				    "addresses" : "notReadyAddresses"),
				    json_object_get(r->addrs, akey));
		}
		json_t *port = json_object_get(r->ports, pkey);
		if (!json_is_null(port))
			json_array_append(json_object_get(sub, "ports"), port);
		free(skey);
	}
	json_t *subsets = json_array();
	const char *k;
	json_t *sub;
	json_object_foreach(groups, k, sub) {
		static const char *const lists[] = { "addresses", "notReadyAddresses", "ports" };
		for (size_t i = 0; i < ARRAY_SIZE(lists); i++) {
			json_t *l = json_object_get(sub, lists[i]);
			sort_array(l, i == 2 ? cmp_port : cmp_address);
			if (json_array_size(l) == 0)
				json_object_del(sub, lists[i]);
		}
		json_array_append(subsets, sub);
	}
	json_decref(groups);
	return subsets;
}

static int
cmp_subset(const void *a, const void *b)
{
	char *x = dump_sorted(*(json_t *const *)a), *y = dump_sorted(*(json_t *const *)b);
	int c = strcmp(x, y);
	free(x);
	free(y);
	return c;
}

static json_t *
endpoints_labels(const json_t *svc)
{
	json_t *labels = json_deep_copy(obj_labels(svc));
	if (!labels)
		labels = json_object();
	if (!strcmp(obj_str(json_object_get(svc, "spec"), "clusterIP"), "None"))
		json_object_set_new(labels, HEADLESS_LABEL, json_string(""));
	return labels;
}

json_t *
endpoints_build(const json_t *svc, const json_t *pods)
{
	const json_t *sel = svc_selector(svc);
	if (!sel)
		return NULL;
	const json_t *spec = json_object_get(svc, "spec");
	const json_t *ports = json_object_get(spec, "ports");
	bool publish = json_is_true(json_object_get(spec, "publishNotReadyAddresses"));
	bool headless = !strcmp(obj_str(spec, "clusterIP"), "None");
	struct repack r = { json_object(), json_object(), json_object() };
	size_t i, j;
	json_t *pod, *sp;
	json_array_foreach(pods, i, pod) {
		if (strcmp(obj_namespace(pod), obj_namespace(svc)) ||
		    !selector_has(sel, obj_labels(pod)) || !pod_eligible(pod, publish))
			continue;
		json_t *addr = pod_address(svc, pod);
		bool ready = publish || obj_pod_ready(pod, NULL);
		if (json_array_size(ports) == 0 && headless)
			repack_add(&r, addr, ready, NULL);
		json_array_foreach(ports, j, sp) {
			json_int_t num = find_port(pod, sp);
			if (num > 0)
				repack_add(&r, addr, ready, endpoint_port(sp, num));
		}
		json_decref(addr);
	}
	json_t *subsets = repack_subsets(&r);
	sort_array(subsets, cmp_subset);
	json_decref(r.addrs);
	json_decref(r.ports);
	json_decref(r.by_port);
	json_t *ep = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}}", "apiVersion", "v1",
	    "kind", "Endpoints", "metadata", "name", obj_name(svc),
	    "namespace", obj_namespace(svc), "labels", endpoints_labels(svc));
	if (json_array_size(subsets))
		json_object_set(ep, "subsets", subsets);
	json_decref(subsets);
	return ep;
}

static bool
same_or_empty(const json_t *a, const json_t *b)
{
	if (json_equal((json_t *)a, (json_t *)b))
		return true;
	bool ea = !a || json_array_size(a) + json_object_size(a) == 0;
	bool eb = !b || json_array_size(b) + json_object_size(b) == 0;
	return ea && eb;
}

bool
endpoints_equal(const json_t *ep, const json_t *want)
{
	return same_or_empty(json_object_get(ep, "subsets"), json_object_get(want, "subsets")) &&
	    same_or_empty(obj_labels(ep), obj_labels(want));
}

/* ---- the adapter on the controller core ---------------------------------- */

struct ctrl_endpoints {
	struct ctrl *core;
	json_t *pods;		/* namespace -> name -> pod (the watch's objects, shared) */
	json_t *sels;		/* namespace -> service name -> selector */
	size_t writes;		/* Endpoints written (tests, metrics) */
};

static json_t *
ns_map(json_t *top, const char *ns)
{
	json_t *m = json_object_get(top, ns);
	if (!m) {
		m = json_object();
		json_object_set_new(top, ns, m);
	}
	return m;
}

static json_t *
ns_pods(struct ctrl_endpoints *c, const char *ns)
{
	json_t *arr = json_array();
	const char *k;
	json_t *pod;
	json_object_foreach(json_object_get(c->pods, ns), k, pod)
		json_array_append(arr, pod);
	return arr;
}

static const struct kind *
ep_kind(void)
{
	return kind_find_gvk("v1", "Endpoints");
}

/* The Service gone: its Endpoints go. With a selector: the Endpoints built
 * from the cached pods, written when they differ from the stored ones.
 * Without: nothing (the Endpoints are the user's). */
static int
ep_decide(struct ctrl *core, const json_t *svc, int64_t now_ms, struct ctrl_writes *w)
{
	struct ctrl_endpoints *c = ctrl_data(core);
	const char *ns = obj_namespace(svc);
	json_t *cur = NULL;
	(void)now_ms;
	if (!*obj_uid(svc)) {
		ctrl_writes_push(w, CTRL_DELETE, ep_kind(), json_pack("{s:{s:s, s:s}}", "metadata",
		    "namespace", ns, "name", obj_name(svc)), 0);
		return 0;
	}
	if (!svc_selector(svc))
		return 0;
	json_t *pods = ns_pods(c, ns);
	json_t *want = endpoints_build(svc, pods);
	json_decref(pods);
	if (store_get(ctrl_store(core), "endpoints", ns, obj_name(want), &cur) < 0) {
		ctrl_writes_push(w, CTRL_CREATE, ep_kind(), want, 0);
		return 0;
	}
	if (!endpoints_equal(cur, want)) {
		json_t *next = json_deep_copy(cur);
		json_object_set(obj_metadata(next), "labels", obj_labels(want));
		json_t *subsets = json_object_get(want, "subsets");
		if (subsets)
			json_object_set(next, "subsets", subsets);
		else
			json_object_del(next, "subsets");
		ctrl_writes_push(w, CTRL_UPDATE, ep_kind(), next, 0);
	}
	json_decref(cur);
	json_decref(want);
	return 0;
}

static void
ep_result(struct ctrl *core, const json_t *svc, const struct ctrl_write *w, const json_t *made,
    const char *err)
{
	struct ctrl_endpoints *c = ctrl_data(core);
	(void)svc;
	(void)made;
	if (!err && w->op != CTRL_DELETE)
		c->writes++;
}

/* Services of pod's namespace whose selector matches labels. */
static void
ep_enqueue_matching(struct ctrl_endpoints *c, const char *ns, const json_t *labels)
{
	const char *name;
	json_t *sel;
	json_object_foreach(json_object_get(c->sels, ns), name, sel)
		if (selector_has(sel, labels))
			ctrl_enqueue(c->core, ns, name);
}

static void
ep_on_pod(struct ctrl *core, enum store_event ev, const json_t *pod)
{
	struct ctrl_endpoints *c = ctrl_data(core);
	const char *ns = obj_namespace(pod), *name = obj_name(pod);
	json_t *pods = ns_map(c->pods, ns);
	json_t *old = json_incref(json_object_get(pods, name));
	if (ev == STORE_DELETED)
		json_object_del(pods, name);
	else
		json_object_set(pods, name, (json_t *)pod);	/* watch objects are not changed */
	/* Both label sets: a pod whose labels changed leaves a Service. */
	if (old)
		ep_enqueue_matching(c, ns, obj_labels(old));
	ep_enqueue_matching(c, ns, obj_labels(pod));
	json_decref(old);
}

static void
ep_on_service(struct ctrl *core, enum store_event ev, const json_t *svc)
{
	struct ctrl_endpoints *c = ctrl_data(core);
	const char *ns = obj_namespace(svc), *name = obj_name(svc);
	json_t *sels = ns_map(c->sels, ns);
	const json_t *sel = svc_selector(svc);
	if (ev == STORE_DELETED || !sel)
		json_object_del(sels, name);
	else
		json_object_set_new(sels, name, json_deep_copy(sel));
	ctrl_enqueue(core, ns, name);
}

/* A managed Endpoints changed or went away under us: put it back. */
static void
ep_on_endpoints(struct ctrl *core, enum store_event ev, const json_t *ep)
{
	struct ctrl_endpoints *c = ctrl_data(core);
	(void)ev;
	if (json_object_get(json_object_get(c->sels, obj_namespace(ep)), obj_name(ep)))
		ctrl_enqueue(core, obj_namespace(ep), obj_name(ep));
}

/* The caches from the store, every Service queued, and the Endpoints left
 * by a Service deleted while the server was down. */
static void
ep_seed(struct ctrl *core)
{
	struct ctrl_endpoints *c = ctrl_data(core);
	struct store *st = ctrl_store(core);
	json_t *items = NULL, *o;
	size_t i;
	c->core = core;
	if (store_list(st, "pods", NULL, &items, NULL) == 0)
		json_array_foreach(items, i, o)
			json_object_set(ns_map(c->pods, obj_namespace(o)), obj_name(o), o);
	json_decref(items);
	items = NULL;
	if (store_list(st, "services", NULL, &items, NULL) == 0)
		json_array_foreach(items, i, o)
			ep_on_service(core, STORE_ADDED, o);
	json_decref(items);
	items = NULL;
	if (store_list(st, "endpoints", NULL, &items, NULL) == 0)
		json_array_foreach(items, i, o)
			ctrl_enqueue(core, obj_namespace(o), obj_name(o));
	json_decref(items);
}

static const struct ctrl_desc ep_desc = {
	.name = "endpoints", .component = "endpoints-controller",
	.api_version = "v1", .kind = "Service", .res = "services",
	.sources = {
		{ "services", ep_on_service },
		{ "pods", ep_on_pod },
		{ "endpoints", ep_on_endpoints },
	},
	.decide = ep_decide, .result = ep_result, .seed = ep_seed, .on_gone = true,
};

int
ctrl_endpoints_start(struct api *api, struct ctrl_endpoints **out)
{
	struct ctrl_endpoints *c = xcalloc(1, sizeof *c);
	c->pods = json_object();
	c->sels = json_object();
	int rc = ctrl_start(api, &ep_desc, c, &c->core);
	if (rc < 0) {
		ctrl_endpoints_stop(c);
		return rc;
	}
	*out = c;
	return 0;
}

void
ctrl_endpoints_stop(struct ctrl_endpoints *c)
{
	if (!c)
		return;
	ctrl_stop(c->core);
	json_decref(c->pods);
	json_decref(c->sels);
	free(c);
}

size_t
ctrl_endpoints_writes(const struct ctrl_endpoints *c)
{
	return c->writes;
}
