/* vpa_policy.c — a VPA's resourcePolicy and modes applied to estimates, as
 * upstream's pkg/utils/vpa (GetContainerResourcePolicy, ApplyVPAPolicy):
 * which containers and resources are recommended, and the caps. Pure; the
 * recommender (ctrl_vpa.c) and `v6 describe vpa` use it. */
#include "vpa.h"
#include "quantity.h"

#include <string.h>

static const char *const res_names[VPA_NRES] = { "cpu", "memory" };

const json_t *
vpa_container_policy(const json_t *vpa, const char *name)
{
	const json_t *p, *star = NULL;
	size_t i;
	json_array_foreach(obj_get_path(vpa, "spec.resourcePolicy.containerPolicies"), i, p) {
		const char *cn = obj_str(p, "containerName");
		if (!strcmp(cn, name))
			return p;
		if (!strcmp(cn, "*"))
			star = p;
	}
	return star;
}

const json_t *
vpa_spec_container(const json_t *podspec, const char *name)
{
	const json_t *ct;
	size_t i;
	json_array_foreach(json_object_get(podspec, "containers"), i, ct)
		if (!strcmp(obj_str(ct, "name"), name))
			return ct;
	return NULL;
}

const char *
vpa_update_mode(const json_t *vpa)
{
	const char *m = obj_str_at(vpa, "spec.updatePolicy.updateMode");
	return *m ? m : "Auto";
}

bool
vpa_uses_default_recommender(const json_t *vpa)
{
	const json_t *rs = obj_get_path(vpa, "spec.recommenders"), *r;
	size_t i;
	if (json_array_size(rs) == 0)
		return true;
	json_array_foreach(rs, i, r)
		if (!strcmp(obj_str(r, "name"), "default"))
			return true;
	return false;
}

static bool
controlled(const json_t *policy, enum vpa_res r)
{
	const json_t *cr = json_object_get(policy, "controlledResources"), *x;
	size_t i;
	if (!json_is_array(cr))
		return true;	/* default: cpu and memory */
	json_array_foreach(cr, i, x)
		if (!strcmp(json_string_value(x) ?: "", res_names[r]))
			return true;
	return false;
}

/* v as a quantity, or the policy's bound (copied) when v is beyond it. */
static json_t *
capped(const json_t *policy, enum vpa_res r, double v)
{
	const json_t *min = json_object_get(json_object_get(policy, "minAllowed"), res_names[r]);
	const json_t *max = json_object_get(json_object_get(policy, "maxAllowed"), res_names[r]);
	double b;
	if (json_is_string(min) && quantity_parse(json_string_value(min), &b) == 0 && v < b)
		return json_deep_copy(min);
	if (json_is_string(max) && quantity_parse(json_string_value(max), &b) == 0 && v > b)
		return json_deep_copy(max);
	char q[48];
	vpa_quantity(r, v, q, sizeof q);
	return json_string(q);
}

json_t *
vpa_container_recommendation(const json_t *vpa, const char *name,
    const struct vpa_estimate *e)
{
	const json_t *pol = vpa_container_policy(vpa, name);
	if (!strcmp(obj_str(pol, "mode"), "Off"))
		return NULL;
	json_t *t = json_object(), *lo = json_object(), *up = json_object(), *un = json_object();
	for (int r = 0; r < VPA_NRES; r++) {
		if (!controlled(pol, r))
			continue;
		char q[48];
		json_object_set_new(t, res_names[r], capped(pol, r, e->target[r]));
		json_object_set_new(lo, res_names[r], capped(pol, r, e->lower[r]));
		json_object_set_new(up, res_names[r], capped(pol, r, e->upper[r]));
		vpa_quantity(r, e->target[r], q, sizeof q);
		json_object_set_new(un, res_names[r], json_string(q));
	}
	return json_pack("{s:s, s:o, s:o, s:o, s:o}", "containerName", name, "target", t,
	    "lowerBound", lo, "upperBound", up, "uncappedTarget", un);
}
