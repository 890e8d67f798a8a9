/* Unit tests of the Rollout controller's decision (rollout_decide): a small
 * simulated world applies its writes, plays the ReplicaSet controller and
 * the Endpoints controller (pods named ROLLOUT-HASH-NNNNN), and checks Argo
 * Rollouts' canary, blue-green, analysis and abort semantics step by step. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrl.h"

#define NOW_S		1800000000LL
#define HASH_LABEL	"rollouts-pod-template-hash"
#define REV_ANN		"rollout.argoproj.io/revision"
#define DEADLINE_ANN	"argo-rollouts.argoproj.io/scale-down-deadline"

static json_t *
J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (j == NULL)
		fail_msg("bad test JSON at %d: %s", e.position, e.text);
	return j;
}

/* A Rollout "web" of `replicas` pods with strategy (JSON text, e.g.
 * {"canary": {...}}). */
static json_t *
make_rollout(int replicas, const char *strategy)
{
	json_t *ro = J("{\"apiVersion\":\"argoproj.io/v1alpha1\",\"kind\":\"Rollout\","
	    "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"ro-uid\","
	    "\"generation\":1,\"labels\":{\"team\":\"shop\"}},"
	    "\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
	    "\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":"
	    "{\"containers\":[{\"name\":\"web\",\"image\":\"img:1\"}]}}}}");
	json_t *spec = json_object_get(ro, "spec");
	json_object_set_new(spec, "replicas", json_integer(replicas));
	json_object_set_new(spec, "strategy", J(strategy));
	return ro;
}

static json_t *
make_service(const char *name)
{
	char *t = xasprintf("{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":"
	    "\"%s\",\"namespace\":\"default\"},\"spec\":{\"selector\":{\"app\":\"web\"},"
	    "\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080}]}}", name);
	json_t *s = J(t);
	free(t);
	return s;
}

/* ---- the simulated world ------------------------------------------------ */

struct world {
	json_t *ro;
	json_t *rses;		/* ReplicaSets of the namespace */
	json_t *svcs;		/* name -> Service */
	json_t *eps;		/* name -> Endpoints (from the Services' selectors) */
	json_t *runs;		/* AnalysisRuns */
	json_t *templates;	/* name -> AnalysisTemplate */
	json_t *events;		/* "Reason: message" */
	json_t *unready;	/* hash -> true: those pods never get ready */
	json_t *trace;		/* "weight=N", "svc NAME=HASH", "stable=HASH" in order */
	bool freeze_endpoints;	/* the Endpoints controller lags behind */
	bool routes_pending;	/* the proxy has yet to apply the published routes */
	int64_t now_ms;
	int next_uid;
	struct rollout_actions last;
};

static void
world_init(struct world *w, json_t *ro, const char *const *services)
{
	memset(w, 0, sizeof *w);
	w->ro = ro;
	w->rses = json_array();
	w->svcs = json_object();
	w->eps = json_object();
	w->runs = json_array();
	w->templates = json_object();
	w->events = json_array();
	w->unready = json_object();
	w->trace = json_array();
	w->now_ms = NOW_S * 1000;
	for (size_t i = 0; services && services[i]; i++)
		json_object_set_new(w->svcs, services[i], make_service(services[i]));
}

static void
world_free(struct world *w)
{
	json_decref(w->ro);
	json_decref(w->rses);
	json_decref(w->svcs);
	json_decref(w->eps);
	json_decref(w->runs);
	json_decref(w->templates);
	json_decref(w->events);
	json_decref(w->unready);
	json_decref(w->trace);
	rollout_actions_free(&w->last);
}

static int
iat(const json_t *o, const char *path)
{
	return (int)json_integer_value(obj_get_path(o, path));
}

static const char *
sat(const json_t *o, const char *path)
{
	const char *s = json_string_value(obj_get_path(o, path));
	return s ? s : "";
}

static const char *
ann(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(obj_get_path(o, "metadata.annotations"), key));
}

static const char *
rs_hash(const json_t *rs)
{
	const char *h = json_string_value(json_object_get(obj_labels(rs), HASH_LABEL));
	return h ? h : "";
}

static json_t *
find_named(json_t *arr, const char *name, size_t *idx)
{
	size_t i;
	json_t *o;
	json_array_foreach(arr, i, o)
		if (strcmp(obj_name(o), name) == 0) {
			if (idx)
				*idx = i;
			return o;
		}
	return NULL;
}

static json_t *
rs_of(struct world *w, const char *hash)
{
	size_t i;
	json_t *rs;
	json_array_foreach(w->rses, i, rs)
		if (strcmp(rs_hash(rs), hash) == 0)
			return rs;
	return NULL;
}

/* spec.replicas of the RS of hash (-1: no such RS). */
static int
rs_replicas(struct world *w, const char *hash)
{
	json_t *rs = rs_of(w, hash);
	return rs ? iat(rs, "spec.replicas") : -1;
}

/* The pod-template-hash the controller computes for the current template. */
static void
template_hash(const struct world *w, char out[16])
{
	deploy_template_hash(obj_get_path(w->ro, "spec.template"),
	    json_is_integer(obj_get_path(w->ro, "status.collisionCount")) ?
	    iat(w->ro, "status.collisionCount") : -1, out);
}

static const char *
st(const struct world *w, const char *path)
{
	char *p = xasprintf("status.%s", path);
	const char *s = sat(w->ro, p);
	free(p);
	return s;
}

static int
weight(const struct world *w)
{
	return iat(w->ro, "status.canary.weights.canary.weight");
}

static const char *
svc_hash(const struct world *w, const char *svc)
{
	return sat(json_object_get(w->svcs, svc), "spec.selector." HASH_LABEL);
}

static void
trace(struct world *w, const char *fmt, ...) V6_PRINTF(2, 3);

static void
trace(struct world *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	json_array_append_new(w->trace, json_string(s));
	free(s);
}

/* Index of the first trace entry equal to s, -1 when none. */
static int
traced(const struct world *w, const char *s)
{
	size_t i;
	json_t *t;
	json_array_foreach(w->trace, i, t)
		if (strcmp(json_string_value(t), s) == 0)
			return (int)i;
	return -1;
}

static bool
has_event(const struct world *w, const char *prefix)
{
	size_t i;
	json_t *e;
	json_array_foreach(w->events, i, e)
		if (str_has_prefix(json_string_value(e), prefix))
			return true;
	return false;
}

/* The Service the Rollout sends its stable traffic to. */
static const char *
stable_service_name(const struct world *w)
{
	const char *s = sat(w->ro, "spec.strategy.canary.stableService");
	return *s ? s : sat(w->ro, "spec.strategy.blueGreen.activeService");
}

/* Invariant: the stable / active Service moves away from a hash that
 * serves only to an RS that is fully available. */
static void
check_service_switch(struct world *w, const json_t *svc)
{
	const char *name = obj_name(svc);
	const char *from = svc_hash(w, name);
	const char *to = sat(svc, "spec.selector." HASH_LABEL);
	if (strcmp(name, stable_service_name(w)) != 0 || !*from || !strcmp(from, to))
		return;
	json_t *old = rs_of(w, from), *new = rs_of(w, to);
	if (!old || iat(old, "status.availableReplicas") == 0)
		return;
	int want = iat(w->ro, "spec.replicas");
	if (!new || iat(new, "status.availableReplicas") < want)
		fail_msg("Service %s switched from %s to %s with %d of %d pods available", name,
		    from, to, new ? iat(new, "status.availableReplicas") : 0, want);
}

/* Invariant: a canary weight > 0 is published only when the canary
 * Service's Endpoints (as the decision saw them) hold only canary pods. */
static void
check_weight(struct world *w, const json_t *status)
{
	int nw = (int)json_integer_value(obj_get_path(status, "canary.weights.canary.weight"));
	const char *csvc = sat(w->ro, "spec.strategy.canary.canaryService");
	if (nw <= weight(w) || nw == 0 || !*csvc)
		return;
	const char *hash = sat(status, "canary.weights.canary.podTemplateHash");
	char *prefix = xasprintf("web-%s-", hash);
	const json_t *sub, *a;
	size_t i, j, n = 0;
	json_array_foreach(obj_get_path(json_object_get(w->eps, csvc), "subsets"), i, sub)
		json_array_foreach(json_object_get(sub, "addresses"), j, a) {
			n++;
			if (!str_has_prefix(sat(a, "targetRef.name"), prefix))
				fail_msg("weight %d set while %s lists %s", nw, csvc,
				    sat(a, "targetRef.name"));
		}
	free(prefix);
	if (n == 0)
		fail_msg("weight %d set while %s has no endpoints", nw, csvc);
}

static void
apply_create(struct world *w, const json_t *o)
{
	json_t *c = json_deep_copy(o);
	char uid[32];
	snprintf(uid, sizeof uid, "uid-%d", ++w->next_uid);
	json_object_set_new(obj_metadata(c), "uid", json_string(uid));
	json_object_set_new(obj_metadata(c), "generation", json_integer(1));
	json_t *list = strcmp(obj_kind(o), "ReplicaSet") == 0 ? w->rses : w->runs;
	if (find_named(list, obj_name(o), NULL))
		fail_msg("%s %s created twice", obj_kind(o), obj_name(o));
	json_array_append_new(list, c);
}

/* An update as the API does it: status and uid kept, generation + 1 when
 * the spec changes. */
static void
apply_update(struct world *w, const json_t *o)
{
	if (strcmp(obj_kind(o), "Service") == 0) {
		check_service_switch(w, o);
		const char *h = sat(o, "spec.selector." HASH_LABEL);
		if (strcmp(h, svc_hash(w, obj_name(o))) != 0)
			trace(w, "svc %s=%s", obj_name(o), h);
		json_object_set_new(w->svcs, obj_name(o), json_deep_copy(o));
		return;
	}
	json_t *list = strcmp(obj_kind(o), "ReplicaSet") == 0 ? w->rses : w->runs;
	json_t *cur = find_named(list, obj_name(o), NULL);
	if (!cur)
		fail_msg("update of missing %s %s", obj_kind(o), obj_name(o));
	json_t *c = json_deep_copy(o);
	json_object_set(c, "status", json_object_get(cur, "status"));
	json_object_set(obj_metadata(c), "uid", obj_get_path(cur, "metadata.uid"));
	int gen = iat(cur, "metadata.generation");
	if (!json_equal(json_object_get(cur, "spec"), json_object_get(o, "spec")))
		gen++;
	json_object_set_new(obj_metadata(c), "generation", json_integer(gen));
	json_object_clear(cur);
	json_object_update(cur, c);
	json_decref(c);
}

static void
apply_delete(struct world *w, const json_t *o)
{
	json_t *list = strcmp(obj_kind(o), "ReplicaSet") == 0 ? w->rses : w->runs;
	size_t idx;
	if (!find_named(list, obj_name(o), &idx))
		fail_msg("delete of missing %s %s", obj_kind(o), obj_name(o));
	json_array_remove(list, idx);
}

static void
apply_status(struct world *w, const json_t *o)
{
	const json_t *ns = json_object_get(o, "status");
	assert_true(json_equal(json_object_get(o, "spec"), json_object_get(w->ro, "spec")));
	check_weight(w, ns);
	int nw = (int)json_integer_value(obj_get_path(ns, "canary.weights.canary.weight"));
	if (nw != weight(w))
		trace(w, "weight=%d", nw);
	if (strcmp(sat(ns, "stableRS"), st(w, "stableRS")) != 0)
		trace(w, "stable=%s", sat(ns, "stableRS"));
	json_object_set_new(w->ro, "status", json_deep_copy(ns));
}

static void
apply(struct world *w)
{
	for (size_t i = 0; i < w->last.n; i++) {
		const struct rollout_action *a = &w->last.v[i];
		char *e;
		switch (a->op) {
		case RO_CREATE:
			apply_create(w, a->obj);
			break;
		case RO_UPDATE:
			apply_update(w, a->obj);
			break;
		case RO_DELETE:
			apply_delete(w, a->obj);
			break;
		case RO_STATUS:
			apply_status(w, a->obj);
			break;
		case RO_EVENT:
			e = xasprintf("%s: %s", a->reason, a->message ? a->message : "");
			json_array_append_new(w->events, json_string(e));
			free(e);
			break;
		}
	}
}

/* The ReplicaSet controller and the kubelet: every RS has its spec's pods
 * at once, available unless its hash is in w->unready. */
static void
rs_controller(struct world *w)
{
	size_t i;
	json_t *rs;
	json_array_foreach(w->rses, i, rs) {
		int n = iat(rs, "spec.replicas");
		int avail = json_object_get(w->unready, rs_hash(rs)) ? 0 : n;
		json_object_set_new(rs, "status", json_pack("{s:i, s:i, s:i, s:i}", "replicas", n,
		    "readyReplicas", avail, "availableReplicas", avail,
		    "observedGeneration", iat(rs, "metadata.generation")));
	}
}

static bool
sel_covers(const json_t *sel, const json_t *labels)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)sel, k, v)
		if (!json_equal(v, json_object_get(labels, k)))
			return false;
	return true;
}

/* The Endpoints controller: the ready pods of the RSes each Service's
 * selector matches, pods named RSNAME-NNNNN. */
static void
endpoints_controller(struct world *w)
{
	const char *name;
	json_t *svc;
	if (w->freeze_endpoints)
		return;
	json_object_foreach(w->svcs, name, svc) {
		json_t *addrs = json_array(), *rs;
		size_t i;
		json_array_foreach(w->rses, i, rs) {
			if (!sel_covers(obj_get_path(svc, "spec.selector"),
			    obj_get_path(rs, "spec.template.metadata.labels")))
				continue;
			for (int p = 0; p < iat(rs, "status.availableReplicas"); p++) {
				char pod[96], ip[48];
				snprintf(pod, sizeof pod, "%s-%05d", obj_name(rs), p);
				snprintf(ip, sizeof ip, "127.1.%zu.%d", i, p + 1);
				json_array_append_new(addrs, json_pack("{s:s, s:{s:s, s:s}}", "ip", ip,
				    "targetRef", "kind", "Pod", "name", pod));
			}
		}
		json_t *ep = json_pack("{s:s, s:s, s:{s:s, s:s}, s:[]}", "apiVersion", "v1",
		    "kind", "Endpoints", "metadata", "name", name, "namespace", "default",
		    "subsets");
		if (json_array_size(addrs))
			json_array_append_new(json_object_get(ep, "subsets"),
			    json_pack("{s:o}", "addresses", addrs));
		else
			json_decref(addrs);
		json_object_set_new(w->eps, name, ep);
	}
}

/* One sync: decide, apply, let the other controllers react. */
static void
step(struct world *w)
{
	rollout_actions_free(&w->last);
	json_t *in = json_pack("{s:O, s:O, s:O, s:O, s:O, s:{}, s:b}", "replicasets", w->rses,
	    "services", w->svcs, "endpoints", w->eps, "analysisruns", w->runs,
	    "templates", w->templates, "clustertemplates", "routesPending", w->routes_pending);
	assert_int_equal(rollout_decide(w->ro, in, w->now_ms, &w->last), 0);
	json_decref(in);
	apply(w);
	rs_controller(w);
	endpoints_controller(w);
}

/* Steps until two syncs in a row write nothing (the first may have seen
 * Endpoints that the step after it brought up to date); fails after max
 * steps. */
static int
settle(struct world *w, int max)
{
	int quiet = 0;
	for (int n = 1; n <= max; n++) {
		step(w);
		quiet = w->last.n == 0 ? quiet + 1 : 0;
		if (quiet == 2)
			return n;
	}
	fail_msg("no quiet sync in %d steps; status %s", max,
	    json_dumps(json_object_get(w->ro, "status"), JSON_COMPACT));
	return -1;
}

static int
count_ops(const struct world *w, enum rollout_op op, const char *kind)
{
	int n = 0;
	for (size_t i = 0; i < w->last.n; i++)
		if (w->last.v[i].op == op && (!kind || (w->last.v[i].obj &&
		    strcmp(obj_kind(w->last.v[i].obj), kind) == 0)))
			n++;
	return n;
}

static void
set_image(struct world *w, const char *image)
{
	json_t *c = json_array_get(obj_get_path(w->ro, "spec.template.spec.containers"), 0);
	json_object_set_new(c, "image", json_string(image));
	json_object_set_new(obj_metadata(w->ro), "generation",
	    json_integer(iat(w->ro, "metadata.generation") + 1));
}

/* What `kubectl argo rollouts promote` does: pauseConditions removed. */
static void
promote(struct world *w)
{
	json_object_del(json_object_get(w->ro, "status"), "pauseConditions");
}

static void
set_status(struct world *w, const char *key, json_t *v)
{
	json_object_set_new(json_object_get(w->ro, "status"), key, v);
}

static void
set_run_phase(struct world *w, const char *name, const char *phase, const char *msg)
{
	json_t *r = find_named(w->runs, name, NULL);
	if (!r)
		fail_msg("no AnalysisRun %s", name);
	json_object_set_new(r, "status", msg ? json_pack("{s:s, s:s}", "phase", phase,
	    "message", msg) : json_pack("{s:s}", "phase", phase));
}

static const char *
pause_reason(const struct world *w)
{
	return sat(json_array_get(obj_get_path(w->ro, "status.pauseConditions"), 0), "reason");
}

static const char *const canary_svcs[] = { "web", "web-canary", NULL };
static const char *const bg_svcs[] = { "web", "web-preview", NULL };

#define TRAFFIC_CANARY(steps, extra) \
	"{\"canary\":{\"canaryService\":\"web-canary\",\"stableService\":\"web\"," extra \
	"\"steps\":" steps "}}"

/* A world with the first version Healthy; h1 gets its hash. */
static void
world_healthy(struct world *w, json_t *ro, const char *const *svcs, char h1[16])
{
	world_init(w, ro, svcs);
	settle(w, 10);
	template_hash(w, h1);
	assert_string_equal(st(w, "phase"), "Healthy");
}

/* ---- first apply and idleness -------------------------------------------- */

static void
test_first_apply_is_stable_at_once(void **state)
{
	(void)state;
	struct world w;
	char h[16];
	world_init(&w, make_rollout(5, TRAFFIC_CANARY("[{\"setWeight\":20},{\"pause\":{}}]", "")),
	    canary_svcs);
	template_hash(&w, h);
	step(&w);
	assert_int_equal(count_ops(&w, RO_CREATE, "ReplicaSet"), 1);
	assert_int_equal(json_array_size(w.rses), 1);
	json_t *rs = json_array_get(w.rses, 0);
	char *name = xasprintf("web-%s", h);
	assert_string_equal(obj_name(rs), name);
	free(name);
	assert_int_equal(iat(rs, "spec.replicas"), 5);
	assert_string_equal(ann(rs, REV_ANN), "1");
	assert_string_equal(sat(rs, "spec.selector.matchLabels." HASH_LABEL), h);
	assert_string_equal(sat(rs, "spec.template.metadata.labels." HASH_LABEL), h);
	assert_string_equal(sat(obj_controller_ref(rs), "uid"), "ro-uid");
	assert_string_equal(st(&w, "stableRS"), h);
	assert_string_equal(st(&w, "currentPodHash"), h);
	assert_string_equal(svc_hash(&w, "web"), h);
	assert_string_equal(svc_hash(&w, "web-canary"), h);
	/* not Healthy before the pods are available */
	json_object_set_new(w.unready, h, json_true());
	rs_controller(&w);
	step(&w);
	assert_string_equal(st(&w, "phase"), "Progressing");
	json_object_clear(w.unready);
	rs_controller(&w);
	settle(&w, 5);
	assert_string_equal(st(&w, "phase"), "Healthy");
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 2);
	assert_int_equal(iat(w.ro, "status.availableReplicas"), 5);
	assert_int_equal(weight(&w), 0);
	assert_int_equal(json_array_size(w.rses), 1);
	world_free(&w);
}

/* An idle, Healthy Rollout writes nothing and asks for no requeue. */
static void
test_idle_rollout_writes_nothing(void **state)
{
	(void)state;
	static const char *const strategies[] = {
		TRAFFIC_CANARY("[{\"setWeight\":20},{\"pause\":{}}]", ""),
		"{\"canary\":{\"steps\":[{\"setWeight\":50}]}}",
		"{\"blueGreen\":{\"activeService\":\"web\",\"previewService\":\"web-preview\"}}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(strategies); i++) {
		struct world w;
		char h[16];
		world_healthy(&w, make_rollout(3, strategies[i]), i == 2 ? bg_svcs : canary_svcs, h);
		for (int k = 0; k < 3; k++) {
			w.now_ms += 60000;
			step(&w);
			if (w.last.n != 0)
				fail_msg("strategy %zu: idle sync wrote %zu actions (op %d)", i, w.last.n,
				    w.last.v[0].op);
			assert_int_equal(w.last.requeue_ms, 0);
		}
		/* and after a whole update, once the old pods are gone */
		char h2[16];
		set_image(&w, "img:2");
		template_hash(&w, h2);
		for (int k = 0; k < 5 && (strcmp(st(&w, "stableRS"), h2) != 0 ||
		    rs_replicas(&w, h) != 0); k++) {
			settle(&w, 20);
			promote(&w);
			w.now_ms += 31000;
		}
		settle(&w, 10);
		assert_string_equal(st(&w, "phase"), "Healthy");
		assert_int_equal(rs_replicas(&w, h), 0);
		step(&w);
		assert_int_equal(w.last.n, 0);
		assert_int_equal(w.last.requeue_ms, 0);
		world_free(&w);
	}
}

/* ---- canary with traffic routing ---------------------------------------- */

static void
test_canary_weight_waits_for_available_canary_and_endpoints(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	world_healthy(&w, make_rollout(5, TRAFFIC_CANARY("[{\"setWeight\":20},{\"pause\":{}}]",
	    "")), canary_svcs, h1);
	w.freeze_endpoints = true;	/* web-canary keeps listing the old pods */
	set_image(&w, "img:2");
	template_hash(&w, h2);
	assert_string_not_equal(h1, h2);
	json_object_set_new(w.unready, h2, json_true());
	for (int i = 0; i < 5; i++) {
		step(&w);
		w.now_ms += 1000;
	}
	assert_int_equal(weight(&w), 0);
	assert_int_equal(rs_replicas(&w, h2), 1);	/* ceil(5 * 20%) */
	assert_int_equal(rs_replicas(&w, h1), 5);	/* no dynamicStableScale */
	assert_non_null(ann(rs_of(&w, h2), REV_ANN));
	assert_string_equal(ann(rs_of(&w, h2), REV_ANN), "2");
	assert_string_equal(st(&w, "phase"), "Progressing");
	assert_string_equal(svc_hash(&w, "web"), h1);
	assert_string_equal(svc_hash(&w, "web-canary"), h2);
	assert_true(has_event(&w, "RolloutUpdated"));

	/* pods ready, but the canary Service's Endpoints still list old pods */
	json_object_clear(w.unready);
	for (int i = 0; i < 4; i++)
		step(&w);
	assert_int_equal(weight(&w), 0);

	w.freeze_endpoints = false;
	settle(&w, 10);
	assert_int_equal(weight(&w), 20);
	assert_string_equal(st(&w, "phase"), "Paused");
	assert_string_equal(pause_reason(&w), "CanaryPauseStep");
	assert_true(json_is_true(obj_get_path(w.ro, "status.controllerPause")));
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 1);
	assert_int_equal(rs_replicas(&w, h1), 5);
	assert_int_equal(rs_replicas(&w, h2), 1);
	assert_string_equal(sat(w.ro, "status.canary.weights.stable.podTemplateHash"), h1);
	assert_int_equal(iat(w.ro, "status.canary.weights.stable.weight"), 80);
	/* paused: nothing moves however long we wait */
	w.now_ms += 3600 * 1000;
	step(&w);
	assert_int_equal(w.last.n, 0);
	world_free(&w);
}

/* Promotion after the last step: weight 100, then the stable Service to
 * the new pods, then stableRS = new with weight 0; the old RS goes only
 * after scaleDownDelaySeconds (30 by default). */
static void
test_canary_final_promotion_order_and_scale_down_delay(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	world_healthy(&w, make_rollout(5, TRAFFIC_CANARY("[{\"setWeight\":20},{\"pause\":{}}]",
	    "")), canary_svcs, h1);
	set_image(&w, "img:2");
	template_hash(&w, h2);
	settle(&w, 10);
	assert_string_equal(st(&w, "phase"), "Paused");
	json_array_clear(w.trace);
	promote(&w);
	int64_t t0 = w.now_ms;
	settle(&w, 10);
	char w100[] = "weight=100", w0[] = "weight=0";
	char *svc = xasprintf("svc web=%s", h2), *stable = xasprintf("stable=%s", h2);
	int i100 = traced(&w, w100), isvc = traced(&w, svc), istable = traced(&w, stable);
	int i0 = traced(&w, w0);
	if (i100 < 0 || isvc < 0 || istable < 0 || i0 < 0 || !(i100 < isvc && isvc < istable &&
	    isvc < i0))
		fail_msg("promotion order wrong: %s", json_dumps(w.trace, JSON_COMPACT));
	/* Regression (was a bug): sync_canary() first points the stable Service back at
	 * status.stableRS (still the old hash) in the sync after canary_promote
	 * pointed it at the new one; point_service() then compares with its
	 * input (already new) and does not re-point it, so that sync ends with
	 * stableRS = new, weight 0 and the stable Service on the OLD pods: all
	 * traffic flips back to the old version until the next sync. */
	char *back = xasprintf("svc web=%s", h1);
	json_t *t;
	size_t k;
	json_array_foreach(w.trace, k, t)
		if ((int)k > isvc && strcmp(json_string_value(t), back) == 0)
			fail_msg("stable Service flipped back: %s", json_dumps(w.trace,
			    JSON_COMPACT));
	free(back);
	free(svc);
	free(stable);
	assert_string_equal(st(&w, "stableRS"), h2);
	assert_string_equal(svc_hash(&w, "web"), h2);
	assert_string_equal(svc_hash(&w, "web-canary"), h2);
	assert_int_equal(weight(&w), 0);
	assert_int_equal(rs_replicas(&w, h2), 5);
	assert_int_equal(rs_replicas(&w, h1), 5);
	assert_non_null(ann(rs_of(&w, h1), DEADLINE_ANN));
	assert_true(has_event(&w, "RolloutCompleted"));
	assert_true(w.last.requeue_ms > 0 && w.last.requeue_ms <= 31000 + 1000);
	w.now_ms = t0 + 29000;
	settle(&w, 5);
	assert_int_equal(rs_replicas(&w, h1), 5);
	w.now_ms = t0 + 31000;
	settle(&w, 5);
	assert_int_equal(rs_replicas(&w, h1), 0);
	assert_null(ann(rs_of(&w, h1), DEADLINE_ANN));
	assert_string_equal(st(&w, "phase"), "Healthy");
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 2);
	world_free(&w);
}

static void
test_canary_pause_with_duration_resumes_by_itself(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	world_healthy(&w, make_rollout(4, TRAFFIC_CANARY("[{\"setWeight\":25},{\"pause\":"
	    "{\"duration\":\"10s\"}},{\"setWeight\":50},{\"pause\":{\"duration\":5}}]", "")),
	    canary_svcs, h1);
	set_image(&w, "img:2");
	template_hash(&w, h2);
	settle(&w, 10);
	assert_string_equal(st(&w, "phase"), "Paused");
	assert_string_equal(pause_reason(&w), "CanaryPauseStep");
	assert_int_equal(weight(&w), 25);
	assert_true(w.last.requeue_ms > 0 && w.last.requeue_ms <= 10000);
	w.now_ms += 9000;
	settle(&w, 3);
	assert_int_equal(weight(&w), 25);
	assert_string_equal(st(&w, "phase"), "Paused");
	w.now_ms += 1500;
	settle(&w, 10);
	assert_int_equal(weight(&w), 50);
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 3);
	assert_string_equal(st(&w, "phase"), "Paused");
	w.now_ms += 5100;
	settle(&w, 10);
	assert_string_equal(st(&w, "stableRS"), h2);
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 4);
	world_free(&w);
}

static void
test_set_canary_scale(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	world_healthy(&w, make_rollout(5, TRAFFIC_CANARY("["
	    "{\"setCanaryScale\":{\"replicas\":2}},{\"pause\":{}},"
	    "{\"setWeight\":20},{\"pause\":{}},"
	    "{\"setCanaryScale\":{\"weight\":60}},{\"pause\":{}},"
	    "{\"setCanaryScale\":{\"matchTrafficWeight\":true}},{\"pause\":{}},"
	    "{\"setWeight\":40},{\"pause\":{}}]", "")), canary_svcs, h1);
	set_image(&w, "img:2");
	template_hash(&w, h2);
	static const struct {
		int step, canary, weight;
	} want[] = {
		{ 1, 2, 0 },	/* replicas 2, no traffic */
		{ 3, 2, 20 },	/* the explicit scale holds over setWeight */
		{ 5, 3, 20 },	/* weight 60% of 5 = 3 pods, traffic unchanged */
		{ 7, 1, 20 },	/* matchTrafficWeight: back to 20% of 5 */
		{ 9, 2, 40 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		settle(&w, 10);
		if (iat(w.ro, "status.currentStepIndex") != want[i].step ||
		    rs_replicas(&w, h2) != want[i].canary || weight(&w) != want[i].weight)
			fail_msg("pause %zu: step %d canary %d weight %d, want %d %d %d", i,
			    iat(w.ro, "status.currentStepIndex"), rs_replicas(&w, h2), weight(&w),
			    want[i].step, want[i].canary, want[i].weight);
		assert_string_equal(st(&w, "phase"), "Paused");
		assert_int_equal(rs_replicas(&w, h1), 5);
		promote(&w);
	}
	settle(&w, 10);
	assert_string_equal(st(&w, "stableRS"), h2);
	assert_int_equal(rs_replicas(&w, h2), 5);
	world_free(&w);
}

static const json_t *
header_route(const struct world *w, const char *name)
{
	size_t i;
	json_t *r;
	json_array_foreach(obj_get_path(w->ro, "status.canary.headerRoutes"), i, r)
		if (strcmp(sat(r, "name"), name) == 0)
			return r;
	return NULL;
}

static void
test_set_header_route_add_replace_remove(void **state)
{
	(void)state;
	struct world w;
	char h1[16];
	world_healthy(&w, make_rollout(3, TRAFFIC_CANARY("["
	    "{\"setCanaryScale\":{\"replicas\":1}},"
	    "{\"setHeaderRoute\":{\"name\":\"beta\",\"match\":[{\"headerName\":\"X-Canary\","
	    "\"headerValue\":{\"exact\":\"yes\"}}]}},{\"pause\":{}},"
	    "{\"setHeaderRoute\":{\"name\":\"beta\",\"match\":[{\"headerName\":\"X-Canary\","
	    "\"headerValue\":{\"prefix\":\"y\"}}]}},"
	    "{\"setHeaderRoute\":{\"name\":\"alpha\",\"match\":[{\"headerName\":\"X-Group\","
	    "\"headerValue\":{\"exact\":\"a\"}}]}},{\"pause\":{}},"
	    "{\"setHeaderRoute\":{\"name\":\"beta\"}},{\"pause\":{}}]", "")), canary_svcs, h1);
	set_image(&w, "img:2");
	settle(&w, 10);
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 2);
	assert_int_equal(weight(&w), 0);
	assert_int_equal(json_array_size(obj_get_path(w.ro, "status.canary.headerRoutes")), 1);
	assert_string_equal(sat(json_array_get(json_object_get(header_route(&w, "beta"), "match"),
	    0), "headerValue.exact"), "yes");
	promote(&w);
	settle(&w, 10);
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 5);
	assert_int_equal(json_array_size(obj_get_path(w.ro, "status.canary.headerRoutes")), 2);
	assert_string_equal(sat(json_array_get(json_object_get(header_route(&w, "beta"), "match"),
	    0), "headerValue.prefix"), "y");
	assert_non_null(header_route(&w, "alpha"));
	promote(&w);
	settle(&w, 10);
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 7);
	assert_null(header_route(&w, "beta"));
	assert_non_null(header_route(&w, "alpha"));
	promote(&w);
	settle(&w, 10);
	assert_string_equal(st(&w, "stableRS"), st(&w, "currentPodHash"));
	assert_null(obj_get_path(w.ro, "status.canary.headerRoutes"));
	world_free(&w);
}

static void
test_promote_full_skips_remaining_steps(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	world_healthy(&w, make_rollout(4, TRAFFIC_CANARY("[{\"setWeight\":25},{\"pause\":{}},"
	    "{\"setWeight\":50},{\"pause\":{}}]", "")), canary_svcs, h1);
	set_image(&w, "img:2");
	template_hash(&w, h2);
	settle(&w, 10);
	assert_int_equal(weight(&w), 25);
	json_array_clear(w.trace);
	set_status(&w, "promoteFull", json_true());
	settle(&w, 10);
	assert_int_equal(traced(&w, "weight=50"), -1);
	assert_true(traced(&w, "weight=100") >= 0);
	assert_string_equal(st(&w, "stableRS"), h2);
	assert_null(obj_get_path(w.ro, "status.promoteFull"));
	assert_null(obj_get_path(w.ro, "status.pauseConditions"));
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 4);
	world_free(&w);
}

/* ---- basic canary (no traffic routing): replica ratio -------------------- */

static void
test_basic_canary_replica_ratio(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	world_healthy(&w, make_rollout(4, "{\"canary\":{\"steps\":[{\"setWeight\":50},"
	    "{\"pause\":{}}]}}"), NULL, h1);
	set_image(&w, "img:2");
	template_hash(&w, h2);
	settle(&w, 10);
	assert_string_equal(st(&w, "phase"), "Paused");
	assert_int_equal(rs_replicas(&w, h2), 2);
	assert_int_equal(rs_replicas(&w, h1), 2);
	promote(&w);
	settle(&w, 10);
	assert_string_equal(st(&w, "stableRS"), h2);
	assert_int_equal(rs_replicas(&w, h2), 4);
	assert_int_equal(rs_replicas(&w, h1), 0);	/* no delay without traffic routing */
	assert_string_equal(st(&w, "phase"), "Healthy");
	world_free(&w);
}

/* maxSurge 1 / maxUnavailable 0 on 4 replicas: never more than 5 pods,
 * never fewer than 4 desired on the stable + canary, at every sync. */
static void
test_basic_canary_honours_max_surge_and_unavailable(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	world_healthy(&w, make_rollout(4, "{\"canary\":{\"maxSurge\":1,\"maxUnavailable\":0,"
	    "\"steps\":[{\"setWeight\":50},{\"pause\":{}}]}}"), NULL, h1);
	set_image(&w, "img:2");
	template_hash(&w, h2);
	int steps = 0;
	while (strcmp(st(&w, "phase"), "Paused") != 0 && steps++ < 20) {
		step(&w);
		int c = rs_replicas(&w, h2), sr = rs_replicas(&w, h1);
		assert_true(c + sr <= 5);
		assert_true(c + sr >= 4);
	}
	assert_int_equal(rs_replicas(&w, h2), 2);
	assert_int_equal(rs_replicas(&w, h1), 2);
	assert_true(steps >= 3);	/* 1 pod at a time, not all at once */
	world_free(&w);
}

/* A canary whose pods never get ready is Degraded after
 * progressDeadlineSeconds (and aborted with progressDeadlineAbort). */
static void
test_progress_deadline_degrades_then_aborts(void **state)
{
	(void)state;
	for (int abort = 0; abort <= 1; abort++) {
		struct world w;
		char h1[16], h2[16];
		world_healthy(&w, make_rollout(2, "{\"canary\":{\"steps\":[{\"setWeight\":50}]}}"),
		    NULL, h1);
		json_object_set_new(json_object_get(w.ro, "spec"), "progressDeadlineSeconds",
		    json_integer(60));
		if (abort)
			json_object_set_new(json_object_get(w.ro, "spec"), "progressDeadlineAbort",
			    json_true());
		set_image(&w, "img:2");
		template_hash(&w, h2);
		json_object_set_new(w.unready, h2, json_true());
		step(&w);
		step(&w);
		assert_string_equal(st(&w, "phase"), "Progressing");
		w.now_ms += 30 * 1000;
		step(&w);
		assert_string_equal(st(&w, "phase"), "Progressing");
		assert_true(w.last.requeue_ms > 0 && w.last.requeue_ms <= 32 * 1000);
		w.now_ms += 31 * 1000;
		step(&w);
		step(&w);
		assert_string_equal(st(&w, "phase"), "Degraded");
		assert_non_null(strstr(st(&w, "message"), abort ? "RolloutAborted" :
		    "ProgressDeadlineExceeded"));
		assert_int_equal(json_is_true(obj_get_path(w.ro, "status.abort")), abort);
		world_free(&w);
	}
}

/* ---- abort and retry ------------------------------------------------------- */

static void
reach_pause_then_abort(struct world *w, char h1[16], char h2[16], const char *extra)
{
	char *strat = xasprintf("{\"canary\":{\"canaryService\":\"web-canary\",\"stableService\":"
	    "\"web\",%s\"steps\":[{\"setWeight\":20},{\"setHeaderRoute\":{\"name\":\"beta\","
	    "\"match\":[{\"headerName\":\"X-Canary\",\"headerValue\":{\"exact\":\"yes\"}}]}},"
	    "{\"pause\":{}}]}}", extra);
	world_healthy(w, make_rollout(5, strat), canary_svcs, h1);
	free(strat);
	set_image(w, "img:2");
	template_hash(w, h2);
	settle(w, 10);
	assert_int_equal(weight(w), 20);
	assert_non_null(header_route(w, "beta"));
	set_status(w, "abort", json_true());
	step(w);
}

static void
test_abort_returns_traffic_then_scales_canary_down(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	reach_pause_then_abort(&w, h1, h2, "");
	int64_t t0 = w.now_ms;
	/* in the very decision that saw the abort */
	assert_int_equal(weight(&w), 0);
	assert_null(header_route(&w, "beta"));
	assert_string_equal(st(&w, "phase"), "Degraded");
	assert_true(str_has_prefix(st(&w, "message"), "RolloutAborted: "));
	assert_null(obj_get_path(w.ro, "status.pauseConditions"));
	assert_true(has_event(&w, "RolloutAborted"));
	assert_string_equal(svc_hash(&w, "web"), h1);
	assert_int_equal(rs_replicas(&w, h1), 5);
	assert_int_equal(rs_replicas(&w, h2), 1);
	settle(&w, 5);
	w.now_ms = t0 + 29000;
	settle(&w, 5);
	assert_int_equal(rs_replicas(&w, h2), 1);
	w.now_ms = t0 + 31000;
	settle(&w, 5);
	assert_int_equal(rs_replicas(&w, h2), 0);
	assert_string_equal(st(&w, "phase"), "Degraded");
	assert_string_equal(st(&w, "stableRS"), h1);

	/* retry: abort false with abortedAt kept starts again at step 0 */
	set_status(&w, "abort", json_false());
	step(&w);
	assert_null(obj_get_path(w.ro, "status.abortedAt"));
	assert_true(has_event(&w, "RolloutRetried"));
	settle(&w, 10);
	assert_string_equal(st(&w, "phase"), "Paused");
	assert_int_equal(weight(&w), 20);
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 2);
	assert_int_equal(rs_replicas(&w, h2), 1);
	world_free(&w);
}

static void
test_new_template_while_aborted_starts_new_rollout(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16], h3[16];
	reach_pause_then_abort(&w, h1, h2, "");
	settle(&w, 5);
	assert_string_equal(st(&w, "phase"), "Degraded");
	set_image(&w, "img:3");
	template_hash(&w, h3);
	step(&w);
	assert_string_equal(st(&w, "currentPodHash"), h3);
	assert_null(obj_get_path(w.ro, "status.abort"));
	settle(&w, 10);
	assert_string_equal(st(&w, "phase"), "Paused");
	assert_int_equal(weight(&w), 20);
	assert_string_equal(sat(w.ro, "status.canary.weights.canary.podTemplateHash"), h3);
	assert_int_equal(rs_replicas(&w, h3), 1);
	w.now_ms += 31000;	/* the aborted canary goes at its abort deadline */
	settle(&w, 5);
	assert_int_equal(rs_replicas(&w, h2), 0);
	assert_int_equal(rs_replicas(&w, h3), 1);
	assert_string_equal(ann(rs_of(&w, h3), REV_ANN), "3");
	world_free(&w);
}

/* Argo: abortScaleDownDelaySeconds 0 leaves the canary scaled up
 * (docs: features/scaledown-aborted-rs, "0 | does not scale down"). */
static void
test_abort_scale_down_delay_zero_keeps_canary(void **state)
{
	(void)state;
	/* Regression (was a bug): abortScaleDownDelaySeconds 0 scales the canary down at once
	 * (scale_down_later treats delay <= 0 as "now"); Argo leaves it up. */
	struct world w;
	char h1[16], h2[16];
	reach_pause_then_abort(&w, h1, h2, "\"abortScaleDownDelaySeconds\":0,");
	settle(&w, 5);
	w.now_ms += 3600 * 1000;
	settle(&w, 5);
	assert_int_equal(rs_replicas(&w, h2), 1);
	world_free(&w);
}

/* ---- analysis ---------------------------------------------------------------- */

static void
add_template(struct world *w, const char *name, const char *args)
{
	char *t = xasprintf("{\"apiVersion\":\"argoproj.io/v1alpha1\",\"kind\":"
	    "\"AnalysisTemplate\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\"},"
	    "\"spec\":{\"args\":%s,\"metrics\":[{\"name\":\"m-%s\",\"provider\":{\"job\":{}}}]}}",
	    name, args, name);
	json_object_set_new(w->templates, name, J(t));
	free(t);
}

static const char *
run_arg(const json_t *run, const char *name)
{
	size_t i;
	json_t *a;
	json_array_foreach(obj_get_path(run, "spec.args"), i, a)
		if (strcmp(sat(a, "name"), name) == 0)
			return sat(a, "value");
	return NULL;
}

#define ANALYSIS_ARGS \
	"[{\"name\":\"stable-hash\",\"valueFrom\":{\"podTemplateHashValue\":\"Stable\"}}," \
	"{\"name\":\"latest-hash\",\"valueFrom\":{\"podTemplateHashValue\":\"Latest\"}}," \
	"{\"name\":\"ro-name\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}}," \
	"{\"name\":\"team\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":" \
	"\"metadata.labels['team']\"}}},{\"name\":\"plain\",\"value\":\"v\"}]"

/* Rollout with [setWeight 20, analysis(template tmpl), pause]. */
static void
analysis_world(struct world *w, char h1[16], char h2[16], const char *tmpl)
{
	char *strat = xasprintf(TRAFFIC_CANARY("[{\"setWeight\":20},{\"analysis\":{\"templates\":"
	    "[{\"templateName\":\"%s\"}],\"args\":" ANALYSIS_ARGS "}},{\"pause\":{}}]", ""), tmpl);
	world_healthy(w, make_rollout(5, strat), canary_svcs, h1);
	free(strat);
	add_template(w, "check", "[{\"name\":\"stable-hash\"},{\"name\":\"latest-hash\"},"
	    "{\"name\":\"ro-name\"},{\"name\":\"team\"},{\"name\":\"plain\"},"
	    "{\"name\":\"dflt\",\"value\":\"5\"}]");
	set_image(w, "img:2");
	template_hash(w, h2);
	settle(w, 10);
}

static void
test_analysis_step_creates_run_with_args(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	analysis_world(&w, h1, h2, "check");
	char *name = xasprintf("web-%s-2-1", h2);
	json_t *run = find_named(w.runs, name, NULL);
	if (!run)
		fail_msg("no run %s: %s", name, json_dumps(w.runs, JSON_COMPACT));
	assert_string_equal(obj_kind(run), "AnalysisRun");
	assert_string_equal(sat(obj_controller_ref(run), "uid"), "ro-uid");
	assert_string_equal(sat(obj_controller_ref(run), "kind"), "Rollout");
	assert_string_equal(run_arg(run, "stable-hash"), h1);
	assert_string_equal(run_arg(run, "latest-hash"), h2);
	assert_string_equal(run_arg(run, "ro-name"), "web");
	assert_string_equal(run_arg(run, "team"), "shop");
	assert_string_equal(run_arg(run, "plain"), "v");
	assert_string_equal(run_arg(run, "dflt"), "5");
	assert_string_equal(sat(json_array_get(obj_get_path(run, "spec.metrics"), 0), "name"),
	    "m-check");
	assert_string_equal(st(&w, "phase"), "Progressing");
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 1);
	assert_string_equal(sat(w.ro, "status.canary.currentStepAnalysisRunStatus.name"), name);

	set_run_phase(&w, name, "Running", NULL);
	settle(&w, 5);
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 1);
	set_run_phase(&w, name, "Successful", NULL);
	settle(&w, 5);
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 2);
	assert_string_equal(st(&w, "phase"), "Paused");
	assert_int_equal(json_array_size(w.runs), 1);	/* started once */
	free(name);
	world_free(&w);
}

static void
test_analysis_failure_aborts(void **state)
{
	(void)state;
	static const char *const phases[] = { "Failed", "Error" };
	for (size_t i = 0; i < ARRAY_SIZE(phases); i++) {
		struct world w;
		char h1[16], h2[16];
		analysis_world(&w, h1, h2, "check");
		char *name = xasprintf("web-%s-2-1", h2);
		set_run_phase(&w, name, phases[i], "error rate 0.4 > 0.1");
		step(&w);
		assert_string_equal(st(&w, "phase"), "Degraded");
		assert_true(json_is_true(obj_get_path(w.ro, "status.abort")));
		assert_true(str_has_prefix(st(&w, "message"), "RolloutAborted: "));
		assert_non_null(strstr(st(&w, "message"), "error rate 0.4"));
		settle(&w, 5);
		assert_int_equal(weight(&w), 0);
		assert_string_equal(svc_hash(&w, "web"), h1);
		free(name);
		world_free(&w);
	}
}

static void
test_analysis_inconclusive_pauses(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	analysis_world(&w, h1, h2, "check");
	char *name = xasprintf("web-%s-2-1", h2);
	set_run_phase(&w, name, "Inconclusive", NULL);
	settle(&w, 5);
	assert_string_equal(st(&w, "phase"), "Paused");
	assert_string_equal(pause_reason(&w), "InconclusiveAnalysis");
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 1);
	assert_int_equal(weight(&w), 20);
	promote(&w);
	settle(&w, 5);
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 2);
	assert_string_equal(pause_reason(&w), "CanaryPauseStep");
	free(name);
	world_free(&w);
}

/* Regression: a template brought back after its rollout ended Inconclusive
 * (v2 paused, v1 applied, v2 applied again) starts a fresh run instead of
 * pausing at once on the stale one. */
static void
test_reapplied_template_starts_fresh_analysis(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	analysis_world(&w, h1, h2, "check");
	char *stale = xasprintf("web-%s-2-1", h2);
	set_run_phase(&w, stale, "Inconclusive", NULL);
	settle(&w, 5);
	assert_string_equal(pause_reason(&w), "InconclusiveAnalysis");
	set_image(&w, "img:1");
	settle(&w, 10);
	assert_string_equal(st(&w, "phase"), "Healthy");
	set_image(&w, "img:2");
	settle(&w, 10);
	char *fresh = xasprintf("web-%s-4-1", h2);
	json_t *run = find_named(w.runs, fresh, NULL);
	if (!run)
		fail_msg("no run %s: %s", fresh, json_dumps(w.runs, JSON_COMPACT));
	assert_null(obj_get_path(run, "status.phase"));
	assert_string_equal(st(&w, "phase"), "Progressing");
	assert_string_equal(sat(w.ro, "status.canary.currentStepAnalysisRunStatus.name"), fresh);
	free(stale);
	free(fresh);
	world_free(&w);
}

/* A weight step is done only once the proxy routes by the new weight: the
 * sync that publishes it asks to be woken by the proxy's acknowledgement,
 * and until then (routesPending) the rollout stays at the step. */
static void
test_weight_step_waits_for_the_proxy(void **state)
{
	(void)state;
	struct world w;
	char h1[16];
	world_healthy(&w, make_rollout(2, TRAFFIC_CANARY("[{\"setWeight\":20},"
	    "{\"pause\":{}}]", "")), canary_svcs, h1);
	set_image(&w, "img:2");
	bool asked = false;
	for (int i = 0; i < 20 && weight(&w) != 20; i++) {
		step(&w);
		asked |= w.last.await_routes;
	}
	assert_int_equal(weight(&w), 20);
	assert_true(asked);
	w.routes_pending = true;
	settle(&w, 10);
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 0);
	assert_string_equal(st(&w, "phase"), "Progressing");
	w.routes_pending = false;
	settle(&w, 10);
	assert_int_equal(iat(w.ro, "status.currentStepIndex"), 1);
	assert_string_equal(pause_reason(&w), "CanaryPauseStep");
	world_free(&w);
}

static void
test_analysis_missing_template_or_arg_aborts(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	analysis_world(&w, h1, h2, "nope");
	assert_string_equal(st(&w, "phase"), "Degraded");
	assert_non_null(strstr(st(&w, "message"), "AnalysisTemplate \"nope\" not found"));
	assert_int_equal(json_array_size(w.runs), 0);
	world_free(&w);

	/* a template arg the Rollout does not give a value */
	world_healthy(&w, make_rollout(2, TRAFFIC_CANARY("[{\"analysis\":{\"templates\":"
	    "[{\"templateName\":\"needs\"}]}}]", "")), canary_svcs, h1);
	add_template(&w, "needs", "[{\"name\":\"service-name\"}]");
	set_image(&w, "img:2");
	settle(&w, 10);
	assert_string_equal(st(&w, "phase"), "Degraded");
	assert_non_null(strstr(st(&w, "message"), "argument \"service-name\" has no value"));
	assert_int_equal(json_array_size(w.runs), 0);
	world_free(&w);
}

/* A retry of an update whose analysis (at step 0) failed must start a new
 * run, not read the failed one again. */
static void
test_retry_after_failed_analysis_runs_it_again(void **state)
{
	(void)state;
	/* Regression (was a bug): on retry, delete_finished_runs() queues the delete of the failed
	 * run, but the analysis step in the same decision still finds it in
	 * the inputs (find_run) and aborts again at once. */
	struct world w;
	char h1[16], h2[16];
	world_healthy(&w, make_rollout(2, TRAFFIC_CANARY("[{\"analysis\":{\"templates\":"
	    "[{\"templateName\":\"t\"}]}},{\"setWeight\":50}]", "")), canary_svcs, h1);
	add_template(&w, "t", "[]");
	set_image(&w, "img:2");
	template_hash(&w, h2);
	settle(&w, 10);
	char *name = xasprintf("web-%s-2-0", h2);
	set_run_phase(&w, name, "Failed", "boom");
	settle(&w, 5);
	assert_string_equal(st(&w, "phase"), "Degraded");
	set_status(&w, "abort", json_false());
	step(&w);
	assert_string_not_equal(st(&w, "phase"), "Degraded");
	assert_null(obj_get_path(w.ro, "status.abort"));
	settle(&w, 10);
	json_t *run = find_named(w.runs, name, NULL);
	assert_non_null(run);
	assert_null(obj_get_path(run, "status.phase"));	/* a new run */
	assert_string_equal(st(&w, "phase"), "Progressing");
	free(name);
	world_free(&w);
}

static void
test_background_analysis(void **state)
{
	(void)state;
	for (int fail = 0; fail < 2; fail++) {
		struct world w;
		char h1[16], h2[16];
		world_healthy(&w, make_rollout(5, TRAFFIC_CANARY("[{\"setWeight\":20},"
		    "{\"pause\":{}},{\"setWeight\":40},{\"pause\":{}}]", "\"analysis\":{"
		    "\"templates\":[{\"templateName\":\"bg\"}],\"startingStep\":1},")),
		    canary_svcs, h1);
		add_template(&w, "bg", "[]");
		set_image(&w, "img:2");
		template_hash(&w, h2);
		char *name = xasprintf("web-%s-2-bg", h2);
		/* not before startingStep */
		for (int i = 0; i < 10 && iat(w.ro, "status.currentStepIndex") < 1; i++) {
			step(&w);
			assert_null(find_named(w.runs, name, NULL));
		}
		settle(&w, 10);
		json_t *run = find_named(w.runs, name, NULL);
		assert_non_null(run);
		assert_string_equal(sat(run, "metadata.labels.rollout-type"), "Background");
		set_run_phase(&w, name, "Running", NULL);
		if (fail) {
			promote(&w);
			settle(&w, 10);
			assert_int_equal(weight(&w), 40);
			set_run_phase(&w, name, "Failed", "p99 too high");
			step(&w);
			assert_string_equal(st(&w, "phase"), "Degraded");
			assert_non_null(strstr(st(&w, "message"), "p99 too high"));
			settle(&w, 5);
			assert_int_equal(weight(&w), 0);
		} else {
			for (int i = 0; i < 2; i++) {
				promote(&w);
				settle(&w, 10);
			}
			assert_string_equal(st(&w, "stableRS"), h2);
			run = find_named(w.runs, name, NULL);
			assert_true(json_is_true(obj_get_path(run, "spec.terminate")));
		}
		free(name);
		world_free(&w);
	}
}

/* ---- blue-green ----------------------------------------------------------------- */

#define BG(extra) "{\"blueGreen\":{\"activeService\":\"web\",\"previewService\":" \
	"\"web-preview\"" extra "}}"

static void
test_blue_green_auto_promotion(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	world_healthy(&w, make_rollout(3, BG("")), bg_svcs, h1);
	assert_string_equal(svc_hash(&w, "web"), h1);
	assert_string_equal(sat(w.ro, "status.blueGreen.activeSelector"), h1);
	set_image(&w, "img:2");
	template_hash(&w, h2);
	json_object_set_new(w.unready, h2, json_true());
	for (int i = 0; i < 4; i++)
		step(&w);
	assert_string_equal(svc_hash(&w, "web-preview"), h2);
	assert_string_equal(svc_hash(&w, "web"), h1);
	assert_int_equal(rs_replicas(&w, h2), 3);
	json_object_clear(w.unready);
	int64_t t0 = w.now_ms;
	settle(&w, 10);
	assert_string_equal(svc_hash(&w, "web"), h2);
	assert_string_equal(sat(w.ro, "status.blueGreen.activeSelector"), h2);
	assert_string_equal(st(&w, "stableRS"), h2);
	assert_true(has_event(&w, "SwitchService"));
	assert_int_equal(rs_replicas(&w, h1), 3);
	w.now_ms = t0 + 29000;
	settle(&w, 5);
	assert_int_equal(rs_replicas(&w, h1), 3);
	w.now_ms = t0 + 31000;
	settle(&w, 5);
	assert_int_equal(rs_replicas(&w, h1), 0);
	assert_string_equal(st(&w, "phase"), "Healthy");
	world_free(&w);
}

static void
test_blue_green_manual_promotion_with_preview_count(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	world_healthy(&w, make_rollout(3, BG(",\"autoPromotionEnabled\":false,"
	    "\"previewReplicaCount\":1")), bg_svcs, h1);
	set_image(&w, "img:2");
	template_hash(&w, h2);
	settle(&w, 10);
	assert_string_equal(st(&w, "phase"), "Paused");
	assert_string_equal(pause_reason(&w), "BlueGreenPause");
	assert_int_equal(rs_replicas(&w, h2), 1);
	assert_string_equal(svc_hash(&w, "web-preview"), h2);
	assert_string_equal(svc_hash(&w, "web"), h1);
	w.now_ms += 3600 * 1000;
	step(&w);
	assert_int_equal(w.last.n, 0);
	/* Regression (was a bug): with previewReplicaCount < replicas, promote clears the pause
	 * (controllerPause too) in the sync that scales the new RS up; the
	 * next sync, not seeing controllerPause, adds BlueGreenPause again, so
	 * the user has to promote twice. */
	promote(&w);
	settle(&w, 10);
	assert_string_equal(svc_hash(&w, "web"), h2);
	assert_string_equal(st(&w, "stableRS"), h2);
	assert_int_equal(rs_replicas(&w, h2), 3);
	world_free(&w);
}

static void
test_blue_green_auto_promotion_seconds(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	world_healthy(&w, make_rollout(2, BG(",\"autoPromotionSeconds\":20")), bg_svcs, h1);
	set_image(&w, "img:2");
	template_hash(&w, h2);
	settle(&w, 10);
	int64_t t0 = w.now_ms;
	assert_string_equal(pause_reason(&w), "BlueGreenPause");
	assert_true(w.last.requeue_ms > 0 && w.last.requeue_ms <= 20000);
	w.now_ms = t0 + 10000;
	settle(&w, 5);
	assert_string_equal(svc_hash(&w, "web"), h1);
	w.now_ms = t0 + 21000;
	settle(&w, 10);
	assert_string_equal(svc_hash(&w, "web"), h2);
	assert_string_equal(st(&w, "stableRS"), h2);
	world_free(&w);
}

static void
test_blue_green_pre_promotion_analysis(void **state)
{
	(void)state;
	for (int fail = 0; fail < 2; fail++) {
		struct world w;
		char h1[16], h2[16];
		world_healthy(&w, make_rollout(2, BG(",\"prePromotionAnalysis\":{\"templates\":"
		    "[{\"templateName\":\"smoke\"}]}")), bg_svcs, h1);
		add_template(&w, "smoke", "[]");
		set_image(&w, "img:2");
		template_hash(&w, h2);
		settle(&w, 10);
		char *name = xasprintf("web-%s-2-pre", h2);
		assert_non_null(find_named(w.runs, name, NULL));
		assert_string_equal(svc_hash(&w, "web-preview"), h2);
		assert_string_equal(svc_hash(&w, "web"), h1);
		set_run_phase(&w, name, "Running", NULL);
		settle(&w, 5);
		assert_string_equal(svc_hash(&w, "web"), h1);
		set_run_phase(&w, name, fail ? "Failed" : "Successful", NULL);
		settle(&w, 10);
		if (fail) {
			assert_string_equal(st(&w, "phase"), "Degraded");
			assert_string_equal(svc_hash(&w, "web"), h1);
			assert_string_equal(st(&w, "stableRS"), h1);
		} else {
			assert_string_equal(svc_hash(&w, "web"), h2);
			assert_string_equal(st(&w, "stableRS"), h2);
		}
		free(name);
		world_free(&w);
	}
}

static void
test_blue_green_post_promotion_analysis(void **state)
{
	(void)state;
	for (int fail = 0; fail < 2; fail++) {
		struct world w;
		char h1[16], h2[16];
		world_healthy(&w, make_rollout(2, BG(",\"postPromotionAnalysis\":{\"templates\":"
		    "[{\"templateName\":\"smoke\"}]}")), bg_svcs, h1);
		add_template(&w, "smoke", "[]");
		set_image(&w, "img:2");
		template_hash(&w, h2);
		settle(&w, 10);
		char *name = xasprintf("web-%s-2-post", h2);
		assert_non_null(find_named(w.runs, name, NULL));
		assert_string_equal(svc_hash(&w, "web"), h2);
		assert_string_equal(sat(w.ro, "status.blueGreen.activeSelector"), h2);
		assert_string_equal(st(&w, "stableRS"), h1);	/* not before the analysis */
		assert_int_equal(rs_replicas(&w, h1), 2);	/* old kept for switch-back */
		if (!fail) {
			set_run_phase(&w, name, "Successful", NULL);
			settle(&w, 10);
			assert_string_equal(st(&w, "stableRS"), h2);
		} else {
			set_run_phase(&w, name, "Failed", NULL);
			step(&w);
			assert_string_equal(st(&w, "phase"), "Degraded");
			/* back to the stable pods in the very sync that saw the failure */
			assert_string_equal(svc_hash(&w, "web"), h1);
			assert_true(json_is_true(obj_get_path(w.ro, "status.abort")));
			settle(&w, 5);
			assert_string_equal(svc_hash(&w, "web"), h1);
			assert_string_equal(sat(w.ro, "status.blueGreen.activeSelector"), h1);
			assert_string_equal(st(&w, "stableRS"), h1);
		}
		free(name);
		world_free(&w);
	}
}

/* Argo's CalculateRolloutPhase: blue-green and canary with traffic routing
 * are Healthy while the old pods wait for scaleDownDelaySeconds (only a
 * basic canary waits for "old replicas are pending termination"). */
static void
test_healthy_during_scale_down_delay(void **state)
{
	(void)state;
	/* Regression (was a bug): set_phase() requires status.replicas == spec.replicas, so the
	 * Rollout stays Progressing for the whole scaleDownDelaySeconds. */
	static const char *const strategies[] = {
		TRAFFIC_CANARY("[{\"setWeight\":20}]", ""),
		BG(""),
	};
	for (size_t i = 0; i < ARRAY_SIZE(strategies); i++) {
		struct world w;
		char h1[16], h2[16];
		world_healthy(&w, make_rollout(3, strategies[i]), i ? bg_svcs : canary_svcs, h1);
		set_image(&w, "img:2");
		template_hash(&w, h2);
		settle(&w, 10);
		assert_string_equal(st(&w, "stableRS"), h2);
		assert_int_equal(rs_replicas(&w, h1), 3);
		assert_string_equal(st(&w, "phase"), "Healthy");
		world_free(&w);
	}
}

/* ---- spec.paused, revision history -------------------------------------------- */

static void
test_spec_paused_holds_everything(void **state)
{
	(void)state;
	struct world w;
	char h1[16], h2[16];
	world_healthy(&w, make_rollout(5, TRAFFIC_CANARY("[{\"setWeight\":20},{\"pause\":{}}]",
	    "")), canary_svcs, h1);
	json_object_set_new(json_object_get(w.ro, "spec"), "paused", json_true());
	settle(&w, 5);
	assert_string_equal(st(&w, "phase"), "Paused");
	set_image(&w, "img:2");
	template_hash(&w, h2);
	for (int i = 0; i < 5; i++) {
		step(&w);
		w.now_ms += 10000;
	}
	assert_true(rs_replicas(&w, h2) <= 0);
	assert_int_equal(weight(&w), 0);
	assert_string_equal(svc_hash(&w, "web"), h1);
	assert_string_equal(st(&w, "phase"), "Paused");
	assert_int_equal(w.last.n, 0);
	json_object_set_new(json_object_get(w.ro, "spec"), "paused", json_false());
	settle(&w, 10);
	assert_int_equal(weight(&w), 20);
	assert_int_equal(rs_replicas(&w, h2), 1);
	world_free(&w);
}

static void
test_revision_history_limit(void **state)
{
	(void)state;
	struct world w;
	char h[5][16];
	world_healthy(&w, make_rollout(2, "{\"canary\":{\"steps\":[]}}"), NULL, h[0]);
	json_object_set_new(json_object_get(w.ro, "spec"), "revisionHistoryLimit",
	    json_integer(1));
	for (int v = 1; v < 5; v++) {
		char img[16];
		snprintf(img, sizeof img, "img:%d", v + 1);
		set_image(&w, img);
		template_hash(&w, h[v]);
		settle(&w, 10);
		assert_string_equal(st(&w, "stableRS"), h[v]);
		char rev[8];
		snprintf(rev, sizeof rev, "%d", v + 1);
		assert_string_equal(ann(rs_of(&w, h[v]), REV_ANN), rev);
	}
	/* the current one and one scaled-down old one; the oldest went first */
	assert_int_equal(json_array_size(w.rses), 2);
	assert_non_null(rs_of(&w, h[4]));
	assert_non_null(rs_of(&w, h[3]));
	assert_int_equal(rs_replicas(&w, h[3]), 0);
	world_free(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_apply_is_stable_at_once),
		cmocka_unit_test(test_idle_rollout_writes_nothing),
		cmocka_unit_test(test_canary_weight_waits_for_available_canary_and_endpoints),
		cmocka_unit_test(test_canary_final_promotion_order_and_scale_down_delay),
		cmocka_unit_test(test_canary_pause_with_duration_resumes_by_itself),
		cmocka_unit_test(test_set_canary_scale),
		cmocka_unit_test(test_set_header_route_add_replace_remove),
		cmocka_unit_test(test_promote_full_skips_remaining_steps),
		cmocka_unit_test(test_basic_canary_replica_ratio),
		cmocka_unit_test(test_progress_deadline_degrades_then_aborts),
		cmocka_unit_test(test_basic_canary_honours_max_surge_and_unavailable),
		cmocka_unit_test(test_abort_returns_traffic_then_scales_canary_down),
		cmocka_unit_test(test_new_template_while_aborted_starts_new_rollout),
		cmocka_unit_test(test_abort_scale_down_delay_zero_keeps_canary),
		cmocka_unit_test(test_analysis_step_creates_run_with_args),
		cmocka_unit_test(test_analysis_failure_aborts),
		cmocka_unit_test(test_analysis_inconclusive_pauses),
		cmocka_unit_test(test_reapplied_template_starts_fresh_analysis),
		cmocka_unit_test(test_weight_step_waits_for_the_proxy),
		cmocka_unit_test(test_analysis_missing_template_or_arg_aborts),
		cmocka_unit_test(test_retry_after_failed_analysis_runs_it_again),
		cmocka_unit_test(test_background_analysis),
		cmocka_unit_test(test_blue_green_auto_promotion),
		cmocka_unit_test(test_blue_green_manual_promotion_with_preview_count),
		cmocka_unit_test(test_blue_green_auto_promotion_seconds),
		cmocka_unit_test(test_blue_green_pre_promotion_analysis),
		cmocka_unit_test(test_blue_green_post_promotion_analysis),
		cmocka_unit_test(test_healthy_during_scale_down_delay),
		cmocka_unit_test(test_spec_paused_holds_everything),
		cmocka_unit_test(test_revision_history_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
