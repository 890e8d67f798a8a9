/* cli_vpa.c — what `v6 describe vpa` shows per container: the requests of
 * the target's pod template, the observed usage (p50 / p90 / peak of the
 * recommender's histograms, read from its checkpoints), the
 * recommendation, and since when history was kept. cli_describe.c calls it. */
#include "cli.h"
#include "vpa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const res_names[VPA_NRES] = { "cpu", "memory" };

static const json_t *
checkpoint_of(const json_t *cps, const char *vpa, const char *name)
{
	const json_t *cp;
	size_t i;
	json_array_foreach(cps, i, cp)
		if (!strcmp(obj_str_at(cp, "spec.vpaObjectName"), vpa) &&
		    !strcmp(obj_str_at(cp, "spec.containerName"), name))
			return cp;
	return NULL;
}

static const char *
or_dash(const char *s)
{
	return s && *s ? s : "-";
}

/* One row: resource, request, usage p50 / p90 / peak, the recommendation. */
static void
resource_row(struct buf *b, enum vpa_res r, const json_t *ct, const struct vpa_state *st,
    const json_t *rec)
{
	char p[3][48] = { "-", "-", "-" };
	const struct vpa_hist *h = !st ? NULL : r == VPA_CPU ? &st->cpu : &st->mem;
	static const double pct[3] = { 0.5, 0.9, 1.0 };
	for (int i = 0; h && !vpa_hist_empty(h) && i < 3; i++)
		vpa_quantity(r, vpa_hist_percentile(h, pct[i]), p[i], sizeof p[i]);
	const char *n = res_names[r];
	buf_printf(b, "    %-8s %-10s %-10s %-10s %-10s %-10s %-10s %-10s %s\n", n,
	    or_dash(obj_str(obj_get_path(ct, "resources.requests"), n)), p[0], p[1], p[2],
	    or_dash(obj_str(json_object_get(rec, "lowerBound"), n)),
	    or_dash(obj_str(json_object_get(rec, "target"), n)),
	    or_dash(obj_str(json_object_get(rec, "upperBound"), n)),
	    or_dash(obj_str(json_object_get(rec, "uncappedTarget"), n)));
}

char *
cli_vpa_view(const json_t *vpa, const json_t *target, const json_t *checkpoints)
{
	struct buf b = BUF_INIT;
	struct vpa_config cfg;
	const json_t *recs = obj_get_path(vpa, "status.recommendation.containerRecommendations");
	const json_t *ct, *rec;
	size_t i, j;
	vpa_config_default(&cfg);
	json_t *names = json_array();	/* the template's containers, then recommended ones */
	json_array_foreach(obj_get_path(target, "spec.template.spec.containers"), i, ct)
		json_array_append_new(names, json_string(obj_str(ct, "name")));
	json_array_foreach(recs, i, rec) {
		bool have = false;
		json_array_foreach(names, j, ct)
			have |= !strcmp(json_string_value(ct), obj_str(rec, "containerName"));
		if (!have)
			json_array_append_new(names, json_string(obj_str(rec, "containerName")));
	}
	buf_puts(&b, "Containers:\n");
	if (json_array_size(names) == 0)
		buf_puts(&b, "  <none>\n");
	json_array_foreach(names, i, ct) {
		const char *name = json_string_value(ct);
		const json_t *r = NULL, *x;
		json_array_foreach(recs, j, x)
			if (!strcmp(obj_str(x, "containerName"), name))
				r = x;
		const json_t *cp = checkpoint_of(checkpoints, obj_name(vpa), name);
		struct vpa_state st;
		bool have = cp && vpa_state_load(&st, json_object_get(cp, "status"), &cfg) == 0;
		buf_printf(&b, "  %s:\n", name);
		buf_printf(&b, "    %-8s %-10s %-10s %-10s %-10s %-10s %-10s %-10s %s\n",
		    "RESOURCE", "REQUEST", "USAGE-P50", "USAGE-P90", "PEAK", "LOWER", "TARGET",
		    "UPPER", "UNCAPPED");
		for (int res = 0; res < VPA_NRES; res++)
			resource_row(&b, res, vpa_spec_container(obj_get_path(target,
			    "spec.template.spec"), name), have ? &st : NULL, r);
		if (have && st.samples == 0)
			buf_puts(&b, "    History: no usage samples yet, memory peaks of OOM kills "
			    "only\n");
		else if (have)
			buf_printf(&b, "    History: since %s, %lld samples, saved %s\n",
			    obj_str_at(cp, "status.firstSampleStart"), (long long)st.samples,
			    obj_str_at(cp, "status.lastUpdateTime"));
		else
			buf_puts(&b, "    History: none saved yet\n");
	}
	json_decref(names);
	return buf_steal(&b);
}

int
cli_vpa_related(const json_t *vpa, json_t **target, json_t **checkpoints)
{
	const struct kind *tk = kind_find_gvk(obj_str_at(vpa, "spec.targetRef.apiVersion"),
	    obj_str_at(vpa, "spec.targetRef.kind"));
	const struct kind *ck = kind_find_gvk("autoscaling.k8s.io/v1",
	    "VerticalPodAutoscalerCheckpoint");
	struct cli_resp r;
	*target = NULL;
	*checkpoints = NULL;
	if (tk) {
		char *path = cli_path(tk, obj_namespace(vpa), obj_str_at(vpa, "spec.targetRef.name"),
		    NULL);
		if (cli_http("GET", path, NULL, NULL, &r) == 0) {
			if (r.status == 200)
				*target = json_incref(r.body);
			cli_resp_free(&r);
		}
		free(path);
	}
	char *path = cli_path(ck, obj_namespace(vpa), NULL, NULL);
	if (cli_http("GET", path, NULL, NULL, &r) == 0) {
		if (r.status == 200)
			*checkpoints = json_incref(json_object_get(r.body, "items"));
		cli_resp_free(&r);
	}
	free(path);
	return 0;
}
