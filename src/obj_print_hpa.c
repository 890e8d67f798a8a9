/* obj_print_hpa.c — how a HorizontalPodAutoscaler's metrics read, in
 * kubectl's words: the TARGETS cell ("cpu: 45%/50%", three at most then
 * "+ N more...") of obj_print.c's table (v6 get and the API's Tables) and
 * the "current / target" lines of `v6 describe hpa` (cli_describe.c). Pure. */
#include "obj_print.h"
#include "obj.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The current status of metric i: statuses are matched by index, as
 * kubectl's printer does. */
static const json_t *
current_of(const json_t *hpa, size_t i, const char *type)
{
	const json_t *c = json_array_get(obj_get_path(hpa, "status.currentMetrics"), i);
	const char *t = json_string_value(json_object_get(c, "type"));
	return t && !strcmp(t, type) ? c : NULL;
}

static const char *const members[][2] = {
	{ "Resource", "resource" }, { "ContainerResource", "containerResource" },
	{ "Pods", "pods" }, { "Object", "object" }, { "External", "external" },
};

static const char *
member(const char *type)
{
	for (size_t i = 0; i < ARRAY_SIZE(members); i++)
		if (!strcmp(type, members[i][0]))
			return members[i][1];
	return NULL;
}

/* "45%" / "<unknown>" and "50%" for utilization, else the quantities. */
static void
cur_target(const json_t *hpa, size_t i, char *cur, size_t clen, char *tgt, size_t tlen,
    bool *util)
{
	const json_t *m = json_array_get(obj_get_path(hpa, "spec.metrics"), i);
	const char *type = json_string_value(json_object_get(m, "type")) ?: "";
	const char *mem = member(type);
	const json_t *t = mem ? obj_get_path(json_object_get(m, mem), "target") : NULL;
	const json_t *c = mem ? obj_get_path(current_of(hpa, i, type), mem) : NULL;
	c = json_object_get(c, "current");
	json_t *au = json_object_get(t, "averageUtilization");
	*util = au != NULL;
	snprintf(cur, clen, "<unknown>");
	if (au) {
		snprintf(tgt, tlen, "%lld%%", (long long)json_integer_value(au));
		if (json_object_get(c, "averageUtilization"))
			snprintf(cur, clen, "%lld%%", (long long)json_integer_value(
			    json_object_get(c, "averageUtilization")));
		return;
	}
	const char *key = json_object_get(t, "averageValue") ? "averageValue" : "value";
	const json_t *tv = json_object_get(t, key), *cv = json_object_get(c, key);
	if (json_is_string(tv))
		snprintf(tgt, tlen, "%s", json_string_value(tv));
	else
		snprintf(tgt, tlen, "%lld", (long long)json_integer_value(tv));
	if (json_is_string(cv))
		snprintf(cur, clen, "%s", json_string_value(cv));
}

/* The metric's name: "cpu", or the custom metric's name. */
static const char *
metric_name(const json_t *m)
{
	const char *type = json_string_value(json_object_get(m, "type")) ?: "";
	const json_t *src = json_object_get(m, member(type) ? member(type) : "");
	const char *n = json_string_value(json_object_get(src, "name"));
	return n ? n : json_string_value(obj_get_path(src, "metric.name")) ?: "<unknown>";
}

void
print_hpa_targets(const json_t *hpa, struct buf *out)
{
	const json_t *metrics = obj_get_path(hpa, "spec.metrics"), *m;
	size_t i, n = json_array_size(metrics);
	if (n == 0) {
		buf_puts(out, "<none>");
		return;
	}
	json_array_foreach(metrics, i, m) {
		if (i == 3) {
			buf_printf(out, " + %zu more...", n - 3);
			break;
		}
		char cur[64], tgt[64];
		bool util;
		cur_target(hpa, i, cur, sizeof cur, tgt, sizeof tgt, &util);
		buf_printf(out, "%s%s: %s/%s", i ? ", " : "", metric_name(m), cur, tgt);
	}
}

bool
print_hpa_metric_line(const json_t *hpa, size_t i, char **label, char **value)
{
	const json_t *m = json_array_get(obj_get_path(hpa, "spec.metrics"), i);
	if (!m)
		return false;
	const char *type = json_string_value(json_object_get(m, "type")) ?: "";
	char cur[64], tgt[64];
	bool util;
	cur_target(hpa, i, cur, sizeof cur, tgt, sizeof tgt, &util);
	if (!strcmp(type, "Resource") && util) {
		const json_t *c = obj_get_path(current_of(hpa, i, type), "resource.current");
		const char *av = json_string_value(json_object_get(c, "averageValue"));
		*label = xasprintf("resource %s on pods  (as a percentage of request)",
		    metric_name(m));
		*value = av ? xasprintf("%s (%s) / %s", cur, av, tgt) :
		    xasprintf("%s / %s", cur, tgt);
	} else if (!strcmp(type, "Resource")) {
		*label = xasprintf("resource %s on pods", metric_name(m));
		*value = xasprintf("%s / %s", cur, tgt);
	} else {
		*label = xasprintf("\"%s\" (%s metric)", metric_name(m), type);
		*value = xasprintf("%s / %s", cur, tgt);
	}
	return true;
}
