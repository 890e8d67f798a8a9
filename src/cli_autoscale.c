/* cli_autoscale.c — `v6 autoscale` (kubectl autoscale: an autoscaling/v2
 * HorizontalPodAutoscaler on a scalable target) and how an HPA's metrics
 * read: the TARGETS column of `v6 get hpa` and the metric lines of
 * `v6 describe hpa`, in kubectl's words. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const scalable[] = { "Deployment", "ReplicaSet", "StatefulSet",
	"Rollout" };

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
cli_hpa_targets(const json_t *hpa, struct buf *out)
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
cli_hpa_metric_line(const json_t *hpa, size_t i, char **label, char **value)
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

/* ---- v6 autoscale --------------------------------------------------------- */

static const struct kind *
target_kind(const char *name)
{
	const struct kind *k = cli_kind(name);
	if (!k)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(scalable); i++)
		if (!strcmp(k->kind, scalable[i]))
			return k;
	cli_err("cannot autoscale a %s: v6 autoscales deployments, replica sets, stateful sets "
	    "and rollouts", k->kind);
	return NULL;
}

int
cli_autoscale(struct cli_opts *o)
{
	char kname[64];
	const char *name;
	if (o->nargs == 1 && strchr(o->args[0], '/')) {
		const char *slash = strchr(o->args[0], '/');
		snprintf(kname, sizeof kname, "%.*s", (int)(slash - o->args[0]), o->args[0]);
		name = slash + 1;
	} else if (o->nargs == 2) {
		snprintf(kname, sizeof kname, "%s", o->args[0]);
		name = o->args[1];
	} else {
		return cli_err("you must specify one resource, e.g. 'v6 autoscale deployment/web "
		    "--max 5'");
	}
	int64_t min = cli_flag_given(o, "min") ? o->min : -1;
	int64_t max = cli_flag_given(o, "max") ? o->max : -1;
	if (max < 1)
		return cli_err("--max=MAXPODS is required and must be at least 1, max: %lld",
		    (long long)max);
	if (min >= 0 && max < min)
		return cli_err("--max=MAXPODS must be larger or equal to --min=MINPODS, max: %lld, "
		    "min: %lld", (long long)max, (long long)min);
	enum cli_dry dry;
	const struct kind *k = target_kind(kname);
	if (!k || cli_dry_run(o, &dry) < 0)
		return 1;
	char *tpath = cli_path(k, cli_ns(o), name, NULL);
	json_t *target = NULL;
	int rc = cli_get_json(tpath, &target);
	free(tpath);
	json_decref(target);
	if (rc < 0)
		return 1;
	const char *hname = o->name ? o->name : name;
	json_t *hpa = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:s, s:s, s:s}, s:I}}",
	    "apiVersion", "autoscaling/v2", "kind", "HorizontalPodAutoscaler", "metadata",
	    "name", hname, "namespace", cli_ns(o), "spec", "scaleTargetRef", "apiVersion",
	    k->api_version, "kind", k->kind, "name", name, "maxReplicas", (json_int_t)max);
	json_t *spec = json_object_get(hpa, "spec");
	if (min >= 0)
		json_object_set_new(spec, "minReplicas", json_integer(min));
	if (cli_flag_given(o, "cpu-percent") && o->cpu_percent >= 0)
		json_object_set_new(spec, "metrics", json_pack("[{s:s, s:{s:s, s:{s:s, s:I}}}]",
		    "type", "Resource", "resource", "name", "cpu", "target", "type", "Utilization",
		    "averageUtilization", (json_int_t)o->cpu_percent));
	const struct kind *hk = kind_find_gvk("autoscaling/v2", "HorizontalPodAutoscaler");
	char *path = cli_path(hk, cli_ns(o), NULL, dry == CLI_DRY_SERVER ? "dryRun=All" : NULL);
	struct cli_resp r = { 0 };
	char ref[256];
	rc = 1;
	if (dry == CLI_DRY_CLIENT) {
		printf("%s autoscaled (dry run)\n", cli_obj_ref(hk, hname, ref, sizeof ref));
		rc = 0;
	} else if (cli_http("POST", path, NULL, hpa, &r) == 0) {
		if (r.status == 201 || r.status == 200) {
			printf("%s autoscaled%s\n", cli_obj_ref(hk, hname, ref, sizeof ref),
			    cli_dry_said[dry]);
			rc = 0;
		} else {
			cli_print_error(&r, "creating the autoscaler");
		}
	}
	cli_resp_free(&r);
	free(path);
	json_decref(hpa);
	return rc;
}

/* The HPA of namespace ns that scales kind/name (new reference), or NULL. */
static json_t *
hpa_of(const char *ns, const char *kind, const char *name)
{
	char *path = xasprintf("/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers", ns);
	struct cli_resp r = { 0 };
	json_t *found = NULL, *h;
	size_t i;
	if (cli_http("GET", path, NULL, NULL, &r) == 0 && r.status == 200)
		json_array_foreach(json_object_get(r.body, "items"), i, h) {
			const json_t *ref = obj_get_path(h, "spec.scaleTargetRef");
			if (!found && !strcmp(json_string_value(json_object_get(ref, "kind")) ?: "", kind)
			    && !strcmp(json_string_value(json_object_get(ref, "name")) ?: "", name))
				found = json_incref(h);
		}
	if (r.status)
		cli_resp_free(&r);
	free(path);
	return found;
}

void
cli_hpa_guard_replicas(const struct cli_item *it, const json_t *live, json_t *patch)
{
	const json_t *want = obj_get_path(it->obj, "spec.replicas");
	const json_t *now = obj_get_path(live, "spec.replicas");
	/* removing the field from the manifest (null in the patch) would reset
	 * the replicas to the default 1: the HPA's count stays, silently */
	bool removed = json_is_null(obj_get_path(patch, "spec.replicas"));
	bool scalable_kind = false;
	for (size_t i = 0; i < ARRAY_SIZE(scalable); i++)
		scalable_kind |= !strcmp(it->k->kind, scalable[i]);
	if (!scalable_kind || !json_is_integer(now) || (!removed && (!json_is_integer(want) ||
	    json_integer_value(want) == json_integer_value(now))))
		return;
	json_t *h = hpa_of(obj_namespace(it->obj), it->k->kind, obj_name(it->obj));
	if (!h)
		return;
	if (removed)
		goto drop;
	char ref[512];
	cli_obj_ref(it->k, obj_name(it->obj), ref, sizeof ref);
	fprintf(stderr, "Warning: %s: spec.replicas %lld is not applied: "
	    "HorizontalPodAutoscaler %s manages the replicas (%lld now); remove spec.replicas "
	    "from the manifest\n", ref, (long long)json_integer_value(want), obj_name(h),
	    (long long)json_integer_value(now));
drop:
	json_object_del(json_object_get(patch, "spec"), "replicas");
	if (json_is_object(json_object_get(patch, "spec")) &&
	    json_object_size(json_object_get(patch, "spec")) == 0)
		json_object_del(patch, "spec");
	json_decref(h);
}
