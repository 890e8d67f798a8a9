/* obj_schema_monitoring.c — the schema of monitoring.coreos.com/v1
 * PrometheusRule, as the Prometheus operator's CRD writes it (groups of
 * alerting and recording rules), and the checks its CRD patterns make:
 * durations, partial_response_strategy, one of alert/record, unique group
 * names. The PromQL itself is checked by promtool at admission
 * (ctrl_promrules.c); the table of kinds (obj_kind.c) points here. */
#include "obj_schema.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct schema_field rule[] = {
	F_STR("alert"),
	F_STR("record"),
	F_IOS("expr", .flags = SF_REQUIRED),
	F_STR("for"),
	F_STR("keep_firing_for"),
	F_MAPS("labels"),
	F_MAPS("annotations"),
	F_END
};

static const struct schema_field group[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("interval"),
	F_INT("limit"),
	F_STR("partial_response_strategy"),
	F_AOBJ("rules", rule),
	F_END
};

static const struct schema_field spec[] = {
	F_AOBJ("groups", group),
	F_END
};

const struct schema_field schema_prometheusrule[] = {
	F_OBJ("spec", spec, .flags = SF_REQUIRED),
	F_END
};

/* The CRD's Duration pattern, Prometheus' model.Duration:
 * ^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?
 * (([0-9]+)s)?(([0-9]+)ms)?)$ — units in that order, each at most once.
 * The pattern lets "" through, which Prometheus then fails to load
 * ("empty duration string"): refused here instead. */
bool
monitoring_duration_valid(const char *s)
{
	static const char *const units[] = { "y", "w", "d", "h", "m", "s", "ms" };
	if (strcmp(s, "0") == 0)
		return true;
	if (!*s)
		return false;
	size_t next = 0;
	while (*s) {
		if (!isdigit((unsigned char)*s))
			return false;
		while (isdigit((unsigned char)*s))
			s++;
		size_t u = next;
		/* "m" of "ms" is not minutes: the longest unit that matches */
		bool is_ms = strncmp(s, "ms", 2) == 0;
		for (; u < ARRAY_SIZE(units); u++)
			if (strncmp(s, units[u], strlen(units[u])) == 0 && !(is_ms && u == 4))
				break;
		if (u == ARRAY_SIZE(units))
			return false;
		s += strlen(units[u]);
		next = u + 1;
	}
	return true;
}

static void
check_duration(const json_t *o, const char *key, const char *path, struct errlist *errs)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_string(v) || monitoring_duration_valid(json_string_value(v)))
		return;
	char *p = schema_path_key(path, key);
	schema_err_invalid(errs, p, v, "must be a duration such as 30s, 5m or 1h30m "
	    "(units y w d h m s ms, in that order)");
	free(p);
}

static void
check_rule(const json_t *r, const char *path, struct errlist *errs)
{
	const json_t *alert = json_object_get(r, "alert"), *record = json_object_get(r, "record");
	bool has_alert = json_is_string(alert), has_record = json_is_string(record);
	if (has_alert == has_record)
		errlist_add(errs, path, "FieldValueInvalid",
		    "exactly one of alert and record must be set");
	if (has_alert && !*json_string_value(alert)) {
		char *p = schema_path_key(path, "alert");
		errlist_add(errs, p, "FieldValueRequired", "Required value");
		free(p);
	}
	const char *bad[] = { "for", "keep_firing_for" };
	if (has_record)
		for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
			if (json_object_get(r, bad[i])) {
				char *p = schema_path_key(path, bad[i]);
				errlist_add(errs, p, "FieldValueForbidden",
				    "only alerting rules have it");
				free(p);
			}
	check_duration(r, "for", path, errs);
	check_duration(r, "keep_firing_for", path, errs);
	const json_t *expr = json_object_get(r, "expr");
	if (json_is_string(expr) && !*json_string_value(expr)) {
		char *p = schema_path_key(path, "expr");
		errlist_add(errs, p, "FieldValueRequired", "Required value");
		free(p);
	}
}

static void
check_group(const json_t *g, const char *path, struct errlist *errs)
{
	const char *name = obj_str(g, "name");
	if (!*name) {
		char *p = schema_path_key(path, "name");
		errlist_add(errs, p, "FieldValueRequired", "Required value");
		free(p);
	}
	check_duration(g, "interval", path, errs);
	const json_t *prs = json_object_get(g, "partial_response_strategy");
	if (json_is_string(prs) && *json_string_value(prs) &&
	    strcasecmp(json_string_value(prs), "abort") != 0 &&
	    strcasecmp(json_string_value(prs), "warn") != 0) {
		char *p = schema_path_key(path, "partial_response_strategy");
		schema_err_invalid(errs, p, prs, "must be abort or warn");
		free(p);
	}
	const json_t *limit = json_object_get(g, "limit");
	if (json_is_integer(limit) && json_integer_value(limit) < 0) {
		char *p = schema_path_key(path, "limit");
		schema_err_invalid(errs, p, limit, "must be greater than or equal to 0");
		free(p);
	}
	char *rp = schema_path_key(path, "rules");
	size_t i;
	const json_t *r;
	json_array_foreach(json_object_get(g, "rules"), i, r) {
		char *p = schema_path_index(rp, i);
		check_rule(r, p, errs);
		free(p);
	}
	free(rp);
}

void
monitoring_promrule_validate(const json_t *obj, struct errlist *errs)
{
	const json_t *groups = obj_get_path(obj, "spec.groups"), *g;
	size_t i;
	json_array_foreach(groups, i, g) {
		char *p = xasprintf("spec.groups[%zu]", i);
		check_group(g, p, errs);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(obj_str(g, "name"), obj_str(json_array_get(groups, j), "name"))) {
				char *np = schema_path_key(p, "name");
				errlist_add(errs, np, "FieldValueDuplicate", "Duplicate value: "
				    "group names must be unique in a PrometheusRule");
				free(np);
			}
		free(p);
	}
}
