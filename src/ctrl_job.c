/* ctrl_job.c — the Job controller (kube-controller-manager's job
 * controller, batch/v1): pods up to parallelism without passing the
 * completions left, NonIndexed and Indexed modes, back-off after failures,
 * backoffLimit, podFailurePolicy, activeDeadlineSeconds, suspend, the
 * SuccessCriteriaMet / FailureTarget then Complete / Failed conditions,
 * and ttlSecondsAfterFinished. job_decide() is the pure decision; the
 * adapter at the end runs it on the controller core (started by server.c). */
#include "ctrl.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JOB_BURST 500			/* pods created or deleted per sync */
#define JOB_COMPONENT "job-controller"
#define JOB_INDEX_KEY "batch.kubernetes.io/job-completion-index"
#define BACKOFF_BASE_MS 10000		/* DefaultJobPodFailureBackOff */
#define BACKOFF_MAX_MS 360000		/* MaxJobPodFailureBackOff */

int64_t
job_backoff_ms(int64_t failures)
{
	if (failures <= 0)
		return 0;
	int64_t d = BACKOFF_BASE_MS;
	for (int64_t i = 1; i < failures && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	return d < BACKOFF_MAX_MS ? d : BACKOFF_MAX_MS;
}

static bool
cond_true(const json_t *job, const char *type)
{
	const json_t *c = obj_condition(json_object_get(job, "status"), type);
	return c && strcmp(obj_str(c, "status"), "True") == 0;
}

const char *
job_finished(const json_t *job)
{
	if (cond_true(job, "Complete"))
		return "Complete";
	if (cond_true(job, "Failed"))
		return "Failed";
	return NULL;
}

/* The completion index of a pod of an Indexed Job, or -1. */
static int64_t
pod_index(const json_t *pod)
{
	const char *v = json_string_value(json_object_get(obj_get_path(pod,
	    "metadata.annotations"), JOB_INDEX_KEY));
	if (!v || !*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 9)
		return -1;
	return strtol(v, NULL, 10);
}

/* ---- podFailurePolicy ----------------------------------------------------- */

enum pfp_action { PFP_NONE, PFP_FAIL_JOB, PFP_IGNORE, PFP_COUNT };

static bool
exit_code_in(const json_t *values, int64_t code)
{
	size_t i;
	json_t *v;
	json_array_foreach(values, i, v)
		if (json_integer_value(v) == code)
			return true;
	return false;
}

/* matchPodFailurePolicy: the first rule that matches failed pod decides;
 * *msg (caller frees) says why for FailJob. Exit codes count for
 * containers that terminated with a non-zero code. */
static enum pfp_action
pfp_match(const json_t *job, const json_t *pod, char **msg)
{
	static const struct { const char *name; enum pfp_action a; } actions[] = {
		{ "FailJob", PFP_FAIL_JOB }, { "Ignore", PFP_IGNORE }, { "Count", PFP_COUNT },
	};
	const json_t *rules = obj_get_path(job, "spec.podFailurePolicy.rules"), *r;
	size_t i, j;
	json_array_foreach(rules, i, r) {
		enum pfp_action act = PFP_NONE;
		for (size_t k = 0; k < ARRAY_SIZE(actions); k++)
			if (strcmp(obj_str(r, "action"), actions[k].name) == 0)
				act = actions[k].a;
		const json_t *ec = json_object_get(r, "onExitCodes"), *cs;
		if (ec) {
			const char *only = obj_str(ec, "containerName");
			bool in = strcmp(obj_str(ec, "operator"), "In") == 0;
			json_array_foreach(obj_get_path(pod, "status.containerStatuses"), j, cs) {
				const json_t *t = obj_get_path(cs, "state.terminated");
				int64_t code = json_integer_value(json_object_get(t, "exitCode"));
				if (!t || code == 0 || (*only && strcmp(only, obj_str(cs, "name"))))
					continue;
				if (exit_code_in(json_object_get(ec, "values"), code) != in)
					continue;
				*msg = xasprintf("Container %s for pod %s/%s failed with exit code "
				    "%lld matching %s rule at index %zu", obj_str(cs, "name"),
				    obj_namespace(pod), obj_name(pod), (long long)code,
				    obj_str(r, "action"), i);
				return act;
			}
		}
		const json_t *pc;
		json_array_foreach(json_object_get(r, "onPodConditions"), j, pc) {
			const char *want = *obj_str(pc, "status") ? obj_str(pc, "status") : "True";
			const json_t *c = obj_condition(json_object_get(pod, "status"),
			    obj_str(pc, "type"));
			if (c && strcmp(obj_str(c, "status"), want) == 0) {
				*msg = xasprintf("Pod %s/%s has condition %s matching %s rule at "
				    "index %zu", obj_namespace(pod), obj_name(pod),
				    obj_str(pc, "type"), obj_str(r, "action"), i);
				return act;
			}
		}
	}
	return PFP_NONE;
}

/* ---- the decision ----------------------------------------------------- */

struct job_pods {
	const json_t **active;
	size_t nactive, terminating, ready;
	int64_t succeeded, failed;	/* failed: not Ignored by podFailurePolicy */
	int64_t last_failure_ms;	/* newest finishedAt of a counted failure */
	char *fail_msg;			/* a FailJob match */
	bool *done_index;		/* Indexed: index succeeded */
	bool *active_index;		/* Indexed: index has an active pod */
};

static int64_t
finished_ms(const json_t *pod)
{
	int64_t t = 0;
	size_t i;
	json_t *cs;
	json_array_foreach(obj_get_path(pod, "status.containerStatuses"), i, cs) {
		int64_t f = obj_time_ms(obj_get_path(cs, "state.terminated.finishedAt"));
		if (f > t)
			t = f;
	}
	return t ? t : obj_time_ms(obj_get_path(pod, "metadata.creationTimestamp"));
}

static void
classify(const json_t *job, const json_t *pods, int64_t completions, struct job_pods *jp)
{
	const char *uid = obj_uid(job);
	size_t i;
	json_t *pod;
	bool indexed = strcmp(obj_str(json_object_get(job, "spec"), "completionMode"),
	    "Indexed") == 0;
	jp->active = xcalloc(json_array_size(pods) + 1, sizeof *jp->active);
	if (indexed) {
		jp->done_index = xcalloc((size_t)completions + 1, sizeof (bool));
		jp->active_index = xcalloc((size_t)completions + 1, sizeof (bool));
	}
	json_array_foreach(pods, i, pod) {
		const json_t *ref = obj_controller_ref(pod);
		if (!ref || strcmp(obj_str(ref, "uid"), uid) ||
		    strcmp(obj_namespace(pod), obj_namespace(job)))
			continue;
		const char *phase = obj_str(json_object_get(pod, "status"), "phase");
		int64_t ix = indexed ? pod_index(pod) : -1;
		bool in_range = ix >= 0 && ix < completions;
		if (strcmp(phase, "Succeeded") == 0) {
			if (!indexed)
				jp->succeeded++;
			else if (in_range && !jp->done_index[ix]) {
				jp->done_index[ix] = true;
				jp->succeeded++;
			}
		} else if (strcmp(phase, "Failed") == 0) {
			char *msg = NULL;
			enum pfp_action a = pfp_match(job, pod, &msg);
			if (a == PFP_FAIL_JOB && !jp->fail_msg)
				jp->fail_msg = msg;
			else
				free(msg);
			if (a == PFP_IGNORE)
				continue;
			jp->failed++;
			int64_t t = finished_ms(pod);
			if (t > jp->last_failure_ms)
				jp->last_failure_ms = t;
		} else if (obj_is_deleting(pod)) {
			jp->terminating++;
		} else {
			jp->active[jp->nactive++] = pod;
			if (obj_pod_ready(pod, NULL))
				jp->ready++;
			if (in_range)
				jp->active_index[ix] = true;
		}
	}
}

static void
job_pods_free(struct job_pods *jp)
{
	free(jp->active);
	free(jp->fail_msg);
	free(jp->done_index);
	free(jp->active_index);
}

/* status.completedIndexes: "0-2,5" as Kubernetes writes intervals. */
static json_t *
completed_indexes(const bool *done, int64_t n)
{
	char *s = xstrdup("");
	for (int64_t i = 0; i < n; i++) {
		if (!done[i])
			continue;
		int64_t j = i;
		while (j + 1 < n && done[j + 1])
			j++;
		char *next = j > i ? xasprintf("%s%s%lld-%lld", s, *s ? "," : "", (long long)i,
		    (long long)j) : xasprintf("%s%s%lld", s, *s ? "," : "", (long long)i);
		free(s);
		s = next;
		i = j;
	}
	json_t *v = json_string(s);
	free(s);
	return v;
}

static void
set_cond(json_t *st, const char *type, const char *status, const char *reason,
    const char *msg, int64_t now_ms)
{
	obj_condition_set(st, json_pack("{s:s, s:s, s:o, s:o, s:s, s:s}", "type", type,
	    "status", status, "lastProbeTime", obj_time_json(now_ms), "lastTransitionTime",
	    obj_time_json(now_ms), "reason", reason, "message", msg));
}

/* The pod of index ix (-1: NonIndexed) from the template. */
json_t *
job_pod(const json_t *job, int64_t ix)
{
	json_t *pod = rs_pod_from_template(job);
	if (ix < 0)
		return pod;
	char num[24], gen[80];
	snprintf(num, sizeof num, "%lld", (long long)ix);
	/* podGenerateNameWithIndex: JOB-INDEX- (the job name cut to fit) */
	snprintf(gen, sizeof gen, "%.*s-%s-", (int)(62 - strlen(num) - 2), obj_name(job), num);
	json_t *meta = json_object_get(pod, "metadata");
	json_object_set_new(meta, "generateName", json_string(gen));
	json_t *ann = json_object_get(meta, "annotations"), *labels;
	if (!json_is_object(ann))
		json_object_set_new(meta, "annotations", ann = json_object());
	json_object_set_new(ann, JOB_INDEX_KEY, json_string(num));
	labels = json_object_get(meta, "labels");
	if (!json_is_object(labels))
		json_object_set_new(meta, "labels", labels = json_object());
	json_object_set_new(labels, JOB_INDEX_KEY, json_string(num));
	json_t *spec = json_object_get(pod, "spec");
	if (!*obj_str(spec, "hostname")) {
		snprintf(gen, sizeof gen, "%.*s-%s", (int)(62 - strlen(num) - 1), obj_name(job),
		    num);
		json_object_set_new(spec, "hostname", json_string(gen));
	}
	static const char *const lists[] = { "containers", "initContainers" };
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(spec, lists[l]), i, c) {
			json_t *env = json_object_get(c, "env");
			if (!json_is_array(env))
				json_object_set_new(c, "env", env = json_array());
			json_array_append_new(env, json_pack("{s:s, s:{s:{s:s}}}", "name",
			    "JOB_COMPLETION_INDEX", "valueFrom", "fieldRef", "fieldPath",
			    "metadata.annotations['" JOB_INDEX_KEY "']"));
		}
	}
	return pod;
}

static void
delete_pods(struct ctrl_writes *w, const json_t **pods, size_t n, int tag)
{
	for (size_t i = 0; i < n && i < JOB_BURST; i++)
		ctrl_writes_push(w, CTRL_DELETE, kind_find_gvk("v1", "Pod"), json_pack(
		    "{s:{s:s, s:s}}", "metadata", "name", obj_name(pods[i]), "uid",
		    obj_uid(pods[i])), tag);
}

static void
requeue_at(struct ctrl_writes *w, int64_t delay_ms)
{
	if (delay_ms <= 0)
		delay_ms = 1;
	if (w->requeue_ms == 0 || delay_ms < w->requeue_ms)
		w->requeue_ms = delay_ms;
}

/* A finished Job: its leftover pods go; past ttlSecondsAfterFinished, the
 * Job itself (the garbage collector takes its pods). */
static void
decide_finished(const json_t *job, const struct job_pods *jp, const char *how,
    int64_t now_ms, struct ctrl_writes *w)
{
	delete_pods(w, jp->active, jp->nactive, JOB_W_DELETE);
	const json_t *ttl = obj_get_path(job, "spec.ttlSecondsAfterFinished");
	if (!json_is_integer(ttl))
		return;
	const json_t *st = json_object_get(job, "status");
	int64_t fin = obj_time_ms(json_object_get(st, "completionTime"));
	if (!fin)
		fin = obj_time_ms(json_object_get(obj_condition(st, how), "lastTransitionTime"));
	int64_t expire = fin + json_integer_value(ttl) * 1000;
	if (now_ms < expire) {
		requeue_at(w, expire - now_ms);
		return;
	}
	ctrl_writes_push(w, CTRL_DELETE, NULL, json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}",
	    "apiVersion", "batch/v1", "kind", "Job", "metadata", "name", obj_name(job),
	    "namespace", obj_namespace(job), "uid", obj_uid(job)), JOB_W_TTL);
}

/* Pods to create so that active pods reach parallelism without passing
 * the completions left (NonIndexed), or the lowest indexes neither done
 * nor running (Indexed); surplus active pods are deleted. */
static void
manage(const json_t *job, struct job_pods *jp, int64_t completions, bool has_completions,
    int64_t now_ms, struct ctrl_writes *w)
{
	const json_t *spec = json_object_get(job, "spec");
	int64_t par = json_integer_value(json_object_get(spec, "parallelism"));
	int64_t want = par;
	if (has_completions && completions - jp->succeeded < want)
		want = completions - jp->succeeded;
	if (!has_completions && jp->succeeded > 0)
		want = (int64_t)jp->nactive;	/* a work queue: no new pods once one succeeded */
	if (want < 0)
		want = 0;
	if ((int64_t)jp->nactive > want) {
		rs_sort_for_deletion(jp->active, jp->nactive, now_ms);
		delete_pods(w, jp->active, (size_t)((int64_t)jp->nactive - want), JOB_W_DELETE);
		return;
	}
	int64_t n = want - (int64_t)jp->nactive;
	if (n <= 0)
		return;
	/* Back-off after failures: 10 s doubling per failure, at most 6 min,
	 * from the newest failure. */
	int64_t wait = jp->last_failure_ms + job_backoff_ms(jp->failed) - now_ms;
	if (jp->failed > 0 && wait > 0) {
		requeue_at(w, wait);
		return;
	}
	if (n > JOB_BURST)
		n = JOB_BURST;
	bool indexed = jp->done_index != NULL;
	for (int64_t ix = 0, made = 0; made < n && (!indexed || ix < completions); ix++) {
		if (indexed && (jp->done_index[ix] || jp->active_index[ix]))
			continue;
		ctrl_writes_push(w, CTRL_CREATE, kind_find_gvk("v1", "Pod"),
		    job_pod(job, indexed ? ix : -1), JOB_W_CREATE);
		made++;
	}
}

int
job_decide(const json_t *job, const json_t *pods, int64_t now_ms, struct ctrl_writes *w)
{
	const json_t *spec = json_object_get(job, "spec");
	const json_t *cv = json_object_get(spec, "completions");
	bool has_completions = json_is_integer(cv);
	int64_t completions = json_integer_value(cv);
	struct job_pods jp = { 0 };
	classify(job, pods, has_completions ? completions : 0, &jp);
	const char *how = job_finished(job);
	if (how || obj_is_deleting(job)) {
		if (how)
			decide_finished(job, &jp, how, now_ms, w);
		job_pods_free(&jp);
		return 0;
	}
	const json_t *old = json_object_get(job, "status");
	json_t *st = json_is_object(old) ? json_deep_copy(old) : json_object();
	/* counts never go back when finished pods are deleted (V6 keeps no
	 * tracking finalizer: docs/jobs.md) */
	int64_t succ = jp.succeeded, failed = jp.failed;
	if (!jp.done_index && json_integer_value(json_object_get(st, "succeeded")) > succ)
		succ = json_integer_value(json_object_get(st, "succeeded"));
	if (json_integer_value(json_object_get(st, "failed")) > failed)
		failed = json_integer_value(json_object_get(st, "failed"));
	jp.succeeded = succ;
	jp.failed = failed;
	bool suspended = json_is_true(json_object_get(spec, "suspend"));
	const json_t *start = json_object_get(st, "startTime");
	int64_t ads = json_integer_value(json_object_get(spec, "activeDeadlineSeconds"));
	const char *freason = NULL;
	char *fmsg = NULL;
	if (obj_condition(st, "FailureTarget")) {
		const json_t *c = obj_condition(st, "FailureTarget");
		freason = obj_str(c, "reason");
		fmsg = xstrdup(obj_str(c, "message"));
	} else if (jp.fail_msg) {
		freason = "PodFailurePolicy";
		fmsg = xstrdup(jp.fail_msg);
	} else if (failed > json_integer_value(json_object_get(spec, "backoffLimit"))) {
		freason = "BackoffLimitExceeded";
		fmsg = xstrdup("Job has reached the specified backoff limit");
	} else if (!suspended && ads > 0 && start && now_ms >= obj_time_ms(start) + ads * 1000) {
		freason = "DeadlineExceeded";
		fmsg = xstrdup("Job was active longer than specified deadline");
	}
	bool success = !freason && (jp.done_index ? succ >= completions :
	    has_completions ? succ >= completions : succ > 0 && jp.nactive == 0);
	if (freason || success) {
		/* 1.31: the target condition first, the final one once no pod
		 * of the Job runs any more. */
		const char *target = freason ? "FailureTarget" : "SuccessCriteriaMet";
		const char *reason = freason ? freason : "CompletionsReached";
		const char *msg = freason ? fmsg : "Reached expected number of succeeded pods";
		set_cond(st, target, "True", reason, msg, now_ms);
		delete_pods(w, jp.active, jp.nactive, JOB_W_DELETE);
		if (jp.nactive == 0 && jp.terminating == 0) {
			set_cond(st, freason ? "Failed" : "Complete", "True", reason, msg, now_ms);
			if (success)
				json_object_set_new(st, "completionTime", obj_time_json(now_ms));
			ctrl_writes_event(w, freason ? "Warning" : "Normal",
			    freason ? freason : "Completed", freason ? fmsg : "Job completed");
		}
		jp.nactive = 0;
		jp.ready = 0;
	} else if (suspended) {
		delete_pods(w, jp.active, jp.nactive, JOB_W_DELETE);
		jp.nactive = jp.ready = 0;
		json_object_del(st, "startTime");
		if (!cond_true(job, "Suspended")) {
			set_cond(st, "Suspended", "True", "JobSuspended", "Job suspended", now_ms);
			ctrl_writes_event(w, "Normal", "Suspended", "Job suspended");
		}
	} else {
		if (cond_true(job, "Suspended")) {
			set_cond(st, "Suspended", "False", "JobResumed", "Job resumed", now_ms);
			ctrl_writes_event(w, "Normal", "Resumed", "Job resumed");
		}
		if (!start) {
			json_object_set_new(st, "startTime", obj_time_json(now_ms));
			start = json_object_get(st, "startTime");
		}
		if (ads > 0)
			requeue_at(w, obj_time_ms(start) + ads * 1000 - now_ms);
		manage(job, &jp, completions, has_completions, now_ms, w);
	}
	json_object_set_new(st, "active", json_integer((json_int_t)jp.nactive));
	json_object_set_new(st, "ready", json_integer((json_int_t)jp.ready));
	json_object_set_new(st, "succeeded", json_integer(succ));
	json_object_set_new(st, "failed", json_integer(failed));
	json_object_set_new(st, "terminating", json_integer((json_int_t)jp.terminating));
	if (jp.done_index)
		json_object_set_new(st, "completedIndexes", completed_indexes(jp.done_index,
		    completions));
	json_object_set_new(st, "uncountedTerminatedPods", json_object());
	if (!json_equal(st, (json_t *)old)) {
		json_t *copy = json_deep_copy(job);
		json_object_set_new(copy, "status", st);
		ctrl_writes_push(w, CTRL_STATUS, NULL, copy, JOB_W_STATUS);
	} else {
		json_decref(st);
	}
	free(fmsg);
	job_pods_free(&jp);
	return 0;
}

/* ---- the adapter on the controller core ---------------------------------- */

static int
job_ctrl_decide(struct ctrl *c, const json_t *job, int64_t now_ms, struct ctrl_writes *w)
{
	json_t *pods = NULL;
	if (store_list(ctrl_store(c), "pods", obj_namespace(job), &pods, NULL) < 0)
		return -EIO;
	int rc = job_decide(job, pods, now_ms, w);
	json_decref(pods);
	return rc;
}

static void
job_result(struct ctrl *c, const json_t *job, const struct ctrl_write *w, const json_t *made,
    const char *err)
{
	if (w->tag == JOB_W_CREATE || w->tag == JOB_W_DELETE)
		ctrl_record_pod_write(c, job, w, made, err);
	else if (w->tag == JOB_W_TTL && !err)
		log_info("job", "deleted job %s/%s: ttlSecondsAfterFinished passed",
		    obj_namespace(job), obj_name(job));
}

static const struct ctrl_desc job_desc = {
	.name = "job", .component = JOB_COMPONENT,
	.api_version = "batch/v1", .kind = "Job", .res = "batch/jobs",
	.sources = {
		{ "batch/jobs", NULL },
		{ "pods", ctrl_enqueue_pod_owner },
	},
	.decide = job_ctrl_decide, .result = job_result,
};

int
ctrl_job_start(struct api *api, struct ctrl **out)
{
	return ctrl_start(api, &job_desc, NULL, out);
}
