/* ctrl_rollout.c — the Rollout controller (Argo Rollouts' canary and
 * blue-green strategies): owns one ReplicaSet per pod template
 * (NAME-HASH, label rollouts-pod-template-hash), points the stable /
 * canary / active / preview Services at them, walks the canary steps,
 * starts AnalysisRuns and aborts on failure. Traffic weights and header
 * routes are published in status.canary; ctrl_routes.c turns them into
 * the proxy's routing table. rollout_decide() is the pure decision; the
 * rest watches the store and applies it through api.h. Started by server.c. */
#include "ctrl.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RO_COMPONENT	"rollouts-controller"
#define HASH_LABEL	"rollouts-pod-template-hash"
#define REV_ANN		"rollout.argoproj.io/revision"
#define DEADLINE_ANN	"argo-rollouts.argoproj.io/scale-down-deadline"
#define ARGO		"argoproj.io/v1alpha1"
/* How long to wait for the proxy to apply a routing change before going on
 * without its word (it is down or restarting). */
#define ROUTE_ACK_TIMEOUT_MS 5000

/* ---- small helpers ------------------------------------------------------- */

/* ---- actions -------------------------------------------------------------- */

void
rollout_actions_free(struct rollout_actions *a)
{
	for (size_t i = 0; i < a->n; i++) {
		json_decref(a->v[i].obj);
		free(a->v[i].message);
	}
	free(a->v);
	memset(a, 0, sizeof *a);
}

static struct rollout_action *
push(struct rollout_actions *a, enum rollout_op op, json_t *obj)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 8;
		a->v = xrealloc(a->v, a->cap * sizeof *a->v);
	}
	struct rollout_action *x = &a->v[a->n++];
	memset(x, 0, sizeof *x);
	x->op = op;
	x->obj = obj;
	return x;
}

static void
requeue(struct rollout_actions *a, int64_t ms)
{
	if (ms < 1)
		ms = 1;
	if (a->requeue_ms == 0 || ms < a->requeue_ms)
		a->requeue_ms = ms;
}

/* ---- the sync state ------------------------------------------------------- */

struct rsync {
	json_t *ro;			/* our copy; status edited in place */
	json_t *st;			/* ro's status (borrowed) */
	const json_t *in;		/* the inputs */
	int64_t now;
	struct rollout_actions *out;
	json_t *owned;			/* copies of the RSes we own */
	json_t *gone;			/* names of AnalysisRuns deleted in this sync */
	json_t *new_rs, *stable_rs;	/* borrowed from owned */
	char hash[16];
	int replicas;
	bool canary, bg;
	const json_t *strat;		/* spec.strategy.canary or .blueGreen */
};

static void
event(struct rsync *s, const char *type, const char *reason, const char *fmt, ...)
    V6_PRINTF(4, 5);

static void
event(struct rsync *s, const char *type, const char *reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct rollout_action *x = push(s->out, RO_EVENT, NULL);
	x->type = type;
	x->reason = reason;
	x->message = xvasprintf(fmt, ap);
	va_end(ap);
}

static const char *
rs_hash(const json_t *rs)
{
	const char *h = json_string_value(json_object_get(obj_labels(rs), HASH_LABEL));
	return h ? h : "";
}

static json_t *
owned_by_hash(struct rsync *s, const char *hash)
{
	size_t i;
	json_t *rs;
	if (!*hash)
		return NULL;
	json_array_foreach(s->owned, i, rs)
		if (!strcmp(rs_hash(rs), hash))
			return rs;
	return NULL;
}

static int
rs_spec_replicas(const json_t *rs)
{
	return (int)obj_int_at(rs, "spec.replicas", 1);
}

/* Available pods the RS reports for its current spec (0 while its status
 * lags behind a change of spec). */
static int
rs_available(const json_t *rs)
{
	if (!rs)
		return 0;
	if (obj_int_at(rs, "status.observedGeneration", 0) < obj_int_at(rs, "metadata.generation", 0))
		return 0;
	return (int)obj_int_at(rs, "status.availableReplicas", 0);
}

static bool
rs_fully_available(const json_t *rs, int want)
{
	return rs && rs_spec_replicas(rs) == want && rs_available(rs) >= want;
}

/* Scales rs (in owned) to n, clearing a scale-down deadline. */
static void
scale_rs(struct rsync *s, json_t *rs, int n)
{
	json_t *ann = obj_get_path(rs, "metadata.annotations");
	bool had_deadline = json_object_get(ann, DEADLINE_ANN) != NULL;
	if (!rs || (rs_spec_replicas(rs) == n && !had_deadline))
		return;
	json_object_set_new(obj_child(rs, "spec"), "replicas", json_integer(n));
	json_object_del(ann, DEADLINE_ANN);
	push(s->out, RO_UPDATE, json_deep_copy(rs));
}

/* Scales rs down to 0 once delay_s has passed since we first decided to. */
static void
scale_down_later(struct rsync *s, json_t *rs, int64_t delay_s)
{
	if (rs_spec_replicas(rs) == 0)
		return;
	json_t *ann = obj_child(obj_child(rs, "metadata"), "annotations");
	int64_t deadline = obj_time_ms(json_object_get(ann, DEADLINE_ANN));
	if (delay_s <= 0 || (deadline && deadline <= s->now)) {
		scale_rs(s, rs, 0);
		return;
	}
	if (!deadline) {
		deadline = s->now + delay_s * 1000;
		json_object_set_new(ann, DEADLINE_ANN, obj_time_json(deadline));
		push(s->out, RO_UPDATE, json_deep_copy(rs));
	}
	requeue(s->out, deadline - s->now + 1000);
}

/* ---- ReplicaSets ------------------------------------------------------------ */

static int64_t
max_revision(struct rsync *s)
{
	int64_t max = 0;
	size_t i;
	json_t *rs;
	json_array_foreach(s->owned, i, rs) {
		const char *r = obj_annotation(rs, REV_ANN);
		int64_t v = r ? strtoll(r, NULL, 10) : 0;
		if (v > max)
			max = v;
	}
	return max;
}

static void
set_revision(json_t *rs, int64_t rev)
{
	char b[24];
	snprintf(b, sizeof b, "%lld", (long long)rev);
	json_object_set_new(obj_child(obj_child(rs, "metadata"), "annotations"), REV_ANN, json_string(b));
}

static json_t *
new_rs_object(struct rsync *s, int replicas)
{
	const json_t *spec = json_object_get(s->ro, "spec");
	json_t *tmpl = json_deep_copy(json_object_get(spec, "template"));
	json_t *sel = json_deep_copy(json_object_get(spec, "selector"));
	json_object_set_new(obj_child(obj_child(tmpl, "metadata"), "labels"), HASH_LABEL,
	    json_string(s->hash));
	json_object_set_new(obj_child(sel, "matchLabels"), HASH_LABEL, json_string(s->hash));
	json_t *labels = json_deep_copy(obj_get_path(tmpl, "metadata.labels"));
	char *name = xasprintf("%s-%s", obj_name(s->ro), s->hash);
	json_t *rs = json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:[o]}, s:{s:i, s:o, s:o, s:I}}",
	    "apiVersion", "apps/v1", "kind", "ReplicaSet",
	    "metadata", "name", name, "namespace", obj_namespace(s->ro), "labels", labels,
	    "ownerReferences", obj_new_controller_ref(s->ro),
	    "spec", "replicas", replicas, "selector", sel, "template", tmpl,
	    "minReadySeconds", (json_int_t)obj_int_at(spec, "minReadySeconds", 0));
	free(name);
	set_revision(rs, max_revision(s) + 1);
	return rs;
}

/* Makes sure the RS of the current template exists (created with replicas
 * pods) and carries the newest revision. */
static void
ensure_new_rs(struct rsync *s, int replicas)
{
	if (s->new_rs) {
		const char *r = obj_annotation(s->new_rs, REV_ANN);
		int64_t rev = r ? strtoll(r, NULL, 10) : 0, max = max_revision(s);
		if (rev < max || (rev == max && !r)) {
			set_revision(s->new_rs, max + 1);
			push(s->out, RO_UPDATE, json_deep_copy(s->new_rs));
		}
		return;
	}
	json_t *rs = new_rs_object(s, replicas);
	push(s->out, RO_CREATE, json_deep_copy(rs));
	json_array_append_new(s->owned, rs);
	s->new_rs = rs;
	event(s, "Normal", "RolloutUpdated", "Rollout updated to revision %s",
	    obj_annotation(rs, REV_ANN));
}

/* Old RSes beyond revisionHistoryLimit that are scaled down go. */
static void
cleanup_history(struct rsync *s)
{
	int64_t limit = obj_int_at(s->ro, "spec.revisionHistoryLimit", 10);
	size_t n = json_array_size(s->owned), old = 0, i;
	json_t *rs;
	json_array_foreach(s->owned, i, rs)
		if (rs != s->new_rs && rs != s->stable_rs && rs_spec_replicas(rs) == 0 &&
		    obj_int_at(rs, "status.replicas", 0) == 0)
			old++;
	for (i = 0; i < n && (int64_t)old > limit; i++) {
		int64_t min = INT64_MAX;
		json_t *victim = NULL;
		size_t k;
		json_array_foreach(s->owned, k, rs) {
			const char *r = obj_annotation(rs, REV_ANN);
			int64_t v = r ? strtoll(r, NULL, 10) : 0;
			if (rs != s->new_rs && rs != s->stable_rs && rs_spec_replicas(rs) == 0 &&
			    obj_int_at(rs, "status.replicas", 0) == 0 &&
			    !json_is_true(json_object_get(rs, "_deleted")) && v < min) {
				min = v;
				victim = rs;
			}
		}
		if (!victim)
			break;
		json_object_set_new(victim, "_deleted", json_true());
		push(s->out, RO_DELETE, json_deep_copy(victim));
		old--;
	}
}

/* ---- Services ------------------------------------------------------------- */

/* Points Service name at hash (selector rollouts-pod-template-hash). */
static void
point_service(struct rsync *s, const char *name, const char *hash)
{
	const json_t *svc = json_object_get(json_object_get(s->in, "services"), name);
	if (!name || !*name || !*hash || !svc)
		return;
	const char *cur = json_string_value(obj_get_path(svc, "spec.selector." HASH_LABEL));
	if (cur && !strcmp(cur, hash))
		return;
	json_t *copy = json_deep_copy(svc);
	json_object_set_new(obj_child(obj_child(copy, "spec"), "selector"), HASH_LABEL, json_string(hash));
	json_object_set_new(obj_child(obj_child(copy, "metadata"), "annotations"),
	    "argo-rollouts.argoproj.io/managed-by-rollouts", json_string(obj_name(s->ro)));
	push(s->out, RO_UPDATE, copy);
}

/* The Service's Endpoints list only ready pods of the RS with hash, and at
 * least one. */
static bool
endpoints_on(struct rsync *s, const char *svc, const char *hash)
{
	const json_t *ep = json_object_get(json_object_get(s->in, "endpoints"), svc), *sub, *a;
	char *prefix = xasprintf("%s-%s-", obj_name(s->ro), hash);
	size_t i, j, n = 0;
	bool ok = ep != NULL;
	json_array_foreach(obj_get_path(ep, "subsets"), i, sub)
		json_array_foreach(json_object_get(sub, "addresses"), j, a) {
			n++;
			if (strncmp(obj_str(json_object_get(a, "targetRef"), "name"), prefix,
			    strlen(prefix)) != 0)
				ok = false;
		}
	free(prefix);
	return ok && n > 0;
}

/* ---- status helpers --------------------------------------------------------- */

static json_t *
canary_status(struct rsync *s)
{
	return obj_child(s->st, "canary");
}

static int
current_weight(struct rsync *s)
{
	return (int)obj_int_at(s->st, "canary.weights.canary.weight", 0);
}

static void
set_weight(struct rsync *s, int w)
{
	const char *cs = obj_str(s->strat, "canaryService");
	const char *ss = obj_str(s->strat, "stableService");
	json_t *weights = json_pack("{s:{s:i, s:s, s:s}, s:{s:i, s:s, s:s}}",
	    "canary", "weight", w, "podTemplateHash", s->hash, "serviceName", cs,
	    "stable", "weight", 100 - w, "podTemplateHash", obj_str(s->st, "stableRS"),
	    "serviceName", ss);
	json_object_set_new(canary_status(s), "weights", weights);
}

static bool
paused_by_controller(struct rsync *s)
{
	return json_is_true(json_object_get(s->st, "controllerPause"));
}

static bool
has_pause_conditions(struct rsync *s)
{
	return json_array_size(json_object_get(s->st, "pauseConditions")) > 0;
}

static int64_t
pause_started(struct rsync *s)
{
	return obj_time_ms(json_object_get(json_array_get(json_object_get(s->st, "pauseConditions"),
	    0), "startTime"));
}

static void
add_pause(struct rsync *s, const char *reason)
{
	json_object_set_new(s->st, "pauseConditions", json_pack("[{s:s, s:o}]", "reason", reason,
	    "startTime", obj_time_json(s->now)));
	json_object_set_new(s->st, "controllerPause", json_true());
	event(s, "Normal", "RolloutPaused", "Rollout is paused (%s)", reason);
}

static void
clear_pause(struct rsync *s)
{
	json_object_del(s->st, "pauseConditions");
	json_object_del(s->st, "controllerPause");
}

/* A pause of ms (< 0: until promoted) for reason: true while the rollout
 * must wait (requeued for the rest of it), false once promoted or over (the
 * pause is then cleared). */
static bool
paused_for(struct rsync *s, const char *reason, int64_t ms)
{
	if (paused_by_controller(s) && !has_pause_conditions(s)) {
		clear_pause(s);		/* promoted */
		return false;
	}
	if (!has_pause_conditions(s))
		add_pause(s, reason);
	int64_t left = ms < 0 ? -1 : pause_started(s) + ms - s->now;
	if (ms < 0 || left > 0) {
		if (left > 0)
			requeue(s->out, left);
		return true;
	}
	clear_pause(s);
	return false;
}

static void
set_message(struct rsync *s, const char *fmt, ...) V6_PRINTF(2, 3);

static void
set_message(struct rsync *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *m = xvasprintf(fmt, ap);
	va_end(ap);
	json_object_set_new(s->st, "message", json_string(m));
	free(m);
}

/* Aborts the update: traffic back to stable at once, an Event. */
static void
do_abort(struct rsync *s, const char *why)
{
	json_object_set_new(s->st, "abort", json_true());
	if (!json_object_get(s->st, "abortedAt"))
		json_object_set_new(s->st, "abortedAt", obj_time_json(s->now));
	set_message(s, "RolloutAborted: %s", why);
	event(s, "Warning", "RolloutAborted", "Rollout aborted update to revision %s: %s",
	    obj_annotation(s->new_rs, REV_ANN), why);
}

static void sync_aborted(struct rsync *s);

/* ---- analysis ----------------------------------------------------------------- */

static const json_t *
find_run(struct rsync *s, const char *name)
{
	size_t i;
	const json_t *r;
	if (json_object_get(s->gone, name))
		return NULL;
	json_array_foreach(json_object_get(s->in, "analysisruns"), i, r)
		if (!strcmp(obj_name(r), name))
			return r;
	return NULL;
}

/* value of an arg from valueFrom (podTemplateHashValue, fieldRef). */
static char *
arg_value(struct rsync *s, const json_t *arg)
{
	const json_t *vf = json_object_get(arg, "valueFrom");
	if (json_is_string(json_object_get(arg, "value")))
		return xstrdup(obj_str(arg, "value"));
	if (!vf)
		return NULL;
	const char *h = obj_str(vf, "podTemplateHashValue");
	if (!strcmp(h, "Stable"))
		return xstrdup(obj_str(s->st, "stableRS"));
	if (!strcmp(h, "Latest"))
		return xstrdup(s->hash);
	const char *fp = obj_str(json_object_get(vf, "fieldRef"), "fieldPath");
	if (!strncmp(fp, "metadata.labels['", 17) || !strncmp(fp, "metadata.annotations['", 22)) {
		bool lab = fp[9] == 'l';
		const char *k = fp + (lab ? 17 : 22);
		char *key = xstrndup(k, strcspn(k, "'"));
		const char *v = json_string_value(json_object_get(obj_get_path(s->ro, lab ?
		    "metadata.labels" : "metadata.annotations"), key));
		free(key);
		return v ? xstrdup(v) : NULL;
	}
	const json_t *v = *fp ? obj_get_path(s->ro, fp) : NULL;
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_integer(v))
		return xasprintf("%lld", (long long)json_integer_value(v));
	return NULL;
}

/* The AnalysisRun for ref ({templates, args}) named name, or NULL with *err. */
static json_t *
build_run(struct rsync *s, const json_t *ref, const char *name, const char *type, char **err)
{
	json_t *metrics = json_array(), *args = json_object(), *arr;
	const json_t *tr, *a, *m;
	size_t i, j;
	json_array_foreach(json_object_get(ref, "templates"), i, tr) {
		bool cluster = json_is_true(json_object_get(tr, "clusterScope"));
		const json_t *t = json_object_get(json_object_get(s->in, cluster ?
		    "clustertemplates" : "templates"), obj_str(tr, "templateName"));
		if (!t) {
			*err = xasprintf("%sAnalysisTemplate \"%s\" not found", cluster ? "Cluster" : "",
			    obj_str(tr, "templateName"));
			goto fail;
		}
		json_array_foreach(obj_get_path(t, "spec.metrics"), j, m)
			json_array_append(metrics, (json_t *)m);
		json_array_foreach(obj_get_path(t, "spec.args"), j, a) {
			char *v = arg_value(s, a);
			if (!json_object_get(args, obj_str(a, "name")) || v)
				json_object_set_new(args, obj_str(a, "name"), v ? json_string(v) :
				    json_null());
			free(v);
		}
	}
	json_array_foreach(json_object_get(ref, "args"), i, a) {
		char *v = arg_value(s, a);
		json_object_set_new(args, obj_str(a, "name"), v ? json_string(v) : json_null());
		free(v);
	}
	arr = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(args, k, v) {
		if (json_is_null(v)) {
			*err = xasprintf("argument \"%s\" has no value", k);
			json_decref(arr);
			goto fail;
		}
		json_array_append_new(arr, json_pack("{s:s, s:O}", "name", k, "value", v));
	}
	json_decref(args);
	return json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}, s:[o]}, s:{s:o, s:o}}",
	    "apiVersion", ARGO, "kind", "AnalysisRun",
	    "metadata", "name", name, "namespace", obj_namespace(s->ro),
	    "labels", HASH_LABEL, s->hash, "rollout-type", type,
	    "ownerReferences", obj_new_controller_ref(s->ro),
	    "spec", "metrics", metrics, "args", arr);
fail:
	json_decref(metrics);
	json_decref(args);
	return NULL;
}

enum run_state { RUN_WAIT, RUN_OK, RUN_FAILED, RUN_INCONCLUSIVE };

/* Starts (once) or reads the run "NAME-HASH-REVISION-suffix" for ref;
 * reports it in status[field]. The revision, as in Argo's run names, keeps
 * the runs of each rollout of a template apart: bringing a template back
 * gives its ReplicaSet a new revision, so it never meets the finished runs
 * of an earlier attempt. */
static enum run_state
run_analysis(struct rsync *s, const json_t *ref, const char *suffix, const char *type,
    json_t *report, const char *field, char **why)
{
	const char *rev = obj_annotation(s->new_rs, REV_ANN);
	char *name = xasprintf("%s-%s-%s-%s", obj_name(s->ro), s->hash, rev ? rev : "0", suffix);
	const json_t *run = find_run(s, name);
	enum run_state rs = RUN_WAIT;
	if (!run) {
		char *err = NULL;
		json_t *r = build_run(s, ref, name, type, &err);
		if (!r) {
			*why = xasprintf("analysis %s: %s", name, err);
			free(err);
			free(name);
			return RUN_FAILED;
		}
		push(s->out, RO_CREATE, r);
		json_object_set_new(report, field, json_pack("{s:s, s:s}", "name", name,
		    "status", "Pending"));
		free(name);
		return RUN_WAIT;
	}
	const char *phase = json_string_value(obj_get_path(run, "status.phase"));
	if (!phase)
		phase = "Pending";
	json_object_set_new(report, field, json_pack("{s:s, s:s, s:s}", "name", name,
	    "status", phase, "message", json_string_value(obj_get_path(run,
	    "status.message")) ? json_string_value(obj_get_path(run, "status.message")) : ""));
	if (!strcmp(phase, "Successful"))
		rs = RUN_OK;
	else if (!strcmp(phase, "Failed") || !strcmp(phase, "Error")) {
		const char *m = json_string_value(obj_get_path(run, "status.message"));
		*why = xasprintf("analysis run %s %s%s%s", name, phase, m ? ": " : "", m ? m : "");
		rs = RUN_FAILED;
	} else if (!strcmp(phase, "Inconclusive"))
		rs = RUN_INCONCLUSIVE;
	free(name);
	return rs;
}

/* Terminates every running AnalysisRun of ours except those of keep_hash
 * (NULL: all). */
static void
terminate_runs(struct rsync *s, const char *keep_hash, const char *only_suffix)
{
	size_t i;
	const json_t *r;
	json_array_foreach(json_object_get(s->in, "analysisruns"), i, r) {
		const json_t *ref = obj_controller_ref(r);
		const char *ph = json_string_value(obj_get_path(r, "status.phase"));
		const char *h = json_string_value(json_object_get(obj_labels(r), HASH_LABEL));
		if (!ref || strcmp(obj_str(ref, "uid"), obj_uid(s->ro)) != 0)
			continue;
		if (ph && strcmp(ph, "Running") && strcmp(ph, "Pending"))
			continue;
		if (json_is_true(obj_get_path(r, "spec.terminate")))
			continue;
		if (keep_hash && h && !strcmp(h, keep_hash) && (!only_suffix ||
		    !str_has_suffix(obj_name(r), only_suffix)))
			continue;
		json_t *c = json_deep_copy(r);
		json_object_set_new(obj_child(c, "spec"), "terminate", json_true());
		push(s->out, RO_UPDATE, c);
	}
}

/* Deletes the finished runs of the current hash (retry starts them anew). */
static void
delete_finished_runs(struct rsync *s)
{
	size_t i;
	const json_t *r;
	json_array_foreach(json_object_get(s->in, "analysisruns"), i, r) {
		const json_t *ref = obj_controller_ref(r);
		const char *h = json_string_value(json_object_get(obj_labels(r), HASH_LABEL));
		if (ref && !strcmp(obj_str(ref, "uid"), obj_uid(s->ro)) && h &&
		    !strcmp(h, s->hash)) {
			push(s->out, RO_DELETE, json_deep_copy(r));
			json_object_set_new(s->gone, obj_name(r), json_true());
		}
	}
}

/* Starts or reads the run for ref (run_analysis); a failed one aborts the
 * update at once: traffic back to stable in this very sync. */
static enum run_state
gate_analysis(struct rsync *s, const json_t *ref, const char *suffix, const char *type,
    json_t *report, const char *field)
{
	char *why = NULL;
	enum run_state r = run_analysis(s, ref, suffix, type, report, field, &why);
	if (r == RUN_FAILED) {
		do_abort(s, why);
		sync_aborted(s);
	}
	free(why);
	return r;
}

/* ---- canary -------------------------------------------------------------------- */

static const json_t *
steps(struct rsync *s)
{
	return json_object_get(s->strat, "steps");
}

static bool
traffic_routed(struct rsync *s)
{
	return *obj_str(s->strat, "canaryService") && *obj_str(s->strat, "stableService");
}

/* The proxy has yet to apply the routes an earlier sync published. */
static bool
routes_pending(struct rsync *s)
{
	return json_is_true(json_object_get(s->in, "routesPending"));
}

/* The canary's pod count at step index idx with traffic weight w: the last
 * setCanaryScale before idx decides, else the weight. */
static int
canary_replicas(struct rsync *s, size_t idx, int w)
{
	const json_t *scale = NULL, *st;
	size_t i;
	json_array_foreach(steps(s), i, st) {
		if (i >= idx)
			break;
		if (json_object_get(st, "setCanaryScale"))
			scale = json_object_get(st, "setCanaryScale");
		if (json_object_get(st, "setWeight") && scale &&
		    json_is_true(json_object_get(scale, "matchTrafficWeight")))
			scale = NULL;
	}
	if (scale && json_is_integer(json_object_get(scale, "replicas")))
		return (int)json_integer_value(json_object_get(scale, "replicas"));
	if (scale && json_is_integer(json_object_get(scale, "weight")))
		w = (int)json_integer_value(json_object_get(scale, "weight"));
	return (int)(((int64_t)s->replicas * w + 99) / 100);
}

/* setHeaderRoute: replace / add / (empty match) remove by name. */
static void
header_route(struct rsync *s, const json_t *hr)
{
	json_t *cs = canary_status(s);
	json_t *routes = json_object_get(cs, "headerRoutes"), *out = json_array(), *r;
	size_t i;
	json_array_foreach(routes, i, r)
		if (strcmp(obj_str(r, "name"), obj_str(hr, "name")) != 0)
			json_array_append(out, r);
	if (json_array_size(json_object_get(hr, "match")) > 0)
		json_array_append_new(out, json_deep_copy(hr));
	if (json_array_size(out))
		json_object_set_new(cs, "headerRoutes", out);
	else {
		json_object_del(cs, "headerRoutes");
		json_decref(out);
	}
}

/* Stable pods while the canary runs: all of them with traffic routing
 * (unless dynamicStableScale), else the rest of spec.replicas. */
static int
stable_replicas(struct rsync *s, int canary)
{
	if (traffic_routed(s) && !json_is_true(json_object_get(s->strat, "dynamicStableScale")))
		return s->replicas;
	int n = s->replicas - canary;
	return n < 0 ? 0 : n;
}

static int
fencepost(const json_t *v, int total, bool round_up)
{
	if (json_is_integer(v))
		return (int)json_integer_value(v);
	const char *p = json_string_value(v);
	long long x = p ? strtoll(p, NULL, 10) * total : 0;
	return (int)(round_up ? (x + 99) / 100 : x / 100);
}

/* Basic canary (no traffic routing): the weight is the share of pods. The
 * canary grows and the stable shrinks within maxSurge (pods above
 * spec.replicas) and maxUnavailable (available pods below it), as Argo's
 * basic canary does; true once both have their final counts. */
static bool
reach_pod_share(struct rsync *s, int c)
{
	int surge = fencepost(json_object_get(s->strat, "maxSurge"), s->replicas, true);
	int unavail = fencepost(json_object_get(s->strat, "maxUnavailable"), s->replicas, false);
	bool split = s->stable_rs && s->stable_rs != s->new_rs;
	int cur_c = rs_spec_replicas(s->new_rs), cur_s = split ? rs_spec_replicas(s->stable_rs) : 0;
	int want_s = split ? stable_replicas(s, c) : 0;
	if (surge == 0 && unavail == 0)
		surge = 1;	/* Argo refuses both 0; never deadlock */
	int up = c;
	if (c > cur_c) {
		int room = s->replicas + surge - (cur_c + cur_s);
		up = cur_c + (room > 0 ? room : 0);
		if (up > c)
			up = c;
	}
	scale_rs(s, s->new_rs, up);
	if (split) {
		int down = want_s;
		if (want_s < cur_s) {
			int avail = rs_available(s->new_rs) + rs_available(s->stable_rs);
			int spare = avail - (s->replicas - unavail);
			down = cur_s - (spare > 0 ? spare : 0);
			if (down < want_s)
				down = want_s;
		}
		scale_rs(s, s->stable_rs, down);
		if (down != want_s)
			return false;
	}
	return up == c && rs_fully_available(s->new_rs, c);
}

/* The canary is at weight w with c pods (scaled up first, stable scaled
 * down only once the canary is available); true when done. */
static bool
reach_weight(struct rsync *s, int w, int c)
{
	if (!traffic_routed(s))
		return reach_pod_share(s, c);
	scale_rs(s, s->new_rs, c);
	if (!rs_fully_available(s->new_rs, c))
		return false;
	if (traffic_routed(s) && w > 0 && c > 0 &&
	    !endpoints_on(s, obj_str(s->strat, "canaryService"), s->hash)) {
		requeue(s->out, 200);
		return false;
	}
	if (s->stable_rs && s->stable_rs != s->new_rs) {
		int sr = stable_replicas(s, traffic_routed(s) ? (int)(((int64_t)s->replicas * w + 99)
		    / 100) : c);
		if (traffic_routed(s) && current_weight(s) < w && sr < rs_spec_replicas(s->stable_rs))
			sr = rs_spec_replicas(s->stable_rs);	/* shift traffic before pods */
		scale_rs(s, s->stable_rs, sr);
	}
	if (traffic_routed(s) && current_weight(s) != w) {
		set_weight(s, w);
		s->out->await_routes = true;
		return false;
	}
	/* the weight is published; the step is done once the proxy routes by it */
	return !routes_pending(s);
}

/* While a pause holds the canary, spec.replicas may change (an HPA scales
 * the Rollout): both ReplicaSets follow at the weight already set, as
 * Argo's syncReplicasOnly does; the weight stays. */
static void
keep_counts(struct rsync *s, size_t idx)
{
	if (!traffic_routed(s) || !s->new_rs || s->stable_rs == s->new_rs)
		return;
	int c = canary_replicas(s, idx, current_weight(s));
	scale_rs(s, s->new_rs, c);
	if (s->stable_rs)
		scale_rs(s, s->stable_rs, stable_replicas(s, c));
}

static void
step_done(struct rsync *s, size_t idx, const char *what)
{
	json_object_set_new(s->st, "currentStepIndex", json_integer((json_int_t)idx + 1));
	event(s, "Normal", "RolloutStepCompleted", "Rollout step %zu/%zu completed (%s)", idx + 1,
	    json_array_size(steps(s)), what);
}

/* Final step of a canary: the new pods take over the stable Service. */
static bool
canary_promote(struct rsync *s)
{
	if (!reach_weight(s, 100, s->replicas))
		return false;
	if (traffic_routed(s)) {
		const char *ss = obj_str(s->strat, "stableService");
		point_service(s, ss, s->hash);
		if (!endpoints_on(s, ss, s->hash)) {
			requeue(s->out, 200);
			return false;
		}
	} else if (s->stable_rs && s->stable_rs != s->new_rs)
		scale_rs(s, s->stable_rs, 0);
	return true;
}

static void
sync_canary(struct rsync *s)
{
	size_t n = json_array_size(steps(s));
	size_t idx = (size_t)obj_int_at(s->st, "currentStepIndex", 0);
	const json_t *bg = json_object_get(s->strat, "analysis");
	if (idx > n)
		idx = n;
	bool promoting = idx >= n || json_is_true(json_object_get(s->st, "promoteFull"));
	if (traffic_routed(s)) {
		/* while promoting, canary_promote moves the stable Service */
		if (!promoting)
			point_service(s, obj_str(s->strat, "stableService"),
			    obj_str(s->st, "stableRS"));
		point_service(s, obj_str(s->strat, "canaryService"), s->hash);
	}
	if (bg && (int64_t)idx >= obj_int_at(bg, "startingStep", 0)) {
		enum run_state r = gate_analysis(s, bg, "bg", "Background", canary_status(s),
		    "currentBackgroundAnalysisRunStatus");
		if (r == RUN_FAILED)
			return;
	}
	if (json_is_true(json_object_get(s->st, "promoteFull"))) {
		idx = n;
		clear_pause(s);
	}
	for (size_t guard = 0; idx < n && guard <= n; guard++) {
		const json_t *st = json_array_get(steps(s), idx);
		const json_t *v;
		json_object_set_new(s->st, "currentStepIndex", json_integer((json_int_t)idx));
		if ((v = json_object_get(st, "setWeight"))) {
			int w = (int)json_integer_value(v);
			if (!reach_weight(s, w, canary_replicas(s, idx, w)))
				goto progressing;
			char what[32];
			snprintf(what, sizeof what, "setWeight %d", w);
			step_done(s, idx, what);
		} else if ((v = json_object_get(st, "pause"))) {
			const json_t *d = json_object_get(v, "duration");
			int64_t ms = -1;
			if (json_is_integer(d))
				ms = json_integer_value(d) * 1000;
			else if (json_is_string(d) && duration_parse(json_string_value(d), &ms) < 0)
				ms = -1;
			keep_counts(s, idx);
			if (paused_for(s, "CanaryPauseStep", ms))
				return;
			step_done(s, idx, "pause");
		} else if (json_object_get(st, "setCanaryScale")) {
			int c = canary_replicas(s, idx + 1, current_weight(s));
			scale_rs(s, s->new_rs, c);
			if (!rs_fully_available(s->new_rs, c))
				goto progressing;
			if (traffic_routed(s) && c > 0 && !endpoints_on(s,
			    obj_str(s->strat, "canaryService"), s->hash)) {
				requeue(s->out, 200);
				goto progressing;
			}
			step_done(s, idx, "setCanaryScale");
		} else if ((v = json_object_get(st, "setHeaderRoute"))) {
			/* done once the proxy routes by it (testers rely on it) */
			json_t *before = json_deep_copy(json_object_get(canary_status(s),
			    "headerRoutes"));
			header_route(s, v);
			bool changed = !json_equal(before, json_object_get(canary_status(s),
			    "headerRoutes")) && !(before == NULL && json_object_get(canary_status(s),
			    "headerRoutes") == NULL);
			json_decref(before);
			if (changed && traffic_routed(s)) {
				s->out->await_routes = true;
				goto progressing;
			}
			if (routes_pending(s))
				goto progressing;
			step_done(s, idx, "setHeaderRoute");
		} else if ((v = json_object_get(st, "analysis"))) {
			char suffix[24];
			snprintf(suffix, sizeof suffix, "%zu", idx);
			enum run_state r = gate_analysis(s, v, suffix, "Step", canary_status(s),
			    "currentStepAnalysisRunStatus");
			if (r == RUN_FAILED)
				return;
			if (r == RUN_INCONCLUSIVE) {
				if (paused_for(s, "InconclusiveAnalysis", -1))
					return;
			} else if (r == RUN_WAIT)
				goto progressing;
			step_done(s, idx, "analysis");
		} else
			step_done(s, idx, "unknown");
		idx++;
	}
	json_object_set_new(s->st, "currentStepIndex", json_integer((json_int_t)n));
	if (!canary_promote(s))
		goto progressing;
	/* Promoted: the new RS is the stable one. */
	json_object_set_new(s->st, "stableRS", json_string(s->hash));
	json_object_del(canary_status(s), "headerRoutes");
	set_weight(s, 0);
	json_object_del(s->st, "promoteFull");
	terminate_runs(s, NULL, NULL);
	event(s, "Normal", "RolloutCompleted", "Rollout completed update to revision %s "
	    "(%s): promoted to stable", obj_annotation(s->new_rs, REV_ANN), s->hash);
	s->stable_rs = s->new_rs;
	return;
progressing:
	set_message(s, "more replicas need to be updated");
}

/* ---- blue-green ------------------------------------------------------------------ */

static json_t *
bg_status(struct rsync *s)
{
	return obj_child(s->st, "blueGreen");
}

static void
sync_bluegreen(struct rsync *s)
{
	const char *active = obj_str(s->strat, "activeService");
	const char *preview = obj_str(s->strat, "previewService");
	const json_t *prc = json_object_get(s->strat, "previewReplicaCount");
	int pre_n = json_is_integer(prc) ? (int)json_integer_value(prc) : s->replicas;
	bool full = json_is_true(json_object_get(s->st, "promoteFull"));
	bool switched = !strcmp(obj_str(bg_status(s), "activeSelector"), s->hash);
	if (full)
		clear_pause(s);
	if (s->stable_rs)
		scale_rs(s, s->stable_rs, s->replicas);
	point_service(s, preview, s->hash);
	json_object_set_new(bg_status(s), "previewSelector", json_string(s->hash));
	if (!switched) {
		int n = full ? s->replicas : pre_n;
		if (rs_spec_replicas(s->new_rs) < n || !paused_by_controller(s))
			scale_rs(s, s->new_rs, n > rs_spec_replicas(s->new_rs) ? n :
			    rs_spec_replicas(s->new_rs));
		if (!rs_fully_available(s->new_rs, rs_spec_replicas(s->new_rs)) ||
		    rs_available(s->new_rs) < n)
			goto progressing;
		const json_t *pre = json_object_get(s->strat, "prePromotionAnalysis");
		if (pre && !full) {
			enum run_state r = gate_analysis(s, pre, "pre", "PrePromotion", bg_status(s),
			    "prePromotionAnalysisRunStatus");
			if (r == RUN_FAILED)
				return;
			if (r != RUN_OK)
				goto progressing;
		}
		bool auto_on = !json_is_false(json_object_get(s->strat, "autoPromotionEnabled"));
		int64_t aps = obj_int_at(s->strat, "autoPromotionSeconds", 0);
		bool resumed = json_is_true(json_object_get(bg_status(s),
		    "scaleUpPreviewCheckPoint"));
		if (!full && !resumed && (!auto_on || aps > 0) &&
		    paused_for(s, "BlueGreenPause", aps > 0 ? aps * 1000 : -1))
			return;
		clear_pause(s);
		/* past the pause for good: scale the preview up, then switch */
		json_object_set_new(bg_status(s), "scaleUpPreviewCheckPoint", json_true());
		scale_rs(s, s->new_rs, s->replicas);
		if (!rs_fully_available(s->new_rs, s->replicas))
			goto progressing;
		point_service(s, active, s->hash);
		json_object_set_new(bg_status(s), "activeSelector", json_string(s->hash));
		event(s, "Normal", "SwitchService", "Switched selector for service '%s' from '%s' "
		    "to '%s'", active, obj_str(s->st, "stableRS"), s->hash);
		s->out->await_routes = true;
		return;
	}
	if (!endpoints_on(s, active, s->hash)) {
		requeue(s->out, 100);	/* the switch has not reached the Endpoints yet */
		goto progressing;
	}
	const json_t *post = json_object_get(s->strat, "postPromotionAnalysis");
	if (post && !full) {
		enum run_state r = gate_analysis(s, post, "post", "PostPromotion", bg_status(s),
		    "postPromotionAnalysisRunStatus");
		if (r == RUN_FAILED)
			return;
		if (r != RUN_OK)
			goto progressing;
	}
	json_object_set_new(s->st, "stableRS", json_string(s->hash));
	json_object_del(s->st, "promoteFull");
	event(s, "Normal", "RolloutCompleted", "Rollout completed update to revision %s (%s)",
	    obj_annotation(s->new_rs, REV_ANN), s->hash);
	s->stable_rs = s->new_rs;
	return;
progressing:
	set_message(s, "waiting for the new ReplicaSet to become available");
}

/* ---- aborted, stable -------------------------------------------------------------- */

static void
sync_aborted(struct rsync *s)
{
	const char *stable = obj_str(s->st, "stableRS");
	if (!json_object_get(s->st, "abortedAt"))
		do_abort(s, "aborted by the user");
	if (s->canary) {
		if (current_weight(s) != 0)
			set_weight(s, 0);
		json_object_del(canary_status(s), "headerRoutes");
		if (traffic_routed(s))
			point_service(s, obj_str(s->strat, "stableService"), stable);
	} else {
		point_service(s, obj_str(s->strat, "activeService"), stable);
		json_object_set_new(bg_status(s), "activeSelector", json_string(stable));
	}
	if (s->stable_rs)
		scale_rs(s, s->stable_rs, s->replicas);
	clear_pause(s);
	terminate_runs(s, NULL, NULL);
	/* abortScaleDownDelaySeconds 0 keeps the aborted pods (Argo) */
	int64_t delay = obj_int_at(s->strat, "abortScaleDownDelaySeconds", 30);
	if (s->new_rs && s->new_rs != s->stable_rs && delay > 0)
		scale_down_later(s, s->new_rs, delay);
}

/* Everything that is neither stable nor new goes down (after the delay that
 * keeps a quick switch-back possible). */
static void
scale_down_others(struct rsync *s)
{
	size_t i;
	json_t *rs;
	int64_t delay = s->bg || traffic_routed(s) ?
	    obj_int_at(s->strat, "scaleDownDelaySeconds", 30) : 0;
	json_array_foreach(s->owned, i, rs)
		if (rs != s->new_rs && rs != s->stable_rs) {
			/* an intermediate canary never served as stable: at once */
			bool was_stable = json_object_get(obj_get_path(rs, "metadata.annotations"),
			    DEADLINE_ANN) || rs_spec_replicas(rs) == s->replicas;
			scale_down_later(s, rs, was_stable ? delay : 0);
		}
}

static void
sync_stable(struct rsync *s)
{
	scale_rs(s, s->new_rs, s->replicas);
	if (s->canary) {
		if (current_weight(s) != 0 || !json_object_get(canary_status(s), "weights"))
			set_weight(s, 0);
		json_object_del(canary_status(s), "headerRoutes");
		point_service(s, obj_str(s->strat, "stableService"), s->hash);
		point_service(s, obj_str(s->strat, "canaryService"), s->hash);
		json_object_set_new(s->st, "currentStepIndex",
		    json_integer((json_int_t)json_array_size(steps(s))));
	} else {
		point_service(s, obj_str(s->strat, "activeService"), s->hash);
		point_service(s, obj_str(s->strat, "previewService"), s->hash);
		json_object_set_new(bg_status(s), "activeSelector", json_string(s->hash));
		json_object_set_new(bg_status(s), "previewSelector", json_string(s->hash));
	}
	clear_pause(s);
	json_object_del(s->st, "abort");
	json_object_del(s->st, "abortedAt");
	json_object_del(s->st, "promoteFull");
	terminate_runs(s, NULL, NULL);
}

/* ---- status --------------------------------------------------------------------- */

static void
count_replicas(struct rsync *s)
{
	int64_t rep = 0, ready = 0, avail = 0;
	size_t i;
	json_t *rs;
	json_array_foreach(s->owned, i, rs) {
		rep += obj_int_at(rs, "status.replicas", 0);
		ready += obj_int_at(rs, "status.readyReplicas", 0);
		avail += obj_int_at(rs, "status.availableReplicas", 0);
	}
	json_object_set_new(s->st, "replicas", json_integer(rep));
	json_object_set_new(s->st, "readyReplicas", json_integer(ready));
	json_object_set_new(s->st, "availableReplicas", json_integer(avail));
	json_object_set_new(s->st, "updatedReplicas",
	    json_integer(s->new_rs ? obj_int_at(s->new_rs, "status.replicas", 0) : 0));
	char sel[256];
	snprintf(sel, sizeof sel, "%s", "");
	const json_t *ml = obj_get_path(s->ro, "spec.selector.matchLabels");
	const char *k;
	json_t *v;
	size_t off = 0;
	json_object_foreach((json_t *)ml, k, v)
		off += (size_t)snprintf(sel + off, off < sizeof sel ? sizeof sel - off : 0, "%s%s=%s",
		    off ? "," : "", k, json_string_value(v));
	json_object_set_new(s->st, "selector", json_string(sel));
}

/* The Progressing condition: its lastUpdateTime moves whenever the step, the
 * weight, the pause or a replica count moved since orig (the stored status). */
static int64_t
progressed_at(struct rsync *s, const json_t *orig)
{
	static const char *const marks[] = { "currentPodHash", "currentStepIndex",
		"canary.weights.canary.weight", "updatedReplicas", "readyReplicas",
		"availableReplicas", "pauseConditions", "abort", "stableRS" };
	const json_t *c = json_array_get(json_object_get(orig, "conditions"), 0);
	int64_t at = obj_time_ms(json_object_get(c, "lastUpdateTime"));
	for (size_t i = 0; i < ARRAY_SIZE(marks); i++) {
		const json_t *a = obj_get_path(orig, marks[i]), *b = obj_get_path(s->st, marks[i]);
		if (!at || !((!a && !b) || (a && b && json_equal((json_t *)a, (json_t *)b))))
			return s->now;
	}
	return at;
}

static void
set_progressing(struct rsync *s, int64_t at, bool ok, const char *reason, const char *msg)
{
	json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "type", "Progressing",
	    "status", ok ? "True" : "False", "reason", reason, "message", msg,
	    "lastUpdateTime", obj_time_json(at), "lastTransitionTime", obj_time_json(at));
	const json_t *old = json_array_get(json_object_get(s->st, "conditions"), 0);
	if (old && !strcmp(obj_str(old, "status"), obj_str(c, "status")))
		json_object_set(c, "lastTransitionTime", json_object_get(old, "lastTransitionTime"));
	json_object_set_new(s->st, "conditions", json_pack("[o]", c));
}

static void
set_phase(struct rsync *s, const json_t *orig)
{
	const char *phase;
	bool done = !strcmp(obj_str(s->st, "stableRS"), s->hash);
	int64_t at = progressed_at(s, orig);
	int64_t deadline = obj_int_at(s->ro, "spec.progressDeadlineSeconds", 600) * 1000;
	if (json_is_true(json_object_get(s->st, "abort")))
		phase = "Degraded";
	else if (json_is_true(obj_get_path(s->ro, "spec.paused")) || has_pause_conditions(s))
		phase = "Paused";
	else if (done && rs_fully_available(s->new_rs, s->replicas) &&
	    (s->bg || traffic_routed(s) || obj_int_at(s->st, "replicas", 0) == s->replicas))
		phase = "Healthy";	/* old pods in their scale-down delay serve nothing */
	else if (s->now - at > deadline)
		phase = "Degraded";
	else {
		phase = "Progressing";
		requeue(s->out, at + deadline - s->now + 1000);
	}
	json_object_set_new(s->st, "phase", json_string(phase));
	if (!strcmp(phase, "Healthy")) {
		json_object_set_new(s->st, "message", json_string(""));
		set_progressing(s, at, true, "NewReplicaSetAvailable", "Rollout is healthy");
	} else if (!strcmp(phase, "Paused")) {
		set_message(s, "%s", json_is_true(obj_get_path(s->ro, "spec.paused")) ?
		    "rollout is paused by the user" : obj_str(json_array_get(json_object_get(s->st,
		    "pauseConditions"), 0), "reason"));
		set_progressing(s, at, true, "RolloutPaused", "Rollout is paused");
	} else if (!strcmp(phase, "Degraded") && !json_is_true(json_object_get(s->st, "abort"))) {
		set_message(s, "ProgressDeadlineExceeded: ReplicaSet \"%s-%s\" has timed out "
		    "progressing.", obj_name(s->ro), s->hash);
		set_progressing(s, at, false, "ProgressDeadlineExceeded", obj_str(s->st, "message"));
		if (json_is_true(obj_get_path(s->ro, "spec.progressDeadlineAbort")))
			do_abort(s, "progress deadline exceeded");
	} else if (!strcmp(phase, "Degraded"))
		set_progressing(s, at, false, "RolloutAborted", obj_str(s->st, "message"));
	else
		set_progressing(s, at, true, "ReplicaSetUpdated", obj_str(s->st, "message"));
	char gen[24];
	snprintf(gen, sizeof gen, "%lld", (long long)obj_int_at(s->ro, "metadata.generation", 0));
	json_object_set_new(s->st, "observedGeneration", json_string(gen));
}

/* ---- the decision ------------------------------------------------------------------ */

static void
claim(struct rsync *s)
{
	size_t i;
	const json_t *rs;
	json_array_foreach(json_object_get(s->in, "replicasets"), i, rs) {
		const json_t *ref = obj_controller_ref(rs);
		if (ref && !strcmp(obj_str(ref, "uid"), obj_uid(s->ro)) &&
		    !obj_get_path(rs, "metadata.deletionTimestamp"))
			json_array_append_new(s->owned, json_deep_copy(rs));
	}
}

/* A template the user brought back to an existing RS keeps that RS. */
static void
find_new_rs(struct rsync *s)
{
	int64_t coll = obj_int_at(s->st, "collisionCount", -1);
	deploy_template_hash(obj_get_path(s->ro, "spec.template"), coll, s->hash);
	s->new_rs = owned_by_hash(s, s->hash);
	s->stable_rs = owned_by_hash(s, obj_str(s->st, "stableRS"));
}

/* A different template than the one in progress starts a new rollout: the
 * step state, abort and pauses reset (a broken version never blocks its
 * own fix). */
static void
maybe_new_rollout(struct rsync *s)
{
	const char *cur = obj_str(s->st, "currentPodHash");
	bool retry = json_object_get(s->st, "abortedAt") &&
	    !json_is_true(json_object_get(s->st, "abort"));
	if (!strcmp(cur, s->hash) && !retry)
		return;
	if (retry) {
		delete_finished_runs(s);
		event(s, "Normal", "RolloutRetried", "Rollout retried update to %s", s->hash);
	}
	json_object_set_new(s->st, "currentPodHash", json_string(s->hash));
	json_object_set_new(s->st, "currentStepIndex", json_integer(0));
	clear_pause(s);
	json_object_del(s->st, "abort");
	json_object_del(s->st, "abortedAt");
	json_object_del(s->st, "promoteFull");
	json_object_del(s->st, "message");
	json_t *c = json_object_get(s->st, "canary");
	if (c) {
		json_object_del(c, "currentStepAnalysisRunStatus");
		json_object_del(c, "currentBackgroundAnalysisRunStatus");
		json_object_del(c, "headerRoutes");
	}
	json_t *b = json_object_get(s->st, "blueGreen");
	if (b) {
		json_object_del(b, "scaleUpPreviewCheckPoint");
		json_object_del(b, "prePromotionAnalysisRunStatus");
		json_object_del(b, "postPromotionAnalysisRunStatus");
	}
	if (s->canary && current_weight(s) != 0)
		set_weight(s, 0);
	if (!retry)
		terminate_runs(s, s->hash, NULL);
}

int
rollout_decide(const json_t *rollout, const json_t *in, int64_t now_ms,
    struct rollout_actions *out)
{
	struct rsync s = { .ro = json_deep_copy(rollout), .in = in, .now = now_ms, .out = out,
		.owned = json_array(), .gone = json_object() };
	memset(out, 0, sizeof *out);
	s.st = obj_child(s.ro, "status");
	json_t *orig = json_deep_copy(s.st);
	const json_t *strat = obj_get_path(s.ro, "spec.strategy");
	s.canary = json_object_get(strat, "canary") != NULL;
	s.bg = !s.canary;
	s.strat = json_object_get(strat, s.canary ? "canary" : "blueGreen");
	s.replicas = (int)obj_int_at(s.ro, "spec.replicas", 1);
	if (obj_get_path(s.ro, "metadata.deletionTimestamp"))
		goto out;
	claim(&s);
	find_new_rs(&s);
	bool first = !*obj_str(s.st, "stableRS") || !s.stable_rs;
	maybe_new_rollout(&s);
	if (first) {
		/* Nothing stable yet: the first template is the stable one. */
		ensure_new_rs(&s, s.replicas);
		json_object_set_new(s.st, "stableRS", json_string(s.hash));
		s.stable_rs = s.new_rs;
	} else
		ensure_new_rs(&s, 0);
	if (json_is_true(obj_get_path(s.ro, "spec.paused"))) {
		/* user pause: hold everything where it is */
	} else if (s.new_rs == s.stable_rs)
		sync_stable(&s);
	else if (json_is_true(json_object_get(s.st, "abort")))
		sync_aborted(&s);
	else if (s.canary)
		sync_canary(&s);
	else
		sync_bluegreen(&s);
	if (!json_is_true(obj_get_path(s.ro, "spec.paused")))
		scale_down_others(&s);
	cleanup_history(&s);
	count_replicas(&s);
	set_phase(&s, orig);
	if (!json_equal(orig, s.st))
		push(out, RO_STATUS, json_deep_copy(s.ro));
out:
	json_decref(orig);
	json_decref(s.ro);
	json_decref(s.owned);
	json_decref(s.gone);
	return 0;
}

/* ---- the adapter on the controller core ---------------------------------------------- */

struct ctrl_rollout {
	struct ctrl *core;
	ctrl_routes_wait_fn *routes_wait;
	void *routes_wait_arg;
	json_t *routes_pending;		/* key -> true: waiting for the proxy */
	struct routes_wait *waits;	/* in flight (the feed calls back) */
	struct ro_trace *trace;		/* NULL: no spans */
};

/* One wait for the proxy's acknowledgement; outlives the controller when
 * the feed stops later (c is then NULL). */
struct routes_wait {
	struct ctrl_rollout *c;
	char *key;
	struct routes_wait *next;
};

static void
routes_applied(void *arg, bool applied)
{
	struct routes_wait *w = arg;
	struct ctrl_rollout *c = w->c;
	if (c) {
		struct routes_wait **pp = &c->waits;
		while (*pp != w)
			pp = &(*pp)->next;
		*pp = w->next;
		if (!applied)
			log_warn("rollout", "%s: the proxy has not applied the new routes in %d ms; "
			    "going on", w->key, ROUTE_ACK_TIMEOUT_MS);
		json_object_del(c->routes_pending, w->key);
		ctrl_enqueue_key(c->core, w->key);
	}
	free(w->key);
	free(w);
}

/* The writes of key's sync up to store version rv change routing: the next
 * sync (routesPending until then) comes once the proxy applied them. */
static void
await_routes(struct ctrl_rollout *c, const char *key, int64_t rv)
{
	if (!c->routes_wait || rv <= 0) {
		ctrl_enqueue_key(c->core, key);
		return;
	}
	struct routes_wait *w = xcalloc(1, sizeof *w);
	w->c = c;
	w->key = xstrdup(key);
	w->next = c->waits;
	c->waits = w;
	json_object_set_new(c->routes_pending, key, json_true());
	c->routes_wait(c->routes_wait_arg, rv, ROUTE_ACK_TIMEOUT_MS, routes_applied, w);
}

void
ctrl_rollout_set_routes_wait(struct ctrl_rollout *c, ctrl_routes_wait_fn *wait, void *arg)
{
	c->routes_wait = wait;
	c->routes_wait_arg = arg;
}

void
ctrl_rollout_set_tracing(struct ctrl_rollout *c, struct otlp_exporter *x)
{
	ro_trace_free(c->trace);
	c->trace = x ? ro_trace_new(x) : NULL;
}

/* "name" -> object for a list. */
static json_t *
by_name(json_t *list)
{
	json_t *o = json_object(), *x;
	size_t i;
	json_array_foreach(list, i, x)
		json_object_set(o, obj_name(x), x);
	json_decref(list);
	return o;
}

static json_t *
list_or_empty(struct ctrl *c, const char *res, const char *ns)
{
	json_t *items = NULL;
	if (store_list(ctrl_store(c), res, ns, &items, NULL) < 0 || !items)
		return json_array();
	return items;
}

static const enum ctrl_op ro_writes[] = {
	[RO_CREATE] = CTRL_CREATE, [RO_UPDATE] = CTRL_UPDATE, [RO_DELETE] = CTRL_DELETE,
	[RO_STATUS] = CTRL_STATUS, [RO_EVENT] = CTRL_EVENT,
};

static int
ro_ctrl_decide(struct ctrl *c, const json_t *ro, int64_t now_ms, struct ctrl_writes *w)
{
	struct ctrl_rollout *r = ctrl_data(c);
	const char *ns = obj_namespace(ro);
	struct rollout_actions a = { 0 };
	char *key = xasprintf("%s/%s", ns, obj_name(ro));
	json_t *in = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:b}",
	    "replicasets", list_or_empty(c, "apps/replicasets", ns),
	    "services", by_name(list_or_empty(c, "services", ns)),
	    "endpoints", by_name(list_or_empty(c, "endpoints", ns)),
	    "analysisruns", list_or_empty(c, "argoproj.io/analysisruns", ns),
	    "templates", by_name(list_or_empty(c, "argoproj.io/analysistemplates", ns)),
	    "clustertemplates", by_name(list_or_empty(c, "argoproj.io/clusteranalysistemplates",
	    NULL)), "routesPending", json_object_get(r->routes_pending, key) != NULL);
	rollout_decide(ro, in, now_ms, &a);
	if (r->trace)
		ro_trace_sync(r->trace, ro, &a, now_ms);
	for (size_t i = 0; i < a.n; i++) {
		const struct rollout_action *x = &a.v[i];
		if (x->op == RO_EVENT) {
			ctrl_writes_event(w, x->type, x->reason, x->message);
			continue;
		}
		json_t *obj = json_deep_copy(x->obj);
		json_object_del(obj, "_deleted");
		ctrl_writes_push(w, ro_writes[x->op], NULL, obj, x->op);
	}
	w->requeue_ms = a.requeue_ms;
	if (a.await_routes)
		w->carry = json_true();	/* for ro_after */
	free(key);
	rollout_actions_free(&a);
	json_decref(in);
	return 0;
}

/* Writes that change routing (carry set by decide), all made: the next sync
 * waits for the proxy to apply them. */
static void
ro_after(struct ctrl *c, const json_t *ro, const struct ctrl_write *failed,
    struct ctrl_writes *w)
{
	if (failed || !json_is_true(w->carry))
		return;
	char *key = xasprintf("%s/%s", obj_namespace(ro), obj_name(ro));
	await_routes(ctrl_data(c), key, w->rv);
	free(key);
}

static void
ro_result(struct ctrl *c, const json_t *ro, const struct ctrl_write *w, const json_t *made,
    const char *err)
{
	(void)made;
	if (w->tag == RO_CREATE && err)
		api_record_event(ctrl_api(c), ro, "Warning", "FailedCreate", RO_COMPONENT,
		    "Failed to create %s \"%s\": %s", obj_kind(w->obj), obj_name(w->obj), err);
}

/* Services and Endpoints: queue the Rollouts of the namespace that name them. */
static void
on_service(struct ctrl *c, enum store_event ev, const json_t *o)
{
	(void)ev;
	json_t *ros = list_or_empty(c, "argoproj.io/rollouts", obj_namespace(o)), *ro;
	size_t i;
	static const char *const keys[] = { "canary.stableService", "canary.canaryService",
		"blueGreen.activeService", "blueGreen.previewService" };
	json_array_foreach(ros, i, ro) {
		const json_t *strat = obj_get_path(ro, "spec.strategy");
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
			const char *n = json_string_value(obj_get_path(strat, keys[k]));
			if (n && !strcmp(n, obj_name(o))) {
				ctrl_enqueue(c, obj_namespace(ro), obj_name(ro));
				break;
			}
		}
	}
	json_decref(ros);
}

static const struct ctrl_desc ro_desc = {
	.name = "rollout", .component = RO_COMPONENT,
	.api_version = ARGO, .kind = "Rollout", .res = "argoproj.io/rollouts",
	.sources = {
		{ "argoproj.io/rollouts", NULL },
		{ "apps/replicasets", ctrl_enqueue_owner },
		{ "argoproj.io/analysisruns", ctrl_enqueue_owner, ARGO, "AnalysisRun" },
		{ "services", on_service },
		{ "endpoints", on_service },
	},
	.decide = ro_ctrl_decide, .result = ro_result, .after = ro_after,
};

int
ctrl_rollout_start(struct api *api, struct ctrl_rollout **out)
{
	struct ctrl_rollout *c = xcalloc(1, sizeof *c);
	c->routes_pending = json_object();
	int rc = ctrl_start(api, &ro_desc, c, &c->core);
	if (rc < 0) {
		ctrl_rollout_stop(c);
		return rc;
	}
	*out = c;
	return 0;
}

void
ctrl_rollout_stop(struct ctrl_rollout *c)
{
	if (!c)
		return;
	ctrl_stop(c->core);
	for (struct routes_wait *w = c->waits; w; w = w->next)
		w->c = NULL;	/* freed when the feed calls back */
	json_decref(c->routes_pending);
	ro_trace_free(c->trace);
	free(c);
}
