/* cli_autoscale.c — `v6 autoscale` (kubectl autoscale: an autoscaling/v2
 * HorizontalPodAutoscaler on a scalable target) and apply's guard of an
 * HPA's replicas. How an HPA's metrics read (get's TARGETS, describe's
 * lines) is the object printer's (obj_print_hpa.c). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const scalable[] = { "Deployment", "ReplicaSet", "StatefulSet",
	"Rollout" };

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
