/* obj_schema_vpa.c — schema and checks of autoscaling.k8s.io/v1
 * VerticalPodAutoscaler and VerticalPodAutoscalerCheckpoint, as upstream's
 * CRDs (vertical-pod-autoscaler/deploy/vpa-v1-crd-gen.yaml) have them. V6
 * delivers updateMode Off and Initial; the eviction modes are refused by
 * name. The recommender is ctrl_vpa.c. */
#include "obj_schema.h"

#include <stdio.h>
#include <string.h>

static const struct schema_field target_ref[] = {
	F_STR("apiVersion"),
	F_STR("kind", .flags = SF_REQUIRED),
	F_STR("name", .flags = SF_REQUIRED),
	F_END
};

static const char *const modes[] = { "Off", "Initial", NULL };
static const char *const modes_unsup[] = { "Auto", "Recreate", "InPlaceOrRecreate", NULL };

static const struct schema_field update_policy[] = {
	F_STR("updateMode", .enums = modes, .unsupported = modes_unsup),
	F_INT("minReplicas"),
	F_UNSUP("evictionRequirements"),
	F_END
};

static const char *const container_modes[] = { "Auto", "Off", NULL };
static const char *const resources[] = { "cpu", "memory", NULL };
static const char *const controlled_values[] = { "RequestsAndLimits", "RequestsOnly", NULL };

static const struct schema_field container_policy[] = {
	F_STR("containerName"),
	F_STR("mode", .enums = container_modes),
	F_MAPA("minAllowed", .check = check_quantity_map),
	F_MAPA("maxAllowed", .check = check_quantity_map),
	F_ARR("controlledResources", ST_STRING, .enums = resources),
	F_STR("controlledValues", .enums = controlled_values),
	F_END
};

static const struct schema_field resource_policy[] = {
	F_AOBJ("containerPolicies", container_policy),
	F_END
};

static const struct schema_field recommender[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field vpa_spec[] = {
	F_OBJ("targetRef", target_ref, .flags = SF_REQUIRED),
	F_OBJ("updatePolicy", update_policy),
	F_OBJ("resourcePolicy", resource_policy),
	F_AOBJ("recommenders", recommender),
	F_END
};

static const struct schema_field container_rec[] = {
	F_STR("containerName"),
	F_MAPA("target", .flags = SF_REQUIRED, .check = check_quantity_map),
	F_MAPA("lowerBound", .check = check_quantity_map),
	F_MAPA("upperBound", .check = check_quantity_map),
	F_MAPA("uncappedTarget", .check = check_quantity_map),
	F_END
};

static const struct schema_field recommendation[] = {
	F_AOBJ("containerRecommendations", container_rec),
	F_END
};

static const struct schema_field vpa_status[] = {
	F_OBJ("recommendation", recommendation),
	F_AOBJ("conditions", schema_autoscaler_condition),
	F_END
};

const struct schema_field schema_vpa[] = {
	F_OBJ("spec", vpa_spec, .flags = SF_REQUIRED),
	F_OBJ("status", vpa_status),
	F_END
};

/* The quantities both bounds name: min <= max, and neither negative. */
static void
policy_check(const json_t *p, const char *path, struct errlist *errs)
{
	const json_t *min = json_object_get(p, "minAllowed"), *max = json_object_get(p,
	    "maxAllowed"), *v;
	const char *res;
	char fp[320];
	json_object_foreach((json_t *)min, res, v) {
		double lo, hi;
		const json_t *m = json_object_get(max, res);
		if (!json_is_string(v) || quantity_parse(json_string_value(v), &lo) < 0 ||
		    !json_is_string(m) || quantity_parse(json_string_value(m), &hi) < 0)
			continue;
		snprintf(fp, sizeof fp, "%s.minAllowed.%s", path, res);
		if (lo > hi)
			schema_err_invalid(errs, fp, v, "must be less than or equal to "
			    "maxAllowed.%s (%s)", res, json_string_value(m));
	}
}

/* updateMode must be said: upstream's default is Auto (eviction), which
 * V6 does not deliver, and a silent Off would behave differently from a
 * cluster. Container names are unique among the policies. */
void
autoscaling_vpa_validate(const json_t *obj, struct errlist *errs)
{
	const json_t *spec = json_object_get(obj, "spec"), *p, *q;
	if (!json_object_get(json_object_get(spec, "updatePolicy"), "updateMode"))
		errlist_add(errs, "spec.updatePolicy.updateMode", "FieldValueRequired",
		    "required: v6 delivers updateMode \"Off\" and \"Initial\"; upstream's "
		    "default \"Auto\" (pod eviction) is not supported by v6");
	const json_t *pols = obj_get_path(spec, "resourcePolicy.containerPolicies");
	size_t i, j;
	json_array_foreach(pols, i, p) {
		char path[160];
		snprintf(path, sizeof path, "spec.resourcePolicy.containerPolicies[%zu]", i);
		policy_check(p, path, errs);
		json_array_foreach(pols, j, q)
			if (j < i && !strcmp(obj_str(p, "containerName"), obj_str(q,
			    "containerName"))) {
				char fp[200];
				snprintf(fp, sizeof fp, "%s.containerName", path);
				errlist_add(errs, fp, "FieldValueDuplicate", "Duplicate value: \"%s\"",
				    obj_str(p, "containerName"));
			}
	}
}

/* ---- VerticalPodAutoscalerCheckpoint ---------------------------------------- */

static const struct schema_field checkpoint_spec[] = {
	F_STR("vpaObjectName"),
	F_STR("containerName"),
	F_END
};

static const struct schema_field histogram[] = {
	F_STR("referenceTimestamp"),
	F_MAPA("bucketWeights"),
	F_NUM("totalWeight"),
	F_END
};

static const struct schema_field checkpoint_status[] = {
	F_STR("lastUpdateTime"),
	F_STR("version"),
	F_OBJ("cpuHistogram", histogram),
	F_OBJ("memoryHistogram", histogram),
	F_STR("firstSampleStart"),
	F_STR("lastSampleStart"),
	F_INT("totalSamplesCount"),
	F_END
};

const struct schema_field schema_vpa_checkpoint[] = {
	F_OBJ("spec", checkpoint_spec),
	F_OBJ("status", checkpoint_status),
	F_END
};
