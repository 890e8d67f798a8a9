/* api_quota.c — a namespace's LimitRanges and ResourceQuotas, with the
 * semantics of Kubernetes' LimitRanger and ResourceQuota admission plugins:
 * a Pod created gets the LimitRange's default limits and requests, then is
 * checked against its min / max / maxLimitRequestRatio (per Container and
 * per Pod; a claim's storage per PersistentVolumeClaim); a create of a
 * counted object is refused (403) when it would take a quota's usage past
 * its hard limit, or when a quota constrains a compute resource the pod's
 * containers do not specify. The quota controller (on the core) keeps
 * status.hard / status.used. Called by api_objects.c and server.c. */
#include "api.h"
#include "ctrl.h"
#include "log.h"
#include "obj.h"
#include "quantity.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- quantities --------------------------------------------------------- */

/* cpu in millicores, everything else in units (bytes, counts). */
static int
scale_of(const char *resource)
{
	return strstr(resource, "cpu") ? -3 : 0;
}

static bool
qty_of(const json_t *v, const char *resource, int64_t *out)
{
	char buf[64];
	const char *s = json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		s = buf;
	}
	return s && quantity_scaled(s, scale_of(resource), out) == 0;
}

/* Kubernetes' canonical form for what scale_of gave: 500m, 2, 64Mi, 3. */
static void
qty_fmt(int64_t v, const char *resource, char *out, size_t len)
{
	static const char *const bin[] = { "Ki", "Mi", "Gi", "Ti", "Pi" };
	if (scale_of(resource) == -3) {
		if (v % 1000 == 0)
			snprintf(out, len, "%lld", (long long)(v / 1000));
		else
			snprintf(out, len, "%lldm", (long long)v);
		return;
	}
	int i = -1;
	while (v != 0 && i < 4 && v % 1024 == 0 && (strstr(resource, "memory") ||
	    strstr(resource, "storage")))
		v /= 1024, i++;
	snprintf(out, len, "%lld%s", (long long)v, i >= 0 ? bin[i] : "");
}

/* ---- a pod's compute resources ------------------------------------------- */

/* requests or limits of resource over the pod, as the scheduler and the
 * quota count them: max(sum of containers, largest init container). A
 * container without it counts 0; *missing gets set. */
static int64_t
pod_amount(const json_t *pod, const char *what, const char *resource, bool *missing)
{
	const json_t *spec = json_object_get(pod, "spec");
	int64_t sum = 0, init = 0, v;
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(spec, "containers"), i, c) {
		if (qty_of(obj_get_path(json_object_get(c, "resources"), what) ?
		    json_object_get(obj_get_path(json_object_get(c, "resources"), what), resource) :
		    NULL, resource, &v))
			sum += v;
		else if (missing)
			*missing = true;
	}
	json_array_foreach(json_object_get(spec, "initContainers"), i, c)
		if (qty_of(json_object_get(obj_get_path(json_object_get(c, "resources"), what),
		    resource), resource, &v) && v > init)
			init = v;
	return sum > init ? sum : init;
}

static bool
pod_terminal(const json_t *pod)
{
	const char *ph = obj_str_at(pod, "status.phase");
	return !strcmp(ph, "Succeeded") || !strcmp(ph, "Failed");
}

/* ---- what a quota counts ---------------------------------------------------- */

static const struct {
	const char *name;	/* a hard key */
	const char *res;	/* the store resource counted */
} counts[] = {
	{ "pods", "pods" }, { "services", "services" }, { "configmaps", "configmaps" },
	{ "secrets", "secrets" }, { "persistentvolumeclaims", "persistentvolumeclaims" },
	{ "replicationcontrollers", NULL }, { "resourcequotas", "resourcequotas" },
};

/* The store resource of "count/deployments.apps" ("apps/deployments"). */
static char *
count_res(const char *key)
{
	const char *r = key + strlen("count/"), *dot = strchr(r, '.');
	if (!dot)
		return xstrdup(r);
	return xasprintf("%s/%.*s", dot + 1, (int)(dot - r), r);
}

static const char *
compute_key(const char *key, const char **what)
{
	if (!strcmp(key, "cpu") || !strcmp(key, "memory")) {
		*what = "requests";
		return key;
	}
	if (str_has_prefix(key, "requests.") && strcmp(key, "requests.storage") != 0) {
		*what = "requests";
		return key + strlen("requests.");
	}
	if (str_has_prefix(key, "limits.")) {
		*what = "limits";
		return key + strlen("limits.");
	}
	return NULL;
}

/* How much of resource key obj uses (a pod's requests, a claim's storage,
 * 1 for an object counted); false when key does not concern obj's kind. */
static bool
usage_of(const char *key, const char *res, const json_t *obj, int64_t *out)
{
	const char *what, *r = compute_key(key, &what);
	if (r) {
		if (strcmp(res, "pods") != 0)
			return false;
		*out = pod_terminal(obj) ? 0 : pod_amount(obj, what, r, NULL);
		return true;
	}
	if (!strcmp(key, "requests.storage")) {
		if (strcmp(res, "persistentvolumeclaims") != 0)
			return false;
		*out = 0;
		qty_of(obj_get_path(obj, "spec.resources.requests.storage"), "storage", out);
		return true;
	}
	if (str_has_prefix(key, "count/")) {
		char *cr = count_res(key);
		bool mine = !strcmp(cr, res);
		free(cr);
		*out = 1;
		return mine;
	}
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		if (!strcmp(key, counts[i].name)) {
			if (!counts[i].res || strcmp(counts[i].res, res) != 0)
				return false;
			*out = !strcmp(res, "pods") && pod_terminal(obj) ? 0 : 1;
			return true;
		}
	return false;
}

/* The store resource whose objects key counts, NULL when none. */
static char *
key_res(const char *key)
{
	const char *what;
	if (compute_key(key, &what))
		return xstrdup("pods");
	if (!strcmp(key, "requests.storage"))
		return xstrdup("persistentvolumeclaims");
	if (str_has_prefix(key, "count/"))
		return count_res(key);
	for (size_t i = 0; i < ARRAY_SIZE(counts); i++)
		if (!strcmp(key, counts[i].name) && counts[i].res)
			return xstrdup(counts[i].res);
	return NULL;
}

/* Current usage of quota's hard keys in ns: {"pods": "3", ...}. */
static json_t *
quota_used(struct store *st, const char *ns, const json_t *hard)
{
	json_t *used = json_object(), *cache = json_object();
	const char *key;
	json_t *unused;
	json_object_foreach((json_t *)hard, key, unused) {
		char *res = key_res(key);
		if (!res)
			continue;
		json_t *items = json_object_get(cache, res);
		if (!items) {
			json_t *l = NULL;
			if (store_list(st, res, ns, &l, NULL) < 0)
				l = json_array();
			json_object_set_new(cache, res, l);
			items = l;
		}
		int64_t total = 0, v;
		size_t i;
		json_t *o;
		json_array_foreach(items, i, o)
			if (usage_of(key, res, o, &v))
				total += v;
		char buf[64];
		qty_fmt(total, key, buf, sizeof buf);
		json_object_set_new(used, key, json_string(buf));
		free(res);
	}
	json_decref(cache);
	return used;
}

/* ---- admission: ResourceQuota ---------------------------------------------- */

static int
cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
api_quota_admit(struct api *api, const struct kind *k, const char *ns, const json_t *obj,
    struct api_error *err)
{
	char res[128];
	json_t *quotas = NULL, *qo;
	size_t i;
	if (!k->namespaced || !*ns)
		return 0;
	api_res_key(k, res, sizeof res);
	if (store_list(api_store(api), "resourcequotas", ns, &quotas, NULL) < 0 ||
	    json_array_size(quotas) == 0) {
		json_decref(quotas);
		return 0;
	}
	int rc = 0;
	json_array_foreach(quotas, i, qo) {
		const json_t *hard = obj_get_path(qo, "spec.hard");
		json_t *used = quota_used(api_store(api), ns, hard);
		const char *key;
		json_t *hv;
		const char *over[32];
		size_t nover = 0;
		struct buf missing = BUF_INIT;
		json_object_foreach((json_t *)hard, key, hv) {
			int64_t mine, cur = 0, lim;
			if (!usage_of(key, res, obj, &mine) || !qty_of(hv, key, &lim))
				continue;
			const char *what, *r = compute_key(key, &what);
			bool miss = false;
			if (r) {
				pod_amount(obj, what, r, &miss);
				if (miss) {
					size_t c;
					json_t *ct;
					json_array_foreach(obj_get_path(obj, "spec.containers"), c, ct)
						if (!json_object_get(obj_get_path(json_object_get(ct,
						    "resources"), what), r))
							buf_printf(&missing, "%s%s for: %s", missing.len ?
							    "; " : "", key, obj_str(ct, "name"));
					continue;
				}
			}
			qty_of(json_object_get(used, key), key, &cur);
			if (mine > 0 && cur + mine > lim && nover < ARRAY_SIZE(over))
				over[nover++] = key;
		}
		if (missing.len) {
			api_error_set(err, 403, "Forbidden", "%s \"%s\" is forbidden: failed quota: "
			    "%s: must specify %s", k->plural, obj_name(obj), obj_name(qo), missing.data);
			rc = -1;
		} else if (nover) {
			struct buf rq = BUF_INIT, us = BUF_INIT, lm = BUF_INIT;
			qsort(over, nover, sizeof *over, cmp_keys);
			for (size_t j = 0; j < nover; j++) {
				int64_t mine = 0, lim = 0;
				char a[64], b[64];
				usage_of(over[j], res, obj, &mine);
				qty_of(json_object_get(hard, over[j]), over[j], &lim);
				qty_fmt(mine, over[j], a, sizeof a);
				qty_fmt(lim, over[j], b, sizeof b);
				buf_printf(&rq, "%s%s=%s", j ? "," : "", over[j], a);
				buf_printf(&us, "%s%s=%s", j ? "," : "", over[j],
				    json_string_value(json_object_get(used, over[j])));
				buf_printf(&lm, "%s%s=%s", j ? "," : "", over[j], b);
			}
			api_error_set(err, 403, "Forbidden", "%s \"%s\" is forbidden: exceeded quota: "
			    "%s, requested: %s, used: %s, limited: %s", k->plural, obj_name(obj),
			    obj_name(qo), rq.data, us.data, lm.data);
			buf_free(&rq);
			buf_free(&us);
			buf_free(&lm);
			rc = -1;
		}
		buf_free(&missing);
		json_decref(used);
		if (rc < 0) {
			err->kind = k;
			free(err->name);
			err->name = xstrdup(obj_name(obj));
			break;
		}
	}
	json_decref(quotas);
	return rc;
}

/* ---- admission: LimitRange ----------------------------------------------------- */

static const char *const compute[] = { "cpu", "memory", "ephemeral-storage" };

/* Fills a container's missing limits from default and missing requests
 * from defaultRequest, else from its limit (as the LimitRanger does). */
static void
container_defaults(json_t *c, const json_t *lim)
{
	json_t *r = obj_child(c, "resources");
	for (size_t i = 0; i < ARRAY_SIZE(compute); i++) {
		const char *n = compute[i];
		json_t *d = json_object_get(json_object_get(lim, "default"), n);
		json_t *dr = json_object_get(json_object_get(lim, "defaultRequest"), n);
		json_t *limits = json_object_get(r, "limits"), *reqs = json_object_get(r, "requests");
		if (d && !json_object_get(limits, n))
			json_object_set(obj_child(r, "limits"), n, d);
		limits = json_object_get(r, "limits");
		if (!json_object_get(reqs, n)) {
			json_t *v = dr ? dr : json_object_get(limits, n);
			if (v && (dr || d))
				json_object_set(obj_child(r, "requests"), n, v);
		}
	}
}

/* One min / max / ratio check of amount against the LimitRange item lim. */
static char *
check_bounds(const json_t *lim, const char *type, const char *n, bool has_req,
    int64_t req, bool has_limit, int64_t limit)
{
	int64_t mn, mx, ratio_m;
	char a[64], b[64];
	const json_t *vmin = json_object_get(json_object_get(lim, "min"), n);
	const json_t *vmax = json_object_get(json_object_get(lim, "max"), n);
	const json_t *vr = json_object_get(json_object_get(lim, "maxLimitRequestRatio"), n);
	if (vmin && qty_of(vmin, n, &mn)) {
		qty_fmt(mn, n, a, sizeof a);
		if (!has_req)
			return xasprintf("minimum %s usage per %s is %s.  No request is specified",
			    n, type, a);
		if (req < mn) {
			qty_fmt(req, n, b, sizeof b);
			return xasprintf("minimum %s usage per %s is %s, but request is %s", n,
			    type, a, b);
		}
	}
	if (vmax && qty_of(vmax, n, &mx)) {
		qty_fmt(mx, n, a, sizeof a);
		if (!has_limit)
			return xasprintf("maximum %s usage per %s is %s.  No limit is specified",
			    n, type, a);
		if (limit > mx) {
			qty_fmt(limit, n, b, sizeof b);
			return xasprintf("maximum %s usage per %s is %s, but limit is %s", n, type,
			    a, b);
		}
	}
	if (vr && quantity_scaled(json_string_value(vr) ?: "0", -3, &ratio_m) == 0 &&
	    has_limit && has_req && req > 0 && limit * 1000 > ratio_m * req) {
		qty_fmt(ratio_m, "cpu", a, sizeof a);	/* the ratio, in the cpu notation */
		return xasprintf("%s max limit to request ratio per %s is %s, but provided "
		    "ratio is %f", n, type, a, (double)limit / (double)req);
	}
	return NULL;
}

static char *
check_container(const json_t *c, const json_t *lim)
{
	const json_t *r = json_object_get(c, "resources");
	for (size_t i = 0; i < ARRAY_SIZE(compute); i++) {
		int64_t req = 0, limit = 0;
		bool hr = qty_of(json_object_get(json_object_get(r, "requests"), compute[i]),
		    compute[i], &req);
		bool hl = qty_of(json_object_get(json_object_get(r, "limits"), compute[i]),
		    compute[i], &limit);
		char *why = check_bounds(lim, "Container", compute[i], hr, req, hl, limit);
		if (why)
			return why;
	}
	return NULL;
}

static char *
check_pod(const json_t *pod, const json_t *lim)
{
	for (size_t i = 0; i < ARRAY_SIZE(compute); i++) {
		bool mr = false, ml = false;
		int64_t req = pod_amount(pod, "requests", compute[i], &mr);
		int64_t limit = pod_amount(pod, "limits", compute[i], &ml);
		char *why = check_bounds(lim, "Pod", compute[i], !mr, req, !ml, limit);
		if (why)
			return why;
	}
	return NULL;
}

int
api_limits_admit(struct api *api, const struct kind *k, const char *ns, json_t *obj,
    struct api_error *err)
{
	bool pod = !strcmp(k->kind, "Pod") && !*k->group;
	bool pvc = !strcmp(k->kind, "PersistentVolumeClaim") && !*k->group;
	json_t *ranges = NULL, *lr, *lim;
	size_t i, j;
	char *why = NULL;
	if ((!pod && !pvc) || store_list(api_store(api), "limitranges", ns, &ranges, NULL) < 0)
		return 0;
	/* defaults first (mutating), from every LimitRange, then the checks */
	json_array_foreach(ranges, i, lr)
		json_array_foreach(obj_get_path(lr, "spec.limits"), j, lim) {
			if (!pod || strcmp(obj_str(lim, "type"), "Container") != 0)
				continue;
			static const char *const lists[] = { "containers", "initContainers" };
			for (size_t l = 0; l < 2; l++) {
				size_t c;
				json_t *ct;
				json_array_foreach(obj_get_path(obj, "spec") ? json_object_get(
				    json_object_get(obj, "spec"), lists[l]) : NULL, c, ct)
					container_defaults(ct, lim);
			}
		}
	json_array_foreach(ranges, i, lr) {
		json_array_foreach(obj_get_path(lr, "spec.limits"), j, lim) {
			const char *type = obj_str(lim, "type");
			if (pod && !strcmp(type, "Container")) {
				size_t c;
				json_t *ct;
				json_array_foreach(obj_get_path(obj, "spec.containers"), c, ct)
					if (!why)
						why = check_container(ct, lim);
			} else if (pod && !strcmp(type, "Pod")) {
				why = check_pod(obj, lim);
			} else if (pvc && !strcmp(type, "PersistentVolumeClaim")) {
				int64_t req = 0, limit = 0;
				bool hr = qty_of(obj_get_path(obj, "spec.resources.requests.storage"),
				    "storage", &req);
				bool hl = qty_of(obj_get_path(obj, "spec.resources.limits.storage"),
				    "storage", &limit);
				why = check_bounds(lim, "PersistentVolumeClaim", "storage", hr, req,
				    hl || hr, hl ? limit : req);
			}
			if (why)
				break;
		}
		if (why)
			break;
	}
	json_decref(ranges);
	if (!why)
		return 0;
	api_error_set(err, 403, "Forbidden", "%s \"%s\" is forbidden: %s", k->plural,
	    obj_name(obj), why);
	err->kind = k;
	free(err->name);
	err->name = xstrdup(obj_name(obj));
	free(why);
	return -1;
}

/* ---- the quota controller: status.hard and status.used ----------------------- */

static int
quota_decide(struct ctrl *c, const json_t *q, int64_t now_ms, struct ctrl_writes *w)
{
	(void)now_ms;
	const json_t *hard = obj_get_path(q, "spec.hard");
	json_t *used = quota_used(ctrl_store(c), obj_namespace(q), hard);
	json_t *st = json_pack("{s:o, s:o}", "hard", hard ? json_incref((json_t *)hard) :
	    json_object(), "used", used);
	if (json_equal(st, json_object_get(q, "status"))) {
		json_decref(st);
		return 0;
	}
	json_t *copy = json_deep_copy(q);
	json_object_set_new(copy, "status", st);
	ctrl_writes_push(w, CTRL_STATUS, NULL, copy, 0);
	return 0;
}

/* Anything counted changed: the namespace's quotas are recomputed. */
static void
quota_on_counted(struct ctrl *c, enum store_event ev, const json_t *obj)
{
	(void)ev;
	ctrl_enqueue_selecting(c, obj_namespace(obj), NULL);
}

static void
quota_on_quota(struct ctrl *c, enum store_event ev, const json_t *obj)
{
	(void)ev;
	ctrl_enqueue(c, obj_namespace(obj), obj_name(obj));
}

static const struct ctrl_desc quota_desc = {
	.name = "resourcequota", .component = "resourcequota-controller",
	.api_version = "v1", .kind = "ResourceQuota", .res = "resourcequotas",
	.sources = {
		{ "resourcequotas", quota_on_quota },
		{ "pods", quota_on_counted },
		{ "services", quota_on_counted },
		{ "configmaps", quota_on_counted },
		{ "secrets", quota_on_counted },
		{ "persistentvolumeclaims", quota_on_counted },
		{ "apps/deployments", quota_on_counted },
	},
	.decide = quota_decide,
};

int
ctrl_quota_start(struct api *api, struct ctrl **out)
{
	return ctrl_start(api, &quota_desc, NULL, out);
}
