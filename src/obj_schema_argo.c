/* obj_schema_argo.c — schemas and semantic checks of the argoproj.io/v1alpha1
 * analysis kinds: AnalysisTemplate, ClusterAnalysisTemplate and AnalysisRun
 * (the AnalysisRun controller is ctrl_analysis.c). The table of kinds
 * (obj_kind.c) points here. Argo Rollouts v1.6 is the spec; the defaults
 * (failureLimit 0, inconclusiveLimit 0, consecutiveErrorLimit 4) apply when
 * a run is evaluated and are not written into objects, as in Argo. */
#include "analysis.h"
#include "obj_schema.h"

#include <stdlib.h>
#include <string.h>

/* ==== analysis: AnalysisTemplate, ClusterAnalysisTemplate, AnalysisRun ==== */

static const struct schema_field arg_secret_ref[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("key", .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field arg_field_ref[] = {
	F_STR("fieldPath", .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field arg_value_from[] = {
	F_OBJ("secretKeyRef", arg_secret_ref),
	F_OBJ("fieldRef", arg_field_ref),
	F_END
};

/* Template args: the Rollout controller resolves valueFrom when it makes
 * the run. */
static const struct schema_field template_arg[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("value"),
	F_OBJ("valueFrom", arg_value_from),
	F_END
};

/* Run args carry resolved values. */
static const struct schema_field run_arg[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("value"),
	F_UNSUP("valueFrom"),
	F_END
};

static const struct schema_field header[] = {
	F_STR("key", .flags = SF_REQUIRED),
	F_STR("value", .flags = SF_REQUIRED),
	F_END
};

static const char *const web_methods[] = { "GET", "POST", "PUT", NULL };

static const struct schema_field provider_web[] = {
	F_STR("url", .flags = SF_REQUIRED),
	F_STR("method", .enums = web_methods),
	F_AOBJ("headers", header),
	F_STR("body"),
	F_ANY("jsonBody"),
	F_INT("timeoutSeconds"),
	F_STR("jsonPath"),
	F_BOOL("insecure"),
	F_END
};

static const struct schema_field provider_prometheus[] = {
	F_STR("address", .flags = SF_REQUIRED),
	F_STR("query", .flags = SF_REQUIRED),
	F_INT("timeout"),
	F_AOBJ("headers", header),
	F_BOOL("insecure"),
	F_UNSUP("authentication"),
	F_END
};

static const char *const v6_metrics[] = { "successRate", "errorRate", "p99",
	"avgLatency", "requestRate", NULL };

/* V6's own provider: the proxy's live figures (obs_traffic.h). */
static const struct schema_field provider_v6[] = {
	F_STR("service"),
	F_STR("revision"),
	F_STR("metric", .flags = SF_REQUIRED, .enums = v6_metrics),
	F_STR("window"),
	F_END
};

/* Argo's metric plugins (provider.plugin.NAME): V6 runs its own, the traffic
 * figures, under the plugin name AN_V6_PLUGIN, so the template stays valid for
 * Argo's schema (which has no room for a `v6` provider). */
static const struct schema_field provider_plugins[] = {
	F_OBJ(AN_V6_PLUGIN, provider_v6),
	F_END
};

/* The first form of V6's provider, `provider.v6`, which Argo's schema refuses. */
static void
check_old_v6(const json_t *v, const char *path, struct errlist *errs)
{
	(void)v;
	errlist_add(errs, path, "FieldValueInvalid", "provider v6 is not an Argo Rollouts "
	    "field: write it as plugin: {\"" AN_V6_PLUGIN "\": {...}} (same fields)");
}

static const struct schema_field metric_provider[] = {
	F_OBJ("web", provider_web),
	F_OBJ("prometheus", provider_prometheus),
	F_OBJ("plugin", provider_plugins),
	F_ANY("v6", .check = check_old_v6),
	F_UNSUP("job"), F_UNSUP("kayenta"), F_UNSUP("wavefront"), F_UNSUP("newRelic"),
	F_UNSUP("datadog"), F_UNSUP("cloudWatch"), F_UNSUP("graphite"),
	F_UNSUP("influxdb"), F_UNSUP("skywalking"),
	F_END
};

static const struct schema_field metric[] = {
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("interval"),
	F_STR("initialDelay"),
	F_IOS("count"),
	F_STR("successCondition"),
	F_STR("failureCondition"),
	F_IOS("failureLimit"),
	F_IOS("inconclusiveLimit"),
	F_IOS("consecutiveErrorLimit"),
	F_UNSUP("consecutiveSuccessLimit"),
	F_OBJ("provider", metric_provider, .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field template_spec[] = {
	F_AOBJ("args", template_arg),
	F_AOBJ("metrics", metric, .flags = SF_REQUIRED),
	F_UNSUP("dryRun"),
	F_UNSUP("measurementRetention"),
	F_END
};

const struct schema_field schema_analysistemplate[] = {
	F_OBJ("spec", template_spec, .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field run_spec[] = {
	F_AOBJ("args", run_arg),
	F_AOBJ("metrics", metric, .flags = SF_REQUIRED),
	F_BOOL("terminate"),
	F_UNSUP("dryRun"),
	F_UNSUP("measurementRetention"),
	F_END
};

const struct schema_field schema_analysisrun[] = {
	F_OBJ("spec", run_spec, .flags = SF_REQUIRED),
	F_MAPA("status"),
	F_END
};

/* An int-or-string limit: a non-negative integer, or a string that is one
 * or names an arg ("{{args.count}}"). Returns the number, -1 for an
 * arg reference, -2 when invalid. */
static json_int_t
limit_value(const json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v) >= 0 ? json_integer_value(v) : -2;
	const char *s = json_string_value(v);
	if (!s)
		return -2;
	if (strstr(s, "{{"))
		return -1;
	char *end;
	long long n = strtoll(s, &end, 10);
	return *s && !*end && n >= 0 ? (json_int_t)n : -2;
}

static void
check_limits(const json_t *m, const char *path, struct errlist *errs)
{
	static const char *const keys[] = { "count", "failureLimit", "inconclusiveLimit",
		"consecutiveErrorLimit" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const json_t *v = json_object_get(m, keys[i]);
		if (v && limit_value(v) == -2) {
			char *p = schema_path_key(path, keys[i]);
			schema_err_invalid(errs, p, v, "must be a non-negative integer");
			free(p);
		}
	}
	json_int_t count = limit_value(json_object_get(m, "count"));
	json_int_t flim = limit_value(json_object_get(m, "failureLimit"));
	json_int_t ilim = limit_value(json_object_get(m, "inconclusiveLimit"));
	if (count > 1 && !json_object_get(m, "interval"))
		errlist_add(errs, path, "FieldValueInvalid",
		    "metric '%s': count > 1, but interval not specified",
		    json_string_value(json_object_get(m, "name")));
	if (json_object_get(m, "count") && count >= 0 && (flim > count || ilim > count))
		errlist_add(errs, path, "FieldValueInvalid", "metric '%s': count must be >= "
		    "failureLimit and inconclusiveLimit",
		    json_string_value(json_object_get(m, "name")));
}

static void
check_durations(const json_t *m, const char *path, struct errlist *errs)
{
	static const char *const keys[] = { "interval", "initialDelay" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const json_t *v = json_object_get(m, keys[i]);
		const char *s = json_string_value(v);
		int64_t ms;
		if (s && !strstr(s, "{{") && duration_parse(s, &ms) < 0) {
			char *p = schema_path_key(path, keys[i]);
			schema_err_invalid(errs, p, v, "must be a duration such as \"30s\" or \"5m\"");
			free(p);
		}
	}
}

/* successCondition / failureCondition must parse; {{args.*}} parts stand
 * for a value, checked with a placeholder. */
static void
check_condition(const json_t *m, const char *key, const char *path, struct errlist *errs)
{
	const json_t *v = json_object_get(m, key);
	const char *s = json_string_value(v);
	if (!s)
		return;
	struct buf b = BUF_INIT;
	for (const char *p = s; *p;) {
		const char *open = strstr(p, "{{"), *close = open ? strstr(open, "}}") : NULL;
		if (!close) {
			buf_puts(&b, p);
			break;
		}
		buf_append(&b, p, (size_t)(open - p));
		buf_putc(&b, '0');
		p = close + 2;
	}
	char *text = buf_steal(&b), *err = NULL;
	if (aexpr_check(text, &err) < 0) {
		char *fp = schema_path_key(path, key);
		schema_err_invalid(errs, fp, v, "invalid expression: %s", err ? err : "syntax error");
		free(fp);
	}
	free(err);
	free(text);
}

static void
check_provider(const json_t *m, const char *path, struct errlist *errs)
{
	const json_t *prov = json_object_get(m, "provider");
	char *pp = schema_path_key(path, "provider");
	if (json_object_size(prov) != 1)
		errlist_add(errs, pp, "FieldValueInvalid",
		    "expected 1 provider type, but found %zu", json_object_size(prov));
	const json_t *v6 = analysis_v6_provider(prov);
	if (json_object_size(json_object_get(prov, "plugin")) > 1)
		errlist_add(errs, pp, "FieldValueInvalid", "expected 1 plugin");
	if (v6 && !json_object_get(v6, "service") && !json_object_get(v6, "revision"))
		errlist_add(errs, pp, "FieldValueRequired",
		    AN_V6_PLUGIN ": one of service or revision is required");
	const char *win = json_string_value(json_object_get(v6, "window"));
	int64_t ms;
	if (win && !strstr(win, "{{") && (duration_parse(win, &ms) < 0 || ms < 1000))
		errlist_add(errs, pp, "FieldValueInvalid",
		    AN_V6_PLUGIN ".window: must be a duration of at least 1s, got \"%s\"", win);
	free(pp);
}

static void
check_unique_names(const json_t *list, const char *path, struct errlist *errs)
{
	size_t i, j;
	json_t *a, *b;
	json_array_foreach(list, i, a) {
		const char *na = json_string_value(json_object_get(a, "name"));
		json_array_foreach(list, j, b) {
			if (j >= i)
				break;
			const char *nb = json_string_value(json_object_get(b, "name"));
			if (na && nb && strcmp(na, nb) == 0) {
				char *p = schema_path_index(path, i), *fp = schema_path_key(p, "name");
				errlist_add(errs, fp, "FieldValueDuplicate", "Duplicate value: \"%s\"", na);
				free(fp);
				free(p);
				break;
			}
		}
	}
}

static void
validate_analysis_spec(const json_t *obj, struct errlist *errs)
{
	const json_t *spec = json_object_get(obj, "spec");
	const json_t *metrics = json_object_get(spec, "metrics");
	size_t i;
	json_t *m;
	if (json_array_size(metrics) == 0)
		errlist_add(errs, "spec.metrics", "FieldValueRequired",
		    "at least one metric is required");
	check_unique_names(metrics, "spec.metrics", errs);
	check_unique_names(json_object_get(spec, "args"), "spec.args", errs);
	json_array_foreach(metrics, i, m) {
		char *p = schema_path_index("spec.metrics", i);
		check_limits(m, p, errs);
		check_durations(m, p, errs);
		check_condition(m, "successCondition", p, errs);
		check_condition(m, "failureCondition", p, errs);
		check_provider(m, p, errs);
		free(p);
	}
}

void
argo_analysistemplate_validate(const json_t *obj, struct errlist *errs)
{
	validate_analysis_spec(obj, errs);
}

void
argo_analysisrun_validate(const json_t *obj, struct errlist *errs)
{
	validate_analysis_spec(obj, errs);
}

/* ==== end of analysis ===================================================== */
