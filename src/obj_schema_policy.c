/* obj_schema_policy.c — ResourceQuota and LimitRange (core v1): the
 * namespace policies of environments (docs/environments.md). Their
 * admission and the quota's status are api_quota.c's. */
#include "obj_schema.h"

#include <stdlib.h>
#include <string.h>

#include "quantity.h"

static const char *const limit_types[] = { "Container", "Pod", "PersistentVolumeClaim",
	NULL };

static const struct schema_field limit_item[] = {
	F_STR("type", .flags = SF_REQUIRED, .enums = limit_types),
	F_MAPA("max", .check = check_quantity_map),
	F_MAPA("min", .check = check_quantity_map),
	F_MAPA("default", .check = check_quantity_map),
	F_MAPA("defaultRequest", .check = check_quantity_map),
	F_MAPA("maxLimitRequestRatio", .check = check_quantity_map),
	F_END
};

static const struct schema_field limitrange_spec[] = {
	F_AOBJ("limits", limit_item, .flags = SF_REQUIRED),
	F_END
};

const struct schema_field schema_limitrange[] = {
	F_OBJ("spec", limitrange_spec),
	F_END
};

static const struct schema_field quota_spec[] = {
	F_MAPA("hard", .check = check_quantity_map),
	F_UNSUP("scopes"),
	F_UNSUP("scopeSelector"),
	F_END
};

const struct schema_field schema_resourcequota[] = {
	F_OBJ("spec", quota_spec),
	F_MAPA("status"),
	F_END
};

static double
q(const json_t *m, const char *k, double dflt)
{
	const json_t *v = json_object_get(m, k);
	double d;
	if (json_is_number(v))
		return json_number_value(v);
	return json_is_string(v) && quantity_parse(json_string_value(v), &d) == 0 ? d : dflt;
}

/* Kubernetes' ValidateLimitRange: min <= defaultRequest <= default <= max
 * per resource; Pod limits have no defaults. */
void
core_limitrange_validate(const json_t *obj, struct errlist *errs)
{
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(json_object_get(obj, "spec"), "limits"), i, l) {
		const char *type = json_string_value(json_object_get(l, "type")) ?: "";
		char *path = schema_path_index("spec.limits", i);
		static const char *const maps[] = { "max", "min", "default", "defaultRequest" };
		json_t *names = json_object();
		for (size_t m = 0; m < 4; m++) {
			const char *k;
			json_t *v;
			json_object_foreach(json_object_get(l, maps[m]), k, v)
				json_object_set_new(names, k, json_true());
		}
		if (!strcmp(type, "Pod") && (json_object_get(l, "default") ||
		    json_object_get(l, "defaultRequest")))
			errlist_add(errs, path, "FieldValueForbidden", "may not be specified when "
			    "`type` is 'Pod'");
		const char *k;
		json_t *unused;
		json_object_foreach(names, k, unused) {
			double mn = q(json_object_get(l, "min"), k, -1), mx = q(json_object_get(l,
			    "max"), k, -1), df = q(json_object_get(l, "default"), k, -1),
			    dr = q(json_object_get(l, "defaultRequest"), k, -1);
			char *p = schema_path_key(path, k);
			if (mn >= 0 && mx >= 0 && mn > mx)
				errlist_add(errs, p, "FieldValueInvalid", "min value %g is greater "
				    "than max value %g", mn, mx);
			if (dr >= 0 && mx >= 0 && dr > mx)
				errlist_add(errs, p, "FieldValueInvalid", "default request value %g is "
				    "greater than max value %g", dr, mx);
			if (dr >= 0 && mn >= 0 && dr < mn)
				errlist_add(errs, p, "FieldValueInvalid", "min value %g is greater "
				    "than default request value %g", mn, dr);
			if (df >= 0 && mx >= 0 && df > mx)
				errlist_add(errs, p, "FieldValueInvalid", "default value %g is greater "
				    "than max value %g", df, mx);
			if (dr >= 0 && df >= 0 && dr > df)
				errlist_add(errs, p, "FieldValueInvalid", "default request value %g is "
				    "greater than default limit value %g", dr, df);
			free(p);
		}
		json_decref(names);
		free(path);
	}
}
