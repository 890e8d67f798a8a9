/* obj_schema_rollout.c — the schema, semantic checks and defaults of Argo
 * Rollouts' Rollout (argoproj.io/v1alpha1): the canary and blue-green
 * strategies V6 runs (ctrl_rollout.c). Fields Argo has and V6 does not
 * honour are rejected as "not supported by v6" (docs/compatibility.md). */
#include "obj_schema.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static void
check_nonneg(const json_t *v, const char *path, struct errlist *errs)
{
	if (json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
		schema_err_invalid(errs, path, v, "must be between 0 and %d", INT32_MAX);
}

static void
check_weight(const json_t *v, const char *path, struct errlist *errs)
{
	if (json_integer_value(v) < 0 || json_integer_value(v) > 100)
		schema_err_invalid(errs, path, v, "must be between 0 and 100");
}

/* Argo's pause duration: an integer of seconds or "30s" / "5m" / "1h". */
static void
check_pause_duration(const json_t *v, const char *path, struct errlist *errs)
{
	int64_t ms;
	if (json_is_integer(v) ? json_integer_value(v) < 0 :
	    duration_parse(json_string_value(v), &ms) < 0 || ms < 0)
		schema_err_invalid(errs, path, v, "must be a number of seconds or a duration "
		    "such as \"30s\", \"5m\", \"1h\"");
}

/* ---- analysis references --------------------------------------------- */

static const struct schema_field field_ref[] = {
	F_STR("fieldPath", .flags = SF_REQUIRED),
	F_END
};

static const char *const hash_values[] = { "Stable", "Latest", NULL };

static const struct schema_field arg_value_from[] = {
	F_STR("podTemplateHashValue", .enums = hash_values),
	F_OBJ("fieldRef", field_ref),
	F_END
};

static const struct schema_field analysis_arg[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("value"),
	F_OBJ("valueFrom", arg_value_from),
	F_END
};

static const struct schema_field template_ref[] = {
	F_STR("templateName", .flags = SF_REQUIRED),
	F_BOOL("clusterScope"),
	F_END
};

static const struct schema_field analysis_ref[] = {
	F_AOBJ("templates", template_ref, .flags = SF_REQUIRED),
	F_AOBJ("args", analysis_arg),
	F_UNSUP("dryRun"),
	F_UNSUP("measurementRetention"),
	F_UNSUP("analysisRunMetadata"),
	F_END
};

static const struct schema_field background_analysis[] = {
	F_AOBJ("templates", template_ref, .flags = SF_REQUIRED),
	F_AOBJ("args", analysis_arg),
	F_INT("startingStep", .check = check_nonneg),
	F_UNSUP("dryRun"),
	F_UNSUP("measurementRetention"),
	F_UNSUP("analysisRunMetadata"),
	F_END
};

/* ---- canary steps ------------------------------------------------------ */

static const struct schema_field pause_step[] = {
	F_IOS("duration", .check = check_pause_duration),
	F_END
};

static const struct schema_field canary_scale_step[] = {
	F_INT("replicas", .check = check_nonneg),
	F_INT("weight", .check = check_weight),
	F_BOOL("matchTrafficWeight"),
	F_END
};

static const struct schema_field string_match[] = {
	F_STR("exact"),
	F_STR("prefix"),
	F_STR("regex"),
	F_END
};

static const struct schema_field header_match[] = {
	F_STR("headerName", .flags = SF_REQUIRED),
	F_OBJ("headerValue", string_match, .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field header_route_step[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_AOBJ("match", header_match),
	F_END
};

static const struct schema_field canary_step[] = {
	F_INT("setWeight", .check = check_weight),
	F_OBJ("pause", pause_step),
	F_OBJ("setCanaryScale", canary_scale_step),
	F_OBJ("analysis", analysis_ref),
	F_OBJ("setHeaderRoute", header_route_step),
	F_UNSUP("experiment"),
	F_UNSUP("setMirrorRoute"),
	F_UNSUP("plugin"),
	F_END
};

static const struct schema_field pod_metadata[] = {
	F_MAPS("labels"),
	F_MAPS("annotations"),
	F_END
};

static const struct schema_field plugin_route[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_BOOL("useHeaderRoutes"),
	F_END
};

/* The argoproj-labs/gatewayAPI plugin's configuration: V6 routes through its own
 * proxy whatever routes are named, so they are accepted and recorded. */
static const struct schema_field gateway_plugin[] = {
	F_STR("httpRoute"),
	F_AOBJ("httpRoutes", plugin_route),
	F_STR("namespace"),
	F_BOOL("useHeaderRoutes"),
	F_STR("configMap"),
	F_UNSUP("grpcRoutes"), F_UNSUP("tcpRoutes"),
	F_END
};

static const struct schema_field traffic_plugins[] = {
	F_OBJ("argoproj-labs/gatewayAPI", gateway_plugin),
	F_END
};

static const struct schema_field managed_route[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field traffic_routing[] = {
	F_OBJ("plugins", traffic_plugins),
	F_UNSUP("istio"), F_UNSUP("nginx"), F_UNSUP("alb"), F_UNSUP("smi"),
	F_UNSUP("ambassador"), F_UNSUP("appMesh"), F_UNSUP("traefik"), F_UNSUP("apisix"),
	F_AOBJ("managedRoutes", managed_route),
	F_UNSUP("maxTrafficWeight"),
	F_END
};

static const struct schema_field canary_strategy[] = {
	F_STR("canaryService"),
	F_STR("stableService"),
	F_AOBJ("steps", canary_step),
	F_OBJ("analysis", background_analysis),
	F_OBJ("trafficRouting", traffic_routing),
	F_IOS("maxSurge", .check = schema_check_int_or_percent),
	F_IOS("maxUnavailable", .check = schema_check_int_or_percent),
	F_OBJ("canaryMetadata", pod_metadata),
	F_OBJ("stableMetadata", pod_metadata),
	F_INT("scaleDownDelaySeconds", .check = check_nonneg),
	F_INT("scaleDownDelayRevisionLimit", .check = check_nonneg),
	F_INT("abortScaleDownDelaySeconds", .check = check_nonneg),
	F_BOOL("dynamicStableScale"),
	F_INT("minPodsPerReplicaSet", .check = check_nonneg),
	F_UNSUP("antiAffinity"),
	F_UNSUP("pingPong"),
	F_END
};

static const struct schema_field bluegreen_strategy[] = {
	F_STR("activeService", .flags = SF_REQUIRED),
	F_STR("previewService"),
	F_BOOL("autoPromotionEnabled"),
	F_INT("autoPromotionSeconds", .check = check_nonneg),
	F_INT("previewReplicaCount", .check = check_nonneg),
	F_INT("scaleDownDelaySeconds", .check = check_nonneg),
	F_INT("scaleDownDelayRevisionLimit", .check = check_nonneg),
	F_INT("abortScaleDownDelaySeconds", .check = check_nonneg),
	F_OBJ("prePromotionAnalysis", analysis_ref),
	F_OBJ("postPromotionAnalysis", analysis_ref),
	F_OBJ("previewMetadata", pod_metadata),
	F_OBJ("activeMetadata", pod_metadata),
	F_IOS("maxUnavailable", .check = schema_check_int_or_percent),
	F_UNSUP("antiAffinity"),
	F_END
};

static const struct schema_field rollout_strategy[] = {
	F_OBJ("canary", canary_strategy),
	F_OBJ("blueGreen", bluegreen_strategy),
	F_END
};

static const struct schema_field run_limits[] = {
	F_INT("successfulRunHistoryLimit", .check = check_nonneg),
	F_INT("unsuccessfulRunHistoryLimit", .check = check_nonneg),
	F_END
};

static const struct schema_field rollout_spec[] = {
	F_INT("replicas", .check = check_nonneg),
	F_OBJ("selector", schema_label_selector, .flags = SF_REQUIRED),
	F_OBJ("template", schema_pod_template, .flags = SF_REQUIRED),
	F_OBJ("strategy", rollout_strategy, .flags = SF_REQUIRED),
	F_INT("minReadySeconds", .check = check_nonneg),
	F_INT("revisionHistoryLimit", .check = check_nonneg),
	F_INT("progressDeadlineSeconds", .check = check_nonneg),
	F_BOOL("progressDeadlineAbort"),
	F_BOOL("paused"),
	F_OBJ("analysis", run_limits),
	F_UNSUP("workloadRef"),
	F_UNSUP("restartAt"),
	F_UNSUP("rollbackWindow"),
	F_END
};

const struct schema_field schema_rollout[] = {
	F_OBJ("spec", rollout_spec, .flags = SF_REQUIRED),
	F_MAPA("status"),
	F_END
};

/* ---- semantic checks ------------------------------------------------- */

/* One action per step, as Argo requires. */
static void
validate_steps(const json_t *steps, struct errlist *errs)
{
	size_t i;
	const json_t *st;
	json_array_foreach(steps, i, st) {
		if (json_object_size(st) != 1) {
			char *p = xasprintf("spec.strategy.canary.steps[%zu]", i);
			schema_err_invalid(errs, p, st, "a step must have exactly one of setWeight, "
			    "pause, setCanaryScale, analysis, setHeaderRoute");
			free(p);
		}
		const json_t *hr = json_object_get(st, "setHeaderRoute"), *m;
		size_t j;
		json_array_foreach(json_object_get(hr, "match"), j, m) {
			if (json_object_size(json_object_get(m, "headerValue")) != 1) {
				char *p = xasprintf("spec.strategy.canary.steps[%zu].setHeaderRoute."
				    "match[%zu].headerValue", i, j);
				schema_err_invalid(errs, p, json_object_get(m, "headerValue"),
				    "must have exactly one of exact, prefix, regex");
				free(p);
			}
		}
	}
}

/* Is the step's route one of trafficRouting.managedRoutes? */
static bool
route_is_managed(const json_t *routing, const char *name)
{
	size_t i;
	const json_t *r;
	json_array_foreach(json_object_get(routing, "managedRoutes"), i, r)
		if (name && !strcmp(name, json_string_value(json_object_get(r, "name"))))
			return true;
	return false;
}

/* What Argo's controller marks InvalidSpec (validation.go, ValidateRolloutStrategyCanary),
 * with its messages, so a Rollout V6 accepts also runs under Argo: the fields that need
 * trafficRouting, and header routes that must be listed in managedRoutes. */
static void
validate_traffic_needs(const json_t *canary, struct errlist *errs)
{
	const json_t *tr = json_object_get(canary, "trafficRouting");
	const json_t *gw = obj_get_path(tr, "plugins.argoproj-labs/gatewayAPI");
	if (gw && !json_object_get(gw, "httpRoute") && !json_object_get(gw, "httpRoutes"))
		errlist_add(errs, "spec.strategy.canary.trafficRouting.plugins"
		    "[argoproj-labs/gatewayAPI].httpRoute", "FieldValueRequired",
		    "one of httpRoute or httpRoutes is required");
	if (!tr && json_object_get(canary, "scaleDownDelaySeconds"))
		schema_err_invalid(errs, "spec.strategy.canary.scaleDownDelaySeconds",
		    json_object_get(canary, "scaleDownDelaySeconds"),
		    "Canary scaleDownDelaySeconds can only be used with traffic routing");
	if (!tr && json_is_true(json_object_get(canary, "dynamicStableScale")))
		schema_err_invalid(errs, "spec.strategy.canary.dynamicStableScale", json_true(),
		    "Canary dynamicStableScale can only be used with traffic routing");
	if (tr && json_object_get(canary, "scaleDownDelaySeconds") &&
	    json_is_true(json_object_get(canary, "dynamicStableScale")))
		schema_err_invalid(errs, "spec.strategy.canary.dynamicStableScale", json_true(),
		    "Canary dynamicStableScale cannot be used with scaleDownDelaySeconds");
	size_t i;
	const json_t *st;
	bool scale_reported = false;
	json_array_foreach(json_object_get(canary, "steps"), i, st) {
		if (!tr && json_object_get(st, "setCanaryScale") && !scale_reported) {
			errlist_add(errs, "spec.strategy.canary.trafficRouting", "FieldValueRequired",
			    "SetCanaryScale requires TrafficRouting to be set");
			scale_reported = true;
		}
		const json_t *hr = json_object_get(st, "setHeaderRoute");
		if (!hr)
			continue;
		char *p = xasprintf("spec.strategy.canary.steps[%zu].setHeaderRoute", i);
		const char *name = json_string_value(json_object_get(hr, "name"));
		if (!tr)
			schema_err_invalid(errs, p, hr, "SetHeaderRoute requires TrafficRouting, "
			    "supports Istio and ALB and Apisix");
		else if (!json_object_get(tr, "managedRoutes"))
			errlist_add(errs, "spec.strategy.canary.trafficRouting.managedRoutes",
			    "FieldValueRequired", "Rollout has missing field "
			    "'spec.strategy.canary.trafficRouting.managedRoutes'");
		else if (!route_is_managed(tr, name))
			schema_err_invalid(errs, p, json_object_get(hr, "name"), "Steps define a "
			    "route that does not exist in spec.strategy.canary.trafficRouting."
			    "managedRoutes");
		free(p);
	}
}

void
argo_rollout_validate(const json_t *obj, struct errlist *errs)
{
	const json_t *spec = json_object_get(obj, "spec");
	const json_t *strat = json_object_get(spec, "strategy");
	const json_t *canary = json_object_get(strat, "canary");
	const json_t *bg = json_object_get(strat, "blueGreen");
	apps_validate_selector_template(spec, "rollout", errs);
	if (!!canary == !!bg) {
		errlist_add(errs, "spec.strategy", "FieldValueRequired",
		    "exactly one of canary or blueGreen must be set");
		return;
	}
	if (canary) {
		const char *cs = json_string_value(json_object_get(canary, "canaryService"));
		const char *ss = json_string_value(json_object_get(canary, "stableService"));
		if (!!cs != !!ss)
			errlist_add(errs, cs ? "spec.strategy.canary.stableService" :
			    "spec.strategy.canary.canaryService", "FieldValueRequired",
			    "canaryService and stableService must be set together");
		else if (cs && !strcmp(cs, ss))
			schema_err_invalid(errs, "spec.strategy.canary.canaryService",
			    json_object_get(canary, "canaryService"),
			    "must differ from stableService");
		if (json_object_get(canary, "trafficRouting") && !cs)
			errlist_add(errs, "spec.strategy.canary.stableService", "FieldValueRequired",
			    "trafficRouting needs canaryService and stableService");
		validate_steps(json_object_get(canary, "steps"), errs);
		validate_traffic_needs(canary, errs);
	}
	if (bg) {
		const char *as = json_string_value(json_object_get(bg, "activeService"));
		const char *ps = json_string_value(json_object_get(bg, "previewService"));
		if (as && ps && !strcmp(as, ps))
			schema_err_invalid(errs, "spec.strategy.blueGreen.previewService",
			    json_object_get(bg, "previewService"), "must differ from activeService");
	}
}

/* ---- defaults -------------------------------------------------------- */

void
argo_rollout_defaults(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec))
		return;
	schema_default_int(spec, "replicas", 1);
	schema_default_int(spec, "revisionHistoryLimit", 10);
	schema_default_int(spec, "progressDeadlineSeconds", 600);
	json_t *bg = obj_get_path(spec, "strategy.blueGreen");
	if (json_is_object(bg)) {
		if (!json_object_get(bg, "autoPromotionEnabled"))
			json_object_set_new(bg, "autoPromotionEnabled", json_true());
		schema_default_int(bg, "scaleDownDelaySeconds", 30);
		schema_default_int(bg, "abortScaleDownDelaySeconds", 30);
	}
	json_t *canary = obj_get_path(spec, "strategy.canary");
	if (json_is_object(canary)) {
		schema_default_str(canary, "maxSurge", "25%");
		schema_default_str(canary, "maxUnavailable", "25%");
		schema_default_int(canary, "abortScaleDownDelaySeconds", 30);
		/* Argo refuses scaleDownDelaySeconds without trafficRouting, so only then is
		 * it written (ctrl_rollout.c applies the same 30 s to a service-split canary) */
		if (json_object_get(canary, "trafficRouting"))
			schema_default_int(canary, "scaleDownDelaySeconds", 30);
	}
	pod_template_defaults(json_object_get(spec, "template"));
}
