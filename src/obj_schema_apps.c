/* obj_schema_apps.c — schemas, semantic checks and defaults of the apps/v1
 * kinds (Deployment, ReplicaSet, StatefulSet, ControllerRevision). The pod
 * template and claim shapes come from obj_schema_core.c; the table of kinds
 * (obj_kind.c) points here. */
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

void
schema_check_int_or_percent(const json_t *v, const char *path, struct errlist *errs)
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
	F_IOS("maxSurge", .check = schema_check_int_or_percent),
	F_IOS("maxUnavailable", .check = schema_check_int_or_percent),
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
void
apps_validate_selector_template(const json_t *spec, const char *kind, struct errlist *errs)
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
	apps_validate_selector_template(spec, "deployment", errs);
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
	apps_validate_selector_template(json_object_get(obj, "spec"), "replicaset", errs);
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

void
apps_deployment_defaults(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec))
		return;
	schema_default_int(spec, "replicas", 1);
	schema_default_int(spec, "revisionHistoryLimit", 10);
	schema_default_int(spec, "progressDeadlineSeconds", 600);
	json_t *st = obj_child(spec, "strategy");
	schema_default_str(st, "type", "RollingUpdate");
	const char *type = json_string_value(json_object_get(st, "type"));
	if (type && !strcmp(type, "RollingUpdate")) {
		json_t *ru = obj_child(st, "rollingUpdate");
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

/* ---- StatefulSet and ControllerRevision ------------------------------ */

static const char *const sts_pod_policies[] = { "OrderedReady", "Parallel", NULL };
static const char *const sts_strategy_types[] = { "RollingUpdate", "OnDelete", NULL };
static const char *const sts_retention[] = { "Retain", "Delete", NULL };

static const struct schema_field sts_rolling_update[] = {
	F_INT("partition", .check = check_nonneg),
	F_UNSUP("maxUnavailable"),
	F_END
};

static const struct schema_field sts_strategy[] = {
	F_STR("type", .enums = sts_strategy_types),
	F_OBJ("rollingUpdate", sts_rolling_update),
	F_END
};

static const struct schema_field sts_retention_policy[] = {
	F_STR("whenDeleted", .enums = sts_retention),
	F_STR("whenScaled", .enums = sts_retention),
	F_END
};

static const struct schema_field sts_ordinals[] = {
	F_INT("start", .check = check_nonneg),
	F_END
};

/* The template's shape; its semantic checks run in apps_statefulset_validate
 * once the claim templates are counted as volumes. */
static const struct schema_field sts_pod_template[] = {
	F_OBJ("metadata", schema_object_meta),
	F_OBJ("spec", schema_pod_spec, .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field statefulset_spec[] = {
	F_INT("replicas", .check = check_nonneg),
	F_OBJ("selector", schema_label_selector, .flags = SF_REQUIRED),
	F_OBJ("template", sts_pod_template, .flags = SF_REQUIRED),
	F_STR("serviceName"),
	F_STR("podManagementPolicy", .enums = sts_pod_policies),
	F_OBJ("updateStrategy", sts_strategy),
	F_INT("revisionHistoryLimit", .check = check_nonneg),
	F_INT("minReadySeconds", .check = check_nonneg),
	F_AOBJ("volumeClaimTemplates", schema_pvc_template),
	F_OBJ("persistentVolumeClaimRetentionPolicy", sts_retention_policy),
	F_OBJ("ordinals", sts_ordinals),
	F_END
};

const struct schema_field schema_statefulset[] = {
	F_OBJ("spec", statefulset_spec, .flags = SF_REQUIRED),
	F_MAPA("status"),
	F_END
};

const struct schema_field schema_controllerrevision[] = {
	F_ANY("data"),
	F_INT("revision", .flags = SF_REQUIRED, .check = check_nonneg),
	F_END
};

/* Claim templates: named (DNS label, unique), valid claims; the OnDelete
 * strategy takes no rollingUpdate. */
static void
validate_claim_templates(const json_t *spec, struct errlist *errs)
{
	json_t *seen = json_object(), *t;
	size_t i;
	json_array_foreach(json_object_get(spec, "volumeClaimTemplates"), i, t) {
		char *path = xasprintf("spec.volumeClaimTemplates[%zu]", i);
		char *np = xasprintf("%s.metadata.name", path);
		const json_t *nv = obj_get_path(t, "metadata.name");
		const char *name = json_string_value(nv);
		const char *msg = name ? name_check_dns1123_label(name) : NULL;
		if (!name || !*name)
			errlist_add(errs, np, "FieldValueRequired", "Required value");
		else if (msg)
			schema_err_invalid(errs, np, nv, "%s", msg);
		else if (json_object_get(seen, name))
			errlist_add(errs, np, "FieldValueDuplicate", "Duplicate value: \"%s\"", name);
		else
			json_object_set_new(seen, name, json_true());
		char *sp = xasprintf("%s.spec", path);
		core_pvc_spec_check(json_object_get(t, "spec"), sp, errs);
		free(sp);
		free(np);
		free(path);
	}
	json_decref(seen);
	const json_t *st = json_object_get(spec, "updateStrategy");
	const char *type = json_string_value(json_object_get(st, "type"));
	if (type && !strcmp(type, "OnDelete") && json_object_get(st, "rollingUpdate"))
		errlist_add(errs, "spec.updateStrategy.rollingUpdate", "FieldValueForbidden",
		    "only allowed for updateStrategy 'RollingUpdate'");
}

void
apps_statefulset_validate(const json_t *obj, struct errlist *errs)
{
	const json_t *spec = json_object_get(obj, "spec");
	apps_validate_selector_template(spec, "statefulset", errs);
	validate_claim_templates(spec, errs);
	/* Containers may mount the claims: check the template as its pods
	 * will be, with a volume per claim template. */
	json_t *tmpl = json_deep_copy(json_object_get(spec, "template"));
	json_t *pspec = json_object_get(tmpl, "spec"), *vols = json_object_get(pspec, "volumes");
	if (!json_is_array(vols)) {
		vols = json_array();
		json_object_set_new(pspec, "volumes", vols);
	}
	size_t i, j;
	json_t *t, *v;
	json_array_foreach(json_object_get(spec, "volumeClaimTemplates"), i, t) {
		const char *name = json_string_value(obj_get_path(t, "metadata.name"));
		bool have = false;
		json_array_foreach(vols, j, v)
			have |= name && json_equal(json_object_get(v, "name"), obj_get_path(t,
			    "metadata.name"));
		if (name && !have)
			json_array_append_new(vols, json_pack("{s:s, s:{s:s}}", "name", name,
			    "persistentVolumeClaim", "claimName", name));
	}
	schema_validate_fields(schema_pod_template, tmpl, "spec.template", errs);
	json_decref(tmpl);
}

/* Kubernetes lets an update change only these spec fields. */
void
apps_statefulset_update(const json_t *old, const json_t *obj, struct errlist *errs)
{
	static const char *const mutable[] = { "replicas", "ordinals", "template",
		"updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds",
		"revisionHistoryLimit" };
	/* Compared as stored: with defaults (the update is defaulted later). */
	json_t *oa = json_deep_copy(old), *ob = json_deep_copy(obj);
	apps_statefulset_defaults(oa);
	apps_statefulset_defaults(ob);
	json_t *a = json_incref(json_object_get(oa, "spec"));
	json_t *b = json_incref(json_object_get(ob, "spec"));
	json_decref(oa);
	json_decref(ob);
	for (size_t i = 0; i < ARRAY_SIZE(mutable); i++) {
		json_object_del(a, mutable[i]);
		json_object_del(b, mutable[i]);
	}
	if (!json_equal(a, b))
		errlist_add(errs, "spec", "FieldValueForbidden", "updates to statefulset spec "
		    "for fields other than 'replicas', 'ordinals', 'template', "
		    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy', "
		    "'revisionHistoryLimit' and 'minReadySeconds' are forbidden");
	json_decref(a);
	json_decref(b);
}

void
apps_controllerrevision_update(const json_t *old, const json_t *obj, struct errlist *errs)
{
	const json_t *a = json_object_get(old, "data"), *b = json_object_get(obj, "data");
	if ((a || b) && !(a && b && json_equal((json_t *)a, (json_t *)b)))
		errlist_add(errs, "data", "FieldValueForbidden", "field is immutable");
}

void
apps_statefulset_defaults(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec))
		return;
	schema_default_int(spec, "replicas", 1);
	schema_default_int(spec, "revisionHistoryLimit", 10);
	schema_default_str(spec, "podManagementPolicy", "OrderedReady");
	json_t *st = obj_child(spec, "updateStrategy");
	schema_default_str(st, "type", "RollingUpdate");
	const char *type = json_string_value(json_object_get(st, "type"));
	if (type && !strcmp(type, "RollingUpdate"))
		schema_default_int(obj_child(st, "rollingUpdate"), "partition", 0);
	json_t *rp = obj_child(spec, "persistentVolumeClaimRetentionPolicy");
	schema_default_str(rp, "whenDeleted", "Retain");
	schema_default_str(rp, "whenScaled", "Retain");
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(spec, "volumeClaimTemplates"), i, t)
		core_pvc_spec_defaults(json_object_get(t, "spec"));
	pod_template_defaults(json_object_get(spec, "template"));
}

/* ---- DaemonSet ------------------------------------------------------- */

static const char *const ds_strategy_types[] = { "RollingUpdate", "OnDelete", NULL };

static const struct schema_field ds_rolling_update[] = {
	F_IOS("maxUnavailable", .check = schema_check_int_or_percent),
	F_IOS("maxSurge", .check = schema_check_int_or_percent),
	F_END
};

static const struct schema_field ds_update_strategy[] = {
	F_STR("type", .enums = ds_strategy_types),
	F_OBJ("rollingUpdate", ds_rolling_update),
	F_END
};

static const struct schema_field daemonset_spec[] = {
	F_OBJ("selector", schema_label_selector, .flags = SF_REQUIRED),
	F_OBJ("template", schema_pod_template, .flags = SF_REQUIRED),
	F_OBJ("updateStrategy", ds_update_strategy),
	F_INT("minReadySeconds", .check = check_nonneg),
	F_INT("revisionHistoryLimit", .check = check_nonneg),
	F_UNSUP("templateGeneration"),
	F_END
};

const struct schema_field schema_daemonset[] = {
	F_OBJ("spec", daemonset_spec, .flags = SF_REQUIRED),
	F_MAPA("status"),
	F_END
};

/* Kubernetes' validateRollingUpdateDaemonSet: neither above 100%, and not
 * both zero. */
static void
validate_ds_rolling(const json_t *ru, struct errlist *errs)
{
	static const char *const keys[] = { "maxUnavailable", "maxSurge" };
	json_int_t n[2] = { 1, 0 };
	for (size_t i = 0; i < 2; i++) {
		const json_t *v = json_object_get(ru, keys[i]);
		bool pct = false;
		if (!v || !int_or_percent(v, &n[i], &pct))
			continue;
		if (pct && n[i] > 100) {
			char *p = xasprintf("spec.updateStrategy.rollingUpdate.%s", keys[i]);
			schema_err_invalid(errs, p, v, "must not be greater than 100%%");
			free(p);
		}
	}
	if (n[0] == 0 && n[1] == 0)
		schema_err_invalid(errs, "spec.updateStrategy.rollingUpdate.maxUnavailable",
		    json_object_get(ru, "maxUnavailable"), "may not be 0 when `maxSurge` is 0");
}

void
apps_daemonset_validate(const json_t *obj, struct errlist *errs)
{
	const json_t *spec = json_object_get(obj, "spec");
	apps_validate_selector_template(spec, "daemonset", errs);
	const json_t *ru = obj_get_path(obj, "spec.updateStrategy.rollingUpdate");
	if (ru)
		validate_ds_rolling(ru, errs);
}

void
apps_daemonset_defaults(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec))
		return;
	schema_default_int(spec, "revisionHistoryLimit", 10);
	json_t *st = obj_child(spec, "updateStrategy");
	schema_default_str(st, "type", "RollingUpdate");
	const char *type = json_string_value(json_object_get(st, "type"));
	if (type && !strcmp(type, "RollingUpdate")) {
		json_t *ru = obj_child(st, "rollingUpdate");
		schema_default_int(ru, "maxUnavailable", 1);
		schema_default_int(ru, "maxSurge", 0);
	}
	pod_template_defaults(json_object_get(spec, "template"));
}
