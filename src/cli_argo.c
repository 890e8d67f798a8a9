/* cli_argo.c — what the CLI reads out of an Argo Rollout: strategy, step,
 * weights, the `rollout status` line, the revision of a ReplicaSet. Pure
 * functions shared by `get` (cli_print.c), the rollout views (cli_rwatch.c)
 * and the rollout verbs (cli_rollout.c), so that those verbs stay a leaf
 * nothing else depends on. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#define REV_ANN "deployment.kubernetes.io/revision"
#define ARGO_REV_ANN "rollout.argoproj.io/revision"

int64_t
cli_revision_of(const json_t *obj)
{
	json_t *ann = obj_get_path(obj, "metadata.annotations");
	const char *s = json_string_value(json_object_get(ann, REV_ANN));
	char *end;
	if (s == NULL)
		s = json_string_value(json_object_get(ann, ARGO_REV_ANN));
	if (s == NULL || *s == '\0')
		return 0;
	long long v = strtoll(s, &end, 10);
	return *end == '\0' && v > 0 ? v : 0;
}

static const char *
str(const json_t *obj, const char *path)
{
	const char *s = json_string_value(obj_get_path(obj, path));
	return s ? s : "";
}

/* Argo writes observedGeneration as a string ("3"); an integer is taken
 * too, and a string that is no number (old Argo: a hash) cannot be
 * compared, so it counts as observed. */
static bool
argo_observed(const json_t *ro)
{
	json_t *og = obj_get_path(ro, "status.observedGeneration");
	int64_t gen = json_integer_value(obj_get_path(ro, "metadata.generation"));
	const char *s = json_string_value(og);
	char *end;
	if (json_is_integer(og))
		return json_integer_value(og) >= gen;
	if (s == NULL || *s == '\0')
		return false;
	long long v = strtoll(s, &end, 10);
	return *end != '\0' || v >= gen;
}

const char *
cli_argo_strategy(const json_t *ro)
{
	if (obj_get_path(ro, "spec.strategy.canary"))
		return "Canary";
	return obj_get_path(ro, "spec.strategy.blueGreen") ? "BlueGreen" : "";
}

bool
cli_argo_step(const json_t *ro, int64_t *index, int64_t *count)
{
	if (obj_get_path(ro, "spec.strategy.canary") == NULL)
		return false;
	*count = (int64_t)json_array_size(obj_get_path(ro, "spec.strategy.canary.steps"));
	*index = json_integer_value(obj_get_path(ro, "status.currentStepIndex"));
	if (*index < 0)
		*index = 0;
	if (*index > *count)
		*index = *count;
	return true;
}

int64_t
cli_argo_set_weight(const json_t *ro)
{
	int64_t i, n;
	if (!cli_argo_step(ro, &i, &n))
		return -1;
	if (json_is_true(obj_get_path(ro, "status.abort")))
		return 0;
	if (i >= n)
		return 100;
	json_t *steps = obj_get_path(ro, "spec.strategy.canary.steps");
	for (; i >= 0; i--) {
		json_t *w = json_object_get(json_array_get(steps, (size_t)i), "setWeight");
		if (w)
			return json_integer_value(w);
	}
	return 0;
}

/* Without services to split traffic between, the controller's weights say
 * nothing (pods share one Service), so the set weight is shown. */
int64_t
cli_argo_weight(const json_t *ro)
{
	json_t *w = obj_get_path(ro, "status.canary.weights.canary.weight");
	bool routed = obj_get_path(ro, "spec.strategy.canary.canaryService") ||
	    obj_get_path(ro, "spec.strategy.canary.trafficRouting");
	return w && routed ? json_integer_value(w) : cli_argo_set_weight(ro);
}

/* kubectl-argo-rollouts status follows a paused rollout: Paused is a
 * state to wait through (a pause step's duration, a promote), not an end. */
static const struct {
	const char *phase;
	int state;
} argo_phases[] = {
	{ "Healthy", CLI_ARGO_DONE },
	{ "Degraded", CLI_ARGO_FAILED },
	{ "Paused", CLI_ARGO_WAIT },
	{ "Progressing", CLI_ARGO_WAIT },
};

int
cli_argo_status_msg(const json_t *ro, char **msg)
{
	if (!argo_observed(ro)) {
		*msg = xstrdup("Progressing - waiting for rollout spec update to be observed\n");
		return CLI_ARGO_WAIT;
	}
	const char *phase = str(ro, "status.phase"), *m = str(ro, "status.message");
	struct buf b = BUF_INIT;
	int64_t i, n;
	buf_puts(&b, *phase ? phase : "Progressing");
	if (*m)
		buf_printf(&b, " - %s", m);
	if (strcmp(phase, "Healthy") != 0 && cli_argo_step(ro, &i, &n) && n > 0)
		buf_printf(&b, " (step %lld/%lld, weight %lld%%)", (long long)i, (long long)n,
		    (long long)cli_argo_weight(ro));
	buf_putc(&b, '\n');
	*msg = buf_steal(&b);
	for (size_t k = 0; k < ARRAY_SIZE(argo_phases); k++)
		if (strcmp(argo_phases[k].phase, phase) == 0)
			return argo_phases[k].state;
	return CLI_ARGO_WAIT;
}
