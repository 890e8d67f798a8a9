/* alert_cause.c — the probable cause of an alert: the changes V6 made to
 * the workloads its labels point at, read from V6's Events (rollout
 * started / step / paused / promoted / aborted, scaling, pod back-off and
 * kills, node events) and revision history (ReplicaSets: image or config
 * changed), ranked by scope and time. Pure over a loaded "world"; called by
 * alert_api.c (describe) and alert_notify.c (the webhook). */
#include "alert.h"
#include "obj.h"
#include "store.h"
#include "util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AFTER_MS	(2 * 60 * 1000)	/* changes just after the start count too */
#define MAX_CHANGES	12
#define REV_ANN_ARGO	"rollout.argoproj.io/revision"
#define REV_ANN_DEPLOY	"deployment.kubernetes.io/revision"

enum scope { SCOPE_NAMED, SCOPE_RELATED, SCOPE_NODE };

/* The proxy's service label is "NAMESPACE/NAME". */
static const char *
service_name(const char *v)
{
	const char *slash = v ? strchr(v, '/') : NULL;
	return slash ? slash + 1 : v;
}

const char *
alert_namespace(const json_t *labels)
{
	static _Thread_local char from_service[256];
	const char *ns = json_string_value(json_object_get(labels, "namespace"));
	const char *svc = json_string_value(json_object_get(labels, "service"));
	if (ns && *ns)
		return ns;
	if (svc && strchr(svc, '/') && strchr(svc, '/') - svc < (ptrdiff_t)sizeof from_service) {
		snprintf(from_service, sizeof from_service, "%.*s", (int)(strchr(svc, '/') - svc),
		    svc);
		return from_service;
	}
	static const char *const named[] = { "rollout", "deployment", "statefulset",
		"job_name", "pod", "service" };
	for (size_t i = 0; i < ARRAY_SIZE(named); i++)
		if (json_is_string(json_object_get(labels, named[i])))
			return "default";
	return NULL;
}

/* The kinds a world holds: where they are stored, where they go. */
static const struct {
	const char *kind, *res;
	size_t off;
} world_kinds[] = {
	{ "Event", "events", offsetof(struct alert_world, events) },
	{ "ReplicaSet", "apps/replicasets", offsetof(struct alert_world, rsets) },
	{ "Pod", "pods", offsetof(struct alert_world, pods) },
	{ "Rollout", "argoproj.io/rollouts", offsetof(struct alert_world, rollouts) },
	{ "Deployment", "apps/deployments", offsetof(struct alert_world, deployments) },
	{ "StatefulSet", "apps/statefulsets", offsetof(struct alert_world, statefulsets) },
	{ "Service", "services", offsetof(struct alert_world, services) },
	{ "Job", "batch/jobs", offsetof(struct alert_world, jobs) },
	{ "AnalysisRun", "argoproj.io/analysisruns", offsetof(struct alert_world, analysisruns) },
};

/* The workload kinds an alert can be about, the first three with pod
 * templates a Service selects. */
static const char *const workload_kinds[] = { "Rollout", "Deployment", "StatefulSet", "Job" };

static json_t **
world_slot(const struct alert_world *w, size_t i)
{
	return (json_t **)((char *)w + world_kinds[i].off);
}

/* The objects of kind in w (NULL when none were loaded). */
static const json_t *
world_of(const struct alert_world *w, const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(world_kinds); i++)
		if (!strcmp(world_kinds[i].kind, kind))
			return *world_slot(w, i);
	return NULL;
}

void
alert_world_load(struct store *st, const char *ns, struct alert_world *w)
{
	memset(w, 0, sizeof *w);
	for (size_t i = 0; ns && *ns && i < ARRAY_SIZE(world_kinds); i++)
		if (store_list(st, world_kinds[i].res, ns, world_slot(w, i), NULL) < 0)
			*world_slot(w, i) = NULL;
	/* Node events are recorded in the default namespace, as the kubelet's. */
	json_t *all = NULL, *e;
	size_t i;
	w->node_events = json_array();
	if (store_list(st, "events", "default", &all, NULL) == 0)
		json_array_foreach(all, i, e)
			if (!strcmp(obj_str_at(e, "involvedObject.kind"), "Node"))
				json_array_append(w->node_events, e);
	json_decref(all);
}

void
alert_world_free(struct alert_world *w)
{
	for (size_t i = 0; i < ARRAY_SIZE(world_kinds); i++) {
		json_decref(*world_slot(w, i));
		*world_slot(w, i) = NULL;
	}
	json_decref(w->node_events);
	w->node_events = NULL;
}

/* ---- targets: the workloads the labels point at ------------------------ */

struct target {
	const char *kind;	/* Rollout, Deployment, StatefulSet, Job */
	const json_t *obj;
	enum scope scope;
};

struct targets {
	struct target t[16];
	size_t n;
};

/* The object of arr whose field (metadata.name, uid, ...) is key; NULL
 * for "". */
static const json_t *
by_meta(const json_t *arr, const char *(*field)(const json_t *), const char *key)
{
	size_t i;
	const json_t *o;
	json_array_foreach(arr, i, o)
		if (*key && !strcmp(field(o), key))
			return o;
	return NULL;
}

static const char *
name_field(const json_t *o)
{
	return obj_str(o, "name");
}

/* The entry of arr (containers) whose "name" member is name. */
static const json_t *
by_name_field(const json_t *arr, const char *name)
{
	return by_meta(arr, name_field, name);
}

static const json_t *
by_name(const json_t *arr, const char *name)
{
	return by_meta(arr, obj_name, name);
}

static const json_t *
by_uid(const json_t *arr, const char *uid)
{
	return by_meta(arr, obj_uid, uid);
}

static void
target_add(struct targets *ts, const char *kind, const json_t *obj, enum scope sc)
{
	if (!obj)
		return;
	for (size_t i = 0; i < ts->n; i++)
		if (ts->t[i].obj == obj) {
			if (sc < ts->t[i].scope)
				ts->t[i].scope = sc;
			return;
		}
	if (ts->n < ARRAY_SIZE(ts->t))
		ts->t[ts->n++] = (struct target){ kind, obj, sc };
}

/* The workload that controls obj (through a ReplicaSet for pods of a
 * Deployment or Rollout). */
static void
add_controller(struct targets *ts, const struct alert_world *w, const json_t *obj,
    enum scope sc)
{
	const json_t *ref = obj_controller_ref(obj);
	if (!ref)
		return;
	const char *kind = obj_str(ref, "kind"), *uid = obj_str(ref, "uid");
	if (!strcmp(kind, "ReplicaSet")) {
		add_controller(ts, w, by_uid(w->rsets, uid), sc);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(workload_kinds); i++)
		if (!strcmp(workload_kinds[i], kind))
			target_add(ts, workload_kinds[i], by_uid(world_of(w, kind), uid), sc);
}

/* Workloads whose pod template a Service selects, and Rollouts naming it
 * as their stable or canary Service. */
static void
add_service_workloads(struct targets *ts, const struct alert_world *w, const json_t *svc)
{
	json_t *sel = obj_get_path(svc, "spec.selector");
	for (size_t k = 0; k < 3; k++) {	/* the kinds with pod templates */
		const json_t *arr = world_of(w, workload_kinds[k]), *o;
		size_t i;
		json_array_foreach(arr, i, o) {
			json_t *tl = obj_get_path(o, "spec.template.metadata.labels");
			bool match = json_object_size(sel) > 0 && json_is_object(tl);
			const char *key;
			json_t *v;
			json_object_foreach(sel, key, v)
				if (!json_equal(json_object_get(tl, key), v))
					match = false;
			const char *name = obj_name(svc);
			if (!strcmp(obj_str_at(o, "spec.strategy.canary.stableService"), name) ||
			    !strcmp(obj_str_at(o, "spec.strategy.canary.canaryService"), name) ||
			    !strcmp(obj_str_at(o, "spec.strategy.blueGreen.activeService"), name))
				match = true;
			if (match)
				target_add(ts, workload_kinds[k], o, SCOPE_RELATED);
		}
	}
}

static const char *
label(const json_t *labels, const char *name)
{
	const char *v = json_string_value(json_object_get(labels, name));
	return v && *v ? v : NULL;
}

static void
find_targets(const json_t *labels, const struct alert_world *w, struct targets *ts,
    const json_t **pod)
{
	const char *v;
	*pod = NULL;
	if ((v = label(labels, "rollout")))
		target_add(ts, "Rollout", by_name(w->rollouts, v), SCOPE_NAMED);
	if ((v = label(labels, "deployment")))
		target_add(ts, "Deployment", by_name(w->deployments, v), SCOPE_NAMED);
	if ((v = label(labels, "statefulset")))
		target_add(ts, "StatefulSet", by_name(w->statefulsets, v), SCOPE_NAMED);
	if ((v = label(labels, "job_name")))
		target_add(ts, "Job", by_name(w->jobs, v), SCOPE_NAMED);
	if ((v = label(labels, "pod")) && (*pod = by_name(w->pods, v)) != NULL)
		add_controller(ts, w, *pod, SCOPE_RELATED);
	const json_t *svc;
	if ((v = label(labels, "service")) && (svc = by_name(w->services, service_name(v))))
		add_service_workloads(ts, w, svc);
}

/* ---- changes ------------------------------------------------------------ */

/* Event reasons that are changes V6 made, and what to call them, in three
 * classes that rank in this order: ORIGIN starts a change (a new revision,
 * a rollout started), PROGRESS carries it on (steps, scaling, promotion,
 * abort), SYMPTOM is what followed (probe failures, kills, restarts). The
 * new revision that started the trouble, not the scale-down that finished
 * it or the probe that saw it. */
enum cls { ORIGIN, PROGRESS, SYMPTOM };

static const struct {
	const char *reason, *change;
	enum cls cls;
} reasons[] = {
	{ "RolloutUpdated", "rollout started", ORIGIN },
	{ "RolloutStepCompleted", "rollout step", PROGRESS },
	{ "RolloutPaused", "rollout paused", PROGRESS },
	{ "RolloutCompleted", "rollout promoted", PROGRESS },
	{ "RolloutAborted", "rollout aborted", PROGRESS },
	{ "RolloutRetried", "rollout retried", PROGRESS },
	{ "SwitchService", "traffic switched", PROGRESS },
	{ "ScalingReplicaSet", "scaled", PROGRESS },
	{ "AnalysisRunFailed", "analysis failed", SYMPTOM },
	{ "AnalysisRunError", "analysis error", SYMPTOM },
	{ "BackOff", "pod restarts", SYMPTOM },
	{ "Killing", "container killed", SYMPTOM },
	{ "Unhealthy", "probe failed", SYMPTOM },
	{ "OOMKilled", "container OOM-killed", SYMPTOM },
	{ "Evicted", "pod evicted", SYMPTOM },
	{ "NodeNotReady", "node not ready", SYMPTOM },
	{ "NodeReady", "node ready", SYMPTOM },
	{ "NodeHasDiskPressure", "node disk pressure", SYMPTOM },
	{ "NodeHasInsufficientMemory", "node memory pressure", SYMPTOM },
	{ "EvictionThresholdMet", "node eviction threshold", SYMPTOM },
	{ "Rebooted", "node rebooted", SYMPTOM },
};

static const char *
change_of(const char *reason, enum cls *cls)
{
	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
		if (!strcmp(reasons[i].reason, reason)) {
			*cls = reasons[i].cls;
			return reasons[i].change;
		}
	return NULL;
}

/* "Rollout" -> "rollout", as the CLI names kinds (static buffer). */
static const char *
kind_lower(const char *kind)
{
	static char out[64];
	size_t i;
	for (i = 0; kind[i] && i + 1 < sizeof out; i++)
		out[i] = (char)(kind[i] >= 'A' && kind[i] <= 'Z' ? kind[i] - 'A' + 'a' : kind[i]);
	out[i] = '\0';
	return out;
}

static char *
ref_for(const char *kind, const char *name, const char *ns)
{
	if (!strcmp(kind, "Rollout") || !strcmp(kind, "Deployment") ||
	    !strcmp(kind, "StatefulSet"))
		return xasprintf("v6 rollout history %s/%s -n %s", kind_lower(kind), name, ns);
	if (!strcmp(kind, "Node"))
		return xasprintf("v6 describe node %s", name);
	return xasprintf("v6 describe %s %s -n %s", kind_lower(kind), name, ns);
}

static void
push(json_t *out, int64_t t_ms, enum scope sc, enum cls cls, const char *change,
    const char *kind, const char *name, const char *ns, const char *detail,
    const char *ref_kind, const char *ref_name)
{
	char *obj = xasprintf("%s/%s", kind_lower(kind), name);
	char *ref = ref_for(ref_kind, ref_name, ns);
	json_array_append_new(out, json_pack("{s:o, s:I, s:i, s:i, s:s, s:s, s:s, s:s}",
	    "time", obj_time_json(t_ms), "timeMs", (json_int_t)t_ms, "class", (int)cls,
	    "scope", (int)sc, "change", change, "object", obj, "detail", detail, "ref", ref));
	free(obj);
	free(ref);
}

static bool
in_window(int64_t t, int64_t at, int64_t window)
{
	return t > 0 && t >= at - window && t <= at + AFTER_MS;
}

/* Is ev about obj, or about a pod / ReplicaSet / AnalysisRun obj owns? */
static bool
event_about(const json_t *ev, const json_t *obj, const struct alert_world *w)
{
	const char *kind = obj_str_at(ev, "involvedObject.kind");
	const char *name = obj_str_at(ev, "involvedObject.name");
	if (!strcmp(kind, obj_kind(obj)) && !strcmp(name, obj_name(obj)))
		return true;
	static const char *const owned[] = { "Pod", "ReplicaSet", "AnalysisRun" };
	for (size_t i = 0; i < ARRAY_SIZE(owned); i++) {
		if (strcmp(kind, owned[i]) != 0)
			continue;
		const json_t *o = by_name(world_of(w, kind), name);
		for (int depth = 0; o && depth < 3; depth++) {
			const json_t *ref = obj_controller_ref(o);
			if (!ref)
				break;
			if (!strcmp(obj_str(ref, "uid"), obj_uid(obj)))
				return true;
			o = by_uid(w->rsets, obj_str(ref, "uid"));
		}
	}
	return false;
}

static int64_t
event_time(const json_t *ev)
{
	int64_t t = obj_time_ms(json_object_get(ev, "lastTimestamp"));
	return t ? t : obj_time_ms(json_object_get(ev, "eventTime"));
}

static void
events_of(json_t *out, const struct target *t, const struct alert_world *w, int64_t at,
    int64_t window)
{
	size_t i;
	const json_t *ev;
	json_array_foreach(w->events, i, ev) {
		enum cls cls = SYMPTOM;
		const char *change = change_of(obj_str(ev, "reason"), &cls);
		int64_t ts = event_time(ev);
		if (!change || !in_window(ts, at, window) || !event_about(ev, t->obj, w))
			continue;
		int64_t count = obj_int_at(ev, "count", 1);
		char *detail = count > 1 ? xasprintf("%s (x%lld)", obj_str(ev, "message"),
		    (long long)count) : xstrdup(obj_str(ev, "message"));
		push(out, ts, t->scope, cls, change, obj_str_at(ev, "involvedObject.kind"),
		    obj_str_at(ev, "involvedObject.name"), obj_namespace(t->obj), detail,
		    t->kind, obj_name(t->obj));
		free(detail);
	}
}

/* "app=img:1, side=img:2" for the containers of a pod template. */
static char *
images_of(const json_t *rs)
{
	struct buf b = BUF_INIT;
	size_t i;
	const json_t *c;
	json_array_foreach(obj_get_path(rs, "spec.template.spec.containers"), i, c)
		buf_printf(&b, "%s%s=%s", i ? ", " : "", obj_str(c, "name"), obj_str(c, "image"));
	return b.data ? buf_steal(&b) : xstrdup("");
}

/* The template without images: what "config changed" compares (env,
 * envFrom, args, volumes, resources, ...). */
static json_t *
config_of(const json_t *rs)
{
	json_t *spec = json_deep_copy(obj_get_path(rs, "spec.template.spec")), *c;
	size_t i;
	json_array_foreach(json_object_get(spec, "containers"), i, c)
		json_object_del(c, "image");
	return spec ? spec : json_object();
}

/* "containers[web].command, volumes": the fields of two pod specs
 * (config_of) that differ, one level into each container by name. */
static char *
config_diff(const json_t *c0, const json_t *c1)
{
	struct buf b = BUF_INIT;
	json_t *keys = json_object();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)c0, k, v)
		json_object_set(keys, k, json_true());
	json_object_foreach((json_t *)c1, k, v)
		json_object_set(keys, k, json_true());
	json_object_foreach(keys, k, v) {
		const json_t *a = json_object_get(c0, k), *z = json_object_get(c1, k), *ca;
		size_t i;
		if (json_equal(a, z))
			continue;
		if (strcmp(k, "containers") != 0) {
			buf_printf(&b, "%s%s", b.len ? ", " : "", k);
			continue;
		}
		json_array_foreach(z, i, ca) {
			const json_t *cz = by_name_field(a, obj_str(ca, "name")), *f;
			const char *fk;
			json_object_foreach((json_t *)ca, fk, f)
				if (!cz || !json_equal(f, json_object_get(cz, fk)))
					buf_printf(&b, "%scontainers[%s].%s", b.len ? ", " : "",
					    obj_str(ca, "name"), fk);
		}
	}
	json_decref(keys);
	return b.len ? buf_steal(&b) : xstrdup("the pod template");
}

static int64_t
revision(const json_t *rs)
{
	const char *r = obj_annotation(rs, REV_ANN_ARGO);
	if (!r)
		r = obj_annotation(rs, REV_ANN_DEPLOY);
	return r ? strtoll(r, NULL, 10) : 0;
}

/* The ReplicaSets of t made in the window: each a revision, with what
 * changed against the revision before it. */
static void
revisions_of(json_t *out, const struct target *t, const struct alert_world *w, int64_t at,
    int64_t window)
{
	const json_t *rs, *prev = NULL, *cur;
	size_t i;
	json_array_foreach(w->rsets, i, rs) {
		const json_t *ref = obj_controller_ref(rs);
		int64_t ts = obj_time_ms(obj_get_path(rs, "metadata.creationTimestamp"));
		if (!ref || strcmp(obj_str(ref, "uid"), obj_uid(t->obj)) != 0 ||
		    !in_window(ts, at, window))
			continue;
		/* the revision just below this one */
		int64_t rev = revision(rs), best = 0;
		prev = NULL;
		size_t j;
		json_array_foreach(w->rsets, j, cur) {
			const json_t *r2 = obj_controller_ref(cur);
			int64_t rv = revision(cur);
			if (r2 && !strcmp(obj_str(r2, "uid"), obj_uid(t->obj)) && rv < rev &&
			    rv > best)
				best = rv, prev = cur;
		}
		char *img = images_of(rs), *old = prev ? images_of(prev) : NULL, *detail;
		json_t *c1 = config_of(rs), *c0 = prev ? config_of(prev) : NULL;
		bool img_changed = old && strcmp(img, old) != 0;
		bool cfg_changed = c0 && !json_equal(c0, c1);
		const char *change = img_changed ? "image changed" : cfg_changed ?
		    "config changed" : "revision created";
		char *diff = cfg_changed ? config_diff(c0, c1) : xstrdup("");
		detail = xasprintf("revision %lld%s%s%s%s%s%s", (long long)rev,
		    img_changed ? ": " : "", img_changed ? old : "", img_changed ? " -> " : "",
		    img_changed ? img : "", !cfg_changed ? "" : img_changed ? "; changed: " :
		    ": changed: ", diff);
		free(diff);
		push(out, ts, t->scope, ORIGIN, change, t->kind, obj_name(t->obj),
		    obj_namespace(t->obj), detail, t->kind, obj_name(t->obj));
		free(detail);
		free(img);
		free(old);
		json_decref(c0);
		json_decref(c1);
	}
}

/* Restarts of the pods t owns whose last termination is in the window. */
static void
restarts_of(json_t *out, const struct target *t, const struct alert_world *w,
    const json_t *pod, int64_t at, int64_t window)
{
	size_t i, j;
	const json_t *p, *cs;
	json_array_foreach(w->pods, i, p) {
		struct targets owner = { .n = 0 };
		if (p != pod) {
			add_controller(&owner, w, p, SCOPE_RELATED);
			if (owner.n == 0 || owner.t[0].obj != t->obj)
				continue;
		}
		json_array_foreach(obj_get_path(p, "status.containerStatuses"), j, cs) {
			int64_t n = obj_int_at(cs, "restartCount", 0);
			const json_t *term = obj_get_path(cs, "lastState.terminated");
			int64_t ts = obj_time_ms(json_object_get(term, "finishedAt"));
			if (n <= 0 || !in_window(ts, at, window))
				continue;
			char *detail = xasprintf("container %s restarted %lld times, last %s "
			    "(exit code %lld)", obj_str(cs, "name"), (long long)n,
			    *obj_str(term, "reason") ? obj_str(term, "reason") : "terminated",
			    (long long)obj_int_at(term, "exitCode", 0));
			push(out, ts, p == pod ? SCOPE_NAMED : t->scope, SYMPTOM, "pod restarts", "Pod",
			    obj_name(p), obj_namespace(p), detail, "Pod", obj_name(p));
			free(detail);
		}
	}
}

static void
node_changes(json_t *out, const struct alert_world *w, int64_t at, int64_t window)
{
	size_t i;
	const json_t *ev;
	json_array_foreach(w->node_events, i, ev) {
		enum cls cls = SYMPTOM;
		const char *change = change_of(obj_str(ev, "reason"), &cls);
		int64_t ts = event_time(ev);
		if (!change || !in_window(ts, at, window))
			continue;
		const char *node = obj_str_at(ev, "involvedObject.name");
		push(out, ts, SCOPE_NODE, cls, change, "Node", node, "", obj_str(ev, "message"),
		    "Node", node);
	}
}

static int64_t at_for_sort;

/* By class (origin, progress, symptom), then the named workload before
 * related ones before the node, then nearest to the alert's start. */
static int
rank(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int64_t cx = obj_int_at(x, "class", 0), cy = obj_int_at(y, "class", 0);
	if (cx != cy)
		return cx < cy ? -1 : 1;
	int64_t sx = obj_int_at(x, "scope", 0), sy = obj_int_at(y, "scope", 0);
	if (sx != sy)
		return sx < sy ? -1 : 1;
	int64_t dx = llabs(at_for_sort - obj_int_at(x, "timeMs", 0));
	int64_t dy = llabs(at_for_sort - obj_int_at(y, "timeMs", 0));
	return dx < dy ? -1 : dx > dy;
}

json_t *
alert_cause(const json_t *labels, int64_t at_ms, int64_t window_ms, const struct alert_world *w)
{
	struct targets ts = { .n = 0 };
	const json_t *pod = NULL;
	json_t *all = json_array();
	find_targets(labels, w, &ts, &pod);
	for (size_t i = 0; i < ts.n; i++) {
		events_of(all, &ts.t[i], w, at_ms, window_ms);
		revisions_of(all, &ts.t[i], w, at_ms, window_ms);
		restarts_of(all, &ts.t[i], w, pod, at_ms, window_ms);
	}
	if (pod && ts.n == 0) {	/* a bare pod */
		struct target t = { "Pod", pod, SCOPE_NAMED };
		events_of(all, &t, w, at_ms, window_ms);
		restarts_of(all, &t, w, pod, at_ms, window_ms);
	}
	node_changes(all, w, at_ms, window_ms);

	size_t n = json_array_size(all);
	json_t **v = xcalloc(n + 1, sizeof *v), *out = json_array();
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(all, i);
	at_for_sort = at_ms;
	qsort(v, n, sizeof *v, rank);
	for (size_t i = 0; i < n && i < MAX_CHANGES; i++) {
		json_object_del(v[i], "timeMs");
		json_object_del(v[i], "class");
		json_array_append(out, v[i]);
	}
	free(v);
	json_decref(all);
	return out;
}

char *
alert_cause_line(const json_t *changes, int64_t at_ms)
{
	const json_t *c = json_array_get(changes, 0);
	if (!c)
		return NULL;
	int64_t t = obj_time_ms(json_object_get(c, "time")), d = (at_ms - t) / 1000;
	char when[64];
	if (d >= 0)
		snprintf(when, sizeof when, "%llds before the alert", (long long)d);
	else
		snprintf(when, sizeof when, "%llds after the alert started", (long long)-d);
	return xasprintf("%s %s at %s (%s): %s; see `%s`", obj_str(c, "object"),
	    obj_str(c, "change"), obj_str(c, "time"), when, obj_str(c, "detail"),
	    obj_str(c, "ref"));
}

/* ---- noise control: a rollout about to abort ------------------------------ */

static bool
analysis_failing(const json_t *run)
{
	const char *phase = obj_str_at(run, "status.phase");
	if (!strcmp(phase, "Failed") || !strcmp(phase, "Error"))
		return true;
	size_t i;
	const json_t *m;
	json_array_foreach(obj_get_path(run, "status.metricResults"), i, m)
		if (obj_int_at(m, "failed", 0) > 0 || obj_int_at(m, "error", 0) > 0)
			return true;
	return false;
}

const json_t *
alert_aborting_rollout(const json_t *labels, const struct alert_world *w)
{
	struct targets ts = { .n = 0 };
	const json_t *pod;
	find_targets(labels, w, &ts, &pod);
	for (size_t i = 0; i < ts.n; i++) {
		const json_t *ro = ts.t[i].obj, *run, *latest = NULL;
		size_t j;
		if (strcmp(ts.t[i].kind, "Rollout") != 0)
			continue;
		if (json_is_true(obj_get_path(ro, "status.abort")))
			return ro;
		/* the newest AnalysisRun of the rollout is the current one */
		json_array_foreach(w->analysisruns, j, run) {
			const json_t *ref = obj_controller_ref(run);
			if (!ref || strcmp(obj_str(ref, "uid"), obj_uid(ro)) != 0)
				continue;
			if (!latest || strcmp(obj_str_at(run, "metadata.creationTimestamp"),
			    obj_str_at(latest, "metadata.creationTimestamp")) >= 0)
				latest = run;
		}
		if (latest && analysis_failing(latest))
			return ro;
	}
	return NULL;
}
