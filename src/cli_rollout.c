/* cli_rollout.c — `v6 rollout ...` as kubectl does it for Deployments and
 * kubectl-argo-rollouts for Rollouts: status follows a watch, history and
 * undo read the owned ReplicaSets, the others are patches (Argo's status
 * fields through /status). The decisions are pure functions, unit tested in
 * tests/unit/test_cli_rollout.c; `rollout watch` is in cli_rwatch.c.
 * cli_rollout_wait (the status follower) also serves `apply --wait`. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REV_ANN "deployment.kubernetes.io/revision"
#define HASH_LABEL "pod-template-hash"
#define ARGO_REV_ANN "rollout.argoproj.io/revision"
#define ARGO_HASH_LABEL "rollouts-pod-template-hash"
#define CAUSE_ANN "kubernetes.io/change-cause"
#define RESTART_ANN "kubectl.kubernetes.io/restartedAt"

/* ---- pure parts -------------------------------------------------------- */

static int64_t
num(const json_t *obj, const char *path)
{
	return json_integer_value(obj_get_path(obj, path));
}

static const json_t *
condition(const json_t *obj, const char *type)
{
	size_t i;
	json_t *c;
	json_array_foreach(obj_get_path(obj, "status.conditions"), i, c) {
		const char *t = json_string_value(json_object_get(c, "type"));
		if (t && strcmp(t, type) == 0)
			return c;
	}
	return NULL;
}

/* kubectl's DaemonSetStatusViewer. */
static int
daemonset_status_msg(const json_t *ds, char **msg, bool *done)
{
	const char *name = obj_name(ds);
	int64_t desired = num(ds, "status.desiredNumberScheduled");
	int64_t updated = num(ds, "status.updatedNumberScheduled");
	int64_t avail = num(ds, "status.numberAvailable");
	const char *type = json_string_value(obj_get_path(ds, "spec.updateStrategy.type"));
	*done = false;
	if (type && strcmp(type, "RollingUpdate") != 0) {
		*msg = xstrdup("rollout status is only available for RollingUpdate strategy type");
		return -1;
	}
	if (num(ds, "metadata.generation") > num(ds, "status.observedGeneration"))
		*msg = xstrdup("Waiting for daemon set spec update to be observed...\n");
	else if (updated < desired)
		*msg = xasprintf("Waiting for daemon set \"%s\" rollout to finish: %lld out of %lld "
		    "new pods have been updated...\n", name, (long long)updated, (long long)desired);
	else if (avail < desired)
		*msg = xasprintf("Waiting for daemon set \"%s\" rollout to finish: %lld of %lld "
		    "updated pods are available...\n", name, (long long)avail, (long long)desired);
	else {
		*msg = xasprintf("daemon set \"%s\" successfully rolled out\n", name);
		*done = true;
	}
	return 0;
}

/* kubectl's StatefulSetStatusViewer. */
static int
statefulset_status_msg(const json_t *sts, char **msg, bool *done)
{
	int64_t replicas = json_is_integer(obj_get_path(sts, "spec.replicas")) ?
	    num(sts, "spec.replicas") : 1;
	int64_t ready = num(sts, "status.readyReplicas");
	int64_t updated = num(sts, "status.updatedReplicas");
	int64_t partition = num(sts, "spec.updateStrategy.rollingUpdate.partition");
	const char *type = json_string_value(obj_get_path(sts, "spec.updateStrategy.type"));
	const char *cur = json_string_value(obj_get_path(sts, "status.currentRevision"));
	const char *upd = json_string_value(obj_get_path(sts, "status.updateRevision"));
	*done = false;
	if (type && strcmp(type, "RollingUpdate") != 0) {
		*msg = xstrdup("rollout status is only available for RollingUpdate strategy type");
		return -1;
	}
	if (num(sts, "status.observedGeneration") == 0 ||
	    num(sts, "metadata.generation") > num(sts, "status.observedGeneration"))
		*msg = xstrdup("Waiting for statefulset spec update to be observed...\n");
	else if (ready < replicas)
		*msg = xasprintf("Waiting for %lld pods to be ready...\n",
		    (long long)(replicas - ready));
	else if (partition > 0 && updated < replicas - partition)
		*msg = xasprintf("Waiting for partitioned roll out to finish: %lld out of %lld new "
		    "pods have been updated...\n", (long long)updated,
		    (long long)(replicas - partition));
	else if (partition > 0) {
		*msg = xasprintf("partitioned roll out complete: %lld new pods have been "
		    "updated...\n", (long long)updated);
		*done = true;
	} else if (upd && (!cur || strcmp(cur, upd) != 0))
		*msg = xasprintf("waiting for statefulset rolling update to complete %lld pods at "
		    "revision %s...\n", (long long)updated, upd);
	else {
		*msg = xasprintf("statefulset rolling update complete %lld pods at revision "
		    "%s...\n", (long long)num(sts, "status.currentReplicas"), cur ? cur : "");
		*done = true;
	}
	return 0;
}

/* A Job: done at Complete, an error at Failed (reason and message), else
 * how many pods succeeded (`apply --wait`). */
static int
job_status_msg(const json_t *job, char **msg, bool *done)
{
	const json_t *failed = condition(job, "Failed"), *complete = condition(job, "Complete");
	*done = false;
	if (complete && strcmp(obj_str(complete, "status"), "True") == 0) {
		*msg = xasprintf("job \"%s\" completed\n", obj_name(job));
		*done = true;
	} else if (failed && strcmp(obj_str(failed, "status"), "True") == 0) {
		*msg = xasprintf("job \"%s\" failed: %s: %s", obj_name(job),
		    obj_str(failed, "reason"), obj_str(failed, "message"));
		return -1;
	} else if (json_is_integer(obj_get_path(job, "spec.completions"))) {
		*msg = xasprintf("Waiting for job \"%s\" to complete: %lld of %lld pods "
		    "succeeded...\n", obj_name(job), (long long)num(job, "status.succeeded"),
		    (long long)num(job, "spec.completions"));
	} else {
		*msg = xasprintf("Waiting for job \"%s\" to complete...\n", obj_name(job));
	}
	return 0;
}

int
cli_rollout_status_msg(const json_t *d, int64_t revision, char **msg, bool *done)
{
	if (strcmp(obj_kind(d), "Job") == 0)
		return job_status_msg(d, msg, done);
	if (strcmp(obj_kind(d), "DaemonSet") == 0)
		return daemonset_status_msg(d, msg, done);
	if (strcmp(obj_kind(d), "StatefulSet") == 0)
		return statefulset_status_msg(d, msg, done);
	const char *name = obj_name(d);
	*done = false;
	if (revision > 0 && cli_revision_of(d) != revision) {
		*msg = xasprintf("desired revision (%lld) is different from the running revision "
		    "(%lld)", (long long)revision, (long long)cli_revision_of(d));
		return -1;
	}
	if (num(d, "metadata.generation") > num(d, "status.observedGeneration")) {
		*msg = xstrdup("Waiting for deployment spec update to be observed...\n");
		return 0;
	}
	const json_t *prog = condition(d, "Progressing");
	const char *reason = json_string_value(json_object_get(prog, "reason"));
	if (reason && strcmp(reason, "ProgressDeadlineExceeded") == 0) {
		*msg = xasprintf("deployment \"%s\" exceeded its progress deadline", name);
		return -1;
	}
	json_t *spec_rep = obj_get_path(d, "spec.replicas");
	int64_t updated = num(d, "status.updatedReplicas");
	int64_t replicas = num(d, "status.replicas");
	int64_t avail = num(d, "status.availableReplicas");
	if (spec_rep && updated < json_integer_value(spec_rep))
		*msg = xasprintf("Waiting for deployment \"%s\" rollout to finish: %lld out of %lld "
		    "new replicas have been updated...\n", name, (long long)updated,
		    (long long)json_integer_value(spec_rep));
	else if (replicas > updated)
		*msg = xasprintf("Waiting for deployment \"%s\" rollout to finish: %lld old replicas "
		    "are pending termination...\n", name, (long long)(replicas - updated));
	else if (avail < updated)
		*msg = xasprintf("Waiting for deployment \"%s\" rollout to finish: %lld of %lld "
		    "updated replicas are available...\n", name, (long long)avail,
		    (long long)updated);
	else {
		*msg = xasprintf("deployment \"%s\" successfully rolled out\n", name);
		*done = true;
	}
	return 0;
}

static bool
controlled_by(const json_t *obj, const char *uid)
{
	size_t i;
	json_t *ref;
	json_array_foreach(obj_get_path(obj, "metadata.ownerReferences"), i, ref) {
		const char *u = json_string_value(json_object_get(ref, "uid"));
		if (json_is_true(json_object_get(ref, "controller")) && u && strcmp(u, uid) == 0)
			return true;
	}
	return false;
}

static int
by_revision(const void *a, const void *b)
{
	int64_t ra = cli_revision_of(*(json_t *const *)a);
	int64_t rb = cli_revision_of(*(json_t *const *)b);
	return ra < rb ? -1 : ra > rb;
}

json_t *
cli_owned_replicasets(const json_t *deploy, const json_t *items)
{
	const char *uid = obj_uid(deploy);
	json_t **v = xcalloc(json_array_size(items) + 1, sizeof *v);
	size_t n = 0, i;
	json_t *rs;
	json_array_foreach(items, i, rs)
		if (uid && *uid && controlled_by(rs, uid))
			v[n++] = rs;
	qsort(v, n, sizeof *v, by_revision);
	json_t *out = json_array();
	for (i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	return out;
}

const json_t *
cli_undo_target(const json_t *deploy, const json_t *rsets, int64_t to_revision, char **err)
{
	const json_t *latest = NULL, *previous = NULL;
	int64_t latest_rev = -1, previous_rev = -1;
	size_t i;
	json_t *rs;
	json_array_foreach(rsets, i, rs) {
		int64_t v = cli_revision_of(rs);
		if (to_revision > 0) {
			if (v == to_revision)
				return rs;
		} else if (v > latest_rev) {
			previous = latest, previous_rev = latest_rev;
			latest = rs, latest_rev = v;
		} else if (v > previous_rev) {
			previous = rs, previous_rev = v;
		}
	}
	if (to_revision > 0)
		*err = xasprintf("unable to find specified revision %lld in history",
		    (long long)to_revision);
	else if (previous == NULL)
		*err = xasprintf("no rollout history found for %s \"%s\"",
		    strcmp(obj_kind(deploy), "Rollout") == 0 ? "rollout" : "deployment",
		    obj_name(deploy));
	return to_revision > 0 ? NULL : previous;
}

/* A copy of a pod template without the pod-template-hash label (Argo's
 * rollouts-pod-template-hash for a Rollout's ReplicaSets). */
static json_t *
template_without_hash(const json_t *tpl)
{
	json_t *t = tpl ? json_deep_copy(tpl) : json_object();
	json_object_del(obj_get_path(t, "metadata.labels"), HASH_LABEL);
	json_object_del(obj_get_path(t, "metadata.labels"), ARGO_HASH_LABEL);
	return t;
}

bool
cli_template_matches(const json_t *deploy, const json_t *rs)
{
	json_t *a = template_without_hash(obj_get_path(deploy, "spec.template"));
	json_t *b = template_without_hash(obj_get_path(rs, "spec.template"));
	bool eq = json_equal(a, b);
	json_decref(a);
	json_decref(b);
	return eq;
}

/* Annotations a rollback keeps from the deployment rather than the RS. */
static const char *const undo_skip[] = {
	OBJ_LAST_APPLIED, REV_ANN, "deployment.kubernetes.io/revision-history",
	"deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas",
	"deprecated.deployment.rollback.to", ARGO_REV_ANN, "rollout.argoproj.io/revision-history",
	"rollout.argoproj.io/desired-replicas", "rollout.argoproj.io/workload-generation",
};

static bool
undo_skipped(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(undo_skip); i++)
		if (strcmp(undo_skip[i], key) == 0)
			return true;
	return false;
}

json_t *
cli_undo_patch(const json_t *deploy, const json_t *rs)
{
	json_t *ann = json_object();
	json_t *dann = obj_get_path(deploy, "metadata.annotations");
	const char *k;
	json_t *v;
	json_object_foreach(dann, k, v)
		if (undo_skipped(k))
			json_object_set(ann, k, v);
	json_object_foreach(obj_get_path(rs, "metadata.annotations"), k, v)
		if (!undo_skipped(k))
			json_object_set(ann, k, v);
	return json_pack("[{s:s, s:s, s:o}, {s:s, s:s, s:o}]",
	    "op", "replace", "path", "/spec/template",
	    "value", template_without_hash(obj_get_path(rs, "spec.template")),
	    "op", "add", "path", "/metadata/annotations", "value", ann);
}

/* ---- Argo Rollouts: pure parts ------------------------------------------ */

static bool
argo_fully_promoted(const json_t *ro)
{
	const char *cur = json_string_value(obj_get_path(ro, "status.currentPodHash"));
	const char *stable = json_string_value(obj_get_path(ro, "status.stableRS"));
	return cur && *cur && stable && strcmp(cur, stable) == 0;
}

static bool
argo_paused_at_step(const json_t *ro)
{
	return json_array_size(obj_get_path(ro, "status.pauseConditions")) > 0;
}

static int
argo_aborted_err(const json_t *ro, char **msg)
{
	*msg = xasprintf("rollout/%s is aborted; run 'v6 rollout retry rollout/%s' to try the "
	    "update again, or change spec.template back to the stable version", obj_name(ro),
	    obj_name(ro));
	return -EINVAL;
}

/* Not paused: skip the current canary step, as Argo does. */
static int
argo_skip_step(const json_t *ro, json_t **status, char **msg)
{
	int64_t i, n;
	if (!cli_argo_step(ro, &i, &n)) {
		*msg = xasprintf("rollout/%s is not paused: a blue-green rollout is promoted "
		    "while it waits for promotion; use 'promote --full' to switch over now",
		    obj_name(ro));
		return -EINVAL;
	}
	if (i >= n) {
		*msg = xasprintf("rollout/%s has no canary step left to skip (at step %lld/%lld); "
		    "use 'promote --full' to skip analysis and pauses too", obj_name(ro),
		    (long long)i, (long long)n);
		return -EINVAL;
	}
	*status = json_pack("{s:I}", "currentStepIndex", (json_int_t)(i + 1));
	return 0;
}

static int
argo_promote(const json_t *ro, json_t **spec, json_t **status, char **msg)
{
	if (json_is_true(obj_get_path(ro, "status.abort")))
		return argo_aborted_err(ro, msg);
	bool spec_paused = json_is_true(obj_get_path(ro, "spec.paused"));
	if (spec_paused)
		*spec = json_pack("{s:b}", "paused", false);
	if (argo_paused_at_step(ro)) {
		*status = json_pack("{s:n}", "pauseConditions");
		return 0;
	}
	if (spec_paused)
		return 0;
	return argo_skip_step(ro, status, msg);
}

/* --full: promoteFull; a manual pause is lifted too (Argo leaves it, and
 * the rollout then stays paused, which is not what "full" asks for). */
static int
argo_promote_full(const json_t *ro, json_t **spec, json_t **status, char **msg)
{
	if (json_is_true(obj_get_path(ro, "status.abort")))
		return argo_aborted_err(ro, msg);
	if (argo_fully_promoted(ro) && !json_is_true(obj_get_path(ro, "spec.paused"))) {
		*msg = xasprintf("rollout/%s is already fully promoted (the stable revision is the "
		    "current one)", obj_name(ro));
		return 1;
	}
	if (json_is_true(obj_get_path(ro, "spec.paused")))
		*spec = json_pack("{s:b}", "paused", false);
	if (!argo_fully_promoted(ro))
		*status = json_pack("{s:b}", "promoteFull", true);
	return 0;
}

static int
argo_abort(const json_t *ro, json_t **spec, json_t **status, char **msg)
{
	(void)spec;
	if (json_is_true(obj_get_path(ro, "status.abort"))) {
		*msg = xasprintf("rollout/%s is already aborted; use 'v6 rollout retry rollout/%s' "
		    "to try the update again", obj_name(ro), obj_name(ro));
		return -EINVAL;
	}
	if (argo_fully_promoted(ro)) {
		*msg = xasprintf("rollout/%s has no update in progress (its stable revision is the "
		    "current one); nothing to abort", obj_name(ro));
		return -EINVAL;
	}
	*status = json_pack("{s:b}", "abort", true);
	return 0;
}

static int
argo_retry(const json_t *ro, json_t **spec, json_t **status, char **msg)
{
	(void)spec;
	if (!json_is_true(obj_get_path(ro, "status.abort"))) {
		*msg = xasprintf("rollout/%s is not aborted; retry restarts an aborted update "
		    "(to move on, use 'v6 rollout promote rollout/%s')", obj_name(ro), obj_name(ro));
		return -EINVAL;
	}
	*status = json_pack("{s:b}", "abort", false);
	return 0;
}

static int
argo_pause(const json_t *ro, json_t **spec, json_t **status, char **msg)
{
	(void)status;
	if (json_is_true(obj_get_path(ro, "spec.paused"))) {
		*msg = xasprintf("rollout/%s is already paused", obj_name(ro));
		return -EINVAL;
	}
	*spec = json_pack("{s:b}", "paused", true);
	return 0;
}

static int
argo_resume(const json_t *ro, json_t **spec, json_t **status, char **msg)
{
	bool spec_paused = json_is_true(obj_get_path(ro, "spec.paused"));
	if (!spec_paused && !argo_paused_at_step(ro)) {
		*msg = xasprintf("rollout/%s is not paused; use 'v6 rollout promote rollout/%s' to "
		    "skip the current step", obj_name(ro), obj_name(ro));
		return -EINVAL;
	}
	if (spec_paused)
		*spec = json_pack("{s:b}", "paused", false);
	if (argo_paused_at_step(ro))
		*status = json_pack("{s:n}", "pauseConditions");
	return 0;
}

static const struct {
	const char *cmd;
	int (*decide)(const json_t *ro, json_t **spec, json_t **status, char **msg);
} argo_cmds[] = {
	{ "promote", argo_promote },
	{ "promote-full", argo_promote_full },
	{ "abort", argo_abort },
	{ "retry", argo_retry },
	{ "pause", argo_pause },
	{ "resume", argo_resume },
};

int
cli_argo_patches(const char *cmd, const json_t *ro, json_t **spec, json_t **status,
    char **msg)
{
	*spec = *status = NULL;
	*msg = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(argo_cmds); i++) {
		if (strcmp(argo_cmds[i].cmd, cmd) != 0)
			continue;
		int rc = argo_cmds[i].decide(ro, spec, status, msg);
		if (rc != 0) {
			json_decref(*spec);
			json_decref(*status);
			*spec = *status = NULL;
		}
		return rc;
	}
	*msg = xasprintf("unknown rollout command \"%s\"", cmd);
	return -EINVAL;
}

char *
cli_argo_history(const json_t *rsets)
{
	struct buf b = BUF_INIT;
	size_t i;
	json_t *rs;
	if (json_array_size(rsets) == 0)
		return xstrdup("No rollout history found.\n");
	buf_printf(&b, "%-8s  %-12s  %s\n", "REVISION", "HASH", "CHANGE-CAUSE");
	json_array_foreach(rsets, i, rs) {
		const char *cause = json_string_value(json_object_get(obj_get_path(rs,
		    "metadata.annotations"), CAUSE_ANN));
		const char *hash = json_string_value(json_object_get(obj_labels(rs),
		    ARGO_HASH_LABEL));
		buf_printf(&b, "%-8lld  %-12s  %s\n", (long long)cli_revision_of(rs),
		    hash && *hash ? hash : "<none>", cause && *cause ? cause : "<none>");
	}
	buf_putc(&b, '\n');
	return buf_steal(&b);
}

/* ---- the deployment a subcommand targets ------------------------------- */

struct target {
	const struct kind *k;
	const char *ns;
	const char *name;
	char ref[256];		/* "deployment.apps/web" */
	char res[128];		/* "deployments.apps", for messages */
	bool argo;		/* an Argo Rollout */
	enum cli_dry dry;	/* --dry-run of a writing subcommand */
};

/* The subcommands each kind takes (space separated). */
static const struct {
	const char *kind;
	const char *subs;
} target_kinds[] = {
	{ "Deployment", "status history undo restart pause resume" },
	{ "Rollout", "status history undo pause resume promote abort retry watch" },
	{ "DaemonSet", "status" },
	{ "StatefulSet", "status" },
};

/* Argo-only subcommands also take a bare rollout NAME, as the plugin does. */
#define ARGO_ONLY "promote abort retry watch"

static bool
word_in(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; *p; p += strcspn(p, " "), p += *p == ' ')
		if (strcspn(p, " ") == n && strncmp(p, word, n) == 0)
			return true;
	return false;
}

static int
target_kind_check(const struct target *t, const char *sub)
{
	struct buf ok = BUF_INIT;
	for (size_t i = 0; i < ARRAY_SIZE(target_kinds); i++) {
		if (!word_in(target_kinds[i].subs, sub))
			continue;
		if (strcmp(target_kinds[i].kind, t->k->kind) == 0) {
			buf_free(&ok);
			return 0;
		}
		buf_printf(&ok, "%s%s", ok.len ? ", " : "", target_kinds[i].kind);
	}
	cli_fail("rollout %s is not supported for %s by v6 (it works on: %s)", sub,
	    t->k->kind, ok.len ? ok.data : "nothing");
	buf_free(&ok);
	return -EINVAL;
}

/* "deployment/web", "deployment web", or "web" for an Argo-only command. */
static int
target_parse(const struct cli_opts *o, const char *sub, const char **args, size_t n,
    struct target *t)
{
	char kname[64];
	const char *slash = n ? strchr(args[0], '/') : NULL;
	bool bare = n == 1 && slash == NULL && word_in(ARGO_ONLY, sub);
	if (!bare && (n == 0 || (slash == NULL && n != 2) || (slash && n != 1)))
		return cli_fail("required resource not specified: use 'v6 rollout %s %s/NAME'",
		    sub, word_in(ARGO_ONLY, sub) ? "rollout" : "deployment");
	if (bare)
		snprintf(kname, sizeof kname, "rollout");
	else if (slash)
		snprintf(kname, sizeof kname, "%.*s", (int)(slash - args[0]), args[0]);
	else
		snprintf(kname, sizeof kname, "%s", args[0]);
	t->k = cli_kind(kname);
	if (t->k == NULL || target_kind_check(t, sub) < 0)
		return -EINVAL;
	t->argo = strcmp(t->k->kind, "Rollout") == 0;
	t->name = bare ? args[0] : slash ? slash + 1 : args[1];
	t->ns = cli_ns(o);
	cli_obj_ref(t->k, t->name, t->ref, sizeof t->ref);
	snprintf(t->res, sizeof t->res, "%s.%s", t->k->plural, t->k->group);
	return 0;
}

/* --dry-run: taken by the subcommands that write (kubectl takes it on
 * undo; here every writing one has it, as every other writing verb). */
static int
target_dry_run(const struct cli_opts *o, const char *sub, struct target *t)
{
	t->dry = CLI_DRY_NONE;
	if (o->dry_run && word_in("status history watch", sub))
		return cli_fail("unknown flag: --dry-run (v6 rollout %s writes nothing)", sub);
	return cli_dry_run(o, &t->dry);
}

/* GETs the deployment; prints the error and returns -EIO when the server
 * cannot be reached, -EPROTO when it answered with an error. */
static int
target_get(const struct target *t, json_t **out)
{
	char *path = cli_path(t->k, t->ns, t->name, NULL);
	int rc = cli_get_json(path, out);
	free(path);
	return rc;
}

/* The PATCH path of the target or of its subresource sub: with
 * ?dryRun=All for a server dry run. */
static char *
target_patch_path(const struct target *t, const char *sub)
{
	char *base = cli_path(t->k, t->ns, t->name, NULL);
	char *path = xasprintf("%s%s%s%s", base, sub ? "/" : "", sub ? sub : "",
	    t->dry == CLI_DRY_SERVER ? "?dryRun=All" : "");
	free(base);
	return path;
}

/* PATCHes the deployment and prints "REF what"; a client dry run sends
 * nothing (the object was read already). patch is consumed. */
static int
target_patch(const struct target *t, const char *ctype, json_t *patch, const char *what)
{
	struct cli_resp r;
	if (t->dry == CLI_DRY_CLIENT) {
		json_decref(patch);
		printf("%s %s%s\n", t->ref, what, cli_dry_said[t->dry]);
		return 0;
	}
	char *path = target_patch_path(t, NULL);
	int rc = cli_http("PATCH", path, ctype, patch, &r);
	free(path);
	json_decref(patch);
	if (rc < 0)
		return 1;
	if (r.status != 200) {
		cli_print_error(&r, NULL);
		cli_resp_free(&r);
		return 1;
	}
	printf("%s %s%s\n", t->ref, what, cli_dry_said[t->dry]);
	cli_resp_free(&r);
	return 0;
}

/* A merge patch of the object, or of its subresource sub ("status");
 * patch is consumed. 0, or 1 with the error printed. */
static int
target_merge(const struct target *t, const char *sub, json_t *patch)
{
	struct cli_resp r;
	if (t->dry == CLI_DRY_CLIENT) {
		json_decref(patch);
		return 0;
	}
	char *path = target_patch_path(t, sub);
	int rc = cli_http("PATCH", path, "application/merge-patch+json", patch, &r);
	free(path);
	json_decref(patch);
	if (rc < 0)
		return 1;
	rc = r.status == 200 ? 0 : 1;
	if (rc)
		cli_print_error(&r, NULL);
	cli_resp_free(&r);
	return rc;
}

/* The ReplicaSets the deployment controls, sorted by revision. */
static int
target_replicasets(const struct target *t, const json_t *deploy, json_t **out)
{
	const struct kind *rk = kind_find_gvk("apps/v1", "ReplicaSet");
	json_t *list;
	char *path = cli_path(rk, t->ns, NULL, NULL);
	int rc = cli_get_json(path, &list);
	free(path);
	if (rc < 0)
		return rc;
	*out = cli_owned_replicasets(deploy, json_object_get(list, "items"));
	json_decref(list);
	return 0;
}

/* ---- status ------------------------------------------------------------ */

enum { ST_GO = 0, ST_DONE = 1, ST_FAILED = 2, ST_RELIST = 3 };

struct status {
	const struct target *t;
	int64_t revision;
	bool watch;
	char *last;		/* last message printed (printed once per change) */
	char *rv;		/* resourceVersion to watch from */
};

/* A Rollout: one line per change of phase, message, step or weight; done
 * at Healthy, failed at Degraded, followed through every pause
 * (kubectl-argo-rollouts status). */
static int
argo_status_show(struct status *s, const json_t *ro)
{
	char *msg;
	int st = cli_argo_status_msg(ro, &msg);
	if (s->last == NULL || strcmp(s->last, msg) != 0)
		fputs(msg, stdout);
	fflush(stdout);
	free(s->last);
	s->last = msg;
	if (st == CLI_ARGO_FAILED) {
		const char *m = json_string_value(obj_get_path(ro, "status.message"));
		cli_err("the rollout is in a degraded state with message: %s", m && *m ? m
		    : "<none>");
		return ST_FAILED;
	}
	return st == CLI_ARGO_DONE || !s->watch ? ST_DONE : ST_GO;
}

static int
status_show(struct status *s, const json_t *d)
{
	char *msg;
	bool done;
	const char *rv = json_string_value(obj_get_path(d, "metadata.resourceVersion"));
	if (rv) {
		free(s->rv);
		s->rv = xstrdup(rv);
	}
	if (s->t->argo)
		return argo_status_show(s, d);
	if (cli_rollout_status_msg(d, s->revision, &msg, &done) < 0) {
		cli_err("%s", msg);
		free(msg);
		return ST_FAILED;
	}
	if (s->last == NULL || strcmp(s->last, msg) != 0)
		fputs(msg, stdout);
	fflush(stdout);
	free(s->last);
	s->last = msg;
	return done || !s->watch ? ST_DONE : ST_GO;
}

static int
status_event(const char *type, json_t *obj, void *arg)
{
	struct status *s = arg;
	if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0)
		return status_show(s, obj);
	if (strcmp(type, "DELETED") == 0) {
		cli_err("object has been deleted");
		return ST_FAILED;
	}
	if (strcmp(type, "ERROR") == 0)
		return ST_RELIST;	/* 410 Gone: start again from a fresh GET */
	return ST_GO;			/* BOOKMARK */
}

static char *
status_watch_path(const struct status *s)
{
	struct buf q = BUF_INIT;
	char *fs = xasprintf("metadata.name=%s", s->t->name);
	cli_query_add(&q, "fieldSelector", fs);
	cli_query_add(&q, "watch", "true");
	cli_query_add(&q, "resourceVersion", s->rv ? s->rv : "");
	char *path = cli_path(s->t->k, s->t->ns, NULL, q.data);
	free(fs);
	buf_free(&q);
	return path;
}

/* GET, then watch from the GET's resourceVersion; a dropped stream is
 * resumed from the last event seen, a failed one retried from a new GET
 * (the server may be restarting). An error answer to the GET is final. */
static int
status_timed_out(const struct status *s)
{
	if (s->t->argo && s->last)
		return cli_err("timed out waiting for %s to become Healthy; it is %.*s", s->t->ref,
		    (int)strcspn(s->last, "\n"), s->last);
	return cli_err("timed out waiting for the condition");
}

static int
status_follow(struct status *s, int64_t deadline)
{
	int failures = 0;
	for (bool first = true;; first = false) {
		json_t *d = NULL;
		int rc = target_get(s->t, &d);
		if (rc == -EPROTO || (rc < 0 && first))
			return 1;
		int st = rc == 0 ? status_show(s, d) : ST_RELIST;
		json_decref(d);
		while (st == ST_GO) {
			char *path = status_watch_path(s);
			int wrc = cli_watch(path, deadline, status_event, s);
			free(path);
			if (wrc == -ETIMEDOUT)
				return status_timed_out(s);
			st = wrc < 0 ? ST_RELIST : wrc;	/* 0: the server ended the stream */
			failures = wrc < 0 ? failures + 1 : 0;
		}
		if (st == ST_DONE)
			return 0;
		if (st == ST_FAILED)
			return 1;
		if (++failures > 30)
			return cli_err("giving up after %d failed attempts to watch %s", failures,
			    s->t->ref);
		if (deadline && time_mono_ms() >= deadline)
			return status_timed_out(s);
		if (failures > 1)
			sleep(1);
	}
}

static int
rollout_status(struct cli_opts *o, const struct target *t)
{
	int64_t ms = cli_timeout_ms(o, 0);
	if (ms < 0)
		return 1;
	if (t->argo && o->revision > 0)
		return cli_err("--revision is not supported for rollouts: 'v6 rollout status' "
		    "follows the current revision");
	struct status s = { .t = t, .revision = o->revision,
		.watch = cli_flag_given(o, "watch") ? o->watch : true };
	int rc = status_follow(&s, ms ? time_mono_ms() + ms : 0);
	free(s.last);
	free(s.rv);
	return rc;
}

bool
cli_rollout_waits_for(const struct kind *k)
{
	static const char *const kinds[] = { "Deployment", "StatefulSet", "DaemonSet",
		"Rollout", "Job" };
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (strcmp(k->kind, kinds[i]) == 0)
			return true;
	return false;
}

int
cli_rollout_wait(const struct kind *k, const char *ns, const char *name, int64_t deadline)
{
	struct target t = { .k = k, .ns = ns, .name = name,
		.argo = strcmp(k->kind, "Rollout") == 0 };
	cli_obj_ref(k, name, t.ref, sizeof t.ref);
	snprintf(t.res, sizeof t.res, "%s.%s", k->plural, k->group);
	struct status s = { .t = &t, .watch = true };
	int rc = status_follow(&s, deadline);
	free(s.last);
	free(s.rv);
	return rc;
}

/* ---- history ----------------------------------------------------------- */

static void
history_table(const json_t *rsets)
{
	size_t i;
	json_t *rs;
	if (json_array_size(rsets) == 0) {
		puts("No rollout history found.");
		return;
	}
	puts("REVISION  CHANGE-CAUSE");
	json_array_foreach(rsets, i, rs) {
		json_t *ann = obj_get_path(rs, "metadata.annotations");
		const char *cause = json_string_value(json_object_get(ann, CAUSE_ANN));
		printf("%-8lld  %s\n", (long long)cli_revision_of(rs),
		    cause && *cause ? cause : "<none>");
	}
	putchar('\n');
}

static int
rollout_history(struct cli_opts *o, const struct target *t)
{
	json_t *d = NULL, *rsets = NULL, *keep = json_array();
	int rc = 1;
	if (target_get(t, &d) < 0 || target_replicasets(t, d, &rsets) < 0)
		goto out;
	size_t i;
	json_t *rs;
	json_array_foreach(rsets, i, rs)	/* only RSs with a revision count */
		if (cli_revision_of(rs) > 0)
			json_array_append(keep, rs);
	if (o->revision <= 0 && t->argo) {
		char *table = cli_argo_history(keep);
		printf("%s\n%s", t->ref, table);
		free(table);
		rc = 0;
		goto out;
	}
	if (o->revision <= 0) {
		printf("%s \n", t->ref);
		history_table(keep);
		rc = 0;
		goto out;
	}
	json_t *found = NULL;
	json_array_foreach(keep, i, rs)
		if (cli_revision_of(rs) == o->revision)
			found = rs;
	if (found == NULL) {
		rc = cli_err("unable to find the specified revision");
		goto out;
	}
	char *desc = cli_describe_pod_template(obj_get_path(found, "spec.template"));
	printf("%s with revision #%lld\n%s\n", t->ref, (long long)o->revision, desc);
	free(desc);
	rc = 0;
out:
	json_decref(d);
	json_decref(rsets);
	json_decref(keep);
	return rc;
}

/* ---- undo, restart, pause, resume -------------------------------------- */

static int
rollout_undo(struct cli_opts *o, const struct target *t)
{
	json_t *d = NULL, *rsets = NULL;
	char *err = NULL;
	int rc = 1;
	if (target_get(t, &d) < 0)
		goto out;
	if (!t->argo && json_is_true(obj_get_path(d, "spec.paused"))) {
		rc = cli_err("you cannot rollback a paused deployment; resume it first with "
		    "'v6 rollout resume' and try again");
		goto out;
	}
	if (target_replicasets(t, d, &rsets) < 0)
		goto out;
	const json_t *rs = cli_undo_target(d, rsets, o->to_revision, &err);
	if (rs == NULL) {
		rc = cli_err("%s", err);
		goto out;
	}
	if (cli_template_matches(d, rs)) {
		printf("%s skipped rollback (current template already matches revision %lld)\n",
		    t->ref, (long long)cli_revision_of(rs));
		rc = 0;
		goto out;
	}
	rc = target_patch(t, "application/json-patch+json", cli_undo_patch(d, rs),
	    "rolled back");
out:
	free(err);
	json_decref(d);
	json_decref(rsets);
	return rc;
}

static int
rollout_restart(struct cli_opts *o, const struct target *t)
{
	(void)o;
	json_t *d = NULL;
	char now[32];
	if (target_get(t, &d) < 0)
		return 1;
	bool paused = json_is_true(obj_get_path(d, "spec.paused"));
	json_decref(d);
	if (paused)
		return cli_err("%s \"%s\" can't restart paused deployment (run rollout resume "
		    "first)", t->res, t->name);
	time_format_rfc3339(time(NULL), now);
	json_t *patch = json_pack("{s:{s:{s:{s:{s:s}}}}}", "spec", "template", "metadata",
	    "annotations", RESTART_ANN, now);
	return target_patch(t, "application/strategic-merge-patch+json", patch, "restarted");
}

static int
rollout_pause_resume(const struct target *t, bool pause)
{
	json_t *d = NULL;
	if (target_get(t, &d) < 0)
		return 1;
	bool paused = json_is_true(obj_get_path(d, "spec.paused"));
	json_decref(d);
	if (paused == pause)
		return cli_err("%s \"%s\" is %s", t->res, t->name,
		    pause ? "already paused" : "not paused");
	json_t *patch = json_pack("{s:{s:b}}", "spec", "paused", pause);
	return target_patch(t, "application/merge-patch+json", patch,
	    pause ? "paused" : "resumed");
}

/* An Argo command: GET, decide (cli_argo_patches), then the status patch
 * (through /status) and the spec patch, as kubectl-argo-rollouts does. */
static int
argo_command(const struct target *t, const char *cmd, const char *what)
{
	json_t *ro = NULL, *spec, *status;
	char *msg;
	if (target_get(t, &ro) < 0)
		return 1;
	int rc = cli_argo_patches(cmd, ro, &spec, &status, &msg);
	json_decref(ro);
	if (rc != 0) {
		if (rc < 0)
			cli_err("%s", msg);
		else
			printf("%s\n", msg);
		free(msg);
		return rc < 0;
	}
	if (status)
		rc = t->k->has_status ? target_merge(t, "status", json_pack("{s:o}", "status",
		    status)) : target_merge(t, NULL, json_pack("{s:o}", "status", status));
	if (spec && rc == 0)
		rc = target_merge(t, NULL, json_pack("{s:o}", "spec", spec));
	else
		json_decref(spec);
	if (rc == 0)
		printf("%s %s%s\n", t->ref, what, cli_dry_said[t->dry]);
	return rc;
}

static int
rollout_pause(struct cli_opts *o, const struct target *t)
{
	(void)o;
	return t->argo ? argo_command(t, "pause", "paused") : rollout_pause_resume(t, true);
}

static int
rollout_resume(struct cli_opts *o, const struct target *t)
{
	(void)o;
	return t->argo ? argo_command(t, "resume", "resumed") : rollout_pause_resume(t, false);
}

static int
rollout_promote(struct cli_opts *o, const struct target *t)
{
	return o->full ? argo_command(t, "promote-full", "fully promoted")
	    : argo_command(t, "promote", "promoted");
}

static int
rollout_abort(struct cli_opts *o, const struct target *t)
{
	(void)o;
	return argo_command(t, "abort", "aborted");
}

static int
rollout_retry(struct cli_opts *o, const struct target *t)
{
	(void)o;
	return argo_command(t, "retry", "retried");
}

static int
rollout_watch(struct cli_opts *o, const struct target *t)
{
	return cli_rwatch_run(o, t->k, t->ns, t->name);
}

static const struct {
	const char *name;
	int (*run)(struct cli_opts *o, const struct target *t);
} subverbs[] = {
	{ "status", rollout_status },
	{ "history", rollout_history },
	{ "undo", rollout_undo },
	{ "restart", rollout_restart },
	{ "pause", rollout_pause },
	{ "resume", rollout_resume },
	{ "promote", rollout_promote },
	{ "abort", rollout_abort },
	{ "retry", rollout_retry },
	{ "watch", rollout_watch },
};

int
cli_rollout(struct cli_opts *o)
{
	struct target t;
	if (o->nargs == 0)
		return cli_err("you must specify a subcommand: status, history, undo, restart, "
		    "pause, resume, promote, abort, retry or watch (see 'v6 rollout --help')");
	for (size_t i = 0; i < ARRAY_SIZE(subverbs); i++) {
		if (strcmp(subverbs[i].name, o->args[0]) != 0)
			continue;
		if (target_parse(o, o->args[0], o->args + 1, o->nargs - 1, &t) < 0 ||
		    target_dry_run(o, o->args[0], &t) < 0)
			return 1;
		return subverbs[i].run(o, &t);
	}
	cli_err("unknown command \"%s\" for \"v6 rollout\"", o->args[0]);
	fputs("See 'v6 rollout --help' for usage.\n", stderr);
	return 1;
}
