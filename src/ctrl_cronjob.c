/* ctrl_cronjob.c — the CronJob controller (kube-controller-manager's
 * cronjob controller v2, batch/v1): at each scheduled time (cron.c, in
 * spec.timeZone) a Job NAME-<minutes since the epoch>, concurrencyPolicy,
 * startingDeadlineSeconds, suspend, the history limits, and status.active
 * / lastScheduleTime / lastSuccessfulTime. cronjob_decide() is the pure
 * decision; the adapter runs it on the controller core (server.c). */
#include "cron.h"
#include "ctrl.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CJ_COMPONENT "cronjob-controller"
#define SCHEDULED_KEY "batch.kubernetes.io/cronjob-scheduled-timestamp"
#define MAX_MISSED 100		/* upstream's warning threshold */

enum { CJ_W_CREATE, CJ_W_DELETE, CJ_W_STATUS };

json_t *
cronjob_job(const json_t *cj, const char *name, int64_t scheduled_s, bool manual)
{
	const json_t *tmpl = obj_get_path(cj, "spec.jobTemplate");
	const json_t *tmeta = json_object_get(tmpl, "metadata");
	json_t *meta = json_pack("{s:s, s:s, s:[o]}", "name", name, "namespace",
	    obj_namespace(cj), "ownerReferences", obj_new_controller_ref(cj));
	json_t *labels = json_deep_copy(json_object_get(tmeta, "labels"));
	json_t *ann = json_deep_copy(json_object_get(tmeta, "annotations"));
	if (!labels)
		labels = json_object();
	if (!ann)
		ann = json_object();
	if (manual) {
		json_object_set_new(ann, "cronjob.kubernetes.io/instantiate", json_string("manual"));
	} else {
		json_object_set_new(ann, SCHEDULED_KEY, obj_time_json(scheduled_s * 1000));
	}
	json_object_set_new(meta, "labels", labels);
	json_object_set_new(meta, "annotations", ann);
	const json_t *spec = json_object_get(tmpl, "spec");
	return json_pack("{s:s, s:s, s:o, s:o}", "apiVersion", "batch/v1", "kind", "Job",
	    "metadata", meta, "spec", spec ? json_deep_copy(spec) : json_object());
}

/* getJobName: NAME-<scheduled time in minutes since the epoch>. */
static char *
job_name(const json_t *cj, int64_t t_s)
{
	return xasprintf("%s-%lld", obj_name(cj), (long long)(t_s / 60));
}

static int
cmp_start(const void *pa, const void *pb)
{
	const json_t *a = *(const json_t *const *)pa, *b = *(const json_t *const *)pb;
	int64_t ta = obj_time_ms(obj_get_path(a, "status.startTime"));
	int64_t tb = obj_time_ms(obj_get_path(b, "status.startTime"));
	if (!ta)
		ta = obj_time_ms(obj_get_path(a, "metadata.creationTimestamp"));
	if (!tb)
		tb = obj_time_ms(obj_get_path(b, "metadata.creationTimestamp"));
	if (ta != tb)
		return ta < tb ? -1 : 1;
	return strcmp(obj_name(a), obj_name(b));
}

static void
delete_job(struct ctrl_writes *w, const json_t *job)
{
	ctrl_writes_push(w, CTRL_DELETE, NULL, json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}",
	    "apiVersion", "batch/v1", "kind", "Job", "metadata", "name", obj_name(job),
	    "namespace", obj_namespace(job), "uid", obj_uid(job)), CJ_W_DELETE);
}

/* cleanupFinishedJobs: the oldest finished Jobs beyond each limit go. */
static void
cleanup_history(const json_t *cj, const json_t **fin, size_t n, struct ctrl_writes *w)
{
	static const struct { const char *how, *limit; } kinds[] = {
		{ "Complete", "spec.successfulJobsHistoryLimit" },
		{ "Failed", "spec.failedJobsHistoryLimit" },
	};
	qsort(fin, n, sizeof *fin, cmp_start);
	for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
		const json_t *lv = obj_get_path(cj, kinds[k].limit);
		if (!json_is_integer(lv))
			continue;
		size_t count = 0;
		for (size_t i = 0; i < n; i++)
			count += strcmp(job_finished(fin[i]), kinds[k].how) == 0;
		for (size_t i = 0; i < n && (int64_t)count > json_integer_value(lv); i++)
			if (strcmp(job_finished(fin[i]), kinds[k].how) == 0) {
				delete_job(w, fin[i]);
				count--;
			}
	}
}

static json_t *
job_ref(const json_t *job)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:O*}", "apiVersion", "batch/v1", "kind",
	    "Job", "name", obj_name(job), "namespace", obj_namespace(job), "uid", obj_uid(job),
	    "resourceVersion", obj_get_path(job, "metadata.resourceVersion"));
}

static void
requeue_at(struct ctrl_writes *w, int64_t delay_ms)
{
	if (delay_ms <= 0)
		delay_ms = 1;
	if (w->requeue_ms == 0 || delay_ms < w->requeue_ms)
		w->requeue_ms = delay_ms;
}

/* mostRecentScheduleTime: the newest scheduled time in (earliest, now_s],
 * or -1; *missed counts them up to MAX_MISSED + 1. Past that, the newest
 * one is found from a window before now (an hour, a day, a month, a year)
 * instead of walking every missed time. */
static int64_t
newest_time(const struct cron *c, const char *zone, int64_t earliest, int64_t now_s,
    int64_t *missed)
{
	static const int64_t windows[] = { 3600, 86400, 32 * 86400, 367 * 86400,
		5 * 367 * 86400 };
	int64_t sched = -1, t = cron_next(c, zone, earliest);
	for (*missed = 0; t >= 0 && t <= now_s && *missed <= MAX_MISSED; (*missed)++) {
		sched = t;
		t = cron_next(c, zone, t);
	}
	if (t < 0 || t > now_s)
		return sched;
	for (size_t i = 0; i < ARRAY_SIZE(windows); i++) {
		int64_t from = now_s - windows[i] > sched ? now_s - windows[i] : sched;
		t = cron_next(c, zone, from);
		if (t < 0 || t > now_s)
			continue;
		for (int64_t n; (n = cron_next(c, zone, t)) >= 0 && n <= now_s;)
			t = n;
		return t;
	}
	return sched;
}

int
cronjob_decide(const json_t *cj, const json_t *jobs, int64_t now_ms, struct ctrl_writes *w)
{
	const json_t *spec = json_object_get(cj, "spec"), *old = json_object_get(cj, "status");
	json_t *st = json_is_object(old) ? json_deep_copy(old) : json_object();
	const json_t **fin = xcalloc(json_array_size(jobs) + 1, sizeof *fin);
	const json_t **act = xcalloc(json_array_size(jobs) + 1, sizeof *act);
	size_t nfin = 0, nact = 0, i;
	json_t *job, *active = json_array();
	int64_t last_ok = obj_time_ms(json_object_get(st, "lastSuccessfulTime"));
	json_array_foreach(jobs, i, job) {
		const json_t *ref = obj_controller_ref(job);
		if (!ref || strcmp(obj_str(ref, "uid"), obj_uid(cj)) ||
		    strcmp(obj_namespace(job), obj_namespace(cj)))
			continue;
		const char *how = job_finished(job);
		if (!how) {
			act[nact++] = job;
			json_array_append_new(active, job_ref(job));
			continue;
		}
		fin[nfin++] = job;
		int64_t done = obj_time_ms(obj_get_path(job, "status.completionTime"));
		if (strcmp(how, "Complete") == 0 && done > last_ok)
			last_ok = done;
	}
	if (json_array_size(active))
		json_object_set_new(st, "active", active);
	else {
		json_decref(active);
		json_object_del(st, "active");
	}
	if (last_ok)
		json_object_set_new(st, "lastSuccessfulTime", obj_time_json(last_ok));
	bool deleting = obj_is_deleting(cj);
	if (!deleting)
		cleanup_history(cj, fin, nfin, w);
	struct cron c;
	const char *perr, *zone = obj_str(spec, "timeZone");
	if (!deleting && !json_is_true(json_object_get(spec, "suspend")) &&
	    cron_parse(obj_str(spec, "schedule"), &c, &perr) == 0) {
		/* the newest scheduled time in (earliest, now] */
		int64_t now_s = now_ms / 1000;
		int64_t earliest = obj_time_s(json_object_get(st, "lastScheduleTime"));
		if (!earliest)
			earliest = obj_time_s(obj_get_path(cj, "metadata.creationTimestamp"));
		const json_t *sds = json_object_get(spec, "startingDeadlineSeconds");
		if (json_is_integer(sds) && now_s - json_integer_value(sds) > earliest)
			earliest = now_s - json_integer_value(sds);
		int64_t missed = 0, sched = newest_time(&c, zone, earliest, now_s, &missed);
		if (missed > MAX_MISSED)
			ctrl_writes_event(w, "Warning", "TooManyMissedTimes", "too many missed "
			    "start times. Set or decrease .spec.startingDeadlineSeconds or check "
			    "clock skew");
		const char *policy = obj_str(spec, "concurrencyPolicy");
		if (sched >= 0 && nact > 0 && strcmp(policy, "Forbid") == 0) {
			/* skipped: it runs at the next time if the Job ended */
		} else if (sched >= 0) {
			char *name = job_name(cj, sched);
			bool exists = false;
			for (size_t k = 0; k < nact; k++)
				exists |= strcmp(obj_name(act[k]), name) == 0;
			for (size_t k = 0; k < nfin; k++)
				exists |= strcmp(obj_name(fin[k]), name) == 0;
			if (!exists) {
				if (strcmp(policy, "Replace") == 0)
					for (size_t k = 0; k < nact; k++)
						delete_job(w, act[k]);
				ctrl_writes_push(w, CTRL_CREATE, NULL, cronjob_job(cj, name,
				    sched, false), CJ_W_CREATE);
			}
			json_object_set_new(st, "lastScheduleTime", obj_time_json(sched * 1000));
			free(name);
		}
		int64_t next = cron_next(&c, zone, now_s);
		if (next >= 0)
			requeue_at(w, next * 1000 - now_ms + 100);
	}
	if (!json_equal(st, (json_t *)old)) {
		json_t *copy = json_deep_copy(cj);
		json_object_set_new(copy, "status", st);
		ctrl_writes_push(w, CTRL_STATUS, NULL, copy, CJ_W_STATUS);
	} else {
		json_decref(st);
	}
	free(fin);
	free(act);
	return 0;
}

/* ---- the adapter on the controller core ---------------------------------- */

static int
cj_ctrl_decide(struct ctrl *c, const json_t *cj, int64_t now_ms, struct ctrl_writes *w)
{
	json_t *jobs = NULL;
	if (store_list(ctrl_store(c), "batch/jobs", obj_namespace(cj), &jobs, NULL) < 0)
		return -EIO;
	int rc = cronjob_decide(cj, jobs, now_ms, w);
	json_decref(jobs);
	return rc;
}

/* Events as upstream: SuccessfulCreate / SuccessfulDelete of Jobs. */
static void
cj_result(struct ctrl *c, const json_t *cj, const struct ctrl_write *w, const json_t *made,
    const char *err)
{
	struct api *api = ctrl_api(c);
	if (w->tag == CJ_W_CREATE && !err)
		api_record_event(api, cj, "Normal", "SuccessfulCreate", CJ_COMPONENT,
		    "Created job %s", obj_name(made));
	else if (w->tag == CJ_W_CREATE)
		api_record_event(api, cj, "Warning", "FailedCreate", CJ_COMPONENT,
		    "Error creating job: %s", err);
	else if (w->tag == CJ_W_DELETE && !err)
		api_record_event(api, cj, "Normal", "SuccessfulDelete", CJ_COMPONENT,
		    "Deleted job %s", obj_name(w->obj));
}

static const struct ctrl_desc cj_desc = {
	.name = "cronjob", .component = CJ_COMPONENT,
	.api_version = "batch/v1", .kind = "CronJob", .res = "batch/cronjobs",
	.sources = {
		{ "batch/cronjobs", NULL },
		{ "batch/jobs", ctrl_enqueue_owner },
	},
	.decide = cj_ctrl_decide, .result = cj_result,
};

int
ctrl_cronjob_start(struct api *api, struct ctrl **out)
{
	return ctrl_start(api, &cj_desc, NULL, out);
}
