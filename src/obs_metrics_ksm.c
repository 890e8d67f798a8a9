/* obs_metrics_ksm.c — objects as kube-state-metrics names them
 * (kube_deployment_*, kube_pod_*, kube_service_*, ...) and Rollouts /
 * AnalysisRuns as the Argo Rollouts controller does (rollout_info,
 * analysis_run_metric_phase, ...). One table per kind of families; each
 * family is a pure function of one object that writes its samples, so a
 * page is written family by family over a list. Labels follow KSM:
 * `namespace` plus the kind's own name label (`deployment`, `pod`, ...),
 * `uid` only on kube_pod_info / kube_service_info as KSM does. */
#include "obs_metrics.h"

#include <string.h>

#include "obj.h"
#include "quantity.h"

struct ksm_family;
typedef void (*ksm_fn)(struct om_writer *w, const struct ksm_family *f, const json_t *o,
    const char *name_label);

struct ksm_family {
	const char *name;
	enum om_type type;
	const char *help;
	ksm_fn fn;
	const char *path;	/* for int_at: the integer's dotted path */
};

struct ksm_kind {
	const char *kind;
	const char *res;		/* store resource */
	const char *label;		/* the object's name label */
	const struct ksm_family *fam;
	size_t nfam;
};

/* ---- generic families ---------------------------------------------------- */

/* The integer at f->path (0 when absent, as KSM reports an unset count). */
static void
int_at(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o), nl,
	    obj_name(o), NULL }, (double)obj_int_at(o, f->path, 0));
}

/* spec.replicas defaults to 1 when unset, as the API server defaults it. */
static void
spec_replicas(struct om_writer *w, const struct ksm_family *f, const json_t *o,
    const char *nl)
{
	om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o), nl,
	    obj_name(o), NULL }, (double)obj_int_at(o, "spec.replicas", 1));
}

static void
created(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	int64_t s = obj_time_s(obj_get_path(o, "metadata.creationTimestamp"));
	if (s > 0)
		om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o),
		    nl, obj_name(o), NULL }, (double)s);
}

/* One series per value of phases[], 1 for the object's phase. */
static void
phase_series(struct om_writer *w, const char *fam, const json_t *o, const char *nl,
    const char *phase, const char *const *phases, const char *extra_k, const char *extra_v)
{
	const char *l[] = { "namespace", obj_namespace(o), nl, obj_name(o), "phase", NULL,
		NULL, NULL, NULL };
	size_t at = 5;		/* the phase's value */
	if (extra_k) {		/* Argo: strategy before phase */
		l[4] = extra_k, l[5] = extra_v, l[6] = "phase";
		at = 7;
	}
	for (size_t i = 0; phases[i]; i++) {
		l[at] = phases[i];
		om_sample(w, fam, l, strcmp(phase, phases[i]) == 0 ? 1 : 0);
	}
}

static void
owner(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	const json_t *refs = obj_get_path(o, "metadata.ownerReferences"), *r;
	size_t i;

	if (json_array_size(refs) == 0) {
		om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o),
		    nl, obj_name(o), "owner_kind", "<none>", "owner_name", "<none>",
		    "owner_is_controller", "<none>", NULL }, 1);
		return;
	}
	json_array_foreach(refs, i, r)
		om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o),
		    nl, obj_name(o), "owner_kind", obj_str(r, "kind"), "owner_name",
		    obj_str(r, "name"), "owner_is_controller",
		    json_is_true(json_object_get(r, "controller")) ? "true" : "false", NULL }, 1);
}

/* ---- pods ------------------------------------------------------------------ */

static void
pod_info(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	const json_t *ref = obj_controller_ref(o);
	om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o), nl,
	    obj_name(o), "uid", obj_uid(o), "host_ip", obj_str_at(o, "status.hostIP"),
	    "pod_ip", obj_str_at(o, "status.podIP"), "node", obj_str_at(o, "spec.nodeName"),
	    "created_by_kind", ref ? obj_str(ref, "kind") : "<none>", "created_by_name",
	    ref ? obj_str(ref, "name") : "<none>", "priority_class",
	    obj_str_at(o, "spec.priorityClassName"), "host_network",
	    json_is_true(obj_get_path(o, "spec.hostNetwork")) ? "true" : "false", NULL }, 1);
}

static void
pod_phase(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	static const char *const phases[] = { "Pending", "Succeeded", "Failed", "Unknown",
		"Running", NULL };
	const char *p = obj_str_at(o, "status.phase");
	phase_series(w, f->name, o, nl, *p ? p : "Pending", phases, NULL, NULL);
}

/* kube_pod_status_ready{condition="true"|"false"|"unknown"}. */
static void
pod_ready(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	static const char *const conds[] = { "true", "false", "unknown" };
	const json_t *c = obj_condition(obj_get_path(o, "status"), "Ready");
	const char *st = c ? obj_str(c, "status") : "";
	if (!c)
		return;		/* KSM writes nothing before the condition exists */
	for (size_t i = 0; i < 3; i++)
		om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o),
		    nl, obj_name(o), "condition", conds[i], NULL },
		    strcasecmp(st, conds[i]) == 0 ? 1 : 0);
}

/* The status of container name in status.containerStatuses, or NULL. */
static const json_t *
ctr_status(const json_t *pod, const char *name)
{
	const json_t *cs = obj_get_path(pod, "status.containerStatuses"), *c;
	size_t i;
	json_array_foreach(cs, i, c)
		if (strcmp(obj_str(c, "name"), name) == 0)
			return c;
	return NULL;
}

/* Calls fn for each container of spec.containers with its status. */
typedef void (*ctr_fn)(struct om_writer *w, const struct ksm_family *f, const json_t *pod,
    const json_t *spec, const json_t *st);

static void
each_ctr(struct om_writer *w, const struct ksm_family *f, const json_t *pod, ctr_fn fn)
{
	const json_t *cs = obj_get_path(pod, "spec.containers"), *c;
	size_t i;
	json_array_foreach(cs, i, c)
		fn(w, f, pod, c, ctr_status(pod, obj_str(c, "name")));
}

#define CTR_LABELS(pod, c) "namespace", obj_namespace(pod), "pod", obj_name(pod), \
	"container", obj_str(c, "name")

static void
c_info(struct om_writer *w, const struct ksm_family *f, const json_t *pod, const json_t *c,
    const json_t *st)
{
	om_sample(w, f->name, (const char *const[]){ CTR_LABELS(pod, c), "image",
	    obj_str(c, "image"), "image_id", st ? obj_str(st, "imageID") : "",
	    "container_id", st ? obj_str(st, "containerID") : "", NULL }, 1);
}

static void
c_restarts(struct om_writer *w, const struct ksm_family *f, const json_t *pod,
    const json_t *c, const json_t *st)
{
	if (st)
		om_sample(w, f->name, (const char *const[]){ CTR_LABELS(pod, c), NULL },
		    (double)obj_int_at(st, "restartCount", 0));
}

static void
c_ready(struct om_writer *w, const struct ksm_family *f, const json_t *pod,
    const json_t *c, const json_t *st)
{
	if (st)
		om_sample(w, f->name, (const char *const[]){ CTR_LABELS(pod, c), NULL },
		    json_is_true(json_object_get(st, "ready")) ? 1 : 0);
}

/* state.running / waiting / terminated: which one f->path names. */
static void
c_state(struct om_writer *w, const struct ksm_family *f, const json_t *pod,
    const json_t *c, const json_t *st)
{
	if (st)
		om_sample(w, f->name, (const char *const[]){ CTR_LABELS(pod, c), NULL },
		    obj_get_path(st, f->path) ? 1 : 0);
}

/* The reason of the state at f->path, one series while it lasts (KSM). */
static void
c_reason(struct om_writer *w, const struct ksm_family *f, const json_t *pod,
    const json_t *c, const json_t *st)
{
	const json_t *s = st ? obj_get_path(st, f->path) : NULL;
	const char *r = s ? obj_str(s, "reason") : "";
	if (*r)
		om_sample(w, f->name, (const char *const[]){ CTR_LABELS(pod, c), "reason", r,
		    NULL }, 1);
}

/* KSM's unit label: cores for CPU, bytes for memory and storage, plain
 * counts for the rest (extended resources such as GPUs). */
static const char *
resource_unit(const char *resource)
{
	if (strcmp(resource, "cpu") == 0)
		return "core";
	if (strcmp(resource, "memory") == 0 || strstr(resource, "storage") ||
	    str_has_prefix(resource, "hugepages-"))
		return "byte";
	return "integer";
}

/* resources.requests / limits at f->path: cpu in cores, memory and storage
 * in bytes, as KSM's {resource, unit}. */
static void
c_resources(struct om_writer *w, const struct ksm_family *f, const json_t *pod,
    const json_t *c, const json_t *st)
{
	const json_t *res = obj_get_path(c, f->path), *v;
	const char *key;
	double q;
	(void)st;
	json_object_foreach((json_t *)res, key, v) {
		if (!json_is_string(v) || quantity_parse(json_string_value(v), &q) < 0)
			continue;
		om_sample(w, f->name, (const char *const[]){ CTR_LABELS(pod, c), "node",
		    obj_str_at(pod, "spec.nodeName"), "resource", key, "unit",
		    resource_unit(key), NULL }, q);
	}
}

#define CTR_FAMILY(fn) \
static void \
fn##_all(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl) \
{ \
	(void)nl; \
	each_ctr(w, f, o, fn); \
}
CTR_FAMILY(c_info)
CTR_FAMILY(c_restarts)
CTR_FAMILY(c_ready)
CTR_FAMILY(c_state)
CTR_FAMILY(c_reason)
CTR_FAMILY(c_resources)

/* ---- services, claims, namespaces ------------------------------------------- */

static void
svc_info(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o), nl,
	    obj_name(o), "uid", obj_uid(o), "cluster_ip", obj_str_at(o, "spec.clusterIP"),
	    "external_name", obj_str_at(o, "spec.externalName"), "load_balancer_ip",
	    obj_str_at(o, "spec.loadBalancerIP"), NULL }, 1);
}

static void
svc_type(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	const char *t = obj_str_at(o, "spec.type");
	om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o), nl,
	    obj_name(o), "type", *t ? t : "ClusterIP", NULL }, 1);
}

static void
pvc_phase(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	static const char *const phases[] = { "Lost", "Bound", "Pending", NULL };
	const char *p = obj_str_at(o, "status.phase");
	phase_series(w, f->name, o, nl, *p ? p : "Pending", phases, NULL, NULL);
}

static void
pvc_info(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o), nl,
	    obj_name(o), "storageclass", obj_str_at(o, "spec.storageClassName"),
	    "volumename", obj_str_at(o, "spec.volumeName"), NULL }, 1);
}

/* kube_namespace_status_phase{namespace, phase}: the namespace is the
 * object itself, so it has no second name label. */
static void
ns_phase(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	static const char *const phases[] = { "Active", "Terminating" };
	const char *p = obj_str_at(o, "status.phase");
	(void)nl;
	for (size_t i = 0; i < 2; i++)
		om_sample(w, f->name, (const char *const[]){ "namespace", obj_name(o),
		    "phase", phases[i], NULL },
		    strcmp(*p ? p : "Active", phases[i]) == 0 ? 1 : 0);
}

/* ---- Argo Rollouts -------------------------------------------------------- */

static const char *
rollout_strategy(const json_t *o)
{
	if (obj_get_path(o, "spec.strategy.blueGreen"))
		return "blueGreen";
	if (obj_get_path(o, "spec.strategy.canary"))
		return "canary";
	return "none";
}

static const char *
rollout_phase_of(const json_t *o)
{
	const char *p = obj_str_at(o, "status.phase");
	return *p ? p : "Progressing";
}

static void
ro_info(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o), nl,
	    obj_name(o), "strategy", rollout_strategy(o), "traffic_router", "",
	    "phase", rollout_phase_of(o), NULL }, 1);
}

static void
ro_unavailable(struct om_writer *w, const struct ksm_family *f, const json_t *o,
    const char *nl)
{
	int64_t want = obj_int_at(o, "spec.replicas", 1);
	int64_t avail = obj_int_at(o, "status.availableReplicas", 0);
	om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o), nl,
	    obj_name(o), NULL }, (double)(want > avail ? want - avail : 0));
}

static void
ro_phase(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	static const char *const phases[] = { "Healthy", "Progressing", "Paused", "Degraded",
		NULL };
	phase_series(w, f->name, o, nl, rollout_phase_of(o), phases, "strategy",
	    rollout_strategy(o));
}

static const char *const arun_phases[] = { "Pending", "Running", "Successful", "Failed",
	"Error", "Inconclusive", NULL };

static const char *
arun_phase_of(const json_t *o)
{
	const char *p = obj_str_at(o, "status.phase");
	return *p ? p : "Pending";
}

static void
ar_info(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o), nl,
	    obj_name(o), "phase", arun_phase_of(o), NULL }, 1);
}

static void
ar_phase(struct om_writer *w, const struct ksm_family *f, const json_t *o, const char *nl)
{
	phase_series(w, f->name, o, nl, arun_phase_of(o), arun_phases, NULL, NULL);
}

/* A metric's provider type as Argo names it ("Prometheus", "Web", ...). */
static void
provider_type(const json_t *metric, char *out, size_t len)
{
	const char *key = "";
	json_t *v;
	json_object_foreach(json_object_get(metric, "provider"), key, v)
		break;
	snprintf(out, len, "%s", key ? key : "");
	if (out[0] >= 'a' && out[0] <= 'z')
		out[0] = (char)(out[0] - 'a' + 'A');
}

static const json_t *
metric_result(const json_t *run, const char *name)
{
	const json_t *rs = obj_get_path(run, "status.metricResults"), *r;
	size_t i;
	json_array_foreach(rs, i, r)
		if (strcmp(obj_str(r, "name"), name) == 0)
			return r;
	return NULL;
}

static void
ar_metric_type(struct om_writer *w, const struct ksm_family *f, const json_t *o,
    const char *nl)
{
	const json_t *ms = obj_get_path(o, "spec.metrics"), *m;
	char type[32];
	size_t i;
	json_array_foreach(ms, i, m) {
		provider_type(m, type, sizeof type);
		om_sample(w, f->name, (const char *const[]){ "namespace", obj_namespace(o), nl,
		    obj_name(o), "metric", obj_str(m, "name"), "type", type, NULL }, 1);
	}
}

static void
ar_metric_phase(struct om_writer *w, const struct ksm_family *f, const json_t *o,
    const char *nl)
{
	const json_t *ms = obj_get_path(o, "spec.metrics"), *m, *r;
	char type[32];
	size_t i;
	json_array_foreach(ms, i, m) {
		const char *name = obj_str(m, "name");
		r = metric_result(o, name);
		const char *phase = r && *obj_str(r, "phase") ? obj_str(r, "phase") : "Pending";
		bool dry = json_is_true(json_object_get(r, "dryRun"));
		provider_type(m, type, sizeof type);
		for (size_t k = 0; arun_phases[k]; k++)
			om_sample(w, f->name, (const char *const[]){ "namespace",
			    obj_namespace(o), nl, obj_name(o), "metric", name, "type", type,
			    "dry_run", dry ? "true" : "false", "phase", arun_phases[k], NULL },
			    strcmp(phase, arun_phases[k]) == 0 ? 1 : 0);
	}
}

/* ---- the tables ------------------------------------------------------------ */

#define G OM_GAUGE
#define INT(n, h, p) { n, G, h, int_at, p }

static const struct ksm_family deploy_fam[] = {
	{ "kube_deployment_created", G, "Unix creation timestamp", created, NULL },
	{ "kube_deployment_spec_replicas", G, "Number of desired pods for a deployment.",
	    spec_replicas, NULL },
	INT("kube_deployment_status_replicas", "The number of replicas per deployment.",
	    "status.replicas"),
	INT("kube_deployment_status_replicas_ready",
	    "The number of ready replicas per deployment.", "status.readyReplicas"),
	INT("kube_deployment_status_replicas_available",
	    "The number of available replicas per deployment.", "status.availableReplicas"),
	INT("kube_deployment_status_replicas_unavailable",
	    "The number of unavailable replicas per deployment.",
	    "status.unavailableReplicas"),
	INT("kube_deployment_status_replicas_updated",
	    "The number of updated replicas per deployment.", "status.updatedReplicas"),
	INT("kube_deployment_status_observed_generation",
	    "The generation observed by the deployment controller.",
	    "status.observedGeneration"),
	INT("kube_deployment_metadata_generation",
	    "Sequence number representing a specific generation of the desired state.",
	    "metadata.generation"),
};

static const struct ksm_family rs_fam[] = {
	{ "kube_replicaset_created", G, "Unix creation timestamp", created, NULL },
	{ "kube_replicaset_spec_replicas", G, "Number of desired pods for a ReplicaSet.",
	    spec_replicas, NULL },
	INT("kube_replicaset_status_replicas", "The number of replicas per ReplicaSet.",
	    "status.replicas"),
	INT("kube_replicaset_status_ready_replicas",
	    "The number of ready replicas per ReplicaSet.", "status.readyReplicas"),
	INT("kube_replicaset_status_fully_labeled_replicas",
	    "The number of fully labeled replicas per ReplicaSet.",
	    "status.fullyLabeledReplicas"),
	INT("kube_replicaset_status_observed_generation",
	    "The generation observed by the ReplicaSet controller.",
	    "status.observedGeneration"),
	INT("kube_replicaset_metadata_generation",
	    "Sequence number representing a specific generation of the desired state.",
	    "metadata.generation"),
	{ "kube_replicaset_owner", G, "Information about the ReplicaSet's owner.", owner,
	    NULL },
};

static const struct ksm_family sts_fam[] = {
	{ "kube_statefulset_created", G, "Unix creation timestamp", created, NULL },
	{ "kube_statefulset_replicas", G, "Number of desired pods for a StatefulSet.",
	    spec_replicas, NULL },
	INT("kube_statefulset_status_replicas",
	    "The number of replicas per StatefulSet.", "status.replicas"),
	INT("kube_statefulset_status_replicas_available",
	    "The number of available replicas per StatefulSet.", "status.availableReplicas"),
	INT("kube_statefulset_status_replicas_current",
	    "The number of current replicas per StatefulSet.", "status.currentReplicas"),
	INT("kube_statefulset_status_replicas_ready",
	    "The number of ready replicas per StatefulSet.", "status.readyReplicas"),
	INT("kube_statefulset_status_replicas_updated",
	    "The number of updated replicas per StatefulSet.", "status.updatedReplicas"),
	INT("kube_statefulset_status_observed_generation",
	    "The generation observed by the StatefulSet controller.",
	    "status.observedGeneration"),
	INT("kube_statefulset_metadata_generation",
	    "Sequence number representing a specific generation of the desired state for "
	    "the StatefulSet.", "metadata.generation"),
};

static const struct ksm_family ds_fam[] = {
	{ "kube_daemonset_created", G, "Unix creation timestamp", created, NULL },
	INT("kube_daemonset_status_current_number_scheduled",
	    "The number of nodes running at least one daemon pod and are supposed to.",
	    "status.currentNumberScheduled"),
	INT("kube_daemonset_status_desired_number_scheduled",
	    "The number of nodes that should be running the daemon pod.",
	    "status.desiredNumberScheduled"),
	INT("kube_daemonset_status_number_available",
	    "The number of nodes that should be running the daemon pod and have one or more "
	    "of the daemon pod running and available",
	    "status.numberAvailable"),
	INT("kube_daemonset_status_number_misscheduled",
	    "The number of nodes running a daemon pod but are not supposed to.",
	    "status.numberMisscheduled"),
	INT("kube_daemonset_status_number_ready",
	    "The number of nodes that should be running the daemon pod and have one or more "
	    "of the daemon pod running and ready.", "status.numberReady"),
	INT("kube_daemonset_status_number_unavailable",
	    "The number of nodes that should be running the daemon pod and have none of the "
	    "daemon pod running and available", "status.numberUnavailable"),
	INT("kube_daemonset_status_updated_number_scheduled",
	    "The total number of nodes that are running updated daemon pod",
	    "status.updatedNumberScheduled"),
	INT("kube_daemonset_status_observed_generation",
	    "The most recent generation observed by the daemon set controller.",
	    "status.observedGeneration"),
	INT("kube_daemonset_metadata_generation",
	    "Sequence number representing a specific generation of the desired state.",
	    "metadata.generation"),
};

static const struct ksm_family pod_fam[] = {
	{ "kube_pod_info", G, "Information about pod.", pod_info, NULL },
	{ "kube_pod_created", G, "Unix creation timestamp", created, NULL },
	{ "kube_pod_owner", G, "Information about the Pod's owner.", owner, NULL },
	{ "kube_pod_status_phase", G, "The pods current phase.", pod_phase, NULL },
	{ "kube_pod_status_ready", G, "Describes whether the pod is ready to serve requests.",
	    pod_ready, NULL },
	{ "kube_pod_container_info", G,
	    "Information about a container in a pod.", c_info_all, NULL },
	{ "kube_pod_container_status_restarts_total", OM_COUNTER,
	    "The number of container restarts per container.", c_restarts_all, NULL },
	{ "kube_pod_container_status_ready", G,
	    "Describes whether the containers readiness check succeeded.", c_ready_all, NULL },
	{ "kube_pod_container_status_running", G,
	    "Describes whether the container is currently in running state.", c_state_all,
	    "state.running" },
	{ "kube_pod_container_status_waiting", G,
	    "Describes whether the container is currently in waiting state.", c_state_all,
	    "state.waiting" },
	{ "kube_pod_container_status_terminated", G,
	    "Describes whether the container is currently in terminated state.", c_state_all,
	    "state.terminated" },
	{ "kube_pod_container_status_waiting_reason", G,
	    "Describes the reason the container is currently in waiting state.",
	    c_reason_all, "state.waiting" },
	{ "kube_pod_container_status_terminated_reason", G,
	    "Describes the reason the container is currently in terminated state.",
	    c_reason_all, "state.terminated" },
	{ "kube_pod_container_status_last_terminated_reason", G,
	    "Describes the last reason the container was in terminated state.",
	    c_reason_all, "lastState.terminated" },
	{ "kube_pod_container_resource_requests", G,
	    "The number of requested request resource by a container.", c_resources_all,
	    "resources.requests" },
	{ "kube_pod_container_resource_limits", G,
	    "The number of requested limit resource by a container.", c_resources_all,
	    "resources.limits" },
};

static const struct ksm_family svc_fam[] = {
	{ "kube_service_info", G, "Information about service.", svc_info, NULL },
	{ "kube_service_created", G, "Unix creation timestamp", created, NULL },
	{ "kube_service_spec_type", G, "Type about service.", svc_type, NULL },
};

static const struct ksm_family pvc_fam[] = {
	{ "kube_persistentvolumeclaim_info", G,
	    "Information about persistent volume claim.", pvc_info, NULL },
	{ "kube_persistentvolumeclaim_status_phase", G,
	    "The phase the persistent volume claim is currently in.", pvc_phase, NULL },
};

static const struct ksm_family ns_fam[] = {
	{ "kube_namespace_status_phase", G, "kubernetes namespace status phase.", ns_phase,
	    NULL },
};

static const struct ksm_family ro_fam[] = {
	{ "rollout_info", G, "Information about rollout.", ro_info, NULL },
	INT("rollout_info_replicas_available",
	    "The number of available replicas per rollout.", "status.availableReplicas"),
	{ "rollout_info_replicas_unavailable", G,
	    "The number of unavailable replicas per rollout.", ro_unavailable, NULL },
	{ "rollout_info_replicas_desired", G, "The number of desired replicas per rollout.",
	    spec_replicas, NULL },
	INT("rollout_info_replicas_updated", "The number of updated replicas per rollout.",
	    "status.updatedReplicas"),
	INT("v6_rollout_canary_weight",
	    "Percent of traffic the proxy sends to the canary (status.canary.weights).",
	    "status.canary.weights.canary.weight"),
	{ "rollout_phase", G,
	    "Information on the state of the rollout (DEPRECATED - use rollout_info)",
	    ro_phase, NULL },
};

static const struct ksm_family ar_fam[] = {
	{ "analysis_run_info", G, "Information about analysis run.", ar_info, NULL },
	{ "analysis_run_phase", G,
	    "Information on the state of the Analysis Run (DEPRECATED - use analysis_run_info)",
	    ar_phase, NULL },
	{ "analysis_run_metric_type", G,
	    "Information on the type of a specific metric in the Analysis Runs",
	    ar_metric_type, NULL },
	{ "analysis_run_metric_phase", G,
	    "Information on the duration of a specific metric in the Analysis Run",
	    ar_metric_phase, NULL },
};

#define KIND(k, r, l, f) { k, r, l, f, ARRAY_SIZE(f) }
static const struct ksm_kind kinds[] = {
	KIND("Namespace", "namespaces", "namespace", ns_fam),
	KIND("Deployment", "apps/deployments", "deployment", deploy_fam),
	KIND("ReplicaSet", "apps/replicasets", "replicaset", rs_fam),
	KIND("StatefulSet", "apps/statefulsets", "statefulset", sts_fam),
	KIND("DaemonSet", "apps/daemonsets", "daemonset", ds_fam),
	KIND("Pod", "pods", "pod", pod_fam),
	KIND("Service", "services", "service", svc_fam),
	KIND("PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim",
	    pvc_fam),
	KIND("Rollout", "argoproj.io/rollouts", "name", ro_fam),
	KIND("AnalysisRun", "argoproj.io/analysisruns", "name", ar_fam),
};

static const struct ksm_kind *const kind_list[] = { &kinds[0], &kinds[1], &kinds[2],
	&kinds[3], &kinds[4], &kinds[5], &kinds[6], &kinds[7], &kinds[8], &kinds[9], NULL };

const struct ksm_kind *const *
ksm_kinds(void)
{
	_Static_assert(ARRAY_SIZE(kind_list) == ARRAY_SIZE(kinds) + 1, "kind_list");
	return kind_list;
}

const struct ksm_kind *
ksm_kind_find(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return &kinds[i];
	return NULL;
}

const char *
ksm_kind_resource(const struct ksm_kind *k)
{
	return k->res;
}

size_t
ksm_kind_nfamilies(const struct ksm_kind *k)
{
	return k->nfam;
}

void
ksm_write_family(struct om_writer *w, const struct ksm_kind *k, size_t f, const json_t *items)
{
	const json_t *o;
	size_t i;

	BUG_ON(f >= k->nfam);
	om_family(w, k->fam[f].name, k->fam[f].type, k->fam[f].help);
	json_array_foreach(items, i, o)
		k->fam[f].fn(w, &k->fam[f], o, k->label);
}

void
ksm_write(struct om_writer *w, const struct ksm_kind *k, const json_t *items)
{
	for (size_t f = 0; f < k->nfam; f++)
		ksm_write_family(w, k, f, items);
}
