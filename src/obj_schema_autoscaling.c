/* obj_schema_autoscaling.c — schema, defaults and semantic checks of the
 * autoscaling/v2 HorizontalPodAutoscaler, as upstream's types.go, defaults.go
 * and validation.go have them. The table of kinds (obj_kind.c) points here;
 * the controller is ctrl_hpa.c, the decision hpa_decide.c. */
#include "obj_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct schema_field xref[] = {
	F_STR("apiVersion"),
	F_STR("kind", .flags = SF_REQUIRED),
	F_STR("name", .flags = SF_REQUIRED),
	F_END
};

static const char *const target_types[] = { "Utilization", "Value", "AverageValue", NULL };

static const struct schema_field metric_target[] = {
	F_STR("type", .flags = SF_REQUIRED, .enums = target_types),
	F_QTY("value"),
	F_QTY("averageValue"),
	F_INT("averageUtilization"),
	F_END
};

static const struct schema_field metric_id[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_OBJ("selector", schema_label_selector),
	F_END
};

static const struct schema_field object_source[] = {
	F_OBJ("describedObject", xref, .flags = SF_REQUIRED),
	F_OBJ("metric", metric_id, .flags = SF_REQUIRED),
	F_OBJ("target", metric_target, .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field pods_source[] = {
	F_OBJ("metric", metric_id, .flags = SF_REQUIRED),
	F_OBJ("target", metric_target, .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field resource_source[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_OBJ("target", metric_target, .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field container_resource_source[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("container", .flags = SF_REQUIRED),
	F_OBJ("target", metric_target, .flags = SF_REQUIRED),
	F_END
};

static const char *const metric_types[] = { "Object", "Pods", "Resource",
	"ContainerResource", "External", NULL };

static const struct schema_field metric_spec[] = {
	F_STR("type", .flags = SF_REQUIRED, .enums = metric_types),
	F_OBJ("object", object_source),
	F_OBJ("pods", pods_source),
	F_OBJ("resource", resource_source),
	F_OBJ("containerResource", container_resource_source),
	F_OBJ("external", pods_source),
	F_END
};

static const char *const policy_types[] = { "Pods", "Percent", NULL };
static const char *const select_policies[] = { "Max", "Min", "Disabled", NULL };

static const struct schema_field scaling_policy[] = {
	F_STR("type", .flags = SF_REQUIRED, .enums = policy_types),
	F_INT("value", .flags = SF_REQUIRED),
	F_INT("periodSeconds", .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field scaling_rules[] = {
	F_INT("stabilizationWindowSeconds"),
	F_STR("selectPolicy", .enums = select_policies),
	F_AOBJ("policies", scaling_policy),
	F_UNSUP("tolerance"),
	F_END
};

static const struct schema_field behavior[] = {
	F_OBJ("scaleUp", scaling_rules),
	F_OBJ("scaleDown", scaling_rules),
	F_END
};

static const struct schema_field hpa_spec[] = {
	F_OBJ("scaleTargetRef", xref, .flags = SF_REQUIRED),
	F_INT("minReplicas"),
	F_INT("maxReplicas", .flags = SF_REQUIRED),
	F_AOBJ("metrics", metric_spec),
	F_OBJ("behavior", behavior),
	F_END
};

/* A condition of the autoscalers' statuses (HPA, VPA). */
const struct schema_field schema_autoscaler_condition[] = {
	F_STR("type", .flags = SF_REQUIRED),
	F_STR("status", .flags = SF_REQUIRED),
	F_STR("lastTransitionTime"),
	F_STR("reason"),
	F_STR("message"),
	F_END
};

static const struct schema_field hpa_status[] = {
	F_INT("observedGeneration"),
	F_STR("lastScaleTime"),
	F_INT("currentReplicas"),
	F_INT("desiredReplicas"),
	F_ARR("currentMetrics", ST_ANY),
	F_AOBJ("conditions", schema_autoscaler_condition),
	F_END
};

const struct schema_field schema_hpa[] = {
	F_OBJ("spec", hpa_spec, .flags = SF_REQUIRED),
	F_OBJ("status", hpa_status),
	F_END
};

/* ---- defaults (GenerateHPAScaleUpRules / GenerateHPAScaleDownRules) ---- */

static json_t *
policy(const char *type, int value, int period)
{
	return json_pack("{s:s, s:i, s:i}", "type", type, "value", value, "periodSeconds",
	    period);
}

/* Fills the fields of rules (created when absent) that are not set. */
static void
rules_defaults(json_t *beh, const char *key, int window, bool up)
{
	json_t *r = json_object_get(beh, key);
	if (!json_is_object(r)) {
		r = json_object();
		json_object_set_new(beh, key, r);
	}
	schema_default_int(r, "stabilizationWindowSeconds", window);
	schema_default_str(r, "selectPolicy", "Max");
	if (json_is_array(json_object_get(r, "policies")))
		return;
	json_t *p = json_array();
	if (up)
		json_array_append_new(p, policy("Pods", 4, 15));
	json_array_append_new(p, policy("Percent", 100, 15));
	json_object_set_new(r, "policies", p);
}

/* minReplicas 1; metrics default to cpu at 80 % utilization; a behavior
 * given gets every unset field of both directions (upstream defaults
 * behavior only when it is there; the controller applies the same rules
 * when it is not). */
void
autoscaling_hpa_defaults(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	schema_default_int(spec, "minReplicas", 1);
	json_t *m = json_object_get(spec, "metrics");
	if (!json_is_array(m) || json_array_size(m) == 0)
		json_object_set_new(spec, "metrics", json_pack("[{s:s, s:{s:s, s:{s:s, s:i}}}]",
		    "type", "Resource", "resource", "name", "cpu", "target", "type",
		    "Utilization", "averageUtilization", 80));
	json_t *beh = json_object_get(spec, "behavior");
	if (!json_is_object(beh))
		return;
	rules_defaults(beh, "scaleUp", 0, true);
	rules_defaults(beh, "scaleDown", 300, false);
}

/* ---- validation --------------------------------------------------------- */

static const char *const member_of[][2] = {
	{ "Object", "object" }, { "Pods", "pods" }, { "Resource", "resource" },
	{ "ContainerResource", "containerResource" }, { "External", "external" },
};

static bool
qty_positive(const json_t *q)
{
	double v = json_number_value(q);
	if (json_is_string(q) && quantity_parse(json_string_value(q), &v) < 0)
		return false;
	return v > 0;
}

static void
target_check(const json_t *t, const char *path, bool resource, struct errlist *errs)
{
	const char *type = json_string_value(json_object_get(t, "type"));
	char p[300];
	if (!type)
		return;
	if (!strcmp(type, "Utilization")) {
		json_t *u = json_object_get(t, "averageUtilization");
		snprintf(p, sizeof p, "%s.averageUtilization", path);
		if (!u)
			errlist_add(errs, p, "FieldValueRequired", "must set averageUtilization "
			    "when type is Utilization");
		else if (json_integer_value(u) <= 0)
			schema_err_invalid(errs, p, u, "must be greater than 0");
		if (!resource)
			schema_err_invalid(errs, path, json_object_get(t, "type"),
			    "Utilization is only valid for resource metrics");
	} else if (!strcmp(type, "AverageValue") || !strcmp(type, "Value")) {
		const char *f = type[0] == 'A' ? "averageValue" : "value";
		snprintf(p, sizeof p, "%s.%s", path, f);
		if (!qty_positive(json_object_get(t, f)))
			errlist_add(errs, p, "FieldValueRequired", "must be set to a value greater "
			    "than 0");
		if (resource && type[0] == 'V')
			schema_err_invalid(errs, path, json_object_get(t, "type"),
			    "must be either Utilization or AverageValue for resource metrics");
	}
}

static void
metric_check(const json_t *m, size_t i, struct errlist *errs)
{
	const char *type = json_string_value(json_object_get(m, "type"));
	char p[64], tp[256];
	snprintf(p, sizeof p, "spec.metrics[%zu]", i);
	for (size_t j = 0; type && j < ARRAY_SIZE(member_of); j++) {
		json_t *src = json_object_get(m, member_of[j][1]);
		bool want = !strcmp(type, member_of[j][0]);
		char fp[128];
		snprintf(fp, sizeof fp, "%s.%s", p, member_of[j][1]);
		if (want && !src)
			errlist_add(errs, fp, "FieldValueRequired", "must populate information for "
			    "the given metric source");
		else if (!want && src)
			errlist_add(errs, fp, "FieldValueForbidden", "must populate the given metric "
			    "source only");
		if (want && src) {
			snprintf(tp, sizeof tp, "%s.target", fp);
			target_check(json_object_get(src, "target"), tp, j == 2 || j == 3, errs);
		}
	}
}

static void
rules_check(const json_t *r, const char *path, struct errlist *errs)
{
	char p[256];
	json_t *w = json_object_get(r, "stabilizationWindowSeconds");
	snprintf(p, sizeof p, "%s.stabilizationWindowSeconds", path);
	if (w && (json_integer_value(w) < 0 || json_integer_value(w) > 3600))
		schema_err_invalid(errs, p, w, "must be between 0 and 3600");
	json_t *pol = json_object_get(r, "policies"), *x;
	size_t i;
	const char *sel = json_string_value(json_object_get(r, "selectPolicy"));
	snprintf(p, sizeof p, "%s.policies", path);
	if (json_is_array(pol) && json_array_size(pol) == 0 && !(sel && !strcmp(sel, "Disabled")))
		errlist_add(errs, p, "FieldValueRequired", "must specify at least one Policy");
	json_array_foreach(pol, i, x) {
		json_t *v = json_object_get(x, "value"), *ps = json_object_get(x, "periodSeconds");
		snprintf(p, sizeof p, "%s.policies[%zu]", path, i);
		char f[384];
		snprintf(f, sizeof f, "%s.value", p);
		if (v && json_integer_value(v) <= 0)
			schema_err_invalid(errs, f, v, "must be greater than zero");
		snprintf(f, sizeof f, "%s.periodSeconds", p);
		if (ps && (json_integer_value(ps) <= 0 || json_integer_value(ps) > 1800))
			schema_err_invalid(errs, f, ps, "must be greater than zero and less than or "
			    "equal to 1800");
	}
}

void
autoscaling_hpa_validate(const json_t *obj, struct errlist *errs)
{
	const json_t *spec = json_object_get(obj, "spec");
	json_t *min = json_object_get(spec, "minReplicas");
	json_t *max = json_object_get(spec, "maxReplicas");
	/* HPAScaleToZero (on in V6): 0 with an Object or External metric */
	if (min && json_integer_value(min) < 0)
		schema_err_invalid(errs, "spec.minReplicas", min, "must be greater than or equal "
		    "to 0");
	if (min && json_integer_value(min) == 0) {
		bool obj_or_ext = false;
		json_t *mm;
		size_t k;
		json_array_foreach(json_object_get(spec, "metrics"), k, mm) {
			const char *t = json_string_value(json_object_get(mm, "type")) ?: "";
			obj_or_ext |= !strcmp(t, "Object") || !strcmp(t, "External");
		}
		if (!obj_or_ext)
			errlist_add(errs, "spec.metrics", "FieldValueForbidden", "Forbidden: must specify at least one "
			    "Object or External metric to support scaling to zero replicas");
	}
	if (max && json_integer_value(max) < 1)
		schema_err_invalid(errs, "spec.maxReplicas", max, "must be greater than 0");
	else if (max && json_integer_value(max) < (min ? json_integer_value(min) : 1))
		schema_err_invalid(errs, "spec.maxReplicas", max, "must be greater than or equal "
		    "to `minReplicas`");
	json_t *m;
	size_t i;
	json_array_foreach(json_object_get(spec, "metrics"), i, m)
		metric_check(m, i, errs);
	json_t *beh = json_object_get(spec, "behavior");
	if (json_object_get(beh, "scaleUp"))
		rules_check(json_object_get(beh, "scaleUp"), "spec.behavior.scaleUp", errs);
	if (json_object_get(beh, "scaleDown"))
		rules_check(json_object_get(beh, "scaleDown"), "spec.behavior.scaleDown", errs);
}
