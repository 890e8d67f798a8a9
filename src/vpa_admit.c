/* vpa_admit.c — updateMode Initial: a pod being created whose controller
 * an Initial-mode VPA targets gets the recommended requests, as upstream's
 * VPA admission controller patches it (limits in proportion for
 * RequestsAndLimits, annotations vpaUpdates and vpaObservedContainers).
 * Pods that run are never touched. api_objects.c calls api_vpa_admit. */
#include "vpa.h"
#include "log.h"
#include "quantity.h"

#include <stdio.h>
#include <string.h>

static const char *const res_names[VPA_NRES] = { "cpu", "memory" };

bool
vpa_targets_pod(const json_t *vpa, const json_t *pod, vpa_owner_fn *owner, void *arg)
{
	const char *kind = obj_str_at(vpa, "spec.targetRef.kind");
	const char *name = obj_str_at(vpa, "spec.targetRef.name");
	const json_t *ref = obj_controller_ref(pod);
	if (!ref)
		return false;
	if (!strcmp(obj_str(ref, "kind"), kind) && !strcmp(obj_str(ref, "name"), name))
		return true;
	if (strcmp(obj_str(ref, "kind"), "ReplicaSet") || !owner)
		return false;
	/* a Deployment's or Rollout's pods: through their ReplicaSet */
	json_t *rs = owner(arg, obj_namespace(pod), "ReplicaSet", obj_str(ref, "name"));
	const json_t *up = rs ? obj_controller_ref(rs) : NULL;
	bool hit = up && !strcmp(obj_str(up, "kind"), kind) && !strcmp(obj_str(up, "name"),
	    name);
	json_decref(rs);
	return hit;
}

/* A quantity in the resource's exact unit: milli-cores, bytes; -1 when bad. */
static int64_t
units(enum vpa_res r, const json_t *q)
{
	int64_t v;
	if (!json_is_string(q) || quantity_scaled(json_string_value(q), r == VPA_CPU ? -3 : 0,
	    &v) < 0)
		return -1;
	return v;
}

static json_t *
units_json(enum vpa_res r, int64_t v)
{
	char q[48];
	vpa_quantity(r, r == VPA_CPU ? (double)v / 1000 : (double)v, q, sizeof q);
	return json_string(q);
}

/* Sets container ct's requests from the recommendation target (and the
 * limits in proportion); notes what changed in b. */
static void
patch_container(json_t *ct, size_t idx, const json_t *target, bool limits, struct buf *b)
{
	json_t *res = obj_child(ct, "resources");
	json_t *req = obj_child(res, "requests");
	json_t *lim = json_object_get(res, "limits");
	struct buf what = BUF_INIT;
	for (int r = 0; r < VPA_NRES; r++) {
		int64_t want = units(r, json_object_get(target, res_names[r]));
		if (want < 0)
			continue;
		int64_t old_req = units(r, json_object_get(req, res_names[r]));
		int64_t old_lim = units(r, json_object_get(lim, res_names[r]));
		json_object_set_new(req, res_names[r], units_json(r, want));
		buf_printf(&what, "%s%s request", what.len ? ", " : "", res_names[r]);
		if (!limits || old_lim < 0)
			continue;
		if (old_req <= 0)
			old_req = old_lim;	/* a request defaults to the limit */
		__int128 p = (__int128)old_lim * want;
		int64_t nl = (int64_t)(p / old_req);
		if (r == VPA_MEM && p % old_req)
			nl++;		/* memory rounds up to a whole byte */
		json_object_set_new(lim, res_names[r], units_json(r, nl));
		buf_printf(&what, ", %s limit", res_names[r]);
	}
	if (what.len)
		buf_printf(b, "%scontainer %zu: %s", b->len ? "; " : "", idx, what.data);
	buf_free(&what);
}

void
vpa_admit_pod(json_t *pod, const json_t *vpas, vpa_owner_fn *owner, void *arg)
{
	const json_t *vpa = NULL, *v;
	size_t i;
	json_array_foreach(vpas, i, v)
		if (!strcmp(vpa_update_mode(v), "Initial") && !obj_is_deleting(v) &&
		    vpa_targets_pod(v, pod, owner, arg)) {
			vpa = v;
			break;
		}
	if (!vpa)
		return;
	const json_t *recs = obj_get_path(vpa, "status.recommendation.containerRecommendations");
	json_t *ct;
	struct buf names = BUF_INIT, upd = BUF_INIT;
	json_array_foreach(obj_get_path(pod, "spec.containers"), i, ct) {
		const char *name = obj_str(ct, "name");
		buf_printf(&names, "%s%s", names.len ? ", " : "", name);
		const json_t *pol = vpa_container_policy(vpa, name), *rec;
		size_t j;
		if (!strcmp(obj_str(pol, "mode"), "Off"))
			continue;
		bool limits = strcmp(obj_str(pol, "controlledValues"), "RequestsOnly") != 0;
		json_array_foreach(recs, j, rec)
			if (!strcmp(obj_str(rec, "containerName"), name))
				patch_container(ct, i, json_object_get(rec, "target"), limits, &upd);
	}
	obj_set_annotation(pod, "vpaObservedContainers", names.len ? names.data : "");
	if (upd.len) {
		char *msg = xasprintf("Pod resources updated by %s: %s", obj_name(vpa), upd.data);
		obj_set_annotation(pod, "vpaUpdates", msg);
		free(msg);
	}
	buf_free(&names);
	buf_free(&upd);
}

struct owner_arg {
	struct api *api;
};

static json_t *
store_owner(void *arg, const char *ns, const char *kind, const char *name)
{
	struct owner_arg *a = arg;
	json_t *o = NULL;
	if (strcmp(kind, "ReplicaSet") || store_get(api_store(a->api), "apps/replicasets", ns,
	    name, &o) < 0)
		return NULL;
	return o;
}

int
api_vpa_admit(struct api *api, const struct kind *k, const char *ns, json_t *obj)
{
	json_t *vpas = NULL;
	if (strcmp(k->kind, "Pod") || *k->group || !obj_controller_ref(obj) ||
	    store_list(api_store(api), "autoscaling.k8s.io/verticalpodautoscalers", ns, &vpas,
	    NULL) < 0)
		return 0;
	struct owner_arg a = { api };
	if (json_array_size(vpas))
		vpa_admit_pod(obj, vpas, store_owner, &a);
	json_decref(vpas);
	return 0;
}
