/* obj_schema_apps.c — schemas, semantic checks and defaults of the apps/v1
 * kinds (Deployment, ReplicaSet). The pod template shape comes from
 * obj_schema_core.c; the table of kinds (obj_kind.c) points here. */
#include "obj_schema.h"

#include <stdlib.h>
#include <string.h>

static void
check_nonneg(const json_t *v, const char *path, struct errlist *errs)
{
	if (json_integer_value(v) > INT32_MAX)
		schema_err_invalid(errs, path, v, "must be less than or equal to %d "
		    "(a 32-bit integer)", INT32_MAX);
	else if (json_integer_value(v) < 0)
		schema_err_invalid(errs, path, v, "must be greater than or equal to 0");
}

/* Parses an int-or-percent; returns false when malformed. */
static bool
int_or_percent(const json_t *v, json_int_t *n, bool *percent)
{
	if (json_is_integer(v)) {
		*n = json_integer_value(v);
		*percent = false;
		return *n >= 0;
	}
	const char *s = json_string_value(v);
	size_t d = s ? strspn(s, "0123456789") : 0;
	if (!s || d == 0 || d > 9 || strcmp(s + d, "%"))
		return false;
	*n = strtol(s, NULL, 10);
	*percent = true;
	return true;
}

static void
check_int_or_percent(const json_t *v, const char *path, struct errlist *errs)
{
	json_int_t n;
	bool pct;
	if (!int_or_percent(v, &n, &pct))
		schema_err_invalid(errs, path, v, "a valid percent string must be a "
		    "numeric string followed by an ending '%%' (e.g. '1%%', or '93%%'), "
		    "or a non-negative integer");
}

static const char *const strategy_types[] = { "RollingUpdate", "Recreate", NULL };

static const struct schema_field rolling_update[] = {
	F_IOS("maxSurge", .check = check_int_or_percent),
	F_IOS("maxUnavailable", .check = check_int_or_percent),
	F_END
};

static const struct schema_field deployment_strategy[] = {
	F_STR("type", .enums = strategy_types),
	F_OBJ("rollingUpdate", rolling_update),
	F_END
};

static const struct schema_field deployment_spec[] = {
	F_INT("replicas", .check = check_nonneg),
	F_OBJ("selector", schema_label_selector, .flags = SF_REQUIRED),
	F_OBJ("template", schema_pod_template, .flags = SF_REQUIRED),
	F_OBJ("strategy", deployment_strategy),
	F_INT("minReadySeconds", .check = check_nonneg),
	F_INT("revisionHistoryLimit", .check = check_nonneg),
	F_INT("progressDeadlineSeconds", .check = check_nonneg),
	F_BOOL("paused"),
	F_END
};

const struct schema_field schema_deployment[] = {
	F_OBJ("spec", deployment_spec, .flags = SF_REQUIRED),
	F_MAPA("status"),
	F_END
};

static const struct schema_field replicaset_spec[] = {
	F_INT("replicas", .check = check_nonneg),
	F_OBJ("selector", schema_label_selector, .flags = SF_REQUIRED),
	F_OBJ("template", schema_pod_template),
	F_INT("minReadySeconds", .check = check_nonneg),
	F_END
};

const struct schema_field schema_replicaset[] = {
	F_OBJ("spec", replicaset_spec, .flags = SF_REQUIRED),
	F_MAPA("status"),
	F_END
};

/* ---- semantic checks ------------------------------------------------- */

/* Selector non-empty and selecting the template's labels; the template
 * restarts always (controllers replace pods, they never finish). */
static void
validate_selector_template(const json_t *spec, const char *kind, struct errlist *errs)
{
	const json_t *sel = json_object_get(spec, "selector");
	const json_t *tmpl = json_object_get(spec, "template");
	if (json_object_size(json_object_get(sel, "matchLabels")) == 0 &&
	    json_array_size(json_object_get(sel, "matchExpressions")) == 0)
		schema_err_invalid(errs, "spec.selector", sel,
		    "empty selector is invalid for %s", kind);
	else if (tmpl) {
		const json_t *labels = json_object_get(json_object_get(tmpl, "metadata"), "labels");
		if (!schema_selector_matches(sel, labels)) {
			json_t *shown = labels ? json_incref((json_t *)labels) : json_object();
			schema_err_invalid(errs, "spec.template.metadata.labels", shown,
			    "selector does not match template labels");
			json_decref(shown);
		}
	}
	const json_t *rp = json_object_get(json_object_get(tmpl, "spec"), "restartPolicy");
	if (json_is_string(rp) && strcmp(json_string_value(rp), "Always"))
		errlist_add(errs, "spec.template.spec.restartPolicy", "FieldValueNotSupported",
		    "unsupported value \"%s\": supported values: \"Always\"",
		    json_string_value(rp));
}

static void
validate_strategy(const json_t *spec, struct errlist *errs)
{
	const json_t *st = json_object_get(spec, "strategy");
	const char *type = json_string_value(json_object_get(st, "type"));
	const json_t *ru = json_object_get(st, "rollingUpdate");
	if (type && !strcmp(type, "Recreate") && ru) {
		errlist_add(errs, "spec.strategy.rollingUpdate", "FieldValueForbidden",
		    "may not be specified when strategy `type` is 'Recreate'");
		return;
	}
	json_int_t surge = 1, unavail = 1;
	bool sp = false, up = false;
	const json_t *ms = json_object_get(ru, "maxSurge");
	const json_t *mu = json_object_get(ru, "maxUnavailable");
	if (ms)
		int_or_percent(ms, &surge, &sp);
	if (mu)
		int_or_percent(mu, &unavail, &up);
	if (up && unavail > 100)
		schema_err_invalid(errs, "spec.strategy.rollingUpdate.maxUnavailable", mu,
		    "must not be greater than 100%%");
	if (ms && mu && surge == 0 && unavail == 0)
		schema_err_invalid(errs, "spec.strategy.rollingUpdate.maxUnavailable", mu,
		    "may not be 0 when `maxSurge` is 0");
}

void
apps_deployment_validate(const json_t *obj, struct errlist *errs)
{
	const json_t *spec = json_object_get(obj, "spec");
	validate_selector_template(spec, "deployment", errs);
	validate_strategy(spec, errs);
	const json_t *pd = json_object_get(spec, "progressDeadlineSeconds");
	json_int_t deadline = pd ? json_integer_value(pd) : 600;
	json_int_t min_ready = json_integer_value(json_object_get(spec, "minReadySeconds"));
	if (deadline <= min_ready)
		schema_err_invalid(errs, "spec.progressDeadlineSeconds", pd,
		    "must be greater than minReadySeconds");
}

void
apps_replicaset_validate(const json_t *obj, struct errlist *errs)
{
	validate_selector_template(json_object_get(obj, "spec"), "replicaset", errs);
}

void
apps_selector_update(const json_t *old, const json_t *obj, struct errlist *errs)
{
	const json_t *a = json_object_get(json_object_get(old, "spec"), "selector");
	const json_t *b = json_object_get(json_object_get(obj, "spec"), "selector");
	if (a && b && json_equal((json_t *)a, (json_t *)b))
		return;
	if (!a && !b)
		return;
	schema_err_invalid(errs, "spec.selector", b, "field is immutable");
}

/* ---- defaults -------------------------------------------------------- */

static json_t *
child_object(json_t *o, const char *key)
{
	json_t *c = json_object_get(o, key);
	if (!json_is_object(c)) {
		c = json_object();
		json_object_set_new(o, key, c);
	}
	return c;
}

void
apps_deployment_defaults(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec))
		return;
	schema_default_int(spec, "replicas", 1);
	schema_default_int(spec, "revisionHistoryLimit", 10);
	schema_default_int(spec, "progressDeadlineSeconds", 600);
	json_t *st = child_object(spec, "strategy");
	schema_default_str(st, "type", "RollingUpdate");
	const char *type = json_string_value(json_object_get(st, "type"));
	if (type && !strcmp(type, "RollingUpdate")) {
		json_t *ru = child_object(st, "rollingUpdate");
		schema_default_str(ru, "maxSurge", "25%");
		schema_default_str(ru, "maxUnavailable", "25%");
	}
	pod_template_defaults(json_object_get(spec, "template"));
}

void
apps_replicaset_defaults(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec))
		return;
	schema_default_int(spec, "replicas", 1);
	pod_template_defaults(json_object_get(spec, "template"));
}
