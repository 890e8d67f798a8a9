/* ctrl_app_health.c — Argo CD's health assessment of live objects (gitops-
 * engine's pkg/health): one pure check per kind in a table, and the order
 * in which an Application's health is the worst of its resources'. */
#include "gitops.h"

#include <stdlib.h>
#include <string.h>

static int64_t
st_int(const json_t *o, const char *path)
{
	return obj_int_at(o, path, 0);
}

/* Deployment, StatefulSet, DaemonSet, ReplicaSet: rolled out and available. */
static const char *
health_workload(const json_t *o, const char **msg)
{
	const char *kind = obj_kind(o);
	if (json_is_true(obj_get_path(o, "spec.paused"))) {
		*msg = "Deployment is paused";
		return "Suspended";
	}
	if (obj_int_at(o, "metadata.generation", 0) > st_int(o, "status.observedGeneration")) {
		*msg = "Waiting for rollout to finish: observed generation is behind";
		return "Progressing";
	}
	const json_t *p = obj_condition(json_object_get(o, "status"), "Progressing");
	if (p && !strcmp(obj_str(p, "reason"), "ProgressDeadlineExceeded")) {
		*msg = "Deployment exceeded its progress deadline";
		return "Degraded";
	}
	int64_t want;
	if (!strcmp(kind, "DaemonSet")) {
		want = st_int(o, "status.desiredNumberScheduled");
		if (st_int(o, "status.updatedNumberScheduled") < want ||
		    st_int(o, "status.numberAvailable") < want) {
			*msg = "Waiting for daemon set rollout to finish";
			return "Progressing";
		}
		return "Healthy";
	}
	want = obj_int_at(o, "spec.replicas", 1);
	const char *updated = !strcmp(kind, "ReplicaSet") ? "status.replicas" :
	    "status.updatedReplicas";
	const char *avail = !strcmp(kind, "StatefulSet") ? "status.readyReplicas" :
	    "status.availableReplicas";
	if (st_int(o, updated) < want || st_int(o, avail) < want ||
	    st_int(o, "status.replicas") > want) {
		*msg = "Waiting for rollout to finish: replicas are not all updated and available";
		return "Progressing";
	}
	return "Healthy";
}

static const char *
health_pod(const json_t *o, const char **msg)
{
	const char *phase = obj_str_at(o, "status.phase");
	size_t i;
	const json_t *cs;
	json_array_foreach(obj_get_path(o, "status.containerStatuses"), i, cs) {
		const char *r = obj_str_at(cs, "state.waiting.reason");
		if (r && (!strcmp(r, "CrashLoopBackOff") || !strcmp(r, "ImagePullBackOff") ||
		    !strcmp(r, "ErrImagePull"))) {
			*msg = r;
			return "Degraded";
		}
	}
	if (!strcmp(phase, "Succeeded"))
		return "Healthy";
	if (!strcmp(phase, "Failed")) {
		*msg = *obj_str_at(o, "status.message") ? obj_str_at(o, "status.message") :
		    "pod failed";
		return "Degraded";
	}
	if (!strcmp(phase, "Running") && obj_pod_ready(o, NULL))
		return "Healthy";
	return "Progressing";
}

static const char *
health_job(const json_t *o, const char **msg)
{
	const json_t *st = json_object_get(o, "status");
	const json_t *c;
	if ((c = obj_condition(st, "Failed")) && !strcmp(obj_str(c, "status"), "True")) {
		*msg = obj_str(c, "message") ?: "job failed";
		return "Degraded";
	}
	if ((c = obj_condition(st, "Complete")) && !strcmp(obj_str(c, "status"), "True"))
		return "Healthy";
	if (json_is_true(obj_get_path(o, "spec.suspend")))
		return "Suspended";
	*msg = "job is running";
	return "Progressing";
}

static const char *
health_cronjob(const json_t *o, const char **msg)
{
	(void)msg;
	return json_is_true(obj_get_path(o, "spec.suspend")) ? "Suspended" : "Healthy";
}

/* Argo Rollouts' own phase (ctrl_rollout.c writes it), once the spec's
 * generation is observed: status.observedGeneration is a string there
 * (Argo CD's health.lua reads it with tonumber), so a phase written
 * before the last update is not taken for the new revision's. */
static const char *
health_rollout(const json_t *o, const char **msg)
{
	const char *ph = obj_str_at(o, "status.phase");
	const json_t *og = obj_get_path(o, "status.observedGeneration");
	int64_t seen = json_is_string(og) ? strtoll(json_string_value(og), NULL, 10) :
	    json_integer_value(og);
	*msg = obj_str_at(o, "status.message");
	if (!json_object_get(o, "status") || seen < obj_int_at(o, "metadata.generation", 0)) {
		*msg = "Waiting for rollout spec update to be observed";
		return "Progressing";
	}
	if (!strcmp(ph, "Paused"))
		return "Suspended";
	static const char *const known[] = { "Healthy", "Progressing", "Degraded" };
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (!strcmp(ph, known[i]))
			return known[i];
	return "Progressing";
}

static const char *
health_pvc(const json_t *o, const char **msg)
{
	const char *ph = *obj_str_at(o, "status.phase") ? obj_str_at(o, "status.phase") :
	    "Pending";
	*msg = ph;
	return !strcmp(ph, "Bound") ? "Healthy" : !strcmp(ph, "Lost") ? "Degraded" :
	    "Progressing";
}

static const char *
health_service(const json_t *o, const char **msg)
{
	if (!strcmp(obj_str_at(o, "spec.type"), "LoadBalancer") &&
	    !json_array_size(obj_get_path(o, "status.loadBalancer.ingress"))) {
		*msg = "waiting for a load balancer address";
		return "Progressing";
	}
	return "Healthy";
}

/* A child Application (app of apps). */
static const char *
health_app(const json_t *o, const char **msg)
{
	const char *h = obj_str_at(o, "status.health.status");
	*msg = obj_str_at(o, "status.health.message");
	return *h ? h : "Progressing";
}

static const struct {
	const char *api_version, *kind;
	const char *(*check)(const json_t *o, const char **msg);
} checks[] = {
	{ "apps/v1", "Deployment", health_workload },
	{ "apps/v1", "StatefulSet", health_workload },
	{ "apps/v1", "DaemonSet", health_workload },
	{ "apps/v1", "ReplicaSet", health_workload },
	{ "v1", "Pod", health_pod },
	{ "v1", "Service", health_service },
	{ "v1", "PersistentVolumeClaim", health_pvc },
	{ "batch/v1", "Job", health_job },
	{ "batch/v1", "CronJob", health_cronjob },
	{ "argoproj.io/v1alpha1", "Rollout", health_rollout },
	{ "argoproj.io/v1alpha1", "Application", health_app },
};

const char *
app_health_of(const json_t *live, const char **msg)
{
	const char *m = NULL;
	const char *h = NULL;
	if (!live) {
		h = "Missing";
	} else if (obj_is_deleting(live)) {
		h = "Progressing";
		m = "Pending deletion";
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(checks); i++)
			if (!strcmp(obj_api_version(live), checks[i].api_version) &&
			    !strcmp(obj_kind(live), checks[i].kind))
				h = checks[i].check(live, &m);
	}
	if (msg)
		*msg = m;
	return h;
}

static const char *const order[] = { "Healthy", "Suspended", "Progressing", "Missing",
	"Degraded", "Unknown" };

static int
rank(const char *h)
{
	for (size_t i = 0; h && i < ARRAY_SIZE(order); i++)
		if (!strcmp(h, order[i]))
			return (int)i;
	return -1;
}

const char *
app_health_worse(const char *a, const char *b)
{
	return rank(b) > rank(a) ? b : a;
}
